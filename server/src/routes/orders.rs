//! `/v1` routes of the orders domain: placing orders (with an `Idempotency-Key`), approval,
//! reorder, sub-orders per manufacturer and their transitions, invoices and payments.
//!
//! Who may do what (the engine checks ownership again inside each command):
//! - buyers and buyer-approvers place, reorder and read their retailer's orders and invoices,
//!   and may mark its sub-orders delivered or cancel them; buyer-approvers (and tenant admins)
//!   approve or reject orders waiting for approval;
//! - manufacturer users list and read their own sub-orders and confirm, ship, deliver or cancel
//!   them; another manufacturer's sub-order is a 404, like a missing one;
//! - tenant admins read everything and act on any sub-order as its manufacturer would; they
//!   record payments.
//!
//! Placement rejections are one 422 `order_lines_rejected` problem whose `lines` name every
//! offending line (0-based index into `lines`) with a code: `invalid_line` (neither or both of
//! `product_id` and `sku`, or a `sku` without `manufacturer_id`), `unknown_product`,
//! `duplicate_product`, `product_not_active`, `manufacturer_not_verified`, `invalid_quantity`,
//! `below_minimum_quantity`, `not_case_pack_multiple`, `currency_mismatch`, `invalid_price`,
//! `amount_too_large`, `insufficient_stock`, and `credit_limit_exceeded` (which concerns the
//! whole order, so every line carries it).

use crate::api::{
    Auth, FieldSet, ListParams, ListResponse, SortParam, blocking, created, not_found, ok_json,
    read_json, read_list, require,
};
use crate::app::AppState;
use crate::problem::{ApiError, ErrorCode};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::Response;
use mercato_engine::accounts::{Permission, Principal, Role, Scope};
use mercato_engine::inventory::ReservedUnits;
use mercato_engine::money::{Currency, Money};
use mercato_engine::orders::{
    ApprovalInput, OrderLineInput, OrderListQuery, OrderView, Party, PaymentRecorded, PlaceOrder,
    PlacedOrder, ProductRef, Reorder, SubOrderChange, SubOrderListQuery,
};
use mercato_engine::tables::{
    ApprovalDecision, Invoice, InvoiceStatus, Order, OrderLine, OrderStatus, Payment, StatusChange,
    SubOrder, SubOrderStatus,
};
use mercato_engine::{Actor, EngineError, LineProblem, Rejection, TenantId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Most lines one order may have (the engine's bound).
pub const ORDER_LINES_MAX: usize = mercato_engine::orders::ORDER_LINES_MAX;
/// The request header that makes a placement idempotent.
pub const IDEMPOTENCY_KEY_HEADER: HeaderName = HeaderName::from_static("idempotency-key");
/// Response header set to `true` when an idempotency key returned an order placed earlier.
pub const IDEMPOTENCY_REPLAYED_HEADER: HeaderName = HeaderName::from_static("idempotency-replayed");
/// Largest body of the small action routes (approve, reject, reorder, ship, cancel), whose
/// body is optional.
pub const ACTION_BODY_BYTES_MAX: usize = 16 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_orders, place_order))
        .routes(routes!(get_order))
        .routes(routes!(approve_order))
        .routes(routes!(reject_order))
        .routes(routes!(reorder))
        .routes(routes!(list_suborders))
        .routes(routes!(get_suborder))
        .routes(routes!(confirm_suborder))
        .routes(routes!(ship_suborder))
        .routes(routes!(deliver_suborder))
        .routes(routes!(cancel_suborder))
        .routes(routes!(list_invoices))
        .routes(routes!(get_invoice))
        .routes(routes!(list_payments, record_payment))
}

// ---------------------------------------------------------------------------------------------
// Wire types.

use crate::routes::parties::MoneyDto;

/// An order as a whole: `awaiting_approval`, `placed`, `completed` (every sub-order delivered
/// or cancelled, at least one delivered) or `cancelled`.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = OrderStatus)]
pub enum OrderStatusDto {
    AwaitingApproval,
    Placed,
    Completed,
    Cancelled,
}

impl From<OrderStatus> for OrderStatusDto {
    fn from(s: OrderStatus) -> Self {
        match s {
            OrderStatus::AwaitingApproval => OrderStatusDto::AwaitingApproval,
            OrderStatus::Placed => OrderStatusDto::Placed,
            OrderStatus::Completed => OrderStatusDto::Completed,
            OrderStatus::Cancelled => OrderStatusDto::Cancelled,
        }
    }
}

/// A sub-order: `awaiting_approval -> placed -> confirmed -> shipped -> delivered`, or
/// `cancelled` from `placed` or `confirmed`.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = SubOrderStatus)]
pub enum SubOrderStatusDto {
    AwaitingApproval,
    Placed,
    Confirmed,
    Shipped,
    Delivered,
    Cancelled,
}

impl From<SubOrderStatus> for SubOrderStatusDto {
    fn from(s: SubOrderStatus) -> Self {
        match s {
            SubOrderStatus::AwaitingApproval => SubOrderStatusDto::AwaitingApproval,
            SubOrderStatus::Placed => SubOrderStatusDto::Placed,
            SubOrderStatus::Confirmed => SubOrderStatusDto::Confirmed,
            SubOrderStatus::Shipped => SubOrderStatusDto::Shipped,
            SubOrderStatus::Delivered => SubOrderStatusDto::Delivered,
            SubOrderStatus::Cancelled => SubOrderStatusDto::Cancelled,
        }
    }
}

/// `open` while something is outstanding, `paid` when fully paid, `void` when fully credited
/// (every sub-order cancelled) before any payment.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = InvoiceStatus)]
pub enum InvoiceStatusDto {
    Open,
    Paid,
    Void,
}

impl From<InvoiceStatus> for InvoiceStatusDto {
    fn from(s: InvoiceStatus) -> Self {
        match s {
            InvoiceStatus::Open => InvoiceStatusDto::Open,
            InvoiceStatus::Paid => InvoiceStatusDto::Paid,
            InvoiceStatus::Void => InvoiceStatusDto::Void,
        }
    }
}

/// One ordered line: the product as it was ordered and its resolved price.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = OrderLine)]
pub struct OrderLineDto {
    /// Index of the line in the placing request (0-based).
    pub line_no: u32,
    pub product_id: u64,
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    /// From the retailer's price list and volume tier.
    pub unit_price: MoneyDto,
    pub line_total: MoneyDto,
}

impl From<OrderLine> for OrderLineDto {
    fn from(l: OrderLine) -> Self {
        OrderLineDto {
            line_no: l.line_no,
            product_id: l.product_id,
            sku: l.sku,
            name: l.name,
            quantity: l.qty,
            unit_price: l.unit_price.into(),
            line_total: l.line_total.into(),
        }
    }
}

