//! Batch normalization over `[N, C, S]` data (`S` = the product of the spatial dims; `S = 1` for `[N, C]`).
//!
//! # Math (per channel `c`, `m = N·S` values)
//! ```text
//! stats:    mean_c = Σ x / m,   var_c = Σ (x - mean_c)² / m          (biased; two passes)
//! forward:  y = x·a_c + b_c     with a_c = w_c·rstd_c,  b_c = bias_c - mean_c·a_c,  rstd_c = 1/sqrt(var_c + eps)
//! backward: sum_dy_c = Σ dy,   sum_dy_xmu_c = Σ dy·(x - mean_c)              (one pass over dy and x)
//!           dw_c = sum_dy_xmu_c · rstd_c,   db_c = sum_dy_c
//!           training (batch statistics):
//!             dx = rstd_c·w_c·(dy - sum_dy_c/m - (x - mean_c)·rstd_c²·sum_dy_xmu_c/m)
//!                = dy·p_c + x·q_c + r_c    with p_c = rstd_c·w_c,  q_c = -p_c·rstd_c²·sum_dy_xmu_c/m,
//!                                               r_c = -p_c·sum_dy_c/m - q_c·mean_c
//!           evaluation (fixed statistics): dx = dy·p_c  (q_c = r_c = 0)
//! ```
//! Both element-wise passes are the same per-channel affine map ([`channel_affine`], [`channel_affine2`]).
//!
//! Sums run per `(n, c)` plane in `T` with 8 independent lanes (vectorizable), and the plane sums add up
//! in `f64`. Channels (reductions) and planes (element-wise maps) run in parallel above
//! [`BN_PAR_THRESHOLD`] elements; each sum has a fixed order, so results do not depend on the thread count.

use rayon::prelude::*;

use crate::elementwise::{check_len, Float};

/// Element count above which the kernels run channels / planes in parallel.
pub const BN_PAR_THRESHOLD: usize = 1 << 15;

fn parallel(len: usize) -> bool {
    len >= BN_PAR_THRESHOLD && rayon::current_num_threads() > 1
}

/// `Σ f(a[i], b[i])` with 8 lanes over 8-wide blocks (the lanes add in a fixed tree at the end).
#[inline(always)]
fn lane_sum<T: Float>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> T {
    let mut acc = [T::ZERO; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        let (x, y): (&[T; 8], &[T; 8]) = (x.try_into().expect("8 lanes"), y.try_into().expect("8 lanes"));
        for ((acc, &x), &y) in acc.iter_mut().zip(x).zip(y) {
            *acc += f(x, y);
        }
    }
    for (j, (&x, &y)) in ra.iter().zip(rb).enumerate() {
        acc[j] += f(x, y);
    }
    ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
}

/// Per-channel sums `Σ_n f(ch, offset of plane (n, ch))` in f64 (two sums at once) over the `n` planes of
/// each channel `ch`.
fn per_channel<T: Float>(
    n: usize,
    c: usize,
    s: usize,
    out: &mut [(f64, f64)],
    f: impl Fn(usize, usize) -> (T, T) + Sync,
) {
    let one = |ch: usize| {
        (0..n).fold((0.0, 0.0), |(a, b), i| {
            let (x, y) = f(ch, (i * c + ch) * s);
            (a + x.to_f64(), b + y.to_f64())
        })
    };
    if parallel(n * c * s) && c > 1 {
        out.par_iter_mut().enumerate().for_each(|(ch, o)| *o = one(ch));
    } else {
        out.iter_mut().enumerate().for_each(|(ch, o)| *o = one(ch));
    }
}

