//! The fused LSTM recurrence: one op runs a whole direction of one layer over all T steps, forward and
//! backward (backpropagation through time) each in one loop, instead of ~15 graph nodes per step.
//!
//! Inputs: `gx` `[T, N, 4H]` (the input projection `x W_ih^T + b_ih + b_hh` of every step, gate order
//! i, f, g, o), `w_hh` `[4H, H]`, `h0`, `c0` `[N, H]`. Output `y` `[T, N, 2H]` with `y[t] = [h_t | c_t]`.
//! The steps run t = 0..T, or T-1 down to 0 for a reverse direction; "previous" below means the step
//! processed before.
//!
//! forward, per step:
//! ```text
//! [a_i a_f a_g a_o] = gx[t] + h_prev W_hh^T
//! i, f, o = sigmoid(a_i, a_f, a_o)   g = tanh(a_g)
//! c_t = f * c_prev + i * g           h_t = o * tanh(c_t)
//! ```
//! backward, steps in reverse processing order, carrying dh~ and dc~ (zero before the last step):
//! ```text
//! dh = dy[t, :, :H] + dh~            dc = dy[t, :, H:] + dc~ + dh * o * (1 - tanh(c_t)^2)
//! da_i = dc * g * i (1 - i)   da_f = dc * c_prev * f (1 - f)   da_g = dc * i (1 - g^2)   da_o = dh * tanh(c_t) * o (1 - o)
//! dgx[t] = da                        dc~ = dc * f                dh~ = da W_hh
//! dW_hh = sum_t da[t]^T h_prev[t]    (one matmul over all steps)     dh0 = dh~, dc0 = dc~ at the end
//! ```
//! A plain backward runs the elementwise part in one loop per step over saved activations; under
//! `create_graph` the same formulas run as tensor ops over a recomputed forward, so second derivatives are
//! exact (tested with gradgradcheck).

use crate::autograd::{is_grad_enabled, no_grad, Backward};
use crate::error::panic_msg;
use crate::tensor::{Element, Tensor};

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Runs the LSTM recurrence over all steps (see the module docs); returns `[T, N, 2H]` = `[h_t | c_t]`.
///
/// # Panics
/// If the shapes do not fit `gx [T, N, 4H]`, `w_hh [4H, H]`, `h0`, `c0 [N, H]`, or the dtypes differ.
#[track_caller]
pub(crate) fn lstm_sequence(gx: &Tensor, w_hh: &Tensor, h0: &Tensor, c0: &Tensor, reverse: bool) -> Tensor {
    let _p = crate::profile::op_scope("lstm_sequence");
    let (t_len, n, h) = (gx.size(0), h0.size(0), h0.size(1));
    let ok = gx.rank() == 3
        && gx.shape() == [t_len, n, 4 * h]
        && w_hh.shape() == [4 * h, h]
        && c0.shape() == h0.shape()
        && [w_hh.dtype(), h0.dtype(), c0.dtype()].iter().all(|&d| d == gx.dtype());
    if !ok {
        panic_msg(format!(
            "lstm_sequence: expected gx [T, N, 4H], w_hh [4H, H], h0 and c0 [N, H] of one dtype, got {:?}, {:?}, {:?}, {:?}",
            gx.shape(),
            w_hh.shape(),
            h0.shape(),
            c0.shape()
        ));
    }
    let (y, act) = no_grad(|| {
        crate::dispatch_float!(gx.dtype(), "lstm_sequence", T => {
            let gxv = gx.to_vec::<T>();
            // Contiguous once per sequence: every step streams it row by row.
            let w_t = w_hh.detach().t().contiguous();
            let mut y = vec![T::from_f64(0.0); t_len * n * 2 * h];
            let mut act = vec![T::from_f64(0.0); t_len * n * 5 * h];
            let mut h_prev = h0.detach();
            let mut c_prev = c0.to_vec::<T>();
            for step in 0..t_len {
                let t = if reverse { t_len - 1 - step } else { step };
                let rec = h_prev.matmul(&w_t).to_vec::<T>();
                let mut h_new = vec![T::from_f64(0.0); n * h];
                let mut c_new = vec![T::from_f64(0.0); n * h];
                for r in 0..n {
                    let a = &gxv[(t * n + r) * 4 * h..][..4 * h];
                    let ra = &rec[r * 4 * h..][..4 * h];
                    let sv = &mut act[(t * n + r) * 5 * h..][..5 * h];
                    let yv = &mut y[(t * n + r) * 2 * h..][..2 * h];
                    for j in 0..h {
                        let gate = |k: usize| a[k * h + j].to_f64() + ra[k * h + j].to_f64();
                        let (i, f, g, o) = (sigmoid(gate(0)), sigmoid(gate(1)), gate(2).tanh(), sigmoid(gate(3)));
                        let c = f * c_prev[r * h + j].to_f64() + i * g;
                        let tc = c.tanh();
                        for (k, v) in [i, f, g, o, tc].into_iter().enumerate() {
                            sv[k * h + j] = T::from_f64(v);
                        }
                        // Round the states once, so the stored and the carried values agree.
                        let (hv, cv) = (T::from_f64(o * tc), T::from_f64(c));
                        yv[j] = hv;
                        yv[h + j] = cv;
                        h_new[r * h + j] = hv;
                        c_new[r * h + j] = cv;
                    }
                }
                h_prev = Tensor::from_vec(h_new, &[n, h]);
                c_prev = c_new;
            }
            (Tensor::from_vec(y, &[t_len, n, 2 * h]), Tensor::from_vec(act, &[t_len, n, 5 * h]))
        })
    });
    Tensor::from_op(y.clone(), &[gx, w_hh, h0, c0], || LstmSequenceBackward {
        gx: gx.clone(),
        w_hh: w_hh.clone(),
        h0: h0.clone(),
        c0: c0.clone(),
        y: y.detach(),
        act,
        reverse,
    })
}

