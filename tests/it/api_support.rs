//! Shared set-up of the `/v1` end-to-end tests: a data directory filled through the engine
//! (the same write path the server uses), then the real binary started on it.
//!
//! [`world`] gives two tenants, `acme` and `globex`, each with one signed-in user per role, a
//! verified and an unverified manufacturer, a retailer on net-30 terms, a warehouse and five
//! active products in stock. Sessions are created by the engine before the server starts; they
//! are stored like any other, so their bearer tokens work against the server.
#![allow(dead_code)]

use crate::support::{App, SpawnOptions, spawn_app_with};
use mercato_engine::accounts::{NewUser, Role};
use mercato_engine::catalog::{CategoryInput, ManufacturerInput, ProductInput, RetailerInput};
use mercato_engine::inventory::StockAdjustmentInput;
use mercato_engine::money::{Currency, Money};
use mercato_engine::platform::NewTenant;
use mercato_engine::tables::{
    Address, AdjustmentReason, CountryCode, PaymentTerms, PriceTier, ProductStatus,
    VerificationStatus,
};
use mercato_engine::{Actor, Engine, EngineConfig, TenantId};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use std::collections::BTreeMap;

/// Password of every user the world creates.
pub const PASSWORD: &str = "correct horse battery staple";
/// Units of each world product in the tenant's warehouse.
pub const STOCK: i64 = 1_000;
/// Base price of world product `i` (0-based), in euro cents: 10.00, 11.00, ...
pub fn base_price(i: usize) -> i64 {
    1_000 + 100 * i as i64
}

/// A signed-in user.
#[derive(Clone, Debug)]
pub struct Login {
    pub user_id: u64,
    pub email: String,
    /// Bearer token.
    pub token: String,
}

/// One tenant of the world and everything in it.
#[derive(Clone, Debug)]
pub struct TenantWorld {
    pub tenant_id: u64,
    pub slug: String,
    pub admin: Login,
    /// Bound to [`TenantWorld::manufacturer_id`].
    pub manufacturer_user: Login,
    /// Bound to [`TenantWorld::retailer_id`].
    pub buyer: Login,
    /// Bound to [`TenantWorld::retailer_id`].
    pub approver: Login,
    pub reviewer: Login,
    /// Verified; owns [`TenantWorld::products`].
    pub manufacturer_id: u64,
    /// Unverified, no products.
    pub unverified_manufacturer_id: u64,
    /// Net 30, credit limit 1,000,000.00 EUR, approval threshold 50,000.00 EUR, two addresses.
    pub retailer_id: u64,
    pub warehouse_id: u64,
    /// Root category `tools` and its child `tools/hand-tools` (the products' category).
    pub category_id: u64,
    pub subcategory_id: u64,
    /// Five active products, SKUs `SKU-0`..`SKU-4`, case pack 1, MOQ 1, [`STOCK`] units each,
    /// base price [`base_price`]`(i)`, and a tier of 10% off from 100 units.
    pub products: Vec<u64>,
}

/// A running server over a data directory holding two tenants.
pub struct World {
    pub app: App,
    pub client: reqwest::Client,
    /// The platform administrator's bearer token.
    pub platform_token: String,
    /// Tenant `acme`.
    pub a: TenantWorld,
    /// Tenant `globex`, built the same way: the other tenant of isolation tests.
    pub b: TenantWorld,
    _dir: tempfile::TempDir,
}

/// Builds the world and starts the server on it.
pub async fn world() -> World {
    world_with(Vec::new()).await
}

/// [`world`] with extra `serve` arguments (for example lower limits).
pub async fn world_with(args: Vec<String>) -> World {
    world_with_env(args, Vec::new()).await
}

