//! Catalog tables (ids 30..=59): settings, manufacturers, retailers, customer groups,
//! categories, products and price lists, with their secondary indexes.
//!
//! Secondary indexes are ordinary tables maintained by the same command that changes the
//! record they point at, so they are always consistent with it. Index rows whose value carries
//! nothing hold [`IndexMark`]; index rows that resolve to an id hold [`IdRef`].
//!
//! Record kinds: each record type uses the id of its primary table; [`IndexMark`] is 58 and
//! [`IdRef`] is 59 (table ids 58 and 59 are therefore never used for a table).
//!
//! Invariants the catalog keeps (checked on every write, relied on by inventory and orders):
//! - every [`Money`] of a tenant's catalog is in the tenant's [`CatalogSettings::currency`];
//! - prices are >= 0; `case_pack >= 1`; `min_order_qty >= 1` and a multiple of `case_pack`;
//! - tiers have strictly increasing `min_qty`, each >= 1;
//! - `(manufacturer_id, sku)` is unique ([`PRODUCT_BY_SKU`]).

use crate::money::{Currency, Money};
use mercato_storage::{Record, TableDef};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The tenant's catalog settings (one row; absent means [`CatalogSettings::default`]).
pub const CATALOG_SETTINGS: TableDef<(), CatalogSettings> = TableDef::new(30, "catalog_settings");
/// Manufacturers (vendors) by id.
pub const MANUFACTURERS: TableDef<u64, Manufacturer> = TableDef::new(31, "manufacturers");
/// Retailers (buyer companies) by id.
pub const RETAILERS: TableDef<u64, Retailer> = TableDef::new(32, "retailers");
/// Customer groups by id.
pub const CUSTOMER_GROUPS: TableDef<u64, CustomerGroup> = TableDef::new(33, "customer_groups");
/// Categories by id.
pub const CATEGORIES: TableDef<u64, Category> = TableDef::new(34, "categories");
/// Index: `(parent_id or 0 for a root, child_id)` for every category.
pub const CATEGORY_CHILDREN: TableDef<(u64, u64), IndexMark> =
    TableDef::new(35, "category_children");
/// Index: category slug (unique per tenant) -> category id.
pub const CATEGORY_BY_SLUG: TableDef<String, IdRef> = TableDef::new(36, "category_by_slug");
/// Products by id.
pub const PRODUCTS: TableDef<u64, Product> = TableDef::new(37, "products");
/// Index: `(manufacturer_id, sku)` -> product id. SKUs are unique per manufacturer.
pub const PRODUCT_BY_SKU: TableDef<(u64, String), IdRef> = TableDef::new(38, "product_by_sku");
/// Index: `(manufacturer_id, product_id)` for every product.
pub const PRODUCTS_BY_MANUFACTURER: TableDef<(u64, u64), IndexMark> =
    TableDef::new(39, "products_by_manufacturer");
/// Index: `(category_id, product_id)` for every product with a category.
pub const PRODUCTS_BY_CATEGORY: TableDef<(u64, u64), IndexMark> =
    TableDef::new(40, "products_by_category");
/// Index: `(status code, product_id)`, see [`ProductStatus::code`].
pub const PRODUCTS_BY_STATUS: TableDef<(u8, u64), IndexMark> =
    TableDef::new(41, "products_by_status");
/// Price lists: `(customer_group_id, product_id)` -> the group's price for the product.
pub const PRICE_LIST: TableDef<(u64, u64), PriceListEntry> = TableDef::new(42, "price_list");
/// Index: `(product_id, customer_group_id)` for every price-list entry (entries of a product).
pub const PRICE_LIST_BY_PRODUCT: TableDef<(u64, u64), IndexMark> =
    TableDef::new(43, "price_list_by_product");
/// Index: `(customer_group_id, retailer_id)` for every retailer in a group.
pub const RETAILERS_BY_GROUP: TableDef<(u64, u64), IndexMark> =
    TableDef::new(44, "retailers_by_group");

/// An index row that carries nothing but its key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexMark;

impl Record for IndexMark {
    const KIND: u16 = 58;
    const VERSION: u16 = 1;
}

/// An index row that resolves to a record id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRef(pub u64);

impl Record for IdRef {
    const KIND: u16 = 59;
    const VERSION: u16 = 1;
}

/// Catalog-wide settings of a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogSettings {
    /// The currency of every amount in the tenant's catalog. It can only change while the
    /// catalog holds no products, retailers or price-list entries.
    pub currency: Currency,
    /// When true (the default), a product can be set `Active` only if its manufacturer is
    /// `Verified`.
    pub require_verified_manufacturer_to_publish: bool,
}

impl Default for CatalogSettings {
    fn default() -> Self {
        CatalogSettings {
            currency: Currency::EUR,
            require_verified_manufacturer_to_publish: true,
        }
    }
}

impl Record for CatalogSettings {
    const KIND: u16 = 30;
    const VERSION: u16 = 1;
}

/// An ISO 3166-1 alpha-2 country code (two uppercase ASCII letters, e.g. `DE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CountryCode(pub [u8; 2]);

impl CountryCode {
    /// Parses a code such as `DE` (shape only: two uppercase ASCII letters).
    pub fn parse(code: &str) -> Option<CountryCode> {
        let array = <[u8; 2]>::try_from(code.as_bytes()).ok()?;
        array
            .iter()
            .all(u8::is_ascii_uppercase)
            .then_some(CountryCode(array))
    }

