//! A shard: one redb file, its write-ahead log, its writer thread, and the group-commit write
//! path.
//!
//! Every change to a shard goes through its writer. Callers put operations on a bounded
//! channel; the writer takes whatever is pending (up to a count and a byte bound) and applies it
//! in one redb write transaction. A command whose validation fails is dropped alone; a storage
//! failure fails the whole batch and nothing of it is written.
//!
//! Durability, in this order, for a batch of commands:
//!
//! 1. the batch's accepted commands are appended to the shard's write-ahead log (`wal.rs`) as
//!    one record, with one `write` and one `fdatasync`;
//! 2. the batch is published to readers as a layer of the shard's overlay (`overlay.rs`);
//! 3. the callers are answered.
//!
//! So nothing a reader can see is missing from the synced log.
//!
//! Coalesced redb commits: the redb write transaction stays open across batches and is
//! committed with `Durability::None` (which makes it visible to redb readers, without the
//! scattered page writes and sync of a durable redb commit) only when no operation arrived for
//! [`REDB_COMMIT_IDLE`] after a batch, or when it holds [`REDB_COMMIT_BATCHES_MAX`] batches,
//! [`REDB_COMMIT_BYTES_MAX`] bytes of rows, or is [`REDB_COMMIT_INTERVAL_MAX`] old. Each redb
//! commit copies every page it changed, and under load consecutive batches change the same
//! pages (the same tenants' leaves, the change log's tail, the branches above them): one commit
//! for several batches copies them once. Commands read through the open transaction, so they
//! see every earlier batch; readers see the batches it holds through the overlay, which the
//! writer empties after each redb commit. A failure of the open transaction after some of its
//! batches were answered fails the shard: the log replays those batches at the next open.
//!
//! A *checkpoint* (every
//! `checkpoint_interval`, or when the log holds `checkpoint_wal_bytes`) commits an empty
//! transaction with `Durability::Immediate`, which makes every earlier commit durable in the
//! redb file. The commit returns once redb's pages are handed to the shard file's flusher
//! thread (`write_behind.rs`); the writing and the sync happen there, while the writer goes on
//! with the next batches. The log's records stay in the file they are in until that sync is
//! done, and new records go to the shard's other log file (`wal.rs`). The writer starts the next
//! checkpoint only after the sync, so the other file is free by then. At close, the checkpoint
//! waits for its sync and both files are emptied. A batch that holds an operation of the engine
//! itself (bucket import or drop, reader positions, probe, barrier) is rare and commits with
//! `Durability::Immediate` directly, waiting for the sync: it is a checkpoint, and its rows
//! (bucket imports copied from another shard) are never in any log. At open, the records of
//! both logs above the redb file's durable `last_lsn` are applied again through this same
//! write path ([`Writer::recover`]).

use crate::changelog::{ChangeEntry, ChangeKind, ChangedRow, TRIM_ENTRIES_MAX};
use crate::command::Command;
use crate::envelope;
use crate::error::{ApplyError, ExecuteError, StorageError};
use crate::ids::{BucketId, Lsn, ShardId};
use crate::keys::{self, split_physical};
use crate::overlay::{Layer, Published, Rows};
use crate::reply::{BlockingSender, Deliver, Replier};
use crate::tables::{
    BLOB_REF_TABLE_ID, BLOB_TOTALS, CHANGELOG, DATA, READERS, SHARD_FIRST_LSN, SHARD_LAST_LSN,
    SHARD_META, SHARD_PROBE,
};
use crate::txn::{DataTable, TenantWrite, decode_count};
use crate::wal::{RecordBuf, Wal, WalContents, pending_records};
use crate::write_behind::{SyncTicket, WriteBehindHandle};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use parking_lot::Mutex;
use redb::{Database, Durability, ReadableTable, Table, WriteTransaction};
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Batches with at most this many answers are answered by the writer itself, not by the
/// shard's reply thread (one caller: the hand-off would add a wake-up to its wait).
const REPLY_INLINE_MAX: usize = 2;

/// The open redb transaction is committed once it holds this many acknowledged batches...
const REDB_COMMIT_BATCHES_MAX: usize = 16;
/// ... or this many bytes of changed rows (what readers hold in the overlay meanwhile) ...
const REDB_COMMIT_BYTES_MAX: usize = 8 << 20;
/// ... or its first batch is this old ...
const REDB_COMMIT_INTERVAL_MAX: Duration = Duration::from_millis(20);
/// ... or no operation arrived for this long after a batch. Not at once when the queue is
/// empty: the callers just answered are about to submit again (a lone caller too), and a
/// commit between two batches delays the next one.
const REDB_COMMIT_IDLE: Duration = Duration::from_micros(500);

/// How often an idle writer looks whether a checkpoint's sync is done.
const CHECKPOINT_POLL_INTERVAL: Duration = Duration::from_millis(5);

/// Bounds of one group-commit batch and of the change-log retention window.
#[derive(Clone, Debug)]
pub struct WriterLimits {
    pub batch_count_max: usize,
    pub batch_bytes_max: usize,
    /// The newest entries kept regardless of readers, for late readers and debugging.
    pub changelog_retain_entries_min: u64,
    /// Longest time a commit stays durable only through the write-ahead log.
    pub checkpoint_interval: Duration,
    /// Log size that triggers a checkpoint before the interval is over.
    pub checkpoint_wal_bytes: u64,
}

