use super::*;

fn op(method: Method, host: Option<&str>, path_and_query: &str) -> Result<Operation, S3ErrorCode> {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    Operation::parse(
        &method,
        host,
        Some("s3.test"),
        path,
        &Query::parse(query).map_err(|e| e.code())?,
        None,
    )
    .map_err(|e| e.code())
}

fn owned(s: &str) -> String {
    s.to_owned()
}

#[test]
fn path_style_routes() {
    assert_eq!(op(Method::GET, None, "/"), Ok(Operation::ListBuckets));
    assert_eq!(
        op(Method::PUT, None, "/bkt"),
        Ok(Operation::CreateBucket {
            bucket: owned("bkt")
        })
    );
    assert_eq!(
        op(Method::GET, None, "/bkt/?list-type=2&prefix=x"),
        Ok(Operation::ListObjectsV2 {
            bucket: owned("bkt")
        })
    );
    assert_eq!(
        op(Method::GET, None, "/bkt/dir/a%20b%2Bc"),
        Ok(Operation::GetObject {
            bucket: owned("bkt"),
            key: owned("dir/a b+c"),
            part_number: None
        })
    );
    assert_eq!(
        op(Method::PUT, None, "/bkt/k?partNumber=3&uploadId=u1"),
        Ok(Operation::UploadPart {
            bucket: owned("bkt"),
            key: owned("k"),
            upload_id: owned("u1"),
            part_number: 3
        })
    );
    assert_eq!(
        op(Method::PUT, None, "/bkt/k?partNumber=0&uploadId=u1"),
        Err(S3ErrorCode::InvalidArgument)
    );
    assert_eq!(
        op(Method::POST, None, "/bkt/k?uploads"),
        Ok(Operation::CreateMultipartUpload {
            bucket: owned("bkt"),
            key: owned("k")
        })
    );
}

#[test]
fn tagging_cors_and_preflights_route() {
    let object = |method| op(method, None, "/bkt/dir/k?tagging");
    assert_eq!(
        object(Method::GET),
        Ok(Operation::GetObjectTagging {
            bucket: owned("bkt"),
            key: owned("dir/k")
        })
    );
    assert_eq!(
        object(Method::PUT),
        Ok(Operation::PutObjectTagging {
            bucket: owned("bkt"),
            key: owned("dir/k")
        })
    );
    assert_eq!(
        object(Method::DELETE),
        Ok(Operation::DeleteObjectTagging {
            bucket: owned("bkt"),
            key: owned("dir/k")
        })
    );
    assert_eq!(object(Method::POST), Err(S3ErrorCode::MethodNotAllowed));
    assert_eq!(
        op(Method::GET, None, "/bkt?cors"),
        Ok(Operation::GetBucketCors {
            bucket: owned("bkt")
        })
    );
    assert_eq!(
        op(Method::PUT, Some("bkt.s3.test"), "/?cors"),
        Ok(Operation::PutBucketCors {
            bucket: owned("bkt")
        })
    );
    assert_eq!(
        op(Method::DELETE, None, "/bkt/?cors"),
        Ok(Operation::DeleteBucketCors {
            bucket: owned("bkt")
        })
    );
    assert_eq!(
        op(Method::OPTIONS, Some("bkt.s3.test"), "/a/k.txt"),
        Ok(Operation::CorsPreflight {
            bucket: owned("bkt"),
            key: owned("a/k.txt")
        })
    );
    assert_eq!(
        op(Method::OPTIONS, None, "/bkt"),
        Ok(Operation::CorsPreflight {
            bucket: owned("bkt"),
            key: String::new()
        })
    );
    assert_eq!(
        op(Method::OPTIONS, None, "/"),
        Err(S3ErrorCode::MethodNotAllowed)
    );
    assert!(Operation::PutObjectTagging {
        bucket: owned("bkt"),
        key: owned("k")
    }
    .is_write());
    assert!(!Operation::GetBucketCors {
        bucket: owned("bkt")
    }
    .is_write());
}

#[test]
fn copy_sources() {
    let parsed = CopySource::parse("/src%20b/dir/a%2Bb.txt?versionId=null")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.bucket, "src%20b".replace("%20", " "));
    assert_eq!(parsed.key, "dir/a+b.txt");
    assert!(CopySource::parse("bucket-only").is_err());
    assert!(CopySource::parse("b/k?versionId=v1").is_err());
}

#[test]
fn virtual_host_routes() {
    assert_eq!(
        op(Method::GET, Some("photos.s3.test:9000"), "/a/b.jpg"),
        Ok(Operation::GetObject {
            bucket: owned("photos"),
            key: owned("a/b.jpg"),
            part_number: None
        })
    );
    assert_eq!(
        op(Method::GET, Some("photos.s3.test"), "/?location"),
        Ok(Operation::GetBucketLocation {
            bucket: owned("photos")
        })
    );
    // The bare domain is path style.
    assert_eq!(
        op(Method::GET, Some("s3.test:9000"), "/photos"),
        Ok(Operation::ListObjects {
            bucket: owned("photos")
        })
    );
}

#[test]
fn unknown_subresources_are_not_implemented_and_bad_methods_refused() {
    assert_eq!(
        op(Method::GET, None, "/bkt?tagging"),
        Ok(Operation::GetAbsentBucketConfig {
            bucket: owned("bkt"),
            name: "GetBucketTagging",
            code: S3ErrorCode::NoSuchTagSet
        })
    );
    assert_eq!(
        op(Method::PUT, None, "/bkt?tagging"),
        Ok(Operation::Unsupported {
            name: "BucketTagging"
        })
    );
    assert_eq!(
        op(Method::POST, None, "/bkt?delete"),
        Ok(Operation::DeleteObjects {
            bucket: owned("bkt")
        })
    );
    assert_eq!(
        op(Method::POST, Some("bkt.s3.test"), "/"),
        Ok(Operation::PostObject {
            bucket: owned("bkt")
        })
    );
    assert_eq!(
        op(Method::POST, None, "/"),
        Err(S3ErrorCode::MethodNotAllowed)
    );
    let long = format!("/bkt/{}", "k".repeat(MAX_KEY_BYTES + 1));
    assert_eq!(
        op(Method::GET, None, &long),
        Err(S3ErrorCode::KeyTooLongError)
    );
}

