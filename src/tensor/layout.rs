//! Strided layout: where element `[i0, i1, ..]` of a tensor lives in its storage,
//! `offset + sum_k i_k * strides[k]`. Views (reshape, permute, narrow, expand, ...) only make new layouts.

use smallvec::SmallVec;

/// Dimension sizes (or strides); inline up to rank 4, so most tensors allocate nothing for them.
pub type Dims = SmallVec<[usize; 4]>;

/// Shape, strides (in elements; 0 means a broadcast dimension) and offset into the storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) shape: Dims,
    pub(crate) strides: Dims,
    pub(crate) offset: usize,
}

impl Layout {
    /// The row-major contiguous layout of `shape`.
    pub(crate) fn contiguous(shape: &[usize]) -> Layout {
        Layout { shape: Dims::from_slice(shape), strides: contiguous_strides(shape), offset: 0 }
    }

    pub(crate) fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Row-major contiguous (size-1 dimensions may have any stride).
    pub(crate) fn is_contiguous(&self) -> bool {
        let mut expected = 1;
        for (&d, &s) in self.shape.iter().zip(&self.strides).rev() {
            if d != 1 && s != expected {
                return false;
            }
            expected *= d;
        }
        true
    }

    /// The range of storage indices touched when the layout is contiguous.
    pub(crate) fn contiguous_range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.numel()
    }

    /// Strides for a view of this layout with a new shape, if one exists without copying (PyTorch's `view` rule:
    /// each group of merged/split dimensions must be contiguous among themselves).
    pub(crate) fn view_strides(&self, new_shape: &[usize]) -> Option<Dims> {
        if self.is_contiguous() {
            return Some(contiguous_strides(new_shape));
        }
        // Drop size-1 dims, then walk both shapes in chunks of equal element count.
        let old: Vec<(usize, usize)> =
            self.shape.iter().zip(&self.strides).filter(|(&d, _)| d != 1).map(|(&d, &s)| (d, s)).collect();
        let mut new_strides: Dims = SmallVec::from_elem(0, new_shape.len());
        let (mut oi, mut ni) = (0, 0);
        while ni < new_shape.len() {
            if new_shape[ni] == 1 {
                new_strides[ni] = 1;
                ni += 1;
                continue;
            }
            if oi >= old.len() {
                return None;
            }
            // Take old dims [oi, oj) forming one contiguous chunk whose size matches new dims [ni, nj).
            let mut old_count = old[oi].0;
            let mut oj = oi + 1;
            let mut new_count = new_shape[ni];
            let mut nj = ni + 1;
            while old_count != new_count {
                if old_count < new_count {
                    if oj >= old.len() || old[oj - 1].1 != old[oj].0 * old[oj].1 {
                        return None;
                    }
                    old_count *= old[oj].0;
                    oj += 1;
                } else {
                    if nj >= new_shape.len() {
                        return None;
                    }
                    new_count *= new_shape[nj];
                    nj += 1;
                }
            }
            // The chunk must be internally contiguous.
            for k in oi + 1..oj {
                if old[k - 1].1 != old[k].0 * old[k].1 {
                    return None;
                }
            }
            let mut stride = old[oj - 1].1;
            for k in (ni..nj).rev() {
                new_strides[k] = stride;
                stride *= new_shape[k];
            }
            oi = oj;
            ni = nj;
        }
        if oi != old.len() {
            return None;
        }
        Some(new_strides)
    }
}

/// Row-major strides of `shape`.
pub(crate) fn contiguous_strides(shape: &[usize]) -> Dims {
    // Start from a copy of `shape` (a plain memcpy, cheaper than SmallVec's generic fill) and overwrite it.
    let mut strides = Dims::from_slice(shape);
    let mut s = 1;
    for (stride, &d) in strides.iter_mut().zip(shape).rev() {
        *stride = s;
        s *= d.max(1);
    }
    strides
}

