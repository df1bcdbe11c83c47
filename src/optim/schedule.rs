//! Learning-rate schedules (`torch.optim.lr_scheduler`), in closed form.
//!
//! With `b` a group's initial learning rate and `e` the number of `step()` calls so far:
//! ```text
//! StepLr            b * gamma^floor(e / step_size)
//! MultiStepLr       b * gamma^(number of milestones <= e)
//! ExponentialLr     b * gamma^e
//! CosineAnnealingLr eta_min + (b - eta_min) * (1 + cos(pi * e / t_max)) / 2
//! WarmupCosineLr    b * (s + (1 - s) * e / w)  for e < w  (LinearLR(start_factor = s, total_iters = w))
//!                   then CosineAnnealingLr at e - w        (SequentialLR with milestone w)
//! OneCycleLr        cos (or linear) anneal max_lr / div -> max_lr over pct_start of total_steps, then down
//!                   to max_lr / div / final_div; momentum (Adam: beta1) cycles the opposite way
//! ReduceLrOnPlateau lr = max(lr * factor, min_lr) after more than `patience` epochs without improvement
//! ```
//! PyTorch computes most of these recursively ("chainable" form, each lr from the previous one); the closed
//! forms are the same numbers up to rounding (checked against PyTorch's sequences in `tests/optim_schedule.rs`)
//! and they cannot drift.
//!
//! ```
//! use tensorgrad::optim::{CosineAnnealingLr, Optimizer, Scheduler, Sgd, SgdConfig};
//! let mut opt = Sgd::new(vec![], SgdConfig { lr: 0.1, ..SgdConfig::default() });
//! let mut sched = Scheduler::new(CosineAnnealingLr { t_max: 10, eta_min: 0.0 }, &mut opt);
//! for _ in 0..5 {
//!     opt.step();
//!     sched.step(&mut opt);
//! }
//! assert!((opt.lr() - 0.05).abs() < 1e-12);
//! ```

use super::Optimizer;
use crate::error::panic_msg;
use std::f64::consts::PI;

/// A learning-rate schedule in closed form, driven by a [`Scheduler`].
pub trait LrSchedule {
    /// The learning rate after `epoch` steps for a group whose learning rate was `base_lr` when the scheduler
    /// was created.
    fn lr_at(&self, base_lr: f64, epoch: usize) -> f64;

    /// The momentum (Adam: beta1) after `epoch` steps, for schedules that cycle it.
    fn momentum_at(&self, _epoch: usize) -> Option<f64> {
        None
    }
}

/// Drives an [`LrSchedule`]: remembers each group's initial learning rate and the epoch count, and writes the
/// scheduled values into the optimizer's groups. Like PyTorch, creating it sets the epoch-0 values.
#[derive(Clone, Debug)]
pub struct Scheduler<S> {
    /// The schedule.
    pub schedule: S,
    base_lrs: Vec<f64>,
    last_epoch: usize,
}

impl<S: LrSchedule> Scheduler<S> {
    /// Starts `schedule` on `opt` (epoch 0).
    pub fn new(schedule: S, opt: &mut dyn Optimizer) -> Scheduler<S> {
        let s = Scheduler { schedule, base_lrs: opt.lrs(), last_epoch: 0 };
        s.apply(opt);
        s
    }

    /// Advances one epoch (or iteration) and updates `opt`'s learning rates. Call after `opt.step()`.
    ///
    /// # Panics
    /// If the schedule ends (a [`OneCycleLr`] stepped past `total_steps`).
    #[track_caller]
    pub fn step(&mut self, opt: &mut dyn Optimizer) {
        self.last_epoch += 1;
        self.apply(opt);
    }

    /// The number of `step()` calls so far.
    pub fn last_epoch(&self) -> usize {
        self.last_epoch
    }

    /// Each group's current scheduled learning rate.
    pub fn last_lr(&self) -> Vec<f64> {
        self.base_lrs.iter().map(|&b| self.schedule.lr_at(b, self.last_epoch)).collect()
    }

