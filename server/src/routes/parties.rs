//! `/v1` routes of the marketplace's parties: manufacturers (with their verification status),
//! customer groups with their price lists, and retailers (buyer companies) with their credit.
//!
//! Who sees what:
//!
//! | resource | read | write |
//! |---|---|---|
//! | manufacturers | catalog readers; a manufacturer user only its own | `ManageManufacturers`; verification `Review` |
//! | customer groups, price lists | `ManageRetailers` or `Review`; a manufacturer user sees every group but only its own products' prices | groups `ManageRetailers`; prices `ManageCatalog` of the product's manufacturer |
//! | retailers, credit | `ManageRetailers`; a buyer or buyer-approver only its own retailer | `ManageRetailers` |
//!
//! Permissions are checked before anything is looked up, so a refused caller learns nothing
//! about which ids exist (403), and an id unknown to the caller's tenant is a 404.
//!
//! Request bodies are read field by field ([`Fields`]), so that every refused value, whether
//! of the wrong JSON type, missing, unknown, or refused by the engine, is a 422 `invalid_field`
//! whose `field` member names it. Amounts are integer minor units with a currency
//! (`{"minor": 1250, "currency": "EUR"}`), never floating point.

use crate::api::{
    Auth, ListParams, ListResponse, blocking, created, no_content, not_found, ok_json, read_json,
    read_list, require,
};
use crate::app::AppState;
use crate::problem::{ApiError, ErrorCode};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use mercato_engine::accounts::{Permission, Principal, Role};
use mercato_engine::catalog::{LIST_SCAN_MAX, ManufacturerInput, Page, RetailerInput};
use mercato_engine::money::{Currency, Money};
use mercato_engine::orders::RetailerCredit;
use mercato_engine::tables::{
    Address, CountryCode, CustomerGroup, Manufacturer, PaymentTerms, PriceListEntry, PriceTier,
    Retailer, VerificationStatus,
};
use mercato_engine::{Engine, EngineError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Longest verification `reason` accepted, in bytes.
pub const VERIFICATION_REASON_BYTES_MAX: usize = 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_manufacturers, create_manufacturer))
        .routes(routes!(get_manufacturer, patch_manufacturer))
        .routes(routes!(set_verification))
        .routes(routes!(list_customer_groups, create_customer_group))
        .routes(routes!(get_customer_group, patch_customer_group))
        .routes(routes!(list_prices))
        .routes(routes!(get_price, put_price, delete_price))
        .routes(routes!(list_retailers, create_retailer))
        .routes(routes!(get_retailer, patch_retailer))
        .routes(routes!(get_retailer_credit))
}

// ---------------------------------------------------------------------------------------------
// Wire types
// ---------------------------------------------------------------------------------------------

/// An amount: integer minor units (cents, ...) of a currency. `{"minor": 1250, "currency":
/// "EUR"}` is EUR 12.50. Inside a tenant every amount is in the catalog's currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoneyDto {
    pub minor: i64,
    /// ISO 4217 code: three uppercase letters.
    pub currency: String,
}

impl From<Money> for MoneyDto {
    fn from(money: Money) -> Self {
        MoneyDto {
            minor: money.minor,
            currency: money.currency.as_str().to_owned(),
        }
    }
}

impl MoneyDto {
    fn to_money(&self, field: &str) -> Result<Money, ApiError> {
        let currency = Currency::parse(&self.currency)
            .map_err(|e| ApiError::invalid_field(format!("{field}.currency"), e))?;
        Ok(Money::new(self.minor, currency))
    }
}

/// A volume price: from `min_qty` units on, each unit costs `unit_price`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceTierDto {
    pub min_qty: u32,
    pub unit_price: MoneyDto,
}

impl From<PriceTier> for PriceTierDto {
    fn from(tier: PriceTier) -> Self {
        PriceTierDto {
            min_qty: tier.min_qty,
            unit_price: tier.unit_price.into(),
        }
    }
}

fn tiers_from_dto(tiers: &[PriceTierDto]) -> Result<Vec<PriceTier>, ApiError> {
    tiers
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Ok(PriceTier {
                min_qty: t.min_qty,
                unit_price: t.unit_price.to_money(&format!("tiers[{i}].unit_price"))?,
            })
        })
        .collect()
}

fn country(field: &str, code: &str) -> Result<CountryCode, ApiError> {
    CountryCode::parse(code).ok_or_else(|| {
        ApiError::invalid_field(
            field,
            "must be an ISO 3166-1 alpha-2 code (two uppercase letters)",
        )
    })
}

/// Where a manufacturer stands in verification. Only `verified` manufacturers can publish
/// products (by tenant policy) and have their products ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerificationStatusDto {
    Unverified,
    Pending,
    Verified,
    Rejected,
    Suspended,
}

impl From<VerificationStatus> for VerificationStatusDto {
    fn from(status: VerificationStatus) -> Self {
        match status {
            VerificationStatus::Unverified => Self::Unverified,
            VerificationStatus::Pending => Self::Pending,
            VerificationStatus::Verified => Self::Verified,
            VerificationStatus::Rejected => Self::Rejected,
            VerificationStatus::Suspended => Self::Suspended,
        }
    }
}

impl From<VerificationStatusDto> for VerificationStatus {
    fn from(status: VerificationStatusDto) -> Self {
        match status {
            VerificationStatusDto::Unverified => Self::Unverified,
            VerificationStatusDto::Pending => Self::Pending,
            VerificationStatusDto::Verified => Self::Verified,
            VerificationStatusDto::Rejected => Self::Rejected,
            VerificationStatusDto::Suspended => Self::Suspended,
        }
    }
}

