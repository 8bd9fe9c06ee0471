//! SSE-C (server-side encryption with customer-provided keys), driven through the real binary:
//! aws-sdk-s3 over HTTPS for what clients do (single PUT, multipart, ranges, HEAD, copies
//! that add, change or drop a key, UploadPartCopy, listings), raw signed requests for what an
//! SDK will not send (malformed key headers, presigned URLs, plain HTTP), and a scan that the
//! customer key is stored nowhere.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ObjectAttributes};
use aws_sdk_s3::Client;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use coffre_conformance::{
    files_under, md5_base64, md5_hex, pseudo_random_bytes, sdk_error, send_request, TestServer,
};
use http::{HeaderValue, Method};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;

const MIB: usize = 1024 * 1024;
const SECURE_CONNECTION: &str =
    "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.";

/// A customer key as its three headers carry it.
struct CustomerKey {
    raw: [u8; 32],
    base64: String,
    md5: String,
}

impl CustomerKey {
    fn new(seed: u8) -> Self {
        let raw: [u8; 32] = std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8));
        CustomerKey {
            raw,
            base64: BASE64.encode(raw),
            md5: md5_base64(&raw),
        }
    }

    /// What must never be found at rest: the key, raw and base64, and its MD5.
    fn needles(&self) -> Vec<Vec<u8>> {
        let md5 = BASE64.decode(&self.md5).unwrap();
        vec![
            self.raw.to_vec(),
            self.base64.as_bytes().to_vec(),
            md5,
            self.md5.as_bytes().to_vec(),
        ]
    }
}

/// Sets the SSE-C headers of the object an SDK request writes or reads.
macro_rules! sse_c {
    ($builder:expr, $key:expr) => {
        $builder
            .sse_customer_algorithm("AES256")
            .sse_customer_key(&$key.base64)
            .sse_customer_key_md5(&$key.md5)
    };
}

/// Sets the SSE-C headers of a copy's source.
macro_rules! source_sse_c {
    ($builder:expr, $key:expr) => {
        $builder
            .copy_source_sse_customer_algorithm("AES256")
            .copy_source_sse_customer_key(&$key.base64)
            .copy_source_sse_customer_key_md5(&$key.md5)
    };
}

/// A server whose S3 listener serves TLS with a certificate of a CA made for the test, and an
/// SDK client trusting that CA only.
struct HttpsServer {
    server: TestServer,
    s3: Client,
    _certs: TempDir,
}

fn start_https() -> HttpsServer {
    let certs = tempfile::tempdir().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "coffre sse-c test CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    let (cert_file, key_file) = (certs.path().join("s3.crt"), certs.path().join("s3.key"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let toml = format!(
        "tls_cert_file = {:?}\ntls_key_file = {:?}\n",
        cert_file.display().to_string(),
        key_file.display().to_string()
    );
    let server = TestServer::start_with_config(&toml, &[]);
    assert!(
        server.endpoint.starts_with("https://"),
        "{}",
        server.endpoint
    );
    let s3 = server.s3_client_https(&ca.pem());
    HttpsServer {
        server,
        s3,
        _certs: certs,
    }
}

async fn put(
    s3: &Client,
    bucket: &str,
    key: &str,
    data: &[u8],
    sse: Option<&CustomerKey>,
) -> String {
    let request = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(data.to_vec()));
    let request = match sse {
        Some(k) => sse_c!(request, k),
        None => request,
    };
    let out = request.send().await.unwrap();
    match sse {
        Some(k) => {
            assert_eq!(out.sse_customer_algorithm(), Some("AES256"));
            assert_eq!(out.sse_customer_key_md5(), Some(k.md5.as_str()));
            assert_eq!(out.server_side_encryption(), None, "SSE-C is not SSE-S3");
        }
        None => assert_eq!(
            out.server_side_encryption().map(|s| s.as_str()),
            Some("AES256")
        ),
    }
    out.e_tag().unwrap().trim_matches('"').to_owned()
}

