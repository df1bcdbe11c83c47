//! 2-D convolution (cross-correlation, as PyTorch computes it), NCHW, with stride, padding, dilation and
//! groups. Conv1d is the special case `kh = 1`.
//!
//! With `C_g = in_c / groups` input channels and `O_g = out_c / groups` output channels per group, output
//! channel `o` in group `g = o / O_g`:
//!
//! ```text
//! forward  (F):  y[n, o, i, j]  = sum_{c < C_g, p < kh, q < kw} x[n, g C_g + c, i sh - ph + p dh, j sw - pw + q dw] * w[o, c, p, q]
//! input grad (G): dx[n, g C_g + c, i sh - ph + p dh, j sw - pw + q dw] += dy[n, o, i, j] * w[o, c, p, q]
//! weight grad (H): dw[o, c, p, q] += dy[n, o, i, j] * x[n, g C_g + c, i sh - ph + p dh, j sw - pw + q dw]
//! ```
//! (taps that fall into the zero padding contribute nothing), with
//! `out_h = (h + 2 ph - dh (kh - 1) - 1) / sh + 1` and likewise `out_w`.
//!
//! F is bilinear in (x, w); G and H are its adjoints: `<F(x, w), dy> = <x, G(dy, w)> = <w, H(x, dy)>`.
//! So each of the three ops differentiates into the other two, which makes every order of derivative exact:
//!
//! | op | value | d/d(first input), upstream u | d/d(second input), upstream u |
//! |---|---|---|---|
//! | F(x, w) | y | G(u, w) | H(x, u) |
//! | G(dy, w) | dx | F(u, w) | H(u, dy) |
//! | H(x, dy) | dw | G(dy, u) | F(x, u) |
//!
//! The bias is folded into F: `y = F(x, w) + b[o]` is one node (the kernel fills each output plane with
//! `b[o]` and accumulates the product onto it), and `db[o] = sum_{n, i, j} u[n, o, i, j]` (in a plain backward
//! computed in the same kernel pass as `dw`; under `create_graph` as a differentiable `sum_dims`).
//!
//! The value functions (`conv2d_forward`, `conv2d_backward_input`, `conv2d_backward_weight`) call the kernels
//! crate's convolution (`tensorgrad_kernels::conv`: im2col + the SIMD/threaded GEMM, same NCHW layout and
//! geometry), reading the (contiguous) input tensors in place.

use crate::autograd::Backward;
use crate::tensor::{Float, Tensor};

/// Sizes of one 2-D convolution (NCHW input, `[out_c, in_c / groups, kh, kw]` weight).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Conv2dGeometry {
    pub n: usize,
    pub in_c: usize,
    pub h: usize,
    pub w: usize,
    pub out_c: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: (usize, usize),
    pub padding: (usize, usize),
    pub dilation: (usize, usize),
    pub groups: usize,
}

impl Conv2dGeometry {
    /// Output height and width (0 when the dilated kernel does not fit in the padded input).
    pub fn out_hw(&self) -> (usize, usize) {
        let dim = |size: usize, k: usize, s: usize, p: usize, d: usize| {
            let span = d * (k - 1) + 1;
            if size + 2 * p < span {
                0
            } else {
                (size + 2 * p - span) / s + 1
            }
        };
        (
            dim(self.h, self.kh, self.stride.0, self.padding.0, self.dilation.0),
            dim(self.w, self.kw, self.stride.1, self.padding.1, self.dilation.1),
        )
    }

    fn x_shape(&self) -> [usize; 4] {
        [self.n, self.in_c, self.h, self.w]
    }

    fn w_shape(&self) -> [usize; 4] {
        [self.out_c, self.in_c / self.groups, self.kh, self.kw]
    }

    fn y_shape(&self) -> [usize; 4] {
        let (oh, ow) = self.out_hw();
        [self.n, self.out_c, oh, ow]
    }

    /// The kernels crate's geometry (same fields, same conventions).
    fn kernel(&self) -> tensorgrad_kernels::conv::Conv2dGeometry {
        tensorgrad_kernels::conv::Conv2dGeometry {
            n: self.n,
            in_c: self.in_c,
            h: self.h,
            w: self.w,
            out_c: self.out_c,
            kh: self.kh,
            kw: self.kw,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            groups: self.groups,
        }
    }

