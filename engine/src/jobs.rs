//! The in-memory side of the durable job queue: ready lanes per priority, scheduled jobs,
//! leases with deadlines, backlog accounting and the queue's metrics.
//!
//! The durable side is the `jobs` table in each tenant's shard (see
//! [`crate::tables::JOBS`]): a job is written in the same transaction as the change that asks
//! for it (a document upload), and deleted in the same transaction as its effect. This module
//! only knows which jobs are waiting, which are running, and until when.
//!
//! * **Ready lanes** are crossbeam channels, one per [`JobPriority`]: lock-free multi-producer
//!   multi-consumer queues. A worker takes from the most urgent non-empty lane and sleeps on all
//!   three when they are empty.
//! * **Scheduled jobs** (a retry's backoff, a daily run) wait in a heap until their time; the
//!   reaper moves them to their lane.
//! * **Leases** give one worker a job until a deadline. The worker extends it by heartbeat while
//!   it works (never past the job's time budget); the reaper takes back leases whose deadline
//!   passed (a crashed, stuck or over-budget worker) and hands them to the caller, which records
//!   the failed attempt durably and schedules the retry. Leases are not durable: after a restart
//!   every ready job in storage is loaded again, so a crash loses no job.
//! * **Backlog**: every job the queue holds (ready, scheduled or leased) counts against
//!   [`QueueConfig::backlog_max`]; producers ask [`JobQueue::admit`] before they write a job and
//!   answer "try later" when it is full.
//!
//! Delivery is at least once: a job can run twice (a lease that lapsed while its worker was
//! still going, a job loaded by recovery and pushed by its producer). Effects are written once
//! because each job's effect is keyed (see the verification domain).

use crate::TenantId;
use crate::tables::JobPriority;
use crossbeam_channel::{Receiver, Select, Sender};
use parking_lot::Mutex;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Number of priority lanes ([`JobPriority`] variants).
pub const LANES: usize = 3;
/// Lease shards (a job's lease lives in shard `job_id % LEASE_SHARDS`).
const LEASE_SHARDS: usize = 16;
/// Upper bound of [`QueueConfig::backlog_max`].
pub const BACKLOG_LIMIT: usize = 10_000_000;
/// Upper bound of [`QueueConfig::workers`].
pub const WORKERS_LIMIT: usize = 256;
/// Upper bound of [`QueueConfig::attempts_max`].
pub const ATTEMPTS_LIMIT: u32 = 100;

/// How the queue and its workers run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// Worker threads (default: one per core).
    pub workers: usize,
    /// A lease's length; heartbeats extend it by this much.
    pub lease: Duration,
    /// Attempts before a job goes to the dead-letter list.
    pub attempts_max: u32,
    /// First retry delay; doubles per attempt, with jitter, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Jobs the queue holds at most; producers are told to retry later past it.
    pub backlog_max: usize,
    /// Longest a job may run: its lease is not extended past it.
    pub job_time_budget: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            workers: workers_per_core(),
            lease: Duration::from_secs(30),
            attempts_max: 5,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(600),
            backlog_max: 100_000,
            job_time_budget: Duration::from_secs(120),
        }
    }
}

/// One worker per core (what `available_parallelism` reports, 1 when it cannot tell), at most
/// [`WORKERS_LIMIT`].
pub fn workers_per_core() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(WORKERS_LIMIT)
}

