//! LayerNorm (fused op vs its composition, vs PyTorch) and BatchNorm1d/2d (train/eval, running statistics,
//! vs PyTorch).

mod common;
mod nn_common;

use common::{assert_close, load_fixture, rtol_for, tensor};
use nn_common::{check_layer, gradcheck, panic_message, randn64};
use tensorgrad::nn::functional as F;
use tensorgrad::nn::*;
use tensorgrad::{DType, Tensor};

/// Layer norm over the last `k` dims written with primitive ops only.
fn layer_norm_composed(x: &Tensor, k: usize, w: Option<&Tensor>, b: Option<&Tensor>, eps: f64) -> Tensor {
    let dims: Vec<isize> = (1..=k as isize).map(|d| -d).collect();
    let mean = x.mean_dims(&dims, true);
    let var = x.var_dims(&dims, 0, true);
    let mut y = (x - &mean) / (var + eps).sqrt();
    if let Some(w) = w {
        y = y * w;
    }
    if let Some(b) = b {
        y = y + b;
    }
    y
}

#[test]
fn layer_norm_fused_equals_composition_values_and_gradients() {
    tensorgrad::manual_seed(2);
    let (x, w, b) = (randn64(&[3, 2, 4]), randn64(&[2, 4]), randn64(&[2, 4]));
    let g = Tensor::normal_dtype(&[3, 2, 4], 0.0, 1.0, DType::F64);
    let fused = F::layer_norm(&x, &[2, 4], Some(&w), Some(&b), 1e-5);
    let composed = layer_norm_composed(&x, 2, Some(&w), Some(&b), 1e-5);
    assert_close(&fused, &composed, 1e-12, "values");
    let grads = |y: &Tensor| tensorgrad::grad(&[&(y * &g).sum()], &[&x, &w, &b], None, false);
    let (gf, gc) = (grads(&fused), grads(&composed));
    for (i, name) in ["x", "weight", "bias"].iter().enumerate() {
        assert_close(gf[i].as_ref().unwrap(), gc[i].as_ref().unwrap(), 1e-10, &format!("grad of {name}"));
    }
}

#[test]
fn layer_norm_gradcheck_and_second_derivatives() {
    let (x, w, b) = (randn64(&[2, 5]), randn64(&[5]), randn64(&[5]));
    gradcheck("layer_norm", |t| F::layer_norm(&t[0], &[5], Some(&t[1]), Some(&t[2]), 1e-5), &[x.clone(), w.clone(), b]);
    gradcheck("layer_norm without affine", |t| F::layer_norm(&t[0], &[5], None, None, 1e-5), std::slice::from_ref(&x));
    let f = |t: &[Tensor]| F::layer_norm(&t[0], &[5], Some(&t[1]), None, 1e-5).tanh();
    if let Err(e) = tensorgrad::gradgradcheck(f, &[x.clone(), w.clone()], tensorgrad::GradcheckOptions::default()) {
        panic!("layer_norm gradgradcheck: {e}");
    }
    // create_graph through the fused op equals create_graph through the composition.
    let y = F::layer_norm(&x, &[5], Some(&w), None, 1e-5);
    let yc = layer_norm_composed(&x, 1, Some(&w), None, 1e-5);
    let gg = |y: Tensor| {
        let g = tensorgrad::grad(&[&y.powf(3.0).sum()], &[&x], None, true)[0].clone().unwrap();
        tensorgrad::grad(&[&g.powf(2.0).sum()], &[&x, &w], None, false)
    };
    let (a, c) = (gg(y), gg(yc));
    for i in 0..2 {
        assert_close(a[i].as_ref().unwrap(), c[i].as_ref().unwrap(), 1e-9, "second derivative");
    }
}

#[test]
fn layer_norm_matches_pytorch() {
    let fx = load_fixture("nn/norm.json");
    let ln = LayerNorm::with_options(&[4, 5], 1e-5, true, true, DType::F64);
    check_layer(&ln, &fx["ln_2d"], "ln_2d");
    let ln = LayerNorm::new(&[8]);
    assert_eq!(ln.describe(), fx["ln_f32"]["repr"].as_str().unwrap());
    check_layer(&ln, &fx["ln_f32"], "ln_f32");
    let ln = LayerNorm::with_options(&[6], 1e-5, false, true, DType::F64);
    assert!(ln.named_parameters().is_empty());
    check_layer(&ln, &fx["ln_noaffine"], "ln_noaffine");
    let r = load_fixture("nn/repr.json");
    assert_eq!(LayerNorm::with_options(&[4, 5], 1e-5, false, false, DType::F32).describe(), r["ln2"].as_str().unwrap());
}

#[test]
fn layer_norm_rejects_wrong_trailing_shape() {
    let ln = LayerNorm::new(&[4]);
    let msg = panic_message(|| {
        ln.forward(&Tensor::zeros(&[2, 3]));
    });
    assert!(msg.contains("LayerNorm") && msg.contains("[4]") && msg.contains("[2, 3]"), "{msg}");
}

fn bn_for(name: &str, case: &serde_json::Value) -> Box<dyn Module> {
    let dtype = tensor(&case["out"]).dtype();
    let c = tensor(&case["params"]["weight"]).numel();
    match name {
        "bn1d_3d" => Box::new(BatchNorm1d::with_options(c, 1e-3, Some(0.3), true, true, dtype)),
        n if n.starts_with("bn1d") => Box::new(BatchNorm1d::with_options(c, 1e-5, Some(0.1), true, true, dtype)),
        _ => Box::new(BatchNorm2d::with_options(c, 1e-5, Some(0.1), true, true, dtype)),
    }
}

