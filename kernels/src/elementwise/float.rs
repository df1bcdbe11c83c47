//! The [`Float`] trait: the element types the kernels accept (`f32` with SIMD fast paths, `f64` scalar).
//!
//! Generic kernels (`elementwise::exp::<T>`, `reduce::sum::<T>`, `conv::conv2d_forward::<T>`, ...) take
//! `T: Float`. The trait carries the scalar arithmetic the generic code needs plus a few hidden hooks through
//! which `f32` routes the hot loops to its `wide::f32x8` implementations. It is sealed: only `f32` and `f64`
//! implement it.

use std::fmt::{Debug, Display};
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use super::{binary, unary, Binary, Unary, UnaryBackward};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point element type supported by the kernels: `f32` (SIMD) or `f64` (scalar, exact reference).
pub trait Float:
    Copy
    + Send
    + Sync
    + 'static
    + Debug
    + Display
    + Default
    + PartialEq
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + sealed::Sealed
{
    /// `0`.
    const ZERO: Self;
    /// `1`.
    const ONE: Self;
    /// `+inf`.
    const INFINITY: Self;
    /// `-inf`.
    const NEG_INFINITY: Self;
    /// A quiet NaN.
    const NAN: Self;
    /// Short type name for messages (`"f32"` / `"f64"`).
    const NAME: &'static str;
    /// Machine epsilon.
    const EPSILON: Self;

    /// Converts from `f64` (rounding for `f32`).
    fn from_f64(v: f64) -> Self;
    /// Converts to `f64` (exact).
    fn to_f64(self) -> f64;
    /// Converts a count (rounding for huge values).
    fn from_usize(n: usize) -> Self;
    /// Square root (correctly rounded).
    fn sqrt(self) -> Self;
    /// `e^x` (std, correctly rounded in practice).
    fn exp(self) -> Self;
    /// Natural logarithm (std).
    fn ln(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// `a·b + c` with a single rounding.
    fn mul_add(self, b: Self, c: Self) -> Self;
    /// True for NaN.
    fn is_nan(self) -> bool;
    /// `self^n` for an integer exponent.
    fn powi(self, n: i32) -> Self;
    /// `self^e`.
    fn powf(self, e: Self) -> Self;
    /// Hyperbolic tangent (std).
    fn tanh(self) -> Self;
    /// True unless infinite or NaN.
    fn is_finite(self) -> bool;
    /// Larger of two values; NaN propagates (like `torch.maximum`).
    fn maximum(self, other: Self) -> Self;
    /// Smaller of two values; NaN propagates (like `torch.minimum`).
    fn minimum(self, other: Self) -> Self;

    /// Hook: unary map over equal-length slices (lengths already checked, single thread).
    #[doc(hidden)]
    fn unary_slice(op: Unary, x: &[Self], out: &mut [Self]);
    /// Hook: fused backward of a unary op over equal-length slices.
    #[doc(hidden)]
    fn unary_backward_slice(op: UnaryBackward, a: &[Self], dy: &[Self], dx: &mut [Self]);
    /// Hook: `out = a op b` over equal-length slices.
    #[doc(hidden)]
    fn binary_slice(op: Binary, a: &[Self], b: &[Self], out: &mut [Self]);
    /// Hook: `out = a op s` (or `s op a` when `scalar_lhs`).
    #[doc(hidden)]
    fn binary_scalar_slice(op: Binary, a: &[Self], s: Self, scalar_lhs: bool, out: &mut [Self]);
    /// Hook: `y += alpha·x`.
    #[doc(hidden)]
    fn axpy_slice(alpha: Self, x: &[Self], y: &mut [Self]);
    /// Hook: one fused LSTM cell row (see [`super::lstm_cell_forward`]).
    #[doc(hidden)]
    fn lstm_cell_forward_slice(gates: &mut [Self], c_prev: &[Self], c: &mut [Self], tc: &mut [Self], h: &mut [Self]);
    /// Hook: sum of a slice with a fixed (length-determined) association order.
    #[doc(hidden)]
    fn sum_slice(x: &[Self]) -> Self;
    /// Hook: maximum of a slice, ignoring NaN ordering (callers check NaN separately); `-inf` when empty.
    #[doc(hidden)]
    fn max_slice_fast(x: &[Self]) -> Self;
    /// Hook: `out = exp(x - m)` and returns the sum of `out` (the softmax inner loop).
    #[doc(hidden)]
    fn exp_sub_sum(x: &[Self], m: Self, out: &mut [Self]) -> Self;
    /// Hook: returns `Σ exp(x - m)` without storing.
    #[doc(hidden)]
    fn exp_sub_sum_nostore(x: &[Self], m: Self) -> Self;

    /// Safe type dispatch: `Some(x)` when `Self` is `f32`.
    fn as_f32(x: &[Self]) -> Option<&[f32]>;
    /// Safe type dispatch: `Some(x)` when `Self` is `f32`.
    fn as_f32_mut(x: &mut [Self]) -> Option<&mut [f32]>;
    /// Safe type dispatch: `Some(x)` when `Self` is `f64`.
    fn as_f64(x: &[Self]) -> Option<&[f64]>;
    /// Safe type dispatch: `Some(x)` when `Self` is `f64`.
    fn as_f64_mut(x: &mut [Self]) -> Option<&mut [f64]>;
}

macro_rules! impl_float_common {
    ($t:ident) => {
        const ZERO: Self = 0.0;
        const ONE: Self = 1.0;
        const INFINITY: Self = $t::INFINITY;
        const NEG_INFINITY: Self = $t::NEG_INFINITY;
        const NAN: Self = $t::NAN;
        const NAME: &'static str = stringify!($t);
        const EPSILON: Self = $t::EPSILON;
        #[inline(always)]
        fn from_f64(v: f64) -> Self {
            v as $t
        }
        #[inline(always)]
        fn to_f64(self) -> f64 {
            self as f64
        }
        #[inline(always)]
        fn from_usize(n: usize) -> Self {
            n as $t
        }
        #[inline(always)]
        fn sqrt(self) -> Self {
            $t::sqrt(self)
        }
        #[inline(always)]
        fn exp(self) -> Self {
            $t::exp(self)
        }
        #[inline(always)]
        fn ln(self) -> Self {
            $t::ln(self)
        }
        #[inline(always)]
        fn abs(self) -> Self {
            $t::abs(self)
        }
        #[inline(always)]
        fn mul_add(self, b: Self, c: Self) -> Self {
            $t::mul_add(self, b, c)
        }
        #[inline(always)]
        fn is_nan(self) -> bool {
            $t::is_nan(self)
        }
        #[inline(always)]
        fn powi(self, n: i32) -> Self {
            $t::powi(self, n)
        }
        #[inline(always)]
        fn powf(self, e: Self) -> Self {
            $t::powf(self, e)
        }
        #[inline(always)]
        fn tanh(self) -> Self {
            $t::tanh(self)
        }
        #[inline(always)]
        fn is_finite(self) -> bool {
            $t::is_finite(self)
        }
        #[inline(always)]
        fn maximum(self, other: Self) -> Self {
            binary::apply_scalar(Binary::Maximum, self, other)
        }
        #[inline(always)]
        fn minimum(self, other: Self) -> Self {
            binary::apply_scalar(Binary::Minimum, self, other)
        }
    };
}

impl Float for f32 {
    impl_float_common!(f32);
    fn lstm_cell_forward_slice(gates: &mut [f32], c_prev: &[f32], c: &mut [f32], tc: &mut [f32], h: &mut [f32]) {
        super::recurrent::lstm_cell_forward_f32(gates, c_prev, c, tc, h)
    }
    fn unary_slice(op: Unary, x: &[f32], out: &mut [f32]) {
        unary::unary_f32(op, x, out)
    }
    fn unary_backward_slice(op: UnaryBackward, a: &[f32], dy: &[f32], dx: &mut [f32]) {
        unary::unary_backward_f32(op, a, dy, dx)
    }
    fn binary_slice(op: Binary, a: &[f32], b: &[f32], out: &mut [f32]) {
        binary::binary_f32(op, a, b, out)
    }
    fn binary_scalar_slice(op: Binary, a: &[f32], s: f32, scalar_lhs: bool, out: &mut [f32]) {
        binary::binary_scalar_f32(op, a, s, scalar_lhs, out)
    }
    fn axpy_slice(alpha: f32, x: &[f32], y: &mut [f32]) {
        binary::axpy_f32(alpha, x, y)
    }
    fn sum_slice(x: &[f32]) -> f32 {
        crate::reduce::sum_f32_block(x)
    }
    fn max_slice_fast(x: &[f32]) -> f32 {
        crate::reduce::max_f32_fast(x)
    }
    fn exp_sub_sum(x: &[f32], m: f32, out: &mut [f32]) -> f32 {
        crate::rows::exp_sub_sum_f32(x, m, Some(out))
    }
    fn exp_sub_sum_nostore(x: &[f32], m: f32) -> f32 {
        crate::rows::exp_sub_sum_f32(x, m, None)
    }
    fn as_f32(x: &[f32]) -> Option<&[f32]> {
        Some(x)
    }
    fn as_f32_mut(x: &mut [f32]) -> Option<&mut [f32]> {
        Some(x)
    }
    fn as_f64(_: &[f32]) -> Option<&[f64]> {
        None
    }
    fn as_f64_mut(_: &mut [f32]) -> Option<&mut [f64]> {
        None
    }
}

impl Float for f64 {
    impl_float_common!(f64);
    fn lstm_cell_forward_slice(gates: &mut [f64], c_prev: &[f64], c: &mut [f64], tc: &mut [f64], h: &mut [f64]) {
        super::recurrent::lstm_cell_forward_f64(gates, c_prev, c, tc, h)
    }
    fn unary_slice(op: Unary, x: &[f64], out: &mut [f64]) {
        unary::unary_f64(op, x, out)
    }
    fn unary_backward_slice(op: UnaryBackward, a: &[f64], dy: &[f64], dx: &mut [f64]) {
        unary::unary_backward_f64(op, a, dy, dx)
    }
    fn binary_slice(op: Binary, a: &[f64], b: &[f64], out: &mut [f64]) {
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = binary::apply_scalar(op, x, y);
        }
    }
    fn binary_scalar_slice(op: Binary, a: &[f64], s: f64, scalar_lhs: bool, out: &mut [f64]) {
        if scalar_lhs {
            for (o, &x) in out.iter_mut().zip(a) {
                *o = binary::apply_scalar(op, s, x);
            }
        } else {
            for (o, &x) in out.iter_mut().zip(a) {
                *o = binary::apply_scalar(op, x, s);
            }
        }
    }
    fn axpy_slice(alpha: f64, x: &[f64], y: &mut [f64]) {
        for (yi, &xi) in y.iter_mut().zip(x) {
            *yi = alpha.mul_add(xi, *yi);
        }
    }
    fn sum_slice(x: &[f64]) -> f64 {
        crate::reduce::sum_scalar_block(x)
    }
    fn max_slice_fast(x: &[f64]) -> f64 {
        x.iter().fold(f64::NEG_INFINITY, |m, &v| if v > m { v } else { m })
    }
    fn exp_sub_sum(x: &[f64], m: f64, out: &mut [f64]) -> f64 {
        let mut s = 0.0;
        for (o, &v) in out.iter_mut().zip(x) {
            *o = (v - m).exp();
            s += *o;
        }
        s
    }
    fn exp_sub_sum_nostore(x: &[f64], m: f64) -> f64 {
        x.iter().map(|&v| (v - m).exp()).sum()
    }
    fn as_f32(_: &[f64]) -> Option<&[f32]> {
        None
    }
    fn as_f32_mut(_: &mut [f64]) -> Option<&mut [f32]> {
        None
    }
    fn as_f64(x: &[f64]) -> Option<&[f64]> {
        Some(x)
    }
    fn as_f64_mut(x: &mut [f64]) -> Option<&mut [f64]> {
        Some(x)
    }
}
