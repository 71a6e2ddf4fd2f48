//! The read cache: hot catalog records (products, manufacturers, retailers, price-list
//! entries) served from memory, invalidated by the write path.
//!
//! A cache hit costs one atomic load and one hash lookup instead of a redb read transaction.
//! The cache is a [`moka`] cache bounded by an estimate of the bytes it holds
//! ([`ReadCacheConfig::bytes_max`], [`READ_CACHE_BYTES_DEFAULT`] by default) and keyed by
//! `(tenant, kind, id)`, so one tenant's entries can never answer another tenant's read.
//! Missing records are cached too (as "absent"), so a flood of reads of unknown ids does not
//! reach storage either.
//!
//! # The invariant: a hit is as good as a fresh snapshot
//!
//! Every tenant maps to one *stripe*: a 64-bit word whose low [`IN_FLIGHT_BITS`] bits count
//! the writes in flight on the stripe and whose high bits count the writes that finished.
//! The word only ever grows.
//!
//! - A write that may change a cached record (see [`may_change_cached_records`]) adds
//!   `WRITE_START` before it is submitted to the shard writer and `WRITE_END` once the
//!   writer has answered (committed or refused), before the caller hears of it. So while it is
//!   in flight the in-flight count is non-zero, and after it the word is larger than any value
//!   observed before it started.
//! - A reader loads the word *before* it opens its snapshot. If a write is in flight, it reads
//!   storage and neither uses nor fills the cache. Otherwise it uses an entry only if the entry
//!   is tagged with exactly the loaded word; on a miss it reads a snapshot and inserts the
//!   value tagged with the loaded word. (It skips the insert when the word changed during the
//!   read: such an entry could never be used.)
//!
//! Why this is enough: an entry tagged `w` was read from a snapshot opened after its reader
//! loaded `w` with no write in flight, so the snapshot holds every write that ended before.
//! A hit happens only while the word is still `w`: no write has started since that load (a
//! start changes the word for good), so nothing that could change a cached record committed
//! between the snapshot and the hit, and the value is the current state. Hence a read that
//! begins after a write was acknowledged never returns what the write replaced, and a read is
//! never older than an earlier read. The in-flight rule is what gives the second property
//! while a write is between its commit and its answer. Entries with an older tag are dead;
//! moka evicts them or the next miss replaces them.
//!
//! Tenants share a stripe when their ids collide ([`GENERATION_STRIPES`] stripes): a write
//! then costs the other tenants of its stripe a miss, never a wrong answer.
//!
//! # The write path
//!
//! Every write of the engine goes through `Store::execute` or `Store::execute_blocking`
//! (the engine's handle on storage; `Engine::run` and the CSV import use them). A write whose
//! caller goes away before the answer (a dropped future) must still end its mark only after
//! the shard writer is done with the command, so `Store::execute` runs the submission in a
//! task of its own that is not cancelled with the caller. A mark that is dropped without
//! ending (a panic, a runtime shut down under the task) leaves its stripe "in flight" for the
//! life of the process: those tenants read storage directly, which is slower but never wrong.
//!
//! Writes submitted to `Engine::storage()` directly (operations tooling, tests) bypass the
//! marks; they must not change cached records while the engine serves reads.

use crate::tables::{Manufacturer, PriceListEntry, Product, Retailer};
use crate::{Action, Command, CommandOutput, Rejection};
use mercato_storage::{ExecuteError, Storage, StorageError, TenantId};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Default upper bound of the read cache, in (estimated) bytes of the records it holds.
pub const READ_CACHE_BYTES_DEFAULT: u64 = 64 << 20;

/// Number of invalidation stripes tenants are spread over (a power of two).
pub const GENERATION_STRIPES: usize = 4096;

/// Low bits of a stripe word that count writes in flight.
pub const IN_FLIGHT_BITS: u32 = 24;
const IN_FLIGHT_MASK: u64 = (1 << IN_FLIGHT_BITS) - 1;
/// Added to a stripe when a write starts: one more write in flight.
const WRITE_START: u64 = 1;
/// Added to a stripe when a write ends: one write fewer in flight, one more finished.
const WRITE_END: u64 = (1 << IN_FLIGHT_BITS) - 1;

/// What the cache charges per entry on top of the record's own bytes: the key, the entry
/// header and moka's bookkeeping (an estimate).
const ENTRY_OVERHEAD_BYTES: usize = 160;

