//! Programmer errors panic with a message naming the op and both shapes (or dtypes), and — through
//! `#[track_caller]` — point at the caller's line in this file, not at engine internals.

use std::cell::{Cell, RefCell};
use std::sync::Once;
use tensorgrad::{DType, Tensor};

thread_local! {
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, expecting a panic; returns its message and the file the panic was reported at.
fn panic_of(f: impl FnOnce()) -> (String, String) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        // While capturing, record where the panic happened (on the panicking thread) instead of printing it;
        // other panics (failed assertions) go to the default hook.
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CAPTURING.with(|c| c.get()) {
                let loc = info.location().map(|l| l.file().to_string()).unwrap_or_default();
                LOCATION.with(|l| *l.borrow_mut() = Some(loc));
            } else {
                default(info);
            }
        }));
    });
    CAPTURING.with(|c| c.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CAPTURING.with(|c| c.set(false));
    let err = result.expect_err("expected a panic");
    let msg =
        err.downcast_ref::<String>().cloned().or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string())).unwrap();
    let file = LOCATION.with(|l| l.borrow_mut().take()).unwrap_or_default();
    (msg, file)
}

/// Asserts the panic message contains every fragment and that the panic points at this test file.
#[track_caller]
fn expect_panic(f: impl FnOnce(), fragments: &[&str]) {
    let (msg, file) = panic_of(f);
    for frag in fragments {
        assert!(msg.contains(frag), "panic message {msg:?} lacks {frag:?}");
    }
    assert!(file.ends_with("errors.rs"), "panic {msg:?} points at {file}, not at the caller (missing #[track_caller])");
}

fn f32s(shape: &[usize]) -> Tensor {
    Tensor::zeros(shape)
}

#[test]
fn add_broadcast_failure_names_op_and_shapes() {
    let (a, b) = (f32s(&[2, 3]), f32s(&[4]));
    expect_panic(|| drop(a.add(&b)), &["add", "broadcast", "[2, 3]", "[4]"]);
    expect_panic(|| drop(&a + &b), &["add", "[2, 3]", "[4]"]);
    expect_panic(|| drop(&a * &b), &["mul", "[2, 3]", "[4]"]);
    expect_panic(|| drop(a.maximum(&b)), &["maximum", "[2, 3]", "[4]"]);
}

#[test]
fn binary_dtype_mismatch_names_both_dtypes() {
    let a = f32s(&[2]);
    let b = Tensor::zeros_dtype(&[2], DType::F64);
    expect_panic(|| drop(&a + &b), &["add", "dtype", "float32", "float64"]);
}

#[test]
fn matmul_inner_dimension_mismatch_names_the_callers_shapes() {
    expect_panic(|| drop(f32s(&[2, 3]).matmul(&f32s(&[4, 5]))), &["matmul", "inner", "[2, 3]", "[4, 5]"]);
    expect_panic(|| drop(f32s(&[2, 2, 3]).matmul(&f32s(&[2, 4, 5]))), &["matmul", "[2, 2, 3]", "[2, 4, 5]"]);
    // 1-D operands: the message shows the shapes the caller passed, not internal unsqueezed ones.
    expect_panic(|| drop(f32s(&[3]).matmul(&f32s(&[4]))), &["matmul", "[3]", "[4]"]);
    expect_panic(|| drop(f32s(&[2, 3]).matmul(&f32s(&[4]))), &["matmul", "[2, 3]", "[4]"]);
    expect_panic(|| drop(f32s(&[3]).matmul(&f32s(&[4, 2]))), &["matmul", "[3]", "[4, 2]"]);
    expect_panic(|| drop(f32s(&[2, 2, 3]).matmul(&f32s(&[3, 3, 2]))), &["matmul", "batch", "[2, 2, 3]", "[3, 3, 2]"]);
    expect_panic(|| drop(f32s(&[2, 3]).mm(&f32s(&[3]))), &["mm", "[2, 3]", "[3]"]);
    let b = Tensor::zeros_dtype(&[3, 2], DType::F64);
    expect_panic(|| drop(f32s(&[2, 3]).matmul(&b)), &["matmul", "dtype", "float32", "float64", "[2, 3]", "[3, 2]"]);
}

#[test]
fn cat_mismatch_names_both_shapes() {
    let (a, b) = (f32s(&[2, 3]), f32s(&[3, 4]));
    expect_panic(|| drop(Tensor::cat(&[&a, &b], 0)), &["cat", "[2, 3]", "[3, 4]"]);
    expect_panic(|| drop(Tensor::cat(&[&a, &f32s(&[2])], 0)), &["cat", "[2, 3]", "[2]"]);
    let c = Tensor::zeros_dtype(&[2, 3], DType::F64);
    expect_panic(|| drop(Tensor::cat(&[&a, &c], 0)), &["cat", "dtype", "float32", "float64"]);
    expect_panic(|| drop(Tensor::stack(&[&a, &f32s(&[3, 2])], 0)), &["stack", "[2, 3]", "[3, 2]"]);
}

