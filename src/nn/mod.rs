//! Neural-network layers built on the engine: the [`Module`] trait, layers (one file each), losses and
//! initializers. Parameter names, shapes and defaults follow PyTorch, so weights move between the two
//! unchanged.

mod module;

pub use module::{prefixed, Module, Sequential};

mod activation;
mod attention;
mod conv;
mod dropout;
mod embedding;
pub mod functional;
pub(crate) mod fused_linear;
pub mod init;
mod linear;
pub mod loss;
mod norm;
mod pool;
mod positional;
mod residual;
mod rnn;
mod transformer;

pub use activation::{Flatten, LeakyReLU, Maxout, ReLU, SiLU, Sigmoid, Softmax, Tanh, ELU, GELU};
pub use attention::{scaled_dot_product_attention, scaled_dot_product_attention_with_weights, MultiheadAttention};
pub use conv::{Conv1d, Conv2d};
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use linear::Linear;
pub use loss::{
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss, NLLLoss, Reduction,
    SmoothL1Loss,
};
pub use norm::{BatchNorm, BatchNorm1d, BatchNorm2d, LayerNorm};
pub use pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d};
pub use positional::{sinusoidal_positional_encoding, LearnedPositionalEncoding, SinusoidalPositionalEncoding};
pub use residual::Residual;
pub use rnn::{Gru, Lstm, Nonlinearity, Rnn, RnnOptions};
pub use transformer::{DecoderBlock, FeedForwardActivation, TransformerEncoderLayer, TransformerEncoderLayerOptions};
