//! Search and discovery: one Tantivy index per shard ([`mercato_index::ShardIndex`]), fed by an
//! indexer thread per shard that follows the shard's change log, and the queries the server
//! answers from it.
//!
//! Architecture invariant: nothing on the request path writes the index. A write is searchable
//! once the shard's indexer has read its change-log entry, rebuilt the documents it made stale
//! from a storage snapshot and committed (every [`SearchConfig::refresh_interval`], default
//! 250 ms), so within about a second of the write's acknowledgement.
//!
//! What is indexed, and decisions worth knowing:
//! - products are indexed only while `Active`: drafts and archived products are deleted from
//!   the index, so every hit is a product a buyer may see and order; the catalog routes remain
//!   the way to find unpublished products;
//! - a product's document carries its manufacturer's name, its category's ancestors and path,
//!   its customer-group prices (price lists) and whether any warehouse has units available;
//!   a change to any of those rows re-indexes the products concerned (see `documents`);
//! - manufacturers are indexed as vendor documents (name, country, verification status and the
//!   extracted text of every verification document, pending ones included), for reviewers and
//!   tenant admins;
//! - per-tenant synonyms and stop words ([`SearchSettings`]) live in the tenant's shard (table
//!   [`SEARCH_SETTINGS`], written by [`SearchAction::SetSettings`] through the ordinary write
//!   path) and apply at query time, so changing them needs no re-indexing;
//! - `units_sold` is the product's units sold summed over its stock rows (warehouses); it is
//!   re-indexed at [`SearchConfig::sales_refresh_interval`], so the best-selling order lags
//!   sales by up to that interval.
//!
//! Start it with [`Engine::start_search`] after opening the engine; [`Engine::shutdown`] stops
//! it. `mercato reindex` uses [`Engine::rebuild_search_index`] on a closed data directory;
//! [`Engine::request_reindex`] rebuilds in the background while the server answers from the old
//! index, then swaps.
//!
//! ```no_run
//! use mercato_engine::search::{ProductSearch, SearchConfig};
//! use mercato_engine::{Engine, EngineConfig};
//! use mercato_engine::TenantId;
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::open(EngineConfig::new("./mercato-data"))?;
//! engine.start_search(SearchConfig::default())?;
//! let session = engine.login(TenantId(1), "buyer@acme.example", "a long password").await?;
//! let principal = session.principal;
//! let results = engine.search_products(&principal, &ProductSearch::text("claw hammer"))?;
//! println!("{} products", results.total);
//! engine.shutdown()?;
//! # Ok(()) }
//! ```

mod documents;
mod indexer;

pub(crate) use self::documents::tenants_of_shard;
pub use self::documents::{StockOutcomes, verification_name};
pub use self::indexer::{
    CURRENT_FILE_NAME, INDEX_DIR_NAME, RebuildProgress, RebuildReport, ShardSearchStatus,
};
pub use mercato_index::{FacetCount, IndexError, PriceBand, ProductSort};

use self::indexer::SearchService;
use crate::accounts::{self, Permission, Principal, Role};
use crate::command::{Applied, Ctx, Rejection, reject};
use crate::money::{Currency, Money};
use crate::tables::{DocumentStatus, Manufacturer, VerificationStatus};
use crate::{Action, CommandOutput, Engine, EngineError, catalog};
use mercato_index::{ProductQuery, ShardIndex, VendorQuery};
use mercato_storage::{Lsn, ShardId, StorageError, TenantReads};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::tables::{SEARCH_SETTINGS, SearchSettings};

/// Change-log reader name of the indexers.
pub const READER_NAME: &str = "search";
/// Change-log reader name that holds the log for a rebuild in progress.
pub const REBUILD_READER_NAME: &str = "search-rebuild";