/// The same recurrence written with per-step tensor ops: the reference the fused op is tested against.
#[cfg(test)]
pub(crate) fn lstm_sequence_composed(gx: &Tensor, w_hh: &Tensor, h0: &Tensor, c0: &Tensor, reverse: bool) -> Tensor {
    let t_len = gx.size(0);
    let w_t = w_hh.t();
    let (mut h, mut c) = (h0.clone(), c0.clone());
    let mut ys: Vec<Option<Tensor>> = vec![None; t_len];
    for step in 0..t_len {
        let t = if reverse { t_len - 1 - step } else { step };
        let gates = gx.narrow(0, t, 1).squeeze(0) + h.matmul(&w_t);
        let ch = gates.chunk(4, -1);
        let (i, f, g, o) = (ch[0].sigmoid(), ch[1].sigmoid(), ch[2].tanh(), ch[3].sigmoid());
        c = &f * &c + &i * &g;
        h = &o * &c.tanh();
        ys[t] = Some(Tensor::cat(&[&h, &c], -1));
    }
    let ys: Vec<Tensor> = ys.into_iter().flatten().collect();
    Tensor::stack(&ys.iter().collect::<Vec<_>>(), 0)
}

struct LstmSequenceBackward {
    gx: Tensor,
    w_hh: Tensor,
    h0: Tensor,
    c0: Tensor,
    /// `[T, N, 2H]`: h_t and c_t of every step.
    y: Tensor,
    /// `[T, N, 5H]`: i, f, g, o, tanh(c_t) of every step.
    act: Tensor,
    reverse: bool,
}

impl LstmSequenceBackward {
    /// Time indices in processing order.
    fn order(&self) -> Vec<usize> {
        let t_len = self.gx.size(0);
        if self.reverse {
            (0..t_len).rev().collect()
        } else {
            (0..t_len).collect()
        }
    }

