//! The naive reference GEMM the tests compare against: a plain triple loop, same contract as
//! [`sgemm`](super::sgemm).

use super::GemmScalar;

/// Naive `C = alpha * A·B + beta * C` (triple loop, `p` innermost, accumulating in `T` from zero);
/// `beta == 0` does not read `C`. Same strides and shapes as [`sgemm`](super::sgemm).
///
/// # Panics
///
/// If an index is out of bounds of its slice.
#[allow(clippy::too_many_arguments)]
pub fn gemm_reference<T: GemmScalar>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: &[T],
    rsa: usize,
    csa: usize,
    b: &[T],
    rsb: usize,
    csb: usize,
    beta: T,
    c: &mut [T],
    rsc: usize,
    csc: usize,
) {
    for i in 0..m {
        for j in 0..n {
            let mut s = T::ZERO;
            for p in 0..k {
                s = s + a[i * rsa + p * csa] * b[p * rsb + j * csb];
            }
            let cij = &mut c[i * rsc + j * csc];
            *cij = if beta == T::ZERO { alpha * s } else { alpha * s + beta * *cij };
        }
    }
}
