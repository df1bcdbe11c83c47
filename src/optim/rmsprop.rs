//! RMSprop (`torch.optim.RMSprop`, single-tensor path), with optional centering and momentum.
//!
//! Per element, with `a` the smoothing constant `alpha` and `mu` the momentum:
//! ```text
//! g = -g                                   if maximize
//! g = g + wd * p                           if wd != 0
//! v = a * v + (1 - a) * g * g              square_avg
//! gavg = lerp(gavg, g, 1 - a)              grad_avg (centered)
//! d = sqrt(v - gavg * gavg) + eps          centered, else sqrt(v) + eps
//! b = mu * b + g / d;  p = p - lr * b      momentum_buffer (mu > 0)
//! p = p - lr * g / d                       otherwise
//! ```

use super::{for_each_param, optimizer_accessors, resolve_groups, Group, Optimizer, ParamGroup, ParamState};
use crate::error::panic_msg;
use crate::tensor::{Float, Tensor};

/// RMSprop hyperparameters; `Default` is PyTorch's (`lr` 1e-2, `alpha` 0.99, `eps` 1e-8, the rest off).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropConfig {
    /// Learning rate.
    pub lr: f64,
    /// Smoothing constant of the squared-gradient average.
    pub alpha: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Momentum factor (0 disables the buffer).
    pub momentum: f64,
    /// Normalize by an estimate of the gradient's variance instead of its second moment.
    pub centered: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        RmsPropConfig {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            maximize: false,
        }
    }
}

/// `torch.optim.RMSprop`.
#[derive(Debug)]
pub struct RmsProp {
    config: RmsPropConfig,
    groups: Vec<Group>,
    state: Vec<Option<ParamState>>,
}

impl RmsProp {
    /// RMSprop over `params` (one group).
    ///
    /// # Panics
    /// On a negative lr, alpha, eps, momentum or weight decay.
    #[track_caller]
    pub fn new(params: Vec<Tensor>, config: RmsPropConfig) -> RmsProp {
        RmsProp::with_groups(vec![ParamGroup::new(params)], config)
    }

    /// RMSprop over parameter groups; a group's `None` fields take `config`'s values.
    ///
    /// # Panics
    /// As [`new`](Self::new), and if a parameter appears twice.
    #[track_caller]
    pub fn with_groups(groups: Vec<ParamGroup>, config: RmsPropConfig) -> RmsProp {
        let c = config;
        if [c.lr, c.alpha, c.eps, c.weight_decay, c.momentum].iter().any(|&x| x < 0.0) {
            panic_msg(format!("RMSprop: invalid hyperparameters {c:?}: all must be >= 0"));
        }
        let (groups, state) = resolve_groups("RMSprop", groups, c.lr, c.weight_decay, c.momentum);
        RmsProp { config, groups, state }
    }

    /// The hyperparameters given at construction.
    pub fn config(&self) -> &RmsPropConfig {
        &self.config
    }
}

impl Optimizer for RmsProp {
    optimizer_accessors!();

    #[track_caller]
    fn step(&mut self) {
        let c = self.config;
        for_each_param("RMSprop", &self.groups, &mut self.state, |g, p, grad, s| {
            let h = RmsScalars { c, lr: g.lr, weight_decay: g.weight_decay, momentum: g.momentum };
            let sq = s.slot("square_avg", p, 0.0);
            let buf = (g.momentum > 0.0).then(|| s.slot("momentum_buffer", p, 0.0));
            let gavg = c.centered.then(|| s.slot("grad_avg", p, 0.0));
            crate::dispatch_float!(p.dtype(), "RMSprop", T => p.with_slice_mut::<T, _>(|ps| {
                grad.with_slice::<T, _>(|gs| sq.with_slice_mut::<T, _>(|sqs| {
                    with_opt_slice::<T, _>(&buf, |bs| with_opt_slice::<T, _>(&gavg, |gas| rmsprop_update(ps, gs, sqs, bs, gas, &h)))
                }))
            }))
        });
    }
}

/// Runs `f` on the optional tensor's mutable slice (empty when absent).
fn with_opt_slice<T: crate::Element, R>(t: &Option<Tensor>, f: impl FnOnce(&mut [T]) -> R) -> R {
    match t {
        Some(t) => t.with_slice_mut::<T, _>(f),
        None => f(&mut []),
    }
}

struct RmsScalars {
    c: RmsPropConfig,
    lr: f64,
    weight_decay: f64,
    momentum: f64,
}

/// One RMSprop update over slices; `buf` and `gavg` are empty when momentum or centering is off.
fn rmsprop_update<F: Float>(p: &mut [F], g: &[F], sq: &mut [F], buf: &mut [F], gavg: &mut [F], h: &RmsScalars) {
    let f = F::from_f64;
    let (alpha, one_minus_alpha, eps) = (f(h.c.alpha), f(1.0 - h.c.alpha), f(h.c.eps));
    let (wd, mu, neg_lr) = (f(h.weight_decay), f(h.momentum), f(-h.lr));
    let low_weight = 1.0 - h.c.alpha < 0.5;
    let (centered, momentum) = (!gavg.is_empty(), !buf.is_empty());
    for i in 0..p.len() {
        let mut gi = if h.c.maximize { -g[i] } else { g[i] };
        if h.weight_decay != 0.0 {
            gi += wd * p[i];
        }
        let v = sq[i] * alpha + one_minus_alpha * gi * gi;
        sq[i] = v;
        let avg = if centered {
            let a = if low_weight { gavg[i] + one_minus_alpha * (gi - gavg[i]) } else { gi - (gi - gavg[i]) * alpha };
            gavg[i] = a;
            (v + -F::ONE * a * a).sqrt()
        } else {
            v.sqrt()
        } + eps;
        if momentum {
            let b = buf[i] * mu + gi / avg;
            buf[i] = b;
            p[i] += neg_lr * b;
        } else {
            p[i] += neg_lr * gi / avg;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_buffers_follow_the_options() {
        let p = Tensor::from_vec(vec![1.0f64, 2.0], &[2]).requires_grad_();
        p.set_grad(Some(Tensor::from_vec(vec![0.1f64, 0.2], &[2])));
        let cfg = RmsPropConfig { momentum: 0.9, centered: true, ..Default::default() };
        let mut opt = RmsProp::new(vec![p.clone()], cfg);
        opt.step();
        let names: Vec<&str> = opt.state()[0].as_ref().unwrap().tensors.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["square_avg", "momentum_buffer", "grad_avg"]);
        assert!(p.to_vec::<f64>()[0] < 1.0);
    }
}
