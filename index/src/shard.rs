//! [`ShardIndex`]: one Tantivy index per storage shard, written by one indexer, read by many.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use tantivy::directory::MmapDirectory;
use tantivy::indexer::{IndexWriterOptions, LogMergePolicy};
use tantivy::schema::Field;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term,
};

use crate::IndexError;
use crate::collector::{ProductCollector, facet_list};
use crate::docs::{self, IndexOp};
use crate::highlight::Highlighter;
use crate::query::{
    self, ATTRIBUTE_FILTERS_MAX, MANUFACTURER_FILTERS_MAX, PRICE_BAND_EDGES_MAX, PriceBand,
    ProductHit, ProductQuery, ProductResults, VendorHit, VendorQuery, VendorResults,
};
use crate::schema::{self, Fields};
use crate::stats::{TenantStatistics, TotalsCache};
use crate::{plan, suggest};

/// Bounds of [`IndexConfig::writer_heap_bytes`]. Tantivy needs at least 15 MB per indexing
/// thread; above 1 GiB the heap only delays flushes.
pub const WRITER_HEAP_BYTES_MIN: usize = 15 * 1024 * 1024;
pub const WRITER_HEAP_BYTES_MAX: usize = 1024 * 1024 * 1024;
/// Each indexing thread gets at least this much of the heap; at most this many threads.
const WRITER_HEAP_BYTES_PER_THREAD_MIN: usize = 32 * 1024 * 1024;
const WRITER_THREADS_MAX: usize = 2;
/// Threads that collect one query's segments in parallel.
const SEARCH_THREADS_MAX: usize = 2;
/// At most this many operations in one [`ShardIndex::apply`] call.
pub const APPLY_OPS_MAX: usize = 100_000;

/// Merge policy: segments of similar size merge once this many accumulate, so a trickle of
/// one-document commits keeps a handful of small segments, not hundreds. Segments are not
/// merged down to one: on this class of machine a few segments query faster (the collector
/// runs per segment) and a full merge rewrites the whole index for every few commits.
const MERGE_SEGMENTS_MIN: usize = 8;
/// A segment with more deleted documents than this ratio is merged to reclaim them (upserts
/// delete; without this a hot product leaves dead copies behind).
const MERGE_DELETED_RATIO: f32 = 0.25;

const PAYLOAD_PREFIX: &str = "mercato-index lsn=";

/// Configuration of one shard index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexConfig {
    /// Memory of the index writer: documents are buffered up to this much before a segment is
    /// flushed. Default 64 MiB; [`WRITER_HEAP_BYTES_MIN`]..=[`WRITER_HEAP_BYTES_MAX`].
    pub writer_heap_bytes: usize,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            writer_heap_bytes: 64 * 1024 * 1024,
        }
    }
}

impl IndexConfig {
    pub fn validate(&self) -> Result<(), IndexError> {
        if !(WRITER_HEAP_BYTES_MIN..=WRITER_HEAP_BYTES_MAX).contains(&self.writer_heap_bytes) {
            return Err(IndexError::InvalidConfig {
                field: "writer_heap_bytes",
                reason: format!(
                    "{} is outside {WRITER_HEAP_BYTES_MIN}..={WRITER_HEAP_BYTES_MAX}",
                    self.writer_heap_bytes
                ),
            });
        }
        Ok(())
    }

    fn writer_threads(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (self.writer_heap_bytes / WRITER_HEAP_BYTES_PER_THREAD_MIN)
            .min(cores)
            .clamp(1, WRITER_THREADS_MAX)
    }
}

/// The fields of a product document that sales and stock changes move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProductCounters {
    pub in_stock: bool,
    pub units_sold: u64,
}

