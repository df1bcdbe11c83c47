//! Finite-difference checks of analytic gradients, in f64.
//!
//! numeric:  dy_o/dx_j ~ (f(x + eps e_j)_o - f(x - eps e_j)_o) / (2 eps)     (central differences)
//! analytic: row o of the Jacobian from one backward with grad_output = e_o
//! pass:     |analytic - numeric| <= atol + rtol * |numeric| for every entry

use super::engine::grad_impl;
use crate::tensor::{DType, Tensor};
use std::fmt;

/// Step and tolerances for [`gradcheck`] (PyTorch's defaults).
#[derive(Clone, Copy, Debug)]
pub struct GradcheckOptions {
    /// Finite-difference step.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance.
    pub rtol: f64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions { eps: 1e-6, atol: 1e-5, rtol: 1e-3 }
    }
}

/// The first Jacobian entry where the analytic and numeric gradients disagree.
#[derive(Clone, Debug)]
pub struct GradcheckError {
    /// Which input (position in the list given to `gradcheck`).
    pub input: usize,
    /// The input element's multi-index.
    pub input_index: Vec<usize>,
    /// The output element's multi-index.
    pub output_index: Vec<usize>,
    /// d output / d input from backward.
    pub analytic: f64,
    /// The central-difference estimate.
    pub numeric: f64,
}

impl GradcheckError {
    /// `|analytic - numeric|`.
    pub fn error(&self) -> f64 {
        (self.analytic - self.numeric).abs()
    }
}

impl fmt::Display for GradcheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gradcheck failed for input {} at index {:?} (output index {:?}): analytic {:.10e}, numeric {:.10e}, error {:.3e}",
            self.input,
            self.input_index,
            self.output_index,
            self.analytic,
            self.numeric,
            self.error()
        )
    }
}

impl std::error::Error for GradcheckError {}

fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for k in (0..shape.len()).rev() {
        idx[k] = i % shape[k].max(1);
        i /= shape[k].max(1);
    }
    idx
}

/// Fresh f64 leaves with the inputs' values; those that require grad (or all float inputs, if none does)
/// are the ones checked.
fn f64_leaves(inputs: &[Tensor]) -> (Vec<Tensor>, Vec<usize>) {
    let any = inputs.iter().any(|t| t.requires_grad());
    let mut checked = Vec::new();
    let leaves = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if !t.dtype().is_float() {
                return t.clone();
            }
            let leaf = Tensor::from_vec(t.to_vec_f64(), t.shape());
            if t.requires_grad() || !any {
                checked.push(i);
                leaf.set_requires_grad(true);
            }
            leaf
        })
        .collect();
    (leaves, checked)
}

/// Checks the gradients of `f` at `inputs` against central finite differences, in f64.
///
/// Float inputs are copied to f64 leaves; those with `requires_grad` are checked (all float inputs when
/// none has it). `f` may apply views first (transpose, slice, expand) to test non-contiguous paths.
pub fn gradcheck(
    f: impl Fn(&[Tensor]) -> Tensor,
    inputs: &[Tensor],
    options: GradcheckOptions,
) -> Result<(), GradcheckError> {
    let (leaves, checked) = f64_leaves(inputs);
    check(&f, &leaves, &checked, options, true)
}

/// `f` is evaluated without recording for the numeric side, unless it differentiates internally
/// (`evaluate_without_graph == false`, for gradgradcheck).
fn check(
    f: &impl Fn(&[Tensor]) -> Tensor,
    leaves: &[Tensor],
    checked: &[usize],
    options: GradcheckOptions,
    evaluate_without_graph: bool,
) -> Result<(), GradcheckError> {
    let out = f(leaves);
    assert_eq!(
        out.dtype(),
        DType::F64,
        "gradcheck: the function must return a float64 tensor when given float64 inputs"
    );
    let out_shape = out.shape().to_vec();
    let n_out = out.numel();
    let targets: Vec<&Tensor> = checked.iter().map(|&i| &leaves[i]).collect();

    // Analytic Jacobian rows (one backward per output element, graph retained).
    let mut analytic: Vec<Vec<Vec<f64>>> = Vec::with_capacity(n_out);
    for o in 0..n_out {
        let mut onehot = vec![0.0; n_out];
        onehot[o] = 1.0;
        let seed = Tensor::from_vec(onehot, &out_shape);
        let grads = if out.requires_grad() {
            grad_impl(&[&out], &targets, Some(&[&seed]), true, false)
        } else {
            vec![None; targets.len()]
        };
        analytic.push(
            grads
                .into_iter()
                .zip(&targets)
                .map(|(g, t)| g.map_or_else(|| vec![0.0; t.numel()], |g| g.to_vec_f64()))
                .collect(),
        );
    }
    drop(out);

    // Numeric columns, perturbing one element at a time.
    for (slot, &i) in checked.iter().enumerate() {
        let leaf = &leaves[i];
        for j in 0..leaf.numel() {
            let original = leaf.with_slice::<f64, _>(|s| s[j]);
            let eval = |v: f64| {
                leaf.with_slice_mut::<f64, _>(|s| s[j] = v);
                if evaluate_without_graph {
                    crate::no_grad(|| f(leaves)).to_vec_f64()
                } else {
                    f(leaves).to_vec_f64()
                }
            };
            let plus = eval(original + options.eps);
            let minus = eval(original - options.eps);
            leaf.with_slice_mut::<f64, _>(|s| s[j] = original);
            for o in 0..n_out {
                let numeric = (plus[o] - minus[o]) / (2.0 * options.eps);
                let a = analytic[o][slot][j];
                let within = (a - numeric).abs() <= options.atol + options.rtol * numeric.abs();
                if !within {
                    return Err(GradcheckError {
                        input: i,
                        input_index: unravel(j, leaf.shape()),
                        output_index: unravel(o, &out_shape),
                        analytic: a,
                        numeric,
                    });
                }
            }
        }
    }
    Ok(())
}

/// Checks second derivatives: gradchecks `(inputs, v) -> grad(f(inputs), inputs, v, create_graph)` with a
/// random `v`, so the backward of every op on the way must itself be differentiable and correct.
pub fn gradgradcheck(
    f: impl Fn(&[Tensor]) -> Tensor,
    inputs: &[Tensor],
    options: GradcheckOptions,
) -> Result<(), GradcheckError> {
    let (mut leaves, checked) = f64_leaves(inputs);
    let out_shape = crate::no_grad(|| f(&leaves)).shape().to_vec();
    let v = Tensor::normal_dtype(&out_shape, 0.0, 1.0, DType::F64);
    v.set_requires_grad(true);
    leaves.push(v);
    let v_index = leaves.len() - 1;
    let first_order = |xs: &[Tensor]| -> Tensor {
        let out = f(&xs[..v_index]);
        let targets: Vec<&Tensor> = checked.iter().map(|&i| &xs[i]).collect();
        let grads = if out.requires_grad() {
            grad_impl(&[&out], &targets, Some(&[&xs[v_index]]), true, true)
        } else {
            vec![None; targets.len()]
        };
        let flat: Vec<Tensor> =
            grads.into_iter().zip(&targets).map(|(g, t)| g.unwrap_or_else(|| t.zeros_like()).reshape([-1])).collect();
        Tensor::cat(&flat.iter().collect::<Vec<_>>(), 0)
    };
    let mut all_checked = checked.clone();
    all_checked.push(v_index);
    check(&first_order, &leaves, &all_checked, options, false)
}
