//! The command line: `mercato serve`, `mercato config`, `mercato init`, `mercato demo`,
//! `mercato loadgen`, and the offline `mercato storage ...` and `mercato reindex`
//! administration commands.
//!
//! This is the top of the program: errors become `anyhow::Error` here and only here; the
//! binary prints them and exits non-zero.

use crate::config::LogConfig;
use crate::config::{Config, ConfigSources, FlagOverrides};
use crate::demo::{self, DemoOptions};
use crate::launch::{ShutdownSignals, launch_with_listener};
use crate::loadgen::{self, LoadgenOptions, Mix};
use crate::storage_admin::{self, VERIFY_PROBLEMS_EXIT_CODE};
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
    /// Offline storage administration: status, integrity check, adding shards, moving
    /// buckets. Refused while a server has the data directory open.
    #[command(subcommand)]
    Storage(StorageCommand),
    /// Initialise the platform of a data directory (created if missing) and print the platform
    /// administrator's token, once: it is stored hashed. On a directory whose platform is
    /// initialised already, exits with status 1 and says so, unless --rotate-platform-token
    /// is given, which replaces the token (the old one stops working) and prints the new one.
    Init(InitArgs),
    /// Fill a data directory with a synthetic wholesale marketplace (tenant `demo`: 50
    /// manufacturers, a category tree, products, 200 retailers, stock, an order history) and
    /// serve it, printing the URL and one sign-in per role. A directory that holds the demo
    /// already is served as it is. The credentials are also written to
    /// DATA_DIR/demo-credentials.json (mode 0600).
    Demo(DemoArgs),
    /// Drive a running server with concurrent HTTP requests (catalog reads and/or order
    /// placement as the demo buyer) and report throughput and latency percentiles.
    Loadgen(LoadgenArgs),
    /// Rebuild the search indexes from storage, with a progress bar. Each shard's new index is
    /// built next to the old one and replaces it atomically once complete. Offline by default:
    /// refused while a server has the data directory open. With --url and --token, asks that
    /// running server to rebuild online (`POST /v1/admin/reindex`; it answers from the old
    /// index meanwhile) and follows the rebuild until the new index is swapped in.
    Reindex(ReindexArgs),
    /// Import products from a CSV file into a tenant through the write path, offline, with a
    /// progress bar: every row is validated first and errors are reported with their line
    /// numbers. `--mode file` (the default) writes nothing if any row is invalid; `--mode batch`
    /// skips only the batches holding invalid rows. Exits with status 1 when a row was
    /// invalid. Refused while a server has the data directory open.
    Import(ImportArgs),
}

/// `mercato import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub source: DataDirArgs,
    /// The tenant's slug.
    #[arg(long, value_name = "SLUG")]
    pub tenant: String,
    /// The CSV file (the columns of `POST /v1/products/import`).
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// `file`: any invalid row voids the whole file; `batch`: only its batch.
    #[arg(long, value_enum, default_value_t = ImportModeArg::File)]
    pub mode: ImportModeArg,
}

/// `--mode` of `mercato import`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportModeArg {
    File,
    Batch,
}

/// `mercato reindex`.
#[derive(Debug, Args)]
pub struct ReindexArgs {
    #[command(flatten)]
    pub source: DataDirArgs,
    /// Only this shard (default: every shard).
    #[arg(long, value_name = "N")]
    pub shard: Option<u64>,
    /// Base URL of a running server, such as http://127.0.0.1:8080: rebuild online there
    /// instead of in a data directory.
    #[arg(long, value_name = "URL", requires = "token", conflicts_with_all = ["config", "data_dir"])]
    pub url: Option<String>,
    /// The platform administrator's token (with --url).
    #[arg(long, value_name = "TOKEN", requires = "url")]
    pub token: Option<String>,
    /// With --url: give up after this many seconds.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 3_600,
        requires = "url"
    )]
    pub timeout_secs: u64,
}

/// `mercato init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub source: DataDirArgs,
    /// Replace the platform token of an initialised platform and print the new one.
    #[arg(long)]
    pub rotate_platform_token: bool,
}

