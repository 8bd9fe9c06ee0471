//! PostObject: an upload from a browser form. The request carries no signature of its own:
//! the form's fields carry a signed POST policy, checked here before anything is stored.
//! The file is streamed to storage like a PUT body, never held whole in memory; an upload
//! that fails any check leaves nothing behind.

mod form;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use coffre_crypto::sigv4::{self, FormFields, PayloadMode, PostPolicy};
use coffre_storage::{DataWriter, KeyLookup, Store, WriteTarget, WrittenData};
use http::header::{CONTENT_TYPE, ETAG, LOCATION};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use hyper::body::Incoming;
use time::OffsetDateTime;

use super::bucket_config::check_acl_headers;
use super::objects::{with_bucket, MAX_PUT_BYTES};
use super::{empty_response, quoted_etag};
use crate::min_rate::MinRate;
use crate::s3::admission::{Admission, TenantPermit};
use crate::s3::auth::authorize;
use crate::s3::blocking;
use crate::s3::body::{self, Body};
use crate::s3::cors;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::object_headers::meta_from_request;
use crate::s3::operation::{Operation, MAX_KEY_BYTES};
use crate::s3::payload_digest::{Digests, PayloadDigest};
use crate::s3::payload_writer::{receive_payload, PayloadSource};
use crate::s3::request_body::RequestBody;
use crate::s3::server_side_encryption::mark_encrypted;
use crate::s3::tagging;
use crate::s3::unread_body::UnreadBody;
use crate::s3::xml::{self, XmlWriter};
use form::{FilePart, PostForm};

/// The whole request: the largest object a PUT may carry, plus the form around it.
const MAX_POST_BYTES: u64 = MAX_PUT_BYTES + 1024 * 1024;
/// How much of a refused file is still read before the answer.
const MAX_UNREAD_ON_ERROR: u64 = 16 * 1024 * 1024;

/// Form fields that become object headers, under the header name PutObject reads.
const HEADER_FIELDS: [(&str, &str); 8] = [
    ("content-type", "content-type"),
    ("cache-control", "cache-control"),
    ("content-disposition", "content-disposition"),
    ("content-encoding", "content-encoding"),
    ("content-language", "content-language"),
    ("expires", "expires"),
    ("content-md5", "content-md5"),
    ("acl", "x-amz-acl"),
];

/// Who posted which key, for the request's audit record: filled in as each becomes known,
/// so that a refused form is attributed as far as it got.
#[derive(Default)]
pub struct PostedBy {
    pub tenant: Option<String>,
    pub access_key: Option<String>,
    pub key: Option<String>,
    /// The form's share of its tenant's requests in flight, once it is authenticated.
    pub permit: Option<TenantPermit>,
}

/// How the form reached the server and the bounds it is held to.
pub struct PostBounds<'a> {
    pub scheme: Scheme,
    /// The fields before the file must all arrive within this: until they have, the form
    /// is not authenticated and its sender is nobody in particular.
    pub fields_timeout: Duration,
    /// The slowest the form's body may arrive.
    pub body_min_rate: MinRate,
    pub admission: &'a Admission,
}

