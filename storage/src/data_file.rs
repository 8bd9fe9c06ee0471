//! The on-disk form of one part's data: a fixed header, then the part's bytes.
//!
//! ```text
//! offset 0   7 bytes  magic "COFFRE\0"
//! offset 7   1 byte   format version (1: plaintext body)
//! offset 8   8 bytes  reserved, zero in version 1
//! offset 16  body
//! ```
//! A later version seals the body in AES-256-GCM segments and uses the reserved space for
//! the nonce prefix; readers refuse any version they do not know.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::{Error, Result};

pub(crate) const MAGIC: [u8; 7] = *b"COFFRE\0";
pub(crate) const VERSION_PLAIN: u8 = 1;
pub(crate) const HEADER_LEN: u64 = 16;

pub(crate) fn header() -> [u8; HEADER_LEN as usize] {
    let mut header = [0u8; HEADER_LEN as usize];
    header[..7].copy_from_slice(&MAGIC);
    header[7] = VERSION_PLAIN;
    header
}

pub(crate) fn write_header(out: &mut impl Write) -> io::Result<()> {
    out.write_all(&header())
}

/// Opens a data file that must hold exactly `size` body bytes and checks its header.
pub(crate) fn open_for_read(path: &Path, size: u64) -> Result<File> {
    let mut file = File::open(path)?;
    let expected = HEADER_LEN + size;
    let actual = file.metadata()?.len();
    if actual != expected {
        return Err(Error::Corrupt(format!(
            "data file {} is {actual} bytes, expected {expected}",
            path.display()
        )));
    }
    let mut header_bytes = [0u8; HEADER_LEN as usize];
    file.read_exact(&mut header_bytes)
        .map_err(|e| corrupt_if_short(e, path))?;
    if header_bytes[..7] != MAGIC {
        return Err(Error::Corrupt(format!(
            "data file {}: bad magic",
            path.display()
        )));
    }
    if header_bytes[7] != VERSION_PLAIN || header_bytes[8..].iter().any(|&b| b != 0) {
        return Err(Error::Corrupt(format!(
            "data file {}: unknown format version {}",
            path.display(),
            header_bytes[7]
        )));
    }
    Ok(file)
}

/// Reads body bytes `[offset, offset + buf.len())` of a file opened by [`open_for_read`].
pub(crate) fn read_body_at(
    file: &mut File,
    path: &Path,
    offset: u64,
    buf: &mut [u8],
) -> Result<()> {
    file.seek(SeekFrom::Start(HEADER_LEN + offset))?;
    file.read_exact(buf).map_err(|e| corrupt_if_short(e, path))
}

fn corrupt_if_short(err: io::Error, path: &Path) -> Error {
    if err.kind() == io::ErrorKind::UnexpectedEof {
        Error::Corrupt(format!("data file {} is truncated", path.display()))
    } else {
        Error::Io(err)
    }
}

/// Makes a directory entry change (create, rename) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and any missing parents up to `root` (which must exist), syncing each
/// parent whose entries changed so the new directories survive a crash.
pub(crate) fn ensure_dir(root: &Path, dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let relative = dir
        .strip_prefix(root)
        .map_err(|_| io::Error::other("directory outside its array"))?;
    let mut current = root.to_path_buf();
    for component in relative.components() {
        let parent = current.clone();
        current.push(component);
        match std::fs::create_dir(&current) {
            Ok(()) => sync_dir(&parent)?,
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
