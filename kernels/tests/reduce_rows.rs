//! Reductions and row kernels against naive f64 references, NaN semantics, and thread bit-identity.

#![allow(clippy::needless_range_loop)] // the naive references index like the math

mod common;

use common::*;
use tensorgrad_kernels::{reduce, rows};

#[test]
fn sum_matches_naive_at_all_sizes() {
    let mut rng = Rng::new(11);
    for &n in SIZES.iter().chain(&[16384, 16385, 100_003]) {
        let x = rng.vec_f32(n, -1.0, 1.0);
        let want: f64 = x.iter().map(|&v| v as f64).sum();
        let got = reduce::sum(&x) as f64;
        assert!((got - want).abs() <= 1e-6 * (n as f64).sqrt().max(1.0), "n={n}: {got} vs {want}");
        let x64 = to64(&x);
        assert!((reduce::sum(&x64) - want).abs() <= 1e-12 * n.max(1) as f64, "f64 n={n}");
    }
    assert_eq!(reduce::sum::<f32>(&[]), 0.0);
    assert!(reduce::sum(&[1.0f32, f32::NAN, 2.0]).is_nan());
    assert_eq!(reduce::sum(&[1.0f32, f32::INFINITY]), f32::INFINITY);
}

#[test]
fn sum_axis_matches_naive() {
    let mut rng = Rng::new(12);
    for &(outer, len, inner) in
        &[(1, 1, 1), (3, 7, 1), (2, 13, 5), (1, 9, 17), (4, 0, 3), (5, 31, 8), (1, 1000, 1), (7, 3, 130)]
    {
        let x = rng.vec_f64(outer * len * inner, -1.0, 1.0);
        let mut out = vec![f64::NAN; outer * inner];
        reduce::sum_axis(&x, outer, len, inner, &mut out);
        let mut want = vec![0.0; outer * inner];
        for o in 0..outer {
            for l in 0..len {
                for i in 0..inner {
                    want[o * inner + i] += x[(o * len + l) * inner + i];
                }
            }
        }
        assert_close(&format!("sum_axis {outer}x{len}x{inner}"), &out, &want, 1e-12);
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let mut o32 = vec![f32::NAN; outer * inner];
        reduce::sum_axis(&x32, outer, len, inner, &mut o32);
        assert_close("sum_axis f32", &to64(&o32), &want, 1e-5);
    }
}

#[test]
fn max_min_axis_first_index_on_ties_and_nan_wins() {
    // [outer=1, len=5, inner=3]
    let nan = f64::NAN;
    #[rustfmt::skip]
    let x = [
        1.0, 5.0, 0.0,
        3.0, 5.0, nan,
        3.0, 2.0, 9.0,
        0.0, 7.0, nan,
        -1.0, 7.0, 1.0,
    ];
    let (mut v, mut i) = ([0.0; 3], [0usize; 3]);
    reduce::max_axis(&x, 1, 5, 3, &mut v, &mut i);
    assert_eq!((v[0], i[0]), (3.0, 1));
    assert_eq!((v[1], i[1]), (7.0, 3));
    assert!(v[2].is_nan() && i[2] == 1);
    reduce::min_axis(&x, 1, 5, 3, &mut v, &mut i);
    assert_eq!((v[0], i[0]), (-1.0, 4));
    assert_eq!((v[1], i[1]), (2.0, 2));
    assert!(v[2].is_nan() && i[2] == 1);
    assert_eq!(reduce::argmax(&[1.0f32, 3.0, 3.0]), Some((3.0, 1)));
    assert_eq!(reduce::argmin(&[1.0f32, 0.0, 0.0]), Some((0.0, 1)));
    assert_eq!(reduce::argmax::<f32>(&[]), None);
    assert_eq!(reduce::sum_strided(&[1.0f64, 2.0, 3.0, 4.0, 5.0], 1, 2, 2), 6.0);
}