/// How the read cache is sized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadCacheConfig {
    /// Upper bound of the estimated bytes of cached records; 0 turns the cache off (every read
    /// goes to storage and counts as a miss).
    pub bytes_max: u64,
}

impl Default for ReadCacheConfig {
    fn default() -> Self {
        ReadCacheConfig {
            bytes_max: READ_CACHE_BYTES_DEFAULT,
        }
    }
}

/// The kinds of records the cache holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CacheKind {
    Product,
    Manufacturer,
    Retailer,
    PriceListEntry,
}

impl CacheKind {
    pub const ALL: [CacheKind; 4] = [
        CacheKind::Product,
        CacheKind::Manufacturer,
        CacheKind::Retailer,
        CacheKind::PriceListEntry,
    ];

    /// The `kind` label of the `mercato_cache_requests_total` metric.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheKind::Product => "product",
            CacheKind::Manufacturer => "manufacturer",
            CacheKind::Retailer => "retailer",
            CacheKind::PriceListEntry => "price_list_entry",
        }
    }

    fn index(self) -> usize {
        match self {
            CacheKind::Product => 0,
            CacheKind::Manufacturer => 1,
            CacheKind::Retailer => 2,
            CacheKind::PriceListEntry => 3,
        }
    }
}

/// Reads of one kind served from the cache (`hits`) and from storage (`misses`, which include
/// reads that bypassed the cache while a write was in flight) since the engine opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheCounts {
    pub hits: u64,
    pub misses: u64,
}