/// Default time between index commits while writes arrive.
pub const REFRESH_INTERVAL_DEFAULT: Duration = Duration::from_millis(250);
/// Bounds of [`SearchConfig::refresh_interval`].
pub const REFRESH_INTERVAL_MIN: Duration = Duration::from_millis(10);
pub const REFRESH_INTERVAL_MAX: Duration = Duration::from_secs(10);
/// Default Tantivy writer heap per shard index.
pub const WRITER_HEAP_BYTES_DEFAULT: usize = 64 << 20;
/// Bounds of [`SearchConfig::writer_heap_bytes`] (Tantivy needs at least 15 MB per writer).
pub const WRITER_HEAP_BYTES_MIN: usize = 15 << 20;
pub const WRITER_HEAP_BYTES_MAX: usize = 1 << 30;

/// Largest page of hits.
pub const SEARCH_LIMIT_MAX: usize = 100;
/// Default page of hits.
pub const SEARCH_LIMIT_DEFAULT: usize = 20;
/// Deepest result reachable by paging: `offset + limit` at most this.
pub const SEARCH_DEPTH_MAX: usize = 10_000;
/// Longest query text, in bytes.
pub const QUERY_TEXT_BYTES_MAX: usize = 512;
/// Most `attr=key:value` filters of one query.
pub const ATTRIBUTE_FILTERS_MAX: usize = 16;
/// Most manufacturer filters of one query.
pub const MANUFACTURER_FILTERS_MAX: usize = 64;
/// Most price-band edges of one query.
pub const PRICE_BAND_EDGES_MAX: usize = 16;
/// Price-band edges (minor units) when the caller gives none: 10, 25, 50, 100, 250, 500, 1000.
pub const PRICE_BAND_EDGES_DEFAULT: [i64; 7] =
    [1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000];
/// Most completions of one suggest call.
pub const SUGGEST_LIMIT_MAX: usize = 10;
/// Default completions of one suggest call.
pub const SUGGEST_LIMIT_DEFAULT: usize = 5;
/// Synonym groups per tenant.
pub const SYNONYM_GROUPS_MAX: usize = 256;
/// Terms per synonym group (at least 2).
pub const SYNONYM_GROUP_TERMS_MAX: usize = 16;
/// Longest synonym term (one or more words), in bytes.
pub const SYNONYM_TERM_BYTES_MAX: usize = 64;
/// Stop words per tenant.
pub const STOP_WORDS_MAX: usize = 256;
/// Longest stop word, in bytes.
pub const STOP_WORD_BYTES_MAX: usize = 32;

/// Default of [`SearchConfig::sales_refresh_interval`].
pub const SALES_REFRESH_INTERVAL_DEFAULT: Duration = Duration::from_secs(30);
/// Bounds of [`SearchConfig::sales_refresh_interval`].
pub const SALES_REFRESH_INTERVAL_MIN: Duration = Duration::from_millis(10);
pub const SALES_REFRESH_INTERVAL_MAX: Duration = Duration::from_secs(3_600);

/// How search runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchConfig {
    /// Longest time between a change reaching an indexer and its commit (and visibility).
    pub refresh_interval: Duration,
    /// Tantivy writer heap per shard index.
    pub writer_heap_bytes: usize,
    /// How often products whose units sold moved are re-indexed (the best-selling order lags
    /// by up to this much; stock running out or coming back is indexed at once).
    pub sales_refresh_interval: Duration,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            refresh_interval: REFRESH_INTERVAL_DEFAULT,
            writer_heap_bytes: WRITER_HEAP_BYTES_DEFAULT,
            sales_refresh_interval: SALES_REFRESH_INTERVAL_DEFAULT,
        }
    }
}

impl SearchConfig {
    fn validate(&self) -> Result<(), SearchError> {
        if !(REFRESH_INTERVAL_MIN..=REFRESH_INTERVAL_MAX).contains(&self.refresh_interval) {
            return Err(SearchError::Config(format!(
                "refresh_interval must be {REFRESH_INTERVAL_MIN:?}..={REFRESH_INTERVAL_MAX:?}, got {:?}",
                self.refresh_interval
            )));
        }
        if !(SALES_REFRESH_INTERVAL_MIN..=SALES_REFRESH_INTERVAL_MAX)
            .contains(&self.sales_refresh_interval)
        {
            return Err(SearchError::Config(format!(
                "sales_refresh_interval must be {SALES_REFRESH_INTERVAL_MIN:?}..={SALES_REFRESH_INTERVAL_MAX:?}, got {:?}",
                self.sales_refresh_interval
            )));
        }
        if !(WRITER_HEAP_BYTES_MIN..=WRITER_HEAP_BYTES_MAX).contains(&self.writer_heap_bytes) {
            return Err(SearchError::Config(format!(
                "writer_heap_bytes must be {WRITER_HEAP_BYTES_MIN}..={WRITER_HEAP_BYTES_MAX}, got {}",
                self.writer_heap_bytes
            )));
        }
        Ok(())
    }
}

