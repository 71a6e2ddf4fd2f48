//! Failure injection: a redb backend (and the shard's write-ahead log) that start failing on
//! command, so tests can prove that an I/O error on commit fails the waiting callers and
//! leaves the files consistent.
//!
//! It is part of the shipped crate (not a test double): it wraps the real file backend, is
//! consulted by the real write-ahead log before each write, resize and sync, and does nothing
//! unless a test arms it.

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};
use std::fs::File;
use std::io;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A named failure-injection point shared by the shards it is given to.
#[derive(Debug, Default)]
pub struct FaultInjector {
    armed: AtomicBool,
    /// Syncs still to fail while `armed` is off (writes succeed).
    syncs_to_fail: AtomicU64,
    injected: AtomicU64,
}

/// The kind of file operation the injector is asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileOp {
    Write,
    Resize,
    Sync,
}

impl FaultInjector {
    pub fn new() -> Arc<Self> {
        Arc::new(FaultInjector::default())
    }
    /// From now on every write and sync fails with "no space left on device".
    pub fn fail_writes(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }
    /// The next `n` syncs (`fdatasync` of a shard file or of a write-ahead log) fail with an
    /// I/O error; writes still succeed. Stands for a disk that took the bytes and then failed
    /// to make them durable.
    pub fn fail_next_syncs(&self, n: u64) {
        self.syncs_to_fail.store(n, Ordering::SeqCst);
    }
    pub fn heal(&self) {
        self.armed.store(false, Ordering::SeqCst);
        self.syncs_to_fail.store(0, Ordering::SeqCst);
    }
    /// How many operations failed because of the injector.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }
    pub(crate) fn check(&self, op: FileOp) -> io::Result<()> {
        if self.armed.load(Ordering::SeqCst) {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        if op == FileOp::Sync
            && self
                .syncs_to_fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        Ok(())
    }
}

#[derive(Debug)]
pub(crate) struct FaultyBackend {
    inner: FileBackend,
    injector: Arc<FaultInjector>,
}

impl FaultyBackend {
    pub(crate) fn new(
        file: File,
        injector: Arc<FaultInjector>,
    ) -> Result<Self, redb::DatabaseError> {
        Ok(FaultyBackend {
            inner: FileBackend::new(file)?,
            injector,
        })
    }
}

impl StorageBackend for FaultyBackend {
    fn len(&self) -> Result<u64, io::Error> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.injector.check(FileOp::Resize)?;
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> Result<(), io::Error> {
        self.injector.check(FileOp::Sync)?;
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.injector.check(FileOp::Write)?;
        self.inner.write(offset, data)
    }
    fn close(&self) -> Result<(), io::Error> {
        self.inner.close()
    }
    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }
    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }
    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }
    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }
    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }
    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}
