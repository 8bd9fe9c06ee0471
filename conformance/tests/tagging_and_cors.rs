//! Object tagging (Put/Get/DeleteObjectTagging, `x-amz-tagging` on PutObject,
//! CreateMultipartUpload and CopyObject, `x-amz-tagging-count`) and bucket CORS
//! (Put/Get/DeleteBucketCors, unauthenticated `OPTIONS` preflights, CORS headers on actual
//! responses), with the SDK and raw requests. Preflights never tell whether a bucket exists.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, CorsConfiguration, CorsRule, MetadataDirective, Tag,
    Tagging, TaggingDirective,
};
use aws_sdk_s3::Client;
use coffre_conformance::{
    create_buckets, md5_base64, read_body, sdk_error, RawResponse, TestServer,
};
use http::Method;

const BUCKET: &str = "tagged";
const DOMAIN: &str = "s3.test";
const APP: &str = "https://app.example.com";

async fn server_with_bucket() -> (TestServer, Client) {
    let server = TestServer::start_with_args(&["--domain", DOMAIN]);
    let s3 = server.s3_client();
    create_buckets(&s3, &[BUCKET]).await;
    (server, s3)
}

async fn put(s3: &Client, key: &str, data: &[u8], tagging: Option<&str>) {
    s3.put_object()
        .bucket(BUCKET)
        .key(key)
        .set_tagging(tagging.map(str::to_owned))
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {key:?}: {e:?}"));
}

async fn tags(s3: &Client, key: &str) -> Vec<(String, String)> {
    s3.get_object_tagging()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObjectTagging {key:?}: {e:?}"))
        .tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn tagging(list: &[(&str, &str)]) -> Tagging {
    let tags = list
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build().unwrap())
        .collect();
    Tagging::builder().set_tag_set(Some(tags)).build().unwrap()
}

fn tagging_document(list: &[(String, String)]) -> String {
    let tags: String = list
        .iter()
        .map(|(k, v)| format!("<Tag><Key>{k}</Key><Value>{v}</Value></Tag>"))
        .collect();
    format!("<Tagging><TagSet>{tags}</TagSet></Tagging>")
}

async fn put_tagging_raw(server: &TestServer, key: &str, body: &str) -> RawResponse {
    server
        .request(Method::PUT, &format!("/{BUCKET}/{key}"))
        .query_flag("tagging")
        .header("content-md5", &md5_base64(body.as_bytes()))
        .body(body.to_owned())
        .send()
        .await
}

#[tokio::test]
async fn tags_are_set_read_replaced_and_removed_without_touching_the_object() {
    let (server, s3) = server_with_bucket().await;
    put(
        &s3,
        "k",
        b"the data",
        Some("project=zephyr&owner=ops%20team"),
    )
    .await;
    assert_eq!(
        tags(&s3, "k").await,
        pairs(&[("owner", "ops team"), ("project", "zephyr")]),
        "sorted by key, decoded"
    );
    let got = s3
        .get_object()
        .bucket(BUCKET)
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(got.tag_count(), Some(2));
    let (etag, modified) = (got.e_tag().map(str::to_owned), got.last_modified().cloned());
    let head = server
        .request(Method::HEAD, &format!("/{BUCKET}/k"))
        .send()
        .await;
    assert_eq!(head.header("x-amz-tagging-count"), Some("2"));

    s3.put_object_tagging()
        .bucket(BUCKET)
        .key("k")
        .tagging(tagging(&[
            ("stage", "final"),
            ("a:b/c=d+e-f@g.h_i", "Été 2024"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags(&s3, "k").await,
        pairs(&[("a:b/c=d+e-f@g.h_i", "Été 2024"), ("stage", "final")])
    );
    let got = s3
        .get_object()
        .bucket(BUCKET)
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.e_tag().map(str::to_owned),
        etag,
        "tagging is not a new object"
    );
    assert_eq!(got.last_modified().cloned(), modified);
    assert_eq!(read_body(got.body).await, b"the data");

    // An empty tag set removes the tags, as DeleteObjectTagging does.
    let response = put_tagging_raw(&server, "k", "<Tagging><TagSet/></Tagging>").await;
    response.assert_status(200);
    assert!(tags(&s3, "k").await.is_empty());
    put_tagging_raw(&server, "k", &tagging_document(&pairs(&[("x", "1")])))
        .await
        .assert_status(200);
    let deleted = server
        .request(Method::DELETE, &format!("/{BUCKET}/k"))
        .query_flag("tagging")
        .send()
        .await;
    deleted.assert_status(204);
    assert!(tags(&s3, "k").await.is_empty());
    let got = s3
        .get_object()
        .bucket(BUCKET)
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(got.tag_count(), None, "no count without tags");

    // An overwrite replaces the tags with its own (none).
    put(&s3, "k", b"again", Some("old=1")).await;
    put(&s3, "k", b"again", None).await;
    assert!(tags(&s3, "k").await.is_empty());

    for result in [
        s3.get_object_tagging()
            .bucket(BUCKET)
            .key("absent")
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error(&e)),
        s3.put_object_tagging()
            .bucket(BUCKET)
            .key("absent")
            .tagging(tagging(&[("a", "1")]))
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error(&e)),
        s3.delete_object_tagging()
            .bucket(BUCKET)
            .key("absent")
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error(&e)),
    ] {
        assert_eq!(result, Err((404, "NoSuchKey".to_string())));
    }
}

