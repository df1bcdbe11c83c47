//! The five training-step workloads of `../shared/WORKLOADS.md`, defined exactly as
//! `../shared/reference/torch_ref.py` defines them, so tensorgrad and PyTorch are timed on the same thing.
//!
//! One step ([`Workload::step`]) = zero grads, forward, loss, backward, optimizer step, on a fixed random
//! batch; f32 everywhere. The loss is `cross_entropy(out.reshape(-1, C), y.reshape(-1))` (mean).
//!
//! | id | model | batch / input | optimizer | params |
//! |---|---|---|---|---|
//! | `mlp-seed` | MLP 784-16-16-10, ReLU | x [32, 784] | Adam 1e-3 | 13,002 |
//! | `mlp-wide` | MLP 784-512-512-10, ReLU | x [128, 784] | Adam 1e-3 | 669,706 |
//! | `lenet` | Conv(1,6,5,p2)-ReLU-Pool2-Conv(6,16,5)-ReLU-Pool2-400-120-84-10 | x [64, 1, 28, 28] | SGD 0.01, mom. 0.9 | 61,706 |
//! | `char-lstm` | Embedding(65,64)-LSTM(64->256, batch-first)-Linear(256,65) | tokens [32, 64] | Adam 1e-3 | 350,593 |
//! | `gpt-mini` | tok Emb(65,128) + pos Emb(64,128), 2 pre-LN blocks (MHA 4 heads causal, MLP 128-512-128 GELU), LN, Linear(128,65) | tokens [16, 64] | AdamW 1e-3 | 421,697 |
//!
//! Shared by `benches/train_step.rs`, `examples/bench_workloads.rs` and `tests/workloads_smoke.rs`, each of
//! which includes this file with `#[path = ...] mod workloads;` (the library itself stays free of it).
#![allow(dead_code)]

use tensorgrad::nn::loss::{cross_entropy, Reduction};
use tensorgrad::nn::{
    Conv2d, DecoderBlock, Embedding, LayerNorm, Linear, Lstm, MaxPool2d, Module, ReLU, RnnOptions, Sequential,
};
use tensorgrad::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use tensorgrad::{DType, Tensor};

/// The workload ids, in WORKLOADS.md's order.
pub const IDS: [&str; 5] = ["mlp-seed", "mlp-wide", "lenet", "char-lstm", "gpt-mini"];

/// PyTorch's parameter count of each workload's model (`torch_ref.py` prints them), in [`IDS`] order.
pub const TORCH_PARAMS: [usize; 5] = [13_002, 669_706, 61_706, 350_593, 421_697];

/// The batch size each workload is defined with, in [`IDS`] order.
pub const BATCH: [usize; 5] = [32, 128, 64, 32, 16];

/// One workload, ready to step: the model, its optimizer and a fixed random batch.
pub struct Workload {
    /// The id (`mlp-seed`, ...).
    pub id: &'static str,
    /// The model.
    pub model: Box<dyn Module>,
    /// The optimizer over all of the model's parameters.
    pub optimizer: Box<dyn Optimizer>,
    /// The fixed input batch (f32 features or i64 tokens).
    pub x: Tensor,
    /// The fixed targets (i64 class indices).
    pub y: Tensor,
}

impl Workload {
    /// The workload `id` at its defined batch size; `None` for an unknown id.
    pub fn new(id: &str) -> Option<Workload> {
        let i = IDS.iter().position(|&w| w == id)?;
        Workload::with_batch(id, BATCH[i])
    }

    /// The workload `id` with batch size `batch` (the smoke test uses small batches); `None` for an unknown id.
    pub fn with_batch(id: &str, batch: usize) -> Option<Workload> {
        tensorgrad::manual_seed(0);
        let id = *IDS.iter().find(|&&w| w == id)?;
        let adam =
            |m: &dyn Module| -> Box<dyn Optimizer> { Box::new(Adam::new(m.parameters(), AdamConfig::default())) };
        let (model, optimizer, x, y): (Box<dyn Module>, Box<dyn Optimizer>, Tensor, Tensor) = match id {
            "mlp-seed" | "mlp-wide" => {
                let sizes: &[usize] = if id == "mlp-seed" { &[784, 16, 16, 10] } else { &[784, 512, 512, 10] };
                let m = mlp(sizes);
                let opt = adam(&m);
                (Box::new(m), opt, Tensor::randn(&[batch, 784]), Tensor::randint(0, 10, &[batch]))
            }
            "lenet" => {
                let m = lenet();
                let opt =
                    Box::new(Sgd::new(m.parameters(), SgdConfig { lr: 0.01, momentum: 0.9, ..SgdConfig::default() }));
                (Box::new(m), opt, Tensor::randn(&[batch, 1, 28, 28]), Tensor::randint(0, 10, &[batch]))
            }
            "char-lstm" => {
                let m = CharLstm::new(65, 64, 256);
                let opt = adam(&m);
                (Box::new(m), opt, Tensor::randint(0, 65, &[batch, 64]), Tensor::randint(0, 65, &[batch, 64]))
            }
            "gpt-mini" => {
                let m = Gpt::new(65, 128, 4, 2, 64);
                let opt = Box::new(Adam::new(m.parameters(), AdamConfig::adamw()));
                (Box::new(m), opt, Tensor::randint(0, 65, &[batch, 64]), Tensor::randint(0, 65, &[batch, 64]))
            }
            _ => return None,
        };
        Some(Workload { id, model, optimizer, x, y })
    }

    /// The number of model parameters (elements).
    pub fn num_parameters(&self) -> usize {
        self.model.num_parameters()
    }