async fn get(s3: &Client, bucket: &str, key: &str, sse: Option<&CustomerKey>) -> Vec<u8> {
    let request = s3.get_object().bucket(bucket).key(key);
    let request = match sse {
        Some(k) => sse_c!(request, k),
        None => request,
    };
    let out = request.send().await.unwrap();
    if let Some(k) = sse {
        assert_eq!(out.sse_customer_algorithm(), Some("AES256"));
        assert_eq!(out.sse_customer_key_md5(), Some(k.md5.as_str()));
        assert_eq!(out.server_side_encryption(), None);
    }
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

/// The status and code of a GET that fails.
async fn get_error(
    s3: &Client,
    bucket: &str,
    key: &str,
    sse: Option<&CustomerKey>,
) -> (u16, String) {
    let request = s3.get_object().bucket(bucket).key(key);
    let request = match sse {
        Some(k) => sse_c!(request, k),
        None => request,
    };
    sdk_error(&request.send().await.expect_err("the GET succeeded"))
}

#[tokio::test]
async fn an_sse_c_object_reads_with_its_key_only() {
    let HttpsServer {
        server: _server,
        s3,
        ..
    } = start_https();
    let a = CustomerKey::new(1);
    let b = CustomerKey::new(2);
    s3.create_bucket().bucket("vault").send().await.unwrap();
    // Inline (in the metadata record) and in a data file.
    for (name, len) in [("small", 1000), ("large", 300 * 1024)] {
        let data = pseudo_random_bytes(len, len as u64);
        let etag = put(&s3, "vault", name, &data, Some(&a)).await;
        assert_ne!(
            etag,
            md5_hex(&data),
            "an SSE-C ETag is not the MD5 of the data"
        );
        assert_eq!(get(&s3, "vault", name, Some(&a)).await, data);

        let range = sse_c!(
            s3.get_object()
                .bucket("vault")
                .key(name)
                .range("bytes=100-599"),
            a
        )
        .send()
        .await
        .unwrap();
        assert_eq!(
            range.content_range(),
            Some(format!("bytes 100-599/{len}").as_str())
        );
        let bytes = range.body.collect().await.unwrap().into_bytes();
        assert_eq!(&bytes[..], &data[100..600]);

        let part = sse_c!(s3.get_object().bucket("vault").key(name).part_number(1), a)
            .send()
            .await
            .unwrap();
        assert_eq!(part.content_length(), Some(len as i64));

        let head = sse_c!(s3.head_object().bucket("vault").key(name), a)
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_length(), Some(len as i64));
        assert_eq!(
            head.e_tag().map(|e| e.trim_matches('"')),
            Some(etag.as_str())
        );
        assert_eq!(head.sse_customer_algorithm(), Some("AES256"));
        assert_eq!(head.sse_customer_key_md5(), Some(a.md5.as_str()));

        let attributes = sse_c!(
            s3.get_object_attributes()
                .bucket("vault")
                .key(name)
                .object_attributes(ObjectAttributes::ObjectSize)
                .object_attributes(ObjectAttributes::Etag),
            a
        )
        .send()
        .await
        .unwrap();
        assert_eq!(attributes.object_size(), Some(len as i64));
        assert_eq!(attributes.e_tag(), Some(etag.as_str()));

        // Without the key: 400 InvalidRequest; with another key: 403 AccessDenied.
        assert_eq!(
            get_error(&s3, "vault", name, None).await,
            (400, "InvalidRequest".to_owned())
        );
        assert_eq!(
            get_error(&s3, "vault", name, Some(&b)).await,
            (403, "AccessDenied".to_owned())
        );
        let head = s3.head_object().bucket("vault").key(name).send().await;
        assert_eq!(sdk_error(&head.expect_err("HEAD without the key")).0, 400);
        let head = sse_c!(s3.head_object().bucket("vault").key(name), b)
            .send()
            .await;
        assert_eq!(sdk_error(&head.expect_err("HEAD with another key")).0, 403);
        let attributes = s3
            .get_object_attributes()
            .bucket("vault")
            .key(name)
            .object_attributes(ObjectAttributes::ObjectSize)
            .send()
            .await;
        assert_eq!(
            sdk_error(&attributes.expect_err("attributes without the key")),
            (400, "InvalidRequest".to_owned())
        );
    }
    // A key for an object stored without one is refused, as AWS does.
    let plain = pseudo_random_bytes(5000, 9);
    put(&s3, "vault", "plain", &plain, None).await;
    assert_eq!(
        get_error(&s3, "vault", "plain", Some(&a)).await,
        (400, "InvalidRequest".to_owned())
    );
    assert_eq!(get(&s3, "vault", "plain", None).await, plain);

    // Listings show SSE-C objects without the key, and deletes need none.
    let listed = s3.list_objects_v2().bucket("vault").send().await.unwrap();
    let sizes: Vec<(String, i64)> = listed
        .contents()
        .iter()
        .map(|o| (o.key().unwrap().to_owned(), o.size().unwrap()))
        .collect();
    assert_eq!(
        sizes,
        [
            ("large".to_owned(), 300 * 1024),
            ("plain".to_owned(), 5000),
            ("small".to_owned(), 1000)
        ]
    );
    s3.delete_object()
        .bucket("vault")
        .key("small")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn every_part_of_an_sse_c_multipart_upload_needs_its_key() {
    let HttpsServer {
        server: _server,
        s3,
        ..
    } = start_https();
    let a = CustomerKey::new(3);
    let b = CustomerKey::new(4);
    s3.create_bucket().bucket("multipart").send().await.unwrap();
    let created = sse_c!(
        s3.create_multipart_upload().bucket("multipart").key("big"),
        a
    )
    .send()
    .await
    .unwrap();
    assert_eq!(created.sse_customer_algorithm(), Some("AES256"));
    assert_eq!(created.sse_customer_key_md5(), Some(a.md5.as_str()));
    let upload_id = created.upload_id().unwrap().to_owned();
    let parts = [
        pseudo_random_bytes(5 * MIB, 1),
        pseudo_random_bytes(1234, 2),
    ];

    // Without the key, or with another, a part is refused.
    let part = |n: i32, data: &[u8]| {
        s3.upload_part()
            .bucket("multipart")
            .key("big")
            .upload_id(&upload_id)
            .part_number(n)
            .body(ByteStream::from(data.to_vec()))
    };
    let refused = part(1, &parts[1])
        .send()
        .await
        .expect_err("a part without the key");
    assert_eq!(sdk_error(&refused), (400, "InvalidRequest".to_owned()));
    let refused = sse_c!(part(1, &parts[1]), b)
        .send()
        .await
        .expect_err("another key");
    assert_eq!(sdk_error(&refused), (400, "InvalidRequest".to_owned()));

    let mut completed = Vec::new();
    for (n, data) in (1..).zip(&parts) {
        let out = sse_c!(part(n, data), a).send().await.unwrap();
        assert_eq!(out.sse_customer_key_md5(), Some(a.md5.as_str()));
        let etag = out.e_tag().unwrap().to_owned();
        assert_ne!(etag.trim_matches('"'), md5_hex(data));
        completed.push(CompletedPart::builder().part_number(n).e_tag(etag).build());
    }
    // ListParts needs no key.
    let listed = s3
        .list_parts()
        .bucket("multipart")
        .key("big")
        .upload_id(&upload_id)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.parts().len(), 2);
    let done = s3
        .complete_multipart_upload()
        .bucket("multipart")
        .key("big")
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(done.e_tag().unwrap().trim_matches('"').ends_with("-2"));

    let whole = [parts[0].clone(), parts[1].clone()].concat();
    assert_eq!(get(&s3, "multipart", "big", Some(&a)).await, whole);
    let from = 5 * MIB - 10;
    let across = sse_c!(
        s3.get_object()
            .bucket("multipart")
            .key("big")
            .range(format!("bytes={from}-{}", from + 19)),
        a
    )
    .send()
    .await
    .unwrap();
    let bytes = across.body.collect().await.unwrap().into_bytes();
    assert_eq!(&bytes[..], &whole[from..from + 20]);
    let second = sse_c!(
        s3.get_object()
            .bucket("multipart")
            .key("big")
            .part_number(2),
        a
    )
    .send()
    .await
    .unwrap();
    assert_eq!(second.parts_count(), Some(2));
    assert_eq!(
        second.body.collect().await.unwrap().into_bytes().to_vec(),
        parts[1]
    );
    assert_eq!(
        get_error(&s3, "multipart", "big", Some(&b)).await,
        (403, "AccessDenied".to_owned())
    );
    assert_eq!(
        get_error(&s3, "multipart", "big", None).await,
        (400, "InvalidRequest".to_owned())
    );
}

