//! Pooling layers: [`MaxPool2d`], [`AvgPool2d`], [`AdaptiveAvgPool2d`] (`torch.nn` names and defaults).
//!
//! ```text
//! max:      y[n, c, i, j] = max_{p < kh, q < kw} x[n, c, i sh - ph + p, j sw - pw + q]   (padding = -inf)
//!           dx = dy routed to each window's argmax
//! avg:      y[n, c, i, j] = 1/(kh kw) sum_{p, q} x[n, c, i sh - ph + p, j sw - pw + q]   (padding = 0, counted)
//!           (without count_include_pad: divided by the number of in-bounds taps instead)
//!           dx = each dy spread evenly over its window
//! adaptive: y[n, c, i, j] = mean of x[n, c, h0(i)..h1(i), w0(j)..w1(j)],  h0(i) = floor(i H / oh),
//!           h1(i) = ceil((i + 1) H / oh)  (and likewise for w); dx = each dy spread evenly over its window
//! ```
//! Output size without ceil mode: `(H + 2 ph - kh) / sh + 1`.
//!
//! Max pooling is one op ([`max_pool2d_op`]) on the kernels crate's `pool::max_pool2d_forward` (values and
//! the flat in-plane argmax of each window, first maximum on ties, a NaN wins) and `max_pool2d_backward`
//! (`dx[argmax] += dy`). Under `create_graph` the backward is the same scatter written as a differentiable
//! `scatter_add` (whose own derivative is a `gather` at the argmax).

use super::functional::{adaptive_avg_pool2d, avg_pool2d, max_pool2d};
use super::Module;
use crate::autograd::Backward;
use crate::tensor::{Float, Tensor};
use tensorgrad_kernels::pool::{self as kpool, Pool2dGeometry};

/// Max pooling of a 4-D `x [n, c, h, w]` (shapes and sizes checked by `functional::max_pool2d`):
/// `[n, c, oh, ow]`, with the argmax of each window saved for the backward.
#[track_caller]
pub(crate) fn max_pool2d_op(
    x: &Tensor,
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
) -> Tensor {
    let _p = crate::profile::op_scope("max_pool2d");
    let x = x.contiguous();
    let s = x.shape();
    let g = Pool2dGeometry {
        n: s[0],
        c: s[1],
        h: s[2],
        w: s[3],
        kh: kernel.0,
        kw: kernel.1,
        stride,
        padding,
        dilation: (1, 1),
        ceil_mode: false,
    };
    let mut argmax = vec![0usize; g.output_len()];
    let y = crate::dispatch_float!(x.dtype(), "MaxPool2d", T => {
        let mut y = vec![<T as Float>::ZERO; g.output_len()];
        x.with_slice::<T, _>(|xv| kpool::max_pool2d_forward(&g, xv, &mut y, &mut argmax));
        Tensor::from_vec(y, &[g.n, g.c, g.out_h(), g.out_w()])
    });
    Tensor::from_op(y, &[&x], || MaxPoolBackward { g, argmax })
}

/// `dx[n, c, argmax[n, c, i, j]] += dy[n, c, i, j]`.
struct MaxPoolBackward {
    g: Pool2dGeometry,
    /// Flat in-plane index of each window's maximum, `[n, c, oh, ow]`.
    argmax: Vec<usize>,
}

impl Backward for MaxPoolBackward {
    fn name(&self) -> &'static str {
        "max_pool2d"
    }

    fn backward(&self, dy: &Tensor, needs: &[bool]) -> crate::autograd::Grads {
        if !needs[0] {
            return vec![None].into();
        }
        let g = &self.g;
        let (planes, hw, ohw) = (g.n * g.c, g.h * g.w, g.out_h() * g.out_w());
        let dx = if crate::autograd::is_grad_enabled() && dy.requires_grad() {
            // create_graph: the same scatter as a differentiable op.
            let index: Vec<i64> = self.argmax.iter().map(|&i| i as i64).collect();
            let index = Tensor::from_vec(index, &[planes, ohw]);
            Tensor::zeros_dtype(&[planes, hw], dy.dtype())
                .scatter_add(1, &index, &dy.reshape([planes, ohw]))
                .reshape([g.n, g.c, g.h, g.w])
        } else {
            let dy = dy.contiguous();
            crate::dispatch_float!(dy.dtype(), "MaxPool2d", T => {
                let mut dx = vec![<T as Float>::ZERO; g.input_len()];
                dy.with_slice::<T, _>(|d| kpool::max_pool2d_backward(g, d, &self.argmax, &mut dx));
                Tensor::from_vec(dx, &[g.n, g.c, g.h, g.w])
            })
        };
        vec![Some(dx)].into()
    }

    fn saved_bytes(&self) -> usize {
        self.argmax.len() * std::mem::size_of::<usize>()
    }
}

