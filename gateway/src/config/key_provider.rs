//! `[key_provider]`: where the root key lives, a local file or an HSM token reached through
//! PKCS#11.

use std::path::{Path, PathBuf};

use coffre_crypto::key_provider::{DEFAULT_PKCS11_MODULE, DEFAULT_ROOT_KEY_LABEL};
use coffre_crypto::Pkcs11Config;
use serde::Deserialize;

use super::{invalid, ConfigError};

/// `[key_provider]`: `kind = "local-file"` with `path`, or `kind = "pkcs11"` with `module`,
/// `token_label`, `pin_file`, `key_label` and `tenant_keys_in_hsm`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeyProvider {
    pub kind: String,
    pub path: Option<PathBuf>,
    pub module: Option<PathBuf>,
    pub token_label: Option<String>,
    pub pin_file: Option<PathBuf>,
    pub key_label: Option<String>,
    /// pkcs11 only: wrap each new tenant KEK version under a tenant key of its own in the
    /// token, destroyed with the tenant or the version (default false).
    pub tenant_keys_in_hsm: Option<bool>,
}

/// The root key provider to open at start (see `coffre_crypto::key_provider`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProviderConfig {
    /// Root keys in a 0600 file, created on first start: development and embedded use.
    LocalFile { path: PathBuf },
    /// Root keys inside an HSM token, reached through its PKCS#11 module.
    Pkcs11(Pkcs11Config),
}

impl KeyProviderConfig {
    /// `"local-file"` or `"pkcs11"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::LocalFile { .. } => "local-file",
            Self::Pkcs11(_) => "pkcs11",
        }
    }
}

/// Checks the `[key_provider]` table without touching the key file or the HSM, so that
/// `check-config` works on a machine without either.
pub(super) fn resolve_key_provider(
    raw: Option<RawKeyProvider>,
    data_dir: &Path,
) -> Result<KeyProviderConfig, ConfigError> {
    const FIELD: &str = "key_provider";
    let Some(raw) = raw else {
        return Ok(KeyProviderConfig::LocalFile {
            path: data_dir.join("root.key"),
        });
    };
    let only_for = |setting: &str, kind: &str| {
        invalid(
            FIELD,
            format!("'{setting}' applies to kind = \"{kind}\" only"),
        )
    };
    let non_empty_path = |setting: &str, path: PathBuf| {
        if path.as_os_str().is_empty() {
            Err(invalid(FIELD, format!("'{setting}' must not be empty")))
        } else {
            Ok(path)
        }
    };
    match raw.kind.as_str() {
        "local-file" => {
            for (setting, given) in [
                ("module", raw.module.is_some()),
                ("token_label", raw.token_label.is_some()),
                ("pin_file", raw.pin_file.is_some()),
                ("key_label", raw.key_label.is_some()),
                ("tenant_keys_in_hsm", raw.tenant_keys_in_hsm.is_some()),
            ] {
                if given {
                    return Err(only_for(setting, "pkcs11"));
                }
            }
            let path = match raw.path {
                Some(path) => non_empty_path("path", path)?,
                None => data_dir.join("root.key"),
            };
            Ok(KeyProviderConfig::LocalFile { path })
        }
        "pkcs11" => {
            if raw.path.is_some() {
                return Err(only_for("path", "local-file"));
            }
            let token_label = raw
                .token_label
                .filter(|l| !l.is_empty())
                .ok_or_else(|| invalid(FIELD, "kind = \"pkcs11\" needs a 'token_label'"))?;
            let pin_file = raw
                .pin_file
                .ok_or_else(|| invalid(FIELD, "kind = \"pkcs11\" needs a 'pin_file'"))?;
            let key_label = raw
                .key_label
                .unwrap_or_else(|| DEFAULT_ROOT_KEY_LABEL.to_owned());
            if key_label.is_empty() {
                return Err(invalid(FIELD, "'key_label' must not be empty"));
            }
            Ok(KeyProviderConfig::Pkcs11(Pkcs11Config {
                module: non_empty_path(
                    "module",
                    raw.module
                        .unwrap_or_else(|| PathBuf::from(DEFAULT_PKCS11_MODULE)),
                )?,
                token_label,
                pin_file: non_empty_path("pin_file", pin_file)?,
                key_label,
                tenant_keys_in_hsm: raw.tenant_keys_in_hsm.unwrap_or(false),
            }))
        }
        other => Err(invalid(
            FIELD,
            format!("kind '{other}': expected local-file or pkcs11"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

    #[test]
    fn the_root_key_is_a_local_file_unless_configured() {
        let config = parse("data_dir = \"/d\"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.key_provider,
            KeyProviderConfig::LocalFile {
                path: PathBuf::from("/d/root.key")
            }
        );
        let config = parse("[key_provider]\nkind = \"local-file\"\npath = \"/keys/root\"")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.key_provider,
            KeyProviderConfig::LocalFile {
                path: PathBuf::from("/keys/root")
            }
        );
    }

    #[test]
    fn a_pkcs11_provider_takes_defaults_for_module_and_key_label() {
        let config = parse(
            "[key_provider]\nkind = \"pkcs11\"\ntoken_label = \"coffre\"\n\
             pin_file = \"/etc/coffre/hsm-pin\"",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.key_provider,
            KeyProviderConfig::Pkcs11(Pkcs11Config {
                module: PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"),
                token_label: "coffre".into(),
                pin_file: PathBuf::from("/etc/coffre/hsm-pin"),
                key_label: "coffre-root".into(),
                tenant_keys_in_hsm: false,
            })
        );
        let config = parse(
            "[key_provider]\nkind = \"pkcs11\"\ntoken_label = \"coffre\"\n\
             pin_file = \"/p\"\ntenant_keys_in_hsm = true",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            config.key_provider,
            KeyProviderConfig::Pkcs11(Pkcs11Config {
                tenant_keys_in_hsm: true,
                ..
            })
        ));
    }
}
