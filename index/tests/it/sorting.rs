//! Sorts and pagination.

use mercato_index::{ProductQuery, ProductSort};

use crate::support::{TestIndex, ids, open, product};

fn catalog() -> TestIndex {
    let t = open();
    let mut docs = Vec::new();
    for (id, price, created_ms, units_sold) in [
        (1, 3_000, 100, 5),
        (2, 1_000, 300, 50),
        (3, 2_000, 200, 0),
        (4, 4_000, 50, 7),
    ] {
        let mut doc = product(1, id, "Steel bolt");
        doc.price_minor = price;
        doc.created_ms = created_ms;
        doc.units_sold = units_sold;
        docs.push(doc);
    }
    // Group 9 pays 500 for product 4.
    docs[3].group_prices = vec![(3, 9_999), (9, 500)];
    t.put(docs);
    t
}

fn sorted_by(t: &TestIndex, sort: ProductSort, customer_group_id: Option<u64>) -> Vec<u64> {
    ids(&t.search(ProductQuery {
        tenant: 1,
        text: "bolt ".into(),
        sort,
        customer_group_id,
        ..ProductQuery::default()
    }))
}

#[test]
fn sorts_by_price_newest_and_best_selling() {
    let t = catalog();
    assert_eq!(sorted_by(&t, ProductSort::PriceAsc, None), vec![2, 3, 1, 4]);
    assert_eq!(
        sorted_by(&t, ProductSort::PriceDesc, None),
        vec![4, 1, 3, 2]
    );
    assert_eq!(sorted_by(&t, ProductSort::Newest, None), vec![2, 3, 1, 4]);
    assert_eq!(
        sorted_by(&t, ProductSort::BestSelling, None),
        vec![2, 4, 1, 3]
    );
}

#[test]
fn price_sorts_use_the_buyers_group_price() {
    let t = catalog();
    assert_eq!(
        sorted_by(&t, ProductSort::PriceAsc, Some(9)),
        vec![4, 2, 3, 1]
    );
    assert_eq!(
        sorted_by(&t, ProductSort::PriceDesc, Some(3)),
        vec![4, 1, 3, 2]
    );
}

#[test]
fn pages_are_consecutive_slices_of_one_order() {
    let t = open();
    t.put(
        (1..=25)
            .map(|id| {
                let mut doc = product(1, id, "Washer");
                doc.price_minor = (id as i64) * 10;
                doc
            })
            .collect(),
    );
    let page = |offset, limit| {
        ids(&t.search(ProductQuery {
            tenant: 1,
            text: "washer".into(),
            sort: ProductSort::PriceAsc,
            offset,
            limit,
            ..ProductQuery::default()
        }))
    };
    let mut all = page(0, 10);
    all.extend(page(10, 10));
    all.extend(page(20, 10));
    assert_eq!(all, (1..=25).collect::<Vec<u64>>());
    assert!(page(30, 10).is_empty());
    let counted = t.search(ProductQuery {
        tenant: 1,
        text: "washer".into(),
        limit: 0,
        ..ProductQuery::default()
    });
    assert_eq!(counted.total, 25);
    assert!(counted.hits.is_empty());
}

#[test]
fn relevance_pages_do_not_repeat_or_skip() {
    let t = open();
    t.put(
        (1..=30)
            .map(|id| product(1, id, &"nut ".repeat(1 + (id as usize % 4))))
            .collect(),
    );
    let mut seen: Vec<u64> = Vec::new();
    for offset in (0..30).step_by(7) {
        seen.extend(ids(&t.search(ProductQuery {
            tenant: 1,
            text: "nut".into(),
            offset,
            limit: 7,
            ..ProductQuery::default()
        })));
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=30).collect::<Vec<u64>>());
}

#[test]
fn equal_scores_rank_by_product_id_whatever_the_index_order() {
    let t = open();
    // Same text, so the same score: written highest id first, in two commits (two segments),
    // so index order is the reverse of id order.
    t.put(
        (21..=40)
            .rev()
            .map(|id| product(1, id, "Brass hinge"))
            .collect(),
    );
    t.put(
        (1..=20)
            .rev()
            .map(|id| product(1, id, "Brass hinge"))
            .collect(),
    );
    let page = |offset: usize, limit: usize| {
        ids(&t.search(ProductQuery {
            tenant: 1,
            text: "hinge ".into(),
            offset,
            limit,
            ..ProductQuery::default()
        }))
    };
    assert_eq!(page(0, 40), (1..=40).collect::<Vec<u64>>());
    // The order holds when fewer are kept than match (the heap's rejection path).
    assert_eq!(page(0, 3), vec![1, 2, 3]);
    assert_eq!(page(25, 3), vec![26, 27, 28]);
}
