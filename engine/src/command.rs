//! The engine's command type: every write of the appliance is one of these, applied by the
//! storage engine's shard writer and recorded in the change log.

use crate::tables::{TENANT_PROFILE, TenantProfile};
use mercato_storage::{ApplyError, Record, TenantId, TenantReads, TenantWrite};
use serde::{Deserialize, Serialize};

/// Upper bound on a tenant's display name, in bytes.
pub const TENANT_NAME_BYTES_MAX: usize = 200;

/// All engine commands. Variants are only ever added at the end (postcard encodes the index).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    CreateTenant(CreateTenant),
}

impl Record for Command {
    const KIND: u16 = 1000;
    const VERSION: u16 = 1;
}

/// Creates a tenant's profile. Times travel in the command so that applying it is
/// deterministic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTenant {
    pub tenant: TenantId,
    pub name: String,
    pub created_at_ms: u64,
}

/// What a command returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandOutput {
    Done,
}

/// Why a command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("tenant {0} already exists")]
    TenantExists(TenantId),
    #[error("field `{field}` is invalid: {reason}")]
    InvalidField { field: &'static str, reason: String },
}

impl mercato_storage::Command for Command {
    type Output = CommandOutput;
    type Rejection = Rejection;

    fn tenant(&self) -> TenantId {
        match self {
            Command::CreateTenant(c) => c.tenant,
        }
    }

    fn apply(&self, tx: &mut TenantWrite<'_>) -> Result<CommandOutput, ApplyError<Rejection>> {
        match self {
            Command::CreateTenant(c) => {
                let name = c.name.trim();
                if name.is_empty() || name.len() > TENANT_NAME_BYTES_MAX {
                    return Err(ApplyError::Rejected(Rejection::InvalidField {
                        field: "name",
                        reason: format!("must be 1..={TENANT_NAME_BYTES_MAX} bytes"),
                    }));
                }
                if tx.get(&TENANT_PROFILE, &())?.is_some() {
                    return Err(ApplyError::Rejected(Rejection::TenantExists(c.tenant)));
                }
                tx.put(
                    &TENANT_PROFILE,
                    &(),
                    &TenantProfile {
                        name: name.to_string(),
                        created_at_ms: c.created_at_ms,
                    },
                )?;
                Ok(CommandOutput::Done)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Engine, EngineConfig, EngineError};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tenants_are_created_once_and_validated() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
        let create = CreateTenant {
            tenant: TenantId(42),
            name: " Acme Wholesale ".into(),
            created_at_ms: 1_700_000_000_000,
        };
        engine.create_tenant(create.clone()).await.unwrap();
        let profile = engine.tenant_profile(TenantId(42)).unwrap().unwrap();
        assert_eq!(profile.name, "Acme Wholesale");
        assert!(matches!(
            engine.create_tenant(create).await,
            Err(EngineError::Rejected(Rejection::TenantExists(_)))
        ));
        let empty = CreateTenant {
            tenant: TenantId(43),
            name: "  ".into(),
            created_at_ms: 0,
        };
        assert!(matches!(
            engine.create_tenant(empty).await,
            Err(EngineError::Rejected(Rejection::InvalidField {
                field: "name",
                ..
            }))
        ));
        assert_eq!(engine.tenant_profile(TenantId(43)).unwrap(), None);
        engine.check_writable().unwrap();
        engine.shutdown().unwrap();
    }
}
