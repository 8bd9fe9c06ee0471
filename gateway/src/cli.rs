//! The `coffre` command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConfigError, Overrides, RawConfig};

#[derive(Debug, Parser)]
#[command(
    name = "coffre",
    version,
    about = "S3-compatible object gateway with per-tenant encryption at rest"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default). With no options: loopback listeners, data under ./data.
    Serve(ServeArgs),
    /// Validate a configuration file and print the resolved settings.
    CheckConfig {
        /// The TOML file to check.
        file: PathBuf,
    },
    /// Manage tenants and access keys through a running server's admin API.
    Admin(AdminArgs),
    /// Work with the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print what this binary was built with, as JSON (version, and whether the test-only
    /// TenantScope constructor is compiled in, which a shipped build must not be).
    BuildInfo,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chains and report the first record where each breaks (an edited,
    /// deleted, reordered or truncated record). Exit status 1 when any is broken.
    Verify {
        /// Audit directories (with their HEAD), each a chain of its own (one per node of a
        /// cluster), or log files, which form one chain in the order given.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The admin listener: http://HOST:PORT, or https://HOST:PORT when it serves TLS.
    #[arg(
        long,
        env = "COFFRE_ADMIN_ENDPOINT",
        default_value = "http://127.0.0.1:9001",
        global = true
    )]
    pub endpoint: String,
    /// PEM CA certificate(s) the https admin listener's certificate must chain to.
    #[arg(long, env = "COFFRE_ADMIN_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) to present, when the admin listener requires one
    /// (`admin_client_ca_file`); needs --client-key.
    #[arg(
        long,
        env = "COFFRE_ADMIN_CLIENT_CERT",
        global = true,
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(
        long,
        env = "COFFRE_ADMIN_CLIENT_KEY",
        global = true,
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,
    /// File holding the admin token (the server writes `<data-dir>/admin-token`).
    #[arg(
        long,
        env = "COFFRE_ADMIN_TOKEN_FILE",
        default_value = "./data/admin-token",
        global = true
    )]
    pub token_file: PathBuf,
    /// Print the API's JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Tenants: the unit of isolation.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Access keys of a tenant.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Rotate the root key: a new version, every tenant KEK rewrapped under it, the older
    /// versions destroyed. Object data is not rewritten.
    RotateRoot,
    /// Show the root key versions and how many tenant KEKs each wraps.
    RootKey,
    /// The gateways sharing the metadata store, and who holds each background job.
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Nodes (name, address, version, last heartbeat) and leases (job, holder, expiry).
    Status,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Create {
        /// 3 to 63 lowercase letters, digits and hyphens.
        name: String,
        /// Arrays or site labels its data may live on (comma-separated; default: any).
        #[arg(long, value_delimiter = ',')]
        placement: Vec<String>,
        /// Byte quota, e.g. 500G or 1T (binary units; 1TB is decimal).
        #[arg(long, value_parser = parse_size)]
        quota_bytes: Option<u64>,
        /// Object count quota.
        #[arg(long)]
        quota_objects: Option<u64>,
        /// Quota of multipart uploads in progress at once.
        #[arg(long)]
        quota_uploads: Option<u64>,
    },
    /// List tenants with their usage.
    List,
    /// Show one tenant: state, placement, quotas, usage.
    Show { name: String },
    /// Change placement or quotas.
    Update {
        name: String,
        /// New placement (comma-separated arrays or site labels).
        #[arg(long, value_delimiter = ',', conflicts_with = "any_array")]
        placement: Option<Vec<String>>,
        /// Let the tenant's data go to any array.
        #[arg(long)]
        any_array: bool,
        /// New byte quota, or `none` to remove it.
        #[arg(long, value_parser = parse_limit_size)]
        quota_bytes: Option<Limit>,
        /// New object quota, or `none` to remove it.
        #[arg(long, value_parser = parse_limit_count)]
        quota_objects: Option<Limit>,
        /// New quota of multipart uploads in progress, or `none` to remove it.
        #[arg(long, value_parser = parse_limit_count)]
        quota_uploads: Option<Limit>,
    },
    /// Refuse every request of the tenant's keys; nothing is deleted.
    Suspend { name: String },
    /// Let a suspended tenant's keys work again.
    Resume { name: String },
    /// Rotate the tenant's KEK: the new version is current at once; its DEKs are rewrapped
    /// in the background (see `tenant show`) and the old version destroyed at the end.
    RotateKey { name: String },
    /// Delete a tenant (refused while it has buckets unless --force).
    Delete {
        name: String,
        /// Also delete all its buckets, objects and uploads.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an access key; its secret is shown only this once.
    Create {
        /// The tenant's name.
        tenant: String,
        #[arg(long, value_enum, default_value_t = KeyRole::ReadWrite)]
        role: KeyRole,
        /// Limit the key to this bucket (repeat or comma-separate for several).
        #[arg(long = "bucket", value_delimiter = ',')]
        buckets: Vec<String>,
    },
    /// List a tenant's keys (never their secrets).
    List { tenant: String },
    /// Stop a key from authenticating.
    Disable { access_key_id: String },
    /// Let a disabled key authenticate again.
    Enable { access_key_id: String },
    /// Delete a key for good.
    Delete { access_key_id: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyRole {
    /// Everything in the tenant.
    Admin,
    ReadWrite,
    ReadOnly,
}

/// A quota given on the command line: a value, or `none` for no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(pub Option<u64>);

fn parse_size(text: &str) -> Result<u64, String> {
    crate::admin::byte_size::parse_size(text)
}

fn parse_limit_size(text: &str) -> Result<Limit, String> {
    if is_none(text) {
        return Ok(Limit(None));
    }
    parse_size(text).map(|v| Limit(Some(v)))
}

fn parse_limit_count(text: &str) -> Result<Limit, String> {
    if is_none(text) {
        return Ok(Limit(None));
    }
    text.trim()
        .parse()
        .map(|v| Limit(Some(v)))
        .map_err(|_| format!("'{text}' is not a count (or `none`)"))
}

fn is_none(text: &str) -> bool {
    matches!(text.trim(), "none" | "unlimited")
}

#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file; environment variables and flags override it.
    #[arg(long, env = "COFFRE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where metadata, the default array and generated secrets live.
    #[arg(long, env = "COFFRE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of the S3 listener (default 127.0.0.1:9000).
    #[arg(long, env = "COFFRE_S3_LISTEN")]
    pub s3_listen: Option<String>,
    /// Address of the admin listener (default 127.0.0.1:9001).
    #[arg(long, env = "COFFRE_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,
    /// Base domain for virtual-host style requests (bucket.DOMAIN).
    #[arg(long, env = "COFFRE_DOMAIN")]
    pub domain: Option<String>,
    /// Region reported to clients and expected in signatures (default us-east-1).
    #[arg(long, env = "COFFRE_REGION")]
    pub region: Option<String>,
    /// Log filter, e.g. `info` or `coffre_gateway=debug`.
    #[arg(long, env = "COFFRE_LOG")]
    pub log_level: Option<String>,
    /// File holding the admin API's bearer token (default: generated as
    /// `<data-dir>/admin-token`).
    #[arg(long)]
    pub admin_token_file: Option<PathBuf>,
}

impl ServeArgs {
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let raw = match &self.config {
            Some(path) => RawConfig::from_file(path)?,
            None => RawConfig::embedded_default(),
        };
        Config::resolve(
            raw,
            Overrides {
                data_dir: self.data_dir.clone(),
                s3_listen: self.s3_listen.clone(),
                admin_listen: self.admin_listen.clone(),
                domain: self.domain.clone(),
                region: self.region.clone(),
                log_level: self.log_level.clone(),
                admin_token_file: self.admin_token_file.clone(),
            },
        )
    }
}
