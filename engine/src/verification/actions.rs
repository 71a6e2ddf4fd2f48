//! The verification domain's commands: what an upload, a job's completion or failure, a
//! reviewer's claim and decision, a policy change and the daily lifecycle run write, each in
//! one transaction with its audit entries.
//!
//! # Exactly-once effects
//!
//! A job's effect (document status, review case, manufacturer status, notification) is written
//! by [`VerificationAction::Complete`] together with a row of `verification_results` keyed by
//! `(content SHA-256, rules version)` and the deletion of the job record. A second delivery of
//! the same job finds the result row (or no job) and writes nothing.

use super::extract::{DocFormat, ExtractMethod};
use super::rules::{Assessment, Decision, DocumentType};
use crate::catalog::not_found;
use crate::command::{Actor, Applied, Ctx, Rejection, reject};
use crate::tables::{
    CaseState, DOCUMENT_TEXT, DOCUMENTS, DOCUMENTS_ARCHIVED_BY_UPLOAD, DOCUMENTS_BY_EXPIRY,
    DOCUMENTS_BY_HASH, DOCUMENTS_BY_MANUFACTURER, DOCUMENTS_BY_UPLOAD, Document, DocumentStatus,
    DocumentText, IdRef, IndexMark, JOBS, JOBS_BY_STATE, Job, JobKind, JobPriority, JobState,
    LIFECYCLE_NEXT, LIFECYCLE_RUNS, LifecycleRun, MANUFACTURERS, NOTIFICATIONS, Notification,
    REGISTRATION_NUMBERS, REVIEW_CASES, REVIEW_CASES_BY_STATE, RegistrationOwner, ReviewCase,
    ReviewDecision, VERIFICATION_POLICY, VERIFICATION_RESULTS, VerificationPolicy,
    VerificationResult, VerificationStatus,
};
use mercato_storage::{BlobHash, StorageError, TenantReads};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// One day in milliseconds.
pub const DAY_MS: u64 = 86_400_000;
/// Longest file name kept with a document, in bytes (longer names are cut).
pub const FILE_NAME_BYTES_MAX: usize = 255;
/// Longest reviewer reason or job error, in bytes.
pub const REASON_BYTES_MAX: usize = 2_000;
/// Documents one manufacturer may hold.
pub const DOCUMENTS_PER_MANUFACTURER_MAX: usize = 1_000;
/// Documents one lifecycle run touches at most; a run that hits it schedules the next run a
/// minute later instead of a day.
pub const LIFECYCLE_BATCH_MAX: usize = 1_000;
/// Longest a reviewer may hold a case without renewing the claim.
pub const CLAIM_MS_MAX: u64 = 4 * 3_600_000;
/// Manufacturers whose verification a change of required types recomputes at once.
pub const POLICY_RECOMPUTE_MAX: usize = 10_000;
/// Notifications kept per manufacturer (the newest).
pub const NOTIFICATIONS_KEPT_MAX: u64 = 500;
/// Rows of the expiry index one lifecycle run reads while looking for documents to remind
/// (reminded ones are skipped without counting against [`LIFECYCLE_BATCH_MAX`]).
pub const REMINDER_SCAN_ROWS_MAX: usize = 100_000;
/// Rows of the upload indexes one lifecycle run reads for retention (documents kept because
/// they are in force are skipped without counting against [`LIFECYCLE_BATCH_MAX`]).
pub const RETENTION_SCAN_ROWS_MAX: usize = 100_000;
/// Bounds of the policy's day counts.
pub const POLICY_DAYS_MAX: u32 = 100 * 365;

/// A verification write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerificationAction {
    /// Stores a document (its bytes are already a blob) and its verification job.
    Upload(UploadDocument),
    /// Writes a verification job's effect, once.
    Complete(Box<CompleteJob>),
    /// Records a failed attempt: the job is retried at `retry_at_ms`, or dead after
    /// `attempts_max` attempts.
    FailJob {
        job_id: u64,
        error: String,
        retry_at_ms: u64,
        attempts_max: u32,
    },
    /// An admin's retry of a dead job.
    RetryJob {
        job_id: u64,
    },
    /// A reviewer takes a case for `claim_ms`.
    ClaimCase {
        case_id: u64,
        claim_ms: u64,
    },
    /// A reviewer gives a case back.
    ReleaseCase {
        case_id: u64,
    },
    /// A reviewer decides a case they hold.
    DecideCase {
        case_id: u64,
        decision: ReviewDecision,
        reason: String,
    },
    SetPolicy(VerificationPolicy),
    /// The daily retention and expiry run (the lifecycle job's effect).
    RunLifecycle {
        job_id: u64,
    },
}

impl VerificationAction {
    /// Audit and cache classification: whether the action may write a manufacturer record.
    pub fn may_change_manufacturers(&self) -> bool {
        !matches!(
            self,
            VerificationAction::FailJob { .. }
                | VerificationAction::RetryJob { .. }
                | VerificationAction::ClaimCase { .. }
                | VerificationAction::ReleaseCase { .. }
        )
    }
}

/// A new document's metadata (the bytes are stored by hash before the command).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadDocument {
    pub manufacturer_id: u64,
    pub doc_type: DocumentType,
    pub sha256: [u8; 32],
    pub format: DocFormat,
    pub bytes: u64,
    pub file_name: String,
}

