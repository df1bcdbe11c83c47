//! Transformer blocks: [`TransformerEncoderLayer`] (`torch.nn.TransformerEncoderLayer`, post- or pre-norm)
//! and a GPT-style [`DecoderBlock`] (pre-norm, causal self-attention, 4x GELU MLP), with PyTorch's parameter
//! names so weights move unchanged.
//!
//! # Math (`SA` = multi-head self-attention, `FF(x) = linear2(dropout(act(linear1(x))))`, `LN` = layer norm)
//! ```text
//! post-norm (norm_first = false):  x = LN1(x + dropout1(SA(x)));   x = LN2(x + dropout2(FF(x)))
//! pre-norm  (norm_first = true):   x = x + dropout1(SA(LN1(x)));   x = x + dropout2(FF(LN2(x)))
//! DecoderBlock:                    x = x + SA_causal(LN1(x));      x = x + mlp.2(gelu(mlp.0(LN2(x))))
//! LN(x) = (x - mean) / sqrt(var + eps) * weight + bias   (biased variance over the last dim)
//! ```
//! The layers are `nn::Linear`, the fused `nn::LayerNorm` and `MultiheadAttention` (whose self-attention
//! without explicit masks or dropout is one fused op); backward is derived by autograd from these.
//!
//! # Shapes
//! - `TransformerEncoderLayer`: src `[S, N, E]` (`[N, S, E]` with `batch_first`, `[S, E]` unbatched) -> same.
//! - `DecoderBlock`: `[N, T, E]` (batch-first, like the reference GPT) -> same.
//! - Parameters: `self_attn.*` / `att.*` as [`MultiheadAttention`]; `linear1.weight` `[F, E]`, `linear2.weight`
//!   `[E, F]` (Linear's default init U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias); norms `[E]`
//!   (ones, zeros).

use super::functional::dropout;
use super::fused_linear::fused_linear;
use super::{prefixed, LayerNorm, Linear, Module, MultiheadAttention};
use crate::error::panic_msg;
use crate::tensor::{DType, Tensor};
use crate::GeluApprox;
use std::sync::atomic::{AtomicBool, Ordering};

/// The feed-forward activation of a [`TransformerEncoderLayer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FeedForwardActivation {
    /// `relu` (PyTorch's default).
    #[default]
    Relu,
    /// Exact (erf) `gelu`.
    Gelu,
}

/// Hyperparameters of a [`TransformerEncoderLayer`], with PyTorch's defaults; set with the builder methods.
#[derive(Clone, Debug, PartialEq)]
pub struct TransformerEncoderLayerOptions {
    /// Model width `E`.
    pub d_model: usize,
    /// Attention heads (must divide `d_model`).
    pub nhead: usize,
    /// Hidden width of the feed-forward block (default 2048).
    pub dim_feedforward: usize,
    /// Dropout probability in attention, after each sublayer and inside the feed-forward (default 0.1).
    pub dropout: f64,
    /// Feed-forward activation (default relu).
    pub activation: FeedForwardActivation,
    /// LayerNorm epsilon (default 1e-5).
    pub layer_norm_eps: f64,
    /// `[N, S, E]` instead of `[S, N, E]` (default false).
    pub batch_first: bool,
    /// Pre-norm instead of post-norm (default false).
    pub norm_first: bool,
    /// Parameter dtype (default f32).
    pub dtype: DType,
}

impl TransformerEncoderLayerOptions {
    /// PyTorch's defaults for the given width and heads.
    pub fn new(d_model: usize, nhead: usize) -> Self {
        TransformerEncoderLayerOptions {
            d_model,
            nhead,
            dim_feedforward: 2048,
            dropout: 0.1,
            activation: FeedForwardActivation::Relu,
            layer_norm_eps: 1e-5,
            batch_first: false,
            norm_first: false,
            dtype: DType::F32,
        }
    }

    /// Sets `dim_feedforward`.
    pub fn dim_feedforward(mut self, dim: usize) -> Self {
        self.dim_feedforward = dim;
        self
    }

    /// Sets `dropout`.
    pub fn dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }

    /// Sets the activation.
    pub fn activation(mut self, activation: FeedForwardActivation) -> Self {
        self.activation = activation;
        self
    }

    /// Sets `layer_norm_eps`.
    pub fn layer_norm_eps(mut self, eps: f64) -> Self {
        self.layer_norm_eps = eps;
        self
    }

    /// Sets `batch_first`.
    pub fn batch_first(mut self, batch_first: bool) -> Self {
        self.batch_first = batch_first;
        self
    }

    /// Sets `norm_first` (pre-norm).
    pub fn norm_first(mut self, norm_first: bool) -> Self {
        self.norm_first = norm_first;
        self
    }

    /// Sets the parameter dtype.
    pub fn dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }
}

