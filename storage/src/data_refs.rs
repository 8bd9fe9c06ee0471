//! Data files shared between objects, and when one may be removed.
//!
//! A whole-object copy within a tenant that keeps the data key (see
//! [`crate::Store::copy_object`]) shares its source's data instead of re-encrypting it: the
//! copy's record points to the source's data files (and repeats its sealed inline bytes),
//! with the source's DEK wrapped again for the copy's own context. A data file can then be
//! referenced by several object records, and must stay until the last one is gone.
//!
//! `refs` (tenant id | file id) counts, for a file that has ever been shared, its references
//! beyond the first. It changes only by counter additions, in the transaction that writes
//! or deletes a referencing record. The invariant:
//!
//! > A file with a counter `c` is referenced by exactly `1 + c` object records; a file
//! > without one by at most one. Once no record references a file, none ever will again.
//!
//! It holds through every change, whatever the interleaving, because each of them is one
//! serializable transaction over the records and counters it reads:
//!
//! - A copy adds one reference per file of its source, in a transaction that reads the
//!   source record and finds it still the version that was copied. So the source's own
//!   reference exists when the increment commits: a file no record references gains none,
//!   and a copy never commits against a source deleted or overwritten meanwhile (that
//!   change would conflict with its read).
//! - Releasing a reference (a delete, an overwrite, a tenant purge) reads the counter. With
//!   none, the releasing record is the file's only reference, and no copy can add one (it
//!   would have read the releasing record as its source, and conflict): the file is queued
//!   for collection under its own id, as an unshared file always was. With a counter, the
//!   release subtracts one and queues a release entry under a key of its own (file id |
//!   random id), so that two releases of one file never overwrite each other's entry.
//! - Within one commit, a file both gained and released (an object copied onto a key that
//!   already shares the file, or onto itself) nets out and is left alone.
//! - Garbage collection removes a queued file only if it has no counter or its counter says
//!   no reference is left, reading both in one transaction; otherwise it drops the entry
//!   and keeps the file (the last release queues it again). Removing the file deletes its
//!   counter with the entry; a crash before that commit only repeats the removal.
//! - A crash loses nothing: the counters, the queue entries and the records change in one
//!   synced commit; a copy writes no file, so it leaves no intent behind.
//!
//! Inline data is copied along with the record (the same sealed bytes under the same DEK and
//! nonce prefix), so it needs no counting. Parts of uploads in progress are never shared.

use coffre_crypto::{ObjectId, TenantId};

use crate::error::Result;
use crate::keys;
use crate::meta_store::{decode_counters, Cf, Tx};
use crate::objects::queue_locations;
use crate::records::{DataLocation, FileLocation, GcEntry, GcState, Record};
use crate::store::Store;

impl Store {
    /// Adds to `tx` the reference changes of one record commit: a reference to every file
    /// in `gained` (shared with a live record), and the release of every file in `released`
    /// (the record replaced or deleted). A file in both is left alone.
    pub(crate) fn change_refs<'a>(
        &self,
        tx: &mut Tx<'_>,
        tenant: TenantId,
        gained: impl IntoIterator<Item = &'a DataLocation>,
        released: impl IntoIterator<Item = &'a DataLocation>,
    ) -> Result<()> {
        let gained: Vec<&DataLocation> = gained.into_iter().filter(|l| is_file(l)).collect();
        let released: Vec<&DataLocation> = released.into_iter().filter(|l| is_file(l)).collect();
        for location in &gained {
            if let DataLocation::File { file, .. } = location {
                if !released.contains(location) {
                    tx.add(Cf::Refs, keys::refs(tenant, *file), &[1]);
                }
            }
        }
        for location in released {
            if gained.contains(&location) {
                continue;
            }
            let DataLocation::File { array, file } = location else {
                continue;
            };
            let counter = keys::refs(tenant, *file);
            if tx.get(Cf::Refs, &counter)?.is_none() {
                queue_locations(tx, tenant, [location])?;
                continue;
            }
            tx.add(Cf::Refs, counter, &[-1]);
            let entry = GcEntry {
                location: FileLocation {
                    tenant,
                    array: array.clone(),
                    file: *file,
                },
                state: GcState::Queued,
            };
            tx.put(
                Cf::Gc,
                keys::gc_release(*file, ObjectId::random()),
                entry.encode()?,
            );
        }
        Ok(())
    }

    /// What the reference counter says of a queued file: `Referenced` while a record still
    /// points to it, else whether there is a counter to delete with the file.
    /// Read outside any transaction: once released, a file never gains a reference again,
    /// so what this finds for a queued file cannot change under the collector.
    pub(crate) fn file_refs(&self, location: &FileLocation) -> Result<FileRefs> {
        let key = keys::refs(location.tenant, location.file);
        Ok(match self.meta().get(Cf::Refs, &key)? {
            None => FileRefs::Unshared,
            Some(value) => {
                let beyond_first = decode_counters(&value).first().copied().unwrap_or(0);
                if beyond_first >= 0 {
                    FileRefs::Referenced
                } else {
                    FileRefs::Released(key)
                }
            }
        })
    }
}

/// See [`Store::file_refs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileRefs {
    /// Never shared: its queue entry means no record points to it.
    Unshared,
    /// Shared, and still referenced: keep it.
    Referenced,
    /// Shared, and every reference is gone: remove it, then its counter (this key).
    Released(Vec<u8>),
}

fn is_file(location: &DataLocation) -> bool {
    matches!(location, DataLocation::File { .. })
}
