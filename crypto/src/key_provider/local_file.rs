//! `local-file`: root keys in a file on the server's disk. For development and the embedded
//! default only: anyone who can read the file and the data directory reads every object.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce};
use zeroize::Zeroizing;

use super::{kek_from_plaintext, unknown_root, KeyProvider};
use crate::aead::TAG_LEN;
use crate::ids::TenantId;
use crate::key_hierarchy::{
    aes_key, kek_wrap_associated_data, Kek, KekVersion, KekWrapper, RootKeyVersion, WrappedKek,
};
use crate::EncryptionError;

const HEADER: &str = "# Coffre root keys (local-file provider): for development only; use the \
pkcs11 provider in production.\n# Keep this file mode 0600 and back it up: without it no \
object can be read.\n# One line per root key version: <version> <64 hex digits>.\n";

struct RootKey {
    version: RootKeyVersion,
    bytes: Zeroizing<[u8; 32]>,
    aead: LessSafeKey,
}

/// Root keys in a text file (mode 0600), created with one random key on first start.
pub struct LocalFileKeyProvider {
    path: PathBuf,
    created: bool,
    /// Sorted by version; the last is current.
    keys: RwLock<Vec<RootKey>>,
}

impl LocalFileKeyProvider {
    /// Opens the key file, or creates it (mode 0600, one fresh key) if it does not exist.
    /// Refuses a file that group or others may access. Logs a warning either way: this
    /// provider is for development only.
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Self, EncryptionError> {
        let path = path.as_ref().to_path_buf();
        let (keys, created) = match fs::symlink_metadata(&path) {
            Ok(_) => (read_key_file(&path)?, false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = new_root_key(RootKeyVersion::FIRST)?;
                write_key_file(&path, std::slice::from_ref(&key), true)?;
                (vec![key], true)
            }
            Err(source) => return Err(EncryptionError::KeyFileIo { path, source }),
        };
        tracing::warn!(
            path = %path.display(),
            created,
            "root key kept in a local file: for development only, use the pkcs11 provider in production"
        );
        Ok(Self {
            path,
            created,
            keys: RwLock::new(keys),
        })
    }

    /// Whether `open_or_create` created the file (first start).
    pub fn was_created(&self) -> bool {
        self.created
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Debug for LocalFileKeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalFileKeyProvider")
            .field("path", &self.path)
            .field("root_versions", &self.root_versions())
            .finish_non_exhaustive()
    }
}

impl KeyProvider for LocalFileKeyProvider {
    fn kind(&self) -> &'static str {
        "local-file"
    }

    fn current_root_version(&self) -> RootKeyVersion {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        keys.last().map_or(RootKeyVersion::FIRST, |k| k.version)
    }

    fn root_versions(&self) -> Vec<RootKeyVersion> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        keys.iter().map(|k| k.version).collect()
    }

    fn wrap_kek(&self, tenant: TenantId, kek: &Kek) -> Result<WrappedKek, EncryptionError> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let root = keys.last().ok_or(EncryptionError::Refused("no root key"))?;
        let nonce = crate::key_hierarchy::random_nonce();
        let ad = kek_wrap_associated_data(tenant, kek.version(), root.version);
        let mut ciphertext = Vec::with_capacity(32 + TAG_LEN);
        ciphertext.extend_from_slice(kek.secret_bytes());
        let tag = root
            .aead
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(ad.as_slice()),
                &mut ciphertext,
            )
            .map_err(|_| EncryptionError::Seal)?;
        ciphertext.extend_from_slice(tag.as_ref());
        Ok(WrappedKek {
            wrapper: KekWrapper::Root(root.version),
            kek_version: kek.version(),
            nonce,
            ciphertext,
        })
    }

    fn unwrap_kek(&self, tenant: TenantId, wrapped: &WrappedKek) -> Result<Kek, EncryptionError> {
        let Some(root_version) = wrapped.root_version() else {
            return Err(EncryptionError::Refused(
                "the KEK is wrapped under a tenant key that only a pkcs11 token holds",
            ));
        };
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let root = keys
            .iter()
            .find(|k| k.version == root_version)
            .ok_or_else(|| {
                let known: Vec<_> = keys.iter().map(|k| k.version).collect();
                unknown_root(root_version, &known)
            })?;
        let ad = kek_wrap_associated_data(tenant, wrapped.kek_version, root_version);
        let mut in_out = Zeroizing::new(wrapped.ciphertext.clone());
        let plain = root
            .aead
            .open_in_place(
                Nonce::assume_unique_for_key(wrapped.nonce),
                Aad::from(ad.as_slice()),
                &mut in_out,
            )
            .map_err(|_| EncryptionError::Integrity("wrapped KEK does not open"))?;
        kek_from_plaintext(wrapped.kek_version, plain)
    }

    fn wrap_new_kek(&self, tenant: TenantId, kek: &Kek) -> Result<WrappedKek, EncryptionError> {
        self.wrap_kek(tenant, kek)
    }

    fn tenant_keys(&self, _tenant: TenantId) -> Result<Vec<KekVersion>, EncryptionError> {
        Ok(Vec::new())
    }

    fn destroy_tenant_keys(
        &self,
        _tenant: TenantId,
        _below: Option<KekVersion>,
    ) -> Result<Vec<KekVersion>, EncryptionError> {
        Ok(Vec::new())
    }

    fn rotate_root(&self) -> Result<RootKeyVersion, EncryptionError> {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        let next = keys
            .last()
            .map_or(Some(RootKeyVersion::FIRST), |k| k.version.next())
            .ok_or(EncryptionError::Refused("root key versions exhausted"))?;
        keys.push(new_root_key(next)?);
        if let Err(e) = write_key_file(&self.path, &keys, false) {
            keys.pop();
            return Err(e);
        }
        Ok(next)
    }

    fn destroy_root(&self, version: RootKeyVersion) -> Result<(), EncryptionError> {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        if keys.last().map(|k| k.version) == Some(version) {
            return Err(EncryptionError::Refused(
                "the current root key cannot be destroyed",
            ));
        }
        let Some(position) = keys.iter().position(|k| k.version == version) else {
            return Err(unknown_root(version, &[]));
        };
        let removed = keys.remove(position);
        if let Err(e) = write_key_file(&self.path, &keys, false) {
            keys.insert(position, removed);
            return Err(e);
        }
        Ok(())
    }
}

