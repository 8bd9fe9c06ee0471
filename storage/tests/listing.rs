//! ListObjects against a brute-force model: filter by prefix and marker, roll up common
//! prefixes, sort, cut at max-keys. Plus pagination and a few S3 cases spelled out.

#![allow(clippy::unwrap_used)]

mod harness;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use coffre_storage::{BucketRecord, ListEntry, ListQuery, Store};
use harness::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// (name, is common prefix) in order, and whether more entries follow.
fn model(keys: &BTreeSet<String>, query: &ListQuery) -> (Vec<(String, bool)>, bool) {
    if query.max_keys == 0 {
        return (Vec::new(), false);
    }
    let after = |name: &str| query.start_after.as_deref().is_none_or(|a| name > a);
    let mut entries = BTreeMap::new();
    for key in keys
        .iter()
        .filter(|k| k.starts_with(&query.prefix) && after(k))
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
            Some(prefix) if after(&prefix) => {
                entries.insert(prefix, true);
            }
            Some(_) => {}
            None => {
                entries.insert(key.clone(), false);
            }
        }
    }
    let truncated = entries.len() > query.max_keys;
    (
        entries.into_iter().take(query.max_keys).collect(),
        truncated,
    )
}

fn names(entries: &[ListEntry]) -> Vec<(String, bool)> {
    entries
        .iter()
        .map(|e| (e.name().to_owned(), matches!(e, ListEntry::CommonPrefix(_))))
        .collect()
}

fn fill(
    store: &Store,
    scope: &coffre_crypto::TenantScope,
    bucket: &BucketRecord,
    keys: &BTreeSet<String>,
) {
    for key in keys {
        put(store, scope, bucket, key, b"");
    }
}

fn key_strategy() -> impl Strategy<Value = String> {
    // Few symbols, so that prefixes, delimiters and markers collide often; "é" checks that
    // order is UTF-8 byte order.
    proptest::collection::vec(
        prop_oneof![Just("a"), Just("b"), Just("/"), Just("-"), Just("é")],
        0..6,
    )
    .prop_map(|parts| parts.concat())
}

fn query_strategy() -> impl Strategy<Value = ListQuery> {
    (
        proptest::collection::vec(prop_oneof![Just("a"), Just("/"), Just("é")], 0..3)
            .prop_map(|p| p.concat()),
        prop_oneof![
            Just(None),
            Just(Some("/")),
            Just(Some("-")),
            Just(Some("a/")),
            Just(Some(""))
        ],
        proptest::option::of(key_strategy()),
        0usize..8,
    )
        .prop_map(|(prefix, delimiter, start_after, max_keys)| ListQuery {
            prefix,
            delimiter: delimiter.map(str::to_owned),
            start_after,
            max_keys,
        })
}

fn check_against_model(open: fn(&Path) -> Store, cases: u32) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let alice = scope(&store);
    let counter = Cell::new(0);
    let mut runner = runner(cases);
    let keys = proptest::collection::btree_set(key_strategy(), 0..30);
    runner
        .run(&(keys, query_strategy()), |(keys, query)| {
            counter.set(counter.get() + 1);
            let bucket = store
                .create_bucket(&alice, &format!("b{}", counter.get()), "r")
                .unwrap();
            fill(&store, &alice, &bucket, &keys);

            let page = store.list_objects(&alice, &bucket, &query).unwrap();
            let (expected, truncated) = model(&keys, &query);
            prop_assert_eq!(names(&page.entries), expected);
            prop_assert_eq!(page.is_truncated, truncated);
            prop_assert_eq!(
                page.next_marker.clone(),
                truncated.then(|| page.entries.last().unwrap().name().to_owned())
            );

            // Following the markers page by page yields the whole listing once.
            if query.max_keys > 0 {
                let (all, _) = model(
                    &keys,
                    &ListQuery {
                        max_keys: usize::MAX,
                        ..query.clone()
                    },
                );
                let mut seen = Vec::new();
                let mut next = query.clone();
                loop {
                    let page = store.list_objects(&alice, &bucket, &next).unwrap();
                    seen.extend(names(&page.entries));
                    if !page.is_truncated {
                        break;
                    }
                    next.start_after = page.next_marker;
                }
                prop_assert_eq!(seen, all);
            }
            Ok(())
        })
        .unwrap();
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn listing_matches_the_model_on_the_memory_store() {
    check_against_model(open_memory, 512);
}

