//! Optimizers, learning-rate schedules and gradient clipping, with PyTorch's update rules and defaults.
//!
//! An optimizer owns parameter groups (each with its own `lr`, `weight_decay` and `momentum`) and per-parameter
//! state. `step()` reads every parameter's `.grad()`, skips parameters without one (as PyTorch does), and updates
//! the parameter in place under `no_grad` with one loop over contiguous slices (`f32` or `f64`).
//!
//! | optimizer | update (g = grad, p = param, t = step count) |
//! |---|---|
//! | [`Sgd`] | g += wd p; b = mu b + (1 - damp) g (b = g at t = 1); g = nesterov ? g + mu b : b; p -= lr g |
//! | [`Adam`] | g += wd p; m = lerp(m, g, 1 - b1); v = b2 v + (1 - b2) g^2; p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps) |
//! | [`Adam::adamw`] | p *= 1 - lr wd, then Adam without the `g += wd p` term |
//! | [`RmsProp`] | g += wd p; v = a v + (1 - a) g^2; c = sqrt(v - gavg^2) (centered) or sqrt(v); b = mu b + g / (c + eps); p -= lr b |
//! | [`Adagrad`] | g += wd p; s += g^2; p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps) |
//!
//! Optimizers have no backward: they run outside the graph. Schedules live in [`StepLr`] and friends
//! (driven by [`Scheduler`]), clipping in [`clip_grad_norm_`] and [`clip_grad_value_`].
//!
//! ```
//! use tensorgrad::optim::{Adam, AdamConfig, Optimizer};
//! use tensorgrad::Tensor;
//!
//! let w = Tensor::from_vec(vec![1.0f64, -2.0], &[2]).requires_grad_();
//! let mut opt = Adam::new(vec![w.clone()], AdamConfig { lr: 0.1, ..AdamConfig::default() });
//! for _ in 0..100 {
//!     opt.zero_grad();
//!     (&w * &w).sum().backward();
//!     opt.step();
//! }
//! assert!(w.to_vec::<f64>().iter().all(|x| x.abs() < 0.05));
//! assert_eq!(opt.state()[0].as_ref().unwrap().step, 100);
//! ```

mod adagrad;
mod adam;
mod clip;
mod rmsprop;
mod schedule;
mod sgd;

pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{adam_update_slices, Adam, AdamConfig, AdamScalars};
pub use clip::{clip_grad_norm_, clip_grad_value_};
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use schedule::{
    Anneal, CosineAnnealingLr, ExponentialLr, LrSchedule, MultiStepLr, OneCycleLr, PlateauConfig, PlateauMode,
    ReduceLrOnPlateau, Scheduler, StepLr, ThresholdMode, WarmupCosineLr,
};
pub use sgd::{Sgd, SgdConfig};

use crate::error::panic_msg;
use crate::tensor::Tensor;
use std::fmt;

/// Parameters sharing hyperparameters, as given to an optimizer's `with_groups` constructor. `None` fields take
/// the optimizer's defaults (like keys missing from a PyTorch param-group dict).
#[derive(Clone, Debug)]
pub struct ParamGroup {
    /// The parameters (leaf tensors that require grad).
    pub params: Vec<Tensor>,
    /// Learning rate for this group.
    pub lr: Option<f64>,
    /// Weight decay for this group (L2 for SGD/Adam/RMSprop/Adagrad, decoupled for AdamW).
    pub weight_decay: Option<f64>,
}

impl ParamGroup {
    /// A group with the optimizer's default hyperparameters.
    pub fn new(params: Vec<Tensor>) -> ParamGroup {
        ParamGroup { params, lr: None, weight_decay: None }
    }

    /// Sets this group's learning rate.
    pub fn lr(mut self, lr: f64) -> ParamGroup {
        self.lr = Some(lr);
        self
    }

    /// Sets this group's weight decay.
    pub fn weight_decay(mut self, weight_decay: f64) -> ParamGroup {
        self.weight_decay = Some(weight_decay);
        self
    }
}

