//! A checkpoint written by PyTorch (`safetensors.torch.save_file(model.state_dict())`, see
//! `tests/fixtures/checkpoint/gen_checkpoint.py`) loads strictly into the same architecture built from
//! tensorgrad's layers and gives PyTorch's outputs on the same inputs.

mod common;

use common::{assert_close, load_fixture, tensor, F32_RTOL, F64_RTOL};
use tensorgrad::io::{load_into, load_state_dict};
use tensorgrad::nn::{prefixed, BatchNorm2d, Conv2d, Linear, Lstm, Module, ReLU, RnnOptions, Sequential};
use tensorgrad::{DType, Tensor};

/// PyTorch's `Net`: `mlp` (Linear 4-8, ReLU, Linear 8-3), `cnn` (Conv2d 1-2 k3, BatchNorm2d, ReLU) and an
/// f64 `lstm` (3 -> 5, batch_first).
struct Net {
    mlp: Sequential,
    cnn: Sequential,
    lstm: Lstm,
}

impl Net {
    fn new() -> Net {
        Net {
            mlp: Sequential::new().add(Linear::new(4, 8)).add(ReLU::new()).add(Linear::new(8, 3)),
            cnn: Sequential::new().add(Conv2d::new(1, 2, (3, 3))).add(BatchNorm2d::new(2)).add(ReLU::new()),
            lstm: Lstm::with_options(RnnOptions::new(3, 5).batch_first(true).dtype(DType::F64)),
        }
    }
}

impl Module for Net {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.mlp.forward(x)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("mlp", self.mlp.named_parameters());
        p.extend(prefixed("cnn", self.cnn.named_parameters()));
        p.extend(prefixed("lstm", self.lstm.named_parameters()));
        p
    }
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        prefixed("cnn", self.cnn.named_buffers())
    }
    fn set_training(&self, training: bool) {
        self.mlp.set_training(training);
        self.cnn.set_training(training);
        self.lstm.set_training(training);
    }
}

#[test]
fn pytorch_checkpoint_loads_strictly_and_gives_pytorchs_outputs() {
    let expected = load_fixture("checkpoint/expected.json");
    let (loaded, _meta) = load_state_dict(common::fixture_path("checkpoint/torch_model.safetensors")).unwrap();
    let net = Net::new();
    let report = load_into(&net.state_dict(), &loaded, true).unwrap();
    assert_eq!(net.state_dict().len(), loaded.len(), "{report:?}");
    net.eval();
    let inputs = &expected["inputs"];
    let outputs = &expected["outputs"];
    let got_mlp = tensorgrad::no_grad(|| net.mlp.forward(&tensor(&inputs["mlp"])));
    assert_close(&got_mlp, &tensor(&outputs["mlp"]), F32_RTOL, "mlp output");
    let got_cnn = tensorgrad::no_grad(|| net.cnn.forward(&tensor(&inputs["cnn"])));
    assert_close(&got_cnn, &tensor(&outputs["cnn"]), F32_RTOL, "cnn output (BatchNorm in eval mode)");
    let got_lstm = tensorgrad::no_grad(|| net.lstm.forward(&tensor(&inputs["lstm"])));
    assert_close(&got_lstm, &tensor(&outputs["lstm"]), F64_RTOL, "lstm output (f64)");
}
