//! A SoftHSM2 token of its own for a test server's `pkcs11` root key provider: a
//! `softhsm2.conf` pointing at a fresh token directory, one initialized token and a 0600
//! PIN file, all removed on drop. The server finds the token through `SOFTHSM2_CONF` in its
//! environment ([`SoftHsmToken::env`]).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// Debian's SoftHSM2 module, the `pkcs11` provider's default.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const MISSING: &str = "SoftHSM2 is required for the pkcs11 tests: install the Debian package \
                       `softhsm2` (apt-get install -y softhsm2; conformance/run does it)";

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
            .args(["--pin", "1234", "--so-pin", "5678"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run softhsm2-util ({e}). {MISSING}"));
        assert!(
            output.status.success(),
            "softhsm2-util --init-token failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let pin_file = dir.path().join("pin");
        fs::write(&pin_file, "1234\n").expect("write the PIN file");
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
}
