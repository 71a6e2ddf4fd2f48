//! Write-ahead log recovery: a child process writes and then ends with `std::process::exit`
//! (no close, no destructor, no final checkpoint: only what was synced survives, as after a
//! crash); the parent inspects or damages the log and reopens.

use crate::common::*;
use mercato_storage::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const SCENARIO_ENV: &str = "MERCATO_RECOVERY_SCENARIO";
const DIR_ENV: &str = "MERCATO_RECOVERY_DIR";
/// Commands the sequential scenarios write, one per batch and so one log record each.
const WRITES: u64 = 20;
const TENANT: u64 = 1;
/// Writer threads and writes per thread of the `size_checkpoint` scenario. Enough writes that
/// checkpoints by log size must run several times however large the batches are: a command
/// takes 18-50 bytes of log (one command per record up to whole batches in one record), and a
/// checkpoint runs at `CHECKPOINT_WAL_BYTES_MIN` (64 KiB), so at most ~3,700 commands are in the
/// log at the end, fewer than half of these. (With 8 x 400 writes and large batches, a run could
/// end before its first checkpoint.)
const SIZE_CHECKPOINT_WRITERS: u64 = 8;
const SIZE_CHECKPOINT_WRITES: u64 = 1500;

/// One shard, and no checkpoint while the child lives unless the scenario asks for one.
fn child_config(dir: &Path) -> StorageConfig {
    let mut cfg = config(dir);
    cfg.shards_initial = 1;
    cfg.checkpoint_interval = CHECKPOINT_INTERVAL_MAX;
    cfg
}

fn put(s: &Storage<Kv>, tenant: u64, key: u64) {
    s.execute_blocking(Kv::Put {
        tenant,
        key,
        value: key + 1,
    })
    .expect("write");
}

/// The scenarios, run in the child. Without the environment variables this test does nothing.
#[test]
fn recovery_child() {
    let (Ok(scenario), Ok(dir)) = (std::env::var(SCENARIO_ENV), std::env::var(DIR_ENV)) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let mut cfg = child_config(&dir);
    match scenario.as_str() {
        "idle_checkpoint" => cfg.checkpoint_interval = Duration::from_millis(20),
        "size_checkpoint" => cfg.checkpoint_wal_bytes = CHECKPOINT_WAL_BYTES_MIN,
        _ => {}
    }
    let s: Storage<Kv> = Storage::open(cfg).expect("open storage");
    match scenario.as_str() {
        "write" => (0..WRITES).for_each(|k| put(&s, TENANT, k)),
        "write_then_checkpoint" => {
            (0..WRITES).for_each(|k| put(&s, TENANT, k));
            s.checkpoint().expect("checkpoint");
        }
        "idle_checkpoint" => {
            (0..WRITES).for_each(|k| put(&s, TENANT, k));
            std::thread::sleep(Duration::from_millis(300));
        }
        "size_checkpoint" => std::thread::scope(|scope| {
            for w in 0..SIZE_CHECKPOINT_WRITERS {
                let s = &s;
                scope.spawn(move || {
                    (0..SIZE_CHECKPOINT_WRITES).for_each(|i| put(s, TENANT, w * 10_000 + i))
                });
            }
        }),
        "write_reader_write" => {
            (0..10).for_each(|k| put(&s, TENANT, k));
            // An internal operation commits durably: a checkpoint in the middle.
            s.set_reader(ShardId(0), "follower", 5).expect("set reader");
            (10..WRITES).for_each(|k| put(&s, TENANT, k));
        }
        "move_then_write" => {
            (0..10).for_each(|k| put(&s, TENANT, k));
            put(&s, TENANT + 1, 0);
            let to = s.add_shard().expect("add shard");
            s.move_bucket(TenantId(TENANT).bucket(), to)
                .expect("move bucket");
            (10..WRITES).for_each(|k| put(&s, TENANT, k));
            put(&s, TENANT + 1, 1);
        }
        other => panic!("unknown scenario {other}"),
    }
    std::process::exit(0);
}

/// Runs a scenario in a child process and waits for it to end.
fn run_child(scenario: &str, dir: &Path) {
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "recovery::recovery_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(SCENARIO_ENV, scenario)
        .env(DIR_ENV, dir)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "child {scenario}: {status}");
}

fn wal_file(dir: &Path, shard: u16) -> PathBuf {
    dir.join("shards").join(format!("{shard:04}.wal"))
}

