//! Sub-order transitions, approval decisions, and the writes that keep the status indexes in
//! step with the records.

use super::{
    ApprovalInput, NOTE_BYTES_MAX, OrdersOutput, Party, SubOrderChange, TRACKING_BYTES_MAX,
    billing, not_found, optional_text, reads,
};
use crate::command::{Applied, Ctx, Rejection, reject};
use crate::inventory;
use crate::tables::{
    ApprovalDecision, INVOICES, IndexMark, ORDERS, ORDERS_BY_RETAILER_STATUS, ORDERS_BY_STATUS,
    Order, OrderStatus, RETAILERS, SUBORDERS, SUBORDERS_BY_MANUFACTURER_STATUS, StatusChange,
    SubOrder, SubOrderStatus,
};
use mercato_storage::{StorageError, TenantReads};

/// The sub-order state machine: every allowed `(from, to)`.
pub fn transition_allowed(from: SubOrderStatus, to: SubOrderStatus) -> bool {
    use SubOrderStatus::*;
    matches!(
        (from, to),
        (AwaitingApproval, Placed)
            | (AwaitingApproval, Cancelled)
            | (Placed, Confirmed)
            | (Placed, Cancelled)
            | (Confirmed, Shipped)
            | (Confirmed, Cancelled)
            | (Shipped, Delivered)
    )
}

fn illegal(what: &str, id: u64, from: &str, to: &str) -> Rejection {
    Rejection::Conflict {
        code: "illegal_transition",
        detail: format!("{what} {id} cannot go from {from} to {to}"),
    }
}

/// Moves a sub-order to `to`, refusing transitions the state machine does not allow.
fn transition(ctx: &Ctx<'_, '_>, sub: &mut SubOrder, to: SubOrderStatus) -> Applied<()> {
    if !transition_allowed(sub.status, to) {
        return reject(illegal(
            "sub-order",
            sub.id,
            sub.status.as_str(),
            to.as_str(),
        ));
    }
    sub.status = to;
    sub.updated_at_ms = ctx.at_ms;
    sub.history.push(StatusChange {
        status: to,
        at_ms: ctx.at_ms,
        actor: ctx.actor.clone(),
    });
    Ok(())
}

/// Writes a sub-order and moves its status index row (`previous`: its status as stored, or
/// `None` for a new one).
pub(super) fn save_suborder(
    ctx: &mut Ctx<'_, '_>,
    previous: Option<SubOrderStatus>,
    sub: &SubOrder,
) -> Result<(), StorageError> {
    ctx.tx.put(&SUBORDERS, &sub.id, sub)?;
    match previous {
        None => {}
        Some(previous) if previous != sub.status => {
            ctx.tx.delete(
                &SUBORDERS_BY_MANUFACTURER_STATUS,
                &(sub.manufacturer_id, previous.code(), sub.id),
            )?;
        }
        Some(_) => return Ok(()),
    }
    ctx.tx.put(
        &SUBORDERS_BY_MANUFACTURER_STATUS,
        &(sub.manufacturer_id, sub.status.code(), sub.id),
        &IndexMark,
    )
}

/// Writes an order and moves its status index rows.
pub(super) fn save_order(
    ctx: &mut Ctx<'_, '_>,
    previous: Option<OrderStatus>,
    order: &Order,
) -> Result<(), StorageError> {
    ctx.tx.put(&ORDERS, &order.id, order)?;
    match previous {
        None => {}
        Some(previous) if previous != order.status => {
            ctx.tx.delete(
                &ORDERS_BY_RETAILER_STATUS,
                &(order.retailer_id, previous.code(), order.id),
            )?;
            ctx.tx
                .delete(&ORDERS_BY_STATUS, &(previous.code(), order.id))?;
        }
        Some(_) => return Ok(()),
    }
    ctx.tx.put(
        &ORDERS_BY_RETAILER_STATUS,
        &(order.retailer_id, order.status.code(), order.id),
        &IndexMark,
    )?;
    ctx.tx.put(
        &ORDERS_BY_STATUS,
        &(order.status.code(), order.id),
        &IndexMark,
    )
}

/// An order's status as its sub-orders make it.
pub fn derive_order_status(statuses: impl IntoIterator<Item = SubOrderStatus>) -> OrderStatus {
    let mut any = false;
    let mut all_cancelled = true;
    let mut all_finished = true;
    for status in statuses {
        any = true;
        match status {
            SubOrderStatus::AwaitingApproval => return OrderStatus::AwaitingApproval,
            SubOrderStatus::Cancelled => {}
            SubOrderStatus::Delivered => all_cancelled = false,
            _ => {
                all_cancelled = false;
                all_finished = false;
            }
        }
    }
    if !any {
        OrderStatus::Placed
    } else if all_cancelled {
        OrderStatus::Cancelled
    } else if all_finished {
        OrderStatus::Completed
    } else {
        OrderStatus::Placed
    }
}