    /// The groups' learning rates when the scheduler was created.
    pub fn base_lrs(&self) -> &[f64] {
        &self.base_lrs
    }

    /// Jumps to `epoch` (restoring a checkpoint) and updates `opt`.
    pub fn set_last_epoch(&mut self, epoch: usize, opt: &mut dyn Optimizer) {
        self.last_epoch = epoch;
        self.apply(opt);
    }

    #[track_caller]
    fn apply(&self, opt: &mut dyn Optimizer) {
        let lrs = self.last_lr();
        let momentum = self.schedule.momentum_at(self.last_epoch);
        for (g, lr) in opt.groups_mut().iter_mut().zip(lrs) {
            g.lr = lr;
            if let Some(m) = momentum {
                g.momentum = m;
            }
        }
    }
}

/// `StepLR`: decays by `gamma` every `step_size` epochs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLr {
    /// Epochs between decays.
    pub step_size: usize,
    /// Decay factor.
    pub gamma: f64,
}

impl LrSchedule for StepLr {
    fn lr_at(&self, base_lr: f64, epoch: usize) -> f64 {
        base_lr * self.gamma.powi((epoch / self.step_size.max(1)) as i32)
    }
}

/// `MultiStepLR`: decays by `gamma` at each milestone epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct MultiStepLr {
    /// Epochs at which to decay (a repeated milestone decays once per repetition, as in PyTorch).
    pub milestones: Vec<usize>,
    /// Decay factor.
    pub gamma: f64,
}

impl LrSchedule for MultiStepLr {
    fn lr_at(&self, base_lr: f64, epoch: usize) -> f64 {
        let passed = self.milestones.iter().filter(|&&m| m <= epoch).count();
        base_lr * self.gamma.powi(passed as i32)
    }
}

/// `ExponentialLR`: decays by `gamma` every epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExponentialLr {
    /// Decay factor.
    pub gamma: f64,
}

impl LrSchedule for ExponentialLr {
    fn lr_at(&self, base_lr: f64, epoch: usize) -> f64 {
        base_lr * self.gamma.powi(epoch as i32)
    }
}

/// `CosineAnnealingLR`: half a cosine from the base lr down to `eta_min` over `t_max` epochs (and back up after,
/// as PyTorch's does).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineAnnealingLr {
    /// Half-period in epochs.
    pub t_max: usize,
    /// Minimum learning rate.
    pub eta_min: f64,
}

impl LrSchedule for CosineAnnealingLr {
    fn lr_at(&self, base_lr: f64, epoch: usize) -> f64 {
        let t = epoch as f64 / self.t_max.max(1) as f64;
        self.eta_min + (base_lr - self.eta_min) * (1.0 + (PI * t).cos()) / 2.0
    }
}

/// Linear warmup then cosine annealing: PyTorch's
/// `SequentialLR([LinearLR(start_factor, total_iters=warmup), CosineAnnealingLR(t_max, eta_min)], [warmup])`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WarmupCosineLr {
    /// Fraction of the base lr at epoch 0 (LinearLR's `start_factor`, PyTorch default 1/3).
    pub start_factor: f64,
    /// Warmup length in epochs (LinearLR's `total_iters` and SequentialLR's milestone).
    pub warmup: usize,
    /// Cosine half-period after warmup.
    pub t_max: usize,
    /// Minimum learning rate of the cosine phase.
    pub eta_min: f64,
}

impl LrSchedule for WarmupCosineLr {
    fn lr_at(&self, base_lr: f64, epoch: usize) -> f64 {
        if epoch < self.warmup {
            let frac = epoch as f64 / self.warmup as f64;
            base_lr * (self.start_factor + (1.0 - self.start_factor) * frac)
        } else {
            CosineAnnealingLr { t_max: self.t_max, eta_min: self.eta_min }.lr_at(base_lr, epoch - self.warmup)
        }
    }
}

/// How [`OneCycleLr`] interpolates within a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anneal {
    /// `end + (start - end) / 2 * (1 + cos(pi * pct))` (PyTorch's default).
    Cos,
    /// `start + (end - start) * pct`.
    Linear,
}

