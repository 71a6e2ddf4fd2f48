//! Commands: the only way to change a shard.

use crate::envelope::Record;
use crate::error::ApplyError;
use crate::ids::TenantId;
use crate::txn::TenantWrite;

/// A deterministic change to one tenant's data.
///
/// The shard writer calls [`Command::apply`] inside its batch transaction. `apply` must be a
/// pure function of the command and of what it reads through the handle: no clocks, no random
/// numbers, no I/O. Times and ids travel inside the command, decided by the caller. This is what
/// lets the change log be replayed (later: replicated through Raft) to the same state.
///
/// Commands are [`Record`]s because they are written into the change log.
pub trait Command: Record + Send + Sync + 'static {
    /// What a successful command returns to its caller.
    type Output: Send + 'static;
    /// Why a command refused to run (a validation failure).
    type Rejection: Send + std::fmt::Debug + 'static;

    /// The tenant whose data the command changes; the handle passed to `apply` can see only it.
    fn tenant(&self) -> TenantId;

    /// Applies the command. On `Err(Rejected)`, whatever it wrote is discarded and the rest of
    /// the batch proceeds.
    fn apply(&self, tx: &mut TenantWrite<'_>) -> Result<Self::Output, ApplyError<Self::Rejection>>;
}