/// Whether a command may change a record the cache holds. The match is exhaustive on purpose:
/// a new domain must decide.
///
/// Only the catalog writes the `PRODUCTS`, `MANUFACTURERS`, `RETAILERS` and `PRICE_LIST`
/// tables; order placement, inventory and accounts only read them. Keeping those out is what
/// lets the cache keep its entries while orders are placed. Tenancy is in for safety (rare).
pub fn may_change_cached_records(action: &Action) -> bool {
    match action {
        Action::Catalog(_) | Action::Tenancy(_) => true,
        Action::Verification(a) => a.may_change_manufacturers(),
        Action::Accounts(_) | Action::Inventory(_) | Action::Orders(_) | Action::Search(_) => false,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum RecordKey {
    Product(u64),
    Manufacturer(u64),
    Retailer(u64),
    PriceListEntry { group_id: u64, product_id: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct CacheKey {
    tenant: TenantId,
    record: RecordKey,
}

/// A cached read result; `None` is a cached "absent".
#[derive(Clone)]
pub(crate) enum CachedValue {
    Product(Option<Arc<Product>>),
    Manufacturer(Option<Arc<Manufacturer>>),
    Retailer(Option<Arc<Retailer>>),
    PriceListEntry(Option<Arc<PriceListEntry>>),
}

impl CachedValue {
    fn bytes(&self) -> usize {
        fn of<T: CachedRecord>(record: &Option<Arc<T>>) -> usize {
            record
                .as_deref()
                .map_or(0, |r| std::mem::size_of::<T>() + r.heap_bytes())
        }
        match self {
            CachedValue::Product(p) => of(p),
            CachedValue::Manufacturer(m) => of(m),
            CachedValue::Retailer(r) => of(r),
            CachedValue::PriceListEntry(e) => of(e),
        }
    }
}

#[derive(Clone)]
struct Entry {
    /// The stripe word the value was read under.
    generation: u64,
    value: CachedValue,
}

/// A record type the cache holds.
pub(crate) trait CachedRecord: Clone + Send + Sync + 'static {
    type Id: Copy;
    const KIND: CacheKind;
    fn record_key(id: Self::Id) -> RecordKey;
    fn wrap(record: Option<Arc<Self>>) -> CachedValue;
    fn unwrap(value: CachedValue) -> Option<Option<Arc<Self>>>;
    /// An estimate of the bytes the record owns on the heap.
    fn heap_bytes(&self) -> usize;
}

/// Bytes of a `BTreeMap` entry beyond its strings (node share, an estimate).
const MAP_ENTRY_OVERHEAD_BYTES: usize = 64;

impl CachedRecord for Product {
    type Id = u64;
    const KIND: CacheKind = CacheKind::Product;
    fn record_key(id: u64) -> RecordKey {
        RecordKey::Product(id)
    }
    fn wrap(record: Option<Arc<Self>>) -> CachedValue {
        CachedValue::Product(record)
    }
    fn unwrap(value: CachedValue) -> Option<Option<Arc<Self>>> {
        match value {
            CachedValue::Product(p) => Some(p),
            _ => None,
        }
    }
    fn heap_bytes(&self) -> usize {
        self.sku.len()
            + self.name.len()
            + self.description.len()
            + self.unit_of_measure.len()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + v.len() + MAP_ENTRY_OVERHEAD_BYTES)
                .sum::<usize>()
            + std::mem::size_of_val(self.images.as_slice())
            + std::mem::size_of_val(self.tiers.as_slice())
    }
}

impl CachedRecord for Manufacturer {
    type Id = u64;
    const KIND: CacheKind = CacheKind::Manufacturer;
    fn record_key(id: u64) -> RecordKey {
        RecordKey::Manufacturer(id)
    }
    fn wrap(record: Option<Arc<Self>>) -> CachedValue {
        CachedValue::Manufacturer(record)
    }
    fn unwrap(value: CachedValue) -> Option<Option<Arc<Self>>> {
        match value {
            CachedValue::Manufacturer(m) => Some(m),
            _ => None,
        }
    }
    fn heap_bytes(&self) -> usize {
        self.name.len()
    }
}

impl CachedRecord for Retailer {
    type Id = u64;
    const KIND: CacheKind = CacheKind::Retailer;
    fn record_key(id: u64) -> RecordKey {
        RecordKey::Retailer(id)
    }
    fn wrap(record: Option<Arc<Self>>) -> CachedValue {
        CachedValue::Retailer(record)
    }
    fn unwrap(value: CachedValue) -> Option<Option<Arc<Self>>> {
        match value {
            CachedValue::Retailer(r) => Some(r),
            _ => None,
        }
    }
    fn heap_bytes(&self) -> usize {
        self.name.len()
            + std::mem::size_of_val(self.addresses.as_slice())
            + self
                .addresses
                .iter()
                .map(|a| {
                    a.label.len()
                        + a.line1.len()
                        + a.line2.as_ref().map_or(0, String::len)
                        + a.city.len()
                        + a.postal_code.len()
                        + a.region.as_ref().map_or(0, String::len)
                })
                .sum::<usize>()
    }
}

impl CachedRecord for PriceListEntry {
    type Id = (u64, u64);
    const KIND: CacheKind = CacheKind::PriceListEntry;
    fn record_key((group_id, product_id): (u64, u64)) -> RecordKey {
        RecordKey::PriceListEntry {
            group_id,
            product_id,
        }
    }
    fn wrap(record: Option<Arc<Self>>) -> CachedValue {
        CachedValue::PriceListEntry(record)
    }
    fn unwrap(value: CachedValue) -> Option<Option<Arc<Self>>> {
        match value {
            CachedValue::PriceListEntry(e) => Some(e),
            _ => None,
        }
    }
    fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(self.tiers.as_slice())
    }
}

/// Hit and miss counters of one kind: exact ones for [`CacheCounts`] and the metric's.
struct KindCounters {
    hits: AtomicU64,
    misses: AtomicU64,
    hits_metric: metrics::Counter,
    misses_metric: metrics::Counter,
}

impl KindCounters {
    fn new(kind: CacheKind) -> Self {
        KindCounters {
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            hits_metric: metrics::counter!(
                "mercato_cache_requests_total", "kind" => kind.as_str(), "result" => "hit"
            ),
            misses_metric: metrics::counter!(
                "mercato_cache_requests_total", "kind" => kind.as_str(), "result" => "miss"
            ),
        }
    }

    fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
        self.hits_metric.increment(1);
    }

    fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
        self.misses_metric.increment(1);
    }
}

/// The cache itself: entries, invalidation stripes and counters. See the module docs for the
/// protocol.
pub(crate) struct ReadCache {
    /// `None` when the cache is turned off.
    entries: Option<moka::sync::Cache<CacheKey, Entry>>,
    stripes: Box<[AtomicU64]>,
    counters: [KindCounters; 4],
}