    /// True when the output is empty (the dilated kernel does not fit, or a zero size): then F, G and H are
    /// all zero and the kernels (which reject such geometries) are not called.
    fn is_empty(&self) -> bool {
        let (oh, ow) = self.out_hw();
        oh == 0 || ow == 0
    }
}

/// F: `y = conv(x, w) + b`; `y` is overwritten.
pub(crate) fn conv2d_forward<T: Float + tensorgrad_kernels::Float>(
    g: &Conv2dGeometry,
    x: &[T],
    w: &[T],
    b: Option<&[T]>,
    y: &mut [T],
) {
    if g.is_empty() {
        y.fill(<T as Float>::ZERO);
    } else {
        tensorgrad_kernels::conv::conv2d_forward(&g.kernel(), x, w, b, y);
    }
}

/// G: `dx = d<y, dy>/dx` for `y = conv(x, w)`; `dx` is overwritten.
pub(crate) fn conv2d_backward_input<T: Float + tensorgrad_kernels::Float>(
    g: &Conv2dGeometry,
    dy: &[T],
    w: &[T],
    dx: &mut [T],
) {
    if g.is_empty() {
        dx.fill(<T as Float>::ZERO);
    } else {
        tensorgrad_kernels::conv::conv2d_backward_input(&g.kernel(), dy, w, dx);
    }
}

/// H: `dw = d<y, dy>/dw` for `y = conv(x, w)` (and `db = sum_{n, i, j} dy` when asked); overwritten.
pub(crate) fn conv2d_backward_weight<T: Float + tensorgrad_kernels::Float>(
    g: &Conv2dGeometry,
    x: &[T],
    dy: &[T],
    dw: &mut [T],
    db: Option<&mut [T]>,
) {
    if g.is_empty() {
        dw.fill(<T as Float>::ZERO);
        if let Some(db) = db {
            db.fill(<T as Float>::ZERO);
        }
    } else {
        tensorgrad_kernels::conv::conv2d_backward_weight(&g.kernel(), x, dy, dw, db);
    }
}

#[derive(Clone, Copy)]
enum Which {
    Forward,
    InputGrad,
    WeightGrad,
}

/// Runs one of F (with the bias `c`, if any), G, H on contiguous tensors, producing a tensor of `out_shape`.
/// The inputs are read in place (the public entry makes them contiguous).
fn run(which: Which, g: &Conv2dGeometry, a: &Tensor, b: &Tensor, c: Option<&Tensor>, out_shape: [usize; 4]) -> Tensor {
    crate::dispatch_float!(a.dtype(), "conv2d", T => {
        let mut out = vec![<T as Float>::ZERO; out_shape.iter().product()];
        a.with_slice::<T, _>(|av| b.with_slice::<T, _>(|bv| match which {
            Which::Forward => match c {
                Some(c) => c.with_slice::<T, _>(|cv| conv2d_forward(g, av, bv, Some(cv), &mut out)),
                None => conv2d_forward(g, av, bv, None, &mut out),
            },
            Which::InputGrad => conv2d_backward_input(g, av, bv, &mut out),
            Which::WeightGrad => conv2d_backward_weight(g, av, bv, &mut out, None),
        }));
        Tensor::from_vec(out, &out_shape)
    })
}

