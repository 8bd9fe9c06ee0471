//! Key rotation in storage: a tenant KEK rotation makes the new version current at once,
//! rewraps every object's and upload's DEK in bounded, resumable steps while everything
//! stays readable, lets concurrent writes win, and ends by destroying the old version,
//! down to RocksDB's files. A root rotation rewraps every KEK and retires the old root.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use coffre_crypto::{AdminScope, KekVersion, MaintenanceScope, Role, TenantScope, SEGMENT_LEN};
use coffre_storage::{
    BucketRecord, ChosenPart, Completion, Error, KekRotation, KeyLookup, ObjectMeta, PartInfo,
    RewrapPhase, RewrapSettings, RewrapStep, RotationState, Store, TenantRecord, UploadAddress,
};
use harness::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const NO_GRACE: RewrapSettings = RewrapSettings {
    batch_size: 1,
    retire_grace: Duration::ZERO,
};

fn admin() -> AdminScope {
    AdminScope::local_operator()
}

fn maint() -> MaintenanceScope {
    MaintenanceScope::new("test")
}

fn record(store: &Store, scope: &TenantScope) -> TenantRecord {
    store.tenant(&admin(), scope.tenant_id()).unwrap()
}

fn kek_versions(store: &Store, scope: &TenantScope) -> Vec<u32> {
    record(store, scope)
        .keks
        .iter()
        .map(|k| k.kek_version.get())
        .collect()
}

fn rotation(store: &Store, scope: &TenantScope) -> KekRotation {
    record(store, scope).rotation.expect("a rotation")
}

/// Steps until the rewrap has nothing left to do; every step but the last `Idle`.
fn drive(store: &Store, scope: &TenantScope, settings: &RewrapSettings) -> Vec<RewrapStep> {
    drive_checking(store, scope, settings, || {})
}

fn drive_checking(
    store: &Store,
    scope: &TenantScope,
    settings: &RewrapSettings,
    mut between: impl FnMut(),
) -> Vec<RewrapStep> {
    let mut steps = Vec::new();
    loop {
        match store
            .rewrap_step(
                &maint(),
                scope.tenant_id(),
                settings,
                &lease(store, "key-rotation"),
            )
            .unwrap()
        {
            RewrapStep::Idle => return steps,
            RewrapStep::Wait(wait) => panic!("waits {wait:?} with no grace period"),
            step => steps.push(step),
        }
        between();
        assert!(steps.len() < 10_000, "the rewrap does not end");
    }
}

/// A multipart upload of `parts`, completed as `key`.
fn multipart(
    store: &Store,
    scope: &TenantScope,
    bucket: &BucketRecord,
    key: &str,
    parts: &[Vec<u8>],
) {
    let upload = store
        .create_upload(scope, bucket, key, ObjectMeta::default(), None)
        .unwrap();
    upload_parts(store, scope, bucket, &upload.address(), 1, parts);
    complete(store, scope, bucket, &upload.address(), parts.len() as u32);
}

fn upload_parts(
    store: &Store,
    scope: &TenantScope,
    bucket: &BucketRecord,
    upload: &UploadAddress,
    first: u32,
    parts: &[Vec<u8>],
) {
    for (i, data) in parts.iter().enumerate() {
        let number = first + i as u32;
        let written = write_part(store, scope, bucket, upload, number, data, 1000);
        let info = PartInfo {
            etag: part_etag(number),
            size: data.len() as u64,
            checksums: Vec::new(),
        };
        store
            .put_part(scope, bucket, upload, number, info, written)
            .unwrap();
    }
}

/// The ETag these tests give part `number`.
fn part_etag(number: u32) -> String {
    format!("{number:032x}")
}

fn complete(
    store: &Store,
    scope: &TenantScope,
    bucket: &BucketRecord,
    upload: &UploadAddress,
    n: u32,
) {
    let chosen = (1..=n).map(|i| ChosenPart::new(i, part_etag(i))).collect();
    store
        .complete_upload(scope, bucket, upload, &Completion::of_parts(chosen))
        .unwrap();
}

