//! The op profiler: per op and per call site, forward and backward call counts, wall time (total and self),
//! estimated FLOPs and bytes moved, achieved GFLOP/s and GB/s, and bytes saved for backward.
//!
//! How it measures:
//!
//! - Every public op opens an [`op_scope`] as its first line. Off, that is one relaxed atomic load and an
//!   inactive guard. On, it pushes a *frame* (name, call site, start time) on a thread-local stack; the
//!   guard's drop pops it and records an event. Ops composed of other ops nest: a frame's *total* time is
//!   its wall time, its *self* time excludes the frames nested in it that are counted separately (as
//!   `torch.profiler` reports "CPU total" and "Self CPU").
//! - `Tensor::from_op` tells the innermost frame the op's input and output shapes (this is where the FLOPs
//!   and bytes estimates of `cost.rs` come from) and, when it records a node, the bytes that node keeps for
//!   backward (`memory::node_saved_bytes`).
//! - The backward engine opens a frame around each node's backward (kind `Backward`, named after the op, at
//!   the op's forward call site) and one around the whole sweep (`autograd::engine`). The ops a backward
//!   formula runs are that backward's implementation: they appear in the trace nested under it, but they are
//!   not counted as forward calls; their time is in the backward's self time and their FLOPs and bytes are
//!   added to it. Likewise the engine's own work (gradient accumulation, copies) is the engine frame's.
//!
//! - Row names. A forward row is named by the op *called* (its `op_scope`). A node's backward is named by
//!   the op scope its node was recorded in, so one op's forward and backward share a row even when the node
//!   has another name (`sum_dim` records a `sum` node, `mm` a `matmul` one: their backward rows are
//!   `sum_dim` and `mm`). An op that delegates to other ops (`t()` calls `transpose`, which calls
//!   `permute`; `mean` runs `sum` and `mul_scalar`) records no node itself: it has a forward row whose self
//!   time is only its bookkeeping, and its backward is counted in the rows of the ops that did record nodes
//!   (`permute`; `sum` and `mul_scalar`). Nodes recorded inside backward formulas (`create_graph`) or
//!   before the profiler started keep their node's name ([`Tensor::op_name`]).
//! - An op that records a node without having opened a scope (at top level, outside every frame) cannot be
//!   timed (its forward already ran), but it is not dropped: it becomes an untimed forward call
//!   ([`ProfileEvent::timed`] false), and the table marks its row with `*` and says how many such calls
//!   it saw. [`Tensor::apply_op`] opens the scope of a [`CustomOp`](crate::CustomOp) itself.
//!
//! ```text
//! total(frame) = end - start
//! self(frame)  = total(frame) - sum of total(counted frames directly inside it)
//! GFLOP/s      = FLOPs / self time        GB/s = bytes / self time
//! ```
//!
//! The profiler is process-wide: while it runs, ops on every thread are recorded (each thread has its own
//! frame stack and trace row). One profiler runs at a time.

use super::cost;
use super::memory::{format_bytes, memory_stats, node_saved_bytes, MemoryStats};
use crate::autograd::{Node, NodeState};
use crate::tensor::{DType, Dims, Tensor};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::marker::PhantomData;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static PROFILING: AtomicBool = AtomicBool::new(false);
static CURRENT_SESSION: AtomicU64 = AtomicU64::new(0);
static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);
static NEXT_THREAD: AtomicU32 = AtomicU32::new(1);
static SESSION: Mutex<Option<Session>> = Mutex::new(None);

struct Session {
    id: u64,
    start: Instant,
    memory_start: MemoryStats,
    events: Vec<ProfileEvent>,
    /// Node address -> the op scope that recorded it, for nodes recorded during this session whose op
    /// scope's name differs from the node's own (`sum_dim` records a `sum` node, `mm` a `matmul` one), so
    /// the node's backward is counted in the same row as its forward. A node created at a reused address
    /// replaces or removes the entry, so a lookup never sees a dead node's name.
    labels: HashMap<usize, &'static str>,
}

