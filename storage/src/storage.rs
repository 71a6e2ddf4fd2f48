//! The data directory: opening, routing tenants to shards, and the public operations.

use crate::blob::{BlobHash, BlobPut, BlobStore};
use crate::changelog::{
    CHANGES_PAGE_MAX, ChangeEntry, ChangePage, READER_NAME_BYTES_MAX, READERS_MAX,
};
use crate::command::Command;
use crate::envelope::{self, Record};
use crate::error::{ExecuteError, OpenError, StorageError};
use crate::fault::{FaultInjector, FaultyBackend};
use crate::ids::{BUCKET_COUNT, BucketId, Lsn, SHARD_COUNT_MAX, ShardId, TenantId};
use crate::overlay::{Overlay, OverlayView, Published};
use crate::reply::blocking_reply;
use crate::shard::{
    InternalOp, InternalOutput, Op, Reply, ShardHealth, Writer, WriterLimits, WriterMetrics,
};
use crate::tables::*;
use crate::txn::{TenantRead, TenantReads};
use crate::wal::{
    self, FILE_HEADER_LEN, LOGS_PER_SHARD, RecordBuf, Wal, WalContents, WalError,
    ZERO_FILL_BYTES_MAX, wal_path,
};
use crate::write_behind::{WriteBehind, WriteBehindHandle};
use crossbeam_channel::{Sender, TrySendError};
use parking_lot::{Mutex, RwLock};
use redb::{Database, ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};
use tokio::sync::oneshot;

/// Default number of shards of a new data directory.
pub const SHARDS_INITIAL_DEFAULT: u16 = 4;
/// Upper bound on commands applied in one commit.
pub const BATCH_COUNT_MAX_LIMIT: usize = 65_536;
/// Upper bound on the bytes of commands applied in one commit.
pub const BATCH_BYTES_MAX_LIMIT: usize = 256 << 20;
/// Upper bound on commands waiting for one shard's writer.
pub const PENDING_COMMANDS_MAX_LIMIT: u32 = 1 << 20;
/// Default longest time a commit is durable only through the write-ahead log.
pub const CHECKPOINT_INTERVAL_DEFAULT: Duration = Duration::from_secs(1);
/// Bounds of `checkpoint_interval`.
pub const CHECKPOINT_INTERVAL_MIN: Duration = Duration::from_millis(1);
pub const CHECKPOINT_INTERVAL_MAX: Duration = Duration::from_secs(600);
/// Default write-ahead log size that triggers a checkpoint. A checkpoint's pause of the writer
/// grows with the pages changed since the last one (copying them for the flusher), so under a
/// heavy write load checkpoints by size keep each pause short: at 64 writers on the development
/// VM, 4 MiB of log is ~0.25 s of writes and a ~10 ms pause, where a whole second gave 16-19 ms
/// (`docs/benchmarks.md`).
pub const CHECKPOINT_WAL_BYTES_DEFAULT: u64 = 4 << 20;
/// Bounds of `checkpoint_wal_bytes`. The log is read whole at open, so it is bounded.
pub const CHECKPOINT_WAL_BYTES_MIN: u64 = 64 << 10;
pub const CHECKPOINT_WAL_BYTES_MAX: u64 = 1 << 30;

/// How a data directory is opened.
#[derive(Clone, Debug)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    /// Shards created with a new data directory; ignored for an existing one.
    pub shards_initial: u16,
    pub batch_count_max: usize,
    pub batch_bytes_max: usize,
    /// Commands waiting per shard before submissions are refused with `Overloaded`.
    pub pending_commands_max: u32,
    /// Change-log entries always kept, whatever the readers.
    pub changelog_retain_entries_min: u64,
    /// redb page cache per shard.
    pub cache_bytes_per_shard: usize,
    /// Longest time a commit stays durable only through the shard's write-ahead log before a
    /// checkpoint makes the redb file durable and empties the log. Bounds the log replayed at
    /// open after a crash.
    pub checkpoint_interval: Duration,
    /// A checkpoint also runs as soon as the log holds this many bytes of records.
    pub checkpoint_wal_bytes: u64,
    /// Failure injection for tests; `None` in production.
    pub fault_injector: Option<Arc<FaultInjector>>,
}

impl StorageConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        StorageConfig {
            data_dir: data_dir.into(),
            shards_initial: SHARDS_INITIAL_DEFAULT,
            batch_count_max: 1024,
            batch_bytes_max: 8 << 20,
            pending_commands_max: 16_384,
            changelog_retain_entries_min: 10_000,
            cache_bytes_per_shard: 64 << 20,
            checkpoint_interval: CHECKPOINT_INTERVAL_DEFAULT,
            checkpoint_wal_bytes: CHECKPOINT_WAL_BYTES_DEFAULT,
            fault_injector: None,
        }
    }

    fn validate(&self) -> Result<(), OpenError> {
        let bad = |m: String| Err(OpenError::Config(m));
        if self.shards_initial == 0 || self.shards_initial > SHARD_COUNT_MAX {
            return bad(format!(
                "shards_initial must be 1..={SHARD_COUNT_MAX}, got {}",
                self.shards_initial
            ));
        }
        if self.batch_count_max == 0 || self.batch_count_max > BATCH_COUNT_MAX_LIMIT {
            return bad(format!(
                "batch_count_max must be 1..={BATCH_COUNT_MAX_LIMIT}, got {}",
                self.batch_count_max
            ));
        }
        if self.batch_bytes_max < 1024 || self.batch_bytes_max > BATCH_BYTES_MAX_LIMIT {
            return bad(format!(
                "batch_bytes_max must be 1KiB..=256MiB, got {}",
                self.batch_bytes_max
            ));
        }
        if self.pending_commands_max == 0 || self.pending_commands_max > PENDING_COMMANDS_MAX_LIMIT
        {
            return bad(format!(
                "pending_commands_max must be 1..={PENDING_COMMANDS_MAX_LIMIT}, got {}",
                self.pending_commands_max
            ));
        }
        if !(CHECKPOINT_INTERVAL_MIN..=CHECKPOINT_INTERVAL_MAX).contains(&self.checkpoint_interval)
        {
            return bad(format!(
                "checkpoint_interval must be {CHECKPOINT_INTERVAL_MIN:?}..={CHECKPOINT_INTERVAL_MAX:?}, got {:?}",
                self.checkpoint_interval
            ));
        }
        if !(CHECKPOINT_WAL_BYTES_MIN..=CHECKPOINT_WAL_BYTES_MAX)
            .contains(&self.checkpoint_wal_bytes)
        {
            return bad(format!(
                "checkpoint_wal_bytes must be 64KiB..=1GiB, got {}",
                self.checkpoint_wal_bytes
            ));
        }
        Ok(())
    }
}

