//! Forward values and input gradients of every op against PyTorch, in f64.
//!
//! `tests/fixtures/ops/ops.json` is written by `tests/fixtures/ops/gen_ops.py` (PyTorch is not needed to run
//! this test). Each case holds float64 inputs, the output, a random upstream gradient `g` and
//! d(sum(out * g))/d(input) for every input; `op` below holds the tensorgrad closure for each case name,
//! mirroring the script's lambdas line by line.

mod common;

use common::{assert_close, load_fixture, tensor, F64_RTOL};
use tensorgrad::{BackwardOptions, DType, GeluApprox, Tensor};

type F = Box<dyn Fn(&[Tensor]) -> Tensor>;

fn i(v: &[i64]) -> Tensor {
    Tensor::from_slice(v)
}

/// Reorders pieces and concatenates them (how the split/chunk cases turn a list into one output).
fn cat(pieces: &[Tensor], dim: isize) -> Tensor {
    Tensor::cat(&pieces.iter().collect::<Vec<_>>(), dim)
}

#[rustfmt::skip]
fn op(name: &str) -> Option<F> {
    let f: F = match name {
        "neg" => Box::new(|t| -&t[0]),
        "exp" => Box::new(|t| t[0].exp()),
        "log" => Box::new(|t| t[0].log()),
        "sqrt" => Box::new(|t| t[0].sqrt()),
        "rsqrt" => Box::new(|t| t[0].rsqrt()),
        "abs" | "abs at 0" => Box::new(|t| t[0].abs()),
        "sin" => Box::new(|t| t[0].sin()),
        "cos" => Box::new(|t| t[0].cos()),
        "erf" => Box::new(|t| t[0].erf()),
        "powf 2.5" => Box::new(|t| t[0].powf(2.5)),
        "powf 3 negative base" => Box::new(|t| t[0].powf(3.0)),
        "powf -1.5" => Box::new(|t| t[0].powf(-1.5)),
        "powf 0 at 0" => Box::new(|t| t[0].powf(0.0)),
        "clamp" | "clamp at bounds" => Box::new(|t| t[0].clamp(Some(-0.5), Some(0.5))),
        "clamp max only" => Box::new(|t| t[0].clamp(None, Some(0.3))),
        "clamp min only" => Box::new(|t| t[0].clamp(Some(-0.3), None)),
        "relu" | "relu at 0" => Box::new(|t| t[0].relu()),
        "leaky_relu" => Box::new(|t| t[0].leaky_relu(0.1)),
        "elu" => Box::new(|t| t[0].elu(1.0)),
        "elu alpha 0.5" => Box::new(|t| t[0].elu(0.5)),
        "gelu" => Box::new(|t| t[0].gelu(GeluApprox::None)),
        "gelu tanh" => Box::new(|t| t[0].gelu(GeluApprox::Tanh)),
        "sigmoid" | "sigmoid large" => Box::new(|t| t[0].sigmoid()),
        "tanh" => Box::new(|t| t[0].tanh()),
        "softplus" => Box::new(|t| t[0].softplus(1.0, 20.0)),
        "softplus beta 2 threshold 1" => Box::new(|t| t[0].softplus(2.0, 1.0)),
        "silu" => Box::new(|t| t[0].silu()),
        "add" | "add broadcast" => Box::new(|t| t[0].add(&t[1])),
        "sub" | "sub broadcast scalar tensor" => Box::new(|t| t[0].sub(&t[1])),
        "mul" | "mul broadcast" => Box::new(|t| t[0].mul(&t[1])),
        "div" | "div broadcast" => Box::new(|t| t[0].div(&t[1])),
        "pow" | "pow zero base" | "pow broadcast" => Box::new(|t| t[0].pow(&t[1])),
        "maximum" | "maximum ties" | "maximum broadcast" => Box::new(|t| t[0].maximum(&t[1])),
        "minimum" | "minimum ties" => Box::new(|t| t[0].minimum(&t[1])),
        "mul transposed" => Box::new(|t| &t[0].t() * &t[1]),
        "add_scalar" => Box::new(|t| &t[0] + 0.7),
        "mul_scalar" => Box::new(|t| &t[0] * -1.3),
        "rsub_scalar" => Box::new(|t| 2.0 - &t[0]),
        "rdiv_scalar" => Box::new(|t| 2.0 / &t[0]),
        "div_scalar" => Box::new(|t| &t[0] / 4.0),
        "sum" => Box::new(|t| t[0].sum()),
        "sum dim" => Box::new(|t| t[0].sum_dim(1, false)),
        "sum dims keepdim" => Box::new(|t| t[0].sum_dims(&[0, 2], true)),
        "mean" => Box::new(|t| t[0].mean()),
        "mean dim keepdim" => Box::new(|t| t[0].mean_dim(-1, true)),
        "mean dims" => Box::new(|t| t[0].mean_dims(&[0, 1], false)),
        "var" => Box::new(|t| t[0].var()),
        "var correction 0" => Box::new(|t| t[0].var_dims(&[1], 0, false)),
        "var dims keepdim" => Box::new(|t| t[0].var_dims(&[0, 2], 1, true)),
        "std" => Box::new(|t| t[0].std()),
        "std correction 0 keepdim" => Box::new(|t| t[0].std_dims(&[1], 0, true)),
        "logsumexp" | "logsumexp large" => Box::new(|t| t[0].logsumexp(&[1], false)),
        "logsumexp dims keepdim" => Box::new(|t| t[0].logsumexp(&[0, 1], true)),
        "norm 1" => Box::new(|t| t[0].norm(1.0, &[1], false)),
        "norm 2" | "norm 2 zero row" => Box::new(|t| t[0].norm(2.0, &[1], false)),
        "norm 2 all" => Box::new(|t| t[0].norm(2.0, &[0, 1], false)),
        "norm inf" => Box::new(|t| t[0].norm(f64::INFINITY, &[1], false)),
        "norm 3 keepdim" => Box::new(|t| t[0].norm(3.0, &[0], true)),
        "amax" | "amax ties" => Box::new(|t| t[0].amax(&[1], false)),
        "amax dims keepdim" => Box::new(|t| t[0].amax(&[0, 2], true)),
        "amin" => Box::new(|t| t[0].amin(&[0], false)),
        "max" | "max ties" => Box::new(|t| t[0].max()),
        "min" => Box::new(|t| t[0].min()),
        "max_dim" => Box::new(|t| t[0].max_dim(1, false).0),
        "max_dim indices" => Box::new(|t| t[0].max_dim(0, false).1),
        "min_dim keepdim" => Box::new(|t| t[0].min_dim(0, true).0),
        "argmax" => Box::new(|t| t[0].argmax(Some(1), false)),
        "argmin all" => Box::new(|t| t[0].argmin(None, false)),
        "matmul 1d 1d" | "matmul 2d 1d" | "matmul 1d 2d" | "matmul 2d 2d" | "matmul 3d 2d" | "matmul 2d 3d"
        | "matmul 3d 3d" | "matmul batch broadcast" | "matmul 1d 3d" | "matmul 3d 1d" => Box::new(|t| t[0].matmul(&t[1])),
        "mm" => Box::new(|t| t[0].mm(&t[1])),
        "matmul transposed" => Box::new(|t| t[0].t().matmul(&t[1].t())),
        "softmax 0" => Box::new(|t| t[0].softmax(0)),
        "softmax 1" => Box::new(|t| t[0].softmax(1)),
        "softmax -1" | "softmax large" => Box::new(|t| t[0].softmax(-1)),
        "log_softmax 0" => Box::new(|t| t[0].log_softmax(0)),
        "log_softmax -1" | "log_softmax large" => Box::new(|t| t[0].log_softmax(-1)),
        "reshape" => Box::new(|t| t[0].reshape([3, -1]).exp()),
        "reshape transposed" => Box::new(|t| t[0].t().reshape([6]).exp()),
        "view" => Box::new(|t| t[0].view([6]).exp()),
        "flatten" => Box::new(|t| t[0].flatten(1, 2).exp()),
        "squeeze" => Box::new(|t| t[0].squeeze(1).exp()),
        "squeeze_all" => Box::new(|t| t[0].squeeze_all().exp()),
        "unsqueeze" => Box::new(|t| t[0].unsqueeze(-1).exp()),
        "permute" => Box::new(|t| t[0].permute(&[2, 0, 1]).exp()),
        "transpose" => Box::new(|t| t[0].transpose(0, 2).exp()),
        "t" => Box::new(|t| t[0].t().exp()),
        "narrow" => Box::new(|t| t[0].narrow(0, 1, 2).exp()),
        "slice step" => Box::new(|t| t[0].slice(1, 1, 7, 2).exp()),
        "expand" => Box::new(|t| t[0].expand(&[2, 3, 4]).exp()),
        "broadcast_to" => Box::new(|t| t[0].broadcast_to(&[2, 3]).exp()),
        "contiguous" => Box::new(|t| t[0].t().contiguous().exp()),
        "sum_to_shape" => Box::new(|t| t[0].exp().sum_to_shape(&[3, 1])),
        "cat" => Box::new(|t| Tensor::cat(&[&t[0], &t[1], &t[2]], 1).exp()),
        "stack" => Box::new(|t| Tensor::stack(&[&t[0], &t[1]], 1).exp()),
        "split" => Box::new(|t| {
            let q = t[0].split(2, 1);
            cat(&[q[2].clone(), q[0].exp(), q[1].clone()], 1)
        }),
        "split_sizes" => Box::new(|t| {
            let q = t[0].split_sizes(&[1, 3, 1], 0);
            cat(&[q[1].exp(), q[2].clone(), q[0].sin()], 0)
        }),
        "chunk" => Box::new(|t| {
            let q = t[0].chunk(3, 1);
            cat(&[q[2].exp(), q[1].clone(), q[0].clone()], 1)
        }),
        "chunk uneven" => Box::new(|t| {
            let q = t[0].chunk(4, 0);
            assert_eq!(q.len(), 3, "torch.chunk(6 rows, 4) gives 3 chunks");
            cat(&[q[2].exp(), q[0].clone(), q[1].clone()], 0)
        }),
        "index_select" => Box::new(|t| t[0].index_select(0, &i(&[2, 0, 2, 1])).exp()),
        "index_add" => Box::new(|t| t[0].index_add(0, &i(&[1, 3, 1]), &t[1]).exp()),
        "gather" => Box::new(|t| t[0].gather(1, &i(&[2, 0, 2, 1, 1, 0]).reshape([2, 3])).exp()),
        "gather smaller index" => Box::new(|t| t[0].gather(0, &i(&[2, 0]).reshape([1, 2])).exp()),
        "scatter_add" => Box::new(|t| t[0].scatter_add(1, &i(&[2, 2, 0, 1]).reshape([2, 2]), &t[1]).exp()),
        "where" => Box::new(|t| Tensor::where_(&t[0].gt_scalar(0.0), &t[0], &t[1]).exp()),
        "where broadcast" => Box::new(|t| {
            Tensor::where_(&Tensor::from_vec(vec![true, false], &[2, 1]), &t[0], &t[1]).exp()
        }),
        "masked_fill" => Box::new(|t| t[0].masked_fill(&t[0].lt_scalar(0.0), 0.5).exp()),
        "gt" => Box::new(|t| t[0].gt(&t[1])),
        "le_scalar" => Box::new(|t| t[0].le_scalar(0.1)),
        "to_dtype" => Box::new(|t| t[0].to_dtype(DType::F32).to_dtype(DType::F64) * 2.0),
        "std constant rows" => Box::new(|t| t[0].std_dims(&[1], 1, false)),
        "std all constant" => Box::new(|t| t[0].std()),
        "norm 3 zero row" => Box::new(|t| t[0].norm(3.0, &[1], false)),
        "norm 0" => Box::new(|t| t[0].norm(0.0, &[1], false)),
        "sum empty" => Box::new(|t| t[0].sum_dim(1, false)),
        "softmax 0d" => Box::new(|t| t[0].softmax(0)),
        "log_softmax 0d" => Box::new(|t| t[0].log_softmax(-1)),
        "sum dim 0d" => Box::new(|t| t[0].sum_dim(0, false)),
        "max_dim 0d" => Box::new(|t| t[0].max_dim(0, false).0),
        "argmax 0d" => Box::new(|t| t[0].argmax(Some(0), false)),
        "gather 0d" => Box::new(|t| t[0].gather(0, &Tensor::scalar(0i64))),
        "var 0d" => Box::new(|t| t[0].var()),
        "slice empty" => Box::new(|t| t[0].slice(1, 2, 1, 1).sum_dim(1, false) + t[0].sum_dim(1, false)),
        // Hung forever before the fix (erf's series never stopped at exactly 0).
        "erf and gelu at 0" => Box::new(|t| t[0].erf() + t[0].gelu(GeluApprox::None)),
        _ => return special(name),
    };
    Some(f)
}

