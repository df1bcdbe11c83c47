//! # 04 · XOR: what one layer cannot learn, and how a hidden layer fixes it
//!
//! ```text
//! cargo run --release --example 04_xor
//! ```
//!
//! Raw tensors and hand-written gradient descent only (no layers, no optimizer), on the four inputs
//! (0,0), (0,1), (1,0), (1,1).
//!
//! 1. **A single-layer perceptron** p = sigmoid(x · w + b), trained with the binary cross-entropy
//!    (written from logits z as softplus(z) - t·z, which is stable), learns AND, OR and NAND: each is
//!    separated by one straight line. It fails on XOR: no line puts (0,1), (1,0) on one side and (0,0),
//!    (1,1) on the other. In fact the loss's minimum for XOR is w = 0, b = 0: every output goes to 0.5.
//! 2. **A two-layer MLP** 2-2-1, h = sigmoid(x W1ᵀ + b1), p = sigmoid(h · w2 + b2), solves XOR: the two
//!    hidden units learn two simpler gates that a line *can* separate (with seed 0: "x1 implies x2" and
//!    "x2 implies x1"; other seeds give e.g. OR and NAND), and in the hidden space (h1, h2) the four points
//!    are separable by a line, which the output unit draws. With two hidden units an unlucky start can
//!    get stuck (seed 0's first attempt does); the example then restarts from a new initialisation.
//!
//! Expected output: four truth tables for the perceptron (AND, OR, NAND all 4/4 correct; XOR with every
//! output ≈ 0.50, "not learned"), then the MLP's XOR truth table (4/4, outputs within 0.05 of the
//! targets), its learned hidden features per input with the gate each hidden unit resembles, and its
//! weights. Runs in well under a second.

use tensorgrad::Tensor;

/// One truth table's outcome.
pub struct GateResult {
    /// Gate name.
    pub gate: &'static str,
    /// Outputs (probabilities) for (0,0), (0,1), (1,0), (1,1).
    pub outputs: Vec<f32>,
    /// Whether every output is on the right side of 0.5 with a margin (|p - t| < 0.4).
    pub learned: bool,
}

/// What the smoke test checks.
pub struct Report {
    /// The single-layer perceptron on AND, OR, NAND, XOR.
    pub perceptron: Vec<GateResult>,
    /// The two-layer MLP on XOR.
    pub mlp: GateResult,
    /// The MLP's hidden activations, one row per input.
    pub hidden: Vec<[f32; 2]>,
}

fn main() {
    run();
}

const INPUTS: [[f32; 2]; 4] = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
const GATES: [(&str, [f32; 4]); 4] = [
    ("AND", [0.0, 0.0, 0.0, 1.0]),
    ("OR", [0.0, 1.0, 1.0, 1.0]),
    ("NAND", [1.0, 1.0, 1.0, 0.0]),
    ("XOR", [0.0, 1.0, 1.0, 0.0]),
];

/// The 16 boolean functions of two inputs, by their truth table on (0,0), (0,1), (1,0), (1,1).
fn gate_name(bits: [u8; 4]) -> &'static str {
    match bits {
        [0, 0, 0, 0] => "FALSE",
        [0, 0, 0, 1] => "AND",
        [0, 0, 1, 0] => "x1 AND NOT x2",
        [0, 0, 1, 1] => "x1",
        [0, 1, 0, 0] => "NOT x1 AND x2",
        [0, 1, 0, 1] => "x2",
        [0, 1, 1, 0] => "XOR",
        [0, 1, 1, 1] => "OR",
        [1, 0, 0, 0] => "NOR",
        [1, 0, 0, 1] => "XNOR",
        [1, 0, 1, 0] => "NOT x2",
        [1, 0, 1, 1] => "x1 OR NOT x2",
        [1, 1, 0, 0] => "NOT x1",
        [1, 1, 0, 1] => "NOT x1 OR x2",
        [1, 1, 1, 0] => "NAND",
        [1, 1, 1, 1] => "TRUE",
        _ => "?",
    }
}

fn inputs() -> Tensor {
    Tensor::from_vec(INPUTS.iter().flatten().copied().collect(), &[4, 2])
}

/// Binary cross-entropy from logits, averaged: mean(softplus(z) - t z) = mean(-t log p - (1-t) log(1-p)).
fn bce_with_logits(z: &Tensor, t: &Tensor) -> Tensor {
    (z.softplus(1.0, 20.0) - t * z).mean()
}

/// One step of plain gradient descent on `params`, then clears their gradients.
fn sgd_step(params: &[&Tensor], lr: f64) {
    tensorgrad::no_grad(|| {
        for p in params {
            let g = p.grad().expect("parameter has a gradient");
            p.add_assign_unrecorded(&(g * -lr));
            p.set_grad(None);
        }
    });
}

fn judge(gate: &'static str, outputs: Vec<f32>, targets: &[f32; 4]) -> GateResult {
    let learned = outputs.iter().zip(targets).all(|(p, t)| (p - t).abs() < 0.4);
    GateResult { gate, outputs, learned }
}

fn print_table(r: &GateResult, targets: &[f32; 4]) {
    println!("  {:>3} {:>3} | {:>6} | {:>6} | {:>5}", "x1", "x2", "target", "output", "ok");
    for (i, x) in INPUTS.iter().enumerate() {
        let ok = if (r.outputs[i] - targets[i]).abs() < 0.5 { "yes" } else { "NO" };
        println!("  {:>3} {:>3} | {:>6} | {:>6.3} | {:>5}", x[0], x[1], targets[i], r.outputs[i], ok);
    }
    let correct = r.outputs.iter().zip(targets).filter(|(p, t)| (*p - *t).abs() < 0.5).count();
    let verdict = if r.learned { "learned" } else { "NOT learned" };
    println!("  -> {}: {correct}/4 on the right side of 0.5, {verdict}\n", r.gate);
}