/// Where a writer sends an answer: to an async caller or to a blocked thread. (tokio's
/// `blocking_recv` panics when called on a runtime thread, so blocking callers get a one-shot
/// that merely blocks.)
pub(crate) enum Reply<T> {
    Async(oneshot::Sender<T>),
    Blocking(BlockingSender<T>),
    /// Nobody waits: a command applied again from the write-ahead log at open.
    Replay,
}

impl<T> Reply<T> {
    /// A caller that went away (timed out, cancelled) is not an error.
    pub(crate) fn send(self, value: T) {
        match self {
            Reply::Async(tx) => {
                let _ = tx.send(value);
            }
            Reply::Blocking(tx) => tx.send(value),
            Reply::Replay => {}
        }
    }
}

/// Work for a shard writer.
pub(crate) enum Op<C: Command> {
    Command {
        command: C,
        encoded: Vec<u8>,
        reply: Reply<Result<C::Output, ExecuteError<C::Rejection>>>,
    },
    Internal {
        op: InternalOp,
        reply: Reply<Result<InternalOutput, StorageError>>,
    },
    Shutdown,
}

impl<C: Command> Op<C> {
    fn size_bytes(&self) -> usize {
        match self {
            Op::Command { encoded, .. } => encoded.len(),
            Op::Internal {
                op: InternalOp::Import { rows, .. },
                ..
            } => rows
                .iter()
                .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
                .sum(),
            Op::Internal { .. } | Op::Shutdown => 0,
        }
    }
}

/// Operations of the engine itself, applied through the same write path as commands.
pub(crate) enum InternalOp {
    /// Rows of a bucket copied from another shard: physical key -> value (None: delete).
    Import {
        bucket: BucketId,
        rows: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    },
    /// Delete up to `rows_max` rows of a bucket.
    DropBucket {
        bucket: BucketId,
        rows_max: usize,
    },
    SetReader {
        name: String,
        lsn: Lsn,
    },
    RemoveReader {
        name: String,
    },
    /// A durable write that changes nothing but a counter: proves the shard is writable.
    Probe,
    /// Answers once everything submitted before it has committed.
    Barrier,
}

pub(crate) enum InternalOutput {
    Done,
    Dropped(usize),
}

/// Health of a shard's writer.
#[derive(Default)]
pub(crate) struct ShardHealth {
    failed: Mutex<Option<String>>,
}

impl ShardHealth {
    pub(crate) fn failure(&self) -> Option<String> {
        self.failed.lock().clone()
    }
}

enum Done<C: Command> {
    Command {
        reply: Reply<Result<C::Output, ExecuteError<C::Rejection>>>,
        result: Result<C::Output, ExecuteError<C::Rejection>>,
    },
    Internal {
        reply: Reply<Result<InternalOutput, StorageError>>,
        result: Result<InternalOutput, StorageError>,
    },
}

impl<C: Command> Done<C> {
    fn fail(self, error: impl Fn() -> StorageError) {
        // A receiver that went away (a caller that timed out) is not an error.
        match self {
            Done::Command { reply, result } => {
                let result = match result {
                    Err(ExecuteError::Rejected(r)) => Err(ExecuteError::Rejected(r)),
                    _ => Err(ExecuteError::Storage(error())),
                };
                reply.send(result);
            }
            Done::Internal { reply, .. } => {
                reply.send(Err(error()));
            }
        }
    }

    fn send(self) {
        match self {
            Done::Command { reply, result } => {
                reply.send(result);
            }
            Done::Internal { reply, result } => {
                reply.send(result);
            }
        }
    }
}

impl<C: Command> Deliver for Done<C> {
    fn deliver(self) {
        self.send();
    }
}

/// The state a writer thread owns.
pub(crate) struct Writer {
    pub shard: ShardId,
    pub db: Arc<Database>,
    /// What readers see of the batches in `open` (`overlay.rs`).
    pub published: Arc<Published>,
    /// The redb write transaction that holds acknowledged batches not committed yet.
    pub open: Option<OpenTxn>,
    /// Acknowledged batches of the open transaction that a failed batch took down with it.
    pub lost_batches: usize,
    pub limits: WriterLimits,
    pub health: Arc<ShardHealth>,
    pub last_lsn: Lsn,
    /// Oldest LSN still in the log (`last_lsn + 1` when empty).
    pub first_lsn: Lsn,
    /// Positions of registered readers.
    pub readers: BTreeMap<String, Lsn>,
    pub metrics: WriterMetrics,
    /// The log file records are appended to.
    pub wal: Wal,
    /// The other log file: free, or holding the records of a checkpoint whose sync is pending.
    pub wal_other: Wal,
    /// The checkpoint whose sync frees `wal_other`, and when it was committed.
    pub other_log_pending: Option<(SyncTicket, Instant)>,
    /// When the shard file's writes are durable.
    pub durable: WriteBehindHandle,
    /// The log record of the batch being applied.
    pub record: RecordBuf,
    /// Reused for encoding each change-log entry.
    pub entry_buf: Vec<u8>,
    /// When the oldest redb commit that is durable only through the log was made; `None` when
    /// the redb file is durable up to `last_lsn`.
    pub pending_since: Option<Instant>,
}