/// Splits named parameters into `[decay, no_decay]` groups, the usual recipe for AdamW: tensors of rank >= 2
/// (weight matrices, conv kernels, embeddings) get `weight_decay`; rank 0 and 1 tensors (biases, LayerNorm and
/// BatchNorm weights and biases) get none. Order within each group follows `named`.
pub fn decay_groups(named: &[(String, Tensor)], weight_decay: f64) -> Vec<ParamGroup> {
    let (decay, no_decay): (Vec<_>, Vec<_>) = named.iter().map(|(_, p)| p.clone()).partition(|p| p.rank() >= 2);
    vec![ParamGroup::new(decay).weight_decay(weight_decay), ParamGroup::new(no_decay).weight_decay(0.0)]
}

/// A parameter group as an optimizer holds it, every hyperparameter resolved. Schedulers change `lr` (and
/// [`OneCycleLr`] changes `momentum`).
#[derive(Clone, Debug)]
pub struct Group {
    /// The parameters.
    pub params: Vec<Tensor>,
    /// Current learning rate.
    pub lr: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// SGD and RMSprop: momentum; Adam and AdamW: beta1; Adagrad: unused (0).
    pub momentum: f64,
}

/// One parameter's optimizer state, for inspection and checkpoints: the number of steps that updated it and
/// named buffers shaped like the parameter (`exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`, `momentum_buffer`,
/// `square_avg`, `grad_avg`, `sum`), named as in PyTorch's `optimizer.state`.
#[derive(Clone, Debug)]
pub struct ParamState {
    /// Steps taken on this parameter.
    pub step: u64,
    /// Named state buffers, in creation order. The tensors are the live buffers (cloned handles share storage).
    pub tensors: Vec<(&'static str, Tensor)>,
}

impl ParamState {
    /// The buffer called `name`, if it exists yet.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| *n == name).map(|(_, t)| t)
    }

    /// The buffer `name`, created as `full_like(like, init)` the first time.
    pub(crate) fn slot(&mut self, name: &'static str, like: &Tensor, init: f64) -> Tensor {
        if let Some(t) = self.get(name) {
            return t.clone();
        }
        let t = Tensor::full_dtype(like.shape(), init, like.dtype());
        self.tensors.push((name, t.clone()));
        t
    }
}

/// An optimizer's saveable state: named tensors (`state.{i}.{buffer}`, `i` the parameter's index counted
/// across groups as in PyTorch) and named scalars (`state.{i}.step`, `param_groups.{g}.lr`,
/// `param_groups.{g}.weight_decay`, `param_groups.{g}.momentum`).
#[derive(Clone, Debug, Default)]
pub struct StateDict {
    /// State buffers.
    pub tensors: Vec<(String, Tensor)>,
    /// Step counts and group hyperparameters.
    pub scalars: Vec<(String, f64)>,
}

/// Why [`Optimizer::load_state_dict`] refused a state dict. Nothing is changed when it fails.
#[derive(Clone, Debug, PartialEq)]
pub enum StateDictError {
    /// A name this optimizer does not have (a parameter index or group out of range, an unknown key).
    UnexpectedKey(String),
    /// A group hyperparameter or a step count that must be present is missing.
    MissingKey(String),
    /// A state buffer whose shape or dtype differs from its parameter's.
    Mismatch {
        /// The entry.
        key: String,
        /// What the parameter has (`[shape] dtype`).
        expected: String,
        /// What the state dict has.
        got: String,
    },
}

impl fmt::Display for StateDictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateDictError::UnexpectedKey(k) => write!(f, "optimizer state dict: unexpected key {k}"),
            StateDictError::MissingKey(k) => write!(f, "optimizer state dict: missing key {k}"),
            StateDictError::Mismatch { key, expected, got } => {
                write!(f, "optimizer state dict: {key}: expected {expected}, got {got}")
            }
        }
    }
}

impl std::error::Error for StateDictError {}

/// The interface every optimizer implements; schedulers and training loops program against it.
pub trait Optimizer {
    /// Applies one update to every parameter that has a gradient.
    ///
    /// # Panics
    /// If a parameter is not contiguous or not `f32`/`f64`, or its gradient's shape or dtype differs.
    fn step(&mut self);

    /// The parameter groups.
    fn groups(&self) -> &[Group];

    /// The parameter groups, mutably (to change hyperparameters between steps).
    fn groups_mut(&mut self) -> &mut [Group];

    /// Per-parameter state in parameter order across groups; `None` before a parameter's first update.
    fn state(&self) -> &[Option<ParamState>];

    /// Per-parameter state, mutably.
    fn state_mut(&mut self) -> &mut [Option<ParamState>];