fn read_key(store: &Store, scope: &TenantScope, bucket: &BucketRecord, key: &str) -> Vec<u8> {
    let record = store
        .object(scope, bucket, key)
        .unwrap_or_else(|e| panic!("{key}: {e}"));
    read_all(store, scope, &record)
}

/// Everything a tenant stores, for checking after every step.
struct Contents {
    objects: HashMap<String, Vec<u8>>,
    upload: UploadAddress,
}

impl Contents {
    fn check(&self, store: &Store, scope: &TenantScope, bucket: &BucketRecord) {
        for (key, data) in &self.objects {
            assert_eq!(&read_key(store, scope, bucket, key), data, "{key}");
        }
        let upload = store.upload(scope, bucket, &self.upload).unwrap();
        assert_eq!(upload.key, "open");
        let (parts, _) = store
            .list_parts(scope, bucket, &self.upload, 0, 100)
            .unwrap();
        assert_eq!(parts[0].etag, part_etag(1));
    }
}

/// Objects inline, in files, over several segments, multipart, and an upload in progress.
fn fill(store: &Store, scope: &TenantScope, bucket: &BucketRecord) -> Contents {
    let mut objects = HashMap::new();
    for (key, len, seed) in [
        ("inline", 100, 1),
        ("file", 5000, 2),
        ("segments", 2 * SEGMENT_LEN + 7, 3),
    ] {
        let data = bytes(len, seed);
        put(store, scope, bucket, key, &data);
        objects.insert(key.to_owned(), data);
    }
    let parts = vec![bytes(3000, 4), bytes(500, 5)];
    multipart(store, scope, bucket, "multi", &parts);
    objects.insert("multi".to_owned(), parts.concat());
    let upload = store
        .create_upload(scope, bucket, "open", ObjectMeta::default(), None)
        .unwrap();
    upload_parts(
        store,
        scope,
        bucket,
        &upload.address(),
        1,
        &[bytes(2000, 6)],
    );
    Contents {
        objects,
        upload: upload.address(),
    }
}

#[test]
fn a_kek_rotation_keeps_everything_readable_at_every_step_and_retires_the_old_kek() {
    each_store(|store, _| {
        let alice = scope(store);
        let (key, secret) = store
            .create_access_key(&admin(), alice.tenant_id(), Role::Admin, None)
            .unwrap();
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let mut contents = fill(store, &alice, &bucket);
        let bob = scope(store);
        let bobs = store.create_bucket(&bob, "b", "r").unwrap();
        put(store, &bob, &bobs, "kept", &bytes(4000, 9));

        let rotated = store
            .rotate_tenant_key(&admin(), alice.tenant_id())
            .unwrap();
        assert_eq!(rotated.kek_version, KekVersion::new(2));
        assert_eq!(kek_versions(store, &alice), [1, 2]);
        assert!(matches!(
            rotation(store, &alice).state,
            RotationState::Rewrapping(_)
        ));
        // Access key secrets moved with the rotation.
        match store.credential(&key).unwrap() {
            KeyLookup::Active(c) => assert_eq!(c.secret.expose(), secret.expose()),
            other => panic!("{other:?}"),
        }
        // Written after the rotation: under the new KEK from the start (not rewrapped).
        put(store, &alice, &bucket, "new", b"after the rotation");
        contents
            .objects
            .insert("new".into(), b"after the rotation".to_vec());

        let steps = drive_checking(store, &alice, &NO_GRACE, || {
            contents.check(store, &alice, &bucket)
        });
        // 4 objects and 1 upload from before the rotation, and nothing else.
        assert_eq!(
            steps.last(),
            Some(&RewrapStep::Finished {
                kek_version: KekVersion::new(2),
                retired: vec![KekVersion::FIRST],
                rewrapped: 5,
            })
        );
        let done = rotation(store, &alice);
        assert_eq!(done.passes, 2, "one pass to move, one to find nothing left");
        assert_eq!(done.scanned, 2 * 6);
        assert!(matches!(
            done.state,
            RotationState::Finished { purged: true, ref destroyed, .. } if destroyed == &[KekVersion::FIRST]
        ));
        assert_eq!(kek_versions(store, &alice), [2]);
        contents.check(store, &alice, &bucket);
        match store.credential(&key).unwrap() {
            KeyLookup::Active(c) => assert_eq!(c.secret.expose(), secret.expose()),
            other => panic!("{other:?}"),
        }

        // The upload begun before the rotation completes after it, with a part written
        // before and one after.
        upload_parts(
            store,
            &alice,
            &bucket,
            &contents.upload,
            2,
            &[bytes(700, 7)],
        );
        complete(store, &alice, &bucket, &contents.upload, 2);
        assert_eq!(
            read_key(store, &alice, &bucket, "open"),
            [bytes(2000, 6), bytes(700, 7)].concat()
        );

        // Bob is untouched.
        assert_eq!(kek_versions(store, &bob), [1]);
        assert_eq!(read_key(store, &bob, &bobs, "kept"), bytes(4000, 9));

        // And a second rotation goes the same way.
        store
            .rotate_tenant_key(&admin(), alice.tenant_id())
            .unwrap();
        let big_batches = RewrapSettings {
            retire_grace: Duration::ZERO,
            ..RewrapSettings::default()
        };
        let steps = drive(store, &alice, &big_batches);
        assert!(matches!(
            steps.last(),
            Some(RewrapStep::Finished { kek_version, retired, .. })
                if *kek_version == KekVersion::new(3) && retired == &[KekVersion::new(2)]
        ));
        assert_eq!(kek_versions(store, &alice), [3]);
        for (key, data) in &contents.objects {
            assert_eq!(&read_key(store, &alice, &bucket, key), data);
        }
    });
}

