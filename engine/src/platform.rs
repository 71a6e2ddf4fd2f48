//! Platform administration: the platform tenant, its admin credential and the tenant registry.
//!
//! # The platform tenant
//!
//! `TenantId(0)` ([`PLATFORM_TENANT`]) is reserved for the platform. It is stored like any
//! tenant (in the shard its bucket maps to), but it holds only the platform admin credential
//! ([`PLATFORM_CREDENTIAL`]: SHA-256 of the `mcp_...` token) and the registry of tenants
//! ([`TENANT_REGISTRY`], [`TENANTS_BY_SLUG`]). It has no profile, users or catalog: tenancy and
//! accounts commands refuse to run on it, and its audit log records platform actions.
//!
//! # Creating a tenant
//!
//! A tenant's registry entry lives in tenant 0's shard, its profile and users in its own shard,
//! so creation is three commands that cannot share one transaction:
//!
//! 1. `RegisterTenant` (tenant 0): reserves the slug, allocates the id from tenant 0's `tenant`
//!    sequence (so ids start at 1) and records the entry as [`TenantStatus::Creating`].
//! 2. `Provision` (the new tenant): its profile and first tenant admin, in one command.
//! 3. `ActivateTenant` (tenant 0): marks the entry [`TenantStatus::Active`].
//!
//! If the process stops between steps, the entry stays `Creating`, and calling
//! [`Engine::platform_create_tenant`] again with the same slug, name and admin email finds it
//! (step 1 returns the existing entry), provisions again (step 2 is idempotent: an existing
//! profile with the same name is kept, an existing admin gets the retry's password) and
//! activates. A different name or email for a `Creating` slug, or any request for an `Active`
//! slug, is a `tenant_slug_taken` conflict.

use crate::accounts::{self, NewUserRecord, Page, Permission, Principal, Role, SecretToken};
use crate::command::{Actor, Applied, Ctx, Rejection, reject};
use crate::tables::{
    PLATFORM_CREDENTIAL, PlatformCredential, TENANT_REGISTRY, TENANTS_BY_SLUG, TenantEntry,
    TenantRef, TenantStatus, User,
};
use crate::tenancy::{self, TenancyAction, TenancyOutput};
use crate::{Action, CommandOutput, Engine, EngineError, TenantId};
use mercato_storage::{TenantRead, TenantReads};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The platform's own tenant id. Never a marketplace.
pub const PLATFORM_TENANT: TenantId = TenantId(0);
/// Shortest tenant slug, in bytes.
pub const TENANT_SLUG_BYTES_MIN: usize = 3;
/// Longest tenant slug, in bytes (a DNS label).
pub const TENANT_SLUG_BYTES_MAX: usize = 63;
/// Upper bound on one page of the tenant registry.
pub const TENANTS_PAGE_MAX: usize = 500;

/// The platform's commands (run on [`PLATFORM_TENANT`] only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlatformAction {
    /// Sets the platform credential if there is none.
    InitCredential {
        token_hash: [u8; 32],
    },
    /// Replaces (or sets) the platform credential.
    RotateCredential {
        token_hash: [u8; 32],
    },
    RegisterTenant {
        slug: String,
        name: String,
        admin_email: String,
    },
    ActivateTenant {
        tenant_id: u64,
        admin_user_id: u64,
    },
}

/// What a platform command returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlatformOutput {
    /// `set`: false when `InitCredential` found a credential already.
    Credential {
        set: bool,
    },
    Registered {
        entry: TenantEntry,
        resumed: bool,
    },
    Activated(TenantEntry),
}

/// Checks and normalizes (trim, lowercase) a tenant slug: [`TENANT_SLUG_BYTES_MIN`]..=
/// [`TENANT_SLUG_BYTES_MAX`] of `a-z`, `0-9` and `-`, starting and ending with a letter or
/// digit.
pub fn normalize_slug(slug: &str) -> Result<String, Rejection> {
    let slug = slug.trim().to_ascii_lowercase();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let ok = (TENANT_SLUG_BYTES_MIN..=TENANT_SLUG_BYTES_MAX).contains(&slug.len())
        && slug.bytes().all(|b| alnum(b) || b == b'-')
        && slug.bytes().next().is_some_and(alnum)
        && slug.bytes().last().is_some_and(alnum);
    if !ok {
        return Err(Rejection::InvalidField {
            field: "slug".into(),
            reason: format!(
                "must be {TENANT_SLUG_BYTES_MIN}..={TENANT_SLUG_BYTES_MAX} of a-z, 0-9 and '-', \
                 starting and ending with a letter or digit"
            ),
        });
    }
    Ok(slug)
}

