//! Benchmarks of the verification job queue's in-memory side (`mercato_engine::jobs::JobQueue`,
//! issue 5) against a baseline of locked `VecDeque`s measured in the same run. Results and how to
//! read them: `docs/benchmarks.md`.
//!
//! ```text
//! cargo bench --bench queue                 # everything, ~1 minute on 2 cores
//! cargo bench --bench queue -- contended    # one group (criterion filter)
//! ```
//!
//! Both queues run the same workload through the same three calls (push a ready job, lease the
//! most urgent ready job, finish the lease); scheduled jobs, heartbeats and the reaper are not
//! measured. Jobs cycle over the three priorities (`job_id % 3`) and 16 tenants, so every lane
//! is used and lease keys spread over the lease table. The machines are shared and noisy:
//! compare numbers as ratios within one run, never across runs.

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use mercato_engine::TenantId;
use mercato_engine::jobs::{IdBuildHasher, JobQueue, JobRef, LANES, Lease, QueueConfig, now_ms};
use mercato_engine::tables::JobPriority;
use parking_lot::{Condvar, Mutex};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// Jobs pushed, then leased and finished, per iteration of the single-thread benchmark.
const SINGLE_THREAD_JOBS: u64 = 10_000;
/// Jobs per iteration of the contended benchmark, split evenly over producers and workers.
const CONTENDED_JOBS: u64 = 100_000;
/// (producer threads, worker threads) of the contended benchmark.
const THREADS: [(u64, u64); 3] = [(1, 1), (2, 2), (4, 4)];
/// Tenants the jobs are spread over.
const TENANTS: u64 = 16;
/// How long a worker waits for a job before the benchmark gives up: every job is pushed, so
/// only a lost wake-up (a bug in a queue) reaches it.
const LEASE_WAIT_MAX: Duration = Duration::from_secs(10);
/// Lease length of both queues (never reached: every job is finished at once).
const LEASE_LENGTH: Duration = Duration::from_secs(30);

fn job(job_id: u64) -> JobRef {
    let priority = match job_id % 3 {
        0 => JobPriority::Onboarding,
        1 => JobPriority::Renewal,
        _ => JobPriority::Background,
    };
    JobRef {
        tenant: TenantId(1 + job_id % TENANTS),
        job_id,
        priority,
    }
}

/// The calls the benchmark makes, so one workload drives both queues.
trait BenchQueue: Send + Sync + 'static {
    fn new_for_bench() -> Self;
    fn push_ready(&self, job: JobRef);
    fn lease(&self, timeout: Duration) -> Option<Lease>;
    fn finish(&self, lease: &Lease) -> bool;
}

impl BenchQueue for JobQueue {
    fn new_for_bench() -> Self {
        JobQueue::new(QueueConfig {
            lease: LEASE_LENGTH,
            backlog_max: jobs_limit(),
            ..QueueConfig::default()
        })
    }

    fn push_ready(&self, job: JobRef) {
        // Run at 0: ready at once (into its lane, not the scheduled heap).
        JobQueue::push(self, job, 0);
    }

    fn lease(&self, timeout: Duration) -> Option<Lease> {
        JobQueue::lease(self, timeout)
    }

    fn finish(&self, lease: &Lease) -> bool {
        JobQueue::finish(self, lease)
    }
}

fn jobs_limit() -> usize {
    CONTENDED_JOBS.max(SINGLE_THREAD_JOBS) as usize
}

// ---------------------------------------------------------------------------------------------
// The baseline.

/// A job in a baseline lane, with when it became ready (as `JobQueue` keeps it).
#[derive(Clone, Copy)]
struct BaselineQueued {
    job: JobRef,
    ready_at_ms: u64,
}

/// A baseline lease, with the fields `JobQueue` keeps for one.
#[derive(Clone, Copy)]
struct BaselineHeld {
    token: u64,
    #[allow(dead_code)] // kept for parity with `JobQueue`: a heartbeat would read it
    started: Instant,
    #[allow(dead_code)] // kept for parity with `JobQueue`: a reaper would read it
    deadline: Instant,
}

