//! The op profiler: exact forward/backward call counts for a known graph, the table's order, the Chrome
//! trace. The profiler is process-wide, so the tests of this binary take a lock and run one at a time.

use std::sync::Mutex;
use tensorgrad::profile::{EventKind, Profiler};
use tensorgrad::Tensor;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

struct Net {
    x: Tensor,
    w: Tensor,
    b: Tensor,
}

fn net() -> Net {
    tensorgrad::manual_seed(3);
    Net {
        x: Tensor::randn(&[4, 3]),
        w: Tensor::randn(&[5, 3]).requires_grad_(),
        b: Tensor::zeros(&[5]).requires_grad_(),
    }
}

/// One step of a known graph: matmul, add, relu, log_softmax, exp, sum; then backward.
fn step(n: &Net) {
    let h = n.x.matmul(&n.w.t());
    let y = (&h + &n.b).relu();
    let loss = y.log_softmax(-1).exp().sum();
    loss.backward();
}

#[test]
fn counts_forward_and_backward_calls_of_each_op_exactly() {
    let _serial = serial();
    let n = net();
    let profiler = Profiler::start();
    for _ in 0..3 {
        step(&n);
    }
    let report = profiler.stop();
    for op in ["matmul", "add", "relu", "log_softmax"] {
        let s = report.op(op).unwrap_or_else(|| panic!("{op} missing from\n{}", report.table()));
        assert_eq!((s.forward_calls, s.backward_calls), (3, 3), "{op}\n{}", report.table());
        assert!(s.total_time >= s.self_time && s.total_time == s.forward_time + s.backward_time, "{op}");
    }
    let engine = report.op("autograd::engine").unwrap();
    assert_eq!((engine.forward_calls, engine.backward_calls), (0, 3));
    // `mul` only runs inside a backward formula (exp's, dx = dy * y): it is its implementation, not a
    // forward call, though the trace shows it nested under them.
    assert!(report.op("mul").is_none(), "{}", report.table());
    assert!(report.events().iter().any(|e| e.name == "mul" && !e.counted && e.kind == EventKind::Forward));
    // FLOPs: forward 2*m*k*n, backward (only dW is needed, x has no grad) the same again.
    let matmul = report.op("matmul").unwrap();
    assert_eq!(matmul.flops, 3.0 * (2.0 * 4.0 * 3.0 * 5.0) * 2.0, "{}", report.table());
    assert!(matmul.saved_bytes > 0);
    // Per call site: the matmul row points at this file's `step`.
    let site = report.by_call_site().into_iter().find(|s| s.name == "matmul").unwrap();
    assert!(site.call_site.as_deref().unwrap().starts_with(file!()), "{:?}", site.call_site);
    // Self times add up to no more than the wall time.
    assert!(report.total_self_time() <= report.wall_time());
}

#[test]
fn table_is_sorted_by_total_time() {
    let _serial = serial();
    let n = net();
    let profiler = Profiler::start();
    step(&n);
    let report = profiler.stop();
    let rows = report.key_averages();
    assert!(rows.len() >= 6);
    assert!(rows.windows(2).all(|w| w[0].total_time >= w[1].total_time));
    let table = report.table();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[1].starts_with("Name") && lines[1].contains("Self") && lines[1].contains("GFLOP/s"), "{table}");
    let names: Vec<&str> = lines[3..3 + rows.len()].iter().map(|l| l.split_whitespace().next().unwrap()).collect();
    let expected: Vec<&str> = rows.iter().map(|r| r.name).collect();
    assert_eq!(names, expected, "{table}");
    assert!(table.contains("Self time total"), "{table}");
}

#[test]
fn chrome_trace_parses_and_holds_forward_and_backward_events() {
    let _serial = serial();
    let n = net();
    let profiler = Profiler::start();
    step(&n);
    let report = profiler.stop();
    let json: serde_json::Value = serde_json::from_str(&report.chrome_trace_json()).expect("valid JSON");
    let events = json["traceEvents"].as_array().unwrap();
    let complete: Vec<&serde_json::Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    assert_eq!(complete.len(), report.events().len());
    let matmul = complete.iter().find(|e| e["name"] == "matmul" && e["cat"] == "forward").expect("forward matmul");
    assert_eq!(matmul["args"]["input_shapes"], serde_json::json!([[4, 3], [3, 5]]));
    assert_eq!(matmul["args"]["output_shape"], serde_json::json!([4, 5]));
    assert_eq!(matmul["args"]["dtype"], "float32");
    assert!(matmul["ts"].as_f64().unwrap() >= 0.0 && matmul["dur"].as_f64().unwrap() >= 0.0);
    assert!(matmul["args"]["call_site"].as_str().unwrap().starts_with(file!()));
    assert!(complete.iter().any(|e| e["name"] == "matmul (backward)" && e["cat"] == "backward"));
    assert!(complete.iter().any(|e| e["name"] == "autograd::engine"));
    assert!(events.iter().any(|e| e["ph"] == "M" && e["name"] == "thread_name"));
    // The file variant writes the same document.
    let path = std::env::temp_dir().join(format!("tensorgrad_trace_{}.json", std::process::id()));
    report.write_chrome_trace(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), report.chrome_trace_json());
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn nothing_is_recorded_outside_a_session_and_sessions_do_not_mix() {
    let _serial = serial();
    let n = net();
    step(&n); // not profiled
    let first = Profiler::start();
    step(&n);
    let a = first.stop();
    step(&n); // not profiled
    let second = Profiler::start();
    step(&n);
    step(&n);
    let b = second.stop();
    assert_eq!(a.op("relu").unwrap().forward_calls, 1);
    assert_eq!(b.op("relu").unwrap().forward_calls, 2);
    // A dropped profiler ends its session.
    drop(Profiler::start());
    let third = Profiler::start();
    let c = third.stop();
    assert!(c.events().is_empty());
}

