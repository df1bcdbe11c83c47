//! `DataLoader`: batches from a [`Dataset`], shuffled per epoch from a seed, built ahead on a thread.
//!
//! For epoch `e` the loader visits the samples in a permutation drawn from `seed` and `e` (or in order
//! without shuffling), cuts it into batches of `batch_size` (the last one smaller unless `drop_last`), applies
//! the transforms to each sample with a generator seeded from `(seed, e, sample index)`, and stacks the
//! inputs into one row-major buffer:
//!
//! ```text
//! Batch.x        [B, ...sample_shape]    e.g. [128, 1, 28, 28]
//! Batch.y        [B]                     class labels
//! ```
//!
//! [`Batch::into_tensors`] hands them to the engine as an f32 tensor and an i64 label tensor.
//!
//! With `prefetch(n)` for `n > 0` (the default is 2) a background thread builds up to `n` batches ahead of the
//! training loop, through a bounded channel. Batches and their order depend only on the seed and the epoch,
//! never on timing: a run is reproducible with or without prefetching.
//!
//! ```
//! use tensorgrad::data::{DataLoader, VecDataset};
//! let data = VecDataset::new((0..10).map(|v| v as f32).collect(), (0..10).collect(), &[1]);
//! let loader = DataLoader::new(data, 4).shuffle(true).seed(42).drop_last(true);
//! assert_eq!(loader.num_batches(), 2);
//! let batches: Vec<_> = loader.epoch(0).collect();
//! assert_eq!(batches[0].x_shape, [4, 1]);
//! assert_eq!(batches, loader.epoch(0).collect::<Vec<_>>()); // same seed and epoch: same batches
//! assert_ne!(batches, loader.epoch(1).collect::<Vec<_>>()); // a new permutation each epoch
//! ```

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::dataset::Dataset;
use super::transforms::{one_hot, Transform};
use crate::Tensor;

/// A batch of samples: inputs stacked into one buffer, and their labels.
///
/// # Shapes
///
/// `x` is `x_shape = [B, ...sample_shape]` row-major, `y` is `[B]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Inputs, row-major, shape `x_shape`.
    pub x: Vec<f32>,
    /// `[B, ...sample_shape]`.
    pub x_shape: Vec<usize>,
    /// Class labels, one per sample.
    pub y: Vec<usize>,
}

impl Batch {
    /// Number of samples `B`.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// True for a batch with no samples (never produced by a [`DataLoader`]).
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// The labels one-hot encoded, `[B, num_classes]`.
    ///
    /// # Panics
    ///
    /// If a label is `>= num_classes`.
    #[track_caller]
    pub fn y_one_hot(&self, num_classes: usize) -> Vec<f32> {
        one_hot(&self.y, num_classes)
    }

    /// The labels as f32 (for losses that take class indices as a float tensor).
    pub fn y_f32(&self) -> Vec<f32> {
        self.y.iter().map(|&c| c as f32).collect()
    }

    /// The inputs as an f32 tensor of shape `x_shape` (copies `x`).
    pub fn x_tensor(&self) -> Tensor {
        Tensor::from_vec(self.x.clone(), &self.x_shape)
    }

    /// The labels as an i64 tensor of shape `[B]` (the index dtype of `gather`, `index_select` and the losses).
    pub fn y_tensor(&self) -> Tensor {
        Tensor::from_vec(self.y.iter().map(|&c| c as i64).collect::<Vec<i64>>(), &[self.y.len()])
    }

    /// Inputs (f32, `x_shape`) and labels (i64, `[B]`) as tensors, without copying the inputs.
    ///
    /// ```
    /// use tensorgrad::data::{DataLoader, VecDataset};
    /// let data = VecDataset::new(vec![0.0; 6 * 4], vec![0, 1, 2, 0, 1, 2], &[2, 2]);
    /// let (x, y) = DataLoader::new(data, 4).epoch(0).next().unwrap().into_tensors();
    /// assert_eq!((x.shape(), y.shape()), (&[4, 2, 2][..], &[4][..]));
    /// assert_eq!(y.to_vec::<i64>(), [0, 1, 2, 0]);
    /// ```
    pub fn into_tensors(self) -> (Tensor, Tensor) {
        let y = self.y_tensor();
        (Tensor::from_vec(self.x, &self.x_shape), y)
    }

