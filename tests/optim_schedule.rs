//! Learning-rate schedules against PyTorch's lr (and momentum) sequences, two param groups with base lrs 0.1
//! and 0.01 (fixture: tests/fixtures/optim/gen_optim.py). PyTorch computes most schedules recursively; the
//! closed forms here agree to rounding.

mod common;

use serde_json::Value;
use tensorgrad::optim::{
    Adam, AdamConfig, Anneal, CosineAnnealingLr, ExponentialLr, LrSchedule, MultiStepLr, OneCycleLr, Optimizer,
    ParamGroup, PlateauConfig, PlateauMode, ReduceLrOnPlateau, Scheduler, Sgd, SgdConfig, StepLr, ThresholdMode,
    WarmupCosineLr,
};
use tensorgrad::Tensor;

fn groups() -> Vec<ParamGroup> {
    vec![
        ParamGroup::new(vec![Tensor::zeros(&[1]).requires_grad_()]).lr(0.1),
        ParamGroup::new(vec![Tensor::zeros(&[1]).requires_grad_()]).lr(0.01),
    ]
}

fn sgd(momentum: f64) -> Sgd {
    Sgd::with_groups(groups(), SgdConfig { momentum, ..Default::default() })
}

fn close(got: f64, expected: f64, what: &str) {
    assert!(
        (got - expected).abs() <= 1e-12 + common::F64_RTOL * expected.abs(),
        "{what}: got {got:e}, expected {expected:e}"
    );
}

/// Checks the recorded lrs (and momenta) at construction and after each step.
fn check(name: &str, opt: &mut dyn Optimizer, mut step: impl FnMut(&mut dyn Optimizer, usize), check_momentum: bool) {
    let fx = common::load_fixture("optim/schedules.json");
    let s = &fx["schedules"][name];
    let lrs = s["lrs"].as_array().unwrap();
    let moms = s["momentum"].as_array().unwrap();
    for (k, (lr, mom)) in lrs.iter().zip(moms).enumerate() {
        if k > 0 {
            opt.step();
            step(opt, k - 1);
        }
        for g in 0..2 {
            close(opt.groups()[g].lr, lr[g].as_f64().unwrap(), &format!("{name}: epoch {k} group {g} lr"));
            if check_momentum {
                close(opt.groups()[g].momentum, mom[g].as_f64().unwrap(), &format!("{name}: epoch {k} momentum"));
            }
        }
    }
}

fn run<S: LrSchedule>(name: &str, schedule: S) {
    let mut opt = sgd(0.0);
    let mut sched = Scheduler::new(schedule, &mut opt);
    check(name, &mut opt, |o, _| sched.step(o), false);
}

#[test]
fn step_lr_matches_pytorch() {
    run("step", StepLr { step_size: 3, gamma: 0.5 });
}

#[test]
fn multistep_lr_matches_pytorch() {
    run("multistep", MultiStepLr { milestones: vec![2, 5, 5, 9], gamma: 0.1 });
}

#[test]
fn exponential_lr_matches_pytorch() {
    run("exponential", ExponentialLr { gamma: 0.9 });
}

#[test]
fn cosine_annealing_closed_form_matches_pytorch_chainable_form() {
    // 35 epochs with t_max 10: down, back up, and down again, as PyTorch's recursive form does.
    run("cosine", CosineAnnealingLr { t_max: 10, eta_min: 0.001 });
}

#[test]
fn warmup_cosine_matches_sequential_linear_then_cosine() {
    run("warmup_cosine", WarmupCosineLr { start_factor: 0.1, warmup: 5, t_max: 15, eta_min: 1e-4 });
}

#[test]
fn one_cycle_matches_pytorch_lr_and_momentum() {
    let mut opt = sgd(0.9);
    let mut sched = Scheduler::new(OneCycleLr::new(0.5, 40), &mut opt);
    check("onecycle_sgd", &mut opt, |o, _| sched.step(o), true);
}

#[test]
fn one_cycle_three_phase_linear_cycles_adam_beta1() {
    let mut opt = Adam::with_groups(groups(), AdamConfig::default());
    let schedule = OneCycleLr {
        pct_start: 0.25,
        three_phase: true,
        anneal: Anneal::Linear,
        div_factor: 10.0,
        final_div_factor: 100.0,
        ..OneCycleLr::new(0.01, 30)
    };
    let mut sched = Scheduler::new(schedule, &mut opt);
    check("onecycle_adam_three_phase_linear", &mut opt, |o, _| sched.step(o), true);
}

#[test]
#[should_panic(expected = "total steps")]
fn one_cycle_past_the_end_panics() {
    let mut opt = sgd(0.9);
    let mut sched = Scheduler::new(OneCycleLr::new(0.5, 2), &mut opt);
    for _ in 0..3 {
        sched.step(&mut opt);
    }
}

fn metrics() -> Vec<f64> {
    let fx = common::load_fixture("optim/schedules.json");
    fx["plateau_metrics"].as_array().unwrap().iter().map(Value::as_f64).map(Option::unwrap).collect()
}

#[test]
fn reduce_on_plateau_min_rel_with_cooldown_and_min_lr_matches_pytorch() {
    let m = metrics();
    let mut opt = sgd(0.0);
    let mut plateau = ReduceLrOnPlateau::new(PlateauConfig {
        factor: 0.5,
        patience: 2,
        cooldown: 1,
        min_lr: 0.002,
        ..Default::default()
    });
    check("plateau_min", &mut opt, |o, k| plateau.step(m[k], o), false);
    assert_eq!(plateau.best(), 0.5);
}

#[test]
fn reduce_on_plateau_max_abs_matches_pytorch() {
    let m = metrics();
    let mut opt = sgd(0.0);
    let mut plateau = ReduceLrOnPlateau::new(PlateauConfig {
        mode: PlateauMode::Max,
        factor: 0.3,
        patience: 1,
        threshold: 0.05,
        threshold_mode: ThresholdMode::Abs,
        ..Default::default()
    });
    check("plateau_max_abs", &mut opt, |o, k| plateau.step(m[k], o), false);
}
