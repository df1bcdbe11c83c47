//! Activation functions as modules (`torch.nn.ReLU`, ...), plus [`Maxout`] and [`Flatten`]. Each calls the
//! tensor op of the same name; the math (forward and backward) is in `ops/activation.rs` and `ops/softmax.rs`:
//!
//! | module | forward | derivative |
//! |---|---|---|
//! | ReLU | max(x, 0) | 1 if x > 0 else 0 |
//! | LeakyReLU(s) | x if x > 0 else s x | 1 or s |
//! | ELU(a) | x if x > 0 else a (e^x - 1) | 1 or a e^x |
//! | GELU | x Phi(x) (or the tanh approximation) | Phi(x) + x phi(x) |
//! | Sigmoid | 1 / (1 + e^-x) | y (1 - y) |
//! | Tanh | tanh x | 1 - y^2 |
//! | SiLU | x sigmoid(x) | s (1 + x (1 - s)) |
//! | Softmax(d) | e^x_i / sum_j e^x_j | y * (dy - sum(dy y)) |
//! | Maxout(k) | max over k consecutive features | dy to the argmax |
//! | Flatten(s, e) | merges dims s..=e | reshape back |
//!
//! All of them map any shape to the same shape, except Maxout (`[.., F] -> [.., F / k]`) and Flatten.

use super::functional::{maxout, py_float};
use super::Module;
use crate::ops::GeluApprox;
use crate::tensor::Tensor;

/// Declares a parameterless activation module.
macro_rules! activation {
    ($(#[$doc:meta])* $Name:ident { $($field:ident : $ty:ty),* } |$s:ident, $x:ident| $body:expr, |$d:ident| $describe:expr) => {
        $(#[$doc])*
        ///
        /// # Shapes
        /// Any shape to the same shape.
        #[derive(Clone, Debug)]
        pub struct $Name {
            $(
                #[doc = concat!("The `", stringify!($field), "` parameter, as in PyTorch.")]
                pub $field: $ty,
            )*
        }

        impl Module for $Name {
            #[track_caller]
            fn forward(&self, $x: &Tensor) -> Tensor {
                let $s = self;
                $body
            }

            fn named_parameters(&self) -> Vec<(String, Tensor)> {
                Vec::new()
            }

            fn describe(&self) -> String {
                let $d = self;
                $describe
            }
        }
    };
}

activation!(
    /// `max(x, 0)`, `torch.nn.ReLU`.
    ReLU {} |_s, x| x.relu(), |_d| "ReLU()".into()
);
activation!(
    /// `x` if positive else `negative_slope * x`, `torch.nn.LeakyReLU` (default slope 0.01).
    LeakyReLU { negative_slope: f64 } |s, x| x.leaky_relu(s.negative_slope),
    |d| format!("LeakyReLU(negative_slope={})", py_float(d.negative_slope))
);
activation!(
    /// `x` if positive else `alpha (e^x - 1)`, `torch.nn.ELU` (default alpha 1).
    ELU { alpha: f64 } |s, x| x.elu(s.alpha), |d| format!("ELU(alpha={})", py_float(d.alpha))
);
activation!(
    /// `x Phi(x)`, exact or with the tanh approximation, `torch.nn.GELU`.
    GELU { approximate: GeluApprox } |s, x| x.gelu(s.approximate),
    |d| format!("GELU(approximate='{}')", if d.approximate == GeluApprox::Tanh { "tanh" } else { "none" })
);
activation!(
    /// `1 / (1 + e^-x)`, `torch.nn.Sigmoid`.
    Sigmoid {} |_s, x| x.sigmoid(), |_d| "Sigmoid()".into()
);
activation!(
    /// `tanh x`, `torch.nn.Tanh`.
    Tanh {} |_s, x| x.tanh(), |_d| "Tanh()".into()
);
activation!(
    /// `x sigmoid(x)` (swish), `torch.nn.SiLU`.
    SiLU {} |_s, x| x.silu(), |_d| "SiLU()".into()
);
activation!(
    /// Softmax along `dim`, `torch.nn.Softmax`.
    Softmax { dim: isize } |s, x| x.softmax(s.dim), |d| format!("Softmax(dim={})", d.dim)
);
activation!(
    /// Max over `pieces` consecutive features of the last dim (Goodfellow et al., 2013): `[.., F] -> [.., F / pieces]`.
    /// Not in `torch.nn`; equivalent to `x.unflatten(-1, (F // k, k)).amax(-1)`.
    ///
    /// # Panics
    /// `forward` panics if `F` is not divisible by `pieces`.
    Maxout { pieces: usize } |s, x| maxout(x, s.pieces, -1), |d| format!("Maxout(pieces={})", d.pieces)
);
activation!(
    /// Merges dims `start_dim..=end_dim` into one, `torch.nn.Flatten` (defaults 1 and -1): `[N, C, H, W] -> [N, C H W]`.
    Flatten { start_dim: isize, end_dim: isize } |s, x| x.flatten(s.start_dim, s.end_dim),
    |d| format!("Flatten(start_dim={}, end_dim={})", d.start_dim, d.end_dim)
);

impl ReLU {
    /// `ReLU()`.
    pub fn new() -> ReLU {
        ReLU {}
    }
}
impl Default for ReLU {
    fn default() -> Self {
        ReLU::new()
    }
}
impl LeakyReLU {
    /// `LeakyReLU(negative_slope)`.
    pub fn new(negative_slope: f64) -> LeakyReLU {
        LeakyReLU { negative_slope }
    }
}
impl Default for LeakyReLU {
    /// Slope 0.01.
    fn default() -> Self {
        LeakyReLU::new(0.01)
    }
}
impl ELU {
    /// `ELU(alpha)`.
    pub fn new(alpha: f64) -> ELU {
        ELU { alpha }
    }
}
impl Default for ELU {
    /// Alpha 1.
    fn default() -> Self {
        ELU::new(1.0)
    }
}
impl GELU {
    /// `GELU(approximate)`.
    pub fn new(approximate: GeluApprox) -> GELU {
        GELU { approximate }
    }
}
impl Default for GELU {
    /// The exact (erf) form.
    fn default() -> Self {
        GELU::new(GeluApprox::None)
    }
}
impl Sigmoid {
    /// `Sigmoid()`.
    pub fn new() -> Sigmoid {
        Sigmoid {}
    }
}
impl Default for Sigmoid {
    fn default() -> Self {
        Sigmoid::new()
    }
}
impl Tanh {
    /// `Tanh()`.
    pub fn new() -> Tanh {
        Tanh {}
    }
}
impl Default for Tanh {
    fn default() -> Self {
        Tanh::new()
    }
}
impl SiLU {
    /// `SiLU()`.
    pub fn new() -> SiLU {
        SiLU {}
    }
}
impl Default for SiLU {
    fn default() -> Self {
        SiLU::new()
    }
}
impl Softmax {
    /// `Softmax(dim)`.
    pub fn new(dim: isize) -> Softmax {
        Softmax { dim }
    }
}
impl Maxout {
    /// `Maxout(pieces)`.
    pub fn new(pieces: usize) -> Maxout {
        Maxout { pieces }
    }
}
impl Flatten {
    /// `Flatten(start_dim, end_dim)`.
    pub fn new(start_dim: isize, end_dim: isize) -> Flatten {
        Flatten { start_dim, end_dim }
    }
}
impl Default for Flatten {
    /// `Flatten(1, -1)`.
    fn default() -> Self {
        Flatten::new(1, -1)
    }
}
