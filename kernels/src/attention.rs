//! Fused multi-head self-attention over a packed `qkv` matrix (the output of one in-projection GEMM), with
//! an optional causal mask, forward and backward. No copies of q, k, v per head and no `[L, L]` probability
//! tensor kept between forward and backward: the forward saves one log-sum-exp per query row and the
//! backward recomputes the probabilities from it (one extra `L x L x D` GEMM per head, FlashAttention's trade).
//!
//! # Layout
//! `qkv` is row-major `[N, L, 3E]` with `E = H·D`: row `(b, i)` holds `q_i` in columns `[0, E)`, `k_i` in
//! `[E, 2E)`, `v_i` in `[2E, 3E)`, head `h` in the `D` columns starting at `h·D` of each third (PyTorch's
//! `in_proj` layout). `out` is `[N, L, E]` with the heads already concatenated (head `h` at columns `h·D..`),
//! ready for the out-projection. `lse` is `[N, H, L]`.
//!
//! # Math (per batch `b` and head `h`; `Q, K, V` are `L x D`, `c` the scale, `M` the causal mask)
//! ```text
//! forward:  S = c·Q·Kᵀ (+ M: -inf where j > i),  m_i = max_j S_ij,  P_ij = exp(S_ij - lse_i),
//!           lse_i = m_i + ln Σ_j exp(S_ij - m_i),  O = P·V
//! backward: dP = dO·Vᵀ,  dS_ij = c·P_ij·(dP_ij - Σ_j' dP_ij'·P_ij'),
//!           dQ = dS·K,  dK = dSᵀ·Q,  dV = Pᵀ·dO
//! ```
//! A masked entry has `P = 0`, so it contributes nothing to `O` and gets `dS = 0`.
//!
//! # Parallelism
//! Batches run on the rayon pool (one task per `b`, heads in turn inside it); the per-head GEMMs are small
//! and stay on their task's thread, so results are bitwise identical for any number of threads.

use rayon::prelude::*;

use crate::elementwise::{check_len, Float};
use crate::gemm::GemmScalar;

/// Geometry of a packed self-attention problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionDims {
    /// Batch size `N`.
    pub batch: usize,
    /// Sequence length `L` (queries and keys).
    pub len: usize,
    /// Number of heads `H`.
    pub heads: usize,
    /// Head width `D` (`E = H·D`).
    pub head_dim: usize,
}

impl AttentionDims {
    /// `E = H·D`.
    pub fn embed(&self) -> usize {
        self.heads * self.head_dim
    }

    #[track_caller]
    fn check(&self, kernel: &str, qkv: usize, out: usize, lse: usize) {
        let (n, l, e) = (self.batch, self.len, self.embed());
        check_len(kernel, "qkv", qkv, n * l * 3 * e);
        check_len(kernel, "out/dout", out, n * l * e);
        check_len(kernel, "lse", lse, n * self.heads * l);
    }
}

/// Number of keys query row `i` sees.
#[inline]
fn valid_cols(i: usize, len: usize, causal: bool) -> usize {
    if causal {
        (i + 1).min(len)
    } else {
        len
    }
}

/// Per-task scratch: `S`/`P` and `dP` (`L x L`), and a transposed head of K or V (`D x L`).
struct Scratch<T> {
    s: Vec<T>,
    p: Vec<T>,
    t: Vec<T>,
}

impl<T: Float> Scratch<T> {
    fn new(d: &AttentionDims) -> Self {
        let (l, hd) = (d.len, d.head_dim);
        Scratch {
            s: vec![<T as Float>::ZERO; l * l],
            p: vec![<T as Float>::ZERO; l * l],
            t: vec![<T as Float>::ZERO; hd * l],
        }
    }
}

