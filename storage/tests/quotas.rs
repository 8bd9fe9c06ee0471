//! Usage counters follow every commit, and quotas refuse growth with nothing stored.

#![allow(clippy::unwrap_used)]

mod harness;

use coffre_crypto::{AdminScope, TenantScope};
use coffre_storage::{
    BucketRecord, ChosenPart, Completion, Error, ObjectMeta, PartInfo, Quotas, Store,
    TenantSettings, TenantUpdate, UploadAddress, UploadListQuery, Usage,
};
use harness::*;

fn usage(store: &Store, scope: &TenantScope) -> Usage {
    store
        .tenant_usage(&AdminScope::local_operator(), scope.tenant_id())
        .unwrap()
}

fn limited(store: &Store, bytes: Option<u64>, objects: Option<u64>) -> TenantScope {
    with_quotas(
        store,
        Quotas {
            bytes,
            objects,
            uploads: None,
        },
    )
}

fn with_quotas(store: &Store, quotas: Quotas) -> TenantScope {
    tenant_scope(
        store,
        TenantSettings {
            quotas,
            ..TenantSettings::default()
        },
    )
}

/// A tenant allowed `uploads` multipart uploads in progress, and nothing else limited.
fn upload_limited(store: &Store, uploads: u64) -> TenantScope {
    with_quotas(
        store,
        Quotas {
            uploads: Some(uploads),
            ..Quotas::default()
        },
    )
}

/// The uploads in progress in `bucket`, as a listing shows them.
fn listed_uploads(store: &Store, scope: &TenantScope, bucket: &BucketRecord) -> usize {
    let query = UploadListQuery {
        max_uploads: 10_000,
        ..UploadListQuery::default()
    };
    store
        .list_uploads(scope, bucket, &query)
        .unwrap()
        .uploads
        .len()
}

/// The bytes the object at `key` counts in its tenant's usage: data and record.
fn charged(store: &Store, scope: &TenantScope, bucket: &BucketRecord, key: &str) -> u64 {
    store.object_charge(scope, bucket, key).unwrap().unwrap()
}

/// What `put` of `data` at `key` is charged, measured on a tenant of its own: its data
/// and its record (key and metadata as stored), which depends on the key and metadata only.
fn charge_of(store: &Store, key: &str, data: &[u8]) -> u64 {
    let probe = scope(store);
    let bucket = store.create_bucket(&probe, "probe", "r").unwrap();
    put(store, &probe, &bucket, key, data);
    let charge = charged(store, &probe, &bucket, key);
    assert_eq!(usage(store, &probe).bytes, charge);
    assert!(charge >= data.len() as u64 + key.len() as u64);
    charge
}

/// The record bytes an upload of `key` with default metadata is charged while in
/// progress, measured on a tenant of its own.
fn upload_charge_of(store: &Store, key: &str) -> u64 {
    let probe = scope(store);
    let bucket = store.create_bucket(&probe, "probe", "r").unwrap();
    store
        .create_upload(&probe, &bucket, key, ObjectMeta::default(), None)
        .unwrap();
    let charge = usage(store, &probe).bytes;
    assert!(charge >= key.len() as u64);
    charge
}

/// The ETag these tests give part `number` of `len` bytes.
fn part_etag(number: u32, len: usize) -> String {
    format!("{number:08x}{len:024x}")
}

fn put_part(
    store: &Store,
    scope: &TenantScope,
    bucket: &BucketRecord,
    upload: &UploadAddress,
    number: u32,
    data: &[u8],
) -> coffre_storage::Result<()> {
    let written = write_part(store, scope, bucket, upload, number, data, 4096);
    let info = PartInfo {
        etag: part_etag(number, data.len()),
        size: data.len() as u64,
        checksums: vec![],
    };
    store.put_part(scope, bucket, upload, number, info, written)
}

