//! The [`Tensor`] handle: a cheap-to-clone reference to shared storage seen through a strided layout, plus
//! (for results of differentiable ops) the autograd node that made it.
//!
//! Rooms: `dtype` (element types), `layout` (shape/strides/broadcasting), `create` (constructors),
//! `access` (reading elements out), `display` (PyTorch-like printing), `random` (the seeded generator).

mod access;
mod create;
mod display;
pub(crate) mod dtype;
pub(crate) mod layout;
pub(crate) mod random;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub(crate) use access::gather_row_major;
pub(crate) use dtype::Buffer;
pub use dtype::{DType, Element, Float};
pub use layout::Dims;
pub(crate) use layout::Layout;
pub use random::{manual_seed, randperm};

use crate::autograd::{Hook, Node};

/// Shared, lockable element storage. Views share it; in-place updates (optimizers, gradient accumulation)
/// take the write lock.
pub(crate) type Storage = Arc<StorageCell>;

/// One allocation of tensor elements. It derefs to the lock around the buffer, and counts itself in the
/// process-wide memory statistics ([`crate::profile::memory_stats`]) from creation to drop. Buffers never
/// change length after creation, so the byte count taken at creation is the one released at drop.
pub(crate) struct StorageCell {
    buffer: RwLock<Buffer>,
    bytes: usize,
}

impl StorageCell {
    pub(crate) fn new(buffer: Buffer) -> StorageCell {
        keep_freed_memory_once();
        let bytes = buffer.len() * buffer.dtype().size_in_bytes();
        crate::profile::memory::on_alloc(bytes);
        StorageCell { buffer: RwLock::new(buffer), bytes }
    }

    /// Bytes of the elements.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

/// On the first storage of the process, asks the C allocator to keep freed memory for reuse instead of
/// returning it to the OS after every step ([`tensorgrad_kernels::alloc`]: page faults were a third of a
/// small CNN's step). Set `TENSORGRAD_KEEP_FREED_MEMORY=0` to leave the allocator's defaults alone. Later
/// calls cost one atomic load.
fn keep_freed_memory_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TENSORGRAD_KEEP_FREED_MEMORY").is_none_or(|v| v != "0") {
            tensorgrad_kernels::alloc::keep_freed_memory();
        }
    });
}

impl std::ops::Deref for StorageCell {
    type Target = RwLock<Buffer>;
    fn deref(&self) -> &RwLock<Buffer> {
        &self.buffer
    }
}

impl Drop for StorageCell {
    fn drop(&mut self) {
        crate::profile::memory::on_free(self.bytes);
    }
}

/// An n-dimensional array of `f32`, `f64`, `i64` or `bool` that records the operations applied to it so
/// gradients can flow back through them.
///
/// Cloning is cheap (an `Arc` clone) and shares data, like a second Python reference to the same tensor.
/// Tensors are `Send + Sync`.
#[derive(Clone)]
pub struct Tensor(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) storage: Storage,
    pub(crate) layout: Layout,
    pub(crate) dtype: DType,
    /// Set on leaves by the user; op outputs require grad exactly when they have a node.
    pub(crate) requires_grad: AtomicBool,
    pub(crate) node: Option<Node>,
    /// The accumulated gradient: leaves that require grad, and non-leaves that called `retain_grad`.
    pub(crate) grad: Mutex<Option<Tensor>>,
    pub(crate) retains_grad: AtomicBool,
    pub(crate) hooks: Mutex<Vec<(usize, Hook)>>,
    /// Set by the first `register_hook`, so the backward sweep skips the hooks' lock on all other tensors.
    pub(crate) has_hooks: AtomicBool,
    /// The backward pass that last visited this tensor and its place in that pass's order (see
    /// `autograd::engine::Visits`): a per-tensor mark instead of a hash-map entry per tensor and pass.
    pub(crate) visit: crate::autograd::VisitMark,
}

impl Inner {
    pub(crate) fn fresh(storage: Storage, layout: Layout, dtype: DType) -> Inner {
        Inner {
            storage,
            layout,
            dtype,
            requires_grad: AtomicBool::new(false),
            node: None,
            grad: Mutex::new(None),
            retains_grad: AtomicBool::new(false),
            hooks: Mutex::new(Vec::new()),
            has_hooks: AtomicBool::new(false),
            visit: crate::autograd::VisitMark::default(),
        }
    }
}

