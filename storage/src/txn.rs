//! Tenant-scoped read and write handles.
//!
//! Architecture invariant: code outside this crate never sees a physical key. It reads and
//! writes through a handle bound to one tenant, and every key the handle builds starts with that
//! tenant's prefix, so no command and no read can reach another tenant's rows.

use crate::blob::BlobHash;
use crate::envelope::{self, Record};
use crate::error::StorageError;
use crate::ids::{Lsn, ShardId, TenantId};
use crate::keys::{self, KEY_BYTES_MAX, KeyCodec, TableDef};
use crate::overlay::OverlayView;
use crate::tables::BLOB_REF_TABLE_ID;
use redb::ReadableTable;
use std::collections::BTreeMap;
use std::ops::Bound;

/// Upper bound on rows returned by one scan.
pub const SCAN_ROWS_MAX: usize = 10_000;

/// A physical key and its stored bytes.
pub type RawRow = (Vec<u8>, Vec<u8>);

/// Raw access to a shard's `data` table, from a read or a write transaction.
pub(crate) trait RawRead {
    fn raw_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;
    /// Rows with `start < key` (or `<=` when `inclusive`) and `key < end`, ascending, at most `limit`.
    fn raw_scan(
        &self,
        start: &[u8],
        inclusive: bool,
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<RawRow>, StorageError>;
    /// Rows with `lower <= key` and `key < upper`, descending, at most `limit`.
    fn raw_scan_desc(
        &self,
        lower: &[u8],
        upper: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<RawRow>, StorageError>;
}

/// A `data` table of either transaction kind, with its shard for error messages.
pub(crate) struct DataTable<'a, T> {
    pub shard: ShardId,
    pub table: &'a T,
}

impl<T: ReadableTable<&'static [u8], &'static [u8]>> RawRead for DataTable<'_, T> {
    fn raw_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let guard = self
            .table
            .get(key)
            .map_err(|e| StorageError::db(self.shard, e))?;
        Ok(guard.map(|g| g.value().to_vec()))
    }

    fn raw_scan(
        &self,
        start: &[u8],
        inclusive: bool,
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<RawRow>, StorageError> {
        let (lower, upper) = bounds(start, inclusive, end);
        let iter = self
            .table
            .range::<&[u8]>((lower, upper))
            .map_err(|e| StorageError::db(self.shard, e))?;
        self.collect(iter, limit)
    }

    fn raw_scan_desc(
        &self,
        lower: &[u8],
        upper: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<RawRow>, StorageError> {
        let (lower, upper) = bounds(lower, true, upper);
        let iter = self
            .table
            .range::<&[u8]>((lower, upper))
            .map_err(|e| StorageError::db(self.shard, e))?;
        self.collect(iter.rev(), limit)
    }
}

impl<T> DataTable<'_, T> {
    /// The first `limit` rows of a range, copied out of redb's guards.
    fn collect<'g>(
        &self,
        rows: impl Iterator<
            Item = Result<
                (
                    redb::AccessGuard<'g, &'static [u8]>,
                    redb::AccessGuard<'g, &'static [u8]>,
                ),
                redb::StorageError,
            >,
        >,
        limit: usize,
    ) -> Result<Vec<RawRow>, StorageError> {
        let mut out = Vec::new();
        for row in rows.take(limit) {
            let (k, v) = row.map_err(|e| StorageError::db(self.shard, e))?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }
}

/// One decoded row of a scan.
pub type Row<K, V> = (K, V);

/// Typed, tenant-scoped reads, shared by [`TenantRead`] and [`TenantWrite`].
pub trait TenantReads {
    #[doc(hidden)]
    fn raw(&self) -> &dyn RawScoped;

    /// The tenant this handle is bound to.
    fn tenant(&self) -> TenantId {
        self.raw().scope_tenant()
    }

