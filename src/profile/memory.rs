//! Memory statistics: live and peak bytes of tensor storage, and bytes an autograd node keeps for backward.
//!
//! Every storage allocation (`StorageCell` in `src/tensor/mod.rs`) adds its bytes to a process-wide live
//! counter when it is created and subtracts them when its last view drops:
//!
//! ```text
//! live  += bytes   (allocation)      peak = max(peak, live)      allocations += 1
//! live  -= bytes   (drop)
//! ```
//!
//! The counters are relaxed atomics: two atomic adds per allocation and one per drop, whether or not anyone
//! reads them. Views (reshape, transpose, narrow, expand, detach, ...) share their base's storage and count
//! nothing. Only element buffers count: tensor headers, autograd nodes and kernel scratch space do not.
//!
//! Bytes saved for backward, per node ([`node_saved_bytes`]): the engine keeps every input of an op alive
//! until a backward without `retain_graph` frees the node, and the op may save more tensors of its own (an
//! output, a mask). The estimate is
//!
//! ```text
//! saved(node) = sum of the storage bytes of its distinct inputs  +  Backward::saved_bytes()
//! ```
//!
//! It is an upper bound on what the graph alone keeps alive: inputs that something else holds anyway
//! (parameters, the batch) are counted too, and several nodes sharing one input each count it.

use crate::autograd::NodeState;
use std::sync::atomic::{AtomicUsize, Ordering};

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

/// A snapshot of the process-wide tensor storage counters (see [`memory_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes of tensor storage alive now (element buffers; views share their base's buffer).
    pub live_bytes: usize,
    /// The highest `live_bytes` since the process started or the last [`reset_peak`].
    pub peak_bytes: usize,
    /// Number of storage buffers allocated since the process started (a running count, never decreases).
    pub allocations: usize,
}

/// The current process-wide tensor storage counters. They count every thread's tensors.
///
/// ```
/// use tensorgrad::{profile, Tensor};
/// let t = Tensor::zeros(&[256]); // 256 f32 = 1 KiB
/// assert!(profile::memory_stats().live_bytes >= 1024);
/// # drop(t);
/// ```
pub fn memory_stats() -> MemoryStats {
    MemoryStats {
        live_bytes: LIVE.load(Ordering::Relaxed),
        peak_bytes: PEAK.load(Ordering::Relaxed),
        allocations: ALLOCATIONS.load(Ordering::Relaxed),
    }
}

/// Resets the peak to the bytes alive now, to measure the peak of the code that follows.
pub fn reset_peak() {
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// Counts a new storage buffer of `bytes`.
#[inline]
pub(crate) fn on_alloc(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    // A plain load first: the read-modify-write happens only when the peak actually moves.
    if live > PEAK.load(Ordering::Relaxed) {
        PEAK.fetch_max(live, Ordering::Relaxed);
    }
}

/// Counts a storage buffer of `bytes` going away.
#[inline]
pub(crate) fn on_free(bytes: usize) {
    LIVE.fetch_sub(bytes, Ordering::Relaxed);
}

/// The bytes a node keeps alive for backward: its distinct input storages plus what its backward object
/// reports saving beyond them (see the module docs: an upper bound).
pub(crate) fn node_saved_bytes(state: &NodeState) -> usize {
    let mut seen: smallvec::SmallVec<[usize; 4]> = smallvec::SmallVec::new();
    let mut total = state.op.saved_bytes();
    for input in &state.inputs {
        let key = std::sync::Arc::as_ptr(&input.0.storage) as usize;
        if !seen.contains(&key) {
            seen.push(key);
            total += input.storage_bytes();
        }
    }
    total
}

/// `bytes` as a short human string: `512 B`, `1.5 KiB`, `3.2 MiB`, `1.1 GiB`.
pub(crate) fn format_bytes(bytes: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} {}", UNITS[0])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