pub(crate) fn apply(action: &PlatformAction, ctx: &mut Ctx<'_, '_>) -> Applied<PlatformOutput> {
    if ctx.tx.tenant() != PLATFORM_TENANT {
        return reject(Rejection::Forbidden {
            reason: "platform commands run on the platform tenant only".into(),
        });
    }
    if !matches!(ctx.actor, Actor::Platform | Actor::System) {
        return reject(Rejection::Forbidden {
            reason: format!("{} may not manage the platform", ctx.actor),
        });
    }
    match action {
        PlatformAction::InitCredential { token_hash } => {
            if ctx.tx.get(&PLATFORM_CREDENTIAL, &())?.is_some() {
                return Ok(PlatformOutput::Credential { set: false });
            }
            let credential = PlatformCredential {
                token_hash: *token_hash,
                created_at_ms: ctx.at_ms,
                rotated_at_ms: None,
            };
            ctx.tx.put(&PLATFORM_CREDENTIAL, &(), &credential)?;
            ctx.audit("platform_token.create", "platform_token");
            Ok(PlatformOutput::Credential { set: true })
        }
        PlatformAction::RotateCredential { token_hash } => {
            let previous = ctx.tx.get(&PLATFORM_CREDENTIAL, &())?;
            let credential = PlatformCredential {
                token_hash: *token_hash,
                created_at_ms: previous.map_or(ctx.at_ms, |p| p.created_at_ms),
                rotated_at_ms: Some(ctx.at_ms),
            };
            ctx.tx.put(&PLATFORM_CREDENTIAL, &(), &credential)?;
            ctx.audit("platform_token.rotate", "platform_token");
            Ok(PlatformOutput::Credential { set: true })
        }
        PlatformAction::RegisterTenant {
            slug,
            name,
            admin_email,
        } => {
            let slug = normalize_slug(slug).map_err(mercato_storage::ApplyError::Rejected)?;
            let name =
                tenancy::check_tenant_name(name).map_err(mercato_storage::ApplyError::Rejected)?;
            let admin_email = accounts::normalize_email(admin_email)
                .map_err(mercato_storage::ApplyError::Rejected)?;
            if let Some(TenantRef(id)) = ctx.tx.get(&TENANTS_BY_SLUG, &slug)? {
                let entry = ctx.tx.get(&TENANT_REGISTRY, &id)?;
                if let Some(entry) = entry.filter(|e| {
                    e.status == TenantStatus::Creating
                        && e.name == name
                        && e.admin_email == admin_email
                }) {
                    return Ok(PlatformOutput::Registered {
                        entry,
                        resumed: true,
                    });
                }
                return reject(Rejection::Conflict {
                    code: "tenant_slug_taken",
                    detail: format!("slug {slug} belongs to tenant {id}"),
                });
            }
            let id = ctx.next_id("tenant")?;
            let entry = TenantEntry {
                id,
                slug: slug.clone(),
                name,
                admin_email,
                admin_user_id: None,
                status: TenantStatus::Creating,
                created_at_ms: ctx.at_ms,
                activated_at_ms: None,
            };
            ctx.tx.put(&TENANT_REGISTRY, &id, &entry)?;
            ctx.tx.put(&TENANTS_BY_SLUG, &slug, &TenantRef(id))?;
            ctx.audit("tenant.register", format!("tenant/{id}"));
            Ok(PlatformOutput::Registered {
                entry,
                resumed: false,
            })
        }
        PlatformAction::ActivateTenant {
            tenant_id,
            admin_user_id,
        } => {
            let Some(mut entry) = ctx.tx.get(&TENANT_REGISTRY, tenant_id)? else {
                return reject(Rejection::NotFound {
                    resource: "tenant",
                    id: tenant_id.to_string(),
                });
            };
            if entry.status != TenantStatus::Active {
                entry.status = TenantStatus::Active;
                entry.admin_user_id = Some(*admin_user_id);
                entry.activated_at_ms = Some(ctx.at_ms);
                ctx.tx.put(&TENANT_REGISTRY, tenant_id, &entry)?;
                ctx.audit("tenant.activate", format!("tenant/{tenant_id}"));
            }
            Ok(PlatformOutput::Activated(entry))
        }
    }
}

/// The platform principal, if `hash` is the platform token's.
pub(crate) fn authenticate_platform(
    read: &TenantRead,
    hash: &[u8; 32],
) -> Result<Option<Principal>, EngineError> {
    let Some(credential) = read.get(&PLATFORM_CREDENTIAL, &())? else {
        return Ok(None);
    };
    // Compared without an early exit, although a timing leak of a SHA-256 would not help.
    let diff = credential
        .token_hash
        .iter()
        .zip(hash)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    Ok((diff == 0).then(Principal::platform))
}

/// A tenant to create, with its first admin. `Debug` hides the password.
#[derive(Clone)]
pub struct NewTenant {
    /// Unique on the platform; what people may type at login instead of the id.
    pub slug: String,
    pub name: String,
    pub admin_name: String,
    pub admin_email: String,
    pub admin_password: String,
}

impl fmt::Debug for NewTenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewTenant")
            .field("slug", &self.slug)
            .field("name", &self.name)
            .field("admin_name", &self.admin_name)
            .field("admin_email", &self.admin_email)
            .field("admin_password", &"<redacted>")
            .finish()
    }
}

/// A created (or completed) tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedTenant {
    pub tenant: TenantId,
    pub entry: TenantEntry,
    pub admin: User,
    /// True when this call completed a tenant that an earlier call left `Creating`.
    pub resumed: bool,
}

