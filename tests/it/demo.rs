//! End-to-end tests of `mercato demo`, `mercato init` and `mercato loadgen`: the real binary
//! fills a data directory, serves it, and is used over HTTP with the credentials it printed.

use crate::support::{
    EXIT_TIMEOUT, SpawnOptions, assert_refused, client_builder, mercato, run_to_exit,
    spawn_app_with,
};
use mercato_engine::accounts::Principal;
use mercato_engine::platform::NewTenant;
use mercato_engine::{Engine, EngineConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest the demo may take to fill a small catalog and print its announcement (debug build).
const DEMO_START_TIMEOUT: Duration = Duration::from_secs(240);
/// Products of the test demo: small, to keep the debug-build fill short.
const PRODUCTS: u64 = 2_000;
const LISTENING_PREFIX: &str = "mercato listening on ";
const ANNOUNCEMENT_END: &str = "Stop with Ctrl-C.";

/// A running `mercato demo`, killed when dropped.
struct Demo {
    child: Child,
    url: String,
    /// Everything printed on stdout up to the end of the announcement.
    stdout: String,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Demo {
    /// Stops the demo with SIGTERM and waits for a clean exit.
    fn stop(mut self) {
        let status = std::process::Command::new("kill")
            .args(["-s", "TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll") {
                assert!(status.success(), "demo exit {status}: {}", self.stderr());
                return;
            }
            assert!(Instant::now() < deadline, "demo did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr").clone()
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let buffer = Arc::new(Mutex::new(String::new()));
    let writer = buffer.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(read) = pipe.read(&mut chunk) {
            if read == 0 {
                break;
            }
            writer
                .lock()
                .expect("stderr")
                .push_str(&String::from_utf8_lossy(&chunk[..read]));
        }
    });
    buffer
}

/// Starts `mercato demo` on `data_dir` and waits for its announcement.
fn spawn_demo(data_dir: &Path, extra: &[&str]) -> Demo {
    let mut command = mercato();
    command
        .arg("demo")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("start mercato demo");
    let stderr = drain(child.stderr.take().expect("stderr"));
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + DEMO_START_TIMEOUT;
    let mut printed = String::new();
    let mut url = None;
    loop {
        match lines_rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                if url.is_none() {
                    let rest = line.strip_prefix(LISTENING_PREFIX);
                    url = Some(
                        rest.expect("the first line is the listening line")
                            .to_owned(),
                    );
                }
                printed.push_str(&line);
                printed.push('\n');
                if line == ANNOUNCEMENT_END {
                    break;
                }
            }
            Err(_) => {
                if let Some(status) = child.try_wait().expect("poll") {
                    panic!(
                        "demo exited with {status}; stderr:\n{}",
                        stderr.lock().expect("stderr")
                    );
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!(
                        "demo did not announce itself in time; stderr:\n{}",
                        stderr.lock().expect("stderr")
                    );
                }
            }
        }
    }
    Demo {
        child,
        url: url.expect("url"),
        stdout: printed,
        stderr,
    }
}

fn credentials(data_dir: &Path) -> Value {
    let text = std::fs::read_to_string(data_dir.join("demo-credentials.json")).expect("read");
    serde_json::from_str(&text).expect("credentials JSON")
}

async fn get(client: &reqwest::Client, url: &str, token: &str) -> (StatusCode, Value) {
    let response = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("send");
    let status = response.status();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// Items of a list, following `next_cursor` to the end.
async fn count_all(client: &reqwest::Client, base: &str, path: &str, token: &str) -> usize {
    let mut count = 0;
    let mut cursor: Option<String> = None;
    for _ in 0..1_000 {
        let mut url = format!("{base}{path}?limit=500");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = get(client, &url, token).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        count += page["items"].as_array().expect("items").len();
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return count,
        }
    }
    panic!("{path} did not end");
}

