//! Softmax and log-softmax along a dim, computed stably (the row maximum is subtracted first).
//!
//! softmax:      y_i = e^(x_i - m) / sum_j e^(x_j - m)      dx = y * (dy - sum(dy * y))
//! log_softmax:  y_i = x_i - m - ln sum_j e^(x_j - m)       dx = dy - e^y * sum(dy)

use super::unary::output_for_backward;
use crate::autograd::Backward;
use crate::tensor::{Element, Float, Tensor};

/// Applies `row_fn` to every row of `x` along `dim` (moved last and made contiguous when needed).
fn along_rows(x: &Tensor, dim: usize, row_fn: impl Fn(&[f64], &mut [f64])) -> Tensor {
    let last = x.rank() - 1;
    let moved = if dim == last { x.detach() } else { x.detach().transpose(dim as isize, last as isize) };
    let cols = x.shape()[dim];
    let out = crate::dispatch_float!(x.dtype(), "softmax", T => {
        let values = moved.contiguous_vec::<T>();
        let mut out = vec![T::ZERO; values.len()];
        let mut row_in = vec![0.0; cols];
        let mut row_out = vec![0.0; cols];
        if cols > 0 {
            for (src, dst) in values.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
                for (r, &v) in row_in.iter_mut().zip(src) {
                    *r = v.to_f64();
                }
                row_fn(&row_in, &mut row_out);
                for (d, &r) in dst.iter_mut().zip(&row_out) {
                    *d = T::from_f64(r);
                }
            }
        }
        Tensor::from_vec(out, moved.shape())
    });
    if dim == last {
        out
    } else {
        out.transpose(dim as isize, last as isize)
    }
}

fn softmax_row(x: &[f64], y: &mut [f64]) {
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let m = if m.is_infinite() { 0.0 } else { m };
    let mut sum = 0.0;
    for (o, &v) in y.iter_mut().zip(x) {
        *o = (v - m).exp();
        sum += *o;
    }
    for o in y.iter_mut() {
        *o /= sum;
    }
}

fn log_softmax_row(x: &[f64], y: &mut [f64]) {
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let m = if m.is_infinite() { 0.0 } else { m };
    let lse = x.iter().map(|&v| (v - m).exp()).sum::<f64>().ln() + m;
    for (o, &v) in y.iter_mut().zip(x) {
        *o = v - lse;
    }
}

impl Tensor {
    /// Softmax along `dim`: non-negative entries summing to 1.
    #[track_caller]
    pub fn softmax(&self, dim: isize) -> Tensor {
        let d = self.normalize_dim("softmax", dim);
        if self.rank() == 0 {
            return self.reshape([1usize]).softmax(0).reshape([0usize; 0]);
        }
        let y = along_rows(self, d, softmax_row);
        Tensor::from_op(y.clone(), &[self], || SoftmaxBackward {
            x: self.clone(),
            y: y.detach(),
            dim: d as isize,
            log: false,
        })
    }

    /// Log of the softmax along `dim`, computed without forming the softmax.
    #[track_caller]
    pub fn log_softmax(&self, dim: isize) -> Tensor {
        let d = self.normalize_dim("log_softmax", dim);
        if self.rank() == 0 {
            return self.reshape([1usize]).log_softmax(0).reshape([0usize; 0]);
        }
        let y = along_rows(self, d, log_softmax_row);
        Tensor::from_op(y.clone(), &[self], || SoftmaxBackward {
            x: self.clone(),
            y: y.detach(),
            dim: d as isize,
            log: true,
        })
    }
}

struct SoftmaxBackward {
    x: Tensor,
    y: Tensor,
    dim: isize,
    log: bool,
}

impl Backward for SoftmaxBackward {
    fn name(&self) -> &'static str {
        if self.log {
            "log_softmax"
        } else {
            "softmax"
        }
    }

    fn backward(&self, dy: &Tensor, _: &[bool]) -> Vec<Option<Tensor>> {
        let dim = self.dim;
        let dx = if self.log {
            let y = output_for_backward(&self.x, &self.y, |x| x.log_softmax(dim));
            dy - &(y.exp() * dy.sum_dim(dim, true))
        } else {
            let y = output_for_backward(&self.x, &self.y, |x| x.softmax(dim));
            &y * &(dy - &(dy * &y).sum_dim(dim, true))
        };
        vec![Some(dx)]
    }
}
