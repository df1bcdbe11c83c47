//! The seeded random number generator behind `rand`, `randn`, dropout and initializers.
//! One process-wide generator, like PyTorch's default generator: `manual_seed(s)` makes runs reproducible.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::{Mutex, OnceLock};

/// PyTorch's default seed, so an unseeded run is still deterministic.
const DEFAULT_SEED: u64 = 67280421310721;

fn generator() -> &'static Mutex<StdRng> {
    static GEN: OnceLock<Mutex<StdRng>> = OnceLock::new();
    GEN.get_or_init(|| Mutex::new(StdRng::seed_from_u64(DEFAULT_SEED)))
}

/// Reseeds the global generator used by random constructors, dropout and initializers.
pub fn manual_seed(seed: u64) {
    *generator().lock().unwrap_or_else(|e| e.into_inner()) = StdRng::seed_from_u64(seed);
}

/// Runs `f` with the global generator locked.
pub(crate) fn with_rng<R>(f: impl FnOnce(&mut StdRng) -> R) -> R {
    f(&mut generator().lock().unwrap_or_else(|e| e.into_inner()))
}

/// `n` samples of U[low, high).
pub(crate) fn uniform_vec(n: usize, low: f64, high: f64) -> Vec<f64> {
    with_rng(|rng| (0..n).map(|_| low + (high - low) * rng.random::<f64>()).collect())
}

/// `n` samples of N(mean, std^2), by the Box-Muller transform:
/// z0 = sqrt(-2 ln u1) cos(2 pi u2), z1 = sqrt(-2 ln u1) sin(2 pi u2) for u1 in (0, 1], u2 in [0, 1).
pub(crate) fn normal_vec(n: usize, mean: f64, std: f64) -> Vec<f64> {
    with_rng(|rng| {
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            let u1 = 1.0 - rng.random::<f64>();
            let u2 = rng.random::<f64>();
            let r = (-2.0 * u1.ln()).sqrt();
            let theta = 2.0 * std::f64::consts::PI * u2;
            out.push(mean + std * r * theta.cos());
            out.push(mean + std * r * theta.sin());
        }
        out.truncate(n);
        out
    })
}

/// `n` integers uniform in [low, high).
pub(crate) fn randint_vec(n: usize, low: i64, high: i64) -> Vec<i64> {
    with_rng(|rng| (0..n).map(|_| rng.random_range(low..high)).collect())
}

/// A random permutation of 0..n (Fisher-Yates).
pub fn randperm(n: usize) -> Vec<usize> {
    with_rng(|rng| {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = rng.random_range(0..=i);
            p.swap(i, j);
        }
        p
    })
}
