//! [`Linear`]: a fully connected layer, `torch.nn.Linear`.
//!
//! ```text
//! forward:  y = x W^T + b                       x [.., in], W [out, in], b [out], y [.., out]
//! backward: dx = dy W,  dW = sum over leading dims of dy^T x,  db = sum over leading dims of dy
//! ```
//! (composed from `matmul` and a broadcast add, whose backwards give the formulas above).
//!
//! Init (PyTorch's default): `W ~ U(-1/sqrt(in), 1/sqrt(in))` (`kaiming_uniform_` with `a = sqrt(5)`),
//! `b ~ U(-1/sqrt(in), 1/sqrt(in))`.

use super::functional::{linear, py_bool};
use super::{init, Module};
use crate::tensor::{DType, Tensor};

/// `y = x W^T + b` over the last dim.
///
/// # Shapes
/// `[.., in_features]` -> `[.., out_features]`; `weight [out_features, in_features]`, `bias [out_features]`.
///
/// # Panics
/// `forward` panics if the input's last dim is not `in_features`.
///
/// ```
/// use tensorgrad::nn::{Linear, Module};
/// use tensorgrad::Tensor;
///
/// let layer = Linear::new(4, 2);
/// assert_eq!(layer.forward(&Tensor::randn(&[8, 3, 4])).shape(), &[8, 3, 2]);
/// assert_eq!(layer.describe(), "Linear(in_features=4, out_features=2, bias=True)");
/// let names: Vec<String> = layer.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["weight", "bias"]);
/// ```
pub struct Linear {
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
    /// `[out_features, in_features]`.
    pub weight: Tensor,
    /// `[out_features]`, or `None` for `bias=False`.
    pub bias: Option<Tensor>,
}

impl Linear {
    /// `Linear(in_features, out_features)` with a bias, f32, PyTorch's default init.
    pub fn new(in_features: usize, out_features: usize) -> Linear {
        Linear::with_options(in_features, out_features, true, DType::F32)
    }

    /// With or without a bias, in the given float dtype.
    pub fn with_options(in_features: usize, out_features: usize, bias: bool, dtype: DType) -> Linear {
        let weight = Tensor::zeros_dtype(&[out_features, in_features], dtype);
        let bias = bias.then(|| Tensor::zeros_dtype(&[out_features], dtype));
        init::default_linear_init(&weight, bias.as_ref());
        Linear { in_features, out_features, weight: weight.requires_grad_(), bias: bias.map(Tensor::requires_grad_) }
    }
}

impl Module for Linear {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        linear(x, &self.weight, self.bias.as_ref())
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = vec![("weight".to_string(), self.weight.clone())];
        p.extend(self.bias.clone().map(|b| ("bias".to_string(), b)));
        p
    }

    fn describe(&self) -> String {
        format!(
            "Linear(in_features={}, out_features={}, bias={})",
            self.in_features,
            self.out_features,
            py_bool(self.bias.is_some())
        )
    }
}
