//! Tenant isolation, proven against the real server: two tenants A and B with buckets of the
//! same names; every S3 operation, signed by B in every way (Authorization header, presigned
//! URL, aws-chunked streaming body), aimed at A's buckets, objects and upload ids, fails
//! exactly as it would for something that never existed and changes nothing. Then: presigned
//! URLs cannot be replayed elsewhere, suspension and deletion lock a tenant out at once,
//! roles and bucket limits hold, quotas refuse with nothing stored, placement pins data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use coffre_conformance::{
    pseudo_random_bytes, send_request, AwsChunked, KeyPair, RawRequest, RawResponse, TestServer,
};
use http::Method;
use serde_json::json;

const SECRET: &[u8] = b"tenant A's secret data";
/// A well-formed upload id that names no upload.
const NO_UPLOAD: &str = "0123456789abcdef0123456789abcdef";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Header,
    Presigned,
    Streaming,
}

/// One S3 request, independent of who signs it and how.
#[derive(Clone, Debug)]
struct Probe {
    name: &'static str,
    method: Method,
    path: String,
    query: Vec<(&'static str, Option<String>)>,
    body: Bytes,
}

impl Probe {
    fn new(name: &'static str, method: Method, path: &str) -> Self {
        Probe {
            name,
            method,
            path: path.to_string(),
            query: Vec::new(),
            body: Bytes::new(),
        }
    }

    fn query(mut self, name: &'static str, value: &str) -> Self {
        self.query.push((name, Some(value.to_string())));
        self
    }

    fn flag(mut self, name: &'static str) -> Self {
        self.query.push((name, None));
        self
    }

    fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    fn request(&self, server: &TestServer, keys: &KeyPair, mode: Mode) -> RawRequest {
        let mut request = server
            .request(self.method.clone(), &self.path)
            .access_key(&keys.access_key)
            .secret_key(&keys.secret_key)
            .body(self.body.clone());
        for (name, value) in &self.query {
            request = match value {
                Some(value) => request.query(name, value),
                None => request.query_flag(name),
            };
        }
        match mode {
            Mode::Header => request,
            Mode::Presigned => request.presigned(Duration::from_secs(300)),
            Mode::Streaming => request.aws_chunked(AwsChunked::signed(1024)),
        }
    }
}

/// Every operation Coffre supports, on bucket `bucket`, object `key` and upload `upload`.
fn every_operation(bucket: &str, key: &str, upload: &str) -> Vec<Probe> {
    let object = format!("/{bucket}/{key}");
    let bucket_path = format!("/{bucket}");
    let complete = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"{}\"</ETag></Part>\
         </CompleteMultipartUpload>",
        coffre_conformance::md5_hex(b"part")
    );
    vec![
        Probe::new("HeadBucket", Method::HEAD, &bucket_path),
        Probe::new("GetBucketLocation", Method::GET, &bucket_path).flag("location"),
        Probe::new("GetBucketVersioning", Method::GET, &bucket_path).flag("versioning"),
        Probe::new("ListObjects", Method::GET, &bucket_path),
        Probe::new("ListObjectsV2", Method::GET, &bucket_path).query("list-type", "2"),
        Probe::new("ListMultipartUploads", Method::GET, &bucket_path).flag("uploads"),
        Probe::new("DeleteBucket", Method::DELETE, &bucket_path),
        Probe::new("GetObject", Method::GET, &object),
        Probe::new("HeadObject", Method::HEAD, &object),
        Probe::new("PutObject", Method::PUT, &object).body("overwritten by B"),
        Probe::new("DeleteObject", Method::DELETE, &object),
        Probe::new("CreateMultipartUpload", Method::POST, &object).flag("uploads"),
        Probe::new("UploadPart", Method::PUT, &object)
            .query("partNumber", "1")
            .query("uploadId", upload)
            .body("part written by B"),
        Probe::new("ListParts", Method::GET, &object).query("uploadId", upload),
        Probe::new("CompleteMultipartUpload", Method::POST, &object)
            .query("uploadId", upload)
            .body(complete),
        Probe::new("AbortMultipartUpload", Method::DELETE, &object).query("uploadId", upload),
    ]
}

