//! GEMM GFLOP/s table: tensorgrad vs `matrixmultiply` vs the `gemm` crate, 1 and 2 threads, plus the
//! machine's measured FMA peak. Runs in well under a minute.
//!
//! ```text
//! cargo run --release -p tensorgrad-kernels --example gemm_gflops
//! cargo run --release -p tensorgrad-kernels --example gemm_gflops -- --tune   # thresholds
//! TG_GEMM_ISA=avx2 cargo run --release -p tensorgrad-kernels --example gemm_gflops   # AVX2 tier
//! cargo run --release -p tensorgrad-kernels --example gemm_gflops -- --scale 2 [160x160x160,..]   # 2 threads
//! cargo run --release -p tensorgrad-kernels --example gemm_gflops -- --peak2     # 2-core FMA peak
//! cargo run --release -p tensorgrad-kernels --example gemm_gflops -- --prepacked 2   # PackedB vs sgemm
//! cargo run --release -p tensorgrad-kernels --example gemm_gflops -- --one 1024x1024x1024 3 [threads]
//!     # one shape for N seconds (for perf record / perf stat): best-of-batches GFLOP/s
//! ```
//!
//! Shapes are `m x k x n` (A is m x k, B is k x n, all row-major f32). Each cell is the median of 5
//! timed batches (each batch >= 20 ms of calls, after a warm-up call). One-thread rows are timed on the
//! thread's CPU clock (robust on a shared machine: time slices lost to other processes do not count),
//! two-thread rows on the wall clock. `matrixmultiply` reads its thread
//! count once per process from `MATMUL_NUM_THREADS`, so the table is built by re-running this program once
//! per thread count (`--threads N`, which prints only rows).

use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

const SHAPES: [(usize, usize, usize); 11] = [
    (16, 16, 16),
    (64, 64, 64),
    (128, 128, 128),
    (256, 256, 256),
    (512, 512, 512),
    (1024, 1024, 1024),
    (2048, 2048, 2048),
    (32, 784, 16),
    (128, 784, 512),
    (128, 512, 512),
    (2048, 128, 512),
];

/// Seconds of CPU time consumed by the calling thread (Linux), immune to time slices lost to other
/// processes on a shared machine. Falls back to wall time elsewhere.
#[cfg(target_os = "linux")]
fn thread_cpu_secs() -> f64 {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clk: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut t = Timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through the valid pointer.
    unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_secs() -> f64 {
    wall_secs()
}

/// Seconds of CPU time consumed by all threads of this process (Linux; wall time elsewhere).
#[cfg(target_os = "linux")]
fn process_cpu_secs() -> f64 {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clk: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
    let mut t = Timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through the valid pointer.
    unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

#[cfg(not(target_os = "linux"))]
fn process_cpu_secs() -> f64 {
    wall_secs()
}

fn wall_secs() -> f64 {
    use std::sync::OnceLock;
    static T0: OnceLock<Instant> = OnceLock::new();
    T0.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// Median seconds per call of `f`, measured with `clock` (thread CPU time for single-threaded runs, wall
/// time when other threads do part of the work).
fn time_with(clock: fn() -> f64, mut f: impl FnMut()) -> f64 {
    f();
    let t = clock();
    f();
    let once = (clock() - t).max(1e-9);
    let reps = ((0.02 / once).ceil() as usize).clamp(1, 1_000_000);
    let mut per_call: Vec<f64> = (0..5)
        .map(|_| {
            let t = clock();
            for _ in 0..reps {
                f();
            }
            (clock() - t) / reps as f64
        })
        .collect();
    per_call.sort_by(f64::total_cmp);
    per_call[2]
}

/// [`time_with`] on the thread's CPU clock.
fn time_it(f: impl FnMut()) -> f64 {
    time_with(thread_cpu_secs, f)
}

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// 14 independent AVX2 FMA chains, `iters` rounds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline(never)]
fn run2(iters: usize) -> f32 {
    let mut acc = [_mm256_set1_ps(0.0); 14];
    let x = _mm256_set1_ps(0.999_999);
    let y = _mm256_set1_ps(1e-7);
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = _mm256_fmadd_ps(*a, x, y);
        }
    }
    let mut s = _mm256_setzero_ps();
    for a in acc {
        s = _mm256_add_ps(s, a);
    }
    let mut out = [0.0f32; 8];
    // SAFETY: out holds 8 f32.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s) };
    out.iter().sum()
}

/// 16 independent AVX-512 FMA chains, `iters` rounds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline(never)]
fn run512(iters: usize) -> f32 {
    let mut acc = [_mm512_set1_ps(0.0); 16];
    let x = _mm512_set1_ps(0.999_999);
    let y = _mm512_set1_ps(1e-7);
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = _mm512_fmadd_ps(*a, x, y);
        }
    }
    let mut s = _mm512_setzero_ps();
    for a in acc {
        s = _mm512_add_ps(s, a);
    }
    _mm512_reduce_add_ps(s)
}

