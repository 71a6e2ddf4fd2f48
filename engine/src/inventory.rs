//! The inventory domain: warehouses, stock per (product, warehouse), the adjustment log, and the
//! reservations orders hold.
//!
//! Stock levels keep `reserved <= on_hand` (so `available = on_hand - reserved` is never
//! negative); every write of a level asserts it. Two actions change stock directly
//! ([`InventoryAction::CreateWarehouse`], [`InventoryAction::AdjustStock`]); the orders domain
//! changes it through [`reserve`], [`release`] and [`ship`] inside its own commands, so placing
//! an order and reserving its stock is one atomic transaction.
//!
//! Reservations are recorded per holder (a sub-order id), product and warehouse, so releasing
//! or shipping a sub-order touches exactly the units it reserved, in the warehouses it
//! reserved them in.
//!
//! ```no_run
//! # async fn example(engine: &mercato_engine::Engine) -> Result<(), mercato_engine::EngineError> {
//! use mercato_engine::{Actor, TenantId};
//! use mercato_engine::inventory::StockAdjustmentInput;
//! use mercato_engine::tables::AdjustmentReason;
//! let t = TenantId(1);
//! let wh = engine.create_warehouse(t, Actor::System, "Main", "MAIN").await?;
//! engine
//!     .adjust_stock(t, Actor::System, StockAdjustmentInput {
//!         warehouse_id: wh.id,
//!         product_id: 7,
//!         delta: 100,
//!         reason: AdjustmentReason::Receipt,
//!         note: None,
//!     })
//!     .await?;
//! assert_eq!(engine.product_stock(t, 7)?.available, 100);
//! # Ok(()) }
//! ```

use crate::command::{Applied, Ctx, Rejection, reject};
use crate::tables::{
    AdjustmentReason, AdjustmentRef, PRODUCTS, RESERVATIONS, Reservation, STOCK, STOCK_ADJUSTMENTS,
    STOCK_ADJUSTMENTS_BY_PRODUCT, StockAdjustment, StockLevel, WAREHOUSE_BY_CODE, WAREHOUSES,
    Warehouse, WarehouseRef,
};
use crate::{Action, Actor, CommandOutput, Engine, EngineError, TenantId};
use mercato_storage::{StorageError, TenantReads, TenantWrite};
use serde::{Deserialize, Serialize};

/// Upper bound on a warehouse name, in bytes.
pub const WAREHOUSE_NAME_BYTES_MAX: usize = 200;
/// Upper bound on a warehouse code, in bytes (`[A-Za-z0-9._-]`).
pub const WAREHOUSE_CODE_BYTES_MAX: usize = 32;
/// Upper bound on warehouses per tenant (a product's stock is one scan over at most this many).
pub const WAREHOUSES_MAX: u64 = 1_000;
/// Upper bound on one adjustment's `|delta|`.
pub const STOCK_DELTA_MAX: i64 = 1_000_000_000;
/// Upper bound on a level's `on_hand`.
pub const STOCK_ON_HAND_MAX: u64 = 1_000_000_000_000;
/// Upper bound on an adjustment note, in bytes.
pub const ADJUSTMENT_NOTE_BYTES_MAX: usize = 500;
/// Upper bound on rows of one list page.
pub const PAGE_LIMIT_MAX: usize = 500;

/// Sequence names of this domain.
const WAREHOUSE_SEQUENCE: &str = "warehouse";
const ADJUSTMENT_SEQUENCE: &str = "stock_adjustment";

/// Inventory commands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InventoryAction {
    /// Creates a warehouse with a unique code.
    CreateWarehouse { name: String, code: String },
    /// Changes a product's `on_hand` in a warehouse and records why.
    AdjustStock(StockAdjustmentInput),
}

