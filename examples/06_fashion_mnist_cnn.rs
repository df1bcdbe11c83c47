//! # 06 · Fashion-MNIST with a small convolutional network
//!
//! ```text
//! cargo run --release --example 06_fashion_mnist_cnn
//! cargo run --release --example 06_fashion_mnist_cnn -- --optimizer sgd --lr 0.05   # SGD with momentum 0.9
//! cargo run --release --example 06_fashion_mnist_cnn -- --help
//! ```
//!
//! What it shows: convolutions, batch normalisation, max-pooling and dropout in an `nn::Sequential`, and the
//! difference between training mode (batch statistics, dropout on) and evaluation mode (running statistics,
//! dropout off), which `evaluate` switches with `model.eval()`.
//!
//! ```text
//! x [B, 1, 28, 28]
//!   Conv2d(1, 32, 3x3, padding 1)  -> BatchNorm2d(32) -> ReLU -> MaxPool2d(2)   [B, 32, 14, 14]
//!   Conv2d(32, 64, 3x3, padding 1) -> BatchNorm2d(64) -> ReLU -> MaxPool2d(2)   [B, 64, 7, 7]
//!   Flatten -> Dropout(0.25) -> Linear(3136, 10)                                [B, 10] logits
//! loss = cross_entropy(logits, labels); Adam (default) or SGD with momentum (--optimizer sgd)
//! ```
//!
//! 50,378 parameters. Data as in example 05 (`--data DIR`, else the system copy, else the shipped subset; the
//! source is printed). It prints a progress bar per epoch (on a terminal) and a plain line per epoch with the
//! training loss and accuracy, test loss and accuracy and samples/s, then a summary; the run directory
//! (`--run-dir`, default `runs/06_fashion_mnist_cnn/`) gets `checkpoint.safetensors` after each epoch (model
//! with BatchNorm's running statistics, optimizer state, epoch/step/seed; `--resume` continues from it),
//! `loss.svg`, `accuracy.svg` and `metrics.csv`.
//!
//! Expected result: about 0.86-0.88 test accuracy on the shipped subset after 3 epochs, and 0.92 or more on the
//! full 60,000 / 10,000 set after about 10 epochs (the Fashion-MNIST benchmark lists 2 Conv under 100K
//! parameters at 0.925).
//!
//! Measured on 2026-11-21 (2 cores): on the full set, with the fused BatchNorm2d, 0.9195 test accuracy after
//! 10 epochs, 0.9204 after 11 and 0.9233 after 12 (`--epochs 12`, defaults; the composed BatchNorm it replaced
//! gave 0.9201 / 0.9220 / 0.9217). Speed against PyTorch on the same network, optimizer and
//! batch, side by side (`chrt -f 10 python3 benches/cnn_epoch_torch.py --steps 30 --rounds 2`, 2026-11-21,
//! load 4-5): 15.1 s per 60,000-image epoch for tensorgrad, 32.9 s for PyTorch on 1 thread and 33.0 s on 2
//! (an earlier run: 16.1 s against 34.9 / 25.8). BatchNorm2d is one fused node with its own kernels; the
//! GEMM tiles, im2col and zero-filled output buffers are what remains.

use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use tensorgrad::data::fashion_mnist::{FashionMnist, NUM_CLASSES};
use tensorgrad::data::{DataLoader, ImageDataset, PixelScaling};
use tensorgrad::io::{load_into, Checkpoint};
use tensorgrad::nn::loss::{cross_entropy, Reduction};
use tensorgrad::nn::{BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential};
use tensorgrad::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use tensorgrad::DType;
use tensorgrad::Tensor;

/// Which optimizer to train with.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimizerKind {
    /// Adam (betas 0.9, 0.999).
    Adam,
    /// SGD with momentum (`--momentum`).
    Sgd,
}

