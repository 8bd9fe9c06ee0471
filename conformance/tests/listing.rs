//! ListObjects (v1) and ListObjectsV2 compared with a model of the bucket: prefixes,
//! delimiters, pagination, start-after, fetch-owner, KeyCount, encoding-type=url.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_s3::types::EncodingType;
use aws_sdk_s3::Client;
use coffre_conformance::{put_bytes, put_keys, s3_xml, sdk_error, TestServer};
use http::Method;

const BUCKET: &str = "listing";

/// Keys spread over nested "directories", with characters that sort around '/'.
fn model_keys() -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for i in 0..120 {
        keys.insert(format!("flat-{i:04}"));
    }
    for dir in ["a", "b", "b-c", "b.c", "b0"] {
        for j in 0..15 {
            keys.insert(format!("{dir}/{j:02}"));
            if j % 5 == 0 {
                keys.insert(format!("{dir}/sub{j}/leaf"));
                keys.insert(format!("{dir}/sub{j}/deeper/leaf"));
            }
        }
    }
    for key in ["b", "b/", "é/x", "z", "zz/", "日本/1", "日本/2", "~tilde"] {
        keys.insert(key.to_string());
    }
    keys
}

async fn server_with_keys(keys: &BTreeSet<String>) -> (TestServer, Client) {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let keys: Vec<String> = keys.iter().cloned().collect();
    put_keys(&s3, BUCKET, &keys).await;
    (server, s3)
}

/// What S3 lists for (prefix, delimiter, start-after): keys and common prefixes, merged in
/// order, as (is_prefix, value).
fn model_list(
    keys: &BTreeSet<String>,
    prefix: &str,
    delimiter: Option<&str>,
    start_after: &str,
) -> Vec<(bool, String)> {
    let mut out = BTreeMap::new();
    for key in keys
        .iter()
        .filter(|k| k.starts_with(prefix) && k.as_str() > start_after)
    {
        let rest = &key[prefix.len()..];
        match delimiter.and_then(|d| rest.find(d).map(|i| i + d.len())) {
            Some(end) => {
                let common = format!("{prefix}{}", &rest[..end]);
                // A common prefix at or before start-after was already listed.
                if common.as_str() > start_after || !start_after.starts_with(&common) {
                    out.insert(common, true);
                }
            }
            None => {
                out.insert(key.clone(), false);
            }
        }
    }
    out.into_iter().map(|(v, p)| (p, v)).collect()
}

async fn list_v2_all(
    s3: &Client,
    prefix: &str,
    delimiter: Option<&str>,
    start_after: Option<&str>,
    max_keys: i32,
) -> (Vec<(bool, String)>, usize) {
    let mut token: Option<String> = None;
    let mut out = Vec::new();
    let mut pages = 0;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix(prefix)
            .set_delimiter(delimiter.map(str::to_string))
            .set_start_after(start_after.map(str::to_string))
            .set_continuation_token(token.clone())
            .max_keys(max_keys)
            .send()
            .await
            .unwrap();
        pages += 1;
        assert!(pages < 1000, "listing does not terminate");
        let keys: Vec<_> = page
            .contents()
            .iter()
            .map(|o| o.key().unwrap().to_string())
            .collect();
        let prefixes: Vec<_> = page
            .common_prefixes()
            .iter()
            .map(|p| p.prefix().unwrap().to_string())
            .collect();
        let count = keys.len() + prefixes.len();
        assert_eq!(
            page.key_count(),
            Some(count as i32),
            "KeyCount counts keys and prefixes"
        );
        assert!(
            count <= max_keys as usize,
            "a page holds at most max-keys entries"
        );
        assert_eq!(page.max_keys(), Some(max_keys));
        assert_eq!(page.continuation_token(), token.as_deref());
        let mut merged: Vec<_> = keys
            .into_iter()
            .map(|k| (false, k))
            .chain(prefixes.into_iter().map(|p| (true, p)))
            .collect();
        merged.sort_by(|a, b| a.1.cmp(&b.1));
        out.extend(merged);
        if page.is_truncated() == Some(true) {
            assert_eq!(count, max_keys as usize, "a truncated page is full");
            token = Some(
                page.next_continuation_token()
                    .expect("a truncated page has a NextContinuationToken")
                    .to_string(),
            );
        } else {
            assert!(page.next_continuation_token().is_none());
            break;
        }
    }
    (out, pages)
}