/// NumPy broadcasting of two shapes, or `None` if incompatible.
pub(crate) fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Dims> {
    let n = a.len().max(b.len());
    let mut out: Dims = SmallVec::from_elem(0, n);
    for k in 0..n {
        let da = if k + a.len() >= n { a[k + a.len() - n] } else { 1 };
        let db = if k + b.len() >= n { b[k + b.len() - n] } else { 1 };
        out[k] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// Strides that read `layout` as if it had shape `target` (broadcast dims get stride 0).
/// The caller has checked that `layout.shape` broadcasts to `target`.
pub(crate) fn broadcast_strides(layout: &Layout, target: &[usize]) -> Dims {
    let n = target.len();
    let r = layout.shape.len();
    let mut strides: Dims = SmallVec::from_elem(0, n);
    for k in 0..r {
        let t = n - r + k;
        strides[t] = if layout.shape[k] == 1 && target[t] != 1 { 0 } else { layout.strides[k] };
    }
    strides
}

/// Calls `f(i, off)` for every element in row-major order, with `off` the storage index under `strides`
/// starting at `offset`. The innermost dimension runs as a tight loop.
#[inline]
pub(crate) fn for_each_offset(shape: &[usize], strides: &[usize], offset: usize, mut f: impl FnMut(usize)) {
    let numel: usize = shape.iter().product();
    if numel == 0 {
        return;
    }
    let rank = shape.len();
    if rank == 0 {
        f(offset);
        return;
    }
    let inner = shape[rank - 1];
    let inner_stride = strides[rank - 1];
    let mut index: Dims = SmallVec::from_elem(0, rank);
    let mut base = offset;
    loop {
        let mut off = base;
        for _ in 0..inner {
            f(off);
            off += inner_stride;
        }
        // Advance the outer index like an odometer.
        let mut k = rank - 1;
        loop {
            if k == 0 {
                return;
            }
            k -= 1;
            index[k] += 1;
            base += strides[k];
            if index[k] < shape[k] {
                break;
            }
            base -= strides[k] * shape[k];
            index[k] = 0;
        }
    }
}

/// Like [`for_each_offset`] for two operands walked together over one shape.
#[inline]
pub(crate) fn for_each_offset2(
    shape: &[usize],
    (sa, oa): (&[usize], usize),
    (sb, ob): (&[usize], usize),
    mut f: impl FnMut(usize, usize),
) {
    let numel: usize = shape.iter().product();
    if numel == 0 {
        return;
    }
    let rank = shape.len();
    if rank == 0 {
        f(oa, ob);
        return;
    }
    let inner = shape[rank - 1];
    let (ia, ib) = (sa[rank - 1], sb[rank - 1]);
    let mut index: Dims = SmallVec::from_elem(0, rank);
    let (mut base_a, mut base_b) = (oa, ob);
    loop {
        let (mut a, mut b) = (base_a, base_b);
        for _ in 0..inner {
            f(a, b);
            a += ia;
            b += ib;
        }
        let mut k = rank - 1;
        loop {
            if k == 0 {
                return;
            }
            k -= 1;
            index[k] += 1;
            base_a += sa[k];
            base_b += sb[k];
            if index[k] < shape[k] {
                break;
            }
            base_a -= sa[k] * shape[k];
            base_b -= sb[k] * shape[k];
            index[k] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_of_transposed_split_and_merge() {
        // [2,3,4] permuted to [4,2,3]: strides [1,12,4]; merging the last two dims is a valid view.
        let l = Layout { shape: Dims::from_slice(&[4, 2, 3]), strides: Dims::from_slice(&[1, 12, 4]), offset: 0 };
        assert_eq!(l.view_strides(&[4, 6]).unwrap().as_slice(), &[1, 4]);
        assert_eq!(l.view_strides(&[2, 2, 2, 3]).unwrap().as_slice(), &[2, 1, 12, 4]);
        assert!(l.view_strides(&[24]).is_none());
        assert!(l.view_strides(&[8, 3]).is_none());
    }

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast_shapes(&[3, 1, 5], &[4, 5]).unwrap().as_slice(), &[3, 4, 5]);
        assert!(broadcast_shapes(&[3], &[4]).is_none());
        assert_eq!(broadcast_shapes(&[], &[2]).unwrap().as_slice(), &[2]);
    }

    #[test]
    fn offsets_walk_row_major() {
        let mut seen = vec![];
        for_each_offset(&[2, 3], &[1, 2], 1, |o| seen.push(o));
        assert_eq!(seen, vec![1, 3, 5, 2, 4, 6]);
    }
}
