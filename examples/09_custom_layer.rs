//! # 09 · Extending the engine: a new differentiable op and a new layer
//!
//! ```text
//! cargo run --release --example 09_custom_layer
//! ```
//!
//! 1. **A new op** via [`CustomOp`]: the parametric Swish, with one learnable slope per feature,
//!
//!    ```text
//!    forward:   y = x · s,   s = sigmoid(β x)                        x: [batch, F], β: [F] (broadcast)
//!    backward:  dL/dx = dL/dy · (s + β x s (1 - s))                  (product rule + sigmoid' = s (1 - s))
//!               dL/dβ = Σ_batch dL/dy · x² s (1 - s)                 (summed over the broadcast dim)
//!    ```
//!
//!    `forward` may use any tensor ops (it runs without recording); `backward` is written with tensor ops
//!    too, so it is itself differentiable and second derivatives work.
//! 2. **Proof** that the backward is right: the op's values and gradients against the same formula composed
//!    from built-in ops, then `gradcheck` (central finite differences in f64) and `gradgradcheck` (second
//!    derivatives). A deliberately wrong backward (the β x s (1 - s) term forgotten) shows what a failing
//!    gradcheck reports.
//! 3. **New layers**: `Dense` (y = x Wᵀ + b, PyTorch's `Linear` layout and init) and `Swish` (holds β,
//!    calls the op), both implementing `nn::Module`, composed with `nn::Sequential`.
//! 4. **Training**: the model Dense(1, 32) → Swish(32) → Dense(32, 1) fits y = sin(2x) on [-π/2, π/2]
//!    with hand-written SGD with momentum, for a few hundred full-batch steps.
//!
//! Expected output: composition differences of order 1e-16; "gradcheck: passed" and "gradgradcheck:
//! passed"; the wrong backward caught by gradcheck with the input, index, analytic and numeric values; the
//! model summary (129 parameters); a loss table falling from about 1.0 to about 2e-5 in 800 steps; the
//! learned β values (most stay near their initial 1.0, a few move to about 1.6). Runs in about a second.

use tensorgrad::nn::{Module, Sequential};
use tensorgrad::{gradcheck, gradgradcheck, CustomOp, DType, GradcheckOptions, Tensor};

/// What the smoke test checks.
pub struct Report {
    /// gradcheck of the Swish op.
    pub gradcheck_passed: bool,
    /// gradgradcheck of the Swish op.
    pub gradgradcheck_passed: bool,
    /// gradcheck caught the deliberately wrong backward.
    pub wrong_backward_caught: bool,
    /// Largest difference of values and gradients against the composed formula.
    pub composition_diff: f64,
    /// Loss before and after training.
    pub loss_before: f64,
    /// Loss after training.
    pub loss_after: f64,
}

fn main() {
    run();
}

// ---- 1. The op --------------------------------------------------------------------------------------

/// The parametric Swish `y = x · sigmoid(β x)`; inputs `[x, β]`.
struct ParamSwish;

impl CustomOp for ParamSwish {
    fn name(&self) -> &'static str {
        "param_swish"
    }

    fn forward(&self, inputs: &[&Tensor]) -> Tensor {
        let (x, beta) = (inputs[0], inputs[1]);
        x * &(x * beta).sigmoid()
    }

    fn backward(&self, inputs: &[Tensor], _output: &Tensor, dy: &Tensor) -> Vec<Option<Tensor>> {
        let (x, beta) = (&inputs[0], &inputs[1]);
        let s = (x * beta).sigmoid();
        let ds = &s * &(1.0 - &s); // sigmoid'(β x)
        let dx = dy * &(&s + &(x * beta * &ds));
        // β was broadcast over the batch dimension: its gradient sums over it.
        let dbeta = (dy * &(x * x * &ds)).sum_to_shape(beta.shape());
        vec![Some(dx), Some(dbeta)]
    }
}

/// The same op with a bug: dL/dx forgets the β x s (1 - s) term (the derivative of the sigmoid factor).
struct WrongSwish;

