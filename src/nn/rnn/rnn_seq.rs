//! The fused Elman RNN recurrence: one op runs a whole direction of one layer over all T steps, forward and
//! backward (backpropagation through time) each in one loop.
//!
//! Inputs: `gx` `[T, N, H]` (the input projection `x W_ih^T + b_ih + b_hh` of every step), `w_hh` `[H, H]`,
//! `h0` `[N, H]`. Output `y` `[T, N, H]` (`h_t`). Steps run t = 0..T, or T-1 down to 0 for a reverse
//! direction; "previous" = processed before.
//!
//! ```text
//! forward:   h_t = act(gx[t] + h_prev W_hh^T)                      act = tanh | relu
//! backward:  da = (dy[t] + dh~) * act'   with tanh' = 1 - h_t^2, relu' = [h_t > 0]
//!            dgx[t] = da    dh~ = da W_hh    dW_hh = sum_t da[t]^T h_prev[t]    dh0 = dh~ at the end
//! ```
//! A plain backward runs the elementwise part in one loop per step over the saved outputs; under
//! `create_graph` the same formulas run as tensor ops over a recomputed forward (tested with gradgradcheck).

use crate::autograd::{is_grad_enabled, no_grad, Backward};
use crate::error::panic_msg;
use crate::tensor::{Element, Tensor};

/// Runs the RNN recurrence over all steps (see the module docs); returns `[T, N, H]`.
///
/// # Panics
/// If the shapes do not fit `gx [T, N, H]`, `w_hh [H, H]`, `h0 [N, H]`, or the dtypes differ.
#[track_caller]
pub(crate) fn rnn_sequence(gx: &Tensor, w_hh: &Tensor, h0: &Tensor, relu: bool, reverse: bool) -> Tensor {
    let _p = crate::profile::op_scope("rnn_sequence");
    let (t_len, n, h) = (gx.size(0), h0.size(0), h0.size(1));
    let ok = gx.rank() == 3
        && gx.shape() == [t_len, n, h]
        && w_hh.shape() == [h, h]
        && w_hh.dtype() == gx.dtype()
        && h0.dtype() == gx.dtype();
    if !ok {
        panic_msg(format!(
            "rnn_sequence: expected gx [T, N, H], w_hh [H, H], h0 [N, H] of one dtype, got {:?}, {:?}, {:?}",
            gx.shape(),
            w_hh.shape(),
            h0.shape()
        ));
    }
    let y = no_grad(|| {
        crate::dispatch_float!(gx.dtype(), "rnn_sequence", T => {
            let gxv = gx.to_vec::<T>();
            // W_hh^T contiguous once per sequence: every step streams it row by row.
            let w_t = w_hh.detach().t().contiguous();
            let mut y = vec![T::from_f64(0.0); t_len * n * h];
            let mut h_prev = h0.detach();
            for step in 0..t_len {
                let t = if reverse { t_len - 1 - step } else { step };
                let rec = h_prev.matmul(&w_t).to_vec::<T>();
                let out = &mut y[t * n * h..][..n * h];
                for (k, o) in out.iter_mut().enumerate() {
                    let a = gxv[t * n * h + k].to_f64() + rec[k].to_f64();
                    *o = T::from_f64(if relu { a.max(0.0) } else { a.tanh() });
                }
                h_prev = Tensor::from_vec(out.to_vec(), &[n, h]);
            }
            Tensor::from_vec(y, &[t_len, n, h])
        })
    });
    Tensor::from_op(y.clone(), &[gx, w_hh, h0], || RnnSequenceBackward {
        gx: gx.clone(),
        w_hh: w_hh.clone(),
        h0: h0.clone(),
        y: y.detach(),
        relu,
        reverse,
    })
}