#[test]
fn user_scopes_nest_and_split_self_time() {
    let _serial = serial();
    let n = net();
    let profiler = Profiler::start();
    {
        let _block = tensorgrad::profile::op_scope("my_block");
        let _ = n.x.matmul(&n.w.t()).relu();
    }
    let report = profiler.stop();
    let block = report.op("my_block").unwrap();
    let inner: std::time::Duration =
        ["t", "matmul", "relu"].iter().map(|op| report.op(op).map(|s| s.total_time).unwrap_or_default()).max().unwrap();
    assert_eq!(block.forward_calls, 1);
    assert!(block.self_time < block.total_time && block.total_time >= inner);
}

/// An op that calls `from_op` without opening a scope first, as a fused op written without one would.
fn unscoped_square(x: &Tensor) -> Tensor {
    struct SquareBackward(Tensor);
    impl tensorgrad::Backward for SquareBackward {
        fn name(&self) -> &'static str {
            "unscoped_square"
        }
        fn backward(&self, dy: &Tensor, _: &[bool]) -> tensorgrad::Grads {
            [Some(dy * &(&self.0 * 2.0))].into()
        }
    }
    let value = tensorgrad::no_grad(|| x * x);
    Tensor::from_op(value, &[x], || SquareBackward(x.clone()))
}

#[test]
fn an_op_recording_a_node_without_a_scope_is_counted_and_marked_untimed() {
    let _serial = serial();
    let x = Tensor::randn(&[3]).requires_grad_();
    let profiler = Profiler::start();
    let y = unscoped_square(&x).sum();
    y.backward();
    let report = profiler.stop();
    let s = report.op("unscoped_square").unwrap_or_else(|| panic!("missing from\n{}", report.table()));
    assert_eq!((s.forward_calls, s.backward_calls, s.untimed_calls), (1, 1, 1), "{}", report.table());
    assert!(s.saved_bytes > 0, "the node's saved input is counted");
    let table = report.table();
    assert!(table.contains("unscoped_square*") && table.contains("1 forward calls not timed"), "{table}");
    // Inside an enclosing scope the same op is that scope's implementation: timed as part of it, not marked.
    let profiler = Profiler::start();
    {
        let _p = tensorgrad::profile::op_scope("block");
        let _ = unscoped_square(&x);
    }
    let report = profiler.stop();
    assert_eq!(report.op("block").unwrap().forward_calls, 1);
    assert!(report.op("unscoped_square").is_none(), "{}", report.table());
    assert!(!report.table().contains("not timed"));
}

#[test]
fn a_custom_op_forward_is_timed_as_one_call() {
    struct Cube;
    impl tensorgrad::CustomOp for Cube {
        fn name(&self) -> &'static str {
            "cube"
        }
        fn forward(&self, inputs: &[&Tensor]) -> Tensor {
            inputs[0] * &(inputs[0] * inputs[0])
        }
        fn backward(&self, inputs: &[Tensor], _: &Tensor, dy: &Tensor) -> Vec<Option<Tensor>> {
            vec![Some(dy * &(&inputs[0] * &inputs[0]) * 3.0)]
        }
    }
    let _serial = serial();
    let x = Tensor::randn(&[3]).requires_grad_();
    let profiler = Profiler::start();
    Tensor::apply_op(Cube, &[&x]).sum().backward();
    let report = profiler.stop();
    let s = report.op("cube").unwrap_or_else(|| panic!("missing from\n{}", report.table()));
    assert_eq!((s.forward_calls, s.backward_calls, s.untimed_calls), (1, 1, 0), "{}", report.table());
    assert!(s.forward_time > std::time::Duration::ZERO);
}

#[test]
fn fused_ops_forward_calls_are_counted() {
    let _serial = serial();
    tensorgrad::manual_seed(5);
    let x = Tensor::randn(&[2, 1, 6, 6]).requires_grad_();
    let w = Tensor::randn(&[3, 1, 3, 3]).requires_grad_();
    let profiler = Profiler::start();
    let y = tensorgrad::nn::functional::conv2d(&x, &w, None, (1, 1), (1, 1), (1, 1), 1);
    let z = tensorgrad::nn::functional::layer_norm(&y, &[6], None, None, 1e-5);
    z.sum().backward();
    let report = profiler.stop();
    for s in report.key_averages() {
        assert_eq!(s.untimed_calls, 0, "{} has untimed forward calls\n{}", s.name, report.table());
        if s.backward_calls > 0 {
            assert!(
                s.forward_calls >= s.backward_calls || s.name == "autograd::engine",
                "{}\n{}",
                s.name,
                report.table()
            );
        }
    }
}

#[test]
fn an_op_recording_a_differently_named_node_has_its_backward_in_its_own_row() {
    let _serial = serial();
    let a = Tensor::randn(&[4, 3]).requires_grad_();
    let b = Tensor::randn(&[3, 2]);
    let profiler = Profiler::start();
    let y = a.mm(&b).sum_dims(&[0, 1], false);
    y.backward();
    let report = profiler.stop();
    // `mm` records a `matmul` node and `sum_dims` a `sum` node: each op's forward and backward share a row.
    for op in ["mm", "sum_dims"] {
        let s = report.op(op).unwrap_or_else(|| panic!("{op} missing from\n{}", report.table()));
        assert_eq!((s.forward_calls, s.backward_calls), (1, 1), "{op}\n{}", report.table());
    }
    assert!(report.op("matmul").is_none() && report.op("sum").is_none(), "{}", report.table());
    assert_eq!(y.op_name(), Some("sum"), "the node keeps its own name outside the profiler");
}
