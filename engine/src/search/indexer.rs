//! The indexers: one thread per shard following the shard's change log into the shard's index,
//! the index directories and their generations, and rebuilds (online and offline).
//!
//! # Directory layout
//!
//! ```text
//! DATA_DIR/index/NNNN/CURRENT          the live generation's name, e.g. "gen-00000003"
//! DATA_DIR/index/NNNN/gen-00000003/    a Tantivy index (commit payload: the last applied LSN)
//! ```
//!
//! A rebuild writes a new generation next to the live one while queries keep using the live
//! one, then publishes it by replacing `CURRENT` (write a temporary file, fsync, rename, fsync
//! the directory: atomic), and removes the old generation once no query holds it. A crash at
//! any point leaves `CURRENT` naming a complete index; stray generations are removed at open.
//!
//! # The follower loop
//!
//! Read a page of entries after the index's position, rebuild the documents they made stale
//! from a snapshot read after the page, stage them, and commit with the page's last LSN when
//! the log is drained or the refresh interval has passed. The index's commit payload is the
//! only record of the position, so a crash between a storage commit and an index commit
//! replays the entries (documents are rebuilt from current rows: replaying is harmless). The
//! storage engine is told the position (`set_reader`) every [`READER_UPDATE_INTERVAL`], so it
//! trims the change log only behind the index. If the log was trimmed past the index's
//! position anyway (an index restored from an old backup, or deleted), the shard is rebuilt
//! from storage while the stale index keeps answering.

use super::documents::{
    self, CounterState, DEFERRED_PRODUCTS_MAX, DocBuilder, PageWork, StockOutcomes,
    tenants_of_shard,
};
use super::{READER_NAME, REBUILD_READER_NAME, SearchConfig, SearchError};
use crate::Command;
use mercato_index::{IndexConfig, IndexOp, ShardIndex};
use mercato_storage::{ChangeEntry, Lsn, ShardId, Storage, StorageError, TenantId};
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Directory of the search indexes under the data directory.
pub const INDEX_DIR_NAME: &str = "index";
/// The file naming a shard's live generation.
pub const CURRENT_FILE_NAME: &str = "CURRENT";
/// Change-log entries read per page.
pub const PAGE_ENTRIES_MAX: usize = 1024;
/// How often the storage engine is told how far the index got (a durable write per shard).
pub const READER_UPDATE_INTERVAL: Duration = Duration::from_secs(5);
/// Wait after a failed step before trying again.
pub const RETRY_DELAY: Duration = Duration::from_secs(1);
/// Products read per page while rebuilding a tenant.
pub const REBUILD_PAGE_PRODUCTS: usize = 1024;
/// Generation names: `gen-` and eight digits.
const GENERATION_PREFIX: &str = "gen-";