    /// The same batch with each sample flattened: `x_shape` becomes `[B, product(sample_shape)]`.
    ///
    /// # Panics
    ///
    /// If `x_shape` is empty (never for batches from a [`DataLoader`]).
    pub fn flattened(mut self) -> Self {
        let b = self.x_shape[0];
        let per = self.x_shape[1..].iter().product();
        self.x_shape = vec![b, per];
        self
    }
}

/// Batches a [`Dataset`]; configure with the builder methods, then iterate an [`epoch`](Self::epoch).
pub struct DataLoader<D: Dataset + 'static> {
    dataset: Arc<D>,
    transforms: Arc<Vec<Box<dyn Transform>>>,
    batch_size: usize,
    shuffle: bool,
    drop_last: bool,
    seed: u64,
    prefetch: usize,
}

impl<D: Dataset + 'static> DataLoader<D> {
    /// A loader of batches of `batch_size`, in dataset order, keeping the last partial batch, seed 0,
    /// prefetching 2 batches.
    ///
    /// # Panics
    ///
    /// If `batch_size` is 0.
    #[track_caller]
    pub fn new(dataset: D, batch_size: usize) -> Self {
        if batch_size == 0 {
            panic!("DataLoader::new: batch_size must be positive");
        }
        DataLoader {
            dataset: Arc::new(dataset),
            transforms: Arc::new(Vec::new()),
            batch_size,
            shuffle: false,
            drop_last: false,
            seed: 0,
            prefetch: 2,
        }
    }

    /// Visit the samples in a new random order each epoch (default: off).
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// The seed for shuffling and random transforms (default: 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Drop the last batch if it has fewer than `batch_size` samples (default: keep it).
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// Build up to `batches` batches ahead on a background thread; 0 builds each batch when it is asked for,
    /// on the calling thread (default: 2).
    pub fn prefetch(mut self, batches: usize) -> Self {
        self.prefetch = batches;
        self
    }

    /// Adds a transform, applied to each sample after the ones added before.
    ///
    /// # Panics
    ///
    /// If called while an epoch iterator of this loader is alive (transforms are shared with it).
    #[track_caller]
    pub fn transform(mut self, transform: impl Transform + 'static) -> Self {
        Arc::get_mut(&mut self.transforms)
            .expect("DataLoader::transform: an epoch of this loader is still running")
            .push(Box::new(transform));
        self
    }

    /// The dataset.
    pub fn dataset(&self) -> &D {
        &self.dataset
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Batches per epoch.
    pub fn num_batches(&self) -> usize {
        let n = self.dataset.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// The batches of epoch `epoch` (0-based), in order. Dropping the iterator early stops the prefetch
    /// thread.
    pub fn epoch(&self, epoch: usize) -> Batches {
        let mut order: Vec<usize> = (0..self.dataset.len()).collect();
        if self.shuffle {
            order.shuffle(&mut StdRng::seed_from_u64(derive_seed(self.seed, SHUFFLE_STREAM, epoch as u64)));
        }
        let plan = Plan {
            dataset: self.dataset.clone(),
            transforms: self.transforms.clone(),
            order,
            batch_size: self.batch_size,
            num_batches: self.num_batches(),
            seed: derive_seed(self.seed, TRANSFORM_STREAM, epoch as u64),
        };
        let total = plan.num_batches;
        let plan: Arc<dyn BatchSource> = Arc::new(plan);
        let inline = |plan| Batches { inner: Inner::Inline { plan, next: 0 }, remaining: total };
        if self.prefetch == 0 {
            return inline(plan);
        }
        let (tx, rx) = sync_channel(self.prefetch);
        let producer = plan.clone();
        let spawned = std::thread::Builder::new().name("tensorgrad-dataloader".into()).spawn(move || {
            for k in 0..producer.num_batches() {
                if tx.send(producer.batch(k)).is_err() {
                    return; // the consumer stopped early
                }
            }
        });
        match spawned {
            Ok(handle) => Batches { inner: Inner::Thread { rx: Some(rx), handle: Some(handle) }, remaining: total },
            // No thread to be had (resource limits): same batches, built on the calling thread.
            Err(_) => inline(plan),
        }
    }
}

const SHUFFLE_STREAM: u64 = 0x5348_5546; // "SHUF"
const TRANSFORM_STREAM: u64 = 0x5452_4e53; // "TRNS"

/// SplitMix64 finalizer: a well-mixed 64-bit hash.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// An independent seed for (seed, stream, index).
fn derive_seed(seed: u64, stream: u64, index: u64) -> u64 {
    mix(mix(mix(seed ^ 0x9e37_79b9_7f4a_7c15).wrapping_add(stream)).wrapping_add(index))
}

/// Everything needed to build the batches of one epoch.
struct Plan<D: Dataset> {
    dataset: Arc<D>,
    transforms: Arc<Vec<Box<dyn Transform>>>,
    order: Vec<usize>,
    batch_size: usize,
    num_batches: usize,
    seed: u64,
}

impl<D: Dataset> Plan<D> {
    fn batch(&self, k: usize) -> Batch {
        let indices = &self.order[k * self.batch_size..((k + 1) * self.batch_size).min(self.order.len())];
        let shape = self.dataset.sample_shape();
        let per: usize = shape.iter().product();
        let mut x = Vec::with_capacity(indices.len() * per);
        let mut y = Vec::with_capacity(indices.len());
        for &i in indices {
            let mut sample = self.dataset.get(i);
            assert_eq!(
                sample.x.len(),
                per,
                "Dataset::get({i}) returned {} values for sample shape {shape:?}",
                sample.x.len()
            );
            if !self.transforms.is_empty() {
                let mut rng = StdRng::seed_from_u64(derive_seed(self.seed, i as u64, 0));
                for t in self.transforms.iter() {
                    t.apply(&mut sample.x, &shape, &mut rng);
                }
            }
            x.extend_from_slice(&sample.x);
            y.push(sample.y);
        }
        let mut x_shape = Vec::with_capacity(shape.len() + 1);
        x_shape.push(indices.len());
        x_shape.extend_from_slice(&shape);
        Batch { x, x_shape, y }
    }
}

/// The batches of one epoch; see [`DataLoader::epoch`].
pub struct Batches {
    inner: Inner,
    remaining: usize,
}

enum Inner {
    Inline { plan: Arc<dyn BatchSource>, next: usize },
    Thread { rx: Option<Receiver<Batch>>, handle: Option<JoinHandle<()>> },
}

/// Object-safe view of a [`Plan`], so that [`Batches`] need not be generic.
trait BatchSource: Send + Sync {
    fn batch(&self, k: usize) -> Batch;
    fn num_batches(&self) -> usize;
}

impl<D: Dataset> BatchSource for Plan<D> {
    fn batch(&self, k: usize) -> Batch {
        Plan::batch(self, k)
    }
    fn num_batches(&self) -> usize {
        self.num_batches
    }
}

impl Iterator for Batches {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let batch = match &mut self.inner {
            Inner::Inline { plan, next } => {
                if *next >= plan.num_batches() {
                    return None;
                }
                *next += 1;
                Some(plan.batch(*next - 1))
            }
            Inner::Thread { rx, handle } => {
                let received = rx.as_ref().and_then(|rx| rx.recv().ok());
                if received.is_none() {
                    // The producer finished or panicked: surface a panic (a bug in a Dataset or Transform).
                    if let Some(h) = handle.take() {
                        if let Err(panic) = h.join() {
                            std::panic::resume_unwind(panic);
                        }
                    }
                }
                received
            }
        };
        if batch.is_some() {
            self.remaining -= 1;
        }
        batch
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Batches {}

impl Drop for Batches {
    fn drop(&mut self) {
        if let Inner::Thread { rx, handle } = &mut self.inner {
            drop(rx.take()); // unblocks a producer waiting to send
            if let Some(h) = handle.take() {
                let _ = h.join();
            }
        }
    }
}
