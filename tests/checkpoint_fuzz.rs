//! The safetensors reader never panics: random bytes, every truncation and every single-bit flip of a valid
//! file, and hand-made hostile headers all give `Err` (or, for flips inside tensor data, a valid parse).

use std::collections::HashMap;
use tensorgrad::io::{load_from_bytes, serialize_state_dict, CheckpointError};
use tensorgrad::Tensor;

/// xorshift64*: a tiny deterministic generator (no dependency, same bytes on every run).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn valid_file() -> Vec<u8> {
    let tensors = vec![
        ("a.weight".to_string(), Tensor::from_vec(vec![1.0f32, -2.0, 3.5, 0.25, 5.0, 6.0], &[2, 3])),
        ("b".to_string(), Tensor::from_vec(vec![1.0f64, 2.0], &[2])),
        ("n".to_string(), Tensor::from_vec(vec![42i64], &[])),
        ("m".to_string(), Tensor::from_vec(vec![true, false], &[2])),
    ];
    let meta: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
    serialize_state_dict(&tensors, &meta).unwrap()
}

#[test]
fn random_bytes_are_rejected() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..3000 {
        let len = (rng.next() % 300) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if round % 2 == 0 && len >= 8 {
            // A plausible header length so the parser gets as far as the JSON.
            let n = (rng.next() % (len as u64)).to_le_bytes();
            bytes[..8].copy_from_slice(&n);
        }
        assert!(load_from_bytes(&bytes).is_err(), "random bytes parsed: {bytes:?}");
    }
}

#[test]
fn every_truncation_of_a_valid_file_is_an_error() {
    let file = valid_file();
    assert_eq!(load_from_bytes(&file).unwrap().0.len(), 4);
    for len in 0..file.len() {
        let err = load_from_bytes(&file[..len]).unwrap_err();
        assert!(matches!(err, CheckpointError::Format { .. }), "truncated to {len}: {err}");
    }
    let mut longer = file.clone();
    longer.push(0);
    assert!(load_from_bytes(&longer).is_err(), "trailing bytes");
}

#[test]
fn every_single_bit_flip_parses_or_errs_without_panicking() {
    let file = valid_file();
    let header_end = 8 + u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    let (mut ok, mut err) = (0, 0);
    for byte in 0..file.len() {
        for bit in 0..8 {
            let mut f = file.clone();
            f[byte] ^= 1 << bit;
            match load_from_bytes(&f) {
                Ok((tensors, _)) => {
                    ok += 1;
                    for (_, t) in &tensors {
                        let _ = t.to_vec_f64(); // the parsed tensors are usable
                    }
                }
                Err(_) => err += 1,
            }
            if byte >= header_end {
                assert!(load_from_bytes(&f).is_ok(), "a flip in tensor data (byte {byte}) is still a valid file");
            }
        }
    }
    assert!(ok > 0 && err > 0, "ok {ok}, err {err}");
}

fn with_header(json: &str, data: &[u8]) -> Vec<u8> {
    let mut v = (json.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(json.as_bytes());
    v.extend_from_slice(data);
    v
}

#[test]
fn hostile_headers_are_errors() {
    let cases: Vec<Vec<u8>> = vec![
        u64::MAX.to_le_bytes().to_vec(),
        with_header("{", &[]),
        with_header("[]", &[]),
        with_header(r#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, &[0; 4]),
        with_header(r#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, &[0; 4]),
        with_header(r#"{"x":{"dtype":"F32","shape":[1099511627776,1099511627776,0],"data_offsets":[0,0]}}"#, &[]),
        with_header(r#"{"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"#, &[]),
        with_header(r#"{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, &[0; 4]),
        with_header(r#"{"x":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}}"#, &[0; 4]),
        with_header(r#"{"x":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#, &[0; 4]),
        with_header(r#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"__metadata__":{"a":1}}"#, &[0; 4]),
        with_header(
            r#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"y":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
            &[0; 4],
        ),
    ];
    for (i, bytes) in cases.iter().enumerate() {
        let err = load_from_bytes(bytes).unwrap_err();
        assert!(!err.to_string().is_empty(), "case {i}");
    }
    // Unsupported dtypes are named.
    let err = load_from_bytes(&cases[9]).unwrap_err();
    assert!(matches!(err, CheckpointError::UnsupportedDtype { ref name, .. } if name == "x"), "{err}");
    // A zero-size tensor whose other dims are huge is accepted by the format but cannot be held here.
    let zero = with_header(r#"{"x":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]}}"#, &[]);
    assert_eq!(load_from_bytes(&zero).unwrap().0[0].1.shape(), &[0, 3]);
}
