//! Multipart uploads: parts, superseded parts, completion, abort, and upload listing.

#![allow(clippy::unwrap_used)]

mod harness;

use std::cell::Cell;
use std::collections::BTreeSet;

use coffre_crypto::{MaintenanceScope, TenantScope};
use coffre_storage::{
    BucketRecord, ChosenPart, Completion, Error, ObjectMeta, PartInfo, Store, UploadAddress,
    UploadListQuery, WriteTarget,
};
use harness::*;
use md5::{Digest, Md5};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn put_part(
    store: &Store,
    scope: &TenantScope,
    bucket: &BucketRecord,
    upload: &UploadAddress,
    n: u32,
    data: &[u8],
) -> String {
    let written = write_part(store, scope, bucket, upload, n, data, 1000);
    let etag = hex::encode(Md5::digest(data));
    let info = PartInfo {
        etag: etag.clone(),
        size: data.len() as u64,
        checksums: vec![("CRC32".into(), "AAAAAA==".into())],
    };
    store
        .put_part(scope, bucket, upload, n, info, written)
        .unwrap();
    etag
}

/// Completes with `parts` (number, etag), in that order.
fn completion(parts: &[(u32, &str)]) -> Completion {
    Completion::of_parts(
        parts
            .iter()
            .map(|(n, etag)| ChosenPart::new(*n, *etag))
            .collect(),
    )
}

/// The S3 multipart ETag, computed here from the parts' data.
fn multipart_etag(parts: &[&[u8]]) -> String {
    let mut md5 = Md5::new();
    for part in parts {
        md5.update(Md5::digest(part));
    }
    format!("{}-{}", hex::encode(md5.finalize()), parts.len())
}

fn gc(store: &Store) -> u64 {
    store
        .collect_garbage(&MaintenanceScope::new("test"), &lease(store, "gc"))
        .unwrap()
        .files_removed
}

