//! AVX2+FMA microkernels (`std::arch` intrinsics in `#[target_feature(enable = "avx2,fma")]` functions, so
//! they reach full speed whatever `-C target-cpu` the crate is built with; callers check the CPU first).
//!
//! * packed 6x16 `f32` / 6x8 `f64`: 12 accumulator registers (6 rows x 2 vectors), 2 loads of B and 6
//!   broadcasts of A per k step: 12 FMAs for 8 loads, enough independent chains (12 > 2 ports x 4 cycles
//!   latency) to keep both FMA pipes busy.
//! * direct (unpacked, for small shapes): the same tile read straight from A (any strides, broadcasts) and
//!   B (unit column stride, masked loads for a partial last column block), `R = 1..=6` rows.
//!
//! Both write back as `C = alpha*T (+ beta*C)` with separate multiplies and add (see `kernel`).

use std::arch::x86_64::*;

use super::kernel::Kernel;

/// Blocking for Zen 3 (32 KiB L1d, 512 KiB L2, 32 MiB L3 per CCX), `f32`: a B micro-panel is
/// 256 x 16 x 4 B = 16 KiB (half of L1), an A block 144 x 256 x 4 B = 144 KiB (under a third of L2),
/// a B block 256 x 4080 x 4 B = 4 MiB (L3). The values of BLIS's Zen 3 configuration.
pub(crate) struct Avx2F32;
/// Blocking for Zen 3, `f64`: B micro-panel 256 x 8 x 8 B = 16 KiB, A block 72 x 256 x 8 B = 144 KiB,
/// B block 256 x 2040 x 8 B = 4 MiB.
pub(crate) struct Avx2F64;

macro_rules! packed_kernel {
    ($kern:ident, $t:ty, $fname:ident, $v:ty, $lanes:expr, $mc:expr, $nc:expr,
     $setzero:ident, $set1:ident, $loadu:ident, $storeu:ident, $fmadd:ident, $mul:ident, $add:ident) => {
        impl Kernel<$t> for $kern {
            const MR: usize = 6;
            const NR: usize = 2 * $lanes;
            const MC: usize = $mc;
            const KC: usize = 256;
            const NC: usize = $nc;

            unsafe fn tile(
                k: usize,
                alpha: $t,
                a: *const $t,
                b: *const $t,
                beta: $t,
                c: *mut $t,
                rsc: usize,
                csc: usize,
                rows: usize,
                cols: usize,
            ) {
                // SAFETY: forwarded caller contract, which includes AVX2+FMA support.
                unsafe { $fname(k, alpha, a, b, beta, c, rsc, csc, rows, cols) }
            }
        }

        /// The packed AVX2+FMA tile; contract of `Kernel::tile`.
        ///
        /// # Safety
        ///
        /// As `Kernel::tile` (including: the CPU has AVX2 and FMA).
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $fname(
            k: usize,
            alpha: $t,
            a: *const $t,
            b: *const $t,
            beta: $t,
            c: *mut $t,
            rsc: usize,
            csc: usize,
            rows: usize,
            cols: usize,
        ) {
            const MR: usize = 6;
            const L: usize = $lanes;
            const NR: usize = 2 * L;
            let mut acc = [[$setzero(); 2]; MR];
            let (mut ap, mut bp) = (a, b);
            for _ in 0..k {
                // SAFETY: k steps of MR (A) and NR (B) packed elements are readable (caller contract).
                unsafe {
                    let b0 = $loadu(bp);
                    let b1 = $loadu(bp.add(L));
                    for (i, acc_i) in acc.iter_mut().enumerate() {
                        let ai = $set1(*ap.add(i));
                        acc_i[0] = $fmadd(ai, b0, acc_i[0]);
                        acc_i[1] = $fmadd(ai, b1, acc_i[1]);
                    }
                    ap = ap.add(MR);
                    bp = bp.add(NR);
                }
            }
            let va = $set1(alpha);
            for acc_i in acc.iter_mut() {
                acc_i[0] = $mul(va, acc_i[0]);
                acc_i[1] = $mul(va, acc_i[1]);
            }
            if rows == MR && cols == NR && csc == 1 {
                let vb = $set1(beta);
                for (i, acc_i) in acc.iter().enumerate() {
                    // SAFETY: full tile with unit column stride: c + i*rsc + 0..NR is writable (readable
                    // if beta != 0) by the caller contract.
                    unsafe {
                        let ci = c.add(i * rsc);
                        if beta == 0.0 {
                            $storeu(ci, acc_i[0]);
                            $storeu(ci.add(L), acc_i[1]);
                        } else {
                            $storeu(ci, $add(acc_i[0], $mul(vb, $loadu(ci))));
                            $storeu(ci.add(L), $add(acc_i[1], $mul(vb, $loadu(ci.add(L)))));
                        }
                    }
                }
            } else {
                let mut buf = [[0.0 as $t; NR]; MR];
                for (row, acc_i) in buf.iter_mut().zip(acc.iter()) {
                    // SAFETY: row has NR = 2L elements.
                    unsafe {
                        $storeu(row.as_mut_ptr(), acc_i[0]);
                        $storeu(row.as_mut_ptr().add(L), acc_i[1]);
                    }
                }
                for (i, row) in buf.iter().enumerate().take(rows) {
                    for (j, &t) in row.iter().enumerate().take(cols) {
                        // SAFETY: i < rows, j < cols: writable (readable if beta != 0), caller contract.
                        unsafe {
                            let cij = c.add(i * rsc + j * csc);
                            *cij = if beta == 0.0 { t } else { t + beta * *cij };
                        }
                    }
                }
            }
        }
    };
}

