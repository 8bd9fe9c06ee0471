//! `[key_provider] tenant_keys_in_hsm = true` with the `pkcs11` provider on a SoftHSM2 token:
//! each tenant KEK version is wrapped under a tenant key of its own, a persistent object in
//! the token, and deleting the tenant destroys those objects. A copy of the data directory
//! taken before the deletion is then useless for that tenant even with the root key, while
//! a tenant created before the setting (its KEK under the root key) is still read from it.
//!
//! What the token holds is listed with the token's own tool, OpenSC's `pkcs11-tool`, never
//! with the code under test. Each test has a token of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use coffre_conformance::softhsm::SoftHsmToken;
use coffre_conformance::TestServer;
use http::Method;

const BUCKET: &str = "vault";
const KEY: &str = "contract.pdf";

/// The KEK versions whose tenant keys the token holds for `tenant` (hex id), as the token's
/// own tool lists them (`pkcs11-tool`, not the provider under test). Each must be named and
/// identified as the README says (label `coffre-root/tenant/<id>/v<N>`, `CKA_ID` = id | N)
/// and be a sensitive, never extractable AES-256 key that only encrypts and decrypts. Call
/// while no server runs: SoftHSM2's file store is not shared between live processes.
fn tenant_keys_in_token(token: &SoftHsmToken, tenant: &str) -> Vec<u32> {
    let prefix = format!("coffre-root/tenant/{tenant}/v");
    let mut versions = Vec::new();
    for object in token.list_objects() {
        let Some(version) = object.label.strip_prefix(&prefix) else {
            continue;
        };
        let version: u32 = version.parse().expect("a numeric version in the label");
        assert_eq!(object.id, format!("{tenant}{version:08x}"), "{object:?}");
        assert_eq!(
            object.kind, "Secret Key Object; AES length 32",
            "{object:?}"
        );
        assert_eq!(object.usage, ["encrypt", "decrypt"], "{object:?}");
        for protection in ["sensitive", "never extractable"] {
            assert!(
                object.access.iter().any(|a| a == protection),
                "{object:?} is not {protection}"
            );
        }
        versions.push(version);
    }
    versions.sort_unstable();
    versions
}

