//! Tenant isolation, proven against the real server.
//!
//! The probes come from the gateway's own operation table: [`probes_of`] matches every
//! `OperationKind` of the gateway exhaustively, and the tests walk `OperationKind::ALL`, so an
//! operation added to the gateway does not compile here until it has probes. Each probe says
//! what it is aimed at ([`Aim`]) and what the owner of its target gets for it; the tests show
//! that every probe does that for its owner (so a refusal elsewhere is not the refusal of a
//! malformed request) and, from the audit trail, that the server routed it to the operation it
//! claims.
//!
//! Two tenants A and B with buckets of the same names: every operation, sent by B in every way
//! it can be (Authorization header, presigned URL, aws-chunked streaming body, browser form,
//! no credentials), aimed at A's buckets, objects, upload ids and copy sources, gets exactly
//! the answer it gets for a twin that never existed, shows nothing of A's, and changes
//! nothing. A read-only key is refused every write (as the gateway classifies them) and gets
//! every read as its tenant's admin key does. Then: presigned URLs cannot be replayed
//! elsewhere, suspension and deletion lock a tenant out at once, bucket limits hold, quotas
//! refuse with nothing stored, placement pins data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use coffre_conformance::{
    amz_date, files_under, md5_base64, md5_hex, pseudo_random_bytes, send_request, AwsChunked,
    KeyPair, RawRequest, RawResponse, TestServer, REGION,
};
use coffre_gateway::s3::operation::OperationKind;
use http::Method;
use serde_json::json;

const SECRET: &[u8] = b"tenant A's secret data";
/// The value of the tag on A's objects and the origin of A's CORS rules: B never sees either.
const A_TAG: &str = "a-private-tag";
const A_ORIGIN: &str = "https://a.example";
/// The origin every preflight probe asks for: the fixtures' rules admit it, A's do not.
const PROBE_ORIGIN: &str = "https://probe.example";
/// A well-formed upload id that names no upload.
const NO_UPLOAD: &str = "0123456789abcdef0123456789abcdef";
/// Part 1 of every upload the tests open.
const PART: &[u8] = b"part";
const FORM_BOUNDARY: &str = "----CoffreIsolationFormBoundary";

/// How a probe is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// SigV4 in the Authorization header.
    Header,
    /// A presigned URL.
    Presigned,
    /// Authorization header and an aws-chunked body of signed chunks.
    Streaming,
    /// A browser form signed by a POST policy (PostObject).
    Form,
    /// No credentials at all (CORS preflights).
    Unsigned,
}

/// How an operation authenticates: decides the modes its probes are sent in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signing {
    Request,
    Form,
    Nothing,
}

/// What of its target a probe reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Aim {
    /// The bucket itself, or a new key in it.
    Bucket,
    /// The target's object.
    Object,
    /// The target's open upload.
    Upload,
    /// The target's object, as the source of a copy into the signer's own bucket.
    Source,
}

/// The resources probes are aimed at, and the signer's own that copies need.
#[derive(Clone, Debug)]
struct Target {
    bucket: String,
    key: String,
    /// An open upload of `upload_key` in `bucket`.
    upload_key: String,
    upload: String,
    own: Own,
}

/// The signer's own resources.
#[derive(Clone, Debug)]
struct Own {
    bucket: String,
    /// An object: the source of copies aimed at the target.
    key: String,
    /// An open upload of `upload_key` in `bucket`: the destination of part copies whose
    /// source is the target.
    upload_key: String,
    upload: String,
}

