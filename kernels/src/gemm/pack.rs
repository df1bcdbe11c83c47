//! Packing into microkernel panels, and the reusable thread-local packing buffers.
//!
//! A block of `A` (`mc x kc`) becomes `ceil(mc / MR)` panels of `MR x kc`, stored k-major: element `(i, p)`
//! of panel `ip` at `panel[p * MR + i]`. A block of `B` (`kc x nc`) becomes `ceil(nc / NR)` panels of
//! `kc x NR`, element `(p, j)` at `panel[p * NR + j]`. Rows (columns) past the edge of the matrix are
//! zero, so the microkernel always runs full tiles. Any strides are read; unit strides take a copy path.

use std::cell::Cell;
use std::thread::LocalKey;

use super::GemmScalar;

/// 64 bytes, 64-byte aligned: the unit of the packing buffers (cache-line aligned panels).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Line([u8; 64]);

impl Line {
    /// A zero-filled line.
    pub(crate) const ZERO: Line = Line([0; 64]);
}

thread_local! {
    /// Packed-A buffer of this thread (one MC x KC block, or all of A for one KC step when threads split N
    /// and share it: at most 2 MiB).
    pub(crate) static A_BUF: Cell<Vec<Line>> = const { Cell::new(Vec::new()) };
    /// Packed-B buffer of the calling thread (one KC x NC block, shared read-only with the workers).
    pub(crate) static B_BUF: Cell<Vec<Line>> = const { Cell::new(Vec::new()) };
}

/// A packing buffer taken out of a thread-local slot and put back on drop, so it is reused across calls
/// without allocation. Taking (instead of borrowing) makes re-entrant use safe: a nested GEMM on the same
/// thread (rayon work stealing) just finds the slot empty and allocates its own.
pub(crate) struct PackBuf {
    lines: Vec<Line>,
    home: &'static LocalKey<Cell<Vec<Line>>>,
}

impl PackBuf {
    /// Takes the buffer of `home`, grown (zero-filled) to at least `bytes`.
    pub(crate) fn take(home: &'static LocalKey<Cell<Vec<Line>>>, bytes: usize) -> Self {
        let mut lines = home.try_with(Cell::take).unwrap_or_default();
        let need = bytes.div_ceil(64);
        if lines.len() < need {
            lines.resize(need, Line([0; 64]));
        }
        PackBuf { lines, home }
    }

    /// The first `len` elements as a `T` slice.
    ///
    /// # Panics
    ///
    /// If the buffer is smaller than `len` elements (a driver bug).
    pub(crate) fn slice<T: GemmScalar>(&mut self, len: usize) -> &mut [T] {
        assert!(len * std::mem::size_of::<T>() <= self.lines.len() * 64);
        // SAFETY: the memory is initialized (zero-filled on growth, then only ever written with T values),
        // 64-byte aligned (>= align_of::<T>() for f32/f64, the only GemmScalar types), every bit pattern is
        // a valid f32/f64, the length is checked above, and the slice borrows `self` mutably.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<T>(), len) }
    }
}

impl Drop for PackBuf {
    fn drop(&mut self) {
        let mine = std::mem::take(&mut self.lines);
        // Keep the larger of ours and whatever a nested call may have put back meanwhile. During thread
        // teardown the slot may be gone: then the buffer is simply freed.
        let _ = self.home.try_with(|slot| {
            let other = slot.take();
            slot.set(if other.len() > mine.len() { other } else { mine });
        });
    }
}

/// The first `len` elements of `lines` as a `T` slice.
///
/// # Panics
///
/// If `lines` is smaller than `len` elements.
pub(crate) fn lines_as<T: GemmScalar>(lines: &[Line], len: usize) -> &[T] {
    assert!(len * std::mem::size_of::<T>() <= lines.len() * 64);
    // SAFETY: `Line` is plain bytes, always initialized; 64-byte alignment covers f32/f64 (the only
    // GemmScalar types), every bit pattern is a valid f32/f64, the length is checked above, and the slice
    // borrows `lines`.
    unsafe { std::slice::from_raw_parts(lines.as_ptr().cast::<T>(), len) }
}

/// The first `len` elements of `lines` as a mutable `T` slice.
///
/// # Panics
///
/// If `lines` is smaller than `len` elements.
pub(crate) fn lines_as_mut<T: GemmScalar>(lines: &mut [Line], len: usize) -> &mut [T] {
    assert!(len * std::mem::size_of::<T>() <= lines.len() * 64);
    // SAFETY: as in `lines_as`, with the slice borrowing `lines` mutably.
    unsafe { std::slice::from_raw_parts_mut(lines.as_mut_ptr().cast::<T>(), len) }
}

