//! One behaviour suite for every root-key provider (OpenDAL style): each `#[test]` below runs
//! the same checks against `local-file` and against `pkcs11` on a SoftHSM2 token that this
//! file initializes in a temporary directory.
//!
//! The pkcs11 tests need Debian's `softhsm2` package (`apt-get install -y softhsm2`); without
//! it they fail and say so.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use coffre_crypto::{
    EncryptionError, Kek, KekCache, KekVersion, KekWrapper, KeyProvider, LocalFileKeyProvider,
    Pkcs11Config, Pkcs11KeyProvider, RootKeyVersion, TenantId,
};

// ---- the behaviour suite ----

/// Opens the same provider again (same file, same token and label), as after a restart.
type Reopen<'a> = &'a dyn Fn() -> Box<dyn KeyProvider>;

fn wraps_and_unwraps(provider: &dyn KeyProvider) {
    let tenant = TenantId::random();
    for version in [KekVersion::FIRST, KekVersion::new(2)] {
        let kek = Kek::generate(version).unwrap();
        let wrapped = provider.wrap_kek(tenant, &kek).unwrap();
        assert_eq!(wrapped.kek_version, version);
        assert_eq!(
            wrapped.root_version(),
            Some(provider.current_root_version())
        );
        assert_eq!(wrapped.ciphertext.len(), 48);
        let unwrapped = provider.unwrap_kek(tenant, &wrapped).unwrap();
        assert_eq!(unwrapped.version(), version);
        assert_same_kek(&kek, &unwrapped);
    }
}

fn binds_tenant_and_versions(provider: &dyn KeyProvider) {
    let tenant = TenantId::random();
    let wrapped = provider
        .wrap_kek(tenant, &Kek::generate(KekVersion::FIRST).unwrap())
        .unwrap();
    assert_integrity_failure(provider.unwrap_kek(TenantId::random(), &wrapped));
    let mut relabelled = wrapped.clone();
    relabelled.kek_version = KekVersion::new(2);
    assert_integrity_failure(provider.unwrap_kek(tenant, &relabelled));
    for bit in [0, 100, 383] {
        let mut flipped = wrapped.clone();
        flipped.ciphertext[bit / 8] ^= 1 << (bit % 8);
        assert_integrity_failure(provider.unwrap_kek(tenant, &flipped));
    }
    let mut nonce = wrapped.clone();
    nonce.nonce[5] ^= 1;
    assert_integrity_failure(provider.unwrap_kek(tenant, &nonce));
    let mut unknown_root = wrapped.clone();
    unknown_root.wrapper = KekWrapper::Root(RootKeyVersion::new(9_999));
    assert_integrity_failure(provider.unwrap_kek(tenant, &unknown_root));
    let mut short = wrapped;
    short.ciphertext.truncate(40);
    assert_integrity_failure(provider.unwrap_kek(tenant, &short));
}

fn rotates_the_root_key(provider: &dyn KeyProvider, reopen: Reopen<'_>) {
    let tenant = TenantId::random();
    let kek = Kek::generate(KekVersion::FIRST).unwrap();
    let old = provider.wrap_kek(tenant, &kek).unwrap();
    let first = provider.current_root_version();

    let second = provider.rotate_root().unwrap();
    assert!(second > first);
    assert_eq!(provider.current_root_version(), second);
    assert_eq!(provider.root_versions(), vec![first, second]);
    // Both versions readable while KEKs are rewrapped.
    assert_same_kek(&kek, &provider.unwrap_kek(tenant, &old).unwrap());
    let rewrapped = provider.rewrap_kek(tenant, &old).unwrap();
    assert_eq!(rewrapped.root_version(), Some(second));
    assert_eq!(
        provider.wrap_kek(tenant, &kek).unwrap().root_version(),
        Some(second)
    );

    assert!(matches!(
        provider.destroy_root(second),
        Err(EncryptionError::Refused(_))
    ));
    provider.destroy_root(first).unwrap();
    assert_eq!(provider.root_versions(), vec![second]);
    assert_integrity_failure(provider.unwrap_kek(tenant, &old));
    assert_same_kek(&kek, &provider.unwrap_kek(tenant, &rewrapped).unwrap());

    // A restart sees the rotation.
    let again = reopen();
    assert_eq!(again.root_versions(), vec![second]);
    assert_same_kek(&kek, &again.unwrap_kek(tenant, &rewrapped).unwrap());
    assert_integrity_failure(again.unwrap_kek(tenant, &old));
}

