//! Normalization layers: [`LayerNorm`] and [`BatchNorm1d`] / [`BatchNorm2d`] (fused ops).
//!
//! **Layer norm** over the last `D` elements of each row (the `normalized_shape` dims), biased variance:
//!
//! ```text
//! forward:  mu = mean(x),  rstd = 1 / sqrt(mean((x - mu)^2) + eps),  xhat = (x - mu) rstd,  y = xhat * w + b
//! backward: g = dy * w
//!           dx = rstd * (g - mean(g) - xhat * mean(g * xhat))      (means over the row)
//!           dw = sum over rows of dy * xhat,   db = sum over rows of dy
//! ```
//! The forward is one pass per row of the kernels crate's `rows::layer_norm_rows_forward` (which also saves
//! `mu` and `rstd`). The plain backward (grad mode off while it runs, i.e. no `create_graph`) is one call of
//! `rows::layer_norm_rows_backward`; under `create_graph` it is written with tensor ops, so it is
//! differentiable itself (`mu` and `rstd` are then recomputed with a graph). The tests
//! check it against the same math composed from primitive ops, values and gradients.
//!
//! **Batch norm** per channel `c` (dim 1) over all other dims:
//!
//! ```text
//! train: mu_c, var_c = mean and biased variance of the batch; y = (x - mu_c) / sqrt(var_c + eps) * w_c + b_c
//!        running_mean = (1 - momentum) running_mean + momentum mu_c
//!        running_var  = (1 - momentum) running_var  + momentum var_c * n / (n - 1)    (unbiased, n values per channel)
//!        (momentum `None`: a cumulative average, momentum = 1 / num_batches_tracked)
//! eval:  y = (x - running_mean_c) / sqrt(running_var_c + eps) * w_c + b_c
//! backward (xhat = (x - mu_c) rstd_c, g = dy * w_c):
//!        train: dx = rstd (g - mean(g) - xhat mean(g xhat)),   eval: dx = g rstd_running
//!        dw = sum(dy xhat),   db = sum(dy)                                         (sums and means over all dims but 1)
//! ```
//! A fused op: the forward is one statistics pass (kernels crate `batch_norm::batch_norm_stats`, two sweeps)
//! and one per-channel affine map `y = x a_c + b_c`; the plain backward is one pass for the per-channel sums
//! `sum(dy)`, `sum(dy (x - mu))` and one affine map of `dy` and `x`. Under `create_graph` the backward is
//! written with tensor ops (differentiable; `mu`, `rstd` recomputed with a graph). The running statistics are
//! updated under `no_grad`. Tests check it against the composition from primitive ops, values and gradients.

use super::functional::{py_bool, py_float};
use super::Module;
use crate::autograd::{is_grad_enabled, Backward};
use crate::error::panic_msg;
use crate::tensor::{DType, Float, Tensor};
use std::sync::atomic::{AtomicBool, Ordering};
use tensorgrad_kernels::batch_norm as batch_norm_kernels;
use tensorgrad_kernels::rows;
use tensorgrad_kernels::Float as KFloat;

