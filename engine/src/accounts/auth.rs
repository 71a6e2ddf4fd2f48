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

#[cfg(test)]
mod tests {
    use super::*;
    use Permission as P;

    const T: TenantId = TenantId(9);

    /// One permission of every kind, for manufacturer 1 / retailer 1 where it takes an id.
    fn every_permission() -> Vec<Permission> {
        vec![
            P::ManagePlatform,
            P::ManageTenant,
            P::ManageUsers,
            P::ManageApiKeys,
            P::ReadAudit,
            P::ReadCatalog,
            P::ManageManufacturers,
            P::ManageRetailers,
            P::Review,
            P::ManageCatalog { manufacturer_id: 1 },
            P::ManageInventory { manufacturer_id: 1 },
            P::WriteDocuments,
            P::ViewRetailerOrders { retailer_id: 1 },
            P::PlaceOrder { retailer_id: 1 },
            P::ApproveOrder { retailer_id: 1 },
            P::ViewManufacturerOrders { manufacturer_id: 1 },
            P::FulfilOrder { manufacturer_id: 1 },
        ]
    }

    fn allowed(principal: &Principal) -> Vec<Permission> {
        every_permission()
            .into_iter()
            .filter(|p| principal.can(*p))
            .collect()
    }

    #[test]
    fn the_platform_principal_only_manages_the_platform() {
        assert_eq!(allowed(&Principal::platform()), vec![P::ManagePlatform]);
    }

    #[test]
    fn a_tenant_admin_may_do_everything_in_its_tenant() {
        let admin = Principal::user(T, 1, Role::TenantAdmin);
        assert_eq!(allowed(&admin), every_permission()[1..].to_vec());
        assert!(admin.can(P::ManageCatalog {
            manufacturer_id: 77
        }));
    }

    #[test]
    fn manufacturer_users_are_bound_to_their_manufacturer() {
        let user = Principal::user(T, 2, Role::ManufacturerUser { manufacturer_id: 1 });
        assert_eq!(
            allowed(&user),
            vec![
                P::ReadCatalog,
                P::ManageCatalog { manufacturer_id: 1 },
                P::ManageInventory { manufacturer_id: 1 },
                P::WriteDocuments,
                P::ViewManufacturerOrders { manufacturer_id: 1 },
                P::FulfilOrder { manufacturer_id: 1 },
            ]
        );
        for other in [
            P::ManageCatalog { manufacturer_id: 2 },
            P::ManageInventory { manufacturer_id: 2 },
            P::ViewManufacturerOrders { manufacturer_id: 2 },
            P::FulfilOrder { manufacturer_id: 2 },
        ] {
            assert!(!user.can(other), "{other}");
        }
    }

    #[test]
    fn buyers_order_for_their_retailer_and_only_approvers_approve() {
        let buyer = Principal::user(T, 3, Role::Buyer { retailer_id: 1 });
        let buyer_perms = vec![
            P::ReadCatalog,
            P::WriteDocuments,
            P::ViewRetailerOrders { retailer_id: 1 },
            P::PlaceOrder { retailer_id: 1 },
        ];
        assert_eq!(allowed(&buyer), buyer_perms);
        let approver = Principal::user(T, 4, Role::BuyerApprover { retailer_id: 1 });
        assert_eq!(
            allowed(&approver),
            vec![
                P::ReadCatalog,
                P::WriteDocuments,
                P::ViewRetailerOrders { retailer_id: 1 },
                P::PlaceOrder { retailer_id: 1 },
                P::ApproveOrder { retailer_id: 1 },
            ]
        );
        for p in [buyer, approver] {
            assert!(!p.can(P::PlaceOrder { retailer_id: 2 }));
            assert!(!p.can(P::ApproveOrder { retailer_id: 2 }));
            assert!(!p.can(P::ViewRetailerOrders { retailer_id: 2 }));
        }
    }

    #[test]
    fn reviewers_review_and_read() {
        let reviewer = Principal::user(T, 5, Role::Reviewer);
        assert_eq!(
            allowed(&reviewer),
            vec![P::ReadAudit, P::ReadCatalog, P::Review]
        );
    }

    #[test]
    fn api_keys_are_narrowed_by_their_scopes() {
        let read_only =
            Principal::api_key(T, 1, Role::TenantAdmin, ScopeSet::of(&[Scope::CatalogRead]));
        assert_eq!(allowed(&read_only), vec![P::ReadCatalog]);

        let writer = Principal::api_key(
            T,
            2,
            Role::TenantAdmin,
            ScopeSet::of(&[Scope::CatalogWrite, Scope::OrdersWrite]),
        );
        assert_eq!(
            allowed(&writer),
            vec![
                P::ReadCatalog,
                P::ManageCatalog { manufacturer_id: 1 },
                P::ViewRetailerOrders { retailer_id: 1 },
                P::PlaceOrder { retailer_id: 1 },
                P::ViewManufacturerOrders { manufacturer_id: 1 },
                P::FulfilOrder { manufacturer_id: 1 },
            ]
        );

        // A key acting for a manufacturer cannot exceed its role, whatever its scopes.
        let vendor_erp = Principal::api_key(
            T,
            3,
            Role::ManufacturerUser { manufacturer_id: 1 },
            ScopeSet::of(&[Scope::Admin]),
        );
        assert!(vendor_erp.can(P::ManageInventory { manufacturer_id: 1 }));
        assert!(!vendor_erp.can(P::ManageInventory { manufacturer_id: 2 }));
        assert!(!vendor_erp.can(P::ManageUsers));

        let admin_key = Principal::api_key(T, 4, Role::TenantAdmin, ScopeSet::of(&[Scope::Admin]));
        assert_eq!(allowed(&admin_key), every_permission()[1..].to_vec());

        let nothing = Principal::api_key(T, 5, Role::TenantAdmin, ScopeSet::EMPTY);
        assert!(allowed(&nothing).is_empty());
    }

    #[test]
    fn a_principal_without_a_role_may_do_nothing() {
        let odd = Principal {
            tenant: T,
            actor: Actor::System,
            role: None,
            scopes: ScopeSet::ALL,
        };
        assert!(allowed(&odd).is_empty());
        assert!(matches!(
            odd.require(P::ReadCatalog),
            Err(crate::EngineError::Forbidden(_))
        ));
    }

    #[test]
    fn scope_names_roundtrip_and_unknown_names_are_refused() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
        }
        let set = ScopeSet::parse(["orders:read", "admin"]).unwrap();
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![Scope::OrdersRead, Scope::Admin]
        );
        assert_eq!(format!("{set:?}"), r#"{"orders:read", "admin"}"#);
        assert_eq!(
            ScopeSet::parse(["orders:delete"]),
            Err("orders:delete".to_string())
        );
        assert!(ScopeSet::EMPTY.is_empty());
        assert_eq!(ScopeSet::ALL.iter().count(), Scope::ALL.len());
    }
}