/// One shard's search index: products and vendors of every tenant of the shard.
///
/// Writes are staged with [`ShardIndex::apply`] and become visible together at
/// [`ShardIndex::commit`], which also records the change-log position they cover. Searches run
/// concurrently with writes on the last committed state. `Send + Sync`: share it in an `Arc`.
pub struct ShardIndex {
    dir: PathBuf,
    fields: Fields,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    /// Operations were applied since the last commit.
    staged: AtomicBool,
    committed_lsn: AtomicU64,
    analyzer: TextAnalyzer,
    /// Per-tenant BM25 totals of the current searcher generation.
    scope_totals: TotalsCache,
    config: IndexConfig,
}

impl std::fmt::Debug for ShardIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardIndex")
            .field("committed_lsn", &self.committed_lsn())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ShardIndex {
    /// Opens the index in `dir`, creating the directory and an empty index if needed. Only one
    /// `ShardIndex` may have a directory open at a time (Tantivy's writer lock).
    pub fn open(dir: &Path, config: IndexConfig) -> Result<ShardIndex, IndexError> {
        config.validate()?;
        std::fs::create_dir_all(dir)?;
        let (schema, fields) = schema::build_schema();
        let directory = MmapDirectory::open(dir)?;
        let mut index = match Index::open_or_create(directory, schema) {
            Ok(index) => index,
            Err(tantivy::TantivyError::SchemaError(_)) => {
                return Err(IndexError::SchemaMismatch {
                    path: dir.to_path_buf(),
                });
            }
            Err(error) => return Err(error.into()),
        };
        schema::register_tokenizers(&index);
        // One query's segments are collected in parallel: on a quiet machine this roughly
        // halves the latency of queries with many hits; under full load it costs little, as
        // the work per query is the same.
        let search_threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(SEARCH_THREADS_MAX);
        if search_threads > 1 {
            index.set_multithread_executor(search_threads)?;
        }
        let committed_lsn = parse_payload(index.load_metas()?.payload.as_deref())?;

        let threads = config.writer_threads();
        let writer: IndexWriter = index.writer_with_options(
            IndexWriterOptions::builder()
                .num_worker_threads(threads)
                .memory_budget_per_thread(config.writer_heap_bytes / threads)
                .num_merge_threads(1)
                .build(),
        )?;
        let mut merge_policy = LogMergePolicy::default();
        merge_policy.set_min_num_segments(MERGE_SEGMENTS_MIN);
        merge_policy.set_del_docs_ratio_before_merge(MERGE_DELETED_RATIO);
        writer.set_merge_policy(Box::new(merge_policy));

        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(ShardIndex {
            dir: dir.to_path_buf(),
            fields,
            reader,
            writer: Mutex::new(writer),
            staged: AtomicBool::new(false),
            committed_lsn: AtomicU64::new(committed_lsn),
            analyzer: schema::text_analyzer(),
            scope_totals: TotalsCache::default(),
            config,
        })
    }

    pub fn config(&self) -> &IndexConfig {
        &self.config
    }

    /// LSN stored in the last commit's payload (0 for a new index).
    pub fn committed_lsn(&self) -> u64 {
        self.committed_lsn.load(Ordering::Acquire)
    }

    fn writer(&self) -> Result<MutexGuard<'_, IndexWriter>, IndexError> {
        self.writer.lock().map_err(|_| IndexError::WriterPoisoned)
    }

    /// Stages `ops` in order (an upsert deletes the (tenant, id) document and adds the new
    /// one). Nothing is visible until [`ShardIndex::commit`].
    pub fn apply(&self, ops: Vec<IndexOp>) -> Result<(), IndexError> {
        if ops.len() > APPLY_OPS_MAX {
            return Err(IndexError::TooManyOps {
                ops: ops.len(),
                max: APPLY_OPS_MAX,
            });
        }
        if ops.is_empty() {
            return Ok(());
        }
        let writer = self.writer()?;
        let mut analyzer = self.analyzer.clone();
        for op in ops {
            match op {
                IndexOp::UpsertProduct(product) => {
                    writer.delete_term(docs::product_key(&self.fields, product.tenant, product.id));
                    writer.add_document(docs::product_document(
                        &self.fields,
                        &mut analyzer,
                        &product,
                    ))?;
                }
                IndexOp::DeleteProduct { tenant, id } => {
                    writer.delete_term(docs::product_key(&self.fields, tenant, id));
                }
                IndexOp::UpsertVendor(vendor) => {
                    writer.delete_term(docs::vendor_key(&self.fields, vendor.tenant, vendor.id));
                    writer.add_document(docs::vendor_document(&self.fields, &vendor))?;
                }
                IndexOp::DeleteVendor { tenant, id } => {
                    writer.delete_term(docs::vendor_key(&self.fields, tenant, id));
                }
                IndexOp::DeleteTenant { tenant } => {
                    for scope in [docs::product_scope(tenant), docs::vendor_scope(tenant)] {
                        writer.delete_term(Term::from_field_text(self.fields.scope, &scope));
                    }
                }
            }
        }
        self.staged.store(true, Ordering::Release);
        Ok(())
    }

    /// Commits the staged operations with `lsn` in the commit payload, then reloads the reader
    /// so that the next search sees them. A call with nothing staged and an `lsn` not above the
    /// committed one does nothing; `lsn` never moves backwards (a lower one keeps the higher).
    pub fn commit(&self, lsn: u64) -> Result<(), IndexError> {
        let mut writer = self.writer()?;
        let committed = self.committed_lsn();
        let staged = self.staged.load(Ordering::Acquire);
        if !staged && lsn <= committed {
            return Ok(());
        }
        let lsn = lsn.max(committed);
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&format!("{PAYLOAD_PREFIX}{lsn}"));
        prepared.commit()?;
        self.staged.store(false, Ordering::Release);
        self.committed_lsn.store(lsn, Ordering::Release);
        drop(writer);
        self.reader.reload()?;
        Ok(())
    }

    /// Drops the staged operations (after a failed batch, before retrying it).
    pub fn rollback(&self) -> Result<(), IndexError> {
        let mut writer = self.writer()?;
        writer.rollback()?;
        self.staged.store(false, Ordering::Release);
        Ok(())
    }

    /// The counters of product `id`'s committed document: whether it is in stock and its
    /// units sold, or `None` when the product is not in the committed index. A point lookup
    /// (the key's postings in each segment), far cheaper than rebuilding the document: the
    /// indexer uses it to skip stock changes that change neither.
    pub fn product_counters(
        &self,
        tenant: u64,
        id: u64,
    ) -> Result<Option<ProductCounters>, IndexError> {
        use tantivy::schema::IndexRecordOption;
        use tantivy::{DocSet, TERMINATED};
        let searcher = self.searcher();
        let key = docs::product_key(&self.fields, tenant, id);
        let in_stock_term = Term::from_field_bool(self.fields.in_stock, true);
        for segment in searcher.segment_readers() {
            let Some(mut postings) = segment
                .inverted_index(self.fields.key)?
                .read_postings(&key, IndexRecordOption::Basic)?
            else {
                continue;
            };
            let alive = segment.alive_bitset();
            let mut doc = postings.doc();
            while doc != TERMINATED && alive.is_some_and(|bits| !bits.is_alive(doc)) {
                doc = postings.advance();
            }
            if doc == TERMINATED {
                continue;
            }
            let in_stock = match segment
                .inverted_index(self.fields.in_stock)?
                .read_postings(&in_stock_term, IndexRecordOption::Basic)?
            {
                Some(mut stocked) => stocked.seek(doc) == doc,
                None => false,
            };
            let units_sold = segment
                .fast_fields()
                .u64("units_sold")?
                .first(doc)
                .unwrap_or(0);
            return Ok(Some(ProductCounters {
                in_stock,
                units_sold,
            }));
        }
        Ok(None)
    }

    fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    pub fn search_products(&self, q: &ProductQuery) -> Result<ProductResults, IndexError> {
        query::check_page(q.offset, q.limit)?;
        if q.manufacturer_ids.len() > MANUFACTURER_FILTERS_MAX {
            return Err(IndexError::InvalidQuery {
                field: "manufacturer_ids",
                reason: format!("at most {MANUFACTURER_FILTERS_MAX} allowed"),
            });
        }
        if q.attributes.len() > ATTRIBUTE_FILTERS_MAX {
            return Err(IndexError::InvalidQuery {
                field: "attributes",
                reason: format!("at most {ATTRIBUTE_FILTERS_MAX} allowed"),
            });
        }
        if q.price_bands.len() > PRICE_BAND_EDGES_MAX {
            return Err(IndexError::InvalidQuery {
                field: "price_bands",
                reason: format!("at most {PRICE_BAND_EDGES_MAX} edges allowed"),
            });
        }
        if let (Some(min), Some(max)) = (q.price_min, q.price_max)
            && min > max
        {
            return Err(IndexError::InvalidQuery {
                field: "price_min",
                reason: "price_min is above price_max".to_string(),
            });
        }
        let mut analyzer = self.analyzer.clone();
        let text = query::parse_text(&mut analyzer, &q.text, &q.synonyms, &q.stop_words)?;
        if text.unsearchable {
            return Ok(ProductResults::default());
        }
        let searcher = self.searcher();
        let stats = TenantStatistics::new(
            &searcher,
            &self.fields,
            &docs::product_scope(q.tenant),
            &self.scope_totals,
        )?;
        let (tantivy_query, scope_check) = plan::product_query(&stats, &self.fields, q, &text)?;
        let mut band_edges = q.price_bands.clone();
        band_edges.sort_unstable();
        band_edges.dedup();
        let collector = ProductCollector {
            sort: q.sort,
            keep: q.offset + q.limit,
            scoring: !text.is_empty(),
            facets: q.facets,
            band_edges: band_edges.clone(),
            price_min: q.price_min,
            price_max: q.price_max,
            customer_group: q.customer_group_id,
            scope: scope_check.collector_scope(),
        };
        let fruit =
            searcher.search_with_statistics_provider(&*tantivy_query, &collector, &stats)?;

        let mut highlighter = q.highlight.then(|| Highlighter::new(&text));
        let mut hits = Vec::with_capacity(q.limit);
        for candidate in fruit.top.into_iter().skip(q.offset) {
            let mut hit = ProductHit {
                id: candidate.id,
                score: candidate.score,
                name_snippet: None,
                description_snippet: None,
            };
            if let Some(highlighter) = highlighter.as_mut() {
                let doc: TantivyDocument =
                    searcher.doc(DocAddress::new(candidate.segment, candidate.doc))?;
                let name = stored_text(&doc, self.fields.name);
                let description = stored_text(&doc, self.fields.description);
                hit.name_snippet = Some(highlighter.whole(self.fields.name, name));
                hit.description_snippet =
                    highlighter.fragment(self.fields.description, description);
            }
            hits.push(hit);
        }
        let price_bands = if fruit.band_counts.is_empty() {
            Vec::new()
        } else {
            fruit
                .band_counts
                .iter()
                .enumerate()
                .map(|(band, &count)| PriceBand {
                    from: band.checked_sub(1).map(|edge| band_edges[edge]),
                    to: band_edges.get(band).copied(),
                    count,
                })
                .collect()
        };
        Ok(ProductResults {
            total: fruit.total,
            hits,
            categories: facet_list(fruit.categories),
            manufacturers: facet_list(fruit.manufacturers),
            price_bands,
        })
    }

    /// A handful (at most `limit`, <= [`query::SUGGEST_LIMIT_MAX`]) of completions of `prefix`
    /// from the tenant's product names: completed words and whole names, lowercased.
    pub fn suggest(
        &self,
        tenant: u64,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, IndexError> {
        let mut analyzer = self.analyzer.clone();
        suggest::suggest(
            &self.searcher(),
            &self.fields,
            &mut analyzer,
            tenant,
            prefix,
            limit,
        )
    }

    pub fn search_vendors(&self, q: &VendorQuery) -> Result<VendorResults, IndexError> {
        query::check_page(q.offset, q.limit)?;
        let mut analyzer = self.analyzer.clone();
        let text = query::parse_text(&mut analyzer, &q.text, &[], &[])?;
        if text.unsearchable {
            return Ok(VendorResults::default());
        }
        let searcher = self.searcher();
        let stats = TenantStatistics::new(
            &searcher,
            &self.fields,
            &docs::vendor_scope(q.tenant),
            &self.scope_totals,
        )?;
        let (tantivy_query, scope_check) =
            plan::vendor_query(&stats, &self.fields, q.tenant, &text)?;
        let collector = ProductCollector {
            sort: query::ProductSort::Relevance,
            keep: q.offset + q.limit,
            scoring: !text.is_empty(),
            facets: false,
            band_edges: Vec::new(),
            price_min: None,
            price_max: None,
            customer_group: None,
            scope: scope_check.collector_scope(),
        };
        let fruit =
            searcher.search_with_statistics_provider(&*tantivy_query, &collector, &stats)?;
        let mut highlighter = Highlighter::new(&text);
        let mut hits = Vec::with_capacity(q.limit);
        for candidate in fruit.top.into_iter().skip(q.offset) {
            let snippet = if text.is_empty() {
                None
            } else {
                let doc: TantivyDocument =
                    searcher.doc(DocAddress::new(candidate.segment, candidate.doc))?;
                highlighter.fragment(
                    self.fields.vendor_text,
                    stored_text(&doc, self.fields.vendor_text),
                )
            };
            hits.push(VendorHit {
                id: candidate.id,
                score: candidate.score,
                snippet,
            });
        }
        Ok(VendorResults {
            total: fruit.total,
            hits,
        })
    }

    /// Which of `texts` hold a word that the vendor search `text` matches (exactly, with a
    /// typo, or as a prefix of the last word: the rules of matching and highlighting). Tells
    /// which of a vendor's documents a hit came from. A blank text matches none.
    pub fn texts_matching(&self, text: &str, texts: &[&str]) -> Result<Vec<bool>, IndexError> {
        let mut analyzer = self.analyzer.clone();
        let parsed = query::parse_text(&mut analyzer, text, &[], &[])?;
        if parsed.is_empty() {
            return Ok(vec![false; texts.len()]);
        }
        let mut highlighter = Highlighter::new(&parsed);
        Ok(texts
            .iter()
            .map(|candidate| highlighter.any_match(candidate))
            .collect())
    }

    /// Live documents (products and vendors of every tenant) as of the last commit.
    pub fn doc_count(&self) -> u64 {
        self.searcher().num_docs()
    }

    /// Segments as of the last commit (or reload).
    pub fn segment_count(&self) -> usize {
        self.searcher().segment_readers().len()
    }

    /// Total size of the files in the index directory, in bytes (including files of segments
    /// that a merge replaced and that are not yet collected).
    pub fn disk_bytes(&self) -> Result<u64, IndexError> {
        let mut total = 0;
        for entry in std::fs::read_dir(&self.dir)? {
            let metadata = entry?.metadata()?;
            if metadata.is_file() {
                total += metadata.len();
            }
        }
        Ok(total)
    }

    /// Waits for running merges and releases the writer lock (dropping the index also releases
    /// it, abandoning merges in progress).
    pub fn close(self) -> Result<(), IndexError> {
        let writer = self
            .writer
            .into_inner()
            .map_err(|_| IndexError::WriterPoisoned)?;
        writer.wait_merging_threads()?;
        Ok(())
    }
}

fn stored_text(doc: &TantivyDocument, field: Field) -> &str {
    use tantivy::schema::Value;
    doc.get_first(field)
        .and_then(|value| value.as_str())
        .unwrap_or("")
}

fn parse_payload(payload: Option<&str>) -> Result<u64, IndexError> {
    let Some(payload) = payload else {
        return Ok(0);
    };
    payload
        .strip_prefix(PAYLOAD_PREFIX)
        .and_then(|lsn| lsn.parse().ok())
        .ok_or_else(|| IndexError::BadPayload {
            payload: payload.to_string(),
        })
}
