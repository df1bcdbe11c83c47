//! Convolution and pooling against naive direct loops (stride, padding, dilation, groups, ceil mode).

#![allow(clippy::needless_range_loop)] // the naive references index like the math

mod common;

use common::*;
use tensorgrad_kernels::conv::{self, Conv2dGeometry};
use tensorgrad_kernels::pool::{self, Pool2dGeometry};

/// Calls `f(n, o, oy, ox, c_in, i, j, iy, ix)` for every in-range term of the convolution sum.
fn for_each_term(g: &Conv2dGeometry, mut f: impl FnMut([usize; 9])) {
    let (oh, ow) = (g.out_h(), g.out_w());
    let (cg, og) = (g.in_c / g.groups, g.out_c / g.groups);
    for n in 0..g.n {
        for o in 0..g.out_c {
            let grp = o / og;
            for oy in 0..oh {
                for ox in 0..ow {
                    for c in 0..cg {
                        for i in 0..g.kh {
                            for j in 0..g.kw {
                                let iy = (oy * g.stride.0 + i * g.dilation.0) as isize - g.padding.0 as isize;
                                let ix = (ox * g.stride.1 + j * g.dilation.1) as isize - g.padding.1 as isize;
                                if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                    continue;
                                }
                                f([n, o, oy, ox, grp * cg + c, c, i * g.kw + j, iy as usize, ix as usize]);
                            }
                        }
                    }
                }
            }
        }
    }
}

struct Naive {
    y: Vec<f64>,
    dx: Vec<f64>,
    dw: Vec<f64>,
    db: Vec<f64>,
}

fn naive(g: &Conv2dGeometry, x: &[f64], w: &[f64], b: &[f64], dy: &[f64]) -> Naive {
    let (oh, ow) = (g.out_h(), g.out_w());
    let cg = g.in_c / g.groups;
    let kk = g.kh * g.kw;
    let mut r = Naive {
        y: vec![0.0; g.output_len()],
        dx: vec![0.0; g.input_len()],
        dw: vec![0.0; g.weight_len()],
        db: vec![0.0; g.out_c],
    };
    for n in 0..g.n {
        for o in 0..g.out_c {
            for p in 0..oh * ow {
                let yi = (n * g.out_c + o) * oh * ow + p;
                r.y[yi] = b[o];
                r.db[o] += dy[yi];
            }
        }
    }
    for_each_term(g, |[n, o, oy, ox, cin, c, ij, iy, ix]| {
        let yi = ((n * g.out_c + o) * oh + oy) * ow + ox;
        let xi = ((n * g.in_c + cin) * g.h + iy) * g.w + ix;
        let wi = (o * cg + c) * kk + ij;
        r.y[yi] += w[wi] * x[xi];
        r.dx[xi] += w[wi] * dy[yi];
        r.dw[wi] += x[xi] * dy[yi];
    });
    r
}

