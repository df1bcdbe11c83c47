//! Neural-network layers built on the engine: the [`Module`] trait, layers (one file each), losses and
//! initializers. Parameter names, shapes and defaults follow PyTorch, so weights move between the two
//! unchanged.

mod module;

pub use module::{prefixed, Module, Sequential};

mod attention;
mod positional;
mod rnn;
mod transformer;

pub use attention::{scaled_dot_product_attention, scaled_dot_product_attention_with_weights, MultiheadAttention};
pub use positional::{sinusoidal_positional_encoding, LearnedPositionalEncoding, SinusoidalPositionalEncoding};
pub use rnn::{Gru, Lstm, Nonlinearity, Rnn, RnnOptions};
pub use transformer::{DecoderBlock, FeedForwardActivation, TransformerEncoderLayer, TransformerEncoderLayerOptions};
