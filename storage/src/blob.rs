//! Content-addressed blob store: the file side of large payloads (vendor documents, images).
//!
//! A blob is named by the SHA-256 of its raw bytes, stored once however often it is uploaded,
//! zstd-compressed when that makes it smaller, and written and fsynced before the redb metadata
//! that references it commits. Reference counts live in the shard's redb file, not here: this
//! module only knows files. There is one [`BlobStore`] directory per shard.
//!
//! ```
//! use mercato_storage::blob::BlobStore;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = BlobStore::open(&dir.path().join("blobs/0001"))?;
//! let put = store.put(b"%PDF-1.7 ...")?;
//! assert!(put.created);
//! assert_eq!(store.get(&put.hash)?, b"%PDF-1.7 ...");
//! assert!(!store.put(b"%PDF-1.7 ...")?.created); // the same bytes are stored once
//! # Ok(()) }
//! ```
//!
//! # Directory layout
//!
//! ```text
//! <dir>/                      e.g. <data>/blobs/0001/, created by `open` if missing
//!   00/ .. ff/                256 fan-out directories by the hash's first byte, all created by `open`
//!     ab/abcdef…(64 hex).blob a blob file, immutable once renamed into place
//!     ab/abcdef….<pid>.<n>.tmp a write in progress (or left by a crash; `list` removes it after an hour)
//! ```
//!
//! # File format (version 1), byte by byte
//!
//! | offset | size | field                                                          |
//! |-------:|-----:|----------------------------------------------------------------|
//! | 0      | 4    | magic `MBLB` (`4d 42 4c 42`)                                   |
//! | 4      | 1    | format version, `1`                                            |
//! | 5      | 1    | flags: bit 0 = payload is one zstd frame; other bits must be 0 |
//! | 6      | 8    | raw (uncompressed) length, u64 little-endian, ≤ [`BLOB_BYTES_MAX`] |
//! | 14     | 32   | SHA-256 of the raw bytes (equals the file name)                |
//! | 46     | …    | payload to the end of the file                                 |
//!
//! A raw payload (flag bit 0 clear) is exactly `raw length` bytes. A zstd payload is one frame
//! whose header records the content size, which must equal `raw length`; it is at most
//! `ZSTD_compressBound(raw length)` bytes.
//!
//! # Durability and garbage collection
//!
//! A new blob is written to a unique temporary file in its fan-out directory, fsynced, renamed
//! to its final name, and the fan-out directory is fsynced: when [`BlobStore::put`] returns, the
//! blob survives a crash. A `put` of bytes already present verifies the existing file's header,
//! sets its mtime to now and fsyncs the directory (in case a concurrent `put` of the same bytes
//! has renamed but not yet fsynced). The GC protocol relies on that mtime: delete only blobs
//! whose reference count is 0 *and* that were not touched within a grace period, with
//! [`BlobStore::delete_if_unmodified_since`], which checks the mtime and unlinks under the same
//! lock `put` holds while it touches, so an upload racing with GC either refreshes the file
//! before the check or writes a new file after the unlink. Architecture invariant: one process
//! owns a blob directory (the lock is in-process).

use std::fmt;
use std::fs::{self, File, OpenOptions, ReadDir};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

/// Largest blob accepted by [`BlobStore::put`], and the largest raw length a reader trusts in a
/// file header (so a corrupt or hostile header cannot make `get` allocate more).
pub const BLOB_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// zstd level for new blobs. Measured (docs/blob-measurement.md): on PDF-like content level 3
/// stores 0.586 of the raw size at ~300 MB/s on one core; level 1 stores 0.613 at ~400 MB/s;
/// level 6 gains 0.3% for 2.4x the CPU. Incompressible input passes through at ~1.2 GB/s, so
/// every upload is tried without sniffing its type.
pub const COMPRESSION_LEVEL: i32 = 3;

/// Keep the zstd payload only if it saves at least 1/`COMPRESSION_SAVING_MIN_DIVISOR` of the raw
/// length (about 3%); otherwise store raw. Already-compressed uploads (JPEG, most PDFs) save less
/// than that, and a raw payload costs neither the writer's verification decode nor the reader's
/// decompression.
pub const COMPRESSION_SAVING_MIN_DIVISOR: u64 = 32;

/// Temporary files older than this are leftovers of a crash; [`BlobStore::list`] removes them.
/// No `put` of a blob under [`BLOB_BYTES_MAX`] runs this long.
pub const TEMP_FILE_STALE_AGE: Duration = Duration::from_secs(60 * 60);

/// The file format this module writes (and the only one it reads).
pub const FORMAT_VERSION: u8 = 1;

/// First four bytes of every blob file.
pub const MAGIC: [u8; 4] = *b"MBLB";

/// Length of the fixed header in front of the payload.
pub const HEADER_LEN: usize = 46;

/// Header flag: the payload is a zstd frame (else the raw bytes).
const FLAG_ZSTD: u8 = 0b0000_0001;
const FLAGS_KNOWN: u8 = FLAG_ZSTD;

const FAN_OUT_DIRS: u16 = 256;
const BLOB_SUFFIX: &str = ".blob";
const TEMP_SUFFIX: &str = ".tmp";

/// Attempts at a fresh temporary name before giving up (a name is only taken if a previous
/// process with the same pid crashed mid-write at the same sequence number).
const TEMP_NAME_ATTEMPTS_MAX: u32 = 16;

/// Process-wide sequence for temporary names, shared by every store so two stores opened on
/// the same directory cannot collide either.
static TEMP_SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// SHA-256 of a blob's raw bytes: its name and its key in redb.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobHash([u8; 32]);

impl BlobHash {
    /// Length of the hash in bytes.
    pub const LEN: usize = 32;

    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> BlobHash {
        BlobHash(Sha256::digest(bytes).into())
    }

    pub const fn from_bytes(bytes: [u8; 32]) -> BlobHash {
        BlobHash(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn fan_out_name(&self) -> String {
        let mut name = String::with_capacity(2);
        push_hex_byte(&mut name, self.0[0]);
        name
    }
}

fn push_hex_byte(out: &mut String, byte: u8) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.push(char::from(DIGITS[usize::from(byte >> 4)]));
    out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
}

impl fmt::Display for BlobHash {
    /// 64 lowercase hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut hex = String::with_capacity(64);
        for byte in self.0 {
            push_hex_byte(&mut hex, byte);
        }
        f.write_str(&hex)
    }
}