fn new_root_key(version: RootKeyVersion) -> Result<RootKey, EncryptionError> {
    root_key(version, crate::key_hierarchy::random_key())
}

fn root_key(
    version: RootKeyVersion,
    bytes: Zeroizing<[u8; 32]>,
) -> Result<RootKey, EncryptionError> {
    let aead = aes_key(&bytes)?;
    Ok(RootKey {
        version,
        bytes,
        aead,
    })
}

fn key_file_error(path: &Path, reason: impl Into<String>) -> EncryptionError {
    EncryptionError::KeyFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> EncryptionError + '_ {
    move |source| EncryptionError::KeyFileIo {
        path: path.to_path_buf(),
        source,
    }
}

/// Refuses anything but a regular file that only its owner may access.
pub(crate) fn check_private_file(path: &Path) -> Result<(), EncryptionError> {
    let meta = fs::symlink_metadata(path).map_err(io_error(path))?;
    if !meta.file_type().is_file() {
        return Err(key_file_error(path, "not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(key_file_error(
            path,
            format!("mode {mode:04o} lets group or others access it; run chmod 600"),
        ));
    }
    Ok(())
}

fn read_key_file(path: &Path) -> Result<Vec<RootKey>, EncryptionError> {
    check_private_file(path)?;
    let mut text = Zeroizing::new(String::new());
    File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(io_error(path))?;
    let mut keys: Vec<RootKey> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || {
            key_file_error(
                path,
                format!("line {}: expected <version> <64 hex digits>", number + 1),
            )
        };
        let (version, key_hex) = line.split_once(' ').ok_or_else(bad)?;
        let version: u32 = version.parse().map_err(|_| bad())?;
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(key_hex.trim(), bytes.as_mut()).map_err(|_| bad())?;
        if version == 0 || keys.iter().any(|k| k.version.get() == version) {
            return Err(bad());
        }
        keys.push(root_key(RootKeyVersion::new(version), bytes)?);
    }
    if keys.is_empty() {
        return Err(key_file_error(path, "holds no key"));
    }
    keys.sort_by_key(|k| k.version);
    Ok(keys)
}

/// Writes the whole file: directly with `create_new` on first start, otherwise through a
/// synced temporary file renamed over the old one, so a crash leaves one complete version.
fn write_key_file(path: &Path, keys: &[RootKey], first: bool) -> Result<(), EncryptionError> {
    let mut text = Zeroizing::new(String::from(HEADER));
    for key in keys {
        text.push_str(&format!("{} ", key.version.get()));
        text.push_str(&Zeroizing::new(hex::encode(key.bytes.as_ref())));
        text.push('\n');
    }
    let target = if first {
        path.to_path_buf()
    } else {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_error(&tmp)(e)),
            _ => {}
        }
        tmp
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&target)
        .map_err(io_error(&target))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_error(&target))?;
    if !first {
        fs::rename(&target, path).map_err(io_error(path))?;
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}
