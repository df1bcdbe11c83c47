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

use super::unary::{map_float, output_for_backward, zip_float};
use crate::autograd::{is_grad_enabled, Backward};
use crate::tensor::Tensor;

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

fn gelu_tanh_f64(v: f64) -> f64 {
    0.5 * v * (1.0 + (SQRT_2_OVER_PI * (v + GELU_C * v * v * v)).tanh())
}

fn gelu_tanh_grad_f64(v: f64) -> f64 {
    let t = (SQRT_2_OVER_PI * (v + GELU_C * v * v * v)).tanh();
    0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * v * v)
}

fn gelu_erf_grad_f64(v: f64) -> f64 {
    0.5 * (1.0 + crate::tensor::dtype::erf_f64(v * std::f64::consts::FRAC_1_SQRT_2))
        + v * INV_SQRT_2PI * (-0.5 * v * v).exp()
}

/// 1 where `pred(x)`, else 0 (a constant: no gradient flows through a mask).
fn mask(x: &Tensor, pred: impl Fn(f64) -> bool) -> Tensor {
    map_float(x, "mask", |v| if pred(v) { 1.0 } else { 0.0 })
}

impl Tensor {
    /// `max(x, 0)` elementwise.
    #[track_caller]
    pub fn relu(&self) -> Tensor {
        let y = map_float(self, "relu", |v| if v > 0.0 || v.is_nan() { v } else { 0.0 });
        Tensor::from_op(y, &[self], || ActivationBackward { x: self.clone(), y: None, kind: Kind::LeakyRelu(0.0) })
    }

    /// `x` for positive `x`, `negative_slope * x` otherwise (PyTorch default slope 0.01).
    #[track_caller]
    pub fn leaky_relu(&self, negative_slope: f64) -> Tensor {
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
        let y = map_float(self, "elu", |v| if v > 0.0 { v } else { alpha * v.exp_m1() });
        Tensor::from_op(y, &[self], || ActivationBackward { x: self.clone(), y: None, kind: Kind::Elu(alpha) })
    }

    /// GELU, exact (erf) or tanh-approximated.
    #[track_caller]
    pub fn gelu(&self, approximate: GeluApprox) -> Tensor {
        let y = match approximate {
            GeluApprox::None => map_float(self, "gelu", |v| {
                0.5 * v * (1.0 + crate::tensor::dtype::erf_f64(v * std::f64::consts::FRAC_1_SQRT_2))
            }),
            GeluApprox::Tanh => map_float(self, "gelu", gelu_tanh_f64),
        };
        Tensor::from_op(y, &[self], || ActivationBackward { x: self.clone(), y: None, kind: Kind::Gelu(approximate) })
    }

    /// The logistic function `1 / (1 + e^-x)`, computed without overflow.
    #[track_caller]
    pub fn sigmoid(&self) -> Tensor {
        let y = map_float(self, "sigmoid", sigmoid_f64);
        Tensor::from_op(y.clone(), &[self], || ActivationBackward {
            x: self.clone(),
            y: Some(y.detach()),
            kind: Kind::Sigmoid,
        })
    }

    /// Hyperbolic tangent elementwise.
    #[track_caller]
    pub fn tanh(&self) -> Tensor {
        let y = map_float(self, "tanh", f64::tanh);
        Tensor::from_op(y.clone(), &[self], || ActivationBackward {
            x: self.clone(),
            y: Some(y.detach()),
            kind: Kind::Tanh,
        })
    }

    /// `ln(1 + e^(beta x)) / beta`, linear where `beta x > threshold` (PyTorch defaults 1 and 20).
    #[track_caller]
    pub fn softplus(&self, beta: f64, threshold: f64) -> Tensor {
        let y = map_float(self, "softplus", |v| if v * beta > threshold { v } else { (v * beta).exp().ln_1p() / beta });
        Tensor::from_op(y, &[self], || ActivationBackward {
            x: self.clone(),
            y: None,
            kind: Kind::Softplus(beta, threshold),
        })
    }

