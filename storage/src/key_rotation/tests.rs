//! The rewrap's concurrency rule, made deterministic: a record is rewrapped as it is under
//! its lock, whatever the scan saw, so an overwrite, a deletion or a completion that lands
//! between the scan and the rewrap wins.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use coffre_crypto::{AdminScope, MaintenanceScope, TenantScope};

use super::*;
use crate::data_writer::WriteTarget;
use crate::multipart_upload::{ChosenPart, Completion};
use crate::records::{BucketRecord, ObjectMeta, PartInfo};
use crate::TenantSettings;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    scope: TenantScope,
    bucket: BucketRecord,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::test_store(dir.path(), "a1");
    let tenant = store
        .create_tenant(
            &AdminScope::local_operator(),
            "acme",
            TenantSettings::default(),
        )
        .unwrap();
    let scope = TenantScope::for_tests(tenant.id);
    let bucket = store.create_bucket(&scope, "b", "r").unwrap();
    Fixture {
        _dir: dir,
        store,
        scope,
        bucket,
    }
}

impl Fixture {
    fn tenant(&self) -> TenantId {
        self.scope.tenant_id()
    }

    fn put(&self, key: &str, data: &[u8]) {
        let mut writer = self
            .store
            .data_writer(&self.scope, &self.bucket, WriteTarget::Object, None)
            .unwrap();
        writer.write(data).unwrap();
        let written = writer.finish().unwrap();
        let meta = ObjectMeta {
            size: data.len() as u64,
            etag: format!("etag-{}", data.len()),
            ..ObjectMeta::default()
        };
        self.store
            .put_object(&self.scope, &self.bucket, key, meta, written)
            .unwrap();
    }

    fn read(&self, key: &str) -> Result<Vec<u8>> {
        let record = self.store.object(&self.scope, &self.bucket, key)?;
        let mut reader = self.store.object_reader(&self.scope, &record, None)?;
        let mut out = Vec::new();
        reader.read_range(0, u64::MAX, 4096, &mut |bytes| {
            out.extend_from_slice(&bytes);
            true
        })?;
        Ok(out)
    }

    fn object_key(&self, key: &str) -> Vec<u8> {
        keys::object(self.tenant(), self.bucket.id, key.as_bytes())
    }

    fn raw(&self, cf: Cf, key: &[u8]) -> Option<Vec<u8>> {
        self.store.meta().get(cf, key).unwrap()
    }

    fn rotate(&self) -> Arc<Kek> {
        let tenant = self
            .store
            .rotate_tenant_key(&AdminScope::local_operator(), self.tenant())
            .unwrap();
        self.store.kek(self.tenant(), tenant.kek_version).unwrap()
    }

    fn kek_version_of(&self, key: &str) -> KekVersion {
        let raw = self.raw(Cf::Objects, &self.object_key(key)).unwrap();
        StoredObject::decode(&raw).unwrap().dek.kek_version
    }

    fn drive(&self) -> Vec<RewrapStep> {
        let settings = RewrapSettings {
            batch_size: 2,
            retire_grace: Duration::ZERO,
        };
        let maint = MaintenanceScope::new("test");
        let mut steps = Vec::new();
        loop {
            match self
                .store
                .rewrap_step(
                    &maint,
                    self.tenant(),
                    &settings,
                    &crate::cluster::test_lease(&self.store, "key-rotation"),
                )
                .unwrap()
            {
                RewrapStep::Idle => return steps,
                RewrapStep::Wait(wait) => panic!("waits {wait:?} without a grace period"),
                step => steps.push(step),
            }
            assert!(steps.len() < 1000, "the rewrap does not end: {steps:?}");
        }
    }
}

#[test]
fn an_object_overwritten_after_the_scan_is_rewrapped_as_it_now_is() {
    let f = fixture();
    f.put("k", b"first version");
    let scanned = f.raw(Cf::Objects, &f.object_key("k")).unwrap();
    // Overwritten before the rotation: still under KEK 1, but another object.
    f.put("k", b"second version");
    let target = f.rotate();
    let outcome = f
        .store
        .rewrap_object(f.tenant(), &f.object_key("k"), &scanned, &target)
        .unwrap();
    assert_eq!(outcome, Rewrap::Rewrapped);
    assert_eq!(f.kek_version_of("k"), target.version());
    assert_eq!(f.read("k").unwrap(), b"second version");
}

