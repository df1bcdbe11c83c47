//! Getting elements in and out: `to_vec`, `item`, slice access for kernels and optimizers, in-place updates.

use super::layout::for_each_offset;
use super::{Buffer, DType, Element, Layout, Tensor};
use crate::error::panic_msg;

impl Tensor {
    /// Copies the elements out in row-major order.
    ///
    /// # Panics
    /// If `T` is not this tensor's dtype.
    #[track_caller]
    pub fn to_vec<T: Element>(&self) -> Vec<T> {
        self.check_dtype::<T>("to_vec");
        self.contiguous_vec::<T>()
    }

    /// Copies the elements out as `f64`, whatever the dtype (bools become 0 or 1).
    pub fn to_vec_f64(&self) -> Vec<f64> {
        match self.dtype() {
            DType::F32 => self.contiguous_vec::<f32>().into_iter().map(|x| x as f64).collect(),
            DType::F64 => self.contiguous_vec::<f64>(),
            DType::I64 => self.contiguous_vec::<i64>().into_iter().map(|x| x as f64).collect(),
            DType::Bool => self.contiguous_vec::<bool>().into_iter().map(|x| x as u8 as f64).collect(),
        }
    }

    /// The single value of a one-element tensor, as `f64`.
    ///
    /// # Panics
    /// If the tensor does not have exactly one element.
    #[track_caller]
    pub fn item(&self) -> f64 {
        if self.numel() != 1 {
            panic_msg(format!(
                "item: only one-element tensors can be converted to a number, got shape {:?}",
                self.shape()
            ));
        }
        let off = self.0.layout.offset;
        match &*self.read() {
            Buffer::F32(v) => v[off] as f64,
            Buffer::F64(v) => v[off],
            Buffer::I64(v) => v[off] as f64,
            Buffer::Bool(v) => v[off] as u8 as f64,
        }
    }

    /// Runs `f` on the elements in row-major order, borrowing the storage when the tensor is contiguous and
    /// copying otherwise.
    ///
    /// # Panics
    /// If `T` is not this tensor's dtype.
    #[track_caller]
    pub fn with_slice<T: Element, R>(&self, f: impl FnOnce(&[T]) -> R) -> R {
        self.check_dtype::<T>("with_slice");
        if self.is_contiguous() {
            let guard = self.read();
            f(&T::slice(&guard)[self.0.layout.contiguous_range()])
        } else {
            f(&self.contiguous_vec::<T>())
        }
    }

    /// Runs `f` on the elements of a contiguous tensor, mutably, in place.
    ///
    /// This writes through every view sharing the storage and is not recorded by autograd: use it for
    /// parameter updates under `no_grad`, never on a tensor saved for a pending backward.
    ///
    /// # Panics
    /// If `T` is not this tensor's dtype or the tensor is not contiguous.
    #[track_caller]
    pub fn with_slice_mut<T: Element, R>(&self, f: impl FnOnce(&mut [T]) -> R) -> R {
        self.check_dtype::<T>("with_slice_mut");
        if !self.is_contiguous() {
            panic_msg(format!("with_slice_mut: tensor of shape {:?} is not contiguous", self.shape()));
        }
        let range = self.0.layout.contiguous_range();
        let mut guard = self.write();
        f(&mut T::slice_mut(&mut guard)[range])
    }

    /// Overwrites this tensor's elements with `src`'s (same shape and dtype), in place, unrecorded.
    ///
    /// # Panics
    /// On a shape or dtype mismatch.
    #[track_caller]
    pub fn copy_(&self, src: &Tensor) {
        if self.shape() != src.shape() || self.dtype() != src.dtype() {
            panic_msg(format!(
                "copy_: destination {:?} {} vs source {:?} {}",
                self.shape(),
                self.dtype(),
                src.shape(),
                src.dtype()
            ));
        }
        crate::dispatch_all!(self.dtype(), T => {
            let values = src.contiguous_vec::<T>();
            self.write_row_major::<T>(&values);
        })
    }

    /// Sets every element to `value`, in place, unrecorded.
    pub fn fill_(&self, value: f64) {
        crate::dispatch_all!(self.dtype(), T => {
            let values = vec![T::from_f64(value); self.numel()];
            self.write_row_major::<T>(&values);
        })
    }

    /// Sets every element to zero, in place, unrecorded.
    pub fn zero_(&self) {
        self.fill_(0.0)
    }

    /// Writes `values` (row-major) into the elements this tensor's layout addresses.
    fn write_row_major<T: Element>(&self, values: &[T]) {
        let layout = self.0.layout.clone();
        let mut guard = self.write();
        let data = T::slice_mut(&mut guard);
        if layout.is_contiguous() {
            data[layout.contiguous_range()].copy_from_slice(values);
        } else {
            let mut i = 0;
            for_each_offset(&layout.shape, &layout.strides, layout.offset, |o| {
                data[o] = values[i];
                i += 1;
            });
        }
    }

    /// The elements in row-major order as a fresh vector (the engine's internal read path).
    pub(crate) fn contiguous_vec<T: Element>(&self) -> Vec<T> {
        let guard = self.read();
        gather_row_major(T::slice(&guard), &self.0.layout)
    }

    #[track_caller]
    pub(crate) fn check_dtype<T: Element>(&self, op: &str) {
        if self.dtype() != T::DTYPE {
            panic_msg(format!(
                "{op}: tensor of shape {:?} has dtype {}, asked for {}",
                self.shape(),
                self.dtype(),
                T::DTYPE
            ));
        }
    }
}

/// Copies the elements addressed by `layout` out of `data` in row-major order.
pub(crate) fn gather_row_major<T: Copy>(data: &[T], layout: &Layout) -> Vec<T> {
    if layout.is_contiguous() {
        return data[layout.contiguous_range()].to_vec();
    }
    let mut out = Vec::with_capacity(layout.numel());
    for_each_offset(&layout.shape, &layout.strides, layout.offset, |o| out.push(data[o]));
    out
}