/// A verification job's outcome, computed by a worker outside the transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteJob {
    pub job_id: u64,
    pub document_id: u64,
    pub sha256: [u8; 32],
    pub rules_version: u32,
    /// The extracted text (bounded by the extraction limits), if any.
    pub text: Option<String>,
    pub extract_method: Option<ExtractMethod>,
    pub unreadable_reason: Option<String>,
    pub assessment: Option<Assessment>,
    pub decision: Decision,
}

/// What a verification command returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerificationOutput {
    Uploaded {
        document: Document,
        /// `false`: the same bytes were uploaded before; this is that document.
        created: bool,
        /// Jobs written by the upload, for the in-memory queue: `(job id, priority, run at)`.
        jobs: Vec<(u64, JobPriority, u64)>,
    },
    Completed {
        /// `false`: the effect was written before (a second delivery) or the job is gone.
        effect_written: bool,
        document: Option<Document>,
    },
    Job(Option<Job>),
    Case(ReviewCase),
    Policy(VerificationPolicy),
    Lifecycle {
        run: LifecycleRun,
        next_job: (u64, JobPriority, u64),
    },
}

fn invalid<T>(field: &str, reason: impl Into<String>) -> Applied<T> {
    reject(Rejection::InvalidField {
        field: field.to_string(),
        reason: reason.into(),
    })
}

