use crate::common::*;
use mercato_storage::*;

#[test]
fn put_get_scan_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(dir.path());
        assert_eq!(s.shard_ids().len(), 4);
        for k in 0..50 {
            s.execute_blocking(Kv::Put {
                tenant: 1,
                key: k,
                value: k * 10,
            })
            .unwrap();
        }
        s.execute_blocking(Kv::Put {
            tenant: 2,
            key: 3,
            value: 99,
        })
        .unwrap();
        s.execute_blocking(Kv::Delete { tenant: 1, key: 7 })
            .unwrap();
        assert_eq!(get(&s, 1, 5), Some(50));
        assert_eq!(get(&s, 1, 7), None);
        let rows = all(&s, 1);
        assert_eq!(rows.len(), 49);
        assert!(rows.windows(2).all(|w| w[0].0 < w[1].0), "scan is ordered");
        // Tenant 2 sees only its own row even when it shares the shard with tenant 1.
        assert_eq!(all(&s, 2), vec![(3, 99)]);
        s.close().unwrap();
    }
    let s = open(dir.path());
    assert_eq!(get(&s, 1, 49), Some(490));
    assert_eq!(get(&s, 2, 3), Some(99));
    assert_eq!(all(&s, 1).len(), 49);
}

#[test]
fn a_rejected_command_fails_alone_and_leaves_no_partial_write() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.execute_blocking(Kv::Put {
        tenant: 1,
        key: 1,
        value: 5,
    })
    .unwrap();
    // Many concurrent commands so that they share batches; every other one is rejected.
    std::thread::scope(|scope| {
        for t in 0..8u64 {
            let s = s.clone();
            scope.spawn(move || {
                for i in 0..50u64 {
                    let key = 1000 + t * 100 + i;
                    if i % 2 == 0 {
                        s.execute_blocking(Kv::Insert {
                            tenant: 1,
                            key,
                            value: i,
                        })
                        .unwrap();
                    } else {
                        let r = s.execute_blocking(Kv::Transfer {
                            tenant: 1,
                            from: 1,
                            to: key,
                            amount: 1_000_000,
                        });
                        assert!(
                            matches!(r, Err(ExecuteError::Rejected(KvRejection::Insufficient))),
                            "{r:?}"
                        );
                    }
                }
            });
        }
    });
    // Accepted inserts are all there; the rejected transfers wrote nothing (not even the
    // credit they wrote before checking).
    let rows = all(&s, 1);
    assert_eq!(rows.len(), 1 + 8 * 25);
    assert_eq!(get(&s, 1, 1), Some(5));
    assert!(
        rows.iter()
            .all(|(k, _)| *k == 1 || (k - 1000) % 100 % 2 == 0)
    );
    let r = s.execute_blocking(Kv::Insert {
        tenant: 1,
        key: 1,
        value: 0,
    });
    assert!(matches!(
        r,
        Err(ExecuteError::Rejected(KvRejection::Exists))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_execute_is_durable_and_ordered() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let mut handles = Vec::new();
    for i in 0..64u64 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            s.execute(Kv::Put {
                tenant: 9,
                key: i,
                value: i,
            })
            .await
        }));
    }
    for h in handles {
        h.await.unwrap().unwrap();
    }
    assert_eq!(all(&s, 9).len(), 64);
}

