//! Reductions over dims (negative dims count from the end; `keepdim` keeps reduced dims as size 1).
//!
//! | op | forward | backward (dx) |
//! |---|---|---|
//! | sum | sum over dims | dy broadcast back over the reduced dims |
//! | mean | sum / n | dy / n broadcast back |
//! | max_dim / min_dim | (values, indices) | dy to the selected index (through `gather`) |
//! | amax / amin | max / min over dims | dy split evenly among the tied extreme elements |
//! | var / std | sum((x - mean)^2) / (n - correction), its sqrt | composed (std: 0 where std = 0, as PyTorch) |
//! | logsumexp | m + ln sum e^(x - m), m = amax (detached) | composed (stable) |
//! | norm(2) | sqrt(sum x^2) | dy * x / norm (0 where norm = 0) |
//! | norm(p) | (sum abs(x)^p)^(1/p); p = 1, inf, 0 (count of nonzeros) special-cased | composed (0 where norm = 0) |
//! | argmax / argmin | index of the first extreme value (i64) | not differentiable |

use super::{normalize_dims, reduce_groups};
use crate::autograd::Backward;
use crate::tensor::{Dims, Element, Tensor};

fn all_dims(rank: usize) -> Vec<isize> {
    (0..rank as isize).collect()
}

/// The shape with reduced `dims` set to 1.
fn keepdim_shape(shape: &[usize], dims: &[usize]) -> Vec<usize> {
    shape.iter().enumerate().map(|(d, &s)| if dims.contains(&d) { 1 } else { s }).collect()
}

impl Tensor {
    /// Sum of all elements, as a 0-D tensor.
    #[track_caller]
    pub fn sum(&self) -> Tensor {
        let _p = crate::profile::op_scope("sum");
        self.sum_dims(&all_dims(self.rank()), false)
    }

    /// Sum over one dim.
    #[track_caller]
    pub fn sum_dim(&self, dim: isize, keepdim: bool) -> Tensor {
        let _p = crate::profile::op_scope("sum_dim");
        self.sum_dims(&[dim], keepdim)
    }

    /// Sum over several dims.
    ///
    /// # Panics
    /// If a dim is out of range.
    #[track_caller]
    pub fn sum_dims(&self, dims: &[isize], keepdim: bool) -> Tensor {
        let _p = crate::profile::op_scope("sum_dims");
        let dims = normalize_dims("sum", dims, self.rank());
        let value = match sum_block(self, &dims, keepdim) {
            Some(value) => value,
            None => crate::dispatch_float!(self.dtype(), "sum", T => reduce_groups::<T, T>(self, &dims, keepdim, |g| {
                // fold from +0: `Iterator::sum` of no f64s is -0.0, and an empty sum must print and divide as 0.
                T::from_f64(g.iter().fold(0.0, |acc, v| acc + v.to_f64()))
            })),
        };
        let kept: Dims = keepdim_shape(self.shape(), &dims).into();
        Tensor::from_op(value, &[self], || SumBackward { in_shape: self.shape().into(), kept })
    }

    /// Mean of all elements, as a 0-D tensor.
    #[track_caller]
    pub fn mean(&self) -> Tensor {
        let _p = crate::profile::op_scope("mean");
        self.mean_dims(&all_dims(self.rank()), false)
    }

    /// Mean over one dim.
    #[track_caller]
    pub fn mean_dim(&self, dim: isize, keepdim: bool) -> Tensor {
        let _p = crate::profile::op_scope("mean_dim");
        self.mean_dims(&[dim], keepdim)
    }

    /// Mean over several dims.
    #[track_caller]
    pub fn mean_dims(&self, dims: &[isize], keepdim: bool) -> Tensor {
        let _p = crate::profile::op_scope("mean_dims");
        let n: usize = normalize_dims("mean", dims, self.rank()).iter().map(|&d| self.shape()[d]).product();
        self.sum_dims(dims, keepdim) * (1.0 / n as f64)
    }

    /// Maximum along `dim` and its index (the first one on ties), like `torch.max(x, dim)`.
    /// The gradient goes to that index.
    #[track_caller]
    pub fn max_dim(&self, dim: isize, keepdim: bool) -> (Tensor, Tensor) {
        let _p = crate::profile::op_scope("max_dim");
        self.extreme_dim("max_dim", dim, keepdim, true)
    }

