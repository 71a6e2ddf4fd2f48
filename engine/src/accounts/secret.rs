//! Secrets: bearer tokens, API keys, the platform token, and password hashes.
//!
//! # Token format
//!
//! ```text
//! mct_<tenant>_<64 lowercase hex>   a login session of a user of <tenant>
//! mck_<tenant>_<64 lowercase hex>   an API key of <tenant>
//! mcp_<64 lowercase hex>            the platform admin token (tenant 0)
//! ```
//!
//! The random part is 32 bytes from the operating system's RNG, hex-encoded (URL-safe, and
//! unambiguous to copy). `<tenant>` is the decimal tenant id without leading zeros, so the
//! server routes a token to its tenant's shard without a lookup table. Only `SHA-256` of the
//! whole token text is stored: the hash binds the tenant id too, so a token whose tenant part
//! was changed hashes to something that exists nowhere. A slow hash is not needed here (the
//! tokens have 256 bits of entropy); the lookup by hash also makes a constant-time comparison
//! unnecessary.
//!
//! # Passwords
//!
//! argon2id, PHC string format, with [`ARGON2_MEMORY_KIB`] KiB of memory, [`ARGON2_ITERATIONS`]
//! passes and [`ARGON2_PARALLELISM`] lane: the first configuration OWASP's Password Storage
//! Cheat Sheet recommends (m=19 MiB, t=2, p=1). The PHC string records its parameters, so
//! raising them later keeps old hashes verifiable. Hashing runs on the blocking pool, at most
//! [`PASSWORD_HASHING_CONCURRENCY_MAX`] at a time so that a burst of logins cannot take
//! `19 MiB x blocking threads` of memory.

use crate::EngineError;
use crate::command::Rejection;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use mercato_storage::TenantId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use tokio::sync::Semaphore;

/// Shortest accepted password, in bytes.
pub const PASSWORD_BYTES_MIN: usize = 12;
/// Longest accepted password, in bytes (also bounds the work of a login attempt).
pub const PASSWORD_BYTES_MAX: usize = 256;
/// Upper bound on a stored PHC string.
pub const PASSWORD_HASH_BYTES_MAX: usize = 256;
/// argon2id memory cost, KiB (OWASP: 19 MiB).
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// argon2id time cost (passes over memory).
pub const ARGON2_ITERATIONS: u32 = 2;
/// argon2id lanes.
pub const ARGON2_PARALLELISM: u32 = 1;
/// Password hashes or verifications running at once in the process.
pub const PASSWORD_HASHING_CONCURRENCY_MAX: usize = 4;
/// Upper bound on the text of any token; longer input is refused before hashing.
pub const TOKEN_BYTES_MAX: usize = 128;
/// Random bytes in a token.
const TOKEN_RANDOM_BYTES: usize = 32;

static HASHING_PERMITS: Semaphore = Semaphore::const_new(PASSWORD_HASHING_CONCURRENCY_MAX);

/// A PHC string of a password hash with the production parameters, for a password nobody
/// knows: verified against when a login names an unknown email, so that an unknown email takes
/// as long as a wrong password (no user enumeration by timing).
const DECOY_PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$bWVyY2F0by1kdW1teS1zYWx0$mQbHMYeqnqOlDf8ku4D+Sf2NlbZhaV1J7BPljTs8UEY";

/// A secret shown to its owner once (a session token, an API key, the platform token).
/// `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(String);

impl SecretToken {
    /// The token text. Show it to its owner; never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken(<redacted>)")
    }
}

