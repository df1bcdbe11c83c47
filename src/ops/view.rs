//! View ops: new shapes and strides over the same storage, no copying (except `reshape` of a tensor that
//! cannot be viewed, and `contiguous`).
//!
//! | op | forward | backward |
//! |---|---|---|
//! | reshape/view/flatten/squeeze/unsqueeze | same elements, new shape | `dy.reshape(x.shape)` |
//! | permute/transpose | `y[i_p0, i_p1, ..] = x[i0, i1, ..]` | `dy.permute(inverse)` |
//! | narrow/slice | `y = x[.., start:end:step, ..]` | zeros of x's shape with `dy` written into the slice |
//! | expand | size-1 dims repeated (stride 0) | `dy` summed over the expanded dims |
//! | contiguous | row-major copy | `dy` |

use super::normalize_dim;
use crate::autograd::Backward;
use crate::error::{panic_msg, shape_mismatch};
use crate::tensor::layout::{broadcast_strides, contiguous_strides, for_each_offset};
use crate::tensor::{Dims, Element, Layout, Tensor};

/// A shape argument that may contain one `-1` to be inferred: `&[2, -1]`, `&[6usize]`, `x.shape()`, `vec![..]`.
pub trait ShapeArg {
    /// The sizes, with `-1` for the one inferred dimension.
    fn sizes(&self) -> Vec<isize>;
}

macro_rules! shape_arg {
    ($($t:ty),*) => {$(
        impl ShapeArg for &[$t] {
            fn sizes(&self) -> Vec<isize> { self.iter().map(|&d| d as isize).collect() }
        }
        impl<const N: usize> ShapeArg for [$t; N] {
            fn sizes(&self) -> Vec<isize> { self.iter().map(|&d| d as isize).collect() }
        }
        impl<const N: usize> ShapeArg for &[$t; N] {
            fn sizes(&self) -> Vec<isize> { self.iter().map(|&d| d as isize).collect() }
        }
        impl ShapeArg for Vec<$t> {
            fn sizes(&self) -> Vec<isize> { self.iter().map(|&d| d as isize).collect() }
        }
        impl ShapeArg for &Vec<$t> {
            fn sizes(&self) -> Vec<isize> { self.iter().map(|&d| d as isize).collect() }
        }
    )*};
}
shape_arg!(usize, isize, i32, i64);

impl ShapeArg for &Dims {
    fn sizes(&self) -> Vec<isize> {
        self.iter().map(|&d| d as isize).collect()
    }
}

#[track_caller]
fn resolve_shape(op: &str, from: &[usize], spec: &[isize]) -> Vec<usize> {
    let numel: usize = from.iter().product();
    let inferred: Vec<usize> = spec.iter().enumerate().filter(|(_, &d)| d == -1).map(|(i, _)| i).collect();
    if inferred.len() > 1 || spec.iter().any(|&d| d < -1) {
        panic_msg(format!("{op}: invalid shape {spec:?} (at most one -1, no other negatives)"));
    }
    let known: usize = spec.iter().filter(|&&d| d != -1).map(|&d| d as usize).product();
    let mut shape: Vec<usize> = spec.iter().map(|&d| d.max(0) as usize).collect();
    if let Some(&i) = inferred.first() {
        if known == 0 || !numel.is_multiple_of(known) {
            panic_msg(format!("{op}: shape {spec:?} is invalid for input of shape {from:?} ({numel} elements)"));
        }
        shape[i] = numel / known;
    }
    if shape.iter().product::<usize>() != numel {
        panic_msg(format!("{op}: shape {spec:?} is invalid for input of shape {from:?} ({numel} elements)"));
    }
    shape
}

impl Tensor {
    /// The same elements in a new shape (one dim may be `-1`); a view when the strides allow, else a copy.
    ///
    /// # Panics
    /// If the element counts differ.
    #[track_caller]
    pub fn reshape(&self, shape: impl ShapeArg) -> Tensor {
        let _p = crate::profile::op_scope("reshape");
        let shape = resolve_shape("reshape", self.shape(), &shape.sizes());
        if shape.as_slice() == self.shape() {
            return self.clone();
        }
        match self.layout().view_strides(&shape) {
            Some(strides) => self.view_with(&shape, strides),
            None => self.contiguous().reshape(shape),
        }
    }

