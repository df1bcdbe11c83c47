//! The fused LSTM cell: from the summed gate pre-activations and the previous cell state to the new hidden
//! and cell state in one pass (one allocation, one loop), instead of ~12 elementwise ops.
//!
//! forward (per row, with `gates = x W_ih^T + b_ih + h W_hh^T + b_hh` of shape `[N, 4H]`, order i, f, g, o):
//! ```text
//! i = sigmoid(a_i)   f = sigmoid(a_f)   g = tanh(a_g)   o = sigmoid(a_o)
//! c' = f * c + i * g
//! h' = o * tanh(c')
//! out = [h' | c']                     shape [N, 2H]: one output carries both states
//! ```
//! backward (`dh`, `dc` are the two halves of the output gradient):
//! ```text
//! dc~ = dc + dh * o * (1 - tanh(c')^2)
//! da_i = dc~ * g * i (1 - i)     da_f = dc~ * c * f (1 - f)
//! da_g = dc~ * i * (1 - g^2)     da_o = dh * tanh(c') * o (1 - o)
//! dc_prev = dc~ * f
//! ```
//! A plain backward runs these in one fused loop over saved activations; under `create_graph` the same
//! formulas run as tensor ops over recomputed activations, so second derivatives are exact.

use crate::autograd::{is_grad_enabled, Backward};
use crate::error::shape_mismatch;
use crate::tensor::{Element, Tensor};

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// One LSTM step from gate pre-activations `gates` `[N, 4H]` and cell state `c` `[N, H]` to `[h' | c']`
/// `[N, 2H]` (see the module docs).
///
/// # Panics
/// If `gates` is not `[N, 4H]` for `c` of shape `[N, H]`, or the dtypes differ.
#[track_caller]
pub(crate) fn lstm_cell(gates: &Tensor, c: &Tensor) -> Tensor {
    let (n, h) = (c.size(0), c.size(1));
    if gates.shape() != [n, 4 * h] || c.rank() != 2 || gates.dtype() != c.dtype() {
        shape_mismatch("lstm_cell", "gates must be [N, 4H] for a cell state [N, H]", gates.shape(), c.shape());
    }
    let (out, act, tc) = crate::dispatch_float!(gates.dtype(), "lstm_cell", T => {
        let a = gates.to_vec::<T>();
        let cv = c.to_vec::<T>();
        let mut out = vec![T::from_f64(0.0); n * 2 * h];
        let mut act = vec![T::from_f64(0.0); n * 4 * h];
        let mut tcv = vec![T::from_f64(0.0); n * h];
        for r in 0..n {
            let (ar, cr) = (&a[r * 4 * h..(r + 1) * 4 * h], &cv[r * h..(r + 1) * h]);
            for j in 0..h {
                let i = sigmoid(ar[j].to_f64());
                let f = sigmoid(ar[h + j].to_f64());
                let g = ar[2 * h + j].to_f64().tanh();
                let o = sigmoid(ar[3 * h + j].to_f64());
                let c2 = f * cr[j].to_f64() + i * g;
                let t = c2.tanh();
                out[r * 2 * h + j] = T::from_f64(o * t);
                out[r * 2 * h + h + j] = T::from_f64(c2);
                let ac = &mut act[r * 4 * h..];
                ac[j] = T::from_f64(i);
                ac[h + j] = T::from_f64(f);
                ac[2 * h + j] = T::from_f64(g);
                ac[3 * h + j] = T::from_f64(o);
                tcv[r * h + j] = T::from_f64(t);
            }
        }
        (Tensor::from_vec(out, &[n, 2 * h]), Tensor::from_vec(act, &[n, 4 * h]), Tensor::from_vec(tcv, &[n, h]))
    });
    Tensor::from_op(out, &[gates, c], || LstmCellBackward { gates: gates.clone(), c: c.clone(), act, tc })
}

/// The same cell written with tensor ops: the reference the fused op is tested against.
#[cfg(test)]
pub(crate) fn lstm_cell_composed(gates: &Tensor, c: &Tensor) -> (Tensor, Tensor) {
    let ch = gates.chunk(4, -1);
    let (i, f, g, o) = (ch[0].sigmoid(), ch[1].sigmoid(), ch[2].tanh(), ch[3].sigmoid());
    let c2 = &f * c + &i * &g;
    let h2 = &o * &c2.tanh();
    (h2, c2)
}

struct LstmCellBackward {
    gates: Tensor,
    c: Tensor,
    /// sigmoid/tanh-activated gates i, f, g, o: `[N, 4H]`.
    act: Tensor,
    /// tanh(c'): `[N, H]`.
    tc: Tensor,
}

