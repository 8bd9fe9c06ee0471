//! `loadgen`: a loopback S3 load generator. See benches/README.md.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use coffre_benches::byte_size::ByteSize;
use coffre_benches::endpoint::Endpoint;
use coffre_benches::report::Report;
use coffre_benches::s3_client::S3Client;
use coffre_benches::scenario::listing::{self, ListingConfig};
use coffre_benches::scenario::objects::{self, ObjectsConfig};
use coffre_benches::scenario::{Bounds, ScenarioOutput};
use coffre_benches::signer::RequestSigner;

#[derive(Parser, Debug)]
#[command(about = "Drive an S3 endpoint on this machine with SigV4-signed requests")]
struct Cli {
    /// Loopback only: 127.0.0.1, localhost or [::1].
    #[arg(
        long,
        env = "LOADGEN_ENDPOINT",
        default_value = "http://127.0.0.1:9000"
    )]
    endpoint: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    access_key: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_key: String,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Created if missing.
    #[arg(long, default_value = "loadgen")]
    bucket: String,
    /// Every phase (loop) stops after this many seconds even if --count is not reached.
    #[arg(long, default_value_t = 120)]
    max_seconds: u64,
    /// A phase stops after this many failed requests.
    #[arg(long, default_value_t = 10)]
    max_errors: u64,
    /// Name of the server under test, for the report.
    #[arg(long, default_value = "server")]
    label: String,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    json_out: Option<std::path::PathBuf>,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// PUT --count objects of --size, then delete them.
    Put(ObjectArgs),
    /// PUT --count objects, GET each back (checking length and a CRC32 sample), delete them.
    #[command(alias = "get")]
    Putget(ObjectArgs),
    /// Small objects: PUT/s then GET/s (putget with 4 KiB defaults).
    Small(SmallArgs),
    /// ListObjectsV2 full scan (keys/s) and a delimiter listing (time per call).
    List(ListArgs),
}

#[derive(Args, Debug)]
struct ObjectArgs {
    #[arg(long, default_value = "64MiB")]
    size: ByteSize,
    #[arg(long, default_value_t = 32)]
    count: u64,
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    #[command(flatten)]
    common: ObjectCommon,
}

#[derive(Args, Debug)]
struct SmallArgs {
    #[arg(long, default_value = "4KiB")]
    size: ByteSize,
    #[arg(long, default_value_t = 5000)]
    count: u64,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    #[command(flatten)]
    common: ObjectCommon,
}

#[derive(Args, Debug)]
struct ObjectCommon {
    /// Check the CRC32 of one GET body in this many (lengths are always checked).
    #[arg(long, default_value_t = 4)]
    verify_every: u64,
    /// Keep the objects instead of deleting them at the end.
    #[arg(long)]
    keep: bool,
}

#[derive(Args, Debug)]
struct ListArgs {
    /// Keys the bucket must hold; missing ones are created first.
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    /// Common prefixes the keys are spread over (the delimiter listing returns them).
    #[arg(long, default_value_t = 1000)]
    prefixes: u64,
    /// Concurrency of the key creation.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Full scans to time.
    #[arg(long, default_value_t = 3)]
    scans: u64,
    /// Delimiter listings to time.
    #[arg(long, default_value_t = 20)]
    delimiter_calls: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(report) if report.has_errors() => ExitCode::FAILURE,
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("loadgen: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<Report> {
    let endpoint = Endpoint::parse(&cli.endpoint)?;
    if cli.max_seconds == 0 {
        bail!("--max-seconds must be at least 1");
    }
    let bounds = Bounds {
        max_duration: Duration::from_secs(cli.max_seconds),
        max_errors: cli.max_errors.max(1),
    };
    let connections = match &cli.scenario {
        Scenario::Put(args) | Scenario::Putget(args) => args.concurrency,
        Scenario::Small(args) => args.concurrency,
        Scenario::List(args) => args.concurrency,
    };
    let signer = RequestSigner::new(&cli.access_key, &cli.secret_key, &cli.region);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let output = runtime.block_on(async {
        let client = Arc::new(S3Client::new(
            endpoint,
            signer,
            &cli.region,
            &cli.bucket,
            connections,
        ));
        client
            .ensure_bucket()
            .await
            .with_context(|| format!("creating bucket {}", client.bucket()))?;
        run_scenario(client, bounds, &cli.scenario).await
    })?;
    let report = Report {
        label: cli.label.clone(),
        endpoint: cli.endpoint.clone(),
        scenario: scenario_name(&cli.scenario).to_owned(),
        command: redacted_command_line(),
        rows: output.rows,
        notes: output.notes,
    };
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &cli.json_out {
        std::fs::write(path, format!("{json}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if cli.json {
        println!("{json}");
    } else {
        print!("{}", report.to_table());
    }
    Ok(report)
}

async fn run_scenario(
    client: Arc<S3Client>,
    bounds: Bounds,
    scenario: &Scenario,
) -> Result<ScenarioOutput> {
    let run_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as u64)
        .unwrap_or_default();
    let objects =
        |size: ByteSize, count, concurrency, common: &ObjectCommon, read_back| ObjectsConfig {
            size: size.bytes(),
            count,
            concurrency,
            read_back,
            verify_every: common.verify_every,
            keep: common.keep,
        };
    match scenario {
        Scenario::Put(args) => {
            let config = objects(args.size, args.count, args.concurrency, &args.common, false);
            objects::run(client, bounds, &config, run_id).await
        }
        Scenario::Putget(args) => {
            let config = objects(args.size, args.count, args.concurrency, &args.common, true);
            objects::run(client, bounds, &config, run_id).await
        }
        Scenario::Small(args) => {
            let config = objects(args.size, args.count, args.concurrency, &args.common, true);
            objects::run(client, bounds, &config, run_id).await
        }
        Scenario::List(args) => {
            let config = ListingConfig {
                keys: args.keys,
                prefixes: args.prefixes,
                create_concurrency: args.concurrency,
                scans: args.scans,
                delimiter_calls: args.delimiter_calls,
            };
            listing::run(client, bounds, &config).await
        }
    }
}

fn scenario_name(scenario: &Scenario) -> &'static str {
    match scenario {
        Scenario::Put(_) => "put",
        Scenario::Putget(_) => "putget",
        Scenario::Small(_) => "small",
        Scenario::List(_) => "list",
    }
}

/// The command line as run, with the secret key replaced.
fn redacted_command_line() -> String {
    let mut redact_next = false;
    let args: Vec<String> = std::env::args()
        .map(|arg| {
            if std::mem::take(&mut redact_next) {
                "***".to_owned()
            } else if arg.starts_with("--secret-key=") {
                "--secret-key=***".to_owned()
            } else {
                redact_next = arg == "--secret-key";
                arg
            }
        })
        .collect();
    args.join(" ")
}
