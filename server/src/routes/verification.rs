//! Vendor verification over HTTP: document uploads (multipart) and their status for
//! manufacturers, the review queue for reviewers, and the policy, jobs (dead letters) and
//! lifecycle runs for tenant admins.

use crate::api::{Auth, blocking, created, ok_json};
use crate::app::AppState;
use crate::problem::{ApiError, ErrorCode};
use axum::Json;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use mercato_engine::jobs::now_ms;
use mercato_engine::tables::{
    CaseState, Document, JobState, LifecycleRun, Notification, ReviewCase, ReviewDecision,
    VerificationPolicy, VerificationResult,
};
use mercato_engine::verification::actions::hex;
use mercato_engine::verification::dates::format_day;
use mercato_engine::verification::rules::DocumentType;
use mercato_engine::verification::service::{Listing, UPLOAD_BYTES_LIMIT, UploadError};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Room for the multipart framing around a document.
pub const MULTIPART_OVERHEAD_BYTES: usize = 64 * 1024;
/// The largest upload request the route reads at all: the largest configurable document plus
/// framing. The configured bound (`verification.upload_bytes_max`) is applied to declared
/// lengths before the body is read, and to the document itself.
pub const DOCUMENT_BODY_BYTES_MAX: usize = UPLOAD_BYTES_LIMIT as usize + MULTIPART_OVERHEAD_BYTES;
/// Largest JSON body of the other verification routes.
const JSON_BODY_BYTES_MAX: usize = 16 * 1024;
/// Default claim length.
const CLAIM_SECONDS_DEFAULT: u64 = 1_800;
/// Longest extracted text returned with a document.
const TEXT_EXCERPT_BYTES_MAX: usize = 4_096;

pub fn router() -> OpenApiRouter<AppState> {
    let upload = OpenApiRouter::new()
        .routes(routes!(upload_document, list_documents))
        .layer(DefaultBodyLimit::max(DOCUMENT_BODY_BYTES_MAX));
    OpenApiRouter::new()
        .routes(routes!(get_document))
        .routes(routes!(document_content))
        .routes(routes!(list_notifications))
        .routes(routes!(list_cases))
        .routes(routes!(get_case))
        .routes(routes!(claim_case))
        .routes(routes!(release_case))
        .routes(routes!(decide_case))
        .routes(routes!(get_policy, put_policy))
        .routes(routes!(list_jobs))
        .routes(routes!(retry_job))
        .routes(routes!(list_lifecycle_runs))
        .layer(DefaultBodyLimit::max(JSON_BODY_BYTES_MAX))
        .merge(upload)
}

/// Whether `path` is a document upload (it has a larger body bound).
pub fn is_upload_path(path: &str) -> bool {
    path.starts_with("/v1/manufacturers/") && path.ends_with("/documents")
}

/// A verification document and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentDto {
    pub id: u64,
    pub manufacturer_id: u64,
    /// `business_registration`, `tax_certificate`, `insurance_certificate`, `bank_letter`,
    /// `identity_document` or `other`.
    pub r#type: String,
    /// `processing`, `approved`, `rejected`, `in_review`, `resubmission_requested`, `expired`.
    pub status: String,
    /// Why the document has its status.
    pub reasons: Vec<String>,
    pub sha256: String,
    /// `pdf`, `png`, `jpeg`, `tiff` or `text` (detected from the bytes).
    pub format: String,
    pub bytes: u64,
    pub file_name: String,
    pub uploaded_at_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence_pct: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules_version: Option<u32>,
    /// Expiry date read from the document (YYYY-MM-DD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_on: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_case_id: Option<u64>,
    pub archived: bool,
}

impl From<Document> for DocumentDto {
    fn from(d: Document) -> Self {
        DocumentDto {
            id: d.id,
            manufacturer_id: d.manufacturer_id,
            r#type: d.doc_type.as_str().to_owned(),
            status: d.status.as_str().to_owned(),
            reasons: d.reasons,
            sha256: hex(&d.sha256),
            format: d.format.as_str().to_owned(),
            bytes: d.bytes,
            file_name: d.file_name,
            uploaded_at_ms: d.uploaded_at_ms,
            confidence_pct: d.confidence_pct,
            rules_version: d.rules_version,
            expires_on: d.expiry_day.map(format_day),
            review_case_id: d.case_id,
            archived: d.archived,
        }
    }
}

