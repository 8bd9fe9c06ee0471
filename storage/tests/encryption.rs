//! Encryption at rest: data and metadata round trip through the sealed format at every
//! size around segment boundaries, nothing plaintext reaches the arrays or RocksDB, and
//! tampered, truncated or swapped data fails rather than returning wrong bytes.

#![allow(clippy::unwrap_used)]

mod harness;

use std::path::PathBuf;

use coffre_crypto::{AdminScope, MaintenanceScope, TenantScope, SEGMENT_LEN};
use coffre_storage::{
    BucketRecord, ChosenPart, Completion, Error, ListEntry, ListQuery, ObjectMeta, ObjectRecord,
    PartInfo, Store, StoreConfig, WriteTarget,
};
use harness::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const SEG: usize = SEGMENT_LEN;
const MARKER: &str = "CoffreMarker-7f3a9c";

/// Sizes on both sides of the inline threshold and of segment boundaries.
fn boundary_sizes() -> Vec<usize> {
    vec![
        0,
        1,
        INLINE_MAX,
        INLINE_MAX + 1,
        SEG - 1,
        SEG,
        SEG + 1,
        2 * SEG - 1,
        2 * SEG,
        2 * SEG + 1,
        3 * SEG + 17,
    ]
}

/// Ranges worth reading in an object of `len` bytes: ends, segment edges, one byte.
fn interesting_ranges(len: usize) -> Vec<(usize, usize)> {
    let mut ranges = vec![(0, len), (0, len.min(1)), (len.saturating_sub(1), len)];
    for edge in [SEG, 2 * SEG, 3 * SEG] {
        if edge < len {
            ranges.push((edge - 1, edge + 1));
            ranges.push((edge, len));
            ranges.push((edge.saturating_sub(10), (edge + 10).min(len)));
        }
    }
    ranges.push((len / 3, 2 * len / 3));
    ranges
}

fn check_ranges(store: &Store, scope: &TenantScope, record: &ObjectRecord, data: &[u8]) {
    for (start, end) in interesting_ranges(data.len()) {
        for chunk in [1000, SEG, 1 << 20] {
            let got = read_range(store, scope, record, start as u64, end as u64, chunk).unwrap();
            assert_eq!(
                got,
                data[start..end],
                "len {} range {start}..{end} chunk {chunk}",
                data.len()
            );
        }
    }
}

#[test]
fn round_trip_at_segment_boundaries_inline_and_in_files() {
    each_store(|store, _| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        for len in boundary_sizes() {
            let data = bytes(len, 11);
            for slice in [1000, SEG, SEG + 3, 1 << 20] {
                let written = write(store, &alice, &bucket, &data, slice);
                assert_eq!(written.size(), len as u64, "plaintext size");
                assert_eq!(written.is_inline(), len <= INLINE_MAX);
                let key = format!("k{len}-{slice}");
                store
                    .put_object(&alice, &bucket, &key, meta_for(&data), written)
                    .unwrap();
                let record = store.object(&alice, &bucket, &key).unwrap();
                assert_eq!(record.meta, meta_for(&data));
                assert_eq!(record.parts[0].size, len as u64);
                assert_eq!(read_all(store, &alice, &record), data);
            }
            let record = store
                .object(&alice, &bucket, &format!("k{len}-1000"))
                .unwrap();
            check_ranges(store, &alice, &record, &data);
        }
    });
}

#[test]
fn inline_data_spanning_several_segments_is_sealed_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        inline_max: 3 * SEG,
        ..config(dir.path())
    };
    let store = Store::open(config, root_keys(dir.path())).unwrap();
    let alice = scope(&store);
    let bucket = store.create_bucket(&alice, "b", "r").unwrap();
    for len in [SEG, 2 * SEG + 1, 3 * SEG] {
        let data = bytes(len, 12);
        let written = write(&store, &alice, &bucket, &data, 777);
        assert!(written.is_inline());
        let record = store
            .put_object(&alice, &bucket, "k", meta_for(&data), written)
            .unwrap();
        check_ranges(&store, &alice, &record, &data);
    }
    assert!(array_files(dir.path()).is_empty());
}