#[test]
fn an_object_overwritten_after_the_rotation_is_left_as_written() {
    let f = fixture();
    f.put("k", b"old");
    let scanned = f.raw(Cf::Objects, &f.object_key("k")).unwrap();
    let target = f.rotate();
    f.put("k", b"written during the rewrap");
    let written = f.raw(Cf::Objects, &f.object_key("k")).unwrap();
    let outcome = f
        .store
        .rewrap_object(f.tenant(), &f.object_key("k"), &scanned, &target)
        .unwrap();
    assert_eq!(outcome, Rewrap::Untouched);
    assert_eq!(f.raw(Cf::Objects, &f.object_key("k")).unwrap(), written);
    assert_eq!(f.read("k").unwrap(), b"written during the rewrap");
}

#[test]
fn an_object_deleted_after_the_scan_stays_deleted() {
    let f = fixture();
    f.put("k", b"doomed");
    let scanned = f.raw(Cf::Objects, &f.object_key("k")).unwrap();
    let target = f.rotate();
    f.store.delete_object(&f.scope, &f.bucket, "k").unwrap();
    let outcome = f
        .store
        .rewrap_object(f.tenant(), &f.object_key("k"), &scanned, &target)
        .unwrap();
    assert_eq!(outcome, Rewrap::Untouched);
    assert_eq!(f.raw(Cf::Objects, &f.object_key("k")), None);
    assert!(matches!(f.read("k"), Err(Error::NoSuchKey)));
}

#[test]
fn an_upload_completed_after_the_scan_is_not_resurrected() {
    let f = fixture();
    let upload = f
        .store
        .create_upload(&f.scope, &f.bucket, "mp", ObjectMeta::default(), None)
        .unwrap();
    let id = upload.id;
    let by_id = keys::upload_by_id(f.tenant(), f.bucket.id, id);
    let scanned = f.raw(Cf::Uploads, &by_id).unwrap();
    let target = f.rotate();
    let target_version = target.version();
    let mut writer = f
        .store
        .data_writer(
            &f.scope,
            &f.bucket,
            WriteTarget::Part {
                upload: upload.address(),
                part_number: 1,
            },
            None,
        )
        .unwrap();
    writer.write(b"the only part").unwrap();
    let written = writer.finish().unwrap();
    let etag = "0123456789abcdef0123456789abcdef";
    let part = PartInfo {
        etag: etag.into(),
        size: 13,
        checksums: Vec::new(),
    };
    f.store
        .put_part(&f.scope, &f.bucket, &upload.address(), 1, part, written)
        .unwrap();
    f.store
        .complete_upload(
            &f.scope,
            &f.bucket,
            &upload.address(),
            &Completion::of_parts(vec![ChosenPart::new(1, etag)]),
        )
        .unwrap();
    let outcome = f
        .store
        .rewrap_upload(f.tenant(), &by_id, &scanned, &target)
        .unwrap();
    assert_eq!(outcome, Rewrap::Untouched);
    assert_eq!(f.raw(Cf::Uploads, &by_id), None, "no upload resurrected");
    let index = keys::upload_by_key(f.tenant(), f.bucket.id, b"mp", id);
    assert_eq!(f.raw(Cf::Uploads, &index), None);
    assert_eq!(f.read("mp").unwrap(), b"the only part");
    // The object carried the upload's DEK, wrapped under KEK 1 when it was created.
    assert!(f.kek_version_of("mp") < target_version);
    f.drive();
    assert_eq!(f.kek_version_of("mp"), target_version);
    assert_eq!(f.read("mp").unwrap(), b"the only part");
}

#[test]
fn both_copies_of_an_upload_record_are_rewrapped_together() {
    let f = fixture();
    let upload = f
        .store
        .create_upload(&f.scope, &f.bucket, "mp", ObjectMeta::default(), None)
        .unwrap();
    let id = upload.id;
    let by_id = keys::upload_by_id(f.tenant(), f.bucket.id, id);
    let index = keys::upload_by_key(f.tenant(), f.bucket.id, b"mp", id);
    let target = f.rotate();
    // The index entry is not a record of its own.
    let index_value = f.raw(Cf::Uploads, &index).unwrap();
    assert_eq!(
        f.store
            .rewrap_upload(f.tenant(), &index, &index_value, &target)
            .unwrap(),
        Rewrap::Skipped
    );
    let scanned = f.raw(Cf::Uploads, &by_id).unwrap();
    assert_eq!(
        f.store
            .rewrap_upload(f.tenant(), &by_id, &scanned, &target)
            .unwrap(),
        Rewrap::Rewrapped
    );
    let primary = f.raw(Cf::Uploads, &by_id).unwrap();
    assert_eq!(f.raw(Cf::Uploads, &index).unwrap(), primary);
    assert_ne!(primary, scanned);
    let stored = StoredUpload::decode(&primary).unwrap();
    assert_eq!(stored.dek.kek_version, target.version());
    f.store
        .upload(&f.scope, &f.bucket, &upload.address())
        .unwrap();
}

