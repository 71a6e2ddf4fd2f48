//! Typeahead: completions of a prefix from the tenant's product names.
//!
//! Every product adds to the `suggest` field one term per distinct name word and one term for
//! its whole normalized name, each prefixed by the tenant (fixed width). A suggestion is a
//! range scan of the term dictionary under "tenant + kind + prefix": no document is read, and
//! the tenant prefix makes another tenant's terms unreachable. Term dictionaries still count
//! deleted documents until a merge, so each suggestion is checked to have a live document.

use std::collections::HashMap;

use tantivy::schema::IndexRecordOption;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{DocSet, Searcher, TERMINATED, Term};

use crate::IndexError;
use crate::docs::{SUGGEST_NAME, SUGGEST_WORD, suggest_term};
use crate::query::{SUGGEST_LIMIT_MAX, SUGGEST_PREFIX_BYTES_MAX};
use crate::schema::{self, Fields};

/// At most this many dictionary terms are read per segment and kind for one suggestion; past
/// it, the rarest completions of a very short prefix are not considered.
pub const SUGGEST_SCAN_TERMS_MAX: usize = 2_000;

pub(crate) fn suggest(
    searcher: &Searcher,
    fields: &Fields,
    analyzer: &mut TextAnalyzer,
    tenant: u64,
    prefix: &str,
    limit: usize,
) -> Result<Vec<String>, IndexError> {
    if prefix.len() > SUGGEST_PREFIX_BYTES_MAX {
        return Err(IndexError::InvalidQuery {
            field: "prefix",
            reason: format!(
                "{} bytes, at most {SUGGEST_PREFIX_BYTES_MAX} allowed",
                prefix.len()
            ),
        });
    }
    if limit > SUGGEST_LIMIT_MAX {
        return Err(IndexError::InvalidQuery {
            field: "limit",
            reason: format!("{limit}, at most {SUGGEST_LIMIT_MAX} allowed"),
        });
    }
    let words = schema::tokens(analyzer, prefix);
    let Some(last) = words.last() else {
        return Ok(Vec::new());
    };
    if limit == 0 {
        return Ok(Vec::new());
    }
    let still_typing = prefix.chars().last().is_some_and(|c| !c.is_whitespace());
    let mut name_prefix = words.join(" ");
    if !still_typing {
        name_prefix.push(' ');
    }
    // Names are returned in dictionary order, so the first few of each segment are enough
    // (a few spare for deleted ones); words are ranked by frequency, so all of them are read.
    let names = scan(
        searcher,
        fields,
        &suggest_term(tenant, SUGGEST_NAME, &name_prefix),
        (limit * 4).max(16),
    )?;
    // (what to show, the dictionary term it comes from, how many documents have it)
    let mut names: Vec<(String, String, u64)> = names
        .into_iter()
        .map(|(text, doc_freq)| {
            let term = suggest_term(tenant, SUGGEST_NAME, &text);
            (text, term, doc_freq)
        })
        .collect();
    names.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut completed_words: Vec<(String, String, u64)> = Vec::new();
    if still_typing {
        let head = words[..words.len() - 1].join(" ");
        for (word, doc_freq) in scan(
            searcher,
            fields,
            &suggest_term(tenant, SUGGEST_WORD, last),
            SUGGEST_SCAN_TERMS_MAX,
        )? {
            let term = suggest_term(tenant, SUGGEST_WORD, &word);
            let text = if head.is_empty() {
                word
            } else {
                format!("{head} {word}")
            };
            completed_words.push((text, term, doc_freq));
        }
        completed_words.sort_unstable_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    }

    // One word typed: the words it completes are the likely intent, whole names after them.
    // Several words: whole names first (they exist as typed), then the last word completed.
    let (first, second) = if words.len() == 1 {
        (completed_words, names)
    } else {
        (names, completed_words)
    };
    let mut out: Vec<String> = Vec::with_capacity(limit);
    for (text, term, _) in first.into_iter().chain(second) {
        if out.len() >= limit {
            break;
        }
        if out.contains(&text) {
            continue;
        }
        if has_live_doc(searcher, &Term::from_field_text(fields.suggest, &term))? {
            out.push(text);
        }
    }
    Ok(out)
}

/// Terms of the suggest field starting with `start` (the text after the tenant and kind
/// marker) with their document counts summed over segments; at most `per_segment_max` read
/// per segment, in dictionary order.
fn scan(
    searcher: &Searcher,
    fields: &Fields,
    start: &str,
    per_segment_max: usize,
) -> Result<HashMap<String, u64>, IndexError> {
    // The returned text starts after "tenant (16 hex digits) + kind".
    let text_from = 17;
    let mut found: HashMap<String, u64> = HashMap::new();
    for segment in searcher.segment_readers() {
        let inverted = segment.inverted_index(fields.suggest)?;
        let mut stream = inverted
            .terms()
            .range()
            .ge(start.as_bytes())
            .into_stream()?;
        let mut read = 0;
        while read < per_segment_max && stream.advance() {
            let key = stream.key();
            if !key.starts_with(start.as_bytes()) {
                break;
            }
            read += 1;
            if let Some(text) = key
                .get(text_from..)
                .and_then(|t| std::str::from_utf8(t).ok())
            {
                *found.entry(text.to_string()).or_default() += u64::from(stream.value().doc_freq);
            }
        }
    }
    Ok(found)
}

fn has_live_doc(searcher: &Searcher, term: &Term) -> Result<bool, IndexError> {
    for segment in searcher.segment_readers() {
        let inverted = segment.inverted_index(term.field())?;
        let Some(mut postings) = inverted.read_postings(term, IndexRecordOption::Basic)? else {
            continue;
        };
        let alive = segment.alive_bitset();
        let mut doc = postings.doc();
        while doc != TERMINATED {
            if alive.is_none_or(|bits| bits.is_alive(doc)) {
                return Ok(true);
            }
            doc = postings.advance();
        }
    }
    Ok(false)
}