/// Train a small CNN (two conv layers with batch norm, pooling and dropout) on Fashion-MNIST.
#[derive(Parser, Debug, Clone)]
#[command(name = "06_fashion_mnist_cnn", about, long_about = None)]
pub struct Config {
    /// Epochs to train (in total, counting epochs done before a `--resume`).
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Stop each epoch after this many optimizer steps (for quick runs; default: the whole training set).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Mini-batch size.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Learning rate (try 0.05 with `--optimizer sgd`).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// The optimizer.
    #[arg(long, value_enum, default_value_t = OptimizerKind::Adam)]
    pub optimizer: OptimizerKind,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// Seed for the initialisation and the shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Directory with the four Fashion-MNIST IDX files (default: the system copy, else the shipped subset).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Use only the first N training images.
    #[arg(long)]
    pub train_samples: Option<usize>,
    /// Use only the first N test images.
    #[arg(long)]
    pub test_samples: Option<usize>,
    /// Where to write checkpoints, curves and metrics [default: runs/06_fashion_mnist_cnn].
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Continue from the checkpoint in the run directory.
    #[arg(long)]
    pub resume: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config::parse_from(["06_fashion_mnist_cnn"])
    }
}

/// One epoch's numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochStats {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Training accuracy over the epoch (measured on the fly, in training mode).
    pub train_acc: f64,
    /// Mean test loss.
    pub test_loss: f64,
    /// Test accuracy.
    pub test_acc: f64,
    /// Training samples per second.
    pub samples_per_sec: f64,
    /// Wall time of the epoch (training and evaluation), seconds.
    pub seconds: f64,
}

/// What a run did, for the summary and the smoke test.
#[derive(Debug, Clone)]
pub struct Report {
    /// The data source in words (e.g. "the subset shipped in data/").
    pub data_source: String,
    /// Number of trainable parameters.
    pub num_parameters: usize,
    /// The epoch the run resumed after (`None` for a fresh run).
    pub resumed_from: Option<usize>,
    /// Epochs trained by this call (not those before a resume).
    pub epochs: Vec<EpochStats>,
    /// Training loss of every optimizer step of this call.
    pub step_losses: Vec<f64>,
    /// Loss on a fixed batch (the first training images) before and after this call's training.
    pub probe_loss: (f64, f64),
    /// The checkpoint written after the last epoch.
    pub checkpoint: PathBuf,
    /// The curves written into the run directory.
    pub plots: Vec<PathBuf>,
}

