//! Where two threads start to pay for the elementwise and reduction kernels: 1-thread vs 2-thread wall
//! time of `exp` (a transcendental map), `add` (a cheap, memory-bound map) and `sum`, at sizes around
//! their thresholds (`PAR_THRESHOLD_TRANSCENDENTAL`, `PAR_THRESHOLD_CHEAP`, `SUM_PAR_THRESHOLD`).
//!
//! ```text
//! cargo run --release -p tensorgrad-kernels --example par_thresholds [-- secs_per_size]
//! ```
//!
//! The kernels pick one thread below their thresholds, so the 2-thread column runs the split the kernels
//! use above them (chunks of 8K elements on the rayon pool, `sum` in blocks of `SUM_BLOCK`), each chunk
//! calling the kernel (which then stays on one thread). 1- and 2-thread batches (>= 0.5 ms each) are
//! interleaved and the best batch of each is kept (min of N), so a shared machine disturbs the numbers
//! less; the 1-minute load average is printed with each row. "From outside the pool": the same 2-thread
//! split called from the main thread on the global pool (how the engine calls the kernels), which adds the
//! cost of injecting the job and waking the caller.

use std::hint::black_box;
use std::time::Instant;

use rayon::prelude::*;
use tensorgrad_kernels::{elementwise as ew, reduce};

/// The kernels' parallel chunk (`elementwise::PAR_CHUNK`, crate-private).
const CHUNK: usize = 1 << 13;

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// Best (minimum) seconds per call of `one` on a 1-thread pool, `two` on a 2-thread pool (called from one
/// of its workers), and `two` called from this (non-pool) thread on the global pool, interleaved.
fn best_pair(secs: f64, one: &mut (dyn FnMut() + Send), two: &mut (dyn FnMut() + Send)) -> (f64, f64, f64) {
    let p1 = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("pool");
    let p2 = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("pool");
    let t = Instant::now();
    one();
    let reps = ((0.0005 / t.elapsed().as_secs_f64().max(1e-9)).ceil() as usize).clamp(1, 100_000);
    let batch = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        for _ in 0..reps {
            f();
        }
        t.elapsed().as_secs_f64() / reps as f64
    };
    let (mut b1, mut b2, mut b3) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    let start = Instant::now();
    let mut rounds = 0;
    while rounds < 5 || start.elapsed().as_secs_f64() < secs {
        b1 = b1.min(p1.install(|| batch(one)));
        b2 = b2.min(p2.install(|| batch(two)));
        b3 = b3.min(batch(two));
        rounds += 1;
    }
    (b1, b2, b3)
}

fn main() {
    let secs: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0.5);
    println!("1 vs 2 threads, wall clock, best of interleaved batches; ns per element");
    println!();
    assert_eq!(rayon::current_num_threads(), 2, "run on a 2-core machine (or RAYON_NUM_THREADS=2)");
    println!("| kernel | elements | 1 thread ns/el | 2 threads ns/el | speedup | from outside the pool | load |");
    println!("|---|---|---|---|---|---|---|");
    for n in [4usize << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20, 4 << 20] {
        let x: Vec<f32> = (0..n).map(|i| ((i * 7) % 101) as f32 * 0.1 - 5.0).collect();
        let b: Vec<f32> = (0..n).map(|i| ((i * 3) % 17) as f32 * 0.1 + 1.0).collect();
        let mut y = vec![0.0f32; n];
        let mut y2 = vec![0.0f32; n];
        let per = |t: f64| t * 1e9 / n as f64;
        let load = load_avg();

        let (t1, t2, t3) = best_pair(secs, &mut || ew::exp(black_box(&x), &mut y), &mut || {
            y2.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(o, i)| ew::exp(black_box(i), o))
        });
        println!("| exp | {n} | {:.3} | {:.3} | {:.2} | {:.2} | {load} |", per(t1), per(t2), t1 / t2, t1 / t3);

        let (t1, t2, t3) = best_pair(secs, &mut || ew::add(black_box(&x), &b, &mut y), &mut || {
            y2.par_chunks_mut(CHUNK)
                .zip(x.par_chunks(CHUNK))
                .zip(b.par_chunks(CHUNK))
                .for_each(|((o, i), j)| ew::add(black_box(i), j, o))
        });
        println!("| add | {n} | {:.3} | {:.3} | {:.2} | {:.2} | {load} |", per(t1), per(t2), t1 / t2, t1 / t3);

        let (t1, t2, t3) = best_pair(
            secs,
            &mut || {
                black_box(x.chunks(reduce::SUM_BLOCK).map(|c| reduce::sum(black_box(c))).sum::<f32>());
            },
            &mut || {
                let parts: Vec<f32> = x.par_chunks(reduce::SUM_BLOCK).map(|c| reduce::sum(black_box(c))).collect();
                black_box(parts.iter().sum::<f32>());
            },
        );
        println!("| sum | {n} | {:.3} | {:.3} | {:.2} | {:.2} | {load} |", per(t1), per(t2), t1 / t2, t1 / t3);
    }
}
