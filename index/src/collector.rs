//! One pass over the matching products: the price filter (which depends on the buyer's group,
//! so it cannot be an index query), the total, facet counts, price bands and the top of the
//! requested sort, all read from fast fields.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use crate::docs::decode_group_price;
use crate::query::{FACET_VALUES_MAX, FacetCount, ProductSort};

/// Facet counts are keyed by ids: a multiplicative hash (as in rustc's FxHash) is enough and
/// several times cheaper than SipHash on the hot path (one update per category per hit).
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 =
                (self.0.rotate_left(5) ^ u64::from(byte)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub(crate) type CountMap = HashMap<u64, u64, BuildHasherDefault<IdHasher>>;

/// Per-segment value counts: an array indexed by `value - min` when the segment's values span
/// few ids (ids are per-tenant sequences, so usually), a hash map otherwise. The array is
/// allocated per query and segment, so its span is bounded, absolutely and by the segment size.
const DENSE_COUNTS_SPAN_MAX: u64 = 1 << 14;
const DENSE_COUNTS_SPAN_PER_DOC: u64 = 4;

enum Counts {
    Dense { min: u64, counts: Vec<u32> },
    Sparse(CountMap),
}

fn dense_span(column: &Column<u64>) -> bool {
    let span = column.max_value().saturating_sub(column.min_value());
    span < DENSE_COUNTS_SPAN_MAX
        && span <= u64::from(column.num_docs()) * DENSE_COUNTS_SPAN_PER_DOC + 1024
}

impl Counts {
    fn for_column(column: Option<&Column<u64>>) -> Counts {
        match column {
            Some(column) if dense_span(column) => Counts::Dense {
                min: column.min_value(),
                counts: vec![0; (column.max_value() - column.min_value() + 1) as usize],
            },
            _ => Counts::Sparse(CountMap::default()),
        }
    }

    #[inline]
    fn add(&mut self, value: u64) {
        match self {
            Counts::Dense { min, counts } => {
                if let Some(slot) = value
                    .checked_sub(*min)
                    .and_then(|i| counts.get_mut(i as usize))
                {
                    *slot += 1;
                }
            }
            Counts::Sparse(map) => *map.entry(value).or_default() += 1,
        }
    }

    fn into_map(self, into: &mut CountMap) {
        match self {
            Counts::Dense { min, counts } => {
                for (offset, count) in counts.into_iter().enumerate() {
                    if count > 0 {
                        *into.entry(min + offset as u64).or_default() += u64::from(count);
                    }
                }
            }
            Counts::Sparse(map) => {
                for (value, count) in map {
                    *into.entry(value).or_default() += count;
                }
            }
        }
    }
}

/// What the collector does; built from a validated [`crate::ProductQuery`].
#[derive(Clone, Debug)]
pub(crate) struct ProductCollector {
    pub sort: ProductSort,
    /// offset + limit: how many of the best to keep.
    pub keep: usize,
    pub scoring: bool,
    pub facets: bool,
    /// Sorted, deduplicated band edges (facets only).
    pub band_edges: Vec<i64>,
    pub price_min: Option<i64>,
    pub price_max: Option<i64>,
    pub customer_group: Option<u64>,
    /// Keep only documents of this scope (when the query does not require it: see
    /// [`crate::plan::ScopeCheck`]).
    pub scope: Option<String>,
}

impl ProductCollector {
    fn needs_price(&self) -> bool {
        self.price_min.is_some()
            || self.price_max.is_some()
            || (self.facets && !self.band_edges.is_empty())
            || matches!(self.sort, ProductSort::PriceAsc | ProductSort::PriceDesc)
    }
}

/// A kept document. Ordered so that "greater" is "better": higher key, then lower product id
/// (so hits that tie keep one order across commits and merges, and pages do not shift), then
/// lower address.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Candidate {
    key: u64,
    pub segment: SegmentOrdinal,
    pub doc: DocId,
    pub id: u64,
    pub score: Score,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key
            .cmp(&other.key)
            .then_with(|| other.id.cmp(&self.id))
            .then_with(|| (other.segment, other.doc).cmp(&(self.segment, self.doc)))
    }
}

