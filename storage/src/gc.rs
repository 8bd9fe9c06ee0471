//! Garbage collection: removes data files that no record references any more, either
//! queued by the batch that superseded them or left behind by a process that died while
//! writing them. A queued file shared between objects is removed only once its reference
//! counter says the last of them is gone (see `data_refs`).

use std::io;
use std::path::PathBuf;

use coffre_crypto::MaintenanceScope;

use crate::arrays;
use crate::cluster::Lease;
use crate::data_refs::FileRefs;
use crate::error::Result;
use crate::meta_store::{Batch, Cf, Durability};
use crate::records::{GcEntry, GcState, Record};
use crate::stats::GcBacklog;
use crate::store::Store;

/// Deletions of `gc` records are flushed in batches of this many.
const DELETE_BATCH: usize = 1000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcStats {
    pub files_removed: u64,
    pub bytes_removed: u64,
}

impl Store {
    /// One pass over the queue. Intents of this process (writes in progress) are left
    /// alone; entries on an array missing from the configuration are kept for later. What
    /// the pass found and removed is counted in [`Store::stats`].
    pub fn collect_garbage(&self, maint: &MaintenanceScope, lease: &Lease) -> Result<GcStats> {
        let mut backlog = GcBacklog::default();
        let result = self
            .collect_pass(maint, lease, &mut backlog)
            .and_then(|stats| {
                // Under the same lease: one node at a time folds.
                let folded = self.meta().fold_counters()?;
                if folded > 0 {
                    tracing::debug!(task = maint.task(), folded, "counter additions folded");
                }
                Ok(stats)
            });
        self.shared.stats.count_gc_pass(&result, &backlog);
        result
    }

    fn collect_pass(
        &self,
        maint: &MaintenanceScope,
        lease: &Lease,
        backlog: &mut GcBacklog,
    ) -> Result<GcStats> {
        let mut stats = GcStats::default();
        // Intents of a boot whose node still beats are writes in progress, on this node or
        // another; the others are orphans.
        let live = self.live_boot_ids()?;
        let mut done = Batch::new();
        let mut cursor = self.meta().cursor(Cf::Gc, None)?;
        cursor.seek(&[]);
        while let Some((key, value)) = cursor.next_entry()? {
            let entry = GcEntry::decode(&value)?;
            let mut counter = None;
            let candidates = match &entry.state {
                GcState::Pending { boot_id } if live.contains(boot_id) => {
                    backlog.in_progress += 1;
                    continue;
                }
                GcState::Pending { .. } | GcState::Abandoned => {
                    backlog.orphaned += 1;
                    vec![temp_path(self, &entry), final_path(self, &entry)]
                }
                GcState::Queued => {
                    backlog.queued += 1;
                    match self.file_refs(&entry.location)? {
                        // Another object still shares it: its last release queues it again.
                        FileRefs::Referenced => {
                            done.delete(Cf::Gc, key);
                            continue;
                        }
                        FileRefs::Released(key) => counter = Some(key),
                        FileRefs::Unshared => {}
                    }
                    vec![final_path(self, &entry)]
                }
            };
            let Some(candidates) = candidates.into_iter().collect::<Option<Vec<PathBuf>>>() else {
                tracing::warn!(task = maint.task(), array = %entry.location.array, "gc entry on an unknown array kept");
                backlog.retained += 1;
                continue;
            };
            if matches!(entry.state, GcState::Pending { .. }) {
                // The intent is claimed first (rewritten as abandoned), in a transaction that
                // its writer's commit (which checks the intent) conflicts with: either that
                // write commits and the file is kept, or it fails and the file goes. The
                // entry stays until the files are gone: a crash or a failed removal leaves
                // an abandoned entry, which the next pass removes again.
                if !self.claim_orphan(lease, &key, &value, &entry)? {
                    backlog.orphaned -= 1;
                    continue;
                }
            }
            if remove_files(&candidates, &mut stats) {
                done.delete(Cf::Gc, key);
                if let Some(counter) = counter {
                    done.delete(Cf::Refs, counter);
                }
            } else {
                backlog.retained += 1;
            }
            if done.ops.len() >= DELETE_BATCH {
                self.commit_collected(lease, std::mem::take(&mut done))?;
            }
        }
        drop(cursor);
        if !done.ops.is_empty() {
            self.commit_collected(lease, done)?;
        }
        Ok(stats)
    }
}

impl Store {
    /// Deletes the `gc` entries of `done`, if this node still holds the collector's lease.
    fn commit_collected(&self, lease: &Lease, done: Batch) -> Result<()> {
        self.transact(Durability::Buffered, |tx| {
            lease.check(tx)?;
            tx.write(done.clone());
            Ok(())
        })
    }

    /// Marks the orphan intent at `key` abandoned if it is still `value` (`entry`); whether
    /// it did.
    fn claim_orphan(
        &self,
        lease: &Lease,
        key: &[u8],
        value: &[u8],
        entry: &GcEntry,
    ) -> Result<bool> {
        let abandoned = GcEntry {
            location: entry.location.clone(),
            state: GcState::Abandoned,
        }
        .encode()?;
        self.transact(Durability::Synced, |tx| {
            lease.check(tx)?;
            if tx.get_for_write(Cf::Gc, key)?.as_deref() != Some(value) {
                return Ok(false);
            }
            tx.put(Cf::Gc, key.to_vec(), abandoned.clone());
            Ok(true)
        })
    }
}

