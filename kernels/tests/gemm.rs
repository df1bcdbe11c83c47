//! GEMM against the naive reference: sizes 0, 1, primes and non-multiples of the tile, row-major,
//! column-major (transposed) and strided operands, NaN-filled C with beta = 0, alpha/beta combinations,
//! batched with broadcast, f32 and f64, and bitwise-identical results on 1 and 2 threads.

mod gemm_common;

use gemm_common::*;
use tensorgrad_kernels::gemm::{dgemm, dgemm_batched, gemm_reference, sgemm, sgemm_batched, PAR_MNK};

#[test]
fn sgemm_matches_reference_over_sizes_and_layouts() {
    grid::<f32>(sgemm, 1);
}

#[test]
fn dgemm_matches_reference_over_sizes_and_layouts() {
    grid::<f64>(dgemm, 2);
}

#[test]
fn sgemm_matches_reference_across_cache_blocks() {
    big::<f32>(sgemm, 3);
}

#[test]
fn dgemm_matches_reference_across_cache_blocks() {
    big::<f64>(dgemm, 4);
}

#[test]
fn generic_entry_matches_reference() {
    grid_generic::<f32>();
    grid_generic::<f64>();
}

fn grid_generic<T: TestFloat>() {
    let mut rng = Rng(5);
    for (m, k, n) in [(7, 9, 11), (33, 65, 17)] {
        check_case::<T>(T::gemm, &mut rng, m, k, n, Layout::RowMajor, Layout::ColMajor, Layout::RowMajor, 1.0, 0.5);
    }
}

#[test]
fn beta_zero_never_reads_c_and_alpha_zero_scales() {
    let a = [1.0f32; 6];
    let b = [2.0f32; 6];
    let mut c = [f32::NAN; 4];
    sgemm(2, 3, 2, 1.0, &a, 3, 1, &b, 2, 1, 0.0, &mut c, 2, 1);
    assert_eq!(c, [6.0; 4]);
    // alpha == 0: C = beta * C, A and B not used (a NaN in A does not propagate).
    let a = [f32::NAN; 6];
    sgemm(2, 3, 2, 0.0, &a, 3, 1, &b, 2, 1, 0.5, &mut c, 2, 1);
    assert_eq!(c, [3.0; 4]);
    // k == 0 with beta == 0: C becomes zero even if it held NaN.
    let mut c = [f32::NAN; 4];
    sgemm(2, 0, 2, 1.0, &[], 0, 0, &[], 0, 0, 0.0, &mut c, 2, 1);
    assert_eq!(c, [0.0; 4]);
}

#[allow(clippy::type_complexity)]
/// Batched: per-member results equal the single GEMM, with A or B broadcast (batch stride 0).
fn batched_case<T: TestFloat>(
    f: fn(
        usize,
        usize,
        usize,
        usize,
        T,
        &[T],
        usize,
        usize,
        usize,
        &[T],
        usize,
        usize,
        usize,
        T,
        &mut [T],
        usize,
        usize,
        usize,
    ),
    batch: usize,
    (m, k, n): (usize, usize, usize),
    broadcast_a: bool,
    broadcast_b: bool,
    seed: u64,
) {
    let mut rng = Rng(seed);
    let (bsa, bsb, bsc) = (if broadcast_a { 0 } else { m * k + 3 }, if broadcast_b { 0 } else { k * n + 1 }, m * n + 2);
    let a: Vec<T> = random(&mut rng, (batch - 1) * bsa + m * k);
    // B column-major, to mix layouts.
    let b: Vec<T> = random(&mut rng, (batch - 1) * bsb + k * n);
    let c0: Vec<T> = random(&mut rng, (batch - 1) * bsc + m * n);
    let (alpha, beta) = (T::from_f64(0.5), T::from_f64(-1.0));
    let mut got = c0.clone();
    f(batch, m, k, n, alpha, &a, bsa, k, 1, &b, bsb, 1, k, beta, &mut got, bsc, n, 1);
    let mut want = c0.clone();
    for l in 0..batch {
        T::gemm(m, k, n, alpha, &a[l * bsa..], k, 1, &b[l * bsb..], 1, k, beta, &mut want[l * bsc..], n, 1);
    }
    assert!(got.iter().zip(&want).all(|(g, w)| g.bits() == w.bits()), "batched != looped single GEMMs");
    // And the single GEMM is right (checked against the reference for member 0).
    let mut r = c0.clone();
    gemm_reference(m, k, n, alpha, &a, k, 1, &b, 1, k, beta, &mut r, n, 1);
    for idx in 0..m * n {
        assert!((r[idx].to_f64() - got[idx].to_f64()).abs() <= 1e-3 * (1.0 + r[idx].to_f64().abs()));
    }
}

#[test]
fn batched_matches_single_with_broadcast() {
    for (bcast_a, bcast_b) in [(false, false), (true, false), (false, true)] {
        batched_case::<f32>(sgemm_batched, 5, (7, 13, 9), bcast_a, bcast_b, 6);
        batched_case::<f64>(dgemm_batched, 3, (17, 5, 31), bcast_a, bcast_b, 7);
        // Many small members (spread over threads) and few large ones (each threaded).
        batched_case::<f32>(sgemm_batched, 40, (24, 32, 40), bcast_a, bcast_b, 8);
        batched_case::<f32>(sgemm_batched, 2, (130, 200, 120), bcast_a, bcast_b, 9);
    }
}

