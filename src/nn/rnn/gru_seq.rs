//! The fused GRU recurrence: one op runs a whole direction of one layer over all T steps, forward and
//! backward (backpropagation through time) each in one loop, instead of ~12 graph nodes per step.
//!
//! Inputs: `gx` `[T, N, 3H]` (the input projection `x W_ih^T + b_ih` of every step, gate order r, z, n),
//! `w_hh` `[3H, H]`, `b_hh` `[3H]` (zeros for a layer without bias), `h0` `[N, H]`. Output `y` `[T, N, H]`
//! (`h_t`). Steps run t = 0..T, or T-1 down to 0 for a reverse direction; "previous" = processed before.
//!
//! forward, per step (`q = h_prev W_hh^T + b_hh`, split into q_r, q_z, q_n):
//! ```text
//! r = sigmoid(gx_r + q_r)   z = sigmoid(gx_z + q_z)   n = tanh(gx_n + r * q_n)
//! h_t = (1 - z) * n + z * h_prev
//! ```
//! backward, steps in reverse processing order, carrying dh~ (zero before the last step):
//! ```text
//! dh = dy[t] + dh~
//! da_n = dh (1 - z) (1 - n^2)   da_z = dh (h_prev - n) z (1 - z)   da_r = da_n q_n r (1 - r)
//! dgx[t] = [da_r, da_z, da_n]     dq = [da_r, da_z, da_n * r]
//! dh~ = dh * z + dq W_hh          dW_hh = sum_t dq[t]^T h_prev[t]     db_hh = sum over steps and rows of dq
//! ```
//! A plain backward runs the elementwise part in one loop per step over saved activations; under
//! `create_graph` the same formulas run as tensor ops over a recomputed forward (tested with gradgradcheck).

use crate::autograd::{is_grad_enabled, no_grad, Backward};
use crate::error::panic_msg;
use crate::tensor::{Element, Tensor};

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Runs the GRU recurrence over all steps (see the module docs); returns `[T, N, H]`.
///
/// # Panics
/// If the shapes do not fit `gx [T, N, 3H]`, `w_hh [3H, H]`, `b_hh [3H]`, `h0 [N, H]`, or the dtypes differ.
#[track_caller]
pub(crate) fn gru_sequence(gx: &Tensor, w_hh: &Tensor, b_hh: &Tensor, h0: &Tensor, reverse: bool) -> Tensor {
    let _p = crate::profile::op_scope("gru_sequence");
    let (t_len, n, h) = (gx.size(0), h0.size(0), h0.size(1));
    let ok = gx.rank() == 3
        && gx.shape() == [t_len, n, 3 * h]
        && w_hh.shape() == [3 * h, h]
        && b_hh.shape() == [3 * h]
        && [w_hh.dtype(), b_hh.dtype(), h0.dtype()].iter().all(|&d| d == gx.dtype());
    if !ok {
        panic_msg(format!(
            "gru_sequence: expected gx [T, N, 3H], w_hh [3H, H], b_hh [3H], h0 [N, H] of one dtype, got {:?}, {:?}, \
             {:?}, {:?}",
            gx.shape(),
            w_hh.shape(),
            b_hh.shape(),
            h0.shape()
        ));
    }
    let (y, act) = no_grad(|| {
        crate::dispatch_float!(gx.dtype(), "gru_sequence", T => {
            let gxv = gx.to_vec::<T>();
            // W_hh^T contiguous once per sequence: every step streams it row by row.
            let (w_t, b) = (w_hh.detach().t().contiguous(), b_hh.detach());
            let mut y = vec![T::from_f64(0.0); t_len * n * h];
            let mut act = vec![T::from_f64(0.0); t_len * n * 4 * h];
            let mut h_prev = h0.detach().contiguous();
            for step in 0..t_len {
                let t = if reverse { t_len - 1 - step } else { step };
                let q = (h_prev.matmul(&w_t) + &b).to_vec::<T>();
                let hp = h_prev.to_vec::<T>();
                let mut h_new = vec![T::from_f64(0.0); n * h];
                for row in 0..n {
                    let a = &gxv[(t * n + row) * 3 * h..][..3 * h];
                    let qr = &q[row * 3 * h..][..3 * h];
                    let sv = &mut act[(t * n + row) * 4 * h..][..4 * h];
                    for j in 0..h {
                        let r = sigmoid(a[j].to_f64() + qr[j].to_f64());
                        let z = sigmoid(a[h + j].to_f64() + qr[h + j].to_f64());
                        let qn = qr[2 * h + j].to_f64();
                        let nn = (a[2 * h + j].to_f64() + r * qn).tanh();
                        let hv = T::from_f64((1.0 - z) * nn + z * hp[row * h + j].to_f64());
                        for (k, v) in [r, z, nn, qn].into_iter().enumerate() {
                            sv[k * h + j] = T::from_f64(v);
                        }
                        y[(t * n + row) * h + j] = hv;
                        h_new[row * h + j] = hv;
                    }
                }
                h_prev = Tensor::from_vec(h_new, &[n, h]);
            }
            (Tensor::from_vec(y, &[t_len, n, h]), Tensor::from_vec(act, &[t_len, n, 4 * h]))
        })
    });
    Tensor::from_op(y.clone(), &[gx, w_hh, b_hh, h0], || GruSequenceBackward {
        gx: gx.clone(),
        w_hh: w_hh.clone(),
        b_hh: b_hh.clone(),
        h0: h0.clone(),
        y: y.detach(),
        act,
        reverse,
    })
}

