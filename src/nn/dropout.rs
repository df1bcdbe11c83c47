//! [`Dropout`]: inverted dropout, `torch.nn.Dropout`.
//!
//! ```text
//! train:    m ~ Bernoulli(1 - p) per element,  y = x * m / (1 - p),  dx = dy * m / (1 - p)
//! eval:     y = x,  dx = dy
//! ```
//! The mask comes from the global seeded generator (`tensorgrad::manual_seed`), so runs are reproducible.

use super::functional::{dropout, py_float};
use super::Module;
use crate::error::panic_msg;
use crate::tensor::Tensor;
use std::sync::atomic::{AtomicBool, Ordering};

/// Zeroes elements with probability `p` in training mode (scaling the rest by `1 / (1 - p)`); the identity
/// in evaluation mode.
///
/// # Shapes
/// Any; the output has the input's shape.
pub struct Dropout {
    /// Probability of zeroing an element.
    pub p: f64,
    training: AtomicBool,
}

impl Dropout {
    /// `Dropout(p)`; PyTorch's default is `p = 0.5` ([`Default`]).
    ///
    /// # Panics
    /// If `p` is outside `[0, 1]`.
    #[track_caller]
    pub fn new(p: f64) -> Dropout {
        if !(0.0..=1.0).contains(&p) {
            panic_msg(format!("Dropout: probability has to be between 0 and 1, but got {p}"));
        }
        Dropout { p, training: AtomicBool::new(true) }
    }
}

impl Default for Dropout {
    fn default() -> Self {
        Dropout::new(0.5)
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor) -> Tensor {
        dropout(x, self.p, self.is_training())
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }

    fn set_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }

    fn is_training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }

    fn describe(&self) -> String {
        format!("Dropout(p={}, inplace=False)", py_float(self.p))
    }
}
