//! # 01 · Tensors: creation, dtypes, views, broadcasting, reductions, printing
//!
//! A tour of the `Tensor` type before any learning happens. Run it with
//!
//! ```text
//! cargo run --release --example 01_tensors
//! ```
//!
//! What it shows, section by section:
//! 1. Creation: `from_vec`, `zeros`, `arange`, `linspace`, `eye`, seeded `randn`.
//! 2. Dtypes: f32 (the default, fast path), f64 (exact checks), i64 (indices, labels), bool (masks).
//! 3. Views: `reshape`, `permute`, `narrow` and `expand` return new *views* of the same storage (only the
//!    shape/strides/offset change). Writing through a view changes the original: the example zeroes a row
//!    of a `narrow` view and the original matrix shows the zeros.
//! 4. Broadcasting: a column `[3, 1]` plus a row `[4]` gives a `[3, 4]` table, as in NumPy/PyTorch.
//! 5. Reductions: sum/mean/max/argmax/var/std/norm/logsumexp over all elements and along a dimension.
//! 6. Printing: small tensors print in full, a 100 x 100 tensor prints abbreviated with `...`.
//!
//! Expected output: each section prints the tensors in PyTorch's style; every claim the text makes
//! ("shares storage: true", sums, shapes) is also asserted, so the program panics if one were wrong.
//! It takes well under a second.

use tensorgrad::{DType, Tensor};

/// Facts the smoke test checks (see `tests/examples_smoke.rs`).
pub struct Report {
    /// Every view made in section 3 shares storage with its base.
    pub views_share_storage: bool,
    /// The broadcast table's shape.
    pub broadcast_shape: Vec<usize>,
    /// The number of lines the abbreviated 100 x 100 tensor printed as.
    pub large_print_lines: usize,
}

fn main() {
    run();
}

