//! The BLIS driver: blocking, packing calls, the macro-kernel and the thread split.
//!
//! Loop nest (see the module docs of `gemm`): `jc` (NC columns of B) -> `pc` (KC of the k dimension; pack
//! B, cooperatively with threads) -> one task per thread, a cell of a `tm x tn` grid of MR-row x NR-column
//! panels of C -> `ic` (MC blocks of the task's rows, A packed by the task or shared) -> `jr` panels of the
//! task's columns -> `ir` tiles. Block sizes are balanced (`k = 784` becomes 4 blocks of 196, not
//! 3x256 + 16) and depend only on the shape, never on the number of threads: threads only change which
//! task computes which tiles.

use rayon::prelude::*;

use super::kernel::Kernel;
use super::pack::{pack_a, pack_b_panel, PackBuf, A_BUF, B_BUF};
use super::{par_limit, small_limit, GemmScalar};

/// A `*mut T` that may cross threads; the driver guarantees disjoint writes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SendPtr<T>(pub(crate) *mut T);

// SAFETY: only a pointer; the driver gives each task a disjoint set of C elements, so sharing it between
// threads never produces two concurrent accesses to one element.
unsafe impl<T: Send> Send for SendPtr<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SendPtr<T> {}

/// One GEMM problem on raw pointers: `C = alpha * A·B + beta * C` with element `(i, j)` of `A` at
/// `a + i*rsa + j*csa` (likewise `B`, `C`).
#[derive(Clone, Copy, Debug)]
pub struct Problem<T> {
    pub(crate) m: usize,
    pub(crate) k: usize,
    pub(crate) n: usize,
    pub(crate) alpha: T,
    pub(crate) a: *const T,
    pub(crate) rsa: usize,
    pub(crate) csa: usize,
    pub(crate) b: *const T,
    pub(crate) rsb: usize,
    pub(crate) csb: usize,
    pub(crate) beta: T,
    pub(crate) c: SendPtr<T>,
    pub(crate) rsc: usize,
    pub(crate) csc: usize,
}

// SAFETY: A and B are only read, through pointers derived from shared slices that outlive the call; C
// writes are partitioned between tasks (see `SendPtr`).
unsafe impl<T: Sync> Sync for Problem<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Send for Problem<T> {}

impl<T: GemmScalar> Problem<T> {
    /// Address of `A[i][p]` (computed with wrapping arithmetic; only dereferenced when in bounds). A method,
    /// so closures capture the whole (`Sync`) problem rather than a raw-pointer field.
    fn a_at(&self, i: usize, p: usize) -> *const T {
        self.a.wrapping_add(i * self.rsa + p * self.csa)
    }

    /// Address of `B[p][j]`.
    fn b_at(&self, p: usize, j: usize) -> *const T {
        self.b.wrapping_add(p * self.rsb + j * self.csb)
    }

    /// Address of `C[i][j]`.
    fn c_at(&self, i: usize, j: usize) -> *mut T {
        self.c.0.wrapping_add(i * self.rsc + j * self.csc)
    }

    /// The same product transposed: `C^T = B^T · A^T` (swaps the roles of rows and columns).
    fn transposed(&self) -> Self {
        Problem {
            m: self.n,
            k: self.k,
            n: self.m,
            alpha: self.alpha,
            a: self.b,
            rsa: self.csb,
            csa: self.rsb,
            b: self.a,
            rsb: self.csa,
            csb: self.rsa,
            beta: self.beta,
            c: self.c,
            rsc: self.csc,
            csc: self.rsc,
        }
    }
}