/// [`world`] with extra `serve` arguments and `MERCATO_*` environment variables (settings
/// that have no flag, such as the rate limit).
pub async fn world_with_env(args: Vec<String>, env: Vec<(String, String)>) -> World {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let (platform_token, a, b) = {
        let engine = Engine::open(EngineConfig::new(&data_dir)).expect("open engine");
        let token = engine
            .init_platform()
            .await
            .expect("init platform")
            .expect("fresh platform");
        let platform = engine
            .authenticate(token.expose_secret())
            .expect("platform principal");
        let a = fill_tenant(&engine, &platform, "acme").await;
        let b = fill_tenant(&engine, &platform, "globex").await;
        engine.shutdown().expect("close engine");
        (token.expose_secret().to_owned(), a, b)
    };
    let app = spawn_app_with(SpawnOptions {
        args,
        env,
        data_dir: Some(data_dir),
    });
    let client = app.client();
    World {
        app,
        client,
        platform_token,
        a,
        b,
        _dir: dir,
    }
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

/// A shipping address labelled `label`.
pub fn address(label: &str) -> Address {
    Address {
        label: label.into(),
        line1: "1 Market Street".into(),
        line2: None,
        city: "Rotterdam".into(),
        postal_code: "3011".into(),
        region: None,
        country: CountryCode::parse("NL").expect("country"),
    }
}

async fn fill_tenant(
    engine: &Engine,
    platform: &mercato_engine::accounts::Principal,
    slug: &str,
) -> TenantWorld {
    let admin_email = format!("admin@{slug}.example");
    let created = engine
        .platform_create_tenant(
            platform,
            NewTenant {
                slug: slug.into(),
                name: format!("{slug} wholesale"),
                admin_name: "Ada Admin".into(),
                admin_email: admin_email.clone(),
                admin_password: PASSWORD.into(),
            },
        )
        .await
        .expect("create tenant");
    let tenant: TenantId = created.tenant;
    let admin_session = engine
        .login(tenant, &admin_email, PASSWORD)
        .await
        .expect("admin login");
    let admin_principal = admin_session.principal.clone();
    let admin = Login {
        user_id: created.admin.id,
        email: admin_email,
        token: admin_session.token.expose_secret().to_owned(),
    };
    let admin_id = admin.user_id;
    let actor = move || Actor::User(admin_id);

    let manufacturer = engine
        .create_manufacturer(
            tenant,
            actor(),
            ManufacturerInput {
                name: "Acme Tools GmbH".into(),
                country: CountryCode::parse("DE").expect("country"),
            },
        )
        .await
        .expect("manufacturer");
    engine
        .set_manufacturer_verification(
            tenant,
            actor(),
            manufacturer.id,
            VerificationStatus::Verified,
        )
        .await
        .expect("verify manufacturer");
    let unverified = engine
        .create_manufacturer(
            tenant,
            actor(),
            ManufacturerInput {
                name: "Borealis Paints BV".into(),
                country: CountryCode::parse("NL").expect("country"),
            },
        )
        .await
        .expect("unverified manufacturer");
    let retailer = engine
        .create_retailer(
            tenant,
            actor(),
            RetailerInput {
                name: "Corner Hardware Ltd".into(),
                customer_group_id: None,
                payment_terms: PaymentTerms::Net30,
                credit_limit: eur(100_000_000),
                approval_threshold: Some(eur(5_000_000)),
                addresses: vec![address("Main store"), address("Back office")],
            },
        )
        .await
        .expect("retailer");
    let warehouse_id = engine
        .create_warehouse(tenant, actor(), "Main", "MAIN")
        .await
        .expect("warehouse")
        .id;
    let category = engine
        .create_category(
            tenant,
            actor(),
            CategoryInput {
                parent: None,
                name: "Tools".into(),
                slug: "tools".into(),
            },
        )
        .await
        .expect("category");
    let subcategory = engine
        .create_category(
            tenant,
            actor(),
            CategoryInput {
                parent: Some(category.id),
                name: "Hand tools".into(),
                slug: "hand-tools".into(),
            },
        )
        .await
        .expect("subcategory");
    let mut products = Vec::new();
    for i in 0..5 {
        let product = engine
            .create_product(
                tenant,
                actor(),
                ProductInput {
                    manufacturer_id: manufacturer.id,
                    sku: format!("SKU-{i}"),
                    name: format!("Claw hammer model {i}"),
                    description: format!("Forged steel claw hammer, size {i}"),
                    category_id: Some(subcategory.id),
                    attributes: BTreeMap::from([("material".to_owned(), "steel".to_owned())]),
                    images: Vec::new(),
                    unit_of_measure: "each".into(),
                    case_pack: 1,
                    min_order_qty: 1,
                    base_price: eur(base_price(i)),
                    tiers: vec![PriceTier {
                        min_qty: 100,
                        unit_price: eur(base_price(i) * 9 / 10),
                    }],
                },
            )
            .await
            .expect("product");
        engine
            .set_product_status(tenant, actor(), product.id, None, ProductStatus::Active)
            .await
            .expect("activate product");
        engine
            .adjust_stock(
                tenant,
                actor(),
                StockAdjustmentInput {
                    warehouse_id,
                    product_id: product.id,
                    delta: STOCK,
                    reason: AdjustmentReason::Receipt,
                    note: None,
                },
            )
            .await
            .expect("stock");
        products.push(product.id);
    }

    let user = async |local: &str, role: Role| -> Login {
        let email = format!("{local}@{slug}.example");
        let created = engine
            .create_user(
                &admin_principal,
                NewUser {
                    email: email.clone(),
                    name: format!("{local} user"),
                    role,
                    password: PASSWORD.into(),
                },
            )
            .await
            .expect("create user");
        let session = engine
            .login(tenant, &email, PASSWORD)
            .await
            .expect("user login");
        Login {
            user_id: created.id,
            email,
            token: session.token.expose_secret().to_owned(),
        }
    };
    let manufacturer_user = user(
        "maker",
        Role::ManufacturerUser {
            manufacturer_id: manufacturer.id,
        },
    )
    .await;
    let buyer = user(
        "buyer",
        Role::Buyer {
            retailer_id: retailer.id,
        },
    )
    .await;
    let approver = user(
        "approver",
        Role::BuyerApprover {
            retailer_id: retailer.id,
        },
    )
    .await;
    let reviewer = user("reviewer", Role::Reviewer).await;
    TenantWorld {
        tenant_id: tenant.0,
        slug: slug.into(),
        admin,
        manufacturer_user,
        buyer,
        approver,
        reviewer,
        manufacturer_id: manufacturer.id,
        unverified_manufacturer_id: unverified.id,
        retailer_id: retailer.id,
        warehouse_id,
        category_id: category.id,
        subcategory_id: subcategory.id,
        products,
    }
}

impl World {
    /// A request to `path` (starting with `/`) with `token` as the bearer credential.
    pub fn req(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.app.url))
            .bearer_auth(token)
    }

    /// A request to `path` without a credential.
    pub fn anon(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.app.url))
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        send(self.req(Method::GET, path, token)).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        send(self.req(Method::POST, path, token).json(&body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        send(self.req(Method::PUT, path, token).json(&body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        send(self.req(Method::PATCH, path, token).json(&body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (StatusCode, Value) {
        send(self.req(Method::DELETE, path, token)).await
    }
}

/// Sends `request` and returns the status with the body as JSON (`Value::Null` when empty,
/// a JSON string when the body is not JSON).
pub async fn send(request: RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("send request");
    status_and_json(response).await
}

pub async fn status_and_json(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = response.bytes().await.expect("read body");
    if bytes.is_empty() {
        return (status, Value::Null);
    }
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

/// Asserts a problem+json answer with `status` and `code`, and returns the body.
#[track_caller]
pub fn assert_problem(got: &(StatusCode, Value), status: StatusCode, code: &str) -> Value {
    assert_eq!(got.0, status, "body: {}", got.1);
    assert_eq!(got.1["code"], code, "body: {}", got.1);
    got.1.clone()
}
