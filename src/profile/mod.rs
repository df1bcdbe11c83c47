//! Seeing inside the engine: anomaly mode (and, as it grows, the op profiler and graph export).
//!
//! Anomaly mode: when on, a NaN or infinity produced by an op's forward or backward stops the program with
//! an error naming the op, its input shapes and where in user code the op was created.

use crate::autograd::{Node, NodeState};
use crate::tensor::Tensor;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static ANOMALY: AtomicBool = AtomicBool::new(false);
static PROFILING: AtomicBool = AtomicBool::new(false);

/// Turns anomaly detection on or off (process-wide). Costs a scan of every op output while on.
pub fn set_detect_anomaly(on: bool) {
    ANOMALY.store(on, Ordering::Relaxed);
}

/// Whether anomaly detection is on.
pub fn is_anomaly_enabled() -> bool {
    ANOMALY.load(Ordering::Relaxed)
}

pub(crate) fn is_enabled() -> bool {
    PROFILING.load(Ordering::Relaxed)
}

fn has_non_finite(t: &Tensor) -> bool {
    t.dtype().is_float() && t.to_vec_f64().iter().any(|v| !v.is_finite())
}

fn describe(node: &Node) -> String {
    let shapes = node
        .state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|s| s.inputs.iter().map(|t| format!("{:?}", t.shape())).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|| "freed".into());
    format!("`{}` (inputs {shapes}) created at {}", node.name, node.location)
}

/// Called by `from_op` for every recorded op output.
#[track_caller]
pub(crate) fn after_op(out: &Tensor) {
    if is_anomaly_enabled() && has_non_finite(out) {
        if let Some(node) = &out.0.node {
            crate::error::panic_msg(format!("anomaly: forward of {} produced NaN or infinity", describe(node)));
        }
    }
}

/// Called by the engine with the gradient arriving at `t`, before it flows into `t`'s node.
#[track_caller]
pub(crate) fn check_anomaly_backward(t: &Tensor, grad: &Tensor) {
    if is_anomaly_enabled() && has_non_finite(grad) {
        let origin = match &t.0.node {
            Some(node) => describe(node),
            None => format!("a leaf of shape {:?}", t.shape()),
        };
        crate::error::panic_msg(format!(
            "anomaly: backward produced NaN or infinity in the gradient of the output of {origin}"
        ));
    }
}

/// Called by the engine after each node's backward while profiling.
pub(crate) fn record_backward(_node: &Node, _state: &NodeState, _elapsed: Duration) {}
