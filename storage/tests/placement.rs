//! A tenant's data files land only on the arrays its placement allows.

#![allow(clippy::unwrap_used)]

mod harness;

use std::path::Path;

use coffre_crypto::AdminScope;
use coffre_storage::{ArrayConfig, Error, Store, StoreConfig, TenantSettings, TenantUpdate};
use harness::*;

fn store_with_sites(dir: &Path) -> Store {
    let arrays = [("east1", "east"), ("east2", "east"), ("west1", "west")]
        .into_iter()
        .map(|(name, site)| ArrayConfig {
            name: name.into(),
            path: dir.join("arrays").join(name),
            weight: 1,
            site: Some(site.into()),
        })
        .collect();
    Store::open(
        StoreConfig {
            inline_max: INLINE_MAX,
            ..StoreConfig::new(dir.join("meta"), arrays)
        },
        root_keys(dir),
    )
    .unwrap()
}

fn pinned(store: &Store, placement: &[&str]) -> coffre_crypto::TenantScope {
    tenant_scope(
        store,
        TenantSettings {
            placement: placement.iter().map(|p| p.to_string()).collect(),
            ..TenantSettings::default()
        },
    )
}

/// The arrays holding files of `tenant`.
fn arrays_used(dir: &Path, tenant: coffre_crypto::TenantId) -> Vec<String> {
    let mut used: Vec<String> = array_files(dir)
        .iter()
        .filter(|p| p.to_string_lossy().contains(&tenant.to_hex()))
        .filter_map(|p| {
            let rel = p.strip_prefix(dir.join("arrays")).ok()?;
            Some(rel.iter().next()?.to_string_lossy().into_owned())
        })
        .collect();
    used.sort();
    used.dedup();
    used
}

#[test]
fn two_tenants_pinned_to_different_arrays_and_sites() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_sites(dir.path());
    let west = pinned(&store, &["west1"]);
    let east = pinned(&store, &["east"]);
    for (scope, seed) in [(&west, 1u8), (&east, 2)] {
        let bucket = store.create_bucket(scope, "b", "r").unwrap();
        for i in 0..30 {
            put(&store, scope, &bucket, &format!("k{i}"), &bytes(3000, seed));
        }
    }
    assert_eq!(arrays_used(dir.path(), west.tenant_id()), ["west1"]);
    assert_eq!(
        arrays_used(dir.path(), east.tenant_id()),
        ["east1", "east2"]
    );

    // A new placement applies to new files.
    store
        .update_tenant(
            &AdminScope::local_operator(),
            west.tenant_id(),
            TenantUpdate {
                placement: Some(vec!["east2".into()]),
                ..TenantUpdate::default()
            },
        )
        .unwrap();
    let bucket = store.bucket(&west, "b").unwrap();
    put(&store, &west, &bucket, "moved", &bytes(3000, 3));
    assert_eq!(
        arrays_used(dir.path(), west.tenant_id()),
        ["east2", "west1"]
    );
}

#[test]
fn unknown_arrays_and_sites_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_sites(dir.path());
    let admin = AdminScope::local_operator();
    let refused = store.create_tenant(
        &admin,
        "nowhere",
        TenantSettings {
            placement: vec!["north".into()],
            ..TenantSettings::default()
        },
    );
    assert!(matches!(refused, Err(Error::InvalidPlacement(_))));
    assert_eq!(store.tenant_by_name(&admin, "nowhere").unwrap(), None);
}