fn conflict<T>(code: &'static str, detail: impl Into<String>) -> Applied<T> {
    reject(Rejection::Conflict {
        code,
        detail: detail.into(),
    })
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// Lowercase hex of a hash.
pub fn hex(bytes: &[u8; 32]) -> String {
    BlobHash::from_bytes(*bytes).to_string()
}

pub(crate) fn apply(
    action: &VerificationAction,
    ctx: &mut Ctx<'_, '_>,
) -> Applied<VerificationOutput> {
    match action {
        VerificationAction::Upload(input) => upload(ctx, input),
        VerificationAction::Complete(input) => complete(ctx, input),
        VerificationAction::FailJob {
            job_id,
            error,
            retry_at_ms,
            attempts_max,
        } => fail_job(ctx, *job_id, error, *retry_at_ms, *attempts_max),
        VerificationAction::RetryJob { job_id } => retry_job(ctx, *job_id),
        VerificationAction::ClaimCase { case_id, claim_ms } => claim(ctx, *case_id, *claim_ms),
        VerificationAction::ReleaseCase { case_id } => release(ctx, *case_id),
        VerificationAction::DecideCase {
            case_id,
            decision,
            reason,
        } => decide_case(ctx, *case_id, *decision, reason),
        VerificationAction::SetPolicy(policy) => set_policy(ctx, policy),
        VerificationAction::RunLifecycle { job_id } => lifecycle(ctx, *job_id),
    }
}

/// The tenant's policy (the default until one is set).
pub fn policy(read: &impl TenantReads) -> Result<VerificationPolicy, StorageError> {
    Ok(read.get(&VERIFICATION_POLICY, &())?.unwrap_or_default())
}

fn put_job(ctx: &mut Ctx<'_, '_>, job: &Job) -> Result<(), StorageError> {
    ctx.tx.put(&JOBS, &job.id, job)?;
    ctx.tx
        .put(&JOBS_BY_STATE, &(job.state.code(), job.id), &IndexMark)
}

fn delete_job(ctx: &mut Ctx<'_, '_>, job: &Job) -> Result<(), StorageError> {
    ctx.tx.delete(&JOBS, &job.id)?;
    ctx.tx.delete(&JOBS_BY_STATE, &(job.state.code(), job.id))?;
    Ok(())
}

fn new_job(
    ctx: &mut Ctx<'_, '_>,
    kind: JobKind,
    priority: JobPriority,
    run_at_ms: u64,
) -> Result<Job, StorageError> {
    let job = Job {
        id: ctx.next_id("job")?,
        kind,
        priority,
        state: JobState::Ready,
        run_at_ms,
        attempts: 0,
        last_error: None,
        created_at_ms: ctx.at_ms,
        updated_at_ms: ctx.at_ms,
    };
    put_job(ctx, &job)?;
    Ok(job)
}

/// Adds a notification for the document's manufacturer and drops the one that falls out of
/// the [`NOTIFICATIONS_KEPT_MAX`] newest. Ids count per manufacturer, so the dropped one is
/// known without a scan.
fn notify(ctx: &mut Ctx<'_, '_>, document: &Document, message: String) -> Result<(), StorageError> {
    let manufacturer = document.manufacturer_id;
    let id = ctx.next_id(&format!("notification/{manufacturer}"))?;
    ctx.tx.put(
        &NOTIFICATIONS,
        &(manufacturer, id),
        &Notification {
            id,
            document_id: document.id,
            status: document.status,
            message,
            at_ms: ctx.at_ms,
        },
    )?;
    if id > NOTIFICATIONS_KEPT_MAX {
        ctx.tx
            .delete(&NOTIFICATIONS, &(manufacturer, id - NOTIFICATIONS_KEPT_MAX))?;
    }
    Ok(())
}

fn upload(ctx: &mut Ctx<'_, '_>, input: &UploadDocument) -> Applied<VerificationOutput> {
    let Some(mut manufacturer) = ctx.tx.get(&MANUFACTURERS, &input.manufacturer_id)? else {
        return reject(not_found("manufacturer", input.manufacturer_id));
    };
    if let Some(IdRef(existing)) = ctx.tx.get(&DOCUMENTS_BY_HASH, &input.sha256)? {
        let Some(document) = ctx.tx.get(&DOCUMENTS, &existing)? else {
            return reject(not_found("document", existing));
        };
        if document.manufacturer_id != input.manufacturer_id {
            return conflict(
                "document_belongs_to_another_manufacturer",
                "these exact bytes were uploaded for another manufacturer of the tenant",
            );
        }
        return Ok(VerificationOutput::Uploaded {
            document,
            created: false,
            jobs: Vec::new(),
        });
    }
    let held = ctx.tx.scan(
        &DOCUMENTS_BY_MANUFACTURER,
        &input.manufacturer_id,
        None,
        DOCUMENTS_PER_MANUFACTURER_MAX,
    )?;
    if held.len() >= DOCUMENTS_PER_MANUFACTURER_MAX {
        return conflict(
            "too_many_documents",
            format!(
                "a manufacturer holds at most {DOCUMENTS_PER_MANUFACTURER_MAX} documents; retention removes old ones"
            ),
        );
    }
    let priority = if manufacturer.verification == VerificationStatus::Verified {
        JobPriority::Renewal
    } else {
        JobPriority::Onboarding
    };
    let id = ctx.next_id("document")?;
    let job = new_job(
        ctx,
        JobKind::Verify { document_id: id },
        priority,
        ctx.at_ms,
    )?;
    let mut jobs = vec![(job.id, job.priority, job.run_at_ms)];
    let document = Document {
        id,
        manufacturer_id: input.manufacturer_id,
        doc_type: input.doc_type,
        sha256: input.sha256,
        format: input.format,
        bytes: input.bytes,
        file_name: truncate(input.file_name.trim(), FILE_NAME_BYTES_MAX),
        uploaded_by: ctx.actor.clone(),
        uploaded_at_ms: ctx.at_ms,
        status: DocumentStatus::Processing,
        reasons: Vec::new(),
        job_id: Some(job.id),
        case_id: None,
        rules_version: None,
        confidence_pct: None,
        text_sha256: None,
        extract_method: None,
        expiry_day: None,
        registration_number: None,
        renewal_requested_at_ms: None,
        decided_at_ms: None,
        decided_by: None,
        archived: false,
        updated_at_ms: ctx.at_ms,
    };
    ctx.tx.blob_ref_add(&BlobHash::from_bytes(input.sha256))?;
    ctx.tx.put(&DOCUMENTS, &id, &document)?;
    ctx.tx.put(&DOCUMENTS_BY_HASH, &input.sha256, &IdRef(id))?;
    ctx.tx.put(
        &DOCUMENTS_BY_MANUFACTURER,
        &(input.manufacturer_id, id),
        &IndexMark,
    )?;
    ctx.tx
        .put(&DOCUMENTS_BY_UPLOAD, &(ctx.at_ms, id), &IndexMark)?;
    if manufacturer.verification == VerificationStatus::Unverified {
        manufacturer.verification = VerificationStatus::Pending;
        manufacturer.updated_at_ms = ctx.at_ms;
        ctx.tx
            .put(&MANUFACTURERS, &manufacturer.id, &manufacturer)?;
        ctx.audit(
            "manufacturer.verification",
            format!("manufacturer/{}", manufacturer.id),
        );
    }
    if ctx.tx.get(&LIFECYCLE_NEXT, &())?.is_none() {
        let lifecycle = new_job(
            ctx,
            JobKind::Lifecycle,
            JobPriority::Background,
            ctx.at_ms + DAY_MS,
        )?;
        ctx.tx.put(&LIFECYCLE_NEXT, &(), &IdRef(lifecycle.id))?;
        jobs.push((lifecycle.id, lifecycle.priority, lifecycle.run_at_ms));
    }
    notify(
        ctx,
        &document,
        format!("{} received; verification started", input.doc_type.label()),
    )?;
    ctx.audit(
        "document.upload",
        format!("document/{id}#sha256={}", hex(&input.sha256)),
    );
    Ok(VerificationOutput::Uploaded {
        document,
        created: true,
        jobs,
    })
}

/// When a verified manufacturer that lacks an approved document of a required type loses its
/// status.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Demotion {
    /// Never: a document was approved, or is (still) being checked. Uploading new evidence
    /// never costs a verified manufacturer its status before that evidence is decided.
    Never,
    /// Unless a document of that type is still being checked (processing or in review): a
    /// document was rejected, the policy changed, or retention deleted documents.
    UnlessInFlight,
    /// At once: an approved document expired, so the evidence the status rests on lapsed.
    Always,
}

