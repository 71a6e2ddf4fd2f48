//! The orders domain: placing orders (one atomic command that checks every line, prices it and
//! reserves its stock), sub-orders per manufacturer and their lifecycle, approval, invoices,
//! payments and each retailer's credit.
//!
//! Placing an order ([`PlaceOrder`]) is one command on the tenant's shard. It checks, for every
//! line, that the product exists and is active, that its manufacturer may sell (verified, when
//! the tenant's catalog requires it; never suspended), the quantity (at least the minimum order
//! quantity and a multiple of the case pack), the price (the retailer's customer-group price
//! list and volume tier, via [`catalog::resolve_unit_price`](crate::catalog::resolve_unit_price))
//! and the stock, which it reserves. Every offending line is reported at once in
//! [`Rejection::OrderLines`]; order-level failures (unknown retailer, credit limit, idempotency
//! key reuse) are other rejections. A rejected order leaves nothing behind.
//!
//! The order is split into one [`SubOrder`] per manufacturer. A sub-order moves
//! `placed -> confirmed -> shipped -> delivered`, or to `cancelled` from `placed` or `confirmed`
//! (releasing its reserved stock and crediting the invoice); anything else is a
//! `Conflict { code: "illegal_transition" }`. Shipping turns the reservation into a decrement of
//! `on_hand` (recorded as `shipment` adjustments). Manufacturers act only on their own
//! sub-orders: a sub-order of another manufacturer (or another retailer's order) is reported as
//! not found.
//!
//! Approval: an order whose total is above the retailer's approval threshold is placed in
//! `awaiting_approval` with its stock reserved and no invoice; a buyer-approver of the same
//! retailer approves it (credit limit re-checked, invoice issued, sub-orders `placed`) or
//! rejects it (sub-orders `cancelled`, stock released). Roles are checked by the server; the
//! engine checks that the approver's retailer is the order's.
//!
//! Invoices: one per order, issued when the order is placed (or approved). Net-terms retailers
//! get a due date of issue time + 15/30/60 days; prepaid retailers get an invoice due on issue
//! (payment is expected before shipping; the engine does not block shipping on it). Payments
//! are recorded against an invoice (never more than its balance); cancelling a sub-order
//! credits its subtotal to the invoice. An invoice is `open` while something is outstanding,
//! `paid` when fully paid, `void` when fully credited before any payment; it is overdue when
//! open and past due at a command's time.
//!
//! Credit limit (net-terms retailers only): the outstanding amount of the retailer's open
//! invoices, overdue ones included, plus the new order's total must not exceed the credit
//! limit. Each open invoice counts once, whether overdue or not; the rejection reports how
//! much of the open amount is overdue. Orders awaiting approval are not invoiced yet and do not
//! count until approved, when the limit is checked again.
//!
//! Idempotency: with an idempotency key, the same buyer's same key and the same request hash
//! (the server's SHA-256 of the body) return the same order again (`replayed: true`, nothing
//! written, no second reservation); the same key with another hash is a
//! `Conflict { code: "idempotency_key_reused" }`. Keys are scoped per tenant and buyer and are
//! kept for [`IDEMPOTENCY_KEY_RETENTION_MS`] (24 hours); after that the key is free again.
//! Expired keys are deleted lazily: a placement whose order id is a multiple of
//! [`IDEMPOTENCY_CLEANUP_EVERY`] deletes at most [`IDEMPOTENCY_CLEANUP_PER_COMMAND`], which
//! outpaces the one key a placement adds. A rejected placement records no key, so a corrected retry may use it.
//!
//! Lists are in id order (oldest first) with an `after` cursor, stable under concurrent
//! inserts because ids only grow; a status filter uses a status index, so filtered pages are
//! exact.

mod billing;
mod lifecycle;
mod place;
mod reads;

pub use self::reads::{
    OrderListQuery, OrderView, RetailerCredit, SubOrderListQuery, list_invoices_of_retailer,
    list_orders, list_orders_of_retailer, list_orders_of_retailer_ordered, list_orders_ordered,
    list_payments_of_invoice, list_suborders_of_manufacturer, order_view, retailer_credit,
};
pub use crate::catalog::{IdOrder, Page};

