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
//!           p = softmax(x),  a = (1 - e) w_y + (e / C) keep W
//! ```
//! The backward is written with tensor ops on `softmax(x)`, so it is differentiable again. Equal to
//! `(1 - e) nll(log_softmax(x)) + e/C * smoothing term` composed from primitives (tested).

use crate::autograd::Backward;
use crate::tensor::{Element, Tensor};

/// Per-row losses `[M]` of logits `[M, C]` (contiguous values are read) against `targets [M]` (in range;
/// ignored rows carry any valid class and `row_weight = keep = 0`).
/// `row_weight [M]` is `w_y`, `keep [M]` is 0/1, `class_weight [C]` (or `None` for all ones).
pub(crate) fn cross_entropy_rows(
    logits: &Tensor,
    targets: &[i64],
    row_weight: &Tensor,
    keep: &Tensor,
    class_weight: Option<&Tensor>,
    smoothing: f64,
) -> Tensor {
    let (m, c) = (logits.shape()[0], logits.shape()[1]);
    let value = crate::dispatch_float!(logits.dtype(), "cross_entropy", T => {
        let x = logits.contiguous_vec::<T>();
        let (w, k) = (row_weight.to_vec_f64(), keep.to_vec_f64());
        let wc = class_weight.map(|t| t.to_vec_f64());
        let mut out = Vec::with_capacity(m);
        for (i, row) in x.chunks_exact(c.max(1)).enumerate().take(m) {
            let mx = row.iter().map(|v| v.to_f64()).fold(f64::NEG_INFINITY, f64::max);
            let mx = if mx.is_finite() { mx } else { 0.0 };
            let lse = mx + row.iter().map(|v| (v.to_f64() - mx).exp()).sum::<f64>().ln();
            let mut loss = (1.0 - smoothing) * w[i] * (lse - row[targets[i] as usize].to_f64());
            if smoothing > 0.0 && k[i] != 0.0 {
                let s: f64 = match &wc {
                    Some(wc) => row.iter().zip(wc).map(|(v, wc)| wc * (lse - v.to_f64())).sum(),
                    None => row.iter().map(|v| lse - v.to_f64()).sum(),
                };
                loss += smoothing / c as f64 * k[i] * s;
            }
            out.push(T::from_f64(loss));
        }
        Tensor::from_vec(out, &[m])
    });
    Tensor::from_op(value, &[logits], || {
        let dtype = logits.dtype();
        let mut onehot = vec![0.0; m * c];
        for (i, &y) in targets.iter().enumerate() {
            onehot[i * c + y as usize] = 1.0;
        }
        let onehot = Tensor::from_vec(onehot, &[m, c]).to_dtype(dtype);
        let total_weight = class_weight.map_or(c as f64, |w| w.to_vec_f64().iter().sum());
        let per_class = smoothing / c as f64;
        let w_col = row_weight.reshape([m, 1]);
        let keep_col = keep.reshape([m, 1]);
        CrossEntropyBackward {
            x: logits.clone(),
            a: &w_col * (1.0 - smoothing) + &keep_col * (per_class * total_weight),
            target_term: onehot * (&w_col * (1.0 - smoothing)),
            smooth_term: match class_weight {
                Some(wc) => &keep_col * per_class * wc.reshape([1, c]),
                None => (&keep_col * per_class).expand(&[m, c]),
            },
        }
    })
}

/// `dx = dy * (a softmax(x) - target_term - smooth_term)`.
struct CrossEntropyBackward {
    x: Tensor,
    /// `[M, 1]`.
    a: Tensor,
    /// `[M, C]`: `(1 - e) w_y` at the target class.
    target_term: Tensor,
    /// `[M, C]`: `(e / C) keep wc_c`.
    smooth_term: Tensor,
}

impl Backward for CrossEntropyBackward {
    fn name(&self) -> &'static str {
        "cross_entropy"
    }

    fn backward(&self, dy: &Tensor, _: &[bool]) -> crate::autograd::Grads {
        let p = self.x.softmax(1);
        let m = self.x.shape()[0];
        let dx = dy.reshape([m, 1]) * (&self.a * &p - &self.target_term - &self.smooth_term);
        vec![Some(dx)].into()
    }
}
