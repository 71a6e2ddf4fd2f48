//! End-to-end tests of the catalog API: the category tree, catalog settings, products and
//! their status, the caller's price, images, and CSV import/export, through HTTP against the
//! real binary.

use crate::api_support::{World, assert_problem, base_price, send, status_and_json, world};
use reqwest::header::{CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// A product body for `manufacturer_id` with `sku`.
fn product_body(manufacturer_id: u64, sku: &str) -> Value {
    json!({
        "manufacturer_id": manufacturer_id,
        "sku": sku,
        "name": format!("Product {sku}"),
        "description": "A test product",
        "base_price": {"minor": 2_500},
        "case_pack": 6,
        "min_order_qty": 12,
        "tiers": [{"min_qty": 60, "unit_price": {"minor": 2_200, "currency": "EUR"}}],
    })
}

fn ids(page: &Value) -> Vec<u64> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["id"].as_u64().expect("id"))
        .collect()
}

/// Posts a body the server refuses before reading it. Over HTTP/1.1 the server's early 413
/// and close can break the client's write of the rest; over HTTP/2 (h2c) the server ends the
/// stream after its answer and the client always sees the 413.
async fn send_oversized(
    w: &World,
    path: &str,
    token: &str,
    media: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let h2 = crate::support::client_builder()
        .http2_prior_knowledge()
        .build()
        .expect("h2c client");
    send(
        h2.post(format!("{}{path}", w.app.url))
            .bearer_auth(token)
            .header(CONTENT_TYPE, media)
            .body(body),
    )
    .await
}