    /// Like [`reshape`](Self::reshape) but never copies.
    ///
    /// # Panics
    /// If the element counts differ or the strides do not allow a view (call `contiguous()` first).
    #[track_caller]
    pub fn view(&self, shape: impl ShapeArg) -> Tensor {
        let _p = crate::profile::op_scope("view");
        let shape = resolve_shape("view", self.shape(), &shape.sizes());
        match self.layout().view_strides(&shape) {
            Some(strides) => self.view_with(&shape, strides),
            None => panic_msg(format!(
                "view: a tensor of shape {:?} with strides {:?} cannot be viewed as {:?}; use reshape() or contiguous()",
                self.shape(),
                self.strides(),
                shape
            )),
        }
    }

    #[track_caller]
    fn view_with(&self, shape: &[usize], strides: Dims) -> Tensor {
        let layout = Layout { shape: shape.into(), strides, offset: self.layout().offset };
        let in_shape: Dims = self.shape().into();
        Tensor::from_op(self.with_layout(layout), &[self], || ReshapeBackward { in_shape })
    }

    /// Flattens dims `start..=end` into one.
    #[track_caller]
    pub fn flatten(&self, start: isize, end: isize) -> Tensor {
        let _p = crate::profile::op_scope("flatten");
        if self.rank() == 0 {
            return self.reshape([1usize]);
        }
        let (s, e) = (self.normalize_dim("flatten", start), self.normalize_dim("flatten", end));
        if s > e {
            panic_msg(format!("flatten: start dim {start} comes after end dim {end}"));
        }
        let shape = self.shape();
        let mut new: Vec<usize> = shape[..s].to_vec();
        new.push(shape[s..=e].iter().product());
        new.extend_from_slice(&shape[e + 1..]);
        self.reshape(new)
    }

    /// Removes dimension `dim` if its size is 1 (otherwise returns the tensor unchanged, like PyTorch).
    #[track_caller]
    pub fn squeeze(&self, dim: isize) -> Tensor {
        let _p = crate::profile::op_scope("squeeze");
        let d = self.normalize_dim("squeeze", dim);
        if self.rank() == 0 || self.shape()[d] != 1 {
            return self.clone();
        }
        let mut shape = self.shape().to_vec();
        shape.remove(d);
        self.reshape(shape)
    }

    /// Removes every size-1 dimension.
    pub fn squeeze_all(&self) -> Tensor {
        let _p = crate::profile::op_scope("squeeze_all");
        let shape: Vec<usize> = self.shape().iter().copied().filter(|&d| d != 1).collect();
        self.reshape(shape)
    }

    /// Inserts a size-1 dimension at `dim` (`-1` appends).
    #[track_caller]
    pub fn unsqueeze(&self, dim: isize) -> Tensor {
        let _p = crate::profile::op_scope("unsqueeze");
        let d = normalize_dim("unsqueeze", dim, self.rank() + 1);
        let mut shape = self.shape().to_vec();
        shape.insert(d, 1);
        self.reshape(shape)
    }

    /// Reorders the dimensions: output dim `k` is input dim `dims[k]`.
    ///
    /// # Panics
    /// If `dims` is not a permutation of `0..rank`.
    #[track_caller]
    pub fn permute(&self, dims: &[usize]) -> Tensor {
        let _p = crate::profile::op_scope("permute");
        let rank = self.rank();
        let mut seen = vec![false; rank];
        if dims.len() != rank || dims.iter().any(|&d| d >= rank || std::mem::replace(&mut seen[d], true)) {
            panic_msg(format!(
                "permute: {dims:?} is not a permutation of the dims of a tensor of shape {:?}",
                self.shape()
            ));
        }
        let l = self.layout();
        let layout = Layout {
            shape: dims.iter().map(|&d| l.shape[d]).collect(),
            strides: dims.iter().map(|&d| l.strides[d]).collect(),
            offset: l.offset,
        };
        let mut inverse = vec![0; rank];
        for (k, &d) in dims.iter().enumerate() {
            inverse[d] = k;
        }
        Tensor::from_op(self.with_layout(layout), &[self], || PermuteBackward { inverse })
    }

