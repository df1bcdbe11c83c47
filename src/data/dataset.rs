//! The `Dataset` trait: indexed access to (input, label) samples, and the in-memory datasets built on it.
//!
//! A dataset is a fixed-length, random-access collection. Sample `i` is an input `x` of
//! [`Dataset::sample_shape`] (flattened row-major into a `Vec<f32>`) and a class label `y`. The
//! [`DataLoader`](crate::data::DataLoader) turns samples into batches; [`Transform`](crate::data::Transform)s
//! change inputs on the way (normalization, random flips and crops).
//!
//! ```
//! use tensorgrad::data::{Dataset, VecDataset};
//! // The XOR truth table: four samples of shape [2].
//! let xor = VecDataset::new(vec![0., 0., 0., 1., 1., 0., 1., 1.], vec![0, 1, 1, 0], &[2]);
//! assert_eq!(xor.len(), 4);
//! assert_eq!(xor.get(2).x, [1.0, 0.0]);
//! assert_eq!(xor.get(2).y, 1);
//! ```

use std::sync::Arc;

use super::fashion_mnist::{ImageSet, PixelScaling};

/// One example: an input and its class label.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The input, flattened row-major; its shape is the dataset's [`Dataset::sample_shape`].
    pub x: Vec<f32>,
    /// The class label (target index).
    pub y: usize,
}

/// A fixed-length collection of samples with random access.
///
/// `Send + Sync` so that a [`DataLoader`](crate::data::DataLoader) can read it from its prefetch thread.
pub trait Dataset: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;

    /// True if there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shape of every sample's input, e.g. `[1, 28, 28]` for a grayscale image (channels first).
    fn sample_shape(&self) -> Vec<usize>;

    /// Sample `index`.
    ///
    /// # Panics
    ///
    /// If `index >= len()`.
    fn get(&self, index: usize) -> Sample;
}

impl<D: Dataset + ?Sized> Dataset for Arc<D> {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn sample_shape(&self) -> Vec<usize> {
        (**self).sample_shape()
    }
    fn get(&self, index: usize) -> Sample {
        (**self).get(index)
    }
}

impl<D: Dataset + ?Sized> Dataset for Box<D> {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn sample_shape(&self) -> Vec<usize> {
        (**self).sample_shape()
    }
    fn get(&self, index: usize) -> Sample {
        (**self).get(index)
    }
}

/// Images as samples of shape `[1, rows, cols]`, pixels scaled to [0, 1] (`x / 255`).
///
/// Add [`Normalize`](crate::data::Normalize) to standardize, or use [`ImageDataset`] to pick the scaling.
impl Dataset for ImageSet {
    fn len(&self) -> usize {
        ImageSet::len(self)
    }
    fn sample_shape(&self) -> Vec<usize> {
        vec![1, self.rows(), self.cols()]
    }
    #[track_caller]
    fn get(&self, index: usize) -> Sample {
        let x = self.image(index).iter().map(|&p| PixelScaling::Unit.apply(p)).collect();
        Sample { x, y: self.label(index) }
    }
}

/// An [`ImageSet`] with a chosen pixel scaling and sample shape (e.g. `[784]` for an MLP).
#[derive(Debug, Clone)]
pub struct ImageDataset {
    images: ImageSet,
    scaling: PixelScaling,
    shape: Vec<usize>,
}

impl ImageDataset {
    /// Images as `[1, rows, cols]` samples scaled by `scaling`.
    pub fn new(images: ImageSet, scaling: PixelScaling) -> Self {
        let shape = vec![1, images.rows(), images.cols()];
        ImageDataset { images, scaling, shape }
    }

    /// The same samples, flattened to shape `[rows * cols]` (for fully connected networks).
    pub fn flattened(mut self) -> Self {
        self.shape = vec![self.images.pixels()];
        self
    }

    /// The underlying images.
    pub fn images(&self) -> &ImageSet {
        &self.images
    }
}

impl Dataset for ImageDataset {
    fn len(&self) -> usize {
        self.images.len()
    }
    fn sample_shape(&self) -> Vec<usize> {
        self.shape.clone()
    }
    #[track_caller]
    fn get(&self, index: usize) -> Sample {
        let x = self.images.image(index).iter().map(|&p| self.scaling.apply(p)).collect();
        Sample { x, y: self.images.label(index) }
    }
}

/// Samples held in memory as one flat `Vec<f32>` of inputs plus labels.
#[derive(Debug, Clone, PartialEq)]
pub struct VecDataset {
    x: Vec<f32>,
    y: Vec<usize>,
    shape: Vec<usize>,
}

impl VecDataset {
    /// `y.len()` samples of shape `sample_shape`; `x` holds them back to back, row-major.
    ///
    /// # Panics
    ///
    /// If `x.len() != y.len() * product(sample_shape)`.
    #[track_caller]
    pub fn new(x: Vec<f32>, y: Vec<usize>, sample_shape: &[usize]) -> Self {
        let per = sample_shape.iter().product::<usize>();
        if y.len().checked_mul(per) != Some(x.len()) {
            vec_dataset_mismatch(x.len(), y.len(), sample_shape);
        }
        VecDataset { x, y, shape: sample_shape.to_vec() }
    }
}

#[cold]
#[track_caller]
fn vec_dataset_mismatch(x: usize, y: usize, shape: &[usize]) -> ! {
    panic!("VecDataset::new: {x} input values are not {y} samples of shape {shape:?}")
}

impl Dataset for VecDataset {
    fn len(&self) -> usize {
        self.y.len()
    }
    fn sample_shape(&self) -> Vec<usize> {
        self.shape.clone()
    }
    #[track_caller]
    fn get(&self, index: usize) -> Sample {
        let per = self.x.len() / self.y.len().max(1);
        Sample { x: self.x[index * per..(index + 1) * per].to_vec(), y: self.y[index] }
    }
}
