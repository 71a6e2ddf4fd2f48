//! The index schema: every field of a shard index in one place, and the analyzers.
//!
//! One Tantivy index per shard holds products and vendors of every tenant of that shard; `scope`
//! ("p{tenant}" or "v{tenant}") tells them apart and is a required term of every query. Changing any field here changes
//! the schema: an index written before is refused with [`crate::IndexError::SchemaMismatch`]
//! and rebuilt from storage.

use tantivy::Index;
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RawTokenizer, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
};

/// Words split on anything that is not a letter or digit, lowercased, folded to ASCII where a
/// folding exists ("Säge" -> "sage"). No stemming: typo tolerance already covers most plurals,
/// and a stemmer would make the fuzzy distance apply to stems the user never typed.
pub(crate) const TEXT_TOKENIZER: &str = "mercato_text";
/// The whole value as one lowercased token (SKUs, normalized names, attribute pairs).
pub(crate) const KEYWORD_TOKENIZER: &str = "mercato_keyword";
/// The whole value as one token, unchanged (document keys, suggest terms).
pub(crate) const RAW_TOKENIZER: &str = "raw";

/// Longer words are dropped from the index and from queries (hashes, base64 and similar noise).
pub(crate) const TOKEN_BYTES_MAX: usize = 64;

/// Field handles, resolved once from the schema.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fields {
    /// "p{tenant}" for products, "v{tenant}" for vendors: one term filters tenant and kind.
    pub scope: Field,
    /// "p/{tenant}/{id}" or "v/{tenant}/{id}": the term an upsert or delete replaces.
    pub key: Field,
    /// The product or vendor id (fast field: read for every hit without touching the doc store).
    pub id: Field,
    /// Product or vendor name: searched (with a boost over `body`) and stored for snippets.
    pub name: Field,
    /// Everything else searchable: SKU, manufacturer, category path, attributes, description
    /// (vendors: country, verification status, document text). Kept apart from `name` so that a
    /// word is read from two disjoint posting lists rather than counted twice.
    pub body: Field,
    /// Product description: stored for snippets only (its words are in `body`).
    pub description: Field,
    /// Lowercased SKU, as typed and as normalized words: an exact SKU match ranks first.
    pub sku_exact: Field,
    /// The normalized name as one term: an exact name match ranks right after.
    pub name_exact: Field,
    pub manufacturer: Field,
    /// The product's category and all its ancestors.
    pub categories: Field,
    /// "key=value", lowercased.
    pub attributes: Field,
    /// Base price in minor units.
    pub price: Field,
    /// Pairs (customer group id, price as i64 bits) in insertion order: see [`crate::docs`].
    pub group_prices: Field,
    pub in_stock: Field,
    pub created_ms: Field,
    pub units_sold: Field,
    /// Tenant-prefixed name words and whole names: the typeahead dictionary.
    pub suggest: Field,
    /// Vendor document text (stored, capped, for snippets; the full text is in `body`).
    pub vendor_text: Field,
}

pub(crate) fn build_schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text_indexing = |tokenizer: &str, record: IndexRecordOption| {
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer)
            .set_index_option(record)
    };
    let indexed_text = |tokenizer: &str, record: IndexRecordOption| {
        TextOptions::default().set_indexing_options(text_indexing(tokenizer, record))
    };
    let keyword = indexed_text(KEYWORD_TOKENIZER, IndexRecordOption::Basic);
    let raw = indexed_text(RAW_TOKENIZER, IndexRecordOption::Basic);

    // Also a fast field: a query whose scope holds most of the index checks it per hit instead
    // of intersecting with its (long) posting list (see `plan::ScopeCheck`).
    let scope = builder.add_text_field("scope", raw.clone().set_fast(RAW_TOKENIZER));
    let key = builder.add_text_field("key", raw.clone());
    let id = builder.add_u64_field("id", FAST);
    let name = builder.add_text_field(
        "name",
        indexed_text(TEXT_TOKENIZER, IndexRecordOption::WithFreqsAndPositions).set_stored(),
    );
    let body = builder.add_text_field(
        "body",
        indexed_text(TEXT_TOKENIZER, IndexRecordOption::WithFreqsAndPositions),
    );
    let description = builder.add_text_field("description", STORED);
    let sku_exact = builder.add_text_field("sku_exact", keyword.clone());
    let name_exact = builder.add_text_field("name_exact", keyword.clone());
    let manufacturer = builder.add_u64_field("manufacturer", INDEXED | FAST);
    let categories = builder.add_u64_field("categories", INDEXED | FAST);
    let attributes = builder.add_text_field("attributes", keyword);
    let price = builder.add_i64_field("price", FAST);
    let group_prices = builder.add_u64_field("group_prices", FAST);
    let in_stock = builder.add_bool_field("in_stock", INDEXED);
    let created_ms = builder.add_u64_field("created_ms", FAST);
    let units_sold = builder.add_u64_field("units_sold", FAST);
    let suggest = builder.add_text_field("suggest", raw);
    let vendor_text = builder.add_text_field("vendor_text", STORED);
    let fields = Fields {
        scope,
        key,
        id,
        name,
        body,
        description,
        sku_exact,
        name_exact,
        manufacturer,
        categories,
        attributes,
        price,
        group_prices,
        in_stock,
        created_ms,
        units_sold,
        suggest,
        vendor_text,
    };
    (builder.build(), fields)
}

/// The analyzer of searchable text, for documents and queries alike.
pub(crate) fn text_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(TOKEN_BYTES_MAX))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

fn keyword_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(RawTokenizer::default())
        .filter(LowerCaser)
        .build()
}

/// Tokenizers are not persisted with the index: every open registers them again.
pub(crate) fn register_tokenizers(index: &Index) {
    index.tokenizers().register(TEXT_TOKENIZER, text_analyzer());
    index
        .tokenizers()
        .register(KEYWORD_TOKENIZER, keyword_analyzer());
}

/// The analyzed words of `text`, in order.
pub(crate) fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while let Some(token) = stream.next() {
        out.push(token.text.clone());
    }
    out
}

/// The words of `text` joined by single spaces: the form exact-name matching compares.
pub(crate) fn normalize(analyzer: &mut TextAnalyzer, text: &str) -> String {
    tokens(analyzer, text).join(" ")
}

/// `text` cut to at most `bytes_max` bytes at a character boundary.
pub(crate) fn truncate(text: &str, bytes_max: usize) -> &str {
    if text.len() <= bytes_max {
        return text;
    }
    let mut end = bytes_max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
