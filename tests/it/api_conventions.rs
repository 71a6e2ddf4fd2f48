//! API conventions over HTTP that no single resource owns: the per-credential rate limit,
//! response compression, the API's own documentation, and the read cache's metric.

use crate::api_support::{assert_problem, send, status_and_json, world, world_with_env};
use flate2::read::GzDecoder;
use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::io::Read;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_over_its_rate_gets_429_with_retry_after_and_others_do_not() {
    let w = world_with_env(
        Vec::new(),
        vec![
            ("MERCATO_HTTP_RATE_LIMIT_PER_SECOND".into(), "1".into()),
            ("MERCATO_HTTP_RATE_LIMIT_BURST".into(), "3".into()),
        ],
    )
    .await;
    let buyer = &w.a.buyer.token;
    // The burst is 3 at one request per second: well within 20 quick requests the buyer's
    // budget runs out.
    let mut refused = None;
    let mut allowed = 0;
    for _ in 0..20 {
        let response = w
            .req(Method::GET, "/v1/me", buyer)
            .send()
            .await
            .expect("send");
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
        allowed += 1;
    }
    let response = refused.expect("the buyer's token was never refused");
    assert!(allowed >= 3, "the burst of 3 was not granted: {allowed}");
    let retry_after: u64 = response
        .headers()
        .get(RETRY_AFTER)
        .expect("Retry-After")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("whole seconds");
    assert!(retry_after >= 1, "{retry_after}");
    assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
    let got = status_and_json(response).await;
    assert_problem(&got, StatusCode::TOO_MANY_REQUESTS, "rate_limited");

    // Another credential has its own budget, in the same tenant and in another.
    for token in [&w.a.reviewer.token, &w.b.buyer.token] {
        let (status, me) = w.get("/v1/me", token).await;
        assert_eq!(status, StatusCode::OK, "{me}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_are_gzipped_when_the_client_accepts_it() {
    let w = world().await;
    let plain = w
        .anon(Method::GET, "/openapi.json")
        .send()
        .await
        .expect("send");
    assert_eq!(plain.status(), StatusCode::OK);
    assert!(plain.headers().get(CONTENT_ENCODING).is_none());
    let plain = plain.bytes().await.expect("body");

    let zipped = w
        .anon(Method::GET, "/openapi.json")
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .expect("send");
    assert_eq!(zipped.status(), StatusCode::OK);
    assert_eq!(zipped.headers()[CONTENT_ENCODING], "gzip");
    let zipped = zipped.bytes().await.expect("body");
    assert!(
        zipped.len() < plain.len(),
        "{} bytes compressed, {} plain",
        zipped.len(),
        plain.len()
    );
    let mut inflated = Vec::new();
    GzDecoder::new(&zipped[..])
        .read_to_end(&mut inflated)
        .expect("valid gzip");
    assert_eq!(inflated, plain.to_vec());
    let doc: Value = serde_json::from_slice(&inflated).expect("JSON");
    assert!(doc["paths"].is_object());

    // An API response too, with a credential.
    let response = w
        .req(Method::GET, "/v1/products?limit=100", &w.a.buyer.token)
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_ENCODING], "gzip");
    let mut inflated = String::new();
    GzDecoder::new(&response.bytes().await.expect("body")[..])
        .read_to_string(&mut inflated)
        .expect("valid gzip");
    let page: Value = serde_json::from_str(&inflated).expect("JSON");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(5), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_page_and_the_openapi_document_describe_the_routes() {
    let w = world().await;
    let response = w.anon(Method::GET, "/docs").send().await.expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = response.text().await.expect("body");
    for route in ["/v1/products/{id}", "/v1/orders", "/v1/auth/login"] {
        assert!(page.contains(&format!("<code>{route}</code>")), "{route}");
    }

    let (status, doc) = send(w.anon(Method::GET, "/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3.1"), "{version}");

    // Every /v1 operation documents the errors the middleware can answer with.
    let paths = doc["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, item) in paths.iter().filter(|(path, _)| path.starts_with("/v1/")) {
        for (method, operation) in item.as_object().expect("path item") {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            operations += 1;
            let responses = &operation["responses"];
            let problem = |status: &str| {
                responses[status]["content"]["application/problem+json"]["schema"]["$ref"]
                    == "#/components/schemas/Problem"
            };
            let authenticated = operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty());
            if authenticated {
                assert!(problem("401"), "{method} {path}: no 401");
            }
            if operation.get("requestBody").is_some() {
                assert!(problem("413"), "{method} {path}: no 413");
            }
            for status in ["429", "500", "503"] {
                assert!(problem(status), "{method} {path}: no {status}");
            }
            assert!(
                responses["429"]["headers"]["Retry-After"].is_object(),
                "{method} {path}: 429 without Retry-After"
            );
        }
    }
    assert!(operations > 50, "only {operations} operations");
    // The sortable lists document `sort`.
    for path in ["/v1/products", "/v1/orders"] {
        let parameters = doc["paths"][path]["get"]["parameters"]
            .as_array()
            .expect("parameters");
        assert!(
            parameters
                .iter()
                .any(|p| p["name"] == "sort" && p["in"] == "query"),
            "{path}: {parameters:?}"
        );
    }
    // Login takes no credential and a body.
    let login = &doc["paths"]["/v1/auth/login"]["post"];
    assert!(login["responses"]["413"].is_object());
    assert!(login["responses"]["429"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_a_product_twice_counts_a_cache_hit() {
    let w = world().await;
    let path = format!("/v1/products/{}", w.a.products[0]);
    for _ in 0..2 {
        let (status, product) = w.get(&path, &w.a.buyer.token).await;
        assert_eq!(status, StatusCode::OK, "{product}");
    }
    let text = w
        .anon(Method::GET, "/metrics")
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("body");
    let hits: f64 = text
        .lines()
        .find(|line| {
            line.starts_with("mercato_cache_requests_total{")
                && line.contains(r#"kind="product""#)
                && line.contains(r#"result="hit""#)
        })
        .unwrap_or_else(|| panic!("no product cache hits in:\n{text}"))
        .rsplit(' ')
        .next()
        .expect("value")
        .parse()
        .expect("number");
    assert!(hits >= 1.0, "{hits}");
}