#[test]
fn an_interrupted_rewrap_resumes_after_a_restart_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bucket, before);
    {
        let store = open_rocks(dir.path());
        alice = scope(&store);
        bucket = store.create_bucket(&alice, "b", "r").unwrap();
        for i in 0..10u8 {
            put(&store, &alice, &bucket, &format!("k{i}"), &bytes(1500, i));
        }
        store
            .rotate_tenant_key(&admin(), alice.tenant_id())
            .unwrap();
        let settings = RewrapSettings {
            batch_size: 3,
            ..NO_GRACE
        };
        for _ in 0..3 {
            let step = store
                .rewrap_step(
                    &maint(),
                    alice.tenant_id(),
                    &settings,
                    &lease(&store, "key-rotation"),
                )
                .unwrap();
            assert_eq!(step, RewrapStep::Progress);
        }
        before = rotation(&store, &alice);
        // Stopped in the middle of the objects (the uploads took one step).
        match &before.state {
            RotationState::Rewrapping(cursor) => {
                assert_eq!(cursor.phase, RewrapPhase::Objects);
                assert!(!cursor.after.is_empty());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!((before.scanned, before.rewrapped), (6, 6));
    }

    let store = open_rocks(dir.path());
    assert_eq!(rotation(&store, &alice), before, "the cursor survived");
    assert_eq!(
        store.tenants_rewrapping(&maint()).unwrap(),
        [alice.tenant_id()]
    );
    for i in 0..10u8 {
        assert_eq!(
            read_key(&store, &alice, &bucket, &format!("k{i}")),
            bytes(1500, i)
        );
    }
    let steps = drive(&store, &alice, &NO_GRACE);
    assert!(matches!(
        steps.last(),
        Some(RewrapStep::Finished { rewrapped: 10, .. })
    ));
    let done = rotation(&store, &alice);
    // Had it started over, the first pass would have seen the first six objects twice.
    assert_eq!(done.scanned, 10 + 10);
    assert_eq!(done.rewrapped, 10);
    assert!(store.tenants_rewrapping(&maint()).unwrap().is_empty());
    for i in 0..10u8 {
        assert_eq!(
            read_key(&store, &alice, &bucket, &format!("k{i}")),
            bytes(1500, i)
        );
    }
}

#[test]
fn overwrites_and_deletes_racing_the_rewrap_win() {
    each_store(|store, _| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let keys: Vec<String> = (0..24).map(|i| format!("k{i:02}")).collect();
        for (i, key) in keys.iter().enumerate() {
            put(store, &alice, &bucket, key, &bytes(200 + i, i as u8));
        }
        store
            .rotate_tenant_key(&admin(), alice.tenant_id())
            .unwrap();

        let writer = {
            let (store, alice, bucket, keys) = (
                store.clone(),
                TenantScope::for_tests(alice.tenant_id()),
                bucket.clone(),
                keys.clone(),
            );
            std::thread::spawn(move || {
                let mut latest: HashMap<String, Option<Vec<u8>>> = HashMap::new();
                for round in 0..6u8 {
                    for (i, key) in keys.iter().enumerate() {
                        if (i + round as usize).is_multiple_of(5) {
                            store.delete_object(&alice, &bucket, key).unwrap();
                            latest.insert(key.clone(), None);
                        } else if (i + round as usize).is_multiple_of(2) {
                            let data = bytes(300 + i, round.wrapping_mul(31) ^ i as u8);
                            put(&store, &alice, &bucket, key, &data);
                            latest.insert(key.clone(), Some(data));
                        }
                    }
                }
                latest
            })
        };
        let settings = RewrapSettings {
            batch_size: 2,
            ..NO_GRACE
        };
        drive(store, &alice, &settings);
        let latest = writer.join().unwrap();
        // The writer may have finished after the rotation did: settle anything left.
        drive(store, &alice, &settings);
        for (i, key) in keys.iter().enumerate() {
            let expected = match latest.get(key) {
                Some(last) => last.clone(),
                None => Some(bytes(200 + i, i as u8)),
            };
            match expected {
                Some(data) => assert_eq!(read_key(store, &alice, &bucket, key), data, "{key}"),
                None => assert!(
                    matches!(store.object(&alice, &bucket, key), Err(Error::NoSuchKey)),
                    "{key} came back"
                ),
            }
        }
        assert_eq!(kek_versions(store, &alice), [2]);
    });
}

