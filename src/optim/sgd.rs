//! Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay
//! (`torch.optim.SGD`, single-tensor path).
//!
//! Per element, with `g` the gradient, `mu` the momentum, `tau` the dampening:
//! ```text
//! g = -g                        if maximize
//! g = g + wd * p                if wd != 0
//! b = g                         on the first step            (mu != 0)
//! b = mu * b + (1 - tau) * g    afterwards
//! g = g + mu * b  if nesterov, else g = b
//! p = p - lr * g
//! ```
//! State per parameter: `momentum_buffer` (only when `momentum != 0`), shaped like the parameter.

use super::{for_each_param, optimizer_accessors, resolve_groups, Group, Optimizer, ParamGroup, ParamState};
use crate::error::panic_msg;
use crate::tensor::{Float, Tensor};
use tensorgrad_kernels::elementwise::{sgd_momentum_step, SgdHyper};

/// SGD hyperparameters; `Default` is PyTorch's (`lr` 1e-3, everything else off).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor `mu` (0 disables the buffer).
    pub momentum: f64,
    /// Dampening `tau` applied to the gradient in the momentum update.
    pub dampening: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Nesterov momentum (needs `momentum > 0` and `dampening == 0`).
    pub nesterov: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig { lr: 1e-3, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false, maximize: false }
    }
}

/// `torch.optim.SGD`.
#[derive(Debug)]
pub struct Sgd {
    config: SgdConfig,
    groups: Vec<Group>,
    state: Vec<Option<ParamState>>,
}

impl Sgd {
    /// SGD over `params` (one group).
    ///
    /// # Panics
    /// On invalid hyperparameters (negative lr, momentum or weight decay; Nesterov without momentum or with
    /// dampening), as PyTorch raises `ValueError`.
    #[track_caller]
    pub fn new(params: Vec<Tensor>, config: SgdConfig) -> Sgd {
        Sgd::with_groups(vec![ParamGroup::new(params)], config)
    }

    /// SGD over parameter groups; a group's `None` fields take `config`'s values.
    ///
    /// # Panics
    /// As [`new`](Self::new), and if a parameter appears twice.
    #[track_caller]
    pub fn with_groups(groups: Vec<ParamGroup>, config: SgdConfig) -> Sgd {
        let c = config;
        if c.lr < 0.0 || c.momentum < 0.0 || c.weight_decay < 0.0 {
            panic_msg(format!("SGD: invalid hyperparameters {c:?}: lr, momentum and weight_decay must be >= 0"));
        }
        if c.nesterov && (c.momentum <= 0.0 || c.dampening != 0.0) {
            panic_msg("SGD: Nesterov momentum requires a momentum and zero dampening".to_string());
        }
        let (groups, state) = resolve_groups("SGD", groups, c.lr, c.weight_decay, c.momentum);
        Sgd { config, groups, state }
    }

    /// The hyperparameters given at construction (per-group `lr`, `weight_decay`, `momentum` live in
    /// [`groups`](Optimizer::groups)).
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }
}

impl Optimizer for Sgd {
    optimizer_accessors!();

    #[track_caller]
    fn step(&mut self) {
        let c = self.config;
        for_each_param("SGD", &self.groups, &mut self.state, |g, p, grad, s| {
            let h = SgdScalars {
                lr: g.lr,
                weight_decay: g.weight_decay,
                momentum: g.momentum,
                dampening: c.dampening,
                nesterov: c.nesterov,
                maximize: c.maximize,
            };
            let buf = (g.momentum != 0.0).then(|| {
                let first = s.get("momentum_buffer").is_none();
                (s.slot("momentum_buffer", p, 0.0), first)
            });
            let hyper = SgdHyper {
                lr: h.lr,
                momentum: h.momentum,
                dampening: h.dampening,
                weight_decay: h.weight_decay,
                nesterov: h.nesterov,
                maximize: h.maximize,
            };
            // The fused kernel (PyTorch's single-tensor formula with its FMAs); `sgd_update` is the reference.
            crate::dispatch_float!(p.dtype(), "SGD", T => p.with_slice_mut::<T, _>(|ps| {
                grad.with_slice::<T, _>(|gs| match &buf {
                    Some((b, first)) => {
                        b.with_slice_mut::<T, _>(|bs| sgd_momentum_step(ps, gs, Some(bs), &hyper, *first))
                    }
                    None => sgd_momentum_step(ps, gs, None, &hyper, false),
                })
            }))
        });
    }
}

