//! Binary elementwise ops with NumPy broadcasting, and their scalar forms.
//!
//! | op | forward | backward (da, db), each summed back to its input's shape |
//! |---|---|---|
//! | add | a + b | dy, dy |
//! | sub | a - b | dy, -dy |
//! | mul | a * b | dy * b, dy * a |
//! | div | a / b | dy / b, -dy * a / b^2 |
//! | pow | a^b | dy * b * a^(b-1) (0 where b = 0), dy * a^b * ln a (0 where a = 0 and b >= 0) |
//! | maximum | max(a, b) | dy unless a < b (half on ties), dy unless b < a (half on ties); NaN: both get dy |
//! | minimum | min(a, b) | dy unless a > b (half on ties), dy unless b > a (half on ties); NaN: both get dy |
//!
//! Scalar forms (`x + s`, `s - x`, `x * s`, `s / x`, ...) are single ops, not a broadcast scalar tensor.

use super::fast::{self, BinaryKernel};
use super::unary::zip_float;
use crate::autograd::{is_exclusive, is_grad_enabled, Backward};
use crate::ops::zip_map;
use crate::tensor::{DType, Dims, Element, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Maximum,
    Minimum,
}

impl BinaryOp {
    fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
        }
    }

    fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Pow => a.powf(b),
            BinaryOp::Maximum => {
                if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else {
                    a.max(b)
                }
            }
            BinaryOp::Minimum => {
                if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else {
                    a.min(b)
                }
            }
        }
    }
}

#[track_caller]
fn binary(a: &Tensor, b: &Tensor, op: BinaryOp) -> Tensor {
    let value = fast::binary_value(op.name(), a, b, |p, q| op.apply(p, q));
    Tensor::from_op(value, &[a, b], || {
        // add/sub need only the shapes; the others save their inputs.
        let save = !matches!(op, BinaryOp::Add | BinaryOp::Sub);
        BinaryBackward {
            op,
            a: save.then(|| a.clone()),
            b: save.then(|| b.clone()),
            a_shape: a.shape().into(),
            b_shape: b.shape().into(),
        }
    })
}

struct BinaryBackward {
    op: BinaryOp,
    a: Option<Tensor>,
    b: Option<Tensor>,
    a_shape: Dims,
    b_shape: Dims,
}

impl Backward for BinaryBackward {
    fn name(&self) -> &'static str {
        self.op.name()
    }

    fn backward(&self, dy: &Tensor, needs: &[bool]) -> crate::autograd::Grads {
        let (a, b) = (self.a.as_ref(), self.b.as_ref());
        let (da, db) = match self.op {
            BinaryOp::Add => (needs[0].then(|| dy.clone()), needs[1].then(|| dy.clone())),
            BinaryOp::Sub => (needs[0].then(|| dy.clone()), needs[1].then(|| -dy)),
            BinaryOp::Mul => (needs[0].then(|| dy * b.unwrap()), needs[1].then(|| dy * a.unwrap())),
            BinaryOp::Div => {
                let (a, b) = (a.unwrap(), b.unwrap());
                (needs[0].then(|| dy / b), needs[1].then(|| -(dy * a / b / b)))
            }
            BinaryOp::Pow => {
                let (a, b) = (a.unwrap(), b.unwrap());
                // PyTorch's convention: 0 where b == 0 (else 0 * 0^-1 = NaN at a = 0).
                let da = needs[0].then(|| {
                    let g = dy * b * &a.pow(&(b - 1.0));
                    let zero_exp = b.detach().eq_scalar(0.0);
                    Tensor::where_(&zero_exp, &Tensor::zeros_dtype(&[], g.dtype()), &g)
                });
                let db = needs[1].then(|| {
                    // d(a^b)/db = a^b ln a, defined as 0 where a == 0 and b >= 0 (PyTorch's convention).
                    // `ln a` must stay a function of `a` (built with `where_`, not a graph-less map), or second
                    // derivatives d(db)/da lose the 1/a term under create_graph.
                    // Only the a == 0, b >= 0 entries are masked (a = 0, b < 0 gives inf * -inf = -inf, as PyTorch).
                    let masked = zip_map::<f64, bool>(
                        "pow",
                        &a.detach().to_dtype(DType::F64),
                        &b.detach().to_dtype(DType::F64),
                        |p, q| p == 0.0 && q >= 0.0,
                    );
                    let safe_log = Tensor::where_(&masked, &a.ones_like(), a).log();
                    Tensor::where_(&masked, &Tensor::zeros_dtype(&[], a.dtype()), &(dy * &a.pow(b) * &safe_log))
                });
                (da, db)
            }
            BinaryOp::Maximum | BinaryOp::Minimum => {
                let (a, b) = (a.unwrap(), b.unwrap());
                // PyTorch's weights: 1/2 each on ties, 0 for the loser, 1 otherwise, so a NaN on either side
                // passes the full gradient to both (no comparison holds).
                let max = self.op == BinaryOp::Maximum;
                let weight = |a_side: bool| {
                    zip_float(self.op.name(), a, b, move |p, q| {
                        // Does this side lose? (max: it is the smaller one; min: the larger one.)
                        let (mine, other) = if a_side { (p, q) } else { (q, p) };
                        if p == q {
                            0.5
                        } else if (max && mine < other) || (!max && mine > other) {
                            0.0
                        } else {
                            1.0
                        }
                    })
                };
                (needs[0].then(|| dy * &weight(true)), needs[1].then(|| dy * &weight(false)))
            }
        };
        [da.map(|g| g.sum_to_shape(&self.a_shape)), db.map(|g| g.sum_to_shape(&self.b_shape))].into()
    }
}

