//! A redb storage backend that takes a shard file's writes and syncs off the writer thread.
//!
//! A checkpoint is a durable redb commit: redb writes every page changed since the last one
//! (the non-durable commits keep them in memory) and syncs the file. Under a steady load of
//! 64 writers that was ~2,800 `pwrite`s and one large `fdatasync` every second, 30-100 ms during
//! which the shard's writer, and so every write to the shard, stood still.
//!
//! This backend accepts the writes into memory and returns; its own thread (the *flusher*)
//! writes them to the file later, in order. A `sync_data` from redb returns at once too: it
//! ends a *generation* of writes, and the flusher syncs the file after writing it. So redb's
//! commit returns when its pages are copied, and the writer learns from a [`SyncTicket`] when
//! the commit is really durable. Until then the shard's write-ahead log keeps every record the
//! checkpoint covers (`shard.rs`).
//!
//! Why this is as safe as redb's own synchronous I/O: the file receives the same writes and
//! syncs in the same order. The writes of one generation reach the file only after every
//! earlier generation is written *and synced*, so whatever a crash leaves on disk is what a
//! crash in the middle of one of redb's own durable commits could leave, which redb recovers
//! from (its commit is one-phase with checksums: a torn commit falls back to the one before,
//! whose pages redb never reuses before the next commit is durable, and no later write reaches
//! the file before that). Reads see the writes not yet in the file: they are laid over what the
//! file holds. After a failed write or sync, nothing more is written, and every later write and
//! sync fails, as they would after redb's own I/O failure.

use parking_lot::{Condvar, Mutex};
use redb::{BackendError, StorageBackend};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io;
use std::ops::Bound;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Upper bound on the bytes of writes waiting for the flusher, per shard. A write that would
/// pass it waits for the flusher. A checkpoint of a busy second is ~12 MiB on the development VM
/// (~3,000 pages), one of 4 MiB of log a quarter of that.
pub const WRITE_BEHIND_BYTES_MAX: usize = 256 << 20;
/// Bytes of writes gathered before they are handed to the flusher even without a sync (writes
/// between two syncs need no order among themselves).
const OPEN_BYTES_MAX: usize = 32 << 20;
/// Upper bound on the buffers kept for reuse (see [`BufferPool`]): 16 MiB of 4 KiB pages.
const SPARE_BUFFERS_MAX: usize = 4096;

/// Names one `sync_data` call: done once everything written before it is synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SyncTicket(u64);

/// The backend given to redb.
pub(crate) struct WriteBehind {
    shared: Arc<Shared>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

/// What the shard's writer keeps: the state of the syncs.
#[derive(Clone)]
pub(crate) struct WriteBehindHandle {
    shared: Arc<Shared>,
}

struct Shared {
    inner: Box<dyn StorageBackend>,
    state: Mutex<State>,
    /// Signalled when a step is queued or the backend is closed (the flusher waits on it).
    queued: Condvar,
    /// Signalled when the flusher finished a step or failed (syncs and writes wait on it).
    progressed: Condvar,
}

struct State {
    /// Writes since the last step was queued.
    open: Pages,
    /// Steps for the flusher, oldest first; the first one may be in progress. A step leaves the
    /// queue when it is done, so reads keep seeing its writes until the file holds them.
    steps: VecDeque<Arc<Step>>,
    /// Bytes of writes in `open` and `steps`, and in `open` alone.
    bytes: usize,
    open_bytes: usize,
    /// Buffers of written steps, for the next writes.
    pool: BufferPool,
    /// Length of the storage as redb sees it.
    len: u64,
    /// The last ticket handed out, and the last one done.
    syncs_asked: u64,
    syncs_done: u64,
    /// The first failure of the flusher; everything after fails with it.
    failure: Option<(io::ErrorKind, String)>,
    closing: bool,
}

enum Step {
    Write(Pages),
    /// A resize queued behind earlier writes: a shrink, or a growth after a queued shrink.
    SetLen(u64),
    Sync(u64),
}

impl State {
    fn failed(&self) -> io::Result<()> {
        match &self.failure {
            Some((kind, message)) => Err(io::Error::new(*kind, message.clone())),
            None => Ok(()),
        }
    }