fn geometries() -> Vec<Conv2dGeometry> {
    let mut v = Vec::new();
    let base = Conv2dGeometry::new(2, 3, 7, 6, 4, 3, 3);
    v.push(base);
    v.push(Conv2dGeometry { stride: (2, 2), padding: (1, 1), ..base });
    v.push(Conv2dGeometry { stride: (2, 1), padding: (2, 0), dilation: (2, 1), ..base });
    v.push(Conv2dGeometry { dilation: (2, 2), padding: (2, 2), ..base });
    v.push(Conv2dGeometry { in_c: 4, out_c: 6, groups: 2, padding: (1, 1), ..base });
    v.push(Conv2dGeometry { in_c: 4, out_c: 4, groups: 4, stride: (2, 2), padding: (1, 1), ..base }); // depthwise
    v.push(Conv2dGeometry { kh: 1, kw: 1, ..base }); // pointwise fast path
    v.push(Conv2dGeometry { kh: 1, kw: 1, in_c: 4, out_c: 6, groups: 2, ..base }); // grouped pointwise
    v.push(Conv2dGeometry { kh: 1, kw: 1, stride: (2, 2), ..base }); // strided 1x1 (im2col path)
    v.push(Conv2dGeometry { kh: 2, kw: 5, stride: (3, 2), padding: (1, 2), ..base });
    v.push(Conv2dGeometry {
        n: 1,
        h: 1,
        w: 13,
        kh: 1,
        kw: 3,
        stride: (1, 2),
        padding: (0, 1),
        dilation: (1, 2),
        ..base
    }); // conv1d
    v.push(Conv2dGeometry { n: 0, ..base });
    v.push(Conv2dGeometry { kh: 7, kw: 6, ..base }); // kernel covers the input
                                                     // More images than weight-gradient chunks, not a multiple of them (uneven last chunk).
    v.push(Conv2dGeometry { n: 19, padding: (2, 1), ..base });
    v.push(Conv2dGeometry { n: 9, in_c: 4, out_c: 6, groups: 2, kh: 1, kw: 1, ..base });
    // Rows of 8 or more outputs (im2col's short-row path): LeNet-like padding 2, odd widths, a wide kernel
    // whose padding exceeds one 8-wide block (falls back), and exactly 8 and 9 wide.
    v.push(Conv2dGeometry { n: 1, h: 9, w: 13, kh: 5, kw: 5, padding: (2, 2), ..base });
    v.push(Conv2dGeometry { n: 1, h: 4, w: 30, kh: 3, kw: 21, padding: (1, 10), ..base });
    v.push(Conv2dGeometry { n: 1, h: 5, w: 12, kh: 5, kw: 5, ..base });
    v.push(Conv2dGeometry { n: 1, h: 6, w: 9, kh: 2, kw: 3, padding: (1, 1), ..base });
    v.push(Conv2dGeometry { n: 2, h: 11, w: 17, kh: 3, kw: 3, dilation: (1, 2), padding: (1, 2), ..base });
    v
}

#[test]
fn conv2d_matches_direct_loops_f64_and_f32() {
    let mut rng = Rng::new(21);
    for g in geometries() {
        g.validate().unwrap();
        let x = rng.vec_f64(g.input_len(), -1.0, 1.0);
        let w = rng.vec_f64(g.weight_len(), -1.0, 1.0);
        let b = rng.vec_f64(g.out_c, -1.0, 1.0);
        let dy = rng.vec_f64(g.output_len(), -1.0, 1.0);
        let want = naive(&g, &x, &w, &b, &dy);

        let mut y = vec![f64::NAN; g.output_len()];
        conv::conv2d_forward(&g, &x, &w, Some(&b), &mut y);
        assert_close(&format!("y {g:?}"), &y, &want.y, 1e-12);
        let mut dx = vec![f64::NAN; g.input_len()];
        conv::conv2d_backward_input(&g, &dy, &w, &mut dx);
        assert_close(&format!("dx {g:?}"), &dx, &want.dx, 1e-12);
        let mut dw = vec![f64::NAN; g.weight_len()];
        let mut db = vec![f64::NAN; g.out_c];
        conv::conv2d_backward_weight(&g, &x, &dy, &mut dw, Some(&mut db));
        assert_close(&format!("dw {g:?}"), &dw, &want.dw, 1e-12);
        assert_close(&format!("db {g:?}"), &db, &want.db, 1e-12);

        let f = |v: &[f64]| v.iter().map(|&t| t as f32).collect::<Vec<f32>>();
        let (x32, w32, b32, dy32) = (f(&x), f(&w), f(&b), f(&dy));
        let mut y32 = vec![f32::NAN; g.output_len()];
        conv::conv2d_forward(&g, &x32, &w32, Some(&b32), &mut y32);
        assert_close("y f32", &to64(&y32), &want.y, 1e-5);
        let mut dx32 = vec![f32::NAN; g.input_len()];
        conv::conv2d_backward_input(&g, &dy32, &w32, &mut dx32);
        assert_close("dx f32", &to64(&dx32), &want.dx, 1e-5);
        let mut dw32 = vec![f32::NAN; g.weight_len()];
        conv::conv2d_backward_weight(&g, &x32, &dy32, &mut dw32, None);
        assert_close("dw f32", &to64(&dw32), &want.dw, 1e-5);
        // Without bias the forward is the naive sum minus the bias.
        let mut y0 = vec![0.0f64; g.output_len()];
        conv::conv2d_forward(&g, &x, &w, None, &mut y0);
        let p = g.out_h() * g.out_w();
        let unbiased: Vec<f64> = want.y.iter().enumerate().map(|(i, &v)| v - b[(i / p) % g.out_c]).collect();
        assert_close("y no bias", &y0, &unbiased, 1e-12);
    }
}

