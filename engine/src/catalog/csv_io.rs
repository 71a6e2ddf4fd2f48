//! Bulk product import and export as CSV.
//!
//! # File format
//!
//! UTF-8, comma-separated, RFC 4180 quoting, one header line naming the columns (in any
//! order). Columns:
//!
//! | column | required | meaning |
//! |---|---|---|
//! | `manufacturer_id` | yes | the manufacturer's id |
//! | `sku` | yes | with `manufacturer_id`, identifies the product: an existing one is updated, otherwise one is created |
//! | `name` | new products | |
//! | `base_price` | new products | decimal in the catalog currency, e.g. `12.50` |
//! | `description` | no | |
//! | `category_id` | no | empty: no category |
//! | `unit_of_measure` | no | default `each` |
//! | `case_pack` | no | default 1 |
//! | `min_order_qty` | no | default: the case pack |
//! | `tiers` | no | `min_qty:price` pairs separated by `\|`, e.g. `10:11.00\|100:9.75`; empty: no tiers |
//! | `status` | no | `draft`, `active` or `archived`; new products default to `draft` |
//! | `images` | no | SHA-256 hashes (64 hex digits) of stored blobs separated by `\|` |
//! | `attr.<name>` | no | one column per attribute; when any is present, a row's attributes are exactly its non-empty `attr.*` cells |
//!
//! A column that is absent keeps an existing product's value (or takes the default for a new
//! one). An empty cell does the same for `name`, `base_price`, `unit_of_measure`, `case_pack`,
//! `min_order_qty` and `status`, and clears the value for `description`, `category_id`,
//! `tiers` and `images`. Unknown columns are an error. The export writes every column, so an
//! exported file imports back unchanged.
//!
//! # Atomicity
//!
//! Every row is validated first, against a snapshot of the catalog and with the very checks
//! the write path runs (`products::plan_upsert`); duplicate `(manufacturer_id, sku)`
//! rows are errors. Writes then go through the write path in commands of
//! [`IMPORT_BATCH_ROWS`] rows, each command all-or-nothing.
//!
//! - [`ImportMode::WholeFile`]: if any row is invalid, nothing is written. Otherwise the rows
//!   are written batch after batch. A file larger than one batch cannot be one transaction
//!   (a command is bounded, and one huge command would stall every other writer of the
//!   shard), so the guarantee is: validation already ran every check, a batch can fail only on
//!   a storage error or a concurrent change that invalidates a row (say, a manufacturer losing
//!   its verification mid-import); the import stops at the first failed batch, and the report
//!   says exactly which batches (file lines) committed. Upserts are idempotent by
//!   `(manufacturer_id, sku)`, so importing the same file again completes it.
//! - [`ImportMode::PerBatch`]: the file is read, validated and written one batch of
//!   [`IMPORT_BATCH_ROWS`] rows at a time (memory stays bounded by a batch); a batch with an
//!   invalid row is skipped whole, the others commit.

use super::products::{ProductQuery, list_products, plan_upsert};
use super::{CatalogAction, CatalogOutput, ProductUpsert, settings};
use crate::command::{Action, Actor, Command, CommandOutput, Rejection};
use crate::money::{Currency, Money};
use crate::tables::{CatalogSettings, PriceTier, Product, ProductStatus};
use crate::{Engine, EngineError, TenantId};
use mercato_storage::{ExecuteError, TenantRead};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{Read, Write};

/// Rows per write command of an import.
pub const IMPORT_BATCH_ROWS: usize = 500;
/// Upper bound on the size of an imported file, in bytes.
pub const IMPORT_BYTES_MAX: u64 = 256 << 20;
/// Upper bound on the data rows of an imported file.
pub const IMPORT_ROWS_MAX: u64 = 200_000;
/// Upper bound on row errors listed in a report (the count of invalid rows is exact).
pub const IMPORT_ERRORS_MAX: usize = 1_000;
/// Upper bound on distinct attribute names an export writes as `attr.*` columns.
pub const EXPORT_ATTRIBUTE_COLUMNS_MAX: usize = 512;
/// The bounds of an import (the constants above; tests lower them).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ImportLimits {
    pub bytes_max: u64,
    pub rows_max: u64,
    pub batch_rows: usize,
}

