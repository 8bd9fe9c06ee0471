//! PostObject: browser-form uploads signed with a SigV4 POST policy, built by hand the way
//! an HTML form sends them. Accepted forms store exactly the file's bytes; refused ones
//! (expired, tampered, wrongly signed, a field the policy does not cover, a key outside the
//! policy, a file too large or too small, a broken body) get S3's errors and store nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use coffre_conformance::{
    amz_date, get_object, list_keys, md5_hex, pseudo_random_bytes, read_body, RawResponse,
    TestServer, REGION,
};
use http::Method;
use serde_json::{json, Value};

const BUCKET: &str = "uploads";
const BOUNDARY: &str = "----CoffreFormBoundary7MA4YWxkTrZu0gW";

/// A form as a browser would send it: text fields in order, then the file, then whatever
/// comes after it (a submit button).
struct Form {
    fields: Vec<(String, String)>,
    file_name: Option<String>,
    /// `None`: the form has no file part.
    file: Option<Vec<u8>>,
    after_file: Vec<(String, String)>,
}

impl Form {
    fn new(file: &[u8]) -> Self {
        Self {
            fields: Vec::new(),
            file_name: Some("local name.bin".to_string()),
            file: Some(file.to_vec()),
            after_file: vec![("submit".to_string(), "Upload to Amazon S3".to_string())],
        }
    }

    fn field(mut self, name: &str, value: &str) -> Self {
        self.fields.push((name.to_string(), value.to_string()));
        self
    }

    fn file_name(mut self, name: &str) -> Self {
        self.file_name = Some(name.to_string());
        self
    }

    /// Adds the SigV4 fields for a policy with `conditions` (the x-amz-* conditions are
    /// added here) that expires at `expiration`.
    fn signed(self, server: &TestServer, conditions: &[Value], expiration: SystemTime) -> Self {
        let policy = policy_document(server, conditions, expiration, SystemTime::now());
        self.signed_with(server, &policy, SystemTime::now())
    }

    /// Adds the SigV4 fields for the `policy` JSON, signed at `now`.
    fn signed_with(self, server: &TestServer, policy: &Value, now: SystemTime) -> Self {
        let date = amz_date(now);
        let policy = BASE64.encode(policy.to_string());
        let signature = sign(&server.secret_key, now, &policy);
        self.field("X-Amz-Algorithm", "AWS4-HMAC-SHA256")
            .field("X-Amz-Credential", &credential(server, now))
            .field("X-Amz-Date", &date)
            .field("Policy", &policy)
            .field("X-Amz-Signature", &signature)
    }

    fn replace(mut self, name: &str, value: &str) -> Self {
        for (n, v) in &mut self.fields {
            if n.eq_ignore_ascii_case(name) {
                *v = value.to_string();
            }
        }
        self
    }

    fn body(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let text = |out: &mut Vec<u8>, name: &str, value: &str| {
            out.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        };
        for (name, value) in &self.fields {
            text(&mut out, name, value);
        }
        if let Some(file) = &self.file {
            let filename = self
                .file_name
                .as_ref()
                .map(|n| format!("; filename=\"{n}\""))
                .unwrap_or_default();
            out.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"{filename}\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            out.extend_from_slice(file);
            out.extend_from_slice(b"\r\n");
        }
        for (name, value) in &self.after_file {
            text(&mut out, name, value);
        }
        out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        out
    }

    async fn post(&self, server: &TestServer) -> RawResponse {
        post_body(server, self.body()).await
    }
}

