//! `B` packed once, multiplied many times: [`PackedB`] and [`gemm_packed_b`].
//!
//! # Math and shapes
//!
//! `C = alpha * A·B + beta * C` with `A` `m x k` (`a[i*rsa + p*csa]`, any strides), `B` `k x n` given once
//! to [`PackedB::new`] (`b[p*rsb + j*csb]`, any strides) and `C` `m x n` (`c[i*rsc + j*csc]`, any strides
//! that do not overlap); `beta == 0` never reads `C` (it may hold NaN); `alpha == 0` or `k == 0` only
//! scale `C`. This is the product of [`sgemm`](super::sgemm) with the packing of `B` hoisted out of the
//! call: a recurrent layer multiplies the same weight `W` (as `B = W^T` forward, `B = W` for the
//! backward's `dH = dA·W`) at every time step, and repacking a 1 MB weight per step costs as much as a
//! sizable part of the product itself. It is a plain kernel (no autograd): a backward that needs
//! `dA = dC·B^T` packs `B^T` as a second `PackedB`.
//!
//! # Layout
//!
//! `B` is stored as `ceil(n / NR)` column panels of `k x NR` (`NR`, [`PackedB::panel_width`]: the
//! microkernel's tile width, 32 for `f32` / 16 for `f64` with AVX-512, 16 / 8 with AVX2, 8 / 8 portable).
//! Panel `jp` holds columns `jp*NR .. jp*NR + NR` (zeros past `n`): element `(p, j)` at
//! `jp*NR*k + p*NR + j % NR`. KC step `pc` of a panel (`pc .. pc + kc` of `k`) is then the contiguous run
//! at `jp*NR*k + pc*NR`, exactly the panel the packed driver packs per step, so a product on a `PackedB`
//! runs the same microkernel calls on the same values; it only skips the packing of `B` (about `k*n`
//! loads and stores per call and, with threads, one of the two parallel regions).
//!
//! # Splitting `N` across the caller's threads
//!
//! [`PackedB::columns`] (and [`PackedBRef::columns`]) give a no-copy view of the columns `j0..j1` when
//! `j0` is a multiple of the panel width (its panels are contiguous). A caller that parallelises itself
//! gives each thread such a range and calls [`gemm_packed_b_single_thread`] with `C` starting at its
//! column `j0`, e.g. with `n = 1024` on two threads `0..512` and `512..1024` (512 is a multiple of every
//! panel width), `C` at `&mut c[0..]` and `&mut c[512..]` (row-major `C`, split with `split_at_mut` per
//! row block or through the strides). Which thread computes a column never changes its value.
//!
//! # Numerics and threads
//!
//! The result is bitwise identical to [`sgemm`](super::sgemm) / [`dgemm`](super::dgemm) on the same `A`
//! and `C` and the unpacked `B` when `C` is oriented row-wise (`csc <= rsc`) and `B` has unit column
//! stride, and for any strides when `k <= KC` (one block of `k`: 512 for the AVX-512 `f32` kernel, 256
//! for the others) or `m*n*k` is above
//! [`SMALL_MNK`](super::SMALL_MNK): small products (`m*n*k <= SMALL_MNK`) run the unpacked small-shape
//! kernel over the packed panels (one pass over `k`), larger ones the packed driver (`k` in blocks of up
//! to KC, `beta` applied with the first). For a column view the choice is made with the `n` of the whole
//! `PackedB`, so a product computed in column blocks has the same bits as the whole product. [`gemm_packed_b`] splits the work over `M` and `N` on the
//! current rayon pool exactly like `sgemm` (same thresholds [`PAR_MNK`](super::PAR_MNK) /
//! [`PAR_MNK_EXTERNAL`](super::PAR_MNK_EXTERNAL)), so results are bitwise identical for any number of
//! threads; [`gemm_packed_b_single_thread`] never leaves the calling thread.
//!
//! A `PackedB` packed for one kernel tier and used after the tier changed (only possible through the
//! hidden test switch [`force_isa`](super::force_isa)) still gives correct results, through a slower
//! panel-by-panel path.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;

use rayon::prelude::*;

use super::checks::{assert_no_overlap, extent, short_panic};
use super::driver::{div_ceil, gemm_one, grid, part, Problem, SendPtr, SMALL_ROWS};
use super::pack::{lines_as, lines_as_mut, pack_b_panel, Line};
use super::{isa, par_limit, small_limit, GemmScalar, Isa};

