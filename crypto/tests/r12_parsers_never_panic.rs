//! Issue 12: fuzzing without a nightly toolchain. The parsers of what a client sends to the
//! authentication layer (the `Authorization` header, presigned query parameters, the query
//! string, aws-chunked framing and trailers, POST form fields and policies) are fed
//! arbitrary input, and input built from the pieces of their grammar, and must answer with a
//! value or a clean error, never a panic. Case counts stay modest so that the suite stays fast.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::BytesMut;
use coffre_crypto::sigv4::post_policy::{parse_post_auth, FormFields, PostPolicy};
use coffre_crypto::sigv4::{QueryString, RequestParts};
use coffre_crypto::{
    parse_auth, verify, AccessKeyId, ChunkErrorCode, ChunkedDecoder, Credential, Role, SecretKey,
    TenantId,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use time::macros::datetime;

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";

fn credential() -> Credential {
    Credential {
        access_key: AccessKeyId::parse(AKID).unwrap(),
        secret: SecretKey::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned()),
        tenant: TenantId::random(),
        role: Role::ReadWrite,
        buckets: None,
    }
}

/// Text made of `pieces` and arbitrary visible characters.
fn grammar(pieces: &'static [&'static str]) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => proptest::sample::select(pieces).prop_map(str::to_owned),
        1 => "[0-9a-f]{0,64}",
        1 => "[ -~]{0,8}",
        1 => "\\PC{0,4}",
    ];
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

const AUTHORIZATION: &[&str] = &[
    "AWS4-HMAC-SHA256 ",
    "AWS4-HMAC-SHA256",
    "AWS ",
    "Credential=",
    "SignedHeaders=",
    "Signature=",
    "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request",
    "/20130524",
    "/us-east-1",
    "/s3",
    "/aws4_request",
    "host;x-amz-date;x-amz-content-sha256",
    "host",
    ";",
    ",",
    ", ",
    "=",
    "/",
];

const QUERY: &[&str] = &[
    "X-Amz-Algorithm=AWS4-HMAC-SHA256",
    "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request",
    "X-Amz-Credential=",
    "X-Amz-Date=20130524T000000Z",
    "X-Amz-Date=",
    "X-Amz-Expires=86400",
    "X-Amz-Expires=",
    "X-Amz-SignedHeaders=host",
    "X-Amz-SignedHeaders=",
    "X-Amz-Signature=",
    "AWSAccessKeyId=a",
    "Signature=b",
    "&",
    "=",
    "+",
    "%",
    "%2B",
    "%20",
    "%FF",
    "%C3%A9",
    "99999999999999999999",
    "-1",
];

const CHUNKS: &[&str] = &[
    "0\r\n",
    "1\r\n",
    "a\r\n",
    "10\r\n",
    "ffffffffffffffff\r\n",
    "10000000000000000\r\n",
    ";chunk-signature=",
    "\r\n",
    "\r",
    "\n",
    "x-amz-checksum-crc32:AAAAAA==\r\n",
    "x-amz-checksum-sha256:",
    "x-amz-trailer-signature:",
    ":",
    "abcdefghij",
];

