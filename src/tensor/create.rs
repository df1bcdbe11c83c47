//! Constructors. Float constructors make `f32` tensors (the fast path) unless they take a `DType`;
//! `from_vec` takes its dtype from the vector's element type.

use super::random;
use super::{DType, Element, Tensor};
use crate::error::panic_msg;
use crate::tensor::dtype::sealed::Sealed as _;

fn filled(shape: &[usize], dtype: DType, value: f64) -> Tensor {
    let n: usize = shape.iter().product();
    let buffer = crate::dispatch_all!(dtype, T => T::into_buffer(vec![T::from_f64(value); n]));
    Tensor::from_buffer(buffer, shape)
}

fn from_f64s(values: Vec<f64>, shape: &[usize], dtype: DType) -> Tensor {
    let buffer = crate::dispatch_all!(dtype, T => T::into_buffer(values.into_iter().map(T::from_f64).collect()));
    Tensor::from_buffer(buffer, shape)
}

impl Tensor {
    /// A tensor of `shape` from row-major `data`; the dtype follows `T`.
    ///
    /// # Panics
    /// If `data.len()` is not the product of `shape`.
    #[track_caller]
    pub fn from_vec<T: Element>(data: Vec<T>, shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        if data.len() != n {
            panic_msg(format!("from_vec: {} elements cannot have shape {:?} ({} elements)", data.len(), shape, n));
        }
        Tensor::from_buffer(T::into_buffer(data), shape)
    }

    /// A one-element tensor of `shape` (whose product must be 1) holding `value`, without allocating a
    /// buffer (it is stored inline).
    pub(crate) fn from_one<T: Element>(value: T, shape: &[usize]) -> Tensor {
        debug_assert_eq!(shape.iter().product::<usize>(), 1);
        Tensor::from_buffer(T::one(value), shape)
    }

    /// A 1-D tensor copied from a slice.
    pub fn from_slice<T: Element>(data: &[T]) -> Tensor {
        Tensor::from_vec(data.to_vec(), &[data.len()])
    }

    /// A zero-dimensional tensor holding `value`.
    pub fn scalar<T: Element>(value: T) -> Tensor {
        Tensor::from_one(value, &[])
    }

