//! Positional encodings: the fixed sinusoids of "Attention Is All You Need" and a learned table.
//!
//! # Math
//! ```text
//! sinusoidal: PE[pos, 2i] = sin(pos / 10000^(2i/d)),  PE[pos, 2i+1] = cos(pos / 10000^(2i/d))
//! learned:    PE[pos, :]  = weight[pos, :]            (an embedding table of positions, N(0, 1) init)
//! forward:    y[.., t, ..] = x[.., t, ..] + PE[t]      (backward: dx = dy; d weight[t] = sum of dy over batch)
//! ```
//!
//! # Shapes
//! input `[T, N, d]` (time-major) or `[N, T, d]` (`batch_first`); `PE` `[max_len, d]`; output like the input.

use super::Module;
use crate::error::panic_msg;
use crate::tensor::{DType, Tensor};

/// The `[max_len, d_model]` table of sinusoidal encodings (an odd `d_model` ends with a sine column).
pub fn sinusoidal_positional_encoding(max_len: usize, d_model: usize, dtype: DType) -> Tensor {
    let mut pe = vec![0.0f64; max_len * d_model];
    for pos in 0..max_len {
        for i in (0..d_model).step_by(2) {
            let angle = pos as f64 / 10000f64.powf(i as f64 / d_model as f64);
            pe[pos * d_model + i] = angle.sin();
            if i + 1 < d_model {
                pe[pos * d_model + i + 1] = angle.cos();
            }
        }
    }
    Tensor::from_vec(pe, &[max_len, d_model]).to_dtype(dtype)
}

/// Checks `x` against `[T, N, d]` / `[N, T, d]` and returns `table[:T]` shaped to broadcast against it.
#[track_caller]
fn positions_for(name: &str, x: &Tensor, table: &Tensor, batch_first: bool) -> Tensor {
    let (max_len, d) = (table.size(0), table.size(1));
    let layout = if batch_first { "[N, T, d]" } else { "[T, N, d]" };
    if x.rank() != 3 || x.size(-1) != d {
        panic_msg(format!("{name}: expected input of shape {layout} with d = {d}, got {:?}", x.shape()));
    }
    let t = if batch_first { x.size(1) } else { x.size(0) };
    if t > max_len {
        panic_msg(format!("{name}: sequence length {t} exceeds max_len {max_len} (input shape {:?})", x.shape()));
    }
    let pe = table.narrow(0, 0, t);
    if batch_first {
        pe
    } else {
        pe.unsqueeze(1)
    }
}

/// Adds fixed sinusoidal encodings to a sequence (the table is a buffer named `pe`, no parameters).
///
/// ```
/// use tensorgrad::nn::{Module, SinusoidalPositionalEncoding};
/// use tensorgrad::{DType, Tensor};
/// let pe = SinusoidalPositionalEncoding::new(8, 100, true, DType::F32);
/// let x = Tensor::zeros(&[2, 5, 8]);
/// assert_eq!(pe.forward(&x).shape(), &[2, 5, 8]);
/// assert!((pe.table().to_vec::<f32>()[8 + 1] - 1f32.cos()).abs() < 1e-6); // PE[1, 1] = cos(1)
/// ```
pub struct SinusoidalPositionalEncoding {
    pe: Tensor,
    batch_first: bool,
}

impl SinusoidalPositionalEncoding {
    /// Encodings for up to `max_len` positions of width `d_model`.
    pub fn new(d_model: usize, max_len: usize, batch_first: bool, dtype: DType) -> Self {
        SinusoidalPositionalEncoding { pe: sinusoidal_positional_encoding(max_len, d_model, dtype), batch_first }
    }

    /// The `[max_len, d_model]` table.
    pub fn table(&self) -> &Tensor {
        &self.pe
    }
}

impl Module for SinusoidalPositionalEncoding {
    /// `x + PE[:T]`.
    ///
    /// # Panics
    /// If `x` is not `[T, N, d]` (`[N, T, d]` with `batch_first`) or `T > max_len`.
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        x + &positions_for("SinusoidalPositionalEncoding", x, &self.pe, self.batch_first)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        vec![("pe".into(), self.pe.clone())]
    }

    fn describe(&self) -> String {
        format!("SinusoidalPositionalEncoding(d_model={}, max_len={})", self.pe.size(1), self.pe.size(0))
    }
}

/// Adds a learned encoding per position: a `[max_len, d_model]` parameter named `weight`, initialized
/// N(0, 1) like `nn.Embedding` (so a GPT's `pos.weight` loads into it unchanged).
///
/// ```
/// use tensorgrad::nn::{LearnedPositionalEncoding, Module};
/// use tensorgrad::{DType, Tensor};
/// let pe = LearnedPositionalEncoding::new(8, 16, true, DType::F32);
/// assert_eq!(pe.forward(&Tensor::zeros(&[2, 5, 8])).shape(), &[2, 5, 8]);
/// assert_eq!(pe.named_parameters()[0].1.shape(), &[16, 8]);
/// ```
pub struct LearnedPositionalEncoding {
    weight: Tensor,
    batch_first: bool,
}

impl LearnedPositionalEncoding {
    /// A table for up to `max_len` positions of width `d_model`.
    pub fn new(d_model: usize, max_len: usize, batch_first: bool, dtype: DType) -> Self {
        LearnedPositionalEncoding {
            weight: Tensor::normal_dtype(&[max_len, d_model], 0.0, 1.0, dtype).requires_grad_(),
            batch_first,
        }
    }

    /// The encodings of positions `0..t`, `[t, d_model]`.
    ///
    /// # Panics
    /// If `t > max_len`.
    #[track_caller]
    pub fn positions(&self, t: usize) -> Tensor {
        if t > self.weight.size(0) {
            panic_msg(format!("LearnedPositionalEncoding: {t} positions exceed max_len {}", self.weight.size(0)));
        }
        self.weight.narrow(0, 0, t)
    }
}

impl Module for LearnedPositionalEncoding {
    /// `x + weight[:T]`.
    ///
    /// # Panics
    /// If `x` is not `[T, N, d]` (`[N, T, d]` with `batch_first`) or `T > max_len`.
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        x + &positions_for("LearnedPositionalEncoding", x, &self.weight, self.batch_first)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![("weight".into(), self.weight.clone())]
    }

    fn describe(&self) -> String {
        format!("LearnedPositionalEncoding(d_model={}, max_len={})", self.weight.size(1), self.weight.size(0))
    }
}
