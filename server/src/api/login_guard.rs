//! Failed sign-in attempts per account and per client address, bounded in time.
//!
//! Password guessing is slowed down at two levels: at most [`LOGIN_FAILURES_PER_ACCOUNT_MAX`]
//! failed sign-ins per account (tenant slug and email, lowercased) and at most
//! [`LOGIN_FAILURES_PER_ADDRESS_MAX`] per client address within [`LOGIN_FAILURE_WINDOW`]. Past
//! either, `/v1/auth/login` answers 429 `rate_limited` with `Retry-After`, before the password is
//! even looked at, so the right password is refused too until the window has moved on. A
//! successful sign-in clears its account's count (not its address's: one address may serve many
//! people, and a guesser who knows one password should not get a fresh budget for others).
//!
//! An attempt counts as a failure from the moment it starts ([`LoginGuard::begin`]) until its
//! outcome is known ([`Attempt::succeeded`], [`Attempt::abandoned`]): concurrent guesses cannot
//! slip past the limit while their password hashes are being checked.
//!
//! Memory is bounded: each tracker keeps at most [`LOGIN_GUARD_KEYS_MAX`] keys (a hash of the
//! account, or the address) with at most its limit of timestamps each. When full, keys with no
//! failure in the window are dropped first, then the ones whose last failure is oldest.
//!
//! The client address is the TCP peer when the server was started with connect information
//! (`ConnectInfo<SocketAddr>`), as the per-credential rate limiter reads it. Without it the
//! per-address limit is not applied: one shared bucket for every client would let anyone lock
//! everyone out with 30 wrong passwords.

use crate::problem::{ApiError, ErrorCode};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Failed sign-ins allowed per account (tenant slug, email) within the window.
pub const LOGIN_FAILURES_PER_ACCOUNT_MAX: usize = 10;
/// Failed sign-ins allowed per client address within the window.
pub const LOGIN_FAILURES_PER_ADDRESS_MAX: usize = 30;
/// The sliding window the limits apply to.
pub const LOGIN_FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Keys (accounts, or addresses) tracked per tracker before the oldest are evicted.
pub const LOGIN_GUARD_KEYS_MAX: usize = 50_000;
/// Bytes of the tenant slug and of the email that make up an account key; longer input is
/// never a valid sign-in, and is cut here so that hashing it costs a bounded amount.
pub const LOGIN_KEY_PART_BYTES_MAX: usize = 320;

/// Counter of sign-in attempts refused with 429.
pub const LOGIN_THROTTLED_TOTAL: &str = "mercato_login_throttled_total";

/// The client address of a request, when the server knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddress(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(ClientAddress(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
    }
}

/// Recent failures of each key, oldest first, at most `limit` of them.
struct Tracker {
    limit: usize,
    failures: HashMap<u64, VecDeque<Instant>>,
}

impl Tracker {
    fn new(limit: usize) -> Tracker {
        Tracker {
            limit,
            failures: HashMap::new(),
        }
    }

    /// `Err(wait)` when `key` has `limit` failures within the window before `now`.
    fn check(&mut self, key: u64, now: Instant) -> Result<(), Duration> {
        let Some(times) = self.failures.get_mut(&key) else {
            return Ok(());
        };
        while times
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= LOGIN_FAILURE_WINDOW)
        {
            times.pop_front();
        }
        if times.is_empty() {
            self.failures.remove(&key);
            return Ok(());
        }
        if times.len() < self.limit {
            return Ok(());
        }
        // The oldest failure in the window leaves it first and frees one attempt.
        let oldest = times.front().copied().unwrap_or(now);
        Err((oldest + LOGIN_FAILURE_WINDOW).saturating_duration_since(now))
    }

    fn record(&mut self, key: u64, at: Instant) {
        if !self.failures.contains_key(&key) && self.failures.len() >= LOGIN_GUARD_KEYS_MAX {
            self.evict(at);
        }
        let times = self.failures.entry(key).or_default();
        if times.len() >= self.limit {
            times.pop_front();
        }
        times.push_back(at);
    }

    /// Removes one failure recorded at `at` (an attempt that turned out not to be a failure).
    fn forget(&mut self, key: u64, at: Instant) {
        if let Some(times) = self.failures.get_mut(&key) {
            if let Some(index) = times.iter().rposition(|t| *t == at) {
                times.remove(index);
            }
            if times.is_empty() {
                self.failures.remove(&key);
            }
        }
    }

    fn clear(&mut self, key: u64) {
        self.failures.remove(&key);
    }

    /// Makes room: drops keys without a failure in the window, then, if the map is still full,
    /// the eighth of the keys whose last failure is oldest (amortizing the scan over many
    /// inserts).
    fn evict(&mut self, now: Instant) {
        self.failures.retain(|_, times| {
            times
                .back()
                .is_some_and(|t| now.saturating_duration_since(*t) < LOGIN_FAILURE_WINDOW)
        });
        if self.failures.len() < LOGIN_GUARD_KEYS_MAX {
            return;
        }
        let mut last_failures: Vec<Instant> = self
            .failures
            .values()
            .filter_map(|times| times.back().copied())
            .collect();
        let evict = (LOGIN_GUARD_KEYS_MAX / 8).max(1);
        let (_, cutoff, _) = last_failures.select_nth_unstable(evict - 1);
        let cutoff = *cutoff;
        let mut removed = 0;
        self.failures.retain(|_, times| {
            let old = times.back().is_none_or(|t| *t <= cutoff);
            if old && removed < evict {
                removed += 1;
                false
            } else {
                true
            }
        });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.failures.len()
    }
}

