//! GEMM with a prepacked `B` (`PackedB`, `gemm_packed_b`): against the naive reference over sizes 0, 1,
//! primes and non-multiples of the tile, row-major, transposed and strided operands, NaN-filled C with
//! beta = 0; bitwise equal to `sgemm`/`dgemm` (including the recurrent-layer shapes it was built for);
//! bitwise identical on 1 and 2 threads and when the caller splits the columns itself.

mod gemm_common;

use gemm_common::*;
use tensorgrad_kernels::gemm::{
    dgemm, gemm_packed_b, gemm_packed_b_single_thread, gemm_packed_b_small_single_thread, sgemm, sgemm_packed_b,
    PackedB, SMALL_MNK,
};

#[test]
fn packed_b_matches_reference_over_sizes_and_layouts() {
    grid::<f32>(packed_b, 31);
    grid::<f64>(packed_b, 32);
}

#[test]
fn packed_b_matches_reference_across_cache_blocks() {
    big::<f32>(packed_b, 33);
    big::<f64>(packed_b, 34);
}

/// C from `f` on fresh random operands (seeded), as bits.
#[allow(clippy::too_many_arguments)]
fn bits<T: TestFloat>(
    f: GemmFn<T>,
    seed: u64,
    (m, k, n): (usize, usize, usize),
    (la, lb, lc): (Layout, Layout, Layout),
    alpha: f64,
    beta: f64,
) -> Vec<u64> {
    let mut rng = Rng(seed);
    let (rsa, csa, lena) = strides(la, m, k);
    let (rsb, csb, lenb) = strides(lb, k, n);
    let (rsc, csc, lenc) = strides(lc, m, n);
    let a: Vec<T> = random(&mut rng, lena);
    let b: Vec<T> = random(&mut rng, lenb);
    let mut c: Vec<T> = random(&mut rng, lenc);
    if beta == 0.0 {
        c.iter_mut().for_each(|x| *x = T::nan());
    }
    f(m, k, n, T::from_f64(alpha), &a, rsa, csa, &b, rsb, csb, T::from_f64(beta), &mut c, rsc, csc);
    c.iter().map(|x| x.bits()).collect()
}

#[test]
fn packed_b_is_bitwise_equal_to_unpacked() {
    use Layout::*;
    // The recurrent-layer shapes: forward h[32x256] W_hh^T (B the transposed view of W_hh [1024x256]),
    // backward dA[32x1024] W_hh (k = 1024: several KC blocks), and general ones above and below SMALL_MNK.
    let cases = [
        ((32, 256, 1024), (RowMajor, ColMajor, RowMajor)),
        ((32, 1024, 256), (RowMajor, RowMajor, RowMajor)),
        ((32, 1024, 256), (Strided, ColMajor, RowMajor)),
        ((150, 300, 70), (ColMajor, Strided, ColMajor)),
        ((97, 515, 33), (RowMajor, RowMajor, Strided)),
        // Small path with k > KC (one pass over k): equal for a row-major B and row-oriented C.
        ((64, 784, 16), (RowMajor, RowMajor, RowMajor)),
        ((5, 600, 37), (Strided, RowMajor, RowMajor)),
        // Small with k <= KC: equal for any strides.
        ((7, 13, 9), (ColMajor, ColMajor, ColMajor)),
        ((37, 200, 31), (Strided, Strided, RowMajor)),
    ];
    for (i, &(shape, layouts)) in cases.iter().enumerate() {
        for (alpha, beta) in [(1.0, 0.0), (0.75, -1.25)] {
            let seed = 40 + i as u64;
            assert_eq!(
                bits::<f32>(packed_b, seed, shape, layouts, alpha, beta),
                bits::<f32>(sgemm, seed, shape, layouts, alpha, beta),
                "f32 {shape:?} {layouts:?}"
            );
            assert_eq!(
                bits::<f64>(packed_b, seed, shape, layouts, alpha, beta),
                bits::<f64>(dgemm, seed, shape, layouts, alpha, beta),
                "f64 {shape:?} {layouts:?}"
            );
        }
    }
    const { assert!(64 * 784 * 16 <= SMALL_MNK && 32 * 256 * 1024 > SMALL_MNK) };
}

fn run_on<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
}

