//! The fused LSTM layer: one op runs a whole direction of one layer over all T steps, the input projection
//! included, forward and backward (backpropagation through time) each in one loop, instead of ~15 graph
//! nodes per step.
//!
//! Inputs: `x` (rows `(t, n)` of `I` features, in the sequence layout below), `w_ih` `[4H, I]`, `w_hh`
//! `[4H, H]`, optionally `b_ih`, `b_hh` `[4H]`, `h0`, `c0` `[N, H]` (gate order i, f, g, o). Output: the
//! hidden states `y` (rows `(t, n)` of `H`, same layout as `x`), followed by the last cell state `c_n`
//! `[N, H]` when asked for (`with_state`, then the output is flat: `[T*N*H + N*H]`).
//!
//! Layout: `x` and `y` are `[T, N, F]` (time-major) or `[N, T, F]` (batch-first, `batch_first`); the op
//! reads and writes rows in place, so neither layout costs a transpose copy. The steps run t = 0..T, or
//! T-1 down to 0 for a reverse direction; "previous" below means the step processed before.
//!
//! forward, per step:
//! ```text
//! [a_i a_f a_g a_o] = [x_t | h_prev] [W_ih | W_hh]^T + b_ih + b_hh      one GEMM per step (per block)
//! i, f, o = sigmoid(a_i, a_f, a_o)   g = tanh(a_g)
//! c_t = f * c_prev + i * g           h_t = o * tanh(c_t)
//! ```
//! backward, steps in reverse processing order, carrying dh~ and dc~ (zero before the last step; dc~
//! starts at dc_n with `with_state`):
//! ```text
//! dh = dy[t] + dh~                   dc = dc~ + dh * o * (1 - tanh(c_t)^2)
//! da_i = dc * g * i (1 - i)   da_f = dc * c_prev * f (1 - f)   da_g = dc * i (1 - g^2)   da_o = dh * tanh(c_t) * o (1 - o)
//! dc~ = dc * f                       dh~ = da[t] W_hh            (one GEMM per step)
//! after the loop, GEMMs over all T*N rows of dA = [da_i da_f da_g da_o]:
//! [dW_ih | dW_hh] = dA^T [x | H_prev]    dx = dA W_ih    db_ih = db_hh = column sums of dA
//! dh0 = dh~, dc0 = dc~
//! ```
//!
//! Parallel steps: the hidden units are split into blocks (two from H = 32 up, [`Blocks`]); block k
//! owns the gate columns `[i f g o]` of its units, and one task per block runs every step on its own
//! thread, the tasks meeting at a barrier between steps ([`super::lockstep`]: long-lived threads and a
//! spinning barrier; a rayon region per step cost 10-20% of the char-lstm step in wake-ups).
//! - Forward: the task multiplies `[x_t | h_prev]` (`[N, I + H]`, its own copy) into its gate columns
//!   in one product of full depth, applies the gate math and the cell update to its units, and passes
//!   its units of `h_t` to the other tasks through an exchange slot.
//! - Backward: the product `dh~ = da W_hh` is split over its depth: the task multiplies its own gate
//!   columns of `da` by its rows of W_hh (a partial `[N, H]` for all units, into its exchange slot),
//!   and at the next step sums every block's partial over its own units, in block order.
//! - After the loop, again one task per block and thread, single-threaded GEMMs over its own block of
//!   dA only: its rows of `[dW_ih | dW_hh]`, its term of `dx`, its part of `db`.
//!
//! The weights are packed once per sequence, one `B` per block (`tensorgrad_kernels::gemm::PackedB`),
//! and the per-step products take the GEMM's small path (`gemm_packed_b_small_single_thread`: a few
//! dozen rows of `A` read in place). Each task appends its rows to its own buffers (no zero fill of them
//! first). The block count depends on H only and every sum runs in a fixed order, so the values do not
//! depend on the number of threads.
//!
//! The forward saves the activations `i f g o`, `c_t`, `tanh(c_t)` and `h_t` (rows in processing order;
//! `h_prev` of a step is `h_t` of the step before, or `h0`): 7H values per row (`x` is an input). A
//! plain backward runs the elementwise part in one loop per step over them;
//! under `create_graph` the same formulas run as tensor ops over a recomputed forward, so second
//! derivatives are exact (tested with gradgradcheck).

use super::lockstep::{self, Exchange};
use crate::autograd::{is_grad_enabled, no_grad, Backward};
use crate::error::panic_msg;
use crate::ops::fast::Kernel;
use crate::tensor::{Buffer, Element, Tensor};
use std::sync::RwLockReadGuard;
use tensorgrad_kernels::elementwise as ew;
use tensorgrad_kernels::gemm::{gemm_packed_b_small_single_thread, PackedB};
use tensorgrad_kernels::Float as KFloat;

/// One direction of one LSTM layer over a sequence: the arguments of [`lstm_sequence`].
pub(crate) struct LstmArgs<'a> {
    /// `[T, N, I]`, or `[N, T, I]` with `batch_first`.
    pub x: &'a Tensor,
    /// `[4H, I]`.
    pub w_ih: &'a Tensor,
    /// `[4H, H]`.
    pub w_hh: &'a Tensor,
    /// `(b_ih, b_hh)`, each `[4H]`.
    pub bias: Option<(&'a Tensor, &'a Tensor)>,
    /// `[N, H]`.
    pub h0: &'a Tensor,
    /// `[N, H]`.
    pub c0: &'a Tensor,
    /// Run the steps from t = T-1 down to 0.
    pub reverse: bool,
    /// `x` and the output are `[N, T, F]` instead of `[T, N, F]`.
    pub batch_first: bool,
    /// Append the last cell state: the output is flat, `[T*N*H + N*H]`.
    pub with_state: bool,
}

/// Where row `(t, n)` of a sequence lives in `[T, N, F]` or `[N, T, F]` data.
#[derive(Clone, Copy, Debug)]
struct SeqLayout {
    t_len: usize,
    n: usize,
    batch_first: bool,
    reverse: bool,
}

impl SeqLayout {
    /// The row index of `(t, b)`.
    fn row(self, t: usize, b: usize) -> usize {
        if self.batch_first {
            b * self.t_len + t
        } else {
            t * self.n + b
        }
    }

    /// Rows between batch entries `b` and `b + 1` of one step.
    fn batch_stride(self) -> usize {
        if self.batch_first {
            self.t_len
        } else {
            1
        }
    }

    /// The time index of processing step `s`.
    fn time(self, s: usize) -> usize {
        if self.reverse {
            self.t_len - 1 - s
        } else {
            s
        }
    }

    fn rows(self) -> usize {
        self.t_len * self.n
    }

