//! No query returns another tenant's document: hits, totals, facets, suggestions, vendors.

use mercato_index::{IndexOp, ProductQuery, VendorDoc, VendorQuery};

use crate::support::{ids, open, product, sorted};

#[test]
fn no_search_facet_or_suggestion_crosses_tenants() {
    let t = open();
    let mut a = product(1, 1, "Titanium hammer");
    a.category_ids = vec![100];
    a.manufacturer_id = 1000;
    let mut b = product(2, 1, "Titanium hammer");
    b.category_ids = vec![200];
    b.manufacturer_id = 2000;
    let mut b_only = product(2, 2, "Zirconium anvil");
    b_only.sku = "SECRET-SKU".into();
    t.put(vec![a, b, b_only]);

    // Same id in two tenants: each sees its own.
    let results = t.search(ProductQuery {
        tenant: 1,
        text: "titanium".into(),
        facets: true,
        price_bands: vec![1],
        ..ProductQuery::default()
    });
    assert_eq!(results.total, 1);
    assert_eq!(ids(&results), vec![1]);
    assert_eq!(results.categories.len(), 1);
    assert_eq!(results.categories[0].value, 100);
    assert_eq!(results.manufacturers[0].value, 1000);
    assert_eq!(results.price_bands.iter().map(|b| b.count).sum::<u64>(), 1);

    // Tenant 2's words, typos, prefixes, SKU, filters find nothing in tenant 1.
    for text in ["zirconium", "zirconum ", "zirc", "secret-sku", "anvil "] {
        assert!(t.ids(1, text).is_empty(), "{text}");
        assert!(!t.ids(2, text).is_empty(), "{text}");
    }
    let by_category = t.search(ProductQuery {
        tenant: 1,
        category_id: Some(200),
        ..ProductQuery::default()
    });
    assert_eq!(by_category.total, 0);
    let all_of_1 = t.search(ProductQuery {
        tenant: 1,
        facets: true,
        ..ProductQuery::default()
    });
    assert_eq!(all_of_1.total, 1);
    assert!(all_of_1.manufacturers.iter().all(|f| f.value == 1000));
    // A tenant with nothing sees nothing.
    assert_eq!(
        t.search(ProductQuery {
            tenant: 3,
            ..ProductQuery::default()
        })
        .total,
        0
    );

    // Suggestions.
    assert!(t.index.suggest(1, "zir", 10).unwrap().is_empty());
    assert_eq!(
        t.index.suggest(2, "zir", 10).unwrap(),
        vec!["zirconium", "zirconium anvil"]
    );
    assert_eq!(
        t.index.suggest(1, "tit", 10).unwrap(),
        vec!["titanium", "titanium hammer"]
    );
}

#[test]
fn vendor_search_stays_in_its_tenant_and_apart_from_products() {
    let t = open();
    t.put(vec![product(1, 1, "Granite tile")]);
    t.index
        .apply(vec![
            IndexOp::UpsertVendor(VendorDoc {
                tenant: 1,
                id: 1,
                name: "Granite Works Ltd".into(),
                country: "IE".into(),
                verification: "pending".into(),
                text: "Certificate of incorporation".into(),
            }),
            IndexOp::UpsertVendor(VendorDoc {
                tenant: 2,
                id: 2,
                name: "Granite Imports".into(),
                ..VendorDoc::default()
            }),
        ])
        .unwrap();
    t.index.commit(10).unwrap();
    let vendors = |tenant| {
        t.index
            .search_vendors(&VendorQuery {
                tenant,
                text: "granite".into(),
                offset: 0,
                limit: 10,
            })
            .unwrap()
    };
    assert_eq!(
        vendors(1).hits.iter().map(|h| h.id).collect::<Vec<_>>(),
        vec![1]
    );
    assert_eq!(
        vendors(2).hits.iter().map(|h| h.id).collect::<Vec<_>>(),
        vec![2]
    );
    // Products search does not return vendors.
    assert_eq!(sorted(t.ids(1, "granite")), vec![1]);
    assert!(t.ids(2, "granite").is_empty());
}