/// A redb write transaction kept open across batches (see "Coalesced redb commits" above).
pub(crate) struct OpenTxn {
    txn: WriteTransaction,
    /// Acknowledged batches it holds.
    batches: usize,
    /// Row bytes those batches changed.
    bytes: usize,
    /// When its first batch was acknowledged.
    since: Instant,
}

pub(crate) struct WriterMetrics {
    batch_size: metrics::Histogram,
    commit_seconds: metrics::Histogram,
    changelog_entries: metrics::Gauge,
    batch_failures: metrics::Counter,
    checkpoint_seconds: metrics::Histogram,
    checkpoint_sync_seconds: metrics::Histogram,
    wal_bytes: metrics::Gauge,
    redb_commit_batches: metrics::Histogram,
}

impl WriterMetrics {
    pub(crate) fn new(shard: ShardId) -> Self {
        let label = shard.0.to_string();
        WriterMetrics {
            batch_size: metrics::histogram!("mercato_commit_batch_size", "shard" => label.clone()),
            commit_seconds: metrics::histogram!("mercato_commit_seconds", "shard" => label.clone()),
            changelog_entries: metrics::gauge!("mercato_changelog_entries", "shard" => label.clone()),
            batch_failures: metrics::counter!("mercato_commit_failures_total", "shard" => label.clone()),
            checkpoint_seconds: metrics::histogram!("mercato_checkpoint_seconds", "shard" => label.clone()),
            checkpoint_sync_seconds: metrics::histogram!("mercato_checkpoint_sync_seconds", "shard" => label.clone()),
            wal_bytes: metrics::gauge!("mercato_wal_bytes", "shard" => label.clone()),
            redb_commit_batches: metrics::histogram!("mercato_redb_commit_batches", "shard" => label),
        }
    }
}

impl Writer {
    /// The writer thread's loop: runs until `Shutdown` or until every sender is gone.
    pub(crate) fn run<C: Command>(mut self, rx: Receiver<Op<C>>) {
        self.metrics
            .changelog_entries
            .set(self.changelog_len() as f64);
        let mut batch: Vec<Op<C>> = Vec::with_capacity(self.limits.batch_count_max);
        // Without a reply thread (it could not be started) the writer answers by itself.
        let replier = match Replier::<Done<C>>::start(format!("shard-{}-reply", self.shard)) {
            Ok(replier) => Some(replier),
            Err(error) => {
                tracing::warn!(shard = %self.shard, %error, "no reply thread; the writer answers callers itself");
                None
            }
        };
        loop {
            let Some(first) = self.next_op(&rx) else {
                break;
            };
            let mut bytes = first.size_bytes();
            batch.push(first);
            let mut shutdown = false;
            while batch.len() < self.limits.batch_count_max && bytes < self.limits.batch_bytes_max {
                match rx.try_recv() {
                    Ok(Op::Shutdown) => {
                        shutdown = true;
                        break;
                    }
                    Ok(op) => {
                        bytes += op.size_bytes();
                        batch.push(op);
                    }
                    Err(_) => break,
                }
            }
            self.run_batch(&mut batch, replier.as_ref());
            self.commit_open_if_due(false);
            self.poll_checkpoint();
            if self.checkpoint_due() {
                self.checkpoint_or_fail();
            }
            if shutdown {
                break;
            }
        }
        // Every answer of a committed batch is sent before the writer stops.
        drop(replier);
        if self.health.failure().is_none()
            && (self.pending_since.is_some() || self.other_log_pending.is_some())
            && let Err(error) = self.checkpoint()
        {
            tracing::error!(shard = %self.shard, %error, "checkpoint at close failed");
            *self.health.failed.lock() = Some(error.to_string());
        }
        // Both logs now hold only redundant records; they keep their blocks for the appends
        // after the next open to overwrite.
        tracing::debug!(shard = %self.shard, last_lsn = self.last_lsn, "shard writer stopped");
    }

