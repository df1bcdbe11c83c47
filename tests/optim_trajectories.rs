//! Every optimizer option that changes the update, run for 20 steps on fixed parameters and a fixed gradient
//! sequence, against PyTorch's trajectory and final state (fixture: tests/fixtures/optim/gen_optim.py).

mod common;

use serde_json::Value;
use tensorgrad::optim::{
    Adagrad, AdagradConfig, Adam, AdamConfig, Optimizer, ParamGroup, RmsProp, RmsPropConfig, Sgd, SgdConfig,
};
use tensorgrad::{DType, Tensor};

/// A leaf that requires grad, with its own storage (`to_dtype` to the same dtype would share it).
fn fresh(t: &Tensor, dtype: DType) -> Tensor {
    let out = Tensor::zeros_dtype(t.shape(), dtype);
    out.copy_(&t.to_dtype(dtype));
    out.requires_grad_()
}

fn f(kw: &Value, key: &str, default: f64) -> f64 {
    kw.get(key).and_then(Value::as_f64).unwrap_or(default)
}

fn b(kw: &Value, key: &str) -> bool {
    kw.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The optimizer a fixture case describes, over `params` ([W, b]).
fn build(case: &Value, params: &[Tensor]) -> Box<dyn Optimizer> {
    let kw = &case["kwargs"];
    let groups: Vec<ParamGroup> = match case["groups"].as_array() {
        None => vec![ParamGroup::new(params.to_vec())],
        Some(gs) => gs
            .iter()
            .zip(params)
            .map(|(g, p)| {
                let mut group = ParamGroup::new(vec![p.clone()]);
                group.lr = g.get("lr").and_then(Value::as_f64);
                group.weight_decay = g.get("weight_decay").and_then(Value::as_f64);
                group
            })
            .collect(),
    };
    match case["opt"].as_str().unwrap() {
        "SGD" => Box::new(Sgd::with_groups(
            groups,
            SgdConfig {
                lr: f(kw, "lr", 1e-3),
                momentum: f(kw, "momentum", 0.0),
                dampening: f(kw, "dampening", 0.0),
                weight_decay: f(kw, "weight_decay", 0.0),
                nesterov: b(kw, "nesterov"),
                maximize: b(kw, "maximize"),
            },
        )),
        name @ ("Adam" | "AdamW") => {
            let base = if name == "AdamW" { AdamConfig::adamw() } else { AdamConfig::default() };
            let betas = kw.get("betas").map(|v| (v[0].as_f64().unwrap(), v[1].as_f64().unwrap()));
            Box::new(Adam::with_groups(
                groups,
                AdamConfig {
                    lr: f(kw, "lr", base.lr),
                    betas: betas.unwrap_or(base.betas),
                    eps: f(kw, "eps", base.eps),
                    weight_decay: f(kw, "weight_decay", base.weight_decay),
                    amsgrad: b(kw, "amsgrad"),
                    maximize: b(kw, "maximize"),
                    ..base
                },
            ))
        }
        "RMSprop" => Box::new(RmsProp::with_groups(
            groups,
            RmsPropConfig {
                lr: f(kw, "lr", 1e-2),
                alpha: f(kw, "alpha", 0.99),
                eps: f(kw, "eps", 1e-8),
                weight_decay: f(kw, "weight_decay", 0.0),
                momentum: f(kw, "momentum", 0.0),
                centered: b(kw, "centered"),
                maximize: b(kw, "maximize"),
            },
        )),
        "Adagrad" => Box::new(Adagrad::with_groups(
            groups,
            AdagradConfig {
                lr: f(kw, "lr", 1e-2),
                lr_decay: f(kw, "lr_decay", 0.0),
                weight_decay: f(kw, "weight_decay", 0.0),
                initial_accumulator_value: f(kw, "initial_accumulator_value", 0.0),
                eps: f(kw, "eps", 1e-10),
                maximize: b(kw, "maximize"),
            },
        )),
        other => panic!("unknown optimizer {other}"),
    }
}

#[test]
fn optimizer_trajectories_match_pytorch() {
    let fx = common::load_fixture("optim/trajectories.json");
    let init: Vec<Tensor> = fx["init"].as_array().unwrap().iter().map(common::tensor).collect();
    let grads: Vec<Vec<Tensor>> = fx["grads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_array().unwrap().iter().map(common::tensor).collect())
        .collect();
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() >= 25);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let dtype = common::tensor(&case["params"][0][0]).dtype();
        let rtol = common::rtol_for(dtype);
        let params: Vec<Tensor> = init.iter().map(|t| fresh(t, dtype)).collect();
        let mut opt = build(case, &params);
        for (k, (g, expected)) in grads.iter().zip(case["params"].as_array().unwrap()).enumerate() {
            for (p, g) in params.iter().zip(g) {
                p.set_grad(Some(g.to_dtype(dtype)));
            }
            opt.step();
            for (i, p) in params.iter().enumerate() {
                common::assert_close(
                    p,
                    &common::tensor(&expected[i]),
                    rtol,
                    &format!("{name}: step {}, param {i}", k + 1),
                );
            }
        }
        for (i, expected) in case["state"].as_array().unwrap().iter().enumerate() {
            let state = opt.state()[i].as_ref().unwrap_or_else(|| panic!("{name}: no state for param {i}"));
            for (key, v) in expected.as_object().unwrap() {
                if key == "step" {
                    assert_eq!(state.step as f64, v.as_f64().unwrap(), "{name}: step count");
                    continue;
                }
                let got = state.get(key).unwrap_or_else(|| panic!("{name}: param {i} has no state {key}"));
                common::assert_close(got, &common::tensor(v), rtol, &format!("{name}: param {i} state {key}"));
            }
            let n_tensors = expected.as_object().unwrap().keys().filter(|k| *k != "step").count();
            assert_eq!(state.tensors.len(), n_tensors, "{name}: param {i}: state buffers {:?}", state.tensors);
        }
    }
}