/// F as a differentiable op, with the bias folded in: `x [n, in_c, h, w]`, `w [out_c, in_c/groups, kh, kw]`,
/// `bias [out_c]` -> `[n, out_c, oh, ow]`. Shapes are checked by the caller (`nn::functional::conv2d`).
/// The bias is added in the kernel's output pass; its gradient is `sum_{n, i, j} dy`.
#[track_caller]
pub(crate) fn conv2d(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, g: Conv2dGeometry) -> Tensor {
    let _p = crate::profile::op_scope("conv2d");
    let (x, w, bias) = (x.contiguous(), w.contiguous(), bias.map(Tensor::contiguous));
    debug_assert_eq!(x.shape(), g.x_shape());
    debug_assert_eq!(w.shape(), g.w_shape());
    debug_assert!(bias.as_ref().is_none_or(|b| b.shape() == [g.out_c]));
    let y = run(Which::Forward, &g, &x, &w, bias.as_ref(), g.y_shape());
    let backward = || ConvBackward { which: Which::Forward, a: x.clone(), b: w.clone(), g, bias: bias.is_some() };
    match &bias {
        Some(b) => Tensor::from_op(y, &[&x, &w, b], backward),
        None => Tensor::from_op(y, &[&x, &w], backward),
    }
}

/// G as a differentiable op: `dy [n, out_c, oh, ow]`, `w` -> `dx [n, in_c, h, w]`.
fn conv2d_input_grad(dy: &Tensor, w: &Tensor, g: Conv2dGeometry) -> Tensor {
    let _p = crate::profile::op_scope("conv2d_backward_input");
    let (dy, w) = (dy.contiguous(), w.contiguous());
    let dx = run(Which::InputGrad, &g, &dy, &w, None, g.x_shape());
    Tensor::from_op(dx, &[&dy, &w], || ConvBackward {
        which: Which::InputGrad,
        a: dy.clone(),
        b: w.clone(),
        g,
        bias: false,
    })
}

/// H as a differentiable op: `x`, `dy` -> `dw [out_c, in_c/groups, kh, kw]`.
fn conv2d_weight_grad(x: &Tensor, dy: &Tensor, g: Conv2dGeometry) -> Tensor {
    let _p = crate::profile::op_scope("conv2d_backward_weight");
    let (x, dy) = (x.contiguous(), dy.contiguous());
    let dw = run(Which::WeightGrad, &g, &x, &dy, None, g.w_shape());
    Tensor::from_op(dw, &[&x, &dy], || ConvBackward {
        which: Which::WeightGrad,
        a: x.clone(),
        b: dy.clone(),
        g,
        bias: false,
    })
}

/// `(dw, db)` of F in one kernel pass, as plain values (no graph: only for a backward that is not recorded).
fn weight_and_bias_grad(x: &Tensor, dy: &Tensor, g: Conv2dGeometry) -> (Tensor, Tensor) {
    let _p = crate::profile::op_scope("conv2d_backward_weight");
    let dy = dy.contiguous();
    crate::dispatch_float!(x.dtype(), "conv2d", T => {
        let mut dw = vec![<T as Float>::ZERO; g.w_shape().iter().product()];
        let mut db = vec![<T as Float>::ZERO; g.out_c];
        x.with_slice::<T, _>(|xv| dy.with_slice::<T, _>(|dyv| conv2d_backward_weight(&g, xv, dyv, &mut dw, Some(&mut db))));
        (Tensor::from_vec(dw, &g.w_shape()), Tensor::from_vec(db, &[g.out_c]))
    })
}

/// The backward of F (with or without bias), G or H (see the table in the module docs).
struct ConvBackward {
    which: Which,
    a: Tensor,
    b: Tensor,
    g: Conv2dGeometry,
    /// F only: a bias is the third input (its gradient is `sum_{n, i, j} u`).
    bias: bool,
}

