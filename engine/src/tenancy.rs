//! Tenants: a distributor's marketplace and its profile.

use crate::command::{Applied, Ctx, Rejection, reject};
use crate::tables::{TENANT_PROFILE, TenantProfile};
use mercato_storage::TenantReads;
use serde::{Deserialize, Serialize};

/// Upper bound on a tenant's display name, in bytes.
pub const TENANT_NAME_BYTES_MAX: usize = 200;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TenancyAction {
    /// Creates the tenant's profile.
    Create { name: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenancyOutput {
    Created(TenantProfile),
}

pub(crate) fn apply(action: &TenancyAction, ctx: &mut Ctx<'_, '_>) -> Applied<TenancyOutput> {
    match action {
        TenancyAction::Create { name } => {
            let name = name.trim();
            if name.is_empty() || name.len() > TENANT_NAME_BYTES_MAX {
                return reject(Rejection::InvalidField {
                    field: "name".into(),
                    reason: format!("must be 1..={TENANT_NAME_BYTES_MAX} bytes"),
                });
            }
            if ctx.tx.get(&TENANT_PROFILE, &())?.is_some() {
                return reject(Rejection::Conflict {
                    code: "tenant_exists",
                    detail: format!("tenant {} already exists", ctx.tx.tenant()),
                });
            }
            let profile = TenantProfile {
                name: name.to_string(),
                created_at_ms: ctx.at_ms,
            };
            ctx.tx.put(&TENANT_PROFILE, &(), &profile)?;
            ctx.audit("tenant.create", format!("tenant/{}", ctx.tx.tenant()));
            Ok(TenancyOutput::Created(profile))
        }
    }
}
