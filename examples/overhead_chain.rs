//! The `autograd-overhead` chain of WORKLOADS.md as a small program, for instruction-level profiling:
//! `valgrind --tool=callgrind target/release/examples/overhead_chain 10000 3` counts the instructions of
//! 3 chains of 10,000 ops (forward + backward) without timing noise. It also prints microseconds per op.
//!
//! Usage: `cargo run --release --example overhead_chain -- [ops] [repeats] [profile]` (defaults 10000 and
//! 50). With `profile`, the op profiler records every chain: the difference to a run without it is the
//! profiler's cost per recorded op (one forward and one backward event each).

use std::time::Instant;
use tensorgrad::Tensor;

/// One chain: `n / 2` times `y = y * 1.0001; y = y + 0.0001`, then backward. Returns dy/dx.
fn chain(n: usize) -> f64 {
    let x = Tensor::from_vec(vec![1.0f32], &[1]).requires_grad_();
    let mut y = x.clone();
    for _ in 0..n / 2 {
        y = &y * 1.0001;
        y = &y + 0.0001;
    }
    y.backward();
    x.grad().expect("x requires grad").item()
}

fn main() {
    let mut args = std::env::args().skip(1).take(2).map(|a| a.parse::<usize>().expect("arguments are counts"));
    let ops = args.next().unwrap_or(10_000);
    let repeats = args.next().unwrap_or(50);
    let profile = std::env::args().nth(3).as_deref() == Some("profile");
    let mut per_op = Vec::with_capacity(repeats);
    let mut grad = 0.0;
    for _ in 0..repeats {
        let profiler = profile.then(tensorgrad::profile::Profiler::start);
        let start = Instant::now();
        grad = chain(ops);
        per_op.push(start.elapsed().as_secs_f64() * 1e6 / ops as f64);
        drop(profiler.map(|p| p.stop()));
    }
    per_op.sort_by(f64::total_cmp);
    println!(
        "autograd-overhead{}: {ops} ops x {repeats}: median {:.3} us/op, best {:.3} us/op (dy/dx = {grad:.4})",
        if profile { " (profiled)" } else { "" },
        per_op[per_op.len() / 2],
        per_op[0]
    );
}
