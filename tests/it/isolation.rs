//! End-to-end tests: tenant isolation. The tenant comes from the credential, so every route that
//! takes an id answers another tenant's id exactly like a missing one.

use crate::api_support::{World, world};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[tokio::test]
async fn world_tokens_carry_their_tenant_and_role() {
    let w = world().await;
    for (t, other) in [(&w.a, &w.b), (&w.b, &w.a)] {
        let roles = [
            (&t.admin, "tenant_admin"),
            (&t.manufacturer_user, "manufacturer_user"),
            (&t.buyer, "buyer"),
            (&t.approver, "buyer_approver"),
            (&t.reviewer, "reviewer"),
        ];
        for (login, kind) in roles {
            let (status, me) = w.get("/v1/me", &login.token).await;
            assert_eq!(status, 200, "{me}");
            assert_eq!(me["tenant_id"], t.tenant_id, "{me}");
            assert_ne!(me["tenant_id"], other.tenant_id, "{me}");
            assert_eq!(me["role"]["kind"], kind, "{me}");
            assert_eq!(me["id"], login.user_id, "{me}");
        }
    }
    assert_eq!(w.get("/v1/me", "mct_1_not-a-token").await.0, 401);
}

/// The smallest valid PNG: signature, IHDR of a 1x1 greyscale image, IDAT, IEND.
const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x3a, 0x7e, 0x9b,
    0x55, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00,
    0x02, 0x00, 0x01, 0x48, 0xaf, 0xa4, 0x71, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