    /// Reads one row.
    fn get<K: KeyCodec, V: Record>(
        &self,
        table: &TableDef<K, V>,
        key: &K,
    ) -> Result<Option<V>, StorageError> {
        let physical = physical_key(self.tenant(), table.id, key)?;
        match self.raw().scoped_get(&physical)? {
            Some(bytes) => Ok(Some(envelope::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// How many references this tenant holds on a blob (0: none, and the tenant may not read it).
    fn blob_ref_count(&self, hash: &BlobHash) -> Result<u64, StorageError> {
        let key = physical_key(self.tenant(), BLOB_REF_TABLE_ID, hash.as_bytes())?;
        match self.raw().scoped_get(&key)? {
            Some(bytes) => decode_count(&bytes),
            None => Ok(0),
        }
    }

    /// Reads rows whose key starts with `prefix` (an encoded leading part of the key, e.g. the
    /// first element of a tuple key, or `&()` for the whole table), strictly after `after`,
    /// ascending, at most `limit` (capped at [`SCAN_ROWS_MAX`]).
    fn scan<K: KeyCodec, V: Record, P: KeyCodec>(
        &self,
        table: &TableDef<K, V>,
        prefix: &P,
        after: Option<&K>,
        limit: usize,
    ) -> Result<Vec<Row<K, V>>, StorageError> {
        let tenant = self.tenant();
        let start_prefix = physical_key(tenant, table.id, prefix)?;
        let end = keys::prefix_successor(&start_prefix);
        let (start, inclusive) = match after {
            Some(after) => (physical_key(tenant, table.id, after)?, false),
            None => (start_prefix.clone(), true),
        };
        let rows =
            self.raw()
                .scoped_scan(&start, inclusive, end.as_deref(), limit.min(SCAN_ROWS_MAX))?;
        decode_rows(rows)
    }

    /// Like [`TenantReads::scan`], but descending: rows whose key starts with `prefix`,
    /// strictly before `before` (which must start with `prefix` too), newest key first, at
    /// most `limit` (capped at [`SCAN_ROWS_MAX`]).
    fn scan_desc<K: KeyCodec, V: Record, P: KeyCodec>(
        &self,
        table: &TableDef<K, V>,
        prefix: &P,
        before: Option<&K>,
        limit: usize,
    ) -> Result<Vec<Row<K, V>>, StorageError> {
        let tenant = self.tenant();
        let lower = physical_key(tenant, table.id, prefix)?;
        let upper = match before {
            Some(before) => Some(physical_key(tenant, table.id, before)?),
            None => keys::prefix_successor(&lower),
        };
        let rows =
            self.raw()
                .scoped_scan_desc(&lower, upper.as_deref(), limit.min(SCAN_ROWS_MAX))?;
        decode_rows(rows)
    }
}

/// Decodes scanned rows: the logical key after the table prefix, and the record.
fn decode_rows<K: KeyCodec, V: Record>(rows: Vec<RawRow>) -> Result<Vec<Row<K, V>>, StorageError> {
    let skip = keys::TABLE_PREFIX_LEN;
    rows.into_iter()
        .map(|(k, v)| {
            Ok((
                keys::decode_exact::<K>(&k[skip..])?,
                envelope::decode::<V>(&v)?,
            ))
        })
        .collect()
}

/// Object-safe raw access used by [`TenantReads`]; not for use outside the crate.
#[doc(hidden)]
pub trait RawScoped {
    fn scope_tenant(&self) -> TenantId;
    fn scoped_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;
    fn scoped_scan(
        &self,
        start: &[u8],
        inclusive: bool,
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<RawRow>, StorageError>;
    fn scoped_scan_desc(
        &self,
        lower: &[u8],
        upper: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<RawRow>, StorageError>;
}

pub(crate) fn physical_key<K: KeyCodec>(
    tenant: TenantId,
    table: u16,
    key: &K,
) -> Result<Vec<u8>, StorageError> {
    let mut out = keys::table_prefix(tenant, table);
    key.encode_key(&mut out);
    let len = out.len() - keys::TABLE_PREFIX_LEN;
    if len > KEY_BYTES_MAX {
        return Err(StorageError::KeyTooLong {
            len,
            max: KEY_BYTES_MAX,
        });
    }
    Ok(out)
}

/// A consistent read snapshot of one tenant's data. Never waits for writers.
pub struct TenantRead {
    pub(crate) tenant: TenantId,
    pub(crate) shard: ShardId,
    pub(crate) table: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    /// Acknowledged batches the redb snapshot does not hold yet (`overlay.rs`).
    pub(crate) overlay: OverlayView,
    pub(crate) lsn: Lsn,
}

impl TenantRead {
    /// The shard's last LSN as of this snapshot: every change up to it is visible.
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }

    fn source(&self) -> DataTable<'_, redb::ReadOnlyTable<&'static [u8], &'static [u8]>> {
        DataTable {
            shard: self.shard,
            table: &self.table,
        }
    }
}

impl RawScoped for TenantRead {
    fn scope_tenant(&self) -> TenantId {
        self.tenant
    }
    fn scoped_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        match self.overlay.get(key) {
            Some(value) => Ok(value.cloned()),
            None => self.source().raw_get(key),
        }
    }
    fn scoped_scan(
        &self,
        start: &[u8],
        inclusive: bool,
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<RawRow>, StorageError> {
        if self.overlay.is_empty() {
            return self.source().raw_scan(start, inclusive, end, limit);
        }
        let (lower, upper) = bounds(start, inclusive, end);
        let overlay = self.overlay.range(lower, upper);
        merge_scan(
            overlay.into_iter(),
            &self.source(),
            start,
            inclusive,
            end,
            limit,
        )
    }
    fn scoped_scan_desc(
        &self,
        lower: &[u8],
        upper: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<RawRow>, StorageError> {
        if self.overlay.is_empty() {
            return self.source().raw_scan_desc(lower, upper, limit);
        }
        let (low, high) = bounds(lower, true, upper);
        let overlay = self.overlay.range(low, high);
        merge_scan_desc(
            overlay.into_iter().rev(),
            &self.source(),
            lower,
            upper,
            limit,
        )
    }
}

impl TenantReads for TenantRead {
    fn raw(&self) -> &dyn RawScoped {
        self
    }
}

/// The handle a command writes through. Writes go to an overlay that the writer applies to the
/// shard only if the command succeeds, so a rejected command leaves no trace in the batch.
pub struct TenantWrite<'a> {
    tenant: TenantId,
    source: &'a dyn RawRead,
    overlay: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<'a> TenantWrite<'a> {
    pub(crate) fn new(tenant: TenantId, source: &'a dyn RawRead) -> Self {
        TenantWrite {
            tenant,
            source,
            overlay: BTreeMap::new(),
        }
    }

    /// Writes a row (insert or replace).
    pub fn put<K: KeyCodec, V: Record>(
        &mut self,
        table: &TableDef<K, V>,
        key: &K,
        value: &V,
    ) -> Result<(), StorageError> {
        let physical = physical_key(self.tenant, table.id, key)?;
        self.overlay.insert(physical, Some(envelope::encode(value)));
        Ok(())
    }

    /// Deletes a row; deleting a missing row is not an error.
    pub fn delete<K: KeyCodec, V: Record>(
        &mut self,
        table: &TableDef<K, V>,
        key: &K,
    ) -> Result<(), StorageError> {
        let physical = physical_key(self.tenant, table.id, key)?;
        self.overlay.insert(physical, None);
        Ok(())
    }

    /// Adds one reference from this tenant to a blob. The blob must have been written with
    /// `Storage::put_blob` within the garbage-collection grace period, or be referenced already
    /// (by any tenant): otherwise the collector may have removed its file.
    pub fn blob_ref_add(&mut self, hash: &BlobHash) -> Result<u64, StorageError> {
        self.blob_ref_adjust(hash, 1)
    }

    /// Drops one reference; at zero the row disappears and the blob becomes collectable.
    pub fn blob_ref_remove(&mut self, hash: &BlobHash) -> Result<u64, StorageError> {
        self.blob_ref_adjust(hash, -1)
    }

    fn blob_ref_adjust(&mut self, hash: &BlobHash, delta: i64) -> Result<u64, StorageError> {
        let key = physical_key(self.tenant, BLOB_REF_TABLE_ID, hash.as_bytes())?;
        let current = match self.scoped_get(&key)? {
            Some(bytes) => decode_count(&bytes)?,
            None => 0,
        };
        let next = current.saturating_add_signed(delta);
        self.overlay.insert(
            key,
            if next == 0 {
                None
            } else {
                Some(next.to_le_bytes().to_vec())
            },
        );
        Ok(next)
    }

    /// The rows this command changed, in key order; consumed by the writer.
    pub(crate) fn into_overlay(self) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        self.overlay
    }
}

pub(crate) fn decode_count(bytes: &[u8]) -> Result<u64, StorageError> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| {
        StorageError::Key(crate::keys::KeyError("blob reference count is not 8 bytes"))
    })?;
    Ok(u64::from_le_bytes(array))
}

impl RawScoped for TenantWrite<'_> {
    fn scope_tenant(&self) -> TenantId {
        self.tenant
    }

    fn scoped_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        match self.overlay.get(key) {
            Some(value) => Ok(value.clone()),
            None => self.source.raw_get(key),
        }
    }