use crate::command::{Applied, Ctx, reject};
use crate::money::Money;
use crate::tables::{IDEMPOTENCY_KEYS, IdempotencyRecord, Invoice, Order, Payment, SubOrder};
use crate::{Action, Actor, CommandOutput, Engine, EngineError, Rejection, TenantId};
use mercato_storage::{StorageError, TenantReads};
use serde::{Deserialize, Serialize};

/// Upper bound on the lines of one order.
pub const ORDER_LINES_MAX: usize = 500;
/// Upper bound on one line's quantity.
pub const ORDER_LINE_QTY_MAX: u32 = crate::catalog::QUANTITY_MAX;
/// Upper bound on a purchase-order number, in bytes.
pub const PO_NUMBER_BYTES_MAX: usize = 64;
/// Upper bound on an idempotency key, in bytes (visible ASCII).
pub const IDEMPOTENCY_KEY_BYTES_MAX: usize = 255;
/// How long an idempotency key protects against a second order: 24 hours.
pub const IDEMPOTENCY_KEY_RETENTION_MS: u64 = 24 * 60 * 60 * 1000;
/// Upper bound on expired idempotency keys one placement deletes.
pub const IDEMPOTENCY_CLEANUP_PER_COMMAND: usize = 16;
/// Placements (by order id) between two that look for expired idempotency keys: looking costs
/// a scan, and almost always finds none.
pub const IDEMPOTENCY_CLEANUP_EVERY: u64 = 4;
/// Upper bound on an approval note or a cancellation reason, in bytes.
pub const NOTE_BYTES_MAX: usize = 500;
/// Upper bound on a shipment tracking reference, in bytes.
pub const TRACKING_BYTES_MAX: usize = 200;
/// Upper bound on a payment reference, in bytes.
pub const PAYMENT_REFERENCE_BYTES_MAX: usize = 140;
/// Upper bound on open invoices examined to report a retailer's overdue amount.
pub const OVERDUE_SCAN_MAX: usize = 1_000;
/// Upper bound on rows of one list page.
pub const PAGE_LIMIT_MAX: usize = crate::inventory::PAGE_LIMIT_MAX;

/// Names a product: by id, or by the manufacturer's SKU (quick order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProductRef {
    Id(u64),
    Sku { manufacturer_id: u64, sku: String },
}

/// One requested line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLineInput {
    pub product: ProductRef,
    pub qty: u32,
}

/// A buyer's order as requested.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceOrder {
    /// The buyer's company.
    pub retailer_id: u64,
    pub buyer_user_id: u64,
    /// `1..=ORDER_LINES_MAX` lines, each product at most once.
    pub lines: Vec<OrderLineInput>,
    pub po_number: Option<String>,
    /// Label of one of the retailer's addresses; `None` takes its first address.
    pub shipping_address_label: Option<String>,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// SHA-256 of the request body, compared on a key's reuse.
    pub request_hash: [u8; 32],
}

/// A new order with the lines (products and quantities) of an earlier order of the same
/// retailer, checked and priced like any new order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reorder {
    pub source_order_id: u64,
    pub retailer_id: u64,
    pub buyer_user_id: u64,
    pub po_number: Option<String>,
    pub shipping_address_label: Option<String>,
    pub idempotency_key: Option<String>,
    pub request_hash: [u8; 32],
}

/// A buyer-approver's decision on an order awaiting approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalInput {
    pub order_id: u64,
    /// The approver's company: must be the order's retailer.
    pub retailer_id: u64,
    pub approver_user_id: u64,
    pub note: Option<String>,
}

/// Which side acts on a sub-order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Party {
    /// A user of this manufacturer: only its own sub-orders.
    Manufacturer(u64),
    /// A buyer of this retailer: only its own orders' sub-orders.
    Retailer(u64),
}