    /// Minimum along `dim` and its index (the first one on ties).
    #[track_caller]
    pub fn min_dim(&self, dim: isize, keepdim: bool) -> (Tensor, Tensor) {
        let _p = crate::profile::op_scope("min_dim");
        self.extreme_dim("min_dim", dim, keepdim, false)
    }

    #[track_caller]
    fn extreme_dim(&self, op: &str, dim: isize, keepdim: bool, max: bool) -> (Tensor, Tensor) {
        let d = self.normalize_dim(op, dim);
        if self.rank() == 0 {
            // PyTorch: a 0-D tensor is its own maximum, at index 0, and stays 0-D even with keepdim.
            let (values, index) = self.reshape([1usize]).extreme_dim(op, 0, false, max);
            return (values, index);
        }
        let index = self.arg_extreme(op, d, true, max);
        let values = self.gather(d as isize, &index);
        if keepdim {
            (values, index)
        } else {
            (values.squeeze(d as isize), index.squeeze(d as isize))
        }
    }

    /// Index of the maximum along `dim` (`None`: over all elements, flattened), as `i64`.
    #[track_caller]
    pub fn argmax(&self, dim: Option<isize>, keepdim: bool) -> Tensor {
        let _p = crate::profile::op_scope("argmax");
        match dim {
            Some(dim) => self.arg_extreme("argmax", self.normalize_dim("argmax", dim), keepdim, true),
            None => self.reshape([-1]).arg_extreme("argmax", 0, false, true),
        }
    }

    /// Index of the minimum along `dim` (`None`: over all elements, flattened), as `i64`.
    #[track_caller]
    pub fn argmin(&self, dim: Option<isize>, keepdim: bool) -> Tensor {
        let _p = crate::profile::op_scope("argmin");
        match dim {
            Some(dim) => self.arg_extreme("argmin", self.normalize_dim("argmin", dim), keepdim, false),
            None => self.reshape([-1]).arg_extreme("argmin", 0, false, false),
        }
    }

    #[track_caller]
    fn arg_extreme(&self, op: &str, dim: usize, keepdim: bool, max: bool) -> Tensor {
        if self.rank() == 0 {
            return self.reshape([1usize]).arg_extreme(op, 0, false, max).reshape([0usize; 0]);
        }
        if self.shape()[dim] == 0 {
            crate::error::panic_msg(format!("{op}: cannot reduce over an empty dimension (shape {:?})", self.shape()));
        }
        crate::dispatch_float!(self.dtype(), op, T => reduce_groups::<T, i64>(self, &[dim], keepdim, |g| {
            let mut best = 0;
            for (i, &v) in g.iter().enumerate() {
                if v.is_nan() {
                    return i as i64;
                }
                if (max && v > g[best]) || (!max && v < g[best]) {
                    best = i;
                }
            }
            best as i64
        }))
    }

    /// Maximum over dims; the gradient is split evenly among tied maxima (like `torch.amax`).
    #[track_caller]
    pub fn amax(&self, dims: &[isize], keepdim: bool) -> Tensor {
        let _p = crate::profile::op_scope("amax");
        self.amax_amin("amax", dims, keepdim, true)
    }

    /// Minimum over dims; the gradient is split evenly among tied minima (like `torch.amin`).
    #[track_caller]
    pub fn amin(&self, dims: &[isize], keepdim: bool) -> Tensor {
        let _p = crate::profile::op_scope("amin");
        self.amax_amin("amin", dims, keepdim, false)
    }

    /// Maximum of all elements, as a 0-D tensor (ties share the gradient).
    #[track_caller]
    pub fn max(&self) -> Tensor {
        let _p = crate::profile::op_scope("max");
        self.amax(&all_dims(self.rank()), false)
    }

    /// Minimum of all elements, as a 0-D tensor (ties share the gradient).
    #[track_caller]
    pub fn min(&self) -> Tensor {
        let _p = crate::profile::op_scope("min");
        self.amin(&all_dims(self.rank()), false)
    }

