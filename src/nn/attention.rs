//! Attention: [`scaled_dot_product_attention`] and [`MultiheadAttention`], with PyTorch's semantics,
//! parameter names, layouts and initialization.
//!
//! # Math
//! ```text
//! scores  = q k^T * scale + M            scale = 1/sqrt(E) by default; M = additive mask (0 or -inf, or floats)
//! weights = dropout(softmax(scores))     along the key dim
//! out     = weights v
//! MHA:    q, k, v = query W_q^T + b_q, key W_k^T + b_k, value W_v^T + b_v   ([W_q; W_k; W_v] = in_proj_weight)
//!         split E into num_heads heads of E/num_heads, attend per head, concatenate, out_proj
//! ```
//! Backward is derived by autograd from these ops, except that `softmax(scores * scale + M)` runs as one
//! fused op (`scaled_masked_softmax`, tested against its composition on values, gradients and second
//! derivatives) whose backward is `d scores = scale * y * (dy - sum(dy * y))` (the mask is a constant; a
//! float mask that requires grad takes the composed path so its gradient flows).
//!
//! # Mask conventions (exactly PyTorch's, which differ between the two entry points)
//! - [`scaled_dot_product_attention`]: a bool `attn_mask` is **true where a query may attend**; a float mask is
//!   added to the scores.
//! - [`MultiheadAttention`]: a bool `attn_mask` or `key_padding_mask` is **true where attention is blocked**
//!   (padding); float masks are added.
//!
//! A query row with every key blocked gives NaN, as in PyTorch.
//!
//! # Shapes
//! - SDPA: q `[..., L, E]`, k `[..., S, E]`, v `[..., S, Ev]` -> `[..., L, Ev]`; masks broadcast to `[..., L, S]`.
//! - MHA: query `[L, N, E]` (`[N, L, E]` with `batch_first`, `[L, E]` unbatched), key/value `[S, N, E]`;
//!   `attn_mask` `[L, S]` or `[N*num_heads, L, S]`; `key_padding_mask` `[N, S]` (`[S]` unbatched);
//!   output like the query; averaged weights `[N, L, S]` (`[L, S]` unbatched).
//! - Parameters: `in_proj_weight` `[3E, E]` (xavier uniform), `in_proj_bias` `[3E]` (zeros), `out_proj.weight`
//!   `[E, E]` (U(-1/sqrt(E), 1/sqrt(E)), Linear's default), `out_proj.bias` `[E]` (zeros).

use super::functional::{dropout as f_dropout, linear};
use super::fused_linear::fused_linear;
use super::Module;
use crate::autograd::{is_grad_enabled, Backward};
use crate::error::panic_msg;
use crate::tensor::{DType, Element, Tensor};
use std::sync::atomic::{AtomicBool, Ordering};
use tensorgrad_kernels::attention::{self_attention_backward, self_attention_forward, AttentionDims};

/// A float mask of `shape` with `-inf` above the diagonal (query i may attend keys j <= i).
fn causal_mask(l: usize, s: usize, dtype: DType) -> Tensor {
    let data: Vec<f64> = (0..l * s).map(|k| if k % s > k / s { f64::NEG_INFINITY } else { 0.0 }).collect();
    Tensor::from_vec(data, &[l, s]).to_dtype(dtype)
}

/// A mask as additive floats: bool `blocked` -> 0 / -inf, floats unchanged.
#[track_caller]
fn additive(op: &str, mask: &Tensor, block_when: bool, dtype: DType) -> Tensor {
    match mask.dtype() {
        DType::Bool => {
            let blocked = if block_when { mask.clone() } else { mask.logical_not() };
            Tensor::zeros_dtype(mask.shape(), dtype).masked_fill(&blocked, f64::NEG_INFINITY)
        }
        d if d == dtype => mask.clone(),
        d => panic_msg(format!("{op}: expected a bool mask or a {dtype} float mask, got dtype {d}")),
    }
}