/// Sets a manufacturer's verification from its documents: verified when every type the
/// policy requires has an approved document, pending otherwise (but see [`Demotion`]). A
/// manufacturer without documents, and the statuses an admin sets by hand (`rejected`,
/// `suspended`), are left alone.
fn recompute_manufacturer(
    ctx: &mut Ctx<'_, '_>,
    manufacturer_id: u64,
    demotion: Demotion,
) -> Applied<()> {
    let Some(mut m) = ctx.tx.get(&MANUFACTURERS, &manufacturer_id)? else {
        return Ok(());
    };
    if matches!(
        m.verification,
        VerificationStatus::Rejected | VerificationStatus::Suspended
    ) {
        return Ok(());
    }
    let policy = policy(ctx.tx)?;
    let rows = ctx.tx.scan(
        &DOCUMENTS_BY_MANUFACTURER,
        &manufacturer_id,
        None,
        DOCUMENTS_PER_MANUFACTURER_MAX,
    )?;
    if rows.is_empty() {
        // No documents: the status was set by hand; nothing here to base a change on.
        return Ok(());
    }
    let mut approved = BTreeSet::new();
    let mut in_flight = BTreeSet::new();
    for ((_, id), _) in &rows {
        if let Some(d) = ctx.tx.get(&DOCUMENTS, id)? {
            match d.status {
                DocumentStatus::Approved => {
                    approved.insert(d.doc_type.as_str());
                }
                DocumentStatus::Processing | DocumentStatus::InReview => {
                    in_flight.insert(d.doc_type.as_str());
                }
                _ => {}
            }
        }
    }
    let verified = m.verification == VerificationStatus::Verified;
    let covered = |t: &DocumentType| {
        approved.contains(t.as_str())
            || (verified
                && match demotion {
                    Demotion::Never => true,
                    Demotion::UnlessInFlight => in_flight.contains(t.as_str()),
                    Demotion::Always => false,
                })
    };
    let status = if policy.required_types.iter().all(covered) {
        VerificationStatus::Verified
    } else {
        VerificationStatus::Pending
    };
    if status != m.verification {
        m.verification = status;
        m.updated_at_ms = ctx.at_ms;
        ctx.tx.put(&MANUFACTURERS, &m.id, &m)?;
        ctx.audit(
            "manufacturer.verification",
            format!("manufacturer/{}", m.id),
        );
    }
    Ok(())
}

fn open_case(
    ctx: &mut Ctx<'_, '_>,
    document: &Document,
    reasons: Vec<String>,
) -> Result<ReviewCase, StorageError> {
    let case = ReviewCase {
        id: ctx.next_id("review_case")?,
        document_id: document.id,
        manufacturer_id: document.manufacturer_id,
        doc_type: document.doc_type,
        opened_at_ms: ctx.at_ms,
        reasons,
        state: CaseState::Open,
        claimed_by: None,
        claim_until_ms: 0,
        decision: None,
        decision_reason: None,
        decided_by: None,
        decided_at_ms: None,
    };
    put_case(ctx, &case, None)?;
    Ok(case)
}

fn put_case(
    ctx: &mut Ctx<'_, '_>,
    case: &ReviewCase,
    before: Option<CaseState>,
) -> Result<(), StorageError> {
    if let Some(state) = before
        && state != case.state
    {
        ctx.tx
            .delete(&REVIEW_CASES_BY_STATE, &(state.code(), case.id))?;
    }
    ctx.tx.put(&REVIEW_CASES, &case.id, case)?;
    ctx.tx.put(
        &REVIEW_CASES_BY_STATE,
        &(case.state.code(), case.id),
        &IndexMark,
    )
}

/// Records a decided status on a document: the expiry index and registration number for an
/// approval, the manufacturer's status, a notification.
fn settle(
    ctx: &mut Ctx<'_, '_>,
    document: &mut Document,
    status: DocumentStatus,
    reasons: Vec<String>,
    decided: bool,
) -> Applied<()> {
    if document.status == DocumentStatus::Approved
        && let Some(day) = document.expiry_day
    {
        ctx.tx
            .delete(&DOCUMENTS_BY_EXPIRY, &(day.max(0) as u64, document.id))?;
    }
    document.status = status;
    document.reasons = reasons;
    document.updated_at_ms = ctx.at_ms;
    if decided {
        document.decided_at_ms = Some(ctx.at_ms);
        document.decided_by = Some(ctx.actor.clone());
    }
    if status == DocumentStatus::Approved
        && let Some(day) = document.expiry_day
    {
        ctx.tx.put(
            &DOCUMENTS_BY_EXPIRY,
            &(day.max(0) as u64, document.id),
            &IndexMark,
        )?;
    }
    if status != DocumentStatus::Rejected
        && let Some(number) = &document.registration_number
        && ctx.tx.get(&REGISTRATION_NUMBERS, number)?.is_none()
    {
        ctx.tx.put(
            &REGISTRATION_NUMBERS,
            number,
            &RegistrationOwner {
                manufacturer_id: document.manufacturer_id,
                document_id: document.id,
            },
        )?;
    }
    ctx.tx.put(&DOCUMENTS, &document.id, document)?;
    let message = match status {
        DocumentStatus::Approved => format!("{} approved", document.doc_type.label()),
        DocumentStatus::Rejected => format!(
            "{} rejected: {}",
            document.doc_type.label(),
            document.reasons.join("; ")
        ),
        DocumentStatus::InReview => format!("{} is being reviewed", document.doc_type.label()),
        DocumentStatus::ResubmissionRequested => format!(
            "{}: please upload it again: {}",
            document.doc_type.label(),
            document.reasons.join("; ")
        ),
        DocumentStatus::Expired => format!("{} expired", document.doc_type.label()),
        DocumentStatus::Processing => format!("{} is being verified", document.doc_type.label()),
    };
    notify(ctx, document, truncate(&message, REASON_BYTES_MAX))?;
    let demotion = match status {
        DocumentStatus::Expired => Demotion::Always,
        DocumentStatus::Rejected | DocumentStatus::ResubmissionRequested => {
            Demotion::UnlessInFlight
        }
        DocumentStatus::Approved | DocumentStatus::InReview | DocumentStatus::Processing => {
            Demotion::Never
        }
    };
    recompute_manufacturer(ctx, document.manufacturer_id, demotion)
}

