//! AVX2+FMA kernels: packed 6x16 `f32` and 6x8 `f64` (12 ymm accumulators), direct up to 6 rows.
//!
//! Blocking (`f32`): a B micro-panel is 256 x 16 x 4 B = 16 KiB (half of a 32 KiB L1d), an A block
//! 144 x 256 x 4 B = 144 KiB (well inside a 512 KiB L2), a B block 256 x 4080 x 4 B = 4 MiB (L3): the
//! values of BLIS's Zen 3 configuration. `f64`: 16 KiB / 144 KiB / 4 MiB with MC = 72, NC = 2040.

use std::arch::x86_64::*;

/// The AVX2+FMA `f32` microkernel (6x16).
pub(crate) struct Avx2F32;
/// The AVX2+FMA `f64` microkernel (6x8).
pub(crate) struct Avx2F64;

packed_kernel!(
    Avx2F32,
    f32,
    tile_f32_6x16,
    "avx2,fma",
    __m256,
    8,
    6,
    144,
    256,
    4080,
    _mm256_setzero_ps,
    _mm256_set1_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_fmadd_ps,
    _mm256_mul_ps,
    _mm256_add_ps,
    partial_rows: [1, 2, 3, 4, 5]
);
packed_kernel!(
    Avx2F64,
    f64,
    tile_f64_6x8,
    "avx2,fma",
    __m256d,
    4,
    6,
    72,
    256,
    2040,
    _mm256_setzero_pd,
    _mm256_set1_pd,
    _mm256_loadu_pd,
    _mm256_storeu_pd,
    _mm256_fmadd_pd,
    _mm256_mul_pd,
    _mm256_add_pd,
    partial_rows: [1, 2, 3, 4, 5]
);

/// Lane masks (all ones = use the lane) for the first `cols` of `2 * 8` `f32` columns.
///
/// # Safety
///
/// The CPU has AVX2.
#[target_feature(enable = "avx2")]
unsafe fn masks_f32(cols: usize) -> [__m256i; 2] {
    let n = _mm256_set1_epi32(cols as i32);
    let lo = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let hi = _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15);
    [_mm256_cmpgt_epi32(n, lo), _mm256_cmpgt_epi32(n, hi)]
}

/// Lane masks for the first `cols` of `2 * 4` `f64` columns.
///
/// # Safety
///
/// The CPU has AVX2.
#[target_feature(enable = "avx2")]
unsafe fn masks_f64(cols: usize) -> [__m256i; 2] {
    let n = _mm256_set1_epi64x(cols as i64);
    let lo = _mm256_setr_epi64x(0, 1, 2, 3);
    let hi = _mm256_setr_epi64x(4, 5, 6, 7);
    [_mm256_cmpgt_epi64(n, lo), _mm256_cmpgt_epi64(n, hi)]
}

/// Masked load of the lanes of `p` selected by `m` (others zero).
///
/// # Safety
///
/// The selected lanes are readable; the CPU has AVX2.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn mload_ps(p: *const f32, m: __m256i) -> __m256 {
    // SAFETY: caller contract.
    unsafe { _mm256_maskload_ps(p, m) }
}

/// Masked store of the lanes selected by `m`.
///
/// # Safety
///
/// The selected lanes are writable; the CPU has AVX2.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn mstore_ps(p: *mut f32, m: __m256i, v: __m256) {
    // SAFETY: caller contract.
    unsafe { _mm256_maskstore_ps(p, m, v) }
}

/// Masked load (f64 lanes).
///
/// # Safety
///
/// The selected lanes are readable; the CPU has AVX2.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn mload_pd(p: *const f64, m: __m256i) -> __m256d {
    // SAFETY: caller contract.
    unsafe { _mm256_maskload_pd(p, m) }
}

/// Masked store (f64 lanes).
///
/// # Safety
///
/// The selected lanes are writable; the CPU has AVX2.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn mstore_pd(p: *mut f64, m: __m256i, v: __m256d) {
    // SAFETY: caller contract.
    unsafe { _mm256_maskstore_pd(p, m, v) }
}

direct_kernel!(
    direct_f32,
    direct_tile_f32,
    f32,
    "avx2,fma",
    __m256,
    8,
    6,
    [6, 5, 4, 3, 2, 1],
    __m256i,
    masks_f32,
    mload_ps,
    mstore_ps,
    _mm256_setzero_ps,
    _mm256_set1_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_fmadd_ps,
    _mm256_mul_ps,
    _mm256_add_ps
);
direct_kernel!(
    direct_f64,
    direct_tile_f64,
    f64,
    "avx2,fma",
    __m256d,
    4,
    6,
    [6, 5, 4, 3, 2, 1],
    __m256i,
    masks_f64,
    mload_pd,
    mstore_pd,
    _mm256_setzero_pd,
    _mm256_set1_pd,
    _mm256_loadu_pd,
    _mm256_storeu_pd,
    _mm256_fmadd_pd,
    _mm256_mul_pd,
    _mm256_add_pd
);
