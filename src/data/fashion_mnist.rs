//! Fashion-MNIST: 28 x 28 grayscale images of clothing in 10 classes (Zalando Research, MIT licence).
//!
//! The dataset is four IDX files (see [`crate::data::idx`]), usually gzip-compressed:
//!
//! ```text
//! train-images-idx3-ubyte(.gz)   u8 [n_train, 28, 28]   pixels, 0 = background, 255 = ink
//! train-labels-idx1-ubyte(.gz)   u8 [n_train]           class index 0..10
//! t10k-images-idx3-ubyte(.gz)    u8 [n_test, 28, 28]
//! t10k-labels-idx1-ubyte(.gz)    u8 [n_test]
//! ```
//!
//! The full set has 60,000 / 10,000 images. [`FashionMnist::locate`] picks where to read them from: a
//! directory given explicitly (`--data DIR`), else the Debian package `dataset-fashion-mnist`
//! (`/usr/share/datasets/fashion-mnist/`), else the class-balanced 10,000 / 2,000 subset shipped in the
//! repository under `data/fashion-mnist/` (see `data/README.md`).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::error::{DataError, Result};
use super::idx::read_idx;

/// The class names, indexed by label.
pub const CLASS_NAMES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// Number of classes.
pub const NUM_CLASSES: usize = 10;

/// Image height and width in pixels.
pub const IMAGE_SIDE: usize = 28;

/// Pixels per image (784).
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;

/// Mean pixel value of the full training set after scaling to [0, 1].
pub const MEAN: f32 = 0.2860;

/// Standard deviation of the pixel values of the full training set after scaling to [0, 1].
pub const STD: f32 = 0.3530;

/// Where the Debian package `dataset-fashion-mnist` installs the full dataset.
pub const SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The four file names, without the optional `.gz`.
const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// The directory of the subset shipped with the repository (`<crate root>/data/fashion-mnist`).
pub fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data").join("fashion-mnist")
}

/// Which copy of the dataset [`FashionMnist::locate`] chose. `Display` says it in words, for examples to
/// print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataSource {
    /// A directory given by the user (`--data DIR`).
    Explicit,
    /// The full dataset installed by the Debian package `dataset-fashion-mnist`.
    System,
    /// The 10,000 / 2,000 image subset committed under `data/fashion-mnist/`.
    Shipped,
}

impl fmt::Display for DataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataSource::Explicit => "the directory given with --data",
            DataSource::System => "the full Fashion-MNIST (Debian package dataset-fashion-mnist)",
            DataSource::Shipped => {
                "the subset shipped in data/fashion-mnist (10,000 train / 2,000 test images; \
                 `apt-get install dataset-fashion-mnist` or --data DIR for the full 60,000 / 10,000)"
            }
        })
    }
}

/// How to turn u8 pixels into f32 network inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PixelScaling {
    /// `x / 255`, in [0, 1].
    #[default]
    Unit,
    /// `(x / 255 - MEAN) / STD`: zero mean and unit variance over the full training set.
    Standardize,
}

impl PixelScaling {
    /// Scales one pixel.
    #[inline]
    pub fn apply(self, pixel: u8) -> f32 {
        let x = f32::from(pixel) / 255.0;
        match self {
            PixelScaling::Unit => x,
            PixelScaling::Standardize => (x - MEAN) / STD,
        }
    }
}

/// One split (train or test): images and their labels.
///
/// # Shapes
///
/// `images()` is `[len, rows, cols]` row-major u8, `labels()` is `[len]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    images: Vec<u8>,
    labels: Vec<u8>,
    rows: usize,
    cols: usize,
}

impl ImageSet {
    /// Builds a split from raw pixels and labels.
    ///
    /// # Panics
    ///
    /// If `images.len() != labels.len() * rows * cols` or a label is not below [`NUM_CLASSES`] (a bug in the
    /// caller; files are checked by [`FashionMnist::load`] and give an `Err`).
    #[track_caller]
    pub fn new(images: Vec<u8>, labels: Vec<u8>, rows: usize, cols: usize) -> Self {
        let ok_len = labels.len().checked_mul(rows).and_then(|n| n.checked_mul(cols)) == Some(images.len());
        if !ok_len || labels.iter().any(|&l| usize::from(l) >= NUM_CLASSES) {
            image_set_mismatch(images.len(), labels.len(), rows, cols);
        }
        ImageSet { images, labels, rows, cols }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True if there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image height.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Image width.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Pixels per image (`rows * cols`).
    pub fn pixels(&self) -> usize {
        self.rows * self.cols
    }

    /// All pixels, `[len, rows, cols]` row-major.
    pub fn images(&self) -> &[u8] {
        &self.images
    }

    /// All labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The pixels of image `i`, `[rows, cols]` row-major.
    ///
    /// # Panics
    ///
    /// If `i >= len()`.
    #[track_caller]
    pub fn image(&self, i: usize) -> &[u8] {
        let p = self.pixels();
        &self.images[i * p..(i + 1) * p]
    }

    /// The label of image `i`.
    ///
    /// # Panics
    ///
    /// If `i >= len()`.
    #[track_caller]
    pub fn label(&self, i: usize) -> usize {
        usize::from(self.labels[i])
    }

    /// All images as f32, `[len, rows * cols]` row-major, scaled as `scaling` says.
    pub fn to_f32(&self, scaling: PixelScaling) -> Vec<f32> {
        self.images.iter().map(|&p| scaling.apply(p)).collect()
    }

    /// Number of images of each class.
    pub fn class_counts(&self) -> [usize; NUM_CLASSES] {
        let mut counts = [0; NUM_CLASSES];
        for &l in &self.labels {
            counts[usize::from(l)] += 1;
        }
        counts
    }

    /// The first `n` images (all if `n >= len()`): a quick way to a smaller run.
    pub fn truncated(&self, n: usize) -> ImageSet {
        let n = n.min(self.len());
        ImageSet {
            images: self.images[..n * self.pixels()].to_vec(),
            labels: self.labels[..n].to_vec(),
            rows: self.rows,
            cols: self.cols,
        }
    }
}

#[cold]
#[track_caller]
fn image_set_mismatch(pixels: usize, labels: usize, rows: usize, cols: usize) -> ! {
    panic!(
        "ImageSet::new: {pixels} pixels and {labels} labels do not make {labels} images of {rows}x{cols}, \
         or a label is >= {NUM_CLASSES}"
    )
}

/// The Fashion-MNIST training and test splits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FashionMnist {
    /// The training split (60,000 images in the full set, 10,000 in the shipped subset).
    pub train: ImageSet,
    /// The test split (10,000 images in the full set, 2,000 in the shipped subset).
    pub test: ImageSet,
}