/// Orders commands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrdersAction {
    Place(PlaceOrder),
    Reorder(Reorder),
    Approve(ApprovalInput),
    Reject(ApprovalInput),
    /// `placed -> confirmed`, by the sub-order's manufacturer.
    Confirm {
        suborder_id: u64,
        manufacturer_id: u64,
    },
    /// `confirmed -> shipped`, by the sub-order's manufacturer; reserved stock leaves on-hand.
    Ship {
        suborder_id: u64,
        manufacturer_id: u64,
        tracking: Option<String>,
    },
    /// `shipped -> delivered`, by either side.
    Deliver {
        suborder_id: u64,
        party: Party,
    },
    /// `placed | confirmed -> cancelled`, by either side; releases the reserved stock.
    Cancel {
        suborder_id: u64,
        party: Party,
        reason: Option<String>,
    },
    /// Money received against an invoice.
    RecordPayment {
        invoice_id: u64,
        amount: Money,
        reference: String,
    },
}

/// A placed (or replayed) order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacedOrder {
    pub order: OrderView,
    /// True when an idempotency key returned an order placed earlier.
    pub replayed: bool,
}

/// A sub-order after a transition, with its order (whose status may have followed) and the
/// order's invoice (which a cancellation credits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubOrderChange {
    pub order: Order,
    pub suborder: SubOrder,
    pub invoice: Option<Invoice>,
}

/// A recorded payment and its invoice after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRecorded {
    pub invoice: Invoice,
    pub payment: Payment,
}

/// What an orders command returns.
#[derive(Clone, Debug, PartialEq, Eq)]
///
/// Variants are boxed: orders carry addresses and lines, and the output travels through the
/// shard writer's reply channel for every command.
pub enum OrdersOutput {
    Placed(Box<PlacedOrder>),
    /// After approve or reject.
    Decided(Box<OrderView>),
    SubOrderChanged(Box<SubOrderChange>),
    PaymentRecorded(Box<PaymentRecorded>),
}

pub(crate) fn apply(action: &OrdersAction, ctx: &mut Ctx<'_, '_>) -> Applied<OrdersOutput> {
    match action {
        OrdersAction::Place(input) => place::apply_place(ctx, input),
        OrdersAction::Reorder(input) => place::apply_reorder(ctx, input),
        OrdersAction::Approve(input) => lifecycle::apply_decide(ctx, input, true),
        OrdersAction::Reject(input) => lifecycle::apply_decide(ctx, input, false),
        OrdersAction::Confirm {
            suborder_id,
            manufacturer_id,
        } => lifecycle::apply_confirm(ctx, *suborder_id, *manufacturer_id),
        OrdersAction::Ship {
            suborder_id,
            manufacturer_id,
            tracking,
        } => lifecycle::apply_ship(ctx, *suborder_id, *manufacturer_id, tracking.as_deref()),
        OrdersAction::Deliver { suborder_id, party } => {
            lifecycle::apply_deliver(ctx, *suborder_id, *party)
        }
        OrdersAction::Cancel {
            suborder_id,
            party,
            reason,
        } => lifecycle::apply_cancel(ctx, *suborder_id, *party, reason.as_deref()),
        OrdersAction::RecordPayment {
            invoice_id,
            amount,
            reference,
        } => billing::apply_record_payment(ctx, *invoice_id, *amount, reference),
    }
}

pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Rejection {
    Rejection::InvalidField {
        field: field.to_string(),
        reason: reason.into(),
    }
}

pub(crate) fn not_found(resource: &'static str, id: u64) -> Rejection {
    Rejection::NotFound {
        resource,
        id: id.to_string(),
    }
}

/// Trims optional free text: empty is `None`; longer than `max` bytes is refused.
pub(crate) fn optional_text(
    field: &str,
    text: Option<&str>,
    max: usize,
) -> Applied<Option<String>> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) if t.len() > max || t.chars().any(char::is_control) => reject(invalid(
            field,
            format!("must be at most {max} bytes without control characters"),
        )),
        Some(t) => Ok(Some(t.to_string())),
    }
}

