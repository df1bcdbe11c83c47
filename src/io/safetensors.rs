//! State dicts in the safetensors format: an 8-byte little-endian header length, a JSON header
//! (`{"name": {"dtype", "shape", "data_offsets"}, "__metadata__": {string: string}}`), then raw little-endian
//! tensor bytes. Parsing and validation are the `safetensors` crate's (bounds, offsets, sizes with checked
//! arithmetic); this file converts between its views and [`Tensor`]s.
//!
//! Supported dtypes: F32, F64, I64, BOOL (what a tensorgrad tensor can hold). Files from
//! `safetensors.torch.save_file(model.state_dict())` load with their PyTorch names.

use super::{atomic_write, CheckpointError};
use crate::tensor::{DType, Tensor};
use safetensors::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

/// Named tensors, in file order (for loading) or caller order (for saving).
pub type NamedTensors = Vec<(String, Tensor)>;

/// Writes `tensors` and string `metadata` to `path` as a safetensors file, atomically (see
/// [`atomic_write`]): if anything fails, a previous file at `path` is untouched.
pub fn save_state_dict(
    path: impl AsRef<Path>,
    tensors: &[(String, Tensor)],
    metadata: &HashMap<String, String>,
) -> Result<(), CheckpointError> {
    let path = path.as_ref();
    let bytes = serialize_state_dict(tensors, metadata).map_err(|e| e.with_path(path))?;
    atomic_write(path, |w| w.write_all(&bytes))
}

/// Writes the safetensors bytes of `tensors` and `metadata` to `w`.
pub fn save_to_writer(
    w: &mut dyn Write,
    tensors: &[(String, Tensor)],
    metadata: &HashMap<String, String>,
) -> Result<(), CheckpointError> {
    let bytes = serialize_state_dict(tensors, metadata)?;
    w.write_all(&bytes).map_err(|e| CheckpointError::io(MEMORY, "write", e))
}

/// The safetensors bytes of `tensors` (any layout; written row-major) and `metadata`. Tensors are stored
/// sorted by dtype alignment, then name, as every safetensors writer does.
///
/// # Errors
/// Duplicate names (`Metadata` error).
pub fn serialize_state_dict(
    tensors: &[(String, Tensor)],
    metadata: &HashMap<String, String>,
) -> Result<Vec<u8>, CheckpointError> {
    let mut seen = HashSet::new();
    for (name, _) in tensors {
        if !seen.insert(name.as_str()) {
            return Err(CheckpointError::metadata(MEMORY, name, "duplicate tensor name"));
        }
    }
    let views: Vec<(String, RawTensor)> = tensors.iter().map(|(n, t)| (n.clone(), RawTensor::from_tensor(t))).collect();
    let info = (!metadata.is_empty()).then(|| metadata.clone());
    safetensors::serialize(views, info).map_err(|e| CheckpointError::format(MEMORY, e.to_string()))
}

/// Reads a safetensors file: its tensors in file order and its string metadata (empty if none).
///
/// # Errors
/// `Io` if the file cannot be read, `Format` for invalid bytes, `UnsupportedDtype` for dtypes other than
/// F32/F64/I64/BOOL. Never panics, whatever the bytes.
pub fn load_state_dict(path: impl AsRef<Path>) -> Result<(NamedTensors, HashMap<String, String>), CheckpointError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| CheckpointError::io(path, "read", e))?;
    load_from_bytes(&bytes).map_err(|e| e.with_path(path))
}

/// [`load_state_dict`] from bytes in memory.
pub fn load_from_bytes(bytes: &[u8]) -> Result<(NamedTensors, HashMap<String, String>), CheckpointError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| CheckpointError::format(MEMORY, e.to_string()))?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| CheckpointError::format(MEMORY, e.to_string()))?;
    let mut out = Vec::with_capacity(st.len());
    for name in header.offset_keys() {
        let view = st.tensor(&name).map_err(|e| CheckpointError::format(MEMORY, e.to_string()))?;
        out.push((name.clone(), tensor_from_view(&name, view.dtype(), view.shape(), view.data())?));
    }
    let metadata = header.metadata().clone().unwrap_or_default().into_iter().collect();
    Ok((out, metadata))
}

/// The placeholder path of in-memory buffers in errors.
const MEMORY: &str = "<memory>";

impl CheckpointError {
    /// Replaces the `<memory>` placeholder with the real file.
    pub(crate) fn with_path(self, path: &Path) -> CheckpointError {
        let p = path.to_path_buf();
        match self {
            CheckpointError::Io { op, source, .. } => CheckpointError::Io { path: p, op, source },
            CheckpointError::Format { message, .. } => CheckpointError::Format { path: p, message },
            CheckpointError::UnsupportedDtype { name, dtype, .. } => {
                CheckpointError::UnsupportedDtype { path: p, name, dtype }
            }
            CheckpointError::Metadata { key, message, .. } => CheckpointError::Metadata { path: p, key, message },
            other => other,
        }
    }
}

/// Decodes one tensor's little-endian bytes (the crate has checked `data.len() == numel * size`).
fn tensor_from_view(name: &str, dtype: Dtype, shape: &[usize], data: &[u8]) -> Result<Tensor, CheckpointError> {
    // Zero-size dims make numel 0 whatever the others are; the strides of such a shape must still fit.
    if shape.iter().filter(|&&d| d != 0).try_fold(1usize, |a, &d| a.checked_mul(d)).is_none() {
        return Err(CheckpointError::format(MEMORY, format!("tensor {name}: shape {shape:?} overflows")));
    }
    fn le<const N: usize, T>(data: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
        data.chunks_exact(N).map(|c| f(c.try_into().expect("chunks_exact yields N bytes"))).collect()
    }
    Ok(match dtype {
        Dtype::F32 => Tensor::from_vec(le(data, f32::from_le_bytes), shape),
        Dtype::F64 => Tensor::from_vec(le(data, f64::from_le_bytes), shape),
        Dtype::I64 => Tensor::from_vec(le(data, i64::from_le_bytes), shape),
        Dtype::BOOL => Tensor::from_vec(data.iter().map(|&b| b != 0).collect::<Vec<bool>>(), shape),
        other => {
            return Err(CheckpointError::UnsupportedDtype {
                path: MEMORY.into(),
                name: name.to_string(),
                dtype: format!("{other:?}"),
            })
        }
    })
}

/// A tensor's bytes, ready for the `safetensors` serializer.
struct RawTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl RawTensor {
    fn from_tensor(t: &Tensor) -> RawTensor {
        let (dtype, data) = match t.dtype() {
            DType::F32 => (Dtype::F32, t.with_slice::<f32, _>(|s| s.iter().flat_map(|x| x.to_le_bytes()).collect())),
            DType::F64 => (Dtype::F64, t.with_slice::<f64, _>(|s| s.iter().flat_map(|x| x.to_le_bytes()).collect())),
            DType::I64 => (Dtype::I64, t.with_slice::<i64, _>(|s| s.iter().flat_map(|x| x.to_le_bytes()).collect())),
            DType::Bool => (Dtype::BOOL, t.with_slice::<bool, _>(|s| s.iter().map(|&b| b as u8).collect())),
        };
        RawTensor { dtype, shape: t.shape().to_vec(), data }
    }
}

impl View for RawTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}
