//! `pkcs11`: root keys are non-extractable AES-256 keys in an HSM token, generated on first
//! start and by each rotation, labelled `<key label>/v<version>` (a key labelled just
//! `<key label>`, as earlier builds made version 1, is found too). The version is the key's
//! `CKA_ID`, 4 bytes big-endian, which must agree with the label. KEKs are sealed and
//! opened with `CKM_AES_GCM` inside the token: the root key never leaves it.
//!
//! The IV stored with a wrapped KEK is the one the token reports after the encryption
//! (an HSM in FIPS mode chooses it itself). At start the provider wraps and unwraps a test
//! key; a session the token reports lost is opened again, logged in, and the operation
//! retried once.
//!
//! With `tenant_keys_in_hsm`, new KEK versions are sealed under tenant keys instead
//! (`tenant_keys`).

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as Pkcs11Error, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use super::local_file::check_private_file;
use super::{kek_from_plaintext, unknown_root, KeyProvider};
use crate::ids::TenantId;
use crate::key_hierarchy::{
    kek_wrap_associated_data, random_nonce, tenant_key_wrap_associated_data, Kek, KekVersion,
    KekWrapper, RootKeyVersion, WrappedKek, WRAP_NONCE_LEN,
};
use crate::EncryptionError;

#[cfg(test)]
mod session_tests;
mod tenant_keys;

pub use tenant_keys::tenant_key_label;

/// Debian's SoftHSM2 module.
pub const DEFAULT_PKCS11_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Label of the root keys in the token (each version's is `<label>/v<version>`).
pub const DEFAULT_ROOT_KEY_LABEL: &str = "coffre-root";

/// Where the HSM is and how to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11Config {
    /// The PKCS#11 module (shared library), [`DEFAULT_PKCS11_MODULE`] by default.
    pub module: PathBuf,
    /// Label of the token that holds the root keys.
    pub token_label: String,
    /// File holding the user PIN (trailing newline ignored); mode 0600 or stricter.
    pub pin_file: PathBuf,
    /// Label of the root keys, [`DEFAULT_ROOT_KEY_LABEL`] by default; version N is
    /// labelled `<key_label>/vN`.
    pub key_label: String,
    /// Whether new KEK versions are wrapped under tenant keys in the token (labelled
    /// `<key_label>/tenant/<tenant id>/v<N>`) rather than under the root key.
    pub tenant_keys_in_hsm: bool,
}

impl Pkcs11Config {
    pub fn new(token_label: impl Into<String>, pin_file: impl Into<PathBuf>) -> Self {
        Self {
            module: PathBuf::from(DEFAULT_PKCS11_MODULE),
            token_label: token_label.into(),
            pin_file: pin_file.into(),
            key_label: DEFAULT_ROOT_KEY_LABEL.to_owned(),
            tenant_keys_in_hsm: false,
        }
    }
}

/// Root keys in a PKCS#11 token. One logged-in session, used under a lock: wraps are rare
/// (tenant creation, rotation) and unwraps are cached by [`crate::KekCache`].
///
/// When the token reports the session or its login lost (an HSM restarted, a network HSM
/// reconnected, a token pulled and put back, a logout by another part of the process), the
/// provider opens a new session, logs in again, finds its root keys again and retries the
/// operation once ([`Pkcs11KeyProvider::with_session`]).
pub struct Pkcs11KeyProvider {
    config: Pkcs11Config,
    context: Pkcs11,
    /// Kept to log in again after a lost session (zeroized on drop).
    pin: AuthPin,
    token: Mutex<Token>,
}

/// The session and the root keys' handles, under one lock: both are replaced together
/// when the session is re-opened (object handles belong to a login).
struct Token {
    /// `None` after a lost session whose replacement could not be opened yet: the next
    /// operation tries again.
    session: Option<Session>,
    /// Sorted by version; the last is current. Kept across a lost session so that the
    /// versions are still known while the token is away.
    roots: Vec<(RootKeyVersion, ObjectHandle)>,
}

