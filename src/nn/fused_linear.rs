//! A fused linear layer for the transformer blocks: an optional GELU on the input and an optional residual
//! added to the output, in one autograd node.
//!
//! ```text
//! forward:  a = act(x)  (GELU or identity),   y = r + a W^T + b
//! backward: dW = dy^T a,  db = sum over rows of dy,  dr = dy,  dx = (dy W) * act'(x)
//! ```
//! Why fused: the composition `r + (act(x).matmul(W^T) + b)` records four nodes, and every node keeps its
//! inputs alive until backward, so the GEMM output, the biased output and the activation `a` would all stay
//! in memory. This node keeps only `x` (and `W`, `b`, `r`, which are alive anyway) and recomputes `a = act(x)`
//! in backward (one SIMD pass). Under `create_graph` the backward is written with tensor ops, so it is
//! differentiable; the tests check values and gradients (first and second order) against the composition.
//!
//! # Shapes
//! `x [.., in]`, `W [out, in]`, `b [out]`, `r [.., out]` (the output's shape) -> `[.., out]`.

use crate::autograd::{is_grad_enabled, Backward};
use crate::tensor::Tensor;
use crate::GeluApprox;

/// `r + act(x) W^T + b` as one op (see the module docs). Shapes are the caller's responsibility (the layers
/// that call it check them: `nn::functional::linear`'s messages are reproduced for a wrong input width).
///
/// # Panics
/// If `x`'s last dim is not `W`'s second dim, or `r` does not have the output's shape.
#[track_caller]
pub(crate) fn fused_linear(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    act: Option<GeluApprox>,
    residual: Option<&Tensor>,
) -> Tensor {
    let _p = crate::profile::op_scope("linear");
    let (out_f, in_f) = (weight.size(0), weight.size(1));
    if x.rank() == 0 || x.size(-1) != in_f {
        crate::error::panic_msg(format!(
            "Linear: expected input with last dimension in_features={in_f} (shape [.., {in_f}]), got shape {:?}",
            x.shape()
        ));
    }
    let mut out_shape = x.shape().to_vec();
    *out_shape.last_mut().expect("rank >= 1") = out_f;
    if let Some(r) = residual {
        if r.shape() != out_shape.as_slice() {
            crate::error::shape_mismatch(
                "linear (residual)",
                "residual must have the output's shape",
                r.shape(),
                &out_shape,
            );
        }
    }
    let y = crate::no_grad(|| {
        let y = match act {
            Some(approx) => gelu_linear_forward_blocked(x, weight, approx, &out_shape),
            None => x.matmul(&weight.t()),
        };
        let y = if y.is_contiguous() { y } else { y.contiguous() };
        if bias.is_some() || residual.is_some() {
            crate::dispatch_float!(y.dtype(), "linear", T => {
                let b = bias.map(|b| b.contiguous_vec::<T>());
                let add_bias = |ys: &mut [T]| {
                    if let Some(b) = &b {
                        for row in ys.chunks_mut(out_f) {
                            for (v, &bv) in row.iter_mut().zip(b) {
                                *v += bv;
                            }
                        }
                    }
                };
                match residual {
                    Some(r) => r.with_slice(|rs: &[T]| {
                        y.with_slice_mut(|ys: &mut [T]| {
                            for (v, &rv) in ys.iter_mut().zip(rs) {
                                *v += rv;
                            }
                            add_bias(ys)
                        })
                    }),
                    None => y.with_slice_mut(add_bias),
                }
            });
        }
        y
    });
    let mut inputs = vec![x, weight];
    inputs.extend(bias);
    inputs.extend(residual);
    Tensor::from_op(y, &inputs, || FusedLinearBackward {
        x: x.clone(),
        weight: weight.clone(),
        has_bias: bias.is_some(),
        has_residual: residual.is_some(),
        act,
    })
}

/// The composition [`fused_linear`] equals (used by its tests).
#[cfg(test)]
pub(crate) fn fused_linear_composed(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    act: Option<GeluApprox>,
    residual: Option<&Tensor>,
) -> Tensor {
    let a = match act {
        Some(approx) => x.gelu(approx),
        None => x.clone(),
    };
    let mut y = a.matmul(&weight.t());
    if let Some(b) = bias {
        y = y + b;
    }
    match residual {
        Some(r) => r + &y,
        None => y,
    }
}

struct FusedLinearBackward {
    x: Tensor,
    weight: Tensor,
    has_bias: bool,
    has_residual: bool,
    act: Option<GeluApprox>,
}

