//! A SoftHSM2 token of its own for a test server's `pkcs11` root key provider: a
//! `softhsm2.conf` pointing at a fresh token directory, one initialized token and a 0600
//! PIN file, all removed on drop. The server finds the token through `SOFTHSM2_CONF` in its
//! environment ([`SoftHsmToken::env`]).
//!
//! What the token holds is listed with the token's own tooling, OpenSC's `pkcs11-tool`
//! ([`SoftHsmToken::list_objects`]), never with the code under test: the listing is the
//! evidence an auditor would look at. (`softhsm2-util` cannot list objects.)

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// Debian's SoftHSM2 module, the `pkcs11` provider's default.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const MISSING: &str = "SoftHSM2 is required for the pkcs11 tests: install the Debian package \
                       `softhsm2` (apt-get install -y softhsm2; conformance/run does it)";
const PIN: &str = "1234";
const MISSING_TOOL: &str = "OpenSC's pkcs11-tool lists the token's objects in the pkcs11 tests: \
                            install the Debian package `opensc` (apt-get install -y opensc; \
                            conformance/run does it)";

/// One object of the token as `pkcs11-tool --list-objects` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenObject {
    /// The object's first line, e.g. `Secret Key Object; AES length 32`.
    pub kind: String,
    /// `CKA_LABEL`.
    pub label: String,
    /// `CKA_ID`, lowercase hex.
    pub id: String,
    /// What the key may do (`encrypt`, `decrypt`, `wrap`, ...).
    pub usage: Vec<String>,
    /// Its protection (`sensitive`, `never extractable`, ...).
    pub access: Vec<String>,
}

/// An initialized SoftHSM2 token in a temporary directory.
pub struct SoftHsmToken {
    /// The token's label.
    pub label: String,
    /// The user PIN's file (mode 0600).
    pub pin_file: PathBuf,
    /// The `softhsm2.conf` to give the server as `SOFTHSM2_CONF`.
    pub conf: PathBuf,
    dir: TempDir,
}

impl SoftHsmToken {
    /// Initializes token `label` with user PIN 1234. Panics, naming the package, when
    /// SoftHSM2 is not installed.
    pub fn init(label: &str) -> Self {
        assert!(
            Path::new(SOFTHSM_MODULE).exists(),
            "{SOFTHSM_MODULE} is missing. {MISSING}"
        );
        let dir = tempfile::Builder::new()
            .prefix("coffre-softhsm-")
            .tempdir()
            .expect("create the SoftHSM2 directory");
        let tokens = dir.path().join("tokens");
        fs::create_dir(&tokens).expect("create the token directory");
        let conf = dir.path().join("softhsm2.conf");
        fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .expect("write softhsm2.conf");
        let output = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &conf)
            .args(["--init-token", "--free", "--label", label])
            .args(["--pin", PIN, "--so-pin", "5678"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run softhsm2-util ({e}). {MISSING}"));
        assert!(
            output.status.success(),
            "softhsm2-util --init-token failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let pin_file = dir.path().join("pin");
        fs::write(&pin_file, format!("{PIN}\n")).expect("write the PIN file");
        fs::set_permissions(&pin_file, fs::Permissions::from_mode(0o600))
            .expect("make the PIN file private");
        Self {
            label: label.to_string(),
            pin_file,
            conf,
            dir,
        }
    }

    /// The `[key_provider]` table of a server using this token.
    pub fn key_provider_toml(&self) -> String {
        format!(
            "[key_provider]\nkind = \"pkcs11\"\nmodule = \"{SOFTHSM_MODULE}\"\n\
             token_label = \"{}\"\npin_file = \"{}\"\n",
            self.label,
            self.pin_file.display()
        )
    }

    /// The environment a server needs to find the token.
    pub fn env(&self) -> [(&'static str, &str); 1] {
        let conf = self.conf.to_str().expect("a UTF-8 temporary path");
        [("SOFTHSM2_CONF", conf)]
    }

    /// The directory holding the token's files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every object of the token, as OpenSC's `pkcs11-tool` lists it logged in as the
    /// user (private objects included). Panics, naming the package, when `pkcs11-tool` is
    /// missing. List while no server writes to the token: SoftHSM2's file store is not
    /// meant to be written by two processes at once.
    pub fn list_objects(&self) -> Vec<TokenObject> {
        let output = Command::new("pkcs11-tool")
            .env("SOFTHSM2_CONF", &self.conf)
            .args(["--module", SOFTHSM_MODULE, "--token-label", &self.label])
            .args(["--login", "--pin", PIN, "--list-objects"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run pkcs11-tool ({e}). {MISSING_TOOL}"));
        assert!(
            output.status.success(),
            "pkcs11-tool --list-objects failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        parse_object_list(&String::from_utf8_lossy(&output.stdout))
    }
}

/// `pkcs11-tool --list-objects` output: an unindented line per object, then indented
/// `name: value` lines.
fn parse_object_list(text: &str) -> Vec<TokenObject> {
    let list = |value: &str| -> Vec<String> {
        value
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let mut objects: Vec<TokenObject> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            objects.push(TokenObject {
                kind: line.trim().to_owned(),
                label: String::new(),
                id: String::new(),
                usage: Vec::new(),
                access: Vec::new(),
            });
            continue;
        }
        let (Some(object), Some((name, value))) = (objects.last_mut(), line.split_once(':')) else {
            continue;
        };
        let value = value.trim();
        match name.trim() {
            "label" => object.label = value.to_owned(),
            "ID" => object.id = value.to_ascii_lowercase(),
            "Usage" => object.usage = list(value),
            "Access" => object.access = list(value),
            _ => {}
        }
    }
    objects
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pkcs11_tool_listings() {
        let text = "Secret Key Object; AES length 32\n  label:      coffre-root/v1\n  \
                    ID:         00000001\n  Usage:      encrypt, decrypt\n  \
                    Access:     sensitive, always sensitive, never extractable, local\n\
                    Secret Key Object; AES length 32\n  label:      other\n  ID:         0A\n";
        let objects = parse_object_list(text);
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0].label, "coffre-root/v1");
        assert_eq!(objects[0].id, "00000001");
        assert_eq!(objects[0].usage, ["encrypt", "decrypt"]);
        assert!(objects[0].access.iter().any(|a| a == "never extractable"));
        assert_eq!(objects[1].label, "other");
        assert_eq!(objects[1].id, "0a");
        assert!(parse_object_list("").is_empty());
    }
}
