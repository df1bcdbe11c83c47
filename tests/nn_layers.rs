//! Linear, Conv1d/Conv2d, pooling, Embedding, activations, Dropout, Residual and init against PyTorch
//! (fixtures from `tests/fixtures/nn/gen_nn.py`), f64 gradchecks, train/eval behaviour and error messages.

mod common;
mod nn_common;

use common::{load_fixture, tensor};
use nn_common::{check_layer, gradcheck, panic_message, randn64};
use tensorgrad::nn::functional as F;
use tensorgrad::nn::init::{self, FanMode, Nonlinearity};
use tensorgrad::nn::*;
use tensorgrad::{DType, GeluApprox, Tensor};

fn dtype_of(case: &serde_json::Value) -> DType {
    tensor(&case["out"]).dtype()
}

fn pair(v: &serde_json::Value) -> (usize, usize) {
    (v[0].as_u64().unwrap() as usize, v[1].as_u64().unwrap() as usize)
}

fn num(v: &serde_json::Value) -> usize {
    v.as_u64().unwrap() as usize
}

#[test]
fn linear_matches_pytorch() {
    let fx = load_fixture("nn/linear.json");
    for (name, bias, (i, o)) in
        [("linear_f64", true, (5, 3)), ("linear_f32", true, (6, 4)), ("linear_nobias", false, (5, 2))]
    {
        let layer = Linear::with_options(i, o, bias, dtype_of(&fx[name]));
        assert_eq!(layer.describe(), fx[name]["repr"].as_str().unwrap());
        check_layer(&layer, &fx[name], name);
    }
}

#[test]
fn linear_gradcheck() {
    let (x, w, b) = (randn64(&[2, 3, 4]), randn64(&[2, 4]), randn64(&[2]));
    gradcheck("linear", |t| F::linear(&t[0], &t[1], Some(&t[2])), &[x, w, b]);
}

#[test]
fn linear_default_init_bounds() {
    tensorgrad::manual_seed(3);
    let layer = Linear::new(64, 32);
    let bound = 1.0 / 8.0;
    for p in layer.parameters() {
        let v = p.to_vec_f64();
        assert!(v.iter().all(|&x| x.abs() <= bound), "U(-1/sqrt(in), 1/sqrt(in))");
        assert!(v.iter().any(|&x| x.abs() > 0.8 * bound), "fills the range");
    }
}

#[test]
fn linear_rejects_wrong_feature_count() {
    let layer = Linear::new(4, 2);
    let msg = panic_message(|| {
        layer.forward(&Tensor::zeros(&[3, 5]));
    });
    assert!(msg.contains("Linear") && msg.contains("in_features=4") && msg.contains("[3, 5]"), "{msg}");
}

fn conv2d_from(case: &serde_json::Value) -> Conv2d {
    let o = &case["opts"];
    Conv2d::with_options(
        num(&o["in"]),
        num(&o["out"]),
        pair(&o["k"]),
        pair(&o["stride"]),
        pair(&o["padding"]),
        pair(&o["dilation"]),
        num(&o["groups"]),
        case["params"].get("bias").is_some(),
        dtype_of(case),
    )
}

#[test]
fn conv2d_matches_pytorch() {
    let fx = load_fixture("nn/conv.json");
    for name in ["conv2d_full", "conv2d_f32", "conv2d_nobias_depthwise"] {
        let layer = conv2d_from(&fx[name]);
        check_layer(&layer, &fx[name], name);
    }
    assert_eq!(conv2d_from(&fx["conv2d_f32"]).describe(), fx["conv2d_f32"]["repr"].as_str().unwrap());
    assert_eq!(conv2d_from(&fx["conv2d_full"]).describe(), fx["conv2d_full"]["repr"].as_str().unwrap());
}

#[test]
fn conv1d_matches_pytorch() {
    let fx = load_fixture("nn/conv.json");
    for name in ["conv1d_full", "conv1d_f32"] {
        let o = &fx[name]["opts"];
        let layer = Conv1d::with_options(
            num(&o["in"]),
            num(&o["out"]),
            num(&o["k"]),
            num(&o["stride"]),
            num(&o["padding"]),
            num(&o["dilation"]),
            num(&o["groups"]),
            true,
            dtype_of(&fx[name]),
        );
        assert_eq!(layer.describe(), fx[name]["repr"].as_str().unwrap());
        check_layer(&layer, &fx[name], name);
    }
}

