//! Placing an order and reordering: one command that validates, prices and reserves every
//! line, splits the order per manufacturer and issues the invoice.

use super::{
    IDEMPOTENCY_CLEANUP_EVERY, IDEMPOTENCY_CLEANUP_PER_COMMAND, IDEMPOTENCY_KEY_RETENTION_MS,
    NOTE_BYTES_MAX, ORDER_LINE_QTY_MAX, ORDER_LINES_MAX, OrderLineInput, OrdersOutput,
    PO_NUMBER_BYTES_MAX, PlaceOrder, PlacedOrder, ProductRef, Reorder, billing, idempotency_key,
    invalid, key_reused, lifecycle, not_found, optional_text, reads,
};
use crate::command::{Applied, Ctx, LineProblem, Rejection, reject};
use crate::inventory;
use crate::money::Money;
use crate::tables::{
    Address, CATALOG_SETTINGS, IDEMPOTENCY_EXPIRY, IDEMPOTENCY_KEYS, IdRef, IdempotencyRecord,
    IndexMark, MANUFACTURERS, Order, OrderLine, OrderStatus, PRODUCT_BY_SKU, PRODUCTS,
    ProductStatus, RETAILERS, Retailer, SEQUENCES, Sequence, StatusChange, SubOrder,
    SubOrderStatus, VerificationStatus,
};
use mercato_storage::{ApplyError, StorageError, TenantReads};
use std::collections::BTreeMap;

/// Upper bound on a SKU looked up by a quick-order line, in bytes (SKUs are ASCII, so longer
/// cannot exist).
const SKU_LOOKUP_BYTES_MAX: usize = crate::catalog::SKU_CHARS_MAX;

/// A placement, from [`PlaceOrder`] or [`Reorder`].
struct Placement<'a> {
    retailer_id: u64,
    buyer_user_id: u64,
    lines: &'a [OrderLineInput],
    po_number: Option<&'a str>,
    shipping_address_label: Option<&'a str>,
    idempotency_key: Option<&'a str>,
    request_hash: [u8; 32],
    reorder_of: Option<u64>,
}

pub(super) fn apply_place(ctx: &mut Ctx<'_, '_>, input: &PlaceOrder) -> Applied<OrdersOutput> {
    place(
        ctx,
        Placement {
            retailer_id: input.retailer_id,
            buyer_user_id: input.buyer_user_id,
            lines: &input.lines,
            po_number: input.po_number.as_deref(),
            shipping_address_label: input.shipping_address_label.as_deref(),
            idempotency_key: input.idempotency_key.as_deref(),
            request_hash: input.request_hash,
            reorder_of: None,
        },
    )
}

pub(super) fn apply_reorder(ctx: &mut Ctx<'_, '_>, input: &Reorder) -> Applied<OrdersOutput> {
    let Some(source) = reads::order_view(ctx.tx, input.source_order_id)?
        .filter(|v| v.order.retailer_id == input.retailer_id)
    else {
        return reject(not_found("order", input.source_order_id));
    };
    let mut lines: Vec<(u32, OrderLineInput)> = source
        .suborders
        .iter()
        .flat_map(|s| s.lines.iter())
        .map(|l| {
            (
                l.line_no,
                OrderLineInput {
                    product: ProductRef::Id(l.product_id),
                    qty: l.qty,
                },
            )
        })
        .collect();
    lines.sort_by_key(|(line_no, _)| *line_no);
    let lines: Vec<OrderLineInput> = lines.into_iter().map(|(_, l)| l).collect();
    place(
        ctx,
        Placement {
            retailer_id: input.retailer_id,
            buyer_user_id: input.buyer_user_id,
            lines: &lines,
            po_number: input.po_number.as_deref(),
            shipping_address_label: input.shipping_address_label.as_deref(),
            idempotency_key: input.idempotency_key.as_deref(),
            request_hash: input.request_hash,
            reorder_of: Some(input.source_order_id),
        },
    )
}

