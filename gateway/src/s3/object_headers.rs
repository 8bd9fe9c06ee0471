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
/// S3's limit on the header section of a request that stores an object (PUT, POST, copy,
/// multipart creation): every `name: value` line, in bytes. It bounds the content headers
/// (Content-Type, Content-Disposition, Cache-Control, Content-Encoding, Content-Language,
/// Expires), which are stored with the object and sent back with it.
pub const MAX_HEADER_SECTION_BYTES: usize = 8192;

/// Refuses a header section larger than S3 accepts for a request that stores an object.
fn check_header_section(headers: &HeaderMap) -> Result<(), S3Error> {
    let total = headers.iter().fold(0usize, |total, (name, value)| {
        // `name: value\r\n`
        total.saturating_add(name.as_str().len() + value.len() + 4)
    });
    if total <= MAX_HEADER_SECTION_BYTES {
        return Ok(());
    }
    Err(S3Error::new(S3ErrorCode::RequestHeaderSectionTooLarge)
        .detail("MaxSizeAllowed", MAX_HEADER_SECTION_BYTES.to_string()))
}

/// Content headers and user metadata as sent by the client; size, ETag and checksums are
/// filled in once the body has been read. The header section and the user metadata are
/// bounded as S3 bounds them (`RequestHeaderSectionTooLarge`, `MetadataTooLarge`).
pub fn meta_from_request(headers: &HeaderMap) -> Result<ObjectMeta, S3Error> {
    check_header_section(headers)?;
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
    let mut total: usize = 0;
    for (name, value) in headers {
        if let Some(key) = name.as_str().strip_prefix("x-amz-meta-") {
            // Non-ASCII values arrive as raw bytes (or RFC 2047 words); keep them verbatim.
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            total = total.saturating_add(key.len() + value.len());
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
    fn r12_content_headers_are_bounded_by_the_header_section() {
        for name in [
            "content-type",
            "content-disposition",
            "cache-control",
            "content-encoding",
            "content-language",
            "expires",
        ] {
            let mut h = HeaderMap::new();
            let fits = HeaderValue::from_str(&"a".repeat(4096)).unwrap_or_else(|e| panic!("{e}"));
            h.insert(HeaderName::from_static(name), fits);
            assert!(meta_from_request(&h).is_ok(), "{name}");
            let big = HeaderValue::from_str(&"a".repeat(MAX_HEADER_SECTION_BYTES))
                .unwrap_or_else(|e| panic!("{e}"));
            h.insert(HeaderName::from_static(name), big);
            let err = meta_from_request(&h)
                .err()
                .unwrap_or_else(|| panic!("{name} accepted"));
            assert_eq!(err.code(), S3ErrorCode::RequestHeaderSectionTooLarge);
        }
        // Many headers that each fit add up.
        let mut h = HeaderMap::new();
        for i in 0..40 {
            let name = HeaderName::from_bytes(format!("x-extra-{i}").as_bytes())
                .unwrap_or_else(|e| panic!("{e}"));
            h.insert(
                name,
                HeaderValue::from_static(concat!(
                    "0123456789012345678901234567890123456789012345678901234567890123456789",
                    "0123456789012345678901234567890123456789012345678901234567890123456789",
                    "0123456789012345678901234567890123456789012345678901234567890123456789",
                )),
            );
        }
        let err = meta_from_request(&h).err().map(|e| e.code());
        assert_eq!(err, Some(S3ErrorCode::RequestHeaderSectionTooLarge));
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
