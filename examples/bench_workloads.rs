//! Times one training step of each workload of `../shared/WORKLOADS.md` and prints one line per workload:
//! `<id> <median ms/step>` (then the parameter count, and PyTorch's count when they differ).
//!
//! Timing follows `../shared/reference/torch_ref.py`'s `time_it`: 5 warm-up steps, then steps until at least
//! `--secs` seconds (default 3) have passed AND at least 10 steps were timed; the median of the per-step times.
//!
//! Run: `cargo run --release --example bench_workloads [-- --only gpt-mini [--only lenet] --secs 3] [--profile]`
//!
//! Each line also reports the peak bytes of live tensor storage during one step (after warm-up), and
//! `--profile` prints the op profiler's table for 10 profiled steps of each workload after its timing.
//! `--profile-overhead` measures what the profiler costs while it records: steps alternately without and with
//! it (so load changes on a shared machine hit both alike) and prints both medians and their ratio.
//! `benches/compare_torch.sh` runs this next to PyTorch and prints the ratio table.

#[path = "../benches/workloads/mod.rs"]
mod workloads;

use std::time::{Duration, Instant};
use workloads::{Workload, IDS};

/// Median milliseconds per step of `step`, timed like `torch_ref.time_it`.
fn time_it(mut step: impl FnMut(), secs: f64) -> f64 {
    for _ in 0..5 {
        step();
    }
    let mut ts = Vec::new();
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end || ts.len() < 10 {
        let t = Instant::now();
        step();
        ts.push(t.elapsed().as_secs_f64());
    }
    ts.sort_by(f64::total_cmp);
    let n = ts.len();
    let median = if n % 2 == 1 { ts[n / 2] } else { 0.5 * (ts[n / 2 - 1] + ts[n / 2]) };
    median * 1e3
}

fn median_ms(mut ts: Vec<f64>) -> f64 {
    ts.sort_by(f64::total_cmp);
    let n = ts.len();
    1e3 * if n % 2 == 1 { ts[n / 2] } else { 0.5 * (ts[n / 2 - 1] + ts[n / 2]) }
}

/// Median ms/step without and with the profiler recording, from alternating steps (at least `secs` seconds
/// and 10 pairs), and the median over pairs of (with / without): neighbouring steps see the same machine
/// load, so the paired ratio is steadier than the ratio of the medians. Only the step is timed: starting
/// and stopping the profiler (sorting its events) is not.
fn profiler_overhead(mut step: impl FnMut(), secs: f64) -> (f64, f64, f64) {
    for _ in 0..5 {
        step();
    }
    let (mut off, mut on) = (Vec::new(), Vec::new());
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end || on.len() < 10 {
        let t = Instant::now();
        step();
        off.push(t.elapsed().as_secs_f64());
        let profiler = tensorgrad::profile::Profiler::start();
        let t = Instant::now();
        step();
        on.push(t.elapsed().as_secs_f64());
        drop(profiler.stop());
    }
    let ratios: Vec<f64> = on.iter().zip(&off).map(|(a, b)| a / b).collect();
    (median_ms(off), median_ms(on), median_ms(ratios) / 1e3)
}

fn usage() -> ! {
    eprintln!(
        "usage: bench_workloads [--only ID]... [--secs S] [--profile] [--profile-overhead]   (ids: {})",
        IDS.join(", ")
    );
    std::process::exit(2);
}

fn main() {
    let mut only: Vec<String> = Vec::new();
    let mut secs = 3.0;
    let mut profile = false;
    let mut overhead = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--only" => only.push(args.next().unwrap_or_else(|| usage())),
            "--secs" => secs = args.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| usage()),
            "--profile" => profile = true,
            "--profile-overhead" => overhead = true,
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    for id in &only {
        if !IDS.contains(&id.as_str()) {
            eprintln!("unknown workload {id:?}");
            usage();
        }
    }
    let ids: Vec<&str> = if only.is_empty() {
        IDS.to_vec()
    } else {
        IDS.iter().copied().filter(|w| only.iter().any(|o| o == w)).collect()
    };
    for id in ids {
        let mut w = Workload::new(id).expect("known id");
        let (n, torch_n) = (w.num_parameters(), w.torch_parameters());
        let ms = time_it(
            || {
                w.step();
            },
            secs,
        );
        let check = if n == torch_n { String::new() } else { format!("  MISMATCH: PyTorch has {torch_n}") };
        // Peak storage of one step, measured from the live bytes before it (parameters, optimizer state).
        let before = tensorgrad::profile::memory_stats().live_bytes;
        tensorgrad::profile::reset_peak();
        w.step();
        let peak = tensorgrad::profile::memory_stats().peak_bytes;
        let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
        println!("{id} {ms:.3}  params={n}  peak_MiB={:.2} (live before step {:.2}){check}", mib(peak), mib(before));
        if profile {
            let profiler = tensorgrad::profile::Profiler::start();
            for _ in 0..10 {
                w.step();
            }
            print!("{}", profiler.stop().table());
        }
        if overhead {
            let (off, on, paired) = profiler_overhead(
                || {
                    w.step();
                },
                secs,
            );
            println!(
                "{id} profiler overhead: {off:.3} ms/step off, {on:.3} ms/step on, ratio of medians {:.3}, \
                 median paired ratio {paired:.3}",
                on / off
            );
        }
    }
}
