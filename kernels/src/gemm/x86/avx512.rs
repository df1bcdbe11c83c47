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
    _mm512_add_ps,
    partial_rows: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    narrow: 8 => narrow_f32
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
    _mm512_add_pd,
    partial_rows: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
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

/// `Kernel::narrow` for the 12x32 `f32` kernel: a partial B panel of `cols <= 8` valid columns against the
/// 12-row packed A panels of a block.
///
/// Each A panel step (12 rows, contiguous in the packed panel) is one masked 16-lane load; each of the
/// `cols` B elements one broadcast; per step and panel `cols` FMAs. Groups of `G` panels run together
/// (`G * cols <= 16` accumulators: 8 independent chains for one column). For `n = 65` this replaces the
/// third full 12x32 tile per row panel (a third of the multiply-adds) by about a twentieth of its cost.
///
/// # Safety
///
/// As `Kernel::narrow` (MR = 12, NR = 32): `a` holds `ceil(m / 12) * 12 * k` and `b` `32 * k` packed
/// elements; C writable for `m x cols`; the CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn narrow_f32(
    k: usize,
    alpha: f32,
    a: *const f32,
    m: usize,
    b: *const f32,
    beta: f32,
    c: *mut f32,
    rsc: usize,
    csc: usize,
    cols: usize,
) {
    // SAFETY: (every arm) forwarded caller contract, with the column count as a constant.
    unsafe {
        match cols {
            1 => narrow_cols_f32::<1, 8>(k, alpha, a, m, b, beta, c, rsc, csc),
            2 => narrow_cols_f32::<2, 8>(k, alpha, a, m, b, beta, c, rsc, csc),
            3 => narrow_cols_f32::<3, 4>(k, alpha, a, m, b, beta, c, rsc, csc),
            4 => narrow_cols_f32::<4, 4>(k, alpha, a, m, b, beta, c, rsc, csc),
            5 => narrow_cols_f32::<5, 2>(k, alpha, a, m, b, beta, c, rsc, csc),
            6 => narrow_cols_f32::<6, 2>(k, alpha, a, m, b, beta, c, rsc, csc),
            7 => narrow_cols_f32::<7, 2>(k, alpha, a, m, b, beta, c, rsc, csc),
            8 => narrow_cols_f32::<8, 2>(k, alpha, a, m, b, beta, c, rsc, csc),
            _ => unreachable!("narrow_f32: {cols} columns"),
        }
    }
}

/// [`narrow_f32`] with `C` columns: the A panels in groups of up to `G` (then 4, 2, 1 for the rest).
///
/// # Safety
///
/// As [`narrow_f32`] with `cols == C`.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn narrow_cols_f32<const C: usize, const G: usize>(
    k: usize,
    alpha: f32,
    a: *const f32,
    m: usize,
    b: *const f32,
    beta: f32,
    c: *mut f32,
    rsc: usize,
    csc: usize,
) {
    const MR: usize = 12;
    let panels = m.div_ceil(MR);
    let mut ip = 0;
    while ip < panels {
        let left = panels - ip;
        let g = if left >= G {
            G
        } else if left >= 4 {
            4
        } else if left >= 2 {
            2
        } else {
            1
        };
        let rows = (m - ip * MR).min(g * MR);
        let (ag, cg) = (a.wrapping_add(ip * MR * k), c.wrapping_add(ip * MR * rsc));
        // SAFETY: (every arm) panels ip .. ip + g < panels are in the packed block, their rows
        // ip*MR .. + rows <= m of C are in the caller's block (caller contract).
        unsafe {
            match g {
                8 => narrow_group_f32::<C, 8>(k, alpha, ag, rows, b, beta, cg, rsc, csc),
                4 => narrow_group_f32::<C, 4>(k, alpha, ag, rows, b, beta, cg, rsc, csc),
                2 => narrow_group_f32::<C, 2>(k, alpha, ag, rows, b, beta, cg, rsc, csc),
                _ => narrow_group_f32::<C, 1>(k, alpha, ag, rows, b, beta, cg, rsc, csc),
            }
        }
        ip += g;
    }
}

