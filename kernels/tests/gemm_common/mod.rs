//! Shared GEMM test cases: every case runs the kernel and the naive reference on the same strided
//! buffers and checks the result within a rounding bound, plus that no element outside C changed.
//! Used by `gemm.rs` (best kernels for this CPU) and `gemm_portable.rs` (portable kernels forced).

#![allow(dead_code)]

use tensorgrad_kernels::gemm::{gemm_packed_b, gemm_reference, GemmScalar, PackedB};

/// A small xorshift generator: seeded, dependency-free.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        // uniform in [-1, 1)
        (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// Float helpers the tests need beyond `GemmScalar`.
pub trait TestFloat: GemmScalar + PartialOrd {
    const EPS: f64;
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    fn nan() -> Self;
    fn bits(self) -> u64;
}

impl TestFloat for f32 {
    const EPS: f64 = f32::EPSILON as f64;
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn nan() -> Self {
        f32::NAN
    }
    fn bits(self) -> u64 {
        self.to_bits() as u64
    }
}

impl TestFloat for f64 {
    const EPS: f64 = f64::EPSILON;
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn nan() -> Self {
        f64::NAN
    }
    fn bits(self) -> u64 {
        self.to_bits()
    }
}

/// How a matrix sits in its buffer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Layout {
    RowMajor,
    ColMajor,
    /// Padded rows and a column stride of 2 (non-unit strides in both dims).
    Strided,
}

pub const LAYOUTS: [Layout; 3] = [Layout::RowMajor, Layout::ColMajor, Layout::Strided];

/// (row stride, column stride, buffer length) of a `rows x cols` matrix in `layout`.
pub fn strides(layout: Layout, rows: usize, cols: usize) -> (usize, usize, usize) {
    let (rs, cs) = match layout {
        Layout::RowMajor => (cols.max(1), 1),
        Layout::ColMajor => (1, rows.max(1)),
        Layout::Strided => (2 * cols + 3, 2),
    };
    let len = if rows == 0 || cols == 0 { 0 } else { (rows - 1) * rs + (cols - 1) * cs + 1 };
    (rs, cs, len + 5) // a few trailing elements that must stay untouched
}

/// A buffer filled with random values (elements outside the matrix too: they must never be written).
pub fn random<T: TestFloat>(rng: &mut Rng, len: usize) -> Vec<T> {
    (0..len).map(|_| T::from_f64(rng.next_f64())).collect()
}

pub type GemmFn<T> = fn(usize, usize, usize, T, &[T], usize, usize, &[T], usize, usize, T, &mut [T], usize, usize);

/// [`gemm_packed_b`] behind the [`GemmFn`] signature: packs `B`, then multiplies.
#[allow(clippy::too_many_arguments)]
pub fn packed_b<T: TestFloat>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: &[T],
    rsa: usize,
    csa: usize,
    b: &[T],
    rsb: usize,
    csb: usize,
    beta: T,
    c: &mut [T],
    rsc: usize,
    csc: usize,
) {
    let packed = PackedB::new(k, n, b, rsb, csb);
    assert_eq!((packed.k(), packed.n()), (k, n));
    gemm_packed_b(m, alpha, a, rsa, csa, &packed, beta, c, rsc, csc);
}

