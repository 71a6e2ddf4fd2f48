//! Per-credential rate limiting (GCRA, via `governor`).
//!
//! The key is a hash of the bearer token when the request has one, else the client's address:
//! each credential (session, API key, platform token) has its own budget, and anonymous
//! requests such as logins share their address's. Over the budget the answer is 429 with
//! `Retry-After` in whole seconds (at least 1).
//!
//! The keyed state is bounded: past [`RATE_LIMIT_KEYS_MAX`] keys, keys whose state is back to
//! fresh are dropped (that loses nothing: a fresh key has its full budget anyway).

use crate::api::auth::bearer_token;
use crate::problem::{ApiError, ErrorCode};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

/// Keys kept before recently idle ones are dropped.
pub const RATE_LIMIT_KEYS_MAX: usize = 100_000;

/// Counter of requests refused with 429.
pub const RATE_LIMITED_TOTAL: &str = "mercato_http_rate_limited_total";

/// The limiter shared by every request; `None` inside when limiting is off.
#[derive(Clone)]
pub struct RateLimits {
    limiter: Option<Arc<DefaultKeyedRateLimiter<u64>>>,
}

impl RateLimits {
    /// `per_second` 0 turns limiting off.
    pub fn new(per_second: u32, burst: u32) -> RateLimits {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            Arc::new(DefaultKeyedRateLimiter::dashmap(
                Quota::per_second(rate).allow_burst(burst),
            ))
        });
        RateLimits { limiter }
    }

    /// Whether limiting is on (a rate above zero).
    pub fn is_on(&self) -> bool {
        self.limiter.is_some()
    }

    /// `Err(seconds to wait)` when `key` is over its budget.
    pub fn check(&self, key: u64) -> Result<(), u64> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if limiter.len() > RATE_LIMIT_KEYS_MAX {
            limiter.retain_recent();
        }
        limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

fn key_of(request: &Request) -> u64 {
    let mut hasher = DefaultHasher::new();
    match bearer_token(request.headers()) {
        Some(token) => ("token", token).hash(&mut hasher),
        None => {
            let ip = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip());
            ("address", ip).hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// The middleware: refuses a request over its credential's budget with 429.
pub async fn limit(State(limits): State<RateLimits>, request: Request, next: Next) -> Response {
    if !limits.is_on() {
        return next.run(request).await;
    }
    match limits.check(key_of(&request)) {
        Ok(()) => next.run(request).await,
        Err(wait_seconds) => {
            metrics::counter!(RATE_LIMITED_TOTAL).increment(1);
            let wait_seconds = wait_seconds.max(1);
            ApiError::new(
                ErrorCode::RateLimited,
                format!("this credential exceeded its request rate; retry in {wait_seconds} s"),
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from(wait_seconds))
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_per_key() {
        let limits = RateLimits::new(1, 2);
        assert_eq!(limits.check(1), Ok(()));
        assert_eq!(limits.check(1), Ok(()));
        let wait = limits
            .check(1)
            .expect_err("third request within the burst window");
        assert!(wait >= 1, "{wait}");
        assert_eq!(limits.check(2), Ok(()), "another key has its own budget");
    }

    #[test]
    fn zero_rate_turns_limiting_off() {
        let limits = RateLimits::new(0, 1);
        assert!(!limits.is_on());
        assert!(RateLimits::new(1, 1).is_on());
        for _ in 0..1000 {
            assert_eq!(limits.check(1), Ok(()));
        }
    }
}