#[test]
fn any_range_equals_slicing_the_whole_object() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_memory(dir.path());
    let alice = scope(&store);
    let bucket = store.create_bucket(&alice, "b", "r").unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 48,
        ..Config::default()
    });
    let strategy = (
        0usize..3 * SEG + 100,
        any::<u64>(),
        any::<u64>(),
        1usize..SEG * 2,
    );
    runner
        .run(&strategy, |(len, a, b, chunk)| {
            let data = bytes(len, (len % 251) as u8);
            let record = put(&store, &alice, &bucket, "p", &data);
            let len = len as u64;
            let (start, end) = if len == 0 {
                (0, 0)
            } else {
                let (a, b) = (a % (len + 1), b % (len + 1));
                (a.min(b), a.max(b))
            };
            let got = read_range(&store, &alice, &record, start, end, chunk).unwrap();
            prop_assert_eq!(&got[..], &data[start as usize..end as usize]);
            Ok(())
        })
        .unwrap();
}

/// Creates an upload of `key` and uploads `parts` (sizes), returning the completed object
/// and its plaintext.
fn multipart(
    store: &Store,
    scope: &TenantScope,
    bucket: &BucketRecord,
    key: &str,
    sizes: &[usize],
    meta: ObjectMeta,
    part_etag: impl Fn(u32) -> String,
) -> (ObjectRecord, Vec<u8>) {
    let upload = store.create_upload(scope, bucket, key, meta, None).unwrap();
    let mut all = Vec::new();
    let mut chosen = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let n = i as u32 + 1;
        let data = bytes(*size, n as u8 * 7);
        let written = write_part(store, scope, bucket, &upload.address(), n, &data, 5000);
        let info = PartInfo {
            etag: part_etag(n),
            size: data.len() as u64,
            checksums: vec![("CRC32".into(), format!("{MARKER}-crc-{n}"))],
        };
        store
            .put_part(scope, bucket, &upload.address(), n, info, written)
            .unwrap();
        chosen.push(ChosenPart::new(n, part_etag(n)));
        all.extend_from_slice(&data);
    }
    let record = store
        .complete_upload(
            scope,
            bucket,
            &upload.address(),
            &Completion::of_parts(chosen),
        )
        .unwrap();
    assert_eq!(record.meta.size, all.len() as u64);
    assert_eq!(record.parts.len(), sizes.len());
    (record, all)
}

#[test]
fn multipart_ranges_cross_parts_and_segments() {
    each_store(|store, _| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        // Every part but the last at least the harness's minimum part size.
        let sizes = [SEG + 10, MIN_PART_SIZE as usize, 2 * SEG, SEG - 1, 3];
        let (record, data) = multipart(
            store,
            &alice,
            &bucket,
            "mp",
            &sizes,
            ObjectMeta::default(),
            |n| format!("{n:032x}"),
        );
        let record = store.object(&alice, &bucket, &record.key).unwrap();
        assert_eq!(record.parts.len(), sizes.len());
        assert_eq!(record.parts[1].checksums[0].1, format!("{MARKER}-crc-2"));
        assert_eq!(read_all(store, &alice, &record), data);
        check_ranges(store, &alice, &record, &data);
        // Ranges straddling each part boundary.
        let mut boundary = 0;
        for size in sizes {
            boundary += size;
            let (start, end) = (boundary.saturating_sub(5), (boundary + 5).min(data.len()));
            let got = read_range(store, &alice, &record, start as u64, end as u64, 3).unwrap();
            assert_eq!(got, data[start..end]);
        }
    });
}

#[test]
fn a_part_must_be_written_for_its_upload_and_number() {
    each_store(|store, _| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let upload = store
            .create_upload(&alice, &bucket, "k", ObjectMeta::default(), None)
            .unwrap();
        let info = PartInfo::default();
        let as_object = write(store, &alice, &bucket, b"data", 10);
        assert!(matches!(
            store.put_part(
                &alice,
                &bucket,
                &upload.address(),
                1,
                info.clone(),
                as_object
            ),
            Err(Error::TargetMismatch)
        ));
        let as_part_2 = write_part(store, &alice, &bucket, &upload.address(), 2, b"data", 10);
        assert!(matches!(
            store.put_part(&alice, &bucket, &upload.address(), 1, info, as_part_2),
            Err(Error::TargetMismatch)
        ));
        let as_part = write_part(store, &alice, &bucket, &upload.address(), 1, b"data", 10);
        assert!(matches!(
            store.put_object(&alice, &bucket, "k", ObjectMeta::default(), as_part),
            Err(Error::TargetMismatch)
        ));
    });
}