/// Re-derives an order's status after one of its sub-orders changed and writes it.
fn refresh_order(ctx: &mut Ctx<'_, '_>, order_id: u64) -> Applied<Order> {
    let Some(mut order) = ctx.tx.get(&ORDERS, &order_id)? else {
        return reject(not_found("order", order_id));
    };
    let mut statuses = Vec::with_capacity(order.suborder_ids.len());
    for id in &order.suborder_ids {
        if let Some(sub) = ctx.tx.get(&SUBORDERS, id)? {
            statuses.push(sub.status);
        }
    }
    let previous = order.status;
    order.status = derive_order_status(statuses);
    order.updated_at_ms = ctx.at_ms;
    save_order(ctx, Some(previous), &order)?;
    Ok(order)
}

/// A sub-order the party may act on; another party's sub-order is reported as not found.
fn load_suborder(ctx: &Ctx<'_, '_>, suborder_id: u64, party: Party) -> Applied<SubOrder> {
    let sub = ctx.tx.get(&SUBORDERS, &suborder_id)?;
    match sub {
        Some(sub)
            if match party {
                Party::Manufacturer(m) => sub.manufacturer_id == m,
                Party::Retailer(r) => sub.retailer_id == r,
            } =>
        {
            Ok(sub)
        }
        _ => reject(not_found("suborder", suborder_id)),
    }
}

fn changed(ctx: &mut Ctx<'_, '_>, sub: SubOrder) -> Applied<OrdersOutput> {
    let order = refresh_order(ctx, sub.order_id)?;
    let invoice = match order.invoice_id {
        Some(id) => ctx.tx.get(&INVOICES, &id)?,
        None => None,
    };
    Ok(OrdersOutput::SubOrderChanged(Box::new(SubOrderChange {
        order,
        suborder: sub,
        invoice,
    })))
}

fn ordered_units(sub: &SubOrder) -> u64 {
    sub.lines.iter().map(|l| u64::from(l.qty)).sum()
}

/// Releases a sub-order's reserved stock, checking it held exactly its lines.
fn release_all(ctx: &mut Ctx<'_, '_>, sub: &SubOrder) -> Result<(), StorageError> {
    let released = inventory::release(ctx, sub.id)?;
    assert_eq!(
        released.iter().map(|u| u.qty).sum::<u64>(),
        ordered_units(sub),
        "invariant: a sub-order holding stock holds reservations for exactly its lines"
    );
    Ok(())
}

pub(super) fn apply_confirm(
    ctx: &mut Ctx<'_, '_>,
    suborder_id: u64,
    manufacturer_id: u64,
) -> Applied<OrdersOutput> {
    let mut sub = load_suborder(ctx, suborder_id, Party::Manufacturer(manufacturer_id))?;
    let previous = sub.status;
    transition(ctx, &mut sub, SubOrderStatus::Confirmed)?;
    save_suborder(ctx, Some(previous), &sub)?;
    ctx.audit("suborder.confirm", format!("suborder/{suborder_id}"));
    changed(ctx, sub)
}

pub(super) fn apply_ship(
    ctx: &mut Ctx<'_, '_>,
    suborder_id: u64,
    manufacturer_id: u64,
    tracking: Option<&str>,
) -> Applied<OrdersOutput> {
    let tracking = optional_text("tracking", tracking, TRACKING_BYTES_MAX)?;
    let mut sub = load_suborder(ctx, suborder_id, Party::Manufacturer(manufacturer_id))?;
    let previous = sub.status;
    transition(ctx, &mut sub, SubOrderStatus::Shipped)?;
    let shipped = inventory::ship(ctx, sub.id)?;
    assert_eq!(
        shipped.iter().map(|u| u.qty).sum::<u64>(),
        ordered_units(&sub),
        "invariant: a confirmed sub-order holds reservations for exactly its lines"
    );
    sub.tracking = tracking;
    save_suborder(ctx, Some(previous), &sub)?;
    ctx.audit("suborder.ship", format!("suborder/{suborder_id}"));
    changed(ctx, sub)
}

pub(super) fn apply_deliver(
    ctx: &mut Ctx<'_, '_>,
    suborder_id: u64,
    party: Party,
) -> Applied<OrdersOutput> {
    let mut sub = load_suborder(ctx, suborder_id, party)?;
    let previous = sub.status;
    transition(ctx, &mut sub, SubOrderStatus::Delivered)?;
    save_suborder(ctx, Some(previous), &sub)?;
    ctx.audit("suborder.deliver", format!("suborder/{suborder_id}"));
    changed(ctx, sub)
}

