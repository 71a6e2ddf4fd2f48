//! Starting and stopping the server: open the engine, serve HTTP(S) on a listener, and on the
//! shutdown signal drain requests for a bounded time, then close the engine.

use crate::app::{self, AppState};
use crate::config::{Config, TlsMode};
use crate::connection::ConnectionGuard;
use crate::problem::ErrorChain;
use crate::telemetry::{self, TelemetryError};
use crate::tls::{self, TlsError};
use axum::Router;
use axum_server::Handle;
use axum_server::accept::DefaultAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use hyper_util::rt::TokioTimer;
use mercato_engine::{Engine, EngineConfig, EngineError};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Concurrent requests (streams) on one HTTP/2 connection.
pub const HTTP2_STREAMS_PER_CONNECTION_MAX: u32 = 128;

/// Interval of HTTP/2 PING frames that detect dead peers, and how long to wait for the answer.
pub const HTTP2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
pub const HTTP2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Longest a TLS handshake may take.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Telemetry(#[from] TelemetryError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The engine refused to open the data directory (in use, corrupt, unreadable...).
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot use the listening socket: {0}")]
    Listener(std::io::Error),
    #[error("a start-up task failed unexpectedly")]
    Task(#[from] tokio::task::JoinError),
}

/// Why a running server ended with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the HTTP server failed: {0}")]
    Http(std::io::Error),
    #[error("the storage did not shut down cleanly: {0}")]
    EngineShutdown(EngineError),
    #[error("a server task failed unexpectedly")]
    Task(#[from] tokio::task::JoinError),
}

/// A server that is accepting connections.
pub struct RunningServer {
    local_addr: SocketAddr,
    tls: bool,
    supervisor: JoinHandle<Result<(), ServeError>>,
}

impl RunningServer {
    /// The address actually bound (the real port when the configuration said port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://ADDR` or `https://ADDR`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// Waits until the shutdown future resolved, requests drained (at most the grace period)
    /// and the engine closed.
    pub async fn wait(self) -> Result<(), ServeError> {
        self.supervisor.await?
    }
}

/// Opens the engine and serves the application on `listener` until `shutdown` resolves.
///
/// Returns once the server accepts connections. Must run inside a multi-threaded Tokio runtime.
/// The Prometheus recorder is installed (once per process) before the engine opens, so the
/// storage layer's metrics are recorded from the start.
pub async fn launch_with_listener<F>(
    config: Config,
    listener: std::net::TcpListener,
    shutdown: F,
) -> Result<RunningServer, LaunchError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let metrics = telemetry::metrics_handle()?;

    let tls_mode = config.tls.clone();
    if tls_mode == TlsMode::SelfSigned {
        tracing::warn!(
            names = ?tls::SELF_SIGNED_NAMES,
            "serving HTTPS with a self-signed certificate generated at start: for development only"
        );
    }
    let tls_config = tokio::task::spawn_blocking(move || tls::server_config(&tls_mode)).await??;

    let engine_config = EngineConfig {
        data_dir: config.data_dir.clone(),
        shards_initial: config.storage.shards_initial,
        commit_batch_count_max: config.storage.commit_batch_count_max,
        commit_batch_bytes_max: config.storage.commit_batch_bytes_max,
        pending_commands_max: config.storage.pending_commands_max,
    };
    let engine = Arc::new(tokio::task::spawn_blocking(move || Engine::open(engine_config)).await??);
    tracing::info!(data_dir = %config.data_dir.display(), "storage opened");

    listener
        .set_nonblocking(true)
        .map_err(LaunchError::Listener)?;
    let local_addr = listener.local_addr().map_err(LaunchError::Listener)?;
    let state = AppState::new(engine.clone(), metrics.clone());
    let app = app::router(state.clone(), &config.http);
    let handle: Handle<SocketAddr> = Handle::new();
    let mut server = axum_server::from_tcp(listener)
        .map_err(LaunchError::Listener)?
        .handle(handle.clone());
    server
        .http_builder()
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.http.header_read_timeout);
    server
        .http_builder()
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(HTTP2_STREAMS_PER_CONNECTION_MAX)
        .keep_alive_interval(HTTP2_KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(HTTP2_KEEP_ALIVE_TIMEOUT);

    let connections_max = config.http.connections_max;
    let first_bytes_timeout = config.http.header_read_timeout;
    let is_tls = tls_config.is_some();
    let serving: JoinHandle<std::io::Result<()>> = match tls_config {
        None => {
            let acceptor =
                ConnectionGuard::new(DefaultAcceptor::new(), connections_max, first_bytes_timeout);
            tokio::spawn(server.acceptor(acceptor).serve(into_make_service(app)))
        }
        Some(tls_config) => {
            let rustls = RustlsAcceptor::new(RustlsConfig::from_config(tls_config))
                .handshake_timeout(TLS_HANDSHAKE_TIMEOUT);
            let acceptor = ConnectionGuard::new(rustls, connections_max, first_bytes_timeout);
            tokio::spawn(server.acceptor(acceptor).serve(into_make_service(app)))
        }
    };
    let upkeep = telemetry::spawn_metrics_upkeep(metrics);
    let grace = config.shutdown_grace;

    let supervisor = tokio::spawn(async move {
        let mut serving = serving;
        let served_until_signal = tokio::select! {
            () = shutdown => None,
            result = &mut serving => Some(result),
        };
        let served = match served_until_signal {
            Some(result) => {
                tracing::error!("the HTTP server stopped on its own");
                result
            }
            None => {
                tracing::info!(
                    grace_ms = grace.as_millis() as u64,
                    "shutting down: draining requests in flight"
                );
                state.lifecycle.begin_shutdown();
                let drain_started = std::time::Instant::now();
                handle.graceful_shutdown(Some(grace));
                let served = serving.await;
                tracing::info!(
                    drain_ms = drain_started.elapsed().as_millis() as u64,
                    "HTTP server stopped"
                );
                served
            }
        };
        upkeep.abort();
        let closed = tokio::task::spawn_blocking(move || engine.shutdown()).await;
        match &closed {
            Ok(Ok(())) => tracing::info!("storage closed"),
            Ok(Err(error)) => {
                tracing::error!(error = %ErrorChain(error), "storage did not close cleanly")
            }
            Err(error) => tracing::error!(%error, "storage shutdown task failed"),
        }
        served?.map_err(ServeError::Http)?;
        closed?.map_err(ServeError::EngineShutdown)
    });

    Ok(RunningServer {
        local_addr,
        tls: is_tls,
        supervisor,
    })
}

fn into_make_service(app: Router) -> axum::routing::IntoMakeService<Router> {
    app.into_make_service()
}

/// Resolves on the first SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut terminate), Ok(mut interrupt)) => {
                tokio::select! {
                    _ = terminate.recv() => tracing::info!("received SIGTERM"),
                    _ = interrupt.recv() => tracing::info!("received SIGINT"),
                }
            }
            (Err(error), _) | (_, Err(error)) => {
                tracing::error!(%error, "cannot listen for shutdown signals; falling back to Ctrl-C only");
                ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    ctrl_c().await;
}

async fn ctrl_c() {
    if let Err(error) = tokio::signal::ctrl_c().await {
        tracing::error!(%error, "cannot listen for Ctrl-C; the server will only stop when killed");
        std::future::pending::<()>().await;
    }
}