#[test]
fn r12_bucket_names_are_validated_when_routed() {
    for path in [
        "/Upper/k",
        "/under_score",
        "/ab",
        "/a..b/k?tagging",
        "/192.168.1.1/k",
    ] {
        for method in [Method::GET, Method::PUT, Method::OPTIONS, Method::DELETE] {
            assert_eq!(
                op(method.clone(), None, path),
                Err(S3ErrorCode::InvalidBucketName),
                "{method} {path}"
            );
        }
    }
    assert_eq!(
        op(Method::GET, Some("Bad_Name.s3.test"), "/k"),
        Err(S3ErrorCode::InvalidBucketName)
    );
    let huge = format!("/{}", "a".repeat(10_000));
    assert_eq!(
        op(Method::GET, None, &huge),
        Err(S3ErrorCode::InvalidBucketName)
    );
}

/// A request that routes to an operation of `kind`: (method, path and query, copy source).
/// The match is exhaustive, so a new kind needs a route here.
fn route_of(kind: OperationKind) -> (Method, &'static str, Option<&'static str>) {
    use OperationKind as K;
    let (get, put, post, delete) = (Method::GET, Method::PUT, Method::POST, Method::DELETE);
    match kind {
        K::ListBuckets => (get, "/", None),
        K::CreateBucket => (put, "/bkt", None),
        K::HeadBucket => (Method::HEAD, "/bkt", None),
        K::DeleteBucket => (delete, "/bkt", None),
        K::GetBucketLocation => (get, "/bkt?location", None),
        K::GetBucketVersioning => (get, "/bkt?versioning", None),
        K::ListObjects => (get, "/bkt", None),
        K::ListObjectsV2 => (get, "/bkt?list-type=2", None),
        K::ListMultipartUploads => (get, "/bkt?uploads", None),
        K::ListObjectVersions => (get, "/bkt?versions", None),
        K::DeleteObjects => (post, "/bkt?delete", None),
        K::PostObject => (post, "/bkt", None),
        K::GetBucketAcl => (get, "/bkt?acl", None),
        K::PutBucketAcl => (put, "/bkt?acl", None),
        K::GetBucketEncryption => (get, "/bkt?encryption", None),
        K::GetBucketPolicyStatus => (get, "/bkt?policyStatus", None),
        K::GetPublicAccessBlock => (get, "/bkt?publicAccessBlock", None),
        K::GetBucketOwnershipControls => (get, "/bkt?ownershipControls", None),
        K::GetBucketCors => (get, "/bkt?cors", None),
        K::PutBucketCors => (put, "/bkt?cors", None),
        K::DeleteBucketCors => (delete, "/bkt?cors", None),
        K::CorsPreflight => (Method::OPTIONS, "/bkt/k", None),
        K::GetAbsentBucketConfig => (get, "/bkt?policy", None),
        K::PutObject => (put, "/bkt/k", None),
        K::CopyObject => (put, "/bkt/k", Some("/src/k")),
        K::GetObject => (get, "/bkt/k", None),
        K::HeadObject => (Method::HEAD, "/bkt/k", None),
        K::GetObjectAttributes => (get, "/bkt/k?attributes", None),
        K::GetObjectAcl => (get, "/bkt/k?acl", None),
        K::GetObjectTagging => (get, "/bkt/k?tagging", None),
        K::PutObjectTagging => (put, "/bkt/k?tagging", None),
        K::DeleteObjectTagging => (delete, "/bkt/k?tagging", None),
        K::PutObjectAcl => (put, "/bkt/k?acl", None),
        K::DeleteObject => (delete, "/bkt/k", None),
        K::CreateMultipartUpload => (post, "/bkt/k?uploads", None),
        K::UploadPart => (put, "/bkt/k?partNumber=1&uploadId=u", None),
        K::UploadPartCopy => (put, "/bkt/k?partNumber=1&uploadId=u", Some("/src/k")),
        K::CompleteMultipartUpload => (post, "/bkt/k?uploadId=u", None),
        K::AbortMultipartUpload => (delete, "/bkt/k?uploadId=u", None),
        K::ListParts => (get, "/bkt/k?uploadId=u", None),
        K::Unsupported => (get, "/bkt/k?retention", None),
    }
}

#[test]
fn every_kind_is_listed_once_and_routed_to() {
    let mut seen = std::collections::BTreeSet::new();
    for &kind in OperationKind::ALL {
        assert!(seen.insert(kind), "{kind:?} listed twice");
        let (method, path_and_query, copy_source) = route_of(kind);
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let routed = Operation::parse(
            &method,
            None,
            None,
            path,
            &Query::parse(query).unwrap_or_else(|e| panic!("{e}")),
            copy_source,
        )
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(routed.kind(), kind, "{method} {path_and_query}");
        assert_eq!(routed.is_write(), kind.is_write(), "{kind:?}");
        if !matches!(
            kind,
            OperationKind::GetAbsentBucketConfig | OperationKind::Unsupported
        ) {
            assert_eq!(routed.name(), kind.name());
        }
    }
    assert_eq!(OperationKind::ALL.len(), 41);
}
