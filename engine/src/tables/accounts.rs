//! Accounts tables (ids 10..=29): users and their credentials, sessions, API keys and tenant
//! settings in every tenant; the platform credential and the tenant registry in the platform
//! tenant ([`crate::platform::PLATFORM_TENANT`], `TenantId(0)`).
//!
//! Secrets never reach disk in clear: passwords are argon2id PHC strings, session tokens and API
//! keys are stored as SHA-256 of the whole token text (which embeds the tenant id, so a hash is
//! also bound to its tenant).

use crate::accounts::{PasswordHash, Role, ScopeSet};
use mercato_storage::{Record, TableDef};
use serde::{Deserialize, Serialize};

/// Users of the tenant, by id (`next_id("user")`).
pub const USERS: TableDef<u64, User> = TableDef::new(10, "users");
/// Unique index: normalized (trimmed, lowercase) email -> user id.
pub const USERS_BY_EMAIL: TableDef<String, UserRef> = TableDef::new(11, "users_by_email");
/// Password hashes, by user id; kept apart from [`USERS`] so listing users never loads them.
pub const PASSWORDS: TableDef<u64, PasswordCredential> = TableDef::new(12, "passwords");
/// Sessions (bearer tokens from a login), by SHA-256 of the token text.
pub const SESSIONS: TableDef<[u8; 32], SessionRecord> = TableDef::new(13, "sessions");
/// A user's sessions, by `(user id, session id)`: what "revoke all" and the per-user cap walk.
/// At most [`crate::accounts::SESSIONS_PER_USER_MAX`] rows per user.
pub const SESSIONS_BY_USER: TableDef<(u64, u64), UserSessionRef> =
    TableDef::new(14, "sessions_by_user");
/// API keys, by id (`next_id("api_key")`).
pub const API_KEYS: TableDef<u64, ApiKey> = TableDef::new(15, "api_keys");
/// Unique index: SHA-256 of the key text -> API key id.
pub const API_KEYS_BY_HASH: TableDef<[u8; 32], ApiKeyRef> = TableDef::new(16, "api_keys_by_hash");
/// The tenant's settings (one row; defaults when absent).
pub const TENANT_SETTINGS: TableDef<(), TenantSettings> = TableDef::new(17, "tenant_settings");

/// Platform tenant only: the platform admin credential (one row).
pub const PLATFORM_CREDENTIAL: TableDef<(), PlatformCredential> =
    TableDef::new(20, "platform_credential");
/// Platform tenant only: the tenant registry, by tenant id (`next_id("tenant")`, so ids >= 1).
pub const TENANT_REGISTRY: TableDef<u64, TenantEntry> = TableDef::new(21, "tenant_registry");
/// Platform tenant only: unique index slug -> tenant id.
pub const TENANTS_BY_SLUG: TableDef<String, TenantRef> = TableDef::new(22, "tenants_by_slug");

/// Whether a user may sign in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserStatus {
    Active,
    Disabled,
}

/// A person who signs in to one tenant, with exactly one role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    /// Normalized: trimmed and lowercase; unique in the tenant.
    pub email: String,
    pub name: String,
    pub role: Role,
    pub status: UserStatus,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

impl Record for User {
    const KIND: u16 = 10;
    const VERSION: u16 = 1;
}

/// A reference to a user (value of the email index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRef(pub u64);

impl Record for UserRef {
    const KIND: u16 = 11;
    const VERSION: u16 = 1;
}

/// A user's password, as an argon2id PHC string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordCredential {
    pub hash: PasswordHash,
    pub set_at_ms: u64,
}

impl Record for PasswordCredential {
    const KIND: u16 = 12;
    const VERSION: u16 = 1;
}

/// A login session. Only the SHA-256 of its token is stored (as the key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// `next_id("session")`: orders a user's sessions oldest first.
    pub id: u64,
    pub user_id: u64,
    pub created_at_ms: u64,
    pub expires_at_ms: u64,
    pub revoked_at_ms: Option<u64>,
}

impl Record for SessionRecord {
    const KIND: u16 = 13;
    const VERSION: u16 = 1;
}

/// Where a user's session lives (value of [`SESSIONS_BY_USER`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSessionRef {
    pub token_hash: [u8; 32],
    pub expires_at_ms: u64,
}

impl Record for UserSessionRef {
    const KIND: u16 = 14;
    const VERSION: u16 = 1;
}

/// An integration's credential. It acts with `role`, narrowed to `scopes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: u64,
    pub name: String,
    pub role: Role,
    pub scopes: ScopeSet,
    /// The first characters of the key text (`mck_<tenant>_` and 4 random characters) so that
    /// people can tell keys apart in a list; not enough to guess the key.
    pub display_prefix: String,
    pub created_by: crate::Actor,
    pub created_at_ms: u64,
    pub expires_at_ms: Option<u64>,
    pub revoked_at_ms: Option<u64>,
}

impl Record for ApiKey {
    const KIND: u16 = 15;
    const VERSION: u16 = 1;
}

/// A reference to an API key (value of the hash index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRef(pub u64);

impl Record for ApiKeyRef {
    const KIND: u16 = 16;
    const VERSION: u16 = 1;
}

/// Per-tenant settings of the accounts domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantSettings {
    /// Lifetime of a login session.
    pub session_ttl_ms: u64,
}

impl Default for TenantSettings {
    fn default() -> Self {
        TenantSettings {
            session_ttl_ms: crate::tenancy::SESSION_TTL_MS_DEFAULT,
        }
    }
}

impl Record for TenantSettings {
    const KIND: u16 = 17;
    const VERSION: u16 = 1;
}

/// The platform admin credential: SHA-256 of the platform token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformCredential {
    pub token_hash: [u8; 32],
    pub created_at_ms: u64,
    pub rotated_at_ms: Option<u64>,
}

impl Record for PlatformCredential {
    const KIND: u16 = 20;
    const VERSION: u16 = 1;
}

/// Where a tenant is in its creation (see [`crate::platform`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TenantStatus {
    /// Registered (id allocated); its profile and first admin may not exist yet. Calling
    /// `platform_create_tenant` again with the same slug, name and admin email completes it.
    Creating,
    /// Profile and first admin exist.
    Active,
}

/// One tenant in the platform's registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantEntry {
    pub id: u64,
    pub slug: String,
    pub name: String,
    /// The first admin's normalized email (what a retry must repeat).
    pub admin_email: String,
    pub admin_user_id: Option<u64>,
    pub status: TenantStatus,
    pub created_at_ms: u64,
    pub activated_at_ms: Option<u64>,
}

impl Record for TenantEntry {
    const KIND: u16 = 21;
    const VERSION: u16 = 1;
}

/// A reference to a tenant (value of the slug index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRef(pub u64);

impl Record for TenantRef {
    const KIND: u16 = 22;
    const VERSION: u16 = 1;
}
