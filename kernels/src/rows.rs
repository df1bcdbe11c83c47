//! Row kernels on a contiguous `[rows, cols]` matrix: softmax, log-softmax, layer norm, cross-entropy.
//!
//! # Math (per row `x` of length `C`)
//! - softmax:      `m = max x`, `e = exp(x - m)`, `y = e / Σe`.
//!   backward:     `dx = y ⊙ (dy - Σ(dy ⊙ y))`.
//! - log-softmax:  `y = x - m - ln Σ exp(x - m)`.
//!   backward:     `dx = dy - exp(y)·Σ dy`.
//! - layer norm:   `μ = Σx/C`, `σ² = Σ(x-μ)²/C` (biased, two-pass), `rstd = 1/√(σ² + eps)`,
//!   `x̂ = (x-μ)·rstd`, `y = x̂·γ + β`.
//!   backward:     `g = dy·γ`, `dx = rstd·(g - mean(g) - x̂·mean(g·x̂))`, `dγ += Σ_rows dy·x̂`, `dβ += Σ_rows dy`.
//! - cross-entropy from logits, target `t`: `loss = logsumexp(x) - x_t`; `dx = dloss·(softmax(x) - onehot(t))`;
//!   with class weights, label smoothing and ignored rows as in [`CrossEntropyTerms`].
//!
//! A row is always processed by one thread in a fixed order, so results are identical for any thread count.
//! f32 softmax/log-softmax use the vectorized `exp` of `elementwise::math` (≤ 1 ulp).

use rayon::prelude::*;
use wide::f32x8;

use crate::elementwise::math::exp8;
use crate::elementwise::{check_len, Float};

/// `rows·cols` above which the row kernels use the rayon pool.
pub const ROWS_PAR_THRESHOLD: usize = 1 << 15;

/// `out = exp(x - m)` (when given) and returns `Σ exp(x - m)` (8 lanes, fixed order).
pub(crate) fn exp_sub_sum_f32(x: &[f32], m: f32, mut out: Option<&mut [f32]>) -> f32 {
    let vm = f32x8::splat(m);
    let mut acc = [f32x8::ZERO; 2];
    let n8 = x.len() / 8 * 8;
    let mut i = 0;
    while i < n8 {
        let v = f32x8::from(<[f32; 8]>::try_from(&x[i..i + 8]).expect("8 lanes"));
        let e = exp8(v - vm);
        acc[(i / 8) & 1] += e;
        if let Some(o) = out.as_deref_mut() {
            o[i..i + 8].copy_from_slice(e.as_array());
        }
        i += 8;
    }
    let mut s = (acc[0] + acc[1]).reduce_add();
    if n8 < x.len() {
        let n = x.len() - n8;
        let mut buf = [f32::NEG_INFINITY; 8];
        buf[..n].copy_from_slice(&x[n8..]);
        let e = exp8(f32x8::from(buf) - vm);
        let ea = e.to_array();
        for &t in &ea[..n] {
            s += t;
        }
        if let Some(o) = out {
            o[n8..].copy_from_slice(&ea[..n]);
        }
    }
    s
}

#[track_caller]
fn check_rows(kernel: &str, what: &str, got: usize, len: usize, cols: usize) {
    if cols == 0 {
        check_len(kernel, what, got, 0);
    } else if !len.is_multiple_of(cols) {
        panic!("{kernel}: input length {len} is not a multiple of cols = {cols}");
    } else {
        check_len(kernel, what, got, len);
    }
}

/// Runs `f(row_in, row_out)` over rows, in parallel for large inputs.
fn for_rows<T: Float>(x: &[T], out: &mut [T], cols: usize, f: impl Fn(&[T], &mut [T]) + Sync) {
    for_rows_indexed(x, cols, out, cols, |_, r, o| f(r, o));
}