/// **Baseline, not used by Mercato**: the straightforward locked design `JobQueue` is measured
/// against. One `parking_lot::Mutex<VecDeque>` per priority lane, a `parking_lot::Condvar` on
/// which idle workers sleep, and one `parking_lot::Mutex<HashMap>` as the whole lease table.
/// `parking_lot` rather than `std::sync`: it is what the engine itself uses and what a careful
/// engineer would pick for short critical sections (no poisoning, spins briefly before parking).
///
/// Same semantics as the measured calls of `JobQueue`: `push` puts a ready job at the back of its
/// lane and counts it in the backlog; `lease` takes from the most urgent non-empty lane (waiting
/// up to a timeout when all are empty), refuses a second delivery of a job that is leased, and
/// records a lease with a token, a start time and a deadline; `finish` removes the lease if its
/// token matches. It does not keep `JobQueue`'s operator counters (leases granted, completed)
/// or the lanes' head-age hints.
///
/// Same per-job overheads as `JobQueue` too, so that the comparison isolates the lanes and the
/// lease table: lease keys use `JobQueue`'s hasher ([`IdBuildHasher`], one multiply per word,
/// not SipHash) through the `entry` API, and the queue keeps its own clock like `JobQueue`
/// (one monotonic read gives both the `Instant` and the wall-clock milliseconds): one clock
/// read per push, one per lease, plus the wait deadline only when no lane has a job.
struct MutexQueue {
    lanes: [Mutex<VecDeque<BaselineQueued>>; LANES],
    /// Workers asleep (or about to sleep) on `wake`. A producer checks it after its push and
    /// takes the `idle` lock only when someone may be waiting.
    sleepers: AtomicUsize,
    idle: Mutex<()>,
    wake: Condvar,
    leases: Mutex<HashMap<(TenantId, u64), BaselineHeld, IdBuildHasher>>,
    backlog: AtomicUsize,
    next_token: AtomicU64,
    epoch: Instant,
    epoch_ms: u64,
}

impl MutexQueue {
    /// Now, as an `Instant` and as wall-clock milliseconds, from one clock read (as
    /// `JobQueue::clock`).
    fn clock(&self) -> (Instant, u64) {
        let now = Instant::now();
        let ms = self.epoch_ms + now.duration_since(self.epoch).as_millis() as u64;
        (now, ms)
    }

    fn try_take(&self) -> Option<BaselineQueued> {
        self.lanes.iter().find_map(|lane| lane.lock().pop_front())
    }

    /// Waits for a ready job until `timeout` from the first time it finds every lane empty
    /// (the clock is only read then, as in `JobQueue::lease`). Lost wake-ups are excluded
    /// because a worker registers in `sleepers` before its last look at the lanes, while
    /// holding `idle`; a producer that pushed after that look sees the registration and
    /// notifies under `idle`, which it can only take once the worker waits.
    fn take_ready(&self, timeout: Duration) -> Option<BaselineQueued> {
        let mut deadline = None;
        loop {
            if let Some(queued) = self.try_take() {
                return Some(queued);
            }
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + timeout);
            let mut idle = self.idle.lock();
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            let found = self.try_take();
            if found.is_none() {
                let timed_out = self.wake.wait_until(&mut idle, deadline).timed_out();
                self.sleepers.fetch_sub(1, Ordering::SeqCst);
                if timed_out {
                    drop(idle);
                    return self.try_take();
                }
                continue;
            }
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
            return found;
        }
    }
}

impl BenchQueue for MutexQueue {
    fn new_for_bench() -> Self {
        MutexQueue {
            lanes: std::array::from_fn(|_| Mutex::new(VecDeque::new())),
            sleepers: AtomicUsize::new(0),
            idle: Mutex::new(()),
            wake: Condvar::new(),
            leases: Mutex::new(HashMap::default()),
            backlog: AtomicUsize::new(0),
            next_token: AtomicU64::new(1),
            epoch: Instant::now(),
            epoch_ms: now_ms(),
        }
    }