fn node_key(node: &Node) -> usize {
    node as *const Node as usize
}

/// Whether the profiler is recording (one relaxed load).
#[inline]
pub(crate) fn is_enabled() -> bool {
    PROFILING.load(Ordering::Relaxed)
}

/// What an event timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// An op's forward (an [`op_scope`]).
    Forward,
    /// One node's backward formula during a backward pass.
    Backward,
    /// A whole backward sweep (`autograd::engine`): topological sort, gradient accumulation, hooks.
    Engine,
}

/// One timed region: an op's forward, a node's backward, or a backward sweep.
#[derive(Clone, Debug)]
pub struct ProfileEvent {
    /// The op's name (`matmul`, `relu`, ...), or `autograd::engine` for a sweep.
    pub name: &'static str,
    /// Forward, backward or engine.
    pub kind: EventKind,
    /// Whether the event is counted in the tables. Ops run inside a backward formula or by the engine are
    /// not (they are that backward's implementation); they only appear in the trace.
    pub counted: bool,
    /// The call site in user code: where the op was called (for a backward, where its forward was called).
    pub location: &'static Location<'static>,
    /// A small number for the thread that ran it (1 for the first thread seen, ...).
    pub thread: u32,
    /// Start, since the profiler started.
    pub start: Duration,
    /// Wall time.
    pub duration: Duration,
    /// Wall time minus the time of counted events nested in it.
    pub self_time: Duration,
    /// Whether the event was timed. An op that records an autograd node outside any [`op_scope`] (its forward
    /// ran unannounced, so there is no start time) still gets a forward event, with zero durations and
    /// `timed == false`: it is counted as a call, and the table marks it (see [`OpStats::untimed_calls`]).
    pub timed: bool,
    /// Estimated floating-point operations done by this event itself and the uncounted ops inside it.
    pub flops: f64,
    /// Estimated bytes read and written, counted like `flops`.
    pub bytes: f64,
    /// Bytes the autograd node made by this forward keeps for backward (0 without a node).
    pub saved_bytes: usize,
    /// Shapes of the op's inputs (empty when the op did not report them).
    pub input_shapes: Vec<Dims>,
    /// Shape of the op's output, when reported.
    pub output_shape: Option<Dims>,
    /// Element type of the output, when reported.
    pub dtype: Option<DType>,
}

/// A running profiler session. Make one with [`Profiler::start`], run the code to measure, then call
/// [`stop`](Profiler::stop) for the [`ProfileReport`]. Dropping it without `stop` ends the session and
/// discards what it recorded.
///
/// ```
/// use tensorgrad::{profile::Profiler, Tensor};
/// let w = Tensor::randn(&[8, 4]).requires_grad_();
/// let x = Tensor::randn(&[16, 4]);
/// let profiler = Profiler::start();
/// let loss = x.matmul(&w.t()).relu().sum();
/// loss.backward();
/// let report = profiler.stop();
/// println!("{}", report.table());
/// ```
#[must_use = "the profiler records until stop() is called or it is dropped"]
pub struct Profiler {
    id: u64,
}

impl Profiler {
    /// Starts recording every op on every thread.
    ///
    /// # Panics
    /// If another profiler is already running.
    #[track_caller]
    pub fn start() -> Profiler {
        let mut session = SESSION.lock().unwrap_or_else(|e| e.into_inner());
        if session.is_some() {
            crate::error::panic_msg("Profiler::start: a profiler is already running; stop it first".to_string());
        }
        let id = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
        *session = Some(Session {
            id,
            start: Instant::now(),
            memory_start: memory_stats(),
            events: Vec::new(),
            labels: HashMap::new(),
        });
        CURRENT_SESSION.store(id, Ordering::Release);
        PROFILING.store(true, Ordering::Release);
        Profiler { id }
    }

    /// Stops recording and returns what was recorded. Frames still open (an op running on another thread)
    /// are not included.
    pub fn stop(self) -> ProfileReport {
        let session = self.finish().expect("the session of a live Profiler exists");
        let wall = session.start.elapsed();
        let mut events = session.events;
        events.sort_by_key(|e| (e.start, std::cmp::Reverse(e.duration)));
        ProfileReport { events, wall, memory_start: session.memory_start, memory_end: memory_stats() }
    }

