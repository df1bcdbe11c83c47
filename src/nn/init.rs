//! Parameter initializers, like `torch.nn.init`: each fills a tensor in place (under `no_grad`, unrecorded)
//! from the global seeded generator and returns it.
//!
//! For a weight of shape `[out, in, k..]`: `fan_in = in * prod(k)`, `fan_out = out * prod(k)`.
//!
//! | initializer | distribution |
//! |---|---|
//! | `uniform_(a, b)` / `normal_(mean, std)` | U(a, b) / N(mean, std^2) |
//! | `xavier_uniform_(gain)` | U(-a, a), `a = gain sqrt(6 / (fan_in + fan_out))` |
//! | `xavier_normal_(gain)` | N(0, std^2), `std = gain sqrt(2 / (fan_in + fan_out))` |
//! | `kaiming_uniform_(a, mode, nl)` | U(-b, b), `b = sqrt(3) gain / sqrt(fan_mode)`, `gain = calculate_gain(nl, a)` |
//! | `kaiming_normal_(a, mode, nl)` | N(0, std^2), `std = gain / sqrt(fan_mode)` |
//! | `orthogonal_(gain)` | `gain Q` from the QR decomposition of a normal matrix, `R`'s diagonal made positive |
//!
//! Backward: none (initializers are not recorded).

use crate::error::panic_msg;
use crate::tensor::Tensor;

/// The nonlinearity a layer is followed by, for [`calculate_gain`] (PyTorch's strings, as an enum).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nonlinearity {
    /// `linear` (and the conv/conv_transpose variants): gain 1.
    Linear,
    /// `sigmoid`: gain 1.
    Sigmoid,
    /// `tanh`: gain 5/3.
    Tanh,
    /// `relu`: gain sqrt(2).
    Relu,
    /// `leaky_relu` with slope `param` (default 0.01): gain `sqrt(2 / (1 + slope^2))`.
    LeakyRelu,
    /// `selu`: gain 3/4.
    Selu,
}

/// Which fan kaiming initializers scale by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    /// Preserves the variance of activations in the forward pass (default).
    FanIn,
    /// Preserves the variance of gradients in the backward pass.
    FanOut,
}

/// The recommended gain for a nonlinearity, `torch.nn.init.calculate_gain`. `param` is LeakyReLU's slope.
pub fn calculate_gain(nonlinearity: Nonlinearity, param: Option<f64>) -> f64 {
    match nonlinearity {
        Nonlinearity::Linear | Nonlinearity::Sigmoid => 1.0,
        Nonlinearity::Tanh => 5.0 / 3.0,
        Nonlinearity::Relu => 2f64.sqrt(),
        Nonlinearity::LeakyRelu => {
            let slope = param.unwrap_or(0.01);
            (2.0 / (1.0 + slope * slope)).sqrt()
        }
        Nonlinearity::Selu => 0.75,
    }
}

/// `(fan_in, fan_out)` of a weight `[out, in, k..]`, `torch.nn.init._calculate_fan_in_and_fan_out`.
///
/// # Panics
/// If the tensor has fewer than 2 dims.
#[track_caller]
pub fn calculate_fan_in_and_fan_out(t: &Tensor) -> (usize, usize) {
    if t.rank() < 2 {
        panic_msg(format!(
            "init: fan in and fan out can not be computed for a tensor with fewer than 2 dimensions, got shape {:?}",
            t.shape()
        ));
    }
    let receptive: usize = t.shape()[2..].iter().product();
    (t.shape()[1] * receptive, t.shape()[0] * receptive)
}

/// Overwrites `t` with `values` (row-major, f64) without recording.
fn fill_with(t: &Tensor, values: Tensor) -> Tensor {
    crate::no_grad(|| t.copy_(&values.to_dtype(t.dtype())));
    t.clone()
}

/// Fills with U(a, b).
pub fn uniform_(t: &Tensor, a: f64, b: f64) -> Tensor {
    fill_with(t, Tensor::uniform_dtype(t.shape(), a, b, crate::DType::F64))
}

/// Fills with N(mean, std^2).
pub fn normal_(t: &Tensor, mean: f64, std: f64) -> Tensor {
    fill_with(t, Tensor::normal_dtype(t.shape(), mean, std, crate::DType::F64))
}

/// Fills with `value`.
pub fn constant_(t: &Tensor, value: f64) -> Tensor {
    crate::no_grad(|| t.fill_(value));
    t.clone()
}

/// Fills with 0.
pub fn zeros_(t: &Tensor) -> Tensor {
    constant_(t, 0.0)
}

/// Fills with 1.
pub fn ones_(t: &Tensor) -> Tensor {
    constant_(t, 1.0)
}

