//! Crash test: a child process writes through the write path from several threads and prints
//! every acknowledged write; the parent kills it with SIGKILL at a random moment, reopens the
//! data directory, and checks that every acknowledged write is there and the files are
//! consistent. The child is this same test binary, re-executed with an environment variable.
//!
//! Acknowledged writes live in the shard's write-ahead log until a checkpoint makes the redb
//! file durable. Even cycles run with the default checkpoint interval (1 s), longer than the
//! child lives, so every acknowledged write must come back by replaying the log; odd cycles
//! checkpoint every few milliseconds, so kills also land during and between checkpoints.

use crate::common::*;
use mercato_storage::*;
use rand::Rng;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_DIR_ENV: &str = "MERCATO_CRASH_CHILD_DIR";
const CHILD_CHECKPOINT_MS_ENV: &str = "MERCATO_CRASH_CHECKPOINT_MS";
/// The checkpoint interval of odd cycles.
const SHORT_CHECKPOINT: Duration = Duration::from_millis(3);
const KILL_CYCLES: usize = 20;
const WRITER_THREADS: u64 = 8;

/// Writes until stopped, reporting each acknowledged write as `tenant key value` on stdout.
/// Tenant/key spaces overlap between cycles, so later cycles overwrite earlier values.
fn write_and_report(
    s: &Storage<Kv>,
    cycle: u64,
    writes_max: Option<u64>,
    report: &(dyn Fn(u64, u64, u64) + Sync),
) {
    std::thread::scope(|scope| {
        for w in 0..WRITER_THREADS {
            scope.spawn(move || {
                let mut i = 0u64;
                while writes_max.is_none_or(|max| i < max) {
                    let tenant = 1 + (i + w) % 16;
                    let key = w * 1_000_000 + i % 5_000;
                    let value = cycle * 1_000_000_000 + i;
                    s.execute_blocking(Kv::Put { tenant, key, value })
                        .expect("write");
                    report(tenant, key, value);
                    i += 1;
                }
            });
        }
    });
}

/// Without the environment variable this is an ordinary in-process test of the child's
/// workload; with it, it is the crash child and runs until killed.
#[test]
fn crash_child_workload() {
    if let Ok(dir) = std::env::var(CHILD_DIR_ENV) {
        let cycle: u64 = std::env::var("MERCATO_CRASH_CYCLE")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let mut cfg = config(std::path::Path::new(&dir));
        if let Some(ms) = std::env::var(CHILD_CHECKPOINT_MS_ENV)
            .ok()
            .and_then(|ms| ms.parse().ok())
        {
            cfg.checkpoint_interval = Duration::from_millis(ms);
        }
        let s: Storage<Kv> = Storage::open(cfg).expect("open storage");
        let out = std::sync::Mutex::new(std::io::stdout());
        println!("ready");
        write_and_report(&s, cycle, None, &|t, k, v| {
            use std::io::Write;
            let mut out = out.lock().unwrap();
            let _ = writeln!(out, "ack {t} {k} {v}");
            let _ = out.flush();
        });
        return;
    }
    let _serial = crate::serial();
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let acked = std::sync::Mutex::new(Vec::new());
    write_and_report(&s, 1, Some(50), &|t, k, v| {
        acked.lock().unwrap().push((t, k, v))
    });
    let acked = acked.into_inner().unwrap();
    assert_eq!(acked.len(), 50 * WRITER_THREADS as usize);
    for (t, k, v) in acked {
        assert_eq!(get(&s, t, k), Some(v));
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let _serial = crate::serial();
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::rng();
    // Latest acknowledged value of each (tenant, key) over all cycles.
    let mut latest: std::collections::HashMap<(u64, u64), u64> = std::collections::HashMap::new();
    let mut total_acks = 0usize;
    // Commands found only in the log after a kill, in cycles without and with short checkpoints.
    let mut replayed = [0u64; 2];
    for cycle in 1..=KILL_CYCLES as u64 {
        let short_checkpoints = cycle % 2 == 1;
        let mut child = Command::new(&exe);
        if short_checkpoints {
            child.env(
                CHILD_CHECKPOINT_MS_ENV,
                SHORT_CHECKPOINT.as_millis().to_string(),
            );
        }
        let mut child = child
            .args([
                "--exact",
                "crash::crash_child_workload",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_DIR_ENV, dir.path())
            .env("MERCATO_CRASH_CYCLE", cycle.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait for the child to open the store, then let it write for a random while.
        let started = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if line.trim_end().ends_with("ready") => break,
                Ok(_) => {}
                Err(e) => panic!("child did not start: {e}"),
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "child did not start"
            );
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(20..250)));
        // SIGKILL: no destructor, no flush, no clean close.
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        let mut acks = 0;
        for line in rx.try_iter() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            // A line cut by the kill is not an acknowledgement that reached us whole.
            if parts.len() == 4 && parts[0] == "ack" {
                let (Ok(t), Ok(k), Ok(v)) = (parts[1].parse(), parts[2].parse(), parts[3].parse())
                else {
                    continue;
                };
                latest.insert((t, k), v);
                acks += 1;
            }
        }
        total_acks += acks;

        let report = verify_data_dir(dir.path()).unwrap();
        assert!(
            report.is_consistent(),
            "cycle {cycle}: {:?}",
            report.problems
        );
        replayed[usize::from(short_checkpoints)] += report.wal_commands_pending;
        let s = open(dir.path());
        for (&(t, k), &v) in &latest {
            let got = get(&s, t, k)
                .unwrap_or_else(|| panic!("cycle {cycle}: acknowledged write {t}/{k} lost"));
            // A write acknowledged to the child may have committed after its stdout line was
            // cut off; what is stored must be at least as new as what we saw acknowledged.
            assert!(
                got >= v,
                "cycle {cycle}: {t}/{k} holds {got}, acknowledged {v}"
            );
        }
        s.close().unwrap();
    }
    assert!(
        total_acks > 100,
        "the children acknowledged only {total_acks} writes"
    );
    // The kills did land while acknowledged writes were only in the log.
    assert!(
        replayed[0] > 0,
        "no write was left for the log to replay: {replayed:?}"
    );
    // A clean close leaves nothing to replay.
    let report = verify_data_dir(dir.path()).unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
    assert_eq!(report.wal_commands_pending, 0);
}
