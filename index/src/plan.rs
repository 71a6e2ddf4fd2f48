//! Turning a read query into a Tantivy query, programmatically.
//!
//! Matching: every unit must match (AND across units; within a unit, any alternative), in the
//! name or the body. A single typed word matches exactly, with typos (distance by length), and,
//! if it is the last word, as a prefix. Typos and prefixes are expanded here against the term
//! dictionaries into at most [`EXPANSIONS_MAX`] real words (the most frequent in the tenant's
//! documents; words only other tenants use are left out), as term queries: their cost is that
//! of those words' posting lists, and the typed word itself is not read twice. Filters (scope =
//! tenant and kind, category, manufacturer, stock, attributes) are required clauses with a
//! constant score of 0, so they never move the ranking.
//!
//! Ranking is BM25 on name (boosted) and body with the tenant's own term statistics (the query
//! runs with [`TenantStatistics`] as its statistics provider, whether the scope is checked in
//! the query or in the collector), plus boosts for an exact SKU match and an exact (normalized)
//! name match, which put those documents first. Expanded words score a fraction of their BM25,
//! below the exact word.

use std::collections::HashMap;

use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, FuzzyTermQuery, Occur, PhraseQuery, Query,
    TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{Searcher, Term};

use crate::IndexError;
use crate::docs::{attribute_pair, product_scope, vendor_scope};
use crate::query::{Alternative, ParsedText, ProductQuery, Unit};
use crate::schema::Fields;
use crate::stats::TenantStatistics;

/// A word in the name weighs this much more than in the body.
const NAME_BOOST: f32 = 2.0;
/// Typo and prefix expansions score this fraction of their BM25.
const EXPANSION_BOOST: f32 = 0.3;
/// The whole query equals the SKU.
const SKU_EXACT_BOOST: f32 = 100.0;
/// The whole query equals the name (normalized).
const NAME_EXACT_BOOST: f32 = 50.0;
/// A typo-tolerant or prefix word matches at most this many dictionary words besides itself.
pub const EXPANSIONS_MAX: usize = 32;
/// At most this many dictionary entries are read per segment and field to find them.
pub const EXPANSION_SCAN_MAX: usize = 10_000;

/// One clause of a boolean query.
type Clause = (Occur, Box<dyn Query>);

fn filter(query: Box<dyn Query>) -> Clause {
    (Occur::Must, Box::new(ConstScoreQuery::new(query, 0.0)))
}

fn term_filter(term: Term) -> Clause {
    filter(Box::new(TermQuery::new(term, IndexRecordOption::Basic)))
}

/// The word in the name (boosted) or in the body, scaled by `boost`.
fn word_clauses(fields: &Fields, word: &str, boost: f32) -> [Clause; 2] {
    let scored = |field: Field, weight: f32| -> Box<dyn Query> {
        let query = Box::new(TermQuery::new(
            Term::from_field_text(field, word),
            IndexRecordOption::WithFreqs,
        ));
        if weight == 1.0 {
            query
        } else {
            Box::new(BoostQuery::new(query, weight))
        }
    };
    [
        (Occur::Should, scored(fields.name, NAME_BOOST * boost)),
        (Occur::Should, scored(fields.body, boost)),
    ]
}