    #[track_caller]
    fn amax_amin(&self, op: &'static str, dims: &[isize], keepdim: bool, max: bool) -> Tensor {
        let dims = normalize_dims(op, dims, self.rank());
        if dims.iter().any(|&d| self.shape()[d] == 0) {
            crate::error::panic_msg(format!("{op}: cannot reduce over an empty dimension (shape {:?})", self.shape()));
        }
        let kept = keepdim_shape(self.shape(), &dims);
        let value_kept = crate::dispatch_float!(self.dtype(), op, T => reduce_groups::<T, T>(self, &dims, true, |g| {
            g.iter().copied().fold(if max { T::NEG_INFINITY } else { T::INFINITY }, |a, v| {
                if a.is_nan() || v.is_nan() { T::from_f64(f64::NAN) } else if (v > a) == max && v != a { v } else { a }
            })
        }));
        let value = if keepdim { value_kept.clone() } else { value_kept.reshape(self.reduced_shape(&dims)) };
        Tensor::from_op(value, &[self], || ExtremeBackward {
            x: self.clone(),
            y: value_kept.detach(),
            dims: dims.iter().map(|&d| d as isize).collect(),
            kept: kept.into(),
            name: op,
        })
    }

    fn reduced_shape(&self, dims: &[usize]) -> Vec<usize> {
        (0..self.rank()).filter(|d| !dims.contains(d)).map(|d| self.shape()[d]).collect()
    }

    /// Variance over dims with Bessel-style `correction` (1 = unbiased, PyTorch's default; 0 = biased).
    #[track_caller]
    pub fn var_dims(&self, dims: &[isize], correction: usize, keepdim: bool) -> Tensor {
        let _p = crate::profile::op_scope("var_dims");
        let n: usize = normalize_dims("var", dims, self.rank()).iter().map(|&d| self.shape()[d]).product();
        let centered = self - &self.mean_dims(dims, true);
        (&centered * &centered).sum_dims(dims, keepdim) * (1.0 / (n as f64 - correction as f64))
    }

    /// Variance of all elements (unbiased).
    #[track_caller]
    pub fn var(&self) -> Tensor {
        let _p = crate::profile::op_scope("var");
        self.var_dims(&all_dims(self.rank()), 1, false)
    }

    /// Standard deviation over dims with `correction`.
    #[track_caller]
    pub fn std_dims(&self, dims: &[isize], correction: usize, keepdim: bool) -> Tensor {
        let _p = crate::profile::op_scope("std_dims");
        sqrt_zero_grad_at_zero(&self.var_dims(dims, correction, keepdim))
    }

    /// Standard deviation of all elements (unbiased).
    #[track_caller]
    pub fn std(&self) -> Tensor {
        let _p = crate::profile::op_scope("std");
        sqrt_zero_grad_at_zero(&self.var())
    }

    /// `ln(sum(e^x))` over dims, computed stably by subtracting the (detached) maximum.
    #[track_caller]
    pub fn logsumexp(&self, dims: &[isize], keepdim: bool) -> Tensor {
        let _p = crate::profile::op_scope("logsumexp");
        let m = self.detach().amax(dims, true);
        // An all -inf group would give -inf - -inf = NaN; shift by 0 there instead.
        let m = super::unary::map_float(&m, "logsumexp", |v| if v.is_infinite() { 0.0 } else { v });
        let out = (self - &m).exp().sum_dims(dims, true).log() + &m;
        if keepdim {
            out
        } else {
            let dims = normalize_dims("logsumexp", dims, self.rank());
            out.reshape(self.reduced_shape(&dims))
        }
    }

    /// The p-norm over dims: `(sum |x|^p)^(1/p)`; p = 2 has a dedicated backward that gives 0 at the origin
    /// (as PyTorch does), p = infinity is `amax(|x|)`.
    #[track_caller]
    pub fn norm(&self, p: f64, dims: &[isize], keepdim: bool) -> Tensor {
        let _p = crate::profile::op_scope("norm");
        if p == 2.0 {
            let dims_u = normalize_dims("norm", dims, self.rank());
            let kept = keepdim_shape(self.shape(), &dims_u);
            let n_kept = crate::no_grad(|| (self * self).sum_dims(dims, true).sqrt());
            let value = if keepdim { n_kept.clone() } else { n_kept.reshape(self.reduced_shape(&dims_u)) };
            return Tensor::from_op(value, &[self], || Norm2Backward {
                x: self.clone(),
                norm: n_kept,
                dims: dims.to_vec(),
                kept: kept.into(),
            });
        }
        if p == 1.0 {
            return self.abs().sum_dims(dims, keepdim);
        }
        if p.is_infinite() && p > 0.0 {
            return self.abs().amax(dims, keepdim);
        }
        if p == 0.0 {
            // The number of nonzero entries (no gradient, as in PyTorch).
            return crate::no_grad(|| self.ne_scalar(0.0).to_dtype(self.dtype()).sum_dims(dims, keepdim));
        }
        // (sum |x|^p)^(1/p), with a 0 gradient where the norm is 0 (the plain composition gives 0 * inf = NaN).
        let s = self.abs().powf(p).sum_dims(dims, keepdim);
        let zero = s.detach().eq_scalar(0.0);
        let safe = Tensor::where_(&zero, &s.ones_like(), &s);
        Tensor::where_(&zero, &s.zeros_like(), &safe.powf(1.0 / p))
    }
}