#[test]
fn no_plaintext_reaches_the_arrays_or_rocksdb() {
    let dir = tempfile::tempdir().unwrap();
    let marked = |len: usize| {
        MARKER
            .as_bytes()
            .iter()
            .copied()
            .cycle()
            .take(len)
            .collect::<Vec<u8>>()
    };
    let meta = |data: &[u8]| ObjectMeta {
        size: data.len() as u64,
        etag: format!("{MARKER}-etag"),
        user_metadata: vec![("note".into(), format!("{MARKER}-meta"))],
        checksums: vec![("CRC32".into(), format!("{MARKER}-checksum"))],
        checksum_type: Some("FULL_OBJECT".into()),
        // Content headers stay plaintext: the scan below must see this one.
        content_type: Some("text/x-coffre-sanity".into()),
        ..ObjectMeta::default()
    };
    {
        let store = open_rocks(dir.path());
        let alice = scope(&store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        for (key, len) in [("inline", 100), ("file", 3 * SEG + 5)] {
            let data = marked(len);
            let written = write(&store, &alice, &bucket, &data, 4096);
            store
                .put_object(&alice, &bucket, key, meta(&data), written)
                .unwrap();
        }
        // A completed upload and one left open, both with marked metadata.
        let (record, data) = multipart(
            &store,
            &alice,
            &bucket,
            "mp",
            &[SEG + 1, 50],
            meta(b""),
            |n| format!("{n:032x}"),
        );
        let open = store
            .create_upload(&alice, &bucket, "open", meta(b""), None)
            .unwrap();
        let part = marked(2000);
        let written = write_part(&store, &alice, &bucket, &open.address(), 1, &part, 500);
        let info = PartInfo {
            etag: format!("{MARKER}-open-part"),
            size: 2000,
            checksums: vec![("CRC32".into(), format!("{MARKER}-open-crc"))],
        };
        store
            .put_part(&alice, &bucket, &open.address(), 1, info, written)
            .unwrap();

        // Storage still hands out plaintext.
        let object = store.object(&alice, &bucket, "file").unwrap();
        assert_eq!(object.meta, meta(&marked(3 * SEG + 5)));
        assert_eq!(read_all(&store, &alice, &object), marked(3 * SEG + 5));
        assert_eq!(read_all(&store, &alice, &record), data);
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
        for entry in page.entries {
            let ListEntry::Object(summary) = entry else {
                panic!("no prefixes here");
            };
            if summary.key == record.key {
                assert_eq!(summary.etag, record.meta.etag);
            } else {
                assert!(summary.etag.starts_with(MARKER), "{}", summary.etag);
            }
        }
        let (parts, _) = store
            .list_parts(&alice, &bucket, &open.address(), 0, 10)
            .unwrap();
        assert_eq!(parts[0].etag, format!("{MARKER}-open-part"));
        assert_eq!(
            store.upload(&alice, &bucket, &open.address()).unwrap().meta,
            meta(b"")
        );

        // While open (write-ahead log only) and after a close (flushed or not).
        assert!(!files_containing(&dir.path().join("meta"), b"text/x-coffre-sanity").is_empty());
        for dir in [dir.path().join("arrays"), dir.path().join("meta")] {
            assert_eq!(
                files_containing(&dir, MARKER.as_bytes()),
                Vec::<PathBuf>::new()
            );
        }
    }
    let store = open_rocks(dir.path());
    drop(store);
    for dir in [dir.path().join("arrays"), dir.path().join("meta")] {
        assert!(!files_under(&dir).is_empty());
        assert_eq!(
            files_containing(&dir, MARKER.as_bytes()),
            Vec::<PathBuf>::new()
        );
    }
}

/// Reads the whole object, returning what the sink received and the outcome.
fn read_collecting(
    store: &Store,
    scope: &TenantScope,
    record: &ObjectRecord,
) -> (Vec<u8>, coffre_storage::Result<()>) {
    let mut got = Vec::new();
    let result = store
        .object_reader(scope, record, None)
        .and_then(|mut reader| {
            reader.read_range(0, u64::MAX, 1000, &mut |bytes| {
                got.extend_from_slice(&bytes);
                true
            })
        });
    (got, result)
}

/// A read of tampered data fails, and whatever it sent before failing is authentic.
fn assert_fails_without_wrong_bytes(
    store: &Store,
    scope: &TenantScope,
    record: &ObjectRecord,
    data: &[u8],
    what: &str,
) {
    let (got, result) = read_collecting(store, scope, record);
    assert!(
        matches!(result, Err(Error::Integrity { .. })),
        "{what}: {result:?}"
    );
    assert!(data.starts_with(&got), "{what}: wrong bytes released");
}

#[test]
fn flipped_truncated_or_swapped_data_files_fail() {
    each_store(|store, dir| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let len = 3 * SEG + 100;
        let data_a = bytes(len, 1);
        let a = put(store, &alice, &bucket, "a", &data_a);
        let path_a = array_files(dir).pop().unwrap();
        let data_b = bytes(len, 2);
        let b = put(store, &alice, &bucket, "b", &data_b);
        let path_b = array_files(dir).into_iter().find(|p| *p != path_a).unwrap();
        let intact_a = std::fs::read(&path_a).unwrap();
        let intact_b = std::fs::read(&path_b).unwrap();

        // A flipped bit anywhere in the segments: ciphertext, tags, the last segment.
        let header = 16;
        let sealed_segment = SEG + 16;
        for offset in [
            header,
            header + SEG + 3,
            header + sealed_segment - 1,
            header + 2 * sealed_segment + 500,
            intact_a.len() - 1,
        ] {
            let mut flipped = intact_a.clone();
            flipped[offset] ^= 0x20;
            std::fs::write(&path_a, &flipped).unwrap();
            assert_fails_without_wrong_bytes(store, &alice, &a, &data_a, "flip");
        }

        // Truncated, by a byte or by a whole segment; or extended.
        for new_len in [intact_a.len() - 1, intact_a.len() - sealed_segment, header] {
            std::fs::write(&path_a, &intact_a[..new_len]).unwrap();
            assert_fails_without_wrong_bytes(store, &alice, &a, &data_a, "truncation");
        }
        let mut longer = intact_a.clone();
        longer.extend_from_slice(&[0; 16]);
        std::fs::write(&path_a, &longer).unwrap();
        assert_fails_without_wrong_bytes(store, &alice, &a, &data_a, "extension");

        // Two objects' files swapped: the header's nonce prefix differs...
        std::fs::write(&path_a, &intact_b).unwrap();
        std::fs::write(&path_b, &intact_a).unwrap();
        assert_fails_without_wrong_bytes(store, &alice, &a, &data_a, "swap");
        assert_fails_without_wrong_bytes(store, &alice, &b, &data_b, "swap");
        // ...and with the header forged to match, the segments' tags fail.
        let mut forged = intact_b.clone();
        forged[..16].copy_from_slice(&intact_a[..16]);
        std::fs::write(&path_a, &forged).unwrap();
        assert_fails_without_wrong_bytes(store, &alice, &a, &data_a, "forged swap");

        // Segments reordered within the file.
        let mut reordered = intact_a.clone();
        let (first, second) = (
            header..header + sealed_segment,
            header + sealed_segment..header + 2 * sealed_segment,
        );
        reordered[first.clone()].copy_from_slice(&intact_a[second.clone()]);
        reordered[second].copy_from_slice(&intact_a[first]);
        std::fs::write(&path_a, &reordered).unwrap();
        assert_fails_without_wrong_bytes(store, &alice, &a, &data_a, "reorder");

        std::fs::write(&path_a, &intact_a).unwrap();
        std::fs::write(&path_b, &intact_b).unwrap();
        assert_eq!(read_all(store, &alice, &a), data_a);
        assert_eq!(read_all(store, &alice, &b), data_b);
    });
}