/// Row-wise softmax of a contiguous `[rows, cols]` matrix. A row containing NaN (or `+inf`) gives NaN.
///
/// # Panics
/// If `x.len()` is not a multiple of `cols` or `out.len() != x.len()`.
#[track_caller]
pub fn softmax_rows<T: Float>(x: &[T], out: &mut [T], cols: usize) {
    crate::cpu::warn_if_simd_unused();
    check_rows("softmax_rows", "out", out.len(), x.len(), cols);
    for_rows(x, out, cols, |r, o| {
        let m = T::max_slice_fast(r);
        let s = T::exp_sub_sum(r, m, o);
        let inv = T::ONE / s;
        for v in o.iter_mut() {
            *v *= inv;
        }
    });
}

/// Row-wise log-softmax `x - m - ln Σ exp(x - m)`.
///
/// # Panics
/// If `x.len()` is not a multiple of `cols` or `out.len() != x.len()`.
#[track_caller]
pub fn log_softmax_rows<T: Float>(x: &[T], out: &mut [T], cols: usize) {
    crate::cpu::warn_if_simd_unused();
    check_rows("log_softmax_rows", "out", out.len(), x.len(), cols);
    for_rows(x, out, cols, |r, o| {
        let m = T::max_slice_fast(r);
        let lse = m + T::exp_sub_sum_nostore(r, m).ln();
        for (v, &xi) in o.iter_mut().zip(r) {
            *v = xi - lse;
        }
    });
}

fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::ZERO; 4];
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for k in 0..4 {
            acc[k] = x[k].mul_add(y[k], acc[k]);
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (&x, &y) in ca.remainder().iter().zip(cb.remainder()) {
        s = x.mul_add(y, s);
    }
    s
}

/// Backward of [`softmax_rows`]: `dx = y ⊙ (dy - Σ(dy ⊙ y))` per row.
///
/// # Panics
/// On a length mismatch.
#[track_caller]
pub fn softmax_rows_backward<T: Float>(y: &[T], dy: &[T], dx: &mut [T], cols: usize) {
    check_rows("softmax_rows_backward", "dy", dy.len(), y.len(), cols);
    check_rows("softmax_rows_backward", "dx", dx.len(), y.len(), cols);
    rows3(y, dy, dx, cols, |yr, gr, o| {
        let s = dot(yr, gr);
        for ((d, &yi), &gi) in o.iter_mut().zip(yr).zip(gr) {
            *d = yi * (gi - s);
        }
    });
}

/// Backward of [`log_softmax_rows`]: `dx = dy - exp(y)·Σ dy` per row.
///
/// # Panics
/// On a length mismatch.
#[track_caller]
pub fn log_softmax_rows_backward<T: Float>(y: &[T], dy: &[T], dx: &mut [T], cols: usize) {
    check_rows("log_softmax_rows_backward", "dy", dy.len(), y.len(), cols);
    check_rows("log_softmax_rows_backward", "dx", dx.len(), y.len(), cols);
    rows3(y, dy, dx, cols, |yr, gr, o| {
        let s = T::sum_slice(gr);
        for ((d, &yi), &gi) in o.iter_mut().zip(yr).zip(gr) {
            *d = gi - yi.exp() * s;
        }
    });
}

fn rows3<T: Float>(a: &[T], b: &[T], out: &mut [T], cols: usize, f: impl Fn(&[T], &[T], &mut [T]) + Sync) {
    if cols == 0 {
        return;
    }
    if a.len() >= ROWS_PAR_THRESHOLD && rayon::current_num_threads() > 1 {
        out.par_chunks_mut(cols).zip(a.par_chunks(cols)).zip(b.par_chunks(cols)).for_each(|((o, x), y)| f(x, y, o));
    } else {
        out.chunks_mut(cols).zip(a.chunks(cols)).zip(b.chunks(cols)).for_each(|((o, x), y)| f(x, y, o));
    }
}