#[tokio::test]
async fn tag_limits_and_malformed_tag_sets_get_aws_errors_and_change_nothing() {
    let (server, s3) = server_with_bucket().await;
    put(&s3, "k", b"x", Some("keep=1")).await;

    let eleven: Vec<(String, String)> = (0..11).map(|i| (format!("k{i}"), "v".into())).collect();
    let ten = eleven[..10].to_vec();
    let long_key = "k".repeat(129);
    let long_value = "v".repeat(257);
    let cases: Vec<(String, u16, &str)> = vec![
        (tagging_document(&eleven), 400, "BadRequest"),
        (
            tagging_document(&pairs(&[(&long_key, "v")])),
            400,
            "InvalidTag",
        ),
        (
            tagging_document(&pairs(&[("k", &long_value)])),
            400,
            "InvalidTag",
        ),
        (
            tagging_document(&pairs(&[("k", "1"), ("k", "2")])),
            400,
            "InvalidTag",
        ),
        (
            tagging_document(&pairs(&[("aws:reserved", "1")])),
            400,
            "InvalidTag",
        ),
        (tagging_document(&pairs(&[("", "1")])), 400, "InvalidTag"),
        (
            tagging_document(&pairs(&[("bad,char", "1")])),
            400,
            "InvalidTag",
        ),
        (
            "<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>".into(),
            400,
            "MalformedXML",
        ),
        ("<Tagging><TagSet>".into(), 400, "MalformedXML"),
        ("<Other/>".into(), 400, "MalformedXML"),
    ];
    for (body, status, code) in &cases {
        put_tagging_raw(&server, "k", body)
            .await
            .assert_error(*status, code);
    }
    assert_eq!(
        tags(&s3, "k").await,
        pairs(&[("keep", "1")]),
        "nothing changed"
    );

    // The limits themselves are accepted.
    let longest = pairs(&[(&"k".repeat(128), &"v".repeat(256))]);
    put_tagging_raw(&server, "k", &tagging_document(&longest))
        .await
        .assert_status(200);
    put_tagging_raw(&server, "k", &tagging_document(&ten))
        .await
        .assert_status(200);
    assert_eq!(tags(&s3, "k").await.len(), 10);

    // The header form: refused PUTs store nothing.
    let header_cases = [
        ("a=1&a=2", 400, "InvalidArgument"),
        (
            "k0=v&k1=v&k2=v&k3=v&k4=v&k5=v&k6=v&k7=v&k8=v&k9=v&k10=v",
            400,
            "BadRequest",
        ),
        ("aws:x=1", 400, "InvalidTag"),
    ];
    for (header, status, code) in header_cases {
        server
            .request(Method::PUT, &format!("/{BUCKET}/refused"))
            .header("x-amz-tagging", header)
            .body("data")
            .send()
            .await
            .assert_error(status, code);
    }
    let err = s3
        .head_object()
        .bucket(BUCKET)
        .key("refused")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err).0, 404);
}