type RootKeys = Vec<(RootKeyVersion, ObjectHandle)>;

fn pkcs11_error(context: impl Into<String>) -> impl FnOnce(Pkcs11Error) -> EncryptionError {
    let context = context.into();
    move |source| EncryptionError::Pkcs11 { context, source }
}

impl Pkcs11KeyProvider {
    /// Loads the module, logs in to the token and finds the root keys, generating version 1
    /// if the token has none; then wraps and unwraps a random test key under the current
    /// root key and refuses to start unless it comes back unchanged.
    pub fn open(config: Pkcs11Config) -> Result<Self, EncryptionError> {
        if !config.module.exists() {
            return Err(EncryptionError::Pkcs11Setup(format!(
                "module {} not found (for SoftHSM2: apt-get install softhsm2)",
                config.module.display()
            )));
        }
        let context = module_context(&config.module)?;
        let slot = find_token(&context, &config.token_label)?;
        let mechanisms = context
            .get_mechanism_list(slot)
            .map_err(pkcs11_error("listing mechanisms"))?;
        for needed in [MechanismType::AES_GCM, MechanismType::AES_KEY_GEN] {
            if !mechanisms.contains(&needed) {
                return Err(EncryptionError::Pkcs11Setup(format!(
                    "token {:?} does not support {needed}",
                    config.token_label
                )));
            }
        }
        let pin = read_pin(&config.pin_file)?;
        let session = logged_in_session(&context, slot, &pin)?;
        let mut roots = find_root_keys(&session, &config.key_label)?;
        if roots.is_empty() {
            let handle = generate_root_key(&session, &config.key_label, RootKeyVersion::FIRST)?;
            roots.push((RootKeyVersion::FIRST, handle));
        }
        let provider = Self {
            config,
            context,
            pin,
            token: Mutex::new(Token {
                session: Some(session),
                roots,
            }),
        };
        provider.check_round_trip()?;
        Ok(provider)
    }

    /// The start-up check: a random KEK wrapped under the current root key in the token,
    /// unwrapped again and compared, so that a token that cannot do both (a key without
    /// `CKA_ENCRYPT` or `CKA_DECRYPT`, a mechanism that misbehaves, an IV the token chose and
    /// did not report) stops the server at start rather than at its first tenant.
    fn check_round_trip(&self) -> Result<(), EncryptionError> {
        let root = self.current_root_version();
        let failed = |what: &str, reason: &dyn fmt::Display| {
            EncryptionError::Pkcs11Setup(format!(
                "start-up check failed: {what} a test key under root key {:?} in token {:?}: \
                 {reason}",
                root_key_label(&self.config.key_label, root),
                self.config.token_label
            ))
        };
        let kek = Kek::generate(KekVersion::FIRST)?;
        // Any tenant id: the test wrap is compared and dropped, never stored.
        let tenant = TenantId::random();
        let wrapped = self
            .wrap_kek(tenant, &kek)
            .map_err(|e| failed("wrapping", &e))?;
        let unwrapped = self
            .unwrap_kek(tenant, &wrapped)
            .map_err(|e| failed("unwrapping", &e))?;
        if unwrapped.secret_bytes() != kek.secret_bytes() {
            return Err(failed(
                "unwrapping",
                &"the token returned other bytes than it was given",
            ));
        }
        Ok(())
    }

