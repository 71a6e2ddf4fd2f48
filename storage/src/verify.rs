//! Offline integrity check of a data directory (the process must not have it open).
//!
//! Runs redb's own page-level check on every file, then the engine's invariants: the change log
//! is contiguous between the recorded first and last LSN and every entry decodes under its key;
//! every data key is a well-formed physical key whose bucket the bucket map sends to this shard;
//! every record decodes as an envelope; the blob totals equal the sum of the per-tenant
//! reference rows. The shard's write-ahead log must belong to the shard, every whole record
//! must pass its checksums, LSNs must be consecutive, and the records above the redb file's
//! durable `last_lsn` must continue it without a gap (they are what the next open replays). A
//! torn last record (the trace of a crash during an append) is reported, not a problem.

use crate::changelog::ChangeEntry;
use crate::envelope;
use crate::error::OpenError;
use crate::ids::ShardId;
use crate::keys::split_physical;
use crate::storage::{load_meta_from, open_redb_at, read_lsn, shard_path};
use crate::tables::{
    BLOB_REF_TABLE_ID, BLOB_TOTALS, CHANGELOG, DATA, FORMAT_VERSION, SHARD_FORMAT_VERSION,
    SHARD_META,
};
use crate::txn::decode_count;
use crate::wal::{self, LOGS_PER_SHARD, WalError, wal_path};
use redb::{ReadableDatabase, ReadableTable};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

/// What [`verify_data_dir`] found.
#[derive(Debug, Default, Clone)]
pub struct IntegrityReport {
    pub shards: usize,
    pub rows: u64,
    pub changelog_entries: u64,
    /// Records in the shards' write-ahead logs above the redb files' durable state (0 after a
    /// clean close).
    pub wal_records: u64,
    /// Commands in the logs above the redb files' durable state: the next open applies them
    /// again (0 after a clean close).
    pub wal_commands_pending: u64,
    /// Bytes after the last record of the logs (the zeros a log grows by, records from before
    /// the last checkpoint, or a record cut by a crash, never acknowledged); the next records
    /// overwrite them.
    pub wal_tail_bytes: u64,
    /// Every violated invariant, in words. Empty means the directory is consistent.
    pub problems: Vec<String>,
}

