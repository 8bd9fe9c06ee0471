//! Key rotation with the real binary (issue 3): `coffre admin rotate-root` and `coffre admin
//! tenant rotate-key`, with objects (single PUTs inline and in files, a completed multipart
//! upload, and an upload in progress completed after the rotation) read before, during and
//! after each rotation, and restarts in between — one of them a crash in the middle of the
//! background rewrap. The same suite runs with the `local-file` root key and with the
//! `pkcs11` one on a SoftHSM2 token.
//!
//! The rewrap is paced by `[key_rotation]` (one record per step, a pause after each) so
//! that it is observably in progress while the test reads and restarts.
//!
//! The automatic rotation at `[key_rotation] max_dek_wraps` has a test of its own: the
//! running server rotates a worn KEK by itself within seconds of the write that wore it,
//! twice, and every object still reads back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use coffre_conformance::softhsm::SoftHsmToken;
use coffre_conformance::{audit_records, coffre_binary, pseudo_random_bytes, TestServer};
use serde_json::Value;

const BUCKET: &str = "rotation";
const TENANT: &str = "default";
const MIB: usize = 1024 * 1024;
/// Single-PUT objects; with the multipart object and the open upload, the records whose
/// DEKs the rotation moves.
const SINGLES: usize = 36;
const REWRAPPED: u64 = SINGLES as u64 + 2;
const PACING: &str =
    "[key_rotation]\nrewrap_batch = 1\nrewrap_pause_ms = 200\nretire_grace_secs = 1\n";

/// An object as the client stored it.
struct Stored {
    key: String,
    body: Vec<u8>,
}

/// What the workload wrote.
struct Workload {
    objects: Vec<Stored>,
    /// The upload left open; its first part.
    open_key: String,
    open_upload_id: String,
    open_first: Vec<u8>,
    open_first_etag: String,
}

async fn put(s3: &Client, key: &str, body: &[u8]) {
    s3.put_object()
        .bucket(BUCKET)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {key}: {e:?}"));
}

async fn upload_part(s3: &Client, key: &str, upload_id: &str, number: i32, body: &[u8]) -> String {
    s3.upload_part()
        .bucket(BUCKET)
        .key(key)
        .upload_id(upload_id)
        .part_number(number)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("UploadPart {key} #{number}: {e:?}"))
        .e_tag()
        .unwrap()
        .to_string()
}

async fn complete(s3: &Client, key: &str, upload_id: &str, etags: &[String]) {
    let parts = etags.iter().enumerate().map(|(i, etag)| {
        CompletedPart::builder()
            .part_number(i as i32 + 1)
            .e_tag(etag)
            .build()
    });
    s3.complete_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts.collect()))
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("CompleteMultipartUpload {key}: {e:?}"));
}

/// Single PUTs inline and above the inline threshold, a completed multipart object, and a
/// multipart upload left open with one part.
async fn run_workload(s3: &Client) -> Workload {
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let mut objects = Vec::new();
    for i in 0..SINGLES {
        // Every fourth one needs a data file (the inline threshold is 64 KiB).
        let len = if i % 4 == 0 {
            100_000 + i
        } else {
            500 + 37 * i
        };
        let key = format!("single/{i:03}");
        let body = pseudo_random_bytes(len, i as u64);
        put(s3, &key, &body).await;
        objects.push(Stored { key, body });
    }

    let key = "multi/complete";
    let upload = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap();
    let parts = [
        pseudo_random_bytes(5 * MIB, 100),
        pseudo_random_bytes(MIB, 101),
    ];
    let mut etags = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        etags.push(upload_part(s3, key, upload_id, i as i32 + 1, part).await);
    }
    complete(s3, key, upload_id, &etags).await;
    objects.push(Stored {
        key: key.to_string(),
        body: parts.concat(),
    });

    let open_key = "multi/open".to_string();
    let upload = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(&open_key)
        .send()
        .await
        .unwrap();
    let open_upload_id = upload.upload_id().unwrap().to_string();
    let open_first = pseudo_random_bytes(5 * MIB, 102);
    let open_first_etag = upload_part(s3, &open_key, &open_upload_id, 1, &open_first).await;
    Workload {
        objects,
        open_key,
        open_upload_id,
        open_first,
        open_first_etag,
    }
}

