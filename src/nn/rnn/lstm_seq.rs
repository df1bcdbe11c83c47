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
//! forward:
//! ```text
//! G = x W_ih^T + b_ih + b_hh                       one GEMM over all T*N rows, then per step:
//! [a_i a_f a_g a_o] = G[t] + h_prev W_hh^T          one GEMM into the rows of step t of G
//! i, f, o = sigmoid(a_i, a_f, a_o)   g = tanh(a_g)
//! c_t = f * c_prev + i * g           h_t = o * tanh(c_t)
//! ```
//! backward, steps in reverse processing order, carrying dh~ and dc~ (zero before the last step; dc~
//! starts at dc_n with `with_state`):
//! ```text
//! dh = dy[t] + dh~                   dc = dc~ + dh * o * (1 - tanh(c_t)^2)
//! da_i = dc * g * i (1 - i)   da_f = dc * c_prev * f (1 - f)   da_g = dc * i (1 - g^2)   da_o = dh * tanh(c_t) * o (1 - o)
//! dc~ = dc * f                       dh~ = da[t] W_hh            (one GEMM per step)
//! after the loop, one GEMM each over all T*N rows of dA = [da_i da_f da_g da_o]:
//! dW_hh = dA^T H_prev    dW_ih = dA^T x    dx = dA W_ih    db_ih = db_hh = column sums of dA
//! dh0 = dh~, dc0 = dc~
//! ```
//! The forward saves the activations `i f g o`, `c_t`, `tanh(c_t)` and `[x | h_prev]` of every row (7H + I values).
//! A plain backward runs the elementwise part in one loop per step over them; under `create_graph` the
//! same formulas run as tensor ops over a recomputed forward, so second derivatives are exact (tested
//! with gradgradcheck).

use crate::autograd::{is_grad_enabled, no_grad, Backward};
use crate::error::panic_msg;
use crate::ops::fast::Kernel;
use crate::tensor::{Buffer, Element, Tensor};
use std::sync::RwLockReadGuard;
use tensorgrad_kernels::elementwise::{self as ew, Unary};
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
    let _p = crate::profile::op_scope("lstm_sequence");
    let (lay, h, features) = check(a);
    let (y, saved) =
        no_grad(|| crate::dispatch_float!(a.x.dtype(), "lstm_sequence", T => forward::<T>(a, lay, h, features)));
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
}

/// `C = A B + beta C` (A `m x k`, B `k x n`, each from its (0, 0) element with row and column strides).
#[allow(clippy::too_many_arguments)]
fn gemm<T: Kernel>(
    (m, k, n): (usize, usize, usize),
    a: &[T],
    (rsa, csa): (usize, usize),
    b: &[T],
    (rsb, csb): (usize, usize),
    beta: T,
    c: &mut [T],
    (rsc, csc): (usize, usize),
) {
    if m > 0 && n > 0 {
        T::gemm(m, k, n, <T as KFloat>::ONE, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc);
    }
}

/// A row stride of at least `width` elements for a buffer whose rows the per-step GEMMs read `bs` rows
/// apart (`bs`: the batch stride), chosen so that both `ld` and `bs * ld` spread 12 consecutive rows over
/// many L1 sets. The GEMM reads a row-major A in place only then (otherwise it copies A: rows a multiple
/// of 4 KiB apart would evict each other from L1), e.g. batch-first rows 64 x 1040 floats apart are.
fn spread_ld(width: usize, bs: usize, size: usize) -> usize {
    let spread = |stride: usize| {
        let mut seen = 0u64;
        for i in 0..12 {
            seen |= 1 << ((i * stride * size / 64) % 64);
        }
        seen.count_ones() >= 8
    };
    // Not every `bs` allows it (a large power of two does not): then the GEMM copies A.
    (width..width + 64).find(|&ld| spread(ld) && spread(bs * ld)).unwrap_or(width)
}

