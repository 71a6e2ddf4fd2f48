//! Who is asking and what they may do: roles, API-key scopes, permissions and the
//! [`Principal`] that `Engine::authenticate` returns.
//!
//! The rule is one pure function, [`Principal::can`]: a permission is granted when the
//! principal's role allows it *and* its scopes cover it. Users carry every scope (their role is
//! the whole story); API keys carry a role chosen by the admin who made them, narrowed by the
//! scopes they were given. The platform principal can only administer the platform.

use crate::command::Actor;
use mercato_storage::TenantId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A user's (or an API key's) role in its tenant. Manufacturers and retailers are catalog
/// records; only their ids are kept here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// The distributor's staff: everything in the tenant.
    TenantAdmin,
    /// Staff of one manufacturer (vendor): its catalog, stock and sub-orders.
    ManufacturerUser { manufacturer_id: u64 },
    /// Orders for one retailer (buyer company).
    Buyer { retailer_id: u64 },
    /// A buyer who may also approve the retailer's orders above its approval threshold.
    BuyerApprover { retailer_id: u64 },
    /// Reviews manufacturers (verification) and catalog content.
    Reviewer,
}

impl Role {
    /// Whether this role, ignoring scopes, allows `permission`.
    pub fn allows(self, permission: Permission) -> bool {
        use Permission as P;
        match self {
            Role::TenantAdmin => permission != P::ManagePlatform,
            Role::ManufacturerUser { manufacturer_id: m } => match permission {
                P::ReadCatalog | P::WriteDocuments => true,
                P::ManageCatalog { manufacturer_id }
                | P::ManageInventory { manufacturer_id }
                | P::ViewManufacturerOrders { manufacturer_id }
                | P::FulfilOrder { manufacturer_id } => manufacturer_id == m,
                _ => false,
            },
            Role::Buyer { retailer_id: r } => match permission {
                P::ReadCatalog | P::WriteDocuments => true,
                P::ViewRetailerOrders { retailer_id } | P::PlaceOrder { retailer_id } => {
                    retailer_id == r
                }
                _ => false,
            },
            Role::BuyerApprover { retailer_id: r } => match permission {
                P::ApproveOrder { retailer_id } => retailer_id == r,
                other => Role::Buyer { retailer_id: r }.allows(other),
            },
            Role::Reviewer => matches!(permission, P::ReadCatalog | P::Review | P::ReadAudit),
        }
    }
}

/// What an API key may be used for. Bit positions are part of the on-disk format of
/// [`ScopeSet`]: only ever add scopes at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    CatalogRead = 0,
    CatalogWrite = 1,
    InventoryWrite = 2,
    OrdersRead = 3,
    OrdersWrite = 4,
    DocumentsWrite = 5,
    /// Everything the key's role allows, including administration.
    Admin = 6,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::CatalogRead,
        Scope::CatalogWrite,
        Scope::InventoryWrite,
        Scope::OrdersRead,
        Scope::OrdersWrite,
        Scope::DocumentsWrite,
        Scope::Admin,
    ];

    /// The wire name, e.g. `catalog:read`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::CatalogRead => "catalog:read",
            Scope::CatalogWrite => "catalog:write",
            Scope::InventoryWrite => "inventory:write",
            Scope::OrdersRead => "orders:read",
            Scope::OrdersWrite => "orders:write",
            Scope::DocumentsWrite => "documents:write",
            Scope::Admin => "admin",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes (a bit set; unknown bits from a newer build are ignored).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScopeSet(u16);

impl ScopeSet {
    pub const EMPTY: ScopeSet = ScopeSet(0);
    /// Every scope: what a signed-in user carries.
    pub const ALL: ScopeSet = ScopeSet((1 << Scope::ALL.len()) - 1);

    pub fn of(scopes: &[Scope]) -> ScopeSet {
        ScopeSet(scopes.iter().fold(0, |bits, s| bits | s.bit()))
    }

    /// Parses wire names (`["catalog:read", "orders:write"]`); the first unknown name is the
    /// error.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<ScopeSet, String> {
        let mut set = ScopeSet::EMPTY;
        for name in names {
            match Scope::parse(name) {
                Some(scope) => set = set.with(scope),
                None => return Err(name.to_string()),
            }
        }
        Ok(set)
    }

    pub fn with(self, scope: Scope) -> ScopeSet {
        ScopeSet(self.0 | scope.bit())
    }

    /// Whether `scope` is literally in the set.
    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Whether the set covers `scope`: write scopes cover their read scope, `admin` covers all.
    pub fn grants(self, scope: Scope) -> bool {
        self.contains(scope)
            || self.contains(Scope::Admin)
            || match scope {
                Scope::CatalogRead => self.contains(Scope::CatalogWrite),
                Scope::OrdersRead => self.contains(Scope::OrdersWrite),
                _ => false,
            }
    }

    pub fn is_empty(self) -> bool {
        self.0 & ScopeSet::ALL.0 == 0
    }

    /// The known scopes in the set, in bit order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(Scope::as_str))
            .finish()
    }
}