/// The "special <op>" cases: zeros, tiny, huge, infinite and NaN inputs through each elementwise op.
fn special(name: &str) -> Option<F> {
    let op: fn(&Tensor) -> Tensor = match name.strip_prefix("special ")? {
        "neg" => |x| -x,
        "exp" => |x| x.exp(),
        "log" => |x| x.log(),
        "sqrt" => |x| x.sqrt(),
        "rsqrt" => |x| x.rsqrt(),
        "abs" => |x| x.abs(),
        "sin" => |x| x.sin(),
        "cos" => |x| x.cos(),
        "erf" => |x| x.erf(),
        "relu" => |x| x.relu(),
        "leaky_relu" => |x| x.leaky_relu(0.1),
        "elu" => |x| x.elu(1.0),
        "gelu" => |x| x.gelu(GeluApprox::None),
        "gelu tanh" => |x| x.gelu(GeluApprox::Tanh),
        "sigmoid" => |x| x.sigmoid(),
        "tanh" => |x| x.tanh(),
        "softplus" => |x| x.softplus(1.0, 20.0),
        "silu" => |x| x.silu(),
        "powf 2.5" => |x| x.powf(2.5),
        "clamp" => |x| x.clamp(Some(-1.0), Some(1.0)),
        "softmax" => |x| x.softmax(1),
        "log_softmax" => |x| x.log_softmax(1),
        "logsumexp" => |x| x.logsumexp(&[1], false),
        "div" => return Some(Box::new(|t| t[0].div(&t[1]))),
        "pow" => return Some(Box::new(|t| t[0].pow(&t[1]))),
        "maximum" => return Some(Box::new(|t| t[0].maximum(&t[1]))),
        _ => return None,
    };
    Some(Box::new(move |t| op(&t[0])))
}

