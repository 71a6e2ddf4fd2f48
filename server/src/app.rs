//! The HTTP application: shared state, the router assembled from every resource module, and
//! the middleware every request passes through.
//!
//! Middleware order, outermost first:
//! 1. response compression (`CompressionLayer`, when the client accepts it);
//! 2. [`record_request`]: the `mercato_http_*` metrics and the debug request log;
//! 3. [`problem_for_bare_errors`]: error responses produced by the framework (a rejected
//!    extractor, a wrong method) become problem+json like our own;
//! 4. the body limit for extractors (`DefaultBodyLimit`);
//! 5. [`enforce_limits`]: refuses a declared oversized body up front, and bounds the time to
//!    produce a response;
//! 6. on `/v1` routes only, the per-credential rate limiter (absent when limiting is off).
//!
//! The stack is applied with one `Router::layer` call. Each call wraps every route in a boxed
//! service that is cloned (and its future boxed) on every request, and a `from_fn` middleware
//! clones everything below it: one call per middleware cost ~50 allocations per request.

use crate::api::ratelimit::{self, RateLimits};
use crate::config::HttpConfig;
use crate::problem::{ApiError, ErrorCode, is_problem, problem_response};
use crate::routes;
use crate::telemetry::{HTTP_REQUEST_DURATION_SECONDS, HTTP_REQUESTS_TOTAL};
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use mercato_engine::Engine;
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::PrometheusHandle;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use utoipa_axum::router::OpenApiRouter;

/// Route label of requests that matched no route; the raw path is never a label, so the
/// metrics' cardinality stays bounded whatever clients send.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Bytes of a framework error body kept as the problem's `detail`.
pub const BARE_ERROR_DETAIL_BYTES_MAX: usize = 1024;

/// Request metric series (route, method, status) whose handles [`record_request`] keeps;
/// past it, new series are recorded through the registry each time (slower, still correct).
pub const REQUEST_METRIC_SERIES_MAX: usize = 4096;

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub metrics: PrometheusHandle,
    pub lifecycle: Arc<Lifecycle>,
    pub readiness: Arc<routes::ops::ReadinessCache>,
}

impl AppState {
    pub fn new(engine: Arc<Engine>, metrics: PrometheusHandle) -> Self {
        AppState {
            engine,
            metrics,
            lifecycle: Arc::new(Lifecycle::default()),
            readiness: Arc::new(routes::ops::ReadinessCache::default()),
        }
    }
}

/// Process lifecycle as handlers see it.
#[derive(Debug, Default)]
pub struct Lifecycle {
    shutting_down: AtomicBool,
}

impl Lifecycle {
    /// From now on `/readyz` answers 503 so that load balancers stop sending traffic while
    /// requests in flight drain.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}

/// Limits applied by [`enforce_limits`].
#[derive(Clone, Copy, Debug)]
struct RequestLimits {
    body_bytes_max: usize,
    /// Of document uploads: the engine's upload bound plus multipart framing.
    document_body_bytes_max: usize,
    timeout: Duration,
}

/// Every `/v1` route with its OpenAPI entry: each resource module's router, merged here and
/// only here.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(routes::accounts::router())
        .merge(routes::admin::router())
        .merge(routes::parties::router())
        .merge(routes::catalog::router())
        .merge(routes::orders::router())
        .merge(routes::inventory::router())
        .merge(routes::search::router())
        .merge(routes::verification::router())
}

/// The OpenAPI document of [`api_routes`], as `/openapi.json` serves it.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    routes::docs::finish_document(api_routes().into_openapi())
}

/// The complete application: the API (behind the per-credential rate limiter), its
/// documentation and the operations endpoints.
pub fn router(state: AppState, http: &HttpConfig) -> Router {
    let (api, doc) = api_routes().split_for_parts();
    let doc = routes::docs::finish_document(doc);
    let limits = RateLimits::new(http.rate_limit_per_second, http.rate_limit_burst);
    let api = if limits.is_on() {
        api.layer(middleware::from_fn_with_state(limits, ratelimit::limit))
    } else {
        api
    };
    let routes = Router::new()
        .merge(api)
        .merge(routes::docs::router(&doc))
        .merge(routes::ops::router());
    let upload_bytes_max = state.engine.upload_bytes_max();
    with_middleware(routes, http, upload_bytes_max).with_state(state)
}

