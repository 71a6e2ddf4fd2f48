//! The verification workers under injected failures (see `service::test_hooks`, compiled into
//! test builds only): a slow extraction keeps its lease by heartbeat, a stalled worker's lease
//! lapses and the job runs again once, and a panic while processing costs only that job's
//! attempts, not the worker.

use super::extract::ExtractConfig;
use super::rules::DocumentType;
use super::samples;
use super::service::VerificationConfig;
use super::service::test_hooks::{PANIC_IN_WORKER, SLOW_EXTRACTION, STALL_ONCE};
use crate::accounts::{Principal, Role, ScopeSet};
use crate::audit::AuditQuery;
use crate::catalog::ManufacturerInput;
use crate::jobs::QueueConfig;
use crate::tables::{CountryCode, DocumentStatus, JobState};
use crate::verification::actions::DAY_MS;
use crate::{Actor, Engine, EngineConfig, TenantId};
use std::time::{Duration, Instant};

const T: TenantId = TenantId(1);
const COMPANY: &str = "Rheinwerk Maschinenbau GmbH";
const WAIT: Duration = Duration::from_secs(30);

fn config(workers: usize, lease: Duration) -> VerificationConfig {
    VerificationConfig {
        queue: QueueConfig {
            workers,
            lease,
            attempts_max: 2,
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(50),
            backlog_max: 1_000,
            job_time_budget: Duration::from_secs(20),
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

fn maker(id: u64) -> Principal {
    Principal::user(
        T,
        100 + id,
        Role::ManufacturerUser {
            manufacturer_id: id,
        },
    )
}

/// An engine with one tenant and one manufacturer (verification not started).
async fn setup(dir: &std::path::Path) -> (Engine, u64) {
    let mut engine_config = EngineConfig::new(dir);
    engine_config.shards_initial = 1;
    let engine = Engine::open(engine_config).expect("open the engine");
    engine
        .create_tenant(T, "Tenant")
        .await
        .expect("create the tenant");
    let m = engine
        .create_manufacturer(
            T,
            Actor::User(1),
            ManufacturerInput {
                name: COMPANY.into(),
                country: CountryCode::parse("DE").expect("a country code"),
            },
        )
        .await
        .expect("create the manufacturer")
        .id;
    (engine, m)
}

fn registration(seed: u64) -> Vec<u8> {
    let today = (crate::now_ms() / DAY_MS) as i64;
    samples::pdf(&samples::sample_spec(
        seed,
        DocumentType::BusinessRegistration,
        COMPANY,
        *b"DE",
        today,
    ))
}

async fn upload(engine: &Engine, m: u64, file_name: &str, bytes: Vec<u8>) -> u64 {
    engine
        .upload_document(
            &maker(m),
            m,
            DocumentType::BusinessRegistration,
            file_name,
            bytes,
        )
        .await
        .expect("the upload is accepted")
        .document
        .id
}

fn decided(engine: &Engine, id: u64) -> DocumentStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = engine.document(&admin(), id).expect("the document").status;
        if status != DocumentStatus::Processing {
            return status;
        }
        assert!(Instant::now() < deadline, "document {id} was not decided");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn audit_count(engine: &Engine, action: &str) -> usize {
    engine
        .audit_query(
            T,
            &AuditQuery {
                limit: 1_000,
                ..Default::default()
            },
        )
        .expect("the audit log")
        .entries
        .iter()
        .filter(|e| e.action == action)
        .count()
}

/// Gap before the fix: the worker heartbeated only before and after extraction, so an
/// extraction longer than the lease let the reaper take the job back and run it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extraction_longer_than_the_lease_keeps_its_job_by_heartbeat() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (engine, m) = setup(dir.path()).await;
    // Heartbeats every 200 ms leave 400 ms of slack for a busy machine's scheduling.
    let lease = Duration::from_millis(600);
    engine
        .start_verification(config(1, lease))
        .expect("start verification");
    // Over three leases long: without heartbeats during extraction the reaper (every 50 ms)
    // takes the job back after the first.
    let file_name = format!("{SLOW_EXTRACTION}2000.pdf");
    let id = upload(&engine, m, &file_name, registration(1)).await;
    assert_eq!(decided(&engine, id), DocumentStatus::Approved);
    let stats = engine.job_queue_stats().expect("verification runs");
    assert_eq!(stats.leases_expired, 0, "{stats:?}");
    assert_eq!(stats.leases_granted, 1, "one attempt: {stats:?}");
    assert_eq!(audit_count(&engine, "job.retry_scheduled"), 0);
    assert_eq!(audit_count(&engine, "document.verify"), 1);
    engine.shutdown().expect("shut down");
}

/// A worker that stops heartbeating (stuck before extraction) loses its lease: the job comes
/// back, runs again on the other worker, and its effect is written once; the stuck worker's
/// late attempt is dropped when it finds its lease gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_lease_runs_the_job_again_and_writes_its_effect_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (engine, m) = setup(dir.path()).await;
    engine
        .start_verification(config(2, Duration::from_millis(250)))
        .expect("start verification");
    let file_name = format!("{STALL_ONCE}1500.pdf");
    let id = upload(&engine, m, &file_name, registration(2)).await;
    assert_eq!(decided(&engine, id), DocumentStatus::Approved);
    // The stuck worker wakes up, finds its lease gone and gives up without writing.
    std::thread::sleep(Duration::from_millis(1_700));
    let stats = engine.job_queue_stats().expect("verification runs");
    assert_eq!(stats.leases_expired, 1, "{stats:?}");
    assert_eq!(stats.leases_granted, 2, "{stats:?}");
    assert_eq!(
        audit_count(&engine, "job.retry_scheduled"),
        1,
        "one failed attempt recorded (attempts = 1)"
    );
    assert_eq!(audit_count(&engine, "job.dead"), 0);
    assert_eq!(audit_count(&engine, "document.verify"), 1, "one effect");
    assert!(
        engine
            .jobs(&admin(), JobState::Dead, None, 10)
            .expect("dead jobs")
            .items
            .is_empty()
    );
    engine.shutdown().expect("shut down");
}

/// A panic while processing is caught: the job's attempts fail into the dead-letter list and the
/// one worker goes on with other jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_while_processing_fails_the_job_and_the_worker_survives() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (engine, m) = setup(dir.path()).await;
    engine
        .start_verification(config(1, Duration::from_secs(5)))
        .expect("start verification");
    let panicking = upload(
        &engine,
        m,
        &format!("{PANIC_IN_WORKER}.pdf"),
        registration(3),
    )
    .await;
    let deadline = Instant::now() + WAIT;
    let dead = loop {
        let dead = engine
            .jobs(&admin(), JobState::Dead, None, 10)
            .expect("dead jobs");
        if let Some(job) = dead.items.first() {
            break job.clone();
        }
        assert!(Instant::now() < deadline, "the panicking job never died");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(dead.attempts, 2);
    let error = dead.last_error.expect("the last error");
    assert!(error.contains("panicked"), "{error}");
    assert_eq!(engine.dead_jobs(), Some(1));
    assert_eq!(
        engine
            .document(&admin(), panicking)
            .expect("document")
            .status,
        DocumentStatus::Processing
    );
    // The only worker panicked twice and still runs: the next job is decided.
    let next = upload(&engine, m, "register.pdf", registration(4)).await;
    assert_eq!(decided(&engine, next), DocumentStatus::Approved);
    assert_eq!(audit_count(&engine, "document.verify"), 1);
    engine.shutdown().expect("shut down");
}
