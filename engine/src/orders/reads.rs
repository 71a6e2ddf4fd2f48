//! Reads over a snapshot (or a command's write handle): an order with its parts, and the
//! cursor-paginated lists.

use super::{PAGE_LIMIT_MAX, billing};
use crate::catalog::{IdOrder, Page};
use crate::money::Money;
use crate::tables::{
    INVOICES, INVOICES_BY_RETAILER, Invoice, ORDERS, ORDERS_BY_RETAILER_STATUS, ORDERS_BY_STATUS,
    Order, OrderStatus, PAYMENTS, PAYMENTS_BY_INVOICE, Payment, RETAILERS, SUBORDERS,
    SUBORDERS_BY_MANUFACTURER_STATUS, SubOrder, SubOrderStatus,
};
use mercato_storage::{KeyCodec, Record, StorageError, TableDef, TenantReads};

/// An order with its sub-orders (by manufacturer id) and its invoice (once placed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderView {
    pub order: Order,
    pub suborders: Vec<SubOrder>,
    pub invoice: Option<Invoice>,
}

/// Filters of an order list.
#[derive(Clone, Debug, Default)]
pub struct OrderListQuery {
    pub status: Option<OrderStatus>,
    /// Continue after this order id.
    pub after: Option<u64>,
    /// Page size, clamped to `1..=PAGE_LIMIT_MAX`.
    pub limit: usize,
}

/// Filters of a sub-order list.
#[derive(Clone, Debug, Default)]
pub struct SubOrderListQuery {
    pub status: Option<SubOrderStatus>,
    /// Continue after this sub-order id.
    pub after: Option<u64>,
    /// Page size, clamped to `1..=PAGE_LIMIT_MAX`.
    pub limit: usize,
}

/// A retailer's credit position at a point in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetailerCredit {
    pub credit_limit: Money,
    /// Outstanding amount of its open invoices (overdue ones included).
    pub open: Money,
    /// The part of `open` past due.
    pub overdue: Money,
    /// `credit_limit - open`, never below zero.
    pub available: Money,
}

/// An order with its sub-orders and invoice.
pub fn order_view(
    read: &impl TenantReads,
    order_id: u64,
) -> Result<Option<OrderView>, StorageError> {
    let Some(order) = read.get(&ORDERS, &order_id)? else {
        return Ok(None);
    };
    let mut suborders = Vec::with_capacity(order.suborder_ids.len());
    for id in &order.suborder_ids {
        // Invariant: sub-orders are written with their order and never deleted.
        if let Some(sub) = read.get(&SUBORDERS, id)? {
            suborders.push(sub);
        }
    }
    let invoice = match order.invoice_id {
        Some(id) => read.get(&INVOICES, &id)?,
        None => None,
    };
    Ok(Some(OrderView {
        order,
        suborders,
        invoice,
    }))
}

fn clamp(limit: usize) -> usize {
    limit.clamp(1, PAGE_LIMIT_MAX)
}

/// Where a page starts (the index key of the cursor), how long it is, and which way it goes.
struct PageAt<K> {
    after: Option<K>,
    limit: usize,
    order: IdOrder,
}

/// Reads one page of ids from an index whose keys end with the id, then the records.
fn page_from_index<K, P, V>(
    read: &impl TenantReads,
    index: &TableDef<K, crate::tables::IndexMark>,
    prefix: &P,
    at: PageAt<K>,
    id_of: impl Fn(&K) -> u64,
    records: &TableDef<u64, V>,
) -> Result<Page<V>, StorageError>
where
    K: KeyCodec,
    P: KeyCodec,
    V: Record,
{
    let PageAt {
        after,
        limit,
        order,
    } = at;
    let limit = clamp(limit);
    let rows = match order {
        IdOrder::Ascending => read.scan(index, prefix, after.as_ref(), limit)?,
        IdOrder::Descending => read.scan_desc(index, prefix, after.as_ref(), limit)?,
    };
    let next_after = if rows.len() == limit {
        rows.last().map(|(k, _)| id_of(k))
    } else {
        None
    };
    let mut items = Vec::with_capacity(rows.len());
    for (key, _) in rows {
        // Invariant: index rows are written with their record.
        if let Some(record) = read.get(records, &id_of(&key))? {
            items.push(record);
        }
    }
    Ok(Page { items, next_after })
}

/// One page of ids (ascending, after the cursor) from an index split by status: each status
/// range gives its first `limit` ids, and the smallest `limit` of them all are the page. Placing
/// an order writes one index row per record (its status row) instead of two; an unfiltered
/// list reads up to `limit` rows per status instead.
fn page_across_statuses<V>(
    read: &impl TenantReads,
    status_codes: impl IntoIterator<Item = u8>,
    limit: usize,
    mut ids_of_status: impl FnMut(u8, usize) -> Result<Vec<u64>, StorageError>,
    records: &TableDef<u64, V>,
    order: IdOrder,
) -> Result<Page<V>, StorageError>
where
    V: Record,
{
    let limit = clamp(limit);
    let mut ids = Vec::new();
    for code in status_codes {
        ids.extend(ids_of_status(code, limit)?);
    }
    let (ids, next_after) = first_ids(ids, limit, order);
    let mut items = Vec::with_capacity(ids.len());
    for id in ids {
        // Invariant: index rows are written with their record.
        if let Some(record) = read.get(records, &id)? {
            items.push(record);
        }
    }
    Ok(Page { items, next_after })
}

