//! Error sweeps of the fast f32 math against f64 references, and special values.
//!
//! The error of a result `y` is its distance in ulps (steps between adjacent f32 values, denormals
//! included) to the f64 reference rounded to f32. Sweeps are dense: every `STEP`-th f32 bit pattern in the
//! range (several million inputs per function), plus the neighbourhoods of the branch points.

#![allow(clippy::needless_range_loop)] // the naive references index like the math

use tensorgrad_kernels::elementwise::{self as ew, math, Unary};

/// The documented bound for FMA builds (the workspace builds with x86-64-v3), and the looser bound a
/// build without FMA reaches (its error-free products `fma(a, b, -a·b)` are no longer exact; such a build
/// also prints the one-time "SIMD unused" warning).
fn bound(with_fma: u64, without_fma: u64) -> u64 {
    if cfg!(target_feature = "fma") {
        with_fma
    } else {
        without_fma
    }
}

/// Bit-pattern stride of the sweeps (~4M floats per sign over the full range).
const STEP: u32 = 199;

fn ordered(v: f32) -> i64 {
    let b = v.to_bits() as i32 as i64;
    if b < 0 {
        i64::from(i32::MIN) - b
    } else {
        b
    }
}

fn ulp_dist(y: f32, r: f32) -> u64 {
    if y.is_nan() || r.is_nan() {
        return if y.is_nan() && r.is_nan() { 0 } else { u64::MAX };
    }
    if y == r {
        return 0;
    }
    (ordered(y) - ordered(r)).unsigned_abs()
}

/// Inputs: every STEP-th f32 bit pattern with |x| in [lo, hi], both signs as requested.
fn sweep(lo: f32, hi: f32, neg: bool, pos: bool) -> Vec<f32> {
    let mut v = Vec::new();
    let (a, b) = (lo.to_bits(), hi.to_bits());
    let mut i = a;
    while i <= b {
        let x = f32::from_bits(i);
        if pos {
            v.push(x);
        }
        if neg {
            v.push(-x);
        }
        i += STEP;
    }
    v.push(lo);
    v.push(hi);
    v
}

/// Max ulp error of `op` over `xs` vs `reference`, and the worst input.
fn max_err(op: Unary, xs: &[f32], reference: impl Fn(f64) -> f64) -> (u64, f32) {
    let mut y = vec![0.0f32; xs.len()];
    ew::unary(op, xs, &mut y);
    let mut worst = (0, 0.0);
    for (&x, &yi) in xs.iter().zip(&y) {
        let r = reference(x as f64) as f32;
        let d = ulp_dist(yi, r);
        if d > worst.0 {
            worst = (d, x);
        }
    }
    worst
}

#[track_caller]
fn assert_bound(name: &str, op: Unary, xs: &[f32], reference: impl Fn(f64) -> f64, bound: u64) {
    let (e, x) = max_err(op, xs, reference);
    eprintln!("{name}: max error {e} ulp (at x = {x:e}) over {} inputs", xs.len());
    assert!(e <= bound, "{name}: max error {e} ulp at x = {x:e} exceeds the documented {bound} ulp");
}

#[test]
fn exp_error_at_most_1_ulp() {
    // Includes results in the denormal range (x < -87.3) and the overflow boundary.
    assert_bound("exp", Unary::Exp, &sweep(1e-30, 104.0, true, true), f64::exp, 1);
}

#[test]
fn log_error_at_most_1_ulp() {
    // All positive floats, denormals included.
    assert_bound("log", Unary::Ln, &sweep(f32::from_bits(1), f32::MAX, false, true), f64::ln, 1);
}

#[test]
fn tanh_error_at_most_5_ulp() {
    assert_bound("tanh", Unary::Tanh, &sweep(1e-30, 20.0, true, true), f64::tanh, bound(5, 8));
}