#[test]
fn a_dek_that_does_not_open_blocks_the_retirement() {
    let f = fixture();
    f.put("good", b"fine");
    f.put("damaged", b"bit rot");
    let db_key = f.object_key("damaged");
    let mut stored = StoredObject::decode(&f.raw(Cf::Objects, &db_key).unwrap()).unwrap();
    stored.dek.ciphertext[3] ^= 0x40;
    f.store
        .put_raw(
            Cf::Objects,
            &db_key,
            &stored.encode().unwrap(),
            Durability::Synced,
        )
        .unwrap();
    let target = f.rotate();

    let steps = f.drive();
    assert_eq!(
        steps.last(),
        Some(&RewrapStep::Blocked { unreadable: 1 }),
        "{steps:?}"
    );
    let tenant = f
        .store
        .tenant(&AdminScope::local_operator(), f.tenant())
        .unwrap();
    let versions: Vec<KekVersion> = tenant.keks.iter().map(|k| k.kek_version).collect();
    assert_eq!(
        versions,
        [KekVersion::FIRST, target.version()],
        "KEK 1 kept"
    );
    assert!(!tenant.rotation.unwrap().has_work());
    assert_eq!(f.read("good").unwrap(), b"fine");
    assert_eq!(f.kek_version_of("good"), target.version());
    assert!(matches!(f.read("damaged"), Err(Error::Integrity { .. })));
    assert!(f
        .store
        .tenants_rewrapping(&MaintenanceScope::new("test"))
        .unwrap()
        .is_empty());
}

#[test]
fn upload_keys_are_told_from_index_keys() {
    let (t, b) = (TenantId::random(), BucketId::random());
    let id = ObjectId::random();
    assert_eq!(upload_of(&keys::upload_by_id(t, b, id)), Some(id));
    for key in ["", "k", "a/b/c"] {
        assert_eq!(
            upload_of(&keys::upload_by_key(t, b, key.as_bytes(), id)),
            None
        );
    }
    assert_eq!(bucket_of(&keys::object(t, b, b"k")).unwrap(), b);
    assert!(bucket_of(&[0; 20]).is_err());
}

/// The limit of the rotation-loop test: fewer than the tenant's live objects.
const LIMIT: u64 = 4;

impl Fixture {
    fn wraps(&self) -> Vec<(u32, u64)> {
        let admin = AdminScope::local_operator();
        let tenant = self.store.tenant(&admin, self.tenant()).unwrap();
        let wraps = self.store.dek_wraps(&admin, &tenant).unwrap();
        wraps.into_iter().map(|(v, n)| (v.get(), n)).collect()
    }

    fn rotate_worn(&self) -> Vec<u32> {
        let lease = crate::cluster::test_lease(&self.store, "key-rotation");
        let rotated = self
            .store
            .rotate_worn_keks(&MaintenanceScope::new("test"), &lease, LIMIT)
            .unwrap();
        rotated
            .into_iter()
            .map(|(tenant, version)| {
                assert_eq!(tenant, self.tenant());
                version.get()
            })
            .collect()
    }

    fn rewrapping(&self) -> bool {
        let tenant = self
            .store
            .tenant(&AdminScope::local_operator(), self.tenant())
            .unwrap();
        matches!(
            tenant.rotation.map(|r| r.state),
            Some(RotationState::Rewrapping(_))
        )
    }
}