/// `(Σ d, Σ d·(v - mu))` over `dy`, `x` in one pass, 8 lanes each.
#[inline(always)]
fn dual_sum<T: Float>(dy: &[T], x: &[T], mu: T) -> (T, T) {
    let (mut a1, mut a2) = ([T::ZERO; 8], [T::ZERO; 8]);
    let (cd, cx) = (dy.chunks_exact(8), x.chunks_exact(8));
    let (rd, rx) = (cd.remainder(), cx.remainder());
    for (d, v) in cd.zip(cx) {
        let (d, v): (&[T; 8], &[T; 8]) = (d.try_into().expect("8 lanes"), v.try_into().expect("8 lanes"));
        for (((s1, s2), &d), &v) in a1.iter_mut().zip(a2.iter_mut()).zip(d).zip(v) {
            *s1 += d;
            *s2 += d * (v - mu);
        }
    }
    for (j, (&d, &v)) in rd.iter().zip(rx).enumerate() {
        a1[j] += d;
        a2[j] += d * (v - mu);
    }
    let tree = |a: [T; 8]| ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
    (tree(a1), tree(a2))
}

/// Per-channel mean and biased variance of `x [N, C, S]` (two passes), into `mean [C]` and `var [C]`.
///
/// With `N·S = 0` the statistics are NaN (0/0), as in PyTorch.
///
/// # Panics
/// On a length mismatch.
#[track_caller]
pub fn batch_norm_stats<T: Float>(x: &[T], n: usize, c: usize, s: usize, mean: &mut [T], var: &mut [T]) {
    check_len("batch_norm_stats", "x", x.len(), n * c * s);
    check_len("batch_norm_stats", "mean", mean.len(), c);
    check_len("batch_norm_stats", "var", var.len(), c);
    let m = (n * s) as f64;
    let mut sums = vec![(0.0f64, 0.0f64); c];
    per_channel(n, c, s, &mut sums, |_, off| {
        let p = &x[off..off + s];
        (lane_sum(p, p, |v, _| v), T::ZERO)
    });
    for (mu, &(sum, _)) in mean.iter_mut().zip(&sums) {
        *mu = T::from_f64(sum / m);
    }
    let mean_ro: &[T] = mean;
    per_channel(n, c, s, &mut sums, |ch, off| {
        let p = &x[off..off + s];
        let mu = mean_ro[ch];
        let sq = lane_sum(p, p, |v, _| {
            let d = v - mu;
            d * d
        });
        (sq, T::ZERO)
    });
    for (v, &(sum, _)) in var.iter_mut().zip(&sums) {
        *v = T::from_f64(sum / m);
    }
}

/// Per-channel backward sums of `dy, x [N, C, S]`: `sum_dy [C] = Σ dy`, `sum_dy_xmu [C] = Σ dy·(x - mean_c)`.
///
/// # Panics
/// On a length mismatch.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn batch_norm_backward_sums<T: Float>(
    dy: &[T],
    x: &[T],
    mean: &[T],
    n: usize,
    c: usize,
    s: usize,
    sum_dy: &mut [T],
    sum_dy_xmu: &mut [T],
) {
    check_len("batch_norm_backward_sums", "dy", dy.len(), n * c * s);
    check_len("batch_norm_backward_sums", "x", x.len(), n * c * s);
    check_len("batch_norm_backward_sums", "mean", mean.len(), c);
    check_len("batch_norm_backward_sums", "sum_dy", sum_dy.len(), c);
    check_len("batch_norm_backward_sums", "sum_dy_xmu", sum_dy_xmu.len(), c);
    let mut sums = vec![(0.0f64, 0.0f64); c];
    per_channel(n, c, s, &mut sums, |ch, off| dual_sum(&dy[off..off + s], &x[off..off + s], mean[ch]));
    for ((o1, o2), &(v1, v2)) in sum_dy.iter_mut().zip(sum_dy_xmu.iter_mut()).zip(&sums) {
        *o1 = T::from_f64(v1);
        *o2 = T::from_f64(v2);
    }
}

/// `out = x·a_c + b_c` per channel over `[N, C, S]`.
///
/// # Panics
/// On a length mismatch.
#[track_caller]
pub fn channel_affine<T: Float>(x: &[T], a: &[T], b: &[T], n: usize, c: usize, s: usize, out: &mut [T]) {
    check_len("channel_affine", "x", x.len(), n * c * s);
    check_len("channel_affine", "out", out.len(), n * c * s);
    check_len("channel_affine", "a", a.len(), c);
    check_len("channel_affine", "b", b.len(), c);
    if s == 0 || c == 0 {
        return;
    }
    let f = |k: usize, o: &mut [T], p: &[T]| {
        let (ak, bk) = (a[k % c], b[k % c]);
        for (o, &v) in o.iter_mut().zip(p) {
            *o = v * ak + bk;
        }
    };
    if parallel(x.len()) {
        out.par_chunks_mut(s).zip(x.par_chunks(s)).enumerate().for_each(|(k, (o, p))| f(k, o, p));
    } else {
        out.chunks_mut(s).zip(x.chunks(s)).enumerate().for_each(|(k, (o, p))| f(k, o, p));
    }
}

