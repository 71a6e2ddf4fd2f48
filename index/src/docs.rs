//! What the index is fed: [`ProductDoc`], [`VendorDoc`] and the [`IndexOp`]s that carry them,
//! and how each becomes a Tantivy document.

use tantivy::TantivyDocument;
use tantivy::Term;
use tantivy::tokenizer::TextAnalyzer;

use crate::schema::{self, Fields};

/// Searchable text is cut to these sizes before indexing (the storage side has its own, usually
/// smaller, bounds; these keep one odd record from bloating a segment).
pub const NAME_BYTES_MAX: usize = 1024;
pub const SKU_BYTES_MAX: usize = 256;
pub const DESCRIPTION_BYTES_MAX: usize = 64 * 1024;
pub const CATEGORY_PATH_BYTES_MAX: usize = 4096;
pub const ATTRIBUTE_BYTES_MAX: usize = 512;
/// Attributes and group prices past these counts are not indexed.
pub const ATTRIBUTES_MAX: usize = 200;
pub const GROUP_PRICES_MAX: usize = 1000;
pub const CATEGORY_IDS_MAX: usize = 64;
/// Vendor document text: indexed up to the first bound, stored (for snippets) up to the second.
pub const VENDOR_TEXT_BYTES_MAX: usize = 1024 * 1024;
pub const VENDOR_TEXT_STORED_BYTES_MAX: usize = 64 * 1024;
/// Suggest terms (tenant prefix included) are cut to this size.
pub(crate) const SUGGEST_TERM_BYTES_MAX: usize = 160;

/// One product as the index sees it. The engine builds it from the catalog; everything here is
/// denormalized so that a query never reads storage.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProductDoc {
    pub tenant: u64,
    pub id: u64,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub manufacturer_id: u64,
    pub manufacturer_name: String,
    /// The product's category and all its ancestors: filtering on a category finds the products
    /// of its descendants, and facet counts of a parent include its descendants.
    pub category_ids: Vec<u64>,
    /// "Tools > Hand tools > Hammers" (searchable text).
    pub category_path: String,
    /// Searchable as "key value"; filterable as key=value (case-insensitive).
    pub attributes: Vec<(String, String)>,
    /// Base price in minor units.
    pub price_minor: i64,
    /// (customer group id, price in minor units) from the tenant's price lists.
    pub group_prices: Vec<(u64, i64)>,
    pub in_stock: bool,
    pub created_ms: u64,
    pub units_sold: u64,
}

/// One vendor (manufacturer) for reviewers: profile fields and the extracted text of its
/// verification documents.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VendorDoc {
    pub tenant: u64,
    pub id: u64,
    pub name: String,
    pub country: String,
    pub verification: String,
    /// Extracted document text.
    pub text: String,
}

/// One change to stage with [`crate::ShardIndex::apply`].
#[derive(Clone, Debug, PartialEq)]
pub enum IndexOp {
    /// Insert or replace the product (tenant, id).
    UpsertProduct(ProductDoc),
    DeleteProduct {
        tenant: u64,
        id: u64,
    },
    /// Insert or replace the vendor (tenant, id).
    UpsertVendor(VendorDoc),
    DeleteVendor {
        tenant: u64,
        id: u64,
    },
    /// Remove every product and vendor of the tenant (the tenant's bucket moved away, or the
    /// tenant is gone).
    DeleteTenant {
        tenant: u64,
    },
}

pub(crate) fn product_scope(tenant: u64) -> String {
    format!("p{tenant}")
}

pub(crate) fn vendor_scope(tenant: u64) -> String {
    format!("v{tenant}")
}

pub(crate) fn product_key(fields: &Fields, tenant: u64, id: u64) -> Term {
    Term::from_field_text(fields.key, &format!("p/{tenant}/{id}"))
}

pub(crate) fn vendor_key(fields: &Fields, tenant: u64, id: u64) -> Term {
    Term::from_field_text(fields.key, &format!("v/{tenant}/{id}"))
}

/// The tenant part of every suggest term: fixed width, so one tenant's terms are one contiguous
/// range of the term dictionary and a prefix scan cannot reach another tenant's.
pub(crate) fn suggest_tenant_prefix(tenant: u64) -> String {
    format!("{tenant:016x}")
}

/// Suggest term kinds, after the tenant prefix.
pub(crate) const SUGGEST_WORD: char = 'w';
pub(crate) const SUGGEST_NAME: char = 'n';

pub(crate) fn suggest_term(tenant: u64, kind: char, text: &str) -> String {
    let mut term = suggest_tenant_prefix(tenant);
    term.push(kind);
    term.push_str(text);
    schema::truncate(&term, SUGGEST_TERM_BYTES_MAX).to_string()
}