/// Trains a single-layer perceptron on one gate.
fn perceptron(gate: &'static str, targets: &[f32; 4], steps: usize) -> GateResult {
    let x = inputs();
    let t = Tensor::from_vec(targets.to_vec(), &[4]);
    let w = (Tensor::randn(&[2]) * 0.5).requires_grad_();
    let b = Tensor::zeros(&[1]).requires_grad_();
    for _ in 0..steps {
        let z = x.matmul(&w) + &b;
        bce_with_logits(&z, &t).backward();
        sgd_step(&[&w, &b], 1.0);
    }
    let p = tensorgrad::no_grad(|| (x.matmul(&w) + &b).sigmoid());
    let (wv, bv) = (w.to_vec::<f32>(), b.item());
    println!("{gate}: p = sigmoid({:+.2} x1 {:+.2} x2 {:+.2})", wv[0], wv[1], bv);
    judge(gate, p.to_vec::<f32>(), targets)
}

/// The 2-2-1 MLP's parameters.
struct Mlp {
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
}

impl Mlp {
    fn new() -> Mlp {
        Mlp {
            w1: Tensor::randn(&[2, 2]).requires_grad_(),
            b1: Tensor::zeros(&[2]).requires_grad_(),
            w2: Tensor::randn(&[2]).requires_grad_(),
            b2: Tensor::zeros(&[1]).requires_grad_(),
        }
    }
    /// Returns (hidden activations [4, 2], output logits [4]).
    fn forward(&self, x: &Tensor) -> (Tensor, Tensor) {
        let h = (x.matmul(&self.w1.t()) + &self.b1).sigmoid();
        let z = h.matmul(&self.w2) + &self.b2;
        (h, z)
    }
}

/// Runs the whole lesson; `steps` is the number of gradient steps per training run.
pub fn run_with(steps: usize) -> Report {
    tensorgrad::manual_seed(0);
    println!("=== 1. A single-layer perceptron: p = sigmoid(w1 x1 + w2 x2 + b), {steps} steps of gradient descent\n");
    let mut perceptron_results = Vec::new();
    for (gate, targets) in &GATES {
        let r = perceptron(gate, targets, steps);
        print_table(&r, targets);
        perceptron_results.push(r);
    }
    println!("XOR fails: (0,1) and (1,0) must be on one side of a line, (0,0) and (1,1) on the other, and no");
    println!("line does that. The best a perceptron can do is w = 0, b = 0: every output 0.5.\n");

    println!("=== 2. A two-layer MLP 2-2-1: h = sigmoid(x W1ᵀ + b1), p = sigmoid(h · w2 + b2), on XOR\n");
    let x = inputs();
    let xor = &GATES[3].1;
    let t = Tensor::from_vec(xor.to_vec(), &[4]);
    // With only two hidden units, an unlucky start can get stuck (both units learning the same gate);
    // the usual remedy is a restart from a new random initialisation.
    let mut attempt = 0;
    let (mlp, result) = loop {
        attempt += 1;
        let mlp = Mlp::new();
        for step in 0..steps {
            let (_, z) = mlp.forward(&x);
            let loss = bce_with_logits(&z, &t);
            if step % (steps / 5).max(1) == 0 || step + 1 == steps {
                println!("  attempt {attempt}, step {step:>5}: loss {:.5}", loss.item());
            }
            loss.backward();
            sgd_step(&[&mlp.w1, &mlp.b1, &mlp.w2, &mlp.b2], 2.0);
        }
        let p = tensorgrad::no_grad(|| mlp.forward(&x).1.sigmoid());
        let result = judge("XOR (MLP)", p.to_vec::<f32>(), xor);
        if result.learned || attempt == 5 {
            break (mlp, result);
        }
        println!("  stuck in a poor minimum: restarting from a new random initialisation");
    };
    println!();
    print_table(&result, xor);

    let h = tensorgrad::no_grad(|| mlp.forward(&x).0).to_vec::<f32>();
    let hidden: Vec<[f32; 2]> = h.chunks(2).map(|c| [c[0], c[1]]).collect();
    println!("The learned hidden features (what the output unit sees):");
    println!("  {:>3} {:>3} | {:>6} {:>6} | {:>6} | {:>6}", "x1", "x2", "h1", "h2", "output", "target");
    for (i, xi) in INPUTS.iter().enumerate() {
        println!(
            "  {:>3} {:>3} | {:>6.3} {:>6.3} | {:>6.3} | {:>6}",
            xi[0], xi[1], hidden[i][0], hidden[i][1], result.outputs[i], xor[i]
        );
    }
    for (unit, name) in ["h1", "h2"].into_iter().enumerate() {
        let bits: [u8; 4] = std::array::from_fn(|i| (hidden[i][unit] > 0.5) as u8);
        println!("  {name} thresholded at 0.5 = {bits:?}: the gate {}", gate_name(bits));
    }
    println!("In (h1, h2) space the XOR-true inputs and the XOR-false inputs lie on opposite sides of the");
    println!(
        "output unit's line {:+.2} h1 {:+.2} h2 {:+.2} = 0.",
        mlp.w2.to_vec::<f32>()[0],
        mlp.w2.to_vec::<f32>()[1],
        mlp.b2.item()
    );
    println!(
        "\nW1 = {}\nb1 = {}\nw2 = {}\nb2 = {}",
        mlp.w1.detach(),
        mlp.b1.detach(),
        mlp.w2.detach(),
        mlp.b2.detach()
    );

    Report { perceptron: perceptron_results, mlp: result, hidden }
}

/// The full lesson (5,000 steps per run).
pub fn run() -> Report {
    run_with(5000)
}
