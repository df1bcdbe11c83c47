//! [`Embedding`]: a lookup table of vectors, `torch.nn.Embedding`.
//!
//! ```text
//! forward:  y[.., :] = W[idx[..], :]                          idx any shape (i64), W [num, dim]
//! backward: dW[r, :] = sum of dy[.., :] over positions with idx == r   (0 for r == padding_idx)
//! ```
//! Init: `W ~ N(0, 1)`, with the `padding_idx` row zeroed.

use super::functional::embedding;
use super::{init, Module};
use crate::error::panic_msg;
use crate::tensor::{DType, Tensor};

/// Maps `i64` indices to rows of a learned `[num_embeddings, embedding_dim]` table.
///
/// # Shapes
/// `[..]` (`i64`) -> `[.., embedding_dim]`.
///
/// # Panics
/// `forward` panics on non-`i64` input or an index outside `0..num_embeddings`.
pub struct Embedding {
    /// Rows in the table.
    pub num_embeddings: usize,
    /// Length of each vector.
    pub embedding_dim: usize,
    /// A row that stays zero (at init) and receives no gradient.
    pub padding_idx: Option<usize>,
    /// `[num_embeddings, embedding_dim]`.
    pub weight: Tensor,
}

impl Embedding {
    /// `Embedding(num_embeddings, embedding_dim)`, f32, `N(0, 1)` init.
    pub fn new(num_embeddings: usize, embedding_dim: usize) -> Embedding {
        Embedding::with_options(num_embeddings, embedding_dim, None, DType::F32)
    }

    /// With a `padding_idx` and a dtype.
    ///
    /// # Panics
    /// If `padding_idx >= num_embeddings`.
    #[track_caller]
    pub fn with_options(
        num_embeddings: usize,
        embedding_dim: usize,
        padding_idx: Option<usize>,
        dtype: DType,
    ) -> Embedding {
        let weight = Tensor::zeros_dtype(&[num_embeddings, embedding_dim], dtype);
        init::normal_(&weight, 0.0, 1.0);
        if let Some(p) = padding_idx {
            if p >= num_embeddings {
                panic_msg(format!("Embedding: padding_idx {p} must be within num_embeddings ({num_embeddings})"));
            }
            crate::no_grad(|| weight.narrow(0, p, 1).zero_());
        }
        Embedding { num_embeddings, embedding_dim, padding_idx, weight: weight.requires_grad_() }
    }

    /// An embedding over a given `[num, dim]` table (`torch.nn.Embedding.from_pretrained` with `freeze=False`).
    ///
    /// # Panics
    /// If `weight` is not 2-D.
    #[track_caller]
    pub fn from_pretrained(weight: Tensor, padding_idx: Option<usize>) -> Embedding {
        if weight.rank() != 2 {
            panic_msg(format!("Embedding: expected a 2-D weight, got shape {:?}", weight.shape()));
        }
        let (num_embeddings, embedding_dim) = (weight.shape()[0], weight.shape()[1]);
        let weight = if weight.is_leaf() && !weight.requires_grad() { weight.requires_grad_() } else { weight };
        Embedding { num_embeddings, embedding_dim, padding_idx, weight }
    }
}

impl Module for Embedding {
    #[track_caller]
    fn forward(&self, indices: &Tensor) -> Tensor {
        embedding(indices, &self.weight, self.padding_idx)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![("weight".to_string(), self.weight.clone())]
    }

    fn describe(&self) -> String {
        match self.padding_idx {
            Some(p) => format!("Embedding({}, {}, padding_idx={p})", self.num_embeddings, self.embedding_dim),
            None => format!("Embedding({}, {})", self.num_embeddings, self.embedding_dim),
        }
    }
}