fn index_config(config: &SearchConfig) -> IndexConfig {
    IndexConfig {
        writer_heap_bytes: config.writer_heap_bytes,
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SearchError + '_ {
    move |source| SearchError::Io {
        path: path.to_owned(),
        source,
    }
}

// ---------------------------------------------------------------------------------------------
// Directories and generations

/// One shard's index directory and its generations.
#[derive(Clone, Debug)]
pub(crate) struct IndexRoot {
    dir: PathBuf,
}

impl IndexRoot {
    pub(crate) fn of(data_dir: &Path, shard: ShardId) -> IndexRoot {
        IndexRoot {
            dir: data_dir
                .join(INDEX_DIR_NAME)
                .join(format!("{:04}", shard.0)),
        }
    }

    fn generation_dir(&self, generation: u64) -> PathBuf {
        self.dir.join(format!("{GENERATION_PREFIX}{generation:08}"))
    }

    fn parse_generation(name: &str) -> Option<u64> {
        name.strip_prefix(GENERATION_PREFIX)
            .filter(|digits| digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse().ok())
    }

    /// Generations present on disk.
    fn generations(&self) -> Result<Vec<u64>, SearchError> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io_error(&self.dir))? {
            let entry = entry.map_err(io_error(&self.dir))?;
            if let Some(generation) = entry.file_name().to_str().and_then(Self::parse_generation) {
                found.push(generation);
            }
        }
        found.sort_unstable();
        Ok(found)
    }

    /// The live generation named by `CURRENT`, if the file exists.
    fn current(&self) -> Result<Option<u64>, SearchError> {
        let path = self.dir.join(CURRENT_FILE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse_generation(text.trim())
                .map(Some)
                .ok_or_else(|| SearchError::Io {
                    path,
                    source: std::io::Error::other(format!(
                        "{CURRENT_FILE_NAME} does not name a generation: {:?}",
                        text.trim()
                    )),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SearchError::Io { path, source: e }),
        }
    }

    /// Opens the live generation (creating the first one), and removes every other generation
    /// (left by an interrupted rebuild or not yet removed after a swap).
    pub(crate) fn open_live(
        &self,
        config: &SearchConfig,
    ) -> Result<(ShardIndex, u64), SearchError> {
        std::fs::create_dir_all(&self.dir).map_err(io_error(&self.dir))?;
        let generation = match self.current()? {
            Some(generation) => generation,
            None => {
                self.publish(1)?;
                1
            }
        };
        for other in self.generations()? {
            if other != generation {
                self.remove_generation(other);
            }
        }
        let index = ShardIndex::open(&self.generation_dir(generation), index_config(config))?;
        Ok((index, generation))
    }

    /// A new, empty generation after every existing one.
    fn create_generation(&self, config: &SearchConfig) -> Result<(ShardIndex, u64), SearchError> {
        std::fs::create_dir_all(&self.dir).map_err(io_error(&self.dir))?;
        let generation = self.generations()?.last().copied().unwrap_or(0) + 1;
        let index = ShardIndex::open(&self.generation_dir(generation), index_config(config))?;
        Ok((index, generation))
    }

    /// Makes `generation` the live one: `CURRENT` is replaced atomically.
    fn publish(&self, generation: u64) -> Result<(), SearchError> {
        let path = self.dir.join(CURRENT_FILE_NAME);
        let temporary = self.dir.join(format!("{CURRENT_FILE_NAME}.tmp"));
        let mut file = std::fs::File::create(&temporary).map_err(io_error(&temporary))?;
        writeln!(file, "{GENERATION_PREFIX}{generation:08}").map_err(io_error(&temporary))?;
        file.sync_all().map_err(io_error(&temporary))?;
        drop(file);
        std::fs::rename(&temporary, &path).map_err(io_error(&path))?;
        std::fs::File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error(&self.dir))?;
        Ok(())
    }

    /// Removes a generation's files; a failure is logged (the next open removes it).
    fn remove_generation(&self, generation: u64) {
        let dir = self.generation_dir(generation);
        if let Err(error) = std::fs::remove_dir_all(&dir)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %dir.display(), %error, "cannot remove an old search index generation");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Applying change-log entries

/// Stages the documents a page of entries made stale into `index`. Does not commit.
pub(crate) fn index_entries(
    storage: &Storage<Command>,
    shard: ShardId,
    index: &ShardIndex,
    entries: &[ChangeEntry],
    mut counters: Option<&mut CounterState>,
) -> Result<(), SearchError> {
    let work = PageWork::of(entries);
    if !work.dropped_tenants.is_empty() {
        index.apply(
            work.dropped_tenants
                .iter()
                .map(|t| IndexOp::DeleteTenant { tenant: t.0 })
                .collect(),
        )?;
    }
    for (tenant, stale) in &work.stale {
        // A tenant whose bucket moved away: its drop entry follows in this log and removes its
        // documents; the other shard's indexer indexes the imported rows, even before the
        // routing switches to it (a snapshot read follows the routing, and the old shard holds
        // at least what was imported).
        if storage.shard_of(*tenant) != shard && !work.imported_tenants.contains(tenant) {
            continue;
        }
        let read = storage.read(*tenant)?;
        let lookup = counters.as_deref_mut().map(|state| (index, state));
        documents::resolve_stale(&read, stale, lookup, &mut |ops| Ok(index.apply(ops)?))?;
    }
    Ok(())
}

