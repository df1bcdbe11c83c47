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
//! The value functions (`conv2d_forward`, `conv2d_backward_input`, `conv2d_backward_weight`) are plain loops
//! over slices with the same geometry as the kernels crate's convolution, so they can be swapped for it.

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

    /// Calls `f(x_index, w_index, y_index)` for every multiply-accumulate of the convolution.
    #[inline(always)]
    fn for_each_tap(&self, mut f: impl FnMut(usize, usize, usize)) {
        let (oh, ow) = self.out_hw();
        let cg = self.in_c / self.groups;
        let og = self.out_c / self.groups;
        let (sh, sw) = self.stride;
        let (ph, pw) = self.padding;
        let (dh, dw) = self.dilation;
        for n in 0..self.n {
            for o in 0..self.out_c {
                let g = o / og;
                let y_base = (n * self.out_c + o) * oh * ow;
                for c in 0..cg {
                    let x_base = (n * self.in_c + g * cg + c) * self.h * self.w;
                    for p in 0..self.kh {
                        for q in 0..self.kw {
                            let w_index = ((o * cg + c) * self.kh + p) * self.kw + q;
                            for i in 0..oh {
                                let hi = (i * sh + p * dh) as isize - ph as isize;
                                if hi < 0 || hi as usize >= self.h {
                                    continue;
                                }
                                let x_row = x_base + hi as usize * self.w;
                                let y_row = y_base + i * ow;
                                for j in 0..ow {
                                    let wi = (j * sw + q * dw) as isize - pw as isize;
                                    if wi < 0 || wi as usize >= self.w {
                                        continue;
                                    }
                                    f(x_row + wi as usize, w_index, y_row + j);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// F: `y = conv(x, w)`; `y` is overwritten.
pub(crate) fn conv2d_forward<T: Float>(g: &Conv2dGeometry, x: &[T], w: &[T], y: &mut [T]) {
    y.fill(T::ZERO);
    g.for_each_tap(|xi, wi, yi| y[yi] += x[xi] * w[wi]);
}

/// G: `dx = d<y, dy>/dx` for `y = conv(x, w)`; `dx` is overwritten.
pub(crate) fn conv2d_backward_input<T: Float>(g: &Conv2dGeometry, dy: &[T], w: &[T], dx: &mut [T]) {
    dx.fill(T::ZERO);
    g.for_each_tap(|xi, wi, yi| dx[xi] += dy[yi] * w[wi]);
}

/// H: `dw = d<y, dy>/dw` for `y = conv(x, w)`; `dw` is overwritten.
pub(crate) fn conv2d_backward_weight<T: Float>(g: &Conv2dGeometry, x: &[T], dy: &[T], dw: &mut [T]) {
    dw.fill(T::ZERO);
    g.for_each_tap(|xi, wi, yi| dw[wi] += dy[yi] * x[xi]);
}

#[derive(Clone, Copy)]
enum Which {
    Forward,
    InputGrad,
    WeightGrad,
}

/// Runs one of F, G, H on two tensors, producing a tensor of `out_shape`.
fn run(which: Which, g: &Conv2dGeometry, a: &Tensor, b: &Tensor, out_shape: [usize; 4]) -> Tensor {
    crate::dispatch_float!(a.dtype(), "conv2d", T => {
        let (av, bv) = (a.contiguous_vec::<T>(), b.contiguous_vec::<T>());
        let mut out = vec![T::ZERO; out_shape.iter().product()];
        match which {
            Which::Forward => conv2d_forward(g, &av, &bv, &mut out),
            Which::InputGrad => conv2d_backward_input(g, &av, &bv, &mut out),
            Which::WeightGrad => conv2d_backward_weight(g, &av, &bv, &mut out),
        }
        Tensor::from_vec(out, &out_shape)
    })
}

/// F as a differentiable op: `x [n, in_c, h, w]`, `w [out_c, in_c/groups, kh, kw]` -> `[n, out_c, oh, ow]`.
/// Shapes are checked by the caller (`nn::functional::conv2d`).
#[track_caller]
pub(crate) fn conv2d(x: &Tensor, w: &Tensor, g: Conv2dGeometry) -> Tensor {
    debug_assert_eq!(x.shape(), g.x_shape());
    debug_assert_eq!(w.shape(), g.w_shape());
    let y = run(Which::Forward, &g, x, w, g.y_shape());
    Tensor::from_op(y, &[x, w], || ConvBackward { which: Which::Forward, a: x.clone(), b: w.clone(), g })
}

/// G as a differentiable op: `dy [n, out_c, oh, ow]`, `w` -> `dx [n, in_c, h, w]`.
fn conv2d_input_grad(dy: &Tensor, w: &Tensor, g: Conv2dGeometry) -> Tensor {
    let dx = run(Which::InputGrad, &g, dy, w, g.x_shape());
    Tensor::from_op(dx, &[dy, w], || ConvBackward { which: Which::InputGrad, a: dy.clone(), b: w.clone(), g })
}

/// H as a differentiable op: `x`, `dy` -> `dw [out_c, in_c/groups, kh, kw]`.
fn conv2d_weight_grad(x: &Tensor, dy: &Tensor, g: Conv2dGeometry) -> Tensor {
    let dw = run(Which::WeightGrad, &g, x, dy, g.w_shape());
    Tensor::from_op(dw, &[x, dy], || ConvBackward { which: Which::WeightGrad, a: x.clone(), b: dy.clone(), g })
}

/// The backward of F, G or H (see the table in the module docs).
struct ConvBackward {
    which: Which,
    a: Tensor,
    b: Tensor,
    g: Conv2dGeometry,
}

impl Backward for ConvBackward {
    fn name(&self) -> &'static str {
        match self.which {
            Which::Forward => "conv2d",
            Which::InputGrad => "conv2d_backward_input",
            Which::WeightGrad => "conv2d_backward_weight",
        }
    }

    fn backward(&self, u: &Tensor, needs: &[bool]) -> Vec<Option<Tensor>> {
        let (a, b, g) = (&self.a, &self.b, self.g);
        let (da, db) = match self.which {
            Which::Forward => {
                (needs[0].then(|| conv2d_input_grad(u, b, g)), needs[1].then(|| conv2d_weight_grad(a, u, g)))
            }
            Which::InputGrad => (needs[0].then(|| conv2d(u, b, g)), needs[1].then(|| conv2d_weight_grad(u, a, g))),
            Which::WeightGrad => (needs[0].then(|| conv2d_input_grad(b, u, g)), needs[1].then(|| conv2d(a, u, g))),
        };
        vec![da, db]
    }
}
