//! Writing one part's data: in memory while it fits inline, then through a temp file that is
//! synced and renamed into place by [`DataWriter::finish`].
//!
//! Before a file is created, a pending intent (with this process's boot id) is recorded in
//! the `gc` key space with a synced write; the metadata commit that makes the file reachable
//! deletes it in the same batch. So a crash at any point leaves either a reachable file or
//! an intent that garbage collection resolves.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use coffre_crypto::{ObjectId, TenantId};

use crate::arrays;
use crate::data_file::{ensure_dir, sync_dir, write_header};
use crate::error::{Error, Result};
use crate::keys;
use crate::meta_store::{Batch, Cf, Durability};
use crate::records::{DataLocation, FileLocation, GcEntry, GcState, Record};
use crate::store::Shared;

const WRITE_BUFFER: usize = 256 * 1024;

/// Receives one part's bytes. `Send`. Dropping it without [`DataWriter::finish`] removes
/// whatever it wrote.
pub struct DataWriter {
    shared: Arc<Shared>,
    tenant: TenantId,
    /// The tenant's placement policy: where its files may go.
    placement: Vec<String>,
    size: u64,
    state: WriterState,
}

enum WriterState {
    Buffer(Vec<u8>),
    File {
        out: BufWriter<File>,
        pending: PendingFile,
    },
}

impl DataWriter {
    pub(crate) fn new(shared: Arc<Shared>, tenant: TenantId, placement: Vec<String>) -> Self {
        Self {
            shared,
            tenant,
            placement,
            size: 0,
            state: WriterState::Buffer(Vec::new()),
        }
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        match &mut self.state {
            WriterState::Buffer(buffer) if buffer.len() + bytes.len() <= self.shared.inline_max => {
                buffer.extend_from_slice(bytes);
            }
            WriterState::Buffer(buffer) => {
                let buffered = std::mem::take(buffer);
                let pending =
                    PendingFile::begin(self.shared.clone(), self.tenant, &self.placement)?;
                let mut out = pending.create_temp()?;
                pending.io(write_header(&mut out))?;
                pending.io(out.write_all(&buffered))?;
                pending.io(out.write_all(bytes))?;
                self.state = WriterState::File { out, pending };
            }
            WriterState::File { out, pending } => pending.io(out.write_all(bytes))?,
        }
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Completes the data: inline data needs no I/O; a file is synced, renamed into its
    /// final path and its directory synced, so it is durable before metadata points to it.
    pub fn finish(self) -> Result<WrittenData> {
        let content = match self.state {
            WriterState::Buffer(buffer) => Content::Inline(buffer),
            WriterState::File { out, pending } => {
                let file = out
                    .into_inner()
                    .map_err(|e| pending.io_error(e.into_error()))?;
                pending.io(file.sync_all())?;
                drop(file);
                pending.io(pending.publish())?;
                Content::File(pending)
            }
        };
        Ok(WrittenData {
            size: self.size,
            tenant: self.tenant,
            content,
        })
    }
}

/// A part's data, durable but not yet referenced by any record. Dropping it without
/// committing it (a failed or abandoned request) removes the file.
pub struct WrittenData {
    size: u64,
    tenant: TenantId,
    content: Content,
}

enum Content {
    Inline(Vec<u8>),
    File(PendingFile),
}

impl WrittenData {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the data stays in the record rather than in a file.
    pub fn is_inline(&self) -> bool {
        matches!(self.content, Content::Inline(_))
    }

    /// The location to record and, for a file, the commit hook. Fails if the data was
    /// written under another tenant's scope.
    pub(crate) fn into_location(
        self,
        tenant: TenantId,
    ) -> Result<(DataLocation, Option<PendingFile>)> {
        if self.tenant != tenant {
            return Err(Error::ScopeMismatch);
        }
        Ok(match self.content {
            Content::Inline(bytes) => (DataLocation::Inline(bytes), None),
            Content::File(pending) => (
                DataLocation::File {
                    array: pending.location.array.clone(),
                    file: pending.location.file,
                },
                Some(pending),
            ),
        })
    }
}

/// A data file not yet referenced by committed metadata, with its intent record.
pub(crate) struct PendingFile {
    shared: Arc<Shared>,
    location: FileLocation,
    array_root: PathBuf,
    committed: bool,
}

impl PendingFile {
    /// Places the file and durably records the intent to write it.
    fn begin(shared: Arc<Shared>, tenant: TenantId, placement: &[String]) -> Result<Self> {
        let file = ObjectId::random();
        let array = shared.arrays.place(file, placement)?;
        let location = FileLocation {
            tenant,
            array: array.name.clone(),
            file,
        };
        let array_root = array.path.clone();
        let intent = GcEntry {
            location: location.clone(),
            state: GcState::Pending {
                boot_id: shared.boot_id,
            },
        };
        shared.meta.put(
            Cf::Gc,
            &keys::gc(file),
            &intent.encode()?,
            Durability::Synced,
        )?;
        Ok(Self {
            shared,
            location,
            array_root,
            committed: false,
        })
    }

    fn temp_path(&self) -> PathBuf {
        arrays::temp_path(&self.array_root, self.location.tenant, self.location.file)
    }

    fn final_path(&self) -> PathBuf {
        arrays::file_path(&self.array_root, self.location.tenant, self.location.file)
    }

    fn create_temp(&self) -> Result<BufWriter<File>> {
        let dir = arrays::temp_dir(&self.array_root, self.location.tenant);
        self.io(ensure_dir(&self.array_root, &dir))?;
        let file = self.io(OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.temp_path()))?;
        Ok(BufWriter::with_capacity(WRITE_BUFFER, file))
    }

    /// Renames the synced temp file into its final path and makes the rename durable.
    fn publish(&self) -> io::Result<()> {
        let dir = arrays::file_dir(&self.array_root, self.location.tenant, self.location.file);
        ensure_dir(&self.array_root, &dir)?;
        std::fs::rename(self.temp_path(), self.final_path())?;
        sync_dir(&dir)
    }

    /// Adds the intent's removal to the batch that makes the file reachable.
    pub fn commit_in(&self, batch: &mut Batch) {
        batch.delete(Cf::Gc, keys::gc(self.location.file));
    }

    /// The batch from [`PendingFile::commit_in`] was written: the file now belongs to its
    /// record.
    pub fn committed(mut self) {
        self.committed = true;
    }

    fn io<T>(&self, result: io::Result<T>) -> Result<T> {
        result.map_err(|e| self.io_error(e))
    }

    fn io_error(&self, err: io::Error) -> Error {
        if err.kind() == io::ErrorKind::StorageFull {
            Error::ArrayFull {
                array: self.location.array.clone(),
            }
        } else {
            Error::Io(err)
        }
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let mut removed = true;
        for path in [self.temp_path(), self.final_path()] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => {
                    removed = false;
                    tracing::warn!(path = %path.display(), %err, "cannot remove abandoned data file");
                }
            }
        }
        // Without the files gone, keep the intent: a later collection retries.
        if removed {
            let key = keys::gc(self.location.file);
            if let Err(err) = self.shared.meta.delete(Cf::Gc, &key, Durability::Buffered) {
                tracing::warn!(%err, "cannot drop the intent of an abandoned data file");
            }
        }
    }
}
