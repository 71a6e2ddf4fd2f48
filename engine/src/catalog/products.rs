//! Products (create, update, status, bulk upsert), price-list entries, and product lists.
//!
//! Status transitions: `Draft <-> Active`, `Draft | Active -> Archived`, `Archived -> Draft`.
//! Setting the current status again is a no-op. `-> Active` (publishing) is refused with
//! `manufacturer_not_verified` when the tenant requires verified manufacturers and the
//! product's manufacturer is not `Verified`. A manufacturer losing its verification does not
//! unpublish its products: ordering checks the manufacturer's status at order time.

use super::validate::{self, LIST_SCAN_MAX, UPSERT_BATCH_MAX};
use super::{
    CatalogAction, CatalogOutput, IdOrder, Page, ProductInput, ProductUpsert, categories, checked,
    not_found, settings, unexpected,
};
use crate::command::{Applied, Ctx, Rejection, reject};
use crate::money::{Currency, Money};
use crate::tables::{
    CATEGORIES, CUSTOMER_GROUPS, CatalogSettings, IdRef, IndexMark, MANUFACTURERS, PRICE_LIST,
    PRICE_LIST_BY_PRODUCT, PRODUCT_BY_SKU, PRODUCTS, PRODUCTS_BY_CATEGORY,
    PRODUCTS_BY_MANUFACTURER, PRODUCTS_BY_STATUS, PriceListEntry, PriceTier, Product,
    ProductStatus, VerificationStatus,
};
use crate::{Actor, Engine, EngineError, TenantId};
use mercato_storage::{
    BlobHash, KeyCodec, Record, StorageError, TableDef, TenantReads, TenantWrite,
};
use std::collections::BTreeSet;

/// Unit of measure of a product created without one.
pub const UNIT_OF_MEASURE_DEFAULT: &str = "each";
/// Upper bound on categories a "category with descendants" filter merges through the
/// category index; a larger subtree is filtered while scanning products instead.
const CATEGORY_MERGE_MAX: usize = 16;

/// Checks and normalizes a product input (no storage access).
pub fn product_input(input: &ProductInput, currency: Currency) -> Result<ProductInput, Rejection> {
    let base_price = validate::price("base_price", input.base_price, currency)?;
    validate::pack_and_minimum(input.case_pack, input.min_order_qty)?;
    Ok(ProductInput {
        manufacturer_id: input.manufacturer_id,
        sku: validate::sku(&input.sku)?,
        name: validate::name("name", &input.name)?,
        description: validate::description(&input.description)?,
        category_id: input.category_id,
        attributes: validate::attributes(&input.attributes)?,
        images: validate::images(&input.images)?,
        unit_of_measure: validate::unit_of_measure(&input.unit_of_measure)?,
        case_pack: input.case_pack,
        min_order_qty: input.min_order_qty,
        base_price,
        tiers: validate::tiers(&input.tiers, base_price, currency)?,
    })
}

/// Checks the references of a product input: the manufacturer and the category exist.
fn check_references(
    read: &impl TenantReads,
    input: &ProductInput,
) -> Result<Result<(), Rejection>, StorageError> {
    if read.get(&MANUFACTURERS, &input.manufacturer_id)?.is_none() {
        return Ok(Err(Rejection::InvalidField {
            field: "manufacturer_id".into(),
            reason: format!("manufacturer {} does not exist", input.manufacturer_id),
        }));
    }
    if let Some(c) = input.category_id
        && read.get(&CATEGORIES, &c)?.is_none()
    {
        return Ok(Err(Rejection::InvalidField {
            field: "category_id".into(),
            reason: format!("category {c} does not exist"),
        }));
    }
    Ok(Ok(()))
}