/// An idempotency key's shape: `1..=IDEMPOTENCY_KEY_BYTES_MAX` bytes of visible ASCII.
pub(crate) fn idempotency_key(key: &str) -> Applied<String> {
    if key.is_empty()
        || key.len() > IDEMPOTENCY_KEY_BYTES_MAX
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return reject(invalid(
            "idempotency_key",
            format!("must be 1..={IDEMPOTENCY_KEY_BYTES_MAX} visible ASCII characters"),
        ));
    }
    Ok(key.to_string())
}

/// The record of a key still within its retention at `at_ms`.
pub(crate) fn live_idempotency_record(
    read: &impl TenantReads,
    buyer_user_id: u64,
    key: &str,
    at_ms: u64,
) -> Result<Option<IdempotencyRecord>, StorageError> {
    Ok(read
        .get(&IDEMPOTENCY_KEYS, &(buyer_user_id, key.to_string()))?
        .filter(|r| r.created_at_ms.saturating_add(IDEMPOTENCY_KEY_RETENTION_MS) > at_ms))
}

pub(crate) fn key_reused(key: &str) -> Rejection {
    Rejection::Conflict {
        code: "idempotency_key_reused",
        detail: format!(
            "idempotency key {key:?} was used for a different request; use a new key for a new order"
        ),
    }
}

fn unexpected(other: CommandOutput) -> EngineError {
    EngineError::UnexpectedOutput(format!("{other:?}"))
}

impl Engine {
    /// Answers a placement that reuses a live idempotency key from a snapshot, without a
    /// write: the earlier order when the hash matches, the conflict when it does not. `None`
    /// when the command has to decide (no key, unknown key, malformed key).
    fn idempotent_replay(
        &self,
        tenant: TenantId,
        buyer_user_id: u64,
        key: Option<&str>,
        request_hash: &[u8; 32],
    ) -> Result<Option<PlacedOrder>, EngineError> {
        let Some(key) = key.and_then(|k| idempotency_key(k).ok()) else {
            return Ok(None);
        };
        let read = self.storage.read(tenant)?;
        let Some(record) = live_idempotency_record(&read, buyer_user_id, &key, crate::now_ms())?
        else {
            return Ok(None);
        };
        if record.request_hash != *request_hash {
            return Err(EngineError::Rejected(key_reused(&key)));
        }
        Ok(
            order_view(&read, record.order_id)?.map(|order| PlacedOrder {
                order,
                replayed: true,
            }),
        )
    }

    async fn run_orders(
        &self,
        tenant: TenantId,
        actor: Actor,
        action: OrdersAction,
    ) -> Result<OrdersOutput, EngineError> {
        match self.run(tenant, actor, Action::Orders(action)).await? {
            CommandOutput::Orders(output) => Ok(output),
            other => Err(unexpected(other)),
        }
    }

    /// Places an order (see the module documentation for every check).
    pub async fn place_order(
        &self,
        tenant: TenantId,
        actor: Actor,
        input: PlaceOrder,
    ) -> Result<PlacedOrder, EngineError> {
        let (buyer, key, hash) = (
            input.buyer_user_id,
            input.idempotency_key.clone(),
            input.request_hash,
        );
        self.place_idempotently(tenant, actor, buyer, key, hash, OrdersAction::Place(input))
            .await
    }

    /// Places a new order with the lines of an earlier order of the same retailer.
    pub async fn reorder(
        &self,
        tenant: TenantId,
        actor: Actor,
        input: Reorder,
    ) -> Result<PlacedOrder, EngineError> {
        let (buyer, key, hash) = (
            input.buyer_user_id,
            input.idempotency_key.clone(),
            input.request_hash,
        );
        self.place_idempotently(
            tenant,
            actor,
            buyer,
            key,
            hash,
            OrdersAction::Reorder(input),
        )
        .await
    }

