//! End-to-end tests of the platform administration API: `/v1/admin/tenants` with the platform
//! token.

use crate::api_support::{PASSWORD, assert_problem, send, status_and_json, world};
use reqwest::header::LOCATION;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn new_tenant(slug: &str) -> Value {
    json!({
        "slug": slug,
        "name": "Initech Supply",
        "admin_email": "Boss@Initech.Example",
        "admin_password": PASSWORD,
        "admin_display_name": "Bill L.",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_creates_lists_and_reads_tenants() {
    let w = world().await;
    let platform = &w.platform_token;

    let response = w
        .req(Method::POST, "/v1/admin/tenants", platform)
        .json(&new_tenant("initech"))
        .send()
        .await
        .expect("send");
    let location = response.headers().get(LOCATION).cloned();
    let (status, created) = status_and_json(response).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["tenant"]["id"].as_u64().expect("id");
    assert_eq!(
        location.expect("Location").to_str().expect("ascii"),
        format!("/v1/admin/tenants/{id}")
    );
    assert_eq!(created["tenant"]["slug"], "initech");
    assert_eq!(created["tenant"]["status"], "active");
    assert_eq!(created["tenant"]["admin_email"], "boss@initech.example");
    assert_eq!(created["admin"]["role"], json!({"kind": "tenant_admin"}));
    assert_eq!(created["admin"]["display_name"], "Bill L.");
    assert_eq!(created["resumed"], false);
    assert_eq!(
        created["tenant"]["admin_user_id"], created["admin"]["id"],
        "{created}"
    );

    // The new tenant's admin signs in with the slug and finds an empty tenant of their own.
    let (status, session) = send(w.anon(Method::POST, "/v1/auth/login").json(&json!({
        "tenant": "initech", "email": "boss@initech.example", "password": PASSWORD,
    })))
    .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let admin = session["token"].as_str().expect("token").to_owned();
    assert_eq!(session["principal"]["tenant_id"], id);
    let (_, tenant) = w.get("/v1/tenant", &admin).await;
    assert_eq!(tenant["name"], "Initech Supply");
    let (_, users) = w.get("/v1/users", &admin).await;
    assert_eq!(
        users["items"].as_array().expect("items").len(),
        1,
        "{users}"
    );
    let (_, audit) = w.get("/v1/audit?action=tenant.create", &admin).await;
    assert_eq!(audit["items"][0]["actor"], "platform", "{audit}");

    // Rejections name their field; a taken slug is a conflict.
    let got = w
        .post("/v1/admin/tenants", platform, new_tenant("INITECH"))
        .await;
    assert_problem(&got, StatusCode::CONFLICT, "tenant_slug_taken");
    for (change, field) in [
        (json!({"slug": "a"}), "slug"),
        (json!({"slug": "bad slug!"}), "slug"),
        (json!({"name": "  "}), "name"),
        (json!({"admin_email": "nobody"}), "admin_email"),
        (json!({"admin_password": "short"}), "admin_password"),
        (json!({"admin_display_name": ""}), "admin_display_name"),
    ] {
        let mut body = new_tenant("umbrella");
        for (key, value) in change.as_object().expect("object") {
            body[key] = value.clone();
        }
        let got = w.post("/v1/admin/tenants", platform, body).await;
        assert_eq!(
            assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
            field,
            "{change}"
        );
    }

    // List: acme, globex and initech, by id, across pages.
    let (status, all) = w.get("/v1/admin/tenants", platform).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let slugs: Vec<&str> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|t| t["slug"].as_str().expect("slug"))
        .collect();
    assert_eq!(slugs, ["acme", "globex", "initech"]);
    let (_, first) = w.get("/v1/admin/tenants?limit=2", platform).await;
    let cursor = first["next_cursor"].as_str().expect("cursor");
    let (_, rest) = w
        .get(
            &format!("/v1/admin/tenants?limit=2&cursor={cursor}"),
            platform,
        )
        .await;
    assert_eq!(rest["items"][0]["slug"], "initech");
    assert!(rest["next_cursor"].is_null(), "{rest}");

    // Read one.
    let (status, one) = w.get(&format!("/v1/admin/tenants/{id}"), platform).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one, all["items"][2]);
    let (status, acme) = w
        .get(&format!("/v1/admin/tenants/{}", w.a.tenant_id), platform)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(acme["slug"], "acme");
    assert_problem(
        &w.get("/v1/admin/tenants/999999", platform).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_problem(
        &w.get("/v1/admin/tenants/0", platform).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_need_the_platform_token() {
    let w = world().await;
    let id = w.a.tenant_id;
    let routes = [
        (Method::GET, "/v1/admin/tenants".to_owned()),
        (Method::POST, "/v1/admin/tenants".to_owned()),
        (Method::GET, format!("/v1/admin/tenants/{id}")),
    ];
    for (method, path) in &routes {
        // No credential, or a malformed one: 401.
        let body = new_tenant("sneaky");
        let got = send(w.anon(method.clone(), path).json(&body)).await;
        assert_problem(&got, StatusCode::UNAUTHORIZED, "unauthenticated");
        let got = send(w.req(method.clone(), path, "mcp_not-a-token").json(&body)).await;
        assert_problem(&got, StatusCode::UNAUTHORIZED, "unauthenticated");
        // Any tenant credential, even a tenant admin's: 403.
        for token in [&w.a.admin.token, &w.a.buyer.token, &w.b.admin.token] {
            let got = send(w.req(method.clone(), path, token).json(&body)).await;
            assert_problem(&got, StatusCode::FORBIDDEN, "forbidden");
        }
    }
    // Nothing was created by the refused requests.
    let (_, all) = w.get("/v1/admin/tenants", &w.platform_token).await;
    assert_eq!(all["items"].as_array().expect("items").len(), 2, "{all}");
    // The platform token is not a tenant credential.
    assert_problem(
        &w.get("/v1/users", &w.platform_token).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
}
