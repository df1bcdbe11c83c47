//! Loss functions (`torch.nn.functional.*_loss`) and their module forms (`MSELoss`, `CrossEntropyLoss`, ...).
//! Most are composed from differentiable tensor ops, so their backward is the chain rule through those
//! ops; cross-entropy with class indices is one fused op (`cross_entropy.rs`, tested against its
//! composition), and binary cross-entropy has PyTorch's dedicated backward (finite at x = 0 and 1).
//! `d` = input - target, `p` = log-probabilities:
//!
//! | loss | per element | derivative w.r.t. the input |
//! |---|---|---|
//! | mse | d^2 | 2 d |
//! | l1 | abs(d) | sign(d) |
//! | smooth_l1(beta) | 0.5 d^2 / beta if abs(d) < beta else abs(d) - 0.5 beta | d / beta or sign(d) |
//! | huber(delta) | 0.5 d^2 if abs(d) < delta else delta (abs(d) - 0.5 delta) | d or delta sign(d) |
//! | nll | `-w[y] p[y]` | `-w[y]` at class `y` |
//! | cross_entropy | nll(log_softmax(x)), smoothed: (1 - e) nll + e/C sum_c -w_c p_c | softmax(x) - target |
//! | binary_cross_entropy | -w (t max(ln x, -100) + (1 - t) max(ln(1 - x), -100)) | w (x - t) / (x (1 - x)) |
//! | bce_with_logits | (1 - t) x + (1 + (pw - 1) t) softplus(-x) | w (sigmoid(x)(1 + (pw - 1) t) - pw t) |
//! | kl_div | t (ln t - x) (or e^t (t - x) with log_target) | -t (or -e^t) |
//!
//! Reductions: `Mean` divides by the element count, except for nll/cross-entropy with class indices, which
//! divide by the total weight of the non-ignored targets (PyTorch's rule); `BatchMean` (kl_div only) divides
//! the sum by the batch size.
//!
//! Shapes: inputs `[N, C]`, `[N, C, d1, ..]` or `[C]` for the classification losses (class dim 1, or 0 for
//! an unbatched `[C]`), with index targets `[N]`, `[N, d1, ..]` or `[]`; any shape (equal for input and
//! target) for the elementwise losses.

mod cross_entropy;
mod modules;

use crate::error::{panic_msg, shape_mismatch};
use crate::tensor::{DType, Tensor};
use cross_entropy::{cross_entropy_rows, RowTerms};
pub use modules::{
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss, NLLLoss, SmoothL1Loss,
};

/// How a loss combines its per-element values (`reduction=` in PyTorch).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// Per-element losses, unreduced.
    None,
    /// The average (PyTorch's default).
    #[default]
    Mean,
    /// The sum.
    Sum,
    /// The sum divided by the batch size (`kl_div` only: the mathematically correct KL divergence).
    BatchMean,
}

/// Applies `reduction` (Mean = average over all elements).
#[track_caller]
fn reduce(loss_name: &str, loss: Tensor, reduction: Reduction) -> Tensor {
    match reduction {
        Reduction::None => loss,
        Reduction::Mean => loss.mean(),
        Reduction::Sum => loss.sum(),
        Reduction::BatchMean => panic_msg(format!("{loss_name}: reduction 'batchmean' is only valid for kl_div")),
    }
}

#[track_caller]
fn same_shape(loss_name: &str, input: &Tensor, target: &Tensor) {
    if input.shape() != target.shape() {
        shape_mismatch(
            loss_name,
            "input and target must have the same shape: input vs target",
            input.shape(),
            target.shape(),
        );
    }
}

/// Mean squared error, `torch.nn.functional.mse_loss`.
///
/// # Panics
/// If input and target shapes differ.
#[track_caller]
pub fn mse_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Tensor {
    same_shape("MSELoss", input, target);
    let d = input - target;
    reduce("MSELoss", &d * &d, reduction)
}

/// Mean absolute error, `torch.nn.functional.l1_loss`.
///
/// # Panics
/// If input and target shapes differ.
#[track_caller]
pub fn l1_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Tensor {
    same_shape("L1Loss", input, target);
    reduce("L1Loss", (input - target).abs(), reduction)
}