/// A manual stock change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockAdjustmentInput {
    pub warehouse_id: u64,
    pub product_id: u64,
    /// Change of `on_hand`: positive adds units, negative removes them. Never zero; removing
    /// is refused if it would leave fewer units than are reserved.
    pub delta: i64,
    /// Any reason except [`AdjustmentReason::Shipment`], which only shipping records.
    pub reason: AdjustmentReason,
    pub note: Option<String>,
}

/// What an inventory command returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InventoryOutput {
    WarehouseCreated(Warehouse),
    StockAdjusted(StockAdjusted),
}

/// The result of an adjustment: the recorded entry and the level after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StockAdjusted {
    pub adjustment: StockAdjustment,
    pub level: StockLevel,
}

/// Lists share the catalog's page type: items in id order and the cursor to continue after.
pub use crate::catalog::Page;

/// One warehouse's stock of a product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WarehouseStock {
    pub warehouse_id: u64,
    pub on_hand: u64,
    pub reserved: u64,
    pub available: u64,
}

/// A product's stock across warehouses (warehouses that never held it are absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductStock {
    pub product_id: u64,
    pub on_hand: u64,
    pub reserved: u64,
    pub available: u64,
    /// By warehouse id.
    pub warehouses: Vec<WarehouseStock>,
}

/// Filters of the adjustment log; the log is listed oldest first.
#[derive(Clone, Debug, Default)]
pub struct AdjustmentQuery {
    /// Only this product's adjustments.
    pub product_id: Option<u64>,
    /// Continue after this adjustment id.
    pub after: Option<u64>,
    /// Page size, clamped to `1..=PAGE_LIMIT_MAX`.
    pub limit: usize,
}

pub(crate) fn apply(action: &InventoryAction, ctx: &mut Ctx<'_, '_>) -> Applied<InventoryOutput> {
    match action {
        InventoryAction::CreateWarehouse { name, code } => create_warehouse(ctx, name, code),
        InventoryAction::AdjustStock(input) => adjust_stock(ctx, input),
    }
}

fn invalid<T>(field: &str, reason: impl Into<String>) -> Applied<T> {
    reject(Rejection::InvalidField {
        field: field.to_string(),
        reason: reason.into(),
    })
}

fn create_warehouse(ctx: &mut Ctx<'_, '_>, name: &str, code: &str) -> Applied<InventoryOutput> {
    let name = name.trim();
    if name.is_empty() || name.len() > WAREHOUSE_NAME_BYTES_MAX {
        return invalid(
            "name",
            format!("must be 1..={WAREHOUSE_NAME_BYTES_MAX} bytes"),
        );
    }
    if code.is_empty()
        || code.len() > WAREHOUSE_CODE_BYTES_MAX
        || !code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return invalid(
            "code",
            format!("must be 1..={WAREHOUSE_CODE_BYTES_MAX} characters of [A-Za-z0-9._-]"),
        );
    }
    let code = code.to_string();
    if let Some(WarehouseRef(existing)) = ctx.tx.get(&WAREHOUSE_BY_CODE, &code)? {
        return reject(Rejection::Conflict {
            code: "warehouse_code_taken",
            detail: format!("warehouse code {code:?} is used by warehouse {existing}"),
        });
    }
    let id = ctx.next_id(WAREHOUSE_SEQUENCE)?;
    if id > WAREHOUSES_MAX {
        return reject(Rejection::Conflict {
            code: "warehouse_limit_reached",
            detail: format!("a tenant has at most {WAREHOUSES_MAX} warehouses"),
        });
    }
    let warehouse = Warehouse {
        id,
        name: name.to_string(),
        code: code.clone(),
        created_at_ms: ctx.at_ms,
    };
    ctx.tx.put(&WAREHOUSES, &id, &warehouse)?;
    ctx.tx.put(&WAREHOUSE_BY_CODE, &code, &WarehouseRef(id))?;
    ctx.audit("warehouse.create", format!("warehouse/{id}"));
    Ok(InventoryOutput::WarehouseCreated(warehouse))
}

