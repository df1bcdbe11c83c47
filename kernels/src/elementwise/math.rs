//! Fast vectorized transcendental functions on `wide::f32x8`, plus the scalar `f64` references.
//!
//! All f32 functions are branch-free over the 8 lanes (both sides of a piecewise definition are computed and
//! blended) so that every lane's result depends only on that lane's input: a tail padded into a vector gives
//! exactly the same bits as a full vector, which keeps results independent of slice length and threading.
//!
//! # Math
//! - `exp(x)`: `n = rne(x·log2 e)`, `r = x - n·ln2` (Cody–Waite, two FMA steps, exact for |n| ≤ 150),
//!   `e^r ≈ 1 + r + r²·P5(r)` (Cephes `expf` minimax coefficients), then `e^r · 2^⌊n/2⌋ · 2^(n-⌊n/2⌋)`:
//!   two exact power-of-two scalings so that overflow gives `inf` and results in the denormal range are
//!   rounded once. Input clamped to `[-104, 89]` (beyond: exactly `0` / `inf`).
//! - `ln(x)`: `x = m·2^e`, `m ∈ [√½, √2)`, `f = m - 1`, `ln x = f - f²/2 + f³·P8(f) + e·ln2` (Cephes
//!   `logf`); denormal inputs are scaled by `2^23` first.
//! - `tanh(x)` (fast, used by the kernels): `x·P4(x²)/Q4(x²)` on `|x| < 9.02` (minimax rational, all
//!   coefficients positive: no cancellation anywhere, in particular none near 0), `±1` beyond.
//!   `tanh_accurate8`: `|x| < 0.625`: `x + x³·P4(x²)` (Cephes `tanhf`), otherwise `t = e^{-2|x|}`,
//!   `(1 - t)/(1 + t)` with the sign of `x` (t ≤ 0.29; never `1 - 2/(e^{2x}+1)`).
//! - `sigmoid(x)`: `t = e^{-|x|}`, `σ = 1/(1+t)` for `x ≥ 0`, `t/(1+t)` for `x < 0` (accurate in both tails,
//!   including denormal results).
//! - `erf(x)`: `|x| < 1`: `x·P6(x²)`; `|x| ≥ 1`: `erfc(t) = e^{-t²}·(1/t)·Q7(1/t)` where `t²` is split exactly
//!   into `hi + lo` with an FMA so `e^{-t²} ≈ e^{-hi}(1 - lo)`; `Q7` is a minimax fit of `t·erfcx(t)`
//!   on two ranges (`[1, 2.5)`, `[2.5, 10.5]`, coefficients chosen per lane), `erf = ±(1 - erfc)`.
//! - `gelu_erf(x) = x·Φ(x)`, `Φ(x) = ½(1 + erf(x/√2))`; for `x < 0` it uses `Φ(x) = ½·erfc(|x|/√2)`
//!   (no cancellation in the left tail) with `e^{-x²/2}` computed from the exact split of `x²`, and
//!   `erfc(t) = e^{-t²}·erfcx(t)` (a degree-7 fit) for `t ∈ [0.4, 1)`.
//! - `gelu_tanh(x) = x·σ(w)`, `w = 2√(2/π)(x + 0.044715x³)` (the same as `½x(1 + tanh(w/2))` without its
//!   cancellation), with `w` carried as an unevaluated sum `w + w_lo` (FMA error-free products) so the left
//!   tail `σ(w) ≈ e^w` stays within a few ulp.
//!
//! The measured maximum errors (ulp, vs `f64` references rounded to f32) are asserted in
//! `kernels/tests/fast_math.rs` and listed in `kernels/README.md`.

use wide::bytemuck::cast;
use wide::{f32x8, i32x8};

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4; // 0x3f318000: 9 significant bits, so n·LN2_HI is exact for |n| < 2^15
const LN2_LO: f32 = -2.121_944_4e-4;

#[inline(always)]
fn splat(v: f32) -> f32x8 {
    f32x8::splat(v)
}