#[test]
fn parts_are_superseded_then_completed_into_one_object() {
    each_store(|store, dir| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        put(store, &alice, &bucket, "big", &bytes(2000, 1)); // replaced by the completion
        let meta = ObjectMeta {
            content_type: Some("text/plain".into()),
            ..ObjectMeta::default()
        };
        let upload = store
            .create_upload(&alice, &bucket, "big", meta.clone(), None)
            .unwrap();
        let id = upload.address();
        assert_eq!(store.upload(&alice, &bucket, &id).unwrap(), upload);
        assert_eq!(upload.meta, meta);

        let (p1, p2_old, p2, p3) = (
            bytes(3000, 2),
            bytes(2500, 3),
            bytes(2600, 4),
            bytes(1500, 5),
        );
        let e1 = put_part(store, &alice, &bucket, &id, 1, &p1);
        put_part(store, &alice, &bucket, &id, 2, &p2_old);
        let e2 = put_part(store, &alice, &bucket, &id, 2, &p2);
        let e3 = put_part(store, &alice, &bucket, &id, 3, &p3);
        let tail = put_part(store, &alice, &bucket, &id, 4, b"tail");
        let short = bytes(MIN_PART_SIZE as usize - 1, 6);
        let e5 = put_part(store, &alice, &bucket, &id, 5, &short);
        assert_eq!(gc(store), 1, "the superseded part 2");

        let (parts, truncated) = store.list_parts(&alice, &bucket, &id, 0, 2).unwrap();
        assert_eq!(
            parts.iter().map(|p| p.part_number).collect::<Vec<_>>(),
            [1, 2]
        );
        assert!(truncated);
        assert_eq!((parts[1].etag.as_str(), parts[1].size), (e2.as_str(), 2600));
        let (parts, truncated) = store.list_parts(&alice, &bucket, &id, 2, 10).unwrap();
        assert_eq!(
            parts.iter().map(|p| p.part_number).collect::<Vec<_>>(),
            [3, 4, 5]
        );
        assert!(!truncated);

        // S3's rules, checked against the stored parts.
        let refusals = [
            (completion(&[(1, &e1), (6, &e1)]), "a missing part"),
            (completion(&[(1, &e1), (2, &e1)]), "another part's etag"),
            (completion(&[(2, &e2), (1, &e1)]), "descending numbers"),
            (completion(&[(1, &e1), (1, &e1)]), "a part twice"),
            (
                completion(&[(4, &tail), (5, &e5)]),
                "a short part before the last",
            ),
            (completion(&[]), "no part"),
        ];
        for (refused, what) in refusals {
            let outcome = store.complete_upload(&alice, &bucket, &id, &refused);
            let expected = match what {
                "a missing part" => matches!(outcome, Err(Error::InvalidPart { part_number: 6 })),
                "another part's etag" => {
                    matches!(outcome, Err(Error::InvalidPart { part_number: 2 }))
                }
                "descending numbers" | "a part twice" => {
                    matches!(outcome, Err(Error::InvalidPartOrder))
                }
                "a short part before the last" => matches!(
                    outcome,
                    Err(Error::EntityTooSmall {
                        part_number: 4,
                        size: 4,
                        min: MIN_PART_SIZE
                    })
                ),
                _ => matches!(outcome, Err(Error::NoPartsChosen)),
            };
            assert!(expected, "{what}: {outcome:?}");
        }
        // A checksum named for a part must be the stored one.
        let mut wrong_checksum = completion(&[(1, &e1)]);
        wrong_checksum.parts[0].checksums = vec![(
            coffre_crypto::checksum::ChecksumAlgorithm::Crc32,
            "BBBBBB==".into(),
        )];
        assert!(matches!(
            store.complete_upload(&alice, &bucket, &id, &wrong_checksum),
            Err(Error::InvalidPart { part_number: 1 })
        ));
        // Failures leave the upload as it was.
        assert_eq!(
            store
                .list_parts(&alice, &bucket, &id, 0, 10)
                .unwrap()
                .0
                .len(),
            5
        );

        let record = store
            .complete_upload(
                &alice,
                &bucket,
                &id,
                &completion(&[(1, &e1), (2, &e2), (4, &tail)]),
            )
            .unwrap();
        assert_eq!(record.meta.size, 3000 + 2600 + 4);
        assert_eq!(record.meta.etag, multipart_etag(&[&p1, &p2, b"tail"]));
        assert_eq!(record.meta.content_type.as_deref(), Some("text/plain"));
        assert!(record.is_multipart());
        assert_eq!(
            record
                .parts
                .iter()
                .map(|p| p.part_number)
                .collect::<Vec<_>>(),
            [1, 2, 4]
        );
        let expected = [p1.as_slice(), &p2, b"tail"].concat();
        let stored = store.object(&alice, &bucket, "big").unwrap();
        assert_eq!(stored, record);
        assert_eq!(read_all(store, &alice, &stored), expected);
        // A range across part boundaries.
        assert_eq!(
            read_range(store, &alice, &stored, 2990, 5602, 333).unwrap(),
            expected[2990..5602]
        );

        assert!(matches!(
            store.upload(&alice, &bucket, &id),
            Err(Error::NoSuchUpload)
        ));
        assert!(matches!(
            store.list_parts(&alice, &bucket, &id, 0, 10),
            Err(Error::NoSuchUpload)
        ));
        let _ = e3;
        assert_eq!(
            gc(store),
            2,
            "the unchosen part 3 and the replaced object (part 5 was inline)"
        );
        assert_eq!(array_files(dir).len(), 2, "parts 1 and 2 remain");
        store.delete_object(&alice, &bucket, "big").unwrap();
        assert_eq!(gc(store), 2);
        store.delete_bucket(&alice, "b").unwrap();
    });
}

#[test]
fn abort_removes_the_upload_and_its_data() {
    each_store(|store, dir| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let upload = store
            .create_upload(&alice, &bucket, "k", ObjectMeta::default(), None)
            .unwrap()
            .address();
        put_part(store, &alice, &bucket, &upload, 1, &bytes(5000, 1));
        put_part(store, &alice, &bucket, &upload, 2, &bytes(5000, 2));
        assert!(matches!(
            store.delete_bucket(&alice, "b"),
            Err(Error::BucketNotEmpty)
        ));

        // Another tenant cannot see or abort it.
        let bob = scope(store);
        assert!(matches!(
            store.upload(&bob, &bucket, &upload),
            Err(Error::NoSuchUpload)
        ));
        assert!(matches!(
            store.abort_upload(&bob, &bucket, &upload),
            Err(Error::NoSuchUpload)
        ));

        store.abort_upload(&alice, &bucket, &upload).unwrap();
        assert!(matches!(
            store.abort_upload(&alice, &bucket, &upload),
            Err(Error::NoSuchUpload)
        ));
        assert!(matches!(
            store.upload(&alice, &bucket, &upload),
            Err(Error::NoSuchUpload)
        ));
        assert_eq!(gc(store), 2);
        assert_eq!(array_files(dir), Vec::<std::path::PathBuf>::new());
        store.delete_bucket(&alice, "b").unwrap();
    });
}

