//! The real `coffre` binary, started on ephemeral ports over a fresh data directory.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::transport::{test_ca, Transport, TRANSPORT_ENV};

/// `postgres` runs every test server on the PostgreSQL metadata backend (see
/// [`TestServer::apply_metadata`]); unset or anything else, on RocksDB.
pub const METADATA_ENV: &str = "COFFRE_TEST_METADATA";

/// How long the server may take to print its "listening" line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a graceful stop may take before the process is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const READY_PREFIX: &str = "coffre listening ";

/// A running `coffre serve` on `127.0.0.1:0` with its own temporary data directory.
///
/// With `COFFRE_TEST_TRANSPORT=https` its S3 listener serves TLS with a certificate of the
/// harness's test CA (see [`crate::Transport`]), unless the test's configuration sets
/// `tls_cert_file` itself. The admin listener stays as configured. Clients follow what the
/// server announced, so a test that brings its own listener settings works either way.
///
/// Dropping it kills the process and removes the directory.
pub struct TestServer {
    /// `http(s)://127.0.0.1:PORT` of the S3 listener (changes on every restart).
    pub endpoint: String,
    /// `http(s)://127.0.0.1:PORT` of the admin listener (changes on every restart).
    pub admin_endpoint: String,
    /// The S3 listener's address.
    pub s3_addr: SocketAddr,
    /// Access key id of the `default` tenant, read from `<data-dir>/credentials`.
    pub access_key: String,
    /// Secret access key of the `default` tenant.
    pub secret_key: String,
    /// Extra arguments given to every start (e.g. `--domain s3.test`).
    extra_args: Vec<String>,
    /// Extra environment variables of every start (e.g. `SOFTHSM2_CONF`).
    extra_env: Vec<(String, String)>,
    /// Whether the harness gave the S3 listener TLS (the HTTPS transport).
    harness_tls: bool,
    /// Whether the server makes the `default` tenant, whose credentials the harness reads
    /// (not for a configuration that says `default_tenant = false`).
    default_tenant: bool,
    child: Option<Child>,
    // Declared last so that the process is gone before the directory is removed.
    data_dir: TempDir,
}

impl TestServer {
    /// Starts a server with the default arguments.
    pub fn start() -> Self {
        Self::start_with_args(&[])
    }

    /// Starts a server with `extra_args` appended to the standard arguments.
    pub fn start_with_args(extra_args: &[&str]) -> Self {
        let mut server = Self::unstarted(extra_args);
        if extra_args.contains(&"--config") {
            // A configuration file turns the `default` tenant off unless it asks for it;
            // the harness's credentials come from it.
            server.rewrite_config("coffre-harness.toml", |with_tenant| {
                Some(with_tenant.to_owned())
            });
        }
        server.apply_transport();
        server.apply_metadata();
        server.spawn();
        server
    }

    /// Starts a server reading `toml` as its configuration file (written into the data
    /// directory as `coffre.toml`), with `env` added to its environment. Flags still set the
    /// data directory and the listeners. The `default` tenant is created as on the embedded
    /// default, unless `toml` has a `[bootstrap]` table of its own.
    pub fn start_with_config(toml: &str, env: &[(&str, &str)]) -> Self {
        let mut server = Self::unstarted(&[]);
        server.default_tenant = !toml.contains("default_tenant = false");
        let path = server.data_dir().join("coffre.toml");
        std::fs::write(&path, with_default_tenant(toml)).expect("write the configuration file");
        server.extra_args = vec!["--config".to_string(), path.display().to_string()];
        server.extra_env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        server.apply_transport();
        server.apply_metadata();
        server.spawn();
        server
    }

    fn unstarted(extra_args: &[&str]) -> Self {
        let data_dir = tempfile::Builder::new()
            .prefix("coffre-conformance-")
            .tempdir()
            .expect("create a temporary data directory");
        TestServer {
            endpoint: String::new(),
            admin_endpoint: String::new(),
            s3_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            access_key: String::new(),
            secret_key: String::new(),
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            extra_env: Vec::new(),
            harness_tls: false,
            default_tenant: true,
            child: None,
            data_dir,
        }
    }

    /// Over the HTTPS transport, serves the S3 listener with a certificate of the test CA:
    /// the TLS settings go first in a copy of the test's configuration file (`--config`, if
    /// any), or in a file of their own. A configuration that sets TLS itself is left alone.
    fn apply_transport(&mut self) {
        if Transport::from_env() != Transport::Https {
            return;
        }
        let domain = self
            .extra_args
            .iter()
            .position(|a| a == "--domain")
            .and_then(|i| self.extra_args.get(i + 1))
            .cloned();
        let cert_dir = self.data_dir.path().join("test-tls");
        let mut applied = false;
        self.rewrite_config("coffre-https.toml", |original| {
            if sets_tls(original) {
                return None;
            }
            applied = true;
            let cert = test_ca().issue_server_cert(&cert_dir, domain.as_deref());
            // Top-level keys must come before the first [table] of the original.
            Some(format!(
                "# Added by the conformance harness ({TRANSPORT_ENV}=https).\n\
                 tls_cert_file = {:?}\ntls_key_file = {:?}\n\n{original}",
                cert.cert.display().to_string(),
                cert.key.display().to_string(),
            ))
        });
        self.harness_tls = applied;
    }