/// One check the rules applied, with the text it found.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckDto {
    pub name: String,
    pub passed: bool,
    /// A failed hard check rejects the document.
    pub hard: bool,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

/// A document with its checks and (the start of) its extracted text.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentDetailDto {
    #[serde(flatten)]
    pub document: DocumentDto,
    pub checks: Vec<CheckDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_sha256: Option<String>,
    /// The first 4 KiB of the extracted text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_excerpt: Option<String>,
}

fn detail(
    (document, text, result): (Document, Option<String>, Option<VerificationResult>),
) -> DocumentDetailDto {
    let checks = result
        .and_then(|r| r.assessment)
        .map(|a| {
            a.checks
                .into_iter()
                .map(|c| CheckDto {
                    name: c.name,
                    passed: c.passed,
                    hard: c.hard,
                    detail: c.detail,
                    evidence: c.evidence.map(|e| e.text),
                })
                .collect()
        })
        .unwrap_or_default();
    DocumentDetailDto {
        text_sha256: document.text_sha256.as_ref().map(hex),
        text_excerpt: text
            .map(|t| mercato_engine::verification::actions::truncate(&t, TEXT_EXCERPT_BYTES_MAX)),
        document: document.into(),
        checks,
    }
}

/// A page of items with the cursor of the next.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageDto<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
}

fn page<T, U: From<T>>(listing: Listing<T>) -> PageDto<U> {
    PageDto {
        items: listing.items.into_iter().map(U::from).collect(),
        next_after: listing.next_after,
    }
}

/// Paging of the verification listings.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AfterParams {
    /// `next_after` of the previous page.
    after: Option<u64>,
    /// 1..=500, default 50.
    limit: Option<usize>,
    /// Include archived documents (document listings only).
    #[serde(default)]
    include_archived: bool,
}

impl AfterParams {
    fn limit(&self) -> Result<usize, ApiError> {
        page_limit(self.limit)
    }
}

/// A listing's page size: 50 by default, 1..=500.
fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(50),
        Some(n) if (1..=500).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid_field("limit", "must be 1..=500")),
    }
}

fn upload_error(error: UploadError) -> ApiError {
    match error {
        UploadError::TooLarge { .. } => {
            ApiError::new(ErrorCode::PayloadTooLarge, error.to_string())
        }
        UploadError::UnsupportedFormat => {
            ApiError::new(ErrorCode::UnsupportedMediaType, error.to_string())
        }
        UploadError::Empty => ApiError::invalid_field("file", "the file is empty"),
        UploadError::Backlogged(b) => ApiError::new(
            ErrorCode::Overloaded,
            format!("{b}; the document was not stored"),
        )
        .with_header(
            header::RETRY_AFTER,
            HeaderValue::from(b.retry_after.as_secs().max(1)),
        ),
        UploadError::Engine(e) => e.into(),
    }
}

/// Upload form: `type` (a document type) and `file` (the bytes; its file name is kept).
#[derive(ToSchema)]
#[allow(dead_code)]
struct UploadForm {
    r#type: String,
    #[schema(format = Binary, content_media_type = "application/octet-stream")]
    file: Vec<u8>,
}