/// Packing a `PackedB` of at least this many elements uses the current rayon pool (one panel per task).
const PAR_PACK: usize = 1 << 16;

/// A `k x n` matrix `B` packed once into the column panels the GEMM microkernel reads (module docs), for
/// any number of products `C = alpha * A·B + beta * C` through [`gemm_packed_b`].
///
/// Memory: `ceil(n / NR) * NR * k` elements, 64-byte aligned.
///
/// # Example
///
/// ```
/// use tensorgrad_kernels::gemm::{gemm_packed_b, sgemm, PackedB};
/// // W is 3 x 2 (row-major); B = W^T (2 x 3) is the strided view (rsb, csb) = (1, 2) of W.
/// let w = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let wt = PackedB::new(2, 3, &w, 1, 2);
/// let h = [1.0f32, 1.0, 0.5, -1.0]; // 2 x 2
/// let mut c = [f32::NAN; 6];
/// gemm_packed_b(2, 1.0, &h, 2, 1, &wt, 0.0, &mut c, 3, 1);
/// assert_eq!(c, [3.0, 7.0, 11.0, -1.5, -2.5, -3.5]);
/// // The same as the unpacked product, bit for bit.
/// let mut d = [0.0f32; 6];
/// sgemm(2, 2, 3, 1.0, &h, 2, 1, &w, 1, 2, 0.0, &mut d, 3, 1);
/// assert_eq!(c, d);
/// ```
#[derive(Clone)]
pub struct PackedB<T> {
    k: usize,
    n: usize,
    nr: usize,
    lines: Vec<Line>,
    _t: PhantomData<T>,
}

impl<T> fmt::Debug for PackedB<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackedB").field("k", &self.k).field("n", &self.n).field("panel_width", &self.nr).finish()
    }
}

impl<T: GemmScalar> PackedB<T> {
    /// Packs the `k x n` matrix `B` with element `(p, j)` at `b[p*rsb + j*csb]` (any strides: `B = W^T` of
    /// a row-major `W [n, k]` is `(rsb, csb) = (1, k)`). Large matrices are packed on the current rayon
    /// pool.
    ///
    /// # Panics
    ///
    /// If `b` is too short for `k`, `n` and the strides (`b.len() > (k-1)*rsb + (n-1)*csb` when non-empty).
    #[track_caller]
    pub fn new(k: usize, n: usize, b: &[T], rsb: usize, csb: usize) -> Self {
        let mut packed = PackedB { k: 0, n: 0, nr: T::panel_width(), lines: Vec::new(), _t: PhantomData };
        packed.pack(k, n, b, rsb, csb);
        packed
    }

    /// Repacks `self` with a new `B` (same contract as [`PackedB::new`]), reusing its memory: e.g. once per
    /// training step after the optimizer changed the weight.
    ///
    /// # Panics
    ///
    /// As [`PackedB::new`].
    #[track_caller]
    pub fn pack(&mut self, k: usize, n: usize, b: &[T], rsb: usize, csb: usize) {
        let dims = [(k, rsb), (n, csb)];
        let need = extent("B", &dims);
        if b.len() < need {
            short_panic("B", need, b.len(), &dims);
        }
        let nr = T::panel_width();
        let len = div_ceil(n, nr) * nr * k;
        let lines = (len * std::mem::size_of::<T>()).div_ceil(64);
        if self.lines.len() < lines {
            self.lines.resize(lines, Line::ZERO);
        }
        (self.k, self.n, self.nr) = (k, n, nr);
        if len == 0 {
            return;
        }
        let data = lines_as_mut::<T>(&mut self.lines, len);
        let pack = |(jp, panel): (usize, &mut [T])| {
            let cols = nr.min(n - jp * nr);
            // SAFETY: columns jp*nr .. jp*nr + cols <= n and rows 0..k of B are in bounds of `b` (checked
            // above); `panel` holds nr * k elements (the whole panel), cols <= nr.
            unsafe { pack_b_panel(k, cols, b.as_ptr().wrapping_add(jp * nr * csb), rsb, csb, panel) };
        };
        if len >= PAR_PACK && rayon::current_num_threads() > 1 {
            data.par_chunks_mut(nr * k).enumerate().for_each(pack);
        } else {
            data.chunks_mut(nr * k).enumerate().for_each(pack);
        }
    }

