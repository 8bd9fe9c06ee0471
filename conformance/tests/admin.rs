//! The admin listener and the embedded default's generated files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;

use bytes::Bytes;
use coffre_conformance::{parse_credentials, send_request, TestServer};
use http_body_util::{BodyExt, Full};

#[tokio::test]
async fn health_is_ok_on_the_admin_listener() {
    let server = TestServer::start();
    let request = http::Request::get(format!("{}/health", server.admin_endpoint))
        .body(Full::new(Bytes::new()).boxed_unsync())
        .unwrap();
    let response = send_request(request).await;
    response.assert_status(200);
}

#[tokio::test]
async fn credentials_file_is_private_and_stable() {
    let mut server = TestServer::start();
    let path = server.data_dir().join("credentials");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode,
        0o600,
        "{} must be readable by its owner only",
        path.display()
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let (key, secret) = parse_credentials(&text).expect("a [default] profile");
    assert!(
        key.len() >= 16 && secret.len() >= 32,
        "credentials look generated: {key}"
    );
    server.restart();
    let again = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        parse_credentials(&again),
        Some((key, secret)),
        "a restart keeps the credentials"
    );
}
