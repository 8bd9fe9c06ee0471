//! The PostgreSQL metadata store going away under a running gateway: requests get a fast,
//! retryable 503 (never a hang or a panic), `/ready` turns false, and once the database is
//! back the gateway recovers by itself, with every acknowledged write still there. The test
//! runs a PostgreSQL server of its own (`conformance/postgres`), so that stopping it
//! disturbs no other test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use coffre_conformance::{create_buckets, get_bytes, pseudo_random_bytes, TestServer};
use http::Method;

/// A PostgreSQL server of this test's own, stopped and removed on drop.
struct OwnPostgres {
    env: HashMap<String, String>,
}

impl OwnPostgres {
    fn start() -> Self {
        let output = Command::new(script())
            .arg("start")
            .output()
            .expect("run conformance/postgres");
        assert!(
            output.status.success(),
            "conformance/postgres start: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let env = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        OwnPostgres { env }
    }

    fn url(&self, database: &str) -> String {
        let server = &self.env["COFFRE_TEST_POSTGRES_URL"];
        format!("{}/{database}", server.rsplit_once('/').unwrap().0)
    }

    fn run(&self, action: &str) {
        let status = Command::new(script())
            .arg(action)
            .envs(&self.env)
            .status()
            .expect("run conformance/postgres");
        assert!(status.success(), "conformance/postgres {action}");
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").envs(&self.env).status();
    }
}

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("postgres")
}

async fn ready(server: &TestServer) -> u16 {
    server
        .admin()
        .send(Method::GET, "/ready", None)
        .await
        .status
        .as_u16()
}

#[tokio::test]
async fn a_database_outage_answers_503_quickly_and_loses_nothing_acknowledged() {
    let postgres = OwnPostgres::start();
    let config = format!(
        "[metadata]\nkind = \"postgres\"\nurl = \"{}\"\npool_size = 4\nconnect_timeout_secs = 1\n",
        postgres.url("postgres")
    );
    let server = TestServer::start_with_config(&config, &[]);
    let s3 = server.s3_client();
    create_buckets(&s3, &["outage"]).await;
    let mut acknowledged = Vec::new();
    for i in 0..20u64 {
        let data = pseudo_random_bytes(10_000, i);
        s3.put_object()
            .bucket("outage")
            .key(format!("before-{i}"))
            .body(data.clone().into())
            .send()
            .await
            .unwrap();
        acknowledged.push((format!("before-{i}"), data));
    }
    assert_eq!(ready(&server).await, 200);

    postgres.run("down");
    // A request now: a 503 within a few seconds (the connect timeout), never a hang.
    let started = Instant::now();
    let raw = server
        .request(Method::PUT, "/outage/during")
        .body(b"x".to_vec())
        .send()
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        raw.status.as_u16(),
        503,
        "{}",
        String::from_utf8_lossy(&raw.body)
    );
    assert_eq!(
        ready(&server).await,
        503,
        "/ready says the database is gone"
    );

    postgres.run("up");
    // Recovers by itself: /ready, then writes and reads.
    let deadline = Instant::now() + Duration::from_secs(30);
    while ready(&server).await != 200 {
        assert!(Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = pseudo_random_bytes(10_000, 99);
    s3.put_object()
        .bucket("outage")
        .key("after")
        .body(after.clone().into())
        .send()
        .await
        .unwrap();
    acknowledged.push(("after".to_owned(), after));
    for (key, data) in &acknowledged {
        assert_eq!(&get_bytes(&s3, "outage", key).await, data, "{key}");
    }
}
