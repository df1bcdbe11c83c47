//! One table-driven f64 gradcheck over every differentiable op, plus gradgradcheck (second derivatives)
//! and a Hessian-vector product of a small tanh MLP against finite differences of its gradient.
//!
//! Each row is a name, its inputs (shape + value domain) and a closure. Rows cover broadcasting,
//! non-contiguous inputs (the closure transposes, slices, permutes or expands before the op) and fan-out
//! (one tensor used twice). Inputs avoid non-differentiable points: values are drawn with magnitude in
//! [0.2, 1.5] (never near 0, so abs/relu/sign are smooth), random continuous values never tie (max, maximum),
//! and positive-only ops (log, sqrt, pow) get a positive domain.

use tensorgrad::{gradcheck, gradgradcheck, DType, GeluApprox, GradcheckOptions, Tensor};

/// How an input's values are drawn.
#[derive(Clone, Copy)]
enum Dom {
    /// Magnitude in [0.2, 1.5], random sign.
    N,
    /// In [0.5, 2.0].
    P,
}

type F = Box<dyn Fn(&[Tensor]) -> Tensor>;

struct Row {
    name: &'static str,
    inputs: Vec<(Vec<usize>, Dom)>,
    f: F,
    opts: GradcheckOptions,
}

/// A tiny deterministic generator (independent of the library's RNG, so the rows never change).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64) / ((1u64 << 53) as f64)
    }
    fn value(&mut self, dom: Dom) -> f64 {
        match dom {
            Dom::N => {
                let m = 0.2 + 1.3 * self.next();
                if self.next() < 0.5 {
                    -m
                } else {
                    m
                }
            }
            Dom::P => 0.5 + 1.5 * self.next(),
        }
    }
}

fn make_inputs(row: &Row, seed: u64) -> Vec<Tensor> {
    let mut rng = Lcg(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xDEAD_BEEF);
    row.inputs
        .iter()
        .map(|(shape, dom)| {
            let n: usize = shape.iter().product();
            Tensor::from_vec((0..n).map(|_| rng.value(*dom)).collect::<Vec<f64>>(), shape)
        })
        .collect()
}

fn n(shape: &[usize]) -> (Vec<usize>, Dom) {
    (shape.to_vec(), Dom::N)
}
fn p(shape: &[usize]) -> (Vec<usize>, Dom) {
    (shape.to_vec(), Dom::P)
}
fn idx(v: &[i64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape)
}

macro_rules! row {
    ($name:expr, [$($inp:expr),* $(,)?], $f:expr) => {
        Row { name: $name, inputs: vec![$($inp),*], f: Box::new($f), opts: GradcheckOptions::default() }
    };
    ($name:expr, [$($inp:expr),* $(,)?], $f:expr, $opts:expr) => {
        Row { name: $name, inputs: vec![$($inp),*], f: Box::new($f), opts: $opts }
    };
}