#[test]
fn the_retired_kek_leaves_rocksdb_and_records_read_before_still_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_rocks(dir.path());
    let alice = scope(&store);
    let bucket = store.create_bucket(&alice, "b", "r").unwrap();
    let data = bytes(2 * SEGMENT_LEN, 5);
    put(&store, &alice, &bucket, "k", &data);
    // A reader holding the record from before the rotation (a GET in flight).
    let held = store.object(&alice, &bucket, "k").unwrap();
    let old = record(&store, &alice).keks[0].ciphertext.clone();
    let meta_dir = dir.path().join("meta");
    assert!(
        !files_containing(&meta_dir, &old).is_empty(),
        "the wrapped KEK is on disk before"
    );

    store
        .rotate_tenant_key(&admin(), alice.tenant_id())
        .unwrap();
    let mid = record(&store, &alice).keks[1].ciphertext.clone();
    drive(&store, &alice, &NO_GRACE);
    assert_eq!(kek_versions(&store, &alice), [2]);
    assert_eq!(files_containing(&meta_dir, &old), Vec::<PathBuf>::new());
    assert!(!files_containing(&meta_dir, &mid).is_empty(), "control");
    // The held record names KEK 1, which is gone: its DEK is taken from the record as it
    // is now, the same object.
    assert_eq!(read_all(&store, &alice, &held), data);
    drop(store);
    assert_eq!(files_containing(&meta_dir, &old), Vec::<PathBuf>::new());

    let store = open_rocks(dir.path());
    assert_eq!(read_key(&store, &alice, &bucket, "k"), data);
    // A record of another object under that key does not stand in.
    put(&store, &alice, &bucket, "k", b"replaced");
    assert!(matches!(
        read_range(&store, &alice, &held, 0, u64::MAX, 4096),
        Err(Error::Integrity { .. })
    ));
}