/// `G` consecutive 12-row A panels (`rows` valid rows in all, `> (G - 1) * 12`) times the first `C`
/// columns of the B panel: accumulator `acc[g][j]` holds rows `12g .. 12g + 12` of column `j` in its first
/// 12 lanes (the other 4 are masked to zero and never written).
///
/// # Safety
///
/// As [`narrow_f32`] for the `G` panels at `a` (`12 * k` apart) and the `rows x C` block of C at `c`.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn narrow_group_f32<const C: usize, const G: usize>(
    k: usize,
    alpha: f32,
    a: *const f32,
    rows: usize,
    b: *const f32,
    beta: f32,
    c: *mut f32,
    rsc: usize,
    csc: usize,
) {
    const MR: usize = 12;
    const NR: usize = 32;
    const ROWS_MASK: __mmask16 = (1 << MR) - 1;
    let mut acc = [[_mm512_setzero_ps(); C]; G];
    for p in 0..k {
        // SAFETY: p < k: B step p has NR readable elements (C <= NR used), and each panel g < G has MR
        // readable elements at step p (masked load of exactly those).
        unsafe {
            let bp = b.add(p * NR);
            let mut bv = [_mm512_setzero_ps(); C];
            for (j, bj) in bv.iter_mut().enumerate() {
                *bj = _mm512_set1_ps(*bp.add(j));
            }
            for (g, acc_g) in acc.iter_mut().enumerate() {
                let av = _mm512_maskz_loadu_ps(ROWS_MASK, a.add(g * MR * k + p * MR));
                for (acc_gj, &bj) in acc_g.iter_mut().zip(&bv) {
                    *acc_gj = _mm512_fmadd_ps(av, bj, *acc_gj);
                }
            }
        }
    }
    let va = _mm512_set1_ps(alpha);
    for (g, acc_g) in acc.iter().enumerate() {
        let valid = MR.min(rows.saturating_sub(g * MR));
        for (j, &acc_gj) in acc_g.iter().enumerate() {
            let mut t = [0.0f32; 16];
            // SAFETY: t has 16 elements.
            unsafe { _mm512_storeu_ps(t.as_mut_ptr(), _mm512_mul_ps(va, acc_gj)) };
            for (i, &ti) in t.iter().enumerate().take(valid) {
                // SAFETY: row g*MR + i < rows, column j < C: in the caller's block of C.
                unsafe {
                    let cij = c.add((g * MR + i) * rsc + j * csc);
                    *cij = if beta == 0.0 { ti } else { ti + beta * *cij };
                }
            }
        }
    }
}

/// Packs one full 12-row panel of a row-major `f32` A (`kc` columns, row stride `rsa`, unit column
/// stride) k-major into `dst` (`dst[p * 12 + i] = a[i * rsa + p]`), 16 columns at a time: 12 row loads,
/// an in-register 16x16 transpose (rows 12..15 zero), 16 masked 12-lane stores. About twice as fast as
/// the scalar copy (12 loads and stores of one element per step of k), which took a fifth of the time of
/// `y = x W^T` for char-lstm's `[2048, 256] x [256, 65]`.
///
/// # Safety
///
/// `a + i * rsa + p` readable for `i < 12`, `p < kc`; `dst` writable for `12 * kc` elements; the CPU has
/// AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn pack_a12_row_major_f32(kc: usize, a: *const f32, rsa: usize, dst: *mut f32) {
    const MR: usize = 12;
    const MASK: __mmask16 = (1 << MR) - 1;
    let mut p = 0;
    while p + 16 <= kc {
        let mut r = [_mm512_setzero_ps(); 16];
        for (i, ri) in r.iter_mut().enumerate().take(MR) {
            // SAFETY: row i < 12, columns p .. p + 16 <= kc: readable by the contract.
            *ri = unsafe { _mm512_loadu_ps(a.add(i * rsa + p)) };
        }
        let cols = transpose16(r);
        for (q, col) in cols.iter().enumerate() {
            // SAFETY: step p + q < kc of the panel: elements (p + q) * 12 .. + 12 < 12 * kc are writable.
            unsafe { _mm512_mask_storeu_ps(dst.add((p + q) * MR), MASK, *col) };
        }
        p += 16;
    }
    for p in p..kc {
        for i in 0..MR {
            // SAFETY: i < 12, p < kc: in bounds of A and dst by the contract.
            unsafe { *dst.add(p * MR + i) = *a.add(i * rsa + p) };
        }
    }
}