/// Peak f32 FMA throughput of one core, for AVX2 (8 lanes) and AVX-512 (16 lanes): 14 (AVX2: 16 ymm
/// registers) or 16 independent FMA chains (2 pipes x 4-5 cycles latency need 8-10), 2 * lanes * chains
/// flops per iteration. `NaN` if the CPU lacks the instructions.
#[cfg(target_arch = "x86_64")]
fn fma_peak_gflops() -> (f64, f64) {
    let iters = 1_000_000;
    let p2 = if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        let secs = time_it(|| {
            // SAFETY: AVX2 and FMA were detected.
            black_box(unsafe { run2(black_box(iters)) });
        });
        iters as f64 * 14.0 * 16.0 / secs / 1e9
    } else {
        f64::NAN
    };
    let p512 = if is_x86_feature_detected!("avx512f") {
        let secs = time_it(|| {
            // SAFETY: AVX-512F was detected.
            black_box(unsafe { run512(black_box(iters)) });
        });
        iters as f64 * 16.0 * 32.0 / secs / 1e9
    } else {
        f64::NAN
    };
    (p2, p512)
}

#[cfg(not(target_arch = "x86_64"))]
fn fma_peak_gflops() -> (f64, f64) {
    (f64::NAN, f64::NAN)
}

/// `--peak2`: the AVX-512 FMA loop on 1 and then 2 threads at once (wall clock, best of 20 runs each):
/// whether the two cores really deliver twice one core's peak (on a VM they may share a physical core).
#[cfg(target_arch = "x86_64")]
fn peak2() {
    if !is_x86_feature_detected!("avx512f") {
        println!("no AVX-512");
        return;
    }
    let iters = 2_000_000;
    let run = |threads: usize| {
        let mut best = f64::INFINITY;
        for _ in 0..20 {
            let t = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..threads {
                    // SAFETY: AVX-512F was detected.
                    s.spawn(|| black_box(unsafe { run512(black_box(iters)) }));
                }
            });
            best = best.min(t.elapsed().as_secs_f64());
        }
        threads as f64 * iters as f64 * 16.0 * 32.0 / best / 1e9
    };
    let (one, two) = (run(1), run(2));
    println!(
        "AVX-512 FMA peak, wall clock: 1 thread {one:.1} GFLOP/s, 2 threads {two:.1} GFLOP/s ({:.2}x); load {}",
        two / one,
        load_avg()
    );
}

#[cfg(not(target_arch = "x86_64"))]
fn peak2() {
    println!("x86-64 only");
}

fn rows(threads: usize) {
    set_isa_from_env();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    // One thread: everything runs on this thread, so its CPU time is the cost (robust on a busy machine).
    // Two threads: wall time.
    let clock: fn() -> f64 = if threads == 1 { thread_cpu_secs } else { wall_secs };
    pool.install(|| {
        for &(m, k, n) in &SHAPES {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 * 0.1 - 0.6).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 * 0.1 - 0.5).collect();
            let mut c = vec![0.0f32; m * n];
            let flops = 2.0 * (m * n * k) as f64;
            let tg = time_with(clock, || {
                tensorgrad_kernels::gemm::sgemm(m, k, n, 1.0, &a, k, 1, &b, n, 1, 0.0, &mut c, n, 1);
                black_box(&mut c);
            });
            let mm = time_with(clock, || {
                // SAFETY: a, b, c hold m x k, k x n, m x n row-major matrices.
                unsafe {
                    matrixmultiply::sgemm(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        k as isize,
                        1,
                        b.as_ptr(),
                        n as isize,
                        1,
                        0.0,
                        c.as_mut_ptr(),
                        n as isize,
                        1,
                    )
                };
                black_box(&mut c);
            });
            let par = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
            let gc = time_with(clock, || {
                // SAFETY: as above; gemm computes dst = alpha*dst + beta*lhs*rhs, read_dst = false.
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        c.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        a.as_ptr(),
                        1,
                        k as isize,
                        b.as_ptr(),
                        1,
                        n as isize,
                        0.0f32,
                        1.0f32,
                        false,
                        false,
                        false,
                        par,
                    )
                };
                black_box(&mut c);
            });
            let g = |s: f64| flops / s / 1e9;
            println!(
                "| {:>16} | {threads} | {:>9.1} | {:>9.1} | {:>9.1} | {:>9.2} |",
                format!("{m}x{k}x{n}"),
                g(tg),
                g(mm),
                g(gc),
                tg * 1e6
            );
        }
    });
}

