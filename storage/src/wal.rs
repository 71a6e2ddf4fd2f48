//! The per-shard write-ahead log: two files, `shards/NNNN.wal` and `shards/NNNN-1.wal`, next to
//! the shard's redb file.
//!
//! The writer commits each batch to redb without a sync (`Durability::None`), so a commit costs
//! no scattered page writes. What makes a batch durable is one sequential append to this file,
//! holding the batch's accepted commands, and one `fdatasync`, done *before* the redb commit, so
//! nothing a reader can see is ever missing from the log. Periodically the writer makes the redb
//! file durable (a checkpoint) and empties the log. At open, the records above the redb file's
//! durable `last_lsn` are applied again through the same write path.
//!
//! Why two files: a checkpoint's redb commit returns before its sync is done (the sync runs on
//! another thread, `write_behind.rs`), and new batches keep coming meanwhile. The records the
//! checkpoint covers must stay until its sync is done, so at a checkpoint the writer leaves them
//! in the file they are in and appends to the other file, from its start. The other file is free
//! by then: everything in it is covered by the previous checkpoint, whose sync is done (the
//! writer starts no checkpoint before). At open, the records of both files above the durable
//! `last_lsn` are taken together, in LSN order.
//!
//! Emptying the log after a checkpoint only moves the append position back to the start: the
//! file keeps its size and the next records overwrite the old ones. Overwriting blocks that are
//! already allocated makes `fdatasync` cheaper than growing the file (no allocation or size
//! change to write with the record). For the same reason a record that ends past the file's
//! size writes a run of zeros after itself ([`ZERO_FILL_BYTES_MIN`] to
//! [`ZERO_FILL_BYTES_MAX`], about the file's size so far): the next records land in blocks the
//! file already has. On the development VM a sync of an appended record took ~0.30 ms at 64
//! writers and ~0.15 ms once records overwrote zeros (`docs/benchmarks.md`).
//!
//! The log is the chain of records from the start with consecutive LSNs; where the chain
//! stops, what follows (a record cut by a crash, zeros, older records from before the last
//! checkpoint, whose LSNs are lower) is not part of it. Close and open leave the files at their
//! size with only redundant records in them (open cuts a file back to its header only when it
//! grew past what the settings let a log reach).
//!
//! The byte layout (also in `docs/storage-format.md`):
//!
//! ```text
//! file header (36 bytes)
//! 0   8  magic "MERCWAL\0"
//! 8   4  log format version, u32 LE (1)
//! 12  2  shard id, u16 LE
//! 14  2  log index, u16 LE: 0 for NNNN.wal, 1 for NNNN-1.wal (was reserved, 0)
//! 16  16 data directory id, u128 LE
//! 32  4  CRC-32C of bytes 0..32
//!
//! record (one per batch), repeated
//! 0   4  magic "WREC"
//! 4   2  record format version, u16 LE (1)
//! 6   2  reserved, 0
//! 8   8  LSN of the first command, u64 LE
//! 16  4  command count, u32 LE (>= 1)
//! 20  4  body length in bytes, u32 LE
//! 24  4  CRC-32C of the body
//! 28  4  CRC-32C of bytes 0..28 of this header
//! 32  ..  body: per command, its length (u32 LE) and its envelope bytes; command i has LSN
//!         first + i
//! ```

use crate::crc32c::crc32c;
use crate::fault::{FaultInjector, FileOp};
use crate::ids::{Lsn, ShardId};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// First bytes of every write-ahead log file.
pub const FILE_MAGIC: [u8; 8] = *b"MERCWAL\0";
/// Version of the log's byte layout (file header and records).
pub const WAL_FORMAT_VERSION: u32 = 1;
/// Log files per shard.
pub const LOGS_PER_SHARD: usize = 2;
/// Bytes of the file header.
pub const FILE_HEADER_LEN: u64 = 36;
/// First bytes of every record.
pub const RECORD_MAGIC: [u8; 4] = *b"WREC";
/// Version of the record layout.
pub const RECORD_FORMAT_VERSION: u16 = 1;
/// Bytes of a record header.
pub const RECORD_HEADER_LEN: usize = 32;
/// Upper bound on a record's body. A batch is bounded by `batch_bytes_max` (at most 256 MiB)
/// plus one command, so this is never reached by a valid writer; a header claiming more is
/// damaged.
pub const RECORD_BODY_BYTES_MAX: usize = 1 << 30;

