//! ListMultipartUploads: uploads in (key, upload id) order, with the same prefix, delimiter
//! and seek-past-common-prefix behaviour as ListObjects.

use coffre_crypto::{ObjectId, TenantScope};

use crate::error::{Error, Result};
use crate::keys;
use crate::list_objects::{common_prefix, prefix_passed};
use crate::meta_store::Cf;
use crate::records::{BucketRecord, Record, UploadRecord};
use crate::sealed_records::StoredUpload;
use crate::stats::{CountIntegrity, IntegrityKind};
use crate::store::Store;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Uploads of keys after this one; with `upload_id_marker`, also the uploads of this key
    /// whose id sorts after the marker.
    pub key_marker: Option<String>,
    pub upload_id_marker: Option<String>,
    /// Uploads and common prefixes together.
    pub max_uploads: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadListPage {
    pub uploads: Vec<UploadRecord>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_upload_id_marker: Option<String>,
}

impl Store {
    pub fn list_uploads(
        &self,
        scope: &TenantScope,
        bucket: &BucketRecord,
        query: &UploadListQuery,
    ) -> Result<UploadListPage> {
        let mut page = UploadListPage::default();
        if query.max_uploads == 0 {
            return Ok(page);
        }
        let tenant = scope.tenant_id();
        let index_of = |key: &str| keys::uploads_by_key_prefix(tenant, bucket.id, key.as_bytes());
        let base_len = index_of("").len();
        let scan_prefix = index_of(&query.prefix);
        let key_marker = query.key_marker.as_deref();
        // The upload id marker only counts together with a key marker.
        let id_marker = match (key_marker, query.upload_id_marker.as_deref()) {
            (Some(_), Some(id)) => ObjectId::parse_hex(id).ok(),
            _ => None,
        };
        let delimiter = query.delimiter.as_deref();

        let mut cursor = self
            .meta()
            .cursor(Cf::Uploads, keys::prefix_end(&scan_prefix))?;
        match key_marker {
            Some(marker) if marker > query.prefix.as_str() => cursor.seek(&index_of(marker)),
            _ => cursor.seek(&scan_prefix),
        }

        let mut count = 0usize;
        let mut last_was_prefix = false;
        while let Some((index_key, value)) = cursor.next_entry()? {
            if !index_key.starts_with(&scan_prefix) {
                break;
            }
            let (key_bytes, id) = keys::split_upload_by_key(&index_key[base_len..])
                .ok_or_else(|| Error::Corrupt("upload index key".into()))?;
            let key = String::from_utf8(key_bytes)
                .map_err(|_| Error::Corrupt("upload key is not UTF-8".into()))?;
            if let Some(marker) = key_marker {
                let passed = match key.as_str().cmp(marker) {
                    std::cmp::Ordering::Less => true,
                    std::cmp::Ordering::Equal => id_marker.is_none_or(|m| id <= m),
                    std::cmp::Ordering::Greater => false,
                };
                if passed {
                    continue;
                }
            }
            if let Some(prefix) = common_prefix(&key, &query.prefix, delimiter) {
                let prefix = prefix.to_owned();
                match keys::prefix_end(&index_of(&prefix)) {
                    Some(end) => cursor.seek(&end),
                    None => break,
                }
                if prefix_passed(&prefix, key_marker) {
                    continue;
                }
                if count == query.max_uploads {
                    page.is_truncated = true;
                    break;
                }
                page.common_prefixes.push(prefix);
                last_was_prefix = true;
            } else {
                if count == query.max_uploads {
                    page.is_truncated = true;
                    break;
                }
                let stored = StoredUpload::decode(&value)?;
                let dek = self.stored_upload_dek(tenant, bucket, id, &stored)?;
                let upload = stored
                    .open(&dek.value_key()?)
                    .count_integrity(self.stats(), IntegrityKind::SealedValue)?;
                page.uploads.push(upload);
                last_was_prefix = false;
            }
            count += 1;
        }
        if page.is_truncated {
            if last_was_prefix {
                page.next_key_marker = page.common_prefixes.last().cloned();
            } else if let Some(last) = page.uploads.last() {
                page.next_key_marker = Some(last.key.clone());
                page.next_upload_id_marker = Some(last.upload_id());
            }
        }
        Ok(page)
    }
}
