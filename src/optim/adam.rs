//! Adam and AdamW (`torch.optim.Adam`, `torch.optim.AdamW`, single-tensor path).
//!
//! Per element at step `t` (counted per parameter, starting at 1):
//! ```text
//! g = -g                               if maximize
//! p = p * (1 - lr * wd)                AdamW (decoupled weight decay)
//! g = g + wd * p                       Adam with wd != 0 (L2 penalty)
//! m = lerp(m, g, 1 - b1)               first moment  (exp_avg)
//! v = b2 * v + (1 - b2) * g * g        second moment (exp_avg_sq)
//! vmax = max(vmax, v); v_hat = vmax    amsgrad (max_exp_avg_sq), else v_hat = v
//! p = p - lr / (1 - b1^t) * m / (sqrt(v_hat) / sqrt(1 - b2^t) + eps)
//! ```
//! The per-element update runs in the fused SIMD kernel `tensorgrad_kernels::elementwise::adam_step`
//! (same formula; FMA where PyTorch's vectorized CPU kernel uses one); [`adam_update_slices`] is the scalar
//! reference loop, still used for `maximize` (which the kernel lacks). It streams the parameter,
//! gradient and both moments once: 16 bytes read and 12 written per f32 parameter.

use super::{for_each_param, optimizer_accessors, resolve_groups, Group, Optimizer, ParamGroup, ParamState};
use crate::error::panic_msg;
use crate::tensor::{Float, Tensor};
use tensorgrad_kernels::elementwise::{adam_step, AdamHyper};

/// Adam/AdamW hyperparameters. `Default` is `torch.optim.Adam`'s; [`AdamConfig::adamw`] is AdamW's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate (1e-3).
    pub lr: f64,
    /// Decay rates of the first and second moments ((0.9, 0.999)).
    pub betas: (f64, f64),
    /// Added to the denominator (1e-8).
    pub eps: f64,
    /// Weight decay: an L2 penalty for Adam (0), decoupled for AdamW (1e-2).
    pub weight_decay: f64,
    /// Normalize by the running maximum of the second moment (AMSGrad).
    pub amsgrad: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
    /// Decoupled weight decay (AdamW) instead of the L2 penalty.
    pub decoupled_weight_decay: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            maximize: false,
            decoupled_weight_decay: false,
        }
    }
}

impl AdamConfig {
    /// `torch.optim.AdamW`'s defaults: Adam's, with decoupled weight decay 1e-2.
    pub fn adamw() -> AdamConfig {
        AdamConfig { weight_decay: 1e-2, decoupled_weight_decay: true, ..AdamConfig::default() }
    }
}

/// `torch.optim.Adam` and (with `decoupled_weight_decay`) `torch.optim.AdamW`.
#[derive(Debug)]
pub struct Adam {
    config: AdamConfig,
    groups: Vec<Group>,
    state: Vec<Option<ParamState>>,
}

impl Adam {
    /// Adam over `params` (one group).
    ///
    /// # Panics
    /// On invalid hyperparameters (negative lr, eps or weight decay, betas outside `[0, 1)`), as PyTorch
    /// raises `ValueError`.
    #[track_caller]
    pub fn new(params: Vec<Tensor>, config: AdamConfig) -> Adam {
        Adam::with_groups(vec![ParamGroup::new(params)], config)
    }

    /// AdamW over `params` with AdamW's defaults and learning rate `lr`.
    #[track_caller]
    pub fn adamw(params: Vec<Tensor>, lr: f64) -> Adam {
        Adam::new(params, AdamConfig { lr, ..AdamConfig::adamw() })
    }

    /// Adam over parameter groups; a group's `None` fields take `config`'s values.
    ///
    /// # Panics
    /// As [`new`](Self::new), and if a parameter appears twice.
    #[track_caller]
    pub fn with_groups(groups: Vec<ParamGroup>, config: AdamConfig) -> Adam {
        let c = config;
        let beta_ok = |b: f64| (0.0..1.0).contains(&b);
        if c.lr < 0.0 || c.eps < 0.0 || c.weight_decay < 0.0 || !beta_ok(c.betas.0) || !beta_ok(c.betas.1) {
            panic_msg(format!("Adam: invalid hyperparameters {c:?}"));
        }
        let (groups, state) = resolve_groups("Adam", groups, c.lr, c.weight_decay, c.betas.0);
        Adam { config, groups, state }
    }

