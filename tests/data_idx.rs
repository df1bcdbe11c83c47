//! The IDX reader never panics: random bytes, truncations, bit flips and hostile headers give `Err` (or a
//! consistent parse when a mutation is harmless), raw and gzip; the writer round-trips through the reader.

use std::io::Write;
use std::path::PathBuf;

use flate2::write::GzEncoder;
use flate2::Compression;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tensorgrad::data::idx::{decode_idx, encode_idx_u8, read_idx, write_idx_u8};
use tensorgrad::data::{DataError, IdxArray, IdxData, IdxProblem, IdxType};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.random()).collect()
}

/// A small valid u8 IDX file and its contents.
fn sample(rng: &mut StdRng) -> (Vec<usize>, Vec<u8>, Vec<u8>) {
    let dims = vec![7, 5, 3];
    let data = random_bytes(rng, 7 * 5 * 3);
    let bytes = encode_idx_u8(&dims, &data);
    (dims, data, bytes)
}

/// Whatever a successful parse returns must be self-consistent.
fn assert_consistent(array: &IdxArray) {
    let n = array.dims.iter().product::<usize>();
    assert_eq!(array.len(), n, "dims {:?} vs {} elements", array.dims, array.len());
    assert!(!array.dims.is_empty());
}

fn tmp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut oks = 0;
    for case in 0..4000 {
        let len = rng.random_range(0..64);
        let mut bytes = random_bytes(&mut rng, len);
        // Steer part of the cases past the first checks: a plausible magic, or the gzip magic.
        match case % 4 {
            1 if bytes.len() >= 4 => {
                bytes[..3].copy_from_slice(&[0, 0, [8, 9, 0x0b, 0x0c, 0x0d, 0x0e][case % 6]]);
                bytes[3] = rng.random_range(0..4);
            }
            2 if bytes.len() >= 2 => bytes[..2].copy_from_slice(&[0x1f, 0x8b]),
            3 => bytes = gzip(&bytes),
            _ => {}
        }
        if let Ok(array) = decode_idx(&bytes, "random.idx") {
            assert_consistent(&array);
            oks += 1;
        }
    }
    assert!(oks < 4000);
}

#[test]
fn every_truncation_is_an_error() {
    let mut rng = StdRng::seed_from_u64(2);
    let (dims, data, raw) = sample(&mut rng);
    let gz = gzip(&raw);
    for bytes in [&raw, &gz] {
        let full = decode_idx(bytes, "full.idx").unwrap();
        assert_eq!((full.dims.clone(), full.data), (dims.clone(), IdxData::U8(data.clone())));
        for cut in 0..bytes.len() {
            let err = decode_idx(&bytes[..cut], "cut.idx").expect_err("a truncated file must not parse");
            assert_eq!(err.path(), Some("cut.idx".as_ref()));
        }
    }
    // The raw truncations say which part is missing.
    assert!(matches!(
        decode_idx(&raw[..6], "cut.idx").unwrap_err().idx_problem(),
        Some(IdxProblem::TruncatedHeader { needed: 16, found: 6 })
    ));
    assert!(matches!(
        decode_idx(&raw[..20], "cut.idx").unwrap_err().idx_problem(),
        Some(IdxProblem::Truncated { expected: 105, found: 4, .. })
    ));
    // A gzip stream cut short is a gzip error, not a silent short read.
    assert!(matches!(decode_idx(&gz[..gz.len() - 1], "cut.gz"), Err(DataError::Gzip { .. })));
}

#[test]
fn random_truncations_of_a_larger_gzip_file_are_errors() {
    let mut rng = StdRng::seed_from_u64(3);
    let data = random_bytes(&mut rng, 300 * 28 * 28);
    let gz = gzip(&encode_idx_u8(&[300, 28, 28], &data));
    assert!(decode_idx(&gz, "big.gz").is_ok());
    for _ in 0..300 {
        let cut = rng.random_range(0..gz.len());
        assert!(decode_idx(&gz[..cut], "big.gz").is_err());
    }
}

#[test]
fn bit_flips_give_errors_or_harmless_parses() {
    let mut rng = StdRng::seed_from_u64(4);
    let (dims, data, raw) = sample(&mut rng);
    let gz = gzip(&raw);
    let (mut raw_ok, mut gz_ok) = (0, 0);
    for case in 0..3000 {
        let gzip_case = case % 2 == 1;
        let mut bytes = if gzip_case { gz.clone() } else { raw.clone() };
        let flips = rng.random_range(1..=3);
        for _ in 0..flips {
            let i = rng.random_range(0..bytes.len());
            bytes[i] ^= 1 << rng.random_range(0..8);
        }
        let Ok(array) = decode_idx(&bytes, "flipped.idx") else {
            continue;
        };
        assert_consistent(&array);
        if gzip_case {
            // The CRC protects the contents: a gzip file that still decodes decodes to the original.
            assert_eq!((array.dims, array.data), (dims.clone(), IdxData::U8(data.clone())));
            gz_ok += 1;
        } else {
            raw_ok += 1;
        }
    }
    // Flips in the raw payload are harmless; most gzip flips are caught.
    assert!(raw_ok > 500, "{raw_ok}");
    assert!(gz_ok < 1000, "{gz_ok}");
}

