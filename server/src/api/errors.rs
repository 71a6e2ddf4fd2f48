//! Engine errors as problem+json: the one place where domain rejections get their HTTP status
//! and their stable code.
//!
//! | engine | status | `code` | extension members |
//! |---|---|---|---|
//! | `Rejection::NotFound` | 404 | `not_found` | `resource`, `id` |
//! | `Rejection::InvalidField` | 422 | `invalid_field` | `field` |
//! | `Rejection::Conflict` | 409 | the conflict's own code (`illegal_transition`, ...) | |
//! | `Rejection::Forbidden`, `EngineError::Forbidden` | 403 | `forbidden` | |
//! | `Rejection::OrderLines` | 422 | `order_lines_rejected` | `lines: [{line, code, detail}]` |
//! | `EngineError::Unauthenticated` | 401 | `unauthenticated` | |
//! | storage `Overloaded` | 503 | `overloaded` | `Retry-After: 1` |
//! | storage `ShardFailed` / `Closed` | 503 | `not_ready` | |
//! | anything else | 500 | `internal` | (cause in the server log only) |

use crate::problem::{ApiError, ErrorCode};
use axum::http::{HeaderValue, header};
use mercato_engine::{EngineError, Rejection};
use mercato_storage::StorageError;
use serde_json::{Map, Value, json};

/// Seconds a client is told to wait when a shard's write queue is full.
pub const OVERLOADED_RETRY_AFTER_SECONDS: u32 = 1;

/// 404 for a resource missing from the caller's tenant.
pub fn not_found(resource: &'static str, id: impl ToString) -> ApiError {
    rejection(Rejection::NotFound {
        resource,
        id: id.to_string(),
    })
}

fn rejection(rejection: Rejection) -> ApiError {
    let detail = rejection.to_string();
    match rejection {
        Rejection::NotFound { resource, id } => {
            let mut extra = Map::new();
            extra.insert("resource".to_owned(), Value::from(resource));
            extra.insert("id".to_owned(), Value::from(id));
            ApiError::detailed(ErrorCode::NotFound, None, detail, extra)
        }
        Rejection::InvalidField { field, reason } => ApiError::invalid_field(field, reason),
        Rejection::Conflict { code, .. } => {
            ApiError::detailed(ErrorCode::Conflict, Some(code), detail, Map::new())
        }
        Rejection::Forbidden { .. } => ApiError::new(ErrorCode::Forbidden, detail),
        Rejection::OrderLines { problems } => {
            let lines = problems
                .iter()
                .map(|p| json!({"line": p.line, "code": p.code, "detail": p.detail}))
                .collect();
            let mut extra = Map::new();
            extra.insert("lines".to_owned(), Value::Array(lines));
            ApiError::detailed(ErrorCode::OrderLinesRejected, None, detail, extra)
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::Rejected(r) => rejection(r),
            EngineError::Unauthenticated => crate::api::auth::unauthenticated(
                "the credential is missing, unknown, expired or revoked",
            ),
            EngineError::Forbidden(what) => ApiError::new(
                ErrorCode::Forbidden,
                format!("this credential may not {what}"),
            ),
            EngineError::Storage(StorageError::Overloaded { .. }) => ApiError::new(
                ErrorCode::Overloaded,
                "the write queue is full; retry shortly",
            )
            .with_header(
                header::RETRY_AFTER,
                HeaderValue::from(OVERLOADED_RETRY_AFTER_SECONDS),
            ),
            EngineError::Storage(StorageError::ShardFailed { .. } | StorageError::Closed) => {
                ApiError::new(ErrorCode::NotReady, "storage cannot take this request now")
            }
            other => ApiError::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;
    use mercato_engine::LineProblem;

    async fn body(error: ApiError) -> (u16, Value) {
        let response = error.into_response();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        (status, serde_json::from_slice(&bytes).expect("json"))
    }

    #[tokio::test]
    async fn rejections_map_to_status_and_code() {
        let (status, b) = body(not_found("product", 7)).await;
        assert_eq!((status, b["code"].as_str()), (404, Some("not_found")));
        assert_eq!(b["resource"], "product");

        let invalid = EngineError::Rejected(Rejection::InvalidField {
            field: "sku".into(),
            reason: "empty".into(),
        });
        let (status, b) = body(invalid.into()).await;
        assert_eq!((status, b["code"].as_str()), (422, Some("invalid_field")));
        assert_eq!(b["field"], "sku");

        let conflict = EngineError::Rejected(Rejection::Conflict {
            code: "illegal_transition",
            detail: "shipped cannot be confirmed".into(),
        });
        let (status, b) = body(conflict.into()).await;
        assert_eq!(
            (status, b["code"].as_str()),
            (409, Some("illegal_transition"))
        );
        assert_eq!(b["type"], "/problems/illegal_transition");

        let lines = EngineError::Rejected(Rejection::OrderLines {
            problems: vec![LineProblem {
                line: 2,
                code: "insufficient_stock",
                detail: "3 available".into(),
            }],
        });
        let (status, b) = body(lines.into()).await;
        assert_eq!(status, 422);
        assert_eq!(b["code"], "order_lines_rejected");
        assert_eq!(b["lines"][0]["line"], 2);
        assert_eq!(b["lines"][0]["code"], "insufficient_stock");
    }

    #[tokio::test]
    async fn overload_is_503_with_retry_after() {
        let error: ApiError = EngineError::Storage(StorageError::Overloaded {
            shard: mercato_engine::ShardId(0),
            pending_max: 1,
        })
        .into();
        let response = error.into_response();
        assert_eq!(response.status().as_u16(), 503);
        assert_eq!(
            response.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from(1u32))
        );
    }
}