impl fmt::Debug for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobHash({self})")
    }
}

/// Why a string is not a [`BlobHash`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobHashParseError {
    #[error("a blob hash is 64 hex digits, got {len} bytes")]
    Length { len: usize },
    #[error("a blob hash is lowercase hex, got byte {byte:#04x} at offset {offset}")]
    Digit { offset: usize, byte: u8 },
}

impl FromStr for BlobHash {
    type Err = BlobHashParseError;

    /// Parses exactly 64 lowercase hex digits (the form `Display` writes and file names use).
    fn from_str(text: &str) -> Result<BlobHash, BlobHashParseError> {
        let digits = text.as_bytes();
        if digits.len() != 64 {
            return Err(BlobHashParseError::Length { len: digits.len() });
        }
        let nibble = |offset: usize| -> Result<u8, BlobHashParseError> {
            let byte = digits[offset];
            match byte {
                b'0'..=b'9' => Ok(byte - b'0'),
                b'a'..=b'f' => Ok(byte - b'a' + 10),
                _ => Err(BlobHashParseError::Digit { offset, byte }),
            }
        };
        let mut hash = [0u8; 32];
        for (index, out) in hash.iter_mut().enumerate() {
            *out = (nibble(2 * index)? << 4) | nibble(2 * index + 1)?;
        }
        Ok(BlobHash(hash))
    }
}

/// What [`BlobStore::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobPut {
    pub hash: BlobHash,
    /// Length of the bytes given to `put`.
    pub raw_len: u64,
    /// Length of the file on disk, header included.
    pub stored_len: u64,
    /// `true` if this call wrote the file; `false` if the blob was already stored (its mtime was
    /// refreshed). A damaged existing file is rewritten and counts as created.
    pub created: bool,
}

/// Why a blob file is unreadable. Each one means the file on disk is not what `put` wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Corruption {
    #[error("file is {len} bytes, shorter than the {HEADER_LEN}-byte header")]
    HeaderTruncated { len: u64 },
    #[error("file is {len} bytes, longer than any blob file")]
    FileTooLong { len: u64 },
    #[error("bad magic {found:02x?}")]
    BadMagic { found: [u8; 4] },
    #[error("unsupported format version {version}")]
    UnsupportedVersion { version: u8 },
    #[error("unknown flags {flags:#010b}")]
    UnknownFlags { flags: u8 },
    #[error("header raw length {raw_len} exceeds the maximum {BLOB_BYTES_MAX}")]
    RawLenTooLarge { raw_len: u64 },
    #[error("header names blob {found}, file name says otherwise")]
    HeaderHash { found: BlobHash },
    #[error("header raw length {found}, expected {expected}")]
    RawLen { found: u64, expected: u64 },
    #[error("payload of {payload_len} bytes cannot hold {raw_len} raw bytes (zstd: {compressed})")]
    PayloadLen {
        payload_len: u64,
        raw_len: u64,
        compressed: bool,
    },
    #[error("zstd frame content size {frame:?} differs from header raw length {raw_len}")]
    FrameContentSize { frame: Option<u64>, raw_len: u64 },
    #[error("zstd decompression failed: {detail}")]
    Decompress { detail: String },
    #[error("decompressed {actual} bytes, header says {expected}")]
    DecodedLen { actual: u64, expected: u64 },
    #[error("content hashes to {actual}")]
    ContentHash { actual: BlobHash },
}

/// Errors of the blob store. I/O and corruption errors name the file.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob I/O failed on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("blob of {len} bytes exceeds the maximum of {max} bytes")]
    TooLarge { len: u64, max: u64 },
    #[error("blob {hash} not found at {path}")]
    NotFound { hash: BlobHash, path: PathBuf },
    #[error("corrupt blob file {path}: {reason}")]
    Corrupt { path: PathBuf, reason: Corruption },
    #[error("zstd compression failed: {source}")]
    Compress {
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a directory")]
    NotADirectory { path: PathBuf },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> BlobError + '_ {
    move |source| BlobError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The decoded fixed header of a blob file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    compressed: bool,
    raw_len: u64,
    hash: BlobHash,
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&MAGIC);
        out[4] = FORMAT_VERSION;
        out[5] = if self.compressed { FLAG_ZSTD } else { 0 };
        out[6..14].copy_from_slice(&self.raw_len.to_le_bytes());
        out[14..46].copy_from_slice(&self.hash.0);
        out
    }

    fn decode(bytes: &[u8; HEADER_LEN]) -> Result<Header, Corruption> {
        let mut magic = [0u8; 4];
        magic.copy_from_slice(&bytes[0..4]);
        if magic != MAGIC {
            return Err(Corruption::BadMagic { found: magic });
        }
        if bytes[4] != FORMAT_VERSION {
            return Err(Corruption::UnsupportedVersion { version: bytes[4] });
        }
        let flags = bytes[5];
        if flags & !FLAGS_KNOWN != 0 {
            return Err(Corruption::UnknownFlags { flags });
        }
        let mut raw_len = [0u8; 8];
        raw_len.copy_from_slice(&bytes[6..14]);
        let raw_len = u64::from_le_bytes(raw_len);
        if raw_len > BLOB_BYTES_MAX {
            return Err(Corruption::RawLenTooLarge { raw_len });
        }
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&bytes[14..46]);
        Ok(Header {
            compressed: flags & FLAG_ZSTD != 0,
            raw_len,
            hash: BlobHash(hash),
        })
    }

    /// Checks the header against what the caller expects to find in the file.
    fn expect(&self, hash: &BlobHash, raw_len: Option<u64>) -> Result<(), Corruption> {
        if self.hash != *hash {
            return Err(Corruption::HeaderHash { found: self.hash });
        }
        match raw_len {
            Some(expected) if expected != self.raw_len => Err(Corruption::RawLen {
                found: self.raw_len,
                expected,
            }),
            _ => Ok(()),
        }
    }

    /// Checks that a payload of `payload_len` bytes can hold this blob, before reading it.
    fn check_payload_len(&self, payload_len: u64) -> Result<(), Corruption> {
        let fits = if self.compressed {
            let bound = usize::try_from(self.raw_len)
                .map(|raw_len| zstd::zstd_safe::compress_bound(raw_len) as u64)
                .unwrap_or(u64::MAX);
            payload_len > 0 && payload_len <= bound
        } else {
            payload_len == self.raw_len
        };
        if fits {
            Ok(())
        } else {
            Err(Corruption::PayloadLen {
                payload_len,
                raw_len: self.raw_len,
                compressed: self.compressed,
            })
        }
    }

    /// Decodes a payload into the raw bytes and checks them against the header's length and
    /// hash. The output never grows beyond the header's raw length, which `decode` bounded by
    /// [`BLOB_BYTES_MAX`].
    fn decode_payload(&self, payload: &[u8]) -> Result<Vec<u8>, Corruption> {
        self.check_payload_len(payload.len() as u64)?;
        let raw = if self.compressed {
            let frame = zstd::zstd_safe::get_frame_content_size(payload)
                .ok()
                .flatten();
            if frame != Some(self.raw_len) {
                return Err(Corruption::FrameContentSize {
                    frame,
                    raw_len: self.raw_len,
                });
            }
            let capacity =
                usize::try_from(self.raw_len).map_err(|_| Corruption::RawLenTooLarge {
                    raw_len: self.raw_len,
                })?;
            zstd::bulk::decompress(payload, capacity).map_err(|error| Corruption::Decompress {
                detail: error.to_string(),
            })?
        } else {
            payload.to_vec()
        };
        if raw.len() as u64 != self.raw_len {
            return Err(Corruption::DecodedLen {
                actual: raw.len() as u64,
                expected: self.raw_len,
            });
        }
        let actual = BlobHash::of(&raw);
        if actual != self.hash {
            return Err(Corruption::ContentHash { actual });
        }
        Ok(raw)
    }
}

