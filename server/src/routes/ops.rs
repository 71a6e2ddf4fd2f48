//! Operations endpoints: `/healthz` (the process is up), `/readyz` (storage takes durable
//! writes), `/metrics` (Prometheus text format).

use crate::app::AppState;
use crate::problem::{ApiError, ErrorChain, ErrorCode};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Content type of the Prometheus text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Longest a readiness check may take before `/readyz` reports not ready.
pub const READINESS_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a readiness result is reused. Each check is a durable write through every shard,
/// so probes arriving together share one check instead of each doing its own.
pub const READINESS_CACHE_TTL: Duration = Duration::from_secs(1);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> &'static str {
    "ok"
}

/// The last readiness result; the lock also makes concurrent probes wait for one check.
#[derive(Default)]
pub struct ReadinessCache {
    last: Mutex<Option<(Instant, Result<(), String>)>>,
}

async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    if state.lifecycle.is_shutting_down() {
        return Err(ApiError::new(
            ErrorCode::ShuttingDown,
            "the server is shutting down",
        ));
    }
    let mut last = state.readiness.last.lock().await;
    let outcome = match &*last {
        Some((checked_at, outcome)) if checked_at.elapsed() < READINESS_CACHE_TTL => {
            outcome.clone()
        }
        _ => {
            let outcome = check_writable(&state).await;
            *last = Some((Instant::now(), outcome.clone()));
            outcome
        }
    };
    drop(last);
    outcome
        .map(|()| "ready")
        .map_err(|reason| ApiError::new(ErrorCode::NotReady, reason))
}

/// Runs the engine's durable write check off the async runtime, bounded in time. The error
/// is a client-safe reason; the cause goes to the log.
async fn check_writable(state: &AppState) -> Result<(), String> {
    let engine = state.engine.clone();
    let check = tokio::task::spawn_blocking(move || engine.check_writable());
    match tokio::time::timeout(READINESS_CHECK_TIMEOUT, check).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(error))) => {
            tracing::warn!(error = %ErrorChain(&error), "readiness check failed");
            Err("storage cannot take durable writes; the cause is in the server log".to_owned())
        }
        Ok(Err(join_error)) => {
            tracing::error!(error = %join_error, "readiness check panicked");
            Err(
                "the readiness check failed unexpectedly; the cause is in the server log"
                    .to_owned(),
            )
        }
        Err(_elapsed) => {
            tracing::warn!(
                timeout_ms = READINESS_CHECK_TIMEOUT.as_millis() as u64,
                "readiness check timed out"
            );
            Err(format!(
                "storage did not complete a durable write within {} ms",
                READINESS_CHECK_TIMEOUT.as_millis()
            ))
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROMETHEUS_CONTENT_TYPE),
    );
    response
}
