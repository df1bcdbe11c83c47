//! 2-d pooling over NCHW planes (PyTorch CPU semantics): max (with indices), average, adaptive average.
//!
//! # Math (per plane, output position `(oy, ox)`)
//! - Output size: `OH = ⌊(H + 2ph - dh(KH-1) - 1 + (ceil ? sh-1 : 0))/sh⌋ + 1`, and with `ceil_mode` the
//!   last window must start inside the input or left padding: if `(OH-1)·sh ≥ H + ph` then `OH -= 1`.
//! - max:  `y = max x[iy, ix]` over `iy = oy·sh - ph + i·dh ∈ [0, H)` (same for x); the index saved is the
//!   flat `iy·W + ix` within the plane. A NaN wins (the last NaN scanned, as in PyTorch); backward adds
//!   `dy` at the saved index.
//! - avg:  window `[oy·sh - ph, min(oy·sh - ph + KH, H + ph))`, divisor = its size (`count_include_pad`),
//!   or the size of its part inside the input, or `divisor_override`; backward spreads `dy/divisor`.
//! - adaptive avg: window `[⌊oy·H/OH⌋, ⌈(oy+1)·H/OH⌉)`, mean over it; backward spreads `dy/size`.
//!
//! Planes (`N·C`) are independent and run in parallel above a threshold; each plane is one sequential
//! loop, so results are identical for any thread count.

use rayon::prelude::*;

use crate::elementwise::{check_len, Float};

/// Geometry of a 2-d pooling window (PyTorch's `MaxPool2d`/`AvgPool2d` arguments).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2dGeometry {
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Window height.
    pub kh: usize,
    /// Window width.
    pub kw: usize,
    /// `(sh, sw)` (PyTorch's default is the kernel size).
    pub stride: (usize, usize),
    /// `(ph, pw)`, at most half the kernel.
    pub padding: (usize, usize),
    /// `(dh, dw)` (max pooling only; must be `(1, 1)` for average pooling).
    pub dilation: (usize, usize),
    /// Round the output size up instead of down.
    pub ceil_mode: bool,
}

impl Pool2dGeometry {
    /// A `k×k` window with stride `k`, no padding (PyTorch's defaults for `MaxPool2d(k)`).
    pub fn new(n: usize, c: usize, h: usize, w: usize, k: usize) -> Self {
        Pool2dGeometry { n, c, h, w, kh: k, kw: k, stride: (k, k), padding: (0, 0), dilation: (1, 1), ceil_mode: false }
    }

    /// Checks the geometry; `Err` names the problem.
    pub fn validate(&self) -> Result<(), String> {
        if self.kh == 0 || self.kw == 0 || self.stride.0 == 0 || self.stride.1 == 0 {
            return Err("kernel and stride must be ≥ 1".into());
        }
        if self.dilation.0 == 0 || self.dilation.1 == 0 {
            return Err("dilation must be ≥ 1".into());
        }
        if 2 * self.padding.0 > self.kh || 2 * self.padding.1 > self.kw {
            return Err(format!("padding {:?} must be at most half the kernel {}x{}", self.padding, self.kh, self.kw));
        }
        let eh = self.dilation.0 * (self.kh - 1) + 1;
        let ew = self.dilation.1 * (self.kw - 1) + 1;
        if self.h + 2 * self.padding.0 < eh || self.w + 2 * self.padding.1 < ew {
            return Err(format!("padded input {}x{} smaller than the window {eh}x{ew}", self.h, self.w));
        }
        Ok(())
    }

    #[track_caller]
    fn check(&self, kernel: &str) {
        if let Err(e) = self.validate() {
            panic!("{kernel}: invalid geometry {self:?}: {e}");
        }
    }

    fn out_size(len: usize, k: usize, s: usize, p: usize, d: usize, ceil: bool) -> usize {
        let span = len + 2 * p - d * (k - 1) - 1;
        let mut o = (span + if ceil { s - 1 } else { 0 }) / s + 1;
        if ceil && (o - 1) * s >= len + p {
            o -= 1;
        }
        o
    }

    /// Output height.
    pub fn out_h(&self) -> usize {
        Self::out_size(self.h, self.kh, self.stride.0, self.padding.0, self.dilation.0, self.ceil_mode)
    }

    /// Output width.
    pub fn out_w(&self) -> usize {
        Self::out_size(self.w, self.kw, self.stride.1, self.padding.1, self.dilation.1, self.ceil_mode)
    }

