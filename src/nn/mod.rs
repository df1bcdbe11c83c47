//! Neural-network layers built on the engine: the [`Module`] trait, layers (one file each), losses and
//! initializers. Parameter names, shapes and defaults follow PyTorch, so weights move between the two
//! unchanged.

mod module;

pub use module::{prefixed, Module, Sequential};