/// The same recurrence written with per-step tensor ops: the reference the fused op is tested against.
#[cfg(test)]
pub(crate) fn rnn_sequence_composed(gx: &Tensor, w_hh: &Tensor, h0: &Tensor, relu: bool, reverse: bool) -> Tensor {
    let t_len = gx.size(0);
    let w_t = w_hh.t();
    let mut h = h0.clone();
    let mut ys: Vec<Option<Tensor>> = vec![None; t_len];
    for step in 0..t_len {
        let t = if reverse { t_len - 1 - step } else { step };
        let a = gx.narrow(0, t, 1).squeeze(0) + h.matmul(&w_t);
        h = if relu { a.relu() } else { a.tanh() };
        ys[t] = Some(h.clone());
    }
    let ys: Vec<Tensor> = ys.into_iter().flatten().collect();
    Tensor::stack(&ys.iter().collect::<Vec<_>>(), 0)
}

struct RnnSequenceBackward {
    gx: Tensor,
    w_hh: Tensor,
    h0: Tensor,
    /// `[T, N, H]`: h_t of every step.
    y: Tensor,
    relu: bool,
    reverse: bool,
}

impl RnnSequenceBackward {
    /// Time indices in processing order.
    fn order(&self) -> Vec<usize> {
        let t_len = self.gx.size(0);
        if self.reverse {
            (0..t_len).rev().collect()
        } else {
            (0..t_len).collect()
        }
    }

    /// The hidden state each step started from, `[T, N, H]` in time order (values only).
    fn h_prev_all(&self, order: &[usize]) -> Tensor {
        let mut prev: Vec<Option<Tensor>> = vec![None; order.len()];
        for (pos, &t) in order.iter().enumerate() {
            prev[t] = Some(if pos == 0 { self.h0.detach() } else { self.y.narrow(0, order[pos - 1], 1).squeeze(0) });
        }
        let prev: Vec<Tensor> = prev.into_iter().flatten().collect();
        Tensor::stack(&prev.iter().collect::<Vec<_>>(), 0)
    }

    /// BPTT with the elementwise part fused into one loop per step (plain backward).
    fn backward_fused(&self, dy: &Tensor) -> [Tensor; 3] {
        let (t_len, n, h) = (self.gx.size(0), self.h0.size(0), self.h0.size(1));
        let order = self.order();
        crate::dispatch_float!(dy.dtype(), "rnn_sequence", T => {
            let dyv = dy.to_vec::<T>();
            let y = self.y.to_vec::<T>();
            let mut dgx = vec![T::from_f64(0.0); t_len * n * h];
            let mut dh_next = vec![T::from_f64(0.0); n * h];
            let w = self.w_hh.detach();
            for &t in order.iter().rev() {
                let da = &mut dgx[t * n * h..][..n * h];
                for (k, d) in da.iter_mut().enumerate() {
                    let (hv, dh) = (y[t * n * h + k].to_f64(), dyv[t * n * h + k].to_f64() + dh_next[k].to_f64());
                    let slope = if self.relu { f64::from(u8::from(hv > 0.0)) } else { 1.0 - hv * hv };
                    *d = T::from_f64(dh * slope);
                }
                dh_next = Tensor::from_vec(da.to_vec(), &[n, h]).matmul(&w).to_vec::<T>();
            }
            let dgx = Tensor::from_vec(dgx, &[t_len, n, h]);
            let dw = dgx.reshape([t_len * n, h]).t().matmul(&self.h_prev_all(&order).reshape([t_len * n, h]));
            [dgx, dw, Tensor::from_vec(dh_next, &[n, h])]
        })
    }