#[test]
fn hostile_headers_do_not_allocate_what_they_claim() {
    // 2^64 - 2^33 + 1 claimed bytes (fits in usize), 3 present: an error, instantly.
    let mut b = vec![0, 0, 8, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    b.extend_from_slice(&[1, 2, 3]);
    assert!(matches!(decode_idx(&b, "h").unwrap_err().idx_problem(), Some(IdxProblem::Truncated { found: 3, .. })));
    // The same through gzip.
    assert!(matches!(
        decode_idx(&gzip(&b), "h.gz").unwrap_err().idx_problem(),
        Some(IdxProblem::Truncated { found: 3, .. })
    ));
    // f64 elements: the byte count overflows.
    let b = [0, 0, 0x0e, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    assert!(matches!(decode_idx(&b, "h").unwrap_err().idx_problem(), Some(IdxProblem::DimsOverflow { .. })));
    // 255 dimensions of size 2.
    let mut b = vec![0, 0, 8, 255];
    for _ in 0..255 {
        b.extend_from_slice(&2u32.to_be_bytes());
    }
    assert!(matches!(decode_idx(&b, "h").unwrap_err().idx_problem(), Some(IdxProblem::DimsOverflow { .. })));
}

#[test]
fn trailing_bytes_are_errors() {
    let mut rng = StdRng::seed_from_u64(5);
    let (dims, _, raw) = sample(&mut rng);
    let mut longer = raw.clone();
    longer.extend_from_slice(&[0; 5]);
    assert_eq!(
        decode_idx(&longer, "long.idx").unwrap_err().idx_problem(),
        Some(&IdxProblem::TrailingBytes { dims: dims.clone(), extra: 5, at_least: false })
    );
    // Gzip: extra data in a second gzip member is trailing IDX data; garbage after the member is corrupt gzip.
    let mut two_members = gzip(&raw);
    two_members.extend_from_slice(&gzip(&[9; 7]));
    assert_eq!(
        decode_idx(&two_members, "two.gz").unwrap_err().idx_problem(),
        Some(&IdxProblem::TrailingBytes { dims, extra: 7, at_least: false })
    );
    let mut garbage = gzip(&raw);
    garbage.extend_from_slice(b"garbage");
    assert!(matches!(decode_idx(&garbage, "g.gz"), Err(DataError::Gzip { .. })));
}

#[test]
fn errors_name_the_file_and_the_problem() {
    let err = decode_idx(&[0x50, 0x4b, 3, 4], "/x/train-images-idx3-ubyte").unwrap_err();
    assert_eq!(
        err.to_string(),
        "/x/train-images-idx3-ubyte: wrong magic number [50, 4b, 03, 04]: an IDX file starts with 00 00 <type> <ndims>"
    );
    let err = read_idx("/nonexistent/labels.gz").unwrap_err();
    assert!(matches!(err, DataError::Io { .. }));
    assert!(err.to_string().starts_with("/nonexistent/labels.gz: "));
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn writer_round_trips_raw_and_gzip() {
    let mut rng = StdRng::seed_from_u64(6);
    let dir = tmp_dir("data_idx_round_trip");
    for case in 0..60 {
        let ndims = rng.random_range(1..=4);
        let dims: Vec<usize> = (0..ndims).map(|_| rng.random_range(0..6)).collect();
        let data = random_bytes(&mut rng, dims.iter().product());
        let name = if case % 2 == 0 { "a.idx" } else { "a.idx.gz" };
        let path = dir.join(name);
        write_idx_u8(&path, &dims, &data).unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(on_disk.starts_with(&[0x1f, 0x8b]), case % 2 == 1);
        let back = read_idx(&path).unwrap();
        assert_eq!(back.dtype(), IdxType::U8);
        assert_eq!((back.dims.clone(), back.into_u8().unwrap()), (dims, data));
    }
    // No temporary files left behind.
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(names.iter().all(|n| n == "a.idx" || n == "a.idx.gz"), "{names:?}");
}

#[test]
fn splices_give_errors_or_consistent_parses() {
    let mut rng = StdRng::seed_from_u64(8);
    let (_, _, raw) = sample(&mut rng);
    let gz = gzip(&raw);
    for case in 0..2000 {
        let mut bytes = if case % 2 == 0 { raw.clone() } else { gz.clone() };
        let at = rng.random_range(0..=bytes.len());
        if rng.random_bool(0.5) {
            let end = rng.random_range(at..=bytes.len());
            bytes.drain(at..end);
        } else {
            let len = rng.random_range(1..16);
            let insert = random_bytes(&mut rng, len);
            bytes.splice(at..at, insert);
        }
        if let Ok(array) = decode_idx(&bytes, "spliced") {
            assert_consistent(&array);
        }
    }
}

#[test]
fn bit_flips_in_the_shipped_labels_file_are_caught_or_harmless() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist/t10k-labels-idx1-ubyte.gz");
    let original = std::fs::read(&path).unwrap();
    let good = decode_idx(&original, &path).unwrap();
    assert_eq!(good.dims, [2_000]);
    let mut rng = StdRng::seed_from_u64(9);
    for _ in 0..1000 {
        let mut bytes = original.clone();
        let i = rng.random_range(0..bytes.len());
        bytes[i] ^= 1 << rng.random_range(0..8);
        if let Ok(array) = decode_idx(&bytes, &path) {
            assert_eq!(array, good, "flip at byte {i} changed the contents undetected");
        }
    }
}