/// Transposes a 16x16 `f32` block held as 16 row vectors: output `q` holds column `q` (lane `i` = row `i`).
#[target_feature(enable = "avx512f")]
fn transpose16(r: [__m512; 16]) -> [__m512; 16] {
    let pd = _mm512_castps_pd;
    let ps = _mm512_castpd_ps;
    // Stage 1: interleave row pairs (2x2 blocks of 32-bit elements).
    let mut t = [_mm512_setzero_ps(); 16];
    for h in 0..8 {
        t[2 * h] = _mm512_unpacklo_ps(r[2 * h], r[2 * h + 1]);
        t[2 * h + 1] = _mm512_unpackhi_ps(r[2 * h], r[2 * h + 1]);
    }
    // Stage 2: interleave 64-bit pairs: each 128-bit lane now holds a 4x4 block transposed.
    let mut u = [_mm512_setzero_ps(); 16];
    for g in 0..4 {
        let (a0, a1, a2, a3) = (t[4 * g], t[4 * g + 1], t[4 * g + 2], t[4 * g + 3]);
        u[4 * g] = ps(_mm512_unpacklo_pd(pd(a0), pd(a2)));
        u[4 * g + 1] = ps(_mm512_unpackhi_pd(pd(a0), pd(a2)));
        u[4 * g + 2] = ps(_mm512_unpacklo_pd(pd(a1), pd(a3)));
        u[4 * g + 3] = ps(_mm512_unpackhi_pd(pd(a1), pd(a3)));
    }
    // Stages 3 and 4: move the 128-bit lanes (4x4 blocks) into place.
    let mut v = [_mm512_setzero_ps(); 16];
    for g in 0..2 {
        for j in 0..4 {
            v[8 * g + j] = _mm512_shuffle_f32x4::<0x88>(u[8 * g + j], u[8 * g + 4 + j]);
            v[8 * g + 4 + j] = _mm512_shuffle_f32x4::<0xdd>(u[8 * g + j], u[8 * g + 4 + j]);
        }
    }
    let mut out = [_mm512_setzero_ps(); 16];
    for j in 0..8 {
        out[j] = _mm512_shuffle_f32x4::<0x88>(v[j], v[8 + j]);
        out[8 + j] = _mm512_shuffle_f32x4::<0xdd>(v[j], v[8 + j]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_a12_row_major_matches_scalar() {
        if !is_x86_feature_detected!("avx512f") {
            return;
        }
        for kc in [1usize, 15, 16, 17, 40, 256] {
            let rsa = kc + 3;
            let a: Vec<f32> = (0..12 * rsa).map(|x| x as f32).collect();
            let mut dst = vec![f32::NAN; 12 * kc + 1];
            // SAFETY: a holds 12 rows of rsa >= kc elements; dst 12 * kc; AVX-512F checked above.
            unsafe { pack_a12_row_major_f32(kc, a.as_ptr(), rsa, dst.as_mut_ptr()) };
            for p in 0..kc {
                for i in 0..12 {
                    assert_eq!(dst[p * 12 + i], a[i * rsa + p], "kc {kc} p {p} i {i}");
                }
            }
            assert!(dst[12 * kc].is_nan(), "wrote past the panel");
        }
    }
}