/// A crash between creating the new root version and destroying the old one: a restart
/// finds both, the newest current, and every KEK of either still opens.
fn an_unfinished_rotation_survives_a_restart(provider: &dyn KeyProvider, reopen: Reopen<'_>) {
    let tenant = TenantId::random();
    let kek = Kek::generate(KekVersion::FIRST).unwrap();
    let under_first = provider.wrap_kek(tenant, &kek).unwrap();
    let first = provider.current_root_version();
    let second = provider.rotate_root().unwrap();

    let again = reopen();
    assert_eq!(again.root_versions(), vec![first, second]);
    assert_eq!(
        again.current_root_version(),
        second,
        "the newest is current"
    );
    assert_same_kek(&kek, &again.unwrap_kek(tenant, &under_first).unwrap());
    let under_second = again.rewrap_kek(tenant, &under_first).unwrap();
    assert_eq!(under_second.root_version(), Some(second));
    assert_eq!(under_second.kek_version, KekVersion::FIRST);
    assert_ne!(under_second.ciphertext, under_first.ciphertext);
    // The rewrapped KEK is still bound to its tenant.
    assert_integrity_failure(again.unwrap_kek(TenantId::random(), &under_second));

    again.destroy_root(first).unwrap();
    let after = reopen();
    assert_eq!(after.root_versions(), vec![second]);
    assert_eq!(after.current_root_version(), second);
    assert_same_kek(&kek, &after.unwrap_kek(tenant, &under_second).unwrap());
    assert_integrity_failure(after.unwrap_kek(tenant, &under_first));
}

/// Several rotations, then old versions destroyed in any order: each destruction takes
/// exactly its own version, refusals change nothing, and the current version is found
/// again after a restart.
fn destroys_old_versions_in_any_order(provider: &dyn KeyProvider, reopen: Reopen<'_>) {
    let tenant = TenantId::random();
    let kek = Kek::generate(KekVersion::new(3)).unwrap();
    let mut wrapped = vec![provider.wrap_kek(tenant, &kek).unwrap()];
    for _ in 0..2 {
        provider.rotate_root().unwrap();
        wrapped.push(provider.wrap_kek(tenant, &kek).unwrap());
    }
    let versions: Vec<RootKeyVersion> = wrapped.iter().filter_map(|w| w.root_version()).collect();
    assert_eq!(provider.root_versions(), versions);
    let (oldest, middle, current) = (versions[0], versions[1], versions[2]);

    provider.destroy_root(middle).unwrap();
    assert_eq!(provider.root_versions(), vec![oldest, current]);
    assert_integrity_failure(provider.unwrap_kek(tenant, &wrapped[1]));
    assert_same_kek(&kek, &provider.unwrap_kek(tenant, &wrapped[0]).unwrap());
    assert_same_kek(&kek, &provider.unwrap_kek(tenant, &wrapped[2]).unwrap());

    assert!(provider.destroy_root(middle).is_err(), "already destroyed");
    assert!(provider.destroy_root(RootKeyVersion::new(77)).is_err());
    assert!(matches!(
        provider.destroy_root(current),
        Err(EncryptionError::Refused(_))
    ));
    assert_eq!(provider.root_versions(), vec![oldest, current]);

    provider.destroy_root(oldest).unwrap();
    let again = reopen();
    assert_eq!(again.root_versions(), vec![current]);
    assert_eq!(again.current_root_version(), current);
    assert_same_kek(&kek, &again.unwrap_kek(tenant, &wrapped[2]).unwrap());
    // Rotation goes on after the highest version ever used.
    let next = again.rotate_root().unwrap();
    assert!(next > current, "{next} after {current}");
    assert_eq!(
        again.wrap_kek(tenant, &kek).unwrap().root_version(),
        Some(next)
    );
}

fn survives_a_restart(provider: &dyn KeyProvider, reopen: Reopen<'_>) {
    let tenant = TenantId::random();
    let kek = Kek::generate(KekVersion::FIRST).unwrap();
    let wrapped = provider.wrap_kek(tenant, &kek).unwrap();
    let again = reopen();
    assert_eq!(again.kind(), provider.kind());
    assert_eq!(again.root_versions(), provider.root_versions());
    assert_same_kek(&kek, &again.unwrap_kek(tenant, &wrapped).unwrap());
}