/// The first `limit` of `ids` (gathered from several status ranges, each in `order`) in
/// `order`, and the cursor of the next page: the last id when the page is full.
fn first_ids(mut ids: Vec<u64>, limit: usize, order: IdOrder) -> (Vec<u64>, Option<u64>) {
    // A record has one status, so its id is in one range only.
    match order {
        IdOrder::Ascending => ids.sort_unstable(),
        IdOrder::Descending => ids.sort_unstable_by(|a, b| b.cmp(a)),
    }
    ids.truncate(limit);
    let next_after = if ids.len() == limit {
        ids.last().copied()
    } else {
        None
    };
    (ids, next_after)
}

/// The tenant's orders by id, optionally of one status.
pub fn list_orders(
    read: &impl TenantReads,
    q: &OrderListQuery,
) -> Result<Page<Order>, StorageError> {
    list_orders_ordered(read, q, IdOrder::Ascending)
}

/// [`list_orders`] in either id order; with [`IdOrder::Descending`] (newest first), `q.after`
/// is the id to continue below.
pub fn list_orders_ordered(
    read: &impl TenantReads,
    q: &OrderListQuery,
    order: IdOrder,
) -> Result<Page<Order>, StorageError> {
    match q.status {
        None => {
            let limit = clamp(q.limit);
            let rows = match order {
                IdOrder::Ascending => read.scan(&ORDERS, &(), q.after.as_ref(), limit)?,
                IdOrder::Descending => read.scan_desc(&ORDERS, &(), q.after.as_ref(), limit)?,
            };
            let next_after = if rows.len() == limit {
                rows.last().map(|(k, _)| *k)
            } else {
                None
            };
            Ok(Page {
                items: rows.into_iter().map(|(_, o)| o).collect(),
                next_after,
            })
        }
        Some(status) => page_from_index(
            read,
            &ORDERS_BY_STATUS,
            &status.code(),
            PageAt {
                after: q.after.map(|a| (status.code(), a)),
                limit: q.limit,
                order,
            },
            |k| k.1,
            &ORDERS,
        ),
    }
}

/// A retailer's orders by id, optionally of one status.
pub fn list_orders_of_retailer(
    read: &impl TenantReads,
    retailer_id: u64,
    q: &OrderListQuery,
) -> Result<Page<Order>, StorageError> {
    list_orders_of_retailer_ordered(read, retailer_id, q, IdOrder::Ascending)
}

/// [`list_orders_of_retailer`] in either id order.
pub fn list_orders_of_retailer_ordered(
    read: &impl TenantReads,
    retailer_id: u64,
    q: &OrderListQuery,
    order: IdOrder,
) -> Result<Page<Order>, StorageError> {
    match q.status {
        None => page_across_statuses(
            read,
            OrderStatus::ALL.map(OrderStatus::code),
            q.limit,
            |code, limit| {
                let after = q.after.map(|a| (retailer_id, code, a));
                let prefix = (retailer_id, code);
                let rows = match order {
                    IdOrder::Ascending => {
                        read.scan(&ORDERS_BY_RETAILER_STATUS, &prefix, after.as_ref(), limit)?
                    }
                    IdOrder::Descending => {
                        read.scan_desc(&ORDERS_BY_RETAILER_STATUS, &prefix, after.as_ref(), limit)?
                    }
                };
                Ok(rows.into_iter().map(|(k, _)| k.2).collect())
            },
            &ORDERS,
            order,
        ),
        Some(status) => page_from_index(
            read,
            &ORDERS_BY_RETAILER_STATUS,
            &(retailer_id, status.code()),
            PageAt {
                after: q.after.map(|a| (retailer_id, status.code(), a)),
                limit: q.limit,
                order,
            },
            |k| k.2,
            &ORDERS,
        ),
    }
}

/// A manufacturer's sub-orders by id, optionally of one status.
pub fn list_suborders_of_manufacturer(
    read: &impl TenantReads,
    manufacturer_id: u64,
    q: &SubOrderListQuery,
) -> Result<Page<SubOrder>, StorageError> {
    match q.status {
        None => page_across_statuses(
            read,
            SubOrderStatus::ALL.map(SubOrderStatus::code),
            q.limit,
            |code, limit| {
                let after = q.after.map(|a| (manufacturer_id, code, a));
                let rows = read.scan(
                    &SUBORDERS_BY_MANUFACTURER_STATUS,
                    &(manufacturer_id, code),
                    after.as_ref(),
                    limit,
                )?;
                Ok(rows.into_iter().map(|(k, _)| k.2).collect())
            },
            &SUBORDERS,
            IdOrder::Ascending,
        ),
        Some(status) => page_from_index(
            read,
            &SUBORDERS_BY_MANUFACTURER_STATUS,
            &(manufacturer_id, status.code()),
            PageAt {
                after: q.after.map(|a| (manufacturer_id, status.code(), a)),
                limit: q.limit,
                order: IdOrder::Ascending,
            },
            |k| k.2,
            &SUBORDERS,
        ),
    }
}

