//! A small key-value command set used to drive the engine in tests.

use mercato_storage::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter(pub u64);
impl Record for Counter {
    const KIND: u16 = 100;
    const VERSION: u16 = 1;
}

pub const COUNTERS: TableDef<u64, Counter> = TableDef::new(1, "counters");

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Kv {
    Put {
        tenant: u64,
        key: u64,
        value: u64,
    },
    Delete {
        tenant: u64,
        key: u64,
    },
    /// Rejected when the key exists.
    Insert {
        tenant: u64,
        key: u64,
        value: u64,
    },
    /// Moves `amount` between two keys of one tenant; rejected when `from` has too little.
    /// Writes two rows, so a rejection proves partial writes are discarded.
    Transfer {
        tenant: u64,
        from: u64,
        to: u64,
        amount: u64,
    },
    BlobRef {
        tenant: u64,
        hash: [u8; 32],
        add: bool,
    },
    /// Writes a row, then panics: stands for a bug in a command.
    Panic {
        tenant: u64,
    },
    /// Puts keys `from..to`, deletes every `delete_every`-th of them, then checks inside the
    /// command (where the writes are still in its overlay) that a descending scan in pages of
    /// `page` rows is the ascending scan reversed; rejected with `Mismatch` otherwise.
    ScanDescAfterWrites {
        tenant: u64,
        from: u64,
        to: u64,
        delete_every: u64,
        page: usize,
    },
}

impl Record for Kv {
    const KIND: u16 = 101;
    const VERSION: u16 = 1;
}

#[derive(Debug, PartialEq, Eq)]
pub enum KvRejection {
    Exists,
    Insufficient,
    /// The descending scan disagreed with the ascending one.
    Mismatch,
}

impl Command for Kv {
    type Output = ();
    type Rejection = KvRejection;

    fn tenant(&self) -> TenantId {
        match *self {
            Kv::Put { tenant, .. }
            | Kv::Delete { tenant, .. }
            | Kv::Insert { tenant, .. }
            | Kv::Transfer { tenant, .. }
            | Kv::BlobRef { tenant, .. }
            | Kv::Panic { tenant }
            | Kv::ScanDescAfterWrites { tenant, .. } => TenantId(tenant),
        }
    }

    fn apply(&self, tx: &mut TenantWrite<'_>) -> Result<(), ApplyError<KvRejection>> {
        match *self {
            Kv::Put { key, value, .. } => tx.put(&COUNTERS, &key, &Counter(value))?,
            Kv::Delete { key, .. } => tx.delete(&COUNTERS, &key)?,
            Kv::Insert { key, value, .. } => {
                if tx.get(&COUNTERS, &key)?.is_some() {
                    return Err(ApplyError::Rejected(KvRejection::Exists));
                }
                tx.put(&COUNTERS, &key, &Counter(value))?;
            }
            Kv::Transfer {
                from, to, amount, ..
            } => {
                let to_balance = tx.get(&COUNTERS, &to)?.map_or(0, |c| c.0);
                // Write first, check after: a rejection must discard this write.
                tx.put(&COUNTERS, &to, &Counter(to_balance + amount))?;
                let from_balance = tx.get(&COUNTERS, &from)?.map_or(0, |c| c.0);
                if from_balance < amount {
                    return Err(ApplyError::Rejected(KvRejection::Insufficient));
                }
                tx.put(&COUNTERS, &from, &Counter(from_balance - amount))?;
            }
            Kv::BlobRef { hash, add, .. } => {
                let hash = BlobHash::from_bytes(hash);
                if add {
                    tx.blob_ref_add(&hash)?;
                } else {
                    tx.blob_ref_remove(&hash)?;
                }
            }
            Kv::Panic { .. } => {
                tx.put(&COUNTERS, &u64::MAX, &Counter(1))?;
                panic!("a bug in a command");
            }
            Kv::ScanDescAfterWrites {
                from,
                to,
                delete_every,
                page,
                ..
            } => {
                for key in from..to {
                    tx.put(&COUNTERS, &key, &Counter(key))?;
                }
                for key in (from..to).step_by(usize::try_from(delete_every.max(1)).unwrap_or(1)) {
                    tx.delete(&COUNTERS, &key)?;
                }
                let mut ascending = Vec::new();
                let mut after = None;
                loop {
                    let rows = tx.scan(&COUNTERS, &(), after.as_ref(), 1000)?;
                    let Some(last) = rows.last() else { break };
                    after = Some(last.0);
                    ascending.extend(rows.into_iter().map(|(k, _)| k));
                }
                let mut descending = Vec::new();
                let mut before = None;
                loop {
                    let rows = tx.scan_desc(&COUNTERS, &(), before.as_ref(), page)?;
                    let Some(last) = rows.last() else { break };
                    before = Some(last.0);
                    descending.extend(rows.into_iter().map(|(k, _)| k));
                }
                ascending.reverse();
                if ascending != descending {
                    return Err(ApplyError::Rejected(KvRejection::Mismatch));
                }
            }
        }
        Ok(())
    }
}

pub fn config(dir: &Path) -> StorageConfig {
    let mut config = StorageConfig::new(dir);
    config.cache_bytes_per_shard = 4 << 20;
    config
}

pub fn open(dir: &Path) -> Storage<Kv> {
    Storage::open(config(dir)).expect("open storage")
}

pub fn get(storage: &Storage<Kv>, tenant: u64, key: u64) -> Option<u64> {
    storage
        .read(TenantId(tenant))
        .expect("read")
        .get(&COUNTERS, &key)
        .expect("get")
        .map(|c| c.0)
}

/// Every counter of a tenant.
pub fn all(storage: &Storage<Kv>, tenant: u64) -> Vec<(u64, u64)> {
    let read = storage.read(TenantId(tenant)).expect("read");
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let rows = read
            .scan(&COUNTERS, &(), after.as_ref(), 1000)
            .expect("scan");
        let Some(last) = rows.last() else { return out };
        after = Some(last.0);
        out.extend(rows.into_iter().map(|(k, v)| (k, v.0)));
    }
}

/// Tenants whose bucket is `bucket`, the first `n` found counting up from `start`.
pub fn tenants_in_bucket(bucket: BucketId, start: u64, n: usize) -> Vec<u64> {
    (start..)
        .filter(|t| TenantId(*t).bucket() == bucket)
        .take(n)
        .collect()
}
