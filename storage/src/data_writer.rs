//! Writing one part's data: sealed segment by segment as it streams in (see
//! `coffre_crypto::aead`), kept in memory while the plaintext fits inline, then through a
//! temp file that is synced and renamed into place by [`DataWriter::finish`].
//!
//! Before a file is created, a pending intent (with this process's boot id) is recorded in
//! the `gc` key space with a synced write; the metadata commit that makes the file reachable
//! deletes it in the same batch. So a crash at any point leaves either a reachable file or
//! an intent that garbage collection resolves.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;

use coffre_crypto::aead::segment_count;
use coffre_crypto::{
    sealed_len, BucketId, CustomerKey, CustomerKeyCheck, Dek, NoncePrefix, ObjectId,
    SegmentEncryptor, TenantId,
};

use crate::arrays;
use crate::data_file::{ensure_dir, sync_dir, write_header, HEADER_LEN};
use crate::error::{Error, Result};
use crate::keys;
use crate::meta_store::{Batch, Cf, Durability, Tx};
use crate::multipart_upload::UploadAddress;
use crate::records::{DataLocation, FileLocation, GcEntry, GcState, Record};
use crate::stats::AeadOp;
use crate::store::{Shared, Store};

/// What a [`DataWriter`] writes for: the data is sealed under that target's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteTarget {
    /// The body of a single PUT (or a copy): a fresh DEK, part 0.
    Object,
    /// Part `part_number` of a multipart upload: the upload's DEK.
    Part {
        upload: UploadAddress,
        part_number: u32,
    },
}

/// The resolved target, checked again when the data is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Binding {
    Object,
    Part { upload: ObjectId, part_number: u32 },
}

impl Binding {
    /// The part number the part key is derived from: 0 for a single PUT.
    pub fn part_number(self) -> u32 {
        match self {
            Binding::Object => 0,
            Binding::Part { part_number, .. } => part_number,
        }
    }
}

/// Receives one part's plaintext and seals it. `Send`. Dropping it without
/// [`DataWriter::finish`] removes whatever it wrote.
pub struct DataWriter {
    shared: Arc<Shared>,
    tenant: TenantId,
    bucket: BucketId,
    binding: Binding,
    /// The DEK the record wraps (for SSE-C, not the one the data is sealed under).
    dek: Dek,
    /// For SSE-C data: the check of the customer key it is sealed under.
    customer_key_check: Option<CustomerKeyCheck>,
    encryptor: SegmentEncryptor,
    /// The tenant's placement policy: where its files may go.
    placement: Vec<String>,
    state: WriterState,
}

/// Where sealed segments go.
enum WriterState {
    Buffer(Vec<u8>),
    File { out: File, pending: PendingFile },
}

impl WriterState {
    fn take(&mut self, sealed: &[u8]) -> Result<()> {
        match self {
            WriterState::Buffer(buffer) => {
                buffer.extend_from_slice(sealed);
                Ok(())
            }
            WriterState::File { out, pending } => pending.io(out.write_all(sealed)),
        }
    }
}

impl DataWriter {
    /// Seals under `dek`'s part key, or with a customer key (SSE-C) under the part key of
    /// [`Dek::with_customer_key`]. The caller has checked `customer_key` against the target.
    pub(crate) fn new(
        shared: Arc<Shared>,
        tenant: TenantId,
        bucket: BucketId,
        binding: Binding,
        dek: Dek,
        customer_key: Option<&CustomerKey>,
        placement: Vec<String>,
    ) -> Result<Self> {
        let part_number = binding.part_number();
        let (part_key, customer_key_check) = match customer_key {
            None => (dek.part_key(part_number)?, None),
            Some(key) => (
                dek.with_customer_key(key)?.part_key(part_number)?,
                Some(dek.customer_key_check(key)?),
            ),
        };
        let encryptor = SegmentEncryptor::new(part_key, NoncePrefix::random());
        Ok(Self {
            shared,
            tenant,
            bucket,
            binding,
            dek,
            customer_key_check,
            encryptor,
            placement,
            state: WriterState::Buffer(Vec::new()),
        })
    }

