//! Reductions: full sums, sums along the middle axis of `[outer, len, inner]`, and max/min with
//! arg-indices.
//!
//! # Math and order of evaluation
//! - `sum(x) = Σ x_i`. The slice is cut into fixed blocks of [`SUM_BLOCK`] elements; each block is summed with
//!   4×8 f32 lanes (f64: 4 scalar accumulators) that are combined in a fixed tree, and the block sums are
//!   added left to right. The association order depends only on the length, never on the thread count.
//! - `sum_axis`: `out[o, i] = Σ_l x[o, l, i]`, accumulated in order of `l` (vectorized across `i`).
//! - `max_axis`/`min_axis`: value and the index `l` of the first extremum; a NaN wins and its (first) index
//!   is reported, like PyTorch's `max(dim)`.
//!
//! Parallelism: blocks of `sum`, and the `outer` (or `inner` when `outer` is 1) rows of the axis
//! reductions; each output element is always computed by one sequential loop.

use rayon::prelude::*;
use wide::f32x8;

use crate::elementwise::{check_len, Float};

/// Block length of [`sum`]: the association order is fixed per block.
pub const SUM_BLOCK: usize = 1 << 14;
/// Length above which [`sum`] runs its blocks on the rayon pool.
///
/// Measured with `examples/par_thresholds.rs` (2 cores, best of interleaved batches), 2 threads vs 1 from
/// outside the pool (how the engine calls): 256K 0.58-0.88x, 512K 1.02-1.28x, 1M 1.13-1.56x (from a pool
/// worker: 128K 0.7-1.3x, 256K 1.2-1.9x).
pub const SUM_PAR_THRESHOLD: usize = 1 << 19;
/// Output-times-reduced element count above which the axis reductions run in parallel.
pub const AXIS_PAR_THRESHOLD: usize = 1 << 16;

/// Sums one block (≤ any length) of f32 with four 8-lane accumulators.
pub(crate) fn sum_f32_block(x: &[f32]) -> f32 {
    let mut acc = [f32x8::ZERO; 4];
    let mut c = x.chunks_exact(32);
    for ch in &mut c {
        for (k, a) in acc.iter_mut().enumerate() {
            *a += f32x8::from(<[f32; 8]>::try_from(&ch[8 * k..8 * k + 8]).expect("8 lanes"));
        }
    }
    let mut rest = c.remainder().chunks_exact(8);
    for (k, ch) in (&mut rest).enumerate() {
        acc[k] += f32x8::from(<[f32; 8]>::try_from(ch).expect("8 lanes"));
    }
    let v = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    let a = v.to_array();
    let mut s = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
    for &t in rest.remainder() {
        s += t;
    }
    s
}

