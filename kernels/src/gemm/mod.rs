//! General matrix multiply (GEMM) for `f32` and `f64`: `C = alpha * A·B + beta * C`.
//!
//! # Shapes and strides
//!
//! `A` is `m x k`, `B` is `k x n`, `C` is `m x n` (the benchmarks name shapes `m x k x n`). Every matrix is
//! given as a slice starting at its element `(0, 0)` plus a row stride and a column stride in elements, so
//! element `(i, j)` of `A` is `a[i * rsa + j * csa]`. Row-major, column-major (transposed) and strided views
//! all go through the same call: the backward's `A^T G` and `G B^T` cost no transpose copies.
//!
//! # Math and scheme (BLIS)
//!
//! `C[i][j] = alpha * sum_p A[i][p] * B[p][j] + beta * C[i][j]`, with `beta == 0` meaning "overwrite": `C` is
//! then never read (it may hold NaN). `alpha == 0` or `k == 0` skip the product and only scale `C`.
//!
//! The packed path (module `driver`) is the five-loop BLIS scheme:
//!
//! ```text
//! for jc in (0..n).step_by(NC)            // B block, L3
//!   for pc in (0..k).step_by(KC)          // pack B[pc.., jc..] into NR-column panels (kc x NR, zero padded)
//!     for ic in (0..m).step_by(MC)        // pack A[ic.., pc..] into MR-row panels (MR x kc, zero padded), L2
//!       for jr in (0..nc).step_by(NR)     // one B micro-panel, L1
//!         for ir in (0..mc).step_by(MR)   // microkernel: an MR x NR tile of C in registers, kc rank-1 updates
//! ```
//!
//! The `k` loop is sequential for every element of `C` (the first `kc` block applies the caller's `beta`,
//! later blocks accumulate with `beta = 1`). Edge tiles are computed from the zero-padded panels and only
//! their valid part is written, so there is no per-k scalar fallback: a partial last A panel computes only
//! its rows (x86: the row count is a constant of the tile), and a partial last B panel of a few columns
//! (AVX-512 `f32`: at most 8, e.g. the 1 column of `n = 65`) is computed vectorized over the rows of the
//! packed A panels instead of as a full-width tile (`Kernel::narrow`; A is then always packed). Every
//! element gets the same operations whichever path computes it. Packing reads any strides, so transposed
//! operands cost the same as row-major ones.
//!
//! Row-major `A` (unit column stride) is not packed at all: its full `MR`-row panels are read in place
//! by the microkernel (12 sequential streams of broadcasts), which saves the transposing pack; only a
//! partial last panel is packed.
//!
//! # Kernels and dispatch
//!
//! Three tiers, detected at run time once (`is_x86_feature_detected!`, cached in an atomic) so they run at
//! full speed even in a build without `-C target-cpu` ([`isa`], [`kernel_name`]):
//!
//! | tier | `f32` tile | `f64` tile | MC / KC / NC (`f32`) |
//! |---|---|---|---|
//! | AVX-512F | 12x32 | 12x16 | 120 / 512 / 1024 |
//! | AVX2+FMA | 6x16 | 6x8 | 144 / 256 / 4080 |
//! | portable | 8x8 | 4x8 | 128 / 256 / 4096 |
//!
//! The SIMD tiers (`x86`) are `std::arch` intrinsics inside `#[target_feature]` functions; the portable
//! tier (`kernel`) is plain Rust that LLVM vectorizes for the target (NEON on aarch64); it is what runs on
//! non-x86 CPUs, and the hidden `force_isa` switch runs it (or AVX2) on x86 for the tests.
//!
//! Small products (`m*n*k` up to [`SMALL_MNK`], single-threaded) skip packing and allocation: the
//! `direct_kernel!` tile (`R x V` vectors, `R <= MR`, `V <= 2`, masked loads for a partial column block)
//! reads `A` in place with any strides and `B` along its rows (needs unit column stride, after orienting
//! `C` row-wise by transposing the whole problem when `C` is column-major: `C^T = B^T A^T`).
//!
//! # Threads
//!
//! Work is split over the rayon pool of the caller (`rayon::current_num_threads()`), over `M` and `N`
//! only, never over `K`. Block sizes depend only on the shape, so every element of `C` sees the same
//! sequence of floating-point operations whatever the number of threads: results are bitwise identical for
//! 1 and 2 threads. Products below [`PAR_MNK`] multiply-adds stay on the calling thread
//! ([`PAR_MNK_EXTERNAL`] when the caller is not a worker of the pool).
//!
//! With `T` threads, the packed path runs two parallel regions per KC step, each with one task per thread
//! (BLIS's scheme): the tasks first pack the shared B block (and, when they split `N` and `A` needs
//! packing, all `m` rows of `A`) in contiguous shares, then each computes one cell of a `tm x tn` grid
//! over C's MR-row and NR-column panels (`tm * tn = T`), chosen for the smallest largest cell, in rows of
//! C (a partial last row panel counts its rows only) times column panels (512^3 on 2 threads: 43 row
//! panels, 16 column panels -> split N, 8 panels each; 65x2048x256: 36 + 29 rows at 8 column panels vs 65
//! rows at 4 -> split N). A task splitting `M` packs only
//! its own rows of `A`. When all of packed `B` fits in 4 MiB, all KC steps are packed in the first region
//! and each task loops over them: two regions per product. The small path splits the same way in whole
//! direct tiles (12 rows or 32 columns).
//! A call from outside the pool enters it once per product.
//! Batched calls with small members run one member per task instead.
//!
//! # Prepacked `B`
//!
//! A caller that multiplies by the same `B` many times (a recurrent layer's weight at every time step)
//! packs it once into a [`PackedB`] and calls [`gemm_packed_b`] (threaded like `sgemm`) or
//! [`gemm_packed_b_single_thread`] (for callers that split `N` themselves over [`PackedB::columns`]): the
//! same microkernel calls and values as `sgemm`, without packing `B` per call (module `prepacked`).
//!
//! # Panics
//!
//! Every entry point panics with a message naming the operand if a slice is too short for its dims and
//! strides, or if the strides of `C` would make two elements of `C` overlap.