/// 1e-5 relative as the issue asks; F64_RTOL (1e-6) holds for every case, so that is what is used.
const RTOL: f64 = F64_RTOL;

/// Checks one case; with `dtype = F32` the inputs are cast to f32 and compared with `rtol` (the f32 path).
fn check_case(case: &serde_json::Value, dtype: DType, rtol: f64) -> Result<(), String> {
    let name = case["name"].as_str().unwrap();
    let f = op(name).ok_or_else(|| format!("no closure for fixture case `{name}`"))?;
    let inputs: Vec<Tensor> =
        case["inputs"].as_array().unwrap().iter().map(|v| tensor(v).to_dtype(dtype).requires_grad_()).collect();
    let run = std::panic::AssertUnwindSafe(|| {
        let out = f(&inputs);
        let expected = tensor(&case["output"]);
        let expected = if expected.dtype() == DType::F64 { expected.to_dtype(dtype) } else { expected };
        assert_eq!(out.dtype(), expected.dtype(), "output dtype");
        assert_close(&out, &expected, rtol, "output");
        if case.get("grad_output").is_some() && !out.requires_grad() {
            // Piecewise-constant outputs (norm 0) carry no graph here; PyTorch's gradient must be None or 0.
            for (k, expected) in case["grads"].as_array().unwrap().iter().enumerate().filter(|(_, e)| !e.is_null()) {
                let e = tensor(expected);
                assert!(e.to_vec_f64().iter().all(|&v| v == 0.0), "input {k}: no graph but PyTorch's grad is {e}");
            }
        } else if case.get("grad_output").is_some() {
            let g = tensor(&case["grad_output"]).to_dtype(dtype);
            out.backward_with(Some(&g), BackwardOptions::default());
            for (k, (x, expected)) in inputs.iter().zip(case["grads"].as_array().unwrap()).enumerate() {
                let got = x.grad();
                if expected.is_null() {
                    assert!(got.is_none(), "input {k}: PyTorch has no gradient, got one");
                } else {
                    let got = got.unwrap_or_else(|| panic!("input {k}: no gradient"));
                    assert_eq!(got.dtype(), dtype, "gradient dtype of input {k}");
                    assert_close(&got, &tensor(expected), rtol, &format!("gradient of input {k}"));
                }
            }
        }
    });
    std::panic::catch_unwind(run).map_err(|p| {
        let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
        format!("{name}: {}", msg.unwrap_or_default())
    })
}