/// One status a sub-order entered.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = StatusChange)]
pub struct StatusChangeDto {
    pub status: SubOrderStatusDto,
    pub at_ms: u64,
    /// `user/<id>`, `api_key/<id>` or `system`.
    pub actor: String,
}

impl From<StatusChange> for StatusChangeDto {
    fn from(c: StatusChange) -> Self {
        StatusChangeDto {
            status: c.status.into(),
            at_ms: c.at_ms,
            actor: c.actor.to_string(),
        }
    }
}

/// One manufacturer's part of an order.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = SubOrder)]
pub struct SubOrderDto {
    pub id: u64,
    pub order_id: u64,
    pub manufacturer_id: u64,
    pub retailer_id: u64,
    pub status: SubOrderStatusDto,
    pub lines: Vec<OrderLineDto>,
    pub subtotal: MoneyDto,
    pub tracking: Option<String>,
    pub cancel_reason: Option<String>,
    /// Every status it entered, oldest first.
    pub history: Vec<StatusChangeDto>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

impl From<SubOrder> for SubOrderDto {
    fn from(s: SubOrder) -> Self {
        SubOrderDto {
            id: s.id,
            order_id: s.order_id,
            manufacturer_id: s.manufacturer_id,
            retailer_id: s.retailer_id,
            status: s.status.into(),
            lines: s.lines.into_iter().map(Into::into).collect(),
            subtotal: s.subtotal.into(),
            tracking: s.tracking,
            cancel_reason: s.cancel_reason,
            history: s.history.into_iter().map(Into::into).collect(),
            created_at_ms: s.created_at_ms,
            updated_at_ms: s.updated_at_ms,
        }
    }
}

/// Units a sub-order holds in one warehouse (what its manufacturer picks, and where).
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[schema(as = Reservation)]
pub struct ReservationDto {
    pub product_id: u64,
    pub warehouse_id: u64,
    pub quantity: u64,
}

impl From<ReservedUnits> for ReservationDto {
    fn from(r: ReservedUnits) -> Self {
        ReservationDto {
            product_id: r.product_id,
            warehouse_id: r.warehouse_id,
            quantity: r.qty,
        }
    }
}

/// A sub-order with the stock it holds (empty once shipped or cancelled).
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = SubOrderDetail)]
pub struct SubOrderDetailDto {
    #[serde(flatten)]
    pub suborder: SubOrderDto,
    pub reservations: Vec<ReservationDto>,
}

/// A buyer-approver's decision.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = ApprovalDecision)]
pub struct ApprovalDto {
    pub approved: bool,
    pub by_user_id: u64,
    pub at_ms: u64,
    pub note: Option<String>,
}

impl From<ApprovalDecision> for ApprovalDto {
    fn from(a: ApprovalDecision) -> Self {
        ApprovalDto {
            approved: a.approved,
            by_user_id: a.by_user_id,
            at_ms: a.at_ms,
            note: a.note,
        }
    }
}

/// A retailer's order (its lines are in its sub-orders).
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = Order)]
pub struct OrderDto {
    pub id: u64,
    pub retailer_id: u64,
    /// The buyer (user id) who placed it.
    pub buyer_user_id: u64,
    pub status: OrderStatusDto,
    pub po_number: Option<String>,
    /// Where the order is shipped: a copy of the retailer's address at placement.
    pub shipping_address: crate::routes::parties::AddressDto,
    pub currency: String,
    /// Sum of the sub-orders' subtotals at placement (cancellations are credited on the
    /// invoice, not subtracted here).
    pub total: MoneyDto,
    /// One sub-order per manufacturer, by manufacturer id.
    pub suborder_ids: Vec<u64>,
    pub line_count: u32,
    /// Set once the order is placed (after approval, when it needed one).
    pub invoice_id: Option<u64>,
    pub idempotency_key: Option<String>,
    /// The order this one repeats, for a reorder.
    pub reorder_of: Option<u64>,
    /// True when the total was above the retailer's approval threshold.
    pub approval_required: bool,
    pub approval: Option<ApprovalDto>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

impl From<Order> for OrderDto {
    fn from(o: Order) -> Self {
        OrderDto {
            id: o.id,
            retailer_id: o.retailer_id,
            buyer_user_id: o.buyer_user_id,
            status: o.status.into(),
            po_number: o.po_number,
            shipping_address: o.shipping_address.into(),
            currency: o.currency.as_str().to_owned(),
            total: o.total.into(),
            suborder_ids: o.suborder_ids,
            line_count: o.line_count,
            invoice_id: o.invoice_id,
            idempotency_key: o.idempotency_key,
            reorder_of: o.reorder_of,
            approval_required: o.approval_required,
            approval: o.approval.map(Into::into),
            created_at_ms: o.created_at_ms,
            updated_at_ms: o.updated_at_ms,
        }
    }
}

/// An order with its sub-orders and its invoice.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = OrderDetail)]
pub struct OrderDetailDto {
    #[serde(flatten)]
    pub order: OrderDto,
    pub suborders: Vec<SubOrderDto>,
    pub invoice: Option<InvoiceDto>,
}

impl OrderDetailDto {
    fn new(view: OrderView, now_ms: u64) -> Self {
        OrderDetailDto {
            order: view.order.into(),
            suborders: view.suborders.into_iter().map(Into::into).collect(),
            invoice: view.invoice.map(|i| InvoiceDto::new(i, now_ms)),
        }
    }
}

/// The invoice of an order.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = Invoice)]
pub struct InvoiceDto {
    pub id: u64,
    pub order_id: u64,
    pub retailer_id: u64,
    /// The order's total.
    pub amount: MoneyDto,
    /// Subtotals of cancelled sub-orders.
    pub credited: MoneyDto,
    pub paid: MoneyDto,
    /// What is still to pay (never negative).
    pub outstanding: MoneyDto,
    /// What is owed back when credits exceed what was left to pay.
    pub refund_due: MoneyDto,
    pub issued_at_ms: u64,
    /// Issue time plus the retailer's net days (15, 30 or 60; due on issue when prepaid).
    pub due_at_ms: u64,
    pub status: InvoiceStatusDto,
    /// Open and past its due date now.
    pub overdue: bool,
    pub updated_at_ms: u64,
}

impl InvoiceDto {
    fn new(i: Invoice, now_ms: u64) -> Self {
        InvoiceDto {
            id: i.id,
            order_id: i.order_id,
            retailer_id: i.retailer_id,
            amount: i.amount.into(),
            credited: i.credited.into(),
            paid: i.paid.into(),
            outstanding: i.outstanding().into(),
            refund_due: i.refund_due().into(),
            issued_at_ms: i.issued_at_ms,
            due_at_ms: i.due_at_ms,
            status: i.status.into(),
            overdue: i.is_overdue(now_ms),
            updated_at_ms: i.updated_at_ms,
        }
    }
}

/// Money received against an invoice.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = Payment)]
pub struct PaymentDto {
    pub id: u64,
    pub invoice_id: u64,
    pub amount: MoneyDto,
    pub reference: String,
    pub recorded_at_ms: u64,
    /// `user/<id>`, `api_key/<id>` or `system`.
    pub recorded_by: String,
}

impl From<Payment> for PaymentDto {
    fn from(p: Payment) -> Self {
        PaymentDto {
            id: p.id,
            invoice_id: p.invoice_id,
            amount: p.amount.into(),
            reference: p.reference,
            recorded_at_ms: p.recorded_at_ms,
            recorded_by: p.recorded_by.to_string(),
        }
    }
}

/// A recorded payment and the invoice after it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = PaymentRecorded)]
pub struct PaymentRecordedDto {
    pub payment: PaymentDto,
    pub invoice: InvoiceDto,
}

/// A sub-order after a transition, with the status its order now has.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = SubOrderChange)]
pub struct SubOrderChangeDto {
    pub suborder: SubOrderDto,
    pub order_id: u64,
    pub order_status: OrderStatusDto,
}

impl From<SubOrderChange> for SubOrderChangeDto {
    fn from(c: SubOrderChange) -> Self {
        SubOrderChangeDto {
            order_id: c.order.id,
            order_status: c.order.status.into(),
            suborder: c.suborder.into(),
        }
    }
}

/// One requested line: a product by `product_id`, or by `sku` with its `manufacturer_id`
/// (quick order).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = OrderLineRequest)]
pub struct OrderLineRequest {
    pub product_id: Option<u64>,
    pub sku: Option<String>,
    /// Required with `sku` (SKUs are unique per manufacturer).
    pub manufacturer_id: Option<u64>,
    /// At least the product's minimum order quantity and a multiple of its case pack.
    pub quantity: u32,
}

/// A new order.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PlaceOrderRequest)]
pub struct PlaceOrderRequest {
    /// 1..=500 lines, each product at most once.
    pub lines: Vec<OrderLineRequest>,
    /// The buyer's purchase-order number, at most 64 bytes.
    pub po_number: Option<String>,
    /// Label of one of the retailer's addresses; absent: its first address.
    pub shipping_address_label: Option<String>,
}

/// Options of a reorder (the body is optional).
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReorderRequest)]
pub struct ReorderRequest {
    pub po_number: Option<String>,
    pub shipping_address_label: Option<String>,
}