fn outcome(response: &RawResponse) -> (u16, Option<String>) {
    (response.status.as_u16(), response.error_code())
}

/// Two tenants on one server, each with an admin key; both own `shared`, A also owns
/// `private-a` (which B does not). A has objects in both and an open upload in `shared`.
struct Scene {
    server: TestServer,
    a: KeyPair,
    b: KeyPair,
    upload: String,
}

async fn scene() -> Scene {
    let server = TestServer::start();
    let admin = server.admin();
    let a = admin.tenant_with_key("tenant-a").await;
    let b = admin.tenant_with_key("tenant-b").await;
    let send = |keys: &KeyPair, method: Method, path: &str| {
        server
            .request(method, path)
            .access_key(&keys.access_key)
            .secret_key(&keys.secret_key)
    };
    for bucket in ["/shared", "/private-a"] {
        send(&a, Method::PUT, bucket)
            .send()
            .await
            .assert_status(200);
        send(&a, Method::PUT, &format!("{bucket}/secret.txt"))
            .body(SECRET)
            .send()
            .await
            .assert_status(200);
    }
    send(&b, Method::PUT, "/shared")
        .send()
        .await
        .assert_status(200);
    let created = send(&a, Method::POST, "/shared/mp")
        .query_flag("uploads")
        .send()
        .await;
    created.assert_status(200);
    let upload = created.xml_values("UploadId").remove(0);
    send(&a, Method::PUT, "/shared/mp")
        .query("partNumber", "1")
        .query("uploadId", &upload)
        .body("part")
        .send()
        .await
        .assert_status(200);
    Scene {
        server,
        a,
        b,
        upload,
    }
}

impl Scene {
    fn as_tenant(&self, keys: &KeyPair, method: Method, path: &str) -> RawRequest {
        self.server
            .request(method, path)
            .access_key(&keys.access_key)
            .secret_key(&keys.secret_key)
    }

    /// Everything A can see: buckets, objects with their bytes, uploads and parts.
    async fn a_state(&self) -> String {
        let mut state = String::new();
        let buckets = self.as_tenant(&self.a, Method::GET, "/").send().await;
        buckets.assert_status(200);
        for bucket in buckets.xml_values("Name") {
            let listing = self
                .as_tenant(&self.a, Method::GET, &format!("/{bucket}"))
                .query("list-type", "2")
                .send()
                .await;
            state += &format!("bucket {bucket}: {:?}\n", listing.xml_values("ETag"));
            for key in listing.xml_values("Key") {
                let object = self
                    .as_tenant(&self.a, Method::GET, &format!("/{bucket}/{key}"))
                    .send()
                    .await;
                state += &format!("  {key}: {:?}\n", object.body);
            }
            let uploads = self
                .as_tenant(&self.a, Method::GET, &format!("/{bucket}"))
                .query_flag("uploads")
                .send()
                .await;
            state += &format!("  uploads: {:?}\n", uploads.xml_values("UploadId"));
        }
        let parts = self
            .as_tenant(&self.a, Method::GET, "/shared/mp")
            .query("uploadId", &self.upload)
            .send()
            .await;
        state += &format!("parts: {:?}\n", parts.xml_values("ETag"));
        state
    }
}

