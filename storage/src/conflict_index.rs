//! Optimistic concurrency control for the stores that live in this process (RocksDB and
//! memory): serializable transactions by backward validation, as FoundationDB's resolver
//! does it. A transaction records what it read (keys, and key ranges with the absent keys
//! in them); its commit is refused if any transaction that committed after it began wrote
//! into that read set. Writes are never blocked and never wait for each other.
//!
//! Why by hand: RocksDB's own transactional databases detect conflicts on single keys only,
//! so a range read racing an insert (a bucket deleted while an object is written into it)
//! would go unnoticed; and they count a merge (our counter additions) as a conflicting
//! write, so every write of a tenant would conflict on its usage counter.
//!
//! Commit order: a commit takes the next sequence number and records its keys under it
//! while holding the index's mutex for the validation only; the write itself (a synced
//! RocksDB batch, grouped with concurrent ones) happens after, outside the mutex. A
//! transaction begins at the *watermark*, the highest number below which every commit is
//! applied, so everything it can have missed carries a higher number and is validated
//! against. Reading a value newer than the watermark only causes a spurious conflict.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::meta_store::{Batch, Cf};

/// A key of a key space, as the index records writes.
type WrittenKey = (Cf, Vec<u8>);

/// What a transaction read, to validate at its commit.
#[derive(Debug, Default)]
pub(crate) struct ReadSet {
    keys: Vec<(Cf, Vec<u8>)>,
    /// `(cf, start, end)`: every key `>= start` and `< end` (no end: to the last key).
    ranges: Vec<(Cf, Vec<u8>, Option<Vec<u8>>)>,
}

impl ReadSet {
    pub fn key(&mut self, cf: Cf, key: &[u8]) {
        self.keys.push((cf, key.to_vec()));
    }

    /// A scan of `[start, end)` that returned `found` keys out of at most `limit`: when it
    /// stopped at the limit, the range read ends just after the last key returned.
    pub fn scan(
        &mut self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
        found: &[(Vec<u8>, Vec<u8>)],
    ) {
        let end = match found.last() {
            Some((last, _)) if found.len() >= limit => {
                let mut after = last.clone();
                after.push(0);
                Some(after)
            }
            _ => end.map(<[u8]>::to_vec),
        };
        self.ranges.push((cf, start.to_vec(), end));
    }
}

/// The commits of the last moments, by key, and the transactions still open.
#[derive(Default)]
pub(crate) struct ConflictIndex {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    last_assigned: u64,
    /// Every commit numbered up to here is applied.
    watermark: u64,
    /// Commits numbered but not yet applied.
    applying: BTreeSet<u64>,
    /// Open transactions by the number they began at.
    open: BTreeMap<u64, usize>,
    /// The last commit that wrote each key, for keys written since the oldest open
    /// transaction began.
    writes: BTreeMap<WrittenKey, u64>,
    /// The same entries in commit order, to forget them when no transaction needs them.
    by_commit: VecDeque<(u64, Vec<WrittenKey>)>,
}

/// An open transaction's place in the commit order; leaving it (drop) lets the index forget
/// what only it could conflict with.
pub(crate) struct Snapshot<'a> {
    index: &'a ConflictIndex,
    pub begun_at: u64,
}

impl Drop for Snapshot<'_> {
    fn drop(&mut self) {
        let mut state = self.index.lock();
        if let Some(count) = state.open.get_mut(&self.begun_at) {
            *count -= 1;
            if *count == 0 {
                state.open.remove(&self.begun_at);
            }
        }
        state.forget_unneeded();
    }
}

/// One transaction of a store validated by the index: what it read, and its place in the
/// commit order. The stores' transactions record their reads here and commit through it.
pub(crate) struct Tracked<'a> {
    snapshot: Snapshot<'a>,
    reads: ReadSet,
}

impl<'a> Tracked<'a> {
    /// Begins a transaction; take the store's read snapshot after this.
    pub fn begin(index: &'a ConflictIndex) -> Self {
        Self {
            snapshot: index.begin(),
            reads: ReadSet::default(),
        }
    }

