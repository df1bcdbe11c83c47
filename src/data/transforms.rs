//! Per-sample input transforms (normalize, random horizontal flip, random crop with padding) and one-hot
//! targets.
//!
//! A [`Transform`] rewrites one sample's input in place, given its shape (channels first: `[C, H, W]` for
//! images; `[H, W]` is treated as one channel) and a random generator. The
//! [`DataLoader`](crate::data::DataLoader) seeds that generator from (loader seed, epoch, sample index), so
//! the augmentation a sample receives is reproducible and independent of batch size and prefetching.
//!
//! Order matters as in torchvision: crop and flip raw `[0, 1]` pixels (the crop's padding is background),
//! then normalize.
//!
//! ```text
//! Normalize            x[c, ...] = (x[c, ...] - mean[c]) / std[c]
//! RandomHorizontalFlip with probability p: x[c, i, j] = x[c, i, W - 1 - j]
//! RandomCrop           pad H and W by `padding` with `fill`, cut an H x W window at a uniform offset
//! one_hot              labels [B] -> [B, num_classes] with a 1 at each label
//! ```

use rand::rngs::StdRng;
use rand::Rng;

use super::fashion_mnist;

/// A change to one sample's input. Implementations must be deterministic given `rng`.
pub trait Transform: Send + Sync {
    /// Transforms `x` (of shape `shape`, row-major) in place; the shape does not change.
    ///
    /// # Panics
    ///
    /// Implementations may panic if `shape` does not suit them (e.g. a flip needs at least 2 dimensions).
    fn apply(&self, x: &mut [f32], shape: &[usize], rng: &mut StdRng);
}

/// Per-channel standardization: `(x - mean[c]) / std[c]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalize {
    mean: Vec<f32>,
    std: Vec<f32>,
}

impl Normalize {
    /// One mean and standard deviation per channel (the first dimension of the sample shape), or a single
    /// pair for all values.
    ///
    /// # Panics
    ///
    /// If the lengths differ, are 0, or a standard deviation is not positive.
    #[track_caller]
    pub fn new(mean: &[f32], std: &[f32]) -> Self {
        if mean.len() != std.len() || mean.is_empty() || std.iter().any(|&s| s.is_nan() || s <= 0.0) {
            bad_normalize(mean, std);
        }
        Normalize { mean: mean.to_vec(), std: std.to_vec() }
    }

    /// Fashion-MNIST's training-set statistics ([`fashion_mnist::MEAN`], [`fashion_mnist::STD`]).
    pub fn fashion_mnist() -> Self {
        Normalize::new(&[fashion_mnist::MEAN], &[fashion_mnist::STD])
    }
}

#[cold]
#[track_caller]
fn bad_normalize(mean: &[f32], std: &[f32]) -> ! {
    panic!("Normalize::new: mean {mean:?} and std {std:?} need equal non-zero lengths and positive stds")
}

impl Transform for Normalize {
    #[track_caller]
    fn apply(&self, x: &mut [f32], shape: &[usize], _rng: &mut StdRng) {
        if self.mean.len() == 1 {
            let (m, inv) = (self.mean[0], 1.0 / self.std[0]);
            x.iter_mut().for_each(|v| *v = (*v - m) * inv);
            return;
        }
        if shape.first() != Some(&self.mean.len()) {
            wrong_shape("Normalize", shape, "the first dimension must equal the number of channel means");
        }
        let per_channel = x.len() / self.mean.len();
        for (c, chunk) in x.chunks_mut(per_channel.max(1)).enumerate() {
            let (m, inv) = (self.mean[c], 1.0 / self.std[c]);
            chunk.iter_mut().for_each(|v| *v = (*v - m) * inv);
        }
    }
}

/// Mirrors the image left-right (along the last dimension) with probability `p`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomHorizontalFlip {
    p: f64,
}

impl RandomHorizontalFlip {
    /// Flips with probability `p`.
    ///
    /// # Panics
    ///
    /// If `p` is not in `[0, 1]`.
    #[track_caller]
    pub fn new(p: f64) -> Self {
        if !(0.0..=1.0).contains(&p) {
            panic!("RandomHorizontalFlip::new: probability {p} is not in [0, 1]");
        }
        RandomHorizontalFlip { p }
    }
}

impl Default for RandomHorizontalFlip {
    /// Flips half of the time.
    fn default() -> Self {
        RandomHorizontalFlip { p: 0.5 }
    }
}