/// Offsets of the log's records (file header 36 bytes; record header 32 bytes starting with
/// `WREC`, with the body length at bytes 20..24), as `docs/storage-format.md` describes them,
/// and where the last one ends. What follows is the run of zeros the log grew by.
fn record_offsets(log: &[u8]) -> (Vec<usize>, usize) {
    let mut out = Vec::new();
    let mut at = 36;
    while at + 32 <= log.len() && &log[at..at + 4] == b"WREC" {
        out.push(at);
        let body = u32::from_le_bytes(log[at + 20..at + 24].try_into().unwrap()) as usize;
        at += 32 + body;
    }
    assert!(at <= log.len(), "the last record is whole");
    assert!(
        log[at..].iter().all(|b| *b == 0),
        "zeros follow the last record"
    );
    (out, at)
}

fn open_one(dir: &Path) -> Storage<Kv> {
    Storage::open(child_config(dir)).expect("open storage")
}

fn assert_written(s: &Storage<Kv>, keys: std::ops::Range<u64>) {
    for k in keys {
        assert_eq!(get(s, TENANT, k), Some(k + 1), "key {k}");
    }
}

#[test]
fn recovery_replays_the_log_after_the_process_ends_without_closing() {
    let _serial = crate::serial();
    let dir = tempfile::tempdir().unwrap();
    run_child("write", dir.path());
    let report = verify_data_dir(dir.path()).unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
    assert_eq!(report.wal_commands_pending, WRITES, "{report:?}");
    assert_eq!(report.wal_records, WRITES, "{report:?}");
    // The redb file alone holds none of them.
    assert_eq!(report.changelog_entries, 0, "{report:?}");

    let s = open_one(dir.path());
    assert_written(&s, 0..WRITES);
    // Replayed with the same LSNs and change-log entries.
    let page = s.changes(ShardId(0), 0, 100).unwrap();
    assert_eq!(page.last_lsn, WRITES);
    let lsns: Vec<_> = page.entries.iter().map(|e| e.lsn).collect();
    assert_eq!(lsns, (1..=WRITES).collect::<Vec<_>>());
    // Recovery checkpointed, so nothing is left to replay; the next writes continue the LSNs
    // and overwrite the log from its start (it keeps its size).
    let log_len = std::fs::metadata(wal_file(dir.path(), 0)).unwrap().len();
    put(&s, TENANT, 100);
    assert_eq!(s.last_lsn(ShardId(0)).unwrap(), WRITES + 1);
    s.close().unwrap();
    drop(s);
    let report = verify_data_dir(dir.path()).unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
    assert_eq!(report.wal_commands_pending, 0);
    assert_eq!(report.changelog_entries, WRITES + 1);
    assert_eq!(
        std::fs::metadata(wal_file(dir.path(), 0)).unwrap().len(),
        log_len
    );
}

#[test]
fn a_torn_last_record_is_discarded_and_open_succeeds() {
    let _serial = crate::serial();
    // Cut inside the last record's header, inside its body, and garbage appended after it.
    for case in ["header", "body", "garbage"] {
        let dir = tempfile::tempdir().unwrap();
        run_child("write", dir.path());
        let path = wal_file(dir.path(), 0);
        let mut log = std::fs::read(&path).unwrap();
        let (offsets, end) = record_offsets(&log);
        let last = *offsets.last().unwrap();
        // The log grew by zeros past its records: a torn append left zeros where its bytes
        // did not arrive.
        assert!(log.len() > end, "zeros follow the records");
        match case {
            "header" => log[last + 10..end].fill(0),
            "body" => log[end - 3..end].fill(0),
            _ => {
                for (i, b) in log[end..end + 100].iter_mut().enumerate() {
                    *b = (i as u8).wrapping_mul(37);
                }
            }
        }
        std::fs::write(&path, &log).unwrap();
        let report = verify_data_dir(dir.path()).unwrap();
        assert!(report.is_consistent(), "{case}: {:?}", report.problems);
        assert!(report.wal_tail_bytes > 0, "{case}: {report:?}");

        let s = open_one(dir.path());
        let survivors = if case == "garbage" {
            WRITES
        } else {
            WRITES - 1
        };
        assert_written(&s, 0..survivors);
        if survivors < WRITES {
            assert_eq!(get(&s, TENANT, WRITES - 1), None, "{case}: the torn write");
        }
        assert_eq!(s.last_lsn(ShardId(0)).unwrap(), survivors, "{case}");
        // The next append overwrites the log from its start: the file keeps its blocks.
        put(&s, TENANT, 1000);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            log.len() as u64,
            "{case}"
        );
        s.close().unwrap();
        drop(s);
        let report = verify_data_dir(dir.path()).unwrap();
        assert!(report.is_consistent(), "{case}: {:?}", report.problems);
        assert_eq!(report.wal_records, 0, "{case}");
        assert_eq!(report.changelog_entries, survivors + 1, "{case}");
    }
}