packed_kernel!(
    Avx2F32,
    f32,
    tile_f32_6x16,
    __m256,
    8,
    144,
    4080,
    _mm256_setzero_ps,
    _mm256_set1_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_fmadd_ps,
    _mm256_mul_ps,
    _mm256_add_ps
);
packed_kernel!(
    Avx2F64,
    f64,
    tile_f64_6x8,
    __m256d,
    4,
    72,
    2040,
    _mm256_setzero_pd,
    _mm256_set1_pd,
    _mm256_loadu_pd,
    _mm256_storeu_pd,
    _mm256_fmadd_pd,
    _mm256_mul_pd,
    _mm256_add_pd
);

/// Lane masks for the first `cols` of `2 * 8` `f32` columns (all ones = load/store the lane).
#[target_feature(enable = "avx2")]
fn masks_f32(cols: usize) -> [__m256i; 2] {
    let n = _mm256_set1_epi32(cols as i32);
    let lo = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let hi = _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15);
    [_mm256_cmpgt_epi32(n, lo), _mm256_cmpgt_epi32(n, hi)]
}

/// Lane masks for the first `cols` of `2 * 4` `f64` columns.
#[target_feature(enable = "avx2")]
fn masks_f64(cols: usize) -> [__m256i; 2] {
    let n = _mm256_set1_epi64x(cols as i64);
    let lo = _mm256_setr_epi64x(0, 1, 2, 3);
    let hi = _mm256_setr_epi64x(4, 5, 6, 7);
    [_mm256_cmpgt_epi64(n, lo), _mm256_cmpgt_epi64(n, hi)]
}