#[utoipa::path(
    post, path = "/v1/manufacturers/{id}/documents", tag = "verification",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Manufacturer id")),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored; verification queued", body = DocumentDto),
        (status = 200, description = "The same bytes were uploaded before: that document", body = DocumentDto),
        (status = 404, description = "No such manufacturer visible to the caller", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Larger than the upload limit", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "Not a PDF, PNG, JPEG, TIFF or text file", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "A form field is missing or invalid (`type`, `file`)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "The verification backlog is full; see Retry-After", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn upload_document(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    request: Request,
) -> Result<Response, ApiError> {
    // The manufacturer first: another tenant's id is a 404 whatever the body is.
    let check = principal.clone();
    blocking(&state, move |engine| {
        engine.manufacturer_read(&check, id).map(|_| ())
    })
    .await?;
    let mut form = Multipart::from_request(request, &state)
        .await
        .map_err(|e| ApiError::invalid_field("file", e.body_text()))?;
    let mut doc_type = None;
    let mut file = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::invalid_field("file", e.body_text()))?
    {
        match field.name() {
            Some("type") => {
                let text = field
                    .text()
                    .await
                    .map_err(|e| ApiError::invalid_field("type", e.body_text()))?;
                doc_type = Some(DocumentType::parse(text.trim()).ok_or_else(|| {
                    ApiError::invalid_field(
                        "type",
                        "must be business_registration, tax_certificate, insurance_certificate, bank_letter, identity_document or other",
                    )
                })?);
            }
            Some("file") => {
                let name = field.file_name().unwrap_or("document").to_owned();
                let bytes = field.bytes().await.map_err(|e| {
                    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                        ApiError::new(ErrorCode::PayloadTooLarge, e.body_text())
                    } else {
                        ApiError::invalid_field("file", e.body_text())
                    }
                })?;
                file = Some((name, bytes));
            }
            _ => {}
        }
    }
    let doc_type = doc_type.ok_or_else(|| ApiError::invalid_field("type", "missing"))?;
    let (name, bytes) = file.ok_or_else(|| ApiError::invalid_field("file", "missing"))?;
    let uploaded = state
        .engine
        .upload_document(&principal, id, doc_type, &name, Vec::from(bytes))
        .await
        .map_err(upload_error)?;
    let body = DocumentDto::from(uploaded.document);
    if uploaded.created {
        created(&body)
    } else {
        ok_json(&body)
    }
}

