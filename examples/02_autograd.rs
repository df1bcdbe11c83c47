//! # 02 · Autograd: one small network worked by hand and by the engine
//!
//! ```text
//! cargo run --release --example 02_autograd
//! ```
//!
//! The network is one layer, y = sigma(W x + b), with
//!
//! ```text
//! W = [[ 1, -2],      x = [ 1, -1],     b = [1, 0],     target t = [1, 0]
//!      [-1,  1]]
//! z = W x + b = [1*1 + (-2)(-1) + 1,  (-1)*1 + 1*(-1) + 0] = [4, -2]
//! y = sigma(z) = [1/(1+e^-4), 1/(1+e^2)] = [0.9820, 0.1192]
//! L = 1/2 * sum((y - t)^2) = 0.0072664
//! ```
//!
//! Backward, the chain rule one local derivative at a time (each line is printed with its numbers):
//!
//! ```text
//! dL/dy = y - t                          (derivative of 1/2 (y - t)^2)
//! dy/dz = sigma(z) (1 - sigma(z)) = y (1 - y)
//! dL/dz = dL/dy * dy/dz                  (elementwise)
//! dL/db = dL/dz                          (dz/db = 1)
//! dL/dW = dL/dz  outer  x                (dz_i/dW_ij = x_j)
//! dL/dx = W^T dL/dz                      (dz_i/dx_j = W_ij)
//! ```
//!
//! Expected output: the forward values by hand and by the engine (y = [0.9820, 0.1192]); a table of the
//! local derivatives; the graph the engine recorded, printed as a tree from L down to the leaves (walked
//! with `Tensor::op_name` and `Tensor::grad_fn_inputs`); and every gradient by hand next to the engine's,
//! agreeing to ~1e-16 (the program asserts they agree to 1e-12).

use std::collections::{HashMap, HashSet};
use tensorgrad::Tensor;

/// What the smoke test checks.
pub struct Report {
    /// y computed by the engine.
    pub y: Vec<f64>,
    /// The largest |hand - engine| over every gradient entry.
    pub max_grad_diff: f64,
    /// The printed graph, one node per line.
    pub graph: String,
}

fn main() {
    run();
}

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

fn fmt_vec(v: &[f64]) -> String {
    let items: Vec<String> = v.iter().map(|x| format!("{x:>10.6}")).collect();
    format!("[{}]", items.join(", "))
}

/// Prints the graph under `t` as a tree. `names` labels the tensors we hold by name; a node reached a
/// second time (fan-out) is printed once and then referred to.
fn print_graph(t: &Tensor, names: &HashMap<usize, &str>) -> String {
    fn walk(
        t: &Tensor,
        names: &HashMap<usize, &str>,
        prefix: &str,
        last: bool,
        root: bool,
        seen: &mut HashSet<usize>,
        out: &mut String,
    ) {
        let branch = if root {
            ""
        } else if last {
            "└─ "
        } else {
            "├─ "
        };
        let name = names.get(&t.id()).map(|n| format!("{n} = ")).unwrap_or_default();
        let what = match t.op_name() {
            Some(op) => format!("{name}{op}"),
            None if t.requires_grad() => format!("{name}leaf (requires_grad)"),
            None => format!("{name}leaf (constant)"),
        };
        let repeated = !seen.insert(t.id());
        let note = if repeated { "  (shown above)" } else { "" };
        let label = format!("{prefix}{branch}{what}");
        let pad = 54usize.saturating_sub(label.chars().count());
        out.push_str(&format!("{label}{} shape {:?}{note}\n", " ".repeat(pad), t.shape()));
        if repeated {
            return;
        }
        let inputs = t.grad_fn_inputs();
        let child_prefix = if root { String::new() } else { format!("{prefix}{}", if last { "   " } else { "│  " }) };
        for (i, input) in inputs.iter().enumerate() {
            walk(input, names, &child_prefix, i + 1 == inputs.len(), false, seen, out);
        }
    }
    let mut out = String::new();
    walk(t, names, "", true, true, &mut HashSet::new(), &mut out);
    out
}