impl Tensor {
    /// `self + other` with broadcasting.
    ///
    /// # Panics
    /// If the shapes cannot be broadcast together or the dtypes differ.
    #[track_caller]
    pub fn add(&self, other: &Tensor) -> Tensor {
        let _p = crate::profile::op_scope("add");
        binary(self, other, BinaryOp::Add)
    }

    /// `self - other` with broadcasting.
    #[track_caller]
    pub fn sub(&self, other: &Tensor) -> Tensor {
        let _p = crate::profile::op_scope("sub");
        binary(self, other, BinaryOp::Sub)
    }

    /// `self * other` elementwise with broadcasting.
    #[track_caller]
    pub fn mul(&self, other: &Tensor) -> Tensor {
        let _p = crate::profile::op_scope("mul");
        binary(self, other, BinaryOp::Mul)
    }

    /// `self / other` elementwise with broadcasting.
    #[track_caller]
    pub fn div(&self, other: &Tensor) -> Tensor {
        let _p = crate::profile::op_scope("div");
        binary(self, other, BinaryOp::Div)
    }

    /// `self ^ other` elementwise with broadcasting.
    #[track_caller]
    pub fn pow(&self, other: &Tensor) -> Tensor {
        let _p = crate::profile::op_scope("pow");
        binary(self, other, BinaryOp::Pow)
    }

    /// Elementwise maximum with broadcasting (ties split the gradient evenly, NaN propagates).
    #[track_caller]
    pub fn maximum(&self, other: &Tensor) -> Tensor {
        let _p = crate::profile::op_scope("maximum");
        binary(self, other, BinaryOp::Maximum)
    }

    /// Elementwise minimum with broadcasting (ties split the gradient evenly, NaN propagates).
    #[track_caller]
    pub fn minimum(&self, other: &Tensor) -> Tensor {
        let _p = crate::profile::op_scope("minimum");
        binary(self, other, BinaryOp::Minimum)
    }

    /// `self + s`.
    #[track_caller]
    pub fn add_scalar(&self, s: f64) -> Tensor {
        let _p = crate::profile::op_scope("add_scalar");
        scalar_op(self, ScalarOp::Add(s))
    }

    /// `self * s`.
    #[track_caller]
    pub fn mul_scalar(&self, s: f64) -> Tensor {
        let _p = crate::profile::op_scope("mul_scalar");
        scalar_op(self, ScalarOp::Mul(s))
    }

    /// `s - self`.
    #[track_caller]
    pub fn rsub_scalar(&self, s: f64) -> Tensor {
        let _p = crate::profile::op_scope("rsub_scalar");
        scalar_op(self, ScalarOp::RSub(s))
    }

