//! The [`Module`] trait: a forward pass plus named parameters, like `torch.nn.Module`.
//!
//! Composition is by plain Rust structs: a custom module holds its layers as fields and lists their
//! parameters under its own names with [`prefixed`]:
//!
//! ```
//! use tensorgrad::nn::{prefixed, Module};
//! use tensorgrad::Tensor;
//!
//! /// y = relu(x W^T + b), written out by hand.
//! struct Dense { weight: Tensor, bias: Tensor }
//!
//! impl Module for Dense {
//!     fn forward(&self, x: &Tensor) -> Tensor { (x.matmul(&self.weight.t()) + &self.bias).relu() }
//!     fn named_parameters(&self) -> Vec<(String, Tensor)> {
//!         vec![("weight".into(), self.weight.clone()), ("bias".into(), self.bias.clone())]
//!     }
//! }
//!
//! struct TwoLayers { first: Dense, second: Dense }
//!
//! impl Module for TwoLayers {
//!     fn forward(&self, x: &Tensor) -> Tensor { self.second.forward(&self.first.forward(x)) }
//!     fn named_parameters(&self) -> Vec<(String, Tensor)> {
//!         let mut p = prefixed("first", self.first.named_parameters());
//!         p.extend(prefixed("second", self.second.named_parameters()));
//!         p
//!     }
//! }
//!
//! let dense = |i, o| Dense { weight: Tensor::randn(&[o, i]).requires_grad_(), bias: Tensor::zeros(&[o]).requires_grad_() };
//! let model = TwoLayers { first: dense(4, 8), second: dense(8, 2) };
//! let names: Vec<String> = model.named_parameters().into_iter().map(|(n, _)| n).collect();
//! assert_eq!(names, ["first.weight", "first.bias", "second.weight", "second.bias"]);
//! assert_eq!(model.num_parameters(), 4 * 8 + 8 + 8 * 2 + 2);
//! assert_eq!(model.forward(&Tensor::randn(&[3, 4])).shape(), &[3, 2]);
//! ```

use crate::tensor::Tensor;

/// A layer or model: a forward pass over one input, and the parameters it owns (its own and its children's).
///
/// Modules with several inputs or outputs (LSTM states, attention masks) implement `forward` for the common
/// single-input case and offer richer inherent methods beside it.
pub trait Module: Send + Sync {
    /// The forward pass.
    fn forward(&self, input: &Tensor) -> Tensor;

    /// Every trainable parameter with its hierarchical name, in registration order, named like PyTorch's
    /// `state_dict` keys (`weight`, `0.bias`, `layers.1.weight`).
    fn named_parameters(&self) -> Vec<(String, Tensor)>;

    /// Non-trainable state that belongs in checkpoints (BatchNorm's running statistics), with names.
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }

    /// Switches training-mode behaviour (Dropout, BatchNorm) here and in every child.
    fn set_training(&self, _training: bool) {}

    /// Whether the module is in training mode (modules without mode-dependent behaviour say `true`).
    fn is_training(&self) -> bool {
        true
    }

    /// A one-line description in PyTorch's repr style, e.g. `Linear(in_features=4, out_features=2, bias=true)`.
    fn describe(&self) -> String {
        let full = std::any::type_name::<Self>();
        full.rsplit("::").next().unwrap_or(full).to_string()
    }

    /// A printed summary like PyTorch's model repr; containers override it to nest their children.
    fn summary(&self) -> String {
        self.describe()
    }

    /// The trainable parameters, without names.
    fn parameters(&self) -> Vec<Tensor> {
        self.named_parameters().into_iter().map(|(_, p)| p).collect()
    }

    /// Parameters and buffers: what a checkpoint stores.
    fn state_dict(&self) -> Vec<(String, Tensor)> {
        let mut state = self.named_parameters();
        state.extend(self.named_buffers());
        state
    }

    /// Total number of trainable scalars.
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(Tensor::numel).sum()
    }

    /// Clears every parameter's gradient (`set_to_none`, PyTorch's default).
    fn zero_grad(&self) {
        for p in self.parameters() {
            p.set_grad(None);
        }
    }

    /// Training mode.
    fn train(&self) {
        self.set_training(true)
    }

    /// Evaluation mode.
    fn eval(&self) {
        self.set_training(false)
    }
}

/// Prepends `prefix.` to every name: how a container lists a child's parameters.
pub fn prefixed(prefix: &str, named: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    named.into_iter().map(|(name, t)| (format!("{prefix}.{name}"), t)).collect()
}

/// Modules applied one after another; children are named `0`, `1`, ... as in `torch.nn.Sequential`.
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    /// An empty sequence.
    pub fn new() -> Sequential {
        Sequential { layers: Vec::new() }
    }

    /// Appends a layer (builder style).
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: impl Module + 'static) -> Sequential {
        self.layers.push(Box::new(layer));
        self
    }

    /// Appends a boxed layer.
    pub fn push(&mut self, layer: Box<dyn Module>) {
        self.layers.push(layer);
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[Box<dyn Module>] {
        &self.layers
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there are no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl Module for Sequential {
    fn forward(&self, input: &Tensor) -> Tensor {
        let mut x = input.clone();
        for layer in &self.layers {
            x = layer.forward(&x);
        }
        x
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        self.layers.iter().enumerate().flat_map(|(i, l)| prefixed(&i.to_string(), l.named_parameters())).collect()
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        self.layers.iter().enumerate().flat_map(|(i, l)| prefixed(&i.to_string(), l.named_buffers())).collect()
    }

    fn set_training(&self, training: bool) {
        for layer in &self.layers {
            layer.set_training(training);
        }
    }

    fn is_training(&self) -> bool {
        self.layers.iter().all(|l| l.is_training())
    }

    fn describe(&self) -> String {
        "Sequential".into()
    }

    fn summary(&self) -> String {
        let mut s = String::from("Sequential(\n");
        for (i, layer) in self.layers.iter().enumerate() {
            let child = layer.summary().replace('\n', "\n  ");
            s.push_str(&format!("  ({i}): {child}\n"));
        }
        s.push(')');
        s
    }
}
