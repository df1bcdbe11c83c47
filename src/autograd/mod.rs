//! Reverse-mode automatic differentiation.
//!
//! Define-by-run: every differentiable op returns its value through [`Tensor::from_op`], which (when some
//! input requires grad and grad mode is on) attaches a *node*: the op's [`Backward`] object plus its inputs.
//! [`Tensor::backward`] (in `engine`) is the only code that walks the graph; it never names a specific op.
//!
//! Rooms: this file (the node, grad mode, hooks), `engine` (topological sort + reverse sweep, functional
//! `grad`), `custom` (the public [`CustomOp`] trait), `gradcheck` (finite-difference checks).

mod custom;
mod engine;
mod gradcheck;
mod grads;

pub use custom::CustomOp;
pub use engine::{grad, BackwardOptions};
pub(crate) use engine::{is_exclusive, VisitMark};
pub use gradcheck::{gradcheck, gradgradcheck, GradcheckError, GradcheckOptions};
pub use grads::Grads;

use crate::tensor::Tensor;
use smallvec::SmallVec;
use std::cell::Cell;
use std::panic::Location;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// The backward half of a differentiable op: given dL/d(output), return dL/d(input) for each input.
///
/// Write the formulas with tensor ops (`dy * (1.0 - &y * &y)`): with grad mode off (a plain backward) they
/// cost what the kernels cost; under `create_graph` they record a graph themselves, which is how
/// higher-order gradients work. Implement this (and call [`Tensor::from_op`]) to add a primitive op; for
/// most new ops the simpler [`CustomOp`] is enough.
pub trait Backward: Send + Sync + 'static {
    /// The op's name, shown in errors, graph printouts and the profiler.
    fn name(&self) -> &'static str;

    /// Gradients with respect to each input, in the order the inputs were given to [`Tensor::from_op`].
    /// `needs_grad[i]` says whether input `i` wants one; return `None` for those that do not (or that have
    /// no gradient). Each returned gradient must have its input's shape. Build the result from an array:
    /// `[Some(dx)].into()`, `[Some(da), None].into()` (see [`Grads`]; up to two are stored without
    /// allocating).
    fn backward(&self, grad_output: &Tensor, needs_grad: &[bool]) -> Grads;

    /// Bytes of tensors saved for backward beyond the op's inputs (an output, a mask), for memory statistics.
    /// The inputs themselves are always kept by the node and counted by the profiler (see
    /// `profile::memory_stats` and the profiler's "Saved" column); the default, 0, says "nothing more".
    fn saved_bytes(&self) -> usize {
        0
    }
}

/// The autograd record attached to an op's output.
pub(crate) struct Node {
    pub(crate) name: &'static str,
    /// Where in user code the op was called (for anomaly mode, the profiler and graph printouts).
    pub(crate) location: &'static Location<'static>,
    /// `None` once a backward without `retain_graph` has freed the saved tensors.
    pub(crate) state: Mutex<Option<NodeState>>,
}

pub(crate) struct NodeState {
    pub(crate) op: Box<dyn Backward>,
    pub(crate) inputs: SmallVec<[Tensor; 2]>,
}

impl Drop for Node {
    /// Unlinks the graph iteratively: Rust would otherwise drop a long chain of `Arc`s recursively and
    /// overflow the stack (a million-op chain must drop fine).
    fn drop(&mut self) {
        let Some(state) = self.state.get_mut().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let NodeState { op, inputs } = state;
        drop(op);
        let mut stack: Vec<Tensor> = inputs.into_vec();
        while let Some(t) = stack.pop() {
            if let Some(mut inner) = Arc::into_inner(t.0) {
                if let Some(node) = inner.node.as_mut() {
                    if let Some(s) = node.state.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
                        let NodeState { op, inputs } = s;
                        drop(op);
                        stack.extend(inputs);
                    }
                }
                // `inner` drops here with an empty node: no recursion.
            }
        }
    }
}

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops on this thread currently record the graph.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Restores the previous grad mode when dropped. Made by [`set_grad_enabled`] and [`NoGradGuard::new`].
#[must_use = "grad mode is restored when the guard drops"]
pub struct GradModeGuard {
    previous: bool,
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}

/// Turns graph recording on or off for this thread until the returned guard drops.
pub fn set_grad_enabled(enabled: bool) -> GradModeGuard {
    let previous = GRAD_ENABLED.with(|g| g.replace(enabled));
    GradModeGuard { previous }
}

/// A scope without graph recording, like `with torch.no_grad():`.
pub struct NoGradGuard;

impl NoGradGuard {
    /// Turns recording off until the returned guard drops.
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> GradModeGuard {
        set_grad_enabled(false)
    }
}

/// Runs `f` without recording the graph (evaluation, parameter updates).
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _guard = set_grad_enabled(false);
    f()
}

/// A gradient hook: sees the gradient flowing into a tensor and may return a replacement.
pub(crate) type Hook = Arc<dyn Fn(&Tensor) -> Option<Tensor> + Send + Sync>;

static NEXT_HOOK_ID: AtomicUsize = AtomicUsize::new(0);

/// Returned by [`Tensor::register_hook`]; call [`remove`](HookHandle::remove) to unregister the hook.
pub struct HookHandle {
    tensor: Weak<crate::tensor::Inner>,
    id: usize,
}