/// Layer normalization over the trailing `normalized_shape` dims, `torch.nn.functional.layer_norm`.
///
/// # Shapes
/// `x [.., *normalized_shape]`, `weight` and `bias` `normalized_shape` -> the shape of `x`.
///
/// # Panics
/// If `x`'s trailing dims are not `normalized_shape`, or `weight`/`bias` do not have that shape.
#[track_caller]
pub fn layer_norm(
    x: &Tensor,
    normalized_shape: &[usize],
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Tensor {
    let _p = crate::profile::op_scope("layer_norm");
    let k = normalized_shape.len();
    if k == 0 || x.rank() < k || &x.shape()[x.rank() - k..] != normalized_shape {
        panic_msg(format!(
            "LayerNorm: expected input with trailing shape {normalized_shape:?} ([.., {}]), got shape {:?}",
            normalized_shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
            x.shape()
        ));
    }
    for (what, p) in [("weight", weight), ("bias", bias)] {
        if let Some(p) = p {
            if p.shape() != normalized_shape {
                panic_msg(format!("LayerNorm: expected {what} of shape {normalized_shape:?}, got {:?}", p.shape()));
            }
        }
    }
    let d: usize = normalized_shape.iter().product();
    let (y, mean, rstd) = crate::dispatch_float!(x.dtype(), "layer_norm", T => {
        // with_slice reads a contiguous input in place (no copy).
        let wv = weight.map(|w| w.contiguous_vec::<T>());
        let bv = bias.map(|b| b.contiguous_vec::<T>());
        let n = x.numel();
        let rows = n / d.max(1);
        let (mut y, mut mean, mut rstd) = (vec![<T as Float>::ZERO; n], vec![<T as Float>::ZERO; rows], vec![<T as Float>::ZERO; rows]);
        x.with_slice(|xv: &[T]| {
            rows::layer_norm_rows_forward(xv, wv.as_deref(), bv.as_deref(), <T as tensorgrad_kernels::Float>::from_f64(eps), d, &mut y, &mut mean, &mut rstd)
        });
        (Tensor::from_vec(y, &[n]), Tensor::from_vec(mean, &[rows]), Tensor::from_vec(rstd, &[rows]))
    });
    let rows = x.numel() / d.max(1);
    let y = y.reshape(x.shape());
    let mut inputs = vec![x];
    inputs.extend(weight);
    inputs.extend(bias);
    Tensor::from_op(y, &inputs, || LayerNormBackward {
        x: x.clone(),
        weight: weight.cloned(),
        has_bias: bias.is_some(),
        mean: mean.reshape([rows, 1]),
        rstd: rstd.reshape([rows, 1]),
        normalized_shape: normalized_shape.to_vec(),
        eps,
    })
}

struct LayerNormBackward {
    x: Tensor,
    weight: Option<Tensor>,
    has_bias: bool,
    mean: Tensor,
    rstd: Tensor,
    normalized_shape: Vec<usize>,
    eps: f64,
}

impl LayerNormBackward {
    /// The plain backward (no graph recorded): one pass of the kernels crate's row kernel.
    fn backward_kernel(&self, dy: &Tensor, needs: &[bool], rows: usize, d: usize) -> Vec<Option<Tensor>> {
        let need_w = self.weight.is_some() && needs[1];
        let need_b = self.has_bias && needs[if self.weight.is_some() { 2 } else { 1 }];
        let (dx, dw, db) = crate::dispatch_float!(self.x.dtype(), "layer_norm", T => {
            // with_slice reads contiguous tensors in place (no copies).
            let mean = self.mean.contiguous_vec::<T>();
            let rstd = self.rstd.contiguous_vec::<T>();
            let wv = self.weight.as_ref().map(|w| w.contiguous_vec::<T>());
            let mut dx = vec![<T as Float>::ZERO; self.x.numel()];
            let mut dw = need_w.then(|| vec![<T as Float>::ZERO; d]);
            let mut db = need_b.then(|| vec![<T as Float>::ZERO; d]);
            self.x.with_slice(|xv: &[T]| dy.with_slice(|dyv: &[T]| {
                rows::layer_norm_rows_backward(
                    dyv, xv, &mean, &rstd, wv.as_deref(), d, &mut dx, dw.as_deref_mut(), db.as_deref_mut(),
                )
            }));
            let shape = self.normalized_shape.clone();
            (
                Tensor::from_vec(dx, &[rows * d]).reshape(self.x.shape()),
                dw.map(|v| Tensor::from_vec(v, &shape)),
                db.map(|v| Tensor::from_vec(v, &shape)),
            )
        });
        let mut grads = vec![needs[0].then_some(dx)];
        if self.weight.is_some() {
            grads.push(dw);
        }
        if self.has_bias {
            grads.push(db);
        }
        grads
    }
}

impl Backward for LayerNormBackward {
    fn name(&self) -> &'static str {
        "layer_norm"
    }

    fn backward(&self, dy: &Tensor, needs: &[bool]) -> crate::autograd::Grads {
        let d: usize = self.normalized_shape.iter().product();
        let rows = self.x.numel() / d.max(1);
        if !is_grad_enabled() {
            return self.backward_kernel(dy, needs, rows, d).into();
        }
        let x2 = self.x.reshape([rows, d]);
        let dy2 = dy.reshape([rows, d]);
        let (mean, rstd) = if is_grad_enabled() && self.x.requires_grad() {
            // Recorded so second derivatives see mu(x) and rstd(x).
            let mean = x2.mean_dim(1, true);
            let var = x2.var_dims(&[1], 0, true);
            (mean, (var + self.eps).rsqrt())
        } else {
            (self.mean.clone(), self.rstd.clone())
        };
        let xhat = (&x2 - &mean) * &rstd;
        let mut grads = Vec::new();
        grads.push(needs[0].then(|| {
            let g = match &self.weight {
                Some(w) => &dy2 * &w.reshape([d]),
                None => dy2.clone(),
            };
            let dx = &rstd * &(&g - &g.mean_dim(1, true) - &xhat * &(&g * &xhat).mean_dim(1, true));
            dx.reshape(self.x.shape())
        }));
        let mut next = 1;
        if self.weight.is_some() {
            grads.push(needs[next].then(|| (&dy2 * &xhat).sum_dim(0, false).reshape(self.normalized_shape.clone())));
            next += 1;
        }
        if self.has_bias {
            grads.push(needs[next].then(|| dy2.sum_dim(0, false).reshape(self.normalized_shape.clone())));
        }
        grads.into()
    }
}