const POLICY: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"expiration\"",
    "\"2030-01-01T00:00:00.000Z\"",
    "\"conditions\"",
    "\"eq\"",
    "\"starts-with\"",
    "\"content-length-range\"",
    "\"$key\"",
    "\"$Content-Type\"",
    "{\"bucket\":\"b\"}",
    "18446744073709551616",
    "-1",
    "0",
    "1e308",
    "null",
    "true",
    "\"\\u0000\"",
    "\"",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    /// The `Authorization` header, with the other headers it depends on.
    #[test]
    fn authorization_headers(
        authorization in grammar(AUTHORIZATION),
        date in prop_oneof!["20130524T000000Z", "[0-9TZ]{0,20}", "\\PC{0,20}"],
        content_sha256 in prop_oneof![
            "UNSIGNED-PAYLOAD",
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            "[0-9a-f]{64}",
            "[ -~]{0,70}",
        ],
        extra in prop::collection::vec(("x-amz-[a-z-]{1,12}", "[ -~]{0,20}"), 0..4),
    ) {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("bucket.s3.test"));
        for (name, value) in [
            ("authorization", authorization.as_str()),
            ("x-amz-date", date.as_str()),
            ("x-amz-content-sha256", content_sha256.as_str()),
        ] {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name, value);
            }
        }
        for (name, value) in &extra {
            if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
                headers.append(name, value);
            }
        }
        check(&headers, "")?;
    }

    /// Presigned URLs' query parameters.
    #[test]
    fn presigned_queries(query in grammar(QUERY), separator in proptest::sample::select(&["&", ""][..])) {
        let query = query.replace("X-Amz", &format!("{separator}X-Amz"));
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("bucket.s3.test"));
        check(&headers, &query)?;
    }

    /// The query string decoder: whatever it accepts re-encodes to a canonical form that
    /// decodes to the same pairs.
    #[test]
    fn query_strings(raw in "([ -~]|%[0-9a-fA-F]{2}|%[C-F][0-9A-F]%[89AB][0-9A-F]){0,40}") {
        if let Ok(query) = QueryString::parse(&raw) {
            let canonical = QueryString::parse(&canonical_of(&query)).unwrap();
            let mut a: Vec<_> = query.pairs().collect();
            let mut b: Vec<_> = canonical.pairs().collect();
            a.sort();
            b.sort();
            prop_assert_eq!(a, b);
        }
    }

    /// aws-chunked framing and trailers, unsigned and signed, fed in arbitrary pieces.
    #[test]
    fn aws_chunked_bodies(
        text in grammar(CHUNKS),
        noise in prop::collection::vec(any::<u8>(), 0..64),
        cuts in prop::collection::vec(0usize..600, 0..6),
        expect_trailer in any::<bool>(),
    ) {
        let mut body = text.into_bytes();
        body.extend_from_slice(&noise);
        for signed in [false, true] {
            let signer = if signed { Some(signer()) } else { None };
            let mut decoder = ChunkedDecoder::new(signer, expect_trailer);
            let mut cuts = cuts.clone();
            cuts.sort_unstable();
            let mut start = 0;
            let mut failed = false;
            let mut released = 0u64;
            for end in cuts.into_iter().chain([body.len()]) {
                let end = end.min(body.len()).max(start);
                let mut input = BytesMut::from(&body[start..end]);
                start = end;
                loop {
                    match decoder.decode(&mut input) {
                        Ok(Some(data)) => released += data.len() as u64,
                        Ok(None) => break,
                        Err(e) => {
                            prop_assert!(matches!(
                                e.code(),
                                ChunkErrorCode::InvalidRequest
                                    | ChunkErrorCode::SignatureDoesNotMatch
                                    | ChunkErrorCode::IncompleteBody
                            ));
                            failed = true;
                            break;
                        }
                    }
                }
                if failed {
                    break;
                }
            }
            prop_assert_eq!(released, decoder.decoded_len());
            if failed {
                prop_assert!(decoder.finish().is_err());
            }
            // Nothing that a signature did not cover is released in signed mode.
            if signed {
                prop_assert_eq!(released, 0);
            }
        }
    }

    /// POST forms: the authentication fields and the policy document.
    #[test]
    fn post_forms(
        fields in prop::collection::vec(
            (
                prop_oneof![
                    proptest::sample::select(&[
                        "x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature",
                        "policy", "key", "AWSAccessKeyId", "signature", "Content-Type",
                    ][..]).prop_map(str::to_owned),
                    "[ -~]{0,12}",
                ],
                grammar(AUTHORIZATION),
            ),
            0..8,
        ),
        policy in grammar(POLICY),
        raw in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut form = FormFields::new();
        for (name, value) in &fields {
            form.push(name, value);
        }
        let _ = parse_post_auth(&form);
        for document in [policy.as_bytes(), raw.as_slice()] {
            if let Ok(policy) = PostPolicy::parse(document) {
                let _ = policy.evaluate(datetime!(2020-01-01 00:00:00 UTC), "b", &form);
                let _ = policy.content_length_range();
                let _ = policy.check_length(u64::MAX);
                let _ = policy.check_length(0);
            }
        }
    }
}

/// Parses and verifies; any outcome but a panic is fine.
fn check(headers: &HeaderMap, raw_query: &str) -> Result<(), TestCaseError> {
    let Ok(query) = QueryString::parse(raw_query) else {
        return Ok(());
    };
    let parts = RequestParts {
        method: "GET",
        raw_path: "/bucket/key",
        query: &query,
        headers,
    };
    if let Ok(Some(auth)) = parse_auth(&parts) {
        let _ = auth.expires_at();
        let outcome = verify(
            &parts,
            &auth,
            &credential(),
            datetime!(2013-05-24 00:00:00 UTC),
            None,
        );
        prop_assert!(outcome.is_err(), "a random request verified");
    }
    Ok(())
}

fn canonical_of(query: &QueryString) -> String {
    let encode = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    query
        .pairs()
        .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The chunk signer of the AWS streaming example (a correctly signed request).
fn signer() -> coffre_crypto::ChunkSigner {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("host", "s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"),
        ("content-length", "66824"),
        ("authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    let query = QueryString::default();
    let parts = RequestParts {
        method: "PUT",
        raw_path: "/examplebucket/chunkObject.txt",
        query: &query,
        headers: &headers,
    };
    let auth = parse_auth(&parts).unwrap().unwrap();
    verify(
        &parts,
        &auth,
        &credential(),
        datetime!(2013-05-24 00:00:00 UTC),
        None,
    )
    .unwrap()
    .chunk_signer
    .unwrap()
}