    /// Rows of `B` (the inner dimension of the product).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns of `B` (and of `C`).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Columns per packed panel: a column range given to [`PackedB::columns`] must start at a multiple of it.
    pub fn panel_width(&self) -> usize {
        self.nr
    }

    /// A view of all of `B`.
    pub fn view(&self) -> PackedBRef<'_, T> {
        let len = div_ceil(self.n, self.nr) * self.nr * self.k;
        PackedBRef { k: self.k, n: self.n, nr: self.nr, full_n: self.n, data: lines_as(&self.lines, len) }
    }

    /// A view of the columns `cols` of `B` (no copy), for a caller that splits `N` itself (module docs).
    ///
    /// # Panics
    ///
    /// If `cols` is not inside `0..n`, or is non-empty and does not start at a multiple of
    /// [`PackedB::panel_width`].
    #[track_caller]
    pub fn columns(&self, cols: Range<usize>) -> PackedBRef<'_, T> {
        self.view().columns(cols)
    }
}

/// A borrowed view of a [`PackedB`], or of a block of its columns ([`PackedB::columns`]).
#[derive(Clone, Copy)]
pub struct PackedBRef<'a, T> {
    k: usize,
    n: usize,
    nr: usize,
    /// Columns of the whole `PackedB`: the small-vs-packed choice (which decides the rounding when
    /// `k > KC`) is made on `m * full_n * k`, so column views give the same bits as the whole.
    full_n: usize,
    /// The view's `ceil(n / nr)` panels of `nr * k`.
    data: &'a [T],
}

impl<T> fmt::Debug for PackedBRef<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackedBRef").field("k", &self.k).field("n", &self.n).field("panel_width", &self.nr).finish()
    }
}

impl<'a, T> From<&'a PackedB<T>> for PackedBRef<'a, T>
where
    T: GemmScalar,
{
    fn from(b: &'a PackedB<T>) -> Self {
        b.view()
    }
}

impl<'a, T: GemmScalar> PackedBRef<'a, T> {
    /// Rows of `B`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns of this view.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Columns per packed panel.
    pub fn panel_width(&self) -> usize {
        self.nr
    }

    /// The columns `cols` of this view (relative to it); see [`PackedB::columns`].
    ///
    /// # Panics
    ///
    /// If `cols` is not inside `0..n`, or is non-empty and does not start at a multiple of the panel width.
    #[track_caller]
    pub fn columns(self, cols: Range<usize>) -> PackedBRef<'a, T> {
        let (j0, j1) = (cols.start, cols.end);
        if j0 > j1 || j1 > self.n {
            panic!("PackedB::columns: range {j0}..{j1} is not inside the {} columns of B", self.n);
        }
        if j0 == j1 {
            return PackedBRef { n: 0, data: &[], ..self };
        }
        if !j0.is_multiple_of(self.nr) {
            panic!("PackedB::columns: range {j0}..{j1} must start at a multiple of the panel width {}", self.nr);
        }
        let panel = self.nr * self.k;
        PackedBRef { n: j1 - j0, data: &self.data[j0 / self.nr * panel..div_ceil(j1, self.nr) * panel], ..self }
    }
}

/// `C = alpha * A·B + beta * C` with `B` prepacked ([`PackedB`] or a [`PackedBRef`] column block): `A` is
/// `m x k` (`a[i*rsa + p*csa]`), `C` is `m x n` (`c[i*rsc + j*csc]`), `k` and `n` those of `b`. Threads on
/// the current rayon pool like [`sgemm`](super::sgemm) (callable from inside or outside the pool; bitwise
/// identical results for any number of threads); numerics in the module docs.
///
/// # Panics
///
/// If `a` or `c` is too short for the dims and strides, or if `C`'s strides make two elements overlap.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn gemm_packed_b<'b, T: GemmScalar>(
    m: usize,
    alpha: T,
    a: &[T],
    rsa: usize,
    csa: usize,
    b: impl Into<PackedBRef<'b, T>>,
    beta: T,
    c: &mut [T],
    rsc: usize,
    csc: usize,
) {
    entry(m, alpha, a, rsa, csa, b.into(), beta, c, rsc, csc, Mode::Threads);
}