/// Sums one block of any [`Float`] with four scalar accumulators.
pub(crate) fn sum_scalar_block<T: Float>(x: &[T]) -> T {
    let mut acc = [T::ZERO; 4];
    let mut c = x.chunks_exact(4);
    for ch in &mut c {
        for k in 0..4 {
            acc[k] += ch[k];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for &t in c.remainder() {
        s += t;
    }
    s
}

/// Max of f32 lanes ignoring NaN ordering (callers detect NaN through the arithmetic that follows).
pub(crate) fn max_f32_fast(x: &[f32]) -> f32 {
    let mut acc = f32x8::splat(f32::NEG_INFINITY);
    let mut c = x.chunks_exact(8);
    for ch in &mut c {
        acc = acc.fast_max(f32x8::from(<[f32; 8]>::try_from(ch).expect("8 lanes")));
    }
    let mut m = acc.to_array().iter().fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    for &v in c.remainder() {
        if v > m {
            m = v;
        }
    }
    m
}

/// Deterministic sum of a slice (0 for an empty slice); NaN/inf propagate.
pub fn sum<T: Float>(x: &[T]) -> T {
    crate::cpu::warn_if_simd_unused();
    if x.len() <= SUM_BLOCK {
        return T::sum_slice(x);
    }
    if x.len() < SUM_PAR_THRESHOLD || rayon::current_num_threads() == 1 {
        let mut s = T::ZERO;
        for b in x.chunks(SUM_BLOCK) {
            s += T::sum_slice(b);
        }
        s
    } else {
        let parts: Vec<T> = x.par_chunks(SUM_BLOCK).map(T::sum_slice).collect();
        let mut s = T::ZERO;
        for p in parts {
            s += p;
        }
        s
    }
}

#[track_caller]
fn check_axis<T>(kernel: &str, x: &[T], outer: usize, len: usize, inner: usize, out_len: usize) {
    check_len(kernel, "x", x.len(), outer * len * inner);
    check_len(kernel, "out", out_len, outer * inner);
}

/// `out[o, i] = Σ_l x[o, l, i]` for a contiguous `[outer, len, inner]` block (`len = 0` gives zeros).
///
/// # Shapes
/// `x: [outer, len, inner]`, `out: [outer, inner]`.
///
/// # Panics
/// If the slice lengths do not match the dimensions.
#[track_caller]
pub fn sum_axis<T: Float>(x: &[T], outer: usize, len: usize, inner: usize, out: &mut [T]) {
    crate::cpu::warn_if_simd_unused();
    check_axis("sum_axis", x, outer, len, inner, out.len());
    if out.is_empty() {
        return;
    }
    if inner == 1 {
        let f = |(o, r): (usize, &mut T)| *r = T::sum_slice(&x[o * len..(o + 1) * len]);
        if x.len() < AXIS_PAR_THRESHOLD || rayon::current_num_threads() == 1 {
            out.iter_mut().enumerate().for_each(f);
        } else {
            out.par_iter_mut().enumerate().for_each(f);
        }
        return;
    }
    // Vectorized across `inner`: out_row += x_row for each l in order. Split by outer, or by inner columns.
    let rows = |o: usize, col0: usize, orow: &mut [T]| {
        orow.fill(T::ZERO);
        let w = orow.len();
        for l in 0..len {
            let base = (o * len + l) * inner + col0;
            add_into(orow, &x[base..base + w]);
        }
    };
    let big = x.len() >= AXIS_PAR_THRESHOLD && rayon::current_num_threads() > 1;
    if outer > 1 || !big {
        let f = |(o, orow): (usize, &mut [T])| rows(o, 0, orow);
        if big {
            out.par_chunks_mut(inner).enumerate().for_each(f);
        } else {
            out.chunks_mut(inner).enumerate().for_each(f);
        }
    } else {
        const COLS: usize = 1024;
        out.par_chunks_mut(COLS).enumerate().for_each(|(c, orow)| rows(0, c * COLS, orow));
    }
}

#[inline]
fn add_into<T: Float>(acc: &mut [T], x: &[T]) {
    for (a, &v) in acc.iter_mut().zip(x) {
        *a += v;
    }
}

/// Which extremum an arg-reduction looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extremum {
    /// Largest value.
    Max,
    /// Smallest value.
    Min,
}

/// Reference-semantics update: returns true if `v` (at a later index) replaces `best`.
#[inline(always)]
fn better<T: Float>(which: Extremum, v: T, best: T) -> bool {
    if best.is_nan() {
        return false;
    }
    if v.is_nan() {
        return true;
    }
    match which {
        Extremum::Max => v > best,
        Extremum::Min => v < best,
    }
}

/// Value and index of the max (or min) of `x[o, :, i]` for a contiguous `[outer, len, inner]` block.
/// First index on ties; the first NaN wins (like PyTorch).
///
/// # Shapes
/// `x: [outer, len, inner]`, `values` and `indices: [outer, inner]`.
///
/// # Panics
/// If `len == 0` (no extremum of an empty axis) or the slice lengths do not match.
#[track_caller]
pub fn arg_extremum_axis<T: Float>(
    which: Extremum,
    x: &[T],
    outer: usize,
    len: usize,
    inner: usize,
    values: &mut [T],
    indices: &mut [usize],
) {
    check_axis("arg_extremum_axis", x, outer, len, inner, values.len());
    check_len("arg_extremum_axis", "indices", indices.len(), outer * inner);
    if values.is_empty() {
        return;
    }
    assert!(len > 0, "arg_extremum_axis: cannot reduce an empty axis (len = 0)");
    let row = |o: usize, vals: &mut [T], idx: &mut [usize]| {
        let base = o * len * inner;
        vals.copy_from_slice(&x[base..base + inner]);
        idx.fill(0);
        for l in 1..len {
            let r = &x[base + l * inner..base + (l + 1) * inner];
            for ((v, ix), &c) in vals.iter_mut().zip(idx.iter_mut()).zip(r) {
                if better(which, c, *v) {
                    *v = c;
                    *ix = l;
                }
            }
        }
    };
    if x.len() >= AXIS_PAR_THRESHOLD && rayon::current_num_threads() > 1 {
        values
            .par_chunks_mut(inner)
            .zip(indices.par_chunks_mut(inner))
            .enumerate()
            .for_each(|(o, (v, i))| row(o, v, i));
    } else {
        for (o, (v, i)) in values.chunks_mut(inner).zip(indices.chunks_mut(inner)).enumerate() {
            row(o, v, i);
        }
    }
}

/// `max` along the middle axis with indices (see [`arg_extremum_axis`]).
#[track_caller]
pub fn max_axis<T: Float>(x: &[T], outer: usize, len: usize, inner: usize, values: &mut [T], indices: &mut [usize]) {
    arg_extremum_axis(Extremum::Max, x, outer, len, inner, values, indices)
}

/// `min` along the middle axis with indices (see [`arg_extremum_axis`]).
#[track_caller]
pub fn min_axis<T: Float>(x: &[T], outer: usize, len: usize, inner: usize, values: &mut [T], indices: &mut [usize]) {
    arg_extremum_axis(Extremum::Min, x, outer, len, inner, values, indices)
}

/// Max of a whole slice and its (first) index; NaN wins. `None` for an empty slice.
pub fn argmax<T: Float>(x: &[T]) -> Option<(T, usize)> {
    arg_all(Extremum::Max, x)
}

/// Min of a whole slice and its (first) index; NaN wins. `None` for an empty slice.
pub fn argmin<T: Float>(x: &[T]) -> Option<(T, usize)> {
    arg_all(Extremum::Min, x)
}

fn arg_all<T: Float>(which: Extremum, x: &[T]) -> Option<(T, usize)> {
    let (&first, rest) = x.split_first()?;
    let mut best = (first, 0);
    for (i, &v) in rest.iter().enumerate() {
        if better(which, v, best.0) {
            best = (v, i + 1);
        }
    }
    Some(best)
}

/// Sum of a strided 1-d view `x[offset + k·stride]`, `k < n`, in order (reference-quality, scalar).
///
/// # Panics
/// If the view reaches past the end of `x`.
#[track_caller]
pub fn sum_strided<T: Float>(x: &[T], offset: usize, n: usize, stride: usize) -> T {
    if n == 0 {
        return T::ZERO;
    }
    assert!(
        offset + (n - 1) * stride < x.len(),
        "sum_strided: view (offset {offset}, n {n}, stride {stride}) exceeds the slice of {}",
        x.len()
    );
    if stride == 1 {
        return sum(&x[offset..offset + n]);
    }
    let mut s = T::ZERO;
    for k in 0..n {
        s += x[offset + k * stride];
    }
    s
}
