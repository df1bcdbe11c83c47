//! TransformerEncoderLayer (post- and pre-norm, relu and gelu, masks), the GPT DecoderBlock and positional
//! encodings against PyTorch fixtures; f64 gradchecks of inputs and parameters; shape errors.

mod common;
mod nnseq_common;

use nnseq_common::{check_against_fixture, fixture_dtype, load_params, param_gradcheck, randn64};
use tensorgrad::nn::{
    sinusoidal_positional_encoding, DecoderBlock, FeedForwardActivation, LearnedPositionalEncoding, Module,
    SinusoidalPositionalEncoding, TransformerEncoderLayer, TransformerEncoderLayerOptions,
};
use tensorgrad::{gradcheck, DType, GradcheckOptions, Tensor};

fn check_encoder_fixture(case: &str) {
    let fx = common::load_fixture(&format!("nnseq/{case}.json"));
    let act = if fx["activation"] == "gelu" { FeedForwardActivation::Gelu } else { FeedForwardActivation::Relu };
    let opts = TransformerEncoderLayerOptions::new(
        fx["d_model"].as_u64().unwrap() as usize,
        fx["nhead"].as_u64().unwrap() as usize,
    )
    .dim_feedforward(fx["dim_feedforward"].as_u64().unwrap() as usize)
    .dropout(0.0)
    .activation(act)
    .batch_first(fx["batch_first"].as_bool().unwrap())
    .norm_first(fx["norm_first"].as_bool().unwrap())
    .dtype(fixture_dtype(&fx));
    let layer = TransformerEncoderLayer::new(opts);
    load_params(&layer, &fx);
    let src = common::tensor(&fx["src"]).requires_grad_();
    let mask = fx.get("src_mask").map(common::tensor);
    let kpm = fx.get("key_padding_mask").map(common::tensor);
    let out = layer.forward_with_masks(&src, mask.as_ref(), kpm.as_ref(), false);
    check_against_fixture(&layer, &fx, &[out], &[("dsrc", &src)], case);
}

#[test]
fn encoder_layer_matches_pytorch_post_and_pre_norm() {
    for case in ["encoder_post_relu", "encoder_pre_gelu_bf_masks", "encoder_post_gelu_masks", "encoder_pre_relu_f32"] {
        check_encoder_fixture(case);
    }
}

#[test]
fn decoder_block_matches_the_reference_gpt_block() {
    for case in ["decoder_block", "decoder_block_f32"] {
        let fx = common::load_fixture(&format!("nnseq/{case}.json"));
        let block = DecoderBlock::with_options(
            fx["d_model"].as_u64().unwrap() as usize,
            fx["nhead"].as_u64().unwrap() as usize,
            0.0,
            fixture_dtype(&fx),
        );
        load_params(&block, &fx);
        let x = common::tensor(&fx["x"]).requires_grad_();
        let out = block.forward(&x);
        check_against_fixture(&block, &fx, &[out], &[("dx", &x)], case);
    }
}

#[test]
fn encoder_layer_gradcheck_inputs_and_parameters() {
    for norm_first in [false, true] {
        tensorgrad::manual_seed(12);
        let opts = TransformerEncoderLayerOptions::new(4, 2)
            .dim_feedforward(6)
            .dropout(0.0)
            .activation(FeedForwardActivation::Gelu)
            .norm_first(norm_first)
            .dtype(DType::F64);
        let layer = TransformerEncoderLayer::new(opts);
        let x = randn64(&[3, 2, 4]);
        let kpm = Tensor::from_vec(vec![false, false, false, false, false, true], &[2, 3]);
        let f = |t: &[Tensor]| layer.forward_with_masks(&t[0], None, Some(&kpm), true);
        gradcheck(f, std::slice::from_ref(&x), GradcheckOptions::default()).unwrap();
        let w = randn64(&[3, 2, 4]);
        param_gradcheck(&layer, || (f(std::slice::from_ref(&x)) * &w).sum());
    }
}

