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
        put(store, &alice, &bucket, "small", &bytes(10, 1));
        put(store, &alice, &bucket, "large", &bytes(5000, 2));
        assert_eq!(
            (usage(store, &alice).bytes, usage(store, &alice).objects),
            (5010, 2)
        );
        put(store, &alice, &bucket, "large", &bytes(3000, 3));
        assert_eq!(
            (usage(store, &alice).bytes, usage(store, &alice).objects),
            (3010, 2)
        );
        store.delete_object(&alice, &bucket, "small").unwrap();
        assert_eq!(
            (usage(store, &alice).bytes, usage(store, &alice).objects),
            (3000, 1)
        );

        // Parts count while the upload is open; unchosen ones stop counting at completion.
        let upload = store
            .create_upload(&alice, &bucket, "mp", ObjectMeta::default(), None)
            .unwrap();
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
        assert_eq!(usage(store, &alice).bytes, 3000 + 2600);
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
        assert_eq!(
            (usage(store, &alice).bytes, usage(store, &alice).objects),
            (5500, 2)
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
        assert_eq!(usage(store, &alice).bytes, 6400);
        assert_eq!(usage(store, &alice).uploads, 1);
        store
            .abort_upload(&alice, &bucket, &aborted.address())
            .unwrap();
        assert_eq!(usage(store, &alice).uploads, 0);
        assert_eq!(
            (usage(store, &alice).bytes, usage(store, &alice).objects),
            (5500, 2)
        );

        // Another tenant's usage is its own.
        let bob = scope(store);
        assert_eq!(usage(store, &bob), Usage::default());
    });
}

#[test]
fn a_put_past_the_byte_quota_is_refused_and_leaves_no_file() {
    each_store(|store, dir| {
        let alice = limited(store, Some(6000), None);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        put(store, &alice, &bucket, "first", &bytes(5000, 1));
        let files_before = array_files(dir);

        let data = bytes(1500, 2);
        let written = write(store, &alice, &bucket, &data, 500);
        assert!(matches!(
            store.put_object(&alice, &bucket, "second", meta_for(&data), written),
            Err(Error::QuotaExceeded {
                what: "bytes",
                limit: 6000
            })
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
        assert_eq!(usage(store, &alice).bytes, 5000);

        // Shrinking an object always passes; what then fits, fits.
        put(store, &alice, &bucket, "first", &bytes(4000, 3));
        put(store, &alice, &bucket, "second", &bytes(2000, 4));
        assert_eq!(usage(store, &alice).bytes, 6000);
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
        let alice = limited(store, Some(3000), None);
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
        assert_eq!(usage(store, &alice).bytes, 2900);
    });
}

#[test]
fn quotas_can_be_raised_and_removed() {
    each_store(|store, _| {
        let admin = AdminScope::local_operator();
        let alice = limited(store, Some(10), Some(1));
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
    let alice = std::sync::Arc::new(limited(&store, Some(10 * 2000), None));
    let bucket = store.create_bucket(&alice, "b", "r").unwrap();
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let (store, alice, bucket) = (store.clone(), alice.clone(), bucket.clone());
            std::thread::spawn(move || {
                let data = bytes(2000, i as u8);
                let written = write(&store, &alice, &bucket, &data, 1000);
                store
                    .put_object(&alice, &bucket, &format!("k{i}"), meta_for(&data), written)
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
    assert_eq!(usage(&store, &alice).bytes, 20_000);
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
    assert_eq!(usage(&store, &alice).bytes, 4000);
    let bucket = store.bucket(&alice, "b").unwrap();
    let written = write(&store, &alice, &bucket, &bytes(2000, 2), 1000);
    assert!(matches!(
        store.put_object(&alice, &bucket, "more", meta_for(&bytes(2000, 2)), written),
        Err(Error::QuotaExceeded { .. })
    ));
}

#[test]
fn the_early_byte_check_sees_committed_usage_and_reserves_nothing() {
    each_store(|store, _| {
        let alice = limited(store, Some(1000), None);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        put(store, &alice, &bucket, "k", &bytes(600, 1));
        assert!(matches!(
            store.check_room_for_object(&alice, &bucket, "k2", 401),
            Err(Error::QuotaExceeded { what: "bytes", .. })
        ));
        // Checking twice reserves nothing: 400 bytes still fit, and the write commits.
        store
            .check_room_for_object(&alice, &bucket, "k2", 400)
            .unwrap();
        store
            .check_room_for_object(&alice, &bucket, "k2", 400)
            .unwrap();
        put(store, &alice, &bucket, "k2", &bytes(400, 2));
        // The quota is full; an overwrite counts only its growth: as large passes, larger
        // does not.
        store
            .check_room_for_object(&alice, &bucket, "k", 600)
            .unwrap();
        store
            .check_room_for_object(&alice, &bucket, "k", 100)
            .unwrap();
        assert!(matches!(
            store.check_room_for_object(&alice, &bucket, "k", 601),
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