fn size_repr((a, b): (usize, usize)) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("({a}, {b})")
    }
}

/// Max over `kernel_size` windows.
///
/// # Shapes
/// `[N, C, H, W]` (or `[C, H, W]`) -> `[N, C, (H + 2 ph - kh) / sh + 1, (W + 2 pw - kw) / sw + 1]`.
///
/// # Panics
/// `forward` panics on a wrong rank, padding over half the kernel, or a kernel larger than the padded input.
pub struct MaxPool2d {
    /// `(kh, kw)`.
    pub kernel_size: (usize, usize),
    /// `(sh, sw)`; defaults to `kernel_size`.
    pub stride: (usize, usize),
    /// `-inf` padding `(ph, pw)` on each side.
    pub padding: (usize, usize),
}

impl MaxPool2d {
    /// `MaxPool2d(kernel_size)`: stride = kernel_size, no padding.
    pub fn new(kernel_size: (usize, usize)) -> MaxPool2d {
        MaxPool2d { kernel_size, stride: kernel_size, padding: (0, 0) }
    }

    /// With an explicit stride and padding.
    pub fn with_options(kernel_size: (usize, usize), stride: (usize, usize), padding: (usize, usize)) -> MaxPool2d {
        MaxPool2d { kernel_size, stride, padding }
    }
}

impl Module for MaxPool2d {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        max_pool2d(x, self.kernel_size, self.stride, self.padding)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }

    fn describe(&self) -> String {
        format!(
            "MaxPool2d(kernel_size={}, stride={}, padding={}, dilation=1, ceil_mode=False)",
            size_repr(self.kernel_size),
            size_repr(self.stride),
            size_repr(self.padding)
        )
    }
}

/// Mean over `kernel_size` windows; zero padding is included in the count unless `count_include_pad` is
/// false.
///
/// # Shapes
/// As [`MaxPool2d`].
///
/// # Panics
/// As [`MaxPool2d`].
pub struct AvgPool2d {
    /// `(kh, kw)`.
    pub kernel_size: (usize, usize),
    /// `(sh, sw)`; defaults to `kernel_size`.
    pub stride: (usize, usize),
    /// Zero padding `(ph, pw)` on each side.
    pub padding: (usize, usize),
    /// Whether padded zeros count towards each window's divisor (default `true`).
    pub count_include_pad: bool,
}

impl AvgPool2d {
    /// `AvgPool2d(kernel_size)`: stride = kernel_size, no padding.
    pub fn new(kernel_size: (usize, usize)) -> AvgPool2d {
        AvgPool2d::with_options(kernel_size, kernel_size, (0, 0))
    }

    /// With an explicit stride and padding (`count_include_pad` true; set the field to change it).
    pub fn with_options(kernel_size: (usize, usize), stride: (usize, usize), padding: (usize, usize)) -> AvgPool2d {
        AvgPool2d { kernel_size, stride, padding, count_include_pad: true }
    }
}

impl Module for AvgPool2d {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.count_include_pad)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }

    fn describe(&self) -> String {
        format!(
            "AvgPool2d(kernel_size={}, stride={}, padding={})",
            size_repr(self.kernel_size),
            size_repr(self.stride),
            size_repr(self.padding)
        )
    }
}

/// Mean over windows chosen so the output has `output_size`.
///
/// # Shapes
/// `[N, C, H, W]` (or `[C, H, W]`) -> `[N, C, output_size.0, output_size.1]`.
///
/// # Panics
/// `forward` panics on a wrong rank.
pub struct AdaptiveAvgPool2d {
    /// `(oh, ow)`.
    pub output_size: (usize, usize),
}

impl AdaptiveAvgPool2d {
    /// `AdaptiveAvgPool2d(output_size)`.
    pub fn new(output_size: (usize, usize)) -> AdaptiveAvgPool2d {
        AdaptiveAvgPool2d { output_size }
    }
}

impl Module for AdaptiveAvgPool2d {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        adaptive_avg_pool2d(x, self.output_size)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }

    fn describe(&self) -> String {
        format!("AdaptiveAvgPool2d(output_size={})", size_repr(self.output_size))
    }
}
