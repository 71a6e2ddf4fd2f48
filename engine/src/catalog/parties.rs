//! Catalog settings and the parties of the marketplace: manufacturers (vendors), customer
//! groups and retailers (buyer companies).

use super::validate;
use super::{
    CatalogAction, CatalogOutput, ManufacturerInput, Page, RetailerInput, checked, list_by_id,
    not_found, settings, unexpected,
};
use crate::command::{Applied, Ctx, Rejection, reject};
use crate::tables::{
    CATALOG_SETTINGS, CUSTOMER_GROUPS, CatalogSettings, CustomerGroup, IndexMark, MANUFACTURERS,
    Manufacturer, PRICE_LIST, PRODUCTS, RETAILERS, RETAILERS_BY_GROUP, Retailer,
    VerificationStatus,
};
use crate::{Actor, Engine, EngineError, TenantId};
use mercato_storage::{StorageError, TenantReads};

pub(super) fn apply_set_settings(
    ctx: &mut Ctx<'_, '_>,
    new: &CatalogSettings,
) -> Applied<CatalogOutput> {
    if !new.currency.is_valid() {
        return reject(Rejection::InvalidField {
            field: "currency".into(),
            reason: "must be three uppercase ASCII letters".into(),
        });
    }
    let current = settings(ctx.tx)?;
    if current.currency != new.currency {
        // Every amount of the catalog is in the tenant's currency: switching it under existing
        // prices would silently reprice them.
        let in_use = !ctx.tx.scan(&PRODUCTS, &(), None, 1)?.is_empty()
            || !ctx.tx.scan(&RETAILERS, &(), None, 1)?.is_empty()
            || !ctx.tx.scan(&PRICE_LIST, &(), None, 1)?.is_empty();
        if in_use {
            return reject(Rejection::Conflict {
                code: "currency_in_use",
                detail: format!(
                    "the catalog already has amounts in {}; the currency cannot change",
                    current.currency
                ),
            });
        }
    }
    ctx.tx.put(&CATALOG_SETTINGS, &(), new)?;
    ctx.audit("catalog.settings", "catalog/settings");
    Ok(CatalogOutput::Settings(new.clone()))
}

fn manufacturer_fields(input: &ManufacturerInput) -> Result<String, Rejection> {
    let name = validate::name("name", &input.name)?;
    if !input.country.0.iter().all(u8::is_ascii_uppercase) {
        return Err(Rejection::InvalidField {
            field: "country".into(),
            reason: "must be an ISO 3166 alpha-2 code".into(),
        });
    }
    Ok(name)
}

pub(super) fn apply_create_manufacturer(
    ctx: &mut Ctx<'_, '_>,
    input: &ManufacturerInput,
) -> Applied<CatalogOutput> {
    let name = checked(manufacturer_fields(input))?;
    let id = ctx.next_id("manufacturer")?;
    let m = Manufacturer {
        id,
        name,
        country: input.country,
        verification: VerificationStatus::Unverified,
        created_at_ms: ctx.at_ms,
        updated_at_ms: ctx.at_ms,
    };
    ctx.tx.put(&MANUFACTURERS, &id, &m)?;
    ctx.audit("manufacturer.create", format!("manufacturer/{id}"));
    Ok(CatalogOutput::Manufacturer(m))
}

fn existing_manufacturer(ctx: &Ctx<'_, '_>, id: u64) -> Applied<Manufacturer> {
    match ctx.tx.get(&MANUFACTURERS, &id)? {
        Some(m) => Ok(m),
        None => reject(not_found("manufacturer", id)),
    }
}

pub(super) fn apply_update_manufacturer(
    ctx: &mut Ctx<'_, '_>,
    id: u64,
    input: &ManufacturerInput,
) -> Applied<CatalogOutput> {
    let name = checked(manufacturer_fields(input))?;
    let mut m = existing_manufacturer(ctx, id)?;
    m.name = name;
    m.country = input.country;
    m.updated_at_ms = ctx.at_ms;
    ctx.tx.put(&MANUFACTURERS, &id, &m)?;
    ctx.audit("manufacturer.update", format!("manufacturer/{id}"));
    Ok(CatalogOutput::Manufacturer(m))
}

