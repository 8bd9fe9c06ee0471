//! Conformance harness for Coffre: starts the real `coffre` binary on ephemeral ports over a
//! fresh data directory ([`TestServer`]) and drives it with aws-sdk-s3 clients
//! ([`TestServer::s3_client`]) and raw SigV4 requests ([`TestServer::request`]) for the inputs
//! an SDK will not send.
// A test harness: a panic is a test failure with a message, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin_client;
mod chunked_body;
pub mod raw_bucket;
pub mod s3_xml;
mod sdk_client;
mod server;
mod signed_request;
pub mod softhsm;
mod test_data;

pub use admin_client::{AdminApi, AdminResponse, KeyPair};
pub use chunked_body::{sha256_hex, AwsChunked, ChunkSigner, ChunkedMode, Tamper};
pub use sdk_client::sdk_error;
pub use server::{coffre_binary, parse_credentials, TestServer};
pub use signed_request::{
    amz_date, send_request, uri_encode, Auth, Payload, RawRequest, RawResponse,
};
pub use test_data::{
    composite_crc32, crc32_base64, crc32c_base64, crc64nvme_base64, md5_base64, md5_hex,
    multipart_etag, pseudo_random_bytes, sha1_base64, sha256_base64, simple_etag,
};

/// The region every request is signed for.
pub const REGION: &str = "us-east-1";