#[test]
fn a_full_queue_refuses_instead_of_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.pending_commands_max = 1;
    cfg.batch_count_max = 1;
    let s: Storage<Kv> = Storage::open(cfg).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // 200 tasks submit before any of them waits: with room for one pending command, some must
    // be refused.
    let results: Vec<_> = rt.block_on(async {
        let tasks: Vec<_> = (0..200u64)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move {
                    s.execute(Kv::Put {
                        tenant: 1,
                        key: i,
                        value: i,
                    })
                    .await
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let refused = results
        .iter()
        .filter(|r| {
            matches!(
                r,
                Err(ExecuteError::Storage(StorageError::Overloaded { .. }))
            )
        })
        .count();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert!(refused > 0, "no command was refused");
    assert_eq!(ok + refused, 200);
    assert_eq!(all(&s, 1).len(), ok);
}

#[test]
fn a_second_open_of_a_data_dir_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _s = open(dir.path());
    let err = Storage::<Kv>::open(config(dir.path()))
        .err()
        .expect("second open must fail");
    assert!(matches!(err, OpenError::Locked { .. }), "{err}");
    assert!(
        err.to_string().contains("in use by another process"),
        "{err}"
    );
}

#[test]
fn corrupted_and_foreign_files_are_refused_with_a_clear_message() {
    // Garbage in place of a shard file.
    let dir = tempfile::tempdir().unwrap();
    open(dir.path()).close().unwrap();
    std::fs::write(dir.path().join("shards/0002.redb"), vec![0x42u8; 8192]).unwrap();
    let err = Storage::<Kv>::open(config(dir.path()))
        .err()
        .expect("garbage shard must fail");
    assert!(matches!(err, OpenError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("0002.redb"), "{err}");

    // A shard file from another data directory.
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    open(a.path()).close().unwrap();
    open(b.path()).close().unwrap();
    std::fs::copy(
        a.path().join("shards/0001.redb"),
        b.path().join("shards/0001.redb"),
    )
    .unwrap();
    let err = Storage::<Kv>::open(config(b.path()))
        .err()
        .expect("foreign shard must fail");
    assert!(matches!(err, OpenError::Foreign { .. }), "{err}");

    // Garbage meta.redb.
    let c = tempfile::tempdir().unwrap();
    std::fs::write(
        c.path().join("meta.redb"),
        b"not a database at all, just some text that is long enough",
    )
    .unwrap();
    let err = Storage::<Kv>::open(config(c.path()))
        .err()
        .expect("garbage meta must fail");
    assert!(matches!(err, OpenError::Corrupt { .. }), "{err}");
}

#[test]
fn invalid_configuration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.shards_initial = 0;
    let err = Storage::<Kv>::open(cfg)
        .err()
        .expect("zero shards must fail");
    assert!(err.to_string().contains("shards_initial"), "{err}");
}

#[test]
fn tenants_spread_over_shards_and_stay_in_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let mut used = std::collections::BTreeSet::new();
    for t in 1..=64u64 {
        s.execute_blocking(Kv::Put {
            tenant: t,
            key: 1,
            value: t,
        })
        .unwrap();
        s.execute_blocking(Kv::Put {
            tenant: t,
            key: 2,
            value: t,
        })
        .unwrap();
        used.insert(s.shard_of(TenantId(t)));
    }
    assert_eq!(used.len(), 4, "64 tenants should land on all 4 shards");
    // Each tenant's two commands are in its one shard's change log.
    for shard in s.shard_ids() {
        let page = s.changes(shard, 0, 4096).unwrap();
        for e in &page.entries {
            let ChangeKind::Command { tenant, .. } = &e.kind else {
                panic!("unexpected kind")
            };
            assert_eq!(s.shard_of(*tenant), shard);
        }
    }
    s.close().unwrap();
    drop(s);
    let report = verify_data_dir(dir.path()).unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
    assert_eq!(report.rows, 128);
}

#[test]
fn blob_references_are_counted_per_tenant_and_in_shard_totals() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let h = [7u8; 32];
    s.execute_blocking(Kv::BlobRef {
        tenant: 1,
        hash: h,
        add: true,
    })
    .unwrap();
    s.execute_blocking(Kv::BlobRef {
        tenant: 1,
        hash: h,
        add: true,
    })
    .unwrap();
    s.execute_blocking(Kv::BlobRef {
        tenant: 1,
        hash: h,
        add: false,
    })
    .unwrap();
    s.close().unwrap();
    drop(s);
    let report = verify_data_dir(dir.path()).unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
    assert_eq!(report.rows, 1, "one reference row remains");
}

