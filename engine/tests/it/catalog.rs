//! The catalog through the engine's API, on real storage in a temp dir: every flow and every
//! rejection.

use mercato_engine::audit::{AuditQuery, ChainCheck};
use mercato_engine::catalog::{
    CategoryInput, ImportMode, ImportPhase, ImportProgress, ManufacturerInput, ProductInput,
    ProductQuery, RetailerInput,
};
use mercato_engine::money::{Currency, Money};
use mercato_engine::tables::{
    Address, CatalogSettings, CountryCode, PaymentTerms, PriceTier, ProductStatus,
    VerificationStatus,
};
use mercato_engine::{Actor, Engine, EngineConfig, EngineError, Rejection, TenantId};
use std::cell::RefCell;
use std::collections::BTreeMap;

const T: TenantId = TenantId(1);
const OTHER: TenantId = TenantId(2);
const ADMIN: Actor = Actor::User(1);

struct Fixture {
    _dir: tempfile::TempDir,
    engine: Engine,
}

async fn setup() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
    engine.create_tenant(T, "Tenant One").await.unwrap();
    engine.create_tenant(OTHER, "Tenant Two").await.unwrap();
    Fixture { _dir: dir, engine }
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

fn de() -> CountryCode {
    CountryCode::parse("DE").unwrap()
}

fn tier(min_qty: u32, minor: i64) -> PriceTier {
    PriceTier {
        min_qty,
        unit_price: eur(minor),
    }
}

fn maker(name: &str) -> ManufacturerInput {
    ManufacturerInput {
        name: name.into(),
        country: de(),
    }
}

fn item(manufacturer_id: u64, sku: &str) -> ProductInput {
    ProductInput {
        manufacturer_id,
        sku: sku.into(),
        name: format!("Product {sku}"),
        description: "A product".into(),
        category_id: None,
        attributes: BTreeMap::new(),
        images: Vec::new(),
        unit_of_measure: "each".into(),
        case_pack: 1,
        min_order_qty: 1,
        base_price: eur(1000),
        tiers: Vec::new(),
    }
}

fn address(label: &str) -> Address {
    Address {
        label: label.into(),
        line1: "Hauptstr. 1".into(),
        line2: None,
        city: "Berlin".into(),
        postal_code: "10115".into(),
        region: None,
        country: de(),
    }
}

fn buyer(name: &str, group: Option<u64>) -> RetailerInput {
    RetailerInput {
        name: name.into(),
        customer_group_id: group,
        payment_terms: PaymentTerms::Net30,
        credit_limit: eur(1_000_000),
        approval_threshold: Some(eur(50_000)),
        addresses: vec![address("Main")],
    }
}

/// A change that makes a product input invalid.
type Mutation = Box<dyn Fn(&mut ProductInput)>;

