//! Anomaly mode: a NaN or infinity made in forward or in backward stops with the op's name, its input shapes
//! and the call site. The switch is process-wide, so the tests of this binary run one at a time under a lock
//! and switch it off again even when they panic.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use tensorgrad::{profile, Tensor};

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `f` with anomaly mode on and returns its panic message (None if it did not panic).
fn panic_message_under_anomaly(f: impl FnOnce()) -> Option<String> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    profile::set_detect_anomaly(true);
    let result = catch_unwind(AssertUnwindSafe(f));
    profile::set_detect_anomaly(false);
    let payload = result.err()?;
    Some(
        payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| payload.downcast_ref::<&str>().unwrap().to_string()),
    )
}

#[test]
fn log_of_a_negative_number_names_log_its_input_shapes_and_the_call_site() {
    let mut line = 0;
    let msg = panic_message_under_anomaly(|| {
        let w = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).requires_grad_();
        let shifted = &w - 2.0; // -1, 0, 1, ...: log gives NaN and -inf
        line = line!() + 1;
        let logged = shifted.log();
        logged.sum().backward();
    })
    .expect("anomaly mode must stop at the NaN");
    assert!(msg.contains("forward of `log`"), "{msg}");
    assert!(msg.contains("inputs [2, 3]"), "{msg}");
    assert!(msg.contains(&format!("{}:{line}:", file!())), "call site missing in: {msg}");
}

#[test]
fn finite_graph_runs_unchanged_under_anomaly_mode() {
    let msg = panic_message_under_anomaly(|| {
        let w = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3]).requires_grad_();
        let y = w.log().exp().sum();
        y.backward();
        assert!(w.grad().unwrap().to_vec::<f64>().iter().all(|g| (g - 1.0).abs() < 1e-12));
    });
    assert_eq!(msg, None);
}

#[test]
fn nan_made_only_in_backward_is_caught_in_backward_naming_the_op() {
    let mut line = 0;
    let mut forward_ok = false;
    let msg = panic_message_under_anomaly(|| {
        let x = Tensor::from_vec(vec![0.0f64, 4.0], &[2]).requires_grad_();
        line = line!() + 1;
        let root = x.sqrt(); // sqrt(0) = 0 is fine; its derivative 0.5 / sqrt(0) is not
        let y = (&root * 3.0).sum();
        assert_eq!(y.item(), 6.0);
        forward_ok = true;
        y.backward();
    })
    .expect("anomaly mode must stop at the infinite gradient");
    assert!(forward_ok, "the forward is finite and must pass: {msg}");
    assert!(msg.contains("backward of `sqrt`"), "{msg}");
    assert!(msg.contains("inputs [2]"), "{msg}");
    assert!(msg.contains(&format!("{}:{line}:", file!())), "call site missing in: {msg}");
}

#[test]
fn without_anomaly_mode_the_nan_flows_through() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    assert!(!profile::is_anomaly_enabled());
    let x = Tensor::from_vec(vec![-1.0f64], &[1]).requires_grad_();
    let y = x.log().sum();
    y.backward();
    assert!(y.item().is_nan());
    assert!(x.grad().unwrap().item() == -1.0);
}