/// Handles `POST /bucket` (or `POST /` on a virtual host) with a `multipart/form-data`
/// body. Authentication happens here, from the form, since there is no Authorization header.
pub async fn post_object(
    store: Arc<Store>,
    region: Arc<str>,
    parts: http::request::Parts,
    incoming: Incoming,
    operation: Operation,
    bounds: PostBounds<'_>,
    posted_by: &mut PostedBy,
) -> Result<Response<Body>, S3Error> {
    let Operation::PostObject { bucket } = &operation else {
        return Err(S3Error::internal(
            "post_object called for another operation",
        ));
    };
    let boundary = form::boundary(&parts.headers)?;
    let body = RequestBody::new(
        UnreadBody::new(incoming),
        &parts.headers,
        &PayloadMode::Unsigned,
        None,
        MAX_POST_BYTES,
        bounds.body_min_rate,
    )?;
    let mut form = PostForm::new(body, boundary);
    let (fields, mut file) = tokio::time::timeout(bounds.fields_timeout, form.read_fields())
        .await
        .map_err(|_| {
            S3Error::with_message(
                S3ErrorCode::RequestTimeout,
                "The form's fields did not arrive within the time allowed.",
            )
        })??;
    let request = Request {
        store,
        region,
        parts: &parts,
        operation: &operation,
        bucket,
        scheme: bounds.scheme,
        admission: bounds.admission,
    };
    let result = upload(request, fields, &mut file, posted_by).await;
    if result.is_err() {
        // Read (and drop) the rest of a refused file, up to a bound, so that the client
        // gets to read the answer instead of a reset connection.
        file.discard(MAX_UNREAD_ON_ERROR).await;
    }
    drop(file);
    form.skip_rest().await;
    result
}

/// What `upload` needs from the request besides the form.
struct Request<'a> {
    store: Arc<Store>,
    region: Arc<str>,
    parts: &'a http::request::Parts,
    operation: &'a Operation,
    bucket: &'a str,
    scheme: Scheme,
    admission: &'a Admission,
}

/// How the client reached the S3 listener, for the `Location` of the stored object: `Https`
/// on a TLS listener or behind a trusted TLS terminator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Authenticates the form, checks it against its policy, stores the file and answers.
async fn upload(
    request: Request<'_>,
    mut fields: FormFields,
    file: &mut FilePart,
    posted_by: &mut PostedBy,
) -> Result<Response<Body>, S3Error> {
    let Request {
        store,
        region,
        parts,
        operation,
        bucket,
        scheme,
        admission,
    } = request;
    // No anonymous access, ever: a form without a signature is denied.
    let auth =
        sigv4::parse_post_auth(&fields)?.ok_or_else(|| S3Error::new(S3ErrorCode::AccessDenied))?;
    if fields.get("key").is_none() {
        return Err(missing_key());
    }
    let lookup = {
        let (store, key) = (store.clone(), auth.access_key.clone());
        blocking(move || store.credential(&key)).await?
    };
    let (credential, suspended) = match lookup {
        KeyLookup::Active(credential) => (credential, false),
        KeyLookup::Suspended(credential) => (credential, true),
        KeyLookup::Unknown => return Err(S3Error::new(S3ErrorCode::InvalidAccessKeyId)),
    };
    let verified = sigv4::verify_post(&auth, &credential, Some(&region))?;
    // Only a correctly signed form learns that its tenant is suspended.
    if suspended {
        return Err(S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "Access Denied: this account is suspended.",
        ));
    }
    let scope = Arc::new(verified.scope);
    posted_by.tenant = Some(scope.tenant_id().to_hex());
    posted_by.access_key = Some(scope.access_key().to_string());
    posted_by.permit = Some(admission.admit_tenant(&scope.tenant_id().to_hex())?);
    tracing::Span::current().record("tenant", tracing::field::display(scope.tenant_id()));
    authorize(&scope, operation)?;

    // Variables are expanded before the policy is checked. A part without a filename
    // parameter leaves `${filename}` as it is, as S3 does.
    if let Some(filename) = &file.filename {
        fields.expand_filename(filename);
    }
    let policy = verified.policy;
    policy.evaluate(OffsetDateTime::now_utc(), bucket, &fields)?;
    let key = fields.get("key").unwrap_or_default().to_owned();
    posted_by.key = Some(key.clone());
    if key.is_empty() {
        return Err(missing_key());
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(S3Error::new(S3ErrorCode::KeyTooLongError));
    }

    let record = {
        let (store, scope, name) = (store.clone(), scope.clone(), bucket.to_owned());
        Arc::new(
            blocking(move || store.bucket(&scope, &name))
                .await
                .map_err(|e| with_bucket(e, bucket))?,
        )
    };
    let headers = object_headers(&fields)?;
    // SSE-C form fields are not taken (yet): refused rather than storing without the key.
    if fields.iter().any(|(name, _)| {
        name.to_ascii_lowercase()
            .starts_with("x-amz-server-side-encryption-customer-")
    }) {
        return Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "Server-side encryption with customer-provided keys is not implemented for POST \
             uploads by Coffre.",
        ));
    }
    check_acl_headers(&headers)?;
    let mut meta = meta_from_request(&headers)?;
    let digest = PayloadDigest::from_headers(&headers)?;
    let writer = {
        let (store, scope, record) = (store.clone(), scope.clone(), record.clone());
        blocking(move || store.data_writer(&scope, &record, WriteTarget::Object, None)).await?
    };
    let (data, digests) = receive_file(file, writer, digest, &policy).await?;
    meta.size = data.size();
    meta.etag = digests.md5_hex.clone();
    let (algorithm, checksum) = digests.checksum.clone();
    meta.checksums = vec![(algorithm.name().to_owned(), checksum.clone())];
    meta.checksum_type = Some("FULL_OBJECT".to_owned());
    let cors_rules = record.cors.clone();
    {
        let (store, scope, key) = (store.clone(), scope.clone(), key.clone());
        blocking(move || store.put_object(&scope, &record, &key, meta, data)).await?;
    }

    let location = object_location(scheme, parts, bucket, &key);
    let mut response = success_response(&fields, bucket, &key, &digests.md5_hex, &location);
    let headers = response.headers_mut();
    headers.insert(ETAG, quoted_etag(&digests.md5_hex));
    cors::add_actual_response_headers(&cors_rules, &parts.headers, "POST", headers);
    mark_encrypted(headers);
    if !headers.contains_key(LOCATION) {
        if let Ok(v) = HeaderValue::from_str(&location) {
            headers.insert(LOCATION, v);
        }
    }
    if digests.requested {
        if let Ok(v) = HeaderValue::from_str(&checksum) {
            headers.insert(algorithm.header_name(), v);
        }
        headers.insert(
            "x-amz-checksum-type",
            HeaderValue::from_static("FULL_OBJECT"),
        );
    }
    Ok(response)
}