/// A manufacturer (vendor) of the marketplace.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ManufacturerDto {
    pub id: u64,
    pub name: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub verification: VerificationStatusDto,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

impl From<Manufacturer> for ManufacturerDto {
    fn from(m: Manufacturer) -> Self {
        ManufacturerDto {
            id: m.id,
            name: m.name,
            country: m.country.as_str().to_owned(),
            verification: m.verification.into(),
            created_at_ms: m.created_at_ms,
            updated_at_ms: m.updated_at_ms,
        }
    }
}

/// A new manufacturer; it starts `unverified`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManufacturerCreate {
    /// 1..=200 bytes.
    pub name: String,
    /// ISO 3166-1 alpha-2, e.g. `DE`.
    pub country: String,
}

/// A partial update: absent fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManufacturerPatch {
    pub name: Option<String>,
    pub country: Option<String>,
}

/// A change of verification status.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerificationChange {
    pub status: VerificationStatusDto,
    /// Why (at most 1024 bytes). Written to the server log with the change; not stored with
    /// the manufacturer.
    pub reason: Option<String>,
}

/// A customer group: retailers sharing a price list.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CustomerGroupDto {
    pub id: u64,
    pub name: String,
    pub created_at_ms: u64,
}

impl From<CustomerGroup> for CustomerGroupDto {
    fn from(g: CustomerGroup) -> Self {
        CustomerGroupDto {
            id: g.id,
            name: g.name,
            created_at_ms: g.created_at_ms,
        }
    }
}

/// A new customer group, or a rename (PATCH, where `name` may be absent).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerGroupInput {
    /// 1..=200 bytes.
    pub name: String,
}

/// A customer group's price for one product: it replaces the product's base price and tiers
/// for the group's retailers.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PriceListEntryDto {
    pub product_id: u64,
    pub unit_price: MoneyDto,
    /// Strictly increasing `min_qty`, prices never above `unit_price` nor rising.
    pub tiers: Vec<PriceTierDto>,
    pub updated_at_ms: u64,
}

impl PriceListEntryDto {
    fn new(product_id: u64, entry: PriceListEntry) -> Self {
        PriceListEntryDto {
            product_id,
            unit_price: entry.unit_price.into(),
            tiers: entry.tiers.into_iter().map(PriceTierDto::from).collect(),
            updated_at_ms: entry.updated_at_ms,
        }
    }
}

/// The group's price for a product (replaces any previous one).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceListEntryInput {
    pub unit_price: MoneyDto,
    /// Volume tiers of the group (default none).
    pub tiers: Option<Vec<PriceTierDto>>,
}

/// When a retailer pays: `prepaid`, `net15`, `net30` or `net60`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PaymentTermsDto {
    Prepaid,
    Net15,
    Net30,
    Net60,
}

impl From<PaymentTerms> for PaymentTermsDto {
    fn from(terms: PaymentTerms) -> Self {
        match terms {
            PaymentTerms::Prepaid => Self::Prepaid,
            PaymentTerms::Net15 => Self::Net15,
            PaymentTerms::Net30 => Self::Net30,
            PaymentTerms::Net60 => Self::Net60,
        }
    }
}

impl From<PaymentTermsDto> for PaymentTerms {
    fn from(terms: PaymentTermsDto) -> Self {
        match terms {
            PaymentTermsDto::Prepaid => Self::Prepaid,
            PaymentTermsDto::Net15 => Self::Net15,
            PaymentTermsDto::Net30 => Self::Net30,
            PaymentTermsDto::Net60 => Self::Net60,
        }
    }
}

/// A shipping address of a retailer. Labels are unique within the retailer.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressDto {
    pub label: String,
    pub line1: String,
    #[serde(default)]
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    #[serde(default)]
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

impl From<Address> for AddressDto {
    fn from(a: Address) -> Self {
        AddressDto {
            label: a.label,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            postal_code: a.postal_code,
            region: a.region,
            country: a.country.as_str().to_owned(),
        }
    }
}

fn addresses_from_dto(addresses: Vec<AddressDto>) -> Result<Vec<Address>, ApiError> {
    addresses
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            Ok(Address {
                country: country(&format!("addresses[{i}].country"), &a.country)?,
                label: a.label,
                line1: a.line1,
                line2: a.line2,
                city: a.city,
                postal_code: a.postal_code,
                region: a.region,
            })
        })
        .collect()
}

/// A retailer (buyer company).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RetailerDto {
    pub id: u64,
    pub name: String,
    /// The group whose price list applies to the retailer's orders.
    pub customer_group_id: Option<u64>,
    pub payment_terms: PaymentTermsDto,
    /// Upper bound on open (unpaid) invoice amounts.
    pub credit_limit: MoneyDto,
    /// Orders above this total wait for a buyer-approver; `null`: no approval needed.
    pub approval_threshold: Option<MoneyDto>,
    pub addresses: Vec<AddressDto>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

impl From<Retailer> for RetailerDto {
    fn from(r: Retailer) -> Self {
        RetailerDto {
            id: r.id,
            name: r.name,
            customer_group_id: r.customer_group_id,
            payment_terms: r.payment_terms.into(),
            credit_limit: r.credit_limit.into(),
            approval_threshold: r.approval_threshold.map(MoneyDto::from),
            addresses: r.addresses.into_iter().map(AddressDto::from).collect(),
            created_at_ms: r.created_at_ms,
            updated_at_ms: r.updated_at_ms,
        }
    }
}

