//! `[key_provider] tenant_keys_in_hsm = true` with the `pkcs11` provider on a SoftHSM2 token:
//! each tenant KEK version is wrapped under a tenant key of its own, a persistent object in
//! the token, and deleting the tenant destroys those objects. A copy of the data directory
//! taken before the deletion is then useless for that tenant even with the root key, while
//! a tenant created before the setting (its KEK under the root key) is still read from it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::OnceLock;

use coffre_conformance::softhsm::SoftHsmToken;
use coffre_conformance::TestServer;
use coffre_crypto::key_provider::DEFAULT_PKCS11_MODULE;
use coffre_crypto::{KekVersion, KeyProvider, Pkcs11Config, Pkcs11KeyProvider, TenantId};
use http::Method;

const BUCKET: &str = "vault";

/// One token for the tests of this file, which look into it from this process: SoftHSM2 reads
/// `SOFTHSM2_CONF` (process-wide) when the module loads, so the tests share one token and
/// take turns (under `cargo test` they are threads of one process).
fn shared_token() -> &'static SoftHsmToken {
    static TOKEN: OnceLock<SoftHsmToken> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let token = SoftHsmToken::init("coffre-tenant-keys");
        std::env::set_var("SOFTHSM2_CONF", &token.conf);
        token
    })
}
static TAKING_TURNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const KEY: &str = "contract.pdf";

/// The tenant keys the token holds for `tenant`, as the provider finds them (opened in this
/// process while no server runs: SoftHSM2's file store dislikes concurrent writers).
fn tenant_keys_in_token(token: &SoftHsmToken, tenant: TenantId) -> Vec<KekVersion> {
    let mut config = Pkcs11Config::new(token.label.clone(), &token.pin_file);
    config.module = DEFAULT_PKCS11_MODULE.into();
    let provider = Pkcs11KeyProvider::open(config).expect("open the test token");
    provider.tenant_keys(tenant).expect("list the tenant keys")
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
) -> (TenantId, (String, String)) {
    let admin = server.admin();
    let doc = admin
        .create_tenant(serde_json::json!({ "name": name }))
        .await;
    let id = TenantId::parse_hex(doc["id"].as_str().expect("tenant id")).expect("hex tenant id");
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
    let _turn = TAKING_TURNS.lock().await;
    let token = shared_token();
    let mut server = TestServer::start_with_config(&token.key_provider_toml(), &token.env());
    let (legacy_id, legacy) = tenant_with_object(&server, "legacy", b"under the root key").await;

    // The setting applies to tenants created from now on; the older one keeps working.
    server.stop();
    assert_eq!(tenant_keys_in_token(token, legacy_id), vec![]);
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
    assert_eq!(tenant_keys_in_token(token, hsm_id), vec![KekVersion::FIRST]);
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
        tenant_keys_in_token(token, hsm_id),
        vec![],
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
}

/// A tenant KEK rotation under `tenant_keys_in_hsm`: the new version gets a key of its own
/// in the token, and retiring the old version (once every DEK is rewrapped) destroys the old
/// version's key there; the tenant's objects stay readable throughout and after a restart.
#[tokio::test]
async fn retiring_a_rotated_kek_version_destroys_its_key_in_the_hsm() {
    let _turn = TAKING_TURNS.lock().await;
    let token = shared_token();
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
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
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
            std::time::Instant::now() < deadline,
            "the rotation did not finish: {doc:#}"
        );
        assert_eq!(read(&server, &key).await.unwrap(), b"kept across versions");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        doc["encryption"]["keks"][0]["root_version"],
        serde_json::Value::Null,
        "the new version is under a tenant key too: {doc:#}"
    );
    assert_eq!(read(&server, &key).await.unwrap(), b"kept across versions");

    server.stop();
    assert_eq!(
        tenant_keys_in_token(token, id),
        vec![KekVersion::new(2)],
        "the retired version's key is destroyed in the token"
    );
    server.start_again();
    assert_eq!(read(&server, &key).await.unwrap(), b"kept across versions");
}