    fn finish(&self) -> Option<Session> {
        let mut session = SESSION.lock().unwrap_or_else(|e| e.into_inner());
        if session.as_ref().map(|s| s.id) != Some(self.id) {
            return None;
        }
        PROFILING.store(false, Ordering::Release);
        CURRENT_SESSION.store(0, Ordering::Release);
        session.take()
    }
}

impl Drop for Profiler {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Times the enclosing block as one call of the op `name` while the profiler runs; returned by
/// [`op_scope`]. Not `Send`: it must drop on the thread that made it.
#[must_use = "the region is timed until the guard drops"]
pub struct OpScope {
    active: bool,
    _not_send: PhantomData<*const ()>,
}

impl OpScope {
    #[inline]
    fn inactive() -> OpScope {
        OpScope { active: false, _not_send: PhantomData }
    }
}

impl Drop for OpScope {
    #[inline]
    fn drop(&mut self) {
        if self.active {
            end_frame();
        }
    }
}

/// Opens a profiler scope for one call of the op `name`, closed when the returned guard drops (the
/// equivalent of `torch.profiler.record_function`). Every public op calls it first thing:
/// `let _p = crate::profile::op_scope("exp");`. Your own layers and ops can too.
///
/// With the profiler off this costs one relaxed atomic load. The call site recorded is the caller's (or,
/// through `#[track_caller]` functions, their caller's).
#[inline]
#[track_caller]
pub fn op_scope(name: &'static str) -> OpScope {
    if !PROFILING.load(Ordering::Relaxed) {
        return OpScope::inactive();
    }
    begin_frame(EventKind::Forward, name, Location::caller(), None)
}

/// Opens the frame of one node's backward (called by the engine only while profiling).
///
/// The frame is named like the forward that recorded the node (see `Session::labels`), so one op's forward
/// and backward share a row.
pub(crate) fn backward_scope(node: &Node, state: &NodeState) -> OpScope {
    let shapes = state.inputs.iter().map(|t| Dims::from_slice(t.shape())).collect();
    let name = {
        let session = SESSION.lock().unwrap_or_else(|e| e.into_inner());
        session.as_ref().and_then(|s| s.labels.get(&node_key(node)).copied()).unwrap_or(node.name)
    };
    begin_frame(EventKind::Backward, name, node.location, Some(shapes))
}

/// Opens the frame of a backward sweep (one relaxed load when the profiler is off).
#[inline]
#[track_caller]
pub(crate) fn engine_scope() -> OpScope {
    if !PROFILING.load(Ordering::Relaxed) {
        return OpScope::inactive();
    }
    begin_frame(EventKind::Engine, "autograd::engine", Location::caller(), None)
}

struct Frame {
    kind: EventKind,
    name: &'static str,
    location: &'static Location<'static>,
    session: u64,
    counted: bool,
    /// Inside a backward or engine frame (so forward frames here are not counted).
    in_backward: bool,
    start: Instant,
    /// Total time of counted frames nested in this one (through uncounted ones too).
    counted_children: Duration,
    flops: f64,
    bytes: f64,
    saved_bytes: usize,
    input_shapes: Option<Vec<Dims>>,
    output_shape: Option<Dims>,
    dtype: Option<DType>,
}

thread_local! {
    static STACK: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
    static THREAD: Cell<u32> = const { Cell::new(0) };
}

fn thread_number() -> u32 {
    THREAD.with(|t| {
        if t.get() == 0 {
            t.set(NEXT_THREAD.fetch_add(1, Ordering::Relaxed));
        }
        t.get()
    })
}

#[cold]
#[inline(never)]
fn begin_frame(
    kind: EventKind,
    name: &'static str,
    location: &'static Location<'static>,
    input_shapes: Option<Vec<Dims>>,
) -> OpScope {
    let session = CURRENT_SESSION.load(Ordering::Acquire);
    STACK.with(|stack| {
        let mut stack = stack.borrow_mut();
        let parent_in_backward = stack.last().is_some_and(|f| f.in_backward);
        stack.push(Frame {
            kind,
            name,
            location,
            session,
            counted: kind != EventKind::Forward || !parent_in_backward,
            in_backward: parent_in_backward || kind != EventKind::Forward,
            counted_children: Duration::ZERO,
            flops: 0.0,
            bytes: 0.0,
            saved_bytes: 0,
            input_shapes,
            output_shape: None,
            dtype: None,
            start: Instant::now(),
        });
    });
    OpScope { active: true, _not_send: PhantomData }
}

#[cold]
#[inline(never)]
fn end_frame() {
    let now = Instant::now();
    let Some(frame) = STACK.with(|stack| {
        let mut stack = stack.borrow_mut();
        let frame = stack.pop()?;
        let elapsed = now.saturating_duration_since(frame.start);
        if let Some(parent) = stack.last_mut() {
            parent.counted_children += if frame.counted { elapsed } else { frame.counted_children };
            if !frame.counted {
                parent.flops += frame.flops;
                parent.bytes += frame.bytes;
            }
        }
        Some(frame)
    }) else {
        return;
    };
    let duration = now.saturating_duration_since(frame.start);
    let mut session = SESSION.lock().unwrap_or_else(|e| e.into_inner());
    let Some(session) = session.as_mut().filter(|s| s.id == frame.session) else { return };
    session.events.push(ProfileEvent {
        name: frame.name,
        kind: frame.kind,
        counted: frame.counted,
        location: frame.location,
        thread: thread_number(),
        start: frame.start.saturating_duration_since(session.start),
        duration,
        self_time: duration.saturating_sub(frame.counted_children),
        timed: true,
        flops: frame.flops,
        bytes: frame.bytes,
        saved_bytes: frame.saved_bytes,
        input_shapes: frame.input_shapes.unwrap_or_default(),
        output_shape: frame.output_shape,
        dtype: frame.dtype,
    });
}

/// `from_op` reports an op's inputs and output to the innermost open frame (only while profiling).
#[cold]
#[inline(never)]
pub(crate) fn note_op(inputs: &[&Tensor], output: &Tensor) {
    STACK.with(|stack| {
        let mut stack = stack.borrow_mut();
        let Some(frame) = stack.last_mut() else { return };
        let shapes: smallvec::SmallVec<[&[usize]; 4]> = inputs.iter().map(|t| t.shape()).collect();
        // An op without its own scope is estimated as the op whose frame it runs in: inside `matmul`'s
        // backward, the unscoped products are matmuls. Inside the engine, it counts as elementwise.
        let name = if frame.kind == EventKind::Engine { "" } else { frame.name };
        let (flops, bytes) = cost::estimate(name, &shapes, output.shape(), output.dtype().size_in_bytes());
        frame.flops += flops;
        frame.bytes += bytes;
        if frame.kind == EventKind::Forward {
            if frame.input_shapes.is_none() {
                frame.input_shapes = Some(shapes.iter().map(|s| Dims::from_slice(s)).collect());
            }
            frame.output_shape = Some(Dims::from_slice(output.shape()));
            frame.dtype = Some(output.dtype());
        }
    });
}

/// A fused op's backward reports the work it did without recorded ops (estimated FLOPs and bytes) to the
/// innermost open frame, its own backward row. Does nothing when not profiling.
pub(crate) fn note_cost(flops: f64, bytes: f64) {
    if !is_enabled() {
        return;
    }
    STACK.with(|stack| {
        if let Some(frame) = stack.borrow_mut().last_mut() {
            frame.flops += flops;
            frame.bytes += bytes;
        }
    });
}

/// `from_op` reports the node it attached to `out` (only while profiling).
///
/// Inside a frame, the node's saved bytes go to that frame: the op that opened it (or the enclosing op
/// whose implementation this is). Outside every frame, the op that made the node never opened an
/// [`op_scope`]: its forward already ran and its start time is unknown, so rather than let the call vanish
/// from the tables it is recorded as an untimed forward call (see [`ProfileEvent::timed`]).
#[cold]
#[inline(never)]
pub(crate) fn note_node(out: &Tensor) {
    let Some(node) = &out.0.node else { return };
    let state = node.state.lock().unwrap_or_else(|e| e.into_inner());
    let saved = state.as_ref().map_or(0, node_saved_bytes);
    // `Some(scope)`: recorded directly inside the forward op scope `scope`; `None`: at top level.
    let recorded_in = STACK.with(|stack| match stack.borrow_mut().last_mut() {
        Some(frame) => {
            frame.saved_bytes += saved;
            Some((frame.kind == EventKind::Forward && !frame.in_backward).then_some(frame.name))
        }
        None => None,
    });
    if let Some(scope) = recorded_in {
        let session_id = CURRENT_SESSION.load(Ordering::Acquire);
        let mut session = SESSION.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(session) = session.as_mut().filter(|s| s.id == session_id) {
            match scope {
                Some(scope) if scope != node.name => {
                    session.labels.insert(node_key(node), scope);
                }
                _ if !session.labels.is_empty() => {
                    session.labels.remove(&node_key(node));
                }
                _ => {}
            }
        }
        return;
    }
    let input_shapes: Vec<Dims> =
        state.as_ref().map(|s| s.inputs.iter().map(|t| Dims::from_slice(t.shape())).collect()).unwrap_or_default();
    drop(state);
    let (flops, bytes) = {
        let shapes: smallvec::SmallVec<[&[usize]; 4]> = input_shapes.iter().map(|d| d.as_slice()).collect();
        cost::estimate(node.name, &shapes, out.shape(), out.dtype().size_in_bytes())
    };
    let now = Instant::now();
    let session_id = CURRENT_SESSION.load(Ordering::Acquire);
    let mut session = SESSION.lock().unwrap_or_else(|e| e.into_inner());
    let Some(session) = session.as_mut().filter(|s| s.id == session_id) else { return };
    session.events.push(ProfileEvent {
        name: node.name,
        kind: EventKind::Forward,
        counted: true,
        location: node.location,
        thread: thread_number(),
        start: now.saturating_duration_since(session.start),
        duration: Duration::ZERO,
        self_time: Duration::ZERO,
        timed: false,
        flops,
        bytes,
        saved_bytes: saved,
        input_shapes,
        output_shape: Some(Dims::from_slice(out.shape())),
        dtype: Some(out.dtype()),
    });
}

/// What a profiler session recorded: the events, and tables and a Chrome trace made from them.
#[derive(Clone, Debug)]
pub struct ProfileReport {
    pub(crate) events: Vec<ProfileEvent>,
    wall: Duration,
    memory_start: MemoryStats,
    memory_end: MemoryStats,
}

/// Aggregated statistics of one op (or one op at one call site): a row of [`ProfileReport::table`].
#[derive(Clone, Debug, Default)]
pub struct OpStats {
    /// The op's name.
    pub name: &'static str,
    /// `file:line` in user code, for [`ProfileReport::by_call_site`] rows; `None` in per-op rows.
    pub call_site: Option<String>,
    /// Forward calls counted (not those run inside backward formulas).
    pub forward_calls: usize,
    /// Backward calls (one per node backward; for `autograd::engine`, one per sweep).
    pub backward_calls: usize,
    /// Sum of the wall times of all its calls, forward and backward (nested ops included).
    pub total_time: Duration,
    /// `total_time` minus the time of counted ops nested in its calls.
    pub self_time: Duration,
    /// Sum of the forward calls' wall times.
    pub forward_time: Duration,
    /// Sum of the backward calls' wall times.
    pub backward_time: Duration,
    /// Estimated FLOPs done in its self time.
    pub flops: f64,
    /// Estimated bytes moved in its self time.
    pub bytes: f64,
    /// Bytes its forward calls' autograd nodes keep for backward (the estimate of `memory.rs`).
    pub saved_bytes: usize,
    /// Forward calls that were counted but not timed: the op records an autograd node without opening an
    /// [`op_scope`] around its forward (see [`ProfileEvent::timed`]). The table marks such rows with `*`;
    /// their forward time is missing from it until the op opens a scope.
    pub untimed_calls: usize,
}

impl OpStats {
    /// Achieved GFLOP/s: estimated FLOPs over self time (0 when either is 0).
    pub fn gflops(&self) -> f64 {
        rate(self.flops, self.self_time)
    }

