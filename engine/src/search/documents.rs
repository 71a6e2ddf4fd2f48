//! From storage rows to index documents: which documents a page of change-log entries makes
//! stale, and how a document is built from the current rows of a tenant snapshot.
//!
//! Documents are always built from a snapshot read *after* the change-log page was read, never
//! from the entries themselves: replaying an entry that the index has seen already only writes
//! the same documents again. That is what makes the LSN in the index commit a safe resume
//! point, and what lets a rebuild start from a snapshot taken at or after its LSN.
//!
//! What makes a product document stale:
//!
//! | changed row | documents rebuilt |
//! |---|---|
//! | `PRODUCTS` | the product (deleted unless `Active`) |
//! | `MANUFACTURERS` | the vendor document and every product of the manufacturer |
//! | `CATEGORIES` | every product in the category and its descendants (path and ancestors) |
//! | `PRICE_LIST` | the product (group prices) |
//! | `STOCK` | the product, if its `in_stock` flipped (at once) or its units sold moved (at the next sales refresh) |
//!
//! A manufacturer's vendor document is rebuilt when its `MANUFACTURERS` row changes, when one
//! of its verification documents' row or extracted text changes (`DOCUMENTS`, `DOCUMENT_TEXT`),
//! and when a document is added to it or deleted (`DOCUMENTS_BY_MANUFACTURER`, the only row
//! left to name the owner of a deleted document). It carries the text of every document the
//! manufacturer has, whatever the document's status: reviewers search pending ones.
//!
//! A `BucketDrop` entry removes every document of the tenants it names (their rows are gone from
//! this shard); a `BucketImport` entry is handled row by row like a command's.

