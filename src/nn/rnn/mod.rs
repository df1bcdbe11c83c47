//! Recurrent layers: [`Rnn`] (tanh or relu), [`Lstm`] and [`Gru`], multi-layer, optionally bidirectional,
//! with PyTorch's parameter names, layouts, gate orders and initialization, so weights move unchanged.
//!
//! # Math (one layer, one direction; `x_t` is the layer's input at step t, `h_0`/`c_0` the initial state)
//! ```text
//! RNN:   h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)                 act = tanh | relu
//! LSTM:  [a_i a_f a_g a_o] = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh          (gate order i, f, g, o)
//!        i, f, o = sigmoid(a_i, a_f, a_o)   g = tanh(a_g)
//!        c_t = f * c_{t-1} + i * g          h_t = o * tanh(c_t)
//! GRU:   [r_x z_x n_x] = x_t W_ih^T + b_ih   [r_h z_h n_h] = h_{t-1} W_hh^T + b_hh  (gate order r, z, n)
//!        r = sigmoid(r_x + r_h)   z = sigmoid(z_x + z_h)   n = tanh(n_x + r * n_h)
//!        h_t = (1 - z) * n + z * h_{t-1}
//! ```
//! A reverse direction runs the same recurrence from t = T-1 down to 0; a bidirectional layer's output is
//! `[h_fwd | h_rev]` along the feature dim. Layer k > 0 reads layer k-1's output, through dropout when
//! training with `dropout > 0` (not after the last layer).
//!
//! Backward is backpropagation through time. Each direction of each layer runs as one fused op over all
//! steps (`rnn_seq`, `lstm_seq`, `gru_seq`: forward and BPTT each in one loop, tested against the per-step
//! composition on values, gradients and second derivatives).
//!
//! Speed: the input projection `x W_ih^T + b` of all T steps is one `[T*N, in] x [in, G*H]` matmul; each
//! step then only multiplies `h_{t-1} W_hh^T`.
//!
//! # Shapes (G = 1 for RNN, 4 for LSTM, 3 for GRU; D = 2 if bidirectional else 1; L = num_layers)
//! - input `[T, N, input_size]` (`[N, T, input_size]` with `batch_first`), or unbatched `[T, input_size]`
//! - output `[T, N, D*H]` (`[N, T, D*H]` with `batch_first`), or unbatched `[T, D*H]`
//! - h_0, h_n, c_0, c_n `[L*D, N, H]` (never batch-first, as in PyTorch), or unbatched `[L*D, H]`
//! - `weight_ih_l{k}[_reverse]` `[G*H, input_size]` for k = 0 else `[G*H, D*H]`; `weight_hh_l{k}` `[G*H, H]`;
//!   `bias_ih_l{k}`, `bias_hh_l{k}` `[G*H]`; all initialized U(-1/sqrt(H), 1/sqrt(H)) like PyTorch.

mod gru_seq;
mod lockstep;
mod lstm_seq;
mod rnn_seq;

use super::functional::dropout;
use super::Module;
use crate::error::panic_msg;
use crate::tensor::{DType, Tensor};
use std::sync::atomic::{AtomicBool, Ordering};

/// The nonlinearity of a plain [`Rnn`] (PyTorch's `nonlinearity='tanh' | 'relu'`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Nonlinearity {
    /// `tanh` (the default).
    #[default]
    Tanh,
    /// `relu`.
    Relu,
}

/// Hyperparameters shared by [`Rnn`], [`Lstm`] and [`Gru`], with PyTorch's defaults; set fields with the
/// builder methods: `RnnOptions::new(4, 8).num_layers(2).bidirectional(true)`.
#[derive(Clone, Debug, PartialEq)]
pub struct RnnOptions {
    /// Features per input step.
    pub input_size: usize,
    /// Features of the hidden state `H`.
    pub hidden_size: usize,
    /// Stacked layers (default 1).
    pub num_layers: usize,
    /// Whether the layers have `bias_ih`/`bias_hh` (default true).
    pub bias: bool,
    /// Input and output as `[N, T, F]` instead of `[T, N, F]` (default false; states are never batch-first).
    pub batch_first: bool,
    /// Dropout probability on each layer's output except the last, in training mode (default 0).
    pub dropout: f64,
    /// Whether each layer also runs a reverse-time direction (default false).
    pub bidirectional: bool,
    /// The activation of a plain [`Rnn`] (default tanh; LSTM and GRU ignore it).
    pub nonlinearity: Nonlinearity,
    /// The parameters' dtype (default f32).
    pub dtype: DType,
}

