//! Deleting a tenant: refused while it has buckets unless forced; a forced delete removes
//! every record of it, queues its data files, and stops its keys at once.

#![allow(clippy::unwrap_used)]

mod harness;

use coffre_crypto::{AdminScope, MaintenanceScope, Role};
use coffre_storage::{Error, KeyLookup, ListQuery, ObjectMeta, TenantSettings};
use harness::*;

#[test]
fn delete_is_refused_while_buckets_remain_unless_forced() {
    each_store(|store, dir| {
        let admin = AdminScope::local_operator();
        let acme = store
            .create_tenant(&admin, "acme", TenantSettings::default())
            .unwrap();
        let (key, _) = store
            .create_access_key(&admin, acme.id, Role::Admin, None)
            .unwrap();
        let alice = coffre_crypto::TenantScope::for_tests(acme.id);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        put(store, &alice, &bucket, "big", &bytes(5000, 1));
        let upload = store
            .create_upload(&alice, &bucket, "mp", ObjectMeta::default(), None)
            .unwrap();
        let written = write_part(
            store,
            &alice,
            &bucket,
            &upload.address(),
            1,
            &bytes(4000, 2),
            1000,
        );
        store
            .put_part(
                &alice,
                &bucket,
                &upload.address(),
                1,
                coffre_storage::PartInfo::default(),
                written,
            )
            .unwrap();
        // Another tenant is untouched by all of this.
        let bob = scope(store);
        let bobs = store.create_bucket(&bob, "b", "r").unwrap();
        put(store, &bob, &bobs, "kept", &bytes(5000, 3));

        assert!(matches!(
            store.delete_tenant(&admin, acme.id, false),
            Err(Error::TenantNotEmpty)
        ));
        assert!(matches!(
            store.credential(&key).unwrap(),
            KeyLookup::Active(_)
        ));

        store.delete_tenant(&admin, acme.id, true).unwrap();
        assert!(matches!(
            store.credential(&key).unwrap(),
            KeyLookup::Unknown
        ));
        assert!(matches!(
            store.tenant(&admin, acme.id),
            Err(Error::NoSuchTenant)
        ));
        assert_eq!(store.tenant_by_name(&admin, "acme").unwrap(), None);
        assert!(matches!(
            store.bucket(&alice, "b"),
            Err(Error::NoSuchBucket)
        ));
        // A request authenticated before the deletion cannot create anything.
        assert!(matches!(
            store.create_bucket(&alice, "late", "r"),
            Err(Error::NoSuchTenant)
        ));
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
        assert!(page.entries.is_empty());

        // Its files go at the next collection; Bob's stay.
        store
            .collect_garbage(&MaintenanceScope::new("test"), &lease(store, "gc"))
            .unwrap();
        let left = array_files(dir);
        assert!(left
            .iter()
            .all(|p| !p.to_string_lossy().contains(&acme.id.to_hex())));
        assert!(left
            .iter()
            .any(|p| p.to_string_lossy().contains(&bob.tenant_id().to_hex())));
        assert_eq!(
            read_all(store, &bob, &store.object(&bob, &bobs, "kept").unwrap()),
            bytes(5000, 3)
        );

        // The name is free again, for a new tenant with nothing of the old one.
        let again = store
            .create_tenant(&admin, "acme", TenantSettings::default())
            .unwrap();
        assert_ne!(again.id, acme.id);
        assert_eq!(
            store.tenant_usage(&admin, again.id).unwrap(),
            coffre_storage::Usage::default()
        );
    });
}

#[test]
fn an_empty_tenant_is_deleted_with_its_keys() {
    each_store(|store, _| {
        let admin = AdminScope::local_operator();
        let t = store
            .create_tenant(&admin, "empty", TenantSettings::default())
            .unwrap();
        let (key, _) = store
            .create_access_key(&admin, t.id, Role::ReadOnly, None)
            .unwrap();
        store.delete_tenant(&admin, t.id, false).unwrap();
        assert!(matches!(
            store.credential(&key).unwrap(),
            KeyLookup::Unknown
        ));
        assert!(matches!(
            store.access_key(&admin, &key),
            Err(Error::NoSuchAccessKey)
        ));
        assert!(matches!(
            store.delete_tenant(&admin, t.id, false),
            Err(Error::NoSuchTenant)
        ));
        assert_eq!(
            store
                .resume_tenant_deletions(&MaintenanceScope::new("test"), &lease(store, "gc"))
                .unwrap(),
            0
        );
    });
}
