//! Mercato's storage engine: tenant-sharded records on redb.
//!
//! A data directory holds `meta.redb` (identity, shard list, bucket map) and, per shard, one
//! redb file and one write-ahead log. A tenant's bucket (`stable_hash(tenant) % 4096`) decides its shard, so all of a
//! tenant's data is in one file and any change inside one tenant is one atomic transaction.
//!
//! Writes are [`Command`]s: deterministic changes to one tenant, applied by the shard's single
//! writer thread in group-commit batches, each appending a [`ChangeEntry`] to the shard's
//! change log in the same transaction. A batch is durable once its commands are synced to the
//! shard's write-ahead log; its redb commit skips the sync, and periodic checkpoints make the
//! redb file durable (see `docs/storage-format.md`). Reads are redb snapshots that never wait for writers.
//!
//! ```no_run
//! use mercato_storage::*;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Note { text: String }
//! impl Record for Note { const KIND: u16 = 1; const VERSION: u16 = 1; }
//! const NOTES: TableDef<u64, Note> = TableDef::new(1, "notes");
//!
//! #[derive(Serialize, Deserialize)]
//! struct AddNote { tenant: TenantId, id: u64, text: String }
//! impl Record for AddNote { const KIND: u16 = 2; const VERSION: u16 = 1; }
//! impl Command for AddNote {
//!     type Output = ();
//!     type Rejection = String;
//!     fn tenant(&self) -> TenantId { self.tenant }
//!     fn apply(&self, tx: &mut TenantWrite<'_>) -> Result<(), ApplyError<String>> {
//!         if self.text.is_empty() { return Err(ApplyError::Rejected("empty note".into())); }
//!         Ok(tx.put(&NOTES, &self.id, &Note { text: self.text.clone() })?)
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let storage: Storage<AddNote> = Storage::open(StorageConfig::new("/tmp/mercato-example"))?;
//! let tenant = TenantId(7);
//! storage.execute_blocking(AddNote { tenant, id: 1, text: "hello".into() }).map_err(|e| format!("{e}"))?;
//! let note = storage.read(tenant)?.get(&NOTES, &1)?;
//! assert_eq!(note.map(|n| n.text).as_deref(), Some("hello"));
//! # Ok(()) }
//! ```

pub mod blob;
pub mod changelog;
mod command;
mod crc32c;
pub mod envelope;
mod error;
mod fault;
mod ids;
pub mod keys;
mod overlay;
mod reply;
mod reshard;
mod shard;
mod storage;
pub mod tables;
mod txn;
mod verify;
mod wal;
mod write_behind;

pub use blob::{BlobHash, BlobPut};
pub use changelog::{ChangeEntry, ChangeKind, ChangePage, ChangedRow};
pub use command::Command;
pub use envelope::{EnvelopeError, Record};
pub use error::{ApplyError, ExecuteError, OpenError, StorageError};
pub use fault::FaultInjector;
pub use ids::{BUCKET_COUNT, BucketId, Lsn, SHARD_COUNT_MAX, ShardId, TenantId, stable_hash};
pub use keys::{KeyCodec, TableDef};
pub use reshard::MoveReport;
pub use storage::{
    BlobGcReport, CHECKPOINT_INTERVAL_DEFAULT, CHECKPOINT_INTERVAL_MAX, CHECKPOINT_INTERVAL_MIN,
    CHECKPOINT_WAL_BYTES_DEFAULT, CHECKPOINT_WAL_BYTES_MAX, CHECKPOINT_WAL_BYTES_MIN, Storage,
    StorageConfig,
};
pub use txn::{SCAN_ROWS_MAX, TenantRead, TenantReads, TenantWrite};
pub use verify::{IntegrityReport, verify_data_dir};
/// The write-ahead log's layout facts that tests and tools check files against.
pub mod wal_layout {
    pub use crate::wal::{FILE_HEADER_LEN, ZERO_FILL_BYTES_MAX, ZERO_FILL_BYTES_MIN};
}
