//! The small-shape path: no packing, no allocation, no threads.
//!
//! For tiny products the packing passes of the BLIS path cost as much as the multiply itself, so up to
//! [`SMALL_MNK`](super::SMALL_MNK) multiply-adds a register-blocked kernel (the same 6x16 / 6x8 tile as the
//! packed microkernel) reads `A` in place with any strides (broadcast loads) and `B` in place along its
//! rows (needs unit column stride; masked loads cover a partial last column block). `C` is already oriented
//! row-wise by the caller. Otherwise (or without AVX2) the caller falls back to the packed path.

use super::driver::Problem;

/// Runs `p` on the direct `f32` kernel if `B` has unit column stride; returns whether it ran.
///
/// # Safety
///
/// `p` in bounds with `m, n, k > 0`, C not aliased; the CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn gemm_small_f32(p: &Problem<f32>) -> bool {
    if p.csb != 1 {
        return false;
    }
    // SAFETY: forwarded contract; csb == 1 as the direct kernel requires.
    unsafe {
        super::x86::direct_f32(
            p.m, p.k, p.n, p.alpha, p.a, p.rsa, p.csa, p.b, p.rsb, p.beta, p.c.0, p.rsc, p.csc,
        )
    };
    true
}

/// Runs `p` on the direct `f64` kernel if `B` has unit column stride; returns whether it ran.
///
/// # Safety
///
/// `p` in bounds with `m, n, k > 0`, C not aliased; the CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn gemm_small_f64(p: &Problem<f64>) -> bool {
    if p.csb != 1 {
        return false;
    }
    // SAFETY: forwarded contract; csb == 1 as the direct kernel requires.
    unsafe {
        super::x86::direct_f64(
            p.m, p.k, p.n, p.alpha, p.a, p.rsa, p.csa, p.b, p.rsb, p.beta, p.c.0, p.rsc, p.csc,
        )
    };
    true
}