/// Rebuilds the products whose units sold moved since the last sales refresh (staged, not
/// committed).
fn refresh_sales(
    storage: &Storage<Command>,
    shard: ShardId,
    index: &ShardIndex,
    counters: &mut CounterState,
) -> Result<(), SearchError> {
    let mut pending = counters.take_deferred();
    while let Some((tenant, products)) = pending.pop_first() {
        if storage.shard_of(tenant) != shard {
            continue;
        }
        let stale = documents::Stale {
            products,
            ..Default::default()
        };
        let result = storage
            .read(tenant)
            .map_err(SearchError::from)
            .and_then(|read| {
                documents::resolve_stale(&read, &stale, Some((index, counters)), &mut |ops| {
                    Ok(index.apply(ops)?)
                })
            });
        if let Err(error) = result {
            // Rebuilding is idempotent: everything not known to be done is tried again.
            counters.restore_deferred(tenant, stale.products);
            for (tenant, products) in pending {
                counters.restore_deferred(tenant, products);
            }
            return Err(error);
        }
    }
    Ok(())
}

/// Applies every entry after `from` to `index` and commits; returns the new position.
/// Stops early (committed) when `stop` is raised.
fn catch_up(
    storage: &Storage<Command>,
    shard: ShardId,
    index: &ShardIndex,
    from: Lsn,
    stop: &Signal,
) -> Result<Lsn, SearchError> {
    let mut position = from;
    loop {
        let page = storage.changes(shard, position, PAGE_ENTRIES_MAX)?;
        let Some(last) = page.entries.last().map(|e| e.lsn) else {
            break;
        };
        index_entries(storage, shard, index, &page.entries, None)?;
        position = last;
        if stop.is_stopped() {
            break;
        }
    }
    if position != index.committed_lsn() {
        index.commit(position)?;
    }
    Ok(position)
}

// ---------------------------------------------------------------------------------------------
// Rebuilding

/// How far a rebuild got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RebuildProgress {
    pub shard: ShardId,
    pub tenants_total: u64,
    pub tenants_done: u64,
    pub products_indexed: u64,
    pub vendors_indexed: u64,
}

/// What a finished rebuild of one shard did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RebuildReport {
    pub shard: ShardId,
    pub generation: u64,
    pub tenants: u64,
    pub products: u64,
    pub vendors: u64,
    /// The LSN the storage snapshot was taken at; the new index was caught up past it.
    pub snapshot_lsn: Lsn,
    /// The new index's position when it was published.
    pub lsn: Lsn,
    pub elapsed: Duration,
}

/// Indexes one tenant's active products and manufacturers into `index` (staged, not committed).
fn index_tenant(
    storage: &Storage<Command>,
    index: &ShardIndex,
    tenant: TenantId,
    progress: &mut RebuildProgress,
    on_progress: &mut dyn FnMut(&RebuildProgress),
    stop: &Signal,
) -> Result<(), SearchError> {
    let read = storage.read(tenant)?;
    let mut builder = DocBuilder::new(&read);
    let mut after = None;
    loop {
        let manufacturers = builder.manufacturers_after(after, REBUILD_PAGE_PRODUCTS)?;
        let full = manufacturers.len() == REBUILD_PAGE_PRODUCTS;
        after = manufacturers.last().map(|m| m.id);
        progress.vendors_indexed += manufacturers.len() as u64;
        index.apply(
            manufacturers
                .iter()
                .map(|m| {
                    Ok(IndexOp::UpsertVendor(documents::vendor_doc(
                        tenant.0,
                        m,
                        builder.vendor_text(m.id)?,
                    )))
                })
                .collect::<Result<Vec<_>, StorageError>>()?,
        )?;
        if !full {
            break;
        }
    }
    let mut after = None;
    loop {
        if stop.is_stopped() {
            return Err(SearchError::Stopped);
        }
        let ids = builder.active_products(after, REBUILD_PAGE_PRODUCTS)?;
        let full = ids.len() == REBUILD_PAGE_PRODUCTS;
        after = ids.last().copied();
        let mut ops = Vec::with_capacity(ids.len());
        for id in ids {
            ops.push(builder.product_op(id)?);
        }
        progress.products_indexed += ops.len() as u64;
        index.apply(ops)?;
        on_progress(progress);
        if !full {
            return Ok(());
        }
    }
}

