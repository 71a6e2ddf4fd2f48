//! Orders tables (ids 70..=99): orders, sub-orders (one per manufacturer), their list indexes,
//! idempotency keys, invoices, payments and each retailer's open balance.
//!
//! Record kinds use the id of their primary table. Index rows carry the catalog's
//! [`IndexMark`](crate::tables::IndexMark) (kind 58).
//!
//! Status codes inside index keys are [`OrderStatus::code`] and [`SubOrderStatus::code`]; they
//! are part of the on-disk format.
//!
//! Invariants (kept by every orders command):
//! - an order's `total` is the sum of its sub-orders' `subtotal`s; a sub-order's `subtotal` is
//!   the sum of its lines' `line_total`s; every amount is in the order's `currency`;
//! - a sub-order in `awaiting_approval`, `placed` or `confirmed` holds reservations for exactly
//!   its lines' quantities; any other sub-order holds none;
//! - every status index row matches the record's current status;
//! - [`RETAILER_BALANCES`] holds, per retailer, the sum of [`Invoice::outstanding`] over its open
//!   invoices, and [`OPEN_INVOICES_BY_DUE`] lists exactly its open invoices.

use crate::command::Actor;
use crate::money::{Currency, Money};
use crate::tables::{Address, IndexMark};
use mercato_storage::{Record, TableDef};
use serde::{Deserialize, Serialize};

/// Orders by id.
pub const ORDERS: TableDef<u64, Order> = TableDef::new(70, "orders");
/// Sub-orders by id.
pub const SUBORDERS: TableDef<u64, SubOrder> = TableDef::new(71, "suborders");
// Table 72 (`orders_by_retailer`, `(retailer_id, order_id)`) is retired: a retailer's orders
// of every status are the merge of its status ranges in `ORDERS_BY_RETAILER_STATUS`, which
// saves placement a scattered index row. Never reuse the id (old data directories may hold
// such rows; nothing reads them).
/// Index: `(retailer_id, status code, order_id)` for every order; all of a retailer's orders
/// are the merge of its status ranges.
pub const ORDERS_BY_RETAILER_STATUS: TableDef<(u64, u8, u64), IndexMark> =
    TableDef::new(73, "orders_by_retailer_status");
/// Index: `(status code, order_id)` for every order (the tenant's filtered list).
pub const ORDERS_BY_STATUS: TableDef<(u8, u64), IndexMark> = TableDef::new(74, "orders_by_status");
// Table 75 (`suborders_by_manufacturer`, `(manufacturer_id, suborder_id)`) is retired for the
// same reason: five scattered index rows fewer for a five-manufacturer order. Never reuse it.
/// Index: `(manufacturer_id, status code, suborder_id)` for every sub-order; all of a
/// manufacturer's sub-orders are the merge of its status ranges.
pub const SUBORDERS_BY_MANUFACTURER_STATUS: TableDef<(u64, u8, u64), IndexMark> =
    TableDef::new(76, "suborders_by_manufacturer_status");
/// Idempotency keys: `(buyer_user_id, key)` -> the order the key placed.
pub const IDEMPOTENCY_KEYS: TableDef<(u64, String), IdempotencyRecord> =
    TableDef::new(80, "idempotency_keys");
/// Index: `(created_at_ms, buyer_user_id, key)` for every idempotency key, oldest first, so
/// expired keys are found without a full scan.
pub const IDEMPOTENCY_EXPIRY: TableDef<(u64, u64, String), IndexMark> =
    TableDef::new(81, "idempotency_expiry");
/// Invoices by id.
pub const INVOICES: TableDef<u64, Invoice> = TableDef::new(85, "invoices");
/// Index: `(retailer_id, invoice_id)` for every invoice.
pub const INVOICES_BY_RETAILER: TableDef<(u64, u64), IndexMark> =
    TableDef::new(86, "invoices_by_retailer");
/// Index: `(retailer_id, due_at_ms, invoice_id)` for every open invoice, earliest due first
/// (the overdue ones of a retailer are a prefix of its rows).
pub const OPEN_INVOICES_BY_DUE: TableDef<(u64, u64, u64), IndexMark> =
    TableDef::new(87, "open_invoices_by_due");
/// Payments by id.
pub const PAYMENTS: TableDef<u64, Payment> = TableDef::new(88, "payments");
/// Index: `(invoice_id, payment_id)` for every payment.
pub const PAYMENTS_BY_INVOICE: TableDef<(u64, u64), IndexMark> =
    TableDef::new(89, "payments_by_invoice");