fn missing_key() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::InvalidArgument,
        "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.",
    )
    .detail("ArgumentName", "key")
    .detail("ArgumentValue", "")
}

/// The fields PutObject would have read from headers, as headers, so that metadata, ACL
/// and checksum handling are PutObject's own.
fn object_headers(fields: &FormFields) -> Result<HeaderMap, S3Error> {
    let mut headers = HeaderMap::new();
    for (name, value) in fields.iter() {
        let lower = name.to_ascii_lowercase();
        if lower == "tagging" {
            // The form carries a Tagging document; PutObject reads the header's form.
            let tags = tagging::parse_document(&xml::parse(value.as_bytes())?)?;
            let value =
                HeaderValue::from_str(&tagging::header_value(&tags)).map_err(S3Error::internal)?;
            headers.insert("x-amz-tagging", value);
            continue;
        }
        let header = match HEADER_FIELDS.iter().find(|(field, _)| *field == lower) {
            Some((_, header)) => (*header).to_owned(),
            None if lower.starts_with("x-amz-meta-") || lower.starts_with("x-amz-checksum-") => {
                lower
            }
            None => continue,
        };
        let invalid = || {
            S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                format!("The value of the form field {name} is not valid."),
            )
        };
        let header = HeaderName::from_bytes(header.as_bytes()).map_err(|_| invalid())?;
        let value = HeaderValue::from_bytes(value.as_bytes()).map_err(|_| invalid())?;
        headers.insert(header, value);
    }
    Ok(headers)
}

/// The form's file as a payload: `content-length-range` is enforced as the bytes arrive
/// (too large) and at the end (too small).
struct PolicedFile<'a> {
    file: &'a mut FilePart,
    policy: &'a PostPolicy,
    max: u64,
    size: u64,
}