/// `mercato demo`: the configuration layers of `serve`, with its own data directory default.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// TOML configuration file, layered over the built-in defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory of the demo, created if missing (not the configured `data_dir`).
    #[arg(long, value_name = "DIR", default_value = demo::DATA_DIR_DEFAULT)]
    pub data_dir: PathBuf,
    /// Products to generate (10..=10000000); ignored when the directory holds a demo already.
    #[arg(long, value_name = "N", default_value_t = demo::PRODUCTS_DEFAULT)]
    pub products: u64,
    /// Address to listen on, such as 127.0.0.1:8080 (overrides `listen`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Seed of the synthetic data: the same seed gives the same marketplace.
    #[arg(long, value_name = "S", default_value_t = demo::SEED_DEFAULT)]
    pub seed: u64,
}

/// `mercato loadgen`.
#[derive(Debug, Args)]
pub struct LoadgenArgs {
    /// Base URL of the server, such as http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// A demo credentials file (DATA_DIR/demo-credentials.json): signs in as the demo buyer.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "token",
        conflicts_with = "token"
    )]
    pub credentials: Option<PathBuf>,
    /// A bearer token to send instead (a buyer's, for the orders and mixed workloads).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Workload: `gets` (GET /v1/products/{id}), `reads` (product and manufacturer reads and
    /// product lists), `orders` (POST /v1/orders), `mixed` (reads with one order in five).
    #[arg(long, value_enum, default_value_t = Mix::Mixed)]
    pub mix: Mix,
    /// Requests in flight at once (1..=1024), one connection each.
    #[arg(long, value_name = "C", default_value_t = 32)]
    pub concurrency: u32,
    /// Seconds to measure (1..=3600), after the warm-up.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub duration: u64,
    /// Seconds to run before measuring (0..=600).
    #[arg(long, value_name = "SECS", default_value_t = 2)]
    pub warmup: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `mercato storage ...`: each opens the data directory itself and closes it before exiting.
#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// Shards with their bucket counts, last change-log LSN and change-log readers.
    Status {
        #[command(flatten)]
        source: DataDirArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check the integrity of every file of the data directory; exits 2 if problems were found.
    Verify {
        #[command(flatten)]
        source: DataDirArgs,
    },
    /// Add empty shards and print their ids; `rebalance` then moves buckets onto them.
    AddShard {
        #[command(flatten)]
        source: DataDirArgs,
        /// How many shards to add (1..=64).
        #[arg(long, value_name = "N", default_value_t = 1)]
        count: u64,
    },
    /// Move one bucket (every tenant in it) to another shard.
    MoveBucket {
        #[command(flatten)]
        source: DataDirArgs,
        /// The bucket to move (0..=4095).
        #[arg(long, value_name = "B")]
        bucket: u64,
        /// The shard to move it to.
        #[arg(long, value_name = "SHARD")]
        to: u64,
    },
    /// Move the fewest buckets so that every shard holds an equal share (within one).
    Rebalance {
        #[command(flatten)]
        source: DataDirArgs,
        /// Print the plan without moving anything.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Where a storage command finds its data directory: the same layered configuration as
/// `serve` (defaults < `--config` file < `MERCATO_*` environment < `--data-dir`).
#[derive(Debug, Args)]
pub struct DataDirArgs {
    /// TOML configuration file, layered over the built-in defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (overrides `data_dir`).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
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

impl DataDirArgs {
    fn load(&self) -> anyhow::Result<Config> {
        let flags = FlagOverrides {
            data_dir: self.data_dir.clone(),
            ..FlagOverrides::default()
        };
        Ok(Config::load(&ConfigSources::from_process(
            self.config.clone(),
            flags,
        ))?)
    }
}

/// Runs a parsed command line to completion.
///
/// `storage verify` that finds problems exits the process with status 2 from here, after its
/// report is flushed and the data directory released: status 1 stays "the command failed".
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args.load()?),
        Command::Config(args) => print_config(&args.load()?),
        Command::Storage(command) => match storage(command)? {
            Verdict::Consistent => Ok(()),
            Verdict::ProblemsFound => std::process::exit(VERIFY_PROBLEMS_EXIT_CODE),
        },
        Command::Init(args) => init(args),
        Command::Demo(args) => run_demo(args),
        Command::Loadgen(args) => run_loadgen(args),
        Command::Reindex(args) => reindex(args),
        Command::Import(args) => import(args),
    }
}