impl QueueConfig {
    /// Checks the bounds; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=WORKERS_LIMIT).contains(&self.workers) {
            return Err(format!("workers must be 1..={WORKERS_LIMIT}"));
        }
        if !(1..=ATTEMPTS_LIMIT).contains(&self.attempts_max) {
            return Err(format!("attempts_max must be 1..={ATTEMPTS_LIMIT}"));
        }
        if !(1..=BACKLOG_LIMIT).contains(&self.backlog_max) {
            return Err(format!("backlog_max must be 1..={BACKLOG_LIMIT}"));
        }
        if self.lease < Duration::from_millis(10) || self.lease > Duration::from_secs(3_600) {
            return Err("lease must be 10 ms..=1 h".into());
        }
        if self.job_time_budget < self.lease.min(Duration::from_secs(1))
            || self.job_time_budget > Duration::from_secs(24 * 3_600)
        {
            return Err(
                "job_time_budget must be at least the lease (or 1 s) and at most 24 h".into(),
            );
        }
        if self.backoff_base.is_zero() || self.backoff_max < self.backoff_base {
            return Err("backoff_base must be > 0 and <= backoff_max".into());
        }
        Ok(())
    }

    /// The delay before attempt `attempts + 1`: `base * 2^(attempts-1)`, capped, with up to
    /// 25 % jitter from `jitter` (any u64; the caller's randomness).
    pub fn backoff(&self, attempts: u32, jitter: u64) -> Duration {
        let exponent = attempts.saturating_sub(1).min(30);
        let base = self
            .backoff_base
            .saturating_mul(1u32 << exponent)
            .min(self.backoff_max);
        let quarter = base.as_millis() as u64 / 4;
        let extra = if quarter == 0 { 0 } else { jitter % quarter };
        (base + Duration::from_millis(extra)).min(self.backoff_max)
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Hashes lease keys (a tenant and a job id, both small integers chosen by the engine, never
/// by a client) with one multiply per word instead of SipHash. Public so that the queue
/// benchmark's baseline hashes its lease keys the same way.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdHasher(u64);

/// Builds [`IdHasher`]s.
pub type IdBuildHasher = std::hash::BuildHasherDefault<IdHasher>;

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type LeaseMap = HashMap<(TenantId, u64), Held, IdBuildHasher>;

/// A job as the queue knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobRef {
    pub tenant: TenantId,
    pub job_id: u64,
    pub priority: JobPriority,
}

/// A job in a ready lane, with when it became ready.
#[derive(Clone, Copy, Debug)]
struct Queued {
    job: JobRef,
    ready_at_ms: u64,
}

/// A worker's hold on a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub job: JobRef,
    /// Distinguishes this lease from a later lease of the same job.
    pub token: u64,
    /// How long the job waited in its lane.
    pub waited: Duration,
}

#[derive(Clone, Copy, Debug)]
struct Held {
    job: JobRef,
    token: u64,
    started: Instant,
    deadline: Instant,
}

/// Why a producer may not add a job now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the job queue holds {backlog} jobs (limit {limit}); retry in {retry_after:?}")]
pub struct Backlogged {
    pub backlog: usize,
    pub limit: usize,
    pub retry_after: Duration,
}

/// Counts for operators.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub ready: usize,
    pub scheduled: usize,
    pub leased: usize,
    /// Every job held (ready + scheduled + leased, counting a duplicate delivery twice).
    pub backlog: usize,
    /// Upper bound of the age of the oldest ready job, in milliseconds (0 when none is ready).
    pub oldest_ready_ms: u64,
    pub leases_granted: u64,
    pub leases_expired: u64,
    pub completed: u64,
}

struct Lane {
    tx: Sender<Queued>,
    rx: Receiver<Queued>,
    /// When the lane's head became ready, at most (see [`QueueStats::oldest_ready_ms`]).
    head_hint_ms: AtomicU64,
}

/// The queue. `Send + Sync`: share it in an `Arc`.
pub struct JobQueue {
    config: QueueConfig,
    lanes: [Lane; LANES],
    scheduled: Mutex<BinaryHeap<Reverse<(u64, JobRef)>>>,
    leases: [Mutex<LeaseMap>; LEASE_SHARDS],
    /// The queue's clock: one monotonic read gives both an `Instant` and wall-clock
    /// milliseconds (`epoch_ms` + time since `epoch`).
    epoch: Instant,
    epoch_ms: u64,
    backlog: AtomicUsize,
    next_token: AtomicU64,
    leases_granted: AtomicU64,
    leases_expired: AtomicU64,
    completed: AtomicU64,
}