impl CustomOp for WrongSwish {
    fn name(&self) -> &'static str {
        "wrong_swish"
    }
    fn forward(&self, inputs: &[&Tensor]) -> Tensor {
        ParamSwish.forward(inputs)
    }
    fn backward(&self, inputs: &[Tensor], output: &Tensor, dy: &Tensor) -> Vec<Option<Tensor>> {
        let mut grads = ParamSwish.backward(inputs, output, dy);
        grads[0] = Some(dy * &(&inputs[0] * &inputs[1]).sigmoid());
        grads
    }
}

fn swish(x: &Tensor, beta: &Tensor) -> Tensor {
    Tensor::apply_op(ParamSwish, &[x, beta])
}

// ---- 3. The layers ------------------------------------------------------------------------------------

/// A fully connected layer, `y = x Wᵀ + b`, with PyTorch's `Linear` parameter layout (`weight: [out, in]`)
/// and initialisation (uniform in ±1/√in).
struct Dense {
    weight: Tensor,
    bias: Tensor,
}

impl Dense {
    fn new(in_features: usize, out_features: usize) -> Dense {
        let bound = 1.0 / (in_features as f64).sqrt();
        Dense {
            weight: Tensor::uniform(&[out_features, in_features], -bound, bound).requires_grad_(),
            bias: Tensor::uniform(&[out_features], -bound, bound).requires_grad_(),
        }
    }
}

impl Module for Dense {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.matmul(&self.weight.t()) + &self.bias
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![("weight".into(), self.weight.clone()), ("bias".into(), self.bias.clone())]
    }
    fn describe(&self) -> String {
        format!("Dense(in_features={}, out_features={})", self.weight.size(1), self.weight.size(0))
    }
}

/// The parametric Swish as a layer: one learnable β per feature, initialised to 1 (Swish-1 = SiLU).
struct Swish {
    beta: Tensor,
}

impl Swish {
    fn new(features: usize) -> Swish {
        Swish { beta: Tensor::ones(&[features]).requires_grad_() }
    }
}

impl Module for Swish {
    fn forward(&self, x: &Tensor) -> Tensor {
        swish(x, &self.beta)
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![("beta".into(), self.beta.clone())]
    }
    fn describe(&self) -> String {
        format!("Swish(num_features={})", self.beta.numel())
    }
}