#[test]
fn max_axis_matches_naive_random() {
    let mut rng = Rng::new(13);
    for &(outer, len, inner) in &[(3, 7, 1), (2, 13, 5), (1, 1, 4), (6, 33, 9)] {
        let x: Vec<f32> = (0..outer * len * inner).map(|_| rng.below(5) as f32).collect(); // many ties
        let mut v = vec![0.0f32; outer * inner];
        let mut ix = vec![0usize; outer * inner];
        reduce::max_axis(&x, outer, len, inner, &mut v, &mut ix);
        for o in 0..outer {
            for i in 0..inner {
                let col: Vec<f32> = (0..len).map(|l| x[(o * len + l) * inner + i]).collect();
                let m = col.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let first = col.iter().position(|&c| c == m).unwrap();
                assert_eq!((v[o * inner + i], ix[o * inner + i]), (m, first));
            }
        }
    }
}

fn softmax_naive(x: &[f64], cols: usize) -> Vec<f64> {
    let mut out = Vec::new();
    for r in x.chunks(cols) {
        let m = r.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = r.iter().map(|&v| (v - m).exp()).sum();
        out.extend(r.iter().map(|&v| (v - m).exp() / s));
    }
    out
}

#[test]
fn softmax_and_log_softmax_match_naive() {
    let mut rng = Rng::new(14);
    for &cols in &[1usize, 2, 7, 8, 9, 31, 128, 1000] {
        for &rows_n in &[0usize, 1, 3, 17] {
            let x = rng.vec_f64(rows_n * cols, -20.0, 20.0);
            let want = softmax_naive(&x, cols);
            let mut y = vec![0.0; x.len()];
            rows::softmax_rows(&x, &mut y, cols);
            assert_close("softmax f64", &y, &want, 1e-14);
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let want32 = softmax_naive(&to64(&x32), cols);
            let mut y32 = vec![0.0f32; x.len()];
            rows::softmax_rows(&x32, &mut y32, cols);
            assert_close("softmax f32", &to64(&y32), &want32, 1e-6);
            let wantl: Vec<f64> = want32.iter().map(|v| v.ln()).collect();
            rows::log_softmax_rows(&x32, &mut y32, cols);
            assert_close("log_softmax f32", &to64(&y32), &wantl, 2e-6);
        }
    }
    // A row with a NaN is all NaN; huge logits do not overflow.
    let mut y = [0.0f32; 4];
    rows::softmax_rows(&[1.0, f32::NAN, 0.0, 2.0], &mut y, 4);
    assert!(y.iter().all(|v| v.is_nan()));
    rows::softmax_rows(&[1000.0, 1000.0, -1000.0, 0.0], &mut y, 4);
    assert_eq!(y, [0.5, 0.5, 0.0, 0.0]);
}

#[test]
fn softmax_backwards_match_finite_differences() {
    let mut rng = Rng::new(15);
    let (rows_n, cols) = (3, 11);
    let x = rng.vec_f64(rows_n * cols, -2.0, 2.0);
    let dy = rng.vec_f64(rows_n * cols, -1.0, 1.0);
    for log in [false, true] {
        let f = |x: &[f64]| {
            let mut y = vec![0.0; x.len()];
            if log {
                rows::log_softmax_rows(x, &mut y, cols)
            } else {
                rows::softmax_rows(x, &mut y, cols)
            }
            y
        };
        let y = f(&x);
        let mut dx = vec![0.0; x.len()];
        if log {
            rows::log_softmax_rows_backward(&y, &dy, &mut dx, cols);
        } else {
            rows::softmax_rows_backward(&y, &dy, &mut dx, cols);
        }
        let h = 1e-6;
        for i in 0..x.len() {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[i] += h;
            xm[i] -= h;
            let (yp, ym) = (f(&xp), f(&xm));
            let num: f64 = (0..x.len()).map(|j| dy[j] * (yp[j] - ym[j]) / (2.0 * h)).sum();
            assert!((dx[i] - num).abs() < 1e-7, "log={log} i={i}: {} vs {num}", dx[i]);
        }
    }
}