impl PayloadSource for PolicedFile<'_> {
    async fn next(&mut self) -> Result<Option<Bytes>, S3Error> {
        match self.file.next().await? {
            Some(bytes) => {
                self.size += bytes.len() as u64;
                if self.size > self.max {
                    self.policy.check_length(self.size)?;
                    return Err(S3Error::new(S3ErrorCode::EntityTooLarge));
                }
                Ok(Some(bytes))
            }
            None => {
                self.policy.check_length(self.size)?;
                Ok(None)
            }
        }
    }

    fn trailers(&self) -> &[(String, String)] {
        &[]
    }
}

/// Streams the file into `writer` while hashing it. On any error the writer is dropped
/// unfinished, which removes its temporary file.
async fn receive_file(
    file: &mut FilePart,
    writer: DataWriter,
    digest: PayloadDigest,
    policy: &PostPolicy,
) -> Result<(WrittenData, Digests), S3Error> {
    let max = policy
        .content_length_range()
        .map_or(MAX_PUT_BYTES, |(_, max)| max.min(MAX_PUT_BYTES));
    let mut source = PolicedFile {
        file,
        policy,
        max,
        size: 0,
    };
    receive_payload(&mut source, writer, digest).await
}

/// The object's URL, in the style the form was posted with; the key is encoded whole,
/// `/` included, as S3 writes it.
fn object_location(
    scheme: Scheme,
    parts: &http::request::Parts,
    bucket: &str,
    key: &str,
) -> String {
    let scheme = scheme.as_str();
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(parts.uri.host())
        .unwrap_or("localhost");
    let virtual_host = parts.uri.path().trim_matches('/').is_empty();
    let key = percent_encode(key, false);
    if virtual_host {
        format!("{scheme}://{host}/{key}")
    } else {
        format!("{scheme}://{host}/{}/{key}", percent_encode(bucket, false))
    }
}

