//! The B2B catalog: manufacturers (vendors), retailers (buyer companies), customer groups,
//! the category tree, products with volume tiers, and per-group price lists.
//!
//! Every change is one [`CatalogAction`] applied inside a [`Command`](crate::Command); the
//! records and tables are in [`crate::tables::catalog`]. Reads go through a snapshot and the
//! functions here take any `TenantReads`, so the inventory and
//! orders domains can call them from their own `apply` (on their write handle) as well as the
//! engine from a read snapshot.
//!
//! Submodules: [`validate`] (pure input checks and their bounds), `parties` (manufacturers,
//! retailers, customer groups), `categories`, `products` (products, statuses, price lists,
//! listing), [`pricing`] ([`resolve_unit_price`]) and [`csv_io`] (bulk import and export).
//!
//! Authorization (who may verify a manufacturer, which manufacturer a user may edit) is the
//! server's job: the engine records the actor in the audit log but does not know roles.
//!
//! ```no_run
//! # async fn demo(engine: &mercato_engine::Engine) -> Result<(), mercato_engine::EngineError> {
//! use mercato_engine::catalog::ManufacturerInput;
//! use mercato_engine::tables::{CountryCode, VerificationStatus};
//! use mercato_engine::{Actor, TenantId};
//! let t = TenantId(1);
//! let m = engine
//!     .create_manufacturer(t, Actor::System, ManufacturerInput {
//!         name: "Acme Tools".into(),
//!         country: CountryCode::parse("DE").unwrap(),
//!     })
//!     .await?;
//! engine
//!     .set_manufacturer_verification(t, Actor::Platform, m.id, VerificationStatus::Verified)
//!     .await?;
//! # Ok(()) }
//! ```

mod categories;
pub mod csv_io;
mod parties;
pub mod pricing;
mod products;
pub mod validate;

pub use self::categories::{
    CategoryPathItem, category, category_children, category_descendants, category_path,
    list_categories,
};
pub use self::csv_io::{
    ExportReport, IMPORT_BATCH_ROWS, IMPORT_BYTES_MAX, IMPORT_ERRORS_MAX, IMPORT_ROWS_MAX,
    ImportBatch, ImportMode, ImportPhase, ImportProgress, ImportReport, ImportRowError,
};
pub use self::parties::{
    customer_group, list_customer_groups, list_manufacturers, list_retailers, manufacturer,
    retailer,
};
pub use self::pricing::{price_for_group, resolve_unit_price};
pub use self::products::{
    ProductQuery, list_price_list, list_products, list_products_ordered, price_list_entry, product,
    product_by_sku,
};
pub use self::validate::{
    ADDRESS_FIELD_BYTES_MAX, ATTRIBUTE_NAME_CHARS_MAX, ATTRIBUTE_VALUE_BYTES_MAX, ATTRIBUTES_MAX,
    CATEGORIES_MAX, CATEGORY_DEPTH_MAX, DESCRIPTION_BYTES_MAX, IMAGES_MAX, LIST_SCAN_MAX,
    NAME_BYTES_MAX, PAGE_LIMIT_MAX, PRICE_MINOR_MAX, QUANTITY_MAX, RETAILER_ADDRESSES_MAX,
    SKU_CHARS_MAX, SLUG_CHARS_MAX, TIERS_MAX, UNIT_OF_MEASURE_CHARS_MAX, UPSERT_BATCH_MAX,
};

use crate::command::{Applied, Ctx, Rejection};
use crate::money::Money;
use crate::tables::{
    CATALOG_SETTINGS, CatalogSettings, Category, CountryCode, CustomerGroup, Manufacturer,
    PaymentTerms, PriceListEntry, PriceTier, Product, ProductStatus, Retailer, VerificationStatus,
};
use mercato_storage::{StorageError, TenantReads};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a manufacturer is made of, as given by the caller (create and full update).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManufacturerInput {
    pub name: String,
    pub country: CountryCode,
}