/// A line whose product resolved and whose quantity is in range: it takes part in the stock
/// check even when another of its checks failed, so that the rejection names every problem.
struct CheckedLine {
    line_no: u32,
    product_id: u64,
    manufacturer_id: u64,
    sku: String,
    name: String,
    qty: u32,
    /// `None` when pricing failed (the line has a problem already).
    price: Option<(Money, Money)>,
}

fn place(ctx: &mut Ctx<'_, '_>, p: Placement<'_>) -> Applied<OrdersOutput> {
    if p.lines.is_empty() || p.lines.len() > ORDER_LINES_MAX {
        return reject(invalid(
            "lines",
            format!("must have 1..={ORDER_LINES_MAX} lines"),
        ));
    }
    let po_number = optional_text("po_number", p.po_number, PO_NUMBER_BYTES_MAX)?;
    let key = p.idempotency_key.map(idempotency_key).transpose()?;

    // Idempotency first: a replay must not depend on the catalog or stock of today.
    let mut expired_key_created_at = None;
    if let Some(key) = &key {
        let stored = ctx
            .tx
            .get(&IDEMPOTENCY_KEYS, &(p.buyer_user_id, key.clone()))?;
        if let Some(record) = stored {
            if record
                .created_at_ms
                .saturating_add(IDEMPOTENCY_KEY_RETENTION_MS)
                > ctx.at_ms
            {
                if record.request_hash != p.request_hash {
                    return reject(key_reused(key));
                }
                let Some(order) = reads::order_view(ctx.tx, record.order_id)? else {
                    return reject(not_found("order", record.order_id));
                };
                return Ok(OrdersOutput::Placed(Box::new(PlacedOrder {
                    order,
                    replayed: true,
                })));
            }
            expired_key_created_at = Some(record.created_at_ms);
        }
    }

    let Some(retailer) = ctx.tx.get(&RETAILERS, &p.retailer_id)? else {
        return reject(not_found("retailer", p.retailer_id));
    };
    let shipping_address = shipping_address(&retailer, p.shipping_address_label)?;
    let settings = ctx.tx.get(&CATALOG_SETTINGS, &())?.unwrap_or_default();
    let currency = settings.currency;

    // Pass 1: every check that does not need stock, collecting every problem.
    let mut problems: Vec<LineProblem> = Vec::new();
    let mut checked: Vec<CheckedLine> = Vec::with_capacity(p.lines.len());
    let mut first_line_of_product: BTreeMap<u64, usize> = BTreeMap::new();
    let mut verifications: BTreeMap<u64, Option<VerificationStatus>> = BTreeMap::new();
    for (i, line) in p.lines.iter().enumerate() {
        let mut problem = |code: &'static str, detail: String| {
            problems.push(LineProblem {
                line: i,
                code,
                detail,
            })
        };
        let Some(product_id) = resolve_product_id(ctx.tx, &line.product)? else {
            problem("unknown_product", describe(&line.product));
            continue;
        };
        let Some(product) = ctx.tx.get(&PRODUCTS, &product_id)? else {
            problem("unknown_product", describe(&line.product));
            continue;
        };
        if let Some(first) = first_line_of_product.get(&product.id) {
            problem(
                "duplicate_product",
                format!(
                    "product {} is already ordered on line {first}; order it once",
                    product.id
                ),
            );
            continue;
        }
        first_line_of_product.insert(product.id, i);
        if product.status != ProductStatus::Active {
            problem(
                "product_not_active",
                format!("product {} is {}", product.id, product.status.as_str()),
            );
        }
        let verification = match verifications.get(&product.manufacturer_id) {
            Some(v) => *v,
            None => {
                let v = ctx
                    .tx
                    .get(&MANUFACTURERS, &product.manufacturer_id)?
                    .map(|m| m.verification);
                verifications.insert(product.manufacturer_id, v);
                v
            }
        };
        let may_sell = match verification {
            None | Some(VerificationStatus::Suspended) => false,
            Some(VerificationStatus::Verified) => true,
            Some(_) => !settings.require_verified_manufacturer_to_publish,
        };
        if !may_sell {
            problem(
                "manufacturer_not_verified",
                format!(
                    "manufacturer {} of product {} may not sell (verification: {})",
                    product.manufacturer_id,
                    product.id,
                    verification.map_or("unknown".to_string(), |v| format!("{v:?}").to_lowercase())
                ),
            );
        }
        if !(1..=ORDER_LINE_QTY_MAX).contains(&line.qty) {
            problem(
                "invalid_quantity",
                format!("quantity must be 1..={ORDER_LINE_QTY_MAX}"),
            );
            continue;
        }
        if line.qty < product.min_order_qty {
            problem(
                "below_minimum_quantity",
                format!(
                    "quantity {} is below the minimum order quantity {} of product {}",
                    line.qty, product.min_order_qty, product.id
                ),
            );
        }
        let case_pack = product.case_pack.max(1);
        if line.qty % case_pack != 0 {
            problem(
                "not_case_pack_multiple",
                format!(
                    "quantity {} is not a multiple of the case pack {case_pack} of product {}",
                    line.qty, product.id
                ),
            );
        }
        let unit_price = crate::catalog::price_for_group(
            ctx.tx,
            &product,
            retailer.customer_group_id,
            line.qty,
        )?;
        let price = if unit_price.currency != currency {
            problem(
                "currency_mismatch",
                format!(
                    "product {} is priced in {}, the order is in {currency}",
                    product.id, unit_price.currency
                ),
            );
            None
        } else if unit_price.is_negative() {
            problem(
                "invalid_price",
                format!("product {} has a negative price", product.id),
            );
            None
        } else {
            match unit_price.checked_mul_qty(line.qty) {
                Some(total) => Some((unit_price, total)),
                None => {
                    problem(
                        "amount_too_large",
                        format!("the line total of product {} overflows", product.id),
                    );
                    None
                }
            }
        };
        checked.push(CheckedLine {
            line_no: i as u32,
            product_id: product.id,
            manufacturer_id: product.manufacturer_id,
            sku: product.sku,
            name: product.name,
            qty: line.qty,
            price,
        });
    }

    // Pass 2: split per manufacturer (in manufacturer id order: deterministic ids) and reserve.
    let mut by_manufacturer: BTreeMap<u64, Vec<CheckedLine>> = BTreeMap::new();
    for line in checked {
        by_manufacturer
            .entry(line.manufacturer_id)
            .or_default()
            .push(line);
    }
    let order_id = ctx.next_id("order")?;
    if order_id % IDEMPOTENCY_CLEANUP_EVERY == 0 {
        remove_expired_keys(ctx)?;
    }
    let first_suborder_id = next_ids(ctx, "suborder", by_manufacturer.len() as u64)?;
    let mut groups: Vec<(u64, u64, Vec<CheckedLine>)> = Vec::with_capacity(by_manufacturer.len());
    for (suborder_id, (manufacturer_id, lines)) in (first_suborder_id..).zip(by_manufacturer) {
        // A new sub-order id, and each product once (duplicates were refused above): the
        // holder has no reservation of any of these products yet.
        for line in &lines {
            if let Err(short) =
                inventory::reserve(ctx, suborder_id, line.product_id, u64::from(line.qty))?
            {
                problems.push(LineProblem {
                    line: line.line_no as usize,
                    code: "insufficient_stock",
                    detail: format!(
                        "{} units of product {} requested, {} available",
                        line.qty, line.product_id, short.available
                    ),
                });
            }
        }
        groups.push((manufacturer_id, suborder_id, lines));
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.line);
        return reject(Rejection::OrderLines { problems });
    }

    // Every line is valid and reserved: build the records.
    let approval_required_total = |total: Money| {
        retailer
            .approval_threshold
            .is_some_and(|threshold| total.minor > threshold.minor)
    };
    let mut total = Money::zero(currency);
    let mut suborders = Vec::with_capacity(groups.len());
    let mut line_count = 0u32;
    for (manufacturer_id, suborder_id, lines) in groups {
        let mut subtotal = Money::zero(currency);
        let mut order_lines = Vec::with_capacity(lines.len());
        for line in lines {
            // Invariant: lines without a price were reported as problems above.
            let (unit_price, line_total) = line.price.expect("invariant: valid lines are priced");
            subtotal = subtotal.checked_add(line_total).ok_or_else(|| {
                ApplyError::Rejected(invalid("lines", "the order total is too large"))
            })?;
            order_lines.push(OrderLine {
                line_no: line.line_no,
                product_id: line.product_id,
                sku: line.sku,
                name: line.name,
                qty: line.qty,
                unit_price,
                line_total,
            });
        }
        line_count += order_lines.len() as u32;
        total = total.checked_add(subtotal).ok_or_else(|| {
            ApplyError::Rejected(invalid("lines", "the order total is too large"))
        })?;
        suborders.push(SubOrder {
            id: suborder_id,
            order_id,
            manufacturer_id,
            retailer_id: retailer.id,
            status: SubOrderStatus::Placed,
            lines: order_lines,
            subtotal,
            tracking: None,
            cancel_reason: None,
            history: Vec::new(),
            created_at_ms: ctx.at_ms,
            updated_at_ms: ctx.at_ms,
        });
    }

    billing::check_credit(ctx, &retailer, total)?;
    let approval_required = approval_required_total(total);
    let (order_status, suborder_status) = if approval_required {
        (
            OrderStatus::AwaitingApproval,
            SubOrderStatus::AwaitingApproval,
        )
    } else {
        (OrderStatus::Placed, SubOrderStatus::Placed)
    };
    for suborder in &mut suborders {
        suborder.status = suborder_status;
        suborder.history.push(StatusChange {
            status: suborder_status,
            at_ms: ctx.at_ms,
            actor: ctx.actor.clone(),
        });
        lifecycle::save_suborder(ctx, None, suborder)?;
    }
    let mut order = Order {
        id: order_id,
        retailer_id: retailer.id,
        buyer_user_id: p.buyer_user_id,
        status: order_status,
        po_number,
        shipping_address,
        currency,
        total,
        suborder_ids: suborders.iter().map(|s| s.id).collect(),
        line_count,
        invoice_id: None,
        idempotency_key: key.clone(),
        reorder_of: p.reorder_of,
        approval_required,
        approval: None,
        created_at_ms: ctx.at_ms,
        updated_at_ms: ctx.at_ms,
    };
    let invoice = if approval_required {
        None
    } else {
        Some(billing::issue_invoice(ctx, &mut order, &retailer)?)
    };
    lifecycle::save_order(ctx, None, &order)?;

    if let Some(key) = &key {
        if let Some(created_at_ms) = expired_key_created_at {
            ctx.tx.delete(
                &IDEMPOTENCY_EXPIRY,
                &(created_at_ms, p.buyer_user_id, key.clone()),
            )?;
        }
        ctx.tx.put(
            &IDEMPOTENCY_KEYS,
            &(p.buyer_user_id, key.clone()),
            &IdempotencyRecord {
                request_hash: p.request_hash,
                order_id,
                created_at_ms: ctx.at_ms,
            },
        )?;
        ctx.tx.put(
            &IDEMPOTENCY_EXPIRY,
            &(ctx.at_ms, p.buyer_user_id, key.clone()),
            &IndexMark,
        )?;
    }
    let action = if p.reorder_of.is_some() {
        "order.reorder"
    } else {
        "order.place"
    };
    ctx.audit(action, format!("order/{order_id}"));
    if let Some(invoice) = &invoice {
        ctx.audit("invoice.issue", format!("invoice/{}", invoice.id));
    }
    Ok(OrdersOutput::Placed(Box::new(PlacedOrder {
        order: reads::OrderView {
            order,
            suborders,
            invoice,
        },
        replayed: false,
    })))
}

