//! The IDX file format (MNIST, Fashion-MNIST): a reader that never panics and a u8 writer.
//!
//! # Format
//!
//! An IDX file is a big-endian header followed by the elements of an n-dimensional array in row-major order:
//!
//! ```text
//! offset  bytes      meaning
//! 0       2          0x00 0x00
//! 2       1          element type: 0x08 u8, 0x09 i8, 0x0b i16, 0x0c i32, 0x0d f32, 0x0e f64
//! 3       1          number of dimensions n (1..=255)
//! 4       4 * n      the size of each dimension, u32 big-endian, outermost first
//! 4 + 4n  ...        product(dims) elements, each big-endian
//! ```
//!
//! `train-images-idx3-ubyte` is `00 00 08 03`, then `60000, 28, 28`, then 47,040,000 pixels;
//! `train-labels-idx1-ubyte` is `00 00 08 01`, `60000`, then one byte per label. The files are usually
//! distributed gzip-compressed (`*.gz`); [`read_idx`] and [`decode_idx`] detect gzip by its magic bytes
//! `1f 8b` and decompress on the fly.
//!
//! # Hostile input
//!
//! Every malformed input is a [`DataError`] naming the file and the [`IdxProblem`]: wrong magic, unknown type,
//! zero dimensions, truncated header, dimensions whose product overflows, a payload shorter or longer than the
//! dimensions say, or a corrupt gzip stream (including a CRC mismatch). Memory grows only with bytes actually
//! present (or actually produced by the decompressor), never with what a header claims, so a 4-byte header
//! announcing 2^64 elements costs nothing.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use super::error::{DataError, IdxProblem, Result};

/// Trailing bytes are counted up to this many before the count is reported as a lower bound.
const TRAILING_COUNT_LIMIT: u64 = 1 << 24;

/// Payload bytes are read in chunks of at most this size, so allocation follows the data actually present.
const READ_CHUNK: usize = 1 << 20;

/// The element type of an IDX array (the third byte of the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdxType {
    /// Unsigned byte, code `0x08`.
    U8,
    /// Signed byte, code `0x09`.
    I8,
    /// Big-endian 16-bit signed integer, code `0x0b`.
    I16,
    /// Big-endian 32-bit signed integer, code `0x0c`.
    I32,
    /// Big-endian IEEE 754 single, code `0x0d`.
    F32,
    /// Big-endian IEEE 754 double, code `0x0e`.
    F64,
}

impl IdxType {
    /// The type's code in the file header.
    pub fn code(self) -> u8 {
        match self {
            IdxType::U8 => 0x08,
            IdxType::I8 => 0x09,
            IdxType::I16 => 0x0b,
            IdxType::I32 => 0x0c,
            IdxType::F32 => 0x0d,
            IdxType::F64 => 0x0e,
        }
    }

    /// The type for a header code, or `None` for an unknown code.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0x08 => IdxType::U8,
            0x09 => IdxType::I8,
            0x0b => IdxType::I16,
            0x0c => IdxType::I32,
            0x0d => IdxType::F32,
            0x0e => IdxType::F64,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            IdxType::U8 | IdxType::I8 => 1,
            IdxType::I16 => 2,
            IdxType::I32 | IdxType::F32 => 4,
            IdxType::F64 => 8,
        }
    }
}

/// The elements of an IDX array, in row-major order, converted to native endianness.
#[derive(Debug, Clone, PartialEq)]
pub enum IdxData {
    /// Type code `0x08`.
    U8(Vec<u8>),
    /// Type code `0x09`.
    I8(Vec<i8>),
    /// Type code `0x0b`.
    I16(Vec<i16>),
    /// Type code `0x0c`.
    I32(Vec<i32>),
    /// Type code `0x0d`.
    F32(Vec<f32>),
    /// Type code `0x0e`.
    F64(Vec<f64>),
}

impl IdxData {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            IdxData::U8(v) => v.len(),
            IdxData::I8(v) => v.len(),
            IdxData::I16(v) => v.len(),
            IdxData::I32(v) => v.len(),
            IdxData::F32(v) => v.len(),
            IdxData::F64(v) => v.len(),
        }
    }

    /// True if there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    pub fn dtype(&self) -> IdxType {
        match self {
            IdxData::U8(_) => IdxType::U8,
            IdxData::I8(_) => IdxType::I8,
            IdxData::I16(_) => IdxType::I16,
            IdxData::I32(_) => IdxType::I32,
            IdxData::F32(_) => IdxType::F32,
            IdxData::F64(_) => IdxType::F64,
        }
    }
}