/// Checks a status change of a product of `manufacturer_id`.
fn check_transition(
    read: &impl TenantReads,
    settings: &CatalogSettings,
    manufacturer_id: u64,
    from: ProductStatus,
    to: ProductStatus,
) -> Result<Result<(), Rejection>, StorageError> {
    use ProductStatus::{Active, Archived, Draft};
    let legal = matches!(
        (from, to),
        (Draft, Active) | (Active, Draft) | (Draft | Active, Archived) | (Archived, Draft)
    );
    if from != to && !legal {
        return Ok(Err(Rejection::Conflict {
            code: "illegal_status_transition",
            detail: format!(
                "a product cannot go from {} to {}",
                from.as_str(),
                to.as_str()
            ),
        }));
    }
    if to == Active && from != Active && settings.require_verified_manufacturer_to_publish {
        let verified = read
            .get(&MANUFACTURERS, &manufacturer_id)?
            .is_some_and(|m| m.verification == VerificationStatus::Verified);
        if !verified {
            return Ok(Err(Rejection::Conflict {
                code: "manufacturer_not_verified",
                detail: format!(
                    "manufacturer {manufacturer_id} is not verified; its products cannot be published"
                ),
            }));
        }
    }
    Ok(Ok(()))
}

fn sku_owner(
    read: &impl TenantReads,
    manufacturer_id: u64,
    sku: &str,
) -> Result<Option<u64>, StorageError> {
    Ok(read
        .get(&PRODUCT_BY_SKU, &(manufacturer_id, sku.to_string()))?
        .map(|r| r.0))
}

fn sku_taken(manufacturer_id: u64, sku: &str, owner: u64) -> Rejection {
    Rejection::Conflict {
        code: "sku_taken",
        detail: format!("manufacturer {manufacturer_id} already has SKU {sku:?} (product {owner})"),
    }
}

/// Writes a product and keeps its indexes in step with the previous version (if any).
fn write_product(
    tx: &mut TenantWrite<'_>,
    old: Option<&Product>,
    new: &Product,
) -> Result<(), StorageError> {
    let id = new.id;
    if let Some(old) = old {
        if old.sku != new.sku {
            tx.delete(&PRODUCT_BY_SKU, &(old.manufacturer_id, old.sku.clone()))?;
        }
        if old.category_id != new.category_id
            && let Some(c) = old.category_id
        {
            tx.delete(&PRODUCTS_BY_CATEGORY, &(c, id))?;
        }
        if old.status != new.status {
            tx.delete(&PRODUCTS_BY_STATUS, &(old.status.code(), id))?;
        }
    }
    if old.is_none_or(|o| o.sku != new.sku) {
        tx.put(
            &PRODUCT_BY_SKU,
            &(new.manufacturer_id, new.sku.clone()),
            &IdRef(id),
        )?;
    }
    if old.is_none() {
        tx.put(
            &PRODUCTS_BY_MANUFACTURER,
            &(new.manufacturer_id, id),
            &IndexMark,
        )?;
    }
    if old.is_none_or(|o| o.category_id != new.category_id)
        && let Some(c) = new.category_id
    {
        tx.put(&PRODUCTS_BY_CATEGORY, &(c, id), &IndexMark)?;
    }
    if old.is_none_or(|o| o.status != new.status) {
        tx.put(&PRODUCTS_BY_STATUS, &(new.status.code(), id), &IndexMark)?;
    }
    // Every image is one reference from the tenant to its blob, so the blob is readable by
    // the tenant and kept by the collector for as long as a product shows it.
    let before: &[[u8; 32]] = old.map_or(&[], |o| o.images.as_slice());
    for hash in new.images.iter().filter(|h| !before.contains(h)) {
        tx.blob_ref_add(&BlobHash::from_bytes(*hash))?;
    }
    for hash in before.iter().filter(|h| !new.images.contains(h)) {
        tx.blob_ref_remove(&BlobHash::from_bytes(*hash))?;
    }
    tx.put(&PRODUCTS, &id, new)
}

fn new_product(id: u64, input: ProductInput, status: ProductStatus, at_ms: u64) -> Product {
    Product {
        id,
        manufacturer_id: input.manufacturer_id,
        sku: input.sku,
        name: input.name,
        description: input.description,
        category_id: input.category_id,
        attributes: input.attributes,
        images: input.images,
        status,
        unit_of_measure: input.unit_of_measure,
        case_pack: input.case_pack,
        min_order_qty: input.min_order_qty,
        base_price: input.base_price,
        tiers: input.tiers,
        created_at_ms: at_ms,
        updated_at_ms: at_ms,
        version: 1,
    }
}

