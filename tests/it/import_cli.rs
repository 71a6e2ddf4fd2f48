//! `mercato import`: the engine's CSV import of products, offline, through the write path.

use crate::support::{assert_refused, mercato, run_to_exit, write_file};
use mercato_engine::catalog::{ManufacturerInput, ProductQuery};
use mercato_engine::platform::NewTenant;
use mercato_engine::tables::CountryCode;
use mercato_engine::{Actor, Engine, EngineConfig, TenantId};
use std::path::Path;

/// A data directory with tenant `acme` and one manufacturer; returns the tenant and the
/// manufacturer's id.
async fn data_dir_with_a_manufacturer(data_dir: &Path) -> (TenantId, u64) {
    let engine = Engine::open(EngineConfig::new(data_dir)).expect("open engine");
    let token = engine
        .init_platform()
        .await
        .expect("init platform")
        .expect("fresh platform");
    let platform = engine
        .authenticate(token.expose_secret())
        .expect("platform principal");
    let tenant = engine
        .platform_create_tenant(
            &platform,
            NewTenant {
                slug: "acme".into(),
                name: "Acme Wholesale".into(),
                admin_name: "Ada Admin".into(),
                admin_email: "admin@acme.example".into(),
                admin_password: "correct horse battery staple".into(),
            },
        )
        .await
        .expect("tenant")
        .tenant;
    let manufacturer = engine
        .create_manufacturer(
            tenant,
            Actor::System,
            ManufacturerInput {
                name: "Acme Tools".into(),
                country: CountryCode::parse("DE").expect("country"),
            },
        )
        .await
        .expect("manufacturer")
        .id;
    engine.shutdown().expect("close engine");
    (tenant, manufacturer)
}

fn csv(manufacturer_id: u64, rows: usize, bad_row: Option<usize>) -> String {
    let mut text =
        String::from("manufacturer_id,sku,name,base_price,case_pack,min_order_qty,tiers\n");
    for i in 0..rows {
        let price = if bad_row == Some(i) { "free" } else { "1.50" };
        text.push_str(&format!(
            "{manufacturer_id},CLI-{i},\"Bolt, size {i}\",{price},10,20,100:1.25\n"
        ));
    }
    text
}

/// The SKUs of the tenant's products, in id order.
fn skus(data_dir: &Path, tenant: TenantId) -> Vec<String> {
    let engine = Engine::open(EngineConfig::new(data_dir)).expect("open engine");
    let mut skus = Vec::new();
    let mut query = ProductQuery {
        limit: 500,
        ..ProductQuery::default()
    };
    loop {
        let page = engine.list_products(tenant, &query).expect("list");
        skus.extend(page.items.into_iter().map(|p| p.sku));
        match page.next_after {
            Some(after) => query.after = Some(after),
            None => break,
        }
    }
    engine.shutdown().expect("close engine");
    skus
}

fn import(data_dir: &Path, file: &Path, mode: Option<&str>) -> crate::support::Finished {
    let mut command = mercato();
    command
        .arg("import")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--tenant")
        .arg("ACME")
        .arg("--file")
        .arg(file);
    if let Some(mode) = mode {
        command.arg("--mode").arg(mode);
    }
    run_to_exit(command)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_writes_a_csv_file_of_products_and_reports_bad_rows_by_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let (tenant, manufacturer) = data_dir_with_a_manufacturer(&data_dir).await;

    // One invalid row (line 4: the header is line 1) voids the whole file by default.
    let bad = write_file(dir.path(), "bad.csv", &csv(manufacturer, 5, Some(2)));
    let refused = import(&data_dir, &bad, None);
    assert_eq!(refused.status.code(), Some(1), "{}", refused.stderr);
    assert!(
        refused.stdout.contains("line 4 (base_price)"),
        "{}",
        refused.stdout
    );
    assert!(
        refused.stderr.contains("nothing was written"),
        "{}",
        refused.stderr
    );
    assert!(skus(&data_dir, tenant).is_empty());

    // A valid file is written, every row.
    let good = write_file(dir.path(), "good.csv", &csv(manufacturer, 1_200, None));
    let done = import(&data_dir, &good, Some("file"));
    assert!(done.status.success(), "{}\n{}", done.stdout, done.stderr);
    assert!(
        done.stdout
            .contains("1200 rows read: 1200 created, 0 updated, 1200 written, 0 invalid"),
        "{}",
        done.stdout
    );
    let written = skus(&data_dir, tenant);
    assert_eq!(written.len(), 1_200);
    assert_eq!(written[0], "CLI-0");
    assert_eq!(written[1_199], "CLI-1199");

    // Importing it again creates nothing new; in batch mode a bad row skips its
    // batch only (the file is smaller than one batch, so nothing new is written).
    let again = import(&data_dir, &good, Some("batch"));
    assert!(again.status.success(), "{}\n{}", again.stdout, again.stderr);
    assert!(again.stdout.contains("0 created"), "{}", again.stdout);
    let batch = import(&data_dir, &bad, Some("batch"));
    assert_eq!(batch.status.code(), Some(1), "{}", batch.stderr);
    assert!(
        batch
            .stderr
            .contains("the batches holding them were not written"),
        "{}",
        batch.stderr
    );
    assert_eq!(skus(&data_dir, tenant).len(), 1_200);

    // An unknown tenant is refused cleanly.
    let mut command = mercato();
    command
        .arg("import")
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--tenant")
        .arg("nobody")
        .arg("--file")
        .arg(&good);
    assert_refused(&run_to_exit(command), "--tenant nobody");
}
