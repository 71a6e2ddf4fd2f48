//! Query types and the reading of user text.
//!
//! User text never reaches Tantivy's query parser: it is split into words by the same analyzer
//! as the documents, grouped into units (a word, a quoted phrase, or a synonym group), and the
//! Tantivy query is built from those units programmatically (see [`crate::plan`]). Quotes,
//! operators, control characters and odd Unicode are therefore plain text; only the size
//! bounds below can reject a query.

use std::collections::HashSet;

use tantivy::tokenizer::TextAnalyzer;

use crate::IndexError;
use crate::schema;

/// Query text longer than this is refused (400), not cut: a cut query would silently search for
/// something else.
pub const QUERY_TEXT_BYTES_MAX: usize = 512;
/// At most this many words in one query.
pub const QUERY_TERMS_MAX: usize = 32;
/// Page size bound.
pub const RESULT_LIMIT_MAX: usize = 100;
/// offset + limit bound (deeper pages are refused; refine the query instead).
pub const RESULT_DEPTH_MAX: usize = 10_000;
pub const MANUFACTURER_FILTERS_MAX: usize = 100;
pub const ATTRIBUTE_FILTERS_MAX: usize = 20;
pub const PRICE_BAND_EDGES_MAX: usize = 20;
pub const SYNONYM_GROUPS_MAX: usize = 1_000;
pub const SYNONYM_GROUP_TERMS_MAX: usize = 20;
pub const STOP_WORDS_MAX: usize = 1_000;
/// Facet lists keep the values with the most hits, at most this many.
pub const FACET_VALUES_MAX: usize = 100;
pub const SUGGEST_LIMIT_MAX: usize = 20;
pub const SUGGEST_PREFIX_BYTES_MAX: usize = 128;

/// A word of at least this many characters matches with one typo ...
pub const FUZZY_ONE_CHARS_MIN: usize = 5;
/// ... and of at least this many with two.
pub const FUZZY_TWO_CHARS_MIN: usize = 9;
/// The last word is also matched as a prefix when it has at least this many characters (a
/// one-letter prefix would match a large part of the dictionary for little use; typeahead is
/// what [`crate::ShardIndex::suggest`] is for).
pub const PREFIX_CHARS_MIN: usize = 2;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProductSort {
    #[default]
    Relevance,
    PriceAsc,
    PriceDesc,
    Newest,
    BestSelling,
}

/// A product search of one tenant. `Default` is: every product of tenant 0, by relevance,
/// first 20, no facets; set `tenant` and what you need.
#[derive(Clone, Debug, PartialEq)]
pub struct ProductQuery {
    pub tenant: u64,
    pub text: String,
    /// Products of this category or any of its descendants.
    pub category_id: Option<u64>,
    /// Any of these manufacturers (empty: any manufacturer).
    pub manufacturer_ids: Vec<u64>,
    /// Inclusive bounds, minor units.
    pub price_min: Option<i64>,
    pub price_max: Option<i64>,
    /// Price filter, sort and bands use this group's price where the product has one, else base.
    pub customer_group_id: Option<u64>,
    pub in_stock: Option<bool>,
    /// Every pair must match (key and value compared case-insensitively).
    pub attributes: Vec<(String, String)>,
    pub sort: ProductSort,
    pub offset: usize,
    /// `limit` <= [`RESULT_LIMIT_MAX`], `offset + limit` <= [`RESULT_DEPTH_MAX`]; 0 asks only for
    /// the total and facets.
    pub limit: usize,
    pub facets: bool,
    /// Band edges in minor units: edges e0 < e1 < ... give bands (-inf, e0), [e0, e1), ...,
    /// [en, +inf). Unsorted or repeated edges are sorted and deduplicated.
    pub price_bands: Vec<i64>,
    /// The tenant's synonym groups: a word (or words, "t-shirt") of a group matches any member.
    pub synonyms: Vec<Vec<String>>,
    /// The tenant's stop words: dropped from the query unless nothing would remain.
    pub stop_words: Vec<String>,
    /// Fill [`ProductHit::name_snippet`] and [`ProductHit::description_snippet`].
    pub highlight: bool,
}

