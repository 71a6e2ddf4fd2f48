//! Benchmarks of the storage engine (`mercato-storage`), with plain redb as the baseline for
//! durable writes. Results and how to read them: `docs/benchmarks.md`.
//!
//! ```text
//! cargo bench --bench storage                     # everything, ~1.5 minutes on 2 cores
//! cargo bench --bench storage -- group_commit     # one group (criterion filter)
//! cargo bench --bench storage -- --pairs          # the 64-writer ratio in paired rounds
//! ```
//!
//! Every benchmark opens its own data directory in a fresh temp dir (on the disk that holds
//! `/tmp`; set `TMPDIR` to measure another disk), so the durable-write numbers include real
//! `fdatasync`s. The machines are shared and noisy: compare numbers as ratios within one run,
//! never across runs.
//!
//! After each group-commit benchmark a line on stderr gives the writes done in total and the
//! latency of one write as its caller saw it (p50, p99, p99.9, max over every write, warm-up
//! included). Divided by the commits, counted from outside, it is the mean batch
//! size; redb makes one `fdatasync` per durable commit, so on a filtered run:
//! `perf record -e syscalls:sys_enter_fdatasync <bench binary> --bench 'group_commit/engine_1shard/64$'`
//! then `perf report --sort comm` (the shard writer threads are `shard-NNNN-writ`).