mod checks;
mod dispatch;
mod driver;
mod kernel;
mod pack;
mod prepacked;
mod reference;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::fmt::Debug;
use std::ops::{Add, Mul};
use std::sync::atomic::{AtomicUsize, Ordering};

pub use dispatch::{detected_isa, force_isa, isa, kernel_name, Isa};
pub use prepacked::{
    dgemm_packed_b, gemm_packed_b, gemm_packed_b_single_thread, gemm_packed_b_small_single_thread, sgemm_packed_b,
    PackedB, PackedBRef,
};
pub use reference::gemm_reference;

use checks::{gemm_batched_impl, Threads};

/// Products with `m * n * k` at or below this many multiply-adds take the unpacked small-shape path (when
/// the CPU has AVX2 or AVX-512 and `B`, after orienting `C` row-wise, has unit column stride), whatever
/// the number of threads, so the choice of path (which decides the rounding when `k > KC`) depends on the
/// shape only; from [`PAR_MNK`] up, threads split it over rows or columns.
///
/// Measured (`examples/gemm_gflops.rs --tune`, AVX-512 dev machine, one thread): unpacked vs packed
/// 16^3 0.10 vs 0.38 us, 64^3 2.9 vs 3.8 us, 128^3 21 vs 25 us, 192^3 70 vs 70 us, 256^3 175 vs 193 us;
/// 32x784x16 4.7 vs 15 us. See `kernels/README.md`.
pub const SMALL_MNK: usize = 128 * 128 * 128;

/// Products with fewer than this many multiply-adds (`m * n * k`) run on the calling thread when it is a
/// worker of the rayon pool (inside `ThreadPool::install`, a parallel iterator, `rayon::scope`, ...).
///
/// Measured (`examples/gemm_gflops.rs --scale`, best of interleaved batches, AVX-512 dev machine):
/// 2 threads vs 1 at 64^3 1.0x (not split), 96^3 1.59x, 112^3 1.76x, 128^3 1.80x.
pub const PAR_MNK: usize = 96 * 96 * 96;

/// Like [`PAR_MNK`] for a caller outside the pool (e.g. a program's main thread, which is how the engine
/// calls): entering the pool and waking the caller afterwards costs about 5 us more per product.
///
/// Measured as above, called from the main thread on the global 2-thread pool: 96^3 0.73x, 112^3 0.95x,
/// 128^3 1.21x, 192^3 1.52x, 512^3 1.90x.
pub const PAR_MNK_EXTERNAL: usize = 128 * 128 * 128;

static SMALL_LIMIT: AtomicUsize = AtomicUsize::new(SMALL_MNK);
static PAR_LIMIT: AtomicUsize = AtomicUsize::new(PAR_MNK);
static PAR_LIMIT_EXTERNAL: AtomicUsize = AtomicUsize::new(PAR_MNK_EXTERNAL);

