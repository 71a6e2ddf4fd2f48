//! End-to-end tests of the accounts API: sign-in and its guard, users, passwords, sessions, API
//! keys, the tenant's profile and settings, and the audit log.

use crate::api_support::{PASSWORD, World, assert_problem, send, status_and_json, world};
use reqwest::header::{ETAG, IF_NONE_MATCH, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn login(w: &World, slug: &str, email: &str, password: &str) -> (StatusCode, Value) {
    send(
        w.anon(Method::POST, "/v1/auth/login")
            .json(&json!({"tenant": slug, "email": email, "password": password})),
    )
    .await
}

/// Signs in and returns the bearer token.
async fn token(w: &World, email: &str, password: &str) -> String {
    let got = login(w, &w.a.slug, email, password).await;
    assert_eq!(got.0, StatusCode::OK, "login of {email}: {}", got.1);
    got.1["token"].as_str().expect("token").to_owned()
}

fn ids(page: &Value) -> Vec<u64> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["id"].as_u64().expect("id"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_created_listed_read_disabled_and_enabled() {
    let w = world().await;
    let admin = &w.a.admin.token;

    // Create: the email is normalized, the display name defaults to its local part as typed.
    let response = w
        .req(Method::POST, "/v1/users", admin)
        .json(&json!({
            "email": " New.Person@Acme.Example ",
            "password": "a long enough password",
            "role": {"kind": "buyer", "retailer_id": w.a.retailer_id},
        }))
        .send()
        .await
        .expect("send");
    let location = response.headers().get(LOCATION).cloned();
    let (status, user) = status_and_json(response).await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    let id = user["id"].as_u64().expect("id");
    assert_eq!(
        location.expect("Location").to_str().expect("ascii"),
        format!("/v1/users/{id}")
    );
    assert_eq!(user["email"], "new.person@acme.example");
    assert_eq!(user["display_name"], "New.Person");
    assert_eq!(user["status"], "active");
    assert_eq!(
        user["role"],
        json!({"kind": "buyer", "retailer_id": w.a.retailer_id})
    );

    // Rejections: the same email in another case, a malformed email, a short password, a
    // blank display name, a role that names no manufacturer.
    let new_user = |email: &str, password: &str| json!({"email": email, "password": password, "role": {"kind": "reviewer"}});
    let got = w
        .post(
            "/v1/users",
            admin,
            new_user("NEW.PERSON@acme.example", PASSWORD),
        )
        .await;
    assert_problem(&got, StatusCode::CONFLICT, "email_taken");
    let got = w
        .post("/v1/users", admin, new_user("not-an-email", PASSWORD))
        .await;
    assert_eq!(
        assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "email"
    );
    let got = w
        .post("/v1/users", admin, new_user("short@acme.example", "short"))
        .await;
    assert_eq!(
        assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "password"
    );
    let got = w
        .post(
            "/v1/users",
            admin,
            json!({"email": "blank@acme.example", "password": PASSWORD, "display_name": "  ",
                   "role": {"kind": "reviewer"}}),
        )
        .await;
    assert_eq!(
        assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "display_name"
    );
    let got = w
        .post(
            "/v1/users",
            admin,
            json!({"email": "m0@acme.example", "password": PASSWORD,
                   "role": {"kind": "manufacturer_user", "manufacturer_id": 0}}),
        )
        .await;
    assert_eq!(
        assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "role.manufacturer_id"
    );
    // A role binds only to a party that exists in the tenant; nothing is created otherwise.
    let absent = w.a.manufacturer_id.max(w.a.retailer_id) + 1_000;
    for (role, field) in [
        (
            json!({"kind": "manufacturer_user", "manufacturer_id": absent}),
            "role.manufacturer_id",
        ),
        (
            json!({"kind": "buyer", "retailer_id": absent}),
            "role.retailer_id",
        ),
        (
            json!({"kind": "buyer_approver", "retailer_id": absent}),
            "role.retailer_id",
        ),
    ] {
        let got = w
            .post(
                "/v1/users",
                admin,
                json!({"email": "unbound@acme.example", "password": PASSWORD, "role": role}),
            )
            .await;
        assert_eq!(
            assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
            field,
            "{role}"
        );
    }

    // List: every user once across pages; the role filter; bad parameters.
    let (status, all) = w.get("/v1/users?limit=500", admin).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let all_ids = ids(&all);
    assert_eq!(all_ids.len(), 6, "5 world users and the new one: {all}");
    assert!(all["next_cursor"].is_null(), "{all}");
    let mut paged = Vec::new();
    let mut path = "/v1/users?limit=2".to_owned();
    loop {
        let (status, page) = w.get(&path, admin).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(ids(&page).len() <= 2);
        paged.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/users?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(paged, all_ids, "pages repeat or skip nothing");
    let (status, buyers) = w.get("/v1/users?role=buyer", admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&buyers), vec![w.a.buyer.user_id, id]);
    let (_, fields) = w.get("/v1/users?fields=id,email&limit=1", admin).await;
    let first = fields["items"][0].as_object().expect("item");
    assert_eq!(first.len(), 2, "{first:?}");
    let got = w.get("/v1/users?role=owner", admin).await;
    assert_eq!(
        assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "role"
    );
    let got = w.get("/v1/users?limit=501", admin).await;
    assert_eq!(
        assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "limit"
    );
    let got = w.get("/v1/users?cursor=zzz", admin).await;
    assert_eq!(
        assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "cursor"
    );

    // Read, with its ETag.
    let response = w
        .req(Method::GET, &format!("/v1/users/{id}"), admin)
        .send()
        .await
        .expect("send");
    let etag = response.headers().get(ETAG).cloned().expect("ETag");
    let (status, read) = status_and_json(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, user);
    let again = w
        .req(Method::GET, &format!("/v1/users/{id}"), admin)
        .header(IF_NONE_MATCH, etag)
        .send()
        .await
        .expect("send");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let got = w.get("/v1/users/999999", admin).await;
    assert_problem(&got, StatusCode::NOT_FOUND, "not_found");

    // The new user signs in; disabled, their session dies and they cannot sign in.
    let person = token(&w, "new.person@acme.example", "a long enough password").await;
    assert_eq!(w.get("/v1/me", &person).await.0, StatusCode::OK);
    let (status, disabled) = w
        .post(&format!("/v1/users/{id}/disable"), admin, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{disabled}");
    assert_eq!(disabled["status"], "disabled");
    assert_problem(
        &w.get("/v1/me", &person).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    let got = login(
        &w,
        &w.a.slug,
        "new.person@acme.example",
        "a long enough password",
    )
    .await;
    assert_problem(&got, StatusCode::UNAUTHORIZED, "unauthenticated");
    let (status, enabled) = w
        .post(&format!("/v1/users/{id}/enable"), admin, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{enabled}");
    assert_eq!(enabled["status"], "active");
    token(&w, "new.person@acme.example", "a long enough password").await;

    // An admin cannot disable themselves; unknown users are 404.
    let got = w
        .post(
            &format!("/v1/users/{}/disable", w.a.admin.user_id),
            admin,
            json!({}),
        )
        .await;
    assert_problem(&got, StatusCode::CONFLICT, "cannot_disable_self");
    let got = w.post("/v1/users/999999/enable", admin, json!({})).await;
    assert_problem(&got, StatusCode::NOT_FOUND, "not_found");

    // Other roles may not manage users, but a user may read themselves.
    let buyer = &w.a.buyer.token;
    assert_problem(
        &w.get("/v1/users", buyer).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_problem(
        &w.post("/v1/users", buyer, new_user("x@acme.example", PASSWORD))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_problem(
        &w.post(&format!("/v1/users/{id}/disable"), buyer, json!({}))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_problem(
        &w.get(&format!("/v1/users/{}", w.a.admin.user_id), buyer)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let (status, me) = w
        .get(&format!("/v1/users/{}", w.a.buyer.user_id), buyer)
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["email"], w.a.buyer.email);
    assert_problem(
        &send(w.anon(Method::GET, "/v1/users")).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_sessions_and_sign_out() {
    let w = world().await;
    let slug = w.a.slug.clone();

    // Failed sign-ins: one answer for a wrong password, an unknown email and an unknown tenant.
    let response = w
        .anon(Method::POST, "/v1/auth/login")
        .json(&json!({"tenant": slug, "email": w.a.buyer.email, "password": "wrong password!"}))
        .send()
        .await
        .expect("send");
    assert!(response.headers().get(WWW_AUTHENTICATE).is_some());
    let wrong = status_and_json(response).await;
    assert_problem(&wrong, StatusCode::UNAUTHORIZED, "unauthenticated");
    let unknown_email = login(&w, &slug, "nobody@acme.example", PASSWORD).await;
    let unknown_tenant = login(&w, "no-such-tenant", &w.a.buyer.email, PASSWORD).await;
    for got in [&unknown_email, &unknown_tenant] {
        assert_problem(got, StatusCode::UNAUTHORIZED, "unauthenticated");
        assert_eq!(got.1["detail"], wrong.1["detail"]);
    }
    let got = send(
        w.anon(Method::POST, "/v1/auth/login")
            .json(&json!({"tenant": slug, "email": w.a.buyer.email})),
    )
    .await;
    assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", got.1);

    // A user changes their own password: the current one must match, the new one must pass
    // the policy; then every session of theirs is revoked.
    let buyer = &w.a.buyer.token;
    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let got = w
        .post(
            "/v1/me/password",
            buyer,
            change("not the password", "new password 123"),
        )
        .await;
    assert_eq!(
        assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "current_password"
    );
    let got = w
        .post("/v1/me/password", buyer, change(PASSWORD, "short"))
        .await;
    assert_eq!(
        assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "new_password"
    );
    let got = w
        .post(
            "/v1/me/password",
            buyer,
            change(PASSWORD, "new password 123"),
        )
        .await;
    assert_eq!(got.0, StatusCode::NO_CONTENT, "{}", got.1);
    assert_problem(
        &w.get("/v1/me", buyer).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    assert_problem(
        &login(&w, &slug, &w.a.buyer.email, PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    let buyer = token(&w, &w.a.buyer.email, "new password 123").await;
    assert_eq!(w.get("/v1/me", &buyer).await.0, StatusCode::OK);

    // An admin resets another user's password; the user's sessions end.
    let reviewer = &w.a.reviewer.token;
    let reset = format!("/v1/users/{}/reset-password", w.a.reviewer.user_id);
    let got = w
        .post(&reset, &w.a.admin.token, json!({"new_password": "tiny"}))
        .await;
    assert_eq!(
        assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "new_password"
    );
    let got = w
        .post(&reset, &buyer, json!({"new_password": "reset password 1"}))
        .await;
    assert_problem(&got, StatusCode::FORBIDDEN, "forbidden");
    let got = w
        .post(
            &reset,
            &w.a.admin.token,
            json!({"new_password": "reset password 1"}),
        )
        .await;
    assert_eq!(got.0, StatusCode::NO_CONTENT, "{}", got.1);
    assert_problem(
        &w.get("/v1/me", reviewer).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    token(&w, &w.a.reviewer.email, "reset password 1").await;

    // Revoking a user's sessions ends them all.
    let approver_second = token(&w, &w.a.approver.email, PASSWORD).await;
    let revoke = format!("/v1/users/{}/revoke-sessions", w.a.approver.user_id);
    assert_problem(
        &w.post(&revoke, &buyer, json!({})).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let (status, revoked) = w.post(&revoke, &w.a.admin.token, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["revoked"], 2, "the world's session and the new one");
    for token in [&w.a.approver.token, &approver_second] {
        assert_problem(
            &w.get("/v1/me", token).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        );
    }
    // A user may revoke their own sessions.
    let maker = &w.a.manufacturer_user.token;
    let own = format!(
        "/v1/users/{}/revoke-sessions",
        w.a.manufacturer_user.user_id
    );
    let (status, revoked) = w.post(&own, maker, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["revoked"], 1);
    assert_eq!(w.get("/v1/me", maker).await.0, StatusCode::UNAUTHORIZED);

    // Sign-out revokes exactly the presented session.
    let first = token(&w, &w.a.manufacturer_user.email, PASSWORD).await;
    let second = token(&w, &w.a.manufacturer_user.email, PASSWORD).await;
    let got = send(w.req(Method::POST, "/v1/auth/logout", &first)).await;
    assert_eq!(got.0, StatusCode::NO_CONTENT, "{}", got.1);
    assert_eq!(w.get("/v1/me", &first).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(w.get("/v1/me", &second).await.0, StatusCode::OK);
    let again = send(w.req(Method::POST, "/v1/auth/logout", &first)).await;
    assert_problem(&again, StatusCode::UNAUTHORIZED, "unauthenticated");
    let anonymous = send(w.anon(Method::POST, "/v1/auth/logout")).await;
    assert_problem(&anonymous, StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_scoped_shown_once_and_revocable() {
    let w = world().await;
    let admin = &w.a.admin.token;
    let key = |name: &str, scopes: Value| json!({"name": name, "role": {"kind": "tenant_admin"}, "scopes": scopes});

    let (status, read_key) = w
        .post(
            "/v1/api-keys",
            admin,
            key("catalog sync", json!(["catalog:read"])),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{read_key}");
    let read_secret = read_key["secret"].as_str().expect("secret").to_owned();
    assert!(read_secret.starts_with("mck_"), "{read_secret}");
    assert_eq!(read_key["scopes"], json!(["catalog:read"]));
    assert_eq!(
        read_key["created_by"],
        format!("user/{}", w.a.admin.user_id)
    );
    let prefix = read_key["display_prefix"].as_str().expect("prefix");
    assert!(read_secret.starts_with(prefix) && prefix.len() < read_secret.len());

    // The list never shows a secret.
    let (status, list) = w.get("/v1/api-keys", admin).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(ids(&list), vec![read_key["id"].as_u64().expect("id")]);
    assert!(list["items"][0].get("secret").is_none(), "{list}");
    assert!(!list.to_string().contains(&read_secret[prefix.len()..]));

    // Scopes narrow the key's role: catalog:read is not enough to manage users or keys.
    let (status, me) = w.get("/v1/me", &read_secret).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["kind"], "api_key");
    assert_eq!(me["scopes"], json!(["catalog:read"]));
    for path in ["/v1/users", "/v1/api-keys", "/v1/audit"] {
        assert_problem(
            &w.get(path, &read_secret).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }
    assert_problem(
        &w.post(
            "/v1/api-keys",
            &read_secret,
            key("escalate", json!(["admin"])),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    // A key is not a user: it has no password to change.
    let got = w
        .post(
            "/v1/me/password",
            &read_secret,
            json!({"current_password": PASSWORD, "new_password": "new password 123"}),
        )
        .await;
    assert_problem(&got, StatusCode::FORBIDDEN, "forbidden");

    // The admin scope allows what the role allows.
    let (status, admin_key) = w
        .post("/v1/api-keys", admin, key("ops", json!(["admin"])))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{admin_key}");
    let admin_secret = admin_key["secret"].as_str().expect("secret").to_owned();
    let (status, users) = w.get("/v1/users", &admin_secret).await;
    assert_eq!(status, StatusCode::OK, "{users}");
    assert_eq!(ids(&users).len(), 5);

    // Rejections.
    let got = w
        .post(
            "/v1/api-keys",
            admin,
            key("bad", json!(["catalog:read", "root"])),
        )
        .await;
    assert_eq!(
        assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "scopes"
    );
    let got = w.post("/v1/api-keys", admin, key("none", json!([]))).await;
    assert_eq!(
        assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "scopes"
    );
    let got = w
        .post("/v1/api-keys", admin, key(" ", json!(["catalog:read"])))
        .await;
    assert_eq!(
        assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "name"
    );
    let got = w
        .post(
            "/v1/api-keys",
            admin,
            json!({"name": "past", "role": {"kind": "reviewer"}, "scopes": ["admin"],
                   "expires_at_ms": 1}),
        )
        .await;
    assert_eq!(
        assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "expires_at_ms"
    );
    let absent = w.a.manufacturer_id.max(w.a.retailer_id) + 1_000;
    for (role, field) in [
        (
            json!({"kind": "manufacturer_user", "manufacturer_id": absent}),
            "role.manufacturer_id",
        ),
        (
            json!({"kind": "buyer", "retailer_id": absent}),
            "role.retailer_id",
        ),
    ] {
        let got = w
            .post(
                "/v1/api-keys",
                admin,
                json!({"name": "unbound", "role": role, "scopes": ["catalog:read"]}),
            )
            .await;
        assert_eq!(
            assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
            field,
            "{role}"
        );
    }
    assert_problem(
        &w.post(
            "/v1/api-keys",
            &w.a.buyer.token,
            key("buyer", json!(["orders:read"])),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_problem(
        &w.get("/v1/api-keys", &w.a.buyer.token).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );

    // Revocation: the key stops working at once; revoking again is harmless; unknown is 404.
    let revoke = format!("/v1/api-keys/{}", read_key["id"]);
    assert_problem(
        &w.delete(&revoke, &w.a.buyer.token).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let got = w.delete(&revoke, admin).await;
    assert_eq!(got.0, StatusCode::NO_CONTENT, "{}", got.1);
    assert_problem(
        &w.get("/v1/me", &read_secret).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    assert_eq!(w.delete(&revoke, admin).await.0, StatusCode::NO_CONTENT);
    assert_problem(
        &w.delete("/v1/api-keys/999999", admin).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (_, list) = w.get("/v1/api-keys", admin).await;
    let revoked = &list["items"][0];
    assert!(revoked["revoked_at_ms"].as_u64().is_some(), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_profile_and_settings() {
    let w = world().await;
    let (status, tenant) = w.get("/v1/tenant", &w.a.buyer.token).await;
    assert_eq!(status, StatusCode::OK, "{tenant}");
    assert_eq!(tenant["id"], w.a.tenant_id);
    assert_eq!(tenant["slug"], "acme");
    assert_eq!(tenant["name"], "acme wholesale");
    let (_, other) = w.get("/v1/tenant", &w.b.buyer.token).await;
    assert_eq!(other["slug"], "globex");

    let (status, settings) = w.get("/v1/tenant/settings", &w.a.buyer.token).await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(settings["session_ttl_ms"], 12 * 60 * 60 * 1000);

    let ten_minutes = 10 * 60 * 1000;
    assert_problem(
        &w.put(
            "/v1/tenant/settings",
            &w.a.buyer.token,
            json!({"session_ttl_ms": ten_minutes}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let got = w
        .put(
            "/v1/tenant/settings",
            &w.a.admin.token,
            json!({"session_ttl_ms": 1000}),
        )
        .await;
    assert_eq!(
        assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
        "session_ttl_ms"
    );
    let (status, updated) = w
        .put(
            "/v1/tenant/settings",
            &w.a.admin.token,
            json!({"session_ttl_ms": ten_minutes}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["session_ttl_ms"], ten_minutes);
    let (_, read) = w.get("/v1/tenant/settings", &w.a.reviewer.token).await;
    assert_eq!(read["session_ttl_ms"], ten_minutes);
    // The other tenant keeps its own settings.
    let (_, other) = w.get("/v1/tenant/settings", &w.b.admin.token).await;
    assert_eq!(other["session_ttl_ms"], 12 * 60 * 60 * 1000);

    // New sessions get the new lifetime.
    let (status, session) = login(&w, "acme", &w.a.buyer.email, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let expires = session["expires_at_ms"].as_u64().expect("expiry");
    assert!(
        expires > now_ms && expires <= now_ms + ten_minutes,
        "{expires} vs {now_ms}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_records_mutations_filters_pages_and_verifies() {
    let w = world().await;
    let admin = &w.a.admin.token;
    let before_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let (status, user) = w
        .post(
            "/v1/users",
            admin,
            json!({"email": "audited@acme.example", "password": PASSWORD,
                   "role": {"kind": "reviewer"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    let id = user["id"].as_u64().expect("id");
    let disabled = w
        .post(&format!("/v1/users/{id}/disable"), admin, json!({}))
        .await;
    assert_eq!(disabled.0, StatusCode::OK);

    let resource = format!("user/{id}");
    let (status, page) = w
        .get(&format!("/v1/audit?resource={resource}"), admin)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let actions: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(actions, ["user.create", "user.disable"], "{page}");
    let entry = &page["items"][0];
    assert_eq!(entry["actor"], format!("user/{}", w.a.admin.user_id));
    assert_eq!(entry["hash"].as_str().expect("hash").len(), 64);
    assert!(entry["at_ms"].as_u64().expect("at") >= before_ms);

    // Filters combine: actor, action, resource prefix, time range.
    let actor = format!("user/{}", w.a.admin.user_id);
    let (_, created) = w
        .get(
            &format!(
                "/v1/audit?actor={actor}&action=user.create&resource=user/&from_ms={before_ms}"
            ),
            admin,
        )
        .await;
    assert_eq!(ids_of_resources(&created), vec![resource.clone()]);
    let (_, world_users) = w
        .get(
            &format!("/v1/audit?action=user.create&to_ms={before_ms}"),
            admin,
        )
        .await;
    assert_eq!(
        world_users["items"].as_array().expect("items").len(),
        5,
        "the world's admin and four users: {world_users}"
    );
    let (_, none) = w.get("/v1/audit?to_ms=1", admin).await;
    assert_eq!(none["items"], json!([]));

    // Cursor paging walks the log in order without repeats.
    let (_, all) = w.get("/v1/audit?limit=500", admin).await;
    let all_seqs = seqs(&all);
    assert!(all_seqs.len() > 10, "{all}");
    let mut paged = Vec::new();
    let mut path = "/v1/audit?limit=7".to_owned();
    loop {
        let (status, page) = w.get(&path, admin).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        paged.extend(seqs(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/audit?limit=7&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(paged, all_seqs);
    assert!(all_seqs.windows(2).all(|p| p[0] < p[1]));

    // Bad filters name their field.
    for (query, field) in [
        ("actor=robot/1", "actor"),
        ("from_ms=yesterday", "from_ms"),
        ("to_ms=-5", "to_ms"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("cursor=nope", "cursor"),
    ] {
        let got = w.get(&format!("/v1/audit?{query}"), admin).await;
        assert_eq!(
            assert_problem(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")["field"],
            field,
            "{query}"
        );
    }

    // Who may read it: admins and reviewers, not buyers.
    assert_eq!(
        w.get("/v1/audit", &w.a.reviewer.token).await.0,
        StatusCode::OK
    );
    assert_problem(
        &w.get("/v1/audit", &w.a.buyer.token).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_problem(
        &w.get("/v1/audit/verify", &w.a.buyer.token).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );

    // The chain is intact and covers every entry.
    let (status, verify) = w.get("/v1/audit/verify", admin).await;
    assert_eq!(status, StatusCode::OK, "{verify}");
    assert_eq!(verify["intact"], true, "{verify}");
    let (_, all_now) = w.get("/v1/audit?limit=500", admin).await;
    assert_eq!(verify["entries"], seqs(&all_now).len() as u64);
    // The head hash is the last entry's, so it can anchor the log outside.
    let items = all_now["items"].as_array().expect("items");
    let last = items
        .iter()
        .max_by_key(|e| e["seq"].as_u64())
        .expect("entries");
    assert_eq!(verify["head_hash"], last["hash"], "{verify}");
    assert_eq!(verify["head_hash"].as_str().map(str::len), Some(64));
    // One more write moves the head; the new chain still passes through the old anchor.
    let anchor = verify["head_hash"].clone();
    let entries = verify["entries"].as_u64().expect("entries");
    let (status, created) = w
        .post(
            "/v1/users",
            admin,
            json!({"email": "anchor@acme.example", "password": PASSWORD, "role": {"kind": "reviewer"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (_, later) = w.get("/v1/audit/verify", admin).await;
    assert_eq!(later["intact"], true, "{later}");
    assert_eq!(later["entries"], entries + 1, "{later}");
    assert_ne!(later["head_hash"], anchor);
    let (_, all_later) = w.get("/v1/audit?limit=500", admin).await;
    let by_seq = |seq: u64| {
        all_later["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|e| e["seq"] == seq)
            .cloned()
            .unwrap_or_else(|| panic!("no entry {seq}: {all_later}"))
    };
    assert_eq!(by_seq(entries)["hash"], anchor);
    assert_eq!(by_seq(entries + 1)["prev_hash"], anchor);
    assert_eq!(by_seq(entries + 1)["hash"], later["head_hash"]);
    // The other tenant's log holds none of this tenant's entries.
    let (_, other) = w
        .get(&format!("/v1/audit?resource={resource}"), &w.b.admin.token)
        .await;
    assert!(
        other["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|e| e["action"] != "user.disable"),
        "{other}"
    );
}

fn seqs(page: &Value) -> Vec<u64> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect()
}

fn ids_of_resources(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["resource"].as_str().expect("resource").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_guard_refuses_an_account_after_ten_failures() {
    let w = world().await;
    let slug = w.a.slug.clone();
    let buyer = w.a.buyer.email.clone();
    for attempt in 1..=10 {
        let got = login(&w, &slug, &buyer, "wrong password!!").await;
        assert_eq!(
            got.0,
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}: {}",
            got.1
        );
    }
    // Past the limit even the right password is refused, in any spelling of the email.
    for email in [buyer.clone(), buyer.to_uppercase()] {
        let response = w
            .anon(Method::POST, "/v1/auth/login")
            .json(&json!({"tenant": "ACME", "email": email, "password": PASSWORD}))
            .send()
            .await
            .expect("send");
        let retry_after: u64 = response
            .headers()
            .get(RETRY_AFTER)
            .expect("Retry-After")
            .to_str()
            .expect("ascii")
            .parse()
            .expect("seconds");
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        let got = status_and_json(response).await;
        assert_problem(&got, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    }
    // Other accounts are not affected, and the buyer's existing session still works.
    token(&w, &w.a.reviewer.email, PASSWORD).await;
    assert_eq!(w.get("/v1/me", &w.a.buyer.token).await.0, StatusCode::OK);

    // A success resets the account's count: nine failures, a success, ten more failures are
    // all answered 401, and only then 429.
    let approver = w.a.approver.email.clone();
    for _ in 0..9 {
        let got = login(&w, &slug, &approver, "wrong password!!").await;
        assert_eq!(got.0, StatusCode::UNAUTHORIZED, "{}", got.1);
    }
    token(&w, &approver, PASSWORD).await;
    for attempt in 1..=10 {
        let got = login(&w, &slug, &approver, "wrong password!!").await;
        assert_eq!(
            got.0,
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}: {}",
            got.1
        );
    }
    assert_problem(
        &login(&w, &slug, &approver, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_guard_refuses_an_address_after_thirty_failures() {
    let w = world().await;
    let slug = w.a.slug.clone();
    // Thirty failures on thirty different accounts: no account reaches its own limit.
    for attempt in 1..=30 {
        let got = login(
            &w,
            &slug,
            &format!("nobody{attempt}@acme.example"),
            "wrong password!!",
        )
        .await;
        assert_eq!(
            got.0,
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}: {}",
            got.1
        );
    }
    // The address is now refused, even for a right password of an account with no failures.
    assert_problem(
        &login(&w, &slug, &w.a.reviewer.email, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );
}
