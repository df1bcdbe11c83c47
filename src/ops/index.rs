//! Indexing by `i64` index tensors.
//!
//! | op | forward | backward |
//! |---|---|---|
//! | index_select(d, idx) | `y[.., i, ..] = x[.., idx[i], ..]` | `index_add` of dy into zeros |
//! | index_add(d, idx, src) | `y = x; y[.., idx[i], ..] += src[.., i, ..]` | dx = dy, dsrc = dy.index_select(d, idx) |
//! | gather(d, idx) | `y[i][j][k] = x[i][idx[i][j][k]][k]` (d = 1) | `scatter_add` of dy into zeros |
//! | scatter_add(d, idx, src) | `y = x; y[i][idx[i][j][k]][k] += src[i][j][k]` | dx = dy, dsrc = dy.gather(d, idx) |

use crate::autograd::Backward;
use crate::error::panic_msg;
use crate::tensor::dtype::sealed::Sealed as _;
use crate::tensor::layout::{contiguous_strides, for_each_offset, for_each_offset2};
use crate::tensor::{DType, Dims, Tensor};

/// The index values, checked once up front (dtype and range) so the loops below cannot go out of bounds and
/// the panic names the op, the offending index and both shapes.
#[track_caller]
fn check_index(op: &str, index: &Tensor, shape: &[usize], dim: usize) -> Vec<usize> {
    if index.dtype() != DType::I64 {
        panic_msg(format!("{op}: index must have dtype int64, got {} (shape {:?})", index.dtype(), index.shape()));
    }
    let size = shape[dim];
    let values = index.contiguous_vec::<i64>();
    // A loop, not a closure, so `#[track_caller]` reaches the user's line.
    for &i in &values {
        if i < 0 || i as usize >= size {
            panic_msg(format!(
                "{op}: index {i} is out of bounds for dim {dim} with size {size} (tensor shape {shape:?}, index shape {:?})",
                index.shape()
            ));
        }
    }
    values.into_iter().map(|i| i as usize).collect()
}

impl Tensor {
    /// Selects entries `index` (1-D `i64`) along `dim`.
    ///
    /// # Panics
    /// If `index` is not a 1-D `i64` tensor or holds an out-of-range index.
    #[track_caller]
    pub fn index_select(&self, dim: isize, index: &Tensor) -> Tensor {
        let _p = crate::profile::op_scope("index_select");
        let d = self.normalize_dim("index_select", dim);
        if index.rank() != 1 {
            panic_msg(format!("index_select: index must be 1-D, got shape {:?}", index.shape()));
        }
        let idx = check_index("index_select", index, self.shape(), d);
        let shape = self.shape();
        let (outer, size, inner): (usize, usize, usize) =
            (shape[..d].iter().product(), shape[d], shape[d + 1..].iter().product());
        let value = crate::dispatch_all!(self.dtype(), T => {
            let x = self.contiguous_vec::<T>();
            let mut out = Vec::with_capacity(outer * idx.len() * inner);
            for o in 0..outer {
                for &i in &idx {
                                        let start = (o * size + i) * inner;
                    out.extend_from_slice(&x[start..start + inner]);
                }
            }
            let mut out_shape = shape.to_vec();
            out_shape[d] = idx.len();
            Tensor::from_vec(out, &out_shape)
        });
        Tensor::from_op(value, &[self], || IndexSelectBackward { index: index.clone(), dim: d, in_shape: shape.into() })
    }

    /// This tensor plus `src` added at entries `index` along `dim` (repeated indices accumulate).
    ///
    /// # Panics
    /// On dtype or shape mismatches, or out-of-range indices.
    #[track_caller]
    pub fn index_add(&self, dim: isize, index: &Tensor, src: &Tensor) -> Tensor {
        let _p = crate::profile::op_scope("index_add");
        let d = self.normalize_dim("index_add", dim);
        let idx = check_index("index_add", index, self.shape(), d);
        let mut expect = self.shape().to_vec();
        expect[d] = idx.len();
        if src.shape() != expect.as_slice() || src.dtype() != self.dtype() {
            crate::error::shape_mismatch(
                "index_add",
                "source must match the tensor except along dim",
                src.shape(),
                &expect,
            );
        }
        let shape = self.shape();
        let (outer, size, inner): (usize, usize, usize) =
            (shape[..d].iter().product(), shape[d], shape[d + 1..].iter().product());
        let value = crate::dispatch_float!(self.dtype(), "index_add", T => {
            let mut out = self.contiguous_vec::<T>();
            let s = src.contiguous_vec::<T>();
            for o in 0..outer {
                for (k, &i) in idx.iter().enumerate() {
                                        let dst = (o * size + i) * inner;
                    let from = (o * idx.len() + k) * inner;
                    for j in 0..inner {
                        out[dst + j] += s[from + j];
                    }
                }
            }
            Tensor::from_vec(out, shape)
        });
        Tensor::from_op(value, &[self, src], || IndexAddBackward { index: index.clone(), dim: d })
    }

