//! Fused optimizer updates, following PyTorch's single-tensor (`foreach=False`) formulas operation by
//! operation, including which steps PyTorch's vectorized (AVX2) CPU kernels fuse into an FMA (its scalar
//! tail loop, for the last < 8 elements of a tensor, rounds some of them separately).
//!
//! Adam / AdamW (`torch.optim.adam._single_tensor_adam`), hyper-parameters in f64 like Python floats:
//! ```text
//! Adam:   g = g + wd·p                       (add(alpha=wd): fmadd)
//! AdamW:  p = p · (1 - lr·wd)
//! m = lerp(m, g, 1-β1)                       (lerp_: fmadd(w, g-m, m) if w < 0.5 else fmadd(w-1, g-m, g))
//! v = v·β2;  v = v + ((1-β2)·g)·g            (mul_, addcmul_)
//! bc1 = 1 - β1^step;  bc2 = 1 - β2^step      (f64)
//! step_size = lr / bc1;  bc2s = √bc2         (f64, then rounded to T)
//! amsgrad: vmax = max(vmax, v), use vmax for v below
//! denom = √v / bc2s + eps
//! p = p + ((-step_size)·m) / denom           (addcdiv_)
//! ```
//! SGD with momentum (`torch.optim.sgd._single_tensor_sgd`):
//! ```text
//! d = g (or -g when maximize);  d = d + wd·p           (fmadd)
//! momentum ≠ 0:  first step: buf = d;  else buf = buf·μ;  buf = buf + (1-dampening)·d   (fmadd)
//!                nesterov: d = d + μ·buf (fmadd) else d = buf
//! p = p + (-lr)·d                                      (fmadd)
//! ```

use rayon::prelude::*;

use super::{check_len, Float, PAR_CHUNK, PAR_THRESHOLD_TRANSCENDENTAL};

/// Adam / AdamW hyper-parameters for one step (f64, like PyTorch's Python floats).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamHyper {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay β1.
    pub beta1: f64,
    /// Second-moment decay β2.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
    /// Weight decay (L2 for Adam, decoupled for AdamW).
    pub weight_decay: f64,
    /// `true` = AdamW (decoupled weight decay).
    pub decoupled: bool,
    /// AMSGrad: keep the running maximum of `v`.
    pub amsgrad: bool,
    /// The step number, starting at 1 for the first update.
    pub step: u64,
}

impl Default for AdamHyper {
    fn default() -> Self {
        AdamHyper {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            amsgrad: false,
            step: 1,
        }
    }
}

struct AdamConsts<T> {
    wd: T,
    decay: T,
    w1: T,
    w1_minus_one: T,
    w1_small: bool,
    beta2: T,
    one_minus_beta2: T,
    bc2s: T,
    eps: T,
    neg_step_size: T,
    decoupled: bool,
    l2: bool,
}

fn adam_chunk<T: Float>(p: &mut [T], g: &[T], m: &mut [T], v: &mut [T], mut vmax: Option<&mut [T]>, c: &AdamConsts<T>) {
    for i in 0..p.len() {
        let mut pi = p[i];
        let mut gi = g[i];
        if c.l2 {
            gi = c.wd.mul_add(pi, gi);
        }
        if c.decoupled {
            pi *= c.decay;
        }
        // PyTorch's vectorized lerp: fmadd(w, end - start, start) for w < 0.5, else
        // fmadd(w - 1, end - start, end).
        let mi = if c.w1_small { c.w1.mul_add(gi - m[i], m[i]) } else { c.w1_minus_one.mul_add(gi - m[i], gi) };
        m[i] = mi;
        let vi = v[i] * c.beta2 + c.one_minus_beta2 * gi * gi;
        v[i] = vi;
        let vu = match vmax.as_deref_mut() {
            Some(mx) => {
                // torch.maximum: NaN propagates.
                let nv = if mx[i].is_nan() || vi.is_nan() {
                    T::NAN
                } else if mx[i] > vi {
                    mx[i]
                } else {
                    vi
                };
                mx[i] = nv;
                nv
            }
            None => vi,
        };
        let denom = vu.sqrt() / c.bc2s + c.eps;
        p[i] = pi + c.neg_step_size * mi / denom;
    }
}

