//! `/v1/search` routes: product search with filters, facets and sorts, typeahead suggestions,
//! vendor search for reviewers and admins, and the tenant's synonyms and stop words; plus the
//! platform's `/v1/admin/reindex` (online rebuild of the search indexes) and
//! `/v1/admin/search` (index status).
//!
//! Who may do what:
//! - product search and suggestions need `ReadCatalog` (every role); only `active` products are
//!   indexed, and a buyer sees its retailer's customer-group prices (filters, facets and sorts
//!   use them too);
//! - vendor search needs `Review` (reviewers and tenant admins): 403 for everyone else;
//! - search settings: reading needs `ReadCatalog`, replacing them `ManageTenant`.
//!
//! Query text is never an error because of its content (unbalanced quotes, operators, odd
//! Unicode are plain text); only its size is bounded. A query-string parameter of a search
//! route that is malformed or out of bounds (`q` too long, `limit`, `offset`, `sort`, ...) is a
//! 400 `bad_request` problem whose `field` member names it.

use crate::api::respond::CACHE_CONTROL_NO_STORE;
use crate::api::{Auth, PlatformAuth, blocking, ok_json, read_json, require};
use crate::app::AppState;
use crate::problem::{ApiError, ErrorCode};
use crate::routes::parties::MoneyDto;
use axum::Json;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mercato_engine::ShardId;
use mercato_engine::accounts::Permission;
use mercato_engine::search::{
    self as search, FacetCount, PriceBand, ProductSearch, ProductSearchResults, ProductSort,
    SearchError, SearchSettings, ShardSearchStatus, VendorSearchResults,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest search settings body accepted, in bytes (the settings' own bounds fit in it).
pub const SETTINGS_BODY_BYTES_MAX: usize = 512 << 10;
/// Most query parameters of one search request (repeated `attr` and `manufacturer_id`
/// included).
pub const QUERY_PARAMS_MAX: usize = 64;

pub fn router() -> OpenApiRouter<AppState> {
    let settings = OpenApiRouter::new()
        .routes(routes!(get_settings, put_settings))
        .layer(DefaultBodyLimit::max(SETTINGS_BODY_BYTES_MAX));
    OpenApiRouter::new()
        .routes(routes!(search_products))
        .routes(routes!(suggest))
        .routes(routes!(search_vendors))
        .routes(routes!(reindex))
        .routes(routes!(search_status))
        .merge(settings)
}

// ---------------------------------------------------------------------------------------------
// Errors and query parameters

/// Search errors as problems: the engine's own errors map as everywhere; search that is not
/// running (yet, or any more) is 503 `not_ready`; a rebuild already running is 409.
fn search_error(error: SearchError) -> ApiError {
    match error {
        SearchError::Engine(engine) => engine.into(),
        SearchError::NotRunning | SearchError::Stopped => {
            ApiError::new(ErrorCode::NotReady, "search is not running")
        }
        SearchError::RebuildInProgress(shard) => ApiError::detailed(
            ErrorCode::Conflict,
            Some("reindex_in_progress"),
            format!("a rebuild of shard {shard}'s search index is already in progress"),
            serde_json::Map::new(),
        ),
        other => ApiError::internal(other),
    }
}

/// A query-string problem of a search route: what elsewhere is a 422 `invalid_field` (a body
/// field) is here the 400 of a malformed request, keeping the `field` member that names the
/// parameter. Every other error passes unchanged.
fn query_string_error(error: ApiError) -> ApiError {
    match error {
        ApiError::Detailed(mut problem) if problem.code == ErrorCode::InvalidField => {
            problem.code = ErrorCode::BadRequest;
            ApiError::Detailed(problem)
        }
        other => other,
    }
}

/// Runs blocking search work on the blocking pool.
async fn blocking_search<T, F>(state: &AppState, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mercato_engine::Engine) -> Result<T, SearchError> + Send + 'static,
{
    let engine = state.engine.clone();
    tokio::task::spawn_blocking(move || work(&engine))
        .await
        .map_err(ApiError::internal)?
        .map_err(search_error)
}

/// Query parameters as given, in order, with repeated names kept.
struct Params(Vec<(String, String)>);

impl Params {
    fn new(pairs: Vec<(String, String)>) -> Result<Params, ApiError> {
        if pairs.len() > QUERY_PARAMS_MAX {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                format!("more than {QUERY_PARAMS_MAX} query parameters"),
            ));
        }
        Ok(Params(pairs))
    }

    /// The value of a parameter that may appear once.
    fn one(&self, name: &'static str) -> Result<Option<&str>, ApiError> {
        let mut values = self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::invalid_field(name, "is given more than once"));
        }
        Ok(first.map(String::as_str))
    }

    fn all(&self, name: &'static str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn number<T: std::str::FromStr>(&self, name: &'static str) -> Result<Option<T>, ApiError> {
        self.one(name)?
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<T>()
                    .map_err(|_| ApiError::invalid_field(name, "must be a whole number"))
            })
            .transpose()
    }

    fn boolean(&self, name: &'static str) -> Result<Option<bool>, ApiError> {
        match self.one(name)? {
            None | Some("") => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(ApiError::invalid_field(name, "must be true or false")),
        }
    }

    fn text(&self) -> Result<String, ApiError> {
        Ok(self.one("q")?.unwrap_or_default().to_owned())
    }

    fn paging(&self, default_limit: usize) -> Result<(usize, usize), ApiError> {
        let offset = self.number::<usize>("offset")?.unwrap_or(0);
        let limit = self.number::<usize>("limit")?.unwrap_or(default_limit);
        Ok((offset, limit))
    }
}