/// Layer norm over the last axis of a contiguous `[rows, cols]` matrix (PyTorch `F.layer_norm` over one
/// trailing dim): writes `y`, and the per-row `mean` and `rstd = 1/√(var + eps)` saved for the backward.
///
/// # Shapes
/// `x, y: [rows, cols]`, `gamma, beta: [cols]` (optional), `mean, rstd: [rows]`.
///
/// # Panics
/// On a length mismatch.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn layer_norm_rows_forward<T: Float>(
    x: &[T],
    gamma: Option<&[T]>,
    beta: Option<&[T]>,
    eps: T,
    cols: usize,
    y: &mut [T],
    mean: &mut [T],
    rstd: &mut [T],
) {
    check_rows("layer_norm_rows_forward", "y", y.len(), x.len(), cols);
    let rows = x.len().checked_div(cols).unwrap_or(0);
    check_len("layer_norm_rows_forward", "mean", mean.len(), rows);
    check_len("layer_norm_rows_forward", "rstd", rstd.len(), rows);
    if let Some(g) = gamma {
        check_len("layer_norm_rows_forward", "gamma", g.len(), cols);
    }
    if let Some(b) = beta {
        check_len("layer_norm_rows_forward", "beta", b.len(), cols);
    }
    if cols == 0 {
        return;
    }
    let n = T::from_usize(cols);
    let row = |xr: &[T], yr: &mut [T], mu: &mut T, rs: &mut T| {
        let m = T::sum_slice(xr) / n;
        let mut acc = [T::ZERO; 4];
        let mut c = xr.chunks_exact(4);
        for ch in &mut c {
            for k in 0..4 {
                let d = ch[k] - m;
                acc[k] = d.mul_add(d, acc[k]);
            }
        }
        let mut ss = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        for &v in c.remainder() {
            let d = v - m;
            ss = d.mul_add(d, ss);
        }
        let r = T::ONE / (ss / n + eps).sqrt();
        *mu = m;
        *rs = r;
        for (j, (o, &v)) in yr.iter_mut().zip(xr).enumerate() {
            let mut t = (v - m) * r;
            if let Some(g) = gamma {
                t *= g[j];
            }
            if let Some(b) = beta {
                t += b[j];
            }
            *o = t;
        }
    };
    if x.len() >= ROWS_PAR_THRESHOLD && rayon::current_num_threads() > 1 {
        y.par_chunks_mut(cols)
            .zip(x.par_chunks(cols))
            .zip(mean.par_iter_mut().zip(rstd.par_iter_mut()))
            .for_each(|((yr, xr), (mu, rs))| row(xr, yr, mu, rs));
    } else {
        for ((yr, xr), (mu, rs)) in y.chunks_mut(cols).zip(x.chunks(cols)).zip(mean.iter_mut().zip(rstd.iter_mut())) {
            row(xr, yr, mu, rs);
        }
    }
}

