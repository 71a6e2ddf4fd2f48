//! Vendor verification tables (ids 110..=139): documents and their extracted text, results
//! keyed by document hash and rules version, review cases, the tenant's verification policy,
//! notifications to manufacturers, lifecycle runs, and the durable job records of the
//! verification queue.
//!
//! Status codes inside keys: [`JobState::code`] (ready 0, dead 2), [`CaseState::code`] (open 0,
//! decided 1).

use crate::command::Actor;
use crate::tables::{IdRef, IndexMark};
use crate::verification::extract::{DocFormat, ExtractMethod};
use crate::verification::rules::{Assessment, DocumentType};
use mercato_storage::{Record, TableDef};
use serde::{Deserialize, Serialize};

/// Documents by id.
pub const DOCUMENTS: TableDef<u64, Document> = TableDef::new(110, "documents");
/// The document holding the bytes with this SHA-256 (one document per content per tenant).
pub const DOCUMENTS_BY_HASH: TableDef<[u8; 32], IdRef> = TableDef::new(111, "documents_by_hash");
/// `(manufacturer_id, document_id)`.
pub const DOCUMENTS_BY_MANUFACTURER: TableDef<(u64, u64), IndexMark> =
    TableDef::new(112, "documents_by_manufacturer");
/// `(expiry_day, document_id)` of approved documents with an expiry date (day number since
/// 1970-01-01): the lifecycle job expires them in order.
pub const DOCUMENTS_BY_EXPIRY: TableDef<(u64, u64), IndexMark> =
    TableDef::new(113, "documents_by_expiry");
/// `(uploaded_at_ms, document_id)` of documents not archived yet: retention archives them in
/// age order.
pub const DOCUMENTS_BY_UPLOAD: TableDef<(u64, u64), IndexMark> =
    TableDef::new(114, "documents_by_upload");
/// Extracted text by document id (kept apart so that listings do not read it).
pub const DOCUMENT_TEXT: TableDef<u64, DocumentText> = TableDef::new(115, "document_text");
/// `(content SHA-256, rules version)`: the one result of verifying these bytes with these
/// rules. Written once: a job delivered twice finds it and changes nothing.
pub const VERIFICATION_RESULTS: TableDef<([u8; 32], u32), VerificationResult> =
    TableDef::new(116, "verification_results");
/// Review cases by id.
pub const REVIEW_CASES: TableDef<u64, ReviewCase> = TableDef::new(117, "review_cases");
/// `(case state code, case_id)`.
pub const REVIEW_CASES_BY_STATE: TableDef<(u8, u64), IndexMark> =
    TableDef::new(118, "review_cases_by_state");
/// A normalized registration number and the manufacturer whose approved or pending document
/// carries it: duplicate detection across vendors.
pub const REGISTRATION_NUMBERS: TableDef<String, RegistrationOwner> =
    TableDef::new(119, "registration_numbers");
/// The tenant's verification policy (absent: [`VerificationPolicy::default`]).
pub const VERIFICATION_POLICY: TableDef<(), VerificationPolicy> =
    TableDef::new(120, "verification_policy");
/// `(manufacturer_id, notification_id)`: in-app notifications of document status changes.
pub const NOTIFICATIONS: TableDef<(u64, u64), Notification> = TableDef::new(121, "notifications");
/// Lifecycle runs by id: what each daily run expired, archived and deleted.
pub const LIFECYCLE_RUNS: TableDef<u64, LifecycleRun> = TableDef::new(122, "lifecycle_runs");
/// Durable job records of the verification queue.
pub const JOBS: TableDef<u64, Job> = TableDef::new(123, "jobs");
/// `(job state code, job_id)`: recovery loads the ready ones, admins list the dead ones.
pub const JOBS_BY_STATE: TableDef<(u8, u64), IndexMark> = TableDef::new(124, "jobs_by_state");
/// `(uploaded_at_ms, document_id)` of archived documents: retention deletes them in age order.
pub const DOCUMENTS_ARCHIVED_BY_UPLOAD: TableDef<(u64, u64), IndexMark> =
    TableDef::new(125, "documents_archived_by_upload");
/// The tenant's scheduled lifecycle job (absent until the first document upload).
pub const LIFECYCLE_NEXT: TableDef<(), IdRef> = TableDef::new(126, "lifecycle_next");

/// Where a document stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DocumentStatus {
    /// Uploaded; its verification job has not finished.
    Processing,
    /// Approved, automatically or by a reviewer.
    Approved,
    /// Rejected, automatically or by a reviewer.
    Rejected,
    /// Waiting in the manual review queue.
    InReview,
    /// A reviewer asked for a new upload.
    ResubmissionRequested,
    /// Was approved; its expiry date has passed.
    Expired,
}

