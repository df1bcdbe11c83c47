//! Graph inspection: the tree printout and the DOT export name the ops, the parameters and their shapes.

use tensorgrad::{profile, Tensor};

/// A one-layer net with a shared subexpression: loss = sum(relu(x W^T + b) * relu(x W^T + b)).
fn tiny_graph() -> (Tensor, Vec<(String, Tensor)>) {
    tensorgrad::manual_seed(0);
    let w = Tensor::randn(&[5, 3]).requires_grad_();
    let b = Tensor::zeros(&[5]).requires_grad_();
    let x = Tensor::randn(&[4, 3]);
    let h = (x.matmul(&w.t()) + &b).relu();
    let loss = (&h * &h).sum();
    (loss, vec![("fc.weight".to_string(), w), ("fc.bias".to_string(), b)])
}

#[test]
fn tree_lists_ops_shapes_and_shows_shared_subgraphs_once() {
    let (loss, names) = tiny_graph();
    let tree = profile::graph_tree(&loss, &names);
    let lines: Vec<&str> = tree.lines().collect();
    assert!(lines[0].starts_with("sum [] float32 requires_grad saved"), "{tree}");
    assert!(lines[0].contains(&format!("@ {}:", file!())), "call site missing: {tree}");
    assert!(lines[1].starts_with("└─ mul [4, 5] float32"), "{tree}");
    // relu is used twice by mul: printed once with a label, then referenced.
    assert_eq!(tree.matches("relu [4, 5] float32").count(), 1, "{tree}");
    assert!(tree.contains("relu [4, 5] float32 requires_grad") && tree.contains("[#1]"), "{tree}");
    assert!(tree.contains("relu [#1] (shown above)"), "{tree}");
    for expected in ["add [4, 5]", "matmul [4, 5]", "fc.weight [5, 3] float32 requires_grad", "fc.bias [5] float32"] {
        assert!(tree.contains(expected), "missing {expected:?} in:\n{tree}");
    }
    // The data leaf does not require grad and has no name.
    assert!(tree.lines().any(|l| l.ends_with("leaf [4, 3] float32")), "{tree}");
    // Without names, leaves are just leaves.
    assert!(loss.graph_tree().contains("leaf [5, 3] float32 requires_grad"));
}

#[test]
fn dot_has_op_and_named_leaf_nodes_and_input_edges() {
    let (loss, names) = tiny_graph();
    let dot = profile::to_dot(&loss, &names);
    assert!(dot.starts_with("digraph tensorgrad {") && dot.trim_end().ends_with('}'), "{dot}");
    for expected in ["\"sum\\n[] float32", "\"mul\\n[4, 5] float32", "\"relu\\n[4, 5]", "\"matmul\\n[4, 5]"] {
        assert!(dot.contains(expected), "missing {expected:?} in:\n{dot}");
    }
    assert!(dot.contains("\"fc.weight\\n[5, 3] float32\\nrequires grad\""), "{dot}");
    assert!(dot.contains("\"fc.bias\\n[5] float32\\nrequires grad\""), "{dot}");
    assert!(dot.contains("\"leaf\\n[4, 3] float32\\nno grad\""), "{dot}");
    assert!(dot.contains(file!()), "call sites missing:\n{dot}");
    assert!(dot.contains("saved "), "{dot}");
    // relu is one node with two edges into mul.
    let relu_id = dot.lines().find(|l| l.contains("label=\"relu")).unwrap().split_whitespace().next().unwrap();
    let mul_id = dot.lines().find(|l| l.contains("label=\"mul")).unwrap().split_whitespace().next().unwrap();
    assert_eq!(dot.matches(&format!("{relu_id} -> {mul_id} ")).count(), 2, "{dot}");
    // Every edge goes between declared nodes.
    let declared: Vec<&str> =
        dot.lines().filter(|l| l.contains("[shape=")).map(|l| l.split_whitespace().next().unwrap()).collect();
    for edge in dot.lines().filter(|l| l.contains("->")) {
        let parts: Vec<&str> = edge.split_whitespace().collect();
        assert!(declared.contains(&parts[0]) && declared.contains(&parts[2]), "dangling edge {edge}");
    }
}

#[test]
fn printers_survive_a_freed_graph_and_a_deep_chain() {
    let (loss, names) = tiny_graph();
    loss.backward();
    let tree = profile::graph_tree(&loss, &names);
    assert_eq!(tree.lines().count(), 1, "{tree}");
    assert!(tree.contains("sum [] float32 requires_grad freed by backward"), "{tree}");
    assert!(profile::to_dot(&loss, &names).contains("freed by backward"));

    let x = Tensor::ones(&[1]).requires_grad_();
    let mut y = x.clone();
    for _ in 0..2000 {
        y = &y * 1.0;
    }
    let tree = y.graph_tree();
    assert!(tree.contains("deeper levels not shown"), "depth cap missing");
    assert_eq!(profile::to_dot(&y, &[]).matches("label=\"mul_scalar").count(), 2000);
}