#[allow(clippy::type_complexity)]
fn ln_naive(x: &[f64], g: Option<&[f64]>, b: Option<&[f64]>, eps: f64, cols: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mut y, mut mu, mut rs) = (Vec::new(), Vec::new(), Vec::new());
    for r in x.chunks(cols) {
        let m = r.iter().sum::<f64>() / cols as f64;
        let v = r.iter().map(|&t| (t - m) * (t - m)).sum::<f64>() / cols as f64;
        let s = 1.0 / (v + eps).sqrt();
        for (j, &t) in r.iter().enumerate() {
            y.push((t - m) * s * g.map_or(1.0, |g| g[j]) + b.map_or(0.0, |b| b[j]));
        }
        mu.push(m);
        rs.push(s);
    }
    (y, mu, rs)
}

#[test]
fn layer_norm_forward_and_backward() {
    let mut rng = Rng::new(16);
    for &cols in &[1usize, 5, 8, 33, 256] {
        let rows_n = 4;
        let x = rng.vec_f64(rows_n * cols, -3.0, 3.0);
        let gamma = rng.vec_f64(cols, 0.5, 1.5);
        let beta = rng.vec_f64(cols, -0.5, 0.5);
        let eps = 1e-5;
        for affine in [false, true] {
            let (g, b) = if affine { (Some(&gamma[..]), Some(&beta[..])) } else { (None, None) };
            let (want, wm, wr) = ln_naive(&x, g, b, eps, cols);
            let (mut y, mut mu, mut rs) = (vec![0.0; x.len()], vec![0.0; rows_n], vec![0.0; rows_n]);
            rows::layer_norm_rows_forward(&x, g, b, eps, cols, &mut y, &mut mu, &mut rs);
            assert_close("ln y", &y, &want, 1e-12);
            assert_close("ln mean", &mu, &wm, 1e-12);
            assert_close("ln rstd", &rs, &wr, 1e-10);
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let g32: Vec<f32> = gamma.iter().map(|&v| v as f32).collect();
            let b32: Vec<f32> = beta.iter().map(|&v| v as f32).collect();
            let (mut y32, mut m32, mut r32) = (vec![0.0f32; x.len()], vec![0.0f32; rows_n], vec![0.0f32; rows_n]);
            let (g3, b3) = if affine { (Some(&g32[..]), Some(&b32[..])) } else { (None, None) };
            rows::layer_norm_rows_forward(&x32, g3, b3, 1e-5f32, cols, &mut y32, &mut m32, &mut r32);
            assert_close("ln y f32", &to64(&y32), &want, 1e-4);

            // Backward vs finite differences of L = Σ dy·y.
            let dy = rng.vec_f64(x.len(), -1.0, 1.0);
            let mut dx = vec![0.0; x.len()];
            let mut dg = vec![0.5; cols]; // accumulates onto 0.5
            let mut db = vec![0.5; cols];
            rows::layer_norm_rows_backward(&dy, &x, &mu, &rs, g, cols, &mut dx, Some(&mut dg), Some(&mut db));
            let loss = |x: &[f64], g: Option<&[f64]>, b: Option<&[f64]>| -> f64 {
                ln_naive(x, g, b, eps, cols).0.iter().zip(&dy).map(|(a, b)| a * b).sum()
            };
            let h = 1e-6;
            for i in 0..x.len() {
                let (mut xp, mut xm) = (x.clone(), x.clone());
                xp[i] += h;
                xm[i] -= h;
                let num = (loss(&xp, g, b) - loss(&xm, g, b)) / (2.0 * h);
                assert!((dx[i] - num).abs() < 1e-6 * num.abs().max(1.0), "dx[{i}] {} vs {num}", dx[i]);
            }
            for j in 0..cols {
                let (mut gp, mut gm) = (gamma.clone(), gamma.clone());
                gp[j] += h;
                gm[j] -= h;
                let num = (loss(&x, Some(&gp), Some(&beta)) - loss(&x, Some(&gm), Some(&beta))) / (2.0 * h);
                assert!((dg[j] - 0.5 - num).abs() < 1e-6, "dgamma[{j}]");
                let dbj: f64 = (0..rows_n).map(|r| dy[r * cols + j]).sum();
                assert!((db[j] - 0.5 - dbj).abs() < 1e-12, "dbeta[{j}]");
            }
        }
    }
}