/// `t[p*L + j] = x[j*rs + p]`: a `L x D` strided head, transposed to a contiguous `D x L` matrix.
fn transpose_head<T: Float>(x: &[T], rs: usize, l: usize, hd: usize, t: &mut [T]) {
    for j in 0..l {
        let row = &x[j * rs..j * rs + hd];
        for (p, &v) in row.iter().enumerate() {
            t[p * l + j] = v;
        }
    }
}

/// `S = scale·Q·Kᵀ` of head `h` of batch slice `qkv_b` (`[L, 3E]`) into `sc.s`.
fn scores<T: Float + GemmScalar>(d: &AttentionDims, qkv_b: &[T], h: usize, scale: T, sc: &mut Scratch<T>) {
    let (l, hd, e) = (d.len, d.head_dim, d.embed());
    transpose_head(&qkv_b[e + h * hd..], 3 * e, l, hd, &mut sc.t);
    T::gemm(l, hd, l, scale, &qkv_b[h * hd..], 3 * e, 1, &sc.t, l, 1, <T as Float>::ZERO, &mut sc.s, l, 1);
}

/// Forward: `out` (`[N, L, E]`, heads concatenated) and `lse` (`[N, H, L]`) from `qkv` (`[N, L, 3E]`).
///
/// # Panics
/// If a slice length does not match `dims`.
#[track_caller]
pub fn self_attention_forward<T: Float + GemmScalar>(
    dims: AttentionDims,
    qkv: &[T],
    scale: T,
    causal: bool,
    out: &mut [T],
    lse: &mut [T],
) {
    dims.check("self_attention_forward", qkv.len(), out.len(), lse.len());
    let (l, hd, e, heads) = (dims.len, dims.head_dim, dims.embed(), dims.heads);
    if dims.batch == 0 || l == 0 || e == 0 {
        return;
    }
    out.par_chunks_mut(l * e).zip(lse.par_chunks_mut(heads * l)).enumerate().for_each(|(b, (out_b, lse_b))| {
        let qkv_b = &qkv[b * l * 3 * e..(b + 1) * l * 3 * e];
        let mut sc = Scratch::new(&dims);
        for h in 0..heads {
            scores(&dims, qkv_b, h, scale, &mut sc);
            for i in 0..l {
                let n = valid_cols(i, l, causal);
                let (row, prow) = (&sc.s[i * l..i * l + n], &mut sc.p[i * l..(i + 1) * l]);
                let m = T::max_slice_fast(row);
                let sum = T::exp_sub_sum(row, m, &mut prow[..n]);
                let inv = <T as Float>::ONE / sum;
                prow[..n].iter_mut().for_each(|v| *v *= inv);
                prow[n..].iter_mut().for_each(|v| *v = <T as Float>::ZERO);
                lse_b[h * l + i] = m + sum.ln();
            }
            T::gemm(
                l,
                l,
                hd,
                <T as Float>::ONE,
                &sc.p,
                l,
                1,
                &qkv_b[2 * e + h * hd..],
                3 * e,
                1,
                <T as Float>::ZERO,
                &mut out_b[h * hd..],
                e,
                1,
            );
        }
    });
}

