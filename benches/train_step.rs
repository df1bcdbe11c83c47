//! One full training step (zero grads, forward, loss, backward, optimizer step) of each workload of
//! `../shared/WORKLOADS.md`, under its id (`train_step/mlp-seed`, ...). The models are defined in
//! `benches/workloads/mod.rs`, shared with `examples/bench_workloads.rs`.
//!
//! Run: `cargo bench --bench train_step [-- gpt-mini]` (a few minutes for all five).

#[path = "workloads/mod.rs"]
mod workloads;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use std::time::Duration;
use workloads::{Workload, IDS};

fn bench_train_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("train_step");
    // Flat sampling: 10 samples of equal iteration counts, so the slow workloads need few steps.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    for id in IDS {
        let mut w = Workload::new(id).expect("known id");
        assert_eq!(w.num_parameters(), w.torch_parameters(), "{id}: parameter count differs from PyTorch's");
        group.bench_function(id, |b| b.iter(|| w.step()));
    }
    group.finish();
}

criterion_group!(benches, bench_train_step);
criterion_main!(benches);
