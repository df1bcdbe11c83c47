//! The microkernel interface and the portable (no `std::arch`) microkernels.
//!
//! A microkernel computes one `MR x NR` tile `T = sum_p a[p] ⊗ b[p]` (`kc` rank-1 updates of packed panels,
//! see `pack`) in registers, then writes the valid `rows x cols` part: `C = alpha*T + beta*C`, or
//! `C = alpha*T` when `beta == 0` (C not read). The write-back rounds the same way on every path (a
//! multiply, a multiply, an add; no fused multiply-add), so an element's value never depends on whether
//! its tile is a full or an edge tile.

use super::GemmScalar;

/// An `MR x NR` microkernel and the cache blocking that goes with it.
pub(crate) trait Kernel<T> {
    /// Tile rows.
    const MR: usize;
    /// Tile columns.
    const NR: usize;
    /// Rows of A per packed block (A block `MC x KC` sits in L2).
    const MC: usize;
    /// Depth of a packed block (B panel `KC x NR` sits in L1).
    const KC: usize;
    /// Columns of B per packed block (`KC x NC` in L3).
    const NC: usize;

    /// Whether [`Kernel::tile_direct_a`] is implemented (reading full MR-row panels of a row-major A in
    /// place instead of packing them).
    const DIRECT_A: bool = false;

    /// Like [`Kernel::tile`] for a full `MR`-row panel of A read in place: element `(i, p)` at
    /// `a + i*rsa + p` (unit column stride). Only called when [`Kernel::DIRECT_A`].
    ///
    /// # Safety
    ///
    /// As [`Kernel::tile`], with `a + i*rsa + p` readable for `i < MR`, `p < k`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile_direct_a(
        k: usize,
        alpha: T,
        a: *const T,
        rsa: usize,
        b: *const T,
        beta: T,
        c: *mut T,
        rsc: usize,
        csc: usize,
        cols: usize,
    ) {
        let _ = (k, alpha, a, rsa, b, beta, c, rsc, csc, cols);
        unreachable!("tile_direct_a called on a kernel without DIRECT_A")
    }

    /// Widest partial B panel (valid columns) that [`Kernel::narrow`] computes; 0: the kernel has none.
    const NARROW: usize = 0;

    /// The tiles of a partial B panel with only `cols <= NARROW` valid columns against all `ceil(m / MR)`
    /// packed A panels of a block (`MR * k` apart at `a`), writing the `m x cols` block of C at `c`.
    ///
    /// A full tile would spend `NR` columns of multiply-adds on `cols` (1 of 32 for `n = 65`); this kernel
    /// instead vectorizes over the rows of the A panels and broadcasts the `cols` elements of B. Every
    /// element of C gets the same operations in the same order as in [`Kernel::tile`] (one fused
    /// multiply-add per step of k from zero, then the write-back of the module docs), so the values are
    /// bitwise those of the full tile. Only called when [`Kernel::NARROW`] is nonzero, with all A panels
    /// packed.
    ///
    /// # Safety
    ///
    /// `a` holds `ceil(m / MR) * MR * k` and `b` holds `NR * k` readable packed elements; `1 <= cols <=
    /// NARROW`; `c + i*rsc + j*csc` is writable (and readable unless `beta == 0`) for `i < m`, `j < cols`,
    /// with no concurrent access; the CPU supports the kernel's instructions.
    #[allow(clippy::too_many_arguments)]
    unsafe fn narrow(
        k: usize,
        alpha: T,
        a: *const T,
        m: usize,
        b: *const T,
        beta: T,
        c: *mut T,
        rsc: usize,
        csc: usize,
        cols: usize,
    ) {
        let _ = (k, alpha, a, m, b, beta, c, rsc, csc, cols);
        unreachable!("narrow called on a kernel without NARROW")
    }

    /// Computes one tile (see the module docs).
    ///
    /// # Safety
    ///
    /// `a` holds `MR * k` and `b` holds `NR * k` readable packed elements; `rows <= MR`, `cols <= NR`, and
    /// `c + i*rsc + j*csc` is writable (and readable unless `beta == 0`) for `i < rows`, `j < cols`, with
    /// no concurrent access; the CPU supports the kernel's instructions.
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile(
        k: usize,
        alpha: T,
        a: *const T,
        b: *const T,
        beta: T,
        c: *mut T,
        rsc: usize,
        csc: usize,
        rows: usize,
        cols: usize,
    );
}

/// Portable `f32` kernel: 8x8 tile of plain Rust arrays; LLVM keeps it in vector registers (two NEON or
/// one AVX register per row).
pub(crate) struct PortableF32;
/// Portable `f64` kernel: 4x8 tile.
pub(crate) struct PortableF64;

impl Kernel<f32> for PortableF32 {
    const MR: usize = 8;
    const NR: usize = 8;
    const MC: usize = 128;
    const KC: usize = 256;
    const NC: usize = 4096;

    unsafe fn tile(
        k: usize,
        alpha: f32,
        a: *const f32,
        b: *const f32,
        beta: f32,
        c: *mut f32,
        rsc: usize,
        csc: usize,
        rows: usize,
        cols: usize,
    ) {
        // SAFETY: forwarded caller contract (the portable kernel needs no CPU feature).
        unsafe { portable_tile::<f32, 8, 8>(k, alpha, a, b, beta, c, rsc, csc, rows, cols) }
    }
}

impl Kernel<f64> for PortableF64 {
    const MR: usize = 4;
    const NR: usize = 8;
    const MC: usize = 128;
    const KC: usize = 256;
    const NC: usize = 2048;

    unsafe fn tile(
        k: usize,
        alpha: f64,
        a: *const f64,
        b: *const f64,
        beta: f64,
        c: *mut f64,
        rsc: usize,
        csc: usize,
        rows: usize,
        cols: usize,
    ) {
        // SAFETY: forwarded caller contract (the portable kernel needs no CPU feature).
        unsafe { portable_tile::<f64, 4, 8>(k, alpha, a, b, beta, c, rsc, csc, rows, cols) }
    }
}

/// The portable tile: `acc[i][j] += a[i] * b[j]` over `k`, then the write-back of the module docs.
///
/// # Safety
///
/// As [`Kernel::tile`] with `MR`, `NR`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn portable_tile<T: GemmScalar, const MR: usize, const NR: usize>(
    k: usize,
    alpha: T,
    a: *const T,
    b: *const T,
    beta: T,
    c: *mut T,
    rsc: usize,
    csc: usize,
    rows: usize,
    cols: usize,
) {
    // SAFETY: a and b hold MR*k and NR*k packed elements (caller contract).
    let (a, b) = unsafe { (std::slice::from_raw_parts(a, MR * k), std::slice::from_raw_parts(b, NR * k)) };
    let mut acc = [[T::ZERO; NR]; MR];
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        for i in 0..MR {
            for j in 0..NR {
                acc[i][j] = acc[i][j] + ap[i] * bp[j];
            }
        }
    }
    for (i, row) in acc.iter().enumerate().take(rows) {
        for (j, &t) in row.iter().enumerate().take(cols) {
            // SAFETY: i < rows, j < cols: writable (readable if beta != 0) by the caller contract.
            unsafe {
                let cij = c.add(i * rsc + j * csc);
                *cij = if beta == T::ZERO { alpha * t } else { alpha * t + beta * *cij };
            }
        }
    }
}
