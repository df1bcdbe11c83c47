//! Loading a state dict into a model (strict or not), and [`Checkpoint`]: model state, optimizer state and
//! training progress in one safetensors file.
//!
//! File layout of a checkpoint:
//! ```text
//! tensors    <model names>                 model parameters and buffers, PyTorch names (`0.weight`, ...)
//!            optimizer.state.<i>.<buffer>  optimizer state (see optim::StateDict)
//! metadata   format = "pt"                 what Hugging Face tools expect of PyTorch-named files
//!            tensorgrad.epoch / .step / .seed
//!            optimizer.<scalar name>       step counts and group hyperparameters, as decimal strings
//!            <anything else>               the caller's extra metadata, kept as is
//! ```
//! Floats in metadata are written with Rust's shortest round-trip formatting, so they load back bit-exact.

use super::{load_state_dict, save_state_dict, save_to_writer, CheckpointError, NamedTensors};
use crate::optim::StateDict;
use crate::tensor::{DType, Tensor};
use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::Path;

/// What [`load_into`] did: the keys it copied and every problem it found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    /// Keys copied into the model.
    pub loaded: Vec<String>,
    /// Model keys absent from the loaded state.
    pub missing: Vec<String>,
    /// Loaded keys the model does not have.
    pub unexpected: Vec<String>,
    /// `(key, model shape, loaded shape)`.
    pub shape_mismatches: Vec<(String, Vec<usize>, Vec<usize>)>,
    /// `(key, model dtype, loaded dtype)`.
    pub dtype_mismatches: Vec<(String, DType, DType)>,
}

impl LoadReport {
    /// Whether everything matched (nothing missing, unexpected or mismatched).
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty()
            && self.unexpected.is_empty()
            && self.shape_mismatches.is_empty()
            && self.dtype_mismatches.is_empty()
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_clean() {
            return write!(f, "all {} keys matched", self.loaded.len());
        }
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!("missing keys: {}", self.missing.join(", ")));
        }
        if !self.unexpected.is_empty() {
            parts.push(format!("unexpected keys: {}", self.unexpected.join(", ")));
        }
        for (k, m, l) in &self.shape_mismatches {
            parts.push(format!("size mismatch for {k}: checkpoint has shape {l:?}, model has {m:?}"));
        }
        for (k, m, l) in &self.dtype_mismatches {
            parts.push(format!("dtype mismatch for {k}: checkpoint has {l}, model has {m}"));
        }
        f.write_str(&parts.join("; "))
    }
}

/// Copies `loaded` values into the model's tensors (`model_state`, e.g. `named_parameters()` plus
/// `named_buffers()`) in place, matching by name.
///
/// Strict: every model key must be present with the same shape and dtype and no key may be left over;
/// otherwise nothing is copied and the error lists every problem at once. Non-strict: copies each key that
/// matches in name, shape and dtype, and reports the rest.
pub fn load_into(
    model_state: &[(String, Tensor)],
    loaded: &[(String, Tensor)],
    strict: bool,
) -> Result<LoadReport, CheckpointError> {
    let by_name: HashMap<&str, &Tensor> = loaded.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let model_names: std::collections::HashSet<&str> = model_state.iter().map(|(n, _)| n.as_str()).collect();
    let mut report = LoadReport::default();
    let mut copies = Vec::new();
    for (name, dst) in model_state {
        match by_name.get(name.as_str()) {
            None => report.missing.push(name.clone()),
            Some(src) if src.shape() != dst.shape() => {
                report.shape_mismatches.push((name.clone(), dst.shape().to_vec(), src.shape().to_vec()))
            }
            Some(src) if src.dtype() != dst.dtype() => {
                report.dtype_mismatches.push((name.clone(), dst.dtype(), src.dtype()))
            }
            Some(src) => copies.push((name, dst, *src)),
        }
    }
    report.unexpected =
        loaded.iter().filter(|(n, _)| !model_names.contains(n.as_str())).map(|(n, _)| n.clone()).collect();
    if strict && !report.is_clean() {
        return Err(CheckpointError::StateDictMismatch(report));
    }
    crate::no_grad(|| {
        for (name, dst, src) in copies {
            dst.copy_(src);
            report.loaded.push(name.clone());
        }
    });
    Ok(report)
}

