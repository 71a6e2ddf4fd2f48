//! `/v1` routes of accounts: sign-in and sign-out, the caller's own identity and password,
//! users, API keys, the tenant's profile and settings, and the audit log.
//!
//! Every route acts on the caller's tenant (from the credential). Passwords are hashed and
//! verified by the engine on the blocking pool; no handler hashes on the async runtime.

use crate::api::auth::{bearer_token, unauthenticated};
use crate::api::login_guard::{ClientAddress, login_guard};
use crate::api::{
    Auth, ListParams, ListResponse, blocking, created, no_content, ok_json, read_json, read_list,
    require,
};
use crate::app::AppState;
use crate::problem::ApiError;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use mercato_engine::accounts::{
    NewApiKey, NewUser, Permission, Principal, Role, Scope, ScopeSet, USER_NAME_BYTES_MAX,
    USERS_PAGE_MAX,
};
use mercato_engine::audit::{AuditQuery, ChainCheck};
use mercato_engine::tables::{ApiKey, AuditEntry, TenantSettings, User, UserStatus};
use mercato_engine::{Actor, EngineError, Rejection, TenantId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Rows a filtered user list examines per request before it answers with what it found (and
/// a cursor to continue).
pub const USERS_FILTER_SCAN_MAX: usize = 10_000;
/// Most scopes named in one API key request (there are fewer distinct scopes than this).
pub const API_KEY_SCOPES_MAX: usize = 16;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user))
        .routes(routes!(disable_user))
        .routes(routes!(enable_user))
        .routes(routes!(reset_password))
        .routes(routes!(revoke_sessions))
        .routes(routes!(list_api_keys, create_api_key))
        .routes(routes!(revoke_api_key))
        .routes(routes!(get_tenant))
        .routes(routes!(get_tenant_settings, put_tenant_settings))
        .routes(routes!(list_audit))
        .routes(routes!(verify_audit))
}

/// A role on the wire: `{"kind": "buyer", "retailer_id": 7}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RoleDto {
    TenantAdmin,
    ManufacturerUser { manufacturer_id: u64 },
    Buyer { retailer_id: u64 },
    BuyerApprover { retailer_id: u64 },
    Reviewer,
}

impl From<Role> for RoleDto {
    fn from(role: Role) -> Self {
        match role {
            Role::TenantAdmin => RoleDto::TenantAdmin,
            Role::ManufacturerUser { manufacturer_id } => {
                RoleDto::ManufacturerUser { manufacturer_id }
            }
            Role::Buyer { retailer_id } => RoleDto::Buyer { retailer_id },
            Role::BuyerApprover { retailer_id } => RoleDto::BuyerApprover { retailer_id },
            Role::Reviewer => RoleDto::Reviewer,
        }
    }
}

impl From<RoleDto> for Role {
    fn from(role: RoleDto) -> Self {
        match role {
            RoleDto::TenantAdmin => Role::TenantAdmin,
            RoleDto::ManufacturerUser { manufacturer_id } => {
                Role::ManufacturerUser { manufacturer_id }
            }
            RoleDto::Buyer { retailer_id } => Role::Buyer { retailer_id },
            RoleDto::BuyerApprover { retailer_id } => Role::BuyerApprover { retailer_id },
            RoleDto::Reviewer => Role::Reviewer,
        }
    }
}

/// The `kind` of a role, as the `role` filter of the user list names it.
fn role_kind(role: Role) -> &'static str {
    match role {
        Role::TenantAdmin => "tenant_admin",
        Role::ManufacturerUser { .. } => "manufacturer_user",
        Role::Buyer { .. } => "buyer",
        Role::BuyerApprover { .. } => "buyer_approver",
        Role::Reviewer => "reviewer",
    }
}

const ROLE_KINDS: [&str; 5] = [
    "tenant_admin",
    "manufacturer_user",
    "buyer",
    "buyer_approver",
    "reviewer",
];