#[tokio::test]
async fn multipart_uploads_and_copies_carry_tags() {
    let (_server, s3) = server_with_bucket().await;
    let upload = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("mp")
        .tagging("via=multipart")
        .send()
        .await
        .unwrap();
    let id = upload.upload_id().unwrap();
    let part = s3
        .upload_part()
        .bucket(BUCKET)
        .key("mp")
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from_static(b"only part"))
        .send()
        .await
        .unwrap();
    s3.complete_multipart_upload()
        .bucket(BUCKET)
        .key("mp")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .set_e_tag(part.e_tag().map(str::to_owned))
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(tags(&s3, "mp").await, pairs(&[("via", "multipart")]));

    put(&s3, "src", b"source", Some("from=source")).await;
    let copy = |key: &'static str| {
        s3.copy_object()
            .bucket(BUCKET)
            .key(key)
            .copy_source(format!("{BUCKET}/src"))
    };
    copy("copied").send().await.unwrap();
    assert_eq!(tags(&s3, "copied").await, pairs(&[("from", "source")]));
    copy("ignored").tagging("new=1").send().await.unwrap();
    assert_eq!(
        tags(&s3, "ignored").await,
        pairs(&[("from", "source")]),
        "COPY is the default directive"
    );
    copy("replaced")
        .tagging_directive(TaggingDirective::Replace)
        .tagging("new=1")
        .send()
        .await
        .unwrap();
    assert_eq!(tags(&s3, "replaced").await, pairs(&[("new", "1")]));
    copy("cleared")
        .tagging_directive(TaggingDirective::Replace)
        .send()
        .await
        .unwrap();
    assert!(tags(&s3, "cleared").await.is_empty());
    copy("new-metadata")
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags(&s3, "new-metadata").await,
        pairs(&[("from", "source")]),
        "the metadata directive leaves the tags alone"
    );
}

fn rule(origins: &[&str], methods: &[&str]) -> aws_sdk_s3::types::builders::CorsRuleBuilder {
    let mut builder = CorsRule::builder();
    for origin in origins {
        builder = builder.allowed_origins(*origin);
    }
    for method in methods {
        builder = builder.allowed_methods(*method);
    }
    builder
}