async fn post_body(server: &TestServer, body: Vec<u8>) -> RawResponse {
    server
        .request(Method::POST, &format!("/{BUCKET}"))
        .anonymous()
        .header(
            "content-type",
            &format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
}

fn credential(server: &TestServer, now: SystemTime) -> String {
    format!(
        "{}/{}/{REGION}/s3/aws4_request",
        server.access_key,
        &amz_date(now)[..8]
    )
}

/// The hex HMAC-SHA256 of the base64 policy under the SigV4 signing key of `now`'s date.
fn sign(secret: &str, now: SystemTime, policy_b64: &str) -> String {
    let key = aws_sigv4::sign::v4::generate_signing_key(secret, now, REGION, "s3");
    aws_sigv4::sign::v4::calculate_signature(key.as_ref(), policy_b64.as_bytes())
}

fn policy_document(
    server: &TestServer,
    conditions: &[Value],
    expiration: SystemTime,
    now: SystemTime,
) -> Value {
    let mut all = conditions.to_vec();
    all.push(json!({"x-amz-algorithm": "AWS4-HMAC-SHA256"}));
    all.push(json!({"x-amz-credential": credential(server, now)}));
    all.push(json!({"x-amz-date": amz_date(now)}));
    json!({"expiration": iso8601(expiration), "conditions": all})
}

/// `2026-01-01T12:00:00.000Z`, the form of the S3 documentation's example.
fn iso8601(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn in_one_hour() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

async fn get(s3: &Client, key: &str) -> (Vec<u8>, Option<String>, Option<String>) {
    let object = get_object(s3, BUCKET, key).await;
    let content_type = object.content_type().map(str::to_owned);
    let color = object
        .metadata()
        .and_then(|m| m.get("color"))
        .map(String::to_owned);
    (read_body(object.body).await, content_type, color)
}

fn upload_conditions() -> Vec<Value> {
    vec![
        json!({"bucket": BUCKET}),
        json!(["starts-with", "$key", "user/mary/"]),
        json!(["starts-with", "$Content-Type", "image/"]),
        json!({"x-amz-meta-color": "blue"}),
        json!(["content-length-range", 0, 16 * 1024 * 1024]),
    ]
}

fn upload_form(file: &[u8]) -> Form {
    Form::new(file)
        .field("key", "user/mary/${filename}")
        .field("Content-Type", "image/png")
        .field("x-amz-meta-color", "blue")
}

#[tokio::test]
async fn a_signed_form_stores_the_file_and_answers_204() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    // Across the 1 MiB write batches and the multipart reader's buffer boundaries.
    let data = pseudo_random_bytes(3 * 1024 * 1024 + 7, 1);
    let response = upload_form(&data)
        .file_name("C:\\Users\\mary\\photo.png")
        .signed(&server, &upload_conditions(), in_one_hour())
        .post(&server)
        .await;
    response.assert_status(204);
    let etag = format!("\"{}\"", md5_hex(&data));
    assert_eq!(response.header("etag"), Some(etag.as_str()));
    assert_eq!(
        response.header("x-amz-server-side-encryption"),
        Some("AES256")
    );
    assert_eq!(
        response.header("location"),
        Some(format!("{}/{BUCKET}/user%2Fmary%2Fphoto.png", server.endpoint).as_str())
    );
    let (bytes, content_type, color) = get(&s3, "user/mary/photo.png").await;
    assert!(bytes == data, "the stored bytes differ from the file");
    assert_eq!(content_type.as_deref(), Some("image/png"));
    assert_eq!(color.as_deref(), Some("blue"));

    // An empty file is a file too.
    let response = upload_form(b"")
        .file_name("empty.png")
        .signed(&server, &upload_conditions(), in_one_hour())
        .post(&server)
        .await;
    response.assert_status(204);
    assert_eq!(get(&s3, "user/mary/empty.png").await.0, b"");
}

#[tokio::test]
async fn success_action_status_and_redirect() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let mut conditions = upload_conditions();
    conditions.push(json!({"success_action_status": "201"}));
    let response = upload_form(b"created")
        .field("success_action_status", "201")
        .file_name("a.png")
        .signed(&server, &conditions, in_one_hour())
        .post(&server)
        .await;
    response.assert_status(201);
    let etag = format!("\"{}\"", md5_hex(b"created"));
    assert_eq!(response.xml_values("Bucket"), [BUCKET]);
    assert_eq!(response.xml_values("Key"), ["user/mary/a.png"]);
    assert_eq!(response.xml_values("ETag"), [etag]);
    assert_eq!(
        response.xml_values("Location"),
        [format!("{}/{BUCKET}/user%2Fmary%2Fa.png", server.endpoint)]
    );

    let mut conditions = upload_conditions();
    conditions.push(json!([
        "starts-with",
        "$success_action_redirect",
        "https://app.example/"
    ]));
    let response = upload_form(b"redirected")
        .field("success_action_redirect", "https://app.example/done")
        .file_name("b c.png")
        .signed(&server, &conditions, in_one_hour())
        .post(&server)
        .await;
    response.assert_status(303);
    assert_eq!(
        response.header("location"),
        Some(
            format!(
                "https://app.example/done?bucket={BUCKET}&key=user%2Fmary%2Fb+c.png&etag=%22{}%22",
                md5_hex(b"redirected")
            )
            .as_str()
        )
    );
    assert_eq!(get(&s3, "user/mary/b c.png").await.0, b"redirected");
    assert_eq!(get(&s3, "user/mary/a.png").await.0, b"created");
}