#[test]
fn packed_b_one_and_two_threads_are_bitwise_identical() {
    use Layout::*;
    // Threaded: the LSTM shapes (N split), many rows (M split), a small-path shape split over panels.
    for shape in [(32, 256, 1024), (32, 1024, 256), (700, 100, 90), (64, 784, 40), (128, 128, 128)] {
        for layouts in [(RowMajor, ColMajor, RowMajor), (ColMajor, Strided, ColMajor)] {
            let one = run_on(1, || bits::<f32>(packed_b, 50, shape, layouts, 1.5, 0.5));
            let two = run_on(2, || bits::<f32>(packed_b, 50, shape, layouts, 1.5, 0.5));
            assert_eq!(one, two, "{shape:?} {layouts:?}");
            let one = run_on(1, || bits::<f64>(packed_b, 51, shape, layouts, 1.0, 0.0));
            let two = run_on(2, || bits::<f64>(packed_b, 51, shape, layouts, 1.0, 0.0));
            assert_eq!(one, two, "{shape:?} {layouts:?}");
        }
    }
    // And the threaded result is right.
    let mut rng = Rng(52);
    run_on(2, || check_case::<f32>(packed_b, &mut rng, 32, 1024, 256, RowMajor, RowMajor, RowMajor, 1.0, 0.0));
}

/// Splitting the columns over the caller's own threads ([`PackedB::columns`] +
/// [`gemm_packed_b_single_thread`]) gives the same bits as one threaded call, and the packed B is reused
/// across calls (the recurrent-layer pattern: the same weight at every step).
fn column_split<T: TestFloat>(m: usize, k: usize, n: usize, split: usize) {
    let mut rng = Rng(60);
    let b: Vec<T> = random(&mut rng, k * n);
    // B = W^T with W [n, k] row-major.
    let packed = PackedB::new(k, n, &b, 1, k);
    let j = split.div_ceil(packed.panel_width()) * packed.panel_width();
    assert!(j < n);
    for step in 0..3 {
        let a: Vec<T> = random(&mut rng, m * k);
        let c0: Vec<T> = random(&mut rng, m * n);
        let mut whole = c0.clone();
        gemm_packed_b(m, T::ONE, &a, k, 1, &packed, T::ONE, &mut whole, n, 1);
        // Two threads, each on its own copy of C (a row-major C's column blocks interleave in memory; a
        // real caller passes disjoint views through raw strides or a column-blocked layout).
        let (mut left, mut right) = (c0.clone(), c0.clone());
        rayon::join(
            || gemm_packed_b_single_thread(m, T::ONE, &a, k, 1, packed.columns(0..j), T::ONE, &mut left, n, 1),
            || gemm_packed_b_single_thread(m, T::ONE, &a, k, 1, packed.columns(j..n), T::ONE, &mut right[j..], n, 1),
        );
        let parts: Vec<T> = (0..m * n).map(|idx| if idx % n < j { left[idx] } else { right[idx] }).collect();
        assert!(whole.iter().zip(&parts).all(|(x, y)| x.bits() == y.bits()), "step {step}");
        let mut want = c0.clone();
        T::gemm(m, k, n, T::ONE, &a, k, 1, &b, 1, k, T::ONE, &mut want, n, 1);
        // Equal to the unpacked product (k <= KC or above SMALL_MNK: see the module docs of `prepacked`).
        assert!(whole.iter().zip(&want).all(|(x, y)| x.bits() == y.bits()), "{m}x{k}x{n} step {step}");
    }
}

#[test]
fn packed_b_column_blocks() {
    column_split::<f32>(32, 256, 1024, 512);
    column_split::<f32>(9, 70, 101, 40);
    column_split::<f64>(32, 300, 250, 100);
    // A view of a view, and an empty view.
    let b = vec![1.0f32; 6 * 100];
    let packed = PackedB::new(6, 100, &b, 100, 1);
    let w = packed.panel_width();
    let v = packed.columns(w..100).columns(w..100 - w);
    assert_eq!((v.k(), v.n()), (6, 100 - 2 * w));
    assert_eq!(packed.columns(7..7).n(), 0);
    let mut c = vec![f32::NAN; 3 * v.n()];
    sgemm_packed_b(3, 1.0, &[2.0f32; 18], 6, 1, v, 0.0, &mut c, v.n(), 1);
    assert!(c.iter().all(|&x| x == 12.0));
}

#[test]
fn packed_b_repack_reuses_and_replaces() {
    let mut rng = Rng(70);
    let (m, k, n) = (20, 40, 50);
    let a: Vec<f32> = random(&mut rng, m * k);
    let b1: Vec<f32> = random(&mut rng, k * n);
    let b2: Vec<f32> = random(&mut rng, 3 * 7);
    let mut packed = PackedB::new(k, n, &b1, n, 1);
    packed.pack(3, 7, &b2, 7, 1);
    assert_eq!((packed.k(), packed.n()), (3, 7));
    let mut got = vec![f32::NAN; m * 7];
    sgemm_packed_b(m, 1.0, &a, k, 1, &packed, 0.0, &mut got, 7, 1);
    let mut want = vec![0.0f32; m * 7];
    sgemm(m, 3, 7, 1.0, &a, k, 1, &b2, 7, 1, 0.0, &mut want, 7, 1);
    assert_eq!(got, want);
}

