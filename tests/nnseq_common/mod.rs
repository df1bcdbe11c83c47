//! Helpers shared by the sequence-layer tests (nn_rnn, nn_attention, nn_transformer): loading PyTorch
//! weights into a module, comparing outputs and gradients with a fixture, and a finite-difference check of
//! every parameter's gradient.
#![allow(dead_code)]

use crate::common;
use serde_json::Value;
use tensorgrad::nn::Module;
use tensorgrad::{DType, Tensor};

/// The fixture's dtype (of its first parameter).
pub fn fixture_dtype(fx: &Value) -> DType {
    let name = fx["names"][0].as_str().unwrap();
    common::tensor(&fx["params"][name]).dtype()
}

/// Copies the fixture's parameters into `module`, checking that the names and their order match PyTorch's.
pub fn load_params(module: &dyn Module, fx: &Value) {
    let names: Vec<String> = module.named_parameters().into_iter().map(|(n, _)| n).collect();
    let expected: Vec<String> =
        fx["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect();
    assert_eq!(names, expected, "parameter names and order differ from PyTorch");
    for (name, p) in module.named_parameters() {
        p.copy_(&common::tensor(&fx["params"][&name]));
    }
}

/// `sum_i sum(outputs_i * weights_i)` with the fixture's weights.
pub fn weighted_loss(outputs: &[Tensor], fx: &Value) -> Tensor {
    let ws = fx["weights"].as_array().unwrap();
    assert_eq!(outputs.len(), ws.len(), "number of outputs");
    let mut loss = Tensor::zeros_dtype(&[], outputs[0].dtype());
    for (o, w) in outputs.iter().zip(ws) {
        loss = loss + (o * &common::tensor(w)).sum();
    }
    loss
}

/// Compares `outputs` with the fixture's, runs the weighted loss backward, and compares every parameter's
/// gradient and the given inputs' gradients (`(fixture key, tensor)`), at the dtype's tolerance.
pub fn check_against_fixture(
    module: &dyn Module,
    fx: &Value,
    outputs: &[Tensor],
    inputs: &[(&str, &Tensor)],
    case: &str,
) {
    for (i, (o, e)) in outputs.iter().zip(fx["outputs"].as_array().unwrap()).enumerate() {
        assert_close_scaled(o, &common::tensor(e), &format!("{case}: output {i}"));
    }
    weighted_loss(outputs, fx).backward();
    for (name, p) in module.named_parameters() {
        let g = p.grad().unwrap_or_else(|| panic!("{case}: {name} got no gradient"));
        assert_close_scaled(&g, &common::tensor(&fx["grads"][&name]), &format!("{case}: grad of {name}"));
        assert!(g.abs().sum().item() > 0.0, "{case}: grad of {name} is all zeros");
    }
    for (key, t) in inputs {
        let g = t.grad().unwrap_or_else(|| panic!("{case}: input {key} got no gradient"));
        assert_close_scaled(&g, &common::tensor(&fx[*key]), &format!("{case}: grad of {key}"));
    }
}

/// `common::assert_close` at the dtype's tolerance, except that in f32 the absolute floor is
/// `rtol * max|expected|`: entries that cancel to ~0 (the attention key bias's gradient is exactly 0 in
/// exact arithmetic) are rounding noise of the tensor's scale in both libraries.
pub fn assert_close_scaled(actual: &Tensor, expected: &Tensor, what: &str) {
    let rtol = common::rtol_for(expected.dtype());
    if expected.dtype() != DType::F32 {
        return common::assert_close(actual, expected, rtol, what);
    }
    assert_eq!(actual.shape(), expected.shape(), "{what}: shape");
    let (a, e) = (actual.to_vec_f64(), expected.to_vec_f64());
    let scale = e.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for (i, (&x, &y)) in a.iter().zip(&e).enumerate() {
        assert!(
            (x - y).abs() <= rtol * (y.abs() + scale),
            "{what}: element {i}: got {x:e}, expected {y:e} (f32, rtol {rtol:e})"
        );
    }
}

/// Checks d loss / d p for every parameter element against central differences (f64), and that every
/// parameter gets a nonzero gradient. `loss` must be a deterministic function of the parameters.
pub fn param_gradcheck(module: &dyn Module, loss: impl Fn() -> Tensor) {
    module.zero_grad();
    loss().backward();
    let eps = 1e-6;
    for (name, p) in module.named_parameters() {
        assert_eq!(p.dtype(), DType::F64, "param_gradcheck runs in f64");
        let analytic = p.grad().unwrap_or_else(|| panic!("{name} got no gradient")).to_vec::<f64>();
        assert!(analytic.iter().any(|&g| g != 0.0), "{name}: gradient is all zeros");
        for (i, &a) in analytic.iter().enumerate() {
            let at = |delta: f64| {
                p.with_slice_mut::<f64, _>(|s| s[i] += delta);
                let v = tensorgrad::no_grad(&loss).item();
                p.with_slice_mut::<f64, _>(|s| s[i] -= delta);
                v
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
            assert!(
                (a - numeric).abs() <= 1e-5 + 1e-3 * numeric.abs(),
                "{name}[{i}]: analytic {a:e} vs numeric {numeric:e}"
            );
        }
    }
    module.zero_grad();
}

/// A random f64 tensor (seeded by the caller).
pub fn randn64(shape: &[usize]) -> Tensor {
    Tensor::randn(shape).to_dtype(DType::F64)
}
