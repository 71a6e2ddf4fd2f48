use crate::common::*;
use mercato_storage::*;
use std::time::Duration;

fn add_ref(s: &Storage<Kv>, tenant: u64, hash: &BlobHash, add: bool) {
    s.execute_blocking(Kv::BlobRef {
        tenant,
        hash: *hash.as_bytes(),
        add,
    })
    .unwrap();
}

#[test]
fn blobs_are_readable_only_by_tenants_that_reference_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let bytes = b"%PDF-1.4 business registration of Acme GmbH ".repeat(200);
    let put = s.put_blob(&bytes).unwrap();
    assert!(put.created);
    assert_eq!(
        s.read_blob(TenantId(1), &put.hash).unwrap(),
        None,
        "no reference yet"
    );
    add_ref(&s, 1, &put.hash, true);
    assert_eq!(
        s.read_blob(TenantId(1), &put.hash).unwrap().as_deref(),
        Some(bytes.as_slice())
    );
    assert_eq!(
        s.read_blob(TenantId(2), &put.hash).unwrap(),
        None,
        "another tenant cannot read it"
    );
    // The same bytes again are the same blob, stored once.
    let again = s.put_blob(&bytes).unwrap();
    assert_eq!(again.hash, put.hash);
    assert!(!again.created);
}

#[test]
fn garbage_collection_keeps_referenced_and_fresh_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let kept = s.put_blob(b"referenced by tenant 1").unwrap().hash;
    let dropped = s.put_blob(b"referenced, then released").unwrap().hash;
    let orphan = s.put_blob(b"never referenced").unwrap().hash;
    add_ref(&s, 1, &kept, true);
    add_ref(&s, 2, &dropped, true);
    add_ref(&s, 2, &dropped, false);
    // Within the grace period nothing goes, referenced or not.
    let report = s.collect_blob_garbage(Duration::from_secs(3600)).unwrap();
    assert_eq!(
        report,
        BlobGcReport {
            examined: 3,
            deleted: 0
        }
    );
    // Past it, only unreferenced blobs go.
    let report = s.collect_blob_garbage(Duration::ZERO).unwrap();
    assert_eq!(report.deleted, 2);
    assert!(s.read_blob(TenantId(1), &kept).unwrap().is_some());
    assert!(
        s.put_blob(b"never referenced").unwrap().created,
        "the orphan's file was removed"
    );
    let _ = orphan;
}

#[test]
fn blob_references_move_with_their_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let hash = s.put_blob(b"an insurance certificate").unwrap().hash;
    add_ref(&s, 3, &hash, true);
    let bucket = TenantId(3).bucket();
    let to = ShardId((s.shard_of_bucket(bucket).0 + 1) % 4);
    s.move_bucket(bucket, to).unwrap();
    // The source's totals dropped, the target's rose: the blob is still referenced.
    assert_eq!(s.collect_blob_garbage(Duration::ZERO).unwrap().deleted, 0);
    assert!(s.read_blob(TenantId(3), &hash).unwrap().is_some());
    s.close().unwrap();
    drop(s);
    let report = verify_data_dir(dir.path()).unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
}
