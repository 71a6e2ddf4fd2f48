//! Shared helpers: a temp index and a product builder.

use mercato_index::{IndexConfig, IndexOp, ProductDoc, ProductQuery, ProductResults, ShardIndex};
use tempfile::TempDir;

pub struct TestIndex {
    pub index: ShardIndex,
    pub dir: TempDir,
}

pub fn open() -> TestIndex {
    let dir = tempfile::tempdir().unwrap();
    let index = ShardIndex::open(dir.path(), IndexConfig::default()).unwrap();
    TestIndex { index, dir }
}

/// A product of `tenant` with the given id and name; other fields plain.
pub fn product(tenant: u64, id: u64, name: &str) -> ProductDoc {
    ProductDoc {
        tenant,
        id,
        sku: format!("SKU-{id}"),
        name: name.to_string(),
        description: String::new(),
        manufacturer_id: 1,
        manufacturer_name: "Acme".to_string(),
        category_ids: vec![1],
        category_path: "Tools".to_string(),
        attributes: Vec::new(),
        price_minor: 1_000,
        group_prices: Vec::new(),
        in_stock: true,
        created_ms: id,
        units_sold: 0,
    }
}

impl TestIndex {
    pub fn put(&self, products: Vec<ProductDoc>) {
        let lsn = self.index.committed_lsn() + 1;
        self.index
            .apply(products.into_iter().map(IndexOp::UpsertProduct).collect())
            .unwrap();
        self.index.commit(lsn).unwrap();
    }

    pub fn search(&self, query: ProductQuery) -> ProductResults {
        self.index.search_products(&query).unwrap()
    }

    /// Ids of the hits of `text` in `tenant`, best first.
    pub fn ids(&self, tenant: u64, text: &str) -> Vec<u64> {
        ids(&self.search(ProductQuery {
            tenant,
            text: text.to_string(),
            ..ProductQuery::default()
        }))
    }
}

pub fn ids(results: &ProductResults) -> Vec<u64> {
    results.hits.iter().map(|hit| hit.id).collect()
}

pub fn sorted(mut ids: Vec<u64>) -> Vec<u64> {
    ids.sort_unstable();
    ids
}
