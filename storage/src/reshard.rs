//! Online resharding: add a shard, move a bucket between shards while writes continue.
//!
//! A move copies the bucket's rows from a snapshot of the source, then replays the source's
//! change log (reading the current value of every key an entry touched) until the remaining
//! lag is small, then switches: it takes the routing lock for writing (new commands wait), waits
//! for the source writer to commit everything already queued, replays the last entries,
//! records the new owner in `meta.redb` durably and releases the lock. Only then are the
//! bucket's rows deleted from the source. The move is recorded in `meta.redb` from the start,
//! so a crash at any point is repaired at the next open.

use crate::changelog::CHANGES_PAGE_MAX;
use crate::command::Command;
use crate::envelope;
use crate::error::{OpenError, StorageError};
use crate::ids::{BUCKET_COUNT, BucketId, SHARD_COUNT_MAX, ShardId};
use crate::keys;
use crate::overlay::OverlayView;
use crate::shard::{InternalOp, InternalOutput};
use crate::storage::{BucketMove, Shard, Storage};
use crate::tables::{BUCKET_MAP, DATA, META, META_BUCKET_MOVE, SHARDS};
use crate::txn::{DataTable, RawRead};
use redb::ReadableDatabase;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rows per import command while copying a bucket.
pub const COPY_CHUNK_ROWS: usize = 1024;
/// Upper bound on catch-up rounds before the switch is forced.
pub const CATCHUP_ROUNDS_MAX: usize = 64;
/// A catch-up round that finds at most this many entries ends the catch-up phase.
pub const SWITCH_LAG_ENTRIES: usize = 256;
/// Name of the change-log reader that holds the source's log during a move.
pub const MOVE_READER: &str = "mercato.bucket_move";

/// What a bucket move did.
#[derive(Debug, Clone, Default)]
pub struct MoveReport {
    pub rows_copied: usize,
    pub catchup_rounds: usize,
    pub entries_replayed: usize,
    /// How long new commands waited during the switch.
    pub switch_pause: Duration,
    pub rows_dropped_from_source: usize,
}

impl<C: Command> Storage<C> {
    /// The shard of every bucket, indexed by bucket.
    pub fn bucket_map(&self) -> Vec<ShardId> {
        self.inner.routing.read().buckets.clone()
    }

    /// Adds an empty shard; buckets move onto it with [`Storage::move_bucket`].
    pub fn add_shard(&self) -> Result<ShardId, StorageError> {
        let _guard = self.inner.reshard_lock.lock();
        let next = self.shard_ids().last().map_or(0, |s| s.0 + 1);
        if next >= SHARD_COUNT_MAX {
            return Err(StorageError::Reshard(format!(
                "at most {SHARD_COUNT_MAX} shards"
            )));
        }
        let id = ShardId(next);
        let shard = self
            .open_new_shard(id)
            .map_err(|e| StorageError::Reshard(e.to_string()))?;
        let record = Self::shard_record_bytes();
        self.write_meta(|txn| {
            txn.open_table(SHARDS)?.insert(id.0, record.as_slice())?;
            Ok(())
        })?;
        self.start_shard(shard);
        tracing::info!(shard = %id, "added shard");
        Ok(id)
    }

    /// Moves a bucket (every tenant in it) to another shard while writes continue.
    pub fn move_bucket(&self, bucket: BucketId, to: ShardId) -> Result<MoveReport, StorageError> {
        if bucket.0 >= BUCKET_COUNT {
            return Err(StorageError::Reshard(format!(
                "bucket {bucket} out of range"
            )));
        }
        let _guard = self.inner.reshard_lock.lock();
        let from = self.shard_of_bucket(bucket);
        let mut report = MoveReport::default();
        if from == to {
            return Ok(report);
        }
        let source = self.shard(from)?;
        let target = self.shard(to)?;
        let record = BucketMove {
            bucket,
            from,
            to,
            switched: false,
        };
        self.persist_move(Some(record))?;
        // Leftovers of an earlier abandoned copy would be wrong data on the target.
        self.drop_bucket_rows(&target, bucket)?;

        // Hold the source's log from before the snapshot, then move the hold to the snapshot.
        self.set_reader(from, MOVE_READER, 0)?;
        let snapshot = source
            .db
            .begin_read()
            .map_err(|e| StorageError::db(from, e))?;
        let mut position = crate::storage::read_lsn(&snapshot, from)?.0;
        self.set_reader(from, MOVE_READER, position)?;
        report.rows_copied = self.copy_snapshot(&snapshot, &source, &target, bucket)?;
        drop(snapshot);

        for _ in 0..CATCHUP_ROUNDS_MAX {
            let (replayed, next) = self.catch_up(&source, &target, bucket, position)?;
            report.catchup_rounds += 1;
            report.entries_replayed += replayed;
            position = next;
            self.set_reader(from, MOVE_READER, position)?;
            if replayed <= SWITCH_LAG_ENTRIES {
                break;
            }
        }

        {
            let paused = Instant::now();
            let mut routing = self.inner.routing.write();
            // Everything routed to the source before we took the lock is in its queue.
            self.internal(&source, InternalOp::Barrier)?;
            loop {
                let (replayed, next) = self.catch_up(&source, &target, bucket, position)?;
                report.entries_replayed += replayed;
                position = next;
                if replayed == 0 {
                    break;
                }
            }
            let switched = envelope::encode(&BucketMove {
                switched: true,
                ..record
            });
            self.write_meta(|txn| {
                txn.open_table(BUCKET_MAP)?.insert(bucket.0, to.0)?;
                txn.open_table(META)?
                    .insert(META_BUCKET_MOVE, switched.as_slice())?;
                Ok(())
            })?;
            routing.buckets[usize::from(bucket.0)] = to;
            report.switch_pause = paused.elapsed();
        }
        self.remove_reader(from, MOVE_READER)?;
        report.rows_dropped_from_source = self.drop_bucket_rows(&source, bucket)?;
        self.persist_move(None)?;
        tracing::info!(%bucket, %from, %to, ?report, "moved bucket");
        Ok(report)
    }