    /// An `f32` tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Tensor {
        filled(shape, DType::F32, 0.0)
    }

    /// A tensor of zeros of the given dtype.
    pub fn zeros_dtype(shape: &[usize], dtype: DType) -> Tensor {
        filled(shape, dtype, 0.0)
    }

    /// An `f32` tensor of ones.
    pub fn ones(shape: &[usize]) -> Tensor {
        filled(shape, DType::F32, 1.0)
    }

    /// A tensor of ones of the given dtype.
    pub fn ones_dtype(shape: &[usize], dtype: DType) -> Tensor {
        filled(shape, dtype, 1.0)
    }

    /// An `f32` tensor with every element `value`.
    pub fn full(shape: &[usize], value: f64) -> Tensor {
        filled(shape, DType::F32, value)
    }

    /// A tensor of the given dtype with every element `value`.
    pub fn full_dtype(shape: &[usize], value: f64, dtype: DType) -> Tensor {
        filled(shape, dtype, value)
    }

    /// Zeros with this tensor's shape and dtype.
    pub fn zeros_like(&self) -> Tensor {
        filled(self.shape(), self.dtype(), 0.0)
    }

    /// Ones with this tensor's shape and dtype.
    pub fn ones_like(&self) -> Tensor {
        filled(self.shape(), self.dtype(), 1.0)
    }

    /// `value` everywhere, with this tensor's shape and dtype.
    pub fn full_like(&self, value: f64) -> Tensor {
        filled(self.shape(), self.dtype(), value)
    }

    /// U[0, 1) samples with this tensor's shape and dtype.
    pub fn rand_like(&self) -> Tensor {
        Tensor::uniform_dtype(self.shape(), 0.0, 1.0, self.dtype())
    }

    /// N(0, 1) samples with this tensor's shape and dtype.
    pub fn randn_like(&self) -> Tensor {
        Tensor::normal_dtype(self.shape(), 0.0, 1.0, self.dtype())
    }

    /// `[start, start + step, ...]` up to but excluding `end`, as `f32`.
    ///
    /// # Panics
    /// If `step` is zero or has the wrong sign.
    #[track_caller]
    pub fn arange(start: f64, end: f64, step: f64) -> Tensor {
        Tensor::arange_dtype(start, end, step, DType::F32)
    }

    /// Like [`arange`](Self::arange) with a dtype (`I64` gives integer indices).
    #[track_caller]
    pub fn arange_dtype(start: f64, end: f64, step: f64, dtype: DType) -> Tensor {
        if step == 0.0 || (end - start) * step < 0.0 {
            panic_msg(format!("arange: step {step} cannot go from {start} to {end}"));
        }
        let n = ((end - start) / step).ceil().max(0.0) as usize;
        from_f64s((0..n).map(|i| start + i as f64 * step).collect(), &[n], dtype)
    }

    /// `steps` evenly spaced `f32` values from `start` to `end` inclusive.
    pub fn linspace(start: f64, end: f64, steps: usize) -> Tensor {
        let values = (0..steps)
            .map(|i| if steps == 1 { start } else { start + (end - start) * i as f64 / (steps - 1) as f64 })
            .collect();
        from_f64s(values, &[steps], DType::F32)
    }

    /// The `n x n` identity matrix, `f32`.
    pub fn eye(n: usize) -> Tensor {
        let mut values = vec![0.0; n * n];
        for i in 0..n {
            values[i * n + i] = 1.0;
        }
        from_f64s(values, &[n, n], DType::F32)
    }

    /// `f32` samples of U[0, 1) from the global seeded generator.
    pub fn rand(shape: &[usize]) -> Tensor {
        Tensor::uniform_dtype(shape, 0.0, 1.0, DType::F32)
    }

    /// `f32` samples of N(0, 1) from the global seeded generator.
    pub fn randn(shape: &[usize]) -> Tensor {
        Tensor::normal_dtype(shape, 0.0, 1.0, DType::F32)
    }

    /// `f32` samples of U[low, high).
    pub fn uniform(shape: &[usize], low: f64, high: f64) -> Tensor {
        Tensor::uniform_dtype(shape, low, high, DType::F32)
    }

    /// Samples of U[low, high) of the given float dtype.
    pub fn uniform_dtype(shape: &[usize], low: f64, high: f64, dtype: DType) -> Tensor {
        from_f64s(random::uniform_vec(shape.iter().product(), low, high), shape, dtype)
    }

    /// `f32` samples of N(mean, std^2).
    pub fn normal(shape: &[usize], mean: f64, std: f64) -> Tensor {
        Tensor::normal_dtype(shape, mean, std, DType::F32)
    }

    /// Samples of N(mean, std^2) of the given float dtype.
    pub fn normal_dtype(shape: &[usize], mean: f64, std: f64, dtype: DType) -> Tensor {
        from_f64s(random::normal_vec(shape.iter().product(), mean, std), shape, dtype)
    }

    /// `i64` integers uniform in `[low, high)`.
    ///
    /// # Panics
    /// If `low >= high`.
    #[track_caller]
    pub fn randint(low: i64, high: i64, shape: &[usize]) -> Tensor {
        if low >= high {
            panic_msg(format!("randint: empty range [{low}, {high})"));
        }
        Tensor::from_vec(random::randint_vec(shape.iter().product(), low, high), shape)
    }

    /// This tensor converted to `dtype` (a copy; `self` when the dtype already matches). Differentiable
    /// between float dtypes.
    #[track_caller]
    pub fn to_dtype(&self, dtype: DType) -> Tensor {
        if dtype == self.dtype() {
            return self.clone();
        }
        let _p = crate::profile::op_scope("to_dtype");
        let values = self.to_vec_f64();
        let out = from_f64s(values, self.shape(), dtype);
        if self.dtype().is_float() && dtype.is_float() {
            Tensor::from_op(out, &[self], || CastBackward { from: self.dtype() })
        } else {
            out
        }
    }
}

/// d(cast x)/dx = identity, cast back to the input's dtype.
struct CastBackward {
    from: DType,
}

impl crate::autograd::Backward for CastBackward {
    fn name(&self) -> &'static str {
        "to_dtype"
    }
    fn backward(&self, grad: &Tensor, _needs: &[bool]) -> crate::autograd::Grads {
        [Some(grad.to_dtype(self.from))].into()
    }
}