fn parse_sort(text: &str) -> Result<ProductSort, ApiError> {
    Ok(match text {
        "relevance" => ProductSort::Relevance,
        "price_asc" => ProductSort::PriceAsc,
        "price_desc" => ProductSort::PriceDesc,
        "newest" => ProductSort::Newest,
        "best_selling" => ProductSort::BestSelling,
        _ => {
            return Err(ApiError::invalid_field(
                "sort",
                "must be relevance, price_asc, price_desc, newest or best_selling",
            ));
        }
    })
}

/// `?q=&category_id=&...` of a product search, read from the raw pairs so that `attr` and
/// `manufacturer_id` may repeat.
fn product_search(params: &Params) -> Result<ProductSearch, ApiError> {
    let mut search = ProductSearch::text(&params.text()?);
    search.category_id = params.number("category_id")?;
    for value in params.all("manufacturer_id") {
        for part in value.split(',').filter(|p| !p.is_empty()) {
            search.manufacturer_ids.push(part.parse().map_err(|_| {
                ApiError::invalid_field("manufacturer_id", "must be whole numbers")
            })?);
        }
    }
    search.price_min = params.number("price_min")?;
    search.price_max = params.number("price_max")?;
    search.in_stock = params.boolean("in_stock")?;
    for value in params.all("attr") {
        let (key, value) = value
            .split_once(':')
            .filter(|(k, v)| !k.trim().is_empty() && !v.trim().is_empty())
            .ok_or_else(|| ApiError::invalid_field("attr", "must be key:value"))?;
        search
            .attributes
            .push((key.trim().to_owned(), value.trim().to_owned()));
    }
    if let Some(sort) = params.one("sort")?.filter(|s| !s.is_empty()) {
        search.sort = parse_sort(sort)?;
    }
    let (offset, limit) = params.paging(search::SEARCH_LIMIT_DEFAULT)?;
    search.offset = offset;
    search.limit = limit;
    search.facets = params.boolean("facets")?.unwrap_or(false);
    if let Some(bands) = params.one("price_bands")?.filter(|b| !b.is_empty()) {
        for part in bands.split(',') {
            search.price_bands.push(part.trim().parse().map_err(|_| {
                ApiError::invalid_field("price_bands", "must be whole numbers separated by commas")
            })?);
        }
    }
    Ok(search)
}

// ---------------------------------------------------------------------------------------------
// Product search