/// An argon2id PHC string. `Debug` never prints it (a hash still helps offline guessing).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks the shape of a PHC string inside a command (deterministic; the hash itself was
    /// computed before the command).
    pub(crate) fn check_shape(&self) -> Result<(), Rejection> {
        if self.0.len() > PASSWORD_HASH_BYTES_MAX || !self.0.starts_with("$argon2id$") {
            return Err(Rejection::InvalidField {
                field: "password".into(),
                reason: "not an argon2id PHC string".into(),
            });
        }
        Ok(())
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// The password policy: [`PASSWORD_BYTES_MIN`]..=[`PASSWORD_BYTES_MAX`] bytes.
pub fn check_password_policy(password: &str) -> Result<(), Rejection> {
    if !(PASSWORD_BYTES_MIN..=PASSWORD_BYTES_MAX).contains(&password.len()) {
        return Err(Rejection::InvalidField {
            field: "password".into(),
            reason: format!("must be {PASSWORD_BYTES_MIN}..={PASSWORD_BYTES_MAX} bytes"),
        });
    }
    Ok(())
}

fn argon2() -> Result<Argon2<'static>, EngineError> {
    let params = Params::new(
        ARGON2_MEMORY_KIB,
        ARGON2_ITERATIONS,
        ARGON2_PARALLELISM,
        None,
    )
    .map_err(|e| EngineError::Credential(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Runs `work` on the blocking pool under a hashing permit.
async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, EngineError> {
    let _permit = HASHING_PERMITS
        .acquire()
        .await
        .map_err(|e| EngineError::Credential(format!("hashing permits: {e}")))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| EngineError::Credential(format!("hashing task: {e}")))?
}

/// Hashes a password (argon2id, random salt, the production parameters) off the async
/// runtime. The caller checks the policy first ([`check_password_policy`]).
pub async fn hash_password(password: &str) -> Result<PasswordHash, EngineError> {
    let password = password.to_string();
    off_runtime(move || {
        let salt = SaltString::generate(&mut OsRng);
        let phc = argon2()?
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| EngineError::Credential(format!("argon2: {e}")))?;
        Ok(PasswordHash(phc.to_string()))
    })
    .await
}

/// Verifies a password against a stored hash off the async runtime (`None`: against the decoy
/// hash, to spend the same time; always false).
pub(crate) async fn verify_password(
    password: &str,
    stored: Option<&PasswordHash>,
) -> Result<bool, EngineError> {
    let password = password.to_string();
    let known = stored.is_some();
    let phc = stored.map_or_else(|| DECOY_PASSWORD_HASH.to_string(), |h| h.0.clone());
    off_runtime(move || {
        let parsed = argon2::password_hash::PasswordHash::new(&phc)
            .map_err(|e| EngineError::Credential(format!("stored hash: {e}")))?;
        // Verification uses the parameters recorded in the PHC string.
        let ok = argon2()?
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(ok && known)
    })
    .await
}

/// What a token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Session,
    ApiKey,
    Platform,
}

impl TokenKind {
    fn prefix(self) -> &'static str {
        match self {
            TokenKind::Session => "mct_",
            TokenKind::ApiKey => "mck_",
            TokenKind::Platform => "mcp_",
        }
    }
}

/// A token that has the right shape (nothing is known yet about whether it exists).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ParsedToken {
    pub kind: TokenKind,
    pub tenant: TenantId,
    pub hash: [u8; 32],
}

