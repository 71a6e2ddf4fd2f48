//! End-to-end tests of the parties API: manufacturers and their verification, customer groups
//! and their price lists, retailers and their credit, through HTTP against the real binary.

use crate::api_support::{World, assert_problem, base_price, send, world};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn eur(minor: i64) -> Value {
    json!({"minor": minor, "currency": "EUR"})
}

/// Walks a list with `limit` per page and returns every item's `id` (or `key`), asserting
/// that no page is larger than `limit` and that the cursor ends.
async fn walk(w: &World, path: &str, token: &str, limit: usize, key: &str) -> Vec<u64> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    let separator = if path.contains('?') { '&' } else { '?' };
    for _ in 0..1000 {
        let url = match &cursor {
            Some(c) => format!("{path}{separator}limit={limit}&cursor={c}"),
            None => format!("{path}{separator}limit={limit}"),
        };
        let (status, body) = w.get(&url, token).await;
        assert_eq!(status, StatusCode::OK, "{url}: {body}");
        let items = body["items"].as_array().expect("items");
        assert!(items.len() <= limit, "{url}: {body}");
        ids.extend(items.iter().map(|i| i[key].as_u64().expect("id")));
        match body.get("next_cursor").and_then(Value::as_str) {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
    panic!("{path}: the cursor never ended");
}

fn assert_field(got: &(StatusCode, Value), field: &str) {
    let body = assert_problem(got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(body["field"], field, "body: {body}");
}

/// GETs `path` twice, the second time with the first answer's ETag: 200 then 304.
async fn assert_etag_revalidates(w: &World, path: &str, token: &str) {
    let first = w.req(Method::GET, path, token).send().await.expect("send");
    assert_eq!(first.status(), StatusCode::OK, "{path}");
    assert_eq!(first.headers()[header::CACHE_CONTROL], "private, no-cache");
    let etag = first.headers()[header::ETAG].clone();
    let second = w
        .req(Method::GET, path, token)
        .header(header::IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(second.status(), StatusCode::NOT_MODIFIED, "{path}");
    assert_eq!(second.headers()[header::ETAG], etag);
    assert!(second.bytes().await.expect("body").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manufacturers_are_created_read_patched_and_verified() {
    let w = world().await;
    let (admin, buyer) = (&w.a.admin.token, &w.a.buyer.token);

    // Create: 201, unverified, Location.
    let response = w
        .req(Method::POST, "/v1/manufacturers", admin)
        .json(&json!({"name": "  Delta Fasteners  ", "country": "FR"}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()[header::LOCATION]
        .to_str()
        .expect("location")
        .to_owned();
    let created: Value = response.json().await.expect("json");
    let id = created["id"].as_u64().expect("id");
    assert_eq!(location, format!("/v1/manufacturers/{id}"));
    assert_eq!(created["name"], "Delta Fasteners");
    assert_eq!(created["country"], "FR");
    assert_eq!(created["verification"], "unverified");

    let (status, got) = w.get(&location, admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, created);
    assert_etag_revalidates(&w, &location, admin).await;
    let (status, got) = w.get(&format!("{location}?fields=id,name"), buyer).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, json!({"id": id, "name": "Delta Fasteners"}));

    // Invalid fields name the field.
    let path = "/v1/manufacturers";
    assert_field(&w.post(path, admin, json!({"country": "FR"})).await, "name");
    assert_field(
        &w.post(path, admin, json!({"name": 5, "country": "FR"}))
            .await,
        "name",
    );
    assert_field(
        &w.post(path, admin, json!({"name": "   ", "country": "FR"}))
            .await,
        "name",
    );
    assert_field(
        &w.post(path, admin, json!({"name": "X", "country": "fr"}))
            .await,
        "country",
    );
    assert_field(
        &w.post(
            path,
            admin,
            json!({"name": "X", "country": "FR", "vat": "1"}),
        )
        .await,
        "vat",
    );
    assert_field(
        &w.post(
            path,
            admin,
            json!({"name": "x".repeat(201), "country": "FR"}),
        )
        .await,
        "name",
    );

    // Only those who manage manufacturers create or edit them.
    for token in [buyer, &w.a.manufacturer_user.token, &w.a.reviewer.token] {
        let got = w
            .post(path, token, json!({"name": "Nope", "country": "FR"}))
            .await;
        assert_problem(&got, StatusCode::FORBIDDEN, "forbidden");
        let got = w.patch(&location, token, json!({"name": "Nope"})).await;
        assert_problem(&got, StatusCode::FORBIDDEN, "forbidden");
    }
    let got = w
        .anon(Method::GET, path)
        .send()
        .await
        .expect("send")
        .status();
    assert_eq!(got, StatusCode::UNAUTHORIZED);

    // PATCH keeps unspecified fields.
    let (status, patched) = w
        .patch(&location, admin, json!({"name": "Delta Fasteners SA"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Delta Fasteners SA");
    assert_eq!(patched["country"], "FR");
    assert_eq!(patched["verification"], "unverified");
    let (_, patched) = w.patch(&location, admin, json!({"country": "BE"})).await;
    assert_eq!(patched["name"], "Delta Fasteners SA");
    assert_eq!(patched["country"], "BE");
    let (_, patched) = w.patch(&location, admin, json!({})).await;
    assert_eq!(patched["name"], "Delta Fasteners SA");
    assert_field(
        &w.patch(&location, admin, json!({"name": null})).await,
        "name",
    );
    assert_field(
        &w.patch(&location, admin, json!({"country": "B"})).await,
        "country",
    );
    assert_field(&w.patch(&location, admin, json!({"id": 9})).await, "id");
    let (_, unchanged) = w.get(&location, admin).await;
    assert_eq!(unchanged["country"], "BE");

    // Unknown ids, and another tenant's, are 404.
    for missing in [999_999, w.b.manufacturer_id + 1000] {
        let got = w.get(&format!("/v1/manufacturers/{missing}"), admin).await;
        assert_problem(&got, StatusCode::NOT_FOUND, "not_found");
        let got = w
            .patch(
                &format!("/v1/manufacturers/{missing}"),
                admin,
                json!({"name": "Y"}),
            )
            .await;
        assert_problem(&got, StatusCode::NOT_FOUND, "not_found");
    }
    // `id` exists in tenant a only: tenant b's admin gets the same 404 as for a missing id.
    let foreign = w.get(&location, &w.b.admin.token).await;
    assert_problem(&foreign, StatusCode::NOT_FOUND, "not_found");
    let foreign = w
        .put(
            &format!("{location}/verification"),
            &w.b.admin.token,
            json!({"status": "verified"}),
        )
        .await;
    assert_problem(&foreign, StatusCode::NOT_FOUND, "not_found");

    // Verification: reviewers and admins, every status, unknown statuses refused.
    let verification = format!("{location}/verification");
    for (token, status) in [
        (&w.a.reviewer.token, "pending"),
        (admin, "verified"),
        (&w.a.reviewer.token, "suspended"),
        (&w.a.reviewer.token, "rejected"),
        (admin, "unverified"),
        (&w.a.reviewer.token, "verified"),
    ] {
        let (got, body) = w
            .put(
                &verification,
                token,
                json!({"status": status, "reason": "documents checked"}),
            )
            .await;
        assert_eq!(got, StatusCode::OK, "{body}");
        assert_eq!(body["verification"], status);
        let (_, read) = w.get(&location, admin).await;
        assert_eq!(read["verification"], status);
    }
    assert_field(
        &w.put(&verification, admin, json!({"status": "approved"}))
            .await,
        "status",
    );
    assert_field(&w.put(&verification, admin, json!({})).await, "status");
    assert_field(
        &w.put(
            &verification,
            admin,
            json!({"status": "verified", "reason": "x".repeat(1025)}),
        )
        .await,
        "reason",
    );
    for token in [buyer, &w.a.manufacturer_user.token, &w.a.approver.token] {
        let got = w
            .put(&verification, token, json!({"status": "pending"}))
            .await;
        assert_problem(&got, StatusCode::FORBIDDEN, "forbidden");
    }
    let got = w
        .put(
            "/v1/manufacturers/999999/verification",
            admin,
            json!({"status": "pending"}),
        )
        .await;
    assert_problem(&got, StatusCode::NOT_FOUND, "not_found");
    let (_, read) = w.get(&location, admin).await;
    assert_eq!(
        read["verification"], "verified",
        "refused changes left nothing behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manufacturer_lists_page_filter_and_scope() {
    let w = world().await;
    let admin = &w.a.admin.token;
    let mut want = BTreeSet::from([w.a.manufacturer_id, w.a.unverified_manufacturer_id]);
    for i in 0..9 {
        let (status, body) = w
            .post(
                "/v1/manufacturers",
                admin,
                json!({"name": format!("Maker {i}"), "country": "IT"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        want.insert(body["id"].as_u64().expect("id"));
    }
    for limit in [1, 4, 11, 500] {
        let ids = walk(&w, "/v1/manufacturers", admin, limit, "id").await;
        let unique: BTreeSet<u64> = ids.iter().copied().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "duplicates with limit {limit}: {ids:?}"
        );
        assert_eq!(unique, want, "limit {limit}");
        assert!(ids.windows(2).all(|p| p[0] < p[1]), "id order: {ids:?}");
    }

    // Buyers and reviewers read every manufacturer; lists are revalidated by ETag.
    let ids = walk(&w, "/v1/manufacturers", &w.a.buyer.token, 50, "id").await;
    assert_eq!(ids.len(), want.len());
    assert_etag_revalidates(&w, "/v1/manufacturers?limit=5", &w.a.reviewer.token).await;

    // `fields=` applies to each item.
    let (status, body) = w.get("/v1/manufacturers?limit=2&fields=id", admin).await;
    assert_eq!(status, StatusCode::OK);
    for item in body["items"].as_array().expect("items") {
        assert_eq!(item.as_object().expect("object").len(), 1, "{item}");
    }
    assert!(body["next_cursor"].is_string());

    // Filter by verification status, paged.
    let verified = walk(
        &w,
        "/v1/manufacturers?verification=verified",
        admin,
        1,
        "id",
    )
    .await;
    assert_eq!(verified, vec![w.a.manufacturer_id]);
    let unverified = walk(
        &w,
        "/v1/manufacturers?verification=unverified",
        admin,
        3,
        "id",
    )
    .await;
    assert_eq!(unverified.len(), want.len() - 1);
    assert!(!unverified.contains(&w.a.manufacturer_id));
    assert_field(
        &w.get("/v1/manufacturers?verification=approved", admin)
            .await,
        "verification",
    );

    // Bounds of the list parameters.
    assert_field(&w.get("/v1/manufacturers?limit=0", admin).await, "limit");
    assert_field(&w.get("/v1/manufacturers?limit=501", admin).await, "limit");
    assert_field(&w.get("/v1/manufacturers?cursor=zz", admin).await, "cursor");
    assert_field(
        &w.get("/v1/manufacturers?fields=a.b", admin).await,
        "fields",
    );

    // A manufacturer user sees its own manufacturer only.
    let maker = &w.a.manufacturer_user.token;
    let (status, body) = w.get("/v1/manufacturers", maker).await;
    assert_eq!(status, StatusCode::OK);
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{body}");
    assert_eq!(items[0]["id"], w.a.manufacturer_id);
    assert!(body.get("next_cursor").is_none());
    let own = w
        .get(&format!("/v1/manufacturers/{}", w.a.manufacturer_id), maker)
        .await;
    assert_eq!(own.0, StatusCode::OK);
    let other = w
        .get(
            &format!("/v1/manufacturers/{}", w.a.unverified_manufacturer_id),
            maker,
        )
        .await;
    assert_problem(&other, StatusCode::FORBIDDEN, "forbidden");

    // The other tenant sees only its own two.
    let ids = walk(&w, "/v1/manufacturers", &w.b.admin.token, 50, "id").await;
    assert_eq!(
        ids.iter().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([w.b.manufacturer_id, w.b.unverified_manufacturer_id])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_groups_and_their_price_lists() {
    let w = world().await;
    let admin = &w.a.admin.token;
    let (status, group) = w
        .post("/v1/customer-groups", admin, json!({"name": "Gold"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let gid = group["id"].as_u64().expect("id");
    assert_eq!(group["name"], "Gold");
    let path = format!("/v1/customer-groups/{gid}");
    let (status, read) = w.get(&path, admin).await;
    assert_eq!((status, &read), (StatusCode::OK, &group));
    assert_etag_revalidates(&w, &path, admin).await;

    // Rename; an empty PATCH keeps the name.
    let (status, renamed) = w.patch(&path, admin, json!({"name": "Platinum"})).await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "Platinum");
    let (_, same) = w.patch(&path, admin, json!({})).await;
    assert_eq!(same["name"], "Platinum");
    assert_field(&w.patch(&path, admin, json!({"name": ""})).await, "name");
    assert_field(
        &w.post("/v1/customer-groups", admin, json!({})).await,
        "name",
    );
    assert_field(
        &w.post(
            "/v1/customer-groups",
            admin,
            json!({"name": "A", "discount": 5}),
        )
        .await,
        "discount",
    );
    let got = w.get("/v1/customer-groups/999999", admin).await;
    assert_problem(&got, StatusCode::NOT_FOUND, "not_found");
    let got = w
        .patch("/v1/customer-groups/999999", admin, json!({"name": "X"}))
        .await;
    assert_problem(&got, StatusCode::NOT_FOUND, "not_found");

    // Buyers neither see nor make groups; manufacturer users and reviewers see them.
    for token in [&w.a.buyer.token, &w.a.approver.token] {
        assert_problem(
            &w.get("/v1/customer-groups", token).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        assert_problem(
            &w.get(&path, token).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        assert_problem(
            &w.get(&format!("{path}/prices"), token).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }
    for token in [
        &w.a.buyer.token,
        &w.a.manufacturer_user.token,
        &w.a.reviewer.token,
    ] {
        assert_problem(
            &w.post("/v1/customer-groups", token, json!({"name": "Mine"}))
                .await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }
    let (status, _) = w.get(&path, &w.a.manufacturer_user.token).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = w.get(&path, &w.a.reviewer.token).await;
    assert_eq!(status, StatusCode::OK);

    // Group list pagination.
    let mut want = BTreeSet::from([gid]);
    for i in 0..6 {
        let (_, g) = w
            .post(
                "/v1/customer-groups",
                admin,
                json!({"name": format!("Group {i}")}),
            )
            .await;
        want.insert(g["id"].as_u64().expect("id"));
    }
    let ids = walk(&w, "/v1/customer-groups", admin, 3, "id").await;
    assert_eq!(ids.len(), want.len(), "{ids:?}");
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), want);

    // Prices: set by an admin and by the products' manufacturer user.
    let products = &w.a.products;
    let price_path = |p: u64| format!("{path}/prices/{p}");
    for (i, &p) in products.iter().enumerate() {
        let token = if i % 2 == 0 {
            admin
        } else {
            &w.a.manufacturer_user.token
        };
        let unit = base_price(i) - 50;
        let (status, entry) = w
            .put(
                &price_path(p),
                token,
                json!({"unit_price": eur(unit), "tiers": [{"min_qty": 10, "unit_price": eur(unit - 100)}]}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{entry}");
        assert_eq!(entry["product_id"], p);
        assert_eq!(entry["unit_price"], eur(unit));
        assert_eq!(entry["tiers"][0]["min_qty"], 10);
        assert_eq!(entry["tiers"][0]["unit_price"], eur(unit - 100));
    }
    // Replacing an entry without tiers drops them.
    let (status, entry) = w
        .put(
            &price_path(products[0]),
            admin,
            json!({"unit_price": eur(777)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{entry}");
    assert_eq!(entry["tiers"], json!([]));
    let (status, read) = w.get(&price_path(products[0]), admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["unit_price"], eur(777));
    assert_etag_revalidates(&w, &price_path(products[0]), admin).await;

    // The price list, paged.
    let listed = walk(&w, &format!("{path}/prices"), admin, 2, "product_id").await;
    assert_eq!(&listed, products);
    let listed = walk(
        &w,
        &format!("{path}/prices"),
        &w.a.manufacturer_user.token,
        3,
        "product_id",
    )
    .await;
    assert_eq!(&listed, products, "the manufacturer's own products");
    assert_etag_revalidates(&w, &format!("{path}/prices"), &w.a.reviewer.token).await;

    // Refused prices name the field.
    let p0 = price_path(products[0]);
    assert_field(&w.put(&p0, admin, json!({})).await, "unit_price");
    assert_field(
        &w.put(
            &p0,
            admin,
            json!({"unit_price": {"minor": 100, "currency": "USD"}}),
        )
        .await,
        "unit_price",
    );
    assert_field(
        &w.put(
            &p0,
            admin,
            json!({"unit_price": {"minor": 100, "currency": "eur"}}),
        )
        .await,
        "unit_price.currency",
    );
    assert_field(
        &w.put(&p0, admin, json!({"unit_price": eur(-1)})).await,
        "unit_price",
    );
    assert_field(
        &w.put(&p0, admin, json!({"unit_price": 12.5})).await,
        "unit_price",
    );
    assert_field(
        &w.put(
            &p0,
            admin,
            json!({"unit_price": eur(1000), "tiers": [
                {"min_qty": 10, "unit_price": eur(900)},
                {"min_qty": 5, "unit_price": eur(800)},
            ]}),
        )
        .await,
        "tiers[1].min_qty",
    );
    assert_field(
        &w.put(
            &p0,
            admin,
            json!({"unit_price": eur(1000), "tiers": [{"min_qty": 10, "unit_price": eur(1100)}]}),
        )
        .await,
        "tiers[0].unit_price",
    );
    let (_, read) = w.get(&p0, admin).await;
    assert_eq!(
        read["unit_price"],
        eur(777),
        "refused writes changed nothing"
    );

    // Unknown group or product: 404; a buyer: 403.
    let got = w
        .put(
            "/v1/customer-groups/999999/prices/1",
            admin,
            json!({"unit_price": eur(1)}),
        )
        .await;
    assert_problem(&got, StatusCode::NOT_FOUND, "not_found");
    let got = w
        .put(&price_path(999_999), admin, json!({"unit_price": eur(1)}))
        .await;
    assert_problem(&got, StatusCode::NOT_FOUND, "not_found");
    assert_problem(
        &w.get("/v1/customer-groups/999999/prices", admin).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    for token in [&w.a.buyer.token, &w.a.reviewer.token] {
        let got = w.put(&p0, token, json!({"unit_price": eur(1)})).await;
        assert_problem(&got, StatusCode::FORBIDDEN, "forbidden");
        assert_problem(
            &w.delete(&p0, token).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }

    // Delete: 204, then the entry is gone (404 on read and on a second delete).
    let (status, _) = w.delete(&p0, admin).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_problem(&w.get(&p0, admin).await, StatusCode::NOT_FOUND, "not_found");
    assert_problem(
        &w.delete(&p0, admin).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (status, _) = w
        .delete(&price_path(products[1]), &w.a.manufacturer_user.token)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let listed = walk(&w, &format!("{path}/prices"), admin, 500, "product_id").await;
    assert_eq!(listed, products[2..].to_vec());

    // Another tenant does not see the group.
    assert_problem(
        &w.get(&path, &w.b.admin.token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retailers_terms_addresses_scope_and_credit() {
    let w = world().await;
    let admin = &w.a.admin.token;
    let (_, group) = w
        .post("/v1/customer-groups", admin, json!({"name": "Wholesale"}))
        .await;
    let gid = group["id"].as_u64().expect("group id");

    // Create with every field.
    let address = json!({
        "label": "Depot", "line1": "Industrieweg 4", "city": "Utrecht",
        "postal_code": "3542", "country": "NL"
    });
    let response = w
        .req(Method::POST, "/v1/retailers", admin)
        .json(&json!({
            "name": "Hoek Bouwmarkt",
            "customer_group_id": gid,
            "payment_terms": "net60",
            "credit_limit": eur(2_500_000),
            "approval_threshold": eur(100_000),
            "addresses": [address],
        }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()[header::LOCATION]
        .to_str()
        .expect("location")
        .to_owned();
    let retailer: Value = response.json().await.expect("json");
    let rid = retailer["id"].as_u64().expect("id");
    assert_eq!(location, format!("/v1/retailers/{rid}"));
    assert_eq!(retailer["customer_group_id"], gid);
    assert_eq!(retailer["payment_terms"], "net60");
    assert_eq!(retailer["credit_limit"], eur(2_500_000));
    assert_eq!(retailer["approval_threshold"], eur(100_000));
    assert_eq!(retailer["addresses"][0]["label"], "Depot");
    assert_eq!(retailer["addresses"][0]["line2"], Value::Null);
    let (status, read) = w.get(&location, admin).await;
    assert_eq!((status, &read), (StatusCode::OK, &retailer));
    assert_etag_revalidates(&w, &location, admin).await;

    // Defaults.
    let (status, minimal) = w
        .post("/v1/retailers", admin, json!({"name": "Minimal BV"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{minimal}");
    assert_eq!(minimal["payment_terms"], "prepaid");
    assert_eq!(minimal["credit_limit"], eur(0));
    assert_eq!(minimal["approval_threshold"], Value::Null);
    assert_eq!(minimal["customer_group_id"], Value::Null);
    assert_eq!(minimal["addresses"], json!([]));

    // Invalid fields name the field.
    let path = "/v1/retailers";
    let with = |extra: Value| {
        let mut body = json!({"name": "Bad"});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        body
    };
    assert_field(&w.post(path, admin, json!({})).await, "name");
    assert_field(
        &w.post(path, admin, with(json!({"payment_terms": "net45"})))
            .await,
        "payment_terms",
    );
    assert_field(
        &w.post(path, admin, with(json!({"credit_limit": eur(-1)})))
            .await,
        "credit_limit",
    );
    assert_field(
        &w.post(path, admin, with(json!({"credit_limit": 100})))
            .await,
        "credit_limit",
    );
    assert_field(
        &w.post(
            path,
            admin,
            with(json!({"credit_limit": {"minor": 5, "currency": "GBP"}})),
        )
        .await,
        "credit_limit",
    );
    assert_field(
        &w.post(
            path,
            admin,
            with(json!({"approval_threshold": {"minor": 5, "currency": "E"}})),
        )
        .await,
        "approval_threshold.currency",
    );
    assert_field(
        &w.post(path, admin, with(json!({"customer_group_id": 999_999})))
            .await,
        "customer_group_id",
    );
    let mut bad_country = address.clone();
    bad_country["country"] = json!("Netherlands");
    assert_field(
        &w.post(path, admin, with(json!({"addresses": [bad_country]})))
            .await,
        "addresses[0].country",
    );
    let mut no_city = address.clone();
    no_city["label"] = json!("Shop");
    no_city["city"] = json!(" ");
    assert_field(
        &w.post(path, admin, with(json!({"addresses": [address, no_city]})))
            .await,
        "addresses[1].city",
    );
    assert_field(
        &w.post(path, admin, with(json!({"addresses": [address, address]})))
            .await,
        "addresses[1].label",
    );
    assert_field(
        &w.post(path, admin, with(json!({"vat_id": "NL1"}))).await,
        "vat_id",
    );

    // PATCH keeps unspecified fields; null clears the optional ones.
    let (status, patched) = w
        .patch(&location, admin, json!({"payment_terms": "net15"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["payment_terms"], "net15");
    for kept in [
        "name",
        "customer_group_id",
        "credit_limit",
        "approval_threshold",
        "addresses",
    ] {
        assert_eq!(patched[kept], retailer[kept], "{kept}");
    }
    let (_, patched) = w
        .patch(
            &location,
            admin,
            json!({"approval_threshold": null, "customer_group_id": null, "credit_limit": eur(10)}),
        )
        .await;
    assert_eq!(patched["approval_threshold"], Value::Null);
    assert_eq!(patched["customer_group_id"], Value::Null);
    assert_eq!(patched["credit_limit"], eur(10));
    assert_eq!(patched["payment_terms"], "net15");
    assert_eq!(patched["addresses"], retailer["addresses"]);
    assert_field(
        &w.patch(&location, admin, json!({"name": null})).await,
        "name",
    );
    assert_field(
        &w.patch(&location, admin, json!({"payment_terms": "weekly"}))
            .await,
        "payment_terms",
    );
    assert_field(
        &w.patch(&location, admin, json!({"customer_group_id": 999_999}))
            .await,
        "customer_group_id",
    );
    let (_, read) = w.get(&location, admin).await;
    assert_eq!(read, patched, "refused patches changed nothing");
    let got = w
        .patch("/v1/retailers/999999", admin, json!({"name": "X"}))
        .await;
    assert_problem(&got, StatusCode::NOT_FOUND, "not_found");
    let got = w.get("/v1/retailers/999999", admin).await;
    assert_problem(&got, StatusCode::NOT_FOUND, "not_found");
    let got = w.get(&location, &w.b.admin.token).await;
    assert_problem(&got, StatusCode::NOT_FOUND, "not_found");

    // Group filter.
    let (_, back) = w
        .patch(&location, admin, json!({"customer_group_id": gid}))
        .await;
    assert_eq!(back["customer_group_id"], gid);
    let in_group = walk(
        &w,
        &format!("/v1/retailers?customer_group_id={gid}"),
        admin,
        10,
        "id",
    )
    .await;
    assert_eq!(in_group, vec![rid]);

    // Pagination over every retailer.
    let mut want = BTreeSet::from([w.a.retailer_id, rid, minimal["id"].as_u64().expect("id")]);
    for i in 0..5 {
        let (_, r) = w
            .post(path, admin, json!({"name": format!("Shop {i}")}))
            .await;
        want.insert(r["id"].as_u64().expect("id"));
    }
    let ids = walk(&w, path, admin, 3, "id").await;
    assert_eq!(ids.len(), want.len(), "{ids:?}");
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), want);

    // Scope: buyers see their own retailer only; manufacturer users and reviewers none.
    let own = w.a.retailer_id;
    for token in [&w.a.buyer.token, &w.a.approver.token] {
        let ids = walk(&w, path, token, 50, "id").await;
        assert_eq!(ids, vec![own]);
        let (status, r) = w.get(&format!("/v1/retailers/{own}"), token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(r["payment_terms"], "net30");
        assert_eq!(r["addresses"].as_array().expect("addresses").len(), 2);
        assert_problem(
            &w.get(&location, token).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        assert_problem(
            &w.get(&format!("{location}/credit"), token).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        assert_problem(
            &w.post(path, token, json!({"name": "Mine"})).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        assert_problem(
            &w.patch(
                &format!("/v1/retailers/{own}"),
                token,
                json!({"credit_limit": eur(1)}),
            )
            .await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }
    for token in [&w.a.manufacturer_user.token, &w.a.reviewer.token] {
        assert_problem(
            &w.get(path, token).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        assert_problem(
            &w.get(&location, token).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }

    // Credit: limit, nothing open, all of it available.
    let credit_path = format!("/v1/retailers/{own}/credit");
    for token in [admin, &w.a.buyer.token] {
        let (status, credit) = w.get(&credit_path, token).await;
        assert_eq!(status, StatusCode::OK, "{credit}");
        assert_eq!(credit["retailer_id"], own);
        assert_eq!(credit["credit_limit"], eur(100_000_000));
        assert_eq!(credit["open"], eur(0));
        assert_eq!(credit["overdue"], eur(0));
        assert_eq!(credit["available"], eur(100_000_000));
    }
    assert_etag_revalidates(&w, &credit_path, admin).await;
    let (_, credit) = w.get(&format!("{location}/credit"), admin).await;
    assert_eq!(credit["credit_limit"], eur(10));
    assert_eq!(credit["available"], eur(10));
    assert_problem(
        &w.get("/v1/retailers/999999/credit", admin).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_problem(
        &w.get(&credit_path, &w.a.manufacturer_user.token).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_are_not_json_objects_are_refused() {
    let w = world().await;
    let admin = &w.a.admin.token;
    let got = send(
        w.req(Method::POST, "/v1/manufacturers", admin)
            .header(header::CONTENT_TYPE, "application/json")
            .body("{not json"),
    )
    .await;
    assert!(got.0.is_client_error(), "{got:?}");
    assert_eq!(got.1["status"], got.0.as_u16());
    let got = w.post("/v1/retailers", admin, json!(["name"])).await;
    assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", got.1);
    let got = w
        .put(
            &format!("/v1/manufacturers/{}/verification", w.a.manufacturer_id),
            admin,
            json!("verified"),
        )
        .await;
    assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", got.1);
    let (_, m) = w
        .get(&format!("/v1/manufacturers/{}", w.a.manufacturer_id), admin)
        .await;
    assert_eq!(m["verification"], "verified");
}