#[test]
fn a_damaged_record_followed_by_valid_ones_is_refused_with_a_clear_error() {
    let _serial = crate::serial();
    let dir = tempfile::tempdir().unwrap();
    run_child("write", dir.path());
    let path = wal_file(dir.path(), 0);
    let intact = std::fs::read(&path).unwrap();
    let fifth = record_offsets(&intact).0[4];
    let mut damaged = intact.clone();
    damaged[fifth + 32 + 2] ^= 0x40;
    std::fs::write(&path, &damaged).unwrap();

    let err = Storage::<Kv>::open(child_config(dir.path()))
        .err()
        .expect("a damaged record before valid ones must be refused");
    assert!(matches!(err, OpenError::Corrupt { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("0000.wal"), "{message}");
    assert!(message.contains("damaged"), "{message}");
    assert!(message.contains("valid record follows"), "{message}");
    let report = verify_data_dir(dir.path()).unwrap();
    assert!(!report.is_consistent());
    assert!(
        report.problems.iter().any(|p| p.contains("0000.wal")),
        "{:?}",
        report.problems
    );

    // The refusal changed nothing: with the byte repaired, everything is recovered.
    std::fs::write(&path, &intact).unwrap();
    let s = open_one(dir.path());
    assert_written(&s, 0..WRITES);
}

#[test]
fn a_checkpoint_makes_the_redb_file_durable_and_empties_the_log() {
    let _serial = crate::serial();
    // Asked for, on the idle timer, and when the log reaches `checkpoint_wal_bytes`.
    for scenario in [
        "write_then_checkpoint",
        "idle_checkpoint",
        "size_checkpoint",
    ] {
        let dir = tempfile::tempdir().unwrap();
        run_child(scenario, dir.path());
        let report = verify_data_dir(dir.path()).unwrap();
        assert!(report.is_consistent(), "{scenario}: {:?}", report.problems);
        let written = if scenario == "size_checkpoint" {
            SIZE_CHECKPOINT_WRITERS * SIZE_CHECKPOINT_WRITES
        } else {
            WRITES
        };
        if scenario == "size_checkpoint" {
            // Checkpoints ran while the child wrote: most writes are in the redb file.
            assert!(
                report.wal_commands_pending < written / 2,
                "{scenario}: {report:?}"
            );
        } else {
            assert_eq!(report.wal_commands_pending, 0, "{scenario}: {report:?}");
            assert_eq!(report.changelog_entries, written, "{scenario}: {report:?}");
            // The redb file holds everything: an empty log loses nothing.
            let path = wal_file(dir.path(), 0);
            let log = std::fs::read(&path).unwrap();
            std::fs::write(&path, &log[..36]).unwrap();
        }
        let s = open_one(dir.path());
        if scenario == "size_checkpoint" {
            for w in 0..SIZE_CHECKPOINT_WRITERS {
                for i in 0..SIZE_CHECKPOINT_WRITES {
                    let k = w * 10_000 + i;
                    assert_eq!(get(&s, TENANT, k), Some(k + 1), "{scenario}: key {k}");
                }
            }
        } else {
            assert_written(&s, 0..WRITES);
        }
        assert_eq!(s.last_lsn(ShardId(0)).unwrap(), written, "{scenario}");
        s.close().unwrap();
    }
}

#[test]
fn an_internal_operation_checkpoints_and_only_later_commands_are_replayed() {
    let _serial = crate::serial();
    let dir = tempfile::tempdir().unwrap();
    run_child("write_reader_write", dir.path());
    let report = verify_data_dir(dir.path()).unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
    assert_eq!(report.changelog_entries, 10, "{report:?}");
    assert_eq!(report.wal_commands_pending, WRITES - 10, "{report:?}");
    let s = open_one(dir.path());
    assert_written(&s, 0..WRITES);
    assert_eq!(s.readers(ShardId(0)).unwrap().get("follower"), Some(&5));
    let lsns: Vec<_> = s
        .changes(ShardId(0), 0, 100)
        .unwrap()
        .entries
        .iter()
        .map(|e| e.lsn)
        .collect();
    assert_eq!(lsns, (1..=WRITES).collect::<Vec<_>>());
}

#[test]
fn writes_after_a_bucket_move_are_recovered_on_the_new_shard() {
    let _serial = crate::serial();
    let dir = tempfile::tempdir().unwrap();
    run_child("move_then_write", dir.path());
    let report = verify_data_dir(dir.path()).unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
    assert!(report.wal_commands_pending >= WRITES - 10, "{report:?}");
    let s = open_one(dir.path());
    assert_eq!(s.shard_of(TenantId(TENANT)), ShardId(1));
    assert_written(&s, 0..WRITES);
    assert_eq!(get(&s, TENANT + 1, 0), Some(1));
    assert_eq!(get(&s, TENANT + 1, 1), Some(2));
    s.close().unwrap();
    drop(s);
    let report = verify_data_dir(dir.path()).unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
}

/// A checkpoint moves appends to the shard's other log while its sync runs; a crash before the
/// sync leaves the records in both logs, all above the redb file's durable LSN. Made here from a
/// one-log run: records 1..=10 stay in log 0, records 11..=20 move to log 1.
#[test]
fn records_split_over_both_logs_are_replayed_in_lsn_order() {
    let _serial = crate::serial();
    let dir = tempfile::tempdir().unwrap();
    run_child("write", dir.path());
    let zero = wal_file(dir.path(), 0);
    let one = dir.path().join("shards").join("0000-1.wal");
    let log = std::fs::read(&zero).unwrap();
    let split = record_offsets(&log).0[10];
    let mut second = std::fs::read(&one).unwrap();
    assert_eq!(second.len(), 36, "log 1 holds only its header");
    second.extend_from_slice(&log[split..]);
    std::fs::write(&one, &second).unwrap();
    std::fs::write(&zero, &log[..split]).unwrap();
    let report = verify_data_dir(dir.path()).unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
    assert_eq!(report.wal_commands_pending, WRITES, "{report:?}");

    let s = open_one(dir.path());
    assert_written(&s, 0..WRITES);
    let lsns: Vec<_> = s
        .changes(ShardId(0), 0, 100)
        .unwrap()
        .entries
        .iter()
        .map(|e| e.lsn)
        .collect();
    assert_eq!(lsns, (1..=WRITES).collect::<Vec<_>>());
    s.close().unwrap();
    drop(s);
    let report = verify_data_dir(dir.path()).unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
    assert_eq!(report.wal_records, 0);

    // Without the first half, the second cannot be applied: refused, and nothing changed.
    let dir = tempfile::tempdir().unwrap();
    run_child("write", dir.path());
    let zero = wal_file(dir.path(), 0);
    let one = dir.path().join("shards").join("0000-1.wal");
    let log = std::fs::read(&zero).unwrap();
    let split = record_offsets(&log).0[10];
    let mut second = std::fs::read(&one).unwrap();
    second.extend_from_slice(&log[split..]);
    std::fs::write(&one, &second).unwrap();
    std::fs::write(&zero, &log[..36]).unwrap();
    let err = Storage::<Kv>::open(child_config(dir.path()))
        .err()
        .expect("a gap in the records must be refused");
    assert!(err.to_string().contains("records are missing"), "{err}");
    assert!(!verify_data_dir(dir.path()).unwrap().is_consistent());
    assert_eq!(std::fs::read(&one).unwrap(), second);
}

/// A format-2 directory (one log per shard) left with acknowledged writes in its log: the next
/// open adds the second log, replays the first, and upgrades.
#[test]
fn a_format_2_directory_with_records_in_its_log_is_recovered_and_upgraded() {
    use mercato_storage::tables::{
        FORMAT_VERSION, META, META_FORMAT_VERSION, SHARD_FORMAT_VERSION, SHARD_META,
    };
    use redb::ReadableDatabase;
    let _serial = crate::serial();
    let dir = tempfile::tempdir().unwrap();
    run_child("write", dir.path());
    let shards = dir.path().join("shards");
    std::fs::remove_file(shards.join("0000-1.wal")).unwrap();
    let set_version = |path: &Path, table: redb::TableDefinition<&str, &[u8]>, key: &str| {
        let db = redb::Database::open(path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(table)
            .unwrap()
            .insert(key, 2u32.to_le_bytes().as_slice())
            .unwrap();
        txn.commit().unwrap();
    };
    set_version(&shards.join("0000.redb"), SHARD_META, SHARD_FORMAT_VERSION);
    set_version(&dir.path().join("meta.redb"), META, META_FORMAT_VERSION);
    let report = verify_data_dir(dir.path()).unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
    assert_eq!(report.wal_commands_pending, WRITES, "{report:?}");

    let s = open_one(dir.path());
    assert_written(&s, 0..WRITES);
    assert_eq!(s.last_lsn(ShardId(0)).unwrap(), WRITES);
    s.close().unwrap();
    drop(s);
    assert!(shards.join("0000-1.wal").exists());
    let db = redb::Database::open(dir.path().join("meta.redb")).unwrap();
    let txn = db.begin_read().unwrap();
    let version = txn
        .open_table(META)
        .unwrap()
        .get(META_FORMAT_VERSION)
        .unwrap()
        .unwrap()
        .value()
        .to_vec();
    assert_eq!(version, FORMAT_VERSION.to_le_bytes());
}