#[test]
fn a_panicking_command_fails_alone_and_the_writer_survives() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let s = s.clone();
            scope.spawn(move || {
                for i in 0..20u64 {
                    if i == 10 {
                        let r = s.execute_blocking(Kv::Panic { tenant: 1 });
                        assert!(
                            matches!(
                                r,
                                Err(ExecuteError::Storage(StorageError::CommandPanicked { .. }))
                            ),
                            "{r:?}"
                        );
                    } else {
                        s.execute_blocking(Kv::Put {
                            tenant: 1,
                            key: t * 100 + i,
                            value: i,
                        })
                        .unwrap();
                    }
                }
            });
        }
    });
    assert_eq!(
        all(&s, 1).len(),
        4 * 19,
        "the panicking commands' writes were dropped"
    );
    assert_eq!(get(&s, 1, u64::MAX), None);
    s.check_writable().unwrap();
}

/// Pages of a descending scan, each strictly before the last key of the previous page.
fn all_desc(s: &Storage<Kv>, tenant: u64, page: usize) -> Vec<(u64, u64)> {
    let read = s.read(TenantId(tenant)).unwrap();
    let mut out = Vec::new();
    let mut before = None;
    loop {
        let rows = read
            .scan_desc(&COUNTERS, &(), before.as_ref(), page)
            .unwrap();
        let Some(last) = rows.last() else { return out };
        assert!(rows.len() <= page);
        before = Some(last.0);
        out.extend(rows.into_iter().map(|(k, v)| (k, v.0)));
    }
}

#[test]
fn descending_scans_mirror_ascending_ones_and_stay_in_their_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    // Tenants 1 and 2 share a shard; tenant 3 holds rows on both sides of tenant 1's keys.
    for (tenant, keys) in [(2u64, 0..20u64), (3, 0..5)] {
        for key in keys {
            s.execute_blocking(Kv::Put {
                tenant,
                key,
                value: 1,
            })
            .unwrap();
        }
    }
    assert!(all_desc(&s, 1, 5).is_empty());
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for round in 0..200u64 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let key = rng % 60;
        if rng.is_multiple_of(4) {
            s.execute_blocking(Kv::Delete { tenant: 1, key }).unwrap();
        } else {
            s.execute_blocking(Kv::Put {
                tenant: 1,
                key,
                value: round,
            })
            .unwrap();
        }
        // Read right after the write: recent writes may still be in the overlay of
        // acknowledged batches, which the descending merge must order like the ascending one.
        if round.is_multiple_of(10) || round > 190 {
            let mut ascending = all(&s, 1);
            ascending.reverse();
            for page in [1, 3, 7, 1000] {
                assert_eq!(
                    all_desc(&s, 1, page),
                    ascending,
                    "round {round}, page {page}"
                );
            }
        }
    }
    assert!(!all(&s, 1).is_empty());
    assert_eq!(all_desc(&s, 2, 4).len(), 20);
    assert_eq!(
        all_desc(&s, 3, 2),
        vec![(4, 1), (3, 1), (2, 1), (1, 1), (0, 1)]
    );
}

#[test]
fn descending_scans_inside_a_command_merge_its_own_writes() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    // Committed rows on both sides of, and between, the rows the command writes and deletes.
    for key in (0..100).step_by(3) {
        s.execute_blocking(Kv::Put {
            tenant: 1,
            key,
            value: 1,
        })
        .unwrap();
    }
    for (from, to, delete_every, page) in [(10, 40, 2, 4), (0, 100, 5, 7), (95, 130, 1, 3)] {
        s.execute_blocking(Kv::ScanDescAfterWrites {
            tenant: 1,
            from,
            to,
            delete_every,
            page,
        })
        .unwrap_or_else(|e| panic!("{from}..{to} every {delete_every}, pages of {page}: {e:?}"));
    }
    // The checks ran against real data: the last command's deletes removed 95..130.
    assert!(all(&s, 1).iter().all(|(k, _)| *k < 95));
    assert!(!all(&s, 1).is_empty());
}