use criterion::measurement::WallTime;
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group};
use mercato_storage::{
    ApplyError, Command, Record, Storage, StorageConfig, TableDef, TenantId, TenantReads,
    TenantWrite,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redb::{Database, Durability, TableDefinition};
use serde::{Deserialize, Serialize};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tempfile::TempDir;

/// Bytes of the value of every row written or read.
const VALUE_BYTES: usize = 200;
/// Rows of the table the read benchmarks use.
const READ_ROWS: u64 = 100_000;
/// Rows one fill command writes while the read table is built.
const FILL_ROWS_PER_COMMAND: u64 = 1_000;
/// Rows per range scan.
const SCAN_ROWS: usize = 100;
/// Concurrent writer threads of the group-commit benchmarks.
const WRITERS: [usize; 3] = [1, 8, 64];
/// Random read keys drawn up front, so the timed loop does no random-number work.
const READ_KEYS: usize = 4096;

// ---------------------------------------------------------------------------------------------
// The command set: one row put (the write benchmarks) and a bulk fill (building the read table).

#[derive(Serialize, Deserialize, Clone, Debug)]
struct Row {
    #[serde(with = "mercato_storage::envelope::byte_string")]
    data: Vec<u8>,
}
impl Record for Row {
    const KIND: u16 = 100;
    const VERSION: u16 = 1;
}

/// One table, keyed by 16-byte (u128) keys: `row_key` for the read table, time-ordered keys
/// (`time_key`) for the write benchmarks.
const TABLE: TableDef<u128, Row> = TableDef::new(1, "rows");

#[derive(Serialize, Deserialize, Clone, Debug)]
enum BenchCommand {
    /// One row.
    Put {
        tenant: u64,
        key: u128,
        #[serde(with = "mercato_storage::envelope::byte_string")]
        data: Vec<u8>,
    },
    /// Rows `first..first + count` with `fill_value` values.
    Fill { tenant: u64, first: u64, count: u64 },
}
impl Record for BenchCommand {
    const KIND: u16 = 101;
    const VERSION: u16 = 1;
}

impl Command for BenchCommand {
    type Output = ();
    type Rejection = ();

    fn tenant(&self) -> TenantId {
        match *self {
            BenchCommand::Put { tenant, .. } | BenchCommand::Fill { tenant, .. } => {
                TenantId(tenant)
            }
        }
    }

    fn apply(&self, tx: &mut TenantWrite<'_>) -> Result<(), ApplyError<()>> {
        match self {
            BenchCommand::Put { key, data, .. } => {
                tx.put(&TABLE, key, &Row { data: data.clone() })?;
            }
            BenchCommand::Fill { first, count, .. } => {
                for i in *first..*first + *count {
                    tx.put(
                        &TABLE,
                        &row_key(i),
                        &Row {
                            data: fill_value(i),
                        },
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// Key of the `i`-th row of the read table.
fn row_key(i: u64) -> u128 {
    u128::from(i)
}

fn fill_value(i: u64) -> Vec<u8> {
    (0..VALUE_BYTES).map(|j| (i as usize + j) as u8).collect()
}

/// A time-ordered 16-byte key, as a UUIDv7-like id would be: wall-clock nanoseconds, then the
/// writer and its sequence number (so keys are unique even within one nanosecond).
fn time_key(writer: usize, seq: u64) -> u128 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (u128::from(nanos) << 64) | ((writer as u128) << 40) | u128::from(seq)
}

fn writer_value(writer: usize) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(writer as u64);
    (0..VALUE_BYTES).map(|_| rng.random()).collect()
}

fn open_engine(dir: &TempDir, shards: u16) -> Storage<BenchCommand> {
    let mut config = StorageConfig::new(dir.path());
    config.shards_initial = shards;
    Storage::open(config).expect("open storage")
}

/// One tenant per writer thread, spread round-robin over the engine's shards.
fn writer_tenants(storage: &Storage<BenchCommand>, writers: usize) -> Vec<u64> {
    let shards = storage.shard_ids();
    let mut next = 1_000u64;
    (0..writers)
        .map(|w| {
            let want = shards[w % shards.len()];
            let tenant = (next..)
                .find(|t| storage.shard_of(TenantId(*t)) == want)
                .expect("some tenant maps to every shard");
            next = tenant + 1;
            tenant
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Reads.

struct ReadFixture {
    _dir: TempDir,
    storage: Storage<BenchCommand>,
    tenant: TenantId,
    /// Random existing row numbers.
    rows: Vec<u64>,
}

impl ReadFixture {
    fn new() -> ReadFixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = open_engine(&dir, 1);
        let tenant = 7;
        for first in (0..READ_ROWS).step_by(FILL_ROWS_PER_COMMAND as usize) {
            storage
                .execute_blocking(BenchCommand::Fill {
                    tenant,
                    first,
                    count: FILL_ROWS_PER_COMMAND.min(READ_ROWS - first),
                })
                .expect("fill");
        }
        let mut rng = StdRng::seed_from_u64(42);
        let rows = (0..READ_KEYS)
            .map(|_| rng.random_range(0..READ_ROWS))
            .collect();
        ReadFixture {
            _dir: dir,
            storage,
            tenant: TenantId(tenant),
            rows,
        }
    }
}

fn reads(c: &mut Criterion) {
    let mut fixture: Option<ReadFixture> = None;

    let mut group = c.benchmark_group("point_get");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .throughput(Throughput::Elements(1));
    group.bench_function("read_then_get", |b| {
        let f = fixture.get_or_insert_with(ReadFixture::new);
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % f.rows.len();
            let key = row_key(f.rows[i]);
            let row = f
                .storage
                .read(f.tenant)
                .expect("read")
                .get(&TABLE, &key)
                .expect("get");
            black_box(row.expect("row exists"))
        });
    });
    group.bench_function("snapshot_get", |b| {
        let f = fixture.get_or_insert_with(ReadFixture::new);
        let snapshot = f.storage.read(f.tenant).expect("read");
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % f.rows.len();
            let row = snapshot.get(&TABLE, &row_key(f.rows[i])).expect("get");
            black_box(row.expect("row exists"))
        });
    });
    group.bench_function("snapshot_open", |b| {
        let f = fixture.get_or_insert_with(ReadFixture::new);
        b.iter(|| black_box(f.storage.read(f.tenant).expect("read")));
    });
    group.finish();

    let mut group = c.benchmark_group("range_scan");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .throughput(Throughput::Elements(SCAN_ROWS as u64));
    group.bench_function("read_then_scan_100", |b| {
        let f = fixture.get_or_insert_with(ReadFixture::new);
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % f.rows.len();
            let after = row_key(f.rows[i] % (READ_ROWS - SCAN_ROWS as u64));
            let rows = f
                .storage
                .read(f.tenant)
                .expect("read")
                .scan(&TABLE, &(), Some(&after), SCAN_ROWS)
                .expect("scan");
            assert_eq!(rows.len(), SCAN_ROWS);
            black_box(rows)
        });
    });
    group.bench_function("snapshot_scan_100", |b| {
        let f = fixture.get_or_insert_with(ReadFixture::new);
        let snapshot = f.storage.read(f.tenant).expect("read");
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % f.rows.len();
            let after = row_key(f.rows[i] % (READ_ROWS - SCAN_ROWS as u64));
            let rows = snapshot
                .scan(&TABLE, &(), Some(&after), SCAN_ROWS)
                .expect("scan");
            assert_eq!(rows.len(), SCAN_ROWS);
            black_box(rows)
        });
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// Durable writes.

const RAW_TABLE: TableDefinition<u128, &[u8]> = TableDefinition::new("rows");

/// A plain redb file, with the engine's per-shard page cache size.
fn open_raw(dir: &TempDir) -> Database {
    let mut builder = Database::builder();
    builder.set_cache_size(StorageConfig::new(dir.path()).cache_bytes_per_shard);
    let db = builder.create(dir.path().join("raw.redb")).expect("create");
    let txn = db.begin_write().expect("begin");
    txn.open_table(RAW_TABLE).expect("table");
    txn.commit().expect("commit");
    db
}

/// One durable redb transaction holding one insert.
fn raw_put(db: &Database, key: u128, value: &[u8]) {
    let mut txn = db.begin_write().expect("begin");
    txn.set_durability(Durability::Immediate)
        .expect("durability");
    {
        let mut table = txn.open_table(RAW_TABLE).expect("table");
        table.insert(key, value).expect("insert");
    }
    txn.commit().expect("commit");
}

fn engine_put(storage: &Storage<BenchCommand>, tenant: u64, key: u128, data: &[u8]) {
    storage
        .execute_blocking(BenchCommand::Put {
            tenant,
            key,
            data: data.to_vec(),
        })
        .expect("execute");
}

/// Runs `iters` writes spread over `writers` threads, each calling `write(writer, count)`, and
/// returns the time from the moment all threads are started until the last one is done.
fn run_writers(writers: usize, iters: u64, write: &(dyn Fn(usize, u64) + Sync)) -> Duration {
    let barrier = Barrier::new(writers + 1);
    let started = std::thread::scope(|s| {
        for w in 0..writers {
            let count = iters / writers as u64 + u64::from((w as u64) < iters % writers as u64);
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                write(w, count);
            });
        }
        barrier.wait();
        Instant::now()
        // The scope joins every writer before returning.
    });
    started.elapsed()
}