/// A retailer as given by the caller (create and full update). Amounts are in the tenant's
/// currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetailerInput {
    pub name: String,
    pub customer_group_id: Option<u64>,
    pub payment_terms: PaymentTerms,
    pub credit_limit: Money,
    pub approval_threshold: Option<Money>,
    pub addresses: Vec<crate::tables::Address>,
}

/// A new category.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryInput {
    pub parent: Option<u64>,
    pub name: String,
    pub slug: String,
}

/// A product as given by the caller (create and full update). The status is not part of it:
/// it changes through [`CatalogAction::SetProductStatus`], which applies the publishing rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductInput {
    pub manufacturer_id: u64,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category_id: Option<u64>,
    pub attributes: BTreeMap<String, String>,
    pub images: Vec<[u8; 32]>,
    pub unit_of_measure: String,
    pub case_pack: u32,
    pub min_order_qty: u32,
    pub base_price: Money,
    pub tiers: Vec<PriceTier>,
}

/// One row of a bulk upsert, keyed by `(manufacturer_id, sku)`. `None` fields keep the existing
/// product's value, or take the default for a new product (`name` and `base_price` are required
/// for a new one). `status: None` keeps the status (new products start as `Draft`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductUpsert {
    pub manufacturer_id: u64,
    pub sku: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub category_id: Option<Option<u64>>,
    pub attributes: Option<BTreeMap<String, String>>,
    pub images: Option<Vec<[u8; 32]>>,
    pub unit_of_measure: Option<String>,
    pub case_pack: Option<u32>,
    pub min_order_qty: Option<u32>,
    pub base_price: Option<Money>,
    pub tiers: Option<Vec<PriceTier>>,
    pub status: Option<ProductStatus>,
}

/// Every change the catalog knows. Variants are only ever added at the end (postcard encodes
/// the variant index in the change log).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatalogAction {
    /// Replaces the tenant's catalog settings. The currency can change only while the catalog
    /// holds no products, retailers or price-list entries.
    SetSettings(CatalogSettings),
    CreateManufacturer(ManufacturerInput),
    UpdateManufacturer {
        id: u64,
        input: ManufacturerInput,
    },
    SetManufacturerVerification {
        id: u64,
        status: VerificationStatus,
    },
    CreateCustomerGroup {
        name: String,
    },
    RenameCustomerGroup {
        id: u64,
        name: String,
    },
    CreateRetailer(RetailerInput),
    UpdateRetailer {
        id: u64,
        input: RetailerInput,
    },
    CreateCategory(CategoryInput),
    /// Renames a category and sets its slug (which must stay unique).
    RenameCategory {
        id: u64,
        name: String,
        slug: String,
    },
    /// Moves a category (with its subtree) under another parent, or to the root.
    MoveCategory {
        id: u64,
        parent: Option<u64>,
    },
    /// Creates a product in `Draft`.
    CreateProduct(ProductInput),
    /// Replaces a product's fields; with `expected_version`, refuses if the product changed.
    UpdateProduct {
        id: u64,
        expected_version: Option<u64>,
        input: ProductInput,
    },
    SetProductStatus {
        id: u64,
        expected_version: Option<u64>,
        status: ProductStatus,
    },
    /// Creates or replaces a customer group's price for a product.
    SetPriceListEntry {
        group_id: u64,
        product_id: u64,
        unit_price: Money,
        tiers: Vec<PriceTier>,
    },
    RemovePriceListEntry {
        group_id: u64,
        product_id: u64,
    },
    /// Creates or updates products by `(manufacturer_id, sku)`: one batch of a bulk import,
    /// at most [`UPSERT_BATCH_MAX`] rows, all or nothing.
    UpsertProducts {
        rows: Vec<ProductUpsert>,
    },
}

/// What a catalog command returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogOutput {
    Settings(CatalogSettings),
    Manufacturer(Manufacturer),
    CustomerGroup(CustomerGroup),
    Retailer(Retailer),
    Category(Category),
    Product(Product),
    PriceListEntry(PriceListEntry),
    PriceListEntryRemoved,
    Upserted { created: u32, updated: u32 },
}

