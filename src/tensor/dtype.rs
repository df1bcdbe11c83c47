//! Element types. `f32` is the fast path, `f64` works everywhere (gradcheck runs in it), `i64` holds indices
//! (argmax, gather, embedding tokens, class targets) and `bool` holds masks (comparisons, `where`).

use smallvec::SmallVec;
use std::fmt;

/// The element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float: the fast path, backed by the SIMD kernels.
    F32,
    /// 64-bit float: every differentiable op works in it.
    F64,
    /// 64-bit signed integer, for indices and class labels (not differentiable).
    I64,
    /// Boolean, for masks (not differentiable).
    Bool,
}

impl DType {
    /// Whether tensors of this type can carry gradients.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// Size of one element in bytes.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::Bool => 1,
        }
    }

    /// PyTorch-style name (`float32`, `float64`, `int64`, `bool`).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::I64 => "int64",
            DType::Bool => "bool",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The owned elements of a tensor's storage, one variant per dtype. Up to 16 bytes of elements (a loss, a
/// scalar, a one-element chain) live inline, without a heap allocation of their own; larger buffers are on
/// the heap exactly like a `Vec` (and a `Vec` handed to `from_vec` keeps its allocation).
#[derive(Clone, Debug)]
#[doc(hidden)]
pub enum Buffer {
    F32(SmallVec<[f32; 4]>),
    F64(SmallVec<[f64; 2]>),
    I64(SmallVec<[i64; 2]>),
    Bool(SmallVec<[bool; 16]>),
}

impl Buffer {
    pub(crate) fn dtype(&self) -> DType {
        match self {
            Buffer::F32(_) => DType::F32,
            Buffer::F64(_) => DType::F64,
            Buffer::I64(_) => DType::I64,
            Buffer::Bool(_) => DType::Bool,
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Buffer::F32(v) => v.len(),
            Buffer::F64(v) => v.len(),
            Buffer::I64(v) => v.len(),
            Buffer::Bool(v) => v.len(),
        }
    }
}

pub(crate) mod sealed {
    use super::Buffer;

    /// Storage plumbing, kept out of the public API: only the four element types implement it.
    pub trait Sealed: Sized {
        /// Wraps a vector as a buffer.
        fn into_buffer(v: Vec<Self>) -> Buffer;
        /// A one-element buffer (stored inline, no allocation).
        fn one(x: Self) -> Buffer;
        /// Borrows the elements of a buffer of this dtype (the engine guarantees the dtype matches).
        fn slice(b: &Buffer) -> &[Self];
        /// Mutably borrows the elements of a buffer of this dtype.
        fn slice_mut(b: &mut Buffer) -> &mut [Self];
    }
}

/// A Rust type that can be a tensor element: `f32`, `f64`, `i64` or `bool`.
pub trait Element: sealed::Sealed + Copy + Send + Sync + PartialEq + PartialOrd + fmt::Debug + 'static {
    /// The dtype this Rust type stores as.
    const DTYPE: DType;
    /// Converts to f64 (booleans become 0 or 1).
    fn to_f64(self) -> f64;
    /// Converts from f64 (rounding toward zero for integers; nonzero is `true` for bool).
    fn from_f64(x: f64) -> Self;
}

macro_rules! impl_element {
    ($t:ty, $variant:ident, $to:expr, $from:expr) => {
        impl sealed::Sealed for $t {
            fn into_buffer(v: Vec<Self>) -> Buffer {
                Buffer::$variant(SmallVec::from_vec(v))
            }
            fn one(x: Self) -> Buffer {
                let mut v = SmallVec::new();
                v.push(x);
                Buffer::$variant(v)
            }
            fn slice(b: &Buffer) -> &[Self] {
                match b {
                    Buffer::$variant(v) => v,
                    other => panic!("internal: expected {} storage, found {}", DType::$variant, other.dtype()),
                }
            }
            fn slice_mut(b: &mut Buffer) -> &mut [Self] {
                match b {
                    Buffer::$variant(v) => v,
                    other => panic!("internal: expected {} storage, found {}", DType::$variant, other.dtype()),
                }
            }
        }

        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            fn to_f64(self) -> f64 {
                ($to)(self)
            }
            fn from_f64(x: f64) -> Self {
                ($from)(x)
            }
        }
    };
}

