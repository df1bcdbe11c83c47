//! Smoke tests for the tutorial examples in `examples/`.
//!
//! How: each example keeps its logic in a `pub fn run()` (or `run_with(steps)`) that prints as it goes and
//! returns a small report; its `main` only calls it. This test compiles each example file into itself as a
//! module (`#[path = "../examples/NN_name.rs"] mod ...`), calls that function and asserts on the report.
//! So the examples run in-process, in the test profile that is already being built (no second `cargo`
//! invocation, no looking for example binaries under `target/`), with the same code a user runs.
//!
//! The examples share the engine's global seeded RNG, so the tests take a lock to run one at a time and
//! stay reproducible.

use std::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[allow(dead_code)]
#[path = "../examples/01_tensors.rs"]
mod ex01_tensors;

#[allow(dead_code)]
#[path = "../examples/02_autograd.rs"]
mod ex02_autograd;

#[allow(dead_code)]
#[path = "../examples/03_linear_regression.rs"]
mod ex03_linear_regression;

#[allow(dead_code)]
#[path = "../examples/04_xor.rs"]
mod ex04_xor;

#[allow(dead_code)]
#[path = "../examples/05_fashion_mnist_mlp.rs"]
mod ex05_fashion_mnist_mlp;

#[allow(dead_code)]
#[path = "../examples/06_fashion_mnist_cnn.rs"]
mod ex06_fashion_mnist_cnn;

#[allow(dead_code)]
#[path = "../examples/07_char_lstm.rs"]
mod ex07_char_lstm;

#[allow(dead_code)]
#[path = "../examples/08_tiny_gpt.rs"]
mod ex08_tiny_gpt;

#[allow(dead_code)]
#[path = "../examples/09_custom_layer.rs"]
mod ex09_custom_layer;

#[test]
fn tensors_example_shows_shared_views_broadcasting_and_abbreviated_printing() {
    let _guard = serial();
    let report = ex01_tensors::run();
    assert!(report.views_share_storage);
    assert_eq!(report.broadcast_shape, [3, 4]);
    assert!(
        report.large_print_lines <= 8,
        "a 100 x 100 tensor prints in a few lines, got {}",
        report.large_print_lines
    );
}

#[test]
fn autograd_example_engine_matches_hand_derived_values() {
    let _guard = serial();
    let report = ex02_autograd::run();
    assert!((report.y[0] - 0.98201379).abs() < 1e-7 && (report.y[1] - 0.11920292).abs() < 1e-7, "y = {:?}", report.y);
    assert!(report.max_grad_diff < 1e-12);
    for node in
        ["L = mul_scalar", "y = sigmoid", "z = add", "matmul", "W = leaf (requires_grad)", "t = leaf (constant)"]
    {
        assert!(report.graph.contains(node), "graph printout lacks {node:?}:\n{}", report.graph);
    }
}

#[test]
fn linear_regression_example_gradient_descent_reaches_the_normal_equation() {
    let _guard = serial();
    let report = ex03_linear_regression::run();
    let expected: [(&str, &[f64]); 2] =
        [("women", &[-87.51667, 3.45]), ("mtcars", &[9.61778, -3.91650, 1.22589, 2.93584])];
    for (problem, (name, coefficients)) in report.problems.iter().zip(expected) {
        assert_eq!(problem.name, name);
        let [exact, batch, mini, sgd] = &problem.fits[..] else { panic!("four fits expected") };
        for (got, want) in exact.theta.iter().zip(coefficients) {
            assert!((got - want).abs() < 1e-4, "{name}: normal equation {:?} vs R's lm {coefficients:?}", exact.theta);
        }
        for (got, want) in batch.theta.iter().zip(&exact.theta) {
            assert!(
                (got - want).abs() < 2e-3 * want.abs().max(1.0),
                "{name}: batch GD {:?} vs {:?}",
                batch.theta,
                exact.theta
            );
        }
        for fit in [mini, sgd] {
            assert!(fit.mse < exact.mse * 1.002, "{name}: {} MSE {} vs optimum {}", fit.method, fit.mse, exact.mse);
        }
    }
    // Without standardisation, gradient descent leaves the intercept far from -87.5.
    assert!(report.raw_height_fit[0].abs() < 10.0, "raw-height fit {:?}", report.raw_height_fit);
}

