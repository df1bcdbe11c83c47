//! Elementwise kernels against naive references: unary maps and their backward helpers, binary maps
//! (contiguous, scalar, broadcast-strided), axpy/scale/add_assign, the fused optimizer updates, and
//! 1-vs-2-thread bit-identity.

#![allow(clippy::needless_range_loop)] // the naive references index like the math

mod common;

use common::*;
use tensorgrad_kernels::elementwise::{self as ew, math, AdamHyper, Binary, SgdHyper, Unary, UnaryBackward};

const ALL_UNARY: [Unary; 16] = [
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
];

fn reference(op: Unary, x: f64) -> f64 {
    match op {
        Unary::Exp => x.exp(),
        Unary::Ln => x.ln(),
        Unary::Tanh => x.tanh(),
        Unary::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Unary::GeluErf => 0.5 * x * (1.0 + math::erf_f64(x / 2f64.sqrt())),
        Unary::GeluTanh => 0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh()),
        Unary::Erf => math::erf_f64(x),
        Unary::Relu => x.max(0.0),
        Unary::Silu => x / (1.0 + (-x).exp()),
        Unary::Softplus => {
            if x > 20.0 {
                x
            } else {
                x.exp().ln_1p()
            }
        }
        Unary::Sqrt => x.sqrt(),
        Unary::Rsqrt => 1.0 / x.sqrt(),
        Unary::Abs => x.abs(),
        Unary::Neg => -x,
        Unary::Square => x * x,
        Unary::Recip => 1.0 / x,
    }
}

fn domain(op: Unary) -> (f64, f64) {
    match op {
        Unary::Ln | Unary::Sqrt | Unary::Rsqrt => (0.01, 50.0),
        Unary::Recip => (0.5, 4.0),
        _ => (-6.0, 6.0),
    }
}

#[test]
fn unary_maps_match_reference_at_all_sizes() {
    let mut rng = Rng::new(1);
    for op in ALL_UNARY {
        let (lo, hi) = domain(op);
        for &n in SIZES {
            let x64 = rng.vec_f64(n, lo, hi);
            let x32: Vec<f32> = x64.iter().map(|&v| v as f32).collect();
            let want32: Vec<f64> = x32.iter().map(|&v| reference(op, v as f64)).collect();
            let mut y32 = vec![f32::NAN; n];
            ew::unary(op, &x32, &mut y32);
            assert_close(&format!("{op:?} f32 n={n}"), &to64(&y32), &want32, F32_TOL);
            let want64: Vec<f64> = x64.iter().map(|&v| reference(op, v)).collect();
            let mut y64 = vec![f64::NAN; n];
            ew::unary(op, &x64, &mut y64);
            assert_close(&format!("{op:?} f64 n={n}"), &y64, &want64, 1e-13);
            // In place gives the same bits.
            let mut z = x32.clone();
            ew::unary_inplace(op, &mut z);
            assert_eq!(bits32(&z), bits32(&y32), "{op:?} in place");
        }
    }
}

#[test]
fn named_wrappers_route_to_their_op() {
    let x = [0.3f32, -1.2, 2.5];
    let mut a = [0.0f32; 3];
    let mut b = [0.0f32; 3];
    type F = fn(&[f32], &mut [f32]);
    let table: [(F, Unary); 8] = [
        (ew::exp, Unary::Exp),
        (ew::tanh, Unary::Tanh),
        (ew::sigmoid, Unary::Sigmoid),
        (ew::gelu_erf, Unary::GeluErf),
        (ew::gelu_tanh, Unary::GeluTanh),
        (ew::erf, Unary::Erf),
        (ew::silu, Unary::Silu),
        (ew::softplus, Unary::Softplus),
    ];
    for (f, op) in table {
        f(&x, &mut a);
        ew::unary(op, &x, &mut b);
        assert_eq!(a, b, "{op:?}");
    }
}

fn backward_reference(op: UnaryBackward, x: f64, dy: f64) -> (f64, f64) {
    // Returns (a, dx): `a` is what the kernel takes (x or y), dx by central differences of the forward.
    let (fwd, saved_is_y) = match op {
        UnaryBackward::Tanh => (Unary::Tanh, true),
        UnaryBackward::Sigmoid => (Unary::Sigmoid, true),
        UnaryBackward::GeluErf => (Unary::GeluErf, false),
        UnaryBackward::GeluTanh => (Unary::GeluTanh, false),
        UnaryBackward::Relu => (Unary::Relu, false),
        UnaryBackward::Silu => (Unary::Silu, false),
        UnaryBackward::Softplus => (Unary::Softplus, false),
    };
    let h = 1e-6;
    let d = (reference(fwd, x + h) - reference(fwd, x - h)) / (2.0 * h);
    let a = if saved_is_y { reference(fwd, x) } else { x };
    (a, dy * d)
}