#[test]
fn the_old_kek_waits_for_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_memory(dir.path());
    let alice = scope(&store);
    let bucket = store.create_bucket(&alice, "b", "r").unwrap();
    put(&store, &alice, &bucket, "k", b"data");
    store
        .rotate_tenant_key(&admin(), alice.tenant_id())
        .unwrap();
    let settings = RewrapSettings {
        batch_size: 100,
        retire_grace: Duration::from_secs(3600),
    };
    let mut steps = Vec::new();
    for _ in 0..5 {
        steps.push(
            store
                .rewrap_step(
                    &maint(),
                    alice.tenant_id(),
                    &settings,
                    &lease(&store, "key-rotation"),
                )
                .unwrap(),
        );
    }
    // Uploads, objects (one DEK moved), then waiting: no second pass within the grace.
    assert_eq!(steps[..2], [RewrapStep::Progress, RewrapStep::Progress]);
    for step in &steps[2..] {
        assert!(
            matches!(step, RewrapStep::Wait(w) if *w > Duration::from_secs(3500)),
            "{step:?}"
        );
    }
    assert_eq!(kek_versions(&store, &alice), [1, 2], "KEK 1 kept meanwhile");
    assert_eq!(read_key(&store, &alice, &bucket, "k"), b"data");
}

#[test]
fn a_new_rotation_during_a_rewrap_starts_over_towards_the_newest_version() {
    each_store(|store, _| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        for i in 0..6u8 {
            put(store, &alice, &bucket, &format!("k{i}"), &bytes(100, i));
        }
        store
            .rotate_tenant_key(&admin(), alice.tenant_id())
            .unwrap();
        for _ in 0..3 {
            store
                .rewrap_step(
                    &maint(),
                    alice.tenant_id(),
                    &NO_GRACE,
                    &lease(store, "key-rotation"),
                )
                .unwrap();
        }
        let again = store
            .rotate_tenant_key(&admin(), alice.tenant_id())
            .unwrap();
        assert_eq!(again.kek_version, KekVersion::new(3));
        assert_eq!(kek_versions(store, &alice), [1, 2, 3]);
        let steps = drive(store, &alice, &NO_GRACE);
        assert!(matches!(
            steps.last(),
            Some(RewrapStep::Finished { kek_version, retired, rewrapped: 6 })
                if *kek_version == KekVersion::new(3)
                    && retired == &[KekVersion::FIRST, KekVersion::new(2)]
        ));
        assert_eq!(kek_versions(store, &alice), [3]);
        for i in 0..6u8 {
            assert_eq!(
                read_key(store, &alice, &bucket, &format!("k{i}")),
                bytes(100, i)
            );
        }
    });
}

#[test]
fn a_tenant_deleted_during_its_rewrap_is_left_to_the_deletion() {
    each_store(|store, _| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        for i in 0..4u8 {
            put(store, &alice, &bucket, &format!("k{i}"), &bytes(100, i));
        }
        store
            .rotate_tenant_key(&admin(), alice.tenant_id())
            .unwrap();
        store
            .rewrap_step(
                &maint(),
                alice.tenant_id(),
                &NO_GRACE,
                &lease(store, "key-rotation"),
            )
            .unwrap();
        store
            .delete_tenant(&admin(), alice.tenant_id(), true)
            .unwrap();
        assert_eq!(
            store
                .rewrap_step(
                    &maint(),
                    alice.tenant_id(),
                    &NO_GRACE,
                    &lease(store, "key-rotation")
                )
                .unwrap(),
            RewrapStep::Idle
        );
        assert!(store.tenants_rewrapping(&maint()).unwrap().is_empty());
        assert!(matches!(
            store.object(&alice, &bucket, "k0"),
            Err(Error::NoSuchKey)
        ));
    });
}