fn adjust_stock(ctx: &mut Ctx<'_, '_>, input: &StockAdjustmentInput) -> Applied<InventoryOutput> {
    if input.delta == 0 || input.delta.unsigned_abs() > STOCK_DELTA_MAX.unsigned_abs() {
        return invalid(
            "delta",
            format!("must be non-zero and at most {STOCK_DELTA_MAX} in magnitude"),
        );
    }
    if input.reason == AdjustmentReason::Shipment {
        return invalid(
            "reason",
            "shipment adjustments are recorded by shipping only",
        );
    }
    let note = match input.note.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(note) if note.len() > ADJUSTMENT_NOTE_BYTES_MAX => {
            return invalid(
                "note",
                format!("must be at most {ADJUSTMENT_NOTE_BYTES_MAX} bytes"),
            );
        }
        Some(note) => Some(note.to_string()),
    };
    if ctx.tx.get(&WAREHOUSES, &input.warehouse_id)?.is_none() {
        return reject(Rejection::NotFound {
            resource: "warehouse",
            id: input.warehouse_id.to_string(),
        });
    }
    if ctx.tx.get(&PRODUCTS, &input.product_id)?.is_none() {
        return reject(Rejection::NotFound {
            resource: "product",
            id: input.product_id.to_string(),
        });
    }
    let key = (input.product_id, input.warehouse_id);
    let mut level = read_level(ctx.tx, &key)?;
    let on_hand = level.on_hand.checked_add_signed(input.delta);
    let on_hand = match on_hand {
        Some(on_hand) if on_hand > STOCK_ON_HAND_MAX => {
            return invalid(
                "delta",
                format!("on hand would exceed {STOCK_ON_HAND_MAX} units"),
            );
        }
        Some(on_hand) if on_hand >= level.reserved => on_hand,
        _ => {
            return reject(Rejection::Conflict {
                code: "insufficient_available_stock",
                detail: format!(
                    "removing {} units of product {} from warehouse {} would leave less than the {} reserved (on hand {}, available {})",
                    input.delta.unsigned_abs(),
                    input.product_id,
                    input.warehouse_id,
                    level.reserved,
                    level.on_hand,
                    level.available()
                ),
            });
        }
    };
    level.on_hand = on_hand;
    write_level(ctx.tx, &key, &level)?;
    let adjustment = record_adjustment(
        ctx,
        AdjustmentFacts {
            warehouse_id: input.warehouse_id,
            product_id: input.product_id,
            delta: input.delta,
            reason: input.reason,
            note,
            suborder_id: None,
            level,
        },
    )?;
    ctx.audit(
        "stock.adjust",
        format!("stock_adjustment/{}", adjustment.id),
    );
    Ok(InventoryOutput::StockAdjusted(StockAdjusted {
        adjustment,
        level,
    }))
}

struct AdjustmentFacts {
    warehouse_id: u64,
    product_id: u64,
    delta: i64,
    reason: AdjustmentReason,
    note: Option<String>,
    suborder_id: Option<u64>,
    level: StockLevel,
}

fn record_adjustment(
    ctx: &mut Ctx<'_, '_>,
    facts: AdjustmentFacts,
) -> Result<StockAdjustment, StorageError> {
    let id = ctx.next_id(ADJUSTMENT_SEQUENCE)?;
    let adjustment = StockAdjustment {
        id,
        warehouse_id: facts.warehouse_id,
        product_id: facts.product_id,
        delta: facts.delta,
        reason: facts.reason,
        note: facts.note,
        suborder_id: facts.suborder_id,
        on_hand_after: facts.level.on_hand,
        reserved_after: facts.level.reserved,
        at_ms: ctx.at_ms,
        actor: ctx.actor.clone(),
    };
    ctx.tx.put(&STOCK_ADJUSTMENTS, &id, &adjustment)?;
    ctx.tx.put(
        &STOCK_ADJUSTMENTS_BY_PRODUCT,
        &(facts.product_id, id),
        &AdjustmentRef(id),
    )?;
    Ok(adjustment)
}

