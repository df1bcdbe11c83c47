//! Elementwise kernels: unary maps (fast exp/ln/tanh/sigmoid/gelu/erf, ...), their fused backward helpers,
//! binary maps (contiguous, scalar, broadcast-strided), `axpy`/`scale`/`add_assign`, and the fused optimizer
//! updates (Adam/AdamW, SGD with momentum).
//!
//! Every public function is generic over [`Float`] (`f32` uses `wide::f32x8`, `f64` is scalar), checks the
//! slice lengths once (panicking with a message naming the kernel) and runs on the rayon pool above a size
//! threshold. Work is split only into independent element ranges, so results are bitwise identical for any
//! thread count.
//!
//! ```
//! use tensorgrad_kernels::elementwise as ew;
//! let x = [0.0f32, 1.0, -2.0];
//! let mut y = [0.0f32; 3];
//! ew::exp(&x, &mut y);
//! assert!((y[1] - std::f32::consts::E).abs() < 1e-6);
//! ew::binary(ew::Binary::Mul, &x, &y.clone(), &mut y);
//! ```

mod binary;
mod float;
pub mod math;
mod optim;
mod recurrent;
mod unary;

pub use binary::{apply_scalar, Binary};
pub use float::Float;
pub use optim::{adam_step, sgd_momentum_step, AdamHyper, SgdHyper};
pub use recurrent::lstm_cell_forward;
pub use unary::{Unary, UnaryBackward};

use rayon::prelude::*;

/// Element count above which a transcendental map (exp, tanh, gelu, ...) uses the rayon pool.
///
/// Measured with `examples/par_thresholds.rs` (2 cores, best of interleaved batches), `exp` 2 threads vs 1
/// when called from outside the pool (a main thread, as the engine calls; entering the pool costs 5-9 µs):
/// 32K 0.68-0.78x, 64K 0.96-1.09x, 128K 1.25-1.37x. From a pool worker 2 threads pay from 16K (1.6x).
/// 64K is break-even for `exp` and a gain for the costlier maps (gelu, erf, log: 2-4x exp's time).
pub const PAR_THRESHOLD_TRANSCENDENTAL: usize = 1 << 16;
/// Element count above which a cheap map (add, mul, relu, axpy, ...) uses the rayon pool.
///
/// Measured as above, `add` from outside the pool: 128K 0.85-0.97x, 256K 1.05-1.25x, 512K 1.22-1.33x
/// (from a pool worker: 64K 1.1-1.5x).
pub const PAR_THRESHOLD_CHEAP: usize = 1 << 18;
/// Chunk size of the parallel split (a multiple of 8 lanes; the split never changes any element's bits).
pub(crate) const PAR_CHUNK: usize = 1 << 13;

#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn len_mismatch(kernel: &str, what: &str, got: usize, want: usize) -> ! {
    panic!("{kernel}: length mismatch: {what} has {got} elements, expected {want}")
}

#[inline]
#[track_caller]
pub(crate) fn check_len(kernel: &str, what: &str, got: usize, want: usize) {
    if got != want {
        len_mismatch(kernel, what, got, want);
    }
}

/// Runs `f(x_chunk, out_chunk)` over matching chunks, in parallel when `n ≥ threshold`.
pub(crate) fn par2<T: Float>(x: &[T], out: &mut [T], threshold: usize, f: impl Fn(&[T], &mut [T]) + Sync) {
    if out.len() < threshold || rayon::current_num_threads() == 1 {
        f(x, out)
    } else {
        out.par_chunks_mut(PAR_CHUNK).zip(x.par_chunks(PAR_CHUNK)).for_each(|(o, i)| f(i, o));
    }
}

/// Runs `f(a_chunk, b_chunk, out_chunk)` over matching chunks, in parallel when `n ≥ threshold`.
pub(crate) fn par3<T: Float>(
    a: &[T],
    b: &[T],
    out: &mut [T],
    threshold: usize,
    f: impl Fn(&[T], &[T], &mut [T]) + Sync,
) {
    if out.len() < threshold || rayon::current_num_threads() == 1 {
        f(a, b, out)
    } else {
        out.par_chunks_mut(PAR_CHUNK)
            .zip(a.par_chunks(PAR_CHUNK))
            .zip(b.par_chunks(PAR_CHUNK))
            .for_each(|((o, x), y)| f(x, y, o));
    }
}