impl FashionMnist {
    /// Chooses the directory to load: `explicit` if given, else [`SYSTEM_DIR`] if it holds the four files,
    /// else the shipped subset ([`shipped_dir`]). Does not read the files.
    ///
    /// ```
    /// use tensorgrad::data::fashion_mnist::{DataSource, FashionMnist};
    /// let (dir, source) = FashionMnist::locate(Some("/my/copy".as_ref()));
    /// assert_eq!((dir.to_str(), source), (Some("/my/copy"), DataSource::Explicit));
    /// println!("Fashion-MNIST: {source} ({})", dir.display());
    /// ```
    pub fn locate(explicit: Option<&Path>) -> (PathBuf, DataSource) {
        if let Some(dir) = explicit {
            return (dir.to_path_buf(), DataSource::Explicit);
        }
        let system = Path::new(SYSTEM_DIR);
        if [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS].iter().all(|n| find_file(system, n).is_ok()) {
            return (system.to_path_buf(), DataSource::System);
        }
        (shipped_dir(), DataSource::Shipped)
    }

    /// [`locate`](Self::locate) then [`load`](Self::load); also returns where the data came from.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub fn locate_and_load(explicit: Option<&Path>) -> Result<(FashionMnist, PathBuf, DataSource)> {
        let (dir, source) = Self::locate(explicit);
        let data = Self::load(&dir)?;
        Ok((data, dir, source))
    }

    /// Loads the four files from `dir`, each as `NAME.gz` if present, else `NAME` (raw IDX).
    ///
    /// # Errors
    ///
    /// A [`DataError`] naming the file if one is missing, unreadable or malformed (see
    /// [`crate::data::idx`]), if images are not u8 `[n, 28, 28]`, labels not u8 `[n]` with the same `n`, or a
    /// label is 10 or more.
    ///
    /// ```
    /// use tensorgrad::data::fashion_mnist::{shipped_dir, FashionMnist};
    /// let data = FashionMnist::load(shipped_dir())?;
    /// assert_eq!((data.train.len(), data.test.len()), (10_000, 2_000));
    /// # Ok::<(), tensorgrad::data::DataError>(())
    /// ```
    pub fn load(dir: impl AsRef<Path>) -> Result<FashionMnist> {
        let dir = dir.as_ref();
        Ok(FashionMnist {
            train: load_split(dir, TRAIN_IMAGES, TRAIN_LABELS)?,
            test: load_split(dir, TEST_IMAGES, TEST_LABELS)?,
        })
    }
}

/// `dir/name.gz` if it exists, else `dir/name` if it exists, else a not-found error.
fn find_file(dir: &Path, name: &str) -> Result<PathBuf> {
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    let raw = dir.join(name);
    if raw.is_file() {
        return Ok(raw);
    }
    Err(DataError::io(&gz, io::Error::new(io::ErrorKind::NotFound, format!("not found (nor {name})"))))
}

fn load_split(dir: &Path, images_name: &str, labels_name: &str) -> Result<ImageSet> {
    let images_path = find_file(dir, images_name)?;
    let labels_path = find_file(dir, labels_name)?;
    let images = read_idx(&images_path)?;
    let labels = read_idx(&labels_path)?;

    let [n, rows, cols] = images.dims[..] else {
        let msg = format!("images must have 3 dimensions [n, 28, 28], found {:?}", images.dims);
        return Err(DataError::invalid(&images_path, msg));
    };
    if (rows, cols) != (IMAGE_SIDE, IMAGE_SIDE) {
        let msg = format!("images must be 28x28, found {rows}x{cols}");
        return Err(DataError::invalid(&images_path, msg));
    }
    if labels.dims != [n] {
        let msg = format!("labels have dimensions {:?}, the images file has {n} images", labels.dims);
        return Err(DataError::invalid(&labels_path, msg));
    }
    let dtype = images.dtype();
    let Some(pixels) = images.into_u8() else {
        return Err(DataError::invalid(&images_path, format!("pixels must be u8, found {dtype:?}")));
    };
    let dtype = labels.dtype();
    let Some(labels) = labels.into_u8() else {
        return Err(DataError::invalid(&labels_path, format!("labels must be u8, found {dtype:?}")));
    };
    if let Some(i) = labels.iter().position(|&l| usize::from(l) >= NUM_CLASSES) {
        let msg = format!("label {} at index {i} is not a class (0..{NUM_CLASSES})", labels[i]);
        return Err(DataError::invalid(&labels_path, msg));
    }
    Ok(ImageSet { images: pixels, labels, rows, cols })
}