use crate::catalog;
use crate::platform::PLATFORM_TENANT;
use crate::tables::{
    CATEGORIES, DOCUMENT_TEXT, DOCUMENTS, DOCUMENTS_BY_MANUFACTURER, MANUFACTURERS, Manufacturer,
    PRICE_LIST, PRICE_LIST_BY_PRODUCT, PRODUCTS, PRODUCTS_BY_CATEGORY, PRODUCTS_BY_MANUFACTURER,
    PRODUCTS_BY_STATUS, Product, ProductStatus, STOCK, TENANT_REGISTRY, VerificationStatus,
};
use mercato_index::{IndexOp, ProductCounters, ProductDoc, VendorDoc};
use mercato_storage::keys::decode_exact;
use mercato_storage::{
    ChangeEntry, ChangeKind, ShardId, Storage, StorageError, TenantId, TenantRead, TenantReads,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Rows read per scan while collecting ids (products of a manufacturer, of a category, ...).
pub(crate) const ID_SCAN_ROWS: usize = 1024;
/// Price-list entries read for one product's group prices (one per customer group).
pub(crate) const GROUP_PRICES_MAX: usize = 1024;
/// Stock rows read for one product's `in_stock` (one per warehouse).
pub(crate) const STOCK_ROWS_MAX: usize = 1024;
/// Documents staged per `apply` call, so a tenant of a million products never builds one
/// vector of a million documents.
pub(crate) const OPS_CHUNK_MAX: usize = 1024;

/// The ids a page made stale, per tenant.
#[derive(Debug, Default)]
pub(crate) struct Stale {
    pub products: BTreeSet<u64>,
    /// Products whose only change in the page is a stock row: their document changes only if
    /// `in_stock` or units sold moved, which the indexer checks before rebuilding it.
    pub stock_only: BTreeSet<u64>,
    pub manufacturers: BTreeSet<u64>,
    pub categories: BTreeSet<u64>,
    /// Verification documents whose status or text changed: their manufacturer's vendor
    /// document (not its products) is rebuilt.
    pub documents: BTreeSet<u64>,
    /// Manufacturers that gained or lost a verification document (a deleted document has no
    /// row left to name its owner): their vendor document is rebuilt.
    pub vendors: BTreeSet<u64>,
}

impl Stale {
    fn is_empty(&self) -> bool {
        self.products.is_empty()
            && self.stock_only.is_empty()
            && self.manufacturers.is_empty()
            && self.categories.is_empty()
            && self.documents.is_empty()
            && self.vendors.is_empty()
    }
}

/// What a page of change-log entries asks of the index: tenants to drop first, then stale
/// documents to rebuild from a snapshot.
#[derive(Debug, Default)]
pub(crate) struct PageWork {
    pub dropped_tenants: BTreeSet<TenantId>,
    /// Tenants whose rows this page imported from another shard (a bucket moving here). Their
    /// documents are built even while the routing still names the old shard: the move switches
    /// the routing only after its copy and catch-up, and an indexer that read the import before
    /// the switch would otherwise never index the rows.
    pub imported_tenants: BTreeSet<TenantId>,
    pub stale: BTreeMap<TenantId, Stale>,
}

impl PageWork {
    /// Collects what `entries` (in LSN order) make stale.
    pub(crate) fn of(entries: &[ChangeEntry]) -> PageWork {
        let mut work = PageWork::default();
        for entry in entries {
            match &entry.kind {
                ChangeKind::BucketDrop { .. } => {
                    // Every row of these tenants left the shard: whatever was stale before is
                    // gone with them; rows imported again later in the page are stale anew.
                    let tenants: BTreeSet<TenantId> =
                        entry.changes.iter().map(|row| row.tenant).collect();
                    for tenant in tenants {
                        work.stale.remove(&tenant);
                        work.imported_tenants.remove(&tenant);
                        work.dropped_tenants.insert(tenant);
                    }
                }
                ChangeKind::BucketImport { .. } => {
                    for row in &entry.changes {
                        work.imported_tenants.insert(row.tenant);
                        work.note_row(row.tenant, row.table, &row.key);
                    }
                }
                ChangeKind::Command { .. } => {
                    for row in &entry.changes {
                        work.note_row(row.tenant, row.table, &row.key);
                    }
                }
            }
        }
        for stale in work.stale.values_mut() {
            let Stale {
                products,
                stock_only,
                ..
            } = stale;
            stock_only.retain(|id| !products.contains(id));
        }
        work.stale.retain(|_, stale| !stale.is_empty());
        work
    }

    fn note_row(&mut self, tenant: TenantId, table: u16, key: &[u8]) {
        // A key that does not decode is not one of ours (or a bug elsewhere): it makes nothing
        // stale rather than stopping the indexer.
        let stale = || Stale::default();
        if table == PRODUCTS.id {
            if let Ok(id) = decode_exact::<u64>(key) {
                self.stale
                    .entry(tenant)
                    .or_insert_with(stale)
                    .products
                    .insert(id);
            }
        } else if table == MANUFACTURERS.id {
            if let Ok(id) = decode_exact::<u64>(key) {
                self.stale
                    .entry(tenant)
                    .or_insert_with(stale)
                    .manufacturers
                    .insert(id);
            }
        } else if table == CATEGORIES.id {
            if let Ok(id) = decode_exact::<u64>(key) {
                self.stale
                    .entry(tenant)
                    .or_insert_with(stale)
                    .categories
                    .insert(id);
            }
        } else if table == PRICE_LIST.id {
            if let Ok((_group, product)) = decode_exact::<(u64, u64)>(key) {
                self.stale
                    .entry(tenant)
                    .or_insert_with(stale)
                    .products
                    .insert(product);
            }
        } else if table == DOCUMENTS_BY_MANUFACTURER.id {
            if let Ok((manufacturer, _document)) = decode_exact::<(u64, u64)>(key) {
                self.stale
                    .entry(tenant)
                    .or_insert_with(stale)
                    .vendors
                    .insert(manufacturer);
            }
        } else if table == DOCUMENTS.id || table == DOCUMENT_TEXT.id {
            if let Ok(id) = decode_exact::<u64>(key) {
                self.stale
                    .entry(tenant)
                    .or_insert_with(stale)
                    .documents
                    .insert(id);
            }
        } else if table == STOCK.id
            && let Ok((product, _warehouse)) = decode_exact::<(u64, u64)>(key)
        {
            self.stale
                .entry(tenant)
                .or_insert_with(stale)
                .stock_only
                .insert(product);
        }
    }
}

/// The lowercase name of a verification status, as vendor documents and the API carry it.
pub fn verification_name(status: VerificationStatus) -> &'static str {
    match status {
        VerificationStatus::Unverified => "unverified",
        VerificationStatus::Pending => "pending",
        VerificationStatus::Verified => "verified",
        VerificationStatus::Rejected => "rejected",
        VerificationStatus::Suspended => "suspended",
    }
}

