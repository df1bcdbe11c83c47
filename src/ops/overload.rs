//! Operator overloading: `+ - * /` between tensors (owned or borrowed) and with `f64` scalars on
//! either side, and unary `-`. Each is the named method (`add`, `mul_scalar`, ...) under another name.

use crate::tensor::Tensor;
use std::ops::{Add, Div, Mul, Neg, Sub};

macro_rules! tensor_tensor {
    ($Trait:ident, $method:ident) => {
        impl $Trait<&Tensor> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: &Tensor) -> Tensor {
                Tensor::$method(self, rhs)
            }
        }
        impl $Trait<Tensor> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: Tensor) -> Tensor {
                Tensor::$method(self, &rhs)
            }
        }
        impl $Trait<&Tensor> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: &Tensor) -> Tensor {
                Tensor::$method(&self, rhs)
            }
        }
        impl $Trait<Tensor> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: Tensor) -> Tensor {
                Tensor::$method(&self, &rhs)
            }
        }
    };
}

tensor_tensor!(Add, add);
tensor_tensor!(Sub, sub);
tensor_tensor!(Mul, mul);
tensor_tensor!(Div, div);

macro_rules! tensor_scalar {
    ($s:ty) => {
        impl Add<$s> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn add(self, s: $s) -> Tensor {
                self.add_scalar(s as f64)
            }
        }
        impl Sub<$s> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn sub(self, s: $s) -> Tensor {
                self.add_scalar(-(s as f64))
            }
        }
        impl Mul<$s> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn mul(self, s: $s) -> Tensor {
                self.mul_scalar(s as f64)
            }
        }
        impl Div<$s> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn div(self, s: $s) -> Tensor {
                self.mul_scalar(1.0 / s as f64)
            }
        }
        impl Add<&Tensor> for $s {
            type Output = Tensor;
            #[track_caller]
            fn add(self, t: &Tensor) -> Tensor {
                t.add_scalar(self as f64)
            }
        }
        impl Sub<&Tensor> for $s {
            type Output = Tensor;
            #[track_caller]
            fn sub(self, t: &Tensor) -> Tensor {
                t.rsub_scalar(self as f64)
            }
        }
        impl Mul<&Tensor> for $s {
            type Output = Tensor;
            #[track_caller]
            fn mul(self, t: &Tensor) -> Tensor {
                t.mul_scalar(self as f64)
            }
        }
        impl Div<&Tensor> for $s {
            type Output = Tensor;
            #[track_caller]
            fn div(self, t: &Tensor) -> Tensor {
                t.rdiv_scalar(self as f64)
            }
        }
        impl Add<$s> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn add(self, s: $s) -> Tensor {
                &self + s
            }
        }
        impl Sub<$s> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn sub(self, s: $s) -> Tensor {
                &self - s
            }
        }
        impl Mul<$s> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn mul(self, s: $s) -> Tensor {
                &self * s
            }
        }
        impl Div<$s> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn div(self, s: $s) -> Tensor {
                &self / s
            }
        }
        impl Add<Tensor> for $s {
            type Output = Tensor;
            #[track_caller]
            fn add(self, t: Tensor) -> Tensor {
                self + &t
            }
        }
        impl Sub<Tensor> for $s {
            type Output = Tensor;
            #[track_caller]
            fn sub(self, t: Tensor) -> Tensor {
                self - &t
            }
        }
        impl Mul<Tensor> for $s {
            type Output = Tensor;
            #[track_caller]
            fn mul(self, t: Tensor) -> Tensor {
                self * &t
            }
        }
        impl Div<Tensor> for $s {
            type Output = Tensor;
            #[track_caller]
            fn div(self, t: Tensor) -> Tensor {
                self / &t
            }
        }
    };
}

tensor_scalar!(f64);

impl Neg for &Tensor {
    type Output = Tensor;
    #[track_caller]
    fn neg(self) -> Tensor {
        Tensor::neg(self)
    }
}

impl Neg for Tensor {
    type Output = Tensor;
    #[track_caller]
    fn neg(self) -> Tensor {
        Tensor::neg(&self)
    }
}