/// [`gemm_packed_b`] on the calling thread only, for a caller that splits the work across its own threads
/// (e.g. over column blocks, [`PackedB::columns`]). Same values as [`gemm_packed_b`].
///
/// # Panics
///
/// As [`gemm_packed_b`].
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn gemm_packed_b_single_thread<'b, T: GemmScalar>(
    m: usize,
    alpha: T,
    a: &[T],
    rsa: usize,
    csa: usize,
    b: impl Into<PackedBRef<'b, T>>,
    beta: T,
    c: &mut [T],
    rsc: usize,
    csc: usize,
) {
    entry(m, alpha, a, rsa, csa, b.into(), beta, c, rsc, csc, Mode::SingleThread);
}

/// [`gemm_packed_b_single_thread`] on the unpacked small-shape path whatever the size of the product (one
/// pass over `k` per 12-row block of `A`, read in place: no packing of `A`, no allocation), when the CPU
/// has it (AVX2 or AVX-512; otherwise it is [`gemm_packed_b_single_thread`]). For a caller whose products
/// are faster that way though above [`SMALL_MNK`](super::SMALL_MNK): e.g. an LSTM's per-step products
/// of a few dozen rows (`32 x 256 x 512`, `32 x 1024 x 128`), where packing `A` costs more than it saves.
///
/// Values: those of [`gemm_packed_b`] when `m * n * k <= SMALL_MNK` (`n` of the whole `PackedB`) or
/// `k <= KC`; otherwise `k` is not split into KC blocks, so the rounding can differ from
/// [`gemm_packed_b`]'s (not the accuracy: both are sums of the same products).
///
/// # Panics
///
/// As [`gemm_packed_b`].
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn gemm_packed_b_small_single_thread<'b, T: GemmScalar>(
    m: usize,
    alpha: T,
    a: &[T],
    rsa: usize,
    csa: usize,
    b: impl Into<PackedBRef<'b, T>>,
    beta: T,
    c: &mut [T],
    rsc: usize,
    csc: usize,
) {
    entry(m, alpha, a, rsa, csa, b.into(), beta, c, rsc, csc, Mode::Small);
}

/// How [`entry`] may run a product.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// On the current rayon pool above the thread threshold.
    Threads,
    /// On the calling thread.
    SingleThread,
    /// On the calling thread, on the small path whatever the size.
    Small,
}

/// [`gemm_packed_b`] for `f32`.
///
/// # Panics
///
/// As [`gemm_packed_b`].
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn sgemm_packed_b<'b>(
    m: usize,
    alpha: f32,
    a: &[f32],
    rsa: usize,
    csa: usize,
    b: impl Into<PackedBRef<'b, f32>>,
    beta: f32,
    c: &mut [f32],
    rsc: usize,
    csc: usize,
) {
    entry(m, alpha, a, rsa, csa, b.into(), beta, c, rsc, csc, Mode::Threads);
}

/// [`gemm_packed_b`] for `f64`.
///
/// # Panics
///
/// As [`gemm_packed_b`].
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn dgemm_packed_b<'b>(
    m: usize,
    alpha: f64,
    a: &[f64],
    rsa: usize,
    csa: usize,
    b: impl Into<PackedBRef<'b, f64>>,
    beta: f64,
    c: &mut [f64],
    rsc: usize,
    csc: usize,
) {
    entry(m, alpha, a, rsa, csa, b.into(), beta, c, rsc, csc, Mode::Threads);
}

