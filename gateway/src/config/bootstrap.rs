//! `[bootstrap]`: what the server creates on its first start. The `default` tenant, whose
//! secret is written to `<data_dir>/credentials`, exists only on the embedded default
//! (`coffre serve` without `--config`) or when a configuration asks for it.

use serde::Deserialize;

use super::RawConfig;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBootstrap {
    /// Create the `default` tenant with an admin key on first start (default: false in a
    /// configuration file, true on the embedded default).
    pub default_tenant: Option<bool>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BootstrapConfig {
    pub default_tenant: bool,
}

impl BootstrapConfig {
    pub(super) fn resolve(raw: Option<RawBootstrap>) -> Self {
        Self {
            default_tenant: raw.and_then(|b| b.default_tenant).unwrap_or(false),
        }
    }
}

impl RawConfig {
    /// What `coffre serve` runs without `--config`: every default, and a `default` tenant
    /// to start with.
    pub fn embedded_default() -> Self {
        Self {
            bootstrap: Some(RawBootstrap {
                default_tenant: Some(true),
            }),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;
    use crate::config::{Config, Overrides};

    #[test]
    fn the_default_tenant_is_made_only_on_the_embedded_default_or_when_asked() {
        let embedded = Config::resolve(RawConfig::embedded_default(), Overrides::default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(embedded.bootstrap.default_tenant);
        let file = parse("region = \"eu-west-3\"").unwrap_or_else(|e| panic!("{e}"));
        assert!(!file.bootstrap.default_tenant);
        let asked = parse("[bootstrap]\ndefault_tenant = true").unwrap_or_else(|e| panic!("{e}"));
        assert!(asked.bootstrap.default_tenant);
        assert!(parse("[bootstrap]\ndefault_tenat = true").is_err());
    }
}
