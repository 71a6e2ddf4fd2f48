use crate::common::*;
use mercato_storage::*;

#[test]
fn an_io_error_on_commit_fails_the_callers_and_leaves_the_files_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let injector = FaultInjector::new();
    let mut cfg = config(dir.path());
    cfg.fault_injector = Some(injector.clone());
    let s: Storage<Kv> = Storage::open(cfg).unwrap();
    for k in 0..20 {
        s.execute_blocking(Kv::Put {
            tenant: 1,
            key: k,
            value: k,
        })
        .unwrap();
    }
    assert!(s.check_writable().is_ok());
    injector.fail_writes();
    let err = s
        .execute_blocking(Kv::Put {
            tenant: 1,
            key: 100,
            value: 1,
        })
        .unwrap_err();
    let ExecuteError::Storage(err) = err else {
        panic!("expected a storage error")
    };
    assert!(matches!(err, StorageError::Commit { .. }), "{err}");
    assert!(err.to_string().contains("commit failed"), "{err}");
    assert!(injector.injected() > 0);
    // The shard stays failed (not half-working) and readiness says so.
    let again = s
        .execute_blocking(Kv::Put {
            tenant: 1,
            key: 101,
            value: 1,
        })
        .unwrap_err();
    assert!(
        matches!(
            again,
            ExecuteError::Storage(StorageError::ShardFailed { .. })
        ),
        "{again:?}"
    );
    assert!(s.check_writable().is_err());
    // Reads still work from the last committed state.
    assert_eq!(get(&s, 1, 19), Some(19));
    injector.heal();
    s.close().unwrap();
    drop(s);

    let report = verify_data_dir(dir.path()).unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
    let s = open(dir.path());
    assert_eq!(
        all(&s, 1).len(),
        20,
        "every acknowledged write survived, the failed one is absent"
    );
    assert_eq!(get(&s, 1, 100), None);
    s.execute_blocking(Kv::Put {
        tenant: 1,
        key: 100,
        value: 1,
    })
    .unwrap();
    assert!(s.check_writable().is_ok());
}

/// The disk takes the log record but its `fdatasync` fails: the record is cut back out of the
/// log, the callers get an error, and the write is absent after a restart.
#[test]
fn a_failed_log_sync_fails_the_batch_and_the_record_does_not_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let injector = FaultInjector::new();
    let mut cfg = config(dir.path());
    cfg.shards_initial = 1;
    cfg.checkpoint_interval = CHECKPOINT_INTERVAL_MAX;
    cfg.fault_injector = Some(injector.clone());
    let s: Storage<Kv> = Storage::open(cfg).unwrap();
    for k in 0..20 {
        s.execute_blocking(Kv::Put {
            tenant: 1,
            key: k,
            value: k,
        })
        .unwrap();
    }
    injector.fail_next_syncs(1);
    let err = s
        .execute_blocking(Kv::Put {
            tenant: 1,
            key: 100,
            value: 1,
        })
        .unwrap_err();
    assert!(
        matches!(err, ExecuteError::Storage(StorageError::Commit { .. })),
        "{err:?}"
    );
    assert_eq!(injector.injected(), 1);
    // Not visible, and the shard takes no more writes until restart.
    assert_eq!(get(&s, 1, 100), None);
    assert!(matches!(
        s.execute_blocking(Kv::Put {
            tenant: 1,
            key: 101,
            value: 1,
        }),
        Err(ExecuteError::Storage(StorageError::ShardFailed { .. }))
    ));
    s.close().unwrap();
    drop(s);

    let report = verify_data_dir(dir.path()).unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
    let s = open(dir.path());
    assert_eq!(all(&s, 1).len(), 20);
    assert_eq!(get(&s, 1, 100), None);
    assert_eq!(s.last_lsn(ShardId(0)).unwrap(), 20);
}

/// A checkpoint (the durable redb commit) fails: the acknowledged writes are still in the log,
/// the shard is marked failed, and a restart recovers every one of them.
#[test]
fn a_failed_checkpoint_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let injector = FaultInjector::new();
    let mut cfg = config(dir.path());
    cfg.shards_initial = 1;
    cfg.checkpoint_interval = CHECKPOINT_INTERVAL_MAX;
    cfg.fault_injector = Some(injector.clone());
    let s: Storage<Kv> = Storage::open(cfg).unwrap();
    for k in 0..20 {
        s.execute_blocking(Kv::Put {
            tenant: 1,
            key: k,
            value: k,
        })
        .unwrap();
    }
    injector.fail_writes();
    let err = s.checkpoint().unwrap_err();
    assert!(matches!(err, StorageError::Commit { .. }), "{err}");
    assert!(s.check_writable().is_err());
    assert_eq!(get(&s, 1, 19), Some(19));
    injector.heal();
    s.close().unwrap();
    drop(s);

    let report = verify_data_dir(dir.path()).unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
    let s = open(dir.path());
    assert_eq!(all(&s, 1).len(), 20);
    s.execute_blocking(Kv::Put {
        tenant: 1,
        key: 100,
        value: 1,
    })
    .unwrap();
    assert!(s.check_writable().is_ok());
}