impl ImportLimits {
    pub(crate) const DEFAULT: ImportLimits = ImportLimits {
        bytes_max: IMPORT_BYTES_MAX,
        rows_max: IMPORT_ROWS_MAX,
        batch_rows: IMPORT_BATCH_ROWS,
    };
}

/// Rows validated between two progress reports.
const PROGRESS_EVERY_ROWS: u64 = 1_000;

/// How much of an import one failure voids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportMode {
    /// Any invalid row: nothing is written.
    WholeFile,
    /// Any invalid row: its batch of [`IMPORT_BATCH_ROWS`] rows is not written.
    PerBatch,
}

/// What an import is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportPhase {
    Validating,
    Writing,
    Done,
}

/// Progress of an import, reported every thousand rows and after every batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportProgress {
    pub phase: ImportPhase,
    pub rows_read: u64,
    pub rows_invalid: u64,
    pub rows_written: u64,
    /// Rows to write, once known (after validation in `WholeFile` mode).
    pub rows_total: Option<u64>,
}

/// One problem of an imported file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportRowError {
    /// Line of the file where the row starts (the header is line 1).
    pub line: u64,
    /// The column (or the field, for checks spanning columns such as `tiers[1].min_qty`), when
    /// the problem is in one.
    pub column: Option<String>,
    pub message: String,
}

/// One write command of an import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportBatch {
    pub first_line: u64,
    pub last_line: u64,
    pub rows: u32,
    pub committed: bool,
    pub created: u32,
    pub updated: u32,
    /// Why the batch was not written: invalid rows (`PerBatch`), a rejection at write time or
    /// a storage error.
    pub error: Option<String>,
}

/// The outcome of an import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportReport {
    pub mode: ImportMode,
    /// Data rows read (the header not counted).
    pub rows_read: u64,
    pub rows_invalid: u64,
    /// Row and file errors, at most [`IMPORT_ERRORS_MAX`].
    pub errors: Vec<ImportRowError>,
    /// True when more errors occurred than are listed.
    pub errors_truncated: bool,
    /// The write commands, in file order (batches skipped in `PerBatch` mode included).
    pub batches: Vec<ImportBatch>,
    pub created: u64,
    pub updated: u64,
    /// Rows written (created, updated, or identical to the stored product).
    pub rows_committed: u64,
    /// Set when writing stopped before the end: the storage error or the rejection.
    pub aborted: Option<String>,
}

impl ImportReport {
    fn new(mode: ImportMode) -> Self {
        ImportReport {
            mode,
            rows_read: 0,
            rows_invalid: 0,
            errors: Vec::new(),
            errors_truncated: false,
            batches: Vec::new(),
            created: 0,
            updated: 0,
            rows_committed: 0,
            aborted: None,
        }
    }

    /// True when every row of the file was written.
    pub fn is_complete(&self) -> bool {
        self.errors.is_empty() && self.aborted.is_none() && self.rows_committed == self.rows_read
    }

    fn error(&mut self, line: u64, column: Option<String>, message: String) {
        if self.errors.len() < IMPORT_ERRORS_MAX {
            self.errors.push(ImportRowError {
                line,
                column,
                message,
            });
        } else {
            self.errors_truncated = true;
        }
    }
}

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportReport {
    pub rows: u64,
}

/// Column names that are not attributes.
const COLUMNS: [&str; 12] = [
    "manufacturer_id",
    "sku",
    "name",
    "base_price",
    "description",
    "category_id",
    "unit_of_measure",
    "case_pack",
    "min_order_qty",
    "tiers",
    "status",
    "images",
];
const ATTRIBUTE_PREFIX: &str = "attr.";

/// Where each known column is in the header.
struct Header {
    index: BTreeMap<&'static str, usize>,
    attributes: Vec<(String, usize)>,
}

fn parse_header(record: &csv::StringRecord) -> Result<Header, (Option<String>, String)> {
    let mut index = BTreeMap::new();
    let mut attributes: Vec<(String, usize)> = Vec::new();
    for (i, raw) in record.iter().enumerate() {
        let name = raw.trim();
        if let Some(&known) = COLUMNS.iter().find(|c| **c == name) {
            if index.insert(known, i).is_some() {
                return Err((Some(name.to_string()), "duplicate column".into()));
            }
        } else if let Some(attr) = name.strip_prefix(ATTRIBUTE_PREFIX) {
            if attributes.iter().any(|(a, _)| a == attr) {
                return Err((Some(name.to_string()), "duplicate column".into()));
            }
            attributes.push((attr.to_string(), i));
        } else {
            let shown: String = name.chars().take(64).collect();
            return Err((Some(shown), "unknown column".into()));
        }
    }
    for required in ["manufacturer_id", "sku"] {
        if !index.contains_key(required) {
            return Err((
                Some(required.to_string()),
                "required column is missing".into(),
            ));
        }
    }
    Ok(Header { index, attributes })
}

