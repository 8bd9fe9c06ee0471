//! The admin API and `coffre admin` against the real server: the token, the tenant and key
//! lifecycle, and bad input answered with a clear JSON error, the right status, and nothing
//! changed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use coffre_conformance::{coffre_binary, TestServer};
use http::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn the_token_guards_everything_but_the_probes() {
    let server = TestServer::start();
    let admin = server.admin();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(server.data_dir().join("admin-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    for path in ["/health", "/ready"] {
        admin
            .send_raw(Method::GET, path, "", None)
            .await
            .assert_status(200);
    }
    for token in [None, Some("wrong"), Some("")] {
        for (method, path) in [
            (Method::GET, "/admin/v1/tenants"),
            (Method::POST, "/admin/v1/tenants"),
            (Method::GET, "/admin/v1/no-such-route"),
            (Method::DELETE, "/admin/v1/tenants/default"),
        ] {
            let response = admin
                .send_raw(method.clone(), path, r#"{"name":"sneaky"}"#, token)
                .await;
            response.assert_error(401, "Unauthorized");
        }
    }
    // Nothing was created or deleted.
    let list = admin.send(Method::GET, "/admin/v1/tenants", None).await;
    let names: Vec<&str> = list.json["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default"]);
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let server = TestServer::start();
    let admin = server.admin();
    admin
        .create_tenant(json!({"name": "acme", "quotas": {"bytes": 1000}}))
        .await;
    let before = admin
        .send(Method::GET, "/admin/v1/tenants", None)
        .await
        .json;

    let post = |path: &'static str, body: &'static str| {
        let token = admin.token().to_string();
        let admin = &admin;
        async move { admin.send_raw(Method::POST, path, body, Some(&token)).await }
    };
    post("/admin/v1/tenants", r#"{"name": "x"#)
        .await
        .assert_error(400, "MalformedJson");
    post("/admin/v1/tenants", "")
        .await
        .assert_error(400, "MalformedJson");
    post(
        "/admin/v1/tenants",
        r#"{"name": "good-name", "colour": "red"}"#,
    )
    .await
    .assert_error(400, "InvalidRequest");
    post(
        "/admin/v1/tenants",
        r#"{"name": "good-name", "quotas": {"byte": 1}}"#,
    )
    .await
    .assert_error(400, "InvalidRequest");
    post(
        "/admin/v1/tenants",
        r#"{"name": "good-name", "quotas": {"bytes": -1}}"#,
    )
    .await
    .assert_error(400, "InvalidRequest");
    post("/admin/v1/tenants", r#"{"placement": []}"#)
        .await
        .assert_error(400, "InvalidRequest");
    for bad in [
        "ab",
        "-acme",
        "acme-",
        "Acme",
        "ac_me",
        "ac.me",
        &"a".repeat(64),
    ] {
        let body = json!({ "name": bad });
        admin
            .send(Method::POST, "/admin/v1/tenants", Some(body))
            .await
            .assert_error(400, "InvalidName");
    }
    admin
        .send(
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({"name": "acme"})),
        )
        .await
        .assert_error(409, "TenantExists");
    admin
        .send(
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({"name": "elsewhere", "placement": ["no-such-array"]})),
        )
        .await
        .assert_error(400, "InvalidPlacement");
    admin
        .send(
            Method::PATCH,
            "/admin/v1/tenants/acme",
            Some(json!({"quota": {"bytes": 1}})),
        )
        .await
        .assert_error(400, "InvalidRequest");

    // Keys.
    post("/admin/v1/tenants/acme/keys", r#"{"role": "owner"}"#)
        .await
        .assert_error(400, "InvalidRequest");
    post("/admin/v1/tenants/acme/keys", r#"{}"#)
        .await
        .assert_error(400, "InvalidRequest");
    post(
        "/admin/v1/tenants/acme/keys",
        r#"{"role": "read-only", "buckets": []}"#,
    )
    .await
    .assert_error(400, "InvalidRequest");
    post(
        "/admin/v1/tenants/acme/keys",
        r#"{"role": "read-only", "buckets": ["Not_A_Bucket"]}"#,
    )
    .await
    .assert_error(400, "InvalidName");
    post("/admin/v1/tenants/nobody/keys", r#"{"role": "admin"}"#)
        .await
        .assert_error(404, "NoSuchTenant");

    // Unknown things.
    for (method, path) in [
        (Method::GET, "/admin/v1/tenants/nobody"),
        (Method::PATCH, "/admin/v1/tenants/nobody"),
        (Method::DELETE, "/admin/v1/tenants/nobody"),
        (Method::POST, "/admin/v1/tenants/nobody/suspend"),
        (Method::GET, "/admin/v1/tenants/nobody/keys"),
    ] {
        admin
            .send(method, path, Some(json!({})))
            .await
            .assert_error(404, "NoSuchTenant");
    }
    for (method, path) in [
        (Method::POST, "/admin/v1/keys/CONOSUCHKEY000000000/disable"),
        (Method::DELETE, "/admin/v1/keys/CONOSUCHKEY000000000"),
        (Method::DELETE, "/admin/v1/keys/not-even-a-key-id"),
    ] {
        admin
            .send(method, path, None)
            .await
            .assert_error(404, "NoSuchAccessKey");
    }
    admin
        .send(Method::GET, "/admin/v1/nothing", None)
        .await
        .assert_error(404, "NoSuchRoute");
    admin
        .send(Method::PUT, "/admin/v1/tenants", None)
        .await
        .assert_error(405, "MethodNotAllowed");
    admin
        .send(Method::DELETE, "/admin/v1/tenants/acme?forse=true", None)
        .await
        .assert_error(400, "InvalidRequest");

    let after = admin
        .send(Method::GET, "/admin/v1/tenants", None)
        .await
        .json;
    assert_eq!(after, before, "a refused request changed something");
    let keys = admin
        .send(Method::GET, "/admin/v1/tenants/acme/keys", None)
        .await;
    assert_eq!(keys.json["keys"], json!([]));
}

#[tokio::test]
async fn tenants_and_keys_through_their_lifecycle() {
    let server = TestServer::start();
    let admin = server.admin();
    let created = admin
        .create_tenant(json!({"name": "acme", "quotas": {"bytes": 1_000_000, "objects": 10}}))
        .await;
    assert_eq!(created["name"], "acme");
    assert_eq!(created["state"], "active");
    assert_eq!(created["id"].as_str().unwrap().len(), 32);
    assert_eq!(
        created["quotas"],
        json!({"bytes": 1_000_000, "objects": 10, "uploads": null})
    );

    let keys = admin.create_key("acme", "read-write", None).await;
    let s3 = |method: Method, path: &str| {
        server
            .request(method, path)
            .access_key(&keys.access_key)
            .secret_key(&keys.secret_key)
    };
    s3(Method::PUT, "/bucket").send().await.assert_status(200);
    s3(Method::PUT, "/bucket/k")
        .body("12345")
        .send()
        .await
        .assert_status(200);
    let shown = admin.tenant("acme").await;
    // 5 bytes of data and the object's record: its key and metadata as stored.
    let bytes = shown.json["usage"]["bytes"].as_u64().unwrap();
    assert!((5 + 1..5 + 512).contains(&bytes), "{bytes}");
    assert_eq!(
        shown.json["usage"],
        json!({"bytes": bytes, "objects": 1, "uploads": 0, "buckets": 1})
    );
    s3(Method::DELETE, "/bucket/k")
        .send()
        .await
        .assert_status(204);
    assert_eq!(
        admin.tenant("acme").await.json["usage"],
        json!({"bytes": 0, "objects": 0, "uploads": 0, "buckets": 1})
    );
    s3(Method::PUT, "/bucket/k")
        .body("12345")
        .send()
        .await
        .assert_status(200);
    assert_eq!(
        admin.tenant("acme").await.json["usage"],
        shown.json["usage"]
    );

    let updated = admin
        .send(
            Method::PATCH,
            "/admin/v1/tenants/acme",
            Some(json!({"quotas": {"bytes": null}})),
        )
        .await;
    updated.assert_status(200);
    assert_eq!(
        updated.json["quotas"],
        json!({"bytes": null, "objects": 10, "uploads": null})
    );

    // Listing keys never shows a secret.
    let listed = admin
        .send(Method::GET, "/admin/v1/tenants/acme/keys", None)
        .await;
    assert_eq!(
        listed.json["keys"][0]["access_key_id"],
        keys.access_key.as_str()
    );
    assert!(!listed.text.contains(&keys.secret_key));
    assert!(listed.json["keys"][0].get("secret_access_key").is_none());

    // Disable stops the key at once; enable brings it back; delete ends it.
    let path = format!("/admin/v1/keys/{}", keys.access_key);
    let disabled = admin
        .send(Method::POST, &format!("{path}/disable"), None)
        .await;
    assert_eq!(disabled.json["state"], "disabled");
    s3(Method::GET, "/bucket/k")
        .send()
        .await
        .assert_error(403, "InvalidAccessKeyId");
    admin
        .send(Method::POST, &format!("{path}/enable"), None)
        .await
        .assert_status(200);
    s3(Method::GET, "/bucket/k").send().await.assert_status(200);
    admin
        .send(Method::DELETE, &path, None)
        .await
        .assert_status(204);
    s3(Method::GET, "/bucket/k")
        .send()
        .await
        .assert_error(403, "InvalidAccessKeyId");

    admin
        .send(Method::DELETE, "/admin/v1/tenants/acme", None)
        .await
        .assert_error(409, "TenantHasBuckets");
    admin
        .send(Method::DELETE, "/admin/v1/tenants/acme?force=true", None)
        .await
        .assert_status(204);
    admin.tenant("acme").await.assert_error(404, "NoSuchTenant");
}

/// Runs `coffre admin <args>` against `server`, with flags or environment.
fn cli(server: &TestServer, use_env: bool, args: &[&str]) -> std::process::Output {
    let token_file = server.data_dir().join("admin-token");
    let mut command = Command::new(coffre_binary());
    command.arg("admin");
    if use_env {
        command
            .env("COFFRE_ADMIN_ENDPOINT", &server.admin_endpoint)
            .env("COFFRE_ADMIN_TOKEN_FILE", &token_file);
    } else {
        command
            .env_remove("COFFRE_ADMIN_ENDPOINT")
            .env_remove("COFFRE_ADMIN_TOKEN_FILE")
            .arg("--endpoint")
            .arg(&server.admin_endpoint)
            .arg("--token-file")
            .arg(&token_file);
    }
    command.args(args).output().expect("run coffre admin")
}

fn json_of(output: &std::process::Output) -> Value {
    assert!(
        output.status.success(),
        "coffre admin failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[tokio::test]
async fn the_command_line_drives_the_api() {
    let server = TestServer::start();
    let created = json_of(&cli(
        &server,
        false,
        &["tenant", "create", "acme", "--quota-bytes", "1T", "--json"],
    ));
    assert_eq!(created["name"], "acme");
    assert_eq!(created["id"].as_str().unwrap().len(), 32);
    assert_eq!(created["quotas"]["bytes"], 1u64 << 40);

    let key = json_of(&cli(
        &server,
        true,
        &[
            "key",
            "create",
            "acme",
            "--role",
            "read-only",
            "--bucket",
            "backups",
            "--json",
        ],
    ));
    let access_key = key["access_key_id"].as_str().unwrap();
    let secret_key = key["secret_access_key"].as_str().unwrap();
    assert_eq!(key["role"], "read-only");
    assert_eq!(key["buckets"], json!(["backups"]));

    // The key works, read-only and limited to `backups`.
    let s3 = |method: Method, path: &str| {
        server
            .request(method, path)
            .access_key(access_key)
            .secret_key(secret_key)
    };
    let buckets = s3(Method::GET, "/").send().await;
    buckets.assert_status(200);
    s3(Method::PUT, "/backups")
        .send()
        .await
        .assert_error(403, "AccessDenied");

    // Human-readable output names what it shows; errors go to stderr with status 1.
    let listed = cli(&server, true, &["tenant", "list"]);
    assert!(listed.status.success());
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(text.contains("acme") && text.contains("default"), "{text}");
    let keys = cli(&server, false, &["key", "list", "acme"]);
    let text = String::from_utf8_lossy(&keys.stdout);
    assert!(
        text.contains(access_key) && !text.contains(secret_key),
        "{text}"
    );
    let duplicate = cli(&server, false, &["tenant", "create", "acme"]);
    assert_eq!(duplicate.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("TenantExists"));

    let updated = json_of(&cli(
        &server,
        false,
        &[
            "tenant",
            "update",
            "acme",
            "--quota-bytes",
            "none",
            "--quota-objects",
            "5",
            "--quota-uploads",
            "7",
            "--json",
        ],
    ));
    assert_eq!(
        updated["quotas"],
        json!({"bytes": null, "objects": 5, "uploads": 7})
    );
    let suspended = json_of(&cli(
        &server,
        false,
        &["tenant", "suspend", "acme", "--json"],
    ));
    assert_eq!(suspended["state"], "suspended");
    s3(Method::GET, "/")
        .send()
        .await
        .assert_error(403, "AccessDenied");
    json_of(&cli(
        &server,
        false,
        &["tenant", "resume", "acme", "--json"],
    ));
    s3(Method::GET, "/").send().await.assert_status(200);
    json_of(&cli(
        &server,
        false,
        &["key", "disable", access_key, "--json"],
    ));
    s3(Method::GET, "/")
        .send()
        .await
        .assert_error(403, "InvalidAccessKeyId");
    assert!(cli(&server, false, &["key", "delete", access_key])
        .status
        .success());
    assert!(cli(&server, false, &["tenant", "delete", "acme"])
        .status
        .success());
    let gone = cli(&server, false, &["tenant", "show", "acme"]);
    assert_eq!(gone.status.code(), Some(1));

    // A wrong token file is a clear failure.
    let wrong = server.data_dir().join("wrong-token");
    std::fs::write(&wrong, "not-the-token").unwrap();
    let output = Command::new(coffre_binary())
        .args([
            "admin",
            "--endpoint",
            &server.admin_endpoint,
            "--token-file",
        ])
        .arg(&wrong)
        .args(["tenant", "list"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("Unauthorized"));
}