/// The first of `count` consecutive ids of a per-tenant sequence, in one read and one write
/// (the ids [`Ctx::next_id`] would give `count` times in a row).
fn next_ids(ctx: &mut Ctx<'_, '_>, sequence: &str, count: u64) -> Result<u64, StorageError> {
    let key = sequence.to_string();
    let last = ctx.tx.get(&SEQUENCES, &key)?.map_or(0, |s| s.0);
    ctx.tx.put(&SEQUENCES, &key, &Sequence(last + count))?;
    Ok(last + 1)
}

/// Deletes up to [`IDEMPOTENCY_CLEANUP_PER_COMMAND`] keys past their retention, oldest first.
fn remove_expired_keys(ctx: &mut Ctx<'_, '_>) -> Result<(), StorageError> {
    // Almost always the oldest key is still live: look at it alone before fetching a batch.
    let oldest = ctx.tx.scan(&IDEMPOTENCY_EXPIRY, &(), None, 1)?;
    let expired = |created_at_ms: u64| {
        created_at_ms.saturating_add(IDEMPOTENCY_KEY_RETENTION_MS) <= ctx.at_ms
    };
    if !oldest
        .first()
        .is_some_and(|((created_at_ms, _, _), _)| expired(*created_at_ms))
    {
        return Ok(());
    }
    let rows = ctx.tx.scan(
        &IDEMPOTENCY_EXPIRY,
        &(),
        None,
        IDEMPOTENCY_CLEANUP_PER_COMMAND,
    )?;
    for ((created_at_ms, buyer_user_id, key), _) in rows {
        if created_at_ms.saturating_add(IDEMPOTENCY_KEY_RETENTION_MS) > ctx.at_ms {
            break;
        }
        let key_row = (buyer_user_id, key);
        // Only the generation this expiry row belongs to (a reused key has a newer one).
        if ctx
            .tx
            .get(&IDEMPOTENCY_KEYS, &key_row)?
            .is_some_and(|r| r.created_at_ms == created_at_ms)
        {
            ctx.tx.delete(&IDEMPOTENCY_KEYS, &key_row)?;
        }
        let (buyer_user_id, key) = key_row;
        ctx.tx
            .delete(&IDEMPOTENCY_EXPIRY, &(created_at_ms, buyer_user_id, key))?;
    }
    Ok(())
}

