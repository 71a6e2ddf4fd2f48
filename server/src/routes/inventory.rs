//! `/v1` routes of inventory: warehouses, a product's stock per warehouse (on hand, reserved,
//! available) and the stock adjustment log.
//!
//! Who may do what:
//! - warehouses and stock levels are read by anyone who may read the catalog; only a tenant
//!   admin creates warehouses;
//! - an adjustment of a product's stock needs `ManageInventory` for the product's manufacturer
//!   (that manufacturer's users, or a tenant admin);
//! - the adjustment log is the tenant admin's; a manufacturer user reads it one of its own
//!   products at a time (`?product_id=`).
//!
//! Stock changes made by orders (reservations, shipments) happen inside the orders commands;
//! shipments appear in the adjustment log with the reason `shipment` and the sub-order id.

use crate::api::{
    Auth, ListParams, ListResponse, blocking, created, not_found, read_json, read_list, require,
};
use crate::app::AppState;
use crate::problem::{ApiError, ErrorCode};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use mercato_engine::accounts::{Permission, Principal, Role, Scope};
use mercato_engine::inventory::{
    AdjustmentQuery, ProductStock, StockAdjusted, StockAdjustmentInput, WarehouseStock,
};
use mercato_engine::tables::{AdjustmentReason, StockAdjustment, StockLevel, Warehouse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_warehouses, create_warehouse))
        .routes(routes!(get_warehouse))
        .routes(routes!(product_stock))
        .routes(routes!(list_adjustments, create_adjustment))
}

/// A place stock is kept.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = Warehouse)]
pub struct WarehouseDto {
    pub id: u64,
    pub name: String,
    /// Short code, unique in the tenant (`[A-Za-z0-9._-]`, at most 32 characters).
    pub code: String,
    pub created_at_ms: u64,
}

impl From<Warehouse> for WarehouseDto {
    fn from(w: Warehouse) -> Self {
        WarehouseDto {
            id: w.id,
            name: w.name,
            code: w.code,
            created_at_ms: w.created_at_ms,
        }
    }
}

/// A new warehouse.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateWarehouse)]
pub struct CreateWarehouseRequest {
    /// 1..=200 bytes.
    pub name: String,
    /// 1..=32 characters of `[A-Za-z0-9._-]`, unique in the tenant.
    pub code: String,
}

/// One warehouse's stock of a product.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[schema(as = WarehouseStock)]
pub struct WarehouseStockDto {
    pub warehouse_id: u64,
    /// Units physically in the warehouse.
    pub on_hand: u64,
    /// Units promised to sub-orders and not yet shipped.
    pub reserved: u64,
    /// `on_hand - reserved`: units that can still be ordered.
    pub available: u64,
}

impl From<WarehouseStock> for WarehouseStockDto {
    fn from(w: WarehouseStock) -> Self {
        WarehouseStockDto {
            warehouse_id: w.warehouse_id,
            on_hand: w.on_hand,
            reserved: w.reserved,
            available: w.available,
        }
    }
}

/// A product's stock: totals and one entry per warehouse that holds or held it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = ProductStock)]
pub struct ProductStockDto {
    pub product_id: u64,
    pub on_hand: u64,
    pub reserved: u64,
    pub available: u64,
    pub warehouses: Vec<WarehouseStockDto>,
}

impl From<ProductStock> for ProductStockDto {
    fn from(s: ProductStock) -> Self {
        ProductStockDto {
            product_id: s.product_id,
            on_hand: s.on_hand,
            reserved: s.reserved,
            available: s.available,
            warehouses: s.warehouses.into_iter().map(Into::into).collect(),
        }
    }
}

/// Why stock changed. `shipment` is recorded by shipping a sub-order only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = AdjustmentReason)]
pub enum AdjustmentReasonDto {
    Receipt,
    Count,
    Damage,
    Loss,
    Return,
    Correction,
    Shipment,
}

impl From<AdjustmentReason> for AdjustmentReasonDto {
    fn from(r: AdjustmentReason) -> Self {
        match r {
            AdjustmentReason::Receipt => AdjustmentReasonDto::Receipt,
            AdjustmentReason::Count => AdjustmentReasonDto::Count,
            AdjustmentReason::Damage => AdjustmentReasonDto::Damage,
            AdjustmentReason::Loss => AdjustmentReasonDto::Loss,
            AdjustmentReason::Return => AdjustmentReasonDto::Return,
            AdjustmentReason::Correction => AdjustmentReasonDto::Correction,
            AdjustmentReason::Shipment => AdjustmentReasonDto::Shipment,
        }
    }
}

impl From<AdjustmentReasonDto> for AdjustmentReason {
    fn from(r: AdjustmentReasonDto) -> Self {
        match r {
            AdjustmentReasonDto::Receipt => AdjustmentReason::Receipt,
            AdjustmentReasonDto::Count => AdjustmentReason::Count,
            AdjustmentReasonDto::Damage => AdjustmentReason::Damage,
            AdjustmentReasonDto::Loss => AdjustmentReason::Loss,
            AdjustmentReasonDto::Return => AdjustmentReason::Return,
            AdjustmentReasonDto::Correction => AdjustmentReason::Correction,
            AdjustmentReasonDto::Shipment => AdjustmentReason::Shipment,
        }
    }
}