/// Backward: `dqkv` (`[N, L, 3E]`, overwritten) from `dout` (`[N, L, E]`), the forward's `qkv` and `lse`.
///
/// # Panics
/// If a slice length does not match `dims`.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn self_attention_backward<T: Float + GemmScalar>(
    dims: AttentionDims,
    qkv: &[T],
    lse: &[T],
    dout: &[T],
    scale: T,
    causal: bool,
    dqkv: &mut [T],
) {
    dims.check("self_attention_backward", qkv.len(), dout.len(), lse.len());
    check_len("self_attention_backward", "dqkv", dqkv.len(), qkv.len());
    let (l, hd, e, heads) = (dims.len, dims.head_dim, dims.embed(), dims.heads);
    if dims.batch == 0 || l == 0 || e == 0 {
        return;
    }
    dqkv.par_chunks_mut(l * 3 * e).enumerate().for_each(|(b, dqkv_b)| {
        let qkv_b = &qkv[b * l * 3 * e..(b + 1) * l * 3 * e];
        let dout_b = &dout[b * l * e..(b + 1) * l * e];
        let lse_b = &lse[b * heads * l..(b + 1) * heads * l];
        let mut sc = Scratch::new(&dims);
        for h in 0..heads {
            // P from the saved log-sum-exp (sc.p), then dP = dO·Vᵀ (sc.s).
            scores(&dims, qkv_b, h, scale, &mut sc);
            for i in 0..l {
                let n = valid_cols(i, l, causal);
                let prow = &mut sc.p[i * l..(i + 1) * l];
                T::exp_sub_sum(&sc.s[i * l..i * l + n], lse_b[h * l + i], &mut prow[..n]);
                prow[n..].iter_mut().for_each(|v| *v = <T as Float>::ZERO);
            }
            transpose_head(&qkv_b[2 * e + h * hd..], 3 * e, l, hd, &mut sc.t);
            T::gemm(
                l,
                hd,
                l,
                <T as Float>::ONE,
                &dout_b[h * hd..],
                e,
                1,
                &sc.t,
                l,
                1,
                <T as Float>::ZERO,
                &mut sc.s,
                l,
                1,
            );
            // dS = scale·P·(dP - rowsum(dP·P)), in place of dP.
            for i in 0..l {
                let n = valid_cols(i, l, causal);
                let (p, ds) = (&sc.p[i * l..i * l + n], &mut sc.s[i * l..(i + 1) * l]);
                let mut dot = <T as Float>::ZERO;
                for (&pv, &g) in p.iter().zip(ds.iter()) {
                    dot += pv * g;
                }
                for (g, &pv) in ds[..n].iter_mut().zip(p) {
                    *g = scale * pv * (*g - dot);
                }
                ds[n..].iter_mut().for_each(|v| *v = <T as Float>::ZERO);
            }
            let (q, k) = (&qkv_b[h * hd..], &qkv_b[e + h * hd..]);
            T::gemm(
                l,
                l,
                hd,
                <T as Float>::ONE,
                &sc.s,
                l,
                1,
                k,
                3 * e,
                1,
                <T as Float>::ZERO,
                &mut dqkv_b[h * hd..],
                3 * e,
                1,
            );
            T::gemm(
                l,
                l,
                hd,
                <T as Float>::ONE,
                &sc.s,
                1,
                l,
                q,
                3 * e,
                1,
                <T as Float>::ZERO,
                &mut dqkv_b[e + h * hd..],
                3 * e,
                1,
            );
            T::gemm(
                l,
                l,
                hd,
                <T as Float>::ONE,
                &sc.p,
                1,
                l,
                &dout_b[h * hd..],
                e,
                1,
                <T as Float>::ZERO,
                &mut dqkv_b[2 * e + h * hd..],
                3 * e,
                1,
            );
        }
    });
}

