//! Reading a byte range of an object, part by part, decrypting as it goes. Offsets come
//! from the part sizes in metadata, never from file sizes; a range maps to the sealed
//! segments that hold it, each opened (its tag verified) before any of its bytes is
//! released. A file that does not match its recorded size, a segment that does not open,
//! a file from another object: all are [`Error::Integrity`], never wrong bytes.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use coffre_crypto::aead::{sealed_segment_len, SegmentSpan};
use coffre_crypto::{
    sealed_len, segments_for_range, stored_offset, Dek, NoncePrefix, SegmentDecryptor, TenantId,
};

use crate::arrays::{self, Arrays};
use crate::data_file::{open_for_read, read_sealed, seek_sealed};
use crate::error::{Error, Result};
use crate::records::{DataLocation, ObjectRecord};
use crate::stats::{AeadOp, CountIntegrity, IntegrityKind, StoreStats};

/// Objects of at most this many parts have their data files opened when the reader is
/// made: a read that has started then survives the collector removing a superseded file
/// (an open file outlives its unlink), and a damaged header or length is found before a
/// response is committed to. Larger objects open each part when it is reached.
const EAGER_OPEN_PARTS: usize = 64;

/// Reads one object's data. `Send`; holds no lock.
#[derive(Debug)]
pub struct ObjectReader {
    /// The object key, to name it in errors.
    key: String,
    parts: Vec<ReadPart>,
    size: u64,
    /// Counts the segments opened and the integrity failures met.
    stats: Arc<StoreStats>,
}

#[derive(Debug)]
struct ReadPart {
    size: u64,
    nonce: NoncePrefix,
    decryptor: SegmentDecryptor,
    source: Source,
}

#[derive(Debug)]
enum Source {
    /// The sealed segments.
    Inline(Bytes),
    /// A data file, already open (and its header and length checked) when `opened`.
    File {
        path: PathBuf,
        opened: Option<std::fs::File>,
    },
}

impl ObjectReader {
    /// Whether every byte is in memory (inline data, no file): a read is then a few
    /// microseconds of decryption and needs no blocking thread.
    pub fn in_memory(&self) -> bool {
        self.parts
            .iter()
            .all(|part| matches!(part.source, Source::Inline(_)))
    }

    pub(crate) fn new(
        arrays: &Arrays,
        stats: Arc<StoreStats>,
        tenant: TenantId,
        object: &ObjectRecord,
        dek: &Dek,
    ) -> Result<Self> {
        Self::open_parts(arrays, tenant, object, dek)
            .count_integrity(&stats, IntegrityKind::Data)
            .map(|(parts, size)| Self {
                key: object.key.clone(),
                parts,
                size,
                stats,
            })
    }

    /// Each part's decryptor and source, and the total plaintext size.
    fn open_parts(
        arrays: &Arrays,
        tenant: TenantId,
        object: &ObjectRecord,
        dek: &Dek,
    ) -> Result<(Vec<ReadPart>, u64)> {
        let integrity = |e| Error::integrity(&object.key, e);
        let mut parts = Vec::with_capacity(object.parts.len());
        for part in &object.parts {
            let source = match &part.location {
                DataLocation::Inline(sealed) => {
                    if sealed.len() as u64 != sealed_len(part.size) {
                        return Err(Error::Integrity {
                            object: object.key.clone(),
                            reason: format!(
                                "inline part of {} sealed bytes recorded as {} plaintext bytes",
                                sealed.len(),
                                part.size
                            ),
                        });
                    }
                    Source::Inline(Bytes::copy_from_slice(sealed))
                }
                DataLocation::File { array, file } => {
                    let array = arrays.by_name(array).ok_or_else(|| {
                        Error::Corrupt(format!("object {}: unknown array {array}", object.key))
                    })?;
                    let path = arrays::file_path(&array.path, tenant, *file);
                    let opened = if object.parts.len() <= EAGER_OPEN_PARTS {
                        Some(open_for_read(&path, part.size, &part.nonce, &object.key)?)
                    } else {
                        None
                    };
                    Source::File { path, opened }
                }
            };
            let key = dek.part_key(part.part_number).map_err(integrity)?;
            let decryptor = SegmentDecryptor::new(key, part.nonce, part.size).map_err(integrity)?;
            parts.push(ReadPart {
                size: part.size,
                nonce: part.nonce,
                decryptor,
                source,
            });
        }
        let size = parts.iter().map(|p| p.size).sum();
        Ok((parts, size))
    }

