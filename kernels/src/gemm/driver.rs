//! The BLIS driver: blocking, packing calls, the macro-kernel and the thread split.
//!
//! Loop nest (see the module docs of `gemm`): `jc` (NC columns of B) -> `pc` (KC of the k dimension, pack
//! B) -> groups of `ic` blocks (one MC block on one thread; up to 2 per thread with threads), A packed once
//! per group -> tasks of (`ic` block, group of NR-column panels) -> `jr` panels -> `ir` tiles.
//! Block sizes are balanced (`k = 784` becomes 4 blocks of 196, not 3x256 + 16) and depend only on the
//! shape, never on the number of threads: threads only change which task runs where.

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
    // The kernels write C rows with vector stores: make C's column stride the small one.
    let p = if p.csc > p.rsc { p.transposed() } else { *p };
    let work = p.m.saturating_mul(p.n).saturating_mul(p.k);
    // SAFETY: the problem contract is forwarded unchanged (transposition only relabels it).
    // The path depends on the shape only, never on the thread count: the small path (one pass over k)
    // and the packed path (k in KC blocks) round differently when k > KC, so choosing by thread count
    // would break 1-vs-2-thread bitwise equality. Small products therefore never use threads.
    if work <= small_limit() && unsafe { T::small(&p) } {
        return;
    }
    // SAFETY: as above.
    unsafe { T::packed(&p, par) };
}

fn div_ceil(a: usize, b: usize) -> usize {
    a.div_ceil(b)
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

/// The packed BLIS driver with microkernel `K`, threaded over the current rayon pool when `par`.
///
/// # Safety
///
/// `p` in bounds as in [`gemm_batched_raw`], `m, n, k > 0`, and the CPU supports `K`'s instructions.
pub(crate) unsafe fn gemm_packed<T: GemmScalar, K: Kernel<T>>(p: &Problem<T>, par: bool) {
    let (mr, nr) = (K::MR, K::NR);
    let kc = balanced_block(p.k, K::KC, 1);
    let mc = balanced_block(p.m, K::MC, mr).min(div_ceil(p.m, mr) * mr);
    let nc = balanced_block(p.n, K::NC, nr);
    let threads = if par { rayon::current_num_threads() } else { 1 };
    let n_ic = div_ceil(p.m, mc);
    // Row-major A (unit column stride): its full panels are read in place, which saves the transposing
    // pack (about one store per element of A per NC block).
    // Not when the row stride is a near multiple of 4 KiB: the MR rows would then fall into a few L1 sets
    // (48 KiB, 12-way: 64 sets) and evict each other; measured 2x slower at 1024^3 f32 and 512^3 f64.
    let direct_a = K::DIRECT_A && p.csa == 1 && rows_spread_over_l1(mr, p.rsa * std::mem::size_of::<T>());

    // Threads work on groups of up to 2 ic blocks per thread at a time (A packed once per group, shared),
    // each block split into N panel groups so that every thread gets several tasks.
    let group = if threads > 1 { n_ic.min(2 * threads) } else { 1 };
    let mut bbuf = PackBuf::take(&B_BUF, nc * kc * std::mem::size_of::<T>());
    let mut abuf = PackBuf::take(&A_BUF, group * mc * kc * std::mem::size_of::<T>());
    for jc in (0..p.n).step_by(nc) {
        let ncb = nc.min(p.n - jc);
        let panels = div_ceil(ncb, nr);
        // Splitting N only changes who computes which tiles, never how.
        let n_split = if threads > 1 { div_ceil(4 * threads, group).min(panels) } else { 1 };
        for pc in (0..p.k).step_by(kc) {
            let kcb = kc.min(p.k - pc);
            let bpack = bbuf.slice::<T>(panels * nr * kcb);
            let pack_one = |(jp, panel): (usize, &mut [T])| {
                let cols = nr.min(ncb - jp * nr);
                // SAFETY: panel `jp` covers columns jc + jp*nr .. + cols < n and rows pc .. pc + kcb <= k of
                // B, in bounds by the contract; `panel` holds nr * kcb elements.
                unsafe { pack_b_panel(kcb, cols, p.b_at(pc, jc + jp * nr), p.rsb, p.csb, panel) };
            };
            if threads > 1 {
                bpack.par_chunks_mut(nr * kcb).enumerate().for_each(pack_one);
            } else {
                bpack.chunks_mut(nr * kcb).enumerate().for_each(pack_one);
            }
            let bpack: &[T] = bpack;
            let beta = if pc == 0 { p.beta } else { T::ONE };
            for g0 in (0..n_ic).step_by(group) {
                // A rows of this group of ic blocks, packed once into a buffer the tasks share (so
                // splitting N between threads never packs the same A twice). MC is a multiple of MR, so
                // only the group ending at row m can have a partial panel.
                let r0 = g0 * mc;
                let r1 = ((g0 + group) * mc).min(p.m);
                let a_panels = div_ceil(r1 - r0, mr);
                let apack = abuf.slice::<T>(a_panels * mr * kcb);
                let pack_panel = |(ip, panel): (usize, &mut [T])| {
                    let rows = mr.min(r1 - r0 - ip * mr);
                    // Full panels of an A read in place need no packing.
                    if direct_a && rows == mr {
                        return;
                    }
                    // SAFETY: rows r0 + ip*mr .. + rows <= m and columns pc .. pc + kcb <= k of A are in
                    // bounds; `panel` holds mr * kcb elements.
                    unsafe { pack_a(mr, rows, kcb, p.a_at(r0 + ip * mr, pc), p.rsa, p.csa, panel) };
                };
                if threads > 1 && !direct_a {
                    apack.par_chunks_mut(mr * kcb).enumerate().for_each(pack_panel);
                } else {
                    apack.chunks_mut(mr * kcb).enumerate().for_each(pack_panel);
                }
                let apack: &[T] = apack;
                let n_blocks = div_ceil(r1 - r0, mc);
                let task = |t: usize| {
                    let ic = r0 + (t / n_split) * mc;
                    let s = t % n_split;
                    let (j0, j1) = (s * panels / n_split, (s + 1) * panels / n_split);
                    let mcb = mc.min(p.m - ic);
                    let ablock = &apack[(ic - r0) * kcb..][..div_ceil(mcb, mr) * mr * kcb];
                    let a_direct = if direct_a { Some((p.a_at(ic, pc), p.rsa)) } else { None };
                    let c0 = p.c_at(ic, jc);
                    // SAFETY: `ablock` holds the block's div_ceil(mcb, mr) packed panels (with a_direct,
                    // the full ones are read in place from A rows ic .. ic + mcb, in bounds) and bpack
                    // `panels` panels of kcb; the C block rows ic .. ic + mcb, columns jc + j0*nr ..
                    // jc + min(j1*nr, ncb) is in bounds and written by this task only (tasks partition ic
                    // blocks x panel groups); the CPU supports K.
                    unsafe {
                        macro_kernel::<T, K>(
                            mcb, kcb, ncb, j0, j1, p.alpha, a_direct, ablock, bpack, beta, c0, p.rsc, p.csc,
                        )
                    };
                };
                let ntasks = n_blocks * n_split;
                if threads > 1 {
                    (0..ntasks).into_par_iter().for_each(task);
                } else {
                    (0..ntasks).for_each(task);
                }
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
