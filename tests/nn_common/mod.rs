//! Helpers shared by the `nn_*` tests: load a PyTorch layer case into one of our modules and compare the
//! output and every gradient.
#![allow(dead_code)]

use crate::common::{assert_close, rtol_for, tensor};
use serde_json::Value;
use tensorgrad::nn::Module;
use tensorgrad::{GradcheckOptions, Tensor};

/// Copies the fixture's parameters into `module` (checking names and order against PyTorch's).
pub fn load_params(module: &dyn Module, case: &Value) {
    let names: Vec<String> = module.named_parameters().into_iter().map(|(n, _)| n).collect();
    let expected: Vec<String> =
        case["param_names"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(names, expected, "parameter names and order match PyTorch's");
    for (name, p) in module.named_parameters() {
        let src = tensor(&case["params"][&name]);
        assert_eq!(p.shape(), src.shape(), "{name}: shape matches PyTorch's layout");
        p.copy_(&src);
    }
}

/// Loads the parameters, runs forward on the fixture's input and backward of `sum(out * g)`, and compares
/// the output and the gradients of the input and of every parameter (each must also be nonzero).
pub fn check_layer(module: &dyn Module, case: &Value, what: &str) {
    load_params(module, case);
    module.zero_grad();
    let x = tensor(&case["x"]);
    let x = if x.dtype().is_float() { x.requires_grad_() } else { x };
    let out = module.forward(&x);
    let expected = tensor(&case["out"]);
    let rtol = rtol_for(expected.dtype());
    assert_close(&out, &expected, rtol, &format!("{what}: output"));
    (&out * &tensor(&case["g"])).sum().backward();
    if x.requires_grad() {
        assert_close(
            &x.grad().expect("input gradient"),
            &tensor(&case["grads"]["x"]),
            rtol,
            &format!("{what}: input grad"),
        );
    }
    for (name, p) in module.named_parameters() {
        let g = p.grad().unwrap_or_else(|| panic!("{what}: {name} received no gradient"));
        assert!(g.to_vec_f64().iter().any(|&v| v != 0.0), "{what}: {name} gradient is all zero");
        assert_close(&g, &tensor(&case["grads"][&name]), rtol, &format!("{what}: grad of {name}"));
    }
}

/// gradcheck with the default options, panicking with the failure.
#[track_caller]
pub fn gradcheck(what: &str, f: impl Fn(&[Tensor]) -> Tensor, inputs: &[Tensor]) {
    if let Err(e) = tensorgrad::gradcheck(f, inputs, GradcheckOptions::default()) {
        panic!("{what}: {e}");
    }
}

/// An f64 leaf of `shape` with N(0, 1) entries that requires grad.
pub fn randn64(shape: &[usize]) -> Tensor {
    Tensor::normal_dtype(shape, 0.0, 1.0, tensorgrad::DType::F64).requires_grad_()
}

/// The panic message of `f`.
pub fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let err = std::panic::catch_unwind(f).expect_err("expected a panic");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}