type CellError = (String, String);

impl Header {
    fn cell<'r>(&self, record: &'r csv::StringRecord, column: &str) -> Option<&'r str> {
        self.index
            .get(column)
            .and_then(|&i| record.get(i))
            .map(str::trim)
    }

    /// A cell that is absent or empty means "keep".
    fn kept<'r>(&self, record: &'r csv::StringRecord, column: &str) -> Option<&'r str> {
        self.cell(record, column).filter(|c| !c.is_empty())
    }

    fn row(
        &self,
        record: &csv::StringRecord,
        currency: Currency,
    ) -> Result<ProductUpsert, CellError> {
        let err = |column: &str, message: String| (column.to_string(), message);
        let int = |column: &str, text: &str| {
            text.parse::<u64>()
                .map_err(|_| err(column, format!("not a whole number: {}", shown(text))))
        };
        let qty = |column: &str, text: &str| {
            text.parse::<u32>()
                .map_err(|_| err(column, format!("not a quantity: {}", shown(text))))
        };
        let price = |column: &str, text: &str| {
            Money::parse_decimal(text, currency).map_err(|e| err(column, e.to_string()))
        };
        let manufacturer_id = int(
            "manufacturer_id",
            self.cell(record, "manufacturer_id").unwrap_or(""),
        )?;
        let mut row = ProductUpsert {
            manufacturer_id,
            sku: self.cell(record, "sku").unwrap_or("").to_string(),
            ..ProductUpsert::default()
        };
        row.name = self.kept(record, "name").map(str::to_string);
        row.base_price = match self.kept(record, "base_price") {
            Some(t) => Some(price("base_price", t)?),
            None => None,
        };
        row.description = self.cell(record, "description").map(str::to_string);
        row.category_id = match self.cell(record, "category_id") {
            None => None,
            Some("") => Some(None),
            Some(t) => Some(Some(int("category_id", t)?)),
        };
        row.unit_of_measure = self.kept(record, "unit_of_measure").map(str::to_string);
        row.case_pack = match self.kept(record, "case_pack") {
            Some(t) => Some(qty("case_pack", t)?),
            None => None,
        };
        row.min_order_qty = match self.kept(record, "min_order_qty") {
            Some(t) => Some(qty("min_order_qty", t)?),
            None => None,
        };
        row.tiers = match self.cell(record, "tiers") {
            None => None,
            Some(t) => Some(parse_tiers(t, currency).map_err(|m| err("tiers", m))?),
        };
        row.status = match self.kept(record, "status") {
            Some(t) => Some(ProductStatus::parse(t).ok_or_else(|| {
                err(
                    "status",
                    format!("must be draft, active or archived, not {}", shown(t)),
                )
            })?),
            None => None,
        };
        row.images = match self.cell(record, "images") {
            None => None,
            Some(t) => Some(parse_images(t).map_err(|m| err("images", m))?),
        };
        if !self.attributes.is_empty() {
            let mut attrs = BTreeMap::new();
            for (name, i) in &self.attributes {
                let value = record.get(*i).map_or("", str::trim);
                if !value.is_empty() {
                    attrs.insert(name.clone(), value.to_string());
                }
            }
            row.attributes = Some(attrs);
        }
        Ok(row)
    }
}

fn shown(text: &str) -> String {
    let short: String = text.chars().take(40).collect();
    format!("{short:?}")
}