#[test]
fn conv_gradcheck() {
    let (x, w, b) = (randn64(&[2, 4, 5, 4]), randn64(&[4, 2, 3, 2]), randn64(&[4]));
    gradcheck("conv2d", |t| F::conv2d(&t[0], &t[1], Some(&t[2]), (2, 1), (1, 1), (1, 2), 2), &[x, w, b]);
    let (x, w) = (randn64(&[1, 2, 7]), randn64(&[3, 2, 2]));
    gradcheck("conv1d", |t| F::conv1d(&t[0], &t[1], None, 2, 1, 2, 1), &[x, w]);
}

#[test]
fn conv2d_second_derivatives_are_exact() {
    let (x, w) = (randn64(&[1, 2, 4, 4]), randn64(&[2, 1, 2, 2]));
    let f = |t: &[Tensor]| F::conv2d(&t[0], &t[1], None, (1, 1), (1, 0), (1, 1), 2).tanh();
    if let Err(e) = tensorgrad::gradgradcheck(f, &[x, w], tensorgrad::GradcheckOptions::default()) {
        panic!("conv2d gradgradcheck: {e}");
    }
}

#[test]
fn conv2d_rejects_wrong_channels_and_rank() {
    let layer = Conv2d::new(3, 4, (3, 3));
    let msg = panic_message(|| {
        layer.forward(&Tensor::zeros(&[1, 2, 5, 5]));
    });
    assert!(msg.contains("Conv2d") && msg.contains("3 channels") && msg.contains("[1, 2, 5, 5]"), "{msg}");
    let msg = panic_message(|| {
        layer.forward(&Tensor::zeros(&[5, 5]));
    });
    assert!(msg.contains("Conv2d") && msg.contains("4-D") && msg.contains("[5, 5]"), "{msg}");
    let msg = panic_message(|| {
        Conv1d::new(2, 2, 3).forward(&Tensor::zeros(&[1, 2, 2]));
    });
    assert!(msg.contains("Conv1d") && msg.contains("larger than the padded input"), "{msg}");
}

#[test]
fn pools_match_pytorch() {
    let fx = load_fixture("nn/pool.json");
    check_layer(&MaxPool2d::with_options((3, 2), (2, 1), (1, 1)), &fx["maxpool"], "maxpool");
    check_layer(&MaxPool2d::new((2, 2)), &fx["maxpool_default"], "maxpool_default");
    check_layer(&AvgPool2d::with_options((3, 2), (2, 1), (1, 1)), &fx["avgpool"], "avgpool");
    check_layer(&AvgPool2d::new((2, 2)), &fx["avgpool_default"], "avgpool_default");
    let exclude = AvgPool2d { count_include_pad: false, ..AvgPool2d::with_options((3, 2), (2, 1), (1, 1)) };
    check_layer(&exclude, &fx["avgpool_exclude_pad"], "avgpool_exclude_pad");
    check_layer(&AdaptiveAvgPool2d::new((3, 2)), &fx["adaptive"], "adaptive");
    check_layer(&AdaptiveAvgPool2d::new((4, 3)), &fx["adaptive_up"], "adaptive_up");
    let r = load_fixture("nn/repr.json");
    assert_eq!(MaxPool2d::new((2, 2)).describe(), r["maxpool"].as_str().unwrap());
    assert_eq!(MaxPool2d::with_options((3, 2), (2, 1), (1, 1)).describe(), r["maxpool_full"].as_str().unwrap());
    assert_eq!(AvgPool2d::new((2, 2)).describe(), r["avgpool"].as_str().unwrap());
    assert_eq!(AdaptiveAvgPool2d::new((3, 2)).describe(), r["adaptive"].as_str().unwrap());
}

#[test]
fn pools_gradcheck() {
    // Distinct values so the max is unique and finite differences do not cross a tie.
    let x = Tensor::from_vec((0..2 * 5 * 4).map(|i| ((i * 37) % 41) as f64 * 0.1).collect(), &[1, 2, 5, 4])
        .requires_grad_();
    gradcheck("max_pool2d", |t| F::max_pool2d(&t[0], (2, 2), (2, 1), (1, 0)), std::slice::from_ref(&x));
    gradcheck("avg_pool2d", |t| F::avg_pool2d(&t[0], (3, 2), (1, 2), (1, 1), true), std::slice::from_ref(&x));
    gradcheck(
        "avg_pool2d excluding padding",
        |t| F::avg_pool2d(&t[0], (3, 2), (1, 2), (1, 1), false),
        std::slice::from_ref(&x),
    );
    gradcheck("adaptive_avg_pool2d", |t| F::adaptive_avg_pool2d(&t[0], (3, 3)), &[x]);
}