/// A category's ancestors (itself included) and its path text.
#[derive(Clone, Debug)]
struct CategoryInfo {
    ids: Vec<u64>,
    path: String,
}

/// Builds documents of one tenant from one snapshot, remembering manufacturers and category
/// paths across the products it builds.
pub(crate) struct DocBuilder<'r> {
    read: &'r TenantRead,
    tenant: u64,
    manufacturers: HashMap<u64, Option<Manufacturer>>,
    categories: HashMap<u64, Option<CategoryInfo>>,
}

impl<'r> DocBuilder<'r> {
    pub(crate) fn new(read: &'r TenantRead) -> Self {
        DocBuilder {
            read,
            tenant: read.tenant().0,
            manufacturers: HashMap::new(),
            categories: HashMap::new(),
        }
    }

    fn manufacturer(&mut self, id: u64) -> Result<Option<Manufacturer>, StorageError> {
        if let Some(known) = self.manufacturers.get(&id) {
            return Ok(known.clone());
        }
        let found = self.read.get(&MANUFACTURERS, &id)?;
        self.manufacturers.insert(id, found.clone());
        Ok(found)
    }

    fn category(&mut self, id: u64) -> Result<Option<CategoryInfo>, StorageError> {
        if let Some(known) = self.categories.get(&id) {
            return Ok(known.clone());
        }
        let info = catalog::category_path(self.read, id)?.map(|path| CategoryInfo {
            ids: path.iter().map(|item| item.id).collect(),
            path: path
                .iter()
                .map(|item| item.name.as_str())
                .collect::<Vec<_>>()
                .join(" > "),
        });
        self.categories.insert(id, info.clone());
        Ok(info)
    }

    /// The operation that brings product `id` up to date: an upsert while it is `Active`, a
    /// delete otherwise (drafts and archived products are not searchable).
    pub(crate) fn product_op(&mut self, id: u64) -> Result<IndexOp, StorageError> {
        match self.read.get(&PRODUCTS, &id)? {
            Some(product) if product.status == ProductStatus::Active => {
                Ok(IndexOp::UpsertProduct(self.product_doc(&product)?))
            }
            _ => Ok(IndexOp::DeleteProduct {
                tenant: self.tenant,
                id,
            }),
        }
    }

    /// The document of a product (whatever its status).
    pub(crate) fn product_doc(&mut self, product: &Product) -> Result<ProductDoc, StorageError> {
        let manufacturer_name = self
            .manufacturer(product.manufacturer_id)?
            .map(|m| m.name)
            .unwrap_or_default();
        let category = match product.category_id {
            Some(c) => self.category(c)?,
            None => None,
        };
        let (category_ids, category_path) = match category {
            Some(info) => (info.ids, info.path),
            None => (Vec::new(), String::new()),
        };
        let mut group_prices = Vec::new();
        for ((_, group), _) in
            self.read
                .scan(&PRICE_LIST_BY_PRODUCT, &product.id, None, GROUP_PRICES_MAX)?
        {
            if let Some(entry) = self.read.get(&PRICE_LIST, &(group, product.id))? {
                group_prices.push((group, entry.unit_price.minor));
            }
        }
        let counters = self.stock_counters(product.id)?;
        Ok(ProductDoc {
            tenant: self.tenant,
            id: product.id,
            sku: product.sku.clone(),
            name: product.name.clone(),
            description: product.description.clone(),
            manufacturer_id: product.manufacturer_id,
            manufacturer_name,
            category_ids,
            category_path,
            attributes: product
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            price_minor: product.base_price.minor,
            group_prices,
            in_stock: counters.in_stock,
            created_ms: product.created_at_ms,
            units_sold: counters.units_sold,
        })
    }

