//! Convolution benchmarks (f32): forward, input gradient and weight gradient of the CNN workload shapes,
//! in GFLOP/s (2·N·O·OH·OW·(C/G)·KH·KW flops per pass), plus 2x2 max pooling.
//!
//! Run: `cargo bench -p tensorgrad-kernels --bench conv`
//! (The GEMM underneath is `matrixmultiply` until `crate::gemm` is merged.)

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tensorgrad_kernels::conv::{self, Conv2dGeometry};
use tensorgrad_kernels::pool::{self, Pool2dGeometry};

fn data(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect()
}

fn shapes() -> Vec<(&'static str, Conv2dGeometry)> {
    vec![
        // MNIST-style CNN: 1→8 and 8→16 channels, 3x3, padding 1, batch 32.
        (
            "mnist_c1_32x1x28x28_k3_o8",
            Conv2dGeometry { padding: (1, 1), ..Conv2dGeometry::new(32, 1, 28, 28, 8, 3, 3) },
        ),
        (
            "mnist_c2_32x8x14x14_k3_o16",
            Conv2dGeometry { padding: (1, 1), ..Conv2dGeometry::new(32, 8, 14, 14, 16, 3, 3) },
        ),
        // A wider layer and a 1x1 (pointwise, no im2col) layer.
        ("32x32x16x16_k3_o64", Conv2dGeometry { padding: (1, 1), ..Conv2dGeometry::new(32, 32, 16, 16, 64, 3, 3) }),
        ("32x64x16x16_k1_o64", Conv2dGeometry::new(32, 64, 16, 16, 64, 1, 1)),
    ]
}

fn convs(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv2d_f32");
    for (name, geo) in shapes() {
        let flops = 2 * geo.output_len() * geo.col_rows();
        g.throughput(Throughput::Elements(flops as u64)); // "elements" = flops: criterion prints Gelem/s = GFLOP/s
        let x = data(geo.input_len());
        let w = data(geo.weight_len());
        let b = data(geo.out_c);
        let dy = data(geo.output_len());
        let mut y = vec![0.0f32; geo.output_len()];
        let mut dx = vec![0.0f32; geo.input_len()];
        let mut dw = vec![0.0f32; geo.weight_len()];
        let mut db = vec![0.0f32; geo.out_c];
        g.bench_function(BenchmarkId::new("forward", name), |bn| {
            bn.iter(|| conv::conv2d_forward(&geo, black_box(&x), black_box(&w), Some(&b), &mut y))
        });
        g.bench_function(BenchmarkId::new("backward_input", name), |bn| {
            bn.iter(|| conv::conv2d_backward_input(&geo, black_box(&dy), black_box(&w), &mut dx))
        });
        g.bench_function(BenchmarkId::new("backward_weight", name), |bn| {
            bn.iter(|| conv::conv2d_backward_weight(&geo, black_box(&x), black_box(&dy), &mut dw, Some(&mut db)))
        });
    }
    g.finish();
}

fn pools(c: &mut Criterion) {
    let mut g = c.benchmark_group("max_pool2d_f32");
    let geo = Pool2dGeometry::new(32, 16, 28, 28, 2);
    g.throughput(Throughput::Elements(geo.input_len() as u64));
    let x = data(geo.input_len());
    let mut y = vec![0.0f32; geo.output_len()];
    let mut idx = vec![0usize; geo.output_len()];
    let mut dx = vec![0.0f32; geo.input_len()];
    g.bench_function("forward_32x16x28x28_k2", |bn| {
        bn.iter(|| pool::max_pool2d_forward(&geo, black_box(&x), &mut y, &mut idx))
    });
    g.bench_function("backward_32x16x28x28_k2", |bn| {
        bn.iter(|| pool::max_pool2d_backward(&geo, black_box(&y), &idx, &mut dx))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1000))
        .sample_size(20);
    targets = convs, pools
}
criterion_main!(benches);