    /// BPTT with the elementwise part fused into one loop per step (plain backward).
    fn backward_fused(&self, dy: &Tensor) -> [Tensor; 4] {
        let (t_len, n, h) = (self.gx.size(0), self.h0.size(0), self.h0.size(1));
        let order = self.order();
        crate::dispatch_float!(dy.dtype(), "lstm_sequence", T => {
            let dyv = dy.to_vec::<T>();
            let act = self.act.to_vec::<T>();
            let y = self.y.to_vec::<T>();
            let c0 = self.c0.detach().to_vec::<T>();
            let zero = T::from_f64(0.0);
            let mut dgx = vec![zero; t_len * n * 4 * h];
            let mut dh_next = vec![zero; n * h];
            let mut dc_next = vec![zero; n * h];
            let w = self.w_hh.detach();
            for (pos, &t) in order.iter().enumerate().rev() {
                let prev = (pos > 0).then(|| order[pos - 1]);
                let mut da = vec![zero; n * 4 * h];
                for r in 0..n {
                    let sv = &act[(t * n + r) * 5 * h..][..5 * h];
                    let d = &dyv[(t * n + r) * 2 * h..][..2 * h];
                    for j in 0..h {
                        let [i, f, g, o, tc] = [0, 1, 2, 3, 4].map(|k| sv[k * h + j].to_f64());
                        let c_prev = match prev {
                            Some(p) => y[(p * n + r) * 2 * h + h + j].to_f64(),
                            None => c0[r * h + j].to_f64(),
                        };
                        let dh = d[j].to_f64() + dh_next[r * h + j].to_f64();
                        let dc = d[h + j].to_f64() + dc_next[r * h + j].to_f64() + dh * o * (1.0 - tc * tc);
                        let row = &mut da[r * 4 * h..][..4 * h];
                        row[j] = T::from_f64(dc * g * i * (1.0 - i));
                        row[h + j] = T::from_f64(dc * c_prev * f * (1.0 - f));
                        row[2 * h + j] = T::from_f64(dc * i * (1.0 - g * g));
                        row[3 * h + j] = T::from_f64(dh * tc * o * (1.0 - o));
                        dc_next[r * h + j] = T::from_f64(dc * f);
                    }
                }
                dgx[t * n * 4 * h..][..n * 4 * h].copy_from_slice(&da);
                dh_next = Tensor::from_vec(da, &[n, 4 * h]).matmul(&w).to_vec::<T>();
            }
            let dgx = Tensor::from_vec(dgx, &[t_len, n, 4 * h]);
            // dW_hh = sum_t da[t]^T h_prev[t]: h_prev of every step, gathered in time order.
            let h_prev: Vec<Tensor> = (0..t_len)
                .map(|t| {
                    let pos = order.iter().position(|&s| s == t).unwrap_or(0);
                    if pos == 0 { self.h0.detach() } else { self.y.narrow(0, order[pos - 1], 1).squeeze(0).narrow(1, 0, h) }
                })
                .collect();
            let h_prev = Tensor::stack(&h_prev.iter().collect::<Vec<_>>(), 0).reshape([t_len * n, h]);
            let dw = dgx.reshape([t_len * n, 4 * h]).t().matmul(&h_prev);
            [dgx, dw, Tensor::from_vec(dh_next, &[n, h]), Tensor::from_vec(dc_next, &[n, h])]
        })
    }