/// A new retailer. Absent fields take their defaults: no customer group, `prepaid`, a credit
/// limit of zero in the catalog currency, no approval threshold, no addresses.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetailerCreate {
    /// 1..=200 bytes.
    pub name: String,
    pub customer_group_id: Option<u64>,
    pub payment_terms: Option<PaymentTermsDto>,
    /// 0..=10^12 minor units in the catalog currency.
    pub credit_limit: Option<MoneyDto>,
    pub approval_threshold: Option<MoneyDto>,
    /// At most 32.
    pub addresses: Option<Vec<AddressDto>>,
}

/// A partial update: absent fields keep their value; `null` clears `customer_group_id` and
/// `approval_threshold`; `addresses` replaces the whole list.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetailerPatch {
    pub name: Option<String>,
    pub customer_group_id: Option<u64>,
    pub payment_terms: Option<PaymentTermsDto>,
    pub credit_limit: Option<MoneyDto>,
    pub approval_threshold: Option<MoneyDto>,
    pub addresses: Option<Vec<AddressDto>>,
}

/// A retailer's credit position now.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RetailerCreditDto {
    pub retailer_id: u64,
    pub credit_limit: MoneyDto,
    /// Outstanding amount of its open invoices (overdue ones included).
    pub open: MoneyDto,
    /// The part of `open` past its due date.
    pub overdue: MoneyDto,
    /// `credit_limit - open`, never below zero.
    pub available: MoneyDto,
}

impl RetailerCreditDto {
    fn new(retailer_id: u64, credit: RetailerCredit) -> Self {
        RetailerCreditDto {
            retailer_id,
            credit_limit: credit.credit_limit.into(),
            open: credit.open.into(),
            overdue: credit.overdue.into(),
            available: credit.available.into(),
        }
    }
}

/// `?fields=` of single reads.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadParams {
    /// Comma-separated top-level fields to return (default: all).
    pub fields: Option<String>,
}

/// Filters of `GET /v1/manufacturers`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ManufacturerFilter {
    /// Only manufacturers with this verification status (a page examines at most 10,000
    /// manufacturers, so a filtered page may be short; follow `next_cursor`).
    pub verification: Option<String>,
}

/// Filters of `GET /v1/retailers`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RetailerFilter {
    /// Only retailers of this customer group.
    pub customer_group_id: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// Request bodies, field by field
// ---------------------------------------------------------------------------------------------

/// A JSON object body taken apart one member at a time: each member is deserialized on its
/// own, so a refused value is reported with its name; members left over are unknown fields.
struct Fields(Map<String, Value>);

impl Fields {
    fn new(body: Value) -> Result<Fields, ApiError> {
        match body {
            Value::Object(map) => Ok(Fields(map)),
            _ => Err(ApiError::new(
                ErrorCode::UnprocessableContent,
                "the request body must be a JSON object",
            )),
        }
    }

    fn parse<T: DeserializeOwned>(field: &str, value: Value) -> Result<T, ApiError> {
        serde_json::from_value(value).map_err(|e| ApiError::invalid_field(field, e))
    }

    /// The member `field`; `None` when absent or `null`.
    fn optional<T: DeserializeOwned>(&mut self, field: &str) -> Result<Option<T>, ApiError> {
        match self.0.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => Self::parse(field, value).map(Some),
        }
    }

    /// The member `field` of a partial update: `None` when absent, `Some(None)` when `null`.
    fn nullable<T: DeserializeOwned>(
        &mut self,
        field: &str,
    ) -> Result<Option<Option<T>>, ApiError> {
        match self.0.remove(field) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(value) => Self::parse(field, value).map(|v| Some(Some(v))),
        }
    }

    /// The member `field`, which must be present and not `null`.
    fn required<T: DeserializeOwned>(&mut self, field: &str) -> Result<T, ApiError> {
        self.optional(field)?
            .ok_or_else(|| ApiError::invalid_field(field, "is required"))
    }

    /// Refuses members nobody asked for.
    fn finish(self) -> Result<(), ApiError> {
        match self.0.keys().next() {
            Some(unknown) => Err(ApiError::invalid_field(
                unknown.clone(),
                "is not a field of this resource",
            )),
            None => Ok(()),
        }
    }
}

/// A field a `PATCH` may not set to `null`.
fn not_null<T>(field: &str, value: Option<Option<T>>) -> Result<Option<T>, ApiError> {
    match value {
        Some(None) => Err(ApiError::invalid_field(field, "cannot be null")),
        Some(Some(v)) => Ok(Some(v)),
        None => Ok(None),
    }
}

// ---------------------------------------------------------------------------------------------
// Scopes
// ---------------------------------------------------------------------------------------------

/// The manufacturers a principal may read: `None` for all, `Some(m)` for only `m`.
fn manufacturer_read_scope(principal: &Principal) -> Result<Option<u64>, ApiError> {
    require(principal, Permission::ReadCatalog)?;
    Ok(match principal.role {
        Some(Role::ManufacturerUser { manufacturer_id }) => Some(manufacturer_id),
        _ => None,
    })
}

fn forbidden(what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Forbidden,
        format!("this credential may not {what}"),
    )
}

/// The retailers a principal may read: `None` for all, `Some(r)` for only its own.
fn retailer_read_scope(principal: &Principal) -> Result<Option<u64>, ApiError> {
    if principal.can(Permission::ManageRetailers) {
        return Ok(None);
    }
    match principal.role {
        Some(Role::Buyer { retailer_id } | Role::BuyerApprover { retailer_id })
            if principal.can(Permission::ViewRetailerOrders { retailer_id }) =>
        {
            Ok(Some(retailer_id))
        }
        _ => Err(forbidden("read retailers")),
    }
}