#[tokio::test]
async fn b_cannot_reach_or_detect_anything_of_a() {
    let scene = scene().await;
    let before = scene.a_state().await;
    assert!(
        before.contains("secret.txt") && before.contains(&scene.upload),
        "{before}"
    );

    // (A's resource, a twin that never existed): B must see the same answer for both.
    let mut pairs = Vec::new();
    // A bucket only A has.
    pairs.extend(
        every_operation("private-a", "secret.txt", &scene.upload)
            .into_iter()
            .zip(every_operation("never-existed", "secret.txt", NO_UPLOAD)),
    );
    // A bucket both have: A's objects and upload ids are not in B's.
    pairs.extend(
        every_operation("shared", "secret.txt", &scene.upload)
            .into_iter()
            .zip(every_operation("shared", "never.txt", NO_UPLOAD))
            .filter(|(probe, _)| {
                !matches!(
                    probe.name,
                    // These act on B's own `shared` or create things in it: below.
                    "PutObject"
                        | "CreateMultipartUpload"
                        | "DeleteBucket"
                        | "HeadBucket"
                        | "GetBucketLocation"
                        | "GetBucketVersioning"
                )
            }),
    );
    // A's upload id under A's object key in B's own bucket.
    pairs.extend(
        every_operation("shared", "mp", &scene.upload)
            .into_iter()
            .zip(every_operation("shared", "mp", NO_UPLOAD))
            .filter(|(probe, _)| probe.query.iter().any(|(n, _)| *n == "uploadId")),
    );

    let mut checked = 0;
    for (against_a, twin) in &pairs {
        for mode in [Mode::Header, Mode::Presigned, Mode::Streaming] {
            if mode == Mode::Streaming && against_a.method != Method::PUT {
                continue;
            }
            let response = against_a
                .request(&scene.server, &scene.b, mode)
                .send()
                .await;
            let reference = twin.request(&scene.server, &scene.b, mode).send().await;
            assert_eq!(
                outcome(&response),
                outcome(&reference),
                "{} by B ({mode:?}) on {} {:?} answers differently from the same on something \
                 that never existed: {} vs {}",
                against_a.name,
                against_a.path,
                against_a.query,
                response.text(),
                reference.text()
            );
            assert!(
                !response.status.is_success()
                    || matches!(
                        against_a.name,
                        "DeleteObject" | "ListObjects" | "ListObjectsV2" | "ListMultipartUploads"
                    ),
                "{} by B ({mode:?}) on {} succeeded: {}",
                against_a.name,
                against_a.path,
                response.text()
            );
            assert!(
                !response.body.windows(SECRET.len()).any(|w| w == SECRET),
                "{} leaked A's data",
                against_a.name
            );
            checked += 1;
        }
    }
    assert!(checked > 60, "only {checked} probes ran");

    // B's listings of its own `shared` show nothing of A's.
    let listing = scene
        .as_tenant(&scene.b, Method::GET, "/shared")
        .query("list-type", "2")
        .send()
        .await;
    assert_eq!(listing.xml_values("Key"), Vec::<String>::new());
    let uploads = scene
        .as_tenant(&scene.b, Method::GET, "/shared")
        .query_flag("uploads")
        .send()
        .await;
    assert_eq!(uploads.xml_values("UploadId"), Vec::<String>::new());
    let buckets = scene.as_tenant(&scene.b, Method::GET, "/").send().await;
    assert_eq!(buckets.xml_values("Name"), ["shared"]);

    assert_eq!(scene.a_state().await, before, "B changed something of A's");

    // Writes B may make land in B's own namespace, never in A's.
    for mode in [Mode::Header, Mode::Presigned, Mode::Streaming] {
        Probe::new("PutObject", Method::PUT, "/shared/secret.txt")
            .body("B's own")
            .request(&scene.server, &scene.b, mode)
            .send()
            .await
            .assert_status(200);
    }
    scene
        .as_tenant(&scene.b, Method::PUT, "/private-a")
        .send()
        .await
        .assert_status(200);
    scene
        .as_tenant(&scene.b, Method::DELETE, "/private-a")
        .send()
        .await
        .assert_status(204);
    assert_eq!(scene.a_state().await, before, "B's own writes changed A's");
}

#[tokio::test]
async fn a_presigned_url_cannot_be_replayed_elsewhere() {
    let scene = scene().await;
    let before = scene.a_state().await;
    let url = scene
        .as_tenant(&scene.a, Method::GET, "/shared/secret.txt")
        .presigned(Duration::from_secs(300))
        .presigned_url();
    let get = |url: &str, method: Method| {
        let mut request = scene
            .as_tenant(&scene.a, Method::GET, "/")
            .anonymous()
            .build();
        *request.uri_mut() = url.parse().unwrap();
        *request.method_mut() = method;
        send_request(request)
    };
    let original = get(&url, Method::GET).await;
    original.assert_status(200);
    assert_eq!(&original.body[..], SECRET);

    for (what, replayed, method) in [
        (
            "another bucket",
            url.replace("/shared/", "/private-a/"),
            Method::GET,
        ),
        (
            "another key",
            url.replace("/secret.txt", "/mp"),
            Method::GET,
        ),
        ("another method (PUT)", url.clone(), Method::PUT),
        ("another method (DELETE)", url.clone(), Method::DELETE),
        ("another method (HEAD)", url.clone(), Method::HEAD),
    ] {
        assert_ne!(replayed, "", "{what}");
        let response = get(&replayed, method).await;
        assert_eq!(response.status.as_u16(), 403, "{what}: {}", response.text());
        if response.error_code().is_some() {
            assert_eq!(
                response.error_code().as_deref(),
                Some("SignatureDoesNotMatch"),
                "{what}"
            );
        }
    }
    assert_eq!(scene.a_state().await, before);
}