    /// Runs `op` on the logged-in session and the root keys. When the session is found
    /// no longer logged in before `op` runs, or when `op` fails because the token reports the
    /// session or the login lost ([`session_lost`]), opens a new session, logs in again,
    /// finds the root keys again and runs `op` (once more); the lock is held throughout, so
    /// no other operation sees the session in between.
    fn with_session<T>(
        &self,
        mut op: impl FnMut(&Session, &mut RootKeys) -> Result<T, EncryptionError>,
    ) -> Result<T, EncryptionError> {
        let mut guard = self.token.lock().unwrap_or_else(PoisonError::into_inner);
        let token = &mut *guard;
        if let Some(session) = &token.session {
            // Checked first (C_GetSessionInfo): a search on a session that lost its login
            // sees no private object, so it would take the tenant keys for destroyed.
            let (lost, reason) = match logged_in(session) {
                Err(lost) => (lost, "the session is no longer logged in".to_owned()),
                Ok(()) => {
                    let error = match op(session, &mut token.roots) {
                        Err(error) => error,
                        ok => return ok,
                    };
                    let Some(lost) = session_lost(session, &error) else {
                        return Err(error);
                    };
                    (lost, error.to_string())
                }
            };
            tracing::warn!(
                token = %self.config.token_label,
                %reason,
                "the PKCS#11 session was lost: opening a new one and logging in again"
            );
            if let Some(session) = token.session.take() {
                match lost {
                    // Still a session of ours, only logged out: close it.
                    Lost::Login => drop(session),
                    // Never C_CloseSession a handle the token forgot: a token that lost its
                    // state may already have given that number to another session.
                    Lost::Session => std::mem::forget(session),
                }
            }
        }
        let (session, roots) = self.reopen().map_err(|e| {
            EncryptionError::Pkcs11Setup(format!(
                "the session with token {:?} was lost and could not be opened again: {e}",
                self.config.token_label
            ))
        })?;
        if roots
            .iter()
            .map(|(v, _)| *v)
            .ne(token.roots.iter().map(|(v, _)| *v))
        {
            tracing::warn!(
                token = %self.config.token_label,
                before = ?token.roots.iter().map(|(v, _)| v.get()).collect::<Vec<_>>(),
                now = ?roots.iter().map(|(v, _)| v.get()).collect::<Vec<_>>(),
                "the root key versions found in the token changed while its session was lost"
            );
        }
        token.roots = roots;
        let session = token.session.insert(session);
        tracing::info!(token = %self.config.token_label, "PKCS#11 session opened again");
        op(session, &mut token.roots)
    }

    /// A new logged-in session on the token (found again by label: it may be in another
    /// slot now) and the root keys' handles in it.
    fn reopen(&self) -> Result<(Session, RootKeys), EncryptionError> {
        let slot = find_token(&self.context, &self.config.token_label)?;
        let session = logged_in_session(&self.context, slot, &self.pin)?;
        let roots = find_root_keys(&session, &self.config.key_label)?;
        Ok((session, roots))
    }
}

/// Why an operation failed for want of its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lost {
    /// The session handle is gone (closed, invalid, the device removed or reset).
    Session,
    /// The session is still open but no longer logged in.
    Login,
}

/// Whether `session` is still open and logged in as the user, as the token reports it.
fn logged_in(session: &Session) -> Result<(), Lost> {
    match session.get_session_info() {
        Ok(info) => match info.session_state() {
            SessionState::RoUser | SessionState::RwUser | SessionState::RwSecurityOfficer => Ok(()),
            SessionState::RoPublic | SessionState::RwPublic => Err(Lost::Login),
        },
        Err(_) => Err(Lost::Session),
    }
}

/// Whether `error`, from an operation on `session`, means that the session or its login is
/// gone, so that a new session and a new login may succeed where it failed.
fn session_lost(session: &Session, error: &EncryptionError) -> Option<Lost> {
    let EncryptionError::Pkcs11 {
        source: Pkcs11Error::Pkcs11(rv, _),
        ..
    } = error
    else {
        return None;
    };
    match rv {
        RvError::SessionHandleInvalid
        | RvError::SessionClosed
        | RvError::DeviceRemoved
        | RvError::TokenNotPresent
        | RvError::TokenNotRecognized
        // What network HSMs report when the link to the appliance broke.
        | RvError::DeviceError => Some(Lost::Session),
        RvError::UserNotLoggedIn => Some(Lost::Login),
        // A logout invalidates the handles of private objects (PKCS#11, C_Logout), so a lost
        // login usually shows as an invalid key handle: ask the session whether it is still
        // logged in. A key destroyed under a logged-in session is not retried.
        RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid => logged_in(session).err(),
        _ => None,
    }
}

