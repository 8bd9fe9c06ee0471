//! The admin bearer token: read from a file, generated on first start (mode 0600) when no
//! file is configured. It lives in memory zeroized on drop and never reaches a log line.

use std::fmt;
use std::path::{Path, PathBuf};

use rand::RngCore;
use zeroize::Zeroizing;

use crate::bootstrap::write_private_file;

/// A configured token shorter than this is refused: it could be guessed.
pub const MIN_TOKEN_LEN: usize = 32;

/// Where the token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `<data-dir>/admin-token`: created with a random token if missing.
    Generated(PathBuf),
    /// A file the operator provides (`admin_token_file`): it must exist.
    Configured(PathBuf),
}

impl TokenSource {
    pub fn path(&self) -> &Path {
        match self {
            TokenSource::Generated(path) | TokenSource::Configured(path) => path,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read the admin token file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the admin token file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the admin token in {path} is shorter than {MIN_TOKEN_LEN} characters")]
    TooShort { path: PathBuf },
}

pub struct AdminToken(Zeroizing<Vec<u8>>);

impl AdminToken {
    /// Reads the token, creating it first for [`TokenSource::Generated`] if needed.
    pub fn load(source: &TokenSource) -> Result<Self, TokenError> {
        let path = source.path();
        if let TokenSource::Generated(path) = source {
            if !path.exists() {
                let mut raw = Zeroizing::new([0u8; 32]);
                rand::rngs::OsRng.fill_bytes(raw.as_mut());
                let text = Zeroizing::new(format!("{}\n", hex::encode(raw.as_ref())));
                write_private_file(path, text.as_bytes()).map_err(|source| TokenError::Write {
                    path: path.to_owned(),
                    source,
                })?;
                tracing::info!(path = %path.display(), "generated the admin token");
            }
        }
        let text = Zeroizing::new(std::fs::read(path).map_err(|source| TokenError::Read {
            path: path.to_owned(),
            source,
        })?);
        warn_if_readable_by_others(path);
        let token = text.trim_ascii().to_vec();
        if token.len() < MIN_TOKEN_LEN {
            return Err(TokenError::TooShort {
                path: path.to_owned(),
            });
        }
        Ok(Self(Zeroizing::new(token)))
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                "the admin token file is readable by other users; chmod 600 it"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_private_and_stable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let source = TokenSource::Generated(dir.path().join("admin-token"));
        let first = AdminToken::load(&source).unwrap_or_else(|e| panic!("{e}"));
        let second = AdminToken::load(&source).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.expose(), second.expose());
        assert_eq!(first.expose().len(), 64);
        let mode = std::fs::metadata(source.path())
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        assert_eq!(mode, 0o600);
        assert!(
            !format!("{first:?}").contains(&String::from_utf8_lossy(first.expose()).to_string())
        );
    }

    #[test]
    fn a_configured_file_must_exist_and_be_long_enough() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("token");
        let source = TokenSource::Configured(path.clone());
        assert!(matches!(
            AdminToken::load(&source),
            Err(TokenError::Read { .. })
        ));
        std::fs::write(&path, "short\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            AdminToken::load(&source),
            Err(TokenError::TooShort { .. })
        ));
        std::fs::write(&path, format!("{}\n", "x".repeat(40))).unwrap_or_else(|e| panic!("{e}"));
        let token = AdminToken::load(&source).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(token.expose(), "x".repeat(40).as_bytes());
    }
}