#[tokio::test]
async fn a_suspended_tenant_is_locked_out_and_keeps_its_data() {
    let scene = scene().await;
    let admin = scene.server.admin();
    let before = scene.a_state().await;
    admin
        .send(Method::POST, "/admin/v1/tenants/tenant-a/suspend", None)
        .await
        .assert_status(200);
    for mode in [Mode::Header, Mode::Presigned] {
        for probe in every_operation("shared", "secret.txt", &scene.upload) {
            let response = probe.request(&scene.server, &scene.a, mode).send().await;
            assert_eq!(
                response.status.as_u16(),
                403,
                "{} ({mode:?}) by a suspended tenant: {}",
                probe.name,
                response.text()
            );
            if probe.method != Method::HEAD {
                assert_eq!(response.error_code().as_deref(), Some("AccessDenied"));
            }
        }
    }
    scene
        .as_tenant(&scene.a, Method::GET, "/")
        .send()
        .await
        .assert_error(403, "AccessDenied");
    // B is not affected.
    scene
        .as_tenant(&scene.b, Method::GET, "/")
        .send()
        .await
        .assert_status(200);
    admin
        .send(Method::POST, "/admin/v1/tenants/tenant-a/resume", None)
        .await
        .assert_status(200);
    assert_eq!(scene.a_state().await, before, "suspension changed data");
}

#[tokio::test]
async fn a_deleted_tenants_keys_stop_at_once() {
    let scene = scene().await;
    let admin = scene.server.admin();
    admin
        .send(Method::DELETE, "/admin/v1/tenants/tenant-a", None)
        .await
        .assert_error(409, "TenantHasBuckets");
    scene
        .as_tenant(&scene.a, Method::GET, "/shared/secret.txt")
        .send()
        .await
        .assert_status(200);
    // A presigned URL made before the deletion dies with it.
    let url = scene
        .as_tenant(&scene.a, Method::GET, "/shared/secret.txt")
        .presigned(Duration::from_secs(300))
        .presigned_url();

    admin
        .send(
            Method::DELETE,
            "/admin/v1/tenants/tenant-a?force=true",
            None,
        )
        .await
        .assert_status(204);
    scene
        .as_tenant(&scene.a, Method::GET, "/shared/secret.txt")
        .send()
        .await
        .assert_error(403, "InvalidAccessKeyId");
    let mut request = scene
        .as_tenant(&scene.a, Method::GET, "/")
        .anonymous()
        .build();
    *request.uri_mut() = url.parse().unwrap();
    assert_eq!(send_request(request).await.status.as_u16(), 403);
    admin
        .tenant("tenant-a")
        .await
        .assert_error(404, "NoSuchTenant");

    // B keeps its bucket of the same name; a new tenant of the old name starts empty.
    scene
        .as_tenant(&scene.b, Method::HEAD, "/shared")
        .send()
        .await
        .assert_status(200);
    let again = admin.tenant_with_key("tenant-a").await;
    let buckets = scene.as_tenant(&again, Method::GET, "/").send().await;
    assert_eq!(buckets.xml_values("Name"), Vec::<String>::new());
}

