//! The weighted, label-smoothed cross-entropy row kernels against their naive f64 reference (f64 and
//! f32, with and without class weights, smoothing and ignored rows), and thread bit-identity.

mod common;

use common::*;
use tensorgrad_kernels::rows::{self, CrossEntropyTerms};

struct Case {
    x: Vec<f64>,
    targets: Vec<usize>,
    row_weight: Vec<f64>,
    keep: Vec<f64>,
    class_weight: Option<Vec<f64>>,
    dloss: Vec<f64>,
}

fn case(rng: &mut Rng, rows_n: usize, cols: usize, weighted: bool) -> Case {
    let x = rng.vec_f64(rows_n * cols, -6.0, 6.0);
    let targets: Vec<usize> = (0..rows_n).map(|_| rng.below(cols)).collect();
    let class_weight = weighted.then(|| rng.vec_f64(cols, 0.2, 2.0));
    // Every third row is ignored: weight and keep 0.
    let keep: Vec<f64> = (0..rows_n).map(|r| if r % 3 == 2 { 0.0 } else { 1.0 }).collect();
    let row_weight = (0..rows_n).map(|r| keep[r] * class_weight.as_ref().map_or(1.0, |w| w[targets[r]])).collect();
    let dloss = rng.vec_f64(rows_n, 0.1, 1.0);
    Case { x, targets, row_weight, keep, class_weight, dloss }
}

fn terms<'a, T: Copy>(c: &'a Case, rw: &'a [T], keep: &'a [T], wc: Option<&'a [T]>, e: T) -> CrossEntropyTerms<'a, T> {
    CrossEntropyTerms { targets: &c.targets, row_weight: rw, keep, class_weight: wc, smoothing: e }
}

#[test]
fn weighted_cross_entropy_matches_reference() {
    let mut rng = Rng::new(29);
    for &(rows_n, cols) in &[(1, 1), (7, 13), (9, 65), (4, 8), (600, 65)] {
        for weighted in [false, true] {
            for smoothing in [0.0, 0.1] {
                let c = case(&mut rng, rows_n, cols, weighted);
                let what = format!("rows={rows_n} cols={cols} weighted={weighted} e={smoothing}");
                let t64 = terms(&c, &c.row_weight, &c.keep, c.class_weight.as_deref(), smoothing);
                let (want_loss, want_dx) = rows::cross_entropy_rows_weighted_reference(&c.x, cols, &t64, &c.dloss);
                let (mut loss, mut lse, mut dx) = (vec![0.0; rows_n], vec![0.0; rows_n], vec![0.0; c.x.len()]);
                rows::cross_entropy_rows_weighted_forward(&c.x, cols, &t64, &mut loss, &mut lse);
                rows::cross_entropy_rows_weighted_backward(&c.x, cols, &t64, &lse, &c.dloss, &mut dx);
                assert_close(&format!("loss f64 {what}"), &loss, &want_loss, 1e-12);
                assert_close(&format!("dx f64 {what}"), &dx, &want_dx, 1e-12);
                let f = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
                let (x32, rw, kp, dl) = (f(&c.x), f(&c.row_weight), f(&c.keep), f(&c.dloss));
                let wc = c.class_weight.as_deref().map(f);
                let t32 = terms(&c, &rw, &kp, wc.as_deref(), smoothing as f32);
                let (mut l32, mut s32, mut d32) = (vec![0f32; rows_n], vec![0f32; rows_n], vec![0f32; c.x.len()]);
                rows::cross_entropy_rows_weighted_forward(&x32, cols, &t32, &mut l32, &mut s32);
                rows::cross_entropy_rows_weighted_backward(&x32, cols, &t32, &s32, &dl, &mut d32);
                assert_close(&format!("loss f32 {what}"), &to64(&l32), &want_loss, 1e-5);
                assert_close(&format!("dx f32 {what}"), &to64(&d32), &want_dx, 1e-5);
                // Ignored rows: zero loss and gradient.
                for r in (2..rows_n).step_by(3) {
                    assert_eq!(loss[r], 0.0, "{what}");
                    assert!(dx[r * cols..(r + 1) * cols].iter().all(|&v| v == 0.0), "{what}");
                }
            }
        }
    }
}

#[test]
fn weighted_cross_entropy_is_thread_count_independent() {
    let mut rng = Rng::new(31);
    let c = case(&mut rng, 1000, 65, true);
    let f = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
    let (x, rw, kp, dl) = (f(&c.x), f(&c.row_weight), f(&c.keep), f(&c.dloss));
    let wc = c.class_weight.as_deref().map(f);
    let t = terms(&c, &rw, &kp, wc.as_deref(), 0.2f32);
    let run = |threads: usize| {
        with_threads(threads, || {
            let (mut l, mut s, mut d) = (vec![0f32; 1000], vec![0f32; 1000], vec![0f32; x.len()]);
            rows::cross_entropy_rows_weighted_forward(&x, 65, &t, &mut l, &mut s);
            rows::cross_entropy_rows_weighted_backward(&x, 65, &t, &s, &dl, &mut d);
            (l, d)
        })
    };
    assert_eq!(run(1), run(2));
}

#[test]
#[should_panic(expected = "out of range")]
fn weighted_cross_entropy_rejects_bad_target() {
    let t =
        CrossEntropyTerms { targets: &[3], row_weight: &[1.0f32], keep: &[1.0], class_weight: None, smoothing: 0.0 };
    rows::cross_entropy_rows_weighted_forward(&[0.0f32; 3], 3, &t, &mut [0.0], &mut [0.0]);
}