    /// With `COFFRE_TEST_METADATA=postgres`, keeps the metadata in a fresh database of the
    /// test PostgreSQL server (`COFFRE_TEST_POSTGRES_URL`), one per test server (restarts
    /// keep it). A configuration with a `[metadata]` table of its own is left alone.
    fn apply_metadata(&mut self) {
        if std::env::var(METADATA_ENV).as_deref() != Ok("postgres") {
            return;
        }
        let url = crate::postgres::fresh_database();
        self.rewrite_config("coffre-postgres.toml", |original| {
            if original.lines().any(|line| line.trim() == "[metadata]") {
                return None;
            }
            Some(format!(
                "{original}\n\n# Added by the conformance harness ({METADATA_ENV}=postgres).\n\
                 [metadata]\nkind = \"postgres\"\nurl = {url:?}\npool_size = 8\n"
            ))
        });
    }

    /// Replaces the server's configuration file (`--config`, or none) by what `rewrite`
    /// makes of its text, written to `name` in the data directory; `None` leaves it as is.
    /// A new configuration file keeps the embedded default's `default` tenant.
    fn rewrite_config(&mut self, name: &str, rewrite: impl FnOnce(&str) -> Option<String>) {
        let config_at = self
            .extra_args
            .iter()
            .position(|a| a == "--config")
            .map(|i| i + 1);
        let original = match config_at.and_then(|i| self.extra_args.get(i)) {
            Some(path) => std::fs::read_to_string(path)
                .unwrap_or_else(|e| panic!("cannot read the configuration {path}: {e}")),
            None => String::new(),
        };
        // A configuration file turns off the embedded default's `default` tenant.
        let original = with_default_tenant(&original);
        let Some(rewritten) = rewrite(&original) else {
            return;
        };
        let path = self.data_dir.path().join(name);
        std::fs::write(&path, rewritten).expect("write the harness's configuration");
        let path = path.display().to_string();
        match config_at {
            Some(i) => self.extra_args[i] = path,
            None => self.extra_args.extend(["--config".to_string(), path]),
        }
    }

    /// Whether the S3 listener serves HTTPS.
    pub fn is_https(&self) -> bool {
        self.endpoint.starts_with("https://")
    }

    /// The data directory given to `--data-dir`.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The host:port part of the S3 endpoint.
    pub fn authority(&self) -> String {
        self.s3_addr.to_string()
    }

