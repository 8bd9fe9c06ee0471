//! The PostgreSQL metadata store going away under a running gateway: requests get a fast,
//! retryable 503 (never a hang or a panic), `/ready` turns false, and once the database is
//! back the gateway recovers by itself, with every acknowledged write still there. The test
//! runs a PostgreSQL server of its own (`conformance/postgres`), so that stopping it
//! disturbs no other test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use coffre_conformance::own_postgres::OwnPostgres;
use coffre_conformance::{create_buckets, get_bytes, pseudo_random_bytes, TestServer};
use http::Method;

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
    let postgres = OwnPostgres::start(&[]);
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
