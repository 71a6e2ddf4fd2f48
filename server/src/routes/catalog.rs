//! `/v1` routes of the catalog domain: the category tree, catalog settings, products (with
//! their status, the caller's price, images in the blob store) and bulk CSV import/export.
//!
//! Who may do what:
//! - reading the catalog needs `ReadCatalog`; a product that is not `active` is visible only to
//!   callers who may review (tenant admins, reviewers) or manage its manufacturer's catalog;
//!   to everyone else it is a 404, and lists are limited to `active` products;
//! - categories and catalog settings are the distributor's: `ManageTenant`;
//! - products, their status, images and imported rows need `ManageCatalog` for the product's
//!   manufacturer.

use crate::api::respond::CACHE_CONTROL_NO_STORE;
use crate::api::{
    Auth, CACHE_CONTROL_PRIVATE, ListParams, ListResponse, SortParam, blocking, created,
    no_content, not_found, ok_json, read_json, read_list, require,
};
use crate::app::AppState;
use crate::problem::{ApiError, ErrorCode};
use crate::routes::parties::{MoneyDto, PriceTierDto};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mercato_engine::accounts::{Permission, Principal, Role};
use mercato_engine::catalog::{
    CategoryInput, CategoryPathItem, IdOrder, ImportBatch, ImportMode, ImportReport,
    ImportRowError, ProductInput, ProductQuery, validate,
};
use mercato_engine::money::{Currency, Money};
use mercato_engine::tables::{CatalogSettings, Category, PriceTier, Product, ProductStatus};
use mercato_engine::{EngineError, TenantId};
use mercato_storage::BlobHash;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest product image accepted, in bytes (8 MiB).
pub const IMAGE_BYTES_MAX: usize = 8 << 20;
/// Largest CSV import body accepted, in bytes (32 MiB).
pub const IMPORT_BODY_BYTES_MAX: usize = 32 << 20;
/// Path of the CSV import route, whose body bound is [`IMPORT_BODY_BYTES_MAX`].
pub const IMPORT_PATH: &str = "/v1/products/import";
/// Largest CSV export produced, in bytes; a larger catalog is exported in parts with filters.
pub const EXPORT_BYTES_MAX: usize = 256 << 20;
/// Engine pages a `sku` filter without `manufacturer_id` examines for one response page.
const SKU_SCAN_PAGES_MAX: usize = 8;
/// Media types an import body may declare (a missing `Content-Type` is accepted too).
const CSV_MEDIA_TYPES: [&str; 3] = ["text/csv", "application/csv", "text/plain"];

pub fn router() -> OpenApiRouter<AppState> {
    let images = OpenApiRouter::new()
        .routes(routes!(upload_image))
        .layer(DefaultBodyLimit::max(IMAGE_BYTES_MAX));
    let import = OpenApiRouter::new()
        .routes(routes!(import_products))
        .layer(DefaultBodyLimit::max(IMPORT_BODY_BYTES_MAX));
    OpenApiRouter::new()
        .routes(routes!(list_categories, create_category))
        .routes(routes!(get_category, patch_category))
        .routes(routes!(category_children))
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(list_products, create_product))
        .routes(routes!(get_product, patch_product))
        .routes(routes!(set_product_status))
        .routes(routes!(product_price))
        .routes(routes!(get_image, delete_image))
        .routes(routes!(export_products))
        .merge(images)
        .merge(import)
}

// ---------------------------------------------------------------------------------------------
// Request bodies (JSON bodies use `axum::Json`, whose errors the app turns into problems naming
// the field)

/// A body the framework could not read: too large (413) or broken.
fn body_rejection(rejection: axum::extract::rejection::BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(ErrorCode::PayloadTooLarge, rejection.body_text())
    } else {
        ApiError::new(ErrorCode::BadRequest, rejection.body_text())
    }
}

/// Deserializes a member that may be absent (`None`), `null` (`Some(None)`) or a value.
fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A query parameter that must be a whole number.
fn query_id(field: &'static str, value: Option<&str>) -> Result<Option<u64>, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| ApiError::invalid_field(field, "must be a whole number"))
        })
        .transpose()
}

fn parse_status(field: &'static str, text: &str) -> Result<ProductStatus, ApiError> {
    ProductStatus::parse(text)
        .ok_or_else(|| ApiError::invalid_field(field, "must be draft, active or archived"))
}

fn parse_hash(text: &str) -> Result<BlobHash, ApiError> {
    text.parse::<BlobHash>()
        .map_err(|e| ApiError::invalid_field("hash", e))
}

fn hex(hash: &[u8; 32]) -> String {
    BlobHash::from_bytes(*hash).to_string()
}

/// Adds `Location` to a response.
fn with_location(mut response: Response, location: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

// ---------------------------------------------------------------------------------------------
// Money on the wire (responses use the parties module's `MoneyDto` and `PriceTierDto`)

/// An amount as given by a client: the currency defaults to the catalog's.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceInput {
    /// Minor units (cents): 0..=10^12.
    pub minor: i64,
    /// ISO 4217 code; must be the catalog currency (the default).
    pub currency: Option<String>,
}

impl PriceInput {
    fn to_money(&self, field: &str, catalog: Currency) -> Result<Money, ApiError> {
        let currency = match &self.currency {
            None => catalog,
            Some(code) => Currency::parse(code)
                .map_err(|e| ApiError::invalid_field(format!("{field}.currency"), e))?,
        };
        Ok(Money::new(self.minor, currency))
    }
}

/// A volume tier as given by a client.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceTierInput {
    pub min_qty: u32,
    pub unit_price: PriceInput,
}

fn tiers_in(tiers: &[PriceTierInput], catalog: Currency) -> Result<Vec<PriceTier>, ApiError> {
    tiers
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Ok(PriceTier {
                min_qty: t.min_qty,
                unit_price: t
                    .unit_price
                    .to_money(&format!("tiers[{i}].unit_price"), catalog)?,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Categories

/// A node of the category tree.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CategoryDto {
    pub id: u64,
    /// `null` for a root category.
    pub parent_id: Option<u64>,
    pub name: String,
    pub slug: String,
    /// Distance from the root (a root is 0).
    pub depth: u8,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

impl From<Category> for CategoryDto {
    fn from(c: Category) -> Self {
        CategoryDto {
            id: c.id,
            parent_id: c.parent,
            name: c.name,
            slug: c.slug,
            depth: c.depth,
            created_at_ms: c.created_at_ms,
            updated_at_ms: c.updated_at_ms,
        }
    }
}

/// One step of a category's path from the root.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CategoryPathStep {
    pub id: u64,
    pub name: String,
    pub slug: String,
}

impl From<CategoryPathItem> for CategoryPathStep {
    fn from(p: CategoryPathItem) -> Self {
        CategoryPathStep {
            id: p.id,
            name: p.name,
            slug: p.slug,
        }
    }
}

/// A category with its path from the root (the root first, the category last).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CategoryDetail {
    #[serde(flatten)]
    pub category: CategoryDto,
    pub path: Vec<CategoryPathStep>,
}

/// A new category.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCategory {
    /// The parent category; absent or `null` for a root.
    pub parent_id: Option<u64>,
    pub name: String,
    /// `[a-z0-9-]`, unique in the tenant; derived from the name when absent.
    pub slug: Option<String>,
}

