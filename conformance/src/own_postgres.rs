//! A PostgreSQL server of a test's own (`conformance/postgres start`), for the tests that
//! stop it or start it with settings of their own, so that no other test is disturbed;
//! stopped and removed on drop.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct OwnPostgres {
    env: HashMap<String, String>,
}

impl OwnPostgres {
    /// `conformance/postgres start` with `args` (such as `--tls DIR`).
    pub fn start(args: &[&str]) -> Self {
        let output = Command::new(script())
            .arg("start")
            .args(args)
            .output()
            .expect("run conformance/postgres");
        assert!(
            output.status.success(),
            "conformance/postgres start {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let env = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        OwnPostgres { env }
    }

    /// A variable the script exported (`COFFRE_TEST_POSTGRES_URL`, `_DIR`, `_BIN`).
    pub fn var(&self, name: &str) -> &str {
        &self.env[name]
    }

    /// The URL of `database` on this server.
    pub fn url(&self, database: &str) -> String {
        let server = self.var("COFFRE_TEST_POSTGRES_URL");
        format!("{}/{database}", server.rsplit_once('/').unwrap().0)
    }

    pub fn port(&self) -> u16 {
        let url = self.var("COFFRE_TEST_POSTGRES_URL");
        let port = url.rsplit_once(':').unwrap().1.split('/').next().unwrap();
        port.parse().unwrap()
    }

    /// `conformance/postgres ACTION` (`down`, `up`) on this server.
    pub fn run(&self, action: &str) {
        let status = Command::new(script())
            .arg(action)
            .envs(&self.env)
            .status()
            .expect("run conformance/postgres");
        assert!(status.success(), "conformance/postgres {action}");
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").envs(&self.env).status();
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("postgres")
}
