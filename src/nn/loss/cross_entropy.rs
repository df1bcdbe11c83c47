//! Cross-entropy from logits with class indices as one fused op: log-softmax, the pick of the target's
//! log-probability and label smoothing in a single pass over each row, without materializing log-probs.
//!
//! For a row `x` of `C` logits, target `y`, entry weight `w_y` (the class weight of `y`, or 1; 0 when the
//! target is ignored), `keep` (0 when ignored, else 1), class weights `wc` (all 1 without weights, sum `W`)
//! and smoothing `e`:
//!
//! ```text
//! forward:  lse  = m + ln sum_c e^(x_c - m),  m = max_c x_c
//!           loss = (1 - e) w_y (lse - x_y) + (e / C) keep sum_c wc_c (lse - x_c)
//! backward: dx_c = dloss * (a p_c - (1 - e) w_y [c == y] - (e / C) keep wc_c),
//!           p = softmax(x) = exp(x - lse),  a = (1 - e) w_y + (e / C) keep W
//! ```
//! Both directions run as one pass per row in the kernels crate (`rows::cross_entropy_rows_weighted_*`,
//! vectorized `exp` for `f32`; the forward keeps each row's `lse` for the backward). Under
//! `create_graph` the backward is written with tensor ops on `softmax(x)` instead, so it is
//! differentiable again. Equal to `(1 - e) nll(log_softmax(x)) + e/C * smoothing term` composed from
//! primitives (tested).

use crate::autograd::{is_grad_enabled, Backward};
use crate::ops::fast::Kernel;
use crate::tensor::{Element, Tensor};
use tensorgrad_kernels::rows::{self, CrossEntropyTerms};

/// The per-row constants of the loss: targets (in range; ignored rows carry any valid class) and, as
/// `f64`, `w_y` and `keep` per row (both 0 for an ignored row).
pub(crate) struct RowTerms {
    pub targets: Vec<usize>,
    pub row_weight: Vec<f64>,
    pub keep: Vec<f64>,
}

/// Per-row losses `[M]` of logits `[M, C]` (contiguous values are read) against `terms`, with class
/// weights `class_weight [C]` (or `None` for all ones) and label smoothing `smoothing`.
pub(crate) fn cross_entropy_rows(
    logits: &Tensor,
    terms: RowTerms,
    class_weight: Option<&Tensor>,
    smoothing: f64,
) -> Tensor {
    let (m, c) = (logits.shape()[0], logits.shape()[1]);
    let (value, lse) = crate::dispatch_float!(logits.dtype(), "cross_entropy", T => {
        let x = logits.contiguous_vec::<T>();
        let (rw, keep, wc) = terms_as::<T>(&terms, class_weight);
        let t = CrossEntropyTerms {
            targets: &terms.targets,
            row_weight: &rw,
            keep: &keep,
            class_weight: wc.as_deref(),
            smoothing: <T as Element>::from_f64(smoothing),
        };
        let (mut loss, mut lse) = (vec![<T as Element>::from_f64(0.0); m], vec![<T as Element>::from_f64(0.0); m]);
        rows::cross_entropy_rows_weighted_forward(&x, c, &t, &mut loss, &mut lse);
        (Tensor::from_vec(loss, &[m]), Tensor::from_vec(lse, &[m]))
    });
    Tensor::from_op(value, &[logits], || CrossEntropyBackward {
        x: logits.clone(),
        lse,
        terms,
        class_weight: class_weight.map(Tensor::detach),
        smoothing,
    })
}

/// `w_y`, `keep` and the class weights in the logits' element type.
fn terms_as<T: Kernel>(terms: &RowTerms, class_weight: Option<&Tensor>) -> (Vec<T>, Vec<T>, Option<Vec<T>>) {
    let conv = |v: &[f64]| v.iter().map(|&a| <T as Element>::from_f64(a)).collect::<Vec<T>>();
    (conv(&terms.row_weight), conv(&terms.keep), class_weight.map(|w| conv(&w.to_vec_f64())))
}

/// `dx = dy * (a softmax(x) - target_term - smooth_term)` (module docs).
struct CrossEntropyBackward {
    x: Tensor,
    /// `[M]`: each row's log-sum-exp.
    lse: Tensor,
    terms: RowTerms,
    class_weight: Option<Tensor>,
    smoothing: f64,
}

impl CrossEntropyBackward {
    /// One pass per row through the kernel.
    fn fused<T: Kernel>(&self, dy: &Tensor) -> Tensor {
        let (m, c) = (self.x.shape()[0], self.x.shape()[1]);
        let x = self.x.contiguous_vec::<T>();
        let (lse, dl) = (self.lse.contiguous_vec::<T>(), dy.contiguous_vec::<T>());
        let (rw, keep, wc) = terms_as::<T>(&self.terms, self.class_weight.as_ref());
        let t = CrossEntropyTerms {
            targets: &self.terms.targets,
            row_weight: &rw,
            keep: &keep,
            class_weight: wc.as_deref(),
            smoothing: <T as Element>::from_f64(self.smoothing),
        };
        let mut dx = vec![<T as Element>::from_f64(0.0); m * c];
        rows::cross_entropy_rows_weighted_backward(&x, c, &t, &lse, &dl, &mut dx);
        Tensor::from_vec(dx, &[m, c])
    }

    /// The same formula with tensor ops (differentiable, for `create_graph`).
    fn recorded(&self, dy: &Tensor) -> Tensor {
        let (m, c) = (self.x.shape()[0], self.x.shape()[1]);
        let dtype = self.x.dtype();
        let e = self.smoothing;
        let mut onehot = vec![0.0; m * c];
        for (i, &y) in self.terms.targets.iter().enumerate() {
            onehot[i * c + y] = 1.0;
        }
        let onehot = Tensor::from_vec(onehot, &[m, c]).to_dtype(dtype);
        let total_weight = self.class_weight.as_ref().map_or(c as f64, |w| w.to_vec_f64().iter().sum());
        let per_class = e / c as f64;
        let w_col = Tensor::from_vec(self.terms.row_weight.clone(), &[m, 1]).to_dtype(dtype);
        let keep_col = Tensor::from_vec(self.terms.keep.clone(), &[m, 1]).to_dtype(dtype);
        let a = &w_col * (1.0 - e) + &keep_col * (per_class * total_weight);
        let target_term = onehot * (&w_col * (1.0 - e));
        let smooth_term = match &self.class_weight {
            Some(wc) => &keep_col * per_class * wc.reshape([1, c]),
            None => (&keep_col * per_class).expand(&[m, c]),
        };
        let p = self.x.softmax(1);
        dy.reshape([m, 1]) * (a * &p - target_term - smooth_term)
    }
}

impl Backward for CrossEntropyBackward {
    fn name(&self) -> &'static str {
        "cross_entropy"
    }

    fn backward(&self, dy: &Tensor, _: &[bool]) -> crate::autograd::Grads {
        let dx = if is_grad_enabled() {
            self.recorded(dy)
        } else {
            crate::dispatch_float!(self.x.dtype(), "cross_entropy", T => self.fused::<T>(dy))
        };
        [Some(dx)].into()
    }

    fn saved_bytes(&self) -> usize {
        self.lse.numel() * self.lse.dtype().size_in_bytes()
    }
}
