//! The character vocabulary round-trips; the Shakespeare split is the last 10%; random training windows are
//! seeded, shifted by one and stay inside the training part; bad files are `Err`s.

use std::path::PathBuf;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tensorgrad::data::{CharText, CharVocab, DataError};

fn shakespeare_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/shakespeare.txt")
}

#[test]
fn shakespeare_loads_with_last_ten_percent_for_validation() {
    let raw = std::fs::read_to_string(shakespeare_path()).unwrap();
    assert_eq!(raw.len(), 1_100_000);
    let text = CharText::from_file(shakespeare_path()).unwrap();
    let vocab = text.vocab();
    assert_eq!(vocab.len(), 78);
    assert!(vocab.chars().windows(2).all(|w| w[0] < w[1]), "sorted and unique");
    assert_eq!(text.tokens().len(), raw.chars().count());
    assert_eq!(text.val().len(), 110_000);
    assert_eq!(text.train().len() + text.val().len(), text.tokens().len());
    assert_eq!(vocab.decode(text.tokens()), raw);
    let val_text: String = raw.chars().skip(text.train().len()).collect();
    assert_eq!(vocab.decode(text.val()), val_text);
    assert_eq!(vocab.encode(&raw).unwrap(), text.tokens());
}

#[test]
fn vocab_round_trips_random_unicode() {
    let mut rng = StdRng::seed_from_u64(7);
    let alphabet: Vec<char> = "ab \n\tÆæ€😀zZ09'\"".chars().collect();
    for _ in 0..500 {
        let len = rng.random_range(0..200);
        let s: String = (0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())]).collect();
        let vocab = CharVocab::from_text(&s);
        let ids = vocab.encode(&s).unwrap();
        assert!(ids.iter().all(|&i| i < vocab.len()));
        assert_eq!(vocab.decode(&ids), s);
    }
    let err = CharVocab::from_text("abc").encode("abd").unwrap_err();
    assert!(matches!(err, DataError::UnknownChar { ch: 'd', position: 2 }));
}

#[test]
fn train_batches_are_seeded_shifted_windows_of_the_training_part() {
    let text = CharText::from_text("abcdefghijklmnopqrstuvwxyz", 0.2); // train a..u, val v..z
    let train = text.train().to_vec();
    assert_eq!(text.vocab().decode(&train), "abcdefghijklmnopqrstu");
    let a = text.train_batch(&mut StdRng::seed_from_u64(3), 64, 5);
    let b = text.train_batch(&mut StdRng::seed_from_u64(3), 64, 5);
    assert_eq!(a, b, "same seed, same batch");
    assert_eq!(a.inputs_tensor().shape(), [64, 5]);
    assert_eq!(a.targets_tensor().to_vec::<i64>(), a.targets.iter().map(|&t| t as i64).collect::<Vec<_>>());
    let c = text.train_batch(&mut StdRng::seed_from_u64(4), 64, 5);
    assert_ne!(a, c);

    let mut starts = Vec::new();
    for row in 0..64 {
        let x = &a.inputs[row * 5..row * 5 + 5];
        let y = &a.targets[row * 5..row * 5 + 5];
        assert_eq!(x[1..], y[..4]);
        // Ids are sorted letters, so a window is consecutive ids inside the training part.
        assert!(x.windows(2).all(|w| w[1] == w[0] + 1));
        assert!(y[4] < train.len(), "target stays in the training part");
        starts.push(x[0]);
    }
    // Every start 0..=15 is possible; 64 draws hit both ends.
    assert_eq!((starts.iter().min(), starts.iter().max()), (Some(&0), Some(&15)));
}

#[test]
fn val_batches_cover_the_validation_part() {
    let text = CharText::from_file(shakespeare_path()).unwrap();
    let block = 64;
    let batches: Vec<_> = text.val_batches(32, block).collect();
    let windows: usize = batches.iter().map(|b| b.batch_size).sum();
    assert_eq!(windows, (110_000 - 1) / block);
    let first = &batches[0];
    assert_eq!(first.inputs[..block], text.val()[..block]);
    assert_eq!(first.targets[..block], text.val()[1..block + 1]);
    assert_eq!(first.inputs[block..2 * block], text.val()[block..2 * block]);
}

#[test]
fn bad_text_files_are_errors() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("data_text");
    std::fs::create_dir_all(&dir).unwrap();
    let latin1 = dir.join("latin1.txt");
    std::fs::write(&latin1, b"caf\xe9 au lait").unwrap();
    let err = CharText::from_file(&latin1).unwrap_err();
    assert!(matches!(err, DataError::Invalid { .. }));
    assert!(err.to_string().contains("not UTF-8 text (invalid byte sequence at byte 3)"), "{err}");

    let short = dir.join("short.txt");
    std::fs::write(&short, "hi").unwrap();
    assert!(CharText::from_file(&short).unwrap_err().to_string().contains("too short"));

    assert!(matches!(CharText::from_file(dir.join("missing.txt")), Err(DataError::Io { .. })));

    let ok = dir.join("ok.txt");
    std::fs::write(&ok, "abcdefghijklmnopqrst").unwrap(); // 18 train, 2 val characters
    let text = CharText::from_file(&ok).unwrap();
    assert_eq!(text.max_block_size(), 1);
    assert!(text.check_block_size(1).is_ok());
    let err = text.check_block_size(64).unwrap_err();
    assert_eq!(err.path(), Some(ok.as_path()));
}

#[test]
#[should_panic(expected = "CharText::train_batch")]
fn oversized_block_panics() {
    CharText::from_text("abc", 0.0).train_batch(&mut StdRng::seed_from_u64(0), 1, 3);
}