/// Why a search operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// Reading storage or running a command failed, or the caller may not do this.
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Index(#[from] IndexError),
    /// [`Engine::start_search`] was not called (or the engine is shutting down).
    #[error("search is not running")]
    NotRunning,
    /// An offline rebuild was asked of an engine whose indexers run.
    #[error("search is running in this process; rebuild online with a reindex request")]
    Running,
    #[error("search is already running")]
    AlreadyRunning,
    #[error("invalid search configuration: {0}")]
    Config(String),
    #[error("search index directory {}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("a rebuild of shard {0}'s search index is already in progress")]
    RebuildInProgress(ShardId),
    /// The work was interrupted because search is stopping.
    #[error("search is stopping")]
    Stopped,
}

impl From<StorageError> for SearchError {
    fn from(error: StorageError) -> Self {
        SearchError::Engine(EngineError::Storage(error))
    }
}

impl From<Rejection> for SearchError {
    fn from(rejection: Rejection) -> Self {
        SearchError::Engine(EngineError::Rejected(rejection))
    }
}

/// Turns an index error into the engine's vocabulary: a malformed query is the caller's
/// `InvalidField` (the search routes answer 400 naming the field), anything else stays internal.
fn query_error(error: IndexError) -> SearchError {
    match error {
        IndexError::InvalidQuery { field, reason } => Rejection::InvalidField {
            field: query_field_name(field).to_owned(),
            reason,
        }
        .into(),
        other => SearchError::Index(other),
    }
}

/// The API's name of an index query field.
fn query_field_name(field: &str) -> &str {
    match field {
        "text" | "prefix" => "q",
        "manufacturer_ids" => "manufacturer_id",
        "attributes" => "attr",
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// Settings: synonyms and stop words

/// Search commands. Variants are only ever added at the end (postcard encodes the index).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SearchAction {
    /// Replaces the tenant's search settings (needs [`Permission::ManageTenant`]).
    SetSettings(SearchSettings),
}

/// What a search command returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchOutput {
    Settings(SearchSettings),
}

fn invalid(field: String, reason: impl Into<String>) -> Rejection {
    Rejection::InvalidField {
        field,
        reason: reason.into(),
    }
}

/// One normalized term: trimmed, lowercase, inner whitespace collapsed; no control characters.
fn normalize_term(field: String, text: &str, bytes_max: usize) -> Result<String, Rejection> {
    if text.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    let term = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    if term.is_empty() || term.len() > bytes_max {
        return Err(invalid(field, format!("must be 1..={bytes_max} bytes")));
    }
    Ok(term)
}