#[test]
fn listing_matches_the_model_on_rocksdb() {
    check_against_model(open_rocks, 256);
}

#[test]
fn s3_examples() {
    each_store(|store, _| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let keys: BTreeSet<String> = ["a/1", "a/2", "a/b/3", "b", "c/1", "c0"]
            .map(String::from)
            .into();
        fill(store, &alice, &bucket, &keys);
        let list = |prefix: &str, delimiter: Option<&str>, start_after: Option<&str>, max_keys| {
            let query = ListQuery {
                prefix: prefix.into(),
                delimiter: delimiter.map(Into::into),
                start_after: start_after.map(Into::into),
                max_keys,
            };
            let page = store.list_objects(&alice, &bucket, &query).unwrap();
            (
                names(&page.entries)
                    .into_iter()
                    .map(|(n, _)| n)
                    .collect::<Vec<_>>(),
                page.is_truncated,
            )
        };
        assert_eq!(
            list("", Some("/"), None, 1000),
            (
                vec!["a/".into(), "b".into(), "c/".into(), "c0".into()],
                false
            )
        );
        assert_eq!(
            list("a/", Some("/"), None, 1000),
            (vec!["a/1".into(), "a/2".into(), "a/b/".into()], false)
        );
        assert_eq!(
            list("", Some("/"), None, 2),
            (vec!["a/".into(), "b".into()], true)
        );
        // A marker inside a common prefix does not bring the prefix back.
        assert_eq!(
            list("", Some("/"), Some("a/1"), 1000),
            (vec!["b".into(), "c/".into(), "c0".into()], false)
        );
        assert_eq!(
            list("", Some("/"), Some("a/"), 1000),
            (vec!["b".into(), "c/".into(), "c0".into()], false)
        );
        assert_eq!(
            list("", None, Some("a/2"), 2),
            (vec!["a/b/3".into(), "b".into()], true)
        );
        assert!(
            !list("", None, None, 6).1,
            "exactly max_keys entries is not truncated"
        );
        assert_eq!(list("zz", None, None, 10), (vec![], false));
    });
}

/// Pages of more than a hundred objects open their ETags on several threads: the entries
/// still come in key order, each with its own object's ETag and size, common prefixes in
/// their place, and truncation at exactly max-keys.
#[test]
fn large_pages_keep_order_and_each_objects_own_etag() {
    each_store(|store, _| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "big", "r").unwrap();
        let mut expected = BTreeMap::new();
        for i in 0..600u32 {
            // Every 7th key sits under a prefix of its own, so prefixes interleave.
            let key = if i % 7 == 0 {
                format!("k{i:04}/x")
            } else {
                format!("k{i:04}")
            };
            let body = vec![(i % 251) as u8; (i % 13) as usize + 1];
            put(store, &alice, &bucket, &key, &body);
            expected.insert(key, meta_for(&body));
        }
        let list = |delimiter: Option<&str>, max_keys| {
            let query = ListQuery {
                prefix: String::new(),
                delimiter: delimiter.map(Into::into),
                start_after: None,
                max_keys,
            };
            store.list_objects(&alice, &bucket, &query).unwrap()
        };

        let page = list(None, 1000);
        assert!(!page.is_truncated);
        assert_eq!(page.entries.len(), 600);
        for (entry, (key, meta)) in page.entries.iter().zip(&expected) {
            let ListEntry::Object(summary) = entry else {
                panic!("no delimiter, yet a common prefix: {entry:?}");
            };
            assert_eq!(&summary.key, key);
            assert_eq!(summary.etag, meta.etag, "{key}");
            assert_eq!(summary.size, meta.size, "{key}");
        }

        let page = list(Some("/"), 400);
        assert!(page.is_truncated);
        let keys: BTreeSet<String> = expected.keys().cloned().collect();
        let (model_entries, _) = model(
            &keys,
            &ListQuery {
                prefix: String::new(),
                delimiter: Some("/".into()),
                start_after: None,
                max_keys: 400,
            },
        );
        assert_eq!(names(&page.entries), model_entries);
        assert_eq!(
            page.next_marker.as_deref(),
            page.entries.last().map(ListEntry::name)
        );
    });
}