/// Turns the setting on for the next start (the `[key_provider]` table is the files' last).
fn enable_tenant_keys_in_hsm(dir: &Path) {
    // Every configuration the harness may have written; the setting goes into the
    // [key_provider] table, wherever other tables follow it.
    for name in ["coffre.toml", "coffre-https.toml", "coffre-postgres.toml"] {
        let path = dir.join(name);
        if let Ok(text) = std::fs::read_to_string(&path) {
            let text = text.replacen(
                "[key_provider]\n",
                "[key_provider]\ntenant_keys_in_hsm = true\n",
                1,
            );
            std::fs::write(&path, text).expect("rewrite the configuration");
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Creates tenant `name` with an admin key, a bucket and one object; returns its id.
async fn tenant_with_object(
    server: &TestServer,
    name: &str,
    body: &[u8],
) -> (String, (String, String)) {
    let admin = server.admin();
    let doc = admin
        .create_tenant(serde_json::json!({ "name": name }))
        .await;
    let id = doc["id"].as_str().expect("tenant id").to_owned();
    assert_eq!(id.len(), 32, "a tenant id is 16 bytes in hex: {id}");
    let key = admin.create_key(name, "admin", None).await;
    let s3 = server.s3_client_with(&key.access_key, &key.secret_key);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    s3.put_object()
        .bucket(BUCKET)
        .key(KEY)
        .body(body.to_vec().into())
        .send()
        .await
        .unwrap();
    (id, (key.access_key, key.secret_key))
}

async fn read(server: &TestServer, key: &(String, String)) -> Result<Vec<u8>, String> {
    let s3 = server.s3_client_with(&key.0, &key.1);
    match s3.get_object().bucket(BUCKET).key(KEY).send().await {
        Ok(out) => Ok(out.body.collect().await.unwrap().into_bytes().to_vec()),
        Err(e) => Err(format!("{e:?}")),
    }
}

#[tokio::test]
async fn deleting_a_tenant_destroys_its_keys_in_the_hsm_and_every_copy_of_its_data_is_useless() {
    let token = &SoftHsmToken::init("coffre-tenant-keys");
    let mut server = TestServer::start_with_config(&token.key_provider_toml(), &token.env());
    let (legacy_id, legacy) = tenant_with_object(&server, "legacy", b"under the root key").await;

    // The setting applies to tenants created from now on; the older one keeps working.
    server.stop();
    assert_eq!(tenant_keys_in_token(token, &legacy_id), Vec::<u32>::new());
    enable_tenant_keys_in_hsm(server.data_dir());
    server.start_again();
    let (hsm_id, hsm) = tenant_with_object(&server, "hsm", b"under a tenant key").await;
    let doc = server.admin().tenant("hsm").await.json;
    assert_eq!(
        doc["encryption"]["keks"][0]["root_version"],
        serde_json::Value::Null,
        "{doc:#}"
    );
    assert_eq!(read(&server, &legacy).await.unwrap(), b"under the root key");
    assert_eq!(read(&server, &hsm).await.unwrap(), b"under a tenant key");

    // Found again after a restart.
    server.stop();
    assert_eq!(tenant_keys_in_token(token, &hsm_id), [1]);
    let backup = tempfile::tempdir().unwrap();
    copy_dir(server.data_dir(), backup.path());
    server.start_again();
    assert_eq!(read(&server, &hsm).await.unwrap(), b"under a tenant key");
    assert_eq!(read(&server, &legacy).await.unwrap(), b"under the root key");

    for name in ["hsm", "legacy"] {
        server
            .admin()
            .send(
                Method::DELETE,
                &format!("/admin/v1/tenants/{name}?force=true"),
                None,
            )
            .await
            .assert_status(204);
    }
    server.stop();
    assert_eq!(
        tenant_keys_in_token(token, &hsm_id),
        Vec::<u32>::new(),
        "the deleted tenant's keys are gone from the token"
    );

    // A server over the copy, with the same token (the root key is still there).
    let mut copy = TestServer::start_with_config(&token.key_provider_toml(), &token.env());
    copy.stop();
    std::fs::remove_dir_all(copy.data_dir()).unwrap();
    copy_dir(backup.path(), copy.data_dir());
    copy.start_again();
    assert_eq!(
        read(&copy, &legacy).await.unwrap(),
        b"under the root key",
        "a KEK under the root key outlives its tenant in a copy"
    );
    let refused = read(&copy, &hsm).await;
    assert!(
        refused.is_err(),
        "the deleted tenant's object was read from the copy: {refused:?}"
    );
    copy.stop();
    let labels: Vec<String> = token.list_objects().into_iter().map(|o| o.label).collect();
    assert_eq!(
        labels,
        ["coffre-root/v1"],
        "only the root key is left in the token"
    );
}

/// A tenant KEK rotation under `tenant_keys_in_hsm`: the new version gets a key of its own
/// in the token, and retiring the old version (once every DEK is rewrapped) destroys the old
/// version's key there; the tenant's objects stay readable throughout and after a restart.
#[tokio::test]
async fn retiring_a_rotated_kek_version_destroys_its_key_in_the_hsm() {
    let token = &SoftHsmToken::init("coffre-tenant-keys");
    // The `[key_provider]` table is the last of the generated configuration.
    let config = format!(
        "{}tenant_keys_in_hsm = true\n\n[key_rotation]\nrewrap_batch = 1\nretire_grace_secs = 1\n",
        token.key_provider_toml()
    );
    let mut server = TestServer::start_with_config(&config, &token.env());
    let (id, key) = tenant_with_object(&server, "rotating", b"kept across versions").await;

    server
        .admin()
        .send(Method::POST, "/admin/v1/tenants/rotating/rotate-key", None)
        .await
        .assert_status(202);
    let deadline = Instant::now() + Duration::from_secs(120);
    let doc = loop {
        let doc = server.admin().tenant("rotating").await.json;
        let versions: Vec<u64> = doc["encryption"]["keks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["version"].as_u64().unwrap())
            .collect();
        if doc["encryption"]["rotation"]["state"] == "finished" && versions == [2] {
            break doc;
        }
        assert!(
            Instant::now() < deadline,
            "the rotation did not finish: {doc:#}"
        );
        assert_eq!(read(&server, &key).await.unwrap(), b"kept across versions");
        // Polls the rotation's state (the event) under the deadline above.
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        doc["encryption"]["keks"][0]["root_version"],
        serde_json::Value::Null,
        "the new version is under a tenant key too: {doc:#}"
    );
    assert_eq!(read(&server, &key).await.unwrap(), b"kept across versions");

    server.stop();
    assert_eq!(
        tenant_keys_in_token(token, &id),
        [2],
        "the retired version's key is destroyed in the token"
    );
    server.start_again();
    assert_eq!(read(&server, &key).await.unwrap(), b"kept across versions");
}