pub(super) fn apply_set_verification(
    ctx: &mut Ctx<'_, '_>,
    id: u64,
    status: VerificationStatus,
) -> Applied<CatalogOutput> {
    let mut m = existing_manufacturer(ctx, id)?;
    m.verification = status;
    m.updated_at_ms = ctx.at_ms;
    ctx.tx.put(&MANUFACTURERS, &id, &m)?;
    ctx.audit("manufacturer.verification", format!("manufacturer/{id}"));
    Ok(CatalogOutput::Manufacturer(m))
}

pub(super) fn apply_create_group(ctx: &mut Ctx<'_, '_>, name: &str) -> Applied<CatalogOutput> {
    let name = checked(validate::name("name", name))?;
    let id = ctx.next_id("customer_group")?;
    let group = CustomerGroup {
        id,
        name,
        created_at_ms: ctx.at_ms,
    };
    ctx.tx.put(&CUSTOMER_GROUPS, &id, &group)?;
    ctx.audit("customer_group.create", format!("customer_group/{id}"));
    Ok(CatalogOutput::CustomerGroup(group))
}

pub(super) fn apply_rename_group(
    ctx: &mut Ctx<'_, '_>,
    id: u64,
    name: &str,
) -> Applied<CatalogOutput> {
    let name = checked(validate::name("name", name))?;
    let Some(mut group) = ctx.tx.get(&CUSTOMER_GROUPS, &id)? else {
        return reject(not_found("customer_group", id));
    };
    group.name = name;
    ctx.tx.put(&CUSTOMER_GROUPS, &id, &group)?;
    ctx.audit("customer_group.rename", format!("customer_group/{id}"));
    Ok(CatalogOutput::CustomerGroup(group))
}

/// Checks a retailer input against the tenant's state; returns the retailer without id and
/// times.
fn retailer_fields(ctx: &Ctx<'_, '_>, input: &RetailerInput) -> Applied<Retailer> {
    let currency = settings(ctx.tx)?.currency;
    let name = checked(validate::name("name", &input.name))?;
    let credit_limit = checked(validate::amount(
        "credit_limit",
        input.credit_limit,
        currency,
    ))?;
    let approval_threshold = match input.approval_threshold {
        Some(t) => Some(checked(validate::amount(
            "approval_threshold",
            t,
            currency,
        ))?),
        None => None,
    };
    let addresses = checked(validate::addresses(&input.addresses))?;
    if let Some(group) = input.customer_group_id
        && ctx.tx.get(&CUSTOMER_GROUPS, &group)?.is_none()
    {
        return reject(Rejection::InvalidField {
            field: "customer_group_id".into(),
            reason: format!("customer group {group} does not exist"),
        });
    }
    Ok(Retailer {
        id: 0,
        name,
        customer_group_id: input.customer_group_id,
        payment_terms: input.payment_terms,
        credit_limit,
        approval_threshold,
        addresses,
        created_at_ms: 0,
        updated_at_ms: 0,
    })
}

pub(super) fn apply_create_retailer(
    ctx: &mut Ctx<'_, '_>,
    input: &RetailerInput,
) -> Applied<CatalogOutput> {
    let mut r = retailer_fields(ctx, input)?;
    let id = ctx.next_id("retailer")?;
    r.id = id;
    r.created_at_ms = ctx.at_ms;
    r.updated_at_ms = ctx.at_ms;
    if let Some(group) = r.customer_group_id {
        ctx.tx.put(&RETAILERS_BY_GROUP, &(group, id), &IndexMark)?;
    }
    ctx.tx.put(&RETAILERS, &id, &r)?;
    ctx.audit("retailer.create", format!("retailer/{id}"));
    Ok(CatalogOutput::Retailer(r))
}

