//! Full text: every searchable field, typo tolerance, prefixes, ranking, synonyms, stop words.

use mercato_index::ProductQuery;

use crate::support::{ids, open, product, sorted};

#[test]
fn every_searchable_field_is_searched() {
    let t = open();
    let mut by_description = product(1, 1, "Plain item");
    by_description.description = "Forged from vanadium steel".into();
    let mut by_sku = product(1, 2, "Plain item");
    by_sku.sku = "XQ-778".into();
    let mut by_manufacturer = product(1, 3, "Plain item");
    by_manufacturer.manufacturer_name = "Stanwick".into();
    let mut by_category = product(1, 4, "Plain item");
    by_category.category_path = "Garden > Irrigation > Sprinklers".into();
    let mut by_attribute = product(1, 5, "Plain item");
    by_attribute.attributes = vec![("colour".into(), "turquoise".into())];
    let by_name = product(1, 6, "Wheelbarrow");
    t.put(vec![
        by_description,
        by_sku,
        by_manufacturer,
        by_category,
        by_attribute,
        by_name,
    ]);
    assert_eq!(t.ids(1, "vanadium"), vec![1]);
    assert_eq!(t.ids(1, "xq-778"), vec![2]);
    assert_eq!(t.ids(1, "XQ 778"), vec![2]);
    assert_eq!(t.ids(1, "stanwick"), vec![3]);
    assert_eq!(t.ids(1, "irrigation"), vec![4]);
    assert_eq!(t.ids(1, "colour turquoise"), vec![5]);
    assert_eq!(t.ids(1, "wheelbarrow"), vec![6]);
    assert_eq!(t.ids(1, "plain item").len(), 5);
}

#[test]
fn all_words_must_match() {
    let t = open();
    t.put(vec![
        product(1, 1, "Claw hammer steel"),
        product(1, 2, "Claw hammer wooden"),
        product(1, 3, "Sledge hammer steel"),
    ]);
    assert_eq!(sorted(t.ids(1, "steel hammer ")), vec![1, 3]);
    assert_eq!(t.ids(1, "claw wooden "), vec![2]);
    assert!(t.ids(1, "claw plastic ").is_empty());
}

#[test]
fn a_misspelt_word_of_five_letters_or_more_still_matches() {
    let t = open();
    t.put(vec![
        product(1, 1, "Hammer"),
        product(1, 2, "Screwdriver"),
        product(1, 3, "Saw"),
        product(1, 4, "Drill"),
    ]);
    // One substitution, deletion, insertion, transposition (6 letters).
    for typo in ["hummer ", "hamer ", "hammmer ", "hmamer "] {
        assert_eq!(t.ids(1, typo), vec![1], "{typo}");
    }
    // Five letters typed: one typo.
    assert_eq!(t.ids(1, "drilk "), vec![4]);
    assert_eq!(t.ids(1, "dirll "), vec![4]);
    // Four letters typed: exact only (the word may be a different, short word).
    assert!(t.ids(1, "dril ").is_empty());
    // Two typos need nine letters or more.
    assert!(t.ids(1, "hmaemr ").is_empty());
    assert_eq!(t.ids(1, "scrwedrivr "), vec![2]);
    // Under five letters: exact only.
    assert!(t.ids(1, "sav ").is_empty());
    assert_eq!(t.ids(1, "saw "), vec![3]);
}

#[test]
fn the_last_word_matches_as_a_prefix_while_typing() {
    let t = open();
    t.put(vec![
        product(1, 1, "Cordless drill"),
        product(1, 2, "Cordless screwdriver"),
        product(1, 3, "Corded drill"),
    ]);
    assert_eq!(t.ids(1, "cordless dr"), vec![1]);
    assert_eq!(sorted(t.ids(1, "cordless scr")), vec![2]);
    assert_eq!(sorted(t.ids(1, "cord")), vec![1, 2, 3]);
    // A finished word (trailing space) is not a prefix.
    assert!(t.ids(1, "cordless dr ").is_empty());
    // Only the last word is a prefix.
    assert!(t.ids(1, "cor drill").is_empty());
}

