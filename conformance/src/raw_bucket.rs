//! A server with one bucket, `auth`, driven by raw signed requests: shared by the suites
//! that send what an SDK would not (auth.rs, payload_modes.rs).

use http::Method;

use crate::TestServer;

/// A fresh server holding the empty bucket `auth`.
pub async fn server_with_bucket() -> TestServer {
    let server = TestServer::start();
    server
        .request(Method::PUT, "/auth")
        .send()
        .await
        .assert_status(200);
    server
}

/// Asserts that `key` does not exist in bucket `auth`.
pub async fn assert_absent(server: &TestServer, key: &str) {
    let response = server
        .request(Method::GET, &format!("/auth/{key}"))
        .send()
        .await;
    assert_eq!(
        response.status.as_u16(),
        404,
        "{key} must not exist: {}",
        response.text()
    );
}

/// Asserts that `key` of bucket `auth` holds exactly `data`.
pub async fn assert_content(server: &TestServer, key: &str, data: &[u8]) {
    let response = server
        .request(Method::GET, &format!("/auth/{key}"))
        .send()
        .await;
    response.assert_status(200);
    assert_eq!(response.body.len(), data.len(), "{key}: stored length");
    assert!(
        response.body[..] == data[..],
        "{key}: stored bytes differ (framing left in?)"
    );
}