#[tokio::test]
async fn refused_forms_store_nothing() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let file = b"not to be stored";
    let signed = |form: Form| form.signed(&server, &upload_conditions(), in_one_hour());

    let expired = upload_form(file).signed(
        &server,
        &upload_conditions(),
        SystemTime::now() - Duration::from_secs(60),
    );
    let response = expired.post(&server).await;
    response.assert_error(403, "AccessDenied");
    assert!(
        response.text().contains("Policy expired"),
        "{}",
        response.text()
    );

    // The policy edited after signing: its key prefix widened.
    let widened = policy_document(
        &server,
        &[
            json!({"bucket": BUCKET}),
            json!(["starts-with", "$key", ""]),
        ],
        in_one_hour(),
        SystemTime::now(),
    );
    let tampered = signed(upload_form(file)).replace("policy", &BASE64.encode(widened.to_string()));
    tampered
        .post(&server)
        .await
        .assert_error(403, "SignatureDoesNotMatch");

    let mut signature = String::new();
    let probe = signed(upload_form(file));
    for (name, value) in &probe.fields {
        if name == "X-Amz-Signature" {
            let flipped = if value.starts_with('0') { "1" } else { "0" };
            signature = format!("{flipped}{}", &value[1..]);
        }
    }
    probe
        .replace("x-amz-signature", &signature)
        .post(&server)
        .await
        .assert_error(403, "SignatureDoesNotMatch");

    let other_secret = {
        let now = SystemTime::now();
        let policy = policy_document(&server, &upload_conditions(), in_one_hour(), now);
        let form = upload_form(file).signed_with(&server, &policy, now);
        let forged = sign("not the secret", now, &BASE64.encode(policy.to_string()));
        form.replace("x-amz-signature", &forged)
    };
    other_secret
        .post(&server)
        .await
        .assert_error(403, "SignatureDoesNotMatch");

    let uncovered = signed(upload_form(file).field("x-amz-meta-owner", "eve"));
    let response = uncovered.post(&server).await;
    response.assert_error(403, "AccessDenied");
    assert!(
        response
            .text()
            .contains("Extra input fields: x-amz-meta-owner"),
        "{}",
        response.text()
    );

    let outside = signed(
        Form::new(file)
            .field("key", "user/eve/x.png")
            .field("Content-Type", "image/png")
            .field("x-amz-meta-color", "blue"),
    );
    let response = outside.post(&server).await;
    response.assert_error(403, "AccessDenied");
    assert_eq!(
        response.xml_values("Message"),
        ["Invalid according to Policy: Policy Condition failed: [\"starts-with\", \"$key\", \"user/mary/\"]"]
    );

    let mut small_range = upload_conditions();
    small_range.pop();
    small_range.push(json!(["content-length-range", 1, 1024]));
    let response = upload_form(&[7u8; 2000])
        .signed(&server, &small_range, in_one_hour())
        .post(&server)
        .await;
    response.assert_error(400, "EntityTooLarge");
    assert_eq!(response.xml_values("MaxSizeAllowed"), ["1024"]);
    // Refused while it streams, long before its end.
    let response = upload_form(&pseudo_random_bytes(4 * 1024 * 1024, 2))
        .signed(&server, &small_range, in_one_hour())
        .post(&server)
        .await;
    response.assert_error(400, "EntityTooLarge");
    let response = upload_form(b"")
        .signed(&server, &small_range, in_one_hour())
        .post(&server)
        .await;
    response.assert_error(400, "EntityTooSmall");

    // No policy at all: anonymous, and there is no anonymous access.
    upload_form(file)
        .post(&server)
        .await
        .assert_error(403, "AccessDenied");

    let unsigned_policy = upload_form(file)
        .field("X-Amz-Algorithm", "AWS4-HMAC-SHA256")
        .field("X-Amz-Credential", &credential(&server, SystemTime::now()))
        .field("X-Amz-Date", &amz_date(SystemTime::now()))
        .field("Policy", "e30=");
    let response = unsigned_policy.post(&server).await;
    response.assert_error(400, "InvalidArgument");
    assert!(
        response.xml_values("Message")[0].contains("'X-Amz-Signature'"),
        "{}",
        response.text()
    );

    let not_json = {
        let now = SystemTime::now();
        let policy = BASE64.encode("{\"expiration\": ");
        upload_form(file)
            .field("X-Amz-Algorithm", "AWS4-HMAC-SHA256")
            .field("X-Amz-Credential", &credential(&server, now))
            .field("X-Amz-Date", &amz_date(now))
            .field("Policy", &policy)
            .field("X-Amz-Signature", &sign(&server.secret_key, now, &policy))
    };
    not_json
        .post(&server)
        .await
        .assert_error(400, "InvalidPolicyDocument");

    // Bodies that are not well-formed multipart/form-data.
    // Cut inside the file: the file part never ends.
    let whole = signed(upload_form(&[1u8; 4096])).body();
    post_body(&server, whole[..whole.len() - 1000].to_vec())
        .await
        .assert_error(400, "MalformedPOSTRequest");
    let response = server
        .request(Method::POST, &format!("/{BUCKET}"))
        .anonymous()
        .header("content-type", "application/x-www-form-urlencoded")
        .body("key=a")
        .send()
        .await;
    response.assert_error(412, "PreconditionFailed");
    let mut no_file = signed(upload_form(file));
    no_file.file = None;
    let response = no_file.post(&server).await;
    response.assert_error(400, "InvalidArgument");
    assert!(
        response.text().contains("exactly one file"),
        "{}",
        response.text()
    );

    assert_eq!(list_keys(&s3, BUCKET).await, Vec::<String>::new());
}

#[tokio::test]
async fn the_form_fields_before_the_file_are_bounded() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let mut conditions = upload_conditions();
    conditions.push(json!(["starts-with", "$x-amz-meta-padding", ""]));
    let response = upload_form(b"x")
        .field("x-amz-meta-padding", &"p".repeat(21 * 1024))
        .signed(&server, &conditions, in_one_hour())
        .post(&server)
        .await;
    response.assert_error(400, "MaxPostPreDataLengthExceeded");
    assert_eq!(list_keys(&s3, BUCKET).await, Vec::<String>::new());
}
