//! One file per group of S3 operations.

pub mod bucket_config;
pub mod bucket_cors;
pub mod buckets;
mod complete_keepalive;
pub mod copy_object;
pub mod delete_objects;
pub mod list_objects;
pub mod multipart_upload;
pub mod object_attributes;
pub mod object_tagging;
pub mod objects;
pub mod post_object;
mod upload_checksum;

use http::{HeaderValue, Response, StatusCode};

use super::body::{self, Body};

/// A 200 with an XML document.
pub fn xml_response(xml: String) -> Response<Body> {
    let mut response = Response::new(body::full(xml));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    response
}

pub fn empty_response(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(body::empty());
    *response.status_mut() = status;
    response
}

/// An ETag header value: the stored ETag in quotes.
pub fn quoted_etag(etag: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{etag}\"")).unwrap_or(HeaderValue::from_static("\"\""))
}