impl Default for ProductQuery {
    fn default() -> Self {
        ProductQuery {
            tenant: 0,
            text: String::new(),
            category_id: None,
            manufacturer_ids: Vec::new(),
            price_min: None,
            price_max: None,
            customer_group_id: None,
            in_stock: None,
            attributes: Vec::new(),
            sort: ProductSort::Relevance,
            offset: 0,
            limit: 20,
            facets: false,
            price_bands: Vec::new(),
            synonyms: Vec::new(),
            stop_words: Vec::new(),
            highlight: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProductHit {
    pub id: u64,
    /// Relevance score (also filled when sorting by another key; 0 for an empty text).
    pub score: f32,
    /// The name as HTML: matched words in `<b>…</b>`, everything else escaped.
    pub name_snippet: Option<String>,
    /// A fragment of the description around the matched words, as HTML; `None` when no word of
    /// the query occurs in the description.
    pub description_snippet: Option<String>,
}

/// A facet value (category id or manufacturer id) and how many matching products have it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FacetCount {
    pub value: u64,
    pub count: u64,
}

/// Products whose (effective) price is in `from..to` (`None`: unbounded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PriceBand {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub count: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProductResults {
    /// Every matching product (not only the page).
    pub total: u64,
    pub hits: Vec<ProductHit>,
    /// Most frequent first, at most [`FACET_VALUES_MAX`]; empty unless `facets`.
    pub categories: Vec<FacetCount>,
    pub manufacturers: Vec<FacetCount>,
    /// One per band of `price_bands` (empty unless `facets` and edges were given).
    pub price_bands: Vec<PriceBand>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendorQuery {
    pub tenant: u64,
    pub text: String,
    pub offset: usize,
    pub limit: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VendorHit {
    pub id: u64,
    pub score: f32,
    /// A fragment of the vendor's document text around the matched words, as HTML.
    pub snippet: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct VendorResults {
    pub total: u64,
    pub hits: Vec<VendorHit>,
}

/// One alternative of a unit: a single word, or several words that must appear in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Alternative {
    pub words: Vec<String>,
    /// Typo tolerance for a single word the user typed (0 for synonyms and phrases).
    pub fuzzy_distance: u8,
    /// Also match words starting with this one (the last word the user typed).
    pub prefix: bool,
}

/// Something every matching document must contain: any one of its alternatives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Unit {
    pub alternatives: Vec<Alternative>,
}

/// The user's text, read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ParsedText {
    pub units: Vec<Unit>,
    /// The text's words joined by spaces (for exact name and SKU matches).
    pub normalized: String,
    /// The text trimmed and lowercased (for an exact SKU match as typed).
    pub lowercase: String,
    /// The text is not blank but has no word to search for ("!!!", a 200-letter word): it
    /// matches nothing (a blank text matches everything).
    pub unsearchable: bool,
}

impl ParsedText {
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }
}

pub(crate) fn fuzzy_distance_for(word: &str) -> u8 {
    let chars = word.chars().count();
    if chars >= FUZZY_TWO_CHARS_MIN {
        2
    } else if chars >= FUZZY_ONE_CHARS_MIN {
        1
    } else {
        0
    }
}

/// Checks the bounds shared by every text query.
pub(crate) fn check_text(text: &str) -> Result<(), IndexError> {
    if text.len() > QUERY_TEXT_BYTES_MAX {
        return Err(IndexError::InvalidQuery {
            field: "text",
            reason: format!(
                "{} bytes, at most {QUERY_TEXT_BYTES_MAX} allowed",
                text.len()
            ),
        });
    }
    Ok(())
}

pub(crate) fn check_page(offset: usize, limit: usize) -> Result<(), IndexError> {
    if limit > RESULT_LIMIT_MAX {
        return Err(IndexError::InvalidQuery {
            field: "limit",
            reason: format!("{limit}, at most {RESULT_LIMIT_MAX} allowed"),
        });
    }
    if offset.saturating_add(limit) > RESULT_DEPTH_MAX {
        return Err(IndexError::InvalidQuery {
            field: "offset",
            reason: format!("offset + limit must be at most {RESULT_DEPTH_MAX}"),
        });
    }
    Ok(())
}