#[tokio::test]
async fn copies_add_change_and_drop_a_customer_key() {
    let HttpsServer { server, s3, .. } = start_https();
    let a = CustomerKey::new(5);
    let b = CustomerKey::new(6);
    s3.create_bucket().bucket("src").send().await.unwrap();
    s3.create_bucket().bucket("dst").send().await.unwrap();
    let data = pseudo_random_bytes(200 * 1024, 7);
    put(&s3, "src", "secret", &data, Some(&a)).await;
    put(&s3, "src", "open", &data, None).await;

    // SSE-C -> SSE-C under another key.
    let copy = sse_c!(
        source_sse_c!(
            s3.copy_object()
                .bucket("dst")
                .key("rekeyed")
                .copy_source("src/secret"),
            a
        ),
        b
    )
    .send()
    .await
    .unwrap();
    assert_eq!(copy.sse_customer_key_md5(), Some(b.md5.as_str()));
    assert_eq!(copy.server_side_encryption(), None);
    assert_eq!(get(&s3, "dst", "rekeyed", Some(&b)).await, data);
    assert_eq!(
        get_error(&s3, "dst", "rekeyed", Some(&a)).await,
        (403, "AccessDenied".to_owned())
    );

    // SSE-C -> SSE-S3: the copy reads without a key, and its ETag is the MD5 again.
    let copy = source_sse_c!(
        s3.copy_object()
            .bucket("dst")
            .key("dropped")
            .copy_source("src/secret"),
        a
    )
    .send()
    .await
    .unwrap();
    assert_eq!(
        copy.server_side_encryption().map(|s| s.as_str()),
        Some("AES256")
    );
    assert_eq!(
        copy.copy_object_result()
            .unwrap()
            .e_tag()
            .map(|e| e.trim_matches('"')),
        Some(md5_hex(&data).as_str())
    );
    assert_eq!(get(&s3, "dst", "dropped", None).await, data);

    // SSE-S3 -> SSE-C.
    sse_c!(
        s3.copy_object()
            .bucket("dst")
            .key("added")
            .copy_source("src/open"),
        a
    )
    .send()
    .await
    .unwrap();
    assert_eq!(get(&s3, "dst", "added", Some(&a)).await, data);
    assert_eq!(
        get_error(&s3, "dst", "added", None).await,
        (400, "InvalidRequest".to_owned())
    );

    // An SSE-C source needs its key; a plain one refuses one.
    let refused = s3
        .copy_object()
        .bucket("dst")
        .key("x")
        .copy_source("src/secret")
        .send()
        .await
        .expect_err("a copy without the source key");
    assert_eq!(sdk_error(&refused), (400, "InvalidRequest".to_owned()));
    let refused = source_sse_c!(
        s3.copy_object()
            .bucket("dst")
            .key("x")
            .copy_source("src/secret"),
        b
    )
    .send()
    .await
    .expect_err("a copy with another source key");
    assert_eq!(sdk_error(&refused).0, 403);
    let refused = source_sse_c!(
        s3.copy_object()
            .bucket("dst")
            .key("x")
            .copy_source("src/open"),
        a
    )
    .send()
    .await
    .expect_err("a source key for a plain source");
    assert_eq!(sdk_error(&refused), (400, "InvalidRequest".to_owned()));

    // Re-keying in place is a change of encryption, so it is allowed.
    sse_c!(
        source_sse_c!(
            s3.copy_object()
                .bucket("src")
                .key("secret")
                .copy_source("src/secret"),
            a
        ),
        b
    )
    .send()
    .await
    .unwrap();
    assert_eq!(get(&s3, "src", "secret", Some(&b)).await, data);

    // UploadPartCopy from an SSE-C source, into an SSE-C upload and into a plain one.
    for (target, key) in [("copied-sse-c", Some(&a)), ("copied-plain", None)] {
        let create = s3.create_multipart_upload().bucket("dst").key(target);
        let create = match key {
            Some(k) => sse_c!(create, k),
            None => create,
        };
        let upload_id = create.send().await.unwrap().upload_id().unwrap().to_owned();
        let copy = source_sse_c!(
            s3.upload_part_copy()
                .bucket("dst")
                .key(target)
                .upload_id(&upload_id)
                .part_number(1)
                .copy_source("src/secret")
                .copy_source_range("bytes=1000-60999"),
            b
        );
        let copy = match key {
            Some(k) => sse_c!(copy, k),
            None => copy,
        };
        let out = copy.send().await.unwrap();
        let etag = out.copy_part_result().unwrap().e_tag().unwrap().to_owned();
        s3.complete_multipart_upload()
            .bucket("dst")
            .key(target)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .parts(CompletedPart::builder().part_number(1).e_tag(etag).build())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(get(&s3, "dst", target, key).await, data[1000..61000]);
    }
    // An UploadPartCopy into an SSE-C upload needs the upload's key.
    let upload_id = sse_c!(s3.create_multipart_upload().bucket("dst").key("strict"), a)
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let refused = s3
        .upload_part_copy()
        .bucket("dst")
        .key("strict")
        .upload_id(&upload_id)
        .part_number(1)
        .copy_source("src/open")
        .send()
        .await
        .expect_err("a part copy without the upload's key");
    assert_eq!(sdk_error(&refused), (400, "InvalidRequest".to_owned()));
    drop(server);
}

