//! The fused batch norm (`nn::functional::batch_norm`): against the same math composed from primitive ops
//! (values, running statistics and every gradient; f64 and f32; training and evaluation; affine on and off;
//! with and without running statistics; ranks 2 to 4), gradcheck and second derivatives (the tensor-op
//! backward under `create_graph`), and PyTorch fixtures (`tests/fixtures/batch_norm/gen_batch_norm.py`).

mod common;
mod nn_common;

use common::{assert_close, load_fixture, rtol_for, tensor};
use nn_common::{gradcheck, randn64};
use tensorgrad::nn::functional as F;
use tensorgrad::{DType, Tensor};

/// Batch norm written with primitive broadcast ops (the previous implementation).
#[allow(clippy::too_many_arguments)]
fn batch_norm_composed(
    x: &Tensor,
    rm: Option<&Tensor>,
    rv: Option<&Tensor>,
    w: Option<&Tensor>,
    b: Option<&Tensor>,
    training: bool,
    momentum: f64,
    eps: f64,
) -> Tensor {
    let c = x.shape()[1];
    let mut cs = vec![1usize; x.rank()];
    cs[1] = c;
    let per_channel = |t: &Tensor| t.reshape(cs.clone());
    let reduce: Vec<isize> = (0..x.rank() as isize).filter(|&d| d != 1).collect();
    let fixed = if training { None } else { rm.zip(rv) };
    let y = if let Some((rm, rv)) = fixed {
        (x - &per_channel(rm)) * per_channel(&(rv + eps).rsqrt())
    } else {
        let n = (x.numel() / c) as f64;
        let mean = x.mean_dims(&reduce, true);
        let var = x.var_dims(&reduce, 0, true);
        if training {
            tensorgrad::no_grad(|| {
                if let Some(rm) = rm {
                    rm.copy_(&(rm * (1.0 - momentum) + mean.reshape([c]) * momentum));
                }
                if let Some(rv) = rv {
                    rv.copy_(&(rv * (1.0 - momentum) + var.reshape([c]) * (n / (n - 1.0)) * momentum));
                }
            });
        }
        (x - &mean) * (var + eps).rsqrt()
    };
    let y = match w {
        Some(w) => y * per_channel(w),
        None => y,
    };
    match b {
        Some(b) => y + per_channel(b),
        None => y,
    }
}

fn leaf(shape: &[usize], dtype: DType, scale: f64, shift: f64) -> Tensor {
    Tensor::normal_dtype(shape, shift, scale, dtype).requires_grad_()
}

#[test]
fn fused_equals_composition_values_running_stats_and_gradients() {
    tensorgrad::manual_seed(11);
    let shapes: [&[usize]; 5] = [&[4, 3], &[3, 2, 5], &[2, 3, 4, 5], &[5, 1, 3, 7], &[1, 4, 13, 1]];
    for dtype in [DType::F64, DType::F32] {
        let tol = if dtype == DType::F64 { 1e-10 } else { 2e-4 };
        for shape in shapes {
            let c = shape[1];
            for (training, affine, track) in [
                (true, true, true),
                (true, false, true),
                (true, true, false),
                (false, true, true),
                (false, false, true),
            ] {
                let what = format!("{dtype:?} {shape:?} training={training} affine={affine} track={track}");
                let x = leaf(shape, dtype, 2.0, 1.5);
                let w = affine.then(|| leaf(&[c], dtype, 1.0, 1.0));
                let b = affine.then(|| leaf(&[c], dtype, 1.0, 0.0));
                let stats = || {
                    track.then(|| {
                        (Tensor::arange(0.0, c as f64, 1.0).to_dtype(dtype), Tensor::full_dtype(&[c], 1.5, dtype))
                    })
                };
                let (s1, s2) = (stats(), stats());
                let run = |f: &dyn Fn(Option<&Tensor>, Option<&Tensor>) -> Tensor, s: &Option<(Tensor, Tensor)>| {
                    f(s.as_ref().map(|s| &s.0), s.as_ref().map(|s| &s.1))
                };
                let fused = run(&|rm, rv| F::batch_norm(&x, rm, rv, w.as_ref(), b.as_ref(), training, 0.2, 1e-5), &s1);
                let composed =
                    run(&|rm, rv| batch_norm_composed(&x, rm, rv, w.as_ref(), b.as_ref(), training, 0.2, 1e-5), &s2);
                assert_eq!(fused.dtype(), dtype);
                assert_close(&fused, &composed, tol, &format!("{what}: values"));
                if let (Some(a), Some(e)) = (&s1, &s2) {
                    assert_close(&a.0, &e.0, tol, &format!("{what}: running_mean"));
                    assert_close(&a.1, &e.1, tol, &format!("{what}: running_var"));
                }
                let g = Tensor::normal_dtype(shape, 0.0, 1.0, dtype);
                let mut inputs = vec![&x];
                inputs.extend(w.as_ref());
                inputs.extend(b.as_ref());
                let grads = |y: &Tensor| tensorgrad::grad(&[&(y * &g).sum()], &inputs, None, false);
                let (gf, gc) = (grads(&fused), grads(&composed));
                for (i, name) in ["x", "weight", "bias"].iter().take(inputs.len()).enumerate() {
                    let (a, e) = (gf[i].as_ref().unwrap(), gc[i].as_ref().unwrap());
                    // The input gradient of a normalised batch sums to ~0: compare against the scale of dy.
                    let scale = e.abs().max().item().max(1.0);
                    assert_close(&(a / scale), &(e / scale), tol, &format!("{what}: grad of {name}"));
                }
            }
        }
    }
}

