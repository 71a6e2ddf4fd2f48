//! The per-tenant audit log: every mutation appends entries (actor, action, resource, time) in
//! the same transaction as the mutation, hash-chained so that changing or deleting an entry is
//! detectable.

use crate::command::{Actor, AuditFact};
use crate::tables::{AUDIT_HEAD, AUDIT_LOG, AuditEntry, AuditHead};
use mercato_storage::{StorageError, TenantReads, TenantWrite};
use sha2::{Digest, Sha256};

/// Upper bound on entries returned by one audit query page.
pub const AUDIT_PAGE_MAX: usize = 500;
/// Upper bound on entries examined by one audit query (filters scan the log).
pub const AUDIT_SCAN_MAX: usize = 50_000;

/// The hash of an entry: SHA-256 over its postcard encoding with `hash` zeroed.
pub fn entry_hash(entry: &AuditEntry) -> [u8; 32] {
    if entry.hash == [0; 32] {
        return unhashed_entry_hash(entry);
    }
    let mut unhashed = entry.clone();
    unhashed.hash = [0; 32];
    unhashed_entry_hash(&unhashed)
}

/// [`entry_hash`] of an entry whose `hash` is still zero (no copy needed).
fn unhashed_entry_hash(entry: &AuditEntry) -> [u8; 32] {
    debug_assert_eq!(entry.hash, [0; 32]);
    let bytes = postcard::to_stdvec(entry).expect("invariant: audit entries always encode");
    Sha256::digest(&bytes).into()
}

pub(crate) fn append(
    tx: &mut TenantWrite<'_>,
    actor: &Actor,
    at_ms: u64,
    facts: &[AuditFact],
) -> Result<(), StorageError> {
    if facts.is_empty() {
        return Ok(());
    }
    let mut head = tx.get(&AUDIT_HEAD, &())?.unwrap_or(AuditHead {
        seq: 0,
        hash: [0; 32],
    });
    for fact in facts {
        let mut entry = AuditEntry {
            seq: head.seq + 1,
            at_ms,
            actor: actor.clone(),
            action: fact.action.to_string(),
            resource: fact.resource.clone(),
            prev_hash: head.hash,
            hash: [0; 32],
        };
        entry.hash = unhashed_entry_hash(&entry);
        tx.put(&AUDIT_LOG, &entry.seq, &entry)?;
        head = AuditHead {
            seq: entry.seq,
            hash: entry.hash,
        };
    }
    tx.put(&AUDIT_HEAD, &(), &head)
}

/// Filters of an audit query; all optional, combined with AND.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub actor: Option<Actor>,
    pub action: Option<String>,
    /// Exact resource (`product/42`) or a prefix ending in `/` (`product/`).
    pub resource: Option<String>,
    pub from_ms: Option<u64>,
    pub to_ms: Option<u64>,
    /// Continue after this sequence number.
    pub after_seq: Option<u64>,
    pub limit: usize,
}

impl AuditQuery {
    fn matches(&self, e: &AuditEntry) -> bool {
        self.actor.as_ref().is_none_or(|a| *a == e.actor)
            && self.action.as_ref().is_none_or(|a| *a == e.action)
            && self.resource.as_ref().is_none_or(|r| {
                if r.ends_with('/') {
                    e.resource.starts_with(r.as_str())
                } else {
                    *r == e.resource
                }
            })
            && self.from_ms.is_none_or(|f| e.at_ms >= f)
            && self.to_ms.is_none_or(|t| e.at_ms < t)
    }
}

/// A page of audit entries and where to continue.
#[derive(Clone, Debug)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `after_seq` for the next page; `None` when the log is exhausted.
    pub next_after: Option<u64>,
}

/// Runs a query over a snapshot, oldest first, examining at most [`AUDIT_SCAN_MAX`] entries.
pub fn query(read: &impl TenantReads, q: &AuditQuery) -> Result<AuditPage, StorageError> {
    let limit = q.limit.clamp(1, AUDIT_PAGE_MAX);
    let mut entries = Vec::new();
    let mut after = q.after_seq;
    let mut examined = 0;
    loop {
        let rows = read.scan(&AUDIT_LOG, &(), after.as_ref(), 1000)?;
        let Some(last) = rows.last().map(|(k, _)| *k) else {
            return Ok(AuditPage {
                entries,
                next_after: None,
            });
        };
        for (seq, entry) in rows {
            examined += 1;
            if q.matches(&entry) {
                entries.push(entry);
                if entries.len() == limit {
                    return Ok(AuditPage {
                        entries,
                        next_after: Some(seq),
                    });
                }
            }
            if examined >= AUDIT_SCAN_MAX {
                return Ok(AuditPage {
                    entries,
                    next_after: Some(seq),
                });
            }
        }
        after = Some(last);
    }
}

/// Result of checking a tenant's whole chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainCheck {
    Intact {
        entries: u64,
    },
    /// The first entry whose hash or link does not match.
    Broken {
        seq: u64,
        reason: String,
    },
}

/// A chain check with the chain's head as read in the same snapshot: the head's hash commits
/// to every entry before it, so a copy kept elsewhere anchors the log (a later check whose
/// chain no longer passes through it shows that history was rewritten).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnchoredCheck {
    pub check: ChainCheck,
    /// The last entry's sequence number and hash; `None` while the log is empty.
    pub head: Option<AuditHead>,
}

