//! Start-up refusal on a busy data directory, and graceful shutdown.

use crate::support::{
    EXIT_TIMEOUT, SpawnOptions, assert_refused, mercato, run_to_exit, spawn_app, spawn_app_with,
};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

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

/// Starts a server with a long grace period and opens a connection that has sent part of a
/// request, so that the request is in flight when the shutdown signal arrives.
fn server_with_request_in_flight() -> (crate::support::App, std::net::TcpStream) {
    let app = spawn_app_with(SpawnOptions {
        env: vec![
            ("MERCATO_SHUTDOWN_GRACE_MS".into(), "60000".into()),
            ("MERCATO_HTTP_HEADER_READ_TIMEOUT_MS".into(), "60000".into()),
        ],
        ..SpawnOptions::default()
    });
    let mut stream = std::net::TcpStream::connect(app.addr()).expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow-Client: ")
        .expect("send");
    std::thread::sleep(Duration::from_millis(300));
    (app, stream)
}

#[test]
fn sigterm_lets_a_request_in_flight_finish_then_exits() {
    let (mut app, mut stream) = server_with_request_in_flight();
    app.signal("TERM");
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        app.is_running(),
        "exited without draining; stderr:\n{}",
        app.stderr()
    );

    stream.write_all(b"1\r\n\r\n").expect("finish the request");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
    assert!(response.ends_with("ok"), "{response:?}");

    let status = app.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", app.stderr());
}

#[test]
fn second_signal_cuts_the_drain_short() {
    let (mut app, mut stream) = server_with_request_in_flight();
    app.signal("TERM");
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        app.is_running(),
        "exited without draining; stderr:\n{}",
        app.stderr()
    );

    let started = Instant::now();
    app.signal("INT");
    let status = app.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", app.stderr());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(app.stderr().contains("storage closed"), "{}", app.stderr());
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "the cut request was answered: {:?}",
        String::from_utf8_lossy(&rest)
    );
}