/// Runs `batch` problems; member `l` has its matrices offset by `l * bs{a,b,c}` elements.
///
/// # Safety
///
/// Every member must be in bounds (A, B readable; C writable), `m, n, k > 0`, C's elements must not
/// overlap within or across members, and no member's C may alias any A or B.
pub(crate) unsafe fn gemm_batched_raw<T: GemmScalar>(
    batch: usize,
    base: &Problem<T>,
    bsa: usize,
    bsb: usize,
    bsc: usize,
) {
    let work = base.m.saturating_mul(base.n).saturating_mul(base.k);
    let threads = rayon::current_num_threads();
    let par_mnk = par_limit();
    let member = |l: usize| Problem {
        // wrapping_add: in-bounds by the caller's contract; computing the pointer is safe either way.
        a: base.a.wrapping_add(l * bsa),
        b: base.b.wrapping_add(l * bsb),
        c: SendPtr(base.c.0.wrapping_add(l * bsc)),
        ..*base
    };
    if batch > 1 && threads > 1 && work < par_mnk && work.saturating_mul(batch) >= par_mnk {
        // Many small matrices: one task per matrix, each single-threaded. The result of every matrix is
        // independent of which thread computes it.
        (0..batch).into_par_iter().for_each(|l| {
            // SAFETY: member `l` is in bounds by the caller's contract, and members' C do not overlap, so
            // concurrent tasks write disjoint elements.
            unsafe { gemm_one(&member(l), false) };
        });
    } else {
        for l in 0..batch {
            // SAFETY: member `l` is in bounds by the caller's contract.
            unsafe { gemm_one(&member(l), threads > 1 && work >= par_mnk) };
        }
    }
}

/// One product: orient C row-wise, try the small path, else the packed path.
///
/// # Safety
///
/// As [`gemm_batched_raw`] for one member.
unsafe fn gemm_one<T: GemmScalar>(p: &Problem<T>, par: bool) {
    if par && rayon::current_thread_index().is_none() {
        // Called from outside the pool (the engine's main thread): enter it once for the whole product.
        // Otherwise every parallel region below would be injected from outside, with the caller blocking
        // on a lock each time (tens of microseconds per region on a busy machine).
        // SAFETY: forwarded caller contract; the scope returns only when the product is done.
        rayon::scope(|_| unsafe { gemm_one_in_pool(p, par) });
    } else {
        // SAFETY: forwarded caller contract.
        unsafe { gemm_one_in_pool(p, par) };
    }
}

/// [`gemm_one`] after entering the pool.
///
/// # Safety
///
/// As [`gemm_batched_raw`] for one member.
unsafe fn gemm_one_in_pool<T: GemmScalar>(p: &Problem<T>, par: bool) {
    // The kernels write C rows with vector stores: make C's column stride the small one.
    let p = if p.csc > p.rsc { p.transposed() } else { *p };
    let work = p.m.saturating_mul(p.n).saturating_mul(p.k);
    let threads = if par { rayon::current_num_threads() } else { 1 };
    // The path depends on the shape only, never on the thread count: the small path (one pass over k)
    // and the packed path (k in KC blocks) round differently when k > KC, so choosing by thread count
    // would break 1-vs-2-thread bitwise equality. Threads only split the small path over rows or columns.
    if work <= small_limit() && small_applies(&p) {
        if threads == 1 {
            // SAFETY: the problem contract is forwarded unchanged (transposition only relabels it).
            let ran = unsafe { T::small(&p) };
            debug_assert!(ran);
            return;
        }
        // Split in whole direct tiles (rows: a multiple of every tier's MR; columns: of every tier's 2
        // vectors), so the split adds no partial tiles.
        let (mp, np) = (div_ceil(p.m, SMALL_ROWS), div_ceil(p.n, SMALL_COLS));
        let (tm, tn) = grid(threads, mp, np, true);
        (0..tm * tn).into_par_iter().for_each(|t| {
            let (i0, i1) = part(t / tn, tm, mp);
            let (j0, j1) = part(t % tn, tn, np);
            let (r0, r1) = (i0 * SMALL_ROWS, (i1 * SMALL_ROWS).min(p.m));
            let (c0, c1) = (j0 * SMALL_COLS, (j1 * SMALL_COLS).min(p.n));
            if r0 >= r1 || c0 >= c1 {
                return;
            }
            let sub =
                Problem { m: r1 - r0, n: c1 - c0, a: p.a_at(r0, 0), b: p.b_at(0, c0), c: SendPtr(p.c_at(r0, c0)), ..p };
            // SAFETY: the sub-problem is the block rows r0..r1, columns c0..c1 of the product (in bounds,
            // m, n, k > 0); tasks write disjoint blocks of C.
            let ran = unsafe { T::small(&sub) };
            debug_assert!(ran);
        });
        return;
    }
    // SAFETY: as above.
    unsafe { T::packed(&p, threads) };
}

/// Row granularity of the threaded small path (a multiple of every tier's direct-tile height).
const SMALL_ROWS: usize = 12;
/// Column granularity of the threaded small path (a multiple of every tier's 2-vector tile width).
const SMALL_COLS: usize = 32;