    /// `N·C·H·W`.
    pub fn input_len(&self) -> usize {
        self.n * self.c * self.h * self.w
    }

    /// `N·C·OH·OW`.
    pub fn output_len(&self) -> usize {
        self.n * self.c * self.out_h() * self.out_w()
    }
}

/// Element count above which planes are pooled in parallel.
pub const POOL_PAR_THRESHOLD: usize = 1 << 16;

fn planes<A: Send, B: Sync>(
    big: bool,
    out: &mut [A],
    out_plane: usize,
    inp: &[B],
    in_plane: usize,
    f: impl Fn(&[B], &mut [A]) + Sync,
) {
    if out_plane == 0 || in_plane == 0 {
        return;
    }
    if big && rayon::current_num_threads() > 1 {
        out.par_chunks_mut(out_plane).zip(inp.par_chunks(in_plane)).for_each(|(o, i)| f(i, o));
    } else {
        out.chunks_mut(out_plane).zip(inp.chunks(in_plane)).for_each(|(o, i)| f(i, o));
    }
}

/// One output row of the common 2x2 stride-2 max pool: `out[ox]` is the winner of the window
/// `top[2ox], top[2ox+1], bottom[2ox], bottom[2ox+1]` and `idx[ox]` its flat index (`base` is the top row's
/// offset in the plane, `iw` the row length).
///
/// The scan "take v when v > best or v is NaN" over the four values, as a tournament of selects (no branch
/// and no data-dependent indexing, so the loop vectorizes: after ReLU the comparisons are coin flips and
/// branches mispredict). Same result as the scan: the last NaN if there is one, else the first maximum.
#[inline(always)]
fn max2x2_s2_row<T: Float>(top: &[T], bottom: &[T], out: &mut [T], idx: &mut [usize], base: usize, iw: usize) {
    let take = |v: T, best: T| (v > best) | v.is_nan();
    for (ox, (((o, i), t), b)) in
        out.iter_mut().zip(idx.iter_mut()).zip(top.chunks_exact(2)).zip(bottom.chunks_exact(2)).enumerate()
    {
        let t1 = take(t[1], t[0]);
        let m1 = if t1 { t[1] } else { t[0] };
        let i1 = t1 as usize;
        let t2 = take(b[1], b[0]);
        let m2 = if t2 { b[1] } else { b[0] };
        let i2 = iw + t2 as usize;
        let t3 = take(m2, m1);
        *o = if t3 { m2 } else { m1 };
        *i = base + 2 * ox + if t3 { i2 } else { i1 };
    }
}

