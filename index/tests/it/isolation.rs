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