/// Adds the 404 fallback and the middleware stack (see the module documentation) to `routes`.
fn with_middleware<S: Clone + Send + Sync + 'static>(
    routes: Router<S>,
    http: &HttpConfig,
    upload_bytes_max: u64,
) -> Router<S> {
    let limits = RequestLimits {
        body_bytes_max: http.request_body_bytes_max,
        document_body_bytes_max: usize::try_from(upload_bytes_max)
            .unwrap_or(usize::MAX)
            .saturating_add(routes::verification::MULTIPART_OVERHEAD_BYTES),
        timeout: http.request_timeout,
    };
    let stack = ServiceBuilder::new()
        .layer(CompressionLayer::new())
        .layer(middleware::from_fn_with_state(
            Arc::new(RequestMetrics::default()),
            record_request,
        ))
        .layer(middleware::from_fn(problem_for_bare_errors))
        .layer(DefaultBodyLimit::max(http.request_body_bytes_max))
        .layer(middleware::from_fn_with_state(limits, enforce_limits));
    routes.fallback(not_found).layer(stack)
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no route for {method} {}", uri.path()),
    )
}

/// The method as a metric label, from a fixed set.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The request metrics' handles by series, so that recording a request is a map lookup rather
/// than building a label set and finding it in the registry (which allocates) every time.
#[derive(Default)]
struct RequestMetrics {
    /// Route template -> the series of that route seen so far, by method and status.
    by_route: RwLock<HashMap<String, Vec<RequestSeries>>>,
    series: AtomicUsize,
}

struct RequestSeries {
    method: &'static str,
    status: u16,
    requests: Counter,
    duration: Histogram,
}