    /// The processing step and batch entry `(s, b)` of the sequence row `r` (inverse of [`Self::row`]
    /// at `t = time(s)`).
    fn step_of_row(self, r: usize) -> (usize, usize) {
        let (t, b) = if self.batch_first { (r % self.t_len, r / self.t_len) } else { (r / self.n, r % self.n) };
        (self.time(t), b)
    }

    fn shape(self, features: usize) -> [usize; 3] {
        if self.batch_first {
            [self.n, self.t_len, features]
        } else {
            [self.t_len, self.n, features]
        }
    }
}

/// Runs one LSTM direction over all steps (see the module docs): returns the hidden states in the layout
/// of `x` (`[T, N, H]` or `[N, T, H]`), or with `with_state` those followed by `c_n`, flat.
///
/// # Panics
/// If the shapes do not fit `x [T, N, I]` (`[N, T, I]`), `w_ih [4H, I]`, `w_hh [4H, H]`, biases `[4H]`,
/// `h0`, `c0` `[N, H]`, or the dtypes differ.
#[track_caller]
pub(crate) fn lstm_sequence(a: &LstmArgs) -> Tensor {
    lstm_sequence_blocked(a, Blocks::for_hidden(a.h0.shape().last().copied().unwrap_or(0)))
}

/// [`lstm_sequence`] with the hidden units split into blocks of `blocks.unit` (tests choose it).
#[track_caller]
fn lstm_sequence_blocked(a: &LstmArgs, blocks: Blocks) -> Tensor {
    let _p = crate::profile::op_scope("lstm_sequence");
    let (lay, h, features) = check(a);
    let blocks = Blocks { h, unit: blocks.unit.max(1) };
    let (y, saved) = no_grad(
        || crate::dispatch_float!(a.x.dtype(), "lstm_sequence", T => forward::<T>(a, lay, h, features, blocks)),
    );
    let mut inputs = vec![a.x, a.w_ih, a.w_hh, a.h0, a.c0];
    if let Some((bi, bh)) = a.bias {
        inputs.extend([bi, bh]);
    }
    Tensor::from_op(y, &inputs, || LstmSequenceBackward {
        x: a.x.clone(),
        w_ih: a.w_ih.clone(),
        w_hh: a.w_hh.clone(),
        bias: a.bias.map(|(bi, bh)| (bi.clone(), bh.clone())),
        h0: a.h0.clone(),
        c0: a.c0.clone(),
        lay,
        hidden: h,
        with_state: a.with_state,
        saved,
    })
}

#[track_caller]
fn check(a: &LstmArgs) -> (SeqLayout, usize, usize) {
    let (n, h) = (a.h0.size(0), a.h0.size(1));
    let features = a.w_ih.size(1);
    let ok_rank = a.x.rank() == 3 && a.w_ih.rank() == 2 && a.h0.rank() == 2;
    let t_len = if ok_rank { a.x.size(if a.batch_first { 1 } else { 0 }) } else { 0 };
    let lay = SeqLayout { t_len, n, batch_first: a.batch_first, reverse: a.reverse };
    let dtype = a.x.dtype();
    let ok = ok_rank
        && a.x.shape() == lay.shape(features)
        && a.w_ih.shape() == [4 * h, features]
        && a.w_hh.shape() == [4 * h, h]
        && a.c0.shape() == a.h0.shape()
        && a.bias.is_none_or(|(bi, bh)| bi.shape() == [4 * h] && bh.shape() == [4 * h])
        && [a.w_ih, a.w_hh, a.h0, a.c0].iter().all(|t| t.dtype() == dtype)
        && a.bias.is_none_or(|(bi, bh)| bi.dtype() == dtype && bh.dtype() == dtype);
    if !ok {
        panic_msg(format!(
            "lstm_sequence: expected x {} (batch_first={}), w_ih [4H, I], w_hh [4H, H], biases [4H], h0 and c0 [N, H] \
             of one dtype, got x {:?}, w_ih {:?}, w_hh {:?}, h0 {:?}, c0 {:?}",
            if a.batch_first { "[N, T, I]" } else { "[T, N, I]" },
            a.batch_first,
            a.x.shape(),
            a.w_ih.shape(),
            a.w_hh.shape(),
            a.h0.shape(),
            a.c0.shape()
        ));
    }
    (lay, h, features)
}

/// A read guard over a contiguous tensor's elements.
struct Data<'a> {
    guard: RwLockReadGuard<'a, Buffer>,
    range: std::ops::Range<usize>,
}

impl Data<'_> {
    fn of(t: &Tensor) -> Data<'_> {
        debug_assert!(t.is_contiguous());
        Data { guard: t.read(), range: t.layout().contiguous_range() }
    }

    fn get<T: Element>(&self) -> &[T] {
        &T::slice(&self.guard)[self.range.clone()]
    }

    fn all(ts: &[Tensor]) -> Vec<Data<'_>> {
        ts.iter().map(Data::of).collect()
    }

    fn slices<'b, T: Element>(ds: &'b [Data<'_>]) -> Vec<&'b [T]> {
        ds.iter().map(|d| d.get::<T>()).collect()
    }
}

/// The hidden units split into blocks: block `k` holds units `k * unit .. min((k + 1) * unit, H)`.
///
/// Each step runs the blocks in parallel, one task per block (see the module docs). Gate columns are
/// stored per block, `[i f g o]` of the block's units (the "permuted" gate order), and every per-row
/// buffer the tasks write is their own (one per block), so tasks share only what passes through the
/// exchange slots.
#[derive(Clone, Copy, Debug)]
struct Blocks {
    h: usize,
    unit: usize,
}

impl Blocks {
    /// Two blocks (one per core of a 2-core machine) from H = 32 up, else one. The block count is fixed
    /// by `H` alone, not by the thread count, so results do not depend on the number of threads.
    fn for_hidden(h: usize) -> Blocks {
        let unit = if h >= 32 { h.div_ceil(2) } else { h.max(1) };
        Blocks { h, unit }
    }

    fn count(self) -> usize {
        self.h.div_ceil(self.unit)
    }

    /// The first unit of block `k` (also its offset in units, so `4 * start` is its first gate column).
    fn start(self, k: usize) -> usize {
        k * self.unit
    }

    fn width(self, k: usize) -> usize {
        self.unit.min(self.h - self.start(k))
    }

    /// For every permuted gate column (block by block, `[i f g o]` within a block), its row in the natural
    /// `[4H, ..]` weight layout (`gate * H + unit`).
    fn permutation(self) -> Vec<usize> {
        let mut p = Vec::with_capacity(4 * self.h);
        for k in 0..self.count() {
            let (s, w) = (self.start(k), self.width(k));
            for gate in 0..4 {
                p.extend((s..s + w).map(|u| gate * self.h + u));
            }
        }
        p
    }

