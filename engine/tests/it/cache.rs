//! The read cache through the engine's API, on real storage in a temp dir: repeated reads hit,
//! every kind of write is visible to the next read, readers racing a writer never go back in
//! time, and tenants never see each other's entries.

use mercato_engine::cache::{CacheCounts, CacheKind};
use mercato_engine::catalog::{
    CatalogAction, ImportMode, ManufacturerInput, ProductInput, ProductUpsert, RetailerInput,
};
use mercato_engine::money::{Currency, Money};
use mercato_engine::tables::{
    Address, CountryCode, PaymentTerms, PriceTier, Product, ProductStatus, VerificationStatus,
};
use mercato_engine::{Action, Actor, Engine, EngineConfig, TenantId};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const T: TenantId = TenantId(1);
const OTHER: TenantId = TenantId(2);
const ADMIN: Actor = Actor::User(1);

struct Fixture {
    _dir: tempfile::TempDir,
    engine: Arc<Engine>,
}

async fn setup() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
    engine.create_tenant(T, "Tenant One").await.unwrap();
    engine.create_tenant(OTHER, "Tenant Two").await.unwrap();
    Fixture {
        _dir: dir,
        engine: Arc::new(engine),
    }
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

fn de() -> CountryCode {
    CountryCode::parse("DE").unwrap()
}

fn maker(name: &str) -> ManufacturerInput {
    ManufacturerInput {
        name: name.into(),
        country: de(),
    }
}

fn item(manufacturer_id: u64, sku: &str, minor: i64) -> ProductInput {
    ProductInput {
        manufacturer_id,
        sku: sku.into(),
        name: format!("Product {sku}"),
        description: "A product".into(),
        category_id: None,
        attributes: BTreeMap::new(),
        images: Vec::new(),
        unit_of_measure: "each".into(),
        case_pack: 1,
        min_order_qty: 1,
        base_price: eur(minor),
        tiers: Vec::new(),
    }
}

fn buyer(name: &str, group: Option<u64>) -> RetailerInput {
    RetailerInput {
        name: name.into(),
        customer_group_id: group,
        payment_terms: PaymentTerms::Net30,
        credit_limit: eur(1_000_000),
        approval_threshold: None,
        addresses: vec![Address {
            label: "Main".into(),
            line1: "Hauptstr. 1".into(),
            line2: None,
            city: "Berlin".into(),
            postal_code: "10115".into(),
            region: None,
            country: de(),
        }],
    }
}

async fn verified_maker(engine: &Engine, tenant: TenantId, name: &str) -> u64 {
    let m = engine
        .create_manufacturer(tenant, ADMIN, maker(name))
        .await
        .unwrap();
    engine
        .set_manufacturer_verification(tenant, Actor::Platform, m.id, VerificationStatus::Verified)
        .await
        .unwrap();
    m.id
}

/// Hits and misses of `kind` since `before`.
fn delta(engine: &Engine, kind: CacheKind, before: CacheCounts) -> CacheCounts {
    let now = engine.read_cache_counts(kind);
    CacheCounts {
        hits: now.hits - before.hits,
        misses: now.misses - before.misses,
    }
}

