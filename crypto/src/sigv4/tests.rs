//! Known-answer tests from the S3 SigV4 documentation, negative cases, and round trips
//! against the AWS SDK's own signer.

use std::time::{Duration as StdDuration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::ids::{Role, SecretKey, TenantId};

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const NOW: OffsetDateTime = datetime!(2013-05-24 00:00:00 UTC);

fn credential() -> Credential {
    Credential {
        access_key: AccessKeyId::parse(AKID).unwrap(),
        secret: SecretKey::new(SECRET.to_owned()),
        tenant: TenantId::random(),
        role: Role::ReadWrite,
        buckets: None,
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn authorization(signed_headers: &str, signature: &str) -> String {
    format!("AWS4-HMAC-SHA256 Credential={AKID}/20130524/us-east-1/s3/aws4_request,SignedHeaders={signed_headers},Signature={signature}")
}

struct Req {
    method: &'static str,
    path: String,
    query: String,
    headers: HeaderMap,
}

impl Req {
    fn decoded_query(&self) -> QueryString {
        QueryString::parse(&self.query).unwrap()
    }

    fn parts<'a>(&'a self, query: &'a QueryString) -> RequestParts<'a> {
        RequestParts {
            method: self.method,
            raw_path: &self.path,
            query,
            headers: &self.headers,
        }
    }

    fn check_at(&self, now: OffsetDateTime, region: Option<&str>) -> Result<Verified, AuthError> {
        let query = QueryString::parse(&self.query)
            .map_err(|_| AuthError::new(AuthErrorCode::InvalidArgument, "not UTF-8"))?;
        let parts = self.parts(&query);
        let auth = parse_auth(&parts)?
            .ok_or_else(|| AuthError::new(AuthErrorCode::AccessDenied, "anonymous in a test"))?;
        verify(&parts, &auth, &credential(), now, region)
    }

    fn check(&self) -> Result<Verified, AuthError> {
        self.check_at(NOW, Some("us-east-1"))
    }

    fn code(&self) -> AuthErrorCode {
        self.check().unwrap_err().code()
    }
}

fn get_object() -> Req {
    let sig = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
    Req {
        method: "GET",
        path: "/test.txt".to_owned(),
        query: String::new(),
        headers: headers(&[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
            (
                "authorization",
                &authorization("host;range;x-amz-content-sha256;x-amz-date", sig),
            ),
        ]),
    }
}

fn presigned_get() -> Req {
    Req {
        method: "GET",
        path: "/test.txt".to_owned(),
        query: "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404".to_owned(),
        headers: headers(&[("host", "examplebucket.s3.amazonaws.com")]),
    }
}

#[test]
fn aws_example_get_object() {
    let req = get_object();
    let verified = req.check().unwrap();
    assert!(verified.chunk_signer.is_none());
    let auth = parse_auth(&req.parts(&req.decoded_query()))
        .unwrap()
        .unwrap();
    assert_eq!(
        auth.payload,
        PayloadMode::Signed(hex::decode(EMPTY_SHA256).unwrap().try_into().unwrap())
    );
    assert!(!auth.presigned);
    assert_eq!(auth.region(), "us-east-1");
}

#[test]
fn aws_example_put_object_with_date_header_and_dollar_in_key() {
    let sig = "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd";
    for path in ["/test$file.text", "/test%24file.text"] {
        let req = Req {
            method: "PUT",
            path: path.to_owned(),
            query: String::new(),
            headers: headers(&[
                ("host", "examplebucket.s3.amazonaws.com"),
                ("date", "Fri, 24 May 2013 00:00:00 GMT"),
                ("x-amz-date", "20130524T000000Z"),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                (
                    "x-amz-content-sha256",
                    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
                ),
                (
                    "authorization",
                    &authorization(
                        "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                        sig,
                    ),
                ),
            ]),
        };
        req.check().unwrap();
    }
}

#[test]
fn aws_examples_with_query_strings() {
    for (query, sig) in [
        (
            "lifecycle",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        ),
        (
            "max-keys=2&prefix=J",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        ),
    ] {
        let req = Req {
            method: "GET",
            path: "/".to_owned(),
            query: query.to_owned(),
            headers: headers(&[
                ("host", "examplebucket.s3.amazonaws.com"),
                ("x-amz-content-sha256", EMPTY_SHA256),
                ("x-amz-date", "20130524T000000Z"),
                (
                    "authorization",
                    &authorization("host;x-amz-content-sha256;x-amz-date", sig),
                ),
            ]),
        };
        req.check().unwrap();
    }
}

#[test]
fn aws_example_presigned_url() {
    let req = presigned_get();
    let verified = req.check().unwrap();
    assert!(verified.chunk_signer.is_none());
    let auth = parse_auth(&req.parts(&req.decoded_query()))
        .unwrap()
        .unwrap();
    assert!(auth.presigned);
    assert_eq!(auth.payload, PayloadMode::Unsigned);
    assert_eq!(auth.expires_at(), Some(NOW + Duration::days(1)));
    // Valid until the last second, then expired.
    req.check_at(NOW + Duration::days(1), None).unwrap();
    let err = req
        .check_at(NOW + Duration::days(1) + Duration::seconds(1), None)
        .unwrap_err();
    assert_eq!(err.code(), AuthErrorCode::AccessDenied);
    assert_eq!(err.message(), "Request has expired");
    // Issued more than 15 minutes in the future.
    let err = req.check_at(NOW - Duration::minutes(16), None).unwrap_err();
    assert_eq!(err.code(), AuthErrorCode::RequestTimeTooSkewed);
}

fn streaming_put(content_sha256: &str, extra: &[(&str, &str)], signed: &str, sig: &str) -> Req {
    let mut pairs = vec![
        ("host", "s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("x-amz-content-sha256", content_sha256),
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"),
    ];
    pairs.extend_from_slice(extra);
    let auth = authorization(signed, sig);
    pairs.push(("authorization", &auth));
    Req {
        method: "PUT",
        path: "/examplebucket/chunkObject.txt".to_owned(),
        query: String::new(),
        headers: headers(&pairs),
    }
}

#[test]
fn aws_example_streaming_seed_signature() {
    let seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
    let req = streaming_put(
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        &[("content-length", "66824")],
        "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
        seed,
    );
    let verified = req.check().unwrap();
    let signer = verified.chunk_signer.unwrap();
    assert_eq!(signer.seed_signature(), seed);
    assert_eq!(
        parse_auth(&req.parts(&req.decoded_query()))
            .unwrap()
            .unwrap()
            .payload,
        PayloadMode::StreamingSigned
    );
}

#[test]
fn anonymous_requests_have_no_auth() {
    let req = Req {
        method: "GET",
        path: "/bucket/key".to_owned(),
        query: "prefix=a&Signature=".to_owned(),
        headers: headers(&[("host", "example.com")]),
    };
    assert!(parse_auth(&req.parts(&req.decoded_query()))
        .unwrap()
        .is_none());
}

#[test]
fn wrong_signature_key_or_request_does_not_match() {
    let mut req = get_object();
    req.headers
        .insert("range", HeaderValue::from_static("bytes=0-10"));
    assert_eq!(req.code(), AuthErrorCode::SignatureDoesNotMatch);

    let mut req = get_object();
    req.path = "/test.txT".to_owned();
    assert_eq!(req.code(), AuthErrorCode::SignatureDoesNotMatch);

    let mut req = get_object();
    req.query = "x=1".to_owned();
    assert_eq!(req.code(), AuthErrorCode::SignatureDoesNotMatch);

    let req = get_object();
    let query = req.decoded_query();
    let parts = req.parts(&query);
    let auth = parse_auth(&parts).unwrap().unwrap();
    let mut other = credential();
    other.secret = SecretKey::new("another secret".to_owned());
    let err = verify(&parts, &auth, &other, NOW, None).unwrap_err();
    assert_eq!(err.code(), AuthErrorCode::SignatureDoesNotMatch);

    let mut req = presigned_get();
    req.query = req
        .query
        .replace("X-Amz-Expires=86400", "X-Amz-Expires=86401");
    assert_eq!(req.code(), AuthErrorCode::SignatureDoesNotMatch);
}

#[test]
fn header_auth_errors() {
    let mut req = get_object();
    req.headers.remove("x-amz-content-sha256");
    let err = req.check().unwrap_err();
    assert_eq!(err.code(), AuthErrorCode::InvalidRequest);
    assert_eq!(
        err.message(),
        "Missing required header for this request: x-amz-content-sha256"
    );

    let mut req = get_object();
    req.headers.insert(
        "x-amz-content-sha256",
        HeaderValue::from_static("STREAMING-FOO"),
    );
    assert_eq!(req.code(), AuthErrorCode::InvalidArgument);

    let req = get_object();
    let err = req.check_at(NOW, Some("eu-west-3")).unwrap_err();
    assert_eq!(err.code(), AuthErrorCode::AuthorizationHeaderMalformed);
    assert_eq!(
        err.message(),
        "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-3'"
    );

    for skew in [Duration::minutes(16), -Duration::minutes(16)] {
        let err = req.check_at(NOW + skew, None).unwrap_err();
        assert_eq!(err.code(), AuthErrorCode::RequestTimeTooSkewed);
    }
    req.check_at(NOW + Duration::minutes(14), None).unwrap();

    let mut req = get_object();
    req.headers
        .insert("x-amz-date", HeaderValue::from_static("20130525T000000Z"));
    assert_eq!(req.code(), AuthErrorCode::AuthorizationHeaderMalformed);

    let mut req = get_object();
    req.headers.remove("x-amz-date");
    assert_eq!(req.code(), AuthErrorCode::AccessDenied);

    let mut req = get_object();
    let auth = req.headers["authorization"]
        .to_str()
        .unwrap()
        .replace("SignedHeaders=host;", "SignedHeaders=");
    req.headers
        .insert("authorization", HeaderValue::from_str(&auth).unwrap());
    assert_eq!(req.code(), AuthErrorCode::AccessDenied);

    let mut req = get_object();
    req.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256".to_owned();
    let err = req.check().unwrap_err();
    assert_eq!(err.code(), AuthErrorCode::InvalidArgument);
    assert!(err.message().starts_with("Only one auth mechanism allowed"));

    let mut req = get_object();
    req.headers.append(
        "authorization",
        HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=x"),
    );
    assert_eq!(req.code(), AuthErrorCode::AuthorizationHeaderMalformed);

    let mut req = get_object();
    req.headers.remove("authorization");
    req.query = "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1&Signature=abc".to_owned();
    assert_eq!(req.code(), AuthErrorCode::InvalidRequest);
}

#[test]
fn presigned_errors() {
    let mut req = presigned_get();
    req.headers
        .insert("x-amz-copy-source", HeaderValue::from_static("/other/key"));
    assert_eq!(req.code(), AuthErrorCode::AccessDenied);

    let req = presigned_get();
    let err = req.check_at(NOW, Some("eu-west-3")).unwrap_err();
    assert_eq!(err.code(), AuthErrorCode::AuthorizationQueryParametersError);

    let mut req = presigned_get();
    req.query = req
        .query
        .replace("X-Amz-Expires=86400", "X-Amz-Expires=604801");
    assert_eq!(req.code(), AuthErrorCode::AuthorizationQueryParametersError);

    // A payload hash header on a presigned request becomes the payload line.
    let mut req = presigned_get();
    req.headers.insert(
        "x-amz-content-sha256",
        HeaderValue::from_static(EMPTY_SHA256),
    );
    assert_eq!(req.code(), AuthErrorCode::SignatureDoesNotMatch);
}

#[test]
fn wrong_access_key_is_refused() {
    let req = get_object();
    let query = req.decoded_query();
    let parts = req.parts(&query);
    let auth = parse_auth(&parts).unwrap().unwrap();
    let mut other = credential();
    other.access_key = AccessKeyId::parse("AKIAOTHERKEY00000000").unwrap();
    let err = verify(&parts, &auth, &other, NOW, None).unwrap_err();
    assert_eq!(err.code(), AuthErrorCode::InvalidAccessKeyId);
}

// ---- Round trips with the AWS SDK signer ----

mod sdk {
    use super::*;
    use aws_sigv4::http_request::{
        sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
        SignatureLocation, SigningSettings, UriPathNormalizationMode,
    };
    use aws_sigv4::sign::v4;

    /// How S3 clients configure the signer.
    fn settings(location: SignatureLocation) -> SigningSettings {
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.signature_location = location;
        if location == SignatureLocation::QueryParams {
            settings.expires_in = Some(StdDuration::from_secs(3600));
        } else {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        settings
    }

    /// Signs `method uri` with `extra` headers and returns the request as the server sees it.
    pub(super) fn signed(
        method: &'static str,
        uri: &str,
        extra: &[(&str, &str)],
        body: SignableBody<'_>,
        location: SignatureLocation,
        time: SystemTime,
    ) -> Req {
        let identity =
            aws_credential_types::Credentials::new(AKID, SECRET, None, None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("s3")
            .time(time)
            .settings(settings(location))
            .build()
            .unwrap()
            .into();
        let parsed: http::Uri = uri.parse().unwrap();
        let host = parsed.authority().unwrap().as_str().to_owned();
        let mut header_pairs: Vec<(&str, &str)> = vec![("host", &host)];
        header_pairs.extend_from_slice(extra);
        let signable =
            SignableRequest::new(method, uri, header_pairs.iter().copied(), body).unwrap();
        let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();
        let mut request = http::Request::builder().method(method).uri(uri);
        for (name, value) in &header_pairs {
            request = request.header(*name, *value);
        }
        let mut request = request.body(()).unwrap();
        instructions.apply_to_request_http1x(&mut request);
        Req {
            method,
            path: request.uri().path().to_owned(),
            query: request.uri().query().unwrap_or("").to_owned(),
            headers: request.headers().clone(),
        }
    }
}

/// S3's key encoding: everything but unreserved characters and `/`.
fn encode_key(key: &str) -> String {
    const KEY_ENCODE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'/');
    percent_encoding::utf8_percent_encode(key, KEY_ENCODE).to_string()
}

const KEYS: &[&str] = &[
    "plain.txt",
    "with space and  two",
    "unicode/été/日本語.bin",
    "plus+sign",
    "percent%25literal%",
    "tilde~and*star!",
    "dir/sub/",
    "semi;colon,comma=equals&amp",
    "a/../b/./c//d",
];

const QUERIES: &[&str] = &[
    "",
    "acl",
    "uploads=",
    "prefix=photos%2F2006%2F&delimiter=%2F&max-keys=100",
    "list-type=2&start-after=&continuation-token=abc%2Bdef%3D",
    "tagging&versionId=3%2Fxyz",
    "prefix=%E6%97%A5%20space",
];

fn sdk_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + StdDuration::from_secs(1_700_000_000)
}

fn sdk_now() -> OffsetDateTime {
    OffsetDateTime::from(sdk_time())
}

#[test]
fn round_trip_header_auth() {
    use aws_sigv4::http_request::{SignableBody, SignatureLocation};
    for key in KEYS {
        for query in QUERIES {
            let mut uri = format!("https://bucket.s3.example.com/{}", encode_key(key));
            if !query.is_empty() {
                uri = format!("{uri}?{query}");
            }
            for (body, expected) in [
                (SignableBody::Bytes(b"hello"), None),
                (SignableBody::UnsignedPayload, Some(PayloadMode::Unsigned)),
                (
                    SignableBody::StreamingUnsignedPayloadTrailer,
                    Some(PayloadMode::StreamingUnsignedTrailer),
                ),
            ] {
                let req = sdk::signed(
                    "PUT",
                    &uri,
                    &[
                        ("x-amz-meta-note", "  spaced   value "),
                        ("content-type", "text/plain"),
                    ],
                    body,
                    SignatureLocation::Headers,
                    sdk_time(),
                );
                let verified = req
                    .check_at(sdk_now(), Some("us-east-1"))
                    .unwrap_or_else(|e| panic!("{key:?} {query:?}: {e}"));
                assert!(verified.chunk_signer.is_none());
                if let Some(expected) = expected {
                    let auth = parse_auth(&req.parts(&req.decoded_query()))
                        .unwrap()
                        .unwrap();
                    assert_eq!(auth.payload, expected);
                }
            }
        }
    }
}

#[test]
fn round_trip_presigned() {
    use aws_sigv4::http_request::{SignableBody, SignatureLocation};
    for key in KEYS {
        for query in QUERIES {
            let mut uri = format!("https://bucket.s3.example.com/{}", encode_key(key));
            if !query.is_empty() {
                uri = format!("{uri}?{query}");
            }
            let req = sdk::signed(
                "GET",
                &uri,
                &[],
                SignableBody::UnsignedPayload,
                SignatureLocation::QueryParams,
                sdk_time(),
            );
            req.check_at(sdk_now() + Duration::minutes(59), None)
                .unwrap_or_else(|e| panic!("{key:?} {query:?}: {e}"));
            let err = req
                .check_at(sdk_now() + Duration::minutes(61), None)
                .unwrap_err();
            assert_eq!(err.message(), "Request has expired");
        }
    }
}

#[test]
fn round_trip_streaming_signed_yields_chunk_signer() {
    use aws_sigv4::http_request::{SignableBody, SignatureLocation};
    let req = sdk::signed(
        "PUT",
        "https://bucket.s3.example.com/key",
        &[
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "10"),
            ("x-amz-trailer", "x-amz-checksum-crc32"),
        ],
        SignableBody::StreamingSignedPayloadTrailer,
        SignatureLocation::Headers,
        sdk_time(),
    );
    let verified = req.check_at(sdk_now(), None).unwrap();
    assert!(verified.chunk_signer.is_some());
    let auth = parse_auth(&req.parts(&req.decoded_query()))
        .unwrap()
        .unwrap();
    assert_eq!(auth.payload, PayloadMode::StreamingSignedTrailer);
}

#[test]
fn path_signed_with_encoded_slash_is_accepted_either_way() {
    use aws_sigv4::http_request::{SignableBody, SignatureLocation};
    // The client signed the path exactly as sent, with %2F kept.
    let req = sdk::signed(
        "GET",
        "https://bucket.s3.example.com/a%2Fb",
        &[],
        SignableBody::UnsignedPayload,
        SignatureLocation::Headers,
        sdk_time(),
    );
    req.check_at(sdk_now(), None).unwrap();
    // Same key, signed by a client that canonicalised the decoded path.
    let mut decoded = sdk::signed(
        "GET",
        "https://bucket.s3.example.com/a/b",
        &[],
        SignableBody::UnsignedPayload,
        SignatureLocation::Headers,
        sdk_time(),
    );
    decoded.path = "/a%2Fb".to_owned();
    decoded.check_at(sdk_now(), None).unwrap();
}

#[test]
fn aws_example_streaming_trailer_seed_signature() {
    let seed = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";
    let req = streaming_put(
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        &[("x-amz-trailer", "x-amz-checksum-crc32c")],
        "content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer",
        seed,
    );
    let verified = req.check().unwrap();
    assert_eq!(verified.chunk_signer.unwrap().seed_signature(), seed);
}

#[test]
fn dates_at_the_end_of_time_do_not_overflow() {
    let mut req = presigned_get();
    req.query = req.query.replace("20130524", "99991231");
    let now = datetime!(9999-12-31 23:59:00 UTC);
    assert!(req.check_at(now, None).is_err());
    let mut req = get_object();
    req.headers
        .insert("x-amz-date", HeaderValue::from_static("99991231T235959Z"));
    assert_eq!(req.code(), AuthErrorCode::AuthorizationHeaderMalformed);
}

mod arbitrary_input {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsing_and_verifying_never_panic(
            auth in "(AWS4-HMAC-SHA256 )?[ -~]{0,200}",
            path in "[ -~]{0,40}",
            query in "[ -~]{0,120}",
            date in "[0-9TZ]{0,20}",
            sha in "[ -~]{0,70}",
        ) {
            let mut map = headers(&[("host", "example.com")]);
            for (name, value) in [("authorization", &auth), ("x-amz-date", &date), ("x-amz-content-sha256", &sha)] {
                if let Ok(value) = HeaderValue::from_str(value) {
                    map.insert(name, value);
                }
            }
            let req = Req { method: "GET", path, query, headers: map };
            let _ = req.check();
            let mut presigned = presigned_get();
            presigned.query = format!("{}&{}", presigned.query, req.query);
            let _ = presigned.check();
        }
    }
}

#[test]
fn presigned_urls_may_leave_the_customer_key_unsigned_but_not_its_algorithm() {
    let signed = ["host".to_owned()];
    let key_headers = headers(&[
        ("x-amz-server-side-encryption-customer-key", "a2V5"),
        ("x-amz-server-side-encryption-customer-key-md5", "bWQ1"),
        (
            "x-amz-copy-source-server-side-encryption-customer-key",
            "a2V5",
        ),
        (
            "x-amz-copy-source-server-side-encryption-customer-key-md5",
            "bWQ1",
        ),
    ]);
    assert!(check_signed_headers(&key_headers, &signed, true).is_ok());
    let algorithm = headers(&[("x-amz-server-side-encryption-customer-algorithm", "AES256")]);
    let err = check_signed_headers(&algorithm, &signed, true).unwrap_err();
    assert_eq!(err.code(), AuthErrorCode::AccessDenied);
    let with_algorithm = [
        "host".to_owned(),
        "x-amz-server-side-encryption-customer-algorithm".to_owned(),
    ];
    assert!(check_signed_headers(&algorithm, &with_algorithm, true).is_ok());
}

#[test]
fn r12_every_x_amz_header_must_be_signed() {
    let signed = ["host".to_owned(), "x-amz-date".to_owned()];
    let not_signed = |pairs: &[(&str, &str)], presigned: bool| {
        check_signed_headers(&headers(pairs), &signed, presigned)
            .err()
            .map(|e| {
                assert_eq!(e.code(), AuthErrorCode::AccessDenied);
                assert_eq!(
                    e.message(),
                    "There were headers present in the request which were not signed"
                );
                e.detail().map(|(element, text)| {
                    assert_eq!(element, "HeadersNotSigned");
                    text.to_owned()
                })
            })
    };
    for presigned in [false, true] {
        assert_eq!(
            not_signed(
                &[("x-amz-meta-a", "1"), ("x-amz-acl", "public-read")],
                presigned
            ),
            Some(Some("x-amz-meta-a, x-amz-acl".to_owned()))
        );
        assert_eq!(
            not_signed(&[("x-amz-checksum-sha256", "x")], presigned),
            Some(Some("x-amz-checksum-sha256".to_owned()))
        );
        // Other headers, `x-amzn-*` included, need no signature; the payload hash is bound
        // by the canonical request's last line.
        assert_eq!(
            not_signed(
                &[
                    ("x-amzn-trace-id", "Root=1"),
                    ("content-type", "text/plain"),
                    ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
                    ("x-amz-date", "20130524T000000Z"),
                ],
                presigned
            ),
            None
        );
    }
    // What SDK presigners leave unsigned is tolerated in presigned URLs only.
    for name in [
        "x-amz-user-agent",
        "x-amz-checksum-mode",
        "x-amz-server-side-encryption-customer-key",
    ] {
        assert_eq!(not_signed(&[(name, "v")], true), None, "{name}");
        assert_eq!(
            not_signed(&[(name, "v")], false),
            Some(Some(name.to_owned())),
            "{name}"
        );
    }
    let no_host = check_signed_headers(&HeaderMap::new(), &["x-amz-date".to_owned()], false);
    assert_eq!(
        no_host.unwrap_err().detail(),
        Some(("HeadersNotSigned", "host"))
    );
}

#[test]
fn r12_an_unsigned_header_added_to_a_signed_request_is_refused() {
    let mut req = get_object();
    req.check().unwrap();
    req.headers
        .insert("x-amz-meta-added", HeaderValue::from_static("later"));
    let err = req.check().unwrap_err();
    assert_eq!(err.code(), AuthErrorCode::AccessDenied);
    assert_eq!(err.detail(), Some(("HeadersNotSigned", "x-amz-meta-added")));

    let mut req = presigned_get();
    req.check_at(NOW, None).unwrap();
    req.headers
        .insert("x-amz-copy-source", HeaderValue::from_static("/b/k"));
    assert_eq!(
        req.check_at(NOW, None).unwrap_err().code(),
        AuthErrorCode::AccessDenied
    );
}

#[test]
fn r12_plus_percent_2b_and_percent_20_read_the_same_for_the_signature() {
    // A request signed with `prefix=a%20b` is the same request when sent with `a+b`, and
    // a different one with `a%2Bb` (a literal plus).
    use aws_sigv4::http_request::{SignableBody, SignatureLocation};
    let signed = || {
        sdk::signed(
            "GET",
            "https://bucket.s3.example.com/?prefix=a%20b",
            &[],
            SignableBody::Bytes(b""),
            SignatureLocation::Headers,
            sdk_time(),
        )
    };
    let with_query = |query: &str| {
        let mut req = signed();
        req.query = query.to_owned();
        req.check_at(sdk_now(), None)
    };
    with_query("prefix=a%20b").unwrap();
    with_query("prefix=a+b").unwrap();
    assert_eq!(
        with_query("prefix=a%2Bb").unwrap_err().code(),
        AuthErrorCode::SignatureDoesNotMatch
    );
    assert!(with_query("prefix=a%FFb").is_err());
}
