//! Three gateways and one PostgreSQL on loopback, sharing one array directory, one root key
//! file and one admin token, as a cluster behind a load balancer: writes through one node
//! are read, listed, copied and deleted through the others; concurrent overwrites of one key
//! through all three end with one winner, exact usage and no file left after collection; a
//! tenant suspended through one node is refused by the others at once; `cluster status`
//! lists the nodes and the collector's lease; a node killed with SIGKILL during writes
//! loses no acknowledged object.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use coffre_conformance::{
    audit_records, coffre_binary, create_buckets, files_under, get_bytes, list_keys, postgres,
    pseudo_random_bytes, put_bytes, KeyPair, TestServer,
};
use http::Method;

struct Cluster {
    shared: tempfile::TempDir,
    nodes: Vec<TestServer>,
}

impl Cluster {
    fn start(count: usize) -> Self {
        let shared = tempfile::Builder::new()
            .prefix("coffre-cluster-")
            .tempdir()
            .unwrap();
        let token = shared.path().join("admin-token");
        std::fs::write(&token, format!("{:064x}\n", rand::random::<u128>())).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
        let url = postgres::fresh_database();
        let nodes = (1..=count)
            .map(|i| TestServer::start_with_config(&node_config(shared.path(), &url, i), &[]))
            .collect();
        Cluster { shared, nodes }
    }

    fn array(&self) -> PathBuf {
        self.shared.path().join("array")
    }

    fn admin(&self, node: usize) -> coffre_conformance::AdminApi {
        self.nodes[node].admin_with_token_file(&self.shared.path().join("admin-token"))
    }

    fn s3(&self, node: usize, key: &KeyPair) -> aws_sdk_s3::Client {
        self.nodes[node].s3_client_with(&key.access_key, &key.secret_key)
    }
}

fn node_config(shared: &Path, url: &str, index: usize) -> String {
    let shared = shared.display();
    format!(
        "node_name = \"node-{index}\"\n\
         admin_token_file = \"{shared}/admin-token\"\n\
         gc_interval_secs = 1\n\n\
         [metadata]\nkind = \"postgres\"\nurl = \"{url}\"\npool_size = 8\n\n\
         [key_provider]\nkind = \"local-file\"\npath = \"{shared}/root.key\"\n\n\
         [[arrays]]\nname = \"shared\"\npath = \"{shared}/array\"\n\n\
         [bootstrap]\ndefault_tenant = false\n"
    )
}

/// Polls `check` until it holds or `deadline` passes.
async fn eventually(what: &str, deadline: Duration, mut check: impl AsyncFnMut() -> bool) {
    let until = Instant::now() + deadline;
    while !check().await {
        assert!(Instant::now() < until, "{what}: not within {deadline:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn any_node_serves_what_another_wrote() {
    let cluster = Cluster::start(3);
    let key = cluster.admin(0).tenant_with_key("acme").await;
    let (s1, s2, s3) = (
        cluster.s3(0, &key),
        cluster.s3(1, &key),
        cluster.s3(2, &key),
    );
    create_buckets(&s1, &["shared"]).await;
    let small = pseudo_random_bytes(1000, 1);
    let large = pseudo_random_bytes(300_000, 2);
    put_bytes(&s1, "shared", "small", &small).await;
    put_bytes(&s2, "shared", "large", &large).await;
    assert_eq!(get_bytes(&s3, "shared", "small").await, small);
    assert_eq!(get_bytes(&s3, "shared", "large").await, large);
    assert_eq!(list_keys(&s2, "shared").await, ["large", "small"]);
    s3.copy_object()
        .bucket("shared")
        .key("copy")
        .copy_source("shared/large")
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&s1, "shared", "copy").await, large);
    s2.delete_object()
        .bucket("shared")
        .key("large")
        .send()
        .await
        .unwrap();
    assert!(s1
        .get_object()
        .bucket("shared")
        .key("large")
        .send()
        .await
        .is_err());
    assert_eq!(
        get_bytes(&s1, "shared", "copy").await,
        large,
        "the copy lives on"
    );

    // The cluster's view, from any node: three live nodes, one collector.
    let status = cluster
        .admin(2)
        .send(Method::GET, "/admin/v1/cluster", None)
        .await;
    status.assert_status(200);
    let names: Vec<&str> = status.json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["live"] == true)
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["node-1", "node-2", "node-3"]);
    // Each node keeps its own audit chain, its name in every record; one verify call
    // checks them all.
    for (i, node) in cluster.nodes.iter().enumerate() {
        let dir = node.data_dir().join("audit");
        eventually(
            "audit records written",
            Duration::from_secs(10),
            async || !audit_records(&dir).is_empty(),
        )
        .await;
        let records = audit_records(&dir);
        let name = format!("node-{}", i + 1);
        assert!(records.iter().all(|r| r["node"] == name.as_str()), "{name}");
    }
    let verified = std::process::Command::new(coffre_binary())
        .args(["audit", "verify"])
        .args(cluster.nodes.iter().map(|n| n.data_dir().join("audit")))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success(), "{report}");
    assert_eq!(report.matches("audit trail intact").count(), 3, "{report}");
    eventually("a collector lease", Duration::from_secs(10), async || {
        let status = cluster
            .admin(0)
            .send(Method::GET, "/admin/v1/cluster", None)
            .await;
        status.json["leases"]
            .as_array()
            .is_some_and(|l| l.iter().any(|l| l["job"] == "gc"))
    })
    .await;
}

