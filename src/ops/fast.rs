//! The bridge from ops to `tensorgrad-kernels` for hot value computations: f32 goes to the SIMD kernels,
//! everything else to the scalar reference paths in `ops`.

use super::unary::{map_float, zip_float};
use crate::tensor::{Float, Tensor};

/// `f(a, b)` elementwise with broadcasting.
#[track_caller]
pub(crate) fn binary_value(op: &str, a: &Tensor, b: &Tensor, f: impl Fn(f64, f64) -> f64) -> Tensor {
    zip_float(op, a, b, f)
}

/// `f(x)` for an op with one scalar parameter `s`.
#[track_caller]
pub(crate) fn scalar_value(op: &str, x: &Tensor, _s: f64, f: impl Fn(f64) -> f64) -> Tensor {
    map_float(x, op, f)
}

/// `dst += src` elementwise.
pub(crate) fn add_assign<T: Float>(dst: &mut [T], src: &[T]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

/// `C = A B` (C overwritten), A m x k, B k x n, C m x n, each given from its (0, 0) element with row and
/// column strides.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm<T: Float>(
    (m, k, n): (usize, usize, usize),
    a: &[T],
    (rsa, csa): (usize, usize),
    b: &[T],
    (rsb, csb): (usize, usize),
    c: &mut [T],
    (rsc, csc): (usize, usize),
) {
    for i in 0..m {
        for j in 0..n {
            c[i * rsc + j * csc] = T::ZERO;
        }
        for p in 0..k {
            let aip = a[i * rsa + p * csa];
            for j in 0..n {
                c[i * rsc + j * csc] += aip * b[p * rsb + j * csb];
            }
        }
    }
}
