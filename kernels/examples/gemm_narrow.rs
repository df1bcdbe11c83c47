//! GFLOP/s of the char-lstm output layer's three products (Linear(256 -> 65) on 2048 rows), with the
//! exact strides the engine passes, plus square shapes as a regression check.
//!
//! ```text
//! cargo run --release -p tensorgrad-kernels --example gemm_narrow -- [threads] [secs per shape]
//! ```
//!
//! | name | m x k x n | A | B | C |
//! |---|---|---|---|---|
//! | `fwd` y = x W^T | 2048 x 256 x 65 | x row-major | W^T (transposed view) | row-major |
//! | `dx` = dy W | 2048 x 65 x 256 | dy row-major | W row-major | row-major |
//! | `dWt` = x^T dy (what `matmul`'s backward runs: the grad of the view W^T) | 256 x 2048 x 65 | x^T | dy | row-major |
//! | `dW` = dy^T x | 65 x 2048 x 256 | dy^T | x row-major | row-major |
//!
//! Called from the main thread on the global rayon pool of `threads` threads (as the engine calls). Each
//! shape runs batches of >= 20 ms for `secs` seconds; prints the best and the median batch (wall clock).

use std::hint::black_box;
use std::time::Instant;

/// One product: dims and the (row, column) strides of A, B, C.
struct Case {
    name: &'static str,
    m: usize,
    k: usize,
    n: usize,
    sa: (usize, usize),
    sb: (usize, usize),
    sc: (usize, usize),
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let secs: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1.0);
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().expect("global pool");
    let cases = [
        Case { name: "fwd", m: 2048, k: 256, n: 65, sa: (256, 1), sb: (1, 256), sc: (65, 1) },
        Case { name: "dx", m: 2048, k: 65, n: 256, sa: (65, 1), sb: (256, 1), sc: (256, 1) },
        Case { name: "dWt", m: 256, k: 2048, n: 65, sa: (1, 256), sb: (65, 1), sc: (65, 1) },
        Case { name: "dW", m: 65, k: 2048, n: 256, sa: (1, 65), sb: (256, 1), sc: (256, 1) },
        Case { name: "sq256", m: 256, k: 256, n: 256, sa: (256, 1), sb: (256, 1), sc: (256, 1) },
        Case { name: "sq512", m: 512, k: 512, n: 512, sa: (512, 1), sb: (512, 1), sc: (512, 1) },
    ];
    let only: Option<&str> = args.get(3).map(String::as_str);
    for cs in cases.iter().filter(|c| only.is_none_or(|o| o.split(',').any(|x| x == c.name))) {
        let (m, k, n) = (cs.m, cs.k, cs.n);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 * 0.1 - 0.6).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 * 0.1 - 0.5).collect();
        let mut c = vec![0.0f32; m * n];
        let call = |c: &mut [f32]| {
            tensorgrad_kernels::gemm::sgemm(
                m, k, n, 1.0, &a, cs.sa.0, cs.sa.1, &b, cs.sb.0, cs.sb.1, 0.0, c, cs.sc.0, cs.sc.1,
            )
        };
        let t = Instant::now();
        call(&mut c);
        let reps = ((0.02 / t.elapsed().as_secs_f64().max(1e-9)).ceil() as usize).clamp(1, 1_000_000);
        let start = Instant::now();
        let mut batches = Vec::new();
        while batches.len() < 3 || start.elapsed().as_secs_f64() < secs {
            let t = Instant::now();
            for _ in 0..reps {
                call(black_box(&mut c));
            }
            batches.push(t.elapsed().as_secs_f64() / reps as f64);
        }
        batches.sort_by(f64::total_cmp);
        let g = |s: f64| 2.0 * (m * n * k) as f64 / s / 1e9;
        println!(
            "{:6} {m:5}x{k:5}x{n:4} {threads}T: best {:6.1} GFLOP/s ({:7.1} us), median {:6.1}",
            cs.name,
            g(batches[0]),
            batches[0] * 1e6,
            g(batches[batches.len() / 2]),
        );
    }
}