#[test]
fn tanh_accurate_error_at_most_1_ulp() {
    use wide::f32x8;
    let xs = sweep(1e-30, 20.0, true, true);
    let mut worst = (0, 0.0f32);
    for c in xs.chunks(8) {
        let mut buf = [0.0f32; 8];
        buf[..c.len()].copy_from_slice(c);
        let y = math::tanh_accurate8(f32x8::from(buf)).to_array();
        for (&x, &yi) in c.iter().zip(&y) {
            let d = ulp_dist(yi, (x as f64).tanh() as f32);
            if d > worst.0 {
                worst = (d, x);
            }
        }
    }
    eprintln!("tanh_accurate: max error {} ulp (at x = {:e})", worst.0, worst.1);
    assert!(worst.0 <= 1, "tanh_accurate: {} ulp at {}", worst.0, worst.1);
    let z = math::tanh_accurate8(f32x8::splat(-0.0)).to_array()[0];
    assert!(z == 0.0 && z.is_sign_negative());
    assert!(math::tanh_accurate8(f32x8::splat(f32::NAN)).to_array()[0].is_nan());
}

#[test]
fn sigmoid_error_at_most_3_ulp() {
    assert_bound("sigmoid", Unary::Sigmoid, &sweep(1e-30, 110.0, true, true), math::sigmoid_f64, 3);
}

#[test]
fn erf_error_at_most_2_ulp() {
    assert_bound("erf", Unary::Erf, &sweep(1e-30, 12.0, true, true), math::erf_f64, 2);
}

#[test]
fn gelu_erf_error_bounded() {
    // |x| ≤ 10: results above the denormal range.
    assert_bound("gelu_erf (x>0)", Unary::GeluErf, &sweep(1e-30, 10.0, false, true), math::gelu_erf_f64, 3);
    // x < 0: ½x·erfc(|x|/√2), erfc from e^{-x²/2} (exact split of x²) times erfcx or the 1/t fit.
    assert_bound("gelu_erf (x<0)", Unary::GeluErf, &sweep(1e-30, 10.0, true, false), math::gelu_erf_f64, bound(5, 64));
}

#[test]
fn gelu_tanh_error_bounded() {
    assert_bound("gelu_tanh", Unary::GeluTanh, &sweep(1e-30, 10.0, false, true), math::gelu_tanh_f64, 3);
    // Left tail: σ(w) ≈ e^w there, so `w` is carried in double-f32 (see gelu_tanh8); intermediate e^w stays
    // above the denormal range down to x ≈ -9.4. (PyTorch's `½x(1 + tanh(u))` cancels completely there.)
    assert_bound(
        "gelu_tanh (x<0)",
        Unary::GeluTanh,
        &sweep(1e-30, 9.0, true, false),
        math::gelu_tanh_f64,
        bound(4, 256),
    );
}

#[test]
fn silu_softplus_error_bounded() {
    assert_bound("silu", Unary::Silu, &sweep(1e-30, 80.0, true, true), |x| x * math::sigmoid_f64(x), 3);
    assert_bound("softplus", Unary::Softplus, &sweep(1e-30, 80.0, true, true), math::softplus_f64, 2);
}

#[test]
#[allow(clippy::excessive_precision)] // reference values as printed by Python
fn f64_erf_matches_reference_values() {
    // Values from Python's math.erf / math.erfc (correctly rounded double precision libm).
    let cases: [(f64, f64, f64); 6] = [
        (0.1, 0.1124629160182849, 0.8875370839817151),
        (0.5, 0.5204998778130465, 0.4795001221869535),
        (1.0, 0.8427007929497149, 0.15729920705028513),
        (1.9, 0.9927904292352575, 0.007209570764742524),
        (2.5, 0.999593047982555, 0.0004069520174449589),
        (5.0, 0.9999999999984626, 1.5374597944280349e-12),
    ];
    for (x, e, c) in cases {
        assert!((math::erf_f64(x) - e).abs() <= 1e-15 * e.abs(), "erf({x})");
        assert!((math::erf_f64(-x) + e).abs() <= 1e-15 * e.abs(), "erf(-{x})");
        assert!((math::erfc_f64(x) - c).abs() <= 2e-15 * c, "erfc({x}) = {} vs {c}", math::erfc_f64(x));
    }
}