/// `2^n` for integer lanes `n ∈ [-126, 127]`, built from the exponent bits.
#[inline(always)]
fn pow2i(n: i32x8) -> f32x8 {
    cast((n + i32x8::splat(127)) << 23u32)
}

/// Copies the sign of `s` onto the non-negative `mag`.
#[inline(always)]
fn with_sign_of(mag: f32x8, s: f32x8) -> f32x8 {
    mag | (s & splat(-0.0))
}

/// `e^x` core for arguments already clamped to `[-104, 89]` (NaN propagates: every step keeps it).
#[inline(always)]
fn exp_core(xc: f32x8) -> f32x8 {
    let ni = (xc * splat(LOG2E)).fast_round_int();
    let n = ni.round_float();
    let r = n.mul_neg_add(splat(LN2_HI), xc);
    let r = n.mul_neg_add(splat(LN2_LO), r);
    let p = splat(1.987_569_1e-4)
        .mul_add(r, splat(1.398_199_9e-3))
        .mul_add(r, splat(8.333_452e-3))
        .mul_add(r, splat(4.166_579_6e-2))
        .mul_add(r, splat(1.666_666_5e-1))
        .mul_add(r, splat(5e-1));
    let y = p.mul_add(r * r, r) + splat(1.0);
    let n1 = ni >> 1u32;
    let n2 = ni - n1;
    y * pow2i(n1) * pow2i(n2)
}

/// `e^x` on 8 lanes. Max error 1 ulp (measured, see module docs); exact `inf`/`0` beyond the range,
/// NaN in, NaN out.
#[inline(always)]
pub fn exp8(x: f32x8) -> f32x8 {
    // vminps/vmaxps return their second operand when either is NaN: with x second, NaN flows through
    // (the rounding turns it into i32::MIN, but r stays NaN, so the product is NaN).
    let xc = splat(-104.0).fast_max(splat(89.0).fast_min(x));
    exp_core(xc)
}

/// Natural logarithm on 8 lanes: `ln(0) = -inf`, `ln(x<0) = NaN`, `ln(inf) = inf`, denormals handled.
#[inline(always)]
pub fn ln8(x: f32x8) -> f32x8 {
    let den = x.simd_lt(splat(f32::MIN_POSITIVE));
    let xs = den.select(x * splat(8_388_608.0), x);
    let ebias = den.select(splat(-23.0), splat(0.0)).fast_round_int();
    let bits: i32x8 = cast(xs);
    let e = ((bits >> 23u32) & i32x8::splat(0xff)) - i32x8::splat(127) + ebias;
    let m: f32x8 = cast((bits & i32x8::splat(0x007f_ffff)) | i32x8::splat(0x3f80_0000));
    let big = m.simd_ge(splat(std::f32::consts::SQRT_2));
    let m = big.select(m * splat(0.5), m);
    let ef = e.round_float() + (big & splat(1.0));
    let f = m - splat(1.0);
    let z = f * f;
    let p = splat(7.037_683_6e-2)
        .mul_add(f, splat(-1.151_461e-1))
        .mul_add(f, splat(1.167_699_9e-1))
        .mul_add(f, splat(-1.242_014_1e-1))
        .mul_add(f, splat(1.424_932_3e-1))
        .mul_add(f, splat(-1.666_805_8e-1))
        .mul_add(f, splat(2.000_071_4e-1))
        .mul_add(f, splat(-2.499_999_4e-1))
        .mul_add(f, splat(3.333_333e-1));
    let y = (p * f) * z;
    let y = ef.mul_add(splat(LN2_LO), y);
    let y = splat(-0.5).mul_add(z, y);
    let r = ef.mul_add(splat(LN2_HI), f + y);
    let r = x.simd_eq(splat(f32::INFINITY)).select(x, r);
    let r = x.simd_eq(splat(0.0)).select(splat(f32::NEG_INFINITY), r);
    let r = x.simd_lt(splat(0.0)).select(splat(f32::NAN), r);
    x.is_nan().select(x, r)
}