    /// Waits for the next operation, checkpointing when the interval runs out while idle.
    /// `None` on `Shutdown` or when every sender is gone.
    fn next_op<C: Command>(&mut self, rx: &Receiver<Op<C>>) -> Option<Op<C>> {
        loop {
            let deadline = match (self.other_log_pending, self.pending_since) {
                // Look at the checkpoint's sync now and then, to free the other log.
                (Some(_), _) => Some(Instant::now() + CHECKPOINT_POLL_INTERVAL),
                (None, Some(since)) => Some(since + self.limits.checkpoint_interval),
                (None, None) => None,
            };
            // An open transaction is committed once the writer has been idle for a moment.
            let deadline = match (&self.open, deadline) {
                (Some(_), Some(deadline)) => Some(deadline.min(Instant::now() + REDB_COMMIT_IDLE)),
                (Some(_), None) => Some(Instant::now() + REDB_COMMIT_IDLE),
                (None, deadline) => deadline,
            };
            let received = match deadline {
                Some(deadline) => match rx.recv_deadline(deadline) {
                    Ok(op) => Some(op),
                    Err(RecvTimeoutError::Timeout) => {
                        self.commit_open_if_due(true);
                        self.poll_checkpoint();
                        if self.checkpoint_due() {
                            self.checkpoint_or_fail();
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => None,
                },
                None => rx.recv().ok(),
            };
            return match received {
                Some(Op::Shutdown) | None => None,
                Some(op) => Some(op),
            };
        }
    }

    fn checkpoint_due(&self) -> bool {
        self.pending_since
            .is_some_and(|since| since.elapsed() >= self.limits.checkpoint_interval)
            || self.wal.record_bytes() >= self.limits.checkpoint_wal_bytes
    }

    /// Starts a checkpoint. While the previous one's sync is still running, the other log is not
    /// free: the checkpoint waits for a later call, or, once the log in use holds twice
    /// `checkpoint_wal_bytes` (the bound on a log file), for that sync. A failure marks the shard
    /// failed (the logs still hold every acknowledged batch, so nothing acknowledged is lost; the
    /// next open replays them).
    fn checkpoint_or_fail(&mut self) {
        if self.health.failure().is_some() {
            self.pending_since = None;
            return;
        }
        if let Some((ticket, _)) = self.other_log_pending {
            if self.wal.record_bytes() < self.limits.checkpoint_wal_bytes.saturating_mul(2) {
                return;
            }
            if let Err(error) = self.durable.wait(ticket) {
                self.checkpoint_failed(&error.to_string());
                return;
            }
            self.poll_checkpoint();
        }
        let started = Instant::now();
        match self.commit_checkpoint() {
            Ok(ticket) => {
                self.metrics
                    .checkpoint_seconds
                    .record(started.elapsed().as_secs_f64());
                // The records of the log in use are durable in the redb file once the sync is
                // done; until then they stay there, and new ones go to the other log.
                std::mem::swap(&mut self.wal, &mut self.wal_other);
                self.wal.rewind();
                self.other_log_pending = Some((ticket, started));
                self.pending_since = None;
                self.metrics.wal_bytes.set(0.0);
            }
            Err(error) => self.checkpoint_failed(&error.to_string()),
        }
    }

    /// Frees the other log once the checkpoint's sync is done; a failed sync fails the shard.
    fn poll_checkpoint(&mut self) {
        let Some((ticket, started)) = self.other_log_pending else {
            return;
        };
        match self.durable.poll(ticket) {
            None => {}
            Some(Ok(())) => {
                self.other_log_pending = None;
                self.metrics
                    .checkpoint_sync_seconds
                    .record(started.elapsed().as_secs_f64());
            }
            Some(Err(error)) => self.checkpoint_failed(&error.to_string()),
        }
    }

    fn checkpoint_failed(&mut self, error: &str) {
        tracing::error!(shard = %self.shard, %error, "checkpoint failed");
        self.metrics.batch_failures.increment(1);
        self.pending_since = None;
        *self.health.failed.lock() = Some(format!("checkpoint: {error}"));
    }

    /// Commits an empty transaction with `Durability::Immediate` (its `last_lsn` is the
    /// checkpointed LSN): every commit so far becomes durable in the redb file once the
    /// returned sync is done.
    fn commit_checkpoint(&mut self) -> Result<SyncTicket, StorageError> {
        let shard = self.shard;
        let open = self.open.take();
        let had_open = open.is_some();
        let mut txn = match open {
            Some(open) => open.txn,
            None => self
                .db
                .begin_write()
                .map_err(|e| StorageError::db(shard, e))?,
        };
        txn.set_durability(Durability::Immediate)
            .map_err(|e| StorageError::db(shard, e))?;
        self.seal(&txn)?;
        txn.commit().map_err(|e| StorageError::Commit {
            shard,
            reason: format!("checkpoint: {e}"),
        })?;
        if had_open {
            self.published.clear();
        }
        Ok(self.durable.last_sync())
    }

    /// Commits the open transaction (without a sync: the log holds its batches) when it holds
    /// enough, is old enough, or the writer is `idle`. A failure fails the shard: its
    /// batches are acknowledged, and the log replays them at the next open.
    fn commit_open_if_due(&mut self, idle: bool) {
        let Some(open) = &self.open else {
            return;
        };
        if !idle
            && open.batches < REDB_COMMIT_BATCHES_MAX
            && open.bytes < REDB_COMMIT_BYTES_MAX
            && open.since.elapsed() < REDB_COMMIT_INTERVAL_MAX
        {
            return;
        }
        let Some(open) = self.open.take() else {
            return;
        };
        self.metrics.redb_commit_batches.record(open.batches as f64);
        match self
            .seal(&open.txn)
            .map_err(|e| e.to_string())
            .and_then(|()| open.txn.commit().map_err(|e| e.to_string()))
        {
            Ok(()) => self.published.clear(),
            Err(error) => {
                // Readers keep the published overlay: every acknowledged batch stays visible
                // until the restart that replays the log.
                let reason = format!("committing {} batches: {error}", open.batches);
                tracing::error!(shard = %self.shard, %reason, "redb commit failed");
                self.metrics.batch_failures.increment(1);
                *self.health.failed.lock() = Some(reason);
            }
        }
    }

    /// A checkpoint that waits for its sync, then empties the logs (at open and at close).
    pub(crate) fn checkpoint(&mut self) -> Result<(), StorageError> {
        let ticket = self.commit_checkpoint()?;
        self.wait_durable(ticket)?;
        self.made_durable();
        Ok(())
    }

    /// Waits for a sync of the shard file.
    fn wait_durable(&self, ticket: SyncTicket) -> Result<(), StorageError> {
        self.durable.wait(ticket).map_err(|e| StorageError::Commit {
            shard: self.shard,
            reason: format!("syncing the shard file: {e}"),
        })
    }

    /// After a durable redb commit whose sync is done: every record in both logs is redundant.
    fn made_durable(&mut self) {
        self.pending_since = None;
        self.other_log_pending = None;
        self.wal.rewind();
        self.metrics.wal_bytes.set(0.0);
    }

    /// Applies the logs' records above the redb file's durable `last_lsn` again, in LSN order,
    /// one batch per record, through the same write path. Every replayed command must be
    /// accepted again and get the LSN it had (commands are deterministic). Returns the commands
    /// replayed. The caller checkpoints afterwards.
    pub(crate) fn recover<C: Command>(&mut self, logs: &[WalContents<'_>]) -> Result<u64, String> {
        let mut replayed = 0u64;
        for record in pending_records(logs, self.last_lsn)? {
            if record.first_lsn != self.last_lsn + 1 {
                return Err(format!(
                    "the record at offset {} starts at LSN {}, but the redb file and the records before it end at LSN {}: records are missing",
                    record.offset, record.first_lsn, self.last_lsn
                ));
            }
            let mut batch = Vec::with_capacity(record.commands.len());
            for (i, bytes) in record.commands.iter().enumerate() {
                let command: C = envelope::decode(bytes).map_err(|e| {
                    format!(
                        "LSN {}: the command does not decode: {e}",
                        record.first_lsn + i as u64
                    )
                })?;
                batch.push(Op::Command {
                    command,
                    encoded: bytes.to_vec(),
                    reply: Reply::Replay,
                });
            }
            let mut done = Vec::with_capacity(batch.len());
            let first = self.last_lsn + 1;
            self.write_batch(&mut batch, &mut done, true)
                .map_err(|e| format!("replaying the record at offset {}: {e}", record.offset))?;
            for (i, d) in done.iter().enumerate() {
                if let Done::Command { result: Err(e), .. } = d {
                    return Err(format!(
                        "command {i} of the record at offset {} (from LSN {first}) failed on replay although it was accepted before (a command that is not deterministic?): {e:?}",
                        record.offset
                    ));
                }
            }
            if self.last_lsn != record.last_lsn() {
                return Err(format!(
                    "replaying the record at offset {} ended at LSN {}, expected {}",
                    record.offset,
                    self.last_lsn,
                    record.last_lsn()
                ));
            }
            replayed += record.commands.len() as u64;
        }
        Ok(replayed)
    }

    fn changelog_len(&self) -> u64 {
        (self.last_lsn + 1).saturating_sub(self.first_lsn)
    }

    fn run_batch<C: Command>(
        &mut self,
        batch: &mut Vec<Op<C>>,
        replier: Option<&Replier<Done<C>>>,
    ) {
        let started = Instant::now();
        let count = batch.len();
        if let Some(reason) = self.health.failure() {
            for op in batch.drain(..) {
                fail_op(op, || StorageError::ShardFailed {
                    shard: self.shard,
                    reason: reason.clone(),
                });
            }
            return;
        }
        let (last_lsn, first_lsn, readers) = (self.last_lsn, self.first_lsn, self.readers.clone());
        let mut done: Vec<Done<C>> = Vec::with_capacity(count);
        match self.write_batch(batch, &mut done, false) {
            Ok(()) => {
                match replier {
                    // A hand-off costs a wake-up of its own: worth it only for several answers.
                    Some(replier) if done.len() > REPLY_INLINE_MAX => replier.push(done),
                    _ => done.into_iter().for_each(Done::send),
                }
                self.metrics.batch_size.record(count as f64);
                self.metrics
                    .commit_seconds
                    .record(started.elapsed().as_secs_f64());
                self.metrics
                    .changelog_entries
                    .set(self.changelog_len() as f64);
                self.metrics.wal_bytes.set(self.wal.record_bytes() as f64);
            }
            Err(error) => {
                // Nothing of the batch was written: restore the in-memory positions.
                self.last_lsn = last_lsn;
                self.first_lsn = first_lsn;
                self.readers = readers;
                self.metrics.batch_failures.increment(1);
                tracing::error!(shard = %self.shard, %error, "batch failed");
                let reason = error.to_string();
                let uncertain = matches!(error, StorageError::CommitUncertain { .. });
                if uncertain || matches!(error, StorageError::Commit { .. }) {
                    // After a failed commit redb refuses further writes on this handle, and
                    // after a failed log append the log cannot be trusted; the files hold the
                    // last durable state and the log every acknowledged batch since.
                    *self.health.failed.lock() = Some(reason.clone());
                } else if self.lost_batches > 0 {
                    // The dropped transaction held acknowledged batches: the shard's redb state
                    // is behind what callers were told; the log replays them at the next open.
                    *self.health.failed.lock() = Some(format!(
                        "{reason} (the open transaction held {} acknowledged batches; restart to replay them from the log)",
                        self.lost_batches
                    ));
                }
                let shard = self.shard;
                let batch_error = || {
                    if uncertain {
                        StorageError::CommitUncertain {
                            shard,
                            reason: reason.clone(),
                        }
                    } else {
                        StorageError::Commit {
                            shard,
                            reason: reason.clone(),
                        }
                    }
                };
                for d in done {
                    d.fail(batch_error);
                }
                for op in batch.drain(..) {
                    fail_op(op, batch_error);
                }
            }
        }
    }

    /// Applies the batch in the open transaction and makes it durable (see the module comment
    /// for the order). On success every op has moved to `done`. `replay`: the batch comes from
    /// the log at open, so it is not appended to it again. On failure the open transaction is
    /// dropped; `self.lost_batches` says how many acknowledged batches it held.
    fn write_batch<C: Command>(
        &mut self,
        batch: &mut Vec<Op<C>>,
        done: &mut Vec<Done<C>>,
        replay: bool,
    ) -> Result<(), StorageError> {
        let shard = self.shard;
        let db_err = |e: &dyn std::fmt::Display| StorageError::db(shard, e);
        let durable = batch.iter().any(|op| matches!(op, Op::Internal { .. }));
        let to_wal = !durable && !replay;
        let open = self.open.take();
        self.lost_batches = open.as_ref().map_or(0, |o| o.batches);
        let (mut txn, prior) = match open {
            Some(open) => (open.txn, Some((open.batches, open.bytes, open.since))),
            None => (self.db.begin_write().map_err(|e| db_err(&e))?, None),
        };
        txn.set_durability(if durable {
            Durability::Immediate
        } else {
            Durability::None
        })
        .map_err(|e| db_err(&e))?;
        self.record.clear();
        // The batch as readers will see it until a redb commit holds it (not needed when this
        // batch commits before it is answered, nor at open, when nobody reads yet).
        let mut layer = (!durable && !replay).then(|| Layer {
            last_lsn: 0,
            first_lsn: 0,
            rows: BTreeMap::new(),
            entries: Vec::new(),
        });
        let mut layer_bytes = 0usize;
        {
            let mut data = txn.open_table(DATA).map_err(|e| db_err(&e))?;
            let mut log = txn.open_table(CHANGELOG).map_err(|e| db_err(&e))?;
            let mut tables = BatchTables {
                shard,
                txn: &txn,
                data: &mut data,
                totals: None,
            };
            for op in batch.drain(..) {
                match op {
                    Op::Command {
                        command,
                        encoded,
                        reply,
                    } => {
                        let tenant = command.tenant();
                        let (result, overlay) = {
                            let source = DataTable {
                                shard,
                                table: &*tables.data,
                            };
                            let mut handle = TenantWrite::new(tenant, &source);
                            // A bug that panics inside one command must not take the shard's
                            // writer down: the command fails alone, its overlay is dropped.
                            let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                                command.apply(&mut handle)
                            }));
                            (result, handle.into_overlay())
                        };
                        // Until its rows are applied, a failing command fails alone: nothing of
                        // it is in the transaction.
                        let result = match result {
                            Err(_panic) => {
                                tracing::error!(shard = %shard, %tenant, "command panicked; it was dropped");
                                Err(ExecuteError::Storage(StorageError::CommandPanicked {
                                    shard,
                                }))
                            }
                            Ok(Ok(output)) => {
                                let prefix = keys::tenant_prefix(tenant);
                                if let Some(stray) =
                                    overlay.keys().find(|k| !k.starts_with(&prefix))
                                {
                                    Err(ExecuteError::Storage(StorageError::Key(keys::KeyError(
                                        if stray.len() < 10 {
                                            "short key from a command"
                                        } else {
                                            "command wrote outside its tenant"
                                        },
                                    ))))
                                } else {
                                    let changes = tables.apply_rows(
                                        overlay,
                                        layer.as_mut().map(|l| (&mut l.rows, &mut layer_bytes)),
                                    )?;
                                    if to_wal {
                                        self.record
                                            .push(self.last_lsn + 1, &encoded)
                                            .map_err(|e| db_err(&e))?;
                                    }
                                    self.append(
                                        &mut log,
                                        ChangeKind::Command {
                                            tenant,
                                            command: encoded,
                                        },
                                        changes,
                                    )?;
                                    if let Some(layer) = layer.as_mut() {
                                        layer.entries.push((self.last_lsn, self.entry_buf.clone()));
                                    }
                                    Ok(output)
                                }
                            }
                            Ok(Err(ApplyError::Rejected(rejection))) => {
                                Err(ExecuteError::Rejected(rejection))
                            }
                            Ok(Err(ApplyError::Storage(e))) => Err(ExecuteError::Storage(e)),
                        };
                        done.push(Done::Command { reply, result });
                    }
                    Op::Internal { op, reply } => {
                        let result = self.apply_internal(op, &mut tables, &mut log)?;
                        done.push(Done::Internal {
                            reply,
                            result: Ok(result),
                        });
                    }
                    Op::Shutdown => {}
                }
            }
        }
        if durable {
            self.seal(&txn)?;
            txn.commit().map_err(|e| StorageError::Commit {
                shard,
                reason: e.to_string(),
            })?;
            if prior.is_some() {
                self.published.clear();
            }
            self.wait_durable(self.durable.last_sync())?;
            self.made_durable();
            return Ok(());
        }
        if !self.record.is_empty() {
            // The transaction is dropped (aborted) on failure: nothing of this batch became
            // visible.
            self.wal.append(&mut self.record).map_err(|e| {
                let reason = format!("appending to {}: {}", self.wal.path().display(), e.source);
                if e.rolled_back {
                    StorageError::Commit { shard, reason }
                } else {
                    StorageError::CommitUncertain { shard, reason }
                }
            })?;
        }
        // Durable now: publish the batch for readers before it is answered; the transaction
        // stays open for the next batches.
        let (batches, bytes, since) = prior.unwrap_or_else(|| (0, 0, Instant::now()));
        if let Some(mut layer) = layer.filter(|l| !l.entries.is_empty()) {
            layer.last_lsn = self.last_lsn;
            layer.first_lsn = self.first_lsn;
            // Only this thread stores the overlay: the one loaded is the one last published.
            self.published
                .push(Arc::new(self.published.load().with(layer)));
        }
        self.open = Some(OpenTxn {
            txn,
            batches: batches + 1,
            bytes: bytes + layer_bytes,
            since,
        });
        self.lost_batches = 0;
        self.pending_since.get_or_insert_with(Instant::now);
        Ok(())
    }

