//! # 07 · A character-level LSTM language model on Shakespeare
//!
//! ```text
//! cargo run --release --example 07_char_lstm                      # data/shakespeare.txt
//! cargo run --release --example 07_char_lstm -- --text FILE       # any UTF-8 text
//! cargo run --release --example 07_char_lstm -- --minutes 5       # a wall-clock budget instead of --steps
//! cargo run --release --example 07_char_lstm -- --help
//! ```
//!
//! What it shows: a recurrent language model that reads text one character at a time and predicts the next.
//! The text's characters are the vocabulary (V = 78 for the shipped plays); the last 10% of the text is held
//! out for validation.
//!
//! ```text
//! ids [B, T] -> Embedding(V, 64) [B, T, 64] -> LSTM(64, 256, batch_first) [B, T, 256] -> Linear(256, V)
//! logits [B, T, V];  loss = cross_entropy(logits [B*T, V], next ids [B*T])   (nats per character)
//! AdamW lr 2e-3, gradient norm clipped to 1.0, batches of 32 random windows of 64 characters
//! ```
//!
//! It prints a progress bar (on a terminal) and, every `--eval-every` steps, a plain line with the mean training
//! loss since the last evaluation, the validation loss and next-character accuracy, and the throughput, then a
//! sample of generated text (`--temperature`, `--top-k`). The run directory (`--run-dir`, default
//! `runs/07_char_lstm/`) gets `checkpoint.safetensors` at each evaluation (model, AdamW state, step, seed;
//! `--resume` continues from it), `loss.svg`, `accuracy.svg` and `metrics.csv`.
//!
//! The defaults are the setup of the PyTorch comparison: embedding 64, hidden 256, batches of 32 x 64
//! characters, AdamW 2e-3, clip 1.0, validation = the last 10% of `data/shakespeare.txt` (the first 1.1 MB of
//! the plays in alphabetical file order). `--minutes M` trains for M minutes of training time (evaluation,
//! sampling and checkpoints not counted) instead of `--steps`, then evaluates on the whole validation part
//! and prints the final validation loss.
//!
//! Expected result: the loss starts at ln(78) = 4.36 nats/char; samples go from random characters to words,
//! names in capitals and line breaks within a few hundred steps. PyTorch on this machine reaches a validation
//! loss of about 1.62 after about 4,000 steps (5 minutes).
//!
//! Measured on 2026-11-21 on the quiet 2-core machine, `--minutes 5 --eval-every 1000`: validation loss 1.585
//! nats/char after 9,147 steps (300 s of training steps).

use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tensorgrad::data::CharText;
use tensorgrad::io::{load_into, Checkpoint};
use tensorgrad::nn::loss::{cross_entropy, Reduction};
use tensorgrad::nn::{prefixed, Embedding, Linear, Lstm, Module, RnnOptions};
use tensorgrad::optim::{clip_grad_norm_, Adam, Optimizer};
use tensorgrad::Tensor;

/// Train a character-level LSTM language model and sample from it.
#[derive(Parser, Debug, Clone)]
#[command(name = "07_char_lstm", about, long_about = None)]
pub struct Config {
    /// Optimizer steps in total (counting steps done before a `--resume`); ignored with `--minutes`.
    #[arg(long, default_value_t = 2000)]
    pub steps: usize,
    /// Train for this many minutes of training time (evaluations not counted) instead of `--steps`, then
    /// evaluate on the whole validation part.
    #[arg(long)]
    pub minutes: Option<f64>,
    /// Windows per batch.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Characters per window (truncated backpropagation length).
    #[arg(long, default_value_t = 64)]
    pub seq_len: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f64,
    /// Maximum gradient norm.
    #[arg(long, default_value_t = 1.0)]
    pub clip: f64,
    /// Seed for the initialisation, the batches and the sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The text to train on [default: data/shakespeare.txt].
    #[arg(long)]
    pub text: Option<PathBuf>,
    /// Evaluate, checkpoint and sample every N steps.
    #[arg(long, default_value_t = 250)]
    pub eval_every: usize,
    /// Validation batches per evaluation (default: the whole validation part).
    #[arg(long)]
    pub eval_batches: Option<usize>,
    /// Characters to generate per sample.
    #[arg(long, default_value_t = 300)]
    pub sample_len: usize,
    /// Sampling temperature (lower: more conservative).
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f64,
    /// Sample only among the k most likely characters (0: all).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Where to write checkpoints, curves and metrics [default: runs/07_char_lstm].
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Continue from the checkpoint in the run directory.
    #[arg(long)]
    pub resume: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config::parse_from(["07_char_lstm"])
    }
}