/// Log level of the commands whose output is a report (storage, init, loadgen), unless
/// `RUST_LOG` says otherwise.
const REPORT_COMMAND_LOG_FILTER: &str = "warn";

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mercato-rt")
        .build()
        .context("cannot start the async runtime")
}

fn init(args: InitArgs) -> anyhow::Result<()> {
    let config = args.source.load()?;
    telemetry::init_logs(&LogConfig {
        filter: REPORT_COMMAND_LOG_FILTER.to_owned(),
        format: config.log.format,
    })?;
    let runtime = runtime()?;
    let rotate = args.rotate_platform_token;
    let engine_config = storage_admin::engine_config(&config);
    let token = runtime.block_on(async move {
        let engine =
            tokio::task::spawn_blocking(move || mercato_engine::Engine::open(engine_config))
                .await??;
        let engine = std::sync::Arc::new(engine);
        let token = if rotate {
            engine.rotate_platform_token().await.map(Some)
        } else {
            engine.init_platform().await
        };
        let closing = engine.clone();
        let closed = tokio::task::spawn_blocking(move || closing.shutdown()).await?;
        let token = token?;
        closed?;
        anyhow::Ok(token)
    })?;
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT);
    let Some(token) = token else {
        anyhow::bail!(
            "the platform of {} is already initialised; its token is stored hashed and cannot be shown again (`mercato init --rotate-platform-token` replaces it)",
            config.data_dir.display()
        );
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "platform token: {}", token.expose_secret())?;
    stdout.flush()?;
    eprintln!(
        "Keep this token now: it is shown once. Send it as `Authorization: Bearer <token>` to /v1/admin/tenants to create tenants."
    );
    Ok(())
}

fn run_demo(args: DemoArgs) -> anyhow::Result<()> {
    if !(demo::PRODUCTS_MIN..=demo::PRODUCTS_MAX).contains(&args.products) {
        anyhow::bail!(
            "--products must be {}..={}, got {}",
            demo::PRODUCTS_MIN,
            demo::PRODUCTS_MAX,
            args.products
        );
    }
    let flags = FlagOverrides {
        listen: args.listen,
        data_dir: Some(args.data_dir),
        tls_self_signed: false,
    };
    let config = Config::load(&ConfigSources::from_process(args.config, flags))?;
    telemetry::init_logs(&config.log)?;
    let options = DemoOptions {
        products: args.products,
        seed: args.seed,
    };
    let runtime = runtime()?;
    let outcome = runtime.block_on(async move {
        let mut prepared = demo::prepare(&config, options).await?;
        serve_until_signal(config, move |url| {
            demo::record_url(&mut prepared, url)?;
            let mut stdout = std::io::stdout().lock();
            demo::write_announcement(&mut stdout, url, &prepared)?;
            stdout.flush()?;
            Ok(())
        })
        .await
    });
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT);
    outcome
}

fn run_loadgen(args: LoadgenArgs) -> anyhow::Result<()> {
    telemetry::init_logs(&LogConfig {
        filter: REPORT_COMMAND_LOG_FILTER.to_owned(),
        format: crate::config::LogFormat::Text,
    })?;
    let options = LoadgenOptions::new(
        args.url,
        match (args.credentials, args.token) {
            (Some(path), _) => loadgen::Credential::DemoFile(path),
            (None, Some(token)) => loadgen::Credential::Token(token),
            (None, None) => anyhow::bail!("give --credentials FILE or --token TOKEN"),
        },
        args.mix,
        args.concurrency,
        args.duration,
        args.warmup,
    )?;
    let runtime = runtime()?;
    let report = runtime.block_on(loadgen::run(options));
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT);
    let report = report?;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        loadgen::write_json(&mut stdout, &report)?;
    } else {
        loadgen::write_text(&mut stdout, &report)?;
    }
    stdout.flush()?;
    if report.total.ok == 0 {
        anyhow::bail!("no request succeeded");
    }
    Ok(())
}

