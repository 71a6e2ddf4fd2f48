//! Every redb table of the storage engine, in one place.
//!
//! `meta.redb` holds the data directory's identity, the shard list and the bucket map.
//! Each `shards/NNNN.redb` holds the tenant data of its buckets, its change log and its
//! bookkeeping. The byte layouts are described in `docs/storage-format.md`.

use redb::TableDefinition;

// ---- meta.redb ----

/// Settings and identity: `format_version`, `data_dir_id`, `bucket_count`, `bucket_move`.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Shard id -> shard record (envelope).
pub const SHARDS: TableDefinition<u16, &[u8]> = TableDefinition::new("shards");
/// Bucket -> shard id.
pub const BUCKET_MAP: TableDefinition<u16, u16> = TableDefinition::new("bucket_map");

// ---- shards/NNNN.redb ----

/// Tenant data: physical key (see `keys.rs`) -> record envelope.
pub const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("data");
/// Change log: LSN -> change-log entry envelope.
pub const CHANGELOG: TableDefinition<u64, &[u8]> = TableDefinition::new("changelog");
/// Shard bookkeeping: `format_version`, `data_dir_id`, `shard_id`, `last_lsn`, `probe`.
pub const SHARD_META: TableDefinition<&str, &[u8]> = TableDefinition::new("shard_meta");
/// Registered change-log readers: name -> last LSN the reader has processed.
pub const READERS: TableDefinition<&str, u64> = TableDefinition::new("changelog_readers");
/// Blob SHA-256 -> total references from every tenant of the shard (derived from the per-tenant
/// reference rows in `DATA`, maintained in the same transaction).
pub const BLOB_TOTALS: TableDefinition<&[u8], u64> = TableDefinition::new("blob_totals");

// Keys of META.
pub const META_FORMAT_VERSION: &str = "format_version";
pub const META_DATA_DIR_ID: &str = "data_dir_id";
pub const META_BUCKET_COUNT: &str = "bucket_count";
pub const META_BUCKET_MOVE: &str = "bucket_move";

// Keys of SHARD_META.
pub const SHARD_FORMAT_VERSION: &str = "format_version";
pub const SHARD_DATA_DIR_ID: &str = "data_dir_id";
pub const SHARD_ID: &str = "shard_id";
pub const SHARD_LAST_LSN: &str = "last_lsn";
pub const SHARD_FIRST_LSN: &str = "first_lsn";
pub const SHARD_PROBE: &str = "probe";

/// Logical table id (inside `DATA`) of per-tenant blob references: key = SHA-256, value = count.
pub const BLOB_REF_TABLE_ID: u16 = 0xFF01;

/// On-disk format version of `meta.redb` and of each shard file. Version 2 added the per-shard
/// write-ahead log (`shards/NNNN.wal`), version 3 its second file (`shards/NNNN-1.wal`); older
/// directories are upgraded at open.
pub const FORMAT_VERSION: u32 = 3;
/// The oldest format version this build opens.
pub const FORMAT_VERSION_OLDEST: u32 = 1;