#[test]
fn backward_helpers_match_finite_differences() {
    let mut rng = Rng::new(2);
    for op in [
        UnaryBackward::Tanh,
        UnaryBackward::Sigmoid,
        UnaryBackward::GeluErf,
        UnaryBackward::GeluTanh,
        UnaryBackward::Relu,
        UnaryBackward::Silu,
        UnaryBackward::Softplus,
    ] {
        for &n in SIZES {
            let xs: Vec<f64> =
                rng.vec_f64(n, -5.0, 5.0).into_iter().map(|v| if v.abs() < 1e-3 { 0.5 } else { v }).collect();
            let dy = rng.vec_f64(n, -2.0, 2.0);
            let (a, want): (Vec<f64>, Vec<f64>) =
                xs.iter().zip(&dy).map(|(&x, &g)| backward_reference(op, x, g)).unzip();
            let mut dx = vec![0.0f64; n];
            ew::unary_backward(op, &a, &dy, &mut dx);
            assert_close(&format!("{op:?} f64 n={n}"), &dx, &want, 1e-7);
            let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
            let g32: Vec<f32> = dy.iter().map(|&v| v as f32).collect();
            let mut dx32 = vec![0.0f32; n];
            ew::unary_backward(op, &a32, &g32, &mut dx32);
            assert_close(&format!("{op:?} f32 n={n}"), &to64(&dx32), &want, 2e-5);
        }
    }
    // Relu backward at 0 and NaN follows threshold_backward: x ≤ 0 → 0, NaN → dy.
    let mut dx = [9.0f32; 3];
    ew::relu_backward(&[0.0, f32::NAN, -0.0], &[1.0, 2.0, 3.0], &mut dx);
    assert_eq!(dx[0], 0.0);
    assert_eq!(dx[1], 2.0);
    assert_eq!(dx[2], 0.0);
}

const ALL_BINARY: [Binary; 6] = [Binary::Add, Binary::Sub, Binary::Mul, Binary::Div, Binary::Maximum, Binary::Minimum];

#[test]
fn binary_maps_are_exact_against_scalar_reference() {
    let mut rng = Rng::new(3);
    for op in ALL_BINARY {
        for &n in SIZES {
            let a = rng.vec_f32(n, -3.0, 3.0);
            let b = rng.vec_f32(n, 0.5, 3.0);
            let mut out = vec![0.0f32; n];
            ew::binary(op, &a, &b, &mut out);
            let want: Vec<f32> = a.iter().zip(&b).map(|(&x, &y)| ew::apply_scalar(op, x, y)).collect();
            assert_eq!(bits32(&out), bits32(&want), "{op:?} n={n}");
            let s = 1.75f32;
            ew::binary_scalar(op, &a, s, &mut out);
            let want: Vec<f32> = a.iter().map(|&x| ew::apply_scalar(op, x, s)).collect();
            assert_eq!(bits32(&out), bits32(&want), "{op:?} scalar n={n}");
            ew::scalar_binary(op, s, &a, &mut out);
            let want: Vec<f32> = a.iter().map(|&x| ew::apply_scalar(op, s, x)).collect();
            assert_eq!(bits32(&out), bits32(&want), "{op:?} scalar lhs n={n}");
        }
    }
}

#[test]
fn maximum_minimum_propagate_nan() {
    let a = [f32::NAN, 1.0, 2.0, f32::NAN, 0.0, 5.0, 6.0, 7.0, f32::NAN];
    let b = [1.0, f32::NAN, 3.0, f32::NAN, -0.0, 4.0, 8.0, 1.0, 2.0];
    for op in [Binary::Maximum, Binary::Minimum] {
        let mut out = [0.0f32; 9];
        ew::binary(op, &a, &b, &mut out);
        for i in 0..9 {
            assert_eq!(out[i].is_nan(), a[i].is_nan() || b[i].is_nan(), "{op:?}[{i}]");
        }
        let mut o64 = [0.0f64; 2];
        ew::binary(op, &[f64::NAN, 1.0], &[1.0, f64::NAN], &mut o64);
        assert!(o64[0].is_nan() && o64[1].is_nan());
    }
}

/// Naive broadcast: walk every index of `shape`.
fn strided_naive(op: Binary, shape: &[usize], a: &[f64], sa: &[usize], b: &[f64], sb: &[usize]) -> Vec<f64> {
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    for flat in 0..n {
        let (mut rem, mut oa, mut ob) = (flat, 0, 0);
        for d in (0..shape.len()).rev() {
            let i = rem % shape[d];
            rem /= shape[d];
            oa += i * sa[d];
            ob += i * sb[d];
        }
        out.push(ew::apply_scalar(op, a[oa], b[ob]));
    }
    out
}

fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![0; shape.len()];
    let mut acc = 1;
    for d in (0..shape.len()).rev() {
        s[d] = acc;
        acc *= shape[d];
    }
    s
}

#[test]
fn binary_strided_broadcasts_like_naive() {
    let mut rng = Rng::new(4);
    let shapes: &[&[usize]] =
        &[&[], &[1], &[7], &[3, 5], &[2, 3, 13], &[4, 1, 9], &[2, 3, 4, 5], &[5, 0, 3], &[64, 130]];
    for &shape in shapes {
        let full = contiguous_strides(shape);
        let nd = shape.len();
        // Strides: contiguous, broadcast each dim, broadcast all, transposed (reversed) layout.
        let mut variants: Vec<Vec<usize>> = vec![full.clone(), vec![0; nd]];
        for d in 0..nd {
            let mut s = full.clone();
            s[d] = 0;
            variants.push(s);
        }
        if nd >= 2 {
            let mut t = vec![0; nd];
            let mut acc = 1;
            for d in 0..nd {
                t[d] = acc;
                acc *= shape[d];
            }
            variants.push(t);
        }
        let span = shape.iter().product::<usize>().max(1);
        for op in ALL_BINARY {
            for sa in &variants {
                for sb in &variants {
                    let a = rng.vec_f64(span, -2.0, 2.0);
                    let b = rng.vec_f64(span, 0.5, 2.0);
                    let want = strided_naive(op, shape, &a, sa, &b, sb);
                    let mut out = vec![f64::NAN; want.len()];
                    ew::binary_strided(op, shape, &a, sa, &b, sb, &mut out);
                    assert_eq!(out, want, "{op:?} shape {shape:?} sa {sa:?} sb {sb:?}");
                    let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
                    let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
                    let want32: Vec<f32> =
                        strided_naive(op, shape, &to64(&a32), sa, &to64(&b32), sb).iter().map(|&v| v as f32).collect();
                    let mut o32 = vec![f32::NAN; want.len()];
                    ew::binary_strided(op, shape, &a32, sa, &b32, sb, &mut o32);
                    if !matches!(op, Binary::Div) {
                        assert_eq!(bits32(&o32), bits32(&want32), "{op:?} f32 shape {shape:?} sa {sa:?} sb {sb:?}");
                    }
                }
            }
        }
    }
}

#[test]
#[should_panic(expected = "binary_strided")]
fn binary_strided_rejects_out_of_bounds_strides() {
    let a = [1.0f32; 4];
    let mut out = [0.0f32; 6];
    ew::binary_strided(Binary::Add, &[2, 3], &a, &[3, 1], &a, &[0, 1], &mut out);
}

#[test]
#[should_panic(expected = "length mismatch")]
fn binary_rejects_length_mismatch() {
    let mut out = [0.0f32; 3];
    ew::add(&[1.0f32; 3], &[1.0f32; 2], &mut out);
}

#[test]
fn axpy_scale_add_assign() {
    let mut rng = Rng::new(5);
    for &n in SIZES {
        let x = rng.vec_f32(n, -1.0, 1.0);
        let y0 = rng.vec_f32(n, -1.0, 1.0);
        let mut y = y0.clone();
        ew::axpy(0.37f32, &x, &mut y);
        let want: Vec<f32> = x.iter().zip(&y0).map(|(&a, &b)| 0.37f32.mul_add(a, b)).collect();
        if cfg!(target_feature = "fma") {
            assert_eq!(bits32(&y), bits32(&want), "axpy n={n}");
        } else {
            // Without FMA the SIMD lanes round the product and the sum separately.
            assert_close("axpy (no fma)", &to64(&y), &to64(&want), 1e-6);
        }
        let mut z = y0.clone();
        ew::scale(&mut z, 3.0f32);
        assert_eq!(bits32(&z), bits32(&y0.iter().map(|&v| v * 3.0).collect::<Vec<_>>()));
        let mut w = y0.clone();
        ew::add_assign(&mut w, &x);
        assert_eq!(bits32(&w), bits32(&y0.iter().zip(&x).map(|(&a, &b)| a + b).collect::<Vec<_>>()));
        let mut y64 = to64(&y0);
        ew::axpy(0.5f64, &to64(&x), &mut y64);
        assert_close(
            "axpy f64",
            &y64,
            &to64(&y0).iter().zip(&x).map(|(&b, &a)| b + 0.5 * a as f64).collect::<Vec<_>>(),
            1e-15,
        );
    }
}