/// Who a credential is.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PrincipalDto {
    pub tenant_id: u64,
    /// `user` or `api_key`.
    pub kind: &'static str,
    /// The user's or the API key's id.
    pub id: u64,
    pub role: Option<RoleDto>,
    /// Scopes of an API key; every scope for users.
    pub scopes: Vec<&'static str>,
}

impl From<&Principal> for PrincipalDto {
    fn from(p: &Principal) -> Self {
        let (kind, id) = match p.actor {
            Actor::User(id) => ("user", id),
            Actor::ApiKey(id) => ("api_key", id),
            Actor::Platform => ("platform", 0),
            Actor::System => ("system", 0),
        };
        PrincipalDto {
            tenant_id: p.tenant.0,
            kind,
            id,
            role: p.role.map(RoleDto::from),
            scopes: p.scopes.iter().map(|s| s.as_str()).collect(),
        }
    }
}

/// A user of the tenant.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UserDto {
    pub id: u64,
    /// Normalized: trimmed and lowercase; unique in the tenant.
    pub email: String,
    pub display_name: String,
    pub role: RoleDto,
    /// `active` or `disabled`.
    pub status: &'static str,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

impl From<User> for UserDto {
    fn from(user: User) -> Self {
        UserDto {
            id: user.id,
            email: user.email,
            display_name: user.name,
            role: user.role.into(),
            status: match user.status {
                UserStatus::Active => "active",
                UserStatus::Disabled => "disabled",
            },
            created_at_ms: user.created_at_ms,
            updated_at_ms: user.updated_at_ms,
        }
    }
}

/// Renames the `field` of an invalid-field rejection from the engine's name to the one the
/// request body uses (the engine says `password` where the body says `new_password`).
pub(crate) fn rename_fields(error: EngineError, renames: &[(&str, &str)]) -> EngineError {
    match error {
        EngineError::Rejected(Rejection::InvalidField { field, reason }) => {
            let field = renames
                .iter()
                .find(|(from, _)| *from == field)
                .map_or(field, |(_, to)| (*to).to_owned());
            EngineError::Rejected(Rejection::InvalidField { field, reason })
        }
        other => other,
    }
}

/// The display name when a request gives none: the email's local part.
pub(crate) fn default_display_name(email: &str) -> String {
    let email = email.trim();
    email
        .split_once('@')
        .map_or(email, |(local, _)| local)
        .to_owned()
}