    fn append(
        &mut self,
        log: &mut Table<'_, u64, &'static [u8]>,
        kind: ChangeKind,
        changes: Vec<ChangedRow>,
    ) -> Result<(), StorageError> {
        let lsn = self.last_lsn + 1;
        let entry = ChangeEntry { lsn, kind, changes };
        envelope::encode_into(&entry, &mut self.entry_buf);
        log.insert(lsn, self.entry_buf.as_slice())
            .map_err(|e| StorageError::db(self.shard, e))?;
        self.last_lsn = lsn;
        Ok(())
    }

    fn apply_internal(
        &mut self,
        op: InternalOp,
        tables: &mut BatchTables<'_, '_>,
        log: &mut Table<'_, u64, &'static [u8]>,
    ) -> Result<InternalOutput, StorageError> {
        let shard = self.shard;
        let open = |e: redb::TableError| StorageError::db(shard, e);
        match op {
            InternalOp::Import { bucket, rows } => {
                if let Some((k, _)) = rows
                    .iter()
                    .find(|(k, _)| !k.starts_with(&bucket.0.to_be_bytes()))
                {
                    return Err(StorageError::Reshard(format!(
                        "imported key {k:02x?} is not in bucket {bucket}"
                    )));
                }
                let changes = tables.apply_rows(rows.into_iter().collect(), None)?;
                self.append(log, ChangeKind::BucketImport { bucket }, changes)?;
                Ok(InternalOutput::Done)
            }
            InternalOp::DropBucket { bucket, rows_max } => {
                let (start, end) = keys::bucket_range(bucket);
                let source = DataTable {
                    shard,
                    table: &*tables.data,
                };
                let rows = crate::txn::RawRead::raw_scan(
                    &source,
                    &start,
                    true,
                    end.as_ref().map(|e| e.as_slice()),
                    rows_max,
                )?;
                let dropped = rows.len();
                if dropped > 0 {
                    let changes = tables
                        .apply_rows(rows.into_iter().map(|(k, _)| (k, None)).collect(), None)?;
                    self.append(log, ChangeKind::BucketDrop { bucket }, changes)?;
                }
                Ok(InternalOutput::Dropped(dropped))
            }
            InternalOp::SetReader { name, lsn } => {
                tables
                    .txn
                    .open_table(READERS)
                    .map_err(open)?
                    .insert(name.as_str(), lsn)
                    .map_err(|e| StorageError::db(shard, e))?;
                self.readers.insert(name, lsn);
                Ok(InternalOutput::Done)
            }
            InternalOp::RemoveReader { name } => {
                tables
                    .txn
                    .open_table(READERS)
                    .map_err(open)?
                    .remove(name.as_str())
                    .map_err(|e| StorageError::db(shard, e))?;
                self.readers.remove(&name);
                Ok(InternalOutput::Done)
            }
            InternalOp::Probe => {
                let mut meta = tables.txn.open_table(SHARD_META).map_err(open)?;
                let next = match meta
                    .get(SHARD_PROBE)
                    .map_err(|e| StorageError::db(shard, e))?
                {
                    Some(v) => decode_count(v.value())?.wrapping_add(1),
                    None => 1,
                };
                meta.insert(SHARD_PROBE, next.to_le_bytes().as_slice())
                    .map_err(|e| StorageError::db(shard, e))?;
                Ok(InternalOutput::Done)
            }
            InternalOp::Barrier => Ok(InternalOutput::Done),
        }
    }

