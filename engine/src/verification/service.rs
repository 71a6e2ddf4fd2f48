//! Verification as the engine runs it: document uploads (blob, then the command that records
//! the document and its job), the worker pool that leases jobs from the [`JobQueue`] and
//! writes their effects, the reaper that takes back lapsed leases, recovery at start, and the
//! reads and reviewer actions the HTTP API calls.

use super::actions::{
    CompleteJob, DAY_MS, UploadDocument, VerificationAction, VerificationOutput, policy,
};
use super::extract::{self, ExtractConfig, Extraction};
use super::rules::{self, Decision, DocumentType, VendorProfile};
use crate::accounts::{Permission, Principal, Role};
use crate::cache::Store;
use crate::catalog::not_found;
use crate::jobs::{JobQueue, JobRef, Lease, QueueConfig, QueueStats, now_ms};
use crate::tables::{
    CaseState, DOCUMENT_TEXT, DOCUMENTS, DOCUMENTS_BY_MANUFACTURER, Document, IndexMark, JOBS,
    JOBS_BY_STATE, Job, JobKind, JobState, LIFECYCLE_RUNS, LifecycleRun, MANUFACTURERS,
    NOTIFICATIONS, Notification, REGISTRATION_NUMBERS, REVIEW_CASES, REVIEW_CASES_BY_STATE,
    ReviewCase, ReviewDecision, VERIFICATION_RESULTS, VerificationPolicy, VerificationResult,
};
use crate::{Action, Actor, Command, CommandOutput, Engine, EngineError, Rejection, TenantId};
use mercato_storage::{
    BlobHash, ExecuteError, KeyCodec, StorageError, TableDef, TenantRead, TenantReads,
};
use parking_lot::Mutex;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Default largest upload.
pub const UPLOAD_BYTES_DEFAULT: u64 = 16 << 20;
/// Upper bound of [`VerificationConfig::upload_bytes_max`].
pub const UPLOAD_BYTES_LIMIT: u64 = 256 << 20;
/// Rows one listing returns at most.
pub const LIST_LIMIT_MAX: usize = 500;
/// How often the reaper looks for lapsed leases and due jobs.
const REAP_INTERVAL: Duration = Duration::from_millis(50);
/// How long an idle worker waits for a job before checking for shutdown.
const IDLE_WAIT: Duration = Duration::from_millis(200);

/// How verification runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerificationConfig {
    pub queue: QueueConfig,
    pub extract: ExtractConfig,
    /// Largest document accepted (413 past it).
    pub upload_bytes_max: u64,
}

impl Default for VerificationConfig {
    fn default() -> Self {
        VerificationConfig {
            queue: QueueConfig::default(),
            extract: ExtractConfig::default(),
            upload_bytes_max: UPLOAD_BYTES_DEFAULT,
        }
    }
}

/// Why an upload was refused before it reached storage.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the document is {bytes} bytes; at most {max} are accepted")]
    TooLarge { bytes: u64, max: u64 },
    #[error("the document is not a PDF, PNG, JPEG, TIFF or plain-text file")]
    UnsupportedFormat,
    #[error("the document is empty")]
    Empty,
    #[error(transparent)]
    Backlogged(#[from] crate::jobs::Backlogged),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The running verification service.
pub(crate) struct Running {
    queue: Arc<JobQueue>,
    config: VerificationConfig,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Jobs in the dead-letter lists of every tenant (counted at start, then kept up to date).
    dead: std::sync::atomic::AtomicU64,
}

/// The engine's verification service, once started.
#[derive(Default)]
pub(crate) struct VerificationHandle {
    running: Mutex<Option<Arc<Running>>>,
}

impl VerificationHandle {
    fn get(&self) -> Option<Arc<Running>> {
        self.running.lock().clone()
    }

    pub(crate) fn stop(&self) {
        let Some(running) = self.running.lock().take() else {
            return;
        };
        running.stop.store(true, Ordering::Release);
        for handle in running.threads.lock().drain(..) {
            let _ = handle.join();
        }
    }
}

/// What a document upload did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uploaded {
    pub document: Document,
    /// `false`: the same bytes were uploaded before; this is that document.
    pub created: bool,
}

fn unexpected(output: CommandOutput) -> EngineError {
    EngineError::UnexpectedOutput(format!("{output:?}"))
}

fn verification_output(output: CommandOutput) -> Result<VerificationOutput, EngineError> {
    match output {
        CommandOutput::Verification(out) => Ok(out),
        other => Err(unexpected(other)),
    }
}