struct Trackers {
    accounts: Tracker,
    addresses: Tracker,
}

/// The guard: one per process (see [`login_guard`]).
pub struct LoginGuard {
    hasher: RandomState,
    trackers: Mutex<Trackers>,
}

impl Default for LoginGuard {
    fn default() -> Self {
        LoginGuard::new()
    }
}

/// A sign-in attempt under way, counted as a failure until settled.
#[must_use = "an attempt must be settled with succeeded(), failed() or abandoned()"]
pub struct Attempt<'a> {
    guard: &'a LoginGuard,
    account: u64,
    address: Option<u64>,
    started: Instant,
}

impl LoginGuard {
    pub fn new() -> LoginGuard {
        LoginGuard {
            hasher: RandomState::new(),
            trackers: Mutex::new(Trackers {
                accounts: Tracker::new(LOGIN_FAILURES_PER_ACCOUNT_MAX),
                addresses: Tracker::new(LOGIN_FAILURES_PER_ADDRESS_MAX),
            }),
        }
    }

    fn account_key(&self, tenant_slug: &str, email: &str) -> u64 {
        let cut = |text: &str| {
            let text = text.trim();
            let mut end = text.len().min(LOGIN_KEY_PART_BYTES_MAX);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text[..end].to_lowercase()
        };
        self.hasher.hash_one((cut(tenant_slug), cut(email)))
    }

    fn address_key(&self, address: IpAddr) -> u64 {
        self.hasher.hash_one(address)
    }

    fn trackers(&self) -> std::sync::MutexGuard<'_, Trackers> {
        // The trackers hold counters only; a panic while holding the lock cannot leave them in
        // a state worse than slightly off, so a poisoned lock is used as it is.
        self.trackers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts an attempt, or refuses it with 429 when the account or the address is over its
    /// limit.
    pub fn begin(
        &self,
        tenant_slug: &str,
        email: &str,
        address: Option<IpAddr>,
    ) -> Result<Attempt<'_>, ApiError> {
        self.begin_at(tenant_slug, email, address, Instant::now())
    }

    fn begin_at(
        &self,
        tenant_slug: &str,
        email: &str,
        address: Option<IpAddr>,
        now: Instant,
    ) -> Result<Attempt<'_>, ApiError> {
        let account = self.account_key(tenant_slug, email);
        let address_key = address.map(|a| self.address_key(a));
        let mut trackers = self.trackers();
        let account_wait = trackers.accounts.check(account, now).err();
        let address_wait = address_key.and_then(|key| trackers.addresses.check(key, now).err());
        if account_wait.is_some() || address_wait.is_some() {
            drop(trackers);
            metrics::counter!(LOGIN_THROTTLED_TOTAL).increment(1);
            let wait = account_wait
                .max(address_wait)
                .unwrap_or(LOGIN_FAILURE_WINDOW);
            let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
            let which = if account_wait.is_some() {
                "this account"
            } else {
                "this address"
            };
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                format!("too many failed sign-ins for {which}; retry in {seconds} s"),
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from(seconds)));
        }
        trackers.accounts.record(account, now);
        if let Some(key) = address_key {
            trackers.addresses.record(key, now);
        }
        Ok(Attempt {
            guard: self,
            account,
            address: address_key,
            started: now,
        })
    }
}

impl Attempt<'_> {
    /// The password was right: the account's count starts over, and this attempt does not
    /// count against the address.
    pub fn succeeded(self) {
        let mut trackers = self.guard.trackers();
        trackers.accounts.clear(self.account);
        if let Some(address) = self.address {
            trackers.addresses.forget(address, self.started);
        }
    }

    /// The sign-in failed (unknown tenant or email, wrong password, disabled user): the attempt
    /// stays counted.
    pub fn failed(self) {}

    /// The attempt ended for another reason (storage unavailable, ...): it is not counted.
    pub fn abandoned(self) {
        let mut trackers = self.guard.trackers();
        trackers.accounts.forget(self.account, self.started);
        if let Some(address) = self.address {
            trackers.addresses.forget(address, self.started);
        }
    }
}