impl LstmCellBackward {
    /// The backward as tensor ops over activations recomputed with a graph (used under `create_graph`).
    fn backward_recorded(&self, dy: &Tensor) -> (Tensor, Tensor) {
        let h = self.c.size(1);
        let ch = self.gates.chunk(4, -1);
        let (i, f, g, o) = (ch[0].sigmoid(), ch[1].sigmoid(), ch[2].tanh(), ch[3].sigmoid());
        let tc = (&f * &self.c + &i * &g).tanh();
        let (dh, dc) = (dy.narrow(-1, 0, h), dy.narrow(-1, h, h));
        let dct = &dc + &(&dh * &o * (1.0 - &tc * &tc));
        let da_i = &dct * &g * &i * (1.0 - &i);
        let da_f = &dct * &self.c * &f * (1.0 - &f);
        let da_g = &dct * &i * (1.0 - &g * &g);
        let da_o = &dh * &tc * &o * (1.0 - &o);
        (Tensor::cat(&[&da_i, &da_f, &da_g, &da_o], -1), &dct * &f)
    }

    /// The backward in one loop over the saved activations (plain backward).
    fn backward_fused(&self, dy: &Tensor) -> (Tensor, Tensor) {
        let (n, h) = (self.c.size(0), self.c.size(1));
        crate::dispatch_float!(dy.dtype(), "lstm_cell", T => {
            let d = dy.to_vec::<T>();
            let act = self.act.to_vec::<T>();
            let tc = self.tc.to_vec::<T>();
            let c = self.c.detach().to_vec::<T>();
            let mut dg = vec![T::from_f64(0.0); n * 4 * h];
            let mut dcp = vec![T::from_f64(0.0); n * h];
            for r in 0..n {
                for j in 0..h {
                    let a = &act[r * 4 * h..];
                    let (i, f, g, o) = (a[j].to_f64(), a[h + j].to_f64(), a[2 * h + j].to_f64(), a[3 * h + j].to_f64());
                    let t = tc[r * h + j].to_f64();
                    let dh = d[r * 2 * h + j].to_f64();
                    let dct = d[r * 2 * h + h + j].to_f64() + dh * o * (1.0 - t * t);
                    let out = &mut dg[r * 4 * h..];
                    out[j] = T::from_f64(dct * g * i * (1.0 - i));
                    out[h + j] = T::from_f64(dct * c[r * h + j].to_f64() * f * (1.0 - f));
                    out[2 * h + j] = T::from_f64(dct * i * (1.0 - g * g));
                    out[3 * h + j] = T::from_f64(dh * t * o * (1.0 - o));
                    dcp[r * h + j] = T::from_f64(dct * f);
                }
            }
            (Tensor::from_vec(dg, &[n, 4 * h]), Tensor::from_vec(dcp, &[n, h]))
        })
    }
}

impl Backward for LstmCellBackward {
    fn name(&self) -> &'static str {
        "lstm_cell"
    }

    fn backward(&self, dy: &Tensor, needs: &[bool]) -> Vec<Option<Tensor>> {
        let (dgates, dc) = if is_grad_enabled() { self.backward_recorded(dy) } else { self.backward_fused(dy) };
        vec![needs[0].then_some(dgates), needs[1].then_some(dc)]
    }

    fn saved_bytes(&self) -> usize {
        (self.act.numel() + self.tc.numel()) * self.act.dtype().size_in_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{gradcheck, gradgradcheck, DType, GradcheckOptions};

    fn inputs() -> (Tensor, Tensor) {
        crate::manual_seed(3);
        let gates = Tensor::randn(&[3, 8]).to_dtype(DType::F64).requires_grad_();
        let c = Tensor::randn(&[3, 2]).to_dtype(DType::F64).requires_grad_();
        (gates, c)
    }

    #[test]
    fn fused_cell_matches_composition_values_and_gradients() {
        let (gates, c) = inputs();
        let fused = lstm_cell(&gates, &c);
        let (h2, c2) = lstm_cell_composed(&gates, &c);
        let composed = Tensor::cat(&[&h2, &c2], -1);
        let diff: f64 = (&fused - &composed).abs().max().item();
        assert!(diff < 1e-14, "forward differs by {diff}");
        let w = Tensor::randn(&[3, 4]).to_dtype(DType::F64);
        let gf = crate::grad(&[&(&fused * &w).sum()], &[&gates, &c], None, false);
        let gc = crate::grad(&[&(&composed * &w).sum()], &[&gates, &c], None, false);
        for (a, b) in gf.iter().zip(&gc) {
            let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
            assert!((a - b).abs().max().item() < 1e-14);
        }
    }

    #[test]
    fn fused_cell_gradcheck_and_second_order() {
        let (gates, c) = inputs();
        let f = |t: &[Tensor]| lstm_cell(&t[0], &t[1]).powf(2.0).sum();
        gradcheck(f, &[gates.clone(), c.clone()], GradcheckOptions::default()).unwrap();
        gradgradcheck(f, &[gates, c], GradcheckOptions::default()).unwrap();
    }
}
