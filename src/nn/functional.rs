//! Stateless layer functions, like `torch.nn.functional`: the layers in this module call these with their
//! parameters. Fused ops live beside their layers and are re-exported here (`layer_norm` and `batch_norm`
//! from `norm`, the losses from `loss`), so this is the one namespace to look for a function.
//!
//! | function | forward | backward |
//! |---|---|---|
//! | linear | `y = x W^T + b` | `dx = dy W`, `dW = dy^T x`, `db = sum dy` (by matmul's backward) |
//! | conv1d / conv2d | cross-correlation, see `ops/conv.rs` | its adjoint convolutions |
//! | max_pool2d | `y = max` over each window (padding is `-inf`) | `dy` to the window's argmax (see `pool.rs`) |
//! | avg_pool2d | mean over each `kh x kw` window (zero padding counted by default) | `dy / count` to each tap (a depthwise conv) |
//! | adaptive_avg_pool2d | `y = A_h x A_w^T`, `A` rows average windows `[floor(i H/o), ceil((i+1) H/o))` | `dx = A_h^T dy A_w` |
//! | dropout | `y = x * m / (1 - p)`, `m ~ Bernoulli(1 - p)` | `dx = dy * m / (1 - p)` |
//! | embedding | `y[.., :] = W[idx[..], :]` | rows of `dy` added into `dW` (none into `padding_idx`) |
//! | maxout | `y = max` over `pieces` consecutive features | `dy` to the argmax |

use crate::error::panic_msg;
use crate::ops::conv::{conv2d as conv2d_op, Conv2dGeometry};
use crate::tensor::{DType, Tensor};

pub use super::loss::{
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, huber_loss, kl_div, l1_loss, mse_loss,
    nll_loss, smooth_l1_loss, Reduction,
};
pub use super::norm::{batch_norm, layer_norm};

/// `y = x W^T + b` over the last dim, for any number of leading dims.
///
/// # Shapes
/// `x [.., in]`, `weight [out, in]`, `bias [out]` -> `[.., out]`.
///
/// # Panics
/// If `weight` is not 2-D, `x`'s last dim is not `in`, or `bias` is not `[out]`.
#[track_caller]
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
    if weight.rank() != 2 {
        panic_msg(format!("Linear: expected a 2-D weight [out_features, in_features], got shape {:?}", weight.shape()));
    }
    let (out_f, in_f) = (weight.shape()[0], weight.shape()[1]);
    if x.rank() == 0 || x.shape()[x.rank() - 1] != in_f {
        panic_msg(format!(
            "Linear: expected input with last dimension in_features={in_f} (shape [.., {in_f}]), got shape {:?}",
            x.shape()
        ));
    }
    let y = x.matmul(&weight.t());
    match bias {
        Some(b) => {
            if b.shape() != [out_f] {
                panic_msg(format!("Linear: expected bias of shape [{out_f}], got {:?}", b.shape()));
            }
            y + b
        }
        None => y,
    }
}

/// 2-D convolution (cross-correlation) of an NCHW batch, `torch.nn.functional.conv2d`.
///
/// # Shapes
/// `x [N, C_in, H, W]` (or `[C_in, H, W]`), `weight [C_out, C_in / groups, kh, kw]`, `bias [C_out]` ->
/// `[N, C_out, H_out, W_out]` with `H_out = (H + 2 padding.0 - dilation.0 (kh - 1) - 1) / stride.0 + 1`.
///
/// # Panics
/// On a wrong rank, a channel count that does not match the weight or groups, or a kernel larger than the
/// padded input.
#[track_caller]
pub fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: (usize, usize),
    padding: (usize, usize),
    dilation: (usize, usize),
    groups: usize,
) -> Tensor {
    conv_nd("Conv2d", 2, x, weight, bias, stride, padding, dilation, groups)
}

/// 1-D convolution (cross-correlation) of an NCL batch, `torch.nn.functional.conv1d`.
///
/// # Shapes
/// `x [N, C_in, L]` (or `[C_in, L]`), `weight [C_out, C_in / groups, k]`, `bias [C_out]` ->
/// `[N, C_out, L_out]`, `L_out = (L + 2 padding - dilation (k - 1) - 1) / stride + 1`.
///
/// # Panics
/// As [`conv2d`].
#[track_caller]
pub fn conv1d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    padding: usize,
    dilation: usize,
    groups: usize,
) -> Tensor {
    conv_nd("Conv1d", 1, x, weight, bias, (1, stride), (0, padding), (1, dilation), groups)
}