impl Transform for RandomHorizontalFlip {
    #[track_caller]
    fn apply(&self, x: &mut [f32], shape: &[usize], rng: &mut StdRng) {
        if shape.len() < 2 {
            wrong_shape("RandomHorizontalFlip", shape, "an image needs at least [H, W]");
        }
        if rng.random_bool(self.p) {
            let w = shape[shape.len() - 1];
            x.chunks_mut(w.max(1)).for_each(|row| row.reverse());
        }
    }
}

/// Pads an image by `padding` pixels of `fill` on every side and cuts an `H x W` window at a uniformly random
/// offset: a random translation by up to `padding` pixels in each direction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomCrop {
    padding: usize,
    fill: f32,
}

impl RandomCrop {
    /// Random translation by up to `padding` pixels; uncovered pixels become `fill` (0 = background for
    /// `[0, 1]` pixels before normalization).
    pub fn new(padding: usize, fill: f32) -> Self {
        RandomCrop { padding, fill }
    }
}

impl Transform for RandomCrop {
    #[track_caller]
    fn apply(&self, x: &mut [f32], shape: &[usize], rng: &mut StdRng) {
        if shape.len() < 2 {
            wrong_shape("RandomCrop", shape, "an image needs at least [H, W]");
        }
        let (h, w) = (shape[shape.len() - 2], shape[shape.len() - 1]);
        let p = self.padding as i64;
        // Window offset in the padded image, minus the padding: the shift of the source.
        let dy = (rng.random_range(0..=2 * p) - p) as isize;
        let dx = (rng.random_range(0..=2 * p) - p) as isize;
        if (dy, dx) == (0, 0) || h == 0 || w == 0 {
            return;
        }
        let mut plane = vec![0.0; h * w];
        for channel in x.chunks_mut(h * w) {
            for i in 0..h {
                for j in 0..w {
                    let (si, sj) = (i as isize + dy, j as isize + dx);
                    let inside = (0..h as isize).contains(&si) && (0..w as isize).contains(&sj);
                    plane[i * w + j] = if inside { channel[si as usize * w + sj as usize] } else { self.fill };
                }
            }
            channel.copy_from_slice(&plane);
        }
    }
}

#[cold]
#[track_caller]
fn wrong_shape(what: &str, shape: &[usize], why: &str) -> ! {
    panic!("{what}: sample shape {shape:?}: {why}")
}

/// One-hot encodes class labels: `[B]` -> `[B, num_classes]` row-major.
///
/// # Panics
///
/// If a label is `>= num_classes`.
///
/// ```
/// assert_eq!(tensorgrad::data::one_hot(&[2, 0], 3), [0., 0., 1., 1., 0., 0.]);
/// ```
#[track_caller]
pub fn one_hot(labels: &[usize], num_classes: usize) -> Vec<f32> {
    let mut out = vec![0.0; labels.len() * num_classes];
    for (row, &label) in labels.iter().enumerate() {
        if label >= num_classes {
            panic!("one_hot: label {label} at index {row} is not below num_classes {num_classes}");
        }
        out[row * num_classes + label] = 1.0;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn flip_mirrors_rows() {
        let mut x = [1., 2., 3., 4., 5., 6.];
        RandomHorizontalFlip::new(1.0).apply(&mut x, &[2, 3], &mut StdRng::seed_from_u64(0));
        assert_eq!(x, [3., 2., 1., 6., 5., 4.]);
    }

    #[test]
    fn crop_translates_and_fills() {
        // With padding 1, some seed shifts by a nonzero offset; every output pixel is a source pixel or fill.
        let src: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let mut shifted = 0;
        for seed in 0..50 {
            let mut x = src.clone();
            RandomCrop::new(1, -1.0).apply(&mut x, &[1, 3, 3], &mut StdRng::seed_from_u64(seed));
            if x != src {
                shifted += 1;
                assert!(x.contains(&-1.0));
            }
            // The centre pixel of a shift by at most 1 always comes from the source.
            assert!(x[4] >= 1.0);
        }
        assert!(shifted > 30, "{shifted}");
    }

    #[test]
    fn normalize_per_channel() {
        let mut x = [1., 1., 3., 3.];
        Normalize::new(&[1., 2.], &[1., 0.5]).apply(&mut x, &[2, 1, 2], &mut StdRng::seed_from_u64(0));
        assert_eq!(x, [0., 0., 2., 2.]);
    }
}
