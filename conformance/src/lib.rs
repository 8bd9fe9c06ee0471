//! Conformance harness for Coffre: starts the real `coffre` binary on ephemeral ports over a
//! fresh data directory ([`TestServer`]) and drives it with aws-sdk-s3 clients
//! ([`TestServer::s3_client`]) and raw SigV4 requests ([`TestServer::request`]) for the inputs
//! an SDK will not send, over plain HTTP or, with `COFFRE_TEST_TRANSPORT=https`, over HTTPS
//! ([`Transport`]), with the metadata in RocksDB or, with `COFFRE_TEST_METADATA=postgres`,
//! in PostgreSQL.
// A test harness: a panic is a test failure with a message, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin_client;
mod chunked_body;
mod disk;
pub mod own_postgres;
/// A fresh database on the test PostgreSQL server (shared with the storage tests).
#[path = "../../storage/tests/harness/postgres.rs"]
pub mod postgres;
pub mod raw_bucket;
mod raw_exchange;
pub mod s3_xml;
mod sdk_client;
mod sdk_objects;
mod server;
mod signed_request;
pub mod softhsm;
mod test_data;
mod transport;

pub use admin_client::{AdminApi, AdminResponse, KeyPair};
pub use chunked_body::{sha256_hex, AwsChunked, ChunkSigner, ChunkedMode, Tamper};
pub use disk::{audit_records, files_under};
pub use raw_exchange::{raw_client, send_request, RawBody, RawResponse};
pub use sdk_client::sdk_error;
pub use sdk_objects::{
    completed_parts, create_buckets, create_upload, get_bytes, get_object, list_keys,
    multipart_object, put_bytes, put_keys, read_body, upload_part,
};
pub use server::{coffre_binary, parse_credentials, TestServer, METADATA_ENV};
pub use signed_request::{amz_date, http_date, uri_encode, Auth, Payload, RawRequest};
pub use test_data::{
    composite_crc32, crc32_base64, crc32c_base64, crc64nvme_base64, md5_base64, md5_hex,
    multipart_etag, pseudo_random_bytes, sha1_base64, sha256_base64, simple_etag,
};
pub use transport::{Transport, TRANSPORT_ENV};

/// The region every request is signed for.
pub const REGION: &str = "us-east-1";
