//! Highlighted snippets.

use mercato_index::{IndexOp, ProductQuery, VendorDoc, VendorQuery};

use crate::support::{open, product};

#[test]
fn names_and_descriptions_are_highlighted_as_escaped_html() {
    let t = open();
    let mut doc = product(1, 1, "Claw <Hammer> & Co");
    doc.description = format!(
        "{} The forged claw hammer pulls nails. {}",
        "Filler words come first here. ".repeat(10),
        "More filler at the end. ".repeat(10)
    );
    t.put(vec![doc]);
    let results = t.search(ProductQuery {
        tenant: 1,
        text: "hammer nails".into(),
        highlight: true,
        ..ProductQuery::default()
    });
    let hit = &results.hits[0];
    assert_eq!(
        hit.name_snippet.as_deref(),
        Some("Claw &lt;<b>Hammer</b>&gt; &amp; Co")
    );
    let description = hit.description_snippet.as_deref().unwrap();
    assert!(description.contains("<b>hammer</b>"), "{description}");
    assert!(description.contains("<b>nails</b>"), "{description}");
    assert!(description.len() < 300, "{description}");
}

#[test]
fn typo_prefix_and_synonym_matches_are_highlighted() {
    let t = open();
    let mut doc = product(1, 1, "Cordless screwdriver");
    doc.description = "A tee shirt is included".into();
    t.put(vec![doc]);
    let results = t.search(ProductQuery {
        tenant: 1,
        text: "cordles t-shirt scr".into(),
        synonyms: vec![vec!["tee".into(), "t-shirt".into()]],
        highlight: true,
        ..ProductQuery::default()
    });
    let hit = &results.hits[0];
    assert_eq!(
        hit.name_snippet.as_deref(),
        Some("<b>Cordless</b> <b>screwdriver</b>")
    );
    assert_eq!(
        hit.description_snippet.as_deref(),
        Some("A <b>tee</b> <b>shirt</b> is included")
    );
}

#[test]
fn no_snippets_unless_asked_and_none_for_a_description_without_matches() {
    let t = open();
    let mut doc = product(1, 1, "Spanner");
    doc.description = "Chrome vanadium".into();
    t.put(vec![doc]);
    let plain = t.search(ProductQuery {
        tenant: 1,
        text: "spanner".into(),
        ..ProductQuery::default()
    });
    assert_eq!(plain.hits[0].name_snippet, None);
    assert_eq!(plain.hits[0].description_snippet, None);
    let highlighted = t.search(ProductQuery {
        tenant: 1,
        text: "spanner".into(),
        highlight: true,
        ..ProductQuery::default()
    });
    assert_eq!(
        highlighted.hits[0].name_snippet.as_deref(),
        Some("<b>Spanner</b>")
    );
    assert_eq!(highlighted.hits[0].description_snippet, None);
}

#[test]
fn vendor_hits_carry_a_snippet_of_their_document_text() {
    let t = open();
    t.index
        .apply(vec![IndexOp::UpsertVendor(VendorDoc {
            tenant: 1,
            id: 4,
            name: "Northwind Metals".into(),
            country: "DE".into(),
            verification: "approved".into(),
            text: "Company registration number HRB 12345, registered office Hamburg.".into(),
        })])
        .unwrap();
    t.index.commit(1).unwrap();
    let results = t
        .index
        .search_vendors(&VendorQuery {
            tenant: 1,
            text: "hamburg registration".into(),
            offset: 0,
            limit: 5,
        })
        .unwrap();
    assert_eq!(results.total, 1);
    let snippet = results.hits[0].snippet.as_deref().unwrap();
    assert!(snippet.contains("<b>Hamburg</b>"), "{snippet}");
    assert!(snippet.contains("<b>registration</b>"), "{snippet}");
}