/// `0.5 d^2 / beta` where `|d| < beta`, else `|d| - 0.5 beta`, `torch.nn.functional.smooth_l1_loss`
/// (`beta = 0` is the L1 loss).
///
/// # Panics
/// If input and target shapes differ or `beta < 0`.
#[track_caller]
pub fn smooth_l1_loss(input: &Tensor, target: &Tensor, reduction: Reduction, beta: f64) -> Tensor {
    same_shape("SmoothL1Loss", input, target);
    if beta < 0.0 {
        panic_msg(format!("SmoothL1Loss: beta must be non-negative, got {beta}"));
    }
    if beta == 0.0 {
        return l1_loss(input, target, reduction);
    }
    let d = input - target;
    let a = d.abs();
    let loss = Tensor::where_(&a.lt_scalar(beta), &(&d * &d * (0.5 / beta)), &(&a - 0.5 * beta));
    reduce("SmoothL1Loss", loss, reduction)
}

/// `0.5 d^2` where `|d| < delta`, else `delta (|d| - 0.5 delta)`, `torch.nn.functional.huber_loss`.
///
/// # Panics
/// If input and target shapes differ or `delta <= 0`.
#[track_caller]
pub fn huber_loss(input: &Tensor, target: &Tensor, reduction: Reduction, delta: f64) -> Tensor {
    same_shape("HuberLoss", input, target);
    if delta <= 0.0 {
        panic_msg(format!("HuberLoss: delta must be positive, got {delta}"));
    }
    let d = input - target;
    let a = d.abs();
    let loss = Tensor::where_(&a.lt_scalar(delta), &(&d * &d * 0.5), &((&a - 0.5 * delta) * delta));
    reduce("HuberLoss", loss, reduction)
}

/// Moves the class dim (1, or 0 for an unbatched `[C]` input) last and flattens the rest: `[M, C]`.
#[track_caller]
fn classes_last(loss_name: &str, input: &Tensor) -> Tensor {
    match input.rank() {
        0 => panic_msg(format!("{loss_name}: expected input [N, C], [N, C, d1, ..] or [C], got a scalar")),
        1 => input.unsqueeze(0),
        2 => input.clone(),
        r => {
            let mut perm: Vec<usize> = (0..r).filter(|&d| d != 1).collect();
            perm.push(1);
            input.permute(&perm).reshape([-1, input.shape()[1] as isize])
        }
    }
}

/// The target shape an input implies: `[N, d1, ..]` (the input's shape without the class dim).
fn index_target_shape(input: &Tensor) -> Vec<usize> {
    match input.rank() {
        1 => Vec::new(),
        _ => input.shape().iter().enumerate().filter(|&(d, _)| d != 1).map(|(_, &s)| s).collect(),
    }
}

/// The flat class-index targets with ignored entries set to 0, and per entry 0 (ignored) or 1 (`keep`).
///
/// # Panics
/// On a target outside `0..c` that is not `ignore_index`.
#[track_caller]
fn safe_targets(loss_name: &str, target: &Tensor, c: usize, ignore_index: i64) -> (Vec<i64>, Vec<f64>) {
    let t = target.to_vec::<i64>();
    let mut safe = Vec::with_capacity(t.len());
    let mut keep = Vec::with_capacity(t.len());
    for &y in &t {
        if y == ignore_index {
            safe.push(0);
            keep.push(0.0);
        } else if y < 0 || y as usize >= c {
            panic_msg(format!("{loss_name}: target {y} is out of bounds for {c} classes"));
        } else {
            safe.push(y);
            keep.push(1.0);
        }
    }
    (safe, keep)
}

/// Checks a class-index target and the weight; returns the flat targets with ignored entries set to 0 and
/// per entry 0 (ignored) or 1.
#[track_caller]
fn index_targets_checked(
    loss_name: &str,
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    ignore_index: i64,
) -> (Vec<i64>, Vec<f64>) {
    let expected = index_target_shape(input);
    if target.dtype() != DType::I64 {
        panic_msg(format!(
            "{loss_name}: expected class-index targets of dtype int64 (or float class probabilities of the input's shape {:?}), got {} of shape {:?}",
            input.shape(),
            target.dtype(),
            target.shape()
        ));
    }
    if target.shape() != expected.as_slice() {
        shape_mismatch(
            loss_name,
            "target must have the input's shape without the class dim: expected vs got",
            &expected,
            target.shape(),
        );
    }
    let c = if input.rank() == 1 { input.shape()[0] } else { input.shape()[1] };
    if let Some(w) = weight {
        if w.shape() != [c] {
            panic_msg(format!("{loss_name}: expected weight of shape [{c}] (one per class), got {:?}", w.shape()));
        }
    }
    safe_targets(loss_name, target, c, ignore_index)
}

