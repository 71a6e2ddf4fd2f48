//! Measures the CSV product import through the write path: generates a file of N products
//! (default 100,000; pass another count as the first argument), imports it into a fresh data
//! directory in `WholeFile` mode, then re-imports it (every row an unchanged upsert) and exports
//! it. Run with:
//!
//! ```text
//! cargo run --release -p mercato-engine --example import_bench [-- ROWS]
//! ```

use mercato_engine::catalog::{
    CategoryInput, ImportMode, ImportPhase, ImportProgress, ManufacturerInput, ProductQuery,
};
use mercato_engine::tables::{CountryCode, VerificationStatus};
use mercato_engine::{Actor, Engine, EngineConfig, TenantId};
use std::fmt::Write as _;
use std::time::Instant;

const TENANT: TenantId = TenantId(1);
const MANUFACTURERS: u64 = 50;
const CATEGORIES: u64 = 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: u32 = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 100_000,
    };
    let dir = tempfile::tempdir()?;
    let engine = Engine::open(EngineConfig::new(dir.path()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        engine.create_tenant(TENANT, "Bench").await?;
        for i in 0..MANUFACTURERS {
            let m = engine
                .create_manufacturer(
                    TENANT,
                    Actor::System,
                    ManufacturerInput {
                        name: format!("Manufacturer {i}"),
                        country: CountryCode::parse("DE").expect("valid code"),
                    },
                )
                .await?;
            engine
                .set_manufacturer_verification(
                    TENANT,
                    Actor::System,
                    m.id,
                    VerificationStatus::Verified,
                )
                .await?;
        }
        for i in 0..CATEGORIES {
            engine
                .create_category(
                    TENANT,
                    Actor::System,
                    CategoryInput {
                        parent: None,
                        name: format!("Category {i}"),
                        slug: format!("category-{i}"),
                    },
                )
                .await?;
        }
        Ok::<_, mercato_engine::EngineError>(())
    })?;

    let csv = generate(rows);
    println!(
        "generated {rows} rows, {:.1} MiB",
        csv.len() as f64 / (1 << 20) as f64
    );
    let writing_started = std::cell::Cell::new(None::<Instant>);
    let progress = |p: ImportProgress| {
        if p.phase == ImportPhase::Writing && writing_started.get().is_none() {
            writing_started.set(Some(Instant::now()));
        }
        if p.phase == ImportPhase::Writing && p.rows_written.is_multiple_of(20_000) {
            eprintln!("  written {} / {:?}", p.rows_written, p.rows_total);
        }
    };

    let started = Instant::now();
    let report = engine.import_products_csv(
        TENANT,
        Actor::System,
        csv.as_bytes(),
        ImportMode::WholeFile,
        &progress,
    )?;
    let first = started.elapsed();
    let validation = writing_started
        .get()
        .map_or(first, |w| w.duration_since(started));
    assert!(report.is_complete(), "import failed: {report:?}");
    assert_eq!(report.created, u64::from(rows));
    println!(
        "import (new products):       {rows} rows in {:.2} s = {:.0} rows/s ({} batches)",
        first.as_secs_f64(),
        f64::from(rows) / first.as_secs_f64(),
        report.batches.len()
    );
    println!(
        "  of which validation {:.2} s, writing {:.2} s",
        validation.as_secs_f64(),
        (first - validation).as_secs_f64()
    );

    let started = Instant::now();
    let report = engine.import_products_csv(
        TENANT,
        Actor::System,
        csv.as_bytes(),
        ImportMode::WholeFile,
        &|_| {},
    )?;
    let again = started.elapsed();
    assert!(report.is_complete() && report.created == 0 && report.updated == 0);
    println!(
        "re-import (unchanged rows):  {rows} rows in {:.2} s = {:.0} rows/s",
        again.as_secs_f64(),
        f64::from(rows) / again.as_secs_f64()
    );

    let started = Instant::now();
    let mut out = Vec::with_capacity(csv.len());
    let exported = engine.export_products_csv(TENANT, &ProductQuery::default(), &mut out)?;
    let export = started.elapsed();
    println!(
        "export:                      {} rows in {:.2} s = {:.0} rows/s",
        exported.rows,
        export.as_secs_f64(),
        exported.rows as f64 / export.as_secs_f64()
    );
    engine.shutdown()?;
    Ok(())
}

/// A realistic file: every column used, prices with tiers, a few attributes.
fn generate(rows: u32) -> String {
    let mut csv = String::from(
        "manufacturer_id,sku,name,base_price,description,category_id,unit_of_measure,case_pack,min_order_qty,tiers,status,attr.colour,attr.material\n",
    );
    let colours = ["red", "green", "blue", "black", "white"];
    let materials = ["steel", "oak", "plastic", "aluminium"];
    for i in 0..rows {
        let manufacturer = 1 + u64::from(i) % MANUFACTURERS;
        let category = 1 + u64::from(i) % CATEGORIES;
        let base = 500 + i % 20_000;
        let _ = writeln!(
            csv,
            "{manufacturer},SKU-{i:08},\"Product {i}, industrial grade\",{}.{:02},\"Durable product number {i} for wholesale buyers.\",{category},each,{pack},{pack},{}:{}.{:02}|{}:{}.{:02},{},{},{}",
            base / 100,
            base % 100,
            pack_of(i) * 10,
            (base * 9 / 10) / 100,
            (base * 9 / 10) % 100,
            pack_of(i) * 100,
            (base * 8 / 10) / 100,
            (base * 8 / 10) % 100,
            if i % 4 == 0 { "draft" } else { "active" },
            colours[(i % 5) as usize],
            materials[(i % 4) as usize],
            pack = pack_of(i),
        );
    }
    csv
}

fn pack_of(i: u32) -> u32 {
    [1, 6, 12, 24][(i % 4) as usize]
}