fn complete(ctx: &mut Ctx<'_, '_>, input: &CompleteJob) -> Applied<VerificationOutput> {
    let gone = VerificationOutput::Completed {
        effect_written: false,
        document: None,
    };
    let Some(job) = ctx.tx.get(&JOBS, &input.job_id)? else {
        return Ok(gone);
    };
    delete_job(ctx, &job)?;
    let key = (input.sha256, input.rules_version);
    let Some(mut document) = ctx.tx.get(&DOCUMENTS, &input.document_id)? else {
        return Ok(gone);
    };
    if ctx.tx.get(&VERIFICATION_RESULTS, &key)?.is_some() || document.sha256 != input.sha256 {
        document.job_id = None;
        ctx.tx.put(&DOCUMENTS, &document.id, &document)?;
        return Ok(VerificationOutput::Completed {
            effect_written: false,
            document: Some(document),
        });
    }
    let text_sha256 = input
        .text
        .as_ref()
        .map(|text| <[u8; 32]>::from(Sha256::digest(text.as_bytes())));
    let (status, reasons) = match (&input.decision, &input.unreadable_reason) {
        (_, Some(reason)) => (DocumentStatus::InReview, vec![reason.clone()]),
        (Decision::Approve, None) => (DocumentStatus::Approved, Vec::new()),
        (Decision::Reject { reasons }, None) => (DocumentStatus::Rejected, reasons.clone()),
        (Decision::Review { reasons }, None) => (DocumentStatus::InReview, reasons.clone()),
    };
    let reasons: Vec<String> = reasons
        .iter()
        .map(|r| truncate(r, REASON_BYTES_MAX))
        .collect();
    ctx.tx.put(
        &VERIFICATION_RESULTS,
        &key,
        &VerificationResult {
            document_id: document.id,
            rules_version: input.rules_version,
            text_sha256,
            assessment: input.assessment.clone(),
            unreadable_reason: input.unreadable_reason.clone(),
            outcome: status,
            at_ms: ctx.at_ms,
        },
    )?;
    if let Some(text) = &input.text {
        ctx.tx
            .put(&DOCUMENT_TEXT, &document.id, &DocumentText(text.clone()))?;
    }
    document.job_id = None;
    document.rules_version = Some(input.rules_version);
    document.text_sha256 = text_sha256;
    document.extract_method = input.extract_method;
    if let Some(assessment) = &input.assessment {
        document.confidence_pct = Some(assessment.confidence_pct);
        document.expiry_day = assessment.findings.expiry_day;
        document.registration_number = assessment.findings.registration_number.clone();
    }
    if status == DocumentStatus::InReview {
        let case = open_case(ctx, &document, reasons.clone())?;
        document.case_id = Some(case.id);
    }
    settle(
        ctx,
        &mut document,
        status,
        reasons,
        status != DocumentStatus::InReview,
    )?;
    ctx.audit(
        "document.verify",
        format!(
            "document/{}#sha256={};text_sha256={};rules=v{};outcome={}",
            document.id,
            hex(&document.sha256),
            text_sha256.map_or_else(|| "none".to_string(), |h| hex(&h)),
            input.rules_version,
            status.as_str()
        ),
    );
    Ok(VerificationOutput::Completed {
        effect_written: true,
        document: Some(document),
    })
}

fn fail_job(
    ctx: &mut Ctx<'_, '_>,
    job_id: u64,
    error: &str,
    retry_at_ms: u64,
    attempts_max: u32,
) -> Applied<VerificationOutput> {
    let Some(mut job) = ctx.tx.get(&JOBS, &job_id)? else {
        return Ok(VerificationOutput::Job(None));
    };
    if job.state == JobState::Dead {
        return Ok(VerificationOutput::Job(Some(job)));
    }
    ctx.tx.delete(&JOBS_BY_STATE, &(job.state.code(), job.id))?;
    job.attempts = job.attempts.saturating_add(1);
    job.last_error = Some(truncate(error, REASON_BYTES_MAX));
    job.updated_at_ms = ctx.at_ms;
    if job.attempts >= attempts_max {
        job.state = JobState::Dead;
        ctx.audit("job.dead", format!("job/{}", job.id));
        if let JobKind::Verify { document_id } = job.kind
            && let Some(mut document) = ctx.tx.get(&DOCUMENTS, &document_id)?
        {
            document.reasons = vec![format!(
                "automatic verification failed {} times ({}); an administrator can retry it",
                job.attempts,
                truncate(error, 200)
            )];
            document.updated_at_ms = ctx.at_ms;
            ctx.tx.put(&DOCUMENTS, &document.id, &document)?;
        }
    } else {
        job.run_at_ms = retry_at_ms;
        ctx.audit("job.retry_scheduled", format!("job/{}", job.id));
    }
    put_job(ctx, &job)?;
    Ok(VerificationOutput::Job(Some(job)))
}

fn retry_job(ctx: &mut Ctx<'_, '_>, job_id: u64) -> Applied<VerificationOutput> {
    let Some(mut job) = ctx.tx.get(&JOBS, &job_id)? else {
        return reject(not_found("job", job_id));
    };
    if job.state != JobState::Dead {
        return conflict(
            "job_not_dead",
            format!("job {job_id} is not in the dead-letter list"),
        );
    }
    ctx.tx.delete(&JOBS_BY_STATE, &(job.state.code(), job.id))?;
    job.state = JobState::Ready;
    job.attempts = 0;
    job.run_at_ms = ctx.at_ms;
    job.updated_at_ms = ctx.at_ms;
    put_job(ctx, &job)?;
    ctx.audit("job.retry", format!("job/{}", job.id));
    Ok(VerificationOutput::Job(Some(job)))
}