/// Runs one case through `f` and the reference and compares.
#[allow(clippy::too_many_arguments)]
pub fn check_case<T: TestFloat>(
    f: GemmFn<T>,
    rng: &mut Rng,
    m: usize,
    k: usize,
    n: usize,
    la: Layout,
    lb: Layout,
    lc: Layout,
    alpha: f64,
    beta: f64,
) {
    let (rsa, csa, lena) = strides(la, m, k);
    let (rsb, csb, lenb) = strides(lb, k, n);
    let (rsc, csc, lenc) = strides(lc, m, n);
    let a: Vec<T> = random(rng, lena);
    let b: Vec<T> = random(rng, lenb);
    let mut c: Vec<T> = random(rng, lenc);
    if beta == 0.0 {
        // beta == 0 must not read C: NaN in C would otherwise show up in the result.
        for i in 0..m {
            for j in 0..n {
                c[i * rsc + j * csc] = T::nan();
            }
        }
    }
    let (alpha_t, beta_t) = (T::from_f64(alpha), T::from_f64(beta));
    let mut want = c.clone();
    gemm_reference(m, k, n, alpha_t, &a, rsa, csa, &b, rsb, csb, beta_t, &mut want, rsc, csc);
    // Rounding bound: (k + 2) eps (|alpha| sum_p |a||b| + |beta c|).
    let abs = |v: &[T]| v.iter().map(|x| T::from_f64(x.to_f64().abs())).collect::<Vec<T>>();
    let mut bound = abs(&c);
    if beta == 0.0 {
        bound.iter_mut().for_each(|x| *x = T::ZERO);
    }
    gemm_reference(
        m,
        k,
        n,
        T::from_f64(alpha.abs()),
        &abs(&a),
        rsa,
        csa,
        &abs(&b),
        rsb,
        csb,
        T::from_f64(beta.abs()),
        &mut bound,
        rsc,
        csc,
    );
    let mut got = c.clone();
    f(m, k, n, alpha_t, &a, rsa, csa, &b, rsb, csb, beta_t, &mut got, rsc, csc);
    for idx in 0..lenc {
        let (g, w) = (got[idx].to_f64(), want[idx].to_f64());
        let tol = (k as f64 + 2.0) * T::EPS * bound[idx].to_f64() + 1e-30;
        assert!(
            (g - w).abs() <= tol,
            "m={m} k={k} n={n} A:{la:?} B:{lb:?} C:{lc:?} alpha={alpha} beta={beta}: \
             element {idx} got {g}, want {w} (tol {tol})"
        );
    }
}

/// Sizes: 0, 1, primes, non-multiples of 8/16, around the tile sizes.
pub const SIZES: [usize; 12] = [0, 1, 2, 3, 5, 7, 8, 13, 16, 17, 31, 37];

/// The full grid over sizes (subsampled), layouts and alpha/beta for one element type.
pub fn grid<T: TestFloat>(f: GemmFn<T>, seed: u64) {
    let mut rng = Rng(seed);
    let ab = [(1.0, 0.0), (1.0, 1.0), (-0.5, 2.0), (2.0, 0.0), (0.0, 0.5), (1.5, -1.0)];
    let mut case = 0usize;
    for &m in &SIZES {
        for &k in &SIZES {
            for &n in &SIZES {
                for la in LAYOUTS {
                    for lb in LAYOUTS {
                        for lc in LAYOUTS {
                            case += 1;
                            // Every size triple and every layout triple, but not all combinations.
                            if !(case.is_multiple_of(7) || m <= 1 || k <= 1 || n <= 1) {
                                continue;
                            }
                            let (alpha, beta) = ab[case % ab.len()];
                            check_case(f, &mut rng, m, k, n, la, lb, lc, alpha, beta);
                        }
                    }
                }
            }
        }
    }
}

/// Shapes that cross the cache blocks (k > KC, m > MC, n > NC for some kernels) and the small-path bound.
pub const BIG_SHAPES: [(usize, usize, usize); 6] =
    [(150, 300, 70), (97, 515, 33), (13, 5, 4100), (301, 17, 29), (64, 784, 48), (100, 100, 100)];

pub fn big<T: TestFloat>(f: GemmFn<T>, seed: u64) {
    let mut rng = Rng(seed);
    for (idx, &(m, k, n)) in BIG_SHAPES.iter().enumerate() {
        for (l, (la, lb, lc)) in [
            (Layout::RowMajor, Layout::RowMajor, Layout::RowMajor),
            (Layout::ColMajor, Layout::RowMajor, Layout::RowMajor),
            (Layout::RowMajor, Layout::ColMajor, Layout::RowMajor),
            (Layout::Strided, Layout::Strided, Layout::ColMajor),
        ]
        .into_iter()
        .enumerate()
        {
            let (alpha, beta) = if (idx + l) % 2 == 0 { (1.0, 0.0) } else { (0.75, -1.25) };
            check_case(f, &mut rng, m, k, n, la, lb, lc, alpha, beta);
        }
    }
}
