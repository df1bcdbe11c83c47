//! Elementwise math ops.
//!
//! | op | forward | backward (dx) |
//! |---|---|---|
//! | neg | -x | -dy |
//! | exp | e^x | dy * y |
//! | log | ln x | dy / x |
//! | sqrt | x^(1/2) | dy * 0.5 / y |
//! | rsqrt | x^(-1/2) | dy * -0.5 * y^3 |
//! | abs | abs(x) | dy * sign(x) |
//! | sin / cos | sin x / cos x | dy * cos x / -dy * sin x |
//! | powf(p) | x^p | dy * p * x^(p-1) |
//! | clamp(lo, hi) | min(max(x, lo), hi) | dy where lo < x < hi, else 0 (0 at the bounds, like relu at 0) |
//! | erf | erf x | dy * 2/sqrt(pi) * e^(-x^2) |
//!
//! Ops whose backward uses the output `y` save it; under `create_graph` they recompute it from `x` with a
//! graph, so second derivatives see the dependence of `y` on `x`.

use super::fast::{self, UnaryKernel};
use super::map;
use crate::autograd::{is_grad_enabled, Backward};
use crate::tensor::{Element, Tensor};

/// `f` applied elementwise in f64 precision (exact for f64; correctly rounded from f64 for f32).
#[track_caller]
pub(crate) fn map_float(x: &Tensor, op: &str, f: impl Fn(f64) -> f64) -> Tensor {
    crate::dispatch_float!(x.dtype(), op, T => map::<T, T>(x, |v| T::from_f64(f(v.to_f64()))))
}

/// `f(a, b)` elementwise (with broadcasting) in f64 precision.
#[track_caller]
pub(crate) fn zip_float(op: &str, a: &Tensor, b: &Tensor, f: impl Fn(f64, f64) -> f64) -> Tensor {
    crate::dispatch_float!(a.dtype(), op, T => super::zip_map::<T, T>(op, a, b, |p, q| T::from_f64(f(p.to_f64(), q.to_f64()))))
}

/// The saved output `y`, or `recompute(x)` with a graph when the backward itself is being recorded.
pub(crate) fn output_for_backward(x: &Tensor, y: &Tensor, recompute: impl FnOnce(&Tensor) -> Tensor) -> Tensor {
    if is_grad_enabled() && x.requires_grad() {
        recompute(x)
    } else {
        y.clone()
    }
}