fn updated_product(
    old: &Product,
    input: ProductInput,
    status: ProductStatus,
    at_ms: u64,
) -> Product {
    let mut p = new_product(old.id, input, status, at_ms);
    p.created_at_ms = old.created_at_ms;
    p.version = old.version + 1;
    p
}

pub(super) fn apply_create(ctx: &mut Ctx<'_, '_>, input: &ProductInput) -> Applied<CatalogOutput> {
    let currency = settings(&*ctx.tx)?.currency;
    let input = checked(product_input(input, currency))?;
    checked(check_references(&*ctx.tx, &input)?)?;
    if let Some(owner) = sku_owner(&*ctx.tx, input.manufacturer_id, &input.sku)? {
        return reject(sku_taken(input.manufacturer_id, &input.sku, owner));
    }
    let id = ctx.next_id("product")?;
    let product = new_product(id, input, ProductStatus::Draft, ctx.at_ms);
    write_product(ctx.tx, None, &product)?;
    ctx.audit("product.create", format!("product/{id}"));
    Ok(CatalogOutput::Product(product))
}

fn existing(ctx: &Ctx<'_, '_>, id: u64, expected_version: Option<u64>) -> Applied<Product> {
    let Some(p) = ctx.tx.get(&PRODUCTS, &id)? else {
        return reject(not_found("product", id));
    };
    if let Some(v) = expected_version
        && v != p.version
    {
        return reject(Rejection::Conflict {
            code: "version_mismatch",
            detail: format!("product {id} is at version {}, not {v}", p.version),
        });
    }
    Ok(p)
}

pub(super) fn apply_update(
    ctx: &mut Ctx<'_, '_>,
    id: u64,
    expected_version: Option<u64>,
    input: &ProductInput,
) -> Applied<CatalogOutput> {
    let currency = settings(&*ctx.tx)?.currency;
    let input = checked(product_input(input, currency))?;
    let old = existing(ctx, id, expected_version)?;
    if input.manufacturer_id != old.manufacturer_id {
        return reject(Rejection::InvalidField {
            field: "manufacturer_id".into(),
            reason: "a product cannot move to another manufacturer".into(),
        });
    }
    checked(check_references(&*ctx.tx, &input)?)?;
    if let Some(owner) = sku_owner(&*ctx.tx, input.manufacturer_id, &input.sku)?
        && owner != id
    {
        return reject(sku_taken(input.manufacturer_id, &input.sku, owner));
    }
    let product = updated_product(&old, input, old.status, ctx.at_ms);
    write_product(ctx.tx, Some(&old), &product)?;
    ctx.audit("product.update", format!("product/{id}"));
    Ok(CatalogOutput::Product(product))
}

fn status_audit_action(status: ProductStatus) -> &'static str {
    match status {
        ProductStatus::Active => "product.publish",
        ProductStatus::Draft => "product.unpublish",
        ProductStatus::Archived => "product.archive",
    }
}

pub(super) fn apply_set_status(
    ctx: &mut Ctx<'_, '_>,
    id: u64,
    expected_version: Option<u64>,
    status: ProductStatus,
) -> Applied<CatalogOutput> {
    let old = existing(ctx, id, expected_version)?;
    if old.status == status {
        return Ok(CatalogOutput::Product(old));
    }
    let s = settings(&*ctx.tx)?;
    checked(check_transition(
        &*ctx.tx,
        &s,
        old.manufacturer_id,
        old.status,
        status,
    )?)?;
    let mut product = old.clone();
    product.status = status;
    product.version += 1;
    product.updated_at_ms = ctx.at_ms;
    write_product(ctx.tx, Some(&old), &product)?;
    ctx.audit(status_audit_action(status), format!("product/{id}"));
    Ok(CatalogOutput::Product(product))
}

/// What one upsert row will do: the product it updates (if any), its full checked input and
/// its resulting status.
pub(crate) struct UpsertPlan {
    pub existing: Option<Product>,
    pub input: ProductInput,
    pub status: ProductStatus,
}

