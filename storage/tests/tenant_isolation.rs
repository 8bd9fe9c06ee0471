//! Two tenants never see each other: same bucket names, separate objects, keys and data.

#![allow(clippy::unwrap_used)]

mod harness;

use coffre_crypto::{AdminScope, Credential, Role};
use coffre_storage::{AccessKeyState, Error, KeyLookup, ListQuery, TenantSettings, TenantState};
use harness::*;

#[test]
fn tenants_with_the_same_bucket_name_are_isolated() {
    each_store(|store, _| {
        let (alice, bob) = (scope(store), scope(store));
        let a = store.create_bucket(&alice, "backup", "us-east-1").unwrap();
        let b = store.create_bucket(&bob, "backup", "us-east-1").unwrap();
        assert_ne!(a.id, b.id);
        assert!(matches!(
            store.create_bucket(&alice, "backup", "us-east-1"),
            Err(Error::BucketAlreadyOwnedByYou)
        ));

        put(store, &alice, &a, "alice.txt", b"alice's data");
        put(store, &bob, &b, "bob.txt", &bytes(5000, 1));

        let listing = |scope, bucket| {
            store
                .list_objects(
                    scope,
                    bucket,
                    &ListQuery {
                        max_keys: 1000,
                        ..ListQuery::default()
                    },
                )
                .unwrap()
                .entries
                .iter()
                .map(|e| e.name().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(listing(&alice, &a), ["alice.txt"]);
        assert_eq!(listing(&bob, &b), ["bob.txt"]);
        // Bob holding Alice's bucket record still only reaches his own tenant's keys.
        assert_eq!(listing(&bob, &a), Vec::<String>::new());
        assert!(matches!(
            store.object(&bob, &b, "alice.txt"),
            Err(Error::NoSuchKey)
        ));
        assert!(matches!(
            store.object(&bob, &a, "alice.txt"),
            Err(Error::NoSuchKey)
        ));

        // Deleting under the wrong tenant touches nothing: Alice's bucket record is not a
        // live bucket of Bob's.
        assert!(matches!(
            store.delete_object(&bob, &a, "alice.txt"),
            Err(Error::NoSuchBucket)
        ));
        assert_eq!(
            read_all(
                store,
                &alice,
                &store.object(&alice, &a, "alice.txt").unwrap()
            ),
            b"alice's data"
        );

        assert!(matches!(
            store.delete_bucket(&alice, "backup"),
            Err(Error::BucketNotEmpty)
        ));
        store.delete_object(&alice, &a, "alice.txt").unwrap();
        store.delete_bucket(&alice, "backup").unwrap();
        assert!(matches!(
            store.bucket(&alice, "backup"),
            Err(Error::NoSuchBucket)
        ));
        assert_eq!(store.bucket(&bob, "backup").unwrap(), b);
        assert_eq!(store.list_buckets(&alice).unwrap(), vec![]);
        assert_eq!(store.list_buckets(&bob).unwrap(), vec![b]);
    });
}

#[test]
fn buckets_list_in_name_order_and_unknown_ones_do_not_exist() {
    each_store(|store, _| {
        let alice = scope(store);
        for name in ["zeta", "alpha", "mid"] {
            store.create_bucket(&alice, name, "eu-west-3").unwrap();
        }
        let names: Vec<_> = store
            .list_buckets(&alice)
            .unwrap()
            .into_iter()
            .map(|b| b.name)
            .collect();
        assert_eq!(names, ["alpha", "mid", "zeta"]);
        assert!(matches!(
            store.bucket(&scope(store), "alpha"),
            Err(Error::NoSuchBucket)
        ));
        assert!(matches!(
            store.delete_bucket(&scope(store), "alpha"),
            Err(Error::NoSuchBucket)
        ));
    });
}

#[test]
fn data_written_under_one_scope_cannot_be_committed_under_another() {
    each_store(|store, dir| {
        let (alice, bob) = (scope(store), scope(store));
        let a = store.create_bucket(&alice, "b", "r").unwrap();
        let b = store.create_bucket(&bob, "b", "r").unwrap();
        let data = bytes(5000, 2);
        let written = write(store, &alice, &a, &data, 700);
        assert!(matches!(
            store.put_object(&bob, &b, "k", meta_for(&data), written),
            Err(Error::ScopeMismatch)
        ));
        assert_eq!(array_files(dir), Vec::<std::path::PathBuf>::new());
    });
}

#[test]
fn a_recreated_bucket_starts_empty() {
    each_store(|store, _| {
        let alice = scope(store);
        let first = store.create_bucket(&alice, "b", "r").unwrap();
        put(store, &alice, &first, "k", b"v");
        store.delete_object(&alice, &first, "k").unwrap();
        store.delete_bucket(&alice, "b").unwrap();
        let second = store.create_bucket(&alice, "b", "r").unwrap();
        assert_ne!(first.id, second.id);
        // A write through the stale record of the deleted bucket is refused.
        let written = write(store, &alice, &first, b"late", 10);
        assert!(matches!(
            store.put_object(&alice, &first, "late", meta_for(b"late"), written),
            Err(Error::NoSuchBucket)
        ));
        let page = store
            .list_objects(
                &alice,
                &second,
                &ListQuery {
                    max_keys: 10,
                    ..ListQuery::default()
                },
            )
            .unwrap();
        assert!(page.entries.is_empty());
    });
}

fn active(lookup: KeyLookup) -> Credential {
    match lookup {
        KeyLookup::Active(credential) => credential,
        other => panic!("expected an active key, got {other:?}"),
    }
}

#[test]
fn tenants_and_access_keys() {
    each_store(|store, _| {
        let admin = AdminScope::local_operator();
        let acme = store
            .create_tenant(&admin, "acme", TenantSettings::default())
            .unwrap();
        assert!(matches!(
            store.create_tenant(&admin, "acme", TenantSettings::default()),
            Err(Error::TenantExists)
        ));
        let other = store
            .create_tenant(&admin, "other", TenantSettings::default())
            .unwrap();
        assert_eq!(
            store.tenant_by_name(&admin, "acme").unwrap(),
            Some(acme.clone())
        );
        assert_eq!(store.tenant_by_name(&admin, "nobody").unwrap(), None);
        let names: Vec<_> = store
            .list_tenants(&admin)
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["acme", "other"]);

        let (key, secret) = store
            .create_access_key(&admin, acme.id, Role::ReadOnly, Some(vec!["logs".into()]))
            .unwrap();
        let credential = active(store.credential(&key).unwrap());
        assert_eq!(credential.tenant, acme.id);
        assert_eq!(credential.role, Role::ReadOnly);
        assert_eq!(credential.secret.expose(), secret.expose());
        assert_eq!(credential.buckets, Some(vec!["logs".to_owned()]));
        assert_ne!(credential.tenant, other.id);

        assert!(matches!(
            store.create_access_key(&admin, coffre_crypto::TenantId::random(), Role::Admin, None),
            Err(Error::NoSuchTenant)
        ));
        assert!(matches!(
            store
                .credential(&coffre_crypto::AccessKeyId::generate())
                .unwrap(),
            KeyLookup::Unknown
        ));

        // Suspension keeps the key known (its holder gets AccessDenied), deletes nothing.
        store.suspend_tenant(&admin, acme.id).unwrap();
        assert!(matches!(
            store.credential(&key).unwrap(),
            KeyLookup::Suspended(_)
        ));
        store.resume_tenant(&admin, acme.id).unwrap();
        active(store.credential(&key).unwrap());

        let listed = store.list_access_keys(&admin, acme.id).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, key);
        assert_eq!(listed[0].role, Role::ReadOnly);
        assert!(store.list_access_keys(&admin, other.id).unwrap().is_empty());

        let disabled = store
            .set_access_key_state(&admin, &key, AccessKeyState::Disabled)
            .unwrap();
        assert_eq!(disabled.state, AccessKeyState::Disabled);
        assert!(matches!(
            store.credential(&key).unwrap(),
            KeyLookup::Unknown
        ));
        store
            .set_access_key_state(&admin, &key, AccessKeyState::Active)
            .unwrap();
        store.delete_access_key(&admin, &key).unwrap();
        assert!(matches!(
            store.credential(&key).unwrap(),
            KeyLookup::Unknown
        ));
        assert!(matches!(
            store.delete_access_key(&admin, &key),
            Err(Error::NoSuchAccessKey)
        ));
        assert_eq!(
            store.tenant(&admin, acme.id).unwrap().state,
            TenantState::Active
        );
    });
}