/// Reads `text` into units. `synonyms` and `stop_words` are the tenant's lists (empty for
/// vendor search).
pub(crate) fn parse_text(
    analyzer: &mut TextAnalyzer,
    text: &str,
    synonyms: &[Vec<String>],
    stop_words: &[String],
) -> Result<ParsedText, IndexError> {
    check_text(text)?;
    if synonyms.len() > SYNONYM_GROUPS_MAX {
        return Err(IndexError::InvalidQuery {
            field: "synonyms",
            reason: format!("at most {SYNONYM_GROUPS_MAX} groups allowed"),
        });
    }
    if let Some(group) = synonyms
        .iter()
        .find(|group| group.len() > SYNONYM_GROUP_TERMS_MAX)
    {
        return Err(IndexError::InvalidQuery {
            field: "synonyms",
            reason: format!(
                "a group of {} terms, at most {SYNONYM_GROUP_TERMS_MAX} allowed",
                group.len()
            ),
        });
    }
    if stop_words.len() > STOP_WORDS_MAX {
        return Err(IndexError::InvalidQuery {
            field: "stop_words",
            reason: format!("at most {STOP_WORDS_MAX} allowed"),
        });
    }

    // Balanced double quotes delimit phrases; with an odd count they are ordinary characters
    // (the analyzer drops them like any punctuation).
    let quotes = text.matches('"').count();
    let pieces: Vec<(bool, &str)> = if quotes >= 2 && quotes.is_multiple_of(2) {
        text.split('"')
            .enumerate()
            .map(|(index, piece)| (index % 2 == 1, piece))
            .collect()
    } else {
        vec![(false, text)]
    };
    // Prefix matching applies to the last word when the user is still typing it: the text does
    // not end with a space or a closing quote.
    let still_typing = text
        .chars()
        .last()
        .is_some_and(|c| !c.is_whitespace() && c != '"');

    let groups: Vec<Vec<Vec<String>>> = synonyms
        .iter()
        .map(|group| {
            group
                .iter()
                .map(|member| schema::tokens(analyzer, member))
                .filter(|words| !words.is_empty())
                .collect()
        })
        .collect();
    let stop: HashSet<String> = stop_words
        .iter()
        .flat_map(|word| schema::tokens(analyzer, word))
        .collect();

    let mut all_words: Vec<String> = Vec::new();
    let mut units: Vec<(Unit, bool)> = Vec::new(); // (unit, droppable stop word)
    let piece_count = pieces.len();
    for (piece_index, (is_phrase, piece)) in pieces.into_iter().enumerate() {
        let words = schema::tokens(analyzer, piece);
        all_words.extend(words.iter().cloned());
        if all_words.len() > QUERY_TERMS_MAX {
            return Err(IndexError::InvalidQuery {
                field: "text",
                reason: format!("more than {QUERY_TERMS_MAX} words"),
            });
        }
        if words.is_empty() {
            continue;
        }
        if is_phrase {
            units.push((
                Unit {
                    alternatives: vec![Alternative {
                        words,
                        fuzzy_distance: 0,
                        prefix: false,
                    }],
                },
                false,
            ));
            continue;
        }
        let last_piece = piece_index + 1 == piece_count;
        let mut position = 0;
        while position < words.len() {
            let rest = &words[position..];
            let matched = longest_synonym_match(&groups, rest);
            let (length, group) = match matched {
                Some((length, group)) => (length, Some(group)),
                None => (1, None),
            };
            let is_last_word = last_piece && position + length == words.len();
            let typed = &words[position..position + length];
            let own = if length == 1 {
                Alternative {
                    words: typed.to_vec(),
                    fuzzy_distance: fuzzy_distance_for(&typed[0]),
                    prefix: is_last_word
                        && still_typing
                        && typed[0].chars().count() >= PREFIX_CHARS_MIN,
                }
            } else {
                Alternative {
                    words: typed.to_vec(),
                    fuzzy_distance: 0,
                    prefix: false,
                }
            };
            let mut alternatives = vec![own];
            if let Some(group) = group {
                for member in &groups[group] {
                    if member.as_slice() != typed {
                        alternatives.push(Alternative {
                            words: member.clone(),
                            fuzzy_distance: 0,
                            prefix: false,
                        });
                    }
                }
            }
            let droppable = group.is_none() && length == 1 && stop.contains(&typed[0]);
            units.push((Unit { alternatives }, droppable));
            position += length;
        }
    }

    let keep_all = units.iter().all(|(_, droppable)| *droppable);
    let units = units
        .into_iter()
        .filter(|(_, droppable)| keep_all || !droppable)
        .map(|(unit, _)| unit)
        .collect();
    Ok(ParsedText {
        unsearchable: all_words.is_empty() && !text.trim().is_empty(),
        units,
        normalized: all_words.join(" "),
        lowercase: text.trim().to_lowercase(),
    })
}