/// Reference Adam in f64, written straight from the PyTorch docs' algorithm box.
fn adam_reference(p: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64], vmax: &mut [f64], hp: &AdamHyper) {
    let t = hp.step as f64;
    for i in 0..p.len() {
        let mut gi = g[i];
        if hp.decoupled {
            p[i] *= 1.0 - hp.lr * hp.weight_decay;
        } else {
            gi += hp.weight_decay * p[i];
        }
        m[i] = hp.beta1 * m[i] + (1.0 - hp.beta1) * gi;
        v[i] = hp.beta2 * v[i] + (1.0 - hp.beta2) * gi * gi;
        let mhat = m[i] / (1.0 - hp.beta1.powf(t));
        vmax[i] = vmax[i].max(v[i]);
        let vu = if hp.amsgrad { vmax[i] } else { v[i] };
        let vhat = vu / (1.0 - hp.beta2.powf(t));
        // PyTorch places eps after the bias-corrected sqrt: denom = sqrt(v)/sqrt(bc2) + eps.
        p[i] -= hp.lr * mhat / (vhat.sqrt() + hp.eps);
    }
}

#[test]
fn adam_and_adamw_follow_the_reference_over_several_steps() {
    let mut rng = Rng::new(6);
    for &(decoupled, amsgrad, wd) in
        &[(false, false, 0.0), (false, false, 0.01), (true, false, 0.1), (false, true, 0.0), (true, true, 0.05)]
    {
        for &n in &[0usize, 1, 7, 33, 100] {
            let mut p = rng.vec_f64(n, -1.0, 1.0);
            let (mut m, mut v, mut vm) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
            let mut pr = p.clone();
            let (mut mr, mut vr, mut vmr) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
            let mut p32: Vec<f32> = p.iter().map(|&x| x as f32).collect();
            let (mut m32, mut v32, mut vm32) = (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]);
            for step in 1..=5 {
                let g = rng.vec_f64(n, -1.0, 1.0);
                let hp = AdamHyper {
                    lr: 0.01,
                    // β1 < 0.5 exercises PyTorch's other lerp branch.
                    beta1: if amsgrad { 0.3 } else { 0.9 },
                    weight_decay: wd,
                    decoupled,
                    amsgrad,
                    step,
                    ..AdamHyper::default()
                };
                ew::adam_step(&mut p, &g, &mut m, &mut v, amsgrad.then_some(&mut vm[..]), &hp);
                adam_reference(&mut pr, &g, &mut mr, &mut vr, &mut vmr, &hp);
                let g32: Vec<f32> = g.iter().map(|&x| x as f32).collect();
                ew::adam_step(&mut p32, &g32, &mut m32, &mut v32, amsgrad.then_some(&mut vm32[..]), &hp);
            }
            assert_close("adam f64", &p, &pr, 1e-12);
            assert_close("adam f32", &to64(&p32), &pr, 1e-5);
        }
    }
}

#[test]
fn adam_first_step_moves_by_lr_times_sign() {
    // With zero state, step 1: m̂ = g, v̂ = g², so Δp = -lr·g/(|g| + eps) ≈ -lr·sign(g).
    let mut p = [1.0f32, 1.0];
    let (mut m, mut v) = ([0.0f32; 2], [0.0f32; 2]);
    ew::adam_step(&mut p, &[0.5, -2.0], &mut m, &mut v, None, &AdamHyper { lr: 0.1, ..AdamHyper::default() });
    assert!((p[0] - 0.9).abs() < 1e-6 && (p[1] - 1.1).abs() < 1e-6, "{p:?}");
}

#[test]
fn sgd_momentum_matches_reference() {
    let mut rng = Rng::new(7);
    for &(momentum, dampening, wd, nesterov, maximize) in &[
        (0.0, 0.0, 0.0, false, false),
        (0.9, 0.0, 0.0, false, false),
        (0.9, 0.1, 0.01, true, false),
        (0.5, 0.0, 0.1, false, true),
    ] {
        let n = 37;
        let hp = SgdHyper { lr: 0.1, momentum, dampening, weight_decay: wd, nesterov, maximize };
        let mut p = rng.vec_f64(n, -1.0, 1.0);
        let mut pr = p.clone();
        let mut buf = vec![0.0; n];
        let mut bufr = vec![0.0; n];
        for step in 0..4 {
            let g = rng.vec_f64(n, -1.0, 1.0);
            ew::sgd_momentum_step(&mut p, &g, Some(&mut buf), &hp, step == 0);
            for i in 0..n {
                let mut d = if maximize { -g[i] } else { g[i] } + wd * pr[i];
                if momentum != 0.0 {
                    bufr[i] = if step == 0 { d } else { momentum * bufr[i] + (1.0 - dampening) * d };
                    d = if nesterov { d + momentum * bufr[i] } else { bufr[i] };
                }
                pr[i] -= 0.1 * d;
            }
        }
        assert_close("sgd", &p, &pr, 1e-13);
    }
}

