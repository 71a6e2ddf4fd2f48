//! API errors as RFC 9457 problem details (`application/problem+json`).
//!
//! Every error response of the server has the body
//! `{"type", "title", "status", "detail", "code"}`, where `code` is a stable machine-readable
//! identifier from [`ErrorCode`]: clients branch on `code`, never on `title` or `detail`.
//!
//! The table of codes lives here, in one place, each with its HTTP status and title. Adding a
//! code is adding a variant and a row in [`ErrorCode::spec`]; removing or renaming one is a
//! breaking API change.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::fmt;

/// Media type of problem details bodies.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Prefix of the `type` URI of every problem; the code follows.
pub const PROBLEM_TYPE_PREFIX: &str = "/problems/";

/// Stable machine-readable error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed in a way no more specific code describes.
    BadRequest,
    /// No route matches the request's path.
    NotFound,
    /// The path exists but not with this method.
    MethodNotAllowed,
    /// The request body exceeds `http.request_body_bytes_max`.
    PayloadTooLarge,
    /// The request body's media type is not accepted by the route.
    UnsupportedMediaType,
    /// The request body is well-formed but its content is invalid.
    UnprocessableContent,
    /// The request took longer than `http.request_timeout_ms`.
    RequestTimeout,
    /// The storage cannot take writes at the moment (readiness check failed).
    NotReady,
    /// The server is shutting down and takes no new work.
    ShuttingDown,
    /// An unexpected failure inside the server; details are in the server log only.
    Internal,
    /// No credential, or one that is malformed, unknown, expired or revoked; or a failed login.
    Unauthenticated,
    /// The credential is valid but may not do this.
    Forbidden,
    /// The change conflicts with the current state. The body's `code` is the specific conflict
    /// (for example `illegal_transition`, `duplicate_sku`, `idempotency_key_reused`).
    Conflict,
    /// A field of the request is invalid; the body's `field` names it.
    InvalidField,
    /// Some lines of an order cannot be placed; the body's `lines` names each one.
    OrderLinesRejected,
    /// The credential (or client address) exceeded its request rate; see `Retry-After`.
    RateLimited,
    /// The storage writer's queue is full; retry after `Retry-After`.
    Overloaded,
}

/// One row of the code table.
pub struct ErrorSpec {
    pub code: &'static str,
    pub status: StatusCode,
    pub title: &'static str,
}

impl ErrorCode {
    /// Every code, for documentation and tests.
    pub const ALL: [ErrorCode; 17] = [
        ErrorCode::BadRequest,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::UnprocessableContent,
        ErrorCode::RequestTimeout,
        ErrorCode::NotReady,
        ErrorCode::ShuttingDown,
        ErrorCode::Internal,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::Conflict,
        ErrorCode::InvalidField,
        ErrorCode::OrderLinesRejected,
        ErrorCode::RateLimited,
        ErrorCode::Overloaded,
    ];

    /// The code table.
    pub const fn spec(self) -> ErrorSpec {
        use ErrorCode::*;
        let (code, status, title) = match self {
            BadRequest => ("bad_request", StatusCode::BAD_REQUEST, "Bad request"),
            NotFound => ("not_found", StatusCode::NOT_FOUND, "Not found"),
            MethodNotAllowed => (
                "method_not_allowed",
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
            ),
            PayloadTooLarge => (
                "payload_too_large",
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body too large",
            ),
            UnsupportedMediaType => (
                "unsupported_media_type",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported media type",
            ),
            UnprocessableContent => (
                "unprocessable_content",
                StatusCode::UNPROCESSABLE_ENTITY,
                "Unprocessable content",
            ),
            RequestTimeout => (
                "request_timeout",
                StatusCode::SERVICE_UNAVAILABLE,
                "Request timed out",
            ),
            NotReady => (
                "not_ready",
                StatusCode::SERVICE_UNAVAILABLE,
                "Service not ready",
            ),
            ShuttingDown => (
                "shutting_down",
                StatusCode::SERVICE_UNAVAILABLE,
                "Service shutting down",
            ),
            Internal => (
                "internal",
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal server error",
            ),
            Unauthenticated => (
                "unauthenticated",
                StatusCode::UNAUTHORIZED,
                "Authentication required",
            ),
            Forbidden => ("forbidden", StatusCode::FORBIDDEN, "Forbidden"),
            Conflict => ("conflict", StatusCode::CONFLICT, "Conflict"),
            InvalidField => (
                "invalid_field",
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid field",
            ),
            OrderLinesRejected => (
                "order_lines_rejected",
                StatusCode::UNPROCESSABLE_ENTITY,
                "Order lines rejected",
            ),
            RateLimited => (
                "rate_limited",
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
            ),
            Overloaded => (
                "overloaded",
                StatusCode::SERVICE_UNAVAILABLE,
                "Service overloaded",
            ),
        };
        ErrorSpec {
            code,
            status,
            title,
        }
    }