/// Query parameters of `GET /v1/search/products` (documentation; `attr` and `manufacturer_id`
/// may repeat).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ProductSearchParams {
    /// Words to look for in name, description, SKU, manufacturer, category path and attributes
    /// (at most 512 bytes; a misspelt word of five letters or more still matches; the last
    /// word also matches as a prefix). Empty: every product, filtered.
    q: Option<String>,
    /// Only products in this category or one of its descendants.
    category_id: Option<u64>,
    /// Only products of these manufacturers (repeat the parameter or separate ids by commas).
    manufacturer_id: Option<String>,
    /// Lowest unit price, in minor units (the buyer's group price where one applies).
    price_min: Option<i64>,
    /// Highest unit price, in minor units.
    price_max: Option<i64>,
    /// `true`: only products with units available in some warehouse; `false`: only without.
    in_stock: Option<bool>,
    /// `key:value` attribute filter (repeatable, at most 16; all must hold).
    attr: Option<String>,
    /// `relevance` (default), `price_asc`, `price_desc`, `newest` or `best_selling`.
    sort: Option<String>,
    /// Hits to skip (offset + limit at most 10000).
    offset: Option<usize>,
    /// Hits per page, 1..=100 (default 20).
    limit: Option<usize>,
    /// `true`: also count hits per category, manufacturer and price band.
    facets: Option<bool>,
    /// Price-band edges in minor units, increasing, comma-separated (at most 16; default
    /// 1000,2500,5000,10000,25000,50000,100000).
    price_bands: Option<String>,
}

/// A manufacturer, as a hit names it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ManufacturerRefDto {
    pub id: u64,
    pub name: String,
}

/// One product found.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductHitDto {
    pub id: u64,
    pub sku: String,
    pub name: String,
    /// The caller's unit price for one unit: its customer group's price-list price, else the
    /// base price.
    pub price: MoneyDto,
    pub manufacturer: ManufacturerRefDto,
    pub category_id: Option<u64>,
    /// Relevance score (higher is better; comparable within one response only).
    pub score: f32,
    /// The name, HTML-escaped, with the matched words in `<b>..</b>` (absent without text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_highlighted: Option<String>,
    /// A passage of the description, HTML-escaped, with the matched words in `<b>..</b>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
}

/// Hits per value of a facet.
#[derive(Debug, Serialize, ToSchema)]
pub struct FacetCountDto {
    /// The category or manufacturer id.
    pub id: u64,
    pub count: u64,
}

impl From<FacetCount> for FacetCountDto {
    fn from(facet: FacetCount) -> Self {
        FacetCountDto {
            id: facet.value,
            count: facet.count,
        }
    }
}

/// Hits whose price is in `from..to` (minor units; an absent bound is open).
#[derive(Debug, Serialize, ToSchema)]
pub struct PriceBandDto {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub count: u64,
}

impl From<PriceBand> for PriceBandDto {
    fn from(band: PriceBand) -> Self {
        PriceBandDto {
            from: band.from,
            to: band.to,
            count: band.count,
        }
    }
}

/// Facet counts over every hit (not only the page). A category counts the hits in it and in
/// its descendants.
#[derive(Debug, Serialize, ToSchema)]
pub struct FacetsDto {
    pub categories: Vec<FacetCountDto>,
    pub manufacturers: Vec<FacetCountDto>,
    pub price_bands: Vec<PriceBandDto>,
}

/// A page of product hits.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductSearchDto {
    /// Hits in all (the page is `offset..offset+limit` of them).
    pub total: u64,
    pub offset: usize,
    pub limit: usize,
    /// The customer group whose prices apply (the buyer's retailer's), if any.
    pub customer_group_id: Option<u64>,
    /// The catalog currency of every price.
    pub currency: String,
    pub items: Vec<ProductHitDto>,
    /// Present when `facets=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facets: Option<FacetsDto>,
}

fn product_results(
    results: ProductSearchResults,
    offset: usize,
    limit: usize,
    facets: bool,
) -> ProductSearchDto {
    ProductSearchDto {
        total: results.total,
        offset,
        limit,
        customer_group_id: results.customer_group_id,
        currency: results.currency.as_str().to_owned(),
        items: results
            .hits
            .into_iter()
            .map(|hit| ProductHitDto {
                id: hit.id,
                sku: hit.sku,
                name: hit.name,
                price: hit.unit_price.into(),
                manufacturer: ManufacturerRefDto {
                    id: hit.manufacturer_id,
                    name: hit.manufacturer_name,
                },
                category_id: hit.category_id,
                score: hit.score,
                name_highlighted: hit.name_snippet,
                snippet: hit.snippet,
            })
            .collect(),
        facets: facets.then(|| FacetsDto {
            categories: results.categories.into_iter().map(Into::into).collect(),
            manufacturers: results.manufacturers.into_iter().map(Into::into).collect(),
            price_bands: results.price_bands.into_iter().map(Into::into).collect(),
        }),
    }
}