fn feeds_the_kek_cache(provider: &dyn KeyProvider) {
    let tenant = TenantId::random();
    let wrapped = provider
        .wrap_kek(tenant, &Kek::generate(KekVersion::FIRST).unwrap())
        .unwrap();
    let cache = KekCache::new(16, Duration::from_secs(300));
    let first = cache.get_or_unwrap(tenant, &wrapped, provider).unwrap();
    for _ in 0..5 {
        let hit = cache.get_or_unwrap(tenant, &wrapped, provider).unwrap();
        assert!(Arc::ptr_eq(&first, &hit));
    }
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.entries), (5, 1, 1));
    assert!(cache
        .get_or_unwrap(TenantId::random(), &wrapped, provider)
        .is_err());
}

/// Without `tenant_keys_in_hsm` (the default, and the only way for `local-file`), a new KEK
/// version is wrapped by the root key and no tenant key is made; a KEK wrapped under a tenant
/// key does not open without one.
fn wraps_new_keks_under_the_root_by_default(provider: &dyn KeyProvider) {
    let tenant = TenantId::random();
    let kek = Kek::generate(KekVersion::FIRST).unwrap();
    let wrapped = provider.wrap_new_kek(tenant, &kek).unwrap();
    assert_eq!(
        wrapped.wrapper,
        KekWrapper::Root(provider.current_root_version())
    );
    assert_same_kek(&kek, &provider.unwrap_kek(tenant, &wrapped).unwrap());
    assert_eq!(provider.tenant_keys(tenant).unwrap(), vec![]);
    assert_eq!(provider.destroy_tenant_keys(tenant, None).unwrap(), vec![]);
    let mut posing = wrapped;
    posing.wrapper = KekWrapper::TenantKey;
    assert!(provider.unwrap_kek(tenant, &posing).is_err());
    assert!(matches!(
        provider.rewrap_kek(tenant, &posing),
        Err(EncryptionError::Refused(_))
    ));
}

fn keeps_secrets_out_of_debug(provider: &dyn KeyProvider) {
    let kek = Kek::generate(KekVersion::FIRST).unwrap();
    assert!(format!("{kek:?}").contains("redacted"));
    let shown = format!("{provider:?}");
    assert!(shown.contains("root_versions"), "{shown}");
}

/// The same unwrapped key: a DEK wrapped by one opens under the other.
fn assert_same_kek(a: &Kek, b: &Kek) {
    use coffre_crypto::{BucketId, Dek, DekContext, ObjectId};
    let context = DekContext {
        tenant: TenantId::random(),
        bucket: BucketId::random(),
        key: "k",
        object: ObjectId::random(),
        version: 0,
    };
    let wrapped = a.wrap_dek(&Dek::generate(), &context).unwrap();
    b.unwrap_dek(&wrapped, &context).unwrap();
}

fn assert_integrity_failure<T>(result: Result<T, EncryptionError>) {
    match result {
        Ok(_) => panic!("unwrapped what it should have refused"),
        Err(e) => assert!(
            e.is_integrity_failure(),
            "expected an integrity failure, got {e}"
        ),
    }
}

macro_rules! behaviour_tests {
    ($provider:ident) => {
        mod $provider {
            #[test]
            fn wraps_and_unwraps() {
                let (_guard, provider, _) = super::$provider("wraps");
                super::wraps_and_unwraps(provider.as_ref());
            }

            #[test]
            fn binds_tenant_and_versions() {
                let (_guard, provider, _) = super::$provider("binds");
                super::binds_tenant_and_versions(provider.as_ref());
            }

            #[test]
            fn rotates_the_root_key() {
                let (_guard, provider, reopen) = super::$provider("rotates");
                super::rotates_the_root_key(provider.as_ref(), &reopen);
            }

            #[test]
            fn an_unfinished_rotation_survives_a_restart() {
                let (_guard, provider, reopen) = super::$provider("unfinished");
                super::an_unfinished_rotation_survives_a_restart(provider.as_ref(), &reopen);
            }

            #[test]
            fn destroys_old_versions_in_any_order() {
                let (_guard, provider, reopen) = super::$provider("any-order");
                super::destroys_old_versions_in_any_order(provider.as_ref(), &reopen);
            }

            #[test]
            fn survives_a_restart() {
                let (_guard, provider, reopen) = super::$provider("restart");
                super::survives_a_restart(provider.as_ref(), &reopen);
            }

            #[test]
            fn feeds_the_kek_cache() {
                let (_guard, provider, _) = super::$provider("cache");
                super::feeds_the_kek_cache(provider.as_ref());
            }

            #[test]
            fn wraps_new_keks_under_the_root_by_default() {
                let (_guard, provider, _) = super::$provider("default-new");
                super::wraps_new_keks_under_the_root_by_default(provider.as_ref());
            }

            #[test]
            fn keeps_secrets_out_of_debug() {
                let (_guard, provider, _) = super::$provider("debug");
                super::keeps_secrets_out_of_debug(provider.as_ref());
            }
        }
    };
}

