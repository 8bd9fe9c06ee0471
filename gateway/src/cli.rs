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
}

impl ServeArgs {
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let raw = match &self.config {
            Some(path) => RawConfig::from_file(path)?,
            None => RawConfig::default(),
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
            },
        )
    }
}