impl RnnOptions {
    /// PyTorch's defaults for the given sizes.
    pub fn new(input_size: usize, hidden_size: usize) -> RnnOptions {
        RnnOptions {
            input_size,
            hidden_size,
            num_layers: 1,
            bias: true,
            batch_first: false,
            dropout: 0.0,
            bidirectional: false,
            nonlinearity: Nonlinearity::Tanh,
            dtype: DType::F32,
        }
    }

    /// Sets `num_layers`.
    pub fn num_layers(mut self, num_layers: usize) -> Self {
        self.num_layers = num_layers;
        self
    }

    /// Sets `bias`.
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Sets `batch_first`.
    pub fn batch_first(mut self, batch_first: bool) -> Self {
        self.batch_first = batch_first;
        self
    }

    /// Sets the between-layer `dropout` probability.
    pub fn dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }

    /// Sets `bidirectional`.
    pub fn bidirectional(mut self, bidirectional: bool) -> Self {
        self.bidirectional = bidirectional;
        self
    }

    /// Sets the [`Rnn`] nonlinearity.
    pub fn nonlinearity(mut self, nonlinearity: Nonlinearity) -> Self {
        self.nonlinearity = nonlinearity;
        self
    }

    /// Sets the parameters' dtype.
    pub fn dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }

    fn directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CellKind {
    Rnn(Nonlinearity),
    Lstm,
    Gru,
}

impl CellKind {
    fn gates(self) -> usize {
        match self {
            CellKind::Rnn(_) => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }

    fn name(self) -> &'static str {
        match self {
            CellKind::Rnn(_) => "RNN",
            CellKind::Lstm => "LSTM",
            CellKind::Gru => "GRU",
        }
    }
}

/// The weights of one direction of one layer.
struct DirectionWeights {
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Option<Tensor>,
    b_hh: Option<Tensor>,
}

/// The engine shared by the three public layers: options, weights per (layer, direction), mode.
struct Recurrent {
    kind: CellKind,
    opts: RnnOptions,
    /// Index `layer * D + direction`, PyTorch's order.
    weights: Vec<DirectionWeights>,
    training: AtomicBool,
}

impl Recurrent {
    #[track_caller]
    fn new(kind: CellKind, opts: RnnOptions) -> Recurrent {
        let name = kind.name();
        if opts.num_layers == 0 || opts.hidden_size == 0 {
            panic_msg(format!("{name}: num_layers and hidden_size must be positive, got {opts:?}"));
        }
        if !(0.0..=1.0).contains(&opts.dropout) {
            panic_msg(format!("{name}: dropout must be in [0, 1], got {}", opts.dropout));
        }
        if !opts.dtype.is_float() {
            panic_msg(format!("{name}: parameters must be float, got dtype {}", opts.dtype));
        }
        let (h, g, d) = (opts.hidden_size, kind.gates(), opts.directions());
        let k = 1.0 / (h as f64).sqrt();
        let param = |shape: &[usize]| Tensor::uniform_dtype(shape, -k, k, opts.dtype).requires_grad_();
        let mut weights = Vec::new();
        for layer in 0..opts.num_layers {
            let in_features = if layer == 0 { opts.input_size } else { d * h };
            for _ in 0..d {
                let w_ih = param(&[g * h, in_features]);
                let w_hh = param(&[g * h, h]);
                let (b_ih, b_hh) =
                    if opts.bias { (Some(param(&[g * h])), Some(param(&[g * h]))) } else { (None, None) };
                weights.push(DirectionWeights { w_ih, w_hh, b_ih, b_hh });
            }
        }
        let kind = match kind {
            CellKind::Rnn(_) => CellKind::Rnn(opts.nonlinearity),
            other => other,
        };
        Recurrent { kind, opts, weights, training: AtomicBool::new(true) }
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let d = self.opts.directions();
        let mut out = Vec::new();
        for (idx, w) in self.weights.iter().enumerate() {
            let suffix = format!("l{}{}", idx / d, if idx % d == 1 { "_reverse" } else { "" });
            out.push((format!("weight_ih_{suffix}"), w.w_ih.clone()));
            out.push((format!("weight_hh_{suffix}"), w.w_hh.clone()));
            if let (Some(bi), Some(bh)) = (&w.b_ih, &w.b_hh) {
                out.push((format!("bias_ih_{suffix}"), bi.clone()));
                out.push((format!("bias_hh_{suffix}"), bh.clone()));
            }
        }
        out
    }

