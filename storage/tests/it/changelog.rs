use crate::common::*;
use mercato_storage::*;

fn tenant_on(s: &Storage<Kv>, shard: ShardId) -> u64 {
    (1..).find(|t| s.shard_of(TenantId(*t)) == shard).unwrap()
}

#[test]
fn every_command_appends_one_entry_with_the_next_lsn() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let shard = ShardId(0);
    let t = tenant_on(&s, shard);
    for k in 0..10 {
        s.execute_blocking(Kv::Put {
            tenant: t,
            key: k,
            value: k,
        })
        .unwrap();
    }
    // A rejected command adds no entry.
    assert!(
        s.execute_blocking(Kv::Insert {
            tenant: t,
            key: 1,
            value: 0
        })
        .is_err()
    );
    s.execute_blocking(Kv::Delete { tenant: t, key: 3 })
        .unwrap();
    let page = s.changes(shard, 0, 100).unwrap();
    assert_eq!(page.last_lsn, 11);
    let lsns: Vec<_> = page.entries.iter().map(|e| e.lsn).collect();
    assert_eq!(lsns, (1..=11).collect::<Vec<_>>());
    let last = page.entries.last().unwrap();
    assert_eq!(last.changes.len(), 1);
    assert!(last.changes[0].deleted);
    assert_eq!(last.changes[0].tenant, TenantId(t));
    let ChangeKind::Command { command, .. } = &last.kind else {
        panic!("not a command")
    };
    assert_eq!(
        envelope::decode::<Kv>(command).unwrap(),
        Kv::Delete { tenant: t, key: 3 }
    );
    // Pages are bounded and continue from where they stopped.
    let p1 = s.changes(shard, 0, 4).unwrap();
    let p2 = s.changes(shard, 4, 4).unwrap();
    assert_eq!(p1.entries.len(), 4);
    assert_eq!(p2.entries.first().unwrap().lsn, 5);
    // The snapshot LSN of a read matches.
    assert_eq!(s.read(TenantId(t)).unwrap().lsn(), 11);
}

#[test]
fn entries_are_trimmed_only_after_every_reader_has_passed_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.changelog_retain_entries_min = 5;
    let s: Storage<Kv> = Storage::open(cfg.clone()).unwrap();
    let shard = ShardId(1);
    let t = tenant_on(&s, shard);
    s.set_reader(shard, "search", 0).unwrap();
    s.set_reader(shard, "webhooks", 0).unwrap();
    for k in 0..40 {
        s.execute_blocking(Kv::Put {
            tenant: t,
            key: k,
            value: k,
        })
        .unwrap();
    }
    // Nobody has read anything: all 40 are kept.
    assert_eq!(s.changes(shard, 0, 100).unwrap().entries.len(), 40);
    s.set_reader(shard, "search", 30).unwrap();
    s.set_reader(shard, "webhooks", 20).unwrap();
    s.execute_blocking(Kv::Put {
        tenant: t,
        key: 100,
        value: 1,
    })
    .unwrap();
    // Trimming happens before the next redb commit, which may come after the answer; a
    // checkpoint is one.
    s.checkpoint().unwrap();
    // Trimmed through the slowest reader (20); 21.. remain.
    let err = s.changes(shard, 0, 100).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::ChangeLogTrimmed {
                first_available: 21,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        s.changes(shard, 20, 100)
            .unwrap()
            .entries
            .first()
            .unwrap()
            .lsn,
        21
    );
    // Removing the slow reader lets the log shrink to the faster one and the retention window.
    s.remove_reader(shard, "webhooks").unwrap();
    s.remove_reader(shard, "search").unwrap();
    s.execute_blocking(Kv::Put {
        tenant: t,
        key: 101,
        value: 1,
    })
    .unwrap();
    s.checkpoint().unwrap();
    // Last is 42; the retention window keeps the 5 entries 38..=42.
    let page = s.changes(shard, 37, 100).unwrap();
    assert_eq!(
        page.entries.iter().map(|e| e.lsn).collect::<Vec<_>>(),
        vec![38, 39, 40, 41, 42]
    );
    assert!(s.changes(shard, 36, 100).is_err());
    // Positions survive reopen.
    s.set_reader(shard, "search", 42).unwrap();
    s.close().unwrap();
    drop(s);
    let s: Storage<Kv> = Storage::open(cfg).unwrap();
    assert_eq!(s.readers(shard).unwrap().get("search"), Some(&42));
    assert_eq!(s.last_lsn(shard).unwrap(), 42);
    s.close().unwrap();
    drop(s);
    let report = verify_data_dir(dir.path()).unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
}

#[test]
fn reader_names_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    assert!(s.set_reader(ShardId(0), "", 0).is_err());
    assert!(s.set_reader(ShardId(0), &"x".repeat(65), 0).is_err());
    assert!(s.set_reader(ShardId(9), "ok", 0).is_err(), "no such shard");
    for i in 0..64 {
        s.set_reader(ShardId(0), &format!("reader-{i}"), 0).unwrap();
    }
    assert!(s.set_reader(ShardId(0), "one-too-many", 0).is_err());
    s.set_reader(ShardId(0), "reader-3", 5).unwrap();
}