    fn push_ready(&self, job: JobRef) {
        self.backlog.fetch_add(1, Ordering::AcqRel);
        let (_, now) = self.clock();
        let queued = BaselineQueued {
            job,
            ready_at_ms: now,
        };
        self.lanes[job.priority.lane()].lock().push_back(queued);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let _idle = self.idle.lock();
            self.wake.notify_one();
        }
    }

    fn lease(&self, timeout: Duration) -> Option<Lease> {
        loop {
            let queued = self.take_ready(timeout)?;
            let (now, now_ms) = self.clock();
            let token = self.next_token.fetch_add(1, Ordering::Relaxed);
            let mut leases = self.leases.lock();
            match leases.entry((queued.job.tenant, queued.job.job_id)) {
                Entry::Occupied(_) => {
                    // A second delivery of a running job: dropped, as `JobQueue` does.
                    drop(leases);
                    self.backlog.fetch_sub(1, Ordering::AcqRel);
                    continue;
                }
                Entry::Vacant(vacant) => {
                    vacant.insert(BaselineHeld {
                        token,
                        started: now,
                        deadline: now + LEASE_LENGTH,
                    });
                }
            }
            drop(leases);
            return Some(Lease {
                job: queued.job,
                token,
                waited: Duration::from_millis(now_ms.saturating_sub(queued.ready_at_ms)),
            });
        }
    }

    fn finish(&self, lease: &Lease) -> bool {
        let mut leases = self.leases.lock();
        match leases.entry((lease.job.tenant, lease.job.job_id)) {
            Entry::Occupied(held) if held.get().token == lease.token => {
                held.remove();
                drop(leases);
                self.backlog.fetch_sub(1, Ordering::AcqRel);
                true
            }
            _ => false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Workloads.

/// One thread: push `SINGLE_THREAD_JOBS` jobs, then lease and finish every one.
fn push_then_drain<Q: BenchQueue>(queue: &Q) {
    for job_id in 0..SINGLE_THREAD_JOBS {
        queue.push_ready(job(job_id));
    }
    for _ in 0..SINGLE_THREAD_JOBS {
        let lease = queue.lease(LEASE_WAIT_MAX).expect("a pushed job is ready");
        assert!(queue.finish(black_box(&lease)), "a fresh lease finishes");
    }
}

/// `producers` threads push `CONTENDED_JOBS` jobs between them while `workers` threads each
/// lease and finish their share, on a fresh queue. Timed from the moment every thread is
/// started (a barrier) until the last one is done. Each worker takes a fixed share, so no
/// worker waits out a timeout at the end.
fn contended_round<Q: BenchQueue>(producers: u64, workers: u64) -> Duration {
    let queue = Arc::new(Q::new_for_bench());
    let start = Arc::new(Barrier::new((producers + workers + 1) as usize));
    let per_producer = CONTENDED_JOBS / producers;
    let per_worker = CONTENDED_JOBS / workers;
    let mut threads = Vec::with_capacity((producers + workers) as usize);
    for producer in 0..producers {
        let (queue, start) = (Arc::clone(&queue), Arc::clone(&start));
        threads.push(thread::spawn(move || {
            start.wait();
            let first = producer * per_producer;
            for job_id in first..first + per_producer {
                queue.push_ready(job(job_id));
            }
        }));
    }
    for _ in 0..workers {
        let (queue, start) = (Arc::clone(&queue), Arc::clone(&start));
        threads.push(thread::spawn(move || {
            start.wait();
            for _ in 0..per_worker {
                let lease = queue
                    .lease(LEASE_WAIT_MAX)
                    .expect("every job is pushed: a worker gets its share");
                assert!(queue.finish(black_box(&lease)), "a fresh lease finishes");
            }
        }));
    }
    start.wait();
    let began = Instant::now();
    for thread in threads {
        thread.join().expect("benchmark thread");
    }
    began.elapsed()
}

fn single_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue_single_thread");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .throughput(Throughput::Elements(SINGLE_THREAD_JOBS));
    let job_queue = JobQueue::new_for_bench();
    group.bench_function("job_queue", |b| b.iter(|| push_then_drain(&job_queue)));
    let baseline = MutexQueue::new_for_bench();
    group.bench_function("mutex_baseline", |b| b.iter(|| push_then_drain(&baseline)));
    group.finish();
}

fn contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue_contended");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(CONTENDED_JOBS));
    for (producers, workers) in THREADS {
        let threads = format!("{producers}p{workers}w");
        group.bench_function(BenchmarkId::new("job_queue", &threads), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| contended_round::<JobQueue>(producers, workers))
                    .sum()
            })
        });
        group.bench_function(BenchmarkId::new("mutex_baseline", &threads), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| contended_round::<MutexQueue>(producers, workers))
                    .sum()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, single_thread, contended);
criterion_main!(benches);