fn logged_in_session(
    context: &Pkcs11,
    slot: Slot,
    pin: &AuthPin,
) -> Result<Session, EncryptionError> {
    let session = context
        .open_rw_session(slot)
        .map_err(pkcs11_error("opening a session"))?;
    match session.login(UserType::User, Some(pin)) {
        Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
        Err(e) => Err(pkcs11_error("logging in")(e)),
    }
}

fn root_handle(roots: &RootKeys, version: RootKeyVersion) -> Result<ObjectHandle, EncryptionError> {
    roots
        .iter()
        .find(|(v, _)| *v == version)
        .map(|(_, handle)| *handle)
        .ok_or_else(|| {
            let known: Vec<_> = roots.iter().map(|(v, _)| *v).collect();
            unknown_root(version, &known)
        })
}

fn current_root(roots: &RootKeys) -> RootKeyVersion {
    roots.last().map_or(RootKeyVersion::FIRST, |(v, _)| *v)
}

impl fmt::Debug for Pkcs11KeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11KeyProvider")
            .field("module", &self.config.module)
            .field("token_label", &self.config.token_label)
            .field("key_label", &self.config.key_label)
            .field("tenant_keys_in_hsm", &self.config.tenant_keys_in_hsm)
            .field("root_versions", &self.root_versions())
            .finish_non_exhaustive()
    }
}