behaviour_tests!(local_file);
behaviour_tests!(pkcs11);

// ---- local-file ----

/// Whatever must live as long as the test: a temporary directory, a lock.
type Fixture = (
    Box<dyn std::any::Any>,
    Box<dyn KeyProvider>,
    Box<dyn Fn() -> Box<dyn KeyProvider>>,
);

fn local_file(_name: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("root.key");
    let provider = LocalFileKeyProvider::open_or_create(&path).unwrap();
    assert!(provider.was_created());
    let reopen = move || -> Box<dyn KeyProvider> {
        let provider = LocalFileKeyProvider::open_or_create(&path).unwrap();
        assert!(!provider.was_created());
        Box::new(provider)
    };
    (Box::new(dir), Box::new(provider), Box::new(reopen))
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn local_file_is_created_private_and_refused_when_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("root.key");
    LocalFileKeyProvider::open_or_create(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("development only"));

    for insecure in [0o640, 0o604, 0o644, 0o660] {
        fs::set_permissions(&path, fs::Permissions::from_mode(insecure)).unwrap();
        let err = LocalFileKeyProvider::open_or_create(&path).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    LocalFileKeyProvider::open_or_create(&path).unwrap();
}

#[test]
fn local_file_rotation_keeps_the_file_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("root.key");
    let provider = LocalFileKeyProvider::open_or_create(&path).unwrap();
    provider.rotate_root().unwrap();
    assert_eq!(mode(&path), 0o600);
    assert!(!dir.path().join("root.key.tmp").exists());
}

#[test]
fn local_file_refuses_a_damaged_file() {
    let dir = tempfile::tempdir().unwrap();
    for content in [
        "",
        "# only a comment\n",
        "1 abcd\n",
        "x 00\n",
        "1 {k}\n1 {k}\n",
    ] {
        let path = dir.path().join("bad.key");
        let content = content.replace("{k}", &"00".repeat(32));
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            LocalFileKeyProvider::open_or_create(&path),
            Err(EncryptionError::KeyFile { .. })
        ));
    }
}

// ---- pkcs11 on SoftHSM2 ----

const TOKEN_LABEL: &str = "coffre-test";
const USER_PIN: &str = "1234";

struct SoftHsm {
    _dir: tempfile::TempDir,
    pin_file: PathBuf,
}

/// One SoftHSM2 token for the whole test binary: SoftHSM reads `SOFTHSM2_CONF` once, when
/// the module is initialized. Each test uses its own key label inside it.
fn softhsm() -> &'static SoftHsm {
    static SOFTHSM: OnceLock<SoftHsm> = OnceLock::new();
    SOFTHSM.get_or_init(|| {
        let module = Path::new(coffre_crypto::key_provider::DEFAULT_PKCS11_MODULE);
        assert!(
            module.exists(),
            "{} is missing: the pkcs11 tests need SoftHSM2 (apt-get install -y softhsm2)",
            module.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        fs::create_dir(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        // Before any thread loads the module; nothing else in this binary reads it.
        std::env::set_var("SOFTHSM2_CONF", &conf);
        let output = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &conf)
            .args(["--init-token", "--free", "--label", TOKEN_LABEL])
            .args(["--pin", USER_PIN, "--so-pin", "5678"])
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run softhsm2-util ({e}): the pkcs11 tests need SoftHSM2 \
                     (apt-get install -y softhsm2)"
                )
            });
        assert!(
            output.status.success(),
            "softhsm2-util --init-token failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let pin_file = dir.path().join("pin");
        fs::write(&pin_file, format!("{USER_PIN}\n")).unwrap();
        fs::set_permissions(&pin_file, fs::Permissions::from_mode(0o600)).unwrap();
        SoftHsm {
            _dir: dir,
            pin_file,
        }
    })
}

