//! Bucket operations: CreateBucket (naming rules, re-creation), ListBuckets, HeadBucket,
//! DeleteBucket (BucketNotEmpty), GetBucketLocation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_s3::primitives::ByteStream;
use coffre_conformance::{get_bytes, put_bytes, s3_xml, sdk_error, TestServer};
use http::Method;

#[tokio::test]
async fn create_list_head_delete() {
    let server = TestServer::start();
    let s3 = server.s3_client();

    let listed = s3.list_buckets().send().await.unwrap();
    assert!(listed.buckets().is_empty(), "a fresh server has no bucket");

    for name in ["zeta", "alpha", "mid.dle-1"] {
        s3.create_bucket().bucket(name).send().await.unwrap();
    }
    let listed = s3.list_buckets().send().await.unwrap();
    let names: Vec<_> = listed.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(
        names,
        ["alpha", "mid.dle-1", "zeta"],
        "ListBuckets is sorted by name"
    );
    for bucket in listed.buckets() {
        assert!(
            bucket.creation_date().is_some(),
            "{bucket:?} has a CreationDate"
        );
    }
    assert!(
        listed
            .owner()
            .and_then(|o| o.id())
            .is_some_and(|id| !id.is_empty()),
        "ListBuckets names the owner: {:?}",
        listed.owner()
    );

    s3.head_bucket().bucket("alpha").send().await.unwrap();
    s3.delete_bucket().bucket("alpha").send().await.unwrap();

    let err = s3.head_bucket().bucket("alpha").send().await.unwrap_err();
    assert_eq!(sdk_error(&err).0, 404);
    let listed = s3.list_buckets().send().await.unwrap();
    let names: Vec<_> = listed.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["mid.dle-1", "zeta"]);
}

#[tokio::test]
async fn list_buckets_raw_xml_shape() {
    let server = TestServer::start();
    server
        .request(Method::PUT, "/shape")
        .send()
        .await
        .assert_status(200);
    let response = server.request(Method::GET, "/").send().await;
    response.assert_status(200);
    let text = response.text();
    assert!(text.contains("<ListAllMyBucketsResult"), "{text}");
    assert_eq!(response.xml_values("Name"), ["shape"]);
    let date = response.xml_values("CreationDate");
    assert_eq!(date.len(), 1);
    assert!(
        time::OffsetDateTime::parse(&date[0], &time::format_description::well_known::Rfc3339)
            .is_ok(),
        "CreationDate is ISO 8601: {}",
        date[0]
    );
}

#[tokio::test]
async fn invalid_bucket_names_are_rejected() {
    let server = TestServer::start();
    let too_long = "a".repeat(64);
    let invalid = [
        "ab",
        too_long.as_str(),
        "UpperCase",
        "under_score",
        "-leading-hyphen",
        "trailing-hyphen-",
        ".leading-dot",
        "trailing-dot.",
        "double..dot",
        "192.168.5.4",
        "xn--punycode-prefix",
        "name-s3alias",
        "name--ol-s3",
        "sthree-prefix",
        "with space",
        "exclamation!",
    ];
    for name in invalid {
        let response = server
            .request(Method::PUT, &format!("/{name}"))
            .send()
            .await;
        assert_eq!(
            (response.status.as_u16(), response.error_code().as_deref()),
            (400, Some("InvalidBucketName")),
            "bucket name {name:?}: {}",
            response.text()
        );
    }
    let listed = server.request(Method::GET, "/").send().await;
    assert!(
        listed.xml_values("Name").is_empty(),
        "no invalid bucket was created"
    );

    let max_len = "b".repeat(63);
    for name in ["abc", max_len.as_str(), "a.b-c.1", "0123456789"] {
        server
            .request(Method::PUT, &format!("/{name}"))
            .send()
            .await
            .assert_status(200);
    }
}

#[tokio::test]
async fn recreating_own_bucket_is_bucket_already_owned_by_you() {
    let server = TestServer::start();
    let s3 = server.s3_client();
    s3.create_bucket().bucket("mine").send().await.unwrap();
    let err = s3.create_bucket().bucket("mine").send().await.unwrap_err();
    assert_eq!(
        sdk_error(&err),
        (409, "BucketAlreadyOwnedByYou".to_string())
    );
}

