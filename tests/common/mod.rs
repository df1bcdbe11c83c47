//! Shared test helpers: PyTorch fixture loading and the project's tolerances (kept in this one place).
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use tensorgrad::{DType, Tensor};

/// Relative tolerance against PyTorch in f64.
pub const F64_RTOL: f64 = 1e-6;
/// Relative tolerance against PyTorch in f32.
pub const F32_RTOL: f64 = 1e-4;
/// Absolute floor added to relative tolerances (values near zero).
pub const ATOL: f64 = 1e-7;

/// `tests/fixtures/<relative>`.
pub fn fixture_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(relative)
}

/// Parses a JSON fixture written by `tests/fixtures/fixture_io.py`.
pub fn load_fixture(relative: &str) -> Value {
    let path = fixture_path(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON in {}: {e}", path.display()))
}

/// A tensor from `{"shape": [..], "dtype": "float64" | "float32" | "int64" | "bool", "data": [..]}`.
pub fn tensor(v: &Value) -> Tensor {
    let shape: Vec<usize> =
        v["shape"].as_array().expect("shape").iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let data = v["data"].as_array().expect("data");
    match v["dtype"].as_str().expect("dtype") {
        "float64" => Tensor::from_vec(data.iter().map(num).collect::<Vec<f64>>(), &shape),
        "float32" => Tensor::from_vec(data.iter().map(|x| num(x) as f32).collect::<Vec<f32>>(), &shape),
        "int64" => Tensor::from_vec(data.iter().map(|x| x.as_i64().unwrap()).collect::<Vec<i64>>(), &shape),
        "bool" => Tensor::from_vec(data.iter().map(|x| x.as_bool().unwrap()).collect::<Vec<bool>>(), &shape),
        other => panic!("unknown fixture dtype {other}"),
    }
}

/// JSON numbers, plus the strings "nan", "inf", "-inf".
fn num(x: &Value) -> f64 {
    match x {
        Value::String(s) => s.parse().unwrap_or_else(|_| panic!("bad number {s}")),
        _ => x.as_f64().unwrap(),
    }
}

/// Panics with a message naming `what`, the index and both values unless every element satisfies
/// `|a - e| <= atol + rtol * |e|` (NaNs must match NaNs).
#[track_caller]
pub fn assert_close(actual: &Tensor, expected: &Tensor, rtol: f64, what: &str) {
    assert_eq!(actual.shape(), expected.shape(), "{what}: shape");
    let (a, e) = (actual.to_vec_f64(), expected.to_vec_f64());
    for (i, (&x, &y)) in a.iter().zip(&e).enumerate() {
        let ok = (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= ATOL + rtol * y.abs();
        assert!(ok, "{what}: element {i}: got {x:e}, expected {y:e} (rtol {rtol:e})");
    }
}

/// The tolerance for a dtype.
pub fn rtol_for(dtype: DType) -> f64 {
    if dtype == DType::F32 {
        F32_RTOL
    } else {
        F64_RTOL
    }
}