impl KeyProvider for Pkcs11KeyProvider {
    fn kind(&self) -> &'static str {
        "pkcs11"
    }

    fn current_root_version(&self) -> RootKeyVersion {
        let token = self.token.lock().unwrap_or_else(PoisonError::into_inner);
        current_root(&token.roots)
    }

    fn root_versions(&self) -> Vec<RootKeyVersion> {
        let token = self.token.lock().unwrap_or_else(PoisonError::into_inner);
        token.roots.iter().map(|(v, _)| *v).collect()
    }

    fn wrap_kek(&self, tenant: TenantId, kek: &Kek) -> Result<WrappedKek, EncryptionError> {
        self.with_session(|session, roots| {
            let root_version = current_root(roots);
            let handle = root_handle(roots, root_version)?;
            let ad = kek_wrap_associated_data(tenant, kek.version(), root_version);
            let (nonce, ciphertext) = seal_kek(session, handle, &ad, kek)?;
            Ok(WrappedKek {
                wrapper: KekWrapper::Root(root_version),
                kek_version: kek.version(),
                nonce,
                ciphertext,
            })
        })
    }

    fn unwrap_kek(&self, tenant: TenantId, wrapped: &WrappedKek) -> Result<Kek, EncryptionError> {
        let plaintext = self.with_session(|session, roots| {
            let (handle, ad) = match wrapped.wrapper {
                KekWrapper::Root(root_version) => (
                    root_handle(roots, root_version)?,
                    kek_wrap_associated_data(tenant, wrapped.kek_version, root_version),
                ),
                KekWrapper::TenantKey => {
                    let handle = tenant_keys::find(
                        session,
                        &self.config.key_label,
                        tenant,
                        wrapped.kek_version,
                    )?
                    .ok_or_else(|| EncryptionError::KeyVersion {
                        kind: "tenant key in the HSM",
                        found: wrapped.kek_version.get(),
                        expected: "none: it was destroyed".to_owned(),
                    })?;
                    (
                        handle,
                        tenant_key_wrap_associated_data(tenant, wrapped.kek_version),
                    )
                }
            };
            open_kek(session, handle, &ad, wrapped)
        })?;
        kek_from_plaintext(wrapped.kek_version, &plaintext)
    }

    fn wrap_new_kek(&self, tenant: TenantId, kek: &Kek) -> Result<WrappedKek, EncryptionError> {
        if !self.config.tenant_keys_in_hsm {
            return self.wrap_kek(tenant, kek);
        }
        // Safe to run twice: `generate` replaces a key of the same name left by a first
        // attempt whose answer was lost with the session.
        self.with_session(|session, _| {
            let handle =
                tenant_keys::generate(session, &self.config.key_label, tenant, kek.version())?;
            let ad = tenant_key_wrap_associated_data(tenant, kek.version());
            let (nonce, ciphertext) = seal_kek(session, handle, &ad, kek)?;
            Ok(WrappedKek {
                wrapper: KekWrapper::TenantKey,
                kek_version: kek.version(),
                nonce,
                ciphertext,
            })
        })
    }

    fn tenant_keys(&self, tenant: TenantId) -> Result<Vec<KekVersion>, EncryptionError> {
        self.with_session(|session, _| {
            let keys = tenant_keys::find_all(session, &self.config.key_label, tenant)?;
            Ok(keys.into_iter().map(|(v, _)| v).collect())
        })
    }

    fn destroy_tenant_keys(
        &self,
        tenant: TenantId,
        below: Option<KekVersion>,
    ) -> Result<Vec<KekVersion>, EncryptionError> {
        // Kept across a retry: what a first attempt destroyed is not found by the second.
        let mut destroyed = Vec::new();
        self.with_session(|session, _| {
            for (version, handle) in tenant_keys::find_all(session, &self.config.key_label, tenant)?
            {
                if below.is_some_and(|below| version >= below) {
                    continue;
                }
                session
                    .destroy_object(handle)
                    .map_err(pkcs11_error(format!(
                        "destroying the tenant key of {tenant} {version}"
                    )))?;
                destroyed.push(version);
            }
            Ok(())
        })?;
        destroyed.sort();
        Ok(destroyed)
    }

    fn rotate_root(&self) -> Result<RootKeyVersion, EncryptionError> {
        // Chosen once: a retry after a lost session finds the key if the first attempt made
        // it, rather than making the next version too.
        let mut next = None;
        self.with_session(|session, roots| {
            let version = match next {
                Some(version) => version,
                None => {
                    let version = roots
                        .last()
                        .map_or(Some(RootKeyVersion::FIRST), |(v, _)| v.next())
                        .ok_or(EncryptionError::Refused("root key versions exhausted"))?;
                    next = Some(version);
                    version
                }
            };
            if roots.iter().any(|(v, _)| *v == version) {
                return Ok(version);
            }
            let handle = generate_root_key(session, &self.config.key_label, version)?;
            roots.push((version, handle));
            Ok(version)
        })
    }

    fn destroy_root(&self, version: RootKeyVersion) -> Result<(), EncryptionError> {
        let mut attempted = false;
        self.with_session(|session, roots| {
            if roots.last().map(|(v, _)| *v) == Some(version) {
                return Err(EncryptionError::Refused(
                    "the current root key cannot be destroyed",
                ));
            }
            let Some(position) = roots.iter().position(|(v, _)| *v == version) else {
                // Gone after a retry: the first attempt destroyed it.
                return if attempted {
                    Ok(())
                } else {
                    Err(unknown_root(version, &[]))
                };
            };
            attempted = true;
            session
                .destroy_object(roots[position].1)
                .map_err(pkcs11_error(format!("destroying root key {version}")))?;
            roots.remove(position);
            Ok(())
        })
    }
}

/// Seals a KEK's bytes with `CKM_AES_GCM` under `handle` inside the token; returns the IV
/// the token used and the ciphertext with its tag.
///
/// The IV given is random, but the token may replace it: HSMs in FIPS mode generate the IV
/// of an AES-GCM encryption themselves and write it back into the `CK_GCM_PARAMS` IV
/// buffer. What is returned, and stored, is that buffer after the call.
fn seal_kek(
    session: &Session,
    handle: ObjectHandle,
    ad: &[u8],
    kek: &Kek,
) -> Result<([u8; WRAP_NONCE_LEN], Vec<u8>), EncryptionError> {
    let proposed = random_nonce();
    let mut iv = proposed;
    let ciphertext = {
        let params =
            GcmParams::new(&mut iv, ad, 128.into()).map_err(pkcs11_error("AES-GCM parameters"))?;
        session
            .encrypt(&Mechanism::AesGcm(params), handle, kek.secret_bytes())
            .map_err(pkcs11_error("wrapping a KEK"))?
    };
    if iv != proposed {
        tracing::debug!("the token chose the AES-GCM IV of a KEK wrap itself");
    }
    Ok((iv, ciphertext))
}