#[tokio::test]
async fn delete_non_empty_bucket_is_bucket_not_empty() {
    let (_server, s3) = TestServer::start_with_buckets(&["full"]).await;
    put_bytes(&s3, "full", "k", b"x").await;

    let err = s3.delete_bucket().bucket("full").send().await.unwrap_err();
    assert_eq!(sdk_error(&err), (409, "BucketNotEmpty".to_string()));
    s3.head_bucket().bucket("full").send().await.unwrap();
    assert_eq!(
        get_bytes(&s3, "full", "k").await,
        b"x",
        "a refused DeleteBucket leaves objects alone"
    );

    s3.delete_object()
        .bucket("full")
        .key("k")
        .send()
        .await
        .unwrap();
    s3.delete_bucket().bucket("full").send().await.unwrap();
    let err = s3.head_bucket().bucket("full").send().await.unwrap_err();
    assert_eq!(sdk_error(&err).0, 404);
}

#[tokio::test]
async fn missing_buckets_are_no_such_bucket() {
    let server = TestServer::start();
    let s3 = server.s3_client();
    let err = s3.delete_bucket().bucket("ghost").send().await.unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchBucket".to_string()));
    let err = s3
        .list_objects_v2()
        .bucket("ghost")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchBucket".to_string()));
    let err = s3
        .put_object()
        .bucket("ghost")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchBucket".to_string()));
    let head = server.request(Method::HEAD, "/ghost").send().await;
    assert_eq!(head.status.as_u16(), 404);
    assert!(head.body.is_empty(), "HEAD responses have no body");
}

#[tokio::test]
async fn recreated_bucket_does_not_see_old_objects() {
    let (_server, s3) = TestServer::start_with_buckets(&["phoenix"]).await;
    put_bytes(&s3, "phoenix", "old", b"old").await;
    s3.delete_object()
        .bucket("phoenix")
        .key("old")
        .send()
        .await
        .unwrap();
    s3.delete_bucket().bucket("phoenix").send().await.unwrap();
    s3.create_bucket().bucket("phoenix").send().await.unwrap();
    let listed = s3.list_objects_v2().bucket("phoenix").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(0));
    assert!(listed.contents().is_empty());
}

#[tokio::test]
async fn get_bucket_location_is_the_region() {
    let (server, s3) = TestServer::start_with_buckets(&["where"]).await;
    let location = s3
        .get_bucket_location()
        .bucket("where")
        .send()
        .await
        .unwrap();
    // us-east-1 is reported as an empty LocationConstraint by S3.
    let constraint = location
        .location_constraint()
        .map(|c| c.as_str().to_string())
        .unwrap_or_default();
    assert!(
        constraint.is_empty() || constraint == "us-east-1",
        "unexpected LocationConstraint {constraint:?}"
    );

    let raw = server
        .request(Method::GET, "/where")
        .query_flag("location")
        .send()
        .await;
    raw.assert_status(200);
    assert!(raw.text().contains("<LocationConstraint"), "{}", raw.text());

    let err = s3
        .get_bucket_location()
        .bucket("nowhere")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchBucket".to_string()));
}

#[tokio::test]
async fn create_bucket_accepts_a_location_constraint() {
    let server = TestServer::start();
    let body = "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                <LocationConstraint>us-east-1</LocationConstraint></CreateBucketConfiguration>";
    let response = server
        .request(Method::PUT, "/located")
        .body(body)
        .send()
        .await;
    response.assert_status(200);
    let listed = server.request(Method::GET, "/").send().await;
    assert_eq!(s3_xml::values(&listed.text(), "Name"), ["located"]);
}

#[tokio::test]
async fn create_bucket_with_malformed_configuration_is_malformed_xml() {
    let server = TestServer::start();
    let response = server
        .request(Method::PUT, "/badxml")
        .body("<CreateBucketConfiguration><LocationConstraint>")
        .send()
        .await;
    response.assert_error(400, "MalformedXML");
}
