//! Inventory against real storage in a temp dir: warehouses, adjustments and their log, stock
//! across warehouses, and how orders reserve, release and ship it.

use mercato_engine::catalog::{ManufacturerInput, ProductInput, RetailerInput};
use mercato_engine::inventory::{
    AdjustmentQuery, STOCK_DELTA_MAX, StockAdjustmentInput, WarehouseStock,
};
use mercato_engine::money::{Currency, Money};
use mercato_engine::orders::{OrderLineInput, Party, PlaceOrder, ProductRef};
use mercato_engine::tables::{
    Address, AdjustmentReason, CountryCode, PaymentTerms, Product, ProductStatus,
    VerificationStatus,
};
use mercato_engine::{Actor, Engine, EngineConfig, EngineError, Rejection, TenantId};
use std::collections::BTreeMap;

const T: TenantId = TenantId(601);
const ADMIN: Actor = Actor::User(1);

struct World {
    engine: Engine,
    _dir: tempfile::TempDir,
    manufacturer_id: u64,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
    engine.create_tenant(T, "Inventory Test").await.unwrap();
    let m = engine
        .create_manufacturer(
            T,
            ADMIN,
            ManufacturerInput {
                name: "Acme".into(),
                country: CountryCode::parse("FR").unwrap(),
            },
        )
        .await
        .unwrap();
    engine
        .set_manufacturer_verification(T, ADMIN, m.id, VerificationStatus::Verified)
        .await
        .unwrap();
    World {
        engine,
        _dir: dir,
        manufacturer_id: m.id,
    }
}

impl World {
    async fn product(&self, sku: &str) -> Product {
        let p = self
            .engine
            .create_product(
                T,
                ADMIN,
                ProductInput {
                    manufacturer_id: self.manufacturer_id,
                    sku: sku.into(),
                    name: sku.into(),
                    description: String::new(),
                    category_id: None,
                    attributes: BTreeMap::new(),
                    images: Vec::new(),
                    unit_of_measure: "each".into(),
                    case_pack: 1,
                    min_order_qty: 1,
                    base_price: Money::new(100, Currency::EUR),
                    tiers: Vec::new(),
                },
            )
            .await
            .unwrap();
        self.engine
            .set_product_status(T, ADMIN, p.id, None, ProductStatus::Active)
            .await
            .unwrap()
    }

    async fn adjust(
        &self,
        warehouse_id: u64,
        product_id: u64,
        delta: i64,
        reason: AdjustmentReason,
    ) -> Result<mercato_engine::inventory::StockAdjusted, EngineError> {
        self.engine
            .adjust_stock(
                T,
                ADMIN,
                StockAdjustmentInput {
                    warehouse_id,
                    product_id,
                    delta,
                    reason,
                    note: None,
                },
            )
            .await
    }