/// Backward of [`layer_norm_rows_forward`]: writes `dx`; **accumulates** (`+=`) into `dgamma` / `dbeta`
/// when given (summed over rows in row order, so it is deterministic).
///
/// # Shapes
/// `dy, x, dx: [rows, cols]`, `mean, rstd: [rows]`, `gamma, dgamma, dbeta: [cols]`.
///
/// # Panics
/// On a length mismatch.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn layer_norm_rows_backward<T: Float>(
    dy: &[T],
    x: &[T],
    mean: &[T],
    rstd: &[T],
    gamma: Option<&[T]>,
    cols: usize,
    dx: &mut [T],
    dgamma: Option<&mut [T]>,
    dbeta: Option<&mut [T]>,
) {
    check_rows("layer_norm_rows_backward", "dy", dy.len(), x.len(), cols);
    check_rows("layer_norm_rows_backward", "dx", dx.len(), x.len(), cols);
    let rows = x.len().checked_div(cols).unwrap_or(0);
    check_len("layer_norm_rows_backward", "mean", mean.len(), rows);
    check_len("layer_norm_rows_backward", "rstd", rstd.len(), rows);
    if let Some(g) = gamma {
        check_len("layer_norm_rows_backward", "gamma", g.len(), cols);
    }
    if cols == 0 {
        return;
    }
    let n = T::from_usize(cols);
    let row = |r: usize, o: &mut [T]| {
        let xr = &x[r * cols..(r + 1) * cols];
        let gr = &dy[r * cols..(r + 1) * cols];
        let (m, rs) = (mean[r], rstd[r]);
        let (mut sg, mut sgx) = (T::ZERO, T::ZERO);
        for j in 0..cols {
            let g = match gamma {
                Some(ga) => gr[j] * ga[j],
                None => gr[j],
            };
            let xh = (xr[j] - m) * rs;
            sg += g;
            sgx = g.mul_add(xh, sgx);
        }
        let (mg, mgx) = (sg / n, sgx / n);
        for j in 0..cols {
            let g = match gamma {
                Some(ga) => gr[j] * ga[j],
                None => gr[j],
            };
            let xh = (xr[j] - m) * rs;
            o[j] = rs * (g - mg - xh * mgx);
        }
    };
    if x.len() >= ROWS_PAR_THRESHOLD && rayon::current_num_threads() > 1 {
        dx.par_chunks_mut(cols).enumerate().for_each(|(r, o)| row(r, o));
    } else {
        dx.chunks_mut(cols).enumerate().for_each(|(r, o)| row(r, o));
    }
    if let Some(dg) = dgamma {
        check_len("layer_norm_rows_backward", "dgamma", dg.len(), cols);
        // Columns are independent: split columns across threads, rows summed in order.
        let f = |(j, d): (usize, &mut T)| {
            let mut s = *d;
            for r in 0..rows {
                s += dy[r * cols + j] * ((x[r * cols + j] - mean[r]) * rstd[r]);
            }
            *d = s;
        };
        if x.len() >= ROWS_PAR_THRESHOLD && rayon::current_num_threads() > 1 {
            dg.par_iter_mut().enumerate().for_each(f);
        } else {
            dg.iter_mut().enumerate().for_each(f);
        }
    }
    if let Some(db) = dbeta {
        check_len("layer_norm_rows_backward", "dbeta", db.len(), cols);
        for r in 0..rows {
            for (d, &g) in db.iter_mut().zip(&dy[r * cols..(r + 1) * cols]) {
                *d += g;
            }
        }
    }
}

#[track_caller]
fn check_targets(kernel: &str, targets: &[usize], rows: usize, cols: usize) {
    check_len(kernel, "targets", targets.len(), rows);
    if let Some((r, &t)) = targets.iter().enumerate().find(|(_, &t)| t >= cols) {
        panic!("{kernel}: target {t} at row {r} is out of range for {cols} classes");
    }
}

/// The per-row terms of a class-weighted, label-smoothed cross-entropy (PyTorch's `cross_entropy` with
/// class-index targets): row `r` has target `targets[r]`, entry weight `row_weight[r]` (`w_y`: the
/// target's class weight, or 1; 0 for an ignored row), `keep[r]` (0 for an ignored row, else 1), class
/// weights `class_weight` (`wc`, all 1 when `None`) and smoothing `e`.
///
/// ```text
/// lse  = m + ln Σ_c exp(x_c - m),  m = max_c x_c (0 when not finite)
/// loss = (1 - e) w_y (lse - x_y) + (e / C) keep Σ_c wc_c (lse - x_c)      (second term only when e > 0)
/// dx_c = dloss (a p_c - (1 - e) w_y [c == y] - (e / C) keep wc_c),  p = exp(x - lse),  a = (1 - e) w_y + (e / C) keep Σ wc
/// ```
#[derive(Clone, Copy, Debug)]
pub struct CrossEntropyTerms<'a, T> {
    /// `[rows]`, each `< cols` (an ignored row carries any valid class and zero weights).
    pub targets: &'a [usize],
    /// `[rows]`: `w_y`.
    pub row_weight: &'a [T],
    /// `[rows]`: 0 or 1.
    pub keep: &'a [T],
    /// `[cols]`, or `None` for all ones.
    pub class_weight: Option<&'a [T]>,
    /// Label smoothing `e` in `[0, 1]`.
    pub smoothing: T,
}