fn pkcs11_config(key_label: &str) -> Pkcs11Config {
    let mut config = Pkcs11Config::new(TOKEN_LABEL, &softhsm().pin_file);
    config.key_label = key_label.to_owned();
    config
}

/// SoftHSM2's file store fails (CKR_GENERAL_ERROR) when two sessions create token objects
/// at once, so the pkcs11 tests take turns. (Coffre creates a root key only at first start
/// and on rotation, one at a time.)
fn hsm_turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn pkcs11(name: &str) -> Fixture {
    let turn = hsm_turn();
    let config = pkcs11_config(&format!("coffre-root-{name}"));
    let provider = Pkcs11KeyProvider::open(config.clone()).unwrap();
    assert_eq!(provider.root_versions(), vec![RootKeyVersion::FIRST]);
    let reopen = move || -> Box<dyn KeyProvider> {
        Box::new(Pkcs11KeyProvider::open(config.clone()).unwrap())
    };
    (Box::new(turn), Box::new(provider), Box::new(reopen))
}

#[test]
fn pkcs11_root_key_is_sensitive_and_not_extractable() {
    use cryptoki::context::Pkcs11;
    use cryptoki::object::{Attribute, AttributeType};
    let _turn = hsm_turn();
    let config = pkcs11_config("coffre-root-attributes");
    let _provider = Pkcs11KeyProvider::open(config.clone()).unwrap();
    let context = Pkcs11::new(&config.module).unwrap();
    let slot = context
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| context.get_token_info(*s).unwrap().label() == TOKEN_LABEL)
        .unwrap();
    let session = context.open_ro_session(slot).unwrap();
    let _ = session.login(cryptoki::session::UserType::User, Some(&USER_PIN.into()));
    let keys = session
        .find_objects(&[Attribute::Label(b"coffre-root-attributes/v1".to_vec())])
        .unwrap();
    assert_eq!(keys.len(), 1);
    let attributes = session
        .get_attributes(
            keys[0],
            &[
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::Token,
                AttributeType::Value,
            ],
        )
        .unwrap();
    assert!(attributes.contains(&Attribute::Sensitive(true)));
    assert!(attributes.contains(&Attribute::Extractable(false)));
    assert!(attributes.contains(&Attribute::Token(true)));
    assert!(
        !attributes.iter().any(|a| matches!(a, Attribute::Value(_))),
        "the key value must not be readable"
    );
}

/// A session of its own on the test token, logged in, for looking at or planting objects.
fn token_session() -> cryptoki::session::Session {
    use cryptoki::context::Pkcs11;
    let config = pkcs11_config("unused");
    let context = Pkcs11::new(&config.module).unwrap();
    // Already initialized by the provider in this process, or not yet.
    let _ = context.initialize(cryptoki::context::CInitializeArgs::new(
        cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
    ));
    let slot = context
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| context.get_token_info(*s).unwrap().label() == TOKEN_LABEL)
        .unwrap();
    let session = context.open_rw_session(slot).unwrap();
    let _ = session.login(cryptoki::session::UserType::User, Some(&USER_PIN.into()));
    session
}

fn aes_key(session: &cryptoki::session::Session, label: &str, id: u32) {
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::{Attribute, ObjectClass};
    session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(cryptoki::object::KeyType::AES),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Id(id.to_be_bytes().to_vec()),
                Attribute::ValueLen(32.into()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
            ],
        )
        .unwrap();
}