async fn put_cors(s3: &Client, bucket: &str, rules: Vec<CorsRule>) {
    s3.put_bucket_cors()
        .bucket(bucket)
        .cors_configuration(
            CorsConfiguration::builder()
                .set_cors_rules(Some(rules))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutBucketCors {bucket}: {e:?}"));
}

fn app_rules() -> Vec<CorsRule> {
    vec![
        rule(&[APP], &["GET", "PUT", "HEAD"])
            .allowed_headers("content-type")
            .allowed_headers("x-amz-*")
            .expose_headers("ETag")
            .max_age_seconds(600)
            .id("app")
            .build()
            .unwrap(),
        rule(&["https://*.readers.example"], &["GET"])
            .build()
            .unwrap(),
    ]
}

/// An unauthenticated preflight, as a browser sends it.
async fn preflight(
    server: &TestServer,
    path: &str,
    origin: Option<&str>,
    method: Option<&str>,
    headers: Option<&str>,
) -> RawResponse {
    let mut request = server.request(Method::OPTIONS, path).anonymous();
    for (name, value) in [
        ("origin", origin),
        ("access-control-request-method", method),
        ("access-control-request-headers", headers),
    ] {
        if let Some(value) = value {
            request = request.header(name, value);
        }
    }
    request.send().await
}

#[tokio::test]
async fn bucket_cors_configurations_are_stored_validated_and_removed() {
    let (server, s3) = server_with_bucket().await;
    let err = s3
        .get_bucket_cors()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        sdk_error(&err),
        (404, "NoSuchCORSConfiguration".to_string())
    );

    put_cors(&s3, BUCKET, app_rules()).await;
    let got = s3.get_bucket_cors().bucket(BUCKET).send().await.unwrap();
    assert_eq!(got.cors_rules(), app_rules().as_slice());

    let invalid = [
        (
            "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>",
            "InvalidRequest",
        ),
        (
            "<CORSConfiguration><CORSRule><AllowedOrigin>https://*.*.example</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
            "InvalidRequest",
        ),
        (
            "<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
            "MalformedXML",
        ),
        ("<CORSConfiguration/>", "MalformedXML"),
        ("<CORSConfiguration>", "MalformedXML"),
    ];
    for (body, code) in invalid {
        server
            .request(Method::PUT, &format!("/{BUCKET}"))
            .query_flag("cors")
            .header("content-md5", &md5_base64(body.as_bytes()))
            .body(body)
            .send()
            .await
            .assert_error(400, code);
    }
    let hundred_and_one = format!(
        "<CORSConfiguration>{}</CORSConfiguration>",
        "<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>"
            .repeat(101)
    );
    server
        .request(Method::PUT, &format!("/{BUCKET}"))
        .query_flag("cors")
        .body(hundred_and_one)
        .send()
        .await
        .assert_error(400, "MalformedXML");
    let got = s3.get_bucket_cors().bucket(BUCKET).send().await.unwrap();
    assert_eq!(
        got.cors_rules(),
        app_rules().as_slice(),
        "refused: unchanged"
    );

    let deleted = server
        .request(Method::DELETE, &format!("/{BUCKET}"))
        .query_flag("cors")
        .send()
        .await;
    deleted.assert_status(204);
    let err = s3
        .get_bucket_cors()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        sdk_error(&err),
        (404, "NoSuchCORSConfiguration".to_string())
    );
    // Deleting what is not there is no error.
    s3.delete_bucket_cors().bucket(BUCKET).send().await.unwrap();

    let err = s3
        .put_bucket_cors()
        .bucket("nobucket")
        .cors_configuration(
            CorsConfiguration::builder()
                .set_cors_rules(Some(app_rules()))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchBucket".to_string()));
}

#[tokio::test]
async fn preflights_are_answered_from_the_rules_without_credentials() {
    let (server, s3) = server_with_bucket().await;
    let path = format!("/{BUCKET}/dir/file.txt");
    // No configuration yet.
    let refused = preflight(&server, &path, Some(APP), Some("GET"), None).await;
    refused.assert_error(403, "AccessForbidden");
    assert!(refused.header("access-control-allow-origin").is_none());

    put_cors(&s3, BUCKET, app_rules()).await;
    let allowed = preflight(
        &server,
        &path,
        Some(APP),
        Some("PUT"),
        Some("Content-Type, X-Amz-Date"),
    )
    .await;
    allowed.assert_status(200);
    assert_eq!(allowed.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        allowed.header("access-control-allow-methods"),
        Some("GET, PUT, HEAD")
    );
    assert_eq!(
        allowed.header("access-control-allow-headers"),
        Some("content-type, x-amz-date")
    );
    assert_eq!(
        allowed.header("access-control-expose-headers"),
        Some("ETag")
    );
    assert_eq!(allowed.header("access-control-max-age"), Some("600"));
    assert!(allowed.header("vary").unwrap().contains("Origin"));

    // The bucket itself, and the virtual-host form.
    preflight(&server, &format!("/{BUCKET}"), Some(APP), Some("GET"), None)
        .await
        .assert_status(200);
    let vhost = server
        .request(Method::OPTIONS, "/dir/file.txt")
        .anonymous()
        .host(&format!("{BUCKET}.{DOMAIN}:{}", server.s3_addr.port()))
        .header("origin", "https://news.readers.example")
        .header("access-control-request-method", "GET")
        .send()
        .await;
    vhost.assert_status(200);
    assert_eq!(
        vhost.header("access-control-allow-origin"),
        Some("https://news.readers.example")
    );

    // What no rule allows: another origin, method or header.
    for (origin, method, headers) in [
        ("https://evil.example", "GET", None),
        (APP, "DELETE", None),
        (APP, "PUT", Some("authorization, x-custom")),
        ("https://readers.example", "GET", None),
        ("https://news.readers.example", "PUT", None),
    ] {
        preflight(&server, &path, Some(origin), Some(method), headers)
            .await
            .assert_error(403, "AccessForbidden");
    }
    // Incomplete preflights.
    preflight(&server, &path, None, Some("GET"), None)
        .await
        .assert_error(400, "BadRequest");
    preflight(&server, &path, Some(APP), None, None)
        .await
        .assert_error(400, "BadRequest");
    preflight(&server, &path, Some(APP), Some("PATCH"), None)
        .await
        .assert_error(400, "BadRequest");
}