/// Whether the principal may see and upload documents of `manufacturer_id`.
fn require_manufacturer(principal: &Principal, manufacturer_id: u64) -> Result<(), EngineError> {
    match principal.role {
        Some(Role::ManufacturerUser {
            manufacturer_id: own,
        }) if own == manufacturer_id => principal.require(Permission::WriteDocuments),
        Some(Role::ManufacturerUser { .. }) => Err(EngineError::Rejected(not_found(
            "manufacturer",
            manufacturer_id,
        ))),
        _ => principal
            .require(Permission::Review)
            .or_else(|_| principal.require(Permission::ManageManufacturers)),
    }
}

/// Index rows read at most by one filtered listing; past it the page comes back short, with
/// `next_after` to go on from.
pub const FILTER_SCAN_ROWS_MAX: usize = 10_000;

/// Reads records through an index whose keys end in the record id, in key order after
/// `after`, keeping those `resolve` returns, until `limit` are kept or
/// [`FILTER_SCAN_ROWS_MAX`] index rows were read.
fn index_page<A: KeyCodec + Copy, R>(
    read: &TenantRead,
    index: &TableDef<(A, u64), IndexMark>,
    prefix: A,
    after: Option<u64>,
    limit: usize,
    mut resolve: impl FnMut(u64) -> Result<Option<R>, StorageError>,
) -> Result<Listing<R>, EngineError> {
    let limit = limit.clamp(1, LIST_LIMIT_MAX);
    let mut cursor = after.map(|a| (prefix, a));
    let mut items = Vec::new();
    let mut scanned = 0usize;
    loop {
        let rows = read.scan(index, &prefix, cursor.as_ref(), LIST_LIMIT_MAX)?;
        let full = rows.len() == LIST_LIMIT_MAX;
        cursor = rows.last().map(|(key, _)| *key);
        for ((_, id), _) in rows {
            scanned += 1;
            if let Some(record) = resolve(id)? {
                items.push(record);
            }
            if items.len() == limit || (scanned >= FILTER_SCAN_ROWS_MAX && full) {
                return Ok(Listing {
                    items,
                    next_after: Some(id),
                });
            }
        }
        if !full {
            return Ok(Listing {
                items,
                next_after: None,
            });
        }
    }
}

/// A page of rows keyed by increasing ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub next_after: Option<u64>,
}

impl Engine {
    /// Starts the verification workers and reaper, and loads every ready job from storage
    /// (after a restart, jobs that were leased when the process died are ready again).
    /// Blocking.
    pub fn start_verification(&self, config: VerificationConfig) -> Result<(), EngineError> {
        if let Err(reason) = config.queue.validate() {
            return Err(EngineError::Rejected(Rejection::InvalidField {
                field: "verification.queue".into(),
                reason,
            }));
        }
        if config.extract.ocr_timeout >= config.queue.job_time_budget {
            // OCR must be killed before the job's lease stops being extended, or a slow scan
            // loses its lease, runs again and can end in the dead-letter list.
            return Err(EngineError::Rejected(Rejection::InvalidField {
                field: "verification.ocr_timeout".into(),
                reason: format!(
                    "must be below the job time budget ({:?}), got {:?}",
                    config.queue.job_time_budget, config.extract.ocr_timeout
                ),
            }));
        }
        if !(1..=super::service::UPLOAD_BYTES_LIMIT).contains(&config.upload_bytes_max) {
            return Err(EngineError::Rejected(Rejection::InvalidField {
                field: "verification.upload_bytes_max".into(),
                reason: format!("must be 1..={UPLOAD_BYTES_LIMIT}"),
            }));
        }
        let mut slot = self.verification.running.lock();
        if slot.is_some() {
            return Ok(());
        }
        let queue = Arc::new(JobQueue::new(config.queue.clone()));
        let mut loaded = 0usize;
        let mut dead = 0u64;
        for shard in self.storage.shard_ids() {
            for tenant in crate::search::tenants_of_shard(&self.storage, shard)? {
                let read = self.storage.read(tenant)?;
                let mut after = None;
                loop {
                    let rows = read.scan(
                        &JOBS_BY_STATE,
                        &JobState::Dead.code(),
                        after.as_ref(),
                        1_024,
                    )?;
                    dead += rows.len() as u64;
                    if rows.len() < 1_024 {
                        break;
                    }
                    after = rows.last().map(|(key, _)| *key);
                }
                let mut after = None;
                loop {
                    let rows = read.scan(
                        &JOBS_BY_STATE,
                        &JobState::Ready.code(),
                        after.as_ref(),
                        1_024,
                    )?;
                    let full = rows.len() == 1_024;
                    after = rows.last().map(|(key, _)| *key);
                    for ((_, id), _) in rows {
                        if let Some(job) = read.get(&JOBS, &id)? {
                            queue.push(
                                JobRef {
                                    tenant,
                                    job_id: job.id,
                                    priority: job.priority,
                                },
                                job.run_at_ms,
                            );
                            loaded += 1;
                        }
                    }
                    if !full {
                        break;
                    }
                }
            }
        }
        tracing::info!(
            jobs = loaded,
            workers = config.queue.workers,
            "verification queue started"
        );
        // Exported from the start (at 0), so that rates and alerts see them before the first
        // lapse or dead letter.
        metrics::counter!("mercato_jobs_lease_expiries_total").increment(0);
        metrics::counter!("mercato_jobs_dead_letters_total").increment(0);
        let running = Arc::new(Running {
            queue,
            config,
            stop: Arc::new(AtomicBool::new(false)),
            threads: Mutex::new(Vec::new()),
            dead: std::sync::atomic::AtomicU64::new(dead),
        });
        let mut threads = Vec::new();
        for n in 0..running.config.queue.workers {
            let worker = Worker {
                store: self.storage.clone(),
                running: Arc::clone(&running),
            };
            threads.push(
                std::thread::Builder::new()
                    .name(format!("mercato-verify-{n}"))
                    .spawn(move || worker.run())?,
            );
        }
        let reaper = Worker {
            store: self.storage.clone(),
            running: Arc::clone(&running),
        };
        threads.push(
            std::thread::Builder::new()
                .name("mercato-jobs-reaper".into())
                .spawn(move || reaper.reap_loop())?,
        );
        *running.threads.lock() = threads;
        *slot = Some(running);
        Ok(())
    }