/// Something a principal may or may not do. The server checks one before each operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Create and list tenants, rotate the platform token. Only the platform principal.
    ManagePlatform,
    /// Tenant profile and settings.
    ManageTenant,
    /// Users, their status, passwords and sessions.
    ManageUsers,
    ManageApiKeys,
    ReadAudit,
    ReadCatalog,
    /// Create and edit manufacturer companies.
    ManageManufacturers,
    /// Create and edit retailer companies (terms, credit limits, groups).
    ManageRetailers,
    /// Verify manufacturers and review catalog content.
    Review,
    /// Products, prices and images of one manufacturer.
    ManageCatalog {
        manufacturer_id: u64,
    },
    /// Stock of one manufacturer's products.
    ManageInventory {
        manufacturer_id: u64,
    },
    /// Upload documents and attachments.
    WriteDocuments,
    ViewRetailerOrders {
        retailer_id: u64,
    },
    PlaceOrder {
        retailer_id: u64,
    },
    ApproveOrder {
        retailer_id: u64,
    },
    ViewManufacturerOrders {
        manufacturer_id: u64,
    },
    /// Confirm, ship, deliver or cancel one manufacturer's sub-orders.
    FulfilOrder {
        manufacturer_id: u64,
    },
}

impl Permission {
    /// The scope an API key needs for this permission (`None`: only the platform principal).
    pub fn required_scope(self) -> Option<Scope> {
        use Permission as P;
        Some(match self {
            P::ManagePlatform => return None,
            P::ManageTenant
            | P::ManageUsers
            | P::ManageApiKeys
            | P::ReadAudit
            | P::ManageManufacturers
            | P::ManageRetailers
            | P::Review
            | P::ApproveOrder { .. } => Scope::Admin,
            P::ReadCatalog => Scope::CatalogRead,
            P::ManageCatalog { .. } => Scope::CatalogWrite,
            P::ManageInventory { .. } => Scope::InventoryWrite,
            P::WriteDocuments => Scope::DocumentsWrite,
            P::ViewRetailerOrders { .. } | P::ViewManufacturerOrders { .. } => Scope::OrdersRead,
            P::PlaceOrder { .. } | P::FulfilOrder { .. } => Scope::OrdersWrite,
        })
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Permission as P;
        match self {
            P::ManagePlatform => write!(f, "manage the platform"),
            P::ManageTenant => write!(f, "manage the tenant"),
            P::ManageUsers => write!(f, "manage users"),
            P::ManageApiKeys => write!(f, "manage API keys"),
            P::ReadAudit => write!(f, "read the audit log"),
            P::ReadCatalog => write!(f, "read the catalog"),
            P::ManageManufacturers => write!(f, "manage manufacturers"),
            P::ManageRetailers => write!(f, "manage retailers"),
            P::Review => write!(f, "review"),
            P::ManageCatalog { manufacturer_id } => {
                write!(f, "manage the catalog of manufacturer {manufacturer_id}")
            }
            P::ManageInventory { manufacturer_id } => {
                write!(f, "manage the inventory of manufacturer {manufacturer_id}")
            }
            P::WriteDocuments => write!(f, "write documents"),
            P::ViewRetailerOrders { retailer_id } => {
                write!(f, "view the orders of retailer {retailer_id}")
            }
            P::PlaceOrder { retailer_id } => write!(f, "place orders for retailer {retailer_id}"),
            P::ApproveOrder { retailer_id } => {
                write!(f, "approve orders of retailer {retailer_id}")
            }
            P::ViewManufacturerOrders { manufacturer_id } => {
                write!(f, "view the orders of manufacturer {manufacturer_id}")
            }
            P::FulfilOrder { manufacturer_id } => {
                write!(f, "fulfil the orders of manufacturer {manufacturer_id}")
            }
        }
    }
}

/// An authenticated caller: its tenant (from the credential, never from the request), who it
/// is, its role and its scopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub tenant: TenantId,
    pub actor: Actor,
    /// `None` for the platform principal.
    pub role: Option<Role>,
    /// [`ScopeSet::ALL`] for users; what the key was given for API keys.
    pub scopes: ScopeSet,
}

impl Principal {
    /// A signed-in user.
    pub fn user(tenant: TenantId, user_id: u64, role: Role) -> Principal {
        Principal {
            tenant,
            actor: Actor::User(user_id),
            role: Some(role),
            scopes: ScopeSet::ALL,
        }
    }

    /// An integration authenticated by an API key.
    pub fn api_key(tenant: TenantId, key_id: u64, role: Role, scopes: ScopeSet) -> Principal {
        Principal {
            tenant,
            actor: Actor::ApiKey(key_id),
            role: Some(role),
            scopes,
        }
    }

    /// The holder of the platform token.
    pub fn platform() -> Principal {
        Principal {
            tenant: crate::platform::PLATFORM_TENANT,
            actor: Actor::Platform,
            role: None,
            scopes: ScopeSet::EMPTY,
        }
    }

    /// Whether this principal may do `permission`: its role allows it and its scopes cover it.
    pub fn can(&self, permission: Permission) -> bool {
        if self.actor == Actor::Platform {
            return permission == Permission::ManagePlatform;
        }
        let (Some(role), Some(scope)) = (self.role, permission.required_scope()) else {
            return false;
        };
        role.allows(permission) && self.scopes.grants(scope)
    }

    /// `Ok` if [`Principal::can`], else [`crate::EngineError::Forbidden`].
    pub fn require(&self, permission: Permission) -> Result<(), crate::EngineError> {
        if self.can(permission) {
            Ok(())
        } else {
            Err(crate::EngineError::Forbidden(format!(
                "{} may not {permission}",
                self.actor
            )))
        }
    }
}
