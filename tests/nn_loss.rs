//! Losses against PyTorch (`tests/fixtures/nn/loss.json`), f64 gradchecks and error messages.

mod common;
mod nn_common;

use common::{assert_close, load_fixture, tensor, F64_RTOL};
use nn_common::{gradcheck, panic_message, randn64};
use serde_json::Value;
use tensorgrad::nn::functional as F;
use tensorgrad::nn::*;
use tensorgrad::{DType, Tensor};

fn reduction(opts: &Value) -> Reduction {
    match opts["reduction"].as_str().unwrap_or("mean") {
        "none" => Reduction::None,
        "sum" => Reduction::Sum,
        "batchmean" => Reduction::BatchMean,
        _ => Reduction::Mean,
    }
}

fn opt_tensor(opts: &Value, key: &str) -> Option<Tensor> {
    opts.get(key).map(tensor)
}

/// Our loss for a fixture case, chosen by the case's name.
fn our_loss(name: &str, x: &Tensor, target: &Tensor, opts: &Value) -> Tensor {
    let r = reduction(opts);
    let f = |k: &str| opts[k].as_f64().unwrap();
    let w = opt_tensor(opts, "weight");
    let family = name.split('_').next().unwrap();
    match family {
        "mse" => F::mse_loss(x, target, r),
        "l1" => F::l1_loss(x, target, r),
        "smooth" => F::smooth_l1_loss(x, target, r, f("beta")),
        "huber" => F::huber_loss(x, target, r, f("delta")),
        "ce" => F::cross_entropy(
            x,
            target,
            w.as_ref(),
            opts.get("ignore_index").map_or(-100, |v| v.as_i64().unwrap()),
            r,
            opts.get("label_smoothing").map_or(0.0, |v| v.as_f64().unwrap()),
        ),
        "nll" => F::nll_loss(x, target, w.as_ref(), -100, r),
        "bce" if name.starts_with("bce_logits") => {
            F::binary_cross_entropy_with_logits(x, target, w.as_ref(), opt_tensor(opts, "pos_weight").as_ref(), r)
        }
        "bce" => F::binary_cross_entropy(x, target, w.as_ref(), r),
        "kl" => F::kl_div(x, target, r, opts.get("log_target").is_some_and(|v| v.as_bool().unwrap())),
        other => panic!("unknown loss family {other}"),
    }
}

#[test]
fn losses_match_pytorch() {
    let fx = load_fixture("nn/loss.json");
    let cases = fx.as_object().unwrap();
    assert!(cases.len() > 45);
    for (name, case) in cases {
        let x = tensor(&case["x"]).requires_grad_();
        let target = tensor(&case["target"]);
        let out = our_loss(name, &x, &target, &case["opts"]);
        assert_close(&out, &tensor(&case["out"]), F64_RTOL, &format!("{name}: loss"));
        (&out * &tensor(&case["g"])).sum().backward();
        assert_close(&x.grad().unwrap(), &tensor(&case["grad"]), F64_RTOL, &format!("{name}: input grad"));
    }
}

#[test]
fn loss_modules_use_pytorch_defaults() {
    let fx = load_fixture("nn/loss.json");
    let x = tensor(&fx["ce_mean"]["x"]);
    let t = tensor(&fx["ce_mean"]["target"]);
    assert_close(
        &CrossEntropyLoss::new().forward(&x, &t),
        &tensor(&fx["ce_mean"]["out"]),
        F64_RTOL,
        "CrossEntropyLoss",
    );
    let smooth = CrossEntropyLoss { label_smoothing: 0.1, ..CrossEntropyLoss::new() };
    assert_close(&smooth.forward(&x, &t), &tensor(&fx["ce_smooth_mean"]["out"]), F64_RTOL, "label smoothing");
    let (a, b) = (tensor(&fx["mse_mean"]["x"]), tensor(&fx["mse_mean"]["target"]));
    assert_close(&MSELoss::new().forward(&a, &b), &tensor(&fx["mse_mean"]["out"]), F64_RTOL, "MSELoss");
    assert_close(&L1Loss::new().forward(&a, &b), &tensor(&fx["l1_mean"]["out"]), F64_RTOL, "L1Loss");
    let sl1 = SmoothL1Loss { beta: 0.5, ..SmoothL1Loss::new() };
    assert_close(&sl1.forward(&a, &b), &tensor(&fx["smooth_l1_mean"]["out"]), F64_RTOL, "SmoothL1Loss");
    let hub = HuberLoss { delta: 0.7, ..HuberLoss::new() };
    assert_close(&hub.forward(&a, &b), &tensor(&fx["huber_mean"]["out"]), F64_RTOL, "HuberLoss");
    let kl = KLDivLoss { reduction: Reduction::BatchMean, log_target: false };
    let (p, q) = (tensor(&fx["kl_batchmean"]["x"]), tensor(&fx["kl_batchmean"]["target"]));
    assert_close(&kl.forward(&p, &q), &tensor(&fx["kl_batchmean"]["out"]), F64_RTOL, "KLDivLoss");
    let (p, y) = (tensor(&fx["bce_mean"]["x"]), tensor(&fx["bce_mean"]["target"]));
    assert_close(&BCELoss::new().forward(&p, &y), &tensor(&fx["bce_mean"]["out"]), F64_RTOL, "BCELoss");
    let (z, y) = (tensor(&fx["bce_logits_mean"]["x"]), tensor(&fx["bce_logits_mean"]["target"]));
    let bl = BCEWithLogitsLoss::new();
    assert_close(&bl.forward(&z, &y), &tensor(&fx["bce_logits_mean"]["out"]), F64_RTOL, "BCEWithLogitsLoss");
    let lp = x.log_softmax(1);
    assert_close(&NLLLoss::new().forward(&lp, &t), &tensor(&fx["ce_mean"]["out"]), F64_RTOL, "NLLLoss");
    assert_eq!(CrossEntropyLoss::new().describe(), "CrossEntropyLoss()");
    assert_eq!(CrossEntropyLoss::new().ignore_index, -100);
}

