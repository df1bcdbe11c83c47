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

impl<T> SendPtr<T> {
    /// The pointer (a method, so closures capture the whole `Sync` wrapper, not the raw field).
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

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
    pub(crate) fn a_at(&self, i: usize, p: usize) -> *const T {
        self.a.wrapping_add(i * self.rsa + p * self.csa)
    }

    /// Address of `B[p][j]`.
    fn b_at(&self, p: usize, j: usize) -> *const T {
        self.b.wrapping_add(p * self.rsb + j * self.csb)
    }

    /// Address of `C[i][j]`.
    pub(crate) fn c_at(&self, i: usize, j: usize) -> *mut T {
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

/// Runs `batch` problems; member `l` has its matrices offset by `l * bs{a,b,c}` elements. On the current
/// rayon pool with `pool`, else on the calling thread.
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
    pool: bool,
) {
    let work = base.m.saturating_mul(base.n).saturating_mul(base.k);
    let threads = if pool { rayon::current_num_threads() } else { 1 };
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
pub(crate) unsafe fn gemm_one<T: GemmScalar>(p: &Problem<T>, par: bool) {
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
pub(crate) const SMALL_ROWS: usize = 12;
/// Column granularity of the threaded small path (a multiple of every tier's 2-vector tile width).
const SMALL_COLS: usize = 32;

/// Whether the unpacked small-shape kernel runs this problem (a SIMD tier and unit column stride of B).
fn small_applies<T: GemmScalar>(p: &Problem<T>) -> bool {
    p.csb == 1 && super::isa() != super::Isa::Portable
}

pub(crate) fn div_ceil(a: usize, b: usize) -> usize {
    a.div_ceil(b)
}

/// Part `i` of `parts` nearly equal contiguous parts of `0..len` (sizes differ by at most one).
pub(crate) fn part(i: usize, parts: usize, len: usize) -> (usize, usize) {
    (i * len / parts, (i + 1) * len / parts)
}

/// How `threads` tasks split a block of `mp` row panels x `np` column panels: a `tm x tn` grid
/// (`tm * tn == threads`) with the smallest largest task (in tiles). Ties go to the split over M. `n_ok`:
/// whether splitting N is allowed at all.
pub(crate) fn grid(threads: usize, mp: usize, np: usize, n_ok: bool) -> (usize, usize) {
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

/// Like [`grid`] for the packed path over `m` rows in panels of `mr`, with a task's cost counted in rows
/// of C (the actual rows of its row panels, the last one partial) times its column panels: the x86 tiles
/// compute only the rows of a partial panel (`m = 65`: 5 of 12), so splitting M there can leave the
/// other task with more work than a split over N (65x2048x256: rows 36 + 29 at 8 column panels each, vs
/// 65 rows at 4 column panels each).
pub(crate) fn grid_rows(threads: usize, m: usize, mr: usize, np: usize, n_ok: bool) -> (usize, usize) {
    let mp = div_ceil(m, mr);
    // The most rows any of `tm` parts of the row panels holds.
    let rows = |tm: usize| {
        (0..tm)
            .map(|i| {
                let (i0, i1) = part(i, tm, mp);
                (i1 * mr).min(m) - (i0 * mr).min(m)
            })
            .max()
            .unwrap_or(0)
    };
    let mut best = (threads, 1);
    let mut best_cost = rows(threads) * np;
    for tn in 2..=threads {
        if !n_ok || !threads.is_multiple_of(tn) {
            continue;
        }
        let tm = threads / tn;
        let cost = rows(tm) * div_ceil(np, tn);
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

/// Whether the product's last B panel is one for [`Kernel::narrow`] (at most `K::NARROW` valid columns)
/// and all of `n` is one NC block. Then A is packed even when it could be read in place: the narrow
/// kernel reads packed A panels, and packing A (about one load and store per element) costs less than
/// the full-width tile it replaces (one FMA pair per element and step, for `n = 65` a third of the work).
fn narrow_edge<T: GemmScalar, K: Kernel<T>>(n: usize, nc: usize) -> bool {
    let cols = n % K::NR;
    n <= nc && cols != 0 && cols <= K::NARROW
}

/// Splits `len` into `ceil(len / max)` nearly equal blocks, each rounded up to a multiple of `unit`.
fn balanced_block(len: usize, max: usize, unit: usize) -> usize {
    let blocks = div_ceil(len, max);
    div_ceil(div_ceil(len, blocks), unit) * unit
}

/// Largest packed A (all `m` rows of one KC step) that threads share when they split N; above it they
/// split M, each packing its own rows. 2 MiB: 512^3 `f32` with KC = 512 needs 1.03 MiB and, split over N
/// (8 + 8 column panels instead of 22 + 21 row panels), measured 445 vs 421 GFLOP/s on 2 threads
/// (interleaved best-of batches, `chrt -f 10`).
const SHARED_A_BYTES: usize = 2 << 20;

/// With threads, when all of packed B (one NC block, all of `k`) fits in this many bytes (and a shared A
/// in half of it), everything is packed in one parallel region up front and the tasks then loop over the
/// KC steps themselves: two parallel regions per product instead of two per KC step.
const PREPACK_BYTES: usize = 4 << 20;

/// The packed BLIS driver with microkernel `K` on `threads` threads of the current rayon pool.
///
/// Per (`jc`, `pc`) block: one parallel region packs B (and, when the threads split N and A is packed,
/// all of A) cooperatively, each task a contiguous share; a second runs one task per thread over a
/// `tm x tn` grid of C (row panels x column panels, [`grid`]), each task looping over its rows in MC
/// blocks (packing its own A rows unless A is shared or read in place) and its column panels. When the
/// packed operands are small enough ([`PREPACK_BYTES`]), the first region packs all KC steps and the
/// second loops over them inside each task (the same operations on every element, in the same order).
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
    let direct_a = K::DIRECT_A && p.csa == 1 && rows_spread_over_l1(mr, p.rsa * size) && !narrow_edge::<T, K>(p.n, nc);
    let shared_a_ok = direct_a || mp * mr * kc * size <= SHARED_A_BYTES;
    // Splitting only changes who computes which tiles, never how. One grid for all NC blocks (only the
    // last one can be narrower).
    let (tm, tn) =
        if threads > 1 { grid_rows(threads, p.m, mr, div_ceil(nc.min(p.n), nr), shared_a_ok) } else { (1, 1) };
    let shared_a = tn > 1 && !direct_a;
    let cell = Cell { p, mr, nr, mc, mp, tm, tn, direct_a, shared_a };
    let np_all = div_ceil(p.n, nr);
    let prepack = threads > 1
        && p.n <= nc
        && p.k > kc
        && np_all * nr * p.k * size <= PREPACK_BYTES
        && (!shared_a || mp * mr * p.k * size <= PREPACK_BYTES / 2);
    if prepack {
        let mut bbuf = PackBuf::take(&B_BUF, np_all * nr * p.k * size);
        let mut sbuf = if shared_a { Some(PackBuf::take(&A_BUF, mp * mr * p.k * size)) } else { None };
        let bptr = SendPtr(bbuf.slice::<T>(np_all * nr * p.k).as_mut_ptr());
        let aptr = sbuf.as_mut().map(|buf| SendPtr(buf.slice::<T>(mp * mr * p.k).as_mut_ptr()));
        // Region 1: task t packs its share of the panels of every KC step (B step pc at offset
        // np_all*nr*pc, A step at mp*mr*pc: the sizes of all earlier steps sum to pc).
        (0..threads).into_par_iter().for_each(|t| {
            for pc in (0..p.k).step_by(kc) {
                let kcb = kc.min(p.k - pc);
                // SAFETY: task t writes the panels of its own share only (disjoint from every other task's),
                // inside the buffers taken above (step pc's np_all*nr*kcb and mp*mr*kcb elements start at
                // these offsets); B and A are readable by the contract.
                unsafe {
                    let b = bptr.get().add(np_all * nr * pc);
                    let a = aptr.map(|ap| ap.get().add(mp * mr * pc));
                    cell.pack_share(t, threads, 0, pc, kcb, p.n, b, a);
                }
            }
        });
        let bpack: &[T] = bbuf.slice::<T>(np_all * nr * p.k);
        let apack: &[T] = match sbuf.as_mut() {
            Some(buf) => buf.slice::<T>(mp * mr * p.k),
            None => &[],
        };
        // Region 2: each task runs all KC steps of its cell.
        (0..tm * tn).into_par_iter().for_each(|t| {
            let mut own = if shared_a { None } else { Some(PackBuf::take(&A_BUF, mc * kc * size)) };
            for pc in (0..p.k).step_by(kc) {
                let kcb = kc.min(p.k - pc);
                let b = &bpack[np_all * nr * pc..][..np_all * nr * kcb];
                let a = if shared_a { &apack[mp * mr * pc..][..mp * mr * kcb] } else { &[] };
                // SAFETY: b (and a, if shared) hold the packed step pc; the task writes its own cell of C.
                unsafe { cell.run::<K>(t, 0, p.n, pc, kcb, b, nr * kcb, a, own.as_mut()) };
            }
        });
        return;
    }

    let mut bbuf = PackBuf::take(&B_BUF, nc * kc * size);
    // The shared A lives in the calling thread's A buffer (its tasks then need none of their own).
    let mut sbuf = if shared_a { Some(PackBuf::take(&A_BUF, mp * mr * kc * size)) } else { None };
    for jc in (0..p.n).step_by(nc) {
        let ncb = nc.min(p.n - jc);
        let np = div_ceil(ncb, nr);
        for pc in (0..p.k).step_by(kc) {
            let kcb = kc.min(p.k - pc);
            let bpack = bbuf.slice::<T>(np * nr * kcb);
            let apack: &mut [T] = match sbuf.as_mut() {
                Some(buf) => buf.slice::<T>(mp * mr * kcb),
                None => &mut [],
            };
            // Phase 1: pack B (and the shared A), a contiguous share of the panels per task.
            if threads > 1 {
                let bptr = SendPtr(bpack.as_mut_ptr());
                let aptr = if shared_a { Some(SendPtr(apack.as_mut_ptr())) } else { None };
                (0..threads).into_par_iter().for_each(|t| {
                    // SAFETY: task t writes only the panels of its own share (disjoint from the other
                    // tasks'), inside bpack / apack; B and A are readable by the contract.
                    unsafe { cell.pack_share(t, threads, jc, pc, kcb, ncb, bptr.get(), aptr.map(SendPtr::get)) };
                });
            } else {
                let aptr = if shared_a { Some(apack.as_mut_ptr()) } else { None };
                // SAFETY: one task owns all shares of bpack / apack; B and A readable by the contract.
                unsafe { cell.pack_share(0, 1, jc, pc, kcb, ncb, bpack.as_mut_ptr(), aptr) };
            }
            let bpack: &[T] = bpack;
            let apack: &[T] = apack;
            // Phase 2: one task per grid cell.
            let task = |t: usize| {
                let mut own = if shared_a { None } else { Some(PackBuf::take(&A_BUF, mc * kc * size)) };
                // SAFETY: bpack (and apack, if shared) hold the packed step; the task writes its own cell.
                unsafe { cell.run::<K>(t, jc, ncb, pc, kcb, bpack, nr * kcb, apack, own.as_mut()) };
            };
            if tm * tn > 1 {
                (0..tm * tn).into_par_iter().for_each(task);
            } else {
                task(0);
            }
        }
    }
}

/// The packed driver for a `B` packed ahead of time ([`PackedB`](super::PackedB)): column panel `jp` with all
/// `k` steps at `bpack[jp * nr * k..]` (element `(p, j)` at `p * nr + j % nr`), so KC step `pc` of panel
/// `jp` is the contiguous `nr * kcb` run at `jp * nr * k + pc * nr`. Same blocking, grid cells and
/// microkernel calls as [`gemm_packed`] (hence the same operations on every element of C, in the same
/// order), minus the B packing: one parallel region per product, each task looping over the NC blocks and
/// KC steps of its cell and packing only its own rows of A (full panels of a row-major A read in place).
///
/// # Safety
///
/// `p` as in [`gemm_batched_raw`] for A and C (`p.b` is not read), `m, n, k > 0`; `bpack` holds
/// `ceil(n / nr) * nr * k` packed elements with `nr == K::NR`; the CPU supports `K`'s instructions.
pub(crate) unsafe fn gemm_prepacked<T: GemmScalar, K: Kernel<T>>(p: &Problem<T>, bpack: &[T], threads: usize) {
    let (mr, nr) = (K::MR, K::NR);
    let size = std::mem::size_of::<T>();
    debug_assert!(bpack.len() >= div_ceil(p.n, nr) * nr * p.k);
    let kc = balanced_block(p.k, K::KC, 1);
    let mc = balanced_block(p.m, K::MC, mr).min(div_ceil(p.m, mr) * mr);
    let nc = balanced_block(p.n, K::NC, nr);
    let mp = div_ceil(p.m, mr);
    let direct_a = K::DIRECT_A && p.csa == 1 && rows_spread_over_l1(mr, p.rsa * size) && !narrow_edge::<T, K>(p.n, nc);
    // Each task packs its own A rows, so splitting N is always allowed (when the threads split N, each
    // packs all of A: m*k copies against m*k*n/threads multiply-adds).
    let (tm, tn) = if threads > 1 { grid_rows(threads, p.m, mr, div_ceil(nc.min(p.n), nr), true) } else { (1, 1) };
    let cell = Cell { p, mr, nr, mc, mp, tm, tn, direct_a, shared_a: false };
    let task = |t: usize| {
        let mut own = PackBuf::take(&A_BUF, mc * kc * size);
        for jc in (0..p.n).step_by(nc) {
            let ncb = nc.min(p.n - jc);
            // Panel jc / nr starts at (jc / nr) * nr * k = jc * k (nc is a multiple of nr).
            let block = &bpack[jc * p.k..];
            for pc in (0..p.k).step_by(kc) {
                let kcb = kc.min(p.k - pc);
                // SAFETY: `block[pc * nr..]` holds the block's panels for step pc, nr * k apart (each run of
                // nr * kcb in bounds: see the debug_assert above); the task writes its own cell of C; A is
                // readable and the CPU supports K by the contract.
                unsafe { cell.run::<K>(t, jc, ncb, pc, kcb, &block[pc * nr..], nr * p.k, &[], Some(&mut own)) };
            }
        }
    };
    if tm * tn > 1 {
        (0..tm * tn).into_par_iter().for_each(task);
    } else {
        task(0);
    }
}

/// The thread split of one product: grid, blocking and A handling (see [`gemm_packed`]).
#[derive(Clone, Copy)]
struct Cell<'a, T> {
    p: &'a Problem<T>,
    mr: usize,
    nr: usize,
    mc: usize,
    mp: usize,
    tm: usize,
    tn: usize,
    direct_a: bool,
    shared_a: bool,
}

impl<T: GemmScalar> Cell<'_, T> {
    /// Packs share `t` of `shares` of the B panels of the block (columns `jc .. jc + ncb`, KC step `pc`,
    /// depth `kcb`) into the block's panels at `b` and, with `a`, share `t` of all of A's row panels for
    /// the step into the panels at `a`. Shares are contiguous runs of `ceil(panels / shares)` panels; only
    /// the panels of share `t` are written (raw pointers: other tasks write the other shares meanwhile).
    ///
    /// # Safety
    ///
    /// B columns `jc .. jc + ncb` and A (all rows) at depth `pc .. pc + kcb` are readable; `b` points to
    /// `ceil(ncb / nr)` and `a` to `mp` writable panels of `kcb` steps; no one else accesses share `t`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn pack_share(
        &self,
        t: usize,
        shares: usize,
        jc: usize,
        pc: usize,
        kcb: usize,
        ncb: usize,
        b: *mut T,
        a: Option<*mut T>,
    ) {
        let (p, mr, nr) = (self.p, self.mr, self.nr);
        let np = div_ceil(ncb, nr);
        let per_b = div_ceil(np, shares);
        for jp in (t * per_b)..((t + 1) * per_b).min(np) {
            let cols = nr.min(ncb - jp * nr);
            // SAFETY: panel jp < np is inside the caller's buffer and in share t (caller contract: no one
            // else accesses it); it covers columns jc + jp*nr .. + cols <= n and rows pc .. pc + kcb <= k of
            // B, in bounds by the contract.
            unsafe {
                let panel = std::slice::from_raw_parts_mut(b.add(jp * nr * kcb), nr * kcb);
                pack_b_panel(kcb, cols, p.b_at(pc, jc + jp * nr), p.rsb, p.csb, panel)
            };
        }
        if let Some(a) = a {
            let per_a = div_ceil(self.mp, shares);
            let (ip0, ip1) = (t * per_a, ((t + 1) * per_a).min(self.mp));
            if ip0 < ip1 {
                let rows = (ip1 * mr).min(p.m) - ip0 * mr;
                // SAFETY: panels ip0 .. ip1 <= mp are inside the caller's buffer and in share t (no one
                // else accesses them); rows ip0*mr .. + rows <= m and columns pc .. pc + kcb <= k of A are
                // in bounds; `dst` holds ceil(rows / mr) panels of mr * kcb.
                unsafe {
                    let dst = std::slice::from_raw_parts_mut(a.add(ip0 * mr * kcb), (ip1 - ip0) * mr * kcb);
                    pack_a(mr, rows, kcb, p.a_at(ip0 * mr, pc), p.rsa, p.csa, dst)
                };
            }
        }
    }

    /// Computes grid cell `t` for KC step `pc` (depth `kcb`) of the NC block at `jc` (`ncb` columns): B's
    /// packed panels of the block in `b`, panel `jp` of the block at `b[jp * bstride..]` (`nr * kcb` for a
    /// per-step packed block, `nr * k` for a [`PackedB`](super::PackedB) with `b` offset by `pc * nr`); all of A's packed panels of the step in `a` when shared, else
    /// packed per MC block into `own` (full panels of a row-major A read in place).
    ///
    /// # Safety
    ///
    /// `b` (and `a` when shared) hold the packed step (`bstride >= nr * kcb`); `own` is `Some` unless A is
    /// shared; C's cell is not
    /// accessed concurrently; the CPU supports `K`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn run<K: Kernel<T>>(
        &self,
        t: usize,
        jc: usize,
        ncb: usize,
        pc: usize,
        kcb: usize,
        b: &[T],
        bstride: usize,
        a: &[T],
        mut own: Option<&mut PackBuf>,
    ) {
        let (p, mr, nr, mc) = (self.p, self.mr, self.nr, self.mc);
        let np = div_ceil(ncb, nr);
        let beta = if pc == 0 { p.beta } else { T::ONE };
        let (ip0, ip1) = part(t / self.tn, self.tm, self.mp);
        let (j0, j1) = part(t % self.tn, self.tn, np);
        if ip0 >= ip1 || j0 >= j1 {
            return;
        }
        let (r0, r1) = (ip0 * mr, (ip1 * mr).min(p.m));
        for ic in (r0..r1).step_by(mc) {
            let mcb = mc.min(r1 - ic);
            let panels = div_ceil(mcb, mr);
            let ablock: &[T] = match own.as_deref_mut() {
                None => {
                    debug_assert!(self.shared_a);
                    &a[ic * kcb..][..panels * mr * kcb]
                }
                Some(buf) => {
                    let ablock = buf.slice::<T>(panels * mr * kcb);
                    for (ip, panel) in ablock.chunks_exact_mut(mr * kcb).enumerate() {
                        let rows = mr.min(mcb - ip * mr);
                        // Full panels of an A read in place need no packing.
                        if self.direct_a && rows == mr {
                            continue;
                        }
                        // SAFETY: rows ic + ip*mr .. + rows <= m and columns pc .. pc + kcb <= k of A are
                        // in bounds; `panel` holds mr * kcb elements.
                        unsafe { pack_a(mr, rows, kcb, p.a_at(ic + ip * mr, pc), p.rsa, p.csa, panel) };
                    }
                    ablock
                }
            };
            let a_direct = if self.direct_a { Some((p.a_at(ic, pc), p.rsa)) } else { None };
            // SAFETY: `ablock` holds the block's `panels` packed panels (with a_direct, the full ones are
            // read in place from A rows ic .. ic + mcb, in bounds) and b `np` panels of kcb; the C block
            // rows ic .. ic + mcb, columns jc + j0*nr .. jc + min(j1*nr, ncb) is in bounds and written by
            // this task only (tasks partition the grid); the CPU supports K.
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
                    b,
                    bstride,
                    beta,
                    p.c_at(ic, jc),
                    p.rsc,
                    p.csc,
                )
            };
        }
    }
}