/// Unary ops and activations: (name, domain, f). Shared by the gradcheck table and gradgradcheck.
/// (name, input domain, op).
type UnaryRow = (&'static str, Dom, fn(&Tensor) -> Tensor);

fn unary_rows() -> Vec<UnaryRow> {
    vec![
        ("neg", Dom::N, |x| x.neg()),
        ("exp", Dom::N, |x| x.exp()),
        ("log", Dom::P, |x| x.log()),
        ("sqrt", Dom::P, |x| x.sqrt()),
        ("rsqrt", Dom::P, |x| x.rsqrt()),
        ("abs", Dom::N, |x| x.abs()),
        ("sin", Dom::N, |x| x.sin()),
        ("cos", Dom::N, |x| x.cos()),
        ("erf", Dom::N, |x| x.erf()),
        ("powf(2.5)", Dom::P, |x| x.powf(2.5)),
        ("powf(3)", Dom::N, |x| x.powf(3.0)),
        ("powf(-1.5)", Dom::P, |x| x.powf(-1.5)),
        ("powf(0)", Dom::N, |x| x.powf(0.0)),
        ("clamp(-0.5, 0.5)", Dom::N, |x| x.clamp(Some(-0.5), Some(0.5))),
        ("clamp(None, 0.3)", Dom::N, |x| x.clamp(None, Some(0.3))),
        ("clamp(-0.3, None)", Dom::N, |x| x.clamp(Some(-0.3), None)),
        ("relu", Dom::N, |x| x.relu()),
        ("leaky_relu(0.1)", Dom::N, |x| x.leaky_relu(0.1)),
        ("elu(1)", Dom::N, |x| x.elu(1.0)),
        ("elu(0.5)", Dom::N, |x| x.elu(0.5)),
        ("gelu(erf)", Dom::N, |x| x.gelu(GeluApprox::None)),
        ("gelu(tanh)", Dom::N, |x| x.gelu(GeluApprox::Tanh)),
        ("sigmoid", Dom::N, |x| x.sigmoid()),
        ("tanh", Dom::N, |x| x.tanh()),
        ("softplus(1, 20)", Dom::N, |x| x.softplus(1.0, 20.0)),
        ("softplus(2, 1)", Dom::N, |x| x.softplus(2.0, 1.0)),
        ("silu", Dom::N, |x| x.silu()),
        ("unary -", Dom::N, |x| -x),
        ("add_scalar", Dom::N, |x| x.add_scalar(0.7)),
        ("mul_scalar", Dom::N, |x| x.mul_scalar(-1.3)),
        ("rsub_scalar", Dom::N, |x| x.rsub_scalar(2.0)),
        ("rdiv_scalar", Dom::P, |x| x.rdiv_scalar(2.0)),
        ("x + 1.5 (operator)", Dom::N, |x| x + 1.5),
        ("2 - x (operator)", Dom::N, |x| 2.0 - x),
        ("x * 3 (operator)", Dom::N, |x| x * 3.0),
        ("x / 3 (operator)", Dom::N, |x| x / 3.0),
        ("2 / x (operator)", Dom::P, |x| 2.0 / x),
    ]
}

#[rustfmt::skip]
fn table() -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for (name, dom, f) in unary_rows() {
        rows.push(Row { name, inputs: vec![(vec![2, 3], dom)], f: Box::new(move |t: &[Tensor]| f(&t[0])), opts: GradcheckOptions::default() });
    }
    rows.extend([
        // Unary ops on non-contiguous inputs.
        row!("exp(transposed)", [n(&[3, 2])], |t| t[0].t().exp()),
        row!("tanh(sliced step 2)", [n(&[2, 5])], |t| t[0].slice(1, 0, 5, 2).tanh()),
        row!("gelu(expanded)", [n(&[3, 1])], |t| t[0].expand(&[2, 3, 4]).gelu(GeluApprox::None)),
        row!("sigmoid(permuted)", [n(&[2, 3, 2])], |t| t[0].permute(&[2, 0, 1]).sigmoid()),
        row!("to_dtype f32 round trip", [n(&[2, 3])], |t| t[0].to_dtype(DType::F32).to_dtype(DType::F64),
             GradcheckOptions { eps: 1e-2, atol: 1e-4, rtol: 1e-3 }),

        // Binary ops, same shape, broadcast and non-contiguous.
        row!("add", [n(&[2, 3]), n(&[2, 3])], |t| t[0].add(&t[1])),
        row!("sub", [n(&[2, 3]), n(&[2, 3])], |t| t[0].sub(&t[1])),
        row!("mul", [n(&[2, 3]), n(&[2, 3])], |t| t[0].mul(&t[1])),
        row!("div", [n(&[2, 3]), p(&[2, 3])], |t| t[0].div(&t[1])),
        row!("pow", [p(&[2, 3]), n(&[2, 3])], |t| t[0].pow(&t[1])),
        row!("maximum", [n(&[2, 3]), n(&[2, 3])], |t| t[0].maximum(&t[1])),
        row!("minimum", [n(&[2, 3]), n(&[2, 3])], |t| t[0].minimum(&t[1])),
        row!("add broadcast [2,3]+[3]", [n(&[2, 3]), n(&[3])], |t| &t[0] + &t[1]),
        row!("sub broadcast [2,1,3]-[4,1]", [n(&[2, 1, 3]), n(&[4, 1])], |t| &t[0] - &t[1]),
        row!("mul broadcast [3,1]*[1,4]", [n(&[3, 1]), n(&[1, 4])], |t| &t[0] * &t[1]),
        row!("div broadcast [2,3]/[]", [n(&[2, 3]), p(&[])], |t| &t[0] / &t[1]),
        row!("pow broadcast [2,3]^[3]", [p(&[2, 3]), n(&[3])], |t| t[0].pow(&t[1])),
        row!("maximum broadcast [2,3] vs [2,1]", [n(&[2, 3]), n(&[2, 1])], |t| t[0].maximum(&t[1])),
        row!("minimum broadcast [3] vs [2,3]", [n(&[3]), n(&[2, 3])], |t| t[0].minimum(&t[1])),
        row!("mul(transposed, sliced)", [n(&[3, 2]), n(&[2, 6])], |t| &t[0].t() * &t[1].slice(1, 1, 6, 2)),
        row!("add(expanded, permuted)", [n(&[1, 3]), n(&[3, 2])], |t| &t[0].expand(&[2, 3]) + &t[1].permute(&[1, 0])),
        row!("div(narrowed, transposed)", [n(&[4, 3]), p(&[3, 2])], |t| &t[0].narrow(0, 1, 2) / &t[1].t()),

        // Fan-out: one tensor used more than once.
        row!("fan-out x*x + exp(x)", [n(&[2, 3])], |t| &t[0] * &t[0] + t[0].exp()),
        row!("fan-out a*b + a/b", [n(&[2, 3]), p(&[2, 3])], |t| &t[0] * &t[1] + &t[0] / &t[1]),
        row!("fan-out x @ x^T", [n(&[2, 3])], |t| t[0].matmul(&t[0].t())),
        row!("fan-out softmax(x) * x", [n(&[2, 3])], |t| t[0].softmax(-1) * &t[0]),
        row!("fan-out through views", [n(&[2, 3])], |t| &t[0].t().reshape([6]) + &t[0].reshape([6]).exp()),

        // Reductions.
        row!("sum", [n(&[2, 3, 2])], |t| t[0].sum()),
        row!("sum_dim(1)", [n(&[2, 3, 2])], |t| t[0].sum_dim(1, false)),
        row!("sum_dims([0,2], keepdim)", [n(&[2, 3, 2])], |t| t[0].sum_dims(&[0, 2], true)),
        row!("sum_dims(permuted)", [n(&[2, 3, 2])], |t| t[0].permute(&[1, 2, 0]).sum_dims(&[0, -1], false)),
        row!("mean", [n(&[2, 3])], |t| t[0].mean()),
        row!("mean_dim(-1, keepdim)", [n(&[2, 3])], |t| t[0].mean_dim(-1, true)),
        row!("mean_dims([0,1])", [n(&[2, 3, 2])], |t| t[0].mean_dims(&[0, 1], false)),
        row!("var", [n(&[2, 3])], |t| t[0].var()),
        row!("var_dims([1], correction 0)", [n(&[2, 4])], |t| t[0].var_dims(&[1], 0, false)),
        row!("var_dims([0,2], correction 1, keepdim)", [n(&[2, 3, 2])], |t| t[0].var_dims(&[0, 2], 1, true)),
        row!("var_dims(correction 2)", [n(&[2, 5])], |t| t[0].var_dims(&[-1], 2, false)),
        row!("std", [n(&[2, 3])], |t| t[0].std()),
        row!("std_dims([1], correction 0, keepdim)", [n(&[3, 4])], |t| t[0].std_dims(&[1], 0, true)),
        row!("std_dims(transposed)", [n(&[4, 3])], |t| t[0].t().std_dims(&[1], 1, false)),
        row!("logsumexp([1])", [n(&[2, 3])], |t| t[0].logsumexp(&[1], false)),
        row!("logsumexp([0,1], keepdim)", [n(&[2, 3, 2])], |t| t[0].logsumexp(&[0, 1], true)),
        row!("logsumexp(large values)", [n(&[2, 3])], |t| (&t[0] * 300.0).logsumexp(&[-1], false)),
        row!("norm(1)", [n(&[2, 3])], |t| t[0].norm(1.0, &[1], false)),
        row!("norm(2)", [n(&[2, 3])], |t| t[0].norm(2.0, &[1], false)),
        row!("norm(2, all dims)", [n(&[2, 3])], |t| t[0].norm(2.0, &[0, 1], false)),
        row!("norm(2, keepdim, transposed)", [n(&[3, 2])], |t| t[0].t().norm(2.0, &[-1], true)),
        row!("norm(inf)", [n(&[2, 3])], |t| t[0].norm(f64::INFINITY, &[1], false)),
        row!("norm(3)", [n(&[2, 3])], |t| t[0].norm(3.0, &[0], true)),
        row!("amax([1])", [n(&[2, 3])], |t| t[0].amax(&[1], false)),
        row!("amax([0,2], keepdim)", [n(&[2, 3, 2])], |t| t[0].amax(&[0, 2], true)),
        row!("amin([0])", [n(&[2, 3])], |t| t[0].amin(&[0], false)),
        row!("max()", [n(&[2, 3])], |t| t[0].max()),
        row!("min()", [n(&[2, 3])], |t| t[0].min()),
        row!("max_dim(1)", [n(&[2, 3])], |t| t[0].max_dim(1, false).0),
        row!("min_dim(0, keepdim)", [n(&[2, 3])], |t| t[0].min_dim(0, true).0),
        row!("max_dim(transposed)", [n(&[3, 2])], |t| t[0].t().max_dim(-1, false).0),

        // matmul in every rank combination.
        row!("matmul [3]x[3]", [n(&[3]), n(&[3])], |t| t[0].matmul(&t[1])),
        row!("matmul [2,3]x[3]", [n(&[2, 3]), n(&[3])], |t| t[0].matmul(&t[1])),
        row!("matmul [3]x[3,2]", [n(&[3]), n(&[3, 2])], |t| t[0].matmul(&t[1])),
        row!("matmul [2,3]x[3,4]", [n(&[2, 3]), n(&[3, 4])], |t| t[0].matmul(&t[1])),
        row!("mm [2,3]x[3,2]", [n(&[2, 3]), n(&[3, 2])], |t| t[0].mm(&t[1])),
        row!("matmul [2,2,3]x[3,4]", [n(&[2, 2, 3]), n(&[3, 4])], |t| t[0].matmul(&t[1])),
        row!("matmul [2,3]x[2,3,2]", [n(&[2, 3]), n(&[2, 3, 2])], |t| t[0].matmul(&t[1])),
        row!("matmul [2,2,3]x[2,3,2]", [n(&[2, 2, 3]), n(&[2, 3, 2])], |t| t[0].matmul(&t[1])),
        row!("matmul batch broadcast [2,1,2,3]x[3,3,2]", [n(&[2, 1, 2, 3]), n(&[3, 3, 2])], |t| t[0].matmul(&t[1])),
        row!("matmul batch broadcast [1,2,3]x[2,3,2]", [n(&[1, 2, 3]), n(&[2, 3, 2])], |t| t[0].matmul(&t[1])),
        row!("matmul [3]x[2,3,2]", [n(&[3]), n(&[2, 3, 2])], |t| t[0].matmul(&t[1])),
        row!("matmul [2,2,3]x[3]", [n(&[2, 2, 3]), n(&[3])], |t| t[0].matmul(&t[1])),
        row!("matmul(transposed, transposed)", [n(&[3, 2]), n(&[4, 3])], |t| t[0].t().matmul(&t[1].t())),
        row!("matmul(permuted batch, sliced)", [n(&[3, 2, 2]), n(&[3, 4])], |t| t[0].permute(&[1, 2, 0]).matmul(&t[1].slice(1, 0, 4, 2))),
        row!("matmul(expanded batch)", [n(&[2, 3]), n(&[3, 2])], |t| t[0].expand(&[2, 2, 3]).matmul(&t[1])),
        row!("matmul(_, expanded batch)", [n(&[2, 2, 3]), n(&[3, 2])], |t| t[0].matmul(&t[1].expand(&[2, 3, 2]))),
        row!("matmul(transposed batch, transposed batch)", [n(&[2, 3, 2]), n(&[2, 2, 3])], |t| {
            t[0].transpose(-1, -2).matmul(&t[1].transpose(-1, -2))
        }),
        row!("matmul 4-D x 2-D (merged rows)", [n(&[2, 2, 2, 3]), n(&[3, 2])], |t| t[0].matmul(&t[1])),

        // softmax / log_softmax along several dims.
        row!("softmax(0)", [n(&[2, 3, 2])], |t| t[0].softmax(0)),
        row!("softmax(1)", [n(&[2, 3, 2])], |t| t[0].softmax(1)),
        row!("softmax(-1)", [n(&[2, 3, 2])], |t| t[0].softmax(-1)),
        row!("softmax(transposed)", [n(&[3, 2])], |t| t[0].t().softmax(-1)),
        row!("log_softmax(0)", [n(&[2, 3, 2])], |t| t[0].log_softmax(0)),
        row!("log_softmax(1)", [n(&[2, 3, 2])], |t| t[0].log_softmax(1)),
        row!("log_softmax(-1)", [n(&[2, 3, 2])], |t| t[0].log_softmax(-1)),
        row!("log_softmax(sliced)", [n(&[2, 6])], |t| t[0].slice(1, 1, 6, 2).log_softmax(1)),

        // View ops (each mixed with a nonlinearity so the Jacobian is not a permutation only).
        row!("reshape", [n(&[2, 3])], |t| t[0].reshape([3, -1]) * 2.0),
        row!("reshape(transposed) copies", [n(&[2, 3])], |t| t[0].t().reshape([6]).exp()),
        row!("view", [n(&[2, 3])], |t| t[0].view([6]).exp()),
        row!("flatten", [n(&[2, 3, 2])], |t| t[0].flatten(1, 2).sin()),
        row!("squeeze", [n(&[2, 1, 3])], |t| t[0].squeeze(1).exp()),
        row!("squeeze_all", [n(&[1, 2, 1, 3])], |t| t[0].squeeze_all().exp()),
        row!("unsqueeze", [n(&[2, 3])], |t| t[0].unsqueeze(-1).exp()),
        row!("permute", [n(&[2, 3, 2])], |t| t[0].permute(&[2, 0, 1]).exp()),
        row!("transpose", [n(&[2, 3, 2])], |t| t[0].transpose(0, 2).exp()),
        row!("t", [n(&[2, 3])], |t| t[0].t().exp()),
        row!("narrow", [n(&[4, 3])], |t| t[0].narrow(0, 1, 2).exp()),
        row!("slice step 2", [n(&[2, 7])], |t| t[0].slice(1, 1, 7, 2).exp()),
        row!("slice of slice", [n(&[8, 2])], |t| t[0].slice(0, 1, 8, 2).slice(0, 1, 4, 2).exp()),
        row!("expand", [n(&[3, 1])], |t| t[0].expand(&[2, 3, 4]).exp()),
        row!("broadcast_to", [n(&[3])], |t| t[0].broadcast_to(&[2, 3]).exp()),
        row!("contiguous(transposed)", [n(&[2, 3])], |t| t[0].t().contiguous().exp()),
        row!("sum_to_shape", [n(&[2, 3, 4])], |t| t[0].exp().sum_to_shape(&[3, 1])),

        // Joining and splitting.
        row!("cat dim 0", [n(&[1, 3]), n(&[2, 3])], |t| Tensor::cat(&[&t[0], &t[1]], 0).exp()),
        row!("cat dim 1 of three", [n(&[2, 1]), n(&[2, 3]), n(&[2, 2])], |t| Tensor::cat(&[&t[0], &t[1], &t[2]], 1).exp()),
        row!("cat(transposed, sliced)", [n(&[3, 2]), n(&[2, 6])], |t| Tensor::cat(&[&t[0].t(), &t[1].slice(1, 0, 6, 2)], 0).exp()),
        row!("cat fan-out", [n(&[2, 2])], |t| Tensor::cat(&[&t[0], &t[0].exp()], -1)),
        row!("stack dim 0", [n(&[2, 3]), n(&[2, 3])], |t| Tensor::stack(&[&t[0], &t[1]], 0).exp()),
        row!("stack dim -1", [n(&[2, 3]), n(&[2, 3])], |t| Tensor::stack(&[&t[0], &t[1]], -1).exp()),
        row!("split (reordered)", [n(&[2, 5])], |t| {
            let p = t[0].split(2, 1);
            Tensor::cat(&[&p[2], &p[0].exp(), &p[1]], 1)
        }),
        row!("split_sizes", [n(&[5, 2])], |t| {
            let p = t[0].split_sizes(&[1, 3, 1], 0);
            Tensor::cat(&[&p[1].exp(), &p[2], &p[0].sin()], 0)
        }),
        row!("chunk", [n(&[2, 5])], |t| {
            let p = t[0].chunk(3, 1);
            Tensor::cat(&[&p[2].exp(), &p[1], &p[0]], 1)
        }),

        // Indexing.
        row!("index_select dim 0 (repeats)", [n(&[3, 2])], |t| t[0].index_select(0, &idx(&[2, 0, 2, 1], &[4])).exp()),
        row!("index_select dim 1 (transposed)", [n(&[3, 2])], |t| t[0].t().index_select(1, &idx(&[1, 1, 0], &[3])).exp()),
        row!("index_add", [n(&[4, 2]), n(&[3, 2])], |t| t[0].index_add(0, &idx(&[1, 3, 1], &[3]), &t[1]).exp()),
        row!("index_add dim 1", [n(&[2, 3]), n(&[2, 2])], |t| t[0].index_add(1, &idx(&[2, 2], &[2]), &t[1].t()).exp()),
        row!("gather dim 1", [n(&[2, 3])], |t| t[0].gather(1, &idx(&[2, 0, 2, 1, 1, 0], &[2, 3])).exp()),
        row!("gather dim 0 smaller index", [n(&[3, 2])], |t| t[0].gather(0, &idx(&[2, 0], &[1, 2])).exp()),
        row!("gather(transposed)", [n(&[3, 2])], |t| t[0].t().gather(1, &idx(&[0, 2, 1, 1], &[2, 2])).exp()),
        row!("scatter_add dim 1", [n(&[2, 3]), n(&[2, 2])], |t| t[0].scatter_add(1, &idx(&[2, 2, 0, 1], &[2, 2]), &t[1]).exp()),
        row!("scatter_add dim 0 (sliced src)", [n(&[3, 2]), n(&[2, 4])], |t| t[0].scatter_add(0, &idx(&[0, 2, 0, 0], &[2, 2]), &t[1].slice(1, 0, 4, 2)).exp()),

        // Selection.
        row!("where", [n(&[2, 3]), n(&[2, 3])], |t| Tensor::where_(&t[0].gt_scalar(0.0), &t[0], &t[1]).exp()),
        row!("where broadcast", [n(&[2, 3]), n(&[3])], |t| {
            let c = Tensor::from_vec(vec![true, false], &[2, 1]);
            Tensor::where_(&c, &t[0], &t[1]).exp()
        }),
        row!("masked_fill", [n(&[2, 3])], |t| t[0].masked_fill(&t[0].lt_scalar(0.0), 0.5).exp()),
        row!("masked_fill broadcast mask", [n(&[2, 3])], |t| t[0].masked_fill(&Tensor::from_vec(vec![false, true, false], &[3]), -2.0).exp()),

        row!("where condition broadcasts over both", [n(&[3]), n(&[1])], |t| {
            let c = Tensor::from_vec(vec![true, false, false, true, true, false], &[2, 3]);
            Tensor::where_(&c, &t[0], &t[1]).exp()
        }),
        row!("masked_fill(transposed)", [n(&[3, 2])], |t| t[0].t().masked_fill(&Tensor::from_vec(vec![true, false], &[2, 1]), 1.0).exp()),
        row!("index_add(transposed self, sliced src)", [n(&[2, 4]), n(&[2, 6])], |t| {
            t[0].t().index_add(0, &idx(&[3, 0, 3], &[3]), &t[1].slice(1, 0, 6, 2).t()).exp()
        }),
        row!("scatter_add(transposed self)", [n(&[3, 2]), n(&[2, 2])], |t| {
            t[0].t().scatter_add(1, &idx(&[2, 2, 0, 1], &[2, 2]), &t[1]).exp()
        }),
        row!("cat dim -1 of permuted", [n(&[2, 2, 3]), n(&[2, 1, 2])], |t| {
            Tensor::cat(&[&t[0].permute(&[1, 0, 2]), &t[1].permute(&[2, 0, 1])], -1).exp()
        }),

        // Composites.
        row!("tanh MLP", [n(&[4, 3]), n(&[3, 5]), n(&[5]), n(&[5, 2])], |t| {
            (t[0].matmul(&t[1]) + &t[2]).tanh().matmul(&t[3]).log_softmax(-1).sum()
        }),
    ]);
    rows
}

