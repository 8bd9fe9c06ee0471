//! `[key_rotation]`: the pace of the background rewrap that follows a tenant KEK rotation.
//! It touches metadata only (48 bytes per object), so the defaults go at full speed; a pause
//! between batches lends the metadata store to requests on a busy server.

use std::time::Duration;

use coffre_storage::{
    RewrapSettings, DEFAULT_MAX_DEK_WRAPS, DEFAULT_RETIRE_GRACE, DEFAULT_REWRAP_BATCH,
};
use serde::Deserialize;

use super::{invalid, ConfigError};

/// Largest accepted `rewrap_batch`: a step holds its records in memory.
const MAX_BATCH: u64 = 100_000;
const MAX_PAUSE_MS: u64 = 60_000;
const MAX_GRACE_SECS: u64 = 7 * 24 * 3600;
/// Random 96-bit nonces stay safe for about 2^32 encryptions under one key.
const MAX_DEK_WRAPS: u64 = 1 << 32;

/// The `[key_rotation]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeyRotation {
    /// Object and upload records per rewrap step (default 256).
    pub rewrap_batch: Option<u64>,
    /// Pause after each step, in milliseconds (default 0).
    pub rewrap_pause_ms: Option<u64>,
    /// Seconds after a rotation before the pass that may end it, and so destroy the older
    /// KEK versions, may begin (default 60).
    pub retire_grace_secs: Option<u64>,
    /// DEKs a tenant's current KEK version may wrap before the background rotates it
    /// (default 2^30, a quarter of what its random nonces allow).
    pub max_dek_wraps: Option<u64>,
}

/// The validated `[key_rotation]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRotationConfig {
    pub batch_size: usize,
    pub pause: Duration,
    pub retire_grace: Duration,
    pub max_dek_wraps: u64,
}

impl Default for KeyRotationConfig {
    fn default() -> Self {
        Self {
            batch_size: DEFAULT_REWRAP_BATCH,
            pause: Duration::ZERO,
            retire_grace: DEFAULT_RETIRE_GRACE,
            max_dek_wraps: DEFAULT_MAX_DEK_WRAPS,
        }
    }
}

impl KeyRotationConfig {
    pub(super) fn resolve(raw: Option<RawKeyRotation>) -> Result<Self, ConfigError> {
        const FIELD: &str = "key_rotation";
        let raw = raw.unwrap_or_default();
        let default = Self::default();
        let batch_size = match raw.rewrap_batch {
            None => default.batch_size,
            Some(n @ 1..=MAX_BATCH) => n as usize,
            Some(n) => {
                return Err(invalid(
                    FIELD,
                    format!("rewrap_batch = {n}: between 1 and {MAX_BATCH}"),
                ))
            }
        };
        let pause = match raw.rewrap_pause_ms {
            None => default.pause,
            Some(ms @ 0..=MAX_PAUSE_MS) => Duration::from_millis(ms),
            Some(ms) => {
                return Err(invalid(
                    FIELD,
                    format!("rewrap_pause_ms = {ms}: at most {MAX_PAUSE_MS}"),
                ))
            }
        };
        let retire_grace = match raw.retire_grace_secs {
            None => default.retire_grace,
            Some(s @ 0..=MAX_GRACE_SECS) => Duration::from_secs(s),
            Some(s) => {
                return Err(invalid(
                    FIELD,
                    format!("retire_grace_secs = {s}: at most {MAX_GRACE_SECS} (a week)"),
                ))
            }
        };
        let max_dek_wraps = match raw.max_dek_wraps {
            None => default.max_dek_wraps,
            Some(n @ 1..=MAX_DEK_WRAPS) => n,
            Some(n) => {
                return Err(invalid(
                    FIELD,
                    format!("max_dek_wraps = {n}: between 1 and {MAX_DEK_WRAPS} (2^32)"),
                ))
            }
        };
        Ok(Self {
            batch_size,
            pause,
            retire_grace,
            max_dek_wraps,
        })
    }

    /// What each storage step is given.
    pub fn rewrap(&self) -> RewrapSettings {
        RewrapSettings {
            batch_size: self.batch_size,
            retire_grace: self.retire_grace,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<KeyRotationConfig, ConfigError> {
        #[derive(Deserialize)]
        struct File {
            key_rotation: Option<RawKeyRotation>,
        }
        let file: File = toml::from_str(text).map_err(|e| invalid("toml", e.to_string()))?;
        KeyRotationConfig::resolve(file.key_rotation)
    }

    #[test]
    fn defaults_and_limits() {
        assert_eq!(parse("").ok(), Some(KeyRotationConfig::default()));
        let paced = parse(
            "[key_rotation]\nrewrap_batch = 10\nrewrap_pause_ms = 250\nretire_grace_secs = 0\n",
        )
        .ok();
        assert_eq!(
            paced,
            Some(KeyRotationConfig {
                batch_size: 10,
                pause: Duration::from_millis(250),
                retire_grace: Duration::ZERO,
                max_dek_wraps: DEFAULT_MAX_DEK_WRAPS,
            })
        );
        for bad in [
            "rewrap_batch = 0",
            "rewrap_batch = 100001",
            "rewrap_pause_ms = 60001",
            "retire_grace_secs = 999999999",
            "rewrap_bach = 3",
            "max_dek_wraps = 0",
            "max_dek_wraps = 4294967297",
        ] {
            assert!(parse(&format!("[key_rotation]\n{bad}\n")).is_err(), "{bad}");
        }
    }
}
