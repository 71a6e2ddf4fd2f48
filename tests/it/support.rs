//! Starting the real binary and talking to it.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest a server may take to print its "listening on" line.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a process may take to exit when it is expected to.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

const LISTENING_PREFIX: &str = "mercato listening on ";

/// A command running the `mercato` binary with a clean environment: inherited `MERCATO_*`
/// variables and `RUST_LOG` are removed so only what a test sets applies.
pub fn mercato() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mercato"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("MERCATO_") {
            command.env_remove(&name);
        }
    }
    command.env_remove("RUST_LOG");
    command
}

/// How to start a server.
#[derive(Default)]
pub struct SpawnOptions {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Use this data directory instead of a fresh temporary one.
    pub data_dir: Option<PathBuf>,
}

/// A running server, killed when dropped.
pub struct App {
    child: Child,
    /// `http://127.0.0.1:PORT` or `https://...`, as printed by the server.
    pub url: String,
    pub data_dir: PathBuf,
    stderr: Arc<Mutex<String>>,
    _temp_dir: Option<tempfile::TempDir>,
}

pub fn spawn_app() -> App {
    spawn_app_with(SpawnOptions::default())
}

pub fn spawn_app_with(options: SpawnOptions) -> App {
    let (temp_dir, data_dir) = match options.data_dir {
        Some(dir) => (None, dir),
        None => {
            let temp = tempfile::tempdir().expect("create temp dir");
            let dir = temp.path().join("data");
            (Some(temp), dir)
        }
    };
    let mut command = mercato();
    command
        .arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(&data_dir)
        .args(&options.args)
        .envs(options.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("start mercato");
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + START_TIMEOUT;
    let url = loop {
        match lines_rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => match line.strip_prefix(LISTENING_PREFIX) {
                Some(url) => break url.trim().to_owned(),
                None => panic!("unexpected stdout line before the listening line: {line:?}"),
            },
            Err(mpsc::RecvTimeoutError::Timeout) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                if let Some(status) = child.try_wait().expect("poll child") {
                    panic!(
                        "mercato exited with {status} before listening; stderr:\n{}",
                        read_shared(&stderr)
                    );
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!(
                        "mercato did not print its listening line in time; stderr:\n{}",
                        read_shared(&stderr)
                    );
                }
            }
        }
    };
    App {
        child,
        url,
        data_dir,
        stderr,
        _temp_dir: temp_dir,
    }
}

impl App {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The `host:port` the server listens on.
    pub fn addr(&self) -> String {
        self.url
            .split("://")
            .nth(1)
            .expect("url has a scheme")
            .to_owned()
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        read_shared(&self.stderr)
    }

    /// Sends `signal` (a `kill -s` name such as "TERM") to the server.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg("-s")
            .arg(signal)
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {signal} failed");
    }

    /// Waits for the server to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        wait_with_timeout(&mut self.child, timeout).unwrap_or_else(|| {
            panic!(
                "mercato did not exit within {timeout:?}; stderr:\n{}",
                self.stderr()
            )
        })
    }

    pub fn client(&self) -> reqwest::Client {
        client_builder().build().expect("client")
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads a pipe to the end on a thread, so the child never blocks writing logs.
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
                .expect("stderr buffer")
                .push_str(&String::from_utf8_lossy(&chunk[..read]));
        }
    });
    buffer
}

fn read_shared(buffer: &Arc<Mutex<String>>) -> String {
    buffer.lock().expect("stderr buffer").clone()
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("poll child") {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The outcome of a command run to completion.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` and waits (bounded) for it to exit, capturing its output.
pub fn run_to_exit(mut command: Command) -> Finished {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("start mercato");
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let status = wait_with_timeout(&mut child, EXIT_TIMEOUT).unwrap_or_else(|| {
        panic!(
            "mercato did not exit within {EXIT_TIMEOUT:?}; stderr:\n{}",
            read_shared(&stderr)
        )
    });
    // The drain threads finish once the pipes close; give them a moment after exit.
    let settle = Instant::now() + Duration::from_secs(5);
    let mut previous = (String::new(), String::new());
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let current = (read_shared(&stdout), read_shared(&stderr));
        if current == previous || Instant::now() > settle {
            return Finished {
                status,
                stdout: current.0,
                stderr: current.1,
            };
        }
        previous = current;
    }
}

/// Asserts that a refused start reports one clean error line naming `needle`, exits 1, and
/// does not panic.
pub fn assert_refused(finished: &Finished, needle: &str) {
    assert_eq!(
        finished.status.code(),
        Some(1),
        "exit status; stderr:\n{}",
        finished.stderr
    );
    assert!(
        finished.stderr.contains(needle),
        "stderr does not mention {needle:?}:\n{}",
        finished.stderr
    );
    assert!(
        finished.stderr.starts_with("error: "),
        "stderr:\n{}",
        finished.stderr
    );
    assert!(
        !finished.stderr.contains("panicked") && !finished.stderr.contains("backtrace"),
        "stderr:\n{}",
        finished.stderr
    );
    assert!(
        !finished.stdout.contains("listening on"),
        "a refused start must not listen:\n{}",
        finished.stdout
    );
}

pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

/// An HTTP client builder with a request timeout. reqwest is built without a bundled crypto
/// provider, so this installs rustls' ring provider first (also for plain HTTP clients).
pub fn client_builder() -> reqwest::ClientBuilder {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(Duration::from_secs(30))
}