impl<T: Float> CrossEntropyTerms<'_, T> {
    #[track_caller]
    fn check(&self, kernel: &str, rows: usize, cols: usize) {
        check_targets(kernel, self.targets, rows, cols);
        check_len(kernel, "row_weight", self.row_weight.len(), rows);
        check_len(kernel, "keep", self.keep.len(), rows);
        if let Some(w) = self.class_weight {
            check_len(kernel, "class_weight", w.len(), cols);
        }
    }
}

/// Runs `f(row, x_row, out_row)` over the rows of `x` (`cols` wide) and `out` (`width` per row), in
/// parallel for large inputs.
fn for_rows_indexed<T: Float>(
    x: &[T],
    cols: usize,
    out: &mut [T],
    width: usize,
    f: impl Fn(usize, &[T], &mut [T]) + Sync,
) {
    if cols == 0 || width == 0 {
        return;
    }
    if x.len() >= ROWS_PAR_THRESHOLD && rayon::current_num_threads() > 1 {
        out.par_chunks_mut(width).zip(x.par_chunks(cols)).enumerate().for_each(|(r, (o, xr))| f(r, xr, o));
    } else {
        out.chunks_mut(width).zip(x.chunks(cols)).enumerate().for_each(|(r, (o, xr))| f(r, xr, o));
    }
}

/// Per-row weighted, label-smoothed cross-entropy from logits (see [`CrossEntropyTerms`]): writes
/// `losses[r]` and `lse[r]` (the row's log-sum-exp, for [`cross_entropy_rows_weighted_backward`]).
///
/// # Panics
/// On a length mismatch or a target `≥ cols`.
#[track_caller]
pub fn cross_entropy_rows_weighted_forward<T: Float>(
    logits: &[T],
    cols: usize,
    terms: &CrossEntropyTerms<T>,
    losses: &mut [T],
    lse: &mut [T],
) {
    const K: &str = "cross_entropy_rows_weighted_forward";
    crate::cpu::warn_if_simd_unused();
    check_rows(K, "logits", logits.len(), logits.len(), cols);
    let rows = logits.len().checked_div(cols).unwrap_or(0);
    check_len(K, "losses", losses.len(), rows);
    check_len(K, "lse", lse.len(), rows);
    terms.check(K, rows, cols);
    let e = terms.smoothing;
    let per_class = e / T::from_f64(cols as f64);
    let row = |r: usize, xr: &[T]| -> (T, T) {
        let m = T::max_slice_fast(xr);
        let m = if m.to_f64().is_finite() { m } else { T::ZERO };
        let l = m + T::exp_sub_sum_nostore(xr, m).ln();
        let mut loss = (T::ONE - e) * terms.row_weight[r] * (l - xr[terms.targets[r]]);
        if e.to_f64() > 0.0 && terms.keep[r].to_f64() != 0.0 {
            let mut s = T::ZERO;
            match terms.class_weight {
                Some(wc) => xr.iter().zip(wc).for_each(|(&x, &w)| s += w * (l - x)),
                None => xr.iter().for_each(|&x| s += l - x),
            }
            loss += per_class * terms.keep[r] * s;
        }
        (loss, l)
    };
    if cols == 0 {
        return;
    }
    let f = |(r, (lo, ls)): (usize, (&mut T, &mut T))| {
        (*lo, *ls) = row(r, &logits[r * cols..(r + 1) * cols]);
    };
    if logits.len() >= ROWS_PAR_THRESHOLD && rayon::current_num_threads() > 1 {
        losses.par_iter_mut().zip(lse.par_iter_mut()).enumerate().for_each(f);
    } else {
        losses.iter_mut().zip(lse.iter_mut()).enumerate().for_each(f);
    }
}