impl DocumentStatus {
    /// Stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentStatus::Processing => "processing",
            DocumentStatus::Approved => "approved",
            DocumentStatus::Rejected => "rejected",
            DocumentStatus::InReview => "in_review",
            DocumentStatus::ResubmissionRequested => "resubmission_requested",
            DocumentStatus::Expired => "expired",
        }
    }

    /// Every status, for query validation.
    pub const ALL: [DocumentStatus; 6] = [
        DocumentStatus::Processing,
        DocumentStatus::Approved,
        DocumentStatus::Rejected,
        DocumentStatus::InReview,
        DocumentStatus::ResubmissionRequested,
        DocumentStatus::Expired,
    ];

    /// The status named by [`DocumentStatus::as_str`].
    pub fn parse(name: &str) -> Option<DocumentStatus> {
        DocumentStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// An uploaded verification document. Its bytes are a blob named by `sha256`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub id: u64,
    pub manufacturer_id: u64,
    pub doc_type: DocumentType,
    pub sha256: [u8; 32],
    pub format: DocFormat,
    pub bytes: u64,
    pub file_name: String,
    pub uploaded_by: Actor,
    pub uploaded_at_ms: u64,
    pub status: DocumentStatus,
    /// Why the document has its status (failed checks, a reviewer's reason, expiry).
    pub reasons: Vec<String>,
    /// The verification job, until it finishes.
    pub job_id: Option<u64>,
    /// The review case, once one was opened.
    pub case_id: Option<u64>,
    /// Rules version, confidence and text hash of the last assessment.
    pub rules_version: Option<u32>,
    pub confidence_pct: Option<u8>,
    pub text_sha256: Option<[u8; 32]>,
    /// How the text was obtained (`None`: not machine-readable or not yet processed).
    pub extract_method: Option<ExtractMethod>,
    /// Expiry date found in the document (day number since 1970-01-01).
    pub expiry_day: Option<i64>,
    /// The registration number found in it (normalized), held in `registration_numbers`.
    pub registration_number: Option<String>,
    /// When the manufacturer was asked for a renewal ahead of expiry.
    pub renewal_requested_at_ms: Option<u64>,
    pub decided_at_ms: Option<u64>,
    pub decided_by: Option<Actor>,
    /// Past the tenant's archive age: out of default listings, its extracted text dropped.
    pub archived: bool,
    pub updated_at_ms: u64,
}

impl Record for Document {
    const KIND: u16 = 110;
    const VERSION: u16 = 1;
}

/// A document's extracted text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentText(pub String);

impl Record for DocumentText {
    const KIND: u16 = 115;
    const VERSION: u16 = 1;
}

/// The outcome of verifying one content with one rules version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationResult {
    pub document_id: u64,
    pub rules_version: u32,
    /// SHA-256 of the extracted text (`None`: not machine-readable).
    pub text_sha256: Option<[u8; 32]>,
    /// The rules' findings and checks (`None`: not machine-readable).
    pub assessment: Option<Assessment>,
    /// Why the text could not be read, if it could not.
    pub unreadable_reason: Option<String>,
    /// What the policy decided: the document's status after the job.
    pub outcome: DocumentStatus,
    pub at_ms: u64,
}

impl Record for VerificationResult {
    const KIND: u16 = 116;
    const VERSION: u16 = 1;
}

/// A review case's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CaseState {
    Open,
    Decided,
}

impl CaseState {
    /// The code inside index keys.
    pub fn code(self) -> u8 {
        match self {
            CaseState::Open => 0,
            CaseState::Decided => 1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::Open => "open",
            CaseState::Decided => "decided",
        }
    }
}

/// What a reviewer decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReviewDecision {
    Approve,
    Reject,
    RequestResubmission,
}

impl ReviewDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewDecision::Approve => "approve",
            ReviewDecision::Reject => "reject",
            ReviewDecision::RequestResubmission => "request_resubmission",
        }
    }

    pub fn parse(name: &str) -> Option<ReviewDecision> {
        [
            ReviewDecision::Approve,
            ReviewDecision::Reject,
            ReviewDecision::RequestResubmission,
        ]
        .into_iter()
        .find(|d| d.as_str() == name)
    }
}

/// A document waiting for (or decided by) a person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewCase {
    pub id: u64,
    pub document_id: u64,
    pub manufacturer_id: u64,
    pub doc_type: DocumentType,
    pub opened_at_ms: u64,
    /// Why the document was not decided automatically.
    pub reasons: Vec<String>,
    pub state: CaseState,
    /// The reviewer holding the case, until `claim_until_ms`.
    pub claimed_by: Option<Actor>,
    pub claim_until_ms: u64,
    pub decision: Option<ReviewDecision>,
    /// The reviewer's reason for the decision.
    pub decision_reason: Option<String>,
    pub decided_by: Option<Actor>,
    pub decided_at_ms: Option<u64>,
}

impl Record for ReviewCase {
    const KIND: u16 = 117;
    const VERSION: u16 = 1;
}

/// Who holds a registration number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationOwner {
    pub manufacturer_id: u64,
    pub document_id: u64,
}

impl Record for RegistrationOwner {
    const KIND: u16 = 119;
    const VERSION: u16 = 1;
}