impl std::fmt::Debug for JobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobQueue")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl JobQueue {
    pub fn new(config: QueueConfig) -> JobQueue {
        let lane = || {
            let (tx, rx) = crossbeam_channel::unbounded();
            Lane {
                tx,
                rx,
                head_hint_ms: AtomicU64::new(0),
            }
        };
        JobQueue {
            config,
            lanes: [lane(), lane(), lane()],
            scheduled: Mutex::new(BinaryHeap::new()),
            leases: std::array::from_fn(|_| Mutex::new(LeaseMap::default())),
            epoch: Instant::now(),
            epoch_ms: now_ms(),
            backlog: AtomicUsize::new(0),
            next_token: AtomicU64::new(1),
            leases_granted: AtomicU64::new(0),
            leases_expired: AtomicU64::new(0),
            completed: AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// Now, as an `Instant` and as wall-clock milliseconds, from one clock read.
    fn clock(&self) -> (Instant, u64) {
        let now = Instant::now();
        let ms = self.epoch_ms + now.duration_since(self.epoch).as_millis() as u64;
        (now, ms)
    }

    /// Whether `jobs` more jobs fit; the error says when to try again.
    pub fn admit(&self, jobs: usize) -> Result<(), Backlogged> {
        let backlog = self.backlog.load(Ordering::Acquire);
        if backlog.saturating_add(jobs) > self.config.backlog_max {
            // A rough drain time: the excess over the workers, at one job per 100 ms each.
            let excess = (backlog + jobs - self.config.backlog_max) as u64;
            let per_second = (self.config.workers as u64 * 10).max(1);
            let retry_after = Duration::from_secs((excess / per_second).clamp(1, 60));
            return Err(Backlogged {
                backlog,
                limit: self.config.backlog_max,
                retry_after,
            });
        }
        Ok(())
    }

    /// Adds a job that runs at `run_at_ms` (now or earlier: ready at once).
    pub fn push(&self, job: JobRef, run_at_ms: u64) {
        self.backlog.fetch_add(1, Ordering::AcqRel);
        let (_, now) = self.clock();
        if run_at_ms > now {
            self.scheduled.lock().push(Reverse((run_at_ms, job)));
        } else {
            self.make_ready(job, now);
        }
    }

    fn make_ready(&self, job: JobRef, now: u64) {
        let lane = &self.lanes[job.priority.lane()];
        if lane.rx.is_empty() {
            lane.head_hint_ms.store(now, Ordering::Release);
        }
        // The receiver lives as long as the queue: sending cannot fail.
        let _ = lane.tx.send(Queued {
            job,
            ready_at_ms: now,
        });
    }

    fn try_take_ready(&self) -> Option<Queued> {
        self.lanes.iter().find_map(|lane| lane.rx.try_recv().ok())
    }

    fn take_ready(&self, timeout: Duration) -> Option<Queued> {
        if let Some(queued) = self.try_take_ready() {
            return Some(queued);
        }
        let mut select = Select::new();
        for lane in &self.lanes {
            select.recv(&lane.rx);
        }
        let operation = select.select_timeout(timeout).ok()?;
        let index = operation.index();
        operation.recv(&self.lanes[index].rx).ok()
    }

    /// Leases the most urgent ready job, waiting up to `timeout` for one.
    pub fn lease(&self, timeout: Duration) -> Option<Lease> {
        // The deadline is only needed (and the clock only read for it) when no job is ready.
        let mut deadline = None;
        loop {
            let queued = match self.try_take_ready() {
                Some(queued) => queued,
                None => {
                    let until = *deadline.get_or_insert_with(|| Instant::now() + timeout);
                    self.take_ready(until.saturating_duration_since(Instant::now()))?
                }
            };
            let lane = &self.lanes[queued.job.priority.lane()];
            lane.head_hint_ms
                .fetch_max(queued.ready_at_ms, Ordering::AcqRel);
            let (now, now_ms) = self.clock();
            let token = self.next_token.fetch_add(1, Ordering::Relaxed);
            let key = (queued.job.tenant, queued.job.job_id);
            let mut shard = self.lease_shard(queued.job.job_id).lock();
            match shard.entry(key) {
                std::collections::hash_map::Entry::Occupied(_) => {
                    // A second delivery of a job that is running: the holder finishes it (or
                    // its lease lapses and it comes back).
                    drop(shard);
                    self.backlog.fetch_sub(1, Ordering::AcqRel);
                    continue;
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(Held {
                        job: queued.job,
                        token,
                        started: now,
                        deadline: now + self.config.lease,
                    });
                }
            }
            drop(shard);
            self.leases_granted.fetch_add(1, Ordering::Relaxed);
            return Some(Lease {
                job: queued.job,
                token,
                waited: Duration::from_millis(now_ms.saturating_sub(queued.ready_at_ms)),
            });
        }
    }

    fn lease_shard(&self, job_id: u64) -> &Mutex<LeaseMap> {
        &self.leases[(job_id % LEASE_SHARDS as u64) as usize]
    }

    /// Extends a lease by [`QueueConfig::lease`], unless it was lost or the job ran past its
    /// time budget. `false`: stop working on the job (its effect would be refused or
    /// duplicated harmlessly, but the work is wasted).
    pub fn heartbeat(&self, lease: &Lease) -> bool {
        let mut shard = self.lease_shard(lease.job.job_id).lock();
        match shard.get_mut(&(lease.job.tenant, lease.job.job_id)) {
            Some(held) if held.token == lease.token => {
                let now = Instant::now();
                let budget_end = held.started + self.config.job_time_budget;
                if now >= budget_end {
                    return false;
                }
                held.deadline = (now + self.config.lease).min(budget_end);
                true
            }
            _ => false,
        }
    }

    /// Ends a lease (the job's outcome was recorded durably). `false`: the lease had lapsed
    /// already (the reaper took the job back).
    pub fn finish(&self, lease: &Lease) -> bool {
        let mut shard = self.lease_shard(lease.job.job_id).lock();
        let key = (lease.job.tenant, lease.job.job_id);
        match shard.entry(key) {
            std::collections::hash_map::Entry::Occupied(held)
                if held.get().token == lease.token =>
            {
                held.remove();
                drop(shard);
                self.backlog.fetch_sub(1, Ordering::AcqRel);
                self.completed.fetch_add(1, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }

    /// Moves scheduled jobs whose time came to their lanes, and takes back leases whose
    /// deadline passed. Returns the jobs of the lapsed leases: the caller records the failed
    /// attempt and pushes them again (with backoff), or drops them when they are dead.
    pub fn reap(&self) -> Vec<JobRef> {
        let (instant, now) = self.clock();
        {
            let mut scheduled = self.scheduled.lock();
            while scheduled
                .peek()
                .is_some_and(|Reverse((run_at, _))| *run_at <= now)
            {
                if let Some(Reverse((_, job))) = scheduled.pop() {
                    self.make_ready(job, now);
                }
            }
        }
        let mut lapsed = Vec::new();
        for shard in &self.leases {
            shard.lock().retain(|_, held| {
                if held.deadline > instant {
                    return true;
                }
                lapsed.push(held.job);
                false
            });
        }
        self.leases_expired
            .fetch_add(lapsed.len() as u64, Ordering::Relaxed);
        self.backlog.fetch_sub(lapsed.len(), Ordering::AcqRel);
        lapsed
    }

    pub fn stats(&self) -> QueueStats {
        let now = now_ms();
        let ready: usize = self.lanes.iter().map(|lane| lane.rx.len()).sum();
        let oldest_ready_ms = self
            .lanes
            .iter()
            .filter(|lane| !lane.rx.is_empty())
            .map(|lane| now.saturating_sub(lane.head_hint_ms.load(Ordering::Acquire)))
            .max()
            .unwrap_or(0);
        QueueStats {
            ready,
            scheduled: self.scheduled.lock().len(),
            leased: self.leases.iter().map(|shard| shard.lock().len()).sum(),
            backlog: self.backlog.load(Ordering::Acquire),
            oldest_ready_ms,
            leases_granted: self.leases_granted.load(Ordering::Relaxed),
            leases_expired: self.leases_expired.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: u64, priority: JobPriority) -> JobRef {
        JobRef {
            tenant: TenantId(1),
            job_id: id,
            priority,
        }
    }

    fn quick() -> QueueConfig {
        QueueConfig {
            workers: 2,
            lease: Duration::from_millis(50),
            attempts_max: 3,
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(100),
            backlog_max: 4,
            job_time_budget: Duration::from_millis(120),
        }
    }

    #[test]
    fn urgent_lanes_run_first_and_fifo_within_a_lane() {
        let queue = JobQueue::new(quick());
        queue.push(job(1, JobPriority::Background), 0);
        queue.push(job(2, JobPriority::Renewal), 0);
        queue.push(job(3, JobPriority::Onboarding), 0);
        queue.push(job(4, JobPriority::Onboarding), 0);
        let order: Vec<u64> = (0..4)
            .map(|_| {
                let lease = queue.lease(Duration::from_millis(10)).expect("a ready job");
                assert!(queue.finish(&lease));
                lease.job.job_id
            })
            .collect();
        assert_eq!(order, vec![3, 4, 2, 1]);
        assert!(queue.lease(Duration::from_millis(5)).is_none());
        assert_eq!(queue.stats().backlog, 0);
    }

    #[test]
    fn the_backlog_bound_refuses_with_a_retry_time() {
        let queue = JobQueue::new(quick());
        for id in 0..4 {
            queue.admit(1).expect("room in the backlog");
            queue.push(job(id, JobPriority::Onboarding), 0);
        }
        let refused = queue.admit(1).unwrap_err();
        assert_eq!((refused.backlog, refused.limit), (4, 4));
        assert!(refused.retry_after >= Duration::from_secs(1));
        let lease = queue.lease(Duration::from_millis(10)).expect("a ready job");
        queue.finish(&lease);
        queue.admit(1).expect("room in the backlog");
    }

    #[test]
    fn a_lapsed_lease_comes_back_and_its_late_finish_is_refused() {
        let queue = JobQueue::new(quick());
        queue.push(job(7, JobPriority::Onboarding), 0);
        let lease = queue.lease(Duration::from_millis(10)).expect("a ready job");
        assert!(queue.reap().is_empty());
        std::thread::sleep(Duration::from_millis(60));
        let lapsed = queue.reap();
        assert_eq!(lapsed.iter().map(|j| j.job_id).collect::<Vec<_>>(), vec![7]);
        assert!(!queue.finish(&lease), "the reaper took the job back");
        assert!(!queue.heartbeat(&lease));
        assert_eq!(queue.stats().leases_expired, 1);
        assert_eq!(queue.stats().backlog, 0);
    }

    #[test]
    fn heartbeats_extend_a_lease_only_within_the_time_budget() {
        let queue = JobQueue::new(quick());
        queue.push(job(8, JobPriority::Onboarding), 0);
        let lease = queue.lease(Duration::from_millis(10)).expect("a ready job");
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(30));
            assert!(queue.heartbeat(&lease));
            assert!(queue.reap().is_empty(), "the heartbeat kept the lease");
        }
        std::thread::sleep(Duration::from_millis(40));
        assert!(!queue.heartbeat(&lease), "past the 120 ms budget");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(queue.reap().len(), 1);
    }

    #[test]
    fn scheduled_jobs_wait_for_their_time() {
        let queue = JobQueue::new(quick());
        queue.push(job(9, JobPriority::Renewal), now_ms() + 40);
        queue.reap();
        assert!(queue.lease(Duration::from_millis(5)).is_none());
        assert_eq!(queue.stats().scheduled, 1);
        std::thread::sleep(Duration::from_millis(50));
        queue.reap();
        assert_eq!(
            queue
                .lease(Duration::from_millis(10))
                .expect("a ready job")
                .job
                .job_id,
            9
        );
    }

    #[test]
    fn a_second_delivery_of_a_running_job_is_dropped() {
        let queue = JobQueue::new(quick());
        queue.push(job(5, JobPriority::Onboarding), 0);
        queue.push(job(5, JobPriority::Onboarding), 0);
        let first = queue.lease(Duration::from_millis(10)).expect("a ready job");
        assert!(queue.lease(Duration::from_millis(10)).is_none());
        assert!(queue.finish(&first));
        assert_eq!(queue.stats().backlog, 0);
    }

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        let config = QueueConfig {
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            ..QueueConfig::default()
        };
        assert_eq!(config.backoff(1, 0), Duration::from_secs(1));
        assert_eq!(config.backoff(2, 0), Duration::from_secs(2));
        assert_eq!(config.backoff(4, 0), Duration::from_secs(8));
        assert_eq!(config.backoff(30, 0), Duration::from_secs(60));
        let jittered = config.backoff(3, u64::MAX);
        assert!(jittered >= Duration::from_secs(4) && jittered < Duration::from_secs(5));
    }
}