    /// Repairs a move interrupted by a crash: before the switch the target's partial copy is
    /// dropped; after it, the source's leftover rows are.
    pub(crate) fn recover_bucket_move(&self, record: BucketMove) -> Result<(), OpenError> {
        let leftover = if record.switched {
            record.from
        } else {
            record.to
        };
        tracing::warn!(bucket = %record.bucket, from = %record.from, to = %record.to, switched = record.switched, "finishing an interrupted bucket move");
        let shard = self.shard(leftover)?;
        self.drop_bucket_rows(&shard, record.bucket)?;
        if self.readers(record.from)?.contains_key(MOVE_READER) {
            self.remove_reader(record.from, MOVE_READER)?;
        }
        self.persist_move(None)?;
        Ok(())
    }

    fn persist_move(&self, record: Option<BucketMove>) -> Result<(), StorageError> {
        self.write_meta(|txn| {
            let mut meta = txn.open_table(META)?;
            match record {
                Some(r) => {
                    meta.insert(META_BUCKET_MOVE, envelope::encode(&r).as_slice())?;
                }
                None => {
                    meta.remove(META_BUCKET_MOVE)?;
                }
            }
            Ok(())
        })
    }

    fn drop_bucket_rows(&self, shard: &Shard<C>, bucket: BucketId) -> Result<usize, StorageError> {
        let mut total = 0;
        loop {
            match self.internal(
                shard,
                InternalOp::DropBucket {
                    bucket,
                    rows_max: COPY_CHUNK_ROWS,
                },
            )? {
                InternalOutput::Dropped(0) => return Ok(total),
                InternalOutput::Dropped(n) => total += n,
                InternalOutput::Done => return Ok(total),
            }
        }
    }

    fn copy_snapshot(
        &self,
        snapshot: &redb::ReadTransaction,
        source: &Shard<C>,
        target: &Arc<Shard<C>>,
        bucket: BucketId,
    ) -> Result<usize, StorageError> {
        let table = snapshot
            .open_table(DATA)
            .map_err(|e| StorageError::db(source.id, e))?;
        let data = DataTable {
            shard: source.id,
            table: &table,
        };
        let (start, end) = keys::bucket_range(bucket);
        let end = end.map(|e| e.to_vec());
        let mut cursor = start.to_vec();
        let mut inclusive = true;
        let mut copied = 0;
        loop {
            let rows = data.raw_scan(&cursor, inclusive, end.as_deref(), COPY_CHUNK_ROWS)?;
            let Some((last, _)) = rows.last() else {
                return Ok(copied);
            };
            cursor = last.clone();
            inclusive = false;
            copied += rows.len();
            let rows = rows.into_iter().map(|(k, v)| (k, Some(v))).collect();
            self.import(source, target, bucket, rows)?;
        }
    }

    /// Replays the source's entries after `position` for this bucket. Returns how many entries
    /// there were and the new position.
    fn catch_up(
        &self,
        source: &Shard<C>,
        target: &Arc<Shard<C>>,
        bucket: BucketId,
        mut position: u64,
    ) -> Result<(usize, u64), StorageError> {
        let mut replayed = 0;
        loop {
            let page = crate::storage::changes_of(source, position, CHANGES_PAGE_MAX)?;
            let Some(last) = page.entries.last() else {
                return Ok((replayed, position));
            };
            position = last.lsn;
            replayed += page.entries.len();
            let touched: BTreeSet<Vec<u8>> = page
                .entries
                .iter()
                .flat_map(|e| e.changes.iter())
                .filter(|row| row.tenant.bucket() == bucket)
                .map(|row| {
                    let mut key = keys::table_prefix(row.tenant, row.table);
                    key.extend_from_slice(&row.key);
                    key
                })
                .collect();
            if !touched.is_empty() {
                // The entries may come from acknowledged batches not yet in the redb file: read
                // the rows through the same overlay.
                let (snapshot, overlay) = source.snapshot()?;
                let overlay =
                    OverlayView::above(overlay, crate::storage::read_lsn(&snapshot, source.id)?.0);
                let table = snapshot
                    .open_table(DATA)
                    .map_err(|e| StorageError::db(source.id, e))?;
                let data = DataTable {
                    shard: source.id,
                    table: &table,
                };
                let mut rows = Vec::with_capacity(touched.len());
                for key in touched {
                    let value = match overlay.get(&key) {
                        Some(value) => value.cloned(),
                        None => data.raw_get(&key)?,
                    };
                    rows.push((key, value));
                }
                for chunk in rows.chunks(COPY_CHUNK_ROWS) {
                    self.import(source, target, bucket, chunk.to_vec())?;
                }
            }
            if page.entries.len() < CHANGES_PAGE_MAX {
                return Ok((replayed, position));
            }
        }
    }

    fn import(
        &self,
        _source: &Shard<C>,
        target: &Arc<Shard<C>>,
        bucket: BucketId,
        rows: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<(), StorageError> {
        self.internal(target, InternalOp::Import { bucket, rows })
            .map(|_| ())
    }
}