#[test]
fn a_root_rotation_rewraps_every_kek_and_retires_the_old_root() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob, buckets, old_wrapped);
    {
        let store = open_rocks(dir.path());
        alice = scope(&store);
        bob = scope(&store);
        buckets = [
            store.create_bucket(&alice, "b", "r").unwrap(),
            store.create_bucket(&bob, "b", "r").unwrap(),
        ];
        put(&store, &alice, &buckets[0], "a", &bytes(3000, 1));
        put(&store, &bob, &buckets[1], "b", &bytes(3000, 2));
        // Alice is in the middle of a KEK rotation: two KEK versions to rewrap.
        store
            .rotate_tenant_key(&admin(), alice.tenant_id())
            .unwrap();
        store
            .rewrap_step(
                &maint(),
                alice.tenant_id(),
                &NO_GRACE,
                &lease(&store, "key-rotation"),
            )
            .unwrap();
        old_wrapped = record(&store, &bob).keks[0].ciphertext.clone();

        let rotation = store.rotate_root_key(&admin()).unwrap();
        assert_eq!(rotation.tenants, 2);
        assert_eq!(rotation.keks, 3);
        assert_eq!(rotation.retired.len(), 1);
        let status = store.root_key_status(&admin()).unwrap();
        assert_eq!(status.provider, "local-file");
        assert_eq!(status.versions, [rotation.root_version]);
        assert_eq!(
            status.keks.into_iter().collect::<Vec<_>>(),
            [(rotation.root_version, 3)]
        );
        for scope in [&alice, &bob] {
            for kek in record(&store, scope).keks {
                assert_eq!(kek.root_version(), Some(rotation.root_version));
            }
        }
        assert_eq!(
            files_containing(&dir.path().join("meta"), &old_wrapped),
            Vec::<PathBuf>::new(),
            "the KEK as the old root wrapped it is purged"
        );
        assert_eq!(read_key(&store, &alice, &buckets[0], "a"), bytes(3000, 1));
        assert_eq!(read_key(&store, &bob, &buckets[1], "b"), bytes(3000, 2));
    }
    // After a restart (the key file re-read), and through the rest of Alice's rewrap.
    let store = open_rocks(dir.path());
    assert_eq!(
        store
            .resume_root_rotation(&maint(), &lease(&store, "key-rotation"))
            .unwrap(),
        None
    );
    assert_eq!(read_key(&store, &alice, &buckets[0], "a"), bytes(3000, 1));
    assert_eq!(read_key(&store, &bob, &buckets[1], "b"), bytes(3000, 2));
    drive(&store, &alice, &NO_GRACE);
    assert_eq!(kek_versions(&store, &alice), [2]);
    assert_eq!(read_key(&store, &alice, &buckets[0], "a"), bytes(3000, 1));
    let text = std::fs::read_to_string(dir.path().join("root.key")).unwrap();
    let lines = text.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(lines, 1, "one root key left in the file");
}

/// What the property test does to one tenant.
#[derive(Debug, Clone)]
enum Op {
    Put { key: u8, len: usize, seed: u8 },
    Delete { key: u8 },
    Rotate,
    Step,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..5, prop_oneof![Just(0usize), 1usize..INLINE_MAX, INLINE_MAX + 1..3000], any::<u8>())
            .prop_map(|(key, len, seed)| Op::Put { key, len, seed }),
        1 => (0u8..5).prop_map(|key| Op::Delete { key }),
        1 => Just(Op::Rotate),
        4 => Just(Op::Step),
    ]
}

