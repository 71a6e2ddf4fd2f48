//! BM25 term statistics of one tenant (one scope), not of the whole shard index.
//!
//! Tantivy scores with the statistics of the whole index: how many documents there are, how
//! many contain a word, how long a field is on average. In an index shared by tenants that
//! makes a tenant's scores depend on the other tenants' documents, and a score returned to the
//! caller would tell whether other tenants use a word. [`TenantStatistics`] answers the same
//! questions from the scope's documents only (alive documents, every segment):
//!
//! - documents: the scope term's alive documents;
//! - documents containing a term: the intersection of the term's postings with the scope's;
//! - tokens of a field: the sum of the field norms (Tantivy's per-document token counts, exact
//!   up to 40 tokens and rounded down above) of the scope's documents.
//!
//! A segment whose every document belongs to the scope and that has no deleted document (the
//! usual case in a one-tenant shard) answers from its own statistics at no extra cost; a
//! segment without the scope term is skipped. Only segments shared with other tenants cost a
//! walk: the intersection is a leapfrog driven by the shorter posting list.
//!
//! The scope's document and token counts are cached per searcher generation ([`TotalsCache`]);
//! document frequencies are memoized per query.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tantivy::postings::SegmentPostings;
use tantivy::postings::TermInfo;
use tantivy::query::Bm25StatisticsProvider;
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, DocSet, Searcher, SegmentReader, TERMINATED, Term};

use crate::schema::Fields;

/// How a segment holds the scope's documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Coverage {
    /// No document of the scope.
    Absent,
    /// Every document is the scope's and none is deleted: the segment's own statistics are the
    /// scope's.
    Whole,
    /// Some documents, or deletions: statistics are counted against the scope's postings.
    Partial,
}

/// How `segment` holds `scope`, and the scope term's postings address there.
fn segment_coverage(
    segment: &SegmentReader,
    scope: &Term,
) -> tantivy::Result<(Coverage, Option<TermInfo>)> {
    let info = segment
        .inverted_index(scope.field())?
        .get_term_info(scope)?;
    let scope_docs = info.as_ref().map_or(0, |info| info.doc_freq);
    let coverage = if scope_docs == 0 {
        Coverage::Absent
    } else if scope_docs == segment.max_doc() && !segment.has_deletes() {
        Coverage::Whole
    } else {
        Coverage::Partial
    };
    Ok((coverage, info))
}

fn scope_postings(
    segment: &SegmentReader,
    scope: &Term,
    info: Option<&TermInfo>,
) -> tantivy::Result<Option<SegmentPostings>> {
    let inverted = segment.inverted_index(scope.field())?;
    Ok(match info {
        Some(info) => Some(inverted.read_postings_from_terminfo(info, IndexRecordOption::Basic)?),
        None => inverted.read_postings(scope, IndexRecordOption::Basic)?,
    })
}

/// Alive documents in both posting lists. The shorter list drives, the longer one seeks.
fn intersection_alive(
    segment: &SegmentReader,
    a: &mut SegmentPostings,
    b: &mut SegmentPostings,
) -> u64 {
    let (driver, other) = if a.doc_freq() <= b.doc_freq() {
        (a, b)
    } else {
        (b, a)
    };
    let alive = segment.alive_bitset();
    let mut count = 0;
    let mut doc: DocId = driver.doc();
    while doc != TERMINATED {
        let found = if other.doc() < doc {
            other.seek(doc)
        } else {
            other.doc()
        };
        if found == TERMINATED {
            break;
        }
        if found == doc {
            if alive.is_none_or(|bits| bits.is_alive(doc)) {
                count += 1;
            }
            doc = driver.advance();
        } else {
            doc = driver.seek(found);
        }
    }
    count
}

/// A scope's alive documents and their tokens per scored field.
#[derive(Debug)]
pub(crate) struct ScopeTotals {
    docs: u64,
    tokens: Vec<(Field, u64)>,
}

impl ScopeTotals {
    fn compute(searcher: &Searcher, fields: &[Field], scope: &Term) -> tantivy::Result<Self> {
        let mut docs = 0u64;
        let mut tokens: Vec<(Field, u64)> = fields.iter().map(|&field| (field, 0)).collect();
        for segment in searcher.segment_readers() {
            let (coverage, info) = segment_coverage(segment, scope)?;
            match coverage {
                Coverage::Absent => {}
                Coverage::Whole => {
                    docs += u64::from(segment.max_doc());
                    for (field, total) in &mut tokens {
                        *total += segment.inverted_index(*field)?.total_num_tokens();
                    }
                }
                Coverage::Partial => {
                    let Some(mut postings) = scope_postings(segment, scope, info.as_ref())? else {
                        continue;
                    };
                    let norms = tokens
                        .iter()
                        .map(|(field, _)| segment.get_fieldnorms_reader(*field))
                        .collect::<tantivy::Result<Vec<_>>>()?;
                    let alive = segment.alive_bitset();
                    let mut doc = postings.doc();
                    while doc != TERMINATED {
                        if alive.is_none_or(|bits| bits.is_alive(doc)) {
                            docs += 1;
                            for ((_, total), norm) in tokens.iter_mut().zip(&norms) {
                                *total += u64::from(norm.fieldnorm(doc));
                            }
                        }
                        doc = postings.advance();
                    }
                }
            }
        }
        Ok(ScopeTotals { docs, tokens })
    }
}

