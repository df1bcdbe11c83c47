//! Anomaly mode: stop at the first NaN or infinity, naming the op that made it.
//!
//! When on ([`set_detect_anomaly`]), three checks run (each a scan of a float tensor's elements):
//!
//! - forward: every recorded op output (`Tensor::from_op` with a node) is scanned; a non-finite element
//!   panics with the op's name, its input shapes and the user's call site (`file:line:col`).
//! - backward, per node: the gradients an op's backward returns for its inputs are scanned; a non-finite one
//!   panics naming that op (the one whose backward formula produced it), the input it was for, and where
//!   the op was called in the forward.
//! - backward, on arrival: the gradient flowing into each tensor (after hooks, including the seed) is
//!   scanned, which catches NaNs that a hook or a user-supplied output gradient introduced.
//!
//! Like `torch.autograd.set_detect_anomaly`, it is a debugging switch: it costs a full read of every op
//! output and gradient. Off, each check is one relaxed atomic load. The switch is process-wide.

use crate::autograd::{Node, NodeState};
use crate::tensor::Tensor;
use std::sync::atomic::{AtomicBool, Ordering};

static ANOMALY: AtomicBool = AtomicBool::new(false);

/// Turns anomaly detection on or off (process-wide, all threads). While on, every op output and every
/// gradient is scanned for NaN and infinity, and the first one found panics with the op's name, its input
/// shapes and the call site in user code.
///
/// ```should_panic
/// use tensorgrad::{profile, Tensor};
/// profile::set_detect_anomaly(true);
/// let x = Tensor::from_vec(vec![-1.0f32], &[1]).requires_grad_();
/// let _y = x.log(); // panics: anomaly: forward of `log` (inputs [1]) created at src/main.rs:5:12 ...
/// ```
pub fn set_detect_anomaly(on: bool) {
    ANOMALY.store(on, Ordering::Relaxed);
}

/// Whether anomaly detection is on.
pub fn is_anomaly_enabled() -> bool {
    ANOMALY.load(Ordering::Relaxed)
}

fn has_non_finite(t: &Tensor) -> bool {
    if !t.dtype().is_float() {
        return false;
    }
    match t.dtype() {
        crate::DType::F32 => t.with_slice(|s: &[f32]| s.iter().any(|v| !v.is_finite())),
        _ => t.with_slice(|s: &[f64]| s.iter().any(|v| !v.is_finite())),
    }
}

/// `` `log` (inputs [2, 3]) created at src/main.rs:10:5 `` for a node.
fn describe_with(node: &Node, state: Option<&NodeState>) -> String {
    let shapes = state
        .map(|s| s.inputs.iter().map(|t| format!("{:?}", t.shape())).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|| "freed".into());
    format!("`{}` (inputs {shapes}) created at {}", node.name, node.location)
}

fn describe(node: &Node) -> String {
    let state = node.state.lock().unwrap_or_else(|e| e.into_inner());
    describe_with(node, state.as_ref())
}

/// Forward check of a recorded op output.
#[inline]
#[track_caller]
pub(crate) fn check_forward(out: &Tensor) {
    if is_anomaly_enabled() && has_non_finite(out) {
        if let Some(node) = &out.0.node {
            crate::error::panic_msg(format!("anomaly: forward of {} produced NaN or infinity", describe(node)));
        }
    }
}

/// Check of the gradient arriving at `t`, before it flows into `t`'s node or `.grad()`.
#[inline]
#[track_caller]
pub(crate) fn check_anomaly_backward(t: &Tensor, grad: &Tensor) {
    if is_anomaly_enabled() && has_non_finite(grad) {
        let origin = match &t.0.node {
            Some(node) => format!("the output of {}", describe(node)),
            None => format!("a leaf of shape {:?}", t.shape()),
        };
        crate::error::panic_msg(format!("anomaly: NaN or infinity in the gradient flowing into {origin}"));
    }
}

/// Check of the gradients one node's backward returned (`node`'s state lock is held by the caller).
#[inline]
#[track_caller]
pub(crate) fn check_backward_outputs(node: &Node, state: &NodeState, grads: &[Option<Tensor>]) {
    if !is_anomaly_enabled() {
        return;
    }
    for (i, g) in grads.iter().enumerate() {
        if let Some(g) = g {
            if has_non_finite(g) {
                crate::error::panic_msg(format!(
                    "anomaly: backward of {} returned NaN or infinity in the gradient for input {i} (shape {:?})",
                    describe_with(node, Some(state)),
                    g.shape()
                ));
            }
        }
    }
}