/// [`index_targets`] as tensors: the flat targets with ignored entries set to 0, and each entry's weight
/// (`weight[y]`, or 1, and 0 where ignored), both `[M]`.
#[track_caller]
fn index_targets(
    loss_name: &str,
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    ignore_index: i64,
) -> (Tensor, Tensor) {
    let (safe, keep) = index_targets_checked(loss_name, input, target, weight, ignore_index);
    let n = keep.len();
    let safe = Tensor::from_vec(safe, &[n]);
    let keep = crate::dispatch_float!(input.dtype(), loss_name, T => {
        Tensor::from_vec(keep.iter().map(|&k| <T as crate::tensor::Element>::from_f64(k)).collect::<Vec<T>>(), &[n])
    });
    let w = match weight {
        Some(w) => w.index_select(0, &safe) * keep,
        None => keep,
    };
    (safe, w)
}

/// Negative log-likelihood of class indices given log-probabilities, `torch.nn.functional.nll_loss`.
///
/// # Shapes
/// `input [N, C]` / `[N, C, d1, ..]` / `[C]`, `target` (`i64`) `[N]` / `[N, d1, ..]` / `[]`, `weight [C]`;
/// `Reduction::None` gives the target's shape.
///
/// # Panics
/// On mismatched shapes, a non-`i64` target or an out-of-range class.
#[track_caller]
pub fn nll_loss(
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    ignore_index: i64,
    reduction: Reduction,
) -> Tensor {
    nll("NLLLoss", input, target, weight, ignore_index, reduction)
}

#[track_caller]
fn nll(
    loss_name: &str,
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    ignore_index: i64,
    reduction: Reduction,
) -> Tensor {
    let logp = classes_last(loss_name, input);
    let (safe, w) = index_targets(loss_name, input, target, weight, ignore_index);
    let picked = logp.gather(1, &safe.unsqueeze(1)).squeeze(1);
    let loss = -(picked * &w);
    match reduction {
        Reduction::None => loss.reshape(target.shape()),
        Reduction::Sum => loss.sum(),
        Reduction::Mean => loss.sum() / w.sum(),
        Reduction::BatchMean => reduce(loss_name, loss, reduction),
    }
}