/// Reads a level (absent is all zeros) and checks its invariant.
fn read_level(tx: &TenantWrite<'_>, key: &(u64, u64)) -> Result<StockLevel, StorageError> {
    let level = tx.get(&STOCK, key)?.unwrap_or_default();
    level.assert_valid();
    Ok(level)
}

/// Checks a level's invariant and writes it.
fn write_level(
    tx: &mut TenantWrite<'_>,
    key: &(u64, u64),
    level: &StockLevel,
) -> Result<(), StorageError> {
    level.assert_valid();
    tx.put(&STOCK, key, level)
}

/// Not enough available stock for a reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shortfall {
    pub available: u64,
}

/// Units of a product reserved (or released, or shipped) in one warehouse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReservedUnits {
    pub product_id: u64,
    pub warehouse_id: u64,
    pub qty: u64,
}

/// A product's levels, by warehouse id, each checked.
fn product_levels(
    read: &impl TenantReads,
    product_id: u64,
) -> Result<Vec<(u64, StockLevel)>, StorageError> {
    let rows = read.scan(&STOCK, &product_id, None, WAREHOUSES_MAX as usize)?;
    Ok(rows
        .into_iter()
        .map(|((_, warehouse_id), level)| {
            level.assert_valid();
            (warehouse_id, level)
        })
        .collect())
}

/// Reserves `qty` units of a product for `holder` (a sub-order id), taking them from the
/// warehouses with the most available units first (ties: lowest warehouse id), so that a
/// reservation is split over as few warehouses as possible and the choice is deterministic.
/// Writes nothing and returns the shortfall when the product's total available stock is
/// smaller than `qty`.
///
/// The holder must not hold units of this product yet (placement reserves each product of a
/// new sub-order once), so its reservation rows are written without reading them first.
pub(crate) fn reserve(
    ctx: &mut Ctx<'_, '_>,
    holder: u64,
    product_id: u64,
    qty: u64,
) -> Result<Result<Vec<ReservedUnits>, Shortfall>, StorageError> {
    let mut levels = product_levels(ctx.tx, product_id)?;
    let available: u64 = levels.iter().map(|(_, l)| l.available()).sum();
    if available < qty {
        return Ok(Err(Shortfall { available }));
    }
    levels.sort_by(|(wa, a), (wb, b)| b.available().cmp(&a.available()).then(wa.cmp(wb)));
    let mut remaining = qty;
    let mut taken = Vec::new();
    for (warehouse_id, mut level) in levels {
        if remaining == 0 {
            break;
        }
        let take = remaining.min(level.available());
        if take == 0 {
            continue;
        }
        remaining -= take;
        level.reserved += take;
        level.sold = level.sold.saturating_add(take);
        write_level(ctx.tx, &(product_id, warehouse_id), &level)?;
        let key = (holder, product_id, warehouse_id);
        debug_assert!(
            ctx.tx.get(&RESERVATIONS, &key)?.is_none(),
            "invariant: a holder reserves a product once"
        );
        ctx.tx.put(
            &RESERVATIONS,
            &key,
            &Reservation {
                qty: take,
                reserved_at_ms: ctx.at_ms,
            },
        )?;
        taken.push(ReservedUnits {
            product_id,
            warehouse_id,
            qty: take,
        });
    }
    assert_eq!(
        remaining, 0,
        "invariant: available stock covered the request"
    );
    Ok(Ok(taken))
}