/// `out[i] = op(x[i])`.
///
/// # Panics
/// If `x.len() != out.len()`.
#[track_caller]
pub fn unary<T: Float>(op: Unary, x: &[T], out: &mut [T]) {
    crate::cpu::warn_if_simd_unused();
    check_len("unary", "out", out.len(), x.len());
    let th = if op.is_transcendental() { PAR_THRESHOLD_TRANSCENDENTAL } else { PAR_THRESHOLD_CHEAP };
    par2(x, out, th, |x, o| T::unary_slice(op, x, o));
}

/// In-place `x[i] = op(x[i])` (copies through a small stack buffer per chunk).
pub fn unary_inplace<T: Float>(op: Unary, x: &mut [T]) {
    crate::cpu::warn_if_simd_unused();
    let th = if op.is_transcendental() { PAR_THRESHOLD_TRANSCENDENTAL } else { PAR_THRESHOLD_CHEAP };
    let run = |c: &mut [T]| {
        let mut buf = [T::ZERO; 256];
        for part in c.chunks_mut(256) {
            let n = part.len();
            buf[..n].copy_from_slice(part);
            T::unary_slice(op, &buf[..n], part);
        }
    };
    if x.len() < th || rayon::current_num_threads() == 1 {
        run(x)
    } else {
        x.par_chunks_mut(PAR_CHUNK).for_each(run);
    }
}

/// `dx[i] = dy[i]·f'(a[i])` for the fused backward `op` (see [`UnaryBackward`] for what `a` is).
///
/// # Panics
/// If the three lengths differ.
#[track_caller]
pub fn unary_backward<T: Float>(op: UnaryBackward, a: &[T], dy: &[T], dx: &mut [T]) {
    crate::cpu::warn_if_simd_unused();
    check_len("unary_backward", "dy", dy.len(), a.len());
    check_len("unary_backward", "dx", dx.len(), a.len());
    par3(a, dy, dx, PAR_THRESHOLD_TRANSCENDENTAL, |a, g, o| T::unary_backward_slice(op, a, g, o));
}

macro_rules! unary_fns {
    ($($name:ident => $op:ident, $doc:literal;)*) => {$(
        #[doc = $doc]
        ///
        /// # Panics
        /// If `x.len() != out.len()`.
        #[track_caller]
        pub fn $name<T: Float>(x: &[T], out: &mut [T]) {
            unary(Unary::$op, x, out)
        }
    )*};
}

unary_fns! {
    exp => Exp, "`out = e^x` (f32: max error 1 ulp; see the crate README for the measured bounds).";
    log => Ln, "`out = ln x` (f32: max error 1 ulp; `ln 0 = -inf`, `ln(x<0) = NaN`).";
    tanh => Tanh, "`out = tanh x` (f32: rational approximation, max error 5 ulp, no cancellation near 0).";
    sigmoid => Sigmoid, "`out = 1/(1+e^{-x})` (f32: max error 3 ulp, accurate in both tails).";
    gelu_erf => GeluErf, "`out = x·Φ(x)`, the exact GELU (PyTorch `approximate='none'`).";
    gelu_tanh => GeluTanh, "`out = ½x(1 + tanh(√(2/π)(x + 0.044715x³)))` (PyTorch `approximate='tanh'`).";
    erf => Erf, "`out = erf x`.";
    relu => Relu, "`out = max(x, 0)` (NaN propagates).";
    silu => Silu, "`out = x·σ(x)`.";
    softplus => Softplus, "`out = ln(1 + e^x)`, or `x` when `x > 20` (PyTorch's default threshold).";
    sqrt => Sqrt, "`out = √x`.";
    rsqrt => Rsqrt, "`out = 1/√x`.";
    abs => Abs, "`out = |x|`.";
    neg => Neg, "`out = -x`.";
    square => Square, "`out = x²`.";
    recip => Recip, "`out = 1/x`.";
}