#[test]
fn cross_entropy_forward_backward() {
    let mut rng = Rng::new(17);
    let (rows_n, cols) = (5, 13);
    let x = rng.vec_f64(rows_n * cols, -4.0, 4.0);
    let t: Vec<usize> = (0..rows_n).map(|_| rng.below(cols)).collect();
    let (ones, mut lse) = (vec![1.0; rows_n], vec![0.0; rows_n]);
    let terms = unweighted(&t, &ones);
    let mut loss = vec![0.0; rows_n];
    rows::cross_entropy_rows_weighted_forward(&x, cols, &terms, &mut loss, &mut lse);
    let sm = softmax_naive(&x, cols);
    for r in 0..rows_n {
        assert!((loss[r] + sm[r * cols + t[r]].ln()).abs() < 1e-12);
    }
    let dl = rng.vec_f64(rows_n, 0.1, 1.0);
    let mut dx = vec![0.0; x.len()];
    rows::cross_entropy_rows_weighted_backward(&x, cols, &terms, &lse, &dl, &mut dx);
    for r in 0..rows_n {
        for j in 0..cols {
            let want = dl[r] * (sm[r * cols + j] - if j == t[r] { 1.0 } else { 0.0 });
            assert!((dx[r * cols + j] - want).abs() < 1e-14);
        }
    }
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let (ones32, mut lse32) = (vec![1.0f32; rows_n], vec![0.0f32; rows_n]);
    let mut l32 = vec![0.0f32; rows_n];
    rows::cross_entropy_rows_weighted_forward(&x32, cols, &unweighted(&t, &ones32), &mut l32, &mut lse32);
    assert_close("ce f32", &to64(&l32), &loss, 1e-5);
}

#[test]
#[should_panic(expected = "out of range")]
fn cross_entropy_rejects_bad_target() {
    let (mut l, mut lse) = ([0.0f32; 1], [0.0f32; 1]);
    rows::cross_entropy_rows_weighted_forward(&[0.0f32; 3], 3, &unweighted(&[3], &[1.0]), &mut l, &mut lse);
}

/// Plain cross-entropy terms: every row kept with weight 1, no class weights, no smoothing.
fn unweighted<'a, T: Copy + Default>(targets: &'a [usize], ones: &'a [T]) -> rows::CrossEntropyTerms<'a, T> {
    rows::CrossEntropyTerms { targets, row_weight: ones, keep: ones, class_weight: None, smoothing: T::default() }
}

#[test]
fn reductions_and_rows_bit_identical_for_one_and_two_threads() {
    let mut rng = Rng::new(18);
    let n = 1 << 20;
    let x = rng.vec_f32(n, -3.0, 3.0);
    let run = || {
        let mut out: Vec<Vec<u32>> = vec![vec![reduce::sum(&x).to_bits()]];
        let mut s = vec![0.0f32; 1024];
        reduce::sum_axis(&x, 1, 1024, 1024, &mut s);
        out.push(bits32(&s));
        let mut s = vec![0.0f32; 16 * 512];
        reduce::sum_axis(&x, 16, 128, 512, &mut s);
        out.push(bits32(&s));
        let mut y = vec![0.0f32; n];
        rows::softmax_rows(&x, &mut y, 512);
        out.push(bits32(&y));
        let rows_n = n / 512;
        let (mut mu, mut rs) = (vec![0.0f32; rows_n], vec![0.0f32; rows_n]);
        rows::layer_norm_rows_forward(&x, None, None, 1e-5, 512, &mut y, &mut mu, &mut rs);
        out.push(bits32(&y));
        let mut dx = vec![0.0f32; n];
        let mut dg = vec![0.0f32; 512];
        rows::layer_norm_rows_backward(&x, &x, &mu, &rs, None, 512, &mut dx, Some(&mut dg), None);
        out.push(bits32(&dx));
        out.push(bits32(&dg));
        out
    };
    assert!(with_threads(1, run) == with_threads(2, run));
}