    /// Hands the open writes (if any) to the flusher.
    fn queue_open(&mut self) {
        if !self.open.map.is_empty() {
            let pages = std::mem::take(&mut self.open);
            self.open_bytes = 0;
            self.steps.push_back(Arc::new(Step::Write(pages)));
        }
    }
}

/// Buffers of written pages, reused for the next writes. A checkpoint copies ~3,000 pages; each
/// one in a fresh allocation cost ~10 us (mostly page faults on memory the allocator had given
/// back), 30 ms per checkpoint on the writer thread.
#[derive(Default)]
struct BufferPool {
    spare: Vec<Vec<u8>>,
}

impl BufferPool {
    fn copy_of(&mut self, data: &[u8]) -> Vec<u8> {
        let mut buffer = self.spare.pop().unwrap_or_default();
        buffer.clear();
        buffer.extend_from_slice(data);
        buffer
    }

    fn give(&mut self, buffer: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS_MAX {
            self.spare.push(buffer);
        }
    }
}

/// Writes keyed by offset, never overlapping (a later write replaces what it covers).
#[derive(Default)]
struct Pages {
    map: BTreeMap<u64, Vec<u8>>,
}

impl Pages {
    /// Offsets of the writes that overlap `start..end`, highest first.
    fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = (&u64, &Vec<u8>)> {
        // Writes do not overlap, so their ends rise with their starts: going down from the last
        // write that starts before `end`, the overlapping ones come first.
        self.map
            .range(..end)
            .rev()
            .take_while(move |(offset, data)| **offset + data.len() as u64 > start)
    }

    /// Adds a write; returns the bytes held before and after.
    fn insert(&mut self, offset: u64, data: &[u8]) -> (usize, usize) {
        self.insert_from(offset, data, &mut BufferPool::default())
    }

    /// [`Pages::insert`] with buffers from (and replaced ones back to) `pool`.
    fn insert_from(&mut self, offset: u64, data: &[u8], pool: &mut BufferPool) -> (usize, usize) {
        // The common case: redb writes the same page again.
        if let Some(existing) = self.map.get_mut(&offset)
            && existing.len() == data.len()
        {
            existing.copy_from_slice(data);
            return (data.len(), data.len());
        }
        let end = offset + data.len() as u64;
        let covered: Vec<u64> = self.overlapping(offset, end).map(|(o, _)| *o).collect();
        let (mut before, mut after) = (0, data.len());
        for start in covered {
            let Some(old) = self.map.remove(&start) else {
                continue;
            };
            before += old.len();
            let old_end = start + old.len() as u64;
            if start < offset {
                let head = old[..(offset - start) as usize].to_vec();
                after += head.len();
                self.map.insert(start, head);
            }
            if old_end > end {
                let tail = old[(end - start) as usize..].to_vec();
                after += tail.len();
                self.map.insert(end, tail);
            }
            pool.give(old);
        }
        self.map.insert(offset, pool.copy_of(data));
        (before, after)
    }

    /// Adds (copies of) the parts of `other`'s writes inside `start..end`.
    fn copy_range(&mut self, other: &Pages, start: u64, end: u64) {
        let pieces: Vec<(u64, &[u8])> = other
            .overlapping(start, end)
            .map(|(at, data)| {
                let from = start.max(*at);
                let to = end.min(*at + data.len() as u64);
                (from, &data[(from - at) as usize..(to - at) as usize])
            })
            .collect();
        for (from, data) in pieces {
            self.insert(from, data);
        }
    }

    /// Copies what these writes hold of `offset..offset + out.len()` into `out`; returns the
    /// bytes covered.
    fn lay_over(&self, offset: u64, out: &mut [u8]) -> u64 {
        let end = offset + out.len() as u64;
        let mut covered = 0;
        for (start, data) in self.overlapping(offset, end) {
            let from = offset.max(*start);
            let to = end.min(*start + data.len() as u64);
            out[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&data[(from - start) as usize..(to - start) as usize]);
            covered += to - from;
        }
        covered
    }