async fn create_product(w: &World, token: &str, body: Value) -> Value {
    let (status, product) = w.post("/v1/products", token, body).await;
    assert_eq!(status, StatusCode::CREATED, "{product}");
    product
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn category_tree_create_path_children_rename_move_and_cycles() {
    let w = world().await;
    let a = &w.a;
    let admin = &a.admin.token;

    // A child of the world's subcategory, with a slug derived from its name.
    let (status, hammers) = w
        .post(
            "/v1/categories",
            admin,
            json!({"parent_id": a.subcategory_id, "name": "Claw Hammers"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hammers}");
    assert_eq!(hammers["slug"], "claw-hammers");
    assert_eq!(hammers["depth"], 2);
    let hammers_id = hammers["id"].as_u64().expect("id");
    let path: Vec<&str> = hammers["path"]
        .as_array()
        .expect("path")
        .iter()
        .map(|s| s["slug"].as_str().expect("slug"))
        .collect();
    assert_eq!(path, ["tools", "hand-tools", "claw-hammers"]);

    // Everyone who reads the catalog sees it; its path comes with it.
    let (status, read) = w
        .get(&format!("/v1/categories/{hammers_id}"), &a.buyer.token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["path"][0]["id"], a.category_id);
    let (status, children) = w
        .get(
            &format!("/v1/categories/{}/children", a.subcategory_id),
            &a.buyer.token,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&children), [hammers_id]);
    let (status, all) = w.get("/v1/categories?limit=2", &a.reviewer.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&all).len(), 2);
    let cursor = all["next_cursor"].as_str().expect("a next page");
    let (_, rest) = w
        .get(
            &format!("/v1/categories?limit=2&cursor={cursor}"),
            &a.reviewer.token,
        )
        .await;
    assert_eq!(ids(&rest), [hammers_id]);

    // Only the tenant admin shapes the tree.
    for token in [
        &a.manufacturer_user.token,
        &a.buyer.token,
        &a.reviewer.token,
    ] {
        let got = w
            .post("/v1/categories", token, json!({"name": "Nope"}))
            .await;
        assert_problem(&got, StatusCode::FORBIDDEN, "forbidden");
    }

    // Rejections naming the field or the conflict.
    let got = w
        .post(
            "/v1/categories",
            admin,
            json!({"name": "Tools again", "slug": "tools"}),
        )
        .await;
    assert_problem(&got, StatusCode::CONFLICT, "slug_taken");
    let got = w
        .post(
            "/v1/categories",
            admin,
            json!({"name": "Orphan", "parent_id": 999_999}),
        )
        .await;
    assert_eq!(
        assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "parent"
    );
    let got = w
        .post(
            "/v1/categories",
            admin,
            json!({"name": "Bad", "slug": "Not A Slug"}),
        )
        .await;
    assert_eq!(
        assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "slug"
    );

    // Rename.
    let (status, renamed) = w
        .patch(
            &format!("/v1/categories/{hammers_id}"),
            admin,
            json!({"name": "Hammers", "slug": "hammers"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(
        (renamed["name"].as_str(), renamed["slug"].as_str()),
        (Some("Hammers"), Some("hammers"))
    );

    // A category never moves under itself or its own subtree.
    let root = a.category_id;
    let got = w
        .patch(
            &format!("/v1/categories/{root}"),
            admin,
            json!({"parent_id": hammers_id}),
        )
        .await;
    assert_problem(&got, StatusCode::CONFLICT, "category_cycle");
    let got = w
        .patch(
            &format!("/v1/categories/{root}"),
            admin,
            json!({"parent_id": root}),
        )
        .await;
    assert_problem(&got, StatusCode::CONFLICT, "category_cycle");
    // A failed move changes nothing.
    let (_, unchanged) = w.get(&format!("/v1/categories/{root}"), admin).await;
    assert_eq!(unchanged["parent_id"], Value::Null);

    // Moving to the root (`null`) rewrites the depth and the path.
    let (status, moved) = w
        .patch(
            &format!("/v1/categories/{hammers_id}"),
            admin,
            json!({"parent_id": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["depth"], 0);
    assert_eq!(moved["path"].as_array().map(Vec::len), Some(1));
    let (_, children) = w
        .get(
            &format!("/v1/categories/{}/children", a.subcategory_id),
            admin,
        )
        .await;
    assert!(ids(&children).is_empty(), "{children}");

    // Another tenant's category is a 404, like a missing one: tenant b's newest category has
    // an id tenant a never used (ids are per tenant).
    let mut other = 0;
    for slug in ["b-one", "b-two"] {
        let (status, made) = w
            .post("/v1/categories", &w.b.admin.token, json!({"name": slug}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        other = made["id"].as_u64().expect("id");
    }
    assert!(other > hammers_id);
    for got in [
        w.get(&format!("/v1/categories/{other}"), admin).await,
        w.get(&format!("/v1/categories/{other}/children"), admin)
            .await,
        w.patch(
            &format!("/v1/categories/{other}"),
            admin,
            json!({"name": "Mine"}),
        )
        .await,
    ] {
        assert_problem(&got, StatusCode::NOT_FOUND, "not_found");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_decide_whether_unverified_manufacturers_publish() {
    let w = world().await;
    let a = &w.a;
    let admin = &a.admin.token;

    let (status, settings) = w.get("/v1/catalog/settings", &a.buyer.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        settings,
        json!({"currency": "EUR", "require_verified_manufacturer_to_publish": true})
    );

    // The unverified manufacturer's product cannot be published under the default policy.
    let product = create_product(
        &w,
        admin,
        product_body(a.unverified_manufacturer_id, "PAINT-1"),
    )
    .await;
    let status_path = format!("/v1/products/{}/status", product["id"]);
    let got = w
        .put(&status_path, admin, json!({"status": "active"}))
        .await;
    assert_problem(&got, StatusCode::CONFLICT, "manufacturer_not_verified");

    // Only the admin changes the settings; a bad currency names the field; the currency
    // cannot change under existing prices.
    let relaxed = json!({"currency": "EUR", "require_verified_manufacturer_to_publish": false});
    for token in [
        &a.manufacturer_user.token,
        &a.reviewer.token,
        &a.buyer.token,
    ] {
        let got = w.put("/v1/catalog/settings", token, relaxed.clone()).await;
        assert_problem(&got, StatusCode::FORBIDDEN, "forbidden");
    }
    let got = w
        .put(
            "/v1/catalog/settings",
            admin,
            json!({"currency": "eur", "require_verified_manufacturer_to_publish": true}),
        )
        .await;
    assert_eq!(
        assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "currency"
    );
    let got = w
        .put(
            "/v1/catalog/settings",
            admin,
            json!({"currency": "USD", "require_verified_manufacturer_to_publish": true}),
        )
        .await;
    assert_problem(&got, StatusCode::CONFLICT, "currency_in_use");

    let (status, saved) = w.put("/v1/catalog/settings", admin, relaxed.clone()).await;
    assert_eq!((status, &saved), (StatusCode::OK, &relaxed));
    let (status, published) = w
        .put(&status_path, admin, json!({"status": "active"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{published}");
    assert_eq!(published["status"], "active");
    // The other tenant's policy is its own.
    let (_, theirs) = w.get("/v1/catalog/settings", &w.b.admin.token).await;
    assert_eq!(theirs["require_verified_manufacturer_to_publish"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn products_are_created_read_and_patched_with_validation() {
    let w = world().await;
    let a = &w.a;
    let maker = &a.manufacturer_user.token;

    // A manufacturer user creates for its own manufacturer by default.
    let response = w
        .req(Method::POST, "/v1/products", maker)
        .json(&json!({
            "sku": "DRILL-1", "name": "Cordless drill", "category_id": a.category_id,
            "attributes": {"voltage": "18V"}, "base_price": {"minor": 9_900},
            "case_pack": 2, "min_order_qty": 4,
            "tiers": [{"min_qty": 10, "unit_price": {"minor": 9_500}},
                      {"min_qty": 50, "unit_price": {"minor": 9_000}}],
        }))
        .send()
        .await
        .expect("send");
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (status, drill) = status_and_json(response).await;
    assert_eq!(status, StatusCode::CREATED, "{drill}");
    let id = drill["id"].as_u64().expect("id");
    assert_eq!(
        location.as_deref(),
        Some(format!("/v1/products/{id}").as_str())
    );
    assert_eq!(drill["manufacturer_id"], a.manufacturer_id);
    assert_eq!(drill["status"], "draft");
    assert_eq!(drill["unit_of_measure"], "each");
    assert_eq!(
        drill["base_price"],
        json!({"minor": 9_900, "currency": "EUR"})
    );
    assert_eq!(drill["tiers"][1]["unit_price"]["minor"], 9_000);
    assert_eq!(drill["version"], 1);

    // SKUs are unique per manufacturer, not per tenant.
    let got = w
        .post(
            "/v1/products",
            maker,
            product_body(a.manufacturer_id, "DRILL-1"),
        )
        .await;
    assert_problem(&got, StatusCode::CONFLICT, "sku_taken");
    create_product(
        &w,
        &a.admin.token,
        product_body(a.unverified_manufacturer_id, "DRILL-1"),
    )
    .await;

    // Case pack, MOQ and tiers are checked, naming the field.
    let invalid = |patch: Value| {
        let mut body = product_body(a.manufacturer_id, "BAD-1");
        if let (Value::Object(body), Value::Object(patch)) = (&mut body, patch) {
            body.extend(patch);
        }
        body
    };
    let cases = [
        (json!({"case_pack": 0}), "case_pack"),
        (
            json!({"case_pack": 5, "min_order_qty": 12}),
            "min_order_qty",
        ),
        (json!({"min_order_qty": 0}), "min_order_qty"),
        (json!({"case_pack": "six"}), "case_pack"),
        (json!({"sku": "has space"}), "sku"),
        (json!({"base_price": {"minor": -1}}), "base_price"),
        (
            json!({"base_price": {"minor": 100, "currency": "USD"}}),
            "base_price",
        ),
        (
            json!({"tiers": [{"min_qty": 0, "unit_price": {"minor": 10}}]}),
            "tiers[0].min_qty",
        ),
        (
            json!({"tiers": [{"min_qty": 10, "unit_price": {"minor": 3_000}}]}),
            "tiers[0].unit_price",
        ),
        (
            json!({"tiers": [{"min_qty": 10, "unit_price": {"minor": 2_000}},
                             {"min_qty": 5, "unit_price": {"minor": 1_900}}]}),
            "tiers[1].min_qty",
        ),
        (
            json!({"tiers": [{"min_qty": 10, "unit_price": {"minor": 2_000}},
                             {"min_qty": 20, "unit_price": {"minor": 2_100}}]}),
            "tiers[1].unit_price",
        ),
        (json!({"category_id": 999_999}), "category_id"),
        (json!({"colour": "red"}), "colour"),
    ];
    for (patch, field) in cases {
        let got = w.post("/v1/products", maker, invalid(patch.clone())).await;
        let body = assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert_eq!(body["field"], field, "{patch}: {body}");
    }
    let missing = w
        .post(
            "/v1/products",
            maker,
            json!({"sku": "X-1", "base_price": {"minor": 1}}),
        )
        .await;
    assert_eq!(
        assert_problem(&missing, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "name"
    );
    let not_json = send(
        w.req(Method::POST, "/v1/products", maker)
            .header(CONTENT_TYPE, "text/plain")
            .body("sku=1"),
    )
    .await;
    assert_problem(
        &not_json,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );

    // Only the manufacturer's own users (and admins) manage its products.
    let got = w
        .post(
            "/v1/products",
            maker,
            product_body(a.unverified_manufacturer_id, "X-2"),
        )
        .await;
    assert_problem(&got, StatusCode::FORBIDDEN, "forbidden");
    for token in [&a.buyer.token, &a.reviewer.token] {
        let got = w
            .post(
                "/v1/products",
                token,
                product_body(a.manufacturer_id, "X-3"),
            )
            .await;
        assert_problem(&got, StatusCode::FORBIDDEN, "forbidden");
    }

    // A draft is invisible to buyers, visible to its manufacturer and reviewers; reads carry
    // an ETag that answers 304.
    let path = format!("/v1/products/{id}");
    let got = w.get(&path, &a.buyer.token).await;
    assert_problem(&got, StatusCode::NOT_FOUND, "not_found");
    let (status, _) = w.get(&path, &a.reviewer.token).await;
    assert_eq!(status, StatusCode::OK);
    let response = w.req(Method::GET, &path, maker).send().await.expect("get");
    assert_eq!(response.status(), StatusCode::OK);
    let etag = response.headers().get(ETAG).cloned().expect("etag");
    let again = w
        .req(Method::GET, &path, maker)
        .header(IF_NONE_MATCH, etag)
        .send()
        .await
        .expect("get");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let (_, some) = w.get(&format!("{path}?fields=id,sku"), maker).await;
    assert_eq!(some, json!({"id": id, "sku": "DRILL-1"}));

    // PATCH changes what it names; a stale version is refused; null removes the category.
    let (status, patched) = w
        .patch(
            &path,
            maker,
            json!({"name": "Cordless drill 18V", "category_id": null, "version": 1,
                   "base_price": {"minor": 9_800}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Cordless drill 18V");
    assert_eq!(patched["category_id"], Value::Null);
    assert_eq!(patched["base_price"]["minor"], 9_800);
    assert_eq!(patched["attributes"]["voltage"], "18V");
    assert_eq!(patched["version"], 2);
    let got = w
        .patch(&path, maker, json!({"name": "Old view", "version": 1}))
        .await;
    assert_problem(&got, StatusCode::CONFLICT, "version_mismatch");
    let got = w.patch(&path, maker, json!({"min_order_qty": 3})).await;
    assert_eq!(
        assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "min_order_qty"
    );
    let got = w.patch(&path, maker, json!({"sku": "SKU-0"})).await;
    assert_problem(&got, StatusCode::CONFLICT, "sku_taken");

    // Another tenant's product is a 404 for every route: tenant b's newest product has an id
    // tenant a never used (ids are per tenant).
    let mut theirs = 0;
    for i in 0..4 {
        let made = create_product(
            &w,
            &w.b.admin.token,
            product_body(w.b.manufacturer_id, &format!("B-{i}")),
        )
        .await;
        theirs = made["id"].as_u64().expect("id");
    }
    let (_, ours) = w.get("/v1/products?limit=500", &a.admin.token).await;
    assert!(ids(&ours).iter().all(|id| *id < theirs));
    for got in [
        w.get(&format!("/v1/products/{theirs}"), &a.admin.token)
            .await,
        w.patch(
            &format!("/v1/products/{theirs}"),
            &a.admin.token,
            json!({"name": "Mine"}),
        )
        .await,
        w.put(
            &format!("/v1/products/{theirs}/status"),
            &a.admin.token,
            json!({"status": "archived"}),
        )
        .await,
        w.get(
            &format!("/v1/products/{theirs}/price?quantity=1"),
            &a.admin.token,
        )
        .await,
    ] {
        assert_problem(&got, StatusCode::NOT_FOUND, "not_found");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_changes_follow_the_lifecycle() {
    let w = world().await;
    let a = &w.a;
    let maker = &a.manufacturer_user.token;
    let product = create_product(&w, maker, product_body(a.manufacturer_id, "LIFE-1")).await;
    let id = product["id"].as_u64().expect("id");
    let status_path = format!("/v1/products/{id}/status");
    let set = |status: &'static str| w.put(&status_path, maker, json!({"status": status}));

    let (code, active) = set("active").await;
    assert_eq!(
        (code, active["status"].as_str()),
        (StatusCode::OK, Some("active"))
    );
    // Published: buyers see it now.
    let (code, _) = w.get(&format!("/v1/products/{id}"), &a.buyer.token).await;
    assert_eq!(code, StatusCode::OK);

    let (code, archived) = set("archived").await;
    assert_eq!(
        (code, archived["status"].as_str()),
        (StatusCode::OK, Some("archived"))
    );
    let got = w.get(&format!("/v1/products/{id}"), &a.buyer.token).await;
    assert_problem(&got, StatusCode::NOT_FOUND, "not_found");
    let got = set("active").await;
    assert_problem(&got, StatusCode::CONFLICT, "illegal_status_transition");
    let (code, draft) = set("draft").await;
    assert_eq!(
        (code, draft["status"].as_str()),
        (StatusCode::OK, Some("draft"))
    );

    let got = set("deleted").await;
    assert_eq!(
        assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "status"
    );
    let got = w
        .put(
            &status_path,
            maker,
            json!({"status": "active", "version": 1}),
        )
        .await;
    assert_problem(&got, StatusCode::CONFLICT, "version_mismatch");
    // A buyer cannot change a status, even of a product it can see.
    let got = w
        .put(
            &format!("/v1/products/{}/status", a.products[0]),
            &a.buyer.token,
            json!({"status": "archived"}),
        )
        .await;
    assert_problem(&got, StatusCode::FORBIDDEN, "forbidden");
    // The unverified manufacturer cannot publish, whoever asks.
    let paint = create_product(
        &w,
        &a.admin.token,
        product_body(a.unverified_manufacturer_id, "PAINT-1"),
    )
    .await;
    let got = w
        .put(
            &format!("/v1/products/{}/status", paint["id"]),
            &a.admin.token,
            json!({"status": "active"}),
        )
        .await;
    assert_problem(&got, StatusCode::CONFLICT, "manufacturer_not_verified");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_lists_filter_and_paginate_stably_under_inserts() {
    let w = world().await;
    let a = &w.a;
    let admin = &a.admin.token;
    let maker = &a.manufacturer_user.token;
    let draft = create_product(&w, maker, product_body(a.manufacturer_id, "DRAFT-1")).await;
    let draft_id = draft["id"].as_u64().expect("id");
    let world_ids = a.products.clone();

    // Buyers see active products only; asking for drafts is refused.
    let (status, page) = w.get("/v1/products", &a.buyer.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&page), world_ids);
    let got = w.get("/v1/products?status=draft", &a.buyer.token).await;
    assert_problem(&got, StatusCode::FORBIDDEN, "forbidden");
    // The manufacturer sees its drafts when it filters by itself; the admin sees everything.
    let (_, own) = w
        .get(
            &format!(
                "/v1/products?manufacturer_id={}&status=draft",
                a.manufacturer_id
            ),
            maker,
        )
        .await;
    assert_eq!(ids(&own), [draft_id]);
    let (_, everything) = w.get("/v1/products", admin).await;
    assert_eq!(ids(&everything).len(), world_ids.len() + 1);

    // Filters: category (with descendants), manufacturer, status, SKU.
    let (_, in_root) = w
        .get(
            &format!("/v1/products?category_id={}", a.category_id),
            admin,
        )
        .await;
    assert!(ids(&in_root).is_empty(), "{in_root}");
    let (_, below_root) = w
        .get(
            &format!(
                "/v1/products?category_id={}&include_descendants=true",
                a.category_id
            ),
            admin,
        )
        .await;
    assert_eq!(ids(&below_root), world_ids);
    let (_, of_unverified) = w
        .get(
            &format!(
                "/v1/products?manufacturer_id={}",
                a.unverified_manufacturer_id
            ),
            admin,
        )
        .await;
    assert!(ids(&of_unverified).is_empty());
    let (_, by_sku) = w.get("/v1/products?sku=SKU-3", &a.buyer.token).await;
    assert_eq!(ids(&by_sku), [world_ids[3]]);
    let (_, by_sku_and_maker) = w
        .get(
            &format!(
                "/v1/products?sku=SKU-3&manufacturer_id={}",
                a.manufacturer_id
            ),
            &a.buyer.token,
        )
        .await;
    assert_eq!(ids(&by_sku_and_maker), [world_ids[3]]);
    let (_, draft_by_sku) = w.get("/v1/products?sku=DRAFT-1", &a.buyer.token).await;
    assert!(ids(&draft_by_sku).is_empty(), "buyers never see drafts");
    let (_, only_ids) = w
        .get("/v1/products?limit=1&fields=id", &a.buyer.token)
        .await;
    assert_eq!(only_ids["items"][0], json!({"id": world_ids[0]}));
    for (query, field) in [
        ("manufacturer_id=x", "manufacturer_id"),
        ("status=gone", "status"),
        ("limit=0", "limit"),
        ("cursor=zz", "cursor"),
    ] {
        let got = w.get(&format!("/v1/products?{query}"), admin).await;
        assert_eq!(
            assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
            field
        );
    }

    // Pages of 2 while products are added between requests: every product once, in order,
    // the new ones included at the end.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut added = Vec::new();
    for round in 0..20 {
        let path = match &cursor {
            None => "/v1/products?limit=2".to_owned(),
            Some(c) => format!("/v1/products?limit=2&cursor={c}"),
        };
        let (status, page) = w.get(&path, admin).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(ids(&page));
        if round < 3 {
            let p = create_product(
                &w,
                maker,
                product_body(a.manufacturer_id, &format!("NEW-{round}")),
            )
            .await;
            added.push(p["id"].as_u64().expect("id"));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut expected: Vec<u64> = world_ids.clone();
    expected.push(draft_id);
    expected.extend(&added);
    assert_eq!(seen, expected);
    assert_eq!(
        seen.iter().collect::<BTreeSet<_>>().len(),
        seen.len(),
        "no product twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_price_route_applies_volume_tiers() {
    let w = world().await;
    let a = &w.a;
    let product = a.products[2];
    let path = |q: &str| format!("/v1/products/{product}/price?{q}");

    let (status, one) = w.get(&path("quantity=1"), &a.buyer.token).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(
        one["unit_price"],
        json!({"minor": base_price(2), "currency": "EUR"})
    );
    assert_eq!(one["total"]["minor"], base_price(2));
    assert_eq!(one["customer_group_id"], Value::Null);
    assert_eq!(one["orderable_quantity"], true);

    // From 100 units the 10 % tier applies.
    let (_, hundred) = w.get(&path("quantity=100"), &a.approver.token).await;
    assert_eq!(hundred["unit_price"]["minor"], base_price(2) * 9 / 10);
    assert_eq!(hundred["total"]["minor"], base_price(2) * 9 / 10 * 100);
    let (_, ninety_nine) = w.get(&path("quantity=99"), &a.admin.token).await;
    assert_eq!(ninety_nine["unit_price"]["minor"], base_price(2));

    for (query, field) in [
        ("", "quantity"),
        ("quantity=0", "quantity"),
        ("quantity=-3", "quantity"),
        ("quantity=ten", "quantity"),
        ("quantity=1&customer_group_id=g", "customer_group_id"),
    ] {
        let got = w.get(&path(query), &a.buyer.token).await;
        assert_eq!(
            assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
            field,
            "{query}"
        );
    }
    // Staff may price as a group; a group that does not exist is a 404. A buyer is priced as
    // its own retailer's group only.
    let got = w
        .get(&path("quantity=1&customer_group_id=424242"), &a.admin.token)
        .await;
    assert_problem(&got, StatusCode::NOT_FOUND, "not_found");
    let got = w
        .get(&path("quantity=1&customer_group_id=424242"), &a.buyer.token)
        .await;
    assert_problem(&got, StatusCode::FORBIDDEN, "forbidden");

    // A product the caller cannot see has no price either.
    let draft = create_product(
        &w,
        &a.manufacturer_user.token,
        product_body(a.manufacturer_id, "HIDDEN-1"),
    )
    .await;
    let got = w
        .get(
            &format!("/v1/products/{}/price?quantity=12", draft["id"]),
            &a.buyer.token,
        )
        .await;
    assert_problem(&got, StatusCode::NOT_FOUND, "not_found");
    let (status, staff) = w
        .get(
            &format!("/v1/products/{}/price?quantity=6", draft["id"]),
            &a.manufacturer_user.token,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(staff["orderable_quantity"], false, "below the MOQ of 12");
}

/// A small PNG: the signature, then an IHDR chunk's start (the type is told by the bytes).
fn png(seed: u8) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.extend(std::iter::repeat_n(seed, 64));
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_uploaded_checked_and_removed() {
    let w = world().await;
    let a = &w.a;
    let maker = &a.manufacturer_user.token;
    let product = a.products[0];
    let images = format!("/v1/products/{product}/images");

    let bytes = png(7);
    let response = w
        .req(Method::POST, &images, maker)
        .header(CONTENT_TYPE, "image/png")
        .body(bytes.clone())
        .send()
        .await
        .expect("upload");
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("location");
    let (status, uploaded) = status_and_json(response).await;
    assert_eq!(status, StatusCode::CREATED, "{uploaded}");
    let hash = uploaded["hash"].as_str().expect("hash").to_owned();
    assert_eq!(hash.len(), 64);
    assert_eq!(uploaded["content_type"], "image/png");
    assert_eq!(location, format!("{images}/{hash}"));
    assert_eq!(uploaded["product"]["images"], json!([hash]));

    // A JPEG and a WebP are accepted too, appended in order.
    let jpeg = [b"\xff\xd8\xff\xe0".as_slice(), &[1u8; 32]].concat();
    let webp = [b"RIFF\x24\0\0\0WEBPVP8 ".as_slice(), &[2u8; 32]].concat();
    for (body, media) in [(jpeg, "image/jpeg"), (webp, "image/webp")] {
        let (status, got) = send(w.req(Method::POST, &images, maker).body(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{got}");
        assert_eq!(got["content_type"], media);
    }
    let (_, read) = w.get(&format!("/v1/products/{product}"), maker).await;
    assert_eq!(read["images"].as_array().map(Vec::len), Some(3));
    assert_eq!(read["images"][0], hash.as_str());
    // The same bytes again: 200, nothing added.
    let (status, again) = send(w.req(Method::POST, &images, maker).body(bytes.clone())).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["hash"], hash.as_str());
    assert_eq!(again["product"]["images"].as_array().map(Vec::len), Some(3));

    // Not an image: 415. Too large: 413. Neither changes the product.
    let gif = send(
        w.req(Method::POST, &images, maker)
            .body(b"GIF89a....".to_vec()),
    )
    .await;
    assert_problem(
        &gif,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let mut huge = png(1);
    huge.resize((8 << 20) + 1, 0);
    let got = send_oversized(&w, &images, maker, "image/png", huge).await;
    assert_problem(&got, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let got = send(w.req(Method::POST, &images, &a.buyer.token).body(png(3))).await;
    assert_problem(&got, StatusCode::FORBIDDEN, "forbidden");
    let (_, read) = w.get(&format!("/v1/products/{product}"), maker).await;
    assert_eq!(read["images"].as_array().map(Vec::len), Some(3));

    // Unknown or malformed hashes.
    let zeros = "0".repeat(64);
    let got = w.get(&format!("{images}/{zeros}"), maker).await;
    assert_problem(&got, StatusCode::NOT_FOUND, "not_found");
    let got = w.get(&format!("{images}/xyz"), maker).await;
    assert_eq!(
        assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "hash"
    );
    // The image of another product is not served through this one.
    let got = w
        .get(
            &format!("/v1/products/{}/images/{hash}", a.products[1]),
            maker,
        )
        .await;
    assert_problem(&got, StatusCode::NOT_FOUND, "not_found");

    // Removal.
    let got = w.delete(&location, &a.buyer.token).await;
    assert_problem(&got, StatusCode::FORBIDDEN, "forbidden");
    let (status, _) = w.delete(&location, maker).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, read) = w.get(&format!("/v1/products/{product}"), maker).await;
    assert_eq!(read["images"].as_array().map(Vec::len), Some(2));
    assert!(
        !read["images"]
            .as_array()
            .expect("images")
            .contains(&json!(hash))
    );
    let got = w.get(&location, maker).await;
    assert_problem(&got, StatusCode::NOT_FOUND, "not_found");
    let got = w.delete(&location, maker).await;
    assert_problem(&got, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_served_with_their_type_and_a_strong_etag() {
    let w = world().await;
    let a = &w.a;
    let maker = &a.manufacturer_user.token;
    let images = format!("/v1/products/{}/images", a.products[1]);
    let jpeg = [b"\xff\xd8\xff\xe0".as_slice(), &[9u8; 48]].concat();
    for (bytes, media) in [(png(5), "image/png"), (jpeg, "image/jpeg")] {
        let (status, uploaded) =
            send(w.req(Method::POST, &images, maker).body(bytes.clone())).await;
        assert_eq!(status, StatusCode::CREATED, "{uploaded}");
        let hash = uploaded["hash"].as_str().expect("hash");
        let location = format!("{images}/{hash}");

        // A buyer reads the image of a published product: its bytes, its type, its hash as a
        // strong ETag, and a 304 when it names that ETag.
        let response = w
            .req(Method::GET, &location, &a.buyer.token)
            .send()
            .await
            .expect("get image");
        assert_eq!(response.status(), StatusCode::OK, "{location}");
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(header(CONTENT_TYPE).as_deref(), Some(media));
        let etag = header(ETAG).expect("etag");
        assert_eq!(etag, format!("\"{hash}\""));
        assert_eq!(
            response.bytes().await.expect("bytes").as_ref(),
            bytes.as_slice()
        );
        let again = w
            .req(Method::GET, &location, &a.buyer.token)
            .header(IF_NONE_MATCH, &etag)
            .send()
            .await
            .expect("get image");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

        // The other tenant cannot read it, even through its own product of the same id.
        let got = w.get(&location, &w.b.admin.token).await;
        assert_problem(&got, StatusCode::NOT_FOUND, "not_found");
    }
}

/// A CSV of `rows` new products of `manufacturer_id`, SKUs `{prefix}-{i}`.
fn csv(manufacturer_id: u64, prefix: &str, rows: usize) -> String {
    let mut text =
        String::from("manufacturer_id,sku,name,base_price,case_pack,min_order_qty,tiers\n");
    for i in 0..rows {
        text.push_str(&format!(
            "{manufacturer_id},{prefix}-{i},\"Bolt, size {i}\",1.50,10,20,100:1.25\n"
        ));
    }
    text
}

async fn import(w: &World, token: &str, query: &str, body: String) -> (StatusCode, Value) {
    send(
        w.req(Method::POST, &format!("/v1/products/import{query}"), token)
            .header(CONTENT_TYPE, "text/csv")
            .body(body),
    )
    .await
}

async fn count_products(w: &World, manufacturer_id: u64) -> usize {
    let mut total = 0;
    let mut cursor = String::new();
    loop {
        let (status, page) = w
            .get(
                &format!("/v1/products?manufacturer_id={manufacturer_id}&limit=500{cursor}"),
                &w.a.admin.token,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        total += ids(&page).len();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return total,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_import_reports_bad_lines_and_is_all_or_nothing_per_file() {
    let w = world().await;
    let a = &w.a;
    let admin = &a.admin.token;
    let m = a.manufacturer_id;
    let before = count_products(&w, m).await;

    // Lines 3 and 5 are bad (the header is line 1): nothing is imported.
    let mut text = csv(m, "BOLT", 5);
    text = text.replace(&format!("{m},BOLT-1,"), &format!("{m},BOLT 1,"));
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[4] = format!("{m},BOLT-3,Bolt,1.50,10,15,");
    let text = lines.join("\n") + "\n";
    let got = import(&w, admin, "", text.clone()).await;
    let problem = assert_problem(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable_content",
    );
    let errors = problem["errors"].as_array().expect("errors");
    let bad_lines: Vec<u64> = errors
        .iter()
        .map(|e| e["line"].as_u64().expect("line"))
        .collect();
    assert_eq!(bad_lines, [3, 5], "{problem}");
    assert_eq!(errors[0]["column"], "sku");
    assert_eq!(errors[1]["column"], "min_order_qty");
    assert_eq!(problem["rows_read"], 5);
    assert_eq!(problem["rows_committed"], 0);
    assert_eq!(count_products(&w, m).await, before);
    // `?mode=file` is the default, spelled out.
    let got = import(&w, admin, "?mode=file", text).await;
    assert_problem(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable_content",
    );

    // A clean file imports whole.
    let (status, report) = import(&w, admin, "", csv(m, "NUT", 30)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["created"], 30);
    assert_eq!(report["rows_committed"], 30);
    assert_eq!(report["errors"], json!([]));
    assert_eq!(count_products(&w, m).await, before + 30);
    let (_, nuts) = w
        .get(
            &format!("/v1/products?sku=NUT-7&manufacturer_id={m}"),
            admin,
        )
        .await;
    let nut = &nuts["items"][0];
    assert_eq!(nut["name"], "Bolt, size 7");
    assert_eq!(nut["base_price"]["minor"], 150);
    assert_eq!(
        nut["tiers"][0],
        json!({"min_qty": 100, "unit_price": {"minor": 125, "currency": "EUR"}})
    );
    assert_eq!(nut["status"], "draft");

    // Rejections before reading: mode, media type, size, rights.
    let got = import(&w, admin, "?mode=row", csv(m, "X", 1)).await;
    assert_eq!(
        assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "mode"
    );
    let got = send(
        w.req(Method::POST, "/v1/products/import", admin)
            .header(CONTENT_TYPE, "application/json")
            .body("{}"),
    )
    .await;
    assert_problem(
        &got,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let huge = vec![b'x'; (32 << 20) + 1];
    let got = send_oversized(&w, "/v1/products/import", admin, "text/csv", huge).await;
    assert_problem(&got, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let got = import(
        &w,
        &a.manufacturer_user.token,
        "",
        csv(a.unverified_manufacturer_id, "THEIRS", 2),
    )
    .await;
    assert_problem(&got, StatusCode::FORBIDDEN, "forbidden");
    let got = import(&w, &a.buyer.token, "", csv(m, "BUY", 1)).await;
    assert_problem(&got, StatusCode::FORBIDDEN, "forbidden");
    // The manufacturer's own user imports its own rows.
    let (status, own) = import(&w, &a.manufacturer_user.token, "", csv(m, "OWN", 2)).await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert_eq!(own["created"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_mode_imports_the_good_batches() {
    let w = world().await;
    let a = &w.a;
    let admin = &a.admin.token;
    let m = a.manufacturer_id;
    let before = count_products(&w, m).await;

    // 1,200 rows: batches of 500 at lines 2..=501, 502..=1001, 1002..=1201. One bad row in the
    // second batch (line 601).
    let mut lines: Vec<String> = csv(m, "BATCH", 1_200).lines().map(str::to_owned).collect();
    lines[600] = format!("{m},BATCH-599,Bad bolt,not-a-price,10,20,");
    let text = lines.join("\n") + "\n";
    let (status, report) = import(&w, admin, "?mode=batch", text).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["mode"], "batch");
    assert_eq!(report["rows_read"], 1_200);
    assert_eq!(report["rows_invalid"], 1);
    assert_eq!(report["created"], 700);
    assert_eq!(report["errors"][0]["line"], 601);
    assert_eq!(report["errors"][0]["column"], "base_price");
    let committed: Vec<(u64, bool)> = report["batches"]
        .as_array()
        .expect("batches")
        .iter()
        .map(|b| {
            (
                b["first_line"].as_u64().expect("line"),
                b["committed"] == true,
            )
        })
        .collect();
    assert_eq!(committed, [(2, true), (502, false), (1002, true)]);
    assert_eq!(count_products(&w, m).await, before + 700);
    let (_, skipped) = w
        .get(
            &format!("/v1/products?sku=BATCH-700&manufacturer_id={m}"),
            admin,
        )
        .await;
    assert!(ids(&skipped).is_empty(), "a row of the skipped batch");
    let (_, kept) = w
        .get(
            &format!("/v1/products?sku=BATCH-1100&manufacturer_id={m}"),
            admin,
        )
        .await;
    assert_eq!(ids(&kept).len(), 1);

    // A batch-mode file with only bad rows writes nothing and is a 422.
    let got = import(
        &w,
        admin,
        "?mode=batch",
        format!("manufacturer_id,sku,name,base_price\n{m},ONLY,Only,free\n"),
    )
    .await;
    let problem = assert_problem(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable_content",
    );
    assert_eq!(problem["errors"][0]["line"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_round_trips_through_import() {
    let w = world().await;
    let a = &w.a;
    let admin = &a.admin.token;
    let m = a.manufacturer_id;

    let response = w
        .req(
            Method::GET,
            &format!("/v1/products/export?manufacturer_id={m}"),
            admin,
        )
        .send()
        .await
        .expect("export");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/csv")),
    );
    let exported = response.text().await.expect("csv");
    let lines: Vec<&str> = exported.lines().collect();
    assert!(
        lines[0].starts_with("manufacturer_id,sku,name,base_price"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("attr.material"), "{}", lines[0]);
    assert_eq!(lines.len(), 1 + a.products.len());
    assert!(lines[1].starts_with(&format!("{m},SKU-0,")), "{}", lines[1]);
    assert!(lines[1].contains("100:9.00"), "the tier: {}", lines[1]);

    // Importing the export changes nothing.
    let (status, report) = import(&w, admin, "", exported.clone()).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (report["created"].as_u64(), report["updated"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(report["rows_committed"], a.products.len());
    let (_, product) = w
        .get(&format!("/v1/products/{}", a.products[0]), admin)
        .await;
    assert_eq!(
        product["version"], 2,
        "created, then activated: not touched by the import"
    );

    // An edited export updates: a new name and price come back through the API.
    let edited = exported.replacen("Claw hammer model 0", "Claw hammer renamed", 1);
    let (status, report) = import(&w, admin, "", edited).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["updated"], 1);
    let (_, product) = w
        .get(&format!("/v1/products/{}", a.products[0]), admin)
        .await;
    assert_eq!(product["name"], "Claw hammer renamed");

    // Exports follow the caller's visibility: a buyer gets active products only, a
    // manufacturer user its own by default.
    let (status, text) = send(w.req(
        Method::GET,
        "/v1/products/export?status=draft",
        &a.buyer.token,
    ))
    .await;
    assert_problem(&(status, text), StatusCode::FORBIDDEN, "forbidden");
    let draft = create_product(
        &w,
        &a.manufacturer_user.token,
        product_body(m, "EXPORT-DRAFT"),
    )
    .await;
    assert_eq!(draft["status"], "draft");
    let own = w
        .req(
            Method::GET,
            "/v1/products/export",
            &a.manufacturer_user.token,
        )
        .send()
        .await
        .expect("export")
        .text()
        .await
        .expect("csv");
    assert!(own.contains("EXPORT-DRAFT"), "{own}");
    let public = w
        .req(Method::GET, "/v1/products/export", &a.buyer.token)
        .send()
        .await
        .expect("export")
        .text()
        .await
        .expect("csv");
    assert!(!public.contains("EXPORT-DRAFT"));
    assert_eq!(public.lines().count(), 1 + a.products.len());
    // Another tenant's export never holds this tenant's products.
    let theirs = w
        .req(Method::GET, "/v1/products/export", &w.b.admin.token)
        .send()
        .await
        .expect("export")
        .text()
        .await
        .expect("csv");
    assert!(!theirs.contains("renamed"));
}

/// Pages of `path` (which has a `?`) of `limit` items, following `next_cursor`; new products
/// are added by `maker` after each of the first `inserts` pages.
async fn walk_products(
    w: &World,
    token: &str,
    path: &str,
    inserts: usize,
    maker: &str,
    manufacturer_id: u64,
) -> (Vec<u64>, Vec<u64>) {
    let mut seen = Vec::new();
    let mut added = Vec::new();
    let mut cursor: Option<String> = None;
    for round in 0..50 {
        let page_path = match &cursor {
            None => path.to_owned(),
            Some(c) => format!("{path}&cursor={c}"),
        };
        let (status, page) = w.get(&page_path, token).await;
        assert_eq!(status, StatusCode::OK, "{page_path}: {page}");
        seen.extend(ids(&page));
        if round < inserts {
            let p = create_product(
                w,
                maker,
                product_body(manufacturer_id, &format!("SORTED-{round}")),
            )
            .await;
            added.push(p["id"].as_u64().expect("id"));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return (seen, added),
        }
    }
    panic!("{path} did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_lists_sort_newest_first_with_stable_cursors() {
    let w = world().await;
    let a = &w.a;
    let admin = &a.admin.token;
    let maker = &a.manufacturer_user.token;
    let mut world_ids = a.products.clone();
    world_ids.sort_unstable();

    // Newest first, in pages of 2; products added meanwhile do not disturb the walk (they are
    // newer than the first page, so a walk already under way does not meet them).
    let (seen, added) = walk_products(
        &w,
        admin,
        "/v1/products?sort=-id&limit=2",
        2,
        maker,
        a.manufacturer_id,
    )
    .await;
    let mut expected = world_ids.clone();
    expected.reverse();
    assert_eq!(seen, expected);
    assert_eq!(added.len(), 2);
    // A fresh walk sees them first; `sort=id` is the default order.
    let (_, newest) = w.get("/v1/products?sort=-id&limit=2", admin).await;
    assert_eq!(ids(&newest), vec![added[1], added[0]]);
    let (_, by_id) = w.get("/v1/products?sort=id&limit=500", admin).await;
    let (_, default) = w.get("/v1/products?limit=500", admin).await;
    assert_eq!(ids(&by_id), ids(&default));
    let mut reversed = ids(&by_id);
    reversed.reverse();
    let (_, desc) = w.get("/v1/products?sort=-id&limit=500", admin).await;
    assert_eq!(ids(&desc), reversed);

    // Filters combine with the order: a manufacturer's, a status, a category subtree, a SKU.
    let (_, of_maker) = w
        .get(
            &format!(
                "/v1/products?sort=-id&limit=3&manufacturer_id={}",
                a.manufacturer_id
            ),
            admin,
        )
        .await;
    assert_eq!(ids(&of_maker), reversed[..3].to_vec());
    let (seen, _) = walk_products(
        &w,
        &a.buyer.token,
        "/v1/products?sort=-id&limit=2&status=active",
        0,
        maker,
        a.manufacturer_id,
    )
    .await;
    assert_eq!(seen, expected, "buyers see the active ones, newest first");
    let (seen, _) = walk_products(
        &w,
        admin,
        &format!(
            "/v1/products?sort=-id&limit=2&category_id={}&include_descendants=true",
            a.category_id
        ),
        0,
        maker,
        a.manufacturer_id,
    )
    .await;
    assert_eq!(seen, expected);
    let (_, by_sku) = w
        .get("/v1/products?sort=-id&sku=SKU-1", &a.buyer.token)
        .await;
    assert_eq!(ids(&by_sku), [a.products[1]]);

    // Unknown sorts name `sort`; a cursor works only in the order it came from.
    for sort in ["name", "-created_at", "price", ""] {
        let got = w.get(&format!("/v1/products?sort={sort}"), admin).await;
        assert_eq!(
            assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
            "sort",
            "{sort}"
        );
    }
    let cursor = newest["next_cursor"].as_str().expect("cursor").to_owned();
    let got = w
        .get(&format!("/v1/products?sort=id&cursor={cursor}"), admin)
        .await;
    assert_eq!(
        assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "cursor"
    );
}