fn open_case_for_update(ctx: &Ctx<'_, '_>, case_id: u64) -> Applied<ReviewCase> {
    let Some(case) = ctx.tx.get(&REVIEW_CASES, &case_id)? else {
        return reject(not_found("review_case", case_id));
    };
    if case.state != CaseState::Open {
        return conflict("case_decided", format!("review case {case_id} is decided"));
    }
    Ok(case)
}

fn held_by_other(case: &ReviewCase, actor: &Actor, at_ms: u64) -> bool {
    case.claim_until_ms > at_ms && case.claimed_by.as_ref().is_some_and(|by| by != actor)
}

fn claim(ctx: &mut Ctx<'_, '_>, case_id: u64, claim_ms: u64) -> Applied<VerificationOutput> {
    if !(1_000..=CLAIM_MS_MAX).contains(&claim_ms) {
        return invalid(
            "claim_seconds",
            format!("must be 1..={}", CLAIM_MS_MAX / 1_000),
        );
    }
    let mut case = open_case_for_update(ctx, case_id)?;
    if held_by_other(&case, ctx.actor, ctx.at_ms) {
        return conflict(
            "case_claimed",
            format!("review case {case_id} is claimed by another reviewer"),
        );
    }
    case.claimed_by = Some(ctx.actor.clone());
    case.claim_until_ms = ctx.at_ms + claim_ms;
    put_case(ctx, &case, Some(case.state))?;
    ctx.audit("review.claim", format!("review_case/{case_id}"));
    Ok(VerificationOutput::Case(case))
}

fn release(ctx: &mut Ctx<'_, '_>, case_id: u64) -> Applied<VerificationOutput> {
    let mut case = open_case_for_update(ctx, case_id)?;
    if case.claimed_by.as_ref() != Some(ctx.actor) || case.claim_until_ms <= ctx.at_ms {
        return conflict(
            "case_not_claimed",
            format!("review case {case_id} is not claimed by you"),
        );
    }
    case.claimed_by = None;
    case.claim_until_ms = 0;
    put_case(ctx, &case, Some(case.state))?;
    ctx.audit("review.release", format!("review_case/{case_id}"));
    Ok(VerificationOutput::Case(case))
}

fn decide_case(
    ctx: &mut Ctx<'_, '_>,
    case_id: u64,
    decision: ReviewDecision,
    reason: &str,
) -> Applied<VerificationOutput> {
    let reason = reason.trim();
    if reason.len() > REASON_BYTES_MAX {
        return invalid("reason", format!("at most {REASON_BYTES_MAX} bytes"));
    }
    if reason.is_empty() && decision != ReviewDecision::Approve {
        return invalid(
            "reason",
            "a rejection or resubmission request needs a reason",
        );
    }
    let mut case = open_case_for_update(ctx, case_id)?;
    if case.claimed_by.as_ref() != Some(ctx.actor) || case.claim_until_ms <= ctx.at_ms {
        return conflict(
            "case_not_claimed",
            format!("claim review case {case_id} before deciding it"),
        );
    }
    let Some(mut document) = ctx.tx.get(&DOCUMENTS, &case.document_id)? else {
        return reject(not_found("document", case.document_id));
    };
    let status = match decision {
        ReviewDecision::Approve => DocumentStatus::Approved,
        ReviewDecision::Reject => DocumentStatus::Rejected,
        ReviewDecision::RequestResubmission => DocumentStatus::ResubmissionRequested,
    };
    let reasons = if reason.is_empty() {
        Vec::new()
    } else {
        vec![reason.to_string()]
    };
    settle(ctx, &mut document, status, reasons, true)?;
    case.state = CaseState::Decided;
    case.decision = Some(decision);
    case.decision_reason = (!reason.is_empty()).then(|| reason.to_string());
    case.decided_by = Some(ctx.actor.clone());
    case.decided_at_ms = Some(ctx.at_ms);
    put_case(ctx, &case, Some(CaseState::Open))?;
    ctx.audit(
        "review.decide",
        format!(
            "document/{}#sha256={};text_sha256={};rules=v{};case={};decision={}",
            document.id,
            hex(&document.sha256),
            document
                .text_sha256
                .map_or_else(|| "none".to_string(), |h| hex(&h)),
            document.rules_version.unwrap_or(0),
            case.id,
            decision.as_str()
        ),
    );
    Ok(VerificationOutput::Case(case))
}

fn set_policy(ctx: &mut Ctx<'_, '_>, policy: &VerificationPolicy) -> Applied<VerificationOutput> {
    if policy.auto_approve_pct > 100 {
        return invalid("auto_approve_pct", "must be 0..=100");
    }
    if policy.required_types.is_empty() {
        return invalid("required_types", "name at least one document type");
    }
    let distinct: BTreeSet<&str> = policy.required_types.iter().map(|t| t.as_str()).collect();
    if distinct.len() != policy.required_types.len() {
        return invalid("required_types", "a type is named twice");
    }
    for (field, days) in [
        ("archive_after_days", policy.archive_after_days),
        ("delete_after_days", policy.delete_after_days),
        (
            "reverify_days_before_expiry",
            policy.reverify_days_before_expiry,
        ),
    ] {
        if !(1..=POLICY_DAYS_MAX).contains(&days) {
            return invalid(field, format!("must be 1..={POLICY_DAYS_MAX}"));
        }
    }
    if policy.archive_after_days > policy.delete_after_days {
        return invalid(
            "archive_after_days",
            "documents are archived before they are deleted: at most delete_after_days",
        );
    }
    let before = self::policy(ctx.tx)?;
    ctx.tx.put(&VERIFICATION_POLICY, &(), policy)?;
    ctx.audit("verification.policy", "verification_policy");
    if before.required_types != policy.required_types {
        // Who is verified depends on the required types: every manufacturer is looked at again
        // (up to the bound; the rest at their next document decision).
        let manufacturers = ctx
            .tx
            .scan(&MANUFACTURERS, &(), None, POLICY_RECOMPUTE_MAX)?;
        for (id, _) in manufacturers {
            recompute_manufacturer(ctx, id, Demotion::UnlessInFlight)?;
        }
    }
    Ok(VerificationOutput::Policy(policy.clone()))
}

