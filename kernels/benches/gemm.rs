//! GEMM throughput, side by side: tensorgrad vs `matrixmultiply` vs the `gemm` crate (0.19), f32,
//! row-major, on 1 and 2 threads. Shapes are named `m x k x n` (A is m x k, B is k x n); criterion reports
//! FLOP/s from `Throughput::Elements(2*m*n*k)` (read "elem/s" as FLOP/s).
//!
//! ```text
//! cargo bench -p tensorgrad-kernels --bench gemm                      # everything, a few minutes
//! cargo bench -p tensorgrad-kernels --bench gemm -- 'gemm_f32/1t/512' # one shape
//! ```
//!
//! `matrixmultiply` reads its thread count once per process from `MATMUL_NUM_THREADS` (this bench sets it
//! to 1 if unset), so its rows appear only under that thread count; run
//! `MATMUL_NUM_THREADS=2 cargo bench -p tensorgrad-kernels --bench gemm -- 2t` for its 2-thread rows.
//! `examples/gemm_gflops.rs` prints the whole comparison as one table in under a minute.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput};

const SHAPES: [(&str, usize, usize, usize); 11] = [
    ("16x16x16", 16, 16, 16),
    ("64", 64, 64, 64),
    ("128", 128, 128, 128),
    ("256", 256, 256, 256),
    ("512", 512, 512, 512),
    ("1024", 1024, 1024, 1024),
    ("2048", 2048, 2048, 2048),
    ("mlp_32x784x16", 32, 784, 16),
    ("128x784x512", 128, 784, 512),
    ("128x512x512", 128, 512, 512),
    ("2048x128x512", 2048, 128, 512),
];

fn matmul_threads() -> usize {
    if std::env::var_os("MATMUL_NUM_THREADS").is_none() {
        // Before matrixmultiply's first call reads it.
        std::env::set_var("MATMUL_NUM_THREADS", "1");
    }
    std::env::var("MATMUL_NUM_THREADS").ok().and_then(|s| s.parse().ok()).unwrap_or(1)
}

fn bench_gemm(c: &mut Criterion) {
    let mm_threads = matmul_threads();
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let mut group = c.benchmark_group(format!("gemm_f32/{threads}t"));
        group.warm_up_time(Duration::from_millis(200));
        group.measurement_time(Duration::from_millis(600));
        group.sample_size(10);
        for &(name, m, k, n) in &SHAPES {
            group.throughput(Throughput::Elements(2 * (m * n * k) as u64));
            group.sampling_mode(if m * n * k >= 256 * 256 * 256 { SamplingMode::Flat } else { SamplingMode::Auto });
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 * 0.1 - 0.6).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 * 0.1 - 0.5).collect();
            let mut cm = vec![0.0f32; m * n];
            group.bench_function(BenchmarkId::new("tensorgrad", name), |bench| {
                pool.install(|| {
                    bench.iter(|| {
                        tensorgrad_kernels::gemm::sgemm(m, k, n, 1.0, &a, k, 1, &b, n, 1, 0.0, &mut cm, n, 1);
                        black_box(&mut cm);
                    })
                })
            });
            if threads == mm_threads {
                group.bench_function(BenchmarkId::new("matrixmultiply", name), |bench| {
                    bench.iter(|| {
                        // SAFETY: a, b, cm hold m x k, k x n, m x n row-major matrices.
                        unsafe {
                            matrixmultiply::sgemm(
                                m,
                                k,
                                n,
                                1.0,
                                a.as_ptr(),
                                k as isize,
                                1,
                                b.as_ptr(),
                                n as isize,
                                1,
                                0.0,
                                cm.as_mut_ptr(),
                                n as isize,
                                1,
                            )
                        };
                        black_box(&mut cm);
                    })
                });
            }
            let par = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
            group.bench_function(BenchmarkId::new("gemm-crate", name), |bench| {
                pool.install(|| {
                    bench.iter(|| {
                        // SAFETY: as above; gemm computes dst = alpha*dst + beta*lhs*rhs (read_dst false).
                        unsafe {
                            gemm::gemm(
                                m,
                                n,
                                k,
                                cm.as_mut_ptr(),
                                1,
                                n as isize,
                                false,
                                a.as_ptr(),
                                1,
                                k as isize,
                                b.as_ptr(),
                                1,
                                n as isize,
                                0.0f32,
                                1.0f32,
                                false,
                                false,
                                false,
                                par,
                            )
                        };
                        black_box(&mut cm);
                    })
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_gemm);
criterion_main!(benches);
