//! The shipped Fashion-MNIST subset loads and is class-balanced; the full set (when installed) loads and
//! the subset is exactly its first images of each class; inconsistent files are `Err`s naming the file.

use std::path::{Path, PathBuf};

use tensorgrad::data::fashion_mnist::{shipped_dir, CLASS_NAMES, IMAGE_PIXELS, MEAN, STD, SYSTEM_DIR};
use tensorgrad::data::idx::write_idx_u8;
use tensorgrad::data::{DataError, DataSource, FashionMnist, ImageSet, PixelScaling};

fn tmp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn system_installed() -> bool {
    Path::new(SYSTEM_DIR).join("train-images-idx3-ubyte.gz").is_file()
}

#[test]
fn shipped_subset_loads_and_is_class_balanced() {
    let data = FashionMnist::load(shipped_dir()).unwrap();
    assert_eq!((data.train.len(), data.test.len()), (10_000, 2_000));
    assert_eq!((data.train.rows(), data.train.cols(), data.train.pixels()), (28, 28, IMAGE_PIXELS));
    assert_eq!(data.train.class_counts(), [1_000; 10]);
    assert_eq!(data.test.class_counts(), [200; 10]);
    assert_eq!(data.train.images().len(), 10_000 * 784);
    assert_eq!(CLASS_NAMES.len(), 10);

    // Pixel statistics match the published full-set values closely.
    let x = data.train.to_f32(PixelScaling::Unit);
    assert!(x.iter().all(|v| (0.0..=1.0).contains(v)));
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / x.len() as f64;
    let var = x.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / x.len() as f64;
    assert!((mean - f64::from(MEAN)).abs() < 0.01, "mean {mean}");
    assert!((var.sqrt() - f64::from(STD)).abs() < 0.01, "std {}", var.sqrt());
    let z = data.train.to_f32(PixelScaling::Standardize);
    assert!((z[0] - (x[0] - MEAN) / STD).abs() < 1e-6);
}

#[test]
fn locate_prefers_explicit_then_system_then_shipped() {
    let (dir, source) = FashionMnist::locate(Some(Path::new("/somewhere")));
    assert_eq!((dir, source), (PathBuf::from("/somewhere"), DataSource::Explicit));
    let (dir, source) = FashionMnist::locate(None);
    if system_installed() {
        assert_eq!((dir, source), (PathBuf::from(SYSTEM_DIR), DataSource::System));
    } else {
        assert_eq!((dir, source), (shipped_dir(), DataSource::Shipped));
    }
    assert!(DataSource::Shipped.to_string().contains("10,000 train / 2,000 test"));
}

#[test]
fn shipped_subset_is_the_first_images_of_each_class_of_the_full_set() {
    if !system_installed() {
        eprintln!("skipped: {SYSTEM_DIR} not installed (apt-get install dataset-fashion-mnist)");
        return;
    }
    let full = FashionMnist::load(SYSTEM_DIR).unwrap();
    assert_eq!((full.train.len(), full.test.len()), (60_000, 10_000));
    assert_eq!(full.train.class_counts(), [6_000; 10]);
    let subset = FashionMnist::load(shipped_dir()).unwrap();
    for (full, subset, per_class) in [(&full.train, &subset.train, 1_000), (&full.test, &subset.test, 200)] {
        let mut counts = [0; 10];
        let mut j = 0;
        for i in 0..full.len() {
            let label = full.label(i);
            if counts[label] < per_class {
                counts[label] += 1;
                assert_eq!((subset.label(j), subset.image(j)), (label, full.image(i)), "subset image {j}");
                j += 1;
            }
        }
        assert_eq!(j, subset.len());
    }
}

/// Writes a fake dataset directory: `n` train and test images of `side x side` with the given labels.
fn fake_dir(name: &str, n_images: usize, side: usize, labels: &[u8]) -> PathBuf {
    let dir = tmp_dir(name);
    let pixels = vec![7u8; n_images * side * side];
    for split in ["train", "t10k"] {
        write_idx_u8(dir.join(format!("{split}-images-idx3-ubyte.gz")), &[n_images, side, side], &pixels).unwrap();
        write_idx_u8(dir.join(format!("{split}-labels-idx1-ubyte")), &[labels.len()], labels).unwrap();
    }
    dir
}

#[test]
fn loads_a_mix_of_raw_and_gzip_files() {
    let dir = fake_dir("fm_ok", 3, 28, &[0, 9, 4]);
    let data = FashionMnist::load(&dir).unwrap();
    assert_eq!(data.test.labels(), [0, 9, 4]);
    assert_eq!(data.train.image(2), [7u8; 784]);
}

#[test]
fn inconsistent_files_are_errors_naming_the_file() {
    let expect_invalid = |dir: &Path, file: &str, needle: &str| {
        let err = FashionMnist::load(dir).unwrap_err();
        assert!(matches!(err, DataError::Invalid { .. }), "{err}");
        assert_eq!(err.path(), Some(dir.join(file).as_path()), "{err}");
        assert!(err.to_string().contains(needle), "{err}");
    };
    let dir = fake_dir("fm_count", 3, 28, &[0, 1]);
    expect_invalid(&dir, "train-labels-idx1-ubyte", "the images file has 3 images");
    let dir = fake_dir("fm_label", 2, 28, &[0, 10]);
    expect_invalid(&dir, "train-labels-idx1-ubyte", "label 10 at index 1");
    let dir = fake_dir("fm_side", 2, 27, &[0, 1]);
    expect_invalid(&dir, "train-images-idx3-ubyte.gz", "must be 28x28");

    let dir = fake_dir("fm_missing", 1, 28, &[0]);
    std::fs::remove_file(dir.join("t10k-labels-idx1-ubyte")).unwrap();
    let err = FashionMnist::load(&dir).unwrap_err();
    assert!(matches!(&err, DataError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound));
    assert!(err.to_string().contains("t10k-labels-idx1-ubyte.gz: not found"), "{err}");

    let dir = fake_dir("fm_corrupt", 1, 28, &[0]);
    std::fs::write(dir.join("train-images-idx3-ubyte.gz"), [0x1f, 0x8b, 8, 0, 1, 2]).unwrap();
    assert!(matches!(FashionMnist::load(&dir), Err(DataError::Gzip { .. })));
}

#[test]
fn image_set_helpers() {
    let set = ImageSet::new(vec![0, 255, 51, 102], vec![3, 1], 1, 2);
    assert_eq!((set.len(), set.image(1), set.label(0)), (2, &[51u8, 102][..], 3));
    assert_eq!(set.to_f32(PixelScaling::Unit), [0.0, 1.0, 0.2, 0.4]);
    assert_eq!(set.truncated(1).labels(), [3]);
}

#[test]
#[should_panic(expected = "ImageSet::new")]
fn image_set_with_wrong_sizes_panics() {
    ImageSet::new(vec![0; 5], vec![1, 2], 1, 2);
}
