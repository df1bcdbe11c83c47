//! The AVX2+FMA tier forced on a CPU that also has AVX-512 (the tier CPUs without AVX-512 run), checked
//! against the naive reference. A separate test binary, so the switch (process-wide) does not affect the
//! other GEMM tests. Skipped (passes trivially) on a CPU without AVX2.

mod gemm_common;

use gemm_common::*;
use tensorgrad_kernels::gemm::{detected_isa, dgemm, force_isa, kernel_name, sgemm, Isa};

/// Caps the tier at AVX2; false if the CPU does not have it.
fn avx2() -> bool {
    force_isa(Some(Isa::Avx2));
    if detected_isa() < Isa::Avx2 {
        return false;
    }
    assert!(kernel_name::<f32>().starts_with("avx2"));
    true
}

#[test]
fn avx2_sgemm_matches_reference() {
    if !avx2() {
        return;
    }
    grid::<f32>(sgemm, 21);
    big::<f32>(sgemm, 22);
    // A PackedB packed for this tier (panels of 16 columns).
    big::<f32>(packed_b, 26);
}

#[test]
fn avx2_dgemm_matches_reference() {
    if !avx2() {
        return;
    }
    grid::<f64>(dgemm, 23);
    big::<f64>(dgemm, 24);
}

#[test]
fn avx2_one_and_two_threads_are_bitwise_identical() {
    if !avx2() {
        return;
    }
    let mut rng = Rng(25);
    let (m, k, n) = (150, 300, 170);
    let a: Vec<f32> = random(&mut rng, m * k);
    let b: Vec<f32> = random(&mut rng, k * n);
    let run = |threads: usize| {
        let mut c = vec![0.0f32; m * n];
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| sgemm(m, k, n, 1.0, &a, k, 1, &b, n, 1, 0.0, &mut c, n, 1));
        c.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    };
    assert_eq!(run(1), run(2));
}