/// The direction of a list in id order. Ids are allocated in creation order, so `Descending`
/// is newest first; either way a cursor (the last id of a page) stays valid while rows are
/// added, since new ids only go at the ascending end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IdOrder {
    #[default]
    Ascending,
    Descending,
}

/// A page of a list, in id order, and where to continue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `after` for the next page (in a descending list: the id to continue below);
    /// `None` when there is nothing after this page.
    pub next_after: Option<u64>,
}

/// The tenant's catalog settings (the defaults when never set).
pub fn settings(read: &impl TenantReads) -> Result<CatalogSettings, StorageError> {
    Ok(read.get(&CATALOG_SETTINGS, &())?.unwrap_or_default())
}

pub(crate) fn apply(action: &CatalogAction, ctx: &mut Ctx<'_, '_>) -> Applied<CatalogOutput> {
    match action {
        CatalogAction::SetSettings(s) => parties::apply_set_settings(ctx, s),
        CatalogAction::CreateManufacturer(input) => parties::apply_create_manufacturer(ctx, input),
        CatalogAction::UpdateManufacturer { id, input } => {
            parties::apply_update_manufacturer(ctx, *id, input)
        }
        CatalogAction::SetManufacturerVerification { id, status } => {
            parties::apply_set_verification(ctx, *id, *status)
        }
        CatalogAction::CreateCustomerGroup { name } => parties::apply_create_group(ctx, name),
        CatalogAction::RenameCustomerGroup { id, name } => {
            parties::apply_rename_group(ctx, *id, name)
        }
        CatalogAction::CreateRetailer(input) => parties::apply_create_retailer(ctx, input),
        CatalogAction::UpdateRetailer { id, input } => {
            parties::apply_update_retailer(ctx, *id, input)
        }
        CatalogAction::CreateCategory(input) => categories::apply_create(ctx, input),
        CatalogAction::RenameCategory { id, name, slug } => {
            categories::apply_rename(ctx, *id, name, slug)
        }
        CatalogAction::MoveCategory { id, parent } => categories::apply_move(ctx, *id, *parent),
        CatalogAction::CreateProduct(input) => products::apply_create(ctx, input),
        CatalogAction::UpdateProduct {
            id,
            expected_version,
            input,
        } => products::apply_update(ctx, *id, *expected_version, input),
        CatalogAction::SetProductStatus {
            id,
            expected_version,
            status,
        } => products::apply_set_status(ctx, *id, *expected_version, *status),
        CatalogAction::SetPriceListEntry {
            group_id,
            product_id,
            unit_price,
            tiers,
        } => products::apply_set_price(ctx, *group_id, *product_id, *unit_price, tiers),
        CatalogAction::RemovePriceListEntry {
            group_id,
            product_id,
        } => products::apply_remove_price(ctx, *group_id, *product_id),
        CatalogAction::UpsertProducts { rows } => products::apply_upsert(ctx, rows),
    }
}

/// `NotFound` for a catalog resource.
pub(crate) fn not_found(resource: &'static str, id: impl ToString) -> Rejection {
    Rejection::NotFound {
        resource,
        id: id.to_string(),
    }
}

/// One page of a table keyed by id, in id order.
pub(crate) fn list_by_id<V: mercato_storage::Record>(
    read: &impl TenantReads,
    table: &mercato_storage::TableDef<u64, V>,
    after: Option<u64>,
    limit: usize,
) -> Result<Page<V>, StorageError> {
    let limit = validate::page_limit(limit);
    let mut rows = read.scan(table, &(), after.as_ref(), limit + 1)?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_after = if more {
        rows.last().map(|(id, _)| *id)
    } else {
        None
    };
    Ok(Page {
        items: rows.into_iter().map(|(_, v)| v).collect(),
        next_after,
    })
}

/// Turns a validation result into a command result.
pub(crate) fn checked<T>(result: Result<T, Rejection>) -> Applied<T> {
    result.map_err(mercato_storage::ApplyError::Rejected)
}