/// An n-dimensional array read from an IDX file.
///
/// # Shapes
///
/// `data.len() == dims.iter().product()`; element `[i, j, k]` of a 3-d array is
/// `data[(i * dims[1] + j) * dims[2] + k]`.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    /// Dimension sizes, outermost first (e.g. `[60000, 28, 28]`).
    pub dims: Vec<usize>,
    /// The elements, row-major.
    pub data: IdxData,
}

impl IdxArray {
    /// Number of elements (the product of `dims`).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True if the array has no elements (some dimension is 0).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The element type.
    pub fn dtype(&self) -> IdxType {
        self.data.dtype()
    }

    /// The elements if the type is u8.
    pub fn as_u8(&self) -> Option<&[u8]> {
        match &self.data {
            IdxData::U8(v) => Some(v),
            _ => None,
        }
    }

    /// The elements if the type is u8, without copying; `None` for other types.
    pub fn into_u8(self) -> Option<Vec<u8>> {
        match self.data {
            IdxData::U8(v) => Some(v),
            _ => None,
        }
    }
}

/// Reads an IDX file, raw or gzip-compressed (detected by the magic bytes `1f 8b`, whatever the file name).
///
/// # Errors
///
/// [`DataError::Io`] if the file cannot be read, [`DataError::Gzip`] if it looks like gzip but does not
/// decompress, [`DataError::Idx`] if the (decompressed) bytes are not a consistent IDX file. All name `path`.
///
/// # Example
///
/// ```no_run
/// use tensorgrad::data::idx::read_idx;
/// let labels = read_idx("data/fashion-mnist/train-labels-idx1-ubyte.gz")?;
/// assert_eq!(labels.dims, [10_000]);
/// # Ok::<(), tensorgrad::data::DataError>(())
/// ```
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    let bytes = fs::read(path).map_err(|e| DataError::io(path, e))?;
    decode_idx(&bytes, path)
}

/// Decodes an IDX file held in memory, raw or gzip-compressed. `origin` is the name errors report.
///
/// # Errors
///
/// As [`read_idx`], except that there is no I/O.
///
/// # Example
///
/// ```
/// use tensorgrad::data::idx::{decode_idx, encode_idx_u8, IdxData};
/// let bytes = encode_idx_u8(&[2, 3], &[1, 2, 3, 4, 5, 6]);
/// let array = decode_idx(&bytes, "in-memory")?;
/// assert_eq!(array.dims, [2, 3]);
/// assert_eq!(array.data, IdxData::U8(vec![1, 2, 3, 4, 5, 6]));
///
/// let err = decode_idx(&bytes[..14], "cut.idx").unwrap_err();
/// assert!(err.to_string().starts_with("cut.idx: truncated file"));
/// # Ok::<(), tensorgrad::data::DataError>(())
/// ```
pub fn decode_idx(bytes: &[u8], origin: impl AsRef<Path>) -> Result<IdxArray> {
    let origin = origin.as_ref();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut gz = MultiGzDecoder::new(bytes);
        decode_stream(&mut gz, origin, |e| DataError::Gzip { path: origin.to_path_buf(), source: e })
    } else {
        let mut raw = bytes;
        // Reading from a slice cannot fail.
        decode_stream(&mut raw, origin, |e| DataError::io(origin, e))
    }
}

