//! A root rotation cut short by a crash: every tenant stays readable whichever root version
//! wraps its KEK, and the next start finishes the job.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use coffre_crypto::{KeyProvider, LocalFileKeyProvider, Role};

use super::*;
use crate::{ArrayConfig, KeyLookup, StoreConfig, TenantSettings};

fn open(dir: &Path) -> (Store, Arc<dyn KeyProvider>) {
    let array = ArrayConfig {
        name: "a1".into(),
        path: dir.join("a1"),
        weight: 1,
        site: None,
    };
    let keys: Arc<dyn KeyProvider> =
        Arc::new(LocalFileKeyProvider::open_or_create(dir.join("root.key")).unwrap());
    let store = Store::open(
        StoreConfig::new(dir.join("meta"), vec![array]),
        keys.clone(),
    )
    .unwrap();
    (store, keys)
}

/// The access key's secret opens: it is sealed under a key derived from the tenant's KEK,
/// which the root key wraps.
fn assert_readable(store: &Store, key: &coffre_crypto::AccessKeyId, secret: &str) {
    match store.credential(key).unwrap() {
        KeyLookup::Active(credential) => assert_eq!(credential.secret.expose(), secret),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_rotation_cut_short_is_finished_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let admin = AdminScope::local_operator();
    let mut credentials = Vec::new();
    let first;
    {
        let (store, keys) = open(dir.path());
        for name in ["alpha", "bravo", "charlie"] {
            let tenant = store
                .create_tenant(&admin, name, TenantSettings::default())
                .unwrap();
            let (key, secret) = store
                .create_access_key(&admin, tenant.id, Role::Admin, None)
                .unwrap();
            credentials.push((tenant.id, key, secret.expose().to_owned()));
        }
        first = keys.current_root_version();
        // The crash: a new root version exists, one tenant of three was rewrapped.
        keys.rotate_root().unwrap();
        assert_eq!(store.rewrap_tenant_keks(credentials[0].0).unwrap(), 1);
    }

    let (store, keys) = open(dir.path());
    let second = keys.current_root_version();
    assert!(second > first);
    let status = store.root_key_status(&admin).unwrap();
    assert_eq!(status.versions, [first, second]);
    assert_eq!(
        status.keks.into_iter().collect::<Vec<_>>(),
        [(first, 2), (second, 1)]
    );
    for (_, key, secret) in &credentials {
        assert_readable(&store, key, secret);
    }

    let finished = store
        .resume_root_rotation(
            &MaintenanceScope::new("test"),
            &crate::cluster::test_lease(&store, "key-rotation"),
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        finished,
        RootRotation {
            root_version: second,
            tenants: 2,
            keks: 2,
            retired: vec![first],
        }
    );
    assert_eq!(keys.root_versions(), [second]);
    for (id, key, secret) in &credentials {
        assert_readable(&store, key, secret);
        let tenant = store.tenant(&admin, *id).unwrap();
        assert!(tenant.keks.iter().all(|k| k.root_version() == Some(second)));
    }
    assert_eq!(
        store
            .resume_root_rotation(
                &MaintenanceScope::new("test"),
                &crate::cluster::test_lease(&store, "key-rotation")
            )
            .unwrap(),
        None,
        "nothing left to finish"
    );
    drop(store);

    let (store, keys) = open(dir.path());
    assert_eq!(keys.root_versions(), [second]);
    for (_, key, secret) in &credentials {
        assert_readable(&store, key, secret);
    }
}

#[test]
fn a_root_version_still_wrapping_a_kek_is_never_destroyed() {
    let dir = tempfile::tempdir().unwrap();
    let admin = AdminScope::local_operator();
    let (store, keys) = open(dir.path());
    let mut credentials = Vec::new();
    for name in ["alpha", "bravo"] {
        let tenant = store
            .create_tenant(&admin, name, TenantSettings::default())
            .unwrap();
        let (key, secret) = store
            .create_access_key(&admin, tenant.id, Role::Admin, None)
            .unwrap();
        credentials.push((tenant.id, key, secret.expose().to_owned()));
    }
    // Bravo's wrapped KEK is damaged: it cannot be rewrapped.
    let bravo = credentials[1].0;
    let mut record = store.tenant(&admin, bravo).unwrap();
    record.keks[0].ciphertext[0] ^= 1;
    store
        .put_raw(
            Cf::Tenants,
            &keys::tenant(bravo),
            &record.encode().unwrap(),
            Durability::Synced,
        )
        .unwrap();
    let first = keys.current_root_version();

    assert!(store.rotate_root_key(&admin).is_err());
    let second = keys.current_root_version();
    assert!(second > first);
    assert_eq!(
        keys.root_versions(),
        [first, second],
        "the old root is kept"
    );
    assert_readable(&store, &credentials[0].1, &credentials[0].2);
    let status = store.root_key_status(&admin).unwrap();
    assert_eq!(status.keks.get(&first), Some(&1), "bravo, still under it");

    // Repaired, a later attempt finishes and retires both older versions.
    record.keks[0].ciphertext[0] ^= 1;
    store
        .put_raw(
            Cf::Tenants,
            &keys::tenant(bravo),
            &record.encode().unwrap(),
            Durability::Synced,
        )
        .unwrap();
    let rotation = store.rotate_root_key(&admin).unwrap();
    assert_eq!(rotation.retired, [first, second]);
    assert_eq!(keys.root_versions(), [rotation.root_version]);
    for (_, key, secret) in &credentials {
        assert_readable(&store, key, secret);
    }
}

#[test]
fn r12_a_root_key_provider_that_did_not_wrap_the_tenants_keks_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let admin = AdminScope::local_operator();
    let maint = MaintenanceScope::new("test");
    {
        let (store, _) = open(dir.path());
        store
            .create_tenant(&admin, "alpha", TenantSettings::default())
            .unwrap();
        store.check_root_key(&maint).unwrap();
    }
    // The same store with another key file (a wrong path creates a fresh root).
    let other = tempfile::tempdir().unwrap();
    let keys =
        Arc::new(LocalFileKeyProvider::open_or_create(other.path().join("root.key")).unwrap());
    let array = ArrayConfig {
        name: "a1".into(),
        path: dir.path().join("a1"),
        weight: 1,
        site: None,
    };
    let store = Store::open(StoreConfig::new(dir.path().join("meta"), vec![array]), keys).unwrap();
    match store.check_root_key(&maint) {
        Err(Error::InvalidConfig(message)) => {
            assert!(message.contains("alpha"), "{message}");
        }
        other => panic!("a foreign root key must be refused, got {other:?}"),
    }
}