#[test]
fn pools_reject_bad_input() {
    let msg = panic_message(|| {
        MaxPool2d::new((2, 2)).forward(&Tensor::zeros(&[4, 4]));
    });
    assert!(msg.contains("MaxPool2d") && msg.contains("[4, 4]"), "{msg}");
    let msg = panic_message(|| {
        AvgPool2d::with_options((2, 2), (1, 1), (2, 0)).forward(&Tensor::zeros(&[1, 1, 4, 4]));
    });
    assert!(msg.contains("AvgPool2d") && msg.contains("padding"), "{msg}");
}

#[test]
fn embedding_matches_pytorch() {
    let fx = load_fixture("nn/embedding.json");
    let e = Embedding::with_options(10, 4, Some(2), DType::F64);
    assert_eq!(e.weight.narrow(0, 2, 1).to_vec_f64(), vec![0.0; 4], "padding row starts at zero");
    assert_eq!(e.describe(), "Embedding(10, 4, padding_idx=2)");
    check_layer(&e, &fx["embedding_pad"], "embedding_pad");
    assert_eq!(e.weight.grad().unwrap().narrow(0, 2, 1).to_vec_f64(), vec![0.0; 4], "no gradient into padding_idx");
    check_layer(&Embedding::with_options(6, 3, None, DType::F32), &fx["embedding"], "embedding");
}

#[test]
fn embedding_gradcheck_and_errors() {
    let idx = Tensor::from_vec(vec![0i64, 2, 2, 1], &[2, 2]);
    // (With padding_idx the padding row's analytic gradient is 0 by design, so it is checked without.)
    gradcheck("embedding", |t| F::embedding(&idx, &t[0], None), &[randn64(&[3, 2])]);
    let e = Embedding::new(3, 2);
    let msg = panic_message(|| {
        e.forward(&Tensor::from_vec(vec![3i64], &[1]));
    });
    assert!(msg.contains("Embedding") && msg.contains("index 3"), "{msg}");
    let msg = panic_message(|| {
        e.forward(&Tensor::zeros(&[2]));
    });
    assert!(msg.contains("Embedding") && msg.contains("int64"), "{msg}");
}

#[test]
fn activations_match_pytorch() {
    let fx = load_fixture("nn/activation.json");
    let modules: Vec<(&str, Box<dyn Module>)> = vec![
        ("relu", Box::new(ReLU::new())),
        ("leaky_relu", Box::new(LeakyReLU::new(0.2))),
        ("elu", Box::new(ELU::new(0.7))),
        ("gelu", Box::new(GELU::default())),
        ("gelu_tanh", Box::new(GELU::new(GeluApprox::Tanh))),
        ("sigmoid", Box::new(Sigmoid::new())),
        ("tanh", Box::new(Tanh::new())),
        ("silu", Box::new(SiLU::new())),
        ("softmax", Box::new(Softmax::new(1))),
        ("softmax0", Box::new(Softmax::new(0))),
        ("flatten", Box::new(Flatten::default())),
        ("maxout", Box::new(Maxout::new(2))),
    ];
    for (name, m) in &modules {
        check_layer(m.as_ref(), &fx[*name], name);
        if let Some(repr) = fx[*name]["repr"].as_str() {
            assert_eq!(m.describe(), repr);
        }
    }
    let r = load_fixture("nn/repr.json");
    assert_eq!(LeakyReLU::default().describe(), r["leaky"].as_str().unwrap());
    assert_eq!(ELU::default().describe(), r["elu"].as_str().unwrap());
}

#[test]
fn activations_gradcheck() {
    let x = randn64(&[3, 4]);
    let modules: Vec<Box<dyn Module>> = vec![
        Box::new(LeakyReLU::new(0.1)),
        Box::new(ELU::new(1.0)),
        Box::new(GELU::default()),
        Box::new(GELU::new(GeluApprox::Tanh)),
        Box::new(Sigmoid::new()),
        Box::new(Tanh::new()),
        Box::new(SiLU::new()),
        Box::new(Softmax::new(-1)),
        Box::new(Maxout::new(2)),
        Box::new(Flatten::new(0, 1)),
    ];
    for m in &modules {
        gradcheck(&m.describe(), |t| m.forward(&t[0]), std::slice::from_ref(&x));
    }
}

