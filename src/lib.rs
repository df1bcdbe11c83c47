//! tensorgrad (skeleton).