/// softmax(scale * scores + mask) along the last dim, as one fused op; `mask` (additive, not differentiated)
/// must broadcast to `scores`.
fn scaled_masked_softmax(scores: &Tensor, mask: Option<&Tensor>, scale: f64) -> Tensor {
    let _p = crate::profile::op_scope("scaled_masked_softmax");
    if let Some(m) = mask.filter(|m| m.requires_grad()) {
        // A learned float mask: fall back to the composition so its gradient flows.
        return (scores * scale + m).softmax(-1);
    }
    let cols = scores.size(-1);
    let mask_full = mask.map(|m| m.detach().expand(scores.shape()));
    let y = crate::dispatch_float!(scores.dtype(), "scaled_masked_softmax", T => {
        let s = scores.to_vec::<T>();
        let m = mask_full.as_ref().map(|m| m.to_vec::<T>());
        let mut y = vec![T::from_f64(0.0); s.len()];
        let mut row = vec![0.0f64; cols];
        for r in 0..s.len() / cols.max(1) {
            let base = r * cols;
            let mut max = f64::NEG_INFINITY;
            for j in 0..cols {
                let mut v = s[base + j].to_f64() * scale;
                if let Some(m) = &m {
                    v += m[base + j].to_f64();
                }
                row[j] = v;
                max = max.max(v);
            }
            let max = if max.is_infinite() { 0.0 } else { max };
            let mut sum = 0.0;
            for v in row.iter_mut() {
                *v = (*v - max).exp();
                sum += *v;
            }
            for j in 0..cols {
                y[base + j] = T::from_f64(row[j] / sum);
            }
        }
        Tensor::from_vec(y, scores.shape())
    });
    Tensor::from_op(y.clone(), &[scores], || ScaledMaskedSoftmaxBackward {
        scores: scores.clone(),
        mask: mask.cloned(),
        y: y.detach(),
        scale,
    })
}

/// The composition [`scaled_masked_softmax`] is tested against (and that the fused self-attention's
/// differentiable backward uses).
fn scaled_masked_softmax_composed(scores: &Tensor, mask: Option<&Tensor>, scale: f64) -> Tensor {
    let s = scores * scale;
    match mask {
        Some(m) => (s + m).softmax(-1),
        None => s.softmax(-1),
    }
}

struct ScaledMaskedSoftmaxBackward {
    scores: Tensor,
    mask: Option<Tensor>,
    y: Tensor,
    scale: f64,
}

impl Backward for ScaledMaskedSoftmaxBackward {
    fn name(&self) -> &'static str {
        "scaled_masked_softmax"
    }

    fn backward(&self, dy: &Tensor, _: &[bool]) -> crate::autograd::Grads {
        // Under create_graph, recompute y with a graph so second derivatives see its dependence on scores.
        let y = if is_grad_enabled() && self.scores.requires_grad() {
            let s = &self.scores * self.scale;
            match &self.mask {
                Some(m) => (s + m).softmax(-1),
                None => s.softmax(-1),
            }
        } else {
            self.y.clone()
        };
        vec![Some(&y * &(dy - &(dy * &y).sum_dim(-1, true)) * self.scale)].into()
    }

    fn saved_bytes(&self) -> usize {
        self.y.numel() * self.y.dtype().size_in_bytes()
    }
}

/// `[N, L, 3E]` packed q, k, v -> three `[N, H, L, D]` views (no copies for a contiguous `qkv`).
fn split_packed_heads(qkv: &Tensor, heads: usize) -> [Tensor; 3] {
    let (n, l, e) = (qkv.size(0), qkv.size(1), qkv.size(2) / 3);
    let parts = qkv.reshape([n, l, 3, heads, e / heads]).permute(&[2, 0, 3, 1, 4]);
    [0, 1, 2].map(|i| parts.narrow(0, i, 1).squeeze(0))
}

/// `[N, H, L, D]` -> `[N, L, H*D]` (heads concatenated).
fn merge_heads(t: &Tensor) -> Tensor {
    let (n, h, l, d) = (t.size(0), t.size(1), t.size(2), t.size(3));
    t.transpose(1, 2).reshape([n, l, h * d])
}

/// Multi-head self-attention over a packed `qkv` `[N, L, 3E]` (q, k, v in thirds of the last dim, head `h`
/// at columns `h*D..` of each third) -> `[N, L, E]` with the heads concatenated, as one fused op
/// (`kernels::attention`): `softmax(q k^T * scale (+ causal mask)) v` per head. The forward saves only a
/// log-sum-exp per query row; the plain backward recomputes the probabilities from it. Under
/// `create_graph` the backward is written with tensor ops (differentiable), see [`SelfAttentionBackward`].
fn fused_self_attention(qkv: &Tensor, heads: usize, scale: f64, causal: bool) -> Tensor {
    let _p = crate::profile::op_scope("self_attention");
    let (n, l, e) = (qkv.size(0), qkv.size(1), qkv.size(2) / 3);
    let dims = AttentionDims { batch: n, len: l, heads, head_dim: e / heads };
    let (out, lse) = crate::dispatch_float!(qkv.dtype(), "self_attention", T => {
        let mut out = vec![<T as Element>::from_f64(0.0); n * l * e];
        let mut lse = vec![<T as Element>::from_f64(0.0); n * heads * l];
        qkv.with_slice(|s: &[T]| {
            self_attention_forward(dims, s, <T as Element>::from_f64(scale), causal, &mut out, &mut lse)
        });
        (Tensor::from_vec(out, &[n, l, e]), Tensor::from_vec(lse, &[n * heads * l]))
    });
    Tensor::from_op(out, &[qkv], || SelfAttentionBackward { qkv: qkv.clone(), lse, dims, scale, causal })
}

