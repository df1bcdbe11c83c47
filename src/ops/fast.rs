//! The bridge from ops to `tensorgrad-kernels`: value computations of the hot ops go to the SIMD and
//! multithreaded kernels (f32 vectorized, f64 scalar but exact); everything else uses the scalar reference
//! paths in `ops`. Nothing here knows about autograd: these functions return plain values.

use super::unary::zip_float;
use crate::tensor::layout::{broadcast_shapes, broadcast_strides};
use crate::tensor::{Element, Tensor};
use tensorgrad_kernels::elementwise::{self as ew, Binary, Unary, UnaryBackward};
use tensorgrad_kernels::gemm::GemmScalar;
use tensorgrad_kernels::Float as KernelFloat;

pub(crate) use tensorgrad_kernels::elementwise::{Binary as BinaryKernel, Unary as UnaryKernel};

/// An element type the kernels compute in (`f32`, `f64`).
pub(crate) trait Kernel: Element + KernelFloat + GemmScalar {}
impl Kernel for f32 {}
impl Kernel for f64 {}

/// A fresh output buffer (its contents are overwritten by the kernel).
fn buffer<T: Kernel>(n: usize) -> Vec<T> {
    vec![<T as KernelFloat>::ZERO; n]
}

/// `op(x)` elementwise through the kernels.
#[track_caller]
pub(crate) fn unary(name: &str, op: Unary, x: &Tensor) -> Tensor {
    crate::dispatch_float!(x.dtype(), name, T => unary_t::<T>(op, x))
}

fn unary_t<T: Kernel>(op: Unary, x: &Tensor) -> Tensor {
    let mut out = buffer::<T>(x.numel());
    x.with_slice(|s: &[T]| ew::unary(op, s, &mut out));
    Tensor::from_vec(out, x.shape())
}

/// The fused backward `dx = dy * f'(..)` of a unary op, given `a` (the saved input or output, see
/// [`UnaryBackward`]) of the same shape as `dy`. Where `a` holds NaN or an infinity, the whole tensor goes
/// through `reference(a, dy)` instead, PyTorch's formula evaluated naively in f64, so special values
/// propagate exactly as PyTorch propagates them (the SIMD kernels saturate instead). Relu's kernel is a
/// select (`a <= 0 ? 0 : dy`, false for NaN), exact for every input, so it skips that scan.
#[track_caller]
pub(crate) fn unary_backward(
    name: &str,
    op: UnaryBackward,
    a: &Tensor,
    dy: &Tensor,
    reference: impl Fn(f64, f64) -> f64,
) -> Tensor {
    debug_assert_eq!(a.shape(), dy.shape());
    crate::dispatch_float!(a.dtype(), name, T => {
        let exact = matches!(op, UnaryBackward::Relu);
        let finite = exact || a.with_slice(|s: &[T]| s.iter().all(|&v| <T as Element>::to_f64(v).is_finite()));
        if !finite {
            return zip_float(name, a, dy, reference);
        }
        let mut out = buffer::<T>(a.numel());
        a.with_slice(|s: &[T]| dy.with_slice(|g: &[T]| ew::unary_backward(op, s, g, &mut out)));
        Tensor::from_vec(out, a.shape())
    })
}

fn binary_kernel(name: &str) -> Option<Binary> {
    Some(match name {
        "add" => Binary::Add,
        "sub" => Binary::Sub,
        "mul" => Binary::Mul,
        "div" => Binary::Div,
        "maximum" => Binary::Maximum,
        "minimum" => Binary::Minimum,
        _ => return None,
    })
}

/// `f(a, b)` elementwise with broadcasting; the named ops with a kernel (add, sub, mul, div, maximum,
/// minimum) run through it.
#[track_caller]
pub(crate) fn binary_value(op: &str, a: &Tensor, b: &Tensor, f: impl Fn(f64, f64) -> f64) -> Tensor {
    match binary_kernel(op) {
        Some(kernel) if a.dtype() == b.dtype() && a.dtype().is_float() => {
            let Some(shape) = broadcast_shapes(a.shape(), b.shape()) else {
                crate::error::shape_mismatch(op, "shapes cannot be broadcast together", a.shape(), b.shape())
            };
            crate::dispatch_float!(a.dtype(), op, T => binary_t::<T>(kernel, a, b, &shape))
        }
        _ => zip_float(op, a, b, f),
    }
}

