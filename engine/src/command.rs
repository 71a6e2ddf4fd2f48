//! The engine's command type: every write of the appliance is one [`Command`], applied by the
//! storage engine's shard writer and recorded in the shard's change log.
//!
//! A command names its tenant, who did it (the [`Actor`]), when (`at_ms`, decided by the caller
//! so that applying it is deterministic) and what ([`Action`], one enum per domain). The wrapper
//! here runs the domain's `apply` and then appends the audit entries the domain recorded, in
//! the same transaction: a mutation without its audit entry cannot commit.

use crate::audit;
use crate::tables::{SEQUENCES, Sequence};
use crate::{accounts, catalog, inventory, orders, search, tenancy, verification};
use mercato_storage::{ApplyError, Record, StorageError, TenantId, TenantReads, TenantWrite};
use serde::{Deserialize, Serialize};

/// Who caused a change.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Actor {
    /// The platform administrator (holder of the platform token).
    Platform,
    /// A signed-in user of the tenant.
    User(u64),
    /// An integration using an API key of the tenant.
    ApiKey(u64),
    /// The appliance itself (demo data, lifecycle jobs).
    System,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Platform => write!(f, "platform"),
            Actor::User(id) => write!(f, "user/{id}"),
            Actor::ApiKey(id) => write!(f, "api_key/{id}"),
            Actor::System => write!(f, "system"),
        }
    }
}

/// One write. Variants of [`Action`] are only ever added at the end (postcard encodes the index).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub tenant: TenantId,
    pub actor: Actor,
    pub at_ms: u64,
    pub action: Action,
}

impl Record for Command {
    const KIND: u16 = 1000;
    const VERSION: u16 = 1;
}

/// What a command does, by domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    Tenancy(tenancy::TenancyAction),
    Accounts(accounts::AccountsAction),
    Catalog(catalog::CatalogAction),
    Inventory(inventory::InventoryAction),
    Orders(orders::OrdersAction),
    Search(search::SearchAction),
    Verification(verification::actions::VerificationAction),
}

/// What a command returns, by domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandOutput {
    Tenancy(tenancy::TenancyOutput),
    Accounts(accounts::AccountsOutput),
    Catalog(catalog::CatalogOutput),
    Inventory(inventory::InventoryOutput),
    Orders(orders::OrdersOutput),
    Search(search::SearchOutput),
    Verification(verification::actions::VerificationOutput),
}

/// Why a command was refused. The server maps each variant to an HTTP status and a stable code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The resource does not exist in this tenant (also what another tenant's ids look like).
    #[error("{resource} {id} not found")]
    NotFound { resource: &'static str, id: String },
    /// A field of the input is invalid.
    #[error("field `{field}` is invalid: {reason}")]
    InvalidField { field: String, reason: String },
    /// The change conflicts with the current state (duplicate, illegal transition, ...).
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// The actor may not do this.
    #[error("forbidden: {reason}")]
    Forbidden { reason: String },
    /// Some lines of an order cannot be placed; each problem names its line.
    #[error("{} order line(s) cannot be placed", problems.len())]
    OrderLines { problems: Vec<LineProblem> },
}

/// One offending order line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineProblem {
    /// Index of the line in the request (0-based).
    pub line: usize,
    /// Stable machine-readable code, e.g. `below_minimum_quantity`.
    pub code: &'static str,
    pub detail: String,
}

/// An audit fact recorded by a domain's `apply`: what happened to which resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditFact {
    pub action: &'static str,
    pub resource: String,
}

/// What a domain's `apply` works with: the tenant's write handle, the actor, the command's
/// time, and the audit facts to append.
pub struct Ctx<'a, 'b> {
    pub tx: &'a mut TenantWrite<'b>,
    pub actor: &'a Actor,
    pub at_ms: u64,
    audit: Vec<AuditFact>,
}

impl Ctx<'_, '_> {
    /// Records that `action` (a dotted name such as `product.create`) happened to `resource`
    /// (such as `product/42`). Every mutating action records at least one fact.
    pub fn audit(&mut self, action: &'static str, resource: impl Into<String>) {
        self.audit.push(AuditFact {
            action,
            resource: resource.into(),
        });
    }

    /// The next id of a per-tenant sequence (1, 2, 3, ...). Deterministic, time-ordered, and a
    /// cheap append for the B-tree, unlike random ids.
    pub fn next_id(&mut self, sequence: &str) -> Result<u64, StorageError> {
        let key = sequence.to_string();
        let next = self.tx.get(&SEQUENCES, &key)?.map_or(0, |s| s.0) + 1;
        self.tx.put(&SEQUENCES, &key, &Sequence(next))?;
        Ok(next)
    }
}

/// Shorthand for domain `apply` results.
pub type Applied<T> = Result<T, ApplyError<Rejection>>;

/// Refuses a command with a rejection.
pub fn reject<T>(rejection: Rejection) -> Applied<T> {
    Err(ApplyError::Rejected(rejection))
}

impl mercato_storage::Command for Command {
    type Output = CommandOutput;
    type Rejection = Rejection;

    fn tenant(&self) -> TenantId {
        self.tenant
    }

    fn apply(&self, tx: &mut TenantWrite<'_>) -> Result<CommandOutput, ApplyError<Rejection>> {
        let mut ctx = Ctx {
            tx,
            actor: &self.actor,
            at_ms: self.at_ms,
            audit: Vec::new(),
        };
        let output = match &self.action {
            Action::Tenancy(a) => CommandOutput::Tenancy(tenancy::apply(a, &mut ctx)?),
            Action::Accounts(a) => CommandOutput::Accounts(accounts::apply(a, &mut ctx)?),
            Action::Catalog(a) => CommandOutput::Catalog(catalog::apply(a, &mut ctx)?),
            Action::Inventory(a) => CommandOutput::Inventory(inventory::apply(a, &mut ctx)?),
            Action::Orders(a) => CommandOutput::Orders(orders::apply(a, &mut ctx)?),
            Action::Search(a) => CommandOutput::Search(search::apply(a, &mut ctx)?),
            Action::Verification(a) => {
                CommandOutput::Verification(verification::actions::apply(a, &mut ctx)?)
            }
        };
        let Ctx {
            tx,
            actor,
            at_ms,
            audit: facts,
        } = ctx;
        audit::append(tx, actor, at_ms, &facts)?;
        Ok(output)
    }
}
