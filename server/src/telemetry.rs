//! Logs (tracing) and metrics (Prometheus) set-up.
//!
//! The metrics recorder is process-global: it is installed once, before the engine opens, so
//! the storage layer's metrics (`mercato_commit_*`, `mercato_changelog_entries`,
//! `mercato_shards_open`) and the HTTP metrics end up in the same registry.

use crate::config::{LogConfig, LogFormat};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

/// Histogram buckets, in seconds, of every metric whose name ends in `_seconds`:
/// 100µs to 10s, roughly ×2.5 apart.
pub const SECONDS_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Histogram buckets of `mercato_commit_batch_size` (commands per group commit): powers of two
/// up to the 4096 a busy shard reaches.
pub const BATCH_SIZE_BUCKETS: [f64; 13] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

/// How often histograms are drained into their buckets when nobody scrapes.
pub const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Name of the HTTP request counter.
pub const HTTP_REQUESTS_TOTAL: &str = "mercato_http_requests_total";
/// Name of the HTTP request latency histogram.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "mercato_http_request_duration_seconds";

static METRICS: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot install the metrics recorder: {0}")]
    Metrics(String),
    #[error("cannot install the log subscriber: {0}")]
    Logs(String),
    #[error("invalid log filter {0}")]
    LogFilter(String),
}

/// Installs the process-wide Prometheus recorder on first call and returns its handle; later
/// calls return the same handle (several servers in one test process share one registry).
pub fn metrics_handle() -> Result<PrometheusHandle, TelemetryError> {
    METRICS
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &SECONDS_BUCKETS)
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        Matcher::Full("mercato_commit_batch_size".to_owned()),
                        &BATCH_SIZE_BUCKETS,
                    )
                })
                .map_err(|error| error.to_string())?;
            let handle = builder
                .install_recorder()
                .map_err(|error| error.to_string())?;
            describe_metrics();
            Ok(handle)
        })
        .clone()
        .map_err(TelemetryError::Metrics)
}

fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS_TOTAL,
        "HTTP requests answered, by route template, method and status."
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Time from receiving a request to producing its response headers."
    );
    describe_histogram!(
        "mercato_commit_batch_size",
        "Commands applied per group commit, by shard."
    );
    describe_histogram!(
        "mercato_commit_seconds",
        Unit::Seconds,
        "Duration of one durable group commit, by shard."
    );
    describe_gauge!(
        "mercato_changelog_entries",
        "Entries currently kept in a shard's change log."
    );
    describe_gauge!("mercato_shards_open", "Shards currently open.");
    describe_gauge!(
        crate::connection::CONNECTIONS_OPEN,
        "HTTP connections currently open."
    );
    describe_counter!(
        crate::connection::CONNECTIONS_REFUSED_TOTAL,
        "HTTP connections closed at once because http.connections_max were open."
    );
    describe_gauge!(
        "mercato_build_info",
        "Always 1; the labels describe the running build."
    );
    metrics::gauge!("mercato_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// Drains histogram samples into buckets periodically, so memory stays bounded even when
/// `/metrics` is never scraped. Runs until the runtime shuts down.
pub fn spawn_metrics_upkeep(handle: PrometheusHandle) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(METRICS_UPKEEP_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            handle.run_upkeep();
        }
    })
}

/// Installs the global log subscriber, writing to stderr (stdout carries only the
/// "listening on" line). `RUST_LOG`, when set, replaces `log.level`.
pub fn init_logs(config: &LogConfig) -> Result<(), TelemetryError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => {
            EnvFilter::builder().parse(&directives).map_err(|error| {
                TelemetryError::LogFilter(format!("`{directives}` in RUST_LOG: {error}"))
            })?
        }
        _ => EnvFilter::builder()
            .parse(&config.filter)
            .map_err(|error| TelemetryError::LogFilter(format!("`{}`: {error}", config.filter)))?,
    };
    // Colours only for a terminal: journald and log files get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    result.map_err(|error| TelemetryError::Logs(error.to_string()))
}