#[test]
fn im2col_col2im_are_adjoint() {
    // <im2col(x), c> == <x, col2im(c)> for random x, c.
    let mut rng = Rng::new(22);
    for g in geometries().into_iter().filter(|g| g.n > 0) {
        let cg = g.in_c / g.groups;
        let x = rng.vec_f64(cg * g.h * g.w, -1.0, 1.0);
        let c = rng.vec_f64(g.col_rows() * g.col_cols(), -1.0, 1.0);
        let mut col = vec![f64::NAN; c.len()];
        conv::im2col(&g, &x, &mut col);
        let mut back = vec![0.0; x.len()];
        conv::col2im(&g, &c, &mut back);
        let lhs: f64 = col.iter().zip(&c).map(|(a, b)| a * b).sum();
        let rhs: f64 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-10, "{g:?}");
    }
}

#[test]
fn invalid_geometry_is_reported() {
    let g = Conv2dGeometry { groups: 2, ..Conv2dGeometry::new(1, 3, 4, 4, 4, 3, 3) };
    assert!(g.validate().unwrap_err().contains("groups"));
    let g = Conv2dGeometry::new(1, 1, 2, 2, 1, 3, 3);
    assert!(g.validate().is_err());
}

#[test]
#[should_panic(expected = "conv2d_forward: invalid geometry")]
fn conv_panics_on_invalid_geometry() {
    let g = Conv2dGeometry { stride: (0, 1), ..Conv2dGeometry::new(1, 1, 4, 4, 1, 3, 3) };
    conv::conv2d_forward::<f32>(&g, &[0.0; 16], &[0.0; 9], None, &mut [0.0; 4]);
}

#[test]
fn conv_bit_identical_for_one_and_two_threads() {
    let mut rng = Rng::new(23);
    // 13 images: an uneven split into weight-gradient chunks and into per-thread chunks.
    let g = Conv2dGeometry { padding: (1, 1), ..Conv2dGeometry::new(13, 16, 28, 28, 32, 3, 3) };
    let x = rng.vec_f32(g.input_len(), -1.0, 1.0);
    let w = rng.vec_f32(g.weight_len(), -1.0, 1.0);
    let dy = rng.vec_f32(g.output_len(), -1.0, 1.0);
    let run = || {
        let mut y = vec![0.0f32; g.output_len()];
        conv::conv2d_forward(&g, &x, &w, None, &mut y);
        let mut dx = vec![0.0f32; g.input_len()];
        conv::conv2d_backward_input(&g, &dy, &w, &mut dx);
        let mut dw = vec![0.0f32; g.weight_len()];
        conv::conv2d_backward_weight(&g, &x, &dy, &mut dw, None);
        (bits32(&y), bits32(&dx), bits32(&dw))
    };
    assert!(with_threads(1, run) == with_threads(2, run));
}

// ------------------------------------------------------------------------------------------------ pooling

fn pool_geometries() -> Vec<Pool2dGeometry> {
    let base = Pool2dGeometry::new(2, 3, 7, 8, 2);
    vec![
        base,
        Pool2dGeometry { kh: 3, kw: 3, stride: (2, 2), padding: (1, 1), ..base },
        Pool2dGeometry { kh: 3, kw: 2, stride: (2, 3), padding: (1, 0), ceil_mode: true, ..base },
        Pool2dGeometry { kh: 3, kw: 3, stride: (1, 1), ..base },
        Pool2dGeometry { kh: 2, kw: 2, stride: (2, 2), ceil_mode: true, ..base },
        Pool2dGeometry { kh: 1, kw: 1, stride: (1, 1), ..base },
        // No padding, windows inside the input: the unclipped scan (overlapping and non-square windows).
        Pool2dGeometry { kh: 3, kw: 2, stride: (1, 3), ..base },
        Pool2dGeometry { kh: 2, kw: 2, stride: (2, 2), ceil_mode: true, h: 8, w: 6, ..base },
    ]
}

