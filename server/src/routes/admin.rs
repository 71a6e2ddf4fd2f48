//! `/v1/admin` routes: the platform administrator's tenant registry. Authorised with the
//! platform token only ([`PlatformAuth`]): without it 401, with a tenant credential 403.

use crate::api::{
    ListParams, ListResponse, PlatformAuth, created, not_found, read_json, read_list, require,
};
use crate::app::AppState;
use crate::problem::ApiError;
use crate::routes::accounts::{
    UserDto, check_display_name, default_display_name, rename_fields, with_location,
};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use mercato_engine::accounts::Permission;
use mercato_engine::platform::{NewTenant, PLATFORM_TENANT};
use mercato_engine::tables::{TENANT_REGISTRY, TenantEntry, TenantStatus};
use mercato_engine::{Engine, EngineError, TenantId};
use mercato_storage::TenantReads;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants, create_tenant))
        .routes(routes!(get_tenant))
}

/// The platform registry's entry of `tenant`, if it has one. The registry is public enough
/// that a login page resolves slugs without a credential; a tenant reads its own entry here.
pub(crate) fn registry_entry(
    engine: &Engine,
    tenant: TenantId,
) -> Result<Option<TenantEntry>, EngineError> {
    if tenant == PLATFORM_TENANT {
        return Ok(None);
    }
    Ok(engine
        .storage()
        .read(PLATFORM_TENANT)?
        .get(&TENANT_REGISTRY, &tenant.0)?)
}

/// A tenant in the platform registry.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantEntryDto {
    pub id: u64,
    pub slug: String,
    pub name: String,
    /// The first tenant admin's email.
    pub admin_email: String,
    pub admin_user_id: Option<u64>,
    /// `creating` (an interrupted creation; repeating the request completes it) or `active`.
    pub status: &'static str,
    pub created_at_ms: u64,
    pub activated_at_ms: Option<u64>,
}

impl From<TenantEntry> for TenantEntryDto {
    fn from(entry: TenantEntry) -> Self {
        TenantEntryDto {
            id: entry.id,
            slug: entry.slug,
            name: entry.name,
            admin_email: entry.admin_email,
            admin_user_id: entry.admin_user_id,
            status: match entry.status {
                TenantStatus::Creating => "creating",
                TenantStatus::Active => "active",
            },
            created_at_ms: entry.created_at_ms,
            activated_at_ms: entry.activated_at_ms,
        }
    }
}

/// A new tenant and its first tenant admin.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantRequest {
    /// Unique on the platform: 3..=63 of `a-z`, `0-9` and `-`; what people type to sign in.
    pub slug: String,
    /// The marketplace's display name, 1..=200 bytes.
    pub name: String,
    pub admin_email: String,
    /// 12..=256 bytes.
    pub admin_password: String,
    /// Defaults to the email's local part.
    pub admin_display_name: Option<String>,
}

/// A created tenant with its first admin.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedTenantDto {
    pub tenant: TenantEntryDto,
    pub admin: UserDto,
    /// True when this request completed a creation an earlier request left unfinished.
    pub resumed: bool,
}

/// Creates a tenant with its first tenant admin (platform token). Repeating the request with
/// the same slug, name and admin email completes a creation that was interrupted.
#[utoipa::path(
    post, path = "/v1/admin/tenants", tag = "admin",
    security(("bearer" = [])),
    request_body = CreateTenantRequest,
    responses(
        (status = 201, description = "Created", body = CreatedTenantDto, headers(("Location" = String, description = "The tenant's URL"))),
        (status = 401, description = "No platform token", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "A tenant credential, not the platform token", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`tenant_slug_taken`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `slug`, `name`, `admin_email`, `admin_password` or `admin_display_name`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn create_tenant(
    State(state): State<AppState>,
    PlatformAuth(principal): PlatformAuth,
    Json(request): Json<CreateTenantRequest>,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManagePlatform)?;
    let admin_name = match request.admin_display_name {
        Some(name) => name,
        None => default_display_name(&request.admin_email),
    };
    // Checked here so that the engine's `name` rejection can only be the tenant's name.
    check_display_name("admin_display_name", &admin_name)?;
    let created_tenant = state
        .engine
        .platform_create_tenant(
            &principal,
            NewTenant {
                slug: request.slug,
                name: request.name,
                admin_name,
                admin_email: request.admin_email,
                admin_password: request.admin_password,
            },
        )
        .await
        .map_err(|e| {
            rename_fields(
                e,
                &[("email", "admin_email"), ("password", "admin_password")],
            )
        })?;
    let location = format!("/v1/admin/tenants/{}", created_tenant.tenant.0);
    let body = CreatedTenantDto {
        tenant: created_tenant.entry.into(),
        admin: created_tenant.admin.into(),
        resumed: created_tenant.resumed,
    };
    with_location(created(&body)?, location)
}

/// Lists the tenants of the platform by id (platform token).
#[utoipa::path(
    get, path = "/v1/admin/tenants", tag = "admin",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "One page of tenants", body = ListResponse<TenantEntryDto>),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 401, description = "No platform token", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "A tenant credential, not the platform token", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `limit`, `cursor` or `fields`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_tenants(
    State(state): State<AppState>,
    PlatformAuth(principal): PlatformAuth,
    Query(params): Query<ListParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManagePlatform)?;
    let limit = params.limit()?;
    let after = params.after()?.map(TenantId);
    let fields = params.fields()?;
    let page = state
        .engine
        .platform_list_tenants(&principal, after, limit)?;
    let page = ListResponse::new(
        page.items.into_iter().map(TenantEntryDto::from).collect(),
        page.next_after,
    );
    read_list(&headers, &page, fields.as_ref())
}

/// One tenant of the platform (platform token).
#[utoipa::path(
    get, path = "/v1/admin/tenants/{id}", tag = "admin",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Tenant id")),
    responses(
        (status = 200, description = "The tenant", body = TenantEntryDto),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 401, description = "No platform token", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "A tenant credential, not the platform token", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_tenant(
    State(state): State<AppState>,
    PlatformAuth(principal): PlatformAuth,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManagePlatform)?;
    let entry =
        registry_entry(&state.engine, TenantId(id))?.ok_or_else(|| not_found("tenant", id))?;
    read_json(&headers, &TenantEntryDto::from(entry), None)
}
