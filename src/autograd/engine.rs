//! The backward pass: the only code that walks the graph.
//!
//! 1. Topological order of every tensor that requires grad and is reachable from the roots, by an iterative
//!    depth-first search (no recursion: a million-op chain is fine).
//! 2. Seed the roots' gradients.
//! 3. Sweep in reverse order: a tensor's gradient is complete when its turn comes (everything that uses it
//!    came later in the order). Run its hooks, keep it if asked, then either accumulate it into a leaf's
//!    `.grad()` or call the node's `backward` and add the results into its inputs' slots.
//!
//! Gradient accumulation moves the first contribution in and adds later ones in place when nothing else
//! holds the buffer, so fan-out is correct by construction and costs no zero-fill.

use super::{is_grad_enabled, set_grad_enabled, NodeState};
use crate::error::panic_msg;
use crate::tensor::Tensor;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Hashes tensor addresses: they are unique and 16-byte aligned, so a multiply spreads them well enough.
/// (SipHash, the default, cost a fifth of a tiny op's backward.)
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_usize(&mut self, address: usize) {
        self.0 = ((address as u64) >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type AddressMap<V> = HashMap<usize, V, BuildHasherDefault<AddressHasher>>;

/// A tensor's mark for the topological sort: the number of the backward pass that last placed it, and its
/// position in that pass's order. Lives in every tensor header (see [`Visits`]).
#[derive(Default)]
pub(crate) struct VisitMark {
    pass: AtomicU64,
    position: AtomicUsize,
}

/// Whether some backward pass is using the tensors' [`VisitMark`]s right now.
static MARKS_IN_USE: AtomicBool = AtomicBool::new(false);
/// Pass numbers are never reused, so the marks an earlier pass left behind read as "not visited" without
/// anyone clearing them. (0 is the mark of a tensor no pass has seen.)
static NEXT_PASS: AtomicU64 = AtomicU64::new(1);

/// The tensors one backward pass has reached, and their positions in its order.
///
/// Usually the marks in the tensors themselves: a load and a compare per lookup, where a hash map cost a
/// hash, a probe and its growth for every tensor of the graph. Two passes running at once (on two threads
/// over graphs that share tensors, or a backward called from inside a hook) would overwrite each other's
/// marks, so only one pass at a time owns them; a pass that finds them taken keeps its own hash map of
/// tensor addresses instead. Both give the same answers.
enum Visits {
    Marks { pass: u64 },
    Map(AddressMap<usize>),
}

impl Visits {
    fn begin() -> Visits {
        // Acquire pairs with the Release in `drop`: the previous owner's writes to the marks happen before ours.
        if MARKS_IN_USE.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            Visits::Marks { pass: NEXT_PASS.fetch_add(1, Ordering::Relaxed) }
        } else {
            Visits::Map(AddressMap::default())
        }
    }

    /// `t`'s position (or [`VISITING`]) if this pass has reached it.
    fn get(&self, t: &Tensor) -> Option<usize> {
        match self {
            Visits::Marks { pass } => {
                let mark = &t.0.visit;
                (mark.pass.load(Ordering::Relaxed) == *pass).then(|| mark.position.load(Ordering::Relaxed))
            }
            Visits::Map(map) => map.get(&key(t)).copied(),
        }
    }

    fn set(&mut self, t: &Tensor, position: usize) {
        match self {
            Visits::Marks { pass } => {
                t.0.visit.position.store(position, Ordering::Relaxed);
                t.0.visit.pass.store(*pass, Ordering::Relaxed);
            }
            Visits::Map(map) => {
                map.insert(key(t), position);
            }
        }
    }

    /// The position of a tensor the sort placed.
    #[track_caller]
    fn position(&self, t: &Tensor) -> usize {
        match self.get(t) {
            Some(p) if p != VISITING => p,
            _ => panic_msg("backward: internal error: a tensor that requires grad was not in the graph's order".into()),
        }
    }
}

impl Drop for Visits {
    fn drop(&mut self) {
        if let Visits::Marks { .. } = self {
            MARKS_IN_USE.store(false, Ordering::Release);
        }
    }
}

/// The mark of a tensor whose inputs are still being placed.
const VISITING: usize = usize::MAX;

/// Options for [`Tensor::backward_with`].
#[derive(Clone, Copy, Debug, Default)]
pub struct BackwardOptions {
    /// Keep the saved tensors so the graph can be walked again (default: free them).
    pub retain_graph: bool,
    /// Record the backward computation itself, for higher-order gradients (implies `retain_graph`).
    pub create_graph: bool,
}

impl Tensor {
    /// Computes the gradient of this one-element tensor with respect to every leaf that requires grad, and
    /// accumulates it into their [`grad`](Tensor::grad). Frees the graph's saved tensors.
    ///
    /// # Panics
    /// If the tensor has more than one element (use [`backward_with`](Self::backward_with)), does not require
    /// grad, or its graph was already freed by an earlier backward.
    #[track_caller]
    pub fn backward(&self) {
        if self.numel() != 1 {
            panic_msg(format!(
                "backward: grad can be implicitly created only for one-element outputs, got shape {:?}; \
                 pass an explicit output gradient with backward_with",
                self.shape()
            ));
        }
        self.backward_with(None, BackwardOptions::default());
    }

    /// Backward with an explicit output gradient (`None` means ones, for a one-element output) and options.
    ///
    /// # Panics
    /// If `grad_output`'s shape differs from this tensor's, if this tensor does not require grad, or if the
    /// graph was freed by an earlier backward without `retain_graph`.
    #[track_caller]
    pub fn backward_with(&self, grad_output: Option<&Tensor>, options: BackwardOptions) {
        if !self.requires_grad() {
            panic_msg(
                "backward: this tensor does not require grad and has no graph (did you forget requires_grad_() on a \
                 leaf, or compute it under no_grad?)"
                    .to_string(),
            );
        }
        let seed = seed_gradient(self, grad_output);
        let retain = options.retain_graph || options.create_graph;
        run(&[(self.clone(), seed)], retain, options.create_graph, None);
    }
}

/// dL/d(inputs) for the given outputs, without touching any `.grad()`: PyTorch's `torch.autograd.grad`.
///
/// `grad_outputs` defaults to ones for one-element outputs. With `create_graph` the returned gradients carry
/// a graph of their own and can be differentiated again. An input the outputs do not depend on gets `None`.
///
/// # Panics
/// If an output does not require grad, or a `grad_outputs` shape differs from its output's.
#[track_caller]
pub fn grad(
    outputs: &[&Tensor],
    inputs: &[&Tensor],
    grad_outputs: Option<&[&Tensor]>,
    create_graph: bool,
) -> Vec<Option<Tensor>> {
    grad_impl(outputs, inputs, grad_outputs, create_graph, create_graph)
}

/// [`grad`] with an explicit `retain_graph` (gradcheck walks one graph once per output element).
#[track_caller]
pub(crate) fn grad_impl(
    outputs: &[&Tensor],
    inputs: &[&Tensor],
    grad_outputs: Option<&[&Tensor]>,
    retain_graph: bool,
    create_graph: bool,
) -> Vec<Option<Tensor>> {
    let mut roots = Vec::with_capacity(outputs.len());
    for (k, out) in outputs.iter().enumerate() {
        if !out.requires_grad() {
            panic_msg(format!("grad: output {k} (shape {:?}) does not require grad", out.shape()));
        }
        roots.push(((*out).clone(), seed_gradient(out, grad_outputs.map(|g| g[k]))));
    }
    let targets: Vec<Tensor> = inputs.iter().map(|&t| t.clone()).collect();
    run(&roots, retain_graph || create_graph, create_graph, Some(&targets)).unwrap_or_default()
}

#[track_caller]
fn seed_gradient(output: &Tensor, grad_output: Option<&Tensor>) -> Tensor {
    match grad_output {
        Some(g) => {
            if g.shape() != output.shape() {
                crate::error::shape_mismatch(
                    "backward",
                    "output gradient shape differs from output",
                    g.shape(),
                    output.shape(),
                );
            }
            g.to_dtype(output.dtype())
        }
        None if output.numel() == 1 => output.ones_like(),
        None => panic_msg(format!(
            "backward: grad can be implicitly created only for one-element outputs, got shape {:?}",
            output.shape()
        )),
    }
}

fn key(t: &Tensor) -> usize {
    Arc::as_ptr(&t.0) as usize
}

/// Tensors reachable from `roots` that require grad, inputs before the ops that use them; `visits` records
/// each one's position.
#[track_caller]
fn topological_order(roots: &[(Tensor, Tensor)], visits: &mut Visits) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut stack: Vec<(Tensor, bool)> = roots.iter().map(|(t, _)| (t.clone(), false)).collect();
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            visits.set(&t, order.len());
            order.push(t);
            continue;
        }
        if visits.get(&t).is_some() {
            continue;
        }
        visits.set(&t, VISITING);
        let mut inputs: smallvec::SmallVec<[Tensor; 2]> = smallvec::SmallVec::new();
        if let Some(node) = &t.0.node {
            let state = node.state.lock().unwrap_or_else(|e| e.into_inner());
            let Some(state) = state.as_ref() else { freed_graph_panic(node.name) };
            for input in &state.inputs {
                if input.requires_grad() && visits.get(input).is_none() {
                    inputs.push(input.clone());
                }
            }
        }
        // The marker goes below the inputs, so it pops (and `t` is placed) after all of them are placed.
        stack.push((t, true));
        for input in inputs {
            stack.push((input, false));
        }
    }
    order
}

