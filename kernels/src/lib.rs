//! Raw-slice CPU kernels for tensorgrad: raw slices with dims and strides in, no tensors, no autograd.
//!
//! All of the project's `unsafe` lives here, behind safe wrappers that check lengths and strides once.
//!
//! * [`gemm`]: `f32`/`f64` matrix multiply (BLIS scheme, AVX2+FMA microkernels picked at run time, portable
//!   fallback, rayon threads, strided and batched).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod gemm;