/// `ln(1 + t)` for `t ≥ 0` (used by softplus): `u = 1 + t`, `ln u - ((u - 1) - t)/u`.
#[inline(always)]
pub fn ln1p_pos8(t: f32x8) -> f32x8 {
    let u = t + splat(1.0);
    let corr = ((u - splat(1.0)) - t) / u;
    let r = ln8(u) - corr;
    u.simd_eq(splat(1.0)).select(t, r)
}

/// Hyperbolic tangent on 8 lanes, fast form (the one the kernels use): `tanh x = x·P4(x²)/Q4(x²)` on
/// `|x| < 9.02`, `±1` beyond (where tanh rounds to ±1 in f32). `P4`, `Q4` are a minimax rational fit of
/// relative error 2.3e-8 with all coefficients positive (no cancellation in the evaluation, none near 0);
/// max error 5 ulp after f32 evaluation (tested). NaN propagates, `tanh(-0) = -0`.
#[inline(always)]
pub fn tanh8(x: f32x8) -> f32x8 {
    // vminps/vmaxps keep their second operand on NaN: x goes second so NaN flows through.
    let xc = splat(-9.1).fast_max(splat(9.1).fast_min(x));
    let z = xc * xc;
    let p = splat(1.317_540_1e-8)
        .mul_add(z, splat(2.047_970_9e-5))
        .mul_add(z, splat(3.487_725_3e-3))
        .mul_add(z, splat(1.337_440_5e-1))
        .mul_add(z, splat(1.0));
    let q = splat(7.703_190_5e-7)
        .mul_add(z, splat(3.272_776_7e-4))
        .mul_add(z, splat(2.584_706_8e-2))
        .mul_add(z, splat(4.670_772e-1))
        .mul_add(z, splat(1.0));
    let r = xc * p / q;
    // |x| ≥ 9.02: exactly ±1 (tanh rounds to ±1 from 9.011 on; a NaN compares false and keeps r).
    x.abs().simd_ge(splat(9.02)).select(with_sign_of(splat(1.0), x), r)
}

/// Hyperbolic tangent on 8 lanes, accurate form (max error 1 ulp, tested; about 2.5x the cost of
/// [`tanh8`]): `|x| < 0.625`: `x + x³·P4(x²)` (Cephes `tanhf`); otherwise `t = e^{-2|x|}`,
/// `tanh|x| = (1 - t)/(1 + t)` with the sign of `x` (t ≤ 0.29: no cancellation).
#[inline(always)]
pub fn tanh_accurate8(x: f32x8) -> f32x8 {
    // Work on a = |x| and put the sign back at the end (keeps tanh(-0) = -0). NaN propagates through
    // both branches (operand order of the max below), so no final blend is needed.
    let a = x.abs();
    let z = a * a;
    let p = splat(-5.704_988_7e-3)
        .mul_add(z, splat(2.063_909e-2))
        .mul_add(z, splat(-5.373_971_6e-2))
        .mul_add(z, splat(1.333_144_2e-1))
        .mul_add(z, splat(-3.333_328e-1));
    let small = (p * z).mul_add(a, a);
    // t = e^{-2a}, argument in [-40, 0] so a single power-of-two scale suffices (and t ≥ e^-40 is normal).
    let v = splat(-40.0).fast_max(a * splat(-2.0));
    let ni = (v * splat(LOG2E)).fast_round_int();
    let n = ni.round_float();
    let r = n.mul_neg_add(splat(LN2_HI), v);
    let r = n.mul_neg_add(splat(LN2_LO), r);
    let q = splat(1.987_569_1e-4)
        .mul_add(r, splat(1.398_199_9e-3))
        .mul_add(r, splat(8.333_452e-3))
        .mul_add(r, splat(4.166_579_6e-2))
        .mul_add(r, splat(1.666_666_5e-1))
        .mul_add(r, splat(5e-1));
    let t = (q.mul_add(r * r, r) + splat(1.0)) * pow2i(ni);
    let big = (splat(1.0) - t) / (splat(1.0) + t);
    with_sign_of(a.simd_lt(splat(0.625)).select(small, big), x)
}

