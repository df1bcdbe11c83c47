//! Smoke tests of the engine core: gradients, fan-out with broadcasting, and a long chain.
use tensorgrad::{gradcheck, gradgradcheck, DType, GradcheckOptions, Tensor};

fn f64t(v: Vec<f64>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(v, shape).requires_grad_()
}

#[test]
fn tanh_mlp_gradients_and_hessian_vector_product() {
    tensorgrad::manual_seed(1);
    let x = Tensor::randn(&[4, 3]).to_dtype(DType::F64);
    let w1 = Tensor::randn(&[3, 5]).to_dtype(DType::F64).requires_grad_();
    let w2 = Tensor::randn(&[5, 2]).to_dtype(DType::F64).requires_grad_();
    let f = |t: &[Tensor]| t[0].matmul(&t[1]).tanh().matmul(&t[2]).softmax(-1).log().sum();
    gradcheck(f, &[x.clone(), w1.clone(), w2.clone()], GradcheckOptions::default()).unwrap();
    gradgradcheck(f, &[x, w1, w2], GradcheckOptions::default()).unwrap();
}

#[test]
fn fan_out_and_broadcast() {
    let a = f64t(vec![1.0, 2.0, 3.0], &[3]);
    let b = f64t(vec![0.5, -1.0], &[2, 1]);
    let y = (&a * &b + &a * &a).sum();
    y.backward();
    // dy/da = b0 + b1 + 2a*2 ; dy/db_i = sum(a)
    assert_eq!(a.grad().unwrap().to_vec::<f64>(), vec![-0.5 + 4.0, -0.5 + 8.0, -0.5 + 12.0]);
    assert_eq!(b.grad().unwrap().to_vec::<f64>(), vec![6.0, 6.0]);
}

#[test]
fn long_chain_does_not_overflow_the_stack() {
    let x = Tensor::from_vec(vec![1.0f32], &[1]).requires_grad_();
    let mut y = x.clone();
    for _ in 0..100_000 {
        y = &y * 1.0001;
        y = &y + 0.0001;
    }
    y.sum().backward();
    assert!(x.grad().unwrap().item() > 1.0);
    drop(y);
}