    /// Drops what lies at or after `len`; returns the bytes held before and after.
    fn truncate(&mut self, len: u64) -> (usize, usize) {
        let cut: Vec<u64> = self.overlapping(len, u64::MAX).map(|(o, _)| *o).collect();
        let (mut before, mut after) = (0, 0);
        for start in cut {
            let Some(mut old) = self.map.remove(&start) else {
                continue;
            };
            before += old.len();
            if start < len {
                old.truncate((len - start) as usize);
                after += old.len();
                self.map.insert(start, old);
            }
        }
        (before, after)
    }
}

impl WriteBehind {
    /// Starts the flusher for `inner`. The handle tells the shard's writer when syncs are done.
    pub(crate) fn start(
        inner: Box<dyn StorageBackend>,
        name: String,
    ) -> io::Result<(WriteBehind, WriteBehindHandle)> {
        let len = inner.len()?;
        let shared = Arc::new(Shared {
            inner,
            state: Mutex::new(State {
                open: Pages::default(),
                steps: VecDeque::new(),
                bytes: 0,
                open_bytes: 0,
                pool: BufferPool::default(),
                len,
                syncs_asked: 0,
                syncs_done: 0,
                failure: None,
                closing: false,
            }),
            queued: Condvar::new(),
            progressed: Condvar::new(),
        });
        let flusher_shared = Arc::clone(&shared);
        let flusher = std::thread::Builder::new()
            .name(name)
            .spawn(move || flusher_shared.flush_until_closed())?;
        Ok((
            WriteBehind {
                shared: Arc::clone(&shared),
                flusher: Mutex::new(Some(flusher)),
            },
            WriteBehindHandle { shared },
        ))
    }
}

impl Shared {
    fn flush_until_closed(&self) {
        let mut state = self.state.lock();
        loop {
            let step = match state.steps.front() {
                Some(step) if state.failure.is_none() => Arc::clone(step),
                _ if state.closing => return,
                _ => {
                    self.queued.wait(&mut state);
                    continue;
                }
            };
            drop(state);
            let result = match &*step {
                Step::Write(pages) => pages
                    .map
                    .iter()
                    .try_for_each(|(offset, data)| self.inner.write(*offset, data)),
                Step::SetLen(len) => self.inner.set_len(*len),
                Step::Sync(_) => self.inner.sync_data(),
            };
            state = self.state.lock();
            match result {
                Ok(()) => {
                    state.steps.pop_front();
                    match Arc::try_unwrap(step) {
                        Ok(Step::Write(pages)) => {
                            for buffer in pages.map.into_values() {
                                state.bytes -= buffer.len();
                                state.pool.give(buffer);
                            }
                        }
                        // Readers hold no step (they copy what they need under the lock), so
                        // this is only for completeness.
                        Err(step) => match &*step {
                            Step::Write(pages) => {
                                state.bytes -= pages.map.values().map(Vec::len).sum::<usize>();
                            }
                            Step::Sync(ticket) => state.syncs_done = *ticket,
                            Step::SetLen(_) => {}
                        },
                        Ok(Step::Sync(ticket)) => state.syncs_done = ticket,
                        Ok(Step::SetLen(_)) => {}
                    }
                }
                Err(error) => {
                    // Nothing more is written: the steps stay queued so that reads still see
                    // them, and every later write and sync fails.
                    tracing::error!(%error, "writing a shard file failed");
                    state.failure = Some((error.kind(), error.to_string()));
                }
            }
            self.progressed.notify_all();
        }
    }
}

impl WriteBehindHandle {
    /// The ticket of the last `sync_data`: done once everything redb wrote before it is durable.
    pub(crate) fn last_sync(&self) -> SyncTicket {
        SyncTicket(self.shared.state.lock().syncs_asked)
    }