#[tokio::test]
async fn the_customer_key_is_stored_nowhere() {
    let HttpsServer { mut server, s3, .. } = start_https();
    let key = CustomerKey::new(8);
    s3.create_bucket().bucket("scan").send().await.unwrap();
    put(
        &s3,
        "scan",
        "inline-object",
        b"short and secret",
        Some(&key),
    )
    .await;
    put(
        &s3,
        "scan",
        "file-object",
        &pseudo_random_bytes(200 * 1024, 3),
        Some(&key),
    )
    .await;
    let upload_id = sse_c!(
        s3.create_multipart_upload()
            .bucket("scan")
            .key("upload-object"),
        key
    )
    .send()
    .await
    .unwrap()
    .upload_id()
    .unwrap()
    .to_owned();
    sse_c!(
        s3.upload_part()
            .bucket("scan")
            .key("upload-object")
            .upload_id(&upload_id)
            .part_number(1)
            .body(ByteStream::from(vec![5u8; 1000])),
        key
    )
    .send()
    .await
    .unwrap();
    // RocksDB flushes its memtables and closes its WAL: everything is in files.
    server.stop();
    let files = files_under(server.data_dir());
    let leaks = scan(&files, &key.needles());
    assert!(leaks.is_empty(), "the customer key is at rest: {leaks:?}");
    // Control: the scan does find what is stored in the clear (object names are keys).
    let control = scan(&files, &[b"inline-object".to_vec()]);
    assert!(!control.is_empty(), "the scan found nothing at all");
}

