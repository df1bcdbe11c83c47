//! RNN, LSTM and GRU against PyTorch fixtures (outputs, final states, gradients of inputs, states and every
//! parameter), f64 gradchecks of inputs and parameters, and shape errors.

mod common;
mod nnseq_common;

use nnseq_common::{check_against_fixture, fixture_dtype, load_params, param_gradcheck, randn64};
use serde_json::Value;
use tensorgrad::nn::{Gru, Lstm, Module, Nonlinearity, Rnn, RnnOptions};
use tensorgrad::{gradcheck, DType, GradcheckOptions, Tensor};

enum Layer {
    Rnn(Rnn),
    Lstm(Lstm),
    Gru(Gru),
}

impl Layer {
    fn new(kind: &str, opts: RnnOptions) -> Layer {
        match kind {
            "rnn" => Layer::Rnn(Rnn::with_options(opts)),
            "lstm" => Layer::Lstm(Lstm::with_options(opts)),
            "gru" => Layer::Gru(Gru::with_options(opts)),
            other => panic!("unknown kind {other}"),
        }
    }

    fn module(&self) -> &dyn Module {
        match self {
            Layer::Rnn(m) => m,
            Layer::Lstm(m) => m,
            Layer::Gru(m) => m,
        }
    }

    /// `[output, h_n]` (+ `c_n` for LSTM).
    fn run(&self, x: &Tensor, h0: Option<&Tensor>, c0: Option<&Tensor>) -> Vec<Tensor> {
        match self {
            Layer::Rnn(m) => {
                let (o, h) = m.forward_with_state(x, h0);
                vec![o, h]
            }
            Layer::Gru(m) => {
                let (o, h) = m.forward_with_state(x, h0);
                vec![o, h]
            }
            Layer::Lstm(m) => {
                let state = h0.map(|h| (h, c0.expect("LSTM needs c0 with h0")));
                let (o, (h, c)) = m.forward_with_state(x, state);
                vec![o, h, c]
            }
        }
    }
}

fn options_from(fx: &Value) -> RnnOptions {
    let nonlinearity = if fx["nonlinearity"] == "relu" { Nonlinearity::Relu } else { Nonlinearity::Tanh };
    RnnOptions::new(fx["input_size"].as_u64().unwrap() as usize, fx["hidden_size"].as_u64().unwrap() as usize)
        .num_layers(fx["num_layers"].as_u64().unwrap() as usize)
        .bidirectional(fx["bidirectional"].as_bool().unwrap())
        .batch_first(fx["batch_first"].as_bool().unwrap())
        .bias(fx["bias"].as_bool().unwrap())
        .nonlinearity(nonlinearity)
        .dtype(fixture_dtype(fx))
}

fn check_fixture(case: &str) {
    let fx = common::load_fixture(&format!("nnseq/{case}.json"));
    let layer = Layer::new(fx["kind"].as_str().unwrap(), options_from(&fx));
    load_params(layer.module(), &fx);
    let x = common::tensor(&fx["x"]).requires_grad_();
    let h0 = fx.get("h0").map(|h| common::tensor(h).requires_grad_());
    let c0 = fx.get("c0").map(|c| common::tensor(c).requires_grad_());
    let outputs = layer.run(&x, h0.as_ref(), c0.as_ref());
    let mut inputs = vec![("dx", &x)];
    inputs.extend(h0.as_ref().map(|h| ("dh0", h)));
    inputs.extend(c0.as_ref().map(|c| ("dc0", c)));
    check_against_fixture(layer.module(), &fx, &outputs, &inputs, case);
}

#[test]
fn lstm_matches_pytorch() {
    for case in
        ["lstm_1layer", "lstm_2layer_bi_bf_state", "lstm_nobias_state", "lstm_unbatched_state", "lstm_2layer_bi_f32"]
    {
        check_fixture(case);
    }
}

#[test]
fn gru_matches_pytorch() {
    for case in ["gru_1layer_bf", "gru_2layer_bi_state", "gru_2layer_f32_state"] {
        check_fixture(case);
    }
}

#[test]
fn rnn_matches_pytorch() {
    for case in ["rnn_tanh_2layer_bi_state", "rnn_relu_bf"] {
        check_fixture(case);
    }
}

/// f64 gradcheck of the input and initial states (full Jacobian of all outputs) and of every parameter.
fn gradcheck_layer(kind: &str, opts: RnnOptions, with_state: bool) {
    tensorgrad::manual_seed(7);
    let opts = opts.dtype(DType::F64);
    let (t, n) = (3, 2);
    let layer = Layer::new(kind, opts.clone());
    let x_shape = if opts.batch_first { [n, t, opts.input_size] } else { [t, n, opts.input_size] };
    let x = randn64(&x_shape).requires_grad_();
    let d = if opts.bidirectional { 2 } else { 1 };
    let s_shape = [opts.num_layers * d, n, opts.hidden_size];
    let h0 = randn64(&s_shape).requires_grad_();
    let c0 = randn64(&s_shape).requires_grad_();
    let mut inputs = vec![x.clone()];
    if with_state {
        inputs.push(h0.clone());
        if kind == "lstm" {
            inputs.push(c0.clone());
        }
    }
    let f = |ts: &[Tensor]| {
        let outs = layer.run(&ts[0], ts.get(1), ts.get(2));
        Tensor::cat(&outs.iter().map(|o| o.flatten(0, -1)).collect::<Vec<_>>().iter().collect::<Vec<_>>(), 0)
    };
    gradcheck(f, &inputs, GradcheckOptions::default()).unwrap_or_else(|e| panic!("{kind} {opts:?}: {e}"));
    let ws: Vec<Tensor> = f(&inputs).shape().iter().map(|&len| randn64(&[len])).collect();
    param_gradcheck(layer.module(), || (f(&inputs) * &ws[0]).sum());
}

