use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use coffre_gateway::audit::VerifyReport;
use coffre_gateway::cli::{AuditCommand, Cli, Command, ServeArgs};
use coffre_gateway::config::{Config, LogFormat, Overrides, RawConfig};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => {
            let config = match args.resolve() {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("coffre: invalid configuration: {e}");
                    std::process::exit(2);
                }
            };
            init_logging(&config);
            bench_plaintext_switch();
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                // Only short storage calls run there ([limits] blocking_threads).
                .max_blocking_threads(config.limits.blocking_threads)
                .build()?
                .block_on(run(config))
        }
        Command::Admin(args) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            if let Err(e) = runtime.block_on(coffre_gateway::admin::command::run(args)) {
                eprintln!("coffre: {e}");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Audit(AuditCommand::Verify { paths }) => {
            // Each directory is a chain of its own (one per node of a cluster); log files
            // given one by one form one chain, in the order given.
            let (dirs, files): (Vec<_>, Vec<_>) = paths.into_iter().partition(|p| p.is_dir());
            let mut chains: Vec<(String, Vec<PathBuf>)> = dirs
                .into_iter()
                .map(|dir| (dir.display().to_string(), vec![dir]))
                .collect();
            if !files.is_empty() {
                chains.push(("the files given".to_owned(), files));
            }
            let mut broken = false;
            for (name, paths) in &chains {
                match coffre_gateway::audit::verify_files(paths)? {
                    VerifyReport::Intact { records } => {
                        println!("{name}: audit trail intact: {records} records");
                    }
                    VerifyReport::Broken { file, line, reason } => {
                        println!(
                            "{name}: audit trail BROKEN at {}:{line}: {reason}",
                            file.display()
                        );
                        broken = true;
                    }
                }
            }
            if broken {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::BuildInfo => {
            let info = serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "test_scope_constructor": coffre_crypto::TenantScope::TEST_CONSTRUCTOR_COMPILED,
            });
            println!("{info}");
            Ok(())
        }
        Command::CheckConfig { file } => {
            let raw = RawConfig::from_file(&file)?;
            let config = Config::resolve(raw, Overrides::default())
                .with_context(|| format!("{} is not valid", file.display()))?;
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = writeln!(
                std::io::stdout(),
                "{} is valid:\n{config:#?}",
                file.display()
            );
            Ok(())
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    create_private_dir(&config.data_dir)?;
    let running = coffre_gateway::serve(config).await?;
    println!(
        "coffre listening s3={} admin={}",
        running.s3_url(),
        running.admin_url()
    );
    std::io::stdout().flush()?;
    wait_for_signal(&running).await?;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

fn create_private_dir(path: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("creating the data directory {}", path.display()))
}

/// Waits for SIGINT or SIGTERM; SIGHUP reloads the TLS certificates meanwhile.
async fn wait_for_signal(running: &coffre_gateway::Running) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = term.recv() => return Ok(()),
            _ = hangup.recv() => running.reload_tls().await,
        }
    }
}

/// Benchmark builds only (feature `bench-plaintext`, see benches/run-load.sh): with
/// `COFFRE_BENCH_PLAINTEXT=1` object data is stored unencrypted, to measure what encryption
/// costs. Release builds do not contain this switch.
#[cfg(feature = "bench-plaintext")]
fn bench_plaintext_switch() {
    if std::env::var("COFFRE_BENCH_PLAINTEXT").as_deref() == Ok("1") {
        coffre_crypto::aead::bench_plaintext::enable();
        tracing::warn!(
            "BENCHMARK BUILD: object data is stored UNENCRYPTED (COFFRE_BENCH_PLAINTEXT=1)"
        );
    }
}

#[cfg(not(feature = "bench-plaintext"))]
fn bench_plaintext_switch() {}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
