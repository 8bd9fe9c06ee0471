//! The on-disk form of one part's data: a fixed header, then the part's sealed segments.
//!
//! ```text
//! offset 0   7 bytes  magic "COFFRE\0"
//! offset 7   1 byte   format version (2: sealed segments)
//! offset 8   7 bytes  the part's nonce prefix (a copy: the part's metadata is authoritative)
//! offset 15  1 byte   reserved, zero
//! offset 16  the segments, `ciphertext || tag` each (see `coffre_crypto::aead`)
//! ```
//! Version 1 (a plaintext body) was never deployed and is refused like any unknown version.
//! A file must be exactly `16 + sealed_len(plaintext size)` bytes, the size coming from
//! metadata.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use bytes::{Bytes, BytesMut};

use coffre_crypto::{sealed_len, NoncePrefix};

use crate::error::{Error, Result};

pub(crate) const MAGIC: [u8; 7] = *b"COFFRE\0";
pub(crate) const VERSION_SEALED: u8 = 2;
pub(crate) const HEADER_LEN: u64 = 16;

pub(crate) fn header(nonce: &NoncePrefix) -> [u8; HEADER_LEN as usize] {
    let mut header = [0u8; HEADER_LEN as usize];
    header[..7].copy_from_slice(&MAGIC);
    header[7] = VERSION_SEALED;
    header[8..15].copy_from_slice(nonce.as_bytes());
    header
}

pub(crate) fn write_header(out: &mut impl Write, nonce: &NoncePrefix) -> io::Result<()> {
    out.write_all(&header(nonce))
}

/// Opens the data file of a part of `plain_size` bytes sealed with `nonce`, checking its
/// length and header. Any mismatch is an integrity error naming `object`.
pub(crate) fn open_for_read(
    path: &Path,
    plain_size: u64,
    nonce: &NoncePrefix,
    object: &str,
) -> Result<File> {
    let bad = |reason: String| Error::Integrity {
        object: object.to_owned(),
        reason: format!("data file {}: {reason}", path.display()),
    };
    let mut file = File::open(path)?;
    let expected = HEADER_LEN + sealed_len(plain_size);
    let actual = file.metadata()?.len();
    if actual != expected {
        return Err(bad(format!("{actual} bytes, expected {expected}")));
    }
    let mut header_bytes = [0u8; HEADER_LEN as usize];
    file.read_exact(&mut header_bytes)
        .map_err(|e| read_error(e, path, object))?;
    if header_bytes[..7] != MAGIC {
        return Err(bad("bad magic".into()));
    }
    if header_bytes[7] != VERSION_SEALED || header_bytes[15] != 0 {
        return Err(bad(format!("unknown format version {}", header_bytes[7])));
    }
    if header_bytes[8..15] != nonce.as_bytes()[..] {
        return Err(bad("nonce prefix differs from the part's".into()));
    }
    Ok(file)
}

/// Positions `file` (from [`open_for_read`]) at `offset` bytes into its segments.
pub(crate) fn seek_sealed(file: &mut File, offset: u64) -> io::Result<()> {
    file.seek(SeekFrom::Start(HEADER_LEN + offset)).map(|_| ())
}

/// Reads exactly `buf.len()` bytes; a short file is an integrity error naming `object`.
/// The next `len` sealed bytes of `file`, in a buffer of their own. Read into fresh capacity
/// (no zeroing pass first: the GET path reads every stored byte through here).
pub(crate) fn read_sealed(
    file: &mut File,
    path: &Path,
    object: &str,
    len: usize,
) -> Result<BytesMut> {
    let mut sealed = Vec::with_capacity(len);
    Read::take(&mut *file, len as u64)
        .read_to_end(&mut sealed)
        .map_err(|e| read_error(e, path, object))?;
    if sealed.len() != len {
        return Err(read_error(
            io::ErrorKind::UnexpectedEof.into(),
            path,
            object,
        ));
    }
    // Both conversions keep the allocation.
    Ok(BytesMut::from(Bytes::from(sealed)))
}

fn read_error(err: io::Error, path: &Path, object: &str) -> Error {
    if err.kind() == io::ErrorKind::UnexpectedEof {
        Error::Integrity {
            object: object.to_owned(),
            reason: format!("data file {} is truncated", path.display()),
        }
    } else {
        Error::Io(err)
    }
}

/// Makes a directory entry change (create, rename) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Directories whose entry in their parent is known to be on stable storage: created (by
/// any thread) and their parent synced since this process started.
fn durable_dirs() -> &'static Mutex<HashSet<PathBuf>> {
    static DURABLE: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    DURABLE.get_or_init(Default::default)
}

/// Creates `dir` and any missing parents up to `root` (which must exist), and makes each
/// new entry durable by syncing its parent before returning. A directory that already
/// exists but is not known durable (another thread may have created it and not synced its
/// parent yet) gets its parent synced too: a file published in `dir` is never acknowledged
/// before the directories leading to it survive a crash.
pub(crate) fn ensure_dir(root: &Path, dir: &Path) -> io::Result<()> {
    let known = |path: &Path| {
        durable_dirs()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(path)
    };
    if known(dir) {
        return Ok(());
    }
    let relative = dir
        .strip_prefix(root)
        .map_err(|_| io::Error::other("directory outside its array"))?;
    let mut current = root.to_path_buf();
    for component in relative.components() {
        let parent = current.clone();
        current.push(component);
        if known(&current) {
            continue;
        }
        match std::fs::create_dir(&current) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
        sync_dir(&parent)?;
        #[cfg(test)]
        tests::synced(&parent);
        durable_dirs()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(current.clone());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Parent directories synced by `ensure_dir` in this test process.
    static SYNCED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

    pub(super) fn synced(parent: &Path) {
        SYNCED.lock().unwrap().push(parent.to_path_buf());
    }

    fn syncs_of(path: &Path) -> usize {
        SYNCED.lock().unwrap().iter().filter(|p| *p == path).count()
    }

    #[test]
    fn r12_a_directory_another_thread_created_is_made_durable_before_use() {
        let root = tempfile::tempdir().unwrap();
        let tenant = root.path().join("tenant");
        let dir = tenant.join("ab").join("cd");
        // Another thread created the directories and has not synced their parents yet.
        std::fs::create_dir_all(&dir).unwrap();
        ensure_dir(root.path(), &dir).unwrap();
        for parent in [root.path().to_path_buf(), tenant.clone(), tenant.join("ab")] {
            assert_eq!(syncs_of(&parent), 1, "{} synced", parent.display());
        }
        // Known durable now: nothing synced again.
        ensure_dir(root.path(), &dir).unwrap();
        assert_eq!(syncs_of(&tenant.join("ab")), 1);
    }
}