fn parse_tiers(text: &str, currency: Currency) -> Result<Vec<PriceTier>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let mut tiers = Vec::new();
    for (i, part) in text.split('|').enumerate() {
        if i >= super::TIERS_MAX {
            return Err(format!("at most {} tiers", super::TIERS_MAX));
        }
        let Some((q, p)) = part.split_once(':') else {
            return Err(format!(
                "tier {} must be min_qty:price, not {}",
                i + 1,
                shown(part)
            ));
        };
        let min_qty = q
            .trim()
            .parse::<u32>()
            .map_err(|_| format!("tier {}: not a quantity: {}", i + 1, shown(q)))?;
        let unit_price =
            Money::parse_decimal(p, currency).map_err(|e| format!("tier {}: {e}", i + 1))?;
        tiers.push(PriceTier {
            min_qty,
            unit_price,
        });
    }
    Ok(tiers)
}

fn format_tiers(tiers: &[PriceTier]) -> String {
    tiers
        .iter()
        .map(|t| format!("{}:{}", t.min_qty, t.unit_price.to_decimal_string()))
        .collect::<Vec<_>>()
        .join("|")
}

fn parse_images(text: &str) -> Result<Vec<[u8; 32]>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (i, part) in text.split('|').enumerate() {
        if i >= super::IMAGES_MAX {
            return Err(format!("at most {} images", super::IMAGES_MAX));
        }
        let part = part.trim();
        let bad = || format!("image {} is not 64 hex digits", i + 1);
        if part.len() != 64 {
            return Err(bad());
        }
        let mut hash = [0u8; 32];
        for (j, byte) in hash.iter_mut().enumerate() {
            *byte = u8::from_str_radix(part.get(2 * j..2 * j + 2).ok_or_else(bad)?, 16)
                .map_err(|_| bad())?;
        }
        out.push(hash);
    }
    Ok(out)
}

fn format_images(images: &[[u8; 32]]) -> String {
    images
        .iter()
        .map(|h| h.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .collect::<Vec<_>>()
        .join("|")
}

/// Describes a rejection for a report: its field (if any) and a message.
fn describe(r: &Rejection) -> (Option<String>, String) {
    match r {
        Rejection::InvalidField { field, reason } => (Some(field.clone()), reason.clone()),
        other => (None, other.to_string()),
    }
}

/// Counts bytes read and fails once the file is larger than its bound.
struct Bounded<R> {
    inner: R,
    read: u64,
    max: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.max {
            return Err(std::io::Error::other(format!(
                "the file is larger than {} bytes",
                self.max
            )));
        }
        Ok(n)
    }
}

/// A validated row waiting to be written, with its line.
struct Pending {
    line: u64,
    row: ProductUpsert,
}

/// The validation state of an import in progress.
struct Validator<'a> {
    read: &'a TenantRead,
    settings: CatalogSettings,
    seen: HashSet<(u64, String)>,
}

impl Validator<'_> {
    /// Parses and checks one record; on failure records the error in the report.
    fn check(
        &mut self,
        header: &Header,
        record: &csv::StringRecord,
        line: u64,
        report: &mut ImportReport,
    ) -> Result<Option<ProductUpsert>, EngineError> {
        let row = match header.row(record, self.settings.currency) {
            Ok(row) => row,
            Err((column, message)) => {
                report.rows_invalid += 1;
                report.error(line, Some(column), message);
                return Ok(None);
            }
        };
        if let Err(r) = plan_upsert(self.read, &self.settings, &row)? {
            let (column, message) = describe(&r);
            report.rows_invalid += 1;
            report.error(line, column, message);
            return Ok(None);
        }
        if !self.seen.insert((row.manufacturer_id, row.sku.clone())) {
            report.rows_invalid += 1;
            report.error(
                line,
                Some("sku".into()),
                format!(
                    "manufacturer {} SKU {:?} appears on an earlier line",
                    row.manufacturer_id, row.sku
                ),
            );
            return Ok(None);
        }
        Ok(Some(row))
    }
}

impl Engine {
    /// Imports products from CSV (format and atomicity in the [module docs](crate::catalog::csv_io)). Blocking:
    /// reads the file and waits for each batch to be durable; from async code, call it through
    /// `tokio::task::spawn_blocking`.
    ///
    /// Returns a report in every case but a failure to take the initial snapshot: invalid rows,
    /// unreadable files and write failures are in the report.
    pub fn import_products_csv(
        &self,
        tenant: TenantId,
        actor: Actor,
        reader: impl Read,
        mode: ImportMode,
        progress: &dyn Fn(ImportProgress),
    ) -> Result<ImportReport, EngineError> {
        self.import_products_csv_with(tenant, actor, reader, mode, progress, ImportLimits::DEFAULT)
    }