/// Backward of [`cross_entropy_rows_weighted_forward`] given its `lse`: `dx_r = dloss[r] (a p - (1 - e)
/// w_y onehot(y) - (e / C) keep wc)` (see [`CrossEntropyTerms`]).
///
/// # Panics
/// On a length mismatch or a target `≥ cols`.
#[track_caller]
pub fn cross_entropy_rows_weighted_backward<T: Float>(
    logits: &[T],
    cols: usize,
    terms: &CrossEntropyTerms<T>,
    lse: &[T],
    dloss: &[T],
    dx: &mut [T],
) {
    const K: &str = "cross_entropy_rows_weighted_backward";
    check_rows(K, "dx", dx.len(), logits.len(), cols);
    let rows = logits.len().checked_div(cols).unwrap_or(0);
    check_len(K, "lse", lse.len(), rows);
    check_len(K, "dloss", dloss.len(), rows);
    terms.check(K, rows, cols);
    let e = terms.smoothing;
    let per_class = e / T::from_f64(cols as f64);
    let total = match terms.class_weight {
        Some(wc) => wc.iter().fold(T::ZERO, |s, &w| s + w),
        None => T::from_f64(cols as f64),
    };
    for_rows_indexed(logits, cols, dx, cols, |r, xr, o| {
        let (wy, keep, dl) = (terms.row_weight[r], terms.keep[r], dloss[r]);
        let a = (T::ONE - e) * wy + per_class * keep * total;
        T::exp_sub_sum(xr, lse[r], o);
        let k = dl * a;
        for v in o.iter_mut() {
            *v *= k;
        }
        if e.to_f64() > 0.0 {
            let s = dl * per_class * keep;
            match terms.class_weight {
                Some(wc) => o.iter_mut().zip(wc).for_each(|(v, &w)| *v -= s * w),
                None => o.iter_mut().for_each(|v| *v -= s),
            }
        }
        o[terms.targets[r]] -= dl * (T::ONE - e) * wy;
    });
}

/// The naive reference of [`cross_entropy_rows_weighted_forward`] and its backward in `f64`: returns
/// `(losses, dx)` for `dloss`.
pub fn cross_entropy_rows_weighted_reference(
    logits: &[f64],
    cols: usize,
    terms: &CrossEntropyTerms<f64>,
    dloss: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let rows = logits.len().checked_div(cols).unwrap_or(0);
    let e = terms.smoothing;
    let c = cols as f64;
    let wc = |j: usize| terms.class_weight.map_or(1.0, |w| w[j]);
    let (mut losses, mut dx) = (vec![0.0; rows], vec![0.0; logits.len()]);
    for r in 0..rows {
        let xr = &logits[r * cols..(r + 1) * cols];
        let m = xr.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let m = if m.is_finite() { m } else { 0.0 };
        let lse = m + xr.iter().map(|&x| (x - m).exp()).sum::<f64>().ln();
        let (y, wy, keep) = (terms.targets[r], terms.row_weight[r], terms.keep[r]);
        let smooth: f64 = (0..cols).map(|j| wc(j) * (lse - xr[j])).sum();
        losses[r] = (1.0 - e) * wy * (lse - xr[y]) + if e > 0.0 { e / c * keep * smooth } else { 0.0 };
        let total: f64 = (0..cols).map(wc).sum();
        let a = (1.0 - e) * wy + e / c * keep * total;
        for j in 0..cols {
            let p = (xr[j] - lse).exp();
            let onehot = if j == y { 1.0 } else { 0.0 };
            dx[r * cols + j] = dloss[r] * (a * p - (1.0 - e) * wy * onehot - e / c * keep * wc(j));
        }
    }
    (losses, dx)
}