/// A few `f64` rows (one thread): dgemm vs the baselines.
fn rows_f64() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    pool.install(|| {
        for s in [64usize, 256, 512, 1024] {
            let (m, k, n) = (s, s, s);
            let a: Vec<f64> = (0..m * k).map(|i| ((i * 7) % 13) as f64 * 0.1 - 0.6).collect();
            let b: Vec<f64> = (0..k * n).map(|i| ((i * 5) % 11) as f64 * 0.1 - 0.5).collect();
            let mut c = vec![0.0f64; m * n];
            let flops = 2.0 * (m * n * k) as f64;
            let tg = time_it(|| {
                tensorgrad_kernels::gemm::dgemm(m, k, n, 1.0, &a, k, 1, &b, n, 1, 0.0, &mut c, n, 1);
                black_box(&mut c);
            });
            let mm = time_it(|| {
                // SAFETY: a, b, c hold m x k, k x n, m x n row-major matrices.
                unsafe {
                    matrixmultiply::dgemm(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        k as isize,
                        1,
                        b.as_ptr(),
                        n as isize,
                        1,
                        0.0,
                        c.as_mut_ptr(),
                        n as isize,
                        1,
                    )
                };
                black_box(&mut c);
            });
            let gc = time_it(|| {
                // SAFETY: as above.
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        c.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        a.as_ptr(),
                        1,
                        k as isize,
                        b.as_ptr(),
                        1,
                        n as isize,
                        0.0f64,
                        1.0f64,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    )
                };
                black_box(&mut c);
            });
            let g = |t: f64| flops / t / 1e9;
            println!(
                "| {:>16} | 1 | {:>9.1} | {:>9.1} | {:>9.1} | {:>9.2} |",
                format!("f64 {m}x{k}x{n}"),
                g(tg),
                g(mm),
                g(gc),
                tg * 1e6
            );
        }
    });
}

/// `TG_GEMM_ISA=avx2` (or `portable`) caps tensorgrad's kernel tier, to measure the lower tiers.
fn set_isa_from_env() {
    use tensorgrad_kernels::gemm::{force_isa, Isa};
    match std::env::var("TG_GEMM_ISA").as_deref() {
        Ok("avx2") => force_isa(Some(Isa::Avx2)),
        Ok("portable") => force_isa(Some(Isa::Portable)),
        _ => {}
    }
}