fn run_on<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
}

fn bits_on_threads<T: TestFloat>(
    f: GemmFn<T>,
    threads: usize,
    (m, k, n): (usize, usize, usize),
    layouts: (Layout, Layout, Layout),
) -> Vec<u64> {
    let mut rng = Rng(11);
    let (rsa, csa, lena) = strides(layouts.0, m, k);
    let (rsb, csb, lenb) = strides(layouts.1, k, n);
    let (rsc, csc, lenc) = strides(layouts.2, m, n);
    let a: Vec<T> = random(&mut rng, lena);
    let b: Vec<T> = random(&mut rng, lenb);
    let mut c: Vec<T> = random(&mut rng, lenc);
    run_on(threads, || f(m, k, n, T::from_f64(1.5), &a, rsa, csa, &b, rsb, csb, T::from_f64(0.5), &mut c, rsc, csc));
    c.iter().map(|x| x.bits()).collect()
}

#[test]
fn one_and_two_threads_are_bitwise_identical() {
    use Layout::*;
    // (64, 784, 40) is a small-path shape with k > KC (one pass over k vs KC blocks would round
    // differently), split over rows; (128, 128, 128) a small-path shape split over columns; (400, 100, 30)
    // a small-path shape split over rows; (1100, 30, 70) has several MC blocks per thread; (36, 300, 640)
    // splits N (3 row panels, 20 column panels) and, with a packed A, shares it between the threads.
    let shapes = [
        (200, 150, 300),
        (97, 600, 130),
        (300, 40, 170),
        (64, 784, 40),
        (128, 128, 128),
        (400, 100, 30),
        (1100, 30, 70),
        (36, 300, 640),
    ];
    for &s in &shapes {
        assert!(s.0 * s.1 * s.2 >= PAR_MNK, "shape {s:?} would not be threaded");
        for layouts in [(RowMajor, RowMajor, RowMajor), (ColMajor, Strided, ColMajor), (ColMajor, RowMajor, RowMajor)] {
            assert_eq!(bits_on_threads::<f32>(sgemm, 1, s, layouts), bits_on_threads::<f32>(sgemm, 2, s, layouts));
            assert_eq!(bits_on_threads::<f64>(dgemm, 1, s, layouts), bits_on_threads::<f64>(dgemm, 2, s, layouts));
        }
    }
    // The threaded result is also correct.
    let mut rng = Rng(12);
    run_on(2, || {
        check_case::<f32>(sgemm, &mut rng, 200, 150, 300, RowMajor, ColMajor, RowMajor, 1.0, 0.0);
        check_case::<f32>(sgemm, &mut rng, 1100, 30, 70, RowMajor, RowMajor, RowMajor, 1.0, 0.5);
        check_case::<f64>(dgemm, &mut rng, 1100, 30, 70, Strided, RowMajor, RowMajor, -1.0, 0.0);
        check_case::<f32>(sgemm, &mut rng, 36, 300, 640, ColMajor, RowMajor, RowMajor, 1.0, 0.0);
        check_case::<f32>(sgemm, &mut rng, 128, 128, 128, RowMajor, RowMajor, RowMajor, 1.0, 0.5);
        check_case::<f64>(dgemm, &mut rng, 400, 100, 30, RowMajor, RowMajor, RowMajor, 1.0, 0.0);
    });
}

#[test]
fn batched_one_and_two_threads_are_bitwise_identical() {
    let run = |threads: usize| {
        let mut rng = Rng(13);
        let (batch, m, k, n) = (64, 20, 30, 40);
        let a: Vec<f32> = random(&mut rng, batch * m * k);
        let b: Vec<f32> = random(&mut rng, k * n);
        let mut c = vec![0.0f32; batch * m * n];
        run_on(threads, || sgemm_batched(batch, m, k, n, 1.0, &a, m * k, k, 1, &b, 0, n, 1, 0.0, &mut c, m * n, n, 1));
        c.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    };
    assert_eq!(run(1), run(2));
}

#[test]
#[should_panic(expected = "slice for A is too short")]
fn short_a_panics() {
    let mut c = [0.0f32; 4];
    sgemm(2, 2, 2, 1.0, &[1.0; 3], 2, 1, &[1.0; 4], 2, 1, 0.0, &mut c, 2, 1);
}

#[test]
#[should_panic(expected = "slice for C is too short")]
fn short_c_panics() {
    let mut c = [0.0f64; 5];
    dgemm(2, 2, 3, 1.0, &[1.0; 4], 2, 1, &[1.0; 6], 3, 1, 0.0, &mut c, 3, 1);
}

#[test]
#[should_panic(expected = "make elements overlap")]
fn overlapping_c_panics() {
    let mut c = [0.0f32; 8];
    sgemm(2, 2, 3, 1.0, &[1.0; 4], 2, 1, &[1.0; 6], 3, 1, 0.0, &mut c, 2, 1);
}

#[test]
#[should_panic(expected = "make elements overlap")]
fn batched_c_stride_zero_panics() {
    let mut c = [0.0f32; 4];
    sgemm_batched(2, 2, 2, 2, 1.0, &[1.0; 4], 0, 2, 1, &[1.0; 4], 0, 2, 1, 0.0, &mut c, 0, 2, 1);
}
