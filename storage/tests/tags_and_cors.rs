//! Object tags replaced in place, and bucket CORS rules with the preflight index that reads
//! them without a scope.

#![allow(clippy::unwrap_used)]

mod harness;

use coffre_crypto::AdminScope;
use coffre_storage::{CorsRule, Error, ObjectMeta, MAX_PREFLIGHT_TENANTS};
use harness::*;

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn rule(origin: &str) -> CorsRule {
    CorsRule {
        allowed_origins: vec![origin.to_owned()],
        allowed_methods: vec!["GET".to_owned()],
        ..CorsRule::default()
    }
}

#[test]
fn tags_are_replaced_without_touching_the_object() {
    each_store(|store, _| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let before = put(store, &alice, &bucket, "k", &bytes(5000, 1));
        assert!(before.meta.tags.is_empty());

        let set = tags(&[("colour", "blue"), ("size", "")]);
        store.put_object_tags(&alice, &bucket, "k", &set).unwrap();
        let after = store.object(&alice, &bucket, "k").unwrap();
        assert_eq!(after.meta.tags, set);
        let mut untagged = after.clone();
        untagged.meta.tags.clear();
        assert_eq!(untagged, before, "data, ETag and time unchanged");
        assert_eq!(
            read_range(store, &alice, &after, 0, 5000, 1000).unwrap(),
            bytes(5000, 1)
        );

        store.put_object_tags(&alice, &bucket, "k", &[]).unwrap();
        assert!(store
            .object(&alice, &bucket, "k")
            .unwrap()
            .meta
            .tags
            .is_empty());

        assert!(matches!(
            store.put_object_tags(&alice, &bucket, "absent", &set),
            Err(Error::NoSuchKey)
        ));
        // Another tenant's bucket of the same name is another bucket.
        let bob = scope(store);
        let bobs = store.create_bucket(&bob, "b", "r").unwrap();
        assert!(matches!(
            store.put_object_tags(&bob, &bobs, "k", &set),
            Err(Error::NoSuchKey)
        ));
    });
}

#[test]
fn uploads_carry_their_tags_to_the_object() {
    each_store(|store, _| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let meta = ObjectMeta {
            tags: tags(&[("a", "1")]),
            ..ObjectMeta::default()
        };
        let upload = store
            .create_upload(&alice, &bucket, "mp", meta, None)
            .unwrap();
        let reread = store.upload(&alice, &bucket, &upload.address()).unwrap();
        assert_eq!(reread.meta.tags, tags(&[("a", "1")]));
    });
}

#[test]
fn preflights_see_published_rules_only_and_never_which_tenant() {
    each_store(|store, _| {
        let (alice, bob) = (scope(store), scope(store));
        store.create_bucket(&alice, "shared", "r").unwrap();
        store.create_bucket(&bob, "shared", "r").unwrap();
        store.create_bucket(&bob, "private", "r").unwrap();
        // No rules anywhere: an existing name reads like a missing one.
        assert!(store.preflight_cors_rules("shared").unwrap().is_empty());
        assert!(store.preflight_cors_rules("private").unwrap().is_empty());
        assert!(store.preflight_cors_rules("missing").unwrap().is_empty());

        let set = store
            .set_bucket_cors(&alice, "shared", vec![rule("https://a.example")])
            .unwrap();
        assert_eq!(set.cors, vec![rule("https://a.example")]);
        assert_eq!(
            store.bucket(&alice, "shared").unwrap().cors,
            vec![rule("https://a.example")]
        );
        assert!(store.bucket(&bob, "shared").unwrap().cors.is_empty());
        assert_eq!(
            store.preflight_cors_rules("shared").unwrap(),
            vec![rule("https://a.example")]
        );
        // Neither a prefix nor an extension of the name matches.
        assert!(store.preflight_cors_rules("share").unwrap().is_empty());
        assert!(store.preflight_cors_rules("shared2").unwrap().is_empty());

        // Two tenants publishing under one name: the union of their rules.
        store
            .set_bucket_cors(&bob, "shared", vec![rule("https://b.example")])
            .unwrap();
        let mut union = store.preflight_cors_rules("shared").unwrap();
        union.sort_by(|a, b| a.allowed_origins.cmp(&b.allowed_origins));
        assert_eq!(
            union,
            vec![rule("https://a.example"), rule("https://b.example")]
        );

        // Clearing, deleting the bucket, suspending or deleting the tenant withdraws them.
        store.set_bucket_cors(&bob, "shared", Vec::new()).unwrap();
        assert_eq!(
            store.preflight_cors_rules("shared").unwrap(),
            vec![rule("https://a.example")]
        );
        let admin = AdminScope::local_operator();
        store.suspend_tenant(&admin, alice.tenant_id()).unwrap();
        assert!(store.preflight_cors_rules("shared").unwrap().is_empty());
        store.resume_tenant(&admin, alice.tenant_id()).unwrap();
        assert_eq!(store.preflight_cors_rules("shared").unwrap().len(), 1);
        store.delete_bucket(&alice, "shared").unwrap();
        assert!(store.preflight_cors_rules("shared").unwrap().is_empty());
        // A new bucket of the name starts without rules.
        store.create_bucket(&alice, "shared", "r").unwrap();
        assert!(store.preflight_cors_rules("shared").unwrap().is_empty());

        store
            .set_bucket_cors(&bob, "private", vec![rule("*")])
            .unwrap();
        store.delete_tenant(&admin, bob.tenant_id(), true).unwrap();
        assert!(store.preflight_cors_rules("private").unwrap().is_empty());

        assert!(matches!(
            store.set_bucket_cors(&alice, "missing", vec![rule("*")]),
            Err(Error::NoSuchBucket)
        ));
    });
}

#[test]
fn a_preflight_reads_a_bounded_number_of_tenants() {
    each_store(|store, _| {
        for _ in 0..MAX_PREFLIGHT_TENANTS + 3 {
            let tenant = scope(store);
            store.create_bucket(&tenant, "popular", "r").unwrap();
            store
                .set_bucket_cors(&tenant, "popular", vec![rule("*")])
                .unwrap();
        }
        assert_eq!(
            store.preflight_cors_rules("popular").unwrap().len(),
            MAX_PREFLIGHT_TENANTS
        );
    });
}
