//! HTTP versions and TLS.

use crate::support::{SpawnOptions, client_builder, spawn_app, spawn_app_with};
use reqwest::Version;

#[tokio::test]
async fn plain_http_serves_http1_and_h2c_prior_knowledge() {
    let app = spawn_app();
    assert!(app.url.starts_with("http://127.0.0.1:"), "{}", app.url);

    let response = app
        .client()
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .expect("request");
    assert_eq!(response.version(), Version::HTTP_11);

    let h2c = client_builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let response = h2c
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .expect("h2c request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), Version::HTTP_2);
}

#[tokio::test]
async fn self_signed_tls_serves_https_and_negotiates_http2() {
    let app = spawn_app_with(SpawnOptions {
        args: vec!["--tls-self-signed".into()],
        ..SpawnOptions::default()
    });
    assert!(app.url.starts_with("https://127.0.0.1:"), "{}", app.url);
    assert!(
        app.stderr().contains("self-signed"),
        "no development warning in:\n{}",
        app.stderr()
    );

    // A client that verifies certificates refuses the self-signed one...
    let strict = client_builder().build().expect("client");
    assert!(
        strict
            .get(format!("{}/healthz", app.url))
            .send()
            .await
            .is_err()
    );

    // ...one told to accept it gets HTTP/2 through ALPN.
    let client = client_builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let response = client
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .expect("https request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(response.text().await.expect("body"), "ok");

    // Plain HTTP on the TLS port does not get a response.
    let plain_url = app.url.replacen("https://", "http://", 1);
    let plain = client_builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("client");
    assert!(
        plain
            .get(format!("{plain_url}/healthz"))
            .send()
            .await
            .is_err()
    );
}