#[test]
fn delete_tenant_removes_only_that_tenants_documents() {
    let t = open();
    t.put(vec![
        product(1, 1, "Copper pipe"),
        product(2, 1, "Copper pipe"),
    ]);
    t.index
        .apply(vec![
            IndexOp::UpsertVendor(VendorDoc {
                tenant: 1,
                id: 5,
                name: "Copper Co".into(),
                ..VendorDoc::default()
            }),
            IndexOp::DeleteTenant { tenant: 1 },
        ])
        .unwrap();
    t.index.commit(20).unwrap();
    assert!(t.ids(1, "copper").is_empty());
    assert_eq!(t.ids(2, "copper"), vec![1]);
    assert!(t.index.suggest(1, "cop", 5).unwrap().is_empty());
    assert_eq!(
        t.index.suggest(2, "cop", 5).unwrap(),
        vec!["copper", "copper pipe"]
    );
    let vendors = t
        .index
        .search_vendors(&VendorQuery {
            tenant: 1,
            text: String::new(),
            offset: 0,
            limit: 10,
        })
        .unwrap();
    assert_eq!(vendors.total, 0);
    assert_eq!(t.index.doc_count(), 1);
}

#[test]
fn a_large_and_a_small_tenant_stay_apart_on_both_scope_paths() {
    // Tenant 1 holds most documents (its scope is checked per hit by the collector), tenant 2
    // a few (its scope is a term of the query); a vendor of tenant 1 shares the words.
    let t = open();
    let mut docs: Vec<_> = (1..=20).map(|id| product(1, id, "Brass fitting")).collect();
    docs.push(product(2, 100, "Brass fitting"));
    docs.push(product(2, 101, "Brass valve"));
    t.put(docs);
    t.index
        .apply(vec![IndexOp::UpsertVendor(VendorDoc {
            tenant: 1,
            id: 700,
            name: "Brass fitting works".into(),
            ..VendorDoc::default()
        })])
        .unwrap();
    t.index.commit(50).unwrap();
    let everything = |tenant| {
        t.search(ProductQuery {
            tenant,
            limit: 100,
            facets: true,
            ..ProductQuery::default()
        })
    };
    assert_eq!(everything(1).total, 20);
    assert_eq!(sorted(ids(&everything(1))), (1..=20).collect::<Vec<u64>>());
    assert_eq!(sorted(ids(&everything(2))), vec![100, 101]);
    assert_eq!(everything(3).total, 0);
    assert_eq!(sorted(t.ids(2, "brass")), vec![100, 101]);
    assert_eq!(t.ids(1, "brass").len(), 20);
    assert!(!t.ids(1, "brass").contains(&700));
    assert_eq!(t.ids(1, "valve "), Vec::<u64>::new());
    let vendors = t
        .index
        .search_vendors(&VendorQuery {
            tenant: 1,
            text: "brass".into(),
            offset: 0,
            limit: 10,
        })
        .unwrap();
    assert_eq!(
        vendors.hits.iter().map(|h| h.id).collect::<Vec<_>>(),
        vec![700]
    );
}

/// (id, score) of each hit of `text` in `tenant`, best first.
fn scored(t: &crate::support::TestIndex, tenant: u64, text: &str) -> Vec<(u64, f32)> {
    t.search(ProductQuery {
        tenant,
        text: text.to_string(),
        limit: 100,
        ..ProductQuery::default()
    })
    .hits
    .iter()
    .map(|hit| (hit.id, hit.score))
    .collect()
}

