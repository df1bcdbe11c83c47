//! Seeing inside the engine: graph printouts, the op profiler, memory statistics and anomaly mode.
//!
//! Rooms:
//! - `graph`: the autograd graph as an indented tree ([`Tensor::graph_tree`], [`graph_tree`],
//!   [`print_graph`]) or Graphviz DOT ([`to_dot`]).
//! - `profiler`: [`Profiler`] records, per op and per call site, forward and backward calls, total and
//!   self wall time, estimated FLOPs and bytes (`cost` holds the estimates) and bytes saved for backward;
//!   [`ProfileReport::table`] prints them sorted by time like `torch.profiler`.
//! - `trace`: [`ProfileReport::chrome_trace_json`], a trace Perfetto and `chrome://tracing` open.
//! - `memory`: live and peak bytes of tensor storage ([`memory_stats`], [`reset_peak`]) and the per-node
//!   estimate of bytes saved for backward.
//! - `anomaly`: [`set_detect_anomaly`], stop at the first NaN or infinity naming the op and its call site.
//!
//! The engine calls in here through a few hooks, each one relaxed atomic load when its feature is off:
//! `op_scope` at the top of every op, `Tensor::from_op` (shapes and saved bytes for the profiler, the
//! forward anomaly check) and the backward sweep (per-node timing, the backward anomaly checks).
//!
//! ```
//! use tensorgrad::{profile, Tensor};
//! let w = Tensor::randn(&[8, 4]).requires_grad_();
//! let x = Tensor::randn(&[16, 4]);
//! let profiler = profile::Profiler::start();
//! let loss = x.matmul(&w.t()).relu().sum();
//! print!("{}", profile::graph_tree(&loss, &[("w".to_string(), w.clone())]));
//! loss.backward();
//! let report = profiler.stop();
//! print!("{}", report.table());
//! assert_eq!(report.op("relu").unwrap().backward_calls, 1);
//! ```

mod anomaly;
mod cost;
mod graph;
pub(crate) mod memory;
mod profiler;
mod trace;

pub use anomaly::{is_anomaly_enabled, set_detect_anomaly};
pub use graph::{graph_tree, print_graph, to_dot};
pub use memory::{memory_stats, reset_peak, MemoryStats};
pub use profiler::{op_scope, EventKind, OpScope, OpStats, ProfileEvent, ProfileReport, Profiler};

pub(crate) use anomaly::{check_anomaly_backward, check_backward_outputs};
pub(crate) use profiler::{backward_scope, engine_scope, is_enabled, note_cost};

use crate::tensor::Tensor;

/// Called by `from_op` with every op's value and inputs, before it decides whether to record a node.
#[inline]
pub(crate) fn before_op(inputs: &[&Tensor], value: &Tensor) {
    if is_enabled() {
        profiler::note_op(inputs, value);
    }
}

/// Called by `from_op` for every recorded op output (one that has a node).
#[inline]
#[track_caller]
pub(crate) fn after_op(out: &Tensor) {
    anomaly::check_forward(out);
    if is_enabled() {
        profiler::note_node(out);
    }
}
