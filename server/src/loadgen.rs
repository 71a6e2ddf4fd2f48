//! `mercato loadgen`: drives a running server with concurrent HTTP requests and reports
//! throughput and latency percentiles per operation.
//!
//! A real HTTP client (reqwest, one keep-alive connection per worker) sends the requests a
//! browser or an integration would:
//!
//! | operation | request |
//! |---|---|
//! | `product_get` | `GET /v1/products/{id}` of a random active product |
//! | `product_list` | `GET /v1/products?limit=50` |
//! | `manufacturer_get` | `GET /v1/manufacturers/{id}` |
//! | `order_place` | `POST /v1/orders` with a fresh `Idempotency-Key` and five lines of in-stock active products at their minimum order quantity |
//!
//! Before the run, the pool of products is discovered through the API (active products, and
//! for order placement those whose stock covers many orders). Each of `concurrency` workers
//! loops until the end: it picks an operation by the mix's weights, sends it, and records the
//! latency of successful requests in its own histogram (hdrhistogram, microseconds) and every
//! failure by HTTP status. Requests started during the warm-up are not counted. The worker
//! histograms are merged at the end.
//!
//! The server limits requests per credential (`http.rate_limit_per_second`); one token is
//! used for the whole run, so a benchmark beyond that rate should run the server with
//! `MERCATO_HTTP_RATE_LIMIT_PER_SECOND=0`, otherwise the excess shows up as `429` errors.

use crate::demo::{self, DemoError};
use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bounds of `--concurrency`.
pub const CONCURRENCY_MAX: u32 = 1024;
/// Upper bound on `--duration`, in seconds.
pub const DURATION_SECS_MAX: u64 = 3600;
/// Upper bound on `--warmup`, in seconds.
pub const WARMUP_SECS_MAX: u64 = 600;
/// Longest one request may take before it counts as a transport error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound on the products discovered for the run.
pub const POOL_PRODUCTS_MAX: usize = 2_000;
/// Page size of the discovery listing (the API's maximum).
const DISCOVERY_PAGE_LIMIT: usize = 500;
/// `limit` of the `product_list` operation.
pub const LIST_LIMIT: usize = 50;
/// Lines of each placed order.
pub const ORDER_LINES: usize = 5;
/// A product joins the order pool when its available stock covers this many orders of it.
const STOCK_ORDERS_MIN: u64 = 50;
/// Stock look-ups in flight during discovery.
const STOCK_CHECKS_IN_FLIGHT_MAX: usize = 16;
/// Largest latency the histograms hold, in microseconds (twice the request timeout).
const LATENCY_MICROS_MAX: u64 = 2 * REQUEST_TIMEOUT.as_micros() as u64;
/// Bytes of an error body quoted in a set-up failure.
const ERROR_BODY_BYTES_MAX: usize = 500;

/// Which requests to send, and in what proportions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mix {
    /// Only `GET /v1/products/{id}`: cached point reads.
    Gets,
    /// Product reads 60%, product lists 20%, manufacturer reads 20%.
    Reads,
    /// Only order placement.
    Orders,
    /// The reads mix with one order in five.
    Mixed,
}

impl Mix {
    fn weights(self) -> &'static [(Op, u32)] {
        match self {
            Mix::Gets => &[(Op::ProductGet, 100)],
            Mix::Reads => &[
                (Op::ProductGet, 60),
                (Op::ProductList, 20),
                (Op::ManufacturerGet, 20),
            ],
            Mix::Orders => &[(Op::OrderPlace, 100)],
            Mix::Mixed => &[
                (Op::ProductGet, 48),
                (Op::ProductList, 16),
                (Op::ManufacturerGet, 16),
                (Op::OrderPlace, 20),
            ],
        }
    }

    fn places_orders(self) -> bool {
        self.weights().iter().any(|(op, _)| *op == Op::OrderPlace)
    }

    fn name(self) -> &'static str {
        match self {
            Mix::Gets => "gets",
            Mix::Reads => "reads",
            Mix::Orders => "orders",
            Mix::Mixed => "mixed",
        }
    }
}

/// One kind of request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    ProductGet,
    ProductList,
    ManufacturerGet,
    OrderPlace,
}

impl Op {
    const ALL: [Op; 4] = [
        Op::ProductGet,
        Op::ProductList,
        Op::ManufacturerGet,
        Op::OrderPlace,
    ];

