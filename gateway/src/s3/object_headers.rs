//! The headers an object carries: the content headers, `x-amz-meta-*` and `x-amz-tagging`,
//! read from a PUT (or CreateMultipartUpload, or a CopyObject that replaces them) and
//! written back on GET and HEAD (the tags as their count, `x-amz-tagging-count`).

use coffre_storage::ObjectMeta;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::error::{S3Error, S3ErrorCode};
use super::query::Query;
use super::tagging;

/// S3's limit on user metadata: names and values together, in bytes.
const MAX_USER_METADATA_BYTES: usize = 2048;

/// Content headers and user metadata as sent by the client; size, ETag and checksums are
/// filled in once the body has been read.
pub fn meta_from_request(headers: &HeaderMap) -> Result<ObjectMeta, S3Error> {
    let text = |name: &str| -> Result<Option<String>, S3Error> {
        match headers.get(name) {
            None => Ok(None),
            Some(v) => v.to_str().map(|s| Some(s.to_owned())).map_err(|_| {
                S3Error::with_message(
                    S3ErrorCode::InvalidArgument,
                    format!("The {name} header is not valid text."),
                )
            }),
        }
    };
    let mut user_metadata = Vec::new();
    let mut total = 0;
    for (name, value) in headers {
        if let Some(key) = name.as_str().strip_prefix("x-amz-meta-") {
            // Non-ASCII values arrive as raw bytes (or RFC 2047 words); keep them verbatim.
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            total += key.len() + value.len();
            user_metadata.push((key.to_owned(), value));
        }
    }
    if total > MAX_USER_METADATA_BYTES {
        return Err(S3Error::with_message(
            S3ErrorCode::MetadataTooLarge,
            format!(
                "Your metadata headers exceed the maximum allowed metadata size ({total} > \
                 {MAX_USER_METADATA_BYTES} bytes)."
            ),
        ));
    }
    user_metadata.sort();
    let tags = match headers.get("x-amz-tagging") {
        Some(value) => tagging::parse_header(value.as_bytes())?,
        None => Vec::new(),
    };
    Ok(ObjectMeta {
        size: 0,
        etag: String::new(),
        content_type: text("content-type")?,
        content_encoding: text("content-encoding")?.and_then(strip_aws_chunked),
        content_disposition: text("content-disposition")?,
        content_language: text("content-language")?,
        cache_control: text("cache-control")?,
        expires: text("expires")?,
        user_metadata,
        tags,
        checksums: Vec::new(),
        checksum_type: None,
    })
}

/// `aws-chunked` is transfer framing, not a property of the object: S3 drops it from the
/// stored Content-Encoding.
fn strip_aws_chunked(value: String) -> Option<String> {
    let kept: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    (!kept.is_empty()).then(|| kept.join(", "))
}

/// Writes the stored headers into a GET/HEAD response, honouring `response-*` overrides.
pub fn write_response_headers(meta: &ObjectMeta, query: &Query, out: &mut HeaderMap) {
    let mut set = |name: &'static str, stored: Option<&str>, override_key: Option<&str>| {
        let value = override_key.and_then(|k| query.get(k)).or(stored);
        if let Some(value) = value {
            if let Ok(value) = HeaderValue::from_str(value) {
                out.insert(name, value);
            }
        }
    };
    set(
        "content-type",
        Some(
            meta.content_type
                .as_deref()
                .unwrap_or("binary/octet-stream"),
        ),
        Some("response-content-type"),
    );
    set(
        "content-encoding",
        meta.content_encoding.as_deref(),
        Some("response-content-encoding"),
    );
    set(
        "content-disposition",
        meta.content_disposition.as_deref(),
        Some("response-content-disposition"),
    );
    set(
        "content-language",
        meta.content_language.as_deref(),
        Some("response-content-language"),
    );
    set(
        "cache-control",
        meta.cache_control.as_deref(),
        Some("response-cache-control"),
    );
    set("expires", meta.expires.as_deref(), Some("response-expires"));
    for (key, value) in &meta.user_metadata {
        let name = HeaderName::from_bytes(format!("x-amz-meta-{key}").as_bytes());
        if let (Ok(name), Ok(value)) = (name, HeaderValue::from_bytes(value.as_bytes())) {
            out.append(name, value);
        }
    }
    if !meta.tags.is_empty() {
        out.insert("x-amz-tagging-count", HeaderValue::from(meta.tags.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_content_headers_and_metadata() {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        h.insert(
            "content-encoding",
            HeaderValue::from_static("gzip,aws-chunked"),
        );
        h.insert("x-amz-meta-color", HeaderValue::from_static("blue"));
        h.insert("x-amz-meta-a", HeaderValue::from_static("1"));
        let meta = meta_from_request(&h).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(meta.content_type.as_deref(), Some("text/plain"));
        assert_eq!(meta.content_encoding.as_deref(), Some("gzip"));
        assert_eq!(
            meta.user_metadata,
            vec![("a".into(), "1".into()), ("color".into(), "blue".into())]
        );
    }

    #[test]
    fn tags_are_read_and_counted() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-tagging", HeaderValue::from_static("b=2&a=1"));
        let meta = meta_from_request(&h).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            meta.tags,
            vec![("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        let mut out = HeaderMap::new();
        write_response_headers(&meta, &Query::default(), &mut out);
        assert_eq!(
            out.get("x-amz-tagging-count").map(|v| v.as_bytes()),
            Some(&b"2"[..])
        );
        h.insert("x-amz-tagging", HeaderValue::from_static("a=1&a=2"));
        let err = meta_from_request(&h).err().map(|e| e.code());
        assert_eq!(err, Some(S3ErrorCode::InvalidArgument));
        let untagged = meta_from_request(&HeaderMap::new()).unwrap_or_else(|e| panic!("{e}"));
        let mut out = HeaderMap::new();
        write_response_headers(&untagged, &Query::default(), &mut out);
        assert!(out.get("x-amz-tagging-count").is_none());
    }

    #[test]
    fn aws_chunked_alone_is_not_stored() {
        let mut h = HeaderMap::new();
        h.insert("content-encoding", HeaderValue::from_static("aws-chunked"));
        let meta = meta_from_request(&h).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(meta.content_encoding, None);
    }

    #[test]
    fn oversized_metadata_is_refused() {
        let mut h = HeaderMap::new();
        let big = HeaderValue::from_str(&"v".repeat(3000)).unwrap_or_else(|e| panic!("{e}"));
        h.insert("x-amz-meta-big", big);
        let err = meta_from_request(&h).err().map(|e| e.code());
        assert_eq!(err, Some(S3ErrorCode::MetadataTooLarge));
    }

    #[test]
    fn response_overrides_win() {
        let meta = meta_from_request(&HeaderMap::new()).unwrap_or_else(|e| panic!("{e}"));
        let query =
            Query::parse("response-content-type=text%2Fhtml&response-cache-control=no-cache")
                .unwrap_or_else(|e| panic!("{e}"));
        let mut out = HeaderMap::new();
        write_response_headers(&meta, &query, &mut out);
        assert_eq!(
            out.get("content-type").map(|v| v.as_bytes()),
            Some(&b"text/html"[..])
        );
        assert_eq!(
            out.get("cache-control").map(|v| v.as_bytes()),
            Some(&b"no-cache"[..])
        );
    }
}