/// `sqrt(v)` whose gradient is 0 (not `0 * inf = NaN` downstream) where `v == 0`: PyTorch's convention for
/// `std` of a constant. Composed with `where_`, so it stays differentiable to any order.
fn sqrt_zero_grad_at_zero(v: &Tensor) -> Tensor {
    let zero = v.detach().eq_scalar(0.0);
    let safe = Tensor::where_(&zero, &v.ones_like(), v);
    Tensor::where_(&zero, &v.zeros_like(), &safe.sqrt())
}

/// The sum through the axis-sum kernel when `dims` is one consecutive, non-empty block of a contiguous
/// tensor (the common case: a trailing dim, or the batch dim of a bias gradient); `None` otherwise.
#[track_caller]
fn sum_block(x: &Tensor, dims: &[usize], keepdim: bool) -> Option<Tensor> {
    let (&first, &last) = (dims.first()?, dims.last()?);
    if last - first + 1 != dims.len() || !x.is_contiguous() {
        return None;
    }
    let shape = x.shape();
    let (outer, len, inner): (usize, usize, usize) =
        (shape[..first].iter().product(), shape[first..=last].iter().product(), shape[last + 1..].iter().product());
    if len == 0 {
        return None;
    }
    let out_shape: Vec<usize> = if keepdim {
        shape.iter().enumerate().map(|(d, &s)| if dims.contains(&d) { 1 } else { s }).collect()
    } else {
        shape.iter().enumerate().filter(|(d, _)| !dims.contains(d)).map(|(_, &s)| s).collect()
    };
    Some(crate::dispatch_float!(x.dtype(), "sum", T => {
        Tensor::from_vec(x.with_slice(|v: &[T]| super::fast::sum_axis(v, outer, len, inner)), &out_shape)
    }))
}

struct SumBackward {
    in_shape: Dims,
    kept: Dims,
}
impl Backward for SumBackward {
    fn name(&self) -> &'static str {
        "sum"
    }
    fn backward(&self, dy: &Tensor, _: &[bool]) -> crate::autograd::Grads {
        [Some(dy.reshape(&self.kept).expand(&self.in_shape))].into()
    }
}

struct ExtremeBackward {
    x: Tensor,
    y: Tensor,
    dims: Vec<isize>,
    kept: Dims,
    name: &'static str,
}
impl Backward for ExtremeBackward {
    fn name(&self) -> &'static str {
        self.name
    }
    fn backward(&self, dy: &Tensor, _: &[bool]) -> crate::autograd::Grads {
        let hit = self.x.detach().eq(&self.y).to_dtype(self.x.dtype());
        let count = hit.sum_dims(&self.dims, true);
        [Some(dy.reshape(&self.kept) * &hit / &count)].into()
    }
}

struct Norm2Backward {
    x: Tensor,
    norm: Tensor,
    dims: Vec<isize>,
    kept: Dims,
}
impl Backward for Norm2Backward {
    fn name(&self) -> &'static str {
        "norm"
    }
    fn backward(&self, dy: &Tensor, _: &[bool]) -> crate::autograd::Grads {
        let norm = if crate::is_grad_enabled() && self.x.requires_grad() {
            self.x.norm(2.0, &self.dims, true)
        } else {
            self.norm.clone()
        };
        // x / norm, with 0 where the norm is 0 (dividing by +inf there).
        let safe = norm.masked_fill(&norm.detach().eq_scalar(0.0), f64::INFINITY);
        [Some(&self.x * &(dy.reshape(&self.kept) / &safe))].into()
    }
}