/// Opens a wrapped KEK with `CKM_AES_GCM` under `handle` inside the token, with the IV
/// stored with it (whoever chose it).
fn open_kek(
    session: &Session,
    handle: ObjectHandle,
    ad: &[u8],
    wrapped: &WrappedKek,
) -> Result<Zeroizing<Vec<u8>>, EncryptionError> {
    let mut iv = wrapped.nonce;
    let params =
        GcmParams::new(&mut iv, ad, 128.into()).map_err(pkcs11_error("AES-GCM parameters"))?;
    session
        .decrypt(&Mechanism::AesGcm(params), handle, &wrapped.ciphertext)
        .map(Zeroizing::new)
        .map_err(|e| match e {
            Pkcs11Error::Pkcs11(
                RvError::EncryptedDataInvalid
                | RvError::EncryptedDataLenRange
                | RvError::DataInvalid
                | RvError::DataLenRange,
                _,
            ) => EncryptionError::Integrity("wrapped KEK does not open"),
            // SoftHSM2 reports a GCM tag mismatch as CKR_GENERAL_ERROR.
            Pkcs11Error::Pkcs11(RvError::GeneralError, _) => {
                EncryptionError::Integrity("wrapped KEK does not open (token: CKR_GENERAL_ERROR)")
            }
            e => pkcs11_error("unwrapping a KEK")(e),
        })
}

/// The one context per module in this process: `C_Initialize` may run only once, is not
/// safe to race, and unloading the module under a live session crashes. Modules stay loaded
/// until the process exits.
fn module_context(module: &Path) -> Result<Pkcs11, EncryptionError> {
    static MODULES: Mutex<Vec<(PathBuf, Pkcs11)>> = Mutex::new(Vec::new());
    let mut modules = MODULES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, context)) = modules.iter().find(|(path, _)| path == module) {
        return Ok(context.clone());
    }
    let context =
        Pkcs11::new(module).map_err(pkcs11_error(format!("loading {}", module.display())))?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(pkcs11_error("C_Initialize")(e)),
    }
    modules.push((module.to_path_buf(), context.clone()));
    Ok(context)
}

fn find_token(context: &Pkcs11, label: &str) -> Result<Slot, EncryptionError> {
    let slots = context
        .get_slots_with_initialized_token()
        .map_err(pkcs11_error("listing slots"))?;
    for slot in slots {
        let info = context
            .get_token_info(slot)
            .map_err(pkcs11_error("reading token info"))?;
        if info.label().trim_end() == label {
            return Ok(slot);
        }
    }
    Err(EncryptionError::Pkcs11Setup(format!(
        "no initialized token labelled {label:?} (for SoftHSM2: softhsm2-util --init-token \
         --free --label {label} ...)"
    )))
}

fn read_pin(path: &Path) -> Result<AuthPin, EncryptionError> {
    check_private_file(path)?;
    let text =
        Zeroizing::new(
            fs::read_to_string(path).map_err(|source| EncryptionError::KeyFileIo {
                path: path.to_path_buf(),
                source,
            })?,
        );
    let pin = text.trim_end_matches(['\r', '\n']);
    if pin.is_empty() {
        return Err(EncryptionError::KeyFile {
            path: path.to_path_buf(),
            reason: "the PIN file is empty".to_owned(),
        });
    }
    Ok(AuthPin::from(pin))
}

/// The label of root key `version`.
pub fn root_key_label(label: &str, version: RootKeyVersion) -> String {
    format!("{label}/v{}", version.get())
}

fn aes_secret_keys() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
    ]
}

