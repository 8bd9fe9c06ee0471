//! Object data: inline or in files, ranges, overwrite and delete with collection,
//! abandoned writes, corruption, and persistence across a reopen.

#![allow(clippy::unwrap_used)]

mod harness;

use coffre_crypto::MaintenanceScope;
use coffre_storage::{DataLocation, Error, GcStats, ListQuery, WriteTarget};
use harness::*;

fn gc(store: &coffre_storage::Store) -> GcStats {
    store
        .collect_garbage(&MaintenanceScope::new("test"), &lease(store, "gc"))
        .unwrap()
}

#[test]
fn data_up_to_the_inline_threshold_stays_in_the_record() {
    each_store(|store, dir| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        for (len, inline) in [
            (0, true),
            (1, true),
            (INLINE_MAX, true),
            (INLINE_MAX + 1, false),
            (3 * INLINE_MAX + 7, false),
        ] {
            let data = bytes(len, 3);
            // Slices of every size straddle the threshold differently.
            for slice in [1, 100, INLINE_MAX, INLINE_MAX + 1, 1 << 20] {
                let written = write(store, &alice, &bucket, &data, slice);
                assert_eq!(written.size(), len as u64);
                assert_eq!(written.is_inline(), inline, "len {len} slice {slice}");
                let key = format!("k{len}-{slice}");
                store
                    .put_object(&alice, &bucket, &key, meta_for(&data), written)
                    .unwrap();
                let record = store.object(&alice, &bucket, &key).unwrap();
                assert_eq!(
                    matches!(record.parts[0].location, DataLocation::Inline(_)),
                    inline
                );
                assert_eq!(record.meta, meta_for(&data));
                assert_eq!(read_all(store, &alice, &record), data);
            }
        }
        // Only the non-inline objects have files: 2 sizes x 5 slicings.
        assert_eq!(array_files(dir).len(), 10);
    });
}

#[test]
fn ranges_read_exactly_the_requested_bytes() {
    each_store(|store, _| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        for len in [10usize, 5000] {
            let data = bytes(len, 4);
            let record = put(store, &alice, &bucket, "k", &data);
            for (start, end) in [
                (0, len),
                (1, len - 1),
                (len / 2, len),
                (3, 4),
                (0, len + 100),
                (len, len + 5),
            ] {
                for chunk in [1, 7, 4096] {
                    let got = read_range(store, &alice, &record, start as u64, end as u64, chunk)
                        .unwrap();
                    assert_eq!(got, data[start..end.min(len)], "{start}..{end} by {chunk}");
                }
            }
            // The sink can stop early.
            let mut reader = store.object_reader(&alice, &record, None).unwrap();
            let mut calls = 0;
            reader
                .read_range(0, len as u64, 1, &mut |_| {
                    calls += 1;
                    calls < 3
                })
                .unwrap();
            assert_eq!(calls, 3);
        }
    });
}

#[test]
fn overwrite_and_delete_queue_old_files_and_gc_removes_them() {
    each_store(|store, dir| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let first = bytes(3000, 5);
        put(store, &alice, &bucket, "k", &first);
        let old_files = array_files(dir);
        assert_eq!(old_files.len(), 1);

        let second = bytes(4000, 6);
        let record = put(store, &alice, &bucket, "k", &second);
        assert_eq!(
            array_files(dir).len(),
            2,
            "the old file stays until collected"
        );
        let stats = gc(store);
        assert_eq!(
            stats,
            GcStats {
                files_removed: 1,
                // Header, then the sealed segment (one tag).
                bytes_removed: 16 + 3000 + 16
            }
        );
        assert!(!old_files[0].exists());
        assert_eq!(read_all(store, &alice, &record), second);
        assert_eq!(
            gc(store),
            GcStats::default(),
            "the queue is empty after a pass"
        );

        // Overwriting with inline data, then deleting: both old versions collected.
        put(store, &alice, &bucket, "k", b"small");
        assert_eq!(gc(store).files_removed, 1);
        store.delete_object(&alice, &bucket, "k").unwrap();
        store.delete_object(&alice, &bucket, "k").unwrap();
        assert!(matches!(
            store.object(&alice, &bucket, "k"),
            Err(Error::NoSuchKey)
        ));
        assert_eq!(array_files(dir), Vec::<std::path::PathBuf>::new());
    });
}

#[test]
fn an_abandoned_writer_or_uncommitted_data_leaves_no_file() {
    each_store(|store, dir| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let mut writer = store
            .data_writer(&alice, &bucket, WriteTarget::Object, None)
            .unwrap();
        writer.write(&bytes(5000, 7)).unwrap();
        assert_eq!(
            array_files(dir).len(),
            1,
            "the temp file exists while writing"
        );
        drop(writer);
        assert_eq!(array_files(dir), Vec::<std::path::PathBuf>::new());

        let written = write(store, &alice, &bucket, &bytes(5000, 8), 1000);
        assert_eq!(array_files(dir).len(), 1);
        drop(written);
        assert_eq!(array_files(dir), Vec::<std::path::PathBuf>::new());
        assert_eq!(gc(store), GcStats::default(), "no intent left behind");
    });
}

