//! Vendor verification through the engine, on real storage, the real blob store and the real
//! job queue and workers: automatic approval and the manufacturer becoming verified, one
//! document per content, exactly-once effects under duplicate delivery, jobs surviving a
//! restart, retries into the dead-letter list and an admin's retry, backpressure, and the
//! review queue (claim races, decisions, audit).

use mercato_engine::accounts::{Principal, Role, ScopeSet};
use mercato_engine::catalog::ManufacturerInput;
use mercato_engine::jobs::QueueConfig;
use mercato_engine::tables::{
    CaseState, CountryCode, DocumentStatus, JobState, ReviewDecision, VerificationStatus,
};
use mercato_engine::verification::actions::{
    CompleteJob, DAY_MS, VerificationAction, VerificationOutput,
};
use mercato_engine::verification::extract::ExtractConfig;
use mercato_engine::verification::rules::{Decision, DocumentType, RULES_VERSION};
use mercato_engine::verification::samples;
use mercato_engine::verification::service::{UploadError, VerificationConfig};
use mercato_engine::{
    Action, Actor, Command, CommandOutput, Engine, EngineConfig, EngineError, Rejection, TenantId,
};
use std::path::Path;
use std::time::{Duration, Instant};

const T: TenantId = TenantId(1);
const WAIT: Duration = Duration::from_secs(20);
const COMPANY: &str = "Rheinwerk Maschinenbau GmbH";

fn open(dir: &Path) -> Engine {
    let mut config = EngineConfig::new(dir);
    config.shards_initial = 1;
    Engine::open(config).unwrap()
}

fn config() -> VerificationConfig {
    VerificationConfig {
        queue: QueueConfig {
            workers: 2,
            lease: Duration::from_secs(5),
            attempts_max: 2,
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(50),
            backlog_max: 1_000,
            job_time_budget: Duration::from_secs(30),
        },
        extract: ExtractConfig {
            ocr_timeout: Duration::from_secs(10),
            ..ExtractConfig::default()
        },
        ..VerificationConfig::default()
    }
}

fn admin() -> Principal {
    Principal {
        tenant: T,
        actor: Actor::User(1),
        role: Some(Role::TenantAdmin),
        scopes: ScopeSet::ALL,
    }
}

fn reviewer(id: u64) -> Principal {
    Principal::user(T, id, Role::Reviewer)
}

fn maker(id: u64) -> Principal {
    Principal::user(
        T,
        100 + id,
        Role::ManufacturerUser {
            manufacturer_id: id,
        },
    )
}

fn today() -> i64 {
    (mercato_engine::now_ms() / DAY_MS) as i64
}

async fn manufacturer(engine: &Engine, name: &str) -> u64 {
    engine
        .create_manufacturer(
            T,
            Actor::User(1),
            ManufacturerInput {
                name: name.into(),
                country: CountryCode::parse("DE").unwrap(),
            },
        )
        .await
        .unwrap()
        .id
}

fn pdf(doc_type: DocumentType, seed: u64) -> Vec<u8> {
    samples::pdf(&samples::sample_spec(
        seed,
        doc_type,
        COMPANY,
        *b"DE",
        today(),
    ))
}

