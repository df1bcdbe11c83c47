//! scaled_dot_product_attention and MultiheadAttention against PyTorch fixtures (outputs, averaged weights,
//! gradients of inputs and every parameter), f64 gradchecks with causal and key-padding masks, shape errors.

mod common;
mod nnseq_common;

use nnseq_common::{check_against_fixture, fixture_dtype, load_params, param_gradcheck, randn64};
use tensorgrad::nn::{
    scaled_dot_product_attention, scaled_dot_product_attention_with_weights, Module, MultiheadAttention,
};
use tensorgrad::{gradcheck, DType, GradcheckOptions, Tensor};

#[test]
fn sdpa_matches_pytorch_with_bool_float_and_causal_masks() {
    let fx = common::load_fixture("nnseq/sdpa.json");
    let (bool_mask, float_mask) = (common::tensor(&fx["bool_mask"]), common::tensor(&fx["float_mask"]));
    for (label, case) in fx["cases"].as_object().unwrap() {
        let q = common::tensor(&fx["q"]).requires_grad_();
        let k = common::tensor(&fx["k"]).requires_grad_();
        let v = common::tensor(&fx["v"]).requires_grad_();
        let (mask, causal, scale) = match label.as_str() {
            "bool_mask" => (Some(&bool_mask), false, None),
            "float_mask" => (Some(&float_mask), false, None),
            "causal" => (None, true, None),
            "scaled" => (None, false, Some(0.3)),
            _ => (None, false, None),
        };
        let out = scaled_dot_product_attention(&q, &k, &v, mask, 0.0, causal, scale);
        common::assert_close(&out, &common::tensor(&case["out"]), common::F64_RTOL, &format!("sdpa {label}"));
        (&out * &common::tensor(&case["w"])).sum().backward();
        for (name, t) in [("dq", &q), ("dk", &k), ("dv", &v)] {
            common::assert_close(
                &t.grad().unwrap(),
                &common::tensor(&case[name]),
                common::F64_RTOL,
                &format!("sdpa {label} {name}"),
            );
        }
    }
}

#[test]
fn sdpa_weights_are_rows_of_a_softmax_and_causal() {
    tensorgrad::manual_seed(4);
    let q = randn64(&[3, 4]);
    let (_, w) = scaled_dot_product_attention_with_weights(&q, &q, &q, None, 0.0, true, None);
    let w = w.to_vec::<f64>();
    for i in 0..3 {
        let row = &w[i * 3..(i + 1) * 3];
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(row[i + 1..].iter().all(|&x| x == 0.0), "query {i} sees the future");
    }
}

#[test]
fn sdpa_gradcheck() {
    tensorgrad::manual_seed(8);
    let (q, k, v) = (randn64(&[2, 3, 4]), randn64(&[2, 5, 4]), randn64(&[2, 5, 3]));
    let mask = Tensor::rand(&[3, 5])
        .gt_scalar(0.3)
        .logical_or(&Tensor::from_vec(vec![true, false, false, false, false], &[5]));
    let f = |t: &[Tensor]| scaled_dot_product_attention(&t[0], &t[1], &t[2], Some(&mask), 0.0, false, None);
    gradcheck(f, &[q.clone(), k.clone(), v.clone()], GradcheckOptions::default()).unwrap();
    let f = |t: &[Tensor]| scaled_dot_product_attention(&t[0], &t[1], &t[2], None, 0.0, true, None);
    gradcheck(f, &[q, k, v], GradcheckOptions::default()).unwrap();
}

fn check_mha_fixture(case: &str) {
    let fx = common::load_fixture(&format!("nnseq/{case}.json"));
    let (e, h) = (fx["embed_dim"].as_u64().unwrap() as usize, fx["num_heads"].as_u64().unwrap() as usize);
    let mha = MultiheadAttention::with_options(e, h, 0.0, fx["bias"].as_bool().unwrap(), fixture_dtype(&fx))
        .batch_first(fx["batch_first"].as_bool().unwrap());
    load_params(&mha, &fx);
    let query = common::tensor(&fx["query"]).requires_grad_();
    let self_attn = fx["self_attn"].as_bool().unwrap();
    let (key, value) = if self_attn {
        (query.clone(), query.clone())
    } else {
        (common::tensor(&fx["key"]).requires_grad_(), common::tensor(&fx["value"]).requires_grad_())
    };
    let attn_mask = fx.get("attn_mask").map(common::tensor);
    let kpm = fx.get("key_padding_mask").map(common::tensor);
    let (out, w) = mha.forward_qkv(&query, &key, &value, kpm.as_ref(), true, attn_mask.as_ref(), false);
    let mut inputs = vec![("dquery", &query)];
    if !self_attn {
        inputs.push(("dkey", &key));
        inputs.push(("dvalue", &value));
    }
    check_against_fixture(&mha, &fx, &[out, w.unwrap()], &inputs, case);
}

#[test]
fn multihead_attention_matches_pytorch() {
    for case in ["mha_self_causal_kpm_bf", "mha_cross_float_mask", "mha_cross_kpm_nobias", "mha_self_causal_f32"] {
        check_mha_fixture(case);
    }
}