fn binary_t<T: Kernel>(op: Binary, a: &Tensor, b: &Tensor, shape: &[usize]) -> Tensor {
    let mut out = buffer::<T>(shape.iter().product());
    if a.shape() == b.shape() && a.is_contiguous() && b.is_contiguous() {
        a.with_slice(|x: &[T]| b.with_slice(|y: &[T]| ew::binary(op, x, y, &mut out)));
    } else {
        let (la, lb) = (a.layout(), b.layout());
        let (sa, sb) = (broadcast_strides(la, shape), broadcast_strides(lb, shape));
        let ga = a.read();
        let gb = b.read();
        let (da, db) = (T::slice(&ga), T::slice(&gb));
        ew::binary_strided(op, shape, &da[la.offset..], &sa, &db[lb.offset..], &sb, &mut out);
    }
    Tensor::from_vec(out, shape)
}

/// `x op s` (or `s op x` when `scalar_first`) for a scalar `s`.
#[track_caller]
pub(crate) fn scalar_value(name: &str, op: Binary, x: &Tensor, s: f64, scalar_first: bool) -> Tensor {
    crate::dispatch_float!(x.dtype(), name, T => {
        let s = <T as Element>::from_f64(s);
        // One element (a loss, a scalar chain): the arithmetic itself, in the same IEEE operation the SIMD
        // kernel would do, so the result is identical; the kernel's setup and a zero-filled buffer would cost
        // more than the op. The result is stored inline in its buffer (no allocation).
        if x.numel() == 1 {
            let a = x.with_slice(|v: &[T]| v[0]);
            let y = if scalar_first { ew::apply_scalar(op, s, a) } else { ew::apply_scalar(op, a, s) };
            return Tensor::from_one(y, x.shape());
        }
        let out = x.with_slice(|v: &[T]| {
            let mut out = buffer::<T>(v.len());
            if scalar_first {
                ew::scalar_binary(op, s, v, &mut out)
            } else {
                ew::binary_scalar(op, v, s, &mut out)
            }
            out
        });
        Tensor::from_vec(out, x.shape())
    })
}

/// `x *= s` elementwise, in place.
pub(crate) fn scale_in_place<T: Kernel>(x: &mut [T], s: T) {
    ew::scale(x, s);
}

/// `dst += src` elementwise.
pub(crate) fn add_assign<T: Kernel>(dst: &mut [T], src: &[T]) {
    ew::add_assign(dst, src);
}

/// `C = A B` (C overwritten), A m x k, B k x n, C m x n, each given from its (0, 0) element with row and
/// column strides.
pub(crate) fn gemm<T: Kernel>(
    (m, k, n): (usize, usize, usize),
    a: &[T],
    (rsa, csa): (usize, usize),
    b: &[T],
    (rsb, csb): (usize, usize),
    c: &mut [T],
    (rsc, csc): (usize, usize),
) {
    let (one, zero) = (<T as GemmScalar>::ONE, <T as GemmScalar>::ZERO);
    T::gemm(m, k, n, one, a, rsa, csa, b, rsb, csb, zero, c, rsc, csc);
}

/// Sums contiguous `x` viewed as `[outer, len, inner]` over the middle axis: `[outer, inner]`.
pub(crate) fn sum_axis<T: Kernel>(x: &[T], outer: usize, len: usize, inner: usize) -> Vec<T> {
    let mut out = buffer::<T>(outer * inner);
    tensorgrad_kernels::reduce::sum_axis(x, outer, len, inner, &mut out);
    out
}

/// Softmax (or log-softmax) of each row of contiguous `[rows, cols]` data.
pub(crate) fn softmax_rows<T: Kernel>(x: &[T], cols: usize, log: bool) -> Vec<T> {
    let mut out = buffer::<T>(x.len());
    if cols > 0 {
        if log {
            tensorgrad_kernels::rows::log_softmax_rows(x, &mut out, cols);
        } else {
            tensorgrad_kernels::rows::softmax_rows(x, &mut out, cols);
        }
    }
    out
}

/// The plain backward of row softmax / log-softmax: `dx` from the saved output `y` and `dy`.
pub(crate) fn softmax_rows_backward<T: Kernel>(y: &[T], dy: &[T], cols: usize, log: bool) -> Vec<T> {
    let mut dx = buffer::<T>(y.len());
    if cols > 0 {
        if log {
            tensorgrad_kernels::rows::log_softmax_rows_backward(y, dy, &mut dx, cols);
        } else {
            tensorgrad_kernels::rows::softmax_rows_backward(y, dy, &mut dx, cols);
        }
    }
    dx
}
