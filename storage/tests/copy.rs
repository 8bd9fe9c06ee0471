//! Copies that share their source's data (issue 5): the copy reads back its bytes whatever
//! happens to the source, a shared file is removed only with its last object, a copy never
//! commits against a source that changed, and nothing is leaked.

#![allow(clippy::unwrap_used)]

mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use coffre_crypto::{AdminScope, MaintenanceScope, TenantScope};
use coffre_storage::{BucketRecord, DataLocation, ObjectRecord, Store};
use harness::*;
use proptest::prelude::*;

fn gc(store: &Store) {
    store
        .collect_garbage(&MaintenanceScope::new("test"), &lease(store, "gc"))
        .unwrap();
}

fn copy(
    store: &Store,
    scope: &TenantScope,
    bucket: &BucketRecord,
    from: &str,
    to: &str,
) -> Option<ObjectRecord> {
    let source = store.object(scope, bucket, from).unwrap();
    assert!(store.copy_keeps_data_key(scope, &source, None).unwrap());
    let meta = source.meta.clone();
    store
        .copy_object(scope, &source, bucket, to, meta, None)
        .unwrap()
}

fn read_key(store: &Store, scope: &TenantScope, bucket: &BucketRecord, key: &str) -> Vec<u8> {
    read_all(store, scope, &store.object(scope, bucket, key).unwrap())
}

/// The names of the data files (their ids in hex) that live objects point to.
fn referenced_files(
    store: &Store,
    scope: &TenantScope,
    bucket: &BucketRecord,
    keys: &[&str],
) -> BTreeSet<String> {
    keys.iter()
        .filter_map(|key| store.object(scope, bucket, key).ok())
        .flat_map(|object| object.parts)
        .filter_map(|part| match part.location {
            DataLocation::File { file, .. } => Some(file.to_hex()),
            DataLocation::Inline(_) => None,
        })
        .collect()
}

/// The names of the data files on the arrays (temp files included).
fn files_on_arrays(dir: &Path) -> BTreeSet<String> {
    array_files(dir)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_copy_shares_the_source_files_until_both_are_deleted() {
    each_store(|store, dir| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let data = bytes(200_000, 7);
        put(store, &alice, &bucket, "src", &data);
        let files = array_files(dir);
        assert_eq!(files.len(), 1);

        let copied = copy(store, &alice, &bucket, "src", "dst").unwrap();
        assert_eq!(array_files(dir), files, "the copy wrote no data file");
        assert_ne!(copied.id, store.object(&alice, &bucket, "src").unwrap().id);
        assert_eq!(read_key(store, &alice, &bucket, "dst"), data);

        store.delete_object(&alice, &bucket, "src").unwrap();
        gc(store);
        assert_eq!(array_files(dir), files, "the copy still uses the file");
        assert_eq!(read_key(store, &alice, &bucket, "dst"), data);

        store.delete_object(&alice, &bucket, "dst").unwrap();
        gc(store);
        assert!(
            array_files(dir).is_empty(),
            "the last reference took the file"
        );
    });
}

#[test]
fn overwriting_either_side_keeps_the_other_readable() {
    each_store(|store, dir| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let data = bytes(50_000, 1);
        put(store, &alice, &bucket, "a", &data);
        copy(store, &alice, &bucket, "a", "b").unwrap();
        copy(store, &alice, &bucket, "b", "c").unwrap();
        // Onto itself, and onto a key that already shares the file: nothing changes.
        copy(store, &alice, &bucket, "a", "a").unwrap();
        copy(store, &alice, &bucket, "a", "c").unwrap();
        gc(store);
        assert_eq!(array_files(dir).len(), 1);
        put(store, &alice, &bucket, "a", &bytes(3000, 2));
        put(store, &alice, &bucket, "b", b"small");
        gc(store);
        assert_eq!(read_key(store, &alice, &bucket, "c"), data);
        assert_eq!(array_files(dir).len(), 2);
        store.delete_object(&alice, &bucket, "c").unwrap();
        gc(store);
        assert_eq!(array_files(dir).len(), 1);
    });
}

#[test]
fn a_copy_of_a_source_changed_since_it_was_read_stores_nothing() {
    each_store(|store, _| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        put(store, &alice, &bucket, "src", &bytes(5000, 1));
        let stale = store.object(&alice, &bucket, "src").unwrap();
        put(store, &alice, &bucket, "src", &bytes(6000, 2));
        let meta = stale.meta.clone();
        let copied = store.copy_object(&alice, &stale, &bucket, "dst", meta.clone(), None);
        assert!(copied.unwrap().is_none());
        store.delete_object(&alice, &bucket, "src").unwrap();
        let copied = store.copy_object(&alice, &stale, &bucket, "dst", meta, None);
        assert!(copied.unwrap().is_none());
        assert!(store.object(&alice, &bucket, "dst").is_err());
    });
}

#[test]
fn copies_are_charged_and_inline_copies_read_back() {
    each_store(|store, _| {
        let admin = AdminScope::local_operator();
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let other = store.create_bucket(&alice, "o", "r").unwrap();
        put(store, &alice, &bucket, "big", &bytes(10_000, 1));
        put(store, &alice, &bucket, "small", b"tiny");
        let source = store.object(&alice, &bucket, "big").unwrap();
        let meta = source.meta.clone();
        store
            .copy_object(&alice, &source, &other, "big", meta, None)
            .unwrap()
            .unwrap();
        copy(store, &alice, &bucket, "small", "small2").unwrap();
        assert_eq!(read_key(store, &alice, &other, "big"), bytes(10_000, 1));
        assert_eq!(read_key(store, &alice, &bucket, "small2"), b"tiny");
        // Each object counts its data and its record (key and metadata as stored).
        let usage = store.tenant_usage(&admin, alice.tenant_id()).unwrap();
        let charged: u64 = [
            (&bucket, "big"),
            (&other, "big"),
            (&bucket, "small"),
            (&bucket, "small2"),
        ]
        .into_iter()
        .map(|(b, key)| store.object_charge(&alice, b, key).unwrap().unwrap())
        .sum();
        assert_eq!((usage.bytes, usage.objects), (charged, 4));
        assert!(charged >= 20_008 + 3 + 3 + 5 + 6);
    });
}

