//! Tenants: a distributor's marketplace, its profile and its settings.
//!
//! Tenant 0 is the platform ([`crate::platform::PLATFORM_TENANT`]) and never a marketplace:
//! creating or provisioning it is refused. Tenants are normally created through
//! [`Engine::platform_create_tenant`](crate::Engine::platform_create_tenant), which registers
//! the tenant with the platform and then runs [`TenancyAction::Provision`] on the tenant's
//! shard; [`TenancyAction::Create`] (a bare profile) remains for tools and tests.

use crate::accounts::{self, NewUserRecord, Permission, Principal, Role};
use crate::command::{Actor, Applied, Ctx, Rejection, reject};
use crate::platform::{self, PLATFORM_TENANT};
use crate::tables::{TENANT_PROFILE, TENANT_SETTINGS, TenantProfile, TenantSettings, User};
use crate::{Action, CommandOutput, Engine, EngineError};
use mercato_storage::{ApplyError, TenantReads};
use serde::{Deserialize, Serialize};

/// Upper bound on a tenant's display name, in bytes.
pub const TENANT_NAME_BYTES_MAX: usize = 200;
/// Default lifetime of a login session: 12 hours.
pub const SESSION_TTL_MS_DEFAULT: u64 = 12 * 60 * 60 * 1000;
/// Shortest session lifetime a tenant may set: 5 minutes.
pub const SESSION_TTL_MS_MIN: u64 = 5 * 60 * 1000;
/// Longest session lifetime a tenant may set: 30 days.
pub const SESSION_TTL_MS_MAX: u64 = 30 * 24 * 60 * 60 * 1000;

/// Variants are only ever added at the end (postcard encodes the index).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TenancyAction {
    /// Creates the tenant's profile.
    Create { name: String },
    /// Replaces the tenant's settings (needs [`Permission::ManageTenant`]).
    UpdateSettings { settings: TenantSettings },
    /// Creates the profile and the first tenant admin, or completes an earlier attempt (an
    /// existing profile must have the same name; an existing admin gets the new password).
    /// Platform or system actors only.
    Provision { name: String, admin: NewUserRecord },
    /// A platform administration command (runs on the platform tenant).
    Platform(platform::PlatformAction),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenancyOutput {
    Created(TenantProfile),
    Settings(TenantSettings),
    Provisioned { profile: TenantProfile, admin: User },
    Platform(platform::PlatformOutput),
}

/// Trims a tenant name and checks it is 1..=[`TENANT_NAME_BYTES_MAX`] bytes.
pub(crate) fn check_tenant_name(name: &str) -> Result<String, Rejection> {
    let name = name.trim();
    if name.is_empty() || name.len() > TENANT_NAME_BYTES_MAX {
        return Err(Rejection::InvalidField {
            field: "name".into(),
            reason: format!("must be 1..={TENANT_NAME_BYTES_MAX} bytes"),
        });
    }
    Ok(name.to_string())
}

fn refuse_platform_tenant(ctx: &Ctx<'_, '_>) -> Applied<()> {
    if ctx.tx.tenant() == PLATFORM_TENANT {
        return reject(Rejection::InvalidField {
            field: "tenant".into(),
            reason: "tenant 0 is reserved for the platform".into(),
        });
    }
    Ok(())
}