    /// Swaps two dimensions.
    #[track_caller]
    pub fn transpose(&self, dim0: isize, dim1: isize) -> Tensor {
        let _p = crate::profile::op_scope("transpose");
        let (a, b) = (self.normalize_dim("transpose", dim0), self.normalize_dim("transpose", dim1));
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// Transpose of a matrix (a 0-D or 1-D tensor is returned as is).
    ///
    /// # Panics
    /// If the rank is above 2 (use `transpose`).
    #[track_caller]
    pub fn t(&self) -> Tensor {
        let _p = crate::profile::op_scope("t");
        match self.rank() {
            0 | 1 => self.clone(),
            2 => self.transpose(0, 1),
            _ => panic_msg(format!(
                "t: expects a tensor of rank <= 2, got shape {:?}; use transpose(d0, d1)",
                self.shape()
            )),
        }
    }

    /// Elements `start..start + length` of dimension `dim`, as a view.
    ///
    /// # Panics
    /// If the range exceeds the dimension.
    #[track_caller]
    pub fn narrow(&self, dim: isize, start: usize, length: usize) -> Tensor {
        let _p = crate::profile::op_scope("narrow");
        let size = self.size(dim);
        if start + length > size {
            panic_msg(format!(
                "narrow: start ({start}) + length ({length}) exceeds dimension {dim} of size {size} (shape {:?})",
                self.shape()
            ));
        }
        self.slice(dim, start, start + length, 1)
    }

    /// `x[.., start:end:step, ..]` along `dim`, as a view (`end` is clamped to the size and `start >= end`
    /// gives an empty slice, like Python).
    ///
    /// # Panics
    /// If `step` is 0 or `start` exceeds the dimension.
    #[track_caller]
    pub fn slice(&self, dim: isize, start: usize, end: usize, step: usize) -> Tensor {
        let _p = crate::profile::op_scope("slice");
        let d = self.normalize_dim("slice", dim);
        let size = self.shape()[d];
        let end = end.min(size);
        if step == 0 || start > size {
            panic_msg(format!(
                "slice: range {start}..{end} step {step} is invalid for dim {dim} of size {size} (shape {:?})",
                self.shape()
            ));
        }
        let len = (end.saturating_sub(start)).div_ceil(step);
        let l = self.layout();
        let mut layout = l.clone();
        layout.offset = l.offset + start * l.strides[d];
        layout.shape[d] = len;
        layout.strides[d] = l.strides[d] * step;
        let in_shape: Dims = self.shape().into();
        Tensor::from_op(self.with_layout(layout), &[self], || SliceBackward { in_shape, dim: d, start, step })
    }

    /// Repeats size-1 dims (and prepends new ones) to reach `shape`, as a view with stride 0.
    ///
    /// # Panics
    /// If the shape is not reachable by broadcasting.
    #[track_caller]
    pub fn expand(&self, shape: &[usize]) -> Tensor {
        let _p = crate::profile::op_scope("expand");
        if shape == self.shape() {
            return self.clone();
        }
        let ok = shape.len() >= self.rank()
            && self.shape().iter().zip(&shape[shape.len() - self.rank()..]).all(|(&a, &b)| a == b || a == 1);
        if !ok {
            shape_mismatch("expand", "cannot expand", self.shape(), shape);
        }
        let layout = Layout {
            shape: shape.into(),
            strides: broadcast_strides(self.layout(), shape),
            offset: self.layout().offset,
        };
        let in_shape: Dims = self.shape().into();
        Tensor::from_op(self.with_layout(layout), &[self], || ExpandBackward { in_shape })
    }

    /// Alias of [`expand`](Self::expand), as `torch.broadcast_to`.
    #[track_caller]
    pub fn broadcast_to(&self, shape: &[usize]) -> Tensor {
        let _p = crate::profile::op_scope("broadcast_to");
        self.expand(shape)
    }

    /// A row-major copy (or `self` when already contiguous).
    pub fn contiguous(&self) -> Tensor {
        let _p = crate::profile::op_scope("contiguous");
        if self.is_contiguous() {
            return self.clone();
        }
        let value = crate::dispatch_all!(self.dtype(), T => Tensor::from_vec(self.contiguous_vec::<T>(), self.shape()));
        Tensor::from_op(value, &[self], || ContiguousBackward)
    }

    /// Sums the dims that were broadcast, giving a tensor of `shape` (the backward of broadcasting).
    ///
    /// # Panics
    /// If this tensor's shape is not a broadcast of `shape`.
    #[track_caller]
    pub fn sum_to_shape(&self, shape: &[usize]) -> Tensor {
        let _p = crate::profile::op_scope("sum_to_shape");
        if self.shape() == shape {
            return self.clone();
        }
        let Some(lead) = self.rank().checked_sub(shape.len()) else {
            shape_mismatch("sum_to_shape", "cannot reduce", self.shape(), shape)
        };
        let mut dims: Vec<isize> = (0..lead as isize).collect();
        for (k, &s) in shape.iter().enumerate() {
            let d = self.shape()[lead + k];
            if s == 1 && d != 1 {
                dims.push((lead + k) as isize);
            } else if s != d {
                shape_mismatch("sum_to_shape", "cannot reduce", self.shape(), shape);
            }
        }
        self.sum_dims(&dims, true).reshape(shape)
    }
}

struct ReshapeBackward {
    in_shape: Dims,
}
impl Backward for ReshapeBackward {
    fn name(&self) -> &'static str {
        "reshape"
    }
    fn backward(&self, dy: &Tensor, _: &[bool]) -> crate::autograd::Grads {
        [Some(dy.reshape(&self.in_shape))].into()
    }
}