/// Every reservation of a holder, in key order.
fn holder_reservations(
    read: &impl TenantReads,
    holder: u64,
) -> Result<Vec<ReservedUnits>, StorageError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let rows = read.scan(&RESERVATIONS, &holder, after.as_ref(), 1_000)?;
        let Some((last, _)) = rows.last() else {
            return Ok(out);
        };
        after = Some(*last);
        out.extend(
            rows.into_iter()
                .map(|((_, product_id, warehouse_id), r)| ReservedUnits {
                    product_id,
                    warehouse_id,
                    qty: r.qty,
                }),
        );
    }
}

/// The reservations a holder has, without changing anything.
pub fn reservations_of(
    read: &impl TenantReads,
    holder: u64,
) -> Result<Vec<ReservedUnits>, StorageError> {
    holder_reservations(read, holder)
}

/// Releases every unit `holder` reserved: the units become available again.
pub(crate) fn release(
    ctx: &mut Ctx<'_, '_>,
    holder: u64,
) -> Result<Vec<ReservedUnits>, StorageError> {
    let held = holder_reservations(ctx.tx, holder)?;
    for units in &held {
        let key = (units.product_id, units.warehouse_id);
        let mut level = read_level(ctx.tx, &key)?;
        assert!(
            level.reserved >= units.qty,
            "invariant: a level's reserved covers its reservations"
        );
        level.reserved -= units.qty;
        level.sold = level.sold.saturating_sub(units.qty);
        write_level(ctx.tx, &key, &level)?;
        ctx.tx.delete(
            &RESERVATIONS,
            &(holder, units.product_id, units.warehouse_id),
        )?;
    }
    Ok(held)
}

/// Ships every unit `holder` reserved: `on_hand` and `reserved` both drop by the reserved
/// quantity, and each (product, warehouse) records a `shipment` adjustment naming the
/// sub-order.
pub(crate) fn ship(ctx: &mut Ctx<'_, '_>, holder: u64) -> Result<Vec<ReservedUnits>, StorageError> {
    let held = holder_reservations(ctx.tx, holder)?;
    for units in &held {
        let key = (units.product_id, units.warehouse_id);
        let mut level = read_level(ctx.tx, &key)?;
        assert!(
            level.reserved >= units.qty && level.on_hand >= units.qty,
            "invariant: a level's reserved covers its reservations"
        );
        level.reserved -= units.qty;
        level.on_hand -= units.qty;
        write_level(ctx.tx, &key, &level)?;
        ctx.tx.delete(
            &RESERVATIONS,
            &(holder, units.product_id, units.warehouse_id),
        )?;
        // Invariant: qty <= on_hand <= STOCK_ON_HAND_MAX < i64::MAX.
        let delta = -i64::try_from(units.qty).expect("invariant: quantities fit in i64");
        record_adjustment(
            ctx,
            AdjustmentFacts {
                warehouse_id: units.warehouse_id,
                product_id: units.product_id,
                delta,
                reason: AdjustmentReason::Shipment,
                note: None,
                suborder_id: Some(holder),
                level,
            },
        )?;
    }
    Ok(held)
}

/// A product's stock over a snapshot.
pub fn product_stock(
    read: &impl TenantReads,
    product_id: u64,
) -> Result<ProductStock, StorageError> {
    let levels = product_levels(read, product_id)?;
    let warehouses: Vec<WarehouseStock> = levels
        .into_iter()
        .map(|(warehouse_id, l)| WarehouseStock {
            warehouse_id,
            on_hand: l.on_hand,
            reserved: l.reserved,
            available: l.available(),
        })
        .collect();
    Ok(ProductStock {
        product_id,
        on_hand: warehouses.iter().map(|w| w.on_hand).sum(),
        reserved: warehouses.iter().map(|w| w.reserved).sum(),
        available: warehouses.iter().map(|w| w.available).sum(),
        warehouses,
    })
}

fn clamp_limit(limit: usize) -> usize {
    limit.clamp(1, PAGE_LIMIT_MAX)
}