#[tokio::test]
async fn sse_c_over_plain_http_is_refused() {
    let server = TestServer::start();
    if server.is_https() {
        eprintln!("skipped: the harness serves HTTPS ({})", server.endpoint);
        return;
    }
    server
        .request(Method::PUT, "/plain")
        .send()
        .await
        .assert_status(200);
    let key = CustomerKey::new(9);
    for (name, value) in [
        ("x-amz-server-side-encryption-customer-algorithm", "AES256"),
        (
            "x-amz-server-side-encryption-customer-key",
            key.base64.as_str(),
        ),
        (
            "x-amz-copy-source-server-side-encryption-customer-key-MD5",
            key.md5.as_str(),
        ),
    ] {
        let response = server
            .request(Method::PUT, "/plain/object")
            .header(name, value)
            .body("data")
            .send()
            .await;
        response.assert_error(400, "InvalidRequest");
        assert!(
            response.text().contains(SECURE_CONNECTION),
            "{}",
            response.text()
        );
    }
    let response = with_key(server.request(Method::GET, "/plain/object"), &key)
        .send()
        .await;
    response.assert_error(400, "InvalidRequest");
    // Nothing was stored.
    server
        .request(Method::GET, "/plain/object")
        .send()
        .await
        .assert_error(404, "NoSuchKey");
}