impl Tensor {
    /// Makes a tensor without history over `storage` viewed through `layout`.
    pub(crate) fn from_parts(storage: Storage, layout: Layout, dtype: DType) -> Tensor {
        Tensor(Arc::new(Inner::fresh(storage, layout, dtype)))
    }

    /// Wraps a fresh buffer as a contiguous tensor of `shape`.
    pub(crate) fn from_buffer(buffer: Buffer, shape: &[usize]) -> Tensor {
        let dtype = buffer.dtype();
        debug_assert_eq!(buffer.len(), shape.iter().product::<usize>());
        Tensor::from_parts(Arc::new(StorageCell::new(buffer)), Layout::contiguous(shape), dtype)
    }

    /// A new tensor without history sharing this one's storage, seen through `layout`.
    pub(crate) fn with_layout(&self, layout: Layout) -> Tensor {
        Tensor::from_parts(self.0.storage.clone(), layout, self.0.dtype)
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.0.layout
    }

    /// The size of each dimension.
    pub fn shape(&self) -> &[usize] {
        &self.0.layout.shape
    }

    /// The size of dimension `dim` (negative counts from the end).
    ///
    /// # Panics
    /// If `dim` is out of range.
    #[track_caller]
    pub fn size(&self, dim: isize) -> usize {
        if self.rank() == 0 {
            crate::error::panic_msg(format!("size: dimension {dim} is out of range for a tensor of rank 0"));
        }
        self.shape()[self.normalize_dim("size", dim)]
    }

    /// The strides of each dimension, in elements.
    pub fn strides(&self) -> &[usize] {
        &self.0.layout.strides
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.layout.shape.len()
    }

    /// Alias of [`rank`](Self::rank), as in PyTorch.
    pub fn dim(&self) -> usize {
        self.rank()
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.0.layout.numel()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }

    /// Whether the elements are laid out row-major without gaps.
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }

    /// A number identifying this tensor handle's node (stable while the tensor lives).
    pub fn id(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    /// Whether two handles are the same tensor (not merely equal values).
    pub fn same(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Whether two tensors share storage (one may be a view of the other).
    pub fn shares_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0.storage, &other.0.storage)
    }

    /// Bytes of the underlying storage (shared by all views of it).
    pub fn storage_bytes(&self) -> usize {
        self.0.storage.bytes()
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Buffer> {
        self.0.storage.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, Buffer> {
        self.0.storage.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether gradients are recorded for this tensor.
    pub fn requires_grad(&self) -> bool {
        self.0.node.is_some() || self.0.requires_grad.load(Ordering::Relaxed)
    }

    /// Marks a leaf tensor as needing gradients (builder style): `Tensor::randn(&[3, 4]).requires_grad_()`.
    ///
    /// # Panics
    /// On a non-leaf, or a non-float tensor.
    #[track_caller]
    pub fn requires_grad_(self) -> Tensor {
        self.set_requires_grad(true);
        self
    }

    /// Sets whether a leaf tensor needs gradients.
    ///
    /// # Panics
    /// On a non-leaf (its `requires_grad` follows its inputs), or when asking for gradients of a non-float tensor.
    #[track_caller]
    pub fn set_requires_grad(&self, requires: bool) {
        if !self.is_leaf() {
            crate::error::panic_msg(format!(
                "set_requires_grad: only leaf tensors can change requires_grad (this one was made by `{}`); use detach() first",
                self.op_name().unwrap_or("?")
            ));
        }
        if requires && !self.dtype().is_float() {
            crate::error::panic_msg(format!(
                "set_requires_grad: only float tensors can require gradients, got dtype {}",
                self.dtype()
            ));
        }
        self.0.requires_grad.store(requires, Ordering::Relaxed);
    }

    /// Whether this tensor was made by the user rather than by a recorded op.
    pub fn is_leaf(&self) -> bool {
        self.0.node.is_none()
    }

    /// The name of the op that made this tensor (`None` for leaves).
    pub fn op_name(&self) -> Option<&'static str> {
        self.0.node.as_ref().map(|n| n.name)
    }

    /// A tensor sharing this one's data with no history and `requires_grad == false`.
    pub fn detach(&self) -> Tensor {
        self.with_layout(self.0.layout.clone())
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