/// Order-preserving maps to u64 (bigger is better).
fn score_key(score: Score) -> u64 {
    let bits = score.to_bits();
    // IEEE total order: flip all bits of negatives, only the sign bit of positives.
    u64::from(if bits >> 31 == 1 {
        !bits
    } else {
        bits | (1 << 31)
    })
}

fn i64_key(value: i64) -> u64 {
    (value as u64) ^ (1 << 63)
}

#[derive(Debug, Default)]
pub(crate) struct ProductFruit {
    pub total: u64,
    /// Best first.
    pub top: Vec<Candidate>,
    pub categories: CountMap,
    pub manufacturers: CountMap,
    pub band_counts: Vec<u64>,
}

pub(crate) struct ProductSegmentCollector {
    config: ProductCollector,
    segment: SegmentOrdinal,
    needs_price: bool,
    ids: Option<Column<u64>>,
    prices: Option<Column<i64>>,
    group_prices: Option<Column<u64>>,
    sort_values: Option<Column<u64>>,
    categories: Option<Column<u64>>,
    manufacturers: Option<Column<u64>>,
    /// With a scope to check: the scope column's ordinals and the ordinal to keep (`None`: the
    /// segment has no document of the scope, keep nothing).
    scope: Option<(Column<u64>, Option<u64>)>,
    heap: BinaryHeap<Reverse<Candidate>>,
    category_counts: Counts,
    manufacturer_counts: Counts,
    fruit: ProductFruit,
    /// Hits not yet processed: fast fields are read a batch at a time (one dynamic call and
    /// one pass per column instead of one per hit and column).
    batch: Batch,
}

/// At most this many hits wait in [`Batch`].
const BATCH_HITS: usize = 128;

#[derive(Default)]
struct Batch {
    docs: Vec<DocId>,
    scores: Vec<Score>,
    prices: Vec<i64>,
    first_u64: Vec<Option<u64>>,
    first_i64: Vec<Option<i64>>,
    value_docs: Vec<DocId>,
    value_rows: Vec<u32>,
    values: Vec<u64>,
}

impl ProductSegmentCollector {
    /// The buyer's group price of `doc`, if the query has a group and the product a price for it.
    fn group_price(&self, doc: DocId) -> Option<i64> {
        let (Some(group), Some(column)) = (self.config.customer_group, &self.group_prices) else {
            return None;
        };
        let mut values = column.values_for_doc(doc);
        while let (Some(id), Some(bits)) = (values.next(), values.next()) {
            if id == group {
                return Some(decode_group_price(bits));
            }
        }
        None
    }

    /// Processes the batched hits: scope, price filter, total, facets, top.
    fn flush(&mut self) {
        let mut batch = std::mem::take(&mut self.batch);
        self.filter_scope(&mut batch);
        self.filter_price(&mut batch);
        self.fruit.total += batch.docs.len() as u64;
        if self.config.facets {
            self.count_facets(&mut batch);
        }
        if self.config.keep > 0 {
            for index in 0..batch.docs.len() {
                let price = batch.prices.get(index).copied().unwrap_or(0);
                self.offer(batch.docs[index], batch.scores[index], price);
            }
        }
        batch.docs.clear();
        batch.scores.clear();
        batch.prices.clear();
        self.batch = batch;
    }

    fn filter_scope(&self, batch: &mut Batch) {
        let Some((ordinals, keep)) = &self.scope else {
            return;
        };
        let Some(keep) = *keep else {
            batch.docs.clear();
            batch.scores.clear();
            return;
        };
        batch.first_u64.clear();
        batch.first_u64.resize(batch.docs.len(), None);
        ordinals.first_vals(&batch.docs, &mut batch.first_u64);
        let mut kept = 0;
        for index in 0..batch.docs.len() {
            if batch.first_u64[index] == Some(keep) {
                batch.docs[kept] = batch.docs[index];
                batch.scores[kept] = batch.scores[index];
                kept += 1;
            }
        }
        batch.docs.truncate(kept);
        batch.scores.truncate(kept);
    }