/// The composition [`fused_self_attention`] equals (its tests compare the two).
#[cfg(test)]
fn self_attention_composed(qkv: &Tensor, heads: usize, scale: f64, causal: bool) -> Tensor {
    let [q, k, v] = split_packed_heads(qkv, heads);
    let l = qkv.size(1);
    let mask = causal.then(|| causal_mask(l, l, qkv.dtype()));
    let p = scaled_masked_softmax_composed(&q.matmul(&k.transpose(-2, -1)), mask.as_ref(), scale);
    merge_heads(&p.matmul(&v))
}

/// Backward of [`fused_self_attention`]: `dP = dO V^T`, `dS = scale * P * (dP - rowsum(dP * P))`,
/// `dQ = dS K`, `dK = dS^T Q`, `dV = P^T dO`, packed back into `[N, L, 3E]`.
struct SelfAttentionBackward {
    qkv: Tensor,
    lse: Tensor,
    dims: AttentionDims,
    scale: f64,
    causal: bool,
}

impl Backward for SelfAttentionBackward {
    fn name(&self) -> &'static str {
        "self_attention"
    }

    fn backward(&self, dy: &Tensor, _: &[bool]) -> crate::autograd::Grads {
        let (qkv, scale, causal) = (&self.qkv, self.scale, self.causal);
        if is_grad_enabled() {
            // create_graph: the same formulas with tensor ops, P recomputed with a graph.
            let heads = self.dims.heads;
            let [q, k, v] = split_packed_heads(qkv, heads);
            let l = qkv.size(1);
            let mask = causal.then(|| causal_mask(l, l, qkv.dtype()));
            let p = scaled_masked_softmax_composed(&q.matmul(&k.transpose(-2, -1)), mask.as_ref(), scale);
            let d = self.dims.head_dim;
            let d_o = dy.reshape([qkv.size(0), l, heads, d]).transpose(1, 2);
            let dp = d_o.matmul(&v.transpose(-2, -1));
            let ds = &p * &(&dp - &(&dp * &p).sum_dim(-1, true)) * scale;
            let dq = merge_heads(&ds.matmul(&k));
            let dk = merge_heads(&ds.transpose(-2, -1).matmul(&q));
            let dv = merge_heads(&p.transpose(-2, -1).matmul(&d_o));
            return vec![Some(Tensor::cat(&[&dq, &dk, &dv], -1))].into();
        }
        if crate::profile::is_enabled() {
            // The profiler's estimate: S = Q K^T recomputed, dP = dO V^T, dV = P^T dO, dQ = dS K, dK = dS^T Q
            // (2 N L^2 E each, summed over heads), and the softmax backward on N H L^2 scores.
            let (n, l, e) = (qkv.size(0) as f64, qkv.size(1) as f64, (qkv.size(2) / 3) as f64);
            let flops = 10.0 * n * l * l * e + 8.0 * n * self.dims.heads as f64 * l * l;
            let bytes = (2 * qkv.numel() + dy.numel() + self.lse.numel()) as f64 * qkv.dtype().size_in_bytes() as f64;
            crate::profile::note_cost(flops, bytes);
        }
        let dqkv = crate::dispatch_float!(qkv.dtype(), "self_attention", T => {
            let mut dqkv = vec![<T as Element>::from_f64(0.0); qkv.numel()];
            qkv.with_slice(|s: &[T]| {
                self.lse.with_slice(|lse: &[T]| {
                    dy.with_slice(|g: &[T]| {
                        let sc = <T as Element>::from_f64(scale);
                        self_attention_backward(self.dims, s, lse, g, sc, causal, &mut dqkv)
                    })
                })
            });
            Tensor::from_vec(dqkv, qkv.shape())
        });
        vec![Some(dqkv)].into()
    }

    fn saved_bytes(&self) -> usize {
        self.lse.numel() * self.lse.dtype().size_in_bytes()
    }
}

