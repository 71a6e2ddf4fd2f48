//! Error types of the storage engine: one per operation family, plus `From` impls.

use crate::envelope::EnvelopeError;
use crate::ids::ShardId;
use crate::keys::KeyError;
use std::path::PathBuf;

/// Opening a data directory failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("data directory {path} is in use by another process (lock held on {lock})")]
    Locked { path: PathBuf, lock: PathBuf },
    #[error("cannot use data directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a Mercato storage file or is corrupted: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path} belongs to another data directory or shard: {reason}")]
    Foreign { path: PathBuf, reason: String },
    #[error("{path} was written by format version {found}; this build reads version {supported}")]
    UnsupportedFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("invalid storage configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A storage operation failed for a reason that is not the caller's input.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("shard {shard}: database error: {reason}")]
    Database { shard: ShardId, reason: String },
    #[error("shard {shard}: commit failed, nothing in this batch was written: {reason}")]
    Commit { shard: ShardId, reason: String },
    /// Appending the batch to the write-ahead log failed and the partial append could not be
    /// undone: the batch was not acknowledged, but it may be present after a restart.
    #[error(
        "shard {shard}: commit failed and could not be undone; the batch may be present after a restart: {reason}"
    )]
    CommitUncertain { shard: ShardId, reason: String },
    #[error(
        "shard {shard} is unavailable after an earlier I/O failure ({reason}); restart the process once the cause is fixed"
    )]
    ShardFailed { shard: ShardId, reason: String },
    #[error("shard {shard}: write queue is full ({pending_max} pending commands); retry later")]
    Overloaded { shard: ShardId, pending_max: u32 },
    #[error("shard {shard}: the command panicked while being applied; nothing of it was written")]
    CommandPanicked { shard: ShardId },
    #[error("storage is closed")]
    Closed,
    #[error("corrupt record: {0}")]
    Envelope(#[from] EnvelopeError),
    #[error("corrupt key: {0}")]
    Key(#[from] KeyError),
    #[error("key of {len} bytes exceeds the limit of {max}")]
    KeyTooLong { len: usize, max: usize },
    #[error(
        "shard {shard}: change log entries after LSN {requested} were trimmed; the oldest kept is {first_available}"
    )]
    ChangeLogTrimmed {
        shard: ShardId,
        requested: u64,
        first_available: u64,
    },
    #[error("no such shard {0}")]
    NoSuchShard(ShardId),
    #[error("blob store: {0}")]
    Blob(#[from] crate::blob::BlobError),
    #[error("resharding: {0}")]
    Reshard(String),
    #[error("meta database: {0}")]
    Meta(String),
}

impl StorageError {
    pub(crate) fn db(shard: ShardId, e: impl std::fmt::Display) -> StorageError {
        StorageError::Database {
            shard,
            reason: e.to_string(),
        }
    }
}

/// The outcome of a failed command: the command's own rejection, or a storage failure.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError<R> {
    /// The command's validation refused it; nothing was written.
    #[error("command rejected")]
    Rejected(R),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What a command's `apply` returns on failure.
#[derive(Debug)]
pub enum ApplyError<R> {
    /// Validation failed: this command alone is dropped, the rest of the batch commits.
    Rejected(R),
    /// Reading or writing the shard failed: the whole batch fails.
    Storage(StorageError),
}

impl<R> From<StorageError> for ApplyError<R> {
    fn from(e: StorageError) -> Self {
        ApplyError::Storage(e)
    }
}