    /// `None` while the sync is pending.
    pub(crate) fn poll(&self, ticket: SyncTicket) -> Option<io::Result<()>> {
        let state = self.shared.state.lock();
        if let Err(error) = state.failed() {
            return Some(Err(error));
        }
        (state.syncs_done >= ticket.0).then_some(Ok(()))
    }

    /// Waits until the sync is done.
    pub(crate) fn wait(&self, ticket: SyncTicket) -> io::Result<()> {
        let mut state = self.shared.state.lock();
        loop {
            state.failed()?;
            if state.syncs_done >= ticket.0 {
                return Ok(());
            }
            self.shared.progressed.wait(&mut state);
        }
    }
}

impl fmt::Debug for WriteBehind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("WriteBehind")
            .field("inner", &self.shared.inner)
            .field("steps", &state.steps.len())
            .field("bytes", &state.bytes)
            .finish()
    }
}

impl StorageBackend for WriteBehind {
    fn len(&self) -> Result<u64, io::Error> {
        Ok(self.shared.state.lock().len)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        // What the queued and open writes hold of the range, copied out under the lock in queue
        // order (a later write replaces an earlier one, a queued shrink drops what lies past
        // it), then laid over the file's bytes.
        let end = offset + out.len() as u64;
        let mut cover = Pages::default();
        // Past a queued shrink the bytes read as zeros, whatever the file still holds there.
        let mut zero_from = u64::MAX;
        {
            let state = self.shared.state.lock();
            for step in &state.steps {
                match &**step {
                    Step::Write(pages) => cover.copy_range(pages, offset, end),
                    Step::SetLen(len) => {
                        cover.truncate(*len);
                        zero_from = zero_from.min(*len);
                    }
                    Step::Sync(_) => {}
                }
            }
            cover.copy_range(&state.open, offset, end);
        }
        let covered: usize = cover.map.values().map(Vec::len).sum();
        if covered < out.len() {
            let file_end = end.min(zero_from.max(offset));
            let (from_file, zeros) = out.split_at_mut((file_end - offset) as usize);
            if !from_file.is_empty() {
                self.shared.inner.read(offset, from_file)?;
            }
            zeros.fill(0);
        }
        cover.lay_over(offset, out);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let mut state = self.shared.state.lock();
        state.failed()?;
        let resize_queued = state
            .steps
            .iter()
            .any(|step| matches!(**step, Step::SetLen(_)));
        if len >= state.len && !resize_queued {
            // Growing needs no order with the queued writes (they lie inside the file, or
            // extend it anyway), and reads may need the length at once.
            self.shared.inner.set_len(len)?;
        } else {
            // A shrink (redb trims trailing free space at some durable commits) must follow the
            // queued writes, or they would extend the file again; so must a growth after it.
            let (before, after) = state.open.truncate(len);
            state.bytes = state.bytes - before + after;
            state.open_bytes = state.open_bytes - before + after;
            state.queue_open();
            state.steps.push_back(Arc::new(Step::SetLen(len)));
            self.shared.queued.notify_one();
        }
        state.len = len;
        Ok(())
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        let mut state = self.shared.state.lock();
        state.failed()?;
        state.syncs_asked += 1;
        let ticket = state.syncs_asked;
        state.queue_open();
        state.steps.push_back(Arc::new(Step::Sync(ticket)));
        self.shared.queued.notify_one();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let mut state = self.shared.state.lock();
        loop {
            state.failed()?;
            if state.bytes + data.len() <= WRITE_BEHIND_BYTES_MAX || state.steps.is_empty() {
                break;
            }
            self.shared.progressed.wait(&mut state);
        }
        let state = &mut *state;
        let (before, after) = state.open.insert_from(offset, data, &mut state.pool);
        state.bytes = state.bytes - before + after;
        state.open_bytes = state.open_bytes - before + after;
        state.len = state.len.max(offset + data.len() as u64);
        if state.open_bytes >= OPEN_BYTES_MAX {
            state.queue_open();
            self.shared.queued.notify_one();
        }
        Ok(())
    }