/// Every object reads back whole, and the open upload still lists its part.
async fn check_readable(s3: &Client, workload: &Workload, when: &str) {
    for object in &workload.objects {
        let got = s3
            .get_object()
            .bucket(BUCKET)
            .key(&object.key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{when}: GET {}: {e:?}", object.key));
        let body = got.body.collect().await.unwrap().into_bytes();
        assert!(
            body == object.body,
            "{when}: {} reads back different bytes",
            object.key
        );
    }
    let parts = s3
        .list_parts()
        .bucket(BUCKET)
        .key(&workload.open_key)
        .upload_id(&workload.open_upload_id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{when}: ListParts: {e:?}"));
    assert_eq!(
        parts.parts()[0].e_tag(),
        Some(workload.open_first_etag.as_str()),
        "{when}: the open upload's part"
    );
}

/// Runs `coffre admin --json <args>` against `server`; its JSON output.
fn admin_cli(server: &TestServer, args: &[&str]) -> Value {
    let output = Command::new(coffre_binary())
        .arg("admin")
        .arg("--endpoint")
        .arg(&server.admin_endpoint)
        .arg("--token-file")
        .arg(server.data_dir().join("admin-token"))
        .arg("--json")
        .args(args)
        .output()
        .expect("run coffre admin");
    assert!(
        output.status.success(),
        "coffre admin {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The `encryption` part of the tenant's document.
async fn encryption(server: &TestServer) -> Value {
    let response = server.admin().tenant(TENANT).await;
    response.assert_status(200);
    response.json["encryption"].clone()
}

fn kek_versions(encryption: &Value) -> Vec<u64> {
    encryption["keks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["version"].as_u64().unwrap())
        .collect()
}

fn root_versions(root_key: &Value) -> Vec<u64> {
    root_key["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect()
}

/// Polls the tenant until `done` holds for its encryption document.
async fn wait_for(server: &TestServer, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    wait_within(server, what, Duration::from_secs(120), done).await
}

/// Polls the tenant until `done` holds for its encryption document, for at most `limit`.
async fn wait_within(
    server: &TestServer,
    what: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let state = encryption(server).await;
        if done(&state) {
            return state;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {state:#}"
        );
        // The poll interval: the wait is for `done`, under the deadline above.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The whole story, on whichever root key provider `server` has.
async fn rotations_keep_every_object_readable(mut server: TestServer, provider: &str) {
    let workload = run_workload(&server.s3_client()).await;
    check_readable(&server.s3_client(), &workload, "before any rotation").await;
    let before = encryption(&server).await;
    assert_eq!(before["kek_version"], 1);
    assert_eq!(before["rotation"], Value::Null);
    assert_eq!(before["keks"][0]["root_version"], 1);

    // ---- Root rotation, then a restart. ----
    let root = admin_cli(&server, &["root-key"]);
    assert_eq!(root["provider"], provider);
    assert_eq!(root_versions(&root), [1]);
    let rotated = admin_cli(&server, &["rotate-root"]);
    assert_eq!(rotated["root_version"], 2, "{rotated:#}");
    assert_eq!(rotated["retired_root_versions"], serde_json::json!([1]));
    assert!(rotated["keks_rewrapped"].as_u64().unwrap() >= 1);
    assert_eq!(root_versions(&rotated["root_key"]), [2]);
    assert_eq!(encryption(&server).await["keks"][0]["root_version"], 2);
    check_readable(&server.s3_client(), &workload, "after the root rotation").await;
    if provider == "local-file" {
        let text = std::fs::read_to_string(server.data_dir().join("root.key")).unwrap();
        let keys: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(keys.len(), 1, "one root key left in the file");
        assert!(keys[0].starts_with("2 "), "{keys:?}");
    }
    server.restart();
    // The provider found its keys again: for pkcs11, what the token holds now.
    assert_eq!(root_versions(&admin_cli(&server, &["root-key"])), [2]);
    check_readable(&server.s3_client(), &workload, "after a restart").await;

    // ---- Tenant KEK rotation, read during, crash during, finished after. ----
    let shown = admin_cli(&server, &["tenant", "rotate-key", TENANT]);
    assert_eq!(shown["encryption"]["kek_version"], 2, "{shown:#}");
    assert_eq!(kek_versions(&shown["encryption"]), [1, 2]);
    let during = encryption(&server).await;
    assert_eq!(during["rotation"]["state"], "rewrapping", "{during:#}");
    assert!(during["rotation"]["deks_rewrapped"].as_u64().unwrap() < REWRAPPED);

    check_readable(&server.s3_client(), &workload, "during the rewrap").await;
    // New objects are written under the new KEK while the old DEKs move.
    let fresh = pseudo_random_bytes(3000, 200);
    put(&server.s3_client(), "fresh/during", &fresh).await;
    let still = encryption(&server).await;
    assert_eq!(
        still["rotation"]["state"], "rewrapping",
        "the reads above happened during the rewrap: {still:#}"
    );
    assert_eq!(kek_versions(&still), [1, 2], "KEK 1 is kept meanwhile");

    // A crash half-way through the objects.
    let progress = wait_for(&server, "some progress", |e| {
        e["rotation"]["deks_rewrapped"].as_u64().unwrap() >= 8
    })
    .await;
    let scanned_before = progress["rotation"]["records_scanned"].as_u64().unwrap();
    server.kill();
    server.start_again();
    let resumed = encryption(&server).await;
    assert_eq!(resumed["rotation"]["state"], "rewrapping", "{resumed:#}");
    assert!(
        resumed["rotation"]["records_scanned"].as_u64().unwrap() >= scanned_before,
        "the rewrap's progress survived the crash: {resumed:#} after {progress:#}"
    );
    check_readable(&server.s3_client(), &workload, "after a crash mid-rewrap").await;

    // The upload begun before the rotation gets its last part and completes.
    let s3 = server.s3_client();
    let second = pseudo_random_bytes(MIB, 103);
    let second_etag = upload_part(
        &s3,
        &workload.open_key,
        &workload.open_upload_id,
        2,
        &second,
    )
    .await;
    complete(
        &s3,
        &workload.open_key,
        &workload.open_upload_id,
        &[workload.open_first_etag.clone(), second_etag],
    )
    .await;
    let completed = s3
        .get_object()
        .bucket(BUCKET)
        .key(&workload.open_key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert!(completed == [workload.open_first.clone(), second].concat());

    let finished = wait_for(&server, "the end of the rotation", |e| {
        e["rotation"]["state"] == "finished"
    })
    .await;
    let rotation = &finished["rotation"];
    assert_eq!(
        kek_versions(&finished),
        [2],
        "KEK 1 destroyed: {finished:#}"
    );
    assert_eq!(rotation["retired_kek_versions"], serde_json::json!([1]));
    assert_eq!(
        rotation["deks_rewrapped"], REWRAPPED,
        "every DEK from before the rotation moved exactly once: {finished:#}"
    );
    assert!(rotation["finished"].is_string());
    assert_eq!(finished["keks"][0]["root_version"], 2);

    for when in ["after the rotation", "after a restart"] {
        if when == "after a restart" {
            server.restart();
        }
        let s3 = server.s3_client();
        for object in &workload.objects {
            let body = s3
                .get_object()
                .bucket(BUCKET)
                .key(&object.key)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{when}: GET {}: {e:?}", object.key))
                .body
                .collect()
                .await
                .unwrap()
                .into_bytes();
            assert!(body == object.body, "{when}: {}", object.key);
        }
        for (key, body) in [
            ("fresh/during", &fresh),
            (workload.open_key.as_str(), &completed.to_vec()),
        ] {
            let got = s3
                .get_object()
                .bucket(BUCKET)
                .key(key)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{when}: GET {key}: {e:?}"))
                .body
                .collect()
                .await
                .unwrap()
                .into_bytes();
            assert!(got == body[..], "{when}: {key}");
        }
    }
    assert_eq!(kek_versions(&encryption(&server).await), [2]);

    // Every step is in the audit trail, whose chain holds.
    server.stop();
    let audit_dir = server.data_dir().join("audit");
    let records = audit_records(&audit_dir);
    let find = |operation: &str| {
        records
            .iter()
            .find(|r| r["operation"] == operation)
            .unwrap_or_else(|| panic!("no {operation} record"))
    };
    let root = find("RotateRoot");
    assert_eq!(root["status"], 200);
    assert_eq!(root["change"]["result"]["root_version"], 2);
    let tenant = find("RotateTenantKey");
    assert_eq!(tenant["status"], 202);
    assert_eq!(tenant["change"]["target"], TENANT);
    assert_eq!(tenant["change"]["result"]["kek_version"], 2);
    let retired = find("RetireKekVersions");
    assert_eq!(
        retired["change"]["destroyed_kek_versions"],
        serde_json::json!([1])
    );
    let verified = Command::new(coffre_binary())
        .args(["audit", "verify"])
        .arg(&audit_dir)
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
}

#[tokio::test]
async fn local_file_root_key_and_tenant_kek_rotation() {
    let server = TestServer::start_with_config(PACING, &[]);
    rotations_keep_every_object_readable(server, "local-file").await;
}

#[tokio::test]
async fn pkcs11_root_key_and_tenant_kek_rotation_on_softhsm() {
    let token = SoftHsmToken::init("coffre-rotation");
    let config = format!("{}\n{PACING}", token.key_provider_toml());
    let server = TestServer::start_with_config(&config, &token.env());
    rotations_keep_every_object_readable(server, "pkcs11").await;
}

// ---- Automatic rotation at `[key_rotation] max_dek_wraps`. ----

/// A low limit: KEK version 1 reaches it with the first round of writes below, while the
/// live objects stay fewer than it (the rewrap counts against the new version: see
/// `worn_kek_round`).
const WORN_AT: u64 = 8;
/// How soon after the write that wore a KEK version the server must have rotated it: a
/// matter of seconds (the schedule's idle poll is 5 minutes), with room for a loaded
/// 2-core machine.
const PROMPTLY: Duration = Duration::from_secs(20);

/// The `wrap` calls the key provider made since the server started (`/metrics`).
async fn kek_wraps_since_start(server: &TestServer) -> f64 {
    let response = server
        .admin()
        .send(http::Method::GET, "/metrics", None)
        .await;
    response.assert_status(200);
    let series = "coffre_key_provider_duration_seconds_count{op=\"wrap\",provider=\"local-file\"}";
    response
        .text
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{}", response.text))
}

/// Writes `rounds` versions of each of `keys` (the last one stays) into `live`: every PUT
/// wraps one DEK under the tenant's current KEK.
async fn write_rounds(
    s3: &Client,
    live: &mut Vec<Stored>,
    keys: &[&str],
    rounds: usize,
    seed: u64,
) {
    for round in 0..rounds {
        for (i, key) in keys.iter().enumerate() {
            // One in each round needs a data file (the inline threshold is 64 KiB).
            let len = if i == 0 {
                100_000 + round
            } else {
                700 + 31 * i
            };
            let body = pseudo_random_bytes(len, seed + (round * keys.len() + i) as u64);
            put(s3, key, &body).await;
            live.retain(|s| s.key != *key);
            live.push(Stored {
                key: key.to_string(),
                body,
            });
        }
    }
}

async fn check_live(s3: &Client, live: &[Stored], when: &str) {
    for object in live {
        let body = s3
            .get_object()
            .bucket(BUCKET)
            .key(&object.key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{when}: GET {}: {e:?}", object.key))
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        assert!(
            body == object.body,
            "{when}: {} reads back different bytes",
            object.key
        );
    }
}

fn dek_wraps(encryption: &Value) -> Vec<(u64, u64)> {
    encryption["keks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["version"].as_u64().unwrap(),
                k["dek_wraps"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// One automatic rotation, the server running: version `from` of the tenant's KEK is one
/// wrap short of the limit and not rotated; `last` writes the one more object that wears
/// it, and the server must rotate it to `from + 1` by itself within `PROMPTLY`, then rewrap
/// the `live` DEKs and retire `from`.
async fn worn_kek_round(
    server: &TestServer,
    from: u64,
    live: &mut Vec<Stored>,
    last: (&str, u64),
) -> Value {
    let short = encryption(server).await;
    assert_eq!(short["kek_version"], from, "{short:#}");
    assert_eq!(
        dek_wraps(&short),
        [(from, WORN_AT - 1)],
        "every stored DEK is counted, and one short of the limit is not rotated: {short:#}"
    );
    let provider_wraps = kek_wraps_since_start(server).await;

    write_rounds(&server.s3_client(), live, &[last.0], 1, last.1).await;
    let worn = Instant::now();
    let rotated = wait_within(server, "the automatic rotation", PROMPTLY, |e| {
        e["kek_version"].as_u64() == Some(from + 1)
    })
    .await;
    assert!(
        rotated["rotation"]["started"].is_string(),
        "a rotation was recorded: {rotated:#}"
    );
    eprintln!(
        "KEK version {from} rotated {:?} after the write that wore it",
        worn.elapsed()
    );
    // The only KEK the provider wrapped meanwhile is the new version.
    assert_eq!(
        kek_wraps_since_start(server).await - provider_wraps,
        1.0,
        "{rotated:#}"
    );
    let finished = wait_for(server, "the end of the automatic rotation", |e| {
        e["rotation"]["state"] == "finished"
    })
    .await;
    let live_count = live.len() as u64;
    assert_eq!(
        dek_wraps(&finished),
        [(from + 1, live_count)],
        "version {from} retired; the new one wraps the rewrapped DEKs: {finished:#}"
    );
    assert_eq!(
        finished["rotation"]["deks_rewrapped"], live_count,
        "{finished:#}"
    );
    assert_eq!(
        finished["rotation"]["retired_kek_versions"],
        serde_json::json!([from])
    );
    assert!(
        live_count < WORN_AT,
        "the rewrap alone must not wear the new version out"
    );
    finished
}

/// `[key_rotation] max_dek_wraps`: once a tenant's current KEK version has wrapped that
/// many DEKs, the running server rotates it by itself within seconds (no admin call, no
/// restart), rewraps the existing DEKs under the new version and retires the old one;
/// objects written before, between and after two such rotations read back exactly, also
/// after a restart.
#[tokio::test]
async fn a_kek_that_wrapped_its_limit_is_rotated_by_the_server() {
    let config = format!("[key_rotation]\nmax_dek_wraps = {WORN_AT}\nretire_grace_secs = 1\n");
    let mut server = TestServer::start_with_config(&config, &[]);
    let s3 = server.s3_client();
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let mut live = Vec::new();

    // Version 1: 4 keys written, 3 of them once more: 7 wraps, then the 8th.
    let keys = ["v1/a", "v1/b", "v1/c", "v1/d"];
    write_rounds(&s3, &mut live, &keys, 1, 1000).await;
    write_rounds(&s3, &mut live, &keys[..3], 1, 1100).await;
    let short = encryption(&server).await;
    assert_eq!(short["rotation"], Value::Null, "{short:#}");
    check_live(&s3, &live, "under version 1").await;
    worn_kek_round(&server, 1, &mut live, ("v1/d", 1200)).await;
    check_live(&s3, &live, "after the first automatic rotation").await;

    // Version 2 wraps the 4 rewrapped DEKs; 2 keys written, one of them twice: 7, then 8.
    write_rounds(&s3, &mut live, &["v2/a", "v2/b"], 1, 2000).await;
    write_rounds(&s3, &mut live, &["v2/a"], 1, 2100).await;
    check_live(&s3, &live, "under version 2").await;
    worn_kek_round(&server, 2, &mut live, ("v2/b", 2200)).await;

    write_rounds(&s3, &mut live, &["v3/a"], 1, 3000).await;
    check_live(&s3, &live, "after the second automatic rotation").await;
    server.restart();
    check_live(&server.s3_client(), &live, "after a restart").await;
    let last = encryption(&server).await;
    assert_eq!(last["kek_version"], 3, "{last:#}");

    // Each rotation is audited as the server's, with its reason.
    server.stop();
    let records = audit_records(&server.data_dir().join("audit"));
    let automatic: Vec<u64> = records
        .iter()
        .filter(|r| r["operation"] == "RotateTenantKey")
        .map(|r| {
            assert_eq!(r["change"]["reason"], "max_dek_wraps", "{r:#}");
            assert_eq!(r["change"]["max_dek_wraps"], WORN_AT, "{r:#}");
            r["change"]["kek_version"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(automatic, [2, 3]);
}
