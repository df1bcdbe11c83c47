//! The DataLoader visits every sample once per epoch, is deterministic for a seed whatever the prefetching
//! and (for transforms) the batch size, honours drop_last, stops cleanly when dropped early, and surfaces
//! panics from a dataset.

use std::collections::BTreeMap;

use tensorgrad::data::fashion_mnist::shipped_dir;
use tensorgrad::data::{
    Batch, DataLoader, Dataset, FashionMnist, ImageDataset, Normalize, PixelScaling, RandomCrop, RandomHorizontalFlip,
    Sample, VecDataset,
};

/// `n` samples of shape [2, 3]; sample i holds the values 100 i + 0..6 and label i % 10.
fn numbered(n: usize) -> VecDataset {
    let x = (0..n).flat_map(|i| (0..6).map(move |k| (100 * i + k) as f32)).collect();
    VecDataset::new(x, (0..n).map(|i| i % 10).collect(), &[2, 3])
}

fn sample_ids(batches: &[Batch]) -> Vec<usize> {
    batches.iter().flat_map(|b| b.x.chunks(6).map(|s| s[0] as usize / 100)).collect()
}

#[test]
fn each_epoch_visits_every_sample_once_in_a_seeded_order() {
    let loader = DataLoader::new(numbered(103), 10).shuffle(true).seed(7);
    assert_eq!(loader.num_batches(), 11);
    let epoch0: Vec<Batch> = loader.epoch(0).collect();
    assert_eq!(epoch0.len(), 11);
    assert_eq!(epoch0[0].x_shape, [10, 2, 3]);
    assert_eq!(epoch0[10].x_shape, [3, 2, 3]);
    let ids = sample_ids(&epoch0);
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..103).collect::<Vec<_>>());
    assert_ne!(ids, sorted, "shuffled");
    // Labels travel with their inputs.
    for b in &epoch0 {
        for (s, &y) in b.x.chunks(6).zip(&b.y) {
            assert_eq!(s[0] as usize / 100 % 10, y);
            assert_eq!(s, (0..6).map(|k| s[0] + k as f32).collect::<Vec<_>>());
        }
    }
    let epoch1 = sample_ids(&loader.epoch(1).collect::<Vec<_>>());
    assert_ne!(ids, epoch1, "a new order each epoch");
    let other_seed = DataLoader::new(numbered(103), 10).shuffle(true).seed(8);
    assert_ne!(ids, sample_ids(&other_seed.epoch(0).collect::<Vec<_>>()));
}

#[test]
fn without_shuffle_the_order_is_the_dataset_order() {
    let loader = DataLoader::new(numbered(25), 4);
    assert_eq!(sample_ids(&loader.epoch(3).collect::<Vec<_>>()), (0..25).collect::<Vec<_>>());
}

#[test]
fn drop_last_drops_the_partial_batch() {
    let loader = DataLoader::new(numbered(103), 10).drop_last(true).shuffle(true);
    assert_eq!(loader.num_batches(), 10);
    let batches: Vec<_> = loader.epoch(0).collect();
    assert!(batches.iter().all(|b| b.len() == 10));
    assert_eq!(loader.epoch(0).len(), 10);
    let exact = DataLoader::new(numbered(100), 10).drop_last(true);
    assert_eq!(exact.epoch(0).count(), 10);
}

#[test]
fn prefetching_does_not_change_the_batches() {
    let make = |prefetch| {
        DataLoader::new(numbered(200), 16)
            .shuffle(true)
            .seed(3)
            .prefetch(prefetch)
            .transform(RandomHorizontalFlip::default())
            .transform(RandomCrop::new(1, 0.0))
            .transform(Normalize::new(&[1.0, 2.0], &[2.0, 4.0]))
    };
    let reference: Vec<Batch> = make(0).epoch(2).collect();
    for prefetch in [1, 2, 8] {
        assert_eq!(make(prefetch).epoch(2).collect::<Vec<_>>(), reference, "prefetch {prefetch}");
    }
}