/// The shared core: `(dropout(softmax(q k^T * scale + mask)) v, weights)`; `mask` is additive.
fn attend(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>, dropout_p: f64, scale: f64) -> (Tensor, Tensor) {
    let scores = q.matmul(&k.transpose(-2, -1));
    let weights = f_dropout(&scaled_masked_softmax(&scores, mask, scale), dropout_p, true);
    (weights.matmul(v), weights)
}

/// `softmax(q k^T * scale + mask) v` with dropout on the weights (`torch.nn.functional.scaled_dot_product_attention`).
///
/// `attn_mask`: bool (true = may attend) or float (added), broadcastable to `[..., L, S]`. `is_causal` masks
/// keys after each query (j > i). `scale` defaults to `1/sqrt(E)`. Dropout is applied whenever
/// `dropout_p > 0` (pass 0 in evaluation, as with PyTorch).
///
/// # Shapes
/// q `[..., L, E]`, k `[..., S, E]`, v `[..., S, Ev]` -> `[..., L, Ev]` (leading dims broadcast).
///
/// # Panics
/// If the ranks are below 2, the feature dims of q and k differ, k and v differ in length, the mask does not
/// broadcast to `[..., L, S]` or has another float dtype, or both `attn_mask` and `is_causal` are given.
///
/// ```
/// use tensorgrad::nn::scaled_dot_product_attention;
/// use tensorgrad::Tensor;
/// let q = Tensor::randn(&[2, 4, 5, 8]);
/// let out = scaled_dot_product_attention(&q, &q, &q, None, 0.0, true, None);
/// assert_eq!(out.shape(), &[2, 4, 5, 8]);
/// ```
#[track_caller]
pub fn scaled_dot_product_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    attn_mask: Option<&Tensor>,
    dropout_p: f64,
    is_causal: bool,
    scale: Option<f64>,
) -> Tensor {
    scaled_dot_product_attention_with_weights(q, k, v, attn_mask, dropout_p, is_causal, scale).0
}

/// [`scaled_dot_product_attention`] that also returns the attention weights `[..., L, S]` (after dropout).
///
/// # Panics
/// As [`scaled_dot_product_attention`].
#[track_caller]
pub fn scaled_dot_product_attention_with_weights(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    attn_mask: Option<&Tensor>,
    dropout_p: f64,
    is_causal: bool,
    scale: Option<f64>,
) -> (Tensor, Tensor) {
    const OP: &str = "scaled_dot_product_attention";
    if q.rank() < 2 || k.rank() < 2 || v.rank() < 2 {
        panic_msg(format!(
            "{OP}: expected q, k, v of rank >= 2 ([..., L, E], [..., S, E], [..., S, Ev]), got {:?}, {:?}, {:?}",
            q.shape(),
            k.shape(),
            v.shape()
        ));
    }
    let (l, e, s) = (q.size(-2), q.size(-1), k.size(-2));
    if k.size(-1) != e || v.size(-2) != s {
        panic_msg(format!(
            "{OP}: expected k [..., S, {e}] and v [..., S, Ev] with the same S, got q {:?}, k {:?}, v {:?}",
            q.shape(),
            k.shape(),
            v.shape()
        ));
    }
    if is_causal && attn_mask.is_some() {
        panic_msg(format!("{OP}: give either attn_mask or is_causal, not both"));
    }
    let mask = match attn_mask {
        Some(m) => {
            // Right-aligned against the scores' shape [..., L, S] (q's leading dims).
            let mut target = q.shape().to_vec();
            let last = target.len() - 1;
            target[last] = s;
            let ok = m.rank() <= target.len()
                && m.shape().iter().rev().zip(target.iter().rev()).all(|(&a, &b)| a == b || a == 1);
            if !ok {
                panic_msg(format!(
                    "{OP}: expected attn_mask broadcastable to [..., L, S] = [..., {l}, {s}], got {:?}",
                    m.shape()
                ));
            }
            Some(additive(OP, m, false, q.dtype()))
        }
        None => is_causal.then(|| causal_mask(l, s, q.dtype())),
    };
    let scale = scale.unwrap_or(1.0 / (e as f64).sqrt());
    attend(q, k, v, mask.as_ref(), dropout_p, scale)
}