impl Engine {
    async fn run_platform(&self, action: PlatformAction) -> Result<PlatformOutput, EngineError> {
        let action = Action::Tenancy(TenancyAction::Platform(action));
        match self.run(PLATFORM_TENANT, Actor::Platform, action).await? {
            CommandOutput::Tenancy(TenancyOutput::Platform(output)) => Ok(output),
            other => Err(EngineError::UnexpectedOutput(format!("{other:?}"))),
        }
    }

    /// Creates the platform admin token the first time (returned in clear, once); `None` when
    /// the platform already has one. What `mercato init` calls.
    pub async fn init_platform(&self) -> Result<Option<SecretToken>, EngineError> {
        let (token, token_hash) =
            accounts::secret::new_token(accounts::secret::TokenKind::Platform, PLATFORM_TENANT)?;
        match self
            .run_platform(PlatformAction::InitCredential { token_hash })
            .await?
        {
            PlatformOutput::Credential { set: true } => Ok(Some(token)),
            PlatformOutput::Credential { set: false } => Ok(None),
            other => Err(EngineError::UnexpectedOutput(format!("{other:?}"))),
        }
    }

    /// Replaces the platform admin token (the old one stops working) and returns the new one.
    /// For the operator with access to the machine (a CLI command), so it takes no principal.
    pub async fn rotate_platform_token(&self) -> Result<SecretToken, EngineError> {
        let (token, token_hash) =
            accounts::secret::new_token(accounts::secret::TokenKind::Platform, PLATFORM_TENANT)?;
        self.run_platform(PlatformAction::RotateCredential { token_hash })
            .await?;
        Ok(token)
    }

    /// Creates a tenant and its first tenant admin, or completes one that an earlier call left
    /// half-created (see the module documentation). Needs [`Permission::ManagePlatform`].
    pub async fn platform_create_tenant(
        &self,
        principal: &Principal,
        new: NewTenant,
    ) -> Result<CreatedTenant, EngineError> {
        principal.require(Permission::ManagePlatform)?;
        // Everything is checked before step 1 so that later steps fail only on conflicts.
        let reject = EngineError::Rejected;
        let slug = normalize_slug(&new.slug).map_err(reject)?;
        let name = tenancy::check_tenant_name(&new.name).map_err(reject)?;
        let admin_email = accounts::normalize_email(&new.admin_email).map_err(reject)?;
        accounts::check_user_name(&new.admin_name).map_err(reject)?;
        accounts::secret::check_password_policy(&new.admin_password).map_err(reject)?;
        let password = accounts::secret::hash_password(&new.admin_password).await?;

        let (entry, resumed) = match self
            .run_platform(PlatformAction::RegisterTenant {
                slug,
                name: name.clone(),
                admin_email: admin_email.clone(),
            })
            .await?
        {
            PlatformOutput::Registered { entry, resumed } => (entry, resumed),
            other => return Err(EngineError::UnexpectedOutput(format!("{other:?}"))),
        };
        let tenant = TenantId(entry.id);
        let provision = Action::Tenancy(TenancyAction::Provision {
            name,
            admin: NewUserRecord {
                email: admin_email,
                name: new.admin_name,
                role: Role::TenantAdmin,
                password,
            },
        });
        let admin = match self.run(tenant, Actor::Platform, provision).await? {
            CommandOutput::Tenancy(TenancyOutput::Provisioned { admin, .. }) => admin,
            other => return Err(EngineError::UnexpectedOutput(format!("{other:?}"))),
        };
        let entry = match self
            .run_platform(PlatformAction::ActivateTenant {
                tenant_id: entry.id,
                admin_user_id: admin.id,
            })
            .await?
        {
            PlatformOutput::Activated(entry) => entry,
            other => return Err(EngineError::UnexpectedOutput(format!("{other:?}"))),
        };
        Ok(CreatedTenant {
            tenant,
            entry,
            admin,
            resumed,
        })
    }

    /// The tenant registry by id, after `after`, at most `limit` (capped at
    /// [`TENANTS_PAGE_MAX`]). Needs [`Permission::ManagePlatform`].
    pub fn platform_list_tenants(
        &self,
        principal: &Principal,
        after: Option<TenantId>,
        limit: usize,
    ) -> Result<Page<TenantEntry>, EngineError> {
        principal.require(Permission::ManagePlatform)?;
        accounts::page(
            &self.storage.read(PLATFORM_TENANT)?,
            &TENANT_REGISTRY,
            after.map(|t| t.0),
            limit,
            TENANTS_PAGE_MAX,
        )
    }

    /// The registry entry of a tenant slug, if any: what a login page that asks for the slug
    /// uses to find the tenant id. Public information (no principal needed).
    pub fn platform_tenant_by_slug(&self, slug: &str) -> Result<Option<TenantEntry>, EngineError> {
        let Ok(slug) = normalize_slug(slug) else {
            return Ok(None);
        };
        let read = self.storage.read(PLATFORM_TENANT)?;
        match read.get(&TENANTS_BY_SLUG, &slug)? {
            Some(TenantRef(id)) => Ok(read.get(&TENANT_REGISTRY, &id)?),
            None => Ok(None),
        }
    }
}
