//! The transactional interface's semantics, one suite run against every metadata store:
//! lost updates refused, counter additions exact under concurrency, a range scan racing
//! an insert refused, reads that see the transaction's own writes, and the same results and
//! listing order as the in-memory reference for arbitrary byte keys.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use std::collections::BTreeMap;
use std::sync::Arc;

use coffre_storage::{
    Cf, Durability, Error, MemoryMetaStore, MetaStore, PostgresMetaStore, Result, RocksMetaStore,
    Tx,
};
use proptest::prelude::*;

/// Every store under test, each fresh. Built here so that a store added to the crate is
/// added to this list, and so to every test below.
fn stores() -> Vec<(&'static str, Arc<dyn MetaStore>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let rocks = RocksMetaStore::open(dir.path()).unwrap();
    let postgres = PostgresMetaStore::open(&harness::postgres_config(
        harness::postgres::fresh_database(),
    ))
    .unwrap();
    vec![
        ("memory", Arc::new(MemoryMetaStore::new()), None),
        ("rocksdb", Arc::new(rocks), Some(dir)),
        ("postgres", Arc::new(postgres), None),
    ]
}

/// Runs `body` until it commits, as `Store::transact` does (without its backoff).
fn transact<T>(store: &dyn MetaStore, mut body: impl FnMut(&mut Tx<'_>) -> Result<T>) -> T {
    for _ in 0..10_000 {
        let mut tx = Tx::new(store.begin().unwrap());
        let value = body(&mut tx).unwrap();
        match tx.commit(Durability::Buffered) {
            Ok(()) => return value,
            Err(Error::Conflict) => std::thread::yield_now(),
            Err(e) => panic!("commit failed: {e}"),
        }
    }
    panic!("no progress after 10,000 attempts");
}

fn read_u64(tx: &mut Tx<'_>, key: &[u8]) -> u64 {
    tx.get(Cf::Objects, key)
        .unwrap()
        .map(|v| u64::from_be_bytes(v.try_into().unwrap()))
        .unwrap_or(0)
}

#[test]
fn a_lost_update_is_refused() {
    for (name, store, _dir) in stores() {
        let mut first = Tx::new(store.begin().unwrap());
        let mut second = Tx::new(store.begin().unwrap());
        let a = read_u64(&mut first, b"k");
        let b = read_u64(&mut second, b"k");
        first.put(Cf::Objects, b"k".to_vec(), (a + 1).to_be_bytes().to_vec());
        second.put(Cf::Objects, b"k".to_vec(), (b + 1).to_be_bytes().to_vec());
        first.commit(Durability::Synced).unwrap();
        assert!(
            matches!(second.commit(Durability::Synced), Err(Error::Conflict)),
            "{name}: the second read-modify-write must not commit"
        );
        assert_eq!(
            store.get(Cf::Objects, b"k").unwrap(),
            Some(1u64.to_be_bytes().to_vec())
        );
    }
}

#[test]
fn a_lost_update_through_get_for_write_is_refused() {
    // (what the key holds first, whether the second transaction deletes rather than puts)
    for (initial, second_deletes) in [(None, false), (Some(7u64), false), (Some(7), true)] {
        for (name, store, _dir) in stores() {
            if let Some(value) = initial {
                transact(&*store, |tx| {
                    tx.put(Cf::Objects, b"k".to_vec(), value.to_be_bytes().to_vec());
                    Ok(())
                });
            }
            let mut first = Tx::new(store.begin().unwrap());
            let mut second = Tx::new(store.begin().unwrap());
            let a = first.get_for_write(Cf::Objects, b"k").unwrap();
            let b = second.get_for_write(Cf::Objects, b"k").unwrap();
            assert_eq!(a, b);
            first.put(Cf::Objects, b"k".to_vec(), 1u64.to_be_bytes().to_vec());
            if second_deletes {
                second.delete(Cf::Objects, b"k".to_vec());
            } else {
                second.put(Cf::Objects, b"k".to_vec(), 2u64.to_be_bytes().to_vec());
            }
            first.commit(Durability::Synced).unwrap();
            assert!(
                matches!(second.commit(Durability::Synced), Err(Error::Conflict)),
                "{name}, {initial:?}, delete {second_deletes}: the second must not commit"
            );
            assert_eq!(
                store.get(Cf::Objects, b"k").unwrap(),
                Some(1u64.to_be_bytes().to_vec()),
                "{name}"
            );
        }
    }
}

#[test]
fn writes_of_neighbouring_keys_read_for_write_all_commit() {
    // As many as the test harness's PostgreSQL pool has connections.
    const TXS: usize = 8;
    for (name, store, _dir) in stores() {
        let key = |i: usize| format!("tenant/bucket/object-{i:04}").into_bytes();
        // Every other key exists: new keys and overwrites side by side in one index page.
        for i in (0..TXS).step_by(2) {
            transact(&*store, |tx| {
                tx.put(Cf::Objects, key(i), b"old".to_vec());
                Ok(())
            });
        }
        let mut txs: Vec<Tx<'_>> = (0..TXS).map(|_| Tx::new(store.begin().unwrap())).collect();
        for (i, tx) in txs.iter_mut().enumerate() {
            let old = tx.get_for_write(Cf::Objects, &key(i)).unwrap();
            assert_eq!(old.is_some(), i % 2 == 0, "{name}");
            tx.put(Cf::Objects, key(i), format!("new {i}").into_bytes());
        }
        for (i, tx) in txs.into_iter().enumerate() {
            tx.commit(Durability::Synced)
                .unwrap_or_else(|e| panic!("{name}: transaction {i} did not commit: {e}"));
        }
        for i in 0..TXS {
            assert_eq!(
                store.get(Cf::Objects, &key(i)).unwrap(),
                Some(format!("new {i}").into_bytes()),
                "{name}"
            );
        }
    }
}

#[test]
fn read_modify_writes_from_many_threads_add_up() {
    const THREADS: u64 = 8;
    const EACH: u64 = 150;
    for (name, store, _dir) in stores() {
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                let store = store.as_ref();
                s.spawn(move || {
                    for _ in 0..EACH {
                        transact(store, |tx| {
                            let n = read_u64(tx, b"counter");
                            tx.put(
                                Cf::Objects,
                                b"counter".to_vec(),
                                (n + 1).to_be_bytes().to_vec(),
                            );
                            Ok(())
                        });
                    }
                });
            }
        });
        let total = transact(store.as_ref(), |tx| Ok(read_u64(tx, b"counter")));
        assert_eq!(total, THREADS * EACH, "{name}");
    }
}

