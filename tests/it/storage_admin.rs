//! `mercato storage ...`: the offline administration commands, run as the real binary on data
//! directories created by `mercato serve`.
//!
//! The HTTP API cannot write tenant data yet, so tests that need data write it in-process
//! through the storage engine with a small command type of their own, close the directory, and
//! then run the binary on it; afterwards they open it again and read everything back.

use crate::support::{
    EXIT_TIMEOUT, Finished, SpawnOptions, assert_refused, mercato, run_to_exit, spawn_app_with,
    write_file,
};
use mercato_storage::{
    ApplyError, BUCKET_COUNT, BucketId, Command, Record, ShardId, Storage, StorageConfig, TableDef,
    TenantId, TenantReads, TenantWrite,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

// ---- a tiny command set, so that the shards hold real rows and change-log entries ----

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
struct Note {
    text: String,
}
impl Record for Note {
    const KIND: u16 = 0x7E01;
    const VERSION: u16 = 1;
}

const NOTES: TableDef<u64, Note> = TableDef::new(0x7E01, "test_notes");

#[derive(Serialize, Deserialize, Clone, Debug)]
struct PutNote {
    tenant: TenantId,
    id: u64,
    text: String,
}
impl Record for PutNote {
    const KIND: u16 = 0x7E02;
    const VERSION: u16 = 1;
}
impl Command for PutNote {
    type Output = ();
    type Rejection = String;
    fn tenant(&self) -> TenantId {
        self.tenant
    }
    fn apply(&self, tx: &mut TenantWrite<'_>) -> Result<(), ApplyError<String>> {
        let note = Note {
            text: self.text.clone(),
        };
        Ok(tx.put(&NOTES, &self.id, &note)?)
    }
}

const TENANTS: u64 = 40;
const NOTES_PER_TENANT: u64 = 3;

fn note_text(tenant: u64, id: u64) -> String {
    format!("note {id} of tenant {tenant}")
}

fn open_notes(dir: &Path) -> Storage<PutNote> {
    Storage::open(StorageConfig::new(dir)).expect("open the data directory in-process")
}

/// Writes `NOTES_PER_TENANT` notes for each of tenants `1..=TENANTS`, one durable command each.
fn write_notes(dir: &Path) {
    let storage = open_notes(dir);
    for tenant in 1..=TENANTS {
        for id in 0..NOTES_PER_TENANT {
            storage
                .execute_blocking(PutNote {
                    tenant: TenantId(tenant),
                    id,
                    text: note_text(tenant, id),
                })
                .expect("write a note");
        }
    }
    storage.close().expect("close");
}

/// Reads every note back, asserting each is intact; returns the bucket map.
fn assert_notes_intact(dir: &Path) -> Vec<ShardId> {
    let storage = open_notes(dir);
    for tenant in 1..=TENANTS {
        let read = storage.read(TenantId(tenant)).expect("read handle");
        for id in 0..NOTES_PER_TENANT {
            let note = read.get(&NOTES, &id).expect("read a note");
            assert_eq!(
                note.map(|note| note.text),
                Some(note_text(tenant, id)),
                "tenant {tenant}, note {id}"
            );
        }
    }
    let map = storage.bucket_map();
    storage.close().expect("close");
    map
}

fn data_buckets() -> BTreeSet<BucketId> {
    (1..=TENANTS).map(|t| TenantId(t).bucket()).collect()
}

// ---- running the binary ----

/// A data directory created by `mercato serve` (default configuration: 4 shards), with the
/// server stopped again.
fn served_data_dir() -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().expect("tempdir");
    let data_dir = temp.path().join("data");
    let mut app = spawn_app_with(SpawnOptions {
        data_dir: Some(data_dir.clone()),
        ..SpawnOptions::default()
    });
    app.signal("TERM");
    let status = app.wait_exit(EXIT_TIMEOUT);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", app.stderr());
    (temp, data_dir)
}

/// Longest a rebalance of a fresh directory onto a fifth shard may take. It is 819 bucket
/// moves of about ten durable commits each: seconds on a laptop, but fsync-bound, so far more
/// on a busy CI disk than the shared `EXIT_TIMEOUT`.
const REBALANCE_TIMEOUT: Duration = Duration::from_secs(300);

fn storage_command(dir: &Path, args: &[&str]) -> Finished {
    let mut command = mercato();
    command.arg("storage").args(args).arg("--data-dir").arg(dir);
    run_to_exit(command)
}

