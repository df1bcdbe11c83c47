//! Optimizer step cost: one Adam step over the `mlp-wide` parameters (MLP 784-512-512-10, 669,706 f32
//! parameters in 6 tensors), next to a memcpy moving the same number of bytes in the same run.
//!
//! Adam streams 28 bytes per f32 parameter (reads param, grad, exp_avg, exp_avg_sq; writes param, exp_avg,
//! exp_avg_sq), so every benchmark here reports Throughput::Bytes of that traffic: "memory-bandwidth speed"
//! means the Adam rows approach the memcpy row's bytes/s. ns per parameter is printed at the end.
//!
//! Run: `cargo bench --bench optim`

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use std::time::Instant;
use tensorgrad::optim::{adam_update_slices, Adam, AdamConfig, AdamScalars, Optimizer};
use tensorgrad::Tensor;

const SHAPES: [&[usize]; 6] = [&[512, 784], &[512], &[512, 512], &[512], &[10, 512], &[10]];
const BYTES_PER_PARAM: u64 = 28;

fn mlp_wide_params() -> Vec<Tensor> {
    tensorgrad::manual_seed(0);
    SHAPES
        .iter()
        .map(|s| {
            let p = Tensor::randn(s).requires_grad_();
            p.set_grad(Some(Tensor::randn(s)));
            p
        })
        .collect()
}

fn bench_adam(c: &mut Criterion) {
    let params = mlp_wide_params();
    let n: usize = params.iter().map(Tensor::numel).sum();
    assert_eq!(n, 669_706);
    let mut group = c.benchmark_group("adam_step/mlp-wide-669706-f32");
    group.sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    group.throughput(Throughput::Bytes(BYTES_PER_PARAM * n as u64));

    let mut opt = Adam::new(params.clone(), AdamConfig::default());
    opt.step(); // create the state outside the timing
    group.bench_function("Adam::step", |b| b.iter(|| opt.step()));

    let mut adamw = Adam::new(params.clone(), AdamConfig::adamw());
    adamw.step();
    group.bench_function("AdamW::step", |b| b.iter(|| adamw.step()));

    let (mut p, g, mut m, mut v) = (vec![0.5f32; n], vec![0.1f32; n], vec![0.0f32; n], vec![0.0f32; n]);
    let h = AdamScalars::new(&AdamConfig::default(), 1e-3, 0.0, 0.9, 10);
    group.bench_function("adam_update_slices", |b| {
        b.iter(|| adam_update_slices(&mut p, black_box(&g), &mut m, &mut v, None, &h))
    });

    // Baseline: copy 14 bytes per parameter (14 read + 14 written = the same 28 bytes of traffic).
    let src = vec![1u8; 14 * n];
    let mut dst = vec![0u8; 14 * n];
    group.bench_function("memcpy_baseline_same_bytes", |b| b.iter(|| dst.copy_from_slice(black_box(&src))));
    group.finish();

    // ns per parameter, measured directly (criterion's time divided by 669,706 gives the same).
    let iters = 200;
    let t = Instant::now();
    for _ in 0..iters {
        opt.step();
    }
    let adam_ns = t.elapsed().as_nanos() as f64 / (iters * n) as f64;
    let t = Instant::now();
    for _ in 0..iters {
        dst.copy_from_slice(black_box(&src));
    }
    let copy_ns = t.elapsed().as_nanos() as f64 / (iters * n) as f64;
    eprintln!(
        "adam_step/mlp-wide: Adam::step {adam_ns:.3} ns/param ({:.2} GB/s); memcpy of the same bytes {copy_ns:.3} ns/param ({:.2} GB/s)",
        BYTES_PER_PARAM as f64 / adam_ns,
        BYTES_PER_PARAM as f64 / copy_ns
    );
}

criterion_group!(benches, bench_adam);
criterion_main!(benches);
