//! Smoke test of the benchmark workloads (`benches/workloads/mod.rs`): each builds with PyTorch's parameter
//! count, and one training step at a small batch gives a finite loss and changes every parameter tensor.
//! (The timing itself lives in `benches/train_step.rs` and `examples/bench_workloads.rs`.)

#[path = "../benches/workloads/mod.rs"]
mod workloads;

use workloads::Workload;

/// Builds `id` at batch `batch`, runs one step, and checks the loss and the update.
fn one_step(id: &str, batch: usize) {
    let mut w = Workload::with_batch(id, batch).expect("known id");
    assert_eq!(w.num_parameters(), w.torch_parameters(), "{id}: parameter count differs from PyTorch's");
    let params = w.model.named_parameters();
    let before: Vec<Vec<f32>> = params.iter().map(|(_, p)| p.to_vec::<f32>()).collect();
    let loss = w.step().item();
    assert!(loss.is_finite(), "{id}: loss {loss}");
    // Cross-entropy of an untrained model over C classes starts near ln(C).
    let classes = if id.starts_with("mlp") || id == "lenet" { 10.0f64 } else { 65.0 };
    assert!((loss - classes.ln()).abs() < 1.5, "{id}: first loss {loss} far from ln({classes})");
    for ((name, p), b) in params.iter().zip(&before) {
        assert!(p.to_vec::<f32>() != *b, "{id}: parameter {name} did not change");
    }
}

#[test]
fn mlp_seed_step() {
    one_step("mlp-seed", 32);
}

#[test]
fn mlp_wide_step() {
    one_step("mlp-wide", 4);
}

#[test]
fn lenet_step() {
    one_step("lenet", 4);
}

#[test]
fn char_lstm_step() {
    one_step("char-lstm", 2);
}

#[test]
fn gpt_mini_step() {
    one_step("gpt-mini", 2);
}
