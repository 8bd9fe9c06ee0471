//! The bucket and object subresources clients probe: ACLs (owner FULL_CONTROL only; canned
//! `private` accepted, anything public refused), encryption, policy status, public access
//! block, ownership controls, versioning, ListObjectVersions, and S3's exact "not configured"
//! errors for policy, lifecycle, CORS, tagging and website.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketCannedAcl, ObjectCannedAcl, ObjectOwnership, Permission, ServerSideEncryption, Type,
};
use aws_sdk_s3::Client;
use coffre_conformance::{
    list_keys, md5_base64, put_bytes, s3_xml, sdk_error, simple_etag, TestServer,
};
use http::Method;

const BUCKET: &str = "probed";

async fn owner_id(s3: &Client) -> String {
    s3.list_buckets()
        .send()
        .await
        .unwrap()
        .owner()
        .and_then(|o| o.id())
        .expect("ListBuckets names the owner")
        .to_string()
}

#[tokio::test]
async fn bucket_and_object_acls_grant_the_owner_full_control_only() {
    let (_server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    put_bytes(&s3, BUCKET, "obj", b"x").await;
    let owner = owner_id(&s3).await;

    let bucket_acl = s3.get_bucket_acl().bucket(BUCKET).send().await.unwrap();
    let object_acl = s3
        .get_object_acl()
        .bucket(BUCKET)
        .key("obj")
        .send()
        .await
        .unwrap();
    for (what, acl_owner, grants) in [
        ("bucket", bucket_acl.owner(), bucket_acl.grants()),
        ("object", object_acl.owner(), object_acl.grants()),
    ] {
        assert_eq!(
            acl_owner.and_then(|o| o.id()),
            Some(owner.as_str()),
            "{what} ACL owner is the ListBuckets owner"
        );
        assert_eq!(grants.len(), 1, "{what}: {grants:?}");
        let grant = &grants[0];
        assert_eq!(grant.permission(), Some(&Permission::FullControl), "{what}");
        let grantee = grant.grantee().expect("Grantee");
        assert_eq!(grantee.r#type(), &Type::CanonicalUser, "{what}");
        assert_eq!(grantee.id(), Some(owner.as_str()), "{what}");
    }

    let err = s3
        .get_object_acl()
        .bucket(BUCKET)
        .key("absent")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchKey".to_string()));
}

#[tokio::test]
async fn canned_private_is_accepted_and_public_acls_are_refused() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    put_bytes(&s3, BUCKET, "obj", b"x").await;

    s3.put_bucket_acl()
        .bucket(BUCKET)
        .acl(BucketCannedAcl::Private)
        .send()
        .await
        .unwrap();
    s3.put_object_acl()
        .bucket(BUCKET)
        .key("obj")
        .acl(ObjectCannedAcl::Private)
        .send()
        .await
        .unwrap();

    for acl in [
        BucketCannedAcl::PublicRead,
        BucketCannedAcl::PublicReadWrite,
        BucketCannedAcl::AuthenticatedRead,
    ] {
        let err = s3
            .put_bucket_acl()
            .bucket(BUCKET)
            .acl(acl.clone())
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            sdk_error(&err),
            (400, "AccessControlListNotSupported".to_string()),
            "PutBucketAcl {acl:?}"
        );
    }
    for acl in [
        ObjectCannedAcl::PublicRead,
        ObjectCannedAcl::PublicReadWrite,
        ObjectCannedAcl::AuthenticatedRead,
    ] {
        let err = s3
            .put_object_acl()
            .bucket(BUCKET)
            .key("obj")
            .acl(acl.clone())
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            sdk_error(&err),
            (400, "AccessControlListNotSupported".to_string()),
            "PutObjectAcl {acl:?}"
        );
    }

    // A grant header is an ACL too.
    let response = server
        .request(Method::PUT, &format!("/{BUCKET}"))
        .query_flag("acl")
        .header(
            "x-amz-grant-read",
            "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"",
        )
        .send()
        .await;
    response.assert_error(400, "AccessControlListNotSupported");

    // The ACL is unchanged: still the owner alone.
    let acl = s3.get_bucket_acl().bucket(BUCKET).send().await.unwrap();
    assert_eq!(acl.grants().len(), 1);
}

