//! The elementwise part of one LSTM step for one batch row, fused into one pass (the per-step products
//! are GEMMs; this is everything between them).
//!
//! ```text
//! gates = [a_i a_f a_g a_o]   (4w pre-activations, overwritten with i f g o)
//! i, f, o = sigmoid(a_i, a_f, a_o)     g = tanh(a_g)
//! c = f * c_prev + i * g               tc = tanh(c)         h = o * tc
//! ```
//! `f32` runs 8 lanes at a time with the same `sigmoid8`/`tanh8` as the unary kernels (so the values
//! equal those of separate `Unary::Sigmoid`/`Unary::Tanh` passes); `f64` is scalar.

use super::check_len;
use super::math::{sigmoid8, sigmoid_f64, tanh8};
use super::Float;
use wide::f32x8;

/// One LSTM cell row (see the module docs): `gates` (`4w`) in, `i f g o` out in place; `c_prev` (`w`)
/// in; `c`, `tc` and `h` (`w` each) out.
///
/// # Panics
/// If `gates.len() != 4 * c.len()` or `c_prev`, `tc`, `h` are not `c.len()` long.
///
/// ```
/// use tensorgrad_kernels::elementwise::lstm_cell_forward;
/// let mut gates = [0.0f32, 0.0, 0.0, 0.0]; // w = 1: a_i = a_f = a_g = a_o = 0
/// let (mut c, mut tc, mut h) = ([0.0f32], [0.0f32], [0.0f32]);
/// lstm_cell_forward(&mut gates, &[2.0], &mut c, &mut tc, &mut h);
/// assert_eq!(gates, [0.5, 0.5, 0.0, 0.5]); // i, f, g, o
/// assert_eq!(c, [1.0]); // 0.5 * 2 + 0.5 * 0
/// assert!((h[0] - 0.5 * 1f32.tanh()).abs() < 1e-6);
/// ```
#[track_caller]
pub fn lstm_cell_forward<T: Float>(gates: &mut [T], c_prev: &[T], c: &mut [T], tc: &mut [T], h: &mut [T]) {
    const K: &str = "lstm_cell_forward";
    let w = c.len();
    check_len(K, "gates", gates.len(), 4 * w);
    check_len(K, "c_prev", c_prev.len(), w);
    check_len(K, "tc", tc.len(), w);
    check_len(K, "h", h.len(), w);
    T::lstm_cell_forward_slice(gates, c_prev, c, tc, h);
}

/// The cell on 8 lanes: `(i, f, g, o, c, tanh(c), h)` from the pre-activations and `c_prev`.
#[inline(always)]
fn cell8(a: [f32x8; 4], c_prev: f32x8) -> ([f32x8; 4], f32x8, f32x8, f32x8) {
    let (i, f, g, o) = (sigmoid8(a[0]), sigmoid8(a[1]), tanh8(a[2]), sigmoid8(a[3]));
    let c = f * c_prev + i * g;
    let t = tanh8(c);
    ([i, f, g, o], c, t, o * t)
}

/// The `f32` kernel (lengths checked by the caller): full 8-lane blocks, then one zero-padded block.
pub(crate) fn lstm_cell_forward_f32(gates: &mut [f32], c_prev: &[f32], c: &mut [f32], tc: &mut [f32], h: &mut [f32]) {
    let w = c.len();
    let full = w / 8 * 8;
    let at = |s: &[f32], j: usize| f32x8::from(<[f32; 8]>::try_from(&s[j..j + 8]).expect("8 lanes"));
    for j in (0..full).step_by(8) {
        let a = [at(gates, j), at(gates, w + j), at(gates, 2 * w + j), at(gates, 3 * w + j)];
        let (act, cn, t, hn) = cell8(a, at(c_prev, j));
        for (q, v) in act.iter().enumerate() {
            gates[q * w + j..q * w + j + 8].copy_from_slice(v.as_array());
        }
        c[j..j + 8].copy_from_slice(cn.as_array());
        tc[j..j + 8].copy_from_slice(t.as_array());
        h[j..j + 8].copy_from_slice(hn.as_array());
    }
    let n = w - full;
    if n > 0 {
        let pad = |s: &[f32], j: usize| {
            let mut b = [0.0f32; 8];
            b[..n].copy_from_slice(&s[j..j + n]);
            f32x8::from(b)
        };
        let a = [pad(gates, full), pad(gates, w + full), pad(gates, 2 * w + full), pad(gates, 3 * w + full)];
        let (act, cn, t, hn) = cell8(a, pad(c_prev, full));
        for (q, v) in act.iter().enumerate() {
            gates[q * w + full..q * w + w].copy_from_slice(&v.as_array()[..n]);
        }
        c[full..].copy_from_slice(&cn.as_array()[..n]);
        tc[full..].copy_from_slice(&t.as_array()[..n]);
        h[full..].copy_from_slice(&hn.as_array()[..n]);
    }
}