#[test]
fn only_weight_or_bias_and_partial_requires_grad() {
    tensorgrad::manual_seed(3);
    let x = randn64(&[3, 2, 4]);
    let w = randn64(&[2]);
    let b = Tensor::normal_dtype(&[2], 0.0, 1.0, DType::F64); // no grad
    let g = Tensor::normal_dtype(&[3, 2, 4], 0.0, 1.0, DType::F64);
    for (wo, bo) in [(Some(&w), None), (None, Some(&b)), (Some(&w), Some(&b))] {
        let yf = F::batch_norm(&x, None, None, wo, bo, true, 0.1, 1e-5);
        let yc = batch_norm_composed(&x, None, None, wo, bo, true, 0.1, 1e-5);
        assert_close(&yf, &yc, 1e-12, "values");
        let inputs: Vec<&Tensor> = if wo.is_some() { vec![&x, &w] } else { vec![&x] };
        let gf = tensorgrad::grad(&[&(&yf * &g).sum()], &inputs, None, false);
        let gc = tensorgrad::grad(&[&(&yc * &g).sum()], &inputs, None, false);
        for (a, e) in gf.iter().zip(&gc) {
            assert_close(a.as_ref().unwrap(), e.as_ref().unwrap(), 1e-10, "gradient");
        }
    }
    // A weight-only gradient (x without grad) uses the saved statistics.
    let xd = x.detach();
    let yf = F::batch_norm(&xd, None, None, Some(&w), None, true, 0.1, 1e-5);
    let yc = batch_norm_composed(&xd, None, None, Some(&w), None, true, 0.1, 1e-5);
    let gf = tensorgrad::grad(&[&(&yf * &g).sum()], &[&w], None, false);
    let gc = tensorgrad::grad(&[&(&yc * &g).sum()], &[&w], None, false);
    assert_close(gf[0].as_ref().unwrap(), gc[0].as_ref().unwrap(), 1e-10, "weight-only gradient");
}

#[test]
fn gradcheck_and_second_derivatives() {
    tensorgrad::manual_seed(5);
    let (x, w, b) = (randn64(&[3, 2, 3, 2]), randn64(&[2]), randn64(&[2]));
    gradcheck(
        "batch_norm train, 4-d",
        |t| F::batch_norm(&t[0], None, None, Some(&t[1]), Some(&t[2]), true, 0.1, 1e-5),
        &[x.clone(), w.clone(), b.clone()],
    );
    gradcheck(
        "batch_norm train, no affine",
        |t| F::batch_norm(&t[0], None, None, None, None, true, 0.1, 1e-5),
        &[randn64(&[5, 3])],
    );
    let (rm, rv) = (Tensor::from_vec(vec![0.3, -0.2], &[2]), Tensor::from_vec(vec![1.5, 0.7], &[2]));
    for training in [true, false] {
        let f =
            |t: &[Tensor]| F::batch_norm(&t[0], Some(&rm), Some(&rv), Some(&t[1]), None, training, 0.0, 1e-5).tanh();
        if let Err(e) = tensorgrad::gradgradcheck(f, &[x.clone(), w.clone()], tensorgrad::GradcheckOptions::default()) {
            panic!("batch_norm gradgradcheck (training={training}): {e}");
        }
    }
    // create_graph through the fused op equals create_graph through the composition.
    let gg = |y: Tensor| {
        let g = tensorgrad::grad(&[&y.powf(3.0).sum()], &[&x], None, true)[0].clone().unwrap();
        tensorgrad::grad(&[&g.powf(2.0).sum()], &[&x, &w, &b], None, false)
    };
    let a = gg(F::batch_norm(&x, None, None, Some(&w), Some(&b), true, 0.1, 1e-5));
    let c = gg(batch_norm_composed(&x, None, None, Some(&w), Some(&b), true, 0.1, 1e-5));
    for i in 0..3 {
        assert_close(a[i].as_ref().unwrap(), c[i].as_ref().unwrap(), 1e-8, "second derivative");
    }
}

#[test]
fn matches_pytorch_functional_batch_norm() {
    let fx = load_fixture("batch_norm/batch_norm.json");
    let cases = fx.as_object().unwrap();
    assert_eq!(cases.len(), 7);
    for (name, case) in cases {
        let x = tensor(&case["x"]).requires_grad_();
        let rtol = rtol_for(x.dtype());
        let opt = |k: &str| case.get(k).map(tensor);
        let (w, b) = (opt("weight").map(|t| t.requires_grad_()), opt("bias").map(|t| t.requires_grad_()));
        let (rm, rv) = (opt("running_mean"), opt("running_var"));
        let y = F::batch_norm(
            &x,
            rm.as_ref(),
            rv.as_ref(),
            w.as_ref(),
            b.as_ref(),
            case["training"].as_bool().unwrap(),
            case["momentum"].as_f64().unwrap(),
            case["eps"].as_f64().unwrap(),
        );
        assert_close(&y, &tensor(&case["out"]), rtol, &format!("{name}: out"));
        let mut inputs = vec![&x];
        inputs.extend(w.as_ref());
        inputs.extend(b.as_ref());
        let grads = tensorgrad::grad(&[&(&y * &tensor(&case["g"])).sum()], &inputs, None, false);
        for (i, key) in ["grad_x", "grad_weight", "grad_bias"].iter().take(inputs.len()).enumerate() {
            let e = tensor(&case[key]);
            let scale = e.abs().max().item().max(1.0);
            assert_close(&(grads[i].as_ref().unwrap() / scale), &(e / scale), rtol, &format!("{name}: {key}"));
        }
        if let (Some(rm), Some(rv)) = (&rm, &rv) {
            assert_close(rm, &tensor(&case["running_mean_after"]), rtol, &format!("{name}: running_mean"));
            assert_close(rv, &tensor(&case["running_var_after"]), rtol, &format!("{name}: running_var"));
        }
    }
}