/// Group prices are stored as a flat list of u64 pairs in one multi-valued fast field. Tantivy
/// keeps the values of one document in insertion order (numeric columns are not sorted within a
/// row, also across merges: see the `group_prices_survive_a_merge` test), so pairs stay intact.
pub(crate) fn encode_group_price(price_minor: i64) -> u64 {
    price_minor as u64
}

pub(crate) fn decode_group_price(bits: u64) -> i64 {
    bits as i64
}

pub(crate) fn product_document(
    fields: &Fields,
    analyzer: &mut TextAnalyzer,
    product: &ProductDoc,
) -> TantivyDocument {
    let name = schema::truncate(&product.name, NAME_BYTES_MAX);
    let sku = schema::truncate(product.sku.trim(), SKU_BYTES_MAX);
    let description = schema::truncate(&product.description, DESCRIPTION_BYTES_MAX);
    let category_path = schema::truncate(&product.category_path, CATEGORY_PATH_BYTES_MAX);

    let mut doc = TantivyDocument::default();
    doc.add_text(fields.scope, product_scope(product.tenant));
    doc.add_text(fields.key, format!("p/{}/{}", product.tenant, product.id));
    doc.add_u64(fields.id, product.id);

    doc.add_text(fields.name, name);
    doc.add_text(fields.body, sku);
    doc.add_text(fields.body, &product.manufacturer_name);
    doc.add_text(fields.body, category_path);
    for (key, value) in product.attributes.iter().take(ATTRIBUTES_MAX) {
        let key = schema::truncate(key, ATTRIBUTE_BYTES_MAX);
        let value = schema::truncate(value, ATTRIBUTE_BYTES_MAX);
        doc.add_text(fields.body, format!("{key} {value}"));
        doc.add_text(fields.attributes, attribute_pair(key, value));
    }
    doc.add_text(fields.body, description);
    doc.add_text(fields.description, description);
    if !sku.is_empty() {
        doc.add_text(fields.sku_exact, sku);
        let sku_words = schema::normalize(analyzer, sku);
        if !sku_words.is_empty() && sku_words != sku.to_lowercase() {
            doc.add_text(fields.sku_exact, sku_words);
        }
    }
    let name_words = schema::tokens(analyzer, name);
    if !name_words.is_empty() {
        doc.add_text(fields.name_exact, name_words.join(" "));
        doc.add_text(
            fields.suggest,
            suggest_term(product.tenant, SUGGEST_NAME, &name_words.join(" ")),
        );
        let mut seen: Vec<&str> = Vec::with_capacity(name_words.len());
        for word in &name_words {
            if !seen.contains(&word.as_str()) {
                seen.push(word);
                doc.add_text(
                    fields.suggest,
                    suggest_term(product.tenant, SUGGEST_WORD, word),
                );
            }
        }
    }

    doc.add_u64(fields.manufacturer, product.manufacturer_id);
    let mut categories: Vec<u64> = product
        .category_ids
        .iter()
        .copied()
        .take(CATEGORY_IDS_MAX)
        .collect();
    categories.sort_unstable();
    categories.dedup();
    for category in categories {
        doc.add_u64(fields.categories, category);
    }
    doc.add_i64(fields.price, product.price_minor);
    for &(group, price) in product.group_prices.iter().take(GROUP_PRICES_MAX) {
        doc.add_u64(fields.group_prices, group);
        doc.add_u64(fields.group_prices, encode_group_price(price));
    }
    doc.add_bool(fields.in_stock, product.in_stock);
    doc.add_u64(fields.created_ms, product.created_ms);
    doc.add_u64(fields.units_sold, product.units_sold);
    doc
}

pub(crate) fn vendor_document(fields: &Fields, vendor: &VendorDoc) -> TantivyDocument {
    let name = schema::truncate(&vendor.name, NAME_BYTES_MAX);
    let text = schema::truncate(&vendor.text, VENDOR_TEXT_BYTES_MAX);
    let mut doc = TantivyDocument::default();
    doc.add_text(fields.scope, vendor_scope(vendor.tenant));
    doc.add_text(fields.key, format!("v/{}/{}", vendor.tenant, vendor.id));
    doc.add_u64(fields.id, vendor.id);
    doc.add_text(fields.name, name);
    doc.add_text(
        fields.body,
        schema::truncate(&vendor.country, NAME_BYTES_MAX),
    );
    doc.add_text(
        fields.body,
        schema::truncate(&vendor.verification, NAME_BYTES_MAX),
    );
    doc.add_text(fields.body, text);
    doc.add_text(
        fields.vendor_text,
        schema::truncate(text, VENDOR_TEXT_STORED_BYTES_MAX),
    );
    doc
}

/// The attribute filter term: "key=value", trimmed; the keyword analyzer lowercases it.
pub(crate) fn attribute_pair(key: &str, value: &str) -> String {
    format!("{}={}", key.trim(), value.trim())
}