/// The same recurrence written with per-step tensor ops: the reference the fused op is tested against.
#[cfg(test)]
pub(crate) fn gru_sequence_composed(gx: &Tensor, w_hh: &Tensor, b_hh: &Tensor, h0: &Tensor, reverse: bool) -> Tensor {
    let t_len = gx.size(0);
    let w_t = w_hh.t();
    let mut h = h0.clone();
    let mut ys: Vec<Option<Tensor>> = vec![None; t_len];
    for step in 0..t_len {
        let t = if reverse { t_len - 1 - step } else { step };
        let (xg, hg) = (gx.narrow(0, t, 1).squeeze(0).chunk(3, -1), (h.matmul(&w_t) + b_hh).chunk(3, -1));
        let r = (&xg[0] + &hg[0]).sigmoid();
        let z = (&xg[1] + &hg[1]).sigmoid();
        let n = (&xg[2] + &(&r * &hg[2])).tanh();
        h = (1.0 - &z) * &n + &z * &h;
        ys[t] = Some(h.clone());
    }
    let ys: Vec<Tensor> = ys.into_iter().flatten().collect();
    Tensor::stack(&ys.iter().collect::<Vec<_>>(), 0)
}

struct GruSequenceBackward {
    gx: Tensor,
    w_hh: Tensor,
    b_hh: Tensor,
    h0: Tensor,
    /// `[T, N, H]`: h_t of every step.
    y: Tensor,
    /// `[T, N, 4H]`: r, z, n, q_n of every step.
    act: Tensor,
    reverse: bool,
}

impl GruSequenceBackward {
    /// Time indices in processing order.
    fn order(&self) -> Vec<usize> {
        let t_len = self.gx.size(0);
        if self.reverse {
            (0..t_len).rev().collect()
        } else {
            (0..t_len).collect()
        }
    }

    /// The hidden state each step started from, `[T, N, H]` in time order.
    fn h_prev_all(&self, order: &[usize]) -> Tensor {
        let mut prev: Vec<Option<Tensor>> = vec![None; order.len()];
        for (pos, &t) in order.iter().enumerate() {
            prev[t] = Some(if pos == 0 { self.h0.detach() } else { self.y.narrow(0, order[pos - 1], 1).squeeze(0) });
        }
        let prev: Vec<Tensor> = prev.into_iter().flatten().collect();
        Tensor::stack(&prev.iter().collect::<Vec<_>>(), 0)
    }

    /// BPTT with the elementwise part fused into one loop per step (plain backward).
    fn backward_fused(&self, dy: &Tensor) -> [Tensor; 4] {
        let (t_len, n, h) = (self.gx.size(0), self.h0.size(0), self.h0.size(1));
        let order = self.order();
        let h_prev = self.h_prev_all(&order);
        crate::dispatch_float!(dy.dtype(), "gru_sequence", T => {
            let dyv = dy.to_vec::<T>();
            let act = self.act.to_vec::<T>();
            let hp = h_prev.to_vec::<T>();
            let zero = T::from_f64(0.0);
            let mut dgx = vec![zero; t_len * n * 3 * h];
            let mut dq_all = vec![zero; t_len * n * 3 * h];
            let mut dh_next = vec![zero; n * h];
            let w = self.w_hh.detach();
            for &t in order.iter().rev() {
                let mut dq = vec![zero; n * 3 * h];
                let mut direct = vec![zero; n * h];
                for row in 0..n {
                    let sv = &act[(t * n + row) * 4 * h..][..4 * h];
                    let gx_row = &mut dgx[(t * n + row) * 3 * h..][..3 * h];
                    for j in 0..h {
                        let [r, z, nn, qn] = [0, 1, 2, 3].map(|k| sv[k * h + j].to_f64());
                        let dh = dyv[(t * n + row) * h + j].to_f64() + dh_next[row * h + j].to_f64();
                        let da_n = dh * (1.0 - z) * (1.0 - nn * nn);
                        let da_z = dh * (hp[(t * n + row) * h + j].to_f64() - nn) * z * (1.0 - z);
                        let da_r = da_n * qn * r * (1.0 - r);
                        gx_row[j] = T::from_f64(da_r);
                        gx_row[h + j] = T::from_f64(da_z);
                        gx_row[2 * h + j] = T::from_f64(da_n);
                        let q_row = &mut dq[row * 3 * h..][..3 * h];
                        q_row[j] = T::from_f64(da_r);
                        q_row[h + j] = T::from_f64(da_z);
                        q_row[2 * h + j] = T::from_f64(da_n * r);
                        direct[row * h + j] = T::from_f64(dh * z);
                    }
                }
                dq_all[t * n * 3 * h..][..n * 3 * h].copy_from_slice(&dq);
                let through_w = Tensor::from_vec(dq, &[n, 3 * h]).matmul(&w).to_vec::<T>();
                dh_next = direct.iter().zip(&through_w).map(|(&a, &b)| T::from_f64(a.to_f64() + b.to_f64())).collect();
            }
            let dq_all = Tensor::from_vec(dq_all, &[t_len * n, 3 * h]);
            let dw = dq_all.t().matmul(&h_prev.reshape([t_len * n, h]));
            let db = dq_all.sum_dim(0, false);
            [Tensor::from_vec(dgx, &[t_len, n, 3 * h]), dw, db, Tensor::from_vec(dh_next, &[n, h])]
        })
    }

