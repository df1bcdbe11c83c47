//! Raw-slice CPU kernels for tensorgrad: no tensors, no autograd; slices, dims and strides in.
//! All of the project's `unsafe` lives here, behind safe wrappers that check lengths and strides once.
//!
//! - [`gemm`]: `f32`/`f64` matrix multiply (BLIS scheme, AVX2+FMA and AVX-512 microkernels picked at run
//!   time, portable fallback, rayon threads, strided and batched; `B` packed once for repeated products:
//!   [`gemm::PackedB`], [`gemm::gemm_packed_b`]).
//! - [`elementwise`]: SIMD unary maps (fast `exp`/`log`/`tanh`/`sigmoid`/`gelu`/`erf` with tested error
//!   bounds), fused backward helpers, broadcasting binary maps, `axpy`, fused Adam/AdamW/SGD updates.
//! - [`reduce`]: deterministic sums, axis sums, max/min with indices.
//! - [`alloc`]: keep freed memory in the process between training steps (glibc's mmap/trim thresholds).
//! - [`attention`]: fused multi-head self-attention over a packed qkv (causal or not), forward and backward.
//! - [`rows`]: softmax / log-softmax / layer norm / cross-entropy over the rows of a matrix.
//! - [`conv`]: 2-d (and 1-d) convolution via im2col + GEMM, forward and both backward paths.
//! - [`pool`]: max / average / adaptive-average 2-d pooling, forward and backward.
//! - [`cpu`]: feature detection and the one-time warning when the SIMD paths were built without AVX2.
//!
//! Every kernel is generic over [`Float`] (`f32` fast paths, `f64` exact); results are bitwise identical
//! for any number of rayon threads. Safe wrappers check slice lengths and panic with a message naming the
//! kernel.
//!
//! ```
//! use tensorgrad_kernels::{elementwise as ew, reduce, rows};
//!
//! // y = gelu(x) + bias (bias broadcast over the rows of a [2, 3] matrix), then row softmax.
//! let x = [0.5f32, -1.0, 2.0, 0.0, 1.5, -0.5];
//! let bias = [0.1f32, 0.2, 0.3];
//! let mut g = [0.0f32; 6];
//! ew::gelu_erf(&x, &mut g);
//! let mut y = [0.0f32; 6];
//! ew::binary_strided(ew::Binary::Add, &[2, 3], &g, &[3, 1], &bias, &[0, 1], &mut y);
//! let mut p = [0.0f32; 6];
//! rows::softmax_rows(&y, &mut p, 3);
//! assert!((reduce::sum(&p) - 2.0).abs() < 1e-6);
//! ```

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

pub mod alloc;
pub mod attention;
pub mod batch_norm;
pub mod conv;
pub mod cpu;
pub mod elementwise;
pub mod gemm;
pub mod pool;
pub mod reduce;
pub mod rows;

pub use elementwise::Float;