#[test]
fn usage_follows_puts_overwrites_deletes_and_uploads() {
    each_store(|store, _| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        assert_eq!(
            usage(store, &alice),
            Usage {
                bytes: 0,
                objects: 0,
                uploads: 0,
                buckets: 1
            }
        );
        // Each object counts its data and its record.
        put(store, &alice, &bucket, "small", &bytes(10, 1));
        put(store, &alice, &bucket, "large", &bytes(5000, 2));
        let small = charge_of(store, "small", &bytes(10, 1));
        assert_eq!(charged(store, &alice, &bucket, "small"), small);
        assert_eq!(
            (usage(store, &alice).bytes, usage(store, &alice).objects),
            (small + charge_of(store, "large", &bytes(5000, 2)), 2)
        );
        put(store, &alice, &bucket, "large", &bytes(3000, 3));
        let large = charge_of(store, "large", &bytes(3000, 3));
        assert_eq!(
            (usage(store, &alice).bytes, usage(store, &alice).objects),
            (small + large, 2)
        );
        store.delete_object(&alice, &bucket, "small").unwrap();
        assert_eq!(
            (usage(store, &alice).bytes, usage(store, &alice).objects),
            (large, 1)
        );

        // Parts count while the upload is open, and so does the upload's record; unchosen
        // parts and the upload's record stop counting at completion.
        let upload = store
            .create_upload(&alice, &bucket, "mp", ObjectMeta::default(), None)
            .unwrap();
        let upload_record = upload_charge_of(store, "mp");
        assert_eq!(usage(store, &alice).bytes, large + upload_record);
        put_part(
            store,
            &alice,
            &bucket,
            &upload.address(),
            1,
            &bytes(2000, 4),
        )
        .unwrap();
        put_part(store, &alice, &bucket, &upload.address(), 2, &bytes(700, 5)).unwrap();
        put_part(store, &alice, &bucket, &upload.address(), 2, &bytes(500, 6)).unwrap();
        put_part(store, &alice, &bucket, &upload.address(), 3, &bytes(100, 7)).unwrap();
        assert_eq!(usage(store, &alice).bytes, large + upload_record + 2600);
        assert_eq!(usage(store, &alice).uploads, 1);
        store
            .complete_upload(
                &alice,
                &bucket,
                &upload.address(),
                &Completion::of_parts(vec![
                    ChosenPart::new(1, part_etag(1, 2000)),
                    ChosenPart::new(2, part_etag(2, 500)),
                ]),
            )
            .unwrap();
        let completed = charged(store, &alice, &bucket, "mp");
        assert!(completed > 2500 + 2, "the object's record counts");
        assert_eq!(
            (usage(store, &alice).bytes, usage(store, &alice).objects),
            (large + completed, 2)
        );
        assert_eq!(usage(store, &alice).uploads, 0);

        let aborted = store
            .create_upload(&alice, &bucket, "gone", ObjectMeta::default(), None)
            .unwrap();
        put_part(
            store,
            &alice,
            &bucket,
            &aborted.address(),
            1,
            &bytes(900, 8),
        )
        .unwrap();
        assert_eq!(
            usage(store, &alice).bytes,
            large + completed + upload_charge_of(store, "gone") + 900
        );
        assert_eq!(usage(store, &alice).uploads, 1);
        store
            .abort_upload(&alice, &bucket, &aborted.address())
            .unwrap();
        assert_eq!(usage(store, &alice).uploads, 0);
        assert_eq!(
            (usage(store, &alice).bytes, usage(store, &alice).objects),
            (large + completed, 2)
        );

        // Deleting everything brings usage back to exactly zero.
        for key in ["large", "mp"] {
            store.delete_object(&alice, &bucket, key).unwrap();
        }
        assert_eq!(
            usage(store, &alice),
            Usage {
                buckets: 1,
                ..Usage::default()
            }
        );

        // Another tenant's usage is its own.
        let bob = scope(store);
        assert_eq!(usage(store, &bob), Usage::default());
    });
}

#[test]
fn a_put_past_the_byte_quota_is_refused_and_leaves_no_file() {
    each_store(|store, dir| {
        // Room for exactly these two, records included.
        let quota = charge_of(store, "first", &bytes(4000, 3))
            + charge_of(store, "second", &bytes(2000, 4));
        let alice = limited(store, Some(quota), None);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        put(store, &alice, &bucket, "first", &bytes(5000, 1));
        let files_before = array_files(dir);

        let data = bytes(1500, 2);
        let written = write(store, &alice, &bucket, &data, 500);
        assert!(matches!(
            store.put_object(&alice, &bucket, "second", meta_for(&data), written),
            Err(Error::QuotaExceeded { what: "bytes", limit }) if limit == quota
        ));
        assert_eq!(
            array_files(dir),
            files_before,
            "the refused data file is removed"
        );
        assert!(matches!(
            store.object(&alice, &bucket, "second"),
            Err(Error::NoSuchKey)
        ));
        assert_eq!(
            usage(store, &alice).bytes,
            charged(store, &alice, &bucket, "first")
        );

        // Shrinking an object always passes; what then fits, fits.
        put(store, &alice, &bucket, "first", &bytes(4000, 3));
        put(store, &alice, &bucket, "second", &bytes(2000, 4));
        assert_eq!(usage(store, &alice).bytes, quota);
    });
}