/// Runs the forward and backward passes by hand and by the engine, and compares them.
pub fn run() -> Report {
    // ---- By hand, with plain f64 arithmetic -----------------------------------------------------------
    let w = [[1.0, -2.0], [-1.0, 1.0]];
    let x = [1.0, -1.0];
    let b = [1.0, 0.0];
    let t = [1.0, 0.0];
    let z: Vec<f64> = (0..2).map(|i| w[i][0] * x[0] + w[i][1] * x[1] + b[i]).collect();
    let y: Vec<f64> = z.iter().map(|&v| sigmoid(v)).collect();
    let loss = 0.5 * (0..2).map(|i| (y[i] - t[i]).powi(2)).sum::<f64>();
    let dl_dy: Vec<f64> = (0..2).map(|i| y[i] - t[i]).collect();
    let dy_dz: Vec<f64> = y.iter().map(|&v| v * (1.0 - v)).collect();
    let dl_dz: Vec<f64> = (0..2).map(|i| dl_dy[i] * dy_dz[i]).collect();
    let dl_db = dl_dz.clone();
    let dl_dw: Vec<f64> = (0..2).flat_map(|i| (0..2).map(move |j| (i, j))).map(|(i, j)| dl_dz[i] * x[j]).collect();
    let dl_dx: Vec<f64> = (0..2).map(|j| w[0][j] * dl_dz[0] + w[1][j] * dl_dz[1]).collect();

    println!("Forward pass by hand");
    println!("  z = W x + b        = {}", fmt_vec(&z));
    println!("  y = sigma(z)       = {}", fmt_vec(&y));
    println!("  L = 1/2 |y - t|^2  = {loss:.7}");

    // ---- By the engine (f64 tensors, so the comparison is exact to rounding) --------------------------
    let wt = Tensor::from_vec(vec![1.0f64, -2.0, -1.0, 1.0], &[2, 2]).requires_grad_();
    let xt = Tensor::from_vec(x.to_vec(), &[2]).requires_grad_();
    let bt = Tensor::from_vec(b.to_vec(), &[2]).requires_grad_();
    let tt = Tensor::from_vec(t.to_vec(), &[2]);
    let zt = wt.matmul(&xt) + &bt;
    let yt = zt.sigmoid();
    let lt = (&yt - &tt).powf(2.0).sum() * 0.5;
    // Non-leaf tensors keep their gradient only when asked to (as in PyTorch).
    zt.retain_grad();
    yt.retain_grad();

    println!("\nForward pass by the engine");
    println!("  z = W.matmul(x) + b = {zt}");
    println!("  y = z.sigmoid()     = {yt}");
    println!("  L                   = {lt}");

    println!("\nThe chain rule, one local derivative at a time");
    println!("  {:<42} {:<14} value", "derivative", "formula");
    let rows: [(&str, &str, String); 6] = [
        ("dL/dy", "y - t", fmt_vec(&dl_dy)),
        ("dy/dz  (local: sigmoid)", "y (1 - y)", fmt_vec(&dy_dz)),
        ("dL/dz = dL/dy * dy/dz", "elementwise", fmt_vec(&dl_dz)),
        ("dL/db = dL/dz * dz/db  (dz/db = 1)", "dL/dz", fmt_vec(&dl_db)),
        ("dL/dW = dL/dz * dz/dW  (dz_i/dW_ij = x_j)", "dL/dz outer x", fmt_vec(&dl_dw)),
        ("dL/dx = dL/dz * dz/dx  (dz_i/dx_j = W_ij)", "W^T dL/dz", fmt_vec(&dl_dx)),
    ];
    for (name, formula, value) in &rows {
        println!("  {name:<42} {formula:<14} {value}");
    }

    // ---- The recorded graph (before backward frees it) ------------------------------------------------
    let names: HashMap<usize, &str> =
        [(&lt, "L"), (&yt, "y"), (&zt, "z"), (&wt, "W"), (&xt, "x"), (&bt, "b"), (&tt, "t")]
            .into_iter()
            .map(|(tensor, name)| (tensor.id(), name))
            .collect();
    let graph = print_graph(&lt, &names);
    println!("\nThe graph the engine recorded (backward walks it from the top down):\n{graph}");
    println!("(W.matmul(x) with a 1-D x is recorded as reshape x to a column, a matrix product, reshape back,");
    println!(" as torch.matmul defines it; t is a constant, so backward computes no gradient for it.)\n");

    // ---- Backward ------------------------------------------------------------------------------------
    lt.backward();
    let engine = |t: &Tensor| t.grad().expect("gradient").to_vec::<f64>();
    let compare: [(&str, &[f64], Vec<f64>); 5] = [
        ("dL/dy", &dl_dy, engine(&yt)),
        ("dL/dz", &dl_dz, engine(&zt)),
        ("dL/dW", &dl_dw, engine(&wt)),
        ("dL/db", &dl_db, engine(&bt)),
        ("dL/dx", &dl_dx, engine(&xt)),
    ];
    println!("Gradients: by hand vs by the engine");
    println!("  {:<6} {:>5}  {:>14} {:>14} {:>10}", "grad", "entry", "by hand", "engine", "|diff|");
    let mut max_grad_diff: f64 = 0.0;
    for (name, hand, eng) in &compare {
        for (i, (h, e)) in hand.iter().zip(eng).enumerate() {
            let diff = (h - e).abs();
            max_grad_diff = max_grad_diff.max(diff);
            let entry = if hand.len() == 4 { format!("{},{}", i / 2, i % 2) } else { i.to_string() };
            println!("  {name:<6} {entry:>5}  {h:>14.9} {e:>14.9} {diff:>10.1e}");
        }
    }
    assert!(max_grad_diff < 1e-12, "hand-derived and engine gradients disagree by {max_grad_diff:e}");
    println!("\nAll gradients agree (largest difference {max_grad_diff:.1e}).");

    Report { y: yt.to_vec::<f64>(), max_grad_diff, graph }
}