/// One recorded change of a product's on-hand units in a warehouse.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = StockAdjustment)]
pub struct StockAdjustmentDto {
    pub id: u64,
    pub warehouse_id: u64,
    pub product_id: u64,
    /// Change of `on_hand` (negative for write-offs and shipments).
    pub delta: i64,
    pub reason: AdjustmentReasonDto,
    pub note: Option<String>,
    /// For shipments: the sub-order shipped.
    pub suborder_id: Option<u64>,
    /// The level right after the change.
    pub on_hand_after: u64,
    pub reserved_after: u64,
    pub at_ms: u64,
    /// Who made the change: `user/<id>`, `api_key/<id>` or `system`.
    pub actor: String,
}

impl From<StockAdjustment> for StockAdjustmentDto {
    fn from(a: StockAdjustment) -> Self {
        StockAdjustmentDto {
            id: a.id,
            warehouse_id: a.warehouse_id,
            product_id: a.product_id,
            delta: a.delta,
            reason: a.reason.into(),
            note: a.note,
            suborder_id: a.suborder_id,
            on_hand_after: a.on_hand_after,
            reserved_after: a.reserved_after,
            at_ms: a.at_ms,
            actor: a.actor.to_string(),
        }
    }
}

/// A stock level of one product in one warehouse.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[schema(as = StockLevel)]
pub struct StockLevelDto {
    pub on_hand: u64,
    pub reserved: u64,
    pub available: u64,
}

impl From<StockLevel> for StockLevelDto {
    fn from(l: StockLevel) -> Self {
        StockLevelDto {
            on_hand: l.on_hand,
            reserved: l.reserved,
            available: l.available(),
        }
    }
}

/// A manual stock change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateStockAdjustment)]
pub struct CreateAdjustmentRequest {
    pub warehouse_id: u64,
    pub product_id: u64,
    /// Units added (positive) or removed (negative); never zero, at most 10^9 in magnitude.
    /// Removing more than is available (on hand minus reserved) is refused with 409.
    pub delta: i64,
    /// Any reason except `shipment`.
    pub reason: AdjustmentReasonDto,
    /// Free text, at most 500 bytes.
    pub note: Option<String>,
}

/// The recorded adjustment and the level after it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = StockAdjusted)]
pub struct StockAdjustedDto {
    pub adjustment: StockAdjustmentDto,
    pub level: StockLevelDto,
}

impl From<StockAdjusted> for StockAdjustedDto {
    fn from(a: StockAdjusted) -> Self {
        StockAdjustedDto {
            adjustment: a.adjustment.into(),
            level: a.level.into(),
        }
    }
}

/// Filters of the adjustment log.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdjustmentFilter {
    /// Only this product's adjustments (required for manufacturer users: one of their products).
    pub product_id: Option<u64>,
}

/// `?fields=` of a single read.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FieldsParam {
    /// Comma-separated top-level fields to return (default: all).
    pub fields: Option<String>,
}

impl FieldsParam {
    fn fields(&self) -> Result<Option<crate::api::FieldSet>, ApiError> {
        self.fields
            .as_deref()
            .map(crate::api::FieldSet::parse)
            .transpose()
    }
}

/// Whether the principal may see and change every manufacturer's stock: a tenant admin whose
/// credential carries the inventory scope.
fn manages_all_inventory(principal: &Principal) -> bool {
    principal.role == Some(Role::TenantAdmin) && principal.scopes.grants(Scope::InventoryWrite)
}

/// Lists the tenant's warehouses by id.
#[utoipa::path(
    get, path = "/v1/warehouses", tag = "inventory",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "A page of warehouses", body = ListResponse<WarehouseDto>),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not read the catalog", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Bad `limit`, `cursor` or `fields` (`field` names it)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_warehouses(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(params): Query<ListParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ReadCatalog)?;
    let (limit, after, fields) = (params.limit()?, params.after()?, params.fields()?);
    let tenant = principal.tenant;
    let page = blocking(&state, move |engine| {
        engine.warehouses(tenant, after, limit)
    })
    .await?;
    let page = ListResponse::new(
        page.items.into_iter().map(WarehouseDto::from).collect(),
        page.next_after,
    );
    read_list(&headers, &page, fields.as_ref())
}