fn access_control_policy(owner: &str, extra_grant: &str) -> String {
    format!(
        "<AccessControlPolicy xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <Owner><ID>{owner}</ID></Owner><AccessControlList>\
         <Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xsi:type=\"CanonicalUser\"><ID>{owner}</ID></Grantee>\
         <Permission>FULL_CONTROL</Permission></Grant>{extra_grant}\
         </AccessControlList></AccessControlPolicy>"
    )
}

#[tokio::test]
async fn acl_bodies_granting_only_the_owner_are_accepted() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    put_bytes(&s3, BUCKET, "obj", b"x").await;
    let owner = owner_id(&s3).await;
    let public = "<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
                  xsi:type=\"Group\"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI>\
                  </Grantee><Permission>READ</Permission></Grant>";

    for path in [format!("/{BUCKET}"), format!("/{BUCKET}/obj")] {
        let body = access_control_policy(&owner, "");
        let response = server
            .request(Method::PUT, &path)
            .query_flag("acl")
            .header("content-md5", &md5_base64(body.as_bytes()))
            .body(body)
            .send()
            .await;
        response.assert_status(200);

        let body = access_control_policy(&owner, public);
        let response = server
            .request(Method::PUT, &path)
            .query_flag("acl")
            .header("content-md5", &md5_base64(body.as_bytes()))
            .body(body)
            .send()
            .await;
        response.assert_error(400, "AccessControlListNotSupported");
    }
}

#[tokio::test]
async fn writes_with_public_acls_are_refused_and_store_nothing() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    put_bytes(&s3, BUCKET, "source", b"src").await;

    let err = s3
        .put_object()
        .bucket(BUCKET)
        .key("public")
        .acl(ObjectCannedAcl::PublicRead)
        .body(ByteStream::from_static(b"should not be stored"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        sdk_error(&err),
        (400, "AccessControlListNotSupported".to_string())
    );
    let response = server
        .request(Method::PUT, &format!("/{BUCKET}/granted"))
        .header(
            "x-amz-grant-read",
            "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"",
        )
        .body("should not be stored")
        .send()
        .await;
    response.assert_error(400, "AccessControlListNotSupported");
    let err = s3
        .copy_object()
        .bucket(BUCKET)
        .key("public-copy")
        .copy_source(format!("{BUCKET}/source"))
        .acl(ObjectCannedAcl::PublicRead)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        sdk_error(&err),
        (400, "AccessControlListNotSupported".to_string())
    );
    let err = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("public-mpu")
        .acl(ObjectCannedAcl::PublicRead)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        sdk_error(&err),
        (400, "AccessControlListNotSupported".to_string())
    );

    assert_eq!(
        list_keys(&s3, BUCKET).await,
        ["source"],
        "nothing was stored"
    );
    let uploads = s3
        .list_multipart_uploads()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty());

    // bucket-owner-full-control is what ACL-disabled buckets accept.
    s3.put_object()
        .bucket(BUCKET)
        .key("owner")
        .acl(ObjectCannedAcl::BucketOwnerFullControl)
        .body(ByteStream::from_static(b"stored"))
        .send()
        .await
        .unwrap();
    let got = s3
        .head_object()
        .bucket(BUCKET)
        .key("owner")
        .send()
        .await
        .unwrap();
    assert_eq!(got.e_tag(), Some(simple_etag(b"stored").as_str()));
}

