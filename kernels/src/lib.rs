//! Raw-slice CPU kernels for tensorgrad: no tensors, no autograd; slices, dims and strides in.
//!
//! - [`elementwise`]: SIMD unary maps (fast `exp`/`log`/`tanh`/`sigmoid`/`gelu`/`erf` with tested error
//!   bounds), fused backward helpers, broadcasting binary maps, `axpy`, fused Adam/AdamW/SGD updates.
//! - [`reduce`]: deterministic sums, axis sums, max/min with indices.
//! - [`rows`]: softmax / log-softmax / layer norm / cross-entropy over the rows of a matrix.
//! - [`conv`]: 2-d (and 1-d) convolution via im2col + GEMM, forward and both backward paths.
//! - [`pool`]: max / average / adaptive-average 2-d pooling, forward and backward.
//! - [`cpu`]: feature detection and the one-time warning when the SIMD paths were built without AVX2.
//!
//! Every kernel is generic over [`Float`] (`f32` fast paths, `f64` exact); results are bitwise identical
//! for any number of rayon threads.

pub mod conv;
pub mod cpu;
pub mod elementwise;
pub mod pool;
pub mod reduce;
pub mod rows;

pub use elementwise::Float;