/// Parses an IDX stream: header, payload, then checks that nothing follows.
fn decode_stream<R: Read>(r: &mut R, origin: &Path, stream_err: impl Fn(io::Error) -> DataError) -> Result<IdxArray> {
    let idx_err = |problem| DataError::idx(origin, problem);

    let mut magic = [0u8; 4];
    let got = read_full(r, &mut magic).map_err(&stream_err)?;
    if magic[..got.min(2)].iter().any(|&b| b != 0) {
        return Err(idx_err(IdxProblem::BadMagic { found: magic[..got].to_vec() }));
    }
    if got >= 3 && IdxType::from_code(magic[2]).is_none() {
        return Err(idx_err(IdxProblem::UnsupportedType { code: magic[2] }));
    }
    if got < 4 {
        return Err(idx_err(IdxProblem::TruncatedHeader { needed: 4, found: got }));
    }
    let Some(dtype) = IdxType::from_code(magic[2]) else {
        return Err(idx_err(IdxProblem::UnsupportedType { code: magic[2] }));
    };
    let ndims = usize::from(magic[3]);
    if ndims == 0 {
        return Err(idx_err(IdxProblem::NoDimensions));
    }

    let mut dim_bytes = vec![0u8; 4 * ndims]; // at most 1020 bytes
    let got = read_full(r, &mut dim_bytes).map_err(&stream_err)?;
    if got < dim_bytes.len() {
        return Err(idx_err(IdxProblem::TruncatedHeader { needed: 4 + 4 * ndims, found: 4 + got }));
    }
    let dims: Vec<usize> =
        dim_bytes.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    let expected = dims
        .iter()
        .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| idx_err(IdxProblem::DimsOverflow { dims: dims.clone() }))?;

    // Grow the buffer only as bytes arrive: a header may claim far more than the file holds.
    let mut payload = Vec::new();
    while payload.len() < expected {
        let start = payload.len();
        let want = (expected - start).min(READ_CHUNK);
        payload.resize(start + want, 0);
        let got = read_full(r, &mut payload[start..]).map_err(&stream_err)?;
        payload.truncate(start + got);
        if got < want {
            return Err(idx_err(IdxProblem::Truncated { dims, expected, found: payload.len() }));
        }
    }

    // Read to the end: reports trailing bytes and, for gzip, makes the decoder verify the CRC.
    let mut extra = 0u64;
    let mut sink = [0u8; 8192];
    loop {
        let n = read_some(r, &mut sink).map_err(&stream_err)?;
        if n == 0 {
            break;
        }
        extra += n as u64;
        if extra >= TRAILING_COUNT_LIMIT {
            return Err(idx_err(IdxProblem::TrailingBytes { dims, extra, at_least: true }));
        }
    }
    if extra > 0 {
        return Err(idx_err(IdxProblem::TrailingBytes { dims, extra, at_least: false }));
    }

    let data = match dtype {
        IdxType::U8 => IdxData::U8(payload),
        IdxType::I8 => IdxData::I8(payload.iter().map(|&b| b as i8).collect()),
        IdxType::I16 => IdxData::I16(payload.chunks_exact(2).map(|c| i16::from_be_bytes([c[0], c[1]])).collect()),
        IdxType::I32 => {
            IdxData::I32(payload.chunks_exact(4).map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect())
        }
        IdxType::F32 => {
            IdxData::F32(payload.chunks_exact(4).map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect())
        }
        IdxType::F64 => IdxData::F64(
            payload
                .chunks_exact(8)
                .map(|c| f64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        ),
    };
    Ok(IdxArray { dims, data })
}

/// Reads until `buf` is full or the stream ends; returns the number of bytes read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match read_some(r, &mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// One `read`, retried on `Interrupted`.
fn read_some<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Encodes a u8 array as a raw (uncompressed) IDX file.
///
/// # Panics
///
/// If `dims` is empty or has more than 255 entries, a dimension exceeds `u32::MAX`, or
/// `data.len()` is not the product of `dims`: these are bugs in the caller, not properties of a file.
#[track_caller]
pub fn encode_idx_u8(dims: &[usize], data: &[u8]) -> Vec<u8> {
    check_writable(dims, data.len());
    let mut out = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    out.extend_from_slice(&[0, 0, IdxType::U8.code(), dims.len() as u8]);
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// Writes a u8 array as an IDX file, gzip-compressed if `path` ends in `.gz`, raw otherwise.
///
/// The write is atomic: the bytes go to a temporary file next to `path`, which is flushed to disk and then
/// renamed over `path`, so a crash mid-write never leaves a half-written file under the final name.
///
/// # Errors
///
/// [`DataError::Io`] naming `path` if writing, syncing or renaming fails.
///
/// # Panics
///
/// As [`encode_idx_u8`].
#[track_caller]
pub fn write_idx_u8(path: impl AsRef<Path>, dims: &[usize], data: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let raw = encode_idx_u8(dims, data);
    let gzip = path.extension().is_some_and(|e| e == "gz");
    let bytes = if gzip {
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&raw).map_err(|e| DataError::io(path, e))?;
        enc.finish().map_err(|e| DataError::io(path, e))?
    } else {
        raw
    };
    write_atomic(path, &bytes)
}