    /// Splits a blocked buffer of `per_unit` values per unit and row (`rows` rows) into its blocks.
    fn split<T>(self, mut buf: &mut [T], rows: usize, per_unit: usize) -> Vec<&mut [T]> {
        let mut v = Vec::with_capacity(self.count());
        for k in 0..self.count() {
            let (head, tail) = buf.split_at_mut(rows * per_unit * self.width(k));
            v.push(head);
            buf = tail;
        }
        v
    }

    /// The natural `[rows, H]` matrix `src` stored blocked, or back (`to_natural`).
    fn convert<T: Copy>(self, src: &[T], dst: &mut [T], rows: usize, to_natural: bool) {
        for k in 0..self.count() {
            let (s, w) = (self.start(k), self.width(k));
            let off = rows * s;
            for r in 0..rows {
                let (blocked, natural) = (off + r * w, r * self.h + s);
                if to_natural {
                    dst[natural..natural + w].copy_from_slice(&src[blocked..blocked + w]);
                } else {
                    dst[blocked..blocked + w].copy_from_slice(&src[natural..natural + w]);
                }
            }
        }
    }
}

/// Rows of a `[4H, cols]` matrix in the permuted gate order of `bl` (the natural order when `inverse`:
/// then `m` is permuted and the result natural).
fn permute_rows<T: Copy>(m: &[T], cols: usize, perm: &[usize], inverse: bool) -> Vec<T> {
    let mut src_row = perm.to_vec();
    if inverse {
        for (j, &p) in perm.iter().enumerate() {
            src_row[p] = j;
        }
    }
    let mut out = Vec::with_capacity(m.len());
    for r in src_row {
        out.extend_from_slice(&m[r * cols..(r + 1) * cols]);
    }
    out
}

/// One block of a weight as the `B` operand (`k x n`) of the per-step products, packed once per
/// sequence for the GEMM microkernel (instead of once per step).
struct WBlock<T: Kernel> {
    packed: PackedB<T>,
}

impl<T: Kernel> WBlock<T> {
    /// `B` `k x n` with element `(p, q)` at `b[p * rs + q * cs]`.
    fn new(k: usize, n: usize, b: &[T], (rs, cs): (usize, usize)) -> Self {
        WBlock { packed: PackedB::new(k, n, b, rs, cs) }
    }

    /// `C = A B + beta C` for `A` `m x k` with row stride `rsa`, `C` with row stride `rsc` (unit column
    /// strides), on the calling thread (the steps run one task per block), on the GEMM's small path
    /// (`A` read in place; packing the few rows of `A` costs more than it saves: measured ~5% of the
    /// char-lstm step at `32 x 256 x 512` and `32 x 1024 x 128`).
    fn mul(&self, m: usize, a: &[T], rsa: usize, beta: T, c: &mut [T], rsc: usize) {
        gemm_packed_b_small_single_thread(m, <T as KFloat>::ONE, a, rsa, 1, &self.packed, beta, c, rsc, 1);
    }
}

/// What the forward keeps for the plain backward, rows in processing order (`s * N + b` for step `s`,
/// batch entry `b`), one flat tensor per block, as the step tasks append them.
struct Saved {
    blocks: Blocks,
    /// Per block: i, f, g, o of its units (`rows * 4w`).
    act: Vec<Tensor>,
    /// Per block: c_t.
    c: Vec<Tensor>,
    /// Per block: tanh(c_t).
    tc: Vec<Tensor>,
    /// Per block: h_t (the h_prev of the next step; `h0` is that of the first).
    y: Vec<Tensor>,
}

/// What one forward task keeps: its step's `[x_t | h_prev]`, c0 of its units, and its rows of
/// the activations, `c`, `tanh(c)` and `h`, appended step by step.
struct FwdBlock<T> {
    /// `[n, I + H]`: the step's input rows, then the hidden state of the step before (natural units).
    xh: Vec<T>,
    /// `[n, width]`: c0 of this block's units.
    c0: Vec<T>,
    act: Vec<T>,
    c: Vec<T>,
    tc: Vec<T>,
    y: Vec<T>,
}

