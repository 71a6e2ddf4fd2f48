//! Accounts: users, login sessions, API keys, and authentication.
//!
//! # Flows
//!
//! - A tenant admin creates users ([`Engine::create_user`]); each has one [`Role`], a unique
//!   email (normalized: trimmed, lowercase) and an argon2id password hash, computed off the
//!   async runtime *before* the command (the PHC string travels in the command; `apply` stays
//!   deterministic).
//! - [`Engine::login`] takes the tenant id, an email and a password. The login request names
//!   its tenant by id: the tenant comes from the credential for every later request (it is in
//!   the token), but a password cannot carry it, and emails are only unique per tenant. The
//!   server may let people type the tenant's slug instead and resolve it with
//!   [`Engine::platform_tenant_by_slug`]. A success returns a bearer token `mct_<tenant>_<hex>`
//!   ([`secret`] describes the format) whose SHA-256 is stored with its expiry (the tenant's
//!   `session_ttl_ms`, 12 h by default).
//! - [`Engine::authenticate`] turns a token (session, API key or platform) into a
//!   [`Principal`], reading only the shard of the tenant the token names. Every failure is
//!   [`EngineError::Unauthenticated`].
//! - Sessions are revoked one by one ([`Engine::logout`]), all of a user's at once
//!   ([`Engine::revoke_user_sessions`]), and automatically when a user is disabled or their
//!   password is set. A user keeps at most [`SESSIONS_PER_USER_MAX`] sessions: a new login
//!   removes expired ones and then the oldest.
//! - API keys ([`Engine::create_api_key`]) act with a role the admin chooses, narrowed by
//!   [`Scope`]s, with an optional expiry; shown in clear once, stored hashed. A key belongs to
//!   the tenant, not to the admin who made it: disabling that admin does not revoke it.
//!
//! # Authorization
//!
//! Every operation takes the caller's [`Principal`] (its tenant is the one it works on) and
//! checks a [`Permission`] before doing any work. Commands check again inside `apply`, against
//! the stored state of the actor (a user demoted or disabled, or a key revoked, between
//! `authenticate` and the command cannot slip through).
//!
//! Tenant 0 is the platform (see [`crate::platform`]): it has no users, and account commands
//! refuse to run there.

mod auth;
pub mod secret;

pub use self::auth::{Permission, Principal, Role, Scope, ScopeSet};
pub use self::secret::{PasswordHash, SecretToken};

use self::secret::TokenKind;
use crate::command::{Actor, Applied, Ctx, Rejection, reject};
use crate::platform::PLATFORM_TENANT;
use crate::tables::{
    API_KEYS, API_KEYS_BY_HASH, ApiKey, ApiKeyRef, MANUFACTURERS, PASSWORDS, PasswordCredential,
    RETAILERS, SESSIONS, SESSIONS_BY_USER, SessionRecord, TENANT_SETTINGS, USERS, USERS_BY_EMAIL,
    User, UserRef, UserSessionRef, UserStatus,
};
use crate::{Action, CommandOutput, Engine, EngineError, TenantId, now_ms};
use mercato_storage::{ApplyError, TenantReads};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Upper bound on an email address, in bytes (RFC 5321 path limit).
pub const EMAIL_BYTES_MAX: usize = 254;
/// Upper bound on a user's display name, in bytes.
pub const USER_NAME_BYTES_MAX: usize = 200;
/// Upper bound on an API key's name, in bytes.
pub const API_KEY_NAME_BYTES_MAX: usize = 100;
/// Sessions kept per user; a new login beyond it removes the oldest.
pub const SESSIONS_PER_USER_MAX: usize = 64;
/// Upper bound on one page of users.
pub const USERS_PAGE_MAX: usize = 500;
/// Upper bound on one page of API keys.
pub const API_KEYS_PAGE_MAX: usize = 500;

/// A new user as it travels in a command: the password is already hashed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUserRecord {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub password: PasswordHash,
}

/// The accounts domain's commands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountsAction {
    CreateUser(NewUserRecord),
    SetUserStatus {
        user_id: u64,
        status: UserStatus,
    },
    /// Replaces a user's password and revokes all their sessions.
    SetPassword {
        user_id: u64,
        password: PasswordHash,
    },
    /// A login: the actor must be the user.
    CreateSession {
        user_id: u64,
        token_hash: [u8; 32],
    },
    RevokeSession {
        token_hash: [u8; 32],
    },
    RevokeUserSessions {
        user_id: u64,
    },
    CreateApiKey {
        name: String,
        role: Role,
        scopes: ScopeSet,
        expires_at_ms: Option<u64>,
        key_hash: [u8; 32],
        display_prefix: String,
    },
    RevokeApiKey {
        key_id: u64,
    },
}

