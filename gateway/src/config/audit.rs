//! `audit_dir` and `audit_on_failure`: where the audit trail is written, and whether the
//! gateway keeps serving when it cannot be.

use std::path::{Path, PathBuf};

use super::{invalid, ConfigError};
use crate::audit::{AuditConfig, OnFailure};

pub(super) fn resolve_audit(
    dir: Option<PathBuf>,
    on_failure: Option<&str>,
    data_dir: &Path,
) -> Result<AuditConfig, ConfigError> {
    Ok(AuditConfig {
        on_failure: match on_failure {
            None | Some("refuse") => OnFailure::Refuse,
            Some("continue") => OnFailure::Continue,
            Some(other) => {
                return Err(invalid(
                    "audit_on_failure",
                    format!("'{other}': expected refuse or continue"),
                ))
            }
        },
        ..AuditConfig::new(dir.unwrap_or_else(|| data_dir.join("audit")))
    })
}