const HEADER_LEN: usize = FILE_HEADER_LEN as usize;

/// Smallest and largest run of zeros an append writes past its record when the file must grow.
/// Each growth is a multiple of the page size and about the file's size so far within these
/// bounds, so a fresh log grows in few steps while a test that writes little stays small.
pub const ZERO_FILL_BYTES_MIN: u64 = 64 << 10;
pub const ZERO_FILL_BYTES_MAX: u64 = 1 << 20;

/// Zeros written per `write` call when the file grows.
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

/// The log file a shard's writer appends to.
pub(crate) struct Wal {
    path: PathBuf,
    file: File,
    /// End of the valid content: the header and every whole record, all synced.
    len: u64,
    /// Bytes the file holds. Appends below it overwrite blocks the file already has, so their
    /// `fdatasync` writes the record's pages and no allocation or size change.
    size: u64,
    fault: Option<Arc<FaultInjector>>,
}

/// An append that failed. `rolled_back` says whether the file is back at its length before
/// the append, synced, so that the record can no longer reappear; when it is false the batch
/// may be replayed at the next open.
#[derive(Debug)]
pub(crate) struct AppendError {
    pub source: io::Error,
    pub rolled_back: bool,
}

/// Why a log file cannot be used.
#[derive(Debug)]
pub(crate) enum WalError {
    /// Another shard's or another data directory's log.
    Foreign(String),
    Corrupt(String),
}

/// One record of a log file: the commands of one batch with LSNs `first_lsn..`.
#[derive(Debug)]
pub(crate) struct WalRecord<'a> {
    pub offset: u64,
    pub first_lsn: Lsn,
    pub commands: Vec<&'a [u8]>,
}

impl WalRecord<'_> {
    /// LSN of the record's last command.
    pub fn last_lsn(&self) -> Lsn {
        self.first_lsn + self.commands.len() as u64 - 1
    }
}

/// The parsed contents of a log file.
#[derive(Debug)]
pub(crate) struct WalContents<'a> {
    /// The chain of records from the start of the file, with consecutive LSNs. Those at or
    /// below the redb file's durable LSN are redundant (from before a checkpoint).
    pub records: Vec<WalRecord<'a>>,
    /// End of the chain: the next append goes here.
    pub valid_end: u64,
    /// Bytes after the chain: a record cut by a crash (never acknowledged), or space left from
    /// before the last checkpoint. Discarded at open.
    pub tail_bytes: u64,
}

/// The path of a shard's log `index` (0 or 1).
pub(crate) fn wal_path(dir: &Path, shard: ShardId, index: u16) -> PathBuf {
    let name = match index {
        0 => format!("{shard}.wal"),
        n => format!("{shard}-{n}.wal"),
    };
    dir.join("shards").join(name)
}

