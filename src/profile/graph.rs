//! Graph inspection: the autograd graph behind a tensor, as an indented tree or as Graphviz DOT.
//!
//! The graph is the one backward walks: each op output holds a node (op name, call site, the op's inputs and
//! what its backward saved); leaves are tensors made by the user (parameters, data). Both printers walk it
//! iteratively from the given tensor to its leaves (no recursion: deep graphs are fine), and show each
//! shared op once:
//!
//! ```text
//! sum [] float32 requires_grad saved 512 B  @ src/main.rs:12:27
//! └─ relu [8, 16] float32 requires_grad saved 512 B  @ src/main.rs:12:20
//!    └─ add [8, 16] float32 requires_grad saved 576 B  @ src/main.rs:11:13
//!       ├─ matmul [8, 16] float32 requires_grad saved 640 B  @ src/main.rs:11:15
//!       │  ├─ x [8, 4] float32
//!       │  └─ t [4, 16] float32 requires_grad saved 256 B  @ src/main.rs:11:26
//!       │     └─ fc.weight [16, 4] float32 requires_grad
//!       └─ fc.bias [16] float32 requires_grad
//! ```
//!
//! "saved" is the memory estimate of [`memory`](super::memory): bytes of the op's input storages plus what
//! its backward saved beyond them. After a backward without `retain_graph` the nodes are freed, and the
//! printers show the op without its inputs.

use super::memory::{format_bytes, node_saved_bytes};
use super::trace::json_string;
use crate::tensor::Tensor;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// Deeper levels than this are elided in the tree (each level indents by three columns).
const MAX_TREE_DEPTH: usize = 200;

fn key(t: &Tensor) -> usize {
    Arc::as_ptr(&t.0) as usize
}

/// The inputs of `t`'s op: `None` for a leaf, `Some(None)` when backward freed the node.
fn op_inputs(t: &Tensor) -> Option<Option<Vec<Tensor>>> {
    let node = t.0.node.as_ref()?;
    let state = node.state.lock().unwrap_or_else(|e| e.into_inner());
    Some(state.as_ref().map(|s| s.inputs.to_vec()))
}

fn saved_bytes(t: &Tensor) -> Option<usize> {
    let node = t.0.node.as_ref()?;
    let state = node.state.lock().unwrap_or_else(|e| e.into_inner());
    state.as_ref().map(node_saved_bytes)
}

/// How many op nodes use each op node as an input (to mark shared subgraphs).
fn use_counts(root: &Tensor) -> HashMap<usize, usize> {
    let mut uses: HashMap<usize, usize> = HashMap::new();
    let mut stack = vec![root.clone()];
    let mut seen = std::collections::HashSet::new();
    seen.insert(key(root));
    while let Some(t) = stack.pop() {
        for input in op_inputs(&t).flatten().unwrap_or_default() {
            if input.is_leaf() {
                continue;
            }
            *uses.entry(key(&input)).or_default() += 1;
            if seen.insert(key(&input)) {
                stack.push(input);
            }
        }
    }
    uses
}

fn names_by_key(names: &[(String, Tensor)]) -> HashMap<usize, &str> {
    names.iter().map(|(n, t)| (key(t), n.as_str())).collect()
}

fn describe_leaf(t: &Tensor, name: Option<&str>) -> String {
    let grad = if t.requires_grad() { " requires_grad" } else { "" };
    format!("{} {:?} {}{grad}", name.unwrap_or("leaf"), t.shape(), t.dtype())
}

fn describe_op(t: &Tensor) -> String {
    let node = t.0.node.as_ref().expect("an op output has a node");
    let saved = match saved_bytes(t) {
        Some(b) => format!("saved {}", format_bytes(b as f64)),
        None => "freed by backward".to_string(),
    };
    format!("{} {:?} {} requires_grad {saved}  @ {}", node.name, t.shape(), t.dtype(), node.location)
}

impl Tensor {
    /// The autograd graph that produced this tensor, as an indented tree from this tensor down to the leaves:
    /// op name, output shape, dtype, whether it requires grad, bytes saved for backward and call site. An op
    /// used by several others is printed in full once, marked `[#n]`, and referenced as `[#n]` afterwards.
    /// See [`profile::graph_tree`](crate::profile::graph_tree) to label leaves with parameter names.
    ///
    /// ```
    /// use tensorgrad::Tensor;
    /// let w = Tensor::ones(&[2, 3]).requires_grad_();
    /// let y = w.exp().sum();
    /// let tree = y.graph_tree();
    /// assert!(tree.starts_with("sum [] float32") && tree.contains("exp [2, 3]"));
    /// ```
    pub fn graph_tree(&self) -> String {
        graph_tree(self, &[])
    }
}

/// Prints [`Tensor::graph_tree`] to standard output.
pub fn print_graph(t: &Tensor) {
    print!("{}", t.graph_tree());
}