    fn filter_price(&self, batch: &mut Batch) {
        if !self.needs_price {
            return;
        }
        batch.first_i64.clear();
        batch.first_i64.resize(batch.docs.len(), None);
        if let Some(column) = &self.prices {
            column.first_vals(&batch.docs, &mut batch.first_i64);
        }
        let (min, max) = (self.config.price_min, self.config.price_max);
        let mut kept = 0;
        batch.prices.clear();
        for index in 0..batch.docs.len() {
            let doc = batch.docs[index];
            let price = self
                .group_price(doc)
                .unwrap_or_else(|| batch.first_i64[index].unwrap_or(0));
            if min.is_some_and(|min| price < min) || max.is_some_and(|max| price > max) {
                continue;
            }
            batch.docs[kept] = doc;
            batch.scores[kept] = batch.scores[index];
            batch.prices.push(price);
            kept += 1;
        }
        batch.docs.truncate(kept);
        batch.scores.truncate(kept);
    }

    fn count_facets(&mut self, batch: &mut Batch) {
        if let Some(column) = &self.manufacturers {
            batch.first_u64.clear();
            batch.first_u64.resize(batch.docs.len(), None);
            column.first_vals(&batch.docs, &mut batch.first_u64);
            for manufacturer in batch.first_u64.iter().flatten() {
                self.manufacturer_counts.add(*manufacturer);
            }
        }
        if let Some(column) = &self.categories {
            batch.value_docs.clear();
            batch.value_rows.clear();
            column.row_ids_for_docs(&batch.docs, &mut batch.value_docs, &mut batch.value_rows);
            batch.values.clear();
            batch.values.resize(batch.value_rows.len(), 0);
            column.values.get_vals(&batch.value_rows, &mut batch.values);
            for category in &batch.values {
                self.category_counts.add(*category);
            }
        }
        if !self.fruit.band_counts.is_empty() {
            for price in &batch.prices {
                let band = self.config.band_edges.partition_point(|edge| edge <= price);
                self.fruit.band_counts[band] += 1;
            }
        }
    }

    /// Keeps the hit if it is among the best `keep` so far.
    fn offer(&mut self, doc: DocId, score: Score, price: i64) {
        let key = self.sort_key(doc, score, price);
        let full = self.heap.len() >= self.config.keep;
        if full
            && let Some(Reverse(worst)) = self.heap.peek()
            && key < worst.key
        {
            // Cheap rejection before reading the id: the worst kept beats this one.
            return;
        }
        let id = self
            .ids
            .as_ref()
            .and_then(|column| column.first(doc))
            .unwrap_or(0);
        let candidate = Candidate {
            key,
            segment: self.segment,
            doc,
            id,
            score,
        };
        if full {
            if let Some(Reverse(worst)) = self.heap.peek()
                && candidate <= *worst
            {
                return;
            }
            self.heap.pop();
        }
        self.heap.push(Reverse(candidate));
    }

    fn sort_key(&self, doc: DocId, score: Score, price: i64) -> u64 {
        match self.config.sort {
            ProductSort::Relevance => score_key(score),
            ProductSort::PriceAsc => u64::MAX - i64_key(price),
            ProductSort::PriceDesc => i64_key(price),
            ProductSort::Newest | ProductSort::BestSelling => self
                .sort_values
                .as_ref()
                .and_then(|column| column.first(doc))
                .unwrap_or(0),
        }
    }
}