/// `OneCycleLR` (stepped once per batch). Ignores the optimizer's lr: the cycle is set by `max_lr`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OneCycleLr {
    /// Peak learning rate.
    pub max_lr: f64,
    /// Steps in the cycle; stepping past it panics.
    pub total_steps: usize,
    /// Fraction of the cycle spent increasing (0.3).
    pub pct_start: f64,
    /// Initial lr = `max_lr / div_factor` (25).
    pub div_factor: f64,
    /// Final lr = initial lr / `final_div_factor` (1e4).
    pub final_div_factor: f64,
    /// Three phases (up, down to the initial lr, down to the final lr) instead of two (false).
    pub three_phase: bool,
    /// Interpolation (cos).
    pub anneal: Anneal,
    /// Cycle momentum (Adam: beta1) inversely to the lr (true).
    pub cycle_momentum: bool,
    /// Lowest momentum, reached at the lr peak (0.85).
    pub base_momentum: f64,
    /// Highest momentum (0.95).
    pub max_momentum: f64,
}

impl OneCycleLr {
    /// PyTorch's defaults for a cycle of `total_steps` peaking at `max_lr`.
    pub fn new(max_lr: f64, total_steps: usize) -> OneCycleLr {
        OneCycleLr {
            max_lr,
            total_steps,
            pct_start: 0.3,
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
            anneal: Anneal::Cos,
            cycle_momentum: true,
            base_momentum: 0.85,
            max_momentum: 0.95,
        }
    }

    /// (end step, start lr, end lr, start momentum, end momentum) per phase.
    fn phases(&self) -> Vec<(f64, f64, f64, f64, f64)> {
        let initial = self.max_lr / self.div_factor;
        let min = initial / self.final_div_factor;
        let (lo, hi) = (self.base_momentum, self.max_momentum);
        let n = self.total_steps as f64;
        let up = self.pct_start * n - 1.0;
        if self.three_phase {
            vec![
                (up, initial, self.max_lr, hi, lo),
                (2.0 * self.pct_start * n - 2.0, self.max_lr, initial, lo, hi),
                (n - 1.0, initial, min, hi, hi),
            ]
        } else {
            vec![(up, initial, self.max_lr, hi, lo), (n - 1.0, self.max_lr, min, lo, hi)]
        }
    }

    /// (lr, momentum) at `epoch`.
    #[track_caller]
    fn at(&self, epoch: usize) -> (f64, f64) {
        if epoch > self.total_steps {
            panic_msg(format!(
                "OneCycleLr: tried to step {epoch} times; the specified number of total steps is {}",
                self.total_steps
            ));
        }
        let anneal = |start: f64, end: f64, pct: f64| match self.anneal {
            Anneal::Cos => end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0),
            Anneal::Linear => (end - start) * pct + start,
        };
        let phases = self.phases();
        let e = epoch as f64;
        let mut start_step = 0.0;
        for (i, &(end_step, lr0, lr1, m0, m1)) in phases.iter().enumerate() {
            if e <= end_step || i == phases.len() - 1 {
                let pct = (e - start_step) / (end_step - start_step);
                return (anneal(lr0, lr1, pct), anneal(m0, m1, pct));
            }
            start_step = end_step;
        }
        unreachable!("the last phase always matches")
    }
}

impl LrSchedule for OneCycleLr {
    #[track_caller]
    fn lr_at(&self, _base_lr: f64, epoch: usize) -> f64 {
        self.at(epoch).0
    }

    fn momentum_at(&self, epoch: usize) -> Option<f64> {
        self.cycle_momentum.then(|| self.at(epoch).1)
    }
}

/// Whether a lower or a higher metric is better, for [`ReduceLrOnPlateau`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlateauMode {
    /// Lower is better (a loss).
    Min,
    /// Higher is better (an accuracy).
    Max,
}

/// How [`ReduceLrOnPlateau`] measures a significant improvement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThresholdMode {
    /// Better than `best * (1 -/+ threshold)`.
    Rel,
    /// Better than `best -/+ threshold`.
    Abs,
}