/// Ids of tenant B's resources that tenant A does not have. Ids are counted per tenant, so the
/// world's two tenants share their first ids; these are made in B only.
struct ForeignIds(BTreeMap<&'static str, String>);

async fn created_id(got: (StatusCode, Value), what: &str) -> u64 {
    assert!(
        got.0.is_success(),
        "creating {what} in B: {} {}",
        got.0,
        got.1
    );
    got.1["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("{what} has an id: {}", got.1))
}

async fn foreign_ids(w: &World) -> ForeignIds {
    let b = &w.b;
    let admin = &b.admin.token;
    let eur = |minor: i64| json!({"minor": minor, "currency": "EUR"});
    let manufacturer = created_id(
        w.post(
            "/v1/manufacturers",
            admin,
            json!({"name": "Only In B", "country": "DE"}),
        )
        .await,
        "manufacturer",
    )
    .await;
    let category = created_id(
        w.post("/v1/categories", admin, json!({"name": "Only in B"}))
            .await,
        "category",
    )
    .await;
    let product = created_id(
        w.post(
            "/v1/products",
            admin,
            json!({"manufacturer_id": b.manufacturer_id, "sku": "B-ONLY", "name": "Only in B",
                   "base_price": {"minor": 500}}),
        )
        .await,
        "product",
    )
    .await;
    let upload = w
        .req(
            Method::POST,
            &format!("/v1/products/{product}/images"),
            admin,
        )
        .header("content-type", "image/png")
        .body(PNG_1X1.to_vec())
        .send()
        .await
        .expect("upload image");
    let (status, image) = crate::api_support::status_and_json(upload).await;
    assert!(status.is_success(), "image upload in B: {status} {image}");
    let hash = image["hash"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| {
            image["images"]
                .as_array()
                .and_then(|i| i.last())
                .and_then(|h| h.as_str().map(str::to_owned))
        })
        .unwrap_or_else(|| panic!("upload names the image's hash: {image}"));
    let group = created_id(
        w.post("/v1/customer-groups", admin, json!({"name": "Only in B"}))
            .await,
        "customer group",
    )
    .await;
    let price = w
        .put(
            &format!("/v1/customer-groups/{group}/prices/{product}"),
            admin,
            json!({"unit_price": eur(400)}),
        )
        .await;
    assert!(price.0.is_success(), "price in B: {} {}", price.0, price.1);
    let retailer = created_id(
        w.post("/v1/retailers", admin, json!({"name": "Only in B"}))
            .await,
        "retailer",
    )
    .await;
    let warehouse = created_id(
        w.post(
            "/v1/warehouses",
            admin,
            json!({"name": "Only in B", "code": "BONLY"}),
        )
        .await,
        "warehouse",
    )
    .await;
    let user = created_id(
        w.post(
            "/v1/users",
            admin,
            json!({"email": "only@b.example", "password": "a long enough password 42",
                   "role": {"kind": "reviewer"}}),
        )
        .await,
        "user",
    )
    .await;
    let key = w
        .post(
            "/v1/api-keys",
            admin,
            json!({"name": "only in B", "role": {"kind": "reviewer"}, "scopes": ["catalog:read"]}),
        )
        .await;
    assert!(key.0.is_success(), "api key in B: {} {}", key.0, key.1);
    let api_key = key.1["id"]
        .as_u64()
        .or_else(|| key.1["key"]["id"].as_u64())
        .unwrap_or_else(|| panic!("api key id: {}", key.1));
    let order = w
        .post(
            "/v1/orders",
            &b.buyer.token,
            json!({"lines": [{"product_id": b.products[0], "quantity": 2}]}),
        )
        .await;
    assert!(order.0.is_success(), "order in B: {} {}", order.0, order.1);
    let order_id = order.1["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("order id: {}", order.1));
    let suborder = order.1["suborders"][0]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("sub-order id: {}", order.1));
    let invoice = order.1["invoice_id"]
        .as_u64()
        .or_else(|| order.1["invoice"]["id"].as_u64())
        .unwrap_or_else(|| panic!("invoice id: {}", order.1));
    // A document in B, and its job and review case (a scan: it goes to review).
    let (status, document) = crate::api_verification::upload(
        w,
        &b.manufacturer_user.token,
        b.manufacturer_id,
        crate::api_verification::form(
            "tax_certificate",
            "scan.png",
            &mercato_engine::verification::samples::png_scan(8, 8, 1),
        ),
    )
    .await;
    assert!(status.is_success(), "document in B: {status} {document}");
    let document_id = document["id"].as_u64().expect("document id");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let review_case = loop {
        let (_, d) = w.get(&format!("/v1/documents/{document_id}"), admin).await;
        if let Some(case) = d["review_case_id"].as_u64() {
            break case;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no review case in B: {d}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    ForeignIds(BTreeMap::from([
        ("documents", document_id.to_string()),
        ("review-cases", review_case.to_string()),
        // B's document job (finished); A has no jobs at all.
        ("jobs", "1".to_string()),
        ("manufacturers", manufacturer.to_string()),
        ("categories", category.to_string()),
        ("products", product.to_string()),
        ("hash", hash),
        ("customer-groups", group.to_string()),
        ("retailers", retailer.to_string()),
        ("warehouses", warehouse.to_string()),
        ("users", user.to_string()),
        ("api-keys", api_key.to_string()),
        ("orders", order_id.to_string()),
        ("suborders", suborder.to_string()),
        ("invoices", invoice.to_string()),
    ]))
}

impl ForeignIds {
    /// `template` with every parameter replaced by B's id: `{id}` by the id of the collection
    /// it follows, `{product_id}` by B's product, `{hash}` by B's image.
    fn fill(&self, template: &str) -> String {
        let segments: Vec<&str> = template.split('/').collect();
        let mut out = Vec::with_capacity(segments.len());
        for (i, segment) in segments.iter().enumerate() {
            let value = match *segment {
                "{id}" => self.0.get(segments[i - 1]),
                "{product_id}" => self.0.get("products"),
                "{hash}" => self.0.get("hash"),
                s if s.starts_with('{') => None,
                _ => {
                    out.push(segment.to_string());
                    continue;
                }
            };
            out.push(
                value
                    .unwrap_or_else(|| panic!("no foreign id for {segment} in {template}"))
                    .clone(),
            );
        }
        out.join("/")
    }
}

/// A valid body for each route that takes one, so that the answer is about the id and not
/// about the body.
fn body_for(method: &str, template: &str) -> Option<Value> {
    let eur = json!({"minor": 100, "currency": "EUR"});
    let body = match (method, template) {
        ("post", "/v1/users/{id}/reset-password") => {
            json!({"new_password": "another long password 42"})
        }
        ("patch", "/v1/manufacturers/{id}")
        | ("patch", "/v1/customer-groups/{id}")
        | ("patch", "/v1/retailers/{id}")
        | ("patch", "/v1/categories/{id}")
        | ("patch", "/v1/products/{id}") => json!({"name": "Renamed"}),
        ("put", "/v1/manufacturers/{id}/verification") => json!({"status": "suspended"}),
        ("put", "/v1/customer-groups/{id}/prices/{product_id}") => json!({"unit_price": eur}),
        ("put", "/v1/products/{id}/status") => json!({"status": "archived"}),
        ("post", "/v1/orders/{id}/approve")
        | ("post", "/v1/orders/{id}/reject")
        | ("post", "/v1/orders/{id}/reorder")
        | ("post", "/v1/suborders/{id}/ship")
        | ("post", "/v1/suborders/{id}/cancel") => json!({}),
        ("post", "/v1/invoices/{id}/payments") => json!({"amount": eur, "reference": "x"}),
        ("post", "/v1/review-cases/{id}/claim") => json!({}),
        ("post", "/v1/review-cases/{id}/decision") => json!({"decision": "approve"}),
        ("post", "/v1/manufacturers/{id}/documents") => json!({}),
        _ => return None,
    };
    Some(body)
}

#[tokio::test]
async fn every_route_answers_another_tenants_ids_with_404() {
    let w = world().await;
    let foreign = foreign_ids(&w).await;
    let (status, doc) = w
        .anon(Method::GET, "/openapi.json")
        .send()
        .await
        .map_or_else(|e| panic!("openapi: {e}"), |r| (r.status(), r));
    assert_eq!(status, 200);
    let doc: Value = doc.json().await.expect("openapi json");
    let paths = doc["paths"].as_object().expect("paths");
    let mut probed = 0;
    for (template, item) in paths {
        // The platform administrator sees every tenant by design; no tenant credential works there.
        if !template.contains('{') || template.starts_with("/v1/admin/") {
            continue;
        }
        for (method, op) in item.as_object().expect("path item") {
            let path = foreign.fill(template);
            let query = if template == "/v1/products/{id}/price" {
                "?quantity=1"
            } else {
                ""
            };
            // Tenant A's admin may do everything but place orders, which is a buyer's act.
            let token = if template == "/v1/orders/{id}/reorder" {
                &w.a.buyer.token
            } else {
                &w.a.admin.token
            };
            let mut request = w.req(
                Method::from_bytes(method.to_uppercase().as_bytes()).expect("method"),
                &format!("{path}{query}"),
                token,
            );
            let takes_body = op.get("requestBody").is_some();
            if template == "/v1/products/{id}/images" && method == "post" {
                request = request
                    .header("content-type", "image/png")
                    .body(PNG_1X1.to_vec());
            } else if takes_body {
                let body = body_for(method, template).unwrap_or_else(|| {
                    panic!("isolation test has no body for {method} {template}: add one")
                });
                request = request.json(&body);
            }
            let (status, body) = crate::api_support::send(request).await;
            assert_eq!(
                status,
                StatusCode::NOT_FOUND,
                "{method} {path} with tenant A's admin: {body}"
            );
            assert_eq!(body["code"], "not_found", "{method} {path}: {body}");
            probed += 1;
        }
    }
    assert!(probed >= 40, "only {probed} routes with ids were probed");

    // The same ids are real in B: reads by B's admin find them.
    for template in [
        "/v1/products/{id}",
        "/v1/products/{id}/images/{hash}",
        "/v1/manufacturers/{id}",
        "/v1/categories/{id}",
        "/v1/customer-groups/{id}/prices/{product_id}",
        "/v1/retailers/{id}",
        "/v1/warehouses/{id}",
        "/v1/users/{id}",
        "/v1/orders/{id}",
        "/v1/suborders/{id}",
        "/v1/invoices/{id}",
        "/v1/documents/{id}",
        "/v1/review-cases/{id}",
    ] {
        let path = foreign.fill(template);
        let (status, body) = w.get(&path, &w.b.admin.token).await;
        assert_eq!(status, 200, "{path} for B's admin: {body}");
    }
    // A's probes changed nothing in B: B's product keeps its name and status.
    let (_, product) = w
        .get(&foreign.fill("/v1/products/{id}"), &w.b.admin.token)
        .await;
    assert_eq!(product["name"], "Only in B", "{product}");
}

/// An answer that reveals nothing of another tenant: 404 or 422 for a refused id, or, for a
/// list filter, an empty page.
fn assert_refused_or_empty(got: &(StatusCode, Value), what: &str) {
    match got.0 {
        StatusCode::NOT_FOUND | StatusCode::UNPROCESSABLE_ENTITY => {
            assert!(got.1["code"].is_string(), "{what}: {}", got.1);
        }
        StatusCode::OK => assert_eq!(got.1["items"], json!([]), "{what}"),
        other => panic!("{what}: {other} {}", got.1),
    }
}

/// What B's admin sees of B, to show that A's attempts changed nothing.
async fn tenant_state(w: &World, foreign: &ForeignIds) -> Vec<Value> {
    let mut state = Vec::new();
    for path in [
        "/v1/products?limit=500".to_owned(),
        "/v1/retailers?limit=500".to_owned(),
        "/v1/users?limit=500".to_owned(),
        "/v1/api-keys?limit=500".to_owned(),
        "/v1/orders?limit=500".to_owned(),
        "/v1/stock-adjustments?limit=500".to_owned(),
        "/v1/categories?limit=500".to_owned(),
        foreign.fill("/v1/products/{id}/stock"),
        foreign.fill("/v1/customer-groups/{id}/prices"),
    ] {
        let (status, body) = w.get(&path, &w.b.admin.token).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        state.push(body);
    }
    state
}

#[tokio::test]
async fn another_tenants_ids_inside_bodies_and_queries_are_refused() {
    let w = world().await;
    let foreign = foreign_ids(&w).await;
    let id = |name: &str| -> u64 { foreign.0[name].parse().expect("numeric id") };
    let (product, manufacturer, category) = (id("products"), id("manufacturers"), id("categories"));
    let (group, retailer, warehouse) = (id("customer-groups"), id("retailers"), id("warehouses"));
    let before = tenant_state(&w, &foreign).await;
    let admin = &w.a.admin.token;

    let bodies = [
        (
            "/v1/orders",
            &w.a.buyer.token,
            json!({"lines": [{"product_id": product, "quantity": 2}]}),
            "order line product_id",
            "unknown_product",
        ),
        (
            "/v1/orders",
            &w.a.buyer.token,
            json!({"lines": [{"sku": "B-ONLY", "manufacturer_id": w.b.manufacturer_id, "quantity": 2},
                             {"sku": "B-ONLY", "manufacturer_id": manufacturer, "quantity": 2}]}),
            "order line sku",
            "unknown_product",
        ),
        (
            "/v1/products",
            admin,
            json!({"manufacturer_id": manufacturer, "sku": "A-1", "name": "x",
                   "base_price": {"minor": 500}}),
            "product manufacturer_id",
            "\"field\":\"manufacturer_id\"",
        ),
        (
            "/v1/products",
            admin,
            json!({"manufacturer_id": w.a.manufacturer_id, "category_id": category, "sku": "A-2",
                   "name": "x", "base_price": {"minor": 500}}),
            "product category_id",
            "\"field\":\"category_id\"",
        ),
        (
            "/v1/retailers",
            admin,
            json!({"name": "Grouped", "customer_group_id": group}),
            "retailer customer_group_id",
            "\"field\":\"customer_group_id\"",
        ),
        (
            "/v1/stock-adjustments",
            admin,
            json!({"warehouse_id": w.a.warehouse_id, "product_id": product, "delta": 5,
                   "reason": "receipt"}),
            "stock adjustment product_id",
            "\"resource\":\"product\"",
        ),
        (
            "/v1/stock-adjustments",
            admin,
            json!({"warehouse_id": warehouse, "product_id": w.a.products[0], "delta": 5,
                   "reason": "receipt"}),
            "stock adjustment warehouse_id",
            "\"resource\":\"warehouse\"",
        ),
        (
            "/v1/users",
            admin,
            json!({"email": "bound@acme.example", "password": "a long enough password 42",
                   "role": {"kind": "buyer", "retailer_id": retailer}}),
            "user role retailer_id",
            "\"field\":\"role.retailer_id\"",
        ),
        (
            "/v1/users",
            admin,
            json!({"email": "bound@acme.example", "password": "a long enough password 42",
                   "role": {"kind": "manufacturer_user", "manufacturer_id": manufacturer}}),
            "user role manufacturer_id",
            "\"field\":\"role.manufacturer_id\"",
        ),
        (
            "/v1/api-keys",
            admin,
            json!({"name": "bound", "scopes": ["orders:read"],
                   "role": {"kind": "buyer_approver", "retailer_id": retailer}}),
            "api key role retailer_id",
            "\"field\":\"role.retailer_id\"",
        ),
    ];
    // Each is refused because of the foreign id, not because of the rest of the body.
    for (path, token, body, what, names) in bodies {
        let got = w.post(path, token, body).await;
        assert!(
            matches!(
                got.0,
                StatusCode::NOT_FOUND | StatusCode::UNPROCESSABLE_ENTITY
            ),
            "{what}: {} {}",
            got.0,
            got.1
        );
        assert!(got.1.to_string().contains(names), "{what}: {}", got.1);
    }
    let got = w
        .patch(
            &format!("/v1/retailers/{}", w.a.retailer_id),
            admin,
            json!({"customer_group_id": group}),
        )
        .await;
    assert!(
        matches!(
            got.0,
            StatusCode::NOT_FOUND | StatusCode::UNPROCESSABLE_ENTITY
        ),
        "retailer update customer_group_id: {} {}",
        got.0,
        got.1
    );
    assert_eq!(got.1["field"], "customer_group_id", "{}", got.1);

    for path in [
        format!("/v1/products?manufacturer_id={manufacturer}"),
        format!("/v1/products?category_id={category}"),
        format!("/v1/products?manufacturer_id={manufacturer}&sku=B-ONLY"),
        format!("/v1/orders?retailer_id={retailer}"),
        format!("/v1/suborders?manufacturer_id={manufacturer}"),
        format!("/v1/invoices?retailer_id={retailer}"),
        format!("/v1/stock-adjustments?product_id={product}"),
    ] {
        assert_refused_or_empty(&w.get(&path, admin).await, &path);
    }

    // Nothing A sent changed B, and A gained nothing either.
    assert_eq!(tenant_state(&w, &foreign).await, before);
    let (_, a_products) = w.get("/v1/products?limit=500", admin).await;
    assert_eq!(
        a_products["items"].as_array().map(Vec::len),
        Some(w.a.products.len()),
        "{a_products}"
    );
}
