//! Inventory tables (ids 60..=69): warehouses, stock per (product, warehouse), the adjustment
//! log and the reservations that orders hold.
//!
//! Invariant of every [`StockLevel`]: `reserved <= on_hand`, so `available = on_hand - reserved`
//! is never negative. The sum of the [`Reservation`]s of a (product, warehouse) equals its
//! `reserved`.

use crate::command::Actor;
use mercato_storage::{EnvelopeError, Record, TableDef};
use serde::{Deserialize, Serialize};

/// Warehouses by id.
pub const WAREHOUSES: TableDef<u64, Warehouse> = TableDef::new(60, "warehouses");
/// Unique warehouse codes: code -> warehouse id.
pub const WAREHOUSE_BY_CODE: TableDef<String, WarehouseRef> =
    TableDef::new(61, "warehouse_by_code");
/// Stock by (product id, warehouse id): one prefix scan gives a product's stock everywhere.
pub const STOCK: TableDef<(u64, u64), StockLevel> = TableDef::new(62, "stock");
/// The adjustment log by adjustment id (time-ordered).
pub const STOCK_ADJUSTMENTS: TableDef<u64, StockAdjustment> =
    TableDef::new(63, "stock_adjustments");
/// Reservations by (holder id, product id, warehouse id). The holder is a sub-order id: a
/// sub-order's reservations are one prefix scan, so release and ship are exact.
pub const RESERVATIONS: TableDef<(u64, u64, u64), Reservation> = TableDef::new(64, "reservations");
/// The adjustment log of one product: (product id, adjustment id) -> adjustment id marker.
pub const STOCK_ADJUSTMENTS_BY_PRODUCT: TableDef<(u64, u64), AdjustmentRef> =
    TableDef::new(65, "stock_adjustments_by_product");

/// A place stock is kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warehouse {
    pub id: u64,
    pub name: String,
    /// Short unique code (e.g. `AMS-1`), unique per tenant.
    pub code: String,
    pub created_at_ms: u64,
}

impl Record for Warehouse {
    const KIND: u16 = 60;
    const VERSION: u16 = 1;
}

/// The id a unique warehouse code points to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarehouseRef(pub u64);

impl Record for WarehouseRef {
    const KIND: u16 = 61;
    const VERSION: u16 = 1;
}

/// Units of one product in one warehouse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLevel {
    /// Units physically in the warehouse.
    pub on_hand: u64,
    /// Units promised to orders and not yet shipped (`reserved <= on_hand`).
    pub reserved: u64,
    /// Units ordered from this warehouse on orders that were not cancelled or rejected: grows
    /// when an order reserves units, shrinks when a reservation is released. The sum over
    /// warehouses is the product's units sold (search's best-selling sort). Added in version 2.
    pub sold: u64,
}

/// [`StockLevel`] as version 1 wrote it (no `sold`).
#[derive(Deserialize)]
struct StockLevelV1 {
    on_hand: u64,
    reserved: u64,
}

impl StockLevel {
    /// Units that can still be promised.
    pub fn available(&self) -> u64 {
        self.on_hand.saturating_sub(self.reserved)
    }

    /// Panics if the level breaks its invariant: checked before every write and after every
    /// read of a level, so corruption or a bug stops the command instead of overselling.
    pub fn assert_valid(&self) {
        assert!(
            self.reserved <= self.on_hand,
            "invariant: reserved ({}) <= on_hand ({})",
            self.reserved,
            self.on_hand
        );
    }
}

impl Record for StockLevel {
    const KIND: u16 = 62;
    const VERSION: u16 = 2;

    fn upgrade(version: u16, payload: &[u8]) -> Result<Self, EnvelopeError> {
        match version {
            1 => {
                let v1: StockLevelV1 =
                    postcard::from_bytes(payload).map_err(|e| EnvelopeError::Payload {
                        kind: Self::KIND,
                        version,
                        reason: e.to_string(),
                    })?;
                Ok(StockLevel {
                    on_hand: v1.on_hand,
                    reserved: v1.reserved,
                    sold: 0,
                })
            }
            _ => Err(EnvelopeError::UnsupportedVersion {
                kind: Self::KIND,
                version,
                current: Self::VERSION,
            }),
        }
    }
}

/// Why stock changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AdjustmentReason {
    /// Goods received from the manufacturer.
    Receipt,
    /// A stock count found a difference.
    Count,
    /// Units damaged and written off.
    Damage,
    /// Units lost or stolen.
    Loss,
    /// Units returned by a customer and put back.
    Return,
    /// A correction of an earlier mistake.
    Correction,
    /// Units shipped for a sub-order. Recorded by the engine only, never by an adjustment.
    Shipment,
}

impl AdjustmentReason {
    /// Stable lowercase name (`receipt`, `count`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            AdjustmentReason::Receipt => "receipt",
            AdjustmentReason::Count => "count",
            AdjustmentReason::Damage => "damage",
            AdjustmentReason::Loss => "loss",
            AdjustmentReason::Return => "return",
            AdjustmentReason::Correction => "correction",
            AdjustmentReason::Shipment => "shipment",
        }
    }
}

/// One change of a stock level's `on_hand`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockAdjustment {
    pub id: u64,
    pub warehouse_id: u64,
    pub product_id: u64,
    /// Change of `on_hand` (negative for write-offs and shipments).
    pub delta: i64,
    pub reason: AdjustmentReason,
    pub note: Option<String>,
    /// For shipments: the sub-order shipped.
    pub suborder_id: Option<u64>,
    /// The level right after the change.
    pub on_hand_after: u64,
    pub reserved_after: u64,
    pub at_ms: u64,
    pub actor: Actor,
}

impl Record for StockAdjustment {
    const KIND: u16 = 63;
    const VERSION: u16 = 1;
}

/// Units of a product held in one warehouse for one holder (a sub-order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub qty: u64,
    pub reserved_at_ms: u64,
}

impl Record for Reservation {
    const KIND: u16 = 64;
    const VERSION: u16 = 1;
}

/// Index row pointing at an adjustment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdjustmentRef(pub u64);

impl Record for AdjustmentRef {
    const KIND: u16 = 65;
    const VERSION: u16 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use mercato_storage::envelope;

    /// A stock level as version 1 of the record wrote it.
    #[derive(Serialize, Deserialize)]
    struct WrittenByVersion1 {
        on_hand: u64,
        reserved: u64,
    }

    impl Record for WrittenByVersion1 {
        const KIND: u16 = StockLevel::KIND;
        const VERSION: u16 = 1;
    }

    #[test]
    fn a_version_1_stock_level_reads_with_nothing_sold() {
        let bytes = envelope::encode(&WrittenByVersion1 {
            on_hand: 12,
            reserved: 5,
        });
        let level: StockLevel = envelope::decode(&bytes).expect("a version-1 row decodes");
        assert_eq!(
            level,
            StockLevel {
                on_hand: 12,
                reserved: 5,
                sold: 0
            }
        );
        let current = StockLevel {
            on_hand: 3,
            reserved: 1,
            sold: 9,
        };
        assert_eq!(
            envelope::decode::<StockLevel>(&envelope::encode(&current))
                .expect("a version-2 row decodes"),
            current
        );
    }
}