/// What [`Storage::collect_blob_garbage`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BlobGcReport {
    pub examined: u64,
    pub deleted: u64,
}

/// A shard's entry in `meta.redb`.
#[derive(Serialize, Deserialize, Debug, Clone)]
struct ShardRecord {
    created_at_ms: u64,
}
impl Record for ShardRecord {
    const KIND: u16 = 0xFE02;
    const VERSION: u16 = 1;
}

/// A bucket move in progress, persisted so that a crash mid-move is cleaned up at open.
#[derive(Serialize, Deserialize, Debug, Clone, Copy)]
pub(crate) struct BucketMove {
    pub bucket: BucketId,
    pub from: ShardId,
    pub to: ShardId,
    pub switched: bool,
}
impl Record for BucketMove {
    const KIND: u16 = 0xFE03;
    const VERSION: u16 = 1;
}

pub(crate) struct Shard<C: Command> {
    pub id: ShardId,
    pub db: Arc<Database>,
    /// Acknowledged batches not yet committed to `db` (`overlay.rs`).
    pub published: Arc<Published>,
    tx: Sender<Op<C>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    health: Arc<ShardHealth>,
}

impl<C: Command> Shard<C> {
    /// The published overlay and a redb read transaction begun after it was loaded (the order
    /// `overlay.rs` relies on). Callers keep the overlay's layers above the transaction's LSN.
    pub(crate) fn snapshot(&self) -> Result<(redb::ReadTransaction, Arc<Overlay>), StorageError> {
        let overlay = self.published.load();
        let txn = self
            .db
            .begin_read()
            .map_err(|e| StorageError::db(self.id, e))?;
        Ok((txn, overlay))
    }
}

pub(crate) struct Routing<C: Command> {
    pub buckets: Vec<ShardId>,
    pub shards: BTreeMap<ShardId, Arc<Shard<C>>>,
}

impl<C: Command> Routing<C> {
    pub fn shard_of(&self, bucket: BucketId) -> &Arc<Shard<C>> {
        let id = self.buckets[usize::from(bucket.0)];
        self.shards
            .get(&id)
            .expect("invariant: the bucket map names only open shards")
    }
}

pub(crate) struct Inner<C: Command> {
    pub config: StorageConfig,
    pub data_dir_id: u128,
    pub meta: Database,
    pub routing: RwLock<Routing<C>>,
    /// One resharding operation at a time.
    pub reshard_lock: Mutex<()>,
    /// Blob files of every shard, shared so that a bucket move never has to copy files.
    pub blobs: BlobStore,
    closed: AtomicBool,
    _lock: File,
}

/// A tenant-sharded store of records on redb. Cheap to clone; all clones share the shards.
pub struct Storage<C: Command> {
    pub(crate) inner: Arc<Inner<C>>,
}

impl<C: Command> Clone for Storage<C> {
    fn clone(&self) -> Self {
        Storage {
            inner: Arc::clone(&self.inner),
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> OpenError + '_ {
    move |source| OpenError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(crate) fn shard_path(dir: &Path, shard: ShardId) -> PathBuf {
    dir.join("shards").join(format!("{shard}.redb"))
}

/// Opens (or creates) a redb file, turning every failure, including a panic inside the parser
/// of a damaged file, into a clear error. Its commits are durable when they return.
fn open_redb(path: &Path, config: &StorageConfig) -> Result<Database, OpenError> {
    open_redb_with(path, config, None).map(|(db, _)| db)
}

/// Opens a shard's redb file for its writer: writes and syncs go through a [`WriteBehind`]
/// backend, so a durable commit is durable once the handle says its sync is done.
fn open_shard_redb(
    path: &Path,
    config: &StorageConfig,
    shard: ShardId,
) -> Result<(Database, WriteBehindHandle), OpenError> {
    match open_redb_with(path, config, Some(shard))? {
        (db, Some(handle)) => Ok((db, handle)),
        (_, None) => Err(OpenError::Corrupt {
            path: path.to_path_buf(),
            reason: "no write-behind backend".into(),
        }),
    }
}

fn open_redb_with(
    path: &Path,
    config: &StorageConfig,
    write_behind: Option<ShardId>,
) -> Result<(Database, Option<WriteBehindHandle>), OpenError> {
    let path_buf = path.to_path_buf();
    let cache = config.cache_bytes_per_shard;
    let injector = config.fault_injector.clone();
    let result = std::panic::catch_unwind(
        move || -> Result<(Database, Option<WriteBehindHandle>), OpenError> {
            let mut builder = Database::builder();
            builder.set_cache_size(cache);
            let corrupt = |e: redb::DatabaseError| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => OpenError::Locked {
                    path: path_buf.clone(),
                    lock: path_buf.clone(),
                },
                other => OpenError::Corrupt {
                    path: path_buf.clone(),
                    reason: other.to_string(),
                },
            };
            let Some(shard) = write_behind else {
                return match injector {
                    None => Ok((builder.create(&path_buf).map_err(corrupt)?, None)),
                    Some(injector) => {
                        let file = open_file(&path_buf)?;
                        let backend = FaultyBackend::new(file, injector).map_err(corrupt)?;
                        Ok((builder.create_with_backend(backend).map_err(corrupt)?, None))
                    }
                };
            };
            let file = open_file(&path_buf)?;
            let backend: Box<dyn redb::StorageBackend> = match injector {
                Some(injector) => Box::new(FaultyBackend::new(file, injector).map_err(corrupt)?),
                None => Box::new(redb::backends::FileBackend::new(file).map_err(corrupt)?),
            };
            let (backend, handle) = WriteBehind::start(backend, format!("shard-{shard}-flush"))
                .map_err(io_err(&path_buf))?;
            Ok((
                builder.create_with_backend(backend).map_err(corrupt)?,
                Some(handle),
            ))
        },
    );
    match result {
        Ok(r) => r,
        Err(_) => Err(OpenError::Corrupt {
            path: path.to_path_buf(),
            reason: "the file could not be parsed".into(),
        }),
    }
}

fn open_file(path: &Path) -> Result<File, OpenError> {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err(path))
}

fn meta_get(
    txn: &redb::ReadTransaction,
    key: &str,
    path: &Path,
) -> Result<Option<Vec<u8>>, OpenError> {
    let corrupt = |e: &dyn std::fmt::Display| OpenError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let table = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(corrupt(&e)),
    };
    Ok(table
        .get(key)
        .map_err(|e| corrupt(&e))?
        .map(|v| v.value().to_vec()))
}