/// Checks a display name the way the engine will (trimmed, 1..=200 bytes, no control
/// characters), so that the problem names the request's field.
pub(crate) fn check_display_name(field: &str, name: &str) -> Result<(), ApiError> {
    let name = name.trim();
    if name.is_empty() || name.len() > USER_NAME_BYTES_MAX {
        return Err(ApiError::invalid_field(
            field,
            format!("must be 1..={USER_NAME_BYTES_MAX} bytes"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Adds `Location: <path>` to a response.
pub(crate) fn with_location(mut response: Response, path: String) -> Result<Response, ApiError> {
    let value = HeaderValue::from_str(&path).map_err(ApiError::internal)?;
    response.headers_mut().insert(header::LOCATION, value);
    Ok(response)
}

// ---------------------------------------------------------------------------------------------
// Sign-in, sign-out, the caller.

/// Sign-in: the tenant's slug, the user's email and password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The marketplace (tenant) slug.
    pub tenant: String,
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Bearer token for `Authorization: Bearer <token>`; shown once.
    pub token: String,
    pub session_id: u64,
    pub expires_at_ms: u64,
    pub principal: PrincipalDto,
}

/// Signs a user in and returns a session token.
///
/// At most 10 failed sign-ins per account (tenant and email) and 30 per client address are
/// allowed within 60 s; past that the answer is 429 with `Retry-After`, even for the right
/// password. A successful sign-in clears its account's count.
#[utoipa::path(
    post, path = "/v1/auth/login", tag = "accounts",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = LoginResponse),
        (status = 401, description = "Unknown tenant or email, wrong password, or disabled user: one answer for all", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "The body is not a sign-in request", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed sign-ins for this account or address; see Retry-After", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    Json(request): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    let attempt = login_guard().begin(&request.tenant, &request.email, address)?;
    let wrong = || unauthenticated("the tenant, email or password is wrong");
    let tenant = match state.engine.platform_tenant_by_slug(&request.tenant) {
        Ok(Some(tenant)) if tenant.admin_user_id.is_some() => tenant,
        Ok(_) => {
            // An unknown tenant costs no argon2 work here, so the timing tells that the tenant
            // does not exist; tenant slugs are not secret (people type them to sign in).
            attempt.failed();
            return Err(wrong());
        }
        Err(error) => {
            attempt.abandoned();
            return Err(error.into());
        }
    };
    let session = match state
        .engine
        .login(TenantId(tenant.id), &request.email, &request.password)
        .await
    {
        Ok(session) => {
            attempt.succeeded();
            session
        }
        Err(EngineError::Unauthenticated) => {
            attempt.failed();
            return Err(wrong());
        }
        Err(other) => {
            attempt.abandoned();
            return Err(other.into());
        }
    };
    ok_json(&LoginResponse {
        token: session.token.expose_secret().to_owned(),
        session_id: session.session_id,
        expires_at_ms: session.expires_at_ms,
        principal: PrincipalDto::from(&session.principal),
    })
}

/// Revokes the session of the presented token.
#[utoipa::path(
    post, path = "/v1/auth/logout", tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Not a live session token", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let token = bearer_token(&headers)
        .ok_or_else(|| unauthenticated("sign-out needs the session's bearer token"))?;
    state.engine.logout(token).await?;
    Ok(no_content())
}

/// The caller's identity: tenant, user or API key, role and scopes.
#[utoipa::path(
    get, path = "/v1/me", tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = PrincipalDto),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn me(Auth(principal): Auth, headers: HeaderMap) -> Result<Response, ApiError> {
    read_json(&headers, &PrincipalDto::from(&principal), None)
}

/// A signed-in user's own password change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// 12..=256 bytes.
    pub new_password: String,
}

/// Changes the caller's own password, proving the current one. Every session of the user,
/// this one included, is revoked: sign in again with the new password.
#[utoipa::path(
    post, path = "/v1/me/password", tag = "accounts",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Password changed; all sessions revoked"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential is an API key, not a user", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`current_password` does not match, or `new_password` breaks the policy", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn change_password(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(request): Json<ChangePasswordRequest>,
) -> Result<Response, ApiError> {
    state
        .engine
        .change_password(&principal, &request.current_password, &request.new_password)
        .await
        .map_err(|e| rename_fields(e, &[("password", "new_password")]))?;
    Ok(no_content())
}

// ---------------------------------------------------------------------------------------------
// Users.

/// Filters of the user list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserFilter {
    /// Only users with this role kind: `tenant_admin`, `manufacturer_user`, `buyer`,
    /// `buyer_approver` or `reviewer`.
    pub role: Option<String>,
}

/// Lists the tenant's users by id (needs `manage users`).
#[utoipa::path(
    get, path = "/v1/users", tag = "accounts",
    security(("bearer" = [])),
    params(ListParams, UserFilter),
    responses(
        (status = 200, description = "One page of users", body = ListResponse<UserDto>),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not manage users", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `limit`, `cursor`, `fields` or `role`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_users(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(params): Query<ListParams>,
    Query(filter): Query<UserFilter>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManageUsers)?;
    let limit = params.limit()?;
    let after = params.after()?;
    let fields = params.fields()?;
    let role = match filter.role.as_deref() {
        None => None,
        Some(kind) => Some(ROLE_KINDS.into_iter().find(|k| *k == kind).ok_or_else(|| {
            ApiError::invalid_field("role", format!("must be one of {ROLE_KINDS:?}"))
        })?),
    };
    let (users, next_after) = blocking(&state, move |engine| {
        let Some(role) = role else {
            let page = engine.list_users(&principal, after, limit)?;
            return Ok((page.items, page.next_after));
        };
        let mut found = Vec::new();
        let mut after = after;
        let mut examined = 0;
        loop {
            let page = engine.list_users(&principal, after, USERS_PAGE_MAX)?;
            for user in page.items {
                examined += 1;
                after = Some(user.id);
                if role_kind(user.role) == role {
                    found.push(user);
                    if found.len() == limit {
                        return Ok((found, after));
                    }
                }
            }
            if page.next_after.is_none() {
                return Ok((found, None));
            }
            if examined >= USERS_FILTER_SCAN_MAX {
                return Ok((found, after));
            }
        }
    })
    .await?;
    let page = ListResponse::new(users.into_iter().map(UserDto::from).collect(), next_after);
    read_list(&headers, &page, fields.as_ref())
}