#[tokio::test]
async fn list_v2_matches_the_model() {
    let keys = model_keys();
    let (_server, s3) = server_with_keys(&keys).await;

    let cases: [(&str, Option<&str>, Option<&str>, i32); 12] = [
        ("", None, None, 1000),
        ("", None, None, 7),
        ("", Some("/"), None, 1000),
        ("", Some("/"), None, 3),
        ("b", Some("/"), None, 4),
        ("b/", Some("/"), None, 5),
        ("b/", None, None, 11),
        ("a/sub", Some("/"), None, 1),
        ("", Some("-"), None, 50),
        ("", Some("/"), Some("b-d"), 6),
        ("", None, Some("flat-0100"), 9),
        ("nothing-here", Some("/"), None, 10),
    ];
    for (prefix, delimiter, start_after, max_keys) in cases {
        let expected = model_list(&keys, prefix, delimiter, start_after.unwrap_or(""));
        let (got, pages) = list_v2_all(&s3, prefix, delimiter, start_after, max_keys).await;
        assert_eq!(
            got, expected,
            "prefix={prefix:?} delimiter={delimiter:?} start-after={start_after:?} max-keys={max_keys}"
        );
        let expected_pages = expected.len().div_ceil(max_keys as usize).max(1);
        assert_eq!(
            pages, expected_pages,
            "number of pages for max-keys={max_keys}"
        );
    }
}

#[tokio::test]
async fn list_v2_page_fields() {
    let keys = model_keys();
    let (server, s3) = server_with_keys(&keys).await;

    let page = s3
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("a/")
        .delimiter("/")
        .max_keys(1000)
        .send()
        .await
        .unwrap();
    assert_eq!(page.name(), Some(BUCKET));
    assert_eq!(page.prefix(), Some("a/"));
    assert_eq!(page.delimiter(), Some("/"));
    assert_eq!(page.is_truncated(), Some(false));
    let object = &page.contents()[0];
    assert_eq!(object.key(), Some("a/00"));
    assert_eq!(object.size(), Some(4));
    assert_eq!(
        object.e_tag(),
        Some(coffre_conformance::simple_etag(b"a/00").as_str())
    );
    assert!(object.last_modified().is_some());
    assert_eq!(object.storage_class().map(|c| c.as_str()), Some("STANDARD"));
    assert!(object.owner().is_none(), "no Owner without fetch-owner");

    let owned = s3
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("a/0")
        .fetch_owner(true)
        .send()
        .await
        .unwrap();
    for object in owned.contents() {
        let id = object.owner().and_then(|o| o.id());
        assert!(
            id.is_some_and(|id| !id.is_empty()),
            "fetch-owner gives Owner/ID: {object:?}"
        );
    }

    // Raw XML: the element names of the S3 schema.
    let raw = server
        .request(Method::GET, &format!("/{BUCKET}"))
        .query("list-type", "2")
        .query("prefix", "b/sub")
        .query("delimiter", "/")
        .send()
        .await;
    raw.assert_status(200);
    let text = raw.text();
    assert!(text.contains("<ListBucketResult"), "{text}");
    assert_eq!(s3_xml::first(&text, "KeyCount").as_deref(), Some("3"));
    assert_eq!(
        s3_xml::first(&text, "IsTruncated").as_deref(),
        Some("false")
    );
    let common: Vec<String> = s3_xml::sections(&text, "CommonPrefixes")
        .iter()
        .flat_map(|s| s3_xml::values(s, "Prefix"))
        .collect();
    assert_eq!(common, ["b/sub0/", "b/sub10/", "b/sub5/"]);
}