    /// The queue's counts, if verification runs.
    pub fn job_queue_stats(&self) -> Option<QueueStats> {
        self.verification.get().map(|r| r.queue.stats())
    }

    /// Jobs in the dead-letter lists of every tenant, if verification runs.
    pub fn dead_jobs(&self) -> Option<u64> {
        self.verification
            .get()
            .map(|r| r.dead.load(Ordering::Acquire))
    }

    /// The largest upload accepted (the default until verification starts).
    pub fn upload_bytes_max(&self) -> u64 {
        self.verification
            .get()
            .map_or(UPLOAD_BYTES_DEFAULT, |r| r.config.upload_bytes_max)
    }

    /// Stores a document for a manufacturer and enqueues its verification, in one
    /// transaction. The same bytes uploaded again return the existing document.
    pub async fn upload_document(
        &self,
        principal: &Principal,
        manufacturer_id: u64,
        doc_type: DocumentType,
        file_name: &str,
        bytes: Vec<u8>,
    ) -> Result<Uploaded, UploadError> {
        require_manufacturer(principal, manufacturer_id)?;
        if matches!(principal.role, Some(Role::Reviewer)) {
            return Err(EngineError::Forbidden("reviewers do not upload documents".into()).into());
        }
        let max = self.upload_bytes_max();
        if bytes.len() as u64 > max {
            return Err(UploadError::TooLarge {
                bytes: bytes.len() as u64,
                max,
            });
        }
        if bytes.is_empty() {
            return Err(UploadError::Empty);
        }
        let format = extract::sniff(&bytes).ok_or(UploadError::UnsupportedFormat)?;
        let running = self.verification.get();
        if let Some(running) = &running {
            // The document's job and possibly the tenant's first lifecycle job.
            running.queue.admit(2)?;
        }
        let storage = (*self.storage).clone();
        let length = bytes.len() as u64;
        let put = tokio::task::spawn_blocking(move || storage.put_blob(&bytes))
            .await
            .map_err(|e| EngineError::Io(std::io::Error::other(e.to_string())))?
            .map_err(EngineError::from)?;
        let action = VerificationAction::Upload(UploadDocument {
            manufacturer_id,
            doc_type,
            sha256: *put.hash.as_bytes(),
            format,
            bytes: length,
            file_name: file_name.to_string(),
        });
        let output = self
            .run(
                principal.tenant,
                principal.actor.clone(),
                Action::Verification(action),
            )
            .await?;
        match verification_output(output)? {
            VerificationOutput::Uploaded {
                document,
                created,
                jobs,
            } => {
                if let Some(running) = running {
                    for (job_id, priority, run_at) in jobs {
                        running.queue.push(
                            JobRef {
                                tenant: principal.tenant,
                                job_id,
                                priority,
                            },
                            run_at,
                        );
                    }
                }
                Ok(Uploaded { document, created })
            }
            other => Err(EngineError::UnexpectedOutput(format!("{other:?}")).into()),
        }
    }

    /// A document, if the principal may see it. Blocking.
    pub fn document(&self, principal: &Principal, id: u64) -> Result<Document, EngineError> {
        let read = self.storage.read(principal.tenant)?;
        let Some(document) = read.get(&DOCUMENTS, &id)? else {
            return Err(EngineError::Rejected(not_found("document", id)));
        };
        require_manufacturer(principal, document.manufacturer_id).map_err(|e| match e {
            EngineError::Forbidden(_) => EngineError::Rejected(not_found("document", id)),
            other => other,
        })?;
        Ok(document)
    }