/// Builds a new generation of `shard`'s index from storage and catches it up with the change
/// log. The live generation is untouched; the caller publishes the result.
fn build_generation(
    storage: &Storage<Command>,
    root: &IndexRoot,
    shard: ShardId,
    config: &SearchConfig,
    on_progress: &mut dyn FnMut(&RebuildProgress),
    stop: &Signal,
) -> Result<(ShardIndex, u64, RebuildReport), SearchError> {
    let started = Instant::now();
    // Entries after the snapshot must stay in the log until the new index has them.
    let snapshot_lsn = storage.last_lsn(shard)?;
    storage.set_reader(shard, REBUILD_READER_NAME, snapshot_lsn)?;
    let (index, generation) = root.create_generation(config)?;
    let built = (|| {
        let tenants = tenants_of_shard(storage, shard)?;
        let mut progress = RebuildProgress {
            shard,
            tenants_total: tenants.len() as u64,
            tenants_done: 0,
            products_indexed: 0,
            vendors_indexed: 0,
        };
        on_progress(&progress);
        for tenant in tenants {
            index_tenant(storage, &index, tenant, &mut progress, on_progress, stop)?;
            progress.tenants_done += 1;
            on_progress(&progress);
        }
        index.commit(snapshot_lsn)?;
        let lsn = catch_up(storage, shard, &index, snapshot_lsn, stop)?;
        if stop.is_stopped() {
            return Err(SearchError::Stopped);
        }
        Ok(RebuildReport {
            shard,
            generation,
            tenants: progress.tenants_total,
            products: progress.products_indexed,
            vendors: progress.vendors_indexed,
            snapshot_lsn,
            lsn,
            elapsed: started.elapsed(),
        })
    })();
    match built {
        Ok(report) => Ok((index, generation, report)),
        Err(error) => {
            drop(index);
            root.remove_generation(generation);
            let _ = storage.remove_reader(shard, REBUILD_READER_NAME);
            Err(error)
        }
    }
}

/// Rebuilds `shard`'s index from storage and publishes it, offline (no indexer runs in this
/// process).
pub(crate) fn rebuild_offline(
    storage: &Storage<Command>,
    shard: ShardId,
    config: &SearchConfig,
    on_progress: &mut dyn FnMut(&RebuildProgress),
) -> Result<RebuildReport, SearchError> {
    let root = IndexRoot::of(storage.data_dir(), shard);
    // Opening the live generation first also removes leftovers of an interrupted rebuild.
    let (live, old_generation) = root.open_live(config)?;
    drop(live);
    let never = Signal::default();
    let (index, generation, report) =
        build_generation(storage, &root, shard, config, on_progress, &never)?;
    drop(index);
    root.publish(generation)?;
    root.remove_generation(old_generation);
    // Like the indexers, an untouched shard gets no reader.
    if report.lsn > 0 {
        storage.set_reader(shard, READER_NAME, report.lsn)?;
    }
    storage.remove_reader(shard, REBUILD_READER_NAME)?;
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// The running service

/// Stop flag and wake-ups shared by the indexers.
#[derive(Default)]
pub(crate) struct Signal {
    stopped: Mutex<bool>,
    changed: Condvar,
}

impl Signal {
    pub(crate) fn is_stopped(&self) -> bool {
        *self.stopped.lock()
    }

    pub(crate) fn stop(&self) {
        *self.stopped.lock() = true;
        self.changed.notify_all();
    }

    /// Wakes every waiter without stopping them.
    fn wake(&self) {
        let _guard = self.stopped.lock();
        self.changed.notify_all();
    }

    /// Sleeps up to `timeout` or until stopped or woken; returns whether stopped.
    fn wait(&self, timeout: Duration) -> bool {
        let mut stopped = self.stopped.lock();
        if !*stopped {
            self.changed.wait_for(&mut stopped, timeout);
        }
        *stopped
    }
}

/// What an operator sees of one shard's index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardSearchStatus {
    pub shard: ShardId,
    pub generation: u64,
    /// The LSN of the live index's last commit.
    pub lsn: Lsn,
    pub documents: u64,
    pub segments: usize,
    pub rebuilding: bool,
    /// Rebuilds published since the engine started search.
    pub rebuilds_completed: u64,
    /// The last failure of the indexer, cleared by the next success.
    pub last_error: Option<String>,
    /// Stock-only product changes by outcome, since the engine started search.
    pub stock_changes: StockOutcomes,
    /// Products waiting for the next sales refresh.
    pub sales_refresh_pending: u64,
    /// The latest progress of the running online rebuild, or of the last one since the engine
    /// started search (`None` before the first).
    pub rebuild_progress: Option<RebuildProgress>,
    /// The live index's Tantivy writer heap ([`super::SearchConfig::writer_heap_bytes`]).
    pub writer_heap_bytes: usize,
}