#[test]
fn max_pool_matches_naive_and_scatters_back() {
    let mut rng = Rng::new(24);
    let mut geoms = pool_geometries();
    geoms.push(Pool2dGeometry { kh: 3, kw: 3, stride: (2, 2), padding: (1, 1), dilation: (2, 2), ..geoms[0] });
    for g in geoms {
        let x: Vec<f64> = (0..g.input_len()).map(|_| rng.below(7) as f64).collect(); // ties
        let (oh, ow) = (g.out_h(), g.out_w());
        let mut y = vec![0.0; g.output_len()];
        let mut idx = vec![0usize; g.output_len()];
        pool::max_pool2d_forward(&g, &x, &mut y, &mut idx);
        let mut want_dx = vec![0.0; g.input_len()];
        let dy = rng.vec_f64(g.output_len(), -1.0, 1.0);
        for p in 0..g.n * g.c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let (mut best, mut bi) = (f64::NEG_INFINITY, usize::MAX);
                    for i in 0..g.kh {
                        for j in 0..g.kw {
                            let iy = (oy * g.stride.0 + i * g.dilation.0) as isize - g.padding.0 as isize;
                            let ix = (ox * g.stride.1 + j * g.dilation.1) as isize - g.padding.1 as isize;
                            if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                continue;
                            }
                            let k = iy as usize * g.w + ix as usize;
                            if x[p * g.h * g.w + k] > best {
                                best = x[p * g.h * g.w + k];
                                bi = k;
                            }
                        }
                    }
                    let o = (p * oh + oy) * ow + ox;
                    assert_eq!((y[o], idx[o]), (best, bi), "{g:?} plane {p} ({oy},{ox})");
                    want_dx[p * g.h * g.w + bi] += dy[o];
                }
            }
        }
        let mut dx = vec![f64::NAN; g.input_len()];
        pool::max_pool2d_backward(&g, &dy, &idx, &mut dx);
        assert_close("max_pool dx", &dx, &want_dx, 1e-14);
    }
    // NaN wins.
    let g = Pool2dGeometry::new(1, 1, 2, 2, 2);
    let (mut y, mut i) = ([0.0f32], [0usize]);
    pool::max_pool2d_forward(&g, &[1.0, f32::NAN, 5.0, 2.0], &mut y, &mut i);
    assert!(y[0].is_nan() && i[0] == 1);
}

#[test]
fn max_pool_2x2_window_follows_the_scan_rule_for_every_tie_and_nan_pattern() {
    // Every window over {0, 1, NaN}^4: the 2x2 fast path must give what the plain scan "take v when
    // v > best or v is NaN" (PyTorch's rule) gives: the last NaN if there is one, else the first maximum.
    let g = Pool2dGeometry::new(1, 1, 2, 2, 2);
    let vals = [0.0f32, 1.0, f32::NAN];
    for code in 0..81usize {
        let w: Vec<f32> = (0..4).map(|k| vals[(code / 3usize.pow(k)) % 3]).collect();
        let (mut best, mut bi) = (w[0], 0usize);
        for (k, &v) in w.iter().enumerate().skip(1) {
            if v > best || v.is_nan() {
                best = v;
                bi = k;
            }
        }
        let (mut y, mut i) = ([0.0f32], [0usize]);
        pool::max_pool2d_forward(&g, &w, &mut y, &mut i);
        assert_eq!(i[0], bi, "window {w:?}");
        assert!(y[0] == best || (y[0].is_nan() && best.is_nan()), "window {w:?}");
    }
}