    /// A product's stock-derived fields, from its stock rows (one per warehouse): in stock when
    /// any warehouse has units available, units sold summed over warehouses.
    pub(crate) fn stock_counters(&self, id: u64) -> Result<ProductCounters, StorageError> {
        let rows = self.read.scan(&STOCK, &id, None, STOCK_ROWS_MAX)?;
        Ok(ProductCounters {
            in_stock: rows.iter().any(|(_, level)| level.available() > 0),
            units_sold: rows
                .iter()
                .fold(0u64, |sum, (_, level)| sum.saturating_add(level.sold)),
        })
    }

    /// The operation that brings manufacturer `id`'s vendor document up to date.
    pub(crate) fn vendor_op(&mut self, id: u64) -> Result<IndexOp, StorageError> {
        self.manufacturers.remove(&id);
        Ok(match self.manufacturer(id)? {
            Some(m) => {
                let text = self.vendor_text(id)?;
                IndexOp::UpsertVendor(vendor_doc(self.tenant, &m, text))
            }
            None => IndexOp::DeleteVendor {
                tenant: self.tenant,
                id,
            },
        })
    }

    /// The extracted text of every verification document of a manufacturer (whatever its
    /// status: reviewers search pending documents too), joined, at most
    /// [`VENDOR_TEXT_BYTES_MAX`] bytes (the index cuts it further). A deleted document has no
    /// row and no text any more.
    pub(crate) fn vendor_text(&self, id: u64) -> Result<String, StorageError> {
        let mut text = String::new();
        for (_, part) in self.vendor_documents(id)? {
            if text.len() >= VENDOR_TEXT_BYTES_MAX {
                break;
            }
            if !text.is_empty() {
                text.push('\n');
            }
            let room = VENDOR_TEXT_BYTES_MAX - text.len().min(VENDOR_TEXT_BYTES_MAX);
            text.push_str(&crate::verification::actions::truncate(&part, room));
        }
        Ok(text)
    }

    /// A manufacturer's verification documents that have extracted text, with that text.
    pub(crate) fn vendor_documents(
        &self,
        id: u64,
    ) -> Result<Vec<(crate::tables::Document, String)>, StorageError> {
        vendor_documents(self.read, id)
    }

    /// The manufacturer a verification document belongs to, if it still exists.
    pub(crate) fn document_owner(&self, document_id: u64) -> Result<Option<u64>, StorageError> {
        Ok(self
            .read
            .get(&DOCUMENTS, &document_id)?
            .map(|d| d.manufacturer_id))
    }

    /// Every product id of a manufacturer.
    pub(crate) fn products_of_manufacturer(&self, id: u64) -> Result<Vec<u64>, StorageError> {
        let mut ids = Vec::new();
        let mut after = None;
        loop {
            let rows =
                self.read
                    .scan(&PRODUCTS_BY_MANUFACTURER, &id, after.as_ref(), ID_SCAN_ROWS)?;
            let full = rows.len() == ID_SCAN_ROWS;
            after = rows.last().map(|(key, _)| *key);
            ids.extend(rows.into_iter().map(|((_, product), _)| product));
            if !full {
                return Ok(ids);
            }
        }
    }

    /// Every product id in a category or one of its descendants.
    pub(crate) fn products_under_category(&self, id: u64) -> Result<Vec<u64>, StorageError> {
        let mut categories = vec![id];
        categories.extend(catalog::category_descendants(self.read, id)?);
        let mut ids = Vec::new();
        for category in categories {
            let mut after = None;
            loop {
                let rows = self.read.scan(
                    &PRODUCTS_BY_CATEGORY,
                    &category,
                    after.as_ref(),
                    ID_SCAN_ROWS,
                )?;
                let full = rows.len() == ID_SCAN_ROWS;
                after = rows.last().map(|(key, _)| *key);
                ids.extend(rows.into_iter().map(|((_, product), _)| product));
                if !full {
                    break;
                }
            }
        }
        Ok(ids)
    }