#[tokio::test]
async fn concurrent_overwrites_through_every_node_leave_one_winner_and_exact_usage() {
    let cluster = Cluster::start(3);
    let key = cluster.admin(0).tenant_with_key("acme").await;
    let clients: Vec<_> = (0..3).map(|i| cluster.s3(i, &key)).collect();
    create_buckets(&clients[0], &["bkt"]).await;
    let versions: Vec<Vec<u8>> = (0..30u8)
        .map(|i| pseudo_random_bytes(100_000, u64::from(i)))
        .collect();
    let mut writers = Vec::new();
    for (node, client) in clients.iter().enumerate() {
        let client = client.clone();
        let mine: Vec<Vec<u8>> = versions.iter().skip(node).step_by(3).cloned().collect();
        writers.push(tokio::spawn(async move {
            for data in mine {
                put_bytes(&client, "bkt", "k", &data).await;
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let winner = get_bytes(&clients[1], "bkt", "k").await;
    assert!(versions.contains(&winner));
    for client in &clients {
        assert_eq!(
            get_bytes(client, "bkt", "k").await,
            winner,
            "every node agrees"
        );
    }
    // Exact usage: one object of 100,000 bytes, and its record (key and metadata).
    let tenant = cluster.admin(1).tenant("acme").await;
    assert_eq!(tenant.json["usage"]["objects"], 1);
    let bytes = tenant.json["usage"]["bytes"].as_u64().unwrap();
    assert!((100_001..100_512).contains(&bytes), "{bytes}");
    // The collector (whichever node holds its lease) leaves one data file.
    let array = cluster.array();
    eventually(
        "the superseded files collected",
        Duration::from_secs(20),
        async || files_under(&array).len() == 1,
    )
    .await;
}

#[tokio::test]
async fn a_tenant_suspended_through_one_node_is_refused_by_the_others() {
    let cluster = Cluster::start(3);
    let key = cluster.admin(0).tenant_with_key("acme").await;
    let s3 = cluster.s3(2, &key);
    create_buckets(&s3, &["bkt"]).await;
    cluster
        .admin(0)
        .send(Method::POST, "/admin/v1/tenants/acme/suspend", None)
        .await
        .assert_status(200);
    // Credentials and tenant state are read from the store on every request: at once.
    let refused = s3.list_objects_v2().bucket("bkt").send().await;
    assert!(refused.is_err(), "a suspended tenant must be refused");
    cluster
        .admin(1)
        .send(Method::POST, "/admin/v1/tenants/acme/resume", None)
        .await
        .assert_status(200);
    assert!(s3.list_objects_v2().bucket("bkt").send().await.is_ok());
}

#[tokio::test]
async fn a_node_killed_during_writes_loses_no_acknowledged_object() {
    let mut cluster = Cluster::start(2);
    let key = cluster.admin(0).tenant_with_key("acme").await;
    let victim = cluster.s3(0, &key);
    let survivor = cluster.s3(1, &key);
    create_buckets(&survivor, &["bkt"]).await;
    // Writes through node 1 while it is killed: each acknowledged one must be readable
    // through node 2, whole.
    let writer = tokio::spawn(async move {
        let mut acknowledged = Vec::new();
        for i in 0..400u64 {
            let data = pseudo_random_bytes(70_000 + i as usize, i);
            let put = victim
                .put_object()
                .bucket("bkt")
                .key(format!("k{i}"))
                .body(data.clone().into())
                .send()
                .await;
            match put {
                Ok(_) => acknowledged.push((format!("k{i}"), data)),
                Err(_) => break,
            }
        }
        acknowledged
    });
    // Kill once some writes landed: a file in the array is the event.
    let array = cluster.array();
    eventually("writes landing", Duration::from_secs(20), async || {
        files_under(&array).len() >= 5
    })
    .await;
    cluster.nodes[0].kill();
    let acknowledged = writer.await.unwrap();
    assert!(!acknowledged.is_empty());
    for (key, data) in &acknowledged {
        assert_eq!(&get_bytes(&survivor, "bkt", key).await, data, "{key}");
    }
    let listed = list_keys(&survivor, "bkt").await;
    assert!(listed.len() >= acknowledged.len());
    for key in &listed {
        // Nothing partial: whatever is listed reads back whole (its length is its size).
        let read = get_bytes(&survivor, "bkt", key).await;
        let i: usize = key[1..].parse().unwrap();
        assert_eq!(read.len(), 70_000 + i);
    }
}