    /// Writes and syncs everything still queued, then closes the file.
    fn close(&self) -> Result<(), io::Error> {
        let result = {
            let mut state = self.shared.state.lock();
            // Writes after the last sync: redb does not need them durable, but the file should
            // hold them.
            state.queue_open();
            state.closing = true;
            self.shared.queued.notify_one();
            while !state.steps.is_empty() && state.failure.is_none() {
                self.shared.progressed.wait(&mut state);
            }
            state.failed()
        };
        if let Some(flusher) = self.flusher.lock().take()
            && flusher.join().is_err()
        {
            tracing::error!("a shard file's flusher thread panicked");
        }
        result.and(self.shared.inner.close())
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.shared.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.shared.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.shared.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.shared.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.shared.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.shared.inner.query_lock_range(start, end)
    }
}

impl Drop for WriteBehind {
    /// Stops the flusher if redb never called `close` (a failed open).
    fn drop(&mut self) {
        self.shared.state.lock().closing = true;
        self.shared.queued.notify_one();
        if let Some(flusher) = self.flusher.lock().take()
            && flusher.join().is_err()
        {
            tracing::error!("a shard file's flusher thread panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use redb::backends::FileBackend;
    use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

    /// A real file backend that records the order of the operations reaching it, and that holds
    /// them while a test keeps its gate shut.
    #[derive(Debug)]
    struct Recorded {
        inner: FileBackend,
        ops: Arc<Mutex<Vec<String>>>,
        gate: Arc<(Mutex<bool>, Condvar)>,
    }

    impl Recorded {
        fn wait_for_gate(&self) {
            let (open, opened) = &*self.gate;
            let mut open = open.lock();
            while !*open {
                opened.wait(&mut open);
            }
        }
    }

    impl StorageBackend for Recorded {
        fn len(&self) -> io::Result<u64> {
            self.inner.len()
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
            self.inner.read(offset, out)
        }
        fn set_len(&self, len: u64) -> io::Result<()> {
            self.ops.lock().push(format!("len {len}"));
            self.inner.set_len(len)
        }
        fn sync_data(&self) -> io::Result<()> {
            self.wait_for_gate();
            self.ops.lock().push("sync".into());
            self.inner.sync_data()
        }
        fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
            self.wait_for_gate();
            self.ops.lock().push(format!("write {offset}"));
            self.inner.write(offset, data)
        }
        fn close(&self) -> io::Result<()> {
            self.inner.close()
        }
        fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
            self.inner.try_lock_range(start, end)
        }
        fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
            self.inner.unlock_range(start, end)
        }
    }

    type Gate = Arc<(Mutex<bool>, Condvar)>;

    fn recorded(
        path: &std::path::Path,
    ) -> (
        WriteBehind,
        WriteBehindHandle,
        Arc<Mutex<Vec<String>>>,
        Gate,
    ) {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .unwrap();
        let ops = Arc::new(Mutex::new(Vec::new()));
        let gate: Gate = Arc::new((Mutex::new(true), Condvar::new()));
        let inner = Recorded {
            inner: FileBackend::new(file).unwrap(),
            ops: Arc::clone(&ops),
            gate: Arc::clone(&gate),
        };
        let (backend, handle) = WriteBehind::start(Box::new(inner), "flush-test".into()).unwrap();
        (backend, handle, ops, gate)
    }

    fn set_gate(gate: &Gate, open: bool) {
        *gate.0.lock() = open;
        gate.1.notify_all();
    }

    const ROWS: TableDefinition<u64, &[u8]> = TableDefinition::new("rows");

