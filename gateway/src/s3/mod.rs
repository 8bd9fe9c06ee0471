//! The S3 protocol: routing, authentication, request bodies, XML, errors and the handlers.

pub mod admission;
pub mod auth;
pub mod body;
pub mod conditional;
pub mod cors;
pub mod error;
pub mod handlers;
pub mod object_headers;
pub mod object_stream;
pub mod operation;
pub mod payload_digest;
pub mod payload_writer;
pub mod query;
pub mod range;
pub mod received_bytes;
pub mod request_audit;
pub mod request_body;
pub mod server_side_encryption;
pub mod service;
pub mod tagging;
pub mod timestamp;
pub mod unread_body;
pub mod xml;

use std::sync::Arc;

use coffre_crypto::TenantScope;
use coffre_storage::Store;

pub use error::{S3Error, S3ErrorCode};

/// Runs a storage call on the blocking pool (RocksDB syncs and file I/O block).
pub async fn blocking<T, F>(f: F) -> Result<T, S3Error>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, coffre_storage::Error> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(S3Error::internal)?
        .map_err(S3Error::from)
}

/// What every handler gets: the store, settings, and the caller's verified scope.
pub struct RequestContext {
    pub request_id: Arc<str>,
    pub store: Arc<Store>,
    pub scope: Arc<TenantScope>,
    pub region: Arc<str>,
    pub headers: http::HeaderMap,
    pub query: query::Query,
    pub body: request_body::RequestBody,
}