    /// `s / self`.
    #[track_caller]
    pub fn rdiv_scalar(&self, s: f64) -> Tensor {
        let _p = crate::profile::op_scope("rdiv_scalar");
        scalar_op(self, ScalarOp::RDiv(s))
    }

    /// Adds `other` into this tensor's storage, unrecorded (gradient accumulation, optimizer steps).
    ///
    /// # Panics
    /// On a shape or dtype mismatch, or a non-contiguous destination.
    #[track_caller]
    pub fn add_assign_unrecorded(&self, other: &Tensor) {
        let _p = crate::profile::op_scope("add_assign_unrecorded");
        if self.shape() != other.shape() || self.dtype() != other.dtype() {
            crate::error::shape_mismatch("add_assign", "shapes or dtypes differ", self.shape(), other.shape());
        }
        crate::dispatch_float!(self.dtype(), "add_assign", T => {
            let src = other.contiguous_vec::<T>();
            self.with_slice_mut::<T, _>(|dst| fast::add_assign(dst, &src));
        })
    }
}

#[derive(Clone, Copy, Debug)]
enum ScalarOp {
    Add(f64),
    Mul(f64),
    RSub(f64),
    RDiv(f64),
}

#[track_caller]
fn scalar_op(x: &Tensor, op: ScalarOp) -> Tensor {
    let y = match op {
        ScalarOp::Add(s) => fast::scalar_value("add", BinaryKernel::Add, x, s, false),
        ScalarOp::Mul(s) => fast::scalar_value("mul", BinaryKernel::Mul, x, s, false),
        ScalarOp::RSub(s) => fast::scalar_value("rsub", BinaryKernel::Sub, x, s, true),
        ScalarOp::RDiv(s) => fast::scalar_value("rdiv", BinaryKernel::Div, x, s, true),
    };
    match op {
        // dx = dy needs nothing saved: a zero-sized backward, which `Box` stores without allocating.
        ScalarOp::Add(_) => Tensor::from_op(y, &[x], || AddScalarBackward),
        _ => Tensor::from_op(y, &[x], || ScalarBackward { op, x: matches!(op, ScalarOp::RDiv(_)).then(|| x.clone()) }),
    }
}

/// `add_scalar`'s backward: `dx = dy`.
struct AddScalarBackward;

impl Backward for AddScalarBackward {
    fn name(&self) -> &'static str {
        "add_scalar"
    }

    fn backward(&self, dy: &Tensor, _: &[bool]) -> crate::autograd::Grads {
        [Some(dy.clone())].into()
    }
}

/// `dy * s`, mul_scalar's backward. When no graph is being recorded and nothing else can see `dy` (the
/// engine's own gradient, see `autograd::is_exclusive`), it scales `dy` in place and returns it: the same
/// values, without allocating a new tensor per node.
fn scale_gradient(dy: &Tensor, s: f64) -> Tensor {
    if is_grad_enabled() || !is_exclusive(dy) {
        return dy.mul_scalar(s);
    }
    crate::dispatch_float!(dy.dtype(), "mul_scalar", T => {
        dy.with_slice_mut(|v: &mut [T]| fast::scale_in_place(v, <T as Element>::from_f64(s)))
    });
    dy.clone()
}

struct ScalarBackward {
    op: ScalarOp,
    x: Option<Tensor>,
}

impl Backward for ScalarBackward {
    fn name(&self) -> &'static str {
        match self.op {
            ScalarOp::Add(_) => "add_scalar",
            ScalarOp::Mul(_) => "mul_scalar",
            ScalarOp::RSub(_) => "rsub_scalar",
            ScalarOp::RDiv(_) => "rdiv_scalar",
        }
    }

    fn backward(&self, dy: &Tensor, _: &[bool]) -> crate::autograd::Grads {
        let dx = match self.op {
            ScalarOp::Add(_) => dy.clone(),
            ScalarOp::Mul(s) => scale_gradient(dy, s),
            ScalarOp::RSub(_) => -dy,
            ScalarOp::RDiv(s) => {
                let x = self.x.as_ref().unwrap();
                -(dy * s / x / x)
            }
        };
        [Some(dx)].into()
    }
}