    /// The hyperparameters given at construction (per-group `lr`, `weight_decay` and beta1 (`momentum`) live
    /// in [`groups`](Optimizer::groups)).
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }
}

impl Optimizer for Adam {
    optimizer_accessors!();

    #[track_caller]
    fn step(&mut self) {
        let c = self.config;
        for_each_param("Adam", &self.groups, &mut self.state, |g, p, grad, s| {
            let h = AdamScalars::new(&c, g.lr, g.weight_decay, g.momentum, s.step);
            let hyper = AdamHyper {
                lr: g.lr,
                beta1: g.momentum,
                beta2: c.betas.1,
                eps: c.eps,
                weight_decay: g.weight_decay,
                decoupled: c.decoupled_weight_decay,
                amsgrad: c.amsgrad,
                step: s.step,
            };
            let m = s.slot("exp_avg", p, 0.0);
            let v = s.slot("exp_avg_sq", p, 0.0);
            let vmax = c.amsgrad.then(|| s.slot("max_exp_avg_sq", p, 0.0));
            crate::dispatch_float!(p.dtype(), "Adam", T => p.with_slice_mut::<T, _>(|ps| {
                grad.with_slice::<T, _>(|gs| {
                    m.with_slice_mut::<T, _>(|ms| {
                        v.with_slice_mut::<T, _>(|vs| {
                            // The fused SIMD kernel has no `maximize`; that case keeps the scalar loop.
                            let update = |ps: &mut [T], ms: &mut [T], vs: &mut [T], xs: Option<&mut [T]>| {
                                if c.maximize {
                                    adam_update_slices(ps, gs, ms, vs, xs, &h)
                                } else {
                                    adam_step(ps, gs, ms, vs, xs, &hyper)
                                }
                            };
                            match &vmax {
                                Some(x) => x.with_slice_mut::<T, _>(|xs| update(ps, ms, vs, Some(xs))),
                                None => update(ps, ms, vs, None),
                            }
                        })
                    })
                })
            }))
        });
    }
}

/// The per-tensor scalars of one Adam step, precomputed in f64 as PyTorch does in Python.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamScalars {
    /// `1 - beta1`, the lerp weight of the first moment.
    pub one_minus_beta1: f64,
    /// `beta2`.
    pub beta2: f64,
    /// `eps`.
    pub eps: f64,
    /// L2 coefficient added to the gradient (Adam's weight decay; 0 for AdamW).
    pub l2: f64,
    /// Factor the parameter is multiplied by first (`1 - lr * wd` for AdamW, else 1).
    pub decay: f64,
    /// `lr / (1 - beta1^t)`.
    pub step_size: f64,
    /// `sqrt(1 - beta2^t)`.
    pub bias_correction2_sqrt: f64,
    /// Negate the gradient.
    pub maximize: bool,
}

impl AdamScalars {
    /// The scalars for step `t` (1-based) of a group with learning rate `lr`, weight decay `wd`, beta1 `b1`.
    pub fn new(c: &AdamConfig, lr: f64, wd: f64, b1: f64, t: u64) -> AdamScalars {
        let b2 = c.betas.1;
        let t = t as f64;
        let (l2, decay) = match (wd != 0.0, c.decoupled_weight_decay) {
            (true, true) => (0.0, 1.0 - lr * wd),
            (true, false) => (wd, 1.0),
            (false, _) => (0.0, 1.0),
        };
        AdamScalars {
            one_minus_beta1: 1.0 - b1,
            beta2: b2,
            eps: c.eps,
            l2,
            decay,
            step_size: lr / (1.0 - b1.powf(t)),
            bias_correction2_sqrt: (1.0 - b2.powf(t)).powf(0.5),
            maximize: c.maximize,
        }
    }
}

