//! Coalesced redb commits: under concurrent writers the shard writer answers batches before a
//! redb commit holds them, and readers see them through the shard's overlay. Every answered
//! write must be readable at once (get, scan, change log), deletes must hide older rows, and a
//! reader's snapshot must be one consistent state.

use crate::common::*;
use mercato_storage::TenantId;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const WRITERS: u64 = 6;
const WRITES: u64 = 300;
/// Tenant of the transfer check: its two keys always add up to `TOTAL`.
const BANK: u64 = 9_001;
const TOTAL: u64 = 1_000;

#[test]
fn answered_writes_are_read_at_once_and_snapshots_stay_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(open(dir.path()));
    s.execute_blocking(Kv::Put {
        tenant: BANK,
        key: 1,
        value: TOTAL,
    })
    .unwrap();
    s.execute_blocking(Kv::Put {
        tenant: BANK,
        key: 2,
        value: 0,
    })
    .unwrap();
    let bank_shard = s.shard_of(TenantId(BANK));
    let stop = Arc::new(AtomicBool::new(false));

    // A reader checks that every snapshot sees the two bank keys from the same state.
    let checker = {
        let (s, stop) = (Arc::clone(&s), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut snapshots = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let rows = all(&s, BANK);
                let sum: u64 = rows.iter().map(|(_, v)| v).sum();
                assert_eq!(sum, TOTAL, "a snapshot mixed two states: {rows:?}");
                snapshots += 1;
            }
            snapshots
        })
    };
    // A transfer thread keeps moving units between the bank keys.
    let mover = {
        let (s, stop) = (Arc::clone(&s), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let (from, to) = if i.is_multiple_of(2) { (1, 2) } else { (2, 1) };
                let _ = s.execute_blocking(Kv::Transfer {
                    tenant: BANK,
                    from,
                    to,
                    amount: 1 + i % 7,
                });
                i += 1;
            }
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                // Half the writers share a tenant (their rows sit side by side), half have
                // their own.
                let tenant = if w % 2 == 0 { 7 } else { 100 + w };
                let base = w * 10_000;
                let shard = s.shard_of(TenantId(tenant));
                for i in 0..WRITES {
                    s.execute_blocking(Kv::Put {
                        tenant,
                        key: base + i,
                        value: i,
                    })
                    .unwrap();
                    assert_eq!(get(&s, tenant, base + i), Some(i), "writer {w}, write {i}");
                    // The answered write is in the change log.
                    let last = s.last_lsn(shard).unwrap();
                    let page = s.changes(shard, last - 1, 1).unwrap();
                    assert_eq!(page.entries.first().map(|e| e.lsn), Some(last));
                    if i % 3 == 2 {
                        // A delete hides the row at once, in gets and in scans.
                        s.execute_blocking(Kv::Delete {
                            tenant,
                            key: base + i - 1,
                        })
                        .unwrap();
                        assert_eq!(get(&s, tenant, base + i - 1), None);
                    }
                    if i % 50 == 49 {
                        let mine: Vec<u64> = all(&s, tenant)
                            .into_iter()
                            .filter(|(k, _)| (base..base + WRITES).contains(k))
                            .map(|(k, _)| k - base)
                            .collect();
                        let expected: Vec<u64> =
                            (0..=i).filter(|k| k % 3 != 1 || *k + 1 > i).collect();
                        assert_eq!(mine, expected, "writer {w} after write {i}");
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    mover.join().unwrap();
    let snapshots = checker.join().unwrap();
    assert!(snapshots > 0);
    assert!(
        s.overlay_batches_total() > 0,
        "no batch was answered before its redb commit: the overlay was not exercised"
    );

    // After a reopen (the log replays whatever was not checkpointed) the state is the same.
    let before: Vec<_> = [7, 101, 103, 105, BANK].map(|t| all(&s, t)).to_vec();
    let bank_lsn = s.last_lsn(bank_shard).unwrap();
    s.close().unwrap();
    drop(s);
    let s = open(dir.path());
    let after: Vec<_> = [7, 101, 103, 105, BANK].map(|t| all(&s, t)).to_vec();
    assert_eq!(before, after);
    assert_eq!(s.last_lsn(bank_shard).unwrap(), bank_lsn);
    s.close().unwrap();
}
