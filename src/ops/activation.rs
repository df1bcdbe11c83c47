//! Activation functions.
//!
//! | op | forward | backward (dx) |
//! |---|---|---|
//! | relu | max(x, 0) | dy * [x > 0] |
//! | leaky_relu(s) | x if x > 0 else s x | dy * (1 if x > 0 else s) |
//! | elu(a) | x if x > 0 else a (e^x - 1) | dy * (1 if x > 0 else a e^x) |
//! | gelu (erf) | x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2 | dy * (Phi(x) + x phi(x)), phi(x) = e^(-x^2/2) / sqrt(2 pi) |
//! | gelu (tanh) | x (1 + tanh u) / 2, u = sqrt(2/pi) (x + 0.044715 x^3) | dy * ((1 + t)/2 + x (1 - t^2) u' / 2) |
//! | sigmoid | 1 / (1 + e^-x) | dy * y (1 - y) |
//! | tanh | tanh x | dy * (1 - y^2) |
//! | softplus(b, th) | ln(1 + e^(b x)) / b (x if b x > th) | dy * sigmoid(b x) (dy if b x > th) |
//! | silu | x sigmoid(x) | dy * s (1 + x (1 - s)), s = sigmoid(x) |
//!
//! Backwards take a fused elementwise path in a plain backward, and a composition of differentiable ops
//! under `create_graph` (so second derivatives are exact).

use super::fast::{self, UnaryKernel};
use super::unary::{map_float, output_for_backward, zip_float};
use crate::autograd::{is_grad_enabled, Backward};
use crate::tensor::Tensor;
use tensorgrad_kernels::elementwise::UnaryBackward as UnaryBackwardKernel;

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const GELU_C: f64 = 0.044715;
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// The two forms of GELU, as PyTorch's `approximate` argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GeluApprox {
    /// Exact: `x * Phi(x)` with the normal CDF via erf (PyTorch's default, `approximate='none'`).
    #[default]
    None,
    /// The tanh approximation (`approximate='tanh'`).
    Tanh,
}

fn sigmoid_f64(v: f64) -> f64 {
    if v >= 0.0 {
        1.0 / (1.0 + (-v).exp())
    } else {
        let e = v.exp();
        e / (1.0 + e)
    }
}

/// d gelu/dx = Phi(x) + x phi(x), evaluated as written (so -inf and +inf give NaN, as in PyTorch).
fn gelu_erf_grad(v: f64) -> f64 {
    0.5 * (1.0 + crate::tensor::dtype::erf_f64(v * std::f64::consts::FRAC_1_SQRT_2))
        + v * INV_SQRT_2PI * (-0.5 * v * v).exp()
}

/// d gelu_tanh/dx = (1 + t)/2 + x (1 - t^2) u'/2 with t = tanh(u), evaluated as written.
fn gelu_tanh_grad(v: f64) -> f64 {
    let t = (SQRT_2_OVER_PI * (v + GELU_C * v * v * v)).tanh();
    0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * v * v)
}

/// `d gelu/dx` at `x` written with tensor ops (recorded when grad mode is on, so it is differentiable):
/// what the backward uses under `create_graph`.
fn gelu_derivative(x: &Tensor, approximate: GeluApprox) -> Tensor {
    match approximate {
        GeluApprox::None => {
            let cdf = (1.0 + (x * std::f64::consts::FRAC_1_SQRT_2).erf()) * 0.5;
            let pdf: Tensor = (x * x * -0.5).exp() * INV_SQRT_2PI;
            cdf + x * &pdf
        }
        GeluApprox::Tanh => {
            let t = ((x + &(x * x * x * GELU_C)) * SQRT_2_OVER_PI).tanh();
            let du = (x * x * (3.0 * GELU_C) + 1.0) * SQRT_2_OVER_PI;
            (&t + 1.0) * 0.5 + x * &(1.0 - &(&t * &t)) * &du * 0.5
        }
    }
}

/// The plain (unrecorded) backward `dy * gelu'(x)` through the kernels' fused SIMD path (`x` and `dy` of
/// the same shape).
fn gelu_backward(x: &Tensor, dy: &Tensor, approximate: GeluApprox) -> Tensor {
    match approximate {
        GeluApprox::None => {
            fast::unary_backward("gelu", UnaryBackwardKernel::GeluErf, x, dy, |v, g| g * gelu_erf_grad(v))
        }
        GeluApprox::Tanh => {
            fast::unary_backward("gelu", UnaryBackwardKernel::GeluTanh, x, dy, |v, g| g * gelu_tanh_grad(v))
        }
    }
}