/// Whether a storage command found the data directory consistent.
enum Verdict {
    Consistent,
    ProblemsFound,
}

/// Log level of the storage commands, unless `RUST_LOG` says otherwise: their output is the
/// report on stdout, and per-bucket info lines would bury a rebalance's progress bar.
const STORAGE_COMMAND_LOG_FILTER: &str = "warn";

fn storage(command: StorageCommand) -> anyhow::Result<Verdict> {
    let config = command.source().load()?;
    telemetry::init_logs(&LogConfig {
        filter: STORAGE_COMMAND_LOG_FILTER.to_owned(),
        format: config.log.format,
    })?;
    let mut stdout = std::io::stdout().lock();
    let mut verdict = Verdict::Consistent;
    match command {
        StorageCommand::Status { json, .. } => {
            let status = storage_admin::with_engine(&config, storage_admin::status)?;
            if json {
                storage_admin::write_status_json(&mut stdout, &status)?;
            } else {
                storage_admin::write_status_table(&mut stdout, &status)?;
            }
        }
        StorageCommand::Verify { .. } => {
            let report = storage_admin::verify(&config)?;
            storage_admin::write_integrity_report(&mut stdout, &config.data_dir, &report)?;
            if !report.is_consistent() {
                verdict = Verdict::ProblemsFound;
            }
        }
        StorageCommand::AddShard { count, .. } => {
            let count = storage_admin::shard_count_flag(count)?;
            let added = storage_admin::with_engine(&config, |engine| {
                storage_admin::add_shards(engine, count)
            })?;
            storage_admin::write_added_shards(&mut stdout, &added)?;
        }
        StorageCommand::MoveBucket { bucket, to, .. } => {
            let bucket = storage_admin::bucket_flag(bucket)?;
            let moved = storage_admin::with_engine(&config, |engine| {
                let to = storage_admin::target_shard_flag(engine, to)?;
                Ok(storage_admin::move_bucket(engine, bucket, to)?)
            })?;
            storage_admin::write_move_summary(&mut stdout, &moved)?;
        }
        StorageCommand::Rebalance { dry_run: true, .. } => {
            let plan = storage_admin::with_engine(&config, |engine| {
                Ok(storage_admin::rebalance_plan(engine))
            })?;
            storage_admin::write_rebalance_plan(&mut stdout, &plan)?;
        }
        StorageCommand::Rebalance { dry_run: false, .. } => {
            let summary = storage_admin::with_engine(&config, |engine| {
                let plan = storage_admin::rebalance_plan(engine);
                let bar = storage_admin::rebalance_progress_bar(plan.moves.len());
                let outcome = storage_admin::rebalance(engine, &plan.moves, |moved| {
                    bar.set_message(format!("bucket {} -> {}", moved.bucket, moved.to));
                    bar.inc(1);
                });
                bar.finish_and_clear();
                outcome
            })?;
            storage_admin::write_rebalance_summary(&mut stdout, &summary)?;
        }
    }
    stdout.flush()?;
    Ok(verdict)
}

impl StorageCommand {
    fn source(&self) -> &DataDirArgs {
        match self {
            StorageCommand::Status { source, .. }
            | StorageCommand::Verify { source }
            | StorageCommand::AddShard { source, .. }
            | StorageCommand::MoveBucket { source, .. }
            | StorageCommand::Rebalance { source, .. } => source,
        }
    }
}

/// `mercato reindex --url URL --token TOKEN`: an online rebuild on a running server.
fn reindex_online(args: ReindexArgs, url: String, token: String) -> anyhow::Result<()> {
    telemetry::init_logs(&LogConfig {
        filter: REPORT_COMMAND_LOG_FILTER.to_owned(),
        format: crate::config::LogFormat::Text,
    })?;
    let shard = args
        .shard
        .map(|value| {
            u16::try_from(value)
                .map_err(|_| anyhow::anyhow!("invalid --shard {value}: no such shard"))
        })
        .transpose()?;
    let options = crate::reindex_online::OnlineReindex {
        url: url.trim_end_matches('/').to_owned(),
        token,
        shard,
        timeout: Duration::from_secs(args.timeout_secs),
    };
    let runtime = runtime()?;
    let outcome = runtime.block_on(crate::reindex_online::run(&options));
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT);
    let rebuilt = outcome?;
    let mut stdout = std::io::stdout().lock();
    for shard in &rebuilt {
        writeln!(
            stdout,
            "shard {}: generation {} swapped in ({} documents, lsn {})",
            shard.shard, shard.generation, shard.documents, shard.lsn
        )?;
    }
    stdout.flush()?;
    Ok(())
}

