//! Credentials: `Authorization: Bearer <token>` becomes a [`Principal`].
//!
//! Session tokens (`mct_`), API keys (`mck_`) and the platform token (`mcp_`) all arrive the
//! same way; the engine tells them apart and checks them against the tenant the token names.
//! Every failure is the same 401, so a caller learns nothing about which check failed.

use crate::app::AppState;
use crate::problem::{ApiError, ErrorCode};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use mercato_engine::accounts::{Permission, Principal};
use mercato_engine::{Actor, EngineError};

/// Longest `Authorization` header value considered; longer ones are refused unread.
pub const AUTHORIZATION_BYTES_MAX: usize = 512;

/// The authenticated caller of a tenant-scoped route (a user or an API key).
#[derive(Clone, Debug)]
pub struct Auth(pub Principal);

/// The holder of the platform token, for `/v1/admin/...`.
#[derive(Clone, Debug)]
pub struct PlatformAuth(pub Principal);

/// The bearer token of a request, if it has a well-formed one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?;
    if value.len() > AUTHORIZATION_BYTES_MAX {
        return None;
    }
    let text = value.to_str().ok()?;
    let (scheme, token) = text.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// The 401 every authentication failure gets, with the `WWW-Authenticate` challenge.
pub fn unauthenticated(detail: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthenticated, detail).with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"mercato\""),
    )
}

fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let token = bearer_token(&parts.headers).ok_or_else(|| {
        unauthenticated("this route needs an `Authorization: Bearer <token>` header")
    })?;
    match state.engine.authenticate(token) {
        Ok(principal) => Ok(principal),
        Err(EngineError::Unauthenticated) => {
            Err(unauthenticated("the token is unknown, expired or revoked"))
        }
        Err(other) => Err(other.into()),
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = authenticate(parts, state)?;
        if principal.actor == Actor::Platform {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "the platform token administers tenants only; sign in as a tenant user",
            ));
        }
        Ok(Auth(principal))
    }
}

impl FromRequestParts<AppState> for PlatformAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = authenticate(parts, state)?;
        if principal.actor != Actor::Platform {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "this route needs the platform token",
            ));
        }
        Ok(PlatformAuth(principal))
    }
}

/// `Ok` if the principal may do `permission`, else 403 naming it.
pub fn require(principal: &Principal, permission: Permission) -> Result<(), ApiError> {
    principal.require(permission).map_err(ApiError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("header value"),
        );
        headers
    }

    #[test]
    fn bearer_token_is_read_case_insensitively() {
        assert_eq!(bearer_token(&headers("Bearer mct_1_ab")), Some("mct_1_ab"));
        assert_eq!(
            bearer_token(&headers("bearer  mct_1_ab ")),
            Some("mct_1_ab")
        );
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_none() {
        assert_eq!(bearer_token(&headers("Basic dXNlcjpwdw==")), None);
        assert_eq!(bearer_token(&headers("Bearer ")), None);
        assert_eq!(bearer_token(&headers("Bearer")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
        let long = format!("Bearer {}", "a".repeat(AUTHORIZATION_BYTES_MAX));
        assert_eq!(bearer_token(&headers(&long)), None);
    }
}
