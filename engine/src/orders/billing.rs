//! Invoices, payments, credits and the credit-limit check.

use super::{
    OVERDUE_SCAN_MAX, OrdersOutput, PAYMENT_REFERENCE_BYTES_MAX, PaymentRecorded, invalid,
    not_found,
};
use crate::command::{Applied, Ctx, Rejection, reject};
use crate::money::{Currency, Money};
use crate::tables::{
    INVOICES, INVOICES_BY_RETAILER, IndexMark, Invoice, InvoiceStatus, OPEN_INVOICES_BY_DUE, Order,
    PAYMENTS, PAYMENTS_BY_INVOICE, Payment, PaymentTerms, RETAILER_BALANCES, Retailer,
    RetailerBalance,
};
use mercato_storage::{ApplyError, StorageError, TenantReads};

/// Milliseconds in a day (due dates are issue time + net days).
pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// The status an invoice's amounts make.
fn derive_status(invoice: &Invoice) -> InvoiceStatus {
    if invoice.balance() > 0 {
        InvoiceStatus::Open
    } else if invoice.paid.minor == 0 && invoice.credited.minor > 0 {
        InvoiceStatus::Void
    } else {
        InvoiceStatus::Paid
    }
}

/// What of an invoice counts against the credit limit: its outstanding amount while open.
fn exposure(invoice: &Invoice) -> i64 {
    if invoice.status == InvoiceStatus::Open {
        invoice.outstanding().minor
    } else {
        0
    }
}

/// A retailer's outstanding amount over its open invoices.
pub(crate) fn open_balance(
    read: &impl TenantReads,
    retailer_id: u64,
    currency: Currency,
) -> Result<Money, StorageError> {
    Ok(read
        .get(&RETAILER_BALANCES, &retailer_id)?
        .map_or(Money::zero(currency), |b| b.open))
}

/// The outstanding amount of a retailer's invoices that are past due at `at_ms` (examining at
/// most [`OVERDUE_SCAN_MAX`] open invoices, earliest due first).
pub(crate) fn overdue_amount(
    read: &impl TenantReads,
    retailer_id: u64,
    currency: Currency,
    at_ms: u64,
) -> Result<Money, StorageError> {
    let rows = read.scan(&OPEN_INVOICES_BY_DUE, &retailer_id, None, OVERDUE_SCAN_MAX)?;
    let mut overdue = 0i64;
    for ((_, due_at_ms, invoice_id), _) in rows {
        if due_at_ms >= at_ms {
            break;
        }
        if let Some(invoice) = read.get(&INVOICES, &invoice_id)? {
            overdue = overdue.saturating_add(exposure(&invoice));
        }
    }
    Ok(Money::new(overdue, currency))
}

/// Refuses an order total that would take a net-terms retailer's open invoices above its
/// credit limit. Prepaid retailers have no credit to check.
pub(super) fn check_credit(ctx: &Ctx<'_, '_>, retailer: &Retailer, total: Money) -> Applied<()> {
    if retailer.payment_terms == PaymentTerms::Prepaid {
        return Ok(());
    }
    let open = open_balance(ctx.tx, retailer.id, total.currency)?;
    let exposure = open.minor.checked_add(total.minor);
    if exposure.is_some_and(|e| e <= retailer.credit_limit.minor) {
        return Ok(());
    }
    let overdue = overdue_amount(ctx.tx, retailer.id, total.currency, ctx.at_ms)?;
    reject(Rejection::Conflict {
        code: "credit_limit_exceeded",
        detail: format!(
            "order total {total} plus open invoices {open} (of which {overdue} overdue) exceeds the credit limit {} of retailer {}",
            retailer.credit_limit, retailer.id
        ),
    })
}

/// Writes an invoice (`before`: as stored, `None` for a new one) and keeps the open-invoice
/// index and the retailer's balance in step.
fn save_invoice(
    ctx: &mut Ctx<'_, '_>,
    before: Option<&Invoice>,
    after: &Invoice,
) -> Result<(), StorageError> {
    ctx.tx.put(&INVOICES, &after.id, after)?;
    let open_key = (after.retailer_id, after.due_at_ms, after.id);
    let was_open = before.is_some_and(|b| b.status == InvoiceStatus::Open);
    let is_open = after.status == InvoiceStatus::Open;
    match before {
        None => ctx.tx.put(
            &INVOICES_BY_RETAILER,
            &(after.retailer_id, after.id),
            &IndexMark,
        )?,
        Some(_) if was_open && !is_open => ctx.tx.delete(&OPEN_INVOICES_BY_DUE, &open_key)?,
        Some(_) => {}
    }
    if is_open && !was_open {
        ctx.tx.put(&OPEN_INVOICES_BY_DUE, &open_key, &IndexMark)?;
    }
    let delta = exposure(after) - before.map_or(0, exposure);
    if delta != 0 {
        let currency = after.amount.currency;
        let open = open_balance(ctx.tx, after.retailer_id, currency)?;
        let open = Money::new(open.minor + delta, currency);
        assert!(
            open.minor >= 0,
            "invariant: a retailer's open balance is the sum of outstanding amounts"
        );
        ctx.tx.put(
            &RETAILER_BALANCES,
            &after.retailer_id,
            &RetailerBalance { open },
        )?;
    }
    Ok(())
}