/// `storage rebalance`, which must succeed within `REBALANCE_TIMEOUT`; returns its stdout.
fn rebalance_ok(dir: &Path) -> String {
    let mut child = mercato()
        .args(["storage", "rebalance", "--data-dir"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mercato");
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = read_all(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + REBALANCE_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rebalance did not finish within {REBALANCE_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (
        stdout.join().expect("stdout reader"),
        stderr.join().expect("stderr reader"),
    );
    assert_eq!(
        status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

/// Runs a storage command that must succeed; returns its stdout.
fn storage_ok(dir: &Path, args: &[&str]) -> String {
    let finished = storage_command(dir, args);
    assert_eq!(
        finished.status.code(),
        Some(0),
        "mercato storage {args:?}\nstdout:\n{}\nstderr:\n{}",
        finished.stdout,
        finished.stderr
    );
    finished.stdout
}

#[derive(Debug, Deserialize)]
struct Status {
    data_dir: String,
    bucket_count: u32,
    shards: Vec<ShardStatus>,
}

#[derive(Debug, Deserialize)]
struct ShardStatus {
    id: u16,
    buckets: u32,
    last_lsn: u64,
    readers: BTreeMap<String, u64>,
}

fn status(dir: &Path) -> Status {
    let stdout = storage_ok(dir, &["status", "--json"]);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("status --json: {e}:\n{stdout}"))
}

struct Verified {
    rows: u64,
    changelog_entries: u64,
}

/// Runs `storage verify`, which must exit 0 and report no problems.
fn verify_ok(dir: &Path) -> Verified {
    let stdout = storage_ok(dir, &["verify"]);
    assert!(stdout.contains("problems: none"), "{stdout}");
    let number = |label: &str| -> u64 {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(label))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {label:?} line in:\n{stdout}"))
    };
    Verified {
        rows: number("rows:"),
        changelog_entries: number("change-log entries:"),
    }
}

// ---- tests ----

#[test]
fn status_of_a_fresh_data_dir_shows_four_shards_of_1024_buckets() {
    let (_temp, dir) = served_data_dir();

    let status = status(&dir);
    assert_eq!(Path::new(&status.data_dir), dir);
    assert_eq!(status.bucket_count, u32::from(BUCKET_COUNT));
    let ids: Vec<u16> = status.shards.iter().map(|shard| shard.id).collect();
    assert_eq!(ids, [0, 1, 2, 3]);
    for shard in &status.shards {
        assert_eq!(shard.buckets, 1024, "{shard:?}");
        assert_eq!(shard.last_lsn, 0, "nothing was written: {shard:?}");
        assert!(shard.readers.is_empty(), "{shard:?}");
    }

    let table = storage_ok(&dir, &["status"]);
    assert!(
        table.contains(&format!("data directory: {}", dir.display())),
        "{table}"
    );
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip_while(|line| !line.starts_with("shard "))
        .skip(1)
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        (0..4)
            .map(|shard| vec![format!("000{shard}"), "1024".into(), "0".into(), "-".into()])
            .collect::<Vec<Vec<String>>>()
    );

    // The data directory comes from the same layered configuration as `serve`.
    let mut from_env = mercato();
    from_env
        .args(["storage", "status", "--json"])
        .env("MERCATO_DATA_DIR", &dir);
    let finished = run_to_exit(from_env);
    assert_eq!(finished.status.code(), Some(0), "{}", finished.stderr);
    assert!(
        finished.stdout.contains("\"buckets\": 1024"),
        "{}",
        finished.stdout
    );
    let config_dir = tempfile::tempdir().expect("tempdir");
    let file = write_file(
        config_dir.path(),
        "mercato.toml",
        &format!("data_dir = {:?}\n", dir.display().to_string()),
    );
    let mut from_file = mercato();
    from_file.args(["storage", "verify", "--config"]).arg(&file);
    let finished = run_to_exit(from_file);
    assert_eq!(finished.status.code(), Some(0), "{}", finished.stderr);
    assert!(finished.stdout.contains("shards: 4"), "{}", finished.stdout);
}

#[test]
fn storage_commands_never_create_a_data_directory() {
    let temp = tempfile::tempdir().expect("tempdir");
    let missing = temp.path().join("typo");
    for args in [&["status"][..], &["verify"], &["add-shard"], &["rebalance"]] {
        let finished = storage_command(&missing, args);
        assert_refused(&finished, "is not a Mercato data directory");
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
    }
}

#[test]
fn add_shard_then_rebalance_gives_five_balanced_shards_and_keeps_every_row() {
    let (_temp, dir) = served_data_dir();
    write_notes(&dir);
    let before = status(&dir);
    let lsn_before: BTreeMap<u16, u64> = before
        .shards
        .iter()
        .map(|shard| (shard.id, shard.last_lsn))
        .collect();
    let commands = TENANTS * NOTES_PER_TENANT;
    assert_eq!(lsn_before.values().sum::<u64>(), commands, "{before:?}");
    let verified_before = verify_ok(&dir);
    assert_eq!(verified_before.rows, commands);
    assert_eq!(verified_before.changelog_entries, commands);
    let map_before = assert_notes_intact(&dir);

    let added = storage_ok(&dir, &["add-shard"]);
    assert!(added.contains("added shards: 0004"), "{added}");
    let with_new_shard = status(&dir);
    assert_eq!(with_new_shard.shards.len(), 5);
    assert_eq!(with_new_shard.shards[4].buckets, 0);
    assert_eq!(with_new_shard.shards[4].last_lsn, 0);

    // A dry run prints the plan and moves nothing.
    let plan = storage_ok(&dir, &["rebalance", "--dry-run"]);
    assert!(plan.contains("plan: 819 bucket moves"), "{plan}");
    assert_eq!(
        plan.lines()
            .filter(|line| line.starts_with("move bucket "))
            .count(),
        819,
        "{plan}"
    );
    assert_eq!(
        status(&dir).shards[4].buckets,
        0,
        "the dry run moved buckets"
    );

    let summary = rebalance_ok(&dir);
    assert!(
        summary.contains("rebalanced: 819 buckets moved"),
        "{summary}"
    );

    let after = status(&dir);
    assert_eq!(after.shards.len(), 5);
    for shard in &after.shards {
        assert!(
            shard.buckets == 819 || shard.buckets == 820,
            "unbalanced: {after:?}"
        );
        assert!(
            shard.readers.is_empty(),
            "a bucket move left its reader behind: {shard:?}"
        );
    }
    assert_eq!(
        after.shards.iter().map(|shard| shard.buckets).sum::<u32>(),
        u32::from(BUCKET_COUNT)
    );

    // Every row is still there, in the shard its bucket now maps to.
    let map_after = assert_notes_intact(&dir);
    let moved_with_data: Vec<(ShardId, ShardId)> = data_buckets()
        .into_iter()
        .map(|bucket| usize::from(bucket.0))
        .filter(|&bucket| map_before[bucket] != map_after[bucket])
        .map(|bucket| (map_before[bucket], map_after[bucket]))
        .collect();
    assert!(
        !moved_with_data.is_empty(),
        "no bucket holding data moved: the test proves nothing"
    );
    let moved_count = map_before
        .iter()
        .zip(&map_after)
        .filter(|(before, after)| before != after)
        .count();
    assert_eq!(
        moved_count, 819,
        "the fewest moves: 4 x 1024 -> 5 x 819..820"
    );

    // Each move of a bucket with rows appends one import entry on the target and one drop entry
    // on the source (all of a test bucket's rows fit one chunk); moves of empty buckets append
    // nothing. So the LSN counters account exactly for the moves.
    for shard in &after.shards {
        let id = ShardId(shard.id);
        let imports = moved_with_data.iter().filter(|(_, to)| *to == id).count() as u64;
        let drops = moved_with_data
            .iter()
            .filter(|(from, _)| *from == id)
            .count() as u64;
        let before = lsn_before.get(&shard.id).copied().unwrap_or(0);
        assert_eq!(
            shard.last_lsn,
            before + imports + drops,
            "shard {id}: {before} before, {imports} imports, {drops} drops"
        );
    }

    let verified_after = verify_ok(&dir);
    assert_eq!(verified_after.rows, verified_before.rows);
    assert_eq!(
        verified_after.changelog_entries,
        commands + 2 * moved_with_data.len() as u64
    );

    // Balanced already: a second rebalance moves nothing.
    let again = storage_ok(&dir, &["rebalance"]);
    assert!(again.contains("already balanced: nothing moved"), "{again}");
}

#[test]
fn move_bucket_moves_a_tenants_rows_and_reports_them() {
    let (_temp, dir) = served_data_dir();
    write_notes(&dir);
    let bucket = TenantId(1).bucket();
    let tenants_in_bucket = (1..=TENANTS)
        .filter(|t| TenantId(*t).bucket() == bucket)
        .count() as u64;
    let rows = tenants_in_bucket * NOTES_PER_TENANT;
    let from = assert_notes_intact(&dir)[usize::from(bucket.0)];
    let to = ShardId((from.0 + 1) % 4);

    let report = storage_ok(
        &dir,
        &[
            "move-bucket",
            "--bucket",
            &bucket.0.to_string(),
            "--to",
            &to.0.to_string(),
        ],
    );
    assert!(
        report.contains(&format!(
            "moved bucket {bucket} from shard {from} to shard {to}"
        )),
        "{report}"
    );
    assert!(
        report.contains(&format!("rows copied: {rows}\n")),
        "{report}"
    );
    assert!(
        report.contains(&format!("rows dropped from source: {rows}\n")),
        "{report}"
    );
    assert!(report.contains("switch pause: "), "{report}");

    assert_eq!(assert_notes_intact(&dir)[usize::from(bucket.0)], to);
    let buckets: Vec<u32> = status(&dir).shards.iter().map(|s| s.buckets).collect();
    let mut expected = vec![1024; 4];
    expected[usize::from(from.0)] -= 1;
    expected[usize::from(to.0)] += 1;
    assert_eq!(buckets, expected);
    verify_ok(&dir);
}

#[test]
fn out_of_range_arguments_are_refused_naming_the_flag() {
    let (_temp, dir) = served_data_dir();
    for (args, flag) in [
        (
            &["move-bucket", "--bucket", "4096", "--to", "1"][..],
            "--bucket",
        ),
        (
            &["move-bucket", "--bucket", "70000", "--to", "1"],
            "--bucket",
        ),
        (&["move-bucket", "--bucket", "7", "--to", "4"], "--to"),
        (&["add-shard", "--count", "0"], "--count"),
        (&["add-shard", "--count", "65"], "--count"),
    ] {
        let finished = storage_command(&dir, args);
        assert_refused(&finished, flag);
    }
    // Nothing changed.
    let status = status(&dir);
    assert_eq!(status.shards.len(), 4);
    assert!(status.shards.iter().all(|shard| shard.buckets == 1024));
}

#[tokio::test]
async fn storage_commands_are_refused_while_serve_has_the_data_dir() {
    let (_temp, dir) = served_data_dir();
    let mut app = spawn_app_with(SpawnOptions {
        data_dir: Some(dir.clone()),
        ..SpawnOptions::default()
    });
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["verify"],
        &["add-shard"],
        &["move-bucket", "--bucket", "7", "--to", "1"],
        &["rebalance"],
        &["rebalance", "--dry-run"],
    ] {
        let finished = storage_command(&dir, args);
        assert_refused(&finished, "is in use by another process");
        assert!(finished.stdout.is_empty(), "{args:?}: {}", finished.stdout);
    }

    // The server is unaffected and still ready (a durable write through every shard).
    let response = app
        .client()
        .get(format!("{}/readyz", app.url))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "stderr:\n{}", app.stderr());
    app.signal("TERM");
    assert_eq!(app.wait_exit(EXIT_TIMEOUT).code(), Some(0));

    // None of the refused commands changed anything.
    let status = status(&dir);
    assert_eq!(status.shards.len(), 4);
    assert!(status.shards.iter().all(|shard| shard.buckets == 1024));
}

#[test]
fn verify_exits_2_and_names_the_problem_when_a_shard_holds_a_foreign_bucket() {
    let (_temp, dir) = served_data_dir();
    write_notes(&dir);
    verify_ok(&dir);

    // Plant a copy of one of tenant 1's rows in a shard its bucket is not mapped to: what a
    // bucket move that lost track of its copy would leave behind.
    let bucket = TenantId(1).bucket();
    let owner = assert_notes_intact(&dir)[usize::from(bucket.0)];
    let stranger = ShardId((owner.0 + 1) % 4);
    let mut key = Vec::new();
    key.extend_from_slice(&bucket.0.to_be_bytes());
    key.extend_from_slice(&1u64.to_be_bytes());
    key.extend_from_slice(&NOTES.id.to_be_bytes());
    key.extend_from_slice(&0u64.to_be_bytes());
    let value = mercato_storage::envelope::encode(&Note {
        text: "stray".into(),
    });
    let path = dir.join("shards").join(format!("{stranger}.redb"));
    let db = redb::Database::open(&path).expect("open shard file");
    let txn = db.begin_write().expect("write txn");
    txn.open_table(mercato_storage::tables::DATA)
        .expect("data table")
        .insert(key.as_slice(), value.as_slice())
        .expect("insert");
    txn.commit().expect("commit");
    drop(db);

    let finished = storage_command(&dir, &["verify"]);
    assert_eq!(
        finished.status.code(),
        Some(2),
        "stdout:\n{}\nstderr:\n{}",
        finished.stdout,
        finished.stderr
    );
    assert!(
        finished.stdout.contains("problems: 1\n"),
        "{}",
        finished.stdout
    );
    assert!(
        finished.stdout.contains(&format!(
            "shard {stranger}: holds a row of bucket {bucket} which is mapped elsewhere"
        )),
        "{}",
        finished.stdout
    );
    assert!(finished.stderr.is_empty(), "{}", finished.stderr);
}