    /// See [`ReadSet::key`].
    pub fn read_key(&mut self, cf: Cf, key: &[u8]) {
        self.reads.key(cf, key);
    }

    /// See [`ReadSet::scan`].
    pub fn read_scan(
        &mut self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
        found: &[(Vec<u8>, Vec<u8>)],
    ) {
        self.reads.scan(cf, start, end, limit, found);
    }

    /// Validates the reads and, if nothing read was changed since the transaction began,
    /// has `apply` write `batch` (not called for an empty one); `Conflict` otherwise.
    pub fn commit(self, batch: Batch, apply: impl FnOnce(Batch) -> Result<()>) -> Result<()> {
        let index = self.snapshot.index;
        let Some(applying) = index.validate(&self.snapshot, &self.reads, &batch)? else {
            return Ok(());
        };
        let applied = apply(batch);
        drop(applying);
        applied
    }
}

/// A validated commit that holds its number until its writes are applied.
pub(crate) struct Applying<'a> {
    index: &'a ConflictIndex,
    number: u64,
}

impl Drop for Applying<'_> {
    /// Applied, or failed to apply: either way the watermark may pass it. (A failed write
    /// stays recorded as written, which can only cause spurious conflicts.)
    fn drop(&mut self) {
        let mut state = self.index.lock();
        state.applying.remove(&self.number);
        state.watermark = match state.applying.first() {
            Some(first) => first - 1,
            None => state.last_assigned,
        };
        state.forget_unneeded();
    }
}

impl ConflictIndex {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is only changed by code that cannot panic half-way.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Begins a transaction. Take the store's read snapshot after this returns.
    pub fn begin(&self) -> Snapshot<'_> {
        let mut state = self.lock();
        let begun_at = state.watermark;
        *state.open.entry(begun_at).or_default() += 1;
        Snapshot {
            index: self,
            begun_at,
        }
    }

    /// Validates `reads` of the transaction begun at `snapshot` and, when nothing it read
    /// was written since, numbers the commit of `batch`. The caller applies the batch, then
    /// drops the returned value. `Conflict` otherwise. A commit without writes needs no
    /// number, but is validated all the same (its reads must have been consistent).
    pub fn validate(
        &self,
        snapshot: &Snapshot<'_>,
        reads: &ReadSet,
        batch: &Batch,
    ) -> Result<Option<Applying<'_>>> {
        let mut state = self.lock();
        let since = snapshot.begun_at;
        let newer = |number: &u64| *number > since;
        for key in &reads.keys {
            if state.writes.get(key).is_some_and(newer) {
                return Err(Error::Conflict);
            }
        }
        for (cf, start, end) in &reads.ranges {
            if end.as_ref().is_some_and(|end| start >= end) {
                continue;
            }
            let lower = Bound::Included((*cf, start.clone()));
            let upper = match end {
                Some(end) => Bound::Excluded((*cf, end.clone())),
                None => Bound::Unbounded,
            };
            let conflict = state
                .writes
                .range((lower, upper))
                .take_while(|((written_cf, _), _)| written_cf == cf)
                .any(|(_, n)| newer(n));
            if conflict {
                return Err(Error::Conflict);
            }
        }
        if batch.ops.is_empty() {
            return Ok(None);
        }
        state.last_assigned += 1;
        let number = state.last_assigned;
        state.applying.insert(number);
        let keys: Vec<WrittenKey> = batch
            .ops
            .iter()
            .map(|op| (op.cf(), op.key().to_vec()))
            .collect();
        for key in &keys {
            state.writes.insert(key.clone(), number);
        }
        state.by_commit.push_back((number, keys));
        Ok(Some(Applying {
            index: self,
            number,
        }))
    }

    /// Entries the index holds, for tests of its forgetting.
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.lock().writes.len()
    }
}

