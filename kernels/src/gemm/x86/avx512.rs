//! AVX-512F kernels: packed 12x32 `f32` and 12x16 `f64` (24 zmm accumulators of 32), direct up to 12 rows.
//!
//! The dev machine reports itself as AMD EPYC with AVX-512 (48 KiB L1d, 1 MiB L2 per core, 32 MiB L3);
//! its 512-bit FMAs do twice the work of AVX2's per instruction, so this tier is picked first when the
//! CPU has `avx512f`. Blocking (`f32`): KC = 512, MC = 120, NC = 1024: A block 120 x 512 x 4 B = 240 KiB
//! (L2), B micro-panel 512 x 32 x 4 B = 64 KiB (streamed from L2 with the A block; the C tile is read and
//! written once per 512 steps of k instead of 256), B block 512 x 1024 x 4 B = 2 MiB (L2 of both cores /
//! L3). Measured against the former 240 / 256 / 4096 (interleaved best-of batches at real-time priority,
//! one thread, `gemm_gflops --one`): 512^3 214 -> 222 GFLOP/s, 1024^3 207 -> 215, 2048^3 198 -> 218,
//! 128x784x512 199 -> 207; 256^3 unchanged (k = 256). `f64` (KC = 256, MC = 120, NC = 2048): 32 KiB /
//! 240 KiB / 4 MiB.

use std::arch::x86_64::*;

/// The AVX-512 `f32` microkernel (12x32).
pub(crate) struct Avx512F32;
/// The AVX-512 `f64` microkernel (12x16).
pub(crate) struct Avx512F64;

packed_kernel!(
    Avx512F32,
    f32,
    tile_f32_12x32,
    "avx512f",
    __m512,
    16,
    12,
    120,
    512,
    1024,
    _mm512_setzero_ps,
    _mm512_set1_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_fmadd_ps,
    _mm512_mul_ps,
    _mm512_add_ps
);
packed_kernel!(
    Avx512F64,
    f64,
    tile_f64_12x16,
    "avx512f",
    __m512d,
    8,
    12,
    120,
    256,
    2048,
    _mm512_setzero_pd,
    _mm512_set1_pd,
    _mm512_loadu_pd,
    _mm512_storeu_pd,
    _mm512_fmadd_pd,
    _mm512_mul_pd,
    _mm512_add_pd
);

/// Lane masks for the first `cols` of `2 * 16` `f32` columns.
///
/// # Safety
///
/// None needed (plain integer code); `unsafe` only to match the other ISAs' helper.
#[inline]
unsafe fn masks_f32(cols: usize) -> [__mmask16; 2] {
    let bits: u64 = if cols >= 64 { u64::MAX } else { (1u64 << cols) - 1 };
    [bits as u16, (bits >> 16) as u16]
}

/// Lane masks for the first `cols` of `2 * 8` `f64` columns.
///
/// # Safety
///
/// None needed (plain integer code).
#[inline]
unsafe fn masks_f64(cols: usize) -> [__mmask8; 2] {
    let bits: u64 = if cols >= 64 { u64::MAX } else { (1u64 << cols) - 1 };
    [bits as u8, (bits >> 8) as u8]
}

/// Masked load of the lanes of `p` selected by `m` (others zero).
///
/// # Safety
///
/// The selected lanes are readable; the CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn mload_ps(p: *const f32, m: __mmask16) -> __m512 {
    // SAFETY: caller contract.
    unsafe { _mm512_maskz_loadu_ps(m, p) }
}

/// Masked store of the lanes selected by `m`.
///
/// # Safety
///
/// The selected lanes are writable; the CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn mstore_ps(p: *mut f32, m: __mmask16, v: __m512) {
    // SAFETY: caller contract.
    unsafe { _mm512_mask_storeu_ps(p, m, v) }
}

/// Masked load (f64 lanes).
///
/// # Safety
///
/// The selected lanes are readable; the CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn mload_pd(p: *const f64, m: __mmask8) -> __m512d {
    // SAFETY: caller contract.
    unsafe { _mm512_maskz_loadu_pd(m, p) }
}

/// Masked store (f64 lanes).
///
/// # Safety
///
/// The selected lanes are writable; the CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn mstore_pd(p: *mut f64, m: __mmask8, v: __m512d) {
    // SAFETY: caller contract.
    unsafe { _mm512_mask_storeu_pd(p, m, v) }
}

direct_kernel!(
    direct_f32,
    direct_tile_f32,
    f32,
    "avx512f",
    __m512,
    16,
    12,
    [12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1],
    __mmask16,
    masks_f32,
    mload_ps,
    mstore_ps,
    _mm512_setzero_ps,
    _mm512_set1_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_fmadd_ps,
    _mm512_mul_ps,
    _mm512_add_ps
);
direct_kernel!(
    direct_f64,
    direct_tile_f64,
    f64,
    "avx512f",
    __m512d,
    8,
    12,
    [12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1],
    __mmask8,
    masks_f64,
    mload_pd,
    mstore_pd,
    _mm512_setzero_pd,
    _mm512_set1_pd,
    _mm512_loadu_pd,
    _mm512_storeu_pd,
    _mm512_fmadd_pd,
    _mm512_mul_pd,
    _mm512_add_pd
);