/// Self-attention plus feed-forward with residuals and layer norms (`torch.nn.TransformerEncoderLayer`).
/// See the module docs for math and shapes.
///
/// ```
/// use tensorgrad::nn::{Module, TransformerEncoderLayer, TransformerEncoderLayerOptions};
/// use tensorgrad::Tensor;
/// let layer = TransformerEncoderLayer::new(TransformerEncoderLayerOptions::new(8, 2).dim_feedforward(16));
/// assert_eq!(layer.forward(&Tensor::randn(&[5, 3, 8])).shape(), &[5, 3, 8]);
/// assert_eq!(layer.named_parameters()[4].0, "linear1.weight");
/// ```
pub struct TransformerEncoderLayer {
    opts: TransformerEncoderLayerOptions,
    self_attn: MultiheadAttention,
    linear1: Linear,
    linear2: Linear,
    norm1: LayerNorm,
    norm2: LayerNorm,
    training: AtomicBool,
}

impl TransformerEncoderLayer {
    /// A layer with the given options.
    ///
    /// # Panics
    /// If `d_model` is not a positive multiple of `nhead`, or `dropout` is outside [0, 1].
    #[track_caller]
    pub fn new(options: TransformerEncoderLayerOptions) -> TransformerEncoderLayer {
        let o = options;
        let self_attn =
            MultiheadAttention::with_options(o.d_model, o.nhead, o.dropout, true, o.dtype).batch_first(o.batch_first);
        TransformerEncoderLayer {
            linear1: Linear::with_options(o.d_model, o.dim_feedforward, true, o.dtype),
            linear2: Linear::with_options(o.dim_feedforward, o.d_model, true, o.dtype),
            norm1: LayerNorm::with_options(&[o.d_model], o.layer_norm_eps, true, true, o.dtype),
            norm2: LayerNorm::with_options(&[o.d_model], o.layer_norm_eps, true, true, o.dtype),
            self_attn,
            opts: o,
            training: AtomicBool::new(true),
        }
    }

    /// The options this layer was built with.
    pub fn options(&self) -> &TransformerEncoderLayerOptions {
        &self.opts
    }

    /// The forward pass with masks, as PyTorch's `forward(src, src_mask, src_key_padding_mask, is_causal)`
    /// (MHA mask conventions: bool true = blocked; `is_causal` without a mask builds the causal mask).
    ///
    /// # Panics
    /// As [`MultiheadAttention::forward_qkv`], naming `MultiheadAttention`.
    #[track_caller]
    pub fn forward_with_masks(
        &self,
        src: &Tensor,
        src_mask: Option<&Tensor>,
        src_key_padding_mask: Option<&Tensor>,
        is_causal: bool,
    ) -> Tensor {
        let training = self.training.load(Ordering::Relaxed);
        let p = self.opts.dropout;
        let sa = |x: &Tensor| {
            let y = self.self_attn.forward_qkv(x, x, x, src_key_padding_mask, false, src_mask, is_causal).0;
            dropout(&y, p, training)
        };
        let ff = |x: &Tensor| {
            let h = self.linear1.forward(x);
            let h = match self.opts.activation {
                FeedForwardActivation::Relu => h.relu(),
                FeedForwardActivation::Gelu => h.gelu(GeluApprox::None),
            };
            dropout(&self.linear2.forward(&dropout(&h, p, training)), p, training)
        };
        if src.size(-1) != self.opts.d_model {
            panic_msg(format!(
                "TransformerEncoderLayer: expected src with d_model {} in the last dim, got shape {:?}",
                self.opts.d_model,
                src.shape()
            ));
        }
        if self.opts.norm_first {
            let x = src + &sa(&self.norm1.forward(src));
            &x + &ff(&self.norm2.forward(&x))
        } else {
            let x = self.norm1.forward(&(src + &sa(src)));
            self.norm2.forward(&(&x + &ff(&x)))
        }
    }
}

impl Module for TransformerEncoderLayer {
    /// `forward_with_masks(src, None, None, false)`.
    #[track_caller]
    fn forward(&self, input: &Tensor) -> Tensor {
        self.forward_with_masks(input, None, None, false)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("self_attn", self.self_attn.named_parameters());
        p.extend(prefixed("linear1", self.linear1.named_parameters()));
        p.extend(prefixed("linear2", self.linear2.named_parameters()));
        p.extend(prefixed("norm1", self.norm1.named_parameters()));
        p.extend(prefixed("norm2", self.norm2.named_parameters()));
        p
    }

    fn set_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
        self.self_attn.set_training(training);
    }

    fn is_training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }

    fn describe(&self) -> String {
        let o = &self.opts;
        format!(
            "TransformerEncoderLayer(d_model={}, nhead={}, dim_feedforward={}, dropout={}, activation={:?}, \
             batch_first={}, norm_first={})",
            o.d_model, o.nhead, o.dim_feedforward, o.dropout, o.activation, o.batch_first, o.norm_first
        )
    }
}