fn forward<T: Kernel>(a: &LstmArgs, lay: SeqLayout, hs: usize, features: usize, bl: Blocks) -> (Tensor, Saved) {
    let (rows, n, nb) = (lay.rows(), lay.n, bl.count());
    let zero = <T as KFloat>::ZERO;
    let perm = bl.permutation();
    let xw = features + hs;
    // [W_ih | W_hh] with rows in the permuted gate order: `[4H, I + H]`. Block k's B (`(I + H) x 4w`) is
    // its rows transposed, packed once per sequence: each step multiplies `[x_t | h_prev]` by it in one
    // product (the input projection included: in cache, and no `[T*N, 4H]` pass of its own).
    let w_cat = {
        let (w_ih, w_hh) = (a.w_ih.contiguous(), a.w_hh.contiguous());
        let (di, dh) = (Data::of(&w_ih), Data::of(&w_hh));
        let (wi, wh) = (di.get::<T>(), dh.get::<T>());
        let mut w = Vec::with_capacity(4 * hs * xw);
        for &r in &perm {
            w.extend_from_slice(&wi[r * features..][..features]);
            w.extend_from_slice(&wh[r * hs..][..hs]);
        }
        w
    };
    let wf: Vec<WBlock<T>> =
        (0..nb).map(|k| WBlock::new(xw, 4 * bl.width(k), &w_cat[4 * bl.start(k) * xw..], (1, xw))).collect();
    // b_ih + b_hh in the permuted order: the first value of every gate row, before the product adds to it.
    let bias: Option<Vec<T>> = a.bias.map(|(bi, bh)| {
        let (bi, bh) = (bi.to_vec::<T>(), bh.to_vec::<T>());
        perm.iter().map(|&p| bi[p] + bh[p]).collect()
    });
    let x = a.x.contiguous();
    let xd = Data::of(&x);
    let xv = xd.get::<T>();
    let h0 = a.h0.contiguous().to_vec::<T>();
    let c0 = a.c0.contiguous().to_vec::<T>();
    // Each task keeps its own copy of the previous hidden state in `xh`: it writes its own units there
    // after each step and copies the other blocks' units from their exchange slots (`[n, width]`) at the
    // start of the next.
    let ex = Exchange::new(nb, |k| n * bl.width(k), zero);
    let mut tasks: Vec<FwdBlock<T>> = (0..nb)
        .map(|k| {
            let (st, w) = (bl.start(k), bl.width(k));
            let mut xh = vec![zero; n * xw];
            for (row, h) in xh.chunks_exact_mut(xw).zip(h0.chunks_exact(hs)) {
                row[features..].copy_from_slice(h);
            }
            let c0 = c0.chunks_exact(hs).flat_map(|r| &r[st..st + w]).copied().collect();
            let buf = |per_unit: usize| Vec::with_capacity(rows * w * per_unit);
            FwdBlock { xh, c0, act: buf(4), c: buf(1), tc: buf(1), y: buf(1) }
        })
        .collect();
    lockstep::run(&mut tasks, lay.t_len, |k, s, tb| {
        let (st, w) = (bl.start(k), bl.width(k));
        let g = 4 * w;
        for (b, row) in tb.xh.chunks_exact_mut(xw).enumerate() {
            row[..features].copy_from_slice(&xv[lay.row(lay.time(s), b) * features..][..features]);
        }
        if s > 0 {
            for j in (0..nb).filter(|&j| j != k) {
                let (sj, wj) = (bl.start(j), bl.width(j));
                let slot = ex.slot(j, s - 1);
                for (dst, src) in tb.xh.chunks_exact_mut(xw).zip(slot.chunks_exact(wj)) {
                    dst[features + sj..][..wj].copy_from_slice(src);
                }
            }
        }
        // gates = [x_t | h_prev] [W_ih | W_hh]^T + b (this block's gate columns), appended to act.
        let q0 = tb.act.len();
        let beta = match &bias {
            Some(bias) => {
                for _ in 0..n {
                    tb.act.extend_from_slice(&bias[4 * st..][..g]);
                }
                <T as KFloat>::ONE
            }
            None => {
                tb.act.resize(q0 + n * g, zero);
                zero
            }
        };
        wf[k].mul(n, &tb.xh, xw, beta, &mut tb.act[q0..], g);
        let mut slot = (nb > 1 && s + 1 < lay.t_len).then(|| ex.slot(k, s));
        let r0 = tb.c.len();
        for v in [&mut tb.c, &mut tb.tc, &mut tb.y] {
            v.resize(r0 + n * w, zero);
        }
        // c_prev of this step: the rows before (`n` rows of `w` back), or c0.
        let (c_done, c_new) = tb.c.split_at_mut(r0);
        let c_prev = if s == 0 { &tb.c0[..] } else { &c_done[r0 - n * w..] };
        for b in 0..n {
            let r = b * w..(b + 1) * w;
            let (tc, h) = (&mut tb.tc[r0 + r.start..r0 + r.end], &mut tb.y[r0 + r.start..r0 + r.end]);
            ew::lstm_cell_forward(&mut tb.act[q0 + b * g..][..g], &c_prev[r.clone()], &mut c_new[r], tc, h);
            tb.xh[b * xw + features + st..][..w].copy_from_slice(h);
            if let Some(slot) = slot.as_mut() {
                slot[b * w..][..w].copy_from_slice(h);
            }
        }
    });
    // The last cell state, blocked (`[block][n][width]`): the last rows of c, or c0 without steps.
    let cs: Vec<T> = tasks
        .iter()
        .flat_map(|tb| if lay.t_len > 0 { &tb.c[tb.c.len() - tb.c0.len()..] } else { &tb.c0[..] })
        .copied()
        .collect();
    let (mut act, mut c, mut tc, mut yb) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for tb in tasks {
        act.push(tb.act);
        c.push(tb.c);
        tc.push(tb.tc);
        yb.push(tb.y);
    }
    // y in the sequence layout (natural units), then c_n with `with_state`.
    let extra = if a.with_state { n * hs } else { 0 };
    let mut y = Vec::with_capacity(rows * hs + extra);
    for r in 0..rows {
        let (s, b) = lay.step_of_row(r);
        let q = s * n + b;
        for (k, yk) in yb.iter().enumerate() {
            let w = bl.width(k);
            y.extend_from_slice(&yk[q * w..][..w]);
        }
    }
    if a.with_state {
        for b in 0..n {
            for k in 0..nb {
                let (st, w) = (bl.start(k), bl.width(k));
                y.extend_from_slice(&cs[n * st + b * w..][..w]);
            }
        }
    }
    let y = if a.with_state {
        let len = y.len();
        Tensor::from_vec(y, &[len])
    } else {
        Tensor::from_vec(y, &lay.shape(hs))
    };
    let flat = |v: Vec<T>| {
        let len = v.len();
        Tensor::from_vec(v, &[len])
    };
    let flats = |v: Vec<Vec<T>>| v.into_iter().map(flat).collect();
    let saved = Saved { blocks: bl, act: flats(act), c: flats(c), tc: flats(tc), y: flats(yb) };
    (y, saved)
}
/// The same layer written with per-step tensor ops: the reference the fused op is tested against.
#[cfg(test)]
pub(crate) fn lstm_sequence_composed(a: &LstmArgs) -> Tensor {
    let (lay, hs, _) = check(a);
    let x = if a.batch_first { a.x.transpose(0, 1) } else { a.x.clone() };
    let mut gx = x.matmul(&a.w_ih.t());
    if let Some((bi, bh)) = a.bias {
        gx = gx + bi + bh;
    }
    let w_t = a.w_hh.t();
    let (mut h, mut c) = (a.h0.clone(), a.c0.clone());
    let mut ys: Vec<Option<Tensor>> = vec![None; lay.t_len];
    for s in 0..lay.t_len {
        let t = lay.time(s);
        let gates = gx.narrow(0, t, 1).squeeze(0) + h.matmul(&w_t);
        let ch = gates.chunk(4, -1);
        let (i, f, g, o) = (ch[0].sigmoid(), ch[1].sigmoid(), ch[2].tanh(), ch[3].sigmoid());
        c = &f * &c + &i * &g;
        h = &o * &c.tanh();
        ys[t] = Some(h.clone());
    }
    let ys: Vec<Tensor> = ys.into_iter().flatten().collect();
    let y = Tensor::stack(&ys.iter().collect::<Vec<_>>(), if a.batch_first { 1 } else { 0 });
    debug_assert_eq!(y.shape(), lay.shape(hs));
    if a.with_state {
        Tensor::cat(&[&y.reshape([-1]), &c.reshape([-1])], 0)
    } else {
        y
    }
}

struct LstmSequenceBackward {
    x: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    bias: Option<(Tensor, Tensor)>,
    h0: Tensor,
    c0: Tensor,
    lay: SeqLayout,
    hidden: usize,
    with_state: bool,
    saved: Saved,
}

/// The gradients in input order: x, w_ih, w_hh, h0, c0, then b_ih, b_hh if present.
type InputGrads = Vec<Option<Tensor>>;

