//! SSE-C in storage: objects and uploads sealed under a customer key read only with that key,
//! refuse a key they were not stored with, list without it, survive a reopen, and never store
//! the key.

#![allow(clippy::unwrap_used)]

mod harness;

use coffre_crypto::{CustomerKey, TenantScope};
use coffre_storage::{
    BucketRecord, ChosenPart, Completion, Error, ListEntry, ListQuery, ObjectRecord, PartInfo,
    Store, WriteTarget, WrittenData,
};
use harness::*;

const KEY: [u8; 32] = [0xC3; 32];
const OTHER: [u8; 32] = [0x3C; 32];
/// `KEY` as the headers carry it, and its MD5 raw and in base64.
const KEY_BASE64: &str = "w8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8M=";
const KEY_MD5: [u8; 16] = [
    104, 50, 60, 168, 105, 201, 95, 31, 185, 232, 218, 248, 19, 230, 13, 54,
];
const KEY_MD5_BASE64: &str = "aDI8qGnJXx+56Nr4E+YNNg==";

fn key() -> CustomerKey {
    CustomerKey::from_bytes(&KEY)
}

fn other() -> CustomerKey {
    CustomerKey::from_bytes(&OTHER)
}

fn write_with(
    store: &Store,
    scope: &TenantScope,
    bucket: &BucketRecord,
    target: WriteTarget,
    data: &[u8],
    customer_key: Option<&CustomerKey>,
) -> coffre_storage::Result<WrittenData> {
    let mut writer = store.data_writer(scope, bucket, target, customer_key)?;
    for chunk in data.chunks(700) {
        writer.write(chunk)?;
    }
    writer.finish()
}

fn put_with(
    store: &Store,
    scope: &TenantScope,
    bucket: &BucketRecord,
    name: &str,
    data: &[u8],
    customer_key: Option<&CustomerKey>,
) -> ObjectRecord {
    let written = write_with(
        store,
        scope,
        bucket,
        WriteTarget::Object,
        data,
        customer_key,
    )
    .unwrap();
    store
        .put_object(scope, bucket, name, meta_for(data), written)
        .unwrap()
}

fn read_with(
    store: &Store,
    scope: &TenantScope,
    object: &ObjectRecord,
    range: std::ops::Range<u64>,
    customer_key: Option<&CustomerKey>,
) -> coffre_storage::Result<Vec<u8>> {
    let mut reader = store.object_reader(scope, object, customer_key)?;
    let mut out = Vec::new();
    reader.read_range(range.start, range.end, 999, &mut |bytes| {
        out.extend_from_slice(&bytes);
        true
    })?;
    Ok(out)
}

#[test]
fn an_sse_c_object_reads_with_its_key_only() {
    each_store(|store, _| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        // Inline and in a file.
        for len in [0, 10, INLINE_MAX + 1, 3 * 65536 + 5] {
            let data = bytes(len, 9);
            let name = format!("k{len}");
            let put = put_with(store, &alice, &bucket, &name, &data, Some(&key()));
            assert!(put.is_sse_c());
            let object = store.object(&alice, &bucket, &name).unwrap();
            assert!(object.is_sse_c());
            assert_eq!(object.meta, meta_for(&data));
            let all = 0..len as u64;
            assert_eq!(
                read_with(store, &alice, &object, all.clone(), Some(&key())).unwrap(),
                data
            );
            if len > 2 {
                let mid = 1..len as u64 - 1;
                assert_eq!(
                    read_with(store, &alice, &object, mid, Some(&key())).unwrap(),
                    data[1..len - 1]
                );
            }
            assert!(matches!(
                read_with(store, &alice, &object, all.clone(), None),
                Err(Error::CustomerKeyRequired)
            ));
            assert!(matches!(
                read_with(store, &alice, &object, all, Some(&other())),
                Err(Error::CustomerKeyMismatch)
            ));
            store
                .check_customer_key(&alice, &object, Some(&key()))
                .unwrap();
            assert!(matches!(
                store.check_customer_key(&alice, &object, None),
                Err(Error::CustomerKeyRequired)
            ));
            assert!(matches!(
                store.check_customer_key(&alice, &object, Some(&other())),
                Err(Error::CustomerKeyMismatch)
            ));
        }
    });
}

#[test]
fn a_plain_object_refuses_a_customer_key() {
    each_store(|store, _| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let object = put(store, &alice, &bucket, "plain", b"hello");
        assert!(!object.is_sse_c());
        assert!(matches!(
            read_with(store, &alice, &object, 0..5, Some(&key())),
            Err(Error::CustomerKeyNotApplicable)
        ));
        assert!(matches!(
            store.check_customer_key(&alice, &object, Some(&key())),
            Err(Error::CustomerKeyNotApplicable)
        ));
        store.check_customer_key(&alice, &object, None).unwrap();
    });
}