fn main() {
    if let Err(e) = run_with(Config::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// A 3x3 convolution with padding 1 (keeps the height and width).
fn conv3x3(in_channels: usize, out_channels: usize) -> Conv2d {
    Conv2d::with_options(in_channels, out_channels, (3, 3), (1, 1), (1, 1), (1, 1), 1, true, DType::F32)
}

/// The network (see the header): two conv blocks, then dropout and a linear classifier.
pub fn build_model() -> Sequential {
    Sequential::new()
        .add(conv3x3(1, 32))
        .add(BatchNorm2d::new(32))
        .add(ReLU::new())
        .add(MaxPool2d::new((2, 2)))
        .add(conv3x3(32, 64))
        .add(BatchNorm2d::new(64))
        .add(ReLU::new())
        .add(MaxPool2d::new((2, 2)))
        .add(Flatten::new(1, -1))
        .add(Dropout::new(0.25))
        .add(Linear::new(64 * 7 * 7, NUM_CLASSES))
}

/// Trains as `config` says, printing as it goes.
///
/// # Errors
/// If the data cannot be read, or a checkpoint or plot cannot be written or read back.
pub fn run_with(config: Config) -> Result<Report, Box<dyn Error>> {
    let run_dir = config.run_dir.clone().unwrap_or_else(|| PathBuf::from("runs/06_fashion_mnist_cnn"));
    std::fs::create_dir_all(&run_dir)?;
    let (mut data, dir, source) = FashionMnist::locate_and_load(config.data.as_deref())?;
    println!(
        "Fashion-MNIST: {source} ({}): {} training / {} test images",
        dir.display(),
        data.train.len(),
        data.test.len()
    );
    if let Some(n) = config.train_samples {
        data.train = data.train.truncated(n);
    }
    if let Some(n) = config.test_samples {
        data.test = data.test.truncated(n);
    }

    tensorgrad::manual_seed(config.seed);
    let model = build_model();
    println!("model: {} ({} parameters)", model.describe(), model.num_parameters());
    let mut opt: Box<dyn Optimizer> = match config.optimizer {
        OptimizerKind::Adam => {
            Box::new(Adam::new(model.parameters(), AdamConfig { lr: config.lr, ..AdamConfig::default() }))
        }
        OptimizerKind::Sgd => Box::new(Sgd::new(
            model.parameters(),
            SgdConfig { lr: config.lr, momentum: config.momentum, ..SgdConfig::default() },
        )),
    };

    // Resume: model weights, Adam's moments and step counts, the epoch counter and the history for the plots.
    let ckpt_path = run_dir.join("checkpoint.safetensors");
    let mut history: Vec<EpochStats> = Vec::new();
    let mut start_epoch = 0;
    let mut global_step = 0u64;
    let mut resumed_from = None;
    if config.resume {
        let ck = Checkpoint::load(&ckpt_path)?;
        load_into(&model.state_dict(), &ck.model, true)?;
        if let Some(sd) = &ck.optimizer {
            opt.load_state_dict(sd)?;
        }
        start_epoch = ck.epoch as usize;
        global_step = ck.step;
        history = ck.extra.get("history").map(|h| parse_history(h.as_str())).unwrap_or_default();
        resumed_from = Some(start_epoch);
        println!("resumed from {} (epoch {start_epoch}, step {global_step})", ckpt_path.display());
    }

    let train_set = ImageDataset::new(data.train.clone(), PixelScaling::Standardize);
    let test_set = ImageDataset::new(data.test.clone(), PixelScaling::Standardize);
    let loader = DataLoader::new(train_set, config.batch_size).shuffle(true).seed(config.seed);
    let test_loader = DataLoader::new(test_set, 500);
    let probe_n = data.train.len().min(256);
    let probe = DataLoader::new(ImageDataset::new(data.train.truncated(probe_n), PixelScaling::Standardize), probe_n);
    let probe_loss = || evaluate(&model, &probe).0;
    let probe_before = probe_loss();

    let batches_per_epoch = config.steps.map_or(loader.num_batches(), |s| s.min(loader.num_batches()));
    let mut step_losses = Vec::new();
    let mut this_run = Vec::new();
    for epoch in start_epoch..config.epochs {
        let t0 = Instant::now();
        let bar = progress_bar(batches_per_epoch as u64, &format!("epoch {}/{}", epoch + 1, config.epochs));
        model.train();
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
        for batch in loader.epoch(epoch).take(batches_per_epoch) {
            let (x, y) = batch.into_tensors();
            let logits = model.forward(&x);
            let loss = cross_entropy(&logits, &y, None, -100, Reduction::Mean, 0.0);
            opt.zero_grad();
            loss.backward();
            opt.step();
            global_step += 1;

            let l = loss.item();
            step_losses.push(l);
            loss_sum += l * y.numel() as f64;
            correct += count_correct(&logits, &y);
            seen += y.numel();
            bar.inc(1);
            let rate = seen as f64 / t0.elapsed().as_secs_f64();
            bar.set_message(format!("loss {l:.4} acc {:.4} {rate:.0} samples/s", correct as f64 / seen as f64));
        }
        let train_seconds = t0.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let (test_loss, test_acc) = evaluate(&model, &test_loader);
        let stats = EpochStats {
            epoch: epoch + 1,
            train_loss: loss_sum / seen.max(1) as f64,
            train_acc: correct as f64 / seen.max(1) as f64,
            test_loss,
            test_acc,
            samples_per_sec: seen as f64 / train_seconds,
            seconds: t0.elapsed().as_secs_f64(),
        };
        println!(
            "epoch {:>2}/{}: train loss {:.4} acc {:.4} | test loss {:.4} acc {:.4} | {:.0} samples/s, {:.1} s",
            stats.epoch,
            config.epochs,
            stats.train_loss,
            stats.train_acc,
            stats.test_loss,
            stats.test_acc,
            stats.samples_per_sec,
            stats.seconds
        );
        history.push(stats);
        this_run.push(stats);

        let mut ck = Checkpoint {
            model: model.state_dict(),
            optimizer: Some(opt.state_dict()),
            epoch: (epoch + 1) as u64,
            step: global_step,
            seed: config.seed,
            ..Checkpoint::default()
        };
        ck.extra.insert("history".into(), format_history(&history));
        ck.extra.insert("optimizer".into(), format!("{:?}", config.optimizer));
        ck.save(&ckpt_path)?;
    }
    let plots = write_curves(&run_dir, &history)?;
    let probe_after = probe_loss();

    println!("summary:");
    println!("  data           {source}, {} training / {} test images", data.train.len(), data.test.len());
    println!("  model          {} parameters, {:?} lr {}", model.num_parameters(), config.optimizer, config.lr);
    if let Some(last) = history.last() {
        let best = history.iter().map(|s| s.test_acc).fold(0.0, f64::max);
        let secs: f64 = history.iter().map(|s| s.seconds).sum();
        println!("  epochs         {} ({global_step} steps of batch {})", last.epoch, config.batch_size);
        println!("  test accuracy  {:.4} (best {best:.4})", last.test_acc);
        println!("  wall time      {secs:.1} s training and evaluation");
    }
    println!("  run directory  {} (checkpoint.safetensors, loss.svg, accuracy.svg, metrics.csv)", run_dir.display());

    Ok(Report {
        data_source: source.to_string(),
        num_parameters: model.num_parameters(),
        resumed_from,
        epochs: this_run,
        step_losses,
        probe_loss: (probe_before, probe_after),
        checkpoint: ckpt_path,
        plots,
    })
}

/// Mean loss and accuracy over a loader, in evaluation mode without recording a graph.
fn evaluate<D: tensorgrad::data::Dataset + 'static>(model: &Sequential, loader: &DataLoader<D>) -> (f64, f64) {
    let was_training = model.is_training();
    model.eval();
    let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
    tensorgrad::no_grad(|| {
        for batch in loader.epoch(0) {
            let (x, y) = batch.into_tensors();
            let logits = model.forward(&x);
            loss_sum += cross_entropy(&logits, &y, None, -100, Reduction::Sum, 0.0).item();
            correct += count_correct(&logits, &y);
            seen += y.numel();
        }
    });
    model.set_training(was_training);
    (loss_sum / seen.max(1) as f64, correct as f64 / seen.max(1) as f64)
}

/// How many rows of `logits [B, C]` have their largest value at the label in `y [B]`.
fn count_correct(logits: &Tensor, y: &Tensor) -> usize {
    let pred = logits.detach().argmax(Some(1), false).to_vec::<i64>();
    pred.iter().zip(y.to_vec::<i64>()).filter(|(p, t)| **p == *t).count()
}

/// A bar with the message on the right; indicatif draws nothing when stderr is not a terminal (CI, pipes).
fn progress_bar(len: u64, prefix: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}").expect("valid template");
    bar.set_style(style.progress_chars("=> "));
    bar.set_prefix(prefix.to_string());
    bar
}

