//! DeleteObjects (POST /bucket?delete): up to 1,000 keys, Quiet mode, keys that do not exist,
//! the 1,001-key limit, the required Content-MD5 / x-amz-checksum-*, malformed bodies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use coffre_conformance::{
    crc32_base64, list_keys, md5_base64, put_keys, s3_xml, sdk_error, TestServer,
};
use http::Method;

const BUCKET: &str = "bulk";

fn delete_of(keys: &[String], quiet: bool) -> Delete {
    Delete::builder()
        .set_objects(Some(
            keys.iter()
                .map(|k| ObjectIdentifier::builder().key(k).build().unwrap())
                .collect(),
        ))
        .quiet(quiet)
        .build()
        .unwrap()
}

fn delete_body(keys: &[String], quiet: bool) -> String {
    let mut body = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    body.push_str("<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    if quiet {
        body.push_str("<Quiet>true</Quiet>");
    }
    for key in keys {
        body.push_str(&format!(
            "<Object><Key>{}</Key></Object>",
            s3_xml::escape(key)
        ));
    }
    body.push_str("</Delete>");
    body
}

#[tokio::test]
async fn deletes_a_thousand_keys_existing_or_not() {
    let (_server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let existing: Vec<String> = (0..300).map(|i| format!("dir/{i:04}")).collect();
    put_keys(&s3, BUCKET, &existing).await;
    let survivor = "keep/me".to_string();
    put_keys(&s3, BUCKET, std::slice::from_ref(&survivor)).await;

    // 300 existing keys and 700 that never existed: 1,000 in all, the maximum.
    let mut keys = existing.clone();
    keys.extend((0..700).map(|i| format!("missing/{i:04}")));
    let out = s3
        .delete_objects()
        .bucket(BUCKET)
        .delete(delete_of(&keys, false))
        .send()
        .await
        .unwrap();
    assert!(out.errors().is_empty(), "errors: {:?}", out.errors());
    let mut deleted: Vec<String> = out
        .deleted()
        .iter()
        .filter_map(|d| d.key())
        .map(str::to_string)
        .collect();
    deleted.sort();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(
        deleted, expected,
        "every key is reported Deleted, including those that did not exist"
    );
    assert_eq!(
        list_keys(&s3, BUCKET).await,
        vec![survivor],
        "the objects are really gone"
    );
    let err = s3
        .get_object()
        .bucket(BUCKET)
        .key("dir/0000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchKey".to_string()));
}

#[tokio::test]
async fn quiet_mode_reports_no_deleted_entries() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let keys: Vec<String> = (0..20).map(|i| format!("q/{i}")).collect();
    put_keys(&s3, BUCKET, &keys).await;

    let out = s3
        .delete_objects()
        .bucket(BUCKET)
        .delete(delete_of(&keys[..10], true))
        .send()
        .await
        .unwrap();
    assert!(out.deleted().is_empty(), "Quiet: {:?}", out.deleted());
    assert!(out.errors().is_empty(), "{:?}", out.errors());

    // The raw body: a DeleteResult with neither Deleted nor Error elements.
    let body = delete_body(&keys[10..], true);
    let response = server
        .request(Method::POST, &format!("/{BUCKET}"))
        .query_flag("delete")
        .header("content-md5", &md5_base64(body.as_bytes()))
        .body(body)
        .send()
        .await;
    response.assert_status(200);
    let text = response.text();
    assert_eq!(s3_xml::sections(&text, "DeleteResult").len(), 1, "{text}");
    assert!(s3_xml::sections(&text, "Deleted").is_empty(), "{text}");
    assert!(s3_xml::sections(&text, "Error").is_empty(), "{text}");

    assert!(
        list_keys(&s3, BUCKET).await.is_empty(),
        "Quiet deletes all the same"
    );
}

