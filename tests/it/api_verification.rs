//! End-to-end tests: vendor verification over HTTP against the real binary: multipart uploads
//! decided by the workers, one document per content, 413/415/422 answers naming the problem,
//! the review queue (claim, decide), notifications, and jobs surviving `kill -9`.

use crate::api_support::{World, send, world};
use crate::support::{SpawnOptions, spawn_app_with};
use mercato_engine::verification::actions::DAY_MS;
use mercato_engine::verification::rules::DocumentType;
use mercato_engine::verification::samples;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const BOUNDARY: &str = "mercato-test-boundary-7f3a";

/// A multipart body with a `type` field and a `file` field.
pub fn form(doc_type: &str, file_name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    if !doc_type.is_empty() {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\n{doc_type}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

pub async fn upload(
    w: &World,
    token: &str,
    manufacturer: u64,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let request = w
        .req(
            Method::POST,
            &format!("/v1/manufacturers/{manufacturer}/documents"),
            token,
        )
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body);
    send(request).await
}

fn today() -> i64 {
    (mercato_engine::now_ms() / DAY_MS) as i64
}

fn acme_pdf(doc_type: DocumentType, seed: u64) -> Vec<u8> {
    samples::pdf(&samples::sample_spec(
        seed,
        doc_type,
        "Acme Tools GmbH",
        *b"DE",
        today(),
    ))
}

/// Polls a document until it leaves `processing`.
async fn decided(w: &World, token: &str, id: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, doc) = w.get(&format!("/v1/documents/{id}"), token).await;
        assert_eq!(status, 200, "{doc}");
        if doc["status"] != "processing" {
            return doc;
        }
        assert!(
            Instant::now() < deadline,
            "document {id} not decided: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn uploads_are_verified_reviewed_and_reported() {
    let w = world().await;
    let a = &w.a;
    let maker = &a.manufacturer_user.token;
    let m = a.manufacturer_id;

    let pdf = acme_pdf(DocumentType::BusinessRegistration, 1);
    let (status, doc) = upload(&w, maker, m, form("business_registration", "hr.pdf", &pdf)).await;
    assert_eq!(status, StatusCode::CREATED, "{doc}");
    assert_eq!(
        (doc["format"].as_str(), doc["file_name"].as_str()),
        (Some("pdf"), Some("hr.pdf"))
    );
    let id = doc["id"].as_u64().unwrap();
    let done = decided(&w, maker, id).await;
    assert_eq!(done["status"], "approved", "{done}");
    assert!(
        done["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["passed"] == true),
        "{done}"
    );
    assert!(
        done["text_excerpt"]
            .as_str()
            .unwrap()
            .contains("Acme Tools")
    );

    // The same bytes: the same document, 200.
    let (status, again) = upload(
        &w,
        maker,
        m,
        form("business_registration", "copy.pdf", &pdf),
    )
    .await;
    assert_eq!((status, again["id"].as_u64()), (StatusCode::OK, Some(id)));
    let (status, bytes) = {
        let response = w
            .req(Method::GET, &format!("/v1/documents/{id}/content"), maker)
            .send()
            .await
            .unwrap();
        (response.status(), response.bytes().await.unwrap())
    };
    assert_eq!((status, bytes.as_ref()), (StatusCode::OK, pdf.as_slice()));

    // Bad input names the problem.
    let (status, problem) = upload(&w, maker, m, form("other", "x.bin", &[0, 159, 146, 150])).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        ),
        "{problem}"
    );
    let (status, problem) = upload(&w, maker, m, form("", "x.txt", b"hello")).await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("type")),
        "{problem}"
    );
    let (status, problem) = upload(&w, maker, m, form("passport_photo", "x.txt", b"hello")).await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("type")),
        "{problem}"
    );
    let big = vec![b'a'; (16 << 20) + 1024];
    let (status, problem) = upload(&w, maker, m, form("other", "big.txt", &big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{problem}");
    // Another manufacturer's documents are not this user's.
    let (status, _) = upload(
        &w,
        maker,
        a.unverified_manufacturer_id,
        form("other", "x.txt", b"hi"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A scan goes to review: a reviewer claims and approves it.
    let (status, scan) = upload(
        &w,
        maker,
        m,
        form("tax_certificate", "scan.png", &samples::png_scan(40, 20, 3)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{scan}");
    let scan_id = scan["id"].as_u64().unwrap();
    let reviewed = decided(&w, maker, scan_id).await;
    assert_eq!(reviewed["status"], "in_review", "{reviewed}");
    let case = reviewed["review_case_id"].as_u64().unwrap();
    let reviewer = &a.reviewer.token;
    let (status, cases) = w.get("/v1/review-cases?state=open", reviewer).await;
    assert_eq!(status, 200, "{cases}");
    assert_eq!(cases["items"][0]["id"].as_u64(), Some(case));
    let (status, body) = w
        .post(
            &format!("/v1/review-cases/{case}/decision"),
            reviewer,
            json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("case_not_claimed")),
        "{body}"
    );
    let (status, claimed) = w
        .post(
            &format!("/v1/review-cases/{case}/claim"),
            reviewer,
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{claimed}");
    assert_eq!(
        claimed["claimed_by"],
        format!("user/{}", a.reviewer.user_id)
    );
    let (status, body) = w
        .post(
            &format!("/v1/review-cases/{case}/decision"),
            reviewer,
            json!({"decision": "maybe"}),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("decision")),
        "{body}"
    );
    let (status, body) = w
        .post(
            &format!("/v1/review-cases/{case}/decision"),
            reviewer,
            json!({"decision": "approve", "reason": "checked"}),
        )
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (StatusCode::OK, Some("decided")),
        "{body}"
    );
    let (_, after) = w.get(&format!("/v1/documents/{scan_id}"), maker).await;
    assert_eq!(after["status"], "approved");
    // Both required types approved: the manufacturer is verified, and was told.
    let (_, notes) = w
        .get(&format!("/v1/manufacturers/{m}/notifications"), maker)
        .await;
    assert!(notes["items"].as_array().unwrap().len() >= 4, "{notes}");
    // Manufacturer users may not review.
    let (status, _) = w.get("/v1/review-cases", maker).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The policy and the dead-letter list are the admin's.
    let (status, policy) = w.get("/v1/verification/policy", &a.admin.token).await;
    assert_eq!(
        (status, policy["auto_approve_pct"].as_u64()),
        (StatusCode::OK, Some(90))
    );
    let mut bad = policy.clone();
    bad["required_types"] = json!(["tax_certificate", "nope"]);
    let (status, problem) = w.put("/v1/verification/policy", &a.admin.token, bad).await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("required_types[1]")),
        "{problem}"
    );
    let (status, dead) = w.get("/v1/verification/jobs", &a.admin.token).await;
    assert_eq!(
        (status, dead["items"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0)),
        "{dead}"
    );

    // The queue's metrics are exported (the gauges within a second of the reaper's update).
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let metrics = w
        .client
        .get(format!("{}/metrics", w.app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "mercato_jobs_completed_total",
        "mercato_jobs_attempts_total",
        "mercato_job_processing_seconds",
        "mercato_verification_upload_to_decision_seconds",
        "mercato_jobs{state=\"ready\"}",
        "mercato_jobs_oldest_ready_age_seconds",
        "mercato_jobs{state=\"dead\"}",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
}

#[tokio::test]
async fn acknowledged_uploads_are_verified_exactly_once_across_kill_9() {
    const DOCUMENTS: u64 = 160;
    let mut w = world().await;
    // One worker, and the uploads sent 16 at a time (their commits are grouped while each
    // verification commits on its own): the worker falls behind, so at the kill some jobs are
    // done and others are leased or waiting.
    respawn_with(&mut w, &[("MERCATO_VERIFICATION_WORKERS", "1")]);
    let maker = w.a.manufacturer_user.token.clone();
    let m = w.a.manufacturer_id;
    let mut ids = Vec::new();
    for chunk in (0..DOCUMENTS).collect::<Vec<_>>().chunks(16) {
        let mut uploads = tokio::task::JoinSet::new();
        for &seed in chunk {
            let pdf = acme_pdf(DocumentType::TaxCertificate, 500 + seed);
            let request = w
                .req(
                    Method::POST,
                    &format!("/v1/manufacturers/{m}/documents"),
                    &maker,
                )
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(form("tax_certificate", "tax.pdf", &pdf));
            uploads.spawn(send(request));
        }
        while let Some(done) = uploads.join_next().await {
            let (status, doc) = done.unwrap();
            assert_eq!(status, StatusCode::CREATED, "{doc}");
            ids.push(doc["id"].as_u64().unwrap());
        }
    }
    ids.sort_unstable();
    let count_decided = |listing: &Value| {
        listing["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| ids.contains(&d["id"].as_u64().unwrap()) && d["status"] != "processing")
            .count()
    };
    // Through the API: the worker is at it (some decided)...
    let listed = format!("/v1/manufacturers/{m}/documents?limit=500");
    let deadline = Instant::now() + Duration::from_secs(20);
    let decided_before = loop {
        let (status, listing) = w.get(&listed, &maker).await;
        assert_eq!(status, 200, "{listing}");
        let decided = count_decided(&listing);
        if decided > 0 {
            break decided;
        }
        assert!(Instant::now() < deadline, "no document was decided");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    w.app.signal("KILL");
    w.app.wait_exit(Duration::from_secs(10));
    // ...and what was durable at the kill, read from storage before the restart: some
    // documents decided, others still waiting for their (leased or ready) job.
    let data_dir = w.app.data_dir.clone();
    let decided_at_kill = {
        let engine = mercato_engine::Engine::open(mercato_engine::EngineConfig::new(&data_dir))
            .expect("open the engine after the kill");
        let admin = engine.authenticate(&w.a.admin.token).expect("admin token");
        let decided = ids
            .iter()
            .filter(|&&id| {
                engine
                    .document(&admin, id)
                    .expect("an acknowledged document")
                    .status
                    != mercato_engine::tables::DocumentStatus::Processing
            })
            .count();
        engine.shutdown().expect("close the engine");
        decided
    };
    assert!(
        decided_before <= decided_at_kill && decided_at_kill < ids.len(),
        "decided: {decided_before} through the API, {decided_at_kill} at the kill, of {}",
        ids.len()
    );
    w.app = spawn_app_with(SpawnOptions {
        data_dir: Some(data_dir),
        ..SpawnOptions::default()
    });
    for &id in &ids {
        let doc = decided(&w, &maker, id).await;
        assert_eq!(doc["status"], "approved", "{doc}");
    }
    // One verification per document: an audit entry each, none twice.
    let (status, audit) = w
        .get(
            "/v1/audit?action=document.verify&limit=500",
            &w.a.admin.token,
        )
        .await;
    assert_eq!(status, 200, "{audit}");
    let mut verified: Vec<u64> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let resource = e["resource"].as_str().unwrap();
            resource
                .strip_prefix("document/")
                .and_then(|r| r.split('#').next())
                .and_then(|id| id.parse().ok())
                .unwrap_or_else(|| panic!("a document resource: {resource}"))
        })
        .collect();
    verified.sort_unstable();
    assert_eq!(verified, ids, "one verification per document");
}

/// A running server replaced by one on the same data directory with `env` set.
fn respawn_with(w: &mut World, env: &[(&str, &str)]) {
    w.app.signal("TERM");
    w.app.wait_exit(Duration::from_secs(20));
    let data_dir = w.app.data_dir.clone();
    w.app = spawn_app_with(SpawnOptions {
        data_dir: Some(data_dir),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..SpawnOptions::default()
    });
}

async fn metrics_text(w: &World) -> String {
    w.client
        .get(format!("{}/metrics", w.app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of an unlabelled (or exactly labelled) sample in Prometheus text.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

fn find_file(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

#[tokio::test]
async fn uploads_past_the_backlog_get_503_with_retry_after_and_the_review_list_filters_by_type() {
    let mut w = world().await;
    // Room for the first upload's two jobs (its verification and the tenant's lifecycle job);
    // the lifecycle job stays scheduled for a day, so the second upload never fits.
    respawn_with(&mut w, &[("MERCATO_VERIFICATION_BACKLOG_MAX", "2")]);
    let maker = w.a.manufacturer_user.token.clone();
    let m = w.a.manufacturer_id;
    let (status, letter) = upload(
        &w,
        &maker,
        m,
        form(
            "other",
            "letter.txt",
            b"Acme Tools GmbH\nA letter about our address.",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{letter}");
    let response = w
        .req(
            Method::POST,
            &format!("/v1/manufacturers/{m}/documents"),
            &maker,
        )
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(form(
            "other",
            "second.txt",
            b"Acme Tools GmbH\nAnother letter.",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "overloaded", "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("was not stored"),
        "{problem}"
    );

    // The letter (type other) waits for a reviewer: the list filters by type and shows age.
    let letter_id = letter["id"].as_u64().unwrap();
    assert_eq!(decided(&w, &maker, letter_id).await["status"], "in_review");
    let reviewer = &w.a.reviewer.token;
    let (status, others) = w
        .get("/v1/review-cases?state=open&type=other", reviewer)
        .await;
    assert_eq!(status, 200, "{others}");
    let items = others["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{others}");
    assert_eq!(items[0]["document_id"].as_u64(), Some(letter_id));
    assert_eq!(items[0]["document_type"], "other");
    assert!(items[0]["age_seconds"].as_u64().is_some(), "{others}");
    let (status, tax) = w
        .get("/v1/review-cases?state=open&type=tax_certificate", reviewer)
        .await;
    assert_eq!(status, 200, "{tax}");
    assert_eq!(tax["items"].as_array().map(Vec::len), Some(0), "{tax}");
    let (status, problem) = w
        .get("/v1/review-cases?state=open&type=passport_photo", reviewer)
        .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("type")),
        "{problem}"
    );
}

#[tokio::test]
async fn a_dead_lettered_job_is_listed_counted_and_retried_by_an_admin_over_http() {
    let mut w = world().await;
    let m = w.a.manufacturer_id;
    // Written while the server is down (the engine directly, no workers): the job waits in
    // storage. Then its bytes disappear, so its one allowed attempt fails.
    w.app.signal("TERM");
    w.app.wait_exit(Duration::from_secs(20));
    let data_dir = w.app.data_dir.clone();
    let (document_id, sha256) = {
        let engine = mercato_engine::Engine::open(mercato_engine::EngineConfig::new(&data_dir))
            .expect("open the engine");
        let maker = engine
            .authenticate(&w.a.manufacturer_user.token)
            .expect("the maker's token");
        let up = engine
            .upload_document(
                &maker,
                m,
                DocumentType::TaxCertificate,
                "tax.pdf",
                acme_pdf(DocumentType::TaxCertificate, 77),
            )
            .await
            .expect("upload");
        engine.shutdown().expect("close the engine");
        (
            up.document.id,
            mercato_engine::verification::actions::hex(&up.document.sha256),
        )
    };
    let blob = find_file(&data_dir, &format!("{sha256}.blob")).expect("the document's blob");
    let saved = std::fs::read(&blob).unwrap();
    std::fs::remove_file(&blob).unwrap();
    w.app = spawn_app_with(SpawnOptions {
        data_dir: Some(data_dir),
        env: vec![("MERCATO_VERIFICATION_ATTEMPTS_MAX".into(), "1".into())],
        ..SpawnOptions::default()
    });
    let admin = w.a.admin.token.clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    let dead = loop {
        let (status, dead) = w.get("/v1/verification/jobs?state=dead", &admin).await;
        assert_eq!(status, 200, "{dead}");
        if let Some(job) = dead["items"].as_array().unwrap().first() {
            break job.clone();
        }
        assert!(Instant::now() < deadline, "the job never died");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(dead["document_id"].as_u64(), Some(document_id), "{dead}");
    assert_eq!(
        (dead["state"].as_str(), dead["attempts"].as_u64()),
        (Some("dead"), Some(1))
    );
    assert!(
        dead["last_error"].as_str().unwrap().contains("blob"),
        "{dead}"
    );
    let maker = w.a.manufacturer_user.token.clone();
    let (_, document) = w.get(&format!("/v1/documents/{document_id}"), &maker).await;
    assert_eq!(document["status"], "processing", "{document}");

    // One dead letter, no lease expiry (the attempt failed; it did not stall), in /metrics
    // (the gauges within a second of the reaper's update).
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let metrics = metrics_text(&w).await;
    assert_eq!(
        sample(&metrics, "mercato_jobs_dead_letters_total"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "mercato_jobs{state=\"dead\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "mercato_jobs_lease_expiries_total"),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "mercato_jobs_failed_total"),
        Some(1.0),
        "{metrics}"
    );

    // Only a dead job is retried, and only by an admin.
    let job = dead["id"].as_u64().unwrap();
    let (status, _) = w
        .post(
            &format!("/v1/verification/jobs/{job}/retry"),
            &w.a.reviewer.token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, ready) = w.get("/v1/verification/jobs?state=ready", &admin).await;
    let lifecycle = ready["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["kind"] == "lifecycle")
        .unwrap_or_else(|| panic!("the tenant's lifecycle job: {ready}"))["id"]
        .as_u64()
        .unwrap();
    let (status, problem) = w
        .post(
            &format!("/v1/verification/jobs/{lifecycle}/retry"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::CONFLICT, Some("job_not_dead")),
        "{problem}"
    );
    let (status, problem) = w
        .post("/v1/verification/jobs/999999/retry", &admin, json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");

    // The bytes are back; the admin retries: the job runs and the document is decided.
    std::fs::write(&blob, saved).unwrap();
    let (status, retried) = w
        .post(
            &format!("/v1/verification/jobs/{job}/retry"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    assert_eq!(
        (retried["state"].as_str(), retried["attempts"].as_u64()),
        (Some("ready"), Some(0)),
        "{retried}"
    );
    assert_eq!(decided(&w, &maker, document_id).await["status"], "approved");
    let (_, dead) = w.get("/v1/verification/jobs?state=dead", &admin).await;
    assert_eq!(dead["items"].as_array().map(Vec::len), Some(0), "{dead}");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let metrics = metrics_text(&w).await;
    assert_eq!(
        sample(&metrics, "mercato_jobs{state=\"dead\"}"),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "mercato_jobs_dead_letters_total"),
        Some(1.0),
        "a counter: {metrics}"
    );
}