impl crate::Engine {
    /// Runs one catalog action and returns its output.
    pub(crate) async fn run_catalog(
        &self,
        tenant: crate::TenantId,
        actor: crate::Actor,
        action: CatalogAction,
    ) -> Result<CatalogOutput, crate::EngineError> {
        match self
            .run(tenant, actor, crate::Action::Catalog(action))
            .await?
        {
            crate::CommandOutput::Catalog(output) => Ok(output),
            other => Err(unexpected(other)),
        }
    }

    /// The tenant's catalog settings (defaults when never set).
    pub fn catalog_settings(
        &self,
        tenant: crate::TenantId,
    ) -> Result<CatalogSettings, crate::EngineError> {
        Ok(settings(&self.storage.read(tenant)?)?)
    }

    /// Replaces the tenant's catalog settings.
    pub async fn set_catalog_settings(
        &self,
        tenant: crate::TenantId,
        actor: crate::Actor,
        settings: CatalogSettings,
    ) -> Result<CatalogSettings, crate::EngineError> {
        match self
            .run_catalog(tenant, actor, CatalogAction::SetSettings(settings))
            .await?
        {
            CatalogOutput::Settings(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }
}

pub(crate) fn unexpected(output: impl std::fmt::Debug) -> crate::EngineError {
    crate::EngineError::UnexpectedOutput(format!("{output:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use crate::tables::{SEQUENCES, Sequence};
    use crate::{Actor, Engine, EngineConfig, EngineError, TenantId};
    use mercato_storage::{ApplyError, Record, StorageConfig, TenantWrite};

    const T: TenantId = TenantId(9);

    /// Sets an id sequence behind the engine's back (to reach a bound without creating ten
    /// thousand rows).
    #[derive(Serialize, Deserialize)]
    struct SetSequence {
        tenant: TenantId,
        name: String,
        value: u64,
    }
    impl Record for SetSequence {
        const KIND: u16 = 60_001;
        const VERSION: u16 = 1;
    }
    impl mercato_storage::Command for SetSequence {
        type Output = ();
        type Rejection = ();
        fn tenant(&self) -> TenantId {
            self.tenant
        }
        fn apply(&self, tx: &mut TenantWrite<'_>) -> Result<(), ApplyError<()>> {
            Ok(tx.put(&SEQUENCES, &self.name, &Sequence(self.value))?)
        }
    }

    fn category(slug: &str) -> CategoryInput {
        CategoryInput {
            parent: None,
            name: slug.into(),
            slug: slug.into(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_category_count_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        {
            let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
            engine.create_tenant(T, "Bounded").await.unwrap();
            engine
                .create_category(T, Actor::System, category("first"))
                .await
                .unwrap();
            engine.shutdown().unwrap();
        }
        {
            let storage =
                mercato_storage::Storage::<SetSequence>::open(StorageConfig::new(dir.path()))
                    .unwrap();
            storage
                .execute_blocking(SetSequence {
                    tenant: T,
                    name: "category".into(),
                    value: CATEGORIES_MAX,
                })
                .unwrap();
            storage.close().unwrap();
        }
        let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
        match engine
            .create_category(T, Actor::System, category("one-too-many"))
            .await
        {
            Err(EngineError::Rejected(Rejection::Conflict { code, .. })) => {
                assert_eq!(code, "category_limit")
            }
            other => panic!("expected the category bound, got {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_malformed_currency_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
        engine.create_tenant(T, "Currency").await.unwrap();
        // `Currency::parse` cannot build it; a decoded action can.
        let bad: Currency = postcard::from_bytes(b"eur").unwrap();
        assert!(!bad.is_valid());
        let settings = CatalogSettings {
            currency: bad,
            require_verified_manufacturer_to_publish: true,
        };
        match engine
            .set_catalog_settings(T, Actor::System, settings)
            .await
        {
            Err(EngineError::Rejected(Rejection::InvalidField { field, .. })) => {
                assert_eq!(field, "currency")
            }
            other => panic!("expected an invalid currency, got {other:?}"),
        }
        assert_eq!(bad.as_str(), "???");
    }
}
