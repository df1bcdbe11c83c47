//! Softmax and log-softmax along a dim, computed stably (the row maximum is subtracted first).
//!
//! softmax:      y_i = e^(x_i - m) / sum_j e^(x_j - m)      dx = y * (dy - sum(dy * y))
//! log_softmax:  y_i = x_i - m - ln sum_j e^(x_j - m)       dx = dy - e^y * sum(dy)

use super::fast;
use super::unary::output_for_backward;
use crate::autograd::is_grad_enabled;
use crate::autograd::Backward;
use crate::tensor::Tensor;

/// Softmax or log-softmax of the rows along `dim` (moved last and made contiguous when needed) through
/// the row kernels.
fn along_rows(x: &Tensor, dim: usize, log: bool) -> Tensor {
    let last = x.rank() - 1;
    let moved = if dim == last { x.detach() } else { x.detach().transpose(dim as isize, last as isize) };
    let cols = x.shape()[dim];
    let out = crate::dispatch_float!(x.dtype(), "softmax", T => {
        let values = moved.with_slice(|v: &[T]| fast::softmax_rows(v, cols, log));
        Tensor::from_vec(values, moved.shape())
    });
    if dim == last {
        out
    } else {
        out.transpose(dim as isize, last as isize)
    }
}

/// The plain (unrecorded) backward through the row kernels: dy and y moved like the forward.
fn backward_rows(y: &Tensor, dy: &Tensor, dim: usize, log: bool) -> Tensor {
    let last = y.rank() - 1;
    let mv = |t: &Tensor| if dim == last { t.clone() } else { t.transpose(dim as isize, last as isize) };
    let (ym, dym) = (mv(y), mv(dy));
    let cols = y.shape()[dim];
    let dx = crate::dispatch_float!(y.dtype(), "softmax", T => {
        let values = ym.with_slice(|a: &[T]| dym.with_slice(|g: &[T]| fast::softmax_rows_backward(a, g, cols, log)));
        Tensor::from_vec(values, ym.shape())
    });
    mv(&dx)
}

impl Tensor {
    /// Softmax along `dim`: non-negative entries summing to 1.
    #[track_caller]
    pub fn softmax(&self, dim: isize) -> Tensor {
        let _p = crate::profile::op_scope("softmax");
        let d = self.normalize_dim("softmax", dim);
        if self.rank() == 0 {
            return self.reshape([1usize]).softmax(0).reshape([0usize; 0]);
        }
        let y = along_rows(self, d, false);
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
        let _p = crate::profile::op_scope("log_softmax");
        let d = self.normalize_dim("log_softmax", dim);
        if self.rank() == 0 {
            return self.reshape([1usize]).log_softmax(0).reshape([0usize; 0]);
        }
        let y = along_rows(self, d, true);
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

    fn backward(&self, dy: &Tensor, _: &[bool]) -> crate::autograd::Grads {
        let dim = self.dim;
        if !(is_grad_enabled() && self.x.requires_grad()) {
            return [Some(backward_rows(&self.y, dy, dim as usize, self.log))].into();
        }
        let dx = if self.log {
            let y = output_for_backward(&self.x, &self.y, |x| x.log_softmax(dim));
            dy - &(y.exp() * dy.sum_dim(dim, true))
        } else {
            let y = output_for_backward(&self.x, &self.y, |x| x.softmax(dim));
            &y * &(dy - &(dy * &y).sum_dim(dim, true))
        };
        [Some(dx)].into()
    }
}