#[test]
fn decoder_block_gradcheck_and_causality() {
    tensorgrad::manual_seed(13);
    let block = DecoderBlock::with_options(4, 2, 0.0, DType::F64);
    let x = randn64(&[2, 3, 4]);
    gradcheck(|t: &[Tensor]| block.forward(&t[0]), std::slice::from_ref(&x), GradcheckOptions::default()).unwrap();
    let w = randn64(&[2, 3, 4]);
    param_gradcheck(&block, || (block.forward(&x) * &w).sum());
    // Changing the last position leaves the earlier outputs unchanged.
    let y = block.forward(&x);
    let x2 = Tensor::cat(&[&x.narrow(1, 0, 2), &randn64(&[2, 1, 4])], 1);
    let y2 = block.forward(&x2);
    assert_eq!(y.narrow(1, 0, 2).to_vec::<f64>(), y2.narrow(1, 0, 2).to_vec::<f64>());
}

#[test]
fn encoder_layer_parameter_names_follow_pytorch() {
    let layer = TransformerEncoderLayer::new(TransformerEncoderLayerOptions::new(8, 2).dim_feedforward(16));
    let names: Vec<String> = layer.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "self_attn.in_proj_weight",
            "self_attn.in_proj_bias",
            "self_attn.out_proj.weight",
            "self_attn.out_proj.bias",
            "linear1.weight",
            "linear1.bias",
            "linear2.weight",
            "linear2.bias",
            "norm1.weight",
            "norm1.bias",
            "norm2.weight",
            "norm2.bias"
        ]
    );
}

#[test]
fn encoder_dropout_only_in_training() {
    tensorgrad::manual_seed(5);
    let layer =
        TransformerEncoderLayer::new(TransformerEncoderLayerOptions::new(8, 2).dim_feedforward(16).dropout(0.3));
    let x = Tensor::randn(&[4, 2, 8]);
    layer.eval();
    let a = layer.forward(&x).to_vec::<f32>();
    assert_eq!(a, layer.forward(&x).to_vec::<f32>());
    layer.train();
    assert_ne!(a, layer.forward(&x).to_vec::<f32>());
}

#[test]
fn sinusoidal_table_matches_pytorch_tutorial() {
    let fx = common::load_fixture("nnseq/sinusoidal.json");
    let expected = common::tensor(&fx["pe"]);
    common::assert_close(&sinusoidal_positional_encoding(10, 8, DType::F64), &expected, 1e-12, "sinusoidal table");
    let pe = SinusoidalPositionalEncoding::new(8, 10, false, DType::F64);
    let x = randn64(&[6, 2, 8]);
    let y = pe.forward(&x);
    let want = &x + &expected.narrow(0, 0, 6).unsqueeze(1);
    common::assert_close(&y, &want, 1e-12, "x + PE");
    assert_eq!(pe.named_buffers()[0].0, "pe");
    assert_eq!(pe.num_parameters(), 0);
}

#[test]
fn learned_positional_encoding_gets_gradient_only_for_used_positions() {
    tensorgrad::manual_seed(6);
    let pe = LearnedPositionalEncoding::new(4, 10, true, DType::F64);
    let x = randn64(&[3, 5, 4]).requires_grad_();
    let y = pe.forward(&x);
    y.sum().backward();
    let g = pe.named_parameters()[0].1.grad().unwrap().to_vec::<f64>();
    assert!(g[..5 * 4].iter().all(|&v| v == 3.0), "each used position sums over the batch");
    assert!(g[5 * 4..].iter().all(|&v| v == 0.0));
    assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![1.0; 60]);
}

#[test]
#[should_panic(expected = "SinusoidalPositionalEncoding: sequence length 12 exceeds max_len 10")]
fn positions_beyond_max_len_panic() {
    SinusoidalPositionalEncoding::new(8, 10, true, DType::F32).forward(&Tensor::zeros(&[2, 12, 8]));
}

#[test]
#[should_panic(expected = "TransformerEncoderLayer: expected src with d_model 8 in the last dim, got shape [4, 2, 6]")]
fn encoder_wrong_width_panics() {
    TransformerEncoderLayer::new(TransformerEncoderLayerOptions::new(8, 2).dim_feedforward(16))
        .forward(&Tensor::zeros(&[4, 2, 6]));
}

#[test]
#[should_panic(expected = "MultiheadAttention: expected key_padding_mask of shape [2, 4]")]
fn encoder_padding_mask_of_wrong_shape_panics() {
    let layer = TransformerEncoderLayer::new(TransformerEncoderLayerOptions::new(8, 2).dim_feedforward(16));
    let kpm = Tensor::zeros_dtype(&[4, 2], DType::Bool);
    layer.forward_with_masks(&Tensor::zeros(&[4, 2, 8]), None, Some(&kpm), false);
}