#[test]
fn every_op_matches_pytorch_values_and_gradients() {
    let fixture = load_fixture("ops/ops.json");
    let cases = fixture["cases"].as_array().unwrap();
    let failures: Vec<String> = cases.iter().filter_map(|c| check_case(c, DType::F64, RTOL).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from PyTorch:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(cases.len() >= 150, "fixture lost cases: {}", cases.len());
}

/// The same cases through the f32 path (the fast path), against the f64 reference at F32_RTOL; also checks
/// that outputs and gradients stay f32. Skipped: the special-value cases (1e300 is inf in f32).
#[test]
fn every_op_matches_pytorch_in_f32() {
    let fixture = load_fixture("ops/ops.json");
    let cases = fixture["cases"].as_array().unwrap();
    let skip = |name: &str| name.starts_with("special ") || F32_SKIP.contains(&name);
    let failures: Vec<String> = cases
        .iter()
        .filter(|c| !skip(c["name"].as_str().unwrap()))
        .filter_map(|c| check_case(c, DType::F32, common::F32_RTOL).err())
        .collect();
    assert!(failures.is_empty(), "{} f32 cases differ from PyTorch:\n{}", failures.len(), failures.join("\n"));
}

/// Cases that do not apply to the f32 path.
const F32_SKIP: &[&str] = &[
    "to_dtype", // the case itself casts to f64 and back
];
