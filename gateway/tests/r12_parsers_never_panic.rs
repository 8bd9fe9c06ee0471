//! Issue 12: fuzzing without a nightly toolchain. Every parser of client (or operator)
//! input in the gateway is fed arbitrary bytes and text, and strings built from the pieces of
//! its grammar, and must answer with a value or a clean client error (a 4xx S3 error, a
//! config error), never a panic or a server error. Case counts stay modest so that the suite
//! stays fast; a failure prints the shrunk input to replay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use coffre_gateway::config::{Config, Overrides, RawConfig};
use coffre_gateway::s3::object_headers::meta_from_request;
use coffre_gateway::s3::operation::{CopySource, Operation};
use coffre_gateway::s3::query::Query;
use coffre_gateway::s3::range::parse_range;
use coffre_gateway::s3::{cors, server_side_encryption, tagging, xml, S3Error};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use proptest::prelude::*;

/// A refusal must be the client's fault.
fn client_error<T>(result: Result<T, S3Error>) -> Result<(), TestCaseError> {
    if let Err(e) = result {
        prop_assert!(
            e.status().is_client_error(),
            "{} answered with {}",
            e.code().as_str(),
            e.status()
        );
    }
    Ok(())
}

/// Text made of `pieces` (elements, entities, numbers, markup) and arbitrary characters.
fn grammar(pieces: &'static [&'static str]) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => proptest::sample::select(pieces).prop_map(str::to_owned),
        1 => "[0-9]{0,22}",
        1 => "-?[0-9]{1,20}",
        1 => "\\PC{0,6}",
        1 => proptest::sample::select(&[
            "&amp;", "&lt;", "&#x0;", "&#1114112;", "&bogus;", "<![CDATA[", "]]>", "<!--", "-->",
            "<?xml version=\"1.0\"?>", "<!DOCTYPE a [<!ENTITY x \"y\">]>", "\"", "'", "/>", "<",
            ">", "=", " ", "\u{0}", "\u{feff}",
        ][..])
        .prop_map(str::to_owned),
    ];
    prop::collection::vec(piece, 0..32).prop_map(|pieces| pieces.concat())
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..512)
}

const CORS: &[&str] = &[
    "<CORSConfiguration>",
    "</CORSConfiguration>",
    "<CORSRule>",
    "</CORSRule>",
    "<AllowedOrigin>",
    "</AllowedOrigin>",
    "<AllowedMethod>GET</AllowedMethod>",
    "<AllowedMethod>",
    "</AllowedMethod>",
    "<AllowedHeader>",
    "</AllowedHeader>",
    "<ExposeHeader>",
    "</ExposeHeader>",
    "<MaxAgeSeconds>",
    "</MaxAgeSeconds>",
    "<ID>",
    "</ID>",
    "*",
    "https://*.example.com",
];

const TAGGING: &[&str] = &[
    "<Tagging>",
    "</Tagging>",
    "<TagSet>",
    "</TagSet>",
    "<Tag>",
    "</Tag>",
    "<Key>",
    "</Key>",
    "<Value>",
    "</Value>",
    "aws:",
    "k",
    "v",
];

