//! Typed errors for files and checkpoints: every failure names the file and the cause. Reading never panics
//! on bad bytes; it returns one of these.

use super::LoadReport;
use std::fmt;
use std::path::PathBuf;

/// Why saving or loading a checkpoint failed.
#[derive(Debug)]
pub enum CheckpointError {
    /// The operating system refused (open, write, fsync, rename); `op` says which step.
    Io {
        /// The file involved.
        path: PathBuf,
        /// The step that failed (`"create temporary file"`, `"write"`, `"rename"`, ...).
        op: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The bytes are not a valid safetensors file (bad header length, JSON, offsets, sizes).
    Format {
        /// The file involved (`<memory>` for byte buffers).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A tensor has a dtype this library does not hold (only F32, F64, I64 and BOOL are supported).
    UnsupportedDtype {
        /// The file involved.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// The dtype in the file.
        dtype: String,
    },
    /// A metadata entry is missing or malformed (`tensorgrad.epoch`, optimizer scalars, ...), or the tensors
    /// to save are invalid (duplicate names).
    Metadata {
        /// The file involved.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A strict load found missing or unexpected keys, or shape or dtype mismatches: all of them are listed.
    StateDictMismatch(LoadReport),
}

impl CheckpointError {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: std::io::Error) -> CheckpointError {
        CheckpointError::Io { path: path.into(), op, source }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> CheckpointError {
        CheckpointError::Format { path: path.into(), message: message.into() }
    }

    pub(crate) fn metadata(path: impl Into<PathBuf>, key: &str, message: impl Into<String>) -> CheckpointError {
        CheckpointError::Metadata { path: path.into(), key: key.to_string(), message: message.into() }
    }
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointError::Io { path, op, source } => write!(f, "{}: {op} failed: {source}", path.display()),
            CheckpointError::Format { path, message } => {
                write!(f, "{}: not a valid safetensors file: {message}", path.display())
            }
            CheckpointError::UnsupportedDtype { path, name, dtype } => {
                write!(f, "{}: tensor {name} has dtype {dtype}; supported are F32, F64, I64 and BOOL", path.display())
            }
            CheckpointError::Metadata { path, key, message } => {
                write!(f, "{}: metadata {key}: {message}", path.display())
            }
            CheckpointError::StateDictMismatch(report) => write!(f, "error loading state dict: {report}"),
        }
    }
}

impl std::error::Error for CheckpointError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CheckpointError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