fn loadgen(url: &str, credentials: &Path, mix: &str, concurrency: &str) -> Value {
    let mut command = mercato();
    command
        .arg("loadgen")
        .args(["--url", url, "--mix", mix, "--concurrency", concurrency])
        .args(["--duration", "2", "--warmup", "0", "--json"])
        .arg("--credentials")
        .arg(credentials);
    let finished = run_to_exit(command);
    assert!(
        finished.status.success(),
        "loadgen {mix}: {}\n{}",
        finished.status,
        finished.stderr
    );
    serde_json::from_str(&finished.stdout).expect("loadgen JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_fills_serves_every_role_and_is_reused_without_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("demo");
    let demo = spawn_demo(&data_dir, &["--products", &PRODUCTS.to_string()]);
    let client = client_builder().build().expect("client");
    let base = demo.url.clone();
    assert!(
        demo.stdout.contains(&format!("{base}/docs")),
        "{}",
        demo.stdout
    );
    assert!(demo.stdout.contains(&format!("{base}/openapi.json")));

    let file = data_dir.join("demo-credentials.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("stat").permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "credentials readable by the owner only"
        );
    }
    let creds = credentials(&data_dir);
    assert_eq!(creds["tenant"]["slug"], "demo");
    assert_eq!(creds["fill"]["complete"], true);
    assert_eq!(creds["fill"]["summary"]["products"], PRODUCTS);
    assert_eq!(creds["fill"]["summary"]["manufacturers"], 50);
    assert_eq!(creds["fill"]["summary"]["retailers"], 200);
    let users = creds["users"].as_array().expect("users").clone();
    let roles: Vec<&str> = users.iter().map(|u| u["role"].as_str().unwrap()).collect();
    assert_eq!(
        roles,
        [
            "tenant_admin",
            "manufacturer_user",
            "buyer",
            "buyer_approver",
            "reviewer"
        ]
    );

    // Every printed credential signs in, and /v1/me shows its role; the printed tokens work.
    let mut admin_token = String::new();
    for user in &users {
        let (email, password) = (
            user["email"].as_str().unwrap(),
            user["password"].as_str().unwrap(),
        );
        assert!(demo.stdout.contains(email) && demo.stdout.contains(password));
        let printed = user["token"].as_str().expect("token");
        assert!(demo.stdout.contains(printed));
        let response = client
            .post(format!("{base}/v1/auth/login"))
            .json(&json!({"tenant": "demo", "email": email, "password": password}))
            .send()
            .await
            .expect("login");
        assert_eq!(response.status(), StatusCode::OK, "{email}");
        let session: Value = response.json().await.expect("json");
        let token = session["token"].as_str().expect("token").to_owned();
        for bearer in [&token, &printed.to_owned()] {
            let (status, me) = get(&client, &format!("{base}/v1/me"), bearer).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(me["role"]["kind"], user["role"], "{me}");
            assert_eq!(me["id"], user["user_id"]);
        }
        if user["role"] == "tenant_admin" {
            admin_token = token;
        }
        // A wrong password is refused like any other.
        let refused = client
            .post(format!("{base}/v1/auth/login"))
            .json(&json!({"tenant": "demo", "email": email, "password": "not the password"}))
            .send()
            .await
            .expect("login");
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    }
    let buyer = &users[2];
    let manufacturer_user = &users[1];
    assert_eq!(buyer["retailer_id"], users[3]["retailer_id"]);
    assert!(manufacturer_user["manufacturer_id"].as_u64().is_some());

    // The printed platform token administers the platform.
    let platform = creds["platform_token"].as_str().expect("platform token");
    assert!(demo.stdout.contains(platform));
    let (status, tenants) = get(&client, &format!("{base}/v1/admin/tenants"), platform).await;
    assert_eq!(status, StatusCode::OK, "{tenants}");
    assert!(tenants.to_string().contains("\"demo\""), "{tenants}");

    // The catalog holds what the fill reported.
    let products = count_all(&client, &base, "/v1/products", &admin_token).await;
    assert_eq!(products as u64, PRODUCTS);
    assert_eq!(
        count_all(&client, &base, "/v1/manufacturers", &admin_token).await,
        50
    );
    assert_eq!(
        count_all(&client, &base, "/v1/retailers", &admin_token).await,
        200
    );
    // Verification documents: the workers approve the verified manufacturers' documents (they
    // stay verified) and send each pending manufacturer's scan to the review queue.
    let verified = creds["fill"]["summary"]["manufacturers_verified"]
        .as_u64()
        .expect("verified count");
    assert_eq!(creds["fill"]["summary"]["documents"], 100);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (status, cases) = get(
            &client,
            &format!("{base}/v1/review-cases?limit=500"),
            &admin_token,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{cases}");
        let open = cases["items"].as_array().map_or(0, Vec::len) as u64;
        if open == 50 - verified {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{open} review cases, expected {}",
            50 - verified
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (_, makers) = get(
        &client,
        &format!("{base}/v1/manufacturers?limit=500"),
        &admin_token,
    )
    .await;
    let still_verified = makers["items"]
        .as_array()
        .expect("manufacturers")
        .iter()
        .filter(|m| m["verification"] == "verified")
        .count() as u64;
    assert_eq!(still_verified, verified, "{makers}");
    let (status, stock) = get(
        &client,
        &format!("{base}/v1/products/1/stock"),
        &admin_token,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{stock}");
    let orders_before = count_all(&client, &base, "/v1/orders", &admin_token).await;
    assert!(orders_before as u64 >= 100, "{orders_before} orders");

    // The load generator drives the served demo: reads, then orders as the demo buyer.
    let reads = loadgen(&base, &file, "reads", "4");
    assert_eq!(reads["mix"], "reads");
    assert!(reads["total"]["ok"].as_u64().unwrap() > 0, "{reads}");
    for operation in reads["operations"].as_array().expect("operations") {
        assert!(operation["ok"].as_u64().unwrap() > 0, "{operation}");
        assert!(operation["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
    }
    let orders = loadgen(&base, &file, "orders", "2");
    let placed = orders["operations"][0]["ok"].as_u64().unwrap();
    assert_eq!(orders["operations"][0]["operation"], "order_place");
    assert!(placed > 0, "{orders}");
    let orders_after = count_all(&client, &base, "/v1/orders", &admin_token).await;
    assert_eq!(orders_after, orders_before + placed as usize);
    demo.stop();

    // A second demo on the same directory reuses it: same credentials, no new data.
    let again = spawn_demo(&data_dir, &["--products", "3000"]);
    assert!(again.stdout.contains("reused"), "{}", again.stdout);
    assert!(
        again.stderr().contains("Reusing the demo"),
        "{}",
        again.stderr()
    );
    let reused = credentials(&data_dir);
    assert_eq!(reused["fill"], creds["fill"]);
    assert_eq!(reused["platform_token"], creds["platform_token"]);
    for (before, after) in users.iter().zip(reused["users"].as_array().expect("users")) {
        assert_eq!(before["email"], after["email"]);
        assert_eq!(before["password"], after["password"]);
        assert!(again.stdout.contains(before["password"].as_str().unwrap()));
    }
    let base = again.url.clone();
    let admin = reused["users"][0]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(
        count_all(&client, &base, "/v1/products", &admin).await as u64,
        PRODUCTS
    );
    assert_eq!(
        count_all(&client, &base, "/v1/manufacturers", &admin).await,
        50
    );
    assert_eq!(
        count_all(&client, &base, "/v1/orders", &admin).await,
        orders_after
    );
    again.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_prints_the_platform_token_once_and_rotates_it_on_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let init = |extra: &[&str]| {
        let mut command = mercato();
        command
            .arg("init")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(extra);
        run_to_exit(command)
    };
    let token_of = |stdout: &str| {
        stdout
            .trim()
            .strip_prefix("platform token: ")
            .expect("token line")
            .to_owned()
    };
    let first = init(&[]);
    assert!(first.status.success(), "{}", first.stderr);
    let first_token = token_of(&first.stdout);
    assert!(first_token.starts_with("mcp_"));

    let second = init(&[]);
    assert_eq!(second.status.code(), Some(1));
    assert!(
        second.stderr.contains("already initialised"),
        "{}",
        second.stderr
    );
    assert!(
        second.stdout.is_empty(),
        "no token is printed: {}",
        second.stdout
    );

    let rotated = init(&["--rotate-platform-token"]);
    assert!(rotated.status.success(), "{}", rotated.stderr);
    let new_token = token_of(&rotated.stdout);
    assert_ne!(new_token, first_token);

    // Only the rotated token is accepted by the server.
    let app = spawn_app_with(SpawnOptions {
        data_dir: Some(data_dir.clone()),
        ..SpawnOptions::default()
    });
    let client = app.client();
    let url = format!("{}/v1/admin/tenants", app.url);
    let (status, _) = get(&client, &url, &new_token).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = get(&client, &url, &first_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_refuses_a_directory_it_did_not_fill_and_bad_flags() {
    // A directory whose `demo` tenant was made by someone else (no credentials file).
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir: PathBuf = dir.path().join("data");
    {
        let engine = Engine::open(EngineConfig::new(&data_dir)).expect("open");
        engine.init_platform().await.expect("init");
        engine
            .platform_create_tenant(
                &Principal::platform(),
                NewTenant {
                    slug: "demo".into(),
                    name: "Somebody Else".into(),
                    admin_name: "Other".into(),
                    admin_email: "other@example.com".into(),
                    admin_password: "a long enough password".into(),
                },
            )
            .await
            .expect("tenant");
        engine.shutdown().expect("close");
    }
    let mut command = mercato();
    command
        .arg("demo")
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["--listen", "127.0.0.1:0"]);
    let refused = run_to_exit(command);
    // The storage logs its opening on stderr first; the error is the last line.
    assert_eq!(refused.status.code(), Some(1), "{}", refused.stderr);
    let last = refused.stderr.trim_end().lines().last().unwrap_or_default();
    assert!(last.starts_with("error: "), "{}", refused.stderr);
    assert!(last.contains("no demo-credentials.json"), "{last}");
    assert!(
        !refused.stdout.contains("listening on"),
        "{}",
        refused.stdout
    );
    assert!(!data_dir.join("demo-credentials.json").exists());

    let mut command = mercato();
    command
        .arg("demo")
        .arg("--data-dir")
        .arg(dir.path().join("other"))
        .args(["--products", "5"]);
    assert_refused(&run_to_exit(command), "--products must be 10..=10000000");

    for (flag, value, needle) in [
        ("--concurrency", "0", "--concurrency must be 1..=1024"),
        ("--concurrency", "1025", "--concurrency must be 1..=1024"),
        ("--duration", "0", "--duration must be 1..=3600"),
        ("--warmup", "601", "--warmup must be 0..=600"),
    ] {
        let mut command = mercato();
        command
            .arg("loadgen")
            .args(["--url", "http://127.0.0.1:9", "--token", "t", flag, value]);
        let finished = run_to_exit(command);
        assert_eq!(finished.status.code(), Some(1), "{flag} {value}");
        assert!(finished.stderr.contains(needle), "{}", finished.stderr);
    }
    // Without a credential, clap refuses the command line (usage error, status 2).
    let mut command = mercato();
    command.arg("loadgen").args(["--url", "http://127.0.0.1:9"]);
    assert_eq!(run_to_exit(command).status.code(), Some(2));
}
