//! Sequence layers at the shapes of `../shared/WORKLOADS.md`, forward and forward+backward, each next to a
//! baseline that runs only the layer's matrix products (the GEMM floor) in the same run:
//!
//! - `lstm/char-lstm`: LSTM(64 -> 256, batch_first) on x [32, 64, 64] (the `char-lstm` workload's layer).
//! - `mha/gpt-mini`: causal MultiheadAttention(128, 4 heads, batch_first) on x [16, 64, 128].
//! - `decoder_block/gpt-mini`: one pre-norm GPT block (attention + MLP 128-512-128) on x [16, 64, 128].
//!
//! Throughput is FLOP/s of the forward's matrix products (x3 for forward+backward).
//!
//! Run: `cargo bench --bench nn_seq`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;
use tensorgrad::nn::{DecoderBlock, Lstm, Module, MultiheadAttention, RnnOptions};
use tensorgrad::Tensor;

fn bench_lstm(c: &mut Criterion) {
    let (n, t, i, h) = (32usize, 64usize, 64usize, 256usize);
    tensorgrad::manual_seed(0);
    let lstm = Lstm::with_options(RnnOptions::new(i, h).batch_first(true));
    let x = Tensor::randn(&[n, t, i]).requires_grad_();
    let flops = (2 * t * n * i * 4 * h + 2 * t * n * h * 4 * h) as u64;
    let mut group = c.benchmark_group("lstm/char-lstm-32x64x64-h256-f32");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(flops));
    group.bench_function("forward", |b| b.iter(|| tensorgrad::no_grad(|| lstm.forward(&x))));
    let (w_ih, hs) = (Tensor::randn(&[i, 4 * h]), Tensor::randn(&[n, h]));
    let w_hh = Tensor::randn(&[h, 4 * h]);
    let x2 = Tensor::randn(&[t * n, i]);
    group.bench_function("baseline_matmuls_only", |b| {
        b.iter(|| {
            let mut out = x2.matmul(&w_ih);
            for _ in 0..t {
                out = hs.matmul(&w_hh);
            }
            out
        })
    });
    group.throughput(Throughput::Elements(3 * flops));
    group.bench_function("forward_backward", |b| {
        b.iter(|| {
            lstm.zero_grad();
            lstm.forward(&x).sum().backward();
        })
    });
    group.finish();
}

fn bench_attention(c: &mut Criterion) {
    let (n, t, e, heads) = (16usize, 64usize, 128usize, 4usize);
    tensorgrad::manual_seed(0);
    let mha = MultiheadAttention::new(e, heads).batch_first(true);
    let block = DecoderBlock::new(e, heads);
    let x = Tensor::randn(&[n, t, e]).requires_grad_();
    let attn_flops = (2 * n * t * e * 3 * e + 2 * 2 * n * t * t * e + 2 * n * t * e * e) as u64;

    let mut group = c.benchmark_group("mha/gpt-mini-16x64x128-4heads-causal-f32");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(attn_flops));
    let run = || mha.forward_qkv(&x, &x, &x, None, false, None, true).0;
    group.bench_function("forward", |b| b.iter(|| tensorgrad::no_grad(run)));
    let (w, q) = (Tensor::randn(&[e, 3 * e]), Tensor::randn(&[n, heads, t, e / heads]));
    let (wo, x2) = (Tensor::randn(&[e, e]), Tensor::randn(&[n * t, e]));
    group.bench_function("baseline_matmuls_only", |b| {
        b.iter(|| {
            let _qkv = x2.matmul(&w);
            let s = q.matmul(&q.transpose(-2, -1));
            let _o = s.matmul(&q);
            x2.matmul(&wo)
        })
    });
    group.throughput(Throughput::Elements(3 * attn_flops));
    group.bench_function("forward_backward", |b| {
        b.iter(|| {
            mha.zero_grad();
            run().sum().backward();
        })
    });
    group.finish();

    let mlp_flops = (2 * 2 * n * t * e * 4 * e) as u64;
    let mut group = c.benchmark_group("decoder_block/gpt-mini-16x64x128-4heads-f32");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(attn_flops + mlp_flops));
    group.bench_function("forward", |b| b.iter(|| tensorgrad::no_grad(|| block.forward(&x))));
    group.throughput(Throughput::Elements(3 * (attn_flops + mlp_flops)));
    group.bench_function("forward_backward", |b| {
        b.iter(|| {
            block.zero_grad();
            block.forward(&x).sum().backward();
        })
    });
    group.finish();
}

criterion_group!(benches, bench_lstm, bench_attention);
criterion_main!(benches);
