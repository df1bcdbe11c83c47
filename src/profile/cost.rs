//! Cost estimates for the profiler: floating-point operations and bytes moved by one op call, from its name
//! and its input and output shapes.
//!
//! | op family | FLOPs | bytes |
//! |---|---|---|
//! | `matmul`, `mm`, `bmm`, `linear` | `2 m k n` per batch entry (`2 * numel(out) * k`) | inputs + output |
//! | `conv1d`, `conv2d` | `2 * numel(out) * numel(weight) / out_channels` | inputs + output |
//! | `softmax`, `log_softmax`, `cross_entropy`, `scaled_masked_softmax` | `5 * numel(in)` | inputs + output |
//! | `layer_norm`, `batch_norm` | `8 * numel(in)` | inputs + output |
//! | `lstm_sequence` (x `[.., I]`, w_ih `[4H, I]`, w_hh `[4H, H]`; `R` rows of x) | `2 R 4H (I + H) + 10 R H` | inputs + output |
//! | `self_attention` (qkv `[N, L, 3E]`) | `4 N L^2 E` (`Q K^T` and `P V`, causal or not) + `5 N L^2` | inputs + output |
//! | reductions (`sum`, `mean`, `amax`, `var`, `logsumexp`, ...) | `numel(in)` | inputs + output |
//! | views (`reshape`, `transpose`, `expand`, `narrow`, ...) | 0 | 0 (nothing is copied) |
//! | copies and indexing (`contiguous`, `cat`, `gather`, ...) | 0 | inputs + output |
//! | anything else (elementwise, activations, unknown names) | `numel(out)` | inputs + output |
//!
//! "bytes" counts every element of every input and the output once, at the output's element size: what a
//! streaming kernel must at least read and write. Broadcast inputs count at their broadcast (logical) size.
//! These are estimates for spotting what is compute- or bandwidth-bound, not measurements.

/// Ops that only make a new view of their input (no element is read or written).
const VIEWS: &[&str] = &[
    "reshape",
    "view",
    "flatten",
    "squeeze",
    "squeeze_all",
    "unsqueeze",
    "permute",
    "transpose",
    "t",
    "narrow",
    "slice",
    "expand",
    "broadcast_to",
    "split",
    "split_sizes",
    "chunk",
    "detach",
];

/// Ops that move elements without arithmetic.
const COPIES: &[&str] = &[
    "contiguous",
    "cat",
    "stack",
    "index_select",
    "gather",
    "scatter_add",
    "index_add",
    "where",
    "where_",
    "masked_fill",
    "to_dtype",
    "slice_backward",
    "sum_to_shape",
    "embedding",
];

/// Reductions: about one operation per input element.
const REDUCTIONS: &[&str] = &[
    "sum",
    "sum_dim",
    "sum_dims",
    "mean",
    "mean_dim",
    "mean_dims",
    "max",
    "min",
    "max_dim",
    "min_dim",
    "amax",
    "amin",
    "argmax",
    "argmin",
    "var",
    "var_dims",
    "std",
    "std_dims",
    "logsumexp",
    "norm",
];

/// Estimated `(flops, bytes)` of one call of the op `name` with inputs of `inputs` shapes producing `output`,
/// with elements of `elem` bytes.
pub(crate) fn estimate(name: &str, inputs: &[&[usize]], output: &[usize], elem: usize) -> (f64, f64) {
    let numel = |s: &[usize]| s.iter().product::<usize>() as f64;
    let out = numel(output);
    let first = inputs.first().map_or(out, |s| numel(s));
    let moved = (inputs.iter().map(|s| numel(s)).sum::<f64>() + out) * elem as f64;
    if VIEWS.contains(&name) {
        return (0.0, 0.0);
    }
    if COPIES.contains(&name) {
        return (0.0, moved);
    }
    let flops = match name {
        "matmul" | "mm" | "bmm" | "linear" | "addmm" => {
            let k = inputs.first().and_then(|s| s.last().copied()).unwrap_or(0) as f64;
            2.0 * out * k
        }
        "conv1d" | "conv2d" | "conv3d" => match inputs.get(1) {
            Some(w) if !w.is_empty() && w[0] > 0 => 2.0 * out * numel(w) / w[0] as f64,
            _ => out,
        },
        "softmax" | "log_softmax" | "cross_entropy" | "scaled_masked_softmax" => 5.0 * first,
        "layer_norm" | "batch_norm" => 8.0 * first,
        "lstm_sequence" => match (inputs.first(), inputs.get(2)) {
            (Some(x), Some(w_hh)) if w_hh.len() == 2 && x.last().is_some_and(|&i| i > 0) => {
                let (i, g4, h) = (x[x.len() - 1] as f64, w_hh[0] as f64, w_hh[1] as f64);
                let rows = first / i;
                2.0 * rows * g4 * (i + h) + 10.0 * rows * h
            }
            _ => out,
        },
        "self_attention" => match inputs.first() {
            Some(&&[n, l, e3]) => {
                let (n, l, e) = (n as f64, l as f64, (e3 / 3) as f64);
                4.0 * n * l * l * e + 5.0 * n * l * l
            }
            _ => out,
        },
        _ if REDUCTIONS.contains(&name) => first,
        _ => out,
    };
    (flops, moved)
}

#[cfg(test)]
mod tests {
    use super::estimate;

    #[test]
    fn matmul_counts_two_mkn_and_views_move_nothing() {
        let (f, b) = estimate("matmul", &[&[4, 8], &[8, 16]], &[4, 16], 4);
        assert_eq!(f, 2.0 * 4.0 * 8.0 * 16.0);
        assert_eq!(b, ((32 + 128 + 64) * 4) as f64);
        assert_eq!(estimate("transpose", &[&[4, 8]], &[8, 4], 4), (0.0, 0.0));
        assert_eq!(estimate("softmax", &[&[10]], &[10], 8).0, 50.0);
        assert_eq!(estimate("sum", &[&[3, 5]], &[], 4).0, 15.0);
        assert_eq!(estimate("exp", &[&[3, 5]], &[3, 5], 4).0, 15.0);
        // LSTM over 2 * 3 rows of 4 features, H = 5: 2 R 4H (I + H) + 10 R H.
        let (f, _) = estimate("lstm_sequence", &[&[2, 3, 4], &[20, 4], &[20, 5], &[2, 5], &[2, 5]], &[2, 3, 5], 4);
        assert_eq!(f, 2.0 * 6.0 * 20.0 * 9.0 + 10.0 * 6.0 * 5.0);
        // Attention over qkv [2, 8, 3 * 4]: 4 N L^2 E + 5 N L^2.
        assert_eq!(
            estimate("self_attention", &[&[2, 8, 12]], &[2, 8, 4], 4).0,
            4.0 * 2.0 * 64.0 * 4.0 + 5.0 * 2.0 * 64.0
        );
    }
}
