//! Commits: visibility, the LSN payload across reopen, upserts and deletes, bounded segments.

use mercato_index::{IndexConfig, IndexError, IndexOp, ProductQuery, ProductSort, ShardIndex};

use crate::support::{ids, open, product};

#[test]
fn staged_operations_are_invisible_until_commit() {
    let t = open();
    t.index
        .apply(vec![IndexOp::UpsertProduct(product(1, 1, "Rivet"))])
        .unwrap();
    assert!(t.ids(1, "rivet").is_empty());
    assert_eq!(t.index.doc_count(), 0);
    t.index.commit(5).unwrap();
    assert_eq!(t.ids(1, "rivet"), vec![1]);
    assert_eq!(t.index.doc_count(), 1);
}

#[test]
fn the_commit_payload_lsn_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let index = ShardIndex::open(dir.path(), IndexConfig::default()).unwrap();
        assert_eq!(index.committed_lsn(), 0);
        index
            .apply(vec![IndexOp::UpsertProduct(product(1, 1, "Rivet"))])
            .unwrap();
        index.commit(41).unwrap();
        // Nothing staged: only a higher LSN is recorded; a lower one never moves it back.
        index.commit(42).unwrap();
        index.commit(7).unwrap();
        assert_eq!(index.committed_lsn(), 42);
        // Staged but not committed: lost at close, and the LSN says so.
        index
            .apply(vec![IndexOp::UpsertProduct(product(1, 2, "Washer"))])
            .unwrap();
        index.close().unwrap();
    }
    let index = ShardIndex::open(dir.path(), IndexConfig::default()).unwrap();
    assert_eq!(index.committed_lsn(), 42);
    assert_eq!(index.doc_count(), 1);
    let found = index
        .search_products(&ProductQuery {
            tenant: 1,
            text: "rivet".into(),
            ..ProductQuery::default()
        })
        .unwrap();
    assert_eq!(ids(&found), vec![1]);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused_while_the_first_is_open() {
    let t = open();
    let error = ShardIndex::open(t.dir.path(), IndexConfig::default()).unwrap_err();
    assert!(matches!(error, IndexError::Tantivy(_)), "{error}");
}

#[test]
fn upsert_replaces_and_delete_removes() {
    let t = open();
    t.put(vec![product(1, 1, "Rivet"), product(1, 2, "Washer")]);
    t.put(vec![product(1, 1, "Bolt")]);
    assert!(t.ids(1, "rivet").is_empty());
    assert_eq!(t.ids(1, "bolt"), vec![1]);
    assert_eq!(t.index.doc_count(), 2);
    // Upsert and delete of one id in one batch: the last operation wins.
    t.index
        .apply(vec![
            IndexOp::UpsertProduct(product(1, 3, "Nail")),
            IndexOp::DeleteProduct { tenant: 1, id: 3 },
            IndexOp::DeleteProduct { tenant: 1, id: 2 },
            IndexOp::UpsertProduct(product(1, 2, "Spring washer")),
        ])
        .unwrap();
    t.index.commit(10).unwrap();
    assert!(t.ids(1, "nail").is_empty());
    assert_eq!(t.ids(1, "spring"), vec![2]);
    assert_eq!(t.index.doc_count(), 2);
}

#[test]
fn rollback_drops_staged_operations() {
    let t = open();
    t.put(vec![product(1, 1, "Rivet")]);
    t.index
        .apply(vec![IndexOp::DeleteProduct { tenant: 1, id: 1 }])
        .unwrap();
    t.index.rollback().unwrap();
    t.index.commit(99).unwrap();
    assert_eq!(t.ids(1, "rivet"), vec![1]);
    assert_eq!(t.index.committed_lsn(), 99);
}

#[test]
fn a_trickle_of_single_document_commits_keeps_few_segments() {
    let t = open();
    let mut most = 0;
    for id in 1..=500u64 {
        t.index
            .apply(vec![IndexOp::UpsertProduct(product(1, id % 50, "Rivet"))])
            .unwrap();
        t.index.commit(id).unwrap();
        most = most.max(t.index.segment_count());
    }
    assert_eq!(t.index.doc_count(), 50);
    // Merges run in the background; the count is bounded at every commit, not only at the end.
    assert!(most <= 24, "up to {most} segments");
    assert!(t.index.segment_count() <= 16, "{}", t.index.segment_count());
    assert_eq!(t.index.committed_lsn(), 500);
}

#[test]
fn group_prices_survive_a_merge() {
    // Group prices are pairs in one multi-valued column; a merge must keep each document's
    // values in order. Many small commits force merges.
    let t = open();
    for id in 1..=40u64 {
        let mut doc = product(1, id, "Bolt");
        doc.price_minor = 10_000;
        doc.group_prices = vec![(1, id as i64), (2, 20_000 - id as i64), (3, 5)];
        t.put(vec![doc]);
    }
    let dir = t.dir.path().to_path_buf();
    t.index.close().unwrap();
    let index = ShardIndex::open(&dir, IndexConfig::default()).unwrap();
    assert!(index.segment_count() < 40, "{}", index.segment_count());
    let by_group = |group| {
        ids(&index
            .search_products(&ProductQuery {
                tenant: 1,
                customer_group_id: Some(group),
                sort: ProductSort::PriceAsc,
                limit: 5,
                ..ProductQuery::default()
            })
            .unwrap())
    };
    assert_eq!(by_group(1), vec![1, 2, 3, 4, 5]);
    assert_eq!(by_group(2), vec![40, 39, 38, 37, 36]);
}

#[test]
fn an_oversized_apply_is_refused_whole() {
    let t = open();
    t.put(vec![product(1, 1, "Rivet")]);
    let ops = (0..=mercato_index::APPLY_OPS_MAX as u64)
        .map(|id| IndexOp::DeleteProduct { tenant: 1, id })
        .collect();
    let error = t.index.apply(ops).unwrap_err();
    assert!(matches!(error, IndexError::TooManyOps { .. }), "{error}");
    t.index.commit(2).unwrap();
    assert_eq!(t.ids(1, "rivet"), vec![1]);
}

#[test]
fn configuration_bounds_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |config: IndexConfig| match ShardIndex::open(dir.path(), config) {
        Err(IndexError::InvalidConfig { field, .. }) => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    assert_eq!(
        refused(IndexConfig {
            writer_heap_bytes: 1024,
        }),
        "writer_heap_bytes"
    );
    assert_eq!(
        refused(IndexConfig {
            writer_heap_bytes: 2 << 30,
        }),
        "writer_heap_bytes"
    );
    ShardIndex::open(
        dir.path(),
        IndexConfig {
            writer_heap_bytes: mercato_index::WRITER_HEAP_BYTES_MIN,
        },
    )
    .unwrap();
}