macro_rules! backward_fns {
    ($($name:ident($a:ident) => $op:ident, $doc:literal;)*) => {$(
        #[doc = $doc]
        ///
        /// # Panics
        /// If the three lengths differ.
        #[track_caller]
        pub fn $name<T: Float>($a: &[T], dy: &[T], dx: &mut [T]) {
            unary_backward(UnaryBackward::$op, $a, dy, dx)
        }
    )*};
}

backward_fns! {
    tanh_backward(y) => Tanh, "`dx = dy·(1 - y²)` from the saved output `y = tanh x`.";
    sigmoid_backward(y) => Sigmoid, "`dx = dy·y·(1 - y)` from the saved output `y = σ(x)`.";
    gelu_erf_backward(x) => GeluErf, "`dx = dy·(Φ(x) + x·φ(x))` from the saved input.";
    gelu_tanh_backward(x) => GeluTanh, "`dx = dy·gelu_tanh'(x)` from the saved input.";
    relu_backward(x) => Relu, "`dx = x ≤ 0 ? 0 : dy` from the saved input (PyTorch's threshold_backward).";
    silu_backward(x) => Silu, "`dx = dy·σ(x)(1 + x(1 - σ(x)))` from the saved input.";
    softplus_backward(x) => Softplus, "`dx = x > 20 ? dy : dy·σ(x)` from the saved input.";
}

/// `out = a op b` elementwise on equal-length contiguous slices.
///
/// # Panics
/// If the lengths differ.
#[track_caller]
pub fn binary<T: Float>(op: Binary, a: &[T], b: &[T], out: &mut [T]) {
    crate::cpu::warn_if_simd_unused();
    check_len("binary", "b", b.len(), a.len());
    check_len("binary", "out", out.len(), a.len());
    par3(a, b, out, PAR_THRESHOLD_CHEAP, |a, b, o| T::binary_slice(op, a, b, o));
}

/// `out = a op s` for a scalar `s`.
///
/// # Panics
/// If `a.len() != out.len()`.
#[track_caller]
pub fn binary_scalar<T: Float>(op: Binary, a: &[T], s: T, out: &mut [T]) {
    crate::cpu::warn_if_simd_unused();
    check_len("binary_scalar", "out", out.len(), a.len());
    par2(a, out, PAR_THRESHOLD_CHEAP, |a, o| T::binary_scalar_slice(op, a, s, false, o));
}

/// `out = s op a` for a scalar `s` (e.g. `s - a`, `s / a`).
///
/// # Panics
/// If `a.len() != out.len()`.
#[track_caller]
pub fn scalar_binary<T: Float>(op: Binary, s: T, a: &[T], out: &mut [T]) {
    crate::cpu::warn_if_simd_unused();
    check_len("scalar_binary", "out", out.len(), a.len());
    par2(a, out, PAR_THRESHOLD_CHEAP, |a, o| T::binary_scalar_slice(op, a, s, true, o));
}

/// `out = a + b`.
#[track_caller]
pub fn add<T: Float>(a: &[T], b: &[T], out: &mut [T]) {
    binary(Binary::Add, a, b, out)
}
/// `out = a - b`.
#[track_caller]
pub fn sub<T: Float>(a: &[T], b: &[T], out: &mut [T]) {
    binary(Binary::Sub, a, b, out)
}
/// `out = a · b`.
#[track_caller]
pub fn mul<T: Float>(a: &[T], b: &[T], out: &mut [T]) {
    binary(Binary::Mul, a, b, out)
}
/// `out = a / b`.
#[track_caller]
pub fn div<T: Float>(a: &[T], b: &[T], out: &mut [T]) {
    binary(Binary::Div, a, b, out)
}
/// `out = max(a, b)` (NaN propagates).
#[track_caller]
pub fn maximum<T: Float>(a: &[T], b: &[T], out: &mut [T]) {
    binary(Binary::Maximum, a, b, out)
}
/// `out = min(a, b)` (NaN propagates).
#[track_caller]
pub fn minimum<T: Float>(a: &[T], b: &[T], out: &mut [T]) {
    binary(Binary::Minimum, a, b, out)
}