impl IntegrityReport {
    pub fn is_consistent(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks a closed data directory.
pub fn verify_data_dir(dir: &Path) -> Result<IntegrityReport, OpenError> {
    let lock_path = dir.join("LOCK");
    let lock = File::options()
        .write(true)
        .open(&lock_path)
        .map_err(|source| OpenError::Io {
            path: lock_path.clone(),
            source,
        })?;
    if lock.try_lock().is_err() {
        return Err(OpenError::Locked {
            path: dir.to_path_buf(),
            lock: lock_path,
        });
    }
    let meta_path = dir.join("meta.redb");
    let meta = open_redb_at(&meta_path)?;
    let (data_dir_id, shard_ids, buckets, _pending) = load_meta_from(&meta, &meta_path)?;
    let mut report = IntegrityReport {
        shards: shard_ids.len(),
        ..Default::default()
    };
    for id in shard_ids {
        let path = shard_path(dir, id);
        let mut db = open_redb_at(&path)?;
        match db.check_integrity() {
            Ok(true) => {}
            Ok(false) => report
                .problems
                .push(format!("shard {id}: redb repaired the file on open")),
            Err(e) => report
                .problems
                .push(format!("shard {id}: redb integrity check failed: {e}")),
        }
        if let Err(e) = check_shard(&db, id, &buckets, &mut report) {
            report.problems.push(format!("shard {id}: {e}"));
        }
        if let Err(e) = check_wal(dir, &db, id, data_dir_id, &mut report) {
            report.problems.push(format!("shard {id}: {e}"));
        }
    }
    Ok(report)
}

fn check_shard(
    db: &redb::Database,
    id: ShardId,
    buckets: &[ShardId],
    report: &mut IntegrityReport,
) -> Result<(), Box<dyn std::error::Error>> {
    let txn = db.begin_read()?;
    let (last, first) = read_lsn(&txn, id)?;
    let log = txn.open_table(CHANGELOG)?;
    let mut expected = first;
    for row in log.iter()? {
        let (k, v) = row?;
        let lsn = k.value();
        if lsn != expected {
            report.problems.push(format!(
                "shard {id}: change log has LSN {lsn} where {expected} was expected"
            ));
            expected = lsn;
        }
        match envelope::decode::<ChangeEntry>(v.value()) {
            Ok(entry) if entry.lsn == lsn => {}
            Ok(entry) => report
                .problems
                .push(format!("shard {id}: entry under {lsn} says {}", entry.lsn)),
            Err(e) => report
                .problems
                .push(format!("shard {id}: entry {lsn} does not decode: {e}")),
        }
        expected += 1;
        report.changelog_entries += 1;
    }
    if expected != last + 1 {
        report.problems.push(format!(
            "shard {id}: change log ends at {} but last_lsn is {last}",
            expected - 1
        ));
    }
    let data = txn.open_table(DATA)?;
    let mut ref_totals: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    for row in data.iter()? {
        let (k, v) = row?;
        report.rows += 1;
        let parts = match split_physical(k.value()) {
            Ok(p) => p,
            Err(e) => {
                report
                    .problems
                    .push(format!("shard {id}: malformed key {:02x?}: {e}", k.value()));
                continue;
            }
        };
        if parts.tenant.bucket() != parts.bucket {
            report.problems.push(format!(
                "shard {id}: tenant {} stored under bucket {}",
                parts.tenant, parts.bucket
            ));
        }
        if buckets.get(usize::from(parts.bucket.0)) != Some(&id) {
            report.problems.push(format!(
                "shard {id}: holds a row of bucket {} which is mapped elsewhere",
                parts.bucket
            ));
        }
        if parts.table == BLOB_REF_TABLE_ID {
            *ref_totals.entry(parts.key.to_vec()).or_default() += decode_count(v.value())?;
        } else if let Err(e) = envelope::peek(v.value()) {
            report.problems.push(format!(
                "shard {id}: record under {:02x?} is not an envelope: {e}",
                k.value()
            ));
        }
    }
    let totals = txn.open_table(BLOB_TOTALS)?;
    let mut stored: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    for row in totals.iter()? {
        let (k, v) = row?;
        stored.insert(k.value().to_vec(), v.value());
    }
    if stored != ref_totals {
        report.problems.push(format!(
            "shard {id}: blob totals disagree with the reference rows"
        ));
    }
    Ok(())
}

fn check_wal(
    dir: &Path,
    db: &redb::Database,
    id: ShardId,
    data_dir_id: u128,
    report: &mut IntegrityReport,
) -> Result<(), Box<dyn std::error::Error>> {
    let txn = db.begin_read()?;
    let (last, _) = read_lsn(&txn, id)?;
    let version = match txn.open_table(SHARD_META)?.get(SHARD_FORMAT_VERSION)? {
        Some(v) => u32::from_le_bytes(v.value().try_into()?),
        None => FORMAT_VERSION,
    };
    drop(txn);
    let mut logs: Vec<(u16, std::path::PathBuf, Vec<u8>)> = Vec::with_capacity(LOGS_PER_SHARD);
    for index in 0..LOGS_PER_SHARD as u16 {
        let path = wal_path(dir, id, index);
        match std::fs::read(&path) {
            Ok(bytes) => logs.push((index, path, bytes)),
            // Format 1 had no log and format 2 one; the next open creates the missing ones.
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && version < FORMAT_VERSION
                    && u32::from(index) + 1 >= version =>
            {
                continue;
            }
            Err(e) => {
                report.problems.push(format!(
                    "shard {id}: write-ahead log {}: {e}",
                    path.display()
                ));
                return Ok(());
            }
        }
    }
    let mut parsed = Vec::with_capacity(logs.len());
    for (index, path, bytes) in &logs {
        match wal::parse(bytes, id, data_dir_id, *index, last) {
            Ok(contents) => {
                report.wal_tail_bytes += contents.tail_bytes;
                parsed.push(contents);
            }
            Err(WalError::Foreign(reason) | WalError::Corrupt(reason)) => {
                report.problems.push(format!(
                    "shard {id}: write-ahead log {}: {reason}",
                    path.display()
                ));
                return Ok(());
            }
        }
    }
    // The records above the durable state, of both logs, must continue it without a gap.
    let pending = match wal::pending_records(&parsed, last) {
        Ok(pending) => pending,
        Err(reason) => {
            report
                .problems
                .push(format!("shard {id}: write-ahead logs: {reason}"));
            return Ok(());
        }
    };
    for record in pending {
        for (i, command) in record.commands.iter().enumerate() {
            if let Err(e) = envelope::peek(command) {
                report.problems.push(format!(
                    "shard {id}: write-ahead log command with LSN {} is not an envelope: {e}",
                    record.first_lsn + i as u64
                ));
            }
        }
        report.wal_records += 1;
        report.wal_commands_pending += record.commands.len() as u64;
    }
    Ok(())
}