pub(super) fn apply_update_retailer(
    ctx: &mut Ctx<'_, '_>,
    id: u64,
    input: &RetailerInput,
) -> Applied<CatalogOutput> {
    let Some(old) = ctx.tx.get(&RETAILERS, &id)? else {
        return reject(not_found("retailer", id));
    };
    let mut r = retailer_fields(ctx, input)?;
    r.id = id;
    r.created_at_ms = old.created_at_ms;
    r.updated_at_ms = ctx.at_ms;
    if old.customer_group_id != r.customer_group_id {
        if let Some(group) = old.customer_group_id {
            ctx.tx.delete(&RETAILERS_BY_GROUP, &(group, id))?;
        }
        if let Some(group) = r.customer_group_id {
            ctx.tx.put(&RETAILERS_BY_GROUP, &(group, id), &IndexMark)?;
        }
    }
    ctx.tx.put(&RETAILERS, &id, &r)?;
    ctx.audit("retailer.update", format!("retailer/{id}"));
    Ok(CatalogOutput::Retailer(r))
}

/// A manufacturer by id.
pub fn manufacturer(
    read: &impl TenantReads,
    id: u64,
) -> Result<Option<Manufacturer>, StorageError> {
    read.get(&MANUFACTURERS, &id)
}

/// Manufacturers in id order, after `after`, at most `limit` (clamped to `PAGE_LIMIT_MAX`).
pub fn list_manufacturers(
    read: &impl TenantReads,
    after: Option<u64>,
    limit: usize,
) -> Result<Page<Manufacturer>, StorageError> {
    list_by_id(read, &MANUFACTURERS, after, limit)
}

/// A retailer by id.
pub fn retailer(read: &impl TenantReads, id: u64) -> Result<Option<Retailer>, StorageError> {
    read.get(&RETAILERS, &id)
}

/// Retailers in id order; with `group`, only that customer group's retailers.
pub fn list_retailers(
    read: &impl TenantReads,
    group: Option<u64>,
    after: Option<u64>,
    limit: usize,
) -> Result<Page<Retailer>, StorageError> {
    let Some(group) = group else {
        return list_by_id(read, &RETAILERS, after, limit);
    };
    let limit = validate::page_limit(limit);
    let after_key = after.map(|a| (group, a));
    let mut rows = read.scan(&RETAILERS_BY_GROUP, &group, after_key.as_ref(), limit + 1)?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let mut items = Vec::with_capacity(rows.len());
    for ((_, id), _) in &rows {
        if let Some(r) = read.get(&RETAILERS, id)? {
            items.push(r);
        }
    }
    Ok(Page {
        items,
        next_after: if more {
            rows.last().map(|((_, id), _)| *id)
        } else {
            None
        },
    })
}

/// A customer group by id.
pub fn customer_group(
    read: &impl TenantReads,
    id: u64,
) -> Result<Option<CustomerGroup>, StorageError> {
    read.get(&CUSTOMER_GROUPS, &id)
}

/// Customer groups in id order.
pub fn list_customer_groups(
    read: &impl TenantReads,
    after: Option<u64>,
    limit: usize,
) -> Result<Page<CustomerGroup>, StorageError> {
    list_by_id(read, &CUSTOMER_GROUPS, after, limit)
}

impl Engine {
    async fn manufacturer_action(
        &self,
        tenant: TenantId,
        actor: Actor,
        action: CatalogAction,
    ) -> Result<Manufacturer, EngineError> {
        match self.run_catalog(tenant, actor, action).await? {
            CatalogOutput::Manufacturer(m) => Ok(m),
            other => Err(unexpected(other)),
        }
    }

    /// Creates a manufacturer, `Unverified`.
    pub async fn create_manufacturer(
        &self,
        tenant: TenantId,
        actor: Actor,
        input: ManufacturerInput,
    ) -> Result<Manufacturer, EngineError> {
        self.manufacturer_action(tenant, actor, CatalogAction::CreateManufacturer(input))
            .await
    }

    /// Replaces a manufacturer's name and country.
    pub async fn update_manufacturer(
        &self,
        tenant: TenantId,
        actor: Actor,
        id: u64,
        input: ManufacturerInput,
    ) -> Result<Manufacturer, EngineError> {
        self.manufacturer_action(
            tenant,
            actor,
            CatalogAction::UpdateManufacturer { id, input },
        )
        .await
    }