/// Changes to a category: rename (`name`, `slug`) and/or move (`parent_id`; `null` moves it
/// to the root). A move never puts a category under itself or its own subtree.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchCategory {
    pub name: Option<String>,
    pub slug: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u64>, nullable)]
    pub parent_id: Option<Option<u64>>,
}

/// A slug made from a name: lowercase ASCII letters and digits, other runs become `-`.
fn slug_from_name(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.truncate(validate::SLUG_CHARS_MAX);
    slug.trim_end_matches('-').to_owned()
}

fn category_detail(
    state: &AppState,
    tenant: TenantId,
    category: Category,
) -> Result<CategoryDetail, ApiError> {
    let path = state
        .engine
        .category_path(tenant, category.id)?
        .unwrap_or_default();
    Ok(CategoryDetail {
        category: category.into(),
        path: path.into_iter().map(CategoryPathStep::from).collect(),
    })
}

/// Lists every category, in id order.
#[utoipa::path(
    get, path = "/v1/categories", tag = "catalog",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "A page of categories", body = ListResponse<CategoryDto>),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "May not read the catalog", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit, cursor or fields", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_categories(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(page): Query<ListParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ReadCatalog)?;
    let (limit, after, fields) = (page.limit()?, page.after()?, page.fields()?);
    let tenant = principal.tenant;
    let found = blocking(&state, move |e| e.list_categories(tenant, after, limit)).await?;
    let items = found.items.into_iter().map(CategoryDto::from).collect();
    read_list(
        &headers,
        &ListResponse::new(items, found.next_after),
        fields.as_ref(),
    )
}

/// Creates a category, as a root or under `parent_id`.
#[utoipa::path(
    post, path = "/v1/categories", tag = "catalog",
    security(("bearer" = [])),
    request_body = CreateCategory,
    responses(
        (status = 201, description = "Created", body = CategoryDetail),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Only tenant administrators manage categories", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`slug_taken` or `category_limit`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field (name, slug, parent_id: missing parent or too deep)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn create_category(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(body): Json<CreateCategory>,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManageTenant)?;
    let slug = match body.slug {
        Some(slug) => slug,
        None => {
            let slug = slug_from_name(&body.name);
            if slug.is_empty() {
                return Err(ApiError::invalid_field(
                    "slug",
                    "cannot be derived from the name; give one of [a-z0-9-]",
                ));
            }
            slug
        }
    };
    let input = CategoryInput {
        parent: body.parent_id,
        name: body.name,
        slug,
    };
    let category = state
        .engine
        .create_category(principal.tenant, principal.actor.clone(), input)
        .await?;
    let id = category.id;
    let detail = category_detail(&state, principal.tenant, category)?;
    Ok(with_location(
        created(&detail)?,
        &format!("/v1/categories/{id}"),
    ))
}

/// A category with its path from the root.
#[utoipa::path(
    get, path = "/v1/categories/{id}", tag = "catalog",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Category id"), ("fields" = Option<String>, Query, description = "Comma-separated fields to return")),
    responses(
        (status = 200, description = "The category", body = CategoryDetail),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "May not read the catalog", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such category in the tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_category(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Query(page): Query<ListParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ReadCatalog)?;
    let fields = page.fields()?;
    let category = state
        .engine
        .category(principal.tenant, id)?
        .ok_or_else(|| not_found("category", id))?;
    let detail = category_detail(&state, principal.tenant, category)?;
    read_json(&headers, &detail, fields.as_ref())
}

/// Renames and/or moves a category.
#[utoipa::path(
    patch, path = "/v1/categories/{id}", tag = "catalog",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Category id")),
    request_body = PatchCategory,
    responses(
        (status = 200, description = "The changed category", body = CategoryDetail),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Only tenant administrators manage categories", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such category in the tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`category_cycle` (the new parent is the category or below it) or `slug_taken`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field (name, slug, parent_id)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn patch_category(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Json(body): Json<PatchCategory>,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManageTenant)?;
    let tenant = principal.tenant;
    let current = state
        .engine
        .category(tenant, id)?
        .ok_or_else(|| not_found("category", id))?;
    let rename = body.name.is_some() || body.slug.is_some();
    let name = body.name.unwrap_or_else(|| current.name.clone());
    let slug = body.slug.unwrap_or_else(|| current.slug.clone());
    // The move and the rename are two commands: check the rename first so that a bad name or a
    // taken slug does not leave the category moved but not renamed.
    if rename {
        validate::name("name", &name).map_err(EngineError::Rejected)?;
        validate::slug(&slug).map_err(EngineError::Rejected)?;
        if let Some(owner) = state.engine.category_by_slug(tenant, &slug)?
            && owner.id != id
        {
            return Err(ApiError::detailed(
                ErrorCode::Conflict,
                Some("slug_taken"),
                format!("slug {slug:?} is used by category {}", owner.id),
                serde_json::Map::new(),
            ));
        }
    }
    let mut category = current;
    if let Some(parent) = body.parent_id
        && parent != category.parent
    {
        category = state
            .engine
            .move_category(tenant, principal.actor.clone(), id, parent)
            .await?;
    }
    if rename && (name != category.name || slug != category.slug) {
        category = state
            .engine
            .rename_category(tenant, principal.actor.clone(), id, &name, &slug)
            .await?;
    }
    ok_json(&category_detail(&state, tenant, category)?)
}

/// The direct children of a category, in id order.
#[utoipa::path(
    get, path = "/v1/categories/{id}/children", tag = "catalog",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Category id"), ListParams),
    responses(
        (status = 200, description = "A page of child categories", body = ListResponse<CategoryDto>),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "May not read the catalog", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such category in the tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit, cursor or fields", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn category_children(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Query(page): Query<ListParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ReadCatalog)?;
    let (limit, after, fields) = (page.limit()?, page.after()?, page.fields()?);
    let tenant = principal.tenant;
    state
        .engine
        .category(tenant, id)?
        .ok_or_else(|| not_found("category", id))?;
    let found = blocking(&state, move |e| {
        e.category_children(tenant, Some(id), after, limit)
    })
    .await?;
    let items = found.items.into_iter().map(CategoryDto::from).collect();
    read_list(
        &headers,
        &ListResponse::new(items, found.next_after),
        fields.as_ref(),
    )
}

// ---------------------------------------------------------------------------------------------
// Catalog settings