/// Runs the microkernel over panels `j0..j1` of the packed B block (panel `jp` at `bpack[jp * bstride..]`)
/// and all MR-row panels of the packed A block, writing the `mcb x ncb` block of C at `c` (only its
/// columns of panels `j0..j1`).
///
/// # Safety
///
/// `apack`/`bpack` hold the packed blocks (`div_ceil(mcb, MR)` and at least `j1` panels of `kcb`, B's
/// `bstride >= NR * kcb` apart; with
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
    bstride: usize,
    beta: T,
    c: *mut T,
    rsc: usize,
    csc: usize,
) {
    let (mr, nr) = (K::MR, K::NR);
    let a_panels = div_ceil(mcb, mr);
    debug_assert!(bstride >= nr * kcb);
    debug_assert!(apack.len() >= a_panels * mr * kcb && bpack.len() >= (j1 - 1) * bstride + nr * kcb);
    for jp in j0..j1 {
        let cols = nr.min(ncb - jp * nr);
        let bp = &bpack[jp * bstride..][..nr * kcb];
        if cols <= K::NARROW && a_direct.is_none() {
            // A partial panel of a few columns (n = 65: 1 of 32): vectorized over A's rows instead.
            // SAFETY: all `a_panels` A panels are packed in apack (no a_direct), bp is a full packed
            // panel, cols <= NARROW, and columns jp*nr .. + cols of the C block are the caller's.
            unsafe {
                K::narrow(
                    kcb,
                    alpha,
                    apack.as_ptr(),
                    mcb,
                    bp.as_ptr(),
                    beta,
                    c.wrapping_add(jp * nr * csc),
                    rsc,
                    csc,
                    cols,
                )
            };
            continue;
        }
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
    fn grid_counts_the_rows_of_a_partial_panel() {
        // 65 rows (5 panels + 5 rows), 8 column panels: M split 36 + 29 rows x 8, N split 65 x 4.
        assert_eq!(grid_rows(2, 65, 12, 8, true), (1, 2));
        assert_eq!(grid_rows(2, 65, 12, 8, false), (2, 1));
        // Full panels: as `grid` (ties go to M).
        assert_eq!(grid_rows(2, 72, 12, 8, true), grid(2, 6, 8, true));
        assert_eq!(grid_rows(2, 2048, 12, 3, true), (2, 1));
        assert_eq!(grid_rows(2, 512, 12, 16, true), (1, 2));
    }

    #[test]
    fn power_of_two_strides_are_not_read_in_place() {
        assert!(!rows_spread_over_l1(12, 4096));
        assert!(!rows_spread_over_l1(12, 2048));
        assert!(rows_spread_over_l1(12, 784 * 4));
        assert!(rows_spread_over_l1(12, 128 * 4));
    }
}