#[test]
fn counter_additions_never_conflict_and_add_up_exactly() {
    const THREADS: i64 = 8;
    const EACH: i64 = 300;
    for (name, store, _dir) in stores() {
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let store = store.as_ref();
                s.spawn(move || {
                    for _ in 0..EACH {
                        let mut tx = Tx::new(store.begin().unwrap());
                        tx.add(Cf::Usage, b"tenant".to_vec(), &[t + 1, -1]);
                        // Blind additions commit at the first attempt, whatever runs beside.
                        tx.commit(Durability::Buffered).unwrap();
                    }
                });
            }
        });
        let value = store.get(Cf::Usage, b"tenant").unwrap().unwrap();
        let counters: Vec<i64> = value
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let expected_first: i64 = (1..=THREADS).map(|t| t * EACH).sum();
        assert_eq!(counters, [expected_first, -THREADS * EACH], "{name}");
    }
}

#[test]
fn a_bucket_deletion_and_a_write_into_the_bucket_cannot_both_commit() {
    for (name, store, _dir) in stores() {
        let mut setup = Tx::new(store.begin().unwrap());
        setup.put(Cf::Buckets, b"bucket".to_vec(), b"record".to_vec());
        setup.commit(Durability::Synced).unwrap();

        // DeleteBucket: "no object under the bucket?", then the bucket goes.
        let mut deleter = Tx::new(store.begin().unwrap());
        assert!(deleter.get(Cf::Buckets, b"bucket").unwrap().is_some());
        assert!(!deleter.any_with_prefix(Cf::Objects, b"bucket/").unwrap());
        deleter.delete(Cf::Buckets, b"bucket".to_vec());

        // PutObject, concurrently: "the bucket is live", then the object lands in it.
        let mut writer = Tx::new(store.begin().unwrap());
        assert!(writer.get(Cf::Buckets, b"bucket").unwrap().is_some());
        writer.put(Cf::Objects, b"bucket/key".to_vec(), b"data".to_vec());
        writer.commit(Durability::Synced).unwrap();

        assert!(
            matches!(deleter.commit(Durability::Synced), Err(Error::Conflict)),
            "{name}: a deletion that missed an insert must not commit"
        );
        assert!(
            store.get(Cf::Buckets, b"bucket").unwrap().is_some(),
            "{name}"
        );
    }
}

