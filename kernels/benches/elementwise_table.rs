//! Prints ns/element of the f32 elementwise kernels next to plain scalar `std` loops and the issue's
//! targets, as a plain table, in a few seconds.
//!
//! The machine is shared, so besides wall time it reports **on-CPU time** of the benchmarking thread
//! (Linux `/proc/thread-self/schedstat`): time spent preempted by other processes is not counted. Each
//! figure is the median of 9 rounds of ≥ 20 ms each. Single thread, 16K elements (in L2).
//!
//! Run: `cargo bench -p tensorgrad-kernels --bench elementwise_table`

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use tensorgrad_kernels::{elementwise as ew, reduce, rows};

const N: usize = 16 * 1024;

fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Median (on-CPU ns/elem, wall ns/elem) of `f`, which processes `n` elements per call.
fn measure(n: usize, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..50 {
        f();
    }
    let mut cpu = Vec::new();
    let mut wall = Vec::new();
    for _ in 0..9 {
        let (c0, t0) = (cpu_ns(), Instant::now());
        let mut iters = 0u64;
        while t0.elapsed().as_millis() < 20 {
            for _ in 0..16 {
                f();
            }
            iters += 16;
        }
        let w = t0.elapsed().as_nanos() as f64;
        let c = match (c0, cpu_ns()) {
            (Some(a), Some(b)) => (b - a) as f64,
            _ => w,
        };
        cpu.push(c / (iters as f64 * n as f64));
        wall.push(w / (iters as f64 * n as f64));
    }
    cpu.sort_by(f64::total_cmp);
    wall.sort_by(f64::total_cmp);
    (cpu[4], wall[4])
}

fn input(n: usize, lo: f32, hi: f32) -> Vec<f32> {
    let mut s = 0x1234_5678_u32;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            lo + (hi - lo) * (s as f32 / u32::MAX as f32)
        })
        .collect()
}

fn row(name: &str, target: &str, fast: (f64, f64), base: (f64, f64)) {
    println!("{name:<22} {:>9.3} {:>9.3} {:>11.3} {:>9.1}x   {target}", fast.0, fast.1, base.0, base.0 / fast.0);
}

fn main() {
    tensorgrad_kernels::cpu::warn_if_simd_unused();
    println!(
        "f32, 1 thread, {N} elements; ns/element (median of 9); AVX2 build: {}",
        tensorgrad_kernels::cpu::simd_compiled_with_avx2()
    );
    println!("{:<22} {:>9} {:>9} {:>11} {:>10}   target", "kernel", "cpu", "wall", "std cpu", "speedup");
    let x = input(N, -5.0, 5.0);
    let b = input(N, 1.0, 2.0);
    let mut y = vec![0.0f32; N];

    type Fast = fn(&[f32], &mut [f32]);
    type Scalar = fn(f32) -> f32;
    let gelu_tanh_scalar: Scalar = |v| 0.5 * v * (1.0 + (0.797_884_6 * (v + 0.044715 * v * v * v)).tanh());
    let cases: [(&str, Fast, Scalar, &str); 6] = [
        ("exp", ew::exp, f32::exp, "<= 0.40"),
        ("tanh", ew::tanh, f32::tanh, "<= 0.35"),
        ("sigmoid", ew::sigmoid, |v| 1.0 / (1.0 + (-v).exp()), ""),
        ("gelu_erf", ew::gelu_erf, gelu_tanh_scalar, "(std: tanh form)"),
        ("gelu_tanh", ew::gelu_tanh, gelu_tanh_scalar, ""),
        ("log", ew::log, f32::ln, ""),
    ];
    for (name, fast, scalar, target) in cases {
        let xs: Vec<f32> = if name == "log" { b.clone() } else { x.clone() };
        let f = measure(N, || fast(black_box(&xs), black_box(&mut y)));
        let s = measure(N, || {
            for (o, &v) in y.iter_mut().zip(black_box(&xs)) {
                *o = scalar(v);
            }
            black_box(&mut y);
        });
        row(name, target, f, s);
    }
    let f = measure(N, || ew::add(black_box(&x), black_box(&b), &mut y));
    let s = measure(N, || {
        for ((o, &p), &q) in y.iter_mut().zip(black_box(&x)).zip(black_box(&b)) {
            *o = p + q;
        }
        black_box(&mut y);
    });
    row("add", &format!("{:.1} GB/s (12 B/elem, cpu)", 12.0 / f.0), f, s);
    let f = measure(N, || {
        black_box(reduce::sum(black_box(&x)));
    });
    let s = measure(N, || {
        black_box(black_box(&x).iter().sum::<f32>());
    });
    row("sum", "<= 0.06", f, s);
    for cols in [128usize, 512, 1024] {
        let f = measure(N, || rows::softmax_rows(black_box(&x), &mut y, cols));
        let s = measure(N, || {
            for (r, o) in black_box(&x).chunks(cols).zip(y.chunks_mut(cols)) {
                let m = r.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let mut t = 0.0;
                for (v, &u) in o.iter_mut().zip(r) {
                    *v = (u - m).exp();
                    t += *v;
                }
                for v in o.iter_mut() {
                    *v /= t;
                }
            }
            black_box(&mut y);
        });
        row(&format!("softmax_rows c={cols}"), "<= 0.70", f, s);
    }

    // Threads: wall time of a 1-thread vs a 2-thread rayon pool at sizes around the thresholds
    // (PAR_THRESHOLD_TRANSCENDENTAL = 32K elements, PAR_THRESHOLD_CHEAP = 256K). Wall time is only
    // meaningful on an otherwise idle machine.
    println!();
    println!("{:<22} {:>10} {:>12} {:>12} {:>8}", "threads", "elements", "1 thr ns/el", "2 thr ns/el", "speedup");
    for n in [8usize << 10, 32 << 10, 128 << 10, 1 << 20, 4 << 20] {
        let x = input(n, -5.0, 5.0);
        let b = input(n, 1.0, 2.0);
        let mut y = vec![0.0f32; n];
        for (name, f) in [
            (
                "exp",
                Box::new(|x: &[f32], _b: &[f32], y: &mut [f32]| ew::exp(x, y))
                    as Box<dyn Fn(&[f32], &[f32], &mut [f32]) + Sync>,
            ),
            ("add", Box::new(|x: &[f32], b: &[f32], y: &mut [f32]| ew::add(x, b, y))),
        ] {
            let mut t = [0.0; 2];
            for (k, threads) in [1usize, 2].into_iter().enumerate() {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
                t[k] = pool.install(|| measure(n, || f(black_box(&x), black_box(&b), &mut y)).1);
            }
            println!("{name:<22} {n:>10} {:>12.3} {:>12.3} {:>7.2}x", t[0], t[1], t[0] / t[1]);
        }
    }
}