/// Percent-encodes all but unreserved characters; `form` writes a space as `+`, as
/// `application/x-www-form-urlencoded` does.
fn percent_encode(value: &str, form: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b' ' if form => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// 303 to `success_action_redirect` (or the older `redirect`) when it is a URL S3 can
/// use; otherwise the status `success_action_status` asks for: 200, 201 with a
/// PostResponse document, or 204 (the default, and the answer to any other value).
fn success_response(
    fields: &FormFields,
    bucket: &str,
    key: &str,
    etag: &str,
    location: &str,
) -> Response<Body> {
    let redirect = fields
        .get("success_action_redirect")
        .or_else(|| fields.get("redirect"))
        .and_then(|url| redirect_location(url, bucket, key, etag));
    if let Some(target) = redirect {
        let mut response = empty_response(StatusCode::SEE_OTHER);
        response.headers_mut().insert(LOCATION, target);
        return response;
    }
    match fields.get("success_action_status") {
        Some("200") => empty_response(StatusCode::OK),
        Some("201") => {
            let mut w = XmlWriter::new();
            w.open("PostResponse");
            w.element("Location", location);
            w.element("Bucket", bucket);
            w.element("Key", key);
            w.element("ETag", &format!("\"{etag}\""));
            w.close("PostResponse");
            let mut response = Response::new(body::full(w.finish()));
            *response.status_mut() = StatusCode::CREATED;
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
            response
        }
        _ => empty_response(StatusCode::NO_CONTENT),
    }
}

/// `url` with `bucket`, `key` and `etag` appended to its query, or `None` when it is not an
/// absolute http(s) URL (S3 then acts as if the field were absent).
fn redirect_location(url: &str, bucket: &str, key: &str, etag: &str) -> Option<HeaderValue> {
    let lower = url.to_ascii_lowercase();
    let absolute = ["http://", "https://"].iter().any(|scheme| {
        lower
            .strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty())
    });
    if !absolute {
        return None;
    }
    let separator = match url.find('?') {
        None => "?",
        Some(_) if url.ends_with('?') || url.ends_with('&') => "",
        Some(_) => "&",
    };
    let target = format!(
        "{url}{separator}bucket={}&key={}&etag={}",
        percent_encode(bucket, true),
        percent_encode(key, true),
        percent_encode(&format!("\"{etag}\""), true)
    );
    HeaderValue::from_str(&target).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> FormFields {
        let mut f = FormFields::new();
        for (name, value) in pairs {
            f.push(name, value);
        }
        f
    }

    #[test]
    fn redirects_carry_bucket_key_and_etag() {
        let target = redirect_location("https://example.com/done", "b", "a dir/x.jpg", "abc");
        assert_eq!(
            target.as_ref().and_then(|v| v.to_str().ok()),
            Some("https://example.com/done?bucket=b&key=a+dir%2Fx.jpg&etag=%22abc%22")
        );
        let target = redirect_location("http://example.com/?md5=1", "b", "k", "e");
        assert_eq!(
            target.as_ref().and_then(|v| v.to_str().ok()),
            Some("http://example.com/?md5=1&bucket=b&key=k&etag=%22e%22")
        );
        assert!(redirect_location("/relative/path", "b", "k", "e").is_none());
        assert!(redirect_location("http://", "b", "k", "e").is_none());
    }

    #[test]
    fn status_follows_success_action_status() {
        let status = |pairs: &[(&str, &str)]| {
            success_response(&fields(pairs), "b", "k", "e", "http://h/b/k").status()
        };
        assert_eq!(status(&[]), StatusCode::NO_CONTENT);
        assert_eq!(status(&[("success_action_status", "200")]), StatusCode::OK);
        assert_eq!(
            status(&[("success_action_status", "201")]),
            StatusCode::CREATED
        );
        assert_eq!(
            status(&[("success_action_status", "404")]),
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            status(&[
                ("success_action_status", "201"),
                ("success_action_redirect", "https://example.com/")
            ]),
            StatusCode::SEE_OTHER
        );
        assert_eq!(
            status(&[("success_action_redirect", "not a url")]),
            StatusCode::NO_CONTENT
        );
    }

    #[test]
    fn form_fields_become_put_object_headers() {
        let headers = object_headers(&fields(&[
            ("Content-Type", "image/png"),
            ("x-amz-meta-Color", "blue"),
            ("acl", "private"),
            ("key", "k"),
            ("x-amz-checksum-crc32", "AAAAAA=="),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            headers.get("content-type").map(|v| v.as_bytes()),
            Some(&b"image/png"[..])
        );
        assert_eq!(
            headers.get("x-amz-meta-color").map(|v| v.as_bytes()),
            Some(&b"blue"[..])
        );
        assert_eq!(
            headers.get("x-amz-acl").map(|v| v.as_bytes()),
            Some(&b"private"[..])
        );
        assert!(headers.get("key").is_none());
        assert!(headers.get("x-amz-checksum-crc32").is_some());
        let bad = object_headers(&fields(&[("Content-Type", "a\nb")]));
        assert_eq!(
            bad.err().map(|e| e.code()),
            Some(S3ErrorCode::InvalidArgument)
        );
    }

    #[test]
    fn the_tagging_field_becomes_the_tagging_header() {
        let document = "<Tagging><TagSet><Tag><Key>b c</Key><Value>été</Value></Tag>\
                        <Tag><Key>a</Key><Value>1</Value></Tag></TagSet></Tagging>";
        let headers =
            object_headers(&fields(&[("tagging", document)])).unwrap_or_else(|e| panic!("{e}"));
        let header = headers.get("x-amz-tagging").map(|v| v.as_bytes().to_vec());
        let tags = tagging::parse_header(&header.unwrap_or_default());
        assert_eq!(
            tags.ok(),
            Some(vec![
                ("a".to_owned(), "1".to_owned()),
                ("b c".to_owned(), "été".to_owned())
            ])
        );
        let bad = object_headers(&fields(&[("tagging", "<Tagging>")]));
        assert_eq!(bad.err().map(|e| e.code()), Some(S3ErrorCode::MalformedXML));
    }
}