/// Max pooling forward; `indices` receives the flat in-plane index `iy·W + ix` of each maximum.
///
/// # Shapes
/// `input: [N, C, H, W]`, `output, indices: [N, C, OH, OW]`.
///
/// # Panics
/// On an invalid geometry or a length mismatch.
#[track_caller]
pub fn max_pool2d_forward<T: Float>(g: &Pool2dGeometry, input: &[T], output: &mut [T], indices: &mut [usize]) {
    g.check("max_pool2d_forward");
    check_len("max_pool2d_forward", "input", input.len(), g.input_len());
    check_len("max_pool2d_forward", "output", output.len(), g.output_len());
    check_len("max_pool2d_forward", "indices", indices.len(), g.output_len());
    let (oh, ow) = (g.out_h(), g.out_w());
    let (sh, sw) = g.stride;
    let (ph, pw) = g.padding;
    let (dh, dw) = g.dilation;
    let (ih, iw) = (g.h, g.w);
    let plane = |x: &[T], o: &mut [T], ix_out: &mut [usize]| {
        for oy in 0..oh {
            let y0 = (oy * sh) as isize - ph as isize;
            let y1 = (y0 + ((g.kh - 1) * dh) as isize + 1).min(ih as isize) as usize;
            let mut ys = y0;
            while ys < 0 {
                ys += dh as isize;
            }
            let ys = ys as usize;
            for ox in 0..ow {
                let x0 = (ox * sw) as isize - pw as isize;
                let x1 = (x0 + ((g.kw - 1) * dw) as isize + 1).min(iw as isize) as usize;
                let mut xs = x0;
                while xs < 0 {
                    xs += dw as isize;
                }
                let xs = xs as usize;
                let mut best = T::NEG_INFINITY;
                let mut bi = ys * iw + xs;
                // Plain while loops: `step_by` costs an integer division per window.
                let mut iy = ys;
                while iy < y1 {
                    let row = &x[iy * iw..(iy + 1) * iw];
                    let mut ixx = xs;
                    while ixx < x1 {
                        let v = row[ixx];
                        if v > best || v.is_nan() {
                            best = v;
                            bi = iy * iw + ixx;
                        }
                        ixx += dw;
                    }
                    iy += dh;
                }
                o[oy * ow + ox] = best;
                ix_out[oy * ow + ox] = bi;
            }
        }
    };
    // Windows without padding or dilation lie inside the input: a plain row-major scan of `kh` row slices
    // (same order, same tie and NaN rule as `plane`), with no clipping per window.
    let inside = |x: &[T], o: &mut [T], ix_out: &mut [usize]| {
        for oy in 0..oh {
            let y0 = oy * sh;
            let rows = &x[y0 * iw..(y0 + g.kh) * iw];
            let (orow, irow) = (&mut o[oy * ow..(oy + 1) * ow], &mut ix_out[oy * ow..(oy + 1) * ow]);
            if g.kh == 2 && g.kw == 2 && sw == 2 {
                let (top, bottom) = rows.split_at(iw);
                max2x2_s2_row(&top[..2 * ow], &bottom[..2 * ow], orow, irow, y0 * iw, iw);
                continue;
            }
            if g.kh == 2 && g.kw == 2 {
                // The common 2x2 window, unrolled (same scan order: top-left, top-right, bottom-left, ...).
                let (top, bottom) = rows.split_at(iw);
                for (ox, (ov, iv)) in orow.iter_mut().zip(irow.iter_mut()).enumerate() {
                    let x0 = ox * sw;
                    // The scan "take v when v > best or v is NaN" over (a, b, c, d), as a tournament with
                    // index arithmetic and no branches: after ReLU the comparisons are coin flips, and the
                    // mispredicted branches made this loop a fifth of a LeNet step. Same result as the scan:
                    // the last NaN if there is one, else the first maximum.
                    let w = [top[x0], top[x0 + 1], bottom[x0], bottom[x0 + 1]];
                    let take = |v: T, best: T| ((v > best) | v.is_nan()) as usize;
                    let i1 = take(w[1], w[0]);
                    let i2 = 2 + take(w[3], w[2]);
                    let bi = i1 + take(w[i2], w[i1]) * (i2 - i1);
                    let best = w[bi];
                    *ov = best;
                    *iv = (y0 + bi / 2) * iw + x0 + bi % 2;
                }
                continue;
            }
            for (ox, (ov, iv)) in orow.iter_mut().zip(irow.iter_mut()).enumerate() {
                let x0 = ox * sw;
                let mut best = T::NEG_INFINITY;
                let mut bi = y0 * iw + x0;
                for (r, row) in rows.chunks_exact(iw).enumerate() {
                    for (c, &v) in row[x0..x0 + g.kw].iter().enumerate() {
                        if v > best || v.is_nan() {
                            best = v;
                            bi = (y0 + r) * iw + x0 + c;
                        }
                    }
                }
                *ov = best;
                *iv = bi;
            }
        }
    };
    let plane = |x: &[T], o: &mut [T], ix_out: &mut [usize]| {
        let fits = oh == 0 || ow == 0 || ((oh - 1) * sh + g.kh <= ih && (ow - 1) * sw + g.kw <= iw);
        if g.padding == (0, 0) && g.dilation == (1, 1) && fits {
            inside(x, o, ix_out)
        } else {
            plane(x, o, ix_out)
        }
    };
    let (op, ip) = (oh * ow, ih * iw);
    if op == 0 || ip == 0 {
        return;
    }
    if input.len() >= POOL_PAR_THRESHOLD && rayon::current_num_threads() > 1 {
        output
            .par_chunks_mut(op)
            .zip(indices.par_chunks_mut(op))
            .zip(input.par_chunks(ip))
            .for_each(|((o, i), x)| plane(x, o, i));
    } else {
        for ((o, i), x) in output.chunks_mut(op).zip(indices.chunks_mut(op)).zip(input.chunks(ip)) {
            plane(x, o, i);
        }
    }
}