/// Whose prices a principal may read: `None` for every product, `Some(m)` for the products of
/// manufacturer `m` only.
fn pricing_read_scope(principal: &Principal) -> Result<Option<u64>, ApiError> {
    if principal.can(Permission::ManageRetailers) || principal.can(Permission::Review) {
        return Ok(None);
    }
    match principal.role {
        Some(Role::ManufacturerUser { manufacturer_id })
            if principal.can(Permission::ManageCatalog { manufacturer_id }) =>
        {
            Ok(Some(manufacturer_id))
        }
        _ => Err(forbidden("read customer groups and price lists")),
    }
}

/// Refuses callers who may manage no manufacturer's catalog at all, before any lookup.
fn require_some_catalog(principal: &Principal) -> Result<(), ApiError> {
    let manufacturer_id = match principal.role {
        Some(Role::ManufacturerUser { manufacturer_id }) => manufacturer_id,
        _ => {
            require(principal, Permission::ManageManufacturers)?;
            return Ok(());
        }
    };
    require(principal, Permission::ManageCatalog { manufacturer_id })
}

/// One page of a list filtered by `keep`, read from `fetch` (pages in id order) until `limit`
/// items are kept or [`LIST_SCAN_MAX`] rows were examined; in the latter case the page may be
/// short and the cursor continues after the last examined row.
fn filtered_page<T>(
    mut fetch: impl FnMut(Option<u64>, usize) -> Result<Page<T>, EngineError>,
    mut keep: impl FnMut(&T) -> Result<bool, EngineError>,
    id_of: impl Fn(&T) -> u64,
    after: Option<u64>,
    limit: usize,
) -> Result<Page<T>, EngineError> {
    let mut items = Vec::with_capacity(limit);
    let mut cursor = after;
    let mut examined = 0usize;
    loop {
        let page = fetch(cursor, limit)?;
        let count = page.items.len();
        for (i, item) in page.items.into_iter().enumerate() {
            examined += 1;
            if keep(&item)? {
                let id = id_of(&item);
                items.push(item);
                if items.len() == limit {
                    let more = i + 1 < count || page.next_after.is_some();
                    return Ok(Page {
                        items,
                        next_after: more.then_some(id),
                    });
                }
            }
        }
        match page.next_after {
            None => {
                return Ok(Page {
                    items,
                    next_after: None,
                });
            }
            Some(next) if examined >= LIST_SCAN_MAX => {
                return Ok(Page {
                    items,
                    next_after: Some(next),
                });
            }
            Some(next) => cursor = Some(next),
        }
    }
}

/// A page holding at most the one row `id` a scoped caller may see, in cursor terms.
fn single_row_page<T>(id: u64, after: Option<u64>, row: Option<T>) -> Page<T> {
    let items = match after {
        Some(after) if after >= id => Vec::new(),
        _ => row.into_iter().collect(),
    };
    Page {
        items,
        next_after: None,
    }
}

fn list_response<T, D: From<T>>(page: Page<T>) -> ListResponse<D> {
    ListResponse::new(
        page.items.into_iter().map(D::from).collect(),
        page.next_after,
    )
}

