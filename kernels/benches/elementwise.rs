//! Elementwise benchmarks: ns/element (Throughput::Elements) for exp, tanh, sigmoid, gelu, add, sum and
//! softmax rows, GB/s (Throughput::Bytes) for add; each next to a plain scalar `std` baseline in the same run.
//! Single-threaded (16K elements is below every kernel's threading threshold) and in cache (16K f32 = 64 KiB per operand).
//!
//! Run: `cargo bench -p tensorgrad-kernels --bench elementwise`

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tensorgrad_kernels::{elementwise as ew, reduce, rows};

const N: usize = 16 * 1024;

fn input(n: usize, lo: f32, hi: f32) -> Vec<f32> {
    let mut s = 0x1234_5678_u32;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            lo + (hi - lo) * (s as f32 / u32::MAX as f32)
        })
        .collect()
}

fn unary(c: &mut Criterion) {
    let mut g = c.benchmark_group("unary_f32_16k");
    g.throughput(Throughput::Elements(N as u64));
    let x = input(N, -5.0, 5.0);
    let mut y = vec![0.0f32; N];
    type Fast = fn(&[f32], &mut [f32]);
    type Scalar = fn(f32) -> f32;
    let cases: [(&str, Fast, Scalar); 5] = [
        ("exp", ew::exp, f32::exp),
        ("tanh", ew::tanh, f32::tanh),
        ("sigmoid", ew::sigmoid, |v| 1.0 / (1.0 + (-v).exp())),
        ("gelu_erf", ew::gelu_erf, |v| {
            // std has no erf: the scalar baseline is the tanh form PyTorch users often compare against.
            0.5 * v * (1.0 + (0.797_884_6 * (v + 0.044715 * v * v * v)).tanh())
        }),
        ("gelu_tanh", ew::gelu_tanh, |v| 0.5 * v * (1.0 + (0.797_884_6 * (v + 0.044715 * v * v * v)).tanh())),
    ];
    for (name, fast, scalar) in cases {
        g.bench_function(BenchmarkId::new(name, "tensorgrad"), |b| b.iter(|| fast(black_box(&x), black_box(&mut y))));
        g.bench_function(BenchmarkId::new(name, "std_scalar"), |b| {
            b.iter(|| {
                for (o, &v) in y.iter_mut().zip(black_box(&x)) {
                    *o = scalar(v);
                }
            })
        });
    }
    g.finish();
}

fn add(c: &mut Criterion) {
    let a = input(N, -1.0, 1.0);
    let bb = input(N, 1.0, 2.0);
    let mut y = vec![0.0f32; N];
    for (unit, tp) in [("elements", Throughput::Elements(N as u64)), ("bytes", Throughput::Bytes((3 * 4 * N) as u64))] {
        let mut g = c.benchmark_group(format!("add_f32_16k_{unit}"));
        g.throughput(tp);
        g.bench_function("tensorgrad", |b| b.iter(|| ew::add(black_box(&a), black_box(&bb), &mut y)));
        g.bench_function("std_scalar", |b| {
            b.iter(|| {
                for ((o, &p), &q) in y.iter_mut().zip(black_box(&a)).zip(black_box(&bb)) {
                    *o = p + q;
                }
            })
        });
        g.finish();
    }
}

fn sum(c: &mut Criterion) {
    let mut g = c.benchmark_group("sum_f32_16k");
    g.throughput(Throughput::Elements(N as u64));
    let x = input(N, -1.0, 1.0);
    g.bench_function("tensorgrad", |b| b.iter(|| reduce::sum(black_box(&x))));
    g.bench_function("std_scalar", |b| b.iter(|| black_box(&x).iter().sum::<f32>()));
    g.finish();
}

fn softmax(c: &mut Criterion) {
    let mut g = c.benchmark_group("softmax_rows_f32");
    for cols in [128usize, 512, 1024] {
        let rows_n = N / cols;
        g.throughput(Throughput::Elements((rows_n * cols) as u64));
        let x = input(rows_n * cols, -8.0, 8.0);
        let mut y = vec![0.0f32; x.len()];
        g.bench_function(BenchmarkId::new("tensorgrad", cols), |b| {
            b.iter(|| rows::softmax_rows(black_box(&x), &mut y, cols))
        });
        g.bench_function(BenchmarkId::new("std_scalar", cols), |b| {
            b.iter(|| {
                for (r, o) in black_box(&x).chunks(cols).zip(y.chunks_mut(cols)) {
                    let m = r.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                    let mut s = 0.0;
                    for (v, &t) in o.iter_mut().zip(r) {
                        *v = (t - m).exp();
                        s += *v;
                    }
                    for v in o.iter_mut() {
                        *v /= s;
                    }
                }
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(800))
        .sample_size(30);
    targets = unary, add, sum, softmax
}
criterion_main!(benches);