#[test]
fn is_causal_builds_the_causal_mask() {
    tensorgrad::manual_seed(3);
    let mha = MultiheadAttention::with_options(4, 2, 0.0, true, DType::F64);
    let x = randn64(&[5, 2, 4]);
    let blocked = Tensor::ones_dtype(&[5, 5], DType::Bool);
    let causal = blocked
        .logical_and(&Tensor::arange(0.0, 5.0, 1.0).reshape([1, 5]).gt(&Tensor::arange(0.0, 5.0, 1.0).reshape([5, 1])));
    let (a, wa) = mha.forward_qkv(&x, &x, &x, None, true, None, true);
    let (b, wb) = mha.forward_qkv(&x, &x, &x, None, true, Some(&causal), false);
    assert_eq!(a.to_vec::<f64>(), b.to_vec::<f64>());
    assert_eq!(wa.unwrap().to_vec::<f64>(), wb.unwrap().to_vec::<f64>());
}

#[test]
fn multihead_attention_gradcheck_with_causal_and_padding_masks() {
    tensorgrad::manual_seed(9);
    let mha = MultiheadAttention::with_options(4, 2, 0.0, true, DType::F64).batch_first(true);
    tensorgrad::no_grad(|| {
        for (_, p) in mha.named_parameters() {
            p.add_assign_unrecorded(&(randn64(p.shape()) * 0.1));
        }
    });
    let kpm = Tensor::from_vec(vec![false, false, false, false, false, true], &[2, 3]);
    let (x, kv) = (randn64(&[2, 3, 4]), randn64(&[2, 3, 4]));
    // Self-attention with the causal mask and padding, and cross-attention with padding; both outputs.
    let f = |t: &[Tensor]| {
        let (a, wa) = mha.forward_qkv(&t[0], &t[0], &t[0], Some(&kpm), true, None, true);
        let (b, _) = mha.forward_qkv(&t[0], &t[1], &t[1], Some(&kpm), false, None, false);
        Tensor::cat(&[&a.flatten(0, -1), &wa.unwrap().flatten(0, -1), &b.flatten(0, -1)], 0)
    };
    gradcheck(f, &[x.clone(), kv.clone()], GradcheckOptions::default()).unwrap();
    let w = randn64(&[f(&[x.clone(), kv.clone()]).numel()]);
    param_gradcheck(&mha, || (f(&[x.clone(), kv.clone()]) * &w).sum());
}

#[test]
fn dropout_applies_only_in_training() {
    tensorgrad::manual_seed(1);
    let mha = MultiheadAttention::with_options(8, 2, 0.5, true, DType::F32);
    let x = Tensor::randn(&[4, 2, 8]);
    mha.eval();
    let a = mha.forward(&x).to_vec::<f32>();
    assert_eq!(a, mha.forward(&x).to_vec::<f32>());
    mha.train();
    assert_ne!(a, mha.forward(&x).to_vec::<f32>());
}

#[test]
fn init_follows_pytorch() {
    tensorgrad::manual_seed(0);
    let mha = MultiheadAttention::new(16, 4);
    let p = mha.named_parameters();
    let names: Vec<&str> = p.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]);
    let max_abs = |t: &Tensor| t.to_vec_f64().iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let xavier = (6.0f64 / (16.0 + 48.0)).sqrt();
    assert!(max_abs(&p[0].1) <= xavier && max_abs(&p[0].1) > 0.9 * xavier);
    assert_eq!(max_abs(&p[1].1), 0.0);
    assert!(max_abs(&p[2].1) <= 0.25 && max_abs(&p[2].1) > 0.2);
    assert_eq!(max_abs(&p[3].1), 0.0);
}

#[test]
#[should_panic(
    expected = "MultiheadAttention: expected attn_mask of shape [L, S] = [4, 4] or [N*num_heads, L, S] = [4, 4, 4], got [4, 5]"
)]
fn mask_of_wrong_shape_panics() {
    let mha = MultiheadAttention::new(8, 2);
    let x = Tensor::zeros(&[4, 2, 8]);
    mha.forward_qkv(&x, &x, &x, None, false, Some(&Tensor::ones_dtype(&[4, 5], DType::Bool)), false);
}

#[test]
#[should_panic(
    expected = "MultiheadAttention: expected key_padding_mask of shape [2, 4] ([N, S], true = padding), got [4, 2]"
)]
fn key_padding_mask_of_wrong_layout_panics() {
    let mha = MultiheadAttention::new(8, 2);
    let x = Tensor::zeros(&[4, 2, 8]);
    mha.forward_qkv(&x, &x, &x, Some(&Tensor::ones_dtype(&[4, 2], DType::Bool)), false, None, false);
}

#[test]
#[should_panic(
    expected = "MultiheadAttention: expected query of shape [N, L, E] (batch_first=true) or unbatched [L, E] with E = 8, got [2, 4, 6]"
)]
fn wrong_embed_dim_panics() {
    MultiheadAttention::new(8, 2).batch_first(true).forward(&Tensor::zeros(&[2, 4, 6]));
}

#[test]
#[should_panic(
    expected = "scaled_dot_product_attention: expected attn_mask broadcastable to [..., L, S] = [..., 3, 5], got [3, 4]"
)]
fn sdpa_mask_of_wrong_shape_panics() {
    let (q, k) = (Tensor::zeros(&[3, 2]), Tensor::zeros(&[5, 2]));
    scaled_dot_product_attention(&q, &k, &k, Some(&Tensor::zeros(&[3, 4])), 0.0, false, None);
}