/// Searches the tenant's active products.
#[utoipa::path(
    get, path = "/v1/search/products", tag = "search",
    security(("bearer" = [])),
    params(ProductSearchParams),
    responses(
        (status = 200, description = "A page of hits, with facet counts when asked", body = ProductSearchDto),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        (status = 400, description = "Malformed or out-of-bounds query parameter (q too long, limit, offset, price_min, sort, attr, ...; `field` names it), or too many parameters", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "May not read the catalog", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "Search is not running", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn search_products(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ReadCatalog)?;
    let search = product_search(&Params::new(pairs)?).map_err(query_string_error)?;
    let (offset, limit, facets) = (search.offset, search.limit, search.facets);
    let results = blocking_search(&state, move |engine| {
        engine.search_products(&principal, &search)
    })
    .await
    .map_err(query_string_error)?;
    read_json(
        &headers,
        &product_results(results, offset, limit, facets),
        None,
    )
}

// ---------------------------------------------------------------------------------------------
// Suggest

/// Query parameters of `GET /v1/search/suggest`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct SuggestParams {
    /// What the user typed so far (at most 512 bytes).
    q: Option<String>,
    /// Completions to return, 1..=10 (default 5).
    limit: Option<usize>,
}

/// Completions of what the user typed.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuggestDto {
    pub suggestions: Vec<String>,
}

/// Typeahead: completions of the typed prefix from the tenant's product names.
#[utoipa::path(
    get, path = "/v1/search/suggest", tag = "search",
    security(("bearer" = [])),
    params(SuggestParams),
    responses(
        (status = 200, description = "Completions, best first", body = SuggestDto),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        (status = 400, description = "`q` too long or `limit` out of range (`field` names it)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "May not read the catalog", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "Search is not running", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn suggest(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ReadCatalog)?;
    let params = Params::new(pairs)?;
    let prefix = params.text().map_err(query_string_error)?;
    let limit = params
        .number::<usize>("limit")
        .map_err(query_string_error)?
        .unwrap_or(search::SUGGEST_LIMIT_DEFAULT);
    let suggestions = blocking_search(&state, move |engine| {
        engine.search_suggest(&principal, &prefix, limit)
    })
    .await
    .map_err(query_string_error)?;
    read_json(&headers, &SuggestDto { suggestions }, None)
}

// ---------------------------------------------------------------------------------------------
// Vendors

/// Query parameters of `GET /v1/search/vendors`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct VendorSearchParams {
    /// Words to look for in vendor names, countries, verification status and the extracted text
    /// of their verification documents (pending ones included).
    q: Option<String>,
    /// Hits to skip (offset + limit at most 10000).
    offset: Option<usize>,
    /// Hits per page, 1..=100 (default 20).
    limit: Option<usize>,
}

/// One vendor (manufacturer) found.
#[derive(Debug, Serialize, ToSchema)]
pub struct VendorHitDto {
    pub id: u64,
    pub name: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// `unverified`, `pending`, `verified`, `rejected` or `suspended`.
    pub verification: &'static str,
    pub score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
    /// The vendor's verification documents (whatever their status) whose extracted text holds
    /// a word of the query, in id order; empty for a blank query.
    pub documents: Vec<MatchedDocumentDto>,
}

/// A verification document whose text the query matched.
#[derive(Debug, Serialize, ToSchema)]
pub struct MatchedDocumentDto {
    pub id: u64,
    /// `processing`, `approved`, `rejected`, `in_review`, `resubmission_requested` or
    /// `expired`.
    pub status: &'static str,
}

/// A page of vendor hits.
#[derive(Debug, Serialize, ToSchema)]
pub struct VendorSearchDto {
    pub total: u64,
    pub offset: usize,
    pub limit: usize,
    pub items: Vec<VendorHitDto>,
}

