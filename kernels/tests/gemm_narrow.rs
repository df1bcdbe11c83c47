//! The narrow-edge path of the packed GEMM (`Kernel::narrow`: a last B panel of at most 8 valid columns,
//! e.g. `n = 65` = 2 x 32 + 1 on AVX-512, computed vectorized over A's rows instead of as a full-width
//! tile). Checked against the naive reference over sizes around the tile edges (m, n in 1, 31, 33, 65,
//! 97, ...), strides and transposes, `beta == 0` with NaN in C; bitwise against the full-tile path (the
//! same product with B padded to a multiple of 32 columns) and across 1 and 2 threads.
//!
//! A separate test binary: it sends every size through the packed path (`set_thresholds(0, 0, 0)`, which
//! also threads every product on a pool of 2), a process-wide switch that must not change the path under
//! the other GEMM tests' 1-vs-2-thread comparisons. On a CPU without AVX-512 the same checks run on the
//! full-tile path of its tier.

mod gemm_common;

use gemm_common::*;
use tensorgrad_kernels::gemm::{gemm_packed_b, set_thresholds, sgemm, PackedB};

fn run_on<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
}

fn packed_path() {
    set_thresholds(0, 0, 0);
}

/// `sgemm` on `threads` threads of a fresh pool, random operands in the given layouts (C prefilled with
/// NaN when `beta == 0`); returns C's buffer.
#[allow(clippy::too_many_arguments)]
fn product(
    threads: usize,
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    (rsb, csb): (usize, usize),
    beta: f32,
    c0: &[f32],
    (rsc, csc): (usize, usize),
) -> Vec<f32> {
    let mut c = c0.to_vec();
    run_on(threads, || sgemm(m, k, n, 1.25, a, rsa, csa, b, rsb, csb, beta, &mut c, rsc, csc));
    c
}

#[test]
fn narrow_edges_match_reference() {
    packed_path();
    let mut rng = Rng(41);
    let sizes = [1usize, 5, 13, 31, 33, 65, 97];
    let mut case = 0usize;
    for &m in &sizes {
        for &n in &[1usize, 31, 33, 40, 41, 65, 97] {
            for &k in &[1usize, 19, 530] {
                for (la, lb, lc) in [
                    (Layout::RowMajor, Layout::ColMajor, Layout::RowMajor),
                    (Layout::ColMajor, Layout::RowMajor, Layout::RowMajor),
                    (Layout::RowMajor, Layout::RowMajor, Layout::RowMajor),
                    (Layout::Strided, Layout::Strided, Layout::Strided),
                    (Layout::RowMajor, Layout::RowMajor, Layout::ColMajor),
                ] {
                    case += 1;
                    // k = 530 (two KC blocks: the second accumulates with beta = 1) on a subsample only.
                    if k == 530 && !case.is_multiple_of(4) {
                        continue;
                    }
                    let (alpha, beta) = if case.is_multiple_of(2) { (1.0, 0.0) } else { (-0.75, 0.5) };
                    check_case::<f32>(sgemm, &mut rng, m, k, n, la, lb, lc, alpha, beta);
                    if case.is_multiple_of(3) {
                        run_on(2, || check_case::<f32>(sgemm, &mut rng, m, k, n, la, lb, lc, alpha, beta));
                    }
                }
            }
        }
    }
}

