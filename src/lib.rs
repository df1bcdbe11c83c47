//! tensorgrad (skeleton).

pub mod data;
