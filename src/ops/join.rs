//! Joining and splitting along a dim.
//!
//! | op | forward | backward |
//! |---|---|---|
//! | cat(ts, d) | inputs laid end to end along d | each input gets its `narrow` of dy |
//! | stack(ts, d) | `cat` of `unsqueeze(d)`s | through cat and unsqueeze |
//! | split / chunk | `narrow` views | through narrow |

use super::normalize_dim;
use crate::autograd::Backward;
use crate::error::panic_msg;
use crate::tensor::layout::{contiguous_strides, for_each_offset};
use crate::tensor::{Element, Tensor};

impl Tensor {
    /// Concatenates tensors along `dim`; all other dims must match.
    ///
    /// # Panics
    /// If the list is empty, or ranks, dtypes or non-`dim` sizes differ.
    #[track_caller]
    pub fn cat(tensors: &[&Tensor], dim: isize) -> Tensor {
        let _p = crate::profile::op_scope("cat");
        let Some(first) = tensors.first() else { panic_msg("cat: expected a non-empty list of tensors".into()) };
        if let Some(k) = tensors.iter().position(|t| t.rank() == 0) {
            panic_msg(format!("cat: zero-dimensional tensor (at position {k}) cannot be concatenated; use stack"));
        }
        let d = normalize_dim("cat", dim, first.rank());
        for t in tensors {
            if t.dtype() != first.dtype() {
                panic_msg(format!(
                    "cat: dtype mismatch: lhs {} {:?} vs rhs {} {:?}",
                    first.dtype(),
                    first.shape(),
                    t.dtype(),
                    t.shape()
                ));
            }
            let same_rank = t.rank() == first.rank();
            if !same_rank || t.shape().iter().zip(first.shape()).enumerate().any(|(k, (a, b))| k != d && a != b) {
                crate::error::shape_mismatch(
                    "cat",
                    &format!("sizes must match except along dim {dim}"),
                    first.shape(),
                    t.shape(),
                );
            }
        }
        let sizes: Vec<usize> = tensors.iter().map(|t| t.shape()[d]).collect();
        let mut shape = first.shape().to_vec();
        shape[d] = sizes.iter().sum();
        let strides = contiguous_strides(&shape);
        let value = crate::dispatch_all!(first.dtype(), T => {
            let mut out = vec![<T as Element>::from_f64(0.0); shape.iter().product()];
            let mut start = 0;
            for (t, &len) in tensors.iter().zip(&sizes) {
                let values = t.contiguous_vec::<T>();
                let mut i = 0;
                for_each_offset(t.shape(), &strides, start * strides[d], |o| {
                    out[o] = values[i];
                    i += 1;
                });
                start += len;
            }
            Tensor::from_vec(out, &shape)
        });
        Tensor::from_op(value, tensors, || CatBackward { dim: d, sizes })
    }

    /// Stacks same-shape tensors along a new dim `dim`.
    ///
    /// # Panics
    /// If the list is empty or shapes differ.
    #[track_caller]
    pub fn stack(tensors: &[&Tensor], dim: isize) -> Tensor {
        let _p = crate::profile::op_scope("stack");
        let Some(first) = tensors.first() else { panic_msg("stack: expected a non-empty list of tensors".into()) };
        for t in tensors {
            if t.shape() != first.shape() {
                crate::error::shape_mismatch("stack", "all tensors must have the same shape", first.shape(), t.shape());
            }
        }
        let d = normalize_dim("stack", dim, first.rank() + 1) as isize;
        let expanded: Vec<Tensor> = tensors.iter().map(|t| t.unsqueeze(d)).collect();
        Tensor::cat(&expanded.iter().collect::<Vec<_>>(), d)
    }

    /// Splits into pieces of `split_size` along `dim` (the last may be smaller), as views.
    #[track_caller]
    pub fn split(&self, split_size: usize, dim: isize) -> Vec<Tensor> {
        let _p = crate::profile::op_scope("split");
        if split_size == 0 {
            panic_msg("split: split_size must be positive".into());
        }
        let size = self.size(dim);
        if size == 0 {
            // As PyTorch: one empty piece, not none.
            return vec![self.narrow(dim, 0, 0)];
        }
        (0..size).step_by(split_size).map(|s| self.narrow(dim, s, split_size.min(size - s))).collect()
    }

    /// Splits into pieces of the given sizes along `dim`, as views.
    ///
    /// # Panics
    /// If the sizes do not add up to the dimension.
    #[track_caller]
    pub fn split_sizes(&self, sizes: &[usize], dim: isize) -> Vec<Tensor> {
        let _p = crate::profile::op_scope("split_sizes");
        if sizes.iter().sum::<usize>() != self.size(dim) {
            panic_msg(format!("split_sizes: sizes {sizes:?} do not add up to dim {dim} of shape {:?}", self.shape()));
        }
        let mut start = 0;
        sizes
            .iter()
            .map(|&len| {
                let piece = self.narrow(dim, start, len);
                start += len;
                piece
            })
            .collect()
    }

    /// Splits into `chunks` nearly equal pieces along `dim` (like `torch.chunk`: size `ceil(n / chunks)`).
    #[track_caller]
    pub fn chunk(&self, chunks: usize, dim: isize) -> Vec<Tensor> {
        let _p = crate::profile::op_scope("chunk");
        if chunks == 0 {
            panic_msg("chunk: chunks must be positive".into());
        }
        self.split(self.size(dim).div_ceil(chunks).max(1), dim)
    }
}

struct CatBackward {
    dim: usize,
    sizes: Vec<usize>,
}

impl Backward for CatBackward {
    fn name(&self) -> &'static str {
        "cat"
    }
    fn backward(&self, dy: &Tensor, needs: &[bool]) -> crate::autograd::Grads {
        let mut start = 0;
        self.sizes
            .iter()
            .zip(needs)
            .map(|(&len, &need)| {
                let g = need.then(|| dy.narrow(self.dim as isize, start, len));
                start += len;
                g
            })
            .collect()
    }
}