fn u64_of(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

impl<C: Command> Storage<C> {
    /// Opens the data directory, creating it with `config.shards_initial` shards if it is new.
    pub fn open(config: StorageConfig) -> Result<Storage<C>, OpenError> {
        config.validate()?;
        let dir = config.data_dir.clone();
        fs::create_dir_all(dir.join("shards")).map_err(io_err(&dir))?;
        let lock_path = dir.join("LOCK");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(OpenError::Locked {
                    path: dir,
                    lock: lock_path,
                });
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(OpenError::Io {
                    path: lock_path,
                    source: e,
                });
            }
        }

        let meta_path = dir.join("meta.redb");
        let meta = open_redb(&meta_path, &config)?;
        let blobs_dir = dir.join("blobs");
        let blobs = BlobStore::open(&blobs_dir).map_err(|e| OpenError::Corrupt {
            path: blobs_dir.clone(),
            reason: e.to_string(),
        })?;
        let read = meta
            .begin_read()
            .map_err(|e| StorageError::Meta(e.to_string()))?;
        let initialized = meta_get(&read, META_FORMAT_VERSION, &meta_path)?;
        drop(read);
        if initialized.is_none() {
            initialize(&dir, &meta, &config)?;
        }
        let (data_dir_id, shard_ids, buckets, pending_move) = load_meta_from(&meta, &meta_path)?;

        let mut shards = BTreeMap::new();
        for id in shard_ids {
            match open_shard::<C>(&dir, id, data_dir_id, &config) {
                Ok(shard) => {
                    shards.insert(id, Arc::new(shard));
                }
                Err(e) => {
                    // The shards opened so far have running writers that hold their files:
                    // stop them before returning, so the directory is free when we do.
                    for shard in shards.values() {
                        stop_writer(shard);
                    }
                    return Err(e);
                }
            }
        }
        upgrade_meta(&meta, &meta_path)?;
        metrics::gauge!("mercato_shards_open").set(shards.len() as f64);
        let storage = Storage {
            inner: Arc::new(Inner {
                config,
                data_dir_id,
                meta,
                routing: RwLock::new(Routing { buckets, shards }),
                reshard_lock: Mutex::new(()),
                blobs,
                closed: AtomicBool::new(false),
                _lock: lock,
            }),
        };
        if let Some(pending) = pending_move {
            storage.recover_bucket_move(pending)?;
        }
        tracing::info!(dir = %storage.inner.config.data_dir.display(), shards = storage.shard_ids().len(), "storage open");
        Ok(storage)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.inner.config.data_dir
    }

    /// Open shards, in id order.
    pub fn shard_ids(&self) -> Vec<ShardId> {
        self.inner.routing.read().shards.keys().copied().collect()
    }

    /// The shard that holds a tenant's data now.
    pub fn shard_of(&self, tenant: TenantId) -> ShardId {
        self.inner.routing.read().buckets[usize::from(tenant.bucket().0)]
    }

    /// The shard a bucket is mapped to.
    pub fn shard_of_bucket(&self, bucket: BucketId) -> ShardId {
        self.inner.routing.read().buckets[usize::from(bucket.0)]
    }

    pub(crate) fn shard(&self, id: ShardId) -> Result<Arc<Shard<C>>, StorageError> {
        self.inner
            .routing
            .read()
            .shards
            .get(&id)
            .cloned()
            .ok_or(StorageError::NoSuchShard(id))
    }

    fn submit(
        &self,
        command: C,
        reply: Reply<Result<C::Output, ExecuteError<C::Rejection>>>,
    ) -> Result<(), StorageError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed);
        }
        let encoded = envelope::encode(&command);
        let bucket = command.tenant().bucket();
        let block = matches!(reply, Reply::Blocking(_));
        let op = Op::Command {
            command,
            encoded,
            reply,
        };
        // The routing lock is held across the send so that a bucket switch (which takes it for
        // writing) knows that no command for the old shard is still on its way.
        let routing = self.inner.routing.read();
        let shard = routing.shard_of(bucket);
        if let Some(reason) = shard.health.failure() {
            return Err(StorageError::ShardFailed {
                shard: shard.id,
                reason,
            });
        }
        if block {
            shard.tx.send(op).map_err(|_| StorageError::Closed)?;
        } else {
            shard.tx.try_send(op).map_err(|e| match e {
                TrySendError::Full(_) => StorageError::Overloaded {
                    shard: shard.id,
                    pending_max: self.inner.config.pending_commands_max,
                },
                TrySendError::Disconnected(_) => StorageError::Closed,
            })?;
        }
        Ok(())
    }

    /// Applies a command through its shard's writer and returns once it is durable.
    /// Refuses with `Overloaded` instead of waiting when the shard's queue is full.
    pub async fn execute(&self, command: C) -> Result<C::Output, ExecuteError<C::Rejection>> {
        let (reply, rx) = oneshot::channel();
        self.submit(command, Reply::Async(reply))?;
        rx.await
            .map_err(|_| ExecuteError::Storage(StorageError::Closed))?
    }

    /// Blocking form of [`Storage::execute`], for threads outside an async runtime; waits for
    /// room in the queue instead of refusing.
    pub fn execute_blocking(&self, command: C) -> Result<C::Output, ExecuteError<C::Rejection>> {
        let (reply, rx) = blocking_reply();
        self.submit(command, Reply::Blocking(reply))?;
        rx.recv()
            .map_err(|_| ExecuteError::Storage(StorageError::Closed))?
    }

    pub(crate) fn internal(
        &self,
        shard: &Shard<C>,
        op: InternalOp,
    ) -> Result<InternalOutput, StorageError> {
        let (reply, rx) = blocking_reply();
        let reply = Reply::Blocking(reply);
        shard
            .tx
            .send(Op::Internal { op, reply })
            .map_err(|_| StorageError::Closed)?;
        rx.recv().map_err(|_| StorageError::Closed)?
    }

    /// A read snapshot of one tenant's data. Never waits for writers.
    pub fn read(&self, tenant: TenantId) -> Result<TenantRead, StorageError> {
        let shard = Arc::clone(self.inner.routing.read().shard_of(tenant.bucket()));
        let (txn, overlay) = shard.snapshot()?;
        let table = txn
            .open_table(DATA)
            .map_err(|e| StorageError::db(shard.id, e))?;
        let lsn = read_lsn(&txn, shard.id)?.0;
        let overlay = OverlayView::above(overlay, lsn);
        Ok(TenantRead {
            tenant,
            shard: shard.id,
            table,
            lsn: overlay.last_lsn().unwrap_or(lsn),
            overlay,
        })
    }

    /// Batches answered so far (over all shards) while the redb commit that holds them was
    /// still to come: readers saw them through the shard's overlay (`overlay.rs`). For tests and
    /// diagnostics.
    pub fn overlay_batches_total(&self) -> u64 {
        self.inner
            .routing
            .read()
            .shards
            .values()
            .map(|s| s.published.layers_total())
            .sum()
    }

    /// Change-log entries of a shard with LSN greater than `after`, at most `limit` (capped at
    /// [`CHANGES_PAGE_MAX`]). Fails with `ChangeLogTrimmed` if some of them are gone.
    pub fn changes(
        &self,
        shard: ShardId,
        after: Lsn,
        limit: usize,
    ) -> Result<ChangePage, StorageError> {
        changes_of(&*self.shard(shard)?, after, limit)
    }

    /// The shard's last LSN.
    pub fn last_lsn(&self, shard: ShardId) -> Result<Lsn, StorageError> {
        let shard = self.shard(shard)?;
        let (txn, overlay) = shard.snapshot()?;
        let lsn = read_lsn(&txn, shard.id)?.0;
        Ok(OverlayView::above(overlay, lsn).last_lsn().unwrap_or(lsn))
    }

    /// Registers (or moves) a change-log reader: entries after `lsn` are kept for it.
    pub fn set_reader(&self, shard: ShardId, name: &str, lsn: Lsn) -> Result<(), StorageError> {
        if name.is_empty() || name.len() > READER_NAME_BYTES_MAX {
            return Err(StorageError::Meta(format!(
                "reader name must be 1..={READER_NAME_BYTES_MAX} bytes"
            )));
        }
        let readers = self.readers(shard)?;
        if !readers.contains_key(name) && readers.len() >= READERS_MAX {
            return Err(StorageError::Meta(format!(
                "shard {shard} already has {READERS_MAX} change-log readers"
            )));
        }
        let shard = self.shard(shard)?;
        self.internal(
            &shard,
            InternalOp::SetReader {
                name: name.to_string(),
                lsn,
            },
        )
        .map(|_| ())
    }

    /// Unregisters a change-log reader.
    pub fn remove_reader(&self, shard: ShardId, name: &str) -> Result<(), StorageError> {
        let shard = self.shard(shard)?;
        self.internal(
            &shard,
            InternalOp::RemoveReader {
                name: name.to_string(),
            },
        )
        .map(|_| ())
    }

    /// Registered readers of a shard and their positions.
    pub fn readers(&self, shard: ShardId) -> Result<BTreeMap<String, Lsn>, StorageError> {
        let shard = self.shard(shard)?;
        let txn = shard
            .db
            .begin_read()
            .map_err(|e| StorageError::db(shard.id, e))?;
        read_readers(&txn, shard.id)
    }

    /// Writes a blob file (compressed, fsynced) before the command that references it is
    /// submitted. The same bytes are stored once. Blocking.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<BlobPut, StorageError> {
        Ok(self.inner.blobs.put(bytes)?)
    }

    /// A blob's bytes, if `tenant` holds a reference to it (a tenant cannot read blobs by
    /// guessing hashes). Blocking.
    pub fn read_blob(
        &self,
        tenant: TenantId,
        hash: &BlobHash,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        if self.read(tenant)?.blob_ref_count(hash)? == 0 {
            return Ok(None);
        }
        Ok(Some(self.inner.blobs.get(hash)?))
    }

    /// Deletes blob files that no shard references and that were not written or touched
    /// within `grace`. Checkpoints every shard first. Blocking; bounded by the number of files.
    pub fn collect_blob_garbage(&self, grace: Duration) -> Result<BlobGcReport, StorageError> {
        let cutoff = SystemTime::now()
            .checked_sub(grace)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        // The shard-wide totals are read from redb snapshots, which lack answered batches that
        // no redb commit holds yet (`overlay.rs` carries rows, not totals): commit those first,
        // so that every reference added or dropped before this call counts.
        self.checkpoint()?;
        let shards: Vec<_> = self.inner.routing.read().shards.values().cloned().collect();
        let mut snapshots = Vec::with_capacity(shards.len());
        for shard in &shards {
            let txn = shard
                .db
                .begin_read()
                .map_err(|e| StorageError::db(shard.id, e))?;
            let totals = txn
                .open_table(BLOB_TOTALS)
                .map_err(|e| StorageError::db(shard.id, e))?;
            snapshots.push((shard.id, totals));
        }
        let mut report = BlobGcReport::default();
        for entry in self.inner.blobs.list() {
            let (hash, modified) = entry?;
            report.examined += 1;
            if modified > cutoff {
                continue;
            }
            let mut referenced = false;
            for (id, totals) in &snapshots {
                if totals
                    .get(hash.as_bytes().as_slice())
                    .map_err(|e| StorageError::db(*id, e))?
                    .is_some()
                {
                    referenced = true;
                    break;
                }
            }
            if !referenced && self.inner.blobs.delete_if_unmodified_since(&hash, cutoff)? {
                report.deleted += 1;
            }
        }
        metrics::counter!("mercato_blobs_collected_total").increment(report.deleted);
        Ok(report)
    }

    /// Proves every shard is writable with one durable write through each writer.
    pub fn check_writable(&self) -> Result<(), StorageError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed);
        }
        let shards: Vec<_> = self.inner.routing.read().shards.values().cloned().collect();
        for shard in shards {
            if let Some(reason) = shard.health.failure() {
                return Err(StorageError::ShardFailed {
                    shard: shard.id,
                    reason,
                });
            }
            self.internal(&shard, InternalOp::Probe)?;
        }
        Ok(())
    }

    /// Makes every shard's redb file durable up to its last commit and empties the shards'
    /// write-ahead logs (writers also do this on their own every `checkpoint_interval` and at
    /// close). Blocking.
    pub fn checkpoint(&self) -> Result<(), StorageError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed);
        }
        let shards: Vec<_> = self.inner.routing.read().shards.values().cloned().collect();
        for shard in shards {
            // Every internal operation commits durably, which is a checkpoint.
            self.internal(&shard, InternalOp::Barrier)?;
        }
        Ok(())
    }

    /// Stops accepting commands, lets every writer finish what it has, and joins them.
    /// Idempotent; also run when the last clone is dropped.
    pub fn close(&self) -> Result<(), StorageError> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let shards: Vec<_> = self.inner.routing.read().shards.values().cloned().collect();
        for shard in &shards {
            let _ = shard.tx.send(Op::Shutdown);
        }
        for shard in &shards {
            if let Some(handle) = shard.writer.lock().take()
                && handle.join().is_err()
            {
                return Err(StorageError::db(shard.id, "writer thread panicked"));
            }
        }
        metrics::gauge!("mercato_shards_open").set(0.0);
        Ok(())
    }

    pub(crate) fn start_shard(&self, shard: Shard<C>) {
        let id = shard.id;
        let mut routing = self.inner.routing.write();
        routing.shards.insert(id, Arc::new(shard));
        metrics::gauge!("mercato_shards_open").set(routing.shards.len() as f64);
    }

    pub(crate) fn open_new_shard(&self, id: ShardId) -> Result<Shard<C>, OpenError> {
        create_shard_file(
            &self.inner.config.data_dir,
            id,
            self.inner.data_dir_id,
            &self.inner.config,
        )?;
        open_shard::<C>(
            &self.inner.config.data_dir,
            id,
            self.inner.data_dir_id,
            &self.inner.config,
        )
    }

    pub(crate) fn write_meta(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), StorageError> {
        let err = |e: &dyn std::fmt::Display| StorageError::Meta(e.to_string());
        let txn = self.inner.meta.begin_write().map_err(|e| err(&e))?;
        f(&txn).map_err(|e| err(&e))?;
        txn.commit().map_err(|e| err(&e))
    }

    pub(crate) fn shard_record_bytes() -> Vec<u8> {
        envelope::encode(&ShardRecord {
            created_at_ms: now_ms(),
        })
    }
}