pub(crate) fn apply(action: &TenancyAction, ctx: &mut Ctx<'_, '_>) -> Applied<TenancyOutput> {
    match action {
        TenancyAction::Create { name } => {
            refuse_platform_tenant(ctx)?;
            let name = check_tenant_name(name).map_err(ApplyError::Rejected)?;
            if ctx.tx.get(&TENANT_PROFILE, &())?.is_some() {
                return reject(Rejection::Conflict {
                    code: "tenant_exists",
                    detail: format!("tenant {} already exists", ctx.tx.tenant()),
                });
            }
            let profile = TenantProfile {
                name,
                created_at_ms: ctx.at_ms,
            };
            ctx.tx.put(&TENANT_PROFILE, &(), &profile)?;
            ctx.audit("tenant.create", format!("tenant/{}", ctx.tx.tenant()));
            Ok(TenancyOutput::Created(profile))
        }
        TenancyAction::UpdateSettings { settings } => {
            refuse_platform_tenant(ctx)?;
            accounts::require(ctx, Permission::ManageTenant)?;
            if !(SESSION_TTL_MS_MIN..=SESSION_TTL_MS_MAX).contains(&settings.session_ttl_ms) {
                return reject(Rejection::InvalidField {
                    field: "session_ttl_ms".into(),
                    reason: format!("must be {SESSION_TTL_MS_MIN}..={SESSION_TTL_MS_MAX}"),
                });
            }
            ctx.tx.put(&TENANT_SETTINGS, &(), settings)?;
            ctx.audit(
                "tenant.settings_update",
                format!("tenant/{}", ctx.tx.tenant()),
            );
            Ok(TenancyOutput::Settings(*settings))
        }
        TenancyAction::Provision { name, admin } => {
            refuse_platform_tenant(ctx)?;
            if !matches!(ctx.actor, Actor::Platform | Actor::System) {
                return reject(Rejection::Forbidden {
                    reason: format!("{} may not provision tenants", ctx.actor),
                });
            }
            let name = check_tenant_name(name).map_err(ApplyError::Rejected)?;
            let profile = match ctx.tx.get(&TENANT_PROFILE, &())? {
                Some(profile) if profile.name == name => profile,
                Some(_) => {
                    return reject(Rejection::Conflict {
                        code: "tenant_exists",
                        detail: format!("tenant {} exists with another name", ctx.tx.tenant()),
                    });
                }
                None => {
                    let profile = TenantProfile {
                        name,
                        created_at_ms: ctx.at_ms,
                    };
                    ctx.tx.put(&TENANT_PROFILE, &(), &profile)?;
                    ctx.audit("tenant.create", format!("tenant/{}", ctx.tx.tenant()));
                    profile
                }
            };
            let email = accounts::normalize_email(&admin.email).map_err(ApplyError::Rejected)?;
            let admin = match accounts::user_by_email(ctx, &email)? {
                Some(user) if user.role == Role::TenantAdmin => {
                    accounts::set_password(ctx, user.id, &admin.password)?;
                    user
                }
                Some(user) => {
                    return reject(Rejection::Conflict {
                        code: "email_taken",
                        detail: format!("user {} has this email and is not an admin", user.id),
                    });
                }
                None => accounts::insert_user(
                    ctx,
                    &NewUserRecord {
                        role: Role::TenantAdmin,
                        ..admin.clone()
                    },
                )?,
            };
            Ok(TenancyOutput::Provisioned { profile, admin })
        }
        TenancyAction::Platform(action) => {
            Ok(TenancyOutput::Platform(platform::apply(action, ctx)?))
        }
    }
}

impl Engine {
    /// The principal's tenant settings (defaults until changed). Any principal of the tenant
    /// may read them.
    pub fn tenant_settings(&self, principal: &Principal) -> Result<TenantSettings, EngineError> {
        if principal.tenant == PLATFORM_TENANT {
            return Err(EngineError::Forbidden(
                "the platform has no tenant settings".into(),
            ));
        }
        Ok(self
            .storage
            .read(principal.tenant)?
            .get(&TENANT_SETTINGS, &())?
            .unwrap_or_default())
    }

    /// Replaces the principal's tenant settings (needs [`Permission::ManageTenant`]). A new
    /// session lifetime applies to sessions created afterwards.
    pub async fn update_tenant_settings(
        &self,
        principal: &Principal,
        settings: TenantSettings,
    ) -> Result<TenantSettings, EngineError> {
        principal.require(Permission::ManageTenant)?;
        let action = Action::Tenancy(TenancyAction::UpdateSettings { settings });
        match self
            .run(principal.tenant, principal.actor.clone(), action)
            .await?
        {
            CommandOutput::Tenancy(TenancyOutput::Settings(settings)) => Ok(settings),
            other => Err(EngineError::UnexpectedOutput(format!("{other:?}"))),
        }
    }
}