/// Multi-head attention (`torch.nn.MultiheadAttention` with `kdim = vdim = embed_dim`, no `add_bias_kv`,
/// no `add_zero_attn`). See the module docs for math and shapes.
///
/// ```
/// use tensorgrad::nn::{Module, MultiheadAttention};
/// use tensorgrad::Tensor;
/// let mha = MultiheadAttention::new(8, 2).batch_first(true);
/// let x = Tensor::randn(&[3, 5, 8]);
/// let (out, w) = mha.forward_qkv(&x, &x, &x, None, true, None, true);
/// assert_eq!((out.shape(), w.unwrap().shape()), (&[3, 5, 8][..], &[3, 5, 5][..]));
/// assert_eq!(mha.named_parameters()[2].0, "out_proj.weight");
/// ```
pub struct MultiheadAttention {
    embed_dim: usize,
    num_heads: usize,
    dropout: f64,
    batch_first: bool,
    in_proj_weight: Tensor,
    in_proj_bias: Option<Tensor>,
    out_proj_weight: Tensor,
    out_proj_bias: Option<Tensor>,
    training: AtomicBool,
}

impl MultiheadAttention {
    /// `embed_dim` split over `num_heads` heads, no dropout, with biases, time-major, f32.
    ///
    /// # Panics
    /// If `embed_dim` is not divisible by `num_heads`.
    #[track_caller]
    pub fn new(embed_dim: usize, num_heads: usize) -> MultiheadAttention {
        MultiheadAttention::with_options(embed_dim, num_heads, 0.0, true, DType::F32)
    }

    /// All construction options (`batch_first` is set with [`batch_first`](Self::batch_first)).
    ///
    /// # Panics
    /// If `embed_dim` is 0 or not divisible by `num_heads`, `dropout` is outside [0, 1], or `dtype` is not float.
    #[track_caller]
    pub fn with_options(
        embed_dim: usize,
        num_heads: usize,
        dropout: f64,
        bias: bool,
        dtype: DType,
    ) -> MultiheadAttention {
        if embed_dim == 0 || num_heads == 0 || !embed_dim.is_multiple_of(num_heads) {
            panic_msg(format!(
                "MultiheadAttention: embed_dim must be a positive multiple of num_heads, got embed_dim {embed_dim}, \
                 num_heads {num_heads}"
            ));
        }
        if !(0.0..=1.0).contains(&dropout) || !dtype.is_float() {
            panic_msg(format!(
                "MultiheadAttention: expected dropout in [0, 1] and a float dtype, got {dropout}, {dtype}"
            ));
        }
        let e = embed_dim;
        // xavier_uniform_ on [3E, E]: fan_in = E, fan_out = 3E.
        let a = (6.0 / (e + 3 * e) as f64).sqrt();
        let in_proj_weight = Tensor::uniform_dtype(&[3 * e, e], -a, a, dtype).requires_grad_();
        // out_proj is a Linear(E, E): kaiming_uniform_(a = sqrt(5)) gives U(-1/sqrt(E), 1/sqrt(E)); bias zeroed.
        let b = 1.0 / (e as f64).sqrt();
        let out_proj_weight = Tensor::uniform_dtype(&[e, e], -b, b, dtype).requires_grad_();
        let zeros = |n: usize| Tensor::zeros_dtype(&[n], dtype).requires_grad_();
        MultiheadAttention {
            embed_dim,
            num_heads,
            dropout,
            batch_first: false,
            in_proj_weight,
            in_proj_bias: bias.then(|| zeros(3 * e)),
            out_proj_weight,
            out_proj_bias: bias.then(|| zeros(e)),
            training: AtomicBool::new(true),
        }
    }

    /// Sets `batch_first` (builder style): inputs and outputs `[N, L, E]` instead of `[L, N, E]`.
    pub fn batch_first(mut self, batch_first: bool) -> MultiheadAttention {
        self.batch_first = batch_first;
        self
    }

    /// `E`.
    pub fn embed_dim(&self) -> usize {
        self.embed_dim
    }

    /// The number of heads.
    pub fn num_heads(&self) -> usize {
        self.num_heads
    }

    /// The fused self-attention core before the out-projection: `x` `[N, L, E]` (batch-first) -> the heads'
    /// outputs concatenated, `[N, L, E]`, computed as one in-projection ([`fused_linear`]) and one fused
    /// attention op. `None` when attention dropout is active (then the composed path applies).
    pub(crate) fn packed_self_attention(&self, x: &Tensor, is_causal: bool) -> Option<Tensor> {
        let training = self.training.load(Ordering::Relaxed);
        if training && self.dropout > 0.0 {
            return None;
        }
        let qkv = fused_linear(x, &self.in_proj_weight, self.in_proj_bias.as_ref(), None, None);
        let hd = self.embed_dim / self.num_heads;
        Some(fused_self_attention(&qkv, self.num_heads, 1.0 / (hd as f64).sqrt(), is_causal))
    }