/// Logistic sigmoid `1/(1+e^{-x})` on 8 lanes, accurate in both tails.
#[inline(always)]
pub fn sigmoid8(x: f32x8) -> f32x8 {
    // t = e^{-|x|} (NaN propagates: the select below picks `t·r` for NaN lanes, which is NaN).
    let t = exp_core(splat(-104.0).fast_max(-x.abs()));
    let r = splat(1.0) / (splat(1.0) + t);
    x.simd_ge(splat(0.0)).select(r, t * r)
}

/// `erf(x)/x` for `|x| < 1` as a polynomial in `s = x²` (Cephes `erff` coefficients, refit-verified).
#[inline(always)]
fn erf_small_ratio(s: f32x8) -> f32x8 {
    splat(7.853_861_4e-5)
        .mul_add(s, splat(-8.010_193_6e-4))
        .mul_add(s, splat(5.188_327_7e-3))
        .mul_add(s, splat(-2.685_381_2e-2))
        .mul_add(s, splat(1.128_358_5e-1))
        .mul_add(s, splat(-3.761_262_6e-1))
        .mul_add(s, splat(std::f32::consts::FRAC_2_SQRT_PI))
}

/// `erfc(t)` for `t ∈ [1, 10.5]`, given `u = 1/t` and `e = e^{-t²}`.
#[inline(always)]
fn erfc_large(u: f32x8, e: f32x8) -> f32x8 {
    // Q7 ≈ t·erfcx(t) as a polynomial in u = 1/t; range 1: t ∈ [1, 2.5), range 2: t ∈ [2.5, 10.5].
    const A: [f32; 8] = [
        0.562_157_75,
        0.026_736_466,
        -0.430_070_85,
        0.428_318_65,
        -0.171_709_73,
        -0.019_483_617,
        0.043_111_913,
        -0.011_477_027,
    ];
    const B: [f32; 8] = [
        0.564_195_5,
        -2.497_208e-4,
        -0.277_670_26,
        -0.043_010_414,
        0.671_640_16,
        -0.845_838_25,
        0.384_388_12,
        -0.004_194_271_3,
    ];
    let near = u.simd_ge(splat(0.4)); // t ≤ 2.5
    let c = |k: usize| near.select(splat(A[k]), splat(B[k]));
    let mut q = c(7);
    for k in (0..7).rev() {
        q = q.mul_add(u, c(k));
    }
    e * u * q
}

/// `e^{-(hi + lo)} ≈ e^{-hi}·(1 - lo)` for a small correction `lo` (the exact low part of a square).
#[inline(always)]
fn exp_neg_split(hi: f32x8, lo: f32x8) -> f32x8 {
    exp8(-hi) * (splat(1.0) - lo)
}

/// Error function on 8 lanes.
#[inline(always)]
pub fn erf8(x: f32x8) -> f32x8 {
    let t = x.abs();
    let small = x * erf_small_ratio(x * x);
    let tc = t.fast_max(splat(1.0)).fast_min(splat(10.5));
    let s_hi = tc * tc;
    let s_lo = tc.mul_sub(tc, s_hi);
    let erfc = erfc_large(splat(1.0) / tc, exp_neg_split(s_hi, s_lo));
    let big = with_sign_of(splat(1.0) - erfc, x);
    let r = t.simd_lt(splat(1.0)).select(small, big);
    x.is_nan().select(x, r)
}