/// Scope totals of the current searcher generation, by scope. A new generation (a commit, a
/// merge) clears them.
#[derive(Default)]
pub(crate) struct TotalsCache {
    inner: Mutex<(u64, HashMap<String, Arc<ScopeTotals>>)>,
}

/// Scopes remembered per generation at most (a shard holds a bounded number of tenants; the
/// bound only keeps a pathological mix from growing the map).
const CACHED_SCOPES_MAX: usize = 4_096;

impl TotalsCache {
    fn get(
        &self,
        searcher: &Searcher,
        fields: &[Field],
        scope: &str,
        scope_term: &Term,
    ) -> tantivy::Result<Arc<ScopeTotals>> {
        let generation = searcher.generation().generation_id();
        if let Ok(cached) = self.inner.lock()
            && cached.0 == generation
            && let Some(totals) = cached.1.get(scope)
        {
            return Ok(Arc::clone(totals));
        }
        let totals = Arc::new(ScopeTotals::compute(searcher, fields, scope_term)?);
        // A poisoned lock only loses the cache entry: the totals are recomputed next time.
        if let Ok(mut cached) = self.inner.lock() {
            if cached.0 != generation || cached.1.len() >= CACHED_SCOPES_MAX {
                cached.0 = generation;
                cached.1.clear();
            }
            cached.1.insert(scope.to_string(), Arc::clone(&totals));
        }
        Ok(totals)
    }
}

/// The BM25 statistics of one scope, for one query on one searcher.
pub(crate) struct TenantStatistics<'a> {
    searcher: &'a Searcher,
    scope: Term,
    totals: Arc<ScopeTotals>,
    /// Per segment: how it holds the scope, and where the scope's postings are.
    coverage: Vec<(Coverage, Option<TermInfo>)>,
    doc_freqs: RefCell<HashMap<Term, u64>>,
}

impl<'a> TenantStatistics<'a> {
    pub fn new(
        searcher: &'a Searcher,
        fields: &Fields,
        scope: &str,
        cache: &TotalsCache,
    ) -> tantivy::Result<Self> {
        let scope_term = Term::from_field_text(fields.scope, scope);
        let totals = cache.get(searcher, &[fields.name, fields.body], scope, &scope_term)?;
        let coverage = searcher
            .segment_readers()
            .iter()
            .map(|segment| segment_coverage(segment, &scope_term))
            .collect::<tantivy::Result<_>>()?;
        Ok(TenantStatistics {
            searcher,
            scope: scope_term,
            totals,
            coverage,
            doc_freqs: RefCell::new(HashMap::new()),
        })
    }

    pub fn searcher(&self) -> &'a Searcher {
        self.searcher
    }

    /// The scope's alive documents in segment `ordinal` that hold the term whose postings
    /// `term_info` points to in `field` (0 when the segment has none of the scope's).
    pub fn segment_doc_freq(
        &self,
        ordinal: usize,
        field: Field,
        term_info: &TermInfo,
    ) -> tantivy::Result<u64> {
        let segment = &self.searcher.segment_readers()[ordinal];
        let (coverage, scope_info) = &self.coverage[ordinal];
        match coverage {
            Coverage::Absent => Ok(0),
            Coverage::Whole => Ok(u64::from(term_info.doc_freq)),
            Coverage::Partial => {
                let Some(mut scope) = scope_postings(segment, &self.scope, scope_info.as_ref())?
                else {
                    return Ok(0);
                };
                let mut postings = segment
                    .inverted_index(field)?
                    .read_postings_from_terminfo(term_info, IndexRecordOption::Basic)?;
                Ok(intersection_alive(segment, &mut postings, &mut scope))
            }
        }
    }

    fn compute_doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        let mut total = 0;
        for (ordinal, segment) in self.searcher.segment_readers().iter().enumerate() {
            if self.coverage[ordinal].0 == Coverage::Absent {
                continue;
            }
            let Some(info) = segment.inverted_index(term.field())?.get_term_info(term)? else {
                continue;
            };
            total += self.segment_doc_freq(ordinal, term.field(), &info)?;
        }
        Ok(total)
    }
}

impl Bm25StatisticsProvider for TenantStatistics<'_> {
    /// The scope's tokens in `field`. Fields other than the scored ones (name and body) are
    /// counted on demand.
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        if let Some((_, tokens)) = self.totals.tokens.iter().find(|(f, _)| *f == field) {
            return Ok(*tokens);
        }
        Ok(ScopeTotals::compute(self.searcher, &[field], &self.scope)?
            .tokens
            .first()
            .map_or(0, |(_, tokens)| *tokens))
    }

    /// The scope's alive documents; at least 1, so that an empty scope gives no division by
    /// zero (its document frequencies are all 0, and it has no hit to score).
    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Ok(self.totals.docs.max(1))
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        if let Some(&freq) = self.doc_freqs.borrow().get(term) {
            return Ok(freq);
        }
        let freq = self.compute_doc_freq(term)?;
        self.doc_freqs.borrow_mut().insert(term.clone(), freq);
        Ok(freq)
    }
}