#[test]
fn results_are_bit_identical_for_one_and_two_threads() {
    let mut rng = Rng::new(8);
    let n = (1 << 19) + 13;
    let x = rng.vec_f32(n, -4.0, 4.0);
    let b = rng.vec_f32(n, 0.5, 2.0);
    let run = || {
        let mut outs = Vec::new();
        for op in ALL_UNARY {
            let mut y = vec![0.0f32; n];
            ew::unary(op, &x, &mut y);
            outs.push(bits32(&y));
        }
        let mut y = vec![0.0f32; n];
        ew::binary(Binary::Mul, &x, &b, &mut y);
        outs.push(bits32(&y));
        ew::gelu_erf_backward(&x, &b, &mut y);
        outs.push(bits32(&y));
        let mut s = vec![0.0f32; n];
        ew::binary_strided(Binary::Add, &[n / 64, 64], &x, &[64, 1], &b[..64], &[0, 1], &mut s[..n / 64 * 64]);
        outs.push(bits32(&s));
        let mut p = x.clone();
        let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
        ew::adam_step(&mut p, &b, &mut m, &mut v, None, &AdamHyper::default());
        outs.push(bits32(&p));
        outs
    };
    let one = with_threads(1, run);
    let two = with_threads(2, run);
    assert!(one == two, "1 vs 2 threads differ");
}

#[test]
fn binary_strided_large_transposed_is_thread_independent() {
    // A transposed operand leaves an inner row of one element after collapsing: many tiny rows.
    let mut rng = Rng::new(9);
    let (r, c) = (700, 600);
    let a = rng.vec_f32(r * c, -1.0, 1.0);
    let b = rng.vec_f32(r * c, -1.0, 1.0);
    let run = || {
        let mut out = vec![0.0f32; r * c];
        ew::binary_strided(Binary::Sub, &[r, c], &a, &[1, r], &b, &[c, 1], &mut out);
        let mut t = vec![0.0f32; r * c];
        ew::unary_strided(Some(Unary::Tanh), &[r, c], &a, &[1, r], &mut t);
        out.extend(t);
        out
    };
    let one = with_threads(1, run);
    assert!(bits32(&one) == bits32(&with_threads(2, run)));
    for i in [0, 1, 599, 600, 4321, r * c - 1] {
        let (y, x) = (i / c, i % c);
        assert_eq!(one[i], a[x * r + y] - b[y * c + x]);
    }
}

#[test]
fn unary_strided_and_copy_strided_match_naive() {
    let mut rng = Rng::new(10);
    let shapes: &[&[usize]] = &[&[], &[5], &[3, 7], &[2, 3, 13], &[4, 1, 9], &[3, 0, 2], &[300, 40]];
    for &shape in shapes {
        let full = contiguous_strides(shape);
        let nd = shape.len();
        let mut variants: Vec<Vec<usize>> = vec![full.clone(), vec![0; nd]];
        if nd >= 2 {
            let mut t = vec![0; nd];
            let mut acc = 1;
            for d in 0..nd {
                t[d] = acc;
                acc *= shape[d];
            }
            variants.push(t);
            let mut bcast = full.clone();
            bcast[0] = 0;
            variants.push(bcast);
        }
        let span = shape.iter().product::<usize>().max(1);
        for st in &variants {
            let x = rng.vec_f32(span, 0.1, 3.0);
            let zeros = vec![0.0f64; span];
            let gathered: Vec<f32> =
                strided_naive(Binary::Add, shape, &to64(&x), st, &zeros, st).iter().map(|&v| v as f32).collect();
            let mut out = vec![f32::NAN; gathered.len()];
            ew::copy_strided(shape, &x, st, &mut out);
            assert_eq!(bits32(&out), bits32(&gathered), "copy {shape:?} {st:?}");
            for op in [Unary::Exp, Unary::Sqrt, Unary::Neg] {
                let mut want = vec![0.0f32; gathered.len()];
                ew::unary(op, &gathered, &mut want);
                ew::unary_strided(Some(op), shape, &x, st, &mut out);
                assert_eq!(bits32(&out), bits32(&want), "{op:?} {shape:?} {st:?}");
            }
        }
    }
}