/// [`ReduceLrOnPlateau`]'s settings; `Default` is PyTorch's (mode min, factor 0.1, patience 10, threshold
/// 1e-4 relative, no cooldown, min_lr 0, eps 1e-8).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlateauConfig {
    /// Min or max.
    pub mode: PlateauMode,
    /// Multiplier applied to the lr.
    pub factor: f64,
    /// Epochs without improvement tolerated.
    pub patience: usize,
    /// Significance threshold.
    pub threshold: f64,
    /// Relative or absolute threshold.
    pub threshold_mode: ThresholdMode,
    /// Epochs to wait after a reduction.
    pub cooldown: usize,
    /// Lower bound on the lr.
    pub min_lr: f64,
    /// Reductions smaller than this are skipped.
    pub eps: f64,
}

impl Default for PlateauConfig {
    fn default() -> Self {
        PlateauConfig {
            mode: PlateauMode::Min,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
        }
    }
}

/// `ReduceLROnPlateau`: multiplies every group's lr by `factor` (not below `min_lr`) once the metric has not
/// improved for more than `patience` epochs, then waits `cooldown` epochs.
#[derive(Clone, Debug, PartialEq)]
pub struct ReduceLrOnPlateau {
    /// The settings.
    pub config: PlateauConfig,
    best: f64,
    num_bad_epochs: usize,
    cooldown_counter: usize,
    last_epoch: usize,
}

impl Default for ReduceLrOnPlateau {
    fn default() -> Self {
        ReduceLrOnPlateau::new(PlateauConfig::default())
    }
}

impl ReduceLrOnPlateau {
    /// A fresh scheduler (best = the worst value for `config.mode`).
    pub fn new(config: PlateauConfig) -> ReduceLrOnPlateau {
        let best = if config.mode == PlateauMode::Min { f64::INFINITY } else { f64::NEG_INFINITY };
        ReduceLrOnPlateau { config, best, num_bad_epochs: 0, cooldown_counter: 0, last_epoch: 0 }
    }

    /// Epochs (calls to `step`) so far.
    pub fn last_epoch(&self) -> usize {
        self.last_epoch
    }

    /// The best metric seen so far.
    pub fn best(&self) -> f64 {
        self.best
    }

    /// Epochs since the last significant improvement (reset by a reduction and during cooldown).
    pub fn num_bad_epochs(&self) -> usize {
        self.num_bad_epochs
    }

    fn is_better(&self, a: f64) -> bool {
        let (t, best) = (self.config.threshold, self.best);
        match (self.config.mode, self.config.threshold_mode) {
            (PlateauMode::Min, ThresholdMode::Rel) => a < best * (1.0 - t),
            (PlateauMode::Min, ThresholdMode::Abs) => a < best - t,
            (PlateauMode::Max, ThresholdMode::Rel) => a > best * (t + 1.0),
            (PlateauMode::Max, ThresholdMode::Abs) => a > best + t,
        }
    }

    /// Records this epoch's `metric` and reduces `opt`'s learning rates if it has plateaued.
    ///
    /// # Panics
    /// If `factor >= 1`.
    #[track_caller]
    pub fn step(&mut self, metric: f64, opt: &mut dyn Optimizer) {
        let c = self.config;
        if c.factor >= 1.0 {
            panic_msg(format!("ReduceLrOnPlateau: factor should be < 1.0, got {}", c.factor));
        }
        self.last_epoch += 1;
        if self.is_better(metric) {
            self.best = metric;
            self.num_bad_epochs = 0;
        } else {
            self.num_bad_epochs += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad_epochs = 0;
        }
        if self.num_bad_epochs > c.patience {
            for g in opt.groups_mut() {
                let new_lr = (g.lr * c.factor).max(c.min_lr);
                if g.lr - new_lr > c.eps {
                    g.lr = new_lr;
                }
            }
            self.cooldown_counter = c.cooldown;
            self.num_bad_epochs = 0;
        }
    }
}