#[tokio::test]
async fn encryption_policy_status_public_access_block_and_ownership() {
    let (_server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;

    let encryption = s3
        .get_bucket_encryption()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let rules = encryption
        .server_side_encryption_configuration()
        .expect("ServerSideEncryptionConfiguration")
        .rules();
    assert_eq!(rules.len(), 1, "{rules:?}");
    let default = rules[0]
        .apply_server_side_encryption_by_default()
        .expect("ApplyServerSideEncryptionByDefault");
    assert_eq!(default.sse_algorithm(), &ServerSideEncryption::Aes256);
    assert_eq!(default.kms_master_key_id(), None);

    let status = s3
        .get_bucket_policy_status()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    assert_eq!(
        status.policy_status().and_then(|s| s.is_public()),
        Some(false)
    );

    let block = s3
        .get_public_access_block()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let block = block
        .public_access_block_configuration()
        .expect("PublicAccessBlockConfiguration");
    assert_eq!(block.block_public_acls(), Some(true));
    assert_eq!(block.ignore_public_acls(), Some(true));
    assert_eq!(block.block_public_policy(), Some(true));
    assert_eq!(block.restrict_public_buckets(), Some(true));

    let ownership = s3
        .get_bucket_ownership_controls()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let rules = ownership
        .ownership_controls()
        .expect("OwnershipControls")
        .rules();
    assert_eq!(rules.len(), 1);
    assert_eq!(
        rules[0].object_ownership(),
        &ObjectOwnership::BucketOwnerEnforced
    );

    let versioning = s3
        .get_bucket_versioning()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    assert_eq!(versioning.status(), None, "versioning was never enabled");
    assert_eq!(versioning.mfa_delete(), None);
}

#[tokio::test]
async fn unconfigured_subresources_give_the_aws_not_found_errors() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;

    let err = s3
        .get_bucket_policy()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchBucketPolicy".to_string()));
    let err = s3
        .get_bucket_lifecycle_configuration()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        sdk_error(&err),
        (404, "NoSuchLifecycleConfiguration".to_string())
    );
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
    let err = s3
        .get_bucket_tagging()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchTagSet".to_string()));
    let err = s3
        .get_bucket_website()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        sdk_error(&err),
        (404, "NoSuchWebsiteConfiguration".to_string())
    );

    // The raw error bodies name the bucket, as S3's do.
    for (flag, code) in [
        ("policy", "NoSuchBucketPolicy"),
        ("lifecycle", "NoSuchLifecycleConfiguration"),
        ("cors", "NoSuchCORSConfiguration"),
        ("tagging", "NoSuchTagSet"),
        ("website", "NoSuchWebsiteConfiguration"),
    ] {
        let response = server
            .request(Method::GET, &format!("/{BUCKET}"))
            .query_flag(flag)
            .send()
            .await;
        response.assert_error(404, code);
        assert_eq!(
            s3_xml::first(&response.text(), "BucketName").as_deref(),
            Some(BUCKET),
            "?{flag}: {}",
            response.text()
        );
    }
}

#[tokio::test]
async fn every_subresource_of_a_missing_bucket_is_no_such_bucket() {
    let server = TestServer::start();
    for flag in [
        "acl",
        "encryption",
        "policyStatus",
        "publicAccessBlock",
        "ownershipControls",
        "policy",
        "lifecycle",
        "cors",
        "tagging",
        "website",
        "versioning",
        "versions",
    ] {
        let response = server
            .request(Method::GET, "/nobucket")
            .query_flag(flag)
            .send()
            .await;
        assert_eq!(
            (response.status.as_u16(), response.error_code().as_deref()),
            (404, Some("NoSuchBucket")),
            "GET ?{flag}: {}",
            response.text()
        );
    }
    let response = server
        .request(Method::PUT, "/nobucket")
        .query_flag("acl")
        .header("x-amz-acl", "private")
        .send()
        .await;
    response.assert_error(404, "NoSuchBucket");
    let response = server
        .request(Method::GET, "/nobucket/key")
        .query_flag("acl")
        .send()
        .await;
    response.assert_error(404, "NoSuchBucket");

    let s3 = server.s3_client();
    let err = s3
        .get_bucket_acl()
        .bucket("nobucket")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchBucket".to_string()));
    let err = s3
        .get_bucket_encryption()
        .bucket("nobucket")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchBucket".to_string()));
    let err = s3
        .get_bucket_cors()
        .bucket("nobucket")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchBucket".to_string()));
}