#[tokio::test]
async fn verbose_raw_response_lists_each_key() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let keys: Vec<String> = ["a&b<c>", "with space", "unicode/é/日本", "plain"]
        .iter()
        .map(|k| k.to_string())
        .collect();
    put_keys(&s3, BUCKET, &keys).await;
    let body = delete_body(&keys, false);
    let response = server
        .request(Method::POST, &format!("/{BUCKET}"))
        .query_flag("delete")
        .header("content-md5", &md5_base64(body.as_bytes()))
        .body(body)
        .send()
        .await;
    response.assert_status(200);
    let text = response.text();
    let deleted = s3_xml::sections(&text, "Deleted");
    assert_eq!(deleted.len(), keys.len(), "{text}");
    let mut got: Vec<String> = deleted
        .iter()
        .filter_map(|d| s3_xml::first(d, "Key"))
        .collect();
    got.sort();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(
        got, expected,
        "keys come back XML-escaped and exact: {text}"
    );
    assert!(list_keys(&s3, BUCKET).await.is_empty());
}

#[tokio::test]
async fn more_than_a_thousand_keys_is_malformed_xml() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let keys: Vec<String> = (0..1001).map(|i| format!("k{i}")).collect();
    put_keys(&s3, BUCKET, &keys[..3]).await;
    let body = delete_body(&keys, false);
    let response = server
        .request(Method::POST, &format!("/{BUCKET}"))
        .query_flag("delete")
        .header("content-md5", &md5_base64(body.as_bytes()))
        .body(body)
        .send()
        .await;
    response.assert_error(400, "MalformedXML");
    assert_eq!(list_keys(&s3, BUCKET).await.len(), 3, "nothing was deleted");

    let err = s3
        .delete_objects()
        .bucket(BUCKET)
        .delete(delete_of(&keys, false))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (400, "MalformedXML".to_string()));
}

#[tokio::test]
async fn an_integrity_header_is_required() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let keys = vec!["x".to_string()];
    put_keys(&s3, BUCKET, &keys).await;
    let body = delete_body(&keys, false);
    let request = || {
        server
            .request(Method::POST, &format!("/{BUCKET}"))
            .query_flag("delete")
            .body(body.clone())
    };

    // Neither Content-MD5 nor x-amz-checksum-*: refused, even with a signed payload hash.
    let response = request().send().await;
    response.assert_error(400, "InvalidRequest");
    assert_eq!(list_keys(&s3, BUCKET).await, keys, "nothing was deleted");

    // A wrong Content-MD5.
    let response = request()
        .header("content-md5", &md5_base64(b"other bytes"))
        .send()
        .await;
    response.assert_error(400, "BadDigest");
    assert_eq!(list_keys(&s3, BUCKET).await, keys);

    // A flexible checksum instead of Content-MD5 is enough.
    let response = request()
        .header("x-amz-checksum-crc32", &crc32_base64(body.as_bytes()))
        .send()
        .await;
    response.assert_status(200);
    assert!(list_keys(&s3, BUCKET).await.is_empty());
}

#[tokio::test]
async fn malformed_bodies_are_malformed_xml() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    put_keys(&s3, BUCKET, &["x".to_string()]).await;
    for body in [
        "<Delete></Delete>",
        "<Delete><Object><Key>x</Key></Object>",
        "not xml at all",
    ] {
        let response = server
            .request(Method::POST, &format!("/{BUCKET}"))
            .query_flag("delete")
            .header("content-md5", &md5_base64(body.as_bytes()))
            .body(body)
            .send()
            .await;
        assert_eq!(
            (response.status.as_u16(), response.error_code().as_deref()),
            (400, Some("MalformedXML")),
            "body {body:?}: {}",
            response.text()
        );
    }
    assert_eq!(list_keys(&s3, BUCKET).await, ["x"]);
}

#[tokio::test]
async fn missing_bucket_is_no_such_bucket() {
    let server = TestServer::start();
    let s3 = server.s3_client();
    let err = s3
        .delete_objects()
        .bucket("nobucket")
        .delete(delete_of(&["k".to_string()], false))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchBucket".to_string()));
}