/// An approval decision (the body is optional).
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DecisionRequest)]
pub struct DecisionRequest {
    /// At most 500 bytes; on a rejection it becomes the sub-orders' cancel reason.
    pub note: Option<String>,
}

/// Shipping details (the body is optional).
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ShipRequest)]
pub struct ShipRequest {
    /// Carrier tracking reference, at most 200 bytes.
    pub tracking: Option<String>,
}

/// Why a sub-order is cancelled (the body is optional).
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CancelRequest)]
pub struct CancelRequest {
    /// At most 500 bytes.
    pub reason: Option<String>,
}

/// Money received against an invoice.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PaymentRequest)]
pub struct PaymentRequest {
    /// Positive, in the invoice's currency, at most what is outstanding.
    pub amount: MoneyDto,
    /// The payer's or bank's reference, 1..=140 bytes.
    pub reference: String,
}

/// Filters of the order list.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderFilter {
    /// `awaiting_approval`, `placed`, `completed` or `cancelled`.
    pub status: Option<String>,
    /// Tenant admins: only this retailer's orders.
    pub retailer_id: Option<u64>,
}

/// Filters of the sub-order list.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubOrderFilter {
    /// `awaiting_approval`, `placed`, `confirmed`, `shipped`, `delivered` or `cancelled`.
    pub status: Option<String>,
    /// Required for tenant admins (sub-orders are listed per manufacturer); manufacturer users
    /// see their own.
    pub manufacturer_id: Option<u64>,
}

/// Filters of the invoice list.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvoiceFilter {
    /// Required for tenant admins (invoices are listed per retailer); buyers see their own.
    pub retailer_id: Option<u64>,
}

/// `?fields=` of a single read.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FieldsParam {
    /// Comma-separated top-level fields to return (default: all).
    pub fields: Option<String>,
}

impl FieldsParam {
    fn fields(&self) -> Result<Option<FieldSet>, ApiError> {
        self.fields.as_deref().map(FieldSet::parse).transpose()
    }
}

// ---------------------------------------------------------------------------------------------
// Who is asking.

/// The side a principal reads orders from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Viewer {
    /// A tenant admin: every order, sub-order and invoice.
    Admin,
    Retailer(u64),
    Manufacturer(u64),
}

fn forbidden(detail: &str) -> ApiError {
    ApiError::new(ErrorCode::Forbidden, detail)
}

/// 403 unless the credential's scopes cover `scope`.
fn require_scope(principal: &Principal, scope: Scope) -> Result<(), ApiError> {
    if principal.scopes.grants(scope) {
        Ok(())
    } else {
        Err(forbidden(&format!(
            "this credential lacks the `{}` scope",
            scope.as_str()
        )))
    }
}

/// Who may read orders, and which.
fn viewer(principal: &Principal) -> Result<Viewer, ApiError> {
    match principal.role {
        Some(Role::TenantAdmin) => {
            require_scope(principal, Scope::OrdersRead)?;
            Ok(Viewer::Admin)
        }
        Some(Role::Buyer { retailer_id } | Role::BuyerApprover { retailer_id }) => {
            require(principal, Permission::ViewRetailerOrders { retailer_id })?;
            Ok(Viewer::Retailer(retailer_id))
        }
        Some(Role::ManufacturerUser { manufacturer_id }) => {
            require(
                principal,
                Permission::ViewManufacturerOrders { manufacturer_id },
            )?;
            Ok(Viewer::Manufacturer(manufacturer_id))
        }
        _ => Err(forbidden(
            "orders are read by tenant admins, buyers and manufacturer users",
        )),
    }
}

/// The retailer and user id of a buyer who may place orders.
fn buyer(principal: &Principal) -> Result<(u64, u64), ApiError> {
    let retailer_id = match principal.role {
        Some(Role::Buyer { retailer_id } | Role::BuyerApprover { retailer_id }) => retailer_id,
        _ => {
            return Err(forbidden(
                "orders are placed by buyers (users of a retailer)",
            ));
        }
    };
    require(principal, Permission::PlaceOrder { retailer_id })?;
    match principal.actor {
        Actor::User(user_id) => Ok((retailer_id, user_id)),
        _ => Err(forbidden(
            "orders are placed by a signed-in buyer; an API key cannot place them",
        )),
    }
}

