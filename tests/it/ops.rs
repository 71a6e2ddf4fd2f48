//! `/healthz`, `/readyz` and `/metrics`.

use crate::support::spawn_app;

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app();
    let response = app
        .client()
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "ok");
}

#[tokio::test]
async fn readyz_is_ready_once_storage_is_open() {
    let app = spawn_app();
    let response = app
        .client()
        .get(format!("{}/readyz", app.url))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "stderr:\n{}", app.stderr());
    assert_eq!(response.text().await.expect("body"), "ready");
}

#[tokio::test]
async fn metrics_expose_http_and_storage_metrics() {
    let app = spawn_app();
    let client = app.client();
    for _ in 0..3 {
        let response = client
            .get(format!("{}/healthz", app.url))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
    }
    // A durable write through every shard, so the commit histograms have samples.
    assert_eq!(
        client
            .get(format!("{}/readyz", app.url))
            .send()
            .await
            .expect("request")
            .status(),
        200
    );
    let response = client
        .get(format!("{}/no/such/path/12345", app.url))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 404);

    let response = client
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.expect("body");

    let healthz_counter = text
        .lines()
        .find(|line| {
            line.starts_with("mercato_http_requests_total{")
                && line.contains(r#"route="/healthz""#)
                && line.contains(r#"method="GET""#)
                && line.contains(r#"status="200""#)
        })
        .unwrap_or_else(|| panic!("no request counter for /healthz in:\n{text}"));
    let count: f64 = healthz_counter
        .rsplit(' ')
        .next()
        .expect("value")
        .parse()
        .expect("number");
    assert_eq!(count, 3.0, "{healthz_counter}");

    assert!(
        text.lines().any(
            |line| line.starts_with("mercato_http_request_duration_seconds_bucket{")
                && line.contains(r#"route="/healthz""#)
        ),
        "no latency histogram in:\n{text}"
    );
    // Unmatched requests are counted under one label, never under their raw path.
    assert!(text.contains(r#"route="unmatched""#), "{text}");
    assert!(
        !text.contains("/no/such/path"),
        "raw path leaked into labels:\n{text}"
    );

    for storage_metric in [
        "mercato_shards_open",
        "mercato_commit_batch_size_bucket",
        "mercato_commit_seconds_bucket",
        "mercato_changelog_entries",
    ] {
        assert!(
            text.contains(storage_metric),
            "{storage_metric} missing from:\n{text}"
        );
    }
    assert!(
        text.lines()
            .any(|line| line.starts_with("mercato_shards_open ") && !line.ends_with(" 0")),
        "{text}"
    );
}

#[tokio::test]
async fn json_log_format_writes_one_object_per_line() {
    let app = crate::support::spawn_app_with(crate::support::SpawnOptions {
        env: vec![
            ("MERCATO_LOG_FORMAT".into(), "json".into()),
            ("MERCATO_LOG_LEVEL".into(), "debug".into()),
        ],
        ..crate::support::SpawnOptions::default()
    });
    let response = app
        .client()
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    // The request log line is written after the response; give it a moment to reach the pipe.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let stderr = loop {
        let stderr = app.stderr();
        if stderr.contains("\"route\":\"/healthz\"") || std::time::Instant::now() > deadline {
            break stderr;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"));
        assert!(
            object["level"].is_string() && object["timestamp"].is_string(),
            "{line}"
        );
    }
    let request_log = lines
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|object| object["route"] == "/healthz")
        .unwrap_or_else(|| panic!("no debug request log for /healthz in:\n{stderr}"));
    assert_eq!(request_log["status"], 200);
    assert_eq!(request_log["method"], "GET");
}