    /// Achieved GB/s: estimated bytes moved over self time (0 when either is 0).
    pub fn gbytes_per_s(&self) -> f64 {
        rate(self.bytes, self.self_time)
    }

    fn add(&mut self, e: &ProfileEvent) {
        match e.kind {
            EventKind::Forward => {
                self.forward_calls += 1;
                self.forward_time += e.duration;
                self.untimed_calls += usize::from(!e.timed);
            }
            EventKind::Backward | EventKind::Engine => {
                self.backward_calls += 1;
                self.backward_time += e.duration;
            }
        }
        self.total_time += e.duration;
        self.self_time += e.self_time;
        self.flops += e.flops;
        self.bytes += e.bytes;
        self.saved_bytes += e.saved_bytes;
    }
}

fn rate(amount: f64, time: Duration) -> f64 {
    let secs = time.as_secs_f64();
    if secs > 0.0 {
        amount / secs / 1e9
    } else {
        0.0
    }
}

impl ProfileReport {
    /// Every recorded event (counted or not), ordered by start time.
    pub fn events(&self) -> &[ProfileEvent] {
        &self.events
    }

    /// Wall time from start to stop.
    pub fn wall_time(&self) -> Duration {
        self.wall
    }

    /// Memory counters when the profiler started.
    pub fn memory_at_start(&self) -> MemoryStats {
        self.memory_start
    }