#[test]
fn the_object_quota_refuses_new_objects_and_completions() {
    each_store(|store, _| {
        let alice = limited(store, None, Some(2));
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        put(store, &alice, &bucket, "a", b"1");
        put(store, &alice, &bucket, "b", b"2");
        let written = write(store, &alice, &bucket, b"3", 10);
        assert!(matches!(
            store.put_object(&alice, &bucket, "c", meta_for(b"3"), written),
            Err(Error::QuotaExceeded {
                what: "objects",
                limit: 2
            })
        ));
        // Overwriting is not a new object.
        put(store, &alice, &bucket, "a", b"one");

        let upload = store
            .create_upload(&alice, &bucket, "c", ObjectMeta::default(), None)
            .unwrap();
        put_part(store, &alice, &bucket, &upload.address(), 1, b"part").unwrap();
        let refused = store.complete_upload(
            &alice,
            &bucket,
            &upload.address(),
            &Completion::of_parts(vec![ChosenPart::new(1, part_etag(1, 4))]),
        );
        assert!(matches!(
            refused,
            Err(Error::QuotaExceeded {
                what: "objects",
                ..
            })
        ));
        // Nothing changed: the upload is still there to be aborted.
        store.upload(&alice, &bucket, &upload.address()).unwrap();
        assert!(matches!(
            store.object(&alice, &bucket, "c"),
            Err(Error::NoSuchKey)
        ));
        assert_eq!(usage(store, &alice).objects, 2);
    });
}

#[test]
fn a_part_past_the_byte_quota_is_refused() {
    each_store(|store, dir| {
        // 3000 bytes of parts, and the upload's record.
        let record = upload_charge_of(store, "k");
        let alice = limited(store, Some(3000 + record), None);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let upload = store
            .create_upload(&alice, &bucket, "k", ObjectMeta::default(), None)
            .unwrap();
        put_part(
            store,
            &alice,
            &bucket,
            &upload.address(),
            1,
            &bytes(2000, 1),
        )
        .unwrap();
        let files_before = array_files(dir);
        assert!(matches!(
            put_part(
                store,
                &alice,
                &bucket,
                &upload.address(),
                2,
                &bytes(2000, 2)
            ),
            Err(Error::QuotaExceeded { what: "bytes", .. })
        ));
        assert_eq!(array_files(dir), files_before);
        // Replacing part 1 by a larger one counts only the difference.
        put_part(
            store,
            &alice,
            &bucket,
            &upload.address(),
            1,
            &bytes(2900, 3),
        )
        .unwrap();
        assert_eq!(usage(store, &alice).bytes, 2900 + record);
    });
}

#[test]
fn quotas_can_be_raised_and_removed() {
    each_store(|store, _| {
        let admin = AdminScope::local_operator();
        let full = charge_of(store, "a", b"0123456789");
        let alice = limited(store, Some(full), Some(1));
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        put(store, &alice, &bucket, "a", b"0123456789");
        let written = write(store, &alice, &bucket, b"x", 10);
        assert!(store
            .put_object(&alice, &bucket, "b", meta_for(b"x"), written)
            .is_err());
        let updated = store
            .update_tenant(
                &admin,
                alice.tenant_id(),
                TenantUpdate {
                    quota_bytes: Some(None),
                    quota_objects: Some(Some(5)),
                    ..TenantUpdate::default()
                },
            )
            .unwrap();
        assert_eq!(
            updated.quotas,
            Quotas {
                bytes: None,
                objects: Some(5),
                uploads: None,
            }
        );
        put(store, &alice, &bucket, "b", &bytes(100, 1));
    });
}

