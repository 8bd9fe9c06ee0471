//! Virtual-host-style addressing (`--domain s3.test`): `Host: bucket.s3.test:PORT`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_s3::primitives::ByteStream;
use coffre_conformance::{pseudo_random_bytes, read_body, sdk_error, simple_etag, TestServer};
use http::Method;

const DOMAIN: &str = "s3.test";

fn host(server: &TestServer, bucket: &str) -> String {
    format!("{bucket}.{DOMAIN}:{}", server.s3_addr.port())
}

#[tokio::test]
async fn sdk_virtual_host_style() {
    let server = TestServer::start_with_args(&["--domain", DOMAIN]);
    let s3 = server.s3_client_virtual_host(DOMAIN);
    s3.create_bucket().bucket("vhost").send().await.unwrap();
    let data = pseudo_random_bytes(100_000, 4);
    let put = s3
        .put_object()
        .bucket("vhost")
        .key("dir/file name")
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(put.e_tag(), Some(simple_etag(&data).as_str()));
    let got = s3
        .get_object()
        .bucket("vhost")
        .key("dir/file name")
        .send()
        .await
        .unwrap();
    assert!(read_body(got.body).await == data);
    let listed = s3.list_objects_v2().bucket("vhost").send().await.unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["dir/file name"]);
    let buckets = s3.list_buckets().send().await.unwrap();
    let names: Vec<_> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["vhost"]);
    let err = s3
        .get_object()
        .bucket("vhost")
        .key("missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchKey".to_string()));
    s3.delete_object()
        .bucket("vhost")
        .key("dir/file name")
        .send()
        .await
        .unwrap();
    s3.delete_bucket().bucket("vhost").send().await.unwrap();

    // Path style keeps working on the same server.
    let path_style = server.s3_client();
    path_style
        .create_bucket()
        .bucket("pathstyle")
        .send()
        .await
        .unwrap();
    let listed = path_style.list_buckets().send().await.unwrap();
    assert_eq!(listed.buckets().len(), 1);
}

#[tokio::test]
async fn raw_virtual_host_requests() {
    let server = TestServer::start_with_args(&["--domain", DOMAIN]);
    let bucket_host = host(&server, "rawv");
    server
        .request(Method::PUT, "/")
        .host(&bucket_host)
        .send()
        .await
        .assert_status(200);
    server
        .request(Method::PUT, "/a key/é")
        .host(&bucket_host)
        .body("virtual")
        .send()
        .await
        .assert_status(200);

    // The same object by path style and by virtual host.
    let by_path = server.request(Method::GET, "/rawv/a key/é").send().await;
    by_path.assert_status(200);
    assert_eq!(&by_path.body[..], b"virtual");
    let by_host = server
        .request(Method::GET, "/a key/é")
        .host(&bucket_host)
        .send()
        .await;
    by_host.assert_status(200);
    assert_eq!(&by_host.body[..], b"virtual");

    let listed = server
        .request(Method::GET, "/")
        .host(&bucket_host)
        .query("list-type", "2")
        .send()
        .await;
    listed.assert_status(200);
    assert_eq!(listed.xml_values("Key"), ["a key/é"]);
    assert_eq!(listed.xml_values("Name"), ["rawv"]);

    // The bare domain is the service endpoint: ListBuckets.
    let service = server
        .request(Method::GET, "/")
        .host(&format!("{DOMAIN}:{}", server.s3_addr.port()))
        .send()
        .await;
    service.assert_status(200);
    assert_eq!(service.xml_values("Name"), ["rawv"]);

    // A presigned URL in virtual-host style.
    let presigned = server
        .request(Method::GET, "/a key/é")
        .host(&bucket_host)
        .presigned(std::time::Duration::from_secs(60))
        .send()
        .await;
    presigned.assert_status(200);
    assert_eq!(&presigned.body[..], b"virtual");

    // The signature covers the Host: a request signed for one bucket and sent for another fails.
    let mut request = server
        .request(Method::GET, "/a key/é")
        .host(&bucket_host)
        .build();
    request
        .headers_mut()
        .insert("host", host(&server, "other").parse().unwrap());
    coffre_conformance::send_request(request)
        .await
        .assert_error(403, "SignatureDoesNotMatch");

    let missing = server
        .request(Method::GET, "/k")
        .host(&host(&server, "nosuchbucket"))
        .send()
        .await;
    missing.assert_error(404, "NoSuchBucket");
}