#[test]
fn reshape_and_view_name_both_shapes() {
    let a = f32s(&[2, 3]);
    expect_panic(|| drop(a.reshape([4, 2])), &["reshape", "[4, 2]", "[2, 3]"]);
    expect_panic(|| drop(a.reshape([4, -1])), &["reshape", "[4, -1]", "[2, 3]"]);
    expect_panic(|| drop(a.t().view([6])), &["view", "[3, 2]", "[6]", "contiguous"]);
    expect_panic(|| drop(a.expand(&[3, 3])), &["expand", "[2, 3]", "[3, 3]"]);
}

#[test]
fn gather_out_of_range_index_names_the_index_and_shapes() {
    let x = f32s(&[2, 3]);
    let idx = Tensor::from_vec(vec![0i64, 5, 1, 2], &[2, 2]);
    expect_panic(|| drop(x.gather(1, &idx)), &["gather", "index 5", "size 3", "[2, 3]", "[2, 2]"]);
    let neg = Tensor::from_vec(vec![-1i64], &[1]);
    expect_panic(|| drop(x.index_select(0, &neg)), &["index_select", "-1", "[2, 3]"]);
    let float_idx = Tensor::zeros(&[2, 2]);
    expect_panic(|| drop(x.gather(1, &float_idx)), &["gather", "int64", "float32"]);
    expect_panic(|| drop(x.gather(1, &Tensor::from_vec(vec![0i64], &[1]))), &["gather", "[2, 3]", "[1]"]);
}

#[test]
fn where_mismatches_name_shapes_and_dtypes() {
    let c = Tensor::from_vec(vec![true, false], &[2]);
    expect_panic(|| drop(Tensor::where_(&c, &f32s(&[2, 3]), &f32s(&[4]))), &["where", "[2, 3]", "[4]"]);
    expect_panic(|| drop(Tensor::where_(&c, &f32s(&[3]), &f32s(&[3]))), &["where", "[2]", "[3]"]);
    let b64 = Tensor::zeros_dtype(&[2], DType::F64);
    expect_panic(|| drop(Tensor::where_(&c, &f32s(&[2]), &b64)), &["where", "dtype", "float32", "float64"]);
    expect_panic(|| drop(Tensor::where_(&f32s(&[2]), &f32s(&[2]), &f32s(&[2]))), &["where", "bool", "float32"]);
}

#[test]
fn masked_fill_mask_mismatch_names_both_shapes() {
    let x = f32s(&[2, 2]);
    let m = Tensor::from_vec(vec![true, false, true], &[3]);
    expect_panic(|| drop(x.masked_fill(&m, 0.0)), &["masked_fill", "[3]", "[2, 2]"]);
    expect_panic(|| drop(x.masked_fill(&f32s(&[2, 2]), 0.0)), &["masked_fill", "bool", "float32"]);
}

#[test]
fn to_vec_with_the_wrong_dtype_names_both_dtypes() {
    let x = f32s(&[2, 3]);
    expect_panic(|| drop(x.to_vec::<f64>()), &["to_vec", "float32", "float64", "[2, 3]"]);
    expect_panic(|| drop(x.to_vec::<i64>()), &["to_vec", "float32", "int64"]);
}

#[test]
fn backward_on_a_non_scalar_says_what_to_do() {
    let x = Tensor::zeros(&[2, 3]).requires_grad_();
    let y = &x * 2.0;
    expect_panic(|| y.backward(), &["backward", "[2, 3]", "backward_with"]);
    let g = Tensor::zeros(&[3]);
    expect_panic(|| y.backward_with(Some(&g), tensorgrad::BackwardOptions::default()), &["backward", "[3]", "[2, 3]"]);
    expect_panic(|| Tensor::zeros(&[1]).backward(), &["backward", "does not require grad"]);
}

#[test]
fn float_only_ops_reject_integer_tensors_by_name() {
    let i = Tensor::from_vec(vec![1i64, 2], &[2]);
    expect_panic(|| drop(i.exp()), &["exp", "float", "int64"]);
    expect_panic(|| drop(i.sum()), &["sum", "float", "int64"]);
}

#[test]
fn out_of_range_dims_name_the_op() {
    let x = f32s(&[2, 3]);
    expect_panic(|| drop(x.sum_dim(2, false)), &["sum", "dimension 2", "rank 2"]);
    expect_panic(|| drop(x.softmax(-3)), &["softmax", "-3"]);
    expect_panic(|| drop(x.transpose(0, 5)), &["transpose", "5"]);
}

#[test]
fn narrow_past_the_end_and_cat_of_0d_tensors_are_clear_errors() {
    let x = f32s(&[3, 2]);
    expect_panic(|| drop(x.narrow(0, 2, 5)), &["narrow", "start (2) + length (5)", "size 3", "[3, 2]"]);
    let s = Tensor::scalar(1.0f32);
    expect_panic(|| drop(Tensor::cat(&[&s, &s], 0)), &["cat", "zero-dimensional", "stack"]);
    expect_panic(|| _ = s.size(0), &["size", "rank 0"]);
}
