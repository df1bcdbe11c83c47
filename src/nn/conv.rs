//! [`Conv1d`] and [`Conv2d`]: convolution layers (`torch.nn.Conv1d`, `torch.nn.Conv2d`).
//!
//! ```text
//! forward:  y[n, o, i, j] = b[o] + sum_{c, p, q} x[n, g C_g + c, i s_h - p_h + p d_h, j s_w - p_w + q d_w] w[o, c, p, q]
//! backward: dx, dw are the adjoint convolutions of dy (see `ops/conv.rs`), db[o] = sum_{n, i, j} dy[n, o, i, j]
//! ```
//! with groups `g = o / (C_out / groups)`, `C_g = C_in / groups`. Conv1d is Conv2d with a kernel of height 1.
//!
//! Init (PyTorch's default): `w, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, `fan_in = C_in / groups * prod(kernel)`.

use super::functional::{conv1d, conv2d, py_bool};
use super::{init, Module};
use crate::error::panic_msg;
use crate::tensor::{DType, Tensor};

/// Checks channel counts against groups.
#[track_caller]
fn check_groups(layer: &str, in_channels: usize, out_channels: usize, groups: usize) {
    if groups == 0 || !in_channels.is_multiple_of(groups) || !out_channels.is_multiple_of(groups) {
        panic_msg(format!(
            "{layer}: in_channels ({in_channels}) and out_channels ({out_channels}) must both be divisible by groups ({groups})"
        ));
    }
}

/// Makes and initializes a conv weight (and bias) of `shape`.
fn conv_params(shape: &[usize], bias: bool, dtype: DType) -> (Tensor, Option<Tensor>) {
    let weight = Tensor::zeros_dtype(shape, dtype);
    let b = bias.then(|| Tensor::zeros_dtype(&[shape[0]], dtype));
    init::default_linear_init(&weight, b.as_ref());
    (weight.requires_grad_(), b.map(Tensor::requires_grad_))
}

/// 2-D convolution over `[N, C_in, H, W]` inputs.
///
/// # Shapes
/// `[N, C_in, H, W]` (or `[C_in, H, W]`) -> `[N, C_out, H_out, W_out]`,
/// `H_out = (H + 2 padding.0 - dilation.0 (kernel.0 - 1) - 1) / stride.0 + 1`;
/// `weight [C_out, C_in / groups, kernel.0, kernel.1]`, `bias [C_out]`.
///
/// # Panics
/// `forward` panics on a wrong rank or channel count, or a kernel larger than the padded input.
///
/// ```
/// use tensorgrad::nn::{Conv2d, Module};
/// use tensorgrad::{DType, Tensor};
///
/// // 3 -> 8 channels, 3x3 kernel, stride 2, padding 1: 32x32 -> 16x16.
/// let conv = Conv2d::with_options(3, 8, (3, 3), (2, 2), (1, 1), (1, 1), 1, true, DType::F32);
/// assert_eq!(conv.weight.shape(), &[8, 3, 3, 3]);
/// assert_eq!(conv.forward(&Tensor::randn(&[2, 3, 32, 32])).shape(), &[2, 8, 16, 16]);
/// ```
pub struct Conv2d {
    /// `C_in`.
    pub in_channels: usize,
    /// `C_out`.
    pub out_channels: usize,
    /// `(kh, kw)`.
    pub kernel_size: (usize, usize),
    /// `(sh, sw)`.
    pub stride: (usize, usize),
    /// Zero padding `(ph, pw)` on each side.
    pub padding: (usize, usize),
    /// Spacing between kernel taps `(dh, dw)`.
    pub dilation: (usize, usize),
    /// Channel groups.
    pub groups: usize,
    /// `[C_out, C_in / groups, kh, kw]`.
    pub weight: Tensor,
    /// `[C_out]`, or `None`.
    pub bias: Option<Tensor>,
}

impl Conv2d {
    /// `Conv2d(in, out, kernel_size)`: stride 1, no padding, dilation 1, 1 group, bias, f32.
    pub fn new(in_channels: usize, out_channels: usize, kernel_size: (usize, usize)) -> Conv2d {
        Conv2d::with_options(in_channels, out_channels, kernel_size, (1, 1), (0, 0), (1, 1), 1, true, DType::F32)
    }

