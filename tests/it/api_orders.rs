//! `/v1/orders`, `/v1/suborders` and `/v1/invoices` end to end: placement and its rejections,
//! idempotency, approval, the sub-order state machine with its stock effects, cancellation,
//! reorder, invoices and payments, and who may act on what.

use crate::api_support::{
    Login, PASSWORD, STOCK, World, assert_problem, base_price, send, status_and_json, world,
};
use crate::support::{EXIT_TIMEOUT, SpawnOptions, spawn_app_with};
use mercato_engine::accounts::{NewUser, Role};
use mercato_engine::catalog::{ManufacturerInput, ProductInput};
use mercato_engine::inventory::StockAdjustmentInput;
use mercato_engine::money::{Currency, Money};
use mercato_engine::tables::{AdjustmentReason, CountryCode, ProductStatus, VerificationStatus};
use mercato_engine::{Actor, Engine, EngineConfig, TenantId};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Milliseconds in a day.
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Places an order as `token`, with an `Idempotency-Key` when given.
async fn place(w: &World, token: &str, key: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut request = w.req(Method::POST, "/v1/orders", token).json(&body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    send(request).await
}

/// `{"lines": [{"product_id": p, "quantity": q}, ...]}`.
fn order_of(lines: &[(u64, u64)]) -> Value {
    let lines: Vec<Value> = lines
        .iter()
        .map(|(product_id, quantity)| json!({"product_id": product_id, "quantity": quantity}))
        .collect();
    json!({ "lines": lines })
}

/// `(on_hand, reserved, available)` of a product, as the admin reads it.
async fn stock(w: &World, product_id: u64) -> (u64, u64, u64) {
    let (status, body) = w
        .get(
            &format!("/v1/products/{product_id}/stock"),
            &w.a.admin.token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let n = |k: &str| body[k].as_u64().expect("stock number");
    (n("on_hand"), n("reserved"), n("available"))
}

/// Adds units of a product to the world's warehouse, as the admin.
async fn add_stock(w: &World, product_id: u64, delta: i64) {
    let got = w
        .post(
            "/v1/stock-adjustments",
            &w.a.admin.token,
            json!({"warehouse_id": w.a.warehouse_id, "product_id": product_id, "delta": delta, "reason": "receipt"}),
        )
        .await;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
}

/// The single sub-order id of an order placed from the world's one manufacturer.
fn only_suborder(order: &Value) -> u64 {
    let ids = order["suborder_ids"].as_array().expect("suborder ids");
    assert_eq!(ids.len(), 1, "{order}");
    ids[0].as_u64().expect("id")
}

async fn act(w: &World, suborder_id: u64, action: &str, token: &str) -> (StatusCode, Value) {
    w.post(
        &format!("/v1/suborders/{suborder_id}/{action}"),
        token,
        json!({}),
    )
    .await
}

#[tokio::test]
async fn place_confirm_ship_deliver_moves_stock_at_each_step() {
    let w = world().await;
    let [p0, p1] = [w.a.products[0], w.a.products[1]];
    let body = json!({
        "lines": [
            {"product_id": p0, "quantity": 10},
            {"sku": "SKU-1", "manufacturer_id": w.a.manufacturer_id, "quantity": 5},
        ],
        "po_number": "PO-7781",
        "shipping_address_label": "Back office",
    });
    let (status, order) = place(&w, &w.a.buyer.token, Some("first-order"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let order_id = order["id"].as_u64().expect("order id");
    assert_eq!(order["status"], "placed");
    assert_eq!(order["retailer_id"], w.a.retailer_id);
    assert_eq!(order["buyer_user_id"], w.a.buyer.user_id);
    assert_eq!(order["po_number"], "PO-7781");
    assert_eq!(order["shipping_address"]["label"], "Back office");
    assert_eq!(order["line_count"], 2);
    let expected_total = 10 * base_price(0) + 5 * base_price(1);
    assert_eq!(
        order["total"],
        json!({"minor": expected_total, "currency": "EUR"})
    );
    let suborder_id = only_suborder(&order);
    let lines = &order["suborders"][0]["lines"];
    assert_eq!(lines[0]["product_id"], p0);
    assert_eq!(lines[0]["quantity"], 10);
    assert_eq!(lines[0]["unit_price"]["minor"], base_price(0));
    assert_eq!(lines[1]["product_id"], p1);
    assert_eq!(lines[1]["sku"], "SKU-1");
    assert_eq!(order["suborders"][0]["status"], "placed");
    assert_eq!(order["invoice"]["status"], "open");
    assert_eq!(order["invoice"]["amount"]["minor"], expected_total);

    // Placed: the units are reserved, not gone.
    let s = STOCK as u64;
    assert_eq!(stock(&w, p0).await, (s, 10, s - 10));
    assert_eq!(stock(&w, p1).await, (s, 5, s - 5));
    let (status, sub) = w
        .get(
            &format!("/v1/suborders/{suborder_id}"),
            &w.a.manufacturer_user.token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sub}");
    assert_eq!(sub["reservations"][0]["warehouse_id"], w.a.warehouse_id);
    let reserved: u64 = sub["reservations"]
        .as_array()
        .expect("reservations")
        .iter()
        .map(|r| r["quantity"].as_u64().expect("qty"))
        .sum();
    assert_eq!(reserved, 15);

    // The manufacturer sees it in its list.
    let (status, list) = w
        .get("/v1/suborders?status=placed", &w.a.manufacturer_user.token)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["items"][0]["id"], suborder_id);

    // Confirmed: still reserved.
    let (status, change) = act(&w, suborder_id, "confirm", &w.a.manufacturer_user.token).await;
    assert_eq!(status, StatusCode::OK, "{change}");
    assert_eq!(change["suborder"]["status"], "confirmed");
    assert_eq!(change["order_status"], "placed");
    assert_eq!(stock(&w, p0).await, (s, 10, s - 10));

    // Shipped: the reservation becomes a decrement of on hand.
    let (status, change) = w
        .post(
            &format!("/v1/suborders/{suborder_id}/ship"),
            &w.a.manufacturer_user.token,
            json!({"tracking": "DHL-123"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{change}");
    assert_eq!(change["suborder"]["status"], "shipped");
    assert_eq!(change["suborder"]["tracking"], "DHL-123");
    assert_eq!(stock(&w, p0).await, (s - 10, 0, s - 10));
    assert_eq!(stock(&w, p1).await, (s - 5, 0, s - 5));
    let (status, log) = w
        .get(
            &format!("/v1/stock-adjustments?product_id={p0}"),
            &w.a.admin.token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let shipment = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|a| a["reason"] == "shipment")
        .expect("a shipment adjustment")
        .clone();
    assert_eq!(shipment["delta"], -10);
    assert_eq!(shipment["suborder_id"], suborder_id);
    let (_, sub) = w
        .get(&format!("/v1/suborders/{suborder_id}"), &w.a.admin.token)
        .await;
    assert_eq!(sub["reservations"], json!([]));

    // Delivered, by the buyer: the order is completed; stock does not move.
    let (status, change) = act(&w, suborder_id, "deliver", &w.a.buyer.token).await;
    assert_eq!(status, StatusCode::OK, "{change}");
    assert_eq!(change["suborder"]["status"], "delivered");
    assert_eq!(change["order_status"], "completed");
    assert_eq!(stock(&w, p0).await, (s - 10, 0, s - 10));

    // The buyer reads the order and its history; the admin lists it too.
    let (status, order) = w
        .get(&format!("/v1/orders/{order_id}"), &w.a.buyer.token)
        .await;
    assert_eq!(status, StatusCode::OK, "{order}");
    assert_eq!(order["status"], "completed");
    let history: Vec<&str> = order["suborders"][0]["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["status"].as_str().expect("status"))
        .collect();
    assert_eq!(history, ["placed", "confirmed", "shipped", "delivered"]);
    for token in [&w.a.buyer.token, &w.a.admin.token] {
        let (status, list) = w.get("/v1/orders", token).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list["items"].as_array().expect("items").len(), 1);
        assert_eq!(list["items"][0]["id"], order_id);
    }
    let (status, list) = w.get("/v1/orders?status=placed", &w.a.buyer.token).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["items"], json!([]));
    assert_problem(
        &w.get("/v1/orders?status=lost", &w.a.buyer.token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    // Manufacturers and reviewers do not read orders; other tenants do not see them.
    assert_problem(
        &w.get("/v1/orders", &w.a.manufacturer_user.token).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_problem(
        &w.get(&format!("/v1/orders/{order_id}"), &w.a.reviewer.token)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_problem(
        &w.get(&format!("/v1/orders/{order_id}"), &w.b.buyer.token)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn the_same_idempotency_key_places_one_order() {
    let w = world().await;
    let p0 = w.a.products[0];
    let (status, first) = place(&w, &w.a.buyer.token, Some("key-1"), order_of(&[(p0, 7)])).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let id = first["id"].as_u64().expect("id");

    // The same request (formatted differently) returns the same order, marked as a replay.
    let response = w
        .req(Method::POST, "/v1/orders", &w.a.buyer.token)
        .header("Idempotency-Key", "key-1")
        .header("Content-Type", "application/json")
        .body(format!(
            "{{ \"lines\" : [ {{ \"quantity\": 7, \"product_id\": {p0} }} ] }}"
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(
        response
            .headers()
            .get("idempotency-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let (status, again) = status_and_json(response).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], id);
    assert_eq!(again["idempotency_key"], "key-1");

    // Reserved once only.
    let s = STOCK as u64;
    assert_eq!(stock(&w, p0).await, (s, 7, s - 7));

    // The same key with another body is a conflict, and places nothing.
    let conflict = place(&w, &w.a.buyer.token, Some("key-1"), order_of(&[(p0, 8)])).await;
    assert_problem(&conflict, StatusCode::CONFLICT, "idempotency_key_reused");
    assert_eq!(stock(&w, p0).await, (s, 7, s - 7));

    // Keys are per buyer: the approver may use the same key for its own order.
    let (status, other) = place(&w, &w.a.approver.token, Some("key-1"), order_of(&[(p0, 8)])).await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    assert_ne!(other["id"], id);

    let (_, list) = w.get("/v1/orders", &w.a.admin.token).await;
    assert_eq!(list["items"].as_array().expect("items").len(), 2);

    // A key that is not visible ASCII is refused, naming it.
    let bad = place(
        &w,
        &w.a.buyer.token,
        Some("key with spaces"),
        order_of(&[(p0, 1)]),
    )
    .await;
    let body = assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(body["field"], "idempotency_key");
}

/// Products and users the world does not have, made through the engine while the server is
/// stopped (the server then starts again on the same data directory; sessions survive).
struct Extras {
    /// Never activated (draft).
    draft_product: u64,
    /// Of a manufacturer that was verified, published it, and is unverified now.
    unverified_product: u64,
    /// Minimum order quantity 10, case pack 1.
    moq_product: u64,
    /// Case pack 6, minimum order quantity 6.
    case_pack_product: u64,
    /// A user of the other (unverified) manufacturer.
    other_maker: Login,
}

async fn with_extras(w: &mut World) -> Extras {
    w.app.signal("TERM");
    w.app.wait_exit(EXIT_TIMEOUT);
    let data_dir = w.app.data_dir.clone();
    let extras = {
        let engine = Engine::open(EngineConfig::new(&data_dir)).expect("open engine");
        let extras = fill_extras(&engine, w).await;
        engine.shutdown().expect("close engine");
        extras
    };
    w.app = spawn_app_with(SpawnOptions {
        data_dir: Some(data_dir),
        ..SpawnOptions::default()
    });
    extras
}

async fn fill_extras(engine: &Engine, w: &World) -> Extras {
    let tenant = TenantId(w.a.tenant_id);
    let actor = || Actor::User(w.a.admin.user_id);
    let eur = |minor| Money::new(minor, Currency::EUR);
    let product = async |manufacturer_id: u64, sku: &str, case_pack: u32, moq: u32| -> u64 {
        let created = engine
            .create_product(
                tenant,
                actor(),
                ProductInput {
                    manufacturer_id,
                    sku: sku.into(),
                    name: format!("Product {sku}"),
                    description: String::new(),
                    category_id: None,
                    attributes: BTreeMap::new(),
                    images: Vec::new(),
                    unit_of_measure: "each".into(),
                    case_pack,
                    min_order_qty: moq,
                    base_price: eur(500),
                    tiers: Vec::new(),
                },
            )
            .await
            .expect("product");
        engine
            .adjust_stock(
                tenant,
                actor(),
                StockAdjustmentInput {
                    warehouse_id: w.a.warehouse_id,
                    product_id: created.id,
                    delta: 100,
                    reason: AdjustmentReason::Receipt,
                    note: None,
                },
            )
            .await
            .expect("stock");
        created.id
    };
    let activate = async |id: u64| {
        engine
            .set_product_status(tenant, actor(), id, None, ProductStatus::Active)
            .await
            .expect("activate");
    };
    let draft_product = product(w.a.manufacturer_id, "DRAFT-1", 1, 1).await;
    let moq_product = product(w.a.manufacturer_id, "MOQ-10", 1, 10).await;
    activate(moq_product).await;
    let case_pack_product = product(w.a.manufacturer_id, "CASE-6", 6, 6).await;
    activate(case_pack_product).await;

    let lapsed = engine
        .create_manufacturer(
            tenant,
            actor(),
            ManufacturerInput {
                name: "Lapsed Tools SA".into(),
                country: CountryCode::parse("FR").expect("country"),
            },
        )
        .await
        .expect("manufacturer");
    engine
        .set_manufacturer_verification(tenant, actor(), lapsed.id, VerificationStatus::Verified)
        .await
        .expect("verify");
    let unverified_product = product(lapsed.id, "LAPSED-1", 1, 1).await;
    activate(unverified_product).await;
    engine
        .set_manufacturer_verification(tenant, actor(), lapsed.id, VerificationStatus::Unverified)
        .await
        .expect("unverify");

    let admin = engine
        .authenticate(&w.a.admin.token)
        .expect("admin principal");
    let email = "other-maker@acme.example".to_owned();
    let user = engine
        .create_user(
            &admin,
            NewUser {
                email: email.clone(),
                name: "Other maker".into(),
                role: Role::ManufacturerUser {
                    manufacturer_id: w.a.unverified_manufacturer_id,
                },
                password: PASSWORD.into(),
            },
        )
        .await
        .expect("user");
    let session = engine.login(tenant, &email, PASSWORD).await.expect("login");
    Extras {
        draft_product,
        unverified_product,
        moq_product,
        case_pack_product,
        other_maker: Login {
            user_id: user.id,
            email,
            token: session.token.expose_secret().to_owned(),
        },
    }
}

#[tokio::test]
async fn every_rejection_names_its_line_and_places_nothing() {
    let mut w = world().await;
    let x = with_extras(&mut w).await;
    let p0 = w.a.products[0];
    let body = json!({"lines": [
        {"product_id": p0, "quantity": 2},
        {"product_id": x.draft_product, "quantity": 1},
        {"product_id": x.unverified_product, "quantity": 1},
        {"product_id": x.moq_product, "quantity": 5},
        {"product_id": x.case_pack_product, "quantity": 8},
        {"product_id": w.a.products[1], "quantity": STOCK + 1},
        {"sku": "NO-SUCH-SKU", "manufacturer_id": w.a.manufacturer_id, "quantity": 1},
        {"product_id": p0, "quantity": 1},
    ]});
    let got = place(&w, &w.a.buyer.token, Some("rejected-1"), body).await;
    let problem = assert_problem(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "order_lines_rejected",
    );
    let codes: Vec<(u64, &str)> = problem["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            (
                l["line"].as_u64().expect("line"),
                l["code"].as_str().expect("code"),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            (1, "product_not_active"),
            (2, "manufacturer_not_verified"),
            (3, "below_minimum_quantity"),
            (4, "not_case_pack_multiple"),
            (5, "insufficient_stock"),
            (6, "unknown_product"),
            (7, "duplicate_product"),
        ],
        "{problem}"
    );
    // Nothing was reserved and no order exists; the key was not used up.
    let s = STOCK as u64;
    assert_eq!(stock(&w, p0).await, (s, 0, s));
    assert_eq!(stock(&w, x.moq_product).await, (100, 0, 100));
    let (_, list) = w.get("/v1/orders", &w.a.admin.token).await;
    assert_eq!(list["items"], json!([]));
    let (status, fixed) = place(
        &w,
        &w.a.buyer.token,
        Some("rejected-1"),
        order_of(&[(x.moq_product, 10), (x.case_pack_product, 12)]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{fixed}");

    // Lines that name no product, or name it two ways, are rejected the same way.
    let got = place(
        &w,
        &w.a.buyer.token,
        None,
        json!({"lines": [
            {"product_id": p0, "quantity": 1},
            {"quantity": 1},
            {"sku": "SKU-0", "quantity": 1},
            {"product_id": p0, "sku": "SKU-0", "manufacturer_id": w.a.manufacturer_id, "quantity": 1},
        ]}),
    )
    .await;
    let problem = assert_problem(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "order_lines_rejected",
    );
    let lines: Vec<u64> = problem["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .inspect(|l| assert_eq!(l["code"], "invalid_line"))
        .map(|l| l["line"].as_u64().expect("line"))
        .collect();
    assert_eq!(lines, [1, 2, 3]);
    // No lines, too many lines, and a bad quantity name the field.
    let body = assert_problem(
        &place(&w, &w.a.buyer.token, None, json!({"lines": []})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert_eq!(body["field"], "lines");
    let many: Vec<(u64, u64)> = (0..501).map(|_| (p0, 1)).collect();
    let body = assert_problem(
        &place(&w, &w.a.buyer.token, None, order_of(&many)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert_eq!(body["field"], "lines");
    let got = place(
        &w,
        &w.a.buyer.token,
        None,
        json!({"lines": [{"product_id": p0, "quantity": -1}]}),
    )
    .await;
    assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", got.1);
    assert!(
        got.1["detail"].as_str().unwrap_or("").contains("quantity"),
        "{}",
        got.1
    );
    let got = place(
        &w,
        &w.a.buyer.token,
        None,
        json!({"lines": [], "note": "x"}),
    )
    .await;
    assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", got.1);

    // Only buyers place orders.
    for token in [
        &w.a.manufacturer_user.token,
        &w.a.reviewer.token,
        &w.a.admin.token,
    ] {
        assert_problem(
            &place(&w, token, None, order_of(&[(p0, 1)])).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }
}

#[tokio::test]
async fn an_order_above_the_credit_limit_is_rejected_on_its_lines() {
    let w = world().await;
    let [p0, p1] = [w.a.products[0], w.a.products[1]];
    // Credit limit 1,000,000.00 EUR: 120,000 units at the 9.00 tier price is 1,080,000.00.
    add_stock(&w, p0, 200_000).await;
    let got = place(
        &w,
        &w.a.buyer.token,
        None,
        order_of(&[(p0, 120_000), (p1, 1)]),
    )
    .await;
    let problem = assert_problem(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "order_lines_rejected",
    );
    let lines = problem["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 2, "{problem}");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["line"], i);
        assert_eq!(line["code"], "credit_limit_exceeded");
        assert!(
            line["detail"]
                .as_str()
                .unwrap_or("")
                .contains("credit limit"),
            "{line}"
        );
    }
    let s = STOCK as u64 + 200_000;
    assert_eq!(stock(&w, p0).await, (s, 0, s));
}

#[tokio::test]
async fn orders_above_the_threshold_wait_for_an_approver() {
    let w = world().await;
    let p0 = w.a.products[0];
    // Threshold 50,000.00 EUR: 6,000 units at 9.00 is 54,000.00.
    add_stock(&w, p0, 20_000).await;
    let s = STOCK as u64 + 20_000;
    let (status, order) = place(&w, &w.a.buyer.token, None, order_of(&[(p0, 6_000)])).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let id = order["id"].as_u64().expect("id");
    assert_eq!(order["status"], "awaiting_approval");
    assert_eq!(order["approval_required"], true);
    assert_eq!(order["invoice"], Value::Null);
    assert_eq!(order["total"]["minor"], 6_000 * base_price(0) * 9 / 10);
    assert_eq!(stock(&w, p0).await, (s, 6_000, s - 6_000));
    let suborder_id = only_suborder(&order);
    // Waiting sub-orders cannot be confirmed or cancelled; the order is decided as a whole.
    assert_problem(
        &act(&w, suborder_id, "confirm", &w.a.manufacturer_user.token).await,
        StatusCode::CONFLICT,
        "illegal_transition",
    );
    assert_problem(
        &act(&w, suborder_id, "cancel", &w.a.buyer.token).await,
        StatusCode::CONFLICT,
        "illegal_transition",
    );
    let (_, waiting) = w
        .get("/v1/orders?status=awaiting_approval", &w.a.approver.token)
        .await;
    assert_eq!(waiting["items"][0]["id"], id);

    // A plain buyer, a manufacturer or another tenant's approver may not approve it.
    let approve = format!("/v1/orders/{id}/approve");
    assert_problem(
        &w.post(&approve, &w.a.buyer.token, json!({})).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_problem(
        &w.post(&approve, &w.a.manufacturer_user.token, json!({}))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_problem(
        &w.post(&approve, &w.b.approver.token, json!({})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // The approver approves it (no body needed): placed and invoiced.
    let response = w
        .req(Method::POST, &approve, &w.a.approver.token)
        .send()
        .await
        .expect("send");
    let (status, approved) = status_and_json(response).await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["status"], "placed");
    assert_eq!(approved["approval"]["approved"], true);
    assert_eq!(approved["approval"]["by_user_id"], w.a.approver.user_id);
    assert_eq!(approved["suborders"][0]["status"], "placed");
    assert_eq!(approved["invoice"]["status"], "open");
    assert_eq!(stock(&w, p0).await, (s, 6_000, s - 6_000));
    assert_problem(
        &w.post(&approve, &w.a.approver.token, json!({})).await,
        StatusCode::CONFLICT,
        "illegal_transition",
    );

    // Another one is rejected: cancelled, and its stock released.
    let (status, second) = place(&w, &w.a.buyer.token, None, order_of(&[(p0, 6_000)])).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let second_id = second["id"].as_u64().expect("id");
    assert_eq!(stock(&w, p0).await, (s, 12_000, s - 12_000));
    let (status, rejected) = w
        .post(
            &format!("/v1/orders/{second_id}/reject"),
            &w.a.approver.token,
            json!({"note": "too many hammers"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rejected}");
    assert_eq!(rejected["status"], "cancelled");
    assert_eq!(rejected["approval"]["approved"], false);
    assert_eq!(rejected["suborders"][0]["status"], "cancelled");
    assert_eq!(
        rejected["suborders"][0]["cancel_reason"],
        "too many hammers"
    );
    assert_eq!(rejected["invoice"], Value::Null);
    assert_eq!(stock(&w, p0).await, (s, 6_000, s - 6_000));
    assert_problem(
        &w.post(
            &format!("/v1/orders/{second_id}/approve"),
            &w.a.approver.token,
            json!({}),
        )
        .await,
        StatusCode::CONFLICT,
        "illegal_transition",
    );
    // Orders under the threshold need no approval.
    let (status, small) = place(&w, &w.a.buyer.token, None, order_of(&[(p0, 10)])).await;
    assert_eq!(status, StatusCode::CREATED, "{small}");
    assert_eq!(small["status"], "placed");
    assert_eq!(small["approval_required"], false);
    assert_problem(
        &w.post(
            &format!("/v1/orders/{}/approve", small["id"]),
            &w.a.approver.token,
            json!({}),
        )
        .await,
        StatusCode::CONFLICT,
        "illegal_transition",
    );
}

#[tokio::test]
async fn cancelling_releases_stock_and_illegal_transitions_are_409() {
    let w = world().await;
    let [p2, p3] = [w.a.products[2], w.a.products[3]];
    let s = STOCK as u64;
    let maker = &w.a.manufacturer_user.token;

    // Cancelled after confirmation: the reservation is released and the invoice credited.
    let (status, order) = place(&w, &w.a.buyer.token, None, order_of(&[(p2, 20)])).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let sub = only_suborder(&order);
    let invoice_id = order["invoice_id"].as_u64().expect("invoice id");
    assert_eq!(stock(&w, p2).await, (s, 20, s - 20));
    assert_eq!(act(&w, sub, "confirm", maker).await.0, StatusCode::OK);
    let (status, cancelled) = w
        .post(
            &format!("/v1/suborders/{sub}/cancel"),
            maker,
            json!({"reason": "discontinued"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["suborder"]["status"], "cancelled");
    assert_eq!(cancelled["suborder"]["cancel_reason"], "discontinued");
    assert_eq!(cancelled["order_status"], "cancelled");
    assert_eq!(stock(&w, p2).await, (s, 0, s));
    let (_, invoice) = w
        .get(&format!("/v1/invoices/{invoice_id}"), &w.a.buyer.token)
        .await;
    assert_eq!(invoice["status"], "void");
    assert_eq!(invoice["credited"]["minor"], 20 * base_price(2));
    assert_eq!(invoice["outstanding"]["minor"], 0);
    // Nothing moves a cancelled sub-order.
    for action in ["confirm", "ship", "deliver", "cancel"] {
        assert_problem(
            &act(&w, sub, action, maker).await,
            StatusCode::CONFLICT,
            "illegal_transition",
        );
    }

    // A buyer cancels a placed sub-order of its own.
    let (_, order) = place(&w, &w.a.buyer.token, None, order_of(&[(p3, 4)])).await;
    let sub = only_suborder(&order);
    assert_eq!(stock(&w, p3).await, (s, 4, s - 4));
    let (status, cancelled) = act(&w, sub, "cancel", &w.a.buyer.token).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(stock(&w, p3).await, (s, 0, s));

    // Out of order: ship or deliver before confirming; cancel or confirm after shipping.
    let (_, order) = place(&w, &w.a.buyer.token, None, order_of(&[(p3, 3)])).await;
    let sub = only_suborder(&order);
    for action in ["ship", "deliver"] {
        assert_problem(
            &act(&w, sub, action, maker).await,
            StatusCode::CONFLICT,
            "illegal_transition",
        );
    }
    // Buyers neither confirm nor ship.
    for action in ["confirm", "ship"] {
        assert_problem(
            &act(&w, sub, action, &w.a.buyer.token).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }
    assert_eq!(act(&w, sub, "confirm", maker).await.0, StatusCode::OK);
    assert_problem(
        &act(&w, sub, "confirm", maker).await,
        StatusCode::CONFLICT,
        "illegal_transition",
    );
    // A tenant admin acts as the sub-order's manufacturer.
    let (status, shipped) = act(&w, sub, "ship", &w.a.admin.token).await;
    assert_eq!(status, StatusCode::OK, "{shipped}");
    assert_eq!(stock(&w, p3).await, (s - 3, 0, s - 3));
    for action in ["cancel", "confirm", "ship"] {
        assert_problem(
            &act(&w, sub, action, maker).await,
            StatusCode::CONFLICT,
            "illegal_transition",
        );
    }
    assert_eq!(stock(&w, p3).await, (s - 3, 0, s - 3));
    assert_eq!(act(&w, sub, "deliver", maker).await.0, StatusCode::OK);
    assert_problem(
        &act(&w, sub, "deliver", maker).await,
        StatusCode::CONFLICT,
        "illegal_transition",
    );
    // A bad body is refused before anything moves.
    let got = w
        .post(
            &format!("/v1/suborders/{sub}/cancel"),
            maker,
            json!({"why": "x"}),
        )
        .await;
    assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", got.1);
}

#[tokio::test]
async fn a_manufacturer_cannot_touch_another_manufacturers_suborder() {
    let mut w = world().await;
    let x = with_extras(&mut w).await;
    let (status, order) = place(
        &w,
        &w.a.buyer.token,
        None,
        order_of(&[(w.a.products[0], 2)]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let sub = only_suborder(&order);
    for token in [&x.other_maker.token, &w.b.manufacturer_user.token] {
        assert_problem(
            &w.get(&format!("/v1/suborders/{sub}"), token).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
        for action in ["confirm", "ship", "deliver", "cancel"] {
            assert_problem(
                &act(&w, sub, action, token).await,
                StatusCode::NOT_FOUND,
                "not_found",
            );
        }
    }
    let (status, list) = w.get("/v1/suborders", &x.other_maker.token).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["items"], json!([]));
    assert_problem(
        &w.get(
            &format!("/v1/suborders?manufacturer_id={}", w.a.manufacturer_id),
            &x.other_maker.token,
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    // Untouched: its own manufacturer still confirms it; admins list per manufacturer.
    let (_, sub_now) = w
        .get(&format!("/v1/suborders/{sub}"), &w.a.admin.token)
        .await;
    assert_eq!(sub_now["status"], "placed");
    assert_eq!(
        act(&w, sub, "confirm", &w.a.manufacturer_user.token)
            .await
            .0,
        StatusCode::OK
    );
    let (status, list) = w
        .get(
            &format!("/v1/suborders?manufacturer_id={}", w.a.manufacturer_id),
            &w.a.admin.token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["items"][0]["id"], sub);
    let body = assert_problem(
        &w.get("/v1/suborders", &w.a.admin.token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert_eq!(body["field"], "manufacturer_id");
}

#[tokio::test]
async fn invoices_have_net_terms_and_take_payments_up_to_the_balance() {
    let w = world().await;
    let (status, order) = place(
        &w,
        &w.a.buyer.token,
        None,
        order_of(&[(w.a.products[4], 3)]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let total = 3 * base_price(4);
    let invoice_id = order["invoice_id"].as_u64().expect("invoice id");

    let (status, list) = w.get("/v1/invoices", &w.a.buyer.token).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["items"][0]["id"], invoice_id);
    let (status, invoice) = w
        .get(&format!("/v1/invoices/{invoice_id}"), &w.a.buyer.token)
        .await;
    assert_eq!(status, StatusCode::OK, "{invoice}");
    assert_eq!(invoice["order_id"], order["id"]);
    assert_eq!(invoice["status"], "open");
    assert_eq!(invoice["overdue"], false);
    assert_eq!(invoice["amount"]["minor"], total);
    assert_eq!(invoice["outstanding"]["minor"], total);
    let issued = invoice["issued_at_ms"].as_u64().expect("issued");
    assert_eq!(invoice["due_at_ms"].as_u64(), Some(issued + 30 * DAY_MS));

    // Admins list invoices per retailer; other tenants and manufacturers do not see them.
    let (status, list) = w
        .get(
            &format!("/v1/invoices?retailer_id={}", w.a.retailer_id),
            &w.a.admin.token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["items"][0]["id"], invoice_id);
    let body = assert_problem(
        &w.get("/v1/invoices", &w.a.admin.token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert_eq!(body["field"], "retailer_id");
    assert_problem(
        &w.get(&format!("/v1/invoices/{invoice_id}"), &w.b.buyer.token)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_problem(
        &w.get(
            &format!("/v1/invoices/{invoice_id}"),
            &w.a.manufacturer_user.token,
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );

    let payments = format!("/v1/invoices/{invoice_id}/payments");
    let pay =
        |minor: i64| json!({"amount": {"minor": minor, "currency": "EUR"}, "reference": "BANK-1"});
    // Buyers do not record payments.
    assert_problem(
        &w.post(&payments, &w.a.buyer.token, pay(100)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let (status, recorded) = w.post(&payments, &w.a.admin.token, pay(1_000)).await;
    assert_eq!(status, StatusCode::CREATED, "{recorded}");
    assert_eq!(recorded["payment"]["amount"]["minor"], 1_000);
    assert_eq!(recorded["invoice"]["outstanding"]["minor"], total - 1_000);
    assert_eq!(recorded["invoice"]["status"], "open");

    // More than the balance is refused, naming the amount; so are a wrong currency and zero.
    let body = assert_problem(
        &w.post(&payments, &w.a.admin.token, pay(total)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "overpayment",
    );
    assert_eq!(body["field"], "amount");
    let body = assert_problem(
        &w.post(
            &payments,
            &w.a.admin.token,
            json!({"amount": {"minor": 5, "currency": "usd"}, "reference": "X"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert_eq!(body["field"], "amount.currency");
    let body = assert_problem(
        &w.post(&payments, &w.a.admin.token, pay(0)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert_eq!(body["field"], "amount");

    let (status, recorded) = w
        .post(&payments, &w.a.admin.token, pay(total - 1_000))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{recorded}");
    assert_eq!(recorded["invoice"]["status"], "paid");
    assert_eq!(recorded["invoice"]["outstanding"]["minor"], 0);
    assert_problem(
        &w.post(&payments, &w.a.admin.token, pay(1)).await,
        StatusCode::CONFLICT,
        "invoice_not_open",
    );
    let (status, list) = w.get(&payments, &w.a.buyer.token).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let amounts: Vec<i64> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["amount"]["minor"].as_i64().expect("amount"))
        .collect();
    assert_eq!(amounts, [1_000, total - 1_000]);
    assert_problem(
        &w.post("/v1/invoices/9999/payments", &w.a.admin.token, pay(1))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn reorder_places_the_same_lines_again() {
    let w = world().await;
    let [p0, p1] = [w.a.products[0], w.a.products[1]];
    let (status, first) = place(&w, &w.a.buyer.token, None, order_of(&[(p0, 4), (p1, 6)])).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let first_id = first["id"].as_u64().expect("id");

    let reorder = format!("/v1/orders/{first_id}/reorder");
    let response = w
        .req(Method::POST, &reorder, &w.a.buyer.token)
        .header("Idempotency-Key", "again-1")
        .json(&json!({"po_number": "PO-2"}))
        .send()
        .await
        .expect("send");
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (status, second) = status_and_json(response).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let second_id = second["id"].as_u64().expect("id");
    assert_ne!(second_id, first_id);
    assert_eq!(location, Some(format!("/v1/orders/{second_id}")));
    assert_eq!(second["reorder_of"], first_id);
    assert_eq!(second["po_number"], "PO-2");
    let lines = |o: &Value| -> Vec<(u64, u64)> {
        o["suborders"][0]["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .map(|l| {
                (
                    l["product_id"].as_u64().expect("product"),
                    l["quantity"].as_u64().expect("qty"),
                )
            })
            .collect()
    };
    assert_eq!(lines(&second), lines(&first));
    let s = STOCK as u64;
    assert_eq!(stock(&w, p0).await, (s, 8, s - 8));
    assert_eq!(stock(&w, p1).await, (s, 12, s - 12));

    // The same key again is the same reorder; another body with it is a conflict.
    let (status, again) = send(
        w.req(Method::POST, &reorder, &w.a.buyer.token)
            .header("Idempotency-Key", "again-1")
            .json(&json!({"po_number": "PO-2"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], second_id);
    assert_problem(
        &send(
            w.req(Method::POST, &reorder, &w.a.buyer.token)
                .header("Idempotency-Key", "again-1")
                .json(&json!({"po_number": "PO-3"})),
        )
        .await,
        StatusCode::CONFLICT,
        "idempotency_key_reused",
    );
    assert_eq!(stock(&w, p0).await, (s, 8, s - 8));

    // Without a body; and never another retailer's or tenant's order.
    let (status, third) = send(w.req(Method::POST, &reorder, &w.a.approver.token)).await;
    assert_eq!(status, StatusCode::CREATED, "{third}");
    assert_eq!(third["buyer_user_id"], w.a.approver.user_id);
    assert_problem(
        &send(w.req(Method::POST, &reorder, &w.b.buyer.token)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_problem(
        &send(w.req(Method::POST, "/v1/orders/9999/reorder", &w.a.buyer.token)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_lists_sort_newest_first_with_stable_cursors() {
    let w = world().await;
    let a = &w.a;
    let mut placed = Vec::new();
    for i in 0..4 {
        let (status, order) =
            place(&w, &a.buyer.token, None, order_of(&[(a.products[i], 1)])).await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        placed.push(order["id"].as_u64().expect("id"));
    }
    let order_ids = |page: &Value| -> Vec<u64> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|o| o["id"].as_u64().expect("id"))
            .collect()
    };
    // Pages of one, newest first, for the buyer (its retailer's orders) and the admin (all),
    // with and without a status filter; an order placed during the walk is not met.
    for (token, filter) in [
        (&a.buyer.token, ""),
        (&a.admin.token, ""),
        (&a.admin.token, "&status=placed"),
        (&a.buyer.token, "&status=placed"),
    ] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut newer = None;
        loop {
            let path = match &cursor {
                None => format!("/v1/orders?sort=-id&limit=1{filter}"),
                Some(c) => format!("/v1/orders?sort=-id&limit=1{filter}&cursor={c}"),
            };
            let (status, page) = w.get(&path, token).await;
            assert_eq!(status, StatusCode::OK, "{path}: {page}");
            seen.extend(order_ids(&page));
            if newer.is_none() {
                let (status, order) =
                    place(&w, &a.buyer.token, None, order_of(&[(a.products[4], 1)])).await;
                assert_eq!(status, StatusCode::CREATED, "{order}");
                newer = order["id"].as_u64();
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let newer = newer.expect("placed during the walk");
        assert!(!seen.contains(&newer), "{seen:?}");
        assert!(seen.windows(2).all(|p| p[0] > p[1]), "{seen:?}");
        // Everything older than the first page's order is there, newest first.
        let first = seen[0];
        let (_, all) = w.get(&format!("/v1/orders?limit=500{filter}"), token).await;
        let mut expected: Vec<u64> = order_ids(&all)
            .into_iter()
            .filter(|id| *id <= first)
            .collect();
        expected.reverse();
        assert_eq!(seen, expected, "{filter}");
        for id in &placed {
            assert!(seen.contains(id), "{id} in {seen:?}");
        }
    }
    let got = w.get("/v1/orders?sort=placed_at", &a.admin.token).await;
    assert_eq!(
        assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "sort"
    );
}