/// A new user.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// Unique in the tenant (compared lowercase).
    pub email: String,
    /// 12..=256 bytes.
    pub password: String,
    /// Defaults to the email's local part.
    pub display_name: Option<String>,
    pub role: RoleDto,
}

/// Creates a user with a role (needs `manage users`).
#[utoipa::path(
    post, path = "/v1/users", tag = "accounts",
    security(("bearer" = [])),
    request_body = CreateUserRequest,
    responses(
        (status = 201, description = "Created", body = UserDto, headers(("Location" = String, description = "The user's URL"))),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not manage users", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`email_taken`: a user of the tenant has this email", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `email`, `password`, `display_name` or `role`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn create_user(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(request): Json<CreateUserRequest>,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManageUsers)?;
    let name = match request.display_name {
        Some(name) => name,
        None => default_display_name(&request.email),
    };
    check_display_name("display_name", &name)?;
    let user = state
        .engine
        .create_user(
            &principal,
            NewUser {
                email: request.email,
                name,
                role: request.role.into(),
                password: request.password,
            },
        )
        .await
        .map_err(|e| rename_fields(e, &[("name", "display_name")]))?;
    let location = format!("/v1/users/{}", user.id);
    with_location(created(&UserDto::from(user))?, location)
}

/// One user (the user themselves, or a credential that may manage users).
#[utoipa::path(
    get, path = "/v1/users/{id}", tag = "accounts",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = UserDto),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not manage users", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_user(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if principal.actor != Actor::User(id) {
        require(&principal, Permission::ManageUsers)?;
    }
    let user = state
        .engine
        .user(&principal, id)?
        .ok_or_else(|| crate::api::not_found("user", id))?;
    read_json(&headers, &UserDto::from(user), None)
}

/// Disables a user and revokes all their sessions (needs `manage users`; not oneself).
#[utoipa::path(
    post, path = "/v1/users/{id}/disable", tag = "accounts",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "User id")),
    responses(
        (status = 200, description = "The disabled user", body = UserDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not manage users", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`cannot_disable_self`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn disable_user(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManageUsers)?;
    let user = state.engine.disable_user(&principal, id).await?;
    ok_json(&UserDto::from(user))
}

/// Lets a disabled user sign in again (needs `manage users`).
#[utoipa::path(
    post, path = "/v1/users/{id}/enable", tag = "accounts",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "User id")),
    responses(
        (status = 200, description = "The enabled user", body = UserDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not manage users", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn enable_user(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManageUsers)?;
    let user = state.engine.enable_user(&principal, id).await?;
    ok_json(&UserDto::from(user))
}

/// An administrator's new password for a user.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// 12..=256 bytes.
    pub new_password: String,
}

/// Sets a user's password (needs `manage users`) and revokes all their sessions.
#[utoipa::path(
    post, path = "/v1/users/{id}/reset-password", tag = "accounts",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "User id")),
    request_body = ResetPasswordRequest,
    responses(
        (status = 204, description = "Password set; the user's sessions are revoked"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not manage users", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`new_password` breaks the policy", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn reset_password(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Json(request): Json<ResetPasswordRequest>,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManageUsers)?;
    state
        .engine
        .reset_password(&principal, id, &request.new_password)
        .await
        .map_err(|e| rename_fields(e, &[("password", "new_password")]))?;
    Ok(no_content())
}

/// How many sessions a revocation ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsRevokedDto {
    /// Sessions that were live and are now revoked.
    pub revoked: u32,
}