#[test]
fn tenant_deletion_collects_shared_files() {
    each_store(|store, dir| {
        let admin = AdminScope::local_operator();
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        put(store, &alice, &bucket, "a", &bytes(5000, 1));
        copy(store, &alice, &bucket, "a", "b").unwrap();
        copy(store, &alice, &bucket, "a", "c").unwrap();
        store.delete_object(&alice, &bucket, "b").unwrap();
        store
            .delete_tenant(&admin, alice.tenant_id(), true)
            .unwrap();
        gc(store);
        assert!(array_files(dir).is_empty());
    });
}

#[test]
fn concurrent_copies_deletes_and_collections_leak_and_lose_nothing() {
    each_store(|store, dir| {
        let alice = scope(store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let keys = ["k0", "k1", "k2", "k3"];
        let data = bytes(3000, 9);
        put(store, &alice, &bucket, "k0", &data);
        std::thread::scope(|s| {
            for worker in 0..4usize {
                let (alice, bucket, data) = (&alice, &bucket, &data);
                s.spawn(move || {
                    for i in 0..40usize {
                        let from = keys[(worker + i) % 4];
                        let to = keys[(worker * 3 + i * 7 + 1) % 4];
                        match (worker + i) % 5 {
                            0 => store.delete_object(alice, bucket, to).unwrap(),
                            1 => {
                                put(store, alice, bucket, to, data);
                            }
                            4 => gc(store),
                            _ => {
                                if let Ok(source) = store.object(alice, bucket, from) {
                                    let meta = source.meta.clone();
                                    store
                                        .copy_object(alice, &source, bucket, to, meta, None)
                                        .unwrap();
                                }
                            }
                        }
                    }
                });
            }
        });
        gc(store);
        for key in keys {
            if store.object(&alice, &bucket, key).is_ok() {
                assert_eq!(read_key(store, &alice, &bucket, key), data);
            }
        }
        assert_eq!(
            files_on_arrays(dir),
            referenced_files(store, &alice, &bucket, &keys)
        );
    });
}

#[derive(Debug, Clone)]
enum Op {
    Put {
        key: usize,
        len: usize,
        seed: u8,
    },
    Copy {
        from: usize,
        to: usize,
    },
    /// A copy whose source is overwritten between being read and the copy.
    StaleCopy {
        from: usize,
        to: usize,
    },
    Delete {
        key: usize,
    },
    Gc,
}

const KEYS: [&str; 3] = ["x", "y", "z"];

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS.len();
    prop_oneof![
        1 => (key.clone(), prop_oneof![Just(10usize), Just(3000usize)], any::<u8>())
            .prop_map(|(key, len, seed)| Op::Put { key, len, seed }),
        3 => (key.clone(), key.clone()).prop_map(|(from, to)| Op::Copy { from, to }),
        1 => (key.clone(), key.clone()).prop_map(|(from, to)| Op::StaleCopy { from, to }),
        2 => key.clone().prop_map(|key| Op::Delete { key }),
        2 => Just(Op::Gc),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Against a model (key -> bytes): every live object reads back its bytes after every
    /// step, and after a collection exactly the files live objects point to are left.
    #[test]
    fn copies_deletes_overwrites_and_collections_match_the_model(ops in proptest::collection::vec(op(), 1..24)) {
        let dir = tempfile::tempdir().unwrap();
        let store = open_memory(dir.path());
        let alice = scope(&store);
        let bucket = store.create_bucket(&alice, "b", "r").unwrap();
        let mut model: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Put { key, len, seed } => {
                    let data = bytes(len, seed);
                    put(&store, &alice, &bucket, KEYS[key], &data);
                    model.insert(KEYS[key], data);
                }
                Op::Copy { from, to } => {
                    if let Some(data) = model.get(KEYS[from]).cloned() {
                        prop_assert!(copy(&store, &alice, &bucket, KEYS[from], KEYS[to]).is_some());
                        model.insert(KEYS[to], data);
                    }
                }
                Op::StaleCopy { from, to } => {
                    if let Ok(stale) = store.object(&alice, &bucket, KEYS[from]) {
                        let data = bytes(2000, 99);
                        put(&store, &alice, &bucket, KEYS[from], &data);
                        model.insert(KEYS[from], data);
                        let meta = stale.meta.clone();
                        let copied = store.copy_object(&alice, &stale, &bucket, KEYS[to], meta, None).unwrap();
                        prop_assert!(copied.is_none());
                    }
                }
                Op::Delete { key } => {
                    store.delete_object(&alice, &bucket, KEYS[key]).unwrap();
                    model.remove(KEYS[key]);
                }
                Op::Gc => {
                    gc(&store);
                    prop_assert_eq!(files_on_arrays(dir.path()), referenced_files(&store, &alice, &bucket, &KEYS));
                }
            }
            for key in KEYS {
                match model.get(key) {
                    Some(data) => prop_assert_eq!(&read_key(&store, &alice, &bucket, key), data),
                    None => prop_assert!(store.object(&alice, &bucket, key).is_err()),
                }
            }
        }
        for key in KEYS {
            store.delete_object(&alice, &bucket, key).unwrap();
        }
        gc(&store);
        prop_assert!(array_files(dir.path()).is_empty());
    }
}