    /// Total plaintext size, from metadata.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Feeds bytes `[start, end_exclusive)` (clamped to the object) to `sink` in chunks of at
    /// most `max_chunk` bytes, in order, until done or `sink` returns `false`. An error may
    /// come after some chunks were sent: they were all authentic, but the rest is missing.
    pub fn read_range(
        &mut self,
        start: u64,
        end_exclusive: u64,
        max_chunk: usize,
        sink: &mut dyn FnMut(Bytes) -> bool,
    ) -> Result<()> {
        self.read_parts(start, end_exclusive, max_chunk, sink)
            .count_integrity(&self.stats, IntegrityKind::Data)
    }

    fn read_parts(
        &mut self,
        start: u64,
        end_exclusive: u64,
        max_chunk: usize,
        sink: &mut dyn FnMut(Bytes) -> bool,
    ) -> Result<()> {
        let end = end_exclusive.min(self.size);
        let max_chunk = max_chunk.max(1);
        let mut part_start = 0u64;
        for part in &mut self.parts {
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
            if !read_part(&self.key, &self.stats, part, from, to, max_chunk, sink)? {
                return Ok(());
            }
            part_start = part_end;
        }
        Ok(())
    }
}

/// Sends plaintext bytes `[from, to)` of one part; `false` when the sink asked to stop.
fn read_part(
    object: &str,
    stats: &StoreStats,
    part: &mut ReadPart,
    from: u64,
    to: u64,
    max_chunk: usize,
    sink: &mut dyn FnMut(Bytes) -> bool,
) -> Result<bool> {
    let Some(span) = segments_for_range(part.size, from..to) else {
        return Ok(true);
    };
    let mut file = match &mut part.source {
        Source::File { path, opened } => {
            let mut file = match opened.take() {
                Some(file) => file,
                None => open_for_read(path, part.size, &part.nonce, object)?,
            };
            seek_sealed(&mut file, span.stored.start)?;
            Some((file, path.clone()))
        }
        Source::Inline(_) => None,
    };
    let sent = send_segments(object, stats, part, file.as_mut(), span, max_chunk, sink);
    // Kept open for the next range: a read that goes on in steps must not reopen the file
    // by its path, which the collector may have removed since (an overwrite, a delete).
    if let (Source::File { opened, .. }, Some((file, _))) = (&mut part.source, file) {
        *opened = Some(file);
    }
    sent
}

/// Sends the plaintext of `span`'s segments of `part`; `false` when the sink asked to stop.
fn send_segments(
    object: &str,
    stats: &StoreStats,
    part: &ReadPart,
    mut file: Option<&mut (File, PathBuf)>,
    span: SegmentSpan,
    max_chunk: usize,
    sink: &mut dyn FnMut(Bytes) -> bool,
) -> Result<bool> {
    let mut skip = span.skip;
    let mut remaining = span.len;
    for index in span.first..=span.last {
        let sealed = read_segment(object, part, file.as_deref_mut(), index)?;
        let plain = part
            .decryptor
            .open(index, sealed)
            .map_err(|e| Error::integrity(object, e))?;
        stats.count_segments(AeadOp::Open, 1);
        let skip_now = skip.min(plain.len());
        let take = (plain.len() - skip_now).min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let mut plain = plain.slice(skip_now..skip_now + take);
        skip = 0;
        remaining -= take as u64;
        while !plain.is_empty() {
            let chunk = plain.split_to(plain.len().min(max_chunk));
            if !sink(chunk) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// The sealed bytes of segment `index`: from the inline data, or the next ones of the file
/// (segments are read in order from the span's start).
fn read_segment(
    object: &str,
    part: &ReadPart,
    file: Option<&mut (File, PathBuf)>,
    index: u32,
) -> Result<BytesMut> {
    let len = sealed_segment_len(part.size, index).ok_or_else(|| Error::Integrity {
        object: object.to_owned(),
        reason: format!("segment {index} past the end of a part"),
    })?;
    match (&part.source, file) {
        (_, Some((file, path))) => read_sealed(file, path, object, len),
        (Source::Inline(bytes), None) => {
            let start = usize::try_from(stored_offset(index)).unwrap_or(usize::MAX);
            let stored = start
                .checked_add(len)
                .and_then(|end| bytes.get(start..end))
                .ok_or_else(|| Error::Integrity {
                    object: object.to_owned(),
                    reason: "inline part shorter than recorded".into(),
                })?;
            Ok(BytesMut::from(stored))
        }
        (Source::File { .. }, None) => Err(Error::Corrupt(format!(
            "object {object}: data file not open"
        ))),
    }
}