/// An open index generation and its number.
type LiveGeneration = (Arc<ShardIndex>, u64);

/// A rebuilt generation waiting for the indexer to take it over.
struct Handover {
    index: ShardIndex,
    generation: u64,
}

/// One shard's live index and its indexer's state.
pub(crate) struct ShardSlot {
    pub(crate) shard: ShardId,
    root: IndexRoot,
    live: RwLock<LiveGeneration>,
    /// The LSN up to which searches see every change: set once a commit's reader reload has
    /// returned (the index's own committed LSN moves just before its reload).
    visible_lsn: AtomicU64,
    rebuild_requested: AtomicBool,
    rebuilding: AtomicBool,
    rebuilds_completed: AtomicU64,
    handover: Mutex<Option<Handover>>,
    last_error: Mutex<Option<String>>,
    /// Published by the follower after each page: its stock outcomes and pending refreshes.
    counters: Mutex<(StockOutcomes, u64)>,
    /// The latest progress of the running (or last) online rebuild.
    rebuild_progress: Mutex<Option<RebuildProgress>>,
}

impl ShardSlot {
    /// The live index (queries hold this `Arc` for their duration).
    pub(crate) fn live(&self) -> Arc<ShardIndex> {
        Arc::clone(&self.live.read().0)
    }

    /// Every change up to this LSN is visible to searches.
    pub(crate) fn visible_lsn(&self) -> Lsn {
        self.visible_lsn.load(Ordering::Acquire)
    }

    fn set_visible(&self, lsn: Lsn) {
        self.visible_lsn.fetch_max(lsn, Ordering::AcqRel);
    }

    pub(crate) fn status(&self) -> ShardSearchStatus {
        let (stock_changes, sales_refresh_pending) = *self.counters.lock();
        let (index, generation) = {
            let live = self.live.read();
            (Arc::clone(&live.0), live.1)
        };
        ShardSearchStatus {
            shard: self.shard,
            generation,
            lsn: index.committed_lsn(),
            documents: index.doc_count(),
            segments: index.segment_count(),
            rebuilding: self.rebuilding.load(Ordering::Acquire)
                || self.rebuild_requested.load(Ordering::Acquire),
            rebuilds_completed: self.rebuilds_completed.load(Ordering::Acquire),
            rebuild_progress: *self.rebuild_progress.lock(),
            last_error: self.last_error.lock().clone(),
            stock_changes,
            sales_refresh_pending,
            writer_heap_bytes: index.config().writer_heap_bytes,
        }
    }

    fn record_error(&self, error: &SearchError) {
        tracing::warn!(shard = %self.shard, error = %error, "search indexer step failed; retrying");
        *self.last_error.lock() = Some(error.to_string());
    }

    fn clear_error(&self) {
        let mut last = self.last_error.lock();
        if last.is_some() {
            *last = None;
        }
    }
}