#[test]
fn concurrent_writes_cannot_pass_a_quota_together() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_rocks(dir.path());
    // Every object the same size, record included: room for exactly ten.
    let each = charge_of(&store, "k00", &bytes(2000, 7));
    let alice = std::sync::Arc::new(limited(&store, Some(10 * each), None));
    let bucket = store.create_bucket(&alice, "b", "r").unwrap();
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let (store, alice, bucket) = (store.clone(), alice.clone(), bucket.clone());
            std::thread::spawn(move || {
                let data = bytes(2000, 7);
                let written = write(&store, &alice, &bucket, &data, 1000);
                store
                    .put_object(
                        &alice,
                        &bucket,
                        &format!("k{i:02}"),
                        meta_for(&data),
                        written,
                    )
                    .is_ok()
            })
        })
        .collect();
    let stored = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|ok| *ok)
        .count();
    assert_eq!(stored, 10);
    assert_eq!(usage(&store, &alice).bytes, 10 * each);
}

#[test]
fn usage_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let alice;
    {
        let store = open_rocks(dir.path());
        alice = limited(&store, Some(5000), None);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        put(&store, &alice, &bucket, "k", &bytes(4000, 1));
    }
    let store = open_rocks(dir.path());
    let bucket = store.bucket(&alice, "b").unwrap();
    assert_eq!(
        usage(&store, &alice).bytes,
        charged(&store, &alice, &bucket, "k")
    );
    let written = write(&store, &alice, &bucket, &bytes(2000, 2), 1000);
    assert!(matches!(
        store.put_object(&alice, &bucket, "more", meta_for(&bytes(2000, 2)), written),
        Err(Error::QuotaExceeded { .. })
    ));
}

#[test]
fn the_early_byte_check_sees_committed_usage_and_reserves_nothing() {
    each_store(|store, _| {
        // The early check knows the data's size only: it leaves the record's bytes to
        // the commit.
        let k = charge_of(store, "k", &bytes(600, 1));
        let room = charge_of(store, "k2", &bytes(400, 2));
        let alice = limited(store, Some(k + room), None);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        put(store, &alice, &bucket, "k", &bytes(600, 1));
        assert!(matches!(
            store.check_room_for_object(&alice, &bucket, "k2", room + 1),
            Err(Error::QuotaExceeded { what: "bytes", .. })
        ));
        // Checking twice reserves nothing: `room` still fits, and the write commits.
        store
            .check_room_for_object(&alice, &bucket, "k2", room)
            .unwrap();
        store
            .check_room_for_object(&alice, &bucket, "k2", room)
            .unwrap();
        put(store, &alice, &bucket, "k2", &bytes(400, 2));
        assert_eq!(usage(store, &alice).bytes, k + room);
        // The quota is full; an overwrite counts only its growth over what the object is
        // charged: as large passes, larger does not.
        store
            .check_room_for_object(&alice, &bucket, "k", k)
            .unwrap();
        store
            .check_room_for_object(&alice, &bucket, "k", 100)
            .unwrap();
        assert!(matches!(
            store.check_room_for_object(&alice, &bucket, "k", k + 1),
            Err(Error::QuotaExceeded { what: "bytes", .. })
        ));
        // No byte quota: nothing to check.
        let bob = scope(store);
        let bobs = store.create_bucket(&bob, "b", "r").unwrap();
        store
            .check_room_for_object(&bob, &bobs, "k", u64::MAX)
            .unwrap();
    });
}