/// Stops a shard's writer (it checkpoints first) and waits for it.
fn stop_writer<C: Command>(shard: &Shard<C>) {
    let _ = shard.tx.send(Op::Shutdown);
    if let Some(handle) = shard.writer.lock().take() {
        let _ = handle.join();
    }
}

impl<C: Command> Drop for Inner<C> {
    fn drop(&mut self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            let shards: Vec<_> = self.routing.read().shards.values().cloned().collect();
            for shard in &shards {
                let _ = shard.tx.send(Op::Shutdown);
            }
            for shard in &shards {
                if let Some(handle) = shard.writer.lock().take() {
                    let _ = handle.join();
                }
            }
        }
    }
}

/// `(last_lsn, first_lsn)` as committed in the snapshot.
pub(crate) fn read_lsn(
    txn: &redb::ReadTransaction,
    shard: ShardId,
) -> Result<(Lsn, Lsn), StorageError> {
    let meta = txn
        .open_table(SHARD_META)
        .map_err(|e| StorageError::db(shard, e))?;
    let get = |key: &str| -> Result<Option<u64>, StorageError> {
        match meta.get(key).map_err(|e| StorageError::db(shard, e))? {
            Some(v) => u64_of(v.value())
                .map(Some)
                .ok_or_else(|| StorageError::db(shard, format!("{key} is not 8 bytes"))),
            None => Ok(None),
        }
    };
    let last = get(SHARD_LAST_LSN)?.unwrap_or(0);
    let first = get(SHARD_FIRST_LSN)?.unwrap_or(1);
    Ok((last, first))
}

