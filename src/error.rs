//! Programmer errors (shape, rank, dtype mismatches) panic through one cold helper, so the panic points at the
//! user's line (`#[track_caller]` all the way up) and names the op and the shapes involved.

/// Panics with `msg`. Cold and out of line so the happy paths stay small.
#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn panic_msg(msg: String) -> ! {
    panic!("{msg}")
}

/// Panics with `"{op}: {what}: lhs {a:?} vs rhs {b:?}"`.
#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn shape_mismatch(op: &str, what: &str, a: &[usize], b: &[usize]) -> ! {
    panic!("{op}: {what}: lhs {a:?} vs rhs {b:?}")
}