fn file_header(shard: ShardId, data_dir_id: u128, index: u16) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&FILE_MAGIC);
    h[8..12].copy_from_slice(&WAL_FORMAT_VERSION.to_le_bytes());
    h[12..14].copy_from_slice(&shard.0.to_le_bytes());
    h[14..16].copy_from_slice(&index.to_le_bytes());
    h[16..32].copy_from_slice(&data_dir_id.to_le_bytes());
    let crc = crc32c(&h[0..32]);
    h[32..36].copy_from_slice(&crc.to_le_bytes());
    h
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// Syncs a directory, so that a file created in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Wal {
    /// Creates (or empties) one of a shard's logs: only the header, synced, with the directory
    /// entry.
    pub(crate) fn create(
        path: &Path,
        shard: ShardId,
        data_dir_id: u128,
        index: u16,
    ) -> io::Result<()> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        file.write_all_at(&file_header(shard, data_dir_id, index), 0)?;
        file.sync_all()?;
        if let Some(parent) = path.parent() {
            sync_dir(parent)?;
        }
        Ok(())
    }

    /// Opens a log for appending after `valid_end` (as found by [`parse`]); anything after it
    /// is overwritten by the next appends.
    pub(crate) fn open(
        path: &Path,
        valid_end: u64,
        fault: Option<Arc<FaultInjector>>,
    ) -> io::Result<Wal> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Wal {
            path: path.to_path_buf(),
            file,
            len: valid_end,
            size,
            fault,
        })
    }

    /// Bytes the file holds (records, older records past them, and zeros).
    pub(crate) fn file_bytes(&self) -> u64 {
        self.size
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of records in the log (0 right after a checkpoint).
    pub(crate) fn record_bytes(&self) -> u64 {
        self.len.saturating_sub(FILE_HEADER_LEN)
    }

    fn check(&self, op: FileOp) -> io::Result<()> {
        match &self.fault {
            Some(fault) => fault.check(op),
            None => Ok(()),
        }
    }

    /// Appends one record and syncs it: when this returns `Ok`, the batch is durable.
    ///
    /// A record that ends past the file's size also writes zeros after itself (see
    /// [`ZERO_FILL_BYTES_MIN`]): the file grows, and pays for block allocation and a size change
    /// in its sync, once per run of zeros instead of once per record.
    pub(crate) fn append(&mut self, record: &mut RecordBuf) -> Result<(), AppendError> {
        let bytes = record.finish();
        let start = self.len;
        let end = start + bytes.len() as u64;
        let grow_to = (end > self.size).then(|| {
            let run = self.size.clamp(ZERO_FILL_BYTES_MIN, ZERO_FILL_BYTES_MAX);
            (end + run).next_multiple_of(ZERO_FILL_BYTES_MIN)
        });
        // An injected write failure happens before the write: nothing reached the file.
        if let Err(source) = self.check(FileOp::Write) {
            return Err(AppendError {
                source,
                rolled_back: true,
            });
        }
        let written = self
            .file
            .write_all_at(bytes, start)
            .and_then(|()| match grow_to {
                Some(grow_to) => write_zeros(&self.file, end, grow_to),
                None => Ok(()),
            })
            .and_then(|()| self.check(FileOp::Sync))
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.len = end;
                self.size = self.size.max(grow_to.unwrap_or(end));
                Ok(())
            }
            Err(source) => Err(AppendError {
                source,
                rolled_back: self.roll_back(start),
            }),
        }
    }

    /// Undoes a failed or unwanted append that started at `start`: the file is cut back to
    /// `start` and synced, so the record cannot be read again. Returns whether that worked.
    pub(crate) fn roll_back(&mut self, start: u64) -> bool {
        self.truncate_to(start).is_ok()
    }

    /// Cuts the file to `len` bytes and syncs the new length.
    pub(crate) fn truncate_to(&mut self, len: u64) -> io::Result<()> {
        self.check(FileOp::Resize)?;
        self.file.set_len(len)?;
        self.size = len;
        self.check(FileOp::Sync)?;
        self.file.sync_data()?;
        self.len = len;
        Ok(())
    }

    /// Empties the log after a checkpoint made every record in it redundant: the next append
    /// goes right after the header, over the old records (no I/O here). The old records have
    /// LSNs at or below the checkpoint, so a crash leaves them either redundant or outside the
    /// chain.
    pub(crate) fn rewind(&mut self) {
        self.len = FILE_HEADER_LEN;
    }
}

/// Writes zeros to `start..end` of `file`.
fn write_zeros(file: &File, start: u64, end: u64) -> io::Result<()> {
    let mut at = start;
    while at < end {
        let n = (end - at).min(ZEROS.len() as u64);
        file.write_all_at(&ZEROS[..n as usize], at)?;
        at += n;
    }
    Ok(())
}

/// A record being built while the writer applies a batch: the header's room, then the body.
pub(crate) struct RecordBuf {
    buf: Vec<u8>,
    first_lsn: Lsn,
    count: u32,
}

impl Default for RecordBuf {
    fn default() -> Self {
        RecordBuf {
            buf: vec![0; RECORD_HEADER_LEN],
            first_lsn: 0,
            count: 0,
        }
    }
}