/// Resolves an upsert row against the current state and checks it completely: the same
/// function runs in the import's validation pass (on a snapshot) and in the command.
pub(crate) fn plan_upsert(
    read: &impl TenantReads,
    settings: &CatalogSettings,
    row: &ProductUpsert,
) -> Result<Result<UpsertPlan, Rejection>, StorageError> {
    let sku = match validate::sku(&row.sku) {
        Ok(s) => s,
        Err(r) => return Ok(Err(r)),
    };
    let existing = match sku_owner(read, row.manufacturer_id, &sku)? {
        Some(id) => read.get(&PRODUCTS, &id)?,
        None => None,
    };
    let required = |field: &str| Rejection::InvalidField {
        field: field.into(),
        reason: "required for a new product".into(),
    };
    let e = existing.as_ref();
    let Some(name) = row.name.clone().or_else(|| e.map(|p| p.name.clone())) else {
        return Ok(Err(required("name")));
    };
    let Some(base_price) = row.base_price.or_else(|| e.map(|p| p.base_price)) else {
        return Ok(Err(required("base_price")));
    };
    let case_pack = row.case_pack.or(e.map(|p| p.case_pack)).unwrap_or(1);
    let input = ProductInput {
        manufacturer_id: row.manufacturer_id,
        sku,
        name,
        description: row
            .description
            .clone()
            .or_else(|| e.map(|p| p.description.clone()))
            .unwrap_or_default(),
        category_id: row
            .category_id
            .unwrap_or_else(|| e.and_then(|p| p.category_id)),
        attributes: row
            .attributes
            .clone()
            .or_else(|| e.map(|p| p.attributes.clone()))
            .unwrap_or_default(),
        images: row
            .images
            .clone()
            .or_else(|| e.map(|p| p.images.clone()))
            .unwrap_or_default(),
        unit_of_measure: row
            .unit_of_measure
            .clone()
            .or_else(|| e.map(|p| p.unit_of_measure.clone()))
            .unwrap_or_else(|| UNIT_OF_MEASURE_DEFAULT.to_string()),
        case_pack,
        min_order_qty: row
            .min_order_qty
            .or(e.map(|p| p.min_order_qty))
            .unwrap_or(case_pack),
        base_price,
        tiers: row
            .tiers
            .clone()
            .or_else(|| e.map(|p| p.tiers.clone()))
            .unwrap_or_default(),
    };
    let input = match product_input(&input, settings.currency) {
        Ok(i) => i,
        Err(r) => return Ok(Err(r)),
    };
    if let Err(r) = check_references(read, &input)? {
        return Ok(Err(r));
    }
    let from = e.map_or(ProductStatus::Draft, |p| p.status);
    let status = row.status.unwrap_or(from);
    if let Err(r) = check_transition(read, settings, input.manufacturer_id, from, status)? {
        return Ok(Err(r));
    }
    Ok(Ok(UpsertPlan {
        existing,
        input,
        status,
    }))
}

/// Names the row of a rejection inside an upsert batch.
fn in_row(i: usize, r: Rejection) -> Rejection {
    match r {
        Rejection::InvalidField { field, reason } => Rejection::InvalidField {
            field: format!("rows[{i}].{field}"),
            reason,
        },
        Rejection::Conflict { code, detail } => Rejection::Conflict {
            code,
            detail: format!("rows[{i}]: {detail}"),
        },
        other => other,
    }
}