/// One evaluation's numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalStats {
    /// Steps done.
    pub step: usize,
    /// Mean training loss since the previous evaluation (nats/char).
    pub train_loss: f64,
    /// Validation loss (nats/char).
    pub val_loss: f64,
    /// Validation next-character accuracy.
    pub val_acc: f64,
    /// Training characters per second since the previous evaluation.
    pub chars_per_sec: f64,
    /// Wall time since the start of this call, seconds.
    pub seconds: f64,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Report {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Trainable parameters.
    pub num_parameters: usize,
    /// The step the run resumed after (`None` for a fresh run).
    pub resumed_from: Option<usize>,
    /// Evaluations of this call.
    pub evals: Vec<EvalStats>,
    /// Training loss of every step of this call.
    pub step_losses: Vec<f64>,
    /// Loss on a fixed batch before and after this call's training.
    pub probe_loss: (f64, f64),
    /// The last generated sample.
    pub sample: String,
    /// The checkpoint file.
    pub checkpoint: PathBuf,
    /// The curves.
    pub plots: Vec<PathBuf>,
}

/// Embedding, one LSTM layer, and a linear read-out to the vocabulary.
pub struct CharLstm {
    embed: Embedding,
    lstm: Lstm,
    head: Linear,
}

impl CharLstm {
    /// A model for `vocab` characters.
    pub fn new(vocab: usize) -> CharLstm {
        CharLstm {
            embed: Embedding::new(vocab, 64),
            lstm: Lstm::with_options(RnnOptions::new(64, 256).batch_first(true)),
            head: Linear::new(256, vocab),
        }
    }
}

impl Module for CharLstm {
    /// ids `[B, T]` (i64) -> logits `[B, T, V]`.
    fn forward(&self, ids: &Tensor) -> Tensor {
        self.head.forward(&self.lstm.forward(&self.embed.forward(ids)))
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = prefixed("embed", self.embed.named_parameters());
        p.extend(prefixed("lstm", self.lstm.named_parameters()));
        p.extend(prefixed("head", self.head.named_parameters()));
        p
    }

    fn describe(&self) -> String {
        "CharLstm(Embedding(V, 64), LSTM(64, 256), Linear(256, V))".into()
    }
}