    /// [`Engine::import_products_csv`] with explicit bounds.
    pub(crate) fn import_products_csv_with(
        &self,
        tenant: TenantId,
        actor: Actor,
        reader: impl Read,
        mode: ImportMode,
        progress: &dyn Fn(ImportProgress),
        limits: ImportLimits,
    ) -> Result<ImportReport, EngineError> {
        let mut report = ImportReport::new(mode);
        let read = self.storage.read(tenant)?;
        let mut validator = Validator {
            settings: settings(&read)?,
            read: &read,
            seen: HashSet::new(),
        };
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(Bounded {
                inner: reader,
                read: 0,
                max: limits.bytes_max,
            });
        let mut record = csv::StringRecord::new();
        let header = match csv.read_record(&mut record) {
            Ok(true) => parse_header(&record),
            Ok(false) => Err((None, "the file is empty".to_string())),
            Err(e) => Err((None, e.to_string())),
        };
        let header = match header {
            Ok(h) => h,
            Err((column, message)) => {
                report.error(1, column, message);
                progress(snapshot(&report, ImportPhase::Done, None));
                return Ok(report);
            }
        };
        let columns = record.len();
        let mut pending: Vec<Pending> = Vec::new();
        // The current batch (PerBatch mode): its first line, its rows, its invalid rows.
        let mut batch_first_line = 0u64;
        let mut batch_rows = 0u64;
        let mut batch_invalid = 0u64;
        let mut last_line = 1u64;
        loop {
            let parsed = csv.read_record(&mut record);
            let line = match &parsed {
                Ok(_) => record.position().map_or(last_line + 1, |p| p.line()),
                Err(e) => e.position().map_or(last_line + 1, |p| p.line()),
            };
            match parsed {
                Ok(false) => break,
                Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                    // Unreadable or too large: nothing after this point can be trusted.
                    let message = match e.into_kind() {
                        csv::ErrorKind::Io(io) => io.to_string(),
                        _ => "read error".to_string(),
                    };
                    report.error(line, None, message.clone());
                    report.aborted = Some(message);
                    break;
                }
                _ if report.rows_read >= limits.rows_max => {
                    let message = format!("the file has more than {} rows", limits.rows_max);
                    report.error(line, None, message.clone());
                    report.aborted = Some(message);
                    break;
                }
                Err(e) => {
                    report.rows_read += 1;
                    report.rows_invalid += 1;
                    batch_invalid += 1;
                    report.error(line, None, e.to_string());
                }
                Ok(true) => {
                    report.rows_read += 1;
                    if record.len() != columns {
                        report.rows_invalid += 1;
                        batch_invalid += 1;
                        report.error(
                            line,
                            None,
                            format!("has {} fields, the header has {columns}", record.len()),
                        );
                    } else {
                        match validator.check(&header, &record, line, &mut report)? {
                            Some(row) => pending.push(Pending { line, row }),
                            None => batch_invalid += 1,
                        }
                    }
                }
            }
            if batch_rows == 0 {
                batch_first_line = line;
            }
            batch_rows += 1;
            last_line = line;
            if report.rows_read.is_multiple_of(PROGRESS_EVERY_ROWS) {
                progress(snapshot(&report, ImportPhase::Validating, None));
            }
            if mode == ImportMode::PerBatch && batch_rows >= limits.batch_rows as u64 {
                self.flush_per_batch(
                    tenant,
                    &actor,
                    &mut pending,
                    (batch_first_line, last_line),
                    batch_invalid,
                    &mut report,
                    progress,
                );
                batch_rows = 0;
                batch_invalid = 0;
            }
        }
        match mode {
            ImportMode::PerBatch => {
                if batch_rows > 0 {
                    self.flush_per_batch(
                        tenant,
                        &actor,
                        &mut pending,
                        (batch_first_line, last_line),
                        batch_invalid,
                        &mut report,
                        progress,
                    );
                }
            }
            ImportMode::WholeFile => {
                if report.rows_invalid == 0 && report.aborted.is_none() {
                    let total = pending.len() as u64;
                    progress(snapshot(&report, ImportPhase::Writing, Some(total)));
                    let mut rows = pending.into_iter().peekable();
                    while rows.peek().is_some() {
                        let batch: Vec<Pending> = rows.by_ref().take(limits.batch_rows).collect();
                        let ok = self.write_batch(tenant, &actor, batch, &mut report);
                        progress(snapshot(&report, ImportPhase::Writing, Some(total)));
                        if !ok {
                            break;
                        }
                    }
                }
            }
        }
        progress(snapshot(&report, ImportPhase::Done, None));
        Ok(report)
    }

    /// In `PerBatch` mode: writes the pending rows if the batch had no invalid row, else
    /// records the batch as skipped.
    #[allow(clippy::too_many_arguments)]
    fn flush_per_batch(
        &self,
        tenant: TenantId,
        actor: &Actor,
        pending: &mut Vec<Pending>,
        (first_line, last_line): (u64, u64),
        invalid: u64,
        report: &mut ImportReport,
        progress: &dyn Fn(ImportProgress),
    ) {
        let batch = std::mem::take(pending);
        let skipped = if invalid > 0 {
            Some(format!("{invalid} invalid row(s); batch not written"))
        } else if report.aborted.is_some() {
            Some("import aborted; batch not written".to_string())
        } else {
            None
        };
        match skipped {
            Some(error) => report.batches.push(ImportBatch {
                first_line,
                last_line,
                rows: (batch.len() as u64 + invalid) as u32,
                committed: false,
                created: 0,
                updated: 0,
                error: Some(error),
            }),
            None if batch.is_empty() => {}
            None => {
                self.write_batch(tenant, actor, batch, report);
                progress(snapshot(report, ImportPhase::Writing, None));
            }
        }
    }

    /// Writes one batch through the write path; false when it failed (recorded in the
    /// report).
    fn write_batch(
        &self,
        tenant: TenantId,
        actor: &Actor,
        batch: Vec<Pending>,
        report: &mut ImportReport,
    ) -> bool {
        let first_line = batch.first().map_or(0, |p| p.line);
        let last_line = batch.last().map_or(0, |p| p.line);
        let rows_in_batch = batch.len();
        let lines: Vec<u64> = batch.iter().map(|p| p.line).collect();
        let command = Command {
            tenant,
            actor: actor.clone(),
            at_ms: crate::now_ms(),
            action: Action::Catalog(CatalogAction::UpsertProducts {
                rows: batch.into_iter().map(|p| p.row).collect(),
            }),
        };
        let mut outcome = ImportBatch {
            first_line,
            last_line,
            rows: rows_in_batch as u32,
            committed: false,
            created: 0,
            updated: 0,
            error: None,
        };
        let ok = match self.storage.execute_blocking(command) {
            Ok(CommandOutput::Catalog(CatalogOutput::Upserted { created, updated })) => {
                outcome.committed = true;
                outcome.created = created;
                outcome.updated = updated;
                report.created += u64::from(created);
                report.updated += u64::from(updated);
                report.rows_committed += rows_in_batch as u64;
                true
            }
            Ok(other) => {
                let message = format!("internal error: unexpected output {other:?}");
                outcome.error = Some(message.clone());
                report.aborted = Some(message);
                false
            }
            Err(ExecuteError::Rejected(r)) => {
                // A row became invalid between validation and writing (a concurrent change).
                let (field, message) = describe(&r);
                let line = field
                    .as_deref()
                    .and_then(|f| f.strip_prefix("rows["))
                    .and_then(|f| f.split(']').next())
                    .and_then(|i| i.parse::<usize>().ok())
                    .and_then(|i| lines.get(i).copied())
                    .unwrap_or(first_line);
                report.error(line, field, message.clone());
                outcome.error = Some(r.to_string());
                report.aborted = Some(format!("batch at lines {first_line}..={last_line}: {r}"));
                false
            }
            Err(ExecuteError::Storage(e)) => {
                outcome.error = Some(e.to_string());
                report.aborted = Some(e.to_string());
                false
            }
        };
        report.batches.push(outcome);
        ok
    }

    /// Writes the products matching `filter` (its `after` and `limit` are ignored) as CSV,
    /// in id order, from one consistent snapshot, in the import format. Blocking.
    pub fn export_products_csv(
        &self,
        tenant: TenantId,
        filter: &ProductQuery,
        writer: impl Write,
    ) -> Result<ExportReport, EngineError> {
        let read = self.storage.read(tenant)?;
        let mut query = filter.clone();
        query.limit = super::PAGE_LIMIT_MAX;
        // First pass: the attribute columns.
        let mut attributes = BTreeSet::new();
        for_each_product(&read, &query, |p| {
            attributes.extend(p.attributes.keys().cloned());
            if attributes.len() > EXPORT_ATTRIBUTE_COLUMNS_MAX {
                return Err(EngineError::Rejected(Rejection::Conflict {
                    code: "too_many_attribute_columns",
                    detail: format!(
                        "the products use more than {EXPORT_ATTRIBUTE_COLUMNS_MAX} attribute names"
                    ),
                }));
            }
            Ok(())
        })?;
        let mut out = csv::Writer::from_writer(writer);
        let mut header: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
        header.extend(attributes.iter().map(|a| format!("{ATTRIBUTE_PREFIX}{a}")));
        out.write_record(&header).map_err(std::io::Error::from)?;
        let mut rows = 0u64;
        for_each_product(&read, &query, |p| {
            let mut record = vec![
                p.manufacturer_id.to_string(),
                p.sku.clone(),
                p.name.clone(),
                p.base_price.to_decimal_string(),
                p.description.clone(),
                p.category_id.map(|c| c.to_string()).unwrap_or_default(),
                p.unit_of_measure.clone(),
                p.case_pack.to_string(),
                p.min_order_qty.to_string(),
                format_tiers(&p.tiers),
                p.status.as_str().to_string(),
                format_images(&p.images),
            ];
            record.extend(
                attributes
                    .iter()
                    .map(|a| p.attributes.get(a).cloned().unwrap_or_default()),
            );
            out.write_record(&record).map_err(std::io::Error::from)?;
            rows += 1;
            Ok(())
        })?;
        out.flush()?;
        Ok(ExportReport { rows })
    }
}

