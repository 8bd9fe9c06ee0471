//! Binary keys of the metadata store. Every tenant-data key starts with the tenant id, then
//! the bucket id, so a scan can never cross a tenant or a bucket incarnation; object keys
//! follow as raw UTF-8 bytes, so byte order is S3 listing order.

use coffre_crypto::{BucketId, ObjectId, TenantId};

/// `tenants`: tenant id.
pub fn tenant(tenant: TenantId) -> Vec<u8> {
    tenant.as_bytes().to_vec()
}

/// `tenant_names`: the name's bytes.
pub fn tenant_name(name: &str) -> Vec<u8> {
    name.as_bytes().to_vec()
}

/// `access_keys`: the access key id's bytes.
pub fn access_key(id: &str) -> Vec<u8> {
    id.as_bytes().to_vec()
}

/// `buckets`: tenant id | bucket name. Also the prefix of all of a tenant's buckets when
/// `name` is empty.
pub fn bucket(tenant: TenantId, name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(16 + name.len());
    key.extend_from_slice(tenant.as_bytes());
    key.extend_from_slice(name.as_bytes());
    key
}

/// `cors_index`: bucket name | 0x00 | tenant id. The one key space not led by a tenant id:
/// an unauthenticated preflight knows a bucket name and nothing else. Bucket names never
/// hold 0x00, so [`cors_index_prefix`] selects exactly the entries of one name.
pub fn cors_index(name: &str, tenant: TenantId) -> Vec<u8> {
    let mut key = cors_index_prefix(name);
    key.extend_from_slice(tenant.as_bytes());
    key
}

pub fn cors_index_prefix(name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 17);
    key.extend_from_slice(name.as_bytes());
    key.push(0);
    key
}

/// The tenant id of a [`cors_index`] key, given what follows its prefix.
pub fn cors_index_tenant(suffix: &[u8]) -> Option<TenantId> {
    let id: [u8; 16] = suffix.try_into().ok()?;
    Some(TenantId::from_bytes(id))
}

/// tenant id | bucket id: the prefix of a bucket's objects, uploads and parts.
pub fn bucket_prefix(tenant: TenantId, bucket: BucketId) -> Vec<u8> {
    let mut key = Vec::with_capacity(32 + 64);
    key.extend_from_slice(tenant.as_bytes());
    key.extend_from_slice(bucket.as_bytes());
    key
}

/// `objects`: tenant id | bucket id | object key bytes.
pub fn object(tenant: TenantId, bucket: BucketId, object_key: &[u8]) -> Vec<u8> {
    let mut key = bucket_prefix(tenant, bucket);
    key.extend_from_slice(object_key);
    key
}

const UPLOAD_BY_ID: u8 = b'I';
const UPLOAD_BY_KEY: u8 = b'K';

/// `uploads`, primary record: tenant id | bucket id | 'I' | upload id.
pub fn upload_by_id(tenant: TenantId, bucket: BucketId, upload: ObjectId) -> Vec<u8> {
    let mut key = bucket_prefix(tenant, bucket);
    key.push(UPLOAD_BY_ID);
    key.extend_from_slice(upload.as_bytes());
    key
}

/// `uploads`, listing index: tenant id | bucket id | 'K' | escaped object key, so that all
/// uploads of a key sort together and before those of any longer key.
pub fn uploads_by_key_prefix(tenant: TenantId, bucket: BucketId, key_prefix: &[u8]) -> Vec<u8> {
    let mut key = bucket_prefix(tenant, bucket);
    key.push(UPLOAD_BY_KEY);
    escape_into(&mut key, key_prefix);
    key
}

/// `uploads`, listing index entry: [`uploads_by_key_prefix`] of the whole key, a terminator,
/// then the upload id.
pub fn upload_by_key(
    tenant: TenantId,
    bucket: BucketId,
    object_key: &[u8],
    upload: ObjectId,
) -> Vec<u8> {
    let mut key = uploads_by_key_prefix(tenant, bucket, object_key);
    key.extend_from_slice(&TERMINATOR);
    key.extend_from_slice(upload.as_bytes());
    key
}

/// Splits an index entry's suffix (after [`uploads_by_key_prefix`] with an empty prefix) back
/// into the object key and upload id.
pub fn split_upload_by_key(suffix: &[u8]) -> Option<(Vec<u8>, ObjectId)> {
    let mut object_key = Vec::with_capacity(suffix.len());
    let mut i = 0;
    while i < suffix.len() {
        match (suffix[i], suffix.get(i + 1)) {
            (0x00, Some(&ESCAPED_ZERO)) => {
                object_key.push(0);
                i += 2;
            }
            (0x00, Some(&TERMINATOR_TAIL)) => {
                let id: [u8; 16] = suffix.get(i + 2..)?.try_into().ok()?;
                return Some((object_key, ObjectId::from_bytes(id)));
            }
            (0x00, _) => return None,
            (byte, _) => {
                object_key.push(byte);
                i += 1;
            }
        }
    }
    None
}