/// Decodes a whole blob file held in memory, checking everything: header, lengths, content hash.
fn decode_file(path: &Path, hash: &BlobHash, file: &[u8]) -> Result<Vec<u8>, BlobError> {
    let corrupt = |reason| BlobError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let Some((header, payload)) = file.split_first_chunk::<HEADER_LEN>() else {
        return Err(corrupt(Corruption::HeaderTruncated {
            len: file.len() as u64,
        }));
    };
    let header = Header::decode(header).map_err(corrupt)?;
    header.expect(hash, None).map_err(corrupt)?;
    header.decode_payload(payload).map_err(corrupt)
}

/// Reads a whole blob file, refusing to read more than any valid blob file holds.
fn read_file_bounded(path: &Path, hash: &BlobHash) -> Result<Vec<u8>, BlobError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(BlobError::NotFound {
                hash: *hash,
                path: path.to_path_buf(),
            });
        }
        Err(error) => return Err(io_error(path)(error)),
    };
    let file_len_max = HEADER_LEN as u64 + BLOB_BYTES_MAX;
    let len = file.metadata().map_err(io_error(path))?.len();
    if len > file_len_max {
        return Err(BlobError::Corrupt {
            path: path.to_path_buf(),
            reason: Corruption::FileTooLong { len },
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // The file may grow between `metadata` and here only if something else writes into a
    // published blob; the `take` keeps the bound regardless.
    file.take(file_len_max + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error(path))?;
    if bytes.len() as u64 > file_len_max {
        return Err(BlobError::Corrupt {
            path: path.to_path_buf(),
            reason: Corruption::FileTooLong {
                len: bytes.len() as u64,
            },
        });
    }
    Ok(bytes)
}

fn fsync_dir(dir: &Path) -> Result<(), BlobError> {
    File::open(dir)
        .and_then(|dir_file| dir_file.sync_all())
        .map_err(io_error(dir))
}

/// A directory of content-addressed blob files. `Send + Sync`; all methods take `&self`.
#[derive(Debug)]
pub struct BlobStore {
    root: PathBuf,
    /// Serialises "touch an existing blob" (put, copy_from) against "unlink if not touched"
    /// (delete_if_unmodified_since). See the module docs on garbage collection.
    touch_lock: Mutex<()>,
}

impl BlobStore {
    /// Opens (creating if missing) the blob directory `dir` and its 256 fan-out directories,
    /// fsyncing every directory it creates into its parent.
    pub fn open(dir: &Path) -> Result<BlobStore, BlobError> {
        match fs::metadata(dir) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => {
                return Err(BlobError::NotADirectory {
                    path: dir.to_path_buf(),
                });
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(dir).map_err(io_error(dir))?;
                if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
                    fsync_dir(parent)?;
                }
            }
            Err(error) => return Err(io_error(dir)(error)),
        }
        let mut created_any = false;
        for first_byte in 0..FAN_OUT_DIRS {
            let mut name = String::with_capacity(2);
            push_hex_byte(&mut name, first_byte as u8);
            let fan_out = dir.join(name);
            match fs::create_dir(&fan_out) {
                Ok(()) => created_any = true,
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                    if !fan_out.is_dir() {
                        return Err(BlobError::NotADirectory { path: fan_out });
                    }
                }
                Err(error) => return Err(io_error(&fan_out)(error)),
            }
        }
        if created_any {
            fsync_dir(dir)?;
        }
        Ok(BlobStore {
            root: dir.to_path_buf(),
            touch_lock: Mutex::new(()),
        })
    }

    /// The directory this store was opened on.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// Where the blob `hash` lives (whether or not it exists): `<dir>/ab/ab….blob`.
    pub fn path_of(&self, hash: &BlobHash) -> PathBuf {
        self.root
            .join(hash.fan_out_name())
            .join(format!("{hash}{BLOB_SUFFIX}"))
    }

    /// Whether a file for `hash` exists. Does not read it; unreadable means `false`.
    pub fn contains(&self, hash: &BlobHash) -> bool {
        fs::metadata(self.path_of(hash)).is_ok_and(|metadata| metadata.is_file())
    }

    /// Stores `bytes` durably and returns their hash. If the blob is already stored, checks the
    /// existing file's header, refreshes its mtime (protecting it from GC's grace period) and
    /// returns `created: false`. CPU- and fsync-bound: call it off the async runtime.
    pub fn put(&self, bytes: &[u8]) -> Result<BlobPut, BlobError> {
        let raw_len = bytes.len() as u64;
        if raw_len > BLOB_BYTES_MAX {
            return Err(BlobError::TooLarge {
                len: raw_len,
                max: BLOB_BYTES_MAX,
            });
        }
        let hash = BlobHash::of(bytes);
        let path = self.path_of(&hash);
        if let Some(stored_len) = self.refresh_existing(&path, &hash, Some(raw_len))? {
            return Ok(BlobPut {
                hash,
                raw_len,
                stored_len,
                created: false,
            });
        }

        let compressed = zstd::bulk::compress(bytes, COMPRESSION_LEVEL)
            .map_err(|source| BlobError::Compress { source })?;
        let keep_compressed =
            (compressed.len() as u64) < raw_len - raw_len / COMPRESSION_SAVING_MIN_DIVISOR;
        let header = Header {
            compressed: keep_compressed,
            raw_len,
            hash,
        };
        let payload: &[u8] = if keep_compressed { &compressed } else { bytes };
        if keep_compressed {
            // Paired assertion, writer side: the exact payload about to be written decodes back
            // to the bytes we hashed (the reader runs the same checks in `get`).
            header
                .decode_payload(payload)
                .map_err(|reason| BlobError::Corrupt {
                    path: path.clone(),
                    reason,
                })?;
        }
        self.write_new_file(&path, &hash, &header.encode(), payload)?;
        Ok(BlobPut {
            hash,
            raw_len,
            stored_len: (HEADER_LEN + payload.len()) as u64,
            created: true,
        })
    }

    /// Reads the blob `hash`, verifying header, lengths and the SHA-256 of the content.
    pub fn get(&self, hash: &BlobHash) -> Result<Vec<u8>, BlobError> {
        let path = self.path_of(hash);
        let file = read_file_bounded(&path, hash)?;
        decode_file(&path, hash, &file)
    }

    /// Copies the blob `hash` from `source` (another shard's store) byte for byte, without
    /// recompressing, after verifying it completely. Idempotent: if this store already holds the
    /// blob, refreshes its mtime like a `put` would.
    pub fn copy_from(&self, source: &BlobStore, hash: &BlobHash) -> Result<(), BlobError> {
        let path = self.path_of(hash);
        if self.refresh_existing(&path, hash, None)?.is_some() {
            return Ok(());
        }
        let source_path = source.path_of(hash);
        let file = read_file_bounded(&source_path, hash)?;
        // Verify before copying: a move must not spread a damaged file and then delete the
        // source, the only place where the damage was visible.
        decode_file(&source_path, hash, &file)?;
        let (header, payload) = file.split_at(HEADER_LEN.min(file.len()));
        self.write_new_file(&path, hash, header, payload)
    }

    /// Removes the blob `hash` and fsyncs its directory. Returns whether a file was removed.
    /// Garbage collection should use [`BlobStore::delete_if_unmodified_since`] instead.
    pub fn delete(&self, hash: &BlobHash) -> Result<bool, BlobError> {
        let path = self.path_of(hash);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(error) => return Err(io_error(&path)(error)),
        }
        self.fsync_fan_out(hash)?;
        Ok(true)
    }

    /// Removes the blob `hash` only if its mtime is at or before `cutoff` (GC: `cutoff = now -
    /// grace period`), atomically with respect to `put` and `copy_from` refreshing it. Returns
    /// whether a file was removed.
    pub fn delete_if_unmodified_since(
        &self,
        hash: &BlobHash,
        cutoff: SystemTime,
    ) -> Result<bool, BlobError> {
        let path = self.path_of(hash);
        {
            let _touch = self.touch_lock.lock();
            let modified = match fs::metadata(&path).and_then(|metadata| metadata.modified()) {
                Ok(modified) => modified,
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
                Err(error) => return Err(io_error(&path)(error)),
            };
            if modified > cutoff {
                return Ok(false);
            }
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
                Err(error) => return Err(io_error(&path)(error)),
            }
        }
        self.fsync_fan_out(hash)?;
        Ok(true)
    }

    /// Every blob with its mtime, for garbage collection: fan-out directories in order, files
    /// within one in directory order. Lazy, so memory stays flat however many blobs there are.
    /// Skips temporary files and removes those older than [`TEMP_FILE_STALE_AGE`]; skips (and
    /// logs) files that are not blobs. Yields an error per unreadable entry and goes on.
    pub fn list(&self) -> BlobList {
        BlobList {
            root: self.root.clone(),
            next_fan_out: 0,
            current: None,
        }
    }

    fn fsync_fan_out(&self, hash: &BlobHash) -> Result<(), BlobError> {
        fsync_dir(&self.root.join(hash.fan_out_name()))
    }

    /// If a file for `hash` exists with a sound header, sets its mtime to now and returns its
    /// length. Returns `None` if there is no file, or if the file is damaged (logged; the caller
    /// then writes a fresh copy over it).
    fn refresh_existing(
        &self,
        path: &Path,
        hash: &BlobHash,
        raw_len: Option<u64>,
    ) -> Result<Option<u64>, BlobError> {
        let checked = {
            let _touch = self.touch_lock.lock();
            let mut file = match File::open(path) {
                Ok(file) => file,
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(error) => return Err(io_error(path)(error)),
            };
            let len = file.metadata().map_err(io_error(path))?.len();
            let mut header = [0u8; HEADER_LEN];
            let checked = match file.read_exact(&mut header) {
                Ok(()) => Header::decode(&header).and_then(|header| {
                    header.expect(hash, raw_len)?;
                    header.check_payload_len(len.saturating_sub(HEADER_LEN as u64))
                }),
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                    Err(Corruption::HeaderTruncated { len })
                }
                Err(error) => return Err(io_error(path)(error)),
            };
            if checked.is_ok() {
                file.set_modified(SystemTime::now())
                    .map_err(io_error(path))?;
            }
            checked.map(|()| len)
        };
        match checked {
            Ok(len) => {
                // A concurrent put of the same bytes may have renamed the file into place without
                // having fsynced the directory yet; our caller is about to commit a reference.
                self.fsync_fan_out(hash)?;
                Ok(Some(len))
            }
            Err(reason) => {
                tracing::warn!(path = %path.display(), %reason, "damaged blob file; writing a fresh copy");
                Ok(None)
            }
        }
    }

    /// Writes `header` + `payload` to a fresh temporary file next to `path`, fsyncs it, renames
    /// it to `path` and fsyncs the directory.
    fn write_new_file(
        &self,
        path: &Path,
        hash: &BlobHash,
        header: &[u8],
        payload: &[u8],
    ) -> Result<(), BlobError> {
        let fan_out = self.root.join(hash.fan_out_name());
        let (temp_path, mut file) = create_temp_file(&fan_out, hash)?;
        let written = file
            .write_all(header)
            .and_then(|()| file.write_all(payload))
            .and_then(|()| file.sync_all())
            .map_err(io_error(&temp_path))
            .and_then(|()| {
                drop(file);
                fs::rename(&temp_path, path).map_err(io_error(path))
            });
        if let Err(error) = written {
            if let Err(cleanup) = fs::remove_file(&temp_path)
                && cleanup.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(path = %temp_path.display(), %cleanup, "cannot remove temporary blob file");
            }
            return Err(error);
        }
        fsync_dir(&fan_out)
    }
}