    fn describe(&self) -> String {
        let o = &self.opts;
        let mut s = format!("{}({}, {}", self.kind.name(), o.input_size, o.hidden_size);
        if o.num_layers != 1 {
            s.push_str(&format!(", num_layers={}", o.num_layers));
        }
        if self.kind == CellKind::Rnn(Nonlinearity::Relu) {
            s.push_str(", nonlinearity='relu'");
        }
        if !o.bias {
            s.push_str(", bias=False");
        }
        if o.batch_first {
            s.push_str(", batch_first=True");
        }
        if o.dropout != 0.0 {
            s.push_str(&format!(", dropout={}", o.dropout));
        }
        if o.bidirectional {
            s.push_str(", bidirectional=True");
        }
        s.push(')');
        s
    }

    /// Checks a state's shape and returns it batched, `[L*D, N, H]`.
    #[track_caller]
    fn check_state(&self, what: &str, state: &Tensor, batched: bool, n: usize, dtype: DType) -> Tensor {
        let o = &self.opts;
        let ld = o.num_layers * o.directions();
        let expected: Vec<usize> = if batched { vec![ld, n, o.hidden_size] } else { vec![ld, o.hidden_size] };
        if state.shape() != expected.as_slice() {
            panic_msg(format!(
                "{}: expected {what} of shape {expected:?} ([num_layers*directions, batch, hidden_size]; states are \
                 never batch-first), got {:?}",
                self.kind.name(),
                state.shape()
            ));
        }
        if state.dtype() != dtype {
            panic_msg(format!("{}: {what} has dtype {} but the input has {}", self.kind.name(), state.dtype(), dtype));
        }
        if batched {
            state.clone()
        } else {
            state.unsqueeze(1)
        }
    }

