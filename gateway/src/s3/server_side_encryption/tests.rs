use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use md5::{Digest as _, Md5};

use super::*;

fn requesting(value: &'static str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(SSE_HEADER, HeaderValue::from_static(value));
    headers
}

#[test]
fn aes256_or_nothing_is_accepted() {
    assert!(check_requested(&HeaderMap::new()).is_ok());
    assert!(check_requested(&requesting("AES256")).is_ok());
}

#[test]
fn other_algorithms_are_refused() {
    let code = |v| check_requested(&requesting(v)).err().map(|e| e.code());
    assert_eq!(code("aws:kms"), Some(S3ErrorCode::NotImplemented));
    assert_eq!(code("DES"), Some(S3ErrorCode::InvalidArgument));
}

/// The SSE-C headers of `prefix` (`x-amz-` or `x-amz-copy-source-`) for `key`, each of
/// algorithm, key and MD5 given only when its `Option` is `Some`.
fn sse_c(
    prefix: &str,
    algorithm: Option<&str>,
    key: Option<&[u8]>,
    md5: Option<&[u8]>,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut put = |name: &str, value: String| {
        let name = http::HeaderName::from_bytes(format!("{prefix}{name}").as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        headers.insert(
            name,
            HeaderValue::from_str(&value).unwrap_or_else(|e| panic!("{e}")),
        );
    };
    if let Some(a) = algorithm {
        put("server-side-encryption-customer-algorithm", a.to_owned());
    }
    if let Some(k) = key {
        put("server-side-encryption-customer-key", BASE64.encode(k));
    }
    if let Some(k) = md5 {
        put(
            "server-side-encryption-customer-key-MD5",
            BASE64.encode(Md5::digest(k)),
        );
    }
    headers
}

fn object_key(headers: &HeaderMap) -> Result<Option<RequestKey>, S3Error> {
    customer_key(headers, &Query::default())
}

#[test]
fn a_full_trio_gives_the_key_and_none_gives_none() {
    let key = [9u8; 32];
    let headers = sse_c("x-amz-", Some("AES256"), Some(&key), Some(&key));
    let parsed = object_key(&headers).unwrap_or_else(|e| panic!("{e}"));
    let parsed = parsed.unwrap_or_else(|| panic!("no key"));
    assert_eq!(parsed.key_md5_base64(), BASE64.encode(Md5::digest(key)));
    assert!(object_key(&HeaderMap::new())
        .unwrap_or_else(|e| panic!("{e}"))
        .is_none());
    // The copy-source trio is another request's business.
    let copy = sse_c("x-amz-copy-source-", Some("AES256"), Some(&key), Some(&key));
    assert!(object_key(&copy)
        .unwrap_or_else(|e| panic!("{e}"))
        .is_none());
    let source =
        copy_source_customer_key(&copy, &Query::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(source.is_some());
}

/// Code, message and the XML the client sees.
fn refusal(headers: &HeaderMap) -> (S3ErrorCode, String, String) {
    let e = object_key(headers)
        .err()
        .unwrap_or_else(|| panic!("accepted"));
    (e.code(), e.message_text().to_owned(), e.to_xml("r"))
}

#[test]
fn malformed_trios_get_the_aws_errors() {
    let key = [9u8; 32];
    let short = [9u8; 16];
    let other = [8u8; 32];
    for (headers, code, message) in [
        (
            sse_c("x-amz-", None, Some(&key), Some(&key)),
            S3ErrorCode::InvalidArgument,
            "must provide a valid encryption algorithm.",
        ),
        (
            sse_c("x-amz-", Some("AES128"), Some(&key), Some(&key)),
            S3ErrorCode::InvalidEncryptionAlgorithmError,
            "The Encryption request you specified is not valid. Supported value: AES256.",
        ),
        (
            sse_c("x-amz-", Some("AES256"), None, Some(&key)),
            S3ErrorCode::InvalidArgument,
            "must provide an appropriate secret key.",
        ),
        (
            sse_c("x-amz-", Some("AES256"), Some(&key), None),
            S3ErrorCode::InvalidArgument,
            "must provide the client calculated MD5 of the secret key.",
        ),
        (
            sse_c("x-amz-", Some("AES256"), Some(&key), Some(&other)),
            S3ErrorCode::InvalidArgument,
            "The calculated MD5 hash of the key did not match the hash that was provided.",
        ),
        (
            sse_c("x-amz-", Some("AES256"), Some(&short), Some(&short)),
            S3ErrorCode::InvalidArgument,
            "The secret key was invalid for the specified algorithm.",
        ),
    ] {
        let (got, text, xml) = refusal(&headers);
        assert_eq!(got, code, "{text}");
        assert!(text.contains(message), "{text}");
        assert!(
            xml.contains("<ArgumentName>x-amz-server-side-encryption</ArgumentName>"),
            "{xml}"
        );
        assert_eq!(code.status(), http::StatusCode::BAD_REQUEST);
    }
    let (_, _, xml) = refusal(&sse_c("x-amz-", Some("AES128"), Some(&key), Some(&key)));
    assert!(
        xml.contains("<ArgumentValue>AES128</ArgumentValue>"),
        "{xml}"
    );
}

#[test]
fn sse_c_with_sse_s3_is_incompatible_before_anything_else() {
    let mut headers = sse_c("x-amz-", Some("AES999"), None, None);
    headers.insert(SSE_HEADER, HeaderValue::from_static("AES256"));
    let (code, text, xml) = refusal(&headers);
    assert_eq!(code, S3ErrorCode::InvalidArgument);
    assert!(
        text.contains("incompatible with the encryption method specified"),
        "{text}"
    );
    assert!(
        xml.contains("<ArgumentValue>AES256</ArgumentValue>"),
        "{xml}"
    );
}

#[test]
fn r12_the_key_is_never_read_from_the_query_string() {
    let key = [3u8; 32];
    let encode = |bytes: &[u8]| {
        percent_encoding::utf8_percent_encode(&bytes_b64(bytes), percent_encoding::NON_ALPHANUMERIC)
            .to_string()
    };
    for names in [
        [
            "x-amz-server-side-encryption-customer-algorithm",
            "x-amz-server-side-encryption-customer-key",
            "x-amz-server-side-encryption-customer-key-MD5",
        ],
        [
            "X-Amz-Server-Side-Encryption-Customer-Algorithm",
            "X-Amz-Server-Side-Encryption-Customer-Key",
            "X-Amz-Server-Side-Encryption-Customer-Key-MD5",
        ],
    ] {
        let query = Query::parse(&format!(
            "{}=AES256&{}={}&{}={}",
            names[0],
            names[1],
            encode(&key),
            names[2],
            encode(&Md5::digest(key)),
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        for refused in [
            customer_key(&HeaderMap::new(), &query).err(),
            copy_source_customer_key(&HeaderMap::new(), &query).err(),
            check_transport(&HeaderMap::new(), &query, true).err(),
        ] {
            let e = refused.unwrap_or_else(|| panic!("a key in the query was accepted"));
            assert_eq!(e.code(), S3ErrorCode::InvalidArgument);
            assert!(e.message_text().contains("never in the query string"));
        }
    }
    // Only the algorithm in the query is refused as well: all three travel as headers.
    let query = Query::parse("x-amz-copy-source-server-side-encryption-customer-algorithm=AES256")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(check_transport(&HeaderMap::new(), &query, true).is_err());
    assert!(!requests_customer_key(&HeaderMap::new()));
}

fn bytes_b64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

#[test]
fn sse_c_needs_a_secure_transport() {
    let key = [1u8; 32];
    let query = Query::default();
    for headers in [
        sse_c("x-amz-", Some("AES256"), Some(&key), Some(&key)),
        sse_c("x-amz-", None, None, Some(&key)),
        sse_c("x-amz-copy-source-", Some("AES256"), None, None),
    ] {
        let e = check_transport(&headers, &query, false)
            .err()
            .unwrap_or_else(|| panic!("accepted"));
        assert_eq!(e.code(), S3ErrorCode::InvalidRequest);
        assert!(e
            .message_text()
            .contains("must be made over a secure connection"));
        assert!(check_transport(&headers, &query, true).is_ok());
    }
    assert!(check_transport(&HeaderMap::new(), &query, false).is_ok());
}

#[test]
fn responses_echo_the_algorithm_and_key_md5_instead_of_sse_s3() {
    let key = CustomerKey::from_bytes(&[5u8; 32]);
    let mut headers = HeaderMap::new();
    mark_stored(&mut headers, Some(&key));
    assert_eq!(
        headers.get(CUSTOMER_ALGORITHM_HEADER).map(|v| v.as_bytes()),
        Some(&b"AES256"[..])
    );
    assert_eq!(
        headers
            .get("x-amz-server-side-encryption-customer-key-MD5")
            .and_then(|v| v.to_str().ok()),
        Some(BASE64.encode(Md5::digest([5u8; 32])).as_str())
    );
    assert!(headers.get(SSE_HEADER).is_none());
    let mut plain = HeaderMap::new();
    mark_stored(&mut plain, None);
    assert_eq!(
        plain.get(SSE_HEADER).map(|v| v.as_bytes()),
        Some(&b"AES256"[..])
    );
}

#[test]
fn upload_key_errors_are_answered_as_aws_does() {
    use coffre_storage::Error as E;
    for (e, message) in [
        (E::CustomerKeyRequired, "initiate requested encryption"),
        (E::CustomerKeyNotApplicable, "initiate requested encryption"),
        (
            E::CustomerKeyMismatch,
            "did not match the ones used originally",
        ),
    ] {
        let e = upload_key_error(e);
        assert_eq!(e.code(), S3ErrorCode::InvalidRequest);
        assert!(e.message_text().contains(message), "{}", e.message_text());
    }
    assert_eq!(
        upload_key_error(E::NoSuchUpload).code(),
        S3ErrorCode::NoSuchUpload
    );
}

#[test]
fn sse_c_etags_are_random_hex() {
    let (a, b) = (sse_c_etag(), sse_c_etag());
    assert_eq!(a.len(), 32);
    assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
}