pub(super) fn apply_upsert(
    ctx: &mut Ctx<'_, '_>,
    rows: &[ProductUpsert],
) -> Applied<CatalogOutput> {
    if rows.is_empty() || rows.len() > UPSERT_BATCH_MAX {
        return reject(Rejection::InvalidField {
            field: "rows".into(),
            reason: format!("must hold 1..={UPSERT_BATCH_MAX} rows"),
        });
    }
    let s = settings(&*ctx.tx)?;
    let (mut created, mut updated) = (0u32, 0u32);
    let mut seen = BTreeSet::new();
    for (i, row) in rows.iter().enumerate() {
        if !seen.insert((row.manufacturer_id, row.sku.as_str())) {
            return reject(in_row(
                i,
                Rejection::InvalidField {
                    field: "sku".into(),
                    reason: "appears twice in the batch".into(),
                },
            ));
        }
        let plan = match plan_upsert(&*ctx.tx, &s, row)? {
            Ok(plan) => plan,
            Err(r) => return reject(in_row(i, r)),
        };
        match plan.existing {
            Some(old) => {
                let product = updated_product(&old, plan.input, plan.status, ctx.at_ms);
                if product_unchanged(&old, &product) {
                    continue;
                }
                write_product(ctx.tx, Some(&old), &product)?;
                ctx.audit("product.update", format!("product/{}", old.id));
                updated += 1;
            }
            None => {
                let id = ctx.next_id("product")?;
                let product = new_product(id, plan.input, plan.status, ctx.at_ms);
                write_product(ctx.tx, None, &product)?;
                ctx.audit("product.create", format!("product/{id}"));
                created += 1;
            }
        }
    }
    Ok(CatalogOutput::Upserted { created, updated })
}

/// True when an upsert would change nothing but the version and time (re-importing the same
/// file is then a no-op: no new versions, no audit noise).
fn product_unchanged(old: &Product, new: &Product) -> bool {
    let mut same = new.clone();
    same.version = old.version;
    same.updated_at_ms = old.updated_at_ms;
    same == *old
}

pub(super) fn apply_set_price(
    ctx: &mut Ctx<'_, '_>,
    group_id: u64,
    product_id: u64,
    unit_price: Money,
    tiers: &[PriceTier],
) -> Applied<CatalogOutput> {
    let currency = settings(&*ctx.tx)?.currency;
    let unit_price = checked(validate::price("unit_price", unit_price, currency))?;
    let tiers = checked(validate::tiers(tiers, unit_price, currency))?;
    if ctx.tx.get(&CUSTOMER_GROUPS, &group_id)?.is_none() {
        return reject(not_found("customer_group", group_id));
    }
    if ctx.tx.get(&PRODUCTS, &product_id)?.is_none() {
        return reject(not_found("product", product_id));
    }
    let entry = PriceListEntry {
        unit_price,
        tiers,
        updated_at_ms: ctx.at_ms,
    };
    ctx.tx.put(&PRICE_LIST, &(group_id, product_id), &entry)?;
    ctx.tx
        .put(&PRICE_LIST_BY_PRODUCT, &(product_id, group_id), &IndexMark)?;
    ctx.audit(
        "price_list.set",
        format!("price_list/{group_id}/{product_id}"),
    );
    Ok(CatalogOutput::PriceListEntry(entry))
}

pub(super) fn apply_remove_price(
    ctx: &mut Ctx<'_, '_>,
    group_id: u64,
    product_id: u64,
) -> Applied<CatalogOutput> {
    if ctx.tx.get(&PRICE_LIST, &(group_id, product_id))?.is_none() {
        return reject(not_found(
            "price_list_entry",
            format!("{group_id}/{product_id}"),
        ));
    }
    ctx.tx.delete(&PRICE_LIST, &(group_id, product_id))?;
    ctx.tx
        .delete(&PRICE_LIST_BY_PRODUCT, &(product_id, group_id))?;
    ctx.audit(
        "price_list.remove",
        format!("price_list/{group_id}/{product_id}"),
    );
    Ok(CatalogOutput::PriceListEntryRemoved)
}

/// A product by id.
pub fn product(read: &impl TenantReads, id: u64) -> Result<Option<Product>, StorageError> {
    read.get(&PRODUCTS, &id)
}

/// A product by its manufacturer and SKU (SKUs are case-sensitive).
pub fn product_by_sku(
    read: &impl TenantReads,
    manufacturer_id: u64,
    sku: &str,
) -> Result<Option<Product>, StorageError> {
    match sku_owner(read, manufacturer_id, sku)? {
        Some(id) => read.get(&PRODUCTS, &id),
        None => Ok(None),
    }
}