#[test]
fn maxout_rejects_indivisible_features() {
    let msg = panic_message(|| {
        Maxout::new(4).forward(&Tensor::zeros(&[2, 6]));
    });
    assert!(msg.contains("Maxout") && msg.contains("pieces=4") && msg.contains("[2, 6]"), "{msg}");
}

#[test]
fn dropout_train_and_eval() {
    tensorgrad::manual_seed(7);
    let d = Dropout::default();
    assert_eq!(d.describe(), "Dropout(p=0.5, inplace=False)");
    let x = Tensor::ones(&[2000]).requires_grad_();
    let y = d.forward(&x);
    let v = y.to_vec_f64();
    assert!(v.iter().all(|&e| e == 0.0 || e == 2.0), "kept elements are scaled by 1/(1-p)");
    let kept = v.iter().filter(|&&e| e != 0.0).count();
    assert!((900..1100).contains(&kept), "about half are kept: {kept}");
    y.sum().backward();
    assert_eq!(x.grad().unwrap().to_vec_f64(), v, "the gradient uses the same mask and scale");
    // Same seed, same mask.
    tensorgrad::manual_seed(7);
    assert_eq!(d.forward(&x).to_vec_f64(), v);
    d.eval();
    assert!(!d.is_training());
    assert_eq!(d.forward(&x).to_vec_f64(), vec![1.0; 2000], "identity in eval mode");
    let msg = panic_message(|| {
        Dropout::new(1.5);
    });
    assert!(msg.contains("Dropout") && msg.contains("1.5"), "{msg}");
}

#[test]
fn dropout_gradcheck_with_fixed_mask() {
    // Reseeding inside f gives every evaluation the same mask.
    gradcheck(
        "dropout",
        |t| {
            tensorgrad::manual_seed(1);
            F::dropout(&t[0], 0.3, true)
        },
        &[randn64(&[4, 5])],
    );
}

#[test]
fn residual_adds_the_skip_path() {
    let inner = Linear::with_options(3, 3, true, DType::F64);
    let res = Residual::new(inner);
    assert_eq!(
        res.named_parameters().iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["inner.weight", "inner.bias"]
    );
    let x = randn64(&[2, 3]);
    let expected = &x + &res.inner.forward(&x);
    common::assert_close(&res.forward(&x), &expected, 1e-12, "x + f(x)");
    let (w, b) = (res.inner.weight.clone(), res.inner.bias.clone().unwrap());
    gradcheck("residual", |t| &t[0] + &F::linear(&t[0], &t[1], Some(&t[2])), &[x, w, b]);
    let res = Residual::new(Linear::new(3, 2));
    let msg = panic_message(|| {
        res.forward(&Tensor::zeros(&[1, 3]));
    });
    assert!(msg.contains("Residual") && msg.contains("[1, 3]") && msg.contains("[1, 2]"), "{msg}");
}

#[test]
fn sequential_of_layers_trains_end_to_end() {
    tensorgrad::manual_seed(0);
    let model = Sequential::new()
        .add(Conv2d::new(1, 2, (3, 3)))
        .add(ReLU::new())
        .add(MaxPool2d::new((2, 2)))
        .add(Flatten::default())
        .add(Linear::new(2 * 2 * 2, 3));
    assert_eq!(
        model.named_parameters().iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["0.weight", "0.bias", "4.weight", "4.bias"]
    );
    let x = Tensor::randn(&[4, 1, 6, 6]);
    let target = Tensor::from_vec(vec![0i64, 1, 2, 1], &[4]);
    let loss_fn = CrossEntropyLoss::new();
    let first = loss_fn.forward(&model.forward(&x), &target).item();
    for _ in 0..30 {
        model.zero_grad();
        loss_fn.forward(&model.forward(&x), &target).backward();
        tensorgrad::no_grad(|| {
            for p in model.parameters() {
                p.add_assign_unrecorded(&(p.grad().unwrap() * -0.2));
            }
        });
    }
    let last = loss_fn.forward(&model.forward(&x), &target).item();
    assert!(last < 0.5 * first, "loss falls: {first} -> {last}");
}