    /// Memory counters when the profiler stopped (`peak_bytes` is the process's peak since the last
    /// [`reset_peak`](crate::profile::reset_peak)).
    pub fn memory_at_stop(&self) -> MemoryStats {
        self.memory_end
    }

    /// Statistics per op name, sorted by total time (longest first), like `key_averages()` in torch.
    pub fn key_averages(&self) -> Vec<OpStats> {
        self.aggregate(false)
    }

    /// Statistics per op name and call site (`file:line`), sorted by total time.
    pub fn by_call_site(&self) -> Vec<OpStats> {
        self.aggregate(true)
    }

    /// The statistics of the op `name` (all call sites), if it ran.
    pub fn op(&self, name: &str) -> Option<OpStats> {
        self.key_averages().into_iter().find(|s| s.name == name)
    }

    /// Sum of the self times of all counted events: the time spent in profiled code.
    pub fn total_self_time(&self) -> Duration {
        self.events.iter().filter(|e| e.counted).map(|e| e.self_time).sum()
    }

    fn aggregate(&self, by_site: bool) -> Vec<OpStats> {
        // Keyed by (op name, call site file and line when grouping by call site).
        type Key = (&'static str, Option<(&'static str, u32)>);
        let mut rows: HashMap<Key, OpStats> = HashMap::new();
        for e in self.events.iter().filter(|e| e.counted) {
            let site = by_site.then(|| (e.location.file(), e.location.line()));
            let row = rows.entry((e.name, site)).or_insert_with(|| OpStats {
                name: e.name,
                call_site: site.map(|(f, l)| format!("{f}:{l}")),
                ..OpStats::default()
            });
            row.add(e);
        }
        let mut rows: Vec<OpStats> = rows.into_values().collect();
        rows.sort_by(|a, b| {
            b.total_time.cmp(&a.total_time).then(a.name.cmp(b.name)).then(a.call_site.cmp(&b.call_site))
        });
        rows
    }