#[test]
fn exact_sku_and_exact_name_matches_rank_first() {
    let t = open();
    let mut many_mentions = product(1, 1, "Hammer drill hammer set hammer");
    many_mentions.description = "hammer hammer hammer".into();
    let exact_name = product(1, 2, "Hammer");
    let mut exact_sku = product(1, 3, "Mallet");
    exact_sku.sku = "HAMMER".into();
    exact_sku.description = "a hammer".into();
    t.put(vec![many_mentions, exact_name, exact_sku]);
    assert_eq!(t.ids(1, "hammer"), vec![3, 2, 1]);

    let t = open();
    let mut with_sku = product(1, 10, "Widget");
    with_sku.sku = "AB-1234".into();
    let mut mentions_sku = product(1, 11, "Widget adapter for AB-1234 AB 1234");
    mentions_sku.description = "fits AB-1234".into();
    t.put(vec![mentions_sku, with_sku]);
    assert_eq!(t.ids(1, "ab-1234")[0], 10);
    assert_eq!(t.ids(1, "AB 1234")[0], 10);
}

#[test]
fn words_in_the_name_outrank_words_in_the_description() {
    let t = open();
    let mut in_description = product(1, 1, "Toolbox");
    in_description.description = "Holds a spanner and more".into();
    let in_name = product(1, 2, "Spanner 13 mm");
    t.put(vec![in_description, in_name]);
    assert_eq!(t.ids(1, "spanner"), vec![2, 1]);
}

#[test]
fn exact_matches_outrank_typo_matches() {
    let t = open();
    t.put(vec![product(1, 1, "Hamper"), product(1, 2, "Hammer")]);
    assert_eq!(t.ids(1, "hammer "), vec![2, 1]);
}

#[test]
fn synonyms_expand_to_their_group_including_multi_word_members() {
    let t = open();
    t.put(vec![
        product(1, 1, "Cotton T-shirt"),
        product(1, 2, "Cotton tee"),
        product(1, 3, "Cotton shirt"),
        product(1, 4, "Cotton sweater"),
    ]);
    let search = |text: &str| {
        sorted(ids(&t.search(ProductQuery {
            tenant: 1,
            text: text.to_string(),
            synonyms: vec![
                vec!["tee".into(), "t-shirt".into()],
                vec!["sweater".into(), "jumper".into()],
            ],
            ..ProductQuery::default()
        })))
    };
    assert_eq!(search("tee "), vec![1, 2]);
    assert_eq!(search("t-shirt "), vec![1, 2]);
    assert_eq!(search("cotton t shirt "), vec![1, 2]);
    assert_eq!(search("jumper "), vec![4]);
    // Without the synonyms the words match only themselves.
    assert_eq!(sorted(t.ids(1, "tee ")), vec![2]);
    assert!(t.ids(1, "jumper ").is_empty());
}

#[test]
fn stop_words_are_dropped_unless_the_query_would_be_empty() {
    let t = open();
    t.put(vec![product(1, 1, "Hammer"), product(1, 2, "The Saw")]);
    let search = |text: &str| {
        sorted(ids(&t.search(ProductQuery {
            tenant: 1,
            text: text.to_string(),
            stop_words: vec!["the".into(), "for".into()],
            ..ProductQuery::default()
        })))
    };
    assert_eq!(search("the hammer "), vec![1]);
    assert_eq!(search("hammer for "), vec![1]);
    assert_eq!(search("the "), vec![2]);
    // Without stop words, "the" is a word like any other.
    assert!(t.ids(1, "the hammer ").is_empty());
}

#[test]
fn quoted_words_are_a_phrase() {
    let t = open();
    t.put(vec![
        product(1, 1, "Claw hammer"),
        product(1, 2, "Hammer with claw"),
    ]);
    assert_eq!(t.ids(1, "\"claw hammer\""), vec![1]);
    assert_eq!(sorted(t.ids(1, "claw hammer ")), vec![1, 2]);
}

#[test]
fn accents_and_case_are_folded() {
    let t = open();
    t.put(vec![
        product(1, 1, "Säge für Holz"),
        product(1, 2, "CAFÉ TABLE"),
    ]);
    assert_eq!(t.ids(1, "sage fur "), vec![1]);
    assert_eq!(t.ids(1, "SÄGE "), vec![1]);
    assert_eq!(t.ids(1, "cafe table "), vec![2]);
}

#[test]
fn an_empty_text_lists_the_tenants_products() {
    let t = open();
    t.put(vec![
        product(1, 1, "A"),
        product(1, 2, "B"),
        product(2, 3, "C"),
    ]);
    let results = t.search(ProductQuery {
        tenant: 1,
        ..ProductQuery::default()
    });
    assert_eq!(results.total, 2);
    assert_eq!(sorted(ids(&results)), vec![1, 2]);
}
