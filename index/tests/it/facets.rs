//! Facet counts: categories (parents count descendants), manufacturers, price bands.

use mercato_index::{FacetCount, PriceBand, ProductQuery};

use crate::support::{TestIndex, open, product};

fn catalog() -> TestIndex {
    let t = open();
    let mut docs = Vec::new();
    // Tools 1 > Hand 2 > Hammers 3; Tools 1 > Power 4.
    for (id, categories, manufacturer, price) in [
        (1, vec![3, 2, 1], 10, 500),
        (2, vec![3, 2, 1], 10, 1_500),
        (3, vec![2, 1], 11, 2_500),
        (4, vec![4, 1], 12, 10_000),
    ] {
        let mut doc = product(1, id, "Steel tool");
        doc.category_ids = categories;
        doc.manufacturer_id = manufacturer;
        doc.price_minor = price;
        if id == 4 {
            doc.group_prices = vec![(5, 900)];
        }
        docs.push(doc);
    }
    let mut other_text = product(1, 5, "Rubber mallet");
    other_text.category_ids = vec![3, 2, 1];
    other_text.manufacturer_id = 13;
    docs.push(other_text);
    t.put(docs);
    t
}

fn facet(value: u64, count: u64) -> FacetCount {
    FacetCount { value, count }
}

#[test]
fn facets_count_matching_products_per_category_manufacturer_and_price_band() {
    let t = catalog();
    let results = t.search(ProductQuery {
        tenant: 1,
        text: "steel ".into(),
        facets: true,
        price_bands: vec![1_000, 5_000],
        limit: 2,
        ..ProductQuery::default()
    });
    assert_eq!(results.total, 4);
    assert_eq!(results.hits.len(), 2);
    assert_eq!(
        results.categories,
        vec![facet(1, 4), facet(2, 3), facet(3, 2), facet(4, 1)]
    );
    assert_eq!(
        results.manufacturers,
        vec![facet(10, 2), facet(11, 1), facet(12, 1)]
    );
    assert_eq!(
        results.price_bands,
        vec![
            PriceBand {
                from: None,
                to: Some(1_000),
                count: 1
            },
            PriceBand {
                from: Some(1_000),
                to: Some(5_000),
                count: 2
            },
            PriceBand {
                from: Some(5_000),
                to: None,
                count: 1
            },
        ]
    );
}

#[test]
fn price_bands_use_the_group_price_and_respect_the_price_filter() {
    let t = catalog();
    let results = t.search(ProductQuery {
        tenant: 1,
        text: "steel ".into(),
        facets: true,
        customer_group_id: Some(5),
        price_bands: vec![5_000, 1_000, 1_000],
        price_max: Some(2_000),
        limit: 0,
        ..ProductQuery::default()
    });
    // Group 5 pays 900 for product 4; product 3 (2500) is filtered out.
    assert_eq!(results.total, 3);
    assert!(results.hits.is_empty());
    assert_eq!(
        results.price_bands,
        vec![
            PriceBand {
                from: None,
                to: Some(1_000),
                count: 2
            },
            PriceBand {
                from: Some(1_000),
                to: Some(5_000),
                count: 1
            },
            PriceBand {
                from: Some(5_000),
                to: None,
                count: 0
            },
        ]
    );
    assert_eq!(results.manufacturers, vec![facet(10, 2), facet(12, 1)]);
}

#[test]
fn facets_follow_filters_and_are_empty_when_not_asked() {
    let t = catalog();
    let results = t.search(ProductQuery {
        tenant: 1,
        category_id: Some(2),
        facets: true,
        ..ProductQuery::default()
    });
    assert_eq!(results.total, 4);
    assert_eq!(
        results.categories,
        vec![facet(1, 4), facet(2, 4), facet(3, 3)]
    );
    assert!(results.price_bands.is_empty());
    let results = t.search(ProductQuery {
        tenant: 1,
        price_bands: vec![1_000],
        ..ProductQuery::default()
    });
    assert!(results.categories.is_empty());
    assert!(results.manufacturers.is_empty());
    assert!(results.price_bands.is_empty());
}

#[test]
fn facet_counts_are_exact_for_ids_far_apart() {
    // Widely spread ids are counted in a hash map rather than an array: same answers.
    let t = open();
    let far = 1u64 << 40;
    let mut docs = Vec::new();
    for id in 1..=6u64 {
        let mut doc = product(1, id, "Copper wire");
        doc.category_ids = if id % 2 == 0 {
            vec![far, 5]
        } else {
            vec![u64::MAX - 1, 5]
        };
        doc.manufacturer_id = if id <= 4 { far * 3 } else { 7 };
        docs.push(doc);
    }
    t.put(docs);
    let results = t.search(ProductQuery {
        tenant: 1,
        text: "copper".into(),
        facets: true,
        ..ProductQuery::default()
    });
    assert_eq!(
        results.categories,
        vec![facet(5, 6), facet(far, 3), facet(u64::MAX - 1, 3)]
    );
    assert_eq!(results.manufacturers, vec![facet(far * 3, 4), facet(7, 2)]);
}
