//! Two nodes over one PostgreSQL database (two stores, as two gateways on two machines see
//! it): background jobs under leases with fencing, data file intents of live and gone
//! nodes, and the key epoch that tells every node to drop its cached KEKs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use std::time::{Duration, Instant, SystemTime};

use coffre_crypto::{AdminScope, MaintenanceScope};
use coffre_storage::{Error, WriteTarget};
use harness::*;

struct Nodes {
    dir: tempfile::TempDir,
    url: String,
    a: coffre_storage::Store,
    b: coffre_storage::Store,
}

fn two_nodes() -> Nodes {
    let dir = tempfile::tempdir().unwrap();
    let url = harness::postgres::fresh_database();
    let a = open_postgres_node(dir.path(), &url);
    let b = open_postgres_node(dir.path(), &url);
    Nodes { dir, url, a, b }
}

#[test]
fn a_lease_has_one_holder_and_a_deposed_holder_commits_nothing() {
    let Nodes { dir, a, b, .. } = two_nodes();
    let short = Duration::from_millis(300);
    let held = a.acquire_lease("gc", "node-a", short).unwrap().unwrap();
    assert!(b.acquire_lease("gc", "node-b", short).unwrap().is_none());
    // Renewed by its holder: same token.
    let renewed = a.acquire_lease("gc", "node-a", short).unwrap().unwrap();
    assert_eq!(renewed.token(), held.token());
    assert!(a
        .collect_garbage(&MaintenanceScope::new("test"), &held)
        .is_ok());

    // a stops renewing (paused, or dead): b takes over once the lease expired.
    let deadline = Instant::now() + Duration::from_secs(10);
    let taken = loop {
        if let Some(lease) = b
            .acquire_lease("gc", "node-b", Duration::from_secs(30))
            .unwrap()
        {
            break lease;
        }
        assert!(
            Instant::now() < deadline,
            "the expired lease was never taken over"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(taken.token() > held.token());
    let leases = b.leases().unwrap();
    assert_eq!(leases.len(), 1);
    assert_eq!(
        (leases[0].holder.as_str(), leases[0].token),
        ("node-b", taken.token())
    );

    // a wakes up with its old lease: its commits are refused. (An overwrite gives its pass
    // an entry to delete.)
    let alice = scope(&a);
    let bucket = a.create_bucket(&alice, "b", "r").unwrap();
    put(&a, &alice, &bucket, "k", &bytes(200_000, 1));
    put(&a, &alice, &bucket, "k", &bytes(200_000, 2));
    match a.collect_garbage(&MaintenanceScope::new("test"), &held) {
        Err(Error::LeaseLost(job)) => assert_eq!(job, "gc"),
        other => panic!("a deposed collector must be refused, got {other:?}"),
    }
    // The new holder does the job: only the current version's file is left, and the
    // queue is empty.
    b.collect_garbage(&MaintenanceScope::new("test"), &taken)
        .unwrap();
    assert_eq!(array_files(dir.path()).len(), 1);
    assert_eq!(
        b.stats().gc().backlog.queued,
        1,
        "the entry a could not delete"
    );
    b.collect_garbage(&MaintenanceScope::new("test"), &taken)
        .unwrap();
    assert_eq!(b.stats().gc().backlog.queued, 0);
}

#[test]
fn the_collector_keeps_a_live_nodes_writes_and_takes_a_silent_nodes() {
    let Nodes { dir, url, a, b } = two_nodes();
    let alice = scope(&a);
    let bucket = a.create_bucket(&alice, "b", "r").unwrap();
    let data = bytes(200_000, 2);

    // a is writing an object (data file written, not committed) and beats.
    a.heartbeat("node-a", "127.0.0.1:1", SystemTime::now())
        .unwrap();
    let mut writer = a
        .data_writer(&alice, &bucket, WriteTarget::Object, None)
        .unwrap();
    writer.write(&data).unwrap();
    let written = writer.finish().unwrap();
    let gc_b = lease(&b, "gc");
    b.collect_garbage(&MaintenanceScope::new("test"), &gc_b)
        .unwrap();
    assert_eq!(
        array_files(dir.path()).len(),
        1,
        "a live node's write is kept"
    );
    let record = a
        .put_object(&alice, &bucket, "k", meta_for(&data), written)
        .unwrap();
    assert_eq!(
        read_all(&b, &alice, &record),
        data,
        "read through the other node"
    );

    // A node whose heartbeats stopped (here: one that died before its first) is gone: its
    // intents are orphans.
    let c = open_postgres_node(dir.path(), &url);
    let mut silent_writer = c
        .data_writer(&alice, &bucket, WriteTarget::Object, None)
        .unwrap();
    silent_writer.write(&data).unwrap();
    let silent = silent_writer.finish().unwrap();
    assert_eq!(array_files(dir.path()).len(), 2);
    b.collect_garbage(&MaintenanceScope::new("test"), &gc_b)
        .unwrap();
    // Its commit then fails instead of referencing the removed file.
    assert!(c
        .put_object(&alice, &bucket, "k2", meta_for(&data), silent)
        .is_err());
    assert!(matches!(
        a.object(&alice, &bucket, "k2"),
        Err(Error::NoSuchKey)
    ));
    assert_eq!(array_files(dir.path()).len(), 1, "only k's file is left");
}

#[test]
fn a_tenant_deleted_through_one_node_leaves_no_cached_kek_on_the_other() {
    let Nodes {
        dir: _dir, a, b, ..
    } = two_nodes();
    let alice = scope(&a);
    let bucket = a.create_bucket(&alice, "b", "r").unwrap();
    let record = put(&a, &alice, &bucket, "k", &bytes(5000, 3));
    let seen = b.key_epoch().unwrap();
    // b reads the object: its KEK is cached on b.
    read_all(&b, &alice, &record);
    assert!(b.kek_cache_stats().entries >= 1);
    a.delete_tenant(&AdminScope::local_operator(), alice.tenant_id(), true)
        .unwrap();
    let now = b.follow_key_epoch(seen).unwrap();
    assert!(now > seen, "the deletion moved the key epoch");
    assert_eq!(b.kek_cache_stats().entries, 0, "b dropped its cached KEKs");
}
