//! Orders against real storage in a temp dir: placement checks and their rejections,
//! idempotency, concurrency on the last units, the sub-order lifecycle, approval, invoices,
//! payments, the credit limit, reorder and the lists.

use mercato_engine::audit::{AuditQuery, ChainCheck};
use mercato_engine::catalog::{ManufacturerInput, ProductInput, RetailerInput};
use mercato_engine::inventory::StockAdjustmentInput;
use mercato_engine::money::{Currency, Money};
use mercato_engine::orders::{
    ApprovalInput, IDEMPOTENCY_KEY_RETENTION_MS, ORDER_LINES_MAX, OrderLineInput, OrderListQuery,
    OrdersAction, Party, PlaceOrder, PlacedOrder, ProductRef, Reorder, SubOrderListQuery,
};
use mercato_engine::tables::{
    Address, AdjustmentReason, CountryCode, InvoiceStatus, Manufacturer, OrderStatus, PaymentTerms,
    PriceTier, Product, ProductStatus, Retailer, SubOrderStatus, VerificationStatus,
};
use mercato_engine::{
    Action, Actor, Command, CommandOutput, Engine, EngineConfig, EngineError, LineProblem,
    Rejection, TenantId,
};
use mercato_storage::ExecuteError;
use std::collections::BTreeMap;
use std::sync::Arc;

const T: TenantId = TenantId(501);
const ADMIN: Actor = Actor::System;
const BUYER: u64 = 9001;
const APPROVER: u64 = 9002;
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

struct World {
    engine: Arc<Engine>,
    _dir: tempfile::TempDir,
    m1: Manufacturer,
    m2: Manufacturer,
    warehouse: u64,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::open(EngineConfig::new(dir.path())).unwrap());
    engine.create_tenant(T, "Orders Test").await.unwrap();
    let mut makers = Vec::new();
    for name in ["Acme Tools", "Borealis Paints"] {
        let m = engine
            .create_manufacturer(
                T,
                ADMIN,
                ManufacturerInput {
                    name: name.into(),
                    country: CountryCode::parse("DE").unwrap(),
                },
            )
            .await
            .unwrap();
        let m = engine
            .set_manufacturer_verification(T, ADMIN, m.id, VerificationStatus::Verified)
            .await
            .unwrap();
        makers.push(m);
    }
    let warehouse = engine
        .create_warehouse(T, ADMIN, "Main", "MAIN")
        .await
        .unwrap()
        .id;
    let m2 = makers.pop().unwrap();
    let m1 = makers.pop().unwrap();
    World {
        engine,
        _dir: dir,
        m1,
        m2,
        warehouse,
    }
}

struct ProductSpec {
    sku: &'static str,
    price: i64,
    case_pack: u32,
    moq: u32,
    stock: i64,
}

impl ProductSpec {
    fn new(sku: &'static str, price: i64) -> Self {
        ProductSpec {
            sku,
            price,
            case_pack: 1,
            moq: 1,
            stock: 100,
        }
    }
}

impl World {
    fn e(&self) -> &Engine {
        &self.engine
    }

    async fn product(&self, m: &Manufacturer, spec: ProductSpec) -> Product {
        self.product_with_tiers(m, spec, Vec::new()).await
    }

    async fn product_with_tiers(
        &self,
        m: &Manufacturer,
        spec: ProductSpec,
        tiers: Vec<PriceTier>,
    ) -> Product {
        let p = self
            .e()
            .create_product(
                T,
                ADMIN,
                ProductInput {
                    manufacturer_id: m.id,
                    sku: spec.sku.into(),
                    name: format!("Product {}", spec.sku),
                    description: String::new(),
                    category_id: None,
                    attributes: BTreeMap::new(),
                    images: Vec::new(),
                    unit_of_measure: "each".into(),
                    case_pack: spec.case_pack,
                    min_order_qty: spec.moq,
                    base_price: eur(spec.price),
                    tiers,
                },
            )
            .await
            .unwrap();
        let p = self
            .e()
            .set_product_status(T, ADMIN, p.id, None, ProductStatus::Active)
            .await
            .unwrap();
        if spec.stock > 0 {
            self.receive(self.warehouse, p.id, spec.stock).await;
        }
        p
    }

    async fn receive(&self, warehouse_id: u64, product_id: u64, qty: i64) {
        self.e()
            .adjust_stock(
                T,
                ADMIN,
                StockAdjustmentInput {
                    warehouse_id,
                    product_id,
                    delta: qty,
                    reason: AdjustmentReason::Receipt,
                    note: None,
                },
            )
            .await
            .unwrap();
    }

    async fn retailer(&self, spec: RetailerSpec) -> Retailer {
        self.e()
            .create_retailer(
                T,
                ADMIN,
                RetailerInput {
                    name: spec.name.into(),
                    customer_group_id: spec.group,
                    payment_terms: spec.terms,
                    credit_limit: eur(spec.credit_limit),
                    approval_threshold: spec.approval_threshold.map(eur),
                    addresses: vec![address("Main store"), address("Back office")],
                },
            )
            .await
            .unwrap()
    }

    fn available(&self, product_id: u64) -> u64 {
        self.e().product_stock(T, product_id).unwrap().available
    }

    fn stock(&self, product_id: u64) -> (u64, u64) {
        let s = self.e().product_stock(T, product_id).unwrap();
        (s.on_hand, s.reserved)
    }

    async fn place(&self, order: PlaceOrder) -> Result<PlacedOrder, EngineError> {
        self.e().place_order(T, Actor::User(BUYER), order).await
    }

    /// Runs an action at a chosen time (overdue invoices, key expiry), through the write path.
    async fn run_at(&self, at_ms: u64, action: OrdersAction) -> Result<CommandOutput, Rejection> {
        let command = Command {
            tenant: T,
            actor: Actor::User(BUYER),
            at_ms,
            action: Action::Orders(action),
        };
        match self.e().storage().execute(command).await {
            Ok(output) => Ok(output),
            Err(ExecuteError::Rejected(r)) => Err(r),
            Err(e) => panic!("storage failure: {e}"),
        }
    }
}

struct RetailerSpec {
    name: &'static str,
    terms: PaymentTerms,
    credit_limit: i64,
    approval_threshold: Option<i64>,
    group: Option<u64>,
}

impl RetailerSpec {
    fn net30(name: &'static str) -> Self {
        RetailerSpec {
            name,
            terms: PaymentTerms::Net30,
            credit_limit: 10_000_000,
            approval_threshold: None,
            group: None,
        }
    }
}

fn address(label: &str) -> Address {
    Address {
        label: label.into(),
        line1: "1 Market Street".into(),
        line2: None,
        city: "Rotterdam".into(),
        postal_code: "3011".into(),
        region: None,
        country: CountryCode::parse("NL").unwrap(),
    }
}