/// Cross-entropy from unnormalized logits, `torch.nn.functional.cross_entropy`.
///
/// The target is either class indices (`i64`, the input's shape without the class dim; entries equal to
/// `ignore_index` contribute nothing) or class probabilities (float, the input's shape). `label_smoothing`
/// mixes the target with the uniform distribution: `(1 - e) target + e / C`. `weight [C]` rescales classes.
///
/// # Shapes
/// `input [N, C]` / `[N, C, d1, ..]` / `[C]`; `Reduction::None` gives `[N]` / `[N, d1, ..]` / `[]`.
///
/// # Panics
/// On mismatched shapes, an out-of-range class, or `label_smoothing` outside `[0, 1]`.
#[track_caller]
pub fn cross_entropy(
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    ignore_index: i64,
    reduction: Reduction,
    label_smoothing: f64,
) -> Tensor {
    let _p = crate::profile::op_scope("cross_entropy");
    const NAME: &str = "CrossEntropyLoss";
    if !(0.0..=1.0).contains(&label_smoothing) {
        panic_msg(format!("{NAME}: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}"));
    }
    let class_dim = if input.rank() == 1 { 0 } else { 1 };
    if input.rank() == 0 {
        panic_msg(format!("{NAME}: expected input [N, C], [N, C, d1, ..] or [C], got a scalar"));
    }
    let c = input.shape()[class_dim];
    let log_softmax = || input.log_softmax(class_dim as isize);
    let out_shape = index_target_shape(input);
    if target.dtype().is_float() {
        // Class probabilities.
        same_shape(NAME, input, target);
        if let Some(w) = weight {
            if w.shape() != [c] {
                panic_msg(format!("{NAME}: expected weight of shape [{c}] (one per class), got {:?}", w.shape()));
            }
        }
        let logp2 = classes_last(NAME, &log_softmax());
        let mut t = classes_last(NAME, target);
        if label_smoothing > 0.0 {
            t = t * (1.0 - label_smoothing) + label_smoothing / c as f64;
        }
        let mut terms = &logp2 * &t;
        if let Some(w) = weight {
            terms = terms * w;
        }
        let loss = -terms.sum_dim(1, false);
        return match reduction {
            Reduction::None => loss.reshape(out_shape),
            _ => reduce(NAME, loss, reduction),
        };
    }
    if !weight.is_some_and(Tensor::requires_grad) {
        // The fused op (no gradient for the class weights, which are constants here).
        let (safe, keep) = index_targets_checked(NAME, input, target, weight, ignore_index);
        let wc = weight.map(Tensor::to_vec_f64);
        let row_weight: Vec<f64> = match &wc {
            Some(wc) => safe.iter().zip(&keep).map(|(&y, &k)| wc[y as usize] * k).collect(),
            None => keep.clone(),
        };
        // The mean's denominator: `weight[target].sum()` in the input's dtype, as PyTorch sums it.
        let n = row_weight.len();
        let total = crate::dispatch_float!(input.dtype(), NAME, T => {
            let w: Vec<T> = row_weight.iter().map(|&w| <T as crate::tensor::Element>::from_f64(w)).collect();
            Tensor::from_vec(w, &[n]).sum()
        });
        let logits = classes_last(NAME, input);
        let terms = RowTerms { targets: safe.iter().map(|&y| y as usize).collect(), row_weight, keep };
        let rows = cross_entropy_rows(&logits, terms, weight, label_smoothing);
        return match reduction {
            Reduction::None => rows.reshape(out_shape),
            Reduction::Sum => rows.sum(),
            Reduction::Mean => rows.sum() / total,
            Reduction::BatchMean => reduce(NAME, rows, reduction),
        };
    }
    // Composed from log_softmax and nll (used when the class weights require grad).
    let logp = log_softmax();
    let logp2 = classes_last(NAME, &logp);
    let nll_part = nll(NAME, &logp, target, weight, ignore_index, reduction);
    if label_smoothing == 0.0 {
        return nll_part;
    }
    let (_, w_target) = index_targets(NAME, input, target, weight, ignore_index);
    let keep = target.ne_scalar(ignore_index as f64).reshape([-1]);
    let mut terms = logp2.clone();
    if let Some(w) = weight {
        terms = terms * w;
    }
    let smooth = Tensor::where_(&keep, &-terms.sum_dim(1, false), &Tensor::zeros_dtype(&[], input.dtype()));
    let smooth = match reduction {
        Reduction::None => smooth.reshape(out_shape),
        Reduction::Sum => smooth.sum(),
        Reduction::Mean => match weight {
            Some(_) => smooth.sum() / w_target.sum(),
            None => smooth.sum() / keep.to_dtype(input.dtype()).sum(),
        },
        Reduction::BatchMean => reduce(NAME, smooth, reduction),
    };
    nll_part * (1.0 - label_smoothing) + smooth * (label_smoothing / c as f64)
}

/// Checks an optional elementwise weight broadcasting to the input.
#[track_caller]
fn apply_weight(loss_name: &str, loss: Tensor, weight: Option<&Tensor>) -> Tensor {
    match weight {
        Some(w) => {
            if w.expand(loss.shape()).shape() != loss.shape() {
                shape_mismatch(loss_name, "weight must broadcast to the input", w.shape(), loss.shape());
            }
            loss * w
        }
        None => loss,
    }
}