#[test]
fn xor_example_perceptron_fails_only_xor_and_the_mlp_solves_it() {
    let _guard = serial();
    let report = ex04_xor::run();
    for r in &report.perceptron {
        assert_eq!(r.learned, r.gate != "XOR", "perceptron on {}: outputs {:?}", r.gate, r.outputs);
    }
    let xor = report.perceptron.iter().find(|r| r.gate == "XOR").expect("XOR row");
    assert!(
        xor.outputs.iter().all(|p| (p - 0.5).abs() < 0.05),
        "the perceptron's XOR optimum is p = 0.5: {:?}",
        xor.outputs
    );
    assert!(report.mlp.learned, "MLP XOR outputs {:?}", report.mlp.outputs);
    for (p, t) in report.mlp.outputs.iter().zip([0.0, 1.0, 1.0, 0.0]) {
        assert!((p - t).abs() < 0.05, "MLP XOR outputs {:?}", report.mlp.outputs);
    }
    assert_eq!(report.hidden.len(), 4);
}

#[test]
fn custom_layer_example_op_passes_gradcheck_and_trains() {
    let _guard = serial();
    let report = ex09_custom_layer::run_with(300);
    assert!(report.gradcheck_passed && report.gradgradcheck_passed);
    assert!(report.wrong_backward_caught, "gradcheck must catch the wrong backward");
    assert!(report.composition_diff < 1e-12);
    assert!(report.loss_after < 0.01 * report.loss_before, "loss {} -> {}", report.loss_before, report.loss_after);
}