/// The checked entry: lengths and overlap, the scaling-only cases, the thread decision, then [`run`].
#[allow(clippy::too_many_arguments)]
#[track_caller]
fn entry<T: GemmScalar>(
    m: usize,
    alpha: T,
    a: &[T],
    rsa: usize,
    csa: usize,
    b: PackedBRef<'_, T>,
    beta: T,
    c: &mut [T],
    rsc: usize,
    csc: usize,
    mode: Mode,
) {
    let (k, n) = (b.k, b.n);
    let compute = m > 0 && n > 0 && k > 0 && alpha != T::ZERO;
    let dims_c = [(1, 0), (m, rsc), (n, csc)];
    let need_c = extent("C", &dims_c);
    if c.len() < need_c {
        short_panic("C", need_c, c.len(), &dims_c);
    }
    assert_no_overlap("C", &dims_c);
    if compute {
        let dims_a = [(m, rsa), (k, csa)];
        let need_a = extent("A", &dims_a);
        if a.len() < need_a {
            short_panic("A", need_a, a.len(), &dims_a);
        }
    }
    if need_c == 0 {
        return;
    }
    if !compute {
        for i in 0..m {
            for j in 0..n {
                let cij = &mut c[i * rsc + j * csc];
                *cij = if beta == T::ZERO { T::ZERO } else { beta * *cij };
            }
        }
        return;
    }
    let p = Problem {
        m,
        k,
        n,
        alpha,
        a: a.as_ptr(),
        rsa,
        csa,
        b: b.data.as_ptr(),
        rsb: b.nr,
        csb: 1,
        beta,
        c: SendPtr(c.as_mut_ptr()),
        rsc,
        csc,
    };
    let work = m.saturating_mul(n).saturating_mul(k);
    let par = mode == Mode::Threads && rayon::current_num_threads() > 1 && work >= par_limit();
    if par && rayon::current_thread_index().is_none() {
        // Enter the pool once for the whole product (as `sgemm` does).
        // SAFETY: A and C checked above (C exclusively borrowed, so not aliased by A or the packed B), B's
        // panels complete by construction, m, n, k > 0; the scope returns when the product is done.
        rayon::scope(|_| unsafe { run(&p, b, rayon::current_num_threads(), false) });
    } else {
        let threads = if par { rayon::current_num_threads() } else { 1 };
        // SAFETY: as above.
        unsafe { run(&p, b, threads, mode == Mode::Small) };
    }
}

/// The product on `threads` threads of the current pool (1: the calling thread only); `small`: on the
/// small path whatever the size.
///
/// # Safety
///
/// A and C of `p` in bounds (C writable, not overlapping, not aliased), `m, n, k > 0`, `b` a complete view
/// with `b.k == p.k`, `b.n == p.n`.
unsafe fn run<T: GemmScalar>(p: &Problem<T>, b: PackedBRef<'_, T>, threads: usize, small: bool) {
    let (nr, k) = (b.nr, p.k);
    let np = div_ceil(p.n, nr);
    // Problem of the columns of panel jp, rows r0..r1, B read in place from the panel (rows nr apart).
    let panel = |jp: usize, r0: usize, r1: usize| Problem {
        m: r1 - r0,
        n: nr.min(p.n - jp * nr),
        a: p.a_at(r0, 0),
        b: b.data[jp * nr * k..].as_ptr(),
        rsb: nr,
        csb: 1,
        c: SendPtr(p.c_at(r0, jp * nr)),
        ..*p
    };
    // The path by the shape of the whole PackedB (not of this column view): see `PackedBRef::full_n`.
    let full_work = p.m.saturating_mul(b.full_n).saturating_mul(k);
    if (small || full_work <= small_limit()) && isa() != Isa::Portable {
        // The small path of `sgemm` (one pass over k), panel by panel, split in whole 12-row blocks and
        // panels.
        let mp = div_ceil(p.m, SMALL_ROWS);
        let (tm, tn) = if threads > 1 { grid(threads, mp, np, true) } else { (1, 1) };
        let task = |t: usize| {
            let (i0, i1) = part(t / tn, tm, mp);
            let (j0, j1) = part(t % tn, tn, np);
            let (r0, r1) = (i0 * SMALL_ROWS, (i1 * SMALL_ROWS).min(p.m));
            if r0 >= r1 {
                return;
            }
            for jp in j0..j1 {
                // SAFETY: rows r0..r1 and the columns of panel jp of the product are in bounds; the panel
                // is k rows of nr elements (unit column stride, as the small kernel needs); tasks write
                // disjoint blocks of C.
                let ran = unsafe { T::small(&panel(jp, r0, r1)) };
                debug_assert!(ran);
            }
        };
        if tm * tn > 1 {
            (0..tm * tn).into_par_iter().for_each(task);
        } else {
            task(0);
        }
        return;
    }
    // SAFETY: forwarded contract; b.data holds ceil(n / nr) * nr * k packed elements.
    if unsafe { T::prepacked(p, b.data, nr, threads) } {
        return;
    }
    // The kernel tier changed since packing (test switch): each panel as an unpacked product.
    for jp in 0..np {
        // SAFETY: the panel's sub-problem is in bounds (rows 0..m, its columns; B the panel itself).
        unsafe { gemm_one(&panel(jp, 0, p.m), threads > 1) };
    }
}