#[cold]
#[track_caller]
fn freed_graph_panic(op: &str) -> ! {
    panic_msg(format!(
        "backward: trying to backward through the graph a second time (the saved tensors of `{op}` were freed by \
         an earlier backward). Pass retain_graph: true (BackwardOptions) to the first backward if you need to \
         backward twice, or recompute the forward."
    ))
}

/// Adds `g` into `slot`: moves it in if empty; in place when the slot's buffer is ours alone and nothing is
/// being recorded; otherwise out of place (which, under `create_graph`, records the addition).
pub(crate) fn accumulate(slot: &mut Option<Tensor>, g: Tensor) {
    match slot.take() {
        None => *slot = Some(g),
        Some(existing) => {
            let exclusive = Arc::strong_count(&existing.0) == 1
                && Arc::strong_count(&existing.0.storage) == 1
                && existing.is_contiguous()
                && existing.shape() == g.shape()
                && existing.dtype() == g.dtype();
            if exclusive && !is_grad_enabled() && !existing.requires_grad() {
                existing.add_assign_unrecorded(&g);
                *slot = Some(existing);
            } else {
                *slot = Some(&existing + &g);
            }
        }
    }
}

/// Whether `t` can be changed in place without anyone noticing: this is the only handle to it (no clone, no
/// weak handle of a hook), nothing else shares its storage (no view, no `.grad()` or `grad()` result, no
/// tensor saved for backward), it carries no graph, and its elements are exactly its whole buffer.
///
/// The engine hands each node the gradient it owns and drops it right after, so a backward formula may
/// write its result over `dy` when this holds and no graph is being recorded (`mul_scalar` does).
pub(crate) fn is_exclusive(t: &Tensor) -> bool {
    Arc::strong_count(&t.0) == 1
        && Arc::weak_count(&t.0) == 0
        && Arc::strong_count(&t.0.storage) == 1
        && !t.requires_grad()
        && t.is_contiguous()
        && t.0.layout.offset == 0
        && t.storage_bytes() == t.numel() * t.dtype().size_in_bytes()
}