/// `--tune`: the measurements behind `SMALL_MNK` and `PAR_MNK` (microseconds per call).
fn tune() {
    use tensorgrad_kernels::gemm::{set_thresholds, sgemm, PAR_MNK, PAR_MNK_EXTERNAL, SMALL_MNK};
    let time = |m: usize, k: usize, n: usize, threads: usize| {
        let clock: fn() -> f64 = if threads == 1 { thread_cpu_secs } else { wall_secs };
        let a = vec![0.5f32; m * k];
        let b = vec![0.25f32; k * n];
        let mut c = vec![0.0f32; m * n];
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            time_with(clock, || {
                sgemm(m, k, n, 1.0, &a, k, 1, &b, n, 1, 0.0, &mut c, n, 1);
                black_box(&mut c);
            }) * 1e6
        })
    };
    println!("small path vs packed path on 1 and 2 threads (us per call)");
    println!("| shape | small, 1 thread | small, 2 threads | packed, 1 thread | packed, 2 threads |");
    println!("|---|---|---|---|---|");
    for (m, k, n) in [
        (16, 16, 16),
        (32, 32, 32),
        (64, 64, 64),
        (80, 80, 80),
        (96, 96, 96),
        (112, 112, 112),
        (128, 128, 128),
        (160, 160, 160),
        (192, 192, 192),
        (256, 256, 256),
        (32, 784, 16),
        (64, 784, 128),
    ] {
        set_thresholds(usize::MAX, usize::MAX, usize::MAX);
        let small = time(m, k, n, 1);
        set_thresholds(usize::MAX, 0, 0);
        let small2 = time(m, k, n, 2);
        set_thresholds(0, usize::MAX, usize::MAX);
        let packed = time(m, k, n, 1);
        set_thresholds(0, 0, 0);
        let packed2 = time(m, k, n, 2);
        println!("| {m}x{k}x{n} | {small:.2} | {small2:.2} | {packed:.2} | {packed2:.2} |");
    }
    println!();
    println!("2-thread scaling, packed path: wall-clock speedup (both on the wall clock, interleaved), and");
    println!("the CPU-time estimate 2 * t1 / (CPU of both threads): the speedup on an otherwise idle machine");
    println!("if no time were lost waiting (counts rayon's spinning and extra packing, not lost time slices)");
    println!("| shape | 1 thread us (wall) | 2 threads us (wall) | wall speedup | CPU-time estimate |");
    println!("|---|---|---|---|---|");
    set_thresholds(0, 0, 0);
    for s in [128usize, 192, 256, 384, 512, 1024] {
        let a = vec![0.5f32; s * s];
        let b = vec![0.25f32; s * s];
        let mut c = vec![0.0f32; s * s];
        let mut run = |threads: usize, clock: fn() -> f64| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                time_with(clock, || {
                    sgemm(s, s, s, 1.0, &a, s, 1, &b, s, 1, 0.0, &mut c, s, 1);
                    black_box(&mut c);
                })
            })
        };
        // Interleave 1- and 2-thread runs so both see similar load; median of 3 each.
        let mut w1 = Vec::new();
        let mut w2 = Vec::new();
        for _ in 0..3 {
            w1.push(run(1, wall_secs));
            w2.push(run(2, wall_secs));
        }
        w1.sort_by(f64::total_cmp);
        w2.sort_by(f64::total_cmp);
        let t1cpu = run(1, thread_cpu_secs);
        let t2cpu = run(2, process_cpu_secs);
        println!(
            "| {s}^3 | {:.1} | {:.1} | {:.2} | {:.2} |",
            w1[1] * 1e6,
            w2[1] * 1e6,
            w1[1] / w2[1],
            2.0 * t1cpu / t2cpu
        );
    }
    set_thresholds(SMALL_MNK, PAR_MNK, PAR_MNK_EXTERNAL);
}