    /// `y[i][j][k] = x[i][index[i][j][k]][k]` (for `dim = 1`); the output has `index`'s shape.
    ///
    /// # Panics
    /// If ranks differ, `index` is larger than `self` along a dim other than `dim`, or an index is out of range.
    #[track_caller]
    pub fn gather(&self, dim: isize, index: &Tensor) -> Tensor {
        let _p = crate::profile::op_scope("gather");
        let d = self.normalize_dim("gather", dim);
        if self.rank() == 0 && index.rank() == 0 {
            return self.reshape([1usize]).gather(0, &index.reshape([1usize])).reshape([0usize; 0]);
        }
        check_scatter_shapes("gather", self.shape(), index.shape(), d);
        let idx = check_index("gather", index, self.shape(), d);
        let xs = contiguous_strides(self.shape());
        let mut base_strides = xs.clone();
        base_strides[d] = 0;
        let value = crate::dispatch_all!(self.dtype(), T => {
            let x = self.contiguous_vec::<T>();
            let mut out = Vec::with_capacity(idx.len());
            let mut k = 0;
            for_each_offset(index.shape(), &base_strides, 0, |base| {
                out.push(x[base + idx[k] * xs[d]]);
                k += 1;
            });
            Tensor::from_vec(out, index.shape())
        });
        Tensor::from_op(value, &[self], || GatherBackward {
            index: index.clone(),
            dim: d,
            in_shape: self.shape().into(),
        })
    }

    /// This tensor with `src[i][j][k]` added at `[i][index[i][j][k]][k]` (for `dim = 1`).
    ///
    /// # Panics
    /// On shape or dtype mismatches or out-of-range indices.
    #[track_caller]
    pub fn scatter_add(&self, dim: isize, index: &Tensor, src: &Tensor) -> Tensor {
        let _p = crate::profile::op_scope("scatter_add");
        let d = self.normalize_dim("scatter_add", dim);
        check_scatter_shapes("scatter_add", self.shape(), index.shape(), d);
        if src.shape() != index.shape() {
            crate::error::shape_mismatch("scatter_add", "src must have index's shape", src.shape(), index.shape());
        }
        if src.dtype() != self.dtype() {
            panic_msg(format!("scatter_add: dtype mismatch: {} vs {}", self.dtype(), src.dtype()));
        }
        let idx = check_index("scatter_add", index, self.shape(), d);
        let os = contiguous_strides(self.shape());
        let mut base_strides = os.clone();
        base_strides[d] = 0;
        let value = crate::dispatch_float!(self.dtype(), "scatter_add", T => {
            let mut out = self.contiguous_vec::<T>();
            let guard = src.read();
            let s = T::slice(&guard);
            let l = src.layout();
            let mut k = 0;
            for_each_offset2(index.shape(), (&base_strides, 0), (&l.strides, l.offset), |base, from| {
                out[base + idx[k] * os[d]] += s[from];
                k += 1;
            });
            drop(guard);
            Tensor::from_vec(out, self.shape())
        });
        Tensor::from_op(value, &[self, src], || ScatterAddBackward { index: index.clone(), dim: d })
    }
}

/// `index` must have the same rank as `x` and be no larger along every dim except `dim`.
#[track_caller]
fn check_scatter_shapes(op: &str, x: &[usize], index: &[usize], dim: usize) {
    let ok = x.len() == index.len() && x.iter().zip(index).enumerate().all(|(k, (&a, &b))| k == dim || b <= a);
    if !ok {
        crate::error::shape_mismatch(op, "index must have the same rank and fit inside the tensor", x, index);
    }
}

struct IndexSelectBackward {
    index: Tensor,
    dim: usize,
    in_shape: Dims,
}
impl Backward for IndexSelectBackward {
    fn name(&self) -> &'static str {
        "index_select"
    }
    fn backward(&self, dy: &Tensor, _: &[bool]) -> crate::autograd::Grads {
        let zeros = Tensor::zeros_dtype(&self.in_shape, dy.dtype());
        [Some(zeros.index_add(self.dim as isize, &self.index, dy))].into()
    }
}

struct IndexAddBackward {
    index: Tensor,
    dim: usize,
}
impl Backward for IndexAddBackward {
    fn name(&self) -> &'static str {
        "index_add"
    }
    fn backward(&self, dy: &Tensor, needs: &[bool]) -> crate::autograd::Grads {
        [needs[0].then(|| dy.clone()), needs[1].then(|| dy.index_select(self.dim as isize, &self.index))].into()
    }
}

struct GatherBackward {
    index: Tensor,
    dim: usize,
    in_shape: Dims,
}
impl Backward for GatherBackward {
    fn name(&self) -> &'static str {
        "gather"
    }
    fn backward(&self, dy: &Tensor, _: &[bool]) -> crate::autograd::Grads {
        let zeros = Tensor::zeros_dtype(&self.in_shape, dy.dtype());
        [Some(zeros.scatter_add(self.dim as isize, &self.index, dy))].into()
    }
}

struct ScatterAddBackward {
    index: Tensor,
    dim: usize,
}
impl Backward for ScatterAddBackward {
    fn name(&self) -> &'static str {
        "scatter_add"
    }
    fn backward(&self, dy: &Tensor, needs: &[bool]) -> crate::autograd::Grads {
        [needs[0].then(|| dy.clone()), needs[1].then(|| dy.gather(self.dim as isize, &self.index))].into()
    }
}