/// Checks and normalizes settings (terms lowercased and trimmed, duplicates removed). Errors
/// name the offending element, e.g. `synonyms[2][0]`.
pub fn normalize_settings(settings: &SearchSettings) -> Result<SearchSettings, Rejection> {
    if settings.synonyms.len() > SYNONYM_GROUPS_MAX {
        return Err(invalid(
            "synonyms".into(),
            format!("at most {SYNONYM_GROUPS_MAX} groups"),
        ));
    }
    let mut synonyms = Vec::with_capacity(settings.synonyms.len());
    for (g, group) in settings.synonyms.iter().enumerate() {
        if !(2..=SYNONYM_GROUP_TERMS_MAX).contains(&group.len()) {
            return Err(invalid(
                format!("synonyms[{g}]"),
                format!("a group has 2..={SYNONYM_GROUP_TERMS_MAX} terms"),
            ));
        }
        let mut terms: Vec<String> = Vec::with_capacity(group.len());
        for (t, term) in group.iter().enumerate() {
            let term = normalize_term(format!("synonyms[{g}][{t}]"), term, SYNONYM_TERM_BYTES_MAX)?;
            if !terms.contains(&term) {
                terms.push(term);
            }
        }
        if terms.len() < 2 {
            return Err(invalid(
                format!("synonyms[{g}]"),
                "a group needs two different terms",
            ));
        }
        synonyms.push(terms);
    }
    if settings.stop_words.len() > STOP_WORDS_MAX {
        return Err(invalid(
            "stop_words".into(),
            format!("at most {STOP_WORDS_MAX} words"),
        ));
    }
    let mut stop_words: Vec<String> = Vec::with_capacity(settings.stop_words.len());
    for (i, word) in settings.stop_words.iter().enumerate() {
        let word = normalize_term(format!("stop_words[{i}]"), word, STOP_WORD_BYTES_MAX)?;
        if word.contains(' ') {
            return Err(invalid(format!("stop_words[{i}]"), "must be one word"));
        }
        if !stop_words.contains(&word) {
            stop_words.push(word);
        }
    }
    Ok(SearchSettings {
        synonyms,
        stop_words,
    })
}