/// What an accounts command returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountsOutput {
    User(User),
    Session(SessionRecord),
    /// How many live sessions were revoked.
    SessionsRevoked(u32),
    ApiKey(ApiKey),
}

pub(crate) fn apply(action: &AccountsAction, ctx: &mut Ctx<'_, '_>) -> Applied<AccountsOutput> {
    if ctx.tx.tenant() == PLATFORM_TENANT {
        return reject(Rejection::Forbidden {
            reason: "tenant 0 is the platform; it has no accounts".into(),
        });
    }
    match action {
        AccountsAction::CreateUser(new) => {
            require(ctx, Permission::ManageUsers)?;
            Ok(AccountsOutput::User(insert_user(ctx, new)?))
        }
        AccountsAction::SetUserStatus { user_id, status } => {
            require(ctx, Permission::ManageUsers)?;
            let mut user = load_user(ctx, *user_id)?;
            if *ctx.actor == Actor::User(*user_id) && *status == UserStatus::Disabled {
                return reject(Rejection::Conflict {
                    code: "cannot_disable_self",
                    detail: "a user cannot disable themselves".into(),
                });
            }
            if user.status != *status {
                user.status = *status;
                user.updated_at_ms = ctx.at_ms;
                ctx.tx.put(&USERS, user_id, &user)?;
                if *status == UserStatus::Disabled {
                    revoke_all_sessions(ctx, *user_id)?;
                    ctx.audit("user.disable", format!("user/{user_id}"));
                } else {
                    ctx.audit("user.enable", format!("user/{user_id}"));
                }
            }
            Ok(AccountsOutput::User(user))
        }
        AccountsAction::SetPassword { user_id, password } => {
            require_self_or(ctx, *user_id, Permission::ManageUsers)?;
            let user = load_user(ctx, *user_id)?;
            set_password(ctx, *user_id, password)?;
            Ok(AccountsOutput::User(user))
        }
        AccountsAction::CreateSession {
            user_id,
            token_hash,
        } => {
            if *ctx.actor != Actor::User(*user_id) {
                return reject(Rejection::Forbidden {
                    reason: "only the user signs in as themselves".into(),
                });
            }
            let user = load_user(ctx, *user_id)?;
            if user.status != UserStatus::Active {
                return reject(Rejection::Conflict {
                    code: "user_disabled",
                    detail: format!("user {user_id} is disabled"),
                });
            }
            Ok(AccountsOutput::Session(create_session(
                ctx,
                *user_id,
                *token_hash,
            )?))
        }
        AccountsAction::RevokeSession { token_hash } => {
            let Some(mut session) = ctx.tx.get(&SESSIONS, token_hash)? else {
                return reject(not_found("session", "(token)"));
            };
            require_self_or(ctx, session.user_id, Permission::ManageUsers)?;
            if session.revoked_at_ms.is_none() {
                session.revoked_at_ms = Some(ctx.at_ms);
                ctx.tx.put(&SESSIONS, token_hash, &session)?;
                ctx.audit("session.revoke", format!("session/{}", session.id));
            }
            Ok(AccountsOutput::Session(session))
        }
        AccountsAction::RevokeUserSessions { user_id } => {
            require_self_or(ctx, *user_id, Permission::ManageUsers)?;
            load_user(ctx, *user_id)?;
            Ok(AccountsOutput::SessionsRevoked(revoke_all_sessions(
                ctx, *user_id,
            )?))
        }
        AccountsAction::CreateApiKey {
            name,
            role,
            scopes,
            expires_at_ms,
            key_hash,
            display_prefix,
        } => {
            require(ctx, Permission::ManageApiKeys)?;
            let name =
                check_text("name", name, API_KEY_NAME_BYTES_MAX).map_err(ApplyError::Rejected)?;
            check_role_binding(ctx, role)?;
            if scopes.is_empty() {
                return reject(invalid("scopes", "at least one scope is required"));
            }
            if expires_at_ms.is_some_and(|at| at <= ctx.at_ms) {
                return reject(invalid("expires_at_ms", "must be in the future"));
            }
            if display_prefix.len() > 32 {
                return reject(invalid("display_prefix", "at most 32 bytes"));
            }
            if ctx.tx.get(&API_KEYS_BY_HASH, key_hash)?.is_some() {
                return reject(Rejection::Conflict {
                    code: "api_key_exists",
                    detail: "an API key with this secret exists".into(),
                });
            }
            let id = ctx.next_id("api_key")?;
            let key = ApiKey {
                id,
                name,
                role: *role,
                scopes: *scopes,
                display_prefix: display_prefix.clone(),
                created_by: ctx.actor.clone(),
                created_at_ms: ctx.at_ms,
                expires_at_ms: *expires_at_ms,
                revoked_at_ms: None,
            };
            ctx.tx.put(&API_KEYS, &id, &key)?;
            ctx.tx.put(&API_KEYS_BY_HASH, key_hash, &ApiKeyRef(id))?;
            ctx.audit("api_key.create", format!("api_key/{id}"));
            Ok(AccountsOutput::ApiKey(key))
        }
        AccountsAction::RevokeApiKey { key_id } => {
            require(ctx, Permission::ManageApiKeys)?;
            let Some(mut key) = ctx.tx.get(&API_KEYS, key_id)? else {
                return reject(not_found("api_key", key_id));
            };
            if key.revoked_at_ms.is_none() {
                key.revoked_at_ms = Some(ctx.at_ms);
                ctx.tx.put(&API_KEYS, key_id, &key)?;
                ctx.audit("api_key.revoke", format!("api_key/{key_id}"));
            }
            Ok(AccountsOutput::ApiKey(key))
        }
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> Rejection {
    Rejection::InvalidField {
        field: field.into(),
        reason: reason.into(),
    }
}

fn not_found(resource: &'static str, id: impl fmt::Display) -> Rejection {
    Rejection::NotFound {
        resource,
        id: id.to_string(),
    }
}

/// Trims `value` and checks it is 1..=`max` bytes without control characters.
fn check_text(field: &str, value: &str, max: usize) -> Result<String, Rejection> {
    let value = value.trim();
    if value.is_empty() || value.len() > max {
        return Err(invalid(field, format!("must be 1..={max} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(value.to_string())
}

/// Checks a user's display name (trimmed, 1..=[`USER_NAME_BYTES_MAX`] bytes).
pub(crate) fn check_user_name(name: &str) -> Result<String, Rejection> {
    check_text("name", name, USER_NAME_BYTES_MAX)
}

/// Normalizes an email (trimmed, lowercase) and checks its shape: one `@`, a non-empty local
/// part, a domain with a dot, no spaces or control characters, at most [`EMAIL_BYTES_MAX`].
/// Deliverability is not checked.
pub fn normalize_email(email: &str) -> Result<String, Rejection> {
    let bad = |reason: &str| Err(invalid("email", reason));
    let too_long = || bad(&format!("must be 1..={EMAIL_BYTES_MAX} bytes"));
    // Bounded before lowercasing, so oversized input costs no allocation.
    let email = email.trim();
    if email.len() > EMAIL_BYTES_MAX {
        return too_long();
    }
    let email = email.to_lowercase();
    if email.is_empty() || email.len() > EMAIL_BYTES_MAX {
        return too_long();
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("must not contain spaces");
    }
    let Some((local, domain)) = email.split_once('@') else {
        return bad("must contain @");
    };
    let domain_ok = !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..");
    if local.is_empty() || !domain_ok {
        return bad("must look like name@example.com");
    }
    Ok(email)
}

/// Role ids must name something (0 is never an id). The cheap shape check, done before any
/// argon2 work; [`check_role_binding`] checks the party exists when the command applies.
fn check_role(role: &Role) -> Result<(), Rejection> {
    match role {
        Role::ManufacturerUser { manufacturer_id: 0 } => {
            Err(invalid("role.manufacturer_id", "must be >= 1"))
        }
        Role::Buyer { retailer_id: 0 } | Role::BuyerApprover { retailer_id: 0 } => {
            Err(invalid("role.retailer_id", "must be >= 1"))
        }
        _ => Ok(()),
    }
}

/// A role bound to a manufacturer or a retailer binds only to one that exists in this tenant
/// (the tables are tenant-scoped, so another tenant's id is as absent as an unused one).
fn check_role_binding(ctx: &Ctx<'_, '_>, role: &Role) -> Applied<()> {
    check_role(role).map_err(ApplyError::Rejected)?;
    match role {
        Role::ManufacturerUser { manufacturer_id } => {
            if ctx.tx.get(&MANUFACTURERS, manufacturer_id)?.is_none() {
                return reject(invalid(
                    "role.manufacturer_id",
                    format!("no manufacturer {manufacturer_id}"),
                ));
            }
        }
        Role::Buyer { retailer_id } | Role::BuyerApprover { retailer_id } => {
            if ctx.tx.get(&RETAILERS, retailer_id)?.is_none() {
                return reject(invalid(
                    "role.retailer_id",
                    format!("no retailer {retailer_id}"),
                ));
            }
        }
        Role::TenantAdmin | Role::Reviewer => {}
    }
    Ok(())
}

/// The actor's current principal, from the stored state (`None` for a user or key that no
/// longer exists, is disabled, revoked or expired).
fn stored_principal(ctx: &Ctx<'_, '_>) -> Applied<Option<Principal>> {
    let tenant = ctx.tx.tenant();
    Ok(match ctx.actor {
        Actor::User(id) => ctx
            .tx
            .get(&USERS, id)?
            .filter(|u| u.status == UserStatus::Active)
            .map(|u| Principal::user(tenant, *id, u.role)),
        Actor::ApiKey(id) => ctx
            .tx
            .get(&API_KEYS, id)?
            .filter(|k| api_key_usable(k, ctx.at_ms))
            .map(|k| Principal::api_key(tenant, *id, k.role, k.scopes)),
        Actor::Platform | Actor::System => None,
    })
}

/// Refuses the command unless the actor (as stored now) may do `permission`. The platform and
/// the system are trusted: they reach tenant commands only through engine code.
pub(crate) fn require(ctx: &Ctx<'_, '_>, permission: Permission) -> Applied<()> {
    if matches!(ctx.actor, Actor::Platform | Actor::System) {
        return Ok(());
    }
    match stored_principal(ctx)? {
        Some(p) if p.can(permission) => Ok(()),
        _ => reject(Rejection::Forbidden {
            reason: format!("{} may not {permission}", ctx.actor),
        }),
    }
}

/// Like [`require`], but the user `user_id` acting on themselves is always allowed.
fn require_self_or(ctx: &Ctx<'_, '_>, user_id: u64, permission: Permission) -> Applied<()> {
    if *ctx.actor == Actor::User(user_id) {
        return Ok(());
    }
    require(ctx, permission)
}

fn api_key_usable(key: &ApiKey, now_ms: u64) -> bool {
    key.revoked_at_ms.is_none() && key.expires_at_ms.is_none_or(|at| now_ms < at)
}

fn load_user(ctx: &Ctx<'_, '_>, user_id: u64) -> Applied<User> {
    match ctx.tx.get(&USERS, &user_id)? {
        Some(user) => Ok(user),
        None => reject(not_found("user", user_id)),
    }
}

/// Validates and inserts a user (the caller checked permissions).
pub(crate) fn insert_user(ctx: &mut Ctx<'_, '_>, new: &NewUserRecord) -> Applied<User> {
    let email = normalize_email(&new.email).map_err(ApplyError::Rejected)?;
    let name = check_text("name", &new.name, USER_NAME_BYTES_MAX).map_err(ApplyError::Rejected)?;
    check_role_binding(ctx, &new.role)?;
    new.password.check_shape().map_err(ApplyError::Rejected)?;
    if ctx.tx.get(&USERS_BY_EMAIL, &email)?.is_some() {
        return reject(Rejection::Conflict {
            code: "email_taken",
            detail: format!("a user with email {email} exists"),
        });
    }
    let id = ctx.next_id("user")?;
    let user = User {
        id,
        email: email.clone(),
        name,
        role: new.role,
        status: UserStatus::Active,
        created_at_ms: ctx.at_ms,
        updated_at_ms: ctx.at_ms,
    };
    ctx.tx.put(&USERS, &id, &user)?;
    ctx.tx.put(&USERS_BY_EMAIL, &email, &UserRef(id))?;
    ctx.tx.put(
        &PASSWORDS,
        &id,
        &PasswordCredential {
            hash: new.password.clone(),
            set_at_ms: ctx.at_ms,
        },
    )?;
    ctx.audit("user.create", format!("user/{id}"));
    Ok(user)
}

/// The user with this (normalized) email, if any.
pub(crate) fn user_by_email(ctx: &Ctx<'_, '_>, email: &str) -> Applied<Option<User>> {
    let Some(UserRef(id)) = ctx.tx.get(&USERS_BY_EMAIL, &email.to_string())? else {
        return Ok(None);
    };
    Ok(ctx.tx.get(&USERS, &id)?)
}

/// Replaces a user's password and revokes their sessions.
pub(crate) fn set_password(
    ctx: &mut Ctx<'_, '_>,
    user_id: u64,
    password: &PasswordHash,
) -> Applied<()> {
    password.check_shape().map_err(ApplyError::Rejected)?;
    ctx.tx.put(
        &PASSWORDS,
        &user_id,
        &PasswordCredential {
            hash: password.clone(),
            set_at_ms: ctx.at_ms,
        },
    )?;
    revoke_all_sessions(ctx, user_id)?;
    ctx.audit("user.password_set", format!("user/{user_id}"));
    Ok(())
}

fn create_session(
    ctx: &mut Ctx<'_, '_>,
    user_id: u64,
    token_hash: [u8; 32],
) -> Applied<SessionRecord> {
    if ctx.tx.get(&SESSIONS, &token_hash)?.is_some() {
        return reject(Rejection::Conflict {
            code: "session_exists",
            detail: "a session with this token exists".into(),
        });
    }
    // Keep at most SESSIONS_PER_USER_MAX rows per user (the index never holds more, so one
    // bounded scan sees them all): drop expired ones, then the oldest.
    let existing = ctx
        .tx
        .scan(&SESSIONS_BY_USER, &user_id, None, SESSIONS_PER_USER_MAX)?;
    let mut kept = Vec::with_capacity(existing.len());
    for (key, r) in existing {
        if r.expires_at_ms <= ctx.at_ms {
            ctx.tx.delete(&SESSIONS_BY_USER, &key)?;
            ctx.tx.delete(&SESSIONS, &r.token_hash)?;
        } else {
            kept.push((key, r));
        }
    }
    let evict = (kept.len() + 1).saturating_sub(SESSIONS_PER_USER_MAX);
    for (key, r) in kept.into_iter().take(evict) {
        ctx.tx.delete(&SESSIONS_BY_USER, &key)?;
        if let Some(old) = ctx.tx.get(&SESSIONS, &r.token_hash)? {
            if old.revoked_at_ms.is_none() {
                ctx.audit("session.revoke", format!("session/{}", old.id));
            }
            ctx.tx.delete(&SESSIONS, &r.token_hash)?;
        }
    }
    let ttl_ms = ctx
        .tx
        .get(&TENANT_SETTINGS, &())?
        .unwrap_or_default()
        .session_ttl_ms;
    let id = ctx.next_id("session")?;
    let session = SessionRecord {
        id,
        user_id,
        created_at_ms: ctx.at_ms,
        expires_at_ms: ctx.at_ms.saturating_add(ttl_ms),
        revoked_at_ms: None,
    };
    ctx.tx.put(&SESSIONS, &token_hash, &session)?;
    ctx.tx.put(
        &SESSIONS_BY_USER,
        &(user_id, id),
        &UserSessionRef {
            token_hash,
            expires_at_ms: session.expires_at_ms,
        },
    )?;
    ctx.audit("session.create", format!("session/{id}"));
    Ok(session)
}

/// Revokes every live session of a user; returns how many.
fn revoke_all_sessions(ctx: &mut Ctx<'_, '_>, user_id: u64) -> Applied<u32> {
    let refs = ctx
        .tx
        .scan(&SESSIONS_BY_USER, &user_id, None, SESSIONS_PER_USER_MAX)?;
    let mut revoked = 0;
    for (_, r) in refs {
        let Some(mut session) = ctx.tx.get(&SESSIONS, &r.token_hash)? else {
            continue;
        };
        if session.revoked_at_ms.is_none() && session.expires_at_ms > ctx.at_ms {
            session.revoked_at_ms = Some(ctx.at_ms);
            ctx.tx.put(&SESSIONS, &r.token_hash, &session)?;
            ctx.audit("session.revoke", format!("session/{}", session.id));
            revoked += 1;
        }
    }
    Ok(revoked)
}

/// A new user, as a tenant admin enters it. `Debug` hides the password.
#[derive(Clone)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub password: String,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A new API key's settings.
#[derive(Clone, Debug)]
pub struct NewApiKey {
    pub name: String,
    pub role: Role,
    pub scopes: ScopeSet,
    pub expires_at_ms: Option<u64>,
}

/// A created API key and its secret, shown once.
#[derive(Clone, Debug)]
pub struct CreatedApiKey {
    pub key: ApiKey,
    pub secret: SecretToken,
}

/// A successful login.
#[derive(Clone, Debug)]
pub struct Session {
    /// The bearer token, shown once.
    pub token: SecretToken,
    pub session_id: u64,
    pub principal: Principal,
    pub expires_at_ms: u64,
}

/// One page of a cursor-paginated list: pass `next_after` as `after` for the next page
/// (`None`: this was the last page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_after: Option<u64>,
}

/// Reads one page of a table keyed by increasing ids.
pub(crate) fn page<V: mercato_storage::Record>(
    read: &impl TenantReads,
    table: &mercato_storage::TableDef<u64, V>,
    after: Option<u64>,
    limit: usize,
    limit_max: usize,
) -> Result<Page<V>, EngineError> {
    let limit = limit.clamp(1, limit_max);
    let rows = read.scan(table, &(), after.as_ref(), limit)?;
    let next_after = if rows.len() == limit {
        rows.last().map(|(k, _)| *k)
    } else {
        None
    };
    Ok(Page {
        items: rows.into_iter().map(|(_, v)| v).collect(),
        next_after,
    })
}

fn accounts_output(output: CommandOutput) -> Result<AccountsOutput, EngineError> {
    match output {
        CommandOutput::Accounts(o) => Ok(o),
        other => Err(EngineError::UnexpectedOutput(format!("{other:?}"))),
    }
}

fn unexpected(output: AccountsOutput) -> EngineError {
    EngineError::UnexpectedOutput(format!("{output:?}"))
}

/// Refuses principals of the platform tenant for tenant operations.
fn tenant_of(principal: &Principal) -> Result<TenantId, EngineError> {
    if principal.tenant == PLATFORM_TENANT {
        return Err(EngineError::Forbidden(
            "the platform principal has no tenant accounts".into(),
        ));
    }
    Ok(principal.tenant)
}

impl Engine {
    async fn run_accounts(
        &self,
        tenant: TenantId,
        actor: Actor,
        action: AccountsAction,
    ) -> Result<AccountsOutput, EngineError> {
        accounts_output(self.run(tenant, actor, Action::Accounts(action)).await?)
    }

    /// Creates a user in the principal's tenant (needs [`Permission::ManageUsers`]). The
    /// password is checked against the policy and hashed off the runtime before the command.
    pub async fn create_user(
        &self,
        principal: &Principal,
        new: NewUser,
    ) -> Result<User, EngineError> {
        let tenant = tenant_of(principal)?;
        principal.require(Permission::ManageUsers)?;
        // Cheap checks first, so that bad input costs no argon2 work.
        normalize_email(&new.email).map_err(EngineError::Rejected)?;
        check_text("name", &new.name, USER_NAME_BYTES_MAX).map_err(EngineError::Rejected)?;
        check_role(&new.role).map_err(EngineError::Rejected)?;
        secret::check_password_policy(&new.password).map_err(EngineError::Rejected)?;
        let password = secret::hash_password(&new.password).await?;
        let action = AccountsAction::CreateUser(NewUserRecord {
            email: new.email,
            name: new.name,
            role: new.role,
            password,
        });
        match self
            .run_accounts(tenant, principal.actor.clone(), action)
            .await?
        {
            AccountsOutput::User(user) => Ok(user),
            other => Err(unexpected(other)),
        }
    }

    /// A user of the principal's tenant (the user themselves, or [`Permission::ManageUsers`]).
    pub fn user(&self, principal: &Principal, user_id: u64) -> Result<Option<User>, EngineError> {
        let tenant = tenant_of(principal)?;
        if principal.actor != Actor::User(user_id) {
            principal.require(Permission::ManageUsers)?;
        }
        Ok(self.storage.read(tenant)?.get(&USERS, &user_id)?)
    }

    /// Users of the principal's tenant by id, after `after`, at most `limit` (capped at
    /// [`USERS_PAGE_MAX`]). Needs [`Permission::ManageUsers`].
    pub fn list_users(
        &self,
        principal: &Principal,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page<User>, EngineError> {
        let tenant = tenant_of(principal)?;
        principal.require(Permission::ManageUsers)?;
        page(
            &self.storage.read(tenant)?,
            &USERS,
            after,
            limit,
            USERS_PAGE_MAX,
        )
    }

    async fn set_user_status(
        &self,
        principal: &Principal,
        user_id: u64,
        status: UserStatus,
    ) -> Result<User, EngineError> {
        let tenant = tenant_of(principal)?;
        principal.require(Permission::ManageUsers)?;
        let action = AccountsAction::SetUserStatus { user_id, status };
        match self
            .run_accounts(tenant, principal.actor.clone(), action)
            .await?
        {
            AccountsOutput::User(user) => Ok(user),
            other => Err(unexpected(other)),
        }
    }

    /// Disables a user and revokes all their sessions (needs [`Permission::ManageUsers`]; a
    /// user cannot disable themselves).
    pub async fn disable_user(
        &self,
        principal: &Principal,
        user_id: u64,
    ) -> Result<User, EngineError> {
        self.set_user_status(principal, user_id, UserStatus::Disabled)
            .await
    }

    /// Lets a disabled user sign in again (needs [`Permission::ManageUsers`]).
    pub async fn enable_user(
        &self,
        principal: &Principal,
        user_id: u64,
    ) -> Result<User, EngineError> {
        self.set_user_status(principal, user_id, UserStatus::Active)
            .await
    }

    /// A signed-in user changes their own password, proving the current one. All their
    /// sessions are revoked (they sign in again with the new password).
    pub async fn change_password(
        &self,
        principal: &Principal,
        current_password: &str,
        new_password: &str,
    ) -> Result<(), EngineError> {
        let tenant = tenant_of(principal)?;
        let Actor::User(user_id) = principal.actor else {
            return Err(EngineError::Forbidden(
                "only a signed-in user changes their own password".into(),
            ));
        };
        secret::check_password_policy(new_password).map_err(EngineError::Rejected)?;
        let stored = self.storage.read(tenant)?.get(&PASSWORDS, &user_id)?;
        let Some(stored) = stored else {
            return Err(EngineError::Unauthenticated);
        };
        if !secret::verify_password(current_password, Some(&stored.hash)).await? {
            return Err(EngineError::Rejected(invalid(
                "current_password",
                "does not match",
            )));
        }
        let password = secret::hash_password(new_password).await?;
        self.run_accounts(
            tenant,
            principal.actor.clone(),
            AccountsAction::SetPassword { user_id, password },
        )
        .await?;
        Ok(())
    }

    /// An admin sets another user's password (needs [`Permission::ManageUsers`]); the user's
    /// sessions are revoked.
    pub async fn reset_password(
        &self,
        principal: &Principal,
        user_id: u64,
        new_password: &str,
    ) -> Result<(), EngineError> {
        let tenant = tenant_of(principal)?;
        principal.require(Permission::ManageUsers)?;
        secret::check_password_policy(new_password).map_err(EngineError::Rejected)?;
        let password = secret::hash_password(new_password).await?;
        self.run_accounts(
            tenant,
            principal.actor.clone(),
            AccountsAction::SetPassword { user_id, password },
        )
        .await?;
        Ok(())
    }

    /// Signs a user in. Every failure (unknown tenant or email, wrong password, disabled user,
    /// oversized input) is [`EngineError::Unauthenticated`], and an unknown email costs the
    /// same argon2 work as a wrong password. Rate limiting attempts is the server's job.
    pub async fn login(
        &self,
        tenant: TenantId,
        email: &str,
        password: &str,
    ) -> Result<Session, EngineError> {
        if tenant == PLATFORM_TENANT || password.len() > secret::PASSWORD_BYTES_MAX {
            return Err(EngineError::Unauthenticated);
        }
        let Ok(email) = normalize_email(email) else {
            return Err(EngineError::Unauthenticated);
        };
        let (user, stored) = {
            let read = self.storage.read(tenant)?;
            match read.get(&USERS_BY_EMAIL, &email)? {
                Some(UserRef(id)) => (read.get(&USERS, &id)?, read.get(&PASSWORDS, &id)?),
                None => (None, None),
            }
        };
        let verified = secret::verify_password(password, stored.as_ref().map(|c| &c.hash)).await?;
        let user = match user {
            Some(user) if verified && user.status == UserStatus::Active => user,
            _ => return Err(EngineError::Unauthenticated),
        };
        let (token, token_hash) = secret::new_token(TokenKind::Session, tenant)?;
        let action = AccountsAction::CreateSession {
            user_id: user.id,
            token_hash,
        };
        let session = match self
            .run_accounts(tenant, Actor::User(user.id), action)
            .await
        {
            Ok(AccountsOutput::Session(session)) => session,
            Ok(other) => return Err(unexpected(other)),
            // Disabled or removed between the read and the command.
            Err(EngineError::Rejected(_)) => return Err(EngineError::Unauthenticated),
            Err(e) => return Err(e),
        };
        Ok(Session {
            token,
            session_id: session.id,
            principal: Principal::user(tenant, user.id, user.role),
            expires_at_ms: session.expires_at_ms,
        })
    }

    /// Revokes the session of this token (logout). A token that is not a live session is
    /// [`EngineError::Unauthenticated`].
    pub async fn logout(&self, token: &str) -> Result<(), EngineError> {
        let parsed = secret::parse_token(token).ok_or(EngineError::Unauthenticated)?;
        if parsed.kind != TokenKind::Session || parsed.tenant == PLATFORM_TENANT {
            return Err(EngineError::Unauthenticated);
        }
        let session = self
            .storage
            .read(parsed.tenant)?
            .get(&SESSIONS, &parsed.hash)?
            .filter(|s| s.revoked_at_ms.is_none())
            .ok_or(EngineError::Unauthenticated)?;
        let action = AccountsAction::RevokeSession {
            token_hash: parsed.hash,
        };
        self.run_accounts(parsed.tenant, Actor::User(session.user_id), action)
            .await?;
        Ok(())
    }

    /// Revokes all live sessions of a user (the user themselves, or
    /// [`Permission::ManageUsers`]); returns how many were live.
    pub async fn revoke_user_sessions(
        &self,
        principal: &Principal,
        user_id: u64,
    ) -> Result<u32, EngineError> {
        let tenant = tenant_of(principal)?;
        if principal.actor != Actor::User(user_id) {
            principal.require(Permission::ManageUsers)?;
        }
        let action = AccountsAction::RevokeUserSessions { user_id };
        match self
            .run_accounts(tenant, principal.actor.clone(), action)
            .await?
        {
            AccountsOutput::SessionsRevoked(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }

    /// Creates an API key (needs [`Permission::ManageApiKeys`]). The secret is in the result
    /// and nowhere else.
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        new: NewApiKey,
    ) -> Result<CreatedApiKey, EngineError> {
        let tenant = tenant_of(principal)?;
        principal.require(Permission::ManageApiKeys)?;
        let (secret, key_hash) = secret::new_token(TokenKind::ApiKey, tenant)?;
        // `mck_<tenant>_` and four random characters.
        let shown = secret.expose_secret();
        let display_prefix = shown[..shown.len() - 60].to_string();
        let action = AccountsAction::CreateApiKey {
            name: new.name,
            role: new.role,
            scopes: new.scopes,
            expires_at_ms: new.expires_at_ms,
            key_hash,
            display_prefix,
        };
        match self
            .run_accounts(tenant, principal.actor.clone(), action)
            .await?
        {
            AccountsOutput::ApiKey(key) => Ok(CreatedApiKey { key, secret }),
            other => Err(unexpected(other)),
        }
    }

    /// API keys of the principal's tenant (without secrets), by id, after `after`, at most
    /// `limit` (capped at [`API_KEYS_PAGE_MAX`]). Needs [`Permission::ManageApiKeys`].
    pub fn list_api_keys(
        &self,
        principal: &Principal,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page<ApiKey>, EngineError> {
        let tenant = tenant_of(principal)?;
        principal.require(Permission::ManageApiKeys)?;
        page(
            &self.storage.read(tenant)?,
            &API_KEYS,
            after,
            limit,
            API_KEYS_PAGE_MAX,
        )
    }

    /// Revokes an API key (needs [`Permission::ManageApiKeys`]); revoking twice is a no-op.
    pub async fn revoke_api_key(
        &self,
        principal: &Principal,
        key_id: u64,
    ) -> Result<ApiKey, EngineError> {
        let tenant = tenant_of(principal)?;
        principal.require(Permission::ManageApiKeys)?;
        match self
            .run_accounts(
                tenant,
                principal.actor.clone(),
                AccountsAction::RevokeApiKey { key_id },
            )
            .await?
        {
            AccountsOutput::ApiKey(key) => Ok(key),
            other => Err(unexpected(other)),
        }
    }

    /// Turns a bearer token into a principal, now. Reads only the shard of the tenant the
    /// token names; every failure is [`EngineError::Unauthenticated`].
    pub fn authenticate(&self, token: &str) -> Result<Principal, EngineError> {
        self.authenticate_at(token, now_ms())
    }

    /// [`Engine::authenticate`] as of `now_ms` (expiry is checked against it). For tests and
    /// tools; the server uses [`Engine::authenticate`].
    pub fn authenticate_at(&self, token: &str, now_ms: u64) -> Result<Principal, EngineError> {
        let parsed = secret::parse_token(token).ok_or(EngineError::Unauthenticated)?;
        let read = self.storage.read(parsed.tenant)?;
        let principal = match parsed.kind {
            TokenKind::Platform => crate::platform::authenticate_platform(&read, &parsed.hash)?,
            TokenKind::Session => {
                let session = read
                    .get(&SESSIONS, &parsed.hash)?
                    .filter(|s| s.revoked_at_ms.is_none() && now_ms < s.expires_at_ms);
                match session {
                    Some(s) => read
                        .get(&USERS, &s.user_id)?
                        .filter(|u| u.status == UserStatus::Active)
                        .map(|u| Principal::user(parsed.tenant, u.id, u.role)),
                    None => None,
                }
            }
            TokenKind::ApiKey => match read.get(&API_KEYS_BY_HASH, &parsed.hash)? {
                Some(ApiKeyRef(id)) => read
                    .get(&API_KEYS, &id)?
                    .filter(|k| api_key_usable(k, now_ms))
                    .map(|k| Principal::api_key(parsed.tenant, id, k.role, k.scopes)),
                None => None,
            },
        };
        principal.ok_or(EngineError::Unauthenticated)
    }
}
