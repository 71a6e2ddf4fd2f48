//! Malformed input is plain text or InvalidQuery, never a panic or an internal error.

use mercato_index::{
    IndexError, ProductQuery, QUERY_TERMS_MAX, QUERY_TEXT_BYTES_MAX, ShardIndex, VendorQuery,
};
use proptest::prelude::*;

use crate::support::{TestIndex, open, product};

fn catalog() -> TestIndex {
    let t = open();
    t.put(vec![
        product(1, 1, "Claw hammer \"pro\" (16 oz) AND more"),
        product(1, 2, "日本の鋸 saw"),
        product(1, 3, "Ключ гаечный"),
    ]);
    t
}

/// Runs `text` through every text entry point; only InvalidQuery is an acceptable error.
fn exercise(index: &ShardIndex, text: &str) -> Option<u64> {
    let products = index.search_products(&ProductQuery {
        tenant: 1,
        text: text.to_string(),
        facets: true,
        highlight: true,
        synonyms: vec![vec![text.to_string(), "hammer".into()]],
        stop_words: vec![text.to_string()],
        ..ProductQuery::default()
    });
    let vendors = index.search_vendors(&VendorQuery {
        tenant: 1,
        text: text.to_string(),
        offset: 0,
        limit: 10,
    });
    let suggestions = index.suggest(1, text, 10);
    for error in [
        products.as_ref().err(),
        vendors.as_ref().err(),
        suggestions.as_ref().err(),
    ]
    .into_iter()
    .flatten()
    {
        assert!(
            matches!(error, IndexError::InvalidQuery { .. }),
            "{text:?}: {error}"
        );
    }
    products.ok().map(|results| results.total)
}

#[test]
fn query_syntax_is_plain_text() {
    let t = catalog();
    for text in [
        "\"claw hammer",
        "claw hammer\"",
        "\"\"\"",
        "\"",
        "hammer AND NOT saw",
        "name:hammer",
        "hammer^10",
        "hamm*",
        "hammer~2",
        "(claw OR",
        "[1 TO 5]",
        "-hammer",
        "+hammer",
        "\\",
        "hammer\\\"",
        "{}[]()<>!?*~^:",
    ] {
        exercise(&t.index, text);
    }
    // The words in them are searched like any words.
    assert_eq!(t.ids(1, "\"claw hammer"), vec![1]);
    assert_eq!(t.ids(1, "hammer AND"), vec![1]);
    assert_eq!(t.ids(1, "name:hammer"), Vec::<u64>::new());
}

#[test]
fn odd_unicode_and_control_characters_are_harmless() {
    let t = catalog();
    for text in [
        "\u{0}",
        "ham\u{0}mer",
        "\u{7}\u{8}\u{1b}[31m",
        "\u{200b}hammer\u{200b}",
        "\u{202e}remmah",
        "e\u{301}\u{301}\u{301}\u{301}",
        "🔨🔨🔨",
        "\u{fffd}\u{fffe}",
        "\r\n\t",
        "ǅ ẞ ﬁ",
    ] {
        exercise(&t.index, text);
    }
    assert_eq!(t.ids(1, "\u{200b}hammer"), vec![1]);
    // No word segmentation for scripts without spaces: a run of ideographs is one word.
    assert_eq!(t.ids(1, "日本の鋸"), vec![2]);
    assert_eq!(t.ids(1, "saw"), vec![2]);
    assert_eq!(t.ids(1, "ключ"), vec![3]);
}

#[test]
fn text_with_no_searchable_word_finds_nothing() {
    let t = catalog();
    for text in ["!!!", "---", "\u{0}", &"x".repeat(200)] {
        let results = t.search(ProductQuery {
            tenant: 1,
            text: text.to_string(),
            ..ProductQuery::default()
        });
        assert_eq!(results.total, 0, "{text:?}");
    }
    // A blank text lists everything.
    let results = t.search(ProductQuery {
        tenant: 1,
        text: "   ".into(),
        ..ProductQuery::default()
    });
    assert_eq!(results.total, 3);
}

#[test]
fn huge_inputs_are_refused_naming_the_field() {
    let t = catalog();
    let refused = |text: &str| {
        t.index
            .search_products(&ProductQuery {
                tenant: 1,
                text: text.to_string(),
                ..ProductQuery::default()
            })
            .unwrap_err()
    };
    assert!(matches!(
        refused(&"a".repeat(QUERY_TEXT_BYTES_MAX + 1)),
        IndexError::InvalidQuery { field: "text", .. }
    ));
    assert!(matches!(
        refused(&"ab ".repeat(QUERY_TERMS_MAX + 1)),
        IndexError::InvalidQuery { field: "text", .. }
    ));
    // Exactly at the bounds is fine.
    exercise(&t.index, &"a".repeat(QUERY_TEXT_BYTES_MAX));
    exercise(&t.index, &"ab ".repeat(QUERY_TERMS_MAX));
    assert!(matches!(
        t.index.suggest(1, &"a".repeat(1000), 5).unwrap_err(),
        IndexError::InvalidQuery {
            field: "prefix",
            ..
        }
    ));
    assert!(matches!(
        t.index.suggest(1, "ham", 1000).unwrap_err(),
        IndexError::InvalidQuery { field: "limit", .. }
    ));
}

/// One index for all property cases (opening one per case would dominate the run).
static SHARED: std::sync::LazyLock<TestIndex> = std::sync::LazyLock::new(catalog);

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_answered_or_refused_never_a_panic(text in any::<String>()) {
        exercise(&SHARED.index, &text);
    }

    #[test]
    fn any_mix_of_query_punctuation_is_answered(text in "[\"'()\\[\\]{}:*?~^+\\-!\\\\ a-z0-9\u{0}-\u{1f}]{0,80}") {
        prop_assert!(exercise(&SHARED.index, &text).is_some());
    }
}
