//! The write-ahead log's files: format upgrade, missing and foreign logs, configuration bounds.
//! (Recovery after a process ends without closing needs a child process: `tests/process/`.)

use crate::common::*;
use mercato_storage::tables::{
    FORMAT_VERSION, META, META_FORMAT_VERSION, SHARD_FORMAT_VERSION, SHARD_META,
};
use mercato_storage::*;
use redb::ReadableDatabase;
use std::path::Path;
use std::time::Duration;

fn write_some(s: &Storage<Kv>) {
    for tenant in 1..=8 {
        s.execute_blocking(Kv::Put {
            tenant,
            key: 1,
            value: tenant,
        })
        .unwrap();
    }
}

fn set_version(path: &Path, table: redb::TableDefinition<&str, &[u8]>, key: &str, version: u32) {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(table)
        .unwrap()
        .insert(key, version.to_le_bytes().as_slice())
        .unwrap();
    txn.commit().unwrap();
}

fn version(path: &Path, table: redb::TableDefinition<&str, &[u8]>, key: &str) -> u32 {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let table = txn.open_table(table).unwrap();
    let v = table.get(key).unwrap().unwrap();
    u32::from_le_bytes(v.value().try_into().unwrap())
}

#[test]
fn a_format_1_directory_gets_its_logs_and_is_upgraded_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    write_some(&s);
    s.close().unwrap();
    drop(s);
    // Make it look like a directory written before the log existed.
    let shards = dir.path().join("shards");
    for entry in std::fs::read_dir(&shards).unwrap() {
        let path = entry.unwrap().path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("wal") => std::fs::remove_file(&path).unwrap(),
            Some("redb") => set_version(&path, SHARD_META, SHARD_FORMAT_VERSION, 1),
            _ => {}
        }
    }
    let meta = dir.path().join("meta.redb");
    set_version(&meta, META, META_FORMAT_VERSION, 1);
    let report = verify_data_dir(dir.path()).unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);

    let s = open(dir.path());
    for tenant in 1..=8 {
        assert_eq!(get(&s, tenant, 1), Some(tenant));
    }
    write_some(&s);
    s.close().unwrap();
    drop(s);
    assert_eq!(version(&meta, META, META_FORMAT_VERSION), FORMAT_VERSION);
    for shard in 0..4 {
        let redb = shards.join(format!("{shard:04}.redb"));
        assert_eq!(
            version(&redb, SHARD_META, SHARD_FORMAT_VERSION),
            FORMAT_VERSION
        );
        assert!(shards.join(format!("{shard:04}.wal")).exists());
        assert!(shards.join(format!("{shard:04}-1.wal")).exists());
    }
    let report = verify_data_dir(dir.path()).unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
}

#[test]
fn a_format_2_directory_gets_its_second_log_and_is_upgraded_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    write_some(&s);
    s.close().unwrap();
    drop(s);
    // Make it look like a directory written with one log per shard.
    let shards = dir.path().join("shards");
    for shard in 0..4 {
        std::fs::remove_file(shards.join(format!("{shard:04}-1.wal"))).unwrap();
        set_version(
            &shards.join(format!("{shard:04}.redb")),
            SHARD_META,
            SHARD_FORMAT_VERSION,
            2,
        );
    }
    let meta = dir.path().join("meta.redb");
    set_version(&meta, META, META_FORMAT_VERSION, 2);
    let report = verify_data_dir(dir.path()).unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);

    let s = open(dir.path());
    for tenant in 1..=8 {
        assert_eq!(get(&s, tenant, 1), Some(tenant));
    }
    s.checkpoint().unwrap();
    write_some(&s);
    s.close().unwrap();
    drop(s);
    assert_eq!(version(&meta, META, META_FORMAT_VERSION), FORMAT_VERSION);
    for shard in 0..4 {
        assert!(shards.join(format!("{shard:04}-1.wal")).exists());
    }
    let report = verify_data_dir(dir.path()).unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
}

