//! Filters: category with descendants, manufacturer, price (with the buyer's group price),
//! stock, attributes.

use mercato_index::{IndexError, ProductQuery};

use crate::support::{TestIndex, ids, open, product, sorted};

/// Categories: 1 Tools > 2 Hand tools > 3 Hammers; 1 Tools > 4 Power tools.
fn catalog() -> TestIndex {
    let t = open();
    let mut hammer = product(1, 1, "Claw hammer");
    hammer.category_ids = vec![3, 2, 1];
    hammer.manufacturer_id = 10;
    hammer.price_minor = 2_000;
    hammer.group_prices = vec![(7, 1_500), (8, 2_500)];
    hammer.attributes = vec![
        ("Colour".into(), "Red".into()),
        ("weight".into(), "16 oz".into()),
    ];
    let mut screwdriver = product(1, 2, "Screwdriver set");
    screwdriver.category_ids = vec![2, 1];
    screwdriver.manufacturer_id = 11;
    screwdriver.price_minor = 1_000;
    screwdriver.in_stock = false;
    screwdriver.attributes = vec![("colour".into(), "blue".into())];
    let mut drill = product(1, 3, "Cordless drill");
    drill.category_ids = vec![4, 1];
    drill.manufacturer_id = 12;
    drill.price_minor = 9_000;
    drill.group_prices = vec![(7, 500)];
    drill.attributes = vec![("colour".into(), "red".into())];
    t.put(vec![hammer, screwdriver, drill]);
    t
}

fn filtered(t: &TestIndex, query: ProductQuery) -> Vec<u64> {
    sorted(ids(&t.search(ProductQuery { tenant: 1, ..query })))
}

#[test]
fn category_filter_includes_descendants() {
    let t = catalog();
    let in_category = |category| {
        filtered(
            &t,
            ProductQuery {
                category_id: Some(category),
                ..ProductQuery::default()
            },
        )
    };
    assert_eq!(in_category(1), vec![1, 2, 3]);
    assert_eq!(in_category(2), vec![1, 2]);
    assert_eq!(in_category(3), vec![1]);
    assert_eq!(in_category(4), vec![3]);
    assert!(in_category(99).is_empty());
}

#[test]
fn manufacturer_filter_matches_any_listed() {
    let t = catalog();
    let by = |manufacturer_ids: Vec<u64>| {
        filtered(
            &t,
            ProductQuery {
                manufacturer_ids,
                ..ProductQuery::default()
            },
        )
    };
    assert_eq!(by(vec![10]), vec![1]);
    assert_eq!(by(vec![10, 12]), vec![1, 3]);
    assert!(by(vec![99]).is_empty());
    assert_eq!(by(vec![]), vec![1, 2, 3]);
}

#[test]
fn price_range_is_inclusive_and_uses_the_buyers_group_price() {
    let t = catalog();
    let priced = |price_min, price_max, customer_group_id| {
        filtered(
            &t,
            ProductQuery {
                price_min,
                price_max,
                customer_group_id,
                ..ProductQuery::default()
            },
        )
    };
    assert_eq!(priced(Some(1_000), Some(2_000), None), vec![1, 2]);
    assert_eq!(priced(Some(1_001), None, None), vec![1, 3]);
    assert_eq!(priced(None, Some(999), None), Vec::<u64>::new());
    // Group 7: hammer 1500, drill 500; the screwdriver has no group price: base 1000.
    assert_eq!(priced(None, Some(1_000), Some(7)), vec![2, 3]);
    assert_eq!(priced(Some(1_500), Some(1_500), Some(7)), vec![1]);
    // Group 8: only the hammer has a group price (2500).
    assert_eq!(priced(Some(2_100), Some(3_000), Some(8)), vec![1]);
    // A group with no prices anywhere is the base price.
    assert_eq!(priced(Some(1_000), Some(2_000), Some(99)), vec![1, 2]);
}

#[test]
fn a_price_range_upside_down_is_refused() {
    let t = catalog();
    let error = t
        .index
        .search_products(&ProductQuery {
            tenant: 1,
            price_min: Some(10),
            price_max: Some(5),
            ..ProductQuery::default()
        })
        .unwrap_err();
    assert!(matches!(
        error,
        IndexError::InvalidQuery {
            field: "price_min",
            ..
        }
    ));
}

#[test]
fn stock_filter() {
    let t = catalog();
    let stocked = |in_stock| {
        filtered(
            &t,
            ProductQuery {
                in_stock,
                ..ProductQuery::default()
            },
        )
    };
    assert_eq!(stocked(Some(true)), vec![1, 3]);
    assert_eq!(stocked(Some(false)), vec![2]);
    assert_eq!(stocked(None), vec![1, 2, 3]);
}

#[test]
fn attribute_filters_all_match_case_insensitively() {
    let t = catalog();
    let with = |attributes: &[(&str, &str)]| {
        filtered(
            &t,
            ProductQuery {
                attributes: attributes
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..ProductQuery::default()
            },
        )
    };
    assert_eq!(with(&[("colour", "red")]), vec![1, 3]);
    assert_eq!(with(&[("COLOUR", "Red")]), vec![1, 3]);
    assert_eq!(with(&[("colour", "red"), ("weight", "16 oz")]), vec![1]);
    assert_eq!(with(&[("colour", "blue")]), vec![2]);
    assert!(with(&[("colour", "green")]).is_empty());
    // "key=value" is matched whole, not as a prefix.
    assert!(with(&[("colour", "re")]).is_empty());
}

#[test]
fn filters_combine_with_text() {
    let t = catalog();
    let results = filtered(
        &t,
        ProductQuery {
            text: "cordless dril".into(),
            category_id: Some(1),
            in_stock: Some(true),
            attributes: vec![("colour".into(), "red".into())],
            ..ProductQuery::default()
        },
    );
    assert_eq!(results, vec![3]);
}

#[test]
fn filter_bounds_are_refused_with_the_field_named() {
    let t = catalog();
    let refused = |query: ProductQuery| match t
        .index
        .search_products(&ProductQuery { tenant: 1, ..query })
    {
        Err(IndexError::InvalidQuery { field, .. }) => field,
        other => panic!("expected InvalidQuery, got {other:?}"),
    };
    assert_eq!(
        refused(ProductQuery {
            manufacturer_ids: (0..101).collect(),
            ..ProductQuery::default()
        }),
        "manufacturer_ids"
    );
    assert_eq!(
        refused(ProductQuery {
            attributes: vec![("a".into(), "b".into()); 21],
            ..ProductQuery::default()
        }),
        "attributes"
    );
    assert_eq!(
        refused(ProductQuery {
            price_bands: (0..21).collect(),
            ..ProductQuery::default()
        }),
        "price_bands"
    );
    assert_eq!(
        refused(ProductQuery {
            limit: 101,
            ..ProductQuery::default()
        }),
        "limit"
    );
    assert_eq!(
        refused(ProductQuery {
            offset: 9_990,
            limit: 11,
            ..ProductQuery::default()
        }),
        "offset"
    );
    // The deepest allowed page is fine.
    t.index
        .search_products(&ProductQuery {
            tenant: 1,
            offset: 9_900,
            limit: 100,
            ..ProductQuery::default()
        })
        .unwrap();
}