    /// A document's extracted text and verification result (checks with evidence). Blocking.
    pub fn document_details(
        &self,
        principal: &Principal,
        id: u64,
    ) -> Result<(Document, Option<String>, Option<VerificationResult>), EngineError> {
        let document = self.document(principal, id)?;
        let read = self.storage.read(principal.tenant)?;
        let text = read.get(&DOCUMENT_TEXT, &id)?.map(|t| t.0);
        let result = match document.rules_version {
            Some(version) => read.get(&VERIFICATION_RESULTS, &(document.sha256, version))?,
            None => None,
        };
        Ok((document, text, result))
    }

    /// A document's bytes. Blocking.
    pub fn document_bytes(
        &self,
        principal: &Principal,
        id: u64,
    ) -> Result<(Document, Vec<u8>), EngineError> {
        let document = self.document(principal, id)?;
        let bytes = self
            .storage
            .read_blob(principal.tenant, &BlobHash::from_bytes(document.sha256))?
            .ok_or_else(|| EngineError::Rejected(not_found("document", id)))?;
        Ok((document, bytes))
    }

    /// A manufacturer's documents (archived ones only when asked), in id order. Blocking.
    pub fn documents_of(
        &self,
        principal: &Principal,
        manufacturer_id: u64,
        include_archived: bool,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Listing<Document>, EngineError> {
        let read = self.manufacturer_read(principal, manufacturer_id)?;
        index_page(
            &read,
            &DOCUMENTS_BY_MANUFACTURER,
            manufacturer_id,
            after,
            limit,
            |id| {
                Ok(read
                    .get(&DOCUMENTS, &id)?
                    .filter(|d| include_archived || !d.archived))
            },
        )
    }

    /// Checks that the principal may see `manufacturer_id`'s documents and that it exists in
    /// the principal's tenant (404 otherwise, like every id of another tenant), and returns the
    /// snapshot it checked. Blocking.
    pub fn manufacturer_read(
        &self,
        principal: &Principal,
        manufacturer_id: u64,
    ) -> Result<TenantRead, EngineError> {
        require_manufacturer(principal, manufacturer_id)?;
        let read = self.storage.read(principal.tenant)?;
        if read.get(&MANUFACTURERS, &manufacturer_id)?.is_none() {
            return Err(EngineError::Rejected(not_found(
                "manufacturer",
                manufacturer_id,
            )));
        }
        Ok(read)
    }

    /// A manufacturer's notifications, newest last, after `after`. Blocking.
    pub fn notifications(
        &self,
        principal: &Principal,
        manufacturer_id: u64,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Listing<Notification>, EngineError> {
        let read = self.manufacturer_read(principal, manufacturer_id)?;
        let limit = limit.clamp(1, LIST_LIMIT_MAX);
        let cursor = after.map(|a| (manufacturer_id, a));
        let rows = read.scan(&NOTIFICATIONS, &manufacturer_id, cursor.as_ref(), limit)?;
        let next_after = (rows.len() == limit)
            .then(|| rows.last().map(|(k, _)| k.1))
            .flatten();
        Ok(Listing {
            items: rows.into_iter().map(|(_, n)| n).collect(),
            next_after,
        })
    }

    /// Review cases in a state, oldest first (optionally of one document type). Needs
    /// [`Permission::Review`]. Blocking.
    pub fn review_cases(
        &self,
        principal: &Principal,
        state: CaseState,
        doc_type: Option<DocumentType>,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Listing<ReviewCase>, EngineError> {
        principal.require(Permission::Review)?;
        let read = self.storage.read(principal.tenant)?;
        index_page(
            &read,
            &REVIEW_CASES_BY_STATE,
            state.code(),
            after,
            limit,
            |id| {
                Ok(read
                    .get(&REVIEW_CASES, &id)?
                    .filter(|case| doc_type.is_none_or(|t| t == case.doc_type)))
            },
        )
    }

    /// One review case. Needs [`Permission::Review`]. Blocking.
    pub fn review_case(&self, principal: &Principal, id: u64) -> Result<ReviewCase, EngineError> {
        principal.require(Permission::Review)?;
        self.storage
            .read(principal.tenant)?
            .get(&REVIEW_CASES, &id)?
            .ok_or_else(|| EngineError::Rejected(not_found("review_case", id)))
    }

    async fn verification_case(
        &self,
        principal: &Principal,
        action: VerificationAction,
    ) -> Result<ReviewCase, EngineError> {
        principal.require(Permission::Review)?;
        let output = self
            .run(
                principal.tenant,
                principal.actor.clone(),
                Action::Verification(action),
            )
            .await?;
        match verification_output(output)? {
            VerificationOutput::Case(case) => Ok(case),
            other => Err(EngineError::UnexpectedOutput(format!("{other:?}"))),
        }
    }

    /// Claims a review case for `claim` (a lease: another reviewer cannot take it meanwhile).
    pub async fn claim_review_case(
        &self,
        principal: &Principal,
        id: u64,
        claim: Duration,
    ) -> Result<ReviewCase, EngineError> {
        let claim_ms = claim.as_millis().min(u128::from(u64::MAX)) as u64;
        self.verification_case(
            principal,
            VerificationAction::ClaimCase {
                case_id: id,
                claim_ms,
            },
        )
        .await
    }

    /// Gives a claimed case back.
    pub async fn release_review_case(
        &self,
        principal: &Principal,
        id: u64,
    ) -> Result<ReviewCase, EngineError> {
        self.verification_case(principal, VerificationAction::ReleaseCase { case_id: id })
            .await
    }

    /// Decides a case the principal holds.
    pub async fn decide_review_case(
        &self,
        principal: &Principal,
        id: u64,
        decision: ReviewDecision,
        reason: &str,
    ) -> Result<ReviewCase, EngineError> {
        self.verification_case(
            principal,
            VerificationAction::DecideCase {
                case_id: id,
                decision,
                reason: reason.to_string(),
            },
        )
        .await
    }

    /// The tenant's verification policy. Blocking.
    pub fn verification_policy(
        &self,
        principal: &Principal,
    ) -> Result<VerificationPolicy, EngineError> {
        principal
            .require(Permission::Review)
            .or_else(|_| principal.require(Permission::ManageManufacturers))?;
        Ok(policy(&self.storage.read(principal.tenant)?)?)
    }

    /// Replaces the tenant's verification policy. Needs [`Permission::ManageTenant`].
    pub async fn set_verification_policy(
        &self,
        principal: &Principal,
        policy: VerificationPolicy,
    ) -> Result<VerificationPolicy, EngineError> {
        principal.require(Permission::ManageTenant)?;
        let output = self
            .run(
                principal.tenant,
                principal.actor.clone(),
                Action::Verification(VerificationAction::SetPolicy(policy)),
            )
            .await?;
        match verification_output(output)? {
            VerificationOutput::Policy(policy) => Ok(policy),
            other => Err(EngineError::UnexpectedOutput(format!("{other:?}"))),
        }
    }

    /// The tenant's jobs in a state (ready or dead), in id order. Needs
    /// [`Permission::ManageTenant`]. Blocking.
    pub fn jobs(
        &self,
        principal: &Principal,
        state: JobState,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Listing<Job>, EngineError> {
        principal.require(Permission::ManageTenant)?;
        let read = self.storage.read(principal.tenant)?;
        let limit = limit.clamp(1, LIST_LIMIT_MAX);
        let cursor = after.map(|a| (state.code(), a));
        let rows = read.scan(&JOBS_BY_STATE, &state.code(), cursor.as_ref(), limit)?;
        let next_after = (rows.len() == limit)
            .then(|| rows.last().map(|(k, _)| k.1))
            .flatten();
        let mut items = Vec::with_capacity(rows.len());
        for ((_, id), _) in rows {
            if let Some(job) = read.get(&JOBS, &id)? {
                items.push(job);
            }
        }
        Ok(Listing { items, next_after })
    }

    /// Retries a dead job now. Needs [`Permission::ManageTenant`].
    pub async fn retry_job(&self, principal: &Principal, id: u64) -> Result<Job, EngineError> {
        principal.require(Permission::ManageTenant)?;
        let output = self
            .run(
                principal.tenant,
                principal.actor.clone(),
                Action::Verification(VerificationAction::RetryJob { job_id: id }),
            )
            .await?;
        match verification_output(output)? {
            VerificationOutput::Job(Some(job)) => {
                if let Some(running) = self.verification.get() {
                    running
                        .dead
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                        .ok();
                    running.queue.push(
                        JobRef {
                            tenant: principal.tenant,
                            job_id: job.id,
                            priority: job.priority,
                        },
                        job.run_at_ms,
                    );
                }
                Ok(job)
            }
            other => Err(EngineError::UnexpectedOutput(format!("{other:?}"))),
        }
    }

    /// The tenant's lifecycle runs, in id order. Needs [`Permission::ManageTenant`]. Blocking.
    pub fn lifecycle_runs(
        &self,
        principal: &Principal,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Listing<LifecycleRun>, EngineError> {
        principal.require(Permission::ManageTenant)?;
        let read = self.storage.read(principal.tenant)?;
        let limit = limit.clamp(1, LIST_LIMIT_MAX);
        let rows = read.scan(&LIFECYCLE_RUNS, &(), after.as_ref(), limit)?;
        let next_after = (rows.len() == limit)
            .then(|| rows.last().map(|(k, _)| *k))
            .flatten();
        Ok(Listing {
            items: rows.into_iter().map(|(_, r)| r).collect(),
            next_after,
        })
    }
}

/// A worker thread (or the reaper) of the verification service.
struct Worker {
    store: Store,
    running: Arc<Running>,
}

/// Why a job attempt failed.
type AttemptError = String;

impl Worker {
    fn stopped(&self) -> bool {
        self.running.stop.load(Ordering::Acquire)
    }

    fn execute(
        &self,
        tenant: TenantId,
        action: VerificationAction,
    ) -> Result<VerificationOutput, AttemptError> {
        let command = Command {
            tenant,
            actor: Actor::System,
            at_ms: now_ms(),
            action: Action::Verification(action),
        };
        match self.store.execute_blocking(command) {
            Ok(CommandOutput::Verification(output)) => Ok(output),
            Ok(other) => Err(format!("unexpected output {other:?}")),
            Err(ExecuteError::Rejected(rejection)) => Err(rejection.to_string()),
            Err(ExecuteError::Storage(error)) => Err(error.to_string()),
        }
    }

    fn run(self) {
        while !self.stopped() {
            let Some(lease) = self.running.queue.lease(IDLE_WAIT) else {
                continue;
            };
            metrics::counter!("mercato_jobs_attempts_total").increment(1);
            metrics::histogram!("mercato_jobs_queue_wait_seconds")
                .record(lease.waited.as_secs_f64());
            let started = Instant::now();
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| self.process(&lease)))
                .unwrap_or_else(|panic| {
                    Err(format!("the worker panicked: {}", panic_message(&*panic)))
                });
            metrics::histogram!("mercato_job_processing_seconds")
                .record(started.elapsed().as_secs_f64());
            match outcome {
                Ok(()) => {
                    self.running.queue.finish(&lease);
                    metrics::counter!("mercato_jobs_completed_total").increment(1);
                }
                Err(error) => {
                    metrics::counter!("mercato_jobs_failed_total").increment(1);
                    tracing::warn!(tenant = %lease.job.tenant, job = lease.job.job_id, %error, "verification job attempt failed");
                    // Only the lease holder records the failure; a lapsed lease was already
                    // handed to the reaper, which records it.
                    if self.running.queue.finish(&lease) {
                        self.record_failure(lease.job, &error);
                    }
                }
            }
        }
    }

    /// Records a failed attempt durably and schedules the retry (or leaves the job dead).
    fn record_failure(&self, job: JobRef, error: &str) {
        let Ok(read) = self.store.read(job.tenant) else {
            return;
        };
        let Ok(Some(record)) = read.get(&JOBS, &job.job_id) else {
            return;
        };
        drop(read);
        let config = &self.running.config.queue;
        let attempts = record.attempts.saturating_add(1);
        let jitter = now_ms().wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ job.job_id;
        let retry_at_ms = now_ms() + config.backoff(attempts, jitter).as_millis() as u64;
        match self.execute(
            job.tenant,
            VerificationAction::FailJob {
                job_id: job.job_id,
                error: error.to_string(),
                retry_at_ms,
                attempts_max: config.attempts_max,
            },
        ) {
            Ok(VerificationOutput::Job(Some(failed))) if failed.state == JobState::Ready => {
                self.running.queue.push(job, failed.run_at_ms);
            }
            Ok(VerificationOutput::Job(Some(_))) => {
                metrics::counter!("mercato_jobs_dead_letters_total").increment(1);
                self.running.dead.fetch_add(1, Ordering::AcqRel);
                tracing::error!(tenant = %job.tenant, job = job.job_id, error, "verification job moved to the dead-letter list");
            }
            Ok(_) => {}
            Err(write_error) => {
                // Storage refused: the job is still ready in storage; try again later.
                tracing::error!(tenant = %job.tenant, job = job.job_id, %write_error, "recording a failed attempt failed; retrying later");
                self.running.queue.push(job, retry_at_ms);
            }
        }
    }

    fn reap_loop(self) {
        let mut last_gauges = Instant::now();
        while !self.stopped() {
            std::thread::sleep(REAP_INTERVAL);
            for job in self.running.queue.reap() {
                metrics::counter!("mercato_jobs_lease_expiries_total").increment(1);
                tracing::warn!(tenant = %job.tenant, job = job.job_id, "a verification job's lease lapsed; it is retried");
                self.record_failure(
                    job,
                    "the lease lapsed (the worker crashed, stalled or ran past its time budget)",
                );
            }
            if last_gauges.elapsed() >= Duration::from_secs(1) {
                last_gauges = Instant::now();
                let stats = self.running.queue.stats();
                metrics::gauge!("mercato_jobs", "state" => "ready").set(stats.ready as f64);
                metrics::gauge!("mercato_jobs", "state" => "scheduled").set(stats.scheduled as f64);
                metrics::gauge!("mercato_jobs", "state" => "leased").set(stats.leased as f64);
                metrics::gauge!("mercato_jobs", "state" => "dead")
                    .set(self.running.dead.load(Ordering::Acquire) as f64);
                metrics::gauge!("mercato_jobs_oldest_ready_age_seconds")
                    .set(stats.oldest_ready_ms as f64 / 1_000.0);
            }
        }
    }

    /// One attempt of a job. `Ok`: its outcome is durable (or it had nothing left to do).
    fn process(&self, lease: &Lease) -> Result<(), AttemptError> {
        let tenant = lease.job.tenant;
        let read = self.store.read(tenant).map_err(|e| e.to_string())?;
        let Some(job) = read
            .get(&JOBS, &lease.job.job_id)
            .map_err(|e| e.to_string())?
        else {
            return Ok(());
        };
        if job.state != JobState::Ready {
            return Ok(());
        }
        match job.kind {
            JobKind::Lifecycle => {
                match self.execute(tenant, VerificationAction::RunLifecycle { job_id: job.id })? {
                    VerificationOutput::Lifecycle { next_job, run } => {
                        tracing::info!(%tenant, expired = run.expired.len(), archived = run.archived.len(), deleted = run.deleted.len(), "verification lifecycle run");
                        self.running.queue.push(
                            JobRef {
                                tenant,
                                job_id: next_job.0,
                                priority: next_job.1,
                            },
                            next_job.2,
                        );
                        Ok(())
                    }
                    other => Err(format!("unexpected output {other:?}")),
                }
            }
            JobKind::Verify { document_id } => self.verify(lease, &read, job.id, document_id),
        }
    }

    /// Extracts the document's text on a scoped thread while this worker heartbeats the lease
    /// every third of its length, so a slow extraction (OCR of a large scan, a long PDF) keeps
    /// its job instead of letting the lease lapse and the job run again. Heartbeats stop
    /// extending the lease at the job's time budget (see [`JobQueue::heartbeat`]); OCR is killed
    /// before that (its timeout is below the budget, checked at start), and PDF parsing is
    /// bounded by the page, byte and memory limits. A panic on the extraction thread becomes a
    /// failed attempt.
    fn extract_heartbeating(
        &self,
        lease: &Lease,
        document: &Document,
        bytes: &[u8],
    ) -> Result<Extraction, AttemptError> {
        let config = &self.running.config.extract;
        let interval = (self.running.config.queue.lease / 3).max(Duration::from_millis(1));
        std::thread::scope(|scope| {
            let (tx, rx) = crossbeam_channel::bounded(1);
            let extraction = std::thread::Builder::new()
                .name("mercato-extract".into())
                .spawn_scoped(scope, move || {
                    #[cfg(test)]
                    test_hooks::during_extraction(document);
                    // The receiver waits until this thread ends: sending cannot fail.
                    let _ = tx.send(extract::extract(document.format, bytes, config));
                })
                .map_err(|error| format!("the extraction thread could not start: {error}"))?;
            let mut lost = false;
            loop {
                match rx.recv_timeout(interval) {
                    Ok(extracted) => {
                        let _ = extraction.join();
                        if lost {
                            return Err("extraction ran past the job's time budget".into());
                        }
                        return Ok(extracted);
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                        if !lost && !self.running.queue.heartbeat(lease) {
                            // The budget is spent or the lease was taken back: keep waiting for
                            // the (bounded) extraction, then report the attempt as failed.
                            lost = true;
                        }
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                        return Err(match extraction.join() {
                            Err(panic) => {
                                format!("extraction panicked: {}", panic_message(&*panic))
                            }
                            Ok(()) => "extraction ended without a result".into(),
                        });
                    }
                }
            }
        })
    }

    fn verify(
        &self,
        lease: &Lease,
        read: &mercato_storage::TenantRead,
        job_id: u64,
        document_id: u64,
    ) -> Result<(), AttemptError> {
        let tenant = lease.job.tenant;
        let storage_error = |e: mercato_storage::StorageError| e.to_string();
        let document = read.get(&DOCUMENTS, &document_id).map_err(storage_error)?;
        let complete = |input: CompleteJob| -> Result<(), AttemptError> {
            match self.execute(tenant, VerificationAction::Complete(Box::new(input)))? {
                VerificationOutput::Completed {
                    effect_written: true,
                    document: Some(d),
                } => {
                    metrics::histogram!("mercato_verification_upload_to_decision_seconds")
                        .record(now_ms().saturating_sub(d.uploaded_at_ms) as f64 / 1_000.0);
                    Ok(())
                }
                _ => Ok(()),
            }
        };
        let Some(document) = document else {
            // Deleted meanwhile: completing removes the job.
            return complete(CompleteJob {
                job_id,
                document_id,
                sha256: [0; 32],
                rules_version: rules::RULES_VERSION,
                text: None,
                extract_method: None,
                unreadable_reason: None,
                assessment: None,
                decision: Decision::Approve,
            });
        };
        let base = CompleteJob {
            job_id,
            document_id,
            sha256: document.sha256,
            rules_version: rules::RULES_VERSION,
            text: None,
            extract_method: None,
            unreadable_reason: None,
            assessment: None,
            decision: Decision::Approve,
        };
        if read
            .get(
                &VERIFICATION_RESULTS,
                &(document.sha256, rules::RULES_VERSION),
            )
            .map_err(storage_error)?
            .is_some()
        {
            // Verified before (a second delivery): completing changes nothing but the job.
            return complete(base);
        }
        let bytes = self
            .store
            .read_blob(tenant, &BlobHash::from_bytes(document.sha256))
            .map_err(storage_error)?
            .ok_or_else(|| "the document's bytes are missing from the blob store".to_string())?;
        #[cfg(test)]
        test_hooks::before_extraction(&document);
        if !self.running.queue.heartbeat(lease) {
            return Err("the lease was lost before extraction".into());
        }
        let extraction = self.extract_heartbeating(lease, &document, &bytes)?;
        drop(bytes);
        // The rules and the effect's commit are quick; a fresh lease covers them.
        if !self.running.queue.heartbeat(lease) {
            return Err("the lease was lost during extraction".into());
        }
        let text = match extraction {
            Extraction::Text { text, method } => (text, method),
            Extraction::Unreadable { reason } => {
                return complete(CompleteJob {
                    unreadable_reason: Some(reason),
                    decision: Decision::Review {
                        reasons: Vec::new(),
                    },
                    ..base
                });
            }
        };
        let Some(manufacturer) = read
            .get(&MANUFACTURERS, &document.manufacturer_id)
            .map_err(storage_error)?
        else {
            return Err(format!("manufacturer {} is gone", document.manufacturer_id));
        };
        let vendor = VendorProfile {
            name: manufacturer.name.clone(),
            country: manufacturer.country.0,
        };
        let owner = |number: &str| -> Option<u64> {
            read.get(&REGISTRATION_NUMBERS, &number.to_string())
                .ok()
                .flatten()
                .filter(|o| o.manufacturer_id != document.manufacturer_id)
                .map(|o| o.manufacturer_id)
        };
        let today = (now_ms() / DAY_MS) as i64;
        let assessment = rules::assess(document.doc_type, &text.0, &vendor, today, &owner);
        let tenant_policy = policy(read).map_err(storage_error)?;
        let decision = rules::decide(
            &assessment,
            &rules::Policy {
                auto_approve_pct: tenant_policy.auto_approve_pct,
                auto_reject_hard_failures: tenant_policy.auto_reject_hard_failures,
            },
        );
        complete(CompleteJob {
            text: Some(text.0),
            extract_method: Some(text.1),
            assessment: Some(assessment),
            decision,
            ..base
        })
    }
}

/// The message of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Whether `error` is the queue refusing an upload.
pub fn retry_after(error: &UploadError) -> Option<Duration> {
    match error {
        UploadError::Backlogged(b) => Some(b.retry_after),
        _ => None,
    }
}

/// Failure injection for the worker tests, compiled into test builds only: a document's file
/// name asks for a panic or a stall at a given point of its processing.
#[cfg(test)]
pub(crate) mod test_hooks {
    use crate::tables::Document;
    use std::collections::HashSet;
    use std::time::Duration;

    /// File names starting with this panic on the worker thread, before extraction.
    pub const PANIC_IN_WORKER: &str = "panic-in-worker";
    /// `slow-extraction-<ms>`: the extraction thread sleeps that long first (every attempt).
    pub const SLOW_EXTRACTION: &str = "slow-extraction-";
    /// `stall-once-<ms>`: the worker sleeps that long before it heartbeats, on the document's
    /// first attempt only (a stuck worker whose lease lapses).
    pub const STALL_ONCE: &str = "stall-once-";

    static STALLED: parking_lot::Mutex<Option<HashSet<[u8; 32]>>> = parking_lot::Mutex::new(None);

    fn millis(name: &str, prefix: &str) -> Option<Duration> {
        let digits: String = name
            .strip_prefix(prefix)?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok().map(Duration::from_millis)
    }

    pub(crate) fn before_extraction(document: &Document) {
        if document.file_name.starts_with(PANIC_IN_WORKER) {
            panic!("injected panic for document {}", document.id);
        }
        if let Some(stall) = millis(&document.file_name, STALL_ONCE)
            && STALLED
                .lock()
                .get_or_insert_with(HashSet::new)
                .insert(document.sha256)
        {
            std::thread::sleep(stall);
        }
    }

    pub(crate) fn during_extraction(document: &Document) {
        if let Some(delay) = millis(&document.file_name, SLOW_EXTRACTION) {
            std::thread::sleep(delay);
        }
    }
}