    /// Before a commit of `txn`: trims the change log and records the LSN range in the shard's
    /// meta table. Once per redb commit, not per batch: a commit holds several batches under
    /// load, and trimming their entries together rewrites the log's first leaves once.
    fn seal(&mut self, txn: &WriteTransaction) -> Result<(), StorageError> {
        let shard = self.shard;
        let db_err = |e: &dyn std::fmt::Display| StorageError::db(shard, e);
        self.trim(&mut txn.open_table(CHANGELOG).map_err(|e| db_err(&e))?)?;
        let mut meta = txn.open_table(SHARD_META).map_err(|e| db_err(&e))?;
        meta.insert(SHARD_LAST_LSN, self.last_lsn.to_le_bytes().as_slice())
            .map_err(|e| db_err(&e))?;
        meta.insert(SHARD_FIRST_LSN, self.first_lsn.to_le_bytes().as_slice())
            .map_err(|e| db_err(&e))?;
        Ok(())
    }

    /// Deletes entries that every reader has passed and that are outside the retention window.
    fn trim(&mut self, log: &mut Table<'_, u64, &'static [u8]>) -> Result<(), StorageError> {
        let readers_min = self
            .readers
            .values()
            .copied()
            .min()
            .unwrap_or(self.last_lsn);
        let window_start = self
            .last_lsn
            .saturating_sub(self.limits.changelog_retain_entries_min);
        let trim_upto = readers_min.min(window_start);
        if trim_upto < self.first_lsn {
            return Ok(());
        }
        let upto = trim_upto.min(self.first_lsn + TRIM_ENTRIES_MAX as u64 - 1);
        // One pass over the range, which rewrites each leaf once, where a `remove` per entry
        // descended the tree and edited the first leaf once per entry (~10% of the writer's
        // time at 64 writers).
        log.retain_in(self.first_lsn..=upto, |_, _| false)
            .map_err(|e| StorageError::db(self.shard, e))?;
        self.first_lsn = upto + 1;
        Ok(())
    }
}

