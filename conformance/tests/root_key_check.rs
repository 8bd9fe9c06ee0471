//! A server started with a root key provider that did not wrap the store's tenant KEKs (a
//! wrong key file path or token label, which would mint a fresh root) refuses to start with
//! a message saying so, instead of serving a store it cannot open.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use coffre_conformance::{coffre_binary, TestServer};

#[tokio::test]
async fn r12_a_wrong_root_key_file_is_refused_at_start() {
    let mut server = TestServer::start();
    // The default tenant exists, its KEK under the root key in <data_dir>/root.key.
    server.stop();
    let config = server.data_dir().join("wrong-key.toml");
    std::fs::write(
        &config,
        format!(
            "[key_provider]\nkind = \"local-file\"\npath = \"{}\"\n",
            server.data_dir().join("elsewhere.key").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(coffre_binary())
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(server.data_dir())
        .args([
            "--s3-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It must exit by itself, and soon: a server that starts would never return.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the server started");
        // The poll interval of the wait for the exit (the event), under the deadline above.
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(stderr.contains("cannot open the KEKs"), "{stderr}");
    // The right key still opens everything.
    server.start_again();
    let s3 = server.s3_client();
    s3.list_buckets().send().await.unwrap();
}
