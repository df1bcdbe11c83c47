//! PyTorch-like printing: `tensor([[ 1.0000, -2.5000], ...], requires_grad=True)`.
//! Tensors with more than 1000 elements show the first and last 3 entries of each long dimension.

use super::{DType, Tensor};
use std::fmt;

const SUMMARIZE_ABOVE: usize = 1000;
const EDGE_ITEMS: usize = 3;

/// How every element of one tensor is printed, chosen from all its values (like PyTorch's formatter).
enum Style {
    Int,
    Bool,
    /// Whole-valued floats print as `3.`
    WholeFloat,
    Fixed,
    Scientific,
}

fn choose_style(dtype: DType, values: &[f64]) -> Style {
    match dtype {
        DType::I64 => return Style::Int,
        DType::Bool => return Style::Bool,
        _ => {}
    }
    // PyTorch's `_Formatter`: scientific when the nonzero magnitudes span more than 1000x or exceed 1e8 (and,
    // for non-whole values, when one is below 1e-4); otherwise whole numbers print as `3.`, others as `3.1416`.
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let nonzero: Vec<f64> = finite.iter().map(|v| v.abs()).filter(|&v| v > 0.0).collect();
    let max = nonzero.iter().cloned().fold(0.0, f64::max);
    let min = nonzero.iter().cloned().fold(f64::INFINITY, f64::min);
    let wide = !nonzero.is_empty() && (max / min > 1000.0 || max > 1e8);
    if finite.iter().all(|v| v.fract() == 0.0) {
        return if wide { Style::Scientific } else { Style::WholeFloat };
    }
    if wide || (!nonzero.is_empty() && min < 1e-4) {
        Style::Scientific
    } else {
        Style::Fixed
    }
}

fn format_value(style: &Style, v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    match style {
        Style::Int => format!("{}", v as i64),
        Style::Bool => (if v != 0.0 { "True" } else { "False" }).into(),
        Style::WholeFloat => format!("{v:.0}."),
        Style::Fixed => format!("{v:.4}"),
        Style::Scientific => scientific(v),
    }
}

/// `1.2300e+02`, as Python's `{:.4e}` (Rust's `{:.4e}` gives `1.2300e2`).
fn scientific(v: f64) -> String {
    let s = format!("{v:.4e}");
    let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = exponent.parse().unwrap_or(0);
    format!("{mantissa}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
}

/// Indices shown along a dimension of `size`, with `None` marking the elided middle.
fn shown_indices(size: usize, summarize: bool) -> Vec<Option<usize>> {
    if summarize && size > 2 * EDGE_ITEMS {
        let mut v: Vec<Option<usize>> = (0..EDGE_ITEMS).map(Some).collect();
        v.push(None);
        v.extend((size - EDGE_ITEMS..size).map(Some));
        v
    } else {
        (0..size).map(Some).collect()
    }
}

struct Printer<'a> {
    values: &'a [f64],
    shape: &'a [usize],
    strides: Vec<usize>,
    cells: Vec<String>,
    width: usize,
    summarize: bool,
}

impl Printer<'_> {
    fn write(&self, out: &mut String, dim: usize, offset: usize, indent: usize) {
        if dim == self.shape.len() {
            out.push_str(&format!("{:>w$}", self.cells[offset], w = self.width));
            return;
        }
        out.push('[');
        let idx = shown_indices(self.shape[dim], self.summarize);
        let last_dim = dim + 1 == self.shape.len();
        for (k, i) in idx.iter().enumerate() {
            if k > 0 {
                if last_dim {
                    out.push_str(", ");
                } else {
                    out.push(',');
                    out.push_str(&"\n".repeat(self.shape.len() - dim - 1));
                    out.push_str(&" ".repeat(indent + 1));
                }
            }
            match i {
                Some(i) => self.write(out, dim + 1, offset + i * self.strides[dim], indent + 1),
                // PyTorch's elided entries: ` ...` among numbers, `...` as an elided row.
                None => out.push_str(if last_dim { " ..." } else { "..." }),
            }
        }
        out.push(']');
    }
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values = self.to_vec_f64();
        let summarize = values.len() > SUMMARIZE_ABOVE;
        let shape = self.shape();
        let strides: Vec<usize> = super::layout::contiguous_strides(shape).to_vec();
        // Only the printed elements decide the style and the column width.
        let mut shown = Vec::new();
        collect_shown(shape, &strides, 0, 0, summarize, &mut shown);
        let shown_values: Vec<f64> = shown.iter().map(|&i| values[i]).collect();
        let style = choose_style(self.dtype(), &shown_values);
        let mut cells = vec![String::new(); values.len()];
        let mut width = 0;
        for &i in &shown {
            cells[i] = format_value(&style, values[i]);
            // As PyTorch: for floats only finite nonzero values set the column width (nan/inf/0 are padded to
            // it, never widen it).
            let v = values[i];
            if !self.dtype().is_float() || (v.is_finite() && v != 0.0) {
                width = width.max(cells[i].len());
            }
        }
        let printer = Printer { values: &values, shape, strides, cells, width, summarize };
        let mut body = String::new();
        if values.is_empty() && !shape.is_empty() {
            body.push_str("[]");
        } else {
            printer.write(&mut body, 0, 0, "tensor(".len());
        }
        let _ = printer.values;
        write!(f, "tensor({body}")?;
        if values.is_empty() {
            // PyTorch prints no size for the 1-D empty tensor, and a tuple for the others.
            if shape != [0] {
                let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
                write!(f, ", size=({})", dims.join(", "))?;
            }
        }
        if !matches!(self.dtype(), DType::F32 | DType::I64 | DType::Bool) {
            write!(f, ", dtype={}", self.dtype())?;
        }
        match self.op_name() {
            Some(op) => write!(f, ", grad_fn=<{op}>")?,
            None if self.requires_grad() => write!(f, ", requires_grad=True")?,
            None => {}
        }
        write!(f, ")")
    }
}

fn collect_shown(shape: &[usize], strides: &[usize], dim: usize, offset: usize, summarize: bool, out: &mut Vec<usize>) {
    if dim == shape.len() {
        out.push(offset);
        return;
    }
    for i in shown_indices(shape[dim], summarize).into_iter().flatten() {
        collect_shown(shape, strides, dim + 1, offset + i * strides[dim], summarize, out);
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    #[test]
    fn prints_like_pytorch() {
        let t = Tensor::from_vec(vec![1.0f32, -2.5, 3.0, 4.0], &[2, 2]);
        assert_eq!(format!("{t}"), "tensor([[ 1.0000, -2.5000],\n        [ 3.0000,  4.0000]])");
        let w = Tensor::from_vec(vec![1.0f64, 2.0], &[2]);
        assert_eq!(format!("{w}"), "tensor([1., 2.], dtype=float64)");
        assert_eq!(format!("{}", Tensor::scalar(3i64)), "tensor(3)");
    }

    #[test]
    fn large_tensors_are_abbreviated() {
        let t = Tensor::arange(0.0, 2000.0, 1.0).reshape([40, 50]);
        let s = format!("{t}");
        assert!(s.contains("..."), "{s}");
        assert!(s.lines().count() < 12, "{s}");
    }
}