/// A tensor's printout on one line (for tables).
fn one_line(t: &Tensor) -> String {
    t.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

fn section(title: &str) {
    println!("\n=== {title} {}", "=".repeat(100usize.saturating_sub(title.len() + 5)));
}

/// Runs every section, printing as it goes.
pub fn run() -> Report {
    tensorgrad::manual_seed(0);

    section("1. Creation");
    let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    println!("from_vec([1..6], [2, 3])     =\n{a}");
    println!("zeros([2, 2])                = {}", Tensor::zeros(&[2, 2]));
    println!("arange(0, 5, 1)              = {}", Tensor::arange(0.0, 5.0, 1.0));
    println!("linspace(0, 1, 5)            = {}", Tensor::linspace(0.0, 1.0, 5));
    println!("eye(3)                       =\n{}", Tensor::eye(3));
    println!("randn([2, 3]) (seed 0)       =\n{}", Tensor::randn(&[2, 3]));
    println!("shape {:?}, rank {}, numel {}, strides {:?}", a.shape(), a.rank(), a.numel(), a.strides());

    section("2. Dtypes");
    let v = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]);
    let thirds = v.to_dtype(DType::F64) / 3.0;
    let labels = Tensor::from_vec(vec![3i64, 0, 7], &[3]);
    let mask = v.gt_scalar(1.5);
    println!("{:<8} {:>6}  {:<24} example", "dtype", "bytes", "used for");
    for (t, what) in [
        (&v, "values (default)"),
        (&thirds, "exact checks, gradcheck"),
        (&labels, "indices, class labels"),
        (&mask, "masks: v > 1.5"),
    ] {
        println!("{:<8} {:>6}  {what:<24} {t}", t.dtype().name(), t.dtype().size_in_bytes());
    }
    println!("masked_fill(a, a > 3, 0)     =\n{}", a.masked_fill(&a.gt_scalar(3.0), 0.0));

    section("3. Views share storage");
    let m = Tensor::arange(0.0, 12.0, 1.0).reshape([3, 4]);
    println!("m = arange(12).reshape([3, 4])  shape {:?} strides {:?}\n{m}", m.shape(), m.strides());
    let views = [
        ("m.reshape([2, 6])", m.reshape([2, 6])),
        ("m.permute([1, 0])", m.permute(&[1, 0])),
        ("m.narrow(1, 1, 2)", m.narrow(1, 1, 2)),
        ("m.slice(1, 0, 4, 2)", m.slice(1, 0, 4, 2)),
        ("m.unsqueeze(0)", m.unsqueeze(0)),
        ("m.narrow(0, 0, 1).expand([3, 4])", m.narrow(0, 0, 1).expand(&[3, 4])),
    ];
    println!("{:<34} {:>10} {:>12} {:>12} {:>15}", "view", "shape", "strides", "contiguous", "shares storage");
    let mut views_share_storage = true;
    for (name, v) in &views {
        let shares = v.shares_storage(&m);
        views_share_storage &= shares;
        println!(
            "{name:<34} {:>10} {:>12} {:>12} {:>15}",
            format!("{:?}", v.shape()),
            format!("{:?}", v.strides()),
            v.is_contiguous(),
            shares
        );
    }
    assert!(views_share_storage, "every view above shares m's storage");
    println!("(an expanded dimension has stride 0: one row is read three times, nothing is copied)");
    println!("m.permute([1, 0]) =\n{}", views[1].1);
    let row1 = m.narrow(0, 1, 1);
    row1.fill_(0.0);
    println!("after m.narrow(0, 1, 1).fill_(0), m itself changed:\n{m}");
    assert_eq!(m.sum().item(), 66.0 - (4.0 + 5.0 + 6.0 + 7.0));
    let flat = m.permute(&[1, 0]).reshape([12]);
    println!(
        "reshape of a non-contiguous view cannot be a view: m.permute([1, 0]).reshape([12]) shares storage = {}",
        flat.shares_storage(&m)
    );
    let copy = m.permute(&[1, 0]).contiguous();
    println!(
        "contiguous() of the permuted view copies: shares storage = {}, strides {:?}",
        copy.shares_storage(&m),
        copy.strides()
    );

    section("4. Broadcasting");
    let col = Tensor::from_vec(vec![0.0f32, 10.0, 20.0], &[3, 1]);
    let row = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[4]);
    let table = &col + &row;
    println!("col [3, 1] = {col}\nrow [4]    = {row}");
    println!("col + row: [3, 1] and [4] -> [1, 4] -> [3, 4]:\n{table}");
    println!("a [2, 3] * 10 (a scalar broadcasts too) =\n{}", &a * 10.0);
    assert_eq!(table.shape(), &[3, 4]);

    section("5. Reductions");
    println!("a =\n{a}");
    let (max_vals, max_idx) = a.max_dim(1, false);
    let rows: [(&str, Tensor); 10] = [
        ("a.sum()", a.sum()),
        ("a.sum_dim(0, false)", a.sum_dim(0, false)),
        ("a.sum_dim(1, true)", a.sum_dim(1, true)),
        ("a.mean_dim(1, false)", a.mean_dim(1, false)),
        ("a.max_dim(1).values", max_vals),
        ("a.max_dim(1).indices", max_idx),
        ("a.argmax(None)", a.argmax(None, false)),
        ("a.var() (unbiased)", a.var()),
        ("a.norm(2, [1])", a.norm(2.0, &[1], false)),
        ("a.logsumexp([1])", a.logsumexp(&[1], false)),
    ];
    for (name, r) in &rows {
        println!("{name:<22} shape {:<8} {}", format!("{:?}", r.shape()), one_line(r));
    }
    assert_eq!(rows[0].1.item(), 21.0);
    assert!((rows[7].1.item() - 3.5).abs() < 1e-6);

    section("6. Printing a large tensor");
    let big = Tensor::randn(&[100, 100]);
    let printed = big.to_string();
    println!("randn([100, 100]): {} elements, printed abbreviated:\n{printed}", big.numel());
    let large_print_lines = printed.lines().count();
    assert!(printed.contains("..."), "a 10,000-element tensor prints abbreviated");

    let report = Report { views_share_storage, broadcast_shape: table.shape().to_vec(), large_print_lines };
    println!(
        "\nDone: views share storage, [3, 1] + [4] -> {:?}, the large tensor printed in {} lines.",
        report.broadcast_shape, report.large_print_lines
    );
    report
}