#[test]
fn the_upload_quota_refuses_a_create_past_it_and_records_nothing() {
    each_store(|store, _| {
        let admin = AdminScope::local_operator();
        let alice = upload_limited(store, 2);
        let b1 = store.create_bucket(&alice, "b1", "r").unwrap();
        let b2 = store.create_bucket(&alice, "b2", "r").unwrap();
        let create = |bucket: &BucketRecord, key: &str| {
            store.create_upload(&alice, bucket, key, ObjectMeta::default(), None)
        };
        // The quota is the tenant's, across its buckets.
        let first = create(&b1, "a").unwrap();
        let second = create(&b2, "b").unwrap();
        assert_eq!(usage(store, &alice).uploads, 2);
        assert!(matches!(
            create(&b1, "c"),
            Err(Error::QuotaExceeded {
                what: "uploads",
                limit: 2
            })
        ));
        // Nothing recorded: neither the upload nor its count.
        assert_eq!(listed_uploads(store, &alice, &b1), 1);
        assert_eq!(usage(store, &alice).uploads, 2);
        // Parts and objects are not limited by it.
        put_part(store, &alice, &b1, &first.address(), 1, b"part").unwrap();
        put(store, &alice, &b1, "plain", b"data");

        // An abort frees a place, a completion too.
        store.abort_upload(&alice, &b2, &second.address()).unwrap();
        assert_eq!(usage(store, &alice).uploads, 1);
        let third = create(&b2, "c").unwrap();
        assert!(create(&b2, "d").is_err());
        store
            .complete_upload(
                &alice,
                &b1,
                &first.address(),
                &Completion::of_parts(vec![ChosenPart::new(1, part_etag(1, 4))]),
            )
            .unwrap();
        assert_eq!(usage(store, &alice).uploads, 1);
        let fourth = create(&b1, "d").unwrap();

        // A refused completion (no such part) changes nothing: the upload still counts.
        assert!(store
            .complete_upload(
                &alice,
                &b1,
                &fourth.address(),
                &Completion::of_parts(vec![ChosenPart::new(1, part_etag(1, 4))]),
            )
            .is_err());
        assert_eq!(usage(store, &alice).uploads, 2);

        // A lowered quota refuses new uploads and aborts nothing; raised, it lets them in;
        // removed, it limits nothing.
        let lowered = TenantUpdate {
            quota_uploads: Some(Some(1)),
            ..TenantUpdate::default()
        };
        let updated = store
            .update_tenant(&admin, alice.tenant_id(), lowered)
            .unwrap();
        assert_eq!(updated.quotas.uploads, Some(1));
        assert!(create(&b1, "e").is_err());
        store.abort_upload(&alice, &b2, &third.address()).unwrap();
        assert!(create(&b1, "e").is_err(), "2 - 1 is still at the quota");
        let removed = TenantUpdate {
            quota_uploads: Some(None),
            ..TenantUpdate::default()
        };
        store
            .update_tenant(&admin, alice.tenant_id(), removed)
            .unwrap();
        for i in 0..5 {
            create(&b1, &format!("many{i}")).unwrap();
        }
        assert_eq!(usage(store, &alice).uploads, 6);

        // Another tenant's uploads are its own.
        let bob = upload_limited(store, 1);
        let bobs = store.create_bucket(&bob, "b", "r").unwrap();
        store
            .create_upload(&bob, &bobs, "k", ObjectMeta::default(), None)
            .unwrap();
        assert_eq!(usage(store, &bob).uploads, 1);
    });
}