pub(crate) fn apply(action: &SearchAction, ctx: &mut Ctx<'_, '_>) -> Applied<SearchOutput> {
    match action {
        SearchAction::SetSettings(settings) => {
            if ctx.tx.tenant() == crate::platform::PLATFORM_TENANT {
                return reject(invalid(
                    "tenant".into(),
                    "tenant 0 is reserved for the platform",
                ));
            }
            accounts::require(ctx, Permission::ManageTenant)?;
            let settings = match normalize_settings(settings) {
                Ok(settings) => settings,
                Err(rejection) => return reject(rejection),
            };
            ctx.tx.put(&SEARCH_SETTINGS, &(), &settings)?;
            ctx.audit(
                "search.settings_update",
                format!("tenant/{}", ctx.tx.tenant()),
            );
            Ok(SearchOutput::Settings(settings))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Queries

/// A product search as the caller asks it (the tenant and the price group come from the
/// principal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductSearch {
    pub text: String,
    /// The category or any of its descendants.
    pub category_id: Option<u64>,
    /// Any of these manufacturers (empty: all).
    pub manufacturer_ids: Vec<u64>,
    /// Bounds on the caller's unit price (its group's price list where it has an entry).
    pub price_min: Option<i64>,
    pub price_max: Option<i64>,
    pub in_stock: Option<bool>,
    /// Attribute `key = value` filters, all of which must hold.
    pub attributes: Vec<(String, String)>,
    pub sort: ProductSort,
    pub offset: usize,
    pub limit: usize,
    pub facets: bool,
    /// Price-band edges for the price facet (empty: [`PRICE_BAND_EDGES_DEFAULT`]).
    pub price_bands: Vec<i64>,
}

impl ProductSearch {
    /// A text query with default paging and no filters.
    pub fn text(text: &str) -> ProductSearch {
        ProductSearch {
            text: text.to_owned(),
            category_id: None,
            manufacturer_ids: Vec::new(),
            price_min: None,
            price_max: None,
            in_stock: None,
            attributes: Vec::new(),
            sort: ProductSort::Relevance,
            offset: 0,
            limit: SEARCH_LIMIT_DEFAULT,
            facets: false,
            price_bands: Vec::new(),
        }
    }

    fn check(&self) -> Result<(), Rejection> {
        if self.text.len() > QUERY_TEXT_BYTES_MAX {
            return Err(invalid(
                "q".into(),
                format!("longer than {QUERY_TEXT_BYTES_MAX} bytes"),
            ));
        }
        if !(1..=SEARCH_LIMIT_MAX).contains(&self.limit) {
            return Err(invalid(
                "limit".into(),
                format!("must be 1..={SEARCH_LIMIT_MAX}"),
            ));
        }
        if self.offset.saturating_add(self.limit) > SEARCH_DEPTH_MAX {
            return Err(invalid(
                "offset".into(),
                format!("offset + limit must be at most {SEARCH_DEPTH_MAX}"),
            ));
        }
        if let (Some(min), Some(max)) = (self.price_min, self.price_max)
            && min > max
        {
            return Err(invalid("price_min".into(), "must not exceed price_max"));
        }
        for (field, price) in [("price_min", self.price_min), ("price_max", self.price_max)] {
            if price.is_some_and(|p| !(0..=catalog::PRICE_MINOR_MAX).contains(&p)) {
                return Err(invalid(
                    field.into(),
                    format!("must be 0..={}", catalog::PRICE_MINOR_MAX),
                ));
            }
        }
        if self.attributes.len() > ATTRIBUTE_FILTERS_MAX {
            return Err(invalid(
                "attr".into(),
                format!("at most {ATTRIBUTE_FILTERS_MAX} attribute filters"),
            ));
        }
        if self.manufacturer_ids.len() > MANUFACTURER_FILTERS_MAX {
            return Err(invalid(
                "manufacturer_id".into(),
                format!("at most {MANUFACTURER_FILTERS_MAX} manufacturers"),
            ));
        }
        if self.price_bands.len() > PRICE_BAND_EDGES_MAX {
            return Err(invalid(
                "price_bands".into(),
                format!("at most {PRICE_BAND_EDGES_MAX} edges"),
            ));
        }
        if self.price_bands.windows(2).any(|w| w[0] >= w[1]) {
            return Err(invalid("price_bands".into(), "edges must increase"));
        }
        Ok(())
    }
}

/// One product hit with the summary the caller sees.
#[derive(Clone, Debug, PartialEq)]
pub struct ProductSearchHit {
    pub id: u64,
    pub score: f32,
    pub sku: String,
    pub name: String,
    /// The caller's unit price for one unit (its group's price list, else the base price).
    pub unit_price: Money,
    pub manufacturer_id: u64,
    pub manufacturer_name: String,
    pub category_id: Option<u64>,
    /// The name with the matched words in `<b>..</b>` (HTML-escaped otherwise).
    pub name_snippet: Option<String>,
    /// A passage of the description with the matched words in `<b>..</b>`.
    pub snippet: Option<String>,
}

/// A page of product hits with facet counts.
#[derive(Clone, Debug, PartialEq)]
pub struct ProductSearchResults {
    pub total: u64,
    /// The customer group whose prices were used (the buyer's retailer's), if any.
    pub customer_group_id: Option<u64>,
    pub currency: Currency,
    pub hits: Vec<ProductSearchHit>,
    pub categories: Vec<FacetCount>,
    pub manufacturers: Vec<FacetCount>,
    pub price_bands: Vec<PriceBand>,
}

/// One vendor hit with its manufacturer.
#[derive(Clone, Debug, PartialEq)]
pub struct VendorSearchHit {
    pub id: u64,
    pub score: f32,
    pub name: String,
    pub country: String,
    pub verification: VerificationStatus,
    pub snippet: Option<String>,
    /// The vendor's verification documents (any status) whose extracted text holds a word the
    /// query matches, in id order (empty for a blank query).
    pub documents: Vec<MatchedDocument>,
}

/// A verification document whose text a vendor search matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatchedDocument {
    pub id: u64,
    pub status: DocumentStatus,
}

/// A page of vendor hits.
#[derive(Clone, Debug, PartialEq)]
pub struct VendorSearchResults {
    pub total: u64,
    pub hits: Vec<VendorSearchHit>,
}

// ---------------------------------------------------------------------------------------------
// The engine's search handle

/// Where the engine keeps its running search (empty until [`Engine::start_search`]).
#[derive(Default)]
pub(crate) struct SearchHandle {
    service: Mutex<Option<Arc<SearchService>>>,
}

impl SearchHandle {
    fn get(&self) -> Result<Arc<SearchService>, SearchError> {
        self.service.lock().clone().ok_or(SearchError::NotRunning)
    }

    /// Stops the indexers, if they run; idempotent. Blocking.
    pub(crate) fn stop(&self) {
        let service = self.service.lock().take();
        if let Some(service) = service {
            service.stop();
        }
    }
}

impl Drop for SearchHandle {
    /// An engine dropped without [`Engine::shutdown`] still stops its indexers, which hold
    /// storage handles (and with them the data directory's lock).
    fn drop(&mut self) {
        self.stop();
    }
}

impl Engine {
    /// Opens every shard's search index (`DATA_DIR/index/`) and starts one indexer per shard,
    /// which first catches up with the change log (or rebuilds a shard whose log was trimmed
    /// past its index). Blocking.
    pub fn start_search(&self, config: SearchConfig) -> Result<(), SearchError> {
        config.validate()?;
        let mut slot = self.search.service.lock();
        if slot.is_some() {
            return Err(SearchError::AlreadyRunning);
        }
        *slot = Some(SearchService::start((*self.storage).clone(), config)?);
        Ok(())
    }

    /// Whether [`Engine::start_search`] has been called (and search not stopped).
    pub fn search_running(&self) -> bool {
        self.search.service.lock().is_some()
    }

    fn shard_index(&self, tenant: crate::TenantId) -> Result<Arc<ShardIndex>, SearchError> {
        let service = self.search.get()?;
        let shard = self.storage.shard_of(tenant);
        service
            .slots
            .get(&shard)
            .map(|slot| slot.live())
            .ok_or(SearchError::NotRunning)
    }

    /// The principal's tenant's search settings (defaults until changed). Needs
    /// [`Permission::ReadCatalog`]. Blocking.
    pub fn search_settings(&self, principal: &Principal) -> Result<SearchSettings, EngineError> {
        principal.require(Permission::ReadCatalog)?;
        Ok(self
            .storage
            .read(principal.tenant)?
            .get(&SEARCH_SETTINGS, &())?
            .unwrap_or_default())
    }

    /// Replaces the principal's tenant's synonyms and stop words (needs
    /// [`Permission::ManageTenant`]); they apply to the next query.
    pub async fn set_search_settings(
        &self,
        principal: &Principal,
        settings: SearchSettings,
    ) -> Result<SearchSettings, EngineError> {
        principal.require(Permission::ManageTenant)?;
        // Checked here too, so a bad request costs no write.
        normalize_settings(&settings).map_err(EngineError::Rejected)?;
        let action = Action::Search(SearchAction::SetSettings(settings));
        match self
            .run(principal.tenant, principal.actor.clone(), action)
            .await?
        {
            CommandOutput::Search(SearchOutput::Settings(settings)) => Ok(settings),
            other => Err(EngineError::UnexpectedOutput(format!("{other:?}"))),
        }
    }

    /// The customer group whose prices apply to the principal: a buyer's retailer's group.
    fn price_group(&self, principal: &Principal) -> Result<Option<u64>, EngineError> {
        match principal.role {
            Some(Role::Buyer { retailer_id } | Role::BuyerApprover { retailer_id }) => Ok(self
                .retailer(principal.tenant, retailer_id)?
                .and_then(|r| r.customer_group_id)),
            _ => Ok(None),
        }
    }

    /// Searches the principal's tenant's active products (needs [`Permission::ReadCatalog`]).
    /// Prices, price filters and price facets are the buyer's group prices where its price list
    /// has an entry. Blocking.
    pub fn search_products(
        &self,
        principal: &Principal,
        search: &ProductSearch,
    ) -> Result<ProductSearchResults, SearchError> {
        principal
            .require(Permission::ReadCatalog)
            .map_err(SearchError::Engine)?;
        search.check()?;
        let tenant = principal.tenant;
        let index = self.shard_index(tenant)?;
        let group = self.price_group(principal)?;
        let read = self.storage.read(tenant)?;
        let settings = read.get(&SEARCH_SETTINGS, &())?.unwrap_or_default();
        let currency = catalog::settings(&read)?.currency;
        let query = ProductQuery {
            tenant: tenant.0,
            text: search.text.clone(),
            category_id: search.category_id,
            manufacturer_ids: search.manufacturer_ids.clone(),
            price_min: search.price_min,
            price_max: search.price_max,
            customer_group_id: group,
            in_stock: search.in_stock,
            attributes: search.attributes.clone(),
            sort: search.sort,
            offset: search.offset,
            limit: search.limit,
            facets: search.facets,
            price_bands: if search.price_bands.is_empty() {
                PRICE_BAND_EDGES_DEFAULT.to_vec()
            } else {
                search.price_bands.clone()
            },
            synonyms: settings.synonyms,
            stop_words: settings.stop_words,
            highlight: true,
        };
        let found = index.search_products(&query).map_err(query_error)?;
        let mut hits = Vec::with_capacity(found.hits.len());
        for hit in found.hits {
            // The index may lag the catalog by a refresh: a product archived since is skipped.
            let Some(product) = self.product(tenant, hit.id)? else {
                continue;
            };
            if product.status != crate::tables::ProductStatus::Active {
                continue;
            }
            let entry = match group {
                Some(g) => self.price_list_entry(tenant, g, product.id)?,
                None => None,
            };
            let unit_price = catalog::resolve_unit_price(&product, entry.as_ref(), 1);
            let manufacturer_name = self
                .manufacturer(tenant, product.manufacturer_id)?
                .map(|m| m.name)
                .unwrap_or_default();
            hits.push(ProductSearchHit {
                id: product.id,
                score: hit.score,
                sku: product.sku,
                name: product.name,
                unit_price,
                manufacturer_id: product.manufacturer_id,
                manufacturer_name,
                category_id: product.category_id,
                name_snippet: hit.name_snippet,
                snippet: hit.description_snippet,
            });
        }
        Ok(ProductSearchResults {
            total: found.total,
            customer_group_id: group,
            currency,
            hits,
            categories: found.categories,
            manufacturers: found.manufacturers,
            price_bands: found.price_bands,
        })
    }

    /// Completions of `prefix` from the principal's tenant's product names (needs
    /// [`Permission::ReadCatalog`]), at most `limit` (1..=[`SUGGEST_LIMIT_MAX`]). Blocking.
    pub fn search_suggest(
        &self,
        principal: &Principal,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, SearchError> {
        principal
            .require(Permission::ReadCatalog)
            .map_err(SearchError::Engine)?;
        if prefix.len() > QUERY_TEXT_BYTES_MAX {
            return Err(invalid(
                "q".into(),
                format!("longer than {QUERY_TEXT_BYTES_MAX} bytes"),
            )
            .into());
        }
        if !(1..=SUGGEST_LIMIT_MAX).contains(&limit) {
            return Err(invalid("limit".into(), format!("must be 1..={SUGGEST_LIMIT_MAX}")).into());
        }
        let index = self.shard_index(principal.tenant)?;
        index
            .suggest(principal.tenant.0, prefix, limit)
            .map_err(query_error)
    }

    /// Searches the principal's tenant's vendors (manufacturers: name, country, verification
    /// status, the extracted text of their verification documents, whatever the documents'
    /// status); each hit names the documents whose text matched. Reviewers and tenant admins only ([`Permission::Review`]).
    /// Blocking.
    pub fn search_vendors(
        &self,
        principal: &Principal,
        text: &str,
        offset: usize,
        limit: usize,
    ) -> Result<VendorSearchResults, SearchError> {
        principal
            .require(Permission::Review)
            .map_err(SearchError::Engine)?;
        if text.len() > QUERY_TEXT_BYTES_MAX {
            return Err(invalid(
                "q".into(),
                format!("longer than {QUERY_TEXT_BYTES_MAX} bytes"),
            )
            .into());
        }
        if !(1..=SEARCH_LIMIT_MAX).contains(&limit) {
            return Err(invalid("limit".into(), format!("must be 1..={SEARCH_LIMIT_MAX}")).into());
        }
        if offset.saturating_add(limit) > SEARCH_DEPTH_MAX {
            return Err(invalid(
                "offset".into(),
                format!("offset + limit must be at most {SEARCH_DEPTH_MAX}"),
            )
            .into());
        }
        let tenant = principal.tenant;
        let index = self.shard_index(tenant)?;
        let found = index
            .search_vendors(&VendorQuery {
                tenant: tenant.0,
                text: text.to_owned(),
                offset,
                limit,
            })
            .map_err(query_error)?;
        let read = self.storage.read(tenant)?;
        // Each hit's manufacturer and documents, then one parse of the query to tell which
        // documents' text matches.
        let mut found_hits = Vec::with_capacity(found.hits.len());
        for hit in found.hits {
            let Some(manufacturer) = self.manufacturer(tenant, hit.id)? else {
                continue;
            };
            let vendor_documents = documents::vendor_documents(&read, hit.id)?;
            found_hits.push((hit, manufacturer, vendor_documents));
        }
        let texts: Vec<&str> = found_hits
            .iter()
            .flat_map(|(_, _, documents)| documents.iter().map(|(_, text)| text.as_str()))
            .collect();
        let mut matched = index
            .texts_matching(text, &texts)
            .map_err(query_error)?
            .into_iter();
        let mut hits = Vec::with_capacity(found_hits.len());
        for (hit, manufacturer, vendor_documents) in found_hits {
            let documents = vendor_documents
                .iter()
                .zip(matched.by_ref())
                .filter(|(_, matched)| *matched)
                .map(|((document, _), _)| MatchedDocument {
                    id: document.id,
                    status: document.status,
                })
                .collect();
            let Manufacturer {
                id,
                name,
                country,
                verification,
                ..
            } = manufacturer;
            hits.push(VendorSearchHit {
                id,
                score: hit.score,
                name,
                country: country.as_str().to_owned(),
                verification,
                snippet: hit.snippet,
                documents,
            });
        }
        Ok(VendorSearchResults {
            total: found.total,
            hits,
        })
    }

    /// Every shard's index: generation, position, size, rebuild state.
    pub fn search_status(&self) -> Result<Vec<ShardSearchStatus>, SearchError> {
        let service = self.search.get()?;
        Ok(service.slots.values().map(|slot| slot.status()).collect())
    }

    /// Starts an online rebuild of one shard's index (or of every shard's): each is built from
    /// storage in the background while queries use the current index, caught up with the
    /// change log, then swapped in. Returns the shards whose rebuild started.
    pub fn request_reindex(&self, shard: Option<ShardId>) -> Result<Vec<ShardId>, SearchError> {
        let service = self.search.get()?;
        let shards: Vec<ShardId> = match shard {
            Some(shard) => vec![shard],
            None => service.slots.keys().copied().collect(),
        };
        service.request_rebuilds(&shards)?;
        Ok(shards)
    }

    /// Rebuilds one shard's index from storage into a new generation and publishes it
    /// (atomically replacing `CURRENT`), calling `on_progress` as tenants are indexed. For
    /// `mercato reindex` on a data directory no server has open; refused while this engine's
    /// own indexers run. Blocking.
    pub fn rebuild_search_index(
        &self,
        shard: ShardId,
        config: &SearchConfig,
        on_progress: &mut dyn FnMut(&RebuildProgress),
    ) -> Result<RebuildReport, SearchError> {
        config.validate()?;
        if self.search_running() {
            return Err(SearchError::Running);
        }
        if !self.storage.shard_ids().contains(&shard) {
            return Err(StorageError::NoSuchShard(shard).into());
        }
        indexer::rebuild_offline(&self.storage, shard, config, on_progress)
    }

    /// Waits until every shard's index has committed every change made before the call (for
    /// tests and tools). Returns false on timeout. Blocking.
    pub fn wait_for_search(&self, timeout: Duration) -> Result<bool, SearchError> {
        let service = self.search.get()?;
        let targets: Vec<(Arc<indexer::ShardSlot>, Lsn)> = service
            .slots
            .values()
            .map(|slot| Ok((Arc::clone(slot), self.storage.last_lsn(slot.shard)?)))
            .collect::<Result<_, StorageError>>()?;
        let deadline = Instant::now() + timeout;
        for (slot, target) in targets {
            while slot.visible_lsn() < target {
                if Instant::now() >= deadline {
                    return Ok(false);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Ok(true)
    }
}