fn order(retailer: &Retailer, lines: &[(u64, u32)]) -> PlaceOrder {
    PlaceOrder {
        retailer_id: retailer.id,
        buyer_user_id: BUYER,
        lines: lines
            .iter()
            .map(|&(id, qty)| OrderLineInput {
                product: ProductRef::Id(id),
                qty,
            })
            .collect(),
        po_number: None,
        shipping_address_label: None,
        idempotency_key: None,
        request_hash: [0; 32],
    }
}

fn rejection<T: std::fmt::Debug>(result: Result<T, EngineError>) -> Rejection {
    match result {
        Err(EngineError::Rejected(r)) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn conflict_code<T: std::fmt::Debug>(result: Result<T, EngineError>) -> &'static str {
    match rejection(result) {
        Rejection::Conflict { code, .. } => code,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, EngineError>, resource: &str) {
    match rejection(result) {
        Rejection::NotFound { resource: r, .. } => assert_eq!(r, resource),
        other => panic!("expected not found, got {other:?}"),
    }
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, EngineError>, field: &str) {
    match rejection(result) {
        Rejection::InvalidField { field: f, .. } => assert_eq!(f, field),
        other => panic!("expected invalid {field}, got {other:?}"),
    }
}

fn audit_actions(engine: &Engine) -> Vec<(String, String)> {
    let page = engine
        .audit_query(
            T,
            &AuditQuery {
                limit: 500,
                ..Default::default()
            },
        )
        .unwrap();
    page.entries
        .into_iter()
        .map(|e| (e.action, e.resource))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_priced_split_per_manufacturer_reserved_and_invoiced() {
    let w = world().await;
    let drill = w.product(&w.m1, ProductSpec::new("DRILL-1", 4_999)).await;
    let bits = w
        .product(
            &w.m1,
            ProductSpec {
                case_pack: 6,
                moq: 12,
                ..ProductSpec::new("BITS-6", 250)
            },
        )
        .await;
    let paint = w.product(&w.m2, ProductSpec::new("PAINT-W", 1_500)).await;
    let shop = w.retailer(RetailerSpec::net30("Corner Hardware")).await;

    let mut request = order(&shop, &[(drill.id, 2), (paint.id, 3)]);
    request.lines.push(OrderLineInput {
        product: ProductRef::Sku {
            manufacturer_id: w.m1.id,
            sku: "BITS-6".into(),
        },
        qty: 18,
    });
    request.po_number = Some("  PO-2026-001 ".into());
    request.shipping_address_label = Some("Back office".into());
    let placed = w.place(request).await.unwrap();
    assert!(!placed.replayed);
    let view = placed.order;
    let o = &view.order;
    assert_eq!(o.status, OrderStatus::Placed);
    assert_eq!(o.po_number.as_deref(), Some("PO-2026-001"));
    assert_eq!(o.shipping_address.label, "Back office");
    assert_eq!(o.line_count, 3);
    assert_eq!(o.total, eur(2 * 4_999 + 18 * 250 + 3 * 1_500));
    assert!(!o.approval_required);

    // One sub-order per manufacturer, lines in request order with their request index.
    assert_eq!(view.suborders.len(), 2);
    let s1 = &view.suborders[0];
    let s2 = &view.suborders[1];
    assert_eq!((s1.manufacturer_id, s2.manufacturer_id), (w.m1.id, w.m2.id));
    assert_eq!(
        s1.lines
            .iter()
            .map(|l| (l.line_no, l.product_id, l.qty))
            .collect::<Vec<_>>(),
        vec![(0, drill.id, 2), (2, bits.id, 18)]
    );
    assert_eq!(s1.subtotal, eur(2 * 4_999 + 18 * 250));
    assert_eq!(s2.lines[0].unit_price, eur(1_500));
    assert_eq!(s2.subtotal, eur(4_500));
    assert!(
        view.suborders
            .iter()
            .all(|s| s.status == SubOrderStatus::Placed)
    );
    assert_eq!(o.suborder_ids, vec![s1.id, s2.id]);

    // Stock is reserved, not yet shipped.
    assert_eq!(w.stock(drill.id), (100, 2));
    assert_eq!(w.stock(bits.id), (100, 18));
    assert_eq!(w.stock(paint.id), (100, 3));

    // Net 30: an invoice due 30 days after placement; it counts against the credit limit.
    let invoice = view.invoice.clone().unwrap();
    assert_eq!(Some(invoice.id), o.invoice_id);
    assert_eq!(invoice.amount, o.total);
    assert_eq!(invoice.status, InvoiceStatus::Open);
    assert_eq!(invoice.due_at_ms, invoice.issued_at_ms + 30 * DAY_MS);
    let credit = w
        .e()
        .retailer_credit(T, shop.id, invoice.issued_at_ms)
        .unwrap()
        .unwrap();
    assert_eq!(credit.open, o.total);
    assert_eq!(credit.overdue, eur(0));

    // The stored order reads back the same.
    assert_eq!(w.e().order(T, o.id).unwrap().unwrap(), view);
    let audit = audit_actions(w.e());
    assert!(audit.contains(&("order.place".into(), format!("order/{}", o.id))));
    assert!(audit.contains(&("invoice.issue".into(), format!("invoice/{}", invoice.id))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_price_list_and_volume_tiers_set_the_unit_price() {
    let w = world().await;
    let tiers = vec![
        PriceTier {
            min_qty: 10,
            unit_price: eur(900),
        },
        PriceTier {
            min_qty: 50,
            unit_price: eur(800),
        },
    ];
    let p = w
        .product_with_tiers(&w.m1, ProductSpec::new("TIERED", 1_000), tiers)
        .await;
    let group = w.e().create_customer_group(T, ADMIN, "Gold").await.unwrap();
    w.e()
        .set_price_list_entry(
            T,
            ADMIN,
            group.id,
            p.id,
            eur(700),
            vec![PriceTier {
                min_qty: 20,
                unit_price: eur(600),
            }],
        )
        .await
        .unwrap();
    let plain = w.retailer(RetailerSpec::net30("Plain")).await;
    let gold = w
        .retailer(RetailerSpec {
            group: Some(group.id),
            ..RetailerSpec::net30("Gold Shop")
        })
        .await;

    let unit = |placed: PlacedOrder| placed.order.suborders[0].lines[0].unit_price;
    assert_eq!(
        unit(w.place(order(&plain, &[(p.id, 5)])).await.unwrap()),
        eur(1_000)
    );
    assert_eq!(
        unit(w.place(order(&plain, &[(p.id, 10)])).await.unwrap()),
        eur(900)
    );
    assert_eq!(
        unit(w.place(order(&plain, &[(p.id, 50)])).await.unwrap()),
        eur(800)
    );
    // The group's entry replaces the base price and the product's tiers.
    assert_eq!(
        unit(w.place(order(&gold, &[(p.id, 10)])).await.unwrap()),
        eur(700)
    );
    let placed = w.place(order(&gold, &[(p.id, 20)])).await.unwrap();
    assert_eq!(placed.order.suborders[0].lines[0].line_total, eur(20 * 600));
    assert_eq!(placed.order.order.total, eur(12_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_offending_line_is_named_and_nothing_is_reserved() {
    let w = world().await;
    let ok = w.product(&w.m1, ProductSpec::new("OK-1", 100)).await;
    let cased = w
        .product(
            &w.m1,
            ProductSpec {
                case_pack: 6,
                moq: 12,
                ..ProductSpec::new("CASE-6", 100)
            },
        )
        .await;
    let scarce = w
        .product(
            &w.m1,
            ProductSpec {
                stock: 5,
                ..ProductSpec::new("SCARCE", 100)
            },
        )
        .await;
    let draft = w
        .e()
        .create_product(
            T,
            ADMIN,
            ProductInput {
                manufacturer_id: w.m1.id,
                sku: "DRAFT".into(),
                name: "Draft".into(),
                description: String::new(),
                category_id: None,
                attributes: BTreeMap::new(),
                images: Vec::new(),
                unit_of_measure: "each".into(),
                case_pack: 1,
                min_order_qty: 1,
                base_price: eur(100),
                tiers: Vec::new(),
            },
        )
        .await
        .unwrap();
    w.receive(w.warehouse, draft.id, 10).await;
    let suspended = w.product(&w.m2, ProductSpec::new("SUSP", 100)).await;
    w.e()
        .set_manufacturer_verification(T, ADMIN, w.m2.id, VerificationStatus::Suspended)
        .await
        .unwrap();
    let shop = w.retailer(RetailerSpec::net30("Shop")).await;

    let mut request = order(
        &shop,
        &[
            (ok.id, 1),           // 0: fine
            (999_999, 1),         // 1: unknown id
            (cased.id, 6),        // 2: below the minimum (12)
            (scarce.id, 6),       // 3: only 5 in stock
            (draft.id, 1),        // 4: not active
            (suspended.id, 1),    // 5: manufacturer suspended
            (ok.id, 2),           // 6: duplicate of line 0
            (cased.id + 1000, 0), // 7: unknown (checked before the quantity)
        ],
    );
    request.lines.push(OrderLineInput {
        // 8: unknown SKU
        product: ProductRef::Sku {
            manufacturer_id: w.m1.id,
            sku: "NOPE".into(),
        },
        qty: 1,
    });
    let problems = match rejection(w.place(request).await) {
        Rejection::OrderLines { problems } => problems,
        other => panic!("expected line problems, got {other:?}"),
    };
    let named: Vec<(usize, &str)> = problems.iter().map(|p| (p.line, p.code)).collect();
    assert_eq!(
        named,
        vec![
            (1, "unknown_product"),
            (2, "below_minimum_quantity"),
            (3, "insufficient_stock"),
            (4, "product_not_active"),
            (5, "manufacturer_not_verified"),
            (6, "duplicate_product"),
            (7, "unknown_product"),
            (8, "unknown_product"),
        ],
        "{problems:#?}"
    );
    assert!(
        problems[2].detail.contains("5 available"),
        "{}",
        problems[2].detail
    );

    // A line can have several problems at once; quantities out of range are named too.
    let problems = match rejection(w.place(order(&shop, &[(cased.id, 7), (ok.id, 0)])).await) {
        Rejection::OrderLines { problems } => problems,
        other => panic!("expected line problems, got {other:?}"),
    };
    assert_eq!(
        problems
            .iter()
            .map(|p| (p.line, p.code))
            .collect::<Vec<_>>(),
        vec![
            (0, "below_minimum_quantity"),
            (0, "not_case_pack_multiple"),
            (1, "invalid_quantity"),
        ]
    );

    // The rejected orders left nothing: no reservation, no order, no audit entry.
    for p in [&ok, &cased, &scarce, &draft, &suspended] {
        assert_eq!(w.stock(p.id).1, 0, "product {}", p.id);
    }
    assert!(
        w.e()
            .orders(
                T,
                &OrderListQuery {
                    limit: 10,
                    ..Default::default()
                }
            )
            .unwrap()
            .items
            .is_empty()
    );
    assert!(!audit_actions(w.e()).iter().any(|(a, _)| a == "order.place"));

    // The fine line alone goes through.
    w.place(order(&shop, &[(ok.id, 1), (cased.id, 12)]))
        .await
        .unwrap();
    assert_eq!(w.stock(cased.id), (100, 12));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unverified_manufacturers_may_sell_when_the_tenant_does_not_require_verification() {
    let w = world().await;
    let p = w.product(&w.m1, ProductSpec::new("P", 100)).await;
    w.e()
        .set_manufacturer_verification(T, ADMIN, w.m1.id, VerificationStatus::Pending)
        .await
        .unwrap();
    let shop = w.retailer(RetailerSpec::net30("Shop")).await;
    let problems = match rejection(w.place(order(&shop, &[(p.id, 1)])).await) {
        Rejection::OrderLines { problems } => problems,
        other => panic!("{other:?}"),
    };
    assert_eq!(problems[0].code, "manufacturer_not_verified");
    let mut settings = w.e().catalog_settings(T).unwrap();
    settings.require_verified_manufacturer_to_publish = false;
    w.e()
        .set_catalog_settings(T, ADMIN, settings)
        .await
        .unwrap();
    w.place(order(&shop, &[(p.id, 1)])).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_level_input_is_checked() {
    let w = world().await;
    let p = w.product(&w.m1, ProductSpec::new("P", 100)).await;
    let shop = w.retailer(RetailerSpec::net30("Shop")).await;

    let mut unknown = order(&shop, &[(p.id, 1)]);
    unknown.retailer_id = 4242;
    assert_not_found(w.place(unknown).await, "retailer");
    assert_invalid(w.place(order(&shop, &[])).await, "lines");
    let too_many: Vec<(u64, u32)> = (0..=ORDER_LINES_MAX as u64).map(|i| (i + 1, 1)).collect();
    assert_invalid(w.place(order(&shop, &too_many)).await, "lines");
    let mut po = order(&shop, &[(p.id, 1)]);
    po.po_number = Some("X".repeat(65));
    assert_invalid(w.place(po).await, "po_number");
    let mut label = order(&shop, &[(p.id, 1)]);
    label.shipping_address_label = Some("Nowhere".into());
    assert_invalid(w.place(label).await, "shipping_address_label");
    for bad in ["", "has space", &"k".repeat(256), "tab\tkey"] {
        let mut key = order(&shop, &[(p.id, 1)]);
        key.idempotency_key = Some(bad.to_string());
        assert_invalid(w.place(key).await, "idempotency_key");
    }
    let homeless = w
        .e()
        .create_retailer(
            T,
            ADMIN,
            RetailerInput {
                name: "No Address".into(),
                customer_group_id: None,
                payment_terms: PaymentTerms::Prepaid,
                credit_limit: eur(0),
                approval_threshold: None,
                addresses: Vec::new(),
            },
        )
        .await
        .unwrap();
    assert_invalid(
        w.place(order(&homeless, &[(p.id, 1)])).await,
        "shipping_address_label",
    );
    assert_eq!(w.stock(p.id), (100, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_replays_the_same_order_and_refuses_another_body() {
    let w = world().await;
    let p = w.product(&w.m1, ProductSpec::new("P", 100)).await;
    let shop = w.retailer(RetailerSpec::net30("Shop")).await;
    let mut request = order(&shop, &[(p.id, 4)]);
    request.idempotency_key = Some("key-1".into());
    request.request_hash = [1; 32];

    let first = w.place(request.clone()).await.unwrap();
    assert!(!first.replayed);
    // The engine's read-side fast path.
    let again = w.place(request.clone()).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.order, first.order);
    // The command itself (as when two requests race past the fast path).
    let at = first.order.order.created_at_ms + 1;
    let replayed = match w
        .run_at(at, OrdersAction::Place(request.clone()))
        .await
        .unwrap()
    {
        CommandOutput::Orders(mercato_engine::orders::OrdersOutput::Placed(p)) => *p,
        other => panic!("{other:?}"),
    };
    assert!(replayed.replayed);
    assert_eq!(replayed.order.order.id, first.order.order.id);
    // One order, one reservation.
    assert_eq!(w.stock(p.id), (100, 4));
    let orders = w
        .e()
        .orders(
            T,
            &OrderListQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(orders.items.len(), 1);

    // Same key, different body: a conflict, on both paths.
    let mut other = request.clone();
    other.lines[0].qty = 5;
    other.request_hash = [2; 32];
    assert_eq!(
        conflict_code(w.place(other.clone()).await),
        "idempotency_key_reused"
    );
    match w.run_at(at, OrdersAction::Place(other.clone())).await {
        Err(Rejection::Conflict { code, .. }) => assert_eq!(code, "idempotency_key_reused"),
        other => panic!("{other:?}"),
    }
    // Keys are per buyer: another buyer may use the same key.
    let mut colleague = other.clone();
    colleague.buyer_user_id = BUYER + 1;
    let second = w.place(colleague).await.unwrap();
    assert_ne!(second.order.order.id, first.order.order.id);
    assert_eq!(w.stock(p.id), (100, 9));

    // After the retention period the key is free again (and the expired entry is cleaned up).
    let later = at + IDEMPOTENCY_KEY_RETENTION_MS + 1;
    let fresh = match w.run_at(later, OrdersAction::Place(other)).await.unwrap() {
        CommandOutput::Orders(mercato_engine::orders::OrdersOutput::Placed(p)) => *p,
        other => panic!("{other:?}"),
    };
    assert!(!fresh.replayed);
    assert_ne!(fresh.order.order.id, first.order.order.id);
    assert_eq!(w.stock(p.id), (100, 14));

    // A rejected placement does not consume its key.
    let mut failing = order(&shop, &[(p.id, 1_000)]);
    failing.idempotency_key = Some("key-2".into());
    assert!(matches!(
        rejection(w.place(failing.clone()).await),
        Rejection::OrderLines { .. }
    ));
    failing.lines[0].qty = 1;
    failing.request_hash = [3; 32];
    assert!(!w.place(failing).await.unwrap().replayed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_with_one_key_place_one_order() {
    let w = world().await;
    let p = w.product(&w.m1, ProductSpec::new("P", 100)).await;
    let shop = w.retailer(RetailerSpec::net30("Shop")).await;
    let mut request = order(&shop, &[(p.id, 3)]);
    request.idempotency_key = Some("retry-storm".into());
    request.request_hash = [9; 32];
    // All start before any is durable, so most pass the read-side fast path: the command
    // decides.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let engine = Arc::clone(&w.engine);
            let request = request.clone();
            tokio::spawn(async move { engine.place_order(T, Actor::User(BUYER), request).await })
        })
        .collect();
    let mut ids = Vec::new();
    let mut fresh = 0;
    for task in tasks {
        let placed = task.await.unwrap().unwrap();
        fresh += usize::from(!placed.replayed);
        ids.push(placed.order.order.id);
    }
    assert_eq!(fresh, 1);
    ids.dedup();
    assert_eq!(ids.len(), 1);
    assert_eq!(w.stock(p.id), (100, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_placements_for_the_last_units_never_oversell() {
    let w = world().await;
    let p = w
        .product(
            &w.m1,
            ProductSpec {
                stock: 10,
                ..ProductSpec::new("LAST", 100)
            },
        )
        .await;
    let shop = w.retailer(RetailerSpec::net30("Shop")).await;
    let mut tasks = Vec::new();
    for i in 0..30u32 {
        let engine = Arc::clone(&w.engine);
        // Buyers ask for 1, 2 or 3 units.
        let request = order(&shop, &[(p.id, 1 + i % 3)]);
        tasks.push(tokio::spawn(async move {
            engine.place_order(T, Actor::User(BUYER), request).await
        }));
    }
    let mut placed_units = 0u64;
    let mut refused_min_qty = u64::MAX;
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(placed) => placed_units += u64::from(placed.order.suborders[0].lines[0].qty),
            Err(EngineError::Rejected(Rejection::OrderLines { problems })) => {
                assert_eq!(problems[0].code, "insufficient_stock");
                refused_min_qty = refused_min_qty.min(1 + i as u64 % 3);
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(refused_min_qty < u64::MAX, "some placements must lose");
    let (on_hand, reserved) = w.stock(p.id);
    assert_eq!(on_hand, 10);
    assert_eq!(reserved, placed_units);
    assert!(placed_units <= 10);
    // Availability only shrinks: what is left is less than any refused request asked for.
    assert!(10 - placed_units < refused_min_qty);
    let orders = w
        .e()
        .orders(
            T,
            &OrderListQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .unwrap();
    let ordered: u64 = orders
        .items
        .iter()
        .map(|o| o.total.minor as u64 / 100)
        .sum();
    assert_eq!(ordered, placed_units);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suborders_move_through_their_lifecycle_and_shipping_decrements_on_hand() {
    let w = world().await;
    let a = w.product(&w.m1, ProductSpec::new("A", 100)).await;
    let b = w.product(&w.m2, ProductSpec::new("B", 200)).await;
    let shop = w.retailer(RetailerSpec::net30("Shop")).await;
    let view = w
        .place(order(&shop, &[(a.id, 10), (b.id, 5)]))
        .await
        .unwrap()
        .order;
    let (s1, s2) = (view.suborders[0].id, view.suborders[1].id);
    let maker = Actor::User(77);

    // Another manufacturer's sub-order does not exist for it.
    assert_not_found(
        w.e().confirm_suborder(T, maker.clone(), s1, w.m2.id).await,
        "suborder",
    );
    // Illegal transitions.
    assert_eq!(
        conflict_code(
            w.e()
                .ship_suborder(T, maker.clone(), s1, w.m1.id, None)
                .await
        ),
        "illegal_transition"
    );
    assert_eq!(
        conflict_code(
            w.e()
                .deliver_suborder(T, maker.clone(), s1, Party::Manufacturer(w.m1.id))
                .await
        ),
        "illegal_transition"
    );
    let confirmed = w
        .e()
        .confirm_suborder(T, maker.clone(), s1, w.m1.id)
        .await
        .unwrap();
    assert_eq!(confirmed.suborder.status, SubOrderStatus::Confirmed);
    assert_eq!(confirmed.order.status, OrderStatus::Placed);
    assert_eq!(
        conflict_code(w.e().confirm_suborder(T, maker.clone(), s1, w.m1.id).await),
        "illegal_transition"
    );
    assert_invalid(
        w.e()
            .ship_suborder(T, maker.clone(), s1, w.m1.id, Some("T".repeat(201)))
            .await,
        "tracking",
    );

    let shipped = w
        .e()
        .ship_suborder(T, maker.clone(), s1, w.m1.id, Some("DHL 123".into()))
        .await
        .unwrap();
    assert_eq!(shipped.suborder.status, SubOrderStatus::Shipped);
    assert_eq!(shipped.suborder.tracking.as_deref(), Some("DHL 123"));
    // The reservation became a stock decrement, recorded as a shipment.
    assert_eq!(w.stock(a.id), (90, 0));
    assert_eq!(w.stock(b.id), (100, 5));
    let log = w
        .e()
        .stock_adjustments(
            T,
            &mercato_engine::inventory::AdjustmentQuery {
                product_id: Some(a.id),
                after: None,
                limit: 10,
            },
        )
        .unwrap();
    let last = log.items.last().unwrap();
    assert_eq!(
        (
            last.reason,
            last.delta,
            last.suborder_id,
            last.on_hand_after
        ),
        (AdjustmentReason::Shipment, -10, Some(s1), 90)
    );
    // Shipped goods cannot be cancelled.
    assert_eq!(
        conflict_code(
            w.e()
                .cancel_suborder(T, maker.clone(), s1, Party::Manufacturer(w.m1.id), None)
                .await
        ),
        "illegal_transition"
    );
    // The retailer confirms delivery of its own sub-order; another retailer cannot.
    assert_not_found(
        w.e()
            .deliver_suborder(T, Actor::User(BUYER), s1, Party::Retailer(shop.id + 1))
            .await,
        "suborder",
    );
    let delivered = w
        .e()
        .deliver_suborder(T, Actor::User(BUYER), s1, Party::Retailer(shop.id))
        .await
        .unwrap();
    assert_eq!(delivered.suborder.status, SubOrderStatus::Delivered);
    assert_eq!(
        delivered
            .suborder
            .history
            .iter()
            .map(|h| h.status)
            .collect::<Vec<_>>(),
        vec![
            SubOrderStatus::Placed,
            SubOrderStatus::Confirmed,
            SubOrderStatus::Shipped,
            SubOrderStatus::Delivered
        ]
    );
    assert_eq!(delivered.order.status, OrderStatus::Placed);

    // The other sub-order is cancelled: the order is complete (one delivered, one cancelled).
    let cancelled = w
        .e()
        .cancel_suborder(
            T,
            maker.clone(),
            s2,
            Party::Manufacturer(w.m2.id),
            Some("out of paint".into()),
        )
        .await
        .unwrap();
    assert_eq!(cancelled.order.status, OrderStatus::Completed);
    assert_eq!(
        cancelled.suborder.cancel_reason.as_deref(),
        Some("out of paint")
    );
    assert_eq!(w.stock(b.id), (100, 0));
    assert_eq!(
        conflict_code(
            w.e()
                .deliver_suborder(T, maker.clone(), s2, Party::Manufacturer(w.m2.id))
                .await
        ),
        "illegal_transition"
    );
    assert_not_found(
        w.e().confirm_suborder(T, maker, 424_242, w.m1.id).await,
        "suborder",
    );

    let audit = audit_actions(w.e());
    for action in [
        "suborder.confirm",
        "suborder.ship",
        "suborder.deliver",
        "suborder.cancel",
        "invoice.credit",
    ] {
        assert!(audit.iter().any(|(a, _)| a == action), "{action}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_releases_stock_and_credits_the_invoice() {
    let w = world().await;
    let a = w.product(&w.m1, ProductSpec::new("A", 1_000)).await;
    let b = w.product(&w.m2, ProductSpec::new("B", 2_000)).await;
    let shop = w.retailer(RetailerSpec::net30("Shop")).await;
    let view = w
        .place(order(&shop, &[(a.id, 3), (b.id, 2)]))
        .await
        .unwrap()
        .order;
    assert_eq!(w.available(a.id), 97);
    let (s1, s2) = (view.suborders[0].id, view.suborders[1].id);
    let at = view.order.created_at_ms;

    // A retailer may cancel its own order's sub-order, from placed or confirmed.
    w.e()
        .confirm_suborder(T, Actor::User(1), s1, w.m1.id)
        .await
        .unwrap();
    let change = w
        .e()
        .cancel_suborder(T, Actor::User(BUYER), s1, Party::Retailer(shop.id), None)
        .await
        .unwrap();
    assert_eq!(change.suborder.status, SubOrderStatus::Cancelled);
    assert_eq!(change.order.status, OrderStatus::Placed);
    assert_eq!(w.stock(a.id), (100, 0));
    let invoice = change.invoice.unwrap();
    assert_eq!(invoice.credited, eur(3_000));
    assert_eq!(invoice.outstanding(), eur(4_000));
    assert_eq!(invoice.status, InvoiceStatus::Open);
    assert_eq!(
        w.e().retailer_credit(T, shop.id, at).unwrap().unwrap().open,
        eur(4_000)
    );
    assert_invalid(
        w.e()
            .cancel_suborder(
                T,
                Actor::User(BUYER),
                s2,
                Party::Retailer(shop.id),
                Some("x".repeat(501)),
            )
            .await,
        "reason",
    );

    // Cancelling the last one cancels the order and voids the unpaid invoice.
    let change = w
        .e()
        .cancel_suborder(T, Actor::User(BUYER), s2, Party::Retailer(shop.id), None)
        .await
        .unwrap();
    assert_eq!(change.order.status, OrderStatus::Cancelled);
    assert_eq!(change.invoice.unwrap().status, InvoiceStatus::Void);
    assert_eq!(w.stock(b.id), (100, 0));
    assert_eq!(
        w.e().retailer_credit(T, shop.id, at).unwrap().unwrap().open,
        eur(0)
    );
    assert_eq!(
        conflict_code(
            w.e()
                .cancel_suborder(T, Actor::User(BUYER), s2, Party::Retailer(shop.id), None)
                .await
        ),
        "illegal_transition"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdue_invoices_count_against_the_credit_limit() {
    let w = world().await;
    let p = w.product(&w.m1, ProductSpec::new("P", 10_000)).await;
    let shop = w
        .retailer(RetailerSpec {
            terms: PaymentTerms::Net15,
            credit_limit: 100_000, // EUR 1,000.00
            ..RetailerSpec::net30("Net 15 Shop")
        })
        .await;
    let t0 = 1_800_000_000_000;
    let place_at = |at: u64, qty: u32| {
        let request = order(&shop, &[(p.id, qty)]);
        let w = &w;
        async move {
            w.run_at(at, OrdersAction::Place(request))
                .await
                .map(|out| match out {
                    CommandOutput::Orders(mercato_engine::orders::OrdersOutput::Placed(p)) => *p,
                    other => panic!("{other:?}"),
                })
        }
    };
    // EUR 600 on net 15.
    let first = place_at(t0, 6).await.unwrap();
    let invoice = first.order.invoice.unwrap();
    assert_eq!(invoice.due_at_ms, t0 + 15 * DAY_MS);

    // Sixteen days later it is overdue; 600 open + 500 new > 1,000.
    let t16 = t0 + 16 * DAY_MS;
    let credit = w.e().retailer_credit(T, shop.id, t16).unwrap().unwrap();
    assert_eq!(
        (credit.open, credit.overdue, credit.available),
        (eur(60_000), eur(60_000), eur(40_000))
    );
    assert!(invoice.is_overdue(t16) && !invoice.is_overdue(t0));
    match place_at(t16, 5).await {
        Err(Rejection::Conflict { code, detail }) => {
            assert_eq!(code, "credit_limit_exceeded");
            assert!(detail.contains("of which 600.00 EUR overdue"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    // Exactly up to the limit is fine: 600 + 400 = 1,000.
    let second = place_at(t16, 4).await.unwrap();
    // A payment frees credit again.
    match place_at(t16, 1).await {
        Err(Rejection::Conflict { code, .. }) => assert_eq!(code, "credit_limit_exceeded"),
        other => panic!("{other:?}"),
    }
    w.e()
        .record_payment(T, ADMIN, invoice.id, eur(30_000), "SEPA 1")
        .await
        .unwrap();
    place_at(t16, 3).await.unwrap();
    let credit = w.e().retailer_credit(T, shop.id, t16).unwrap().unwrap();
    assert_eq!((credit.open, credit.overdue), (eur(100_000), eur(30_000)));
    assert_eq!(second.order.order.status, OrderStatus::Placed);

    // A prepaid retailer has no credit to check; its invoice is due on issue.
    let prepaid = w
        .retailer(RetailerSpec {
            terms: PaymentTerms::Prepaid,
            credit_limit: 0,
            ..RetailerSpec::net30("Cash Shop")
        })
        .await;
    let placed = w.place(order(&prepaid, &[(p.id, 2)])).await.unwrap();
    let inv = placed.order.invoice.unwrap();
    assert_eq!(inv.due_at_ms, inv.issued_at_ms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_above_the_threshold_wait_for_an_approver() {
    let w = world().await;
    let p = w.product(&w.m1, ProductSpec::new("P", 10_000)).await;
    let shop = w
        .retailer(RetailerSpec {
            approval_threshold: Some(50_000),
            ..RetailerSpec::net30("Careful Shop")
        })
        .await;
    let other_shop = w.retailer(RetailerSpec::net30("Other")).await;

    // At the threshold: no approval needed.
    let small = w.place(order(&shop, &[(p.id, 5)])).await.unwrap().order;
    assert_eq!(small.order.status, OrderStatus::Placed);

    let big = w.place(order(&shop, &[(p.id, 8)])).await.unwrap().order;
    assert_eq!(big.order.status, OrderStatus::AwaitingApproval);
    assert!(big.order.approval_required);
    assert!(big.invoice.is_none());
    assert_eq!(big.suborders[0].status, SubOrderStatus::AwaitingApproval);
    assert_eq!(w.stock(p.id), (100, 13));
    let sub = big.suborders[0].id;
    // Nothing moves before the decision.
    assert_eq!(
        conflict_code(w.e().confirm_suborder(T, ADMIN, sub, w.m1.id).await),
        "illegal_transition"
    );
    assert_eq!(
        conflict_code(
            w.e()
                .cancel_suborder(T, ADMIN, sub, Party::Retailer(shop.id), None)
                .await
        ),
        "illegal_transition"
    );
    let decision = |order_id: u64, retailer_id: u64| ApprovalInput {
        order_id,
        retailer_id,
        approver_user_id: APPROVER,
        note: Some("ok for Q3".into()),
    };
    // An approver of another retailer does not see the order.
    assert_not_found(
        w.e()
            .approve_order(
                T,
                Actor::User(APPROVER),
                decision(big.order.id, other_shop.id),
            )
            .await,
        "order",
    );
    let approved = w
        .e()
        .approve_order(T, Actor::User(APPROVER), decision(big.order.id, shop.id))
        .await
        .unwrap();
    assert_eq!(approved.order.status, OrderStatus::Placed);
    assert_eq!(approved.suborders[0].status, SubOrderStatus::Placed);
    let approval = approved.order.approval.clone().unwrap();
    assert!(approval.approved);
    assert_eq!(approval.by_user_id, APPROVER);
    let invoice = approved.invoice.clone().unwrap();
    assert_eq!(invoice.amount, eur(80_000));
    assert_eq!(w.e().order(T, big.order.id).unwrap().unwrap(), approved);
    assert_eq!(
        conflict_code(
            w.e()
                .approve_order(T, Actor::User(APPROVER), decision(big.order.id, shop.id))
                .await
        ),
        "illegal_transition"
    );
    assert_eq!(
        conflict_code(
            w.e()
                .reject_order(T, Actor::User(APPROVER), decision(small.order.id, shop.id))
                .await
        ),
        "illegal_transition"
    );

    // Rejection cancels the order and releases its stock.
    let rejected_one = w.place(order(&shop, &[(p.id, 9)])).await.unwrap().order;
    assert_eq!(w.stock(p.id), (100, 22));
    let rejected = w
        .e()
        .reject_order(
            T,
            Actor::User(APPROVER),
            decision(rejected_one.order.id, shop.id),
        )
        .await
        .unwrap();
    assert_eq!(rejected.order.status, OrderStatus::Cancelled);
    assert_eq!(rejected.suborders[0].status, SubOrderStatus::Cancelled);
    assert!(!rejected.order.approval.unwrap().approved);
    assert!(rejected.invoice.is_none());
    assert_eq!(w.stock(p.id), (100, 13));

    // Approval re-checks the credit limit at the time of the decision.
    let tight = w
        .retailer(RetailerSpec {
            approval_threshold: Some(10_000),
            credit_limit: 30_000,
            ..RetailerSpec::net30("Tight")
        })
        .await;
    let pending = w.place(order(&tight, &[(p.id, 2)])).await.unwrap().order;
    assert_eq!(pending.order.status, OrderStatus::AwaitingApproval);
    w.place(order(&tight, &[(p.id, 1)])).await.unwrap();
    w.place(order(&tight, &[(p.id, 1)])).await.unwrap();
    assert_eq!(
        conflict_code(
            w.e()
                .approve_order(
                    T,
                    Actor::User(APPROVER),
                    decision(pending.order.id, tight.id)
                )
                .await
        ),
        "credit_limit_exceeded"
    );
    let audit = audit_actions(w.e());
    assert!(audit.contains(&("order.approve".into(), format!("order/{}", big.order.id))));
    assert!(audit.contains(&(
        "order.reject".into(),
        format!("order/{}", rejected_one.order.id)
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_settle_invoices_and_overpayment_is_refused() {
    let w = world().await;
    let p = w.product(&w.m1, ProductSpec::new("P", 2_500)).await;
    let shop = w.retailer(RetailerSpec::net30("Shop")).await;
    let view = w.place(order(&shop, &[(p.id, 4)])).await.unwrap().order;
    let invoice = view.invoice.unwrap();
    assert_eq!(invoice.amount, eur(10_000));

    let pay = |amount: Money, reference: &'static str| {
        let engine = Arc::clone(&w.engine);
        let id = invoice.id;
        async move { engine.record_payment(T, ADMIN, id, amount, reference).await }
    };
    assert_eq!(conflict_code(pay(eur(10_001), "R1").await), "overpayment");
    assert_invalid(pay(eur(0), "R1").await, "amount");
    assert_invalid(pay(eur(-5), "R1").await, "amount");
    assert_invalid(pay(Money::new(100, Currency::USD), "R1").await, "amount");
    assert_invalid(pay(eur(100), "   ").await, "reference");
    assert_not_found(
        w.e().record_payment(T, ADMIN, 777, eur(1), "R").await,
        "invoice",
    );

    let part = pay(eur(4_000), "SEPA 001").await.unwrap();
    assert_eq!(part.invoice.status, InvoiceStatus::Open);
    assert_eq!(part.invoice.outstanding(), eur(6_000));
    assert_eq!(conflict_code(pay(eur(6_001), "R2").await), "overpayment");
    let rest = pay(eur(6_000), "SEPA 002").await.unwrap();
    assert_eq!(rest.invoice.status, InvoiceStatus::Paid);
    assert_eq!(rest.invoice.paid, eur(10_000));
    assert_eq!(conflict_code(pay(eur(1), "R3").await), "invoice_not_open");

    let payments = w.e().payments_of_invoice(T, invoice.id, None, 1).unwrap();
    assert_eq!(payments.items[0].reference, "SEPA 001");
    let next = w
        .e()
        .payments_of_invoice(T, invoice.id, payments.next_after, 10)
        .unwrap();
    assert_eq!(next.items.len(), 1);
    assert_eq!(next.items[0].amount, eur(6_000));
    assert_eq!(
        w.e()
            .retailer_credit(T, shop.id, invoice.issued_at_ms)
            .unwrap()
            .unwrap()
            .open,
        eur(0)
    );
    let audit = audit_actions(w.e());
    assert_eq!(
        audit.iter().filter(|(a, _)| a == "payment.record").count(),
        2
    );
    assert!(audit.contains(&("invoice.paid".into(), format!("invoice/{}", invoice.id))));

    // Cancelling after payment leaves a refund due and the invoice paid.
    let sub = view.suborders[0].id;
    let change = w
        .e()
        .cancel_suborder(T, ADMIN, sub, Party::Manufacturer(w.m1.id), None)
        .await
        .unwrap();
    let inv = change.invoice.unwrap();
    assert_eq!(inv.status, InvoiceStatus::Paid);
    assert_eq!(inv.refund_due(), eur(10_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reorder_repeats_the_lines_and_checks_them_again() {
    let w = world().await;
    let a = w.product(&w.m1, ProductSpec::new("A", 100)).await;
    let b = w.product(&w.m2, ProductSpec::new("B", 200)).await;
    let shop = w.retailer(RetailerSpec::net30("Shop")).await;
    let other = w.retailer(RetailerSpec::net30("Other")).await;
    let source = w
        .place(order(&shop, &[(b.id, 2), (a.id, 3)]))
        .await
        .unwrap()
        .order;
    let reorder = |source_order_id: u64, retailer_id: u64| Reorder {
        source_order_id,
        retailer_id,
        buyer_user_id: BUYER,
        po_number: Some("PO-again".into()),
        shipping_address_label: None,
        idempotency_key: Some("reorder-1".into()),
        request_hash: [7; 32],
    };
    let again = w
        .e()
        .reorder(T, Actor::User(BUYER), reorder(source.order.id, shop.id))
        .await
        .unwrap();
    let o = &again.order.order;
    assert_ne!(o.id, source.order.id);
    assert_eq!(o.reorder_of, Some(source.order.id));
    assert_eq!(o.total, source.order.total);
    let lines = |v: &mercato_engine::orders::OrderView| {
        let mut l: Vec<(u32, u64, u32)> = v
            .suborders
            .iter()
            .flat_map(|s| s.lines.iter().map(|l| (l.line_no, l.product_id, l.qty)))
            .collect();
        l.sort();
        l
    };
    assert_eq!(lines(&again.order), lines(&source));
    assert_eq!(w.stock(a.id), (100, 6));
    // Idempotent like a placement.
    let replay = w
        .e()
        .reorder(T, Actor::User(BUYER), reorder(source.order.id, shop.id))
        .await
        .unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.order.order.id, o.id);
    assert!(audit_actions(w.e()).contains(&("order.reorder".into(), format!("order/{}", o.id))));

    // Another retailer's order cannot be reordered.
    let mut foreign = reorder(source.order.id, other.id);
    foreign.idempotency_key = None;
    assert_not_found(w.e().reorder(T, Actor::User(BUYER), foreign).await, "order");

    // The lines are checked as new: an archived product is named by its line.
    w.e()
        .set_product_status(T, ADMIN, a.id, None, ProductStatus::Archived)
        .await
        .unwrap();
    let mut fresh = reorder(source.order.id, shop.id);
    fresh.idempotency_key = None;
    match rejection(w.e().reorder(T, Actor::User(BUYER), fresh).await) {
        Rejection::OrderLines { problems } => assert_eq!(
            problems
                .iter()
                .map(|p: &LineProblem| (p.line, p.code))
                .collect::<Vec<_>>(),
            vec![(1, "product_not_active")]
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_cursor_paginated_and_filter_by_status() {
    let w = world().await;
    let a = w.product(&w.m1, ProductSpec::new("A", 100)).await;
    let b = w.product(&w.m2, ProductSpec::new("B", 100)).await;
    let shop = w.retailer(RetailerSpec::net30("Shop")).await;
    let other = w.retailer(RetailerSpec::net30("Other")).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            w.place(order(&shop, &[(a.id, 1)]))
                .await
                .unwrap()
                .order
                .order
                .id,
        );
    }
    let mixed = w
        .place(order(&other, &[(a.id, 1), (b.id, 1)]))
        .await
        .unwrap()
        .order;
    // Cancel two of the shop's orders (their only sub-order).
    for id in &ids[1..3] {
        let view = w.e().order(T, *id).unwrap().unwrap();
        w.e()
            .cancel_suborder(
                T,
                ADMIN,
                view.suborders[0].id,
                Party::Retailer(shop.id),
                None,
            )
            .await
            .unwrap();
    }

    let q = |status: Option<OrderStatus>, after: Option<u64>, limit: usize| OrderListQuery {
        status,
        after,
        limit,
    };
    let page1 = w
        .e()
        .orders_of_retailer(T, shop.id, &q(None, None, 2))
        .unwrap();
    assert_eq!(
        page1.items.iter().map(|o| o.id).collect::<Vec<_>>(),
        ids[..2]
    );
    let page2 = w
        .e()
        .orders_of_retailer(T, shop.id, &q(None, page1.next_after, 2))
        .unwrap();
    assert_eq!(
        page2.items.iter().map(|o| o.id).collect::<Vec<_>>(),
        ids[2..4]
    );
    let page3 = w
        .e()
        .orders_of_retailer(T, shop.id, &q(None, page2.next_after, 2))
        .unwrap();
    assert_eq!(
        page3.items.iter().map(|o| o.id).collect::<Vec<_>>(),
        ids[4..]
    );
    assert_eq!(page3.next_after, None);

    let cancelled = w
        .e()
        .orders_of_retailer(T, shop.id, &q(Some(OrderStatus::Cancelled), None, 10))
        .unwrap();
    assert_eq!(
        cancelled.items.iter().map(|o| o.id).collect::<Vec<_>>(),
        ids[1..3]
    );
    let placed = w
        .e()
        .orders_of_retailer(T, shop.id, &q(Some(OrderStatus::Placed), Some(ids[0]), 10))
        .unwrap();
    assert_eq!(
        placed.items.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![ids[3], ids[4]]
    );
    let all = w.e().orders(T, &q(None, None, 100)).unwrap();
    assert_eq!(all.items.len(), 6);
    let all_placed = w
        .e()
        .orders(T, &q(Some(OrderStatus::Placed), None, 100))
        .unwrap();
    assert_eq!(all_placed.items.len(), 4);
    assert_eq!(all_placed.items.last().unwrap().id, mixed.order.id);

    // The manufacturer's view: its sub-orders only.
    let m2_subs = w
        .e()
        .suborders_of_manufacturer(
            T,
            w.m2.id,
            &SubOrderListQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(m2_subs.items.len(), 1);
    assert_eq!(m2_subs.items[0].order_id, mixed.order.id);
    let m1_cancelled = w
        .e()
        .suborders_of_manufacturer(
            T,
            w.m1.id,
            &SubOrderListQuery {
                status: Some(SubOrderStatus::Cancelled),
                after: None,
                limit: 10,
            },
        )
        .unwrap();
    assert_eq!(m1_cancelled.items.len(), 2);
    let m1_placed = w
        .e()
        .suborders_of_manufacturer(
            T,
            w.m1.id,
            &SubOrderListQuery {
                status: Some(SubOrderStatus::Placed),
                after: None,
                limit: 10,
            },
        )
        .unwrap();
    assert_eq!(m1_placed.items.len(), 4);

    let invoices = w.e().invoices_of_retailer(T, shop.id, None, 3).unwrap();
    assert_eq!(invoices.items.len(), 3);
    let rest = w
        .e()
        .invoices_of_retailer(T, shop.id, invoices.next_after, 3)
        .unwrap();
    assert_eq!(rest.items.len(), 2);
    assert!(invoices.items.iter().all(|i| i.retailer_id == shop.id));
    assert_eq!(
        w.e()
            .invoices_of_retailer(T, other.id, None, 10)
            .unwrap()
            .items
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_sees_none_of_it_and_the_audit_chain_holds() {
    let w = world().await;
    let p = w.product(&w.m1, ProductSpec::new("P", 100)).await;
    let shop = w.retailer(RetailerSpec::net30("Shop")).await;
    let view = w.place(order(&shop, &[(p.id, 1)])).await.unwrap().order;
    let t2 = TenantId(502);
    w.e().create_tenant(t2, "Other Tenant").await.unwrap();
    let sub = view.suborders[0].id;
    assert!(w.e().order(t2, view.order.id).unwrap().is_none());
    assert!(w.e().suborder(t2, sub).unwrap().is_none());
    assert!(
        w.e()
            .invoice(t2, view.invoice.unwrap().id)
            .unwrap()
            .is_none()
    );
    assert_not_found(
        w.e().confirm_suborder(t2, ADMIN, sub, w.m1.id).await,
        "suborder",
    );
    assert_not_found(
        w.e()
            .place_order(t2, ADMIN, order(&shop, &[(p.id, 1)]))
            .await,
        "retailer",
    );
    assert_eq!(w.e().product_stock(t2, p.id).unwrap().on_hand, 0);
    assert!(matches!(
        w.e().audit_verify(T).unwrap(),
        ChainCheck::Intact { .. }
    ));
}