/// A customer group's price-list entry for a product.
pub fn price_list_entry(
    read: &impl TenantReads,
    group_id: u64,
    product_id: u64,
) -> Result<Option<PriceListEntry>, StorageError> {
    read.get(&PRICE_LIST, &(group_id, product_id))
}

/// A customer group's price list: `(product_id, entry)` in product id order.
pub fn list_price_list(
    read: &impl TenantReads,
    group_id: u64,
    after: Option<u64>,
    limit: usize,
) -> Result<Page<(u64, PriceListEntry)>, StorageError> {
    let limit = validate::page_limit(limit);
    let after_key = after.map(|a| (group_id, a));
    let mut rows = read.scan(&PRICE_LIST, &group_id, after_key.as_ref(), limit + 1)?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_after = if more {
        rows.last().map(|((_, p), _)| *p)
    } else {
        None
    };
    Ok(Page {
        items: rows.into_iter().map(|((_, p), e)| (p, e)).collect(),
        next_after,
    })
}

/// Filters of a product list; all optional, combined with AND. Results are in product id
/// order (creation order), so a cursor (`after`) stays valid while products are added.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProductQuery {
    pub manufacturer_id: Option<u64>,
    pub category_id: Option<u64>,
    /// With `category_id`: also products of every descendant category.
    pub include_descendants: bool,
    pub status: Option<ProductStatus>,
    /// Continue after this product id.
    pub after: Option<u64>,
    /// Page size, clamped to `1..=PAGE_LIMIT_MAX`.
    pub limit: usize,
}

/// Where the candidates of a list come from, in ascending product id order.
enum Source {
    All,
    Manufacturer(u64),
    Status(ProductStatus),
    /// Union of the category index of a few categories.
    Categories(Vec<u64>),
}

/// Products matching a query. The most selective index drives the scan (manufacturer, then
/// category, then status); other filters are checked on the records. A page examines at most
/// [`LIST_SCAN_MAX`] candidates: a page that hits the bound may be short (even empty) with a
/// `next_after` to continue from. `next_after` is `None` only when nothing is left.
pub fn list_products(
    read: &impl TenantReads,
    query: &ProductQuery,
) -> Result<Page<Product>, StorageError> {
    list_products_ordered(read, query, IdOrder::Ascending)
}

/// [`list_products`] in either id order; with [`IdOrder::Descending`], `query.after` is the id
/// to continue below.
pub fn list_products_ordered(
    read: &impl TenantReads,
    query: &ProductQuery,
    order: IdOrder,
) -> Result<Page<Product>, StorageError> {
    let limit = validate::page_limit(query.limit);
    let categories: Option<BTreeSet<u64>> = match query.category_id {
        None => None,
        Some(c) => {
            let mut set = BTreeSet::from([c]);
            if query.include_descendants {
                set.extend(categories::category_descendants(read, c)?);
            }
            Some(set)
        }
    };
    let source = match (query.manufacturer_id, &categories, query.status) {
        (Some(m), _, _) => Source::Manufacturer(m),
        (None, Some(set), _) if set.len() <= CATEGORY_MERGE_MAX => {
            Source::Categories(set.iter().copied().collect())
        }
        (None, _, Some(s)) => Source::Status(s),
        _ => Source::All,
    };
    let matches = |p: &Product| {
        query.manufacturer_id.is_none_or(|m| p.manufacturer_id == m)
            && query.status.is_none_or(|s| p.status == s)
            && categories
                .as_ref()
                .is_none_or(|set| p.category_id.is_some_and(|c| set.contains(&c)))
    };
    let mut items = Vec::new();
    let mut after = query.after;
    let mut examined = 0usize;
    loop {
        let chunk = (limit + 1).min(LIST_SCAN_MAX - examined).max(1);
        let candidates = candidates(read, &source, after, chunk, order)?;
        if candidates.is_empty() {
            return Ok(Page {
                items,
                next_after: None,
            });
        }
        for p in candidates {
            examined += 1;
            if matches(&p) {
                if items.len() == limit {
                    // One more match exists: the page is full and continues after its last.
                    let next_after = items.last().map(|p: &Product| p.id);
                    return Ok(Page { items, next_after });
                }
                items.push(p.clone());
            }
            after = Some(p.id);
            if examined >= LIST_SCAN_MAX {
                return Ok(Page {
                    items,
                    next_after: after,
                });
            }
        }
    }
}