#[tokio::test]
async fn list_v2_rejects_bad_arguments() {
    let server = TestServer::start();
    server
        .request(Method::PUT, "/args")
        .send()
        .await
        .assert_status(200);
    let response = server
        .request(Method::GET, "/args")
        .query("list-type", "2")
        .query("max-keys", "-1")
        .send()
        .await;
    response.assert_error(400, "InvalidArgument");
    let response = server
        .request(Method::GET, "/args")
        .query("list-type", "2")
        .query("continuation-token", "this is not a token")
        .send()
        .await;
    response.assert_error(400, "InvalidArgument");
}

#[tokio::test]
async fn list_v1_marker_and_next_marker() {
    let keys = model_keys();
    let (server, s3) = server_with_keys(&keys).await;

    // Without a delimiter, clients continue from the last key.
    let mut marker: Option<String> = None;
    let mut listed = Vec::new();
    loop {
        let page = s3
            .list_objects()
            .bucket(BUCKET)
            .set_marker(marker.clone())
            .max_keys(13)
            .send()
            .await
            .unwrap();
        assert_eq!(
            page.marker().unwrap_or_default(),
            marker.clone().unwrap_or_default()
        );
        let keys: Vec<_> = page
            .contents()
            .iter()
            .map(|o| o.key().unwrap().to_string())
            .collect();
        assert!(keys.len() <= 13);
        listed.extend(keys.iter().cloned());
        if page.is_truncated() != Some(true) {
            break;
        }
        assert_eq!(keys.len(), 13);
        marker = Some(keys.last().unwrap().clone());
    }
    assert_eq!(listed, keys.iter().cloned().collect::<Vec<_>>());

    // With a delimiter, a truncated page has a NextMarker.
    let expected = model_list(&keys, "", Some("/"), "");
    let mut marker: Option<String> = None;
    let mut got = Vec::new();
    loop {
        let page = s3
            .list_objects()
            .bucket(BUCKET)
            .delimiter("/")
            .set_marker(marker.clone())
            .max_keys(4)
            .send()
            .await
            .unwrap();
        let mut merged: Vec<(bool, String)> = page
            .contents()
            .iter()
            .map(|o| (false, o.key().unwrap().to_string()))
            .chain(
                page.common_prefixes()
                    .iter()
                    .map(|p| (true, p.prefix().unwrap().to_string())),
            )
            .collect();
        merged.sort_by(|a, b| a.1.cmp(&b.1));
        let last = merged.last().map(|e| e.1.clone());
        got.extend(merged);
        if page.is_truncated() != Some(true) {
            break;
        }
        let next = page
            .next_marker()
            .expect("a truncated v1 page with a delimiter has NextMarker");
        assert_eq!(
            Some(next.to_string()),
            last,
            "NextMarker is the last key or prefix returned"
        );
        marker = Some(next.to_string());
    }
    assert_eq!(got, expected);

    // Raw v1 XML.
    let raw = server
        .request(Method::GET, &format!("/{BUCKET}"))
        .query("prefix", "a/")
        .query("max-keys", "2")
        .query("delimiter", "/")
        .send()
        .await;
    raw.assert_status(200);
    let text = raw.text();
    assert_eq!(s3_xml::first(&text, "IsTruncated").as_deref(), Some("true"));
    assert_eq!(s3_xml::first(&text, "NextMarker").as_deref(), Some("a/01"));
    assert_eq!(s3_xml::values(&text, "Key"), ["a/00", "a/01"]);
}