const CONFIG: &[&str] = &[
    "\n",
    "data_dir = ",
    "s3_listen = ",
    "admin_listen = ",
    "region = ",
    "domain = ",
    "inline_max_bytes = ",
    "gc_interval_secs = ",
    "log_level = ",
    "log_format = ",
    "audit_on_failure = ",
    "[[arrays]]",
    "name = ",
    "path = ",
    "weight = ",
    "site = ",
    "[key_provider]",
    "kind = ",
    "[metrics]",
    "bucket_labels = ",
    "[limits]",
    "[key_rotation]",
    "\"127.0.0.1:0\"",
    "\"/tmp/x\"",
    "\"a\"",
    "\"\"",
    "[\"t/b\"]",
    "18446744073709551616",
    "-1",
    "0",
    "true",
    "1e400",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn xml_documents(body in bytes(), text in grammar(CORS)) {
        for body in [body.as_slice(), text.as_bytes()] {
            if let Ok(root) = xml::parse(body) {
                client_error(cors::parse_configuration(&root))?;
                client_error(tagging::parse_document(&root))?;
            } else {
                client_error(xml::parse(body))?;
            }
        }
    }

    #[test]
    fn cors_configurations(text in grammar(CORS)) {
        let document = format!("<CORSConfiguration><CORSRule>{text}</CORSRule></CORSConfiguration>");
        if let Ok(root) = xml::parse(document.as_bytes()) {
            if let Ok(rules) = cors::parse_configuration(&root) {
                // What was accepted is written back and read again the same.
                let again = xml::parse(cors::configuration_document(&rules).as_bytes()).unwrap();
                prop_assert_eq!(cors::parse_configuration(&again).ok(), Some(rules));
            }
        }
    }

    #[test]
    fn tag_sets(text in grammar(TAGGING), header in bytes()) {
        let document = format!("<Tagging><TagSet>{text}</TagSet></Tagging>");
        if let Ok(root) = xml::parse(document.as_bytes()) {
            client_error(tagging::parse_document(&root))?;
        }
        client_error(tagging::parse_header(&header))?;
        client_error(tagging::parse_header(text.as_bytes()))?;
    }

    #[test]
    fn range_headers(spec in "([0-9 ,=-]|bytes){0,12}", text in "\\PC{0,40}", size in any::<u64>()) {
        for header in [spec.as_str(), text.as_str()] {
            match parse_range(Some(header), size) {
                Ok(Some(range)) => {
                    prop_assert!(range.start < range.end && range.end <= size);
                    let _ = range.content_range(size);
                }
                other => client_error(other)?,
            }
        }
    }

    #[test]
    fn query_strings_and_routing(
        query in "([a-zA-Z0-9=&%+-]|%[0-9a-fA-F]{2}|uploads|uploadId|partNumber|versionId|list-type|tagging|cors|acl|delete){0,16}",
        path in "(/|[a-zA-Z0-9._~-]|%[0-9a-fA-F]{2}|%|\\.\\.){0,24}",
        host in proptest::option::of("[a-zA-Z0-9.:-]{0,30}"),
        copy_source in proptest::option::of("\\PC{0,40}"),
        method in proptest::sample::select(&["GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS", "PATCH"][..]),
    ) {
        let parsed = Query::parse(&query);
        let Ok(parsed) = parsed else {
            return client_error(parsed);
        };
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let routed = Operation::parse(&method, host.as_deref(), Some("s3.test"), &path, &parsed, copy_source.as_deref());
        if let Ok(operation) = &routed {
            // Everything routed names a valid bucket, and a part number S3 allows.
            if let Some(bucket) = operation.bucket() {
                prop_assert!(coffre_gateway::s3::operation::validate_bucket_name(bucket).is_ok());
            }
            if let Operation::UploadPart { part_number, .. } = operation {
                prop_assert!((1..=10_000).contains(part_number));
            }
        }
        client_error(routed)?;
        client_error(server_side_encryption::customer_key(&HeaderMap::new(), &parsed))?;
    }

    #[test]
    fn copy_sources(text in "(/|%[0-9a-fA-F]{2}|\\?versionId=|null|[a-z]|\\PC){0,30}") {
        client_error(CopySource::parse(&text))?;
    }

    #[test]
    fn object_headers(
        headers in prop::collection::vec(
            (
                prop_oneof![
                    proptest::sample::select(&[
                        "content-type", "content-encoding", "content-disposition",
                        "content-language", "cache-control", "expires", "x-amz-tagging",
                        "x-amz-server-side-encryption",
                        "x-amz-server-side-encryption-customer-algorithm",
                        "x-amz-server-side-encryption-customer-key",
                        "x-amz-server-side-encryption-customer-key-md5",
                        "x-amz-copy-source-server-side-encryption-customer-key",
                    ][..]).prop_map(str::to_owned),
                    "x-amz-meta-[a-z0-9-]{0,20}",
                ],
                prop::collection::vec(any::<u8>(), 0..300),
            ),
            0..24,
        ),
    ) {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(&value)) {
                map.append(name, value);
            }
        }
        client_error(meta_from_request(&map))?;
        let query = Query::default();
        client_error(server_side_encryption::customer_key(&map, &query))?;
        client_error(server_side_encryption::copy_source_customer_key(&map, &query))?;
        client_error(server_side_encryption::check_requested(&map))?;
        client_error(server_side_encryption::check_transport(&map, &query, false))?;
    }

    #[test]
    fn config_files(text in grammar(CONFIG), noise in "\\PC{0,64}") {
        for text in [text.as_str(), noise.as_str()] {
            if let Ok(raw) = toml::from_str::<RawConfig>(text) {
                let _ = Config::resolve(raw, Overrides::default());
            }
        }
    }
}