fn with_key(
    request: coffre_conformance::RawRequest,
    key: &CustomerKey,
) -> coffre_conformance::RawRequest {
    request
        .header("x-amz-server-side-encryption-customer-algorithm", "AES256")
        .header("x-amz-server-side-encryption-customer-key", &key.base64)
        .header("x-amz-server-side-encryption-customer-key-MD5", &key.md5)
}

/// A server that accepts SSE-C over plain HTTP because it is declared behind a trusted TLS
/// terminator (over the harness's HTTPS transport it serves TLS, which is as secure), with a
/// bucket `vault`.
async fn start_behind_terminator() -> TestServer {
    let server = TestServer::start_with_config("trusted_tls_terminator = true\n", &[]);
    server
        .request(Method::PUT, "/vault")
        .send()
        .await
        .assert_status(200);
    server
}

#[tokio::test]
async fn plain_http_behind_a_trusted_terminator_is_accepted() {
    let server = start_behind_terminator().await;
    let key = CustomerKey::new(10);
    let put = with_key(server.request(Method::PUT, "/vault/object"), &key)
        .body("behind the terminator")
        .send()
        .await;
    put.assert_status(200);
    assert_eq!(
        put.header("x-amz-server-side-encryption-customer-algorithm"),
        Some("AES256")
    );
    assert_eq!(
        put.header("x-amz-server-side-encryption-customer-key-MD5"),
        Some(key.md5.as_str())
    );
    assert_eq!(put.header("x-amz-server-side-encryption"), None);
    let got = with_key(server.request(Method::GET, "/vault/object"), &key)
        .send()
        .await;
    got.assert_status(200);
    assert_eq!(got.text(), "behind the terminator");
    let wrong = with_key(
        server.request(Method::GET, "/vault/object"),
        &CustomerKey::new(11),
    )
    .send()
    .await;
    wrong.assert_error(403, "AccessDenied");
    assert!(
        wrong.text().contains("must provide the correct secret key"),
        "{}",
        wrong.text()
    );
    let missing = server.request(Method::GET, "/vault/object").send().await;
    missing.assert_error(400, "InvalidRequest");
    assert!(
        missing
            .text()
            .contains("The object was stored using a form of Server Side Encryption"),
        "{}",
        missing.text()
    );
}

/// (name suffix, value) pairs of SSE-C headers.
type Headers<'a> = &'a [(&'a str, &'a str)];

#[tokio::test]
async fn malformed_key_headers_get_the_aws_errors() {
    let server = start_behind_terminator().await;
    let key = CustomerKey::new(12);
    let short = BASE64.encode([1u8; 16]);
    let short_md5 = md5_base64(&[1u8; 16]);
    let other_md5 = CustomerKey::new(13).md5;
    let cases: [(Headers, u16, &str, &str); 7] = [
        (
            &[("key", &key.base64), ("key-MD5", &key.md5)],
            400,
            "InvalidArgument",
            "must provide a valid encryption algorithm.",
        ),
        (
            &[
                ("algorithm", "AES128"),
                ("key", &key.base64),
                ("key-MD5", &key.md5),
            ],
            400,
            "InvalidEncryptionAlgorithmError",
            "Supported value: AES256.",
        ),
        (
            &[("algorithm", "AES256"), ("key-MD5", &key.md5)],
            400,
            "InvalidArgument",
            "must provide an appropriate secret key.",
        ),
        (
            &[("algorithm", "AES256"), ("key", &key.base64)],
            400,
            "InvalidArgument",
            "must provide the client calculated MD5 of the secret key.",
        ),
        (
            &[
                ("algorithm", "AES256"),
                ("key", &key.base64),
                ("key-MD5", &other_md5),
            ],
            400,
            "InvalidArgument",
            "The calculated MD5 hash of the key did not match the hash that was provided.",
        ),
        (
            &[
                ("algorithm", "AES256"),
                ("key", &short),
                ("key-MD5", &short_md5),
            ],
            400,
            "InvalidArgument",
            "The secret key was invalid for the specified algorithm.",
        ),
        (
            &[
                ("algorithm", "AES256"),
                ("key", &key.base64),
                ("key-MD5", &key.md5),
                ("SSE", "AES256"),
            ],
            400,
            "InvalidArgument",
            "incompatible with the encryption method specified",
        ),
    ];
    for (headers, status, code, message) in cases {
        let mut request = server.request(Method::PUT, "/vault/bad").body("x");
        for (name, value) in headers {
            let name = match *name {
                "SSE" => "x-amz-server-side-encryption".to_owned(),
                suffix => format!("x-amz-server-side-encryption-customer-{suffix}"),
            };
            request = request.header(&name, value);
        }
        let response = request.send().await;
        response.assert_error(status, code);
        assert!(response.text().contains(message), "{}", response.text());
        assert!(
            response
                .text()
                .contains("<ArgumentName>x-amz-server-side-encryption</ArgumentName>"),
            "{}",
            response.text()
        );
    }
    server
        .request(Method::GET, "/vault/bad")
        .send()
        .await
        .assert_error(404, "NoSuchKey");
}