    /// Ids of the tenant's `Active` products after `after`, at most `limit`.
    pub(crate) fn active_products(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<u64>, StorageError> {
        let code = ProductStatus::Active.code();
        let after_key = after.map(|a| (code, a));
        Ok(self
            .read
            .scan(&PRODUCTS_BY_STATUS, &code, after_key.as_ref(), limit)?
            .into_iter()
            .map(|((_, id), _)| id)
            .collect())
    }

    /// Every manufacturer of the tenant after `after`, at most `limit`.
    pub(crate) fn manufacturers_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Manufacturer>, StorageError> {
        Ok(self
            .read
            .scan(&MANUFACTURERS, &(), after.as_ref(), limit)?
            .into_iter()
            .map(|(_, m)| m)
            .collect())
    }
}

/// Most bytes of verification document text put into one vendor document.
pub(crate) const VENDOR_TEXT_BYTES_MAX: usize = 256 * 1024;

/// A manufacturer's vendor document: its profile and the text of its approved verification
/// documents ([`DocBuilder::vendor_text`]).
/// Manufacturer `id`'s verification documents (any status) that have extracted text, with the
/// text, in document id order.
pub(crate) fn vendor_documents(
    read: &TenantRead,
    id: u64,
) -> Result<Vec<(crate::tables::Document, String)>, StorageError> {
    let rows = read.scan(
        &DOCUMENTS_BY_MANUFACTURER,
        &id,
        None,
        crate::verification::actions::DOCUMENTS_PER_MANUFACTURER_MAX,
    )?;
    let mut documents = Vec::with_capacity(rows.len());
    for ((_, document_id), _) in rows {
        let Some(document) = read.get(&DOCUMENTS, &document_id)? else {
            continue;
        };
        if let Some(text) = read.get(&DOCUMENT_TEXT, &document_id)? {
            documents.push((document, text.0));
        }
    }
    Ok(documents)
}

pub(crate) fn vendor_doc(tenant: u64, m: &Manufacturer, text: String) -> VendorDoc {
    VendorDoc {
        tenant,
        id: m.id,
        name: m.name.clone(),
        country: m.country.as_str().to_owned(),
        verification: verification_name(m.verification).to_owned(),
        text,
    }
}

/// Products whose units sold moved waiting for the next sales refresh, at most this many; past
/// it the follower refreshes at once.
pub(crate) const DEFERRED_PRODUCTS_MAX: usize = 100_000;

/// What the change-log follower knows about product counters between two index commits.
///
/// Orders change stock rows of every product they name; rebuilding those documents at once
/// would cost the indexer more CPU than the writer spent on the order. Instead a stock-only
/// change is compared with the indexed document: a flip of `in_stock` rebuilds it at once (a
/// filter must not show sold-out products as available), a change of units sold only marks it
/// for the next sales refresh (best-selling order may lag by that interval), anything else is
/// skipped.
#[derive(Debug, Default)]
pub(crate) struct CounterState {
    /// Counters of documents staged since the last commit (`None`: deleted). The committed
    /// index does not show them yet.
    staged: HashMap<(u64, u64), Option<ProductCounters>>,
    /// Products whose units sold moved, per tenant.
    deferred: BTreeMap<TenantId, BTreeSet<u64>>,
    deferred_count: usize,
    /// What stock-only changes came to, since the follower started.
    pub(crate) outcomes: StockOutcomes,
}

/// Counts of stock-only product changes by what the indexer did with them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StockOutcomes {
    /// Neither `in_stock` nor units sold moved: nothing to do.
    pub skipped: u64,
    /// Only units sold moved: re-indexed at the next sales refresh.
    pub deferred: u64,
    /// `in_stock` flipped: re-indexed at once.
    pub reindexed: u64,
}

impl CounterState {
    /// The index committed: what was staged is now what lookups see.
    pub(crate) fn committed(&mut self) {
        self.staged.clear();
    }