fn main() {
    if let Err(e) = run_with(Config::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// The default text: the plays shipped in `data/`.
pub fn default_text() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data").join("shakespeare.txt")
}

/// Trains as `config` says, printing as it goes.
///
/// # Errors
/// If the text cannot be read or is too short, or a checkpoint or plot cannot be written or read back.
pub fn run_with(config: Config) -> Result<Report, Box<dyn Error>> {
    let run_dir = config.run_dir.clone().unwrap_or_else(|| PathBuf::from("runs/07_char_lstm"));
    std::fs::create_dir_all(&run_dir)?;
    let text_path = config.text.clone().unwrap_or_else(default_text);
    let text = CharText::from_file(&text_path)?;
    text.check_block_size(config.seq_len)?;
    let vocab = text.vocab().len();
    println!(
        "text: {} ({} characters, vocabulary {vocab}; {} for training, the last {} for validation)",
        text_path.display(),
        text.tokens().len(),
        text.train().len(),
        text.val().len()
    );

    tensorgrad::manual_seed(config.seed);
    let model = CharLstm::new(vocab);
    println!("model: {} ({} parameters)", model.describe(), model.num_parameters());
    let mut opt = Adam::adamw(model.parameters(), config.lr);

    let ckpt_path = run_dir.join("checkpoint.safetensors");
    let (mut start, mut history, mut resumed_from) = (0, Vec::new(), None);
    if config.resume {
        let ck = Checkpoint::load(&ckpt_path)?;
        load_into(&model.state_dict(), &ck.model, true)?;
        if let Some(sd) = &ck.optimizer {
            opt.load_state_dict(sd)?;
        }
        start = ck.step as usize;
        history = ck.extra.get("history").map(|h| parse_history(h.as_str())).unwrap_or_default();
        resumed_from = Some(start);
        println!("resumed from {} (step {start})", ckpt_path.display());
    }

    // Batches are drawn from a generator seeded by (seed, first step), so a resumed run is reproducible too.
    let mut rng = StdRng::seed_from_u64(config.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ start as u64);
    let probe = text.train_batch(&mut StdRng::seed_from_u64(config.seed ^ 0xABCD), config.batch_size, config.seq_len);
    let probe_loss =
        || tensorgrad::no_grad(|| lm_loss(&model.forward(&probe.inputs_tensor()), &probe.targets_tensor()).item());
    let probe_before = probe_loss();

    let budget = config.minutes.map(|m| std::time::Duration::from_secs_f64(m.max(0.0) * 60.0));
    let last_step = if budget.is_some() { usize::MAX } else { config.steps };
    let bar = progress_bar(budget.is_none().then(|| config.steps.saturating_sub(start) as u64));
    let t_run = Instant::now();
    let mut train_time = std::time::Duration::ZERO;
    let (mut t_window, mut window_loss, mut window_steps) = (Instant::now(), 0.0, 0usize);
    let mut step_losses = Vec::new();
    let mut evals = Vec::new();
    let mut sample = String::new();
    for step in start..last_step {
        let t_step = Instant::now();
        let batch = text.train_batch(&mut rng, config.batch_size, config.seq_len);
        let logits = model.forward(&batch.inputs_tensor());
        let loss = lm_loss(&logits, &batch.targets_tensor());
        opt.zero_grad();
        loss.backward();
        clip_grad_norm_(&model.parameters(), config.clip, 2.0);
        opt.step();

        let l = loss.item();
        train_time += t_step.elapsed();
        step_losses.push(l);
        window_loss += l;
        window_steps += 1;
        let chars_per_sec =
            (window_steps * config.batch_size * config.seq_len) as f64 / t_window.elapsed().as_secs_f64();
        bar.inc(1);
        bar.set_message(format!("loss {l:.3} {chars_per_sec:.0} chars/s"));

        let done = step + 1;
        let out_of_time = budget.is_some_and(|b| train_time >= b);
        if done % config.eval_every == 0 || done == last_step || out_of_time {
            let eval_batches = if out_of_time { None } else { config.eval_batches };
            let (val_loss, val_acc) = evaluate(&model, &text, config.batch_size, config.seq_len, eval_batches);
            let stats = EvalStats {
                step: done,
                train_loss: window_loss / window_steps as f64,
                val_loss,
                val_acc,
                chars_per_sec,
                seconds: t_run.elapsed().as_secs_f64(),
            };
            sample =
                generate(&model, &text, &mut rng, config.sample_len, config.seq_len, config.temperature, config.top_k);
            bar.suspend(|| {
                let of = if budget.is_some() { String::new() } else { format!("/{}", config.steps) };
                println!(
                    "step {done:>5}{of}: train loss {:.4} | val loss {val_loss:.4} acc {val_acc:.4} | {chars_per_sec:.0} chars/s, {:.0} s",
                    stats.train_loss, stats.seconds
                );
                println!("--- sample (temperature {}) ---\n{sample}\n---", config.temperature);
            });
            history.push(stats);
            evals.push(stats);
            (t_window, window_loss, window_steps) = (Instant::now(), 0.0, 0);

            let mut ck = Checkpoint {
                model: model.state_dict(),
                optimizer: Some(opt.state_dict()),
                epoch: 0,
                step: done as u64,
                seed: config.seed,
                ..Checkpoint::default()
            };
            ck.extra.insert("history".into(), format_history(&history));
            ck.extra.insert("text".into(), text_path.display().to_string());
            ck.save(&ckpt_path)?;
            if out_of_time {
                break;
            }
        }
    }
    bar.finish_and_clear();
    let plots = write_curves(&run_dir, &history)?;
    let probe_after = probe_loss();

    println!("summary:");
    println!("  text           {} (vocabulary {vocab})", text_path.display());
    println!("  model          {} parameters, AdamW lr {}, clip {}", model.num_parameters(), config.lr, config.clip);
    if let Some(last) = history.last() {
        let best = history.iter().map(|s| s.val_loss).fold(f64::INFINITY, f64::min);
        println!("  steps          {} (batch {} x {} characters)", last.step, config.batch_size, config.seq_len);
        println!("  val loss       {:.4} nats/char (best {best:.4}), accuracy {:.4}", last.val_loss, last.val_acc);
        println!(
            "  wall time      {:.1} s in this run ({:.1} s of training steps)",
            t_run.elapsed().as_secs_f64(),
            train_time.as_secs_f64()
        );
        println!("  final val loss {:.4} nats/char", last.val_loss);
    }
    println!("  run directory  {} (checkpoint.safetensors, loss.svg, accuracy.svg, metrics.csv)", run_dir.display());

    Ok(Report {
        vocab_size: vocab,
        num_parameters: model.num_parameters(),
        resumed_from,
        evals,
        step_losses,
        probe_loss: (probe_before, probe_after),
        sample,
        checkpoint: ckpt_path,
        plots,
    })
}

/// Mean cross-entropy of `logits [B, T, V]` against `targets [B, T]`.
fn lm_loss(logits: &Tensor, targets: &Tensor) -> Tensor {
    let v = logits.size(-1) as isize;
    cross_entropy(&logits.reshape([-1, v]), &targets.reshape([-1]), None, -100, Reduction::Mean, 0.0)
}

/// Validation loss and next-character accuracy over consecutive windows of the held-out text.
fn evaluate(
    model: &dyn Module,
    text: &CharText,
    batch_size: usize,
    seq_len: usize,
    limit: Option<usize>,
) -> (f64, f64) {
    let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
    tensorgrad::no_grad(|| {
        for batch in text.val_batches(batch_size, seq_len).take(limit.unwrap_or(usize::MAX)) {
            let logits = model.forward(&batch.inputs_tensor());
            let v = logits.size(-1) as isize;
            let flat = logits.reshape([-1, v]);
            let targets = batch.targets_tensor().reshape([-1]);
            loss_sum += cross_entropy(&flat, &targets, None, -100, Reduction::Sum, 0.0).item();
            let pred = flat.argmax(Some(1), false).to_vec::<i64>();
            correct += pred.iter().zip(targets.to_vec::<i64>()).filter(|(p, t)| **p == *t).count();
            seen += batch.targets.len();
        }
    });
    (loss_sum / seen.max(1) as f64, correct as f64 / seen.max(1) as f64)
}

/// Generates `len` characters after a newline: each step runs the model on the last `context` characters and
/// samples the next one from softmax(logits / temperature), restricted to the `top_k` most likely (0: all).
fn generate(
    model: &dyn Module,
    text: &CharText,
    rng: &mut StdRng,
    len: usize,
    context: usize,
    temperature: f64,
    top_k: usize,
) -> String {
    let vocab = text.vocab();
    let mut ids: Vec<usize> = vec![vocab.id('\n').unwrap_or(0)];
    tensorgrad::no_grad(|| {
        for _ in 0..len {
            let window = &ids[ids.len().saturating_sub(context)..];
            let input = Tensor::from_vec(window.iter().map(|&i| i as i64).collect::<Vec<_>>(), &[1, window.len()]);
            let logits = model.forward(&input).narrow(1, window.len() - 1, 1).reshape([-1]).to_vec_f64();
            ids.push(sample_from_logits(&logits, temperature, top_k, rng));
        }
    });
    vocab.decode(&ids[1..])
}

/// Draws an index from softmax(logits / temperature) over the `top_k` largest logits (all when 0).
fn sample_from_logits(logits: &[f64], temperature: f64, top_k: usize, rng: &mut StdRng) -> usize {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    if top_k > 0 {
        order.truncate(top_k);
    }
    let t = temperature.max(1e-6);
    let max = logits[order[0]];
    let weights: Vec<f64> = order.iter().map(|&i| ((logits[i] - max) / t).exp()).collect();
    let mut r = rng.random::<f64>() * weights.iter().sum::<f64>();
    for (&i, w) in order.iter().zip(&weights) {
        r -= w;
        if r <= 0.0 {
            return i;
        }
    }
    order[order.len() - 1]
}

/// A bar over the steps (a step counter when their number is not known); indicatif draws nothing when
/// stderr is not a terminal (CI, pipes).
fn progress_bar(len: Option<u64>) -> ProgressBar {
    let (bar, template) = match len {
        Some(len) => (ProgressBar::new(len), "[{bar:30}] {pos}/{len} {msg}"),
        None => (ProgressBar::no_length(), "step {pos} {msg}"),
    };
    let style = ProgressStyle::with_template(template).expect("valid template");
    bar.set_style(style.progress_chars("=> "));
    bar
}

const CSV_HEADER: &str = "step,train_loss,val_loss,val_acc,chars_per_sec,seconds";

fn format_history(history: &[EvalStats]) -> String {
    let mut s = String::from(CSV_HEADER);
    for h in history {
        let _ =
            write!(s, "\n{},{},{},{},{},{}", h.step, h.train_loss, h.val_loss, h.val_acc, h.chars_per_sec, h.seconds);
    }
    s
}

fn parse_history(text: &str) -> Vec<EvalStats> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let v: Vec<f64> = line.split(',').map(|x| x.parse().ok()).collect::<Option<_>>()?;
            let [step, train_loss, val_loss, val_acc, chars_per_sec, seconds] = v[..] else {
                return None;
            };
            Some(EvalStats { step: step as usize, train_loss, val_loss, val_acc, chars_per_sec, seconds })
        })
        .collect()
}