/// `g` as a stored gradient must own its buffer: backward formulas pass one upstream gradient to several
/// inputs (`add`), views and the caller's output gradient flow through unchanged, so without this two
/// leaves' `.grad()` (or a `.grad()` and the caller's tensor) could share storage, and an in-place update of
/// one (`zero_()`, gradient clipping) would silently change the other. Copies only when shared.
fn owned(g: Tensor) -> Tensor {
    if is_exclusive(&g) {
        g
    } else {
        crate::dispatch_all!(g.dtype(), T => Tensor::from_vec(g.contiguous_vec::<T>(), g.shape()))
    }
}

/// Runs the hooks registered on `t` over the gradient `g`.
fn apply_hooks(t: &Tensor, mut g: Tensor) -> Tensor {
    let hooks: Vec<_> = t.0.hooks.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(_, h)| h.clone()).collect();
    for hook in hooks {
        if let Some(replacement) = hook(&g) {
            if replacement.shape() != g.shape() {
                crate::error::shape_mismatch(
                    "hook",
                    "a gradient hook changed the gradient's shape",
                    replacement.shape(),
                    g.shape(),
                );
            }
            g = replacement;
        }
    }
    g
}

/// The sweep. With `targets`, gradients for those tensors are returned instead of accumulated into `.grad()`.
#[track_caller]
fn run(
    roots: &[(Tensor, Tensor)],
    retain_graph: bool,
    create_graph: bool,
    targets: Option<&[Tensor]>,
) -> Option<Vec<Option<Tensor>>> {
    let _mode = set_grad_enabled(create_graph);
    let _sweep = crate::profile::engine_scope();
    let mut visits = Visits::begin();
    let order = topological_order(roots, &mut visits);
    let mut grads: Vec<Option<Tensor>> = vec![None; order.len()];
    for (root, seed) in roots {
        accumulate(&mut grads[visits.position(root)], seed.clone());
    }
    let target_slot: AddressMap<usize> =
        targets.map(|ts| ts.iter().enumerate().map(|(i, t)| (key(t), i)).collect()).unwrap_or_default();
    let mut captured: Vec<Option<Tensor>> = vec![None; targets.map_or(0, |t| t.len())];
    let profiling = crate::profile::is_enabled();

    for i in (0..order.len()).rev() {
        let Some(g) = grads[i].take() else { continue };
        let t = &order[i];
        let g = if t.0.has_hooks.load(Ordering::Acquire) { apply_hooks(t, g) } else { g };
        crate::profile::check_anomaly_backward(t, &g);
        if let Some(&slot) = targets.and_then(|_| target_slot.get(&key(t))) {
            accumulate(&mut captured[slot], g.clone());
        }
        let Some(node) = &t.0.node else {
            if targets.is_none() {
                let g = if create_graph { g } else { owned(g) };
                accumulate(&mut t.0.grad.lock().unwrap_or_else(|e| e.into_inner()), g);
            }
            continue;
        };
        if targets.is_none() && t.0.retains_grad.load(Ordering::Relaxed) {
            let kept = if create_graph { g.clone() } else { owned(g.clone()) };
            accumulate(&mut t.0.grad.lock().unwrap_or_else(|e| e.into_inner()), kept);
        }
        let mut guard = node.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(state) = guard.as_ref() else { freed_graph_panic(node.name) };
        let mut needs: smallvec::SmallVec<[bool; 4]> = smallvec::SmallVec::new();
        for x in &state.inputs {
            needs.push(x.requires_grad());
        }
        let scope = profiling.then(|| crate::profile::backward_scope(node, state));
        let input_grads = state.op.backward(&g, &needs);
        drop(scope);
        crate::profile::check_backward_outputs(node, state, &input_grads);
        if input_grads.len() != state.inputs.len() {
            panic_msg(format!(
                "backward of `{}` returned {} gradients for {} inputs",
                node.name,
                input_grads.len(),
                state.inputs.len()
            ));
        }
        for ((input, gi), &need) in state.inputs.iter().zip(input_grads).zip(&needs) {
            let (Some(gi), true) = (gi, need) else { continue };
            if gi.shape() != input.shape() {
                panic_msg(format!(
                    "backward of `{}` returned a gradient of shape {:?} for an input of shape {:?}",
                    node.name,
                    gi.shape(),
                    input.shape()
                ));
            }
            let gi = if gi.dtype() != input.dtype() { gi.to_dtype(input.dtype()) } else { gi };
            accumulate(&mut grads[visits.position(input)], gi);
        }
        if !retain_graph {
            let freed: Option<NodeState> = guard.take();
            drop(guard);
            drop(freed);
        }
    }
    drop(order);
    targets.map(|_| captured)
}

