//! Differentiable ops, one file per family: forward, then its backward, then its tests.
//! See `src/ops/README.md` for the checklist to add one.
//!
//! This file holds the value-level helpers every op family shares: elementwise maps, broadcasting zips and
//! row reductions over arbitrary dims. They compute values only; the op files attach the autograd nodes.

mod activation;
mod binary;
mod compare;
pub(crate) mod conv;
pub(crate) mod fast;
mod index;
mod join;
mod matmul;
mod overload;
mod reduce;
mod softmax;
mod unary;
mod view;

pub use activation::GeluApprox;
pub use view::ShapeArg;

use crate::error::{panic_msg, shape_mismatch};
use crate::tensor::layout::{broadcast_shapes, broadcast_strides, for_each_offset2};
use crate::tensor::{Element, Layout, Tensor};

impl Tensor {
    /// `dim` as an index into the shape, counting from the end when negative.
    #[track_caller]
    pub(crate) fn normalize_dim(&self, op: &str, dim: isize) -> usize {
        normalize_dim(op, dim, self.rank())
    }
}

/// Resolves a possibly negative `dim` against `rank`, panicking with the op's name when out of range.
/// A 0-D tensor accepts dim 0 and -1, as in PyTorch.
#[track_caller]
pub(crate) fn normalize_dim(op: &str, dim: isize, rank: usize) -> usize {
    let r = rank as isize;
    let d = if dim < 0 { dim + r.max(1) } else { dim };
    if d < 0 || d >= r.max(1) {
        panic_msg(format!("{op}: dimension {dim} is out of range for a tensor of rank {rank}"));
    }
    d as usize
}

/// Resolves a list of dims (deduplicated, sorted). Reducing a 0-D tensor over its dim 0 / -1 reduces
/// nothing, so for rank 0 the list comes back empty (after checking it).
#[track_caller]
pub(crate) fn normalize_dims(op: &str, dims: &[isize], rank: usize) -> Vec<usize> {
    // A plain loop, not a closure: `#[track_caller]` does not reach through closures.
    let mut out: Vec<usize> = Vec::with_capacity(dims.len());
    for &d in dims {
        out.push(normalize_dim(op, d, rank));
    }
    out.sort_unstable();
    out.dedup();
    if rank == 0 {
        out.clear();
    }
    out
}

/// `f` applied to every element, as a new contiguous tensor of the same shape.
pub(crate) fn map<T: Element, U: Element>(x: &Tensor, f: impl Fn(T) -> U) -> Tensor {
    let out: Vec<U> = x.with_slice(|s: &[T]| s.iter().map(|&v| f(v)).collect());
    Tensor::from_vec(out, x.shape())
}

/// `f(a, b)` elementwise with NumPy broadcasting, as a new contiguous tensor.
#[track_caller]
pub(crate) fn zip_map<T: Element, U: Element>(op: &str, a: &Tensor, b: &Tensor, f: impl Fn(T, T) -> U) -> Tensor {
    if a.dtype() != b.dtype() {
        panic_msg(format!(
            "{op}: dtype mismatch: lhs {} {:?} vs rhs {} {:?}",
            a.dtype(),
            a.shape(),
            b.dtype(),
            b.shape()
        ));
    }
    let Some(shape) = broadcast_shapes(a.shape(), b.shape()) else {
        shape_mismatch(op, "shapes cannot be broadcast together", a.shape(), b.shape())
    };
    let out: Vec<U> = if a.shape() == b.shape() && a.is_contiguous() && b.is_contiguous() {
        a.with_slice(|x: &[T]| b.with_slice(|y: &[T]| x.iter().zip(y).map(|(&p, &q)| f(p, q)).collect()))
    } else {
        let (la, lb) = (a.layout(), b.layout());
        let (sa, sb) = (broadcast_strides(la, &shape), broadcast_strides(lb, &shape));
        let ga = a.read();
        let gb = b.read();
        let (da, db) = (T::slice(&ga), T::slice(&gb));
        let mut out = Vec::with_capacity(shape.iter().product());
        for_each_offset2(&shape, (&sa, la.offset), (&sb, lb.offset), |i, j| out.push(f(da[i], db[j])));
        out
    };
    Tensor::from_vec(out, &shape)
}

/// Reduces `dims` of `x` with `f` over each group of elements (given contiguously).
/// Returns a tensor of the kept dims (with size-1 reduced dims when `keepdim`).
pub(crate) fn reduce_groups<T: Element, U: Element>(
    x: &Tensor,
    dims: &[usize],
    keepdim: bool,
    f: impl Fn(&[T]) -> U,
) -> Tensor {
    let rank = x.rank();
    let kept: Vec<usize> = (0..rank).filter(|d| !dims.contains(d)).collect();
    let group: usize = dims.iter().map(|&d| x.shape()[d]).product();
    let outer: usize = kept.iter().map(|&d| x.shape()[d]).product();
    let out_shape: Vec<usize> = if keepdim {
        (0..rank).map(|d| if dims.contains(&d) { 1 } else { x.shape()[d] }).collect()
    } else {
        kept.iter().map(|&d| x.shape()[d]).collect()
    };
    let reduces_trailing = dims.iter().enumerate().all(|(i, &d)| d == rank - dims.len() + i);
    let values: Vec<U> = if reduces_trailing {
        x.with_slice(|s: &[T]| reduce_rows(s, outer, group, &f))
    } else {
        let perm: Vec<usize> = kept.iter().chain(dims).copied().collect();
        let layout = x.layout();
        let permuted = Layout {
            shape: perm.iter().map(|&p| layout.shape[p]).collect(),
            strides: perm.iter().map(|&p| layout.strides[p]).collect(),
            offset: layout.offset,
        };
        let guard = x.read();
        let data = crate::tensor::gather_row_major(T::slice(&guard), &permuted);
        reduce_rows(&data, outer, group, &f)
    };
    Tensor::from_vec(values, &out_shape)
}

/// `f` over each of the `outer` consecutive groups of `group` elements (an empty group still gets `f(&[])`).
fn reduce_rows<T: Copy, U>(data: &[T], outer: usize, group: usize, f: &impl Fn(&[T]) -> U) -> Vec<U> {
    if group == 0 {
        return (0..outer).map(|_| f(&[])).collect();
    }
    data.chunks_exact(group).map(f).collect()
}