#[test]
fn a_truncated_or_altered_data_file_fails_integrity() {
    each_store(|store, dir| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let data = bytes(5000, 9);
        let record = put(store, &alice, &bucket, "k", &data);
        let path = array_files(dir).pop().unwrap();
        let sealed_file_len = 16 + 5000 + 16;
        let intact = std::fs::read(&path).unwrap();
        assert_eq!(intact.len(), sealed_file_len);

        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(sealed_file_len as u64 - 1).unwrap();
        assert!(matches!(
            read_range(store, &alice, &record, 0, 10, 4096),
            Err(Error::Integrity { .. })
        ));

        let mut altered = intact.clone();
        altered[7] = 9; // unknown format version
        std::fs::write(&path, &altered).unwrap();
        assert!(matches!(
            read_range(store, &alice, &record, 0, 10, 4096),
            Err(Error::Integrity { .. })
        ));
        let mut altered = intact.clone();
        altered[0] = b'X';
        std::fs::write(&path, &altered).unwrap();
        assert!(matches!(
            read_range(store, &alice, &record, 0, 10, 4096),
            Err(Error::Integrity { .. })
        ));
        std::fs::write(&path, &intact).unwrap();
        assert_eq!(read_all(store, &alice, &record), data);
    });
}

#[test]
fn data_persists_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (small, large) = (b"inline".to_vec(), bytes(100_000, 10));
    let alice;
    {
        let store = open_rocks(dir.path());
        alice = scope(&store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        put(&store, &alice, &bucket, "small", &small);
        put(&store, &alice, &bucket, "dir/large", &large);
    }
    let store = open_rocks(dir.path());
    let bucket = store.bucket(&alice, "b").unwrap();
    assert_eq!(
        read_all(
            &store,
            &alice,
            &store.object(&alice, &bucket, "small").unwrap()
        ),
        small
    );
    let record = store.object(&alice, &bucket, "dir/large").unwrap();
    assert_eq!(record.meta.size, 100_000);
    assert_eq!(read_all(&store, &alice, &record), large);
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
    assert_eq!(page.entries.len(), 2);
}

#[test]
fn concurrent_overwrites_leak_no_file() {
    each_store(|store, dir| {
        let alice = std::sync::Arc::new(scope(store));
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        std::thread::scope(|threads| {
            for seed in 0..4u8 {
                let (alice, bucket) = (alice.clone(), bucket.clone());
                threads.spawn(move || {
                    for round in 0..10u8 {
                        put(store, &alice, &bucket, "k", &bytes(2000, seed * 16 + round));
                    }
                });
            }
        });
        gc(store);
        assert_eq!(
            array_files(dir).len(),
            1,
            "only the last version's file remains"
        );
        let record = store.object(&alice, &bucket, "k").unwrap();
        assert_eq!(read_all(store, &alice, &record).len(), 2000);
    });
}

#[test]
fn handles_can_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<coffre_storage::Store>();
    send::<coffre_storage::DataWriter>();
    send::<coffre_storage::WrittenData>();
    send::<coffre_storage::ObjectReader>();
}

#[test]
fn a_read_that_started_survives_an_overwrite_and_its_collection() {
    each_store(|store, _| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let old = bytes(3 * INLINE_MAX, 7);
        let record = put(store, &alice, &bucket, "k", &old);
        // A GET has looked the object up and made its reader...
        let mut reader = store.object_reader(&alice, &record, None).unwrap();
        // ...when the key is overwritten and the old data file collected.
        put(store, &alice, &bucket, "k", &bytes(100, 8));
        assert_eq!(gc(store).files_removed, 1);
        let mut read = Vec::new();
        reader
            .read_range(0, u64::MAX, 4096, &mut |chunk| {
                read.extend_from_slice(&chunk);
                true
            })
            .unwrap();
        assert_eq!(read, old);
    });
}

#[test]
fn a_read_in_steps_survives_a_collection_between_its_steps() {
    each_store(|store, _| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let old = bytes(200_000, 3);
        let record = put(store, &alice, &bucket, "k", &old);
        let mut reader = store.object_reader(&alice, &record, None).unwrap();
        let mut read = Vec::new();
        let mut step = |reader: &mut coffre_storage::ObjectReader, from: u64, to: u64| {
            reader
                .read_range(from, to, 4096, &mut |chunk| {
                    read.extend_from_slice(&chunk);
                    true
                })
                .unwrap();
        };
        // A GET streamed in steps (one per window of the response): the first step...
        step(&mut reader, 0, 70_000);
        // ...then the key is deleted and its file collected before the next step.
        store.delete_object(&alice, &bucket, "k").unwrap();
        assert_eq!(gc(store).files_removed, 1);
        step(&mut reader, 70_000, 200_000);
        assert_eq!(read, old);
    });
}