/// The scalars of one SGD update.
struct SgdScalars {
    lr: f64,
    weight_decay: f64,
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    maximize: bool,
}

/// One SGD update over slices (see the module docs); `buf` is the momentum buffer and whether it is new.
/// The plain-Rust reference of the fused kernel `tensorgrad_kernels::elementwise::sgd_momentum_step` that
/// `step` runs (the tests compare the two).
#[cfg_attr(not(test), allow(dead_code))]
fn sgd_update<F: Float>(p: &mut [F], g: &[F], mut buf: Option<(&mut [F], bool)>, h: &SgdScalars) {
    let wd = F::from_f64(h.weight_decay);
    let mu = F::from_f64(h.momentum);
    let one_minus_damp = F::from_f64(1.0 - h.dampening);
    let neg_lr = F::from_f64(-h.lr);
    for i in 0..p.len() {
        let mut d = if h.maximize { -g[i] } else { g[i] };
        if h.weight_decay != 0.0 {
            d += wd * p[i];
        }
        if let Some((b, first)) = buf.as_mut() {
            let v = if *first { d } else { b[i] * mu + one_minus_damp * d };
            b[i] = v;
            d = if h.nesterov { d + mu * v } else { v };
        }
        p[i] += neg_lr * d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_sgd_is_p_minus_lr_g() {
        let p = Tensor::from_vec(vec![1.0f64, 2.0], &[2]).requires_grad_();
        p.set_grad(Some(Tensor::from_vec(vec![0.5f64, -1.0], &[2])));
        let mut opt = Sgd::new(vec![p.clone()], SgdConfig { lr: 0.1, ..Default::default() });
        opt.step();
        assert_eq!(p.to_vec::<f64>(), vec![1.0 - 0.05, 2.0 + 0.1]);
        assert!(opt.state()[0].as_ref().unwrap().get("momentum_buffer").is_none());
    }

    #[test]
    fn parameters_without_grad_are_skipped() {
        let p = Tensor::from_vec(vec![1.0f32], &[1]).requires_grad_();
        let mut opt = Sgd::new(vec![p.clone()], SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() });
        opt.step();
        assert_eq!(p.to_vec::<f32>(), vec![1.0]);
        assert!(opt.state()[0].is_none());
    }

    #[test]
    fn a_gradient_sharing_the_parameter_storage_does_not_deadlock() {
        let p = Tensor::from_vec(vec![1.0f64, 2.0], &[2]).requires_grad_();
        p.set_grad(Some(p.detach()));
        let mut opt = Sgd::new(vec![p.clone()], SgdConfig { lr: 0.5, ..Default::default() });
        opt.step();
        assert_eq!(p.to_vec::<f64>(), vec![0.5, 1.0]);
    }

    #[test]
    fn fused_kernel_matches_the_reference_loop() {
        for (momentum, dampening, wd, nesterov, maximize) in
            [(0.0, 0.0, 0.0, false, false), (0.9, 0.1, 0.01, false, true), (0.8, 0.0, 0.05, true, false)]
        {
            let h = SgdScalars { lr: 0.1, weight_decay: wd, momentum, dampening, nesterov, maximize };
            let hyper = SgdHyper { lr: 0.1, momentum, dampening, weight_decay: wd, nesterov, maximize };
            let n = 37;
            let mut p1: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let mut p2 = p1.clone();
            let (mut b1, mut b2) = (vec![0.0; n], vec![0.0; n]);
            for step in 0..3 {
                let g: Vec<f64> = (0..n).map(|i| ((i + step) as f64 * 0.71).cos()).collect();
                let first = step == 0;
                sgd_update(&mut p1, &g, (momentum != 0.0).then_some((&mut b1[..], first)), &h);
                sgd_momentum_step(&mut p2, &g, (momentum != 0.0).then_some(&mut b2[..]), &hyper, first);
            }
            for (a, b) in p1.iter().zip(&p2) {
                assert!((a - b).abs() < 1e-14, "{a} vs {b}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "Nesterov")]
    fn nesterov_without_momentum_panics() {
        Sgd::new(vec![], SgdConfig { nesterov: true, ..Default::default() });
    }
}