#[test]
fn every_op_passes_gradcheck() {
    let rows = table();
    let mut failures = Vec::new();
    for (k, row) in rows.iter().enumerate() {
        let inputs = make_inputs(row, k as u64);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| gradcheck(&row.f, &inputs, row.opts)));
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("{}: {e}", row.name)),
            Err(panic) => failures.push(format!("{}: panicked: {}", row.name, panic_text(&panic))),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} gradcheck rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    assert!(rows.len() > 150, "the table shrank to {} rows", rows.len());
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
}

/// Second derivatives: every unary op and activation, matmul, softmax/log_softmax and the reductions.
#[test]
#[rustfmt::skip]
fn second_derivatives_pass_gradgradcheck() {
    let mut rows: Vec<Row> = unary_rows()
        .into_iter()
        .map(|(name, dom, f)| Row { name, inputs: vec![(vec![2, 3], dom)], f: Box::new(move |t: &[Tensor]| f(&t[0])), opts: GradcheckOptions::default() })
        .collect();
    rows.extend([
        row!("matmul [2,3]x[3,2]", [n(&[2, 3]), n(&[3, 2])], |t| t[0].matmul(&t[1])),
        row!("matmul batched broadcast", [n(&[2, 1, 2, 3]), n(&[2, 3, 2])], |t| t[0].matmul(&t[1])),
        row!("matmul [3]x[3]", [n(&[3]), n(&[3])], |t| t[0].matmul(&t[1])),
        row!("softmax(-1)", [n(&[2, 3])], |t| t[0].softmax(-1)),
        row!("softmax(0)", [n(&[2, 3])], |t| t[0].softmax(0)),
        row!("log_softmax(-1)", [n(&[2, 3])], |t| t[0].log_softmax(-1)),
        row!("log_softmax(0)", [n(&[2, 3])], |t| t[0].log_softmax(0)),
        row!("sum_dims", [n(&[2, 3])], |t| (&t[0] * &t[0]).sum_dims(&[1], false)),
        row!("mean", [n(&[2, 3])], |t| t[0].exp().mean()),
        row!("var_dims", [n(&[2, 3])], |t| t[0].var_dims(&[1], 1, false)),
        row!("std_dims", [n(&[2, 3])], |t| t[0].std_dims(&[1], 0, true)),
        row!("logsumexp", [n(&[2, 3])], |t| t[0].logsumexp(&[1], false)),
        row!("norm(2)", [n(&[2, 3])], |t| t[0].norm(2.0, &[1], false)),
        row!("norm(1)", [n(&[2, 3])], |t| t[0].norm(1.0, &[1], false)),
        row!("norm(3)", [n(&[2, 3])], |t| t[0].norm(3.0, &[1], false)),
        row!("norm(inf)", [n(&[2, 3])], |t| t[0].norm(f64::INFINITY, &[1], false)),
        row!("amax", [n(&[2, 3])], |t| (&t[0] * &t[0]).amax(&[1], false)),
        row!("max_dim", [n(&[2, 3])], |t| (&t[0] * &t[0]).max_dim(0, false).0),
        row!("pow", [p(&[2, 3]), n(&[2, 3])], |t| t[0].pow(&t[1])),
        row!("pow broadcast", [p(&[2, 3]), n(&[3])], |t| t[0].pow(&t[1])),
        row!("div", [n(&[2, 3]), p(&[2, 3])], |t| t[0].div(&t[1])),
        row!("maximum", [n(&[2, 3]), n(&[2, 3])], |t| t[0].maximum(&t[1])),
        row!("binary ops", [n(&[2, 3]), p(&[3])], |t| (&t[0] * &t[1] + &t[0] / &t[1]).exp().pow(&t[1]).maximum(&t[0])),
        row!("views + cat + gather", [n(&[2, 3])], |t| {
            let a = Tensor::cat(&[&t[0].t(), &t[0].slice(1, 0, 3, 2).t()], 0);
            (&a * &a).gather(0, &idx(&[4, 0], &[1, 2])).exp()
        }),
    ]);
    // gradgradcheck draws its random output cotangent from the global generator; this is its only user in
    // this test binary, so the draws are reproducible.
    tensorgrad::manual_seed(2);
    let mut failures = Vec::new();
    for (k, row) in rows.iter().enumerate() {
        let inputs = make_inputs(row, 1000 + k as u64);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| gradgradcheck(&row.f, &inputs, row.opts)));
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("{}: {e}", row.name)),
            Err(panic) => failures.push(format!("{}: panicked: {}", row.name, panic_text(&panic))),
        }
    }
    assert!(failures.is_empty(), "{} of {} gradgradcheck rows failed:\n{}", failures.len(), rows.len(), failures.join("\n"));
}

