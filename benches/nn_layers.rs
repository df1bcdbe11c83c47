//! Forward and forward+backward of the core layers at the shapes of `../shared/WORKLOADS.md` (f32):
//! Linear (`mlp-seed`, `mlp-wide`), Conv2d (`lenet`'s two convolutions), LayerNorm (`gpt-mini`).
//! Throughput is in FLOPs (2 per multiply-add; LayerNorm counts elements).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use tensorgrad::nn::{Conv2d, LayerNorm, Linear, Module};
use tensorgrad::{DType, Tensor};

/// Benchmarks `module` on `x`: forward alone, and forward + backward of `sum(y)`.
fn bench_layer(c: &mut Criterion, group: &str, id: &str, module: &dyn Module, x: &Tensor, work: u64) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(work)).measurement_time(Duration::from_secs(3)).sample_size(10);
    g.bench_function(BenchmarkId::new("forward", id), |b| b.iter(|| tensorgrad::no_grad(|| module.forward(x))));
    let xg = x.detach().requires_grad_();
    g.throughput(Throughput::Elements(3 * work));
    g.bench_function(BenchmarkId::new("forward_backward", id), |b| {
        b.iter(|| {
            module.zero_grad();
            module.forward(&xg).sum().backward();
        })
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    tensorgrad::manual_seed(0);
    for (id, batch, i, o) in [("mlp-seed 32x784->16", 32, 784, 16), ("mlp-wide 128x784->512", 128, 784, 512)] {
        let layer = Linear::new(i, o);
        let x = Tensor::randn(&[batch, i]);
        bench_layer(c, "linear", id, &layer, &x, (2 * batch * i * o) as u64);
    }
    // lenet: Conv2d(1, 6, 5, padding 2) on [64, 1, 28, 28]; Conv2d(6, 16, 5) on [64, 6, 14, 14].
    let conv1 = Conv2d::with_options(1, 6, (5, 5), (1, 1), (2, 2), (1, 1), 1, true, DType::F32);
    bench_layer(
        c,
        "conv2d",
        "lenet-conv1 64x1x28x28",
        &conv1,
        &Tensor::randn(&[64, 1, 28, 28]),
        2 * 64 * 6 * 28 * 28 * 25,
    );
    let conv2 = Conv2d::new(6, 16, (5, 5));
    bench_layer(
        c,
        "conv2d",
        "lenet-conv2 64x6x14x14",
        &conv2,
        &Tensor::randn(&[64, 6, 14, 14]),
        2 * 64 * 16 * 10 * 10 * 150,
    );
    let ln = LayerNorm::new(&[128]);
    bench_layer(c, "layer_norm", "gpt-mini 16x64x128", &ln, &Tensor::randn(&[16, 64, 128]), 16 * 64 * 128);
}

criterion_group!(benches, bench);
criterion_main!(benches);