impl Backward for ConvBackward {
    fn name(&self) -> &'static str {
        match self.which {
            Which::Forward => "conv2d",
            Which::InputGrad => "conv2d_backward_input",
            Which::WeightGrad => "conv2d_backward_weight",
        }
    }

    fn backward(&self, u: &Tensor, needs: &[bool]) -> crate::autograd::Grads {
        let (a, b, g) = (&self.a, &self.b, self.g);
        match self.which {
            Which::Forward => {
                let da = needs[0].then(|| conv2d_input_grad(u, b, g));
                if !self.bias {
                    return [da, needs[1].then(|| conv2d_weight_grad(a, u, g))].into();
                }
                let (db, dbias) = if needs[1] && needs[2] && !crate::autograd::is_grad_enabled() {
                    // A plain backward: weight and bias gradients in one pass over dy.
                    let (dw, dbias) = weight_and_bias_grad(a, u, g);
                    (Some(dw), Some(dbias))
                } else {
                    (needs[1].then(|| conv2d_weight_grad(a, u, g)), needs[2].then(|| u.sum_dims(&[0, 2, 3], false)))
                };
                [da, db, dbias].into()
            }
            Which::InputGrad => {
                [needs[0].then(|| conv2d(u, b, None, g)), needs[1].then(|| conv2d_weight_grad(u, a, g))].into()
            }
            Which::WeightGrad => {
                [needs[0].then(|| conv2d_input_grad(b, u, g)), needs[1].then(|| conv2d(a, u, None, g))].into()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, one output element at a time, with explicit bounds checks.
    fn naive_forward(g: &Conv2dGeometry, x: &[f64], w: &[f64]) -> Vec<f64> {
        let (oh, ow) = g.out_hw();
        let (cg, og) = (g.in_c / g.groups, g.out_c / g.groups);
        let mut y = vec![0.0; g.n * g.out_c * oh * ow];
        for n in 0..g.n {
            for o in 0..g.out_c {
                for i in 0..oh {
                    for j in 0..ow {
                        let mut acc = 0.0;
                        for c in 0..cg {
                            for p in 0..g.kh {
                                for q in 0..g.kw {
                                    let hi = (i * g.stride.0 + p * g.dilation.0) as isize - g.padding.0 as isize;
                                    let wi = (j * g.stride.1 + q * g.dilation.1) as isize - g.padding.1 as isize;
                                    if hi < 0 || wi < 0 || hi as usize >= g.h || wi as usize >= g.w {
                                        continue;
                                    }
                                    let xc = (o / og) * cg + c;
                                    acc += x[((n * g.in_c + xc) * g.h + hi as usize) * g.w + wi as usize]
                                        * w[((o * cg + c) * g.kh + p) * g.kw + q];
                                }
                            }
                        }
                        y[((n * g.out_c + o) * oh + i) * ow + j] = acc;
                    }
                }
            }
        }
        y
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn value_functions_match_the_definition_and_are_adjoint() {
        let mut seed = 1u64;
        let mut rnd = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) as f64 / (1u64 << 31) as f64) - 0.5
        };
        for &(h, w, kh, kw, stride, padding, dilation, groups) in &[
            (5, 4, 3, 2, (1, 1), (0, 0), (1, 1), 1),
            (7, 6, 3, 2, (2, 1), (1, 2), (2, 1), 2),
            (4, 9, 2, 3, (1, 3), (1, 1), (1, 2), 3),
            (3, 3, 3, 3, (2, 2), (1, 1), (1, 1), 1),
            (1, 8, 1, 3, (1, 2), (0, 3), (1, 3), 1),
        ] {
            let g =
                Conv2dGeometry { n: 2, in_c: 6, h, w, out_c: 3 * groups, kh, kw, stride, padding, dilation, groups };
            let x: Vec<f64> = (0..g.x_shape().iter().product()).map(|_| rnd()).collect();
            let wt: Vec<f64> = (0..g.w_shape().iter().product()).map(|_| rnd()).collect();
            let dy: Vec<f64> = (0..g.y_shape().iter().product()).map(|_| rnd()).collect();
            let mut y = vec![f64::NAN; dy.len()];
            conv2d_forward(&g, &x, &wt, None, &mut y);
            let expected = naive_forward(&g, &x, &wt);
            for (a, b) in y.iter().zip(&expected) {
                assert!((a - b).abs() < 1e-12, "{g:?}: {a} vs {b}");
            }
            let mut dx = vec![f64::NAN; x.len()];
            conv2d_backward_input(&g, &dy, &wt, &mut dx);
            let mut dw = vec![f64::NAN; wt.len()];
            conv2d_backward_weight(&g, &x, &dy, &mut dw, None);
            let (a, b, c) = (dot(&y, &dy), dot(&x, &dx), dot(&wt, &dw));
            assert!((a - b).abs() < 1e-10 && (a - c).abs() < 1e-10, "{g:?}: adjoints {a} {b} {c}");
        }
    }
}