/// Packs the `mc x kc` block of `A` at `a` (strides `rsa`, `csa`) into `ceil(mc / mr)` panels of `mr x kc`
/// in `dst`, zero-padding the last panel's missing rows.
///
/// # Safety
///
/// Elements `a + i*rsa + p*csa` for `i < mc`, `p < kc` must be readable; `dst.len() >= ceil(mc/mr)*mr*kc`.
pub(crate) unsafe fn pack_a<T: GemmScalar>(
    mr: usize,
    mc: usize,
    kc: usize,
    a: *const T,
    rsa: usize,
    csa: usize,
    dst: &mut [T],
) {
    match mr {
        // SAFETY: forwarded caller contract.
        6 => unsafe { pack_a_mr::<T, 6>(mc, kc, a, rsa, csa, dst) },
        // SAFETY: forwarded caller contract.
        8 => unsafe { pack_a_mr::<T, 8>(mc, kc, a, rsa, csa, dst) },
        // SAFETY: forwarded caller contract.
        4 => unsafe { pack_a_mr::<T, 4>(mc, kc, a, rsa, csa, dst) },
        // SAFETY: forwarded caller contract.
        12 => unsafe { pack_a_mr::<T, 12>(mc, kc, a, rsa, csa, dst) },
        _ => unreachable!("no microkernel with MR = {mr}"),
    }
}

/// [`pack_a`] with the panel height as a constant (so the inner loops unroll).
///
/// # Safety
///
/// As [`pack_a`].
unsafe fn pack_a_mr<T: GemmScalar, const MR: usize>(
    mc: usize,
    kc: usize,
    a: *const T,
    rsa: usize,
    csa: usize,
    dst: &mut [T],
) {
    for (ip, panel) in dst.chunks_exact_mut(MR * kc).take(mc.div_ceil(MR)).enumerate() {
        let rows = MR.min(mc - ip * MR);
        let a0 = a.wrapping_add(ip * MR * rsa);
        #[cfg(target_arch = "x86_64")]
        if rows == MR && csa == 1 && MR == 12 && kc >= 16 && is_f32::<T>() && super::isa() == super::Isa::Avx512 {
            // SAFETY: T is f32 (checked); the full panel's 12 rows of kc unit-stride elements are readable
            // by the contract, `panel` holds 12 * kc elements, and the CPU has AVX-512F (the tier).
            unsafe { super::x86::pack_a12_row_major_f32(kc, a0.cast::<f32>(), rsa, panel.as_mut_ptr().cast::<f32>()) };
            continue;
        }
        if rows == MR && csa == 1 {
            // Row-major A: MR sequential read streams, one contiguous MR-element write per k step.
            let mut src = [a0; MR];
            for (i, s) in src.iter_mut().enumerate() {
                *s = a0.wrapping_add(i * rsa);
            }
            for (p, col) in panel.chunks_exact_mut(MR).enumerate() {
                let col: &mut [T; MR] = col.try_into().expect("chunk of MR");
                for (d, s) in col.iter_mut().zip(&src) {
                    // SAFETY: row < mc (rows == MR) and column p < kc: readable by the contract.
                    *d = unsafe { *s.add(p) };
                }
            }
        } else if rows == MR && rsa == 1 {
            // Column-major A (a transposed row-major matrix, e.g. x^T in a weight gradient x^T dy): each
            // step of k is MR contiguous elements, a fixed-size copy.
            for (p, col) in panel.chunks_exact_mut(MR).enumerate() {
                let col: &mut [T; MR] = col.try_into().expect("chunk of MR");
                // SAFETY: rows 0..MR (rows == MR <= mc - ip*MR) of column p < kc, unit row stride, are
                // readable; reading as an array only needs T's alignment, which the pointer has.
                *col = unsafe { std::ptr::read_unaligned(a0.add(p * csa).cast::<[T; MR]>()) };
            }
        } else if rows == MR {
            for (p, col) in panel.chunks_exact_mut(MR).enumerate() {
                for (i, d) in col.iter_mut().enumerate() {
                    // SAFETY: i < MR = rows <= mc - ip*MR and p < kc: readable by the contract.
                    *d = unsafe { *a0.add(i * rsa + p * csa) };
                }
            }
        } else {
            for (p, col) in panel.chunks_exact_mut(MR).enumerate() {
                for (i, d) in col.iter_mut().enumerate() {
                    *d = if i < rows {
                        // SAFETY: i < rows <= mc - ip*MR and p < kc: readable by the contract.
                        unsafe { *a0.add(i * rsa + p * csa) }
                    } else {
                        T::ZERO
                    };
                }
            }
        }
    }
}

/// Whether `T` is `f32` (the only 4-byte [`GemmScalar`]).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn is_f32<T: GemmScalar>() -> bool {
    std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
}