impl Backward for FusedLinearBackward {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn backward(&self, dy: &Tensor, needs: &[bool]) -> crate::autograd::Grads {
        let (out_f, in_f) = (self.weight.size(0), self.weight.size(1));
        let x2 = self.x.reshape([-1, in_f as isize]);
        let dy2 = dy.reshape([-1, out_f as isize]);
        // Non-finite inputs take the general path, whose kernel call falls back to PyTorch's formula there.
        let finite = || crate::dispatch_float!(x2.dtype(), "linear", T => x2.with_slice(|s: &[T]| s.iter().all(|v| v.is_finite())));
        if let Some(approx) = self.act.filter(|_| !is_grad_enabled() && finite()) {
            let (dx, dw) = gelu_linear_backward_blocked(&x2, &dy2, &self.weight, approx, needs[0], needs[1]);
            let mut grads = vec![dx.map(|d| d.reshape(self.x.shape())), dw];
            if self.has_bias {
                grads.push(needs[2].then(|| dy2.sum_dim(0, false)));
            }
            if self.has_residual {
                grads.push(needs[grads.len()].then(|| dy.clone()));
            }
            return grads.into();
        }
        // Recorded under create_graph (grad mode on), plain kernels otherwise.
        let a2 = match self.act {
            Some(approx) if needs[1] => Some(x2.gelu(approx)),
            Some(_) => None,
            None => Some(x2.clone()),
        };
        let mut grads = Vec::with_capacity(4);
        grads.push(needs[0].then(|| {
            let da = dy2.matmul(&self.weight);
            let dx = match self.act {
                Some(approx) => x2.gelu_input_grad(&da, approx),
                None => da,
            };
            dx.reshape(self.x.shape())
        }));
        grads.push(needs[1].then(|| dy2.t().matmul(a2.as_ref().expect("activation for dW"))));
        let mut next = 2;
        if self.has_bias {
            grads.push(needs[next].then(|| dy2.sum_dim(0, false)));
            next += 1;
        }
        if self.has_residual {
            grads.push(needs[next].then(|| dy.clone()));
        }
        grads.into()
    }

    fn saved_bytes(&self) -> usize {
        0
    }
}

/// `gelu(x) W^T` in blocks of 128 rows, so `gelu(x)` (as large as `x`) is never materialized in full.
fn gelu_linear_forward_blocked(x: &Tensor, weight: &Tensor, approx: GeluApprox, out_shape: &[usize]) -> Tensor {
    use tensorgrad_kernels::elementwise::{self as ew, Unary};
    use tensorgrad_kernels::gemm::GemmScalar;
    const BLOCK: usize = 128;
    let (in_f, out_f) = (weight.size(1), weight.size(0));
    let rows = x.numel() / in_f.max(1);
    let fwd = match approx {
        GeluApprox::None => Unary::GeluErf,
        GeluApprox::Tanh => Unary::GeluTanh,
    };
    crate::dispatch_float!(x.dtype(), "linear", T => {
        let zero = <T as GemmScalar>::ZERO;
        let one = <T as GemmScalar>::ONE;
        let mut y = vec![zero; rows * out_f];
        let mut buf = vec![zero; BLOCK.min(rows.max(1)) * in_f];
        x.with_slice(|xs: &[T]| weight.with_slice(|w: &[T]| {
            for r0 in (0..rows).step_by(BLOCK) {
                let bm = BLOCK.min(rows - r0);
                let ab = &mut buf[..bm * in_f];
                ew::unary(fwd, &xs[r0 * in_f..(r0 + bm) * in_f], ab);
                // y_blk = a_blk W^T: B = W^T has element (p, j) at w[j * in + p].
                T::gemm(bm, in_f, out_f, one, ab, in_f, 1, w, 1, in_f, zero, &mut y[r0 * out_f..(r0 + bm) * out_f], out_f, 1);
            }
        }));
        Tensor::from_vec(y, out_shape)
    })
}