    /// SiLU (swish): `x * sigmoid(x)`.
    #[track_caller]
    pub fn silu(&self) -> Tensor {
        let y = map_float(self, "silu", |v| v * sigmoid_f64(v));
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

    fn backward(&self, dy: &Tensor, _: &[bool]) -> Vec<Option<Tensor>> {
        let x = &self.x;
        let recording = is_grad_enabled() && x.requires_grad();
        let dx = match self.kind {
            // At NaN inputs PyTorch passes relu's gradient (it tests the NaN output `<= 0`) but gives leaky_relu
            // the negative slope (it tests the input `> 0`).
            Kind::LeakyRelu(0.0) => dy * &map_float(x, "relu", |v| if v > 0.0 || v.is_nan() { 1.0 } else { 0.0 }),
            Kind::LeakyRelu(s) => dy * &map_float(x, "relu", |v| if v > 0.0 { 1.0 } else { s }),
            Kind::Sigmoid => {
                let y = output_for_backward(x, self.y.as_ref().unwrap(), |x| x.sigmoid());
                if recording {
                    dy * &(&y * &(1.0 - &y))
                } else {
                    zip_float("sigmoid", dy, &y, |g, s| g * s * (1.0 - s))
                }
            }
            Kind::Tanh => {
                let y = output_for_backward(x, self.y.as_ref().unwrap(), |x| x.tanh());
                if recording {
                    dy * &(1.0 - &(&y * &y))
                } else {
                    zip_float("tanh", dy, &y, |g, t| g * (1.0 - t * t))
                }
            }
            Kind::Elu(a) if recording => {
                let m = mask(x, |v| v > 0.0 || v.is_nan()); // NaN takes the linear branch, as in PyTorch
                dy * &(&m + &((1.0 - &m) * &x.exp() * a))
            }
            Kind::Elu(a) => zip_float("elu", dy, x, |g, v| g * if v <= 0.0 { a * v.exp() } else { 1.0 }),
            Kind::Gelu(GeluApprox::None) if recording => {
                let cdf = (1.0 + (x * std::f64::consts::FRAC_1_SQRT_2).erf()) * 0.5;
                let pdf: Tensor = (x * x * -0.5).exp() * INV_SQRT_2PI;
                dy * &(cdf + x * &pdf)
            }
            Kind::Gelu(GeluApprox::None) => zip_float("gelu", dy, x, |g, v| g * gelu_erf_grad_f64(v)),
            Kind::Gelu(GeluApprox::Tanh) if recording => {
                let t = ((x + &(x * x * x * GELU_C)) * SQRT_2_OVER_PI).tanh();
                let du = (x * x * (3.0 * GELU_C) + 1.0) * SQRT_2_OVER_PI;
                dy * &((&t + 1.0) * 0.5 + x * &(1.0 - &(&t * &t)) * &du * 0.5)
            }
            Kind::Gelu(GeluApprox::Tanh) => zip_float("gelu", dy, x, |g, v| g * gelu_tanh_grad_f64(v)),
            Kind::Softplus(b, th) if recording => {
                let m = mask(x, |v| v * b > th);
                dy * &(&m + &((1.0 - &m) * &(x * b).sigmoid()))
            }
            Kind::Softplus(b, th) => {
                zip_float("softplus", dy, x, |g, v| if v * b > th { g } else { g * sigmoid_f64(v * b) })
            }
            Kind::Silu if recording => {
                let s = x.sigmoid();
                dy * &(&s * &(1.0 + x * &(1.0 - &s)))
            }
            Kind::Silu => zip_float("silu", dy, x, |g, v| {
                let s = sigmoid_f64(v);
                g * s * (1.0 + v * (1.0 - s))
            }),
        };
        vec![Some(dx)]
    }
}
