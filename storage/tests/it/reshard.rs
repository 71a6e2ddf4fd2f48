use crate::common::*;
use mercato_storage::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[test]
fn moving_buckets_under_concurrent_writes_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let moved: Vec<BucketId> = vec![
        TenantId(1).bucket(),
        TenantId(2).bucket(),
        TenantId(3).bucket(),
    ];
    // Tenants inside the moved buckets, and some elsewhere.
    let mut tenants: Vec<u64> = moved
        .iter()
        .flat_map(|b| tenants_in_bucket(*b, 1, 3))
        .collect();
    tenants.extend([1000, 1001, 1002]);
    tenants.sort();
    tenants.dedup();
    // Data present before the move.
    for &t in &tenants {
        for k in 0..300 {
            s.execute_blocking(Kv::Put {
                tenant: t,
                key: k,
                value: k,
            })
            .unwrap();
        }
    }
    let new_shard = s.add_shard().unwrap();
    assert_eq!(new_shard, ShardId(4));

    let stop = Arc::new(AtomicBool::new(false));
    let acked: BTreeMap<(u64, u64), u64> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..4u64)
            .map(|w| {
                let (s, stop, tenants) = (s.clone(), stop.clone(), tenants.clone());
                scope.spawn(move || {
                    let mut acked = BTreeMap::new();
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) || i < 200 {
                        let tenant = tenants[(i as usize + w as usize) % tenants.len()];
                        let key = 10_000 + w * 1_000_000 + i;
                        if i % 10 == 9 {
                            // Deletes of pre-existing rows must move too.
                            let victim = i % 300;
                            s.execute_blocking(Kv::Delete {
                                tenant,
                                key: victim,
                            })
                            .unwrap();
                            acked.insert((tenant, victim), u64::MAX);
                        } else {
                            s.execute_blocking(Kv::Put {
                                tenant,
                                key,
                                value: i,
                            })
                            .unwrap();
                            acked.insert((tenant, key), i);
                        }
                        i += 1;
                    }
                    acked
                })
            })
            .collect();
        for bucket in &moved {
            let report = s.move_bucket(*bucket, new_shard).unwrap();
            assert!(report.rows_copied > 0, "{report:?}");
            assert!(report.rows_dropped_from_source > 0, "{report:?}");
        }
        stop.store(true, Ordering::Relaxed);
        let mut all = BTreeMap::new();
        for w in writers {
            all.extend(w.join().unwrap());
        }
        all
    });

    for b in &moved {
        assert_eq!(s.shard_of_bucket(*b), new_shard);
    }
    for (&(tenant, key), &value) in &acked {
        let got = get(&s, tenant, key);
        if value == u64::MAX {
            assert_eq!(got, None, "tenant {tenant} key {key} was deleted");
        } else {
            assert_eq!(got, Some(value), "tenant {tenant} key {key} lost");
        }
    }
    // Untouched pre-existing rows moved too.
    for &t in &tenants {
        let rows = all(&s, t);
        assert!(
            rows.iter().any(|(k, _)| *k == 1 || *k == 2),
            "tenant {t} lost old rows"
        );
    }
    s.close().unwrap();
    drop(s);
    // Every row is on the shard its bucket maps to, and the map survived reopen.
    let report = verify_data_dir(dir.path()).unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
    let s = open(dir.path());
    assert_eq!(s.shard_ids().len(), 5);
    for b in &moved {
        assert_eq!(s.shard_of_bucket(*b), new_shard);
    }
    let (&(t, k), &v) = acked.iter().find(|(_, v)| **v != u64::MAX).unwrap();
    assert_eq!(get(&s, t, k), Some(v));
}

#[test]
fn moved_tenants_keep_writing_on_the_new_shard_and_log_there() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let bucket = TenantId(5).bucket();
    let from = s.shard_of_bucket(bucket);
    let to = ShardId((from.0 + 1) % 4);
    s.execute_blocking(Kv::Put {
        tenant: 5,
        key: 1,
        value: 1,
    })
    .unwrap();
    s.move_bucket(bucket, to).unwrap();
    s.execute_blocking(Kv::Put {
        tenant: 5,
        key: 2,
        value: 2,
    })
    .unwrap();
    assert_eq!(all(&s, 5), vec![(1, 1), (2, 2)]);
    let target_log = s.changes(to, 0, 4096).unwrap();
    assert!(
        target_log
            .entries
            .iter()
            .any(|e| matches!(e.kind, ChangeKind::BucketImport { .. }))
    );
    assert!(matches!(
        target_log.entries.last().unwrap().kind,
        ChangeKind::Command { .. }
    ));
    let source_log = s.changes(from, 0, 4096).unwrap();
    assert!(
        source_log
            .entries
            .iter()
            .any(|e| matches!(e.kind, ChangeKind::BucketDrop { .. }))
    );
    // The mover's change-log hold is gone.
    assert!(s.readers(from).unwrap().is_empty());
    // Moving to the shard it is on is a no-op; to a missing shard an error.
    assert_eq!(s.move_bucket(bucket, to).unwrap().rows_copied, 0);
    assert!(s.move_bucket(bucket, ShardId(77)).is_err());
}