/// The plain backward of `y = gelu(x) W^T + ..` in blocks of rows, so that neither `gelu(x)` nor `dy W`
/// is ever materialized in full (each would be as large as `x`): per block, `a = gelu(x_blk)` and
/// `dW += dy_blk^T a`, and `dx_blk = gelu'(x_blk) * (dy_blk W)`. `x2` `[rows, in]`, `dy2` `[rows, out]`.
fn gelu_linear_backward_blocked(
    x2: &Tensor,
    dy2: &Tensor,
    weight: &Tensor,
    approx: GeluApprox,
    need_x: bool,
    need_w: bool,
) -> (Option<Tensor>, Option<Tensor>) {
    use tensorgrad_kernels::elementwise::{self as ew, Unary, UnaryBackward};
    use tensorgrad_kernels::gemm::GemmScalar;
    const BLOCK: usize = 128;
    let (rows, in_f, out_f) = (x2.size(0), x2.size(1), weight.size(0));
    let (fwd, bwd) = match approx {
        GeluApprox::None => (Unary::GeluErf, UnaryBackward::GeluErf),
        GeluApprox::Tanh => (Unary::GeluTanh, UnaryBackward::GeluTanh),
    };
    crate::dispatch_float!(x2.dtype(), "linear", T => {
        let zero = <T as GemmScalar>::ZERO;
        let one = <T as GemmScalar>::ONE;
        let mut dx = need_x.then(|| vec![zero; rows * in_f]);
        let mut dw = need_w.then(|| vec![zero; out_f * in_f]);
        let mut buf = vec![zero; BLOCK.min(rows.max(1)) * in_f];
        x2.with_slice(|xs: &[T]| dy2.with_slice(|g: &[T]| weight.with_slice(|w: &[T]| {
            for r0 in (0..rows).step_by(BLOCK) {
                let bm = BLOCK.min(rows - r0);
                let (xb, gb, ab) = (&xs[r0 * in_f..(r0 + bm) * in_f], &g[r0 * out_f..(r0 + bm) * out_f], &mut buf[..bm * in_f]);
                if let Some(dw) = dw.as_mut() {
                    ew::unary(fwd, xb, ab);
                    let beta = if r0 == 0 { zero } else { one };
                    T::gemm(out_f, bm, in_f, one, gb, 1, out_f, ab, in_f, 1, beta, dw, in_f, 1);
                }
                if let Some(dx) = dx.as_mut() {
                    T::gemm(bm, out_f, in_f, one, gb, out_f, 1, w, in_f, 1, zero, ab, in_f, 1);
                    ew::unary_backward(bwd, xb, ab, &mut dx[r0 * in_f..(r0 + bm) * in_f]);
                }
            }
        })));
        (
            dx.map(|v| Tensor::from_vec(v, &[rows, in_f])),
            dw.map(|v| Tensor::from_vec(v, &[out_f, in_f])),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{gradcheck, gradgradcheck, DType, GradcheckOptions};

    #[test]
    fn fused_linear_matches_composition_values_and_gradients() {
        crate::manual_seed(21);
        let f64t = |s: &[usize]| Tensor::randn(s).to_dtype(DType::F64).requires_grad_();
        let (x, w, b, r) = (f64t(&[2, 3, 4]), f64t(&[5, 4]), f64t(&[5]), f64t(&[2, 3, 5]));
        let probe = Tensor::randn(&[2, 3, 5]).to_dtype(DType::F64);
        for act in [None, Some(GeluApprox::None), Some(GeluApprox::Tanh)] {
            for (bias, res) in [(None, None), (Some(&b), None), (Some(&b), Some(&r)), (None, Some(&r))] {
                let fused = fused_linear(&x, &w, bias, act, res);
                let composed = fused_linear_composed(&x, &w, bias, act, res);
                assert!((&fused - &composed).abs().max().item() < 1e-13);
                let mut inputs = vec![&x, &w];
                inputs.extend(bias);
                inputs.extend(res);
                let gf = crate::grad(&[&(&fused * &probe).sum()], &inputs, None, false);
                let gc = crate::grad(&[&(&composed * &probe).sum()], &inputs, None, false);
                for (a, c) in gf.iter().zip(&gc) {
                    assert!((a.as_ref().unwrap() - c.as_ref().unwrap()).abs().max().item() < 1e-12);
                }
                let owned: Vec<Tensor> = inputs.iter().map(|t| (*t).clone()).collect();
                let f = |t: &[Tensor]| {
                    let (bi, ri) = (bias.map(|_| &t[2]), res.map(|_| &t[t.len() - 1]));
                    (fused_linear(&t[0], &t[1], bi, act, ri) * &probe).sum()
                };
                gradcheck(f, &owned, GradcheckOptions::default()).unwrap();
                gradgradcheck(f, &owned, GradcheckOptions::default()).unwrap();
            }
        }
    }

    #[test]
    fn blocked_gelu_forward_and_backward_over_several_row_blocks_match_composition() {
        crate::manual_seed(23);
        let f64t = |s: &[usize]| Tensor::randn(s).to_dtype(DType::F64).requires_grad_();
        let (x, w, b) = (f64t(&[3, 100, 5]), f64t(&[4, 5]), f64t(&[4]));
        let probe = Tensor::randn(&[3, 100, 4]).to_dtype(DType::F64);
        let fused = fused_linear(&x, &w, Some(&b), Some(GeluApprox::None), None);
        let composed = fused_linear_composed(&x, &w, Some(&b), Some(GeluApprox::None), None);
        assert!((&fused - &composed).abs().max().item() < 1e-13);
        let gf = crate::grad(&[&(&fused * &probe).sum()], &[&x, &w, &b], None, false);
        let gc = crate::grad(&[&(&composed * &probe).sum()], &[&x, &w, &b], None, false);
        for (a, c) in gf.iter().zip(&gc) {
            assert!((a.as_ref().unwrap() - c.as_ref().unwrap()).abs().max().item() < 1e-11);
        }
    }

    #[test]
    fn fused_linear_f32_matches_f64() {
        crate::manual_seed(22);
        let (x, w, b, r) =
            (Tensor::randn(&[4, 7]), Tensor::randn(&[3, 7]), Tensor::randn(&[3]), Tensor::randn(&[4, 3]));
        let y = fused_linear(&x, &w, Some(&b), Some(GeluApprox::None), Some(&r)).to_dtype(DType::F64);
        let d = |t: &Tensor| t.to_dtype(DType::F64);
        let want = fused_linear_composed(&d(&x), &d(&w), Some(&d(&b)), Some(GeluApprox::None), Some(&d(&r)));
        assert!((&y - &want).abs().max().item() < 1e-5);
    }
}