/// One Adam/AdamW update over contiguous slices of equal length: parameter `p`, gradient `g`, moments `m` and
/// `v`, and with AMSGrad the running maximum `vmax`. This is the hot loop; the fused SIMD kernel replaces it.
///
/// # Panics
/// If the slices differ in length.
pub fn adam_update_slices<F: Float>(
    p: &mut [F],
    g: &[F],
    m: &mut [F],
    v: &mut [F],
    vmax: Option<&mut [F]>,
    h: &AdamScalars,
) {
    let n = p.len();
    if g.len() != n || m.len() != n || v.len() != n || vmax.as_ref().is_some_and(|x| x.len() != n) {
        panic_msg(format!("adam_update_slices: slice lengths differ (param {n}, grad {})", g.len()));
    }
    match (h.l2 != 0.0, vmax) {
        (false, None) => adam_loop::<F, false, false>(p, g, m, v, &mut [], h),
        (true, None) => adam_loop::<F, true, false>(p, g, m, v, &mut [], h),
        (false, Some(x)) => adam_loop::<F, false, true>(p, g, m, v, x, h),
        (true, Some(x)) => adam_loop::<F, true, true>(p, g, m, v, x, h),
    }
}

/// The loop, specialized on whether there is an L2 term and an AMSGrad maximum so the body has no branches.
#[inline(always)]
fn adam_loop<F: Float, const L2: bool, const AMS: bool>(
    p: &mut [F],
    g: &[F],
    m: &mut [F],
    v: &mut [F],
    vmax: &mut [F],
    h: &AdamScalars,
) {
    let f = F::from_f64;
    let (w1, b2, one_minus_b2) = (f(h.one_minus_beta1), f(h.beta2), f(1.0 - h.beta2));
    let (l2, decay, eps, bc2) = (f(h.l2), f(h.decay), f(h.eps), f(h.bias_correction2_sqrt));
    let neg_step = f(-h.step_size);
    let sign = if h.maximize { -F::ONE } else { F::ONE };
    // torch.lerp: self + w (end - self) for w < 0.5, else end - (end - self)(1 - w).
    let low_weight = h.one_minus_beta1 < 0.5;
    let one_minus_w1 = f(1.0 - h.one_minus_beta1);
    let n = p.len();
    let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
    for i in 0..n {
        let mut gi = sign * g[i];
        let pi = p[i] * decay;
        if L2 {
            gi += l2 * pi;
        }
        let mi = if low_weight { m[i] + w1 * (gi - m[i]) } else { gi - (gi - m[i]) * one_minus_w1 };
        let vi = v[i] * b2 + one_minus_b2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        let vhat = if AMS {
            let x = if vmax[i] >= vi { vmax[i] } else { vi };
            vmax[i] = x;
            x
        } else {
            vi
        };
        let denom = vhat.sqrt() / bc2 + eps;
        p[i] = pi + neg_step * mi / denom;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_adam_step_moves_each_param_by_lr() {
        // At t = 1, m_hat = g and v_hat = g^2, so the step is lr * g / (|g| + eps) ~ lr * sign(g).
        let p = Tensor::from_vec(vec![1.0f64, -1.0], &[2]).requires_grad_();
        p.set_grad(Some(Tensor::from_vec(vec![3.0f64, -0.5], &[2])));
        let mut opt = Adam::new(vec![p.clone()], AdamConfig { lr: 0.1, ..Default::default() });
        opt.step();
        let got = p.to_vec::<f64>();
        assert!((got[0] - 0.9).abs() < 1e-7 && (got[1] + 0.9).abs() < 1e-7, "{got:?}");
        let s = opt.state()[0].as_ref().unwrap();
        assert_eq!(s.step, 1);
        // m = 0 + (1 - 0.9) * g, with 1 - 0.9 rounded in f64 as PyTorch rounds it in Python.
        assert_eq!(s.get("exp_avg").unwrap().to_vec::<f64>(), vec![(1.0 - 0.9) * 3.0, (1.0 - 0.9) * -0.5]);
        assert!(s.get("max_exp_avg_sq").is_none());
    }

    #[test]
    fn adamw_decays_even_with_zero_grad() {
        let p = Tensor::from_vec(vec![2.0f32], &[1]).requires_grad_();
        p.set_grad(Some(Tensor::zeros(&[1])));
        let mut opt = Adam::adamw(vec![p.clone()], 0.5);
        opt.step();
        assert_eq!(p.to_vec::<f32>(), vec![2.0 * (1.0 - 0.5 * 0.01)]);
    }

    #[test]
    #[should_panic(expected = "slice lengths differ")]
    fn kernel_checks_lengths() {
        let h = AdamScalars::new(&AdamConfig::default(), 1e-3, 0.0, 0.9, 1);
        adam_update_slices::<f32>(&mut [0.0; 2], &[0.0; 3], &mut [0.0; 2], &mut [0.0; 2], None, &h);
    }
}