/// Whether the unpacked small-shape kernel runs this problem (a SIMD tier and unit column stride of B).
fn small_applies<T: GemmScalar>(p: &Problem<T>) -> bool {
    p.csb == 1 && super::isa() != super::Isa::Portable
}

fn div_ceil(a: usize, b: usize) -> usize {
    a.div_ceil(b)
}

/// Part `i` of `parts` nearly equal contiguous parts of `0..len` (sizes differ by at most one).
fn part(i: usize, parts: usize, len: usize) -> (usize, usize) {
    (i * len / parts, (i + 1) * len / parts)
}

/// How `threads` tasks split a block of `mp` row panels x `np` column panels: a `tm x tn` grid
/// (`tm * tn == threads`) with the smallest largest task (in tiles). Ties go to the split over M. `n_ok`:
/// whether splitting N is allowed at all.
fn grid(threads: usize, mp: usize, np: usize, n_ok: bool) -> (usize, usize) {
    let mut best = (threads, 1);
    let mut best_cost = div_ceil(mp, threads) * np;
    for tn in 2..=threads {
        if !n_ok || !threads.is_multiple_of(tn) {
            continue;
        }
        let tm = threads / tn;
        let cost = div_ceil(mp, tm) * div_ceil(np, tn);
        if cost < best_cost {
            (best, best_cost) = ((tm, tn), cost);
        }
    }
    best
}

/// Whether `rows` rows `stride_bytes` apart start in at least `rows / 2 + 2` different L1 sets (64 sets of
/// 64-byte lines, i.e. a 4 KiB period).
fn rows_spread_over_l1(rows: usize, stride_bytes: usize) -> bool {
    let mut seen = 0u64;
    for i in 0..rows {
        seen |= 1 << ((i * stride_bytes / 64) % 64);
    }
    seen.count_ones() as usize >= rows / 2 + 2
}

/// Splits `len` into `ceil(len / max)` nearly equal blocks, each rounded up to a multiple of `unit`.
fn balanced_block(len: usize, max: usize, unit: usize) -> usize {
    let blocks = div_ceil(len, max);
    div_ceil(div_ceil(len, blocks), unit) * unit
}

/// Largest packed A (all `m` rows of one KC step) that threads share when they split N; above it they
/// split M, each packing its own rows.
const SHARED_A_BYTES: usize = 1 << 20;

