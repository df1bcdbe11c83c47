//! `autograd-overhead` (WORKLOADS.md): a chain of 10,000 ops on a one-element tensor, alternating
//! `y = y * 1.0001` and `y = y + 0.0001`, forward then backward. Criterion's throughput is ops per second;
//! microseconds per op is its inverse. PyTorch eager measures about 13 us/op on this machine
//! (`../shared/reference/torch_overhead.py`), micrograd about 3.7; the target is at most 0.3.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use tensorgrad::Tensor;

const OPS: usize = 10_000;

fn chain_forward_backward(n: usize) -> f64 {
    let x = Tensor::from_vec(vec![1.0f32], &[1]).requires_grad_();
    let mut y = x.clone();
    for _ in 0..n / 2 {
        y = &y * 1.0001;
        y = &y + 0.0001;
    }
    y.backward();
    x.grad().unwrap().item()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("autograd-overhead");
    group.throughput(Throughput::Elements(OPS as u64)).measurement_time(Duration::from_secs(5));
    group.bench_with_input(BenchmarkId::new("tensorgrad", OPS), &OPS, |b, &n| b.iter(|| chain_forward_backward(n)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