#[test]
fn augmentation_depends_on_the_sample_not_the_batching() {
    let make = |batch_size| DataLoader::new(numbered(30), batch_size).seed(5).transform(RandomCrop::new(1, -1.0));
    let flat = |bs| make(bs).epoch(0).flat_map(|b| b.x).collect::<Vec<f32>>();
    let a = flat(3);
    assert_eq!(a, flat(7));
    assert_ne!(a, flat_untransformed(), "the crop changed something");
    fn flat_untransformed() -> Vec<f32> {
        DataLoader::new(numbered(30), 30).epoch(0).flat_map(|b| b.x).collect()
    }
}

#[test]
fn dropping_an_epoch_early_stops_the_prefetch_thread() {
    let loader = DataLoader::new(numbered(10_000), 1).prefetch(1);
    for _ in 0..20 {
        let mut epoch = loader.epoch(0);
        assert_eq!(epoch.len(), 10_000);
        let first = epoch.next().unwrap();
        assert_eq!(first.y, [0]);
        assert_eq!(epoch.len(), 9_999);
        // Dropped here with ~10,000 batches unsent: must not hang.
    }
}

struct Faulty;

impl Dataset for Faulty {
    fn len(&self) -> usize {
        10
    }
    fn sample_shape(&self) -> Vec<usize> {
        vec![1]
    }
    fn get(&self, index: usize) -> Sample {
        assert!(index != 5, "faulty sample 5");
        Sample { x: vec![index as f32], y: 0 }
    }
}

#[test]
#[should_panic(expected = "faulty sample 5")]
fn a_panic_in_the_dataset_reaches_the_training_loop() {
    for _ in DataLoader::new(Faulty, 2).prefetch(2).epoch(0) {}
}

#[test]
fn fashion_mnist_batches() {
    let data = FashionMnist::load(shipped_dir()).unwrap();
    let train = ImageDataset::new(data.train.clone(), PixelScaling::Standardize);
    let loader = DataLoader::new(train, 128).shuffle(true).seed(1);
    assert_eq!(loader.num_batches(), 79);
    let mut per_class = BTreeMap::new();
    let mut sum = 0.0f64;
    for batch in loader.epoch(0) {
        assert_eq!(&batch.x_shape[1..], [1, 28, 28]);
        for &y in &batch.y {
            *per_class.entry(y).or_insert(0) += 1;
        }
        sum += batch.x.iter().map(|&v| f64::from(v)).sum::<f64>();
        let flat = batch.flattened();
        assert_eq!(flat.x_shape[1], 784);
    }
    assert!(per_class.values().all(|&c| c == 1_000));
    assert!((sum / (10_000.0 * 784.0)).abs() < 0.03, "standardized mean {}", sum / (10_000.0 * 784.0));

    // ImageSet itself is a dataset of [1, 28, 28] unit-scaled images; flattened ImageDataset gives [784].
    assert_eq!(data.test.sample_shape(), [1, 28, 28]);
    let mlp = ImageDataset::new(data.test, PixelScaling::Unit).flattened();
    let batch = DataLoader::new(mlp, 32).epoch(0).next().unwrap();
    assert_eq!(batch.x_shape, [32, 784]);
    assert_eq!(batch.y_one_hot(10).len(), 32 * 10);
}

#[test]
fn batches_convert_to_tensors() {
    let loader = DataLoader::new(numbered(10), 4).shuffle(true).seed(2);
    let batch = loader.epoch(0).next().unwrap();
    let (x, y) = batch.clone().into_tensors();
    assert_eq!(x.shape(), [4, 2, 3]);
    assert_eq!(x.to_vec::<f32>(), batch.x);
    assert_eq!(batch.x_tensor().to_vec::<f32>(), batch.x);
    assert_eq!(y.shape(), [4]);
    assert_eq!(y.to_vec::<i64>(), batch.y.iter().map(|&c| c as i64).collect::<Vec<_>>());
}