/// Declares a one-input op whose backward is `|x, y, dy| -> dx` written with tensor ops.
macro_rules! unary_op {
    ($(#[$doc:meta])* $method:ident, $Backward:ident, $name:literal, $kernel:expr, |$v:ident| $value:expr, |$x:ident, $y:ident, $dy:ident| $grad:expr) => {
        impl Tensor {
            $(#[$doc])*
            #[track_caller]
            pub fn $method(&self) -> Tensor {
                let _p = crate::profile::op_scope(stringify!($method));
                let y = match $kernel {
                    Some(kernel) => fast::unary($name, kernel, self),
                    None => map_float(self, $name, |$v| $value),
                };
                Tensor::from_op(y.clone(), &[self], || $Backward { x: self.clone(), y: y.detach() })
            }
        }

        struct $Backward {
            x: Tensor,
            y: Tensor,
        }

        impl Backward for $Backward {
            fn name(&self) -> &'static str {
                $name
            }
            #[allow(unused_variables)]
            fn backward(&self, $dy: &Tensor, _: &[bool]) -> crate::autograd::Grads {
                let $x = &self.x;
                let $y = &output_for_backward(&self.x, &self.y, |x| x.$method());
                [Some($grad)].into()
            }
        }
    };
}

unary_op!(
    /// `-x` elementwise.
    neg, NegBackward, "neg", Some(UnaryKernel::Neg), |v| -v, |x, y, dy| -dy
);
unary_op!(
    /// `e^x` elementwise.
    exp, ExpBackward, "exp", Some(UnaryKernel::Exp), |v| v.exp(), |x, y, dy| dy * y
);
unary_op!(
    /// Natural logarithm elementwise.
    log, LogBackward, "log", Some(UnaryKernel::Ln), |v| v.ln(), |x, y, dy| dy / x
);
unary_op!(
    /// Square root elementwise.
    sqrt, SqrtBackward, "sqrt", Some(UnaryKernel::Sqrt), |v| v.sqrt(), |x, y, dy| dy * 0.5 / y
);
unary_op!(
    /// `1 / sqrt(x)` elementwise.
    rsqrt, RsqrtBackward, "rsqrt", Some(UnaryKernel::Rsqrt), |v| 1.0 / v.sqrt(), |x, y, dy| dy * -0.5 * &(y * y) * y
);
unary_op!(
    /// Absolute value elementwise (gradient `sign(x)`, 0 at 0).
    abs, AbsBackward, "abs", Some(UnaryKernel::Abs), |v| v.abs(),
    |x, y, dy| dy * &map_float(x, "abs", |v| if v > 0.0 { 1.0 } else if v < 0.0 { -1.0 } else { 0.0 }) // 0 at 0 and NaN
);
unary_op!(
    /// Sine elementwise.
    sin, SinBackward, "sin", None, |v| v.sin(), |x, y, dy| dy * &x.cos()
);
unary_op!(
    /// Cosine elementwise.
    cos, CosBackward, "cos", None, |v| v.cos(), |x, y, dy| -(dy * &x.sin())
);
unary_op!(
    /// The error function elementwise.
    erf, ErfBackward, "erf", Some(UnaryKernel::Erf), |v| crate::tensor::dtype::erf_f64(v),
    |x, y, dy| dy * &(x * x).neg().exp() * std::f64::consts::FRAC_2_SQRT_PI
);

impl Tensor {
    /// `-1`, `0` or `1` by the sign of each element (no gradient flows through it).
    pub fn sign(&self) -> Tensor {
        let _p = crate::profile::op_scope("sign");
        map_float(self, "sign", |v| {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                v
            }
        })
    }

    /// `x^p` elementwise for a scalar exponent.
    #[track_caller]
    pub fn powf(&self, p: f64) -> Tensor {
        let _p = crate::profile::op_scope("powf");
        let y = map_float(self, "powf", |v| v.powf(p));
        Tensor::from_op(y, &[self], || PowfBackward { x: self.clone(), p })
    }

    /// Clamps each element into `[min, max]` (either bound optional). The gradient passes strictly inside,
    /// `min < x < max`, and is 0 at the bounds, as in PyTorch 2.x (consistent with `relu` at 0).
    #[track_caller]
    pub fn clamp(&self, min: Option<f64>, max: Option<f64>) -> Tensor {
        let _p = crate::profile::op_scope("clamp");
        let (lo, hi) = (min.unwrap_or(f64::NEG_INFINITY), max.unwrap_or(f64::INFINITY));
        let y = map_float(self, "clamp", |v| if v.is_nan() { v } else { v.max(lo).min(hi) });
        Tensor::from_op(y, &[self], || ClampBackward { x: self.clone(), lo, hi })
    }
}

struct PowfBackward {
    x: Tensor,
    p: f64,
}
impl Backward for PowfBackward {
    fn name(&self) -> &'static str {
        "powf"
    }
    fn backward(&self, dy: &Tensor, _: &[bool]) -> crate::autograd::Grads {
        if self.p == 0.0 {
            return [Some(dy.zeros_like())].into();
        }
        [Some(dy * &self.x.powf(self.p - 1.0) * self.p)].into()
    }
}

struct ClampBackward {
    x: Tensor,
    lo: f64,
    hi: f64,
}
impl Backward for ClampBackward {
    fn name(&self) -> &'static str {
        "clamp"
    }
    fn backward(&self, dy: &Tensor, _: &[bool]) -> crate::autograd::Grads {
        let (lo, hi) = (self.lo, self.hi);
        let inside = map_float(&self.x, "clamp", |v| if v > lo && v < hi { 1.0 } else { 0.0 });
        [Some(dy * &inside)].into()
    }
}