    fn name(self) -> &'static str {
        match self {
            Op::ProductGet => "product_get",
            Op::ProductList => "product_list",
            Op::ManufacturerGet => "manufacturer_get",
            Op::OrderPlace => "order_place",
        }
    }

    fn route(self) -> &'static str {
        match self {
            Op::ProductGet => "GET /v1/products/{id}",
            Op::ProductList => "GET /v1/products?limit=50",
            Op::ManufacturerGet => "GET /v1/manufacturers/{id}",
            Op::OrderPlace => "POST /v1/orders",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How the load generator authenticates.
#[derive(Clone, Debug)]
pub enum Credential {
    /// A `mercato demo` credentials file: sign in as its buyer.
    DemoFile(PathBuf),
    /// A bearer token used as it is.
    Token(String),
}

/// A checked `mercato loadgen` command line.
#[derive(Clone, Debug)]
pub struct LoadgenOptions {
    /// Without a trailing `/`.
    pub url: String,
    pub credential: Credential,
    pub mix: Mix,
    pub concurrency: usize,
    pub duration: Duration,
    pub warmup: Duration,
}

/// Why a load test could not run.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    #[error("--{flag} must be {range}, got {value}")]
    Flag {
        flag: &'static str,
        range: String,
        value: u64,
    },
    #[error("--url {0:?} must start with http:// or https://")]
    Url(String),
    #[error(transparent)]
    Credentials(#[from] DemoError),
    #[error("the demo credentials have no {0} user")]
    MissingUser(&'static str),
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
    #[error("{what}: {source}")]
    Http {
        what: String,
        source: reqwest::Error,
    },
    #[error("{what}: HTTP {status}: {body}")]
    Status {
        what: String,
        status: u16,
        body: String,
    },
    #[error("{0}")]
    Setup(String),
    #[error("a worker failed unexpectedly: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl LoadgenOptions {
    /// Checks the bounds of every flag.
    pub fn new(
        url: String,
        credential: Credential,
        mix: Mix,
        concurrency: u32,
        duration_secs: u64,
        warmup_secs: u64,
    ) -> Result<LoadgenOptions, LoadgenError> {
        if !(1..=CONCURRENCY_MAX).contains(&concurrency) {
            return Err(LoadgenError::Flag {
                flag: "concurrency",
                range: format!("1..={CONCURRENCY_MAX}"),
                value: u64::from(concurrency),
            });
        }
        if !(1..=DURATION_SECS_MAX).contains(&duration_secs) {
            return Err(LoadgenError::Flag {
                flag: "duration",
                range: format!("1..={DURATION_SECS_MAX}"),
                value: duration_secs,
            });
        }
        if warmup_secs > WARMUP_SECS_MAX {
            return Err(LoadgenError::Flag {
                flag: "warmup",
                range: format!("0..={WARMUP_SECS_MAX}"),
                value: warmup_secs,
            });
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(LoadgenError::Url(url));
        }
        Ok(LoadgenOptions {
            url: url.trim_end_matches('/').to_string(),
            credential,
            mix,
            concurrency: concurrency as usize,
            duration: Duration::from_secs(duration_secs),
            warmup: Duration::from_secs(warmup_secs),
        })
    }
}

/// The outcome of a run; also the `--json` shape.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub url: String,
    pub mix: Mix,
    pub concurrency: usize,
    pub warmup_s: f64,
    /// The measured window, in seconds.
    pub duration_s: f64,
    /// Products the run chose from (reads), and those in stock for orders.
    pub products_in_pool: usize,
    pub products_in_order_pool: usize,
    pub total: Totals,
    pub operations: Vec<OperationReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Totals {
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    /// Successful requests per second.
    pub throughput_per_s: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct OperationReport {
    pub operation: &'static str,
    pub route: &'static str,
    pub requests: u64,
    /// 2xx answers.
    pub ok: u64,
    /// Failed requests by HTTP status, and `transport` for connection errors and timeouts.
    pub errors: BTreeMap<String, u64>,
    /// Successful requests per second.
    pub throughput_per_s: f64,
    /// Latency of the successful requests.
    pub latency_ms: Latency,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// A product the run may ask for.
#[derive(Clone, Copy, Debug)]
struct PoolProduct {
    id: u64,
    manufacturer_id: u64,
    /// The quantity an order line asks for: the minimum order quantity (a multiple of the
    /// case pack by the catalog's rules).
    quantity: u64,
}

/// What the workers share.
struct Shared {
    client: reqwest::Client,
    url: String,
    token: String,
    products: Vec<PoolProduct>,
    order_products: Vec<PoolProduct>,
    manufacturers: Vec<u64>,
    weights: &'static [(Op, u32)],
}

/// One operation's counts in one worker.
struct OpStats {
    latency_us: Histogram<u64>,
    ok: u64,
    failures: BTreeMap<String, u64>,
}

impl OpStats {
    fn new() -> Result<OpStats, LoadgenError> {
        let latency_us = Histogram::new_with_bounds(1, LATENCY_MICROS_MAX, 3)
            .map_err(|e| LoadgenError::Setup(format!("histogram: {e}")))?;
        Ok(OpStats {
            latency_us,
            ok: 0,
            failures: BTreeMap::new(),
        })
    }

    fn merge(&mut self, other: &OpStats) -> Result<(), LoadgenError> {
        self.latency_us
            .add(&other.latency_us)
            .map_err(|e| LoadgenError::Setup(format!("histogram: {e}")))?;
        self.ok += other.ok;
        for (key, count) in &other.failures {
            *self.failures.entry(key.clone()).or_default() += count;
        }
        Ok(())
    }
}

/// Runs the load test described by `options`.
pub async fn run(options: LoadgenOptions) -> Result<Report, LoadgenError> {
    // reqwest is built without a bundled crypto provider (also needed for plain HTTP).
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(options.concurrency)
        .tcp_nodelay(true)
        .build()
        .map_err(LoadgenError::Client)?;
    let token = match &options.credential {
        Credential::Token(token) => token.clone(),
        Credential::DemoFile(path) => sign_in(&client, &options.url, path).await?,
    };
    let products = discover_products(&client, &options.url, &token).await?;
    if products.is_empty() {
        return Err(LoadgenError::Setup(
            "GET /v1/products?status=active found no active product to ask for".into(),
        ));
    }
    let order_products = if options.mix.places_orders() {
        let in_stock = in_stock(&client, &options.url, &token, &products).await?;
        if in_stock.len() < ORDER_LINES {
            return Err(LoadgenError::Setup(format!(
                "only {} active products have stock for {STOCK_ORDERS_MIN} orders; {ORDER_LINES} are needed per order",
                in_stock.len()
            )));
        }
        in_stock
    } else {
        Vec::new()
    };
    let mut manufacturers: Vec<u64> = products.iter().map(|p| p.manufacturer_id).collect();
    manufacturers.sort_unstable();
    manufacturers.dedup();
    let shared = Arc::new(Shared {
        client,
        url: options.url.clone(),
        token,
        products,
        order_products,
        manufacturers,
        weights: options.mix.weights(),
    });

    let started = Instant::now();
    let measure_from = started + options.warmup;
    let stop_at = measure_from + options.duration;
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..options.concurrency {
        let shared = shared.clone();
        workers.spawn(async move { work(worker, &shared, measure_from, stop_at).await });
    }
    let mut stats: Vec<OpStats> = Op::ALL
        .iter()
        .map(|_| OpStats::new())
        .collect::<Result<_, _>>()?;
    while let Some(joined) = workers.join_next().await {
        for (total, part) in stats.iter_mut().zip(joined??.iter()) {
            total.merge(part)?;
        }
    }
    let measured = options.duration.as_secs_f64();
    Ok(report(&options, &shared, &stats, measured))
}

/// Signs in as the buyer of a demo credentials file; returns the bearer token.
async fn sign_in(
    client: &reqwest::Client,
    url: &str,
    path: &std::path::Path,
) -> Result<String, LoadgenError> {
    let credentials = demo::read_credentials(path)?;
    let buyer = credentials
        .user("buyer")
        .ok_or(LoadgenError::MissingUser("buyer"))?;
    let body = json!({
        "tenant": credentials.tenant.slug,
        "email": buyer.email,
        "password": buyer.password,
    });
    let answer = request_json(
        client.post(format!("{url}/v1/auth/login")).json(&body),
        "POST /v1/auth/login as the demo buyer",
    )
    .await?;
    answer
        .get("token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| LoadgenError::Setup("the login answer has no token".into()))
}

/// Sends a set-up request and parses its JSON answer; anything but 2xx is an error.
async fn request_json(request: reqwest::RequestBuilder, what: &str) -> Result<Value, LoadgenError> {
    let http = |source| LoadgenError::Http {
        what: what.to_string(),
        source,
    };
    let response = request.send().await.map_err(http)?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(http)?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&bytes);
        return Err(LoadgenError::Status {
            what: what.to_string(),
            status: status.as_u16(),
            body: text.chars().take(ERROR_BODY_BYTES_MAX).collect(),
        });
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| LoadgenError::Setup(format!("{what}: the answer is not JSON: {e}")))
}

fn u64_field(item: &Value, name: &str) -> Option<u64> {
    item.get(name).and_then(Value::as_u64)
}

/// Active products, page by page, up to [`POOL_PRODUCTS_MAX`].
async fn discover_products(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> Result<Vec<PoolProduct>, LoadgenError> {
    let mut products = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut request = client
            .get(format!("{url}/v1/products"))
            .bearer_auth(token)
            .query(&[
                ("status", "active".to_string()),
                ("limit", DISCOVERY_PAGE_LIMIT.to_string()),
            ]);
        if let Some(cursor) = &cursor {
            request = request.query(&[("cursor", cursor)]);
        }
        let page = request_json(request, "GET /v1/products?status=active").await?;
        let items = page
            .get("items")
            .and_then(Value::as_array)
            .ok_or_else(|| LoadgenError::Setup("the product list has no `items`".into()))?;
        for item in items {
            let (Some(id), Some(manufacturer_id)) =
                (u64_field(item, "id"), u64_field(item, "manufacturer_id"))
            else {
                continue;
            };
            let quantity = u64_field(item, "min_order_qty")
                .or_else(|| u64_field(item, "case_pack"))
                .unwrap_or(1)
                .max(1);
            products.push(PoolProduct {
                id,
                manufacturer_id,
                quantity,
            });
            if products.len() >= POOL_PRODUCTS_MAX {
                return Ok(products);
            }
        }
        match page.get("next_cursor").and_then(Value::as_str) {
            Some(next) if !items.is_empty() => cursor = Some(next.to_string()),
            _ => return Ok(products),
        }
    }
}

/// The products whose available stock covers [`STOCK_ORDERS_MIN`] orders of them, checked
/// with `GET /v1/products/{id}/stock`.
async fn in_stock(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    products: &[PoolProduct],
) -> Result<Vec<PoolProduct>, LoadgenError> {
    let mut checks = tokio::task::JoinSet::new();
    let mut kept = Vec::new();
    let mut pending = products.iter().copied();
    loop {
        while checks.len() < STOCK_CHECKS_IN_FLIGHT_MAX {
            let Some(product) = pending.next() else { break };
            let (client, url, token) = (client.clone(), url.to_string(), token.to_string());
            checks.spawn(async move {
                let request = client
                    .get(format!("{url}/v1/products/{}/stock", product.id))
                    .bearer_auth(token);
                let stock = request_json(request, "GET /v1/products/{id}/stock").await?;
                let available = u64_field(&stock, "available").unwrap_or(0);
                Ok::<_, LoadgenError>((product, available))
            });
        }
        let Some(joined) = checks.join_next().await else {
            return Ok(kept);
        };
        let (product, available) = joined??;
        if available >= product.quantity.saturating_mul(STOCK_ORDERS_MIN) {
            kept.push(product);
        }
    }
}

/// One worker: requests back to back until `stop_at`.
async fn work(
    worker: usize,
    shared: &Shared,
    measure_from: Instant,
    stop_at: Instant,
) -> Result<Vec<OpStats>, LoadgenError> {
    let mut stats: Vec<OpStats> = Op::ALL
        .iter()
        .map(|_| OpStats::new())
        .collect::<Result<_, _>>()?;
    let mut rng = SmallRng::from_rng(&mut rand::rng());
    let weight_total: u32 = shared.weights.iter().map(|(_, w)| w).sum();
    let mut sent = 0u64;
    loop {
        let started = Instant::now();
        if started >= stop_at {
            return Ok(stats);
        }
        let mut roll = rng.random_range(0..weight_total.max(1));
        let mut op = shared.weights[0].0;
        for (candidate, weight) in shared.weights {
            if roll < *weight {
                op = *candidate;
                break;
            }
            roll -= weight;
        }
        sent += 1;
        let request = build(shared, op, worker, sent, &mut rng);
        let outcome = match request.send().await {
            // The body is read whole: it is part of the answer's latency, and it frees the
            // connection for the next request.
            Ok(response) => {
                let status = response.status();
                match response.bytes().await {
                    Ok(_) => Ok(status),
                    Err(_) => Err(()),
                }
            }
            Err(_) => Err(()),
        };
        if started < measure_from {
            continue;
        }
        let elapsed_us = started.elapsed().as_micros() as u64;
        let stats = &mut stats[op.index()];
        match outcome {
            Ok(status) if status.is_success() => {
                stats.ok += 1;
                stats
                    .latency_us
                    .saturating_record(elapsed_us.clamp(1, LATENCY_MICROS_MAX));
            }
            Ok(status) => {
                *stats
                    .failures
                    .entry(status.as_str().to_string())
                    .or_default() += 1
            }
            Err(()) => *stats.failures.entry("transport".to_string()).or_default() += 1,
        }
    }
}

fn build(
    shared: &Shared,
    op: Op,
    worker: usize,
    sent: u64,
    rng: &mut SmallRng,
) -> reqwest::RequestBuilder {
    let url = &shared.url;
    let request = match op {
        Op::ProductGet => {
            let product = shared.products[rng.random_range(0..shared.products.len())];
            shared
                .client
                .get(format!("{url}/v1/products/{}", product.id))
        }
        Op::ProductList => shared
            .client
            .get(format!("{url}/v1/products?limit={LIST_LIMIT}")),
        Op::ManufacturerGet => {
            let id = shared.manufacturers[rng.random_range(0..shared.manufacturers.len())];
            shared.client.get(format!("{url}/v1/manufacturers/{id}"))
        }
        Op::OrderPlace => {
            let pool = &shared.order_products;
            let picked = rand::seq::index::sample(rng, pool.len(), ORDER_LINES.min(pool.len()));
            let lines: Vec<Value> = picked
                .iter()
                .map(|i| json!({"product_id": pool[i].id, "quantity": pool[i].quantity}))
                .collect();
            let key = format!("loadgen-{worker}-{sent}-{:016x}", rng.random::<u64>());
            shared
                .client
                .post(format!("{url}/v1/orders"))
                .header("Idempotency-Key", key)
                .json(&json!({ "lines": lines, "po_number": format!("LG-{worker}-{sent}") }))
        }
    };
    request.bearer_auth(&shared.token)
}

fn millis(micros: u64) -> f64 {
    (micros as f64 / 1000.0 * 1000.0).round() / 1000.0
}

fn report(options: &LoadgenOptions, shared: &Shared, stats: &[OpStats], measured: f64) -> Report {
    let mut operations = Vec::new();
    let (mut requests, mut ok) = (0u64, 0u64);
    for op in Op::ALL {
        if !shared.weights.iter().any(|(o, _)| *o == op) {
            continue;
        }
        let s = &stats[op.index()];
        let failed: u64 = s.failures.values().sum();
        requests += s.ok + failed;
        ok += s.ok;
        let h = &s.latency_us;
        let latency = if h.is_empty() {
            Latency::default()
        } else {
            Latency {
                p50: millis(h.value_at_quantile(0.50)),
                p95: millis(h.value_at_quantile(0.95)),
                p99: millis(h.value_at_quantile(0.99)),
                max: millis(h.max()),
                mean: (h.mean() / 1000.0 * 1000.0).round() / 1000.0,
            }
        };
        operations.push(OperationReport {
            operation: op.name(),
            route: op.route(),
            requests: s.ok + failed,
            ok: s.ok,
            errors: s.failures.clone(),
            throughput_per_s: per_second(s.ok, measured),
            latency_ms: latency,
        });
    }
    Report {
        url: options.url.clone(),
        mix: options.mix,
        concurrency: options.concurrency,
        warmup_s: options.warmup.as_secs_f64(),
        duration_s: measured,
        products_in_pool: shared.products.len(),
        products_in_order_pool: shared.order_products.len(),
        total: Totals {
            requests,
            ok,
            errors: requests - ok,
            throughput_per_s: per_second(ok, measured),
        },
        operations,
    }
}

fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds <= 0.0 {
        return 0.0;
    }
    (count as f64 / seconds * 10.0).round() / 10.0
}

/// The report as one JSON document.
pub fn write_json(out: &mut impl Write, report: &Report) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(std::io::Error::other)?;
    writeln!(out)
}

/// The report as a table.
pub fn write_text(out: &mut impl Write, report: &Report) -> std::io::Result<()> {
    writeln!(
        out,
        "mercato loadgen: {} mix, concurrency {}, {:.0} s measured after {:.0} s warm-up, against {}",
        report.mix.name(),
        report.concurrency,
        report.duration_s,
        report.warmup_s,
        report.url
    )?;
    writeln!(
        out,
        "{:<17} {:>9} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8}  errors",
        "operation", "requests", "ok", "ok/s", "p50 ms", "p95 ms", "p99 ms", "max ms"
    )?;
    for op in &report.operations {
        let errors = if op.errors.is_empty() {
            "-".to_string()
        } else {
            op.errors
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(
            out,
            "{:<17} {:>9} {:>9} {:>10.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2}  {errors}",
            op.operation,
            op.requests,
            op.ok,
            op.throughput_per_s,
            op.latency_ms.p50,
            op.latency_ms.p95,
            op.latency_ms.p99,
            op.latency_ms.max
        )?;
    }
    writeln!(
        out,
        "{:<17} {:>9} {:>9} {:>10.1}",
        "total", report.total.requests, report.total.ok, report.total.throughput_per_s
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(
        concurrency: u32,
        duration: u64,
        warmup: u64,
    ) -> Result<LoadgenOptions, LoadgenError> {
        LoadgenOptions::new(
            "http://127.0.0.1:1/".into(),
            Credential::Token("t".into()),
            Mix::Reads,
            concurrency,
            duration,
            warmup,
        )
    }

    #[test]
    fn flags_are_bounded() {
        let ok = options(1, 1, 0).expect("valid");
        assert_eq!(ok.url, "http://127.0.0.1:1");
        assert!(options(CONCURRENCY_MAX, DURATION_SECS_MAX, WARMUP_SECS_MAX).is_ok());
        for (c, d, w, flag) in [
            (0, 1, 0, "concurrency"),
            (CONCURRENCY_MAX + 1, 1, 0, "concurrency"),
            (1, 0, 0, "duration"),
            (1, DURATION_SECS_MAX + 1, 0, "duration"),
            (1, 1, WARMUP_SECS_MAX + 1, "warmup"),
        ] {
            match options(c, d, w) {
                Err(LoadgenError::Flag { flag: f, .. }) => assert_eq!(f, flag),
                other => panic!("expected --{flag} refused, got {other:?}"),
            }
        }
        let bad_url = LoadgenOptions::new(
            "127.0.0.1:8080".into(),
            Credential::Token("t".into()),
            Mix::Gets,
            1,
            1,
            0,
        );
        assert!(matches!(bad_url, Err(LoadgenError::Url(_))));
    }

    #[test]
    fn every_mix_has_weights_and_mixed_places_orders() {
        for mix in [Mix::Gets, Mix::Reads, Mix::Orders, Mix::Mixed] {
            assert!(mix.weights().iter().map(|(_, w)| w).sum::<u32>() > 0);
        }
        assert!(Mix::Mixed.places_orders());
        assert!(Mix::Orders.places_orders());
        assert!(!Mix::Reads.places_orders());
    }

    #[test]
    fn the_report_counts_only_the_operations_of_the_mix() {
        let mut stats: Vec<OpStats> = Op::ALL.iter().map(|_| OpStats::new().expect("h")).collect();
        for us in [1_000, 2_000, 3_000, 40_000] {
            stats[Op::ProductGet.index()]
                .latency_us
                .record(us)
                .expect("record");
            stats[Op::ProductGet.index()].ok += 1;
        }
        stats[Op::ProductGet.index()]
            .failures
            .insert("429".into(), 2);
        let _installed = rustls::crypto::ring::default_provider().install_default();
        let shared = Shared {
            client: reqwest::Client::new(),
            url: "http://x".into(),
            token: "t".into(),
            products: Vec::new(),
            order_products: Vec::new(),
            manufacturers: Vec::new(),
            weights: Mix::Gets.weights(),
        };
        let options = options(2, 2, 0).expect("valid");
        let report = report(&options, &shared, &stats, 2.0);
        assert_eq!(report.operations.len(), 1);
        let op = &report.operations[0];
        assert_eq!((op.requests, op.ok), (6, 4));
        assert_eq!(op.errors.get("429"), Some(&2));
        assert_eq!(op.throughput_per_s, 2.0);
        assert!(
            (op.latency_ms.p50 - 2.0).abs() < 0.01,
            "{:?}",
            op.latency_ms
        );
        assert!(
            (op.latency_ms.max - 40.0).abs() < 0.1,
            "{:?}",
            op.latency_ms
        );
        assert_eq!(report.total.errors, 2);
    }
}