    /// The process id of the running server, if any.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the server gracefully (SIGTERM, then SIGKILL after a timeout) and starts it
    /// again on the same data directory. Ports change: build new clients afterwards.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Kills the server with SIGKILL (a crash) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again after [`TestServer::kill`] on the same data directory.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server is still running");
        self.spawn();
    }

    /// Stops the server gracefully: SIGTERM, then SIGKILL if it is still alive after 10 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                _ => break,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    fn spawn(&mut self) {
        let bin = coffre_binary();
        let mut command = Command::new(&bin);
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .arg("--s3-listen")
            .arg("127.0.0.1:0")
            .arg("--admin-listen")
            .arg("127.0.0.1:0")
            .args(&self.extra_args)
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "warn");
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));

        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (ready_tx, ready_rx) = mpsc::channel::<String>();
        // Drain both pipes for the life of the process so the server never blocks on a
        // full pipe; lines go to the test's captured output (shown when a test fails).
        thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix(READY_PREFIX) {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(rest.to_string());
                    }
                }
                eprintln!("[coffre stdout] {line}");
            }
        });
        thread::spawn(move || drain_lines(stderr, "[coffre stderr]"));

        let started = Instant::now();
        let ready = loop {
            match ready_rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => break line,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!(
                            "coffre exited before it was ready ({status}); see its stderr above"
                        );
                    }
                    if started.elapsed() > STARTUP_TIMEOUT {
                        let _ = child.kill();
                        panic!(
                            "coffre printed no `{READY_PREFIX}...` line within {STARTUP_TIMEOUT:?}"
                        );
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().ok();
                    panic!("coffre closed stdout before it was ready (exit: {status:?})");
                }
            }
        };
        let (s3, admin) = parse_ready_line(&ready);
        self.s3_addr = s3
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .parse()
            .unwrap_or_else(|e| panic!("bad s3 address in `{ready}`: {e}"));
        self.endpoint = s3;
        self.admin_endpoint = admin;
        self.child = Some(child);
        assert!(
            !self.harness_tls || self.is_https(),
            "{TRANSPORT_ENV}=https, but the S3 listener is {}",
            self.endpoint
        );
        self.read_credentials();
    }

    fn read_credentials(&mut self) {
        if !self.default_tenant {
            return;
        }
        let path = self.data_dir.path().join("credentials");
        // The file is written before the listeners open; allow a short grace period anyway.
        let deadline = Instant::now() + Duration::from_secs(5);
        let text = loop {
            match std::fs::read_to_string(&path) {
                Ok(text) if text.contains("aws_secret_access_key") => break text,
                _ if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                Ok(text) => panic!("{} has no secret: {text:?}", path.display()),
                Err(e) => panic!("cannot read {}: {e}", path.display()),
            }
        };
        let (access_key, secret_key) = parse_credentials(&text)
            .unwrap_or_else(|| panic!("{} is not an AWS credentials file", path.display()));
        self.access_key = access_key;
        self.secret_key = secret_key;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn drain_lines(pipe: impl Read, prefix: &'static str) {
    for line in BufReader::new(pipe).lines() {
        let Ok(line) = line else { break };
        eprintln!("{prefix} {line}");
    }
}

/// `toml` asking for the `default` tenant (see [`TestServer::access_key`]), unless it says
/// otherwise in a `[bootstrap]` table of its own.
fn with_default_tenant(toml: &str) -> String {
    if toml.lines().any(|line| line.trim() == "[bootstrap]") {
        return toml.to_owned();
    }
    format!("{toml}\n\n# Added by the conformance harness.\n[bootstrap]\ndefault_tenant = true\n")
}

/// Whether a configuration file sets the S3 listener's TLS files itself.
fn sets_tls(toml: &str) -> bool {
    toml.lines().any(|line| {
        let key = line.split('=').next().unwrap_or_default().trim();
        key == "tls_cert_file" || key == "tls_key_file"
    })
}

/// `s3=http://127.0.0.1:PORT admin=http://127.0.0.1:PORT` -> (s3, admin).
fn parse_ready_line(rest: &str) -> (String, String) {
    let mut s3 = None;
    let mut admin = None;
    for word in rest.split_whitespace() {
        if let Some(v) = word.strip_prefix("s3=") {
            s3 = Some(v.trim_end_matches('/').to_string());
        } else if let Some(v) = word.strip_prefix("admin=") {
            admin = Some(v.trim_end_matches('/').to_string());
        }
    }
    match (s3, admin) {
        (Some(s3), Some(admin)) => (s3, admin),
        _ => panic!("cannot parse the ready line `{READY_PREFIX}{rest}`"),
    }
}

/// Reads the `[default]` profile of an AWS shared-credentials file.
pub fn parse_credentials(text: &str) -> Option<(String, String)> {
    let mut in_default = false;
    let mut key = None;
    let mut secret = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_default = line == "[default]";
            continue;
        }
        if !in_default {
            continue;
        }
        if let Some((name, value)) = line.split_once('=') {
            match name.trim() {
                "aws_access_key_id" => key = Some(value.trim().to_string()),
                "aws_secret_access_key" => secret = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    Some((key?, secret?))
}

/// Where the `coffre` binary is: `$COFFRE_BIN`, else next to the test executable's
/// `deps/` directory (`target/debug/coffre`).
pub fn coffre_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("COFFRE_BIN") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "COFFRE_BIN={} does not exist; build it with `cargo build -p coffre-gateway --bin coffre`",
            path.display()
        );
        return path;
    }
    let exe = std::env::current_exe().expect("current test executable");
    let mut candidates = Vec::new();
    if let Some(dir) = exe.parent() {
        candidates.push(dir.join("coffre"));
        if let Some(profile_dir) = dir.parent() {
            candidates.push(profile_dir.join("coffre"));
        }
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "the coffre binary was not found (looked at {candidates:?}); build it first with \
                 `cargo build -p coffre-gateway --bin coffre`, or set COFFRE_BIN to its path"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_default_profile() {
        let text = "[other]\naws_access_key_id = X\n[default]\naws_access_key_id = AK\naws_secret_access_key=SK/+=\n";
        assert_eq!(
            parse_credentials(text),
            Some(("AK".to_string(), "SK/+=".to_string()))
        );
    }

    #[test]
    fn finds_tls_settings_of_the_s3_listener_only() {
        assert!(sets_tls(
            "region = \"x\"\ntls_cert_file = \"/c\"\ntls_key_file=\"/k\"\n"
        ));
        assert!(!sets_tls(
            "admin_tls_cert_file = \"/c\"\nadmin_tls_key_file = \"/k\"\n"
        ));
        assert!(!sets_tls(""));
    }

    #[test]
    fn parses_the_ready_line() {
        let (s3, admin) = parse_ready_line("s3=http://127.0.0.1:1234 admin=http://127.0.0.1:5678");
        assert_eq!(s3, "http://127.0.0.1:1234");
        assert_eq!(admin, "http://127.0.0.1:5678");
    }
}