/// The version a key labelled `found` claims to be, if it is one of the root keys labelled
/// `label`: `Some(None)` for the plain label (the version is only in its `CKA_ID`).
fn labelled_version(found: &[u8], label: &str) -> Option<Option<u32>> {
    let found = std::str::from_utf8(found).ok()?;
    if found == label {
        return Some(None);
    }
    let version = found.strip_prefix(label)?.strip_prefix("/v")?;
    if version.starts_with('0') || !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    version.parse().ok().map(Some)
}

fn find_root_keys(
    session: &Session,
    label: &str,
) -> Result<Vec<(RootKeyVersion, ObjectHandle)>, EncryptionError> {
    // PKCS#11 matches labels exactly: list the AES keys and pick ours by label.
    let handles = session
        .find_objects(&aes_secret_keys())
        .map_err(pkcs11_error("finding root keys"))?;
    let mut keys = Vec::with_capacity(handles.len());
    for handle in handles {
        let attributes = session
            .get_attributes(handle, &[AttributeType::Label, AttributeType::Id])
            .map_err(pkcs11_error("reading a root key's label and id"))?;
        let claimed = attributes.iter().find_map(|a| match a {
            Attribute::Label(found) => labelled_version(found, label),
            _ => None,
        });
        let Some(claimed) = claimed else {
            continue;
        };
        let version = attributes.iter().find_map(|a| match a {
            Attribute::Id(id) => <[u8; 4]>::try_from(id.as_slice())
                .ok()
                .map(|b| RootKeyVersion::new(u32::from_be_bytes(b))),
            _ => None,
        });
        let Some(version) = version else {
            return Err(EncryptionError::Pkcs11Setup(format!(
                "a key labelled {label:?} has no 4-byte CKA_ID version"
            )));
        };
        if let Some(claimed) = claimed.filter(|c| *c != version.get()) {
            return Err(EncryptionError::Pkcs11Setup(format!(
                "the key labelled {:?} has CKA_ID version {version}",
                root_key_label(label, RootKeyVersion::new(claimed))
            )));
        }
        if keys.iter().any(|(v, _)| *v == version) {
            return Err(EncryptionError::Pkcs11Setup(format!(
                "two keys labelled {label:?} have version {version}"
            )));
        }
        keys.push((version, handle));
    }
    keys.sort_by_key(|(v, _)| *v);
    Ok(keys)
}

fn generate_root_key(
    session: &Session,
    label: &str,
    version: RootKeyVersion,
) -> Result<ObjectHandle, EncryptionError> {
    let mut template = aes_secret_keys();
    template.extend(sealing_key_attributes(
        root_key_label(label, version),
        version.get().to_be_bytes().to_vec(),
    ));
    session
        .generate_key(&Mechanism::AesKeyGen, &template)
        .map_err(pkcs11_error(format!("generating root key {version}")))
}

/// A persistent, private, sensitive, non-extractable AES-256 key that only encrypts and
/// decrypts: the attributes of root keys and tenant keys alike.
fn sealing_key_attributes(label: String, id: Vec<u8>) -> Vec<Attribute> {
    vec![
        Attribute::Label(label.into_bytes()),
        Attribute::Id(id),
        Attribute::ValueLen(32.into()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Derive(false),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_their_version() {
        let v = |n| RootKeyVersion::new(n);
        assert_eq!(root_key_label("coffre-root", v(2)), "coffre-root/v2");
        assert_eq!(labelled_version(b"coffre-root", "coffre-root"), Some(None));
        assert_eq!(
            labelled_version(b"coffre-root/v2", "coffre-root"),
            Some(Some(2))
        );
        assert_eq!(
            labelled_version(b"coffre-root/v17", "coffre-root"),
            Some(Some(17))
        );
        for other in [
            &b"coffre-root-other"[..],
            b"coffre-root/v",
            b"coffre-root/v02",
            b"coffre-root/v2x",
            b"coffre-root/2",
            b"coffre-roo",
            b"other/v2",
            b"\xff",
        ] {
            assert_eq!(labelled_version(other, "coffre-root"), None, "{other:?}");
        }
    }
}
