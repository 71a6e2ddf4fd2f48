//! The command line: `mercato serve` and `mercato config`, with room for more subcommands
//! (`init`, `demo`, `reindex`, `loadgen`).
//!
//! This is the top of the program: errors become `anyhow::Error` here and only here; the
//! binary prints them and exits non-zero.

use crate::config::{Config, ConfigSources, FlagOverrides};
use crate::launch::{ShutdownSignals, launch_with_listener};
use crate::telemetry;
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// How long the runtime waits for blocking tasks still running after the server stopped.
pub const RUNTIME_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Mercato: a B2B wholesale marketplace appliance in one binary.
#[derive(Debug, Parser)]
#[command(name = "mercato", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API and the operations endpoints until SIGTERM or SIGINT.
    Serve(ConfigArgs),
    /// Print the effective configuration (defaults, file, MERCATO_* environment and flags
    /// merged) as TOML, then exit.
    Config(ConfigArgs),
}

/// Configuration options shared by every subcommand that loads the configuration.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// TOML configuration file, layered over the built-in defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (overrides `data_dir`).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on, such as 127.0.0.1:8080 (overrides `listen`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Serve HTTPS with a generated self-signed certificate (development only).
    #[arg(long)]
    pub tls_self_signed: bool,
}

impl Cli {
    /// Parses the process's arguments; on `--help`, `--version` or a usage error clap prints
    /// and exits (status 2 for usage errors).
    pub fn from_args() -> Cli {
        Cli::parse()
    }
}

impl ConfigArgs {
    fn load(self) -> anyhow::Result<Config> {
        let flags = FlagOverrides {
            listen: self.listen,
            data_dir: self.data_dir,
            tls_self_signed: self.tls_self_signed,
        };
        Ok(Config::load(&ConfigSources::from_process(
            self.config,
            flags,
        ))?)
    }
}

/// Runs a parsed command line to completion.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args.load()?),
        Command::Config(args) => print_config(&args.load()?),
    }
}

fn print_config(config: &Config) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "# Effective configuration: built-in defaults < --config file < MERCATO_* environment < flags"
    )?;
    stdout.write_all(config.to_toml().as_bytes())?;
    stdout.flush()?;
    Ok(())
}

fn serve(config: Config) -> anyhow::Result<()> {
    telemetry::init_logs(&config.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mercato-rt")
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(serve_until_signal(config));
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT);
    outcome
}

async fn serve_until_signal(config: Config) -> anyhow::Result<()> {
    let mut signals = ShutdownSignals::install().context("cannot listen for shutdown signals")?;
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("cannot listen on {} (listen)", config.listen))?;
    let (first_signal, first_signal_received) = tokio::sync::oneshot::channel::<()>();
    let server = launch_with_listener(config, listener, async move {
        let _ = first_signal_received.await;
    })
    .await?;
    // The first signal starts a graceful drain; a second one cuts it short.
    let force_stop = server.force_stop();
    tokio::spawn(async move {
        let name = signals.next().await;
        tracing::info!(signal = name, "shutdown requested");
        let _ = first_signal.send(());
        let name = signals.next().await;
        tracing::warn!(
            signal = name,
            "second shutdown signal: closing connections without waiting"
        );
        force_stop.close_connections_now();
    });
    tracing::info!(url = %server.url(), "listening");
    // Tests and scripts read this line to learn the bound port; it is the only line on stdout.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "mercato listening on {}", server.url())?;
    stdout.flush()?;
    drop(stdout);
    server.wait().await?;
    tracing::info!("stopped");
    Ok(())
}