#[tokio::test]
async fn a_read_only_key_cannot_write() {
    let scene = scene().await;
    let admin = scene.server.admin();
    let reader = admin.create_key("tenant-a", "read-only", None).await;
    let before = scene.a_state().await;
    let writes = [
        "PutObject",
        "DeleteObject",
        "DeleteBucket",
        "CreateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
        "AbortMultipartUpload",
    ];
    // Upload operations name the upload's own key, so that every read succeeds.
    let probes = every_operation("shared", "secret.txt", &scene.upload)
        .into_iter()
        .filter(|p| !p.query.iter().any(|(n, _)| *n == "uploadId"))
        .chain(
            every_operation("shared", "mp", &scene.upload)
                .into_iter()
                .filter(|p| p.query.iter().any(|(n, _)| *n == "uploadId")),
        );
    for probe in probes {
        let response = probe
            .request(&scene.server, &reader, Mode::Header)
            .send()
            .await;
        if writes.contains(&probe.name) {
            response.assert_error(403, "AccessDenied");
        } else {
            assert!(
                response.status.is_success(),
                "{} by a read-only key: {}",
                probe.name,
                response.text()
            );
        }
    }
    scene
        .as_tenant(&reader, Method::PUT, "/new-bucket")
        .send()
        .await
        .assert_error(403, "AccessDenied");
    let streamed = Probe::new("PutObject", Method::PUT, "/shared/x")
        .body("data")
        .request(&scene.server, &reader, Mode::Streaming)
        .send()
        .await;
    streamed.assert_error(403, "AccessDenied");
    assert_eq!(scene.a_state().await, before);
}

#[tokio::test]
async fn a_bucket_limited_key_sees_only_its_buckets() {
    let scene = scene().await;
    let admin = scene.server.admin();
    let limited = admin
        .create_key("tenant-a", "read-write", Some(&["shared"]))
        .await;
    let buckets = scene.as_tenant(&limited, Method::GET, "/").send().await;
    assert_eq!(buckets.xml_values("Name"), ["shared"]);
    for probe in every_operation("private-a", "secret.txt", &scene.upload) {
        for mode in [Mode::Header, Mode::Presigned] {
            let response = probe.request(&scene.server, &limited, mode).send().await;
            assert_eq!(
                response.status.as_u16(),
                403,
                "{} on another bucket",
                probe.name
            );
        }
    }
    scene
        .as_tenant(&limited, Method::PUT, "/another")
        .send()
        .await
        .assert_error(403, "AccessDenied");
    let own = scene
        .as_tenant(&limited, Method::GET, "/shared/secret.txt")
        .send()
        .await;
    own.assert_status(200);
    assert_eq!(&own.body[..], SECRET);
}

/// Data files of `tenant_id` under an array root (temporary files included).
fn data_files(array: &Path, tenant_id: &str) -> Vec<PathBuf> {
    fn walk(path: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&array.join(tenant_id), &mut out);
    out.sort();
    out
}

