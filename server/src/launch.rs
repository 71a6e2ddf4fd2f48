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
use mercato_engine::cache::ReadCacheConfig;
use mercato_engine::search::{SearchConfig, SearchError};
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
    /// The search indexes could not be opened (the engine was closed again).
    #[error(transparent)]
    Search(#[from] SearchError),
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
    handle: Handle<SocketAddr>,
    supervisor: JoinHandle<Result<(), ServeError>>,
}

/// Cuts a draining server short. Cloneable; usable after [`RunningServer::wait`] started.
#[derive(Clone)]
pub struct ForceStop {
    handle: Handle<SocketAddr>,
}

impl ForceStop {
    /// Stops serving and closes every connection now, without waiting for requests in flight
    /// (the rest of the grace period); the engine is still shut down cleanly afterwards.
    pub fn close_connections_now(&self) {
        self.handle.shutdown();
    }
}

impl RunningServer {
    /// A handle to cut the drain short (a second Ctrl-C).
    pub fn force_stop(&self) -> ForceStop {
        ForceStop {
            handle: self.handle.clone(),
        }
    }

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
    // Everything that can fail is done before the engine opens, so a failed start never leaves
    // an engine open without a clean shutdown.
    listener
        .set_nonblocking(true)
        .map_err(LaunchError::Listener)?;
    let local_addr = listener.local_addr().map_err(LaunchError::Listener)?;
    let handle: Handle<SocketAddr> = Handle::new();
    let mut server = axum_server::from_tcp(listener)
        .map_err(LaunchError::Listener)?
        .handle(handle.clone());

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
    let read_cache = ReadCacheConfig {
        bytes_max: config.storage.read_cache_bytes_max,
    };
    let search_config = SearchConfig {
        refresh_interval: config.search.refresh_interval,
        sales_refresh_interval: config.search.sales_refresh_interval,
        writer_heap_bytes: usize::try_from(config.search.writer_heap_bytes).unwrap_or(usize::MAX),
    };
    let verification_config = verification_config(&config.verification);
    let engine = Arc::new(
        tokio::task::spawn_blocking(move || -> Result<Engine, LaunchError> {
            let engine = Engine::open_with_read_cache(engine_config, read_cache)?;
            if let Err(error) = engine.start_search(search_config) {
                if let Err(closing) = engine.shutdown() {
                    tracing::error!(error = %ErrorChain(&closing), "storage did not close cleanly");
                }
                return Err(error.into());
            }
            if let Err(error) = engine.start_verification(verification_config) {
                if let Err(closing) = engine.shutdown() {
                    tracing::error!(error = %ErrorChain(&closing), "storage did not close cleanly");
                }
                return Err(error.into());
            }
            Ok(engine)
        })
        .await??,
    );
    tracing::info!(data_dir = %config.data_dir.display(), "storage opened");

    let state = AppState::new(engine.clone(), metrics.clone());
    let app = app::router(state.clone(), &config.http);
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

    let force_handle = handle.clone();
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
        handle: force_handle,
        supervisor,
    })
}

/// The router as a service per connection that records the peer address
/// (`ConnectInfo<SocketAddr>`), which the rate limiter and the login guard key anonymous
/// clients by.
fn into_make_service(
    app: Router,
) -> axum::extract::connect_info::IntoMakeServiceWithConnectInfo<Router, SocketAddr> {
    app.into_make_service_with_connect_info::<SocketAddr>()
}

/// SIGTERM and SIGINT (Ctrl-C), listened to from the moment [`ShutdownSignals::install`] is
/// called: a signal arriving while the engine is still opening is kept, not lost to the
/// default action that would kill the process.
pub struct ShutdownSignals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    /// Installs the handlers. Must be called inside the Tokio runtime.
    pub fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(ShutdownSignals {
                terminate: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(ShutdownSignals {})
    }

    /// Waits for the next signal and returns its name.
    pub async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.terminate.recv() => "SIGTERM",
                _ = self.interrupt.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            "Ctrl-C"
        }
    }
}

