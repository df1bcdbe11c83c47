//! Raw-slice CPU kernels for tensorgrad (skeleton; see the kernels issue).