/// Everything needed to resume training: model state, optimizer state, progress counters, the RNG seed,
/// and free-form metadata.
#[derive(Clone, Debug, Default)]
pub struct Checkpoint {
    /// Model parameters and buffers with PyTorch-style names.
    pub model: NamedTensors,
    /// Optimizer state, if saved.
    pub optimizer: Option<StateDict>,
    /// Completed epochs.
    pub epoch: u64,
    /// Completed optimizer steps.
    pub step: u64,
    /// The seed given to `manual_seed` (to reproduce the data order on resume).
    pub seed: u64,
    /// Extra string metadata, kept as is.
    pub extra: HashMap<String, String>,
}

const OPT: &str = "optimizer.";
const KEYS: [&str; 3] = ["tensorgrad.epoch", "tensorgrad.step", "tensorgrad.seed"];

impl Checkpoint {
    /// The flat tensors and metadata this checkpoint is stored as (see the module docs).
    ///
    /// # Errors
    /// A model key starting with `optimizer.` (it would collide with the optimizer state).
    pub fn to_parts(&self) -> Result<(NamedTensors, HashMap<String, String>), CheckpointError> {
        let mut tensors = self.model.clone();
        if let Some((k, _)) = tensors.iter().find(|(k, _)| k.starts_with(OPT)) {
            return Err(CheckpointError::metadata("<memory>", k, "model keys may not start with `optimizer.`"));
        }
        let mut meta = self.extra.clone();
        meta.insert("format".into(), "pt".into());
        for (k, v) in KEYS.iter().zip([self.epoch, self.step, self.seed]) {
            meta.insert(k.to_string(), v.to_string());
        }
        if let Some(sd) = &self.optimizer {
            tensors.extend(sd.tensors.iter().map(|(k, t)| (format!("{OPT}{k}"), t.clone())));
            meta.extend(sd.scalars.iter().map(|(k, v)| (format!("{OPT}{k}"), v.to_string())));
        }
        Ok((tensors, meta))
    }

    /// Rebuilds a checkpoint from the stored tensors and metadata; `path` names the source in errors.
    pub fn from_parts(
        tensors: NamedTensors,
        mut meta: HashMap<String, String>,
        path: &Path,
    ) -> Result<Checkpoint, CheckpointError> {
        let mut counters = [0u64; 3];
        for (c, key) in counters.iter_mut().zip(KEYS) {
            let v = meta.remove(key).ok_or_else(|| CheckpointError::metadata(path, key, "missing"))?;
            *c = v.parse().map_err(|_| CheckpointError::metadata(path, key, format!("not an integer: {v:?}")))?;
        }
        meta.remove("format");
        let mut sd = StateDict::default();
        let mut model = Vec::new();
        for (k, t) in tensors {
            match k.strip_prefix(OPT) {
                Some(rest) => sd.tensors.push((rest.to_string(), t)),
                None => model.push((k, t)),
            }
        }
        let mut scalar_keys: Vec<String> = meta.keys().filter(|k| k.starts_with(OPT)).cloned().collect();
        scalar_keys.sort();
        for k in scalar_keys {
            let v = meta.remove(&k).unwrap_or_default();
            let x: f64 = v.parse().map_err(|_| CheckpointError::metadata(path, &k, format!("not a number: {v:?}")))?;
            sd.scalars.push((k[OPT.len()..].to_string(), x));
        }
        let optimizer = (!sd.tensors.is_empty() || !sd.scalars.is_empty()).then_some(sd);
        Ok(Checkpoint { model, optimizer, epoch: counters[0], step: counters[1], seed: counters[2], extra: meta })
    }

    /// Saves atomically to `path` (the previous file survives any failure).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), CheckpointError> {
        let path = path.as_ref();
        let (tensors, meta) = self.to_parts().map_err(|e| e.with_path(path))?;
        save_state_dict(path, &tensors, &meta)
    }

    /// Writes the checkpoint's bytes to `w` (for custom destinations; no atomicity).
    pub fn save_to_writer(&self, w: &mut dyn Write) -> Result<(), CheckpointError> {
        let (tensors, meta) = self.to_parts()?;
        save_to_writer(w, &tensors, &meta)
    }

    /// Loads a checkpoint saved by [`save`](Self::save).
    ///
    /// # Errors
    /// Everything [`load_state_dict`] reports, and `Metadata` if the progress counters or optimizer scalars are
    /// missing or malformed.
    pub fn load(path: impl AsRef<Path>) -> Result<Checkpoint, CheckpointError> {
        let path = path.as_ref();
        let (tensors, meta) = load_state_dict(path)?;
        Checkpoint::from_parts(tensors, meta, path)
    }
}
