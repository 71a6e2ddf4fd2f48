//! The per-shard change log: one entry per applied command (and per resharding step), in LSN
//! order, written in the same transaction as the change itself.
//!
//! It is the single source for everything derived from the data (search index, analytics,
//! webhooks, replicas). Readers register under a name and record how far they got; entries
//! that every registered reader has passed, and that are older than the retention window, are
//! trimmed by the writer.

use crate::envelope::Record;
use crate::ids::{BucketId, Lsn, TenantId};
use serde::{Deserialize, Serialize};

/// Upper bound on entries returned by one [`crate::Storage::changes`] call.
pub const CHANGES_PAGE_MAX: usize = 4096;
/// Upper bound on entries deleted by one trim pass (bounds the extra work in a batch).
pub const TRIM_ENTRIES_MAX: usize = 4096;
/// Upper bound on registered change-log readers per shard.
pub const READERS_MAX: usize = 64;
/// Upper bound on a change-log reader's name.
pub const READER_NAME_BYTES_MAX: usize = 64;

/// One change-log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEntry {
    pub lsn: Lsn,
    pub kind: ChangeKind,
    /// Every row the entry changed, in key order.
    pub changes: Vec<ChangedRow>,
}

impl Record for ChangeEntry {
    const KIND: u16 = 0xFE01;
    const VERSION: u16 = 1;
}

/// What produced an entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeKind {
    /// A command of the shard's command type, as its envelope bytes.
    Command { tenant: TenantId, command: Vec<u8> },
    /// Rows copied in from another shard while moving a bucket here.
    BucketImport { bucket: BucketId },
    /// Rows removed after a bucket moved away (or a partial copy was abandoned).
    BucketDrop { bucket: BucketId },
}

/// A changed row: which tenant, which logical table, which logical key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedRow {
    pub tenant: TenantId,
    pub table: u16,
    pub key: Vec<u8>,
    pub deleted: bool,
}

/// A page of entries from [`crate::Storage::changes`].
#[derive(Clone, Debug)]
pub struct ChangePage {
    pub entries: Vec<ChangeEntry>,
    /// The shard's last LSN when the page was read.
    pub last_lsn: Lsn,
}