#[test]
fn a_missing_or_foreign_log_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path()).close().unwrap();
    let shards = dir.path().join("shards");
    let saved = std::fs::read(shards.join("0001.wal")).unwrap();

    std::fs::remove_file(shards.join("0001.wal")).unwrap();
    let err = Storage::<Kv>::open(config(dir.path()))
        .err()
        .expect("a shard without its log must be refused");
    assert!(matches!(err, OpenError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("0001.wal"), "{err}");
    assert!(err.to_string().contains("missing"), "{err}");
    let report = verify_data_dir(dir.path()).unwrap();
    assert!(!report.is_consistent());

    std::fs::copy(shards.join("0000.wal"), shards.join("0001.wal")).unwrap();
    let err = Storage::<Kv>::open(config(dir.path()))
        .err()
        .expect("another shard's log must be refused");
    assert!(matches!(err, OpenError::Foreign { .. }), "{err}");
    assert!(err.to_string().contains("shard 0"), "{err}");

    // A shard's logs swapped: each says which of the two it is.
    std::fs::write(shards.join("0001.wal"), &saved).unwrap();
    let second = std::fs::read(shards.join("0001-1.wal")).unwrap();
    std::fs::write(shards.join("0001-1.wal"), &saved).unwrap();
    let err = Storage::<Kv>::open(config(dir.path()))
        .err()
        .expect("log 0 in log 1's place must be refused");
    assert!(matches!(err, OpenError::Foreign { .. }), "{err}");
    assert!(err.to_string().contains("0001-1.wal"), "{err}");

    std::fs::write(shards.join("0001-1.wal"), &second).unwrap();
    open(dir.path()).close().unwrap();
}

#[test]
fn a_clean_close_leaves_nothing_to_replay_and_the_logs_keep_their_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let log_sizes = |dir: &Path| -> Vec<u64> {
        (0..4)
            .flat_map(|shard| [format!("{shard:04}.wal"), format!("{shard:04}-1.wal")])
            .map(|name| {
                std::fs::metadata(dir.join("shards").join(name))
                    .unwrap()
                    .len()
            })
            .collect()
    };
    let s = open(dir.path());
    write_some(&s);
    s.close().unwrap();
    drop(s);
    let report = verify_data_dir(dir.path()).unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
    assert_eq!(report.wal_records, 0);
    assert_eq!(report.changelog_entries, 8);
    // A log that took records grew by a run of zeros past them, in whole runs.
    let first = log_sizes(dir.path());
    assert!(
        first
            .iter()
            .any(|&len| len >= wal_layout::ZERO_FILL_BYTES_MIN),
        "{first:?}"
    );
    for len in &first {
        assert!(
            *len == wal_layout::FILE_HEADER_LEN || len % wal_layout::ZERO_FILL_BYTES_MIN == 0,
            "{first:?}"
        );
    }

    // The next run overwrites the same blocks from the start of each log: no log grows, and
    // what both runs wrote is there.
    let s = open(dir.path());
    for tenant in 1..=8 {
        s.execute_blocking(Kv::Put {
            tenant,
            key: 2,
            value: tenant * 10,
        })
        .unwrap();
    }
    s.close().unwrap();
    drop(s);
    assert_eq!(log_sizes(dir.path()), first);
    let s = open(dir.path());
    for tenant in 1..=8 {
        assert_eq!(get(&s, tenant, 1), Some(tenant));
        assert_eq!(get(&s, tenant, 2), Some(tenant * 10));
    }
    s.close().unwrap();
    drop(s);
    let report = verify_data_dir(dir.path()).unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
    assert_eq!(report.changelog_entries, 16);
}

#[test]
fn checkpoint_settings_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |f: &dyn Fn(&mut StorageConfig), what: &str| {
        let mut cfg = config(dir.path());
        f(&mut cfg);
        let err = Storage::<Kv>::open(cfg).err().expect("must be refused");
        assert!(err.to_string().contains(what), "{err}");
    };
    refused(
        &|c| c.checkpoint_interval = Duration::ZERO,
        "checkpoint_interval",
    );
    refused(
        &|c| c.checkpoint_interval = CHECKPOINT_INTERVAL_MAX + Duration::from_secs(1),
        "checkpoint_interval",
    );
    refused(&|c| c.checkpoint_wal_bytes = 1024, "checkpoint_wal_bytes");
    refused(
        &|c| c.checkpoint_wal_bytes = CHECKPOINT_WAL_BYTES_MAX + 1,
        "checkpoint_wal_bytes",
    );
    let cfg = StorageConfig::new(dir.path());
    assert_eq!(cfg.checkpoint_interval, CHECKPOINT_INTERVAL_DEFAULT);
    assert_eq!(cfg.checkpoint_wal_bytes, CHECKPOINT_WAL_BYTES_DEFAULT);
}