/// Shared body of conv1d/conv2d: checks shapes, views 1-D as 2-D with height 1, adds the batch dim if absent.
#[allow(clippy::too_many_arguments)]
#[track_caller]
fn conv_nd(
    layer: &str,
    spatial: usize,
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: (usize, usize),
    padding: (usize, usize),
    dilation: (usize, usize),
    groups: usize,
) -> Tensor {
    let dims = if spatial == 1 { "[N, C, L] or [C, L]" } else { "[N, C, H, W] or [C, H, W]" };
    if x.rank() != spatial + 2 && x.rank() != spatial + 1 {
        panic_msg(format!(
            "{layer}: expected a {}-D or {}-D input {dims}, got shape {:?}",
            spatial + 1,
            spatial + 2,
            x.shape()
        ));
    }
    if weight.rank() != spatial + 2 {
        panic_msg(format!("{layer}: expected a {}-D weight, got shape {:?}", spatial + 2, weight.shape()));
    }
    if x.rank() == spatial + 1 {
        return conv_nd(layer, spatial, &x.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0);
    }
    if stride.0 == 0 || stride.1 == 0 || dilation.0 == 0 || dilation.1 == 0 || groups == 0 {
        panic_msg(format!("{layer}: stride, dilation and groups must be positive"));
    }
    let (x4, w4) = if spatial == 1 { (x.unsqueeze(2), weight.unsqueeze(2)) } else { (x.clone(), weight.clone()) };
    let (xs, ws) = (x4.shape(), w4.shape());
    let g = Conv2dGeometry {
        n: xs[0],
        in_c: xs[1],
        h: xs[2],
        w: xs[3],
        out_c: ws[0],
        kh: ws[2],
        kw: ws[3],
        stride,
        padding,
        dilation,
        groups,
    };
    if !g.out_c.is_multiple_of(groups) || ws[1] * groups != g.in_c {
        panic_msg(format!(
            "{layer}: expected input with {} channels (weight {:?}, groups={groups}), got input of shape {:?}",
            ws[1] * groups,
            weight.shape(),
            x.shape()
        ));
    }
    let (oh, ow) = g.out_hw();
    if oh == 0 || ow == 0 {
        panic_msg(format!(
            "{layer}: kernel {:?} (dilation {dilation:?}) is larger than the padded input of shape {:?} (padding {padding:?})",
            &weight.shape()[2..],
            x.shape()
        ));
    }
    if let Some(b) = bias {
        if b.shape() != [g.out_c] {
            panic_msg(format!("{layer}: expected bias of shape [{}], got {:?}", g.out_c, b.shape()));
        }
        if b.dtype() != x.dtype() || weight.dtype() != x.dtype() {
            panic_msg(format!(
                "{layer}: input, weight and bias must have the same dtype, got {}, {} and {}",
                x.dtype(),
                weight.dtype(),
                b.dtype()
            ));
        }
    }
    let y = conv2d_op(&x4, &w4, bias, g);
    if spatial == 1 {
        y.squeeze(2)
    } else {
        y
    }
}

/// Checks a pooling input and returns it as 4-D (adding a batch dim to `[C, H, W]`).
#[track_caller]
fn pool_input(layer: &str, x: &Tensor) -> (Tensor, bool) {
    match x.rank() {
        4 => (x.clone(), false),
        3 => (x.unsqueeze(0), true),
        _ => {
            panic_msg(format!("{layer}: expected a 3-D [C, H, W] or 4-D [N, C, H, W] input, got shape {:?}", x.shape()))
        }
    }
}

/// Output size of a pooling window along one dim (floor mode).
#[track_caller]
fn pool_out(layer: &str, size: usize, k: usize, s: usize, p: usize) -> usize {
    if k == 0 || s == 0 {
        panic_msg(format!("{layer}: kernel size and stride must be positive"));
    }
    if 2 * p > k {
        panic_msg(format!("{layer}: padding {p} should be at most half of the kernel size {k}"));
    }
    if size + 2 * p < k {
        panic_msg(format!("{layer}: kernel size {k} is larger than the padded input size {}", size + 2 * p));
    }
    (size + 2 * p - k) / s + 1
}