    /// Clears every parameter's gradient (`zero_grad(set_to_none=True)`, PyTorch's default).
    fn zero_grad(&mut self) {
        for g in self.groups() {
            for p in &g.params {
                p.set_grad(None);
            }
        }
    }

    /// The learning rate of the first group.
    ///
    /// # Panics
    /// If there are no groups.
    fn lr(&self) -> f64 {
        self.groups()[0].lr
    }

    /// Sets every group's learning rate.
    fn set_lr(&mut self, lr: f64) {
        for g in self.groups_mut() {
            g.lr = lr;
        }
    }

    /// Every group's learning rate.
    fn lrs(&self) -> Vec<f64> {
        self.groups().iter().map(|g| g.lr).collect()
    }

    /// All parameters, in order across groups.
    fn params(&self) -> Vec<Tensor> {
        self.groups().iter().flat_map(|g| g.params.iter().cloned()).collect()
    }

    /// The saveable state: see [`StateDict`] for the names.
    fn state_dict(&self) -> StateDict {
        let mut sd = StateDict::default();
        for (gi, g) in self.groups().iter().enumerate() {
            sd.scalars.push((format!("param_groups.{gi}.lr"), g.lr));
            sd.scalars.push((format!("param_groups.{gi}.weight_decay"), g.weight_decay));
            sd.scalars.push((format!("param_groups.{gi}.momentum"), g.momentum));
        }
        for (i, s) in self.state().iter().enumerate() {
            if let Some(s) = s {
                sd.scalars.push((format!("state.{i}.step"), s.step as f64));
                for (name, t) in &s.tensors {
                    let copy = Tensor::zeros_dtype(t.shape(), t.dtype());
                    copy.copy_(t);
                    sd.tensors.push((format!("state.{i}.{name}"), copy));
                }
            }
        }
        sd
    }

    /// Restores state saved by [`state_dict`](Self::state_dict) from an optimizer of the same kind over
    /// parameters of the same shapes. Buffer values are copied; nothing changes on `Err`.
    fn load_state_dict(&mut self, sd: &StateDict) -> Result<(), StateDictError> {
        let params = self.params();
        let n_groups = self.groups().len();
        let mut new_state: Vec<Option<ParamState>> = vec![None; params.len()];
        let mut hyper = vec![[None::<f64>; 3]; n_groups];
        for (key, v) in &sd.scalars {
            let parts: Vec<&str> = key.split('.').collect();
            let unexpected = || StateDictError::UnexpectedKey(key.clone());
            match parts.as_slice() {
                ["param_groups", g, field] => {
                    let g: usize = g.parse().map_err(|_| unexpected())?;
                    let slot = match *field {
                        "lr" => 0,
                        "weight_decay" => 1,
                        "momentum" => 2,
                        _ => return Err(unexpected()),
                    };
                    *hyper.get_mut(g).ok_or_else(unexpected)?.get_mut(slot).ok_or_else(unexpected)? = Some(*v);
                }
                ["state", i, "step"] => {
                    let i: usize = i.parse().map_err(|_| unexpected())?;
                    if !(v.is_finite() && *v >= 0.0) {
                        return Err(StateDictError::Mismatch {
                            key: key.clone(),
                            expected: "a step count".into(),
                            got: v.to_string(),
                        });
                    }
                    let s = new_state.get_mut(i).ok_or_else(unexpected)?;
                    *s = Some(ParamState { step: *v as u64, tensors: Vec::new() });
                }
                _ => return Err(unexpected()),
            }
        }
        for (key, t) in &sd.tensors {
            let unexpected = || StateDictError::UnexpectedKey(key.clone());
            let rest = key.strip_prefix("state.").ok_or_else(unexpected)?;
            let (i, name) = rest.split_once('.').ok_or_else(unexpected)?;
            let i: usize = i.parse().map_err(|_| unexpected())?;
            let p = params.get(i).ok_or_else(unexpected)?;
            let name = static_state_name(name).ok_or_else(unexpected)?;
            if t.shape() != p.shape() || t.dtype() != p.dtype() {
                return Err(StateDictError::Mismatch {
                    key: key.clone(),
                    expected: format!("{:?} {}", p.shape(), p.dtype()),
                    got: format!("{:?} {}", t.shape(), t.dtype()),
                });
            }
            let s = new_state[i].as_mut().ok_or_else(|| StateDictError::MissingKey(format!("state.{i}.step")))?;
            let copy = Tensor::zeros_dtype(t.shape(), t.dtype());
            copy.copy_(t);
            s.tensors.push((name, copy));
        }
        for (gi, h) in hyper.iter().enumerate() {
            for (slot, field) in ["lr", "weight_decay", "momentum"].iter().enumerate() {
                if h[slot].is_none() {
                    return Err(StateDictError::MissingKey(format!("param_groups.{gi}.{field}")));
                }
            }
        }
        for (g, h) in self.groups_mut().iter_mut().zip(&hyper) {
            g.lr = h[0].unwrap_or(g.lr);
            g.weight_decay = h[1].unwrap_or(g.weight_decay);
            g.momentum = h[2].unwrap_or(g.momentum);
        }
        self.state_mut().clone_from_slice(&new_state);
        Ok(())
    }
}