    /// BPTT as tensor ops over a forward recomputed with a graph (under `create_graph`).
    fn backward_recorded(&self, dy: &Tensor) -> [Tensor; 4] {
        let (t_len, h) = (self.gx.size(0), self.h0.size(1));
        let order = self.order();
        let w_t = self.w_hh.t();
        // Recompute the forward with a graph, keeping what the backward needs per step.
        struct Step {
            i: Tensor,
            f: Tensor,
            g: Tensor,
            o: Tensor,
            tc: Tensor,
            c_prev: Tensor,
            h_prev: Tensor,
        }
        let (mut hs, mut cs) = (self.h0.clone(), self.c0.clone());
        let mut steps: Vec<Option<Step>> = (0..t_len).map(|_| None).collect();
        for &t in &order {
            let gates = self.gx.narrow(0, t, 1).squeeze(0) + hs.matmul(&w_t);
            let ch = gates.chunk(4, -1);
            let (i, f, g, o) = (ch[0].sigmoid(), ch[1].sigmoid(), ch[2].tanh(), ch[3].sigmoid());
            let c = &f * &cs + &i * &g;
            let tc = c.tanh();
            let h_new = &o * &tc;
            steps[t] = Some(Step { i, f, g, o, tc, c_prev: cs, h_prev: hs });
            hs = h_new;
            cs = c;
        }
        let mut dh_next = self.h0.zeros_like();
        let mut dc_next = self.c0.zeros_like();
        let mut dgx: Vec<Option<Tensor>> = vec![None; t_len];
        let mut dw: Option<Tensor> = None;
        for &t in order.iter().rev() {
            let s = steps[t].as_ref().unwrap_or_else(|| unreachable!("every step was recomputed"));
            let d = dy.narrow(0, t, 1).squeeze(0);
            let dh = d.narrow(1, 0, h) + &dh_next;
            let dc = d.narrow(1, h, h) + &dc_next + &dh * &s.o * (1.0 - &s.tc * &s.tc);
            let da = Tensor::cat(
                &[
                    &(&dc * &s.g * &s.i * (1.0 - &s.i)),
                    &(&dc * &s.c_prev * &s.f * (1.0 - &s.f)),
                    &(&dc * &s.i * (1.0 - &s.g * &s.g)),
                    &(&dh * &s.tc * &s.o * (1.0 - &s.o)),
                ],
                -1,
            );
            dc_next = &dc * &s.f;
            dh_next = da.matmul(&self.w_hh);
            let dw_t = da.t().matmul(&s.h_prev);
            dw = Some(match dw {
                Some(acc) => acc + dw_t,
                None => dw_t,
            });
            dgx[t] = Some(da);
        }
        let dgx: Vec<Tensor> = dgx.into_iter().flatten().collect();
        let dw = dw.unwrap_or_else(|| self.w_hh.zeros_like());
        [Tensor::stack(&dgx.iter().collect::<Vec<_>>(), 0), dw, dh_next, dc_next]
    }
}

impl Backward for LstmSequenceBackward {
    fn name(&self) -> &'static str {
        "lstm_sequence"
    }

    fn backward(&self, dy: &Tensor, needs: &[bool]) -> Vec<Option<Tensor>> {
        let grads = if is_grad_enabled() { self.backward_recorded(dy) } else { self.backward_fused(dy) };
        grads.into_iter().zip(needs).map(|(g, &need)| need.then_some(g)).collect()
    }

    fn saved_bytes(&self) -> usize {
        (self.y.numel() + self.act.numel()) * self.y.dtype().size_in_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{gradcheck, gradgradcheck, DType, GradcheckOptions};

    fn inputs() -> Vec<Tensor> {
        crate::manual_seed(3);
        let r = |s: &[usize]| Tensor::randn(s).to_dtype(DType::F64).requires_grad_();
        vec![r(&[3, 2, 8]), r(&[8, 2]) * 0.5, r(&[2, 2]), r(&[2, 2])]
            .into_iter()
            .map(|t| t.detach().requires_grad_())
            .collect()
    }

    #[test]
    fn fused_sequence_matches_composition_values_and_gradients() {
        let ts = inputs();
        let refs: Vec<&Tensor> = ts.iter().collect();
        for reverse in [false, true] {
            let fused = lstm_sequence(&ts[0], &ts[1], &ts[2], &ts[3], reverse);
            let composed = lstm_sequence_composed(&ts[0], &ts[1], &ts[2], &ts[3], reverse);
            assert!((&fused - &composed).abs().max().item() < 1e-14, "forward, reverse={reverse}");
            let w = Tensor::randn(&[3, 2, 4]).to_dtype(DType::F64);
            let gf = crate::grad(&[&(&fused * &w).sum()], &refs, None, false);
            let gc = crate::grad(&[&(&composed * &w).sum()], &refs, None, false);
            for (k, (a, b)) in gf.iter().zip(&gc).enumerate() {
                let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
                assert!((a - b).abs().max().item() < 1e-13, "gradient of input {k}, reverse={reverse}");
            }
        }
    }

    #[test]
    fn fused_sequence_gradcheck_and_second_order() {
        let ts = inputs();
        for reverse in [false, true] {
            let f = |t: &[Tensor]| lstm_sequence(&t[0], &t[1], &t[2], &t[3], reverse);
            gradcheck(f, &ts, GradcheckOptions::default()).unwrap();
            let g = |t: &[Tensor]| f(t).powf(2.0).sum();
            gradgradcheck(g, &ts, GradcheckOptions::default()).unwrap();
        }
    }
}