/// Returns `(2Φ(x), t<1 mask-free pieces)`: `2Φ(x) = 1 + erf(x/√2)`, computed without cancellation, and
/// `e^{-x²/2}` (clamped `|x| ≤ 16`); shared by gelu_erf and its derivative.
#[inline(always)]
fn two_phi(x: f32x8) -> (f32x8, f32x8) {
    let xa = x.abs().fast_min(splat(16.0));
    // t = |x|/√2 as t + t_lo (the rounding error of the product and of the constant).
    let c = splat(std::f32::consts::FRAC_1_SQRT_2);
    let t = xa * c;
    let t_lo = xa.mul_sub(c, t).mul_add(splat(1.0), xa * splat(1.210_161_7e-8));
    let xx = xa * xa;
    let xx_lo = xa.mul_sub(xa, xx);
    let half_hi = xx * splat(0.5);
    let half_lo = xx_lo * splat(0.5);
    let gauss = exp_neg_split(half_hi, half_lo);
    // erf(t + t_lo) ≈ erf(t) + (2/√π)·e^{-t²}·t_lo.
    let erf_s =
        (t * erf_small_ratio(t * t)).mul_add(splat(1.0), splat(std::f32::consts::FRAC_2_SQRT_PI) * gauss * t_lo);
    let u = splat(std::f32::consts::SQRT_2) / xa.fast_max(splat(std::f32::consts::SQRT_2));
    let erfc_l = erfc_large(u, gauss);
    let small = t.simd_lt(splat(1.0));
    // erfc(t) for t ∈ [0.4, 1) as e^{-t²}·erfcx(t), erfcx a degree-7 fit around 0.7 (relative error 3e-9):
    // avoids 1 - erf(t) where erf(t) is 0.43-0.84 (the left tail of gelu would lose 2-3 bits).
    let v = (t - splat(0.7)) + t_lo;
    let erfcx = splat(-7.274_96e-3)
        .mul_add(v, splat(1.711_881_5e-2))
        .mul_add(v, splat(-3.651_546_3e-2))
        .mul_add(v, splat(7.529_836e-2))
        .mul_add(v, splat(-1.440_285_6e-1))
        .mul_add(v, splat(2.514_771_8e-1))
        .mul_add(v, splat(-3.920_767e-1))
        .mul_add(v, splat(5.259_303_5e-1));
    let erfc_mid = gauss * erfcx;
    // erfc(t) and 1 + erf(t) for t = |x|/√2.
    let erfc_small = t.simd_lt(splat(0.4)).select(splat(1.0) - erf_s, erfc_mid);
    let erfc_t = small.select(erfc_small, erfc_l);
    let one_plus = small.select(splat(1.0) + erf_s, splat(2.0) - erfc_l);
    let neg = x.simd_lt(splat(0.0));
    (neg.select(erfc_t, one_plus), gauss)
}

/// Exact GELU `x·Φ(x)` on 8 lanes; `gelu(-inf) = -0`, `gelu(inf) = inf`.
#[inline(always)]
pub fn gelu_erf8(x: f32x8) -> f32x8 {
    let (tp, _) = two_phi(x);
    let xm = x.fast_max(splat(-16.0));
    let r = splat(0.5) * xm * tp;
    x.is_nan().select(x, r)
}

/// Derivative of the exact GELU: `Φ(x) + x·φ(x)`, `φ(x) = e^{-x²/2}/√(2π)`.
#[inline(always)]
pub fn gelu_erf_grad8(x: f32x8) -> f32x8 {
    let (tp, gauss) = two_phi(x);
    let xm = x.fast_max(splat(-16.0)).fast_min(splat(16.0));
    let r = splat(0.5).mul_add(tp, xm * gauss * splat(0.398_942_3));
    x.is_nan().select(x, r)
}

const GELU_K: f32 = 1.595_769_2; // 2·√(2/π) rounded to f32 (1.5957691669)
const GELU_C: f32 = 0.044_715;

const GELU_K_LO: f32 = -4.534_068e-8; // 2·√(2/π) - GELU_K
const GELU_C_LO: f32 = 1.546_144_5e-9; // 0.044715 - GELU_C

