//! Every logical table of the domain, in one place: id, name, key type and record type.
//!
//! Table ids are part of the on-disk format (they are in every physical key): never reuse or
//! renumber one. Ids from 0xFF00 up belong to the storage engine.

use mercato_storage::{Record, TableDef};
use serde::{Deserialize, Serialize};

/// The tenant's own profile: one row per tenant.
pub const TENANT_PROFILE: TableDef<(), TenantProfile> = TableDef::new(1, "tenant_profile");

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