#[test]
fn pkcs11_rotated_keys_carry_versioned_labels_and_legacy_ones_are_found() {
    use cryptoki::object::{Attribute, AttributeType};
    let _turn = hsm_turn();
    // Version 1 as an earlier build made it: the plain label, the version in CKA_ID only.
    let session = token_session();
    aes_key(&session, "coffre-root-legacy", 1);
    let config = pkcs11_config("coffre-root-legacy");
    let provider = Pkcs11KeyProvider::open(config.clone()).unwrap();
    assert_eq!(provider.root_versions(), vec![RootKeyVersion::FIRST]);
    let second = provider.rotate_root().unwrap();
    let labelled = session
        .find_objects(&[Attribute::Label(
            coffre_crypto::key_provider::root_key_label("coffre-root-legacy", second).into_bytes(),
        )])
        .unwrap();
    assert_eq!(
        labelled.len(),
        1,
        "the new version is labelled with its version"
    );
    let attributes = session
        .get_attributes(
            labelled[0],
            &[
                AttributeType::Id,
                AttributeType::Extractable,
                AttributeType::Sensitive,
            ],
        )
        .unwrap();
    assert!(attributes.contains(&Attribute::Id(second.get().to_be_bytes().to_vec())));
    assert!(attributes.contains(&Attribute::Extractable(false)));
    assert!(attributes.contains(&Attribute::Sensitive(true)));
    let again = Pkcs11KeyProvider::open(config.clone()).unwrap();
    assert_eq!(again.root_versions(), vec![RootKeyVersion::FIRST, second]);
    assert_eq!(again.current_root_version(), second);

    // Keys of other labels, or whose label and CKA_ID disagree, are not taken for ours.
    aes_key(&session, "coffre-root-legacy-other/v9", 9);
    assert_eq!(
        Pkcs11KeyProvider::open(config.clone())
            .unwrap()
            .root_versions(),
        vec![RootKeyVersion::FIRST, second]
    );
    aes_key(&session, "coffre-root-legacy/v7", 8);
    let err = Pkcs11KeyProvider::open(config).unwrap_err();
    assert!(err.to_string().contains("CKA_ID"), "{err}");
}

