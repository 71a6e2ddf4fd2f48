//! `/v1/search` end to end through the real binary: typo tolerance, prefixes, filters, facets,
//! sorts, snippets, suggestions, vendor search rights, synonyms through the settings route,
//! tenant isolation, malformed queries, and rebuilds (online through `/v1/admin/reindex`,
//! offline with `mercato reindex`).

use crate::api_support::{TenantWorld, World, assert_problem, base_price, world};
use crate::api_verification::{form, upload};
use crate::support::{
    EXIT_TIMEOUT, SpawnOptions, assert_refused, mercato, run_to_exit, spawn_app_with,
};
use mercato_engine::verification::actions::DAY_MS;
use mercato_engine::verification::rules::DocumentType;
use mercato_engine::verification::samples;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// How long a test waits for the indexers to have what it wrote.
const INDEXED_WITHIN: Duration = Duration::from_secs(15);

/// Percent-encodes a query parameter value.
fn enc(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

async fn search(w: &World, token: &str, query: &str) -> (StatusCode, Value) {
    w.get(&format!("/v1/search/products?{query}"), token).await
}

/// Searches until `accept` holds for the body (the indexers follow the change log within a
/// refresh interval), and returns it.
async fn search_until(
    w: &World,
    token: &str,
    query: &str,
    accept: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + INDEXED_WITHIN;
    loop {
        let (status, body) = search(w, token, query).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if accept(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "`{query}` never gave the expected answer; last: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the world's five products of `t` are indexed.
async fn indexed(w: &World, t: &TenantWorld) {
    search_until(w, &t.buyer.token, "q=hammer", |b| b["total"] == 5).await;
}

fn skus(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["sku"].as_str().expect("sku").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn products_are_found_with_typos_prefixes_and_exact_skus() {
    let w = world().await;
    let a = &w.a;
    indexed(&w, a).await;
    let (status, body) = search(&w, &a.buyer.token, "q=hammer").await;
    assert_eq!(status, StatusCode::OK);
    let first = &body["items"][0];
    assert!(
        first["name"]
            .as_str()
            .unwrap()
            .starts_with("Claw hammer model")
    );
    assert_eq!(first["manufacturer"]["name"], "Acme Tools GmbH");
    assert_eq!(first["manufacturer"]["id"], a.manufacturer_id);
    assert_eq!(first["price"]["currency"], "EUR");
    assert_eq!(first["category_id"], a.subcategory_id);
    assert!(
        first["name_highlighted"]
            .as_str()
            .unwrap()
            .contains("<b>hammer</b>"),
        "{first}"
    );
    assert_eq!(body["currency"], "EUR");

    // One typo in a word of seven letters still matches; a prefix of the last word too.
    let (_, typo) = search(&w, &a.buyer.token, "q=hammmer").await;
    assert_eq!(typo["total"], 5, "{typo}");
    let (_, prefix) = search(&w, &a.buyer.token, "q=cla").await;
    assert_eq!(prefix["total"], 5, "{prefix}");
    let (_, words) = search(&w, &a.buyer.token, &format!("q={}", enc("forged claw"))).await;
    assert_eq!(words["total"], 5);
    assert!(
        words["items"][0]["snippet"]
            .as_str()
            .unwrap()
            .contains("<b>"),
        "{words}"
    );
    // An exact SKU ranks first.
    let (_, sku) = search(&w, &a.buyer.token, "q=SKU-3").await;
    assert_eq!(skus(&sku)[0], "SKU-3", "{sku}");
    // The manufacturer's name and the category path are searchable.
    let (_, by_maker) = search(&w, &a.buyer.token, "q=acme").await;
    assert_eq!(by_maker["total"], 5);
    let (_, by_path) = search(&w, &a.buyer.token, &format!("q={}", enc("hand tools"))).await;
    assert_eq!(by_path["total"], 5);
    let (_, nothing) = search(&w, &a.buyer.token, "q=xylophone").await;
    assert_eq!(nothing["total"], 0);
    assert_eq!(nothing["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_facets_sorts_and_paging() {
    let w = world().await;
    let a = &w.a;
    indexed(&w, a).await;
    let token = &a.buyer.token;
    let total = |body: &Value| body["total"].as_u64().unwrap();

    let (_, root) = search(&w, token, &format!("category_id={}", a.category_id)).await;
    assert_eq!(total(&root), 5, "descendants of the root category count");
    let (_, other) = search(&w, token, "category_id=999999").await;
    assert_eq!(total(&other), 0);
    let (_, maker) = search(&w, token, &format!("manufacturer_id={}", a.manufacturer_id)).await;
    assert_eq!(total(&maker), 5);
    let (_, unverified) = search(
        &w,
        token,
        &format!("manufacturer_id={}", a.unverified_manufacturer_id),
    )
    .await;
    assert_eq!(total(&unverified), 0);
    let range = format!("price_min={}&price_max={}", base_price(2), base_price(3));
    let (_, priced) = search(&w, token, &range).await;
    let mut in_range = skus(&priced);
    in_range.sort();
    assert_eq!(in_range, vec!["SKU-2", "SKU-3"]);
    let (_, stocked) = search(&w, token, "q=hammer&in_stock=true").await;
    assert_eq!(total(&stocked), 5);
    let (_, unstocked) = search(&w, token, "q=hammer&in_stock=false").await;
    assert_eq!(total(&unstocked), 0);
    let (_, steel) = search(&w, token, &format!("attr={}", enc("material:steel"))).await;
    assert_eq!(total(&steel), 5);
    let (_, wood) = search(&w, token, &format!("attr={}", enc("material:wood"))).await;
    assert_eq!(total(&wood), 0);

    let (_, faceted) = search(&w, token, "q=hammer&facets=true&price_bands=1100,1300").await;
    let facets = &faceted["facets"];
    let count_of = |list: &Value, id: u64| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .map(|f| f["count"].as_u64().unwrap())
    };
    assert_eq!(count_of(&facets["categories"], a.category_id), Some(5));
    assert_eq!(count_of(&facets["categories"], a.subcategory_id), Some(5));
    assert_eq!(
        facets["manufacturers"],
        json!([{"id": a.manufacturer_id, "count": 5}])
    );
    let bands: Vec<(Value, Value, u64)> = facets["price_bands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["from"].clone(),
                b["to"].clone(),
                b["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        bands,
        vec![
            (Value::Null, json!(1100), 1),
            (json!(1100), json!(1300), 2),
            (json!(1300), Value::Null, 2),
        ],
        "{facets}"
    );
    let (_, unfaceted) = search(&w, token, "q=hammer").await;
    assert!(unfaceted.get("facets").is_none());

    let (_, asc) = search(&w, token, "q=hammer&sort=price_asc").await;
    assert_eq!(
        skus(&asc),
        vec!["SKU-0", "SKU-1", "SKU-2", "SKU-3", "SKU-4"]
    );
    let (_, desc) = search(&w, token, "q=hammer&sort=price_desc").await;
    assert_eq!(
        skus(&desc),
        vec!["SKU-4", "SKU-3", "SKU-2", "SKU-1", "SKU-0"]
    );
    // The world's products may share a creation millisecond: only the count is certain here
    // (the engine's tests check the order).
    let (_, newest) = search(&w, token, "sort=newest").await;
    assert_eq!(total(&newest), 5);
    let (_, selling) = search(&w, token, "q=hammer&sort=best_selling").await;
    assert_eq!(total(&selling), 5);

    let (_, page) = search(&w, token, "q=hammer&sort=price_asc&offset=2&limit=2").await;
    assert_eq!(skus(&page), vec!["SKU-2", "SKU-3"]);
    assert_eq!(
        (page["total"].clone(), page["offset"].clone()),
        (json!(5), json!(2))
    );

    // Manufacturer users and reviewers search too; so does every other role of the tenant.
    for t in [
        &a.manufacturer_user.token,
        &a.reviewer.token,
        &a.admin.token,
    ] {
        let (status, body) = search(&w, t, "q=hammer").await;
        assert_eq!((status, total(&body)), (StatusCode::OK, 5));
    }
    let (status, _) = send_anonymous(&w, "/v1/search/products?q=hammer").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn send_anonymous(w: &World, path: &str) -> (StatusCode, Value) {
    crate::api_support::send(w.anon(reqwest::Method::GET, path)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suggestions_complete_what_was_typed() {
    let w = world().await;
    let a = &w.a;
    indexed(&w, a).await;
    let (status, body) = w.get("/v1/search/suggest?q=cla", &a.buyer.token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let suggestions = body["suggestions"].as_array().unwrap();
    assert!(!suggestions.is_empty(), "{body}");
    assert!(suggestions.len() <= 5);
    assert!(
        suggestions
            .iter()
            .all(|s| s.as_str().unwrap().to_lowercase().starts_with("cla")),
        "{body}"
    );
    let (_, none) = w.get("/v1/search/suggest?q=zzq", &a.buyer.token).await;
    assert_eq!(none["suggestions"], json!([]));
    let bad = w
        .get("/v1/search/suggest?q=cla&limit=11", &a.buyer.token)
        .await;
    assert_eq!(
        assert_problem(&bad, StatusCode::BAD_REQUEST, "bad_request")["field"],
        "limit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_search_is_for_reviewers_and_admins_only() {
    let w = world().await;
    let a = &w.a;
    indexed(&w, a).await;
    for token in [
        &a.buyer.token,
        &a.approver.token,
        &a.manufacturer_user.token,
    ] {
        let refused = w.get("/v1/search/vendors?q=borealis", token).await;
        assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");
    }
    for token in [&a.reviewer.token, &a.admin.token] {
        let (status, body) = w.get("/v1/search/vendors?q=borealis", token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["total"], 1);
        let hit = &body["items"][0];
        assert_eq!(hit["id"], a.unverified_manufacturer_id);
        assert_eq!(hit["name"], "Borealis Paints BV");
        assert_eq!(hit["country"], "NL");
        assert_eq!(hit["verification"], "unverified");
    }
    let (_, verified) = w.get("/v1/search/vendors?q=acme", &a.reviewer.token).await;
    assert_eq!(verified["items"][0]["verification"], "verified");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synonyms_and_stop_words_through_the_settings_route() {
    let w = world().await;
    let a = &w.a;
    indexed(&w, a).await;
    let (_, before) = search(&w, &a.buyer.token, "q=mallet").await;
    assert_eq!(before["total"], 0);
    let (status, settings) = w.get("/v1/search/settings", &a.buyer.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(settings, json!({"synonyms": [], "stop_words": []}));

    let body = json!({"synonyms": [["Mallet", "hammer"]], "stop_words": ["The", "for"]});
    let refused = w
        .put("/v1/search/settings", &a.buyer.token, body.clone())
        .await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");
    let (status, stored) = w.put("/v1/search/settings", &a.admin.token, body).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(
        stored,
        json!({"synonyms": [["mallet", "hammer"]], "stop_words": ["the", "for"]})
    );
    let (_, read) = w.get("/v1/search/settings", &a.buyer.token).await;
    assert_eq!(read, stored);
    // Applied to the next query, without re-indexing.
    let (_, after) = search(&w, &a.buyer.token, "q=mallet").await;
    assert_eq!(after["total"], 5, "{after}");
    let (_, stopped) = search(&w, &a.buyer.token, &format!("q={}", enc("the hammer"))).await;
    assert_eq!(stopped["total"], 5, "{stopped}");
    // The other tenant's vocabulary is its own.
    let (_, other) = search(&w, &w.b.buyer.token, "q=mallet").await;
    assert_eq!(other["total"], 0);

    let lonely = w
        .put(
            "/v1/search/settings",
            &a.admin.token,
            json!({"synonyms": [["mallet"]], "stop_words": []}),
        )
        .await;
    assert_eq!(
        assert_problem(&lonely, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "synonyms[0]"
    );
    let too_many: Vec<String> = (0..257).map(|i| format!("w{i}")).collect();
    let many = w
        .put(
            "/v1/search/settings",
            &a.admin.token,
            json!({"stop_words": too_many}),
        )
        .await;
    assert_eq!(
        assert_problem(&many, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "stop_words"
    );
    let unknown = w
        .put(
            "/v1/search/settings",
            &a.admin.token,
            json!({"synonym": []}),
        )
        .await;
    assert_eq!(unknown.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", unknown.1);
    let huge = "x".repeat(600 << 10);
    let oversized = crate::api_support::send(
        w.req(reqwest::Method::PUT, "/v1/search/settings", &a.admin.token)
            .header("content-type", "application/json")
            .body(format!("{{\"stop_words\": [\"{huge}\"]}}")),
    )
    .await;
    assert_problem(
        &oversized,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_never_finds_another_tenants_products() {
    let w = world().await;
    let (a, b) = (&w.a, &w.b);
    indexed(&w, a).await;
    indexed(&w, b).await;
    // Both tenants hold "Claw hammer model 0..4": each finds its five, not ten.
    let (_, mine) = search(&w, &a.buyer.token, "q=hammer&facets=true").await;
    assert_eq!(mine["total"], 5);
    assert_eq!(
        mine["facets"]["manufacturers"],
        json!([{"id": a.manufacturer_id, "count": 5}])
    );

    // A product only tenant B has, written through the API: B finds it within the refresh
    // interval, A never does (hits, facets, suggestions).
    let (status, created) = w
        .post(
            "/v1/products",
            &b.admin.token,
            json!({
                "manufacturer_id": b.manufacturer_id,
                "sku": "GLZ-1",
                "name": "Glazing putty knife",
                "description": "Flexible blade",
                "category_id": b.subcategory_id,
                "base_price": {"minor": 450},
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_u64().unwrap();
    let (status, body) = w
        .put(
            &format!("/v1/products/{id}/status"),
            &b.admin.token,
            json!({"status": "active"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let published = Instant::now();
    let found = search_until(&w, &b.buyer.token, "q=glazing", |body| body["total"] == 1).await;
    assert!(
        published.elapsed() < Duration::from_secs(5),
        "{:?}",
        published.elapsed()
    );
    assert_eq!(found["items"][0]["sku"], "GLZ-1");
    for query in ["q=glazing", "q=putty", "q=GLZ-1", "q=knife"] {
        let (_, theirs) = search(&w, &a.buyer.token, query).await;
        assert_eq!(theirs["total"], 0, "{query}: {theirs}");
    }
    let (_, everything) = search(&w, &a.admin.token, "facets=true&limit=100").await;
    assert_eq!(everything["total"], 5);
    let (_, suggestions) = w.get("/v1/search/suggest?q=gla", &a.buyer.token).await;
    assert_eq!(suggestions["suggestions"], json!([]));

    // Archiving removes it from B's results too.
    let (status, _) = w
        .put(
            &format!("/v1/products/{id}/status"),
            &b.admin.token,
            json!({"status": "archived"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    search_until(&w, &b.buyer.token, "q=glazing", |body| body["total"] == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_queries_are_plain_text_or_4xx_never_500() {
    let w = world().await;
    let a = &w.a;
    indexed(&w, a).await;
    let token = &a.buyer.token;
    for text in [
        "\"unbalanced",
        "claw AND (hammer OR",
        "hammer\u{0}\u{7}",
        "🔨 ħàmmér ✓",
        "*:* -foo +bar ~2 ^3",
        "\u{202e}reversed\u{200b}",
        "a b c d e f g h i j k l m n o p",
    ] {
        let (status, body) = search(&w, token, &format!("q={}", enc(text))).await;
        assert!(
            status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
            "{text:?}: {status} {body}"
        );
        if status != StatusCode::OK {
            assert_eq!(body["field"], "q", "{body}");
        }
    }
    let long = search(&w, token, &format!("q={}", "x".repeat(600))).await;
    assert_eq!(
        assert_problem(&long, StatusCode::BAD_REQUEST, "bad_request")["field"],
        "q"
    );
    let many_words = (0..40)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let (status, body) = search(&w, token, &format!("q={}", enc(&many_words))).await;
    assert!(
        status == StatusCode::OK || (status == StatusCode::BAD_REQUEST && body["field"] == "q"),
        "{status} {body}"
    );
    for (query, field) in [
        ("q=hammer&limit=101", "limit"),
        ("q=hammer&limit=0", "limit"),
        ("q=hammer&offset=9999&limit=2", "offset"),
        ("q=hammer&sort=cheapest", "sort"),
        ("q=hammer&price_min=abc", "price_min"),
        ("q=hammer&price_min=500&price_max=100", "price_min"),
        ("q=hammer&in_stock=maybe", "in_stock"),
        ("q=hammer&attr=material", "attr"),
        ("q=hammer&manufacturer_id=x", "manufacturer_id"),
        ("q=hammer&price_bands=300,200", "price_bands"),
        ("q=a&q=b", "q"),
    ] {
        let got = search(&w, token, query).await;
        assert_eq!(
            assert_problem(&got, StatusCode::BAD_REQUEST, "bad_request")["field"],
            field,
            "{query}"
        );
    }
    // A broken percent-escape is kept as plain text.
    let broken = search(&w, token, "q=%ZZ").await;
    assert_eq!(broken.0, StatusCode::OK, "{broken:?}");
    let vendors = w
        .get(
            &format!("/v1/search/vendors?q={}", "y".repeat(600)),
            &a.admin.token,
        )
        .await;
    assert_eq!(
        assert_problem(&vendors, StatusCode::BAD_REQUEST, "bad_request")["field"],
        "q"
    );
    for (query, field) in [("limit=0", "limit"), ("offset=9990&limit=20", "offset")] {
        let got = w
            .get(
                &format!("/v1/search/vendors?q=acme&{query}"),
                &a.admin.token,
            )
            .await;
        assert_eq!(
            assert_problem(&got, StatusCode::BAD_REQUEST, "bad_request")["field"],
            field,
            "{query}"
        );
    }
    let suggest = w
        .get(&format!("/v1/search/suggest?q={}", "z".repeat(600)), token)
        .await;
    assert_eq!(
        assert_problem(&suggest, StatusCode::BAD_REQUEST, "bad_request")["field"],
        "q"
    );
}

/// Polls `/v1/admin/search` until every shard has completed `rebuilds` rebuilds.
async fn rebuilds_done(w: &World, rebuilds: u64) -> Value {
    let deadline = Instant::now() + INDEXED_WITHIN;
    loop {
        let (status, body) = w.get("/v1/admin/search", &w.platform_token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let shards = body["shards"].as_array().unwrap();
        if !shards.is_empty()
            && shards
                .iter()
                .all(|s| s["rebuilds_completed"] == rebuilds && s["rebuilding"] == false)
        {
            return body;
        }
        assert!(Instant::now() < deadline, "rebuilds did not finish: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_online_swaps_in_a_new_generation_while_search_answers() {
    let w = world().await;
    let a = &w.a;
    indexed(&w, a).await;
    let refused = w.post("/v1/admin/reindex", &a.admin.token, json!({})).await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");
    let missing = w
        .post("/v1/admin/reindex?shard=999", &w.platform_token, json!({}))
        .await;
    assert_problem(&missing, StatusCode::NOT_FOUND, "not_found");

    let (status, before) = w.get("/v1/admin/search", &w.platform_token).await;
    assert_eq!(status, StatusCode::OK);
    let shard_count = before["shards"].as_array().unwrap().len();
    assert!(shard_count >= 1);
    assert!(
        before["shards"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["generation"] == 1)
    );

    let (status, started) = w
        .post("/v1/admin/reindex", &w.platform_token, json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    assert_eq!(started["shards"].as_array().unwrap().len(), shard_count);
    // Search answers throughout.
    let (status, during) = search(&w, &a.buyer.token, "q=hammer").await;
    assert_eq!(
        (status, during["total"].clone()),
        (StatusCode::OK, json!(5))
    );
    let after = rebuilds_done(&w, 1).await;
    assert!(
        after["shards"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["generation"] == 2),
        "{after}"
    );
    let (_, again) = search(&w, &a.buyer.token, "q=hammer&facets=true").await;
    assert_eq!(again["total"], 5);
    let (_, other) = search(&w, &w.b.buyer.token, "q=hammer").await;
    assert_eq!(other["total"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mercato_reindex_rebuilds_offline_and_is_refused_while_a_server_runs() {
    let mut w = world().await;
    indexed(&w, &w.a).await;
    let data_dir = w.app.data_dir.clone();
    let mut running = mercato();
    running.arg("reindex").arg("--data-dir").arg(&data_dir);
    assert_refused(&run_to_exit(running), "is in use by another process");

    w.app.signal("TERM");
    assert!(w.app.wait_exit(EXIT_TIMEOUT).success());
    let mut bad_shard = mercato();
    bad_shard
        .args(["reindex", "--shard", "999", "--data-dir"])
        .arg(&data_dir);
    assert_refused(&run_to_exit(bad_shard), "--shard");

    let mut reindex = mercato();
    reindex.arg("reindex").arg("--data-dir").arg(&data_dir);
    let finished = run_to_exit(reindex);
    assert!(finished.status.success(), "stderr:\n{}", finished.stderr);
    let shard_of_a = finished
        .stdout
        .lines()
        .filter(|line| line.starts_with("shard "))
        .collect::<Vec<_>>();
    assert!(!shard_of_a.is_empty(), "stdout:\n{}", finished.stdout);
    let products: u64 = shard_of_a
        .iter()
        .filter_map(|line| {
            let (_, rest) = line.split_once(" tenants, ")?;
            rest.split_once(' ')?.0.parse::<u64>().ok()
        })
        .sum();
    assert_eq!(products, 10, "both tenants' products:\n{}", finished.stdout);
    let index_dir = data_dir.join("index");
    for entry in std::fs::read_dir(&index_dir).unwrap() {
        let shard_dir = entry.unwrap().path();
        let current = std::fs::read_to_string(shard_dir.join("CURRENT")).unwrap();
        assert_eq!(current.trim(), "gen-00000002", "{}", shard_dir.display());
        assert!(!shard_dir.join("gen-00000001").exists());
    }

    w.app = spawn_app_with(SpawnOptions {
        data_dir: Some(data_dir),
        ..SpawnOptions::default()
    });
    w.client = w.app.client();
    let (_, status) = w.get("/v1/admin/search", &w.platform_token).await;
    assert!(
        status["shards"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["generation"] == 2),
        "{status}"
    );
    let (code, body) = search(&w, &w.a.buyer.token, "q=hammer").await;
    assert_eq!((code, body["total"].clone()), (StatusCode::OK, json!(5)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_in_review_finds_its_vendor_for_reviewers_only() {
    let w = world().await;
    let a = &w.a;
    indexed(&w, a).await;
    let today = (mercato_engine::now_ms() / DAY_MS) as i64;
    let spec = samples::sample_spec(
        77,
        DocumentType::BusinessRegistration,
        "Acme Tools GmbH",
        *b"NL",
        today,
    );
    let number = spec.registration_number.clone();
    let path = format!("/v1/search/vendors?q={}", enc(&number));
    let (status, before) = w.get(&path, &a.reviewer.token).await;
    assert_eq!(
        (status, before["total"].clone()),
        (StatusCode::OK, json!(0))
    );

    // Documents of type `other` always wait for a reviewer.
    let (status, uploaded) = upload(
        &w,
        &a.manufacturer_user.token,
        a.manufacturer_id,
        form("other", "registration.pdf", &samples::pdf(&spec)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{uploaded}");
    let document_id = uploaded["id"].as_u64().expect("document id");
    let deadline = Instant::now() + INDEXED_WITHIN;
    loop {
        let (status, document) = w
            .get(
                &format!("/v1/documents/{document_id}"),
                &a.manufacturer_user.token,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{document}");
        if document["status"] != "processing" {
            assert_eq!(document["status"], "in_review", "{document}");
            break;
        }
        assert!(Instant::now() < deadline, "not decided: {document}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let deadline = Instant::now() + INDEXED_WITHIN;
    let found = loop {
        let (status, body) = w.get(&path, &a.reviewer.token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["total"] == 1 {
            break body;
        }
        assert!(Instant::now() < deadline, "vendor never found: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let hit = &found["items"][0];
    assert_eq!(hit["id"], a.manufacturer_id, "{found}");
    assert_eq!(
        hit["documents"],
        json!([{"id": document_id, "status": "in_review"}]),
        "{found}"
    );
    // A vendor without documents lists none.
    let (_, other) = w.get("/v1/search/vendors?q=borealis", &a.admin.token).await;
    assert_eq!(other["items"][0]["documents"], json!([]), "{other}");
    // A buyer may not search vendors.
    let refused = w.get(&path, &a.buyer.token).await;
    assert_problem(&refused, StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_acknowledged_before_kill_9_is_searchable_after_the_restart() {
    let mut w = world().await;
    indexed(&w, &w.a).await;
    let data_dir = w.app.data_dir.clone();
    w.app.signal("TERM");
    assert!(w.app.wait_exit(EXIT_TIMEOUT).success());
    // The longest refresh interval: after its start-up catch-up the indexer does not look at
    // the change log again for 10 s, so what is written now is in storage and not in the
    // index when the process dies.
    w.app = spawn_app_with(SpawnOptions {
        data_dir: Some(data_dir.clone()),
        env: vec![(
            "MERCATO_SEARCH_REFRESH_INTERVAL_MS".to_owned(),
            "10000".to_owned(),
        )],
        ..SpawnOptions::default()
    });
    w.client = w.app.client();
    let admin = w.a.admin.token.clone();
    let (status, product) = w
        .post(
            "/v1/products",
            &admin,
            json!({
                "manufacturer_id": w.a.manufacturer_id,
                "sku": "CRASH-1",
                "name": "Titanium pry bar",
                "description": "Written just before the crash",
                "base_price": {"minor": 4_200},
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{product}");
    let (status, active) = w
        .put(
            &format!("/v1/products/{}/status", product["id"]),
            &admin,
            json!({"status": "active"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{active}");
    let (status, before) = search(&w, &w.a.buyer.token, "q=titanium").await;
    assert_eq!(
        (status, before["total"].clone()),
        (StatusCode::OK, json!(0)),
        "not indexed yet when the process dies: {before}"
    );
    w.app.signal("KILL");
    w.app.wait_exit(EXIT_TIMEOUT);

    // Restarted with the default refresh interval: the indexer resumes from the LSN of its
    // last commit, which is before the product's entries.
    w.app = spawn_app_with(SpawnOptions {
        data_dir: Some(data_dir),
        ..SpawnOptions::default()
    });
    w.client = w.app.client();
    let found = search_until(&w, &w.a.buyer.token, "q=titanium", |b| b["total"] == 1).await;
    assert_eq!(found["items"][0]["sku"], "CRASH-1", "{found}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mercato_reindex_url_rebuilds_a_running_server_and_follows_it_to_the_swap() {
    let w = world().await;
    indexed(&w, &w.a).await;
    let (_, before) = w.get("/v1/admin/search", &w.platform_token).await;
    let shards = before["shards"].as_array().expect("shards").clone();
    assert!(!shards.is_empty(), "{before}");
    assert!(shards.iter().all(|s| s["generation"] == 1), "{before}");
    assert!(
        shards.iter().all(|s| s.get("rebuild_progress").is_none()),
        "{before}"
    );

    let online = |token: String| {
        let url = w.app.url.clone();
        tokio::task::spawn_blocking(move || {
            let mut command = mercato();
            command.args(["reindex", "--url", &url, "--token", &token]);
            run_to_exit(command)
        })
    };
    // Only the platform token may ask.
    let refused = online(w.a.admin.token.clone()).await.expect("join");
    assert_refused(&refused, "403");

    let finished = online(w.platform_token.clone()).await.expect("join");
    assert!(finished.status.success(), "stderr:\n{}", finished.stderr);
    let swapped: Vec<&str> = finished
        .stdout
        .lines()
        .filter(|line| line.contains("generation 2 swapped in"))
        .collect();
    assert_eq!(swapped.len(), shards.len(), "stdout:\n{}", finished.stdout);

    // The swap happened before the command returned; the status keeps the last progress.
    let (_, after) = w.get("/v1/admin/search", &w.platform_token).await;
    let after_shards = after["shards"].as_array().expect("shards");
    let mut products = 0;
    for shard in after_shards {
        assert_eq!(shard["generation"], 2, "{after}");
        assert_eq!(shard["rebuilds_completed"], 1, "{after}");
        assert_eq!(shard["rebuilding"], false, "{after}");
        let progress = &shard["rebuild_progress"];
        assert_eq!(
            progress["tenants_done"], progress["tenants_total"],
            "{after}"
        );
        products += progress["products_indexed"].as_u64().expect("products");
    }
    assert_eq!(products, 10, "both tenants' products: {after}");
    let (status, body) = search(&w, &w.a.buyer.token, "q=hammer").await;
    assert_eq!((status, body["total"].clone()), (StatusCode::OK, json!(5)));
}