/// Writes `bytes` to a temporary sibling of `path`, fsyncs it, and renames it over `path`.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp_name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp: PathBuf = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(DataError::io(path, e));
    }
    Ok(())
}

#[track_caller]
fn check_writable(dims: &[usize], len: usize) {
    if dims.is_empty() || dims.len() > 255 {
        bad_dims(dims, len, "an IDX array has 1 to 255 dimensions");
    }
    if dims.iter().any(|&d| d > u32::MAX as usize) {
        bad_dims(dims, len, "IDX dimensions are at most u32::MAX");
    }
    if dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)) != Some(len) {
        bad_dims(dims, len, "the data length is not the product of the dimensions");
    }
}

#[cold]
#[track_caller]
fn bad_dims(dims: &[usize], len: usize, why: &str) -> ! {
    panic!("write_idx_u8: dims {dims:?} with {len} elements: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(bytes: &[u8]) -> IdxProblem {
        decode_idx(bytes, "t").unwrap_err().idx_problem().cloned().expect("an IDX problem")
    }

    #[test]
    fn decodes_every_type_big_endian() {
        let mut b = vec![0, 0, 0x0b, 1, 0, 0, 0, 2];
        b.extend_from_slice(&(-2i16).to_be_bytes());
        b.extend_from_slice(&300i16.to_be_bytes());
        assert_eq!(decode_idx(&b, "t").unwrap().data, IdxData::I16(vec![-2, 300]));

        let mut b = vec![0, 0, 0x0d, 2, 0, 0, 0, 1, 0, 0, 0, 1];
        b.extend_from_slice(&1.5f32.to_be_bytes());
        let a = decode_idx(&b, "t").unwrap();
        assert_eq!((a.dims.as_slice(), a.data), (&[1, 1][..], IdxData::F32(vec![1.5])));

        let mut b = vec![0, 0, 0x0e, 1, 0, 0, 0, 1];
        b.extend_from_slice(&(-0.25f64).to_be_bytes());
        assert_eq!(decode_idx(&b, "t").unwrap().data, IdxData::F64(vec![-0.25]));

        let b = [0, 0, 0x09, 1, 0, 0, 0, 1, 0xff];
        assert_eq!(decode_idx(&b, "t").unwrap().data, IdxData::I8(vec![-1]));

        let mut b = vec![0, 0, 0x0c, 1, 0, 0, 0, 1];
        b.extend_from_slice(&(-70000i32).to_be_bytes());
        assert_eq!(decode_idx(&b, "t").unwrap().data, IdxData::I32(vec![-70000]));
    }

    #[test]
    fn names_each_problem() {
        assert_eq!(problem(&[0x12, 0x34, 8, 1]), IdxProblem::BadMagic { found: vec![0x12, 0x34, 8, 1] });
        assert_eq!(problem(&[0, 0, 0x07, 1]), IdxProblem::UnsupportedType { code: 7 });
        assert_eq!(problem(&[0, 0, 8, 0]), IdxProblem::NoDimensions);
        assert_eq!(problem(&[]), IdxProblem::TruncatedHeader { needed: 4, found: 0 });
        assert_eq!(problem(&[0, 0, 8, 2, 0, 0, 0, 1]), IdxProblem::TruncatedHeader { needed: 12, found: 8 });
        assert_eq!(
            problem(&[0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            IdxProblem::DimsOverflow { dims: vec![u32::MAX as usize; 3] }
        );
        assert_eq!(
            problem(&[0, 0, 8, 1, 0xff, 0xff, 0xff, 0xff, 1, 2]),
            IdxProblem::Truncated { dims: vec![u32::MAX as usize], expected: u32::MAX as usize, found: 2 }
        );
        assert_eq!(
            problem(&[0, 0, 8, 1, 0, 0, 0, 1, 7, 8, 9]),
            IdxProblem::TrailingBytes { dims: vec![1], extra: 2, at_least: false }
        );
    }

    #[test]
    fn empty_array_is_valid() {
        let a = decode_idx(&[0, 0, 8, 2, 0, 0, 0, 0, 0, 0, 0, 28], "t").unwrap();
        assert_eq!(a.dims, [0, 28]);
        assert!(a.is_empty());
    }

    #[test]
    #[should_panic(expected = "write_idx_u8: dims [2, 3] with 5 elements")]
    fn encoding_wrong_length_panics() {
        encode_idx_u8(&[2, 3], &[0; 5]);
    }
}