/// The running search: a slot and an indexer thread per shard.
pub(crate) struct SearchService {
    pub(crate) config: SearchConfig,
    pub(crate) slots: BTreeMap<ShardId, Arc<ShardSlot>>,
    storage: Storage<Command>,
    signal: Arc<Signal>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl SearchService {
    /// Opens every shard's live index and starts its indexer.
    pub(crate) fn start(
        storage: Storage<Command>,
        config: SearchConfig,
    ) -> Result<Arc<SearchService>, SearchError> {
        let mut slots = BTreeMap::new();
        let mut readers = BTreeMap::new();
        for shard in storage.shard_ids() {
            let root = IndexRoot::of(storage.data_dir(), shard);
            let (index, generation) = root.open_live(&config)?;
            // From now on the log is kept for the index from where it is. A shard that never
            // had a change needs no reader yet: the indexer registers at its first commit (an
            // untouched data directory keeps no reader).
            let committed = index.committed_lsn();
            let reader = if committed > 0 || storage.last_lsn(shard)? > 0 {
                storage.set_reader(shard, READER_NAME, committed)?;
                Some(committed)
            } else {
                storage.readers(shard)?.get(READER_NAME).copied()
            };
            readers.insert(shard, reader);
            slots.insert(
                shard,
                Arc::new(ShardSlot {
                    shard,
                    root,
                    visible_lsn: AtomicU64::new(index.committed_lsn()),
                    live: RwLock::new((Arc::new(index), generation)),
                    rebuild_requested: AtomicBool::new(false),
                    rebuilding: AtomicBool::new(false),
                    rebuilds_completed: AtomicU64::new(0),
                    handover: Mutex::new(None),
                    last_error: Mutex::new(None),
                    counters: Mutex::new((StockOutcomes::default(), 0)),
                    rebuild_progress: Mutex::new(None),
                }),
            );
        }
        let service = Arc::new(SearchService {
            config,
            slots,
            storage,
            signal: Arc::new(Signal::default()),
            threads: Mutex::new(Vec::new()),
        });
        for slot in service.slots.values() {
            let follower = Follower {
                reader: readers.get(&slot.shard).copied().flatten(),
                storage: service.storage.clone(),
                slot: Arc::clone(slot),
                signal: Arc::clone(&service.signal),
                config: service.config.clone(),
            };
            let handle = std::thread::Builder::new()
                .name(format!("mercato-search-{:04}", slot.shard.0))
                .spawn(move || follower.run())
                .map_err(|source| SearchError::Io {
                    path: slot.root.dir.clone(),
                    source,
                })?;
            service.threads.lock().push(handle);
        }
        Ok(service)
    }

    fn slot(&self, shard: ShardId) -> Result<&Arc<ShardSlot>, SearchError> {
        self.slots
            .get(&shard)
            .ok_or(SearchError::Engine(crate::EngineError::Storage(
                StorageError::NoSuchShard(shard),
            )))
    }

    /// Asks for rebuilds of `shards`: each built in the background while the live index
    /// answers, then swapped in. Refused (and nothing started) while one of them is rebuilding.
    pub(crate) fn request_rebuilds(&self, shards: &[ShardId]) -> Result<(), SearchError> {
        for shard in shards {
            let slot = self.slot(*shard)?;
            if slot.rebuilding.load(Ordering::Acquire)
                || slot.rebuild_requested.load(Ordering::Acquire)
            {
                return Err(SearchError::RebuildInProgress(*shard));
            }
        }
        for shard in shards {
            if self
                .slot(*shard)?
                .rebuild_requested
                .swap(true, Ordering::AcqRel)
            {
                return Err(SearchError::RebuildInProgress(*shard));
            }
        }
        self.signal.wake();
        Ok(())
    }

    /// Stops the indexers (each commits what it staged) and waits for them.
    pub(crate) fn stop(&self) {
        self.signal.stop();
        let threads: Vec<_> = std::mem::take(&mut *self.threads.lock());
        for handle in threads {
            if handle.join().is_err() {
                tracing::error!("a search indexer thread panicked");
            }
        }
    }
}

/// The indexer of one shard.
struct Follower {
    /// Where the shard's change-log reader stands for this index, if registered.
    reader: Option<Lsn>,
    storage: Storage<Command>,
    slot: Arc<ShardSlot>,
    signal: Arc<Signal>,
    config: SearchConfig,
}

impl Follower {
    fn run(self) {
        let mut index = self.slot.live();
        let mut position = index.committed_lsn();
        let mut reader_position = self.reader;
        // `None`: tell storage the position at the next chance.
        let mut reader_updated: Option<Instant> = reader_position.map(|_| Instant::now());
        let mut staged = false;
        let mut last_commit = Instant::now();
        let mut counters = CounterState::default();
        let mut last_sales_refresh = Instant::now();
        let mut rebuild_thread: Option<JoinHandle<()>> = None;
        let mut retired: Vec<LiveGeneration> = Vec::new();
        loop {
            if self.signal.is_stopped() {
                break;
            }
            // A finished rebuild: take it over.
            if let Some(handover) = self.slot.handover.lock().take() {
                if let Some(handle) = rebuild_thread.take() {
                    let _ = handle.join();
                }
                match self.take_over(handover) {
                    Ok((new_index, old)) => {
                        retired.push(old);
                        index = new_index;
                        position = index.committed_lsn();
                        staged = false;
                        counters.committed();
                        reader_updated = None;
                    }
                    Err(error) => self.slot.record_error(&error),
                }
                self.slot.rebuilding.store(false, Ordering::Release);
                let _ = self
                    .storage
                    .remove_reader(self.slot.shard, REBUILD_READER_NAME);
            }
            // Old generations go once no query holds them (their writer is dropped first).
            for (old, generation) in std::mem::take(&mut retired) {
                match Arc::try_unwrap(old) {
                    Ok(old) => {
                        if let Err(error) = old.close() {
                            tracing::warn!(shard = %self.slot.shard, %error, "closing a retired search index generation failed");
                        }
                        self.slot.root.remove_generation(generation);
                    }
                    Err(in_use) => retired.push((in_use, generation)),
                }
            }
            if rebuild_thread.is_none() && self.slot.rebuild_requested.load(Ordering::Acquire) {
                // Rebuilding is set before the request is cleared, so that the status never
                // shows neither between a request and its rebuild.
                self.slot.rebuilding.store(true, Ordering::Release);
                self.slot.rebuild_requested.store(false, Ordering::Release);
                rebuild_thread = self.spawn_rebuild();
                if rebuild_thread.is_none() {
                    self.slot.rebuilding.store(false, Ordering::Release);
                }
            }
            if rebuild_thread.as_ref().is_some_and(|h| h.is_finished())
                && self.slot.handover.lock().is_none()
            {
                // The rebuild failed (it logged why) or was stopped.
                if let Some(handle) = rebuild_thread.take() {
                    let _ = handle.join();
                }
                self.slot.rebuilding.store(false, Ordering::Release);
            }

            let page = match self
                .storage
                .changes(self.slot.shard, position, PAGE_ENTRIES_MAX)
            {
                Ok(page) => page,
                Err(StorageError::ChangeLogTrimmed { .. }) => {
                    // The index cannot catch up from the log: rebuild it from storage. The
                    // stale index keeps answering until the new one is ready.
                    if rebuild_thread.is_none()
                        && !self.slot.rebuild_requested.swap(true, Ordering::AcqRel)
                    {
                        tracing::warn!(shard = %self.slot.shard, position, "the change log was trimmed past the search index; rebuilding it from storage");
                    }
                    self.signal.wait(self.config.refresh_interval);
                    continue;
                }
                Err(StorageError::Closed) => break,
                Err(error) => {
                    self.slot.record_error(&error.into());
                    self.signal.wait(RETRY_DELAY);
                    continue;
                }
            };
            let drained = page.entries.len() < PAGE_ENTRIES_MAX;
            if let Some(last) = page.entries.last().map(|e| e.lsn) {
                match index_entries(
                    &self.storage,
                    self.slot.shard,
                    &index,
                    &page.entries,
                    Some(&mut counters),
                ) {
                    Ok(()) => {
                        position = last;
                        staged = true;
                    }
                    Err(error) => {
                        self.slot.record_error(&error);
                        self.signal.wait(RETRY_DELAY);
                        continue;
                    }
                }
            }
            if counters.deferred_count() > 0
                && (last_sales_refresh.elapsed() >= self.config.sales_refresh_interval
                    || counters.deferred_count() >= DEFERRED_PRODUCTS_MAX)
            {
                match refresh_sales(&self.storage, self.slot.shard, &index, &mut counters) {
                    Ok(()) => {
                        staged = true;
                        last_sales_refresh = Instant::now();
                    }
                    Err(error) => {
                        self.slot.record_error(&error);
                        self.signal.wait(RETRY_DELAY);
                        continue;
                    }
                }
            }
            *self.slot.counters.lock() = (counters.outcomes, counters.deferred_count() as u64);
            if staged && (drained || last_commit.elapsed() >= self.config.refresh_interval) {
                match index.commit(position) {
                    Ok(()) => {
                        self.slot.set_visible(position);
                        staged = false;
                        counters.committed();
                        last_commit = Instant::now();
                        self.slot.clear_error();
                    }
                    Err(error) => {
                        self.slot.record_error(&error.into());
                        self.signal.wait(RETRY_DELAY);
                        continue;
                    }
                }
            }
            if !staged
                && position > 0
                && reader_position != Some(position)
                && reader_updated.is_none_or(|at| at.elapsed() >= READER_UPDATE_INTERVAL)
            {
                match self
                    .storage
                    .set_reader(self.slot.shard, READER_NAME, position)
                {
                    Ok(()) => {
                        reader_position = Some(position);
                        reader_updated = Some(Instant::now());
                    }
                    Err(StorageError::Closed) => break,
                    Err(error) => self.slot.record_error(&error.into()),
                }
            }
            if drained {
                self.signal.wait(self.config.refresh_interval);
            }
        }
        // Stopping: pending sales counts are indexed, what is staged is committed, and
        // storage learns the position.
        if counters.deferred_count() > 0 {
            match refresh_sales(&self.storage, self.slot.shard, &index, &mut counters) {
                Ok(()) => staged = true,
                Err(error) => {
                    tracing::warn!(shard = %self.slot.shard, %error, "indexing sales counts at shutdown failed; they are indexed at the product's next change")
                }
            }
        }
        if staged && let Err(error) = index.commit(position) {
            tracing::warn!(shard = %self.slot.shard, %error, "search index commit at shutdown failed; the entries are replayed at the next start");
        }
        if position > 0 && reader_position != Some(position) {
            let _ = self
                .storage
                .set_reader(self.slot.shard, READER_NAME, index.committed_lsn());
        }
        if let Some(handle) = rebuild_thread {
            let _ = handle.join();
        }
        // A rebuilt generation nobody took over stays unpublished; the next open removes it.
        drop(self.slot.handover.lock().take());
    }