#[test]
fn narrow_edges_are_bitwise_full_tiles_and_thread_independent() {
    packed_path();
    let mut rng = Rng(42);
    // The char-lstm output layer's products (scaled down in m) and edge sizes; A row-major with a
    // spread stride (read in place without the narrow edge), row-major at 1 KiB (packed), transposed.
    let shapes: [(usize, usize, usize); 6] =
        [(300, 256, 65), (256, 530, 65), (97, 40, 33), (65, 33, 97), (24, 7, 1), (13, 5, 40)];
    for &(m, k, n) in &shapes {
        for a_layout in ["row", "col", "strided"] {
            let (sa, lena) = match a_layout {
                "row" => ((k, 1), m * k),
                "col" => ((1, m), m * k),
                _ => ((2 * k + 3, 2), (m - 1) * (2 * k + 3) + 2 * (k - 1) + 1),
            };
            let a: Vec<f32> = random(&mut rng, lena);
            // B padded to a multiple of 32 columns: there its first n columns are computed as full tiles.
            let np = n.div_ceil(32) * 32;
            let bpad: Vec<f32> = random(&mut rng, k * np);
            for beta in [0.0f32, 0.5] {
                for (sb, b) in [((np, 1), &bpad), ((1, k), &transpose(&bpad, k, np))] {
                    let c0: Vec<f32> = if beta == 0.0 { vec![f32::NAN; m * np] } else { random(&mut rng, m * np) };
                    let full = product(1, (m, k, np), &a, sa, b, sb, beta, &c0, (np, 1));
                    let c0n: Vec<f32> = (0..m * n).map(|idx| c0[idx / n * np + idx % n]).collect();
                    let one = product(1, (m, k, n), &a, sa, b, sb, beta, &c0n, (n, 1));
                    let two = product(2, (m, k, n), &a, sa, b, sb, beta, &c0n, (n, 1));
                    for i in 0..m {
                        for j in 0..n {
                            let (f, o, t) = (full[i * np + j], one[i * n + j], two[i * n + j]);
                            assert!(
                                f.to_bits() == o.to_bits() && o.to_bits() == t.to_bits(),
                                "{m}x{k}x{n} A {a_layout} B {sb:?} beta {beta}: ({i}, {j}): full tile {f}, \
                                 1 thread {o}, 2 threads {t}"
                            );
                            assert!(f.is_finite());
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn partial_row_panels_are_bitwise_full_panels() {
    packed_path();
    let mut rng = Rng(44);
    // m = 65 = 5 x 12 + 5 (the last A panel computes 5 rows, not 12) against the same rows of a product
    // with A padded to 72 rows (all panels full), 1 and 2 threads, row- and column-major A.
    for &(m, k, n) in &[(65usize, 300usize, 256usize), (13, 530, 40), (97, 33, 65), (5, 64, 31), (31, 17, 97)] {
        let mp = m.div_ceil(12) * 12;
        let apad: Vec<f32> = random(&mut rng, mp * k);
        let b: Vec<f32> = random(&mut rng, k * n);
        for (sa, a) in [((k, 1), apad.clone()), ((1, mp), transpose(&apad, mp, k))] {
            for beta in [0.0f32, -0.5] {
                let c0: Vec<f32> = if beta == 0.0 { vec![f32::NAN; mp * n] } else { random(&mut rng, mp * n) };
                let full = product(1, (mp, k, n), &a, sa, &b, (n, 1), beta, &c0, (n, 1));
                for threads in [1, 2] {
                    let part = product(threads, (m, k, n), &a, sa, &b, (n, 1), beta, &c0[..m * n], (n, 1));
                    assert!(
                        part.iter().zip(&full).all(|(p, f)| p.to_bits() == f.to_bits()),
                        "{m}x{k}x{n} A strides {sa:?} beta {beta} {threads}T: partial panel differs from full"
                    );
                }
            }
        }
    }
}

#[test]
fn prepacked_b_narrow_edge_matches_sgemm() {
    packed_path();
    let mut rng = Rng(43);
    for &(m, k, n) in &[(300, 256, 65), (50, 530, 33), (13, 64, 97)] {
        let a: Vec<f32> = random(&mut rng, m * k);
        let b: Vec<f32> = random(&mut rng, k * n);
        let c0 = vec![f32::NAN; m * n];
        let want = product(1, (m, k, n), &a, (k, 1), &b, (1, k), 0.0, &c0, (n, 1));
        let packed = PackedB::new(k, n, &b, 1, k);
        for threads in [1, 2] {
            let mut got = c0.clone();
            run_on(threads, || gemm_packed_b(m, 1.25, &a, k, 1, &packed, 0.0, &mut got, n, 1));
            assert!(got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits()), "{m}x{k}x{n} {threads}T");
        }
    }
}

/// The `rows x cols` row-major matrix `x` transposed (row-major `cols x rows`).
fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..rows * cols).map(|idx| x[(idx % rows) * cols + idx / rows]).collect()
}