/// Scans `table` under `prefix` past `cursor` in `order`.
fn scan_in<K: KeyCodec, V: Record, P: KeyCodec>(
    read: &impl TenantReads,
    table: &TableDef<K, V>,
    prefix: &P,
    cursor: Option<&K>,
    n: usize,
    order: IdOrder,
) -> Result<Vec<(K, V)>, StorageError> {
    match order {
        IdOrder::Ascending => read.scan(table, prefix, cursor, n),
        IdOrder::Descending => read.scan_desc(table, prefix, cursor, n),
    }
}

/// The next `n` candidate products of a source past a product id, in `order`.
fn candidates(
    read: &impl TenantReads,
    source: &Source,
    after: Option<u64>,
    n: usize,
    order: IdOrder,
) -> Result<Vec<Product>, StorageError> {
    let ids: Vec<u64> = match source {
        Source::All => {
            return Ok(scan_in(read, &PRODUCTS, &(), after.as_ref(), n, order)?
                .into_iter()
                .map(|(_, p)| p)
                .collect());
        }
        Source::Manufacturer(m) => {
            let after_key = after.map(|a| (*m, a));
            scan_in(
                read,
                &PRODUCTS_BY_MANUFACTURER,
                m,
                after_key.as_ref(),
                n,
                order,
            )?
            .into_iter()
            .map(|((_, id), _)| id)
            .collect()
        }
        Source::Status(s) => {
            let after_key = after.map(|a| (s.code(), a));
            scan_in(
                read,
                &PRODUCTS_BY_STATUS,
                &s.code(),
                after_key.as_ref(),
                n,
                order,
            )?
            .into_iter()
            .map(|((_, id), _)| id)
            .collect()
        }
        Source::Categories(cats) => {
            // The n first ids past the cursor of the union are among the n first of each
            // category.
            let mut ids = BTreeSet::new();
            for c in cats {
                let after_key = after.map(|a| (*c, a));
                for ((_, id), _) in
                    scan_in(read, &PRODUCTS_BY_CATEGORY, c, after_key.as_ref(), n, order)?
                {
                    ids.insert(id);
                }
            }
            match order {
                IdOrder::Ascending => ids.into_iter().take(n).collect(),
                IdOrder::Descending => ids.into_iter().rev().take(n).collect(),
            }
        }
    };
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(p) = read.get(&PRODUCTS, &id)? {
            out.push(p);
        }
    }
    Ok(out)
}

impl Engine {
    async fn product_action(
        &self,
        tenant: TenantId,
        actor: Actor,
        action: CatalogAction,
    ) -> Result<Product, EngineError> {
        match self.run_catalog(tenant, actor, action).await? {
            CatalogOutput::Product(p) => Ok(p),
            other => Err(unexpected(other)),
        }
    }

    /// Creates a product, in `Draft`.
    pub async fn create_product(
        &self,
        tenant: TenantId,
        actor: Actor,
        input: ProductInput,
    ) -> Result<Product, EngineError> {
        self.product_action(tenant, actor, CatalogAction::CreateProduct(input))
            .await
    }

    /// Replaces a product's fields (not its status or manufacturer); with `expected_version`,
    /// refuses with `version_mismatch` if the product changed since it was read.
    pub async fn update_product(
        &self,
        tenant: TenantId,
        actor: Actor,
        id: u64,
        expected_version: Option<u64>,
        input: ProductInput,
    ) -> Result<Product, EngineError> {
        let action = CatalogAction::UpdateProduct {
            id,
            expected_version,
            input,
        };
        self.product_action(tenant, actor, action).await
    }