/// `out = dy·p_c + x·q_c + r_c` per channel over `[N, C, S]` (the training-mode input gradient).
///
/// # Panics
/// On a length mismatch.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn channel_affine2<T: Float>(
    dy: &[T],
    x: &[T],
    p: &[T],
    q: &[T],
    r: &[T],
    n: usize,
    c: usize,
    s: usize,
    out: &mut [T],
) {
    for (what, len) in [("dy", dy.len()), ("x", x.len()), ("out", out.len())] {
        check_len("channel_affine2", what, len, n * c * s);
    }
    for (what, len) in [("p", p.len()), ("q", q.len()), ("r", r.len())] {
        check_len("channel_affine2", what, len, c);
    }
    if s == 0 || c == 0 {
        return;
    }
    let f = |k: usize, o: &mut [T], g: &[T], v: &[T]| {
        let (pk, qk, rk) = (p[k % c], q[k % c], r[k % c]);
        for ((o, &g), &v) in o.iter_mut().zip(g).zip(v) {
            *o = g * pk + (v * qk + rk);
        }
    };
    if parallel(x.len()) {
        out.par_chunks_mut(s)
            .zip(dy.par_chunks(s))
            .zip(x.par_chunks(s))
            .enumerate()
            .for_each(|(k, ((o, g), v))| f(k, o, g, v));
    } else {
        out.chunks_mut(s).zip(dy.chunks(s)).zip(x.chunks(s)).enumerate().for_each(|(k, ((o, g), v))| f(k, o, g, v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Naive reference statistics in f64.
    fn naive_stats(x: &[f64], n: usize, c: usize, s: usize) -> (Vec<f64>, Vec<f64>) {
        let m = (n * s) as f64;
        let mut mean = vec![0.0; c];
        let mut var = vec![0.0; c];
        for ch in 0..c {
            let vals: Vec<f64> =
                (0..n).flat_map(|i| (0..s).map(move |j| (i, j))).map(|(i, j)| x[(i * c + ch) * s + j]).collect();
            mean[ch] = vals.iter().sum::<f64>() / m;
            var[ch] = vals.iter().map(|v| (v - mean[ch]) * (v - mean[ch])).sum::<f64>() / m;
        }
        (mean, var)
    }

    fn data(len: usize, seed: u64) -> Vec<f64> {
        let mut st = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                st = st.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((st >> 33) as f64 / (1u64 << 31) as f64) * 4.0 - 1.0
            })
            .collect()
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    const SHAPES: [(usize, usize, usize); 9] =
        [(1, 1, 2), (2, 1, 1), (1, 3, 7), (3, 5, 1), (2, 3, 13), (4, 2, 9), (5, 7, 31), (64, 4, 200), (3, 1, 17)];

    #[test]
    fn stats_match_naive_f64_and_f32() {
        for &(n, c, s) in &SHAPES {
            let x = data(n * c * s, (n * 100 + c * 10 + s) as u64);
            let (em, ev) = naive_stats(&x, n, c, s);
            let (mut m, mut v) = (vec![0.0; c], vec![0.0; c]);
            batch_norm_stats(&x, n, c, s, &mut m, &mut v);
            for ch in 0..c {
                assert!(close(m[ch], em[ch], 1e-12) && close(v[ch], ev[ch], 1e-12), "{n}x{c}x{s} ch {ch}");
            }
            let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let (mut mf, mut vf) = (vec![0.0f32; c], vec![0.0f32; c]);
            batch_norm_stats(&xf, n, c, s, &mut mf, &mut vf);
            for ch in 0..c {
                assert!(close(mf[ch] as f64, em[ch], 1e-5) && close(vf[ch] as f64, ev[ch], 1e-5), "f32 {n}x{c}x{s}");
            }
        }
    }

    #[test]
    fn empty_and_nan() {
        // Zero channels and zero-length planes: nothing to do / NaN statistics (0/0).
        let (mut m, mut v) = (vec![0.0f64; 0], vec![0.0f64; 0]);
        batch_norm_stats(&[], 2, 0, 3, &mut m, &mut v);
        let (mut m, mut v) = (vec![0.0f64; 2], vec![0.0f64; 2]);
        batch_norm_stats(&[], 0, 2, 3, &mut m, &mut v);
        assert!(m[0].is_nan() && v[1].is_nan());
        let mut out: Vec<f64> = vec![];
        channel_affine(&[], &[1.0], &[0.0], 3, 1, 0, &mut out);
        // A NaN poisons its own channel only.
        let mut x = data(2 * 3 * 5, 9);
        x[3 * 5 + 5 + 2] = f64::NAN; // n = 1, c = 1
        let (mut m, mut v) = (vec![0.0; 3], vec![0.0; 3]);
        batch_norm_stats(&x, 2, 3, 5, &mut m, &mut v);
        assert!(m[1].is_nan() && v[1].is_nan());
        assert!(!m[0].is_nan() && !v[2].is_nan());
    }

    #[test]
    fn backward_sums_and_affine_match_naive() {
        for &(n, c, s) in &SHAPES {
            let len = n * c * s;
            let x = data(len, 3 + len as u64);
            let dy = data(len, 7 + len as u64);
            let (mean, _) = naive_stats(&x, n, c, s);
            let (mut sd, mut sdx) = (vec![0.0; c], vec![0.0; c]);
            batch_norm_backward_sums(&dy, &x, &mean, n, c, s, &mut sd, &mut sdx);
            let a: Vec<f64> = (0..c).map(|k| 0.5 + k as f64).collect();
            let b: Vec<f64> = (0..c).map(|k| -1.0 + 0.25 * k as f64).collect();
            let r: Vec<f64> = (0..c).map(|k| 2.0 - k as f64).collect();
            let mut y = vec![0.0; len];
            channel_affine(&x, &a, &b, n, c, s, &mut y);
            let mut y2 = vec![0.0; len];
            channel_affine2(&dy, &x, &a, &b, &r, n, c, s, &mut y2);
            for ch in 0..c {
                let (mut e1, mut e2) = (0.0, 0.0);
                for i in 0..n {
                    for j in 0..s {
                        let k = (i * c + ch) * s + j;
                        e1 += dy[k];
                        e2 += dy[k] * (x[k] - mean[ch]);
                        assert!(close(y[k], x[k] * a[ch] + b[ch], 1e-14));
                        assert!(close(y2[k], dy[k] * a[ch] + x[k] * b[ch] + r[ch], 1e-14));
                    }
                }
                assert!(close(sd[ch], e1, 1e-12) && close(sdx[ch], e2, 1e-12), "{n}x{c}x{s} ch {ch}");
            }
        }
    }

    #[test]
    fn parallel_matches_serial() {
        // Above the threshold the channel/plane loops run on rayon; the sums keep their order.
        let (n, c, s) = (16, 3, 1000);
        let x: Vec<f32> = data(n * c * s, 1).into_iter().map(|v| v as f32).collect();
        let (mut m1, mut v1) = (vec![0.0f32; c], vec![0.0f32; c]);
        batch_norm_stats(&x, n, c, s, &mut m1, &mut v1);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let (mut m2, mut v2) = (vec![0.0f32; c], vec![0.0f32; c]);
        pool.install(|| batch_norm_stats(&x, n, c, s, &mut m2, &mut v2));
        assert_eq!((m1, v1), (m2, v2));
    }

    #[test]
    #[should_panic(expected = "batch_norm_stats")]
    fn length_mismatch_panics() {
        let (mut m, mut v) = (vec![0.0f32; 2], vec![0.0f32; 2]);
        batch_norm_stats(&[0.0f32; 5], 1, 2, 3, &mut m, &mut v);
    }
}