    /// Returns the order an earlier request with the same idempotency key placed (read only,
    /// no command), or runs `action`; the command repeats the check inside its transaction.
    async fn place_idempotently(
        &self,
        tenant: TenantId,
        actor: Actor,
        buyer_user_id: u64,
        idempotency_key: Option<String>,
        request_hash: [u8; 32],
        action: OrdersAction,
    ) -> Result<PlacedOrder, EngineError> {
        let replay = self.idempotent_replay(
            tenant,
            buyer_user_id,
            idempotency_key.as_deref(),
            &request_hash,
        )?;
        if let Some(placed) = replay {
            return Ok(placed);
        }
        match self.run_orders(tenant, actor, action).await? {
            OrdersOutput::Placed(placed) => Ok(*placed),
            other => Err(EngineError::UnexpectedOutput(format!("{other:?}"))),
        }
    }

    /// Approves an order awaiting approval: `placed`, invoiced.
    pub async fn approve_order(
        &self,
        tenant: TenantId,
        actor: Actor,
        input: ApprovalInput,
    ) -> Result<OrderView, EngineError> {
        match self
            .run_orders(tenant, actor, OrdersAction::Approve(input))
            .await?
        {
            OrdersOutput::Decided(view) => Ok(*view),
            other => Err(EngineError::UnexpectedOutput(format!("{other:?}"))),
        }
    }

    /// Rejects an order awaiting approval: `cancelled`, stock released.
    pub async fn reject_order(
        &self,
        tenant: TenantId,
        actor: Actor,
        input: ApprovalInput,
    ) -> Result<OrderView, EngineError> {
        match self
            .run_orders(tenant, actor, OrdersAction::Reject(input))
            .await?
        {
            OrdersOutput::Decided(view) => Ok(*view),
            other => Err(EngineError::UnexpectedOutput(format!("{other:?}"))),
        }
    }

    async fn run_suborder_change(
        &self,
        tenant: TenantId,
        actor: Actor,
        action: OrdersAction,
    ) -> Result<SubOrderChange, EngineError> {
        match self.run_orders(tenant, actor, action).await? {
            OrdersOutput::SubOrderChanged(change) => Ok(*change),
            other => Err(EngineError::UnexpectedOutput(format!("{other:?}"))),
        }
    }

    /// `placed -> confirmed`, by the sub-order's manufacturer.
    pub async fn confirm_suborder(
        &self,
        tenant: TenantId,
        actor: Actor,
        suborder_id: u64,
        manufacturer_id: u64,
    ) -> Result<SubOrderChange, EngineError> {
        let action = OrdersAction::Confirm {
            suborder_id,
            manufacturer_id,
        };
        self.run_suborder_change(tenant, actor, action).await
    }

    /// `confirmed -> shipped`, by the sub-order's manufacturer.
    pub async fn ship_suborder(
        &self,
        tenant: TenantId,
        actor: Actor,
        suborder_id: u64,
        manufacturer_id: u64,
        tracking: Option<String>,
    ) -> Result<SubOrderChange, EngineError> {
        let action = OrdersAction::Ship {
            suborder_id,
            manufacturer_id,
            tracking,
        };
        self.run_suborder_change(tenant, actor, action).await
    }

    /// `shipped -> delivered`, by either side.
    pub async fn deliver_suborder(
        &self,
        tenant: TenantId,
        actor: Actor,
        suborder_id: u64,
        party: Party,
    ) -> Result<SubOrderChange, EngineError> {
        let action = OrdersAction::Deliver { suborder_id, party };
        self.run_suborder_change(tenant, actor, action).await
    }

    /// `placed | confirmed -> cancelled`, by either side.
    pub async fn cancel_suborder(
        &self,
        tenant: TenantId,
        actor: Actor,
        suborder_id: u64,
        party: Party,
        reason: Option<String>,
    ) -> Result<SubOrderChange, EngineError> {
        let action = OrdersAction::Cancel {
            suborder_id,
            party,
            reason,
        };
        self.run_suborder_change(tenant, actor, action).await
    }

    /// Records money received against an invoice.
    pub async fn record_payment(
        &self,
        tenant: TenantId,
        actor: Actor,
        invoice_id: u64,
        amount: Money,
        reference: &str,
    ) -> Result<PaymentRecorded, EngineError> {
        let action = OrdersAction::RecordPayment {
            invoice_id,
            amount,
            reference: reference.to_string(),
        };
        match self.run_orders(tenant, actor, action).await? {
            OrdersOutput::PaymentRecorded(recorded) => Ok(*recorded),
            other => Err(EngineError::UnexpectedOutput(format!("{other:?}"))),
        }
    }