/// The packed BLIS driver with microkernel `K` on `threads` threads of the current rayon pool.
///
/// Per (`jc`, `pc`) block: one parallel region packs B (and, when the threads split N and A is packed,
/// all of A) cooperatively, each task a contiguous share; a second runs one task per thread over a
/// `tm x tn` grid of C (row panels x column panels, [`grid`]), each task looping over its rows in MC
/// blocks (packing its own A rows unless A is shared or read in place) and its column panels.
///
/// # Safety
///
/// `p` in bounds as in [`gemm_batched_raw`], `m, n, k > 0`, and the CPU supports `K`'s instructions.
pub(crate) unsafe fn gemm_packed<T: GemmScalar, K: Kernel<T>>(p: &Problem<T>, threads: usize) {
    let (mr, nr) = (K::MR, K::NR);
    let size = std::mem::size_of::<T>();
    let kc = balanced_block(p.k, K::KC, 1);
    let mc = balanced_block(p.m, K::MC, mr).min(div_ceil(p.m, mr) * mr);
    let nc = balanced_block(p.n, K::NC, nr);
    let mp = div_ceil(p.m, mr);
    // Row-major A (unit column stride): its full panels are read in place, which saves the transposing
    // pack (about one store per element of A per NC block).
    // Not when the row stride is a near multiple of 4 KiB: the MR rows would then fall into a few L1 sets
    // (48 KiB, 12-way: 64 sets) and evict each other; measured 2x slower at 1024^3 f32 and 512^3 f64.
    let direct_a = K::DIRECT_A && p.csa == 1 && rows_spread_over_l1(mr, p.rsa * size);
    let shared_a_ok = direct_a || mp * mr * kc * size <= SHARED_A_BYTES;

    // Splitting only changes who computes which tiles, never how. One grid for all NC blocks (only the
    // last one can be narrower).
    let (tm, tn) = if threads > 1 { grid(threads, mp, div_ceil(nc.min(p.n), nr), shared_a_ok) } else { (1, 1) };
    let shared_a = tn > 1 && !direct_a;
    let mut bbuf = PackBuf::take(&B_BUF, nc * kc * size);
    // The shared A lives in the calling thread's A buffer (its tasks then need none of their own).
    let mut sbuf = if shared_a { Some(PackBuf::take(&A_BUF, mp * mr * kc * size)) } else { None };
    for jc in (0..p.n).step_by(nc) {
        let ncb = nc.min(p.n - jc);
        let np = div_ceil(ncb, nr);
        for pc in (0..p.k).step_by(kc) {
            let kcb = kc.min(p.k - pc);
            let beta = if pc == 0 { p.beta } else { T::ONE };
            let bpack = bbuf.slice::<T>(np * nr * kcb);
            let apack: &mut [T] = match sbuf.as_mut() {
                Some(buf) => buf.slice::<T>(mp * mr * kcb),
                None => &mut [],
            };
            // Phase 1: pack B (and the shared A), a contiguous share of the panels per task.
            let pack = |t: usize, bpart: &mut [T], apart: &mut [T]| {
                let per_b = div_ceil(np, threads);
                for (q, panel) in bpart.chunks_exact_mut(nr * kcb).enumerate() {
                    let jp = t * per_b + q;
                    let cols = nr.min(ncb - jp * nr);
                    // SAFETY: panel `jp` covers columns jc + jp*nr .. + cols <= n and rows pc .. pc + kcb
                    // <= k of B, in bounds by the contract; `panel` holds nr * kcb elements.
                    unsafe { pack_b_panel(kcb, cols, p.b_at(pc, jc + jp * nr), p.rsb, p.csb, panel) };
                }
                if !apart.is_empty() {
                    let r0 = t * div_ceil(mp, threads) * mr;
                    let rows = (apart.len() / kcb).min(p.m - r0);
                    // SAFETY: rows r0 .. r0 + rows <= m and columns pc .. pc + kcb <= k of A are in bounds;
                    // `apart` holds ceil(rows / mr) panels of mr * kcb.
                    unsafe { pack_a(mr, rows, kcb, p.a_at(r0, pc), p.rsa, p.csa, apart) };
                }
            };
            if threads > 1 {
                // At most `threads` chunks of each; a task may get an empty share of either.
                let mut bchunks = bpack.chunks_mut(div_ceil(np, threads) * nr * kcb);
                let mut achunks = apack.chunks_mut(div_ceil(mp, threads) * mr * kcb);
                let parts: Vec<(usize, &mut [T], &mut [T])> = (0..threads)
                    .map(|t| (t, bchunks.next().unwrap_or_default(), achunks.next().unwrap_or_default()))
                    .collect();
                parts.into_par_iter().for_each(|(t, b, a)| pack(t, b, a));
            } else {
                pack(0, bpack, apack);
            }
            let bpack: &[T] = bpack;
            let apack: &[T] = apack;
            // Phase 2: one task per grid cell.
            let task = |t: usize| {
                let (ip0, ip1) = part(t / tn, tm, mp);
                let (j0, j1) = part(t % tn, tn, np);
                if ip0 >= ip1 || j0 >= j1 {
                    return;
                }
                let (r0, r1) = (ip0 * mr, (ip1 * mr).min(p.m));
                let mut own = if shared_a { None } else { Some(PackBuf::take(&A_BUF, mc * kc * size)) };
                for ic in (r0..r1).step_by(mc) {
                    let mcb = mc.min(r1 - ic);
                    let panels = div_ceil(mcb, mr);
                    let ablock: &[T] = match own.as_mut() {
                        None => &apack[ic * kcb..][..panels * mr * kcb],
                        Some(buf) => {
                            let ablock = buf.slice::<T>(panels * mr * kcb);
                            for (ip, panel) in ablock.chunks_exact_mut(mr * kcb).enumerate() {
                                let rows = mr.min(mcb - ip * mr);
                                // Full panels of an A read in place need no packing.
                                if direct_a && rows == mr {
                                    continue;
                                }
                                // SAFETY: rows ic + ip*mr .. + rows <= m and columns pc .. pc + kcb <= k of
                                // A are in bounds; `panel` holds mr * kcb elements.
                                unsafe { pack_a(mr, rows, kcb, p.a_at(ic + ip * mr, pc), p.rsa, p.csa, panel) };
                            }
                            ablock
                        }
                    };
                    let a_direct = if direct_a { Some((p.a_at(ic, pc), p.rsa)) } else { None };
                    // SAFETY: `ablock` holds the block's `panels` packed panels (with a_direct, the full ones
                    // are read in place from A rows ic .. ic + mcb, in bounds) and bpack `np` panels of
                    // kcb; the C block rows ic .. ic + mcb, columns jc + j0*nr .. jc + min(j1*nr, ncb) is in
                    // bounds and written by this task only (tasks partition the grid); the CPU supports K.
                    unsafe {
                        macro_kernel::<T, K>(
                            mcb,
                            kcb,
                            ncb,
                            j0,
                            j1,
                            p.alpha,
                            a_direct,
                            ablock,
                            bpack,
                            beta,
                            p.c_at(ic, jc),
                            p.rsc,
                            p.csc,
                        )
                    };
                }
            };
            if tm * tn > 1 {
                (0..tm * tn).into_par_iter().for_each(task);
            } else {
                task(0);
            }
        }
    }
}

