//! 10: looking inside. A small MLP written with raw tensors, then its autograd graph (printed as a tree and
//! exported as Graphviz DOT, rendered to SVG when `dot` is installed), and a profile of a few training steps:
//! a table per op like `torch.profiler`'s `key_averages().table()`, a Chrome trace for Perfetto, and the
//! tensor memory counters.
//!
//! Run: `cargo run --release --example 10_graph_and_profile [output dir]` (default `target/graph_and_profile`).
//!
//! Expected: the tree starts at `neg [] float32` (the NLL loss) and reaches the four named parameters; the
//! files `mlp_loss.dot` (and `mlp_loss.svg`), `trace.json` are written; the table lists `matmul` near the
//! top with 2 forward and 2 backward calls per step, and the loss falls from about 2.4.

use std::path::PathBuf;
use std::process::Command;
use tensorgrad::{profile, Tensor};

const BATCH: usize = 64;
const IN: usize = 20;
const HIDDEN: usize = 32;
const CLASSES: usize = 10;
const STEPS: usize = 20;

/// A two-layer perceptron's parameters, named as `torch.nn.Sequential(Linear, ReLU, Linear)` names them.
struct Mlp {
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
}

impl Mlp {
    fn new() -> Mlp {
        let init =
            |shape: &[usize], fan_in: usize| (Tensor::randn(shape) * (1.0 / fan_in as f64).sqrt()).requires_grad_();
        Mlp {
            w1: init(&[HIDDEN, IN], IN),
            b1: Tensor::zeros(&[HIDDEN]).requires_grad_(),
            w2: init(&[CLASSES, HIDDEN], HIDDEN),
            b2: Tensor::zeros(&[CLASSES]).requires_grad_(),
        }
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        [("0.weight", &self.w1), ("0.bias", &self.b1), ("2.weight", &self.w2), ("2.bias", &self.b2)]
            .into_iter()
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect()
    }

    /// Mean negative log-likelihood of `labels` (i64, `[batch]`) under the MLP's log-softmax over `x`.
    fn loss(&self, x: &Tensor, labels: &Tensor) -> Tensor {
        let hidden = (x.matmul(&self.w1.t()) + &self.b1).relu();
        let logits = hidden.matmul(&self.w2.t()) + &self.b2;
        let log_probs = logits.log_softmax(-1);
        -log_probs.gather(1, &labels.unsqueeze(1)).mean()
    }

    fn sgd_step(&self, lr: f64) {
        tensorgrad::no_grad(|| {
            for (_, p) in self.named_parameters() {
                let step = p.grad().expect("every parameter gets a gradient") * -lr;
                p.add_assign_unrecorded(&step);
                p.set_grad(None);
            }
        });
    }
}

fn main() -> std::io::Result<()> {
    let out_dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "target/graph_and_profile".into()));
    std::fs::create_dir_all(&out_dir)?;
    tensorgrad::manual_seed(0);
    let model = Mlp::new();
    let x = Tensor::randn(&[BATCH, IN]);
    let labels = Tensor::randint(0, CLASSES as i64, &[BATCH]);

    // 1. The graph of one loss: a tree on stdout, DOT (and SVG) on disk.
    let loss = model.loss(&x, &labels);
    println!("== autograd graph of the loss ==");
    print!("{}", profile::graph_tree(&loss, &model.named_parameters()));
    let dot_path = out_dir.join("mlp_loss.dot");
    std::fs::write(&dot_path, profile::to_dot(&loss, &model.named_parameters()))?;
    println!("\nwrote {}", dot_path.display());
    let svg_path = out_dir.join("mlp_loss.svg");
    match Command::new("dot").arg("-Tsvg").arg(&dot_path).arg("-o").arg(&svg_path).status() {
        Ok(status) if status.success() => println!("rendered {}", svg_path.display()),
        Ok(status) => println!("`dot` failed ({status}); the DOT file is still there"),
        Err(_) => println!("graphviz `dot` not found: install graphviz to render {}", dot_path.display()),
    }
    drop(loss);

    // 2. A profile of a few training steps.
    profile::reset_peak();
    let profiler = profile::Profiler::start();
    let mut losses = Vec::new();
    for _ in 0..STEPS {
        let loss = model.loss(&x, &labels);
        loss.backward();
        model.sgd_step(0.5);
        losses.push(loss.item());
    }
    let report = profiler.stop();
    println!("\n== loss: {:.4} -> {:.4} over {STEPS} steps ==", losses[0], losses[STEPS - 1]);
    println!("\n== profile of {STEPS} training steps, per op ==");
    print!("{}", report.table());
    println!("\n== per call site (top 8) ==");
    let by_site = report.table_by_call_site();
    for line in by_site.lines().take(11) {
        println!("{line}");
    }
    let trace_path = out_dir.join("trace.json");
    report.write_chrome_trace(&trace_path)?;
    println!("\nwrote {} (open it in https://ui.perfetto.dev)", trace_path.display());
    let mem = profile::memory_stats();
    println!("tensor memory now: live {} bytes, peak {} bytes during training", mem.live_bytes, mem.peak_bytes);
    Ok(())
}