    /// Publishes (`Active`), unpublishes (`Draft`) or archives (`Archived`) a product.
    pub async fn set_product_status(
        &self,
        tenant: TenantId,
        actor: Actor,
        id: u64,
        expected_version: Option<u64>,
        status: ProductStatus,
    ) -> Result<Product, EngineError> {
        let action = CatalogAction::SetProductStatus {
            id,
            expected_version,
            status,
        };
        self.product_action(tenant, actor, action).await
    }

    /// Creates or replaces a customer group's price (and tiers) for a product.
    pub async fn set_price_list_entry(
        &self,
        tenant: TenantId,
        actor: Actor,
        group_id: u64,
        product_id: u64,
        unit_price: Money,
        tiers: Vec<PriceTier>,
    ) -> Result<PriceListEntry, EngineError> {
        let action = CatalogAction::SetPriceListEntry {
            group_id,
            product_id,
            unit_price,
            tiers,
        };
        match self.run_catalog(tenant, actor, action).await? {
            CatalogOutput::PriceListEntry(e) => Ok(e),
            other => Err(unexpected(other)),
        }
    }

    /// Removes a customer group's price for a product (the product's own prices apply again).
    pub async fn remove_price_list_entry(
        &self,
        tenant: TenantId,
        actor: Actor,
        group_id: u64,
        product_id: u64,
    ) -> Result<(), EngineError> {
        let action = CatalogAction::RemovePriceListEntry {
            group_id,
            product_id,
        };
        match self.run_catalog(tenant, actor, action).await? {
            CatalogOutput::PriceListEntryRemoved => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// A product by id.
    /// Served from the read cache when it can (see [`crate::cache`]).
    pub fn product(&self, tenant: TenantId, id: u64) -> Result<Option<Product>, EngineError> {
        Ok(self
            .storage
            .read_cache()
            .get_or_read(tenant, id, || product(&self.storage.read(tenant)?, id))?)
    }

    /// A product by manufacturer and SKU.
    pub fn product_by_sku(
        &self,
        tenant: TenantId,
        manufacturer_id: u64,
        sku: &str,
    ) -> Result<Option<Product>, EngineError> {
        Ok(product_by_sku(
            &self.storage.read(tenant)?,
            manufacturer_id,
            sku,
        )?)
    }

    /// Products matching a query, in id order.
    pub fn list_products(
        &self,
        tenant: TenantId,
        query: &ProductQuery,
    ) -> Result<Page<Product>, EngineError> {
        Ok(list_products(&self.storage.read(tenant)?, query)?)
    }

    /// Products matching a query, in `order` of id (descending: newest first).
    pub fn list_products_ordered(
        &self,
        tenant: TenantId,
        query: &ProductQuery,
        order: IdOrder,
    ) -> Result<Page<Product>, EngineError> {
        Ok(list_products_ordered(
            &self.storage.read(tenant)?,
            query,
            order,
        )?)
    }

    /// A customer group's price-list entry for a product. Served from the read cache when it
    /// can (see [`crate::cache`]).
    pub fn price_list_entry(
        &self,
        tenant: TenantId,
        group_id: u64,
        product_id: u64,
    ) -> Result<Option<PriceListEntry>, EngineError> {
        let id = (group_id, product_id);
        Ok(self.storage.read_cache().get_or_read(tenant, id, || {
            price_list_entry(&self.storage.read(tenant)?, group_id, product_id)
        })?)
    }

    /// A customer group's price list, in product id order.
    pub fn list_price_list(
        &self,
        tenant: TenantId,
        group_id: u64,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page<(u64, PriceListEntry)>, EngineError> {
        Ok(list_price_list(
            &self.storage.read(tenant)?,
            group_id,
            after,
            limit,
        )?)
    }

    /// The unit price of `qty` units of a product for a customer group (`None`: no group);
    /// `None` if the product does not exist.
    pub fn unit_price(
        &self,
        tenant: TenantId,
        product_id: u64,
        group_id: Option<u64>,
        qty: u32,
    ) -> Result<Option<Money>, EngineError> {
        let read = self.storage.read(tenant)?;
        let Some(p) = product(&read, product_id)? else {
            return Ok(None);
        };
        Ok(Some(super::pricing::price_for_group(
            &read, &p, group_id, qty,
        )?))
    }
}