    /// BPTT as tensor ops over a forward recomputed with a graph (under `create_graph`).
    fn backward_recorded(&self, dy: &Tensor) -> [Tensor; 3] {
        let t_len = self.gx.size(0);
        let order = self.order();
        let w_t = self.w_hh.t();
        let mut hs = self.h0.clone();
        let mut steps: Vec<Option<(Tensor, Tensor)>> = vec![None; t_len];
        for &t in &order {
            let a = self.gx.narrow(0, t, 1).squeeze(0) + hs.matmul(&w_t);
            let h_new = if self.relu { a.relu() } else { a.tanh() };
            steps[t] = Some((h_new.clone(), hs));
            hs = h_new;
        }
        let mut dh_next = self.h0.zeros_like();
        let mut dgx: Vec<Option<Tensor>> = vec![None; t_len];
        let mut dw: Option<Tensor> = None;
        for &t in order.iter().rev() {
            let (hv, h_prev) = steps[t].as_ref().unwrap_or_else(|| unreachable!("every step was recomputed"));
            let dh = dy.narrow(0, t, 1).squeeze(0) + &dh_next;
            let da = if self.relu {
                Tensor::where_(&hv.gt_scalar(0.0), &dh, &dh.zeros_like())
            } else {
                &dh * (1.0 - hv * hv)
            };
            dh_next = da.matmul(&self.w_hh);
            let dw_t = da.t().matmul(h_prev);
            dw = Some(match dw {
                Some(acc) => acc + dw_t,
                None => dw_t,
            });
            dgx[t] = Some(da);
        }
        let dgx: Vec<Tensor> = dgx.into_iter().flatten().collect();
        let dw = dw.unwrap_or_else(|| self.w_hh.zeros_like());
        [Tensor::stack(&dgx.iter().collect::<Vec<_>>(), 0), dw, dh_next]
    }
}

impl Backward for RnnSequenceBackward {
    fn name(&self) -> &'static str {
        "rnn_sequence"
    }

    fn backward(&self, dy: &Tensor, needs: &[bool]) -> crate::autograd::Grads {
        let grads = if is_grad_enabled() { self.backward_recorded(dy) } else { self.backward_fused(dy) };
        grads.into_iter().zip(needs).map(|(g, &need)| need.then_some(g)).collect()
    }

    fn saved_bytes(&self) -> usize {
        self.y.numel() * self.y.dtype().size_in_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{gradcheck, gradgradcheck, DType, GradcheckOptions};

    fn inputs() -> Vec<Tensor> {
        crate::manual_seed(5);
        let r = |s: &[usize], scale: f64| (Tensor::randn(s).to_dtype(DType::F64) * scale).requires_grad_();
        vec![r(&[3, 2, 3], 1.0), r(&[3, 3], 0.5), r(&[2, 3], 1.0)]
    }

    #[test]
    fn fused_sequence_matches_composition_values_and_gradients() {
        let ts = inputs();
        let refs: Vec<&Tensor> = ts.iter().collect();
        for (relu, reverse) in [(false, false), (false, true), (true, false), (true, true)] {
            let fused = rnn_sequence(&ts[0], &ts[1], &ts[2], relu, reverse);
            let composed = rnn_sequence_composed(&ts[0], &ts[1], &ts[2], relu, reverse);
            assert!((&fused - &composed).abs().max().item() < 1e-14, "forward, relu={relu} reverse={reverse}");
            let w = Tensor::randn(&[3, 2, 3]).to_dtype(DType::F64);
            let gf = crate::grad(&[&(&fused * &w).sum()], &refs, None, false);
            let gc = crate::grad(&[&(&composed * &w).sum()], &refs, None, false);
            for (k, (a, b)) in gf.iter().zip(&gc).enumerate() {
                let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
                assert!((a - b).abs().max().item() < 1e-13, "gradient of input {k}, relu={relu} reverse={reverse}");
            }
        }
    }

    #[test]
    fn fused_sequence_gradcheck_and_second_order() {
        let ts = inputs();
        for reverse in [false, true] {
            let f = |t: &[Tensor]| rnn_sequence(&t[0], &t[1], &t[2], false, reverse);
            gradcheck(f, &ts, GradcheckOptions::default()).unwrap();
            let g = |t: &[Tensor]| f(t).powf(2.0).sum();
            gradgradcheck(g, &ts, GradcheckOptions::default()).unwrap();
        }
    }
}