#[tokio::test]
async fn quotas_refuse_with_nothing_stored() {
    let server = TestServer::start();
    let admin = server.admin();
    let tenant = admin
        .create_tenant(json!({"name": "small", "quotas": {"bytes": 300_000, "objects": 3}}))
        .await;
    let id = tenant["id"].as_str().unwrap().to_string();
    let keys = admin.create_key("small", "admin", None).await;
    let send = |method: Method, path: &str| {
        server
            .request(method, path)
            .access_key(&keys.access_key)
            .secret_key(&keys.secret_key)
    };
    send(Method::PUT, "/quota").send().await.assert_status(200);
    let big = pseudo_random_bytes(200_000, 1);
    send(Method::PUT, "/quota/first")
        .body(big.clone())
        .send()
        .await
        .assert_status(200);
    let array = server.data_dir().join("arrays").join("0");
    let files = data_files(&array, &id);
    assert_eq!(files.len(), 1, "{files:?}");

    for mode in [Mode::Header, Mode::Presigned, Mode::Streaming] {
        let response = Probe::new("PutObject", Method::PUT, "/quota/second")
            .body(pseudo_random_bytes(150_000, 2))
            .request(&server, &keys, mode)
            .send()
            .await;
        response.assert_error(403, "QuotaExceeded");
        send(Method::HEAD, "/quota/second")
            .send()
            .await
            .assert_status(404);
        assert_eq!(
            data_files(&array, &id),
            files,
            "the refused write left a file ({mode:?})"
        );
    }

    // A part past the byte quota, and a completion past the object quota.
    let created = send(Method::POST, "/quota/mp")
        .query_flag("uploads")
        .send()
        .await;
    let upload = created.xml_values("UploadId").remove(0);
    send(Method::PUT, "/quota/mp")
        .query("partNumber", "1")
        .query("uploadId", &upload)
        .body(pseudo_random_bytes(150_000, 3))
        .send()
        .await
        .assert_error(403, "QuotaExceeded");
    assert_eq!(data_files(&array, &id), files);
    send(Method::PUT, "/quota/two")
        .body("2")
        .send()
        .await
        .assert_status(200);
    send(Method::PUT, "/quota/three")
        .body("3")
        .send()
        .await
        .assert_status(200);
    let part = b"last part";
    send(Method::PUT, "/quota/mp")
        .query("partNumber", "1")
        .query("uploadId", &upload)
        .body(&part[..])
        .send()
        .await
        .assert_status(200);
    let complete = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"{}\"</ETag></Part>\
         </CompleteMultipartUpload>",
        coffre_conformance::md5_hex(part)
    );
    send(Method::POST, "/quota/mp")
        .query("uploadId", &upload)
        .body(complete)
        .send()
        .await
        .assert_error(403, "QuotaExceeded");
    send(Method::HEAD, "/quota/mp")
        .send()
        .await
        .assert_status(404);

    let shown = admin.tenant("small").await;
    shown.assert_status(200);
    assert_eq!(shown.json["usage"]["objects"], 3);
    assert_eq!(shown.json["usage"]["bytes"], 200_000 + 2 + part.len());

    // Raising the quota lets the completion through.
    admin
        .send(
            Method::PATCH,
            "/admin/v1/tenants/small",
            Some(json!({"quotas": {"objects": null}})),
        )
        .await
        .assert_status(200);
    let complete = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"{}\"</ETag></Part>\
         </CompleteMultipartUpload>",
        coffre_conformance::md5_hex(part)
    );
    send(Method::POST, "/quota/mp")
        .query("uploadId", &upload)
        .body(complete)
        .send()
        .await
        .assert_status(200);
}

#[tokio::test]
async fn placement_pins_each_tenant_to_its_arrays() {
    let arrays = tempfile::tempdir().unwrap();
    let (east, west) = (arrays.path().join("east"), arrays.path().join("west"));
    let config = arrays.path().join("coffre.toml");
    std::fs::write(
        &config,
        format!(
            "[[arrays]]\nname = \"east-1\"\npath = \"{}\"\nsite = \"east\"\n\n\
             [[arrays]]\nname = \"west-1\"\npath = \"{}\"\nsite = \"west\"\n",
            east.display(),
            west.display()
        ),
    )
    .unwrap();
    let server = TestServer::start_with_args(&["--config", config.to_str().unwrap()]);
    let admin = server.admin();
    // One pinned by array name, one by site label.
    let e = admin
        .create_tenant(json!({"name": "pinned-east", "placement": ["east-1"]}))
        .await;
    let w = admin
        .create_tenant(json!({"name": "pinned-west", "placement": ["west"]}))
        .await;
    admin
        .send(
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({"name": "nowhere", "placement": ["north"]})),
        )
        .await
        .assert_error(400, "InvalidPlacement");

    for (tenant, seed) in [("pinned-east", 1u64), ("pinned-west", 2)] {
        let keys = admin.create_key(tenant, "admin", None).await;
        let send = |method: Method, path: &str| {
            server
                .request(method, path)
                .access_key(&keys.access_key)
                .secret_key(&keys.secret_key)
        };
        send(Method::PUT, "/data").send().await.assert_status(200);
        for i in 0..8 {
            send(Method::PUT, &format!("/data/object-{i}"))
                .body(pseudo_random_bytes(100_000, seed * 100 + i))
                .send()
                .await
                .assert_status(200);
        }
    }
    let (e_id, w_id) = (e["id"].as_str().unwrap(), w["id"].as_str().unwrap());
    assert_eq!(data_files(&east, e_id).len(), 8);
    assert_eq!(data_files(&west, w_id).len(), 8);
    assert!(data_files(&west, e_id).is_empty(), "east's data on west");
    assert!(data_files(&east, w_id).is_empty(), "west's data on east");
}