/// `mercato reindex`: rebuilds the chosen shards' search indexes one after the other.
fn reindex(mut args: ReindexArgs) -> anyhow::Result<()> {
    use mercato_engine::search::{RebuildReport, SearchConfig};
    use mercato_engine::{Engine, ShardId};

    if let (Some(url), Some(token)) = (args.url.take(), args.token.take()) {
        return reindex_online(args, url, token);
    }

    let config = args.source.load()?;
    telemetry::init_logs(&LogConfig {
        filter: STORAGE_COMMAND_LOG_FILTER.to_owned(),
        format: config.log.format,
    })?;
    let search_config = SearchConfig {
        refresh_interval: config.search.refresh_interval,
        sales_refresh_interval: config.search.sales_refresh_interval,
        writer_heap_bytes: usize::try_from(config.search.writer_heap_bytes).unwrap_or(usize::MAX),
    };
    let run = |engine: &Engine| -> anyhow::Result<Vec<RebuildReport>> {
        let shards = engine.storage().shard_ids();
        let chosen = match args.shard {
            None => shards,
            Some(value) => {
                let shard = u16::try_from(value)
                    .ok()
                    .map(ShardId)
                    .filter(|shard| shards.contains(shard))
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "invalid --shard {value}: no such shard; the data directory has shards {}",
                            shards
                                .iter()
                                .map(|s| s.0.to_string())
                                .collect::<Vec<_>>()
                                .join(" ")
                        )
                    })?;
                vec![shard]
            }
        };
        let mut reports = Vec::with_capacity(chosen.len());
        for shard in chosen {
            let bar = reindex_progress_bar(shard);
            let report = engine.rebuild_search_index(shard, &search_config, &mut |progress| {
                bar.set_length(progress.tenants_total);
                bar.set_position(progress.tenants_done);
                bar.set_message(format!(
                    "{} products, {} vendors",
                    progress.products_indexed, progress.vendors_indexed
                ));
            });
            bar.finish_and_clear();
            reports.push(report?);
        }
        Ok(reports)
    };
    let reports = storage_admin::with_engine(&config, |engine| Ok(run(engine)))??;
    let mut stdout = std::io::stdout().lock();
    for report in &reports {
        writeln!(
            stdout,
            "shard {}: {} tenants, {} products, {} vendors indexed in {:.1} s (generation {}, lsn {})",
            report.shard.0,
            report.tenants,
            report.products,
            report.vendors,
            report.elapsed.as_secs_f64(),
            report.generation,
            report.lsn
        )?;
    }
    stdout.flush()?;
    Ok(())
}

/// The progress bar of one shard's rebuild: tenants done of the shard's tenants.
fn reindex_progress_bar(shard: mercato_engine::ShardId) -> indicatif::ProgressBar {
    const TEMPLATE: &str =
        "{prefix} {elapsed_precise} [{wide_bar}] {pos}/{len} tenants, eta {eta}  {msg}";
    let bar = indicatif::ProgressBar::new(0);
    // The template is a constant; a parse error could only come from editing it, and then the
    // default style is still a working bar.
    if let Ok(style) = indicatif::ProgressStyle::with_template(TEMPLATE) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(format!("shard {}", shard.0));
    bar
}

/// Errors of an import printed at most (the engine keeps at most `IMPORT_ERRORS_MAX`).
const IMPORT_ERRORS_PRINTED_MAX: usize = 50;