/// Writes `metrics.csv`, `loss.svg` and `accuracy.svg` into `dir`; returns the SVG paths.
fn write_curves(dir: &Path, history: &[EvalStats]) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    std::fs::write(dir.join("metrics.csv"), format_history(history) + "\n")?;
    let series = |f: fn(&EvalStats) -> f64| history.iter().map(|h| (h.step as f64, f(h))).collect::<Vec<_>>();
    let loss = dir.join("loss.svg");
    plot_svg(
        &loss,
        "cross-entropy (nats/char)",
        "step",
        &[("train", series(|h| h.train_loss)), ("validation", series(|h| h.val_loss))],
    )?;
    let acc = dir.join("accuracy.svg");
    plot_svg(&acc, "validation next-character accuracy", "step", &[("validation", series(|h| h.val_acc))])?;
    Ok(vec![loss, acc])
}

/// Line plot of named `(x, y)` series into an SVG file (plotters' SVG backend writes text as SVG `<text>`
/// elements, so no font files are needed).
fn plot_svg(path: &Path, title: &str, x_desc: &str, series: &[(&str, Vec<(f64, f64)>)]) -> Result<(), Box<dyn Error>> {
    use plotters::prelude::*;
    let err = |e: &dyn std::fmt::Display| format!("plotting {}: {e}", path.display());
    let points = || series.iter().flat_map(|(_, s)| s.iter().copied());
    let (mut x0, mut x1) = points().fold((f64::MAX, f64::MIN), |(a, b), (x, _)| (a.min(x), b.max(x)));
    let (mut y0, mut y1) = points().fold((f64::MAX, f64::MIN), |(a, b), (_, y)| (a.min(y), b.max(y)));
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 - x0 < 1e-9 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.05).max(1e-3);
    (y0, y1) = (y0 - pad, y1 + pad);

    let root = SVGBackend::new(path, (720, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| err(&e))?;
    chart.configure_mesh().x_desc(x_desc).draw().map_err(|e| err(&e))?;
    let colors = [BLUE, RED, GREEN, MAGENTA];
    for (i, (name, s)) in series.iter().enumerate() {
        let color = colors[i % colors.len()];
        chart
            .draw_series(LineSeries::new(s.iter().copied(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        if s.len() == 1 {
            chart.draw_series(s.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(|e| err(&e))?;
        }
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