/// The `'static` spelling of a known state-buffer name.
fn static_state_name(name: &str) -> Option<&'static str> {
    const NAMES: [&str; 7] =
        ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer", "square_avg", "grad_avg", "sum"];
    NAMES.into_iter().find(|n| *n == name)
}

/// Groups with defaults filled in, and an empty state slot per parameter.
///
/// # Panics
/// If a parameter appears twice, or is not a float tensor.
#[track_caller]
pub(crate) fn resolve_groups(
    op: &str,
    groups: Vec<ParamGroup>,
    lr: f64,
    weight_decay: f64,
    momentum: f64,
) -> (Vec<Group>, Vec<Option<ParamState>>) {
    let mut seen = std::collections::HashSet::new();
    let mut n = 0;
    let groups: Vec<Group> = groups
        .into_iter()
        .map(|g| {
            for p in &g.params {
                if !seen.insert(p.id()) {
                    panic_msg(format!("{op}: some parameters appear in more than one parameter group"));
                }
                if !p.dtype().is_float() {
                    panic_msg(format!("{op}: can only optimize float tensors, got dtype {}", p.dtype()));
                }
            }
            n += g.params.len();
            Group {
                params: g.params,
                lr: g.lr.unwrap_or(lr),
                weight_decay: g.weight_decay.unwrap_or(weight_decay),
                momentum,
            }
        })
        .collect();
    (groups, vec![None; n])
}

/// Runs `f(group, param, grad, state)` under `no_grad` for every parameter that has a gradient, creating its
/// state on first use and counting the step.
#[track_caller]
pub(crate) fn for_each_param(
    op: &str,
    groups: &[Group],
    state: &mut [Option<ParamState>],
    mut f: impl FnMut(&Group, &Tensor, &Tensor, &mut ParamState),
) {
    let _guard = crate::set_grad_enabled(false);
    let mut i = 0;
    for g in groups {
        for p in &g.params {
            let idx = i;
            i += 1;
            let Some(mut grad) = p.grad() else { continue };
            if grad.shares_storage(p) {
                // The update holds the parameter's write lock while reading the gradient: give it its own copy.
                let own = Tensor::zeros_dtype(grad.shape(), grad.dtype());
                own.copy_(&grad);
                grad = own;
            }
            if grad.shape() != p.shape() || grad.dtype() != p.dtype() {
                panic_msg(format!(
                    "{op}: gradient {:?} {} does not match parameter {:?} {}",
                    grad.shape(),
                    grad.dtype(),
                    p.shape(),
                    p.dtype()
                ));
            }
            let s = state[idx].get_or_insert_with(|| ParamState { step: 0, tensors: Vec::new() });
            s.step += 1;
            f(g, p, &grad, s);
        }
    }
}

/// Implements the accessor methods of [`Optimizer`] for a struct with `groups` and `state` fields.
macro_rules! optimizer_accessors {
    () => {
        fn groups(&self) -> &[$crate::optim::Group] {
            &self.groups
        }
        fn groups_mut(&mut self) -> &mut [$crate::optim::Group] {
            &mut self.groups
        }
        fn state(&self) -> &[Option<$crate::optim::ParamState>] {
            &self.state
        }
        fn state_mut(&mut self) -> &mut [Option<$crate::optim::ParamState>] {
            &mut self.state
        }
    };
}
pub(crate) use optimizer_accessors;