#[test]
fn tenants_have_their_own_keys() {
    each_store(|store, dir| {
        let (alice, bob) = (scope(store), scope(store));
        let alice_bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let bob_bucket = store.create_bucket(&bob, "b", "r").unwrap();
        let data = bytes(SEG + 7, 3);
        let a = put(store, &alice, &alice_bucket, "k", &data);
        let alice_file = array_files(dir).pop().unwrap();
        let b = put(store, &bob, &bob_bucket, "k", &data);
        let bob_file = array_files(dir)
            .into_iter()
            .find(|p| *p != alice_file)
            .unwrap();

        // The same plaintext seals differently.
        let (alice_bytes, bob_bytes) = (
            std::fs::read(&alice_file).unwrap(),
            std::fs::read(&bob_file).unwrap(),
        );
        assert_ne!(alice_bytes[16..], bob_bytes[16..]);

        // Alice's record does not open under Bob's scope.
        assert!(matches!(
            store.object_reader(&bob, &a, None),
            Err(Error::Integrity { .. })
        ));
        // Alice's data under Bob's object (header forged to match) fails.
        let mut forged = alice_bytes.clone();
        forged[..16].copy_from_slice(&bob_bytes[..16]);
        std::fs::write(&bob_file, &forged).unwrap();
        assert_fails_without_wrong_bytes(store, &bob, &b, &data, "cross-tenant splice");

        let admin = AdminScope::local_operator();
        let (ta, tb) = (
            store.tenant(&admin, alice.tenant_id()).unwrap(),
            store.tenant(&admin, bob.tenant_id()).unwrap(),
        );
        assert_eq!((ta.keks.len(), tb.keks.len()), (1, 1));
        assert_ne!(ta.keks[0].ciphertext, tb.keks[0].ciphertext);
    });
}