/// Batch normalization over channel dim 1, `torch.nn.functional.batch_norm` (a fused op).
///
/// In training (or without running statistics) it uses the batch's mean and biased variance per channel and,
/// when `running_mean`/`running_var` are given, updates them in place (under `no_grad`) with `momentum`
/// using the unbiased variance. In evaluation it normalizes with the running statistics.
///
/// # Shapes
/// `x [N, C, ..]`, `running_mean`, `running_var`, `weight`, `bias`: `[C]` -> the shape of `x`.
///
/// # Panics
/// If `x` has rank < 2 or is not floating point, a `[C]` tensor has the wrong size, or training sees one
/// value per channel.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn batch_norm(
    x: &Tensor,
    running_mean: Option<&Tensor>,
    running_var: Option<&Tensor>,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    training: bool,
    momentum: f64,
    eps: f64,
) -> Tensor {
    let _p = crate::profile::op_scope("batch_norm");
    if x.rank() < 2 {
        panic_msg(format!("BatchNorm: expected an input of rank >= 2 [N, C, ..], got shape {:?}", x.shape()));
    }
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let s: usize = x.shape()[2..].iter().product();
    for (what, t) in [("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)]
    {
        if let Some(t) = t {
            if t.shape() != [c] {
                panic_msg(format!("BatchNorm: expected {what} of shape [{c}], got {:?}", t.shape()));
            }
        }
    }
    let use_batch_stats = training || running_mean.is_none() || running_var.is_none();
    let m = n * s;
    if use_batch_stats && m <= 1 {
        panic_msg(format!(
            "BatchNorm: expected more than 1 value per channel when training, got input of shape {:?}",
            x.shape()
        ));
    }
    let (y, mean, rstd) = crate::dispatch_float!(x.dtype(), "batch_norm", T => {
        let (mut mean, mut var) = (vec![<T as Float>::ZERO; c], vec![<T as Float>::ZERO; c]);
        if use_batch_stats {
            x.with_slice(|xv: &[T]| batch_norm_kernels::batch_norm_stats(xv, n, c, s, &mut mean, &mut var));
            if training {
                let (mean_t, var_t) = (Tensor::from_vec(mean.clone(), &[c]), Tensor::from_vec(var.clone(), &[c]));
                crate::no_grad(|| {
                    if let Some(rm) = running_mean {
                        rm.copy_(&(rm * (1.0 - momentum) + mean_t * momentum));
                    }
                    if let Some(rv) = running_var {
                        let unbiased = var_t * (m as f64 / (m as f64 - 1.0));
                        rv.copy_(&(rv * (1.0 - momentum) + unbiased * momentum));
                    }
                });
            }
        } else {
            mean = running_mean.unwrap().contiguous_vec::<T>();
            var = running_var.unwrap().contiguous_vec::<T>();
        }
        let rstd: Vec<T> = var.iter().map(|&v| <T as KFloat>::from_f64(1.0 / (KFloat::to_f64(v) + eps).sqrt())).collect();
        let wv = weight.map(|w| w.contiguous_vec::<T>());
        let bv = bias.map(|b| b.contiguous_vec::<T>());
        let a: Vec<T> = (0..c).map(|k| wv.as_ref().map_or(rstd[k], |w| w[k] * rstd[k])).collect();
        let b: Vec<T> = (0..c).map(|k| bv.as_ref().map_or(<T as Float>::ZERO, |b| b[k]) - mean[k] * a[k]).collect();
        let mut y = vec![<T as Float>::ZERO; x.numel()];
        x.with_slice(|xv: &[T]| batch_norm_kernels::channel_affine(xv, &a, &b, n, c, s, &mut y));
        (Tensor::from_vec(y, x.shape()), Tensor::from_vec(mean, &[c]), Tensor::from_vec(rstd, &[c]))
    });
    let mut inputs = vec![x];
    inputs.extend(weight);
    inputs.extend(bias);
    Tensor::from_op(y, &inputs, || BatchNormBackward {
        x: x.clone(),
        weight: weight.cloned(),
        has_bias: bias.is_some(),
        mean,
        rstd,
        batch_stats: use_batch_stats,
        eps,
    })
}

/// Saved for batch norm's backward: the input, the weight, and the per-channel mean and `1/sqrt(var + eps)`
/// the forward used (the batch's, or the running statistics in evaluation).
struct BatchNormBackward {
    x: Tensor,
    weight: Option<Tensor>,
    has_bias: bool,
    mean: Tensor,
    rstd: Tensor,
    batch_stats: bool,
    eps: f64,
}

impl BatchNormBackward {
    fn dims(&self) -> (usize, usize, usize) {
        let shape = self.x.shape();
        (shape[0], shape[1], shape[2..].iter().product())
    }

    /// Which of `(x, weight, bias)` need a gradient.
    fn needs(&self, needs: &[bool]) -> (bool, bool, bool) {
        let need_w = self.weight.is_some() && needs[1];
        let need_b = self.has_bias && needs[if self.weight.is_some() { 2 } else { 1 }];
        (needs[0], need_w, need_b)
    }

    fn pack(&self, dx: Option<Tensor>, dw: Option<Tensor>, db: Option<Tensor>) -> Vec<Option<Tensor>> {
        let mut grads = vec![dx];
        if self.weight.is_some() {
            grads.push(dw);
        }
        if self.has_bias {
            grads.push(db);
        }
        grads
    }

    /// The plain backward (no graph recorded): one pass for the per-channel sums, one for `dx`.
    fn backward_kernel(&self, dy: &Tensor, needs: &[bool]) -> Vec<Option<Tensor>> {
        let (need_x, need_w, need_b) = self.needs(needs);
        let (n, c, s) = self.dims();
        let m = (n * s) as f64;
        let (dx, dw, db) = crate::dispatch_float!(self.x.dtype(), "batch_norm", T => {
            let mean = self.mean.contiguous_vec::<T>();
            let rstd = self.rstd.contiguous_vec::<T>();
            let (mut sum_dy, mut sum_dy_xmu) = (vec![<T as Float>::ZERO; c], vec![<T as Float>::ZERO; c]);
            self.x.with_slice(|xv: &[T]| dy.with_slice(|dyv: &[T]| {
                batch_norm_kernels::batch_norm_backward_sums(dyv, xv, &mean, n, c, s, &mut sum_dy, &mut sum_dy_xmu)
            }));
            let dw = need_w.then(|| {
                Tensor::from_vec((0..c).map(|k| sum_dy_xmu[k] * rstd[k]).collect::<Vec<T>>(), &[c])
            });
            let dx = need_x.then(|| {
                let wv = self.weight.as_ref().map(|w| w.contiguous_vec::<T>());
                let p: Vec<T> = (0..c).map(|k| wv.as_ref().map_or(rstd[k], |w| w[k] * rstd[k])).collect();
                let mut dx = vec![<T as Float>::ZERO; self.x.numel()];
                if self.batch_stats {
                    let mt = <T as KFloat>::from_f64(m);
                    let q: Vec<T> = (0..c).map(|k| -p[k] * rstd[k] * rstd[k] * sum_dy_xmu[k] / mt).collect();
                    let r: Vec<T> = (0..c).map(|k| -p[k] * sum_dy[k] / mt - q[k] * mean[k]).collect();
                    self.x.with_slice(|xv: &[T]| dy.with_slice(|dyv: &[T]| {
                        batch_norm_kernels::channel_affine2(dyv, xv, &p, &q, &r, n, c, s, &mut dx)
                    }));
                } else {
                    let zero = vec![<T as Float>::ZERO; c];
                    dy.with_slice(|dyv: &[T]| batch_norm_kernels::channel_affine(dyv, &p, &zero, n, c, s, &mut dx));
                }
                Tensor::from_vec(dx, self.x.shape())
            });
            (dx, dw, need_b.then(|| Tensor::from_vec(sum_dy, &[c])))
        });
        self.pack(dx, dw, db)
    }
}

impl Backward for BatchNormBackward {
    fn name(&self) -> &'static str {
        "batch_norm"
    }

    fn backward(&self, dy: &Tensor, needs: &[bool]) -> crate::autograd::Grads {
        if !is_grad_enabled() {
            return self.backward_kernel(dy, needs).into();
        }
        // Under create_graph: the same formulas written with tensor ops, so they are differentiable.
        let (need_x, need_w, need_b) = self.needs(needs);
        let x = &self.x;
        let mut channel_shape = vec![1usize; x.rank()];
        channel_shape[1] = x.shape()[1];
        let per_channel = |t: &Tensor| t.reshape(channel_shape.clone());
        let reduce: Vec<isize> = (0..x.rank() as isize).filter(|&d| d != 1).collect();
        let (mean, rstd) = if self.batch_stats && x.requires_grad() {
            // Recorded so second derivatives see mean(x) and rstd(x).
            let var = x.var_dims(&reduce, 0, true);
            (x.mean_dims(&reduce, true), (var + self.eps).rsqrt())
        } else {
            (per_channel(&self.mean), per_channel(&self.rstd))
        };
        let xhat = (x - &mean) * &rstd;
        let dx = need_x.then(|| {
            let g = match &self.weight {
                Some(w) => dy * &per_channel(w),
                None => dy.clone(),
            };
            if self.batch_stats {
                &rstd * &(&g - &g.mean_dims(&reduce, true) - &xhat * &(&g * &xhat).mean_dims(&reduce, true))
            } else {
                &g * &rstd
            }
        });
        let dw = need_w.then(|| (dy * &xhat).sum_dims(&reduce, false));
        let db = need_b.then(|| dy.sum_dims(&reduce, false));
        self.pack(dx, dw, db).into()
    }
}

/// Layer normalization over the trailing `normalized_shape` dims (`torch.nn.LayerNorm`).
///
/// Parameters (with `elementwise_affine`): `weight` (ones) and `bias` (zeros), both `normalized_shape`.
///
/// # Shapes
/// `[.., *normalized_shape]` -> same shape.
pub struct LayerNorm {
    /// The trailing dims normalized over.
    pub normalized_shape: Vec<usize>,
    /// Added to the variance.
    pub eps: f64,
    /// `[normalized_shape]`, initialized to ones (`None` without `elementwise_affine`).
    pub weight: Option<Tensor>,
    /// `[normalized_shape]`, initialized to zeros.
    pub bias: Option<Tensor>,
}

impl LayerNorm {
    /// `LayerNorm(normalized_shape)` with `eps = 1e-5` and a learnable affine transform, f32.
    pub fn new(normalized_shape: &[usize]) -> LayerNorm {
        LayerNorm::with_options(normalized_shape, 1e-5, true, true, DType::F32)
    }

    /// Every option: `eps`, `elementwise_affine` (weight and bias), `bias` (bias when affine), the dtype.
    pub fn with_options(
        normalized_shape: &[usize],
        eps: f64,
        elementwise_affine: bool,
        bias: bool,
        dtype: DType,
    ) -> LayerNorm {
        let param = |v: f64| Tensor::full_dtype(normalized_shape, v, dtype).requires_grad_();
        LayerNorm {
            normalized_shape: normalized_shape.to_vec(),
            eps,
            weight: elementwise_affine.then(|| param(1.0)),
            bias: (elementwise_affine && bias).then(|| param(0.0)),
        }
    }
}

impl Module for LayerNorm {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        layer_norm(x, &self.normalized_shape, self.weight.as_ref(), self.bias.as_ref(), self.eps)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = Vec::new();
        p.extend(self.weight.clone().map(|w| ("weight".to_string(), w)));
        p.extend(self.bias.clone().map(|b| ("bias".to_string(), b)));
        p
    }

    fn describe(&self) -> String {
        let dims: Vec<String> = self.normalized_shape.iter().map(|d| d.to_string()).collect();
        let tuple = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
        format!(
            "LayerNorm({tuple}, eps={}, elementwise_affine={}, bias={})",
            py_float(self.eps),
            py_bool(self.weight.is_some()),
            py_bool(self.bias.is_some())
        )
    }
}

