//! Data: reading real datasets and feeding them to training loops.
//!
//! - [`idx`]: the IDX format of MNIST and Fashion-MNIST (raw or gzip), a reader that returns `Err` (never
//!   panics) on malformed files, and a u8 writer.
//! - [`fashion_mnist`]: the Fashion-MNIST splits, and where to find them (`--data DIR`, the Debian package,
//!   or the subset shipped in `data/`).
//! - [`text`]: a character vocabulary and a character-level text dataset with a train/validation split.
//! - [`dataset`], [`loader`], [`transforms`]: the [`Dataset`] trait, a [`DataLoader`] (batching, seeded
//!   shuffling, drop_last, background prefetch) and per-sample transforms (normalize, random flip and crop,
//!   one-hot).
//! - [`error`]: [`DataError`], which names the file and the problem.
//!
//! Files that depend on the outside world return [`Result`]; misuse by the calling code panics (see
//! ARCHITECTURE.md section 4).

pub mod dataset;
pub mod error;
pub mod fashion_mnist;
pub mod idx;
pub mod loader;
pub mod text;
pub mod transforms;

pub use dataset::{Dataset, ImageDataset, Sample, VecDataset};
pub use error::{DataError, IdxProblem, Result};
pub use fashion_mnist::{DataSource, FashionMnist, ImageSet, PixelScaling};
pub use idx::{read_idx, IdxArray, IdxData, IdxType};
pub use loader::{Batch, Batches, DataLoader};
pub use text::{CharText, CharVocab, TokenBatch};
pub use transforms::{one_hot, Normalize, RandomCrop, RandomHorizontalFlip, Transform};