/// Creates a warehouse (tenant admins only).
#[utoipa::path(
    post, path = "/v1/warehouses", tag = "inventory",
    security(("bearer" = [])),
    request_body = CreateWarehouseRequest,
    responses(
        (status = 201, description = "Created; `Location` names it", body = WarehouseDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not a tenant admin", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`warehouse_code_taken` or `warehouse_limit_reached`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `name` or `code` (`field` names it)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn create_warehouse(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(request): Json<CreateWarehouseRequest>,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManageTenant)?;
    let warehouse = state
        .engine
        .create_warehouse(
            principal.tenant,
            principal.actor,
            &request.name,
            &request.code,
        )
        .await?;
    let location = format!("/v1/warehouses/{}", warehouse.id);
    with_location(created(&WarehouseDto::from(warehouse))?, &location)
}

/// One warehouse.
#[utoipa::path(
    get, path = "/v1/warehouses/{id}", tag = "inventory",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Warehouse id"), FieldsParam),
    responses(
        (status = 200, description = "The warehouse", body = WarehouseDto),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not read the catalog", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such warehouse in the caller's tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_warehouse(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Query(params): Query<FieldsParam>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ReadCatalog)?;
    let fields = params.fields()?;
    let warehouse = state
        .engine
        .warehouse(principal.tenant, id)?
        .ok_or_else(|| not_found("warehouse", id))?;
    read_json(&headers, &WarehouseDto::from(warehouse), fields.as_ref())
}

/// A product's stock: on hand, reserved and available, in total and per warehouse.
#[utoipa::path(
    get, path = "/v1/products/{id}/stock", tag = "inventory",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Product id"), FieldsParam),
    responses(
        (status = 200, description = "The product's stock", body = ProductStockDto),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not read the catalog", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such product in the caller's tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn product_stock(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Query(params): Query<FieldsParam>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ReadCatalog)?;
    let fields = params.fields()?;
    let tenant = principal.tenant;
    let stock = blocking(&state, move |engine| {
        Ok(match engine.product(tenant, id)? {
            Some(_) => Some(engine.product_stock(tenant, id)?),
            None => None,
        })
    })
    .await?
    .ok_or_else(|| not_found("product", id))?;
    read_json(&headers, &ProductStockDto::from(stock), fields.as_ref())
}

/// The stock adjustment log, oldest first: manual adjustments and shipments.
#[utoipa::path(
    get, path = "/v1/stock-adjustments", tag = "inventory",
    security(("bearer" = [])),
    params(ListParams, AdjustmentFilter),
    responses(
        (status = 200, description = "A page of adjustments", body = ListResponse<StockAdjustmentDto>),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Neither a tenant admin nor a user of the product's manufacturer (who must filter by `product_id`)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "`product_id` names no product of the caller's tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Bad `limit`, `cursor` or `fields` (`field` names it)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_adjustments(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(params): Query<ListParams>,
    Query(filter): Query<AdjustmentFilter>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (limit, after, fields) = (params.limit()?, params.after()?, params.fields()?);
    let tenant = principal.tenant;
    if !manages_all_inventory(&principal) {
        let Some(product_id) = filter.product_id else {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "the whole adjustment log is the tenant admin's; filter by `product_id` of a product of your manufacturer",
            ));
        };
        let product = state
            .engine
            .product(tenant, product_id)?
            .ok_or_else(|| not_found("product", product_id))?;
        require(
            &principal,
            Permission::ManageInventory {
                manufacturer_id: product.manufacturer_id,
            },
        )?;
    }
    let query = AdjustmentQuery {
        product_id: filter.product_id,
        after,
        limit,
    };
    let page = blocking(&state, move |engine| {
        engine.stock_adjustments(tenant, &query)
    })
    .await?;
    let page = ListResponse::new(
        page.items
            .into_iter()
            .map(StockAdjustmentDto::from)
            .collect(),
        page.next_after,
    );
    read_list(&headers, &page, fields.as_ref())
}

/// Adds or removes units of a product in a warehouse and records why.
#[utoipa::path(
    post, path = "/v1/stock-adjustments", tag = "inventory",
    security(("bearer" = [])),
    request_body = CreateAdjustmentRequest,
    responses(
        (status = 201, description = "Recorded; the body has the adjustment and the level after it", body = StockAdjustedDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not manage the product manufacturer's inventory", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such product or warehouse in the caller's tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`insufficient_available_stock`: removing more than is available", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `delta`, `reason` or `note` (`field` names it)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn create_adjustment(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(request): Json<CreateAdjustmentRequest>,
) -> Result<Response, ApiError> {
    let product = state
        .engine
        .product(principal.tenant, request.product_id)?
        .ok_or_else(|| not_found("product", request.product_id))?;
    require(
        &principal,
        Permission::ManageInventory {
            manufacturer_id: product.manufacturer_id,
        },
    )?;
    let adjusted = state
        .engine
        .adjust_stock(
            principal.tenant,
            principal.actor,
            StockAdjustmentInput {
                warehouse_id: request.warehouse_id,
                product_id: request.product_id,
                delta: request.delta,
                reason: request.reason.into(),
                note: request.note,
            },
        )
        .await?;
    created(&StockAdjustedDto::from(adjusted))
}

/// Adds a `Location` header to a response.
fn with_location(mut response: Response, location: &str) -> Result<Response, ApiError> {
    let value = HeaderValue::from_str(location).map_err(ApiError::internal)?;
    response.headers_mut().insert(header::LOCATION, value);
    Ok(response)
}