pub(super) fn apply_cancel(
    ctx: &mut Ctx<'_, '_>,
    suborder_id: u64,
    party: Party,
    reason: Option<&str>,
) -> Applied<OrdersOutput> {
    let reason = optional_text("reason", reason, NOTE_BYTES_MAX)?;
    let mut sub = load_suborder(ctx, suborder_id, party)?;
    // An order awaiting approval is cancelled by rejecting it, as a whole.
    if sub.status == SubOrderStatus::AwaitingApproval {
        return reject(illegal(
            "sub-order",
            sub.id,
            sub.status.as_str(),
            SubOrderStatus::Cancelled.as_str(),
        ));
    }
    let previous = sub.status;
    transition(ctx, &mut sub, SubOrderStatus::Cancelled)?;
    release_all(ctx, &sub)?;
    sub.cancel_reason = reason;
    save_suborder(ctx, Some(previous), &sub)?;
    ctx.audit("suborder.cancel", format!("suborder/{suborder_id}"));
    let invoice_id = ctx
        .tx
        .get(&ORDERS, &sub.order_id)?
        .and_then(|o| o.invoice_id);
    if let Some(invoice_id) = invoice_id {
        billing::credit_invoice(ctx, invoice_id, sub.subtotal)?;
    }
    changed(ctx, sub)
}

/// Approves (`approve`) or rejects an order awaiting approval.
pub(super) fn apply_decide(
    ctx: &mut Ctx<'_, '_>,
    input: &ApprovalInput,
    approve: bool,
) -> Applied<OrdersOutput> {
    let note = optional_text("note", input.note.as_deref(), NOTE_BYTES_MAX)?;
    let Some(mut order) = ctx
        .tx
        .get(&ORDERS, &input.order_id)?
        .filter(|o| o.retailer_id == input.retailer_id)
    else {
        return reject(not_found("order", input.order_id));
    };
    let to = if approve {
        OrderStatus::Placed
    } else {
        OrderStatus::Cancelled
    };
    if order.status != OrderStatus::AwaitingApproval {
        return reject(illegal(
            "order",
            order.id,
            order.status.as_str(),
            to.as_str(),
        ));
    }
    let Some(retailer) = ctx.tx.get(&RETAILERS, &order.retailer_id)? else {
        return reject(not_found("retailer", order.retailer_id));
    };
    if approve {
        billing::check_credit(ctx, &retailer, order.total)?;
    }
    let sub_to = if approve {
        SubOrderStatus::Placed
    } else {
        SubOrderStatus::Cancelled
    };
    let mut suborders = Vec::with_capacity(order.suborder_ids.len());
    for id in order.suborder_ids.clone() {
        let Some(mut sub) = ctx.tx.get(&SUBORDERS, &id)? else {
            return reject(not_found("suborder", id));
        };
        let previous = sub.status;
        transition(ctx, &mut sub, sub_to)?;
        if !approve {
            release_all(ctx, &sub)?;
            sub.cancel_reason = note.clone();
        }
        save_suborder(ctx, Some(previous), &sub)?;
        suborders.push(sub);
    }
    order.approval = Some(ApprovalDecision {
        approved: approve,
        by_user_id: input.approver_user_id,
        at_ms: ctx.at_ms,
        note,
    });
    order.status = to;
    order.updated_at_ms = ctx.at_ms;
    let invoice = if approve {
        Some(billing::issue_invoice(ctx, &mut order, &retailer)?)
    } else {
        None
    };
    save_order(ctx, Some(OrderStatus::AwaitingApproval), &order)?;
    let action = if approve {
        "order.approve"
    } else {
        "order.reject"
    };
    ctx.audit(action, format!("order/{}", order.id));
    if let Some(invoice) = &invoice {
        ctx.audit("invoice.issue", format!("invoice/{}", invoice.id));
    }
    Ok(OrdersOutput::Decided(Box::new(reads::OrderView {
        order,
        suborders,
        invoice,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_machine_allows_only_the_documented_transitions() {
        use SubOrderStatus::*;
        let all = [
            AwaitingApproval,
            Placed,
            Confirmed,
            Shipped,
            Delivered,
            Cancelled,
        ];
        let allowed: Vec<(SubOrderStatus, SubOrderStatus)> = all
            .iter()
            .flat_map(|&a| all.iter().map(move |&b| (a, b)))
            .filter(|&(a, b)| transition_allowed(a, b))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (AwaitingApproval, Placed),
                (AwaitingApproval, Cancelled),
                (Placed, Confirmed),
                (Placed, Cancelled),
                (Confirmed, Shipped),
                (Confirmed, Cancelled),
                (Shipped, Delivered),
            ]
        );
    }

    #[test]
    fn order_status_follows_its_suborders() {
        use SubOrderStatus::*;
        assert_eq!(
            derive_order_status([Placed, Confirmed]),
            OrderStatus::Placed
        );
        assert_eq!(
            derive_order_status([AwaitingApproval, AwaitingApproval]),
            OrderStatus::AwaitingApproval
        );
        assert_eq!(
            derive_order_status([Cancelled, Cancelled]),
            OrderStatus::Cancelled
        );
        assert_eq!(
            derive_order_status([Delivered, Cancelled]),
            OrderStatus::Completed
        );
        assert_eq!(
            derive_order_status([Delivered, Shipped]),
            OrderStatus::Placed
        );
        assert_eq!(derive_order_status([Delivered]), OrderStatus::Completed);
    }
}