    /// The per-op table, sorted by total time, like `prof.key_averages().table()`.
    pub fn table(&self) -> String {
        self.render(&self.key_averages(), false)
    }

    /// The per-op, per-call-site table, sorted by total time.
    pub fn table_by_call_site(&self) -> String {
        self.render(&self.by_call_site(), true)
    }

    fn render(&self, rows: &[OpStats], with_site: bool) -> String {
        let mut header = vec![
            "Name",
            "Fwd calls",
            "Bwd calls",
            "Total",
            "Self",
            "Self %",
            "Fwd total",
            "Bwd total",
            "FLOPs",
            "GFLOP/s",
            "Bytes",
            "GB/s",
            "Saved",
        ];
        if with_site {
            header.push("Call site");
        }
        let self_total = self.total_self_time().as_secs_f64();
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let share = if self_total > 0.0 { 100.0 * r.self_time.as_secs_f64() / self_total } else { 0.0 };
                let mut row = vec![
                    if r.untimed_calls > 0 { format!("{}*", r.name) } else { r.name.to_string() },
                    r.forward_calls.to_string(),
                    r.backward_calls.to_string(),
                    format_duration(r.total_time),
                    format_duration(r.self_time),
                    format!("{share:.1}%"),
                    format_duration(r.forward_time),
                    format_duration(r.backward_time),
                    format_count(r.flops),
                    format!("{:.2}", r.gflops()),
                    format_bytes(r.bytes),
                    format!("{:.2}", r.gbytes_per_s()),
                    format_bytes(r.saved_bytes as f64),
                ];
                if with_site {
                    row.push(r.call_site.clone().unwrap_or_default());
                }
                row
            })
            .collect();
        let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let rule: String = widths.iter().map(|&w| "-".repeat(w)).collect::<Vec<_>>().join("  ");
        let line = |cols: &[String]| -> String {
            let mut s = String::new();
            for (i, (c, &w)) in cols.iter().zip(&widths).enumerate() {
                if i > 0 {
                    s.push_str("  ");
                }
                // Names and call sites left-aligned, numbers right-aligned.
                if i == 0 || (with_site && i == cols.len() - 1) {
                    let _ = write!(s, "{c:<w$}");
                } else {
                    let _ = write!(s, "{c:>w$}");
                }
            }
            s.trim_end().to_string()
        };
        let mut out = String::new();
        let _ = writeln!(out, "{rule}");
        let _ = writeln!(out, "{}", line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>()));
        let _ = writeln!(out, "{rule}");
        for row in &cells {
            let _ = writeln!(out, "{}", line(row));
        }
        let _ = writeln!(out, "{rule}");
        let (m0, m1) = (self.memory_start, self.memory_end);
        let _ = writeln!(
            out,
            "Self time total: {}   wall: {}   tensor memory: live {} -> {}, peak {}, {} allocations",
            format_duration(self.total_self_time()),
            format_duration(self.wall),
            format_bytes(m0.live_bytes as f64),
            format_bytes(m1.live_bytes as f64),
            format_bytes(m1.peak_bytes as f64),
            m1.allocations - m0.allocations.min(m1.allocations),
        );
        let untimed: usize = rows.iter().map(|r| r.untimed_calls).sum();
        if untimed > 0 {
            let _ = writeln!(
                out,
                "* {untimed} forward calls not timed: these ops record an autograd node without an op_scope around \
                 their forward, so their forward time is missing above (fix: `let _p = tensorgrad::profile::op_scope(\"name\");` \
                 as the op's first line)"
            );
        }
        out
    }
}

/// `1.234s`, `12.345ms`, `56.789us` (torch.profiler's style).
pub(crate) fn format_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 1.0 {
        format!("{secs:.3}s")
    } else if secs >= 1e-3 {
        format!("{:.3}ms", secs * 1e3)
    } else {
        format!("{:.3}us", secs * 1e6)
    }
}

/// `512`, `1.50 K`, `3.20 M`, `1.10 G`, `2.00 T`.
fn format_count(x: f64) -> String {
    const UNITS: [(&str, f64); 4] = [("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)];
    for (unit, scale) in UNITS {
        if x.abs() >= scale {
            return format!("{:.2} {unit}", x / scale);
        }
    }
    format!("{x:.0}")
}
