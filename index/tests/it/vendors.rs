//! Vendor search for reviewers.

use mercato_index::{IndexError, IndexOp, VendorDoc, VendorQuery};

use crate::support::open;

fn vendor(id: u64, name: &str, country: &str, verification: &str, text: &str) -> IndexOp {
    IndexOp::UpsertVendor(VendorDoc {
        tenant: 1,
        id,
        name: name.into(),
        country: country.into(),
        verification: verification.into(),
        text: text.into(),
    })
}

fn search(t: &crate::support::TestIndex, text: &str) -> Vec<u64> {
    t.index
        .search_vendors(&VendorQuery {
            tenant: 1,
            text: text.into(),
            offset: 0,
            limit: 20,
        })
        .unwrap()
        .hits
        .iter()
        .map(|hit| hit.id)
        .collect()
}

#[test]
fn vendors_are_found_by_name_country_status_and_document_text() {
    let t = open();
    t.index
        .apply(vec![
            vendor(
                1,
                "Baltic Timber",
                "LV",
                "pending",
                "VAT number LV40003000000",
            ),
            vendor(
                2,
                "Alpine Steel",
                "AT",
                "approved",
                "Firmenbuch FN 123456a Innsbruck",
            ),
            vendor(3, "Timberland Supplies", "IE", "rejected", ""),
        ])
        .unwrap();
    t.index.commit(1).unwrap();
    assert_eq!(search(&t, "alpine"), vec![2]);
    assert_eq!(search(&t, "innsbruck"), vec![2]);
    assert_eq!(search(&t, "lv40003000000"), vec![1]);
    assert_eq!(search(&t, "rejected"), vec![3]);
    assert_eq!(search(&t, "timber"), vec![1, 3]);
    assert_eq!(search(&t, "timbre "), vec![1]);
    assert_eq!(search(&t, "").len(), 3);

    t.index
        .apply(vec![
            vendor(1, "Baltic Wood", "LV", "approved", ""),
            IndexOp::DeleteVendor { tenant: 1, id: 3 },
        ])
        .unwrap();
    t.index.commit(2).unwrap();
    assert_eq!(search(&t, "timber"), Vec::<u64>::new());
    assert_eq!(search(&t, "wood"), vec![1]);
}

#[test]
fn vendor_page_bounds_are_enforced() {
    let t = open();
    let error = t
        .index
        .search_vendors(&VendorQuery {
            tenant: 1,
            text: "x".into(),
            offset: 0,
            limit: 1_000,
        })
        .unwrap_err();
    assert!(matches!(
        error,
        IndexError::InvalidQuery { field: "limit", .. }
    ));
}