/// Revokes every live session of a user (the user themselves, or `manage users`).
#[utoipa::path(
    post, path = "/v1/users/{id}/revoke-sessions", tag = "accounts",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "User id")),
    responses(
        (status = 200, description = "Sessions revoked", body = SessionsRevokedDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not manage users", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such user in the tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn revoke_sessions(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
) -> Result<Response, ApiError> {
    if principal.actor != Actor::User(id) {
        require(&principal, Permission::ManageUsers)?;
    }
    let revoked = state.engine.revoke_user_sessions(&principal, id).await?;
    ok_json(&SessionsRevokedDto { revoked })
}

// ---------------------------------------------------------------------------------------------
// API keys.

/// An API key, without its secret.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ApiKeyDto {
    pub id: u64,
    pub name: String,
    /// The role the key acts with.
    pub role: RoleDto,
    /// What the key may be used for: `catalog:read`, `catalog:write`, `inventory:write`,
    /// `orders:read`, `orders:write`, `documents:write`, `admin`.
    pub scopes: Vec<&'static str>,
    /// The first characters of the key (`mck_<tenant>_` and four more), to tell keys apart.
    pub display_prefix: String,
    /// Who created it: `user/<id>`, `api_key/<id>`, ...
    pub created_by: String,
    pub created_at_ms: u64,
    pub expires_at_ms: Option<u64>,
    pub revoked_at_ms: Option<u64>,
}

impl From<ApiKey> for ApiKeyDto {
    fn from(key: ApiKey) -> Self {
        ApiKeyDto {
            id: key.id,
            name: key.name,
            role: key.role.into(),
            scopes: key.scopes.iter().map(Scope::as_str).collect(),
            display_prefix: key.display_prefix,
            created_by: key.created_by.to_string(),
            created_at_ms: key.created_at_ms,
            expires_at_ms: key.expires_at_ms,
            revoked_at_ms: key.revoked_at_ms,
        }
    }
}

/// A new API key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// 1..=100 bytes.
    pub name: String,
    /// The role the key acts with; its scopes narrow it.
    pub role: RoleDto,
    /// At least one of `catalog:read`, `catalog:write`, `inventory:write`, `orders:read`,
    /// `orders:write`, `documents:write`, `admin`.
    pub scopes: Vec<String>,
    /// When the key stops working (milliseconds since the epoch); never when absent.
    pub expires_at_ms: Option<u64>,
}

/// A created API key with its secret, which is shown this once and stored only hashed.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKeyDto {
    #[serde(flatten)]
    pub key: ApiKeyDto,
    /// The bearer token of the key. Shown only in this response.
    pub secret: String,
}

/// Lists the tenant's API keys, without secrets (needs `manage API keys`).
#[utoipa::path(
    get, path = "/v1/api-keys", tag = "accounts",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "One page of API keys", body = ListResponse<ApiKeyDto>),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not manage API keys", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `limit`, `cursor` or `fields`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_api_keys(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(params): Query<ListParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManageApiKeys)?;
    let limit = params.limit()?;
    let after = params.after()?;
    let fields = params.fields()?;
    let page = state.engine.list_api_keys(&principal, after, limit)?;
    let page = ListResponse::new(
        page.items.into_iter().map(ApiKeyDto::from).collect(),
        page.next_after,
    );
    read_list(&headers, &page, fields.as_ref())
}

