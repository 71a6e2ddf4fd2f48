//! Turning a read query into a Tantivy query, programmatically.
//!
//! Matching: every unit must match the `all` field (AND across units; within a unit, any
//! alternative). A single typed word matches exactly, with typos (distance by length), and, if
//! it is the last word, as a prefix. Filters (tenant, kind, category, manufacturer, stock,
//! attributes) are required clauses with a constant score of 0, so they never move the ranking.
//!
//! Ranking is BM25 on `all`, plus boosts: a word found in the name, then an exact SKU match and
//! an exact (normalized) name match, which put those documents first. Typo and prefix matches
//! score a small constant, below any exact occurrence of the word.

use tantivy::Term;
use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, FuzzyTermQuery, Occur, PhraseQuery, Query, TermQuery,
};
use tantivy::schema::IndexRecordOption;

use crate::docs::attribute_pair;
use crate::query::{Alternative, ParsedText, ProductQuery, Unit};
use crate::schema::{Fields, KIND_PRODUCT, KIND_VENDOR};

/// A word occurring in the name adds its name BM25 times this.
const NAME_WORD_BOOST: f32 = 2.0;
/// Typo or prefix matches score this constant (an exact occurrence scores its BM25 on top).
const APPROXIMATE_MATCH_SCORE: f32 = 0.5;
/// The whole query equals the SKU.
const SKU_EXACT_BOOST: f32 = 100.0;
/// The whole query equals the name (normalized).
const NAME_EXACT_BOOST: f32 = 50.0;

fn filter(query: Box<dyn Query>) -> (Occur, Box<dyn Query>) {
    (Occur::Must, Box::new(ConstScoreQuery::new(query, 0.0)))
}

fn term_filter(term: Term) -> (Occur, Box<dyn Query>) {
    filter(Box::new(TermQuery::new(term, IndexRecordOption::Basic)))
}

fn alternative_query(fields: &Fields, alternative: &Alternative) -> Box<dyn Query> {
    if alternative.words.len() > 1 {
        let terms = alternative
            .words
            .iter()
            .map(|word| Term::from_field_text(fields.all, word))
            .collect();
        return Box::new(PhraseQuery::new(terms));
    }
    let word = &alternative.words[0];
    let all_term = Term::from_field_text(fields.all, word);
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
        (
            Occur::Should,
            Box::new(TermQuery::new(
                all_term.clone(),
                IndexRecordOption::WithFreqs,
            )),
        ),
        (
            Occur::Should,
            Box::new(BoostQuery::new(
                Box::new(TermQuery::new(
                    Term::from_field_text(fields.name, word),
                    IndexRecordOption::WithFreqs,
                )),
                NAME_WORD_BOOST,
            )),
        ),
    ];
    if alternative.fuzzy_distance > 0 || alternative.prefix {
        let automaton = if alternative.prefix {
            FuzzyTermQuery::new_prefix(all_term, alternative.fuzzy_distance, true)
        } else {
            FuzzyTermQuery::new(all_term, alternative.fuzzy_distance, true)
        };
        clauses.push((
            Occur::Should,
            Box::new(ConstScoreQuery::new(
                Box::new(automaton),
                APPROXIMATE_MATCH_SCORE,
            )),
        ));
    }
    Box::new(BooleanQuery::new(clauses))
}

fn unit_query(fields: &Fields, unit: &Unit) -> Box<dyn Query> {
    if unit.alternatives.len() == 1 {
        return alternative_query(fields, &unit.alternatives[0]);
    }
    Box::new(BooleanQuery::new(
        unit.alternatives
            .iter()
            .map(|alternative| (Occur::Should, alternative_query(fields, alternative)))
            .collect(),
    ))
}

/// The text part shared by products and vendors, plus tenant and kind.
fn text_clauses(
    fields: &Fields,
    tenant: u64,
    kind: u64,
    text: &ParsedText,
) -> Vec<(Occur, Box<dyn Query>)> {
    let mut clauses = vec![
        term_filter(Term::from_field_u64(fields.tenant, tenant)),
        term_filter(Term::from_field_u64(fields.kind, kind)),
    ];
    for unit in &text.units {
        clauses.push((Occur::Must, unit_query(fields, unit)));
    }
    clauses
}

pub(crate) fn product_query(
    fields: &Fields,
    query: &ProductQuery,
    text: &ParsedText,
) -> Box<dyn Query> {
    let mut clauses = text_clauses(fields, query.tenant, KIND_PRODUCT, text);
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
            clauses.push((
                Occur::Should,
                Box::new(ConstScoreQuery::new(
                    Box::new(TermQuery::new(
                        Term::from_field_text(field, value),
                        IndexRecordOption::Basic,
                    )),
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
    Box::new(BooleanQuery::new(clauses))
}

pub(crate) fn vendor_query(fields: &Fields, tenant: u64, text: &ParsedText) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(text_clauses(
        fields,
        tenant,
        KIND_VENDOR,
        text,
    )))
}