fn read_readers(
    txn: &redb::ReadTransaction,
    shard: ShardId,
) -> Result<BTreeMap<String, Lsn>, StorageError> {
    let table = txn
        .open_table(READERS)
        .map_err(|e| StorageError::db(shard, e))?;
    let mut out = BTreeMap::new();
    for row in table.iter().map_err(|e| StorageError::db(shard, e))? {
        let (k, v) = row.map_err(|e| StorageError::db(shard, e))?;
        out.insert(k.value().to_string(), v.value());
    }
    Ok(out)
}

fn new_data_dir_id(dir: &Path) -> u128 {
    let mut hasher = Sha256::new();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.update(nanos.to_le_bytes());
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(dir.as_os_str().as_encoded_bytes());
    let digest = hasher.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(id)
}

/// Creates the shard files and then, last, the meta records that make the directory valid: a
/// crash before the meta commit leaves a directory that is initialized again from scratch.
fn initialize(dir: &Path, meta: &Database, config: &StorageConfig) -> Result<(), OpenError> {
    let shards_dir = dir.join("shards");
    // Leftovers of an interrupted initialization hold no acknowledged data.
    for entry in fs::read_dir(&shards_dir).map_err(io_err(&shards_dir))? {
        let path = entry.map_err(io_err(&shards_dir))?.path();
        fs::remove_file(&path).map_err(io_err(&path))?;
    }
    let data_dir_id = new_data_dir_id(dir);
    for i in 0..config.shards_initial {
        create_shard_file(dir, ShardId(i), data_dir_id, config)?;
    }
    let meta_path = dir.join("meta.redb");
    let err = |e: &dyn std::fmt::Display| OpenError::Corrupt {
        path: meta_path.clone(),
        reason: e.to_string(),
    };
    let txn = meta.begin_write().map_err(|e| err(&e))?;
    {
        let mut m = txn.open_table(META).map_err(|e| err(&e))?;
        m.insert(META_FORMAT_VERSION, FORMAT_VERSION.to_le_bytes().as_slice())
            .map_err(|e| err(&e))?;
        m.insert(META_DATA_DIR_ID, data_dir_id.to_le_bytes().as_slice())
            .map_err(|e| err(&e))?;
        m.insert(
            META_BUCKET_COUNT,
            u32::from(BUCKET_COUNT).to_le_bytes().as_slice(),
        )
        .map_err(|e| err(&e))?;
        let mut shards = txn.open_table(SHARDS).map_err(|e| err(&e))?;
        let record = envelope::encode(&ShardRecord {
            created_at_ms: now_ms(),
        });
        for i in 0..config.shards_initial {
            shards.insert(i, record.as_slice()).map_err(|e| err(&e))?;
        }
        let mut map = txn.open_table(BUCKET_MAP).map_err(|e| err(&e))?;
        for bucket in 0..BUCKET_COUNT {
            map.insert(bucket, bucket % config.shards_initial)
                .map_err(|e| err(&e))?;
        }
    }
    txn.commit().map_err(|e| err(&e))?;
    tracing::info!(dir = %dir.display(), shards = config.shards_initial, "initialized a new data directory");
    Ok(())
}