#[cold]
#[inline(never)]
#[track_caller]
fn strided_bad(msg: String) -> ! {
    panic!("binary_strided: {msg}")
}

/// Largest offset reachable with `shape`/`strides` plus one (0 for an empty shape product).
fn span(shape: &[usize], strides: &[usize]) -> usize {
    if shape.contains(&0) {
        return 0;
    }
    1 + shape.iter().zip(strides).map(|(&d, &s)| (d - 1) * s).sum::<usize>()
}

/// Broadcasting binary map: `out[idx] = a[Σ idx·a_strides] op b[Σ idx·b_strides]` for every index of `shape`,
/// with `out` contiguous (row-major). A stride of 0 broadcasts that operand along the dimension.
///
/// # Shapes
/// `shape`, `a_strides`, `b_strides` have equal length (any rank, 0 = one element); `out.len() = Π shape`.
///
/// # Panics
/// If the ranks differ, `out` has the wrong length, or a stride reaches past the end of `a` or `b`.
#[track_caller]
pub fn binary_strided<T: Float>(
    op: Binary,
    shape: &[usize],
    a: &[T],
    a_strides: &[usize],
    b: &[T],
    b_strides: &[usize],
    out: &mut [T],
) {
    crate::cpu::warn_if_simd_unused();
    if a_strides.len() != shape.len() || b_strides.len() != shape.len() {
        strided_bad(format!("rank mismatch: shape {shape:?}, a_strides {a_strides:?}, b_strides {b_strides:?}"));
    }
    let n: usize = shape.iter().product();
    check_len("binary_strided", "out", out.len(), n);
    if n == 0 {
        return;
    }
    if span(shape, a_strides) > a.len() {
        strided_bad(format!("a has {} elements but shape {shape:?} with strides {a_strides:?} needs more", a.len()));
    }
    if span(shape, b_strides) > b.len() {
        strided_bad(format!("b has {} elements but shape {shape:?} with strides {b_strides:?} needs more", b.len()));
    }
    let (s, sa, sb) = binary::collapse_dims(shape, a_strides, b_strides);
    if s.is_empty() {
        out[0] = apply_scalar(op, a[0], b[0]);
        return;
    }
    let d = s.len() - 1;
    let inner = s[d];
    let (ia, ib) = (sa[d], sb[d]);
    let row = |r: usize, o: &mut [T]| {
        // Decompose the row index over the outer dims (innermost outer dim varies fastest).
        let (mut oa, mut ob, mut rem) = (0usize, 0usize, r);
        for k in (0..d).rev() {
            let i = rem % s[k];
            rem /= s[k];
            oa += i * sa[k];
            ob += i * sb[k];
        }
        binary::strided_row(op, &a[oa..], ia, &b[ob..], ib, o);
    };
    if n < PAR_THRESHOLD_CHEAP || rayon::current_num_threads() == 1 {
        for (r, o) in out.chunks_mut(inner).enumerate() {
            row(r, o);
        }
    } else {
        // Tasks of whole rows, at least ~4K elements each (a row may be tiny after a transpose).
        let rows_per_task = (4096 / inner).max(1);
        out.par_chunks_mut(inner * rows_per_task).enumerate().for_each(|(t, block)| {
            for (k, o) in block.chunks_mut(inner).enumerate() {
                row(t * rows_per_task + k, o);
            }
        });
    }
}