/// Every write's latency as its caller saw it, one list per writer thread (so the lists are
/// never contended), in microseconds.
struct Latencies {
    per_writer: Vec<Mutex<Vec<u32>>>,
}

impl Latencies {
    fn new(writers: usize) -> Latencies {
        Latencies {
            per_writer: (0..writers).map(|_| Mutex::new(Vec::new())).collect(),
        }
    }

    /// Runs `write` and records how long it took.
    fn time(&self, writer: usize, write: impl FnOnce()) {
        let started = Instant::now();
        write();
        let micros = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
        self.per_writer[writer]
            .lock()
            .expect("latency list")
            .push(micros);
    }

    /// All samples so far, sorted; the lists are emptied.
    fn take_sorted(&self) -> Vec<u32> {
        let mut all: Vec<u32> = self
            .per_writer
            .iter()
            .flat_map(|l| std::mem::take(&mut *l.lock().expect("latency list")))
            .collect();
        all.sort_unstable();
        all
    }
}

/// Prints the writes done and their latency percentiles, and resets both.
fn report_writes(id: &str, writes: &AtomicU64, latencies: &Latencies) {
    let sorted = latencies.take_sorted();
    let at = |q: f64| -> f64 {
        let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len().max(1)) - 1;
        f64::from(sorted.get(i).copied().unwrap_or(0)) / 1000.0
    };
    eprintln!(
        "{id}: writes: {} in total (warm-up included); latency ms: p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}",
        writes.swap(0, Ordering::Relaxed),
        at(0.50),
        at(0.99),
        at(0.999),
        at(1.0),
    );
}