fn final_path(store: &Store, entry: &GcEntry) -> Option<PathBuf> {
    let array = store.shared.arrays.by_name(&entry.location.array)?;
    Some(arrays::file_path(
        &array.path,
        entry.location.tenant,
        entry.location.file,
    ))
}

fn temp_path(store: &Store, entry: &GcEntry) -> Option<PathBuf> {
    let array = store.shared.arrays.by_name(&entry.location.array)?;
    Some(arrays::temp_path(
        &array.path,
        entry.location.tenant,
        entry.location.file,
    ))
}

/// Removes each file that exists; `false` if one could not be removed.
fn remove_files(paths: &[PathBuf], stats: &mut GcStats) -> bool {
    let mut all_gone = true;
    for path in paths {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        match std::fs::remove_file(path) {
            Ok(()) => {
                stats.files_removed += 1;
                stats.bytes_removed += size;
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => {
                tracing::warn!(path = %path.display(), %err, "cannot remove data file");
                all_gone = false;
            }
        }
    }
    all_gone
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    use crate::keys;
    use crate::records::FileLocation;

    use coffre_crypto::{ObjectId, TenantId};

    fn store(dir: &std::path::Path) -> Store {
        crate::store::test_store(dir, "a")
    }

    /// A file as a writer would leave it, with its intent recorded under `boot_id`.
    fn leave_pending(store: &Store, boot_id: [u8; 16], temp: bool) -> PathBuf {
        let location = FileLocation {
            tenant: TenantId::random(),
            array: "a".into(),
            file: ObjectId::random(),
        };
        let entry = GcEntry {
            location: location.clone(),
            state: GcState::Pending { boot_id },
        };
        let path = if temp {
            temp_path(store, &entry)
        } else {
            final_path(store, &entry)
        }
        .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"orphan").unwrap();
        store
            .put_raw(
                Cf::Gc,
                &keys::gc(location.file),
                &entry.encode().unwrap(),
                Durability::Synced,
            )
            .unwrap();
        path
    }

    #[test]
    fn intents_of_a_dead_process_are_collected_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let dead = [7u8; 16];
        let orphan_temp = leave_pending(&store, dead, true);
        let orphan_final = leave_pending(&store, dead, false);
        let live = leave_pending(&store, store.shared.boot_id, true);

        let stats = store
            .collect_garbage(
                &MaintenanceScope::new("test"),
                &crate::cluster::test_lease(&store, "gc"),
            )
            .unwrap();
        assert_eq!(
            stats,
            GcStats {
                files_removed: 2,
                bytes_removed: 12
            }
        );
        assert!(!orphan_temp.exists() && !orphan_final.exists());
        assert!(live.exists(), "a write in progress is not touched");
        let found = GcBacklog {
            orphaned: 2,
            in_progress: 1,
            ..GcBacklog::default()
        };
        assert_eq!(store.stats().gc().backlog, found);

        // The dead intents are gone; the live one is still queued.
        let stats = store
            .collect_garbage(
                &MaintenanceScope::new("test"),
                &crate::cluster::test_lease(&store, "gc"),
            )
            .unwrap();
        assert_eq!(stats, GcStats::default());
        let figures = store.stats().gc();
        assert_eq!((figures.passes, figures.failed_passes), (2, 0));
        assert_eq!((figures.files_removed, figures.bytes_removed), (2, 12));
        let left = GcBacklog {
            in_progress: 1,
            ..GcBacklog::default()
        };
        assert_eq!(figures.backlog, left);
        let mut cursor = store.meta().cursor(Cf::Gc, None).unwrap();
        cursor.seek(&[]);
        assert!(cursor.next_entry().unwrap().is_some());
        assert!(cursor.next_entry().unwrap().is_none());
    }

    /// A pass cut short after claiming an orphan (a crash before the removal, or a file that
    /// could not be removed) leaves the entry, abandoned: the next pass removes the file.
    #[test]
    fn an_orphan_claimed_but_not_removed_is_removed_by_the_next_pass() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let orphan = leave_pending(&store, [7u8; 16], true);
        let mut cursor = store.meta().cursor(Cf::Gc, None).unwrap();
        cursor.seek(&[]);
        let (key, value) = cursor.next_entry().unwrap().unwrap();
        drop(cursor);
        let lease = crate::cluster::test_lease(&store, "gc");
        let entry = GcEntry::decode(&value).unwrap();
        // The claim alone, as a pass killed right after it leaves it.
        assert!(store.claim_orphan(&lease, &key, &value, &entry).unwrap());
        assert!(orphan.exists());
        let claimed = GcEntry::decode(&store.meta().get(Cf::Gc, &key).unwrap().unwrap()).unwrap();
        assert_eq!(claimed.state, GcState::Abandoned);
        // A second claim of the same intent finds it changed.
        assert!(!store.claim_orphan(&lease, &key, &value, &entry).unwrap());

        let stats = store
            .collect_garbage(&MaintenanceScope::new("test"), &lease)
            .unwrap();
        assert_eq!(stats.files_removed, 1);
        assert!(!orphan.exists());
        assert_eq!(store.meta().get(Cf::Gc, &key).unwrap(), None);
    }
}
