//! [`Residual`]: a skip connection around any module, `y = x + inner(x)` (He et al., 2016).
//!
//! ```text
//! forward:  y = x + f(x)
//! backward: dx = dy + (df/dx)^T dy        (the identity path carries dy straight through)
//! ```

use super::{prefixed, Module};
use crate::error::shape_mismatch;
use crate::tensor::Tensor;

/// `x + inner(x)`; the inner module's parameters are named `inner.*`.
///
/// # Shapes
/// `inner` must map its input to the same shape.
///
/// # Panics
/// `forward` panics if `inner` changes the shape.
pub struct Residual<M: Module> {
    /// The wrapped branch.
    pub inner: M,
}

impl<M: Module> Residual<M> {
    /// Wraps `inner` in a skip connection.
    pub fn new(inner: M) -> Residual<M> {
        Residual { inner }
    }
}

impl<M: Module> Module for Residual<M> {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        let fx = self.inner.forward(x);
        if fx.shape() != x.shape() {
            shape_mismatch(
                "Residual",
                "the inner module must keep the shape: input vs inner output",
                x.shape(),
                fx.shape(),
            );
        }
        x + &fx
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        prefixed("inner", self.inner.named_parameters())
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        prefixed("inner", self.inner.named_buffers())
    }

    fn set_training(&self, training: bool) {
        self.inner.set_training(training)
    }

    fn is_training(&self) -> bool {
        self.inner.is_training()
    }

    fn describe(&self) -> String {
        "Residual".into()
    }

    fn summary(&self) -> String {
        format!("Residual(\n  (inner): {}\n)", self.inner.summary().replace('\n', "\n  "))
    }
}