/// Per retailer: the outstanding amount of its open invoices (what counts against its credit
/// limit), kept by every command that creates, credits or pays an invoice.
pub const RETAILER_BALANCES: TableDef<u64, RetailerBalance> =
    TableDef::new(90, "retailer_balances");

/// Where an order stands as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderStatus {
    /// Above the retailer's approval threshold: stock is reserved, no invoice yet.
    AwaitingApproval,
    /// Accepted; its sub-orders move on their own.
    Placed,
    /// Every sub-order is delivered or cancelled, at least one delivered.
    Completed,
    /// Every sub-order is cancelled (or the approver rejected the order).
    Cancelled,
}

impl OrderStatus {
    /// Every status, in code order.
    pub const ALL: [OrderStatus; 4] = [
        OrderStatus::AwaitingApproval,
        OrderStatus::Placed,
        OrderStatus::Completed,
        OrderStatus::Cancelled,
    ];

    /// The stable code used in index keys.
    pub fn code(self) -> u8 {
        match self {
            OrderStatus::AwaitingApproval => 0,
            OrderStatus::Placed => 1,
            OrderStatus::Completed => 2,
            OrderStatus::Cancelled => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::AwaitingApproval => "awaiting_approval",
            OrderStatus::Placed => "placed",
            OrderStatus::Completed => "completed",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<OrderStatus> {
        match text {
            "awaiting_approval" => Some(OrderStatus::AwaitingApproval),
            "placed" => Some(OrderStatus::Placed),
            "completed" => Some(OrderStatus::Completed),
            "cancelled" => Some(OrderStatus::Cancelled),
            _ => None,
        }
    }
}

/// Where one manufacturer's part of an order stands.
///
/// ```text
/// awaiting_approval -> placed | cancelled            (approve / reject)
/// placed            -> confirmed | cancelled
/// confirmed         -> shipped | cancelled
/// shipped           -> delivered
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SubOrderStatus {
    AwaitingApproval,
    Placed,
    Confirmed,
    Shipped,
    Delivered,
    Cancelled,
}

impl SubOrderStatus {
    /// Every status, in code order.
    pub const ALL: [SubOrderStatus; 6] = [
        SubOrderStatus::AwaitingApproval,
        SubOrderStatus::Placed,
        SubOrderStatus::Confirmed,
        SubOrderStatus::Shipped,
        SubOrderStatus::Delivered,
        SubOrderStatus::Cancelled,
    ];

    /// The stable code used in index keys.
    pub fn code(self) -> u8 {
        match self {
            SubOrderStatus::AwaitingApproval => 0,
            SubOrderStatus::Placed => 1,
            SubOrderStatus::Confirmed => 2,
            SubOrderStatus::Shipped => 3,
            SubOrderStatus::Delivered => 4,
            SubOrderStatus::Cancelled => 5,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SubOrderStatus::AwaitingApproval => "awaiting_approval",
            SubOrderStatus::Placed => "placed",
            SubOrderStatus::Confirmed => "confirmed",
            SubOrderStatus::Shipped => "shipped",
            SubOrderStatus::Delivered => "delivered",
            SubOrderStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<SubOrderStatus> {
        match text {
            "awaiting_approval" => Some(SubOrderStatus::AwaitingApproval),
            "placed" => Some(SubOrderStatus::Placed),
            "confirmed" => Some(SubOrderStatus::Confirmed),
            "shipped" => Some(SubOrderStatus::Shipped),
            "delivered" => Some(SubOrderStatus::Delivered),
            "cancelled" => Some(SubOrderStatus::Cancelled),
            _ => None,
        }
    }

    /// True while the sub-order holds reserved stock.
    pub fn holds_stock(self) -> bool {
        matches!(
            self,
            SubOrderStatus::AwaitingApproval | SubOrderStatus::Placed | SubOrderStatus::Confirmed
        )
    }
}

/// The approver's decision on an order that needed approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalDecision {
    pub approved: bool,
    pub by_user_id: u64,
    pub at_ms: u64,
    pub note: Option<String>,
}

/// A retailer's order. Lines live in its sub-orders.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: u64,
    pub retailer_id: u64,
    /// The buyer who placed it.
    pub buyer_user_id: u64,
    pub status: OrderStatus,
    pub po_number: Option<String>,
    /// A copy of the retailer's address at placement (later edits do not change orders).
    pub shipping_address: Address,
    pub currency: Currency,
    /// Sum of the sub-orders' subtotals at placement (cancellations do not change it; the
    /// invoice records credits).
    pub total: Money,
    /// Sub-order ids, by manufacturer id.
    pub suborder_ids: Vec<u64>,
    pub line_count: u32,
    /// The order's invoice, once it is placed.
    pub invoice_id: Option<u64>,
    pub idempotency_key: Option<String>,
    /// The order this one repeats, for a reorder.
    pub reorder_of: Option<u64>,
    pub approval_required: bool,
    pub approval: Option<ApprovalDecision>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

impl Record for Order {
    const KIND: u16 = 70;
    const VERSION: u16 = 1;
}

/// One line as ordered: the product at the moment of ordering and its resolved price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// Index of the line in the placing request (0-based).
    pub line_no: u32,
    pub product_id: u64,
    pub sku: String,
    pub name: String,
    pub qty: u32,
    pub unit_price: Money,
    pub line_total: Money,
}

/// One status change of a sub-order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub status: SubOrderStatus,
    pub at_ms: u64,
    pub actor: Actor,
}

/// One manufacturer's part of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubOrder {
    pub id: u64,
    pub order_id: u64,
    pub manufacturer_id: u64,
    pub retailer_id: u64,
    pub status: SubOrderStatus,
    /// In request order.
    pub lines: Vec<OrderLine>,
    pub subtotal: Money,
    pub tracking: Option<String>,
    pub cancel_reason: Option<String>,
    /// Every status it has been in, oldest first (at most one entry per status).
    pub history: Vec<StatusChange>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

impl Record for SubOrder {
    const KIND: u16 = 71;
    const VERSION: u16 = 1;
}

/// What an idempotency key placed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// SHA-256 of the request body that used the key first.
    pub request_hash: [u8; 32],
    pub order_id: u64,
    pub created_at_ms: u64,
}