    /// Every option.
    ///
    /// # Panics
    /// If the channel counts are not divisible by `groups`.
    #[allow(clippy::too_many_arguments)]
    #[track_caller]
    pub fn with_options(
        in_channels: usize,
        out_channels: usize,
        kernel_size: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
        dilation: (usize, usize),
        groups: usize,
        bias: bool,
        dtype: DType,
    ) -> Conv2d {
        check_groups("Conv2d", in_channels, out_channels, groups);
        let (weight, bias) =
            conv_params(&[out_channels, in_channels / groups, kernel_size.0, kernel_size.1], bias, dtype);
        Conv2d { in_channels, out_channels, kernel_size, stride, padding, dilation, groups, weight, bias }
    }
}

impl Module for Conv2d {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        conv2d(x, &self.weight, self.bias.as_ref(), self.stride, self.padding, self.dilation, self.groups)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = vec![("weight".to_string(), self.weight.clone())];
        p.extend(self.bias.clone().map(|b| ("bias".to_string(), b)));
        p
    }

    fn describe(&self) -> String {
        let pair = |(a, b): (usize, usize)| format!("({a}, {b})");
        let mut s = format!(
            "Conv2d({}, {}, kernel_size={}, stride={}",
            self.in_channels,
            self.out_channels,
            pair(self.kernel_size),
            pair(self.stride)
        );
        if self.padding != (0, 0) {
            s += &format!(", padding={}", pair(self.padding));
        }
        if self.dilation != (1, 1) {
            s += &format!(", dilation={}", pair(self.dilation));
        }
        if self.groups != 1 {
            s += &format!(", groups={}", self.groups);
        }
        if self.bias.is_none() {
            s += &format!(", bias={}", py_bool(false));
        }
        s + ")"
    }
}

/// 1-D convolution over `[N, C_in, L]` inputs.
///
/// # Shapes
/// `[N, C_in, L]` (or `[C_in, L]`) -> `[N, C_out, L_out]`, `L_out = (L + 2 padding - dilation (k - 1) - 1) / stride + 1`;
/// `weight [C_out, C_in / groups, k]`, `bias [C_out]`.
///
/// # Panics
/// `forward` panics on a wrong rank or channel count, or a kernel larger than the padded input.
pub struct Conv1d {
    /// `C_in`.
    pub in_channels: usize,
    /// `C_out`.
    pub out_channels: usize,
    /// `k`.
    pub kernel_size: usize,
    /// Step between windows.
    pub stride: usize,
    /// Zero padding on each side.
    pub padding: usize,
    /// Spacing between kernel taps.
    pub dilation: usize,
    /// Channel groups.
    pub groups: usize,
    /// `[C_out, C_in / groups, k]`.
    pub weight: Tensor,
    /// `[C_out]`, or `None`.
    pub bias: Option<Tensor>,
}

impl Conv1d {
    /// `Conv1d(in, out, kernel_size)`: stride 1, no padding, dilation 1, 1 group, bias, f32.
    pub fn new(in_channels: usize, out_channels: usize, kernel_size: usize) -> Conv1d {
        Conv1d::with_options(in_channels, out_channels, kernel_size, 1, 0, 1, 1, true, DType::F32)
    }

    /// Every option.
    ///
    /// # Panics
    /// If the channel counts are not divisible by `groups`.
    #[allow(clippy::too_many_arguments)]
    #[track_caller]
    pub fn with_options(
        in_channels: usize,
        out_channels: usize,
        kernel_size: usize,
        stride: usize,
        padding: usize,
        dilation: usize,
        groups: usize,
        bias: bool,
        dtype: DType,
    ) -> Conv1d {
        check_groups("Conv1d", in_channels, out_channels, groups);
        let (weight, bias) = conv_params(&[out_channels, in_channels / groups, kernel_size], bias, dtype);
        Conv1d { in_channels, out_channels, kernel_size, stride, padding, dilation, groups, weight, bias }
    }
}

impl Module for Conv1d {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        conv1d(x, &self.weight, self.bias.as_ref(), self.stride, self.padding, self.dilation, self.groups)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = vec![("weight".to_string(), self.weight.clone())];
        p.extend(self.bias.clone().map(|b| ("bias".to_string(), b)));
        p
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "Conv1d({}, {}, kernel_size=({},), stride=({},)",
            self.in_channels, self.out_channels, self.kernel_size, self.stride
        );
        if self.padding != 0 {
            s += &format!(", padding=({},)", self.padding);
        }
        if self.dilation != 1 {
            s += &format!(", dilation=({},)", self.dilation);
        }
        if self.groups != 1 {
            s += &format!(", groups={}", self.groups);
        }
        if self.bias.is_none() {
            s += &format!(", bias={}", py_bool(false));
        }
        s + ")"
    }
}