impl ReadCache {
    pub(crate) fn new(config: ReadCacheConfig) -> ReadCache {
        let entries = (config.bytes_max > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(config.bytes_max)
                .weigher(|_key: &CacheKey, entry: &Entry| {
                    u32::try_from(ENTRY_OVERHEAD_BYTES + entry.value.bytes()).unwrap_or(u32::MAX)
                })
                .build()
        });
        ReadCache {
            entries,
            stripes: (0..GENERATION_STRIPES).map(|_| AtomicU64::new(0)).collect(),
            counters: CacheKind::ALL.map(KindCounters::new),
        }
    }

    fn stripe(&self, tenant: TenantId) -> &AtomicU64 {
        // Fibonacci hashing: consecutive tenant ids land on distinct stripes.
        let index = tenant.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - STRIPE_BITS);
        &self.stripes[index as usize % GENERATION_STRIPES]
    }

    /// The record `id` of `tenant`: from the cache when a valid entry exists, else from `read`
    /// (which must open its own snapshot: it runs after the stripe word was loaded).
    pub(crate) fn get_or_read<T: CachedRecord, E>(
        &self,
        tenant: TenantId,
        id: T::Id,
        read: impl FnOnce() -> Result<Option<T>, E>,
    ) -> Result<Option<T>, E> {
        let counters = &self.counters[T::KIND.index()];
        let Some(entries) = &self.entries else {
            counters.miss();
            return read();
        };
        let stripe = self.stripe(tenant);
        let observed = stripe.load(Ordering::SeqCst);
        let quiescent = observed & IN_FLIGHT_MASK == 0;
        let key = CacheKey {
            tenant,
            record: T::record_key(id),
        };
        if quiescent
            && let Some(entry) = entries.get(&key)
            && entry.generation == observed
            && let Some(record) = T::unwrap(entry.value)
        {
            counters.hit();
            return Ok(record.map(Arc::unwrap_or_clone));
        }
        counters.miss();
        let record = read()?;
        if quiescent && stripe.load(Ordering::SeqCst) == observed {
            let shared = record.map(Arc::new);
            entries.insert(
                key,
                Entry {
                    generation: observed,
                    value: T::wrap(shared.clone()),
                },
            );
            return Ok(shared.map(Arc::unwrap_or_clone));
        }
        Ok(record)
    }

    /// Marks a write of `tenant` as in flight until [`WriteMark::end`].
    pub(crate) fn begin_write(self: &Arc<Self>, tenant: TenantId) -> WriteMark {
        let stripe = self.stripe(tenant);
        let before = stripe.fetch_add(WRITE_START, Ordering::SeqCst);
        debug_assert!(
            before & IN_FLIGHT_MASK < IN_FLIGHT_MASK,
            "in-flight count full"
        );
        WriteMark {
            cache: Arc::clone(self),
            tenant,
            ended: false,
        }
    }

    pub(crate) fn counts(&self, kind: CacheKind) -> CacheCounts {
        let c = &self.counters[kind.index()];
        CacheCounts {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
        }
    }
}

/// log2 of [`GENERATION_STRIPES`].
const STRIPE_BITS: u32 = GENERATION_STRIPES.trailing_zeros();
const _: () = assert!(GENERATION_STRIPES.is_power_of_two());

/// A write in flight on a tenant's stripe. End it once the shard writer has answered.
pub(crate) struct WriteMark {
    cache: Arc<ReadCache>,
    tenant: TenantId,
    ended: bool,
}

impl WriteMark {
    pub(crate) fn end(mut self) {
        self.cache
            .stripe(self.tenant)
            .fetch_add(WRITE_END, Ordering::SeqCst);
        self.ended = true;
    }
}

impl Drop for WriteMark {
    fn drop(&mut self) {
        if !self.ended {
            // The command may still commit: its stripe stays in flight (uncached) for good.
            tracing::warn!(
                tenant = %self.tenant,
                "a catalog write was abandoned before its answer; its tenant's reads bypass the cache from now on"
            );
        }
    }
}

/// The engine's handle on storage: reads and everything else pass through to [`Storage`]
/// (by `Deref`), writes mark the read cache around the command.
#[derive(Clone)]
pub(crate) struct Store {
    storage: Storage<Command>,
    cache: Arc<ReadCache>,
}

impl std::ops::Deref for Store {
    type Target = Storage<Command>;
    fn deref(&self) -> &Storage<Command> {
        &self.storage
    }
}

impl Store {
    pub(crate) fn new(storage: Storage<Command>, config: ReadCacheConfig) -> Store {
        Store {
            storage,
            cache: Arc::new(ReadCache::new(config)),
        }
    }