#[tokio::test]
async fn actual_responses_carry_the_callers_own_cors_headers() {
    let (server, s3) = server_with_bucket().await;
    put(&s3, "k", b"x", None).await;
    let get = |origin: &'static str| {
        server
            .request(Method::GET, &format!("/{BUCKET}/k"))
            .header("origin", origin)
    };
    let before = get(APP).send().await;
    before.assert_status(200);
    assert!(before.header("access-control-allow-origin").is_none());

    put_cors(&s3, BUCKET, app_rules()).await;
    let allowed = get(APP).send().await;
    allowed.assert_status(200);
    assert_eq!(allowed.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        allowed.header("access-control-expose-headers"),
        Some("ETag")
    );
    assert_eq!(allowed.header("vary"), Some("Origin"));
    let other = get("https://evil.example").send().await;
    other.assert_status(200);
    assert!(other.header("access-control-allow-origin").is_none());
    // Errors too: a page must be able to read S3's answer when the request fails.
    let missing = server
        .request(Method::GET, &format!("/{BUCKET}/no-such-key"))
        .header("origin", APP)
        .send()
        .await;
    missing.assert_error(404, "NoSuchKey");
    assert_eq!(missing.header("access-control-allow-origin"), Some(APP));
    assert_eq!(missing.header("vary"), Some("Origin"));
    let refused = server
        .request(Method::GET, &format!("/{BUCKET}/no-such-key"))
        .header("origin", "https://evil.example")
        .send()
        .await;
    refused.assert_error(404, "NoSuchKey");
    assert!(refused.header("access-control-allow-origin").is_none());
    // DELETE is not in the rule for this origin.
    let delete = server
        .request(Method::DELETE, &format!("/{BUCKET}/k"))
        .header("origin", APP)
        .send()
        .await;
    delete.assert_status(204);
    assert!(delete.header("access-control-allow-origin").is_none());

    put_cors(&s3, BUCKET, vec![rule(&["*"], &["GET"]).build().unwrap()]).await;
    let any = server
        .request(Method::GET, &format!("/{BUCKET}"))
        .header("origin", "https://anyone.example")
        .send()
        .await;
    any.assert_status(200);
    assert_eq!(any.header("access-control-allow-origin"), Some("*"));
}