/// The plain scan over every window (PyTorch's rule), for 2x2 stride-2 pooling without padding.
fn scan_2x2<T: tensorgrad_kernels::Float>(x: &[T], g: &Pool2dGeometry) -> (Vec<T>, Vec<usize>) {
    let (oh, ow) = (g.out_h(), g.out_w());
    let (mut y, mut idx) = (Vec::new(), Vec::new());
    for p in 0..g.n * g.c {
        let plane = &x[p * g.h * g.w..(p + 1) * g.h * g.w];
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best = T::NEG_INFINITY;
                let mut bi = 2 * oy * g.w + 2 * ox;
                for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let k = (2 * oy + dy) * g.w + 2 * ox + dx;
                    if plane[k] > best || plane[k].is_nan() {
                        best = plane[k];
                        bi = k;
                    }
                }
                y.push(best);
                idx.push(bi);
            }
        }
    }
    (y, idx)
}

#[test]
fn max_pool_2x2_stride_2_rows_match_the_scan_for_many_widths_with_ties_and_nans() {
    // The vectorized row path: widths 2..=41 (odd widths drop the last column), heights 2..5, values from a
    // small set so ties are common, and some NaNs; f32 and f64.
    let mut rng = Rng::new(77);
    for w in 2..=41usize {
        for h in [2usize, 3, 5] {
            let g = Pool2dGeometry::new(2, 1, h, w, 2);
            let x: Vec<f64> = rng
                .vec_f64(g.input_len(), 0.0, 1.0)
                .into_iter()
                .map(|u| if u < 0.05 { f64::NAN } else { (u * 4.0).floor() - 1.0 })
                .collect();
            let (mut y, mut idx) = (vec![0.0f64; g.output_len()], vec![0usize; g.output_len()]);
            pool::max_pool2d_forward(&g, &x, &mut y, &mut idx);
            let (ey, ei) = scan_2x2(&x, &g);
            assert_eq!(idx, ei, "f64 {h}x{w}");
            assert!(y.iter().zip(&ey).all(|(a, b)| a == b || (a.is_nan() && b.is_nan())), "f64 {h}x{w}");
            let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let (mut yf, mut idxf) = (vec![0.0f32; g.output_len()], vec![0usize; g.output_len()]);
            pool::max_pool2d_forward(&g, &xf, &mut yf, &mut idxf);
            let (eyf, eif) = scan_2x2(&xf, &g);
            assert_eq!(idxf, eif, "f32 {h}x{w}");
            assert!(yf.iter().zip(&eyf).all(|(a, b)| a == b || (a.is_nan() && b.is_nan())), "f32 {h}x{w}");
        }
    }
}

#[test]
fn output_sizes_follow_pytorch() {
    // PyTorch's pooling_output_shape formula, worked by hand.
    let g = Pool2dGeometry { kh: 3, kw: 3, stride: (2, 2), padding: (1, 1), ..Pool2dGeometry::new(1, 1, 7, 8, 3) };
    assert_eq!((g.out_h(), g.out_w()), (4, 4));
    let g = Pool2dGeometry { ceil_mode: true, ..Pool2dGeometry::new(1, 1, 7, 8, 2) };
    assert_eq!((g.out_h(), g.out_w()), (4, 4));
    let g = Pool2dGeometry {
        ceil_mode: true,
        padding: (1, 1),
        kh: 3,
        kw: 3,
        stride: (2, 2),
        ..Pool2dGeometry::new(1, 1, 6, 6, 3)
    };
    assert_eq!((g.out_h(), g.out_w()), (4, 4));
}

