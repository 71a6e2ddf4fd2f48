//! Mercato's domain engine: the marketplace and verification domain on top of the storage
//! engine and the search index.
//!
//! The engine owns the command type that every write of the appliance goes through
//! ([`Command`]), the logical tables of the domain ([`tables`]) and the operations the HTTP
//! server calls. It has no HTTP dependency: the server converts its types at the edge.
//!
//! ```no_run
//! use mercato_engine::{Engine, EngineConfig};
//! # fn main() -> Result<(), mercato_engine::EngineError> {
//! let engine = Engine::open(EngineConfig::new("./mercato-data"))?;
//! engine.check_writable()?;
//! engine.shutdown()?;
//! # Ok(()) }
//! ```

pub mod accounts;
pub mod audit;
pub mod cache;
pub mod catalog;
mod command;
pub mod inventory;
pub mod jobs;
pub mod money;
pub mod orders;
pub mod platform;
pub mod search;
pub mod tables;
pub mod tenancy;
pub mod verification;

pub use command::{Action, Actor, AuditFact, Command, CommandOutput, Ctx, LineProblem, Rejection};
pub use mercato_storage::{ShardId, TenantId};

use cache::{CacheCounts, CacheKind, ReadCacheConfig, Store};
use mercato_storage::{ExecuteError, OpenError, Storage, StorageConfig, StorageError, TenantReads};
use std::path::PathBuf;

/// How the engine opens its data directory.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub data_dir: PathBuf,
    /// Shards created with a new data directory (ignored for an existing one).
    pub shards_initial: u16,
    /// Group-commit bounds per shard writer.
    pub commit_batch_count_max: u32,
    pub commit_batch_bytes_max: u64,
    /// Commands waiting per shard before writes are refused as overloaded.
    pub pending_commands_max: u32,
}

impl EngineConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let defaults = StorageConfig::new(PathBuf::new());
        EngineConfig {
            data_dir: data_dir.into(),
            shards_initial: defaults.shards_initial,
            commit_batch_count_max: defaults.batch_count_max as u32,
            commit_batch_bytes_max: defaults.batch_bytes_max as u64,
            pending_commands_max: defaults.pending_commands_max,
        }
    }

    fn storage_config(&self) -> StorageConfig {
        let mut config = StorageConfig::new(&self.data_dir);
        config.shards_initial = self.shards_initial;
        config.batch_count_max = self.commit_batch_count_max as usize;
        config.batch_bytes_max = usize::try_from(self.commit_batch_bytes_max).unwrap_or(usize::MAX);
        config.pending_commands_max = self.pending_commands_max;
        config
    }
}

/// Why an engine operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("rejected: {0}")]
    Rejected(Rejection),
    /// Reading or writing a caller's stream failed (CSV export).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A command returned an output of another domain: a bug, never user input.
    #[error("internal error: unexpected command output {0}")]
    UnexpectedOutput(String),
    /// The credential is missing, malformed, unknown, expired or revoked, or the login failed.
    /// Deliberately one variant: the caller learns nothing about which check failed.
    #[error("unauthenticated")]
    Unauthenticated,
    /// The principal is authenticated but lacks the permission named here.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Hashing a password or drawing random bytes failed: an internal error, never user input.
    #[error("internal error: credential processing failed: {0}")]
    Credential(String),
}

impl From<ExecuteError<Rejection>> for EngineError {
    fn from(e: ExecuteError<Rejection>) -> Self {
        match e {
            ExecuteError::Rejected(r) => EngineError::Rejected(r),
            ExecuteError::Storage(s) => EngineError::Storage(s),
        }
    }
}

/// The marketplace engine. Share it as `Arc<Engine>`.
pub struct Engine {
    /// Storage, with the read cache's write marks around every write (see [`cache`]).
    storage: Store,
    /// The search indexers, once [`Engine::start_search`] ran.
    search: search::SearchHandle,
    /// The verification workers, once [`Engine::start_verification`] ran.
    verification: verification::service::VerificationHandle,
}