/// A retailer's invoices by id.
pub fn list_invoices_of_retailer(
    read: &impl TenantReads,
    retailer_id: u64,
    after: Option<u64>,
    limit: usize,
) -> Result<Page<Invoice>, StorageError> {
    page_from_index(
        read,
        &INVOICES_BY_RETAILER,
        &retailer_id,
        PageAt {
            after: after.map(|a| (retailer_id, a)),
            limit,
            order: IdOrder::Ascending,
        },
        |k| k.1,
        &INVOICES,
    )
}

/// An invoice's payments by id.
pub fn list_payments_of_invoice(
    read: &impl TenantReads,
    invoice_id: u64,
    after: Option<u64>,
    limit: usize,
) -> Result<Page<Payment>, StorageError> {
    page_from_index(
        read,
        &PAYMENTS_BY_INVOICE,
        &invoice_id,
        PageAt {
            after: after.map(|a| (invoice_id, a)),
            limit,
            order: IdOrder::Ascending,
        },
        |k| k.1,
        &PAYMENTS,
    )
}

/// A retailer's credit position at `at_ms`; `None` for an unknown retailer.
pub fn retailer_credit(
    read: &impl TenantReads,
    retailer_id: u64,
    at_ms: u64,
) -> Result<Option<RetailerCredit>, StorageError> {
    let Some(retailer) = read.get(&RETAILERS, &retailer_id)? else {
        return Ok(None);
    };
    let currency = retailer.credit_limit.currency;
    let open = billing::open_balance(read, retailer_id, currency)?;
    let overdue = billing::overdue_amount(read, retailer_id, currency, at_ms)?;
    let available = Money::new(
        retailer
            .credit_limit
            .minor
            .saturating_sub(open.minor)
            .max(0),
        currency,
    );
    Ok(Some(RetailerCredit {
        credit_limit: retailer.credit_limit,
        open,
        overdue,
        available,
    }))
}

#[cfg(test)]
mod tests {
    use super::first_ids;
    use crate::catalog::IdOrder;
    use crate::tables::{OrderStatus, SubOrderStatus};

    #[test]
    fn pages_across_status_ranges_are_in_id_order() {
        // Three status ranges, each ascending, each cut at the limit by its scan.
        let placed = [2, 5, 9];
        let shipped = [1, 7, 8];
        let cancelled = [3];
        let gathered: Vec<u64> = [&placed[..], &shipped[..], &cancelled[..]].concat();
        assert_eq!(
            first_ids(gathered.clone(), 3, IdOrder::Ascending),
            (vec![1, 2, 3], Some(3))
        );
        assert_eq!(
            first_ids(gathered.clone(), 10, IdOrder::Ascending),
            (vec![1, 2, 3, 5, 7, 8, 9], None)
        );
        // A page filled exactly still gives a cursor (the next page may be empty).
        assert_eq!(
            first_ids(vec![4, 6], 2, IdOrder::Ascending),
            (vec![4, 6], Some(6))
        );
        assert_eq!(
            first_ids(Vec::new(), 2, IdOrder::Ascending),
            (Vec::new(), None)
        );
        // Newest first: each range was scanned descending, and the largest ids are the page.
        let gathered: Vec<u64> = [[9, 5, 2], [8, 7, 1]].concat();
        assert_eq!(
            first_ids(gathered.clone(), 3, IdOrder::Descending),
            (vec![9, 8, 7], Some(7))
        );
        assert_eq!(
            first_ids(gathered, 10, IdOrder::Descending),
            (vec![9, 8, 7, 5, 2, 1], None)
        );
    }

    /// The merged lists read every status range: `ALL` must hold each status once, by code.
    /// (A new variant fails to compile here until it is added to `ALL` and to these matches.)
    #[test]
    fn every_status_is_listed_once_in_code_order() {
        use OrderStatus as O;
        use SubOrderStatus as S;
        for status in OrderStatus::ALL {
            match status {
                O::AwaitingApproval | O::Placed | O::Completed | O::Cancelled => {}
            }
        }
        for status in SubOrderStatus::ALL {
            match status {
                S::AwaitingApproval
                | S::Placed
                | S::Confirmed
                | S::Shipped
                | S::Delivered
                | S::Cancelled => {}
            }
        }
        for (i, status) in OrderStatus::ALL.iter().enumerate() {
            assert_eq!(usize::from(status.code()), i);
            assert_eq!(OrderStatus::parse(status.as_str()), Some(*status));
        }
        for (i, status) in SubOrderStatus::ALL.iter().enumerate() {
            assert_eq!(usize::from(status.code()), i);
            assert_eq!(SubOrderStatus::parse(status.as_str()), Some(*status));
        }
    }
}