    /// PyTorch's parameter count for this workload.
    pub fn torch_parameters(&self) -> usize {
        TORCH_PARAMS[IDS.iter().position(|&w| w == self.id).expect("known id")]
    }

    /// One training step: zero grads, forward, loss, backward, optimizer step. Returns the loss (computed
    /// before the update), without reading it out, so timing it costs nothing extra.
    pub fn step(&mut self) -> Tensor {
        self.optimizer.zero_grad();
        let out = self.model.forward(&self.x);
        let c = out.size(-1) as isize;
        let loss = cross_entropy(&out.reshape([-1, c]), &self.y.reshape([-1]), None, -100, Reduction::Mean, 0.0);
        loss.backward();
        self.optimizer.step();
        loss.detach()
    }
}

/// `torch_ref.mlp(sizes)`: Linear layers with ReLU between (none after the last).
fn mlp(sizes: &[usize]) -> Sequential {
    let mut m = Sequential::new();
    for (i, w) in sizes.windows(2).enumerate() {
        if i > 0 {
            m = m.add(ReLU::new());
        }
        m = m.add(Linear::new(w[0], w[1]));
    }
    m
}

/// `torch_ref.LeNet` (parameter names `c1.*`, `c2.*`, `f1.*`, `f2.*`, `f3.*`).
struct LeNet {
    c1: Conv2d,
    c2: Conv2d,
    f1: Linear,
    f2: Linear,
    f3: Linear,
    pool: MaxPool2d,
}

fn lenet() -> LeNet {
    LeNet {
        c1: Conv2d::with_options(1, 6, (5, 5), (1, 1), (2, 2), (1, 1), 1, true, DType::F32),
        c2: Conv2d::new(6, 16, (5, 5)),
        f1: Linear::new(400, 120),
        f2: Linear::new(120, 84),
        f3: Linear::new(84, 10),
        pool: MaxPool2d::new((2, 2)),
    }
}

impl Module for LeNet {
    fn forward(&self, x: &Tensor) -> Tensor {
        let x = self.pool.forward(&self.c1.forward(x).relu());
        let x = self.pool.forward(&self.c2.forward(&x).relu());
        let x = self.f1.forward(&x.flatten(1, -1)).relu();
        self.f3.forward(&self.f2.forward(&x).relu())
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = tensorgrad::nn::prefixed("c1", self.c1.named_parameters());
        p.extend(tensorgrad::nn::prefixed("c2", self.c2.named_parameters()));
        p.extend(tensorgrad::nn::prefixed("f1", self.f1.named_parameters()));
        p.extend(tensorgrad::nn::prefixed("f2", self.f2.named_parameters()));
        p.extend(tensorgrad::nn::prefixed("f3", self.f3.named_parameters()));
        p
    }
}

/// `torch_ref.CharLSTM`: Embedding - LSTM (batch-first) - Linear, logits for every position.
struct CharLstm {
    e: Embedding,
    l: Lstm,
    o: Linear,
}

impl CharLstm {
    fn new(vocab: usize, emb: usize, hid: usize) -> CharLstm {
        CharLstm {
            e: Embedding::new(vocab, emb),
            l: Lstm::with_options(RnnOptions::new(emb, hid).batch_first(true)),
            o: Linear::new(hid, vocab),
        }
    }
}

impl Module for CharLstm {
    fn forward(&self, tokens: &Tensor) -> Tensor {
        self.o.forward(&self.l.forward(&self.e.forward(tokens)))
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = tensorgrad::nn::prefixed("e", self.e.named_parameters());
        p.extend(tensorgrad::nn::prefixed("l", self.l.named_parameters()));
        p.extend(tensorgrad::nn::prefixed("o", self.o.named_parameters()));
        p
    }
}

/// `torch_ref.GPT`: token + learned position embeddings, pre-LayerNorm causal blocks ([`DecoderBlock`] is
/// exactly `torch_ref.Block`: `x + att(ln1(x))`, `x + mlp(ln2(x))`, exact GELU), final LayerNorm, linear head.
struct Gpt {
    tok: Embedding,
    pos: Embedding,
    blocks: Vec<DecoderBlock>,
    ln: LayerNorm,
    head: Linear,
}

impl Gpt {
    fn new(vocab: usize, d: usize, heads: usize, layers: usize, t: usize) -> Gpt {
        Gpt {
            tok: Embedding::new(vocab, d),
            pos: Embedding::new(t, d),
            blocks: (0..layers).map(|_| DecoderBlock::new(d, heads)).collect(),
            ln: LayerNorm::new(&[d]),
            head: Linear::new(d, vocab),
        }
    }
}

impl Module for Gpt {
    fn forward(&self, tokens: &Tensor) -> Tensor {
        let t = tokens.size(1);
        let positions = Tensor::arange_dtype(0.0, t as f64, 1.0, DType::I64);
        let mut h = &self.tok.forward(tokens) + &self.pos.forward(&positions);
        for b in &self.blocks {
            h = b.forward(&h);
        }
        self.head.forward(&self.ln.forward(&h))
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut p = tensorgrad::nn::prefixed("tok", self.tok.named_parameters());
        p.extend(tensorgrad::nn::prefixed("pos", self.pos.named_parameters()));
        for (i, b) in self.blocks.iter().enumerate() {
            p.extend(tensorgrad::nn::prefixed(&format!("blocks.{i}"), b.named_parameters()));
        }
        p.extend(tensorgrad::nn::prefixed("ln", self.ln.named_parameters()));
        p.extend(tensorgrad::nn::prefixed("head", self.head.named_parameters()));
        p
    }
}