/// The tenant's catalog settings.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogSettingsDto {
    /// ISO 4217 code of every amount in the catalog; changes only while the catalog holds no
    /// products, retailers or price-list entries.
    pub currency: String,
    /// When true, only products of verified manufacturers can be published (set `active`).
    pub require_verified_manufacturer_to_publish: bool,
}

impl From<CatalogSettings> for CatalogSettingsDto {
    fn from(s: CatalogSettings) -> Self {
        CatalogSettingsDto {
            currency: s.currency.as_str().to_owned(),
            require_verified_manufacturer_to_publish: s.require_verified_manufacturer_to_publish,
        }
    }
}

/// The tenant's catalog settings.
#[utoipa::path(
    get, path = "/v1/catalog/settings", tag = "catalog",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The settings", body = CatalogSettingsDto),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "May not read the catalog", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_settings(
    State(state): State<AppState>,
    Auth(principal): Auth,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ReadCatalog)?;
    let settings = state.engine.catalog_settings(principal.tenant)?;
    read_json(&headers, &CatalogSettingsDto::from(settings), None)
}

/// Replaces the tenant's catalog settings.
#[utoipa::path(
    put, path = "/v1/catalog/settings", tag = "catalog",
    security(("bearer" = [])),
    request_body = CatalogSettingsDto,
    responses(
        (status = 200, description = "The new settings", body = CatalogSettingsDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Only tenant administrators change catalog settings", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The currency cannot change once the catalog holds prices", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field (currency)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn put_settings(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(body): Json<CatalogSettingsDto>,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManageTenant)?;
    let currency =
        Currency::parse(&body.currency).map_err(|e| ApiError::invalid_field("currency", e))?;
    let settings = CatalogSettings {
        currency,
        require_verified_manufacturer_to_publish: body.require_verified_manufacturer_to_publish,
    };
    let saved = state
        .engine
        .set_catalog_settings(principal.tenant, principal.actor.clone(), settings)
        .await?;
    ok_json(&CatalogSettingsDto::from(saved))
}

// ---------------------------------------------------------------------------------------------
// Products

/// A product of a manufacturer.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ProductDto {
    pub id: u64,
    pub manufacturer_id: u64,
    /// Unique per manufacturer.
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category_id: Option<u64>,
    pub attributes: BTreeMap<String, String>,
    /// SHA-256 (hex) of each image, in display order; served at
    /// `/v1/products/{id}/images/{hash}`.
    pub images: Vec<String>,
    /// `draft`, `active` or `archived`.
    pub status: String,
    pub unit_of_measure: String,
    /// Units per case: order quantities are multiples of it.
    pub case_pack: u32,
    /// Smallest order quantity (a multiple of `case_pack`).
    pub min_order_qty: u32,
    pub base_price: MoneyDto,
    pub tiers: Vec<PriceTierDto>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    /// Incremented by every change; pass it back as `version` to refuse lost updates.
    pub version: u64,
}

impl From<Product> for ProductDto {
    fn from(p: Product) -> Self {
        ProductDto {
            id: p.id,
            manufacturer_id: p.manufacturer_id,
            sku: p.sku,
            name: p.name,
            description: p.description,
            category_id: p.category_id,
            attributes: p.attributes,
            images: p.images.iter().map(hex).collect(),
            status: p.status.as_str().to_owned(),
            unit_of_measure: p.unit_of_measure,
            case_pack: p.case_pack,
            min_order_qty: p.min_order_qty,
            base_price: p.base_price.into(),
            tiers: p.tiers.into_iter().map(PriceTierDto::from).collect(),
            created_at_ms: p.created_at_ms,
            updated_at_ms: p.updated_at_ms,
            version: p.version,
        }
    }
}

/// A new product; it starts as `draft`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProduct {
    /// Defaults to the caller's manufacturer for manufacturer users.
    pub manufacturer_id: Option<u64>,
    /// 1..=64 characters of `[A-Za-z0-9._-]`, unique per manufacturer.
    pub sku: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub category_id: Option<u64>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Default `each`.
    pub unit_of_measure: Option<String>,
    /// Default 1.
    pub case_pack: Option<u32>,
    /// Default: the case pack.
    pub min_order_qty: Option<u32>,
    pub base_price: PriceInput,
    #[serde(default)]
    pub tiers: Vec<PriceTierInput>,
}

/// Changes to a product: each member present replaces the current value (`category_id: null`
/// removes the category). Status and images change through their own routes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchProduct {
    /// The version the change is based on; a product changed since is a 409 `version_mismatch`.
    pub version: Option<u64>,
    pub sku: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u64>, nullable)]
    pub category_id: Option<Option<u64>>,
    pub attributes: Option<BTreeMap<String, String>>,
    pub unit_of_measure: Option<String>,
    pub case_pack: Option<u32>,
    pub min_order_qty: Option<u32>,
    pub base_price: Option<PriceInput>,
    pub tiers: Option<Vec<PriceTierInput>>,
}

/// A status change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductStatusChange {
    /// `draft`, `active` (publish) or `archived`.
    pub status: String,
    /// The version the change is based on (optional).
    pub version: Option<u64>,
}

/// Filters of the product list (combined with AND).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductFilter {
    #[param(value_type = Option<u64>)]
    pub manufacturer_id: Option<String>,
    #[param(value_type = Option<u64>)]
    pub category_id: Option<String>,
    /// With `category_id`: also products of its subcategories.
    pub include_descendants: Option<bool>,
    /// `draft`, `active` or `archived`.
    pub status: Option<String>,
    /// Exact SKU (SKUs are case-sensitive).
    pub sku: Option<String>,
}

/// The manufacturer a principal works for, if it is a manufacturer user.
fn own_manufacturer(principal: &Principal) -> Option<u64> {
    match principal.role {
        Some(Role::ManufacturerUser { manufacturer_id }) => Some(manufacturer_id),
        _ => None,
    }
}

/// Whether the principal sees products of `manufacturer_id` that are not `active`.
fn sees_unpublished(principal: &Principal, manufacturer_id: u64) -> bool {
    principal.can(Permission::Review)
        || principal.can(Permission::ManageCatalog { manufacturer_id })
}

/// A product the principal may see, else 404 (a product it may not see is as good as missing).
fn visible_product(state: &AppState, principal: &Principal, id: u64) -> Result<Product, ApiError> {
    require(principal, Permission::ReadCatalog)?;
    state
        .engine
        .product(principal.tenant, id)?
        .filter(|p| {
            p.status == ProductStatus::Active || sees_unpublished(principal, p.manufacturer_id)
        })
        .ok_or_else(|| not_found("product", id))
}

/// A product the principal may change: 404 if it cannot see it, 403 if it may only see it.
fn managed_product(state: &AppState, principal: &Principal, id: u64) -> Result<Product, ApiError> {
    let product = visible_product(state, principal, id)?;
    require(
        principal,
        Permission::ManageCatalog {
            manufacturer_id: product.manufacturer_id,
        },
    )?;
    Ok(product)
}

