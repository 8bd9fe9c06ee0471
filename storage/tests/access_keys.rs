//! Access key secrets at rest: sealed under the tenant's KEK (and so the root key), never
//! in the clear in any RocksDB file, and still opened by `credential` after a reopen.

#![allow(clippy::unwrap_used, clippy::panic)]

mod harness;

use std::path::PathBuf;

use coffre_crypto::{AccessKeyId, AdminScope, Role};
use coffre_storage::{KeyLookup, Store};
use harness::*;

fn secret_of(store: &Store, id: &AccessKeyId) -> String {
    match store.credential(id).unwrap() {
        KeyLookup::Active(credential) => credential.secret.expose().to_owned(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn secrets_never_reach_rocksdb_in_the_clear_and_open_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let meta = dir.path().join("meta");
    let admin = AdminScope::local_operator();
    let (id, secret) = {
        let store = open_rocks(dir.path());
        let alice = scope(&store);
        let (id, secret) = store
            .create_access_key(&admin, alice.tenant_id(), Role::ReadWrite, None)
            .unwrap();
        let secret = secret.expose().to_owned();
        assert_eq!(secret_of(&store, &id), secret);
        // While open: the write-ahead log holds the record, not the secret.
        assert!(!files_containing(&meta, id.as_str().as_bytes()).is_empty());
        assert_eq!(
            files_containing(&meta, secret.as_bytes()),
            Vec::<PathBuf>::new()
        );
        (id, secret)
    };
    assert_eq!(
        files_containing(&meta, secret.as_bytes()),
        Vec::<PathBuf>::new()
    );

    // Reopened, with a cold KEK cache: the root key unwraps the KEK once.
    let store = open_rocks(dir.path());
    for _ in 0..3 {
        assert_eq!(secret_of(&store, &id), secret);
    }
    let stats = store.kek_cache_stats();
    assert_eq!((stats.misses, stats.hits), (1, 2), "{stats:?}");
    drop(store);
    assert!(!files_containing(&meta, id.as_str().as_bytes()).is_empty());
    assert_eq!(
        files_containing(&meta, secret.as_bytes()),
        Vec::<PathBuf>::new()
    );
}

#[test]
fn a_suspended_tenant_still_opens_its_secret_and_a_deleted_one_does_not() {
    each_store(|store, _| {
        let admin = AdminScope::local_operator();
        let alice = scope(store);
        let (id, secret) = store
            .create_access_key(&admin, alice.tenant_id(), Role::ReadOnly, None)
            .unwrap();
        store.suspend_tenant(&admin, alice.tenant_id()).unwrap();
        match store.credential(&id).unwrap() {
            KeyLookup::Suspended(credential) => {
                assert_eq!(credential.secret.expose(), secret.expose());
            }
            other => panic!("{other:?}"),
        }
        store
            .delete_tenant(&admin, alice.tenant_id(), true)
            .unwrap();
        assert!(matches!(store.credential(&id).unwrap(), KeyLookup::Unknown));
    });
}
