//! Highlighted snippets of hits.
//!
//! The query matches the `all` field with exact, typo-tolerant and prefix automata, so the words
//! to highlight in a hit's name or description are not the query's terms: they are the hit's own
//! words that a query word matches under the same rules. Those words are handed to Tantivy's
//! [`SnippetGenerator`], which picks the best fragment.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::ops::Range;

use tantivy::Score;
use tantivy::schema::Field;
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::TextAnalyzer;

use crate::query::ParsedText;
use crate::schema;

/// Description and vendor-text fragments are at most about this many bytes.
pub const SNIPPET_BYTES_MAX: usize = 200;

pub(crate) struct Highlighter {
    /// (word, typo distance, prefix) for every word of every alternative of the query.
    words: Vec<(String, u8, bool)>,
    analyzer: TextAnalyzer,
}

impl Highlighter {
    pub fn new(text: &ParsedText) -> Self {
        let mut words = Vec::new();
        for unit in &text.units {
            for alternative in &unit.alternatives {
                for word in &alternative.words {
                    words.push((word.clone(), alternative.fuzzy_distance, alternative.prefix));
                }
            }
        }
        Highlighter {
            words,
            analyzer: schema::text_analyzer(),
        }
    }

    fn matches(&self, token: &str) -> bool {
        self.words.iter().any(|(word, distance, prefix)| {
            token == word
                || (*prefix && token.starts_with(word.as_str()))
                || (*distance > 0 && within_distance(word, token, usize::from(*distance)))
                || (*prefix
                    && *distance > 0
                    && token.len() > word.len()
                    && within_distance(
                        word,
                        schema::truncate(token, word.len()),
                        usize::from(*distance),
                    ))
        })
    }

    /// Whether some word of `text` is one the query matches.
    pub fn any_match(&mut self, text: &str) -> bool {
        schema::tokens(&mut self.analyzer, text)
            .iter()
            .any(|token| self.matches(token))
    }

    fn generator(&mut self, field: Field, text: &str, max_bytes: usize) -> SnippetGenerator {
        let mut terms: BTreeMap<String, Score> = BTreeMap::new();
        for token in schema::tokens(&mut self.analyzer, text) {
            if !terms.contains_key(&token) && self.matches(&token) {
                terms.insert(token, 1.0);
            }
        }
        SnippetGenerator::new(terms, self.analyzer.clone(), field, max_bytes)
    }

    /// The whole of `text` as HTML with matched words in `<b>`.
    pub fn whole(&mut self, field: Field, text: &str) -> String {
        let snippet = self.generator(field, text, text.len()).snippet(text);
        let offset = snippet.fragment_range().start;
        let ranges: Vec<Range<usize>> = snippet
            .highlighted()
            .iter()
            .map(|range| range.start + offset..range.end + offset)
            .collect();
        html(text, &ranges)
    }

    /// The best fragment of `text` around matched words, as HTML; `None` if no word matches.
    pub fn fragment(&mut self, field: Field, text: &str) -> Option<String> {
        let snippet = self.generator(field, text, SNIPPET_BYTES_MAX).snippet(text);
        if snippet.highlighted().is_empty() {
            return None;
        }
        Some(html(snippet.fragment(), snippet.highlighted()))
    }
}

/// `text` HTML-escaped, with `ranges` (sorted, disjoint, on character boundaries) in `<b>`.
fn html(text: &str, ranges: &[Range<usize>]) -> String {
    let mut out = String::with_capacity(text.len() + ranges.len() * 7);
    let mut at = 0;
    for range in ranges {
        if range.start < at || range.end > text.len() || range.start > range.end {
            continue;
        }
        escape_into(&mut out, &text[at..range.start]);
        out.push_str("<b>");
        escape_into(&mut out, &text[range.clone()]);
        out.push_str("</b>");
        at = range.end;
    }
    escape_into(&mut out, &text[at..]);
    out
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c if c.is_control() => {
                let _ = write!(out, "&#x{:x};", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

/// Optimal string alignment distance of `a` and `b` is at most `max` (a transposition costs 1,
/// as in the query's automata).
pub(crate) fn within_distance(a: &str, b: &str, max: usize) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return false;
    }
    let width = b.len() + 1;
    let mut rows = vec![0usize; (a.len() + 1) * width];
    for (j, cell) in rows.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        rows[i * width] = i;
        let mut row_min = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[(i - 1) * width + j] + 1)
                .min(rows[i * width + j - 1] + 1)
                .min(rows[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[(i - 2) * width + j - 2] + 1);
            }
            rows[i * width + j] = best;
            row_min = row_min.min(best);
        }
        if row_min > max {
            return false;
        }
    }
    rows[a.len() * width + b.len()] <= max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits_and_transpositions() {
        assert!(within_distance("hammer", "hammer", 0));
        assert!(within_distance("hammer", "hamer", 1));
        assert!(within_distance("hammer", "hmamer", 1));
        assert!(!within_distance("hammer", "hmaer", 1));
        assert!(within_distance("screwdriver", "scrwedrivr", 2));
    }

    #[test]
    fn html_escapes_and_marks_ranges() {
        let ranges = vec![0..1, 2..3];
        assert_eq!(html("a<b & c", &ranges), "<b>a</b>&lt;<b>b</b> &amp; c");
    }
}
