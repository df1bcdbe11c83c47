//! The fused conv2d-with-bias op and the kernel-backed max-pool op against their compositions from
//! primitives (values and every gradient, f64), second derivatives through both, and the max-pool scan
//! rules (ties, NaN) against a naive argmax.

mod common;
mod nn_common;

use common::assert_close;
use nn_common::randn64;
use tensorgrad::nn::functional as F;
use tensorgrad::{gradgradcheck, BackwardOptions, GradcheckOptions, Tensor};

/// Runs `f` on fresh leaf copies of `inputs`, backpropagates `sum(f * weights)` and returns the output and
/// each input's gradient.
fn value_and_grads(f: impl Fn(&[Tensor]) -> Tensor, inputs: &[Tensor], weights: &Tensor) -> (Tensor, Vec<Tensor>) {
    let leaves: Vec<Tensor> = inputs.iter().map(|t| t.detach().requires_grad_()).collect();
    let y = f(&leaves);
    (&y * weights).sum().backward();
    (y.detach(), leaves.iter().map(|t| t.grad().expect("gradient")).collect())
}

#[test]
fn fused_conv2d_bias_matches_conv_plus_broadcast_bias() {
    // (stride, padding, dilation, groups) with a 2-group weight [4, 2, 3, 2]
    for (stride, padding, dilation) in [((1, 1), (0, 0), (1, 1)), ((2, 1), (1, 2), (1, 2)), ((1, 2), (2, 1), (2, 1))] {
        let (x, w, b) = (randn64(&[3, 4, 7, 6]), randn64(&[4, 2, 3, 2]), randn64(&[4]));
        let fused = |t: &[Tensor]| F::conv2d(&t[0], &t[1], Some(&t[2]), stride, padding, dilation, 2);
        let composed =
            |t: &[Tensor]| F::conv2d(&t[0], &t[1], None, stride, padding, dilation, 2) + t[2].reshape([4, 1, 1]);
        let weights = randn64(fused(&[x.clone(), w.clone(), b.clone()]).shape());
        let (y1, g1) = value_and_grads(fused, &[x.clone(), w.clone(), b.clone()], &weights);
        let (y2, g2) = value_and_grads(composed, &[x, w, b], &weights);
        assert_close(&y1, &y2, 1e-12, "conv2d + bias values");
        for (i, (a, e)) in g1.iter().zip(&g2).enumerate() {
            assert_close(a, e, 1e-12, &format!("conv2d + bias gradient of input {i}"));
        }
    }
}

#[test]
fn fused_conv2d_bias_has_exact_second_derivatives() {
    let (x, w, b) = (randn64(&[2, 2, 5, 4]), randn64(&[3, 2, 2, 3]), randn64(&[3]));
    let f = |t: &[Tensor]| F::conv2d(&t[0], &t[1], Some(&t[2]), (1, 1), (1, 0), (1, 1), 1).tanh();
    let inputs = [x.requires_grad_(), w.requires_grad_(), b.requires_grad_()];
    if let Err(e) = gradgradcheck(f, &inputs, GradcheckOptions::default()) {
        panic!("conv2d with bias gradgradcheck: {e}");
    }
}

#[test]
fn fused_conv2d_bias_grad_under_create_graph_equals_plain_backward() {
    // The bias gradient takes the differentiable `sum_dims` path under create_graph and the kernel pass
    // otherwise: both must agree (and the f32 kernel with them).
    for dtype in [tensorgrad::DType::F64, tensorgrad::DType::F32] {
        let x = randn64(&[4, 3, 6, 6]).to_dtype(dtype);
        let w = randn64(&[5, 3, 3, 3]).to_dtype(dtype).detach().requires_grad_();
        let b = randn64(&[5]).to_dtype(dtype).detach().requires_grad_();
        let y = F::conv2d(&x, &w, Some(&b), (1, 1), (1, 1), (1, 1), 1);
        let loss = (&y * &y).sum();
        let g = tensorgrad::grad(&[&loss], &[&w, &b], None, true);
        loss.backward_with(None, BackwardOptions { retain_graph: true, create_graph: false });
        let rtol = if dtype == tensorgrad::DType::F64 { 1e-12 } else { 1e-5 };
        assert_close(&g[0].as_ref().unwrap().detach(), &w.grad().unwrap(), rtol, "dw");
        assert_close(&g[1].as_ref().unwrap().detach(), &b.grad().unwrap(), rtol, "db");
    }
}

/// Max pooling composed from primitives: unfold each window with `narrow`/`slice`, stack, and take `amax`
/// over the window axis (only for windows without padding, stride = kernel).
fn max_pool_composed(x: &Tensor, k: (usize, usize)) -> Tensor {
    let (oh, ow) = (x.shape()[2] / k.0, x.shape()[3] / k.1);
    let mut taps = Vec::new();
    for p in 0..k.0 {
        for q in 0..k.1 {
            let t = x.slice(2, p, p + k.0 * (oh - 1) + 1, k.0);
            taps.push(t.slice(3, q, q + k.1 * (ow - 1) + 1, k.1));
        }
    }
    let refs: Vec<&Tensor> = taps.iter().collect();
    Tensor::stack(&refs, -1).amax(&[-1], false)
}

#[test]
fn max_pool_op_matches_composition() {
    // Distinct values (no ties), odd sizes so the last row/column is dropped.
    let x = randn64(&[2, 3, 9, 7]);
    let weights = randn64(&[2, 3, 3, 2]);
    let (y1, g1) =
        value_and_grads(|t| F::max_pool2d(&t[0], (3, 3), (3, 3), (0, 0)), std::slice::from_ref(&x), &weights);
    let (y2, g2) = value_and_grads(|t| max_pool_composed(&t[0], (3, 3)), &[x], &weights);
    assert_close(&y1, &y2, 0.0, "max_pool2d values");
    assert_close(&g1[0], &g2[0], 1e-15, "max_pool2d gradient");
}

#[test]
fn max_pool_second_derivatives_and_ties() {
    let x = randn64(&[2, 2, 6, 5]).requires_grad_();
    let f = |t: &[Tensor]| F::max_pool2d(&t[0], (2, 2), (2, 1), (1, 0)).tanh();
    if let Err(e) = gradgradcheck(f, std::slice::from_ref(&x), GradcheckOptions::default()) {
        panic!("max_pool2d gradgradcheck: {e}");
    }
    // Ties go to the first maximum in row-major order; a NaN wins.
    let x = Tensor::from_vec(vec![1.0f32, 3.0, 3.0, 0.0, 3.0, 2.0, f32::NAN, 3.0], &[1, 1, 2, 4]).requires_grad_();
    let y = F::max_pool2d(&x, (2, 2), (2, 2), (0, 0));
    let v = y.to_vec::<f32>();
    assert_eq!(v[0], 3.0);
    assert!(v[1].is_nan());
    y.sum().backward();
    assert_eq!(x.grad().unwrap().to_vec::<f32>(), vec![0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
}
