//! Adagrad (`torch.optim.Adagrad`, single-tensor path).
//!
//! Per element at step `t` (1-based, per parameter):
//! ```text
//! g = -g                                   if maximize
//! g = g + wd * p                           if wd != 0
//! clr = lr / (1 + (t - 1) * lr_decay)
//! s = s + g * g                            sum (starts at initial_accumulator_value)
//! p = p - clr * g / (sqrt(s) + eps)
//! ```

use super::{for_each_param, optimizer_accessors, resolve_groups, Group, Optimizer, ParamGroup, ParamState};
use crate::error::panic_msg;
use crate::tensor::{Float, Tensor};

/// Adagrad hyperparameters; `Default` is PyTorch's (`lr` 1e-2, `eps` 1e-10, the rest 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdagradConfig {
    /// Learning rate.
    pub lr: f64,
    /// Learning-rate decay per step.
    pub lr_decay: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Starting value of the squared-gradient sum.
    pub initial_accumulator_value: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
        }
    }
}

/// `torch.optim.Adagrad`.
#[derive(Debug)]
pub struct Adagrad {
    config: AdagradConfig,
    groups: Vec<Group>,
    state: Vec<Option<ParamState>>,
}

impl Adagrad {
    /// Adagrad over `params` (one group).
    ///
    /// # Panics
    /// On a negative lr, lr_decay, weight decay, initial accumulator value or eps.
    #[track_caller]
    pub fn new(params: Vec<Tensor>, config: AdagradConfig) -> Adagrad {
        Adagrad::with_groups(vec![ParamGroup::new(params)], config)
    }

    /// Adagrad over parameter groups; a group's `None` fields take `config`'s values.
    ///
    /// # Panics
    /// As [`new`](Self::new), and if a parameter appears twice.
    #[track_caller]
    pub fn with_groups(groups: Vec<ParamGroup>, config: AdagradConfig) -> Adagrad {
        let c = config;
        if [c.lr, c.lr_decay, c.weight_decay, c.initial_accumulator_value, c.eps].iter().any(|&x| x < 0.0) {
            panic_msg(format!("Adagrad: invalid hyperparameters {c:?}: all must be >= 0"));
        }
        let (groups, state) = resolve_groups("Adagrad", groups, c.lr, c.weight_decay, 0.0);
        Adagrad { config, groups, state }
    }

    /// The hyperparameters given at construction.
    pub fn config(&self) -> &AdagradConfig {
        &self.config
    }
}

impl Optimizer for Adagrad {
    optimizer_accessors!();

    #[track_caller]
    fn step(&mut self) {
        let c = self.config;
        for_each_param("Adagrad", &self.groups, &mut self.state, |g, p, grad, s| {
            let clr = g.lr / (1.0 + (s.step - 1) as f64 * c.lr_decay);
            let sum = s.slot("sum", p, c.initial_accumulator_value);
            let (wd, eps, maximize) = (g.weight_decay, c.eps, c.maximize);
            crate::dispatch_float!(p.dtype(), "Adagrad", T => p.with_slice_mut::<T, _>(|ps| {
                grad.with_slice::<T, _>(|gs| sum.with_slice_mut::<T, _>(|ss| adagrad_update(ps, gs, ss, clr, wd, eps, maximize)))
            }))
        });
    }
}

/// One Adagrad update over slices with the decayed learning rate `clr`.
fn adagrad_update<F: Float>(p: &mut [F], g: &[F], sum: &mut [F], clr: f64, wd: f64, eps: f64, maximize: bool) {
    let (neg_clr, wd_f, eps) = (F::from_f64(-clr), F::from_f64(wd), F::from_f64(eps));
    for i in 0..p.len() {
        let mut gi = if maximize { -g[i] } else { g[i] };
        if wd != 0.0 {
            gi += wd_f * p[i];
        }
        let s = sum[i] + gi * gi;
        sum[i] = s;
        p[i] += neg_clr * gi / (s.sqrt() + eps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_with_zero_accumulator_is_lr_times_sign() {
        let p = Tensor::from_vec(vec![0.0f64, 0.0], &[2]).requires_grad_();
        p.set_grad(Some(Tensor::from_vec(vec![4.0f64, -0.25], &[2])));
        let mut opt = Adagrad::new(vec![p.clone()], AdagradConfig { lr: 0.5, ..Default::default() });
        opt.step();
        let got = p.to_vec::<f64>();
        assert!((got[0] + 0.5).abs() < 1e-9 && (got[1] - 0.5).abs() < 1e-9, "{got:?}");
        assert_eq!(opt.state()[0].as_ref().unwrap().get("sum").unwrap().to_vec::<f64>(), vec![16.0, 0.0625]);
    }
}
