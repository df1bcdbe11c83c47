//! Checkpoints: state dicts in the safetensors format, written atomically, loaded strictly or not.
//!
//! - [`save_state_dict`] / [`load_state_dict`]: named tensors (f32, f64, i64, bool) plus string metadata,
//!   byte-compatible with `safetensors.torch.save_file` / `load_file`.
//! - [`load_into`]: copies a loaded state into a model's tensors; strict mode reports every missing key,
//!   unexpected key, shape and dtype mismatch in one error.
//! - [`Checkpoint`]: model + optimizer state + epoch, step and RNG seed in one file.
//! - [`atomic_write`]: temporary file, fsync, rename, fsync of the directory; a crash or a full disk midway
//!   leaves the previous file intact.
//!
//! Nothing here panics on a bad file: errors are [`CheckpointError`] values naming the file and the cause.
//!
//! ```
//! use std::collections::HashMap;
//! use tensorgrad::io::{load_into, load_state_dict, save_state_dict};
//! use tensorgrad::Tensor;
//!
//! let path = std::env::temp_dir().join(format!("tensorgrad-doc-{}.safetensors", std::process::id()));
//! let w = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]);
//! save_state_dict(&path, &[("weight".to_string(), w)], &HashMap::new()).unwrap();
//!
//! let (loaded, _meta) = load_state_dict(&path).unwrap();
//! let model = vec![("weight".to_string(), Tensor::zeros(&[3]))];
//! let report = load_into(&model, &loaded, true).unwrap();
//! assert_eq!(model[0].1.to_vec::<f32>(), vec![1.0, 2.0, 3.0]);
//! assert!(report.is_clean());
//! std::fs::remove_file(&path).unwrap();
//! ```

mod atomic;
mod checkpoint;
mod error;
mod safetensors;

pub use self::safetensors::{
    load_from_bytes, load_state_dict, save_state_dict, save_to_writer, serialize_state_dict, NamedTensors,
};
pub use atomic::atomic_write;
pub use checkpoint::{load_into, Checkpoint, LoadReport};
pub use error::CheckpointError;