#[tokio::test]
async fn preflights_never_reveal_which_buckets_exist_across_tenants() {
    let server = TestServer::start();
    let admin = server.admin();
    let a = admin.tenant_with_key("tenant-a").await;
    let b = admin.tenant_with_key("tenant-b").await;
    let s3_a = server.s3_client_with(&a.access_key, &a.secret_key);
    let s3_b = server.s3_client_with(&b.access_key, &b.secret_key);
    for bucket in ["private-a", "shared"] {
        s3_a.create_bucket().bucket(bucket).send().await.unwrap();
    }
    s3_b.create_bucket().bucket("shared").send().await.unwrap();

    // A bucket without rules answers exactly like a bucket no tenant has.
    let existing = preflight(&server, "/private-a/k", Some(APP), Some("GET"), None).await;
    let missing = preflight(&server, "/no-such-bucket/k", Some(APP), Some("GET"), None).await;
    existing.assert_error(403, "AccessForbidden");
    missing.assert_error(403, "AccessForbidden");
    let without_request_id = |r: &RawResponse| {
        let text = r.text();
        let start = text.find("<RequestId>").unwrap();
        text[..start].to_owned()
    };
    assert_eq!(without_request_id(&existing), without_request_id(&missing));

    // Tenant B publishes rules for its "shared": preflights for the name follow them...
    put_cors(
        &s3_b,
        "shared",
        vec![rule(&[APP], &["GET"]).build().unwrap()],
    )
    .await;
    preflight(&server, "/shared/k", Some(APP), Some("GET"), None)
        .await
        .assert_status(200);
    // ...but tenant A's own "shared" has no rules, so A's responses carry no CORS headers,
    // and A's GetBucketCors still says there is none.
    let response = server
        .request(Method::GET, "/shared")
        .access_key(&a.access_key)
        .secret_key(&a.secret_key)
        .header("origin", APP)
        .send()
        .await;
    response.assert_status(200);
    assert!(response.header("access-control-allow-origin").is_none());
    let err = s3_a
        .get_bucket_cors()
        .bucket("shared")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        sdk_error(&err),
        (404, "NoSuchCORSConfiguration".to_string())
    );
    let response = server
        .request(Method::GET, "/shared")
        .access_key(&b.access_key)
        .secret_key(&b.secret_key)
        .header("origin", APP)
        .send()
        .await;
    assert_eq!(response.header("access-control-allow-origin"), Some(APP));

    // Deleting B's rules withdraws them from preflights.
    s3_b.delete_bucket_cors()
        .bucket("shared")
        .send()
        .await
        .unwrap();
    preflight(&server, "/shared/k", Some(APP), Some("GET"), None)
        .await
        .assert_error(403, "AccessForbidden");
}

/// Issue 12: a rule naming the origin wins over `*`: within a rule (the origin is echoed,
/// with credentials), and across the rules of every tenant that a preflight is answered
/// from, so that one tenant's `*` rule does not hide another tenant's rule for the origin.
#[tokio::test]
async fn r12_a_named_origin_wins_over_any_origin_in_preflights() {
    let (server, s3) = server_with_bucket().await;
    put_cors(
        &s3,
        BUCKET,
        vec![rule(&["*", APP], &["GET"]).build().unwrap()],
    )
    .await;
    let response = preflight(&server, "/tagged/k", Some(APP), Some("GET"), None).await;
    response.assert_status(200);
    assert_eq!(response.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        response.header("access-control-allow-credentials"),
        Some("true")
    );
    let other = "https://elsewhere.example";
    let response = preflight(&server, "/tagged/k", Some(other), Some("GET"), None).await;
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));

    let admin = server.admin();
    let a = admin.tenant_with_key("tenant-a").await;
    let b = admin.tenant_with_key("tenant-b").await;
    let s3_a = server.s3_client_with(&a.access_key, &a.secret_key);
    let s3_b = server.s3_client_with(&b.access_key, &b.secret_key);
    s3_a.create_bucket().bucket("shared").send().await.unwrap();
    s3_b.create_bucket().bucket("shared").send().await.unwrap();
    put_cors(
        &s3_a,
        "shared",
        vec![rule(&["*"], &["GET"]).build().unwrap()],
    )
    .await;
    put_cors(
        &s3_b,
        "shared",
        vec![rule(&[APP], &["GET", "PUT"])
            .allowed_headers("content-type")
            .build()
            .unwrap()],
    )
    .await;
    let response = preflight(&server, "/shared/k", Some(APP), Some("GET"), None).await;
    response.assert_status(200);
    assert_eq!(response.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        response.header("access-control-allow-methods"),
        Some("GET, PUT")
    );
    let response = preflight(&server, "/shared/k", Some(other), Some("GET"), None).await;
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));
}