    /// Runs all layers and directions. Returns (output, h_n, c_n for LSTM) in the caller's layouts; the
    /// states only when `states` is set (computing them costs a little in the LSTM's backward).
    #[track_caller]
    fn run(
        &self,
        input: &Tensor,
        h0: Option<&Tensor>,
        c0: Option<&Tensor>,
        states: bool,
    ) -> (Tensor, Option<Tensor>, Option<Tensor>) {
        let (name, o) = (self.kind.name(), &self.opts);
        let layout = if o.batch_first { "[N, T, input_size]" } else { "[T, N, input_size]" };
        if input.rank() != 2 && input.rank() != 3 {
            panic_msg(format!(
                "{name}: expected input of rank 3 ({layout}, batch_first={}) or 2 (unbatched [T, input_size]), got \
                 shape {:?}",
                o.batch_first,
                input.shape()
            ));
        }
        if input.size(-1) != o.input_size {
            panic_msg(format!(
                "{name}: expected input_size {} in the last dim of the input ({layout}), got shape {:?}",
                o.input_size,
                input.shape()
            ));
        }
        if input.dtype() != o.dtype {
            panic_msg(format!("{name}: input has dtype {} but the parameters have {}", input.dtype(), o.dtype));
        }
        let batched = input.rank() == 3;
        // The sequence stays in the caller's layout: [T, N, F], or [N, T, F] when batched and batch-first
        // (the fused ops read and write rows in place); an unbatched input becomes [T, 1, F].
        let batch_first = batched && o.batch_first;
        let x = if batched { input.clone() } else { input.unsqueeze(1) };
        let (t_len, n) = if batch_first { (x.size(1), x.size(0)) } else { (x.size(0), x.size(1)) };
        if t_len == 0 {
            panic_msg(format!("{name}: expected a sequence length > 0, got input shape {:?}", input.shape()));
        }
        let h0 = h0.map(|h| self.check_state("h_0", h, batched, n, o.dtype));
        let c0 = c0.map(|c| self.check_state("c_0", c, batched, n, o.dtype));
        let zeros = || Tensor::zeros_dtype(&[n, o.hidden_size], o.dtype);
        let d = o.directions();
        let (mut h_n, mut c_n) = (Vec::new(), Vec::new());
        let mut layer_input = x;
        for layer in 0..o.num_layers {
            let mut outs = Vec::with_capacity(d);
            for dir in 0..d {
                let idx = layer * d + dir;
                let h = h0.as_ref().map_or_else(zeros, |h| h.narrow(0, idx, 1).squeeze(0));
                let c = (self.kind == CellKind::Lstm)
                    .then(|| c0.as_ref().map_or_else(zeros, |c| c.narrow(0, idx, 1).squeeze(0)));
                let seq = Seq { batch_first, reverse: dir == 1, states };
                let (out, h_last, c_last) = self.direction(&self.weights[idx], &layer_input, h, c, seq);
                outs.push(out);
                h_n.extend(h_last);
                c_n.extend(c_last);
            }
            layer_input = if d == 1 {
                outs.pop().unwrap_or_else(|| unreachable!())
            } else {
                Tensor::cat(&[&outs[0], &outs[1]], -1)
            };
            if layer + 1 < o.num_layers && o.dropout > 0.0 && self.training.load(Ordering::Relaxed) {
                layer_input = dropout(&layer_input, o.dropout, true);
            }
        }
        let stack = |v: &[Tensor]| {
            let s = Tensor::stack(&v.iter().collect::<Vec<_>>(), 0);
            if batched {
                s
            } else {
                s.squeeze(1)
            }
        };
        let h_n = (!h_n.is_empty()).then(|| stack(&h_n));
        let c_n = (!c_n.is_empty()).then(|| stack(&c_n));
        let output = if batched { layer_input } else { layer_input.squeeze(1) };
        (output, h_n, c_n)
    }

    /// One direction of one layer over `x` (`[T, N, F]`, or `[N, T, F]` with `seq.batch_first`): returns
    /// (outputs in the same layout with H features, and with `seq.states` h_last and c_last).
    fn direction(
        &self,
        w: &DirectionWeights,
        x: &Tensor,
        h: Tensor,
        c: Option<Tensor>,
        seq: Seq,
    ) -> (Tensor, Option<Tensor>, Option<Tensor>) {
        let Seq { batch_first, reverse, states } = seq;
        let hs = self.opts.hidden_size;
        let t_dim: isize = if batch_first { 1 } else { 0 };
        let t_len = x.size(t_dim);
        let t_last = if reverse { 0 } else { t_len - 1 };
        let last = |y: &Tensor| y.narrow(t_dim, t_last, 1).squeeze(t_dim);
        if self.kind == CellKind::Lstm {
            let c0 = c.unwrap_or_else(|| h.zeros_like());
            let args = lstm_seq::LstmArgs {
                x,
                w_ih: &w.w_ih,
                w_hh: &w.w_hh,
                bias: w.b_ih.as_ref().zip(w.b_hh.as_ref()),
                h0: &h,
                c0: &c0,
                reverse,
                batch_first,
                with_state: states,
            };
            let y = lstm_seq::lstm_sequence(&args);
            if !states {
                return (y, None, None);
            }
            let mut shape = x.shape().to_vec();
            shape[2] = hs;
            let rows_h = t_len * x.size(1 - t_dim) * hs;
            let out = y.narrow(0, 0, rows_h).reshape(shape);
            let c_last = y.narrow(0, rows_h, h.numel()).reshape(h.shape());
            let h_last = last(&out);
            return (out, Some(h_last), Some(c_last));
        }
        // RNN and GRU run time-major: [T, N, F].
        let x = if batch_first { x.transpose(0, 1) } else { x.clone() };
        let (n, features) = (x.size(1), x.size(2));
        let gh = self.kind.gates() * hs;
        // All steps' input projections in one matmul; for RNN both biases fold in here, GRU keeps b_hh
        // apart because r multiplies (W_hn h + b_hn).
        let mut gx = x.reshape([t_len * n, features]).matmul(&w.w_ih.t());
        match (&w.b_ih, &w.b_hh) {
            (Some(bi), Some(bh)) if self.kind != CellKind::Gru => gx = gx + (bi + bh),
            (Some(bi), _) => gx = gx + bi,
            _ => {}
        }
        let gx = gx.reshape([t_len, n, gh]);
        let y = match self.kind {
            CellKind::Gru => {
                let b_hh = w.b_hh.clone().unwrap_or_else(|| Tensor::zeros_dtype(&[gh], gx.dtype()));
                gru_seq::gru_sequence(&gx, &w.w_hh, &b_hh, &h, reverse)
            }
            CellKind::Rnn(act) => rnn_seq::rnn_sequence(&gx, &w.w_hh, &h, act == Nonlinearity::Relu, reverse),
            CellKind::Lstm => unreachable!("handled above"),
        };
        let y = if batch_first { y.transpose(0, 1) } else { y };
        let h_last = states.then(|| last(&y));
        (y, h_last, None)
    }
}