/// Glorot uniform: U(-a, a) with `a = gain sqrt(6 / (fan_in + fan_out))`.
///
/// # Panics
/// If the tensor has fewer than 2 dims.
#[track_caller]
pub fn xavier_uniform_(t: &Tensor, gain: f64) -> Tensor {
    let (fan_in, fan_out) = calculate_fan_in_and_fan_out(t);
    let a = gain * (6.0 / (fan_in + fan_out) as f64).sqrt();
    uniform_(t, -a, a)
}

/// Glorot normal: N(0, std^2) with `std = gain sqrt(2 / (fan_in + fan_out))`.
///
/// # Panics
/// If the tensor has fewer than 2 dims.
#[track_caller]
pub fn xavier_normal_(t: &Tensor, gain: f64) -> Tensor {
    let (fan_in, fan_out) = calculate_fan_in_and_fan_out(t);
    normal_(t, 0.0, gain * (2.0 / (fan_in + fan_out) as f64).sqrt())
}

#[track_caller]
fn kaiming_std(t: &Tensor, a: f64, mode: FanMode, nonlinearity: Nonlinearity) -> f64 {
    let (fan_in, fan_out) = calculate_fan_in_and_fan_out(t);
    let fan = if mode == FanMode::FanIn { fan_in } else { fan_out };
    if fan == 0 {
        panic_msg(format!("init: initializing a zero-element tensor of shape {:?}", t.shape()));
    }
    calculate_gain(nonlinearity, Some(a)) / (fan as f64).sqrt()
}

/// He uniform: U(-b, b) with `b = sqrt(3) gain / sqrt(fan)`, `gain = calculate_gain(nonlinearity, a)`.
/// PyTorch's default for Linear and Conv weights is `kaiming_uniform_(w, sqrt(5), FanIn, LeakyRelu)`.
///
/// # Panics
/// If the tensor has fewer than 2 dims or a zero fan.
#[track_caller]
pub fn kaiming_uniform_(t: &Tensor, a: f64, mode: FanMode, nonlinearity: Nonlinearity) -> Tensor {
    let bound = 3f64.sqrt() * kaiming_std(t, a, mode, nonlinearity);
    uniform_(t, -bound, bound)
}

/// He normal: N(0, std^2) with `std = gain / sqrt(fan)`.
///
/// # Panics
/// If the tensor has fewer than 2 dims or a zero fan.
#[track_caller]
pub fn kaiming_normal_(t: &Tensor, a: f64, mode: FanMode, nonlinearity: Nonlinearity) -> Tensor {
    let std = kaiming_std(t, a, mode, nonlinearity);
    normal_(t, 0.0, std)
}

/// A (semi-)orthogonal matrix times `gain`, viewing `t` as `[shape[0], rest]`: the `Q` of the QR
/// decomposition of a standard normal matrix (computed in f64 by modified Gram-Schmidt, which yields the
/// `R` with positive diagonal, as PyTorch's sign correction does), transposed when there are fewer rows than
/// columns.
///
/// # Panics
/// If the tensor has fewer than 2 dims.
#[track_caller]
pub fn orthogonal_(t: &Tensor, gain: f64) -> Tensor {
    if t.rank() < 2 {
        panic_msg(format!("init: orthogonal_ needs a tensor with at least 2 dimensions, got shape {:?}", t.shape()));
    }
    let rows = t.shape()[0];
    let cols = t.numel() / rows.max(1);
    // A is m x n with m >= n; its columns are orthonormalized.
    let (m, n) = if rows < cols { (cols, rows) } else { (rows, cols) };
    let a = Tensor::normal_dtype(&[rows, cols], 0.0, 1.0, crate::DType::F64).to_vec::<f64>();
    let at = |i: usize, j: usize| if rows < cols { a[j * cols + i] } else { a[i * cols + j] };
    // q[j] is column j of Q (length m).
    let mut q: Vec<Vec<f64>> = Vec::with_capacity(n);
    for j in 0..n {
        let mut v: Vec<f64> = (0..m).map(|i| at(i, j)).collect();
        for qi in &q {
            let r: f64 = qi.iter().zip(&v).map(|(x, y)| x * y).sum();
            for (vk, qk) in v.iter_mut().zip(qi) {
                *vk -= r * qk;
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        q.push(v.into_iter().map(|x| x / norm).collect());
    }
    let mut out = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            out[r * cols + c] = gain * if rows < cols { q[r][c] } else { q[c][r] };
        }
    }
    fill_with(t, Tensor::from_vec(out, t.shape()))
}

/// PyTorch's default init of a Linear/Conv layer: `kaiming_uniform_(weight, a = sqrt(5))`, i.e.
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
pub(crate) fn default_linear_init(weight: &Tensor, bias: Option<&Tensor>) {
    kaiming_uniform_(weight, 5f64.sqrt(), FanMode::FanIn, Nonlinearity::LeakyRelu);
    if let Some(b) = bias {
        let (fan_in, _) = calculate_fan_in_and_fan_out(weight);
        let bound = if fan_in > 0 { 1.0 / (fan_in as f64).sqrt() } else { 0.0 };
        uniform_(b, -bound, bound);
    }
}