    #[test]
    fn a_durable_commit_returns_before_its_sync_and_reads_see_it_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.redb");
        let (backend, handle, _ops, gate) = recorded(&path);
        // A tiny cache, so that reads go to the backend.
        let db = Database::builder()
            .set_cache_size(0)
            .create_with_backend(backend)
            .unwrap();
        set_gate(&gate, false);
        let txn = db.begin_write().unwrap();
        {
            let mut rows = txn.open_table(ROWS).unwrap();
            for k in 0..2_000u64 {
                rows.insert(k, vec![(k % 251) as u8; 300].as_slice())
                    .unwrap();
            }
        }
        txn.commit().unwrap();
        let ticket = handle.last_sync();
        assert!(
            handle.poll(ticket).is_none(),
            "nothing reached the file yet"
        );
        let read = db.begin_read().unwrap();
        let rows = read.open_table(ROWS).unwrap();
        for k in (0..2_000u64).step_by(97) {
            assert_eq!(
                rows.get(k).unwrap().unwrap().value(),
                vec![(k % 251) as u8; 300].as_slice()
            );
        }
        drop((rows, read));
        set_gate(&gate, true);
        handle.wait(ticket).unwrap();
        assert!(matches!(handle.poll(ticket), Some(Ok(()))));
        drop(db);
        // The file alone holds everything.
        let db = Database::open(&path).unwrap();
        let read = db.begin_read().unwrap();
        let rows = read.open_table(ROWS).unwrap();
        assert_eq!(rows.iter().unwrap().count(), 2_000);
        assert_eq!(
            rows.get(1_999).unwrap().unwrap().value(),
            vec![(1_999 % 251) as u8; 300].as_slice()
        );
    }

    #[test]
    fn writes_reach_the_file_in_generations_each_ended_by_its_sync() {
        let dir = tempfile::tempdir().unwrap();
        let (backend, handle, ops, gate) = recorded(&dir.path().join("x"));
        set_gate(&gate, false);
        backend.set_len(3 * 4096).unwrap();
        backend.write(4096, &[1; 4096]).unwrap();
        backend.write(0, &[2; 4096]).unwrap();
        backend.sync_data().unwrap();
        let first = handle.last_sync();
        backend.write(8192, &[3; 4096]).unwrap();
        backend.write(4096, &[4; 4096]).unwrap();
        backend.sync_data().unwrap();
        let second = handle.last_sync();
        backend.write(0, &[5; 100]).unwrap();
        let mut out = vec![0; 3 * 4096];
        backend.read(0, &mut out).unwrap();
        assert!(out[..100].iter().all(|b| *b == 5));
        assert!(out[100..4096].iter().all(|b| *b == 2));
        assert!(out[4096..8192].iter().all(|b| *b == 4));
        assert!(out[8192..].iter().all(|b| *b == 3));
        set_gate(&gate, true);
        handle.wait(second).unwrap();
        assert!(first < second);
        assert_eq!(
            *ops.lock(),
            vec![
                "len 12288",
                "write 0",
                "write 4096",
                "sync",
                "write 4096",
                "write 8192",
                "sync",
            ]
        );
        // Closing writes the rest.
        backend.close().unwrap();
        assert_eq!(ops.lock().last().map(String::as_str), Some("write 0"));
    }

    #[test]
    fn a_shrink_waits_behind_the_queued_writes_and_reads_follow_it() {
        let dir = tempfile::tempdir().unwrap();
        let (backend, handle, ops, gate) = recorded(&dir.path().join("x"));
        set_gate(&gate, false);
        backend.set_len(4 * 4096).unwrap();
        backend.write(3 * 4096, &[7; 4096]).unwrap();
        backend.write(0, &[1; 4096]).unwrap();
        backend.sync_data().unwrap();
        // Shrunk, then grown again: the bytes past the shrink read as zeros, not as the queued
        // write there, which the file still lacks anyway.
        backend.set_len(2 * 4096).unwrap();
        backend.set_len(4 * 4096).unwrap();
        assert_eq!(backend.len().unwrap(), 4 * 4096);
        let mut out = vec![0xEE; 4 * 4096];
        backend.read(0, &mut out).unwrap();
        assert!(out[..4096].iter().all(|b| *b == 1));
        assert!(out[4096..].iter().all(|b| *b == 0));
        backend.write(3 * 4096, &[9; 100]).unwrap();
        backend.read(0, &mut out).unwrap();
        assert!(out[3 * 4096..3 * 4096 + 100].iter().all(|b| *b == 9));
        assert!(out[3 * 4096 + 100..].iter().all(|b| *b == 0));
        backend.sync_data().unwrap();
        set_gate(&gate, true);
        handle.wait(handle.last_sync()).unwrap();
        assert_eq!(
            *ops.lock(),
            vec![
                "len 16384",
                "write 0",
                "write 12288",
                "sync",
                "len 8192",
                "len 16384",
                "write 12288",
                "sync",
            ]
        );
        backend.close().unwrap();
    }

    #[test]
    fn after_a_failed_sync_nothing_more_is_written_and_everything_fails() {
        #[derive(Debug)]
        struct FailingSync(FileBackend);
        impl StorageBackend for FailingSync {
            fn len(&self) -> io::Result<u64> {
                self.0.len()
            }
            fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
                self.0.read(offset, out)
            }
            fn set_len(&self, len: u64) -> io::Result<()> {
                self.0.set_len(len)
            }
            fn sync_data(&self) -> io::Result<()> {
                Err(io::Error::other("the disk failed"))
            }
            fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
                self.0.write(offset, data)
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.path().join("x"))
            .unwrap();
        let (backend, handle) = WriteBehind::start(
            Box::new(FailingSync(FileBackend::new(file).unwrap())),
            "t".into(),
        )
        .unwrap();
        backend.set_len(8192).unwrap();
        backend.write(0, &[1; 4096]).unwrap();
        backend.sync_data().unwrap();
        let ticket = handle.last_sync();
        let err = handle.wait(ticket).unwrap_err();
        assert!(err.to_string().contains("the disk failed"), "{err}");
        assert!(backend.write(4096, &[2; 4096]).is_err());
        assert!(backend.sync_data().is_err());
        // What was written stays readable.
        let mut out = vec![0; 4096];
        backend.read(0, &mut out).unwrap();
        assert!(out.iter().all(|b| *b == 1));
        assert!(backend.close().is_err());
    }

    #[derive(Debug, Clone)]
    enum PageOp {
        Write(u64, usize, u8),
        Truncate(u64),
    }

    fn page_op() -> impl Strategy<Value = PageOp> {
        prop_oneof![
            8 => (0..16_384u64, 1..6_000usize, any::<u8>()).prop_map(|(o, l, b)| PageOp::Write(o, l, b)),
            1 => (0..20_000u64).prop_map(PageOp::Truncate),
        ]
    }

    proptest! {
        /// Writes laid over a file read as the same bytes as a plain byte array written the same
        /// way (what a file would hold).
        #[test]
        fn pages_match_a_byte_array(ops in proptest::collection::vec(page_op(), 1..40)) {
            let mut pages = Pages::default();
            let mut model: Vec<Option<u8>> = vec![None; 24_000];
            let mut held = 0usize;
            for op in &ops {
                match *op {
                    PageOp::Write(offset, len, byte) => {
                        let (before, after) = pages.insert(offset, &vec![byte; len]);
                        held = held - before + after;
                        for b in &mut model[offset as usize..offset as usize + len] {
                            *b = Some(byte);
                        }
                    }
                    PageOp::Truncate(len) => {
                        let (before, after) = pages.truncate(len);
                        held = held - before + after;
                        for b in &mut model[len as usize..] {
                            *b = None;
                        }
                    }
                }
            }
            prop_assert_eq!(held, pages.map.values().map(Vec::len).sum::<usize>());
            prop_assert_eq!(held, model.iter().filter(|b| b.is_some()).count());
            let mut out = vec![0xEE; model.len()];
            let covered = pages.lay_over(0, &mut out);
            prop_assert_eq!(covered as usize, held);
            for (i, (got, want)) in out.iter().zip(&model).enumerate() {
                prop_assert_eq!(*got, want.unwrap_or(0xEE), "byte {}", i);
            }
            // Writes never overlap.
            let mut end = 0;
            for (start, data) in &pages.map {
                prop_assert!(*start >= end);
                end = start + data.len() as u64;
            }
        }
    }
}