/// The engine query of a product list, with the visibility rule applied.
fn product_query(principal: &Principal, filter: &ProductFilter) -> Result<ProductQuery, ApiError> {
    let manufacturer_id = query_id("manufacturer_id", filter.manufacturer_id.as_deref())?;
    let category_id = query_id("category_id", filter.category_id.as_deref())?;
    let mut status = filter
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| parse_status("status", s))
        .transpose()?;
    let unrestricted = principal.can(Permission::Review)
        || manufacturer_id
            .is_some_and(|m| principal.can(Permission::ManageCatalog { manufacturer_id: m }));
    if !unrestricted {
        match status {
            None => status = Some(ProductStatus::Active),
            Some(ProductStatus::Active) => {}
            Some(other) => {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    format!(
                        "{} products are visible only to reviewers and to the manufacturer's own users (filter by your manufacturer_id)",
                        other.as_str()
                    ),
                ));
            }
        }
    }
    Ok(ProductQuery {
        manufacturer_id,
        category_id,
        include_descendants: filter.include_descendants.unwrap_or(false),
        status,
        after: None,
        limit: 0,
    })
}

/// Lists products in id order (stable under inserts), filtered: oldest first, or newest first
/// with `sort=-id`.
#[utoipa::path(
    get, path = "/v1/products", tag = "catalog",
    security(("bearer" = [])),
    params(ListParams, SortParam, ProductFilter),
    responses(
        (status = 200, description = "A page of products; a page may be short when many rows were skipped by filters, follow next_cursor", body = ListResponse<ProductDto>),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "May not read the catalog, or asked for unpublished products of another manufacturer", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter, sort, limit, cursor or fields", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_products(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(page): Query<ListParams>,
    Query(sort): Query<SortParam>,
    Query(filter): Query<ProductFilter>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ReadCatalog)?;
    let order = sort.order()?;
    let (limit, after, fields) = (page.limit()?, page.after_in(order)?, page.fields()?);
    let mut query = product_query(&principal, &filter)?;
    query.after = after;
    query.limit = limit;
    let sku = filter.sku.clone().filter(|s| !s.is_empty());
    let tenant = principal.tenant;
    let (items, next_after) = blocking(&state, move |engine| match sku {
        None => {
            let page = engine.list_products_ordered(tenant, &query, order)?;
            Ok((page.items, page.next_after))
        }
        Some(sku) => list_by_sku(engine, tenant, query, &sku, order),
    })
    .await?;
    let items: Vec<ProductDto> = items.into_iter().map(ProductDto::from).collect();
    read_list(
        &headers,
        &ListResponse::new_in(items, next_after, order),
        fields.as_ref(),
    )
}

/// A product list filtered by SKU: one lookup with a manufacturer, otherwise a bounded scan
/// of the other filters' pages keeping the SKU's matches.
fn list_by_sku(
    engine: &mercato_engine::Engine,
    tenant: TenantId,
    mut query: ProductQuery,
    sku: &str,
    order: IdOrder,
) -> Result<(Vec<Product>, Option<u64>), EngineError> {
    let past_cursor = |id: u64, q: &ProductQuery| match order {
        IdOrder::Ascending => q.after.is_none_or(|a| id > a),
        IdOrder::Descending => q.after.is_none_or(|a| id < a),
    };
    let matches = |p: &Product, q: &ProductQuery| {
        p.sku == sku && q.status.is_none_or(|s| p.status == s) && past_cursor(p.id, q)
    };
    if let Some(m) = query.manufacturer_id {
        let mut items = Vec::new();
        if let Some(p) = engine.product_by_sku(tenant, m, sku)?
            && matches(&p, &query)
        {
            let in_category = match (query.category_id, p.category_id) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(c), Some(pc)) => {
                    c == pc
                        || (query.include_descendants
                            && engine.category_descendants(tenant, c)?.contains(&pc))
                }
            };
            if in_category {
                items.push(p);
            }
        }
        return Ok((items, None));
    }
    let limit = query.limit;
    query.limit = mercato_engine::catalog::PAGE_LIMIT_MAX;
    let mut items = Vec::new();
    for _ in 0..SKU_SCAN_PAGES_MAX {
        let page = engine.list_products_ordered(tenant, &query, order)?;
        for p in page.items {
            if p.sku == sku {
                items.push(p);
                if items.len() == limit {
                    let last = items.last().map(|p| p.id);
                    return Ok((items, last));
                }
            }
        }
        match page.next_after {
            Some(next) => query.after = Some(next),
            None => return Ok((items, None)),
        }
    }
    Ok((items, query.after))
}