/// Tanh-approximated GELU `½x(1 + tanh(√(2/π)(x + 0.044715x³)))`, evaluated as `x·σ(w)`,
/// `w = 2√(2/π)·x·(1 + 0.044715x²)`.
///
/// `w` is carried as `w + w_lo` (error-free products and sums with FMA, constants split in hi + lo), and
/// `σ(w + w_lo)` uses `e^{-|w|}·(1 ∓ w_lo)`: in the left tail `σ(w) ≈ e^w` turns any rounding of `w` into
/// `|w|` times that relative error, which would cost ~20 ulp at `x = -3`.
#[inline(always)]
pub fn gelu_tanh8(x: f32x8) -> f32x8 {
    let one = splat(1.0);
    let xm = x.fast_max(splat(-16.0));
    // a = C·x² (+ al)
    let x2 = xm * xm;
    let x2l = xm.mul_sub(xm, x2);
    let a = splat(GELU_C) * x2;
    let al = splat(GELU_C).mul_sub(x2, a) + splat(GELU_C).mul_add(x2l, splat(GELU_C_LO) * x2);
    // s = 1 + a (+ sl), TwoSum
    let sum = one + a;
    let bb = sum - one;
    let sl = ((one - (sum - bb)) + (a - bb)) + al;
    // kx = K·x (+ kxl)
    let kx = splat(GELU_K) * xm;
    let kxl = splat(GELU_K).mul_sub(xm, kx) + splat(GELU_K_LO) * xm;
    // w = kx·s (+ wl)
    let w = kx * sum;
    let wl = kx.mul_sub(sum, w) + kx.mul_add(sl, kxl * sum);
    // σ(w + wl) with t = e^{-|w + wl|} ≈ e^{-|w|}·(1 - sign(w)·wl)
    let aw = w.abs();
    let t = exp_core(splat(-104.0).fast_max(-aw)) * (one - (wl ^ (w & splat(-0.0))));
    let r = one / (one + t);
    let sig = w.simd_ge(splat(0.0)).select(r, t * r);
    let out = xm * sig;
    // Large x: w overflows to inf and wl to NaN; there σ = 1 exactly.
    let out = aw.simd_ge(splat(200.0)).select(xm * w.simd_ge(splat(0.0)).select(one, splat(0.0)), out);
    x.is_nan().select(x, out)
}

/// Derivative of the tanh-approximated GELU: with `s = σ(2u)`, `u = k(x + c x³)`:
/// `d/dx = s + x·2s(1-s)·k(1 + 3c x²)` where `k = √(2/π)`.
#[inline(always)]
pub fn gelu_tanh_grad8(x: f32x8) -> f32x8 {
    let xm = x.fast_max(splat(-16.0)).fast_min(splat(1.0e4));
    let x2 = xm * xm;
    let s = sigmoid8(splat(GELU_K) * xm * splat(GELU_C).mul_add(x2, splat(1.0)));
    let du = splat(GELU_K) * splat(3.0 * GELU_C).mul_add(x2, splat(1.0));
    let r = (xm * s * (splat(1.0) - s)).mul_add(du, s);
    x.is_nan().select(x, r)
}

// ---------------------------------------------------------------------------------------------------------
// Scalar f64 versions (the f64 kernels and the test references).

/// `erf(x)` in f64: Maclaurin series for `|x| < 2`, continued fraction for `erfc` beyond.
/// Relative error ≤ 2e-15 at the tested reference values.
pub fn erf_f64(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let a = x.abs();
    if a < 2.0 {
        erf_series(x)
    } else {
        (1.0 - erfc_cf(a)).copysign(x)
    }
}

/// `erfc(x)` in f64 without cancellation for large positive `x` (`1 - erf` below 1, continued fraction
/// from 1 on).
pub fn erfc_f64(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x < 1.0 {
        // erfc ≥ 0.157 here: 1 - erf loses at most ~3 bits.
        1.0 - erf_f64(x)
    } else {
        erfc_cf(x)
    }
}

