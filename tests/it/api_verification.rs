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
    let mut w = world().await;
    let maker = w.a.manufacturer_user.token.clone();
    let m = w.a.manufacturer_id;
    let mut ids = Vec::new();
    for seed in 0..24 {
        let pdf = acme_pdf(DocumentType::TaxCertificate, 500 + seed);
        let (status, doc) = upload(&w, &maker, m, form("tax_certificate", "tax.pdf", &pdf)).await;
        assert_eq!(status, StatusCode::CREATED, "{doc}");
        ids.push(doc["id"].as_u64().unwrap());
    }
    // Killed while workers are at it: some jobs done, some leased, some ready.
    w.app.signal("KILL");
    w.app.wait_exit(Duration::from_secs(10));
    let data_dir = w.app.data_dir.clone();
    w.app = spawn_app_with(SpawnOptions {
        data_dir: Some(data_dir),
        ..SpawnOptions::default()
    });
    for &id in &ids {
        let doc = decided(&w, &maker, id).await;
        assert_eq!(doc["status"], "approved", "{doc}");
    }
    let (status, audit) = w
        .get(
            "/v1/audit?action=document.verify&limit=500",
            &w.a.admin.token,
        )
        .await;
    assert_eq!(status, 200, "{audit}");
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        ids.len(),
        "one verification per document: {audit}"
    );
}
