//! Errors from reading datasets: the world returns `Result` (ARCHITECTURE.md section 4).
//!
//! Everything that depends on a file's contents or on the environment (a missing directory, a truncated or
//! hostile IDX file, a text that is not UTF-8) is a [`DataError`] that names the file and the problem.
//! Misuse of the API by the calling code (an out-of-range index, a batch size of 0) panics instead.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// `Result` with a [`DataError`].
pub type Result<T> = std::result::Result<T, DataError>;

/// What is wrong with an IDX file (see [`crate::data::idx`] for the format).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdxProblem {
    /// The first two bytes are not `0x00 0x00`: not an IDX file.
    BadMagic {
        /// The first (up to) four bytes of the decoded file.
        found: Vec<u8>,
    },
    /// The type byte (third byte) is not one of the IDX type codes this reader supports.
    UnsupportedType {
        /// The type code found.
        code: u8,
    },
    /// The header says the array has no dimensions (the fourth byte is 0).
    NoDimensions,
    /// The file ends inside the header (magic number or dimension sizes).
    TruncatedHeader {
        /// Bytes the header needs.
        needed: usize,
        /// Bytes that were there.
        found: usize,
    },
    /// The product of the dimensions (times the element size) does not fit in `usize`.
    DimsOverflow {
        /// The dimensions from the header.
        dims: Vec<usize>,
    },
    /// The file has fewer payload bytes than the dimensions require.
    Truncated {
        /// The dimensions from the header.
        dims: Vec<usize>,
        /// Payload bytes the dimensions require.
        expected: usize,
        /// Payload bytes found.
        found: usize,
    },
    /// The file has bytes after the payload the dimensions describe.
    TrailingBytes {
        /// The dimensions from the header.
        dims: Vec<usize>,
        /// Number of extra bytes after the payload (a lower bound if `at_least`).
        extra: u64,
        /// True when counting stopped early (the count is a lower bound).
        at_least: bool,
    },
}

impl fmt::Display for IdxProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdxProblem::BadMagic { found } => {
                write!(f, "wrong magic number {found:02x?}: an IDX file starts with 00 00 <type> <ndims>")
            }
            IdxProblem::UnsupportedType { code } => write!(
                f,
                "unsupported element type code 0x{code:02x} (supported: 0x08 u8, 0x09 i8, 0x0b i16, \
                 0x0c i32, 0x0d f32, 0x0e f64)"
            ),
            IdxProblem::NoDimensions => write!(f, "the header declares 0 dimensions"),
            IdxProblem::TruncatedHeader { needed, found } => {
                write!(f, "truncated header: it needs {needed} bytes, the file has {found}")
            }
            IdxProblem::DimsOverflow { dims } => {
                write!(f, "inconsistent dimensions {dims:?}: their size overflows")
            }
            IdxProblem::Truncated { dims, expected, found } => {
                write!(f, "truncated file: dimensions {dims:?} need {expected} payload bytes, found {found}")
            }
            IdxProblem::TrailingBytes { dims, extra, at_least } => write!(
                f,
                "{}{extra} trailing bytes after the {dims:?} payload (dimensions inconsistent with the file size)",
                if *at_least { "at least " } else { "" }
            ),
        }
    }
}

/// An error reading or checking a dataset. Every variant that concerns a file carries its path.
#[derive(Debug)]
#[non_exhaustive]
pub enum DataError {
    /// Opening, reading or writing the file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file starts like gzip (`1f 8b`) but does not decompress (bad header, corrupt stream, CRC error).
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decompressor's error.
        source: io::Error,
    },
    /// The (decompressed) file is not a valid IDX file.
    Idx {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: IdxProblem,
    },
    /// The file parses but its contents do not fit the dataset (e.g. labels out of range, image and label
    /// counts differ, a text that is not UTF-8 or too short).
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, as a sentence fragment.
        message: String,
    },
    /// A character that is not in the vocabulary (encoding a prompt, for example).
    UnknownChar {
        /// The character.
        ch: char,
        /// Its position (in characters) in the encoded text.
        position: usize,
    },
}

impl DataError {
    /// The file the error concerns, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            DataError::Io { path, .. }
            | DataError::Gzip { path, .. }
            | DataError::Idx { path, .. }
            | DataError::Invalid { path, .. } => Some(path),
            DataError::UnknownChar { .. } => None,
        }
    }

    /// The IDX problem, if this is an [`DataError::Idx`] error.
    pub fn idx_problem(&self) -> Option<&IdxProblem> {
        match self {
            DataError::Idx { problem, .. } => Some(problem),
            _ => None,
        }
    }

    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        DataError::Io { path: path.to_path_buf(), source }
    }

    pub(crate) fn idx(path: &Path, problem: IdxProblem) -> Self {
        DataError::Idx { path: path.to_path_buf(), problem }
    }

    pub(crate) fn invalid(path: &Path, message: impl Into<String>) -> Self {
        DataError::Invalid { path: path.to_path_buf(), message: message.into() }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            DataError::Gzip { path, source } => {
                write!(f, "{}: corrupt gzip data: {source}", path.display())
            }
            DataError::Idx { path, problem } => write!(f, "{}: {problem}", path.display()),
            DataError::Invalid { path, message } => write!(f, "{}: {message}", path.display()),
            DataError::UnknownChar { ch, position } => {
                write!(f, "character {ch:?} at position {position} is not in the vocabulary")
            }
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DataError::Io { source, .. } | DataError::Gzip { source, .. } => Some(source),
            _ => None,
        }
    }
}