/// The 1-minute load average (Linux `/proc/loadavg`), to print next to wall-clock numbers.
fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// `--scale [secs]`: 2-thread scaling on the wall clock, robust to a shared machine. For each shape,
/// rounds of (tensorgrad 1 thread, tensorgrad 2 threads, matrixmultiply 2 threads) interleaved, each
/// entry a batch of >= 2 ms of calls; the best batch of each (min of N) is reported, with the load average.
/// matrixmultiply's thread count comes from `MATMUL_NUM_THREADS`, set here before its first call. "From
/// outside the pool": tensorgrad called from the main thread on the global pool (2 threads on a 2-core
/// machine), as the engine calls it, which adds one injection into the pool per product.
fn scale(secs: f64, shapes: &[(usize, usize, usize)]) {
    // Before matrixmultiply's first call reads it.
    std::env::set_var("MATMUL_NUM_THREADS", "2");
    let pools = [1, 2].map(|t| rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap());
    println!("2-thread scaling, wall clock, best of interleaved batches (>= 2 ms each); GFLOP/s");
    println!();
    println!(
        "| shape | tg 1t | tg 2t | speedup | speedup from outside the pool | mm 2t | tg 2t / mm 2t | rounds | load |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &(m, k, n) in shapes {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 * 0.1 - 0.6).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 * 0.1 - 0.5).collect();
        let mut c = vec![0.0f32; m * n];
        let flops = 2.0 * (m * n * k) as f64;
        let load0 = load_avg();
        let tg = |c: &mut [f32]| tensorgrad_kernels::gemm::sgemm(m, k, n, 1.0, &a, k, 1, &b, n, 1, 0.0, c, n, 1);
        let mm = |c: &mut [f32]| {
            // SAFETY: a, b, c hold m x k, k x n, m x n row-major matrices.
            unsafe {
                matrixmultiply::sgemm(
                    m,
                    k,
                    n,
                    1.0,
                    a.as_ptr(),
                    k as isize,
                    1,
                    b.as_ptr(),
                    n as isize,
                    1,
                    0.0,
                    c.as_mut_ptr(),
                    n as isize,
                    1,
                )
            }
        };
        // Calls per batch, from one warm call.
        let t = Instant::now();
        tg(&mut c);
        mm(&mut c);
        let reps = ((0.002 / t.elapsed().as_secs_f64().max(1e-9)).ceil() as usize).clamp(1, 100_000);
        let mut best = [f64::INFINITY; 4];
        let start = Instant::now();
        let mut rounds = 0;
        while rounds < 3 || start.elapsed().as_secs_f64() < secs {
            for (cfg, best) in best.iter_mut().enumerate() {
                let batch = |f: &mut dyn FnMut()| {
                    let t = Instant::now();
                    for _ in 0..reps {
                        f();
                    }
                    t.elapsed().as_secs_f64() / reps as f64
                };
                let per_call = match cfg {
                    0 => pools[0].install(|| batch(&mut || tg(black_box(&mut c)))),
                    1 => pools[1].install(|| batch(&mut || tg(black_box(&mut c)))),
                    2 => batch(&mut || mm(black_box(&mut c))),
                    // From this (non-pool) thread on the global pool, as the engine calls it.
                    _ => batch(&mut || tg(black_box(&mut c))),
                };
                *best = best.min(per_call);
            }
            rounds += 1;
        }
        let g = |s: f64| flops / s / 1e9;
        println!(
            "| {m}x{k}x{n} | {:.1} | {:.1} | {:.2} | {:.2} | {:.1} | {:.2} | {rounds} | {load0}-{} |",
            g(best[0]),
            g(best[1]),
            best[0] / best[1],
            best[0] / best[3],
            g(best[2]),
            best[2] / best[1],
            load_avg()
        );
    }
}

/// `--prepacked [secs]`: `sgemm` vs `gemm_packed_b` (B packed once, outside the timing) on the LSTM step
/// shapes (forward `h[32x256] W^T`, backward `dA[32x1024] W`) and two square ones, 1 and 2 threads,
/// called from inside the pool as the LSTM does; interleaved batches on the wall clock, best of each.
fn prepacked(secs: f64) {
    use tensorgrad_kernels::gemm::{sgemm, sgemm_packed_b, PackedB};
    let pools = [1, 2].map(|t| rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap());
    println!("sgemm vs prepacked B (gemm_packed_b), us per call, best of interleaved batches; load {}", load_avg());
    println!();
    println!("| shape (m x k x n) | threads | sgemm us | packed B us | speedup |");
    println!("|---|---|---|---|---|");
    for (m, k, n) in [(32, 256, 1024), (32, 1024, 256), (256, 256, 256), (1024, 1024, 1024)] {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 * 0.1 - 0.6).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 * 0.1 - 0.5).collect();
        let packed = PackedB::new(k, n, &b, n, 1);
        let mut c = vec![0.0f32; m * n];
        let t = Instant::now();
        sgemm(m, k, n, 1.0, &a, k, 1, &b, n, 1, 0.0, &mut c, n, 1);
        let reps = ((0.002 / t.elapsed().as_secs_f64().max(1e-9)).ceil() as usize).clamp(1, 100_000);
        for (ti, pool) in pools.iter().enumerate() {
            let mut best = [f64::INFINITY; 2];
            let start = Instant::now();
            while start.elapsed().as_secs_f64() < secs {
                for (cfg, best) in best.iter_mut().enumerate() {
                    let per_call = pool.install(|| {
                        let t = Instant::now();
                        for _ in 0..reps {
                            if cfg == 0 {
                                sgemm(m, k, n, 1.0, &a, k, 1, &b, n, 1, 0.0, black_box(&mut c), n, 1);
                            } else {
                                sgemm_packed_b(m, 1.0, &a, k, 1, &packed, 0.0, black_box(&mut c), n, 1);
                            }
                        }
                        t.elapsed().as_secs_f64() / reps as f64
                    });
                    *best = best.min(per_call);
                }
            }
            println!(
                "| {m}x{k}x{n} | {} | {:.1} | {:.1} | {:.2} |",
                ti + 1,
                best[0] * 1e6,
                best[1] * 1e6,
                best[0] / best[1]
            );
        }
    }
}