/// A tenant with more live objects than `max_dek_wraps`: the rewrap of an automatic
/// rotation wears the new version by itself. The new version is not rotated while its
/// rewrap runs, nor after it for the rewrap's wraps alone (which would rotate it again and
/// again), only once it has wrapped the limit again for new writes. The in-memory watch
/// wakes the schedule once each time a version reaches what it may wrap.
#[test]
fn a_tenant_with_more_live_deks_than_the_limit_is_not_rotated_in_a_loop() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    let f = fixture();
    let woken = Arc::new(AtomicUsize::new(0));
    let hook = Arc::clone(&woken);
    f.store.watch_dek_wraps(LIMIT, move || {
        hook.fetch_add(1, Ordering::SeqCst);
    });
    let woken = || woken.load(Ordering::SeqCst);
    assert!(f.rotate_worn().is_empty(), "nothing wrapped yet");

    let keys: Vec<String> = (0..6).map(|i| format!("live/{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        f.put(key, format!("object {i}").as_bytes());
        let expected = usize::from(i + 1 >= LIMIT as usize);
        assert_eq!(
            woken(),
            expected,
            "woken once, at the limit (after {})",
            i + 1
        );
    }
    assert_eq!(f.wraps(), [(1, 6)]);
    assert_eq!(f.rotate_worn(), [2], "version 1 is worn");

    // The rewrap moves the six DEKs into version 2, whose count passes the limit midway.
    let settings = RewrapSettings {
        batch_size: 2,
        retire_grace: Duration::ZERO,
    };
    let lease = crate::cluster::test_lease(&f.store, "key-rotation");
    let maint = MaintenanceScope::new("test");
    while f.wraps().last().unwrap().1 < LIMIT {
        let step = f
            .store
            .rewrap_step(&maint, f.tenant(), &settings, &lease)
            .unwrap();
        assert_eq!(step, RewrapStep::Progress);
    }
    assert!(f.rewrapping());
    assert_eq!(woken(), 2, "version 2 reached its limit");
    assert!(
        f.rotate_worn().is_empty(),
        "no rotation while the previous one's rewrap runs"
    );
    let steps = f.drive();
    assert!(
        matches!(
            steps.last(),
            Some(RewrapStep::Finished { rewrapped: 6, .. })
        ),
        "{steps:?}"
    );
    assert_eq!(f.wraps(), [(2, 6)], "version 2 starts past the limit");
    for _ in 0..3 {
        assert!(
            f.rotate_worn().is_empty(),
            "the rewrap's own wraps do not rotate version 2 again"
        );
    }
    assert!(
        !f.store.shared.keys.wraps.warn_once(f.tenant()),
        "the operator was warned, once"
    );
    assert_eq!(woken(), 2);

    // New writes count: the limit again on top of the rewrap's wraps makes version 2 due.
    for i in 0..LIMIT {
        f.put(&keys[0], format!("new {i}").as_bytes());
        assert!(i + 1 == LIMIT || f.rotate_worn().is_empty(), "{i}");
    }
    assert_eq!(woken(), 3, "woken when version 2 became due");
    assert_eq!(f.wraps(), [(2, 6 + LIMIT)]);
    assert_eq!(f.rotate_worn(), [3]);
    f.drive();
    assert_eq!(f.wraps(), [(3, 6)]);
    assert_eq!(
        f.read(&keys[0]).unwrap(),
        format!("new {}", LIMIT - 1).as_bytes()
    );
    for (i, key) in keys.iter().enumerate().skip(1) {
        assert_eq!(f.read(key).unwrap(), format!("object {i}").as_bytes());
    }
}

/// The watch counts a wrap before its commit: a check that reads the stored count just
/// before that commit does not find the tenant due, so it stays pending (the schedule
/// checks again shortly) until a check sees it due, or settles.
#[test]
fn a_check_that_may_have_missed_the_wearing_commit_stays_pending() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    let f = fixture();
    let watch = &f.store.shared.keys.wraps;
    let woken = Arc::new(AtomicUsize::new(0));
    let hook = Arc::clone(&woken);
    f.store.watch_dek_wraps(2, move || {
        hook.fetch_add(1, Ordering::SeqCst);
    });
    let (tenant, v1) = (f.tenant(), KekVersion::FIRST);
    assert!(!f.store.worn_kek_check_pending());
    watch.counted(tenant, v1);
    watch.counted(tenant, v1);
    assert_eq!(woken.load(Ordering::SeqCst), 1);
    assert!(f.store.worn_kek_check_pending(), "the hook fired");

    // The check read 1 wrap stored: the second was still in flight.
    watch.reset(&watch.mark(), [(tenant, v1, 1, true)]);
    assert!(f.store.worn_kek_check_pending(), "not due yet: check again");
    // A wrap counted while a check runs is taken off what it found; it fired already.
    let mark = watch.mark();
    watch.counted(tenant, v1);
    assert_eq!(woken.load(Ordering::SeqCst), 2, "the headroom left: 1");
    watch.reset(&mark, [(tenant, v1, 1, true)]);
    assert_eq!(woken.load(Ordering::SeqCst), 2, "not twice");
    // The same, when what the last check left was more than the store now says.
    watch.reset(&watch.mark(), [(tenant, v1, 5, true)]);
    let mark = watch.mark();
    watch.counted(tenant, v1);
    assert_eq!(woken.load(Ordering::SeqCst), 2);
    watch.reset(&mark, [(tenant, v1, 1, true)]);
    assert_eq!(woken.load(Ordering::SeqCst), 3, "none left: the hook fires");
    assert!(f.store.worn_kek_check_pending());
    // The next check found it due (and rotated it): settled.
    watch.reset(&watch.mark(), [(tenant, v1.next().unwrap(), 2, false)]);
    assert!(!f.store.worn_kek_check_pending());
    // A wrap under the new version counts down from what the check left it.
    watch.counted(tenant, v1.next().unwrap());
    assert_eq!(woken.load(Ordering::SeqCst), 3);
    assert!(!f.store.worn_kek_check_pending());
}