fn vendor_results(results: VendorSearchResults, offset: usize, limit: usize) -> VendorSearchDto {
    VendorSearchDto {
        total: results.total,
        offset,
        limit,
        items: results
            .hits
            .into_iter()
            .map(|hit| VendorHitDto {
                id: hit.id,
                name: hit.name,
                country: hit.country,
                verification: search::verification_name(hit.verification),
                score: hit.score,
                snippet: hit.snippet,
                documents: hit
                    .documents
                    .into_iter()
                    .map(|document| MatchedDocumentDto {
                        id: document.id,
                        status: document.status.as_str(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Searches the tenant's vendors and their verification documents (reviewers and tenant
/// admins only).
#[utoipa::path(
    get, path = "/v1/search/vendors", tag = "search",
    security(("bearer" = [])),
    params(VendorSearchParams),
    responses(
        (status = 200, description = "A page of vendor hits", body = VendorSearchDto),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        (status = 400, description = "`q` too long, `limit` or `offset` out of range (`field` names it)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not a reviewer or tenant admin", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "Search is not running", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn search_vendors(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require(&principal, Permission::Review)?;
    let params = Params::new(pairs)?;
    let text = params.text().map_err(query_string_error)?;
    let (offset, limit) = params
        .paging(search::SEARCH_LIMIT_DEFAULT)
        .map_err(query_string_error)?;
    let results = blocking_search(&state, move |engine| {
        engine.search_vendors(&principal, &text, offset, limit)
    })
    .await
    .map_err(query_string_error)?;
    read_json(&headers, &vendor_results(results, offset, limit), None)
}

// ---------------------------------------------------------------------------------------------
// Settings

/// The tenant's synonyms and stop words, applied to every query.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchSettingsDto {
    /// Groups of equivalent terms, e.g. `[["tee", "t-shirt"]]`: at most 256 groups of 2..=16
    /// terms of 1..=64 bytes (a term may have several words). Stored lowercase.
    #[serde(default)]
    pub synonyms: Vec<Vec<String>>,
    /// Words dropped from queries (unless nothing else is left): at most 256 single words of
    /// 1..=32 bytes. Stored lowercase.
    #[serde(default)]
    pub stop_words: Vec<String>,
}

impl From<SearchSettings> for SearchSettingsDto {
    fn from(settings: SearchSettings) -> Self {
        SearchSettingsDto {
            synonyms: settings.synonyms,
            stop_words: settings.stop_words,
        }
    }
}

/// The tenant's search settings.
#[utoipa::path(
    get, path = "/v1/search/settings", tag = "search",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The settings", body = SearchSettingsDto),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "May not read the catalog", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_settings(
    State(state): State<AppState>,
    Auth(principal): Auth,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ReadCatalog)?;
    let settings = blocking(&state, move |engine| engine.search_settings(&principal)).await?;
    read_json(&headers, &SearchSettingsDto::from(settings), None)
}

/// Replaces the tenant's synonyms and stop words (needs `manage the tenant`); the next query
/// uses them, no re-indexing needed.
#[utoipa::path(
    put, path = "/v1/search/settings", tag = "search",
    security(("bearer" = [])),
    request_body = SearchSettingsDto,
    responses(
        (status = 200, description = "The settings as stored (normalized)", body = SearchSettingsDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "May not manage the tenant", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than 512 KiB", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field (synonyms[i], synonyms[i][j], stop_words[i], ...)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn put_settings(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(body): Json<SearchSettingsDto>,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManageTenant)?;
    let settings = state
        .engine
        .set_search_settings(
            &principal,
            SearchSettings {
                synonyms: body.synonyms,
                stop_words: body.stop_words,
            },
        )
        .await
        .map_err(ApiError::from)?;
    ok_json(&SearchSettingsDto::from(settings))
}

// ---------------------------------------------------------------------------------------------
// Platform: rebuilds and status

/// Query parameters of `POST /v1/admin/reindex`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ReindexParams {
    /// Only this shard (default: every shard).
    shard: Option<u16>,
}

/// One shard's search index.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShardSearchStatusDto {
    pub shard: u16,
    /// The live index generation (a rebuild publishes the next one).
    pub generation: u64,
    /// The change-log position the live index has committed.
    pub lsn: u64,
    pub documents: u64,
    pub segments: usize,
    /// A rebuild is running (queries use the live index meanwhile).
    pub rebuilding: bool,
    /// Rebuilds swapped in since the server started.
    pub rebuilds_completed: u64,
    /// The indexer's last failure, until its next success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Stock changes that moved neither `in_stock` nor units sold (no re-index).
    pub stock_changes_skipped: u64,
    /// Stock changes that moved only units sold (re-indexed at the next sales refresh).
    pub stock_changes_deferred: u64,
    /// Stock changes that flipped `in_stock` (re-indexed at once).
    pub stock_changes_reindexed: u64,
    /// Products waiting for the next sales refresh.
    pub sales_refresh_pending: u64,
    /// Progress of the running online rebuild, or of the last one since the server started
    /// (absent before the first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebuild_progress: Option<RebuildProgressDto>,
    /// The index writer's memory budget (`search.writer_heap_bytes`).
    pub writer_heap_bytes: u64,
}

/// How far an online rebuild got: tenants of the shard done, documents indexed so far.
#[derive(Debug, Serialize, ToSchema)]
pub struct RebuildProgressDto {
    pub tenants_total: u64,
    pub tenants_done: u64,
    pub products_indexed: u64,
    pub vendors_indexed: u64,
}

impl From<ShardSearchStatus> for ShardSearchStatusDto {
    fn from(status: ShardSearchStatus) -> Self {
        ShardSearchStatusDto {
            shard: status.shard.0,
            generation: status.generation,
            lsn: status.lsn,
            documents: status.documents,
            segments: status.segments,
            rebuilding: status.rebuilding,
            rebuilds_completed: status.rebuilds_completed,
            last_error: status.last_error,
            stock_changes_skipped: status.stock_changes.skipped,
            stock_changes_deferred: status.stock_changes.deferred,
            stock_changes_reindexed: status.stock_changes.reindexed,
            sales_refresh_pending: status.sales_refresh_pending,
            rebuild_progress: status.rebuild_progress.map(|p| RebuildProgressDto {
                tenants_total: p.tenants_total,
                tenants_done: p.tenants_done,
                products_indexed: p.products_indexed,
                vendors_indexed: p.vendors_indexed,
            }),
            writer_heap_bytes: u64::try_from(status.writer_heap_bytes).unwrap_or(u64::MAX),
        }
    }
}

/// Every shard's search index.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchStatusDto {
    pub shards: Vec<ShardSearchStatusDto>,
}

/// Rebuilds started.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReindexStartedDto {
    pub shards: Vec<u16>,
}

/// Rebuilds the search index of one shard (or of every shard) from storage, in the
/// background: queries keep using the current index until the new one has caught up with the
/// change log, then it is swapped in. Follow it with `GET /v1/admin/search`.
#[utoipa::path(
    post, path = "/v1/admin/reindex", tag = "admin",
    security(("bearer" = [])),
    params(ReindexParams),
    responses(
        (status = 202, description = "Rebuilds started", body = ReindexStartedDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not the platform token", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such shard", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`reindex_in_progress`: a rebuild of the shard is running", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "Search is not running", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn reindex(
    State(state): State<AppState>,
    PlatformAuth(principal): PlatformAuth,
    Query(params): Query<ReindexParams>,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManagePlatform)?;
    let shard = params.shard.map(ShardId);
    if let Some(shard) = shard
        && !state.engine.storage().shard_ids().contains(&shard)
    {
        return Err(crate::api::not_found("shard", shard.0));
    }
    let started = blocking_search(&state, move |engine| engine.request_reindex(shard)).await?;
    let body = serde_json::to_vec(&ReindexStartedDto {
        shards: started.into_iter().map(|s| s.0).collect(),
    })
    .map_err(ApiError::internal)?;
    let mut response = (StatusCode::ACCEPTED, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL_NO_STORE),
    );
    Ok(response)
}

/// Every shard's search index: generation, committed change-log position, documents,
/// segments, writer heap, and rebuild state with the progress of a running rebuild.
#[utoipa::path(
    get, path = "/v1/admin/search", tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Index status per shard", body = SearchStatusDto),
        (status = 401, description = "No valid credential", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not the platform token", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "Search is not running", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn search_status(
    State(state): State<AppState>,
    PlatformAuth(principal): PlatformAuth,
) -> Result<Response, ApiError> {
    require(&principal, Permission::ManagePlatform)?;
    let status = blocking_search(&state, |engine| engine.search_status()).await?;
    let by_shard: BTreeMap<u16, ShardSearchStatusDto> = status
        .into_iter()
        .map(|s| (s.shard.0, ShardSearchStatusDto::from(s)))
        .collect();
    ok_json(&SearchStatusDto {
        shards: by_shard.into_values().collect(),
    })
}