/// `--one MxKxN secs [threads]`: one row-major `f32` shape on a pool of `threads` (default 1) for `secs`
/// seconds of batches (>= 20 ms each); prints the best and median batch in GFLOP/s (wall clock).
fn one(shape: &str, secs: f64, threads: usize) {
    let d: Vec<usize> = shape.split('x').map(|v| v.parse().expect("shape m x k x n")).collect();
    let (m, k, n) = (d[0], d[1], d[2]);
    let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 * 0.1 - 0.6).collect();
    let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 * 0.1 - 0.5).collect();
    let mut c = vec![0.0f32; m * n];
    let flops = 2.0 * (m * n * k) as f64;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let (mut batches, reps): (Vec<f64>, usize) = pool.install(|| {
        let call = |c: &mut [f32]| tensorgrad_kernels::gemm::sgemm(m, k, n, 1.0, &a, k, 1, &b, n, 1, 0.0, c, n, 1);
        let t = Instant::now();
        call(&mut c);
        let reps = ((0.02 / t.elapsed().as_secs_f64().max(1e-9)).ceil() as usize).clamp(1, 1_000_000);
        let start = Instant::now();
        let mut out = Vec::new();
        while out.len() < 3 || start.elapsed().as_secs_f64() < secs {
            let t = Instant::now();
            for _ in 0..reps {
                call(black_box(&mut c));
            }
            out.push(t.elapsed().as_secs_f64() / reps as f64);
        }
        (out, reps)
    });
    batches.sort_by(f64::total_cmp);
    let g = |s: f64| flops / s / 1e9;
    println!(
        "{m}x{k}x{n} {threads} thread(s): best {:.1} GFLOP/s, median {:.1} ({} batches, {} calls + 1, load {})",
        g(batches[0]),
        g(batches[batches.len() / 2]),
        batches.len(),
        batches.len() * reps,
        load_avg()
    );
}

fn main() {
    set_isa_from_env();
    if std::env::args().any(|a| a == "--tune") {
        tune();
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--one") {
        let secs = args.get(i + 2).and_then(|s| s.parse().ok()).unwrap_or(2.0);
        let threads = args.get(i + 3).and_then(|s| s.parse().ok()).unwrap_or(1);
        one(&args[i + 1], secs, threads);
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--prepacked") {
        prepacked(args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(1.0));
        return;
    }
    if args.iter().any(|a| a == "--peak2") {
        peak2();
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--scale") {
        // Optional shapes after the seconds: `--scale 2 160x160x160,192x192x192`.
        let shapes: Vec<(usize, usize, usize)> = match args.get(i + 2) {
            Some(list) => list
                .split(',')
                .map(|s| {
                    let d: Vec<usize> = s.split('x').map(|v| v.parse().expect("shape m x k x n")).collect();
                    (d[0], d[1], d[2])
                })
                .collect(),
            None => SHAPES.to_vec(),
        };
        scale(args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(1.0), &shapes);
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--threads") {
        let threads = args[i + 1].parse().expect("--threads N");
        rows(threads);
        if threads == 1 {
            rows_f64();
        }
        return;
    }
    let (p2, p512) = fma_peak_gflops();
    println!(
        "f32 FMA peak, 1 core: AVX2 {p2:.1} GFLOP/s, AVX-512 {p512:.1} GFLOP/s; tensorgrad microkernel: {}",
        tensorgrad_kernels::gemm::kernel_name::<f32>()
    );
    println!();
    println!("GFLOP/s (2*m*n*k / time), shapes m x k x n, row-major f32; us = tensorgrad time per call");
    println!();
    println!("| shape (m x k x n) | threads | tensorgrad | matrixmultiply | gemm 0.19 | tensorgrad us |");
    println!("|---|---|---|---|---|---|");
    let exe = std::env::current_exe().expect("own path");
    for threads in [1, 2] {
        let status = Command::new(&exe)
            .args(["--threads", &threads.to_string()])
            .env("MATMUL_NUM_THREADS", threads.to_string())
            .status()
            .expect("re-run self");
        assert!(status.success());
    }
}