    fn levels(&self, product_id: u64) -> Vec<(u64, u64, u64)> {
        self.engine
            .product_stock(T, product_id)
            .unwrap()
            .warehouses
            .iter()
            .map(|w: &WarehouseStock| (w.warehouse_id, w.on_hand, w.reserved))
            .collect()
    }
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warehouses_have_unique_valid_codes() {
    let w = world().await;
    let main = w
        .engine
        .create_warehouse(T, ADMIN, " Main hall ", "AMS-1")
        .await
        .unwrap();
    assert_eq!(
        (main.name.as_str(), main.code.as_str()),
        ("Main hall", "AMS-1")
    );
    match rejection(w.engine.create_warehouse(T, ADMIN, "Other", "AMS-1").await) {
        Rejection::Conflict { code, .. } => assert_eq!(code, "warehouse_code_taken"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        invalid_field(w.engine.create_warehouse(T, ADMIN, "  ", "X").await),
        "name"
    );
    assert_eq!(
        invalid_field(
            w.engine
                .create_warehouse(T, ADMIN, &"n".repeat(201), "X")
                .await
        ),
        "name"
    );
    for bad in ["", "with space", "ÄMS", &"C".repeat(33)] {
        assert_eq!(
            invalid_field(w.engine.create_warehouse(T, ADMIN, "Ok", bad).await),
            "code"
        );
    }
    let second = w
        .engine
        .create_warehouse(T, ADMIN, "Overflow", "AMS-2")
        .await
        .unwrap();
    assert_eq!(w.engine.warehouse(T, main.id).unwrap(), Some(main.clone()));
    let page = w.engine.warehouses(T, None, 1).unwrap();
    assert_eq!(page.items, vec![main]);
    let page = w.engine.warehouses(T, page.next_after, 10).unwrap();
    assert_eq!(page.items, vec![second]);
    assert_eq!(page.next_after, None);
    assert!(w.engine.warehouse(TenantId(602), 1).unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adjustments_change_on_hand_and_are_logged_with_their_reason() {
    let w = world().await;
    let a = w.engine.create_warehouse(T, ADMIN, "A", "A").await.unwrap();
    let b = w.engine.create_warehouse(T, ADMIN, "B", "B").await.unwrap();
    let p = w.product("P").await;
    let q = w.product("Q").await;

    let received = w
        .adjust(a.id, p.id, 40, AdjustmentReason::Receipt)
        .await
        .unwrap();
    assert_eq!((received.level.on_hand, received.level.reserved), (40, 0));
    assert_eq!(received.adjustment.on_hand_after, 40);
    assert_eq!(received.adjustment.actor, ADMIN);
    w.adjust(b.id, p.id, 25, AdjustmentReason::Receipt)
        .await
        .unwrap();
    w.adjust(a.id, q.id, 7, AdjustmentReason::Count)
        .await
        .unwrap();
    let damaged = w
        .adjust(a.id, p.id, -5, AdjustmentReason::Damage)
        .await
        .unwrap();
    assert_eq!(damaged.level.on_hand, 35);
    assert_eq!(damaged.level.available(), 35);

    let stock = w.engine.product_stock(T, p.id).unwrap();
    assert_eq!(
        (stock.on_hand, stock.reserved, stock.available),
        (60, 0, 60)
    );
    assert_eq!(w.levels(p.id), vec![(a.id, 35, 0), (b.id, 25, 0)]);

    // Removing more than is there is refused and changes nothing.
    match rejection(w.adjust(b.id, p.id, -26, AdjustmentReason::Loss).await) {
        Rejection::Conflict { code, .. } => assert_eq!(code, "insufficient_available_stock"),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.levels(p.id), vec![(a.id, 35, 0), (b.id, 25, 0)]);

    // Input checks.
    assert_eq!(
        invalid_field(w.adjust(a.id, p.id, 0, AdjustmentReason::Receipt).await),
        "delta"
    );
    assert_eq!(
        invalid_field(
            w.adjust(a.id, p.id, STOCK_DELTA_MAX + 1, AdjustmentReason::Receipt)
                .await
        ),
        "delta"
    );
    assert_eq!(
        invalid_field(w.adjust(a.id, p.id, 1, AdjustmentReason::Shipment).await),
        "reason"
    );
    let long_note = w
        .engine
        .adjust_stock(
            T,
            ADMIN,
            StockAdjustmentInput {
                warehouse_id: a.id,
                product_id: p.id,
                delta: 1,
                reason: AdjustmentReason::Correction,
                note: Some("n".repeat(501)),
            },
        )
        .await;
    assert_eq!(invalid_field(long_note), "note");
    for (warehouse, product, resource) in [(99, p.id, "warehouse"), (a.id, 999, "product")] {
        match rejection(
            w.adjust(warehouse, product, 1, AdjustmentReason::Receipt)
                .await,
        ) {
            Rejection::NotFound { resource: r, .. } => assert_eq!(r, resource),
            other => panic!("{other:?}"),
        }
    }

    // The log, oldest first, with a cursor; and per product.
    let all = w
        .engine
        .stock_adjustments(
            T,
            &AdjustmentQuery {
                limit: 3,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        all.items.iter().map(|a| a.delta).collect::<Vec<_>>(),
        vec![40, 25, 7]
    );
    let rest = w
        .engine
        .stock_adjustments(
            T,
            &AdjustmentQuery {
                after: all.next_after,
                limit: 3,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.items[0].reason, AdjustmentReason::Damage);
    assert_eq!(rest.next_after, None);
    let of_p = w
        .engine
        .stock_adjustments(
            T,
            &AdjustmentQuery {
                product_id: Some(p.id),
                after: None,
                limit: 2,
            },
        )
        .unwrap();
    assert_eq!(
        of_p.items.iter().map(|a| a.delta).collect::<Vec<_>>(),
        vec![40, 25]
    );
    let of_p_rest = w
        .engine
        .stock_adjustments(
            T,
            &AdjustmentQuery {
                product_id: Some(p.id),
                after: of_p.next_after,
                limit: 2,
            },
        )
        .unwrap();
    assert_eq!(
        of_p_rest.items.iter().map(|a| a.delta).collect::<Vec<_>>(),
        vec![-5]
    );
    let audit = w
        .engine
        .audit_query(
            T,
            &mercato_engine::audit::AuditQuery {
                action: Some("stock.adjust".into()),
                limit: 100,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(audit.entries.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_reserve_from_the_fullest_warehouse_and_release_or_ship_exactly() {
    let w = world().await;
    let a = w.engine.create_warehouse(T, ADMIN, "A", "A").await.unwrap();
    let b = w.engine.create_warehouse(T, ADMIN, "B", "B").await.unwrap();
    let c = w.engine.create_warehouse(T, ADMIN, "C", "C").await.unwrap();
    let p = w.product("P").await;
    w.adjust(a.id, p.id, 30, AdjustmentReason::Receipt)
        .await
        .unwrap();
    w.adjust(b.id, p.id, 50, AdjustmentReason::Receipt)
        .await
        .unwrap();
    w.adjust(c.id, p.id, 30, AdjustmentReason::Receipt)
        .await
        .unwrap();
    let shop = w
        .engine
        .create_retailer(
            T,
            ADMIN,
            RetailerInput {
                name: "Shop".into(),
                customer_group_id: None,
                payment_terms: PaymentTerms::Prepaid,
                credit_limit: Money::new(0, Currency::EUR),
                approval_threshold: None,
                addresses: vec![Address {
                    label: "Main".into(),
                    line1: "1 Rue".into(),
                    line2: None,
                    city: "Lyon".into(),
                    postal_code: "69001".into(),
                    region: None,
                    country: CountryCode::parse("FR").unwrap(),
                }],
            },
        )
        .await
        .unwrap();
    let place = |qty: u32| PlaceOrder {
        retailer_id: shop.id,
        buyer_user_id: 5,
        lines: vec![OrderLineInput {
            product: ProductRef::Id(p.id),
            qty,
        }],
        po_number: None,
        shipping_address_label: None,
        idempotency_key: None,
        request_hash: [0; 32],
    };

    // 60 units: B (50, the fullest) first, then A (30; tie with C broken by the lower id).
    let first = w
        .engine
        .place_order(T, Actor::User(5), place(60))
        .await
        .unwrap();
    assert_eq!(
        w.levels(p.id),
        vec![(a.id, 30, 10), (b.id, 50, 50), (c.id, 30, 0)]
    );
    let held: Vec<(u64, u64)> = w
        .engine
        .suborder_reservations(T, first.order.suborders[0].id)
        .unwrap()
        .iter()
        .map(|r| (r.warehouse_id, r.qty))
        .collect();
    assert_eq!(held, vec![(a.id, 10), (b.id, 50)]);
    // 25 units: C has 30 available, A 20: all from C.
    let second = w
        .engine
        .place_order(T, Actor::User(5), place(25))
        .await
        .unwrap();
    assert_eq!(
        w.levels(p.id),
        vec![(a.id, 30, 10), (b.id, 50, 50), (c.id, 30, 25)]
    );
    // Available stock cannot be adjusted away below what is reserved.
    match rejection(w.adjust(b.id, p.id, -1, AdjustmentReason::Loss).await) {
        Rejection::Conflict { code, .. } => assert_eq!(code, "insufficient_available_stock"),
        other => panic!("{other:?}"),
    }
    w.adjust(a.id, p.id, -20, AdjustmentReason::Loss)
        .await
        .unwrap();

    // Cancelling the first order releases exactly its units, where they were.
    let sub1 = first.order.suborders[0].id;
    w.engine
        .cancel_suborder(T, ADMIN, sub1, Party::Manufacturer(w.manufacturer_id), None)
        .await
        .unwrap();
    assert_eq!(
        w.levels(p.id),
        vec![(a.id, 10, 0), (b.id, 50, 0), (c.id, 30, 25)]
    );
    assert!(w.engine.suborder_reservations(T, sub1).unwrap().is_empty());
    // Shipping the second decrements exactly the warehouse it reserved in.
    let sub2 = second.order.suborders[0].id;
    w.engine
        .confirm_suborder(T, ADMIN, sub2, w.manufacturer_id)
        .await
        .unwrap();
    w.engine
        .ship_suborder(T, ADMIN, sub2, w.manufacturer_id, None)
        .await
        .unwrap();
    assert_eq!(
        w.levels(p.id),
        vec![(a.id, 10, 0), (b.id, 50, 0), (c.id, 5, 0)]
    );
    let stock = w.engine.product_stock(T, p.id).unwrap();
    assert_eq!(
        (stock.on_hand, stock.reserved, stock.available),
        (65, 0, 65)
    );
    let log = w
        .engine
        .stock_adjustments(
            T,
            &AdjustmentQuery {
                product_id: Some(p.id),
                after: None,
                limit: 100,
            },
        )
        .unwrap();
    let shipment = log.items.last().unwrap();
    assert_eq!(
        (
            shipment.reason,
            shipment.warehouse_id,
            shipment.delta,
            shipment.suborder_id
        ),
        (AdjustmentReason::Shipment, c.id, -25, Some(sub2))
    );
}