impl Engine {
    /// Opens or creates the data directory, with a read cache of
    /// [`cache::READ_CACHE_BYTES_DEFAULT`]. Blocking: call it off the async runtime.
    pub fn open(config: EngineConfig) -> Result<Engine, EngineError> {
        Engine::open_with_read_cache(config, ReadCacheConfig::default())
    }

    /// [`Engine::open`] with a chosen read cache size. Blocking.
    pub fn open_with_read_cache(
        config: EngineConfig,
        read_cache: ReadCacheConfig,
    ) -> Result<Engine, EngineError> {
        let storage = Storage::open(config.storage_config())?;
        Ok(Engine {
            storage: Store::new(storage, read_cache),
            search: search::SearchHandle::default(),
            verification: Default::default(),
        })
    }

    /// The storage engine underneath (for operations tooling and tests). Commands executed on
    /// it directly bypass the read cache's invalidation: use [`Engine::run`] for anything that
    /// changes the catalog while the engine serves reads.
    pub fn storage(&self) -> &Storage<Command> {
        &self.storage
    }

    /// Hits and misses of the read cache for one kind of record since the engine opened.
    pub fn read_cache_counts(&self, kind: CacheKind) -> CacheCounts {
        self.storage.read_cache().counts(kind)
    }

    /// Ok when storage is open and a durable write through every shard's writer succeeds.
    /// Blocking.
    pub fn check_writable(&self) -> Result<(), EngineError> {
        Ok(self.storage.check_writable()?)
    }

    /// Lets every shard writer finish what it has and stops them. Blocking; idempotent.
    pub fn shutdown(&self) -> Result<(), EngineError> {
        self.verification.stop();
        self.search.stop();
        Ok(self.storage.close()?)
    }

    /// Applies one action for a tenant, stamped with the current time, and waits until it is
    /// durable.
    pub async fn run(
        &self,
        tenant: TenantId,
        actor: Actor,
        action: Action,
    ) -> Result<CommandOutput, EngineError> {
        let command = Command {
            tenant,
            actor,
            at_ms: now_ms(),
            action,
        };
        Ok(self.storage.execute(command).await?)
    }

    /// Creates a tenant (its profile in its shard).
    pub async fn create_tenant(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> Result<tables::TenantProfile, EngineError> {
        let action = Action::Tenancy(tenancy::TenancyAction::Create {
            name: name.to_string(),
        });
        match self.run(tenant, Actor::Platform, action).await? {
            CommandOutput::Tenancy(tenancy::TenancyOutput::Created(profile)) => Ok(profile),
            other => Err(EngineError::UnexpectedOutput(format!("{other:?}"))),
        }
    }

    /// Audit entries of a tenant matching a query. Blocking.
    pub fn audit_query(
        &self,
        tenant: TenantId,
        query: &audit::AuditQuery,
    ) -> Result<audit::AuditPage, EngineError> {
        Ok(audit::query(&self.storage.read(tenant)?, query)?)
    }

    /// Recomputes a tenant's audit hash chain. Blocking.
    pub fn audit_verify(&self, tenant: TenantId) -> Result<audit::ChainCheck, EngineError> {
        Ok(audit::verify_chain(&self.storage.read(tenant)?)?)
    }

    /// [`Engine::audit_verify`] with the chain's head from the same snapshot, so that the head
    /// can be kept outside as an anchor. Blocking.
    pub fn audit_verify_anchored(
        &self,
        tenant: TenantId,
    ) -> Result<audit::AnchoredCheck, EngineError> {
        Ok(audit::verify_chain_anchored(&self.storage.read(tenant)?)?)
    }

    /// A tenant's profile, if the tenant exists.
    pub fn tenant_profile(
        &self,
        tenant: TenantId,
    ) -> Result<Option<tables::TenantProfile>, EngineError> {
        Ok(self
            .storage
            .read(tenant)?
            .get(&tables::TENANT_PROFILE, &())?)
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