/// Creates a product (as `draft`).
#[utoipa::path(
    post, path = "/v1/products", tag = "catalog",
    security(("bearer" = [])),
    request_body = CreateProduct,
    responses(
        (status = 201, description = "Created", body = ProductDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "May not manage this manufacturer's catalog", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`sku_taken`: the manufacturer already has this SKU", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field (sku, name, case_pack, min_order_qty, base_price, tiers[i].*, ...)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn create_product(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(body): Json<CreateProduct>,
) -> Result<Response, ApiError> {
    let manufacturer_id = body
        .manufacturer_id
        .or_else(|| own_manufacturer(&principal))
        .ok_or_else(|| ApiError::invalid_field("manufacturer_id", "is required"))?;
    require(&principal, Permission::ManageCatalog { manufacturer_id })?;
    let tenant = principal.tenant;
    let currency = state.engine.catalog_settings(tenant)?.currency;
    let case_pack = body.case_pack.unwrap_or(1);
    let base_price = body.base_price.to_money("base_price", currency)?;
    let input = ProductInput {
        manufacturer_id,
        sku: body.sku,
        name: body.name,
        description: body.description,
        category_id: body.category_id,
        attributes: body.attributes,
        images: Vec::new(),
        unit_of_measure: body.unit_of_measure.unwrap_or_else(|| "each".to_owned()),
        case_pack,
        min_order_qty: body.min_order_qty.unwrap_or(case_pack),
        base_price,
        tiers: tiers_in(&body.tiers, currency)?,
    };
    let product = state
        .engine
        .create_product(tenant, principal.actor.clone(), input)
        .await?;
    let location = format!("/v1/products/{}", product.id);
    Ok(with_location(
        created(&ProductDto::from(product))?,
        &location,
    ))
}

/// A product. Products that are not `active` are visible to reviewers and their
/// manufacturer's users only.
#[utoipa::path(
    get, path = "/v1/products/{id}", tag = "catalog",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Product id"), ("fields" = Option<String>, Query, description = "Comma-separated fields to return")),
    responses(
        (status = 200, description = "The product", body = ProductDto),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "May not read the catalog", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such product visible to the caller", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_product(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Query(page): Query<ListParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let fields = page.fields()?;
    let product = visible_product(&state, &principal, id)?;
    read_json(&headers, &ProductDto::from(product), fields.as_ref())
}

/// Changes a product's fields.
#[utoipa::path(
    patch, path = "/v1/products/{id}", tag = "catalog",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Product id")),
    request_body = PatchProduct,
    responses(
        (status = 200, description = "The changed product", body = ProductDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "May not manage this manufacturer's catalog", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such product visible to the caller", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`sku_taken` or `version_mismatch`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn patch_product(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Json(body): Json<PatchProduct>,
) -> Result<Response, ApiError> {
    let current = managed_product(&state, &principal, id)?;
    let tenant = principal.tenant;
    let currency = state.engine.catalog_settings(tenant)?.currency;
    let base_price = match &body.base_price {
        Some(p) => p.to_money("base_price", currency)?,
        None => current.base_price,
    };
    let tiers = match &body.tiers {
        Some(t) => tiers_in(t, currency)?,
        None => current.tiers.clone(),
    };
    let expected_version = Some(body.version.unwrap_or(current.version));
    let input = ProductInput {
        manufacturer_id: current.manufacturer_id,
        sku: body.sku.unwrap_or(current.sku),
        name: body.name.unwrap_or(current.name),
        description: body.description.unwrap_or(current.description),
        category_id: body.category_id.unwrap_or(current.category_id),
        attributes: body.attributes.unwrap_or(current.attributes),
        images: current.images,
        unit_of_measure: body.unit_of_measure.unwrap_or(current.unit_of_measure),
        case_pack: body.case_pack.unwrap_or(current.case_pack),
        min_order_qty: body.min_order_qty.unwrap_or(current.min_order_qty),
        base_price,
        tiers,
    };
    let product = state
        .engine
        .update_product(tenant, principal.actor.clone(), id, expected_version, input)
        .await?;
    ok_json(&ProductDto::from(product))
}

/// Publishes (`active`), unpublishes (`draft`) or archives (`archived`) a product. Publishing
/// needs a verified manufacturer when the catalog settings say so.
#[utoipa::path(
    put, path = "/v1/products/{id}/status", tag = "catalog",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Product id")),
    request_body = ProductStatusChange,
    responses(
        (status = 200, description = "The product with its new status", body = ProductDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "May not manage this manufacturer's catalog", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such product visible to the caller", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`manufacturer_not_verified`, `illegal_status_transition` (archived -> active) or `version_mismatch`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field (status)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn set_product_status(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Json(body): Json<ProductStatusChange>,
) -> Result<Response, ApiError> {
    let status = parse_status("status", &body.status)?;
    managed_product(&state, &principal, id)?;
    let product = state
        .engine
        .set_product_status(
            principal.tenant,
            principal.actor.clone(),
            id,
            body.version,
            status,
        )
        .await?;
    ok_json(&ProductDto::from(product))
}

/// `?quantity=N` (and, for staff, `customer_group_id`) of the price route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PriceQuery {
    /// Units to price, 1..=10,000,000.
    #[param(value_type = u32)]
    pub quantity: Option<String>,
    /// Price as a member of this customer group (not for buyers, whose group is their
    /// retailer's).
    #[param(value_type = Option<u64>)]
    pub customer_group_id: Option<String>,
}

/// What the caller pays per unit for a quantity of a product.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductPrice {
    pub product_id: u64,
    pub quantity: u32,
    /// The customer group whose price list applied, if any.
    pub customer_group_id: Option<u64>,
    pub unit_price: MoneyDto,
    /// `unit_price * quantity`.
    pub total: MoneyDto,
    /// Whether the quantity meets the minimum order quantity and is a multiple of the case
    /// pack.
    pub orderable_quantity: bool,
}

/// The caller's unit price for `quantity` units: the customer group's price list (a buyer's
/// group is its retailer's), else the base price, with the volume tier reached.
#[utoipa::path(
    get, path = "/v1/products/{id}/price", tag = "catalog",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Product id"), PriceQuery),
    responses(
        (status = 200, description = "The unit price and total", body = ProductPrice),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "May not read the catalog, or a buyer asked for another group's price", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such product (or customer group) visible to the caller", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field (quantity, customer_group_id)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn product_price(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Query(query): Query<PriceQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let quantity = query
        .quantity
        .as_deref()
        .ok_or_else(|| ApiError::invalid_field("quantity", "is required"))?
        .parse::<u32>()
        .ok()
        .filter(|q| (1..=validate::QUANTITY_MAX).contains(q))
        .ok_or_else(|| {
            ApiError::invalid_field(
                "quantity",
                format!("must be a whole number in 1..={}", validate::QUANTITY_MAX),
            )
        })?;
    let asked_group = query_id("customer_group_id", query.customer_group_id.as_deref())?;
    let product = visible_product(&state, &principal, id)?;
    let tenant = principal.tenant;
    let group = match principal.role {
        Some(Role::Buyer { retailer_id } | Role::BuyerApprover { retailer_id }) => {
            let own = state
                .engine
                .retailer(tenant, retailer_id)?
                .and_then(|r| r.customer_group_id);
            if asked_group.is_some() && asked_group != own {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    "a buyer is priced as its retailer's customer group only",
                ));
            }
            own
        }
        _ => {
            if let Some(g) = asked_group {
                state
                    .engine
                    .customer_group(tenant, g)?
                    .ok_or_else(|| not_found("customer_group", g))?;
            }
            asked_group
        }
    };
    let unit = state
        .engine
        .unit_price(tenant, id, group, quantity)?
        .ok_or_else(|| not_found("product", id))?;
    let total = unit.checked_mul_qty(quantity).ok_or_else(|| {
        ApiError::invalid_field("quantity", "the total does not fit in an amount")
    })?;
    let orderable_quantity = quantity >= product.min_order_qty
        && product.case_pack > 0
        && quantity.is_multiple_of(product.case_pack);
    let price = ProductPrice {
        product_id: id,
        quantity,
        customer_group_id: group,
        unit_price: unit.into(),
        total: total.into(),
        orderable_quantity,
    };
    read_json(&headers, &price, None)
}

// ---------------------------------------------------------------------------------------------
// Images

/// An image media type recognised from its first bytes.
fn image_media_type(bytes: &[u8]) -> Option<&'static str> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.starts_with(PNG) {
        Some("image/png")
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// A stored image of a product.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductImage {
    /// SHA-256 of the bytes, in hex: the image's name.
    pub hash: String,
    pub content_type: String,
    pub bytes: u64,
    /// `/v1/products/{id}/images/{hash}`.
    pub url: String,
    pub product: ProductDto,
}

