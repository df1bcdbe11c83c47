//! Shared helpers for the kernel tests: a seeded RNG, the test sizes, thread-pool runners, tolerances.
#![allow(dead_code)]

/// Sizes every slice kernel is tested on: 0, 1, primes, non-multiples of 8, and a few larger ones.
pub const SIZES: &[usize] = &[0, 1, 2, 3, 5, 7, 8, 9, 13, 16, 17, 31, 64, 97, 257, 1000, 4099];

/// Relative tolerance for f32 results compared with an f64 reference.
pub const F32_TOL: f64 = 2e-6;
/// Relative tolerance for f64 results compared with an f64 reference computed differently.
pub const F64_TOL: f64 = 1e-12;

/// A small deterministic xorshift generator.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }
    pub fn vec_f64(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f64> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }
    pub fn vec_f32(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi) as f32).collect()
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Runs `f` inside a rayon pool with `threads` threads.
pub fn with_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool").install(f)
}

/// Asserts `|got - want| ≤ tol·max(1, |want|)` elementwise (NaN must match NaN).
#[track_caller]
pub fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if w.is_nan() {
            assert!(g.is_nan(), "{what}[{i}]: got {g}, want NaN");
            continue;
        }
        if w.is_infinite() {
            assert_eq!(g, w, "{what}[{i}]");
            continue;
        }
        let err = (g - w).abs();
        assert!(err <= tol * w.abs().max(1.0), "{what}[{i}]: got {g}, want {w} (err {err:e}, tol {tol:e})");
    }
}

pub fn to64(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

pub fn bits32(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}