/// The user id of a signed-in user.
fn user_id(principal: &Principal, what: &str) -> Result<u64, ApiError> {
    match principal.actor {
        Actor::User(id) => Ok(id),
        _ => Err(forbidden(&format!("{what} needs a signed-in user"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Request helpers.

/// The `Idempotency-Key` header, if present (its shape is checked by the engine).
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    headers
        .get(&IDEMPOTENCY_KEY_HEADER)
        .map(|value| {
            value.to_str().map(str::to_owned).map_err(|_| {
                ApiError::invalid_field("Idempotency-Key", "must be visible ASCII characters")
            })
        })
        .transpose()
}

/// SHA-256 of the request as parsed (so that the same request with other whitespace or field
/// order is the same request), prefixed by what it asks for.
fn request_hash<T: Serialize>(purpose: &str, request: &T) -> Result<[u8; 32], ApiError> {
    let body = serde_json::to_vec(request).map_err(ApiError::internal)?;
    let mut hasher = Sha256::new();
    hasher.update(purpose.as_bytes());
    hasher.update([0u8]);
    hasher.update(&body);
    Ok(hasher.finalize().into())
}

/// Parses an optional JSON body: empty is `None`.
fn optional_body<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<Option<T>, ApiError> {
    if body.len() > ACTION_BODY_BYTES_MAX {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("this route accepts at most {ACTION_BODY_BYTES_MAX} bytes of body"),
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body).map(Some).map_err(|e| {
        ApiError::new(
            ErrorCode::UnprocessableContent,
            format!("the body is not the expected JSON: {e}"),
        )
    })
}

/// The engine's lines from the request's, or the rejection naming every malformed line.
fn line_inputs(lines: &[OrderLineRequest]) -> Result<Vec<OrderLineInput>, ApiError> {
    if lines.is_empty() || lines.len() > ORDER_LINES_MAX {
        return Err(ApiError::invalid_field(
            "lines",
            format!("must have 1..={ORDER_LINES_MAX} lines"),
        ));
    }
    let mut inputs = Vec::with_capacity(lines.len());
    let mut problems = Vec::new();
    for (line, request) in lines.iter().enumerate() {
        let product = match (&request.product_id, &request.sku, request.manufacturer_id) {
            (Some(id), None, None) => Ok(ProductRef::Id(*id)),
            (None, Some(sku), Some(manufacturer_id)) => Ok(ProductRef::Sku {
                manufacturer_id,
                sku: sku.clone(),
            }),
            (None, Some(_), None) => Err("`sku` needs the `manufacturer_id` that owns it"),
            (Some(_), None, Some(_)) => {
                Err("`manufacturer_id` goes with `sku`; a `product_id` needs none")
            }
            (Some(_), Some(_), _) => Err("name the product by `product_id` or by `sku`, not both"),
            (None, None, _) => Err("name the product by `product_id` or by `sku`"),
        };
        match product {
            Ok(product) => inputs.push(OrderLineInput {
                product,
                qty: request.quantity,
            }),
            Err(detail) => problems.push(LineProblem {
                line,
                code: "invalid_line",
                detail: detail.to_owned(),
            }),
        }
    }
    if problems.is_empty() {
        Ok(inputs)
    } else {
        Err(EngineError::Rejected(Rejection::OrderLines { problems }).into())
    }
}

/// Maps a placement failure. The credit limit concerns the whole order: it is reported like
/// every other placement rejection, as `order_lines_rejected`, on each of the order's lines.
fn placement_error(error: EngineError, line_count: usize) -> ApiError {
    match error {
        EngineError::Rejected(Rejection::Conflict {
            code: code @ "credit_limit_exceeded",
            detail,
        }) => {
            let problems = (0..line_count)
                .map(|line| LineProblem {
                    line,
                    code,
                    detail: detail.clone(),
                })
                .collect();
            EngineError::Rejected(Rejection::OrderLines { problems }).into()
        }
        other => other.into(),
    }
}

/// 201 with `Location` for a new order; 200 with `Idempotency-Replayed: true` for a replay.
fn placed_response(placed: PlacedOrder) -> Result<Response, ApiError> {
    let id = placed.order.order.id;
    let body = OrderDetailDto::new(placed.order, mercato_engine::now_ms());
    if placed.replayed {
        let mut response = ok_json(&body)?;
        response.headers_mut().insert(
            IDEMPOTENCY_REPLAYED_HEADER,
            HeaderValue::from_static("true"),
        );
        return Ok(response);
    }
    let mut response = created(&body)?;
    let location =
        HeaderValue::from_str(&format!("/v1/orders/{id}")).map_err(ApiError::internal)?;
    response.headers_mut().insert(header::LOCATION, location);
    Ok(response)
}

fn order_status(text: Option<&str>) -> Result<Option<OrderStatus>, ApiError> {
    text.map(|t| {
        OrderStatus::parse(t).ok_or_else(|| {
            ApiError::invalid_field(
                "status",
                "must be awaiting_approval, placed, completed or cancelled",
            )
        })
    })
    .transpose()
}

fn suborder_status(text: Option<&str>) -> Result<Option<SubOrderStatus>, ApiError> {
    text.map(|t| {
        SubOrderStatus::parse(t).ok_or_else(|| {
            ApiError::invalid_field(
                "status",
                "must be awaiting_approval, placed, confirmed, shipped, delivered or cancelled",
            )
        })
    })
    .transpose()
}

// ---------------------------------------------------------------------------------------------
// Orders.

/// Places an order for the caller's retailer.
///
/// Every line is checked in one transaction (product active, manufacturer verified, minimum
/// order quantity, case-pack multiple, stock, which is reserved), priced from the retailer's
/// price list and volume tier, and the total is checked against the credit limit. Any failure
/// rejects the whole order with 422 `order_lines_rejected` naming each offending line. Orders
/// above the retailer's approval threshold wait in `awaiting_approval`.
///
/// With an `Idempotency-Key` header (1..=255 visible ASCII characters, kept 24 hours per
/// buyer), repeating the same request returns the same order (200, `Idempotency-Replayed:
/// true`) and never places a second one; the same key with another request is a 409
/// `idempotency_key_reused`.
#[utoipa::path(
    post, path = "/v1/orders", tag = "orders",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the placement idempotent: 1..=255 visible ASCII characters, per buyer, kept 24 hours")),
    request_body = PlaceOrderRequest,
    responses(
        (status = 201, description = "Placed; `Location` names the order", body = OrderDetailDto),
        (status = 200, description = "The order an earlier request with the same `Idempotency-Key` placed (`Idempotency-Replayed: true`)", body = OrderDetailDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not a signed-in buyer", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "The buyer's retailer no longer exists", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`idempotency_key_reused`: the key was used for a different request", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`order_lines_rejected` (`lines` names each offending line and why) or `invalid_field` (`lines`, `po_number`, `shipping_address_label`, `idempotency_key`)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn place_order(
    State(state): State<AppState>,
    Auth(principal): Auth,
    headers: HeaderMap,
    Json(request): Json<PlaceOrderRequest>,
) -> Result<Response, ApiError> {
    let (retailer_id, buyer_user_id) = buyer(&principal)?;
    let idempotency_key = idempotency_key(&headers)?;
    let lines = line_inputs(&request.lines)?;
    let line_count = lines.len();
    let request_hash = request_hash("place", &request)?;
    let input = PlaceOrder {
        retailer_id,
        buyer_user_id,
        lines,
        po_number: request.po_number,
        shipping_address_label: request.shipping_address_label,
        idempotency_key,
        request_hash,
    };
    let placed = state
        .engine
        .place_order(principal.tenant, principal.actor, input)
        .await
        .map_err(|e| placement_error(e, line_count))?;
    placed_response(placed)
}

/// Lists orders by id, oldest first (newest first with `sort=-id`): a buyer's retailer's, or
/// every order for a tenant admin.
#[utoipa::path(
    get, path = "/v1/orders", tag = "orders",
    security(("bearer" = [])),
    params(ListParams, SortParam, OrderFilter),
    responses(
        (status = 200, description = "A page of orders", body = ListResponse<OrderDto>),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not a buyer or tenant admin (manufacturers list `/v1/suborders`), or another retailer's `retailer_id`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Bad `limit`, `cursor`, `fields`, `sort` or `status` (`field` names it)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_orders(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(params): Query<ListParams>,
    Query(sort): Query<SortParam>,
    Query(filter): Query<OrderFilter>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let order = sort.order()?;
    let retailer = match viewer(&principal)? {
        Viewer::Admin => filter.retailer_id,
        Viewer::Retailer(own) => match filter.retailer_id {
            Some(other) if other != own => {
                return Err(forbidden("a buyer lists its own retailer's orders only"));
            }
            _ => Some(own),
        },
        Viewer::Manufacturer(_) => {
            return Err(forbidden(
                "manufacturer users list their sub-orders under /v1/suborders",
            ));
        }
    };
    let query = OrderListQuery {
        status: order_status(filter.status.as_deref())?,
        after: params.after_in(order)?,
        limit: params.limit()?,
    };
    let fields = params.fields()?;
    let tenant = principal.tenant;
    let page = blocking(&state, move |engine| match retailer {
        Some(retailer_id) => engine.orders_of_retailer_ordered(tenant, retailer_id, &query, order),
        None => engine.orders_ordered(tenant, &query, order),
    })
    .await?;
    let page = ListResponse::new_in(
        page.items.into_iter().map(OrderDto::from).collect(),
        page.next_after,
        order,
    );
    read_list(&headers, &page, fields.as_ref())
}

/// Loads an order the viewer may see; another retailer's order is a 404.
fn visible_order(
    state: &AppState,
    tenant: TenantId,
    viewer: Viewer,
    id: u64,
) -> Result<OrderView, ApiError> {
    if let Viewer::Manufacturer(_) = viewer {
        return Err(forbidden(
            "manufacturer users read their sub-orders under /v1/suborders",
        ));
    }
    state
        .engine
        .order(tenant, id)?
        .filter(|view| match viewer {
            Viewer::Admin => true,
            Viewer::Retailer(r) => view.order.retailer_id == r,
            Viewer::Manufacturer(_) => false,
        })
        .ok_or_else(|| not_found("order", id))
}

/// One order with its sub-orders and invoice.
#[utoipa::path(
    get, path = "/v1/orders/{id}", tag = "orders",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Order id"), FieldsParam),
    responses(
        (status = 200, description = "The order", body = OrderDetailDto),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not a buyer or tenant admin", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such order of the caller's retailer (or tenant)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_order(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Query(params): Query<FieldsParam>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let viewer = viewer(&principal)?;
    let fields = params.fields()?;
    let view = visible_order(&state, principal.tenant, viewer, id)?;
    let body = OrderDetailDto::new(view, mercato_engine::now_ms());
    read_json(&headers, &body, fields.as_ref())
}

/// The retailer on whose behalf an approver decides: its own, or the order's for an admin.
fn approver(state: &AppState, principal: &Principal, order_id: u64) -> Result<u64, ApiError> {
    let retailer_id = match principal.role {
        Some(Role::Buyer { retailer_id } | Role::BuyerApprover { retailer_id }) => retailer_id,
        Some(Role::TenantAdmin) => {
            state
                .engine
                .order(principal.tenant, order_id)?
                .ok_or_else(|| not_found("order", order_id))?
                .order
                .retailer_id
        }
        _ => {
            return Err(forbidden(
                "orders are approved by buyer-approvers and tenant admins",
            ));
        }
    };
    require(principal, Permission::ApproveOrder { retailer_id })?;
    Ok(retailer_id)
}

async fn decide(
    state: AppState,
    principal: Principal,
    order_id: u64,
    body: Bytes,
    approve: bool,
) -> Result<Response, ApiError> {
    let retailer_id = approver(&state, &principal, order_id)?;
    let approver_user_id = user_id(&principal, "an approval decision")?;
    let note = optional_body::<DecisionRequest>(&body)?.and_then(|d| d.note);
    let input = ApprovalInput {
        order_id,
        retailer_id,
        approver_user_id,
        note,
    };
    let view = if approve {
        state
            .engine
            .approve_order(principal.tenant, principal.actor, input)
            .await?
    } else {
        state
            .engine
            .reject_order(principal.tenant, principal.actor, input)
            .await?
    };
    ok_json(&OrderDetailDto::new(view, mercato_engine::now_ms()))
}

/// Approves an order waiting for approval: it is invoiced and its sub-orders become `placed`.
/// The credit limit is checked again.
#[utoipa::path(
    post, path = "/v1/orders/{id}/approve", tag = "orders",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Order id")),
    request_body(content = DecisionRequest, description = "Optional", content_type = "application/json"),
    responses(
        (status = 200, description = "Approved", body = OrderDetailDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not a buyer-approver of the order's retailer (or a tenant admin)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such order of the caller's retailer", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`illegal_transition` (not awaiting approval) or `credit_limit_exceeded`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body or `note`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn approve_order(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    body: Bytes,
) -> Result<Response, ApiError> {
    decide(state, principal, id, body, true).await
}

/// Rejects an order waiting for approval: its sub-orders are cancelled and its stock released.
#[utoipa::path(
    post, path = "/v1/orders/{id}/reject", tag = "orders",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Order id")),
    request_body(content = DecisionRequest, description = "Optional", content_type = "application/json"),
    responses(
        (status = 200, description = "Rejected", body = OrderDetailDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not a buyer-approver of the order's retailer (or a tenant admin)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such order of the caller's retailer", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`illegal_transition`: not awaiting approval", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body or `note`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn reject_order(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    body: Bytes,
) -> Result<Response, ApiError> {
    decide(state, principal, id, body, false).await
}

/// Places a new order with the lines (products and quantities) of an earlier order of the
/// caller's retailer, checked and priced as of now. Idempotent with `Idempotency-Key` like a
/// placement.
#[utoipa::path(
    post, path = "/v1/orders/{id}/reorder", tag = "orders",
    security(("bearer" = [])),
    params(
        ("id" = u64, Path, description = "The order to repeat"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the reorder idempotent, as for `POST /v1/orders`"),
    ),
    request_body(content = ReorderRequest, description = "Optional", content_type = "application/json"),
    responses(
        (status = 201, description = "Placed; `Location` names the new order", body = OrderDetailDto),
        (status = 200, description = "The order an earlier request with the same `Idempotency-Key` placed", body = OrderDetailDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not a signed-in buyer", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such order of the caller's retailer", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`idempotency_key_reused`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`order_lines_rejected` naming each line that can no longer be ordered, or `invalid_field`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn reorder(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (retailer_id, buyer_user_id) = buyer(&principal)?;
    let idempotency_key = idempotency_key(&headers)?;
    let request = optional_body::<ReorderRequest>(&body)?.unwrap_or_default();
    let source = visible_order(&state, principal.tenant, Viewer::Retailer(retailer_id), id)?;
    let line_count = source.order.line_count as usize;
    let request_hash = request_hash(&format!("reorder/{id}"), &request)?;
    let input = Reorder {
        source_order_id: id,
        retailer_id,
        buyer_user_id,
        po_number: request.po_number,
        shipping_address_label: request.shipping_address_label,
        idempotency_key,
        request_hash,
    };
    let placed = state
        .engine
        .reorder(principal.tenant, principal.actor, input)
        .await
        .map_err(|e| placement_error(e, line_count))?;
    placed_response(placed)
}

// ---------------------------------------------------------------------------------------------
// Sub-orders.

/// Lists a manufacturer's sub-orders by id (oldest first).
#[utoipa::path(
    get, path = "/v1/suborders", tag = "orders",
    security(("bearer" = [])),
    params(ListParams, SubOrderFilter),
    responses(
        (status = 200, description = "A page of sub-orders", body = ListResponse<SubOrderDto>),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not a manufacturer user or tenant admin (buyers read sub-orders in their orders), or another manufacturer's `manufacturer_id`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Bad `limit`, `cursor`, `fields` or `status`, or a tenant admin without `manufacturer_id` (`field` names it)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_suborders(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(params): Query<ListParams>,
    Query(filter): Query<SubOrderFilter>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let manufacturer_id = match viewer(&principal)? {
        Viewer::Admin => filter.manufacturer_id.ok_or_else(|| {
            ApiError::invalid_field(
                "manufacturer_id",
                "required for tenant admins: sub-orders are listed per manufacturer",
            )
        })?,
        Viewer::Manufacturer(own) => match filter.manufacturer_id {
            Some(other) if other != own => {
                return Err(forbidden(
                    "a manufacturer user lists its own manufacturer's sub-orders only",
                ));
            }
            _ => own,
        },
        Viewer::Retailer(_) => {
            return Err(forbidden(
                "buyers read the sub-orders of their orders under /v1/orders/{id}",
            ));
        }
    };
    let query = SubOrderListQuery {
        status: suborder_status(filter.status.as_deref())?,
        after: params.after()?,
        limit: params.limit()?,
    };
    let fields = params.fields()?;
    let tenant = principal.tenant;
    let page = blocking(&state, move |engine| {
        engine.suborders_of_manufacturer(tenant, manufacturer_id, &query)
    })
    .await?;
    let page = ListResponse::new(
        page.items.into_iter().map(SubOrderDto::from).collect(),
        page.next_after,
    );
    read_list(&headers, &page, fields.as_ref())
}

/// Loads a sub-order the viewer may see; another party's is a 404.
fn visible_suborder(
    state: &AppState,
    tenant: TenantId,
    viewer: Viewer,
    id: u64,
) -> Result<SubOrder, ApiError> {
    state
        .engine
        .suborder(tenant, id)?
        .filter(|sub| match viewer {
            Viewer::Admin => true,
            Viewer::Retailer(r) => sub.retailer_id == r,
            Viewer::Manufacturer(m) => sub.manufacturer_id == m,
        })
        .ok_or_else(|| not_found("suborder", id))
}

/// One sub-order with the stock it holds, by product and warehouse.
#[utoipa::path(
    get, path = "/v1/suborders/{id}", tag = "orders",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Sub-order id"), FieldsParam),
    responses(
        (status = 200, description = "The sub-order", body = SubOrderDetailDto),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not read orders", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such sub-order of the caller's manufacturer or retailer", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_suborder(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Query(params): Query<FieldsParam>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let viewer = viewer(&principal)?;
    let fields = params.fields()?;
    let suborder = visible_suborder(&state, principal.tenant, viewer, id)?;
    let reservations = state
        .engine
        .suborder_reservations(principal.tenant, id)?
        .into_iter()
        .map(ReservationDto::from)
        .collect();
    let body = SubOrderDetailDto {
        suborder: suborder.into(),
        reservations,
    };
    read_json(&headers, &body, fields.as_ref())
}

/// A transition of a sub-order.
enum Transition {
    Confirm,
    Ship { tracking: Option<String> },
    Deliver,
    Cancel { reason: Option<String> },
}

impl Transition {
    /// Whether only the manufacturer's side may make it.
    fn manufacturer_only(&self) -> bool {
        matches!(self, Transition::Confirm | Transition::Ship { .. })
    }
}

/// The side acting on a sub-order: a manufacturer user for its own, a buyer for its
/// retailer's (deliver, cancel), a tenant admin as the sub-order's manufacturer.
fn acting_party(
    state: &AppState,
    principal: &Principal,
    suborder_id: u64,
    transition: &Transition,
) -> Result<Party, ApiError> {
    match principal.role {
        Some(Role::ManufacturerUser { manufacturer_id }) => {
            require(principal, Permission::FulfilOrder { manufacturer_id })?;
            Ok(Party::Manufacturer(manufacturer_id))
        }
        Some(Role::Buyer { retailer_id } | Role::BuyerApprover { retailer_id }) => {
            if transition.manufacturer_only() {
                return Err(forbidden(
                    "only the sub-order's manufacturer confirms and ships it",
                ));
            }
            require(principal, Permission::PlaceOrder { retailer_id })?;
            Ok(Party::Retailer(retailer_id))
        }
        Some(Role::TenantAdmin) => {
            let manufacturer_id = state
                .engine
                .suborder(principal.tenant, suborder_id)?
                .ok_or_else(|| not_found("suborder", suborder_id))?
                .manufacturer_id;
            require(principal, Permission::FulfilOrder { manufacturer_id })?;
            Ok(Party::Manufacturer(manufacturer_id))
        }
        _ => Err(forbidden(
            "sub-orders are moved by their manufacturer, their buyer or a tenant admin",
        )),
    }
}

async fn transition(
    state: AppState,
    principal: Principal,
    suborder_id: u64,
    transition: Transition,
) -> Result<Response, ApiError> {
    let party = acting_party(&state, &principal, suborder_id, &transition)?;
    let (engine, tenant, actor) = (&state.engine, principal.tenant, principal.actor);
    let change = match (transition, party) {
        (Transition::Confirm, Party::Manufacturer(m)) => {
            engine
                .confirm_suborder(tenant, actor, suborder_id, m)
                .await?
        }
        (Transition::Ship { tracking }, Party::Manufacturer(m)) => {
            engine
                .ship_suborder(tenant, actor, suborder_id, m, tracking)
                .await?
        }
        (Transition::Deliver, party) => {
            engine
                .deliver_suborder(tenant, actor, suborder_id, party)
                .await?
        }
        (Transition::Cancel { reason }, party) => {
            engine
                .cancel_suborder(tenant, actor, suborder_id, party, reason)
                .await?
        }
        (Transition::Confirm | Transition::Ship { .. }, Party::Retailer(_)) => {
            return Err(forbidden(
                "only the sub-order's manufacturer confirms and ships it",
            ));
        }
    };
    ok_json(&SubOrderChangeDto::from(change))
}

/// `placed -> confirmed`, by the sub-order's manufacturer.
#[utoipa::path(
    post, path = "/v1/suborders/{id}/confirm", tag = "orders",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Sub-order id")),
    responses(
        (status = 200, description = "Confirmed", body = SubOrderChangeDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not the sub-order's manufacturer (or a tenant admin)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such sub-order of the caller's manufacturer", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`illegal_transition`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn confirm_suborder(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
) -> Result<Response, ApiError> {
    transition(state, principal, id, Transition::Confirm).await
}

/// `confirmed -> shipped`, by the sub-order's manufacturer: its reserved stock leaves the
/// warehouses (recorded as `shipment` adjustments).
#[utoipa::path(
    post, path = "/v1/suborders/{id}/ship", tag = "orders",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Sub-order id")),
    request_body(content = ShipRequest, description = "Optional", content_type = "application/json"),
    responses(
        (status = 200, description = "Shipped", body = SubOrderChangeDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not the sub-order's manufacturer (or a tenant admin)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such sub-order of the caller's manufacturer", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`illegal_transition`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body or `tracking`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn ship_suborder(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tracking = optional_body::<ShipRequest>(&body)?.and_then(|r| r.tracking);
    transition(state, principal, id, Transition::Ship { tracking }).await
}

/// `shipped -> delivered`, by the manufacturer or the buyer.
#[utoipa::path(
    post, path = "/v1/suborders/{id}/deliver", tag = "orders",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Sub-order id")),
    responses(
        (status = 200, description = "Delivered", body = SubOrderChangeDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not move sub-orders", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such sub-order of the caller's manufacturer or retailer", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`illegal_transition`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn deliver_suborder(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
) -> Result<Response, ApiError> {
    transition(state, principal, id, Transition::Deliver).await
}

/// `placed | confirmed -> cancelled`, by the manufacturer or the buyer: its reserved stock is
/// released and its subtotal credited to the invoice.
#[utoipa::path(
    post, path = "/v1/suborders/{id}/cancel", tag = "orders",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Sub-order id")),
    request_body(content = CancelRequest, description = "Optional", content_type = "application/json"),
    responses(
        (status = 200, description = "Cancelled", body = SubOrderChangeDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not move sub-orders", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such sub-order of the caller's manufacturer or retailer", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`illegal_transition` (shipped, delivered, already cancelled, or awaiting approval: reject the order instead)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body or `reason`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn cancel_suborder(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let reason = optional_body::<CancelRequest>(&body)?.and_then(|r| r.reason);
    transition(state, principal, id, Transition::Cancel { reason }).await
}

// ---------------------------------------------------------------------------------------------
// Invoices and payments.

/// Lists a retailer's invoices by id (oldest first).
#[utoipa::path(
    get, path = "/v1/invoices", tag = "orders",
    security(("bearer" = [])),
    params(ListParams, InvoiceFilter),
    responses(
        (status = 200, description = "A page of invoices", body = ListResponse<InvoiceDto>),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not a buyer or tenant admin, or another retailer's `retailer_id`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Bad `limit`, `cursor` or `fields`, or a tenant admin without `retailer_id` (`field` names it)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_invoices(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(params): Query<ListParams>,
    Query(filter): Query<InvoiceFilter>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let retailer_id = match viewer(&principal)? {
        Viewer::Admin => filter.retailer_id.ok_or_else(|| {
            ApiError::invalid_field(
                "retailer_id",
                "required for tenant admins: invoices are listed per retailer",
            )
        })?,
        Viewer::Retailer(own) => match filter.retailer_id {
            Some(other) if other != own => {
                return Err(forbidden("a buyer lists its own retailer's invoices only"));
            }
            _ => own,
        },
        Viewer::Manufacturer(_) => {
            return Err(forbidden("invoices are the retailer's and the tenant's"));
        }
    };
    let (after, limit, fields) = (params.after()?, params.limit()?, params.fields()?);
    let tenant = principal.tenant;
    let page = blocking(&state, move |engine| {
        engine.invoices_of_retailer(tenant, retailer_id, after, limit)
    })
    .await?;
    let now_ms = mercato_engine::now_ms();
    let page = ListResponse::new(
        page.items
            .into_iter()
            .map(|i| InvoiceDto::new(i, now_ms))
            .collect(),
        page.next_after,
    );
    read_list(&headers, &page, fields.as_ref())
}

/// Loads an invoice the viewer may see; another retailer's is a 404.
fn visible_invoice(state: &AppState, principal: &Principal, id: u64) -> Result<Invoice, ApiError> {
    let own = match viewer(principal)? {
        Viewer::Admin => None,
        Viewer::Retailer(r) => Some(r),
        Viewer::Manufacturer(_) => {
            return Err(forbidden("invoices are the retailer's and the tenant's"));
        }
    };
    state
        .engine
        .invoice(principal.tenant, id)?
        .filter(|i| own.is_none_or(|r| i.retailer_id == r))
        .ok_or_else(|| not_found("invoice", id))
}

/// One invoice.
#[utoipa::path(
    get, path = "/v1/invoices/{id}", tag = "orders",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Invoice id"), FieldsParam),
    responses(
        (status = 200, description = "The invoice", body = InvoiceDto),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not a buyer or tenant admin", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such invoice of the caller's retailer", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_invoice(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Query(params): Query<FieldsParam>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let fields = params.fields()?;
    let invoice = visible_invoice(&state, &principal, id)?;
    let body = InvoiceDto::new(invoice, mercato_engine::now_ms());
    read_json(&headers, &body, fields.as_ref())
}

/// An invoice's payments by id.
#[utoipa::path(
    get, path = "/v1/invoices/{id}/payments", tag = "orders",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Invoice id"), ListParams),
    responses(
        (status = 200, description = "A page of payments", body = ListResponse<PaymentDto>),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not a buyer or tenant admin", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such invoice of the caller's retailer", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Bad `limit`, `cursor` or `fields` (`field` names it)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_payments(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Query(params): Query<ListParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (after, limit, fields) = (params.after()?, params.limit()?, params.fields()?);
    visible_invoice(&state, &principal, id)?;
    let tenant = principal.tenant;
    let page = blocking(&state, move |engine| {
        engine.payments_of_invoice(tenant, id, after, limit)
    })
    .await?;
    let page = ListResponse::new(
        page.items.into_iter().map(PaymentDto::from).collect(),
        page.next_after,
    );
    read_list(&headers, &page, fields.as_ref())
}

/// Records money received against an invoice (tenant admins). A payment above what is
/// outstanding is refused with 422 `overpayment`.
#[utoipa::path(
    post, path = "/v1/invoices/{id}/payments", tag = "orders",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Invoice id")),
    request_body = PaymentRequest,
    responses(
        (status = 201, description = "Recorded; the body has the payment and the invoice after it", body = PaymentRecordedDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not a tenant admin", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such invoice in the caller's tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`invoice_not_open`: already paid or void", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`overpayment` (more than is outstanding; `field` is `amount`) or `invalid_field` (`amount`, `amount.currency`, `reference`)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn record_payment(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Json(request): Json<PaymentRequest>,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManageRetailers)?;
    let currency = Currency::parse(&request.amount.currency)
        .map_err(|e| ApiError::invalid_field("amount.currency", e))?;
    let amount = Money::new(request.amount.minor, currency);
    let recorded = state
        .engine
        .record_payment(
            principal.tenant,
            principal.actor,
            id,
            amount,
            &request.reference,
        )
        .await
        .map_err(payment_error)?;
    let PaymentRecorded { invoice, payment } = recorded;
    created(&PaymentRecordedDto {
        payment: payment.into(),
        invoice: InvoiceDto::new(invoice, mercato_engine::now_ms()),
    })
}

/// An overpayment is bad input (the amount), not a conflict of states: 422 naming `amount`.
fn payment_error(error: EngineError) -> ApiError {
    match error {
        EngineError::Rejected(Rejection::Conflict {
            code: code @ "overpayment",
            detail,
        }) => {
            let mut extra = serde_json::Map::new();
            extra.insert("field".to_owned(), serde_json::Value::from("amount"));
            ApiError::detailed(ErrorCode::InvalidField, Some(code), detail, extra)
        }
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(
        product_id: Option<u64>,
        sku: Option<&str>,
        manufacturer_id: Option<u64>,
    ) -> OrderLineRequest {
        OrderLineRequest {
            product_id,
            sku: sku.map(str::to_owned),
            manufacturer_id,
            quantity: 1,
        }
    }

    #[test]
    fn lines_name_a_product_one_way() {
        let ok = line_inputs(&[line(Some(1), None, None), line(None, Some("A-1"), Some(2))])
            .expect("valid lines");
        assert_eq!(ok[0].product, ProductRef::Id(1));
        assert_eq!(
            ok[1].product,
            ProductRef::Sku {
                manufacturer_id: 2,
                sku: "A-1".to_owned()
            }
        );
        let error = line_inputs(&[
            line(Some(1), None, None),
            line(None, Some("A-1"), None),
            line(Some(1), Some("A-1"), Some(2)),
            line(None, None, None),
        ])
        .expect_err("malformed lines");
        assert_eq!(error.code(), ErrorCode::OrderLinesRejected);
        assert!(line_inputs(&[]).is_err());
    }

    #[test]
    fn the_request_hash_ignores_formatting_but_not_content() {
        let a: PlaceOrderRequest =
            serde_json::from_str(r#"{"lines":[{"product_id":1,"quantity":2}]}"#).expect("json");
        let b: PlaceOrderRequest =
            serde_json::from_str(r#"{ "lines" : [ { "quantity":2, "product_id":1 } ] }"#)
                .expect("json");
        let c: PlaceOrderRequest =
            serde_json::from_str(r#"{"lines":[{"product_id":1,"quantity":3}]}"#).expect("json");
        let hash = |r: &PlaceOrderRequest| request_hash("place", r).expect("hash");
        assert_eq!(hash(&a), hash(&b));
        assert_ne!(hash(&a), hash(&c));
        assert_ne!(hash(&a), request_hash("reorder/1", &a).expect("hash"));
    }

    #[test]
    fn the_credit_limit_is_reported_on_every_line() {
        let error = placement_error(
            EngineError::Rejected(Rejection::Conflict {
                code: "credit_limit_exceeded",
                detail: "over".to_owned(),
            }),
            3,
        );
        assert_eq!(error.code(), ErrorCode::OrderLinesRejected);
        let other = placement_error(
            EngineError::Rejected(Rejection::Conflict {
                code: "idempotency_key_reused",
                detail: "k".to_owned(),
            }),
            3,
        );
        assert_eq!(other.code(), ErrorCode::Conflict);
    }

    #[test]
    fn optional_bodies_may_be_empty() {
        assert!(
            optional_body::<CancelRequest>(&Bytes::from_static(b" "))
                .expect("empty")
                .is_none()
        );
        let parsed = optional_body::<CancelRequest>(&Bytes::from_static(br#"{"reason":"x"}"#))
            .expect("json")
            .expect("some");
        assert_eq!(parsed.reason.as_deref(), Some("x"));
        assert!(optional_body::<CancelRequest>(&Bytes::from_static(br#"{"nope":1}"#)).is_err());
    }
}