#[test]
fn listings_show_sse_c_objects_without_the_key() {
    each_store(|store, _| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let data = bytes(5000, 1);
        put_with(store, &alice, &bucket, "secret", &data, Some(&key()));
        let page = store
            .list_objects(
                &alice,
                &bucket,
                &ListQuery {
                    max_keys: 10,
                    ..ListQuery::default()
                },
            )
            .unwrap();
        let [ListEntry::Object(summary)] = page.entries.as_slice() else {
            panic!("{page:?}");
        };
        assert_eq!(summary.key, "secret");
        assert_eq!(summary.size, 5000);
        assert_eq!(summary.etag, meta_for(&data).etag);
    });
}

#[test]
fn every_part_of_an_sse_c_upload_needs_its_key() {
    each_store(|store, _| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let upload = store
            .create_upload(&alice, &bucket, "mp", meta_for(b""), Some(&key()))
            .unwrap();
        assert!(upload.is_sse_c());
        let part = |n: u32| WriteTarget::Part {
            upload: upload.address(),
            part_number: n,
        };
        assert!(matches!(
            write_with(store, &alice, &bucket, part(1), b"x", None),
            Err(Error::CustomerKeyRequired)
        ));
        assert!(matches!(
            write_with(store, &alice, &bucket, part(1), b"x", Some(&other())),
            Err(Error::CustomerKeyMismatch)
        ));
        let first = bytes(INLINE_MAX * 3, 2);
        let second = bytes(100, 7);
        for (n, data) in [(1, &first), (2, &second)] {
            let written = write_with(store, &alice, &bucket, part(n), data, Some(&key())).unwrap();
            let info = PartInfo {
                etag: format!("{n:032x}"),
                size: data.len() as u64,
                checksums: Vec::new(),
            };
            store
                .put_part(&alice, &bucket, &upload.address(), n, info, written)
                .unwrap();
        }
        let chosen = (1..=2).map(|n| ChosenPart::new(n, format!("{n:032x}")));
        let object = store
            .complete_upload(
                &alice,
                &bucket,
                &upload.address(),
                &Completion::of_parts(chosen.collect()),
            )
            .unwrap();
        assert!(object.is_sse_c());
        let object = store.object(&alice, &bucket, "mp").unwrap();
        let whole = [first.clone(), second.clone()].concat();
        let len = whole.len() as u64;
        assert_eq!(
            read_with(store, &alice, &object, 0..len, Some(&key())).unwrap(),
            whole
        );
        // A range across the part boundary.
        let from = first.len() as u64 - 10;
        assert_eq!(
            read_with(store, &alice, &object, from..from + 20, Some(&key())).unwrap(),
            whole[from as usize..from as usize + 20]
        );
        assert!(matches!(
            read_with(store, &alice, &object, 0..len, Some(&other())),
            Err(Error::CustomerKeyMismatch)
        ));

        // A plain upload refuses a key on its parts.
        let plain = store
            .create_upload(&alice, &bucket, "plain", meta_for(b""), None)
            .unwrap();
        let target = WriteTarget::Part {
            upload: plain.address(),
            part_number: 1,
        };
        assert!(matches!(
            write_with(store, &alice, &bucket, target, b"x", Some(&key())),
            Err(Error::CustomerKeyNotApplicable)
        ));
    });
}

#[test]
fn sse_c_survives_a_reopen_and_the_key_is_stored_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let data = bytes(INLINE_MAX * 2, 5);
    {
        let store = open_rocks(dir.path());
        let alice = scope(&store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        put_with(&store, &alice, &bucket, "big", &data, Some(&key()));
        put_with(&store, &alice, &bucket, "small", b"tiny", Some(&key()));
        store
            .create_upload(&alice, &bucket, "mp", meta_for(b""), Some(&key()))
            .unwrap();
        let store = reopen(store, dir.path());
        let object = store.object(&alice, &bucket, "big").unwrap();
        assert!(object.is_sse_c());
        let len = data.len() as u64;
        assert_eq!(
            read_with(&store, &alice, &object, 0..len, Some(&key())).unwrap(),
            data
        );
        assert!(matches!(
            read_with(&store, &alice, &object, 0..len, Some(&other())),
            Err(Error::CustomerKeyMismatch)
        ));
    }
    assert_eq!(key().key_md5_base64(), KEY_MD5_BASE64);
    let mut scanned = 0;
    for file in all_files(dir.path()) {
        let content = std::fs::read(&file).unwrap();
        scanned += content.len();
        for needle in [
            KEY.as_slice(),
            KEY_BASE64.as_bytes(),
            KEY_MD5.as_slice(),
            KEY_MD5_BASE64.as_bytes(),
        ] {
            assert!(
                !content.windows(needle.len()).any(|w| w == needle),
                "the customer key (or its MD5) is in {}",
                file.display()
            );
        }
    }
    assert!(scanned > data.len());
}

fn reopen(store: Store, dir: &std::path::Path) -> Store {
    drop(store);
    open_rocks(dir)
}

/// Every file under `dir` (metadata, arrays, key file).
fn all_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}
