//! Gradient clipping (`torch.nn.utils.clip_grad_norm_`, `clip_grad_value_`).
//!
//! By norm, over all gradients `g_i` together:
//! ```text
//! n_i   = ||g_i||_p                        per tensor (p = inf: max |g|)
//! total = ||(n_1, .., n_k)||_p
//! coef  = min(max_norm / (total + 1e-6), 1)
//! g_i   = g_i * coef
//! ```
//! By value: `g = clamp(g, -v, v)`. Parameters without a gradient are skipped. The clipped gradient is
//! written as a fresh contiguous tensor (gradients may be broadcast views that share storage).

use crate::tensor::{Element, Tensor};

/// Scales the gradients of `params` together so their combined `norm_type`-norm is at most `max_norm`, and
/// returns the norm before clipping (`f64::INFINITY` or NaN pass through, as in PyTorch with
/// `error_if_nonfinite=False`). `norm_type` may be `f64::INFINITY`.
///
/// ```
/// use tensorgrad::optim::clip_grad_norm_;
/// use tensorgrad::Tensor;
/// let p = Tensor::zeros(&[2]).requires_grad_();
/// p.set_grad(Some(Tensor::from_vec(vec![3.0f32, 4.0], &[2])));
/// let total = clip_grad_norm_(&[p.clone()], 1.0, 2.0);
/// assert!((total - 5.0).abs() < 1e-6);
/// assert!((p.grad().unwrap().to_vec::<f32>()[0] - 0.6).abs() < 1e-5);
/// ```
pub fn clip_grad_norm_(params: &[Tensor], max_norm: f64, norm_type: f64) -> f64 {
    let grads: Vec<(Tensor, Tensor)> = params.iter().filter_map(|p| p.grad().map(|g| (p.clone(), g))).collect();
    if grads.is_empty() {
        return 0.0;
    }
    let norms: Vec<f64> = grads
        .iter()
        .map(|(_, g)| {
            crate::dispatch_float!(g.dtype(), "clip_grad_norm_", T => g.with_slice::<T, _>(|s| {
                let n = vector_norm(s.iter().map(|x| x.to_f64()), norm_type);
                T::from_f64(n).to_f64()
            }))
        })
        .collect();
    let total = vector_norm(norms.iter().copied(), norm_type);
    let raw = max_norm / (total + 1e-6);
    // torch.clamp(max=1) keeps NaN (Rust's f64::min would drop it).
    let coef = if raw.is_nan() { raw } else { raw.min(1.0) };
    for (p, g) in &grads {
        p.set_grad(Some(map_grad(g, |x| x * coef)));
    }
    total
}

/// Clamps every gradient of `params` elementwise into `[-clip_value, clip_value]`.
pub fn clip_grad_value_(params: &[Tensor], clip_value: f64) {
    for p in params {
        if let Some(g) = p.grad() {
            p.set_grad(Some(map_grad(&g, |x| x.clamp(-clip_value, clip_value))));
        }
    }
}

/// `(sum |x|^p)^(1/p)`, with the max for `p = inf`, the count of nonzeros for `p = 0`.
fn vector_norm(xs: impl Iterator<Item = f64>, p: f64) -> f64 {
    if p == f64::INFINITY {
        xs.fold(0.0, |m: f64, x| if x.abs() > m || x.is_nan() { x.abs() } else { m })
    } else if p == 0.0 {
        xs.filter(|x| *x != 0.0).count() as f64
    } else if p == 2.0 {
        xs.map(|x| x * x).sum::<f64>().sqrt()
    } else if p == 1.0 {
        xs.map(f64::abs).sum()
    } else {
        xs.map(|x| x.abs().powf(p)).sum::<f64>().powf(1.0 / p)
    }
}

/// A fresh gradient with `f` applied to each element (computed in f64, stored in the gradient's dtype).
fn map_grad(g: &Tensor, f: impl Fn(f64) -> f64) -> Tensor {
    crate::dispatch_float!(g.dtype(), "clip_grad", T => {
        let v: Vec<T> = g.with_slice::<T, _>(|s| s.iter().map(|x| T::from_f64(f(x.to_f64()))).collect());
        Tensor::from_vec(v, g.shape())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_gradients_are_left_alone_and_value_clip_clamps() {
        let p = Tensor::zeros_dtype(&[3], crate::DType::F64).requires_grad_();
        p.set_grad(Some(Tensor::from_vec(vec![0.1f64, -0.2, 0.3], &[3])));
        let n = clip_grad_norm_(std::slice::from_ref(&p), 10.0, f64::INFINITY);
        assert_eq!(n, 0.3);
        assert_eq!(p.grad().unwrap().to_vec::<f64>(), vec![0.1, -0.2, 0.3]);
        clip_grad_value_(std::slice::from_ref(&p), 0.15);
        assert_eq!(p.grad().unwrap().to_vec::<f64>(), vec![0.1, -0.15, 0.15]);
    }
}