    /// An order with its sub-orders and invoice.
    pub fn order(&self, tenant: TenantId, order_id: u64) -> Result<Option<OrderView>, EngineError> {
        Ok(order_view(&self.storage.read(tenant)?, order_id)?)
    }

    /// A sub-order.
    pub fn suborder(
        &self,
        tenant: TenantId,
        suborder_id: u64,
    ) -> Result<Option<SubOrder>, EngineError> {
        Ok(self
            .storage
            .read(tenant)?
            .get(&crate::tables::SUBORDERS, &suborder_id)?)
    }

    /// The tenant's orders, optionally of one status.
    pub fn orders(
        &self,
        tenant: TenantId,
        query: &OrderListQuery,
    ) -> Result<Page<Order>, EngineError> {
        Ok(list_orders(&self.storage.read(tenant)?, query)?)
    }

    /// The tenant's orders in `order` of id (descending: newest first).
    pub fn orders_ordered(
        &self,
        tenant: TenantId,
        query: &OrderListQuery,
        order: IdOrder,
    ) -> Result<Page<Order>, EngineError> {
        Ok(list_orders_ordered(
            &self.storage.read(tenant)?,
            query,
            order,
        )?)
    }

    /// A retailer's orders in `order` of id (descending: newest first).
    pub fn orders_of_retailer_ordered(
        &self,
        tenant: TenantId,
        retailer_id: u64,
        query: &OrderListQuery,
        order: IdOrder,
    ) -> Result<Page<Order>, EngineError> {
        Ok(list_orders_of_retailer_ordered(
            &self.storage.read(tenant)?,
            retailer_id,
            query,
            order,
        )?)
    }

    /// A retailer's orders, optionally of one status.
    pub fn orders_of_retailer(
        &self,
        tenant: TenantId,
        retailer_id: u64,
        query: &OrderListQuery,
    ) -> Result<Page<Order>, EngineError> {
        Ok(list_orders_of_retailer(
            &self.storage.read(tenant)?,
            retailer_id,
            query,
        )?)
    }

    /// A manufacturer's sub-orders, optionally of one status.
    pub fn suborders_of_manufacturer(
        &self,
        tenant: TenantId,
        manufacturer_id: u64,
        query: &SubOrderListQuery,
    ) -> Result<Page<SubOrder>, EngineError> {
        Ok(list_suborders_of_manufacturer(
            &self.storage.read(tenant)?,
            manufacturer_id,
            query,
        )?)
    }

    /// An invoice.
    pub fn invoice(
        &self,
        tenant: TenantId,
        invoice_id: u64,
    ) -> Result<Option<Invoice>, EngineError> {
        Ok(self
            .storage
            .read(tenant)?
            .get(&crate::tables::INVOICES, &invoice_id)?)
    }

    /// A retailer's invoices by id.
    pub fn invoices_of_retailer(
        &self,
        tenant: TenantId,
        retailer_id: u64,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page<Invoice>, EngineError> {
        Ok(list_invoices_of_retailer(
            &self.storage.read(tenant)?,
            retailer_id,
            after,
            limit,
        )?)
    }

    /// An invoice's payments by id.
    pub fn payments_of_invoice(
        &self,
        tenant: TenantId,
        invoice_id: u64,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page<Payment>, EngineError> {
        Ok(list_payments_of_invoice(
            &self.storage.read(tenant)?,
            invoice_id,
            after,
            limit,
        )?)
    }

    /// A retailer's credit position at `at_ms` (open and overdue amounts against its limit);
    /// `None` for an unknown retailer.
    pub fn retailer_credit(
        &self,
        tenant: TenantId,
        retailer_id: u64,
        at_ms: u64,
    ) -> Result<Option<RetailerCredit>, EngineError> {
        Ok(retailer_credit(
            &self.storage.read(tenant)?,
            retailer_id,
            at_ms,
        )?)
    }
}
