//! The safe entry behind every public GEMM function: length and overlap checks (each panic names the
//! operand), the `alpha == 0` / `k == 0` scaling, then the raw driver.

use super::{driver, GemmScalar};

/// Largest offset (in elements) touched by a strided array with these `(len, stride)` dims, plus one;
/// 0 if any dim is empty. Panics on overflow.
#[track_caller]
pub(super) fn extent(op: &str, dims: &[(usize, usize)]) -> usize {
    if dims.iter().any(|&(len, _)| len == 0) {
        return 0;
    }
    let mut last = 0usize;
    for &(len, stride) in dims {
        last = (len - 1).checked_mul(stride).and_then(|o| o.checked_add(last)).unwrap_or_else(|| overflow_panic(op));
    }
    last + 1
}

#[cold]
#[inline(never)]
#[track_caller]
fn overflow_panic(op: &str) -> ! {
    panic!("gemm: the strides of {op} overflow usize")
}

#[cold]
#[inline(never)]
#[track_caller]
pub(super) fn short_panic(op: &str, need: usize, have: usize, dims: &[(usize, usize)]) -> ! {
    let d: Vec<String> = dims.iter().map(|(l, s)| format!("{l}@{s}")).collect();
    panic!("gemm: slice for {op} is too short: dims (len@stride) [{}] need {need} elements, got {have}", d.join(", "))
}

/// Panics unless the strided dims `(len, stride)` map distinct indices to distinct offsets, using the
/// sufficient test "sorted by stride, each stride is at least the extent of the smaller dims".
#[track_caller]
pub(super) fn assert_no_overlap(op: &str, dims: &[(usize, usize); 3]) {
    // Allocation-free (this runs on every call, including 16x16x16 ones).
    let mut d = *dims;
    d.sort_unstable_by_key(|&(_, stride)| stride);
    let mut ext = 1usize;
    for &(len, stride) in d.iter().filter(|&&(len, _)| len > 1) {
        if stride < ext {
            overlap_panic(op, dims);
        }
        ext = (len - 1).checked_mul(stride).and_then(|o| o.checked_add(ext)).unwrap_or_else(|| overflow_panic(op));
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn overlap_panic(op: &str, dims: &[(usize, usize)]) -> ! {
    let d: Vec<String> = dims.iter().map(|(l, s)| format!("{l}@{s}")).collect();
    panic!(
        "gemm: the strides of {op} make elements overlap (dims len@stride [{}]); C must not alias itself",
        d.join(", ")
    )
}

/// Where a product may run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Threads {
    /// On the current rayon pool, above the size thresholds.
    Pool,
    /// On the calling thread.
    Caller,
}

/// The checked entry behind every public function.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub(super) fn gemm_batched_impl<T: GemmScalar>(
    threads: Threads,
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: &[T],
    bsa: usize,
    rsa: usize,
    csa: usize,
    b: &[T],
    bsb: usize,
    rsb: usize,
    csb: usize,
    beta: T,
    c: &mut [T],
    bsc: usize,
    rsc: usize,
    csc: usize,
) {
    // Only the operands that will be read need to be in bounds: A and B are read only if the product is
    // computed at all.
    let compute = m > 0 && n > 0 && k > 0 && alpha != T::ZERO;
    let dims_c = [(batch, bsc), (m, rsc), (n, csc)];
    let need_c = extent("C", &dims_c);
    if c.len() < need_c {
        short_panic("C", need_c, c.len(), &dims_c);
    }
    assert_no_overlap("C", &dims_c);
    if compute {
        let dims_a = [(batch, bsa), (m, rsa), (k, csa)];
        let need_a = extent("A", &dims_a);
        if a.len() < need_a {
            short_panic("A", need_a, a.len(), &dims_a);
        }
        let dims_b = [(batch, bsb), (k, rsb), (n, csb)];
        let need_b = extent("B", &dims_b);
        if b.len() < need_b {
            short_panic("B", need_b, b.len(), &dims_b);
        }
    }
    if need_c == 0 {
        return;
    }
    if !compute {
        for l in 0..batch {
            for i in 0..m {
                for j in 0..n {
                    let idx = l * bsc + i * rsc + j * csc;
                    c[idx] = if beta == T::ZERO { T::ZERO } else { beta * c[idx] };
                }
            }
        }
        return;
    }
    let base = driver::Problem {
        m,
        k,
        n,
        alpha,
        a: a.as_ptr(),
        rsa,
        csa,
        b: b.as_ptr(),
        rsb,
        csb,
        beta,
        c: driver::SendPtr(c.as_mut_ptr()),
        rsc,
        csc,
    };
    // SAFETY: the bounds of all batch members were checked above against the slices (A and B shared
    // borrows, C an exclusive borrow, so C is not aliased by A or B), C's dims do not overlap, and
    // m, n, k > 0.
    unsafe { driver::gemm_batched_raw(batch, &base, bsa, bsb, bsc, threads == Threads::Pool) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extent_and_overlap_checks() {
        assert_eq!(extent("A", &[(2, 3), (3, 1)]), 6);
        assert_eq!(extent("A", &[(0, 3), (3, 1)]), 0);
        assert_no_overlap("C", &[(1, 0), (3, 4), (4, 1)]);
        assert_no_overlap("C", &[(2, 12), (3, 1), (4, 3)]);
        assert!(std::panic::catch_unwind(|| assert_no_overlap("C", &[(1, 0), (3, 2), (4, 1)])).is_err());
        assert!(std::panic::catch_unwind(|| assert_no_overlap("C", &[(1, 0), (2, 0), (3, 1)])).is_err());
    }
}