/// Adds an image to a product: the raw bytes of a PNG, JPEG or WebP file (at most 8 MiB),
/// recognised by their content. Adding an image the product already has changes nothing.
#[utoipa::path(
    post, path = "/v1/products/{id}/images", tag = "catalog",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Product id")),
    request_body(content = Vec<u8>, description = "The image file", content_type = "image/png"),
    responses(
        (status = 201, description = "Stored and appended to the product's images", body = ProductImage),
        (status = 200, description = "The product already had this image; nothing changed", body = ProductImage),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "May not manage this manufacturer's catalog", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such product visible to the caller", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`version_mismatch`: the product changed meanwhile", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Larger than 8 MiB", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "Not a PNG, JPEG or WebP image", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "The product has the most images allowed (`images`)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn upload_image(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let product = managed_product(&state, &principal, id)?;
    let bytes = body.map_err(body_rejection)?;
    if bytes.len() > IMAGE_BYTES_MAX {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "the image is {} bytes; at most {IMAGE_BYTES_MAX} are accepted",
                bytes.len()
            ),
        ));
    }
    let content_type = image_media_type(&bytes).ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "the body is not a PNG, JPEG or WebP image",
        )
    })?;
    let raw_len = bytes.len() as u64;
    let put = blocking(&state, move |engine| {
        Ok(engine.storage().put_blob(&bytes)?)
    })
    .await?;
    let hash = *put.hash.as_bytes();
    let already_there = product.images.contains(&hash);
    let product = if already_there {
        product
    } else {
        let mut images = product.images.clone();
        images.push(hash);
        let input = ProductInput {
            manufacturer_id: product.manufacturer_id,
            sku: product.sku,
            name: product.name,
            description: product.description,
            category_id: product.category_id,
            attributes: product.attributes,
            images,
            unit_of_measure: product.unit_of_measure,
            case_pack: product.case_pack,
            min_order_qty: product.min_order_qty,
            base_price: product.base_price,
            tiers: product.tiers,
        };
        state
            .engine
            .update_product(
                principal.tenant,
                principal.actor.clone(),
                id,
                Some(product.version),
                input,
            )
            .await?
    };
    let url = format!("/v1/products/{id}/images/{}", put.hash);
    let image = ProductImage {
        hash: put.hash.to_string(),
        content_type: content_type.to_owned(),
        bytes: raw_len,
        url: url.clone(),
        product: product.into(),
    };
    let response = if already_there {
        ok_json(&image)?
    } else {
        created(&image)?
    };
    Ok(with_location(response, &url))
}

/// An image of a product, with its media type and a strong ETag (its SHA-256).
#[utoipa::path(
    get, path = "/v1/products/{id}/images/{hash}", tag = "catalog",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Product id"), ("hash" = String, Path, description = "SHA-256 of the image, 64 hex digits")),
    responses(
        (status = 200, description = "The image bytes", content_type = "image/*"),
        (status = 304, description = "Unchanged (If-None-Match names the ETag)"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "May not read the catalog", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such product visible to the caller, or it has no such image", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "The hash is not 64 lowercase hex digits", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_image(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((id, hash)): Path<(u64, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let hash = parse_hash(&hash)?;
    let product = visible_product(&state, &principal, id)?;
    if !product.images.contains(hash.as_bytes()) {
        return Err(not_found("image", hash));
    }
    let etag = format!("\"{hash}\"");
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t == etag || t.strip_prefix("W/") == Some(etag.as_str())
        });
    let etag_value = HeaderValue::from_str(&etag).map_err(ApiError::internal)?;
    if matches {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        response.headers_mut().insert(header::ETAG, etag_value);
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL_PRIVATE),
        );
        return Ok(response);
    }
    let tenant = principal.tenant;
    let bytes = blocking(&state, move |engine| {
        match engine.storage().read_blob(tenant, &hash) {
            // A product may name a hash whose bytes were never uploaded (CSV import takes
            // hashes): that image is missing, not a server fault.
            Err(mercato_storage::StorageError::Blob(
                mercato_storage::blob::BlobError::NotFound { .. },
            )) => Ok(None),
            other => Ok(other?),
        }
    })
    .await?
    .ok_or_else(|| not_found("image", hash))?;
    let content_type = image_media_type(&bytes).unwrap_or("application/octet-stream");
    let mut response = Response::new(Body::from(bytes));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::ETAG, etag_value);
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL_PRIVATE),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

/// Removes an image from a product.
#[utoipa::path(
    delete, path = "/v1/products/{id}/images/{hash}", tag = "catalog",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Product id"), ("hash" = String, Path, description = "SHA-256 of the image, 64 hex digits")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "May not manage this manufacturer's catalog", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such product visible to the caller, or it has no such image", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`version_mismatch`: the product changed meanwhile", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "The hash is not 64 lowercase hex digits", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn delete_image(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((id, hash)): Path<(u64, String)>,
) -> Result<Response, ApiError> {
    let hash = parse_hash(&hash)?;
    let product = managed_product(&state, &principal, id)?;
    if !product.images.contains(hash.as_bytes()) {
        return Err(not_found("image", hash));
    }
    let images = product
        .images
        .iter()
        .filter(|h| *h != hash.as_bytes())
        .copied()
        .collect();
    let input = ProductInput {
        manufacturer_id: product.manufacturer_id,
        sku: product.sku,
        name: product.name,
        description: product.description,
        category_id: product.category_id,
        attributes: product.attributes,
        images,
        unit_of_measure: product.unit_of_measure,
        case_pack: product.case_pack,
        min_order_qty: product.min_order_qty,
        base_price: product.base_price,
        tiers: product.tiers,
    };
    state
        .engine
        .update_product(
            principal.tenant,
            principal.actor.clone(),
            id,
            Some(product.version),
            input,
        )
        .await?;
    Ok(no_content())
}

// ---------------------------------------------------------------------------------------------
// CSV import and export

/// `?mode=` of an import.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `file` (default): any invalid row and nothing is written. `batch`: rows are written in
    /// batches of 500 lines, a batch with an invalid row is skipped whole.
    pub mode: Option<String>,
}

/// One problem of an imported file.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportErrorDto {
    /// Line of the file where the row starts (the header is line 1).
    pub line: u64,
    /// The column (or field) at fault, when there is one.
    pub column: Option<String>,
    pub message: String,
}

impl From<ImportRowError> for ImportErrorDto {
    fn from(e: ImportRowError) -> Self {
        ImportErrorDto {
            line: e.line,
            column: e.column,
            message: e.message,
        }
    }
}

/// One write command of an import.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportBatchDto {
    pub first_line: u64,
    pub last_line: u64,
    pub rows: u32,
    pub committed: bool,
    pub created: u32,
    pub updated: u32,
    pub error: Option<String>,
}

impl From<ImportBatch> for ImportBatchDto {
    fn from(b: ImportBatch) -> Self {
        ImportBatchDto {
            first_line: b.first_line,
            last_line: b.last_line,
            rows: b.rows,
            committed: b.committed,
            created: b.created,
            updated: b.updated,
            error: b.error,
        }
    }
}