pub(crate) type MetaContents = (u128, Vec<ShardId>, Vec<ShardId>, Option<BucketMove>);

pub(crate) fn load_meta_from(meta: &Database, path: &Path) -> Result<MetaContents, OpenError> {
    let corrupt = |reason: String| OpenError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let txn = meta.begin_read().map_err(|e| corrupt(e.to_string()))?;
    let version = meta_get(&txn, META_FORMAT_VERSION, path)?
        .ok_or_else(|| corrupt("no format version".into()))?;
    let version = u32::from_le_bytes(
        version
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("format version is not 4 bytes".into()))?,
    );
    if !(FORMAT_VERSION_OLDEST..=FORMAT_VERSION).contains(&version) {
        return Err(OpenError::UnsupportedFormat {
            path: path.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let id = meta_get(&txn, META_DATA_DIR_ID, path)?
        .ok_or_else(|| corrupt("no data directory id".into()))?;
    let id = u128::from_le_bytes(
        id.as_slice()
            .try_into()
            .map_err(|_| corrupt("data directory id is not 16 bytes".into()))?,
    );
    let pending = match meta_get(&txn, META_BUCKET_MOVE, path)? {
        Some(bytes) => {
            Some(envelope::decode::<BucketMove>(&bytes).map_err(|e| corrupt(e.to_string()))?)
        }
        None => None,
    };
    let shards_table = txn.open_table(SHARDS).map_err(|e| corrupt(e.to_string()))?;
    let mut shard_ids = Vec::new();
    for row in shards_table.iter().map_err(|e| corrupt(e.to_string()))? {
        let (k, _) = row.map_err(|e| corrupt(e.to_string()))?;
        shard_ids.push(ShardId(k.value()));
    }
    let map = txn
        .open_table(BUCKET_MAP)
        .map_err(|e| corrupt(e.to_string()))?;
    let mut buckets = Vec::with_capacity(usize::from(BUCKET_COUNT));
    for row in map.iter().map_err(|e| corrupt(e.to_string()))? {
        let (k, v) = row.map_err(|e| corrupt(e.to_string()))?;
        if usize::from(k.value()) != buckets.len() || !shard_ids.contains(&ShardId(v.value())) {
            return Err(corrupt(format!(
                "bucket map entry {} -> {} is invalid",
                k.value(),
                v.value()
            )));
        }
        buckets.push(ShardId(v.value()));
    }
    if buckets.len() != usize::from(BUCKET_COUNT) {
        return Err(corrupt(format!(
            "bucket map has {} entries, expected {BUCKET_COUNT}",
            buckets.len()
        )));
    }
    Ok((id, shard_ids, buckets, pending))
}

fn create_shard_file(
    dir: &Path,
    id: ShardId,
    data_dir_id: u128,
    config: &StorageConfig,
) -> Result<(), OpenError> {
    let path = shard_path(dir, id);
    let db = open_redb(&path, config)?;
    let err = |e: &dyn std::fmt::Display| OpenError::Corrupt {
        path: path.clone(),
        reason: e.to_string(),
    };
    let txn = db.begin_write().map_err(|e| err(&e))?;
    {
        let mut m = txn.open_table(SHARD_META).map_err(|e| err(&e))?;
        if m.get(SHARD_FORMAT_VERSION).map_err(|e| err(&e))?.is_none() {
            m.insert(
                SHARD_FORMAT_VERSION,
                FORMAT_VERSION.to_le_bytes().as_slice(),
            )
            .map_err(|e| err(&e))?;
            m.insert(SHARD_DATA_DIR_ID, data_dir_id.to_le_bytes().as_slice())
                .map_err(|e| err(&e))?;
            m.insert(SHARD_ID, id.0.to_le_bytes().as_slice())
                .map_err(|e| err(&e))?;
            m.insert(SHARD_LAST_LSN, 0u64.to_le_bytes().as_slice())
                .map_err(|e| err(&e))?;
            m.insert(SHARD_FIRST_LSN, 1u64.to_le_bytes().as_slice())
                .map_err(|e| err(&e))?;
        }
        // Create every table so readers never meet a missing one.
        txn.open_table(DATA).map_err(|e| err(&e))?;
        txn.open_table(CHANGELOG).map_err(|e| err(&e))?;
        txn.open_table(READERS).map_err(|e| err(&e))?;
        txn.open_table(BLOB_TOTALS).map_err(|e| err(&e))?;
    }
    txn.commit().map_err(|e| err(&e))?;
    // The shard is not listed in meta.redb yet, so its logs hold nothing: (re)create them.
    for index in 0..LOGS_PER_SHARD as u16 {
        let log = wal_path(dir, id, index);
        Wal::create(&log, id, data_dir_id, index).map_err(io_err(&log))?;
    }
    Ok(())
}

/// Marks meta.redb with the current format version once every shard has been opened (and
/// upgraded) by this build.
fn upgrade_meta(meta: &Database, path: &Path) -> Result<(), OpenError> {
    let err = |e: &dyn std::fmt::Display| OpenError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let read = meta.begin_read().map_err(|e| err(&e))?;
    let version = meta_get(&read, META_FORMAT_VERSION, path)?;
    drop(read);
    if version.as_deref() == Some(FORMAT_VERSION.to_le_bytes().as_slice()) {
        return Ok(());
    }
    let txn = meta.begin_write().map_err(|e| err(&e))?;
    txn.open_table(META)
        .map_err(|e| err(&e))?
        .insert(META_FORMAT_VERSION, FORMAT_VERSION.to_le_bytes().as_slice())
        .map_err(|e| err(&e))?;
    txn.commit().map_err(|e| err(&e))?;
    tracing::info!(path = %path.display(), version = FORMAT_VERSION, "upgraded the data directory's format version");
    Ok(())
}

fn open_shard<C: Command>(
    dir: &Path,
    id: ShardId,
    data_dir_id: u128,
    config: &StorageConfig,
) -> Result<Shard<C>, OpenError> {
    let path = shard_path(dir, id);
    if !path.exists() {
        return Err(OpenError::Corrupt {
            path,
            reason: "shard file listed in meta.redb is missing".into(),
        });
    }
    let (db, durable) = open_shard_redb(&path, config, id)?;
    let corrupt = |reason: String| OpenError::Corrupt {
        path: path.clone(),
        reason,
    };
    let foreign = |reason: String| OpenError::Foreign {
        path: path.clone(),
        reason,
    };
    let txn = db.begin_read().map_err(|e| corrupt(e.to_string()))?;
    let shard_version;
    {
        let meta = match txn.open_table(SHARD_META) {
            Ok(t) => t,
            Err(e) => return Err(foreign(format!("no shard metadata ({e})"))),
        };
        let get = |key: &str| -> Result<Vec<u8>, OpenError> {
            Ok(meta
                .get(key)
                .map_err(|e| corrupt(e.to_string()))?
                .ok_or_else(|| foreign(format!("no {key}")))?
                .value()
                .to_vec())
        };
        let version = u32::from_le_bytes(
            get(SHARD_FORMAT_VERSION)?
                .as_slice()
                .try_into()
                .map_err(|_| corrupt("bad format version".into()))?,
        );
        if !(FORMAT_VERSION_OLDEST..=FORMAT_VERSION).contains(&version) {
            return Err(OpenError::UnsupportedFormat {
                path: path.clone(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        shard_version = version;
        let dir_id = u128::from_le_bytes(
            get(SHARD_DATA_DIR_ID)?
                .as_slice()
                .try_into()
                .map_err(|_| corrupt("bad data dir id".into()))?,
        );
        if dir_id != data_dir_id {
            return Err(foreign(format!(
                "data directory id {dir_id:032x} differs from meta.redb's {data_dir_id:032x}"
            )));
        }
        let shard_id = u16::from_le_bytes(
            get(SHARD_ID)?
                .as_slice()
                .try_into()
                .map_err(|_| corrupt("bad shard id".into()))?,
        );
        if shard_id != id.0 {
            return Err(foreign(format!(
                "file says it is shard {shard_id}, expected {id}"
            )));
        }
    }
    let (last_lsn, first_lsn) = read_lsn(&txn, id)?;
    let readers = read_readers(&txn, id)?;
    drop(txn);

    let logs: [PathBuf; LOGS_PER_SHARD] = [wal_path(dir, id, 0), wal_path(dir, id, 1)];
    if shard_version < FORMAT_VERSION {
        // Format 1 had no log, format 2 one: create the missing (empty) ones, then record the
        // new version durably, in that order, so a shard of this version always has its logs.
        let existing = if shard_version >= 2 { 1 } else { 0 };
        for (index, log) in logs.iter().enumerate().skip(existing) {
            Wal::create(log, id, data_dir_id, index as u16).map_err(io_err(log))?;
        }
        let txn = db.begin_write().map_err(|e| corrupt(e.to_string()))?;
        txn.open_table(SHARD_META)
            .map_err(|e| corrupt(e.to_string()))?
            .insert(
                SHARD_FORMAT_VERSION,
                FORMAT_VERSION.to_le_bytes().as_slice(),
            )
            .map_err(|e| corrupt(e.to_string()))?;
        txn.commit().map_err(|e| corrupt(e.to_string()))?;
        durable
            .wait(durable.last_sync())
            .map_err(|e| corrupt(e.to_string()))?;
        tracing::info!(shard = %id, from = shard_version, to = FORMAT_VERSION, "upgraded the shard's format version");
    }
    let mut log_bytes: Vec<Vec<u8>> = Vec::with_capacity(LOGS_PER_SHARD);
    for log in &logs {
        log_bytes.push(match fs::read(log) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(OpenError::Corrupt {
                    path: log.clone(),
                    reason: "the shard's write-ahead log is missing".into(),
                });
            }
            Err(e) => return Err(io_err(log)(e)),
        });
    }
    let mut contents: Vec<WalContents<'_>> = Vec::with_capacity(LOGS_PER_SHARD);
    for (index, (log, bytes)) in logs.iter().zip(&log_bytes).enumerate() {
        let parsed =
            wal::parse(bytes, id, data_dir_id, index as u16, last_lsn).map_err(|e| match e {
                WalError::Foreign(reason) => OpenError::Foreign {
                    path: log.clone(),
                    reason,
                },
                WalError::Corrupt(reason) => OpenError::Corrupt {
                    path: log.clone(),
                    reason,
                },
            })?;
        if parsed.tail_bytes > 0 {
            tracing::debug!(shard = %id, log = %log.display(), offset = parsed.valid_end, bytes = parsed.tail_bytes, "the write-ahead log's bytes after its last record will be overwritten (zeros, records from before a checkpoint, or a cut append, never acknowledged)");
        }
        contents.push(parsed);
    }
    let open_log = |index: usize| {
        Wal::open(
            &logs[index],
            contents[index].valid_end,
            config.fault_injector.clone(),
        )
        .map_err(io_err(&logs[index]))
    };
    let (wal, wal_other) = (open_log(0)?, open_log(1)?);

    let db = Arc::new(db);
    let health = Arc::new(ShardHealth::default());
    let (tx, rx) = crossbeam_channel::bounded::<Op<C>>(config.pending_commands_max as usize);
    let published = Arc::new(Published::default());
    let mut writer = Writer {
        shard: id,
        db: Arc::clone(&db),
        published: Arc::clone(&published),
        open: None,
        lost_batches: 0,
        limits: WriterLimits {
            batch_count_max: config.batch_count_max,
            batch_bytes_max: config.batch_bytes_max,
            changelog_retain_entries_min: config.changelog_retain_entries_min,
            checkpoint_interval: config.checkpoint_interval,
            checkpoint_wal_bytes: config.checkpoint_wal_bytes,
        },
        health: Arc::clone(&health),
        last_lsn,
        first_lsn,
        readers,
        metrics: WriterMetrics::new(id),
        wal,
        wal_other,
        other_log_pending: None,
        durable,
        record: RecordBuf::default(),
        entry_buf: Vec::new(),
        pending_since: None,
    };
    // Crash recovery: what the logs hold above the redb file's durable state is applied again,
    // then made durable, and the logs emptied.
    let replayed = writer
        .recover::<C>(&contents)
        .map_err(|reason| OpenError::Corrupt {
            path: logs[0].clone(),
            reason,
        })?;
    drop(contents);
    drop(log_bytes);
    if replayed > 0 {
        writer.checkpoint()?;
        tracing::info!(shard = %id, replayed, last_lsn = writer.last_lsn, "recovered from the write-ahead log");
    }
    // Every record is redundant now. The files keep their blocks for the next appends to
    // overwrite (see `wal.rs`), unless one grew past what the settings let a log reach.
    let log_keep_bytes = config
        .checkpoint_wal_bytes
        .saturating_mul(2)
        .saturating_add(ZERO_FILL_BYTES_MAX + FILE_HEADER_LEN);
    for wal in [&mut writer.wal, &mut writer.wal_other] {
        wal.rewind();
        if wal.file_bytes() > log_keep_bytes {
            let path = wal.path().to_path_buf();
            wal.truncate_to(FILE_HEADER_LEN).map_err(io_err(&path))?;
        }
    }
    let handle = std::thread::Builder::new()
        .name(format!("shard-{id}-writer"))
        .spawn(move || writer.run(rx))
        .map_err(io_err(&path))?;
    Ok(Shard {
        id,
        db,
        published,
        tx,
        writer: Mutex::new(Some(handle)),
        health,
    })
}

/// Opens a redb file with default settings (for the offline checker).
pub(crate) fn open_redb_at(path: &Path) -> Result<Database, OpenError> {
    if !path.exists() {
        return Err(OpenError::Corrupt {
            path: path.to_path_buf(),
            reason: "file is missing".into(),
        });
    }
    let mut config = StorageConfig::new(path);
    config.cache_bytes_per_shard = 16 << 20;
    open_redb(path, &config)
}

/// Change-log page of a shard (see [`Storage::changes`]); takes no routing lock.
pub(crate) fn changes_of<C: Command>(
    shard: &Shard<C>,
    after: Lsn,
    limit: usize,
) -> Result<ChangePage, StorageError> {
    let (txn, overlay) = shard.snapshot()?;
    let (redb_last_lsn, redb_first_lsn) = read_lsn(&txn, shard.id)?;
    let overlay = OverlayView::above(overlay, redb_last_lsn);
    let last_lsn = overlay.last_lsn().unwrap_or(redb_last_lsn);
    let first_lsn = overlay.first_lsn().unwrap_or(redb_first_lsn);
    if after < last_lsn && after + 1 < first_lsn {
        return Err(StorageError::ChangeLogTrimmed {
            shard: shard.id,
            requested: after,
            first_available: first_lsn,
        });
    }
    let limit = limit.min(CHANGES_PAGE_MAX);
    let log = txn
        .open_table(CHANGELOG)
        .map_err(|e| StorageError::db(shard.id, e))?;
    let mut entries = Vec::new();
    for row in log
        .range(after.saturating_add(1)..)
        .map_err(|e| StorageError::db(shard.id, e))?
        .take(limit)
    {
        let (lsn, bytes) = row.map_err(|e| StorageError::db(shard.id, e))?;
        let entry: ChangeEntry = envelope::decode(bytes.value())?;
        if entry.lsn != lsn.value() {
            return Err(StorageError::db(
                shard.id,
                format!(
                    "change-log entry under key {} says LSN {}",
                    lsn.value(),
                    entry.lsn
                ),
            ));
        }
        entries.push(entry);
    }
    // Then the acknowledged entries the redb snapshot does not hold yet.
    let after = entries.last().map_or(after, |e| e.lsn);
    for bytes in overlay.entries_after(after, limit - entries.len()) {
        entries.push(envelope::decode(bytes)?);
    }
    Ok(ChangePage { entries, last_lsn })
}