/// How one direction runs over the sequence.
#[derive(Clone, Copy, Debug)]
struct Seq {
    /// The sequence is `[N, T, F]` instead of `[T, N, F]`.
    batch_first: bool,
    /// Steps run from t = T-1 down to 0.
    reverse: bool,
    /// Also return the last hidden (and cell) state.
    states: bool,
}

macro_rules! recurrent_module {
    ($(#[$doc:meta])* $Name:ident, $kind:expr) => {
        $(#[$doc])*
        pub struct $Name(Recurrent);

        impl $Name {
            /// A single-layer, unidirectional layer with PyTorch's defaults (bias, time-major, f32).
            ///
            /// # Panics
            /// If `hidden_size` is 0.
            #[track_caller]
            pub fn new(input_size: usize, hidden_size: usize) -> $Name {
                $Name::with_options(RnnOptions::new(input_size, hidden_size))
            }

            /// A layer with the given options, its parameters drawn from U(-1/sqrt(H), 1/sqrt(H)).
            ///
            /// # Panics
            /// If `num_layers` or `hidden_size` is 0, `dropout` is outside [0, 1] or `dtype` is not float.
            #[track_caller]
            pub fn with_options(options: RnnOptions) -> $Name {
                $Name(Recurrent::new($kind, options))
            }

            /// The options this layer was built with.
            pub fn options(&self) -> &RnnOptions {
                &self.0.opts
            }
        }

        impl Module for $Name {
            /// The output sequence (zero initial state); see `forward_with_state` for the states.
            #[track_caller]
            fn forward(&self, input: &Tensor) -> Tensor {
                self.0.run(input, None, None, false).0
            }

            fn named_parameters(&self) -> Vec<(String, Tensor)> {
                self.0.named_parameters()
            }

            fn set_training(&self, training: bool) {
                self.0.training.store(training, Ordering::Relaxed);
            }

            fn is_training(&self) -> bool {
                self.0.training.load(Ordering::Relaxed)
            }

            fn describe(&self) -> String {
                self.0.describe()
            }
        }
    };
}

recurrent_module!(
    /// An Elman RNN, `h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)` (`torch.nn.RNN`). See the
    /// module docs for shapes.
    ///
    /// ```
    /// use tensorgrad::nn::{Module, Rnn, RnnOptions};
    /// use tensorgrad::Tensor;
    /// let rnn = Rnn::with_options(RnnOptions::new(3, 5).num_layers(2).bidirectional(true));
    /// let (out, h_n) = rnn.forward_with_state(&Tensor::randn(&[7, 2, 3]), None);
    /// assert_eq!((out.shape(), h_n.shape()), (&[7, 2, 10][..], &[4, 2, 5][..]));
    /// ```
    Rnn,
    CellKind::Rnn(Nonlinearity::Tanh)
);

recurrent_module!(
    /// A long short-term memory layer (`torch.nn.LSTM`, gates i, f, g, o). See the module docs for shapes.
    ///
    /// ```
    /// use tensorgrad::nn::{Lstm, Module, RnnOptions};
    /// use tensorgrad::Tensor;
    /// let lstm = Lstm::with_options(RnnOptions::new(3, 5).batch_first(true));
    /// let (out, (h_n, c_n)) = lstm.forward_with_state(&Tensor::randn(&[2, 7, 3]), None);
    /// assert_eq!(out.shape(), &[2, 7, 5]);
    /// assert_eq!((h_n.shape(), c_n.shape()), (&[1, 2, 5][..], &[1, 2, 5][..]));
    /// assert_eq!(lstm.named_parameters()[0].0, "weight_ih_l0");
    /// ```
    Lstm,
    CellKind::Lstm
);

recurrent_module!(
    /// A gated recurrent unit layer (`torch.nn.GRU`, gates r, z, n). See the module docs for shapes.
    ///
    /// ```
    /// use tensorgrad::nn::{Gru, Module};
    /// use tensorgrad::Tensor;
    /// let gru = Gru::new(3, 4);
    /// assert_eq!(gru.forward(&Tensor::randn(&[6, 3])).shape(), &[6, 4]); // unbatched
    /// ```
    Gru,
    CellKind::Gru
);

impl Rnn {
    /// Runs the sequence from the initial state `h_0` (zeros if `None`): returns `(output, h_n)`.
    ///
    /// # Shapes
    /// input `[T, N, in]` (`[N, T, in]` with `batch_first`) or `[T, in]`; `h_0`, `h_n` `[L*D, N, H]` or
    /// `[L*D, H]`; output `[T, N, D*H]` (`[N, T, D*H]`) or `[T, D*H]`.
    ///
    /// # Panics
    /// If the input is not rank 2 or 3, its last dim is not `input_size`, its dtype differs from the
    /// parameters', `T` is 0, or `h_0` has the wrong shape. The message names the layer, expected and got.
    #[track_caller]
    pub fn forward_with_state(&self, input: &Tensor, h_0: Option<&Tensor>) -> (Tensor, Tensor) {
        let (out, h, _) = self.0.run(input, h_0, None, true);
        (out, h.unwrap_or_else(|| unreachable!("asked for the states")))
    }
}

impl Gru {
    /// Runs the sequence from the initial state `h_0` (zeros if `None`): returns `(output, h_n)`.
    ///
    /// # Shapes
    /// As [`Rnn::forward_with_state`].
    ///
    /// # Panics
    /// As [`Rnn::forward_with_state`].
    #[track_caller]
    pub fn forward_with_state(&self, input: &Tensor, h_0: Option<&Tensor>) -> (Tensor, Tensor) {
        let (out, h, _) = self.0.run(input, h_0, None, true);
        (out, h.unwrap_or_else(|| unreachable!("asked for the states")))
    }
}

impl Lstm {
    /// Runs the sequence from `(h_0, c_0)` (zeros if `None`): returns `(output, (h_n, c_n))`.
    ///
    /// # Shapes
    /// As [`Rnn::forward_with_state`]; `c_0`, `c_n` have the shape of `h_0`.
    ///
    /// # Panics
    /// As [`Rnn::forward_with_state`], also for a wrong `c_0` shape.
    #[track_caller]
    pub fn forward_with_state(&self, input: &Tensor, state: Option<(&Tensor, &Tensor)>) -> (Tensor, (Tensor, Tensor)) {
        let (out, h, c) = self.0.run(input, state.map(|s| s.0), state.map(|s| s.1), true);
        let missing = || unreachable!("an LSTM asked for its states returns them");
        (out, (h.unwrap_or_else(missing), c.unwrap_or_else(missing)))
    }
}
