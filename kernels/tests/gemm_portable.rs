//! The portable (no `std::arch`) kernels, which are what runs on non-x86 CPUs, forced on this CPU through
//! the test-only switch and checked against the naive reference. A separate test binary, so the switch
//! (process-wide) does not affect the other GEMM tests.

mod gemm_common;

use gemm_common::*;
use tensorgrad_kernels::gemm::{dgemm, force_isa, kernel_name, sgemm, Isa};

fn portable() {
    force_isa(Some(Isa::Portable));
    assert!(kernel_name::<f32>().starts_with("portable"));
}

#[test]
fn portable_sgemm_matches_reference() {
    portable();
    grid::<f32>(sgemm, 21);
    big::<f32>(sgemm, 22);
    // A PackedB packed for this tier (panels of 8 columns).
    big::<f32>(packed_b, 26);
}

#[test]
fn portable_dgemm_matches_reference() {
    portable();
    grid::<f64>(dgemm, 23);
    big::<f64>(dgemm, 24);
}

#[test]
fn portable_one_and_two_threads_are_bitwise_identical() {
    portable();
    let mut rng = Rng(25);
    let (m, k, n) = (650, 300, 170);
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