/// One S3 request, independent of who signs it and how.
#[derive(Clone, Debug)]
struct Probe {
    kind: OperationKind,
    /// The operation name the audit trail records for it.
    recorded_as: &'static str,
    /// `None`: aimed at nothing of anyone's (ListBuckets, CreateBucket of a new name).
    aim: Option<Aim>,
    signing: Signing,
    method: Method,
    path: String,
    query: Vec<(&'static str, Option<String>)>,
    headers: Vec<(&'static str, String)>,
    /// The body; for a form, its file.
    body: Bytes,
    /// What the target's owner gets (status, error code) on a fresh [`fixture`].
    owner: (u16, Option<&'static str>),
}

impl Probe {
    fn new(kind: OperationKind, method: Method, path: &str) -> Self {
        Probe {
            kind,
            recorded_as: kind.name(),
            aim: None,
            signing: Signing::Request,
            method,
            path: path.to_string(),
            query: Vec::new(),
            headers: Vec::new(),
            body: Bytes::new(),
            owner: (200, None),
        }
    }

    fn aim(mut self, aim: Aim) -> Self {
        self.aim = Some(aim);
        self
    }

    fn signing(mut self, signing: Signing) -> Self {
        self.signing = signing;
        self
    }

    fn recorded_as(mut self, name: &'static str) -> Self {
        self.recorded_as = name;
        self
    }

    fn query(mut self, name: &'static str, value: &str) -> Self {
        self.query.push((name, Some(value.to_string())));
        self
    }

    fn flag(mut self, name: &'static str) -> Self {
        self.query.push((name, None));
        self
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }

    fn copy_source(self, bucket: &str, key: &str) -> Self {
        self.header("x-amz-copy-source", &format!("/{bucket}/{key}"))
    }

    fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    fn owner_gets(mut self, status: u16) -> Self {
        self.owner = (status, None);
        self
    }

    fn owner_error(mut self, status: u16, code: &'static str) -> Self {
        self.owner = (status, Some(code));
        self
    }

    /// Every way this probe can be sent.
    fn modes(&self) -> &'static [Mode] {
        match self.signing {
            Signing::Request if self.body.is_empty() => &[Mode::Header, Mode::Presigned],
            Signing::Request => &[Mode::Header, Mode::Presigned, Mode::Streaming],
            Signing::Form => &[Mode::Form],
            Signing::Nothing => &[Mode::Unsigned],
        }
    }

    fn request(&self, server: &TestServer, keys: &KeyPair, mode: Mode) -> RawRequest {
        let mut request = server
            .request(self.method.clone(), &self.path)
            .access_key(&keys.access_key)
            .secret_key(&keys.secret_key);
        for (name, value) in &self.query {
            request = match value {
                Some(value) => request.query(name, value),
                None => request.query_flag(name),
            };
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        match mode {
            Mode::Header => request.body(self.body.clone()),
            Mode::Presigned => request
                .body(self.body.clone())
                .presigned(Duration::from_secs(300)),
            Mode::Streaming => request
                .body(self.body.clone())
                .aws_chunked(AwsChunked::signed(1024)),
            Mode::Form => request
                .anonymous()
                .header(
                    "content-type",
                    &format!("multipart/form-data; boundary={FORM_BOUNDARY}"),
                )
                .body(form(self.path.trim_start_matches('/'), keys, &self.body)),
            Mode::Unsigned => request.anonymous().body(self.body.clone()),
        }
    }

    fn describe(&self, mode: Mode) -> String {
        format!(
            "{:?} ({mode:?}): {} {} {:?}",
            self.kind, self.method, self.path, self.query
        )
    }
}

/// Every probe of `kind` against `t`, and what the owner of `t` gets for each. The match is
/// exhaustive over the gateway's operation kinds: a kind without probes does not compile.
fn probes_of(kind: OperationKind, t: &Target) -> Vec<Probe> {
    use Aim::{Bucket, Object, Source, Upload};
    use OperationKind as K;
    let bucket = format!("/{}", t.bucket);
    let object = format!("/{}/{}", t.bucket, t.key);
    let upload = format!("/{}/{}", t.bucket, t.upload_key);
    let new_object = format!("/{}/new-from-probe", t.bucket);
    let own_copy = format!("/{}/copied-by-probe", t.own.bucket);
    let own_upload = format!("/{}/{}", t.own.bucket, t.own.upload_key);
    let p = |method: Method, path: &str| Probe::new(kind, method, path);
    let (get, put, post, delete) = (Method::GET, Method::PUT, Method::POST, Method::DELETE);
    match kind {
        K::ListBuckets => vec![p(get, "/")],
        K::CreateBucket => vec![p(put, &format!("{bucket}-new"))],
        K::HeadBucket => vec![p(Method::HEAD, &bucket).aim(Bucket)],
        K::DeleteBucket => vec![p(delete, &bucket)
            .aim(Bucket)
            .owner_error(409, "BucketNotEmpty")],
        K::GetBucketLocation => vec![p(get, &bucket).aim(Bucket).flag("location")],
        K::GetBucketVersioning => vec![p(get, &bucket).aim(Bucket).flag("versioning")],
        K::ListObjects => vec![p(get, &bucket).aim(Bucket)],
        K::ListObjectsV2 => vec![p(get, &bucket).aim(Bucket).query("list-type", "2")],
        K::ListMultipartUploads => vec![p(get, &bucket).aim(Bucket).flag("uploads")],
        K::ListObjectVersions => vec![p(get, &bucket).aim(Bucket).flag("versions")],
        K::DeleteObjects => {
            let names = format!(
                "<Delete><Object><Key>{}</Key></Object><Object><Key>{}</Key></Object></Delete>",
                t.key, t.upload_key
            );
            vec![p(post, &bucket)
                .aim(Object)
                .flag("delete")
                .header("content-md5", &md5_base64(names.as_bytes()))
                .body(names)]
        }
        K::PostObject => vec![p(post, &bucket)
            .aim(Bucket)
            .signing(Signing::Form)
            .body("posted by the probe")
            .owner_gets(204)],
        K::GetBucketAcl => vec![p(get, &bucket).aim(Bucket).flag("acl")],
        K::PutBucketAcl => vec![p(put, &bucket)
            .aim(Bucket)
            .flag("acl")
            .header("x-amz-acl", "private")],
        K::GetBucketEncryption => vec![p(get, &bucket).aim(Bucket).flag("encryption")],
        K::GetBucketPolicyStatus => vec![p(get, &bucket).aim(Bucket).flag("policyStatus")],
        K::GetPublicAccessBlock => vec![p(get, &bucket).aim(Bucket).flag("publicAccessBlock")],
        K::GetBucketOwnershipControls => {
            vec![p(get, &bucket).aim(Bucket).flag("ownershipControls")]
        }
        K::GetBucketCors => vec![p(get, &bucket).aim(Bucket).flag("cors")],
        K::PutBucketCors => vec![p(put, &bucket)
            .aim(Bucket)
            .flag("cors")
            .body(cors_rules("https://changed.example"))],
        K::DeleteBucketCors => vec![p(delete, &bucket).aim(Bucket).flag("cors").owner_gets(204)],
        K::CorsPreflight => vec![p(Method::OPTIONS, &object)
            .aim(Bucket)
            .signing(Signing::Nothing)
            .header("origin", PROBE_ORIGIN)
            .header("access-control-request-method", "GET")],
        K::GetAbsentBucketConfig => [
            ("policy", "GetBucketPolicy", "NoSuchBucketPolicy"),
            (
                "lifecycle",
                "GetBucketLifecycleConfiguration",
                "NoSuchLifecycleConfiguration",
            ),
            ("tagging", "GetBucketTagging", "NoSuchTagSet"),
            ("website", "GetBucketWebsite", "NoSuchWebsiteConfiguration"),
            (
                "replication",
                "GetBucketReplication",
                "ReplicationConfigurationNotFoundError",
            ),
            (
                "object-lock",
                "GetObjectLockConfiguration",
                "ObjectLockConfigurationNotFoundError",
            ),
        ]
        .into_iter()
        .map(|(flag, name, code)| {
            p(get.clone(), &bucket)
                .aim(Bucket)
                .flag(flag)
                .recorded_as(name)
                .owner_error(404, code)
        })
        .collect(),
        K::PutObject => vec![p(put, &new_object).aim(Bucket).body("written by the probe")],
        K::CopyObject => vec![
            p(put.clone(), &new_object)
                .aim(Bucket)
                .copy_source(&t.own.bucket, &t.own.key),
            p(put, &own_copy).aim(Source).copy_source(&t.bucket, &t.key),
        ],
        K::GetObject => vec![p(get, &object).aim(Object)],
        K::HeadObject => vec![p(Method::HEAD, &object).aim(Object)],
        K::GetObjectAttributes => vec![p(get, &object)
            .aim(Object)
            .flag("attributes")
            .header("x-amz-object-attributes", "ETag,ObjectSize")],
        K::GetObjectAcl => vec![p(get, &object).aim(Object).flag("acl")],
        K::GetObjectTagging => vec![p(get, &object).aim(Object).flag("tagging")],
        K::PutObjectTagging => vec![p(put, &object)
            .aim(Object)
            .flag("tagging")
            .body(tagging("by-probe"))],
        K::DeleteObjectTagging => vec![p(delete, &object)
            .aim(Object)
            .flag("tagging")
            .owner_gets(204)],
        K::PutObjectAcl => vec![p(put, &object)
            .aim(Object)
            .flag("acl")
            .header("x-amz-acl", "private")],
        K::DeleteObject => vec![p(delete, &object).aim(Object).owner_gets(204)],
        K::CreateMultipartUpload => vec![p(post, &new_object).aim(Bucket).flag("uploads")],
        K::UploadPart => vec![p(put, &upload)
            .aim(Upload)
            .query("partNumber", "1")
            .query("uploadId", &t.upload)
            .body("part written by the probe")],
        K::UploadPartCopy => vec![
            p(put.clone(), &upload)
                .aim(Upload)
                .query("partNumber", "2")
                .query("uploadId", &t.upload)
                .copy_source(&t.own.bucket, &t.own.key),
            p(put, &own_upload)
                .aim(Source)
                .query("partNumber", "2")
                .query("uploadId", &t.own.upload)
                .copy_source(&t.bucket, &t.key)
                .header("x-amz-copy-source-range", "bytes=0-3"),
        ],
        K::CompleteMultipartUpload => vec![p(post, &upload)
            .aim(Upload)
            .query("uploadId", &t.upload)
            .body(complete_part_1())],
        K::AbortMultipartUpload => vec![p(delete, &upload)
            .aim(Upload)
            .query("uploadId", &t.upload)
            .owner_gets(204)],
        K::ListParts => vec![p(get, &upload).aim(Upload).query("uploadId", &t.upload)],
        K::Unsupported => vec![
            p(put, &bucket)
                .aim(Bucket)
                .flag("tagging")
                .recorded_as("BucketTagging")
                .owner_error(501, "NotImplemented"),
            p(get, &object)
                .aim(Object)
                .flag("retention")
                .recorded_as("ObjectRetention")
                .owner_error(501, "NotImplemented"),
        ],
    }
}

fn cors_rules(origin: &str) -> String {
    format!(
        "<CORSConfiguration><CORSRule><AllowedOrigin>{origin}</AllowedOrigin>\
         <AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"
    )
}

fn tagging(value: &str) -> String {
    format!("<Tagging><TagSet><Tag><Key>tag</Key><Value>{value}</Value></Tag></TagSet></Tagging>")
}

fn complete_part_1() -> String {
    format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"{}\"</ETag></Part>\
         </CompleteMultipartUpload>",
        md5_hex(PART)
    )
}

/// A browser form uploading `file` to `bucket` as `posted-by-probe.txt`, signed by `keys`
/// with a policy that allows any key in that bucket for an hour.
fn form(bucket: &str, keys: &KeyPair, file: &[u8]) -> Vec<u8> {
    let now = SystemTime::now();
    let date = amz_date(now);
    let credential = format!(
        "{}/{}/{REGION}/s3/aws4_request",
        keys.access_key,
        &date[..8]
    );
    let expiration = time::OffsetDateTime::from(now + Duration::from_secs(3600));
    let policy = json!({
        "expiration": format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
            expiration.year(),
            u8::from(expiration.month()),
            expiration.day(),
            expiration.hour(),
            expiration.minute(),
            expiration.second()
        ),
        "conditions": [
            {"bucket": bucket},
            ["starts-with", "$key", ""],
            {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
            {"x-amz-credential": credential},
            {"x-amz-date": date},
        ],
    });
    let policy = BASE64.encode(policy.to_string());
    let signing_key =
        aws_sigv4::sign::v4::generate_signing_key(&keys.secret_key, now, REGION, "s3");
    let signature =
        aws_sigv4::sign::v4::calculate_signature(signing_key.as_ref(), policy.as_bytes());
    let mut body = Vec::new();
    for (name, value) in [
        ("key", "posted-by-probe.txt"),
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Credential", &credential),
        ("X-Amz-Date", &date),
        ("Policy", &policy),
        ("X-Amz-Signature", &signature),
    ] {
        body.extend_from_slice(
            format!(
                "--{FORM_BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n\
                 {value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{FORM_BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"probe.txt\"\r\nContent-Type: text/plain\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{FORM_BOUNDARY}--\r\n").as_bytes());
    body
}

fn outcome(response: &RawResponse) -> (u16, Option<String>) {
    (response.status.as_u16(), response.error_code())
}

/// The whole of an answer about `target`, told apart from the same answer about `twin` only
/// by what each request named: status, headers (but the date, the request's ids and the
/// length of a body, which follows the names) and body, with `target`'s names replaced by
/// `twin`'s and the request's ids left out.
fn answer(response: &RawResponse, target: &Target, twin: &Target) -> String {
    let rename = |text: &str| {
        let mut text = text.to_string();
        for (from, to) in [
            (&target.upload, &twin.upload),
            (&target.bucket, &twin.bucket),
            (&target.key, &twin.key),
        ] {
            text = text.replace(from.as_str(), to);
        }
        text
    };
    let mut answer = format!("{}\n", response.status);
    let mut headers: Vec<_> = response
        .headers
        .iter()
        .filter(|(name, _)| {
            !["date", "x-amz-request-id", "x-amz-id-2"].contains(&name.as_str())
                && (*name != "content-length" || response.body.is_empty())
        })
        .map(|(name, value)| {
            format!(
                "{name}: {}\n",
                rename(&String::from_utf8_lossy(value.as_bytes()))
            )
        })
        .collect();
    headers.sort();
    answer.extend(headers);
    let mut body = rename(&response.text());
    for element in ["RequestId", "HostId"] {
        if let (Some(start), Some(end)) = (
            body.find(&format!("<{element}>")),
            body.find(&format!("</{element}>")),
        ) {
            body.replace_range(start..end + element.len() + 3, "");
        }
    }
    answer + &body
}

fn expected(outcome: (u16, Option<&'static str>)) -> (u16, Option<String>) {
    (outcome.0, outcome.1.map(str::to_owned))
}

/// Requests sent, by request id, with the operation each claims to be.
#[derive(Default)]
struct Sent(Vec<(String, &'static str, String)>);

impl Sent {
    fn record(&mut self, probe: &Probe, mode: Mode, response: &RawResponse) {
        let id = response
            .header("x-amz-request-id")
            .unwrap_or_else(|| panic!("{} has no request id", probe.describe(mode)));
        self.0
            .push((id.to_owned(), probe.recorded_as, probe.describe(mode)));
    }

    /// Asserts that the audit trail recorded every request under the operation its probe
    /// claims: the probes reach the operations they are named after.
    async fn assert_routed_as_claimed(&self, server: &TestServer) {
        let dir = server.data_dir().join("audit");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Read leniently: the last line may be half-written.
            let recorded: BTreeMap<String, String> = files_under(&dir)
                .iter()
                .filter(|file| file.extension().is_some_and(|e| e == "jsonl"))
                .flat_map(|file| {
                    std::fs::read_to_string(file)
                        .unwrap_or_default()
                        .lines()
                        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                        .collect::<Vec<_>>()
                })
                .filter_map(|record| {
                    Some((
                        record["request_id"].as_str()?.to_owned(),
                        record["operation"].as_str()?.to_owned(),
                    ))
                })
                .collect();
            let missing: Vec<_> = self
                .0
                .iter()
                .filter(|(id, _, _)| !recorded.contains_key(id))
                .collect();
            if missing.is_empty() {
                for (id, claimed, what) in &self.0 {
                    assert_eq!(
                        recorded[id], *claimed,
                        "{what} was routed to another operation than its probe claims"
                    );
                }
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} requests are not in the audit trail, such as {:?}",
                missing.len(),
                missing[0]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn send(server: &TestServer, keys: &KeyPair, method: Method, path: &str) -> RawRequest {
    server
        .request(method, path)
        .access_key(&keys.access_key)
        .secret_key(&keys.secret_key)
}

/// Creates `bucket` with `object` in it (its bytes `data`, tagged `tag`) and CORS rules for
/// `origin`.
async fn bucket_with_object(
    server: &TestServer,
    keys: &KeyPair,
    bucket: &str,
    object: &str,
    data: &[u8],
    tag: &str,
    origin: &str,
) {
    send(server, keys, Method::PUT, &format!("/{bucket}"))
        .send()
        .await
        .assert_status(200);
    let path = format!("/{bucket}/{object}");
    send(server, keys, Method::PUT, &path)
        .body(data.to_vec())
        .send()
        .await
        .assert_status(200);
    send(server, keys, Method::PUT, &path)
        .query_flag("tagging")
        .body(tagging(tag))
        .send()
        .await
        .assert_status(200);
    send(server, keys, Method::PUT, &format!("/{bucket}"))
        .query_flag("cors")
        .body(cors_rules(origin))
        .send()
        .await
        .assert_status(200);
}

/// Opens an upload of `/bucket/key` with part 1 ([`PART`]) uploaded; returns its id.
async fn open_upload(server: &TestServer, keys: &KeyPair, bucket: &str, key: &str) -> String {
    let path = format!("/{bucket}/{key}");
    let created = send(server, keys, Method::POST, &path)
        .query_flag("uploads")
        .send()
        .await;
    created.assert_status(200);
    let upload = created.xml_values("UploadId").remove(0);
    send(server, keys, Method::PUT, &path)
        .query("partNumber", "1")
        .query("uploadId", &upload)
        .body(PART)
        .send()
        .await
        .assert_status(200);
    upload
}

/// Everything `keys` can see (in `only` when given, with the names of all its buckets):
/// objects with their bytes, ETags and tags, CORS rules, open uploads and their parts.
async fn state(server: &TestServer, keys: &KeyPair, only: Option<&str>) -> String {
    let get = |path: &str| send(server, keys, Method::GET, path);
    let buckets = get("/").send().await;
    buckets.assert_status(200);
    let names = buckets.xml_values("Name");
    let mut state = format!("buckets: {names:?}\n");
    for bucket in names
        .iter()
        .filter(|b| only.is_none_or(|o| o == b.as_str()))
    {
        let path = format!("/{bucket}");
        let listing = get(&path).query("list-type", "2").send().await;
        state += &format!("bucket {bucket}: {:?}\n", listing.xml_values("ETag"));
        for key in listing.xml_values("Key") {
            let object = get(&format!("{path}/{key}")).send().await;
            let tags = get(&format!("{path}/{key}"))
                .query_flag("tagging")
                .send()
                .await;
            state += &format!(
                "  {key}: {:?} tags {:?}\n",
                object.body,
                tags.xml_values("Value")
            );
        }
        let cors = get(&path).query_flag("cors").send().await;
        state += &format!("  cors: {} {}\n", cors.status, cors.text());
        let uploads = get(&path).query_flag("uploads").send().await;
        for (key, upload) in uploads
            .xml_values("Key")
            .into_iter()
            .zip(uploads.xml_values("UploadId"))
        {
            let parts = get(&format!("{path}/{key}"))
                .query("uploadId", &upload)
                .send()
                .await;
            state += &format!("  upload {key} {upload}: {:?}\n", parts.xml_values("ETag"));
        }
    }
    state
}

/// Two tenants on one server, each with an admin key; both own `shared`, A also owns
/// `private-a` (which B does not). A has a tagged object `secret.txt` in both, CORS rules on
/// both and an open upload of `mp` in `shared`; B has an object `b-own.txt` and an open upload
/// of `b-mp` in its own `shared`.
struct Scene {
    server: TestServer,
    a: KeyPair,
    b: KeyPair,
    upload: String,
    b_upload: String,
}

async fn scene() -> Scene {
    let server = TestServer::start();
    let admin = server.admin();
    let a = admin.tenant_with_key("tenant-a").await;
    let b = admin.tenant_with_key("tenant-b").await;
    for bucket in ["shared", "private-a"] {
        bucket_with_object(&server, &a, bucket, "secret.txt", SECRET, A_TAG, A_ORIGIN).await;
    }
    let upload = open_upload(&server, &a, "shared", "mp").await;
    bucket_with_object(
        &server,
        &b,
        "shared",
        "b-own.txt",
        b"B's own",
        "b-tag",
        "https://b.example",
    )
    .await;
    let b_upload = open_upload(&server, &b, "shared", "b-mp").await;
    Scene {
        server,
        a,
        b,
        upload,
        b_upload,
    }
}

impl Scene {
    fn as_tenant(&self, keys: &KeyPair, method: Method, path: &str) -> RawRequest {
        send(&self.server, keys, method, path)
    }

    async fn a_state(&self) -> String {
        state(&self.server, &self.a, None).await
    }

    /// A's own resources, as A aims at them.
    fn a_target(&self, bucket: &str) -> Target {
        Target {
            bucket: bucket.to_string(),
            key: "secret.txt".to_string(),
            upload_key: "mp".to_string(),
            upload: self.upload.clone(),
            own: Own {
                bucket: "shared".to_string(),
                key: "secret.txt".to_string(),
                upload_key: "mp".to_string(),
                upload: self.upload.clone(),
            },
        }
    }

    /// What B aims at: (what, the aims it tests, A's resources, a twin that never existed).
    fn b_targets(&self) -> Vec<(&'static str, &'static [Aim], Target, Target)> {
        let own = Own {
            bucket: "shared".to_string(),
            key: "b-own.txt".to_string(),
            upload_key: "b-mp".to_string(),
            upload: self.b_upload.clone(),
        };
        let target = |bucket: &str, key: &str, upload: &str| Target {
            bucket: bucket.to_string(),
            key: key.to_string(),
            upload_key: "mp".to_string(),
            upload: upload.to_string(),
            own: own.clone(),
        };
        vec![
            (
                "a bucket only A has",
                &[Aim::Bucket, Aim::Object, Aim::Upload, Aim::Source],
                target("private-a", "secret.txt", &self.upload),
                target("never-existed", "secret.txt", NO_UPLOAD),
            ),
            // Bucket operations and new keys in `shared` are B's own: below.
            (
                "A's object in a bucket of a name B has too",
                &[Aim::Object, Aim::Source],
                target("shared", "secret.txt", &self.upload),
                target("shared", "never.txt", NO_UPLOAD),
            ),
            (
                "A's upload id, under A's key, in B's bucket of the same name",
                &[Aim::Upload],
                target("shared", "secret.txt", &self.upload),
                target("shared", "secret.txt", NO_UPLOAD),
            ),
        ]
    }
}

/// What of A's nothing B gets may contain.
fn assert_shows_nothing_of_a(response: &RawResponse, what: &str) {
    let etag = md5_hex(SECRET);
    let markers: [&[u8]; 4] = [
        SECRET,
        A_TAG.as_bytes(),
        A_ORIGIN.as_bytes(),
        etag.as_bytes(),
    ];
    for marker in markers {
        let shown = response.body.windows(marker.len()).any(|w| w == marker)
            || response
                .headers
                .values()
                .any(|v| v.as_bytes().windows(marker.len()).any(|w| w == marker));
        assert!(
            !shown,
            "{what} shows A's {:?}: {:?} {}",
            String::from_utf8_lossy(marker),
            response.headers,
            response.text()
        );
    }
}

#[tokio::test]
async fn b_cannot_reach_or_detect_anything_of_a() {
    let scene = scene().await;
    let (server, b) = (&scene.server, &scene.b);
    let before = scene.a_state().await;
    for shown in ["secret.txt", A_TAG, A_ORIGIN, &scene.upload] {
        assert!(before.contains(shown), "{shown} not in {before}");
    }
    let b_before = state(server, b, None).await;

    let mut sent = Sent::default();
    let mut reached = BTreeSet::new();
    for &kind in OperationKind::ALL {
        for (what, aims, at_a, twin) in scene.b_targets() {
            for (probe, reference) in probes_of(kind, &at_a)
                .into_iter()
                .zip(probes_of(kind, &twin))
            {
                if !probe.aim.is_some_and(|aim| aims.contains(&aim)) {
                    continue;
                }
                reached.insert(kind);
                for &mode in probe.modes() {
                    let response = probe.request(server, b, mode).send().await;
                    let reference_response = reference.request(server, b, mode).send().await;
                    let what = format!("{} by B, on {what}", probe.describe(mode));
                    assert_eq!(
                        answer(&response, &at_a, &twin),
                        answer(&reference_response, &twin, &twin),
                        "{what} answers differently from the same on something that never \
                         existed"
                    );
                    assert_shows_nothing_of_a(&response, &what);
                    sent.record(&probe, mode, &response);
                    sent.record(&reference, mode, &reference_response);
                }
            }
        }
    }
    // Every kind aimed at anything was tried; the others (ListBuckets, CreateBucket) are
    // B's own business: below.
    for &kind in OperationKind::ALL {
        let aimed = probes_of(kind, &scene.a_target("shared"))
            .iter()
            .any(|p| p.aim.is_some());
        assert_eq!(reached.contains(&kind), aimed, "{kind:?}");
    }
    sent.assert_routed_as_claimed(server).await;
    eprintln!(
        "{} of {} operations probed across tenants in {} requests",
        reached.len(),
        OperationKind::ALL.len(),
        sent.0.len()
    );

    // B's own bucket of the same name, read every way there is, shows nothing of A's: nor do
    // A's CORS rules answer B's requests from A's origin.
    let b_own = Target {
        bucket: "shared".to_string(),
        key: "b-own.txt".to_string(),
        upload_key: "b-mp".to_string(),
        upload: scene.b_upload.clone(),
        own: Own {
            bucket: "shared".to_string(),
            key: "b-own.txt".to_string(),
            upload_key: "b-mp".to_string(),
            upload: scene.b_upload.clone(),
        },
    };
    for &kind in OperationKind::ALL.iter().filter(|kind| !kind.is_write()) {
        for probe in probes_of(kind, &b_own) {
            let probe = match probe.signing {
                Signing::Request => probe.header("origin", A_ORIGIN),
                Signing::Form | Signing::Nothing => probe,
            };
            let response = probe.request(server, b, Mode::Header).send().await;
            let what = format!("{} by B on its own bucket", probe.describe(Mode::Header));
            assert_shows_nothing_of_a(&response, &what);
            for of_a in ["secret.txt", scene.upload.as_str()] {
                assert!(!response.text().contains(of_a), "{what} shows {of_a}");
            }
        }
    }
    let listing = scene
        .as_tenant(b, Method::GET, "/shared")
        .query("list-type", "2")
        .send()
        .await;
    assert_eq!(listing.xml_values("Key"), ["b-own.txt"]);
    let uploads = scene
        .as_tenant(b, Method::GET, "/shared")
        .query_flag("uploads")
        .send()
        .await;
    assert_eq!(uploads.xml_values("UploadId"), [scene.b_upload.as_str()]);
    let buckets = scene.as_tenant(b, Method::GET, "/").send().await;
    assert_eq!(buckets.xml_values("Name"), ["shared"]);
    assert_shows_nothing_of_a(&buckets, "ListBuckets by B");

    assert_eq!(scene.a_state().await, before, "B changed something of A's");
    assert_eq!(
        state(server, b, None).await,
        b_before,
        "B's failed probes changed something of B's"
    );

    // Writes B may make land in B's own namespace, never in A's.
    for &mode in &[Mode::Header, Mode::Presigned, Mode::Streaming] {
        Probe::new(OperationKind::PutObject, Method::PUT, "/shared/secret.txt")
            .body("B's own")
            .request(server, b, mode)
            .send()
            .await
            .assert_status(200);
    }
    Probe::new(OperationKind::CopyObject, Method::PUT, "/shared/mp")
        .copy_source("shared", "b-own.txt")
        .request(server, b, Mode::Header)
        .send()
        .await
        .assert_status(200);
    scene
        .as_tenant(b, Method::PUT, "/private-a")
        .send()
        .await
        .assert_status(200);
    scene
        .as_tenant(b, Method::DELETE, "/private-a")
        .send()
        .await
        .assert_status(204);
    assert_eq!(scene.a_state().await, before, "B's own writes changed A's");
}

/// A fresh bucket `name` of the owner of `keys`: a tagged object `secret.txt`, CORS rules
/// for [`PROBE_ORIGIN`], an open upload of `mp`, and for copies an object `own.txt` and an
/// open upload of `own-mp`.
async fn fixture(server: &TestServer, keys: &KeyPair, name: &str) -> Target {
    bucket_with_object(server, keys, name, "secret.txt", SECRET, "t", PROBE_ORIGIN).await;
    send(server, keys, Method::PUT, &format!("/{name}/own.txt"))
        .body("own")
        .send()
        .await
        .assert_status(200);
    Target {
        bucket: name.to_string(),
        key: "secret.txt".to_string(),
        upload_key: "mp".to_string(),
        upload: open_upload(server, keys, name, "mp").await,
        own: Own {
            bucket: name.to_string(),
            key: "own.txt".to_string(),
            upload_key: "own-mp".to_string(),
            upload: open_upload(server, keys, name, "own-mp").await,
        },
    }
}

/// Every probe in every mode, on a fresh fixture each: by a read-only key of the owner's
/// tenant, a write (as the gateway classifies it) is refused with 403 AccessDenied and a read
/// gets what the owner gets, and nothing changes; then the owner gets what the probe claims.
#[tokio::test]
async fn a_read_only_key_cannot_write_and_every_probe_works_for_its_owner() {
    let server = TestServer::start();
    let admin = server.admin();
    let owner = admin.tenant_with_key("tenant-a").await;
    let reader = admin.create_key("tenant-a", "read-only", None).await;
    let shape = Target {
        bucket: "fixture".to_string(),
        key: String::new(),
        upload_key: String::new(),
        upload: String::new(),
        own: Own {
            bucket: String::new(),
            key: String::new(),
            upload_key: String::new(),
            upload: String::new(),
        },
    };
    let mut sent = Sent::default();
    let mut fixtures = 0;
    for &kind in OperationKind::ALL {
        for (index, probe) in probes_of(kind, &shape).iter().enumerate() {
            for &mode in probe.modes() {
                fixtures += 1;
                let target = fixture(&server, &owner, &format!("fixture-{fixtures}")).await;
                let probe = probes_of(kind, &target).swap_remove(index);
                let what = probe.describe(mode);
                let before = state(&server, &owner, Some(&target.bucket)).await;

                let response = probe.request(&server, &reader, mode).send().await;
                if kind.is_write() {
                    assert_eq!(
                        outcome(&response),
                        (403, Some("AccessDenied".to_string())),
                        "{what} by a read-only key: {}",
                        response.text()
                    );
                } else {
                    assert_eq!(
                        outcome(&response),
                        expected(probe.owner),
                        "{what} by a read-only key: {}",
                        response.text()
                    );
                }
                sent.record(&probe, mode, &response);
                assert_eq!(
                    state(&server, &owner, Some(&target.bucket)).await,
                    before,
                    "{what} by a read-only key changed something"
                );

                let response = probe.request(&server, &owner, mode).send().await;
                assert_eq!(
                    outcome(&response),
                    expected(probe.owner),
                    "{what} by the owner: {}",
                    response.text()
                );
                sent.record(&probe, mode, &response);
            }
        }
    }
    sent.assert_routed_as_claimed(&server).await;
    eprintln!(
        "{} operations, {fixtures} probes and modes",
        OperationKind::ALL.len()
    );
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
    for &kind in OperationKind::ALL {
        for probe in probes_of(kind, &scene.a_target("shared")) {
            for &mode in probe.modes() {
                let response = probe.request(&scene.server, &scene.a, mode).send().await;
                let code = match kind {
                    // A suspended tenant's CORS rules answer no preflight.
                    OperationKind::CorsPreflight => Some("AccessForbidden".to_string()),
                    _ if probe.method == Method::HEAD => None,
                    _ => Some("AccessDenied".to_string()),
                };
                assert_eq!(
                    outcome(&response),
                    (403, code),
                    "{} by a suspended tenant: {}",
                    probe.describe(mode),
                    response.text()
                );
            }
        }
    }
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
async fn a_bucket_limited_key_sees_only_its_buckets() {
    let scene = scene().await;
    let admin = scene.server.admin();
    let limited = admin
        .create_key("tenant-a", "read-write", Some(&["shared"]))
        .await;
    let before = scene.a_state().await;
    let buckets = scene.as_tenant(&limited, Method::GET, "/").send().await;
    assert_eq!(buckets.xml_values("Name"), ["shared"]);
    // Every probe aimed at `private-a`, copies from it into `shared` included.
    for &kind in OperationKind::ALL {
        for probe in probes_of(kind, &scene.a_target("private-a")) {
            if probe.aim.is_none() {
                continue;
            }
            for &mode in probe.modes() {
                let response = probe.request(&scene.server, &limited, mode).send().await;
                let status = match kind {
                    // Refused before any bucket is looked at.
                    OperationKind::Unsupported => 501,
                    _ => 403,
                };
                assert_eq!(
                    response.status.as_u16(),
                    status,
                    "{} by a key limited to another bucket: {}",
                    probe.describe(mode),
                    response.text()
                );
            }
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
    assert_eq!(scene.a_state().await, before);
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
        let response = Probe::new(OperationKind::PutObject, Method::PUT, "/quota/second")
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
    // The data, and the records (key and metadata) of the three objects and the upload.
    let bytes = shown.json["usage"]["bytes"].as_u64().unwrap();
    let data = (200_000 + 2 + part.len()) as u64;
    assert!(
        (data + 5 + 3 + 5 + 2..data + 4 * 512).contains(&bytes),
        "{bytes}"
    );

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

    // Deleting everything gives back every byte, records included.
    for key in ["first", "two", "three", "mp"] {
        send(Method::DELETE, &format!("/quota/{key}"))
            .send()
            .await
            .assert_status(204);
    }
    let shown = admin.tenant("small").await;
    assert_eq!(shown.json["usage"]["bytes"], 0);
    assert_eq!(shown.json["usage"]["objects"], 0);
    assert_eq!(shown.json["usage"]["uploads"], 0);
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