/// Tuning switch for benchmarks: replace [`SMALL_MNK`], [`PAR_MNK`] and [`PAR_MNK_EXTERNAL`] for every
/// later call in this process (`usize::MAX` disables the path). Used by `examples/gemm_gflops.rs --tune`.
#[doc(hidden)]
pub fn set_thresholds(small_mnk: usize, par_mnk: usize, par_mnk_external: usize) {
    SMALL_LIMIT.store(small_mnk, Ordering::Relaxed);
    PAR_LIMIT.store(par_mnk, Ordering::Relaxed);
    PAR_LIMIT_EXTERNAL.store(par_mnk_external, Ordering::Relaxed);
}

fn small_limit() -> usize {
    SMALL_LIMIT.load(Ordering::Relaxed)
}

/// The thread threshold for the calling thread: [`PAR_MNK`] on a pool worker, else [`PAR_MNK_EXTERNAL`].
fn par_limit() -> usize {
    if rayon::current_thread_index().is_some() {
        PAR_LIMIT.load(Ordering::Relaxed)
    } else {
        PAR_LIMIT_EXTERNAL.load(Ordering::Relaxed)
    }
}

/// Element types the GEMM kernels support (`f32` and `f64`); lets the engine call GEMM generically.
///
/// The methods have the same contract as [`sgemm`] / [`sgemm_batched`].
pub trait GemmScalar:
    Copy + Send + Sync + PartialEq + Debug + Default + Add<Output = Self> + Mul<Output = Self> + 'static + dispatch::Sealed
{
    /// Additive identity.
    const ZERO: Self;
    /// Multiplicative identity.
    const ONE: Self;

    /// `C = alpha * A·B + beta * C`; see [`sgemm`].
    ///
    /// # Panics
    ///
    /// If a slice is too short for its dims and strides, or if `C`'s strides overlap.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: &[Self],
        rsa: usize,
        csa: usize,
        b: &[Self],
        rsb: usize,
        csb: usize,
        beta: Self,
        c: &mut [Self],
        rsc: usize,
        csc: usize,
    ) {
        gemm_batched_impl(Threads::Pool, 1, m, k, n, alpha, a, 0, rsa, csa, b, 0, rsb, csb, beta, c, 0, rsc, csc);
    }

    /// [`GemmScalar::gemm`] on the calling thread only, whatever the size: for callers that run several
    /// products in parallel themselves (one per thread). Same values as [`GemmScalar::gemm`].
    ///
    /// # Panics
    ///
    /// As [`GemmScalar::gemm`].
    #[allow(clippy::too_many_arguments)]
    fn gemm_single_thread(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: &[Self],
        rsa: usize,
        csa: usize,
        b: &[Self],
        rsb: usize,
        csb: usize,
        beta: Self,
        c: &mut [Self],
        rsc: usize,
        csc: usize,
    ) {
        gemm_batched_impl(Threads::Caller, 1, m, k, n, alpha, a, 0, rsa, csa, b, 0, rsb, csb, beta, c, 0, rsc, csc);
    }

    /// Strided batched GEMM; see [`sgemm_batched`].
    ///
    /// # Panics
    ///
    /// If a slice is too short, if `batch_stride_c` is 0 with `batch > 1`, or if `C` matrices overlap.
    #[allow(clippy::too_many_arguments)]
    fn gemm_batched(
        batch: usize,
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: &[Self],
        batch_stride_a: usize,
        rsa: usize,
        csa: usize,
        b: &[Self],
        batch_stride_b: usize,
        rsb: usize,
        csb: usize,
        beta: Self,
        c: &mut [Self],
        batch_stride_c: usize,
        rsc: usize,
        csc: usize,
    ) {
        gemm_batched_impl(
            Threads::Pool,
            batch,
            m,
            k,
            n,
            alpha,
            a,
            batch_stride_a,
            rsa,
            csa,
            b,
            batch_stride_b,
            rsb,
            csb,
            beta,
            c,
            batch_stride_c,
            rsc,
            csc,
        );
    }
}

impl GemmScalar for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

impl GemmScalar for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