fn erf_series(x: f64) -> f64 {
    // erf(x) = 2/√π · Σ (-1)^n x^{2n+1} / (n! (2n+1))
    let x2 = x * x;
    let mut term = x;
    let mut sum = x;
    let mut n = 0.0;
    loop {
        n += 1.0;
        term *= -x2 / n;
        let add = term / (2.0 * n + 1.0);
        sum += add;
        if add.abs() <= 1e-17 * sum.abs() {
            break;
        }
    }
    sum * std::f64::consts::FRAC_2_SQRT_PI
}

fn erfc_cf(x: f64) -> f64 {
    if x > 27.3 {
        return 0.0;
    }
    // erfc(x) = e^{-x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), evaluated backwards with enough
    // terms for full double precision at x ≥ 1 (250 terms at x = 1, 60 at x = 2; checked against libm).
    let terms = (300.0 / (x * x)) as usize + 40;
    let mut f = x;
    for k in (1..=terms).rev() {
        f = x + (k as f64 * 0.5) / f;
    }
    // e^{-x²} with x² split exactly: x² = hi + lo.
    let hi = x * x;
    let lo = x.mul_add(x, -hi);
    (-hi).exp() * (-lo).exp() / f * (1.0 / std::f64::consts::PI.sqrt())
}

/// Logistic sigmoid in f64, accurate in both tails.
pub fn sigmoid_f64(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let t = x.exp();
        t / (1.0 + t)
    }
}

/// Exact GELU in f64 (`x·Φ(x)`, left tail via `erfc`); `gelu(-inf) = -0`.
pub fn gelu_erf_f64(x: f64) -> f64 {
    if x == f64::NEG_INFINITY {
        return -0.0;
    }
    let t = x * std::f64::consts::FRAC_1_SQRT_2;
    if x >= 0.0 {
        0.5 * x * (1.0 + erf_f64(t))
    } else {
        0.5 * x * erfc_f64(-t)
    }
}

/// Derivative of the exact GELU in f64.
pub fn gelu_erf_grad_f64(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let t = x * std::f64::consts::FRAC_1_SQRT_2;
    let phi_cdf = if x >= 0.0 { 0.5 * (1.0 + erf_f64(t)) } else { 0.5 * erfc_f64(-t) };
    let xc = x.clamp(-40.0, 40.0);
    phi_cdf + xc * (-0.5 * xc * xc).exp() * 0.398_942_280_401_432_7
}

/// Tanh-approximated GELU in f64, `x·σ(2u)`.
pub fn gelu_tanh_f64(x: f64) -> f64 {
    if x == f64::NEG_INFINITY {
        return -0.0;
    }
    let k = 2.0 * (2.0 / std::f64::consts::PI).sqrt();
    x * sigmoid_f64(k * x * (1.0 + 0.044715 * x * x))
}

/// Derivative of the tanh-approximated GELU in f64.
pub fn gelu_tanh_grad_f64(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let xc = x.clamp(-40.0, 1e4);
    let k = (2.0 / std::f64::consts::PI).sqrt();
    let s = sigmoid_f64(2.0 * k * xc * (1.0 + 0.044715 * xc * xc));
    s + xc * 2.0 * s * (1.0 - s) * k * (1.0 + 3.0 * 0.044715 * xc * xc)
}

/// PyTorch's softplus (beta 1, threshold 20) in f64.
pub fn softplus_f64(x: f64) -> f64 {
    if x > 20.0 || x.is_nan() {
        x
    } else {
        x.max(0.0) + (-x.abs()).exp().ln_1p()
    }
}

/// PyTorch's softplus (beta 1, threshold 20) on 8 f32 lanes: `x > 20 → x`, else `max(x,0) + ln(1 + e^{-|x|})`.
#[inline(always)]
pub fn softplus8(x: f32x8) -> f32x8 {
    let r = x.fast_max(splat(0.0)) + ln1p_pos8(exp8(-x.abs()));
    let r = x.simd_gt(splat(20.0)).select(x, r);
    x.is_nan().select(x, r)
}