#[test]
fn lstm_gradcheck_inputs_states_and_parameters() {
    gradcheck_layer("lstm", RnnOptions::new(3, 2), false);
    gradcheck_layer("lstm", RnnOptions::new(3, 2).num_layers(2).bidirectional(true), true);
    gradcheck_layer("lstm", RnnOptions::new(3, 2).num_layers(2).batch_first(true), true);
}

#[test]
fn gru_gradcheck_inputs_states_and_parameters() {
    gradcheck_layer("gru", RnnOptions::new(3, 2), false);
    gradcheck_layer("gru", RnnOptions::new(3, 2).bias(false), true);
    gradcheck_layer("gru", RnnOptions::new(3, 2).num_layers(2).bidirectional(true).batch_first(true), true);
}

#[test]
fn rnn_gradcheck_inputs_states_and_parameters() {
    gradcheck_layer("rnn", RnnOptions::new(3, 2).num_layers(2).bidirectional(true), true);
    gradcheck_layer("rnn", RnnOptions::new(3, 4).batch_first(true).nonlinearity(Nonlinearity::Relu), true);
}

#[test]
fn parameter_names_and_shapes_follow_pytorch() {
    let lstm = Lstm::with_options(RnnOptions::new(5, 4).num_layers(2).bidirectional(true));
    let got: Vec<(String, Vec<usize>)> =
        lstm.named_parameters().into_iter().map(|(n, p)| (n, p.shape().to_vec())).collect();
    let mut expected = Vec::new();
    for (layer, input) in [(0, 5), (1, 8)] {
        for suffix in ["", "_reverse"] {
            expected.push((format!("weight_ih_l{layer}{suffix}"), vec![16, input]));
            expected.push((format!("weight_hh_l{layer}{suffix}"), vec![16, 4]));
            expected.push((format!("bias_ih_l{layer}{suffix}"), vec![16]));
            expected.push((format!("bias_hh_l{layer}{suffix}"), vec![16]));
        }
    }
    assert_eq!(got, expected);
    assert_eq!(Gru::new(3, 4).named_parameters()[0].1.shape(), &[12, 3]);
    assert_eq!(lstm.describe(), "LSTM(5, 4, num_layers=2, bidirectional=True)");
}

#[test]
fn init_is_uniform_within_one_over_sqrt_hidden() {
    tensorgrad::manual_seed(0);
    let gru = Gru::with_options(RnnOptions::new(6, 16).num_layers(2));
    let bound = 0.25;
    for (name, p) in gru.named_parameters() {
        let v = p.to_vec_f64();
        assert!(v.iter().all(|x| x.abs() <= bound), "{name} outside U(-1/sqrt(H), 1/sqrt(H))");
        let spread = v.iter().cloned().fold(0.0f64, |m, x| m.max(x.abs()));
        assert!(spread > 0.8 * bound, "{name} does not fill the range");
    }
}

#[test]
fn dropout_between_layers_only_in_training() {
    tensorgrad::manual_seed(2);
    let lstm = Lstm::with_options(RnnOptions::new(3, 8).num_layers(2).dropout(0.5));
    let x = Tensor::randn(&[4, 2, 3]);
    lstm.eval();
    let a = lstm.forward(&x).to_vec::<f32>();
    assert_eq!(a, lstm.forward(&x).to_vec::<f32>(), "eval is deterministic");
    lstm.train();
    let b = lstm.forward(&x).to_vec::<f32>();
    assert_ne!(a, b, "training applies dropout between the layers");
}

#[test]
#[should_panic(
    expected = "LSTM: expected input_size 5 in the last dim of the input ([T, N, input_size]), got shape [4, 3, 6]"
)]
fn wrong_input_size_panics_naming_the_layer() {
    Lstm::new(5, 4).forward(&Tensor::zeros(&[4, 3, 6]));
}

#[test]
#[should_panic(expected = "GRU: expected input of rank 3 ([N, T, input_size], batch_first=true) or 2")]
fn wrong_rank_panics() {
    Gru::with_options(RnnOptions::new(5, 4).batch_first(true)).forward(&Tensor::zeros(&[1, 4, 3, 5]));
}

#[test]
#[should_panic(expected = "LSTM: expected h_0 of shape [2, 3, 4]")]
fn state_of_a_batch_first_layout_panics() {
    // batch-first input [N=3, T=7] but a state built as if N were 7: the layout is wrong.
    let lstm = Lstm::with_options(RnnOptions::new(5, 4).num_layers(2).batch_first(true));
    let h = Tensor::zeros(&[2, 7, 4]);
    lstm.forward_with_state(&Tensor::zeros(&[3, 7, 5]), Some((&h, &h)));
}

#[test]
#[should_panic(expected = "RNN: expected h_0 of shape [1, 2, 4]")]
fn wrong_state_shape_panics() {
    Rnn::new(3, 4).forward_with_state(&Tensor::zeros(&[5, 2, 3]), Some(&Tensor::zeros(&[1, 2, 5])));
}
