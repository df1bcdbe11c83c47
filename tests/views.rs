//! Views share storage with their base, copies happen only when needed, and tensors print like PyTorch.

use tensorgrad::{DType, Tensor};

fn base() -> Tensor {
    Tensor::arange_dtype(0.0, 24.0, 1.0, DType::F64).reshape([2, 3, 4])
}

#[test]
fn every_view_op_shares_storage_and_sees_writes_to_the_base() {
    let x = base();
    let views: Vec<(&str, Tensor, Vec<usize>)> = vec![
        // (name, view, multi-index in the view of base element 13 = [1, 0, 1])
        ("reshape", x.reshape([6, 4]), vec![3, 1]),
        ("view", x.view([24]), vec![13]),
        ("flatten", x.flatten(1, 2), vec![1, 1]),
        ("unsqueeze", x.unsqueeze(1), vec![1, 0, 0, 1]),
        ("squeeze", x.unsqueeze(0).squeeze(0), vec![1, 0, 1]),
        ("permute", x.permute(&[2, 0, 1]), vec![1, 1, 0]),
        ("transpose", x.transpose(0, 2), vec![1, 0, 1]),
        ("narrow", x.narrow(0, 1, 1), vec![0, 0, 1]),
        ("slice", x.slice(2, 1, 4, 2), vec![1, 0, 0]),
        ("expand", x.narrow(0, 1, 1).expand(&[3, 1, 3, 4]), vec![2, 0, 0, 1]),
        ("split", x.split(1, 0)[1].clone(), vec![0, 0, 1]),
        ("chunk", x.chunk(2, 2)[0].clone(), vec![1, 0, 1]),
    ];
    for (name, v, _) in &views {
        assert!(v.shares_storage(&x), "{name} copied");
    }
    x.with_slice_mut::<f64, _>(|s| s[13] = -100.0);
    for (name, v, at) in &views {
        let flat = v.to_vec::<f64>();
        let strides: Vec<usize> = (0..v.rank()).map(|d| v.shape()[d + 1..].iter().product()).collect();
        let k: usize = at.iter().zip(&strides).map(|(i, s)| i * s).sum();
        assert_eq!(flat[k], -100.0, "{name} does not see the write to its base");
    }
}

#[test]
fn writing_through_a_view_changes_the_base() {
    let x = base();
    let row = x.narrow(0, 1, 1).narrow(1, 2, 1); // [1, 1, 4], contiguous
    assert!(row.is_contiguous());
    row.with_slice_mut::<f64, _>(|s| s.fill(7.0));
    assert_eq!(x.to_vec::<f64>()[20..24], [7.0; 4]);
    let col = x.slice(2, 0, 4, 2);
    col.fill_(0.5); // strided write
    let v = x.to_vec::<f64>();
    assert_eq!((v[0], v[1], v[2], v[3]), (0.5, 1.0, 0.5, 3.0));
}

#[test]
fn reshape_of_a_non_contiguous_tensor_copies_while_view_panics() {
    let x = base();
    let t = x.transpose(1, 2); // [2, 4, 3], not contiguous
    assert!(!t.is_contiguous());
    let r = t.reshape([2, 12]);
    assert!(!r.shares_storage(&x), "reshape of a transposed tensor must copy");
    assert_eq!(r.to_vec::<f64>(), t.contiguous().to_vec::<f64>());
    let err = std::panic::catch_unwind(|| t.view([2, 12])).expect_err("view must refuse");
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains("view") && msg.contains("reshape") && msg.contains("[2, 4, 3]"), "{msg}");
    // A reshape that the strides allow stays a view even on a non-contiguous tensor.
    let split = t.reshape([2, 2, 2, 3]);
    assert!(split.shares_storage(&x));
    assert_eq!(split.to_vec::<f64>(), t.to_vec::<f64>());
}