// Order-preserving escape: 0x00 becomes 0x00 0xFF and the key ends with 0x00 0x01, so a key
// sorts before every longer key it is a prefix of, whatever bytes follow.
const ESCAPED_ZERO: u8 = 0xFF;
const TERMINATOR_TAIL: u8 = 0x01;
const TERMINATOR: [u8; 2] = [0x00, TERMINATOR_TAIL];

fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    for &byte in bytes {
        out.push(byte);
        if byte == 0 {
            out.push(ESCAPED_ZERO);
        }
    }
}

/// `parts`: tenant id | bucket id | upload id | part number (big-endian). With
/// `part_number` 0 (never a valid part) it is also where an upload's parts start.
pub fn part(tenant: TenantId, bucket: BucketId, upload: ObjectId, part_number: u32) -> Vec<u8> {
    let mut key = parts_prefix(tenant, bucket, upload);
    key.extend_from_slice(&part_number.to_be_bytes());
    key
}

pub fn parts_prefix(tenant: TenantId, bucket: BucketId, upload: ObjectId) -> Vec<u8> {
    let mut key = bucket_prefix(tenant, bucket);
    key.extend_from_slice(upload.as_bytes());
    key
}

/// `usage`: tenant id.
pub fn usage(tenant: TenantId) -> Vec<u8> {
    tenant.as_bytes().to_vec()
}

/// `usage`: how many DEKs KEK `version` of `tenant` has wrapped (in committed records):
/// tenant id | `kek-wraps` | version (u32 big-endian).
pub fn kek_wraps(tenant: TenantId, version: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(16 + 9 + 4);
    key.extend_from_slice(tenant.as_bytes());
    key.extend_from_slice(b"kek-wraps");
    key.extend_from_slice(&version.to_be_bytes());
    key
}

/// `gc`: the data file's object id, unique across arrays and tenants.
pub fn gc(file: ObjectId) -> Vec<u8> {
    file.as_bytes().to_vec()
}

/// `gc`, a release of a shared file's reference: the file's id, then a random id of the
/// release, so that concurrent releases of one file never overwrite each other's entry.
pub fn gc_release(file: ObjectId, release: ObjectId) -> Vec<u8> {
    let mut key = gc(file);
    key.extend_from_slice(release.as_bytes());
    key
}

/// `refs`: tenant id | data file id.
pub fn refs(tenant: TenantId, file: ObjectId) -> Vec<u8> {
    let mut key = Vec::with_capacity(32);
    key.extend_from_slice(tenant.as_bytes());
    key.extend_from_slice(file.as_bytes());
    key
}

/// The smallest key greater than every key starting with `prefix`; `None` when no such key
/// exists (empty or all 0xFF), meaning "scan to the end".
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prefix_end_skips_trailing_ff() {
        assert_eq!(prefix_end(b"a/"), Some(b"a0".to_vec()));
        assert_eq!(prefix_end(&[1, 0xFF, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF]), None);
        assert_eq!(prefix_end(b""), None);
    }

    proptest! {
        #[test]
        fn upload_index_keys_sort_by_object_key_then_id(
            a in proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), Just(b'a'), Just(0xFFu8)], 0..6),
            b in proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), Just(b'a'), Just(0xFFu8)], 0..6),
            ida in any::<[u8; 16]>(),
            idb in any::<[u8; 16]>(),
        ) {
            let (t, bk) = (TenantId::from_bytes([1; 16]), BucketId::from_bytes([2; 16]));
            let ka = upload_by_key(t, bk, &a, ObjectId::from_bytes(ida));
            let kb = upload_by_key(t, bk, &b, ObjectId::from_bytes(idb));
            prop_assert_eq!(ka.cmp(&kb), (&a, ida).cmp(&(&b, idb)));
            let base = uploads_by_key_prefix(t, bk, b"").len();
            prop_assert_eq!(split_upload_by_key(&ka[base..]).unwrap(), (a.clone(), ObjectId::from_bytes(ida)));
            // Escaped prefixes select exactly the keys that start with the prefix.
            let pa = uploads_by_key_prefix(t, bk, &a);
            prop_assert_eq!(kb.starts_with(&pa), b.starts_with(&a));
        }
    }
}