struct PermuteBackward {
    inverse: Vec<usize>,
}
impl Backward for PermuteBackward {
    fn name(&self) -> &'static str {
        "permute"
    }
    fn backward(&self, dy: &Tensor, _: &[bool]) -> crate::autograd::Grads {
        [Some(dy.permute(&self.inverse))].into()
    }
}

struct ExpandBackward {
    in_shape: Dims,
}
impl Backward for ExpandBackward {
    fn name(&self) -> &'static str {
        "expand"
    }
    fn backward(&self, dy: &Tensor, _: &[bool]) -> crate::autograd::Grads {
        [Some(dy.sum_to_shape(&self.in_shape))].into()
    }
}

struct ContiguousBackward;
impl Backward for ContiguousBackward {
    fn name(&self) -> &'static str {
        "contiguous"
    }
    fn backward(&self, dy: &Tensor, _: &[bool]) -> crate::autograd::Grads {
        [Some(dy.clone())].into()
    }
}

struct SliceBackward {
    in_shape: Dims,
    dim: usize,
    start: usize,
    step: usize,
}
impl Backward for SliceBackward {
    fn name(&self) -> &'static str {
        "slice"
    }
    fn backward(&self, dy: &Tensor, _: &[bool]) -> crate::autograd::Grads {
        [Some(embed_slice(dy, &self.in_shape, self.dim, self.start, self.step))].into()
    }
}

/// Zeros of `shape` with `src` written at `[.., start::step, ..]` along `dim`: the adjoint of `slice`.
fn embed_slice(src: &Tensor, shape: &[usize], dim: usize, start: usize, step: usize) -> Tensor {
    let value = crate::dispatch_all!(src.dtype(), T => {
        let mut out = vec![<T as Element>::from_f64(0.0); shape.iter().product()];
        let strides = contiguous_strides(shape);
        let mut target = strides.clone();
        target[dim] *= step;
        let values = src.contiguous_vec::<T>();
        let mut i = 0;
        for_each_offset(src.shape(), &target, start * strides[dim], |o| {
            out[o] = values[i];
            i += 1;
        });
        Tensor::from_vec(out, shape)
    });
    let len = src.shape()[dim];
    Tensor::from_op(value, &[src], || EmbedBackward { dim, start, len, step })
}

struct EmbedBackward {
    dim: usize,
    start: usize,
    len: usize,
    step: usize,
}
impl Backward for EmbedBackward {
    fn name(&self) -> &'static str {
        "slice_backward"
    }
    fn backward(&self, dy: &Tensor, _: &[bool]) -> crate::autograd::Grads {
        let end = self.start + (self.len.max(1) - 1) * self.step + 1;
        [Some(dy.slice(self.dim as isize, self.start, if self.len == 0 { self.start } else { end }, self.step))].into()
    }
}