/// Calls `f` on every product matching `query`, page after page of one snapshot.
fn for_each_product(
    read: &TenantRead,
    query: &ProductQuery,
    mut f: impl FnMut(&Product) -> Result<(), EngineError>,
) -> Result<(), EngineError> {
    let mut query = query.clone();
    query.after = None;
    loop {
        let page = list_products(read, &query)?;
        for p in &page.items {
            f(p)?;
        }
        match page.next_after {
            Some(after) => query.after = Some(after),
            None => return Ok(()),
        }
    }
}

fn snapshot(report: &ImportReport, phase: ImportPhase, rows_total: Option<u64>) -> ImportProgress {
    ImportProgress {
        phase,
        rows_read: report.rows_read,
        rows_invalid: report.rows_invalid,
        rows_written: report.rows_committed,
        rows_total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ManufacturerInput;
    use crate::tables::{CountryCode, VerificationStatus};
    use crate::{Engine, EngineConfig};

    const T: TenantId = TenantId(5);

    /// An engine with a tenant and one verified manufacturer (id 1).
    fn engine() -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            engine.create_tenant(T, "CSV").await.unwrap();
            let m = engine
                .create_manufacturer(
                    T,
                    Actor::System,
                    ManufacturerInput {
                        name: "Acme".into(),
                        country: CountryCode::parse("NL").unwrap(),
                    },
                )
                .await
                .unwrap();
            engine
                .set_manufacturer_verification(T, Actor::System, m.id, VerificationStatus::Verified)
                .await
                .unwrap();
        });
        (dir, engine)
    }

    fn file(rows: u32, sku: impl Fn(u32) -> String) -> String {
        let mut csv = String::from("manufacturer_id,sku,name,base_price\n");
        for i in 0..rows {
            csv.push_str(&format!("1,{},Product number {i:05},12.50\n", sku(i)));
        }
        csv
    }

    fn products(engine: &Engine) -> usize {
        let mut query = ProductQuery {
            limit: 500,
            ..Default::default()
        };
        let mut n = 0;
        loop {
            let page = engine.list_products(T, &query).unwrap();
            n += page.items.len();
            match page.next_after {
                Some(a) => query.after = Some(a),
                None => return n,
            }
        }
    }

    fn run(engine: &Engine, csv: &str, mode: ImportMode, limits: ImportLimits) -> ImportReport {
        engine
            .import_products_csv_with(T, Actor::System, csv.as_bytes(), mode, &|_| {}, limits)
            .unwrap()
    }

    #[test]
    fn a_file_over_the_byte_bound_is_refused() {
        let (_dir, engine) = engine();
        let csv = file(600, |i| format!("S-{i}"));
        assert!(csv.len() > 16_384);
        let limits = ImportLimits {
            bytes_max: 10_000,
            rows_max: IMPORT_ROWS_MAX,
            batch_rows: 50,
        };
        let whole = run(&engine, &csv, ImportMode::WholeFile, limits);
        assert!(
            whole
                .aborted
                .as_deref()
                .unwrap()
                .contains("larger than 10000 bytes"),
            "{whole:?}"
        );
        assert!(whole.batches.is_empty());
        assert_eq!(products(&engine), 0);
        // Per batch: the batches read before the bound commit, the rest does not.
        let per_batch = run(&engine, &csv, ImportMode::PerBatch, limits);
        assert!(per_batch.aborted.is_some());
        let committed = per_batch.batches.iter().filter(|b| b.committed).count();
        assert!(committed >= 1, "{per_batch:?}");
        assert!(per_batch.rows_committed < 600);
        assert_eq!(products(&engine) as u64, per_batch.rows_committed);
        let last = per_batch.batches.last().unwrap();
        assert!(!last.committed);
        assert_eq!(
            last.error.as_deref(),
            Some("import aborted; batch not written")
        );
    }

    #[test]
    fn a_file_over_the_row_bound_is_refused() {
        let (_dir, engine) = engine();
        let limits = ImportLimits {
            bytes_max: IMPORT_BYTES_MAX,
            rows_max: 3,
            batch_rows: 2,
        };
        let report = run(
            &engine,
            &file(5, |i| format!("S-{i}")),
            ImportMode::WholeFile,
            limits,
        );
        assert_eq!(report.rows_read, 3);
        assert_eq!(report.errors[0].line, 5);
        assert!(report.errors[0].message.contains("more than 3 rows"));
        assert_eq!(products(&engine), 0);
        let report = run(
            &engine,
            &file(3, |i| format!("S-{i}")),
            ImportMode::WholeFile,
            limits,
        );
        assert!(report.is_complete(), "{report:?}");
        assert_eq!(report.batches.len(), 2);
        assert_eq!(products(&engine), 3);
    }

    #[test]
    fn the_error_list_is_bounded_but_the_count_is_exact() {
        let (_dir, engine) = engine();
        let csv = file(IMPORT_ERRORS_MAX as u32 + 100, |i| format!("bad sku {i}"));
        let report = run(&engine, &csv, ImportMode::WholeFile, ImportLimits::DEFAULT);
        assert_eq!(report.rows_invalid, IMPORT_ERRORS_MAX as u64 + 100);
        assert_eq!(report.errors.len(), IMPORT_ERRORS_MAX);
        assert!(report.errors_truncated);
        assert_eq!(products(&engine), 0);
    }

    #[test]
    fn tiers_and_images_cells() {
        let c = Currency::EUR;
        assert_eq!(
            parse_tiers("10:9.50|100:8", c).unwrap(),
            vec![
                PriceTier {
                    min_qty: 10,
                    unit_price: Money::new(950, c)
                },
                PriceTier {
                    min_qty: 100,
                    unit_price: Money::new(800, c)
                }
            ]
        );
        assert_eq!(parse_tiers("", c).unwrap(), vec![]);
        for bad in ["10", "x:1.00", "10:1.001", "10:1.00|", "-1:2.00"] {
            assert!(parse_tiers(bad, c).is_err(), "{bad}");
        }
        let many = vec!["1:1.00"; crate::catalog::TIERS_MAX + 1].join("|");
        assert!(parse_tiers(&many, c).is_err());
        let tiers = parse_tiers("10:9.50|100:8.00", c).unwrap();
        assert_eq!(parse_tiers(&format_tiers(&tiers), c).unwrap(), tiers);

        let images = vec![[0xAB; 32], [0x01; 32]];
        let text = format_images(&images);
        assert_eq!(text.len(), 64 * 2 + 1);
        assert_eq!(parse_images(&text).unwrap(), images);
        assert_eq!(parse_images("").unwrap(), Vec::<[u8; 32]>::new());
        for bad in ["abc", &"g".repeat(64), &"é".repeat(32)] {
            assert!(parse_images(bad).is_err(), "{bad}");
        }
    }
}
