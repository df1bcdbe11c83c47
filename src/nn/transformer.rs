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
//! Backward is derived by autograd from the composition.
//!
//! # Shapes
//! - `TransformerEncoderLayer`: src `[S, N, E]` (`[N, S, E]` with `batch_first`, `[S, E]` unbatched) -> same.
//! - `DecoderBlock`: `[N, T, E]` (batch-first, like the reference GPT) -> same.
//! - Parameters: `self_attn.*` / `att.*` as [`MultiheadAttention`]; `linear1.weight` `[F, E]`, `linear2.weight`
//!   `[E, F]` (Linear's default init U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias); norms `[E]`
//!   (ones, zeros).

use super::attention::{dropout, linear};
use super::{prefixed, Module, MultiheadAttention};
use crate::error::panic_msg;
use crate::tensor::{DType, Tensor};
use crate::GeluApprox;
use std::sync::atomic::{AtomicBool, Ordering};

/// A private Linear: `weight` `[out, in]`, `bias` `[out]`, PyTorch's default init.
// Switches to `nn::Linear` when that lands on main (the lead merges it).
struct Dense {
    weight: Tensor,
    bias: Tensor,
}

impl Dense {
    fn new(in_features: usize, out_features: usize, dtype: DType) -> Dense {
        let b = 1.0 / (in_features as f64).sqrt();
        Dense {
            weight: Tensor::uniform_dtype(&[out_features, in_features], -b, b, dtype).requires_grad_(),
            bias: Tensor::uniform_dtype(&[out_features], -b, b, dtype).requires_grad_(),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        linear(x, &self.weight, Some(&self.bias))
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![("weight".into(), self.weight.clone()), ("bias".into(), self.bias.clone())]
    }
}

/// A private LayerNorm over the last dim: `weight` (ones), `bias` (zeros) `[E]`.
// Switches to `nn::LayerNorm` (and its fused op) when that lands on main (the lead merges it).
struct Norm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl Norm {
    fn new(dim: usize, eps: f64, dtype: DType) -> Norm {
        Norm {
            weight: Tensor::ones_dtype(&[dim], dtype).requires_grad_(),
            bias: Tensor::zeros_dtype(&[dim], dtype).requires_grad_(),
            eps,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let mean = x.mean_dim(-1, true);
        let centered = x - &mean;
        let var = (&centered * &centered).mean_dim(-1, true);
        centered * (var + self.eps).rsqrt() * &self.weight + &self.bias
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![("weight".into(), self.weight.clone()), ("bias".into(), self.bias.clone())]
    }
}

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
    linear1: Dense,
    linear2: Dense,
    norm1: Norm,
    norm2: Norm,
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
            linear1: Dense::new(o.d_model, o.dim_feedforward, o.dtype),
            linear2: Dense::new(o.dim_feedforward, o.d_model, o.dtype),
            norm1: Norm::new(o.d_model, o.layer_norm_eps, o.dtype),
            norm2: Norm::new(o.d_model, o.layer_norm_eps, o.dtype),
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
        let p = if self.training.load(Ordering::Relaxed) { self.opts.dropout } else { 0.0 };
        let sa = |x: &Tensor| {
            let y = self.self_attn.forward_qkv(x, x, x, src_key_padding_mask, false, src_mask, is_causal).0;
            dropout(&y, p)
        };
        let ff = |x: &Tensor| {
            let h = self.linear1.forward(x);
            let h = match self.opts.activation {
                FeedForwardActivation::Relu => h.relu(),
                FeedForwardActivation::Gelu => h.gelu(GeluApprox::None),
            };
            dropout(&self.linear2.forward(&dropout(&h, p)), p)
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
    ln1: Norm,
    att: MultiheadAttention,
    ln2: Norm,
    fc: Dense,
    proj: Dense,
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
            ln1: Norm::new(d_model, 1e-5, dtype),
            att: MultiheadAttention::with_options(d_model, nhead, dropout, true, dtype).batch_first(true),
            ln2: Norm::new(d_model, 1e-5, dtype),
            fc: Dense::new(d_model, 4 * d_model, dtype),
            proj: Dense::new(4 * d_model, d_model, dtype),
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
        let p = if self.training.load(Ordering::Relaxed) { self.dropout } else { 0.0 };
        let y = self.ln1.forward(x);
        let x = x + &dropout(&self.att.forward_qkv(&y, &y, &y, None, false, None, true).0, p);
        let h = self.fc.forward(&self.ln2.forward(&x)).gelu(GeluApprox::None);
        &x + &dropout(&self.proj.forward(&h), p)
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