/// Reads twice and checks the second read was a hit; returns what was read.
fn read_twice<T: PartialEq + std::fmt::Debug>(
    engine: &Engine,
    kind: CacheKind,
    read: impl Fn() -> T,
) -> T {
    let before = engine.read_cache_counts(kind);
    let first = read();
    let second = read();
    assert_eq!(first, second);
    assert_eq!(
        delta(engine, kind, before),
        CacheCounts { hits: 1, misses: 1 },
        "{kind:?}: the second read must be a hit"
    );
    second
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_read_is_a_hit_for_every_kind() {
    let f = setup().await;
    let e = &*f.engine;
    let m = verified_maker(e, T, "Acme").await;
    let p = e
        .create_product(T, ADMIN, item(m, "A-1", 1000))
        .await
        .unwrap();
    let g = e.create_customer_group(T, ADMIN, "Gold").await.unwrap();
    let r = e
        .create_retailer(T, ADMIN, buyer("Shop", Some(g.id)))
        .await
        .unwrap();
    e.set_price_list_entry(T, ADMIN, g.id, p.id, eur(900), Vec::new())
        .await
        .unwrap();

    let got = read_twice(e, CacheKind::Product, || e.product(T, p.id).unwrap());
    assert_eq!(got, Some(p.clone()));
    let got = read_twice(e, CacheKind::Manufacturer, || e.manufacturer(T, m).unwrap());
    assert_eq!(got.unwrap().verification, VerificationStatus::Verified);
    let got = read_twice(e, CacheKind::Retailer, || e.retailer(T, r.id).unwrap());
    assert_eq!(got, Some(r));
    let got = read_twice(e, CacheKind::PriceListEntry, || {
        e.price_list_entry(T, g.id, p.id).unwrap()
    });
    assert_eq!(got.unwrap().unit_price, eur(900));
    // Absent records are cached as absent.
    let got = read_twice(e, CacheKind::Product, || e.product(T, 999).unwrap());
    assert_eq!(got, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_outside_the_catalog_keep_the_cache() {
    let f = setup().await;
    let e = &*f.engine;
    let m = verified_maker(e, T, "Acme").await;
    let p = e
        .create_product(T, ADMIN, item(m, "A-1", 1000))
        .await
        .unwrap();
    read_twice(e, CacheKind::Product, || e.product(T, p.id).unwrap());
    // An inventory command does not touch products: the entry stays valid.
    e.create_warehouse(T, ADMIN, "Main", "MAIN").await.unwrap();
    let before = e.read_cache_counts(CacheKind::Product);
    assert_eq!(e.product(T, p.id).unwrap(), Some(p));
    assert_eq!(
        delta(e, CacheKind::Product, before),
        CacheCounts { hits: 1, misses: 0 }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_product_write_is_visible_to_the_next_read() {
    let f = setup().await;
    let e = &*f.engine;
    let m = verified_maker(e, T, "Acme").await;
    let read = || e.product(T, 1).unwrap();

    // Create, after "absent" was cached.
    assert_eq!(read_twice(e, CacheKind::Product, read), None);
    let p = e
        .create_product(T, ADMIN, item(m, "A-1", 1000))
        .await
        .unwrap();
    assert_eq!(p.id, 1);
    assert_eq!(read_twice(e, CacheKind::Product, read), Some(p.clone()));

    // Update.
    let mut input = item(m, "A-1", 1200);
    input.tiers = vec![PriceTier {
        min_qty: 10,
        unit_price: eur(1100),
    }];
    let updated = e
        .update_product(T, ADMIN, p.id, Some(p.version), input)
        .await
        .unwrap();
    let got = read_twice(e, CacheKind::Product, read).unwrap();
    assert_eq!(got, updated);
    assert_eq!(got.base_price, eur(1200));

    // Status.
    let active = e
        .set_product_status(T, ADMIN, p.id, None, ProductStatus::Active)
        .await
        .unwrap();
    let got = read_twice(e, CacheKind::Product, read).unwrap();
    assert_eq!(got.status, ProductStatus::Active);
    assert_eq!(got, active);

    // A bulk upsert through `run` (the async write path).
    let upsert = ProductUpsert {
        manufacturer_id: m,
        sku: "A-1".into(),
        name: Some("Renamed by upsert".into()),
        description: None,
        category_id: None,
        attributes: None,
        images: None,
        unit_of_measure: None,
        case_pack: None,
        min_order_qty: None,
        base_price: None,
        tiers: None,
        status: None,
    };
    let action = Action::Catalog(CatalogAction::UpsertProducts { rows: vec![upsert] });
    e.run(T, ADMIN, action).await.unwrap();
    let got = read_twice(e, CacheKind::Product, read).unwrap();
    assert_eq!(got.name, "Renamed by upsert");

    // A CSV import (the blocking write path).
    let engine = Arc::clone(&f.engine);
    let csv = format!("manufacturer_id,sku,name,base_price,tiers\n{m},A-1,Imported,12.50,\n");
    let report = tokio::task::spawn_blocking(move || {
        engine
            .import_products_csv(T, ADMIN, csv.as_bytes(), ImportMode::WholeFile, &|_| {})
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(report.rows_committed, 1, "{report:?}");
    let got = read_twice(e, CacheKind::Product, read).unwrap();
    assert_eq!(got.name, "Imported");
    assert_eq!(got.base_price, eur(1250));
    assert!(got.tiers.is_empty());

    // A rejected write changes nothing, and the cache still answers the same.
    let stale = e
        .update_product(T, ADMIN, p.id, Some(p.version), item(m, "A-1", 1))
        .await;
    assert!(stale.is_err());
    assert_eq!(read_twice(e, CacheKind::Product, read).unwrap(), got);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_manufacturer_write_is_visible_to_the_next_read() {
    let f = setup().await;
    let e = &*f.engine;
    let read = || e.manufacturer(T, 1).unwrap();
    assert_eq!(read_twice(e, CacheKind::Manufacturer, read), None);
    let m = e
        .create_manufacturer(T, ADMIN, maker("Acme"))
        .await
        .unwrap();
    assert_eq!(
        read_twice(e, CacheKind::Manufacturer, read),
        Some(m.clone())
    );
    let renamed = e
        .update_manufacturer(T, ADMIN, m.id, maker("Acme GmbH"))
        .await
        .unwrap();
    assert_eq!(read_twice(e, CacheKind::Manufacturer, read), Some(renamed));
    for status in [
        VerificationStatus::Pending,
        VerificationStatus::Verified,
        VerificationStatus::Suspended,
    ] {
        e.set_manufacturer_verification(T, Actor::Platform, m.id, status)
            .await
            .unwrap();
        let got = read_twice(e, CacheKind::Manufacturer, read).unwrap();
        assert_eq!(got.verification, status);
        assert_eq!(got.name, "Acme GmbH");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_retailer_write_is_visible_to_the_next_read() {
    let f = setup().await;
    let e = &*f.engine;
    let g = e.create_customer_group(T, ADMIN, "Gold").await.unwrap();
    let read = || e.retailer(T, 1).unwrap();
    assert_eq!(read_twice(e, CacheKind::Retailer, read), None);
    let r = e
        .create_retailer(T, ADMIN, buyer("Shop", None))
        .await
        .unwrap();
    assert_eq!(read_twice(e, CacheKind::Retailer, read), Some(r.clone()));
    let mut input = buyer("Shop & Co", Some(g.id));
    input.payment_terms = PaymentTerms::Net60;
    input.credit_limit = eur(5_000);
    let updated = e.update_retailer(T, ADMIN, r.id, input).await.unwrap();
    let got = read_twice(e, CacheKind::Retailer, read).unwrap();
    assert_eq!(got, updated);
    assert_eq!(got.customer_group_id, Some(g.id));
    assert_eq!(got.payment_terms, PaymentTerms::Net60);
    assert_eq!(got.credit_limit, eur(5_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_price_list_write_is_visible_to_the_next_read() {
    let f = setup().await;
    let e = &*f.engine;
    let m = verified_maker(e, T, "Acme").await;
    let p = e
        .create_product(T, ADMIN, item(m, "A-1", 1000))
        .await
        .unwrap();
    let g = e.create_customer_group(T, ADMIN, "Gold").await.unwrap();
    let read = || e.price_list_entry(T, g.id, p.id).unwrap();
    assert_eq!(read_twice(e, CacheKind::PriceListEntry, read), None);
    let set = e
        .set_price_list_entry(T, ADMIN, g.id, p.id, eur(900), Vec::new())
        .await
        .unwrap();
    assert_eq!(read_twice(e, CacheKind::PriceListEntry, read), Some(set));
    let tiers = vec![PriceTier {
        min_qty: 10,
        unit_price: eur(800),
    }];
    let replaced = e
        .set_price_list_entry(T, ADMIN, g.id, p.id, eur(850), tiers)
        .await
        .unwrap();
    let got = read_twice(e, CacheKind::PriceListEntry, read).unwrap();
    assert_eq!(got, replaced);
    assert_eq!(got.unit_price, eur(850));
    e.remove_price_list_entry(T, ADMIN, g.id, p.id)
        .await
        .unwrap();
    assert_eq!(read_twice(e, CacheKind::PriceListEntry, read), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_do_not_see_each_others_entries() {
    let f = setup().await;
    let e = &*f.engine;
    // The same ids in both tenants (sequences are per tenant), different contents.
    let m1 = verified_maker(e, T, "Maker of one").await;
    let m2 = verified_maker(e, OTHER, "Maker of two").await;
    assert_eq!(m1, m2);
    let p1 = e
        .create_product(T, ADMIN, item(m1, "ONE", 100))
        .await
        .unwrap();
    let p2 = e
        .create_product(OTHER, ADMIN, item(m2, "TWO", 200))
        .await
        .unwrap();
    assert_eq!(p1.id, p2.id);
    for _ in 0..3 {
        assert_eq!(e.product(T, p1.id).unwrap().unwrap().sku, "ONE");
        assert_eq!(e.product(OTHER, p2.id).unwrap().unwrap().sku, "TWO");
        assert_eq!(e.manufacturer(T, m1).unwrap().unwrap().name, "Maker of one");
        assert_eq!(
            e.manufacturer(OTHER, m2).unwrap().unwrap().name,
            "Maker of two"
        );
    }
    // A retailer only the first tenant has: absent for the other, before and after caching.
    let r = e
        .create_retailer(T, ADMIN, buyer("Only one", None))
        .await
        .unwrap();
    for _ in 0..2 {
        assert!(e.retailer(T, r.id).unwrap().is_some());
        assert!(e.retailer(OTHER, r.id).unwrap().is_none());
    }
    // A write in one tenant is not visible in the other.
    e.update_product(T, ADMIN, p1.id, None, item(m1, "ONE", 111))
        .await
        .unwrap();
    assert_eq!(e.product(T, p1.id).unwrap().unwrap().base_price, eur(111));
    assert_eq!(
        e.product(OTHER, p2.id).unwrap().unwrap().base_price,
        eur(200)
    );
}

/// A writer changes a product's price again and again; after each acknowledged write it
/// publishes the version. Readers on other threads load the published version before each
/// read and must never get an older product, nor a price that does not belong to its version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_racing_a_writer_never_go_back_in_time() {
    const WRITES: u64 = 150;
    const READERS: usize = 3;
    let f = setup().await;
    let e = Arc::clone(&f.engine);
    let m = verified_maker(&e, T, "Acme").await;
    let first = e
        .create_product(T, ADMIN, item(m, "HOT", 1000))
        .await
        .unwrap();
    let id = first.id;
    let price_of = |version: u64| eur(1000 + version as i64);
    let acked = Arc::new(AtomicU64::new(first.version));
    let done = Arc::new(AtomicBool::new(false));
    let before = e.read_cache_counts(CacheKind::Product);

    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (e, acked, done) = (Arc::clone(&e), Arc::clone(&acked), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !done.load(Ordering::SeqCst) {
                    let floor = acked.load(Ordering::SeqCst);
                    let p: Product = e.product(T, id).unwrap().unwrap();
                    assert!(
                        p.version >= floor,
                        "read version {} after version {floor} was acknowledged",
                        p.version
                    );
                    if p.version > first.version {
                        assert_eq!(p.base_price, price_of(p.version), "torn product");
                    }
                    reads += 1;
                }
                reads
            })
        })
        .collect();

    let mut version = first.version;
    for i in 0..WRITES {
        let mut input = item(m, "HOT", price_of(version + 1).minor);
        input.name = format!("Hot {}", version + 1);
        let p = e
            .update_product(T, ADMIN, id, Some(version), input)
            .await
            .unwrap();
        assert_eq!(p.version, version + 1);
        version = p.version;
        acked.store(version, Ordering::SeqCst);
        // The very next read on this thread sees it.
        assert_eq!(e.product(T, id).unwrap().unwrap().version, version);
        // Quiet moments let readers fill and hit the cache between writes.
        if i % 10 == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    done.store(true, Ordering::SeqCst);
    let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(reads > 0);
    let counts = delta(&e, CacheKind::Product, before);
    assert!(
        counts.hits > 0,
        "the readers never hit the cache: {counts:?}"
    );
    assert!(
        counts.misses >= WRITES,
        "every write must cost a miss: {counts:?}"
    );
    assert_eq!(e.product(T, id).unwrap().unwrap().version, version);
}

/// A caller that gives up on a write (a dropped future, as when an HTTP client disconnects)
/// must not leave a stale entry behind once the write commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_write_is_still_visible_once_committed() {
    let f = setup().await;
    let e = &*f.engine;
    let m = verified_maker(e, T, "Acme").await;
    let p = e
        .create_product(T, ADMIN, item(m, "A-1", 1000))
        .await
        .unwrap();
    read_twice(e, CacheKind::Product, || e.product(T, p.id).unwrap());
    {
        let write = e.update_product(T, ADMIN, p.id, None, item(m, "A-1", 4242));
        tokio::pin!(write);
        // Poll once (the command is submitted), then drop it.
        let polled = futures_poll_once(write.as_mut()).await;
        assert!(
            polled.is_none(),
            "a durable write cannot finish in one poll"
        );
    }
    // Wait for the write to land, reading through the cache every time: the old price may be
    // read until then, the new one from then on, never the old one again.
    let mut seen_new = false;
    for _ in 0..2000 {
        let price = e.product(T, p.id).unwrap().unwrap().base_price;
        if price == eur(4242) {
            seen_new = true;
        } else {
            assert!(!seen_new, "went back to the old price");
            assert_eq!(price, eur(1000));
        }
        if seen_new && e.product(T, p.id).unwrap().unwrap().base_price == eur(4242) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert!(seen_new, "the abandoned write never became visible");
    // Once the write's task has ended its mark, the new value is cached again.
    let mut hits = 0;
    for _ in 0..1000 {
        let before = e.read_cache_counts(CacheKind::Product);
        assert_eq!(e.product(T, p.id).unwrap().unwrap().base_price, eur(4242));
        hits = delta(e, CacheKind::Product, before).hits;
        if hits == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert_eq!(hits, 1, "the product was never cached again");
}

/// Polls a future once: `Some(output)` if it finished, `None` if it is pending.
async fn futures_poll_once<F: std::future::Future + Unpin>(mut future: F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match std::pin::Pin::new(&mut future).poll(cx) {
            std::task::Poll::Ready(output) => Some(output),
            std::task::Poll::Pending => None,
        })
    })
    .await
}