    /// BPTT as tensor ops over a forward recomputed with a graph (under `create_graph`).
    fn backward_recorded(&self, dy: &Tensor) -> [Tensor; 4] {
        let t_len = self.gx.size(0);
        let order = self.order();
        let w_t = self.w_hh.t();
        struct Step {
            r: Tensor,
            z: Tensor,
            n: Tensor,
            qn: Tensor,
            h_prev: Tensor,
        }
        let mut hs = self.h0.clone();
        let mut steps: Vec<Option<Step>> = (0..t_len).map(|_| None).collect();
        for &t in &order {
            let (xg, q) =
                (self.gx.narrow(0, t, 1).squeeze(0).chunk(3, -1), (hs.matmul(&w_t) + &self.b_hh).chunk(3, -1));
            let r = (&xg[0] + &q[0]).sigmoid();
            let z = (&xg[1] + &q[1]).sigmoid();
            let n = (&xg[2] + &(&r * &q[2])).tanh();
            let h_new = (1.0 - &z) * &n + &z * &hs;
            steps[t] = Some(Step { r, z, n, qn: q[2].clone(), h_prev: hs });
            hs = h_new;
        }
        let mut dh_next = self.h0.zeros_like();
        let mut dgx: Vec<Option<Tensor>> = vec![None; t_len];
        let mut dqs: Vec<Tensor> = Vec::new();
        let mut dw: Option<Tensor> = None;
        for &t in order.iter().rev() {
            let s = steps[t].as_ref().unwrap_or_else(|| unreachable!("every step was recomputed"));
            let dh = dy.narrow(0, t, 1).squeeze(0) + &dh_next;
            let da_n = &dh * (1.0 - &s.z) * (1.0 - &s.n * &s.n);
            let da_z = &dh * (&s.h_prev - &s.n) * &s.z * (1.0 - &s.z);
            let da_r = &da_n * &s.qn * &s.r * (1.0 - &s.r);
            let dq = Tensor::cat(&[&da_r, &da_z, &(&da_n * &s.r)], -1);
            dh_next = &dh * &s.z + dq.matmul(&self.w_hh);
            let dw_t = dq.t().matmul(&s.h_prev);
            dw = Some(match dw {
                Some(acc) => acc + dw_t,
                None => dw_t,
            });
            dgx[t] = Some(Tensor::cat(&[&da_r, &da_z, &da_n], -1));
            dqs.push(dq);
        }
        let dgx: Vec<Tensor> = dgx.into_iter().flatten().collect();
        let db = Tensor::cat(&dqs.iter().collect::<Vec<_>>(), 0).sum_dim(0, false);
        let dw = dw.unwrap_or_else(|| self.w_hh.zeros_like());
        [Tensor::stack(&dgx.iter().collect::<Vec<_>>(), 0), dw, db, dh_next]
    }
}

impl Backward for GruSequenceBackward {
    fn name(&self) -> &'static str {
        "gru_sequence"
    }

    fn backward(&self, dy: &Tensor, needs: &[bool]) -> crate::autograd::Grads {
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
        crate::manual_seed(4);
        let r = |s: &[usize], scale: f64| (Tensor::randn(s).to_dtype(DType::F64) * scale).requires_grad_();
        vec![r(&[3, 2, 6], 1.0), r(&[6, 2], 0.5), r(&[6], 0.5), r(&[2, 2], 1.0)]
    }

    #[test]
    fn fused_sequence_matches_composition_values_and_gradients() {
        let ts = inputs();
        let refs: Vec<&Tensor> = ts.iter().collect();
        for reverse in [false, true] {
            let fused = gru_sequence(&ts[0], &ts[1], &ts[2], &ts[3], reverse);
            let composed = gru_sequence_composed(&ts[0], &ts[1], &ts[2], &ts[3], reverse);
            assert!((&fused - &composed).abs().max().item() < 1e-14, "forward, reverse={reverse}");
            let w = Tensor::randn(&[3, 2, 2]).to_dtype(DType::F64);
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
            let f = |t: &[Tensor]| gru_sequence(&t[0], &t[1], &t[2], &t[3], reverse);
            gradcheck(f, &ts, GradcheckOptions::default()).unwrap();
            let g = |t: &[Tensor]| f(t).powf(2.0).sum();
            gradgradcheck(g, &ts, GradcheckOptions::default()).unwrap();
        }
    }
}