#[test]
fn concurrent_creates_never_pass_the_upload_quota() {
    each_store(|store, _| {
        let alice = std::sync::Arc::new(upload_limited(store, 5));
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        for round in 0..2 {
            let created = std::thread::scope(|threads| {
                let handles: Vec<_> = (0..16)
                    .map(|i| {
                        let (alice, bucket) = (alice.clone(), bucket.clone());
                        threads.spawn(move || {
                            store
                                .create_upload(
                                    &alice,
                                    &bucket,
                                    &format!("k{i}"),
                                    ObjectMeta::default(),
                                    None,
                                )
                                .map_err(|e| match e {
                                    Error::QuotaExceeded {
                                        what: "uploads", ..
                                    } => e,
                                    other => panic!("unexpected {other:?}"),
                                })
                                .ok()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .filter_map(|h| h.join().unwrap())
                    .collect::<Vec<_>>()
            });
            assert_eq!(created.len(), 5, "round {round}");
            assert_eq!(usage(store, &alice).uploads, 5);
            assert_eq!(listed_uploads(store, &alice, &bucket), 5);
            // Concurrent aborts bring the count back to exactly zero.
            std::thread::scope(|threads| {
                for upload in &created {
                    let (alice, bucket) = (alice.clone(), bucket.clone());
                    threads.spawn(move || {
                        store
                            .abort_upload(&alice, &bucket, &upload.address())
                            .unwrap()
                    });
                }
            });
            assert_eq!(usage(store, &alice).uploads, 0);
            assert_eq!(listed_uploads(store, &alice, &bucket), 0);
        }
    });
}

#[test]
fn uploads_are_counted_exactly_through_several_nodes() {
    // Two stores over one PostgreSQL database: two gateways.
    let url = harness::postgres::fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let nodes = [
        open_postgres_node(dir.path(), &url),
        open_postgres_node(dir.path(), &url),
    ];
    let alice = scope(&nodes[0]);
    let bucket = nodes[0].create_bucket(&alice, "b", "r").unwrap();
    let created = std::thread::scope(|threads| {
        let handles: Vec<_> = (0..12)
            .map(|i| {
                let (node, alice, bucket) = (&nodes[i % 2], &alice, &bucket);
                threads.spawn(move || {
                    node.create_upload(alice, bucket, &format!("k{i}"), ObjectMeta::default(), None)
                        .unwrap()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(usage(&nodes[1], &alice).uploads, 12);
    std::thread::scope(|threads| {
        for (i, upload) in created.iter().enumerate() {
            let (node, alice, bucket) = (&nodes[(i + 1) % 2], &alice, &bucket);
            threads.spawn(move || node.abort_upload(alice, bucket, &upload.address()).unwrap());
        }
    });
    assert_eq!(usage(&nodes[0], &alice).uploads, 0);
}

#[test]
fn metadata_counts_against_the_byte_quota() {
    each_store(|store, _| {
        let alice = limited(store, Some(10_000), None);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        // Empty objects, each with 2 KiB of user metadata.
        let put_empty = |key: &str| {
            let mut meta = meta_for(b"");
            meta.user_metadata = vec![("note".into(), "x".repeat(2048))];
            let written = write(store, &alice, &bucket, b"", 10);
            store.put_object(&alice, &bucket, key, meta, written)
        };
        let mut stored = 0;
        let refused = loop {
            match put_empty(&format!("empty-{stored}")) {
                Ok(_) => stored += 1,
                Err(e) => break e,
            }
        };
        assert!(matches!(
            refused,
            Error::QuotaExceeded { what: "bytes", .. }
        ));
        assert_eq!(
            stored, 4,
            "10 000 bytes hold four records of 2 KiB, not a fifth"
        );
        let used = usage(store, &alice).bytes;
        assert!(used >= 4 * (2048 + 4 + 7), "{used}");
        assert!(used <= 10_000);
        assert_eq!(
            used,
            (0..4)
                .map(|i| charged(store, &alice, &bucket, &format!("empty-{i}")))
                .sum::<u64>()
        );

        // Tags count too: setting them grows usage, removing them gives the bytes back,
        // and a tag set past the quota is refused with nothing changed.
        store.delete_object(&alice, &bucket, "empty-3").unwrap();
        let before = usage(store, &alice).bytes;
        let tags = vec![("project".to_string(), "y".repeat(200))];
        store
            .put_object_tags(&alice, &bucket, "empty-0", &tags)
            .unwrap();
        let tagged = usage(store, &alice).bytes;
        assert!(tagged >= before + 207, "{before} -> {tagged}");
        let huge = vec![("k".to_string(), "z".repeat(10_000 - tagged as usize + 1))];
        assert!(matches!(
            store.put_object_tags(&alice, &bucket, "empty-1", &huge),
            Err(Error::QuotaExceeded { what: "bytes", .. })
        ));
        assert_eq!(usage(store, &alice).bytes, tagged);
        assert!(store
            .object(&alice, &bucket, "empty-1")
            .unwrap()
            .meta
            .tags
            .is_empty());
        store
            .put_object_tags(&alice, &bucket, "empty-0", &[])
            .unwrap();
        assert_eq!(usage(store, &alice).bytes, before);

        // A copy is charged its record as well as its data.
        let source = store.object(&alice, &bucket, "empty-1").unwrap();
        let meta = source.meta.clone();
        store
            .copy_object(&alice, &source, &bucket, "copy", meta, None)
            .unwrap()
            .unwrap();
        assert!(usage(store, &alice).bytes >= before + 2048 + 4);

        // An upload's metadata counts while it is in progress.
        let meta = ObjectMeta {
            user_metadata: vec![("note".into(), "u".repeat(3000))],
            ..ObjectMeta::default()
        };
        assert!(matches!(
            store.create_upload(&alice, &bucket, "mp", meta, None),
            Err(Error::QuotaExceeded { what: "bytes", .. })
        ));
        assert_eq!(usage(store, &alice).uploads, 0);

        // Deleting everything brings usage back to exactly zero.
        for key in ["empty-0", "empty-1", "empty-2", "copy"] {
            store.delete_object(&alice, &bucket, key).unwrap();
        }
        assert_eq!(
            usage(store, &alice),
            Usage {
                buckets: 1,
                ..Usage::default()
            }
        );
    });
}