/// Issues the invoice of a placed order: due after the retailer's net days (on issue for
/// prepaid retailers).
pub(super) fn issue_invoice(
    ctx: &mut Ctx<'_, '_>,
    order: &mut Order,
    retailer: &Retailer,
) -> Result<Invoice, StorageError> {
    let id = ctx.next_id("invoice")?;
    let currency = order.total.currency;
    let due_at_ms = ctx
        .at_ms
        .saturating_add(u64::from(retailer.payment_terms.net_days()) * DAY_MS);
    let mut invoice = Invoice {
        id,
        order_id: order.id,
        retailer_id: order.retailer_id,
        amount: order.total,
        credited: Money::zero(currency),
        paid: Money::zero(currency),
        issued_at_ms: ctx.at_ms,
        due_at_ms,
        status: InvoiceStatus::Open,
        updated_at_ms: ctx.at_ms,
    };
    invoice.status = derive_status(&invoice);
    save_invoice(ctx, None, &invoice)?;
    order.invoice_id = Some(id);
    Ok(invoice)
}

/// Credits a cancelled sub-order's subtotal to the order's invoice.
pub(super) fn credit_invoice(
    ctx: &mut Ctx<'_, '_>,
    invoice_id: u64,
    amount: Money,
) -> Applied<Invoice> {
    let Some(before) = ctx.tx.get(&INVOICES, &invoice_id)? else {
        return reject(not_found("invoice", invoice_id));
    };
    let mut after = before.clone();
    after.credited = after.credited.checked_add(amount).ok_or_else(|| {
        ApplyError::Rejected(invalid("amount", "credit does not fit the invoice"))
    })?;
    after.status = derive_status(&after);
    after.updated_at_ms = ctx.at_ms;
    save_invoice(ctx, Some(&before), &after)?;
    ctx.audit("invoice.credit", format!("invoice/{invoice_id}"));
    Ok(after)
}

pub(super) fn apply_record_payment(
    ctx: &mut Ctx<'_, '_>,
    invoice_id: u64,
    amount: Money,
    reference: &str,
) -> Applied<OrdersOutput> {
    let reference = reference.trim();
    if reference.is_empty()
        || reference.len() > PAYMENT_REFERENCE_BYTES_MAX
        || reference.chars().any(char::is_control)
    {
        return reject(invalid(
            "reference",
            format!("must be 1..={PAYMENT_REFERENCE_BYTES_MAX} bytes without control characters"),
        ));
    }
    if amount.minor <= 0 {
        return reject(invalid("amount", "must be positive"));
    }
    let Some(before) = ctx.tx.get(&INVOICES, &invoice_id)? else {
        return reject(not_found("invoice", invoice_id));
    };
    if amount.currency != before.amount.currency {
        return reject(invalid(
            "amount",
            format!("must be in the invoice currency {}", before.amount.currency),
        ));
    }
    if before.status != InvoiceStatus::Open {
        return reject(Rejection::Conflict {
            code: "invoice_not_open",
            detail: format!("invoice {invoice_id} is {}", before.status.as_str()),
        });
    }
    let outstanding = before.outstanding();
    if amount.minor > outstanding.minor {
        return reject(Rejection::Conflict {
            code: "overpayment",
            detail: format!(
                "payment {amount} exceeds the {outstanding} outstanding on invoice {invoice_id}"
            ),
        });
    }
    let mut after = before.clone();
    after.paid = Money::new(after.paid.minor + amount.minor, amount.currency);
    after.status = derive_status(&after);
    after.updated_at_ms = ctx.at_ms;
    save_invoice(ctx, Some(&before), &after)?;
    let id = ctx.next_id("payment")?;
    let payment = Payment {
        id,
        invoice_id,
        amount,
        reference: reference.to_string(),
        recorded_at_ms: ctx.at_ms,
        recorded_by: ctx.actor.clone(),
    };
    ctx.tx.put(&PAYMENTS, &id, &payment)?;
    ctx.tx
        .put(&PAYMENTS_BY_INVOICE, &(invoice_id, id), &IndexMark)?;
    ctx.audit("payment.record", format!("payment/{id}"));
    if after.status == InvoiceStatus::Paid {
        ctx.audit("invoice.paid", format!("invoice/{invoice_id}"));
    }
    Ok(OrdersOutput::PaymentRecorded(Box::new(PaymentRecorded {
        invoice: after,
        payment,
    })))
}