impl LstmSequenceBackward {
    /// BPTT with the elementwise part fused into one loop per step (plain backward), one parallel
    /// region per step with one task per block of hidden units (see [`Blocks`]).
    fn backward_fused<T: Kernel>(&self, dy: &Tensor, needs: &[bool]) -> InputGrads {
        let (lay, hs, bl) = (self.lay, self.hidden, self.saved.blocks);
        let (rows, n, g4, features, nb) = (lay.rows(), lay.n, 4 * hs, self.w_ih.size(1), bl.count());
        let zero = <T as KFloat>::ZERO;
        let one = <T as KFloat>::ONE;
        let dy = dy.contiguous();
        let dyd = Data::of(&dy);
        let dyv = dyd.get::<T>();
        let sv = &self.saved;
        let (ag, cg, tcg, yg) = (Data::all(&sv.act), Data::all(&sv.c), Data::all(&sv.tc), Data::all(&sv.y));
        let (act, c) = (Data::slices::<T>(&ag), Data::slices::<T>(&cg));
        let (tc, yb) = (Data::slices::<T>(&tcg), Data::slices::<T>(&yg));
        let perm = bl.permutation();
        let w_hh = self.w_hh.detach().contiguous();
        let w_hh = permute_rows(Data::of(&w_hh).get::<T>(), hs, &perm, false);
        // wb[k]: the rows of W_hh (permuted) of block k's gates, all H columns, so that block k's part of
        // dh~ = da W_hh is P_k = da[block k's gates] wb[k] (`[n, H]`), and dh~ = sum_k P_k.
        let wb: Vec<WBlock<T>> =
            (0..nb).map(|k| WBlock::new(4 * bl.width(k), hs, &w_hh[4 * bl.start(k) * hs..], (hs, 1))).collect();
        let mut c0 = vec![zero; n * hs];
        bl.convert(&self.c0.to_vec::<T>(), &mut c0, n, false);
        let bs = lay.batch_stride();
        // da for all rows, one buffer per block (for the GEMMs after the loop), rows appended step by step
        // in the order the backward processes them: row q is step T-1 - q/N, batch entry q%N.
        // Block k of da is `rows x 4w` with rows `dld(k) = 4w + 64 bytes` apart: the GEMMs read it in place
        // (the per-step product of the loop too) only when its rows are not a multiple of 4 KiB apart
        // (they would share L1 sets).
        let pad = 64 / std::mem::size_of::<T>();
        let dld = |k: usize| 4 * bl.width(k) + pad;
        // The sequence row and the step of da's row q.
        let da_step = |q: usize| (lay.t_len - 1 - q / n, q % n);
        let da_row = |q: usize| {
            let (s, b) = da_step(q);
            lay.row(lay.time(s), b)
        };
        let mut dh = vec![zero; n * hs];
        let mut dc = vec![zero; n * hs];
        if self.with_state {
            bl.convert(&dyv[rows * hs..], &mut dc, n, false);
        }
        // Task k's partial product P_k of each step goes to its exchange slot (all of `[n, H]`); the next
        // step sums every block's slot over its own units, in block order.
        let ex = Exchange::new(nb, |_| n * hs, zero);
        let need = |k: usize| needs.get(k).copied().unwrap_or(false);
        struct BwdBlock<'a, T> {
            da: Vec<T>,
            dh: &'a mut [T],
            dc: &'a mut [T],
        }
        let mut tasks: Vec<BwdBlock<T>> = bl
            .split(&mut dh, n, 1)
            .into_iter()
            .zip(bl.split(&mut dc, n, 1))
            .enumerate()
            .map(|(k, (dh, dc))| BwdBlock { da: Vec::with_capacity(rows * dld(k)), dh, dc })
            .collect();
        let t_len = lay.t_len;
        lockstep::run(&mut tasks, t_len, |k, i, tb| {
            // Processing step i of the backward is forward step s.
            let s = t_len - 1 - i;
            let (st, w) = (bl.start(k), bl.width(k));
            let g = 4 * w;
            // dh~ = sum_j P_j of the step after (before the last step, dh~ is the zeros `dh` starts with).
            if i > 0 {
                for j in 0..nb {
                    let p = ex.slot(j, i - 1);
                    for (d, pr) in tb.dh.chunks_exact_mut(w).zip(p.chunks_exact(hs)) {
                        let pr = &pr[st..st + w];
                        if j == 0 {
                            d.copy_from_slice(pr);
                        } else {
                            ew::add_assign(d, pr);
                        }
                    }
                }
            }
            let r0 = lay.row(lay.time(s), 0);
            let (ab, cb, tcb) = (act[k], c[k], tc[k]);
            let q_first = tb.da.len();
            for b in 0..n {
                let row = r0 + b * bs;
                let gates = &ab[(s * n + b) * g..][..g];
                let (gi, rest) = gates.split_at(w);
                let (gf, rest) = rest.split_at(w);
                let (gg, go) = rest.split_at(w);
                let (gi, gf, gg, go) = (&gi[..w], &gf[..w], &gg[..w], &go[..w]);
                let cp = if s == 0 { &c0[n * st + b * w..][..w] } else { &cb[((s - 1) * n + b) * w..][..w] };
                let tr = &tcb[(s * n + b) * w..][..w];
                let dyr = &dyv[row * hs + st..][..w];
                let dhn = &tb.dh[b * w..][..w];
                let dcn = &mut tb.dc[b * w..][..w];
                // (A row-sized zero fill, in L1, then written.)
                let q0 = tb.da.len();
                tb.da.resize(q0 + g + pad, zero);
                let dar = &mut tb.da[q0..q0 + g];
                let (dai, rest) = dar.split_at_mut(w);
                let (daf, rest) = rest.split_at_mut(w);
                let (dag, dao) = rest.split_at_mut(w);
                let (dai, daf, dag, dao) = (&mut dai[..w], &mut daf[..w], &mut dag[..w], &mut dao[..w]);
                for j in 0..w {
                    let (i, f, g, o, t) = (gi[j], gf[j], gg[j], go[j], tr[j]);
                    let dh = dyr[j] + dhn[j];
                    let dcv = dcn[j] + dh * o * (one - t * t);
                    dai[j] = dcv * g * i * (one - i);
                    daf[j] = dcv * cp[j] * f * (one - f);
                    dag[j] = dcv * i * (one - g * g);
                    dao[j] = dh * t * o * (one - o);
                    dcn[j] = dcv * f;
                }
            }
            // P_k = da[this step, block k's gates] wb[k], for the step before (or dh0 after the last step).
            if s > 0 || need(3) {
                wb[k].mul(n, &tb.da[q_first..], dld(k), zero, &mut ex.slot(k, i), hs);
            }
        });
        let da_len: usize = tasks.iter().map(|tb| tb.da.len()).sum();
        if crate::profile::is_enabled() {
            // The profiler's estimate: dh~ per step, [dW_ih | dW_hh], dx, and the elementwise part.
            let (r, g, i, h) = (rows as f64, g4 as f64, features as f64, hs as f64);
            let dx = if need(0) { 2.0 * r * g * i } else { 0.0 };
            let flops = 2.0 * r * g * h + 2.0 * r * g * (i + h) + dx + 15.0 * r * h;
            // Read: dy and what the forward saved (act 4H, c, tanh(c), h: 7H per row); written: da.
            let bytes = (dyv.len() + 7 * rows * hs + da_len) as f64 * std::mem::size_of::<T>() as f64;
            crate::profile::note_cost(flops, bytes);
        }
        let mut grads: InputGrads = vec![None; needs.len()];
        let x = self.x.detach().contiguous();
        let xd = Data::of(&x);
        let xv = xd.get::<T>();
        let w_ih = self.w_ih.detach().contiguous();
        let w_ih = permute_rows(Data::of(&w_ih).get::<T>(), features, &perm, false);
        let h0 = self.h0.to_vec::<T>();
        // After the loop, one task per block again, each on its own thread with single-threaded GEMMs
        // (one product split over two threads scaled ~1.5x here; independent ones scale ~2x), each reading
        // only its own block of dA (4 MB at char-lstm's size: read from L3 or memory once per product):
        // - the rows of [dW_ih | dW_hh] of its gates, dA_k^T [x | H_prev] (`[4w, I + H]`, in place), with
        //   [x | H_prev] gathered in da's row order (`rows x (I + H)`, each task its own copy);
        // - its term of dx = sum_k dA_k W_ih[block k's gates], summed over blocks in order after the run;
        // - db = column sums of its block of dA.
        let (want_dw, want_dx, want_db) = (need(1) || need(2), need(0), need(5) || need(6));
        let xw = features + hs;
        struct After<T> {
            da: Vec<T>,
            /// `[4w, I + H]`: this block's rows of [dW_ih | dW_hh] (permuted gate order).
            dw: Vec<T>,
            /// This block's term of dx, `[rows, features]` (da's row order).
            dx: Vec<T>,
            /// Column sums of this block of dA.
            db: Vec<T>,
        }
        let mut after: Vec<After<T>> =
            tasks.into_iter().map(|tb| After { da: tb.da, dw: Vec::new(), dx: Vec::new(), db: Vec::new() }).collect();
        lockstep::run(&mut after, 1, |k, _, out| {
            let (st, g) = (bl.start(k), 4 * bl.width(k));
            if want_dw {
                let mut xh = Vec::with_capacity(rows * xw);
                for q in 0..rows {
                    xh.extend_from_slice(&xv[da_row(q) * features..][..features]);
                    // H_prev of step s: h0 on the first step, else h of the step before (processing order).
                    match da_step(q) {
                        (0, b) => xh.extend_from_slice(&h0[b * hs..][..hs]),
                        (s, b) => {
                            for (j, yj) in yb.iter().enumerate() {
                                let wj = bl.width(j);
                                xh.extend_from_slice(&yj[((s - 1) * n + b) * wj..][..wj]);
                            }
                        }
                    }
                }
                out.dw = vec![zero; g * xw];
                T::gemm_single_thread(g, rows, xw, one, &out.da, 1, dld(k), &xh, xw, 1, zero, &mut out.dw, xw, 1);
            }
            if want_dx {
                out.dx = vec![zero; rows * features];
                let wk = &w_ih[4 * st * features..];
                T::gemm_single_thread(
                    rows,
                    g,
                    features,
                    one,
                    &out.da,
                    dld(k),
                    1,
                    wk,
                    features,
                    1,
                    zero,
                    &mut out.dx,
                    features,
                    1,
                );
            }
            if want_db {
                out.db = vec![zero; g];
                for r in out.da.chunks_exact(dld(k)) {
                    ew::add_assign(&mut out.db, &r[..g]);
                }
            }
        });
        if want_dw {
            // The natural gate order: permuted row 4 start_k + c of block k is row perm[4 start_k + c].
            let (mut dw_ih, mut dw_hh) = (vec![zero; g4 * features], vec![zero; g4 * hs]);
            for (k, out) in after.iter().enumerate() {
                for (c, r) in out.dw.chunks_exact(xw).enumerate() {
                    let p = perm[4 * bl.start(k) + c];
                    dw_ih[p * features..][..features].copy_from_slice(&r[..features]);
                    dw_hh[p * hs..][..hs].copy_from_slice(&r[features..]);
                }
            }
            grads[1] = need(1).then(|| Tensor::from_vec(dw_ih, &[g4, features]));
            grads[2] = need(2).then(|| Tensor::from_vec(dw_hh, &[g4, hs]));
        }
        if want_dx {
            // dx = sum of the blocks' terms in block order, rows from da's order to the sequence layout.
            let mut terms = after.iter_mut().map(|out| std::mem::take(&mut out.dx));
            let mut dx = terms.next().unwrap_or_else(|| vec![zero; rows * features]);
            for t in terms {
                ew::add_assign(&mut dx, &t);
            }
            let mut dx_seq = Vec::with_capacity(rows * features);
            for r in 0..rows {
                let (s, b) = lay.step_of_row(r);
                let q = (lay.t_len - 1 - s) * n + b;
                dx_seq.extend_from_slice(&dx[q * features..][..features]);
            }
            grads[0] = Some(Tensor::from_vec(dx_seq, &lay.shape(features)));
        }
        if need(3) {
            // dh0 = sum_k P_k of the last processed step (forward step 0).
            let mut dh0 = vec![zero; n * hs];
            if lay.t_len > 0 {
                for k in 0..nb {
                    ew::add_assign(&mut dh0, &ex.slot(k, lay.t_len - 1));
                }
            }
            grads[3] = Some(Tensor::from_vec(dh0, &[n, hs]));
        }
        if need(4) {
            let mut dc0 = vec![zero; n * hs];
            bl.convert(&dc, &mut dc0, n, true);
            grads[4] = Some(Tensor::from_vec(dc0, &[n, hs]));
        }
        if want_db {
            let dbp: Vec<T> = after.iter().flat_map(|out| out.db.iter().copied()).collect();
            let db = Tensor::from_vec(permute_rows(&dbp, 1, &perm, true), &[g4]);
            grads[5] = need(5).then(|| db.clone());
            grads[6] = need(6).then_some(db);
        }
        grads
    }
    /// BPTT as tensor ops over a forward recomputed with a graph (under `create_graph`).
    fn backward_recorded(&self, dy: &Tensor, needs: &[bool]) -> InputGrads {
        let (lay, h) = (self.lay, self.hidden);
        let x = if lay.batch_first { self.x.transpose(0, 1) } else { self.x.clone() };
        let mut gx = x.matmul(&self.w_ih.t());
        if let Some((bi, bh)) = &self.bias {
            gx = gx + bi + bh;
        }
        let (dy_y, dc_n) = if self.with_state {
            let rh = lay.rows() * h;
            (dy.narrow(0, 0, rh).reshape(lay.shape(h)), Some(dy.narrow(0, rh, lay.n * h).reshape([lay.n, h])))
        } else {
            (dy.clone(), None)
        };
        let dy_tm = if lay.batch_first { dy_y.transpose(0, 1) } else { dy_y };
        let w_t = self.w_hh.t();
        // Recompute the forward with a graph, keeping what the backward needs per step.
        struct Step {
            i: Tensor,
            f: Tensor,
            g: Tensor,
            o: Tensor,
            tc: Tensor,
            c_prev: Tensor,
            h_prev: Tensor,
        }
        let (mut hs, mut cs) = (self.h0.clone(), self.c0.clone());
        let mut steps: Vec<Option<Step>> = (0..lay.t_len).map(|_| None).collect();
        for s in 0..lay.t_len {
            let t = lay.time(s);
            let gates = gx.narrow(0, t, 1).squeeze(0) + hs.matmul(&w_t);
            let ch = gates.chunk(4, -1);
            let (i, f, g, o) = (ch[0].sigmoid(), ch[1].sigmoid(), ch[2].tanh(), ch[3].sigmoid());
            let c = &f * &cs + &i * &g;
            let tc = c.tanh();
            let h_new = &o * &tc;
            steps[t] = Some(Step { i, f, g, o, tc, c_prev: cs, h_prev: hs });
            hs = h_new;
            cs = c;
        }
        let mut dh_next = self.h0.zeros_like();
        let mut dc_next = dc_n.unwrap_or_else(|| self.c0.zeros_like());
        let mut dgx: Vec<Option<Tensor>> = vec![None; lay.t_len];
        let mut dw: Option<Tensor> = None;
        for s in (0..lay.t_len).rev() {
            let t = lay.time(s);
            let st = steps[t].as_ref().unwrap_or_else(|| unreachable!("every step was recomputed"));
            let dh = dy_tm.narrow(0, t, 1).squeeze(0) + &dh_next;
            let dc = &dc_next + &dh * &st.o * (1.0 - &st.tc * &st.tc);
            let da = Tensor::cat(
                &[
                    &(&dc * &st.g * &st.i * (1.0 - &st.i)),
                    &(&dc * &st.c_prev * &st.f * (1.0 - &st.f)),
                    &(&dc * &st.i * (1.0 - &st.g * &st.g)),
                    &(&dh * &st.tc * &st.o * (1.0 - &st.o)),
                ],
                -1,
            );
            dc_next = &dc * &st.f;
            dh_next = da.matmul(&self.w_hh);
            let dw_t = da.t().matmul(&st.h_prev);
            dw = Some(match dw {
                Some(acc) => acc + dw_t,
                None => dw_t,
            });
            dgx[t] = Some(da);
        }
        let dgx: Vec<Tensor> = dgx.into_iter().flatten().collect();
        let dgx = Tensor::stack(&dgx.iter().collect::<Vec<_>>(), 0); // [T, N, 4H]
        let need = |k: usize| needs.get(k).copied().unwrap_or(false);
        let mut grads: InputGrads = vec![None; needs.len()];
        if need(0) {
            let dx = dgx.matmul(&self.w_ih);
            grads[0] = Some(if lay.batch_first { dx.transpose(0, 1) } else { dx });
        }
        if need(1) {
            let features = self.w_ih.size(1);
            grads[1] = Some(dgx.reshape([lay.rows(), 4 * h]).t().matmul(&x.reshape([lay.rows(), features])));
        }
        grads[2] = need(2).then(|| dw.unwrap_or_else(|| self.w_hh.zeros_like()));
        grads[3] = need(3).then_some(dh_next);
        grads[4] = need(4).then_some(dc_next);
        if need(5) || need(6) {
            let db = dgx.sum_dims(&[0, 1], false);
            grads[5] = need(5).then(|| db.clone());
            grads[6] = need(6).then_some(db);
        }
        grads
    }
}