impl Record for IdempotencyRecord {
    const KIND: u16 = 80;
    const VERSION: u16 = 1;
}

/// Whether an invoice still expects money.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InvoiceStatus {
    /// Something is outstanding.
    Open,
    /// Nothing is outstanding and something was paid.
    Paid,
    /// Everything was credited (all sub-orders cancelled) before any payment.
    Void,
}

impl InvoiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Open => "open",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Void => "void",
        }
    }
}

/// The invoice of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    pub id: u64,
    pub order_id: u64,
    pub retailer_id: u64,
    /// The order's total.
    pub amount: Money,
    /// Subtotals of cancelled sub-orders.
    pub credited: Money,
    /// Sum of the recorded payments.
    pub paid: Money,
    pub issued_at_ms: u64,
    /// Issue time plus the retailer's net days (0 for prepaid: due on issue).
    pub due_at_ms: u64,
    pub status: InvoiceStatus,
    pub updated_at_ms: u64,
}

impl Invoice {
    /// `amount - credited - paid`; negative when a cancellation credited more than was left to
    /// pay (a refund is due).
    pub fn balance(&self) -> i64 {
        self.amount
            .minor
            .saturating_sub(self.credited.minor)
            .saturating_sub(self.paid.minor)
    }

    /// What is still to pay: the balance, never below zero.
    pub fn outstanding(&self) -> Money {
        Money::new(self.balance().max(0), self.amount.currency)
    }

    /// What is owed back to the retailer (credits above what was left to pay).
    pub fn refund_due(&self) -> Money {
        Money::new(self.balance().saturating_neg().max(0), self.amount.currency)
    }

    /// Open and past its due date at `at_ms`.
    pub fn is_overdue(&self, at_ms: u64) -> bool {
        self.status == InvoiceStatus::Open && self.due_at_ms < at_ms
    }
}

impl Record for Invoice {
    const KIND: u16 = 85;
    const VERSION: u16 = 1;
}

/// Money received against an invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub id: u64,
    pub invoice_id: u64,
    pub amount: Money,
    /// The payer's or bank's reference.
    pub reference: String,
    pub recorded_at_ms: u64,
    pub recorded_by: Actor,
}

impl Record for Payment {
    const KIND: u16 = 88;
    const VERSION: u16 = 1;
}

/// A retailer's outstanding amount over its open invoices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetailerBalance {
    pub open: Money,
}

impl Record for RetailerBalance {
    const KIND: u16 = 90;
    const VERSION: u16 = 1;
}