fn one(op: Unary, x: f32) -> f32 {
    let mut y = [0.0f32];
    ew::unary(op, &[x], &mut y);
    y[0]
}

#[test]
fn special_values() {
    let inf = f32::INFINITY;
    let cases: &[(Unary, f32, f32)] = &[
        (Unary::Exp, inf, inf),
        (Unary::Exp, -inf, 0.0),
        (Unary::Exp, 89.0, inf),
        (Unary::Exp, -104.0, 0.0),
        (Unary::Exp, 0.0, 1.0),
        (Unary::Exp, f32::from_bits(1), 1.0),
        (Unary::Ln, 0.0, -inf),
        (Unary::Ln, inf, inf),
        (Unary::Ln, 1.0, 0.0),
        (Unary::Tanh, inf, 1.0),
        (Unary::Tanh, -inf, -1.0),
        (Unary::Sigmoid, inf, 1.0),
        (Unary::Sigmoid, -inf, 0.0),
        (Unary::Erf, inf, 1.0),
        (Unary::Erf, -inf, -1.0),
        (Unary::GeluErf, inf, inf),
        (Unary::GeluErf, -inf, 0.0),
        (Unary::GeluTanh, inf, inf),
        (Unary::GeluTanh, -inf, 0.0),
        (Unary::Silu, inf, inf),
        (Unary::Silu, -inf, 0.0),
        (Unary::Softplus, inf, inf),
        (Unary::Softplus, -inf, 0.0),
        (Unary::Relu, -inf, 0.0),
    ];
    for &(op, x, want) in cases {
        let y = one(op, x);
        assert_eq!(y, want, "{op:?}({x})");
    }
    // exp of a denormal-producing input is correctly rounded: e^-100 ≈ 3.72e-44.
    assert_eq!(one(Unary::Exp, -100.0), (-100.0f64).exp() as f32);
    // ln of the smallest denormal.
    assert_eq!(one(Unary::Ln, f32::from_bits(1)), (f32::from_bits(1) as f64).ln() as f32);
    assert!(one(Unary::Ln, -1.0).is_nan());
    assert!(one(Unary::Sqrt, -1.0).is_nan());
    // Sign of zero survives the odd functions.
    for op in [Unary::Tanh, Unary::Erf] {
        assert!(one(op, -0.0).is_sign_negative() && one(op, -0.0) == 0.0, "{op:?}(-0)");
    }
    // NaN in, NaN out, for every op.
    for op in [
        Unary::Exp,
        Unary::Ln,
        Unary::Tanh,
        Unary::Sigmoid,
        Unary::GeluErf,
        Unary::GeluTanh,
        Unary::Erf,
        Unary::Relu,
        Unary::Silu,
        Unary::Softplus,
        Unary::Sqrt,
        Unary::Rsqrt,
        Unary::Abs,
        Unary::Neg,
        Unary::Square,
        Unary::Recip,
    ] {
        assert!(one(op, f32::NAN).is_nan(), "{op:?}(NaN)");
        let mut y = [0.0f64];
        ew::unary(op, &[f64::NAN], &mut y);
        assert!(y[0].is_nan(), "{op:?}(NaN) f64");
    }
}

#[test]
fn tanh_has_no_cancellation_near_zero() {
    for &x in &[1e-8f32, 1e-5, 1e-3, 0.1, 0.3, 0.6, 0.62, 0.63] {
        let y = one(Unary::Tanh, x);
        let r = (x as f64).tanh() as f32;
        assert!(ulp_dist(y, r) <= 3, "tanh({x}) = {y} vs {r}");
    }
}