    pub fn as_str(&self) -> &str {
        if self.0.iter().all(u8::is_ascii_uppercase) {
            std::str::from_utf8(&self.0).unwrap_or("??")
        } else {
            "??"
        }
    }
}

impl std::fmt::Display for CountryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a manufacturer stands in verification. Only `Verified` manufacturers can publish
/// products (by tenant policy) and have their products ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VerificationStatus {
    Unverified,
    Pending,
    Verified,
    Rejected,
    Suspended,
}

/// A manufacturer (vendor) selling through the tenant's marketplace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manufacturer {
    pub id: u64,
    pub name: String,
    pub country: CountryCode,
    pub verification: VerificationStatus,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

impl Record for Manufacturer {
    const KIND: u16 = 31;
    const VERSION: u16 = 1;
}

/// When a retailer pays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PaymentTerms {
    Prepaid,
    Net15,
    Net30,
    Net60,
}

impl PaymentTerms {
    /// Days between invoice and due date (0 for prepaid).
    pub fn net_days(&self) -> u32 {
        match self {
            PaymentTerms::Prepaid => 0,
            PaymentTerms::Net15 => 15,
            PaymentTerms::Net30 => 30,
            PaymentTerms::Net60 => 60,
        }
    }
}

/// A shipping address of a retailer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// The retailer's name for it ("Main warehouse"); unique within the retailer.
    pub label: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    pub region: Option<String>,
    pub country: CountryCode,
}

/// A retailer (buyer company).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retailer {
    pub id: u64,
    pub name: String,
    /// The group whose price list applies to the retailer's orders.
    pub customer_group_id: Option<u64>,
    pub payment_terms: PaymentTerms,
    /// Upper bound on open (unpaid) invoice amounts, in the tenant's currency; >= 0.
    pub credit_limit: Money,
    /// Orders above this total wait for a buyer-approver; `None`: no approval needed.
    pub approval_threshold: Option<Money>,
    /// Shipping addresses, at most `catalog::RETAILER_ADDRESSES_MAX`.
    pub addresses: Vec<Address>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

impl Record for Retailer {
    const KIND: u16 = 32;
    const VERSION: u16 = 1;
}

/// A customer group: retailers sharing a price list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerGroup {
    pub id: u64,
    pub name: String,
    pub created_at_ms: u64,
}

impl Record for CustomerGroup {
    const KIND: u16 = 33;
    const VERSION: u16 = 1;
}

/// A node of the category tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    pub id: u64,
    /// `None` for a root category.
    pub parent: Option<u64>,
    pub name: String,
    /// URL-friendly name, unique per tenant (`[a-z0-9-]`).
    pub slug: String,
    /// Distance from the root (a root is 0); at most `catalog::CATEGORY_DEPTH_MAX - 1`.
    pub depth: u8,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

impl Record for Category {
    const KIND: u16 = 34;
    const VERSION: u16 = 1;
}

/// Lifecycle of a product. Only `Active` products can be ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ProductStatus {
    Draft,
    Active,
    Archived,
}

impl ProductStatus {
    /// The stable code used in [`PRODUCTS_BY_STATUS`] keys.
    pub fn code(self) -> u8 {
        match self {
            ProductStatus::Draft => 0,
            ProductStatus::Active => 1,
            ProductStatus::Archived => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProductStatus::Draft => "draft",
            ProductStatus::Active => "active",
            ProductStatus::Archived => "archived",
        }
    }

    pub fn parse(text: &str) -> Option<ProductStatus> {
        match text {
            "draft" => Some(ProductStatus::Draft),
            "active" => Some(ProductStatus::Active),
            "archived" => Some(ProductStatus::Archived),
            _ => None,
        }
    }
}

/// A volume price: from `min_qty` units on, each unit costs `unit_price`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceTier {
    pub min_qty: u32,
    pub unit_price: Money,
}

/// A product of a manufacturer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub id: u64,
    pub manufacturer_id: u64,
    /// 1..=64 characters of `[A-Za-z0-9._-]`; unique per manufacturer.
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category_id: Option<u64>,
    /// Free-form attributes (colour, material, ...), bounded in count and length.
    pub attributes: BTreeMap<String, String>,
    /// SHA-256 hashes of image blobs in the blob store, in display order.
    pub images: Vec<[u8; 32]>,
    pub status: ProductStatus,
    /// What one unit is: `each`, `case`, `kg`, ... (1..=16 characters of `[a-z0-9_]`).
    pub unit_of_measure: String,
    /// Units per case: order quantities must be multiples of it (>= 1).
    pub case_pack: u32,
    /// Smallest order quantity; >= 1 and a multiple of `case_pack`.
    pub min_order_qty: u32,
    /// Unit price without a price list and below the first tier.
    pub base_price: Money,
    /// Volume tiers, strictly increasing `min_qty`; the highest tier whose `min_qty` is at most
    /// the ordered quantity applies (see `catalog::resolve_unit_price`).
    pub tiers: Vec<PriceTier>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    /// 1 on creation, incremented by every change (ETags, optimistic concurrency).
    pub version: u64,
}

impl Record for Product {
    const KIND: u16 = 37;
    const VERSION: u16 = 1;
}

/// A customer group's price for one product: it replaces the product's base price and tiers
/// for retailers of the group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceListEntry {
    pub unit_price: Money,
    /// Volume tiers of the group, same rules as [`Product::tiers`].
    pub tiers: Vec<PriceTier>,
    pub updated_at_ms: u64,
}

impl Record for PriceListEntry {
    const KIND: u16 = 42;
    const VERSION: u16 = 1;
}