/// Max pooling backward: `grad_input` is overwritten with the sum of `grad_output` at the saved indices.
///
/// # Panics
/// On a length mismatch or an index outside its plane.
#[track_caller]
pub fn max_pool2d_backward<T: Float>(g: &Pool2dGeometry, grad_output: &[T], indices: &[usize], grad_input: &mut [T]) {
    g.check("max_pool2d_backward");
    check_len("max_pool2d_backward", "grad_output", grad_output.len(), g.output_len());
    check_len("max_pool2d_backward", "indices", indices.len(), g.output_len());
    check_len("max_pool2d_backward", "grad_input", grad_input.len(), g.input_len());
    let op = g.out_h() * g.out_w();
    let ip = g.h * g.w;
    if op == 0 || ip == 0 {
        grad_input.fill(T::ZERO);
        return;
    }
    let body = |(p, gi): (usize, &mut [T])| {
        gi.fill(T::ZERO);
        for (&d, &k) in grad_output[p * op..(p + 1) * op].iter().zip(&indices[p * op..(p + 1) * op]) {
            assert!(k < ip, "max_pool2d_backward: index {k} out of range for a {}x{} plane", g.h, g.w);
            gi[k] += d;
        }
    };
    if grad_input.len() >= POOL_PAR_THRESHOLD && rayon::current_num_threads() > 1 {
        grad_input.par_chunks_mut(ip).enumerate().for_each(body);
    } else {
        grad_input.chunks_mut(ip).enumerate().for_each(body);
    }
}

/// The window of an average pool along one axis: `(start, end, padded_size)` clipped to the input.
fn avg_window(o: usize, s: usize, p: usize, k: usize, len: usize) -> (usize, usize, usize) {
    let a = (o * s) as isize - p as isize;
    let b = (a + k as isize).min((len + p) as isize);
    let size = (b - a) as usize;
    (a.max(0) as usize, (b.min(len as isize)).max(0) as usize, size)
}

#[track_caller]
fn check_avg(g: &Pool2dGeometry, kernel: &str) {
    g.check(kernel);
    assert!(g.dilation == (1, 1), "{kernel}: average pooling has no dilation, got {:?}", g.dilation);
}

/// Average pooling forward (PyTorch `avg_pool2d`: `count_include_pad`, `divisor_override`).
///
/// # Shapes
/// `input: [N, C, H, W]`, `output: [N, C, OH, OW]`.
///
/// # Panics
/// On an invalid geometry (dilation must be 1) or a length mismatch.
#[track_caller]
pub fn avg_pool2d_forward<T: Float>(
    g: &Pool2dGeometry,
    count_include_pad: bool,
    divisor_override: Option<usize>,
    input: &[T],
    output: &mut [T],
) {
    check_avg(g, "avg_pool2d_forward");
    check_len("avg_pool2d_forward", "input", input.len(), g.input_len());
    check_len("avg_pool2d_forward", "output", output.len(), g.output_len());
    let (oh, ow) = (g.out_h(), g.out_w());
    planes(input.len() >= POOL_PAR_THRESHOLD, output, oh * ow, input, g.h * g.w, |x, o| {
        for oy in 0..oh {
            let (y0, y1, hs) = avg_window(oy, g.stride.0, g.padding.0, g.kh, g.h);
            for ox in 0..ow {
                let (x0, x1, ws) = avg_window(ox, g.stride.1, g.padding.1, g.kw, g.w);
                if y0 >= y1 || x0 >= x1 {
                    o[oy * ow + ox] = T::ZERO;
                    continue;
                }
                let div = divisor_override.unwrap_or(if count_include_pad { hs * ws } else { (y1 - y0) * (x1 - x0) });
                let mut s = T::ZERO;
                for iy in y0..y1 {
                    for &v in &x[iy * g.w + x0..iy * g.w + x1] {
                        s += v;
                    }
                }
                o[oy * ow + ox] = s / T::from_usize(div);
            }
        }
    });
}