/// 201 with the new resource and its `Location`.
fn created_at<T: Serialize>(location: String, value: &T) -> Result<Response, ApiError> {
    let mut response = created(value)?;
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

fn read_fields(params: &ReadParams) -> Result<Option<crate::api::FieldSet>, ApiError> {
    params
        .fields
        .as_deref()
        .map(crate::api::FieldSet::parse)
        .transpose()
}

fn existing_manufacturer(
    engine: &Engine,
    principal: &Principal,
    id: u64,
) -> Result<Manufacturer, ApiError> {
    engine
        .manufacturer(principal.tenant, id)?
        .ok_or_else(|| not_found("manufacturer", id))
}

fn existing_retailer(
    engine: &Engine,
    principal: &Principal,
    id: u64,
) -> Result<Retailer, ApiError> {
    engine
        .retailer(principal.tenant, id)?
        .ok_or_else(|| not_found("retailer", id))
}

fn existing_group(
    engine: &Engine,
    principal: &Principal,
    id: u64,
) -> Result<CustomerGroup, ApiError> {
    engine
        .customer_group(principal.tenant, id)?
        .ok_or_else(|| not_found("customer_group", id))
}

// ---------------------------------------------------------------------------------------------
// Manufacturers
// ---------------------------------------------------------------------------------------------

/// Manufacturers in id order; a manufacturer user sees only its own.
#[utoipa::path(
    get, path = "/v1/manufacturers", tag = "parties",
    security(("bearer" = [])),
    params(ListParams, ManufacturerFilter),
    responses(
        (status = 200, description = "One page of manufacturers", body = ListResponse<ManufacturerDto>),
        (status = 304, description = "Unchanged since the ETag in `If-None-Match`"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not read the catalog", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `limit`, `cursor`, `fields` or `verification`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_manufacturers(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(params): Query<ListParams>,
    Query(filter): Query<ManufacturerFilter>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let scope = manufacturer_read_scope(&principal)?;
    let (limit, after, fields) = (params.limit()?, params.after()?, params.fields()?);
    let verification: Option<VerificationStatus> = filter
        .verification
        .map(|v| Fields::parse::<VerificationStatusDto>("verification", Value::String(v)))
        .transpose()?
        .map(VerificationStatus::from);
    let tenant = principal.tenant;
    let page = blocking(&state, move |engine| match scope {
        Some(own) => {
            let row = engine
                .manufacturer(tenant, own)?
                .filter(|m| verification.is_none_or(|v| m.verification == v));
            Ok(single_row_page(own, after, row))
        }
        None => match verification {
            None => engine.list_manufacturers(tenant, after, limit),
            Some(status) => filtered_page(
                |after, limit| engine.list_manufacturers(tenant, after, limit),
                |m| Ok(m.verification == status),
                |m| m.id,
                after,
                limit,
            ),
        },
    })
    .await?;
    read_list(
        &headers,
        &list_response::<_, ManufacturerDto>(page),
        fields.as_ref(),
    )
}

/// Creates a manufacturer (`unverified`).
#[utoipa::path(
    post, path = "/v1/manufacturers", tag = "parties",
    security(("bearer" = [])),
    request_body = ManufacturerCreate,
    responses(
        (status = 201, description = "Created", body = ManufacturerDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not manage manufacturers", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or invalid; `field` names it", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn create_manufacturer(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManageManufacturers)?;
    let mut fields = Fields::new(body)?;
    let request = ManufacturerCreate {
        name: fields.required("name")?,
        country: fields.required("country")?,
    };
    fields.finish()?;
    let input = ManufacturerInput {
        name: request.name,
        country: country("country", &request.country)?,
    };
    let m = state
        .engine
        .create_manufacturer(principal.tenant, principal.actor, input)
        .await?;
    created_at(
        format!("/v1/manufacturers/{}", m.id),
        &ManufacturerDto::from(m),
    )
}

/// One manufacturer.
#[utoipa::path(
    get, path = "/v1/manufacturers/{id}", tag = "parties",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Manufacturer id"), ReadParams),
    responses(
        (status = 200, description = "The manufacturer", body = ManufacturerDto),
        (status = 304, description = "Unchanged since the ETag in `If-None-Match`"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "A manufacturer user asking for another manufacturer", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such manufacturer in the caller's tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `fields`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_manufacturer(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Query(params): Query<ReadParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(own) = manufacturer_read_scope(&principal)?
        && own != id
    {
        return Err(forbidden(&format!("read manufacturer {id}")));
    }
    let fields = read_fields(&params)?;
    let m = existing_manufacturer(&state.engine, &principal, id)?;
    read_json(&headers, &ManufacturerDto::from(m), fields.as_ref())
}

/// Changes a manufacturer's name or country; absent fields keep their value.
#[utoipa::path(
    patch, path = "/v1/manufacturers/{id}", tag = "parties",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Manufacturer id")),
    request_body = ManufacturerPatch,
    responses(
        (status = 200, description = "The updated manufacturer", body = ManufacturerDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not manage manufacturers", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such manufacturer in the caller's tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid; `field` names it", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn patch_manufacturer(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManageManufacturers)?;
    let mut fields = Fields::new(body)?;
    let patch = ManufacturerPatch {
        name: not_null("name", fields.nullable("name")?)?,
        country: not_null("country", fields.nullable("country")?)?,
    };
    fields.finish()?;
    let current = existing_manufacturer(&state.engine, &principal, id)?;
    let input = ManufacturerInput {
        name: patch.name.unwrap_or(current.name),
        country: match patch.country {
            Some(code) => country("country", &code)?,
            None => current.country,
        },
    };
    let m = state
        .engine
        .update_manufacturer(principal.tenant, principal.actor, id, input)
        .await?;
    ok_json(&ManufacturerDto::from(m))
}

/// Sets a manufacturer's verification status (tenant admins and reviewers).
#[utoipa::path(
    put, path = "/v1/manufacturers/{id}/verification", tag = "parties",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Manufacturer id")),
    request_body = VerificationChange,
    responses(
        (status = 200, description = "The manufacturer with its new status", body = ManufacturerDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not review", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such manufacturer in the caller's tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Unknown `status` or too long `reason`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn set_verification(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    require(&principal, Permission::Review)?;
    let mut fields = Fields::new(body)?;
    let change = VerificationChange {
        status: fields.required("status")?,
        reason: fields.optional("reason")?,
    };
    fields.finish()?;
    if let Some(reason) = &change.reason
        && reason.len() > VERIFICATION_REASON_BYTES_MAX
    {
        return Err(ApiError::invalid_field(
            "reason",
            format!("longer than {VERIFICATION_REASON_BYTES_MAX} bytes"),
        ));
    }
    let m = state
        .engine
        .set_manufacturer_verification(
            principal.tenant,
            principal.actor.clone(),
            id,
            change.status.into(),
        )
        .await?;
    tracing::info!(
        tenant = principal.tenant.0,
        actor = %principal.actor,
        manufacturer = id,
        status = ?change.status,
        reason = change.reason.as_deref().unwrap_or(""),
        "manufacturer verification changed"
    );
    ok_json(&ManufacturerDto::from(m))
}

// ---------------------------------------------------------------------------------------------
// Customer groups and price lists
// ---------------------------------------------------------------------------------------------

/// Customer groups in id order.
#[utoipa::path(
    get, path = "/v1/customer-groups", tag = "parties",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "One page of customer groups", body = ListResponse<CustomerGroupDto>),
        (status = 304, description = "Unchanged since the ETag in `If-None-Match`"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not read price lists", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `limit`, `cursor` or `fields`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_customer_groups(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(params): Query<ListParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    pricing_read_scope(&principal)?;
    let (limit, after, fields) = (params.limit()?, params.after()?, params.fields()?);
    let tenant = principal.tenant;
    let page = blocking(&state, move |engine| {
        engine.list_customer_groups(tenant, after, limit)
    })
    .await?;
    read_list(
        &headers,
        &list_response::<_, CustomerGroupDto>(page),
        fields.as_ref(),
    )
}

/// Creates a customer group.
#[utoipa::path(
    post, path = "/v1/customer-groups", tag = "parties",
    security(("bearer" = [])),
    request_body = CustomerGroupInput,
    responses(
        (status = 201, description = "Created", body = CustomerGroupDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not manage retailers", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or invalid; `field` names it", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn create_customer_group(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManageRetailers)?;
    let mut fields = Fields::new(body)?;
    let request = CustomerGroupInput {
        name: fields.required("name")?,
    };
    fields.finish()?;
    let group = state
        .engine
        .create_customer_group(principal.tenant, principal.actor, &request.name)
        .await?;
    created_at(
        format!("/v1/customer-groups/{}", group.id),
        &CustomerGroupDto::from(group),
    )
}

/// One customer group.
#[utoipa::path(
    get, path = "/v1/customer-groups/{id}", tag = "parties",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Customer group id"), ReadParams),
    responses(
        (status = 200, description = "The customer group", body = CustomerGroupDto),
        (status = 304, description = "Unchanged since the ETag in `If-None-Match`"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not read price lists", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such customer group in the caller's tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `fields`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_customer_group(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Query(params): Query<ReadParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    pricing_read_scope(&principal)?;
    let fields = read_fields(&params)?;
    let group = existing_group(&state.engine, &principal, id)?;
    read_json(&headers, &CustomerGroupDto::from(group), fields.as_ref())
}

/// Renames a customer group.
#[utoipa::path(
    patch, path = "/v1/customer-groups/{id}", tag = "parties",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Customer group id")),
    request_body = CustomerGroupInput,
    responses(
        (status = 200, description = "The updated customer group", body = CustomerGroupDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not manage retailers", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such customer group in the caller's tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid; `field` names it", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn patch_customer_group(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManageRetailers)?;
    let mut fields = Fields::new(body)?;
    let name: Option<String> = not_null("name", fields.nullable("name")?)?;
    fields.finish()?;
    let group = match name {
        Some(name) => {
            state
                .engine
                .rename_customer_group(principal.tenant, principal.actor, id, &name)
                .await?
        }
        None => existing_group(&state.engine, &principal, id)?,
    };
    ok_json(&CustomerGroupDto::from(group))
}

/// A customer group's price list in product id order; a manufacturer user sees only its own
/// products' entries.
#[utoipa::path(
    get, path = "/v1/customer-groups/{id}/prices", tag = "parties",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Customer group id"), ListParams),
    responses(
        (status = 200, description = "One page of the price list", body = ListResponse<PriceListEntryDto>),
        (status = 304, description = "Unchanged since the ETag in `If-None-Match`"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not read price lists", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such customer group in the caller's tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `limit`, `cursor` or `fields`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_prices(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Query(params): Query<ListParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let scope = pricing_read_scope(&principal)?;
    let (limit, after, fields) = (params.limit()?, params.after()?, params.fields()?);
    existing_group(&state.engine, &principal, id)?;
    let tenant = principal.tenant;
    let page = blocking(&state, move |engine| {
        let fetch = |after, limit| engine.list_price_list(tenant, id, after, limit);
        match scope {
            None => fetch(after, limit),
            Some(own) => filtered_page(
                fetch,
                |(product_id, _)| {
                    Ok(engine
                        .product(tenant, *product_id)?
                        .is_some_and(|p| p.manufacturer_id == own))
                },
                |(product_id, _)| *product_id,
                after,
                limit,
            ),
        }
    })
    .await?;
    let items = page
        .items
        .into_iter()
        .map(|(product_id, entry)| PriceListEntryDto::new(product_id, entry))
        .collect();
    read_list(
        &headers,
        &ListResponse::new(items, page.next_after),
        fields.as_ref(),
    )
}

/// Checks that the caller may manage `product_id`'s prices: 404 for an unknown product, 403
/// for another manufacturer's.
fn require_price_manager(
    engine: &Engine,
    principal: &Principal,
    product_id: u64,
) -> Result<(), ApiError> {
    require_some_catalog(principal)?;
    let product = engine
        .product(principal.tenant, product_id)?
        .ok_or_else(|| not_found("product", product_id))?;
    require(
        principal,
        Permission::ManageCatalog {
            manufacturer_id: product.manufacturer_id,
        },
    )
}

/// A customer group's price for one product.
#[utoipa::path(
    get, path = "/v1/customer-groups/{id}/prices/{product_id}", tag = "parties",
    security(("bearer" = [])),
    params(
        ("id" = u64, Path, description = "Customer group id"),
        ("product_id" = u64, Path, description = "Product id"),
        ReadParams,
    ),
    responses(
        (status = 200, description = "The group's price for the product", body = PriceListEntryDto),
        (status = 304, description = "Unchanged since the ETag in `If-None-Match`"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not read this price", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such group, product or price-list entry", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `fields`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_price(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((id, product_id)): Path<(u64, u64)>,
    Query(params): Query<ReadParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let scope = pricing_read_scope(&principal)?;
    let fields = read_fields(&params)?;
    if let Some(own) = scope {
        let product = state
            .engine
            .product(principal.tenant, product_id)?
            .ok_or_else(|| not_found("product", product_id))?;
        if product.manufacturer_id != own {
            return Err(forbidden(&format!(
                "read the prices of product {product_id}"
            )));
        }
    }
    existing_group(&state.engine, &principal, id)?;
    let entry = state
        .engine
        .price_list_entry(principal.tenant, id, product_id)?
        .ok_or_else(|| not_found("price_list_entry", format!("{id}/{product_id}")))?;
    read_json(
        &headers,
        &PriceListEntryDto::new(product_id, entry),
        fields.as_ref(),
    )
}

/// Sets (creates or replaces) a customer group's price and tiers for a product.
#[utoipa::path(
    put, path = "/v1/customer-groups/{id}/prices/{product_id}", tag = "parties",
    security(("bearer" = [])),
    params(
        ("id" = u64, Path, description = "Customer group id"),
        ("product_id" = u64, Path, description = "Product id"),
    ),
    request_body = PriceListEntryInput,
    responses(
        (status = 200, description = "The group's price for the product", body = PriceListEntryDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not manage this product's prices", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such group or product in the caller's tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or invalid; `field` names it", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn put_price(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((id, product_id)): Path<(u64, u64)>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    require_some_catalog(&principal)?;
    let mut fields = Fields::new(body)?;
    let request = PriceListEntryInput {
        unit_price: fields.required("unit_price")?,
        tiers: fields.optional("tiers")?,
    };
    fields.finish()?;
    let unit_price = request.unit_price.to_money("unit_price")?;
    let tiers = tiers_from_dto(request.tiers.as_deref().unwrap_or_default())?;
    require_price_manager(&state.engine, &principal, product_id)?;
    let entry = state
        .engine
        .set_price_list_entry(
            principal.tenant,
            principal.actor,
            id,
            product_id,
            unit_price,
            tiers,
        )
        .await?;
    ok_json(&PriceListEntryDto::new(product_id, entry))
}

/// Removes a customer group's price for a product; the product's own prices apply again.
#[utoipa::path(
    delete, path = "/v1/customer-groups/{id}/prices/{product_id}", tag = "parties",
    security(("bearer" = [])),
    params(
        ("id" = u64, Path, description = "Customer group id"),
        ("product_id" = u64, Path, description = "Product id"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not manage this product's prices", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such product or price-list entry in the caller's tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn delete_price(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((id, product_id)): Path<(u64, u64)>,
) -> Result<Response, ApiError> {
    require_price_manager(&state.engine, &principal, product_id)?;
    state
        .engine
        .remove_price_list_entry(principal.tenant, principal.actor, id, product_id)
        .await?;
    Ok(no_content())
}

// ---------------------------------------------------------------------------------------------
// Retailers
// ---------------------------------------------------------------------------------------------

/// Retailers in id order; a buyer or buyer-approver sees only its own.
#[utoipa::path(
    get, path = "/v1/retailers", tag = "parties",
    security(("bearer" = [])),
    params(ListParams, RetailerFilter),
    responses(
        (status = 200, description = "One page of retailers", body = ListResponse<RetailerDto>),
        (status = 304, description = "Unchanged since the ETag in `If-None-Match`"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not read retailers", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `limit`, `cursor` or `fields`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_retailers(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(params): Query<ListParams>,
    Query(filter): Query<RetailerFilter>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let scope = retailer_read_scope(&principal)?;
    let (limit, after, fields) = (params.limit()?, params.after()?, params.fields()?);
    let (tenant, group) = (principal.tenant, filter.customer_group_id);
    let page = blocking(&state, move |engine| match scope {
        Some(own) => {
            let row = engine
                .retailer(tenant, own)?
                .filter(|r| group.is_none() || r.customer_group_id == group);
            Ok(single_row_page(own, after, row))
        }
        None => engine.list_retailers(tenant, group, after, limit),
    })
    .await?;
    read_list(
        &headers,
        &list_response::<_, RetailerDto>(page),
        fields.as_ref(),
    )
}

/// Creates a retailer (buyer company).
#[utoipa::path(
    post, path = "/v1/retailers", tag = "parties",
    security(("bearer" = [])),
    request_body = RetailerCreate,
    responses(
        (status = 201, description = "Created", body = RetailerDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not manage retailers", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or invalid; `field` names it", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn create_retailer(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManageRetailers)?;
    let mut fields = Fields::new(body)?;
    let request = RetailerCreate {
        name: fields.required("name")?,
        customer_group_id: fields.optional("customer_group_id")?,
        payment_terms: fields.optional("payment_terms")?,
        credit_limit: fields.optional("credit_limit")?,
        approval_threshold: fields.optional("approval_threshold")?,
        addresses: fields.optional("addresses")?,
    };
    fields.finish()?;
    let credit_limit = match &request.credit_limit {
        Some(limit) => limit.to_money("credit_limit")?,
        None => Money::zero(state.engine.catalog_settings(principal.tenant)?.currency),
    };
    let input = RetailerInput {
        name: request.name,
        customer_group_id: request.customer_group_id,
        payment_terms: request
            .payment_terms
            .map_or(PaymentTerms::Prepaid, PaymentTerms::from),
        credit_limit,
        approval_threshold: request
            .approval_threshold
            .map(|t| t.to_money("approval_threshold"))
            .transpose()?,
        addresses: addresses_from_dto(request.addresses.unwrap_or_default())?,
    };
    let r = state
        .engine
        .create_retailer(principal.tenant, principal.actor, input)
        .await?;
    created_at(format!("/v1/retailers/{}", r.id), &RetailerDto::from(r))
}

/// One retailer.
#[utoipa::path(
    get, path = "/v1/retailers/{id}", tag = "parties",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Retailer id"), ReadParams),
    responses(
        (status = 200, description = "The retailer", body = RetailerDto),
        (status = 304, description = "Unchanged since the ETag in `If-None-Match`"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not read this retailer", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such retailer in the caller's tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `fields`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_retailer(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Query(params): Query<ReadParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_retailer_read(&principal, id)?;
    let fields = read_fields(&params)?;
    let r = existing_retailer(&state.engine, &principal, id)?;
    read_json(&headers, &RetailerDto::from(r), fields.as_ref())
}

fn require_retailer_read(principal: &Principal, id: u64) -> Result<(), ApiError> {
    match retailer_read_scope(principal)? {
        Some(own) if own != id => Err(forbidden(&format!("read retailer {id}"))),
        _ => Ok(()),
    }
}

/// Changes a retailer; absent fields keep their value.
#[utoipa::path(
    patch, path = "/v1/retailers/{id}", tag = "parties",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Retailer id")),
    request_body = RetailerPatch,
    responses(
        (status = 200, description = "The updated retailer", body = RetailerDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not manage retailers", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such retailer in the caller's tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid; `field` names it", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn patch_retailer(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManageRetailers)?;
    let mut fields = Fields::new(body)?;
    let name: Option<String> = not_null("name", fields.nullable("name")?)?;
    let customer_group_id: Option<Option<u64>> = fields.nullable("customer_group_id")?;
    let payment_terms: Option<PaymentTermsDto> =
        not_null("payment_terms", fields.nullable("payment_terms")?)?;
    let credit_limit: Option<MoneyDto> =
        not_null("credit_limit", fields.nullable("credit_limit")?)?;
    let approval_threshold: Option<Option<MoneyDto>> = fields.nullable("approval_threshold")?;
    let addresses: Option<Vec<AddressDto>> = not_null("addresses", fields.nullable("addresses")?)?;
    fields.finish()?;
    let current = existing_retailer(&state.engine, &principal, id)?;
    let input = RetailerInput {
        name: name.unwrap_or(current.name),
        customer_group_id: customer_group_id.unwrap_or(current.customer_group_id),
        payment_terms: payment_terms.map_or(current.payment_terms, PaymentTerms::from),
        credit_limit: match credit_limit {
            Some(limit) => limit.to_money("credit_limit")?,
            None => current.credit_limit,
        },
        approval_threshold: match approval_threshold {
            Some(Some(t)) => Some(t.to_money("approval_threshold")?),
            Some(None) => None,
            None => current.approval_threshold,
        },
        addresses: match addresses {
            Some(list) => addresses_from_dto(list)?,
            None => current.addresses,
        },
    };
    let r = state
        .engine
        .update_retailer(principal.tenant, principal.actor, id, input)
        .await?;
    ok_json(&RetailerDto::from(r))
}

/// A retailer's credit position now: limit, open invoices, the overdue part, and what is left.
#[utoipa::path(
    get, path = "/v1/retailers/{id}/credit", tag = "parties",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Retailer id"), ReadParams),
    responses(
        (status = 200, description = "The credit position", body = RetailerCreditDto),
        (status = 304, description = "Unchanged since the ETag in `If-None-Match`"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not read this retailer", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such retailer in the caller's tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `fields`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_retailer_credit(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Query(params): Query<ReadParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_retailer_read(&principal, id)?;
    let fields = read_fields(&params)?;
    let tenant = principal.tenant;
    let at_ms = mercato_engine::now_ms();
    let credit = blocking(&state, move |engine| {
        engine.retailer_credit(tenant, id, at_ms)
    })
    .await?
    .ok_or_else(|| not_found("retailer", id))?;
    read_json(
        &headers,
        &RetailerCreditDto::new(id, credit),
        fields.as_ref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(error: ApiError) -> String {
        match error {
            ApiError::Detailed(problem) => problem.extra["field"].as_str().unwrap_or("").into(),
            other => panic!("not a field problem: {other}"),
        }
    }

    #[test]
    fn fields_name_every_refused_member() {
        let mut f = Fields::new(json!({"name": 5, "extra": true})).expect("object");
        assert_eq!(field_of(f.required::<String>("name").unwrap_err()), "name");
        assert_eq!(
            field_of(f.required::<String>("country").unwrap_err()),
            "country"
        );
        assert_eq!(field_of(f.finish().unwrap_err()), "extra");
        assert!(Fields::new(json!([1])).is_err());

        let mut f = Fields::new(json!({"a": null, "b": 3})).expect("object");
        assert_eq!(f.nullable::<u64>("a").expect("null"), Some(None));
        assert_eq!(f.nullable::<u64>("b").expect("value"), Some(Some(3)));
        assert_eq!(f.nullable::<u64>("c").expect("absent"), None);
        f.finish().expect("nothing left");
    }

    #[test]
    fn money_needs_a_currency_code() {
        let good = MoneyDto {
            minor: 1250,
            currency: "EUR".into(),
        };
        assert_eq!(
            good.to_money("credit_limit").expect("money"),
            Money::new(1250, Currency::EUR)
        );
        let bad = MoneyDto {
            minor: 1,
            currency: "eur".into(),
        };
        assert_eq!(
            field_of(bad.to_money("credit_limit").unwrap_err()),
            "credit_limit.currency"
        );
    }

    #[test]
    fn filtered_pages_neither_repeat_nor_skip() {
        let rows: Vec<u64> = (1..=100).collect();
        let fetch = |after: Option<u64>, limit: usize| -> Result<Page<u64>, EngineError> {
            let rest: Vec<u64> = rows
                .iter()
                .copied()
                .filter(|r| after.is_none_or(|a| *r > a))
                .collect();
            let items: Vec<u64> = rest.iter().copied().take(limit).collect();
            let next_after = (rest.len() > limit).then(|| items[limit - 1]);
            Ok(Page { items, next_after })
        };
        for limit in [1, 3, 7, 50, 500] {
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let page =
                    filtered_page(fetch, |r| Ok(r % 3 == 0), |r| *r, after, limit).expect("page");
                assert!(page.items.len() <= limit);
                seen.extend(page.items);
                match page.next_after {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            let want: Vec<u64> = rows.iter().copied().filter(|r| r % 3 == 0).collect();
            assert_eq!(seen, want, "limit {limit}");
        }
    }

    #[test]
    fn a_scoped_list_holds_its_one_row_once() {
        assert_eq!(single_row_page(5, None, Some('x')).items, vec!['x']);
        assert_eq!(single_row_page(5, Some(4), Some('x')).items, vec!['x']);
        assert!(single_row_page(5, Some(5), Some('x')).items.is_empty());
        assert!(single_row_page::<char>(5, None, None).items.is_empty());
    }
}