impl Backward for LstmSequenceBackward {
    fn name(&self) -> &'static str {
        "lstm_sequence"
    }

    fn backward(&self, dy: &Tensor, needs: &[bool]) -> crate::autograd::Grads {
        if is_grad_enabled() {
            self.backward_recorded(dy, needs).into()
        } else {
            crate::dispatch_float!(dy.dtype(), "lstm_sequence", T => self.backward_fused::<T>(dy, needs).into())
        }
    }

    fn saved_bytes(&self) -> usize {
        let s = &self.saved;
        let blocks = |v: &[Tensor]| v.iter().map(Tensor::numel).sum::<usize>();
        (blocks(&s.act) + blocks(&s.c) + blocks(&s.tc) + blocks(&s.y))
            * s.c.first().map_or(0, |t| t.dtype().size_in_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{gradcheck, gradgradcheck, DType, GradcheckOptions};

    /// x, w_ih, w_hh, h0, c0, b_ih, b_hh for T = 3, N = 2, I = 3, H = 2 (x batch-first if asked).
    fn inputs(batch_first: bool) -> Vec<Tensor> {
        crate::manual_seed(3);
        let r = |s: &[usize], k: f64| (Tensor::randn(s).to_dtype(DType::F64) * k).detach().requires_grad_();
        let x = if batch_first { r(&[2, 3, 3], 1.0) } else { r(&[3, 2, 3], 1.0) };
        vec![x, r(&[8, 3], 0.5), r(&[8, 2], 0.5), r(&[2, 2], 1.0), r(&[2, 2], 1.0), r(&[8], 0.5), r(&[8], 0.5)]
    }

    fn args(ts: &[Tensor], bias: bool, reverse: bool, batch_first: bool, with_state: bool) -> LstmArgs<'_> {
        LstmArgs {
            x: &ts[0],
            w_ih: &ts[1],
            w_hh: &ts[2],
            bias: bias.then(|| (&ts[5], &ts[6])),
            h0: &ts[3],
            c0: &ts[4],
            reverse,
            batch_first,
            with_state,
        }
    }

    fn configs() -> Vec<(bool, bool, bool, bool)> {
        let mut v = Vec::new();
        for bias in [true, false] {
            for reverse in [false, true] {
                for batch_first in [false, true] {
                    for with_state in [false, true] {
                        v.push((bias, reverse, batch_first, with_state));
                    }
                }
            }
        }
        v
    }

    /// The fused op with hidden-unit blocks of `unit` (H = 2: `unit` 2 is one block, 1 is two).
    fn blocked(a: &LstmArgs, unit: usize) -> Tensor {
        lstm_sequence_blocked(a, Blocks { h: a.h0.size(-1), unit })
    }

    #[test]
    fn blocks_partition_units_and_permutation_is_a_bijection() {
        let bl = Blocks { h: 5, unit: 2 };
        assert_eq!(bl.count(), 3);
        assert_eq!((0..3).map(|k| bl.width(k)).collect::<Vec<_>>(), [2, 2, 1]);
        let p = bl.permutation();
        assert_eq!(&p[..8], &[0, 1, 5, 6, 10, 11, 15, 16]);
        let mut sorted = p.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..20).collect::<Vec<_>>());
        let m: Vec<f64> = (0..40).map(f64::from).collect();
        assert_eq!(permute_rows(&permute_rows(&m, 2, &p, false), 2, &p, true), m);
        let nat: Vec<f64> = (0..15).map(f64::from).collect();
        let (mut b, mut back) = (vec![0.0; 15], vec![0.0; 15]);
        bl.convert(&nat, &mut b, 3, false);
        assert_eq!(&b[..6], &[0.0, 1.0, 5.0, 6.0, 10.0, 11.0]);
        bl.convert(&b, &mut back, 3, true);
        assert_eq!(back, nat);
        assert_eq!(Blocks::for_hidden(256).count(), 2);
        assert_eq!(Blocks::for_hidden(8).count(), 1);
    }

    #[test]
    fn fused_sequence_with_three_blocks_matches_composition() {
        crate::manual_seed(5);
        let r = |s: &[usize], k: f64| (Tensor::randn(s).to_dtype(DType::F64) * k).detach().requires_grad_();
        let ts = vec![
            r(&[3, 4, 3], 1.0),
            r(&[20, 3], 0.5),
            r(&[20, 5], 0.5),
            r(&[3, 5], 1.0),
            r(&[3, 5], 1.0),
            r(&[20], 0.5),
            r(&[20], 0.5),
        ];
        for (reverse, with_state) in [(false, true), (true, false)] {
            let a = args(&ts, true, reverse, true, with_state);
            let fused = blocked(&a, 2);
            let composed = lstm_sequence_composed(&a);
            assert!((&fused - &composed).abs().max().item() < 1e-14);
            let refs: Vec<&Tensor> = ts.iter().collect();
            let w = Tensor::randn(fused.shape()).to_dtype(DType::F64);
            let gf = crate::grad(&[&(&fused * &w).sum()], &refs, None, false);
            let gc = crate::grad(&[&(&composed * &w).sum()], &refs, None, false);
            for (k, (a, b)) in gf.iter().zip(&gc).enumerate() {
                let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
                assert!((a - b).abs().max().item() < 1e-13, "gradient of input {k}");
            }
        }
    }

    /// The blocks run on as many threads as the pool has (lockstep), but every value depends only on the
    /// blocks: outputs and all gradients are bitwise equal on 1, 2 and 3 threads (f32, 3 blocks with a
    /// partial one, so one thread runs two blocks on 2 threads).
    #[test]
    fn fused_sequence_is_bitwise_equal_for_any_thread_count() {
        crate::manual_seed(11);
        let r = |s: &[usize]| (Tensor::randn(s) * 0.5).detach().requires_grad_();
        let ts = vec![r(&[4, 6, 5]), r(&[28, 5]), r(&[28, 7]), r(&[4, 7]), r(&[4, 7]), r(&[28]), r(&[28])];
        let refs: Vec<&Tensor> = ts.iter().collect();
        let run = |threads: usize| -> Vec<Vec<f32>> {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let y = blocked(&args(&ts, true, false, true, true), 3);
                let w = Tensor::linspace(-1.0, 1.0, y.numel()).reshape(y.shape());
                let g = crate::grad(&[&(&y * &w).sum()], &refs, None, false);
                let mut out = vec![y.to_vec::<f32>()];
                out.extend(g.iter().map(|g| g.as_ref().unwrap().to_vec::<f32>()));
                out
            })
        };
        let one = run(1);
        for threads in [2, 3] {
            assert!(run(threads) == one, "{threads} threads differ from 1");
        }
    }

    #[test]
    fn fused_sequence_matches_composition_values_and_gradients() {
        for ((bias, reverse, batch_first, with_state), unit) in configs().into_iter().flat_map(|c| [(c, 2), (c, 1)]) {
            let what =
                format!("bias={bias} reverse={reverse} batch_first={batch_first} with_state={with_state} unit={unit}");
            let ts = inputs(batch_first);
            let a = args(&ts, bias, reverse, batch_first, with_state);
            let fused = blocked(&a, unit);
            let composed = lstm_sequence_composed(&a);
            assert_eq!(fused.shape(), composed.shape(), "{what}");
            assert!((&fused - &composed).abs().max().item() < 1e-14, "forward, {what}");
            let refs: Vec<&Tensor> = ts.iter().take(if bias { 7 } else { 5 }).collect();
            let w = Tensor::randn(fused.shape()).to_dtype(DType::F64);
            let gf = crate::grad(&[&(&fused * &w).sum()], &refs, None, false);
            let gc = crate::grad(&[&(&composed * &w).sum()], &refs, None, false);
            for (k, (a, b)) in gf.iter().zip(&gc).enumerate() {
                let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
                assert_eq!(a.shape(), b.shape(), "gradient of input {k}, {what}");
                assert!((a - b).abs().max().item() < 1e-13, "gradient of input {k}, {what}");
            }
        }
    }

    #[test]
    fn fused_sequence_f32_matches_f64_composition() {
        let ts = inputs(true);
        let t32: Vec<Tensor> = ts.iter().map(|t| t.detach().to_dtype(DType::F32).requires_grad_()).collect();
        let fused = lstm_sequence(&args(&t32, true, false, true, true));
        let composed = lstm_sequence_composed(&args(&ts, true, false, true, true));
        assert!((fused.to_dtype(DType::F64) - &composed).abs().max().item() < 1e-5);
        fused.sum().backward();
        composed.sum().backward();
        for (a, b) in t32.iter().zip(&ts) {
            let d = (a.grad().unwrap().to_dtype(DType::F64) - b.grad().unwrap()).abs().max().item();
            assert!(d < 1e-5, "gradient differs by {d}");
        }
    }

    #[test]
    fn fused_sequence_gradcheck_and_second_order() {
        for (bias, reverse, batch_first, with_state) in [(true, false, false, false), (true, true, true, true)] {
            let ts = inputs(batch_first);
            let f = |t: &[Tensor]| blocked(&args(t, bias, reverse, batch_first, with_state), 1);
            gradcheck(f, &ts, GradcheckOptions::default()).unwrap();
            let g = |t: &[Tensor]| f(t).powf(2.0).sum();
            gradgradcheck(g, &ts, GradcheckOptions::default()).unwrap();
        }
    }
}
