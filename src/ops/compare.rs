//! Comparisons (giving `bool` tensors), logical ops on masks, and selection by a mask.
//!
//! | op | forward | backward |
//! |---|---|---|
//! | eq, ne, lt, le, gt, ge | elementwise test, broadcast | none (bool output) |
//! | where_(c, a, b) | a where c else b, broadcast | da = where(c, dy, 0), db = where(c, 0, dy), summed to shape |
//! | masked_fill(m, v) | v where m else x | dx = where(m, 0, dy) |

use super::{map, zip_map};
use crate::autograd::Backward;
use crate::error::{panic_msg, shape_mismatch};
use crate::tensor::layout::broadcast_shapes;
use crate::tensor::{DType, Dims, Element, Tensor};

macro_rules! comparison {
    ($($method:ident, $scalar:ident, $name:literal, $op:tt;)*) => {
        impl Tensor {
            $(
                #[doc = concat!("Elementwise `self ", stringify!($op), " other` with broadcasting, as a bool tensor.")]
                #[track_caller]
                pub fn $method(&self, other: &Tensor) -> Tensor {
                    let _p = crate::profile::op_scope(stringify!($method));
                    crate::dispatch_all!(self.dtype(), T => zip_map::<T, bool>($name, self, other, |a, b| a $op b))
                }

                #[doc = concat!("Elementwise `self ", stringify!($op), " s`, as a bool tensor.")]
                #[track_caller]
                pub fn $scalar(&self, s: f64) -> Tensor {
                    let _p = crate::profile::op_scope(stringify!($scalar));
                    crate::dispatch_all!(self.dtype(), T => map::<T, bool>(self, |a| a.to_f64() $op s))
                }
            )*
        }
    };
}

comparison! {
    eq, eq_scalar, "eq", ==;
    ne, ne_scalar, "ne", !=;
    lt, lt_scalar, "lt", <;
    le, le_scalar, "le", <=;
    gt, gt_scalar, "gt", >;
    ge, ge_scalar, "ge", >=;
}

#[track_caller]
fn check_bool(op: &str, t: &Tensor) {
    if t.dtype() != DType::Bool {
        panic_msg(format!("{op}: expected a bool mask, got dtype {} (shape {:?})", t.dtype(), t.shape()));
    }
}

impl Tensor {
    /// Elementwise NOT of a bool tensor.
    #[track_caller]
    pub fn logical_not(&self) -> Tensor {
        let _p = crate::profile::op_scope("logical_not");
        check_bool("logical_not", self);
        map::<bool, bool>(self, |a| !a)
    }

    /// Elementwise AND of bool tensors, with broadcasting.
    #[track_caller]
    pub fn logical_and(&self, other: &Tensor) -> Tensor {
        let _p = crate::profile::op_scope("logical_and");
        check_bool("logical_and", self);
        zip_map::<bool, bool>("logical_and", self, other, |a, b| a && b)
    }

    /// Elementwise OR of bool tensors, with broadcasting.
    #[track_caller]
    pub fn logical_or(&self, other: &Tensor) -> Tensor {
        let _p = crate::profile::op_scope("logical_or");
        check_bool("logical_or", self);
        zip_map::<bool, bool>("logical_or", self, other, |a, b| a || b)
    }

    /// `a` where `condition` holds, else `b`, with all three broadcast together (`torch.where`).
    ///
    /// # Panics
    /// If `condition` is not bool, `a` and `b` differ in dtype, or the shapes do not broadcast.
    #[track_caller]
    pub fn where_(condition: &Tensor, a: &Tensor, b: &Tensor) -> Tensor {
        let _p = crate::profile::op_scope("where");
        check_bool("where", condition);
        if a.dtype() != b.dtype() {
            panic_msg(format!("where: dtype mismatch: {} vs {}", a.dtype(), b.dtype()));
        }
        // let-else rather than closures, so `#[track_caller]` reaches the user's line.
        let Some(ab) = broadcast_shapes(a.shape(), b.shape()) else {
            shape_mismatch("where", "shapes cannot be broadcast together", a.shape(), b.shape())
        };
        let Some(shape) = broadcast_shapes(condition.shape(), &ab) else {
            shape_mismatch("where", "condition does not broadcast to the values", condition.shape(), &ab)
        };
        let c = condition.detach().expand(&shape).contiguous_vec::<bool>();
        let value = crate::dispatch_all!(a.dtype(), T => {
            let av = a.detach().expand(&shape).contiguous_vec::<T>();
            let bv = b.detach().expand(&shape).contiguous_vec::<T>();
            let out: Vec<T> = c.iter().zip(av.iter().zip(&bv)).map(|(&c, (&x, &y))| if c { x } else { y }).collect();
            Tensor::from_vec(out, &shape)
        });
        Tensor::from_op(value, &[a, b], || WhereBackward {
            condition: condition.clone(),
            a_shape: a.shape().into(),
            b_shape: b.shape().into(),
        })
    }

    /// `value` where `mask` holds, else `self`; `mask` must broadcast to `self`'s shape.
    ///
    /// # Panics
    /// If `mask` is not bool or does not broadcast to this tensor's shape.
    #[track_caller]
    pub fn masked_fill(&self, mask: &Tensor, value: f64) -> Tensor {
        let _p = crate::profile::op_scope("masked_fill");
        check_bool("masked_fill", mask);
        if broadcast_shapes(mask.shape(), self.shape()).as_deref() != Some(self.shape()) {
            shape_mismatch("masked_fill", "mask does not broadcast to the tensor", mask.shape(), self.shape());
        }
        Tensor::where_(mask, &Tensor::full_dtype(&[], value, self.dtype()), self)
    }
}

struct WhereBackward {
    condition: Tensor,
    a_shape: Dims,
    b_shape: Dims,
}

impl Backward for WhereBackward {
    fn name(&self) -> &'static str {
        "where"
    }
    fn backward(&self, dy: &Tensor, needs: &[bool]) -> crate::autograd::Grads {
        let zero = Tensor::zeros_dtype(&[], dy.dtype());
        let da = needs[0].then(|| Tensor::where_(&self.condition, dy, &zero).sum_to_shape(&self.a_shape));
        let db = needs[1].then(|| Tensor::where_(&self.condition, &zero, dy).sum_to_shape(&self.b_shape));
        [da, db].into()
    }
}