#[cfg(test)]
mod tests {
    use super::BackwardOptions;
    use crate::Tensor;

    /// d/dx of `(x * 1.5 + 0.25) * x` summed, at `x = [1, 2, 3]`: `2 * 1.5 x + 0.25`.
    fn expected_grad() -> Vec<f64> {
        vec![3.25, 6.25, 9.25]
    }

    #[test]
    fn concurrent_backward_passes_over_a_shared_graph_agree() {
        // Both threads walk the same retained graph at once: one owns the visit marks, the other falls back
        // to its hash map (or they take turns); every pass must see the whole graph exactly once.
        let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3]).requires_grad_();
        let shared = &x * 1.5 + 0.25;
        let y = (&shared * &x).sum();
        let results: Vec<Vec<f64>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let mut last = Vec::new();
                        for _ in 0..200 {
                            let g = super::grad_impl(&[&y], &[&x], None, true, false);
                            last = g[0].as_ref().expect("x is reached").to_vec::<f64>();
                            assert_eq!(last, expected_grad());
                        }
                        last
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("no panic")).collect()
        });
        assert_eq!(results, vec![expected_grad(), expected_grad()]);
    }

    #[test]
    fn backward_inside_a_hook_walks_its_own_graph() {
        let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3]).requires_grad_();
        let y = (&(&x * 1.5 + 0.25) * &x).sum();
        let inner_x = Tensor::from_vec(vec![2.0f64], &[1]).requires_grad_();
        let probe = inner_x.clone();
        // The hook runs while the outer pass holds the marks: its own backward must still be right.
        let _h = y.register_hook(move |_| {
            // Hooks run with recording off (a plain backward); the inner graph needs it on.
            let _mode = crate::set_grad_enabled(true);
            let z = (&probe * &probe * 3.0).sum();
            z.backward();
            None
        });
        y.backward_with(None, BackwardOptions::default());
        assert_eq!(x.grad().expect("leaf grad").to_vec::<f64>(), expected_grad());
        assert_eq!(inner_x.grad().expect("inner grad").to_vec::<f64>(), vec![12.0]);
    }
}