/// Default of [`VerificationPolicy::archive_after_days`] (the roadmap's example).
pub const ARCHIVE_AFTER_DAYS_DEFAULT: u32 = 90;
/// Default of [`VerificationPolicy::delete_after_days`]: seven years.
pub const DELETE_AFTER_DAYS_DEFAULT: u32 = 7 * 365 + 2;
/// Default of [`VerificationPolicy::reverify_days_before_expiry`].
pub const REVERIFY_DAYS_BEFORE_EXPIRY_DEFAULT: u32 = 30;

/// How a tenant verifies its manufacturers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationPolicy {
    /// Approve without review at or above this confidence (0..=100).
    pub auto_approve_pct: u8,
    /// Reject without review when a hard check fails (expired, wrong type).
    pub auto_reject_hard_failures: bool,
    /// A manufacturer is verified when it has an approved document of each of these types.
    pub required_types: Vec<DocumentType>,
    /// Documents uploaded longer ago than this leave default listings and lose their extracted
    /// text, unless they are in force: approved, unexpired (no expiry date or one in the
    /// future) and still the vendor's current proof of their type (no newer approved,
    /// unexpired document of that type). Superseded, rejected and expired documents are
    /// archived.
    pub archive_after_days: u32,
    /// Archived documents uploaded longer ago than this are deleted with their bytes; a
    /// document in force (see `archive_after_days`) is never archived, so never deleted.
    pub delete_after_days: u32,
    /// The manufacturer is asked to upload a renewal this many days before a document expires.
    pub reverify_days_before_expiry: u32,
}

impl Default for VerificationPolicy {
    fn default() -> Self {
        VerificationPolicy {
            auto_approve_pct: 90,
            auto_reject_hard_failures: true,
            required_types: vec![
                DocumentType::BusinessRegistration,
                DocumentType::TaxCertificate,
            ],
            archive_after_days: ARCHIVE_AFTER_DAYS_DEFAULT,
            delete_after_days: DELETE_AFTER_DAYS_DEFAULT,
            reverify_days_before_expiry: REVERIFY_DAYS_BEFORE_EXPIRY_DEFAULT,
        }
    }
}

impl Record for VerificationPolicy {
    const KIND: u16 = 120;
    const VERSION: u16 = 1;
}

/// An in-app notification to a manufacturer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: u64,
    pub document_id: u64,
    pub status: DocumentStatus,
    pub message: String,
    pub at_ms: u64,
}

impl Record for Notification {
    const KIND: u16 = 121;
    const VERSION: u16 = 1;
}

/// What one lifecycle run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleRun {
    pub id: u64,
    pub at_ms: u64,
    /// Documents whose expiry date passed (approved -> expired).
    pub expired: Vec<u64>,
    /// Documents archived (text dropped).
    pub archived: Vec<u64>,
    /// Documents deleted with their bytes.
    pub deleted: Vec<u64>,
    /// Expiry notices sent (renewal requests).
    pub reminded: Vec<u64>,
    /// The run hit its batch bound; the next run continues.
    pub truncated: bool,
}

impl Record for LifecycleRun {
    const KIND: u16 = 122;
    const VERSION: u16 = 1;
}

/// What a job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobKind {
    /// Extract, assess and decide a document.
    Verify { document_id: u64 },
    /// The tenant's daily retention and expiry run.
    Lifecycle,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Verify { .. } => "verify",
            JobKind::Lifecycle => "lifecycle",
        }
    }
}

/// Queue priority: lower runs first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum JobPriority {
    /// A manufacturer's first documents (onboarding).
    Onboarding,
    /// Renewals and resubmissions of a manufacturer that was verified before.
    Renewal,
    /// Housekeeping (lifecycle).
    Background,
}

impl JobPriority {
    /// Lane index in the ready queue.
    pub fn lane(self) -> usize {
        match self {
            JobPriority::Onboarding => 0,
            JobPriority::Renewal => 1,
            JobPriority::Background => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobPriority::Onboarding => "onboarding",
            JobPriority::Renewal => "renewal",
            JobPriority::Background => "background",
        }
    }
}

/// A job's durable state. Leases are not durable: after a restart every ready job is ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobState {
    /// Waiting to run at `run_at_ms` (or running under a lease in memory).
    Ready,
    /// Failed `attempts_max` times; waits for an admin's retry.
    Dead,
}

impl JobState {
    pub fn code(self) -> u8 {
        match self {
            JobState::Ready => 0,
            JobState::Dead => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Ready => "ready",
            JobState::Dead => "dead",
        }
    }
}

/// A durable job record. A finished job's record is deleted in the transaction that writes its
/// effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: u64,
    pub kind: JobKind,
    pub priority: JobPriority,
    pub state: JobState,
    /// Not before this time (scheduled jobs, retry backoff).
    pub run_at_ms: u64,
    /// Failed attempts so far.
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

impl Record for Job {
    const KIND: u16 = 123;
    const VERSION: u16 = 1;
}