#[test]
fn malformed_or_unknown_upload_ids_are_no_such_upload() {
    each_store(|store, _| {
        let alice = scope(store);
        for id in ["", "xyz", "../../etc", &"g".repeat(32)] {
            assert!(matches!(
                UploadAddress::new("k", id),
                Err(Error::NoSuchUpload)
            ));
        }
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let unknown = UploadAddress::new("k", &"0".repeat(32)).unwrap();
        assert_no_such_upload(store, &alice, &bucket, &unknown);
    });
}

/// Every call on `upload` fails with `NoSuchUpload`, and changes nothing.
fn assert_no_such_upload(
    store: &Store,
    scope: &TenantScope,
    bucket: &BucketRecord,
    upload: &UploadAddress,
) {
    let no_such = |what: &str, outcome: Result<(), Error>| {
        assert!(
            matches!(outcome, Err(Error::NoSuchUpload)),
            "{what}: {outcome:?}"
        );
    };
    no_such("upload", store.upload(scope, bucket, upload).map(drop));
    let target = WriteTarget::Part {
        upload: upload.clone(),
        part_number: 1,
    };
    no_such(
        "data writer",
        store.data_writer(scope, bucket, target, None).map(drop),
    );
    no_such(
        "list parts",
        store.list_parts(scope, bucket, upload, 0, 10).map(drop),
    );
    no_such(
        "customer key check",
        store.check_upload_customer_key(scope, bucket, upload, None),
    );
    let zero_etag = "0".repeat(32);
    no_such(
        "complete",
        store
            .complete_upload(scope, bucket, upload, &completion(&[(1, &zero_etag)]))
            .map(drop),
    );
    no_such("abort", store.abort_upload(scope, bucket, upload));
}

#[test]
fn an_upload_id_is_valid_only_with_its_own_key() {
    each_store(|store, _| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let upload = store
            .create_upload(&alice, &bucket, "mine", ObjectMeta::default(), None)
            .unwrap()
            .address();
        let etag = put_part(store, &alice, &bucket, &upload, 1, &bytes(500, 1));
        let elsewhere = UploadAddress::new("other", &upload.upload_id()).unwrap();
        assert_no_such_upload(store, &alice, &bucket, &elsewhere);
        // A part written for the upload cannot be recorded under another key either.
        let written = write_part(store, &alice, &bucket, &upload, 2, &bytes(500, 2), 100);
        let info = PartInfo {
            etag: "0".repeat(32),
            size: 500,
            checksums: Vec::new(),
        };
        assert!(matches!(
            store.put_part(&alice, &bucket, &elsewhere, 2, info, written),
            Err(Error::NoSuchUpload)
        ));
        // Nothing happened to the upload itself.
        let (parts, _) = store.list_parts(&alice, &bucket, &upload, 0, 10).unwrap();
        assert_eq!(parts.len(), 1);
        store
            .complete_upload(&alice, &bucket, &upload, &completion(&[(1, &etag)]))
            .unwrap();
        assert!(store
            .object(&alice, &bucket, "mine")
            .unwrap()
            .is_multipart());
        assert!(matches!(
            store.object(&alice, &bucket, "other"),
            Err(Error::NoSuchKey)
        ));
    });
}

