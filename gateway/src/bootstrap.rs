//! First start of the embedded default (or of a configuration with `[bootstrap]
//! default_tenant = true`): a `default` tenant with an admin key, whose credentials are
//! written once to `<data-dir>/credentials` (mode 0600, AWS shared credentials format) and
//! printed when standard output is a terminal. A secret never goes to a pipe or a log file.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use coffre_crypto::{AdminScope, Role};
use coffre_storage::{Store, TenantSettings};

use crate::config::Config;

pub const DEFAULT_TENANT: &str = "default";

pub async fn ensure_default_tenant(store: &Arc<Store>, config: &Config) -> anyhow::Result<()> {
    if !config.bootstrap.default_tenant {
        return Ok(());
    }
    let store = store.clone();
    let credentials_path = config.data_dir.join("credentials");
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let admin = AdminScope::local_operator();
        if store.tenant_by_name(&admin, DEFAULT_TENANT)?.is_some() {
            return Ok(());
        }
        let tenant = store.create_tenant(&admin, DEFAULT_TENANT, TenantSettings::default())?;
        let (key, secret) = store.create_access_key(&admin, tenant.id, Role::Admin, None)?;
        let text = format!(
            "[default]\naws_access_key_id = {key}\naws_secret_access_key = {}\n",
            secret.expose()
        );
        write_private_file(&credentials_path, text.as_bytes())
            .with_context(|| format!("writing {}", credentials_path.display()))?;
        let announcement = announcement(
            &key.to_string(),
            secret.expose(),
            &credentials_path,
            std::io::stdout().is_terminal(),
        );
        println!("{announcement}");
        Ok(())
    })
    .await?
}

/// What the first start says about the new tenant: its secret only to a terminal.
fn announcement(key: &str, secret: &str, path: &Path, terminal: bool) -> String {
    if terminal {
        format!(
            "Created tenant '{DEFAULT_TENANT}'.\n  access key id:     {key}\n  secret access key: {secret}\n  \
             (written to {}; shown only this once)",
            path.display()
        )
    } else {
        format!(
            "Created tenant '{DEFAULT_TENANT}' (access key id {key}); its secret is in {} \
             (not printed: standard output is not a terminal)",
            path.display()
        )
    }
}

/// Writes a file only its owner can read, replacing any previous one atomically.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_printed_to_a_terminal_only() {
        let path = Path::new("/data/credentials");
        let shown = announcement("AKID", "SECRET/xyz", path, true);
        assert!(shown.contains("SECRET/xyz") && shown.contains("AKID"));
        let piped = announcement("AKID", "SECRET/xyz", path, false);
        assert!(!piped.contains("SECRET"), "{piped}");
        assert!(piped.contains("AKID") && piped.contains("/data/credentials"));
    }
}
