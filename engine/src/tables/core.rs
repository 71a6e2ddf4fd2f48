//! Tables every domain shares: the tenant profile, id sequences and the audit log.

use crate::command::Actor;
use mercato_storage::{Record, TableDef};
use serde::{Deserialize, Serialize};

/// The tenant's own profile: one row per tenant.
pub const TENANT_PROFILE: TableDef<(), TenantProfile> = TableDef::new(1, "tenant_profile");
/// Per-tenant id sequences, by name: the last id handed out.
pub const SEQUENCES: TableDef<String, Sequence> = TableDef::new(2, "sequences");
/// The tenant's audit log, by sequence number (time-ordered).
pub const AUDIT_LOG: TableDef<u64, AuditEntry> = TableDef::new(3, "audit_log");
/// The head of the tenant's audit chain.
pub const AUDIT_HEAD: TableDef<(), AuditHead> = TableDef::new(4, "audit_head");

/// A distributor's marketplace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantProfile {
    pub name: String,
    pub created_at_ms: u64,
}

impl Record for TenantProfile {
    const KIND: u16 = 1;
    const VERSION: u16 = 1;
}

/// The last value handed out by a sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequence(pub u64);

impl Record for Sequence {
    const KIND: u16 = 2;
    const VERSION: u16 = 1;
}

/// One audited mutation. `hash = SHA-256(postcard(entry with hash zeroed))`, and `prev_hash` is
/// the previous entry's hash (zeros for the first): changing or removing any entry breaks every
/// hash after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub at_ms: u64,
    pub actor: Actor,
    pub action: String,
    pub resource: String,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

impl Record for AuditEntry {
    const KIND: u16 = 3;
    const VERSION: u16 = 1;
}

/// The newest entry of the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    pub seq: u64,
    pub hash: [u8; 32],
}

impl Record for AuditHead {
    const KIND: u16 = 4;
    const VERSION: u16 = 1;
}