fn create_temp_file(fan_out: &Path, hash: &BlobHash) -> Result<(PathBuf, File), BlobError> {
    let pid = std::process::id();
    let mut last_error = None;
    for _ in 0..TEMP_NAME_ATTEMPTS_MAX {
        let sequence = TEMP_SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let temp_path = fan_out.join(format!("{hash}.{pid}.{sequence}{TEMP_SUFFIX}"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp_path)
        {
            Ok(file) => return Ok((temp_path, file)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => last_error = Some(error),
            Err(error) => return Err(io_error(&temp_path)(error)),
        }
    }
    Err(BlobError::Io {
        path: fan_out.to_path_buf(),
        source: last_error.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)),
    })
}

/// Iterator returned by [`BlobStore::list`].
#[derive(Debug)]
pub struct BlobList {
    root: PathBuf,
    next_fan_out: u16,
    current: Option<(u8, PathBuf, ReadDir)>,
}

impl Iterator for BlobList {
    type Item = Result<(BlobHash, SystemTime), BlobError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let Some((first_byte, dir, entries)) = &mut self.current else {
                if self.next_fan_out >= FAN_OUT_DIRS {
                    return None;
                }
                let first_byte = self.next_fan_out as u8;
                self.next_fan_out += 1;
                let mut name = String::with_capacity(2);
                push_hex_byte(&mut name, first_byte);
                let dir = self.root.join(name);
                match fs::read_dir(&dir) {
                    Ok(entries) => self.current = Some((first_byte, dir, entries)),
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                    Err(error) => return Some(Err(io_error(&dir)(error))),
                }
                continue;
            };
            let entry = match entries.next() {
                None => {
                    self.current = None;
                    continue;
                }
                Some(Err(error)) => return Some(Err(io_error(dir)(error))),
                Some(Ok(entry)) => entry,
            };
            let path = entry.path();
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                tracing::warn!(path = %path.display(), "ignoring a file that is not a blob");
                continue;
            };
            let modified = match entry.metadata().and_then(|metadata| metadata.modified()) {
                Ok(modified) => modified,
                // Deleted between readdir and stat: nothing to report.
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => return Some(Err(io_error(&path)(error))),
            };
            if name.ends_with(TEMP_SUFFIX) {
                remove_if_stale(&path, modified);
                continue;
            }
            let hash = name
                .strip_suffix(BLOB_SUFFIX)
                .and_then(|stem| stem.parse::<BlobHash>().ok());
            match hash {
                Some(hash) if hash.0[0] == *first_byte => return Some(Ok((hash, modified))),
                _ => tracing::warn!(path = %path.display(), "ignoring a file that is not a blob"),
            }
        }
    }
}

