//! The losses as structs holding their options (`torch.nn.MSELoss`, `torch.nn.CrossEntropyLoss`, ...), each
//! with PyTorch's defaults (`new()`), `forward(input, target)` calling the function of the same name in the
//! parent module (where the math is), and `describe()`. They take two inputs, so they are not [`Module`]s.
//!
//! [`Module`]: crate::nn::Module

use super::{
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, huber_loss, kl_div, l1_loss, mse_loss,
    nll_loss, smooth_l1_loss, Reduction,
};
use crate::tensor::Tensor;

/// `torch.nn.MSELoss`.
#[derive(Clone, Debug, Default)]
pub struct MSELoss {
    /// Default `Mean`.
    pub reduction: Reduction,
}

/// `torch.nn.L1Loss`.
#[derive(Clone, Debug, Default)]
pub struct L1Loss {
    /// Default `Mean`.
    pub reduction: Reduction,
}

/// `torch.nn.SmoothL1Loss`.
#[derive(Clone, Debug)]
pub struct SmoothL1Loss {
    /// Default `Mean`.
    pub reduction: Reduction,
    /// Where the loss turns from quadratic to linear (default 1).
    pub beta: f64,
}

/// `torch.nn.HuberLoss`.
#[derive(Clone, Debug)]
pub struct HuberLoss {
    /// Default `Mean`.
    pub reduction: Reduction,
    /// Where the loss turns from quadratic to linear (default 1).
    pub delta: f64,
}

/// `torch.nn.CrossEntropyLoss`.
///
/// ```
/// use tensorgrad::nn::CrossEntropyLoss;
/// use tensorgrad::Tensor;
///
/// let logits = Tensor::from_vec(vec![2.0f32, 0.0, 0.0, 0.0, 0.0, 2.0], &[2, 3]);
/// let target = Tensor::from_vec(vec![0i64, 2], &[2]);
/// let loss = CrossEntropyLoss::new().forward(&logits, &target);
/// let expected = -(2f64.exp() / (2f64.exp() + 2.0)).ln();
/// assert!((loss.item() - expected).abs() < 1e-6);
/// // Label smoothing and ignored targets, as in PyTorch:
/// let smooth = CrossEntropyLoss { label_smoothing: 0.1, ignore_index: 2, ..CrossEntropyLoss::new() };
/// assert!(smooth.forward(&logits, &target).item() > loss.item());
/// ```
#[derive(Clone, Debug)]
pub struct CrossEntropyLoss {
    /// Per-class weights `[C]`.
    pub weight: Option<Tensor>,
    /// Targets equal to this contribute nothing (default -100).
    pub ignore_index: i64,
    /// Default `Mean`.
    pub reduction: Reduction,
    /// Default 0.
    pub label_smoothing: f64,
}

/// `torch.nn.NLLLoss`.
#[derive(Clone, Debug)]
pub struct NLLLoss {
    /// Per-class weights `[C]`.
    pub weight: Option<Tensor>,
    /// Targets equal to this contribute nothing (default -100).
    pub ignore_index: i64,
    /// Default `Mean`.
    pub reduction: Reduction,
}

/// `torch.nn.BCELoss`.
#[derive(Clone, Debug, Default)]
pub struct BCELoss {
    /// Elementwise weights (broadcast to the input).
    pub weight: Option<Tensor>,
    /// Default `Mean`.
    pub reduction: Reduction,
}

/// `torch.nn.BCEWithLogitsLoss`.
#[derive(Clone, Debug, Default)]
pub struct BCEWithLogitsLoss {
    /// Elementwise weights (broadcast to the input).
    pub weight: Option<Tensor>,
    /// Default `Mean`.
    pub reduction: Reduction,
    /// Weights of positive examples per class (last dim).
    pub pos_weight: Option<Tensor>,
}

/// `torch.nn.KLDivLoss`.
#[derive(Clone, Debug, Default)]
pub struct KLDivLoss {
    /// Default `Mean` (as PyTorch; `BatchMean` is the true KL divergence).
    pub reduction: Reduction,
    /// Whether the target is given as log-probabilities.
    pub log_target: bool,
}

impl Default for SmoothL1Loss {
    fn default() -> Self {
        SmoothL1Loss { reduction: Reduction::Mean, beta: 1.0 }
    }
}

impl Default for HuberLoss {
    fn default() -> Self {
        HuberLoss { reduction: Reduction::Mean, delta: 1.0 }
    }
}

impl Default for CrossEntropyLoss {
    fn default() -> Self {
        CrossEntropyLoss { weight: None, ignore_index: -100, reduction: Reduction::Mean, label_smoothing: 0.0 }
    }
}

impl Default for NLLLoss {
    fn default() -> Self {
        NLLLoss { weight: None, ignore_index: -100, reduction: Reduction::Mean }
    }
}

/// Declares `new()` (the defaults), `forward(input, target)` and `describe()` for a loss module.
macro_rules! loss_module {
    ($Name:ident, |$s:ident, $i:ident, $t:ident| $call:expr, |$d:ident| $describe:expr) => {
        impl $Name {
            /// The loss with PyTorch's defaults.
            pub fn new() -> $Name {
                $Name::default()
            }

            /// The loss of `input` against `target` (see the function of the same name for shapes).
            #[track_caller]
            pub fn forward(&self, $i: &Tensor, $t: &Tensor) -> Tensor {
                let $s = self;
                $call
            }

            /// PyTorch's repr.
            pub fn describe(&self) -> String {
                let $d = self;
                $describe
            }
        }
    };
}

loss_module!(MSELoss, |s, i, t| mse_loss(i, t, s.reduction), |_d| "MSELoss()".into());
loss_module!(L1Loss, |s, i, t| l1_loss(i, t, s.reduction), |_d| "L1Loss()".into());
loss_module!(SmoothL1Loss, |s, i, t| smooth_l1_loss(i, t, s.reduction, s.beta), |_d| "SmoothL1Loss()".into());
loss_module!(HuberLoss, |s, i, t| huber_loss(i, t, s.reduction, s.delta), |_d| "HuberLoss()".into());
loss_module!(
    CrossEntropyLoss,
    |s, i, t| cross_entropy(i, t, s.weight.as_ref(), s.ignore_index, s.reduction, s.label_smoothing),
    |_d| "CrossEntropyLoss()".into()
);
loss_module!(NLLLoss, |s, i, t| nll_loss(i, t, s.weight.as_ref(), s.ignore_index, s.reduction), |_d| "NLLLoss()"
    .into());
loss_module!(BCELoss, |s, i, t| binary_cross_entropy(i, t, s.weight.as_ref(), s.reduction), |_d| "BCELoss()".into());
loss_module!(
    BCEWithLogitsLoss,
    |s, i, t| binary_cross_entropy_with_logits(i, t, s.weight.as_ref(), s.pos_weight.as_ref(), s.reduction),
    |_d| "BCEWithLogitsLoss()".into()
);
loss_module!(KLDivLoss, |s, i, t| kl_div(i, t, s.reduction, s.log_target), |_d| "KLDivLoss()".into());