impl State {
    /// Forgets the writes no open or future transaction can conflict with: those numbered
    /// at or below both the oldest open transaction's start and the watermark.
    fn forget_unneeded(&mut self) {
        let horizon = self
            .open
            .first_key_value()
            .map_or(self.watermark, |(oldest, _)| (*oldest).min(self.watermark));
        while self
            .by_commit
            .front()
            .is_some_and(|(number, _)| *number <= horizon)
        {
            let Some((number, keys)) = self.by_commit.pop_front() else {
                break;
            };
            for key in keys {
                if self.writes.get(&key) == Some(&number) {
                    self.writes.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A transaction that writes `key` blindly, committed and applied at once.
    fn commit_write(index: &ConflictIndex, cf: Cf, key: &[u8]) {
        let writer = index.begin();
        drop(
            index
                .validate(&writer, &ReadSet::default(), &batch_writing(cf, key))
                .unwrap(),
        );
    }

    fn batch_writing(cf: Cf, key: &[u8]) -> Batch {
        let mut batch = Batch::new();
        batch.put(cf, key, b"v".to_vec());
        batch
    }

    #[test]
    fn a_key_written_after_the_reader_began_conflicts() {
        let index = ConflictIndex::default();
        let reader = index.begin();
        commit_write(&index, Cf::Objects, b"k");
        let mut reads = ReadSet::default();
        reads.key(Cf::Objects, b"k");
        let batch = batch_writing(Cf::Objects, b"other");
        assert!(matches!(
            index.validate(&reader, &reads, &batch),
            Err(Error::Conflict)
        ));
        // The same read in a transaction begun after that commit passes.
        let later = index.begin();
        assert!(index.validate(&later, &reads, &batch).is_ok());
    }

    #[test]
    fn an_insert_into_a_scanned_range_conflicts_and_one_outside_does_not() {
        let index = ConflictIndex::default();
        let reader = index.begin();
        commit_write(&index, Cf::Objects, b"b/2");
        let mut inside = ReadSet::default();
        inside.scan(Cf::Objects, b"b/", Some(b"b0"), 10, &[]);
        let mut outside = ReadSet::default();
        outside.scan(Cf::Objects, b"c/", Some(b"c0"), 10, &[]);
        let mut other_space = ReadSet::default();
        other_space.scan(Cf::Uploads, b"b/", None, 10, &[]);
        let batch = Batch::new();
        assert!(matches!(
            index.validate(&reader, &inside, &batch),
            Err(Error::Conflict)
        ));
        assert!(index.validate(&reader, &outside, &batch).is_ok());
        assert!(index.validate(&reader, &other_space, &batch).is_ok());
    }

    #[test]
    fn a_scan_stopped_at_its_limit_only_covers_what_it_returned() {
        let index = ConflictIndex::default();
        let reader = index.begin();
        commit_write(&index, Cf::Parts, b"p9");
        let found = vec![(b"p1".to_vec(), Vec::new())];
        let mut reads = ReadSet::default();
        reads.scan(Cf::Parts, b"p", Some(b"q"), 1, &found);
        assert!(index.validate(&reader, &reads, &Batch::new()).is_ok());
    }

    #[test]
    fn a_commit_not_yet_applied_keeps_later_transactions_behind_it() {
        let index = ConflictIndex::default();
        let writer = index.begin();
        let applying = index
            .validate(
                &writer,
                &ReadSet::default(),
                &batch_writing(Cf::Buckets, b"x"),
            )
            .unwrap();
        // Begun while the write is in flight: it may or may not see it, so a read of it
        // must be validated against it.
        let reader = index.begin();
        drop(applying);
        let mut reads = ReadSet::default();
        reads.key(Cf::Buckets, b"x");
        assert!(matches!(
            index.validate(&reader, &reads, &Batch::new()),
            Err(Error::Conflict)
        ));
    }

    #[test]
    fn writes_are_forgotten_once_no_open_transaction_predates_them() {
        let index = ConflictIndex::default();
        let old = index.begin();
        for i in 0u8..10 {
            let tx = index.begin();
            drop(
                index
                    .validate(&tx, &ReadSet::default(), &batch_writing(Cf::Objects, &[i]))
                    .unwrap(),
            );
        }
        assert_eq!(index.remembered(), 10);
        drop(old);
        assert_eq!(index.remembered(), 0);
    }
}