/// Batch normalization over dim 1 with running statistics: the body of [`BatchNorm1d`] and [`BatchNorm2d`].
pub struct BatchNorm {
    name: &'static str,
    ranks: &'static [usize],
    /// Number of channels `C`.
    pub num_features: usize,
    /// Added to the variance.
    pub eps: f64,
    /// Weight of the newest batch in the running statistics; `None` for a cumulative average.
    pub momentum: Option<f64>,
    /// `[C]`, ones (`None` without `affine`).
    pub weight: Option<Tensor>,
    /// `[C]`, zeros.
    pub bias: Option<Tensor>,
    /// `[C]`, zeros at start (`None` without `track_running_stats`).
    pub running_mean: Option<Tensor>,
    /// `[C]`, ones at start.
    pub running_var: Option<Tensor>,
    /// Scalar `i64`: how many training batches updated the running statistics.
    pub num_batches_tracked: Option<Tensor>,
    training: AtomicBool,
}

impl BatchNorm {
    #[allow(clippy::too_many_arguments)]
    fn with_options(
        name: &'static str,
        ranks: &'static [usize],
        num_features: usize,
        eps: f64,
        momentum: Option<f64>,
        affine: bool,
        track_running_stats: bool,
        dtype: DType,
    ) -> BatchNorm {
        let vector = |v: f64| Tensor::full_dtype(&[num_features], v, dtype);
        BatchNorm {
            name,
            ranks,
            num_features,
            eps,
            momentum,
            weight: affine.then(|| vector(1.0).requires_grad_()),
            bias: affine.then(|| vector(0.0).requires_grad_()),
            running_mean: track_running_stats.then(|| vector(0.0)),
            running_var: track_running_stats.then(|| vector(1.0)),
            num_batches_tracked: track_running_stats.then(|| Tensor::from_vec(vec![0i64], &[])),
            training: AtomicBool::new(true),
        }
    }
}