/// What an import did. Also the extension members of its 422/409 problem.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportReportDto {
    /// `file` or `batch`.
    pub mode: String,
    pub rows_read: u64,
    pub rows_invalid: u64,
    pub rows_committed: u64,
    pub created: u64,
    pub updated: u64,
    /// Row and file errors with their line numbers (at most 1,000).
    pub errors: Vec<ImportErrorDto>,
    pub errors_truncated: bool,
    pub batches: Vec<ImportBatchDto>,
    /// Why writing stopped before the end, if it did.
    pub aborted: Option<String>,
}

impl From<ImportReport> for ImportReportDto {
    fn from(r: ImportReport) -> Self {
        ImportReportDto {
            mode: match r.mode {
                ImportMode::WholeFile => "file",
                ImportMode::PerBatch => "batch",
            }
            .to_owned(),
            rows_read: r.rows_read,
            rows_invalid: r.rows_invalid,
            rows_committed: r.rows_committed,
            created: r.created,
            updated: r.updated,
            errors: r.errors.into_iter().map(ImportErrorDto::from).collect(),
            errors_truncated: r.errors_truncated,
            batches: r.batches.into_iter().map(ImportBatchDto::from).collect(),
            aborted: r.aborted,
        }
    }
}

/// Splits a CSV text into records of fields (RFC 4180 quoting) and calls `f` with each
/// record's index (the header is 0) and fields; stops at the first error of `f`.
fn csv_records<E>(
    text: &[u8],
    mut f: impl FnMut(usize, &[String]) -> Result<(), E>,
) -> Result<(), E> {
    let mut record: Vec<String> = Vec::new();
    let mut field: Vec<u8> = Vec::new();
    let mut in_quotes = false;
    let mut index = 0usize;
    let mut i = 0usize;
    while i < text.len() {
        let b = text[i];
        if in_quotes {
            if b == b'"' {
                if text.get(i + 1) == Some(&b'"') {
                    field.push(b'"');
                    i += 1;
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(b);
            }
        } else {
            match b {
                b'"' => in_quotes = true,
                b',' => record.push(String::from_utf8_lossy(&field).into_owned()),
                b'\n' => {
                    record.push(String::from_utf8_lossy(&field).into_owned());
                    f(index, &record)?;
                    record.clear();
                    index += 1;
                }
                b'\r' if text.get(i + 1) == Some(&b'\n') => {}
                _ => field.push(b),
            }
            if matches!(b, b',' | b'\n') {
                field.clear();
            }
        }
        i += 1;
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(String::from_utf8_lossy(&field).into_owned());
        f(index, &record)?;
    }
    Ok(())
}

/// Refuses an import naming a manufacturer whose catalog the principal may not manage. Rows
/// whose `manufacturer_id` is not a number are left to the import's own validation.
fn check_import_rights(principal: &Principal, text: &[u8]) -> Result<(), ApiError> {
    let mut column: Option<usize> = None;
    let mut allowed: Option<u64> = None;
    csv_records(text, |index, record| {
        if index == 0 {
            column = record.iter().position(|c| c.trim() == "manufacturer_id");
            return Ok(());
        }
        let cell = column.and_then(|c| record.get(c));
        if let Some(m) = cell.and_then(|c| c.trim().parse::<u64>().ok())
            && allowed != Some(m)
        {
            require(principal, Permission::ManageCatalog { manufacturer_id: m })?;
            allowed = Some(m);
        }
        Ok(())
    })
}

/// Imports products from CSV (`text/csv`, at most 32 MiB). The format is the export's: one
/// header line (`manufacturer_id`, `sku`, `name`, `base_price`, `description`,
/// `category_id`, `unit_of_measure`, `case_pack`, `min_order_qty`, `tiers`, `status`,
/// `images`, `attr.<name>`), rows keyed by `(manufacturer_id, sku)`: an existing product is
/// updated, otherwise one is created. Every row is validated before anything is written.
#[utoipa::path(
    post, path = "/v1/products/import", tag = "catalog",
    security(("bearer" = [])),
    params(ImportQuery),
    request_body(content = String, description = "The CSV file", content_type = "text/csv"),
    responses(
        (status = 200, description = "Imported (in batch mode, possibly with skipped batches listed in `errors` and `batches`)", body = ImportReportDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "A row names a manufacturer whose catalog the caller may not manage", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`import_incomplete`: in file mode, a batch failed after earlier ones committed (the problem carries the report; importing the same file again completes it)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Larger than 32 MiB", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "The body is not CSV", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid rows and nothing written: `errors` lists each with its line and column; the other report members are in the problem too", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn import_products(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(query): Query<ImportQuery>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    // Some catalog to manage (its own for a manufacturer user, any for an admin); each row's
    // manufacturer is checked below.
    require(
        &principal,
        Permission::ManageCatalog {
            manufacturer_id: own_manufacturer(&principal).unwrap_or_default(),
        },
    )?;
    let mode = match query.mode.as_deref() {
        None | Some("") | Some("file") => ImportMode::WholeFile,
        Some("batch") => ImportMode::PerBatch,
        Some(_) => return Err(ApiError::invalid_field("mode", "must be file or batch")),
    };
    if let Some(media) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        && !CSV_MEDIA_TYPES.contains(&media.as_str())
    {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("the body must be text/csv, not {media}"),
        ));
    }
    let text = body.map_err(body_rejection)?;
    if text.len() > IMPORT_BODY_BYTES_MAX {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "the file is {} bytes; at most {IMPORT_BODY_BYTES_MAX} are accepted",
                text.len()
            ),
        ));
    }
    let rights_text = text.clone();
    let rights_principal = principal.clone();
    tokio::task::spawn_blocking(move || check_import_rights(&rights_principal, &rights_text))
        .await
        .map_err(ApiError::internal)??;
    let tenant = principal.tenant;
    let actor = principal.actor.clone();
    let report = blocking(&state, move |engine| {
        engine.import_products_csv(tenant, actor, &text[..], mode, &|_| {})
    })
    .await?;
    let nothing_written = report.rows_committed == 0;
    let failed = !report.errors.is_empty() || report.aborted.is_some();
    let report = ImportReportDto::from(report);
    if failed && nothing_written {
        let detail = format!(
            "{} of {} rows are invalid; nothing was imported",
            report.rows_invalid, report.rows_read
        );
        return Err(report_problem(
            ErrorCode::UnprocessableContent,
            None,
            detail,
            &report,
        ));
    }
    if failed && mode == ImportMode::WholeFile {
        let detail = format!(
            "the import stopped after {} of {} rows: {}",
            report.rows_committed,
            report.rows_read,
            report.aborted.as_deref().unwrap_or("a batch failed")
        );
        return Err(report_problem(
            ErrorCode::Conflict,
            Some("import_incomplete"),
            detail,
            &report,
        ));
    }
    ok_json(&report)
}