#[test]
fn any_interleaving_of_writes_rotations_and_steps_keeps_every_object_readable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open_memory(dir.path()));
    let mut runner = TestRunner::new(Config {
        cases: 24,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(op(), 1..40), |ops| {
            let alice = scope(&store);
            let bucket = store.create_bucket(&alice, "b", "r").unwrap();
            let mut model: HashMap<String, Vec<u8>> = HashMap::new();
            let mut rotations = 0u32;
            let settings = RewrapSettings {
                batch_size: 2,
                ..NO_GRACE
            };
            for op in ops {
                match op {
                    Op::Put { key, len, seed } => {
                        let (key, data) = (format!("k{key}"), bytes(len, seed));
                        put(&store, &alice, &bucket, &key, &data);
                        model.insert(key, data);
                    }
                    Op::Delete { key } => {
                        let key = format!("k{key}");
                        store.delete_object(&alice, &bucket, &key).unwrap();
                        model.remove(&key);
                    }
                    Op::Rotate => {
                        store
                            .rotate_tenant_key(&admin(), alice.tenant_id())
                            .unwrap();
                        rotations += 1;
                    }
                    Op::Step => {
                        store
                            .rewrap_step(
                                &maint(),
                                alice.tenant_id(),
                                &settings,
                                &lease(&store, "key-rotation"),
                            )
                            .unwrap();
                    }
                }
                for (key, data) in &model {
                    prop_assert_eq!(&read_key(&store, &alice, &bucket, key), data);
                }
            }
            drive(&store, &alice, &settings);
            for (key, data) in &model {
                prop_assert_eq!(&read_key(&store, &alice, &bucket, key), data);
            }
            prop_assert_eq!(kek_versions(&store, &alice), vec![1 + rotations]);
            Ok(())
        })
        .unwrap();
}

#[test]
fn r12_a_kek_version_is_rotated_once_it_has_wrapped_its_limit_of_deks() {
    each_store(|store, _| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let wraps = |store: &Store| {
            store
                .dek_wraps(&admin(), &record(store, &alice))
                .unwrap()
                .into_iter()
                .map(|(v, n)| (v.get(), n))
                .collect::<Vec<_>>()
        };
        for i in 0..4u8 {
            put(store, &alice, &bucket, &format!("k{i}"), &bytes(100, i));
        }
        copy_within(store, &alice, &bucket, "k0", "copy");
        assert_eq!(wraps(store), [(1, 5)], "four PUTs and a copy");

        let gc = lease(store, "key-rotation");
        assert!(store.rotate_worn_keks(&maint(), &gc, 6).unwrap().is_empty());
        let rotated = store.rotate_worn_keks(&maint(), &gc, 5).unwrap();
        assert_eq!(rotated, [(alice.tenant_id(), KekVersion::new(2))]);
        // A rotation under way is not started again.
        assert!(store.rotate_worn_keks(&maint(), &gc, 5).unwrap().is_empty());

        // New DEKs count under the new version; the rewrap counts what it moves there.
        put(store, &alice, &bucket, "new", &bytes(100, 9));
        drive(store, &alice, &NO_GRACE);
        assert_eq!(
            wraps(store),
            [(2, 6)],
            "five moved, one new; version 1 retired"
        );
        for key in ["k1", "copy", "new"] {
            assert_eq!(read_key(store, &alice, &bucket, key).len(), 100);
        }
    });
}

fn copy_within(store: &Store, scope: &TenantScope, bucket: &BucketRecord, from: &str, to: &str) {
    let source = store.object(scope, bucket, from).unwrap();
    let meta = source.meta.clone();
    store
        .copy_object(scope, &source, bucket, to, meta, None)
        .unwrap()
        .unwrap();
}

#[test]
fn a_rotation_finishes_after_every_cached_kek_was_dropped() {
    each_store(|store, _| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        put(store, &alice, &bucket, "k", &bytes(100, 1));
        store
            .rotate_tenant_key(&admin(), alice.tenant_id())
            .unwrap();
        // Every cached KEK dropped, as when keys were destroyed through another node: the
        // rewrap and the retirement unwrap the KEKs they need from the store again.
        store.follow_key_epoch(u64::MAX).unwrap();
        let (done, finished) = std::sync::mpsc::channel();
        // A thread of its own, not scoped: if it deadlocks, the test fails instead of hanging.
        let (worker, tenant) = (store.clone(), alice.tenant_id());
        std::thread::spawn(move || {
            drive(&worker, &TenantScope::for_tests(tenant), &NO_GRACE);
            let _ = done.send(());
        });
        assert!(
            finished.recv_timeout(Duration::from_secs(60)).is_ok(),
            "the rewrap and retirement did not finish"
        );
        assert_eq!(kek_versions(store, &alice), [2]);
        assert_eq!(read_key(store, &alice, &bucket, "k"), bytes(100, 1));
    });
}