/// Average pooling backward: overwrites `grad_input` with each `dy/divisor` spread over its window.
///
/// # Panics
/// On an invalid geometry or a length mismatch.
#[track_caller]
pub fn avg_pool2d_backward<T: Float>(
    g: &Pool2dGeometry,
    count_include_pad: bool,
    divisor_override: Option<usize>,
    grad_output: &[T],
    grad_input: &mut [T],
) {
    check_avg(g, "avg_pool2d_backward");
    check_len("avg_pool2d_backward", "grad_output", grad_output.len(), g.output_len());
    check_len("avg_pool2d_backward", "grad_input", grad_input.len(), g.input_len());
    let (oh, ow) = (g.out_h(), g.out_w());
    planes(grad_input.len() >= POOL_PAR_THRESHOLD, grad_input, g.h * g.w, grad_output, oh * ow, |dy, gi| {
        gi.fill(T::ZERO);
        for oy in 0..oh {
            let (y0, y1, hs) = avg_window(oy, g.stride.0, g.padding.0, g.kh, g.h);
            for ox in 0..ow {
                let (x0, x1, ws) = avg_window(ox, g.stride.1, g.padding.1, g.kw, g.w);
                if y0 >= y1 || x0 >= x1 {
                    continue;
                }
                let div = divisor_override.unwrap_or(if count_include_pad { hs * ws } else { (y1 - y0) * (x1 - x0) });
                let v = dy[oy * ow + ox] / T::from_usize(div);
                for iy in y0..y1 {
                    for d in &mut gi[iy * g.w + x0..iy * g.w + x1] {
                        *d += v;
                    }
                }
            }
        }
    });
}

/// Adaptive window `[⌊o·len/out⌋, ⌈(o+1)·len/out⌉)`.
fn adaptive_window(o: usize, out: usize, len: usize) -> (usize, usize) {
    (o * len / out, ((o + 1) * len).div_ceil(out))
}

#[track_caller]
fn check_adaptive(kernel: &str, n: usize, c: usize, h: usize, w: usize, oh: usize, ow: usize) {
    assert!((oh > 0 && ow > 0) || n * c == 0, "{kernel}: output size must be positive, got {oh}x{ow}");
    assert!(h > 0 && w > 0 || n * c == 0, "{kernel}: input plane must be non-empty, got {h}x{w}");
}

/// Adaptive average pooling forward (PyTorch `adaptive_avg_pool2d`).
///
/// # Shapes
/// `input: [N, C, H, W]`, `output: [N, C, OH, OW]`.
///
/// # Panics
/// On a length mismatch or an empty output size.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn adaptive_avg_pool2d_forward<T: Float>(
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    input: &[T],
    output: &mut [T],
) {
    check_adaptive("adaptive_avg_pool2d_forward", n, c, h, w, oh, ow);
    check_len("adaptive_avg_pool2d_forward", "input", input.len(), n * c * h * w);
    check_len("adaptive_avg_pool2d_forward", "output", output.len(), n * c * oh * ow);
    planes(input.len() >= POOL_PAR_THRESHOLD, output, oh * ow, input, h * w, |x, o| {
        for oy in 0..oh {
            let (y0, y1) = adaptive_window(oy, oh, h);
            for ox in 0..ow {
                let (x0, x1) = adaptive_window(ox, ow, w);
                let mut s = T::ZERO;
                for iy in y0..y1 {
                    for &v in &x[iy * w + x0..iy * w + x1] {
                        s += v;
                    }
                }
                o[oy * ow + ox] = s / T::from_usize((y1 - y0) * (x1 - x0));
            }
        }
    });
}

/// Adaptive average pooling backward: overwrites `grad_input`.
///
/// # Panics
/// On a length mismatch or an empty output size.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn adaptive_avg_pool2d_backward<T: Float>(
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    grad_output: &[T],
    grad_input: &mut [T],
) {
    check_adaptive("adaptive_avg_pool2d_backward", n, c, h, w, oh, ow);
    check_len("adaptive_avg_pool2d_backward", "grad_output", grad_output.len(), n * c * oh * ow);
    check_len("adaptive_avg_pool2d_backward", "grad_input", grad_input.len(), n * c * h * w);
    planes(grad_input.len() >= POOL_PAR_THRESHOLD, grad_input, h * w, grad_output, oh * ow, |dy, gi| {
        gi.fill(T::ZERO);
        for oy in 0..oh {
            let (y0, y1) = adaptive_window(oy, oh, h);
            for ox in 0..ow {
                let (x0, x1) = adaptive_window(ox, ow, w);
                let v = dy[oy * ow + ox] / T::from_usize((y1 - y0) * (x1 - x0));
                for iy in y0..y1 {
                    for d in &mut gi[iy * w + x0..iy * w + x1] {
                        *d += v;
                    }
                }
            }
        }
    });
}