    pub const fn as_str(self) -> &'static str {
        self.spec().code
    }

    pub const fn status(self) -> StatusCode {
        self.spec().status
    }

    /// The code a bare error status (one produced by the framework, not by our handlers) maps to.
    pub fn for_status(status: StatusCode) -> ErrorCode {
        match status {
            StatusCode::NOT_FOUND => ErrorCode::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
            StatusCode::UNPROCESSABLE_ENTITY => ErrorCode::UnprocessableContent,
            StatusCode::UNAUTHORIZED => ErrorCode::Unauthenticated,
            StatusCode::FORBIDDEN => ErrorCode::Forbidden,
            StatusCode::CONFLICT => ErrorCode::Conflict,
            StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
            status if status.is_client_error() => ErrorCode::BadRequest,
            _ => ErrorCode::Internal,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error type of every handler and middleware.
///
/// A `Problem` is the client's to fix or to retry, and its detail is safe to show. An
/// `Internal` error is logged with its cause chain and the client gets a generic 500.
#[derive(Debug)]
pub enum ApiError {
    Problem {
        code: ErrorCode,
        detail: String,
    },
    /// A problem with a more specific code, extension members or extra headers.
    Detailed(Box<DetailedProblem>),
    Internal(Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        ApiError::Problem {
            code,
            detail: detail.into(),
        }
    }

    pub fn internal(error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        ApiError::Internal(error.into())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Problem { code, .. } => *code,
            ApiError::Detailed(problem) => problem.code,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Problem { code, detail } => write!(f, "{code}: {detail}"),
            ApiError::Detailed(problem) => write!(
                f,
                "{}: {}",
                problem.specific.unwrap_or(problem.code.as_str()),
                problem.detail
            ),
            ApiError::Internal(error) => write!(f, "internal: {}", ErrorChain(error.as_ref())),
        }
    }
}

impl std::error::Error for ApiError {}

/// Displays an error followed by its sources, separated by `: `.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

/// The JSON body of a problem response.
#[derive(Debug, Serialize)]
pub struct ProblemBody {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    pub code: &'static str,
    /// Extension members (`field`, `lines`, ...), flattened into the body.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The problem body as the OpenAPI document describes it (every error response of every route).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub struct ProblemDoc {
    /// `/problems/<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code: one of the generic codes (`not_found`, `invalid_field`,
    /// `unauthenticated`, `forbidden`, `rate_limited`, `payload_too_large`, ...) or, for 409, the
    /// specific conflict (`illegal_transition`, `duplicate_sku`, `idempotency_key_reused`, ...).
    pub code: String,
    /// For `invalid_field` (and `bad_request` for a query parameter of a search route): the
    /// offending field.
    pub field: Option<String>,
    /// For `order_lines_rejected`: each offending line (0-based index) with its code.
    pub lines: Option<Vec<LineProblemDoc>>,
}

/// One offending order line in a problem body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = LineProblem)]
pub struct LineProblemDoc {
    pub line: u32,
    pub code: String,
    pub detail: String,
}

/// A problem beyond code and detail: see [`ApiError::Detailed`].
#[derive(Debug)]
pub struct DetailedProblem {
    /// Decides the status and title.
    pub code: ErrorCode,
    /// Replaces the body's `code` (and the `type` URI) with a more specific stable code.
    pub specific: Option<&'static str>,
    pub detail: String,
    pub extra: serde_json::Map<String, serde_json::Value>,
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    /// A problem with a specific code and extension members.
    pub fn detailed(
        code: ErrorCode,
        specific: Option<&'static str>,
        detail: impl Into<String>,
        extra: serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        ApiError::Detailed(Box::new(DetailedProblem {
            code,
            specific,
            detail: detail.into(),
            extra,
            headers: Vec::new(),
        }))
    }

    /// A problem naming the invalid field in a `field` member.
    pub fn invalid_field(field: impl Into<String>, reason: impl fmt::Display) -> Self {
        let field = field.into();
        let mut extra = serde_json::Map::new();
        extra.insert("field".to_owned(), serde_json::Value::String(field.clone()));
        ApiError::detailed(
            ErrorCode::InvalidField,
            None,
            format!("field `{field}` is invalid: {reason}"),
            extra,
        )
    }

    /// Adds a response header (such as `Retry-After` or `WWW-Authenticate`).
    pub fn with_header(self, name: header::HeaderName, value: HeaderValue) -> Self {
        let mut problem = match self {
            ApiError::Problem { code, detail } => DetailedProblem {
                code,
                specific: None,
                detail,
                extra: serde_json::Map::new(),
                headers: Vec::new(),
            },
            ApiError::Detailed(problem) => *problem,
            internal @ ApiError::Internal(_) => return internal,
        };
        problem.headers.push((name, value));
        ApiError::Detailed(Box::new(problem))
    }
}

/// Builds a problem response for `code` with `detail`.
pub fn problem_response(code: ErrorCode, detail: String) -> Response {
    problem_response_with(code, None, detail, serde_json::Map::new())
}

/// A problem response with a specific code and extension members.
pub fn problem_response_with(
    code: ErrorCode,
    specific: Option<&'static str>,
    detail: String,
    extra: serde_json::Map<String, serde_json::Value>,
) -> Response {
    let spec = code.spec();
    let code_text = specific.unwrap_or(spec.code);
    let body = ProblemBody {
        problem_type: format!("{PROBLEM_TYPE_PREFIX}{code_text}"),
        title: spec.title,
        status: spec.status.as_u16(),
        detail,
        code: code_text,
        extra,
    };
    let mut response = (spec.status, Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
    );
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Problem { code, detail } => problem_response(code, detail),
            ApiError::Detailed(problem) => {
                let DetailedProblem {
                    code,
                    specific,
                    detail,
                    extra,
                    headers,
                } = *problem;
                let mut response = problem_response_with(code, specific, detail, extra);
                for (name, value) in headers {
                    response.headers_mut().append(name, value);
                }
                response
            }
            ApiError::Internal(error) => {
                tracing::error!(error = %ErrorChain(error.as_ref()), "internal error while handling a request");
                problem_response(
                    ErrorCode::Internal,
                    "The server failed to handle the request; the cause is in the server log."
                        .to_owned(),
                )
            }
        }
    }
}