/// Dictionary words within the typo distance of `word` (or starting with it, for a prefix),
/// other than `word`, that occur in the tenant's documents: the most frequent in the tenant's
/// documents first, at most [`EXPANSIONS_MAX`]. Frequencies are the tenant's (see
/// [`crate::stats`]), so another tenant's vocabulary neither takes a slot nor orders them.
fn expansions(
    stats: &TenantStatistics<'_>,
    fields: &Fields,
    alternative: &Alternative,
) -> Result<Vec<String>, IndexError> {
    let word = &alternative.words[0];
    let probe = Term::from_field_text(fields.name, word);
    let automaton = if alternative.prefix {
        FuzzyTermQuery::new_prefix(probe, alternative.fuzzy_distance, true)
    } else {
        FuzzyTermQuery::new(probe, alternative.fuzzy_distance, true)
    }
    .automaton()?;
    let mut found: HashMap<Vec<u8>, u64> = HashMap::new();
    for (ordinal, segment) in stats.searcher().segment_readers().iter().enumerate() {
        for field in [fields.name, fields.body] {
            let inverted = segment.inverted_index(field)?;
            let mut stream = inverted.terms().search(&automaton).into_stream()?;
            let mut read = 0;
            while read < EXPANSION_SCAN_MAX && stream.advance() {
                read += 1;
                let key = stream.key();
                if key != word.as_bytes() {
                    let tenant_docs = stats.segment_doc_freq(ordinal, field, stream.value())?;
                    *found.entry(key.to_vec()).or_default() += tenant_docs;
                }
            }
        }
    }
    let mut found: Vec<(Vec<u8>, u64)> = found.into_iter().filter(|(_, docs)| *docs > 0).collect();
    found.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(found
        .into_iter()
        .take(EXPANSIONS_MAX)
        .filter_map(|(bytes, _)| String::from_utf8(bytes).ok())
        .collect())
}

fn alternative_query(
    stats: &TenantStatistics<'_>,
    fields: &Fields,
    alternative: &Alternative,
) -> Result<Box<dyn Query>, IndexError> {
    if alternative.words.len() > 1 {
        let phrase = |field: Field| -> Clause {
            let terms = alternative
                .words
                .iter()
                .map(|word| Term::from_field_text(field, word))
                .collect();
            (Occur::Should, Box::new(PhraseQuery::new(terms)))
        };
        return Ok(Box::new(BooleanQuery::new(vec![
            phrase(fields.name),
            phrase(fields.body),
        ])));
    }
    let word = &alternative.words[0];
    let mut clauses: Vec<Clause> = word_clauses(fields, word, 1.0).into();
    if alternative.fuzzy_distance > 0 || alternative.prefix {
        for expansion in expansions(stats, fields, alternative)? {
            clauses.extend(word_clauses(fields, &expansion, EXPANSION_BOOST));
        }
    }
    Ok(Box::new(BooleanQuery::new(clauses)))
}

fn unit_query(
    stats: &TenantStatistics<'_>,
    fields: &Fields,
    unit: &Unit,
) -> Result<Box<dyn Query>, IndexError> {
    if unit.alternatives.len() == 1 {
        return alternative_query(stats, fields, &unit.alternatives[0]);
    }
    let mut clauses = Vec::with_capacity(unit.alternatives.len());
    for alternative in &unit.alternatives {
        clauses.push((
            Occur::Should,
            alternative_query(stats, fields, alternative)?,
        ));
    }
    Ok(Box::new(BooleanQuery::new(clauses)))
}

/// Where the scope (tenant and kind) filter is applied.
///
/// A tenant that owns most of a shard's documents makes the scope's posting list about as long
/// as the index: intersecting every candidate with it costs a seek per hit (about a third of
/// a one-word query on a one-tenant index). Then the collector compares each hit's scope
/// ordinal (a fast field) instead. A small tenant keeps the intersection, which lets its short
/// posting list drive the query. Both are exact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ScopeCheck {
    /// The query itself requires the scope term.
    InQuery,
    /// The collector keeps only hits whose scope equals this value.
    InCollector(String),
}

impl ScopeCheck {
    pub fn collector_scope(self) -> Option<String> {
        match self {
            ScopeCheck::InQuery => None,
            ScopeCheck::InCollector(scope) => Some(scope),
        }
    }
}

/// The scope's share of all documents (deleted ones included) above which it is checked in
/// the collector.
const SCOPE_IN_COLLECTOR_SHARE: f64 = 0.5;

fn scope_check(
    searcher: &Searcher,
    fields: &Fields,
    scope: &str,
) -> Result<ScopeCheck, IndexError> {
    let max_doc: u64 = searcher
        .segment_readers()
        .iter()
        .map(|segment| u64::from(segment.max_doc()))
        .sum();
    let scope_docs = searcher.doc_freq(&Term::from_field_text(fields.scope, scope))?;
    Ok(
        if max_doc > 0 && scope_docs as f64 >= max_doc as f64 * SCOPE_IN_COLLECTOR_SHARE {
            ScopeCheck::InCollector(scope.to_string())
        } else {
            ScopeCheck::InQuery
        },
    )
}