/// `encoding-type=url` must encode every key-bearing field; S3 encodes spaces as `+`
/// (clients decode with unquote-plus).
fn url_decode_plus(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(
                    u8::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("bad escape in {value}")),
                );
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn encoding_type_url_applies_to_every_key_field() {
    let (server, s3) = TestServer::start_with_buckets(&["enc"]).await;
    let keys = [
        "dir one/a+b c.txt",
        "dir one/é&<>\"'.txt",
        "dir one/sub dir/x",
        "dir one/sub dir/y",
        "dir one/z%41",
        "ctrl\u{1}char",
        "zebra key",
    ];
    for key in keys {
        put_bytes(&s3, "enc", key, b"x").await;
    }

    let raw = server
        .request(Method::GET, "/enc")
        .query("list-type", "2")
        .query("encoding-type", "url")
        .query("prefix", "dir one/")
        .query("delimiter", " ")
        .query("start-after", "dir one/a")
        .send()
        .await;
    raw.assert_status(200);
    let text = raw.text();
    assert_eq!(s3_xml::first(&text, "EncodingType").as_deref(), Some("url"));
    let fields = ["Key", "Prefix", "Delimiter", "StartAfter"];
    for field in fields {
        for value in s3_xml::values(&text, field) {
            assert!(
                !value.contains(' ') && value.is_ascii() && !value.contains('&'),
                "{field} {value:?} is not URL-encoded in {text}"
            );
        }
    }
    let decoded_keys: Vec<String> = s3_xml::values(&text, "Key")
        .iter()
        .map(|k| url_decode_plus(k))
        .collect();
    assert_eq!(decoded_keys, ["dir one/z%41", "dir one/é&<>\"'.txt"]);
    let common: Vec<String> = s3_xml::sections(&text, "CommonPrefixes")
        .iter()
        .flat_map(|s| s3_xml::values(s, "Prefix"))
        .map(|p| url_decode_plus(&p))
        .collect();
    assert_eq!(common, ["dir one/a+b ", "dir one/sub "]);
    assert_eq!(
        url_decode_plus(&s3_xml::first(&text, "Delimiter").unwrap()),
        " "
    );
    assert_eq!(
        url_decode_plus(&s3_xml::first(&text, "StartAfter").unwrap()),
        "dir one/a"
    );

    // A control character cannot appear in XML 1.0: with encoding-type=url it lists fine.
    let raw = server
        .request(Method::GET, "/enc")
        .query("list-type", "2")
        .query("encoding-type", "url")
        .query("prefix", "ctrl")
        .send()
        .await;
    raw.assert_status(200);
    let keys: Vec<String> = raw
        .xml_values("Key")
        .iter()
        .map(|k| url_decode_plus(k))
        .collect();
    assert_eq!(keys, ["ctrl\u{1}char"]);

    // v1: Marker and NextMarker are encoded too.
    let raw = server
        .request(Method::GET, "/enc")
        .query("encoding-type", "url")
        .query("marker", "ctrl z")
        .query("delimiter", "/")
        .query("max-keys", "1")
        .send()
        .await;
    raw.assert_status(200);
    let text = raw.text();
    let marker = s3_xml::first(&text, "Marker").unwrap();
    assert!(!marker.contains(' '), "Marker {marker:?} is encoded");
    assert_eq!(url_decode_plus(&marker), "ctrl z");
    let prefixes: Vec<String> = s3_xml::sections(&text, "CommonPrefixes")
        .iter()
        .flat_map(|s| s3_xml::values(s, "Prefix"))
        .collect();
    assert_eq!(prefixes.len(), 1, "{text}");
    assert_eq!(url_decode_plus(&prefixes[0]), "dir one/");
    let next = s3_xml::first(&text, "NextMarker").unwrap();
    assert!(!next.contains(' '), "NextMarker {next:?} is encoded");

    // The SDK asks for url encoding the same way.
    let page = s3
        .list_objects_v2()
        .bucket("enc")
        .prefix("dir one/")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    let keys: Vec<String> = page
        .contents()
        .iter()
        .map(|o| url_decode_plus(o.key().unwrap()))
        .collect();
    assert_eq!(keys.len(), 5);
}

#[tokio::test]
async fn listing_a_missing_bucket_and_an_empty_bucket() {
    let server = TestServer::start();
    let s3 = server.s3_client();
    let err = s3.list_objects().bucket("absent").send().await.unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchBucket".to_string()));
    s3.create_bucket().bucket("empty").send().await.unwrap();
    let page = s3.list_objects_v2().bucket("empty").send().await.unwrap();
    assert_eq!(page.key_count(), Some(0));
    assert_eq!(page.is_truncated(), Some(false));
    assert!(page.contents().is_empty() && page.common_prefixes().is_empty());
}