    /// Products waiting for the sales refresh.
    pub(crate) fn deferred_count(&self) -> usize {
        self.deferred_count
    }

    /// Takes the deferred products, to be rebuilt now.
    pub(crate) fn take_deferred(&mut self) -> BTreeMap<TenantId, BTreeSet<u64>> {
        self.deferred_count = 0;
        std::mem::take(&mut self.deferred)
    }

    /// Puts products back for a later refresh (after a failed one).
    pub(crate) fn restore_deferred(&mut self, tenant: TenantId, ids: BTreeSet<u64>) {
        for id in ids {
            self.defer(tenant, id);
        }
    }

    fn defer(&mut self, tenant: TenantId, id: u64) {
        if self.deferred.entry(tenant).or_default().insert(id) {
            self.deferred_count += 1;
        }
    }

    fn record(&mut self, op: &IndexOp) {
        let (key, counters) = match op {
            IndexOp::UpsertProduct(doc) => (
                (doc.tenant, doc.id),
                Some(ProductCounters {
                    in_stock: doc.in_stock,
                    units_sold: doc.units_sold,
                }),
            ),
            IndexOp::DeleteProduct { tenant, id } => ((*tenant, *id), None),
            _ => return,
        };
        self.staged.insert(key, counters);
        if let Some(ids) = self.deferred.get_mut(&TenantId(key.0))
            && ids.remove(&key.1)
        {
            self.deferred_count -= 1;
        }
    }
}

/// Turns the stale ids of one tenant into index operations, read from `read` (a snapshot taken
/// after the entries that made them stale). Calls `emit` with chunks of at most
/// [`OPS_CHUNK_MAX`] operations.
///
/// With `counters` (the live follower), stock-only changes are checked against `index` first
/// (see [`CounterState`]); without (a rebuild catching up), they are rebuilt like any other.
pub(crate) fn resolve_stale(
    read: &TenantRead,
    stale: &Stale,
    mut counters: Option<(&mercato_index::ShardIndex, &mut CounterState)>,
    emit: &mut dyn FnMut(Vec<IndexOp>) -> Result<(), super::SearchError>,
) -> Result<(), super::SearchError> {
    let mut builder = DocBuilder::new(read);
    let tenant = builder.tenant;
    let mut products = stale.products.clone();
    let mut ops = Vec::new();
    for &m in &stale.manufacturers {
        ops.push(builder.vendor_op(m)?);
        products.extend(builder.products_of_manufacturer(m)?);
    }
    let mut vendors: BTreeSet<u64> = stale
        .vendors
        .iter()
        .copied()
        .filter(|m| !stale.manufacturers.contains(m))
        .collect();
    for &document in &stale.documents {
        if let Some(m) = builder.document_owner(document)?
            && !stale.manufacturers.contains(&m)
        {
            vendors.insert(m);
        }
    }
    for m in vendors {
        ops.push(builder.vendor_op(m)?);
    }
    for &c in &stale.categories {
        products.extend(builder.products_under_category(c)?);
    }
    for &id in &stale.stock_only {
        if products.contains(&id) {
            continue;
        }
        let Some((index, state)) = counters.as_mut() else {
            products.insert(id);
            continue;
        };
        let indexed = match state.staged.get(&(tenant, id)) {
            Some(staged) => *staged,
            None => index.product_counters(tenant, id)?,
        };
        // Not indexed: the product is not active (activation comes with a product row).
        let Some(indexed) = indexed else { continue };
        let now = builder.stock_counters(id)?;
        if now.in_stock != indexed.in_stock {
            state.outcomes.reindexed += 1;
            products.insert(id);
        } else if now.units_sold != indexed.units_sold {
            state.outcomes.deferred += 1;
            state.defer(TenantId(tenant), id);
        } else {
            state.outcomes.skipped += 1;
        }
    }
    for id in products {
        let op = builder.product_op(id)?;
        if let Some((_, state)) = counters.as_mut() {
            state.record(&op);
        }
        ops.push(op);
        if ops.len() >= OPS_CHUNK_MAX {
            emit(std::mem::take(&mut ops))?;
        }
    }
    if !ops.is_empty() {
        emit(ops)?;
    }
    Ok(())
}