impl Collector for ProductCollector {
    type Fruit = ProductFruit;
    type Child = ProductSegmentCollector;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<ProductSegmentCollector> {
        let fast = reader.fast_fields();
        let needs_price = self.needs_price();
        let categories: Option<Column<u64>> = if self.facets {
            fast.column_opt("categories")?
        } else {
            None
        };
        let manufacturers: Option<Column<u64>> = if self.facets {
            fast.column_opt("manufacturer")?
        } else {
            None
        };
        let scope = match &self.scope {
            None => None,
            Some(scope) => match fast.str("scope")? {
                Some(column) => {
                    let ordinal = column.dictionary().term_ord(scope.as_bytes())?;
                    Some((column.ords().clone(), ordinal))
                }
                None => Some((Column::build_empty_column(reader.max_doc()), None)),
            },
        };
        let sort_field = match self.sort {
            ProductSort::Newest => Some("created_ms"),
            ProductSort::BestSelling => Some("units_sold"),
            _ => None,
        };
        Ok(ProductSegmentCollector {
            config: self.clone(),
            segment,
            needs_price,
            ids: fast.column_opt("id")?,
            prices: if needs_price {
                fast.column_opt("price")?
            } else {
                None
            },
            group_prices: if needs_price && self.customer_group.is_some() {
                fast.column_opt("group_prices")?
            } else {
                None
            },
            sort_values: match sort_field {
                Some(name) => fast.column_opt(name)?,
                None => None,
            },
            scope,
            category_counts: Counts::for_column(categories.as_ref()),
            manufacturer_counts: Counts::for_column(manufacturers.as_ref()),
            categories,
            manufacturers,
            heap: BinaryHeap::with_capacity(self.keep.min(1024) + 1),
            batch: Batch {
                docs: Vec::with_capacity(BATCH_HITS),
                scores: Vec::with_capacity(BATCH_HITS),
                ..Batch::default()
            },
            fruit: ProductFruit {
                band_counts: vec![
                    0;
                    if self.facets && !self.band_edges.is_empty() {
                        self.band_edges.len() + 1
                    } else {
                        0
                    }
                ],
                ..ProductFruit::default()
            },
        })
    }

    fn requires_scoring(&self) -> bool {
        self.scoring
    }

    fn merge_fruits(&self, fruits: Vec<ProductFruit>) -> tantivy::Result<ProductFruit> {
        let mut merged = ProductFruit {
            band_counts: vec![
                0;
                if self.facets && !self.band_edges.is_empty() {
                    self.band_edges.len() + 1
                } else {
                    0
                }
            ],
            ..ProductFruit::default()
        };
        for fruit in fruits {
            merged.total += fruit.total;
            merged.top.extend(fruit.top);
            for (value, count) in fruit.categories {
                *merged.categories.entry(value).or_default() += count;
            }
            for (value, count) in fruit.manufacturers {
                *merged.manufacturers.entry(value).or_default() += count;
            }
            for (slot, count) in merged.band_counts.iter_mut().zip(fruit.band_counts) {
                *slot += count;
            }
        }
        merged.top.sort_unstable_by(|a, b| b.cmp(a));
        merged.top.truncate(self.keep);
        Ok(merged)
    }
}

impl SegmentCollector for ProductSegmentCollector {
    type Fruit = ProductFruit;

    fn collect(&mut self, doc: DocId, score: Score) {
        self.batch.docs.push(doc);
        self.batch.scores.push(score);
        if self.batch.docs.len() >= BATCH_HITS {
            self.flush();
        }
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        for &doc in docs {
            self.collect(doc, 0.0);
        }
    }

    fn harvest(mut self) -> ProductFruit {
        self.flush();
        self.category_counts.into_map(&mut self.fruit.categories);
        self.manufacturer_counts
            .into_map(&mut self.fruit.manufacturers);
        self.fruit.top = self
            .heap
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse(candidate)| candidate)
            .collect();
        self.fruit
    }
}

/// Facet counts as a list: most frequent first, then by value; at most [`FACET_VALUES_MAX`].
pub(crate) fn facet_list(counts: CountMap) -> Vec<FacetCount> {
    let mut list: Vec<FacetCount> = counts
        .into_iter()
        .map(|(value, count)| FacetCount { value, count })
        .collect();
    list.sort_unstable_by(|a, b| b.count.cmp(&a.count).then(a.value.cmp(&b.value)));
    list.truncate(FACET_VALUES_MAX);
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_keys_preserve_order() {
        let scores = [-2.5f32, -0.0, 0.0, 0.1, 1.0, 7.5];
        for pair in scores.windows(2) {
            assert!(score_key(pair[0]) <= score_key(pair[1]), "{pair:?}");
        }
        let prices = [i64::MIN, -1, 0, 1, 42, i64::MAX];
        for pair in prices.windows(2) {
            assert!(i64_key(pair[0]) < i64_key(pair[1]), "{pair:?}");
        }
    }
}