macro_rules! direct_kernel {
    ($driver:ident, $tile:ident, $t:ty, $v:ty, $lanes:expr, $masks:ident,
     $setzero:ident, $set1:ident, $loadu:ident, $storeu:ident, $maskload:ident, $maskstore:ident,
     $fmadd:ident, $mul:ident, $add:ident) => {
        /// Unpacked small-shape GEMM: tiles of `6 x 2L` computed straight from A and B.
        ///
        /// # Safety
        ///
        /// `m, n, k > 0`; A (`a + i*rsa + p*csa`), B (`b + p*rsb + j`, unit column stride) readable and C
        /// (`c + i*rsc + j*csc`) writable (readable unless `beta == 0`) for all in-range indices; C not
        /// aliased; the CPU has AVX2 and FMA.
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        pub(crate) unsafe fn $driver(
            m: usize,
            k: usize,
            n: usize,
            alpha: $t,
            a: *const $t,
            rsa: usize,
            csa: usize,
            b: *const $t,
            rsb: usize,
            beta: $t,
            c: *mut $t,
            rsc: usize,
            csc: usize,
        ) {
            const NR: usize = 2 * $lanes;
            for j0 in (0..n).step_by(NR) {
                let cols = NR.min(n - j0);
                let bj = b.wrapping_add(j0);
                let cj = c.wrapping_add(j0 * csc);
                let masks = $masks(cols);
                let mut i0 = 0;
                while i0 < m {
                    let rows = 6.min(m - i0);
                    let ai = a.wrapping_add(i0 * rsa);
                    let ci = cj.wrapping_add(i0 * rsc);
                    macro_rules! go {
                        ($r:literal) => {
                            if cols == NR {
                                // SAFETY: tile rows i0.., columns j0.. are in range (caller contract).
                                unsafe {
                                    $tile::<$r, false>(k, alpha, ai, rsa, csa, bj, rsb, beta, ci, rsc, csc, cols, masks)
                                }
                            } else {
                                // SAFETY: as above; masked loads read only columns < cols.
                                unsafe {
                                    $tile::<$r, true>(k, alpha, ai, rsa, csa, bj, rsb, beta, ci, rsc, csc, cols, masks)
                                }
                            }
                        };
                    }
                    match rows {
                        6 => go!(6),
                        5 => go!(5),
                        4 => go!(4),
                        3 => go!(3),
                        2 => go!(2),
                        _ => go!(1),
                    }
                    i0 += rows;
                }
            }
        }

        /// One `R x 2L` direct tile (`cols` valid columns; `MASKED` when `cols < 2L`).
        ///
        /// # Safety
        ///
        /// As the driver, for rows `0..R` and columns `0..cols` of the tile at `a`, `b`, `c`.
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $tile<const R: usize, const MASKED: bool>(
            k: usize,
            alpha: $t,
            a: *const $t,
            rsa: usize,
            csa: usize,
            b: *const $t,
            rsb: usize,
            beta: $t,
            c: *mut $t,
            rsc: usize,
            csc: usize,
            cols: usize,
            masks: [__m256i; 2],
        ) {
            const L: usize = $lanes;
            let mut acc = [[$setzero(); 2]; R];
            for p in 0..k {
                // SAFETY: p < k, rows < R, columns < cols (masked loads leave the rest alone): readable.
                unsafe {
                    let bp = b.add(p * rsb);
                    let (b0, b1) = if MASKED {
                        ($maskload(bp, masks[0]), $maskload(bp.add(L), masks[1]))
                    } else {
                        ($loadu(bp), $loadu(bp.add(L)))
                    };
                    let ap = a.add(p * csa);
                    for (i, acc_i) in acc.iter_mut().enumerate() {
                        let av = $set1(*ap.add(i * rsa));
                        acc_i[0] = $fmadd(av, b0, acc_i[0]);
                        acc_i[1] = $fmadd(av, b1, acc_i[1]);
                    }
                }
            }
            let va = $set1(alpha);
            let vb = $set1(beta);
            for (i, acc_i) in acc.iter().enumerate() {
                let t0 = $mul(va, acc_i[0]);
                let t1 = $mul(va, acc_i[1]);
                if csc == 1 {
                    // SAFETY: row i < R, columns < cols with unit stride are writable (readable if beta != 0);
                    // the masked forms touch only columns < cols.
                    unsafe {
                        let ci = c.add(i * rsc);
                        if MASKED {
                            let (r0, r1) = if beta == 0.0 {
                                (t0, t1)
                            } else {
                                (
                                    $add(t0, $mul(vb, $maskload(ci, masks[0]))),
                                    $add(t1, $mul(vb, $maskload(ci.add(L), masks[1]))),
                                )
                            };
                            $maskstore(ci, masks[0], r0);
                            $maskstore(ci.add(L), masks[1], r1);
                        } else if beta == 0.0 {
                            $storeu(ci, t0);
                            $storeu(ci.add(L), t1);
                        } else {
                            $storeu(ci, $add(t0, $mul(vb, $loadu(ci))));
                            $storeu(ci.add(L), $add(t1, $mul(vb, $loadu(ci.add(L)))));
                        }
                    }
                } else {
                    let mut row = [0.0 as $t; 2 * L];
                    // SAFETY: row has 2L elements.
                    unsafe {
                        $storeu(row.as_mut_ptr(), t0);
                        $storeu(row.as_mut_ptr().add(L), t1);
                    }
                    for (j, &t) in row.iter().enumerate().take(cols) {
                        // SAFETY: i < R, j < cols: writable (readable if beta != 0).
                        unsafe {
                            let cij = c.add(i * rsc + j * csc);
                            *cij = if beta == 0.0 { t } else { t + beta * *cij };
                        }
                    }
                }
            }
        }
    };
}

direct_kernel!(
    direct_f32,
    direct_tile_f32,
    f32,
    __m256,
    8,
    masks_f32,
    _mm256_setzero_ps,
    _mm256_set1_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_maskload_ps,
    _mm256_maskstore_ps,
    _mm256_fmadd_ps,
    _mm256_mul_ps,
    _mm256_add_ps
);
direct_kernel!(
    direct_f64,
    direct_tile_f64,
    f64,
    __m256d,
    4,
    masks_f64,
    _mm256_setzero_pd,
    _mm256_set1_pd,
    _mm256_loadu_pd,
    _mm256_storeu_pd,
    _mm256_maskload_pd,
    _mm256_maskstore_pd,
    _mm256_fmadd_pd,
    _mm256_mul_pd,
    _mm256_add_pd
);