/// `mercato import`: runs the engine's CSV import as the system, offline.
fn import(args: ImportArgs) -> anyhow::Result<()> {
    use mercato_engine::catalog::{ImportMode, ImportPhase};
    use mercato_engine::tables::TenantStatus;
    use mercato_engine::{Actor, TenantId};

    let config = args.source.load()?;
    telemetry::init_logs(&LogConfig {
        filter: STORAGE_COMMAND_LOG_FILTER.to_owned(),
        format: config.log.format,
    })?;
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open --file {}", args.file.display()))?;
    let mode = match args.mode {
        ImportModeArg::File => ImportMode::WholeFile,
        ImportModeArg::Batch => ImportMode::PerBatch,
    };
    let run = |engine: &mercato_engine::Engine| -> anyhow::Result<_> {
        let tenant = engine
            .platform_tenant_by_slug(&args.tenant)?
            .filter(|entry| entry.status == TenantStatus::Active)
            .ok_or_else(|| anyhow::anyhow!("invalid --tenant {}: no such tenant", args.tenant))?;
        let bar = import_progress_bar();
        let report = engine.import_products_csv(
            TenantId(tenant.id),
            Actor::System,
            std::io::BufReader::new(file),
            mode,
            &|progress| {
                let (phase, position) = match progress.phase {
                    ImportPhase::Validating => ("validating", progress.rows_read),
                    ImportPhase::Writing | ImportPhase::Done => ("writing", progress.rows_written),
                };
                // Until the rows to write are known, the bar grows with the rows read.
                bar.set_length(progress.rows_total.unwrap_or(position));
                bar.set_position(position);
                bar.set_message(format!(
                    "{phase}: {} rows read, {} invalid",
                    progress.rows_read, progress.rows_invalid
                ));
            },
        );
        bar.finish_and_clear();
        Ok(report?)
    };
    let report = storage_admin::with_engine(&config, |engine| Ok(run(engine)))??;
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "{} rows read: {} created, {} updated, {} written, {} invalid",
        report.rows_read,
        report.created,
        report.updated,
        report.rows_committed,
        report.rows_invalid
    )?;
    for error in report.errors.iter().take(IMPORT_ERRORS_PRINTED_MAX) {
        match &error.column {
            Some(column) => writeln!(stdout, "line {} ({column}): {}", error.line, error.message)?,
            None => writeln!(stdout, "line {}: {}", error.line, error.message)?,
        }
    }
    if report.errors_truncated || report.errors.len() > IMPORT_ERRORS_PRINTED_MAX {
        writeln!(stdout, "(more errors not shown)")?;
    }
    stdout.flush()?;
    if let Some(reason) = &report.aborted {
        anyhow::bail!("the import stopped before the end: {reason}");
    }
    if report.rows_invalid > 0 || !report.errors.is_empty() {
        anyhow::bail!(
            "{} invalid rows; {}",
            report.rows_invalid,
            match mode {
                ImportMode::WholeFile => "nothing was written",
                ImportMode::PerBatch => "the batches holding them were not written",
            }
        );
    }
    Ok(())
}

/// The progress bar of an import: rows validated, then rows written.
fn import_progress_bar() -> indicatif::ProgressBar {
    const TEMPLATE: &str = "{elapsed_precise} [{wide_bar}] {pos}/{len} rows, eta {eta}  {msg}";
    let bar = indicatif::ProgressBar::new(0);
    // As in `reindex_progress_bar`: the default style still works should the template not.
    if let Ok(style) = indicatif::ProgressStyle::with_template(TEMPLATE) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
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
    let runtime = runtime()?;
    let outcome = runtime.block_on(serve_until_signal(config, |_| Ok(())));
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT);
    outcome
}

/// Serves until SIGTERM or SIGINT. Once the server listens it prints the listening line (the
/// first line on stdout) and then calls `on_listening` with the server's URL.
async fn serve_until_signal(
    config: Config,
    on_listening: impl FnOnce(&str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
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
    // Tests and scripts read this line to learn the bound port; it is the first line on stdout
    // (the only one for `serve`).
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "mercato listening on {}", server.url())?;
    stdout.flush()?;
    drop(stdout);
    if let Err(error) = on_listening(&server.url()) {
        // The server runs already; a failure to announce it is reported, not fatal.
        tracing::warn!(error = %format!("{error:#}"), "could not announce the server");
    }
    server.wait().await?;
    tracing::info!("stopped");
    Ok(())
}