/// Creates an API key (needs `manage API keys`). The response holds the secret; it is never
/// shown again.
#[utoipa::path(
    post, path = "/v1/api-keys", tag = "accounts",
    security(("bearer" = [])),
    request_body = CreateApiKeyRequest,
    responses(
        (status = 201, description = "Created; `secret` is shown once", body = CreatedApiKeyDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not manage API keys", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `name`, `role`, `scopes` or `expires_at_ms`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn create_api_key(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(request): Json<CreateApiKeyRequest>,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManageApiKeys)?;
    if request.scopes.len() > API_KEY_SCOPES_MAX {
        return Err(ApiError::invalid_field(
            "scopes",
            format!("at most {API_KEY_SCOPES_MAX} entries"),
        ));
    }
    let scopes = ScopeSet::parse(request.scopes.iter().map(String::as_str)).map_err(|name| {
        let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
        ApiError::invalid_field(
            "scopes",
            format!("unknown scope {name:?}; known scopes: {known:?}"),
        )
    })?;
    let created_key = state
        .engine
        .create_api_key(
            &principal,
            NewApiKey {
                name: request.name,
                role: request.role.into(),
                scopes,
                expires_at_ms: request.expires_at_ms,
            },
        )
        .await?;
    created(&CreatedApiKeyDto {
        secret: created_key.secret.expose_secret().to_owned(),
        key: ApiKeyDto::from(created_key.key),
    })
}

/// Revokes an API key (needs `manage API keys`); revoking a revoked key changes nothing.
#[utoipa::path(
    delete, path = "/v1/api-keys/{id}", tag = "accounts",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "API key id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not manage API keys", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such API key in the tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn revoke_api_key(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManageApiKeys)?;
    state.engine.revoke_api_key(&principal, id).await?;
    Ok(no_content())
}

// ---------------------------------------------------------------------------------------------
// The tenant.

/// The caller's tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantDto {
    pub id: u64,
    /// What people type to sign in.
    pub slug: String,
    pub name: String,
    pub created_at_ms: u64,
}

/// The caller's tenant: id, slug and name (any credential of the tenant).
#[utoipa::path(
    get, path = "/v1/tenant", tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The tenant", body = TenantDto),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "The tenant has no profile", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_tenant(
    State(state): State<AppState>,
    Auth(principal): Auth,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = principal.tenant;
    let profile = state
        .engine
        .tenant_profile(tenant)?
        .ok_or_else(|| crate::api::not_found("tenant", tenant.0))?;
    let slug = crate::routes::admin::registry_entry(&state.engine, tenant)?
        .map(|entry| entry.slug)
        .unwrap_or_default();
    read_json(
        &headers,
        &TenantDto {
            id: tenant.0,
            slug,
            name: profile.name,
            created_at_ms: profile.created_at_ms,
        },
        None,
    )
}

/// The tenant's settings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantSettingsDto {
    /// Lifetime of a new login session, 300000 (5 min) ..= 2592000000 (30 days).
    pub session_ttl_ms: u64,
}

/// The tenant's settings (any credential of the tenant).
#[utoipa::path(
    get, path = "/v1/tenant/settings", tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The settings", body = TenantSettingsDto),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_tenant_settings(
    State(state): State<AppState>,
    Auth(principal): Auth,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let settings = state.engine.tenant_settings(&principal)?;
    read_json(
        &headers,
        &TenantSettingsDto {
            session_ttl_ms: settings.session_ttl_ms,
        },
        None,
    )
}

/// Replaces the tenant's settings (needs `manage the tenant`). A new session lifetime applies
/// to sessions created afterwards.
#[utoipa::path(
    put, path = "/v1/tenant/settings", tag = "accounts",
    security(("bearer" = [])),
    request_body = TenantSettingsDto,
    responses(
        (status = 200, description = "The new settings", body = TenantSettingsDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not manage the tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`session_ttl_ms` out of range", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn put_tenant_settings(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(request): Json<TenantSettingsDto>,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManageTenant)?;
    let settings = state
        .engine
        .update_tenant_settings(
            &principal,
            TenantSettings {
                session_ttl_ms: request.session_ttl_ms,
            },
        )
        .await?;
    ok_json(&TenantSettingsDto {
        session_ttl_ms: settings.session_ttl_ms,
    })
}

// ---------------------------------------------------------------------------------------------
// The audit log.

/// One audit entry: who did what to which resource, when, and its link in the hash chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryDto {
    /// Position in the tenant's log, from 1.
    pub seq: u64,
    pub at_ms: u64,
    /// `user/<id>`, `api_key/<id>`, `platform` or `system`.
    pub actor: String,
    /// For example `user.create`, `order.place`.
    pub action: String,
    /// For example `user/7`.
    pub resource: String,
    /// SHA-256 of the previous entry, hex.
    pub prev_hash: String,
    /// SHA-256 of this entry, hex.
    pub hash: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl From<AuditEntry> for AuditEntryDto {
    fn from(entry: AuditEntry) -> Self {
        AuditEntryDto {
            seq: entry.seq,
            at_ms: entry.at_ms,
            actor: entry.actor.to_string(),
            action: entry.action,
            resource: entry.resource,
            prev_hash: hex(&entry.prev_hash),
            hash: hex(&entry.hash),
        }
    }
}

/// Longest `action` or `resource` filter accepted.
pub const AUDIT_FILTER_BYTES_MAX: usize = 256;

/// Filters of the audit log; all optional, combined with AND.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// `user/<id>`, `api_key/<id>`, `platform` or `system`.
    pub actor: Option<String>,
    /// Exact resource (`user/7`), or every resource of a kind with a trailing slash (`user/`).
    pub resource: Option<String>,
    /// Exact action, for example `user.create`.
    pub action: Option<String>,
    /// Entries at or after this time (milliseconds since the epoch).
    #[param(value_type = Option<u64>)]
    pub from_ms: Option<String>,
    /// Entries before this time (milliseconds since the epoch).
    #[param(value_type = Option<u64>)]
    pub to_ms: Option<String>,
}