    pub(crate) fn read_cache(&self) -> &ReadCache {
        &self.cache
    }

    /// [`Storage::execute`] with the read cache's write mark around it. The submission runs in
    /// its own task (when called inside a tokio runtime) so that a caller dropping this future
    /// does not end the mark before the command is done.
    pub(crate) async fn execute(
        &self,
        command: Command,
    ) -> Result<CommandOutput, ExecuteError<Rejection>> {
        if !may_change_cached_records(&command.action) {
            return self.storage.execute(command).await;
        }
        let mark = self.cache.begin_write(command.tenant);
        let storage = self.storage.clone();
        let write = async move {
            let result = storage.execute(command).await;
            mark.end();
            result
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => match runtime.spawn(write).await {
                Ok(result) => result,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // The runtime is shutting down; the mark stays in flight.
                Err(_) => Err(ExecuteError::Storage(StorageError::Closed)),
            },
            Err(_) => write.await,
        }
    }

    /// [`Storage::execute_blocking`] with the read cache's write mark around it.
    pub(crate) fn execute_blocking(
        &self,
        command: Command,
    ) -> Result<CommandOutput, ExecuteError<Rejection>> {
        if !may_change_cached_records(&command.action) {
            return self.storage.execute_blocking(command);
        }
        let mark = self.cache.begin_write(command.tenant);
        let result = self.storage.execute_blocking(command);
        mark.end();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::{Currency, Money};
    use crate::tables::{CountryCode, VerificationStatus};

    const T: TenantId = TenantId(7);

    fn maker(id: u64, name: &str) -> Manufacturer {
        Manufacturer {
            id,
            name: name.into(),
            country: CountryCode(*b"DE"),
            verification: VerificationStatus::Verified,
            created_at_ms: 0,
            updated_at_ms: 0,
        }
    }

    fn cache(bytes_max: u64) -> Arc<ReadCache> {
        Arc::new(ReadCache::new(ReadCacheConfig { bytes_max }))
    }

    fn read_maker(
        cache: &ReadCache,
        tenant: TenantId,
        id: u64,
        name: &str,
    ) -> Option<Manufacturer> {
        cache
            .get_or_read::<Manufacturer, ()>(tenant, id, || Ok(Some(maker(id, name))))
            .unwrap()
    }

    #[test]
    fn the_second_read_is_a_hit_and_returns_the_first_value() {
        let c = cache(READ_CACHE_BYTES_DEFAULT);
        assert_eq!(read_maker(&c, T, 1, "first").unwrap().name, "first");
        // The storage value changed without a write mark (not possible through the engine):
        // the cache still answers, which shows the answer came from the cache.
        assert_eq!(read_maker(&c, T, 1, "second").unwrap().name, "first");
        let counts = c.counts(CacheKind::Manufacturer);
        assert_eq!(counts, CacheCounts { hits: 1, misses: 1 });
        assert_eq!(c.counts(CacheKind::Product), CacheCounts::default());
    }

    #[test]
    fn absent_records_are_cached_too() {
        let c = cache(READ_CACHE_BYTES_DEFAULT);
        let none = |c: &ReadCache| c.get_or_read::<Product, ()>(T, 9, || Ok(None)).unwrap();
        assert!(none(&c).is_none());
        assert!(none(&c).is_none());
        assert_eq!(
            c.counts(CacheKind::Product),
            CacheCounts { hits: 1, misses: 1 }
        );
    }

    #[test]
    fn a_finished_write_invalidates_the_tenant() {
        let c = cache(READ_CACHE_BYTES_DEFAULT);
        read_maker(&c, T, 1, "old");
        c.begin_write(T).end();
        assert_eq!(read_maker(&c, T, 1, "new").unwrap().name, "new");
        assert_eq!(read_maker(&c, T, 1, "newer").unwrap().name, "new");
    }

    #[test]
    fn reads_bypass_the_cache_while_a_write_is_in_flight() {
        let c = cache(READ_CACHE_BYTES_DEFAULT);
        read_maker(&c, T, 1, "old");
        let mark = c.begin_write(T);
        assert_eq!(read_maker(&c, T, 1, "committed").unwrap().name, "committed");
        // Nothing read during the write was kept.
        assert_eq!(read_maker(&c, T, 1, "again").unwrap().name, "again");
        mark.end();
        assert_eq!(read_maker(&c, T, 1, "after").unwrap().name, "after");
        assert_eq!(read_maker(&c, T, 1, "later").unwrap().name, "after");
        let counts = c.counts(CacheKind::Manufacturer);
        assert_eq!(counts, CacheCounts { hits: 1, misses: 4 });
    }

    /// The race the stripes exist for: a reader reads the old value, a write starts (and
    /// ends) before the reader inserts. The stale value must not be inserted.
    #[test]
    fn a_value_read_across_a_write_is_not_kept() {
        let c = cache(READ_CACHE_BYTES_DEFAULT);
        let stale = c
            .get_or_read::<Manufacturer, ()>(T, 1, || {
                let old = maker(1, "old");
                c.begin_write(T).end();
                Ok(Some(old))
            })
            .unwrap();
        assert_eq!(stale.unwrap().name, "old");
        assert_eq!(read_maker(&c, T, 1, "new").unwrap().name, "new");
        // Also when the write is still in flight at insert time.
        let mark = std::cell::RefCell::new(None);
        c.get_or_read::<Manufacturer, ()>(T, 2, || {
            *mark.borrow_mut() = Some(c.begin_write(T));
            Ok(Some(maker(2, "old")))
        })
        .unwrap();
        if let Some(m) = mark.into_inner() {
            m.end();
        }
        assert_eq!(read_maker(&c, T, 2, "new").unwrap().name, "new");
    }

    #[test]
    fn an_abandoned_write_leaves_its_stripe_uncached() {
        let c = cache(READ_CACHE_BYTES_DEFAULT);
        drop(c.begin_write(T));
        read_maker(&c, T, 1, "a");
        assert_eq!(read_maker(&c, T, 1, "b").unwrap().name, "b");
        assert_eq!(c.counts(CacheKind::Manufacturer).hits, 0);
    }

    #[test]
    fn tenants_and_kinds_do_not_share_entries() {
        let c = cache(READ_CACHE_BYTES_DEFAULT);
        let other = TenantId(8);
        read_maker(&c, T, 1, "mine");
        assert_eq!(read_maker(&c, other, 1, "theirs").unwrap().name, "theirs");
        assert_eq!(read_maker(&c, T, 1, "x").unwrap().name, "mine");
        assert_eq!(read_maker(&c, other, 1, "y").unwrap().name, "theirs");
        // Same id, another kind: a miss, not a manufacturer.
        let entry = PriceListEntry {
            unit_price: Money::new(5, Currency::EUR),
            tiers: Vec::new(),
            updated_at_ms: 0,
        };
        let got = c.get_or_read::<Retailer, ()>(T, 1, || Ok(None)).unwrap();
        assert!(got.is_none());
        let got = c
            .get_or_read::<PriceListEntry, ()>(T, (1, 1), || Ok(Some(entry.clone())))
            .unwrap();
        assert_eq!(got, Some(entry));
    }

    #[test]
    fn a_write_of_one_tenant_leaves_other_stripes_cached() {
        let c = cache(READ_CACHE_BYTES_DEFAULT);
        // Consecutive tenant ids land on distinct stripes.
        let other = TenantId(T.0 + 1);
        assert!(!std::ptr::eq(c.stripe(T), c.stripe(other)));
        read_maker(&c, other, 1, "kept");
        c.begin_write(T).end();
        assert_eq!(read_maker(&c, other, 1, "x").unwrap().name, "kept");
    }

    #[test]
    fn the_cache_stays_within_its_byte_bound() {
        let bytes_max = 64 * 1024;
        let c = cache(bytes_max);
        let name = "n".repeat(1000);
        for id in 0..1000 {
            read_maker(&c, T, id, &name);
        }
        let entries = c.entries.as_ref().unwrap();
        entries.run_pending_tasks();
        assert!(
            entries.weighted_size() <= bytes_max,
            "{}",
            entries.weighted_size()
        );
        assert!(entries.entry_count() > 0);
    }

    #[test]
    fn a_zero_bound_turns_the_cache_off() {
        let c = cache(0);
        read_maker(&c, T, 1, "a");
        assert_eq!(read_maker(&c, T, 1, "b").unwrap().name, "b");
        assert_eq!(
            c.counts(CacheKind::Manufacturer),
            CacheCounts { hits: 0, misses: 2 }
        );
    }
}