#[tokio::test]
async fn list_object_versions_lists_each_object_once_as_null() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let keys = ["a", "dir/one", "dir/two", "dir/sub/three", "z é"];
    for key in keys {
        put_bytes(&s3, BUCKET, key, key.as_bytes()).await;
    }
    // An overwrite does not add a version: versioning is off.
    put_bytes(&s3, BUCKET, "a", b"second a").await;

    let all = s3
        .list_object_versions()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    assert_eq!(all.name(), Some(BUCKET));
    assert_eq!(all.is_truncated(), Some(false));
    assert!(all.delete_markers().is_empty());
    let listed: Vec<_> = all.versions().iter().filter_map(|v| v.key()).collect();
    let mut expected = keys.to_vec();
    expected.sort();
    assert_eq!(listed, expected, "each object once, in key order");
    for version in all.versions() {
        let key = version.key().unwrap();
        assert_eq!(version.version_id(), Some("null"), "{key}");
        assert_eq!(version.is_latest(), Some(true), "{key}");
        assert!(version.last_modified().is_some(), "{key}");
        let data: &[u8] = if key == "a" {
            b"second a"
        } else {
            key.as_bytes()
        };
        assert_eq!(version.size(), Some(data.len() as i64), "{key}");
        assert_eq!(version.e_tag(), Some(simple_etag(data).as_str()), "{key}");
    }

    let delimited = s3
        .list_object_versions()
        .bucket(BUCKET)
        .prefix("dir/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(delimited.prefix(), Some("dir/"));
    assert_eq!(delimited.delimiter(), Some("/"));
    let listed: Vec<_> = delimited
        .versions()
        .iter()
        .filter_map(|v| v.key())
        .collect();
    assert_eq!(listed, ["dir/one", "dir/two"]);
    let prefixes: Vec<_> = delimited
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, ["dir/sub/"]);

    // Pagination with key-marker / version-id-marker.
    let mut key_marker: Option<String> = None;
    let mut version_marker: Option<String> = None;
    let mut paged = Vec::new();
    for _ in 0..10 {
        let page = s3
            .list_object_versions()
            .bucket(BUCKET)
            .max_keys(2)
            .set_key_marker(key_marker.clone())
            .set_version_id_marker(version_marker.clone())
            .send()
            .await
            .unwrap();
        assert!(page.versions().len() <= 2);
        paged.extend(
            page.versions()
                .iter()
                .filter_map(|v| v.key())
                .map(str::to_string),
        );
        if page.is_truncated() != Some(true) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_string);
        assert_eq!(key_marker.as_deref(), paged.last().map(String::as_str));
        version_marker = page.next_version_id_marker().map(str::to_string);
    }
    assert_eq!(paged, expected, "pagination lists every object once");

    // The raw document: ListVersionsResult with Version elements.
    let response = server
        .request(Method::GET, &format!("/{BUCKET}"))
        .query_flag("versions")
        .query("prefix", "dir/one")
        .send()
        .await;
    response.assert_status(200);
    let text = response.text();
    assert_eq!(
        s3_xml::sections(&text, "ListVersionsResult").len(),
        1,
        "{text}"
    );
    let versions = s3_xml::sections(&text, "Version");
    assert_eq!(versions.len(), 1, "{text}");
    assert_eq!(
        s3_xml::first(&versions[0], "VersionId").as_deref(),
        Some("null")
    );
    assert_eq!(
        s3_xml::first(&versions[0], "IsLatest").as_deref(),
        Some("true")
    );
    assert_eq!(
        s3_xml::first(&versions[0], "Key").as_deref(),
        Some("dir/one")
    );
}
