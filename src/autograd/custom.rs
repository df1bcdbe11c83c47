//! User-defined differentiable ops: forward and backward in one impl.

use super::Backward;
use crate::tensor::Tensor;
use std::sync::Arc;

/// A differentiable op defined outside the engine: implement `forward` and `backward`, then call
/// [`Tensor::apply_op`]. Prove it right with [`gradcheck`](crate::gradcheck).
///
/// `forward` runs with graph recording off, so it may use any tensor ops (or read and write raw slices).
/// `backward` gets the inputs, the output and dL/d(output) and returns dL/d(input) for each input; written
/// with tensor ops it is itself differentiable, so second derivatives work when it derives them from the
/// inputs (the `output` it receives carries no graph).
///
/// ```
/// use tensorgrad::{CustomOp, Tensor, gradcheck, GradcheckOptions};
///
/// /// Swish with a learnable slope: y = x * sigmoid(beta * x).
/// struct Swish;
///
/// impl CustomOp for Swish {
///     fn name(&self) -> &'static str { "swish" }
///     fn forward(&self, inputs: &[&Tensor]) -> Tensor {
///         let (x, beta) = (inputs[0], inputs[1]);
///         x * &(x * beta).sigmoid()
///     }
///     fn backward(&self, inputs: &[Tensor], _output: &Tensor, dy: &Tensor) -> Vec<Option<Tensor>> {
///         let (x, beta) = (&inputs[0], &inputs[1]);
///         let s = (x * beta).sigmoid();
///         let ds = &s * &(1.0 - &s); // sigmoid'(beta x)
///         let dx = dy * &(&s + &(x * beta * &ds));
///         let dbeta = (dy * &(x * x * &ds)).sum_to_shape(beta.shape());
///         vec![Some(dx), Some(dbeta)]
///     }
/// }
///
/// let x = Tensor::randn(&[5]).to_dtype(tensorgrad::DType::F64).requires_grad_();
/// let beta = Tensor::from_vec(vec![1.5f64], &[1]).requires_grad_();
/// gradcheck(|t| Tensor::apply_op(Swish, &[&t[0], &t[1]]), &[x, beta], GradcheckOptions::default()).unwrap();
/// ```
pub trait CustomOp: Send + Sync + 'static {
    /// The op's name (errors, graph printouts, profiler).
    fn name(&self) -> &'static str;
    /// Computes the output. Runs with graph recording off.
    fn forward(&self, inputs: &[&Tensor]) -> Tensor;
    /// dL/d(input) for each input (`None` for inputs without a gradient), each with its input's shape.
    fn backward(&self, inputs: &[Tensor], output: &Tensor, grad_output: &Tensor) -> Vec<Option<Tensor>>;
}

struct CustomNode {
    op: Arc<dyn CustomOp>,
    inputs: Vec<Tensor>,
    output: Tensor,
}

impl Backward for CustomNode {
    fn name(&self) -> &'static str {
        self.op.name()
    }
    fn backward(&self, dy: &Tensor, _: &[bool]) -> crate::autograd::Grads {
        self.op.backward(&self.inputs, &self.output, dy).into()
    }
}

impl Tensor {
    /// Applies a [`CustomOp`] to `inputs`, recording it in the graph like a built-in op.
    #[track_caller]
    pub fn apply_op(op: impl CustomOp, inputs: &[&Tensor]) -> Tensor {
        // The profiler times the forward as one call of `op.name()` (the ops it runs nest inside it).
        let _p = crate::profile::op_scope(op.name());
        let output = super::no_grad(|| op.forward(inputs)).detach();
        let op: Arc<dyn CustomOp> = Arc::new(op);
        Tensor::from_op(output.clone(), inputs, || CustomNode {
            op,
            inputs: inputs.iter().map(|&t| t.clone()).collect(),
            output: output.detach(),
        })
    }
}