#[test]
fn a_dropped_writer_leaves_nothing() {
    each_store(|store, dir| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let upload = store
            .create_upload(&alice, &bucket, "k", ObjectMeta::default(), None)
            .unwrap();
        for target in [
            WriteTarget::Object,
            WriteTarget::Part {
                upload: upload.address(),
                part_number: 1,
            },
        ] {
            let mut writer = store.data_writer(&alice, &bucket, target, None).unwrap();
            writer.write(&bytes(2 * SEG + 5, 4)).unwrap();
            assert_eq!(writer.size(), 2 * SEG as u64 + 5);
            assert_eq!(array_files(dir).len(), 1, "a temp file while writing");
            drop(writer);
            assert!(array_files(dir).is_empty());
        }
        let stats = store
            .collect_garbage(&MaintenanceScope::new("test"), &lease(store, "gc"))
            .unwrap();
        assert_eq!(stats.files_removed, 0, "no intent left behind");
    });
}

#[test]
fn kek_unwraps_are_cached() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bucket);
    {
        let store = open_rocks(dir.path());
        alice = scope(&store);
        bucket = store.create_bucket(&alice, "b", "r").unwrap();
        put(&store, &alice, &bucket, "k", b"data");
    }
    let store = open_rocks(dir.path());
    for _ in 0..5 {
        let record = store.object(&alice, &bucket, "k").unwrap();
        assert_eq!(read_all(&store, &alice, &record), b"data");
    }
    let stats = store.kek_cache_stats();
    assert_eq!((stats.misses, stats.entries), (1, 1), "{stats:?}");
    assert_eq!(stats.hits, 9, "{stats:?}");
}

#[test]
fn deleting_a_tenant_destroys_its_keys_everywhere_in_rocksdb() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_rocks(dir.path());
    let admin = AdminScope::local_operator();
    let alice = scope(&store);
    let bucket = store.create_bucket(&alice, "b", "r").unwrap();
    let data = bytes(2 * SEG, 5);
    let record = put(&store, &alice, &bucket, "k", &data);
    let wrapped = store.tenant(&admin, alice.tenant_id()).unwrap().keks[0]
        .ciphertext
        .clone();
    let meta_dir = dir.path().join("meta");
    assert!(
        !files_containing(&meta_dir, &wrapped).is_empty(),
        "the wrapped KEK is on disk before"
    );

    store
        .delete_tenant(&admin, alice.tenant_id(), true)
        .unwrap();
    assert_eq!(files_containing(&meta_dir, &wrapped), Vec::<PathBuf>::new());
    // A record kept from before cannot be read any more.
    assert!(store.object_reader(&alice, &record, None).is_err());
    drop(store);
    assert_eq!(files_containing(&meta_dir, &wrapped), Vec::<PathBuf>::new());
}