    /// Sets a manufacturer's verification status (today by a tenant admin or the system; later
    /// driven by document verification).
    pub async fn set_manufacturer_verification(
        &self,
        tenant: TenantId,
        actor: Actor,
        id: u64,
        status: VerificationStatus,
    ) -> Result<Manufacturer, EngineError> {
        self.manufacturer_action(
            tenant,
            actor,
            CatalogAction::SetManufacturerVerification { id, status },
        )
        .await
    }

    /// A manufacturer by id. Served from the read cache when it can (see [`crate::cache`]).
    pub fn manufacturer(
        &self,
        tenant: TenantId,
        id: u64,
    ) -> Result<Option<Manufacturer>, EngineError> {
        Ok(self
            .storage
            .read_cache()
            .get_or_read(tenant, id, || manufacturer(&self.storage.read(tenant)?, id))?)
    }

    /// Manufacturers in id order.
    pub fn list_manufacturers(
        &self,
        tenant: TenantId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page<Manufacturer>, EngineError> {
        Ok(list_manufacturers(
            &self.storage.read(tenant)?,
            after,
            limit,
        )?)
    }

    async fn group_action(
        &self,
        tenant: TenantId,
        actor: Actor,
        action: CatalogAction,
    ) -> Result<CustomerGroup, EngineError> {
        match self.run_catalog(tenant, actor, action).await? {
            CatalogOutput::CustomerGroup(g) => Ok(g),
            other => Err(unexpected(other)),
        }
    }

    /// Creates a customer group.
    pub async fn create_customer_group(
        &self,
        tenant: TenantId,
        actor: Actor,
        name: &str,
    ) -> Result<CustomerGroup, EngineError> {
        let action = CatalogAction::CreateCustomerGroup {
            name: name.to_string(),
        };
        self.group_action(tenant, actor, action).await
    }

    /// Renames a customer group.
    pub async fn rename_customer_group(
        &self,
        tenant: TenantId,
        actor: Actor,
        id: u64,
        name: &str,
    ) -> Result<CustomerGroup, EngineError> {
        let action = CatalogAction::RenameCustomerGroup {
            id,
            name: name.to_string(),
        };
        self.group_action(tenant, actor, action).await
    }

    /// A customer group by id.
    pub fn customer_group(
        &self,
        tenant: TenantId,
        id: u64,
    ) -> Result<Option<CustomerGroup>, EngineError> {
        Ok(customer_group(&self.storage.read(tenant)?, id)?)
    }

    /// Customer groups in id order.
    pub fn list_customer_groups(
        &self,
        tenant: TenantId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page<CustomerGroup>, EngineError> {
        Ok(list_customer_groups(
            &self.storage.read(tenant)?,
            after,
            limit,
        )?)
    }

    async fn retailer_action(
        &self,
        tenant: TenantId,
        actor: Actor,
        action: CatalogAction,
    ) -> Result<Retailer, EngineError> {
        match self.run_catalog(tenant, actor, action).await? {
            CatalogOutput::Retailer(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// Creates a retailer (buyer company).
    pub async fn create_retailer(
        &self,
        tenant: TenantId,
        actor: Actor,
        input: RetailerInput,
    ) -> Result<Retailer, EngineError> {
        self.retailer_action(tenant, actor, CatalogAction::CreateRetailer(input))
            .await
    }

    /// Replaces a retailer's name, group, terms, credit limit, approval threshold and
    /// addresses.
    pub async fn update_retailer(
        &self,
        tenant: TenantId,
        actor: Actor,
        id: u64,
        input: RetailerInput,
    ) -> Result<Retailer, EngineError> {
        self.retailer_action(tenant, actor, CatalogAction::UpdateRetailer { id, input })
            .await
    }

    /// A retailer by id. Served from the read cache when it can (see [`crate::cache`]).
    pub fn retailer(&self, tenant: TenantId, id: u64) -> Result<Option<Retailer>, EngineError> {
        Ok(self
            .storage
            .read_cache()
            .get_or_read(tenant, id, || retailer(&self.storage.read(tenant)?, id))?)
    }

    /// Retailers in id order, optionally only those of one customer group.
    pub fn list_retailers(
        &self,
        tenant: TenantId,
        group: Option<u64>,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page<Retailer>, EngineError> {
        Ok(list_retailers(
            &self.storage.read(tenant)?,
            group,
            after,
            limit,
        )?)
    }
}
