//! ListObjects (v1 and v2 share it): a seek and a forward scan in key order. With a
//! delimiter, each common prefix is emitted once and the scan seeks past all its keys, so
//! the cost follows the size of the result, not of the bucket.

use std::time::SystemTime;

use coffre_crypto::TenantScope;

use crate::error::{Error, Result};
use crate::keys;
use crate::meta_store::Cf;
use crate::records::{BucketRecord, Record};
use crate::sealed_records::StoredObject;
use crate::stats::{CountIntegrity, IntegrityKind};
use crate::store::Store;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub prefix: String,
    /// An empty delimiter is no delimiter.
    pub delimiter: Option<String>,
    /// Exclusive: v1 `marker`, v2 `start-after` or continuation token.
    pub start_after: Option<String>,
    /// Objects and common prefixes together.
    pub max_keys: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSummary {
    pub key: String,
    pub size: u64,
    /// Without quotes.
    pub etag: String,
    pub last_modified: SystemTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListEntry {
    Object(ObjectSummary),
    CommonPrefix(String),
}

impl ListEntry {
    /// The key or the prefix: what a continuation resumes after.
    pub fn name(&self) -> &str {
        match self {
            ListEntry::Object(summary) => &summary.key,
            ListEntry::CommonPrefix(prefix) => prefix,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// In key order, common prefixes interleaved with objects.
    pub entries: Vec<ListEntry>,
    pub is_truncated: bool,
    /// When truncated: the last key or prefix returned, to pass back as `start_after`.
    pub next_marker: Option<String>,
}

/// The common prefix `key` rolls up into: `prefix` plus everything up to and including the
/// first `delimiter` after it.
pub(crate) fn common_prefix<'k>(
    key: &'k str,
    prefix: &str,
    delimiter: Option<&str>,
) -> Option<&'k str> {
    let delimiter = delimiter.filter(|d| !d.is_empty())?;
    let rest = key.get(prefix.len()..)?;
    rest.find(delimiter)
        .map(|at| &key[..prefix.len() + at + delimiter.len()])
}

/// Whether a continuation marker has already passed this common prefix: the prefix itself
/// was returned, or the marker lies inside it (S3 emits a prefix only before its first key).
pub(crate) fn prefix_passed(common_prefix: &str, marker: Option<&str>) -> bool {
    marker.is_some_and(|m| common_prefix <= m)
}

impl Store {
    pub fn list_objects(
        &self,
        scope: &TenantScope,
        bucket: &BucketRecord,
        query: &ListQuery,
    ) -> Result<ListPage> {
        let mut page = ListPage::default();
        if query.max_keys == 0 {
            return Ok(page);
        }
        let base = keys::bucket_prefix(scope.tenant_id(), bucket.id);
        let scan_prefix = keys::object(scope.tenant_id(), bucket.id, query.prefix.as_bytes());
        let start_after = query.start_after.as_deref();
        let delimiter = query.delimiter.as_deref();

        let mut cursor = self
            .meta()
            .cursor(Cf::Objects, keys::prefix_end(&scan_prefix))?;
        match start_after {
            Some(marker) if marker > query.prefix.as_str() => {
                cursor.seek(&keys::object(
                    scope.tenant_id(),
                    bucket.id,
                    marker.as_bytes(),
                ));
            }
            _ => cursor.seek(&scan_prefix),
        }

        let mut found = Vec::new();
        while let Some((db_key, value)) = cursor.next_entry()? {
            if !db_key.starts_with(&scan_prefix) {
                break;
            }
            let key = std::str::from_utf8(&db_key[base.len()..])
                .map_err(|_| Error::Corrupt("object key is not UTF-8".into()))?;
            if start_after.is_some_and(|marker| key <= marker) {
                continue;
            }
            let entry = match common_prefix(key, &query.prefix, delimiter) {
                Some(prefix) => {
                    let prefix = prefix.to_owned();
                    match keys::prefix_end(&keys::object(
                        scope.tenant_id(),
                        bucket.id,
                        prefix.as_bytes(),
                    )) {
                        Some(end) => cursor.seek(&end),
                        None => break,
                    }
                    if prefix_passed(&prefix, start_after) {
                        continue;
                    }
                    if found.len() == query.max_keys {
                        page.is_truncated = true;
                        break;
                    }
                    Found::CommonPrefix(prefix)
                }
                None => {
                    if found.len() == query.max_keys {
                        page.is_truncated = true;
                        break;
                    }
                    Found::Object {
                        key: key.to_owned(),
                        value,
                    }
                }
            };
            found.push(entry);
        }
        page.entries = self.open_entries(scope, bucket, found)?;
        if page.is_truncated {
            page.next_marker = page.entries.last().map(|e| e.name().to_owned());
        }
        Ok(page)
    }

    /// The listed objects' ETags are sealed under each object's own DEK: opening them (a
    /// DEK unwrap, an HKDF and an AES-GCM open per object) is most of a listing's cost, so a
    /// large page is opened on several threads, in order.
    fn open_entries(
        &self,
        scope: &TenantScope,
        bucket: &BucketRecord,
        found: Vec<Found>,
    ) -> Result<Vec<ListEntry>> {
        let threads = if found.len() < PARALLEL_OPEN_MIN {
            1
        } else {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(MAX_OPEN_THREADS)
        };
        if threads <= 1 {
            return found
                .into_iter()
                .map(|f| self.open_entry(scope, bucket, f))
                .collect();
        }
        let chunk = found.len().div_ceil(threads);
        let mut chunks = Vec::with_capacity(threads);
        let mut rest = found;
        while rest.len() > chunk {
            let tail = rest.split_off(chunk);
            chunks.push(rest);
            rest = tail;
        }
        chunks.push(rest);
        let open_chunk = |chunk: Vec<Found>| -> Result<Vec<ListEntry>> {
            chunk
                .into_iter()
                .map(|f| self.open_entry(scope, bucket, f))
                .collect()
        };
        std::thread::scope(|s| {
            let mut chunks = chunks.into_iter();
            let first = chunks.next().unwrap_or_default();
            let others: Vec<_> = chunks.map(|c| s.spawn(move || open_chunk(c))).collect();
            let mut entries = open_chunk(first)?;
            for handle in others {
                let opened = handle
                    .join()
                    .map_err(|_| Error::Corrupt("a listing thread panicked".into()))??;
                entries.extend(opened);
            }
            Ok(entries)
        })
    }

    fn open_entry(
        &self,
        scope: &TenantScope,
        bucket: &BucketRecord,
        found: Found,
    ) -> Result<ListEntry> {
        let (key, value) = match found {
            Found::CommonPrefix(prefix) => return Ok(ListEntry::CommonPrefix(prefix)),
            Found::Object { key, value } => (key, value),
        };
        let record = StoredObject::decode(&value)?;
        let dek = self
            .unwrap_dek(scope.tenant_id(), bucket.id, &key, record.id, &record.dek)
            .count_integrity(self.stats(), IntegrityKind::WrappedDek)?;
        let etag = record
            .open_etag(&dek.value_key()?)
            .count_integrity(self.stats(), IntegrityKind::SealedValue)?;
        Ok(ListEntry::Object(ObjectSummary {
            size: record.size(),
            etag,
            last_modified: record.last_modified,
            key,
        }))
    }
}

/// A page entry found by the scan, its ETag not opened yet.
enum Found {
    Object { key: String, value: Vec<u8> },
    CommonPrefix(String),
}

/// Pages of fewer entries are opened on the calling thread alone.
const PARALLEL_OPEN_MIN: usize = 128;
/// At most this many threads open one page.
const MAX_OPEN_THREADS: usize = 4;
