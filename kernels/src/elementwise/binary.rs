//! Binary maps `out = a op b` (contiguous, scalar, and broadcast-strided) plus `axpy`.
//!
//! `op ∈ {add, sub, mul, div, maximum, minimum}`; `maximum`/`minimum` propagate NaN like
//! `torch.maximum`/`torch.minimum` (if either input is NaN the result is NaN).
//!
//! The strided form walks an N-d index over `shape` with per-operand element strides (stride 0 broadcasts)
//! and writes a contiguous `out`. Before walking, size-1 dimensions are dropped and adjacent dimensions that
//! are contiguous for both operands are merged, so `[B, C, H, W] + [1, C, 1, 1]` runs as `B·C` inner loops
//! of `H·W` elements against a broadcast scalar. The innermost loop dispatches to the contiguous kernel when
//! both inner strides are 1, to the scalar kernel when one is 0, and to a plain strided loop otherwise.

use wide::f32x8;

use super::unary::zip8;
use super::Float;

/// A binary elementwise operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Binary {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a · b`.
    Mul,
    /// `a / b`.
    Div,
    /// `max(a, b)`, NaN if either is NaN.
    Maximum,
    /// `min(a, b)`, NaN if either is NaN.
    Minimum,
}

/// Applies `op` to two scalars (the reference semantics for every kernel here).
#[inline(always)]
pub fn apply_scalar<T: Float>(op: Binary, a: T, b: T) -> T {
    match op {
        Binary::Add => a + b,
        Binary::Sub => a - b,
        Binary::Mul => a * b,
        Binary::Div => a / b,
        Binary::Maximum => {
            if a.is_nan() || b.is_nan() {
                T::NAN
            } else if a > b {
                a
            } else {
                b
            }
        }
        Binary::Minimum => {
            if a.is_nan() || b.is_nan() {
                T::NAN
            } else if a < b {
                a
            } else {
                b
            }
        }
    }
}

#[inline(always)]
fn max8(a: f32x8, b: f32x8) -> f32x8 {
    // _mm256_max_ps returns its second operand when either is NaN: so b's NaN survives; restore a's.
    let m = a.fast_max(b);
    a.is_nan().select(a, m)
}

#[inline(always)]
fn min8(a: f32x8, b: f32x8) -> f32x8 {
    let m = a.fast_min(b);
    a.is_nan().select(a, m)
}

/// f32 contiguous kernel.
pub(crate) fn binary_f32(op: Binary, a: &[f32], b: &[f32], out: &mut [f32]) {
    // The four arithmetic ops are plain loops: LLVM vectorizes and unrolls them (faster than one f32x8
    // per iteration here), with the same IEEE results.
    fn plain(a: &[f32], b: &[f32], out: &mut [f32], f: impl Fn(f32, f32) -> f32) {
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = f(x, y);
        }
    }
    match op {
        Binary::Add => plain(a, b, out, |x, y| x + y),
        Binary::Sub => plain(a, b, out, |x, y| x - y),
        Binary::Mul => plain(a, b, out, |x, y| x * y),
        Binary::Div => plain(a, b, out, |x, y| x / y),
        Binary::Maximum => zip8(a, b, out, max8),
        Binary::Minimum => zip8(a, b, out, min8),
    }
}

/// f32 scalar-operand kernel: `a op s`, or `s op a` when `scalar_lhs`.
pub(crate) fn binary_scalar_f32(op: Binary, a: &[f32], s: f32, scalar_lhs: bool, out: &mut [f32]) {
    let v = f32x8::splat(s);
    macro_rules! go {
        ($f:expr) => {
            if scalar_lhs {
                super::unary::map8(a, out, |x| $f(v, x))
            } else {
                super::unary::map8(a, out, |x| $f(x, v))
            }
        };
    }
    match op {
        Binary::Add => go!(|x: f32x8, y: f32x8| x + y),
        Binary::Sub => go!(|x: f32x8, y: f32x8| x - y),
        Binary::Mul => go!(|x: f32x8, y: f32x8| x * y),
        Binary::Div => go!(|x: f32x8, y: f32x8| x / y),
        Binary::Maximum => go!(max8),
        Binary::Minimum => go!(min8),
    }
}

/// f32 `y += alpha·x` with FMA.
pub(crate) fn axpy_f32(alpha: f32, x: &[f32], y: &mut [f32]) {
    let va = f32x8::splat(alpha);
    let mut xc = x.chunks_exact(8);
    let mut yc = y.chunks_exact_mut(8);
    for (xi, yi) in (&mut xc).zip(&mut yc) {
        let vx = f32x8::from(<[f32; 8]>::try_from(xi).expect("chunk of 8"));
        let vy = f32x8::from(<[f32; 8]>::try_from(&*yi).expect("chunk of 8"));
        yi.copy_from_slice(va.mul_add(vx, vy).as_array());
    }
    for (yi, &xi) in yc.into_remainder().iter_mut().zip(xc.remainder()) {
        *yi = alpha.mul_add(xi, *yi);
    }
}

/// Drops size-1 dims and merges dims that are contiguous for both operands. Returns `(shape, sa, sb)`,
/// innermost last; an empty shape means a single element.
pub(crate) fn collapse_dims(shape: &[usize], sa: &[usize], sb: &[usize]) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let mut s: Vec<usize> = Vec::with_capacity(shape.len());
    let mut a: Vec<usize> = Vec::with_capacity(shape.len());
    let mut b: Vec<usize> = Vec::with_capacity(shape.len());
    for d in 0..shape.len() {
        if shape[d] == 1 {
            continue;
        }
        if let (Some(&ls), Some(&la), Some(&lb)) = (s.last(), a.last(), b.last()) {
            // Outer dim (last pushed) of size ls with strides la, lb; merge when it steps exactly over this one.
            if la == sa[d] * shape[d] && lb == sb[d] * shape[d] {
                let n = s.len();
                s[n - 1] = ls * shape[d];
                a[n - 1] = sa[d];
                b[n - 1] = sb[d];
                continue;
            }
        }
        s.push(shape[d]);
        a.push(sa[d]);
        b.push(sb[d]);
    }
    (s, a, b)
}

/// One innermost row of the strided kernel.
#[inline]
pub(crate) fn strided_row<T: Float>(op: Binary, a: &[T], sa: usize, b: &[T], sb: usize, out: &mut [T]) {
    let n = out.len();
    match (sa, sb) {
        (1, 1) => T::binary_slice(op, &a[..n], &b[..n], out),
        (1, 0) => T::binary_scalar_slice(op, &a[..n], b[0], false, out),
        (0, 1) => T::binary_scalar_slice(op, &b[..n], a[0], true, out),
        _ => {
            for (i, o) in out.iter_mut().enumerate() {
                *o = apply_scalar(op, a[i * sa], b[i * sb]);
            }
        }
    }
}