const CSV_HEADER: &str = "epoch,train_loss,train_acc,test_loss,test_acc,samples_per_sec,seconds";

fn format_history(history: &[EpochStats]) -> String {
    let mut s = String::from(CSV_HEADER);
    for h in history {
        let _ = write!(
            s,
            "\n{},{},{},{},{},{},{}",
            h.epoch, h.train_loss, h.train_acc, h.test_loss, h.test_acc, h.samples_per_sec, h.seconds
        );
    }
    s
}

fn parse_history(text: &str) -> Vec<EpochStats> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let v: Vec<f64> = line.split(',').map(|x| x.parse().ok()).collect::<Option<_>>()?;
            let [epoch, train_loss, train_acc, test_loss, test_acc, samples_per_sec, seconds] = v[..] else {
                return None;
            };
            Some(EpochStats {
                epoch: epoch as usize,
                train_loss,
                train_acc,
                test_loss,
                test_acc,
                samples_per_sec,
                seconds,
            })
        })
        .collect()
}

/// Writes `metrics.csv`, `loss.svg` and `accuracy.svg` into `dir`; returns the SVG paths.
fn write_curves(dir: &Path, history: &[EpochStats]) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    std::fs::write(dir.join("metrics.csv"), format_history(history) + "\n")?;
    let series = |f: fn(&EpochStats) -> f64| history.iter().map(|h| (h.epoch as f64, f(h))).collect::<Vec<_>>();
    let loss = dir.join("loss.svg");
    plot_svg(
        &loss,
        "cross-entropy loss",
        "epoch",
        &[("train", series(|h| h.train_loss)), ("test", series(|h| h.test_loss))],
    )?;
    let acc = dir.join("accuracy.svg");
    plot_svg(&acc, "accuracy", "epoch", &[("train", series(|h| h.train_acc)), ("test", series(|h| h.test_acc))])?;
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