/// Whether a response already carries a problem body.
pub fn is_problem(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| {
            value
                .as_bytes()
                .starts_with(PROBLEM_CONTENT_TYPE.as_bytes())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_snake_case_and_errors() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            let spec = code.spec();
            assert!(seen.insert(spec.code), "duplicate code {}", spec.code);
            assert!(
                spec.code
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}",
                spec.code
            );
            assert!(
                spec.status.is_client_error() || spec.status.is_server_error(),
                "{}",
                spec.code
            );
        }
    }

    #[test]
    fn bare_statuses_map_to_their_codes() {
        assert_eq!(
            ErrorCode::for_status(StatusCode::PAYLOAD_TOO_LARGE),
            ErrorCode::PayloadTooLarge
        );
        assert_eq!(
            ErrorCode::for_status(StatusCode::METHOD_NOT_ALLOWED),
            ErrorCode::MethodNotAllowed
        );
        assert_eq!(
            ErrorCode::for_status(StatusCode::BAD_REQUEST),
            ErrorCode::BadRequest
        );
        assert_eq!(
            ErrorCode::for_status(StatusCode::BAD_GATEWAY),
            ErrorCode::Internal
        );
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause() {
        let response =
            ApiError::internal(std::io::Error::other("disk secret /var/x")).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(is_problem(&response));
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .expect("body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(body["code"], "internal");
        assert!(
            !body.to_string().contains("secret"),
            "cause leaked to the client: {body}"
        );
    }
}
