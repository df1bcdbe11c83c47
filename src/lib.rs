//! # tensorgrad
//!
//! A from-scratch tensor library with reverse-mode automatic differentiation, written to be read: every
//! op's forward and backward sit side by side with the math in its module docs.
//!
//! ```
//! use tensorgrad::Tensor;
//!
//! tensorgrad::manual_seed(0);
//! // Fit y = 3x - 1 with one weight and one bias by gradient descent.
//! let x = Tensor::linspace(-1.0, 1.0, 32).reshape([32, 1]);
//! let y = &x * 3.0 - 1.0;
//! let w = Tensor::zeros(&[1, 1]).requires_grad_();
//! let b = Tensor::zeros(&[1]).requires_grad_();
//! for _ in 0..200 {
//!     let pred = x.matmul(&w) + &b;
//!     let loss = (&pred - &y).powf(2.0).mean();
//!     loss.backward();
//!     tensorgrad::no_grad(|| {
//!         for p in [&w, &b] {
//!             let step = p.grad().unwrap() * -0.1;
//!             p.add_assign_unrecorded(&step);
//!             p.set_grad(None);
//!         }
//!     });
//! }
//! assert!((w.item() - 3.0).abs() < 1e-3 && (b.item() + 1.0).abs() < 1e-3);
//! ```
//!
//! ## How to read this code
//! - [`tensor`](crate::Tensor): the handle, storage, strided layout, constructors, printing.
//! - `autograd`: the graph node, the backward engine (the only code that walks the graph), custom ops,
//!   gradcheck.
//! - `ops`: one file per op family; each opens with a table of forward and backward formulas.
//! - `tensorgrad-kernels` (a separate crate): the SIMD and multithreaded kernels, and all the `unsafe`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[macro_use]
mod macros;

mod autograd;
pub mod data;
pub(crate) mod error;
pub mod io;
pub mod nn;
mod ops;
pub mod optim;
pub mod profile;
mod tensor;

pub use autograd::Grads;
pub use autograd::{
    grad, gradcheck, gradgradcheck, is_grad_enabled, no_grad, set_grad_enabled, Backward, BackwardOptions, CustomOp,
    GradModeGuard, GradcheckError, GradcheckOptions, HookHandle, NoGradGuard,
};
pub use ops::{GeluApprox, ShapeArg};
pub use tensor::{manual_seed, randperm, DType, Dims, Element, Float, Tensor};
