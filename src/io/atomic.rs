//! Atomic file replacement: a reader sees the old file or the new one, never a mix, whatever happens midway.
//!
//! ```text
//! 1. create  <dir>/.<name>.tmp-<pid>-<n>   (same directory, so the rename stays on one filesystem)
//! 2. write through a buffer, flush, fsync the file
//! 3. rename over <dir>/<name>               (atomic on POSIX)
//! 4. fsync <dir>                             (makes the rename itself durable)
//! ```
//! Any error in 1-3 removes the temporary file and leaves the target untouched.

use super::CheckpointError;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

static NEXT_TMP: AtomicUsize = AtomicUsize::new(0);

/// Replaces `path` atomically with the bytes `write` produces. `write` gets a buffered writer; if it (or any
/// filesystem step) fails, the previous contents of `path` are untouched and the error names the step.
///
/// The writer is a `&mut dyn Write` so a caller (or a test) can wrap it, e.g. in a writer that fails after N
/// bytes to simulate a full disk.
pub fn atomic_write(
    path: impl AsRef<Path>,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), CheckpointError> {
    let path = path.as_ref();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| CheckpointError::io(path, "resolve file name", io::ErrorKind::InvalidInput.into()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        NEXT_TMP.fetch_add(1, Ordering::Relaxed)
    ));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| CheckpointError::io(&tmp, "create temporary file", e))?;
    let result = write_and_sync(file, write)
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| ("rename temporary file over target", e)));
    if let Err((op, e)) = result {
        let _ = fs::remove_file(&tmp);
        return Err(CheckpointError::io(path, op, e));
    }
    sync_dir(&dir).map_err(|e| CheckpointError::io(&dir, "fsync directory", e))
}

/// Steps 2: buffered write, flush, fsync.
fn write_and_sync(
    file: File,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), (&'static str, io::Error)> {
    let mut w = BufWriter::new(file);
    write(&mut w).map_err(|e| ("write", e))?;
    let file = w.into_inner().map_err(|e| ("flush", e.into_error()))?;
    file.sync_all().map_err(|e| ("fsync file", e))
}

/// Makes a rename in `dir` durable. Directories cannot be opened for syncing on every platform; where they
/// cannot, this is a no-op.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}