/// Binary cross-entropy of probabilities, `torch.nn.functional.binary_cross_entropy`; each log is clamped
/// at -100 as in PyTorch, so `x = 0` or `1` gives a finite loss.
///
/// # Shapes
/// `input` and `target` of the same shape; `weight` broadcasts to it.
///
/// # Panics
/// If shapes differ.
#[track_caller]
pub fn binary_cross_entropy(input: &Tensor, target: &Tensor, weight: Option<&Tensor>, reduction: Reduction) -> Tensor {
    let _p = crate::profile::op_scope("binary_cross_entropy");
    same_shape("BCELoss", input, target);
    let value = crate::no_grad(|| bce_value(input, target));
    let loss = Tensor::from_op(value, &[input, target], || BceBackward { x: input.clone(), t: target.clone() });
    reduce("BCELoss", apply_weight("BCELoss", loss, weight), reduction)
}

/// `-(t max(ln x, -100) + (1 - t) max(ln(1 - x), -100))`, elementwise.
fn bce_value(x: &Tensor, t: &Tensor) -> Tensor {
    let log_x = x.log().clamp(Some(-100.0), None);
    let log_1mx = (1.0 - x).log().clamp(Some(-100.0), None);
    -(t * &log_x + (1.0 - t) * &log_1mx)
}

/// PyTorch's BCE backward: `dx = dy (x - t) / max(x (1 - x), 1e-12)` (finite at x = 0 or 1, where the
/// clamped logs' own derivative would be 0 or NaN), `dt = dy (max(ln(1 - x), -100) - max(ln x, -100))`.
struct BceBackward {
    x: Tensor,
    t: Tensor,
}

impl crate::Backward for BceBackward {
    fn name(&self) -> &'static str {
        "binary_cross_entropy"
    }

    fn backward(&self, dy: &Tensor, needs: &[bool]) -> crate::autograd::Grads {
        let (x, t) = (&self.x, &self.t);
        let dx = needs[0].then(|| dy * &(x - t) / (x * &(1.0 - x)).clamp(Some(1e-12), None));
        let dt =
            needs[1].then(|| dy * &((1.0 - x).log().clamp(Some(-100.0), None) - x.log().clamp(Some(-100.0), None)));
        vec![dx, dt].into()
    }
}

/// Binary cross-entropy from logits in the stable form `(1 - t) x + (1 + (pw - 1) t) softplus(-x)`,
/// `torch.nn.functional.binary_cross_entropy_with_logits`. `pos_weight` (broadcast over the last dim, one
/// per class) weighs positive examples.
///
/// # Shapes
/// `input` and `target` of the same shape; `weight` broadcasts to it; `pos_weight [C]` (the last dim).
///
/// # Panics
/// If shapes differ.
#[track_caller]
pub fn binary_cross_entropy_with_logits(
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    pos_weight: Option<&Tensor>,
    reduction: Reduction,
) -> Tensor {
    const NAME: &str = "BCEWithLogitsLoss";
    same_shape(NAME, input, target);
    let sp = (-input).softplus(1.0, 20.0);
    let loss = match pos_weight {
        Some(pw) => {
            let lw = (pw - 1.0) * target + 1.0;
            (1.0 - target) * input + lw * sp
        }
        None => (1.0 - target) * input + sp,
    };
    reduce(NAME, apply_weight(NAME, loss, weight), reduction)
}

/// Kullback-Leibler divergence `KL(target || exp(input))` with `input` given as log-probabilities,
/// `torch.nn.functional.kl_div`. With `log_target` the target is log-probabilities too. Terms with
/// `target = 0` are 0 (`0 ln 0 = 0`).
///
/// # Shapes
/// `input` and `target` of the same shape `[N, ..]`; `BatchMean` divides the sum by `N`.
///
/// # Panics
/// If shapes differ.
#[track_caller]
pub fn kl_div(input: &Tensor, target: &Tensor, reduction: Reduction, log_target: bool) -> Tensor {
    same_shape("KLDivLoss", input, target);
    let loss = if log_target {
        target.exp() * (target - input)
    } else {
        let positive = target.gt_scalar(0.0);
        let one = Tensor::ones_dtype(&[], target.dtype());
        let safe = Tensor::where_(&positive, target, &one);
        let xlogy = Tensor::where_(&positive, &(target * &safe.log()), &Tensor::zeros_dtype(&[], target.dtype()));
        xlogy - target * input
    };
    match reduction {
        Reduction::BatchMean => {
            let n = if input.rank() == 0 { 1 } else { input.shape()[0] };
            loss.sum() / n as f64
        }
        _ => reduce("KLDivLoss", loss, reduction),
    }
}