#[test]
fn cross_entropy_in_f32_matches_f64() {
    let fx = load_fixture("nn/loss.json");
    let x = tensor(&fx["ce_smooth_mean"]["x"]);
    let t = tensor(&fx["ce_smooth_mean"]["target"]);
    let out = F::cross_entropy(&x.to_dtype(DType::F32), &t, None, -100, Reduction::Mean, 0.1);
    assert_eq!(out.dtype(), DType::F32);
    assert_close(&out, &tensor(&fx["ce_smooth_mean"]["out"]), common::F32_RTOL, "f32 cross-entropy");
}

#[test]
fn losses_gradcheck() {
    let (a, b) = (randn64(&[3, 4]), Tensor::normal_dtype(&[3, 4], 0.0, 1.0, DType::F64));
    let idx = Tensor::from_vec(vec![2i64, -100, 0], &[3]);
    let w = Tensor::from_vec(vec![0.5, 2.0, 1.0, 1.5], &[4]);
    let probs = Tensor::normal_dtype(&[3, 4], 0.0, 1.0, DType::F64).softmax(1);
    let y01 = Tensor::from_vec(vec![1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.3, 0.7, 1.0, 0.0], &[3, 4]);
    let pw = Tensor::from_vec(vec![2.0, 0.5, 1.0, 3.0], &[4]);
    type Case<'a> = (&'a str, Box<dyn Fn(&Tensor) -> Tensor + 'a>);
    let cases: Vec<Case> = vec![
        ("mse", Box::new(|x| F::mse_loss(x, &b, Reduction::Mean))),
        ("l1", Box::new(|x| F::l1_loss(x, &b, Reduction::Sum))),
        ("smooth_l1", Box::new(|x| F::smooth_l1_loss(x, &b, Reduction::None, 0.8))),
        ("huber", Box::new(|x| F::huber_loss(x, &b, Reduction::Mean, 0.6))),
        ("ce", Box::new(|x| F::cross_entropy(x, &idx, Some(&w), -100, Reduction::Mean, 0.2))),
        ("ce_probs", Box::new(|x| F::cross_entropy(x, &probs, Some(&w), -100, Reduction::None, 0.1))),
        ("nll", Box::new(|x| F::nll_loss(&x.log_softmax(1), &idx, None, -100, Reduction::Mean))),
        ("bce", Box::new(|x| F::binary_cross_entropy(&x.sigmoid(), &y01, None, Reduction::Mean))),
        ("bce_logits", Box::new(|x| F::binary_cross_entropy_with_logits(x, &y01, None, Some(&pw), Reduction::Sum))),
        ("kl", Box::new(|x| F::kl_div(&x.log_softmax(1), &probs, Reduction::BatchMean, false))),
        ("kl_log_target", Box::new(|x| F::kl_div(x, &probs.log(), Reduction::Mean, true))),
    ];
    for (name, f) in &cases {
        gradcheck(name, |t| f(&t[0]), std::slice::from_ref(&a));
    }
    // Also with respect to the class weights and the probability targets.
    gradcheck(
        "ce weight",
        |t| F::cross_entropy(&a.detach(), &idx, Some(&t[0]), -100, Reduction::Sum, 0.0),
        &[w.clone().requires_grad_()],
    );
}