impl Module for BatchNorm {
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        let expected = if self.ranks.len() == 2 { "2-D [N, C] or 3-D [N, C, L]" } else { "4-D [N, C, H, W]" };
        if !self.ranks.contains(&x.rank()) {
            panic_msg(format!("{}: expected a {expected} input, got shape {:?}", self.name, x.shape()));
        }
        if x.shape()[1] != self.num_features {
            panic_msg(format!(
                "{}: expected {} channels in dim 1, got {} (input shape {:?})",
                self.name,
                self.num_features,
                x.shape()[1],
                x.shape()
            ));
        }
        let training = self.is_training();
        let mut momentum = self.momentum.unwrap_or(0.0);
        if training {
            if let Some(t) = &self.num_batches_tracked {
                let batches = t.with_slice_mut(|s: &mut [i64]| {
                    s[0] += 1;
                    s[0]
                });
                momentum = self.momentum.unwrap_or(1.0 / batches as f64);
            }
        }
        batch_norm(
            x,
            self.running_mean.as_ref(),
            self.running_var.as_ref(),
            self.weight.as_ref(),
            self.bias.as_ref(),
            training,
            momentum,
            self.eps,
        )
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = Vec::new();
        p.extend(self.weight.clone().map(|w| ("weight".to_string(), w)));
        p.extend(self.bias.clone().map(|b| ("bias".to_string(), b)));
        p
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let mut b = Vec::new();
        b.extend(self.running_mean.clone().map(|t| ("running_mean".to_string(), t)));
        b.extend(self.running_var.clone().map(|t| ("running_var".to_string(), t)));
        b.extend(self.num_batches_tracked.clone().map(|t| ("num_batches_tracked".to_string(), t)));
        b
    }

    fn set_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }

    fn is_training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }

    fn describe(&self) -> String {
        format!(
            "{}({}, eps={}, momentum={}, affine={}, bias={}, track_running_stats={})",
            self.name,
            self.num_features,
            py_float(self.eps),
            self.momentum.map_or("None".to_string(), py_float),
            py_bool(self.weight.is_some()),
            py_bool(self.bias.is_some()),
            py_bool(self.running_mean.is_some())
        )
    }
}