fn report_problem(
    code: ErrorCode,
    specific: Option<&'static str>,
    detail: String,
    report: &ImportReportDto,
) -> ApiError {
    match serde_json::to_value(report) {
        Ok(serde_json::Value::Object(extra)) => ApiError::detailed(code, specific, detail, extra),
        Ok(_) => ApiError::new(code, detail),
        Err(e) => ApiError::internal(e),
    }
}

/// Filters of an export.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportFilter {
    /// Defaults to the caller's manufacturer for manufacturer users.
    #[param(value_type = Option<u64>)]
    pub manufacturer_id: Option<String>,
    #[param(value_type = Option<u64>)]
    pub category_id: Option<String>,
    /// With `category_id`: also products of its subcategories.
    pub include_descendants: Option<bool>,
    /// `draft`, `active` or `archived`.
    pub status: Option<String>,
}

/// A writer that refuses to grow past [`EXPORT_BYTES_MAX`].
struct BoundedBuffer {
    bytes: Vec<u8>,
    overflowed: bool,
}

impl Write for BoundedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > EXPORT_BYTES_MAX {
            self.overflowed = true;
            return Err(std::io::Error::other("export too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Exports products as CSV in the import format (an exported file imports back unchanged), in
/// id order, from one consistent snapshot.
#[utoipa::path(
    get, path = "/v1/products/export", tag = "catalog",
    security(("bearer" = [])),
    params(ExportFilter),
    responses(
        (status = 200, description = "The CSV file", body = String, content_type = "text/csv"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "May not export these products", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`too_many_attribute_columns`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter, or the export would exceed 256 MiB (narrow it with filters)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn export_products(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(filter): Query<ExportFilter>,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ReadCatalog)?;
    let manufacturer_id = match query_id("manufacturer_id", filter.manufacturer_id.as_deref())? {
        Some(m) => Some(m),
        None if principal.can(Permission::Review) => None,
        None => own_manufacturer(&principal),
    };
    let product_filter = ProductFilter {
        manufacturer_id: manufacturer_id.map(|m| m.to_string()),
        category_id: filter.category_id,
        include_descendants: filter.include_descendants,
        status: filter.status,
        sku: None,
    };
    let query = product_query(&principal, &product_filter)?;
    let tenant = principal.tenant;
    let (bytes, overflowed) = blocking(&state, move |engine| {
        let mut out = BoundedBuffer {
            bytes: Vec::new(),
            overflowed: false,
        };
        match engine.export_products_csv(tenant, &query, &mut out) {
            Ok(_) => Ok((out.bytes, false)),
            Err(EngineError::Io(_)) if out.overflowed => Ok((Vec::new(), true)),
            Err(e) => Err(e),
        }
    })
    .await?;
    if overflowed {
        return Err(ApiError::new(
            ErrorCode::UnprocessableContent,
            format!(
                "the export would exceed {EXPORT_BYTES_MAX} bytes; filter by manufacturer_id, category_id or status"
            ),
        ));
    }
    let mut response = Response::new(Body::from(bytes));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"products.csv\""),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL_NO_STORE),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_recognised_by_their_first_bytes() {
        assert_eq!(
            image_media_type(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Some("image/png")
        );
        assert_eq!(
            image_media_type(b"\xff\xd8\xff\xe0\0\x10JFIF"),
            Some("image/jpeg")
        );
        assert_eq!(
            image_media_type(b"RIFF\x24\0\0\0WEBPVP8 "),
            Some("image/webp")
        );
        assert_eq!(image_media_type(b"RIFF\x24\0\0\0WAVEfmt "), None);
        assert_eq!(image_media_type(b"GIF89a"), None);
        assert_eq!(image_media_type(b""), None);
    }

    #[test]
    fn slugs_are_derived_from_names() {
        assert_eq!(slug_from_name("Power Tools & Drills"), "power-tools-drills");
        assert_eq!(slug_from_name("  --Äpfel 2000--"), "pfel-2000");
        assert_eq!(slug_from_name("!!!"), "");
        assert!(slug_from_name(&"a".repeat(200)).len() <= validate::SLUG_CHARS_MAX);
    }

    #[test]
    fn patch_tells_null_from_absent() {
        let absent: PatchCategory = serde_json::from_str(r#"{"name": "x"}"#).expect("parses");
        assert_eq!(absent.parent_id, None);
        let null: PatchCategory = serde_json::from_str(r#"{"parent_id": null}"#).expect("parses");
        assert_eq!(null.parent_id, Some(None));
        let set: PatchCategory = serde_json::from_str(r#"{"parent_id": 4}"#).expect("parses");
        assert_eq!(set.parent_id, Some(Some(4)));
    }

    #[test]
    fn csv_records_follow_quoting() {
        let text = b"sku,manufacturer_id\n\"a,\"\"b\"\"\",7\r\n\"multi\nline\",8\nc,9";
        let mut seen = Vec::new();
        csv_records::<()>(text, |i, record| {
            seen.push((i, record.to_vec()));
            Ok(())
        })
        .expect("scans");
        let row = |a: &str, b: &str| vec![a.to_owned(), b.to_owned()];
        assert_eq!(
            seen,
            vec![
                (0, row("sku", "manufacturer_id")),
                (1, row("a,\"b\"", "7")),
                (2, row("multi\nline", "8")),
                (3, row("c", "9")),
            ]
        );
    }

    #[test]
    fn every_catalog_route_is_documented_with_its_errors() {
        let doc = crate::app::openapi_document();
        let paths = [
            ("/v1/categories", vec!["get", "post"]),
            ("/v1/categories/{id}", vec!["get", "patch"]),
            ("/v1/categories/{id}/children", vec!["get"]),
            ("/v1/catalog/settings", vec!["get", "put"]),
            ("/v1/products", vec!["get", "post"]),
            ("/v1/products/{id}", vec!["get", "patch"]),
            ("/v1/products/{id}/status", vec!["put"]),
            ("/v1/products/{id}/price", vec!["get"]),
            ("/v1/products/{id}/images", vec!["post"]),
            ("/v1/products/{id}/images/{hash}", vec!["get", "delete"]),
            ("/v1/products/import", vec!["post"]),
            ("/v1/products/export", vec!["get"]),
        ];
        let json = serde_json::to_value(&doc).expect("document serializes");
        for (path, methods) in paths {
            for method in methods {
                let operation = &json["paths"][path][method];
                assert!(operation.is_object(), "{method} {path} is not documented");
                let responses = &operation["responses"];
                assert!(responses["401"].is_object(), "{method} {path}: no 401");
                assert!(responses["403"].is_object(), "{method} {path}: no 403");
            }
        }
        for schema in [
            "ProductDto",
            "CategoryDetail",
            "ImportReportDto",
            "ProductPrice",
        ] {
            assert!(
                json["components"]["schemas"][schema].is_object(),
                "schema {schema} missing"
            );
        }
    }
}