/// Packs the `kc x cols` block of `B` at `b` (strides `rsb`, `csb`) into one panel of `kc x nr`
/// (`nr = panel.len() / kc`), zero-padding columns `cols..nr`.
///
/// # Safety
///
/// Elements `b + p*rsb + j*csb` for `p < kc`, `j < cols` must be readable; `cols <= nr`.
pub(crate) unsafe fn pack_b_panel<T: GemmScalar>(
    kc: usize,
    cols: usize,
    b: *const T,
    rsb: usize,
    csb: usize,
    panel: &mut [T],
) {
    match panel.len() / kc {
        // SAFETY: forwarded caller contract.
        8 => unsafe { pack_b_nr::<T, 8>(kc, cols, b, rsb, csb, panel) },
        // SAFETY: forwarded caller contract.
        16 => unsafe { pack_b_nr::<T, 16>(kc, cols, b, rsb, csb, panel) },
        // SAFETY: forwarded caller contract.
        32 => unsafe { pack_b_nr::<T, 32>(kc, cols, b, rsb, csb, panel) },
        nr => unreachable!("no microkernel with NR = {nr}"),
    }
}

/// [`pack_b_panel`] with the panel width as a constant (fixed-size copies instead of `memcpy` calls).
///
/// # Safety
///
/// As [`pack_b_panel`].
unsafe fn pack_b_nr<T: GemmScalar, const NR: usize>(
    kc: usize,
    cols: usize,
    b: *const T,
    rsb: usize,
    csb: usize,
    panel: &mut [T],
) {
    debug_assert!(cols <= NR && panel.len() == NR * kc);
    if csb == 1 && cols == NR {
        for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
            let row: &mut [T; NR] = row.try_into().expect("chunk of NR");
            // SAFETY: row p < kc, columns 0..NR with unit stride are readable (cols == NR); reading as an
            // array only needs T's alignment, which the pointer has.
            *row = unsafe { std::ptr::read_unaligned(b.add(p * rsb).cast::<[T; NR]>()) };
        }
    } else if csb == 1 {
        for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
            // SAFETY: row p < kc, columns 0..cols with unit stride are readable.
            let src = unsafe { std::slice::from_raw_parts(b.add(p * rsb), cols) };
            row[..cols].copy_from_slice(src);
            row[cols..].fill(T::ZERO);
        }
    } else if rsb == 1 && cols == NR {
        // Column-major B: read each column contiguously.
        for j in 0..NR {
            // SAFETY: column j < cols, rows 0..kc with unit stride are readable.
            let col = unsafe { std::slice::from_raw_parts(b.add(j * csb), kc) };
            for (row, &v) in panel.chunks_exact_mut(NR).zip(col) {
                row[j] = v;
            }
        }
    } else {
        for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
            for (j, d) in row.iter_mut().enumerate() {
                *d = if j < cols {
                    // SAFETY: p < kc, j < cols: readable by the contract.
                    unsafe { *b.add(p * rsb + j * csb) }
                } else {
                    T::ZERO
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_a_pads_and_orders_k_major() {
        // 7 x 3 row-major A, MR = 6: two panels, the second with one real row.
        let a: Vec<f32> = (0..21).map(|x| x as f32).collect();
        let mut dst = vec![f32::NAN; 2 * 6 * 3];
        // SAFETY: a holds 7 x 3 elements at strides (3, 1); dst has 2 panels of 6 x 3.
        unsafe { pack_a(6, 7, 3, a.as_ptr(), 3, 1, &mut dst) };
        assert_eq!(dst[0..6], [0.0, 3.0, 6.0, 9.0, 12.0, 15.0]);
        assert_eq!(dst[6..12], [1.0, 4.0, 7.0, 10.0, 13.0, 16.0]);
        assert_eq!(dst[18..24], [18.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn pack_b_pads_columns() {
        // 2 x 3 column-major B into an NR = 8 panel.
        let b = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut panel = vec![f64::NAN; 16];
        // SAFETY: b holds 2 x 3 at strides (1, 2).
        unsafe { pack_b_panel(2, 3, b.as_ptr(), 1, 2, &mut panel) };
        let z = 0.0;
        assert_eq!(panel, [1.0, 3.0, 5.0, z, z, z, z, z, 2.0, 4.0, 6.0, z, z, z, z, z]);
    }

    #[test]
    fn pack_buf_is_reused() {
        let mut b = PackBuf::take(&A_BUF, 1000);
        let p = b.slice::<f32>(10).as_ptr();
        drop(b);
        let mut b = PackBuf::take(&A_BUF, 100);
        assert_eq!(b.slice::<f32>(10).as_ptr(), p);
    }
}