// ---- 2. The proofs ---------------------------------------------------------------------------------------

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    a.to_vec_f64().iter().zip(b.to_vec_f64()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// Compares the op with its composition from built-in ops: values and both gradients.
fn check_against_composition() -> f64 {
    let x = Tensor::randn(&[4, 3]).to_dtype(DType::F64).requires_grad_();
    let beta = Tensor::from_vec(vec![0.5f64, 1.0, 2.0], &[3]).requires_grad_();
    let custom = swish(&x, &beta);
    let composed = &x * &(&x * &beta).sigmoid();
    let dy = Tensor::randn(&[4, 3]).to_dtype(DType::F64);
    let grads_of = |y: &Tensor| {
        let g = tensorgrad::grad(&[y], &[&x, &beta], Some(&[&dy]), false);
        (g[0].clone().expect("dx"), g[1].clone().expect("dbeta"))
    };
    let (dx_c, db_c) = grads_of(&custom);
    let (dx_r, db_r) = grads_of(&composed);
    let rows = [
        ("values y", max_abs_diff(&custom, &composed)),
        ("dL/dx", max_abs_diff(&dx_c, &dx_r)),
        ("dL/dβ", max_abs_diff(&db_c, &db_r)),
    ];
    println!("The custom op vs the same formula composed from built-in ops (x: [4, 3], β: [3], f64):");
    for (what, diff) in rows {
        println!("  {what:<10} max |custom - composed| = {diff:.2e}");
    }
    rows.iter().map(|r| r.1).fold(0.0, f64::max)
}

// ---- 4. Training ---------------------------------------------------------------------------------------

/// Full-batch SGD with momentum (PyTorch's formulation: v = μ v + g; p -= lr v) for `steps` steps.
/// Returns the losses at every step.
fn train(model: &Sequential, x: &Tensor, y: &Tensor, steps: usize) -> Vec<f64> {
    let (lr, momentum) = (0.05, 0.9);
    let params = model.parameters();
    let velocity: Vec<Tensor> = params.iter().map(Tensor::zeros_like).collect();
    let mut losses = Vec::with_capacity(steps);
    for _ in 0..steps {
        let loss = (model.forward(x) - y).powf(2.0).mean();
        losses.push(loss.item());
        model.zero_grad();
        loss.backward();
        tensorgrad::no_grad(|| {
            for (p, v) in params.iter().zip(&velocity) {
                let g = p.grad().expect("every parameter gets a gradient");
                let new_v = v * momentum + &g;
                v.copy_(&new_v);
                p.add_assign_unrecorded(&(new_v * -lr));
            }
        });
    }
    losses
}

/// Runs the lesson; `steps` training steps.
pub fn run_with(steps: usize) -> Report {
    tensorgrad::manual_seed(0);

    println!("=== 1-2. The op, checked\n");
    let composition_diff = check_against_composition();

    let x = Tensor::randn(&[3, 4]).to_dtype(DType::F64).requires_grad_();
    let beta = Tensor::from_vec(vec![0.5f64, 1.0, 1.5, -2.0], &[4]).requires_grad_();
    let options = GradcheckOptions::default();
    let op = |t: &[Tensor]| swish(&t[0], &t[1]);
    let first = gradcheck(op, &[x.clone(), beta.clone()], options);
    let second = gradgradcheck(op, &[x.clone(), beta.clone()], options);
    let show = |r: &Result<(), tensorgrad::GradcheckError>| match r {
        Ok(()) => "passed".to_string(),
        Err(e) => format!("FAILED: {e}"),
    };
    println!(
        "\ngradcheck(param_swish, x: [3, 4], β: [4], eps {:e}, atol {:e}, rtol {:e}): {}",
        options.eps,
        options.atol,
        options.rtol,
        show(&first)
    );
    println!("gradgradcheck(param_swish, same inputs): {}", show(&second));
    let wrong = gradcheck(|t: &[Tensor]| Tensor::apply_op(WrongSwish, &[&t[0], &t[1]]), &[x, beta], options);
    println!("\nThe same check on a backward with a bug (dL/dx without the β x s (1 - s) term):");
    match &wrong {
        Ok(()) => println!("  passed (it should not have!)"),
        Err(e) => println!("  caught: {e}"),
    }

    println!("\n=== 3. The layers, composed\n");
    let model = Sequential::new().add(Dense::new(1, 32)).add(Swish::new(32)).add(Dense::new(32, 1));
    println!("{}", model.summary());
    println!("parameters:");
    for (name, p) in model.named_parameters() {
        println!("  {name:<10} {:?}", p.shape());
    }
    println!("total: {}", model.num_parameters());

    println!("\n=== 4. Training: y = sin(2x) on [-π/2, π/2], 128 points, SGD with momentum 0.9, lr 0.05\n");
    let xs = Tensor::linspace(-std::f64::consts::FRAC_PI_2, std::f64::consts::FRAC_PI_2, 128).reshape([128, 1]);
    let ys = (&xs * 2.0).sin();
    let losses = train(&model, &xs, &ys, steps);
    println!("  {:>6} {:>10}", "step", "MSE");
    let mut shown: Vec<usize> = [0, 10, 25, 50, 100, 200, 400, 800].into_iter().filter(|&s| s < steps).collect();
    shown.push(steps - 1);
    for s in shown {
        println!("  {s:>6} {:>10.6}", losses[s]);
    }
    let final_loss = tensorgrad::no_grad(|| (model.forward(&xs) - &ys).powf(2.0).mean().item());
    println!("  {:>6} {final_loss:>10.6}  (after the last update)", "final");
    let betas = model.named_parameters().into_iter().find(|(n, _)| n == "1.beta").expect("1.beta").1;
    let b = betas.to_vec::<f32>();
    let (lo, hi) = b.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    println!(
        "\nlearned β (initially all 1.0): min {lo:.3}, mean {:.3}, max {hi:.3}",
        b.iter().sum::<f32>() / b.len() as f32
    );
    println!("1.beta = {}", betas.detach());

    Report {
        gradcheck_passed: first.is_ok(),
        gradgradcheck_passed: second.is_ok(),
        wrong_backward_caught: wrong.is_err(),
        composition_diff,
        loss_before: losses[0],
        loss_after: final_loss,
    }
}

/// The full lesson (800 training steps).
pub fn run() -> Report {
    run_with(800)
}