/// Waits until the document leaves `processing`.
fn decided(engine: &Engine, id: u64) -> DocumentStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        let document = engine.document(&admin(), id).unwrap();
        if document.status != DocumentStatus::Processing {
            return document.status;
        }
        assert!(Instant::now() < deadline, "document {id} was not decided");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn audit_count(engine: &Engine, action: &str) -> usize {
    let page = engine
        .audit_query(
            T,
            &mercato_engine::audit::AuditQuery {
                limit: 1_000,
                ..Default::default()
            },
        )
        .unwrap();
    page.entries.iter().filter(|e| e.action == action).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_documents_are_approved_and_make_the_manufacturer_verified() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.create_tenant(T, "Tenant").await.unwrap();
    let m = manufacturer(&engine, COMPANY).await;
    engine.start_verification(config()).unwrap();

    let registration = engine
        .upload_document(
            &maker(m),
            m,
            DocumentType::BusinessRegistration,
            "register.pdf",
            pdf(DocumentType::BusinessRegistration, 1),
        )
        .await
        .unwrap();
    assert!(registration.created);
    assert_eq!(
        engine.manufacturer(T, m).unwrap().unwrap().verification,
        VerificationStatus::Pending
    );
    assert_eq!(
        decided(&engine, registration.document.id),
        DocumentStatus::Approved
    );
    // One of the two required types: still pending.
    assert_eq!(
        engine.manufacturer(T, m).unwrap().unwrap().verification,
        VerificationStatus::Pending
    );
    let tax = engine
        .upload_document(
            &maker(m),
            m,
            DocumentType::TaxCertificate,
            "tax.pdf",
            pdf(DocumentType::TaxCertificate, 2),
        )
        .await
        .unwrap();
    assert_eq!(decided(&engine, tax.document.id), DocumentStatus::Approved);
    assert_eq!(
        engine.manufacturer(T, m).unwrap().unwrap().verification,
        VerificationStatus::Verified
    );
    let (document, text, result) = engine.document_details(&admin(), tax.document.id).unwrap();
    assert!(text.unwrap().contains("Rheinwerk"));
    let result = result.unwrap();
    assert_eq!(result.rules_version, RULES_VERSION);
    assert!(result.assessment.unwrap().checks.iter().all(|c| c.passed));
    assert!(document.text_sha256.is_some());

    // The same bytes again: the same document, no second verification.
    let again = engine
        .upload_document(
            &maker(m),
            m,
            DocumentType::TaxCertificate,
            "tax-copy.pdf",
            pdf(DocumentType::TaxCertificate, 2),
        )
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.document.id, tax.document.id);
    assert_eq!(audit_count(&engine, "document.verify"), 2);

    // Another manufacturer's user neither sees nor uploads for this one.
    let other = manufacturer(&engine, "Other Werke AG").await;
    assert!(matches!(
        engine.document(&maker(other), tax.document.id),
        Err(EngineError::Rejected(Rejection::NotFound { .. }))
    ));
    assert!(
        engine
            .upload_document(
                &maker(other),
                m,
                DocumentType::Other,
                "x.txt",
                b"hello".to_vec()
            )
            .await
            .is_err()
    );
    let notes = engine.notifications(&maker(m), m, None, 100).unwrap();
    assert!(notes.items.iter().any(|n| n.message.contains("approved")));

    // Requiring one more type: the manufacturer is pending again; dropping it: verified.
    let mut policy = engine.verification_policy(&admin()).unwrap();
    let relaxed = policy.clone();
    policy
        .required_types
        .push(DocumentType::InsuranceCertificate);
    engine
        .set_verification_policy(&admin(), policy)
        .await
        .unwrap();
    assert_eq!(
        engine.manufacturer(T, m).unwrap().unwrap().verification,
        VerificationStatus::Pending
    );
    // A manufacturer without documents keeps the status it was given by hand.
    assert_eq!(
        engine.manufacturer(T, other).unwrap().unwrap().verification,
        VerificationStatus::Unverified
    );
    engine
        .set_verification_policy(&admin(), relaxed)
        .await
        .unwrap();
    assert_eq!(
        engine.manufacturer(T, m).unwrap().unwrap().verification,
        VerificationStatus::Verified
    );
    engine.shutdown().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_documents_are_rejected_or_reviewed_and_reviewers_cannot_both_claim_a_case() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.create_tenant(T, "Tenant").await.unwrap();
    let m = manufacturer(&engine, COMPANY).await;
    engine.start_verification(config()).unwrap();

    // Expired: rejected automatically.
    let mut spec = samples::sample_spec(
        3,
        DocumentType::InsuranceCertificate,
        COMPANY,
        *b"DE",
        today(),
    );
    spec.expiry_day = Some(today() - 10);
    let expired = engine
        .upload_document(
            &maker(m),
            m,
            DocumentType::InsuranceCertificate,
            "insurance.pdf",
            samples::pdf(&spec),
        )
        .await
        .unwrap();
    assert_eq!(
        decided(&engine, expired.document.id),
        DocumentStatus::Rejected
    );
    assert!(
        !engine
            .document(&admin(), expired.document.id)
            .unwrap()
            .reasons
            .is_empty()
    );

    // A scan without OCR: to the review queue with the reason.
    let scan = engine
        .upload_document(
            &maker(m),
            m,
            DocumentType::BusinessRegistration,
            "scan.png",
            samples::png_scan(64, 32, 4),
        )
        .await
        .unwrap();
    assert_eq!(decided(&engine, scan.document.id), DocumentStatus::InReview);
    let cases = engine
        .review_cases(&reviewer(7), CaseState::Open, None, None, 10)
        .unwrap();
    assert_eq!(cases.items.len(), 1);
    let case = cases.items[0].clone();
    assert_eq!(case.document_id, scan.document.id);
    assert!(case.reasons[0].contains("OCR"), "{:?}", case.reasons);

    // Two reviewers claim at once: exactly one wins.
    let (seven, eight) = (reviewer(7), reviewer(8));
    let (a, b) = tokio::join!(
        engine.claim_review_case(&seven, case.id, Duration::from_secs(600)),
        engine.claim_review_case(&eight, case.id, Duration::from_secs(600)),
    );
    assert_eq!(a.is_ok() as u8 + b.is_ok() as u8, 1, "{a:?} {b:?}");
    let (winner, loser) = if a.is_ok() { (7, 8) } else { (8, 7) };
    assert!(matches!(
        engine
            .decide_review_case(&reviewer(loser), case.id, ReviewDecision::Approve, "")
            .await,
        Err(EngineError::Rejected(Rejection::Conflict {
            code: "case_not_claimed",
            ..
        }))
    ));
    // A rejection needs a reason.
    assert!(matches!(
        engine
            .decide_review_case(&reviewer(winner), case.id, ReviewDecision::Reject, " ")
            .await,
        Err(EngineError::Rejected(Rejection::InvalidField { .. }))
    ));
    engine
        .decide_review_case(
            &reviewer(winner),
            case.id,
            ReviewDecision::Approve,
            "register extract checked by phone",
        )
        .await
        .unwrap();
    assert_eq!(
        engine.document(&admin(), scan.document.id).unwrap().status,
        DocumentStatus::Approved
    );
    let decisions = engine
        .audit_query(
            T,
            &mercato_engine::audit::AuditQuery {
                limit: 1_000,
                ..Default::default()
            },
        )
        .unwrap()
        .entries
        .into_iter()
        .filter(|e| e.action == "review.decide")
        .collect::<Vec<_>>();
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0].actor, Actor::User(winner));
    assert!(decisions[0].resource.contains("sha256="));
    assert!(decisions[0].resource.contains("rules=v"));
    // Decided cases cannot be claimed again.
    assert!(
        engine
            .claim_review_case(&reviewer(loser), case.id, Duration::from_secs(60))
            .await
            .is_err()
    );
    engine.shutdown().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_delivered_twice_writes_its_effect_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.create_tenant(T, "Tenant").await.unwrap();
    let m = manufacturer(&engine, COMPANY).await;
    // No workers: the job stays ready in storage.
    let up = engine
        .upload_document(
            &maker(m),
            m,
            DocumentType::Other,
            "note.txt",
            b"Rheinwerk Maschinenbau GmbH\nA letter.".to_vec(),
        )
        .await
        .unwrap();
    let job_id = up.document.job_id.unwrap();
    let complete = || Command {
        tenant: T,
        actor: Actor::System,
        at_ms: mercato_engine::now_ms(),
        action: Action::Verification(VerificationAction::Complete(Box::new(CompleteJob {
            job_id,
            document_id: up.document.id,
            sha256: up.document.sha256,
            rules_version: RULES_VERSION,
            text: Some("A letter.".into()),
            extract_method: None,
            unreadable_reason: None,
            assessment: None,
            decision: Decision::Review {
                reasons: vec!["type other".into()],
            },
        }))),
    };
    let written = |output: CommandOutput| match output {
        CommandOutput::Verification(VerificationOutput::Completed { effect_written, .. }) => {
            effect_written
        }
        other => panic!("{other:?}"),
    };
    assert!(written(engine.storage().execute(complete()).await.unwrap()));
    let notes = engine
        .notifications(&admin(), m, None, 100)
        .unwrap()
        .items
        .len();
    // The second delivery: nothing new.
    assert!(!written(
        engine.storage().execute(complete()).await.unwrap()
    ));
    assert_eq!(
        engine
            .notifications(&admin(), m, None, 100)
            .unwrap()
            .items
            .len(),
        notes
    );
    assert_eq!(
        engine
            .review_cases(&reviewer(7), CaseState::Open, None, None, 10)
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(audit_count(&engine, "document.verify"), 1);

    // Another job carrying the same content hash and rules version (a re-verification job, or
    // a job written twice): its effect is keyed by (hash, rules version), so nothing is written
    // again although the job itself exists and is consumed.
    let other = engine
        .upload_document(
            &maker(m),
            m,
            DocumentType::Other,
            "other.txt",
            b"Rheinwerk Maschinenbau GmbH\nAnother letter.".to_vec(),
        )
        .await
        .unwrap();
    let second_job = other.document.job_id.unwrap();
    assert_ne!(second_job, job_id);
    let same_key = Command {
        tenant: T,
        actor: Actor::System,
        at_ms: mercato_engine::now_ms(),
        action: Action::Verification(VerificationAction::Complete(Box::new(CompleteJob {
            job_id: second_job,
            document_id: up.document.id,
            sha256: up.document.sha256,
            rules_version: RULES_VERSION,
            text: Some("A letter, read again.".into()),
            extract_method: None,
            unreadable_reason: None,
            assessment: None,
            decision: Decision::Approve,
        }))),
    };
    assert!(!written(engine.storage().execute(same_key).await.unwrap()));
    assert!(
        engine
            .jobs(&admin(), JobState::Ready, None, 100)
            .unwrap()
            .items
            .iter()
            .all(|j| j.id != second_job),
        "the job is consumed"
    );
    let (document, text, result) = engine.document_details(&admin(), up.document.id).unwrap();
    // Still the first effect: in review (not approved by the second job), the first text.
    assert_eq!(document.status, DocumentStatus::InReview);
    assert_eq!(text.as_deref(), Some("A letter."));
    assert_eq!(result.unwrap().outcome, DocumentStatus::InReview);
    assert_eq!(
        engine
            .review_cases(&reviewer(7), CaseState::Open, None, None, 10)
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(audit_count(&engine, "document.verify"), 1);
    engine.shutdown().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_written_before_a_restart_complete_once_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    {
        let engine = open(dir.path());
        engine.create_tenant(T, "Tenant").await.unwrap();
        let m = manufacturer(&engine, COMPANY).await;
        for seed in 0..6 {
            let up = engine
                .upload_document(
                    &maker(m),
                    m,
                    DocumentType::TaxCertificate,
                    "tax.pdf",
                    pdf(DocumentType::TaxCertificate, 100 + seed),
                )
                .await
                .unwrap();
            ids.push(up.document.id);
        }
        // Closed with every job ready and none run (as after a crash).
        engine.shutdown().unwrap();
    }
    let engine = open(dir.path());
    engine.start_verification(config()).unwrap();
    for &id in &ids {
        assert_eq!(decided(&engine, id), DocumentStatus::Approved);
    }
    assert_eq!(audit_count(&engine, "document.verify"), ids.len());
    let ready = engine.jobs(&admin(), JobState::Ready, None, 100).unwrap();
    // Only the tenant's lifecycle job (tomorrow) is left.
    assert_eq!(ready.items.len(), 1);
    engine.shutdown().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_jobs_go_to_the_dead_letter_list_and_an_admin_retries_them() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.create_tenant(T, "Tenant").await.unwrap();
    let m = manufacturer(&engine, COMPANY).await;
    let up = engine
        .upload_document(
            &maker(m),
            m,
            DocumentType::TaxCertificate,
            "tax.pdf",
            pdf(DocumentType::TaxCertificate, 9),
        )
        .await
        .unwrap();
    // The bytes disappear from the blob store: every attempt fails.
    let blob = walk(dir.path())
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "blob"))
        .unwrap();
    let saved = std::fs::read(&blob).unwrap();
    std::fs::remove_file(&blob).unwrap();
    engine.start_verification(config()).unwrap();
    let deadline = Instant::now() + WAIT;
    let dead = loop {
        let dead = engine.jobs(&admin(), JobState::Dead, None, 10).unwrap();
        // The dead-letter gauge follows the durable write.
        if !dead.items.is_empty() && engine.dead_jobs() == Some(1) {
            break dead.items[0].clone();
        }
        assert!(Instant::now() < deadline, "the job never died");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(dead.attempts, 2);
    let error = dead.last_error.unwrap();
    assert!(
        error.contains("blob") || error.contains("No such file"),
        "{error}"
    );
    let document = engine.document(&admin(), up.document.id).unwrap();
    assert_eq!(document.status, DocumentStatus::Processing);
    assert!(document.reasons[0].contains("failed 2 times"));

    // An admin puts the bytes back and retries: the job runs and the document is decided.
    std::fs::write(&blob, saved).unwrap();
    assert!(matches!(
        engine.retry_job(&reviewer(7), dead.id).await,
        Err(EngineError::Forbidden(_))
    ));
    engine.retry_job(&admin(), dead.id).await.unwrap();
    assert_eq!(engine.dead_jobs(), Some(0));
    assert_eq!(decided(&engine, up.document.id), DocumentStatus::Approved);
    assert!(
        engine
            .jobs(&admin(), JobState::Dead, None, 10)
            .unwrap()
            .items
            .is_empty()
    );
    engine.shutdown().unwrap();
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_past_the_backlog_are_refused_with_a_retry_time_and_bad_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.create_tenant(T, "Tenant").await.unwrap();
    let m = manufacturer(&engine, COMPANY).await;
    let mut small = config();
    // Room for the first upload's two jobs (its verification and the lifecycle job).
    small.queue.backlog_max = 2;
    small.queue.workers = 1;
    small.upload_bytes_max = 64 * 1024;
    engine.start_verification(small).unwrap();
    engine
        .upload_document(
            &maker(m),
            m,
            DocumentType::Other,
            "a.txt",
            b"first".to_vec(),
        )
        .await
        .unwrap();
    let refused = engine
        .upload_document(
            &maker(m),
            m,
            DocumentType::Other,
            "b.txt",
            b"second".to_vec(),
        )
        .await;
    match refused {
        Err(UploadError::Backlogged(b)) => assert!(b.retry_after >= Duration::from_secs(1)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        engine
            .upload_document(
                &maker(m),
                m,
                DocumentType::Other,
                "x.bin",
                vec![0u8, 1, 2, 0xff]
            )
            .await,
        Err(UploadError::UnsupportedFormat)
    ));
    assert!(matches!(
        engine
            .upload_document(
                &maker(m),
                m,
                DocumentType::Other,
                "big.txt",
                vec![b'a'; 70_000]
            )
            .await,
        Err(UploadError::TooLarge { .. })
    ));
    engine.shutdown().unwrap();
}

