//! Matrix products with `torch.matmul` semantics.
//!
//! forward:  Y = A B over the last two dims; batch dims broadcast; a 1-D left operand is a row vector and a
//!           1-D right operand a column vector, their added dim removed from the result.
//! backward: dA = dY B^T,  dB = A^T dY  (each summed over the batch dims its operand was broadcast along).
//!
//! The transposes are views: the GEMM takes arbitrary strides, so they cost no copies.

use crate::autograd::Backward;
use crate::error::shape_mismatch;
use crate::tensor::layout::{broadcast_shapes, for_each_offset2, Layout};
use crate::tensor::{Dims, Tensor};

impl Tensor {
    /// Matrix product with `torch.matmul` semantics (dot, matrix-vector, matrix, batched with broadcasting).
    ///
    /// # Shapes
    /// `[.., m, k] x [.., k, n] -> [broadcast(..), m, n]`; `[k] x [k] -> []`; `[m, k] x [k] -> [m]`; `[k] x [k, n] -> [n]`.
    ///
    /// # Panics
    /// If an operand is 0-D, the inner dimensions differ, or the batch dims do not broadcast.
    #[track_caller]
    pub fn matmul(&self, other: &Tensor) -> Tensor {
        let _p = crate::profile::op_scope("matmul");
        let (ra, rb) = (self.rank(), other.rank());
        if ra == 0 || rb == 0 {
            shape_mismatch("matmul", "both operands need at least one dimension", self.shape(), other.shape());
        }
        // Checked here so the message shows the caller's shapes, not the internally unsqueezed 1-D operands.
        let k_b = if rb == 1 { other.shape()[0] } else { other.shape()[rb - 2] };
        if self.shape()[ra - 1] != k_b {
            shape_mismatch("matmul", "inner dimensions differ", self.shape(), other.shape());
        }
        if self.dtype() != other.dtype() {
            dtype_mismatch(self, other);
        }
        match (ra, rb) {
            (1, 1) => self.unsqueeze(0).matmul_nd(&other.unsqueeze(1)).reshape([0usize; 0]),
            (1, _) => self.unsqueeze(0).matmul_nd(other).squeeze(-2),
            (_, 1) => self.matmul_nd(&other.unsqueeze(1)).squeeze(-1),
            _ => self.matmul_nd(other),
        }
    }

    /// Alias of [`matmul`](Self::matmul) for 2-D operands, as `torch.mm`.
    #[track_caller]
    pub fn mm(&self, other: &Tensor) -> Tensor {
        let _p = crate::profile::op_scope("mm");
        if self.rank() != 2 || other.rank() != 2 {
            shape_mismatch("mm", "both operands must be 2-D", self.shape(), other.shape());
        }
        self.matmul_nd(other)
    }

    #[track_caller]
    fn matmul_nd(&self, other: &Tensor) -> Tensor {
        let (a, b) = (self, other);
        let (ra, rb) = (a.rank(), b.rank());
        let (m, k) = (a.shape()[ra - 2], a.shape()[ra - 1]);
        let (k2, n) = (b.shape()[rb - 2], b.shape()[rb - 1]);
        if k != k2 {
            shape_mismatch("matmul", "inner dimensions differ", a.shape(), b.shape());
        }
        if a.dtype() != b.dtype() {
            dtype_mismatch(a, b);
        }
        let Some(batch) = broadcast_shapes(&a.shape()[..ra - 2], &b.shape()[..rb - 2]) else {
            shape_mismatch("matmul", "batch dimensions cannot be broadcast", a.shape(), b.shape())
        };
        let value = crate::dispatch_float!(a.dtype(), "matmul", T => batched_product::<T>(a, b, &batch, (m, k, n)));
        Tensor::from_op(value, &[a, b], || MatmulBackward { a: a.clone(), b: b.clone() })
    }
}

#[cold]
#[track_caller]
fn dtype_mismatch(a: &Tensor, b: &Tensor) -> ! {
    crate::error::panic_msg(format!(
        "matmul: dtype mismatch: lhs {} {:?} vs rhs {} {:?}",
        a.dtype(),
        a.shape(),
        b.dtype(),
        b.shape()
    ))
}

/// The value of a broadcast batched product: one GEMM per batch entry (or one for all when the right
/// operand is a single matrix and the left one's rows can be merged).
fn batched_product<T: crate::ops::fast::Kernel>(
    a: &Tensor,
    b: &Tensor,
    batch: &[usize],
    (m, k, n): (usize, usize, usize),
) -> Tensor {
    let mut shape: Vec<usize> = batch.to_vec();
    shape.extend([m, n]);
    let batches: usize = batch.iter().product();
    let mut out = vec![<T as crate::tensor::Element>::from_f64(0.0); batches * m * n];
    let (la, lb) = (a.layout(), b.layout());
    let ga = a.read();
    let gb = b.read();
    let (da, db) = (T::slice(&ga), T::slice(&gb));
    let b_strides = (lb.strides[lb.shape.len() - 2], lb.strides[lb.shape.len() - 1]);
    // One big GEMM: [batch*m, k] x [k, n] when b has no batch and a's rows merge into one strided dim.
    if b.rank() == 2 {
        if let Some(rows) = la.view_strides(&[batches * m, k]) {
            if batches * m > 0 {
                crate::ops::fast::gemm(
                    (batches * m, k, n),
                    &da[la.offset..],
                    (rows[0], rows[1]),
                    &db[lb.offset..],
                    b_strides,
                    &mut out,
                    (n, 1),
                );
            }
            return Tensor::from_vec(out, &shape);
        }
    }
    let bstride = |l: &Layout| -> Dims {
        let lead = batch.len() + 2 - l.shape.len();
        let mut s: Dims = smallvec::SmallVec::from_elem(0, batch.len());
        for (i, slot) in s.iter_mut().enumerate().skip(lead) {
            let d = i - lead;
            *slot = if l.shape[d] == 1 { 0 } else { l.strides[d] };
        }
        s
    };
    let (sa, sb) = (bstride(la), bstride(lb));
    let a_strides = (la.strides[la.shape.len() - 2], la.strides[la.shape.len() - 1]);
    let mut starts = Vec::with_capacity(batches);
    for_each_offset2(batch, (&sa, la.offset), (&sb, lb.offset), |oa, ob| starts.push((oa, ob)));
    for (chunk, &(oa, ob)) in out.chunks_mut((m * n).max(1)).zip(&starts) {
        crate::ops::fast::gemm((m, k, n), &da[oa..], a_strides, &db[ob..], b_strides, chunk, (n, 1));
    }
    Tensor::from_vec(out, &shape)
}

struct MatmulBackward {
    a: Tensor,
    b: Tensor,
}

impl Backward for MatmulBackward {
    fn name(&self) -> &'static str {
        "matmul"
    }

    fn backward(&self, dy: &Tensor, needs: &[bool]) -> crate::autograd::Grads {
        let (a, b) = (&self.a, &self.b);
        let da = needs[0].then(|| dy.matmul_nd(&b.transpose(-1, -2)).sum_to_shape(a.shape()));
        let db = needs[1].then(|| {
            if b.rank() == 2 && a.rank() > 2 {
                // Merge the batch into the rows: dB = A_flat^T dY_flat, one GEMM and no batch-sized temporary.
                let k = a.size(-1);
                let n = b.size(-1);
                a.reshape([-1, k as isize]).t().matmul_nd(&dy.reshape([-1, n as isize]))
            } else {
                a.transpose(-1, -2).matmul_nd(dy).sum_to_shape(b.shape())
            }
        });
        [da, db].into()
    }
}