#[utoipa::path(
    get, path = "/v1/manufacturers/{id}/documents", tag = "verification",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Manufacturer id"), AfterParams),
    responses(
        (status = 200, description = "The manufacturer's documents", body = PageDto<DocumentDto>),
        (status = 404, description = "No such manufacturer visible to the caller", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_documents(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Query(params): Query<AfterParams>,
) -> Result<Response, ApiError> {
    let limit = params.limit()?;
    let listing = blocking(&state, move |engine| {
        engine.documents_of(&principal, id, params.include_archived, params.after, limit)
    })
    .await?;
    ok_json(&page::<_, DocumentDto>(listing))
}

#[utoipa::path(
    get, path = "/v1/documents/{id}", tag = "verification",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Document id")),
    responses(
        (status = 200, description = "The document, its checks and text", body = DocumentDetailDto),
        (status = 404, description = "No such document visible to the caller", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_document(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
) -> Result<Response, ApiError> {
    let found = blocking(&state, move |engine| {
        engine.document_details(&principal, id)
    })
    .await?;
    ok_json(&detail(found))
}

#[utoipa::path(
    get, path = "/v1/documents/{id}/content", tag = "verification",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Document id")),
    responses(
        (status = 200, description = "The uploaded bytes"),
        (status = 404, description = "No such document visible to the caller", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn document_content(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
) -> Result<Response, ApiError> {
    let (document, bytes) =
        blocking(&state, move |engine| engine.document_bytes(&principal, id)).await?;
    Ok((
        [
            (header::CONTENT_TYPE, document.format.mime()),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        bytes,
    )
        .into_response())
}

/// An in-app notification of a document status change.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationDto {
    pub id: u64,
    pub document_id: u64,
    pub status: String,
    pub message: String,
    pub at_ms: u64,
}

impl From<Notification> for NotificationDto {
    fn from(n: Notification) -> Self {
        NotificationDto {
            id: n.id,
            document_id: n.document_id,
            status: n.status.as_str().to_owned(),
            message: n.message,
            at_ms: n.at_ms,
        }
    }
}

#[utoipa::path(
    get, path = "/v1/manufacturers/{id}/notifications", tag = "verification",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Manufacturer id"), AfterParams),
    responses(
        (status = 200, description = "Status changes of the manufacturer's documents, oldest first", body = PageDto<NotificationDto>),
        (status = 404, description = "No such manufacturer visible to the caller", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_notifications(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Query(params): Query<AfterParams>,
) -> Result<Response, ApiError> {
    let limit = params.limit()?;
    let listing = blocking(&state, move |engine| {
        engine.notifications(&principal, id, params.after, limit)
    })
    .await?;
    ok_json(&page::<_, NotificationDto>(listing))
}

/// A review case.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseDto {
    pub id: u64,
    pub document_id: u64,
    pub manufacturer_id: u64,
    pub document_type: String,
    /// `open` or `decided`.
    pub state: String,
    pub reasons: Vec<String>,
    pub opened_at_ms: u64,
    /// Seconds since the case was opened.
    pub age_seconds: u64,
    /// The reviewer holding the case (`user/7`) while the claim lasts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim_until_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
}

impl From<ReviewCase> for CaseDto {
    fn from(c: ReviewCase) -> Self {
        let now = now_ms();
        let claimed = c.claim_until_ms > now;
        CaseDto {
            id: c.id,
            document_id: c.document_id,
            manufacturer_id: c.manufacturer_id,
            document_type: c.doc_type.as_str().to_owned(),
            state: c.state.as_str().to_owned(),
            reasons: c.reasons,
            opened_at_ms: c.opened_at_ms,
            age_seconds: now.saturating_sub(c.opened_at_ms) / 1_000,
            claimed_by: claimed
                .then(|| c.claimed_by.map(|a| a.to_string()))
                .flatten(),
            claim_until_ms: claimed.then_some(c.claim_until_ms),
            decision: c.decision.map(|d| d.as_str().to_owned()),
            decision_reason: c.decision_reason,
            decided_by: c.decided_by.map(|a| a.to_string()),
        }
    }
}

/// Filters of the review queue.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CaseParams {
    /// `open` (default) or `decided`.
    state: Option<String>,
    /// Only cases of this document type.
    r#type: Option<String>,
    after: Option<u64>,
    /// 1..=500, default 50.
    limit: Option<usize>,
}

#[utoipa::path(
    get, path = "/v1/review-cases", tag = "verification",
    security(("bearer" = [])),
    params(CaseParams),
    responses(
        (status = 200, description = "Review cases, oldest first", body = PageDto<CaseDto>),
        (status = 403, description = "Not a reviewer", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_cases(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(params): Query<CaseParams>,
) -> Result<Response, ApiError> {
    let case_state = match params.state.as_deref() {
        None | Some("open") => CaseState::Open,
        Some("decided") => CaseState::Decided,
        Some(_) => return Err(ApiError::invalid_field("state", "must be open or decided")),
    };
    let doc_type = match params.r#type.as_deref() {
        None => None,
        Some(name) => Some(
            DocumentType::parse(name)
                .ok_or_else(|| ApiError::invalid_field("type", "not a document type"))?,
        ),
    };
    let limit = page_limit(params.limit)?;
    let listing = blocking(&state, move |engine| {
        engine.review_cases(&principal, case_state, doc_type, params.after, limit)
    })
    .await?;
    ok_json(&page::<_, CaseDto>(listing))
}

#[utoipa::path(
    get, path = "/v1/review-cases/{id}", tag = "verification",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Review case id")),
    responses(
        (status = 200, description = "The case", body = CaseDto),
        (status = 404, description = "No such case", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn get_case(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
) -> Result<Response, ApiError> {
    let case = blocking(&state, move |engine| engine.review_case(&principal, id)).await?;
    ok_json(&CaseDto::from(case))
}

/// A claim on a case.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimBody {
    /// How long to hold the case, 1..=14400 seconds (default 1800).
    claim_seconds: Option<u64>,
}

#[utoipa::path(
    post, path = "/v1/review-cases/{id}/claim", tag = "verification",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Review case id")),
    request_body = ClaimBody,
    responses(
        (status = 200, description = "Claimed by the caller", body = CaseDto),
        (status = 404, description = "No such case", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`case_claimed` by another reviewer, or `case_decided`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn claim_case(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Json(body): Json<ClaimBody>,
) -> Result<Response, ApiError> {
    let seconds = body.claim_seconds.unwrap_or(CLAIM_SECONDS_DEFAULT);
    let case = state
        .engine
        .claim_review_case(&principal, id, Duration::from_secs(seconds))
        .await?;
    ok_json(&CaseDto::from(case))
}

#[utoipa::path(
    post, path = "/v1/review-cases/{id}/release", tag = "verification",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Review case id")),
    responses(
        (status = 200, description = "Released", body = CaseDto),
        (status = 404, description = "No such case", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`case_not_claimed` by the caller", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn release_case(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
) -> Result<Response, ApiError> {
    let case = state.engine.release_review_case(&principal, id).await?;
    ok_json(&CaseDto::from(case))
}

/// A reviewer's decision.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// `approve`, `reject` or `request_resubmission`.
    decision: String,
    /// Required for `reject` and `request_resubmission`; shown to the manufacturer.
    #[serde(default)]
    reason: String,
}

#[utoipa::path(
    post, path = "/v1/review-cases/{id}/decision", tag = "verification",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Review case id")),
    request_body = DecisionBody,
    responses(
        (status = 200, description = "Decided", body = CaseDto),
        (status = 404, description = "No such case", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`case_not_claimed` by the caller, or `case_decided`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`decision` or `reason` invalid", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn decide_case(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
    Json(body): Json<DecisionBody>,
) -> Result<Response, ApiError> {
    let decision = ReviewDecision::parse(&body.decision).ok_or_else(|| {
        ApiError::invalid_field(
            "decision",
            "must be approve, reject or request_resubmission",
        )
    })?;
    let case = state
        .engine
        .decide_review_case(&principal, id, decision, &body.reason)
        .await?;
    ok_json(&CaseDto::from(case))
}

/// The tenant's verification policy.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyDto {
    /// Approve automatically at or above this confidence (0..=100).
    pub auto_approve_pct: u8,
    /// Reject automatically on a hard failure (expired, wrong type).
    pub auto_reject_hard_failures: bool,
    /// Document types a manufacturer needs approved to be verified.
    pub required_types: Vec<String>,
    pub archive_after_days: u32,
    pub delete_after_days: u32,
    pub reverify_days_before_expiry: u32,
}

impl From<VerificationPolicy> for PolicyDto {
    fn from(p: VerificationPolicy) -> Self {
        PolicyDto {
            auto_approve_pct: p.auto_approve_pct,
            auto_reject_hard_failures: p.auto_reject_hard_failures,
            required_types: p
                .required_types
                .iter()
                .map(|t| t.as_str().to_owned())
                .collect(),
            archive_after_days: p.archive_after_days,
            delete_after_days: p.delete_after_days,
            reverify_days_before_expiry: p.reverify_days_before_expiry,
        }
    }
}

#[utoipa::path(
    get, path = "/v1/verification/policy", tag = "verification",
    security(("bearer" = [])),
    responses((status = 200, description = "The policy", body = PolicyDto))
)]
async fn get_policy(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Response, ApiError> {
    let policy = blocking(&state, move |engine| engine.verification_policy(&principal)).await?;
    ok_json(&PolicyDto::from(policy))
}

#[utoipa::path(
    put, path = "/v1/verification/policy", tag = "verification",
    security(("bearer" = [])),
    request_body = PolicyDto,
    responses(
        (status = 200, description = "The new policy", body = PolicyDto),
        (status = 422, description = "A field is out of bounds", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn put_policy(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(body): Json<PolicyDto>,
) -> Result<Response, ApiError> {
    let mut required_types = Vec::with_capacity(body.required_types.len());
    for (i, name) in body.required_types.iter().enumerate() {
        required_types.push(DocumentType::parse(name).ok_or_else(|| {
            ApiError::invalid_field(format!("required_types[{i}]"), "not a document type")
        })?);
    }
    let policy = state
        .engine
        .set_verification_policy(
            &principal,
            VerificationPolicy {
                auto_approve_pct: body.auto_approve_pct,
                auto_reject_hard_failures: body.auto_reject_hard_failures,
                required_types,
                archive_after_days: body.archive_after_days,
                delete_after_days: body.delete_after_days,
                reverify_days_before_expiry: body.reverify_days_before_expiry,
            },
        )
        .await?;
    ok_json(&PolicyDto::from(policy))
}

/// A durable job of the verification queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobDto {
    pub id: u64,
    /// `verify` or `lifecycle`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_id: Option<u64>,
    /// `onboarding`, `renewal` or `background`.
    pub priority: String,
    /// `ready` or `dead`.
    pub state: String,
    pub run_at_ms: u64,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl From<mercato_engine::tables::Job> for JobDto {
    fn from(j: mercato_engine::tables::Job) -> Self {
        JobDto {
            id: j.id,
            kind: j.kind.as_str().to_owned(),
            document_id: match j.kind {
                mercato_engine::tables::JobKind::Verify { document_id } => Some(document_id),
                mercato_engine::tables::JobKind::Lifecycle => None,
            },
            priority: j.priority.as_str().to_owned(),
            state: j.state.as_str().to_owned(),
            run_at_ms: j.run_at_ms,
            attempts: j.attempts,
            last_error: j.last_error,
        }
    }
}

/// Which jobs to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobParams {
    /// `dead` (default: the dead-letter list) or `ready`.
    state: Option<String>,
    after: Option<u64>,
    /// 1..=500, default 50.
    limit: Option<usize>,
}

#[utoipa::path(
    get, path = "/v1/verification/jobs", tag = "verification",
    security(("bearer" = [])),
    params(JobParams),
    responses(
        (status = 200, description = "Jobs in the state", body = PageDto<JobDto>),
        (status = 403, description = "Not a tenant admin", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn list_jobs(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(params): Query<JobParams>,
) -> Result<Response, ApiError> {
    let job_state = match params.state.as_deref() {
        None | Some("dead") => JobState::Dead,
        Some("ready") => JobState::Ready,
        Some(_) => return Err(ApiError::invalid_field("state", "must be dead or ready")),
    };
    let limit = page_limit(params.limit)?;
    let listing = blocking(&state, move |engine| {
        engine.jobs(&principal, job_state, params.after, limit)
    })
    .await?;
    ok_json(&page::<_, JobDto>(listing))
}

#[utoipa::path(
    post, path = "/v1/verification/jobs/{id}/retry", tag = "verification",
    security(("bearer" = [])),
    params(("id" = u64, Path, description = "Job id")),
    responses(
        (status = 200, description = "Queued again with its attempts reset", body = JobDto),
        (status = 404, description = "No such job", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`job_not_dead`", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
async fn retry_job(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<u64>,
) -> Result<Response, ApiError> {
    let job = state.engine.retry_job(&principal, id).await?;
    ok_json(&JobDto::from(job))
}

/// What one daily lifecycle run did.
#[derive(Debug, Serialize, ToSchema)]
pub struct LifecycleRunDto {
    pub id: u64,
    pub at_ms: u64,
    pub expired: Vec<u64>,
    pub archived: Vec<u64>,
    pub deleted: Vec<u64>,
    pub reminded: Vec<u64>,
    pub truncated: bool,
}

impl From<LifecycleRun> for LifecycleRunDto {
    fn from(r: LifecycleRun) -> Self {
        LifecycleRunDto {
            id: r.id,
            at_ms: r.at_ms,
            expired: r.expired,
            archived: r.archived,
            deleted: r.deleted,
            reminded: r.reminded,
            truncated: r.truncated,
        }
    }
}

#[utoipa::path(
    get, path = "/v1/verification/lifecycle-runs", tag = "verification",
    security(("bearer" = [])),
    params(AfterParams),
    responses((status = 200, description = "Lifecycle runs, oldest first", body = PageDto<LifecycleRunDto>))
)]
async fn list_lifecycle_runs(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(params): Query<AfterParams>,
) -> Result<Response, ApiError> {
    let limit = params.limit()?;
    let listing = blocking(&state, move |engine| {
        engine.lifecycle_runs(&principal, params.after, limit)
    })
    .await?;
    ok_json(&page::<_, LifecycleRunDto>(listing))
}