impl RecordBuf {
    pub(crate) fn clear(&mut self) {
        self.buf.truncate(RECORD_HEADER_LEN);
        self.first_lsn = 0;
        self.count = 0;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds the next accepted command; LSNs must be consecutive.
    pub(crate) fn push(&mut self, lsn: Lsn, command: &[u8]) -> Result<(), String> {
        if self.count == 0 {
            self.first_lsn = lsn;
        } else if lsn != self.first_lsn + u64::from(self.count) {
            return Err(format!(
                "write-ahead log record: LSN {lsn} does not follow {}",
                self.first_lsn + u64::from(self.count) - 1
            ));
        }
        let body = self.buf.len() - RECORD_HEADER_LEN;
        let len = u32::try_from(command.len()).ok().filter(|len| {
            body + 4 + *len as usize <= RECORD_BODY_BYTES_MAX && self.count < u32::MAX
        });
        let Some(len) = len else {
            return Err(format!(
                "write-ahead log record would exceed {RECORD_BODY_BYTES_MAX} bytes"
            ));
        };
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(command);
        self.count += 1;
        Ok(())
    }

    /// Fills in the header and returns the whole record.
    fn finish(&mut self) -> &[u8] {
        let body_len = (self.buf.len() - RECORD_HEADER_LEN) as u32;
        let body_crc = crc32c(&self.buf[RECORD_HEADER_LEN..]);
        let h = &mut self.buf[..RECORD_HEADER_LEN];
        h[0..4].copy_from_slice(&RECORD_MAGIC);
        h[4..6].copy_from_slice(&RECORD_FORMAT_VERSION.to_le_bytes());
        h[6..8].copy_from_slice(&[0, 0]);
        h[8..16].copy_from_slice(&self.first_lsn.to_le_bytes());
        h[16..20].copy_from_slice(&self.count.to_le_bytes());
        h[20..24].copy_from_slice(&body_len.to_le_bytes());
        h[24..28].copy_from_slice(&body_crc.to_le_bytes());
        let header_crc = crc32c(&h[0..28]);
        h[28..32].copy_from_slice(&header_crc.to_le_bytes());
        &self.buf
    }
}

/// Why the bytes at an offset are not a record.
enum RecordProblem {
    /// The file ends inside the record: a cut append.
    Cut,
    /// The bytes are not a record (bad magic or checksum): a cut append's garbage, or damage.
    Damaged(String),
    /// Checksums hold but the content is not what this build writes or reads.
    Invalid(String),
}

fn parse_record(bytes: &[u8], at: usize) -> Result<(WalRecord<'_>, usize), RecordProblem> {
    let rest = &bytes[at..];
    if rest.len() < RECORD_HEADER_LEN {
        return Err(RecordProblem::Cut);
    }
    let h = &rest[..RECORD_HEADER_LEN];
    if h[0..4] != RECORD_MAGIC {
        return Err(RecordProblem::Damaged("no record magic".into()));
    }
    if crc32c(&h[0..28]) != u32_at(h, 28) {
        return Err(RecordProblem::Damaged("header checksum mismatch".into()));
    }
    let version = u16_at(h, 4);
    if version != RECORD_FORMAT_VERSION {
        return Err(RecordProblem::Invalid(format!(
            "record format version {version} is not readable by this build (it reads {RECORD_FORMAT_VERSION})"
        )));
    }
    let first_lsn = u64_at(h, 8);
    let count = u32_at(h, 16);
    let body_len = u32_at(h, 20) as usize;
    if body_len > RECORD_BODY_BYTES_MAX || count == 0 || first_lsn == 0 {
        return Err(RecordProblem::Invalid(format!(
            "record header out of bounds (first LSN {first_lsn}, {count} commands, {body_len} bytes)"
        )));
    }
    if rest.len() - RECORD_HEADER_LEN < body_len {
        return Err(RecordProblem::Cut);
    }
    let body = &rest[RECORD_HEADER_LEN..RECORD_HEADER_LEN + body_len];
    if crc32c(body) != u32_at(h, 24) {
        return Err(RecordProblem::Damaged("body checksum mismatch".into()));
    }
    let mut commands = Vec::with_capacity(count as usize);
    let mut pos = 0;
    while pos < body.len() {
        if body.len() - pos < 4 {
            return Err(RecordProblem::Invalid(
                "a command length is cut by the end of the body".into(),
            ));
        }
        let len = u32_at(body, pos) as usize;
        pos += 4;
        if body.len() - pos < len {
            return Err(RecordProblem::Invalid(
                "a command runs past the end of the body".into(),
            ));
        }
        commands.push(&body[pos..pos + len]);
        pos += len;
    }
    if commands.len() != count as usize {
        return Err(RecordProblem::Invalid(format!(
            "the header says {count} commands, the body holds {}",
            commands.len()
        )));
    }
    if first_lsn.checked_add(u64::from(count)).is_none() {
        return Err(RecordProblem::Invalid("LSN overflow".into()));
    }
    Ok((
        WalRecord {
            offset: at as u64,
            first_lsn,
            commands,
        },
        at + RECORD_HEADER_LEN + body_len,
    ))
}

/// The first whole, valid record at or after `from` whose first LSN is above `newest`: one
/// that was written after the records before `from`.
fn newer_record_after(bytes: &[u8], from: usize, newest: Lsn) -> Option<(usize, Lsn)> {
    let last = bytes.len().checked_sub(RECORD_HEADER_LEN)?;
    (from..=last)
        .filter(|&at| bytes[at..at + 4] == RECORD_MAGIC)
        .find_map(|at| match parse_record(bytes, at) {
            Ok((record, _)) if record.first_lsn > newest => Some((at, record.first_lsn)),
            _ => None,
        })
}

/// Reads a log file's contents: the header must name `shard` of `data_dir_id`; then the chain
/// of records from the start, each with valid checksums and the LSN after its predecessor's.
/// The chain stops at the end of the file, at a record cut short, at a record with a lower LSN
/// (left from before a checkpoint), or at damaged bytes. Damaged bytes followed by a valid
/// record newer than the chain and than `durable_lsn` (the redb file's durable LSN) are
/// corruption: a record that was synced is unreadable. Anything else after the chain is the
/// normal trace of a crash during an append, or old space.
pub(crate) fn parse(
    bytes: &[u8],
    shard: ShardId,
    data_dir_id: u128,
    index: u16,
    durable_lsn: Lsn,
) -> Result<WalContents<'_>, WalError> {
    if bytes.len() < HEADER_LEN {
        return Err(WalError::Corrupt(format!(
            "the file is {} bytes, shorter than its {HEADER_LEN}-byte header",
            bytes.len()
        )));
    }
    let h = &bytes[..HEADER_LEN];
    if h[0..8] != FILE_MAGIC {
        return Err(WalError::Corrupt(
            "not a write-ahead log (bad magic)".into(),
        ));
    }
    if crc32c(&h[0..32]) != u32_at(h, 32) {
        return Err(WalError::Corrupt("header checksum mismatch".into()));
    }
    let version = u32_at(h, 8);
    if version != WAL_FORMAT_VERSION {
        return Err(WalError::Corrupt(format!(
            "log format version {version} is not readable by this build (it reads {WAL_FORMAT_VERSION})"
        )));
    }
    let file_shard = u16_at(h, 12);
    if file_shard != shard.0 {
        return Err(WalError::Foreign(format!(
            "the log says it is shard {file_shard}, expected {shard}"
        )));
    }
    let file_index = u16_at(h, 14);
    if file_index != index {
        return Err(WalError::Foreign(format!(
            "the log says it is log {file_index} of its shard, expected {index}"
        )));
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&h[16..32]);
    let file_dir_id = u128::from_le_bytes(id);
    if file_dir_id != data_dir_id {
        return Err(WalError::Foreign(format!(
            "data directory id {file_dir_id:032x} differs from meta.redb's {data_dir_id:032x}"
        )));
    }
    let mut records: Vec<WalRecord<'_>> = Vec::new();
    let mut at = HEADER_LEN;
    while at < bytes.len() {
        match parse_record(bytes, at) {
            Ok((record, end)) => {
                if let Some(prev) = records.last() {
                    let expected = prev.last_lsn() + 1;
                    if record.first_lsn < expected {
                        // Left from before a checkpoint: the chain ends here.
                        break;
                    }
                    if record.first_lsn > expected {
                        return Err(WalError::Corrupt(format!(
                            "record at offset {at} starts at LSN {}, expected {expected}: records are missing",
                            record.first_lsn
                        )));
                    }
                }
                records.push(record);
                at = end;
            }
            Err(RecordProblem::Cut) => break,
            Err(RecordProblem::Damaged(reason)) => {
                let newest = records
                    .last()
                    .map_or(durable_lsn, |r| r.last_lsn().max(durable_lsn));
                if let Some((next, lsn)) = newer_record_after(bytes, at + 1, newest) {
                    return Err(WalError::Corrupt(format!(
                        "record at offset {at} is damaged ({reason}) but a valid record follows at offset {next} (LSN {lsn})"
                    )));
                }
                break;
            }
            Err(RecordProblem::Invalid(reason)) => {
                return Err(WalError::Corrupt(format!(
                    "record at offset {at}: {reason}"
                )));
            }
        }
    }
    Ok(WalContents {
        valid_end: at as u64,
        tail_bytes: (bytes.len() - at) as u64,
        records,
    })
}