/// A fresh, empty run directory under the target directory (no temp-file crate needed).
fn run_dir(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("examples_smoke").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn fashion_mnist_mlp_example_trains_checkpoints_resumes_and_plots() {
    let _guard = serial();
    let dir = run_dir("05_fashion_mnist_mlp");
    let config = ex05_fashion_mnist_mlp::Config {
        epochs: 1,
        steps: Some(20),
        batch_size: 32,
        lr: 3e-3,
        data: Some(tensorgrad::data::fashion_mnist::shipped_dir()),
        train_samples: Some(640),
        test_samples: Some(200),
        run_dir: Some(dir.clone()),
        ..Default::default()
    };
    let report = ex05_fashion_mnist_mlp::run_with(config.clone()).expect("first run");
    assert_eq!(report.num_parameters, 13_002, "784-16-16-10");
    assert!(report.data_source.contains("shipped") || report.data_source.contains("given"), "{}", report.data_source);
    assert_eq!(report.step_losses.len(), 20);
    assert!(report.step_losses.iter().all(|l| l.is_finite()), "{:?}", report.step_losses);
    let (before, after) = report.probe_loss;
    assert!(after < 0.9 * before, "loss on a fixed batch must fall: {before} -> {after}");
    let stats = report.epochs[0];
    assert!(stats.test_acc > 0.3, "20 steps of Adam beat chance (0.1) by far: {stats:?}");
    assert!(report.checkpoint.is_file());
    assert_svgs(&report.plots);

    // Resume for a second epoch: it starts after epoch 1 with Adam's state, and trains only epoch 2.
    let resumed =
        ex05_fashion_mnist_mlp::run_with(ex05_fashion_mnist_mlp::Config { epochs: 2, resume: true, ..config })
            .expect("resumed run");
    assert_eq!(resumed.resumed_from, Some(1));
    assert_eq!(resumed.epochs.len(), 1);
    assert_eq!(resumed.epochs[0].epoch, 2);
    assert!(
        (resumed.probe_loss.0 - after).abs() < 1e-6,
        "resuming restores the weights: {} vs {after}",
        resumed.probe_loss.0
    );
}

/// Each plot is an SVG with its text (titles, ticks, legend) as `<text>` elements.
fn assert_svgs(plots: &[std::path::PathBuf]) {
    assert!(!plots.is_empty());
    for plot in plots {
        let svg = std::fs::read_to_string(plot).expect("plot written");
        assert!(svg.starts_with("<svg") && svg.contains("<text"), "{}: an SVG with text", plot.display());
    }
}

#[test]
fn fashion_mnist_cnn_example_trains_checkpoints_resumes_and_plots() {
    let _guard = serial();
    let dir = run_dir("06_fashion_mnist_cnn");
    let config = ex06_fashion_mnist_cnn::Config {
        epochs: 1,
        steps: Some(4),
        batch_size: 8,
        lr: 3e-3,
        data: Some(tensorgrad::data::fashion_mnist::shipped_dir()),
        train_samples: Some(32),
        test_samples: Some(32),
        run_dir: Some(dir.clone()),
        ..Default::default()
    };
    let report = ex06_fashion_mnist_cnn::run_with(config.clone()).expect("first run");
    assert_eq!(report.num_parameters, 50_378, "two conv blocks with batch norm and a linear classifier");
    assert_eq!(report.step_losses.len(), 4);
    assert!(report.step_losses.iter().all(|l| l.is_finite()), "{:?}", report.step_losses);
    let (before, after) = report.probe_loss;
    assert!(after < before, "loss on a fixed batch must fall: {before} -> {after}");
    assert!(report.checkpoint.is_file());
    assert_svgs(&report.plots);

    let resumed = ex06_fashion_mnist_cnn::run_with(ex06_fashion_mnist_cnn::Config {
        epochs: 2,
        steps: Some(1),
        resume: true,
        optimizer: ex06_fashion_mnist_cnn::OptimizerKind::Adam,
        ..config
    })
    .expect("resumed run");
    assert_eq!(resumed.resumed_from, Some(1));
    assert_eq!(resumed.epochs.iter().map(|e| e.epoch).collect::<Vec<_>>(), [2]);
    // The weights and BatchNorm's running statistics come back: the eval-mode probe loss is the same.
    assert!((resumed.probe_loss.0 - after).abs() < 1e-5, "resumed probe loss {} vs {after}", resumed.probe_loss.0);
}

#[test]
fn char_lstm_example_trains_samples_checkpoints_and_resumes() {
    let _guard = serial();
    let dir = run_dir("07_char_lstm");
    let config = ex07_char_lstm::Config {
        steps: 6,
        batch_size: 4,
        seq_len: 16,
        eval_every: 6,
        eval_batches: Some(2),
        sample_len: 20,
        run_dir: Some(dir.clone()),
        ..Default::default()
    };
    let report = ex07_char_lstm::run_with(config.clone()).expect("first run");
    assert_eq!(report.vocab_size, 78);
    assert_eq!(report.step_losses.len(), 6);
    assert!(report.step_losses.iter().all(|l| l.is_finite()), "{:?}", report.step_losses);
    assert!((report.step_losses[0] - 78f64.ln()).abs() < 0.3, "starts near ln(78): {:?}", report.step_losses);
    let (before, after) = report.probe_loss;
    assert!(after < before - 0.05, "loss on a fixed batch must fall: {before} -> {after}");
    assert_eq!(report.evals.len(), 1);
    assert!(report.evals[0].val_loss.is_finite());
    assert_eq!(report.sample.chars().count(), 20);
    assert!(report.checkpoint.is_file());
    assert_svgs(&report.plots);

    let resumed = ex07_char_lstm::run_with(ex07_char_lstm::Config { steps: 7, eval_every: 1, resume: true, ..config })
        .expect("resumed run");
    assert_eq!(resumed.resumed_from, Some(6));
    assert_eq!(resumed.step_losses.len(), 1);
    assert!((resumed.probe_loss.0 - after).abs() < 1e-5, "resumed probe loss {} vs {after}", resumed.probe_loss.0);
}

#[test]
fn tiny_gpt_example_trains_samples_and_checkpoints() {
    let _guard = serial();
    let dir = run_dir("08_tiny_gpt");
    let config = ex08_tiny_gpt::Config {
        steps: 4,
        batch_size: 2,
        seq_len: 16,
        eval_every: 4,
        eval_batches: Some(1),
        sample_len: 8,
        run_dir: Some(dir.clone()),
        ..Default::default()
    };
    let report = ex08_tiny_gpt::run_with(config.clone()).expect("first run");
    assert_eq!(report.step_losses.len(), 4);
    assert!(report.step_losses.iter().all(|l| l.is_finite()), "{:?}", report.step_losses);
    let (before, after) = report.probe_loss;
    assert!(after < before, "loss on a fixed batch must fall: {before} -> {after}");
    assert_eq!(report.sample.chars().count(), 8);
    assert!(report.checkpoint.is_file());
    assert_svgs(&report.plots);
    let resumed = ex08_tiny_gpt::run_with(ex08_tiny_gpt::Config { steps: 4, resume: true, ..config }).expect("resume");
    assert_eq!(resumed.resumed_from, Some(4));
    assert!(resumed.step_losses.is_empty(), "nothing left to train");
    assert!((resumed.probe_loss.0 - after).abs() < 1e-5, "resumed probe loss {} vs {after}", resumed.probe_loss.0);
}
