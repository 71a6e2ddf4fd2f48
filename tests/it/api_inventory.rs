//! `/v1/warehouses`, `/v1/products/{id}/stock` and `/v1/stock-adjustments` end to end.

use crate::api_support::{STOCK, assert_problem, world};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn ids(list: &Value) -> Vec<u64> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_u64().expect("id"))
        .collect()
}

#[tokio::test]
async fn warehouses_are_created_by_admins_and_read_by_everyone() {
    let w = world().await;
    let response = w
        .req(Method::POST, "/v1/warehouses", &w.a.admin.token)
        .json(&json!({"name": "Overflow", "code": "OVF-2"}))
        .send()
        .await
        .expect("send");
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (status, created) = crate::api_support::status_and_json(response).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_u64().expect("id");
    assert_eq!(location, Some(format!("/v1/warehouses/{id}")));
    assert_eq!(created["code"], "OVF-2");

    // Codes are unique; bad names and codes name the field; only admins create.
    assert_problem(
        &w.post(
            "/v1/warehouses",
            &w.a.admin.token,
            json!({"name": "Again", "code": "OVF-2"}),
        )
        .await,
        StatusCode::CONFLICT,
        "warehouse_code_taken",
    );
    let body = assert_problem(
        &w.post(
            "/v1/warehouses",
            &w.a.admin.token,
            json!({"name": "Spaces", "code": "has space"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert_eq!(body["field"], "code");
    let body = assert_problem(
        &w.post(
            "/v1/warehouses",
            &w.a.admin.token,
            json!({"name": " ", "code": "X"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert_eq!(body["field"], "name");
    for token in [&w.a.manufacturer_user.token, &w.a.buyer.token] {
        assert_problem(
            &w.post(
                "/v1/warehouses",
                token,
                json!({"name": "Mine", "code": "MINE"}),
            )
            .await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }

    let (status, list) = w.get("/v1/warehouses", &w.a.buyer.token).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(ids(&list), [w.a.warehouse_id, id]);
    let (status, page) = w.get("/v1/warehouses?limit=1", &w.a.buyer.token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(ids(&page), [w.a.warehouse_id]);
    let cursor = page["next_cursor"].as_str().expect("cursor");
    let (_, rest) = w
        .get(
            &format!("/v1/warehouses?limit=1&cursor={cursor}"),
            &w.a.buyer.token,
        )
        .await;
    assert_eq!(ids(&rest), [id]);
    assert_problem(
        &w.get("/v1/warehouses?limit=501", &w.a.buyer.token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );

    let (status, one) = w
        .get(
            &format!("/v1/warehouses/{id}?fields=id,code"),
            &w.a.manufacturer_user.token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one, json!({"id": id, "code": "OVF-2"}));
    // The other tenant has one warehouse only: this id is not one of its.
    assert_problem(
        &w.get(&format!("/v1/warehouses/{id}"), &w.b.admin.token)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_problem(
        &w.get("/v1/warehouses", "mct_not_a_token").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
}

#[tokio::test]
async fn stock_adjustments_are_recorded_with_their_reason_and_listed() {
    let w = world().await;
    let p0 = w.a.products[0];
    let maker = &w.a.manufacturer_user.token;
    let s = STOCK as u64;

    let (status, adjusted) = w
        .post(
            "/v1/stock-adjustments",
            maker,
            json!({"warehouse_id": w.a.warehouse_id, "product_id": p0, "delta": -3, "reason": "damage", "note": "dropped a pallet"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{adjusted}");
    assert_eq!(adjusted["adjustment"]["reason"], "damage");
    assert_eq!(adjusted["adjustment"]["delta"], -3);
    assert_eq!(adjusted["adjustment"]["note"], "dropped a pallet");
    assert_eq!(
        adjusted["adjustment"]["actor"],
        format!("user/{}", w.a.manufacturer_user.user_id)
    );
    assert_eq!(
        adjusted["level"],
        json!({"on_hand": s - 3, "reserved": 0, "available": s - 3})
    );

    // A second warehouse: the product's stock is summed over both.
    let (_, second) = w
        .post(
            "/v1/warehouses",
            &w.a.admin.token,
            json!({"name": "North", "code": "NORTH"}),
        )
        .await;
    let north = second["id"].as_u64().expect("id");
    let (status, _) = w
        .post(
            "/v1/stock-adjustments",
            maker,
            json!({"warehouse_id": north, "product_id": p0, "delta": 50, "reason": "receipt"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let response = w
        .req(
            Method::GET,
            &format!("/v1/products/{p0}/stock"),
            &w.a.buyer.token,
        )
        .send()
        .await
        .expect("send");
    let etag = response
        .headers()
        .get("etag")
        .expect("etag")
        .to_str()
        .expect("ascii")
        .to_owned();
    let (status, stock) = crate::api_support::status_and_json(response).await;
    assert_eq!(status, StatusCode::OK, "{stock}");
    assert_eq!(stock["product_id"], p0);
    assert_eq!(stock["on_hand"], s - 3 + 50);
    assert_eq!(stock["reserved"], 0);
    assert_eq!(stock["available"], s - 3 + 50);
    assert_eq!(
        stock["warehouses"],
        json!([
            {"warehouse_id": w.a.warehouse_id, "on_hand": s - 3, "reserved": 0, "available": s - 3},
            {"warehouse_id": north, "on_hand": 50, "reserved": 0, "available": 50},
        ])
    );
    let not_modified = w
        .req(
            Method::GET,
            &format!("/v1/products/{p0}/stock"),
            &w.a.buyer.token,
        )
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("send");
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);

    // The log of the product: the set-up receipt, the damage, the receipt in the north.
    let (status, log) = w
        .get(&format!("/v1/stock-adjustments?product_id={p0}"), maker)
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let entries: Vec<(String, i64, u64)> = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|a| {
            assert_eq!(a["product_id"], p0);
            (
                a["reason"].as_str().expect("reason").to_owned(),
                a["delta"].as_i64().expect("delta"),
                a["warehouse_id"].as_u64().expect("warehouse"),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("receipt".to_owned(), STOCK, w.a.warehouse_id),
            ("damage".to_owned(), -3, w.a.warehouse_id),
            ("receipt".to_owned(), 50, north),
        ]
    );
    // The admin reads the whole log, a page at a time.
    let (status, all) = w.get("/v1/stock-adjustments", &w.a.admin.token).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(
        all["items"].as_array().expect("items").len(),
        w.a.products.len() + 2
    );
    let (_, page) = w
        .get("/v1/stock-adjustments?limit=4", &w.a.admin.token)
        .await;
    assert_eq!(page["items"].as_array().expect("items").len(), 4);
    let cursor = page["next_cursor"].as_str().expect("cursor");
    let (_, rest) = w
        .get(
            &format!("/v1/stock-adjustments?limit=4&cursor={cursor}"),
            &w.a.admin.token,
        )
        .await;
    assert_eq!(rest["items"].as_array().expect("items").len(), 3);
    assert_eq!(rest["next_cursor"], Value::Null);

    // Manufacturer users read one of their products at a time; others not at all.
    assert_problem(
        &w.get("/v1/stock-adjustments", maker).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_problem(
        &w.get(
            &format!("/v1/stock-adjustments?product_id={p0}"),
            &w.a.buyer.token,
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_problem(
        &w.get("/v1/stock-adjustments?product_id=9999", maker).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn bad_adjustments_are_refused_and_change_nothing() {
    let w = world().await;
    let p1 = w.a.products[1];
    let maker = &w.a.manufacturer_user.token;
    let adjust = |delta: i64, reason: &str| json!({"warehouse_id": w.a.warehouse_id, "product_id": p1, "delta": delta, "reason": reason});
    let body = assert_problem(
        &w.post("/v1/stock-adjustments", maker, adjust(0, "count"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert_eq!(body["field"], "delta");
    let body = assert_problem(
        &w.post("/v1/stock-adjustments", maker, adjust(-1, "shipment"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert_eq!(body["field"], "reason");
    let got = w
        .post("/v1/stock-adjustments", maker, adjust(1, "stolen"))
        .await;
    assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", got.1);
    assert!(
        got.1["detail"].as_str().unwrap_or("").contains("reason"),
        "{}",
        got.1
    );
    assert_problem(
        &w.post("/v1/stock-adjustments", maker, adjust(-(STOCK + 1), "loss"))
            .await,
        StatusCode::CONFLICT,
        "insufficient_available_stock",
    );
    assert_problem(
        &w.post(
            "/v1/stock-adjustments",
            maker,
            json!({"warehouse_id": 9999, "product_id": p1, "delta": 1, "reason": "count"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_problem(
        &w.post(
            "/v1/stock-adjustments",
            maker,
            json!({"warehouse_id": w.a.warehouse_id, "product_id": 9999, "delta": 1, "reason": "count"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // Units reserved by an order cannot be written off.
    let (status, order) = w
        .post(
            "/v1/orders",
            &w.a.buyer.token,
            json!({"lines": [{"product_id": p1, "quantity": 600}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_problem(
        &w.post("/v1/stock-adjustments", maker, adjust(-500, "loss"))
            .await,
        StatusCode::CONFLICT,
        "insufficient_available_stock",
    );
    for token in [&w.a.buyer.token, &w.a.reviewer.token] {
        assert_problem(
            &w.post("/v1/stock-adjustments", token, adjust(5, "count"))
                .await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }
    let (status, stock) = w
        .get(&format!("/v1/products/{p1}/stock"), &w.a.admin.token)
        .await;
    assert_eq!(status, StatusCode::OK, "{stock}");
    let s = STOCK as u64;
    assert_eq!(stock["on_hand"], s);
    assert_eq!(stock["reserved"], 600);
    assert_eq!(stock["available"], s - 600);
    assert_problem(
        &w.get("/v1/products/9999/stock", &w.a.admin.token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (status, log) = w
        .get(&format!("/v1/stock-adjustments?product_id={p1}"), maker)
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(log["items"].as_array().expect("items").len(), 1);
}
