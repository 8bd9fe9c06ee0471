//! Reading a byte range of an object, part by part. Offsets come from the part sizes in
//! metadata, never from file sizes; a file that does not match its recorded size is corrupt.

use std::path::PathBuf;

use bytes::Bytes;
use coffre_crypto::TenantId;

use crate::arrays::{self, Arrays};
use crate::data_file::{open_for_read, read_body_at};
use crate::error::{Error, Result};
use crate::records::{DataLocation, ObjectRecord};

/// Reads one object's data. `Send`; holds no lock and no open file between calls.
#[derive(Debug)]
pub struct ObjectReader {
    parts: Vec<ReadPart>,
    size: u64,
}

#[derive(Debug)]
struct ReadPart {
    size: u64,
    source: Source,
}

#[derive(Debug)]
enum Source {
    Inline(Bytes),
    File(PathBuf),
}

impl ObjectReader {
    pub(crate) fn new(arrays: &Arrays, tenant: TenantId, object: &ObjectRecord) -> Result<Self> {
        let mut parts = Vec::with_capacity(object.parts.len());
        for part in &object.parts {
            let source = match &part.location {
                DataLocation::Inline(bytes) => {
                    if bytes.len() as u64 != part.size {
                        return Err(Error::Corrupt(format!(
                            "object {}: inline part of {} bytes recorded as {}",
                            object.key,
                            bytes.len(),
                            part.size
                        )));
                    }
                    Source::Inline(Bytes::copy_from_slice(bytes))
                }
                DataLocation::File { array, file } => {
                    let array = arrays.by_name(array).ok_or_else(|| {
                        Error::Corrupt(format!("object {}: unknown array {array}", object.key))
                    })?;
                    Source::File(arrays::file_path(&array.path, tenant, *file))
                }
            };
            parts.push(ReadPart {
                size: part.size,
                source,
            });
        }
        let size = parts.iter().map(|p| p.size).sum();
        Ok(Self { parts, size })
    }

    /// Total plaintext size, from metadata.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Feeds bytes `[start, end_exclusive)` (clamped to the object) to `sink` in chunks of at
    /// most `max_chunk` bytes, in order, until done or `sink` returns `false`.
    pub fn read_range(
        &mut self,
        start: u64,
        end_exclusive: u64,
        max_chunk: usize,
        sink: &mut dyn FnMut(Bytes) -> bool,
    ) -> Result<()> {
        let end = end_exclusive.min(self.size);
        let max_chunk = max_chunk.max(1) as u64;
        let mut part_start = 0u64;
        for part in &self.parts {
            let part_end = part_start + part.size;
            if part_end <= start || part.size == 0 {
                part_start = part_end;
                continue;
            }
            if part_start >= end {
                break;
            }
            let from = start.saturating_sub(part_start);
            let to = end.min(part_end) - part_start;
            if !read_part(part, from, to, max_chunk, sink)? {
                return Ok(());
            }
            part_start = part_end;
        }
        Ok(())
    }
}

/// Sends bytes `[from, to)` of one part; `false` when the sink asked to stop.
fn read_part(
    part: &ReadPart,
    from: u64,
    to: u64,
    max_chunk: u64,
    sink: &mut dyn FnMut(Bytes) -> bool,
) -> Result<bool> {
    match &part.source {
        Source::Inline(bytes) => {
            let mut offset = from;
            while offset < to {
                let chunk_end = to.min(offset + max_chunk);
                if !sink(bytes.slice(offset as usize..chunk_end as usize)) {
                    return Ok(false);
                }
                offset = chunk_end;
            }
        }
        Source::File(path) => {
            let mut file = open_for_read(path, part.size)?;
            let mut offset = from;
            while offset < to {
                let len = (to - offset).min(max_chunk) as usize;
                let mut buf = vec![0u8; len];
                read_body_at(&mut file, path, offset, &mut buf)?;
                if !sink(Bytes::from(buf)) {
                    return Ok(false);
                }
                offset += len as u64;
            }
        }
    }
    Ok(true)
}