    fn spawn_rebuild(&self) -> Option<JoinHandle<()>> {
        let storage = self.storage.clone();
        let slot = Arc::clone(&self.slot);
        let signal = Arc::clone(&self.signal);
        let config = self.config.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("mercato-reindex-{:04}", self.slot.shard.0))
            .spawn(move || {
                let shard = slot.shard;
                tracing::info!(%shard, "search index rebuild started");
                *slot.rebuild_progress.lock() = Some(RebuildProgress {
                    shard,
                    tenants_total: 0,
                    tenants_done: 0,
                    products_indexed: 0,
                    vendors_indexed: 0,
                });
                let mut publish = |progress: &RebuildProgress| {
                    *slot.rebuild_progress.lock() = Some(*progress);
                };
                match build_generation(&storage, &slot.root, shard, &config, &mut publish, &signal) {
                    Ok((index, generation, report)) => {
                        tracing::info!(%shard, products = report.products, vendors = report.vendors, elapsed_ms = report.elapsed.as_millis() as u64, "search index rebuilt; swapping it in");
                        *slot.handover.lock() = Some(Handover { index, generation });
                        signal.wake();
                    }
                    Err(SearchError::Stopped) => {}
                    Err(error) => slot.record_error(&error),
                }
            });
        match spawned {
            Ok(handle) => Some(handle),
            Err(error) => {
                tracing::error!(shard = %self.slot.shard, %error, "cannot start the rebuild thread");
                None
            }
        }
    }

    /// Catches a rebuilt generation up, publishes it and makes it live; returns it and the
    /// retired one.
    fn take_over(
        &self,
        handover: Handover,
    ) -> Result<(Arc<ShardIndex>, LiveGeneration), SearchError> {
        let Handover { index, generation } = handover;
        let from = index.committed_lsn();
        catch_up(&self.storage, self.slot.shard, &index, from, &self.signal)?;
        self.slot.root.publish(generation)?;
        let index = Arc::new(index);
        let old = {
            let mut live = self.slot.live.write();
            std::mem::replace(&mut *live, (Arc::clone(&index), generation))
        };
        // A rebuilt generation may be behind the one it replaces by what arrived since its
        // catch-up: the next follower commit moves the mark again.
        self.slot
            .visible_lsn
            .store(index.committed_lsn(), Ordering::Release);
        self.slot.rebuilds_completed.fetch_add(1, Ordering::AcqRel);
        self.slot.clear_error();
        tracing::info!(shard = %self.slot.shard, generation, lsn = index.committed_lsn(), "search index generation swapped in");
        Ok((index, old))
    }
}