/// The rejection of a failed call (panics on success or another error).
fn rejection<T: std::fmt::Debug>(result: Result<T, EngineError>) -> Rejection {
    match result {
        Err(EngineError::Rejected(r)) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn invalid_field<T: std::fmt::Debug>(result: Result<T, EngineError>) -> String {
    match rejection(result) {
        Rejection::InvalidField { field, .. } => field,
        other => panic!("expected an invalid field, got {other:?}"),
    }
}

fn conflict<T: std::fmt::Debug>(result: Result<T, EngineError>) -> &'static str {
    match rejection(result) {
        Rejection::Conflict { code, .. } => code,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

fn not_found<T: std::fmt::Debug>(result: Result<T, EngineError>) -> &'static str {
    match rejection(result) {
        Rejection::NotFound { resource, .. } => resource,
        other => panic!("expected not found, got {other:?}"),
    }
}

fn audit_actions(engine: &Engine, tenant: TenantId, resource: &str) -> Vec<String> {
    engine
        .audit_query(
            tenant,
            &AuditQuery {
                resource: Some(resource.into()),
                limit: 500,
                ..Default::default()
            },
        )
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.action)
        .collect()
}

async fn verified_maker(engine: &Engine, name: &str) -> u64 {
    let m = engine
        .create_manufacturer(T, ADMIN, maker(name))
        .await
        .unwrap();
    engine
        .set_manufacturer_verification(T, Actor::Platform, m.id, VerificationStatus::Verified)
        .await
        .unwrap();
    m.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_default_and_currency_is_locked_once_used() {
    let f = setup().await;
    let e = &f.engine;
    let defaults = e.catalog_settings(T).unwrap();
    assert_eq!(defaults.currency, Currency::EUR);
    assert!(defaults.require_verified_manufacturer_to_publish);
    let usd = CatalogSettings {
        currency: Currency::USD,
        require_verified_manufacturer_to_publish: false,
    };
    assert_eq!(
        e.set_catalog_settings(T, ADMIN, usd.clone()).await.unwrap(),
        usd
    );
    assert_eq!(e.catalog_settings(T).unwrap(), usd);
    // The other tenant is untouched.
    assert_eq!(e.catalog_settings(OTHER).unwrap().currency, Currency::EUR);
    // Amounts in another currency than the catalog's are refused.
    assert_eq!(
        invalid_field(e.create_retailer(T, ADMIN, buyer("Shop", None)).await),
        "credit_limit"
    );
    let mut shop = buyer("Shop", None);
    shop.credit_limit = Money::new(100, Currency::USD);
    shop.approval_threshold = None;
    e.create_retailer(T, ADMIN, shop).await.unwrap();
    // With amounts stored, the currency cannot change; the policy flag still can.
    assert_eq!(
        conflict(
            e.set_catalog_settings(T, ADMIN, CatalogSettings::default())
                .await
        ),
        "currency_in_use"
    );
    let strict = CatalogSettings {
        require_verified_manufacturer_to_publish: true,
        ..usd
    };
    e.set_catalog_settings(T, ADMIN, strict.clone())
        .await
        .unwrap();
    assert_eq!(e.catalog_settings(T).unwrap(), strict);
    assert_eq!(
        audit_actions(e, T, "catalog/settings"),
        ["catalog.settings", "catalog.settings"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manufacturers_create_update_verify_list() {
    let f = setup().await;
    let e = &f.engine;
    let m = e
        .create_manufacturer(T, ADMIN, maker("  Acme Tools "))
        .await
        .unwrap();
    assert_eq!(m.name, "Acme Tools");
    assert_eq!(m.verification, VerificationStatus::Unverified);
    let fr = CountryCode::parse("FR").unwrap();
    let updated = e
        .update_manufacturer(
            T,
            ADMIN,
            m.id,
            ManufacturerInput {
                name: "Acme Outils".into(),
                country: fr,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (updated.name.as_str(), updated.country),
        ("Acme Outils", fr)
    );
    for status in [
        VerificationStatus::Pending,
        VerificationStatus::Verified,
        VerificationStatus::Suspended,
        VerificationStatus::Rejected,
    ] {
        let v = e
            .set_manufacturer_verification(T, Actor::System, m.id, status)
            .await
            .unwrap();
        assert_eq!(v.verification, status);
    }
    assert_eq!(
        e.manufacturer(T, m.id).unwrap().unwrap().verification,
        VerificationStatus::Rejected
    );
    // Rejections.
    assert_eq!(
        invalid_field(e.create_manufacturer(T, ADMIN, maker(" ")).await),
        "name"
    );
    assert_eq!(
        invalid_field(
            e.create_manufacturer(
                T,
                ADMIN,
                ManufacturerInput {
                    name: "X".into(),
                    country: CountryCode(*b"de"),
                },
            )
            .await
        ),
        "country"
    );
    assert_eq!(
        not_found(e.update_manufacturer(T, ADMIN, 999, maker("X")).await),
        "manufacturer"
    );
    assert_eq!(
        not_found(
            e.set_manufacturer_verification(T, ADMIN, 999, VerificationStatus::Verified)
                .await
        ),
        "manufacturer"
    );
    // Another tenant's id looks like a missing one.
    assert_eq!(
        not_found(e.update_manufacturer(OTHER, ADMIN, m.id, maker("X")).await),
        "manufacturer"
    );
    assert!(e.manufacturer(OTHER, m.id).unwrap().is_none());
    // Lists page by id.
    for i in 0..4 {
        e.create_manufacturer(T, ADMIN, maker(&format!("M{i}")))
            .await
            .unwrap();
    }
    let first = e.list_manufacturers(T, None, 2).unwrap();
    assert_eq!(first.items.len(), 2);
    let second = e.list_manufacturers(T, first.next_after, 2).unwrap();
    let third = e.list_manufacturers(T, second.next_after, 2).unwrap();
    assert_eq!(third.items.len(), 1);
    assert_eq!(third.next_after, None);
    let ids: Vec<u64> = [first, second, third]
        .into_iter()
        .flat_map(|p| p.items)
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    assert!(
        e.list_manufacturers(OTHER, None, 10)
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        audit_actions(e, T, &format!("manufacturer/{}", m.id)),
        [
            "manufacturer.create",
            "manufacturer.update",
            "manufacturer.verification",
            "manufacturer.verification",
            "manufacturer.verification",
            "manufacturer.verification"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_groups_and_retailers() {
    let f = setup().await;
    let e = &f.engine;
    let gold = e.create_customer_group(T, ADMIN, "Gold").await.unwrap();
    let silver = e.create_customer_group(T, ADMIN, "Silver").await.unwrap();
    let renamed = e
        .rename_customer_group(T, ADMIN, gold.id, "Gold+")
        .await
        .unwrap();
    assert_eq!(renamed.name, "Gold+");
    assert_eq!(e.customer_group(T, gold.id).unwrap().unwrap().name, "Gold+");
    assert_eq!(e.list_customer_groups(T, None, 10).unwrap().items.len(), 2);
    assert_eq!(
        invalid_field(e.create_customer_group(T, ADMIN, "").await),
        "name"
    );
    assert_eq!(
        invalid_field(e.rename_customer_group(T, ADMIN, gold.id, "").await),
        "name"
    );
    assert_eq!(
        not_found(e.rename_customer_group(T, ADMIN, 99, "X").await),
        "customer_group"
    );

    let shop = e
        .create_retailer(T, ADMIN, buyer("Corner Shop", Some(gold.id)))
        .await
        .unwrap();
    assert_eq!(shop.customer_group_id, Some(gold.id));
    assert_eq!(shop.payment_terms.net_days(), 30);
    let other = e
        .create_retailer(T, ADMIN, buyer("Other Shop", Some(gold.id)))
        .await
        .unwrap();
    let gold_members = e.list_retailers(T, Some(gold.id), None, 10).unwrap();
    assert_eq!(gold_members.items.len(), 2);
    // Moving the shop to Silver with new terms, limit and addresses.
    let mut changed = buyer("Corner Shop GmbH", Some(silver.id));
    changed.payment_terms = PaymentTerms::Prepaid;
    changed.credit_limit = eur(0);
    changed.approval_threshold = None;
    changed.addresses = vec![address("Main"), address("Depot")];
    let updated = e.update_retailer(T, ADMIN, shop.id, changed).await.unwrap();
    assert_eq!(updated.created_at_ms, shop.created_at_ms);
    assert_eq!(updated.addresses.len(), 2);
    assert_eq!(updated.payment_terms, PaymentTerms::Prepaid);
    assert_eq!(e.retailer(T, shop.id).unwrap().unwrap(), updated);
    let gold_page = e.list_retailers(T, Some(gold.id), None, 1).unwrap();
    assert_eq!(
        gold_page.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        [other.id]
    );
    assert_eq!(gold_page.next_after, None);
    let silver_members = e.list_retailers(T, Some(silver.id), None, 10).unwrap();
    assert_eq!(silver_members.items, vec![updated.clone()]);
    // Leaving every group.
    let mut no_group = buyer("Corner Shop GmbH", None);
    no_group.addresses = vec![];
    e.update_retailer(T, ADMIN, shop.id, no_group)
        .await
        .unwrap();
    assert!(
        e.list_retailers(T, Some(silver.id), None, 10)
            .unwrap()
            .items
            .is_empty()
    );
    let all = e.list_retailers(T, None, None, 1).unwrap();
    assert_eq!(all.items.len(), 1);
    assert!(all.next_after.is_some());

    // Rejections.
    let cases: Vec<(RetailerInput, &str)> = vec![
        (buyer(" ", None), "name"),
        (buyer("X", Some(999)), "customer_group_id"),
        (
            RetailerInput {
                credit_limit: eur(-1),
                ..buyer("X", None)
            },
            "credit_limit",
        ),
        (
            RetailerInput {
                credit_limit: Money::new(1, Currency::GBP),
                ..buyer("X", None)
            },
            "credit_limit",
        ),
        (
            RetailerInput {
                approval_threshold: Some(Money::new(1, Currency::USD)),
                ..buyer("X", None)
            },
            "approval_threshold",
        ),
        (
            RetailerInput {
                addresses: vec![address("A"), address("A")],
                ..buyer("X", None)
            },
            "addresses[1].label",
        ),
        (
            RetailerInput {
                addresses: (0..=mercato_engine::catalog::RETAILER_ADDRESSES_MAX)
                    .map(|i| address(&format!("A{i}")))
                    .collect(),
                ..buyer("X", None)
            },
            "addresses",
        ),
    ];
    for (input, field) in cases {
        assert_eq!(
            invalid_field(e.create_retailer(T, ADMIN, input.clone()).await),
            field
        );
        assert_eq!(
            invalid_field(e.update_retailer(T, ADMIN, shop.id, input).await),
            field
        );
    }
    assert_eq!(
        not_found(e.update_retailer(T, ADMIN, 999, buyer("X", None)).await),
        "retailer"
    );
    assert_eq!(
        not_found(
            e.update_retailer(OTHER, ADMIN, shop.id, buyer("X", None))
                .await
        ),
        "retailer"
    );
    assert_eq!(
        audit_actions(e, T, &format!("retailer/{}", shop.id)),
        ["retailer.create", "retailer.update", "retailer.update"]
    );
    assert_eq!(
        audit_actions(e, T, &format!("customer_group/{}", gold.id)),
        ["customer_group.create", "customer_group.rename"]
    );
}

async fn category(e: &Engine, parent: Option<u64>, slug: &str) -> u64 {
    e.create_category(
        T,
        ADMIN,
        CategoryInput {
            parent,
            name: slug.to_uppercase(),
            slug: slug.into(),
        },
    )
    .await
    .unwrap()
    .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn category_tree_paths_descendants_moves() {
    let f = setup().await;
    let e = &f.engine;
    let tools = category(e, None, "tools").await;
    let power = category(e, Some(tools), "power").await;
    let drills = category(e, Some(power), "drills").await;
    let saws = category(e, Some(power), "saws").await;
    let hand = category(e, Some(tools), "hand").await;
    let garden = category(e, None, "garden").await;

    let path = e.category_path(T, drills).unwrap().unwrap();
    assert_eq!(
        path.iter().map(|p| p.slug.as_str()).collect::<Vec<_>>(),
        ["tools", "power", "drills"]
    );
    assert_eq!(path[0].name, "TOOLS");
    assert_eq!(e.category_path(T, 999).unwrap(), None);
    let mut below_tools = e.category_descendants(T, tools).unwrap();
    below_tools.sort();
    assert_eq!(below_tools, [power, drills, saws, hand]);
    assert!(e.category_descendants(T, drills).unwrap().is_empty());
    assert!(e.category_descendants(T, 999).unwrap().is_empty());
    let roots = e.category_children(T, None, None, 10).unwrap();
    assert_eq!(
        roots.items.iter().map(|c| c.id).collect::<Vec<_>>(),
        [tools, garden]
    );
    let first = e.category_children(T, Some(power), None, 1).unwrap();
    assert_eq!(first.items[0].id, drills);
    let rest = e
        .category_children(T, Some(power), first.next_after, 1)
        .unwrap();
    assert_eq!(rest.items[0].id, saws);
    assert_eq!(rest.next_after, None);
    assert_eq!(e.list_categories(T, None, 100).unwrap().items.len(), 6);
    assert_eq!(e.category(T, drills).unwrap().unwrap().depth, 2);

    // Rename with a new slug frees the old one.
    let renamed = e
        .rename_category(T, ADMIN, drills, "Drills & Drivers", "drills-drivers")
        .await
        .unwrap();
    assert_eq!(renamed.name, "Drills & Drivers");
    assert!(e.category_by_slug(T, "drills").unwrap().is_none());
    assert_eq!(
        e.category_by_slug(T, "drills-drivers").unwrap().unwrap().id,
        drills
    );
    category(e, Some(garden), "drills").await;
    assert_eq!(
        conflict(e.rename_category(T, ADMIN, saws, "Saws", "tools").await),
        "slug_taken"
    );
    // Keeping one's own slug is fine.
    e.rename_category(T, ADMIN, saws, "Saws!", "saws")
        .await
        .unwrap();

    // Move "power" (with its subtree) under "garden": depths follow.
    let moved = e
        .move_category(T, ADMIN, power, Some(garden))
        .await
        .unwrap();
    assert_eq!((moved.parent, moved.depth), (Some(garden), 1));
    assert_eq!(e.category(T, drills).unwrap().unwrap().depth, 2);
    assert_eq!(
        e.category_path(T, saws)
            .unwrap()
            .unwrap()
            .iter()
            .map(|p| p.id)
            .collect::<Vec<_>>(),
        [garden, power, saws]
    );
    let mut below_tools = e.category_descendants(T, tools).unwrap();
    below_tools.sort();
    assert_eq!(below_tools, [hand]);
    // Under itself or its own descendant: refused.
    assert_eq!(
        conflict(e.move_category(T, ADMIN, power, Some(power)).await),
        "category_cycle"
    );
    assert_eq!(
        conflict(e.move_category(T, ADMIN, garden, Some(drills)).await),
        "category_cycle"
    );
    // To the root and back.
    let root = e.move_category(T, ADMIN, power, None).await.unwrap();
    assert_eq!((root.parent, root.depth), (None, 0));
    assert_eq!(e.category(T, saws).unwrap().unwrap().depth, 1);

    // Depth bound: a chain of CATEGORY_DEPTH_MAX levels, then no deeper.
    let max = mercato_engine::catalog::CATEGORY_DEPTH_MAX;
    let mut chain = vec![category(e, None, "l0").await];
    for level in 1..max {
        let parent = *chain.last().unwrap();
        chain.push(category(e, Some(parent), &format!("l{level}")).await);
    }
    let deepest = *chain.last().unwrap();
    assert_eq!(e.category(T, deepest).unwrap().unwrap().depth, max - 1);
    assert_eq!(
        invalid_field(
            e.create_category(
                T,
                ADMIN,
                CategoryInput {
                    parent: Some(deepest),
                    name: "Too deep".into(),
                    slug: "too-deep".into(),
                },
            )
            .await
        ),
        "parent"
    );
    // Moving a two-level subtree (power/drills) under the second-deepest level is too deep.
    assert_eq!(
        invalid_field(
            e.move_category(T, ADMIN, power, Some(chain[chain.len() - 2]))
                .await
        ),
        "parent"
    );
    // A leaf fits there.
    e.move_category(T, ADMIN, hand, Some(chain[chain.len() - 2]))
        .await
        .unwrap();

    // Other rejections.
    let bad = |parent, name: &str, slug: &str| CategoryInput {
        parent,
        name: name.into(),
        slug: slug.into(),
    };
    assert_eq!(
        invalid_field(e.create_category(T, ADMIN, bad(None, "", "x")).await),
        "name"
    );
    assert_eq!(
        invalid_field(
            e.create_category(T, ADMIN, bad(None, "X", "Not A Slug"))
                .await
        ),
        "slug"
    );
    assert_eq!(
        invalid_field(e.create_category(T, ADMIN, bad(Some(999), "X", "x")).await),
        "parent"
    );
    assert_eq!(
        conflict(e.create_category(T, ADMIN, bad(None, "X", "tools")).await),
        "slug_taken"
    );
    assert_eq!(
        invalid_field(e.rename_category(T, ADMIN, tools, "X", "-x").await),
        "slug"
    );
    assert_eq!(
        invalid_field(e.rename_category(T, ADMIN, tools, " ", "x").await),
        "name"
    );
    assert_eq!(
        not_found(e.rename_category(T, ADMIN, 999, "X", "x").await),
        "category"
    );
    assert_eq!(
        not_found(e.move_category(T, ADMIN, 999, None).await),
        "category"
    );
    assert_eq!(
        invalid_field(e.move_category(T, ADMIN, tools, Some(999)).await),
        "parent"
    );
    assert_eq!(
        not_found(e.move_category(OTHER, ADMIN, tools, None).await),
        "category"
    );
    assert_eq!(
        audit_actions(e, T, &format!("category/{power}")),
        ["category.create", "category.move", "category.move"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn products_create_update_and_reject() {
    let f = setup().await;
    let e = &f.engine;
    let m = e
        .create_manufacturer(T, ADMIN, maker("Acme"))
        .await
        .unwrap()
        .id;
    let m2 = e
        .create_manufacturer(T, ADMIN, maker("Bolt"))
        .await
        .unwrap()
        .id;
    let cat = category(e, None, "tools").await;
    let mut input = item(m, "DRILL-1");
    input.category_id = Some(cat);
    input.attributes.insert("colour".into(), "red".into());
    input.images = vec![[7; 32]];
    input.unit_of_measure = "case".into();
    input.case_pack = 6;
    input.min_order_qty = 12;
    input.tiers = vec![tier(24, 950), tier(120, 900)];
    let p = e.create_product(T, ADMIN, input.clone()).await.unwrap();
    assert_eq!(p.status, ProductStatus::Draft);
    assert_eq!(p.version, 1);
    assert_eq!((p.case_pack, p.min_order_qty), (6, 12));
    assert_eq!(e.product(T, p.id).unwrap().unwrap(), p);
    assert_eq!(e.product_by_sku(T, m, "DRILL-1").unwrap().unwrap(), p);
    assert!(e.product_by_sku(T, m, "drill-1").unwrap().is_none());
    assert!(e.product_by_sku(T, m2, "DRILL-1").unwrap().is_none());
    assert!(e.product(OTHER, p.id).unwrap().is_none());
    // The same SKU at another manufacturer is another product.
    e.create_product(T, ADMIN, item(m2, "DRILL-1"))
        .await
        .unwrap();
    assert_eq!(
        conflict(e.create_product(T, ADMIN, item(m, "DRILL-1")).await),
        "sku_taken"
    );

    // Update: SKU change moves the index entry; version increments.
    let mut changed = input.clone();
    changed.sku = "DRILL-2".into();
    changed.name = "Drill, cordless".into();
    changed.category_id = None;
    let u = e
        .update_product(T, ADMIN, p.id, Some(1), changed.clone())
        .await
        .unwrap();
    assert_eq!((u.version, u.created_at_ms), (2, p.created_at_ms));
    assert!(e.product_by_sku(T, m, "DRILL-1").unwrap().is_none());
    assert_eq!(e.product_by_sku(T, m, "DRILL-2").unwrap().unwrap().id, p.id);
    // The old SKU is free again.
    e.create_product(T, ADMIN, item(m, "DRILL-1"))
        .await
        .unwrap();
    assert_eq!(
        conflict(
            e.update_product(T, ADMIN, p.id, Some(1), changed.clone())
                .await
        ),
        "version_mismatch"
    );
    assert_eq!(
        conflict(
            e.update_product(T, ADMIN, p.id, None, item(m, "DRILL-1"))
                .await
        ),
        "sku_taken"
    );
    let mut moved = changed.clone();
    moved.manufacturer_id = m2;
    assert_eq!(
        invalid_field(e.update_product(T, ADMIN, p.id, None, moved).await),
        "manufacturer_id"
    );
    assert_eq!(
        not_found(e.update_product(T, ADMIN, 999, None, changed.clone()).await),
        "product"
    );
    assert_eq!(
        not_found(e.update_product(OTHER, ADMIN, p.id, None, changed).await),
        "product"
    );

    // Every invalid field, on create and on update.
    let cases: Vec<(Mutation, &str)> = vec![
        (Box::new(|i| i.sku = "bad sku".into()), "sku"),
        (Box::new(|i| i.sku = String::new()), "sku"),
        (Box::new(|i| i.name = "  ".into()), "name"),
        (Box::new(|i| i.description = "\u{0}".into()), "description"),
        (
            Box::new(|i| i.unit_of_measure = "Each".into()),
            "unit_of_measure",
        ),
        (Box::new(|i| i.case_pack = 0), "case_pack"),
        (Box::new(|i| i.min_order_qty = 0), "min_order_qty"),
        (
            Box::new(|i| {
                i.case_pack = 6;
                i.min_order_qty = 8;
            }),
            "min_order_qty",
        ),
        (Box::new(|i| i.base_price = eur(-5)), "base_price"),
        (
            Box::new(|i| i.base_price = Money::new(100, Currency::USD)),
            "base_price",
        ),
        (
            Box::new(|i| i.tiers = vec![tier(10, 900), tier(10, 800)]),
            "tiers[1].min_qty",
        ),
        (
            Box::new(|i| i.tiers = vec![tier(10, 1001)]),
            "tiers[0].unit_price",
        ),
        (
            Box::new(|i| {
                i.attributes.insert("Bad Name".into(), "x".into());
            }),
            "attributes.Bad Name",
        ),
        (Box::new(|i| i.images = vec![[1; 32], [1; 32]]), "images[1]"),
        (Box::new(|i| i.manufacturer_id = 999), "manufacturer_id"),
        (Box::new(|i| i.category_id = Some(999)), "category_id"),
    ];
    for (mutate, field) in cases {
        let mut bad = item(m, "NEW-1");
        mutate(&mut bad);
        assert_eq!(
            invalid_field(e.create_product(T, ADMIN, bad.clone()).await),
            field
        );
        if field != "manufacturer_id" {
            if field != "sku" {
                bad.sku = "DRILL-2".into();
            }
            assert_eq!(
                invalid_field(e.update_product(T, ADMIN, p.id, None, bad).await),
                field
            );
        }
    }
    assert!(e.product_by_sku(T, m, "NEW-1").unwrap().is_none());
    assert_eq!(
        audit_actions(e, T, &format!("product/{}", p.id)),
        ["product.create", "product.update"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_requires_a_verified_manufacturer() {
    let f = setup().await;
    let e = &f.engine;
    let m = e
        .create_manufacturer(T, ADMIN, maker("Acme"))
        .await
        .unwrap()
        .id;
    let p = e.create_product(T, ADMIN, item(m, "A-1")).await.unwrap();
    for status in [
        VerificationStatus::Unverified,
        VerificationStatus::Pending,
        VerificationStatus::Rejected,
        VerificationStatus::Suspended,
    ] {
        e.set_manufacturer_verification(T, ADMIN, m, status)
            .await
            .unwrap();
        assert_eq!(
            conflict(
                e.set_product_status(T, ADMIN, p.id, None, ProductStatus::Active)
                    .await
            ),
            "manufacturer_not_verified"
        );
    }
    e.set_manufacturer_verification(T, ADMIN, m, VerificationStatus::Verified)
        .await
        .unwrap();
    let active = e
        .set_product_status(T, ADMIN, p.id, Some(1), ProductStatus::Active)
        .await
        .unwrap();
    assert_eq!((active.status, active.version), (ProductStatus::Active, 2));
    // Setting the same status again changes nothing.
    let same = e
        .set_product_status(T, ADMIN, p.id, None, ProductStatus::Active)
        .await
        .unwrap();
    assert_eq!(same, active);
    assert_eq!(
        conflict(
            e.set_product_status(T, ADMIN, p.id, Some(1), ProductStatus::Draft)
                .await
        ),
        "version_mismatch"
    );
    let archived = e
        .set_product_status(T, ADMIN, p.id, Some(2), ProductStatus::Archived)
        .await
        .unwrap();
    assert_eq!(archived.version, 3);
    assert_eq!(
        conflict(
            e.set_product_status(T, ADMIN, p.id, None, ProductStatus::Active)
                .await
        ),
        "illegal_status_transition"
    );
    let draft = e
        .set_product_status(T, ADMIN, p.id, None, ProductStatus::Draft)
        .await
        .unwrap();
    assert_eq!(draft.status, ProductStatus::Draft);
    e.set_product_status(T, ADMIN, p.id, None, ProductStatus::Archived)
        .await
        .unwrap();
    assert_eq!(
        not_found(
            e.set_product_status(T, ADMIN, 999, None, ProductStatus::Active)
                .await
        ),
        "product"
    );
    // A tenant that does not require verification lets unverified manufacturers publish.
    let lax = e
        .create_manufacturer(T, ADMIN, maker("Lax"))
        .await
        .unwrap()
        .id;
    let q = e.create_product(T, ADMIN, item(lax, "B-1")).await.unwrap();
    e.set_catalog_settings(
        T,
        ADMIN,
        CatalogSettings {
            require_verified_manufacturer_to_publish: false,
            ..CatalogSettings::default()
        },
    )
    .await
    .unwrap();
    let published = e
        .set_product_status(T, ADMIN, q.id, None, ProductStatus::Active)
        .await
        .unwrap();
    assert_eq!(published.status, ProductStatus::Active);
    assert_eq!(
        audit_actions(e, T, &format!("product/{}", p.id)),
        [
            "product.create",
            "product.publish",
            "product.archive",
            "product.unpublish",
            "product.archive"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn price_lists_override_base_price_and_tiers() {
    let f = setup().await;
    let e = &f.engine;
    let m = e
        .create_manufacturer(T, ADMIN, maker("Acme"))
        .await
        .unwrap()
        .id;
    let mut input = item(m, "A-1");
    input.tiers = vec![tier(10, 900), tier(100, 800)];
    let p = e.create_product(T, ADMIN, input).await.unwrap();
    let q = e.create_product(T, ADMIN, item(m, "A-2")).await.unwrap();
    let gold = e.create_customer_group(T, ADMIN, "Gold").await.unwrap().id;
    let silver = e
        .create_customer_group(T, ADMIN, "Silver")
        .await
        .unwrap()
        .id;
    assert_eq!(e.unit_price(T, p.id, None, 1).unwrap(), Some(eur(1000)));
    assert_eq!(
        e.unit_price(T, p.id, Some(gold), 10).unwrap(),
        Some(eur(900))
    );
    assert_eq!(e.unit_price(T, p.id, None, 100).unwrap(), Some(eur(800)));
    assert_eq!(e.unit_price(T, 999, None, 1).unwrap(), None);

    let entry = e
        .set_price_list_entry(T, ADMIN, gold, p.id, eur(850), vec![tier(50, 700)])
        .await
        .unwrap();
    assert_eq!(e.price_list_entry(T, gold, p.id).unwrap().unwrap(), entry);
    e.set_price_list_entry(T, ADMIN, gold, q.id, eur(990), vec![])
        .await
        .unwrap();
    assert_eq!(
        e.unit_price(T, p.id, Some(gold), 1).unwrap(),
        Some(eur(850))
    );
    assert_eq!(
        e.unit_price(T, p.id, Some(gold), 10).unwrap(),
        Some(eur(850))
    );
    assert_eq!(
        e.unit_price(T, p.id, Some(gold), 50).unwrap(),
        Some(eur(700))
    );
    // Silver has no entry: the product's prices.
    assert_eq!(
        e.unit_price(T, p.id, Some(silver), 10).unwrap(),
        Some(eur(900))
    );
    let page = e.list_price_list(T, gold, None, 1).unwrap();
    assert_eq!(page.items[0].0, p.id);
    let rest = e.list_price_list(T, gold, page.next_after, 1).unwrap();
    assert_eq!(rest.items[0].0, q.id);
    assert_eq!(rest.next_after, None);
    // Replace, then remove.
    e.set_price_list_entry(T, ADMIN, gold, p.id, eur(600), vec![])
        .await
        .unwrap();
    assert_eq!(
        e.unit_price(T, p.id, Some(gold), 50).unwrap(),
        Some(eur(600))
    );
    e.remove_price_list_entry(T, ADMIN, gold, p.id)
        .await
        .unwrap();
    assert!(e.price_list_entry(T, gold, p.id).unwrap().is_none());
    assert_eq!(
        e.unit_price(T, p.id, Some(gold), 50).unwrap(),
        Some(eur(900))
    );

    // Rejections.
    assert_eq!(
        not_found(e.remove_price_list_entry(T, ADMIN, gold, p.id).await),
        "price_list_entry"
    );
    assert_eq!(
        not_found(
            e.set_price_list_entry(T, ADMIN, 999, p.id, eur(1), vec![])
                .await
        ),
        "customer_group"
    );
    assert_eq!(
        not_found(
            e.set_price_list_entry(T, ADMIN, gold, 999, eur(1), vec![])
                .await
        ),
        "product"
    );
    assert_eq!(
        invalid_field(
            e.set_price_list_entry(T, ADMIN, gold, p.id, eur(-1), vec![])
                .await
        ),
        "unit_price"
    );
    assert_eq!(
        invalid_field(
            e.set_price_list_entry(T, ADMIN, gold, p.id, Money::new(1, Currency::USD), vec![])
                .await
        ),
        "unit_price"
    );
    assert_eq!(
        invalid_field(
            e.set_price_list_entry(T, ADMIN, gold, p.id, eur(500), vec![tier(5, 600)])
                .await
        ),
        "tiers[0].unit_price"
    );
    assert_eq!(
        not_found(
            e.set_price_list_entry(OTHER, ADMIN, gold, p.id, eur(1), vec![])
                .await
        ),
        "customer_group"
    );
    assert_eq!(
        audit_actions(e, T, &format!("price_list/{gold}/{}", p.id)),
        ["price_list.set", "price_list.set", "price_list.remove"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_lists_filter_and_page_stably() {
    let f = setup().await;
    let e = &f.engine;
    let a = verified_maker(e, "A").await;
    let b = verified_maker(e, "B").await;
    let tools = category(e, None, "tools").await;
    let power = category(e, Some(tools), "power").await;
    let garden = category(e, None, "garden").await;
    // 30 products: manufacturer alternates, category cycles tools/power/garden/none, every
    // third one active.
    let mut expected_active_a_tools = Vec::new();
    for i in 0..30u64 {
        let m = if i % 2 == 0 { a } else { b };
        let mut input = item(m, &format!("P-{i}"));
        input.category_id = [Some(tools), Some(power), Some(garden), None][(i % 4) as usize];
        let p = e.create_product(T, ADMIN, input.clone()).await.unwrap();
        if i % 3 == 0 {
            e.set_product_status(T, ADMIN, p.id, None, ProductStatus::Active)
                .await
                .unwrap();
            if m == a && matches!(input.category_id, Some(c) if c == tools || c == power) {
                expected_active_a_tools.push(p.id);
            }
        }
    }
    let all = |q: ProductQuery| -> Vec<u64> {
        let mut ids = Vec::new();
        let mut q = ProductQuery { limit: 4, ..q };
        loop {
            let page = e.list_products(T, &q).unwrap();
            assert!(page.items.len() <= 4);
            ids.extend(page.items.iter().map(|p| p.id));
            match page.next_after {
                Some(after) => q.after = Some(after),
                None => return ids,
            }
        }
    };
    assert_eq!(all(ProductQuery::default()), (1..=30).collect::<Vec<_>>());
    assert_eq!(
        all(ProductQuery {
            manufacturer_id: Some(a),
            ..Default::default()
        }),
        (1..=30).step_by(2).collect::<Vec<_>>()
    );
    let only_tools = all(ProductQuery {
        category_id: Some(tools),
        ..Default::default()
    });
    assert_eq!(only_tools, (1..=30).step_by(4).collect::<Vec<_>>());
    let with_descendants = all(ProductQuery {
        category_id: Some(tools),
        include_descendants: true,
        ..Default::default()
    });
    assert_eq!(
        with_descendants,
        (1..=30u64)
            .filter(|id| (id - 1) % 4 <= 1)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        all(ProductQuery {
            status: Some(ProductStatus::Active),
            ..Default::default()
        }),
        (1..=30u64)
            .filter(|id| (id - 1) % 3 == 0)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        all(ProductQuery {
            manufacturer_id: Some(a),
            category_id: Some(tools),
            include_descendants: true,
            status: Some(ProductStatus::Active),
            ..Default::default()
        }),
        expected_active_a_tools
    );
    assert!(
        all(ProductQuery {
            manufacturer_id: Some(999),
            ..Default::default()
        })
        .is_empty()
    );
    assert!(
        e.list_products(OTHER, &ProductQuery::default())
            .unwrap()
            .items
            .is_empty()
    );

    // Stable under concurrent inserts: a page boundary stays valid, new products come later.
    let first = e
        .list_products(
            T,
            &ProductQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
    e.create_product(T, ADMIN, item(a, "LATE-1")).await.unwrap();
    let mut rest = Vec::new();
    let mut after = first.next_after;
    while let Some(a) = after {
        let page = e
            .list_products(
                T,
                &ProductQuery {
                    after: Some(a),
                    limit: 10,
                    ..Default::default()
                },
            )
            .unwrap();
        rest.extend(page.items.iter().map(|p| p.id));
        after = page.next_after;
    }
    assert_eq!(rest, (11..=31).collect::<Vec<_>>());
    // A limit of 0 is one, a huge limit is capped.
    let one = e.list_products(T, &ProductQuery::default()).unwrap();
    assert_eq!(one.items.len(), 1);
    let capped = e
        .list_products(
            T,
            &ProductQuery {
                limit: usize::MAX,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!((capped.items.len(), capped.next_after), (31, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_catalog_mutation_is_in_the_audit_chain() {
    let f = setup().await;
    let e = &f.engine;
    let m = verified_maker(e, "A").await;
    let p = e.create_product(T, ADMIN, item(m, "A-1")).await.unwrap();
    e.set_product_status(T, ADMIN, p.id, None, ProductStatus::Active)
        .await
        .unwrap();
    // A rejected command leaves no entry.
    let _ = e.create_product(T, ADMIN, item(m, "A-1")).await;
    let page = e
        .audit_query(
            T,
            &AuditQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .unwrap();
    let actions: Vec<&str> = page.entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "tenant.create",
            "manufacturer.create",
            "manufacturer.verification",
            "product.create",
            "product.publish"
        ]
    );
    assert_eq!(page.entries[1].actor, ADMIN);
    assert_eq!(page.entries[2].actor, Actor::Platform);
    assert_eq!(
        e.audit_verify(T).unwrap(),
        ChainCheck::Intact { entries: 5 }
    );
}

// ---- CSV import and export ----

fn header() -> &'static str {
    "manufacturer_id,sku,name,base_price,description,category_id,unit_of_measure,case_pack,min_order_qty,tiers,status,attr.colour"
}

fn csv_rows(m: u64, range: std::ops::Range<u32>, category: u64) -> String {
    let mut out = String::from(header());
    out.push('\n');
    for i in range {
        out.push_str(&format!(
            "{m},SKU-{i:06},\"Widget {i}, large\",{}.{:02},\"Line one\nline two\",{category},case,6,12,24:{}.00|240:{}.50,{},{}\n",
            10 + i % 50,
            i % 100,
            9 + i % 50 - 1,
            8 + i % 50 - 1,
            if i % 2 == 0 { "active" } else { "draft" },
            ["red", "green", ""][(i % 3) as usize],
        ));
    }
    out
}

/// Runs a blocking import from async test code.
fn import(e: &Engine, csv: &str, mode: ImportMode) -> mercato_engine::catalog::ImportReport {
    tokio::task::block_in_place(|| {
        e.import_products_csv(T, ADMIN, csv.as_bytes(), mode, &|_| {})
            .unwrap()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_import_of_thousands_of_rows_then_export_round_trips() {
    let f = setup().await;
    let e = &f.engine;
    let m = verified_maker(e, "Acme").await;
    let cat = category(e, None, "widgets").await;
    let csv = csv_rows(m, 0..3_000, cat);
    let seen = RefCell::new(Vec::<ImportProgress>::new());
    let report = tokio::task::block_in_place(|| {
        e.import_products_csv(T, ADMIN, csv.as_bytes(), ImportMode::WholeFile, &|p| {
            seen.borrow_mut().push(p)
        })
        .unwrap()
    });
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(
        (report.rows_read, report.created, report.updated),
        (3_000, 3_000, 0)
    );
    assert_eq!(report.batches.len(), 6);
    assert!(report.batches.iter().all(|b| b.committed && b.rows == 500));
    // Multi-line quoted fields: the second row starts on line 4 (header 1, row 1 on 2..=3).
    assert_eq!(report.batches[0].first_line, 2);
    assert_eq!(report.batches[0].last_line, 2 + 499 * 2);
    let seen = seen.into_inner();
    assert!(
        seen.iter()
            .any(|p| p.phase == ImportPhase::Validating && p.rows_read == 1_000)
    );
    assert!(
        seen.iter()
            .any(|p| p.phase == ImportPhase::Writing && p.rows_written == 1_500)
    );
    let last = seen.last().unwrap();
    assert_eq!((last.phase, last.rows_written), (ImportPhase::Done, 3_000));

    let p = e.product_by_sku(T, m, "SKU-000007").unwrap().unwrap();
    assert_eq!(p.name, "Widget 7, large");
    assert_eq!(p.base_price, eur(1707));
    assert_eq!(p.description, "Line one\nline two");
    assert_eq!(
        (p.case_pack, p.min_order_qty, p.unit_of_measure.as_str()),
        (6, 12, "case")
    );
    assert_eq!(p.tiers, vec![tier(24, 1500), tier(240, 1450)]);
    assert_eq!(p.status, ProductStatus::Draft);
    assert_eq!(
        p.attributes.get("colour").map(String::as_str),
        Some("green")
    );
    assert!(
        e.product_by_sku(T, m, "SKU-000002")
            .unwrap()
            .unwrap()
            .attributes
            .is_empty()
    );
    assert_eq!(
        e.product_by_sku(T, m, "SKU-000008")
            .unwrap()
            .unwrap()
            .status,
        ProductStatus::Active
    );
    let active = e
        .list_products(
            T,
            &ProductQuery {
                status: Some(ProductStatus::Active),
                limit: 500,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(active.items.len(), 500);

    // Export, then import the export: nothing changes.
    let mut exported = Vec::new();
    let out = e
        .export_products_csv(T, &ProductQuery::default(), &mut exported)
        .unwrap();
    assert_eq!(out.rows, 3_000);
    let exported = String::from_utf8(exported).unwrap();
    assert!(exported.starts_with(
        "manufacturer_id,sku,name,base_price,description,category_id,unit_of_measure,case_pack,min_order_qty,tiers,status,images,attr.colour\n"
    ));
    let again = import(e, &exported, ImportMode::WholeFile);
    assert!(again.is_complete(), "{again:?}");
    assert_eq!((again.created, again.updated), (0, 0));
    assert_eq!(e.product(T, p.id).unwrap().unwrap(), p);

    // A partial file updates only its columns; absent columns keep their values.
    let partial = format!("manufacturer_id,sku,base_price\n{m},SKU-000007,99.99\n");
    let r = import(e, &partial, ImportMode::WholeFile);
    assert_eq!((r.created, r.updated), (0, 1));
    let q = e.product(T, p.id).unwrap().unwrap();
    assert_eq!((q.base_price, q.version), (eur(9999), p.version + 1));
    assert_eq!(
        (q.tiers.clone(), q.description.clone()),
        (p.tiers.clone(), p.description.clone())
    );
    // Filtered export.
    let mut drafts = Vec::new();
    let out = e
        .export_products_csv(
            T,
            &ProductQuery {
                status: Some(ProductStatus::Draft),
                ..Default::default()
            },
            &mut drafts,
        )
        .unwrap();
    assert_eq!(out.rows, 1_500);
    assert_eq!(
        String::from_utf8(drafts).unwrap().lines().count(),
        1 + 1_500 * 2
    );
    assert_eq!(
        e.audit_verify(T).unwrap(),
        ChainCheck::Intact {
            entries: 1 + 3 + 3_000 + 1
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_import_whole_file_writes_nothing_when_a_row_is_invalid() {
    let f = setup().await;
    let e = &f.engine;
    let m = verified_maker(e, "Acme").await;
    let unverified = e
        .create_manufacturer(T, ADMIN, maker("New"))
        .await
        .unwrap()
        .id;
    let cat = category(e, None, "widgets").await;
    let mut csv = csv_rows(m, 0..1_200, cat);
    // Line numbers: header 1, row i on lines 2+2i and 3+2i.
    let bad_rows = [
        (format!("{m},bad sku,X,1.00,,,,,,,,"), "sku"),
        (format!("{m},NEW-1,X,1.001,,,,,,,,"), "base_price"),
        (format!("{m},NEW-2,,,,,,,,,,"), "name"),
        (format!("{m},NEW-3,X,1.00,,999,,,,,,"), "category_id"),
        (format!("{m},NEW-4,X,1.00,,,,6,8,,,"), "min_order_qty"),
        (
            format!("{m},NEW-5,X,1.00,,,,,,2:3.00,,"),
            "tiers[0].unit_price",
        ),
        (format!("{m},NEW-6,X,1.00,,,,,,2-3.00,,"), "tiers"),
        (format!("{m},NEW-7,X,1.00,,,,,,,published,"), "status"),
        (format!("{unverified},NEW-8,X,1.00,,,,,,,active,"), ""),
        ("999,NEW-9,X,1.00,,,,,,,,".to_string(), "manufacturer_id"),
        ("x,NEW-10,X,1.00,,,,,,,,".to_string(), "manufacturer_id"),
        (format!("{m},SKU-000003,X,1.00,,,,,,,,"), "sku"),
        (format!("{m},NEW-11,X,1.00"), ""),
    ];
    for (row, _) in &bad_rows {
        csv.push_str(row);
        csv.push('\n');
    }
    let report = import(e, &csv, ImportMode::WholeFile);
    assert_eq!(report.rows_read, 1_200 + bad_rows.len() as u64);
    assert_eq!(report.rows_invalid, bad_rows.len() as u64);
    assert_eq!(report.errors.len(), bad_rows.len());
    assert!(report.batches.is_empty());
    assert_eq!(report.rows_committed, 0);
    assert!(!report.is_complete());
    let first_bad_line = 2 + 2 * 1_200;
    for (i, (error, (_, column))) in report.errors.iter().zip(&bad_rows).enumerate() {
        assert_eq!(error.line, first_bad_line + i as u64, "{error:?}");
        if !column.is_empty() {
            assert_eq!(error.column.as_deref(), Some(*column), "{error:?}");
        }
    }
    assert!(
        report.errors[8].message.contains("not verified"),
        "{:?}",
        report.errors[8]
    );
    assert!(
        report.errors[11].message.contains("earlier line"),
        "{:?}",
        report.errors[11]
    );
    assert!(
        report.errors[12].message.contains("fields"),
        "{:?}",
        report.errors[12]
    );
    assert!(
        e.list_products(T, &ProductQuery::default())
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_import_per_batch_skips_only_batches_with_invalid_rows() {
    let f = setup().await;
    let e = &f.engine;
    let m = verified_maker(e, "Acme").await;
    let cat = category(e, None, "widgets").await;
    let mut csv = String::from(header());
    csv.push('\n');
    for i in 0..1_300u32 {
        // Row 700 (in the second batch of 500) is invalid.
        let sku = if i == 700 {
            "bad sku".to_string()
        } else {
            format!("S-{i}")
        };
        csv.push_str(&format!("{m},{sku},Name {i},1.00,,{cat},,,,,,\n"));
    }
    let report = import(e, &csv, ImportMode::PerBatch);
    assert_eq!(report.rows_read, 1_300);
    assert_eq!(report.rows_invalid, 1);
    assert_eq!(report.errors[0].line, 2 + 700);
    let outcome: Vec<(u64, u64, u32, bool)> = report
        .batches
        .iter()
        .map(|b| (b.first_line, b.last_line, b.rows, b.committed))
        .collect();
    assert_eq!(
        outcome,
        [
            (2, 501, 500, true),
            (502, 1001, 500, false),
            (1002, 1301, 300, true)
        ]
    );
    assert_eq!((report.created, report.rows_committed), (800, 800));
    assert!(e.product_by_sku(T, m, "S-499").unwrap().is_some());
    assert!(e.product_by_sku(T, m, "S-500").unwrap().is_none());
    assert!(e.product_by_sku(T, m, "S-1000").unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_import_refuses_bad_headers_and_files() {
    let f = setup().await;
    let e = &f.engine;
    let m = verified_maker(e, "Acme").await;
    let cases = [
        ("", None, "empty"),
        ("sku,name\nA,B\n", Some("manufacturer_id"), "missing"),
        ("manufacturer_id,name\n1,B\n", Some("sku"), "missing"),
        (
            "manufacturer_id,sku,price\n1,A,2\n",
            Some("price"),
            "unknown column",
        ),
        ("manufacturer_id,sku,sku\n1,A,A\n", Some("sku"), "duplicate"),
        (
            "manufacturer_id,sku,attr.x,attr.x\n1,A,1,2\n",
            Some("attr.x"),
            "duplicate",
        ),
    ];
    for (csv, column, message) in cases {
        let r = import(e, csv, ImportMode::WholeFile);
        assert_eq!(r.errors.len(), 1, "{csv:?}");
        assert_eq!(r.errors[0].line, 1);
        assert_eq!(r.errors[0].column.as_deref(), column, "{csv:?}");
        assert!(r.errors[0].message.contains(message), "{:?}", r.errors[0]);
        assert_eq!(r.rows_committed, 0);
    }
    // Invalid UTF-8 in a row is that row's error; the rest of the file is still checked.
    let mut bytes = format!("manufacturer_id,sku,name,base_price\n{m},A,").into_bytes();
    bytes.extend_from_slice(&[0xFF, 0xFE]);
    bytes.extend_from_slice(format!(",1.00\n{m},B,Name,1.00\n{m},bad sku,Name,1.00\n").as_bytes());
    let r = tokio::task::block_in_place(|| {
        e.import_products_csv(T, ADMIN, bytes.as_slice(), ImportMode::WholeFile, &|_| {})
            .unwrap()
    });
    assert_eq!((r.rows_read, r.rows_invalid), (3, 2));
    assert_eq!(r.errors[0].line, 2);
    assert_eq!(r.errors[1].line, 4);
    // A header-only file imports nothing, successfully.
    let r = import(e, "manufacturer_id,sku\n", ImportMode::WholeFile);
    assert!(r.is_complete());
    assert_eq!(r.rows_read, 0);
    // An attribute column with a name that is not allowed.
    let r = import(
        e,
        &format!("manufacturer_id,sku,name,base_price,attr.Bad\n{m},A,N,1.00,x\n"),
        ImportMode::WholeFile,
    );
    assert_eq!(r.errors[0].column.as_deref(), Some("attributes.Bad"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_import_reports_the_batches_committed_before_a_concurrent_change() {
    let f = setup().await;
    let e = std::sync::Arc::new(f.engine);
    let m = verified_maker(&e, "Acme").await;
    let cat = category(&e, None, "widgets").await;
    // 1,200 rows, all active: three batches.
    let mut csv = String::from(header());
    csv.push('\n');
    for i in 0..1_200u32 {
        csv.push_str(&format!("{m},S-{i},Name {i},1.00,,{cat},,,,,active,\n"));
    }
    let engine = std::sync::Arc::clone(&e);
    let report = tokio::task::spawn_blocking(move || {
        let suspended = std::cell::Cell::new(false);
        engine
            .import_products_csv(T, ADMIN, csv.as_bytes(), ImportMode::WholeFile, &|p| {
                // After the first batch commits, the manufacturer is suspended: the next batch
                // can no longer publish its products.
                if p.phase == ImportPhase::Writing && p.rows_written == 500 && !suspended.get() {
                    suspended.set(true);
                    let action = mercato_engine::Action::Catalog(
                        mercato_engine::catalog::CatalogAction::SetManufacturerVerification {
                            id: m,
                            status: VerificationStatus::Suspended,
                        },
                    );
                    engine
                        .storage()
                        .execute_blocking(mercato_engine::Command {
                            tenant: T,
                            actor: Actor::System,
                            at_ms: mercato_engine::now_ms(),
                            action,
                        })
                        .unwrap();
                }
            })
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(report.rows_invalid, 0);
    let committed: Vec<bool> = report.batches.iter().map(|b| b.committed).collect();
    assert_eq!(committed, [true, false]);
    assert_eq!(report.rows_committed, 500);
    assert!(report.aborted.as_deref().unwrap().contains("not verified"));
    assert_eq!(report.errors[0].line, 502);
    assert_eq!(report.batches[1].first_line, 502);
    assert!(e.product_by_sku(T, m, "S-499").unwrap().is_some());
    assert!(e.product_by_sku(T, m, "S-500").unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upsert_batches_are_bounded_and_checked_row_by_row() {
    use mercato_engine::catalog::{CatalogAction, ProductUpsert, UPSERT_BATCH_MAX};
    let f = setup().await;
    let e = &f.engine;
    let m = verified_maker(e, "Acme").await;
    let upsert = |rows: Vec<ProductUpsert>| {
        e.run(
            T,
            ADMIN,
            mercato_engine::Action::Catalog(CatalogAction::UpsertProducts { rows }),
        )
    };
    let row = |sku: &str| ProductUpsert {
        manufacturer_id: m,
        sku: sku.into(),
        name: Some(format!("Name {sku}")),
        base_price: Some(eur(100)),
        ..Default::default()
    };
    assert_eq!(invalid_field(upsert(vec![]).await), "rows");
    assert_eq!(
        invalid_field(
            upsert(
                (0..=UPSERT_BATCH_MAX)
                    .map(|i| row(&format!("S{i}")))
                    .collect()
            )
            .await
        ),
        "rows"
    );
    assert_eq!(
        invalid_field(upsert(vec![row("A"), row("A")]).await),
        "rows[1].sku"
    );
    let nameless = ProductUpsert {
        name: None,
        ..row("B")
    };
    assert_eq!(
        invalid_field(upsert(vec![row("A"), nameless]).await),
        "rows[1].name"
    );
    let priceless = ProductUpsert {
        base_price: None,
        ..row("B")
    };
    assert_eq!(
        invalid_field(upsert(vec![priceless]).await),
        "rows[0].base_price"
    );
    let archived_to_active = |sku: &str| ProductUpsert {
        status: Some(ProductStatus::Active),
        ..row(sku)
    };
    // A whole batch is refused when one row is: nothing of it exists.
    assert!(e.product_by_sku(T, m, "A").unwrap().is_none());
    upsert(vec![row("A"), row("B")]).await.unwrap();
    let a = e.product_by_sku(T, m, "A").unwrap().unwrap();
    e.set_product_status(T, ADMIN, a.id, None, ProductStatus::Archived)
        .await
        .unwrap();
    assert_eq!(
        conflict(upsert(vec![archived_to_active("A")]).await),
        "illegal_status_transition"
    );
    // Updating only the name keeps everything else, and bumps the version once.
    let renamed = ProductUpsert {
        manufacturer_id: m,
        sku: "B".into(),
        name: Some("Renamed".into()),
        ..Default::default()
    };
    let before = e.product_by_sku(T, m, "B").unwrap().unwrap();
    upsert(vec![renamed]).await.unwrap();
    let after = e.product_by_sku(T, m, "B").unwrap().unwrap();
    assert_eq!(after.name, "Renamed");
    assert_eq!(after.version, before.version + 1);
    assert_eq!(after.base_price, before.base_price);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_refuses_too_many_attribute_columns() {
    use mercato_engine::catalog::csv_io::EXPORT_ATTRIBUTE_COLUMNS_MAX;
    let f = setup().await;
    let e = &f.engine;
    let m = verified_maker(e, "Acme").await;
    let per_product = mercato_engine::catalog::ATTRIBUTES_MAX;
    for p in 0..=(EXPORT_ATTRIBUTE_COLUMNS_MAX / per_product) {
        let mut input = item(m, &format!("P{p}"));
        input.attributes = (0..per_product)
            .map(|a| (format!("p{p}_a{a}"), "x".to_string()))
            .collect();
        e.create_product(T, ADMIN, input).await.unwrap();
    }
    let mut out = Vec::new();
    assert_eq!(
        conflict(e.export_products_csv(T, &ProductQuery::default(), &mut out)),
        "too_many_attribute_columns"
    );
    assert!(out.is_empty());
}

/// A writer whose disk is full.
struct FullDisk;

impl std::io::Write for FullDisk {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("disk full"))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_reports_a_failing_writer() {
    let f = setup().await;
    let e = &f.engine;
    let m = verified_maker(e, "Acme").await;
    e.create_product(T, ADMIN, item(m, "A")).await.unwrap();
    match e.export_products_csv(T, &ProductQuery::default(), FullDisk) {
        Err(EngineError::Io(io)) => assert!(io.to_string().contains("disk full")),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}