#[test]
fn contiguous_copies_only_when_needed() {
    let x = base();
    assert!(x.contiguous().same(&x), "a contiguous tensor is returned as is");
    let rows = x.narrow(1, 1, 2).narrow(0, 1, 1); // offset view, still row-major
    assert!(rows.is_contiguous());
    assert!(rows.contiguous().shares_storage(&x));
    let t = x.transpose(0, 1);
    let c = t.contiguous();
    assert!(c.is_contiguous() && !c.shares_storage(&x));
    assert_eq!(c.to_vec::<f64>(), t.to_vec::<f64>());
    let e = Tensor::from_vec(vec![1.0f64, 2.0], &[2, 1]).expand(&[2, 3]);
    assert!(!e.is_contiguous());
    assert_eq!(e.contiguous().to_vec::<f64>(), vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
}

#[test]
fn size_one_dims_do_not_break_contiguity() {
    let x = Tensor::zeros(&[3, 1, 4]);
    let p = x.permute(&[1, 0, 2]);
    assert!(p.is_contiguous(), "moving a size-1 dim keeps the data row-major");
    assert!(p.contiguous().same(&p));
}

/// Expected strings are PyTorch 2.x's `str(tensor)` for the same values (dtype names differ:
/// `dtype=float64` here, `dtype=torch.float64` there; grad_fn names are the op names).
#[test]
fn display_matches_pytorch() {
    let cases: Vec<(Tensor, &str)> = vec![
        (
            Tensor::from_vec(vec![1.0f32, -2.5, 3.0, 4.0], &[2, 2]),
            "tensor([[ 1.0000, -2.5000],\n        [ 3.0000,  4.0000]])",
        ),
        (Tensor::from_vec(vec![1e-5f32, 1.0, 123.0], &[3]), "tensor([1.0000e-05, 1.0000e+00, 1.2300e+02])"),
        (Tensor::from_vec(vec![1e9f32, 1.0], &[2]), "tensor([1.0000e+09, 1.0000e+00])"),
        (Tensor::from_vec(vec![1i64, -20, 3], &[3]), "tensor([  1, -20,   3])"),
        (Tensor::from_vec(vec![true, false], &[2]), "tensor([ True, False])"),
        (Tensor::scalar(3.5f32), "tensor(3.5000)"),
        (Tensor::from_vec(vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1.0], &[4]), "tensor([nan, inf, -inf, 1.])"),
        (Tensor::from_vec(vec![f32::NAN, 1.5], &[2]), "tensor([   nan, 1.5000])"),
        (Tensor::from_vec(vec![1.0f32, 2.0], &[2]).requires_grad_(), "tensor([1., 2.], requires_grad=True)"),
        (
            Tensor::arange(0.0, 8.0, 1.0).reshape([2, 2, 2]),
            "tensor([[[0., 1.],\n         [2., 3.]],\n\n        [[4., 5.],\n         [6., 7.]]])",
        ),
        (Tensor::zeros(&[0]), "tensor([])"),
        (Tensor::zeros(&[2, 0]), "tensor([], size=(2, 0))"),
        (Tensor::from_vec(vec![1.0f64, 2.0], &[2]), "tensor([1., 2.], dtype=float64)"),
    ];
    for (t, expected) in cases {
        assert_eq!(format!("{t}"), expected);
    }
    let y = &Tensor::from_vec(vec![1.0f32], &[1]).requires_grad_() * 2.0;
    assert_eq!(format!("{y}"), "tensor([2.], grad_fn=<mul_scalar>)");
}

#[test]
fn display_abbreviates_large_tensors_like_pytorch() {
    let t = Tensor::arange(0.0, 1001.0, 1.0);
    assert_eq!(format!("{t}"), "tensor([   0.,    1.,    2.,  ...,  998.,  999., 1000.])");
    // Rows elided on a line of their own; magnitudes spanning > 1000x switch to scientific notation.
    let m = Tensor::arange(0.0, 1200.0, 1.0).reshape([400, 3]);
    assert_eq!(
        format!("{m}"),
        "tensor([[0.0000e+00, 1.0000e+00, 2.0000e+00],\n        [3.0000e+00, 4.0000e+00, 5.0000e+00],\n        \
         [6.0000e+00, 7.0000e+00, 8.0000e+00],\n        ...,\n        [1.1910e+03, 1.1920e+03, 1.1930e+03],\n        \
         [1.1940e+03, 1.1950e+03, 1.1960e+03],\n        [1.1970e+03, 1.1980e+03, 1.1990e+03]])"
    );
    // Small tensors are never abbreviated.
    assert!(!format!("{}", Tensor::zeros(&[10, 100])).contains("..."));
}

#[test]
fn empty_slices_and_splits_follow_python() {
    let x = base();
    assert_eq!(x.slice(2, 3, 1, 1).shape(), &[2, 3, 0], "start > end is an empty slice, like x[..., 3:1]");
    assert_eq!(x.slice(2, 1, 100, 2).shape(), &[2, 3, 2], "end is clamped");
    let empty = x.narrow(0, 0, 0);
    let pieces = empty.split(2, 0);
    assert_eq!(pieces.len(), 1, "splitting an empty dim gives one empty piece, as torch.split");
    assert_eq!(pieces[0].shape(), &[0, 3, 4]);
}

#[test]
fn zero_dim_tensors_accept_dim_0_and_minus_1() {
    let s = Tensor::scalar(2.0f64);
    assert_eq!(s.sum_dim(-1, true).shape(), &[] as &[usize]);
    assert_eq!(s.softmax(0).item(), 1.0);
    let (v, i) = s.max_dim(0, true);
    assert_eq!((v.item(), i.to_vec::<i64>()), (2.0, vec![0]));
    assert_eq!(s.argmax(Some(-1), false).shape(), &[] as &[usize]);
}