fn parse_actor(text: &str) -> Result<Actor, ApiError> {
    let bad = || {
        ApiError::invalid_field(
            "actor",
            "must be user/<id>, api_key/<id>, platform or system",
        )
    };
    match text {
        "platform" => Ok(Actor::Platform),
        "system" => Ok(Actor::System),
        _ => {
            let (kind, id) = text.split_once('/').ok_or_else(bad)?;
            let id: u64 = id.parse().map_err(|_| bad())?;
            match kind {
                "user" => Ok(Actor::User(id)),
                "api_key" => Ok(Actor::ApiKey(id)),
                _ => Err(bad()),
            }
        }
    }
}

fn parse_ms(field: &str, text: Option<&str>) -> Result<Option<u64>, ApiError> {
    text.map(|t| {
        t.parse::<u64>().map_err(|_| {
            ApiError::invalid_field(field, "must be milliseconds since the epoch (an integer)")
        })
    })
    .transpose()
}

fn bounded_filter(field: &str, text: Option<String>) -> Result<Option<String>, ApiError> {
    match text {
        Some(t) if t.len() > AUDIT_FILTER_BYTES_MAX => Err(ApiError::invalid_field(
            field,
            format!("longer than {AUDIT_FILTER_BYTES_MAX} bytes"),
        )),
        other => Ok(other),
    }
}

/// The tenant's audit log, oldest first, filtered (needs `read the audit log`). A page may hold
/// fewer than `limit` entries and still have a `next_cursor`: one request examines a bounded
/// number of entries.
#[utoipa::path(
    get, path = "/v1/audit", tag = "accounts",
    security(("bearer" = [])),
    params(ListParams, AuditFilter),
    responses(
        (status = 200, description = "One page of audit entries", body = ListResponse<AuditEntryDto>),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not read the audit log", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter, `limit`, `cursor` or `fields`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_audit(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(params): Query<ListParams>,
    Query(filter): Query<AuditFilter>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ReadAudit)?;
    let query = AuditQuery {
        actor: filter.actor.as_deref().map(parse_actor).transpose()?,
        action: bounded_filter("action", filter.action)?,
        resource: bounded_filter("resource", filter.resource)?,
        from_ms: parse_ms("from_ms", filter.from_ms.as_deref())?,
        to_ms: parse_ms("to_ms", filter.to_ms.as_deref())?,
        after_seq: params.after()?,
        limit: params.limit()?,
    };
    let fields = params.fields()?;
    let tenant = principal.tenant;
    let page = blocking(&state, move |engine| engine.audit_query(tenant, &query)).await?;
    let page = ListResponse::new(
        page.entries.into_iter().map(AuditEntryDto::from).collect(),
        page.next_after,
    );
    read_list(&headers, &page, fields.as_ref())
}

