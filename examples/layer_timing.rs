//! Quick timings of the layer-level ops at the `lenet` / `gpt-mini` / `mlp-wide` shapes (f32): conv2d,
//! pooling, layer norm, cross-entropy (forward and forward + backward) and one Adam / SGD-momentum step.
//!
//! Prints, per op, the median wall time and the process CPU time per iteration (the machine is shared,
//! so CPU time is the steadier of the two). Run: `cargo run --release --example layer_timing`.

use std::time::{Duration, Instant};
use tensorgrad::nn::{self, functional as F, loss::Reduction};
use tensorgrad::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use tensorgrad::Tensor;

/// CPU time of the whole process (user + system) from `/proc/self/stat`, if available.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_secs_f64(ticks as f64 / 100.0))
}

/// Runs `f` repeatedly for about half a second and prints median wall time and mean CPU time per call.
fn time(name: &str, mut f: impl FnMut()) {
    f();
    let mut walls = Vec::new();
    let cpu0 = cpu_time();
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(600) || walls.len() < 5 {
        let t = Instant::now();
        f();
        walls.push(t.elapsed());
    }
    let cpu = cpu_time().zip(cpu0).map(|(b, a)| (b - a).as_secs_f64() / walls.len() as f64);
    walls.sort();
    let median = walls[walls.len() / 2].as_secs_f64();
    let cpu = cpu.map_or("?".to_string(), |c| format!("{:.1}", c * 1e6));
    println!("{name:<44} median {:>10.1} us   cpu {cpu:>10} us   ({} iters)", median * 1e6, walls.len());
}

/// Forward alone (no grad) and forward + backward of `sum(f(x))`.
fn fwd_bwd(name: &str, x: &Tensor, f: impl Fn(&Tensor) -> Tensor) {
    time(&format!("{name} fwd"), || {
        tensorgrad::no_grad(|| f(x));
    });
    let xg = x.detach().requires_grad_();
    time(&format!("{name} fwd+bwd"), || {
        xg.set_grad(None);
        f(&xg).sum().backward();
    });
}

fn main() {
    tensorgrad::manual_seed(0);
    let w1 = Tensor::randn(&[6, 1, 5, 5]);
    fwd_bwd("conv2d lenet-conv1 64x1x28x28", &Tensor::randn(&[64, 1, 28, 28]), |x| {
        F::conv2d(x, &w1, None, (1, 1), (2, 2), (1, 1), 1)
    });
    let w2 = Tensor::randn(&[16, 6, 5, 5]);
    fwd_bwd("conv2d lenet-conv2 64x6x14x14", &Tensor::randn(&[64, 6, 14, 14]), |x| {
        F::conv2d(x, &w2, None, (1, 1), (0, 0), (1, 1), 1)
    });
    let p1 = Tensor::randn(&[64, 6, 28, 28]);
    let p2 = Tensor::randn(&[64, 16, 10, 10]);
    fwd_bwd("max_pool2d 64x6x28x28 k2", &p1, |x| F::max_pool2d(x, (2, 2), (2, 2), (0, 0)));
    fwd_bwd("max_pool2d 64x16x10x10 k2", &p2, |x| F::max_pool2d(x, (2, 2), (2, 2), (0, 0)));
    fwd_bwd("avg_pool2d 64x6x28x28 k2", &p1, |x| F::avg_pool2d(x, (2, 2), (2, 2), (0, 0), true));
    fwd_bwd("adaptive_avg_pool2d 64x16x10x10 ->1x1", &p2, |x| F::adaptive_avg_pool2d(x, (1, 1)));
    fwd_bwd("adaptive_avg_pool2d 64x6x28x28 ->7x7", &p1, |x| F::adaptive_avg_pool2d(x, (7, 7)));
    let (gamma, beta) = (Tensor::randn(&[128]), Tensor::randn(&[128]));
    fwd_bwd("layer_norm gpt-mini 16x64x128", &Tensor::randn(&[16, 64, 128]), |x| {
        F::layer_norm(x, &[128], Some(&gamma), Some(&beta), 1e-5)
    });
    for (n, c) in [(64usize, 10usize), (1024, 512)] {
        let target = Tensor::randint(0, c as i64, &[n]);
        fwd_bwd(&format!("cross_entropy {n}x{c} mean"), &Tensor::randn(&[n, c]), |x| {
            nn::loss::cross_entropy(x, &target, None, -100, Reduction::Mean, 0.0)
        });
    }
    // mlp-wide parameters: 784x512 + 512 + 512x10 + 10.
    let params = || {
        [vec![512, 784], vec![512], vec![10, 512], vec![10]]
            .iter()
            .map(|s| {
                let p = Tensor::randn(s).requires_grad_();
                p.set_grad(Some(Tensor::randn(s)));
                p
            })
            .collect::<Vec<_>>()
    };
    let mut adam = Adam::new(params(), AdamConfig::default());
    time("Adam::step mlp-wide (407k params)", || adam.step());
    let mut sgd = Sgd::new(params(), SgdConfig { lr: 0.01, momentum: 0.9, ..SgdConfig::default() });
    time("Sgd(momentum 0.9)::step mlp-wide", || sgd.step());
}