/// Runs the tenant's lifecycle job as if it were `days` days from now.
async fn lifecycle_at(engine: &Engine, days: u64) -> mercato_engine::tables::LifecycleRun {
    let job = engine
        .jobs(&admin(), JobState::Ready, None, 100)
        .unwrap()
        .items
        .into_iter()
        .find(|j| j.kind == mercato_engine::tables::JobKind::Lifecycle)
        .expect("a scheduled lifecycle job");
    let command = Command {
        tenant: T,
        actor: Actor::System,
        at_ms: mercato_engine::now_ms() + days * DAY_MS,
        action: Action::Verification(VerificationAction::RunLifecycle { job_id: job.id }),
    };
    match engine.storage().execute(command).await.unwrap() {
        CommandOutput::Verification(VerificationOutput::Lifecycle { run, next_job }) => {
            assert!(next_job.2 > job.run_at_ms, "the next run is scheduled");
            run
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_reminds_expires_archives_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.create_tenant(T, "Tenant").await.unwrap();
    let m = manufacturer(&engine, COMPANY).await;
    engine.start_verification(config()).unwrap();
    // The insurance certificate is the one required type here.
    let mut policy = engine.verification_policy(&admin()).unwrap();
    policy.required_types = vec![DocumentType::InsuranceCertificate];
    engine
        .set_verification_policy(&admin(), policy)
        .await
        .unwrap();
    // Read from storage, not through the engine's read cache: `lifecycle_at` runs its command
    // on storage directly, past the cache's invalidation.
    let status = || {
        let page = engine.list_manufacturers(T, None, 10).unwrap();
        page.items.iter().find(|x| x.id == m).unwrap().verification
    };
    let mut spec = samples::sample_spec(
        21,
        DocumentType::InsuranceCertificate,
        COMPANY,
        *b"DE",
        today(),
    );
    spec.expiry_day = Some(today() + 40);
    let up = engine
        .upload_document(
            &maker(m),
            m,
            DocumentType::InsuranceCertificate,
            "insurance.pdf",
            samples::pdf(&spec),
        )
        .await
        .unwrap();
    let id = up.document.id;
    assert_eq!(decided(&engine, id), DocumentStatus::Approved);
    // Two business registrations without an expiry date, both approved: the newer one
    // supersedes the older. And an insurance certificate rejected as expired.
    let mut registrations = Vec::new();
    for seed in [31, 32] {
        let up = engine
            .upload_document(
                &maker(m),
                m,
                DocumentType::BusinessRegistration,
                "register.pdf",
                pdf(DocumentType::BusinessRegistration, seed),
            )
            .await
            .unwrap();
        assert_eq!(decided(&engine, up.document.id), DocumentStatus::Approved);
        assert_eq!(
            engine
                .document(&admin(), up.document.id)
                .unwrap()
                .expiry_day,
            None
        );
        registrations.push(up.document.id);
    }
    let (superseded, in_force) = (registrations[0], registrations[1]);
    let mut lapsed = samples::sample_spec(
        33,
        DocumentType::InsuranceCertificate,
        COMPANY,
        *b"DE",
        today(),
    );
    lapsed.expiry_day = Some(today() - 3);
    let rejected = engine
        .upload_document(
            &maker(m),
            m,
            DocumentType::InsuranceCertificate,
            "old-insurance.pdf",
            samples::pdf(&lapsed),
        )
        .await
        .unwrap()
        .document
        .id;
    assert_eq!(decided(&engine, rejected), DocumentStatus::Rejected);

    // 15 days on: the expiry is 25 days away, inside the 30-day renewal window.
    let run = lifecycle_at(&engine, 15).await;
    assert_eq!(
        (run.reminded.clone(), run.expired.clone()),
        (vec![id], vec![])
    );
    assert!(
        engine
            .notifications(&maker(m), m, None, 100)
            .unwrap()
            .items
            .iter()
            .any(|n| n.message.contains("upload a renewal"))
    );
    // Reminded once only.
    assert!(lifecycle_at(&engine, 16).await.reminded.is_empty());
    assert_eq!(status(), VerificationStatus::Verified);
    // A renewal arrives but waits for a reviewer.
    let renewal = engine
        .upload_document(
            &maker(m),
            m,
            DocumentType::InsuranceCertificate,
            "insurance-renewal.png",
            samples::png_scan(64, 32, 22),
        )
        .await
        .unwrap();
    assert_eq!(
        decided(&engine, renewal.document.id),
        DocumentStatus::InReview
    );
    assert_eq!(status(), VerificationStatus::Verified);
    // 45 days on: expired, and the manufacturer is pending even though the renewal is still
    // in review: the evidence it was verified on has lapsed.
    let run = lifecycle_at(&engine, 45).await;
    assert_eq!(run.expired, vec![id]);
    assert_eq!(
        engine.document(&admin(), id).unwrap().status,
        DocumentStatus::Expired
    );
    assert_eq!(status(), VerificationStatus::Pending);
    // Retention: archived (text dropped), then deleted with its bytes.
    let mut policy = engine.verification_policy(&admin()).unwrap();
    policy.archive_after_days = 50;
    policy.delete_after_days = 60;
    engine
        .set_verification_policy(&admin(), policy)
        .await
        .unwrap();
    // Retention goes by upload time: the renewal (uploaded the same day) goes with it, and so
    // do the superseded registration and the rejected certificate. The newer registration is
    // approved, has no expiry and is the vendor's current proof of its type: it is the evidence
    // of verification and stays.
    let run = lifecycle_at(&engine, 55).await;
    assert_eq!(
        (run.archived.clone(), run.deleted.clone()),
        (vec![id, superseded, rejected, renewal.document.id], vec![])
    );
    let (document, text, _) = engine.document_details(&admin(), id).unwrap();
    assert!(document.archived && text.is_none());
    // The vendor is verified on the registration alone once that is the one required type.
    let mut policy = engine.verification_policy(&admin()).unwrap();
    policy.required_types = vec![DocumentType::BusinessRegistration];
    engine
        .set_verification_policy(&admin(), policy)
        .await
        .unwrap();
    assert_eq!(status(), VerificationStatus::Verified);
    let run = lifecycle_at(&engine, 61).await;
    assert_eq!(
        run.deleted,
        vec![id, superseded, rejected, renewal.document.id]
    );
    for gone in [superseded, rejected] {
        assert!(matches!(
            engine.document(&admin(), gone),
            Err(EngineError::Rejected(Rejection::NotFound { .. }))
        ));
    }
    let (kept, kept_text, kept_result) = engine.document_details(&admin(), in_force).unwrap();
    assert_eq!(kept.status, DocumentStatus::Approved);
    assert!(!kept.archived && kept_text.is_some() && kept_result.is_some());
    assert!(
        engine
            .storage()
            .read_blob(T, &mercato_storage::BlobHash::from_bytes(kept.sha256))
            .unwrap()
            .is_some(),
        "the evidence's bytes are kept"
    );
    assert_eq!(
        status(),
        VerificationStatus::Verified,
        "not demoted by retention"
    );
    assert!(matches!(
        engine.document(&admin(), id),
        Err(EngineError::Rejected(Rejection::NotFound { .. }))
    ));
    assert!(
        engine
            .storage()
            .read_blob(T, &mercato_storage::BlobHash::from_bytes(document.sha256))
            .unwrap()
            .is_none(),
        "the blob reference went with the document"
    );
    let runs = engine.lifecycle_runs(&admin(), None, 100).unwrap();
    assert_eq!(runs.items.len(), 5);
    engine.shutdown().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manufacturer_keeps_only_its_newest_notifications() {
    use mercato_engine::verification::actions::NOTIFICATIONS_KEPT_MAX;
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.create_tenant(T, "Tenant").await.unwrap();
    let m = manufacturer(&engine, COMPANY).await;
    // No workers: each upload writes one notification ("received").
    let uploads = NOTIFICATIONS_KEPT_MAX + 3;
    for n in 0..uploads {
        engine
            .upload_document(
                &maker(m),
                m,
                DocumentType::Other,
                "note.txt",
                format!("letter number {n}").into_bytes(),
            )
            .await
            .unwrap();
    }
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = engine.notifications(&maker(m), m, after, 500).unwrap();
        ids.extend(page.items.iter().map(|n| n.id));
        match page.next_after {
            Some(next) if !page.items.is_empty() => after = Some(next),
            _ => break,
        }
    }
    assert_eq!(ids.len() as u64, NOTIFICATIONS_KEPT_MAX);
    assert_eq!(
        ids.first().copied(),
        Some(4),
        "the three oldest were dropped"
    );
    assert_eq!(ids.last().copied(), Some(uploads));
    engine.shutdown().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_manufacturer_stays_verified_until_its_new_documents_are_decided() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.create_tenant(T, "Tenant").await.unwrap();
    let m = manufacturer(&engine, COMPANY).await;
    engine
        .set_manufacturer_verification(T, Actor::User(1), m, VerificationStatus::Verified)
        .await
        .unwrap();
    engine.start_verification(config()).unwrap();
    let status = || engine.manufacturer(T, m).unwrap().unwrap().verification;

    // The registration is approved while the tax certificate (a scan the rules cannot read
    // without a human) waits for a reviewer: the manufacturer keeps the status it had.
    let registration = engine
        .upload_document(
            &maker(m),
            m,
            DocumentType::BusinessRegistration,
            "register.pdf",
            pdf(DocumentType::BusinessRegistration, 1),
        )
        .await
        .unwrap();
    let scan = engine
        .upload_document(
            &maker(m),
            m,
            DocumentType::TaxCertificate,
            "tax-scan.png",
            samples::png_scan(64, 32, 5),
        )
        .await
        .unwrap();
    assert_eq!(status(), VerificationStatus::Verified);
    assert_eq!(
        decided(&engine, registration.document.id),
        DocumentStatus::Approved
    );
    assert_eq!(decided(&engine, scan.document.id), DocumentStatus::InReview);
    assert_eq!(status(), VerificationStatus::Verified);

    // The reviewer rejects the scan: no tax certificate is approved or being checked, so the
    // manufacturer is pending until a new one is approved.
    let case = engine
        .review_cases(&reviewer(7), CaseState::Open, None, None, 10)
        .unwrap()
        .items[0]
        .clone();
    engine
        .claim_review_case(&reviewer(7), case.id, Duration::from_secs(60))
        .await
        .unwrap();
    engine
        .decide_review_case(
            &reviewer(7),
            case.id,
            ReviewDecision::Reject,
            "the scan is unreadable",
        )
        .await
        .unwrap();
    assert_eq!(status(), VerificationStatus::Pending);
    let tax = engine
        .upload_document(
            &maker(m),
            m,
            DocumentType::TaxCertificate,
            "tax.pdf",
            pdf(DocumentType::TaxCertificate, 2),
        )
        .await
        .unwrap();
    // A pending manufacturer is not verified by a document that is still being checked.
    assert_eq!(status(), VerificationStatus::Pending);
    assert_eq!(decided(&engine, tax.document.id), DocumentStatus::Approved);
    assert_eq!(status(), VerificationStatus::Verified);
    engine.shutdown().unwrap();
}

fn audit_resources(engine: &Engine, action: &str) -> Vec<String> {
    engine
        .audit_query(
            T,
            &mercato_engine::audit::AuditQuery {
                limit: 1_000,
                ..Default::default()
            },
        )
        .unwrap()
        .entries
        .into_iter()
        .filter(|e| e.action == action)
        .map(|e| e.resource)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_case_can_be_claimed_by_another_reviewer_who_requests_resubmission() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.create_tenant(T, "Tenant").await.unwrap();
    let m = manufacturer(&engine, COMPANY).await;
    engine.start_verification(config()).unwrap();
    // Type `other` always goes to review, with its text read.
    let up = engine
        .upload_document(
            &maker(m),
            m,
            DocumentType::Other,
            "letter.txt",
            b"Rheinwerk Maschinenbau GmbH\nConfirmation of our trading address.".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(decided(&engine, up.document.id), DocumentStatus::InReview);
    let document = engine.document(&admin(), up.document.id).unwrap();
    let case = document.case_id.unwrap();
    let text_sha256 = document.text_sha256.expect("the text was read");

    engine
        .claim_review_case(&reviewer(7), case, Duration::from_secs(600))
        .await
        .unwrap();
    // Only the holder releases, and while it holds the case nobody else claims it.
    assert!(matches!(
        engine.release_review_case(&reviewer(8), case).await,
        Err(EngineError::Rejected(Rejection::Conflict {
            code: "case_not_claimed",
            ..
        }))
    ));
    assert!(matches!(
        engine
            .claim_review_case(&reviewer(8), case, Duration::from_secs(600))
            .await,
        Err(EngineError::Rejected(Rejection::Conflict {
            code: "case_claimed",
            ..
        }))
    ));
    let released = engine
        .release_review_case(&reviewer(7), case)
        .await
        .unwrap();
    assert_eq!((released.claimed_by, released.claim_until_ms), (None, 0));
    // Released: the first reviewer may no longer decide; another one claims it.
    assert!(
        engine
            .decide_review_case(&reviewer(7), case, ReviewDecision::Approve, "")
            .await
            .is_err()
    );
    let claimed = engine
        .claim_review_case(&reviewer(8), case, Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(claimed.claimed_by, Some(Actor::User(8)));
    assert!(matches!(
        engine
            .decide_review_case(&reviewer(8), case, ReviewDecision::RequestResubmission, "")
            .await,
        Err(EngineError::Rejected(Rejection::InvalidField { .. }))
    ));
    let decided_case = engine
        .decide_review_case(
            &reviewer(8),
            case,
            ReviewDecision::RequestResubmission,
            "the letter is not signed",
        )
        .await
        .unwrap();
    assert_eq!(decided_case.state, CaseState::Decided);
    assert_eq!(
        decided_case.decision,
        Some(ReviewDecision::RequestResubmission)
    );
    let document = engine.document(&admin(), up.document.id).unwrap();
    assert_eq!(document.status, DocumentStatus::ResubmissionRequested);
    assert_eq!(
        document.reasons,
        vec!["the letter is not signed".to_string()]
    );
    assert_eq!(document.decided_by, Some(Actor::User(8)));
    assert!(
        engine
            .notifications(&maker(m), m, None, 100)
            .unwrap()
            .items
            .iter()
            .any(|n| n.message.contains("please upload it again")
                && n.message.contains("not signed"))
    );
    assert_eq!(audit_resources(&engine, "review.claim").len(), 2);
    assert_eq!(
        audit_resources(&engine, "review.release"),
        vec![format!("review_case/{case}")]
    );
    // The decision's audit entry names the document hash, the text hash, the rules version,
    // the case and the decision; the reviewer is its actor.
    let decision = audit_resources(&engine, "review.decide");
    assert_eq!(
        decision,
        vec![format!(
            "document/{}#sha256={};text_sha256={};rules=v{};case={case};decision=request_resubmission",
            document.id,
            mercato_engine::verification::actions::hex(&document.sha256),
            mercato_engine::verification::actions::hex(&text_sha256),
            RULES_VERSION
        )]
    );
    engine.shutdown().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_vendors_new_document_waits_in_the_renewal_lane() {
    use mercato_engine::tables::{JobKind, JobPriority};
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.create_tenant(T, "Tenant").await.unwrap();
    let verified = manufacturer(&engine, COMPANY).await;
    let onboarding = manufacturer(&engine, "Nordlicht Handels GmbH").await;
    engine
        .set_manufacturer_verification(T, Actor::User(1), verified, VerificationStatus::Verified)
        .await
        .unwrap();
    // No workers: the jobs stay ready in storage, where their priority is recorded.
    let renewal = engine
        .upload_document(
            &maker(verified),
            verified,
            DocumentType::TaxCertificate,
            "tax.pdf",
            pdf(DocumentType::TaxCertificate, 41),
        )
        .await
        .unwrap();
    let first = engine
        .upload_document(
            &maker(onboarding),
            onboarding,
            DocumentType::TaxCertificate,
            "tax.pdf",
            samples::pdf(&samples::sample_spec(
                42,
                DocumentType::TaxCertificate,
                "Nordlicht Handels GmbH",
                *b"DE",
                today(),
            )),
        )
        .await
        .unwrap();
    let jobs = engine
        .jobs(&admin(), JobState::Ready, None, 100)
        .unwrap()
        .items;
    let priority = |document_id: u64| {
        jobs.iter()
            .find(|j| j.kind == JobKind::Verify { document_id })
            .unwrap()
            .priority
    };
    assert_eq!(priority(renewal.document.id), JobPriority::Renewal);
    assert_eq!(priority(first.document.id), JobPriority::Onboarding);
    // Renewals rank below onboarding: with one worker, the onboarding job uploaded second is
    // decided first.
    let mut one = config();
    one.queue.workers = 1;
    engine.start_verification(one).unwrap();
    assert_eq!(
        decided(&engine, renewal.document.id),
        DocumentStatus::Approved
    );
    assert_eq!(
        decided(&engine, first.document.id),
        DocumentStatus::Approved
    );
    let decided_at = |id: u64| {
        engine
            .document(&admin(), id)
            .unwrap()
            .decided_at_ms
            .unwrap()
    };
    assert!(decided_at(first.document.id) <= decided_at(renewal.document.id));
    engine.shutdown().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_number_held_by_another_vendor_goes_to_review_with_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.create_tenant(T, "Tenant").await.unwrap();
    let holder = manufacturer(&engine, COMPANY).await;
    let other_name = "Nordlicht Handels GmbH";
    let other = manufacturer(&engine, other_name).await;
    engine.start_verification(config()).unwrap();
    let spec = samples::sample_spec(
        51,
        DocumentType::BusinessRegistration,
        COMPANY,
        *b"DE",
        today(),
    );
    let first = engine
        .upload_document(
            &maker(holder),
            holder,
            DocumentType::BusinessRegistration,
            "register.pdf",
            samples::pdf(&spec),
        )
        .await
        .unwrap();
    assert_eq!(
        decided(&engine, first.document.id),
        DocumentStatus::Approved
    );
    // The other vendor's register extract carries the same number.
    let mut copy = samples::sample_spec(
        52,
        DocumentType::BusinessRegistration,
        other_name,
        *b"DE",
        today(),
    );
    copy.registration_number = spec.registration_number.clone();
    let second = engine
        .upload_document(
            &maker(other),
            other,
            DocumentType::BusinessRegistration,
            "register.pdf",
            samples::pdf(&copy),
        )
        .await
        .unwrap();
    assert_eq!(
        decided(&engine, second.document.id),
        DocumentStatus::InReview
    );
    let (document, _, result) = engine
        .document_details(&admin(), second.document.id)
        .unwrap();
    let assessment = result.unwrap().assessment.unwrap();
    let duplicate = assessment
        .checks
        .iter()
        .find(|c| c.name == "duplicate_registration")
        .expect("the duplicate check ran");
    assert!(!duplicate.passed && !duplicate.hard, "{duplicate:?}");
    assert!(
        duplicate
            .detail
            .contains(&format!("already held by vendor {holder}")),
        "{duplicate:?}"
    );
    let evidence = duplicate.evidence.as_ref().expect("the text span");
    let digits = |s: &str| {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
    };
    assert!(
        digits(&evidence.text).contains(&digits(&spec.registration_number)),
        "{evidence:?} {}",
        spec.registration_number
    );
    // Every other check passed: the duplicate alone sent it to review.
    assert!(
        assessment
            .checks
            .iter()
            .all(|c| c.passed || c.name == "duplicate_registration"),
        "{assessment:#?}"
    );
    assert!(
        document
            .reasons
            .iter()
            .any(|r| r.contains("already held by vendor")),
        "{:?}",
        document.reasons
    );
    let cases = engine
        .review_cases(&reviewer(7), CaseState::Open, None, None, 10)
        .unwrap()
        .items;
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].manufacturer_id, other);
    engine.shutdown().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_approve_threshold_of_100_sends_an_otherwise_approved_document_to_review() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.create_tenant(T, "Tenant").await.unwrap();
    let m = manufacturer(&engine, COMPANY).await;
    engine.start_verification(config()).unwrap();
    // A tax certificate whose optional issue date lies in the future: one optional check
    // fails, so its confidence is below 100 but above the default threshold of 90.
    let spec = |seed: u64| {
        let mut spec =
            samples::sample_spec(seed, DocumentType::TaxCertificate, COMPANY, *b"DE", today());
        spec.issue_day = today() + 20;
        samples::pdf(&spec)
    };
    let upload = |seed: u64| {
        let engine = &engine;
        async move {
            engine
                .upload_document(
                    &maker(m),
                    m,
                    DocumentType::TaxCertificate,
                    "tax.pdf",
                    spec(seed),
                )
                .await
                .unwrap()
                .document
                .id
        }
    };
    let under_default = upload(61).await;
    assert_eq!(decided(&engine, under_default), DocumentStatus::Approved);
    let confidence = engine
        .document(&admin(), under_default)
        .unwrap()
        .confidence_pct
        .unwrap();
    assert!((90..100).contains(&confidence), "{confidence}");

    let mut policy = engine.verification_policy(&admin()).unwrap();
    policy.auto_approve_pct = 100;
    engine
        .set_verification_policy(&admin(), policy)
        .await
        .unwrap();
    let under_strict = upload(62).await;
    assert_eq!(decided(&engine, under_strict), DocumentStatus::InReview);
    let document = engine.document(&admin(), under_strict).unwrap();
    assert_eq!(document.confidence_pct, Some(confidence));
    assert!(
        document
            .reasons
            .iter()
            .any(|r| r.contains("below the auto-approve threshold of 100%")),
        "{:?}",
        document.reasons
    );
    engine.shutdown().unwrap();
}