    /// `(out_proj.weight, out_proj.bias)`.
    pub(crate) fn out_proj(&self) -> (&Tensor, Option<&Tensor>) {
        (&self.out_proj_weight, self.out_proj_bias.as_ref())
    }

    /// Attention of `query` over `key`/`value`: returns the output and, if `need_weights`, the attention
    /// weights averaged over heads (after dropout, as PyTorch returns them).
    ///
    /// Masks follow PyTorch's MHA convention: bool true = blocked, floats are added. `is_causal` without
    /// `attn_mask` builds the causal mask (PyTorch requires the mask too and treats the flag as a hint);
    /// with `attn_mask` given, the mask is used as is.
    ///
    /// # Shapes
    /// query `[L, N, E]` / `[N, L, E]` (batch_first) / `[L, E]`; key, value `[S, N, E]` / `[N, S, E]` / `[S, E]`;
    /// attn_mask `[L, S]` or `[N*num_heads, L, S]`; key_padding_mask `[N, S]` (`[S]` unbatched).
    /// Output like the query; weights `[N, L, S]` (`[L, S]` unbatched).
    ///
    /// # Panics
    /// If a shape or dtype does not fit (feature dim not `embed_dim`, key and value lengths or batches differ,
    /// masks of the wrong shape); the message names the layer, expected and got.
    #[allow(clippy::too_many_arguments)]
    #[track_caller]
    pub fn forward_qkv(
        &self,
        query: &Tensor,
        key: &Tensor,
        value: &Tensor,
        key_padding_mask: Option<&Tensor>,
        need_weights: bool,
        attn_mask: Option<&Tensor>,
        is_causal: bool,
    ) -> (Tensor, Option<Tensor>) {
        const NAME: &str = "MultiheadAttention";
        let (e, heads) = (self.embed_dim, self.num_heads);
        let layout = if self.batch_first { "[N, L, E]" } else { "[L, N, E]" };
        for (what, t) in [("query", query), ("key", key), ("value", value)] {
            if (t.rank() != 2 && t.rank() != 3) || t.size(-1) != e {
                panic_msg(format!(
                    "{NAME}: expected {what} of shape {layout} (batch_first={}) or unbatched [L, E] with E = {e}, got {:?}",
                    self.batch_first,
                    t.shape()
                ));
            }
            if t.dtype() != self.in_proj_weight.dtype() {
                panic_msg(format!(
                    "{NAME}: {what} has dtype {} but the parameters have {}",
                    t.dtype(),
                    self.in_proj_weight.dtype()
                ));
            }
        }
        let batched = query.rank() == 3;
        if key.rank() != query.rank() || value.rank() != query.rank() {
            panic_msg(format!(
                "{NAME}: query, key and value must all be batched or all unbatched, got {:?}, {:?}, {:?}",
                query.shape(),
                key.shape(),
                value.shape()
            ));
        }
        // To [N, L, E].
        let to_nle = |t: &Tensor| match (batched, self.batch_first) {
            (false, _) => t.unsqueeze(0),
            (true, true) => t.clone(),
            (true, false) => t.transpose(0, 1),
        };
        let (q_in, k_in, v_in) = (to_nle(query), to_nle(key), to_nle(value));
        let (n, l, s) = (q_in.size(0), q_in.size(1), k_in.size(1));
        if k_in.size(0) != n || v_in.shape() != k_in.shape() {
            panic_msg(format!(
                "{NAME}: expected key and value of the same shape with the query's batch ({layout}), got query {:?}, \
                 key {:?}, value {:?}",
                query.shape(),
                key.shape(),
                value.shape()
            ));
        }
        let dtype = query.dtype();
        let hd = e / heads;
        let p = if self.training.load(Ordering::Relaxed) { self.dropout } else { 0.0 };
        if query.same(key) && key.same(value) && attn_mask.is_none() && key_padding_mask.is_none() && !need_weights {
            if let Some(out) = self.packed_self_attention(&q_in, is_causal) {
                let out = fused_linear(&out, &self.out_proj_weight, self.out_proj_bias.as_ref(), None, None);
                let out = match (batched, self.batch_first) {
                    (false, _) => out.squeeze(0),
                    (true, true) => out,
                    (true, false) => out.transpose(0, 1),
                };
                return (out, None);
            }
        }
        // Projections: one matmul for self-attention, three slices of the packed weight otherwise.
        let (q, k, v) = if query.same(key) && key.same(value) {
            let qkv = linear(&q_in, &self.in_proj_weight, self.in_proj_bias.as_ref()).chunk(3, -1);
            (qkv[0].clone(), qkv[1].clone(), qkv[2].clone())
        } else {
            let w = self.in_proj_weight.chunk(3, 0);
            let b = self.in_proj_bias.as_ref().map(|b| b.chunk(3, 0));
            let bias = |i: usize| b.as_ref().map(|b| b[i].clone());
            (
                linear(&q_in, &w[0], bias(0).as_ref()),
                linear(&k_in, &w[1], bias(1).as_ref()),
                linear(&v_in, &w[2], bias(2).as_ref()),
            )
        };
        // [N, T, E] -> [N, heads, T, E/heads]
        let split = |t: &Tensor, len: usize| t.reshape([n, len, heads, hd]).transpose(1, 2);
        let (q, k, v) = (split(&q, l), split(&k, s), split(&v, s));

        let mut mask: Option<Tensor> = None;
        if let Some(m) = attn_mask {
            let m = if m.shape() == [l, s] {
                additive(NAME, m, true, dtype)
            } else if m.shape() == [n * heads, l, s] {
                additive(NAME, m, true, dtype).reshape([n, heads, l, s])
            } else {
                panic_msg(format!(
                    "{NAME}: expected attn_mask of shape [L, S] = [{l}, {s}] or [N*num_heads, L, S] = [{}, {l}, {s}], \
                     got {:?}",
                    n * heads,
                    m.shape()
                ))
            };
            mask = Some(m);
        } else if is_causal {
            mask = Some(causal_mask(l, s, dtype));
        }
        if let Some(kpm) = key_padding_mask {
            let expected: Vec<usize> = if batched { vec![n, s] } else { vec![s] };
            if kpm.shape() != expected.as_slice() {
                panic_msg(format!(
                    "{NAME}: expected key_padding_mask of shape {expected:?} ([N, S], true = padding), got {:?}",
                    kpm.shape()
                ));
            }
            let kpm = additive(NAME, kpm, true, dtype).reshape([n, 1, 1, s]);
            mask = Some(match mask {
                Some(m) => m + kpm,
                None => kpm,
            });
        }
        let (out, weights) = attend(&q, &k, &v, mask.as_ref(), p, 1.0 / (hd as f64).sqrt());
        let out = out.transpose(1, 2).reshape([n, l, e]);
        let out = linear(&out, &self.out_proj_weight, self.out_proj_bias.as_ref());
        let out = match (batched, self.batch_first) {
            (false, _) => out.squeeze(0),
            (true, true) => out,
            (true, false) => out.transpose(0, 1),
        };
        let weights = need_weights.then(|| {
            let w = weights.mean_dim(1, false);
            if batched {
                w
            } else {
                w.squeeze(0)
            }
        });
        (out, weights)
    }
}