impl Engine {
    /// Creates a warehouse. `code` is unique per tenant.
    pub async fn create_warehouse(
        &self,
        tenant: TenantId,
        actor: Actor,
        name: &str,
        code: &str,
    ) -> Result<Warehouse, EngineError> {
        let action = Action::Inventory(InventoryAction::CreateWarehouse {
            name: name.to_string(),
            code: code.to_string(),
        });
        match self.run(tenant, actor, action).await? {
            CommandOutput::Inventory(InventoryOutput::WarehouseCreated(w)) => Ok(w),
            other => Err(EngineError::UnexpectedOutput(format!("{other:?}"))),
        }
    }

    /// Adds or removes units of a product in a warehouse, recording the reason.
    pub async fn adjust_stock(
        &self,
        tenant: TenantId,
        actor: Actor,
        input: StockAdjustmentInput,
    ) -> Result<StockAdjusted, EngineError> {
        let action = Action::Inventory(InventoryAction::AdjustStock(input));
        match self.run(tenant, actor, action).await? {
            CommandOutput::Inventory(InventoryOutput::StockAdjusted(a)) => Ok(a),
            other => Err(EngineError::UnexpectedOutput(format!("{other:?}"))),
        }
    }

    /// A warehouse by id.
    pub fn warehouse(&self, tenant: TenantId, id: u64) -> Result<Option<Warehouse>, EngineError> {
        Ok(self.storage.read(tenant)?.get(&WAREHOUSES, &id)?)
    }

    /// Warehouses by id.
    pub fn warehouses(
        &self,
        tenant: TenantId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page<Warehouse>, EngineError> {
        let limit = clamp_limit(limit);
        let rows = self
            .storage
            .read(tenant)?
            .scan(&WAREHOUSES, &(), after.as_ref(), limit)?;
        let next_after = (rows.len() == limit)
            .then(|| rows.last().map(|(k, _)| *k))
            .flatten();
        Ok(Page {
            items: rows.into_iter().map(|(_, w)| w).collect(),
            next_after,
        })
    }

    /// The units a sub-order holds, by product and warehouse (empty once shipped or
    /// cancelled): what a manufacturer picks, and where.
    pub fn suborder_reservations(
        &self,
        tenant: TenantId,
        suborder_id: u64,
    ) -> Result<Vec<ReservedUnits>, EngineError> {
        Ok(reservations_of(&self.storage.read(tenant)?, suborder_id)?)
    }

    /// A product's stock in every warehouse that holds or held it.
    pub fn product_stock(
        &self,
        tenant: TenantId,
        product_id: u64,
    ) -> Result<ProductStock, EngineError> {
        Ok(product_stock(&self.storage.read(tenant)?, product_id)?)
    }

    /// The adjustment log (oldest first), optionally of one product.
    pub fn stock_adjustments(
        &self,
        tenant: TenantId,
        query: &AdjustmentQuery,
    ) -> Result<Page<StockAdjustment>, EngineError> {
        let limit = clamp_limit(query.limit);
        let read = self.storage.read(tenant)?;
        let items: Vec<StockAdjustment> = match query.product_id {
            None => read
                .scan(&STOCK_ADJUSTMENTS, &(), query.after.as_ref(), limit)?
                .into_iter()
                .map(|(_, a)| a)
                .collect(),
            Some(product_id) => {
                let after = query.after.map(|a| (product_id, a));
                let refs = read.scan(
                    &STOCK_ADJUSTMENTS_BY_PRODUCT,
                    &product_id,
                    after.as_ref(),
                    limit,
                )?;
                let mut items = Vec::with_capacity(refs.len());
                for (_, AdjustmentRef(id)) in refs {
                    // Invariant: the index and the log are written together.
                    if let Some(a) = read.get(&STOCK_ADJUSTMENTS, &id)? {
                        items.push(a);
                    }
                }
                items
            }
        };
        let next_after = if items.len() == limit {
            items.last().map(|a| a.id)
        } else {
            None
        };
        Ok(Page { items, next_after })
    }
}
