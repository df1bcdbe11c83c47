//! [`Grads`]: what a [`Backward`](super::Backward) returns, dL/d(input) for each input of its op.
//!
//! Most ops have one or two inputs, so up to two gradients live inline: returning them allocates nothing
//! (a `Vec` here was one heap allocation and free per node of every backward pass, a tenth of a tiny
//! op's cost). More inputs (`cat`, fused layers) spill to the heap like a `Vec`.

use crate::tensor::Tensor;
use smallvec::SmallVec;

/// The gradients a [`Backward`](super::Backward) returns: one entry per input, in input order, `None` for an
/// input that needs no gradient (or has none).
///
/// Build it from an array, a `Vec` or an iterator:
///
/// ```
/// use tensorgrad::{Grads, Tensor};
///
/// let dx = Tensor::ones(&[3]);
/// let one: Grads = [Some(dx.clone())].into();
/// let two: Grads = [Some(dx.clone()), None].into();
/// let many: Grads = vec![None, Some(dx.clone()), Some(dx)].into();
/// assert_eq!((one.len(), two.len(), many.len()), (1, 2, 3));
/// assert!(two[1].is_none());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Grads(SmallVec<[Option<Tensor>; 2]>);

impl Grads {
    /// No gradients yet; [`push`](Self::push) them in input order.
    pub fn new() -> Grads {
        Grads(SmallVec::new())
    }

    /// Appends the gradient of the next input.
    pub fn push(&mut self, grad: Option<Tensor>) {
        self.0.push(grad);
    }

    /// The gradients as a `Vec`.
    pub fn into_vec(self) -> Vec<Option<Tensor>> {
        self.0.into_vec()
    }
}

impl<const N: usize> From<[Option<Tensor>; N]> for Grads {
    fn from(grads: [Option<Tensor>; N]) -> Grads {
        let mut out = SmallVec::new();
        for g in grads {
            out.push(g);
        }
        Grads(out)
    }
}

impl From<Vec<Option<Tensor>>> for Grads {
    fn from(grads: Vec<Option<Tensor>>) -> Grads {
        Grads(SmallVec::from_vec(grads))
    }
}

impl FromIterator<Option<Tensor>> for Grads {
    fn from_iter<I: IntoIterator<Item = Option<Tensor>>>(iter: I) -> Grads {
        Grads(iter.into_iter().collect())
    }
}

impl IntoIterator for Grads {
    type Item = Option<Tensor>;
    type IntoIter = smallvec::IntoIter<[Option<Tensor>; 2]>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl std::ops::Deref for Grads {
    type Target = [Option<Tensor>];
    fn deref(&self) -> &[Option<Tensor>] {
        &self.0
    }
}

impl std::ops::DerefMut for Grads {
    fn deref_mut(&mut self) -> &mut [Option<Tensor>] {
        &mut self.0
    }
}
