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
    Command {
        tenant: TenantId,
        #[serde(with = "crate::envelope::byte_string")]
        command: Vec<u8>,
    },
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
    #[serde(with = "crate::envelope::byte_string")]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope;

    /// The entry as it was declared before its byte fields were written as byte strings.
    #[derive(Serialize, Deserialize)]
    struct EntryWithSequences {
        lsn: Lsn,
        kind: KindWithSequences,
        changes: Vec<RowWithSequences>,
    }
    #[derive(Serialize, Deserialize)]
    enum KindWithSequences {
        Command { tenant: TenantId, command: Vec<u8> },
    }
    #[derive(Serialize, Deserialize)]
    struct RowWithSequences {
        tenant: TenantId,
        table: u16,
        key: Vec<u8>,
        deleted: bool,
    }
    impl Record for EntryWithSequences {
        const KIND: u16 = ChangeEntry::KIND;
        const VERSION: u16 = ChangeEntry::VERSION;
    }

    #[test]
    fn byte_fields_are_encoded_as_before() {
        let command: Vec<u8> = (0..=255).collect();
        let key = vec![0, 1, 2, 250];
        let old = EntryWithSequences {
            lsn: 77,
            kind: KindWithSequences::Command {
                tenant: TenantId(9),
                command: command.clone(),
            },
            changes: vec![RowWithSequences {
                tenant: TenantId(9),
                table: 3,
                key: key.clone(),
                deleted: false,
            }],
        };
        let new = ChangeEntry {
            lsn: 77,
            kind: ChangeKind::Command {
                tenant: TenantId(9),
                command,
            },
            changes: vec![ChangedRow {
                tenant: TenantId(9),
                table: 3,
                key,
                deleted: false,
            }],
        };
        let bytes = envelope::encode(&old);
        assert_eq!(envelope::encode(&new), bytes);
        assert_eq!(envelope::decode::<ChangeEntry>(&bytes).unwrap(), new);
    }
}
