//! Start-up refusal on a busy data directory, and graceful shutdown.

use crate::support::{
    EXIT_TIMEOUT, SpawnOptions, assert_refused, mercato, run_to_exit, spawn_app, spawn_app_with,
};

#[tokio::test]
async fn sigterm_exits_cleanly_and_the_data_dir_reopens() {
    let mut app = spawn_app();
    let response = app
        .client()
        .get(format!("{}/readyz", app.url))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);

    app.signal("TERM");
    let status = app.wait_exit(EXIT_TIMEOUT);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", app.stderr());
    let stderr = app.stderr();
    assert!(
        stderr.contains("storage closed"),
        "no clean storage shutdown logged:\n{stderr}"
    );

    // The lock was released: a new process opens the same data directory and is ready.
    let reopened = spawn_app_with(SpawnOptions {
        data_dir: Some(app.data_dir.clone()),
        ..SpawnOptions::default()
    });
    let response = reopened
        .client()
        .get(format!("{}/readyz", reopened.url))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "stderr:\n{}", reopened.stderr());
}

#[test]
fn sigint_also_exits_cleanly() {
    let mut app = spawn_app();
    app.signal("INT");
    let status = app.wait_exit(EXIT_TIMEOUT);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", app.stderr());
}

#[tokio::test]
async fn second_process_on_a_data_dir_in_use_is_refused() {
    let first = spawn_app();
    let mut second = mercato();
    second
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(&first.data_dir);
    let finished = run_to_exit(second);
    assert_refused(&finished, "in use");
    assert_eq!(
        finished
            .stderr
            .lines()
            .filter(|line| line.starts_with("error: "))
            .count(),
        1,
        "{}",
        finished.stderr
    );

    // The first process is unaffected.
    let response = first
        .client()
        .get(format!("{}/healthz", first.url))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "stderr:\n{}", first.stderr());
}