/// [`verify_chain`], and the head it verified up to.
pub fn verify_chain_anchored(read: &impl TenantReads) -> Result<AnchoredCheck, StorageError> {
    let check = verify_chain(read)?;
    let head = read.get(&AUDIT_HEAD, &())?;
    Ok(AnchoredCheck { check, head })
}

/// Walks the whole chain and recomputes every hash.
pub fn verify_chain(read: &impl TenantReads) -> Result<ChainCheck, StorageError> {
    let mut prev = [0u8; 32];
    let mut expected_seq = 1;
    let mut after = None;
    loop {
        let rows = read.scan(&AUDIT_LOG, &(), after.as_ref(), 1000)?;
        if rows.is_empty() {
            break;
        }
        for (seq, entry) in rows {
            after = Some(seq);
            if seq != expected_seq || entry.seq != seq {
                return Ok(ChainCheck::Broken {
                    seq,
                    reason: format!("expected entry {expected_seq}"),
                });
            }
            if entry.prev_hash != prev {
                return Ok(ChainCheck::Broken {
                    seq,
                    reason: "link to the previous entry does not match".into(),
                });
            }
            if entry_hash(&entry) != entry.hash {
                return Ok(ChainCheck::Broken {
                    seq,
                    reason: "entry hash does not match its contents".into(),
                });
            }
            prev = entry.hash;
            expected_seq += 1;
        }
    }
    match read.get(&AUDIT_HEAD, &())? {
        Some(head) if head.seq != expected_seq - 1 || head.hash != prev => Ok(ChainCheck::Broken {
            seq: head.seq,
            reason: "chain head does not match the last entry".into(),
        }),
        None if expected_seq > 1 => Ok(ChainCheck::Broken {
            seq: 0,
            reason: "entries without a chain head".into(),
        }),
        _ => Ok(ChainCheck::Intact {
            entries: expected_seq - 1,
        }),
    }
}

#[cfg(test)]
mod tests {
    use crate::audit::{AuditQuery, ChainCheck};
    use crate::tables::{AUDIT_LOG, AuditEntry};
    use crate::{Actor, Engine, EngineConfig, EngineError, Rejection, TenantId};
    use mercato_storage::{ApplyError, Record, StorageConfig, TenantReads, TenantWrite};
    use serde::{Deserialize, Serialize};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_mutation_is_audited_and_the_chain_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
        let t = TenantId(42);
        let profile = engine.create_tenant(t, " Acme Wholesale ").await.unwrap();
        assert_eq!(profile.name, "Acme Wholesale");
        assert!(matches!(
            engine.create_tenant(t, "again").await,
            Err(EngineError::Rejected(Rejection::Conflict {
                code: "tenant_exists",
                ..
            }))
        ));
        assert!(matches!(
            engine.create_tenant(TenantId(43), "  ").await,
            Err(EngineError::Rejected(Rejection::InvalidField { .. }))
        ));
        let page = engine
            .audit_query(
                t,
                &AuditQuery {
                    limit: 10,
                    ..Default::default()
                },
            )
            .unwrap();
        // The rejected command left no entry.
        assert_eq!(page.entries.len(), 1);
        let e = &page.entries[0];
        assert_eq!(
            (e.action.as_str(), e.resource.as_str(), &e.actor),
            ("tenant.create", "tenant/42", &Actor::Platform)
        );
        assert_eq!(
            engine.audit_verify(t).unwrap(),
            ChainCheck::Intact { entries: 1 }
        );
        assert_eq!(
            engine.audit_verify(TenantId(43)).unwrap(),
            ChainCheck::Intact { entries: 0 }
        );
        let none = engine
            .audit_query(
                t,
                &AuditQuery {
                    action: Some("product.create".into()),
                    limit: 10,
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(none.entries.is_empty());
    }

    /// Rewrites an audit entry behind the engine's back, as an attacker with file access would.
    #[derive(Serialize, Deserialize)]
    struct Tamper {
        tenant: TenantId,
        entry: AuditEntry,
    }
    impl Record for Tamper {
        const KIND: u16 = 60_000;
        const VERSION: u16 = 1;
    }
    impl mercato_storage::Command for Tamper {
        type Output = ();
        type Rejection = ();
        fn tenant(&self) -> TenantId {
            self.tenant
        }
        fn apply(&self, tx: &mut TenantWrite<'_>) -> Result<(), ApplyError<()>> {
            Ok(tx.put(&AUDIT_LOG, &self.entry.seq, &self.entry)?)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tampering_with_an_entry_breaks_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let t = TenantId(7);
        let mut entry = {
            let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
            engine.create_tenant(t, "Tamper Test").await.unwrap();
            let page = engine
                .audit_query(
                    t,
                    &AuditQuery {
                        limit: 10,
                        ..Default::default()
                    },
                )
                .unwrap();
            engine.shutdown().unwrap();
            page.entries[0].clone()
        };
        entry.actor = Actor::User(999);
        {
            let storage =
                mercato_storage::Storage::<Tamper>::open(StorageConfig::new(dir.path())).unwrap();
            storage
                .execute_blocking(Tamper { tenant: t, entry })
                .unwrap();
            let check = crate::audit::verify_chain(&storage.read(t).unwrap()).unwrap();
            assert!(
                matches!(check, ChainCheck::Broken { seq: 1, .. }),
                "{check:?}"
            );
            assert!(
                storage
                    .read(t)
                    .unwrap()
                    .get(&AUDIT_LOG, &1)
                    .unwrap()
                    .is_some()
            );
        }
    }
}