/// `C = alpha * A·B + beta * C` in `f32`.
///
/// `A` is `m x k` (`a[i*rsa + p*csa]`), `B` is `k x n` (`b[p*rsb + j*csb]`), `C` is `m x n`
/// (`c[i*rsc + j*csc]`); strides are in elements and may be anything (transposed operands are just swapped
/// strides). `beta == 0` never reads `C` (it may hold NaN). Multithreaded on the current rayon pool above
/// [`PAR_MNK`] ([`PAR_MNK_EXTERNAL`] from outside the pool); bitwise identical results for any number of
/// threads.
///
/// # Shapes
///
/// `a.len() > (m-1)*rsa + (k-1)*csa`, `b.len() > (k-1)*rsb + (n-1)*csb`, `c.len() > (m-1)*rsc + (n-1)*csc`
/// (for non-empty matrices).
///
/// # Panics
///
/// If a slice is too short for its dims and strides, or if `C`'s strides make two elements overlap.
///
/// # Example
///
/// ```
/// use tensorgrad_kernels::gemm::sgemm;
/// let a = [1.0, 2.0, 3.0, 4.0]; // 2x2 row-major
/// let b = [5.0, 6.0, 7.0, 8.0];
/// let mut c = [f32::NAN; 4];
/// sgemm(2, 2, 2, 1.0, &a, 2, 1, &b, 2, 1, 0.0, &mut c, 2, 1);
/// assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
/// // A^T · B: the transpose is just swapped strides.
/// sgemm(2, 2, 2, 1.0, &a, 1, 2, &b, 2, 1, 0.0, &mut c, 2, 1);
/// assert_eq!(c, [26.0, 30.0, 38.0, 44.0]);
/// ```
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    rsa: usize,
    csa: usize,
    b: &[f32],
    rsb: usize,
    csb: usize,
    beta: f32,
    c: &mut [f32],
    rsc: usize,
    csc: usize,
) {
    gemm_batched_impl(Threads::Pool, 1, m, k, n, alpha, a, 0, rsa, csa, b, 0, rsb, csb, beta, c, 0, rsc, csc);
}

/// `C = alpha * A·B + beta * C` in `f64`; same contract as [`sgemm`].
///
/// # Panics
///
/// If a slice is too short for its dims and strides, or if `C`'s strides make two elements overlap.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn dgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f64,
    a: &[f64],
    rsa: usize,
    csa: usize,
    b: &[f64],
    rsb: usize,
    csb: usize,
    beta: f64,
    c: &mut [f64],
    rsc: usize,
    csc: usize,
) {
    gemm_batched_impl(Threads::Pool, 1, m, k, n, alpha, a, 0, rsa, csa, b, 0, rsb, csb, beta, c, 0, rsc, csc);
}

/// Strided batched `f32` GEMM: for `i in 0..batch`, matrix `i` of `A` starts at `a[i * batch_stride_a]`
/// (likewise `B`, `C`) and `C_i = alpha * A_i·B_i + beta * C_i`, each as in [`sgemm`].
///
/// `batch_stride_a` or `batch_stride_b` may be 0 (one matrix broadcast over the batch); `batch_stride_c`
/// may not (with `batch > 1`). Small matrices are spread over threads one matrix per task; large ones use
/// the threaded single GEMM in turn. Bitwise identical results for any number of threads.
///
/// # Panics
///
/// If a slice is too short for the batch, dims and strides, or if two elements of `C` overlap.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn sgemm_batched(
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    batch_stride_a: usize,
    rsa: usize,
    csa: usize,
    b: &[f32],
    batch_stride_b: usize,
    rsb: usize,
    csb: usize,
    beta: f32,
    c: &mut [f32],
    batch_stride_c: usize,
    rsc: usize,
    csc: usize,
) {
    gemm_batched_impl(
        Threads::Pool,
        batch,
        m,
        k,
        n,
        alpha,
        a,
        batch_stride_a,
        rsa,
        csa,
        b,
        batch_stride_b,
        rsb,
        csb,
        beta,
        c,
        batch_stride_c,
        rsc,
        csc,
    );
}

/// Strided batched `f64` GEMM; same contract as [`sgemm_batched`].
///
/// # Panics
///
/// If a slice is too short for the batch, dims and strides, or if two elements of `C` overlap.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn dgemm_batched(
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    alpha: f64,
    a: &[f64],
    batch_stride_a: usize,
    rsa: usize,
    csa: usize,
    b: &[f64],
    batch_stride_b: usize,
    rsb: usize,
    csb: usize,
    beta: f64,
    c: &mut [f64],
    batch_stride_c: usize,
    rsc: usize,
    csc: usize,
) {
    gemm_batched_impl(
        Threads::Pool,
        batch,
        m,
        k,
        n,
        alpha,
        a,
        batch_stride_a,
        rsa,
        csa,
        b,
        batch_stride_b,
        rsb,
        csb,
        beta,
        c,
        batch_stride_c,
        rsc,
        csc,
    );
}