/// The engine's verification settings from the server's `[verification]` section.
fn verification_config(
    config: &crate::config::VerificationConfig,
) -> mercato_engine::verification::service::VerificationConfig {
    use mercato_engine::verification::extract::{ExtractConfig, OcrMode};
    let defaults = mercato_engine::verification::service::VerificationConfig::default();
    let workers = match config.workers {
        0 => mercato_engine::jobs::workers_per_core(),
        n => n as usize,
    };
    mercato_engine::verification::service::VerificationConfig {
        queue: mercato_engine::jobs::QueueConfig {
            workers,
            lease: config.lease,
            attempts_max: config.attempts_max,
            backlog_max: usize::try_from(config.backlog_max).unwrap_or(usize::MAX),
            job_time_budget: config.job_time_budget,
            ..defaults.queue
        },
        extract: ExtractConfig {
            ocr: if config.ocr {
                OcrMode::Auto
            } else {
                OcrMode::Off
            },
            ocr_timeout: config.ocr_timeout,
            pdf_inflated_bytes_max: usize::try_from(config.job_memory_bytes_max)
                .unwrap_or(usize::MAX),
            ..ExtractConfig::default()
        },
        upload_bytes_max: config.upload_bytes_max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_verification_workers_means_one_per_core() {
        let config = crate::config::Config::load(&crate::config::ConfigSources::default())
            .expect("the defaults load");
        assert_eq!(
            config.verification.workers, 0,
            "the default is 0: one per core"
        );
        let cores = std::thread::available_parallelism()
            .expect("the test machine reports its cores")
            .get();
        assert_eq!(
            verification_config(&config.verification).queue.workers,
            cores
        );
        let three = crate::config::VerificationConfig {
            workers: 3,
            ..config.verification.clone()
        };
        assert_eq!(verification_config(&three).queue.workers, 3);
    }
    use crate::config::{ConfigSources, FlagOverrides};
    use std::path::Path;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;

    fn config(data_dir: &Path, adjust: impl FnOnce(&mut Config)) -> Config {
        let flags = FlagOverrides {
            data_dir: Some(data_dir.to_owned()),
            ..FlagOverrides::default()
        };
        let mut config = Config::load(&ConfigSources {
            flags,
            ..ConfigSources::default()
        })
        .expect("config");
        adjust(&mut config);
        config
    }

    async fn start(config: Config) -> (RunningServer, oneshot::Sender<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = launch_with_listener(config, listener, async move {
            let _ = stopped.await;
        })
        .await
        .expect("launch");
        (server, stop)
    }

    /// One HTTP/1.1 request on a fresh connection; the whole response as text.
    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        response
    }

    /// Whether the server closes `stream` (EOF or reset) within `within`.
    async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
        let mut buffer = [0u8; 64];
        match tokio::time::timeout(within, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(_)) | Err(_) => false,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serves_then_stops_and_releases_the_data_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (server, stop) = start(config(dir.path(), |_| {})).await;
        assert!(server.url().starts_with("http://127.0.0.1:"));
        let response = get(server.local_addr(), "/readyz").await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");

        stop.send(()).expect("server running");
        tokio::time::timeout(Duration::from_secs(30), server.wait())
            .await
            .expect("stops in time")
            .expect("clean stop");

        // The engine was shut down: the same data directory opens again.
        let (server, stop) = start(config(dir.path(), |_| {})).await;
        assert!(get(server.local_addr(), "/healthz").await.ends_with("ok"));
        stop.send(()).expect("server running");
        server.wait().await.expect("clean stop");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_is_bounded_by_the_grace_period_with_connections_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (server, stop) = start(config(dir.path(), |config| {
            config.shutdown_grace = Duration::from_millis(300);
            config.http.header_read_timeout = Duration::from_secs(60);
        }))
        .await;
        // A connection in the middle of sending its request headers.
        let mut idle = TcpStream::connect(server.local_addr())
            .await
            .expect("connect");
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: te")
            .await
            .expect("send");
        tokio::time::sleep(Duration::from_millis(100)).await;

        let started = std::time::Instant::now();
        stop.send(()).expect("server running");
        tokio::time::timeout(Duration::from_secs(10), server.wait())
            .await
            .expect("stops in time")
            .expect("clean stop");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "shutdown took {:?}",
            started.elapsed()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn silent_connections_are_closed_after_the_header_read_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (server, stop) = start(config(dir.path(), |config| {
            config.http.header_read_timeout = Duration::from_millis(300);
        }))
        .await;
        // Regression: protocol detection waited forever for the first bytes of a connection.
        let mut silent = TcpStream::connect(server.local_addr())
            .await
            .expect("connect");
        assert!(
            closed_by_server(&mut silent, Duration::from_secs(5)).await,
            "silent connection kept open"
        );
        stop.send(()).expect("server running");
        server.wait().await.expect("clean stop");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_beyond_the_limit_are_closed_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (server, stop) = start(config(dir.path(), |config| {
            config.http.connections_max = 1;
            config.http.header_read_timeout = Duration::from_secs(60);
        }))
        .await;
        let addr = server.local_addr();
        let holder = TcpStream::connect(addr).await.expect("connect");
        tokio::time::sleep(Duration::from_millis(200)).await;

        let mut refused = TcpStream::connect(addr).await.expect("connect");
        assert!(
            closed_by_server(&mut refused, Duration::from_secs(5)).await,
            "second connection was admitted"
        );

        // Once the first connection goes, a new one is served.
        drop(holder);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let response = get(addr, "/healthz").await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
        stop.send(()).expect("server running");
        server.wait().await.expect("clean stop");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readiness_fails_during_shutdown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Arc::new(
            Engine::open(EngineConfig {
                data_dir: dir.path().to_owned(),
                shards_initial: 2,
                commit_batch_count_max: 16,
                commit_batch_bytes_max: 1 << 20,
                pending_commands_max: 16,
            })
            .expect("open"),
        );
        let state = AppState::new(
            engine.clone(),
            telemetry::metrics_handle().expect("metrics"),
        );
        let app = app::router(state.clone(), &config(dir.path(), |_| {}).http);
        let request = || {
            axum::http::Request::get("/readyz")
                .body(axum::body::Body::empty())
                .expect("request")
        };
        use tower::ServiceExt;
        let response = app.clone().oneshot(request()).await.expect("infallible");
        assert_eq!(response.status(), axum::http::StatusCode::OK);
        state.lifecycle.begin_shutdown();
        let response = app.oneshot(request()).await.expect("infallible");
        assert_eq!(
            response.status(),
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        );
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .expect("body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(body["code"], "shutting_down");
        engine.shutdown().expect("engine shutdown");
    }
}