#[test]
fn an_insert_outside_a_scanned_range_does_not_disturb_it() {
    for (name, store, _dir) in stores() {
        let mut scanner = Tx::new(store.begin().unwrap());
        assert!(!scanner.any_with_prefix(Cf::Objects, b"other/").unwrap());
        scanner.put(Cf::Buckets, b"marker".to_vec(), b"1".to_vec());
        let mut elsewhere = Tx::new(store.begin().unwrap());
        elsewhere.put(Cf::Objects, b"zzz".to_vec(), b"1".to_vec());
        elsewhere.commit(Durability::Synced).unwrap();
        scanner
            .commit(Durability::Synced)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn a_transaction_sees_its_own_writes_and_nothing_lands_before_its_commit() {
    for (name, store, _dir) in stores() {
        let mut tx = Tx::new(store.begin().unwrap());
        tx.put(Cf::Objects, b"a/1".to_vec(), b"one".to_vec());
        tx.put(Cf::Objects, b"a/2".to_vec(), b"two".to_vec());
        tx.delete(Cf::Objects, b"a/1".to_vec());
        tx.add(Cf::Usage, b"u".to_vec(), &[5]);
        tx.add(Cf::Usage, b"u".to_vec(), &[2]);
        assert_eq!(tx.get(Cf::Objects, b"a/1").unwrap(), None, "{name}");
        assert_eq!(
            tx.scan(Cf::Objects, b"a/", Some(b"a0"), 10).unwrap(),
            vec![(b"a/2".to_vec(), b"two".to_vec())],
            "{name}"
        );
        assert_eq!(
            tx.get(Cf::Usage, b"u").unwrap(),
            Some(7i64.to_le_bytes().to_vec())
        );
        assert_eq!(
            store.get(Cf::Objects, b"a/2").unwrap(),
            None,
            "{name}: not yet"
        );
        drop(tx);
        assert_eq!(
            store.get(Cf::Objects, b"a/2").unwrap(),
            None,
            "{name}: abandoned"
        );
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Scan(Vec<u8>, Option<Vec<u8>>, usize),
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    // Few distinct bytes, 0x00 and 0xFF included, so keys collide and prefixes nest.
    proptest::collection::vec(
        prop_oneof![Just(0u8), Just(1), Just(b'a'), Just(0x7f), Just(0xff)],
        0..4,
    )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (key(), proptest::collection::vec(any::<u8>(), 0..8)).prop_map(|(k, v)| Op::Put(k, v)),
        key().prop_map(Op::Delete),
        (key(), proptest::option::of(key()), 0usize..6).prop_map(|(s, e, l)| Op::Scan(s, e, l)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Transactions of arbitrary operations on arbitrary byte keys give every store the
    /// same results and the same order as a plain ordered map.
    #[test]
    fn every_store_answers_as_an_ordered_map(
        transactions in proptest::collection::vec(proptest::collection::vec(op(), 1..6), 1..12)
    ) {
        for (name, store, _dir) in stores() {
            let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            for ops in &transactions {
                let mut tx = Tx::new(store.begin().unwrap());
                let mut pending = model.clone();
                for op in ops {
                    match op {
                        Op::Put(k, v) => {
                            tx.put(Cf::Objects, k.clone(), v.clone());
                            pending.insert(k.clone(), v.clone());
                        }
                        Op::Delete(k) => {
                            tx.delete(Cf::Objects, k.clone());
                            pending.remove(k);
                        }
                        Op::Scan(start, end, limit) => {
                            let got = tx.scan(Cf::Objects, start, end.as_deref(), *limit).unwrap();
                            let want: Vec<(Vec<u8>, Vec<u8>)> = pending
                                .range(start.clone()..)
                                .filter(|(k, _)| end.as_ref().is_none_or(|e| *k < e))
                                .take(*limit)
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect();
                            prop_assert_eq!(got, want, "{}", name);
                        }
                    }
                }
                tx.commit(Durability::Buffered).unwrap();
                model = pending;
            }
            let mut cursor = store.cursor(Cf::Objects, None).unwrap();
            cursor.seek(&[]);
            let mut stored = Vec::new();
            while let Some(entry) = cursor.next_entry().unwrap() {
                stored.push(entry);
            }
            let want: Vec<(Vec<u8>, Vec<u8>)> = model.into_iter().collect();
            prop_assert_eq!(stored, want, "{}", name);
        }
    }
}

#[test]
fn folding_counter_additions_keeps_every_count_exact() {
    for (name, store, _dir) in stores() {
        let add = |n: i64| {
            for _ in 0..n {
                let mut tx = Tx::new(store.begin().unwrap());
                tx.add(Cf::Usage, b"tenant".to_vec(), &[1, 10]);
                tx.commit(Durability::Buffered).unwrap();
            }
        };
        let read = || {
            let value = store.get(Cf::Usage, b"tenant").unwrap().unwrap();
            value
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                .collect::<Vec<_>>()
        };
        add(120);
        let folded = store.fold_counters().unwrap();
        if name == "postgres" {
            assert_eq!(
                folded, 120,
                "{name}: one delta row per addition, all folded"
            );
        }
        assert_eq!(read(), [120, 1200], "{name}");
        // Additions after a fold land on the folded value.
        add(5);
        assert_eq!(read(), [125, 1250], "{name}");
        store.fold_counters().unwrap();
        assert_eq!(read(), [125, 1250], "{name}");
    }
}
