//! The provider against a real SoftHSM2 token: a lost login and a lost session are
//! recovered by a new session and a new login, and a token that cannot open what it seals
//! stops the start. The tokens' state is broken from outside the provider, through the
//! PKCS#11 API, as an HSM restart or another part of the process would break it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{MutexGuard, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};

use super::*;

const TOKEN_LABEL: &str = "coffre-session-tests";
const USER_PIN: &str = "1234";

struct SoftHsm {
    _dir: tempfile::TempDir,
    pin_file: PathBuf,
}

/// One SoftHSM2 token for this test binary: SoftHSM reads `SOFTHSM2_CONF` when the module
/// is initialized, once per process. No other test of this crate's library loads it.
fn softhsm() -> &'static SoftHsm {
    static SOFTHSM: OnceLock<SoftHsm> = OnceLock::new();
    SOFTHSM.get_or_init(|| {
        assert!(
            Path::new(DEFAULT_PKCS11_MODULE).exists(),
            "{DEFAULT_PKCS11_MODULE} is missing: the pkcs11 tests need SoftHSM2 \
             (apt-get install -y softhsm2)"
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
        std::env::set_var("SOFTHSM2_CONF", &conf);
        let output = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &conf)
            .args(["--init-token", "--free", "--label", TOKEN_LABEL])
            .args(["--pin", USER_PIN, "--so-pin", "5678"])
            .output()
            .expect("run softhsm2-util (apt-get install -y softhsm2)");
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

/// These tests break the module's state for the whole process (a logout, a C_Finalize):
/// they take turns.
fn turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    softhsm();
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

fn config(key_label: &str) -> Pkcs11Config {
    let mut config = Pkcs11Config::new(TOKEN_LABEL, &softhsm().pin_file);
    config.key_label = key_label.to_owned();
    config.tenant_keys_in_hsm = true;
    config
}

/// A second context on the same module, as another library of the process would load it.
fn second_context() -> Pkcs11 {
    Pkcs11::new(DEFAULT_PKCS11_MODULE).unwrap()
}

fn slot(context: &Pkcs11) -> Slot {
    find_token(context, TOKEN_LABEL).unwrap()
}

/// The raw PKCS#11 return value of an operation on the provider's own session, bypassing
/// its recovery: what the token now says about that session.
fn provider_session_state(provider: &Pkcs11KeyProvider) -> Result<SessionState, RvError> {
    let token = provider.token.lock().unwrap();
    match token.session.as_ref().unwrap().get_session_info() {
        Ok(info) => Ok(info.session_state()),
        Err(Pkcs11Error::Pkcs11(rv, _)) => Err(rv),
        Err(e) => panic!("{e}"),
    }
}

fn assert_same(a: &Kek, b: &Kek) {
    assert_eq!(a.version(), b.version());
    assert_eq!(a.secret_bytes(), b.secret_bytes());
}

#[test]
fn a_lost_login_is_recovered_by_a_new_session_and_login() {
    let _turn = turn();
    let provider = Pkcs11KeyProvider::open(config("coffre-lost-login")).unwrap();
    let tenant = TenantId::random();
    let before = Kek::generate(KekVersion::FIRST).unwrap();
    let wrapped_before = provider.wrap_kek(tenant, &before).unwrap();
    let under_tenant_key = provider.wrap_new_kek(tenant, &before).unwrap();

    // The login is the application's, shared by its sessions: a logout through another
    // session logs the provider's out too, and invalidates its private key handles.
    let other = module_context(Path::new(DEFAULT_PKCS11_MODULE))
        .unwrap()
        .open_ro_session(slot(&second_context()))
        .unwrap();
    other.logout().unwrap();
    assert_eq!(
        provider_session_state(&provider),
        Ok(SessionState::RwPublic),
        "the provider's session is no longer logged in"
    );
    {
        let token = provider.token.lock().unwrap();
        let session = token.session.as_ref().unwrap();
        let (_, handle) = token.roots.last().copied().unwrap();
        let ad = kek_wrap_associated_data(tenant, before.version(), RootKeyVersion::FIRST);
        let refused = seal_kek(session, handle, &ad, &before).unwrap_err();
        assert_eq!(
            session_lost(session, &refused),
            Some(Lost::Login),
            "a wrap on the raw session fails for want of a login: {refused}"
        );
    }

    // The provider logs in again (on a new session) and carries on.
    let after = Kek::generate(KekVersion::new(2)).unwrap();
    let wrapped_after = provider.wrap_kek(tenant, &after).unwrap();
    assert_eq!(provider_session_state(&provider), Ok(SessionState::RwUser));
    assert_same(
        &provider.unwrap_kek(tenant, &wrapped_before).unwrap(),
        &before,
    );
    assert_same(
        &provider.unwrap_kek(tenant, &wrapped_after).unwrap(),
        &after,
    );
    assert_same(
        &provider.unwrap_kek(tenant, &under_tenant_key).unwrap(),
        &before,
    );

    // Again, through an unwrap first (a read-only path): the same recovery.
    other
        .logout()
        .unwrap_or_else(|e| panic!("second logout: {e}"));
    assert_same(
        &provider.unwrap_kek(tenant, &wrapped_before).unwrap(),
        &before,
    );
    drop(other);
    assert_eq!(
        provider.destroy_tenant_keys(tenant, None).unwrap(),
        [KekVersion::FIRST]
    );
}

/// After a lost login a search sees no private object: the provider must not take that
/// for "no tenant key", neither when listing nor when destroying them.
#[test]
fn a_lost_login_does_not_hide_the_tenant_keys() {
    let _turn = turn();
    let provider = Pkcs11KeyProvider::open(config("coffre-hidden-keys")).unwrap();
    let tenant = TenantId::random();
    let kek = Kek::generate(KekVersion::FIRST).unwrap();
    let wrapped = provider.wrap_new_kek(tenant, &kek).unwrap();
    let logout = || {
        let other = module_context(Path::new(DEFAULT_PKCS11_MODULE))
            .unwrap()
            .open_ro_session(slot(&second_context()))
            .unwrap();
        other.logout().unwrap();
    };

    logout();
    assert_eq!(provider.tenant_keys(tenant).unwrap(), [KekVersion::FIRST]);
    logout();
    assert_same(&provider.unwrap_kek(tenant, &wrapped).unwrap(), &kek);
    logout();
    assert_eq!(
        provider.destroy_tenant_keys(tenant, None).unwrap(),
        [KekVersion::FIRST],
        "the key was destroyed, not overlooked"
    );
    assert_eq!(provider.tenant_keys(tenant).unwrap(), []);
}

#[test]
fn a_token_that_forgot_every_session_is_opened_again() {
    let _turn = turn();
    let provider = Pkcs11KeyProvider::open(config("coffre-lost-session")).unwrap();
    let tenant = TenantId::random();
    let kek = Kek::generate(KekVersion::FIRST).unwrap();
    let wrapped = provider.wrap_kek(tenant, &kek).unwrap();
    let under_tenant_key = provider.wrap_new_kek(tenant, &kek).unwrap();

    // C_Finalize then C_Initialize through a second context on the same module: the token
    // forgets every session and object handle of the process, as after an HSM restart.
    let context = second_context();
    context.clone().finalize().unwrap();
    context
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    assert_eq!(
        provider_session_state(&provider),
        Err(RvError::SessionHandleInvalid),
        "the provider's session is gone"
    );
    {
        let token = provider.token.lock().unwrap();
        let session = token.session.as_ref().unwrap();
        let (_, handle) = token.roots.last().copied().unwrap();
        let refused = seal_kek(session, handle, b"ad", &kek).unwrap_err();
        assert_eq!(
            session_lost(session, &refused),
            Some(Lost::Session),
            "a wrap on the raw session fails for want of a session: {refused}"
        );
    }

    // The next operation opens a new session, logs in, finds the root keys again.
    assert_same(&provider.unwrap_kek(tenant, &wrapped).unwrap(), &kek);
    assert_eq!(provider_session_state(&provider), Ok(SessionState::RwUser));
    assert_same(
        &provider.unwrap_kek(tenant, &under_tenant_key).unwrap(),
        &kek,
    );
    let again = provider.wrap_kek(tenant, &kek).unwrap();
    assert_same(&provider.unwrap_kek(tenant, &again).unwrap(), &kek);

    // Every kind of operation recovers, the writing ones included.
    let context = second_context();
    context.clone().finalize().unwrap();
    context
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let rotated = provider.rotate_root().unwrap();
    assert_eq!(rotated, RootKeyVersion::new(2));
    assert_eq!(provider.root_versions(), [RootKeyVersion::FIRST, rotated]);
    let rewrapped = provider.rewrap_kek(tenant, &wrapped).unwrap();
    assert_eq!(rewrapped.wrapper, KekWrapper::Root(rotated));
    let context = second_context();
    context.clone().finalize().unwrap();
    context
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    provider.destroy_root(RootKeyVersion::FIRST).unwrap();
    assert_eq!(provider.root_versions(), [rotated]);
    assert_same(&provider.unwrap_kek(tenant, &rewrapped).unwrap(), &kek);
    assert_eq!(provider.tenant_keys(tenant).unwrap(), [KekVersion::FIRST]);
    assert_eq!(
        provider.destroy_tenant_keys(tenant, None).unwrap(),
        [KekVersion::FIRST]
    );
}

#[test]
fn a_root_key_that_cannot_unwrap_stops_the_start_with_a_clear_message() {
    let _turn = turn();
    let label = "coffre-encrypt-only";
    // A root key the token lets encrypt but not decrypt: wraps would succeed and every
    // later read of a tenant would fail.
    {
        let context = module_context(Path::new(DEFAULT_PKCS11_MODULE)).unwrap();
        let pin = AuthPin::from(USER_PIN);
        let session = logged_in_session(&context, slot(&context), &pin).unwrap();
        let mut template = aes_secret_keys();
        template.extend(
            sealing_key_attributes(
                root_key_label(label, RootKeyVersion::FIRST),
                vec![0, 0, 0, 1],
            )
            .into_iter()
            .map(|a| match a {
                Attribute::Decrypt(_) => Attribute::Decrypt(false),
                a => a,
            }),
        );
        session
            .generate_key(&Mechanism::AesKeyGen, &template)
            .unwrap();
    }
    let err = Pkcs11KeyProvider::open(config(label))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("start-up check failed: unwrapping a test key under root key")
            && err.contains("coffre-encrypt-only/v1")
            && err.contains(TOKEN_LABEL),
        "{err}"
    );
}
