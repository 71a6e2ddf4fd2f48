//! Error responses are RFC 9457 problem details with a stable code.

use crate::support::{SpawnOptions, spawn_app, spawn_app_with};

async fn problem_body(response: reqwest::Response) -> serde_json::Value {
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    response.json().await.expect("problem body is JSON")
}

#[tokio::test]
async fn unknown_route_is_404_problem() {
    let app = spawn_app();
    let response = app
        .client()
        .get(format!("{}/v1/nothing-here", app.url))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 404);
    let body = problem_body(response).await;
    assert_eq!(body["status"], 404);
    assert_eq!(body["code"], "not_found");
    assert_eq!(body["type"], "/problems/not_found");
    assert!(body["title"].is_string());
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("/v1/nothing-here")),
        "{body}"
    );
}

#[tokio::test]
async fn wrong_method_is_405_problem_with_allow() {
    let app = spawn_app();
    let response = app
        .client()
        .delete(format!("{}/healthz", app.url))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 405);
    let allow = response
        .headers()
        .get("allow")
        .expect("Allow header")
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(allow.contains("GET"), "{allow}");
    assert_eq!(problem_body(response).await["code"], "method_not_allowed");
}

#[tokio::test]
async fn oversized_body_is_413_problem() {
    let app = spawn_app_with(SpawnOptions {
        env: vec![("MERCATO_HTTP_REQUEST_BODY_BYTES_MAX".into(), "1KiB".into())],
        ..SpawnOptions::default()
    });
    let client = app.client();
    let response = client
        .post(format!("{}/v1/anything", app.url))
        .body(vec![b'x'; 4096])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 413);
    let body = problem_body(response).await;
    assert_eq!(body["code"], "payload_too_large");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("1024")),
        "{body}"
    );

    // A body within the limit passes the limit and reaches routing.
    let response = client
        .post(format!("{}/v1/anything", app.url))
        .body(vec![b'x'; 1024])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 404);
}