#[test]
fn reprs_match_pytorch() {
    let r = load_fixture("nn/repr.json");
    let s = |k: &str| r[k].as_str().unwrap().to_string();
    assert_eq!(Linear::new(784, 16).describe(), s("linear"));
    assert_eq!(Linear::with_options(3, 2, false, DType::F32).describe(), s("linear_nobias"));
    assert_eq!(Conv2d::new(3, 8, (3, 3)).describe(), s("conv2d"));
    assert_eq!(
        Conv2d::with_options(4, 6, (3, 2), (2, 1), (1, 2), (2, 1), 2, false, DType::F32).describe(),
        s("conv2d_full")
    );
    assert_eq!(Conv1d::new(3, 5, 2).describe(), s("conv1d"));
    assert_eq!(Dropout::new(0.25).describe(), s("dropout2"));
    assert_eq!(Embedding::new(10, 3).describe(), s("embedding"));
    assert_eq!(Embedding::with_options(10, 3, Some(0), DType::F32).describe(), s("embedding_pad"));
    for (m, k) in [
        (Box::new(ReLU::new()) as Box<dyn Module>, "relu"),
        (Box::new(GELU::default()), "gelu"),
        (Box::new(GELU::new(GeluApprox::Tanh)), "gelu_tanh"),
        (Box::new(Sigmoid::new()), "sigmoid"),
        (Box::new(Tanh::new()), "tanh"),
        (Box::new(SiLU::new()), "silu"),
        (Box::new(Softmax::new(1)), "softmax"),
        (Box::new(Flatten::default()), "flatten"),
    ] {
        assert_eq!(m.describe(), s(k));
    }
}

#[test]
fn init_fans_and_gains() {
    assert_eq!(init::calculate_fan_in_and_fan_out(&Tensor::zeros(&[6, 4, 3, 2])), (24, 36));
    assert_eq!(init::calculate_gain(Nonlinearity::Relu, None), 2f64.sqrt());
    assert_eq!(init::calculate_gain(Nonlinearity::Tanh, None), 5.0 / 3.0);
    assert!((init::calculate_gain(Nonlinearity::LeakyRelu, Some(5f64.sqrt())) - (1.0f64 / 3.0).sqrt()).abs() < 1e-15);
    assert_eq!(init::calculate_gain(Nonlinearity::LeakyRelu, None), (2.0 / (1.0 + 1e-4f64)).sqrt());
    assert_eq!(init::calculate_gain(Nonlinearity::Selu, None), 0.75);
    let msg = panic_message(|| {
        init::calculate_fan_in_and_fan_out(&Tensor::zeros(&[3]));
    });
    assert!(msg.contains("fewer than 2 dimensions") && msg.contains("[3]"), "{msg}");
}

/// Mean and standard deviation of a tensor's elements.
fn moments(t: &Tensor) -> (f64, f64) {
    let v = t.to_vec_f64();
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
    (mean, var.sqrt())
}

#[test]
fn init_distributions_have_the_documented_scale() {
    tensorgrad::manual_seed(11);
    let w = Tensor::zeros(&[200, 100]);
    let (fan_in, fan_out) = (100.0f64, 200.0f64);
    type Init = Box<dyn Fn(&Tensor) -> Tensor>;
    let cases: Vec<(&str, Init, f64)> = vec![
        ("xavier_uniform", Box::new(|t| init::xavier_uniform_(t, 1.0)), (2.0 / (fan_in + fan_out)).sqrt()),
        ("xavier_normal", Box::new(|t| init::xavier_normal_(t, 2.0)), 2.0 * (2.0 / (fan_in + fan_out)).sqrt()),
        (
            "kaiming_uniform",
            Box::new(|t| init::kaiming_uniform_(t, 0.0, FanMode::FanIn, Nonlinearity::Relu)),
            (2.0 / fan_in).sqrt(),
        ),
        (
            "kaiming_normal_fan_out",
            Box::new(|t| init::kaiming_normal_(t, 0.0, FanMode::FanOut, Nonlinearity::Relu)),
            (2.0 / fan_out).sqrt(),
        ),
        ("normal", Box::new(|t| init::normal_(t, 0.0, 0.3)), 0.3),
        ("uniform", Box::new(|t| init::uniform_(t, -1.0, 1.0)), (1.0f64 / 3.0).sqrt()),
    ];
    for (name, f, std) in cases {
        let out = f(&w);
        assert!(out.same(&w), "{name}: returns the tensor it filled");
        let (m, s) = moments(&w);
        assert!(m.abs() < 0.05 * std.max(0.1), "{name}: mean {m}");
        assert!((s / std - 1.0).abs() < 0.03, "{name}: std {s} vs {std}");
    }
    let bound = (6.0f64 / 300.0).sqrt();
    init::xavier_uniform_(&w, 1.0);
    assert!(w.to_vec_f64().iter().all(|x| x.abs() <= bound));
    init::ones_(&w);
    assert!(w.to_vec_f64().iter().all(|&x| x == 1.0));
    init::zeros_(&w);
    assert!(w.to_vec_f64().iter().all(|&x| x == 0.0));
    init::constant_(&w, 0.5);
    assert!(w.to_vec_f64().iter().all(|&x| x == 0.5));
}