/// H v for a small tanh MLP's loss, from a double backward, against (g(w + eps v) - g(w - eps v)) / (2 eps).
#[test]
fn tanh_mlp_hessian_vector_product_matches_finite_differences() {
    let mut rng = Lcg(7);
    let mut rand = |shape: &[usize]| {
        let n: usize = shape.iter().product();
        Tensor::from_vec((0..n).map(|_| rng.next() * 2.0 - 1.0).collect::<Vec<f64>>(), shape)
    };
    let x = rand(&[5, 3]);
    let target = rand(&[5, 2]);
    let w1 = rand(&[3, 4]).requires_grad_();
    let b1 = rand(&[4]).requires_grad_();
    let w2 = rand(&[4, 2]).requires_grad_();
    let params = [w1, b1, w2];
    let v: Vec<Tensor> = params.iter().map(|p| rand(p.shape())).collect();
    let loss = |ps: &[Tensor]| {
        let h = (x.matmul(&ps[0]) + &ps[1]).tanh();
        let out = h.matmul(&ps[2]);
        (&out - &target).powf(2.0).mean()
    };
    let gradient = |ps: &[Tensor], create_graph: bool| -> Vec<Tensor> {
        let l = loss(ps);
        tensorgrad::grad(&[&l], &ps.iter().collect::<Vec<_>>(), None, create_graph)
            .into_iter()
            .map(Option::unwrap)
            .collect()
    };
    // Analytic: d/dw (g(w) . v).
    let g = gradient(&params, true);
    let gv = g.iter().zip(&v).map(|(gi, vi)| (gi * vi).sum()).reduce(|a, b| a + b).unwrap();
    let hv: Vec<Tensor> = tensorgrad::grad(&[&gv], &params.iter().collect::<Vec<_>>(), None, false)
        .into_iter()
        .map(Option::unwrap)
        .collect();
    // Numeric: central differences of the gradient along v.
    let eps = 1e-5;
    let shifted = |sign: f64| -> Vec<Tensor> {
        let ps: Vec<Tensor> =
            params.iter().zip(&v).map(|(p, vi)| (&p.detach() + &(vi * (sign * eps))).requires_grad_()).collect();
        gradient(&ps, false)
    };
    let (plus, minus) = (shifted(1.0), shifted(-1.0));
    for k in 0..params.len() {
        let a = hv[k].to_vec::<f64>();
        let numeric: Vec<f64> =
            plus[k].to_vec::<f64>().iter().zip(minus[k].to_vec::<f64>()).map(|(p, m)| (p - m) / (2.0 * eps)).collect();
        for (i, (x, y)) in a.iter().zip(&numeric).enumerate() {
            assert!((x - y).abs() <= 1e-6 + 1e-5 * y.abs(), "Hv of param {k} element {i}: analytic {x} vs numeric {y}");
        }
        assert!(a.iter().any(|x| x.abs() > 1e-3), "Hv of param {k} is all ~0: the test would prove nothing");
    }
}