#[test]
fn pkcs11_reports_what_is_wrong() {
    let _turn = hsm_turn();
    let mut missing_module = pkcs11_config("coffre-root-errors");
    missing_module.module = PathBuf::from("/nonexistent/libpkcs11.so");
    let err = Pkcs11KeyProvider::open(missing_module).unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");

    let mut wrong_token = pkcs11_config("coffre-root-errors");
    wrong_token.token_label = "no-such-token".to_owned();
    let err = Pkcs11KeyProvider::open(wrong_token).unwrap_err();
    assert!(err.to_string().contains("no-such-token"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let open_pin = dir.path().join("pin");
    fs::write(&open_pin, USER_PIN).unwrap();
    fs::set_permissions(&open_pin, fs::Permissions::from_mode(0o644)).unwrap();
    let mut readable_pin = pkcs11_config("coffre-root-errors");
    readable_pin.pin_file = open_pin;
    let err = Pkcs11KeyProvider::open(readable_pin).unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
}

// ---- pkcs11 tenant keys (tenant_keys_in_hsm) ----

/// The label of `tenant`'s key for KEK `version` under `key_label`.
fn tenant_key_objects(
    session: &cryptoki::session::Session,
    key_label: &str,
    tenant: TenantId,
    version: KekVersion,
) -> Vec<cryptoki::object::ObjectHandle> {
    use cryptoki::object::Attribute;
    let label = coffre_crypto::key_provider::tenant_key_label(key_label, tenant, version);
    session
        .find_objects(&[Attribute::Label(label.into_bytes())])
        .unwrap()
}

#[test]
fn pkcs11_tenant_keys_are_token_objects_found_after_a_restart_and_destroyed() {
    use cryptoki::object::{Attribute, AttributeType};
    let _turn = hsm_turn();
    const LABEL: &str = "coffre-root-tenant-keys";
    let mut config = pkcs11_config(LABEL);
    config.tenant_keys_in_hsm = true;
    let provider = Pkcs11KeyProvider::open(config.clone()).unwrap();
    let (tenant, other) = (TenantId::random(), TenantId::random());
    let (v1, v2) = (KekVersion::FIRST, KekVersion::new(2));
    let kek1 = Kek::generate(v1).unwrap();
    let kek2 = Kek::generate(v2).unwrap();
    let other_kek = Kek::generate(v1).unwrap();
    let wrapped1 = provider.wrap_new_kek(tenant, &kek1).unwrap();
    let wrapped2 = provider.wrap_new_kek(tenant, &kek2).unwrap();
    let other_wrapped = provider.wrap_new_kek(other, &other_kek).unwrap();
    assert_eq!(wrapped1.wrapper, KekWrapper::TenantKey);
    assert_eq!(wrapped1.root_version(), None);
    assert_eq!(provider.tenant_keys(tenant).unwrap(), vec![v1, v2]);
    assert_same_kek(&kek1, &provider.unwrap_kek(tenant, &wrapped1).unwrap());

    // Each is a persistent, sensitive, non-extractable object named by tenant and version.
    let session = token_session();
    let found = tenant_key_objects(&session, LABEL, tenant, v1);
    assert_eq!(found.len(), 1);
    let attributes = session
        .get_attributes(
            found[0],
            &[
                AttributeType::Token,
                AttributeType::Private,
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::Id,
                AttributeType::Value,
            ],
        )
        .unwrap();
    for expected in [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
    ] {
        assert!(
            attributes.contains(&expected),
            "{expected:?} in {attributes:?}"
        );
    }
    let id = [tenant.as_bytes().as_slice(), &1u32.to_be_bytes()].concat();
    assert!(attributes.contains(&Attribute::Id(id)));
    assert!(!attributes.iter().any(|a| matches!(a, Attribute::Value(_))));

    // Bound to tenant and version; not the root key's to rewrap, nor to take away.
    assert_integrity_failure(provider.unwrap_kek(other, &wrapped1));
    assert_integrity_failure(provider.unwrap_kek(TenantId::random(), &wrapped1));
    let mut relabelled = wrapped1.clone();
    relabelled.kek_version = v2;
    assert_integrity_failure(provider.unwrap_kek(tenant, &relabelled));
    let mut flipped = wrapped1.clone();
    flipped.ciphertext[3] ^= 1;
    assert_integrity_failure(provider.unwrap_kek(tenant, &flipped));
    assert!(matches!(
        provider.rewrap_kek(tenant, &wrapped1),
        Err(EncryptionError::Refused(_))
    ));
    let second_root = provider.rotate_root().unwrap();
    provider.destroy_root(RootKeyVersion::FIRST).unwrap();
    assert_eq!(provider.root_versions(), vec![second_root]);
    assert_same_kek(&kek1, &provider.unwrap_kek(tenant, &wrapped1).unwrap());

    // Found again after a restart, with the setting off too (it governs new versions only).
    let mut plain = config.clone();
    plain.tenant_keys_in_hsm = false;
    let again = Pkcs11KeyProvider::open(plain).unwrap();
    assert_eq!(again.tenant_keys(tenant).unwrap(), vec![v1, v2]);
    assert_same_kek(&kek1, &again.unwrap_kek(tenant, &wrapped1).unwrap());
    assert_same_kek(&kek2, &again.unwrap_kek(tenant, &wrapped2).unwrap());
    assert_eq!(
        again.wrap_new_kek(tenant, &kek2).unwrap().root_version(),
        Some(second_root)
    );

    // Retirement of a version, then deletion of the tenant: the objects go, the KEKs with them.
    assert_eq!(
        again.destroy_tenant_keys(tenant, Some(v2)).unwrap(),
        vec![v1]
    );
    assert!(tenant_key_objects(&session, LABEL, tenant, v1).is_empty());
    assert_integrity_failure(again.unwrap_kek(tenant, &wrapped1));
    assert_same_kek(&kek2, &again.unwrap_kek(tenant, &wrapped2).unwrap());
    assert_eq!(again.destroy_tenant_keys(tenant, None).unwrap(), vec![v2]);
    assert!(tenant_key_objects(&session, LABEL, tenant, v2).is_empty());
    assert_eq!(again.tenant_keys(tenant).unwrap(), vec![]);
    let reopened = Pkcs11KeyProvider::open(config.clone()).unwrap();
    assert_integrity_failure(reopened.unwrap_kek(tenant, &wrapped2));
    assert_integrity_failure(provider.unwrap_kek(tenant, &wrapped2));
    assert_eq!(reopened.destroy_tenant_keys(tenant, None).unwrap(), vec![]);
    // The other tenant's key is untouched.
    assert_same_kek(
        &other_kek,
        &reopened.unwrap_kek(other, &other_wrapped).unwrap(),
    );
    assert_eq!(
        tenant_key_objects(&session, LABEL, other, v1).len(),
        1,
        "only the deleted tenant's keys go"
    );

    // A version made again (its first record never written) replaces the orphan.
    let orphan = reopened
        .wrap_new_kek(other, &Kek::generate(v2).unwrap())
        .unwrap();
    let kept = reopened.wrap_new_kek(other, &kek2).unwrap();
    assert_eq!(tenant_key_objects(&session, LABEL, other, v2).len(), 1);
    assert_integrity_failure(reopened.unwrap_kek(other, &orphan));
    assert_same_kek(&kek2, &reopened.unwrap_kek(other, &kept).unwrap());
}