/// Declares a `BatchNormNd` layer as a thin wrapper over [`BatchNorm`] (fields reachable through `Deref`).
macro_rules! batch_norm_layer {
    ($(#[$doc:meta])* $Name:ident, $ranks:expr) => {
        $(#[$doc])*
        pub struct $Name(pub BatchNorm);

        impl $Name {
            #[doc = concat!("`", stringify!($Name), "(num_features)`: eps 1e-5, momentum 0.1, affine, tracking running statistics, f32.")]
            pub fn new(num_features: usize) -> $Name {
                $Name::with_options(num_features, 1e-5, Some(0.1), true, true, DType::F32)
            }

            /// Every option: `eps`, `momentum` (`None` for a cumulative average), `affine` (weight and bias),
            /// `track_running_stats`, the dtype.
            pub fn with_options(
                num_features: usize,
                eps: f64,
                momentum: Option<f64>,
                affine: bool,
                track_running_stats: bool,
                dtype: DType,
            ) -> $Name {
                $Name(BatchNorm::with_options(
                    stringify!($Name),
                    $ranks,
                    num_features,
                    eps,
                    momentum,
                    affine,
                    track_running_stats,
                    dtype,
                ))
            }
        }

        impl std::ops::Deref for $Name {
            type Target = BatchNorm;
            fn deref(&self) -> &BatchNorm {
                &self.0
            }
        }

        impl Module for $Name {
            #[track_caller]
            fn forward(&self, x: &Tensor) -> Tensor {
                self.0.forward(x)
            }
            fn named_parameters(&self) -> Vec<(String, Tensor)> {
                self.0.named_parameters()
            }
            fn named_buffers(&self) -> Vec<(String, Tensor)> {
                self.0.named_buffers()
            }
            fn set_training(&self, training: bool) {
                self.0.set_training(training)
            }
            fn is_training(&self) -> bool {
                self.0.is_training()
            }
            fn describe(&self) -> String {
                self.0.describe()
            }
        }
    };
}

batch_norm_layer!(
    /// `torch.nn.BatchNorm1d`: batch normalization of `[N, C]` or `[N, C, L]` inputs over all dims but `C`.
    ///
    /// Parameters `weight` (ones), `bias` (zeros); buffers `running_mean` (zeros), `running_var` (ones),
    /// `num_batches_tracked` (0). See the module docs for the math.
    ///
    /// # Shapes
    /// `[N, C]` or `[N, C, L]` -> same shape.
    ///
    /// # Panics
    /// On another rank or a channel count other than `num_features`.
    BatchNorm1d,
    &[2, 3]
);

batch_norm_layer!(
    /// `torch.nn.BatchNorm2d`: batch normalization of `[N, C, H, W]` inputs per channel.
    ///
    /// Parameters and buffers as [`BatchNorm1d`].
    ///
    /// # Shapes
    /// `[N, C, H, W]` -> same shape.
    ///
    /// # Panics
    /// On another rank or a channel count other than `num_features`.
    BatchNorm2d,
    &[4]
);