/// Strided unary map / gather: `out[idx] = op(x[Σ idx·x_strides])` for every index of `shape`, `out`
/// contiguous (row-major); `op = None` copies (this is `contiguous()` for a permuted or expanded view).
/// Stride 0 broadcasts. Dimensions that are contiguous in `x` are merged first; inner rows with stride 1
/// go through the contiguous kernels.
///
/// # Shapes
/// `shape` and `x_strides` have equal length; `out.len() = Π shape`.
///
/// # Panics
/// If the ranks differ, `out` has the wrong length, or a stride reaches past the end of `x`.
#[track_caller]
pub fn unary_strided<T: Float>(op: Option<Unary>, shape: &[usize], x: &[T], x_strides: &[usize], out: &mut [T]) {
    crate::cpu::warn_if_simd_unused();
    if x_strides.len() != shape.len() {
        strided_bad(format!("rank mismatch: shape {shape:?}, x_strides {x_strides:?}"));
    }
    let n: usize = shape.iter().product();
    check_len("unary_strided", "out", out.len(), n);
    if n == 0 {
        return;
    }
    if span(shape, x_strides) > x.len() {
        strided_bad(format!("x has {} elements but shape {shape:?} with strides {x_strides:?} needs more", x.len()));
    }
    let (s, sx, _) = binary::collapse_dims(shape, x_strides, x_strides);
    let apply = |src: &[T], o: &mut [T]| match op {
        Some(u) => T::unary_slice(u, src, o),
        None => o.copy_from_slice(src),
    };
    if s.is_empty() {
        apply(&x[..1], &mut out[..1]);
        return;
    }
    let d = s.len() - 1;
    let (inner, ix) = (s[d], sx[d]);
    let row = |r: usize, o: &mut [T]| {
        let (mut off, mut rem) = (0usize, r);
        for k in (0..d).rev() {
            off += (rem % s[k]) * sx[k];
            rem /= s[k];
        }
        if ix == 1 {
            apply(&x[off..off + inner], o);
        } else {
            // Gather through a small buffer, then map.
            let mut buf = [T::ZERO; 256];
            for (c, oc) in o.chunks_mut(256).enumerate() {
                let base = off + c * 256 * ix;
                for (j, b) in buf[..oc.len()].iter_mut().enumerate() {
                    *b = x[base + j * ix];
                }
                apply(&buf[..oc.len()], oc);
            }
        }
    };
    let th = match op {
        Some(u) if u.is_transcendental() => PAR_THRESHOLD_TRANSCENDENTAL,
        _ => PAR_THRESHOLD_CHEAP,
    };
    if n < th || rayon::current_num_threads() == 1 {
        for (r, o) in out.chunks_mut(inner).enumerate() {
            row(r, o);
        }
    } else {
        let rows_per_task = (4096 / inner).max(1);
        out.par_chunks_mut(inner * rows_per_task).enumerate().for_each(|(t, block)| {
            for (k, o) in block.chunks_mut(inner).enumerate() {
                row(t * rows_per_task + k, o);
            }
        });
    }
}

/// Strided copy into a contiguous `out` (see [`unary_strided`] with `op = None`).
///
/// # Panics
/// As [`unary_strided`].
#[track_caller]
pub fn copy_strided<T: Float>(shape: &[usize], x: &[T], x_strides: &[usize], out: &mut [T]) {
    unary_strided(None, shape, x, x_strides, out)
}

/// `y += alpha·x` (f32: one FMA per element).
///
/// # Panics
/// If the lengths differ.
#[track_caller]
pub fn axpy<T: Float>(alpha: T, x: &[T], y: &mut [T]) {
    crate::cpu::warn_if_simd_unused();
    check_len("axpy", "y", y.len(), x.len());
    par2(x, y, PAR_THRESHOLD_CHEAP, |x, y| T::axpy_slice(alpha, x, y));
}

/// `x *= s` in place.
pub fn scale<T: Float>(x: &mut [T], s: T) {
    unary_inplace_with(x, |c| {
        for v in c {
            *v *= s;
        }
    });
}

/// `y += x` in place.
///
/// # Panics
/// If the lengths differ.
#[track_caller]
pub fn add_assign<T: Float>(y: &mut [T], x: &[T]) {
    check_len("add_assign", "x", x.len(), y.len());
    par2(x, y, PAR_THRESHOLD_CHEAP, |x, y| {
        for (a, &b) in y.iter_mut().zip(x) {
            *a += b;
        }
    });
}

fn unary_inplace_with<T: Float>(x: &mut [T], f: impl Fn(&mut [T]) + Sync + Send) {
    if x.len() < PAR_THRESHOLD_CHEAP || rayon::current_num_threads() == 1 {
        f(x)
    } else {
        x.par_chunks_mut(PAR_CHUNK).for_each(f);
    }
}