/// Max over each `kernel` window (padding with `-inf`), `torch.nn.functional.max_pool2d`. The gradient
/// goes to each window's maximum (the first one on ties).
///
/// # Shapes
/// `[N, C, H, W]` (or `[C, H, W]`) -> `[N, C, (H + 2 ph - kh) / sh + 1, (W + 2 pw - kw) / sw + 1]`.
///
/// # Panics
/// On a wrong rank, zero kernel or stride, padding over half the kernel, or a kernel larger than the input.
#[track_caller]
pub fn max_pool2d(x: &Tensor, kernel: (usize, usize), stride: (usize, usize), padding: (usize, usize)) -> Tensor {
    let (x4, squeeze) = pool_input("MaxPool2d", x);
    pool_out("MaxPool2d", x4.shape()[2], kernel.0, stride.0, padding.0);
    pool_out("MaxPool2d", x4.shape()[3], kernel.1, stride.1, padding.1);
    let y = super::pool::max_pool2d_op(&x4, kernel, stride, padding);
    if squeeze {
        y.squeeze(0)
    } else {
        y
    }
}

/// Mean over each `kernel` window, `torch.nn.functional.avg_pool2d`. With `count_include_pad` (PyTorch's
/// default) the zero padding counts towards the divisor `kh kw`; without, each window divides by its number
/// of in-bounds elements. Computed as a depthwise convolution with weights `1 / (kh kw)`.
///
/// # Shapes
/// As [`max_pool2d`].
///
/// # Panics
/// As [`max_pool2d`].
#[track_caller]
pub fn avg_pool2d(
    x: &Tensor,
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
    count_include_pad: bool,
) -> Tensor {
    let (x4, squeeze) = pool_input("AvgPool2d", x);
    let [n, c, h, w] = [x4.shape()[0], x4.shape()[1], x4.shape()[2], x4.shape()[3]];
    let oh = pool_out("AvgPool2d", h, kernel.0, stride.0, padding.0);
    let ow = pool_out("AvgPool2d", w, kernel.1, stride.1, padding.1);
    let taps = Tensor::full_dtype(&[1, 1, kernel.0, kernel.1], 1.0 / (kernel.0 * kernel.1) as f64, x.dtype());
    let planes = x4.reshape([n * c, 1, h, w]);
    let mut y = conv2d(&planes, &taps, None, stride, padding, (1, 1), 1).reshape([n, c, oh, ow]);
    if !count_include_pad && (padding.0 > 0 || padding.1 > 0) {
        // Fraction of each window inside the input, from the same pooling of a plane of ones.
        let ones = Tensor::ones_dtype(&[1, 1, h, w], x.dtype());
        let inside = conv2d(&ones, &taps, None, stride, padding, (1, 1), 1);
        y = y / inside;
    }
    if squeeze {
        y.squeeze(0)
    } else {
        y
    }
}

/// The `[out, size]` matrix whose row `i` averages the window `[floor(i size / out), ceil((i + 1) size / out))`.
fn adaptive_matrix(size: usize, out: usize, dtype: DType) -> Tensor {
    let mut m = vec![0.0; out * size];
    for i in 0..out {
        let start = i * size / out;
        let end = ((i + 1) * size).div_ceil(out);
        for j in start..end {
            m[i * size + j] = 1.0 / (end - start) as f64;
        }
    }
    Tensor::from_vec(m, &[out, size]).to_dtype(dtype)
}

/// Averages over windows chosen so the output is `output_size`, `torch.nn.functional.adaptive_avg_pool2d`.
/// Pooling is separable: `y = A_h x A_w^T` with the averaging matrices of each axis.
///
/// # Shapes
/// `[N, C, H, W]` (or `[C, H, W]`) -> `[N, C, out_h, out_w]`.
///
/// # Panics
/// On a wrong rank or a zero output size.
#[track_caller]
pub fn adaptive_avg_pool2d(x: &Tensor, output_size: (usize, usize)) -> Tensor {
    let (x4, squeeze) = pool_input("AdaptiveAvgPool2d", x);
    if output_size.0 == 0 || output_size.1 == 0 {
        panic_msg(format!("AdaptiveAvgPool2d: output size must be positive, got {output_size:?}"));
    }
    let (h, w) = (x4.shape()[2], x4.shape()[3]);
    let ah = adaptive_matrix(h, output_size.0, x.dtype());
    let aw = adaptive_matrix(w, output_size.1, x.dtype());
    let y = ah.matmul(&x4).matmul(&aw.t());
    if squeeze {
        y.squeeze(0)
    } else {
        y
    }
}

