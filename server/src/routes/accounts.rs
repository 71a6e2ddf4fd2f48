//! `/v1` routes of accounts: sign-in and sign-out, the caller's own identity.

use crate::api::auth::{bearer_token, unauthenticated};
use crate::api::{Auth, no_content, ok_json, read_json};
use crate::app::AppState;
use crate::problem::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use mercato_engine::accounts::{Principal, Role};
use mercato_engine::{Actor, EngineError, TenantId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
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
#[utoipa::path(
    post, path = "/v1/auth/login", tag = "accounts",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = LoginResponse),
        (status = 401, description = "Unknown tenant or email, wrong password, or disabled user: one answer for all", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts from this address", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn login(
    State(state): State<AppState>,
    Json(request): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    let tenant = state
        .engine
        .platform_tenant_by_slug(&request.tenant)?
        .filter(|t| t.admin_user_id.is_some())
        .ok_or_else(|| unauthenticated("the tenant, email or password is wrong"))?;
    let session = match state
        .engine
        .login(TenantId(tenant.id), &request.email, &request.password)
        .await
    {
        Ok(session) => session,
        Err(EngineError::Unauthenticated) => {
            return Err(unauthenticated("the tenant, email or password is wrong"));
        }
        Err(other) => return Err(other.into()),
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
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn me(Auth(principal): Auth, headers: HeaderMap) -> Result<Response, ApiError> {
    read_json(&headers, &PrincipalDto::from(&principal), None)
}