#[test]
fn init_orthogonal_gives_orthonormal_rows_or_columns() {
    tensorgrad::manual_seed(5);
    for shape in [[6usize, 4], [4, 6], [5, 5]] {
        let w = Tensor::zeros_dtype(&shape, DType::F64);
        init::orthogonal_(&w, 2.0);
        let (r, c) = (shape[0], shape[1]);
        let gram = if r >= c { w.t().matmul(&w) } else { w.matmul(&w.t()) };
        let n = r.min(c);
        let eye = Tensor::eye(n).to_dtype(DType::F64) * 4.0;
        common::assert_close(&gram, &eye, 1e-10, &format!("orthogonal {shape:?}"));
    }
    // Conv-shaped weights are viewed as [out, rest].
    let w = Tensor::zeros_dtype(&[3, 2, 2, 2], DType::F64);
    init::orthogonal_(&w, 1.0);
    let m = w.reshape([3, 8]);
    common::assert_close(&m.matmul(&m.t()), &Tensor::eye(3).to_dtype(DType::F64), 1e-10, "orthogonal conv");
    // f32 tensors are filled too, under no_grad even when they require grad.
    let p = Tensor::zeros(&[3, 3]).requires_grad_();
    init::kaiming_uniform_(&p, 5f64.sqrt(), FanMode::FanIn, Nonlinearity::LeakyRelu);
    assert!(p.is_leaf() && p.to_vec_f64().iter().all(|x| x.abs() <= 1.0 / 3f64.sqrt()));
}

#[test]
fn layers_accept_non_contiguous_and_unbatched_inputs() {
    tensorgrad::manual_seed(9);
    // A transposed view: same values as `dense`, other strides.
    let dense = Tensor::normal_dtype(&[2, 3, 5, 4], 0.0, 1.0, DType::F64);
    let strided = dense.transpose(2, 3).contiguous().transpose(2, 3);
    assert!(!strided.is_contiguous());
    let modules: Vec<Box<dyn Module>> = vec![
        Box::new(Conv2d::with_options(3, 2, (2, 3), (1, 1), (1, 1), (1, 1), 1, true, DType::F64)),
        Box::new(MaxPool2d::with_options((2, 2), (1, 2), (1, 0))),
        Box::new(AvgPool2d::new((2, 2))),
        Box::new(AdaptiveAvgPool2d::new((2, 3))),
        Box::new(LayerNorm::with_options(&[4], 1e-5, true, true, DType::F64)),
        Box::new(Linear::with_options(4, 3, true, DType::F64)),
        Box::new(BatchNorm2d::with_options(3, 1e-5, Some(0.1), true, false, DType::F64)),
    ];
    for m in &modules {
        let (a, b) = (m.forward(&dense), m.forward(&strided));
        common::assert_close(&b, &a, 1e-12, &m.describe());
    }
    // Unbatched [C, H, W] inputs give the batched result without the batch dim.
    for m in &modules[..4] {
        let one = dense.narrow(0, 1, 1);
        let (a, b) = (m.forward(&one).squeeze(0), m.forward(&one.squeeze(0)));
        common::assert_close(&b, &a, 1e-12, &format!("{} unbatched", m.describe()));
    }
    let conv1 = Conv1d::with_options(3, 2, 2, 1, 0, 1, 1, false, DType::F64);
    let seq = Tensor::normal_dtype(&[3, 6], 0.0, 1.0, DType::F64);
    common::assert_close(&conv1.forward(&seq), &conv1.forward(&seq.unsqueeze(0)).squeeze(0), 1e-12, "conv1d unbatched");
}
