//! Unary maps `out[i] = f(x[i])` and their fused backward helpers `dx[i] = dy[i]·f'(·)`.
//!
//! Forward (`Unary`): exp, ln, tanh, sigmoid, gelu_erf (`x·Φ(x)`), gelu_tanh, erf, relu, silu (`x·σ(x)`),
//! softplus (PyTorch: `x > 20 → x`, else `ln(1 + e^x)`), sqrt, rsqrt (`1/√x`, correctly rounded sqrt then
//! divide), abs, neg, square, recip.
//!
//! Backward (`UnaryBackward`), with `a` the saved tensor named in each variant:
//! - `Tanh` (a = y):    `dx = dy·(1 - y²)`
//! - `Sigmoid` (a = y): `dx = dy·y·(1 - y)`
//! - `GeluErf` (a = x): `dx = dy·(Φ(x) + x·φ(x))`
//! - `GeluTanh` (a = x): `dx = dy·(s + x·2s(1-s)·k(1 + 3c x²))`, `s = σ(2k(x + c x³))`
//! - `Relu` (a = x):    `dx = x ≤ 0 ? 0 : dy` (PyTorch's `threshold_backward`)
//! - `Silu` (a = x):    `dx = dy·s(1 + x(1 - s))`, `s = σ(x)`
//! - `Softplus` (a = x): `dx = x > 20 ? dy : dy·σ(x)`
//!
//! f32 runs 8 lanes at a time with `wide::f32x8`; the tail is padded into one vector and goes through the
//! same code, so every element's bits are independent of its position. f64 is scalar (std functions plus the
//! f64 erf in `math`).

use wide::f32x8;

use super::math::{self, *};

/// A unary elementwise operation (see the module docs for the exact definitions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unary {
    /// `e^x`.
    Exp,
    /// `ln x`.
    Ln,
    /// `tanh x`.
    Tanh,
    /// `1/(1 + e^{-x})`.
    Sigmoid,
    /// `x·Φ(x)` (exact GELU).
    GeluErf,
    /// `½x(1 + tanh(√(2/π)(x + 0.044715x³)))`.
    GeluTanh,
    /// `erf x`.
    Erf,
    /// `max(x, 0)` (NaN propagates).
    Relu,
    /// `x·σ(x)`.
    Silu,
    /// `ln(1 + e^x)`, `x` itself above 20.
    Softplus,
    /// `√x`.
    Sqrt,
    /// `1/√x`.
    Rsqrt,
    /// `|x|`.
    Abs,
    /// `-x`.
    Neg,
    /// `x²`.
    Square,
    /// `1/x`.
    Recip,
}

impl Unary {
    /// True for the ops that cost tens of flops per element (used for the threading threshold).
    pub fn is_transcendental(self) -> bool {
        !matches!(
            self,
            Unary::Relu | Unary::Abs | Unary::Neg | Unary::Square | Unary::Recip | Unary::Sqrt | Unary::Rsqrt
        )
    }
}

/// The fused backward of a unary op (see the module docs for what `a` is in each case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryBackward {
    /// `a = y = tanh x`: `dx = dy·(1 - y²)`.
    Tanh,
    /// `a = y = σ(x)`: `dx = dy·y(1 - y)`.
    Sigmoid,
    /// `a = x`: `dx = dy·gelu_erf'(x)`.
    GeluErf,
    /// `a = x`: `dx = dy·gelu_tanh'(x)`.
    GeluTanh,
    /// `a = x`: `dx = x ≤ 0 ? 0 : dy`.
    Relu,
    /// `a = x`: `dx = dy·silu'(x)`.
    Silu,
    /// `a = x`: `dx = dy·softplus'(x)`.
    Softplus,
}

/// Applies `f` to `x` in 8-lane blocks (tail padded) writing `out`.
#[inline(always)]
pub(crate) fn map8(x: &[f32], out: &mut [f32], f: impl Fn(f32x8) -> f32x8) {
    let mut xc = x.chunks_exact(8);
    let mut oc = out.chunks_exact_mut(8);
    for (xi, oi) in (&mut xc).zip(&mut oc) {
        let v = f32x8::from(<[f32; 8]>::try_from(xi).expect("chunk of 8"));
        oi.copy_from_slice(f(v).as_array());
    }
    let r = xc.remainder();
    if !r.is_empty() {
        let mut buf = [0.0f32; 8];
        buf[..r.len()].copy_from_slice(r);
        let y = f(f32x8::from(buf));
        let n = r.len();
        oc.into_remainder().copy_from_slice(&y.as_array()[..n]);
    }
}

/// Applies `f(a, b)` in 8-lane blocks (tail padded) writing `out`.
#[inline(always)]
pub(crate) fn zip8(a: &[f32], b: &[f32], out: &mut [f32], f: impl Fn(f32x8, f32x8) -> f32x8) {
    let mut ac = a.chunks_exact(8);
    let mut bc = b.chunks_exact(8);
    let mut oc = out.chunks_exact_mut(8);
    for ((ai, bi), oi) in (&mut ac).zip(&mut bc).zip(&mut oc) {
        let va = f32x8::from(<[f32; 8]>::try_from(ai).expect("chunk of 8"));
        let vb = f32x8::from(<[f32; 8]>::try_from(bi).expect("chunk of 8"));
        oi.copy_from_slice(f(va, vb).as_array());
    }
    let (ra, rb) = (ac.remainder(), bc.remainder());
    if !ra.is_empty() {
        let n = ra.len();
        let mut ba = [0.0f32; 8];
        let mut bb = [0.0f32; 8];
        ba[..n].copy_from_slice(ra);
        bb[..n].copy_from_slice(rb);
        let y = f(f32x8::from(ba), f32x8::from(bb));
        oc.into_remainder().copy_from_slice(&y.as_array()[..n]);
    }
}