#[tokio::test]
async fn presigned_gets_take_the_key_in_headers() {
    let server = start_behind_terminator().await;
    let key = CustomerKey::new(14);
    with_key(server.request(Method::PUT, "/vault/shared"), &key)
        .body("presigned")
        .send()
        .await
        .assert_status(200);
    let expires = std::time::Duration::from_secs(300);
    // Every header signed into the URL.
    let got = with_key(server.request(Method::GET, "/vault/shared"), &key)
        .presigned(expires)
        .send()
        .await;
    got.assert_status(200);
    assert_eq!(got.text(), "presigned");
    // The URL signs the algorithm; whoever uses it adds the key and its MD5 (AWS's flow).
    let mut request = server
        .request(Method::GET, "/vault/shared")
        .header("x-amz-server-side-encryption-customer-algorithm", "AES256")
        .presigned(expires)
        .build();
    let headers = request.headers_mut();
    headers.insert(
        "x-amz-server-side-encryption-customer-key",
        HeaderValue::from_str(&key.base64).unwrap(),
    );
    headers.insert(
        "x-amz-server-side-encryption-customer-key-MD5",
        HeaderValue::from_str(&key.md5).unwrap(),
    );
    let got = send_request(request).await;
    got.assert_status(200);
    assert_eq!(got.text(), "presigned");
    // An unsigned algorithm is not accepted on a presigned URL.
    let mut request = server
        .request(Method::GET, "/vault/shared")
        .presigned(expires)
        .build();
    let headers = request.headers_mut();
    headers.insert(
        "x-amz-server-side-encryption-customer-algorithm",
        HeaderValue::from_static("AES256"),
    );
    headers.insert(
        "x-amz-server-side-encryption-customer-key",
        HeaderValue::from_str(&key.base64).unwrap(),
    );
    headers.insert(
        "x-amz-server-side-encryption-customer-key-MD5",
        HeaderValue::from_str(&key.md5).unwrap(),
    );
    send_request(request)
        .await
        .assert_error(403, "AccessDenied");
}

/// The (needle index, file) pairs where a needle occurs. Candidates are found by their first
/// 8 bytes, so that the scan stays fast in a debug build.
fn scan(files: &[PathBuf], needles: &[Vec<u8>]) -> Vec<(usize, PathBuf)> {
    let prefixes: Vec<[u8; 8]> = needles.iter().map(|n| n[..8].try_into().unwrap()).collect();
    let mut hits = Vec::new();
    for file in files {
        let bytes = std::fs::read(file).unwrap_or_default();
        for (i, needle) in needles.iter().enumerate() {
            let found = bytes
                .windows(8)
                .enumerate()
                .any(|(at, w)| w == prefixes[i] && bytes[at..].starts_with(needle));
            if found {
                hits.push((i, file.clone()));
            }
        }
    }
    hits
}