impl RequestMetrics {
    fn record(&self, route: &str, method: &'static str, status: u16, seconds: f64) {
        if let Ok(by_route) = self.by_route.read()
            && let Some(series) = by_route.get(route).and_then(|all| {
                all.iter()
                    .find(|s| s.method == method && s.status == status)
            })
        {
            series.requests.increment(1);
            series.duration.record(seconds);
            return;
        }
        let labels = [
            ("route", route.to_owned()),
            ("method", method.to_owned()),
            ("status", status.to_string()),
        ];
        let series = RequestSeries {
            method,
            status,
            requests: metrics::counter!(HTTP_REQUESTS_TOTAL, &labels),
            duration: metrics::histogram!(HTTP_REQUEST_DURATION_SECONDS, &labels),
        };
        series.requests.increment(1);
        series.duration.record(seconds);
        if self.series.load(Ordering::Relaxed) >= REQUEST_METRIC_SERIES_MAX {
            return;
        }
        if let Ok(mut by_route) = self.by_route.write() {
            let all = by_route.entry(route.to_owned()).or_default();
            // Another request may have added it between the two locks.
            if !all.iter().any(|s| s.method == method && s.status == status) {
                all.push(series);
                self.series.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Records `mercato_http_requests_total` and `mercato_http_request_duration_seconds`, labelled
/// by route template (never the raw path), method and status, and logs the request at debug.
async fn record_request(
    State(metrics): State<Arc<RequestMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
    let method = method_label(request.method());
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    tracing::debug!(
        route,
        method,
        status,
        latency_ms = elapsed.as_secs_f64() * 1e3,
        "request"
    );
    metrics.record(route, method, status, elapsed.as_secs_f64());
    response
}

/// Refuses a body whose declared length exceeds the limit before reading any of it, and bounds
/// the time a request may take. Bodies without a declared length are bounded by
/// `DefaultBodyLimit` when an extractor reads them.
async fn enforce_limits(
    State(limits): State<RequestLimits>,
    request: Request,
    next: Next,
) -> Response {
    let declared_length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    // The CSV import route carries whole files; its own, larger bound applies to it.
    let body_bytes_max = if request.uri().path() == routes::catalog::IMPORT_PATH {
        limits
            .body_bytes_max
            .max(routes::catalog::IMPORT_BODY_BYTES_MAX)
    } else if routes::verification::is_upload_path(request.uri().path()) {
        limits.body_bytes_max.max(limits.document_body_bytes_max)
    } else {
        limits.body_bytes_max
    };
    if let Some(length) = declared_length
        && length > body_bytes_max as u64
    {
        return ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the request body is {length} bytes; at most {body_bytes_max} are accepted"),
        )
        .into_response();
    }
    match tokio::time::timeout(limits.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_elapsed) => ApiError::new(
            ErrorCode::RequestTimeout,
            format!(
                "the request did not complete within {} ms",
                limits.timeout.as_millis()
            ),
        )
        .into_response(),
    }
}

/// Turns an error response that is not already problem+json (axum's extractor rejections,
/// 405 from the method router) into one, keeping its other headers (such as `Allow`) and its
/// short text as the detail.
async fn problem_for_bare_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_problem(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let is_text = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/plain"));
    let detail = match axum::body::to_bytes(body, BARE_ERROR_DETAIL_BYTES_MAX).await {
        Ok(bytes) if is_text && !bytes.is_empty() => String::from_utf8_lossy(&bytes).into_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let mut problem = match json_body_field(status, &detail) {
        Some((field, reason)) => ApiError::invalid_field(field, reason).into_response(),
        None => problem_response(ErrorCode::for_status(status), detail),
    };
    *problem.status_mut() = status;
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    let (problem_parts, problem_body) = problem.into_parts();
    parts.headers.extend(problem_parts.headers);
    Response::from_parts(parts, Body::new(problem_body))
}

/// The field a JSON body failed on, from axum's 422 text
/// ("Failed to deserialize the JSON body into the target type: lines[0].quantity: invalid type: ..."),
/// with the reason. `None` for other errors. A missing or unknown field at the top level has no
/// path, so the field is taken from serde's message ("missing field `email`").
fn json_body_field(status: StatusCode, detail: &str) -> Option<(String, String)> {
    if status != StatusCode::UNPROCESSABLE_ENTITY {
        return None;
    }
    let rest = detail.strip_prefix("Failed to deserialize the JSON body into the target type: ")?;
    let named = |reason: &str| {
        ["missing field `", "unknown field `", "duplicate field `"]
            .iter()
            .find_map(|prefix| reason.strip_prefix(prefix))
            .and_then(|tail| tail.split('`').next())
            .map(str::to_owned)
    };
    match rest.split_once(": ") {
        Some((path, reason)) if !path.is_empty() && !path.contains(' ') && path != "." => {
            // serde_path_to_error's path ends at the unknown field itself, but at the parent
            // of a missing one.
            let field = match named(reason) {
                Some(inner) if reason.starts_with("missing field") => format!("{path}.{inner}"),
                _ => path.to_owned(),
            };
            Some((field, reason.to_owned()))
        }
        _ => Some((
            named(rest).unwrap_or_else(|| "body".to_owned()),
            rest.to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigSources};
    use axum::body::Bytes;
    use axum::routing::post;
    use tower::ServiceExt;

    /// A router with the production middleware around test-only routes, so the layers can be
    /// exercised on routes that read bodies and run slowly before the API has such routes.
    fn layered(routes: Router, http: &HttpConfig) -> Router {
        with_middleware(routes, http, 1 << 20)
    }

    fn http_config() -> HttpConfig {
        let mut http = Config::load(&ConfigSources::default())
            .expect("defaults")
            .http;
        http.request_body_bytes_max = 1024;
        http.request_timeout = Duration::from_millis(200);
        http
    }

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        serde_json::from_slice(&bytes).expect("problem body is JSON")
    }

    fn echo_len() -> Router {
        Router::new().route(
            "/echo",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
    }

    #[tokio::test]
    async fn declared_oversized_body_is_refused_with_413_problem() {
        let app = layered(echo_len(), &http_config());
        let request = Request::post("/echo")
            .header(header::CONTENT_LENGTH, "2048")
            .body(Body::from(vec![0u8; 2048]))
            .expect("request");
        let response = app.oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(is_problem(&response));
        let body = body_json(response).await;
        assert_eq!(body["code"], "payload_too_large");
        assert_eq!(body["status"], 413);
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|detail| detail.contains("2048")),
            "{body}"
        );
    }

    #[tokio::test]
    async fn undeclared_oversized_body_is_refused_with_413_problem() {
        let app = layered(echo_len(), &http_config());
        // No Content-Length (as with a chunked upload): only the extractor's limit can catch it,
        // and its plain-text rejection must still come out as problem+json.
        let request = Request::post("/echo")
            .body(Body::from(vec![1u8; 1400]))
            .expect("request");
        assert!(request.headers().get(header::CONTENT_LENGTH).is_none());
        let response = app.oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(is_problem(&response));
        assert_eq!(body_json(response).await["code"], "payload_too_large");
    }

    #[tokio::test]
    async fn body_within_limit_is_accepted() {
        let app = layered(echo_len(), &http_config());
        let request = Request::post("/echo")
            .body(Body::from(vec![0u8; 1024]))
            .expect("request");
        let response = app.oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(response.into_body(), 64)
            .await
            .expect("body");
        assert_eq!(&bytes[..], b"1024");
    }

    #[tokio::test]
    async fn slow_request_times_out_with_503_problem() {
        let slow = Router::new().route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
        let app = layered(slow, &http_config());
        let started = Instant::now();
        let response = app
            .oneshot(Request::post("/slow").body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "timeout did not cut the request short"
        );
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body_json(response).await["code"], "request_timeout");
    }

    #[tokio::test]
    async fn wrong_method_is_405_problem_keeping_allow_header() {
        let app = layered(echo_len(), &http_config());
        let response = app
            .oneshot(Request::get("/echo").body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(is_problem(&response));
        assert!(
            response.headers().get(header::ALLOW).is_some(),
            "Allow header lost"
        );
        assert_eq!(body_json(response).await["code"], "method_not_allowed");
    }

    #[test]
    fn json_body_errors_name_their_field() {
        let prefix = "Failed to deserialize the JSON body into the target type: ";
        let cases = [
            (
                "lines[0].quantity: invalid type: string \"x\", expected u32 at line 1 column 30",
                "lines[0].quantity",
            ),
            ("missing field `email` at line 1 column 2", "email"),
            (
                "unknown field `colour`, expected one of `name` at line 1 column 9",
                "colour",
            ),
            (
                "addresses[1]: missing field `city` at line 1 column 80",
                "addresses[1].city",
            ),
            ("expected value at line 1 column 1", "body"),
        ];
        for (text, field) in cases {
            let (got, _) =
                json_body_field(StatusCode::UNPROCESSABLE_ENTITY, &format!("{prefix}{text}"))
                    .expect("a JSON body error");
            assert_eq!(got, field, "{text}");
        }
        assert_eq!(json_body_field(StatusCode::BAD_REQUEST, prefix), None);
        assert_eq!(
            json_body_field(StatusCode::UNPROCESSABLE_ENTITY, "other"),
            None
        );
    }

    #[test]
    fn request_metrics_keep_one_handle_per_series() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let request_metrics = RequestMetrics::default();
        metrics::with_local_recorder(&recorder, || {
            for _ in 0..3 {
                request_metrics.record("/v1/things/{id}", "GET", 200, 0.001);
            }
            request_metrics.record("/v1/things/{id}", "GET", 404, 0.002);
            request_metrics.record(UNMATCHED_ROUTE, "POST", 404, 0.003);
        });
        assert_eq!(request_metrics.series.load(Ordering::Relaxed), 3);
        let text = handle.render();
        let count = |series: &str| {
            text.lines()
                .find(|line| line.starts_with(series))
                .and_then(|line| line.rsplit(' ').next())
                .map(str::to_owned)
        };
        assert_eq!(
            count(
                r#"mercato_http_requests_total{route="/v1/things/{id}",method="GET",status="200"}"#
            )
            .as_deref(),
            Some("3"),
            "{text}"
        );
        assert_eq!(
            count(
                r#"mercato_http_requests_total{route="/v1/things/{id}",method="GET",status="404"}"#
            )
            .as_deref(),
            Some("1"),
            "{text}"
        );
        assert_eq!(
            count(r#"mercato_http_requests_total{route="unmatched",method="POST",status="404"}"#)
                .as_deref(),
            Some("1"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn unknown_route_is_404_problem() {
        let app = layered(echo_len(), &http_config());
        let response = app
            .oneshot(Request::get("/nope").body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let body = body_json(response).await;
        assert_eq!(body["code"], "not_found");
        assert_eq!(body["type"], "/problems/not_found");
        assert_eq!(body["title"], "Not found");
    }
}