/// The `f64` kernel (scalar; lengths checked by the caller).
pub(crate) fn lstm_cell_forward_f64(gates: &mut [f64], c_prev: &[f64], c: &mut [f64], tc: &mut [f64], h: &mut [f64]) {
    let w = c.len();
    for j in 0..w {
        let (i, f) = (sigmoid_f64(gates[j]), sigmoid_f64(gates[w + j]));
        let (g, o) = (gates[2 * w + j].tanh(), sigmoid_f64(gates[3 * w + j]));
        (gates[j], gates[w + j], gates[2 * w + j], gates[3 * w + j]) = (i, f, g, o);
        c[j] = f * c_prev[j] + i * g;
        tc[j] = c[j].tanh();
        h[j] = o * tc[j];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elementwise::{unary, Unary};

    /// The fused row against separate unary passes and the formulas, for widths around the 8-lane
    /// blocks, in f32 (same sigmoid/tanh, so equal values) and f64.
    #[test]
    fn matches_separate_passes() {
        for w in [1usize, 7, 8, 9, 16, 23] {
            let a: Vec<f32> = (0..4 * w).map(|k| ((k * 37 % 23) as f32 - 11.0) * 0.4).collect();
            let cp: Vec<f32> = (0..w).map(|k| (k as f32 - 3.0) * 0.7).collect();
            let mut g = a.clone();
            let (mut c, mut tc, mut h) = (vec![0.0f32; w], vec![0.0f32; w], vec![0.0f32; w]);
            lstm_cell_forward(&mut g, &cp, &mut c, &mut tc, &mut h);
            let mut e = vec![0.0f32; 4 * w];
            unary(Unary::Sigmoid, &a[..2 * w], &mut e[..2 * w]);
            unary(Unary::Tanh, &a[2 * w..3 * w], &mut e[2 * w..3 * w]);
            unary(Unary::Sigmoid, &a[3 * w..], &mut e[3 * w..]);
            assert_eq!(g, e, "w = {w}: activations");
            for j in 0..w {
                let cj = e[w + j] * cp[j] + e[j] * e[2 * w + j];
                assert_eq!(c[j], cj, "w = {w}: c[{j}]");
                let mut t = [0.0f32];
                unary(Unary::Tanh, &[cj], &mut t);
                assert_eq!((tc[j], h[j]), (t[0], e[3 * w + j] * t[0]), "w = {w}: tanh(c), h [{j}]");
            }
            let a64: Vec<f64> = a.iter().map(|&v| v as f64).collect();
            let cp64: Vec<f64> = cp.iter().map(|&v| v as f64).collect();
            let mut g64 = a64.clone();
            let (mut c64, mut tc64, mut h64) = (vec![0.0; w], vec![0.0; w], vec![0.0; w]);
            lstm_cell_forward(&mut g64, &cp64, &mut c64, &mut tc64, &mut h64);
            for j in 0..w {
                let s = |x: f64| 1.0 / (1.0 + (-x).exp());
                let (i, f, gg, o) = (s(a64[j]), s(a64[w + j]), a64[2 * w + j].tanh(), s(a64[3 * w + j]));
                let cj = f * cp64[j] + i * gg;
                for (got, want) in [(c64[j], cj), (tc64[j], cj.tanh()), (h64[j], o * cj.tanh()), (g64[j], i)] {
                    assert!((got - want).abs() <= 1e-15 * (1.0 + want.abs()), "w = {w}: f64 {got} vs {want}");
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "lstm_cell_forward")]
    fn wrong_gate_length_panics() {
        let mut g = [0.0f32; 7];
        let (mut c, mut tc, mut h) = ([0.0f32; 2], [0.0f32; 2], [0.0f32; 2]);
        lstm_cell_forward(&mut g, &[0.0; 2], &mut c, &mut tc, &mut h);
    }
}