/// The longest synonym member that `words` starts with: (its length in words, its group).
fn longest_synonym_match(groups: &[Vec<Vec<String>>], words: &[String]) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    for (group_index, group) in groups.iter().enumerate() {
        for member in group {
            if member.len() <= words.len()
                && words[..member.len()] == member[..]
                && best.is_none_or(|(length, _)| member.len() > length)
            {
                best = Some((member.len(), group_index));
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, synonyms: &[&[&str]], stop: &[&str]) -> ParsedText {
        let synonyms: Vec<Vec<String>> = synonyms
            .iter()
            .map(|g| g.iter().map(|s| s.to_string()).collect())
            .collect();
        let stop: Vec<String> = stop.iter().map(|s| s.to_string()).collect();
        parse_text(&mut schema::text_analyzer(), text, &synonyms, &stop).unwrap()
    }

    fn words(parsed: &ParsedText) -> Vec<Vec<Vec<String>>> {
        parsed
            .units
            .iter()
            .map(|u| u.alternatives.iter().map(|a| a.words.clone()).collect())
            .collect()
    }

    #[test]
    fn words_are_lowercased_folded_and_the_last_one_is_a_prefix() {
        let parsed = parse("Claw HAMMER Säge", &[], &[]);
        assert_eq!(parsed.normalized, "claw hammer sage");
        let last = &parsed.units[2].alternatives[0];
        assert!(last.prefix);
        assert!(!parsed.units[1].alternatives[0].prefix);
        assert_eq!(parsed.units[1].alternatives[0].fuzzy_distance, 1);
        assert_eq!(parsed.units[0].alternatives[0].fuzzy_distance, 0);
        assert!(!parse("hammer ", &[], &[]).units[0].alternatives[0].prefix);
    }

    #[test]
    fn multi_word_synonyms_match_in_the_text_and_expand_to_the_group() {
        let parsed = parse("red t-shirt", &[&["tee", "t-shirt"]], &[]);
        assert_eq!(
            words(&parsed),
            vec![
                vec![vec!["red".to_string()]],
                vec![
                    vec!["t".to_string(), "shirt".to_string()],
                    vec!["tee".to_string()]
                ]
            ]
        );
        let parsed = parse("tee", &[&["tee", "t-shirt"]], &[]);
        assert_eq!(parsed.units[0].alternatives.len(), 2);
    }

    #[test]
    fn stop_words_are_dropped_unless_nothing_would_remain() {
        assert_eq!(parse("the hammer", &[], &["the"]).units.len(), 1);
        assert_eq!(parse("the", &[], &["the"]).units.len(), 1);
    }

    #[test]
    fn balanced_quotes_make_phrases_and_unbalanced_ones_are_text() {
        let parsed = parse("\"claw hammer\" steel", &[], &[]);
        assert_eq!(parsed.units.len(), 2);
        assert_eq!(parsed.units[0].alternatives[0].words.len(), 2);
        let parsed = parse("\"claw hammer steel", &[], &[]);
        assert_eq!(parsed.units.len(), 3);
    }

    #[test]
    fn bounds_are_refused_with_the_field_named() {
        let long = "a".repeat(QUERY_TEXT_BYTES_MAX + 1);
        let error = parse_text(&mut schema::text_analyzer(), &long, &[], &[]).unwrap_err();
        assert!(matches!(
            error,
            IndexError::InvalidQuery { field: "text", .. }
        ));
        let many = "word ".repeat(QUERY_TERMS_MAX + 1);
        let error = parse_text(&mut schema::text_analyzer(), &many, &[], &[]).unwrap_err();
        assert!(matches!(
            error,
            IndexError::InvalidQuery { field: "text", .. }
        ));
    }
}