fn resolve_product_id(
    read: &impl TenantReads,
    product: &ProductRef,
) -> Result<Option<u64>, StorageError> {
    match product {
        ProductRef::Id(id) => Ok(Some(*id)),
        ProductRef::Sku {
            manufacturer_id,
            sku,
        } => {
            if sku.is_empty() || sku.len() > SKU_LOOKUP_BYTES_MAX {
                return Ok(None);
            }
            Ok(read
                .get(&PRODUCT_BY_SKU, &(*manufacturer_id, sku.clone()))?
                .map(|IdRef(id)| id))
        }
    }
}

fn describe(product: &ProductRef) -> String {
    match product {
        ProductRef::Id(id) => format!("no product {id}"),
        ProductRef::Sku {
            manufacturer_id,
            sku,
        } => format!(
            "manufacturer {manufacturer_id} has no product with SKU {:?}",
            sku.chars().take(SKU_LOOKUP_BYTES_MAX).collect::<String>()
        ),
    }
}

/// The retailer's address with this label, or its first address.
fn shipping_address(retailer: &Retailer, label: Option<&str>) -> Applied<Address> {
    let label = optional_text("shipping_address_label", label, NOTE_BYTES_MAX)?;
    let found = match &label {
        Some(label) => retailer.addresses.iter().find(|a| a.label == *label),
        None => retailer.addresses.first(),
    };
    match (found, label) {
        (Some(address), _) => Ok(address.clone()),
        (None, Some(label)) => reject(invalid(
            "shipping_address_label",
            format!("retailer {} has no address labelled {label:?}", retailer.id),
        )),
        (None, None) => reject(invalid(
            "shipping_address_label",
            format!("retailer {} has no shipping address", retailer.id),
        )),
    }
}