/// Uploads as (key, upload id) in order, prefixes interleaved: (name, is prefix).
fn model(
    uploads: &BTreeSet<(String, String)>,
    query: &UploadListQuery,
) -> (Vec<(String, Option<String>)>, bool) {
    if query.max_uploads == 0 {
        return (Vec::new(), false);
    }
    let after = |key: &str, id: Option<&str>| match query.key_marker.as_deref() {
        None => true,
        Some(marker) => {
            key > marker
                || (key == marker
                    && id.is_some_and(|id| {
                        query.upload_id_marker.as_deref().is_some_and(|m| id > m)
                    }))
        }
    };
    let mut entries: BTreeSet<(String, Option<String>)> = BTreeSet::new();
    for (key, id) in uploads
        .iter()
        .filter(|(k, id)| k.starts_with(&query.prefix) && after(k, Some(id)))
    {
        let rest = &key[query.prefix.len()..];
        let group = query
            .delimiter
            .as_deref()
            .filter(|d| !d.is_empty())
            .and_then(|d| {
                rest.find(d)
                    .map(|at| key[..query.prefix.len() + at + d.len()].to_owned())
            });
        match group {
            Some(prefix) if after(&prefix, None) => {
                entries.insert((prefix, None));
            }
            Some(_) => {}
            None => {
                entries.insert((key.clone(), Some(id.clone())));
            }
        }
    }
    let truncated = entries.len() > query.max_uploads;
    (
        entries.into_iter().take(query.max_uploads).collect(),
        truncated,
    )
}

#[test]
fn upload_listing_matches_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_memory(dir.path());
    let alice = scope(&store);
    let counter = Cell::new(0);
    let key = || {
        proptest::collection::vec(
            prop_oneof![Just("a"), Just("/"), Just("é"), Just("\0")],
            0..4,
        )
        .prop_map(|p| p.concat())
    };
    let strategy = (
        proptest::collection::vec((key(), 1usize..3), 0..12),
        proptest::collection::vec(prop_oneof![Just("a"), Just("/")], 0..2).prop_map(|p| p.concat()),
        prop_oneof![Just(None), Just(Some("/".to_owned()))],
        proptest::option::of(key()),
        0usize..5,
        any::<prop::sample::Index>(),
        any::<bool>(),
    );
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(
            &strategy,
            |(keys, prefix, delimiter, key_marker, max_uploads, pick, use_id_marker)| {
                counter.set(counter.get() + 1);
                let bucket = store
                    .create_bucket(&alice, &format!("b{}", counter.get()), "r")
                    .unwrap();
                let mut uploads = BTreeSet::new();
                for (key, count) in keys {
                    for _ in 0..count {
                        let upload = store
                            .create_upload(&alice, &bucket, &key, ObjectMeta::default(), None)
                            .unwrap();
                        uploads.insert((key.clone(), upload.upload_id()));
                    }
                }
                // An id marker from an existing upload, with its key as key marker.
                let (key_marker, upload_id_marker) = match (
                    use_id_marker,
                    uploads.iter().nth(pick.index(uploads.len().max(1))),
                ) {
                    (true, Some((key, id))) => (Some(key.clone()), Some(id.clone())),
                    _ => (key_marker, None),
                };
                let query = UploadListQuery {
                    prefix,
                    delimiter,
                    key_marker,
                    upload_id_marker,
                    max_uploads,
                };
                let page = store.list_uploads(&alice, &bucket, &query).unwrap();
                let (expected, truncated) = model(&uploads, &query);
                let got: BTreeSet<_> = page
                    .uploads
                    .iter()
                    .map(|u| (u.key.clone(), Some(u.upload_id().clone())))
                    .chain(page.common_prefixes.iter().map(|p| (p.clone(), None)))
                    .collect();
                prop_assert_eq!(got, expected.iter().cloned().collect::<BTreeSet<_>>());
                let uploads_in_order: Vec<_> = page
                    .uploads
                    .iter()
                    .map(|u| (u.key.clone(), Some(u.upload_id().clone())))
                    .collect();
                let expected_uploads: Vec<_> = expected
                    .iter()
                    .filter(|(_, id)| id.is_some())
                    .cloned()
                    .collect();
                prop_assert_eq!(uploads_in_order, expected_uploads);
                prop_assert_eq!(page.is_truncated, truncated);
                if truncated {
                    let (last_key, last_id) = expected.last().cloned().unwrap();
                    prop_assert_eq!(page.next_key_marker, Some(last_key));
                    prop_assert_eq!(page.next_upload_id_marker, last_id);
                }
                Ok(())
            },
        )
        .unwrap();
}
