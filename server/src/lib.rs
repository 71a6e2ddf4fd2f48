//! Mercato's HTTP server and process shell: command line, configuration, TLS, routes,
//! middleware, logs and metrics, graceful shutdown.
//!
//! The `mercato` binary is a thin wrapper: it parses [`cli::Cli`] and calls [`cli::run`].
//! Everything else lives here, in modules with one job each:
//!
//! - [`config`]: layered configuration (embedded `appliance.toml` < `--config` file <
//!   `MERCATO_*` environment < flags), validated into a typed [`config::Config`];
//! - [`launch`]: opens the engine and serves HTTP/1.1 and HTTP/2 (h2 via ALPN over TLS, h2c
//!   with prior knowledge over plain TCP); drains requests on SIGTERM/SIGINT within
//!   `shutdown_grace_ms`, then closes the engine;
//! - [`app`]: shared [`app::AppState`], the router merged from [`routes`], and the middleware
//!   (metrics, body and time limits, problem+json for framework errors);
//! - [`api`]: what every `/v1` handler shares: credentials, error mapping, pagination, ETags,
//!   rate limits;
//! - [`problem`]: the API error type and the table of stable error codes;
//! - [`connection`]: connection admission (`http.connections_max`, first-byte deadline);
//! - [`tls`]: rustls configuration from PEM files or a self-signed certificate;
//! - [`storage_admin`]: the offline `mercato storage ...` commands (status, verify, shards,
//!   bucket moves, rebalance);
//! - [`reindex_online`]: `mercato reindex --url`, an online rebuild of a running server's
//!   search indexes followed with progress bars;
//! - [`telemetry`]: tracing subscriber and Prometheus recorder.
//!
//! Architecture invariant: the engine knows nothing of HTTP; this crate converts between wire
//! types and engine types. Engine calls that may take more than microseconds (scans of many
//! rows, CSV, password hashing, audit queries) run on the blocking thread pool
//! ([`api::blocking`]); point reads of a few microseconds run inline.
//!
//! Serving on a listener bound by the caller (tests bind `127.0.0.1:0`):
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use mercato_server::config::{Config, ConfigSources, FlagOverrides};
//!
//! let flags = FlagOverrides { data_dir: Some("/tmp/mercato-example".into()), ..FlagOverrides::default() };
//! let config = Config::load(&ConfigSources { flags, ..ConfigSources::default() })?;
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = mercato_server::launch::launch_with_listener(config, listener, async move {
//!     let _ = stopped.await;
//! })
//! .await?;
//! println!("serving on {}", server.url());
//! let _ = stop.send(());
//! server.wait().await?;
//! # Ok(()) }
//! ```

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod connection;
pub mod demo;
pub mod launch;
pub mod loadgen;
pub mod problem;
pub mod reindex_online;
pub mod routes;
pub mod storage_admin;
pub mod telemetry;
pub mod tls;