impl Module for MultiheadAttention {
    /// Self-attention without masks: `forward_qkv(x, x, x, None, false, None, false).0`.
    #[track_caller]
    fn forward(&self, input: &Tensor) -> Tensor {
        self.forward_qkv(input, input, input, None, false, None, false).0
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = vec![("in_proj_weight".to_string(), self.in_proj_weight.clone())];
        p.extend(self.in_proj_bias.iter().map(|b| ("in_proj_bias".to_string(), b.clone())));
        p.push(("out_proj.weight".to_string(), self.out_proj_weight.clone()));
        p.extend(self.out_proj_bias.iter().map(|b| ("out_proj.bias".to_string(), b.clone())));
        p
    }

    fn set_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }

    fn is_training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }

    fn describe(&self) -> String {
        format!(
            "MultiheadAttention(embed_dim={}, num_heads={}, dropout={}, batch_first={})",
            self.embed_dim, self.num_heads, self.dropout, self.batch_first
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{gradcheck, gradgradcheck, GradcheckOptions};

    #[test]
    fn fused_scaled_masked_softmax_matches_composition_values_and_gradients() {
        crate::manual_seed(5);
        let s = Tensor::randn(&[2, 3, 4]).to_dtype(DType::F64).requires_grad_();
        let mask = causal_mask(3, 4, DType::F64);
        for m in [None, Some(&mask)] {
            let fused = scaled_masked_softmax(&s, m, 0.7);
            let composed = scaled_masked_softmax_composed(&s, m, 0.7);
            assert!((&fused - &composed).abs().max().item() < 1e-14);
            let w = Tensor::randn(&[2, 3, 4]).to_dtype(DType::F64);
            let gf = crate::grad(&[&(&fused * &w).sum()], &[&s], None, false);
            let gc = crate::grad(&[&(&composed * &w).sum()], &[&s], None, false);
            let (gf, gc) = (gf[0].as_ref().unwrap(), gc[0].as_ref().unwrap());
            assert!((gf - gc).abs().max().item() < 1e-14);
            let f = |t: &[Tensor]| (scaled_masked_softmax(&t[0], m, 0.7) * &w).sum();
            gradcheck(f, std::slice::from_ref(&s), GradcheckOptions::default()).unwrap();
            gradgradcheck(f, std::slice::from_ref(&s), GradcheckOptions::default()).unwrap();
        }
    }

    #[test]
    fn fused_self_attention_matches_composition_values_and_gradients() {
        crate::manual_seed(7);
        // [N, L, 3E] with E = 6 (3 heads of 2).
        let qkv = Tensor::randn(&[2, 5, 18]).to_dtype(DType::F64).requires_grad_();
        let w = Tensor::randn(&[2, 5, 6]).to_dtype(DType::F64);
        for causal in [false, true] {
            let fused = fused_self_attention(&qkv, 3, 0.6, causal);
            let composed = self_attention_composed(&qkv, 3, 0.6, causal);
            assert!((&fused - &composed).abs().max().item() < 1e-13);
            let gf = crate::grad(&[&(&fused * &w).sum()], &[&qkv], None, false);
            let gc = crate::grad(&[&(&composed * &w).sum()], &[&qkv], None, false);
            let (gf, gc) = (gf[0].as_ref().unwrap(), gc[0].as_ref().unwrap());
            assert!((gf - gc).abs().max().item() < 1e-13);
            let f = |t: &[Tensor]| (fused_self_attention(&t[0], 3, 0.6, causal) * &w).sum();
            gradcheck(f, std::slice::from_ref(&qkv), GradcheckOptions::default()).unwrap();
            gradgradcheck(f, std::slice::from_ref(&qkv), GradcheckOptions::default()).unwrap();
        }
    }

    #[test]
    fn fused_self_attention_f32_matches_f64() {
        crate::manual_seed(8);
        let qkv = Tensor::randn(&[3, 7, 24]);
        let a = fused_self_attention(&qkv, 4, 0.5, true).to_dtype(DType::F64);
        let b = self_attention_composed(&qkv.to_dtype(DType::F64), 4, 0.5, true);
        assert!((&a - &b).abs().max().item() < 1e-5);
    }

    #[test]
    fn mha_fused_and_masked_paths_agree() {
        // is_causal (fused) vs the same causal mask given explicitly (composed path), values and gradients.
        crate::manual_seed(9);
        let mha = MultiheadAttention::with_options(8, 2, 0.0, true, DType::F64).batch_first(true);
        let x = Tensor::randn(&[2, 4, 8]).to_dtype(DType::F64).requires_grad_();
        let mask = Tensor::from_vec((0..16).map(|k| k % 4 > k / 4).collect::<Vec<bool>>(), &[4, 4]);
        let a = mha.forward_qkv(&x, &x, &x, None, false, None, true).0;
        let b = mha.forward_qkv(&x, &x, &x, None, false, Some(&mask), false).0;
        assert!((&a - &b).abs().max().item() < 1e-13);
        let w = Tensor::randn(&[2, 4, 8]).to_dtype(DType::F64);
        let ga = crate::grad(&[&(&a * &w).sum()], &[&x, &mha.in_proj_weight], None, false);
        let gb = crate::grad(&[&(&b * &w).sum()], &[&x, &mha.in_proj_weight], None, false);
        for (ga, gb) in ga.iter().zip(&gb) {
            assert!((ga.as_ref().unwrap() - gb.as_ref().unwrap()).abs().max().item() < 1e-13);
        }
    }

    #[test]
    fn learned_float_mask_gets_its_gradient() {
        crate::manual_seed(6);
        let s = Tensor::randn(&[2, 3]).to_dtype(DType::F64).requires_grad_();
        let m = Tensor::randn(&[3]).to_dtype(DType::F64).requires_grad_();
        let w = Tensor::randn(&[2, 3]).to_dtype(DType::F64);
        let f = |t: &[Tensor]| (scaled_masked_softmax(&t[0], Some(&t[1]), 0.5) * &w).sum();
        gradcheck(f, &[s, m], GradcheckOptions::default()).unwrap();
    }

    #[test]
    fn fully_masked_row_is_nan_like_pytorch() {
        let s = Tensor::zeros_dtype(&[1, 2], DType::F64);
        let m = Tensor::full_dtype(&[1, 2], f64::NEG_INFINITY, DType::F64);
        assert!(scaled_masked_softmax(&s, Some(&m), 1.0).to_vec::<f64>().iter().all(|v| v.is_nan()));
    }
}