/// The tenants whose data is on `shard`: those of the platform's tenant registry that map to
/// it, and those named by the shard's retained change log (tenants created outside the
/// registry, by tools and tests). The platform tenant holds no catalog and is left out.
pub(crate) fn tenants_of_shard<C: mercato_storage::Command>(
    storage: &Storage<C>,
    shard: ShardId,
) -> Result<BTreeSet<TenantId>, StorageError> {
    let mut tenants = BTreeSet::new();
    let platform = storage.read(PLATFORM_TENANT)?;
    let mut after = None;
    loop {
        let rows = platform.scan(&TENANT_REGISTRY, &(), after.as_ref(), ID_SCAN_ROWS)?;
        let full = rows.len() == ID_SCAN_ROWS;
        after = rows.last().map(|(id, _)| *id);
        tenants.extend(rows.into_iter().map(|(id, _)| TenantId(id)));
        if !full {
            break;
        }
    }
    let mut position = match storage.changes(shard, 0, 1) {
        Ok(_) => 0,
        Err(StorageError::ChangeLogTrimmed {
            first_available, ..
        }) => first_available.saturating_sub(1),
        Err(other) => return Err(other),
    };
    loop {
        let page = storage.changes(
            shard,
            position,
            mercato_storage::changelog::CHANGES_PAGE_MAX,
        )?;
        let Some(last) = page.entries.last().map(|e| e.lsn) else {
            break;
        };
        for entry in &page.entries {
            match &entry.kind {
                ChangeKind::Command { tenant, .. } => {
                    tenants.insert(*tenant);
                }
                ChangeKind::BucketImport { .. } | ChangeKind::BucketDrop { .. } => {
                    tenants.extend(entry.changes.iter().map(|row| row.tenant));
                }
            }
        }
        position = last;
    }
    tenants.remove(&PLATFORM_TENANT);
    tenants.retain(|t| storage.shard_of(*t) == shard);
    Ok(tenants)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mercato_storage::keys::KeyCodec;
    use mercato_storage::{BucketId, ChangedRow, Lsn};

    fn product_row(tenant: TenantId, id: u64) -> ChangedRow {
        let mut key = Vec::new();
        id.encode_key(&mut key);
        ChangedRow {
            tenant,
            table: PRODUCTS.id,
            key,
            deleted: false,
        }
    }

    fn entry(lsn: Lsn, kind: ChangeKind, changes: Vec<ChangedRow>) -> ChangeEntry {
        ChangeEntry { lsn, kind, changes }
    }

    #[test]
    fn imported_tenants_are_marked_until_a_later_drop() {
        let (a, b) = (TenantId(7), TenantId(8));
        let bucket = BucketId(1);
        let command = |tenant| ChangeKind::Command {
            tenant,
            command: Vec::new(),
        };
        let work = PageWork::of(&[
            entry(1, command(a), vec![product_row(a, 1)]),
            entry(
                2,
                ChangeKind::BucketImport { bucket },
                vec![product_row(b, 2)],
            ),
        ]);
        assert_eq!(work.imported_tenants, BTreeSet::from([b]));
        assert!(work.stale[&a].products.contains(&1));
        assert!(work.stale[&b].products.contains(&2));
        assert!(work.dropped_tenants.is_empty());

        // An abandoned copy: the drop removes what the import made stale, and the tenant is no
        // longer one this page imported.
        let work = PageWork::of(&[
            entry(
                1,
                ChangeKind::BucketImport { bucket },
                vec![product_row(b, 2)],
            ),
            entry(
                2,
                ChangeKind::BucketDrop { bucket },
                vec![product_row(b, 2)],
            ),
        ]);
        assert!(work.imported_tenants.is_empty());
        assert!(!work.stale.contains_key(&b));
        assert_eq!(work.dropped_tenants, BTreeSet::from([b]));
    }
}