#[test]
fn another_tenants_documents_do_not_change_scores_or_ranking() {
    let t = open();
    let mut mine = vec![
        product(1, 1, "Cordless drill 18V"),
        product(1, 2, "Hammer drill with side handle"),
        product(1, 3, "Drill bit set"),
        product(1, 4, "Impact driver"),
        product(1, 5, "Masonry bit"),
    ];
    mine[3].description = "Drives screws where a drill would strip them".into();
    mine[4].description = "Carbide tipped, for a hammer drill".into();
    t.put(mine.clone());
    let queries = [
        "drill",
        "drill bit",
        "hammer drill",
        "bit",
        "driver screws",
        "dril",
    ];
    // Tenant 1 alone: its scope is checked in the collector.
    let before: Vec<Vec<(u64, f32)>> = queries.iter().map(|q| scored(&t, 1, q)).collect();
    assert!(before.iter().all(|hits| !hits.is_empty()), "{before:?}");
    assert!(before[0].len() >= 4, "{before:?}");

    // Hundreds of tenant 2's documents full of the same words, of other lengths, in several
    // commits (several segments), some deleted again: tenant 1 is now a small part of the shard
    // and its scope is a term of the query.
    for batch in 0..4u64 {
        let docs: Vec<_> = (0..100u64)
            .map(|n| {
                let id = batch * 1_000 + n;
                let mut doc = product(2, id, &"drill bit ".repeat(1 + (n % 7) as usize));
                doc.description = format!(
                    "hammer drill driver screws {}",
                    "bit ".repeat(n as usize % 3)
                );
                doc
            })
            .collect();
        t.put(docs);
    }
    t.index
        .apply(
            (0..50u64)
                .map(|id| IndexOp::DeleteProduct { tenant: 2, id })
                .collect(),
        )
        .unwrap();
    t.index.commit(t.index.committed_lsn() + 1).unwrap();
    assert!(t.index.doc_count() > 300);

    // Hits of equal score come in index order, which a rewrite into a shared segment may
    // change: compare rankings with ties put in id order.
    let ranked = |hits: &[(u64, f32)]| {
        assert!(
            hits.windows(2).all(|w| w[0].1 >= w[1].1),
            "hits best first: {hits:?}"
        );
        let mut hits = hits.to_vec();
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        hits
    };
    let unchanged = |phase: &str| {
        for (query, expected) in queries.iter().zip(&before) {
            let after = ranked(&scored(&t, 1, query));
            let expected = ranked(expected);
            assert_eq!(
                after.iter().map(|hit| hit.0).collect::<Vec<_>>(),
                expected.iter().map(|hit| hit.0).collect::<Vec<_>>(),
                "{phase}: order of {query:?}"
            );
            for ((id, score), (_, was)) in after.iter().zip(&expected) {
                assert!(
                    (score - was).abs() < 1e-4,
                    "{phase}: {query:?}: product {id} scored {was} alone, {score} now"
                );
            }
        }
    };
    unchanged("tenant 2 in other segments");

    // Tenant 1's documents rewritten in one commit with more of tenant 2's: they now share a
    // segment (with deletions) with another tenant.
    let mut mixed = mine;
    mixed.extend((0..60u64).map(|n| product(2, 9_000 + n, "Drill press with bit holder")));
    t.put(mixed);
    unchanged("tenant 1 sharing a segment");

    // Tenant 2 still finds its own, and tenant 1's scores are not tenant 2's.
    let theirs = scored(&t, 2, "drill");
    assert_eq!(theirs.len(), 100);
    assert!((theirs[0].1 - before[0][0].1).abs() > 1e-3, "{theirs:?}");
}

#[test]
fn a_small_tenants_word_is_not_crowded_out_of_typo_and_prefix_expansions() {
    let t = open();
    // Tenant 2: 45 words starting with "hamock" (so also with "ham"), each in 3 documents:
    // more near spellings than expansion slots, each more frequent shard-wide than tenant 1's
    // word.
    let mut docs = Vec::new();
    let mut id = 1_000;
    for first in b'a'..=b'b' {
        for second in b'a'..=b'w' {
            let word = format!("hamock{}{}", first as char, second as char);
            for _ in 0..3 {
                id += 1;
                docs.push(product(2, id, &word));
            }
        }
    }
    assert!(docs.len() >= 3 * 45);
    t.put(docs);
    t.put(vec![product(1, 7, "Garden hammock")]);

    assert_eq!(t.ids(1, "ham"), vec![7]);
    assert_eq!(t.ids(1, "hamock"), vec![7]);
    assert_eq!(t.ids(1, "hamock "), vec![7]);
    // Tenant 2's words are still found in tenant 2, and tenant 1's is not.
    assert!(t.ids(2, "hamockbw").len() >= 3);
    let theirs = t.ids(2, "hamock");
    assert!(!theirs.is_empty());
    assert!(!theirs.contains(&7));
}