/// Runs the microkernel over panels `j0..j1` of the packed B block and all MR-row panels of the packed A
/// block, writing the `mcb x ncb` block of C at `c` (only its columns of panels `j0..j1`).
///
/// # Safety
///
/// `apack`/`bpack` hold the packed blocks (`div_ceil(mcb, MR)` and at least `j1` panels of `kcb`; with
/// `a_direct = Some((a, rsa))` only the partial last A panel is packed and full panels are read at
/// `a + i*rsa + p`, in bounds), the C block is in bounds and not accessed concurrently, and the CPU supports
/// `K` (and `K::DIRECT_A` if `a_direct` is given).
#[allow(clippy::too_many_arguments)]
unsafe fn macro_kernel<T: GemmScalar, K: Kernel<T>>(
    mcb: usize,
    kcb: usize,
    ncb: usize,
    j0: usize,
    j1: usize,
    alpha: T,
    a_direct: Option<(*const T, usize)>,
    apack: &[T],
    bpack: &[T],
    beta: T,
    c: *mut T,
    rsc: usize,
    csc: usize,
) {
    let (mr, nr) = (K::MR, K::NR);
    let a_panels = div_ceil(mcb, mr);
    debug_assert!(apack.len() >= a_panels * mr * kcb && bpack.len() >= j1 * nr * kcb);
    for jp in j0..j1 {
        let cols = nr.min(ncb - jp * nr);
        let bp = &bpack[jp * nr * kcb..][..nr * kcb];
        for ip in 0..a_panels {
            let rows = mr.min(mcb - ip * mr);
            let ctile = c.wrapping_add(ip * mr * rsc + jp * nr * csc);
            if let (Some((a, rsa)), true) = (a_direct, rows == mr) {
                // SAFETY: full panel: A rows ip*mr .. + mr of the block, kcb columns with unit stride, are
                // in bounds (caller contract); bp is a full packed panel; the C tile is the caller's.
                unsafe {
                    K::tile_direct_a(
                        kcb,
                        alpha,
                        a.wrapping_add(ip * mr * rsa),
                        rsa,
                        bp.as_ptr(),
                        beta,
                        ctile,
                        rsc,
                        csc,
                        cols,
                    )
                };
                continue;
            }
            let ap = &apack[ip * mr * kcb..][..mr * kcb];
            // SAFETY: ap/bp are full packed panels of kcb steps; the tile of C at (ip*mr, jp*nr) with
            // rows x cols valid elements is inside the caller's C block; the CPU supports K.
            unsafe { K::tile(kcb, alpha, ap.as_ptr(), bp.as_ptr(), beta, ctile, rsc, csc, rows, cols) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_balanced() {
        assert_eq!(balanced_block(784, 256, 1), 196);
        assert_eq!(balanced_block(512, 256, 1), 256);
        assert_eq!(balanced_block(512, 144, 6), 132);
        assert_eq!(balanced_block(10, 144, 6), 12);
    }

    #[test]
    fn power_of_two_strides_are_not_read_in_place() {
        assert!(!rows_spread_over_l1(12, 4096));
        assert!(!rows_spread_over_l1(12, 2048));
        assert!(rows_spread_over_l1(12, 784 * 4));
        assert!(rows_spread_over_l1(12, 128 * 4));
    }
}