fn delete_document(ctx: &mut Ctx<'_, '_>, document: &Document) -> Result<(), StorageError> {
    ctx.tx.delete(&DOCUMENTS, &document.id)?;
    ctx.tx.delete(&DOCUMENTS_BY_HASH, &document.sha256)?;
    ctx.tx.delete(
        &DOCUMENTS_BY_MANUFACTURER,
        &(document.manufacturer_id, document.id),
    )?;
    ctx.tx.delete(
        &DOCUMENTS_ARCHIVED_BY_UPLOAD,
        &(document.uploaded_at_ms, document.id),
    )?;
    ctx.tx.delete(
        &DOCUMENTS_BY_UPLOAD,
        &(document.uploaded_at_ms, document.id),
    )?;
    if let Some(day) = document.expiry_day {
        ctx.tx
            .delete(&DOCUMENTS_BY_EXPIRY, &(day.max(0) as u64, document.id))?;
    }
    ctx.tx.delete(&DOCUMENT_TEXT, &document.id)?;
    if let Some(number) = &document.registration_number
        && ctx
            .tx
            .get(&REGISTRATION_NUMBERS, number)?
            .is_some_and(|owner| owner.document_id == document.id)
    {
        ctx.tx.delete(&REGISTRATION_NUMBERS, number)?;
    }
    for (key, _) in ctx
        .tx
        .scan(&VERIFICATION_RESULTS, &document.sha256, None, 64)?
    {
        ctx.tx.delete(&VERIFICATION_RESULTS, &key)?;
    }
    ctx.tx
        .blob_ref_remove(&BlobHash::from_bytes(document.sha256))?;
    Ok(())
}

/// Whether retention must keep `document`: it is approved, has not expired (no expiry date, or
/// one from `today` on), and no newer document of the same type of the same vendor is approved
/// and unexpired (which would supersede it). Superseded, rejected, expired and undecided
/// documents are not in force.
fn in_force(ctx: &Ctx<'_, '_>, document: &Document, today: i64) -> Result<bool, StorageError> {
    let unexpired = |d: &Document| d.expiry_day.is_none_or(|day| day >= today);
    if document.status != DocumentStatus::Approved || !unexpired(document) {
        return Ok(false);
    }
    let newer = ctx.tx.scan(
        &DOCUMENTS_BY_MANUFACTURER,
        &document.manufacturer_id,
        Some(&(document.manufacturer_id, document.id)),
        DOCUMENTS_PER_MANUFACTURER_MAX,
    )?;
    for ((_, id), _) in newer {
        if let Some(other) = ctx.tx.get(&DOCUMENTS, &id)?
            && other.doc_type == document.doc_type
            && other.status == DocumentStatus::Approved
            && unexpired(&other)
        {
            return Ok(false);
        }
    }
    Ok(true)
}