/// Inverted dropout, `torch.nn.functional.dropout`: in training, zeroes each element with probability `p`
/// (mask from the global seeded generator) and scales the rest by `1 / (1 - p)`; otherwise the identity.
///
/// # Shapes
/// Any; the output has the input's shape.
///
/// # Panics
/// If `p` is outside `[0, 1]`.
#[track_caller]
pub fn dropout(x: &Tensor, p: f64, training: bool) -> Tensor {
    if !(0.0..=1.0).contains(&p) {
        panic_msg(format!("Dropout: probability has to be between 0 and 1, but got {p}"));
    }
    if !training || p == 0.0 {
        return x.clone();
    }
    if p == 1.0 {
        return x * 0.0;
    }
    let keep = Tensor::uniform_dtype(x.shape(), 0.0, 1.0, x.dtype()).ge_scalar(p);
    let scale = Tensor::where_(
        &keep,
        &Tensor::full_dtype(&[], 1.0 / (1.0 - p), x.dtype()),
        &Tensor::zeros_dtype(&[], x.dtype()),
    );
    x * &scale
}

/// Looks up rows of `weight` by `i64` indices, `torch.nn.functional.embedding`. The row `padding_idx` (if
/// any) receives no gradient.
///
/// # Shapes
/// `indices [..]` (any shape, `i64`), `weight [num_embeddings, dim]` -> `[.., dim]`.
///
/// # Panics
/// If `indices` is not `i64`, `weight` is not 2-D, or an index is out of range.
#[track_caller]
pub fn embedding(indices: &Tensor, weight: &Tensor, padding_idx: Option<usize>) -> Tensor {
    if indices.dtype() != DType::I64 {
        panic_msg(format!(
            "Embedding: expected int64 indices, got dtype {} (shape {:?})",
            indices.dtype(),
            indices.shape()
        ));
    }
    if weight.rank() != 2 {
        panic_msg(format!("Embedding: expected a 2-D weight [num_embeddings, dim], got shape {:?}", weight.shape()));
    }
    let (num, dim) = (weight.shape()[0], weight.shape()[1]);
    let flat = indices.reshape([indices.numel()]);
    if let Some(bad) = flat.to_vec::<i64>().into_iter().find(|&i| i < 0 || i as usize >= num) {
        panic_msg(format!("Embedding: index {bad} is out of range for {num} embeddings"));
    }
    let mut rows = weight.index_select(0, &flat);
    if let Some(pad) = padding_idx {
        // Same values, but the padding rows come from a detached weight so no gradient reaches them.
        let is_pad = flat.eq_scalar(pad as f64).unsqueeze(1);
        rows = Tensor::where_(&is_pad, &weight.detach().index_select(0, &flat), &rows);
    }
    let mut shape = indices.shape().to_vec();
    shape.push(dim);
    rows.reshape(shape)
}

/// Maxout over the feature dim `dim`: splits it into groups of `pieces` consecutive features and keeps each
/// group's maximum (Goodfellow et al., 2013).
///
/// # Shapes
/// `[.., F, ..]` (F at `dim`) -> `[.., F / pieces, ..]`.
///
/// # Panics
/// If `F` is not divisible by `pieces`.
#[track_caller]
pub fn maxout(x: &Tensor, pieces: usize, dim: isize) -> Tensor {
    let d = crate::ops::normalize_dim("Maxout", dim, x.rank());
    let f = x.shape()[d];
    if pieces == 0 || !f.is_multiple_of(pieces) {
        panic_msg(format!(
            "Maxout: feature dim {d} of size {f} is not divisible by pieces={pieces} (shape {:?})",
            x.shape()
        ));
    }
    let mut shape = x.shape().to_vec();
    shape[d] = f / pieces;
    shape.insert(d + 1, pieces);
    x.reshape(shape).max_dim(d as isize + 1, false).0
}

/// Python's `repr` of a float (`0.1`, `1.0`, `1e-05`), for PyTorch-style `describe()` strings.
pub(crate) fn py_float(v: f64) -> String {
    if v != 0.0 && v.is_finite() && (v.abs() < 1e-4 || v.abs() >= 1e16) {
        let s = format!("{v:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = if let Some(d) = exp.strip_prefix('-') { ("-", d) } else { ("+", exp) };
        format!("{mant}e{sign}{digits:0>2}")
    } else {
        let s = format!("{v}");
        if s.contains('.') || s.contains("inf") || s.contains("NaN") {
            s
        } else {
            format!("{s}.0")
        }
    }
}

/// Python's `True` / `False`.
pub(crate) fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}