/// The outcome of checking the audit hash chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditVerifyDto {
    /// True when every entry's hash and link match.
    pub intact: bool,
    /// Entries checked (when intact).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<u64>,
    /// SHA-256 of the last entry, hex (when intact and the log has entries). It commits to
    /// every entry before it: keep it outside the system with `entries`, and a later check
    /// whose entry `entries` has another hash shows that the log was rewritten.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_hash: Option<String>,
    /// The first entry that does not match (when broken).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken_at_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Recomputes the tenant's whole audit hash chain (needs `read the audit log`) and returns its
/// entry count and head hash, to be anchored outside.
#[utoipa::path(
    get, path = "/v1/audit/verify", tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The outcome: intact with the entry count and the head hash to keep as an anchor, or where the chain breaks", body = AuditVerifyDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not read the audit log", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn verify_audit(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ReadAudit)?;
    let tenant = principal.tenant;
    let anchored = blocking(&state, move |engine| engine.audit_verify_anchored(tenant)).await?;
    let body = match anchored.check {
        ChainCheck::Intact { entries } => AuditVerifyDto {
            intact: true,
            entries: Some(entries),
            head_hash: anchored.head.map(|head| hex(&head.hash)),
            broken_at_seq: None,
            reason: None,
        },
        ChainCheck::Broken { seq, reason } => AuditVerifyDto {
            intact: false,
            entries: None,
            head_hash: None,
            broken_at_seq: Some(seq),
            reason: Some(reason),
        },
    };
    // The chain grows with every write: a verification is never served from a cache.
    ok_json(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_parse_from_their_display_form() {
        for actor in [
            Actor::User(7),
            Actor::ApiKey(3),
            Actor::Platform,
            Actor::System,
        ] {
            assert_eq!(parse_actor(&actor.to_string()).expect("parses"), actor);
        }
        for bad in ["user/", "user/x", "robot/1", "", "user"] {
            assert!(parse_actor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn engine_field_names_become_the_body_names() {
        let error = EngineError::Rejected(Rejection::InvalidField {
            field: "password".into(),
            reason: "short".into(),
        });
        match rename_fields(error, &[("password", "new_password")]) {
            EngineError::Rejected(Rejection::InvalidField { field, .. }) => {
                assert_eq!(field, "new_password");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_accounts_and_admin_route_is_documented_with_its_401() {
        let doc = serde_json::to_value(crate::app::openapi_document()).expect("document");
        let routes = [
            ("/v1/me/password", "post"),
            ("/v1/users", "get"),
            ("/v1/users", "post"),
            ("/v1/users/{id}", "get"),
            ("/v1/users/{id}/disable", "post"),
            ("/v1/users/{id}/enable", "post"),
            ("/v1/users/{id}/reset-password", "post"),
            ("/v1/users/{id}/revoke-sessions", "post"),
            ("/v1/api-keys", "get"),
            ("/v1/api-keys", "post"),
            ("/v1/api-keys/{id}", "delete"),
            ("/v1/tenant", "get"),
            ("/v1/tenant/settings", "get"),
            ("/v1/tenant/settings", "put"),
            ("/v1/audit", "get"),
            ("/v1/audit/verify", "get"),
            ("/v1/admin/tenants", "get"),
            ("/v1/admin/tenants", "post"),
            ("/v1/admin/tenants/{id}", "get"),
        ];
        for (path, method) in routes {
            let responses = &doc["paths"][path][method]["responses"];
            assert!(
                responses["401"]["content"]["application/problem+json"].is_object(),
                "{method} {path}: {responses}"
            );
        }
        let audit_params = doc["paths"]["/v1/audit"]["get"]["parameters"].to_string();
        for name in [
            "actor", "resource", "action", "from_ms", "to_ms", "cursor", "limit",
        ] {
            assert!(audit_params.contains(&format!("\"{name}\"")), "{name}");
        }
    }

    #[test]
    fn default_display_name_is_the_local_part() {
        assert_eq!(default_display_name(" ada@x.io "), "ada");
        assert_eq!(default_display_name("no-at"), "no-at");
    }
}