/// 1 where `pred(x)`, else 0 (a constant: no gradient flows through a mask).
fn mask(x: &Tensor, pred: impl Fn(f64) -> bool) -> Tensor {
    map_float(x, "mask", |v| if pred(v) { 1.0 } else { 0.0 })
}

impl Tensor {
    /// `max(x, 0)` elementwise.
    #[track_caller]
    pub fn relu(&self) -> Tensor {
        let _p = crate::profile::op_scope("relu");
        let y = fast::unary("relu", UnaryKernel::Relu, self);
        Tensor::from_op(y, &[self], || ActivationBackward { x: self.clone(), y: None, kind: Kind::LeakyRelu(0.0) })
    }

    /// `x` for positive `x`, `negative_slope * x` otherwise (PyTorch default slope 0.01).
    #[track_caller]
    pub fn leaky_relu(&self, negative_slope: f64) -> Tensor {
        let _p = crate::profile::op_scope("leaky_relu");
        let y = map_float(self, "leaky_relu", |v| if v > 0.0 { v } else { v * negative_slope });
        Tensor::from_op(y, &[self], || ActivationBackward {
            x: self.clone(),
            y: None,
            kind: Kind::LeakyRelu(negative_slope),
        })
    }

    /// `x` for positive `x`, `alpha * (e^x - 1)` otherwise (PyTorch default alpha 1).
    #[track_caller]
    pub fn elu(&self, alpha: f64) -> Tensor {
        let _p = crate::profile::op_scope("elu");
        let y = map_float(self, "elu", |v| if v > 0.0 { v } else { alpha * v.exp_m1() });
        Tensor::from_op(y, &[self], || ActivationBackward { x: self.clone(), y: None, kind: Kind::Elu(alpha) })
    }

    /// GELU, exact (erf) or tanh-approximated.
    #[track_caller]
    pub fn gelu(&self, approximate: GeluApprox) -> Tensor {
        let _p = crate::profile::op_scope("gelu");
        let y = match approximate {
            GeluApprox::None => fast::unary("gelu", UnaryKernel::GeluErf, self),
            GeluApprox::Tanh => fast::unary("gelu", UnaryKernel::GeluTanh, self),
        };
        Tensor::from_op(y, &[self], || ActivationBackward { x: self.clone(), y: None, kind: Kind::Gelu(approximate) })
    }

    /// `dy * gelu'(self)`, the gradient through a GELU at `self`, for fused ops that recompute GELU: with
    /// grad mode on it is written with tensor ops (differentiable, for `create_graph`), otherwise it is
    /// one pass of the kernels' fused backward.
    pub(crate) fn gelu_input_grad(&self, dy: &Tensor, approximate: GeluApprox) -> Tensor {
        if is_grad_enabled() {
            dy * &gelu_derivative(self, approximate)
        } else {
            gelu_backward(self, dy, approximate)
        }
    }

    /// The logistic function `1 / (1 + e^-x)`, computed without overflow.
    #[track_caller]
    pub fn sigmoid(&self) -> Tensor {
        let _p = crate::profile::op_scope("sigmoid");
        let y = fast::unary("sigmoid", UnaryKernel::Sigmoid, self);
        Tensor::from_op(y.clone(), &[self], || ActivationBackward {
            x: self.clone(),
            y: Some(y.detach()),
            kind: Kind::Sigmoid,
        })
    }

    /// Hyperbolic tangent elementwise.
    #[track_caller]
    pub fn tanh(&self) -> Tensor {
        let _p = crate::profile::op_scope("tanh");
        let y = fast::unary("tanh", UnaryKernel::Tanh, self);
        Tensor::from_op(y.clone(), &[self], || ActivationBackward {
            x: self.clone(),
            y: Some(y.detach()),
            kind: Kind::Tanh,
        })
    }

    /// `ln(1 + e^(beta x)) / beta`, linear where `beta x > threshold` (PyTorch defaults 1 and 20).
    #[track_caller]
    pub fn softplus(&self, beta: f64, threshold: f64) -> Tensor {
        let _p = crate::profile::op_scope("softplus");
        let y = if (beta, threshold) == (1.0, 20.0) {
            fast::unary("softplus", UnaryKernel::Softplus, self)
        } else {
            map_float(self, "softplus", |v| if v * beta > threshold { v } else { (v * beta).exp().ln_1p() / beta })
        };
        Tensor::from_op(y, &[self], || ActivationBackward {
            x: self.clone(),
            y: None,
            kind: Kind::Softplus(beta, threshold),
        })
    }