#[test]
fn cross_entropy_gradient_is_softmax_minus_one_hot() {
    let x = randn64(&[2, 3]);
    let t = Tensor::from_vec(vec![1i64, 2], &[2]);
    F::cross_entropy(&x, &t, None, -100, Reduction::Sum, 0.0).backward();
    let onehot = Tensor::from_vec(vec![0.0, 1.0, 0.0, 0.0, 0.0, 1.0], &[2, 3]);
    assert_close(&x.grad().unwrap(), &(x.softmax(1) - onehot), 1e-12, "softmax - onehot");
}

#[test]
fn losses_reject_bad_shapes_and_targets() {
    let x = Tensor::zeros(&[3, 4]);
    let msg = panic_message(|| {
        F::mse_loss(&x, &Tensor::zeros(&[4, 3]), Reduction::Mean);
    });
    assert!(msg.contains("MSELoss") && msg.contains("[3, 4]") && msg.contains("[4, 3]"), "{msg}");
    let msg = panic_message(|| {
        F::cross_entropy(&x, &Tensor::from_vec(vec![0i64, 1], &[2]), None, -100, Reduction::Mean, 0.0);
    });
    assert!(msg.contains("CrossEntropyLoss") && msg.contains("[3]") && msg.contains("[2]"), "{msg}");
    let msg = panic_message(|| {
        F::cross_entropy(&x, &Tensor::from_vec(vec![0i64, 4, 1], &[3]), None, -100, Reduction::Mean, 0.0);
    });
    assert!(msg.contains("CrossEntropyLoss") && msg.contains("target 4 is out of bounds for 4 classes"), "{msg}");
    let msg = panic_message(|| {
        F::nll_loss(&x, &Tensor::zeros(&[3]), None, -100, Reduction::Mean);
    });
    assert!(msg.contains("NLLLoss") && msg.contains("int64"), "{msg}");
    let msg = panic_message(|| {
        F::mse_loss(&x, &x, Reduction::BatchMean);
    });
    assert!(msg.contains("MSELoss") && msg.contains("batchmean"), "{msg}");
}

/// Cross-entropy (mean reduction) composed from primitive ops only: log_softmax, gather-based NLL and the
/// smoothing term, divided by the total weight of the kept targets.
fn cross_entropy_composed(x: &Tensor, t: &[i64], w: &[f64], ignore: i64, eps: f64) -> Tensor {
    let c = x.shape()[1];
    let logp = x.log_softmax(1);
    let wt = Tensor::from_vec(w.to_vec(), &[1, c]);
    let (mut total, mut denom) = (Tensor::zeros_dtype(&[], DType::F64), 0.0);
    for (i, &y) in t.iter().enumerate() {
        if y == ignore {
            continue;
        }
        let row = logp.narrow(0, i, 1);
        let nll = -row.narrow(1, y as usize, 1).sum() * w[y as usize];
        let smooth = -(&row * &wt).sum();
        total = total + nll * (1.0 - eps) + smooth * (eps / c as f64);
        denom += w[y as usize];
    }
    total / denom
}

#[test]
fn fused_cross_entropy_equals_composition_values_and_gradients() {
    tensorgrad::manual_seed(4);
    let t = [2i64, -100, 0, 3, 3];
    let target = Tensor::from_vec(t.to_vec(), &[5]);
    for (eps, weights) in
        [(0.0, None), (0.15, None), (0.0, Some(vec![0.5, 2.0, 1.0, 1.5])), (0.3, Some(vec![0.2, 1.0, 3.0, 0.7]))]
    {
        let x = randn64(&[5, 4]);
        let wt = weights.as_ref().map(|w: &Vec<f64>| Tensor::from_vec(w.clone(), &[4]));
        let fused = F::cross_entropy(&x, &target, wt.as_ref(), -100, Reduction::Mean, eps);
        assert_eq!(fused.op_name(), Some("div"), "mean of the fused per-row op");
        let w = weights.clone().unwrap_or(vec![1.0; 4]);
        let composed = cross_entropy_composed(&x, &t, &w, -100, eps);
        assert_close(&fused, &composed, 1e-12, &format!("value eps={eps}"));
        let gf = tensorgrad::grad(&[&fused], &[&x], None, false)[0].clone().unwrap();
        let gc = tensorgrad::grad(&[&composed], &[&x], None, false)[0].clone().unwrap();
        assert_close(&gf, &gc, 1e-10, &format!("grad eps={eps}"));
        gradcheck(
            "fused cross_entropy",
            |ts| F::cross_entropy(&ts[0], &target, wt.as_ref(), -100, Reduction::None, eps),
            std::slice::from_ref(&x),
        );
        if let Err(e) = tensorgrad::gradgradcheck(
            |ts| F::cross_entropy(&ts[0], &target, wt.as_ref(), -100, Reduction::Sum, eps),
            std::slice::from_ref(&x),
            tensorgrad::GradcheckOptions::default(),
        ) {
            panic!("fused cross_entropy gradgradcheck: {e}");
        }
    }
}