#[test]
fn avg_pool_matches_naive_and_backward_is_adjoint() {
    let mut rng = Rng::new(25);
    for g in pool_geometries() {
        for (cip, div) in [(true, None), (false, None), (true, Some(5))] {
            let x = rng.vec_f64(g.input_len(), -1.0, 1.0);
            let (oh, ow) = (g.out_h(), g.out_w());
            let mut y = vec![0.0; g.output_len()];
            pool::avg_pool2d_forward(&g, cip, div, &x, &mut y);
            for p in 0..g.n * g.c {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let (mut s, mut cnt, mut padded) = (0.0, 0usize, 0usize);
                        for i in 0..g.kh {
                            for j in 0..g.kw {
                                let iy = (oy * g.stride.0 + i) as isize - g.padding.0 as isize;
                                let ix = (ox * g.stride.1 + j) as isize - g.padding.1 as isize;
                                if iy < g.h as isize + g.padding.0 as isize && ix < g.w as isize + g.padding.1 as isize
                                {
                                    padded += 1;
                                }
                                if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                    continue;
                                }
                                s += x[p * g.h * g.w + iy as usize * g.w + ix as usize];
                                cnt += 1;
                            }
                        }
                        let d = div.unwrap_or(if cip { padded } else { cnt });
                        let want = if cnt == 0 { 0.0 } else { s / d as f64 };
                        let got = y[(p * oh + oy) * ow + ox];
                        assert!((got - want).abs() < 1e-14, "{g:?} cip={cip} ({oy},{ox}): {got} vs {want}");
                    }
                }
            }
            // <avg(x), dy> == <x, avg_backward(dy)>
            let dy = rng.vec_f64(g.output_len(), -1.0, 1.0);
            let mut dx = vec![f64::NAN; g.input_len()];
            pool::avg_pool2d_backward(&g, cip, div, &dy, &mut dx);
            let lhs: f64 = y.iter().zip(&dy).map(|(a, b)| a * b).sum();
            let rhs: f64 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
            assert!((lhs - rhs).abs() < 1e-12, "{g:?}");
        }
    }
}

#[test]
fn adaptive_avg_pool_matches_naive() {
    let mut rng = Rng::new(26);
    for &(h, w, oh, ow) in &[(7, 8, 3, 3), (5, 5, 5, 5), (6, 4, 1, 1), (4, 7, 6, 9), (10, 3, 4, 2)] {
        let (n, c) = (2, 3);
        let x = rng.vec_f64(n * c * h * w, -1.0, 1.0);
        let mut y = vec![0.0; n * c * oh * ow];
        pool::adaptive_avg_pool2d_forward(n, c, h, w, oh, ow, &x, &mut y);
        for p in 0..n * c {
            for oy in 0..oh {
                let (y0, y1) = ((oy * h) as f64 / oh as f64, ((oy + 1) * h) as f64 / oh as f64);
                let (y0, y1) = (y0.floor() as usize, y1.ceil() as usize);
                for ox in 0..ow {
                    let (x0, x1) = (
                        ((ox * w) as f64 / ow as f64).floor() as usize,
                        (((ox + 1) * w) as f64 / ow as f64).ceil() as usize,
                    );
                    let mut s = 0.0;
                    for iy in y0..y1 {
                        for ix in x0..x1 {
                            s += x[p * h * w + iy * w + ix];
                        }
                    }
                    let want = s / ((y1 - y0) * (x1 - x0)) as f64;
                    assert!((y[(p * oh + oy) * ow + ox] - want).abs() < 1e-14);
                }
            }
        }
        let dy = rng.vec_f64(y.len(), -1.0, 1.0);
        let mut dx = vec![f64::NAN; x.len()];
        pool::adaptive_avg_pool2d_backward(n, c, h, w, oh, ow, &dy, &mut dx);
        let lhs: f64 = y.iter().zip(&dy).map(|(a, b)| a * b).sum();
        let rhs: f64 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-12);
    }
}

#[test]
fn pooling_bit_identical_for_one_and_two_threads() {
    let mut rng = Rng::new(27);
    let g = Pool2dGeometry { kh: 3, kw: 3, stride: (2, 2), padding: (1, 1), ..Pool2dGeometry::new(8, 16, 32, 32, 3) };
    let x = rng.vec_f32(g.input_len(), -1.0, 1.0);
    let run = || {
        let mut y = vec![0.0f32; g.output_len()];
        let mut i = vec![0usize; g.output_len()];
        pool::max_pool2d_forward(&g, &x, &mut y, &mut i);
        let mut dx = vec![0.0f32; g.input_len()];
        pool::max_pool2d_backward(&g, &y, &i, &mut dx);
        let mut a = vec![0.0f32; g.output_len()];
        pool::avg_pool2d_forward(&g, true, None, &x, &mut a);
        (bits32(&y), i, bits32(&dx), bits32(&a))
    };
    assert!(with_threads(1, run) == with_threads(2, run));
}