    /// Merges the overlay with the shard's rows.
    fn scoped_scan(
        &self,
        start: &[u8],
        inclusive: bool,
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<RawRow>, StorageError> {
        let (lower, upper) = bounds(start, inclusive, end);
        let overlay = self
            .overlay
            .range::<[u8], _>((lower, upper))
            .map(|(k, v)| (k.as_slice(), v.as_ref()));
        merge_scan(overlay, self.source, start, inclusive, end, limit)
    }

    fn scoped_scan_desc(
        &self,
        lower: &[u8],
        upper: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<RawRow>, StorageError> {
        let (low, high) = bounds(lower, true, upper);
        let overlay = self
            .overlay
            .range::<[u8], _>((low, high))
            .rev()
            .map(|(k, v)| (k.as_slice(), v.as_ref()));
        merge_scan_desc(overlay, self.source, lower, upper, limit)
    }
}

fn bounds<'k>(
    start: &'k [u8],
    inclusive: bool,
    end: Option<&'k [u8]>,
) -> (Bound<&'k [u8]>, Bound<&'k [u8]>) {
    let lower = if inclusive {
        Bound::Included(start)
    } else {
        Bound::Excluded(start)
    };
    let upper = match end {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    };
    (lower, upper)
}

/// A scan of `source` with newer rows laid over it: `overlay` holds the newer rows of the
/// range (ascending, one per key; `None` deletes).
fn merge_scan<'o>(
    overlay: impl Iterator<Item = (&'o [u8], Option<&'o Vec<u8>>)>,
    source: &dyn RawRead,
    start: &[u8],
    inclusive: bool,
    end: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<RawRow>, StorageError> {
    merge_rows(overlay, false, limit, |wanted| {
        source.raw_scan(start, inclusive, end, wanted)
    })
}

/// [`merge_scan`] in descending order: `overlay` comes newest key first, and so do the rows.
fn merge_scan_desc<'o>(
    overlay: impl Iterator<Item = (&'o [u8], Option<&'o Vec<u8>>)>,
    source: &dyn RawRead,
    lower: &[u8],
    upper: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<RawRow>, StorageError> {
    merge_rows(overlay, true, limit, |wanted| {
        source.raw_scan_desc(lower, upper, wanted)
    })
}

/// Lays `overlay` (in scan order, one row per key; `None` deletes) over the rows `scan` reads
/// from the source (in the same order, at most the count it is given), and keeps the first
/// `limit` in that order.
fn merge_rows<'o>(
    overlay: impl Iterator<Item = (&'o [u8], Option<&'o Vec<u8>>)>,
    descending: bool,
    limit: usize,
    scan: impl FnOnce(usize) -> Result<Vec<RawRow>, StorageError>,
) -> Result<Vec<RawRow>, StorageError> {
    let overlay: Vec<(&[u8], Option<&Vec<u8>>)> = overlay.collect();
    if overlay.is_empty() {
        return scan(limit);
    }
    // Deleted rows in the overlay can hide rows of the source: fetch enough to fill `limit`.
    let deleted = overlay.iter().filter(|(_, v)| v.is_none()).count();
    let wanted = limit.saturating_add(deleted);
    let base = scan(wanted)?;
    // When the source was cut short, rows past its last key (in scan order) are unknown:
    // overlay rows there must not jump ahead of source rows that were not fetched.
    let horizon = if base.len() == wanted {
        base.last().map(|(k, _)| k.clone())
    } else {
        None
    };
    let past_horizon = |k: &[u8], h: &[u8]| if descending { k < h } else { k > h };
    let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = base.into_iter().collect();
    for (k, v) in overlay {
        if horizon.as_deref().is_some_and(|h| past_horizon(k, h)) {
            break;
        }
        match v {
            Some(v) => merged.insert(k.to_vec(), v.clone()),
            None => merged.remove(k),
        };
    }
    Ok(if descending {
        merged.into_iter().rev().take(limit).collect()
    } else {
        merged.into_iter().take(limit).collect()
    })
}

impl TenantReads for TenantWrite<'_> {
    fn raw(&self) -> &dyn RawScoped {
        self
    }
}