/// The records of both logs that the redb file does not hold yet (those above `durable_lsn`),
/// in LSN order. They must continue the redb file's state without a gap: from `durable_lsn +
/// 1`, each record starting where the one before ended. The error says what is missing.
pub(crate) fn pending_records<'c, 'a>(
    logs: &'c [WalContents<'a>],
    durable_lsn: Lsn,
) -> Result<Vec<&'c WalRecord<'a>>, String> {
    let mut records: Vec<&WalRecord<'a>> = logs
        .iter()
        .flat_map(|log| log.records.iter())
        .filter(|record| record.last_lsn() > durable_lsn)
        .collect();
    records.sort_by_key(|record| record.first_lsn);
    let mut next = durable_lsn + 1;
    for record in &records {
        if record.first_lsn != next {
            return Err(if record.first_lsn > next {
                format!(
                    "a log record at offset {} starts at LSN {}, but the redb file and the records before it end at LSN {}: records are missing",
                    record.offset,
                    record.first_lsn,
                    next - 1
                )
            } else {
                format!(
                    "a log record at offset {} starts at LSN {}, inside what the redb file and the records before it hold (up to LSN {})",
                    record.offset,
                    record.first_lsn,
                    next - 1
                )
            });
        }
        next = record.last_lsn() + 1;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR_ID: u128 = 0x1234_5678_9abc_def0_0fed_cba9_8765_4321;

    fn log_bytes(records: &[(Lsn, &[&[u8]])]) -> Vec<u8> {
        log_bytes_of(0, records)
    }

    fn log_bytes_of(index: u16, records: &[(Lsn, &[&[u8]])]) -> Vec<u8> {
        let mut out = file_header(ShardId(3), DIR_ID, index).to_vec();
        for (first, commands) in records {
            let mut rec = RecordBuf::default();
            for (i, c) in commands.iter().enumerate() {
                rec.push(first + i as u64, c).unwrap();
            }
            out.extend_from_slice(rec.finish());
        }
        out
    }

    #[test]
    fn a_log_grows_by_runs_of_zeros_and_a_rewound_log_overwrites_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("0003.wal");
        std::fs::write(&path, file_header(ShardId(3), DIR_ID, 0)).expect("header");
        let mut wal = Wal::open(&path, FILE_HEADER_LEN, None).expect("open");
        let file_len = || std::fs::metadata(&path).expect("metadata").len();
        let append = |wal: &mut Wal, lsn: Lsn, bytes: usize| {
            let mut record = RecordBuf::default();
            record.push(lsn, &vec![7u8; bytes]).expect("push");
            wal.append(&mut record).expect("append");
        };
        // The first record grows the file by the smallest run; the next ones fit in it.
        append(&mut wal, 1, 100);
        let first = file_len();
        assert_eq!(wal.file_bytes(), first);
        assert_eq!(first % ZERO_FILL_BYTES_MIN, 0);
        assert!(first - wal.len >= ZERO_FILL_BYTES_MIN);
        for lsn in 2..=100 {
            append(&mut wal, lsn, 100);
        }
        assert_eq!(file_len(), first);
        // Runs grow with the file, up to the largest run.
        for lsn in 101..=200 {
            append(&mut wal, lsn, 20_000);
        }
        let grown = file_len();
        assert_eq!(grown % ZERO_FILL_BYTES_MIN, 0);
        assert!(grown > wal.len && grown - wal.len <= ZERO_FILL_BYTES_MAX + ZERO_FILL_BYTES_MIN);
        // After a checkpoint the same amount of records overwrites the file without growing it.
        wal.rewind();
        for lsn in 201..=300 {
            append(&mut wal, lsn, 20_000);
        }
        assert_eq!(file_len(), grown);
        // The chain is the new records; the old ones behind them and the zeros are its tail.
        let bytes = std::fs::read(&path).expect("read");
        let parsed = parse(&bytes, ShardId(3), DIR_ID, 0, 200).expect("parse");
        assert_eq!(parsed.records.len(), 100);
        assert_eq!(parsed.records[0].first_lsn, 201);
        assert_eq!(parsed.valid_end, wal.len);
        assert_eq!(parsed.tail_bytes, grown - wal.len);
    }

    #[test]
    fn records_round_trip() {
        let bytes = log_bytes(&[(5, &[b"abc", b""]), (7, &[b"hello"])]);
        let parsed = parse(&bytes, ShardId(3), DIR_ID, 0, 0).unwrap();
        assert_eq!(parsed.tail_bytes, 0);
        assert_eq!(parsed.valid_end, bytes.len() as u64);
        assert_eq!(parsed.records.len(), 2);
        assert_eq!(parsed.records[0].first_lsn, 5);
        assert_eq!(parsed.records[0].commands, vec![&b"abc"[..], &b""[..]]);
        assert_eq!(parsed.records[1].last_lsn(), 7);
        assert_eq!(parsed.records[1].commands, vec![&b"hello"[..]]);
    }

    #[test]
    fn the_layout_is_pinned() {
        let bytes = log_bytes(&[(1, &[b"xy"])]);
        assert_eq!(&bytes[0..8], b"MERCWAL\0");
        assert_eq!(&bytes[8..12], &[1, 0, 0, 0]);
        assert_eq!(&bytes[12..14], &[3, 0]);
        let r = &bytes[36..];
        assert_eq!(&r[0..4], b"WREC");
        assert_eq!(&r[4..6], &[1, 0]);
        assert_eq!(&r[8..16], &1u64.to_le_bytes());
        assert_eq!(&r[16..20], &1u32.to_le_bytes());
        assert_eq!(&r[20..24], &6u32.to_le_bytes());
        assert_eq!(&r[32..], &[2, 0, 0, 0, b'x', b'y']);
        assert_eq!(&r[24..28], &crc32c(&r[32..]).to_le_bytes());
        assert_eq!(&r[28..32], &crc32c(&r[0..28]).to_le_bytes());
    }

    #[test]
    fn every_cut_of_the_last_record_ends_the_chain() {
        let bytes = log_bytes(&[(1, &[b"first"]), (2, &[b"second", b"third"])]);
        let second = parse(&bytes, ShardId(3), DIR_ID, 0, 0).unwrap().records[1].offset as usize;
        for cut in second + 1..bytes.len() {
            let parsed = parse(&bytes[..cut], ShardId(3), DIR_ID, 0, 0).unwrap();
            assert_eq!(parsed.records.len(), 1, "cut at {cut}");
            assert_eq!(parsed.valid_end, second as u64);
            assert_eq!(parsed.tail_bytes, (cut - second) as u64);
        }
        // Garbage (or zeros) after the last record is a tail too.
        let mut zeros = bytes.clone();
        zeros.extend_from_slice(&[0u8; 100]);
        let parsed = parse(&zeros, ShardId(3), DIR_ID, 0, 0).unwrap();
        assert_eq!(parsed.records.len(), 2);
        assert_eq!(parsed.valid_end, bytes.len() as u64);
        assert_eq!(parsed.tail_bytes, 100);
    }

    #[test]
    fn a_damaged_record_followed_by_a_newer_valid_one_is_corruption() {
        let bytes = log_bytes(&[(1, &[b"first"]), (2, &[b"second"]), (3, &[b"third"])]);
        let parsed = parse(&bytes, ShardId(3), DIR_ID, 0, 0).unwrap();
        let second = parsed.records[1].offset as usize;
        // A flipped bit in the body, then in the header.
        for at in [second + RECORD_HEADER_LEN + 5, second + 9] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            let err = parse(&damaged, ShardId(3), DIR_ID, 0, 0).unwrap_err();
            let WalError::Corrupt(reason) = err else {
                panic!("not corruption: {err:?}")
            };
            assert!(reason.contains("valid record follows"), "{reason}");
        }
        // The same damage in the last record is a torn tail.
        let third = parsed.records[2].offset as usize;
        let mut damaged = bytes.clone();
        damaged[third + RECORD_HEADER_LEN + 1] ^= 0x01;
        let parsed = parse(&damaged, ShardId(3), DIR_ID, 0, 0).unwrap();
        assert_eq!(parsed.records.len(), 2);
        assert_eq!(parsed.valid_end, third as u64);
    }

    #[test]
    fn records_left_from_before_a_checkpoint_end_the_chain() {
        // Before the checkpoint: LSNs 1..=3 in long records. After it (durable up to 3): the
        // log was rewound and LSN 4 overwrote the start of the first old record.
        let old = log_bytes(&[
            (1, &[&[b'a'; 40][..]]),
            (2, &[&[b'b'; 40][..]]),
            (3, &[&[b'c'; 40][..]]),
        ]);
        let new = log_bytes(&[(4, &[b"d"])]);
        let mut bytes = old.clone();
        bytes[..new.len()].copy_from_slice(&new);
        let parsed = parse(&bytes, ShardId(3), DIR_ID, 0, 3).unwrap();
        assert_eq!(parsed.records.len(), 1);
        assert_eq!(parsed.records[0].first_lsn, 4);
        assert_eq!(parsed.valid_end, new.len() as u64);
        // The new record exactly covering the first old one: the chain stops at LSN 2.
        let exact = log_bytes(&[(4, &[&[b'x'; 40][..]])]);
        let mut bytes = old.clone();
        bytes[..exact.len()].copy_from_slice(&exact);
        let parsed = parse(&bytes, ShardId(3), DIR_ID, 0, 3).unwrap();
        assert_eq!(parsed.records.len(), 1);
        // A torn first record after a checkpoint, old records behind it: not corruption.
        let mut bytes = old.clone();
        bytes[HEADER_LEN + 40] ^= 0xFF;
        let parsed = parse(&bytes, ShardId(3), DIR_ID, 0, 3).unwrap();
        assert!(parsed.records.is_empty());
        // But the same damage before the old records were checkpointed is.
        assert!(matches!(
            parse(&bytes, ShardId(3), DIR_ID, 0, 0),
            Err(WalError::Corrupt(_))
        ));
    }

    #[test]
    fn foreign_and_gapped_logs_are_refused() {
        let bytes = log_bytes(&[(1, &[b"a"])]);
        assert!(matches!(
            parse(&bytes, ShardId(4), DIR_ID, 0, 0),
            Err(WalError::Foreign(_))
        ));
        assert!(matches!(
            parse(&bytes, ShardId(3), DIR_ID + 1, 0, 0),
            Err(WalError::Foreign(_))
        ));
        let gapped = log_bytes(&[(1, &[b"a"]), (3, &[b"b"])]);
        assert!(matches!(
            parse(&gapped, ShardId(3), DIR_ID, 0, 0),
            Err(WalError::Corrupt(_))
        ));
        assert!(matches!(
            parse(&bytes[..20], ShardId(3), DIR_ID, 0, 0),
            Err(WalError::Corrupt(_))
        ));
    }

    #[test]
    fn lsns_must_be_consecutive_within_a_record() {
        let mut rec = RecordBuf::default();
        rec.push(10, b"a").unwrap();
        assert!(rec.push(12, b"b").is_err());
        rec.push(11, b"b").unwrap();
        rec.clear();
        assert!(rec.is_empty());
    }

    #[test]
    fn a_log_in_the_other_logs_place_is_refused() {
        let bytes = log_bytes_of(1, &[(1, &[b"a"])]);
        assert!(matches!(
            parse(&bytes, ShardId(3), DIR_ID, 0, 0),
            Err(WalError::Foreign(_))
        ));
        assert_eq!(
            parse(&bytes, ShardId(3), DIR_ID, 1, 0)
                .unwrap()
                .records
                .len(),
            1
        );
        assert_eq!(&bytes[14..16], &[1, 0]);
    }

    #[test]
    fn pending_records_of_both_logs_are_taken_in_lsn_order() {
        // A checkpoint at LSN 3 moved appends to log 1; its sync did not end: the redb file is
        // durable up to LSN 1 only. Log 0 holds 1..=3, log 1 holds 4..=5.
        let zero = log_bytes_of(0, &[(1, &[b"a"]), (2, &[b"b", b"c"])]);
        let one = log_bytes_of(1, &[(4, &[b"d"]), (5, &[b"e"])]);
        let logs = [
            parse(&zero, ShardId(3), DIR_ID, 0, 1).unwrap(),
            parse(&one, ShardId(3), DIR_ID, 1, 1).unwrap(),
        ];
        let pending = pending_records(&logs, 1).unwrap();
        let firsts: Vec<Lsn> = pending.iter().map(|r| r.first_lsn).collect();
        assert_eq!(firsts, vec![2, 4, 5]);
        // Durable up to 3: only log 1's records are pending.
        let firsts: Vec<Lsn> = pending_records(&logs, 3)
            .unwrap()
            .iter()
            .map(|r| r.first_lsn)
            .collect();
        assert_eq!(firsts, vec![4, 5]);
        assert!(pending_records(&logs, 5).unwrap().is_empty());
        // Without log 0, LSNs 2..=3 are missing.
        let err = pending_records(&logs[1..], 1).unwrap_err();
        assert!(err.contains("records are missing"), "{err}");
        // Both logs holding the same LSNs is refused too.
        let twice = [
            parse(&zero, ShardId(3), DIR_ID, 0, 0).unwrap(),
            parse(&zero, ShardId(3), DIR_ID, 0, 0).unwrap(),
        ];
        assert!(pending_records(&twice, 0).is_err());
    }
}