/// SHA-256 of the whole token text.
pub(crate) fn token_hash(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Parses a token's shape: prefix, canonical tenant id (>= 1 for tenant tokens), 64 lowercase
/// hex characters. Anything else is `None`.
pub(crate) fn parse_token(text: &str) -> Option<ParsedToken> {
    if text.len() > TOKEN_BYTES_MAX {
        return None;
    }
    let (kind, rest) = [TokenKind::Session, TokenKind::ApiKey, TokenKind::Platform]
        .into_iter()
        .find_map(|k| text.strip_prefix(k.prefix()).map(|rest| (k, rest)))?;
    let (tenant, random) = match kind {
        TokenKind::Platform => (crate::platform::PLATFORM_TENANT, rest),
        TokenKind::Session | TokenKind::ApiKey => {
            let (digits, random) = rest.split_once('_')?;
            let canonical = !digits.is_empty()
                && digits.len() <= 20
                && digits.bytes().all(|b| b.is_ascii_digit())
                && !digits.starts_with('0');
            if !canonical {
                return None;
            }
            (TenantId(digits.parse().ok()?), random)
        }
    };
    let random_ok = random.len() == TOKEN_RANDOM_BYTES * 2
        && random
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !random_ok {
        return None;
    }
    Some(ParsedToken {
        kind,
        tenant,
        hash: token_hash(text),
    })
}

/// A new random token of `kind` for `tenant`, and its hash.
pub(crate) fn new_token(
    kind: TokenKind,
    tenant: TenantId,
) -> Result<(SecretToken, [u8; 32]), EngineError> {
    let mut random = [0u8; TOKEN_RANDOM_BYTES];
    OsRng
        .try_fill_bytes(&mut random)
        .map_err(|e| EngineError::Credential(format!("OS random numbers: {e}")))?;
    let mut text = String::with_capacity(TOKEN_BYTES_MAX);
    text.push_str(kind.prefix());
    if kind != TokenKind::Platform {
        text.push_str(&tenant.0.to_string());
        text.push('_');
    }
    for byte in random {
        text.push(char::from(HEX[usize::from(byte >> 4)]));
        text.push(char::from(HEX[usize::from(byte & 0x0F)]));
    }
    let hash = token_hash(&text);
    Ok((SecretToken(text), hash))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_roundtrip_and_embed_their_tenant() {
        for (kind, tenant) in [
            (TokenKind::Session, TenantId(1)),
            (TokenKind::ApiKey, TenantId(u64::MAX)),
            (TokenKind::Platform, TenantId(0)),
        ] {
            let (token, hash) = new_token(kind, tenant).unwrap();
            let parsed = parse_token(token.expose_secret()).unwrap();
            assert_eq!(parsed, ParsedToken { kind, tenant, hash });
            assert!(token.expose_secret().len() <= TOKEN_BYTES_MAX);
        }
        let (a, _) = new_token(TokenKind::Session, TenantId(5)).unwrap();
        let (b, _) = new_token(TokenKind::Session, TenantId(5)).unwrap();
        assert_ne!(a, b);
        assert!(a.expose_secret().starts_with("mct_5_"));
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        let random = "ab".repeat(32);
        assert!(parse_token(&format!("mct_7_{random}")).is_some());
        for bad in [
            String::new(),
            "mct_".into(),
            format!("mct_{random}"),
            format!("mct_0_{random}"),
            format!("mct_07_{random}"),
            format!("mct_+7_{random}"),
            format!("mct_7_{}", &random[1..]),
            format!("mct_7_{random}0"),
            format!("mct_7_{}", random.to_uppercase()),
            format!("mct_18446744073709551616_{random}"),
            format!("xyz_7_{random}"),
            format!("mcp_7_{random}"),
            format!("mck_7_{}", "g".repeat(64)),
            "mct_7_".to_string() + &"é".repeat(32),
            "a".repeat(10_000),
        ] {
            assert_eq!(parse_token(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let (token, _) = new_token(TokenKind::Session, TenantId(3)).unwrap();
        let shown = format!("{token:?}");
        assert!(!shown.contains(&token.expose_secret()[6..]), "{shown}");
        let hash = PasswordHash(DECOY_PASSWORD_HASH.into());
        assert_eq!(format!("{hash:?}"), "PasswordHash(<redacted>)");
    }

    #[test]
    fn the_decoy_hash_costs_what_a_real_one_does() {
        let parsed = argon2::password_hash::PasswordHash::new(DECOY_PASSWORD_HASH).unwrap();
        let params = Params::try_from(&parsed).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_PARALLELISM)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passwords_hash_with_production_parameters_and_verify() {
        let hash = hash_password("correct horse battery").await.unwrap();
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hash.check_shape().is_ok());
        assert!(
            verify_password("correct horse battery", Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !verify_password("correct horse battery!", Some(&hash))
                .await
                .unwrap()
        );
        assert!(!verify_password("anything at all", None).await.unwrap());
        assert!(PasswordHash("$argon2i$x".into()).check_shape().is_err());
        assert!(check_password_policy("short").is_err());
        assert!(check_password_policy(&"x".repeat(257)).is_err());
        assert!(check_password_policy(&"x".repeat(12)).is_ok());
        assert!(check_password_policy(&"x".repeat(256)).is_ok());
    }

    /// On a runtime with a single thread, a timer task keeps firing while a password is being
    /// hashed: the hash runs on the blocking pool, not on the thread that drives the tasks.
    #[test]
    fn hashing_leaves_the_runtime_thread_free() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU32, Ordering};
        use std::time::Duration;
        use tokio::time::MissedTickBehavior;

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let ticks = Arc::new(AtomicU32::new(0));
            let ticker = tokio::spawn({
                let ticks = Arc::clone(&ticks);
                async move {
                    let mut interval = tokio::time::interval(Duration::from_millis(1));
                    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
                    loop {
                        interval.tick().await;
                        ticks.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
            // Let the ticker take its first (immediate) tick before the hash starts.
            while ticks.load(Ordering::Relaxed) == 0 {
                tokio::task::yield_now().await;
            }
            let before = ticks.load(Ordering::Relaxed);
            let hash = hash_password("correct horse battery").await.unwrap();
            // Read before yielding: only ticks taken while the hash was running count.
            let during = ticks.load(Ordering::Relaxed) - before;
            ticker.abort();
            assert!(hash.check_shape().is_ok());
            // argon2id over 19 MiB takes milliseconds at the very least; a hash that held the
            // runtime thread would leave the ticker at zero.
            assert!(
                during >= 3,
                "the ticker fired {during} times while the password was hashed"
            );
        });
    }
}