fn single_durable_write(c: &mut Criterion) {
    let mut group = c.benchmark_group("single_durable_write");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(1));
    let value = writer_value(0);
    group.bench_function("engine", |b| {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = open_engine(&dir, 1);
        let tenant = writer_tenants(&storage, 1)[0];
        let mut seq = 0;
        b.iter(|| {
            seq += 1;
            engine_put(&storage, tenant, time_key(0, seq), &value);
        });
        storage.close().expect("close");
    });
    group.bench_function("raw_redb", |b| {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = open_raw(&dir);
        let mut seq = 0;
        b.iter(|| {
            seq += 1;
            raw_put(&db, time_key(0, seq), &value);
        });
    });
    group.finish();
}

fn group_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("group_commit");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(1));
    let writers_max = WRITERS.into_iter().max().unwrap_or(1).max(64);
    let values: Vec<Vec<u8>> = (0..writers_max).map(writer_value).collect();
    let writes = AtomicU64::new(0);
    let latencies = Latencies::new(writers_max);

    // `one_tenant`: every writer writes for the same tenant (all rows land in one place of the
    // B-tree); otherwise each writer has its own tenant, as independent clients would.
    let engine = |group: &mut criterion::BenchmarkGroup<'_, WallTime>,
                  shards: u16,
                  writers: usize,
                  one_tenant: bool| {
        let name = if one_tenant {
            format!("engine_{shards}shard_1tenant")
        } else {
            format!("engine_{shards}shard")
        };
        let id = BenchmarkId::new(&name, writers);
        let mut ran = false;
        group.bench_function(id, |b| {
            ran = true;
            let dir = tempfile::tempdir().expect("temp dir");
            let storage = open_engine(&dir, shards);
            let mut tenants = writer_tenants(&storage, writers);
            if one_tenant {
                let first = tenants[0];
                tenants.fill(first);
            }
            let seqs: Vec<AtomicU64> = (0..writers).map(|_| AtomicU64::new(0)).collect();
            let write = |w: usize, count: u64| {
                for _ in 0..count {
                    let seq = seqs[w].fetch_add(1, Ordering::Relaxed);
                    latencies.time(w, || {
                        engine_put(&storage, tenants[w], time_key(w, seq), &values[w]);
                    });
                }
                writes.fetch_add(count, Ordering::Relaxed);
            };
            b.iter_custom(|iters| run_writers(writers, iters, &write));
            storage.close().expect("close");
        });
        if ran {
            report_writes(
                &format!("group_commit/{name}/{writers}"),
                &writes,
                &latencies,
            );
        }
    };
    for writers in WRITERS {
        engine(&mut group, 1, writers, false);
        let id = BenchmarkId::new("raw_redb", writers);
        let mut ran = false;
        group.bench_function(id, |b| {
            ran = true;
            let dir = tempfile::tempdir().expect("temp dir");
            let db = open_raw(&dir);
            let seqs: Vec<AtomicU64> = (0..writers).map(|_| AtomicU64::new(0)).collect();
            let write = |w: usize, count: u64| {
                for _ in 0..count {
                    let seq = seqs[w].fetch_add(1, Ordering::Relaxed);
                    latencies.time(w, || raw_put(&db, time_key(w, seq), &values[w]));
                }
                writes.fetch_add(count, Ordering::Relaxed);
            };
            b.iter_custom(|iters| run_writers(writers, iters, &write));
        });
        if ran {
            report_writes(
                &format!("group_commit/raw_redb/{writers}"),
                &writes,
                &latencies,
            );
        }
    }
    engine(&mut group, 4, 64, false);
    engine(&mut group, 1, 64, true);

    // The same 64 writers (one tenant each, one shard) as tasks on a tokio runtime with one
    // worker thread per core, calling `execute(..).await`: how the HTTP server submits. A
    // waiting writer is a parked task, not a parked thread, so answering it costs no context
    // switch of its own.
    let writers = 64;
    let id = BenchmarkId::new("engine_1shard_tasks", writers);
    let mut ran = false;
    group.bench_function(id, |b| {
        ran = true;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
            .build()
            .expect("tokio runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = open_engine(&dir, 1);
        let tenants = writer_tenants(&storage, writers);
        let values = std::sync::Arc::new(values.clone());
        let mut seq = 0u64;
        b.iter_custom(|iters| {
            let started = Instant::now();
            let tasks: Vec<_> = (0..writers)
                .map(|w| {
                    let count =
                        iters / writers as u64 + u64::from((w as u64) < iters % writers as u64);
                    let (storage, tenant, values) =
                        (storage.clone(), tenants[w], std::sync::Arc::clone(&values));
                    let first = seq;
                    runtime.spawn(async move {
                        let mut micros = Vec::with_capacity(count as usize);
                        for i in 0..count {
                            let t = Instant::now();
                            storage
                                .execute(BenchCommand::Put {
                                    tenant,
                                    key: time_key(w, first + i),
                                    data: values[w].clone(),
                                })
                                .await
                                .expect("execute");
                            micros.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                        }
                        micros
                    })
                })
                .collect();
            let done: Vec<Vec<u32>> = runtime.block_on(async {
                let mut done = Vec::with_capacity(tasks.len());
                for task in tasks {
                    done.push(task.await.expect("writer task"));
                }
                done
            });
            let elapsed = started.elapsed();
            seq += iters;
            for (w, micros) in done.into_iter().enumerate() {
                writes.fetch_add(micros.len() as u64, Ordering::Relaxed);
                latencies.per_writer[w]
                    .lock()
                    .expect("latency list")
                    .extend(micros);
            }
            elapsed
        });
        storage.close().expect("close");
    });
    if ran {
        report_writes(
            &format!("group_commit/engine_1shard_tasks/{writers}"),
            &writes,
            &latencies,
        );
    }
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// Paired rounds: the 64-writer ratio measured robustly on a shared machine.

/// Rounds of `--pairs`.
const PAIR_ROUNDS: usize = 7;
/// How long each side of a round writes, after its warm-up.
const PAIR_MEASURE: Duration = Duration::from_secs(3);
const PAIR_WARM_UP: Duration = Duration::from_millis(500);
/// Writers of every side of a round.
const PAIR_WRITERS: usize = 64;

/// Runs `PAIR_WRITERS` threads calling `write(writer, seq)` until the warm-up and the
/// measurement are over; returns the writes per second of the measurement.
fn writes_per_second(write: &(dyn Fn(usize, u64) + Sync)) -> f64 {
    let counted = AtomicU64::new(0);
    let phase = AtomicU64::new(0); // see `measure`
    std::thread::scope(|s| {
        for w in 0..PAIR_WRITERS {
            let (counted, phase) = (&counted, &phase);
            s.spawn(move || {
                let mut seq = 0;
                loop {
                    let now = phase.load(Ordering::Relaxed);
                    if now == 2 {
                        break;
                    }
                    write(w, seq);
                    seq += 1;
                    if now == 1 {
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        measure(&counted, &phase)
    })
}

/// While writers run (they read `phase`: 0 warm-up, 1 measuring, 2 stop; and add each write
/// that started while measuring to `counted`): waits out the warm-up, measures, tells them to
/// stop, and returns the writes per second of the measurement.
fn measure(counted: &AtomicU64, phase: &AtomicU64) -> f64 {
    std::thread::sleep(PAIR_WARM_UP);
    phase.store(1, Ordering::Relaxed);
    let started = Instant::now();
    std::thread::sleep(PAIR_MEASURE);
    // Writes that end after this are not counted.
    let done = counted.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    phase.store(2, Ordering::Relaxed);
    done as f64 / elapsed.as_secs_f64()
}

fn raw_side(values: &[Vec<u8>]) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open_raw(&dir);
    writes_per_second(&|w, seq| raw_put(&db, time_key(w, seq), &values[w]))
}

fn engine_side(values: &[Vec<u8>]) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = open_engine(&dir, 1);
    let tenants = writer_tenants(&storage, PAIR_WRITERS);
    let rate = writes_per_second(&|w, seq| {
        engine_put(&storage, tenants[w], time_key(w, seq), &values[w]);
    });
    storage.close().expect("close");
    rate
}

/// The engine side with the writers as tokio tasks (as the HTTP server submits), for as long
/// as the thread sides run.
fn engine_tasks_side(values: &[Vec<u8>]) -> f64 {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
        .enable_time()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = open_engine(&dir, 1);
    let tenants = writer_tenants(&storage, PAIR_WRITERS);
    let counted = std::sync::Arc::new(AtomicU64::new(0));
    let phase = std::sync::Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..PAIR_WRITERS)
        .map(|w| {
            let (storage, tenant, value) = (storage.clone(), tenants[w], values[w].clone());
            let (counted, phase) = (counted.clone(), phase.clone());
            runtime.spawn(async move {
                let mut seq = 0;
                loop {
                    let now = phase.load(Ordering::Relaxed);
                    if now == 2 {
                        break;
                    }
                    storage
                        .execute(BenchCommand::Put {
                            tenant,
                            key: time_key(w, seq),
                            data: value.clone(),
                        })
                        .await
                        .expect("execute");
                    seq += 1;
                    if now == 1 {
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let rate = measure(&counted, &phase);
    runtime.block_on(async {
        for task in tasks {
            task.await.expect("writer task");
        }
    });
    storage.close().expect("close");
    rate
}

/// `--pairs`: rounds of plain redb, the engine with 64 writer threads and the engine with 64
/// writer tasks, back to back, the order rotating from round to round; prints each round's
/// ratios and their medians. One round's sides see nearly the same machine, so the ratio of a
/// round is steadier than the ratio of two criterion groups, and the median drops the rounds a
/// burst of other load spoilt.
fn paired_rounds() {
    let values: Vec<Vec<u8>> = (0..PAIR_WRITERS).map(writer_value).collect();
    let mut threads = Vec::with_capacity(PAIR_ROUNDS);
    let mut tasks = Vec::with_capacity(PAIR_ROUNDS);
    for round in 0..PAIR_ROUNDS {
        let mut rates = [0.0f64; 3];
        for i in 0..3 {
            let side = (round + i) % 3;
            rates[side] = match side {
                0 => raw_side(&values),
                1 => engine_side(&values),
                _ => engine_tasks_side(&values),
            };
        }
        let [raw, engine, engine_tasks] = rates;
        threads.push(engine / raw);
        tasks.push(engine_tasks / raw);
        eprintln!(
            "pairs round {}: raw_redb/64 {raw:.0}/s, engine_1shard/64 {engine:.0}/s ({:.1}x), engine_1shard_tasks/64 {engine_tasks:.0}/s ({:.1}x)",
            round + 1,
            engine / raw,
            engine_tasks / raw,
        );
    }
    for (name, mut ratios) in [
        ("engine_1shard/64", threads),
        ("engine_1shard_tasks/64", tasks),
    ] {
        ratios.sort_by(f64::total_cmp);
        eprintln!(
            "pairs: {name}: median ratio {:.1}x (min {:.1}x, max {:.1}x) over {PAIR_ROUNDS} rounds",
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1]
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = reads, single_durable_write, group_commit
}

fn main() {
    if std::env::args().any(|arg| arg == "--pairs") {
        paired_rounds();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