/// A GPT block: `x + att(ln1(x))` with a causal mask, then `x + mlp(ln2(x))` with `mlp = Linear(E, 4E), GELU,
/// Linear(4E, E)`. Batch-first `[N, T, E]`. Parameter names follow the reference model's `Block`: `ln1.*`,
/// `att.in_proj_weight`, `att.in_proj_bias`, `att.out_proj.*`, `ln2.*`, `mlp.0.*`, `mlp.2.*`.
///
/// ```
/// use tensorgrad::nn::{DecoderBlock, Module};
/// use tensorgrad::Tensor;
/// let block = DecoderBlock::new(8, 2);
/// assert_eq!(block.forward(&Tensor::randn(&[2, 5, 8])).shape(), &[2, 5, 8]);
/// assert_eq!(block.num_parameters(), 2 * 8 + (3 * 64 + 24 + 64 + 8) + 2 * 8 + (8 * 32 + 32) + (32 * 8 + 8));
/// ```
pub struct DecoderBlock {
    ln1: LayerNorm,
    att: MultiheadAttention,
    ln2: LayerNorm,
    fc: Linear,
    proj: Linear,
    dropout: f64,
    training: AtomicBool,
}

impl DecoderBlock {
    /// A block of width `d_model` with `nhead` heads, no dropout, f32.
    ///
    /// # Panics
    /// If `d_model` is not a positive multiple of `nhead`.
    #[track_caller]
    pub fn new(d_model: usize, nhead: usize) -> DecoderBlock {
        DecoderBlock::with_options(d_model, nhead, 0.0, DType::F32)
    }

    /// A block with dropout `p` (in attention and after each sublayer, training mode only) and a dtype.
    ///
    /// # Panics
    /// If `d_model` is not a positive multiple of `nhead`, or `dropout` is outside [0, 1].
    #[track_caller]
    pub fn with_options(d_model: usize, nhead: usize, dropout: f64, dtype: DType) -> DecoderBlock {
        DecoderBlock {
            ln1: LayerNorm::with_options(&[d_model], 1e-5, true, true, dtype),
            att: MultiheadAttention::with_options(d_model, nhead, dropout, true, dtype).batch_first(true),
            ln2: LayerNorm::with_options(&[d_model], 1e-5, true, true, dtype),
            fc: Linear::with_options(d_model, 4 * d_model, true, dtype),
            proj: Linear::with_options(4 * d_model, d_model, true, dtype),
            dropout,
            training: AtomicBool::new(true),
        }
    }
}

impl Module for DecoderBlock {
    /// The block over `[N, T, E]` with a causal mask.
    ///
    /// # Panics
    /// If the input is not `[N, T, E]` with this block's `E` (the message names `MultiheadAttention`).
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        let (p, training) = (self.dropout, self.training.load(Ordering::Relaxed));
        let residual_dropout = training && p > 0.0;
        let y = self.ln1.forward(x);
        let fits = y.rank() == 3 && y.size(-1) == self.att.embed_dim() && y.dtype() == self.att.out_proj().0.dtype();
        let packed = if fits && !residual_dropout { self.att.packed_self_attention(&y, true) } else { None };
        let x = match packed {
            // Fused: in-projection, attention, and out-projection with the residual added in the same node.
            Some(a) => {
                let (w, b) = self.att.out_proj();
                fused_linear(&a, w, b, None, Some(x))
            }
            None => x + &dropout(&self.att.forward_qkv(&y, &y, &y, None, false, None, true).0, p, training),
        };
        let h = fused_linear(&self.ln2.forward(&x), &self.fc.weight, self.fc.bias.as_ref(), None, None);
        if residual_dropout {
            &x + &dropout(&self.proj.forward(&h.gelu(GeluApprox::None)), p, training)
        } else {
            // GELU, projection and residual in one node that keeps only `h` (GELU is recomputed in backward).
            fused_linear(&h, &self.proj.weight, self.proj.bias.as_ref(), Some(GeluApprox::None), Some(&x))
        }
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("ln1", self.ln1.named_parameters());
        p.extend(prefixed("att", self.att.named_parameters()));
        p.extend(prefixed("ln2", self.ln2.named_parameters()));
        p.extend(prefixed("mlp.0", self.fc.named_parameters()));
        p.extend(prefixed("mlp.2", self.proj.named_parameters()));
        p
    }

    fn set_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
        self.att.set_training(training);
    }

    fn is_training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }

    fn describe(&self) -> String {
        format!(
            "DecoderBlock(d_model={}, nhead={}, dropout={})",
            self.att.embed_dim(),
            self.att.num_heads(),
            self.dropout
        )
    }
}