/// Naive `f64` reference of [`self_attention_forward`] and [`self_attention_backward`] (direct loops, the
/// probabilities computed as `exp(S - max) / Σ`): returns `(out, dqkv)` for a given `dout`.
pub fn self_attention_reference(
    dims: AttentionDims,
    qkv: &[f64],
    dout: &[f64],
    scale: f64,
    causal: bool,
) -> (Vec<f64>, Vec<f64>) {
    let (n, l, hd, e, heads) = (dims.batch, dims.len, dims.head_dim, dims.embed(), dims.heads);
    let at = |b: usize, i: usize, c: usize| qkv[(b * l + i) * 3 * e + c];
    let mut out = vec![0.0; n * l * e];
    let mut dqkv = vec![0.0; n * l * 3 * e];
    for b in 0..n {
        for h in 0..heads {
            let (qo, ko, vo) = (h * hd, e + h * hd, 2 * e + h * hd);
            let mut p = vec![vec![0.0; l]; l];
            for (i, pi) in p.iter_mut().enumerate() {
                let nv = valid_cols(i, l, causal);
                let s: Vec<f64> = (0..nv)
                    .map(|j| scale * (0..hd).map(|c| at(b, i, qo + c) * at(b, j, ko + c)).sum::<f64>())
                    .collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = s.iter().map(|v| (v - m).exp()).sum();
                for j in 0..nv {
                    pi[j] = (s[j] - m).exp() / z;
                }
            }
            let go = |i: usize, c: usize| dout[(b * l + i) * e + h * hd + c];
            for i in 0..l {
                for c in 0..hd {
                    out[(b * l + i) * e + h * hd + c] = (0..l).map(|j| p[i][j] * at(b, j, vo + c)).sum();
                }
            }
            for i in 0..l {
                let dp: Vec<f64> = (0..l).map(|j| (0..hd).map(|c| go(i, c) * at(b, j, vo + c)).sum()).collect();
                let dot: f64 = (0..l).map(|j| dp[j] * p[i][j]).sum();
                for j in 0..l {
                    let ds = scale * p[i][j] * (dp[j] - dot);
                    for c in 0..hd {
                        dqkv[(b * l + i) * 3 * e + qo + c] += ds * at(b, j, ko + c);
                        dqkv[(b * l + j) * 3 * e + ko + c] += ds * at(b, i, qo + c);
                    }
                }
                for j in 0..l {
                    for c in 0..hd {
                        dqkv[(b * l + j) * 3 * e + vo + c] += p[i][j] * go(i, c);
                    }
                }
            }
        }
    }
    (out, dqkv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: u64, n: usize) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    fn check<T: Float + GemmScalar>(dims: AttentionDims, causal: bool, tol: f64) {
        let (n, l, e) = (dims.batch, dims.len, dims.embed());
        let qkv = lcg(1, n * l * 3 * e).iter().map(|v| v * 2.0).collect::<Vec<_>>();
        let dout = lcg(2, n * l * e);
        let scale = 1.0 / (dims.head_dim as f64).sqrt();
        let (out_ref, dqkv_ref) = self_attention_reference(dims, &qkv, &dout, scale, causal);
        let cast = |v: &[f64]| v.iter().map(|&x| T::from_f64(x)).collect::<Vec<T>>();
        let (qkv_t, dout_t) = (cast(&qkv), cast(&dout));
        let mut out = vec![T::from_f64(f64::NAN); n * l * e];
        let mut lse = vec![<T as Float>::ZERO; n * dims.heads * l];
        self_attention_forward(dims, &qkv_t, T::from_f64(scale), causal, &mut out, &mut lse);
        let mut dqkv = vec![T::from_f64(f64::NAN); n * l * 3 * e];
        self_attention_backward(dims, &qkv_t, &lse, &dout_t, T::from_f64(scale), causal, &mut dqkv);
        for (what, got, want) in [("out", &out, &out_ref), ("dqkv", &dqkv, &dqkv_ref)] {
            for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
                let g = g.to_f64();
                assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}[{i}] {g} vs {w} ({dims:?}, causal {causal})");
            }
        }
    }

    #[test]
    fn matches_reference_f64_and_f32() {
        for dims in [
            AttentionDims { batch: 2, len: 5, heads: 3, head_dim: 4 },
            AttentionDims { batch: 3, len: 17, heads: 2, head_dim: 8 },
            AttentionDims { batch: 1, len: 1, heads: 1, head_dim: 1 },
        ] {
            for causal in [false, true] {
                check::<f64>(dims, causal, 1e-12);
                check::<f32>(dims, causal, 2e-5);
            }
        }
    }

    #[test]
    fn empty_problem_is_a_no_op() {
        let dims = AttentionDims { batch: 0, len: 4, heads: 2, head_dim: 2 };
        self_attention_forward::<f32>(dims, &[], 1.0, true, &mut [], &mut []);
        self_attention_backward::<f32>(dims, &[], &[], &[], 1.0, true, &mut []);
    }
}