/// [`Tensor::graph_tree`] with leaves labelled by name: pass `model.named_parameters()`-style pairs
/// (a leaf is matched by identity, i.e. the same tensor handle or a clone of it).
pub fn graph_tree(root: &Tensor, names: &[(String, Tensor)]) -> String {
    let names = names_by_key(names);
    let uses = use_counts(root);
    let mut labels: HashMap<usize, usize> = HashMap::new();
    let mut out = String::new();
    // (tensor, prefix of this line, prefix of its children, depth)
    let mut stack: Vec<(Tensor, String, String, usize)> = vec![(root.clone(), String::new(), String::new(), 0)];
    while let Some((t, line_prefix, child_prefix, depth)) = stack.pop() {
        out.push_str(&line_prefix);
        if t.is_leaf() {
            let _ = writeln!(out, "{}", describe_leaf(&t, names.get(&key(&t)).copied()));
            continue;
        }
        let shared = uses.get(&key(&t)).is_some_and(|&n| n > 1);
        if let Some(label) = labels.get(&key(&t)) {
            let _ = writeln!(out, "{} [#{label}] (shown above)", t.op_name().unwrap_or("?"));
            continue;
        }
        let mut line = describe_op(&t);
        if shared {
            let label = labels.len() + 1;
            labels.insert(key(&t), label);
            let _ = write!(line, "  [#{label}]");
        }
        let _ = writeln!(out, "{line}");
        let Some(Some(inputs)) = op_inputs(&t) else { continue };
        if depth + 1 > MAX_TREE_DEPTH {
            let _ = writeln!(out, "{child_prefix}└─ ... ({} inputs, deeper levels not shown)", inputs.len());
            continue;
        }
        let n = inputs.len();
        // Pushed in reverse so the first input prints first.
        for (i, input) in inputs.into_iter().enumerate().rev() {
            let last = i + 1 == n;
            let line_prefix = format!("{child_prefix}{}", if last { "└─ " } else { "├─ " });
            let next_prefix = format!("{child_prefix}{}", if last { "   " } else { "│  " });
            stack.push((input, line_prefix, next_prefix, depth + 1));
        }
    }
    out
}

/// The autograd graph of `root` in Graphviz DOT: a box per op (name, output shape, dtype, bytes saved for
/// backward, call site), an ellipse per leaf (its name from `names` when given, shape, dtype, whether it
/// requires grad), and an edge from each input to the op that used it. The output tensor is outlined
/// twice. Render with `dot -Tsvg graph.dot -o graph.svg`.
///
/// `names` are `model.named_parameters()`-style pairs; a leaf is matched by identity.
///
/// ```
/// use tensorgrad::{profile, Tensor};
/// let w = Tensor::ones(&[2, 3]).requires_grad_();
/// let y = w.exp().sum();
/// let dot = profile::to_dot(&y, &[("w".to_string(), w.clone())]);
/// assert!(dot.starts_with("digraph") && dot.contains("exp") && dot.contains("w\\n[2, 3]"));
/// ```
pub fn to_dot(root: &Tensor, names: &[(String, Tensor)]) -> String {
    let names = names_by_key(names);
    let mut ids: HashMap<usize, usize> = HashMap::new();
    let mut nodes = String::new();
    let mut edges = String::new();
    let mut stack = vec![root.clone()];
    ids.insert(key(root), 0);
    while let Some(t) = stack.pop() {
        let id = ids[&key(&t)];
        let outline = if id == 0 { ", penwidth=2, peripheries=2" } else { "" };
        if t.is_leaf() {
            let name = names.get(&key(&t)).copied();
            let (fill, grad) = match (name.is_some(), t.requires_grad()) {
                (true, _) => ("#c7e9c0", if t.requires_grad() { "requires grad" } else { "no grad" }),
                (false, true) => ("#fdd0a2", "requires grad"),
                (false, false) => ("#eeeeee", "no grad"),
            };
            let label = format!("{}\n{:?} {}\n{grad}", name.unwrap_or("leaf"), t.shape(), t.dtype());
            let _ = writeln!(
                nodes,
                "  n{id} [shape=ellipse, style=filled, fillcolor=\"{fill}\"{outline}, label={}];",
                json_string(&label)
            );
            continue;
        }
        let node = t.0.node.as_ref().expect("an op output has a node");
        let saved = match saved_bytes(&t) {
            Some(b) => format!("saved {}", format_bytes(b as f64)),
            None => "freed by backward".to_string(),
        };
        let label = format!("{}\n{:?} {}\n{saved}\n{}", node.name, t.shape(), t.dtype(), node.location);
        let _ = writeln!(
            nodes,
            "  n{id} [shape=box, style=\"rounded,filled\", fillcolor=\"#dbe9f6\"{outline}, label={}];",
            json_string(&label)
        );
        for (i, input) in op_inputs(&t).flatten().unwrap_or_default().into_iter().enumerate() {
            let next = ids.len();
            let input_id = *ids.entry(key(&input)).or_insert_with(|| {
                stack.push(input.clone());
                next
            });
            let _ = writeln!(edges, "  n{input_id} -> n{id} [tooltip=\"input {i}\"];");
        }
    }
    format!(
        "digraph tensorgrad {{\n  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=10];\n  edge [arrowsize=0.7];\n{nodes}{edges}}}\n"
    )
}