impl HookHandle {
    /// Unregisters the hook (a no-op if the tensor is gone).
    pub fn remove(self) {
        if let Some(inner) = self.tensor.upgrade() {
            inner.hooks.lock().unwrap_or_else(|e| e.into_inner()).retain(|(id, _)| *id != self.id);
        }
    }
}

impl Tensor {
    /// Returns `value` as the output of a differentiable op over `inputs`.
    ///
    /// When grad mode is on and some input requires grad, the output gets a node holding the backward object
    /// built by `make_backward` (called only then, so saving tensors costs nothing in `no_grad` code) and
    /// the inputs; otherwise `value` comes back unchanged. `value` must not itself have a node.
    #[track_caller]
    pub fn from_op<B: Backward>(value: Tensor, inputs: &[&Tensor], make_backward: impl FnOnce() -> B) -> Tensor {
        crate::profile::before_op(inputs, &value);
        if !is_grad_enabled() || !inputs.iter().any(|t| t.requires_grad()) {
            return value;
        }
        let op = make_backward();
        // Pushed one by one: cheaper than `collect` (SmallVec's generic `extend`) for the usual 1 or 2 inputs.
        let mut saved = SmallVec::with_capacity(inputs.len());
        for &t in inputs {
            saved.push(t.clone());
        }
        let node = Node {
            name: op.name(),
            location: Location::caller(),
            state: Mutex::new(Some(NodeState { op: Box::new(op), inputs: saved })),
        };
        // The node goes into the value's own header when no one else holds it (the usual case: the op just
        // made it), which saves allocating a second header and moving ~250 bytes into it. When the value is
        // shared (an op that also saves its output, `y.clone()`), the output gets a fresh header over the
        // same storage, so the saved copy stays a graph-free tensor.
        let mut value = value;
        let out = match Arc::get_mut(&mut value.0) {
            Some(inner) => {
                debug_assert!(inner.node.is_none(), "from_op: value already has a node");
                inner.node = Some(node);
                value
            }
            None => {
                let fresh = crate::tensor::Inner::fresh(value.0.storage.clone(), value.0.layout.clone(), value.0.dtype);
                Tensor(Arc::new(crate::tensor::Inner { node: Some(node), ..fresh }))
            }
        };
        crate::profile::after_op(&out);
        out
    }

    /// The inputs of the op that made this tensor, in the order the op received them: what PyTorch reaches
    /// through `grad_fn.next_functions`. Together with [`op_name`](Self::op_name) it is enough to walk and
    /// print the graph from a loss down to its leaves.
    ///
    /// Empty for leaves, and for op outputs whose graph a backward without `retain_graph` has already freed.
    pub fn grad_fn_inputs(&self) -> Vec<Tensor> {
        let Some(node) = self.0.node.as_ref() else {
            return Vec::new();
        };
        let state = node.state.lock().unwrap_or_else(|e| e.into_inner());
        state.as_ref().map(|s| s.inputs.to_vec()).unwrap_or_default()
    }

    /// The accumulated gradient (leaves that require grad, and tensors that called [`retain_grad`](Self::retain_grad)).
    pub fn grad(&self) -> Option<Tensor> {
        self.0.grad.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the stored gradient (`None` clears it, as `zero_grad(set_to_none=True)` does).
    pub fn set_grad(&self, grad: Option<Tensor>) {
        *self.0.grad.lock().unwrap_or_else(|e| e.into_inner()) = grad;
    }

    /// Keeps the gradient of a non-leaf tensor in [`grad`](Self::grad) after backward.
    pub fn retain_grad(&self) {
        self.0.retains_grad.store(true, Ordering::Relaxed);
    }

    /// Registers a hook called with the gradient flowing into this tensor during backward; returning
    /// `Some(g)` replaces the gradient. On a leaf it runs before accumulation into `.grad()`.
    pub fn register_hook(&self, hook: impl Fn(&Tensor) -> Option<Tensor> + Send + Sync + 'static) -> HookHandle {
        let id = NEXT_HOOK_ID.fetch_add(1, Ordering::Relaxed);
        self.0.hooks.lock().unwrap_or_else(|e| e.into_inner()).push((id, Arc::new(hook)));
        self.0.has_hooks.store(true, Ordering::Release);
        HookHandle { tensor: Arc::downgrade(&self.0), id }
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    #[test]
    fn grad_fn_inputs_lists_op_inputs_until_backward_frees_them() {
        let a = Tensor::from_vec(vec![2.0f64], &[1]).requires_grad_();
        let b = Tensor::from_vec(vec![3.0f64], &[1]).requires_grad_();
        let prod = &a * &b;
        let y = &prod + &a;
        assert!(a.grad_fn_inputs().is_empty(), "a leaf has no op inputs");
        let inputs = y.grad_fn_inputs();
        assert_eq!(inputs.len(), 2);
        assert!(inputs[0].same(&prod) && inputs[1].same(&a));
        let prod_inputs = inputs[0].grad_fn_inputs();
        assert!(prod_inputs[0].same(&a) && prod_inputs[1].same(&b));
        y.sum().backward();
        assert!(y.grad_fn_inputs().is_empty(), "backward without retain_graph frees the graph");
    }
}