fn fail_op<C: Command>(op: Op<C>, error: impl Fn() -> StorageError) {
    match op {
        Op::Command { reply, .. } => {
            reply.send(Err(ExecuteError::Storage(error())));
        }
        Op::Internal { reply, .. } => {
            reply.send(Err(error()));
        }
        Op::Shutdown => {}
    }
}

/// The data tables a batch writes rows into.
struct BatchTables<'a, 'txn> {
    shard: ShardId,
    txn: &'txn WriteTransaction,
    data: &'a mut Table<'txn, &'static [u8], &'static [u8]>,
    /// Opened when a batch first changes a blob reference.
    totals: Option<Table<'txn, &'static [u8], u64>>,
}

impl<'txn> BatchTables<'_, 'txn> {
    fn totals(&mut self) -> Result<&mut Table<'txn, &'static [u8], u64>, StorageError> {
        match &mut self.totals {
            Some(totals) => Ok(totals),
            slot => Ok(slot.insert(
                self.txn
                    .open_table(BLOB_TOTALS)
                    .map_err(|e| StorageError::db(self.shard, e))?,
            )),
        }
    }

    /// Writes rows (None deletes) and keeps the shard-wide blob totals in step with the
    /// per-tenant blob reference rows. Returns the change-log description of the rows.
    /// `layer`: where the rows go for readers, and its byte count.
    fn apply_rows(
        &mut self,
        rows: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
        mut layer: Option<(&mut Rows, &mut usize)>,
    ) -> Result<Vec<ChangedRow>, StorageError> {
        let shard = self.shard;
        let mut changes = Vec::with_capacity(rows.len());
        for (key, value) in rows {
            let parts = split_physical(&key)?;
            if parts.table == BLOB_REF_TABLE_ID {
                let old = match self
                    .data
                    .get(key.as_slice())
                    .map_err(|e| StorageError::db(shard, e))?
                {
                    Some(v) => decode_count(v.value())?,
                    None => 0,
                };
                let new = match &value {
                    Some(v) => decode_count(v)?,
                    None => 0,
                };
                if old != new {
                    let hash = parts.key;
                    let totals = self.totals()?;
                    let total = match totals.get(hash).map_err(|e| StorageError::db(shard, e))? {
                        Some(v) => v.value(),
                        None => 0,
                    };
                    let total = (total + new).saturating_sub(old);
                    if total == 0 {
                        totals
                            .remove(hash)
                            .map_err(|e| StorageError::db(shard, e))?;
                    } else {
                        totals
                            .insert(hash, total)
                            .map_err(|e| StorageError::db(shard, e))?;
                    }
                }
            }
            changes.push(ChangedRow {
                tenant: parts.tenant,
                table: parts.table,
                key: parts.key.to_vec(),
                deleted: value.is_none(),
            });
            match &value {
                Some(v) => {
                    self.data
                        .insert(key.as_slice(), v.as_slice())
                        .map_err(|e| StorageError::db(shard, e))?;
                }
                None => {
                    self.data
                        .remove(key.as_slice())
                        .map_err(|e| StorageError::db(shard, e))?;
                }
            }
            if let Some((rows, bytes)) = layer.as_mut() {
                **bytes += key.len() + value.as_ref().map_or(0, Vec::len);
                rows.insert(key, value);
            }
        }
        Ok(changes)
    }
}