/// One fused Adam/AdamW update of `param` in place (and of the moment buffers).
///
/// # Shapes
/// All slices have the same length; `max_exp_avg_sq` is required iff `hp.amsgrad`.
///
/// # Panics
/// On a length mismatch, `hp.step == 0`, or `amsgrad` without a `max_exp_avg_sq` buffer.
#[track_caller]
pub fn adam_step<T: Float>(
    param: &mut [T],
    grad: &[T],
    exp_avg: &mut [T],
    exp_avg_sq: &mut [T],
    max_exp_avg_sq: Option<&mut [T]>,
    hp: &AdamHyper,
) {
    let n = param.len();
    check_len("adam_step", "grad", grad.len(), n);
    check_len("adam_step", "exp_avg", exp_avg.len(), n);
    check_len("adam_step", "exp_avg_sq", exp_avg_sq.len(), n);
    assert!(hp.step >= 1, "adam_step: step must start at 1, got 0");
    if hp.amsgrad {
        match &max_exp_avg_sq {
            Some(mx) => check_len("adam_step", "max_exp_avg_sq", mx.len(), n),
            None => panic!("adam_step: amsgrad = true needs a max_exp_avg_sq buffer"),
        }
    }
    let step = hp.step as f64;
    let bc1 = 1.0 - hp.beta1.powf(step);
    let bc2 = 1.0 - hp.beta2.powf(step);
    let c = AdamConsts {
        wd: T::from_f64(hp.weight_decay),
        decay: T::from_f64(1.0 - hp.lr * hp.weight_decay),
        w1: T::from_f64(1.0 - hp.beta1),
        w1_minus_one: T::from_f64(1.0 - hp.beta1) - T::ONE,
        w1_small: (1.0 - hp.beta1).abs() < 0.5,
        beta2: T::from_f64(hp.beta2),
        one_minus_beta2: T::from_f64(1.0 - hp.beta2),
        bc2s: T::from_f64(bc2.sqrt()),
        eps: T::from_f64(hp.eps),
        neg_step_size: T::from_f64(-(hp.lr / bc1)),
        decoupled: hp.decoupled && hp.weight_decay != 0.0,
        l2: !hp.decoupled && hp.weight_decay != 0.0,
    };
    let vmax = if hp.amsgrad { max_exp_avg_sq } else { None };
    if n < PAR_THRESHOLD_TRANSCENDENTAL || rayon::current_num_threads() == 1 {
        adam_chunk(param, grad, exp_avg, exp_avg_sq, vmax, &c);
        return;
    }
    let it = param
        .par_chunks_mut(PAR_CHUNK)
        .zip(grad.par_chunks(PAR_CHUNK))
        .zip(exp_avg.par_chunks_mut(PAR_CHUNK))
        .zip(exp_avg_sq.par_chunks_mut(PAR_CHUNK));
    match vmax {
        Some(mx) => {
            it.zip(mx.par_chunks_mut(PAR_CHUNK)).for_each(|((((p, g), m), v), x)| adam_chunk(p, g, m, v, Some(x), &c))
        }
        None => it.for_each(|(((p, g), m), v)| adam_chunk(p, g, m, v, None, &c)),
    }
}

/// SGD hyper-parameters (f64, like PyTorch's Python floats).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct SgdHyper {
    /// Learning rate.
    pub lr: f64,
    /// Momentum μ (0 = plain SGD, no buffer used).
    pub momentum: f64,
    /// Dampening of the momentum update.
    pub dampening: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Maximize instead of minimize.
    pub maximize: bool,
}

/// One fused SGD (with optional momentum) update of `param` in place. `first_step` says whether the
/// momentum buffer is still uninitialized (PyTorch's `buf is None`: then `buf = d`).
///
/// # Panics
/// On a length mismatch, or `momentum ≠ 0` without a buffer.
#[track_caller]
pub fn sgd_momentum_step<T: Float>(
    param: &mut [T],
    grad: &[T],
    momentum_buf: Option<&mut [T]>,
    hp: &SgdHyper,
    first_step: bool,
) {
    let n = param.len();
    check_len("sgd_momentum_step", "grad", grad.len(), n);
    let wd = T::from_f64(hp.weight_decay);
    let mu = T::from_f64(hp.momentum);
    let damp = T::from_f64(1.0 - hp.dampening);
    let neg_lr = T::from_f64(-hp.lr);
    let use_wd = hp.weight_decay != 0.0;
    let maximize = hp.maximize;
    let nesterov = hp.nesterov;
    let d_of = move |g: T, p: T| {
        let d = if maximize { -g } else { g };
        if use_wd {
            wd.mul_add(p, d)
        } else {
            d
        }
    };
    if hp.momentum == 0.0 {
        for (p, &g) in param.iter_mut().zip(grad) {
            *p = d_of(g, *p).mul_add(neg_lr, *p);
        }
        return;
    }
    let buf = match momentum_buf {
        Some(b) => b,
        None => panic!("sgd_momentum_step: momentum = {} needs a momentum buffer", hp.momentum),
    };
    check_len("sgd_momentum_step", "momentum_buf", buf.len(), n);
    for ((p, &g), b) in param.iter_mut().zip(grad).zip(buf.iter_mut()) {
        let d = d_of(g, *p);
        let nb = if first_step { d } else { damp.mul_add(d, *b * mu) };
        *b = nb;
        let d = if nesterov { mu.mul_add(nb, d) } else { nb };
        *p = d.mul_add(neg_lr, *p);
    }
}