#[test]
fn state_dict_round_trip_resumes_the_same_trajectory() {
    let fx = common::load_fixture("optim/trajectories.json");
    let case = fx["cases"].as_array().unwrap().iter().find(|c| c["name"] == "adam_amsgrad_weight_decay_betas").unwrap();
    let grads: Vec<Vec<Tensor>> = fx["grads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_array().unwrap().iter().map(common::tensor).collect())
        .collect();
    let init: Vec<Tensor> = fx["init"].as_array().unwrap().iter().map(common::tensor).collect();
    let params: Vec<Tensor> = init.iter().map(|t| fresh(t, DType::F64)).collect();
    let mut opt = build(case, &params);
    let step = |opt: &mut Box<dyn Optimizer>, params: &[Tensor], g: &[Tensor]| {
        for (p, g) in params.iter().zip(g) {
            p.set_grad(Some(g.clone()));
        }
        opt.step();
    };
    for g in &grads[..10] {
        step(&mut opt, &params, g);
    }
    // A fresh optimizer over copies of the parameters, loaded from the state dict, continues identically.
    let sd = opt.state_dict();
    let copies: Vec<Tensor> = params.iter().map(|p| fresh(p, DType::F64)).collect();
    let mut resumed = build(case, &copies);
    resumed.load_state_dict(&sd).unwrap();
    for g in &grads[10..] {
        step(&mut opt, &params, g);
        step(&mut resumed, &copies, g);
    }
    for (a, b) in params.iter().zip(&copies) {
        assert_eq!(a.to_vec::<f64>(), b.to_vec::<f64>());
    }
    let expected = &case["params"][19];
    common::assert_close(&copies[0], &common::tensor(&expected[0]), common::F64_RTOL, "resumed W");
}

#[test]
fn load_state_dict_rejects_wrong_shapes_and_unknown_keys() {
    let p = Tensor::zeros_dtype(&[2, 2], DType::F64).requires_grad_();
    p.set_grad(Some(Tensor::ones_dtype(&[2, 2], DType::F64)));
    let mut opt = Adam::new(vec![p.clone()], AdamConfig::default());
    opt.step();
    let mut sd = opt.state_dict();
    let q = Tensor::zeros_dtype(&[3], DType::F64).requires_grad_();
    let mut other = Adam::new(vec![q], AdamConfig::default());
    let err = other.load_state_dict(&sd).unwrap_err();
    assert!(err.to_string().contains("state.0.exp_avg"), "{err}");
    sd.scalars.push(("param_groups.7.lr".into(), 0.1));
    let err = opt.load_state_dict(&sd).unwrap_err();
    assert!(err.to_string().contains("unexpected key param_groups.7.lr"), "{err}");
    assert_eq!(opt.state()[0].as_ref().unwrap().step, 1, "a failed load changes nothing");
}

#[test]
fn decay_groups_split_matrices_from_vectors() {
    let named = vec![
        ("0.weight".to_string(), Tensor::zeros(&[4, 3])),
        ("0.bias".to_string(), Tensor::zeros(&[4])),
        ("norm.weight".to_string(), Tensor::zeros(&[4])),
        ("conv.weight".to_string(), Tensor::zeros(&[2, 1, 3, 3])),
    ];
    let groups = tensorgrad::optim::decay_groups(&named, 0.05);
    assert_eq!(groups[0].params.len(), 2);
    assert_eq!(groups[0].weight_decay, Some(0.05));
    assert_eq!(groups[1].params.len(), 2);
    assert_eq!(groups[1].weight_decay, Some(0.0));
    assert!(groups[1].params.iter().all(|p| p.rank() == 1));
    let opt = Adam::with_groups(groups, AdamConfig::adamw());
    assert_eq!(opt.groups()[0].weight_decay, 0.05);
    assert_eq!(opt.groups()[1].lr, 1e-3);
}