    /// Plaintext bytes written so far.
    pub fn size(&self) -> u64 {
        self.encryptor.plain_len()
    }

    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let plain_after = self.encryptor.plain_len() + bytes.len() as u64;
        if let WriterState::Buffer(buffer) = &mut self.state {
            if plain_after > self.shared.inline_max as u64 {
                // Past the inline threshold (on the plaintext): move to a file.
                let sealed = std::mem::take(buffer);
                let pending =
                    PendingFile::begin(self.shared.clone(), self.tenant, &self.placement)?;
                let mut out = pending.create_temp()?;
                pending.io(write_header(&mut out, &self.encryptor.nonce_prefix()))?;
                pending.io(out.write_all(&sealed))?;
                self.state = WriterState::File { out, pending };
            }
        }
        let state = &mut self.state;
        self.encryptor.update(bytes, |sealed| state.take(sealed))
    }

    /// Completes the data: seals the last segment; inline data needs no I/O; a file is
    /// synced, renamed into its final path and its directory synced, so it is durable
    /// before metadata points to it.
    pub fn finish(mut self) -> Result<WrittenData> {
        let last = self.encryptor.finish()?;
        self.state.take(last)?;
        let size = self.encryptor.plain_len();
        let stats = &self.shared.stats;
        let content = match self.state {
            WriterState::Buffer(buffer) => Content::Inline(buffer),
            WriterState::File { out, pending } => {
                pending.io(out.sync_all())?;
                drop(out);
                pending.io(pending.publish())?;
                stats.count_file_written(&pending.location.array, HEADER_LEN + sealed_len(size));
                Content::File(pending)
            }
        };
        stats.count_segments(AeadOp::Seal, segment_count(size));
        Ok(WrittenData {
            size,
            tenant: self.tenant,
            bucket: self.bucket,
            binding: self.binding,
            dek: self.dek,
            customer_key_check: self.customer_key_check,
            nonce: self.encryptor.nonce_prefix(),
            content,
        })
    }
}

/// A part's sealed data, durable but not yet referenced by any record. Dropping it without
/// committing it (a failed or abandoned request) removes the file.
pub struct WrittenData {
    size: u64,
    tenant: TenantId,
    bucket: BucketId,
    binding: Binding,
    dek: Dek,
    customer_key_check: Option<CustomerKeyCheck>,
    nonce: NoncePrefix,
    content: Content,
}

enum Content {
    Inline(Vec<u8>),
    File(PendingFile),
}

/// Written data taken apart to be recorded.
pub(crate) struct DataToCommit {
    /// Plaintext bytes.
    pub size: u64,
    pub dek: Dek,
    /// For SSE-C data: the check of its customer key.
    pub customer_key_check: Option<CustomerKeyCheck>,
    pub nonce: NoncePrefix,
    pub location: DataLocation,
    /// For a file, the commit hook.
    pub pending: Option<PendingFile>,
}

impl WrittenData {
    /// Plaintext bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the data stays in the record rather than in a file.
    pub fn is_inline(&self) -> bool {
        matches!(self.content, Content::Inline(_))
    }

    /// Its parts, to record. `ScopeMismatch` if the data was written under another
    /// tenant's scope, `TargetMismatch` if for another bucket, object or part.
    pub(crate) fn into_commit(
        self,
        tenant: TenantId,
        bucket: BucketId,
        binding: Binding,
    ) -> Result<DataToCommit> {
        if self.tenant != tenant {
            return Err(Error::ScopeMismatch);
        }
        if self.bucket != bucket || self.binding != binding {
            return Err(Error::TargetMismatch);
        }
        let (location, pending) = match self.content {
            Content::Inline(bytes) => (DataLocation::Inline(bytes), None),
            Content::File(pending) => (
                DataLocation::File {
                    array: pending.location.array.clone(),
                    file: pending.location.file,
                },
                Some(pending),
            ),
        };
        Ok(DataToCommit {
            size: self.size,
            dek: self.dek,
            customer_key_check: self.customer_key_check,
            nonce: self.nonce,
            location,
            pending,
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
        let mut batch = Batch::new();
        batch.put(Cf::Gc, keys::gc(file), intent.encode()?);
        Store::from_shared(&shared).write_blind(batch, Durability::Synced)?;
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

    fn create_temp(&self) -> Result<File> {
        let dir = arrays::temp_dir(&self.array_root, self.location.tenant);
        self.io(ensure_dir(&self.array_root, &dir))?;
        let file = self.io(OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.temp_path()))?;
        Ok(file)
    }

    /// Renames the synced temp file into its final path and makes the rename durable.
    fn publish(&self) -> io::Result<()> {
        let dir = arrays::file_dir(&self.array_root, self.location.tenant, self.location.file);
        ensure_dir(&self.array_root, &dir)?;
        std::fs::rename(self.temp_path(), self.final_path())?;
        sync_dir(&dir)
    }

    /// Adds the intent's removal to the transaction that makes the file reachable. The
    /// transaction depends on the intent: if the collector claimed it as an orphan's (this
    /// node looked dead), the commit fails instead of referencing a removed file.
    pub fn commit_in(&self, tx: &mut Tx<'_>) -> Result<()> {
        let key = keys::gc(self.location.file);
        let intent = tx.get_for_write(Cf::Gc, &key)?;
        let pending = match intent {
            Some(value) => matches!(GcEntry::decode(&value)?.state, GcState::Pending { .. }),
            None => false,
        };
        if !pending {
            return Err(Error::Io(io::Error::other(
                "the data file's intent was collected: this node was taken for dead",
            )));
        }
        tx.delete(Cf::Gc, key);
        Ok(())
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
            let mut batch = Batch::new();
            batch.delete(Cf::Gc, key);
            let store = Store::from_shared(&self.shared);
            if let Err(err) = store.write_blind(batch, Durability::Buffered) {
                tracing::warn!(%err, "cannot drop the intent of an abandoned data file");
            }
        }
    }
}