/// The scope filter (unless the collector checks it) and the text units.
fn text_clauses(
    stats: &TenantStatistics<'_>,
    fields: &Fields,
    scope: &str,
    check: &ScopeCheck,
    text: &ParsedText,
) -> Result<Vec<Clause>, IndexError> {
    let mut clauses = Vec::new();
    if *check == ScopeCheck::InQuery {
        clauses.push(term_filter(Term::from_field_text(fields.scope, scope)));
    }
    for unit in &text.units {
        clauses.push((Occur::Must, unit_query(stats, fields, unit)?));
    }
    Ok(clauses)
}

pub(crate) fn product_query(
    stats: &TenantStatistics<'_>,
    fields: &Fields,
    query: &ProductQuery,
    text: &ParsedText,
) -> Result<(Box<dyn Query>, ScopeCheck), IndexError> {
    let searcher = stats.searcher();
    let scope = product_scope(query.tenant);
    let check = scope_check(searcher, fields, &scope)?;
    let mut clauses = text_clauses(stats, fields, &scope, &check, text)?;
    if !text.is_empty() {
        let mut exact = vec![
            (text.lowercase.as_str(), fields.sku_exact, SKU_EXACT_BOOST),
            (text.normalized.as_str(), fields.sku_exact, SKU_EXACT_BOOST),
            (
                text.normalized.as_str(),
                fields.name_exact,
                NAME_EXACT_BOOST,
            ),
        ];
        exact.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        for (value, field, boost) in exact {
            // An optional clause is visited for every matching document: leave out the ones
            // that cannot match (the usual case: the query is not a SKU or a whole name).
            let term = Term::from_field_text(field, value);
            if searcher.doc_freq(&term)? == 0 {
                continue;
            }
            clauses.push((
                Occur::Should,
                Box::new(ConstScoreQuery::new(
                    Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
                    boost,
                )),
            ));
        }
    }
    if let Some(category) = query.category_id {
        clauses.push(term_filter(Term::from_field_u64(
            fields.categories,
            category,
        )));
    }
    if !query.manufacturer_ids.is_empty() {
        let any: Vec<(Occur, Box<dyn Query>)> = query
            .manufacturer_ids
            .iter()
            .map(|&id| {
                (
                    Occur::Should,
                    Box::new(TermQuery::new(
                        Term::from_field_u64(fields.manufacturer, id),
                        IndexRecordOption::Basic,
                    )) as Box<dyn Query>,
                )
            })
            .collect();
        clauses.push(filter(Box::new(BooleanQuery::new(any))));
    }
    if let Some(in_stock) = query.in_stock {
        clauses.push(term_filter(Term::from_field_bool(
            fields.in_stock,
            in_stock,
        )));
    }
    for (key, value) in &query.attributes {
        clauses.push(term_filter(Term::from_field_text(
            fields.attributes,
            &attribute_pair(key, value).to_lowercase(),
        )));
    }
    Ok((boolean(clauses), check))
}

pub(crate) fn vendor_query(
    stats: &TenantStatistics<'_>,
    fields: &Fields,
    tenant: u64,
    text: &ParsedText,
) -> Result<(Box<dyn Query>, ScopeCheck), IndexError> {
    let scope = vendor_scope(tenant);
    let check = scope_check(stats.searcher(), fields, &scope)?;
    let clauses = text_clauses(stats, fields, &scope, &check, text)?;
    Ok((boolean(clauses), check))
}

/// All clauses must hold; no clause at all (scope checked by the collector, no text, no
/// filter) is every document, where an empty boolean query would be none.
fn boolean(clauses: Vec<Clause>) -> Box<dyn Query> {
    if clauses.is_empty() {
        Box::new(AllQuery)
    } else {
        Box::new(BooleanQuery::new(clauses))
    }
}