fn remove_if_stale(temp_path: &Path, modified: SystemTime) {
    let age = SystemTime::now()
        .duration_since(modified)
        .unwrap_or(Duration::ZERO);
    if age < TEMP_FILE_STALE_AGE {
        return;
    }
    match fs::remove_file(temp_path) {
        Ok(()) => {
            tracing::info!(path = %temp_path.display(), ?age, "removed a stale temporary blob file")
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => {
            tracing::warn!(path = %temp_path.display(), %error, "cannot remove a stale temporary blob file")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngCore, SeedableRng};

    fn store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(&dir.path().join("blobs").join("0001")).expect("open");
        (dir, store)
    }

    fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        StdRng::seed_from_u64(seed).fill_bytes(&mut bytes);
        bytes
    }

    fn compressible_bytes(len: usize) -> Vec<u8> {
        let line = b"BT /F1 12 Tf 72 712 Td (Certificate of insurance, policy 4711) Tj ET\n";
        line.iter().copied().cycle().take(len).collect()
    }

    fn header_of(store: &BlobStore, hash: &BlobHash) -> Header {
        let bytes = fs::read(store.path_of(hash)).expect("read blob file");
        let header: &[u8; HEADER_LEN] = bytes.first_chunk().expect("header");
        Header::decode(header).expect("header decodes")
    }

    fn set_mtime(path: &Path, mtime: SystemTime) {
        File::options()
            .write(true)
            .open(path)
            .expect("open")
            .set_modified(mtime)
            .expect("set mtime");
    }

    fn mtime(path: &Path) -> SystemTime {
        fs::metadata(path)
            .expect("metadata")
            .modified()
            .expect("mtime")
    }

    fn corruption(result: Result<Vec<u8>, BlobError>) -> Corruption {
        match result {
            Err(BlobError::Corrupt { reason, .. }) => reason,
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    fn blob_files(store: &BlobStore) -> Vec<BlobHash> {
        let mut hashes: Vec<BlobHash> = store
            .list()
            .map(|item| item.expect("list item").0)
            .collect();
        hashes.sort();
        hashes
    }

    #[test]
    fn store_is_shareable_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<BlobStore>();
        assert_send_sync::<BlobError>();
    }

    #[test]
    fn io_errors_name_the_path() {
        let (_dir, store) = store();
        let hash = BlobHash::of(b"x");
        let fan_out = store.path_of(&hash).parent().expect("parent").to_path_buf();
        fs::remove_dir(&fan_out).expect("remove fan-out");
        fs::write(&fan_out, b"not a directory").expect("file in its place");
        match store.put(b"x") {
            Err(error @ BlobError::Io { .. }) => {
                assert!(
                    error.to_string().contains(&fan_out.display().to_string()),
                    "{error}"
                );
            }
            other => panic!("expected Io, got {other:?}"),
        }
    }

    #[test]
    fn roundtrip_small() {
        let (_dir, store) = store();
        let put = store.put(b"hello blob").expect("put");
        assert!(put.created);
        assert_eq!(put.raw_len, 10);
        assert_eq!(put.hash, BlobHash::of(b"hello blob"));
        // Too small to compress: stored raw.
        assert_eq!(put.stored_len, (HEADER_LEN + 10) as u64);
        assert_eq!(
            fs::metadata(store.path_of(&put.hash)).expect("file").len(),
            put.stored_len
        );
        assert_eq!(store.get(&put.hash).expect("get"), b"hello blob");
        assert!(store.contains(&put.hash));
    }

    #[test]
    fn roundtrip_empty() {
        let (_dir, store) = store();
        let put = store.put(b"").expect("put");
        // The well-known SHA-256 of the empty string.
        assert_eq!(
            put.hash.to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(put.stored_len, HEADER_LEN as u64);
        assert_eq!(store.get(&put.hash).expect("get"), Vec::<u8>::new());
    }

    #[test]
    fn roundtrip_incompressible_5mib_is_stored_raw() {
        let (_dir, store) = store();
        let bytes = random_bytes(5 << 20, 1);
        let put = store.put(&bytes).expect("put");
        assert_eq!(put.stored_len, (HEADER_LEN + bytes.len()) as u64);
        assert!(!header_of(&store, &put.hash).compressed);
        assert_eq!(store.get(&put.hash).expect("get"), bytes);
    }

    #[test]
    fn roundtrip_compressible_5mib_is_compressed() {
        let (_dir, store) = store();
        let bytes = compressible_bytes(5 << 20);
        let put = store.put(&bytes).expect("put");
        assert!(
            put.stored_len < (bytes.len() / 100) as u64,
            "stored {} bytes",
            put.stored_len
        );
        let header = header_of(&store, &put.hash);
        assert!(header.compressed);
        assert_eq!(header.raw_len, 5 << 20);
        assert_eq!(store.get(&put.hash).expect("get"), bytes);
    }

    #[test]
    fn header_layout_is_exact() {
        let hash = BlobHash::from_bytes([0xab; 32]);
        let encoded = Header {
            compressed: true,
            raw_len: 0x0102_0304_0506_0708,
            hash,
        }
        .encode();
        assert_eq!(&encoded[0..4], b"MBLB");
        assert_eq!(encoded[4], 1);
        assert_eq!(encoded[5], 1);
        assert_eq!(&encoded[6..14], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(&encoded[14..46], &[0xab; 32]);
    }

    #[test]
    fn put_twice_stores_once_and_refreshes_mtime() {
        let (_dir, store) = store();
        let bytes = compressible_bytes(100_000);
        let first = store.put(&bytes).expect("first put");
        let path = store.path_of(&first.hash);
        let old = SystemTime::now() - Duration::from_secs(2 * 60 * 60);
        set_mtime(&path, old);

        let second = store.put(&bytes).expect("second put");
        assert!(first.created);
        assert!(!second.created);
        assert_eq!(second.hash, first.hash);
        assert_eq!(second.stored_len, first.stored_len);
        assert_eq!(blob_files(&store), vec![first.hash]);
        let refreshed = mtime(&path);
        assert!(
            refreshed > old + Duration::from_secs(60 * 60),
            "mtime not refreshed: {refreshed:?}"
        );
    }

    #[test]
    fn concurrent_puts_of_the_same_bytes_store_one_file() {
        let (_dir, store) = store();
        let bytes = random_bytes(300_000, 7);
        let puts: Vec<BlobPut> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4).map(|_| scope.spawn(|| store.put(&bytes))).collect();
            handles
                .into_iter()
                .map(|handle| handle.join().expect("thread").expect("put"))
                .collect()
        });
        assert!(puts.iter().all(|put| put.hash == puts[0].hash));
        assert_eq!(blob_files(&store), vec![puts[0].hash]);
        let fan_out = store
            .path_of(&puts[0].hash)
            .parent()
            .expect("parent")
            .to_path_buf();
        assert_eq!(
            fs::read_dir(fan_out).expect("read_dir").count(),
            1,
            "no temporary files left"
        );
        assert_eq!(store.get(&puts[0].hash).expect("get"), bytes);
    }

    #[test]
    fn flipped_payload_byte_is_corrupt() {
        let (_dir, store) = store();
        for bytes in [random_bytes(10_000, 2), compressible_bytes(10_000)] {
            let put = store.put(&bytes).expect("put");
            let path = store.path_of(&put.hash);
            let mut file = fs::read(&path).expect("read");
            let last = file.len() - 1;
            file[HEADER_LEN + (last - HEADER_LEN) / 2] ^= 0x40;
            fs::write(&path, &file).expect("write");
            let error = store.get(&put.hash).expect_err("corrupt");
            let message = error.to_string();
            assert!(
                message.contains(&path.display().to_string()),
                "error names the file: {message}"
            );
            assert!(matches!(error, BlobError::Corrupt { .. }), "{error:?}");
        }
    }

    #[test]
    fn raw_payload_flip_reports_content_hash() {
        let (_dir, store) = store();
        let bytes = random_bytes(1000, 3);
        let put = store.put(&bytes).expect("put");
        let path = store.path_of(&put.hash);
        let mut file = fs::read(&path).expect("read");
        file[HEADER_LEN] ^= 1;
        fs::write(&path, &file).expect("write");
        let mut damaged = bytes.clone();
        damaged[0] ^= 1;
        assert_eq!(
            corruption(store.get(&put.hash)),
            Corruption::ContentHash {
                actual: BlobHash::of(&damaged)
            }
        );
    }

    #[test]
    fn truncated_files_are_corrupt() {
        let (_dir, store) = store();
        for bytes in [random_bytes(10_000, 4), compressible_bytes(10_000)] {
            let put = store.put(&bytes).expect("put");
            let path = store.path_of(&put.hash);
            let file = fs::read(&path).expect("read");
            fs::write(&path, &file[..file.len() - 1]).expect("truncate payload");
            corruption(store.get(&put.hash));
            fs::write(&path, &file[..20]).expect("truncate header");
            assert_eq!(
                corruption(store.get(&put.hash)),
                Corruption::HeaderTruncated { len: 20 }
            );
        }
    }

    #[test]
    fn wrong_magic_version_and_flags_are_corrupt() {
        let (_dir, store) = store();
        let put = store.put(&compressible_bytes(5000)).expect("put");
        let path = store.path_of(&put.hash);
        let good = fs::read(&path).expect("read");

        let mut file = good.clone();
        file[0..4].copy_from_slice(b"PK\x03\x04");
        fs::write(&path, &file).expect("write");
        assert_eq!(
            corruption(store.get(&put.hash)),
            Corruption::BadMagic {
                found: *b"PK\x03\x04"
            }
        );

        let mut file = good.clone();
        file[4] = 2;
        fs::write(&path, &file).expect("write");
        assert_eq!(
            corruption(store.get(&put.hash)),
            Corruption::UnsupportedVersion { version: 2 }
        );

        let mut file = good.clone();
        file[5] = 0b11;
        fs::write(&path, &file).expect("write");
        assert_eq!(
            corruption(store.get(&put.hash)),
            Corruption::UnknownFlags { flags: 0b11 }
        );

        let mut file = good;
        file[14] ^= 0xff;
        fs::write(&path, &file).expect("write");
        assert!(matches!(
            corruption(store.get(&put.hash)),
            Corruption::HeaderHash { .. }
        ));
    }

    #[test]
    fn hostile_raw_lengths_are_refused_before_allocating() {
        let (_dir, store) = store();
        let bytes = compressible_bytes(5000);
        let put = store.put(&bytes).expect("put");
        let path = store.path_of(&put.hash);
        let good = fs::read(&path).expect("read");

        // A header claiming more than the maximum.
        let mut file = good.clone();
        file[6..14].copy_from_slice(&u64::MAX.to_le_bytes());
        fs::write(&path, &file).expect("write");
        assert_eq!(
            corruption(store.get(&put.hash)),
            Corruption::RawLenTooLarge { raw_len: u64::MAX }
        );

        // A zip bomb: a small frame that expands to 64 MiB behind a header that says 5000.
        let bomb = zstd::bulk::compress(&vec![0u8; 64 << 20], 3).expect("compress");
        let mut file = good[..HEADER_LEN].to_vec();
        file.extend_from_slice(&bomb);
        fs::write(&path, &file).expect("write");
        assert_eq!(
            corruption(store.get(&put.hash)),
            Corruption::FrameContentSize {
                frame: Some(64 << 20),
                raw_len: 5000
            }
        );

        // The same bomb as a streamed frame that does not declare its size.
        let streamed = zstd::stream::encode_all(&vec![0u8; 64 << 20][..], 3).expect("compress");
        let mut file = good[..HEADER_LEN].to_vec();
        file.extend_from_slice(&streamed);
        fs::write(&path, &file).expect("write");
        assert!(matches!(
            corruption(store.get(&put.hash)),
            Corruption::FrameContentSize {
                frame: None,
                raw_len: 5000
            }
        ));
    }

    #[test]
    fn oversize_put_is_rejected() {
        let (_dir, store) = store();
        let len = usize::try_from(BLOB_BYTES_MAX + 1).expect("fits");
        let bytes = vec![0u8; len];
        match store.put(&bytes) {
            Err(BlobError::TooLarge { len, max }) => {
                assert_eq!(len, BLOB_BYTES_MAX + 1);
                assert_eq!(max, BLOB_BYTES_MAX);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert!(blob_files(&store).is_empty());
    }

    #[test]
    fn put_rewrites_a_damaged_existing_file() {
        let (_dir, store) = store();
        let bytes = random_bytes(4096, 5);
        let put = store.put(&bytes).expect("put");
        let path = store.path_of(&put.hash);
        fs::write(&path, b"MBLB garbage").expect("damage");
        let again = store.put(&bytes).expect("put again");
        assert!(again.created);
        assert_eq!(store.get(&put.hash).expect("get"), bytes);
    }

    #[test]
    fn copy_from_copies_bytes_verbatim_and_is_idempotent() {
        let (_dir_a, source) = store();
        let (_dir_b, target) = store();
        let bytes = compressible_bytes(200_000);
        let put = source.put(&bytes).expect("put");

        target.copy_from(&source, &put.hash).expect("copy");
        assert_eq!(
            fs::read(target.path_of(&put.hash)).expect("target file"),
            fs::read(source.path_of(&put.hash)).expect("source file")
        );
        assert_eq!(target.get(&put.hash).expect("get"), bytes);

        let path = target.path_of(&put.hash);
        let old = SystemTime::now() - Duration::from_secs(2 * 60 * 60);
        set_mtime(&path, old);
        target.copy_from(&source, &put.hash).expect("copy again");
        assert!(
            mtime(&path) > old + Duration::from_secs(60 * 60),
            "copy refreshes mtime"
        );
        assert_eq!(blob_files(&target), vec![put.hash]);
    }

    #[test]
    fn copy_from_refuses_missing_and_damaged_sources() {
        let (_dir_a, source) = store();
        let (_dir_b, target) = store();
        let missing = BlobHash::of(b"never stored");
        assert!(matches!(
            target.copy_from(&source, &missing),
            Err(BlobError::NotFound { .. })
        ));

        let put = source.put(&random_bytes(10_000, 6)).expect("put");
        let path = source.path_of(&put.hash);
        let mut file = fs::read(&path).expect("read");
        file[HEADER_LEN + 10] ^= 0x01;
        fs::write(&path, &file).expect("write");
        assert!(matches!(
            target.copy_from(&source, &put.hash),
            Err(BlobError::Corrupt { .. })
        ));
        assert!(!target.contains(&put.hash));
    }

    #[test]
    fn delete_removes_the_file() {
        let (_dir, store) = store();
        let put = store.put(b"to be deleted").expect("put");
        assert!(store.delete(&put.hash).expect("delete"));
        assert!(!store.contains(&put.hash));
        assert!(!store.delete(&put.hash).expect("delete again"));
        assert!(matches!(
            store.get(&put.hash),
            Err(BlobError::NotFound { .. })
        ));
    }

    #[test]
    fn delete_if_unmodified_since_respects_a_refresh() {
        let (_dir, store) = store();
        let put = store.put(b"gc candidate").expect("put");
        let path = store.path_of(&put.hash);
        let grace = Duration::from_secs(60 * 60);
        set_mtime(&path, SystemTime::now() - 2 * grace);

        // A re-upload refreshes the file: GC with a one-hour grace period must keep it.
        assert!(!store.put(b"gc candidate").expect("re-upload").created);
        assert!(
            !store
                .delete_if_unmodified_since(&put.hash, SystemTime::now() - grace)
                .expect("gc")
        );
        assert!(store.contains(&put.hash));

        set_mtime(&path, SystemTime::now() - 2 * grace);
        assert!(
            store
                .delete_if_unmodified_since(&put.hash, SystemTime::now() - grace)
                .expect("gc")
        );
        assert!(!store.contains(&put.hash));
        assert!(
            !store
                .delete_if_unmodified_since(&put.hash, SystemTime::now())
                .expect("gone")
        );
    }

    #[test]
    fn list_reports_blobs_and_cleans_stale_temp_files() {
        let (_dir, store) = store();
        let mut expected: Vec<BlobHash> = (0..20u64)
            .map(|n| store.put(&n.to_le_bytes()).expect("put").hash)
            .collect();
        expected.sort();

        let fan_out = store.dir().join("ab");
        let fresh_temp = fan_out.join(format!("{}.1.1.tmp", BlobHash::from_bytes([0xab; 32])));
        let stale_temp = fan_out.join(format!("{}.1.2.tmp", BlobHash::from_bytes([0xab; 32])));
        let stranger = fan_out.join("README");
        let misplaced = fan_out.join(format!("{}.blob", BlobHash::from_bytes([0xcd; 32])));
        for path in [&fresh_temp, &stale_temp, &stranger, &misplaced] {
            fs::write(path, b"x").expect("write");
        }
        set_mtime(
            &stale_temp,
            SystemTime::now() - TEMP_FILE_STALE_AGE - Duration::from_secs(60),
        );

        let listed: Vec<(BlobHash, SystemTime)> =
            store.list().map(|item| item.expect("item")).collect();
        let mut hashes: Vec<BlobHash> = listed.iter().map(|(hash, _)| *hash).collect();
        hashes.sort();
        assert_eq!(hashes, expected);
        for (hash, listed_mtime) in &listed {
            assert_eq!(*listed_mtime, mtime(&store.path_of(hash)));
        }
        assert!(fresh_temp.exists(), "a write in progress is left alone");
        assert!(!stale_temp.exists(), "a stale temporary file is removed");
        assert!(
            stranger.exists() && misplaced.exists(),
            "unknown files are left alone"
        );
    }

    #[test]
    fn open_creates_the_fan_out_and_rejects_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("a/b/blobs");
        let store = BlobStore::open(&root).expect("open");
        assert!(root.join("00").is_dir() && root.join("ff").is_dir());
        assert_eq!(fs::read_dir(&root).expect("read_dir").count(), 256);
        let put = store.put(b"persisted").expect("put");
        drop(store);
        let reopened = BlobStore::open(&root).expect("reopen");
        assert_eq!(reopened.get(&put.hash).expect("get"), b"persisted");

        let file = dir.path().join("plain-file");
        fs::write(&file, b"").expect("write");
        assert!(matches!(
            BlobStore::open(&file),
            Err(BlobError::NotADirectory { .. })
        ));
    }

    #[test]
    fn hex_roundtrip_and_rejections() {
        let hash = BlobHash::of(b"abc");
        let text = hash.to_string();
        assert_eq!(
            text,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(text.parse::<BlobHash>(), Ok(hash));
        assert_eq!(format!("{hash:?}"), format!("BlobHash({text})"));
        assert_eq!(
            store()
                .1
                .path_of(&hash)
                .file_name()
                .and_then(|n| n.to_str()),
            Some(&*format!("{text}.blob"))
        );

        assert_eq!(
            text[..63].parse::<BlobHash>(),
            Err(BlobHashParseError::Length { len: 63 })
        );
        assert_eq!(
            format!("{text}0").parse::<BlobHash>(),
            Err(BlobHashParseError::Length { len: 65 })
        );
        assert_eq!(
            "".parse::<BlobHash>(),
            Err(BlobHashParseError::Length { len: 0 })
        );
        let upper = text.to_uppercase();
        assert_eq!(
            upper.parse::<BlobHash>(),
            Err(BlobHashParseError::Digit {
                offset: 0,
                byte: b'B'
            })
        );
        let with_g = format!("{}g", &text[..63]);
        assert_eq!(
            with_g.parse::<BlobHash>(),
            Err(BlobHashParseError::Digit {
                offset: 63,
                byte: b'g'
            })
        );
        let multibyte = format!("é{}", &text[..62]);
        assert_eq!(multibyte.len(), 64);
        assert!(matches!(
            multibyte.parse::<BlobHash>(),
            Err(BlobHashParseError::Digit { offset: 0, .. })
        ));
        let spaced = format!(" {}", &text[..63]);
        assert!(spaced.parse::<BlobHash>().is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn any_bytes_roundtrip(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096), repeat in 1usize..64) {
            let (_dir, store) = store();
            let bytes: Vec<u8> = bytes.iter().copied().cycle().take(bytes.len() * repeat).collect();
            let put = store.put(&bytes).expect("put");
            proptest::prop_assert_eq!(put.hash, BlobHash::of(&bytes));
            proptest::prop_assert_eq!(store.get(&put.hash).expect("get"), bytes);
        }
    }
}