/// Runs `f` on a worker of the rayon pool (entering it once, if called from outside): the sequence loops
/// call the GEMM once per step, and a GEMM called from outside the pool enters it on every call (~5-9 us
/// each, kernels/README.md), one called from a worker runs its parallel regions directly. Which thread
/// runs a product never changes its values.
fn in_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| f())
}

/// What the forward keeps for the plain backward, each row `(t, n)` in the sequence layout.
struct Saved {
    /// `[rows, 4H]`: i, f, g, o.
    act: Tensor,
    /// `[rows, H]`: c_t.
    c: Tensor,
    /// `[rows, H]`: tanh(c_t).
    tc: Tensor,
    /// `[rows, xld]`, `xld >= I + H`: x, and h_prev, the hidden state the row's step started from (the
    /// columns past `I + H` are padding).
    xh: Tensor,
}

fn forward<T: Kernel>(a: &LstmArgs, lay: SeqLayout, hs: usize, features: usize) -> (Tensor, Saved) {
    let (rows, n, g4) = (lay.rows(), lay.n, 4 * hs);
    let (zero, one) = (<T as KFloat>::ZERO, <T as KFloat>::ONE);
    // act = x W_ih^T + b_ih + b_hh over all rows; the steps then add h_prev W_hh^T and apply the gates.
    let mut act = vec![zero; rows * g4];
    let beta = match a.bias {
        Some((bi, bh)) => {
            let b: Vec<T> = bi.to_vec::<T>().into_iter().zip(bh.to_vec::<T>()).map(|(p, q)| p + q).collect();
            act.chunks_exact_mut(g4).for_each(|r| r.copy_from_slice(&b));
            one
        }
        None => zero,
    };
    // xh [rows, I + H]: each row's input next to the hidden state its step starts from, so the backward
    // gets dW_ih and dW_hh from one GEMM (dA^T xh) and packs dA once.
    // Rows are `xld >= I + H` apart, so that the per-step GEMM reads h_prev in place (see `spread_ld`).
    let xw = features + hs;
    let bs = lay.batch_stride();
    let xld = spread_ld(xw, bs, std::mem::size_of::<T>());
    let mut xh = vec![zero; rows * xld];
    let (x, w_ih) = (a.x.contiguous(), a.w_ih.contiguous());
    x.with_slice(|xs: &[T]| {
        for (dst, src) in xh.chunks_exact_mut(xld).zip(xs.chunks_exact(features.max(1))) {
            dst[..features].copy_from_slice(&src[..features]);
        }
    });
    let wd = Data::of(&w_ih);
    gemm((rows, features, g4), &xh, (xld, 1), wd.get::<T>(), (1, features), beta, &mut act, (g4, 1));
    // W_hh^T [H, 4H] once per sequence, so the per-step GEMM packs it with row copies.
    let w_t = a.w_hh.t().contiguous();
    let wt = Data::of(&w_t);
    let wt = wt.get::<T>();
    let mut c = vec![zero; rows * hs];
    let mut tc = vec![zero; rows * hs];
    let mut y = vec![zero; rows * hs + if a.with_state { n * hs } else { 0 }];
    let mut c_state = a.c0.to_vec::<T>();
    let h0 = a.h0.to_vec::<T>();
    if lay.t_len > 0 {
        for b in 0..n {
            xh[lay.row(lay.time(0), b) * xld + features..][..hs].copy_from_slice(&h0[b * hs..][..hs]);
        }
    }
    in_pool(|| {
        for s in 0..lay.t_len {
            let r0 = lay.row(lay.time(s), 0);
            let hp = &xh[r0 * xld + features..];
            gemm((n, hs, g4), hp, (bs * xld, 1), wt, (g4, 1), one, &mut act[r0 * g4..], (bs * g4, 1));
            for b in 0..n {
                let row = r0 + b * bs;
                let gates = &mut act[row * g4..][..g4];
                ew::unary_inplace(Unary::Sigmoid, &mut gates[..2 * hs]);
                ew::unary_inplace(Unary::Tanh, &mut gates[2 * hs..3 * hs]);
                ew::unary_inplace(Unary::Sigmoid, &mut gates[3 * hs..]);
                let (gi, rest) = gates.split_at(hs);
                let (gf, rest) = rest.split_at(hs);
                let (gg, go) = rest.split_at(hs);
                let cs = &mut c_state[b * hs..][..hs];
                let cr = &mut c[row * hs..][..hs];
                for j in 0..hs {
                    let v = gf[j] * cs[j] + gi[j] * gg[j];
                    cr[j] = v;
                    cs[j] = v;
                }
                let tr = &mut tc[row * hs..][..hs];
                ew::unary(Unary::Tanh, cr, tr);
                let yr = &mut y[row * hs..][..hs];
                for j in 0..hs {
                    yr[j] = go[j] * tr[j];
                }
                if s + 1 < lay.t_len {
                    xh[lay.row(lay.time(s + 1), b) * xld + features..][..hs].copy_from_slice(yr);
                }
            }
        }
    });
    if a.with_state {
        y[rows * hs..].copy_from_slice(&c_state);
    }
    let y = if a.with_state {
        let len = y.len();
        Tensor::from_vec(y, &[len])
    } else {
        Tensor::from_vec(y, &lay.shape(hs))
    };
    let saved = Saved {
        act: Tensor::from_vec(act, &[rows, g4]),
        c: Tensor::from_vec(c, &[rows, hs]),
        tc: Tensor::from_vec(tc, &[rows, hs]),
        xh: Tensor::from_vec(xh, &[rows, xld]),
    };
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
type Grads = Vec<Option<Tensor>>;

impl LstmSequenceBackward {
    /// BPTT with the elementwise part fused into one loop per step (plain backward).
    fn backward_fused<T: Kernel>(&self, dy: &Tensor, needs: &[bool]) -> Grads {
        let (lay, hs) = (self.lay, self.hidden);
        let (rows, n, g4, features) = (lay.rows(), lay.n, 4 * hs, self.w_ih.size(1));
        let zero = <T as KFloat>::ZERO;
        let one = <T as KFloat>::ONE;
        let dy = dy.contiguous();
        let dyd = Data::of(&dy);
        let dyv = dyd.get::<T>();
        let (act, c, tc, xh) =
            (Data::of(&self.saved.act), Data::of(&self.saved.c), Data::of(&self.saved.tc), Data::of(&self.saved.xh));
        let (act, c, tc, xh) = (act.get::<T>(), c.get::<T>(), tc.get::<T>(), xh.get::<T>());
        let xw = features + hs;
        let w_hh = self.w_hh.detach().contiguous();
        let whd = Data::of(&w_hh);
        let w_hh = whd.get::<T>();
        let c0 = self.c0.to_vec::<T>();
        let bs = lay.batch_stride();
        // dA rows are `ld` apart: a row stride off multiples of 4 KiB lets the GEMMs read dA in place.
        let ld = spread_ld(g4, bs, std::mem::size_of::<T>());
        let mut da = vec![zero; rows * ld];
        let mut dh_next = vec![zero; n * hs];
        let mut dc_next = if self.with_state { dyv[rows * hs..].to_vec() } else { vec![zero; n * hs] };
        in_pool(|| {
            for s in (0..lay.t_len).rev() {
                let r0 = lay.row(lay.time(s), 0);
                for b in 0..n {
                    let row = r0 + b * bs;
                    let gates = &act[row * g4..][..g4];
                    let (gi, rest) = gates.split_at(hs);
                    let (gf, rest) = rest.split_at(hs);
                    let (gg, go) = rest.split_at(hs);
                    let cp = if s == 0 { &c0[b * hs..][..hs] } else { &c[lay.row(lay.time(s - 1), b) * hs..][..hs] };
                    let tr = &tc[row * hs..][..hs];
                    let dyr = &dyv[row * hs..][..hs];
                    let dhn = &dh_next[b * hs..][..hs];
                    let dcn = &mut dc_next[b * hs..][..hs];
                    let dar = &mut da[row * ld..][..g4];
                    let (dai, rest) = dar.split_at_mut(hs);
                    let (daf, rest) = rest.split_at_mut(hs);
                    let (dag, dao) = rest.split_at_mut(hs);
                    for j in 0..hs {
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
                // dh~ = da[t] W_hh (needed by the step before, or as dh0 after the first step).
                gemm((n, g4, hs), &da[r0 * ld..], (bs * ld, 1), w_hh, (hs, 1), zero, &mut dh_next, (hs, 1));
            }
        });
        let need = |k: usize| needs.get(k).copied().unwrap_or(false);
        let mut grads: Grads = vec![None; needs.len()];
        // [dW_ih | dW_hh] = dA^T xh: element (i, r) of the [4H, rows] matrix dA^T is da[r * ld + i].
        if need(1) || need(2) {
            let mut dw = vec![zero; g4 * xw];
            gemm((g4, rows, xw), &da, (1, ld), xh, (self.saved.xh.size(1), 1), zero, &mut dw, (xw, 1));
            let part =
                |c0: usize, w: usize| -> Vec<T> { dw.chunks_exact(xw).flat_map(|r| &r[c0..c0 + w]).copied().collect() };
            grads[1] = need(1).then(|| Tensor::from_vec(part(0, features), &[g4, features]));
            grads[2] = need(2).then(|| Tensor::from_vec(part(features, hs), &[g4, hs]));
        }
        if need(0) {
            let w_ih = self.w_ih.detach().contiguous();
            let wd = Data::of(&w_ih);
            let mut dx = vec![zero; rows * features];
            gemm((rows, g4, features), &da, (ld, 1), wd.get::<T>(), (features, 1), zero, &mut dx, (features, 1));
            grads[0] = Some(Tensor::from_vec(dx, &lay.shape(features)));
        }
        grads[3] = need(3).then(|| Tensor::from_vec(dh_next, &[n, hs]));
        grads[4] = need(4).then(|| Tensor::from_vec(dc_next, &[n, hs]));
        if need(5) || need(6) {
            let mut db = vec![zero; g4];
            for r in da.chunks_exact(ld) {
                ew::add_assign(&mut db, &r[..g4]);
            }
            let db = Tensor::from_vec(db, &[g4]);
            grads[5] = need(5).then(|| db.clone());
            grads[6] = need(6).then_some(db);
        }
        grads
    }

    /// BPTT as tensor ops over a forward recomputed with a graph (under `create_graph`).
    fn backward_recorded(&self, dy: &Tensor, needs: &[bool]) -> Grads {
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
        let mut grads: Grads = vec![None; needs.len()];
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
        (s.act.numel() + s.c.numel() + s.tc.numel() + s.xh.numel()) * s.act.dtype().size_in_bytes()
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

    #[test]
    fn fused_sequence_matches_composition_values_and_gradients() {
        for (bias, reverse, batch_first, with_state) in configs() {
            let what = format!("bias={bias} reverse={reverse} batch_first={batch_first} with_state={with_state}");
            let ts = inputs(batch_first);
            let a = args(&ts, bias, reverse, batch_first, with_state);
            let fused = lstm_sequence(&a);
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
            let f = |t: &[Tensor]| lstm_sequence(&args(t, bias, reverse, batch_first, with_state));
            gradcheck(f, &ts, GradcheckOptions::default()).unwrap();
            let g = |t: &[Tensor]| f(t).powf(2.0).sum();
            gradgradcheck(g, &ts, GradcheckOptions::default()).unwrap();
        }
    }
}