#[test]
fn packed_b_alpha_zero_and_k_zero_scale_c() {
    let packed = PackedB::new(0, 3, &[], 0, 0);
    let mut c = [f32::NAN; 6];
    sgemm_packed_b(2, 1.0, &[], 0, 0, &packed, 0.0, &mut c, 3, 1);
    assert_eq!(c, [0.0; 6]);
    let packed = PackedB::new(2, 3, &[1.0; 6], 3, 1);
    let mut c = [2.0f32; 6];
    sgemm_packed_b(2, 0.0, &[f32::NAN; 4], 2, 1, &packed, 0.5, &mut c, 3, 1);
    assert_eq!(c, [1.0; 6]);
}

#[test]
#[should_panic(expected = "must start at a multiple of the panel width")]
fn packed_b_misaligned_columns_panic() {
    let packed = PackedB::new(4, 100, &[0.0f32; 400], 100, 1);
    let _ = packed.columns(3..50);
}

#[test]
#[should_panic(expected = "slice for B is too short")]
fn packed_b_short_b_panics() {
    let _ = PackedB::new(4, 100, &[0.0f32; 399], 100, 1);
}

#[test]
#[should_panic(expected = "slice for A is too short")]
fn packed_b_short_a_panics() {
    let packed = PackedB::new(4, 10, &[0.0f32; 40], 10, 1);
    let mut c = [0.0f32; 30];
    sgemm_packed_b(3, 1.0, &[0.0; 11], 4, 1, &packed, 0.0, &mut c, 10, 1);
}

/// [`gemm_packed_b_small_single_thread`] behind the [`GemmFn`] signature: packs `B`, then multiplies.
#[allow(clippy::too_many_arguments)]
fn packed_b_small<T: TestFloat>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: &[T],
    rsa: usize,
    csa: usize,
    b: &[T],
    rsb: usize,
    csb: usize,
    beta: T,
    c: &mut [T],
    rsc: usize,
    csc: usize,
) {
    let packed = PackedB::new(k, n, b, rsb, csb);
    gemm_packed_b_small_single_thread(m, alpha, a, rsa, csa, &packed, beta, c, rsc, csc);
}

#[test]
fn packed_b_small_path_matches_reference() {
    grid::<f32>(packed_b_small, 81);
    grid::<f64>(packed_b_small, 82);
    big::<f32>(packed_b_small, 83);
    let mut rng = Rng(84);
    use Layout::*;
    // The LSTM's per-step shapes, above SMALL_MNK: forward h W_hh^T, backward da W_hh (k = 1024).
    check_case::<f32>(packed_b_small, &mut rng, 32, 256, 512, RowMajor, ColMajor, Strided, 1.0, 1.0);
    check_case::<f32>(packed_b_small, &mut rng, 32, 1024, 128, Strided, RowMajor, RowMajor, 1.0, 0.0);
    check_case::<f64>(packed_b_small, &mut rng, 32, 1024, 128, RowMajor, RowMajor, RowMajor, 0.5, 0.0);
}

#[test]
fn packed_b_small_path_equals_packed_b_up_to_small_mnk_and_within_kc() {
    use Layout::*;
    // Up to SMALL_MNK gemm_packed_b takes the small path too; above it with k <= KC (256 or 512), both
    // paths make one pass over k with the same microkernel sums.
    let cases = [
        ((64, 784, 16), (RowMajor, RowMajor, RowMajor)),
        ((37, 200, 31), (Strided, Strided, RowMajor)),
        ((32, 256, 512), (RowMajor, ColMajor, RowMajor)),
    ];
    const { assert!(64 * 784 * 16 <= SMALL_MNK && 32 * 256 * 512 > SMALL_MNK) };
    for (i, &(shape, layouts)) in cases.iter().enumerate() {
        for (alpha, beta) in [(1.0, 0.0), (0.75, -1.25)] {
            let seed = 90 + i as u64;
            assert_eq!(
                bits::<f32>(packed_b_small, seed, shape, layouts, alpha, beta),
                bits::<f32>(packed_b, seed, shape, layouts, alpha, beta),
                "f32 {shape:?} {layouts:?}"
            );
        }
    }
}