impl_element!(f32, F32, |x: f32| x as f64, |x: f64| x as f32);
impl_element!(f64, F64, |x: f64| x, |x: f64| x);
impl_element!(i64, I64, |x: i64| x as f64, |x: f64| x as i64);
impl_element!(bool, Bool, |x: bool| if x { 1.0 } else { 0.0 }, |x: f64| x != 0.0);

/// A floating-point element (`f32` or `f64`): the types differentiable ops compute in.
///
/// The math here is the scalar reference; hot f32 paths go through `tensorgrad-kernels`.
pub trait Float:
    Element
    + PartialOrd
    + fmt::Display
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + std::ops::AddAssign
    + std::iter::Sum
{
    /// 0
    const ZERO: Self;
    /// 1
    const ONE: Self;
    /// Positive infinity.
    const INFINITY: Self;
    /// Negative infinity.
    const NEG_INFINITY: Self;
    /// e^x
    fn exp(self) -> Self;
    /// natural logarithm
    fn ln(self) -> Self;
    /// square root
    fn sqrt(self) -> Self;
    /// hyperbolic tangent
    fn tanh(self) -> Self;
    /// sine
    fn sin(self) -> Self;
    /// cosine
    fn cos(self) -> Self;
    /// absolute value
    fn abs(self) -> Self;
    /// x^p
    fn powf(self, p: Self) -> Self;
    /// ln(1 + x), accurate near 0
    fn ln_1p(self) -> Self;
    /// the error function
    fn erf(self) -> Self;
    /// whether the value is NaN
    fn is_nan(self) -> bool;
    /// whether the value is finite
    fn is_finite(self) -> bool;
}

macro_rules! impl_float {
    ($t:ident) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const INFINITY: Self = $t::INFINITY;
            const NEG_INFINITY: Self = $t::NEG_INFINITY;
            fn exp(self) -> Self {
                $t::exp(self)
            }
            fn ln(self) -> Self {
                $t::ln(self)
            }
            fn sqrt(self) -> Self {
                $t::sqrt(self)
            }
            fn tanh(self) -> Self {
                $t::tanh(self)
            }
            fn sin(self) -> Self {
                $t::sin(self)
            }
            fn cos(self) -> Self {
                $t::cos(self)
            }
            fn abs(self) -> Self {
                $t::abs(self)
            }
            fn powf(self, p: Self) -> Self {
                $t::powf(self, p)
            }
            fn ln_1p(self) -> Self {
                $t::ln_1p(self)
            }
            fn erf(self) -> Self {
                erf_f64(self as f64) as $t
            }
            fn is_nan(self) -> bool {
                $t::is_nan(self)
            }
            fn is_finite(self) -> bool {
                $t::is_finite(self)
            }
        }
    };
}

impl_float!(f32);
impl_float!(f64);

/// erf(x) to about 1 ulp in f64: a Taylor series for small |x| and a continued fraction of erfc for large |x|.
pub(crate) fn erf_f64(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let ax = x.abs();
    if ax < 2.5 {
        // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
        let x2 = x * x;
        let mut term = x;
        let mut sum = x;
        let mut n = 0.0;
        loop {
            n += 1.0;
            term *= -x2 / n;
            let add = term / (2.0 * n + 1.0);
            sum += add;
            // `<=`, not `<`: at x = 0 both are 0 and `<` never breaks (erf(0) and gelu(0) hung forever).
            if add.abs() <= 1e-17 * sum.abs() {
                break;
            }
        }
        sum * std::f64::consts::FRAC_2_SQRT_PI
    } else if ax > 6.0 {
        x.signum()
    } else {
        // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))), evaluated bottom-up
        let mut f = ax;
        for k in (1..60).rev() {
            f = ax + (k as f64 / 2.0) / f;
        }
        let erfc = (-ax * ax).exp() / (f * std::f64::consts::PI.sqrt());
        x.signum() * (1.0 - erfc)
    }
}
