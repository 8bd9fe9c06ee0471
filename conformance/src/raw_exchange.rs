//! Sending a built request and reading the whole response, over plain HTTP or over HTTPS
//! trusting the harness's test CA only (see [`crate::Transport`]).

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, Error};
use hyper_util::rt::TokioExecutor;

use crate::s3_xml;
use crate::transport::test_ca;

/// The body of a built request.
pub type RawBody = UnsyncBoxBody<Bytes, Infallible>;

/// A hyper client for `http://` and `https://` URIs; over HTTPS it trusts the harness's test CA
/// only. Make one per test: its connections belong to the test's runtime.
pub fn raw_client() -> Client<HttpsConnector<HttpConnector>, RawBody> {
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(test_ca().client_config())
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

/// Sends an already built request.
pub async fn send_request(request: Request<RawBody>) -> RawResponse {
    let description = describe(&request);
    exchange(request)
        .await
        .unwrap_or_else(|e| panic!("{description}: {e:?}"))
}

pub(crate) fn describe<B>(request: &Request<B>) -> String {
    format!("{} {}", request.method(), request.uri())
}

/// Sends a request and reads the whole response; the error when no response came back.
pub(crate) async fn exchange(request: Request<RawBody>) -> Result<RawResponse, Error> {
    let description = describe(&request);
    let (parts, body) = raw_client().request(request).await?.into_parts();
    let body = body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{description}: reading the body: {e:?}"))
        .to_bytes();
    Ok(RawResponse {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// A complete response.
#[derive(Debug)]
pub struct RawResponse {
    /// HTTP status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// Whole body.
    pub body: Bytes,
}

impl RawResponse {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `<Code>` of an S3 XML error body.
    pub fn error_code(&self) -> Option<String> {
        s3_xml::first(&self.text(), "Code")
    }

    /// Every text value of elements named `tag`, in document order, unescaped.
    pub fn xml_values(&self, tag: &str) -> Vec<String> {
        s3_xml::values(&self.text(), tag)
    }

    /// Asserts status and S3 error code, printing the whole response otherwise.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status.as_u16(), self.error_code().as_deref()),
            (status, Some(code)),
            "expected {status} {code}, got {} with body {:?} and headers {:?}",
            self.status,
            self.text(),
            self.headers
        );
    }

    /// Asserts a success status, printing the whole response otherwise.
    #[track_caller]
    pub fn assert_status(&self, status: u16) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body {:?}, headers {:?}",
            self.text(),
            self.headers
        );
    }
}