fn lifecycle(ctx: &mut Ctx<'_, '_>, job_id: u64) -> Applied<VerificationOutput> {
    let Some(job) = ctx.tx.get(&JOBS, &job_id)? else {
        return reject(not_found("job", job_id));
    };
    delete_job(ctx, &job)?;
    let policy = policy(ctx.tx)?;
    let today = (ctx.at_ms / DAY_MS) as i64;
    let mut run = LifecycleRun {
        id: ctx.next_id("lifecycle_run")?,
        at_ms: ctx.at_ms,
        ..LifecycleRun::default()
    };
    let mut budget = LIFECYCLE_BATCH_MAX;
    let mut manufacturers = BTreeSet::new();

    // Approved documents whose expiry date passed.
    for ((day, id), _) in ctx.tx.scan(&DOCUMENTS_BY_EXPIRY, &(), None, budget)? {
        if day as i64 >= today {
            break;
        }
        budget -= 1;
        if let Some(mut document) = ctx.tx.get(&DOCUMENTS, &id)? {
            let reason = format!(
                "expired on {}",
                super::dates::format_day(document.expiry_day.unwrap_or(day as i64))
            );
            settle(
                ctx,
                &mut document,
                DocumentStatus::Expired,
                vec![reason],
                false,
            )?;
            manufacturers.insert(document.manufacturer_id);
            run.expired.push(id);
        } else {
            ctx.tx.delete(&DOCUMENTS_BY_EXPIRY, &(day, id))?;
        }
    }
    // Renewal requests ahead of expiry.
    // Documents reminded on an earlier day stay in the index until they expire: read on past
    // them page by page.
    let horizon = today + i64::from(policy.reverify_days_before_expiry);
    let mut after = None;
    let mut scanned = 0usize;
    'remind: while budget > 0 && scanned < REMINDER_SCAN_ROWS_MAX {
        let rows = ctx.tx.scan(
            &DOCUMENTS_BY_EXPIRY,
            &(),
            after.as_ref(),
            LIFECYCLE_BATCH_MAX,
        )?;
        let full = rows.len() == LIFECYCLE_BATCH_MAX;
        scanned += rows.len();
        after = rows.last().map(|(key, _)| *key);
        for ((day, id), _) in rows {
            if day as i64 > horizon || budget == 0 {
                break 'remind;
            }
            if let Some(mut document) = ctx.tx.get(&DOCUMENTS, &id)?
                && document.renewal_requested_at_ms.is_none()
            {
                budget -= 1;
                document.renewal_requested_at_ms = Some(ctx.at_ms);
                ctx.tx.put(&DOCUMENTS, &id, &document)?;
                notify(
                    ctx,
                    &document,
                    format!(
                        "{} expires on {}: upload a renewal",
                        document.doc_type.label(),
                        super::dates::format_day(day as i64)
                    ),
                )?;
                run.reminded.push(id);
            }
        }
        if !full {
            break;
        }
    }
    // Retention (archive, then delete) by upload time, except for documents in force (see
    // `in_force`): an approved, unexpired document that is still the vendor's current proof of
    // its type is the evidence the vendor is verified on. Kept documents stay in the indexes
    // (they are looked at again on later runs, until a newer one supersedes them or they
    // expire) and do not count against the batch.
    let archive_before = ctx
        .at_ms
        .saturating_sub(u64::from(policy.archive_after_days) * DAY_MS);
    let mut after = None;
    let mut retention_scanned = 0usize;
    'archive: while budget > 0 && retention_scanned < RETENTION_SCAN_ROWS_MAX {
        let rows = ctx.tx.scan(
            &DOCUMENTS_BY_UPLOAD,
            &(),
            after.as_ref(),
            LIFECYCLE_BATCH_MAX,
        )?;
        let full = rows.len() == LIFECYCLE_BATCH_MAX;
        retention_scanned += rows.len();
        after = rows.last().map(|(key, _)| *key);
        for ((uploaded, id), _) in rows {
            if uploaded >= archive_before || budget == 0 {
                break 'archive;
            }
            let document = ctx.tx.get(&DOCUMENTS, &id)?;
            if let Some(document) = &document
                && in_force(ctx, document, today)?
            {
                continue;
            }
            budget -= 1;
            ctx.tx.delete(&DOCUMENTS_BY_UPLOAD, &(uploaded, id))?;
            // Archive: out of default listings, extracted text dropped.
            if let Some(mut document) = document {
                document.archived = true;
                document.updated_at_ms = ctx.at_ms;
                ctx.tx.put(&DOCUMENTS, &id, &document)?;
                ctx.tx.delete(&DOCUMENT_TEXT, &id)?;
                ctx.tx
                    .put(&DOCUMENTS_ARCHIVED_BY_UPLOAD, &(uploaded, id), &IndexMark)?;
                run.archived.push(id);
            }
        }
        if !full {
            break;
        }
    }
    // Delete past the retention period (archived documents only, so never one in force; the
    // check is repeated in case an archived document became the current proof again).
    let delete_before = ctx
        .at_ms
        .saturating_sub(u64::from(policy.delete_after_days) * DAY_MS);
    let mut after = None;
    'delete: while budget > 0 && retention_scanned < RETENTION_SCAN_ROWS_MAX {
        let rows = ctx.tx.scan(
            &DOCUMENTS_ARCHIVED_BY_UPLOAD,
            &(),
            after.as_ref(),
            LIFECYCLE_BATCH_MAX,
        )?;
        let full = rows.len() == LIFECYCLE_BATCH_MAX;
        retention_scanned += rows.len();
        after = rows.last().map(|(key, _)| *key);
        for ((uploaded, id), _) in rows {
            if uploaded >= delete_before || budget == 0 {
                break 'delete;
            }
            match ctx.tx.get(&DOCUMENTS, &id)? {
                Some(document) if in_force(ctx, &document, today)? => continue,
                Some(document) => {
                    budget -= 1;
                    delete_document(ctx, &document)?;
                    manufacturers.insert(document.manufacturer_id);
                    run.deleted.push(id);
                }
                None => {
                    budget -= 1;
                    ctx.tx
                        .delete(&DOCUMENTS_ARCHIVED_BY_UPLOAD, &(uploaded, id))?;
                }
            }
        }
        if !full {
            break;
        }
    }
    for manufacturer in manufacturers {
        recompute_manufacturer(ctx, manufacturer, Demotion::UnlessInFlight)?;
    }
    run.truncated = budget == 0
        || scanned >= REMINDER_SCAN_ROWS_MAX
        || retention_scanned >= RETENTION_SCAN_ROWS_MAX;
    let next_at = ctx.at_ms + if run.truncated { 60_000 } else { DAY_MS };
    let next = new_job(ctx, JobKind::Lifecycle, JobPriority::Background, next_at)?;
    ctx.tx.put(&LIFECYCLE_NEXT, &(), &IdRef(next.id))?;
    ctx.tx.put(&LIFECYCLE_RUNS, &run.id, &run)?;
    ctx.audit(
        "verification.lifecycle",
        format!("lifecycle_run/{}", run.id),
    );
    Ok(VerificationOutput::Lifecycle {
        run,
        next_job: (next.id, next.priority, next.run_at_ms),
    })
}