#[test]
fn batch_norm_matches_pytorch_in_train_and_eval() {
    let fx = load_fixture("nn/norm.json");
    for name in ["bn1d_2d", "bn1d_3d", "bn2d", "bn2d_f32"] {
        let case = &fx[name];
        let bn = bn_for(name, case);
        assert_eq!(bn.describe(), case["repr"].as_str().unwrap());
        assert!(bn.is_training());
        // One training step: batch statistics, gradients, running statistics updated.
        check_layer(bn.as_ref(), case, name);
        let rtol = rtol_for(tensor(&case["out"]).dtype());
        let buffers = bn.named_buffers();
        let names: Vec<&str> = buffers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["running_mean", "running_var", "num_batches_tracked"]);
        for (n, b) in &buffers {
            assert_close(b, &tensor(&case["buffers_after"][n]), rtol, &format!("{name}: {n}"));
        }
        // Eval: running statistics, a different output from the batch statistics.
        bn.eval();
        let xe = tensor(&case["x_eval"]);
        let ye = bn.forward(&xe);
        assert_close(&ye, &tensor(&case["out_eval"]), rtol, &format!("{name}: eval output"));
        bn.train();
        let yt = tensorgrad::no_grad(|| bn.forward(&xe));
        assert!(
            yt.to_vec_f64().iter().zip(ye.to_vec_f64()).any(|(a, b)| (a - b).abs() > 1e-3),
            "{name}: train differs"
        );
    }
}

#[test]
fn batch_norm_eval_does_not_touch_running_stats() {
    let bn = BatchNorm2d::new(2);
    bn.eval();
    let before: Vec<Vec<f64>> = bn.named_buffers().iter().map(|(_, b)| b.to_vec_f64()).collect();
    bn.forward(&Tensor::randn(&[2, 2, 3, 3]));
    let after: Vec<Vec<f64>> = bn.named_buffers().iter().map(|(_, b)| b.to_vec_f64()).collect();
    assert_eq!(before, after);
}

#[test]
fn batch_norm_gradcheck_train_and_eval() {
    let (x, w, b) = (randn64(&[3, 2, 2, 2]), randn64(&[2]), randn64(&[2]));
    gradcheck(
        "batch_norm train",
        |t| F::batch_norm(&t[0], None, None, Some(&t[1]), Some(&t[2]), true, 0.1, 1e-5),
        &[x.clone(), w.clone(), b.clone()],
    );
    let rm = Tensor::from_vec(vec![0.3, -0.2], &[2]);
    let rv = Tensor::from_vec(vec![1.5, 0.7], &[2]);
    gradcheck(
        "batch_norm eval",
        |t| F::batch_norm(&t[0], Some(&rm), Some(&rv), Some(&t[1]), Some(&t[2]), false, 0.1, 1e-5),
        &[x, w, b],
    );
    gradcheck(
        "batch_norm 1d",
        |t| F::batch_norm(&t[0], None, None, Some(&t[1]), None, true, 0.1, 1e-5),
        &[randn64(&[4, 3]), randn64(&[3])],
    );
}

#[test]
fn batch_norm_rejects_bad_input() {
    let bn = BatchNorm1d::new(3);
    let msg = panic_message(|| {
        bn.forward(&Tensor::zeros(&[4, 2]));
    });
    assert!(msg.contains("BatchNorm1d") && msg.contains("expected 3 channels") && msg.contains("[4, 2]"), "{msg}");
    let msg = panic_message(|| {
        bn.forward(&Tensor::zeros(&[4, 3, 2, 2]));
    });
    assert!(msg.contains("BatchNorm1d") && msg.contains("[N, C]") && msg.contains("[4, 3, 2, 2]"), "{msg}");
    let msg = panic_message(|| {
        BatchNorm2d::new(3).forward(&Tensor::zeros(&[1, 3, 1, 1]));
    });
    assert!(msg.contains("more than 1 value per channel"), "{msg}");
}

#[test]
fn batch_norm_without_momentum_keeps_a_cumulative_average() {
    let bn = BatchNorm1d::with_options(2, 1e-5, None, true, true, DType::F64);
    assert!(bn.describe().contains("momentum=None"), "{}", bn.describe());
    let a = Tensor::from_vec(vec![1.0, 10.0, 3.0, 20.0], &[2, 2]);
    let b = Tensor::from_vec(vec![5.0, 0.0, 7.0, 2.0], &[2, 2]);
    bn.forward(&a);
    bn.forward(&b);
    // Batch means [2, 15] and [6, 1]; unbiased variances [2, 50] and [2, 2].
    assert_close(bn.running_mean.as_ref().unwrap(), &Tensor::from_vec(vec![4.0, 8.0], &[2]), 1e-12, "mean");
    assert_close(bn.running_var.as_ref().unwrap(), &Tensor::from_vec(vec![2.0, 26.0], &[2]), 1e-12, "var");
    assert_eq!(bn.num_batches_tracked.as_ref().unwrap().to_vec::<i64>(), vec![2]);
}