    /// SiLU (swish): `x * sigmoid(x)`.
    #[track_caller]
    pub fn silu(&self) -> Tensor {
        let _p = crate::profile::op_scope("silu");
        let y = fast::unary("silu", UnaryKernel::Silu, self);
        Tensor::from_op(y, &[self], || ActivationBackward { x: self.clone(), y: None, kind: Kind::Silu })
    }
}

#[derive(Clone, Copy)]
enum Kind {
    LeakyRelu(f64),
    Elu(f64),
    Gelu(GeluApprox),
    Sigmoid,
    Tanh,
    Softplus(f64, f64),
    Silu,
}

struct ActivationBackward {
    x: Tensor,
    y: Option<Tensor>,
    kind: Kind,
}

impl Backward for ActivationBackward {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::LeakyRelu(0.0) => "relu",
            Kind::LeakyRelu(_) => "leaky_relu",
            Kind::Elu(_) => "elu",
            Kind::Gelu(_) => "gelu",
            Kind::Sigmoid => "sigmoid",
            Kind::Tanh => "tanh",
            Kind::Softplus(..) => "softplus",
            Kind::Silu => "silu",
        }
    }

    fn backward(&self, dy: &Tensor, _: &[bool]) -> crate::autograd::Grads {
        let x = &self.x;
        let recording = is_grad_enabled() && x.requires_grad();
        let dx = match self.kind {
            // At NaN inputs PyTorch passes relu's gradient (it tests the NaN output `<= 0`) but gives leaky_relu
            // the negative slope (it tests the input `> 0`).
            Kind::LeakyRelu(0.0) if recording => {
                dy * &map_float(x, "relu", |v| if v > 0.0 || v.is_nan() { 1.0 } else { 0.0 })
            }
            Kind::LeakyRelu(0.0) => fast::unary_backward("relu", UnaryBackwardKernel::Relu, x, dy, |v, g| {
                if v > 0.0 || v.is_nan() {
                    g
                } else {
                    0.0
                }
            }),
            Kind::LeakyRelu(s) => dy * &map_float(x, "relu", |v| if v > 0.0 { 1.0 } else { s }),
            Kind::Sigmoid => {
                let y = output_for_backward(x, self.y.as_ref().unwrap(), |x| x.sigmoid());
                if recording {
                    dy * &(&y * &(1.0 - &y))
                } else {
                    fast::unary_backward("sigmoid", UnaryBackwardKernel::Sigmoid, &y, dy, |s, g| g * s * (1.0 - s))
                }
            }
            Kind::Tanh => {
                let y = output_for_backward(x, self.y.as_ref().unwrap(), |x| x.tanh());
                if recording {
                    dy * &(1.0 - &(&y * &y))
                } else {
                    fast::unary_backward("tanh", UnaryBackwardKernel::Tanh, &y, dy, |t, g| g * (1.0 - t * t))
                }
            }
            Kind::Elu(a) if recording => {
                let m = mask(x, |v| v > 0.0 || v.is_nan()); // NaN takes the linear branch, as in PyTorch
                dy * &(&m + &((1.0 - &m) * &x.exp() * a))
            }
            Kind::Elu(a) => zip_float("elu", dy, x, |g, v| g * if v <= 0.0 { a * v.exp() } else { 1.0 }),
            Kind::Gelu(approx) if recording => dy * &gelu_derivative(x, approx),
            Kind::Gelu(approx) => gelu_backward(x, dy, approx),
            Kind::Softplus(b, th) if recording => {
                let m = mask(x, |v| v * b > th);
                dy * &(&m + &((1.0 - &m) * &(x * b).sigmoid()))
            }
            Kind::Softplus(b, th) if (b, th) == (1.0, 20.0) => {
                fast::unary_backward("softplus", UnaryBackwardKernel::Softplus, x, dy, |v, g| {
                    if v > 20.0 {
                        g
                    } else {
                        g * sigmoid_f64(v)
                    }
                })
            }
            Kind::Softplus(b, th) => {
                zip_float("softplus", dy, x, |g, v| if v * b > th { g } else { g * sigmoid_f64(v * b) })
            }
            Kind::Silu if recording => {
                let s = x.sigmoid();
                dy * &(&s * &(1.0 + x * &(1.0 - &s)))
            }
            Kind::Silu => fast::unary_backward("silu", UnaryBackwardKernel::Silu, x, dy, |v, g| {
                let s = sigmoid_f64(v);
                g * s * (1.0 + v * (1.0 - s))
            }),
        };
        [Some(dx)].into()
    }
}