/// Relu on 8 lanes: `x ≤ 0 → 0`, NaN stays NaN.
#[inline(always)]
fn relu8(x: f32x8) -> f32x8 {
    x.simd_le(f32x8::ZERO).select(f32x8::ZERO, x)
}

/// The f32 forward kernel (single thread, lengths checked by the caller).
pub(crate) fn unary_f32(op: Unary, x: &[f32], out: &mut [f32]) {
    let one = f32x8::ONE;
    match op {
        Unary::Exp => map8(x, out, exp8),
        Unary::Ln => map8(x, out, ln8),
        Unary::Tanh => map8(x, out, tanh8),
        Unary::Sigmoid => map8(x, out, sigmoid8),
        Unary::GeluErf => map8(x, out, gelu_erf8),
        Unary::GeluTanh => map8(x, out, gelu_tanh8),
        Unary::Erf => map8(x, out, erf8),
        Unary::Relu => map8(x, out, relu8),
        Unary::Silu => map8(x, out, |v| {
            let r = v.fast_max(f32x8::splat(-200.0)) * sigmoid8(v);
            v.is_nan().select(v, r)
        }),
        Unary::Softplus => map8(x, out, softplus8),
        Unary::Sqrt => map8(x, out, |v| v.sqrt()),
        Unary::Rsqrt => map8(x, out, |v| one / v.sqrt()),
        Unary::Abs => map8(x, out, |v| v.abs()),
        Unary::Neg => map8(x, out, |v| -v),
        Unary::Square => map8(x, out, |v| v * v),
        Unary::Recip => map8(x, out, |v| one / v),
    }
}

/// The f32 backward kernel.
pub(crate) fn unary_backward_f32(op: UnaryBackward, a: &[f32], dy: &[f32], dx: &mut [f32]) {
    let one = f32x8::ONE;
    match op {
        UnaryBackward::Tanh => zip8(a, dy, dx, |y, g| g * (one - y * y)),
        UnaryBackward::Sigmoid => zip8(a, dy, dx, |y, g| g * (y * (one - y))),
        UnaryBackward::GeluErf => zip8(a, dy, dx, |x, g| g * gelu_erf_grad8(x)),
        UnaryBackward::GeluTanh => zip8(a, dy, dx, |x, g| g * gelu_tanh_grad8(x)),
        UnaryBackward::Relu => zip8(a, dy, dx, |x, g| x.simd_le(f32x8::ZERO).select(f32x8::ZERO, g)),
        UnaryBackward::Silu => zip8(a, dy, dx, |x, g| {
            let s = sigmoid8(x);
            let xm = x.fast_max(f32x8::splat(-200.0));
            g * (s * (xm * (one - s) + one))
        }),
        UnaryBackward::Softplus => zip8(a, dy, dx, |x, g| {
            let s = g * sigmoid8(x);
            x.simd_gt(f32x8::splat(20.0)).select(g, s)
        }),
    }
}

/// One f64 forward element.
#[inline]
pub(crate) fn unary_scalar_f64(op: Unary, x: f64) -> f64 {
    match op {
        Unary::Exp => x.exp(),
        Unary::Ln => x.ln(),
        Unary::Tanh => x.tanh(),
        Unary::Sigmoid => math::sigmoid_f64(x),
        Unary::GeluErf => math::gelu_erf_f64(x),
        Unary::GeluTanh => math::gelu_tanh_f64(x),
        Unary::Erf => math::erf_f64(x),
        Unary::Relu => {
            if x <= 0.0 {
                0.0
            } else {
                x
            }
        }
        Unary::Silu => {
            if x == f64::NEG_INFINITY {
                -0.0
            } else {
                x * math::sigmoid_f64(x)
            }
        }
        Unary::Softplus => math::softplus_f64(x),
        Unary::Sqrt => x.sqrt(),
        Unary::Rsqrt => 1.0 / x.sqrt(),
        Unary::Abs => x.abs(),
        Unary::Neg => -x,
        Unary::Square => x * x,
        Unary::Recip => 1.0 / x,
    }
}

/// One f64 backward element.
#[inline]
pub(crate) fn unary_backward_scalar_f64(op: UnaryBackward, a: f64, g: f64) -> f64 {
    match op {
        UnaryBackward::Tanh => g * (1.0 - a * a),
        UnaryBackward::Sigmoid => g * (a * (1.0 - a)),
        UnaryBackward::GeluErf => g * math::gelu_erf_grad_f64(a),
        UnaryBackward::GeluTanh => g * math::gelu_tanh_grad_f64(a),
        UnaryBackward::Relu => {
            if a <= 0.0 {
                0.0
            } else {
                g
            }
        }
        UnaryBackward::Silu => {
            let s = math::sigmoid_f64(a);
            g * (s * (a.max(-800.0) * (1.0 - s) + 1.0))
        }
        UnaryBackward::Softplus => {
            if a > 20.0 {
                g
            } else {
                g * math::sigmoid_f64(a)
            }
        }
    }
}

/// The f64 forward kernel.
pub(crate) fn unary_f64(op: Unary, x: &[f64], out: &mut [f64]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = unary_scalar_f64(op, v);
    }
}

/// The f64 backward kernel.
pub(crate) fn unary_backward_f64(op: UnaryBackward, a: &[f64], dy: &[f64], dx: &mut [f64]) {
    for ((o, &av), &g) in dx.iter_mut().zip(a).zip(dy) {
        *o = unary_backward_scalar_f64(op, av, g);
    }
}