/// The process-wide guard. It lives outside `AppState` because the failures it counts belong
/// to the process, whatever router serves them.
pub fn login_guard() -> &'static LoginGuard {
    static GUARD: OnceLock<LoginGuard> = OnceLock::new();
    GUARD.get_or_init(LoginGuard::new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const ADDRESS: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));

    fn retry_after(error: ApiError) -> u64 {
        assert_eq!(error.code(), ErrorCode::RateLimited);
        let ApiError::Detailed(problem) = error else {
            panic!("429 without headers");
        };
        let (_, value) = problem
            .headers
            .iter()
            .find(|(name, _)| name == header::RETRY_AFTER)
            .expect("Retry-After");
        value.to_str().expect("ascii").parse().expect("seconds")
    }

    #[test]
    fn an_account_is_refused_after_ten_failures_until_the_window_moves() {
        let guard = LoginGuard::new();
        let start = Instant::now();
        for i in 0..LOGIN_FAILURES_PER_ACCOUNT_MAX {
            let at = start + Duration::from_secs(i as u64);
            guard
                .begin_at("acme", "a@x.io", None, at)
                .expect("allowed")
                .failed();
        }
        let at = start + Duration::from_secs(10);
        let refused = guard.begin_at("ACME", " A@X.io ", None, at);
        let wait = retry_after(refused.err().expect("11th attempt refused"));
        assert_eq!(wait, 50, "the first failure leaves the window at 60 s");
        // Another account is not affected.
        guard
            .begin_at("acme", "b@x.io", None, at)
            .expect("other account")
            .failed();
        // Once the first failure is 60 s old, one more attempt is allowed.
        let later = start + LOGIN_FAILURE_WINDOW;
        guard
            .begin_at("acme", "a@x.io", None, later)
            .expect("window moved")
            .failed();
        assert!(guard.begin_at("acme", "a@x.io", None, later).is_err());
    }

    #[test]
    fn success_resets_the_account_but_not_the_address() {
        let guard = LoginGuard::new();
        let now = Instant::now();
        for _ in 0..LOGIN_FAILURES_PER_ACCOUNT_MAX - 1 {
            guard
                .begin_at("acme", "a@x.io", ADDRESS, now)
                .expect("allowed")
                .failed();
        }
        guard
            .begin_at("acme", "a@x.io", ADDRESS, now)
            .expect("10th")
            .succeeded();
        for _ in 0..LOGIN_FAILURES_PER_ACCOUNT_MAX {
            guard
                .begin_at("acme", "a@x.io", ADDRESS, now)
                .expect("fresh")
                .failed();
        }
        assert!(guard.begin_at("acme", "a@x.io", ADDRESS, now).is_err());
        let trackers = guard.trackers();
        let address = guard.address_key(ADDRESS.expect("address"));
        assert_eq!(
            trackers.addresses.failures.get(&address).map(VecDeque::len),
            Some(19),
            "9 + 10 failures; the success is not one"
        );
    }

    #[test]
    fn an_address_is_refused_after_thirty_failures_on_any_accounts() {
        let guard = LoginGuard::new();
        let now = Instant::now();
        for i in 0..LOGIN_FAILURES_PER_ADDRESS_MAX {
            let email = format!("user{i}@x.io");
            guard
                .begin_at("acme", &email, ADDRESS, now)
                .expect("allowed")
                .failed();
        }
        let error = guard
            .begin_at("acme", "new@x.io", ADDRESS, now)
            .err()
            .expect("31st failure from the address refused");
        assert_eq!(retry_after(error), 60);
        let other = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));
        guard
            .begin_at("acme", "new@x.io", other, now)
            .expect("other address")
            .failed();
        // Without a known address only the account limit applies.
        guard
            .begin_at("acme", "new@x.io", None, now)
            .expect("unknown address")
            .failed();
    }

    #[test]
    fn abandoned_attempts_do_not_count() {
        let guard = LoginGuard::new();
        let now = Instant::now();
        for _ in 0..3 * LOGIN_FAILURES_PER_ACCOUNT_MAX {
            guard
                .begin_at("acme", "a@x.io", ADDRESS, now)
                .expect("allowed")
                .abandoned();
        }
        assert_eq!(guard.trackers().accounts.len(), 0);
        assert_eq!(guard.trackers().addresses.len(), 0);
    }

    #[test]
    fn tracked_keys_are_bounded_and_the_oldest_go_first() {
        let mut tracker = Tracker::new(2);
        let start = Instant::now();
        let at = |i: usize| start + Duration::from_millis(i as u64);
        for key in 0..LOGIN_GUARD_KEYS_MAX {
            tracker.record(key as u64, at(key));
        }
        assert_eq!(tracker.len(), LOGIN_GUARD_KEYS_MAX);
        let newest = LOGIN_GUARD_KEYS_MAX as u64;
        tracker.record(newest, at(LOGIN_GUARD_KEYS_MAX));
        assert!(tracker.len() <= LOGIN_GUARD_KEYS_MAX);
        assert!(tracker.failures.contains_key(&newest));
        assert!(
            !tracker.failures.contains_key(&0),
            "the oldest key was evicted"
        );
        assert!(tracker.failures.contains_key(&(newest - 1)));
        // Keys whose failures left the window are dropped before any recent one.
        let later = start + LOGIN_FAILURE_WINDOW + Duration::from_secs(3600);
        tracker.evict(later);
        assert_eq!(tracker.len(), 0);
    }
}
