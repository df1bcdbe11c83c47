//! Gradient clipping against `torch.nn.utils.clip_grad_norm_` / `clip_grad_value_` (fixture:
//! tests/fixtures/optim/gen_optim.py).

mod common;

use tensorgrad::optim::{clip_grad_norm_, clip_grad_value_};
use tensorgrad::{DType, Tensor};

fn params_with_grads(fx: &serde_json::Value) -> Vec<Tensor> {
    fx["grads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let g = common::tensor(g);
            let p = Tensor::zeros_dtype(g.shape(), DType::F64).requires_grad_();
            p.set_grad(Some(g));
            p
        })
        .collect()
}

#[test]
fn clip_grad_norm_matches_pytorch_for_every_norm_type() {
    let fx = common::load_fixture("optim/clip.json");
    for case in fx["norm_cases"].as_array().unwrap() {
        let params = params_with_grads(&fx);
        let norm_type = match &case["norm_type"] {
            serde_json::Value::String(s) if s == "inf" => f64::INFINITY,
            v => v.as_f64().unwrap(),
        };
        let max_norm = case["max_norm"].as_f64().unwrap();
        let total = clip_grad_norm_(&params, max_norm, norm_type);
        let expected = case["total_norm"].as_f64().unwrap();
        assert!((total - expected).abs() <= common::F64_RTOL * expected, "norm {norm_type}: {total} vs {expected}");
        for (i, (p, e)) in params.iter().zip(case["grads"].as_array().unwrap()).enumerate() {
            let what = format!("max_norm {max_norm} norm {norm_type}: grad {i}");
            common::assert_close(&p.grad().unwrap(), &common::tensor(e), common::F64_RTOL, &what);
        }
    }
}

#[test]
fn clip_grad_value_matches_pytorch() {
    let fx = common::load_fixture("optim/clip.json");
    let params = params_with_grads(&fx);
    clip_grad_value_(&params, fx["value_case"]["clip_value"].as_f64().unwrap());
    for (p, e) in params.iter().zip(fx["value_case"]["grads"].as_array().unwrap()) {
        common::assert_close(&p.grad().unwrap(), &common::tensor(e), common::F64_RTOL, "clip_grad_value_");
    }
}

#[test]
fn clipping_a_broadcast_gradient_does_not_touch_shared_storage() {
    // Gradients can be expanded views (sum's backward); clipping writes a fresh tensor.
    let p = Tensor::zeros(&[2, 3]).requires_grad_();
    p.sum().backward();
    let before = p.grad().unwrap();
    clip_grad_norm_(std::slice::from_ref(&p), 1.0, 2.0);
    let after = p.grad().unwrap().to_vec::<f32>();
    let expected = 1.0 / (6.0f64.sqrt() + 1e-6);
    assert!(after.iter().all(|&x| (x as f64 - expected).abs() < 1e-6), "{after:?}");
    assert_eq!(before.to_vec::<f32>(), vec![1.0; 6]);
}
