//! End-to-end verification throughput for text-layer PDFs (issue 5): documents go through
//! `Engine::upload_document` (blob store, then the command that records the document and its
//! job), the worker pool extracts the text layer, runs the rules and writes the decision.
//!
//! Phase 1 (throughput) uploads every pre-generated document as fast as `--concurrency`
//! uploaders can and measures from the first upload to the last decision. Phase 2 (latency)
//! uploads new documents at a fixed rate, below the throughput, so that the queue is not
//! backlogged, and measures upload-to-decision latency. Generating the PDFs is not measured.
//!
//! ```text
//! cargo run --release -p mercato-engine --example verify_bench -- \
//!     --docs 20000 --manufacturers 200 --workers 2 --concurrency 32
//! ```
//!
//! Latency is measured two ways: as a client sees it (from the start of the upload call to
//! the poll that first reads the decided document; polls run every 20 ms) and as the engine
//! stamps it (the document's `decided_at_ms` minus the wall-clock time the upload started,
//! millisecond resolution). Under a backlog only the engine-stamped figures are exact: the
//! poller reads at most [`POLL_WINDOW_MAX`] undecided documents per round, oldest first, and
//! a manufacturer's onboarding jobs overtake the renewal jobs of verified ones (a higher
//! priority lane), so a renewal decided behind the window is seen late. When the queue is
//! short (the paced phase) the poller reads every undecided document each round.

use clap::Parser;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use mercato_engine::accounts::{Principal, Role};
use mercato_engine::catalog::ManufacturerInput;
use mercato_engine::jobs::QueueConfig;
use mercato_engine::tables::{CountryCode, Document, DocumentStatus};
use mercato_engine::verification::actions::DAY_MS;
use mercato_engine::verification::rules::DocumentType;
use mercato_engine::verification::samples;
use mercato_engine::verification::service::{VerificationConfig, retry_after};
use mercato_engine::{Actor, Engine, EngineConfig, TenantId};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const TENANT: TenantId = TenantId(1);
/// How often the poller looks for decided documents.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Undecided documents the poller reads per round at most, oldest upload first. Workers take
/// jobs in upload order, so documents past this window are almost never decided yet; the bound
/// keeps the poller from taking the CPU from the workers while thousands are queued.
const POLL_WINDOW_MAX: usize = 512;
/// The poller gives up when no document was decided for this long (a job stuck in retries).
const STALL_LIMIT: Duration = Duration::from_secs(60);
/// Uploads in flight at most in the paced phase (it is open-loop: a slow upload does not delay
/// the next one, up to this many).
const PACED_IN_FLIGHT_MAX: usize = 4_096;
/// Largest latency the histograms hold: one hour, in microseconds.
const LATENCY_US_MAX: u64 = 3_600_000_000;
/// Documents of the paced phase at most (`--rate` times `--paced-secs`, capped).
const PACED_DOCS_MAX: u64 = 200_000;
/// Seeds of phase 2 documents start here (phase 1 uses 1..=docs).
const PHASE2_SEED_BASE: u64 = 1 << 32;

#[derive(Parser, Debug)]
#[command(about = "End-to-end verification throughput and latency for text-layer PDFs")]
struct Args {
    /// Documents uploaded in the throughput phase.
    #[arg(long, default_value_t = 20_000)]
    docs: u64,
    /// Manufacturers the documents belong to.
    #[arg(long, default_value_t = 200)]
    manufacturers: u64,
    /// Verification worker threads (default: the engine's, one per core).
    #[arg(long, default_value_t = QueueConfig::default().workers)]
    workers: usize,
    /// Concurrent uploaders in the throughput phase.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Uploads per second in the paced phase (default: half the measured throughput).
    #[arg(long)]
    rate: Option<f64>,
    /// Length of the paced phase in seconds.
    #[arg(long, default_value_t = 20)]
    paced_secs: u64,
    /// Shards of the fresh data directory.
    #[arg(long, default_value_t = 2)]
    shards: u16,
}

fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let command: Vec<String> = std::env::args().collect();
    println!("command: {}", command.join(" "));
    println!("load average at start: {}", loadavg());
    if !(1..=1_000_000).contains(&args.docs) || args.manufacturers == 0 || args.concurrency == 0 {
        return Err("--docs must be 1..=1000000, --manufacturers and --concurrency > 0".into());
    }

    let dir = tempfile::tempdir()?;
    let mut engine_config = EngineConfig::new(dir.path());
    engine_config.shards_initial = args.shards;
    let engine = Arc::new(Engine::open(engine_config)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    let makers = runtime.block_on(setup(&engine, args.manufacturers))?;
    engine.start_verification(VerificationConfig {
        queue: QueueConfig {
            workers: args.workers,
            // Two jobs per upload at most (its own and the tenant's first lifecycle job).
            backlog_max: ((args.docs + PACED_DOCS_MAX) * 2 + 1_000) as usize,
            ..QueueConfig::default()
        },
        ..VerificationConfig::default()
    })?;
    println!(
        "engine: {} shards, {} verification workers; {} manufacturers; {} uploaders",
        args.shards, args.workers, args.manufacturers, args.concurrency
    );

    let today = (mercato_engine::now_ms() / DAY_MS) as i64;
    let docs = generate(&makers, 1, args.docs, today);
    let bytes_total: usize = docs.iter().map(|d| d.bytes.len()).sum();
    println!(
        "generated {} PDFs, {:.1} KiB on average",
        docs.len(),
        bytes_total as f64 / docs.len().max(1) as f64 / 1024.0
    );

    // Phase 1: everything at once.
    println!(
        "\nphase 1: {} documents, {} concurrent uploaders",
        args.docs, args.concurrency
    );
    let poller = Poller::start(Arc::clone(&engine), args.docs);
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let uploads = runtime.block_on(upload_all(
        Arc::clone(&engine),
        docs,
        args.concurrency,
        poller.sender(),
    ));
    let report = poller.finish()?;
    let uploads = uploads?;
    let wall = report.last_decided.map_or(Duration::ZERO, |t| t - started);
    let decided = report.decided();
    let per_second = decided as f64 / wall.as_secs_f64().max(1e-9);
    println!(
        "uploads acknowledged after {:.2} s ({:.0}/s)",
        uploads.all_acked.as_secs_f64(),
        uploads.created as f64 / uploads.all_acked.as_secs_f64().max(1e-9)
    );
    uploads.print();
    println!(
        "decided {decided} documents in {:.2} s (first upload to last decision): {per_second:.0} docs/s = {:.0} docs/hour = {:.2}x the goal of 500,000/hour",
        wall.as_secs_f64(),
        per_second * 3_600.0,
        per_second * 3_600.0 / 500_000.0
    );
    print_cpu(cpu_before, decided);
    println!(
        "upload-to-decision latency (backlogged: every document waits behind the whole queue):"
    );
    report.print();

    // Phase 2: paced below the throughput.
    let rate = args.rate.unwrap_or(per_second / 2.0);
    if !(rate.is_finite() && rate > 0.0) {
        return Err(format!("paced rate {rate} is not a positive number").into());
    }
    let paced_count = ((rate * args.paced_secs as f64).round() as u64).clamp(1, PACED_DOCS_MAX);
    println!(
        "\nphase 2: {paced_count} documents at {rate:.0}/s (~{} s)",
        args.paced_secs
    );
    let docs = generate(&makers, PHASE2_SEED_BASE, paced_count, today);
    let poller = Poller::start(Arc::clone(&engine), paced_count);
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let uploads = runtime.block_on(upload_paced(
        Arc::clone(&engine),
        docs,
        rate,
        poller.sender(),
    ));
    let report = poller.finish()?;
    let uploads = uploads?;
    let wall = report.last_decided.map_or(Duration::ZERO, |t| t - started);
    println!(
        "uploaded {} in {:.2} s ({:.0}/s achieved); last decision after {:.2} s",
        uploads.created,
        uploads.all_acked.as_secs_f64(),
        uploads.created as f64 / uploads.all_acked.as_secs_f64().max(1e-9),
        wall.as_secs_f64()
    );
    uploads.print();
    print_cpu(cpu_before, report.decided());
    println!(
        "queue while paced: at most {} jobs ready, oldest ready job at most {} ms old",
        report.ready_max, report.oldest_ready_ms_max
    );
    println!("upload-to-decision latency (paced, not backlogged; the goal is p95 < 2 s):");
    report.print();
    let p95 = report.client_us.value_at_quantile(0.95) as f64 / 1e6;
    println!(
        "paced p95 {p95:.3} s against 2 s: {}",
        if p95 < 2.0 { "met" } else { "not met" }
    );

    println!("\nload average at end: {}", loadavg());
    drop(runtime);
    engine.shutdown()?;
    Ok(())
}

/// CPU seconds (user + system) this process used so far, from `/proc/self/stat`.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name in parentheses; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    // Clock ticks; 100 per second on Linux.
    Some((user + system) / 100.0)
}

/// Prints the CPU time the process used since `before`, per decided document.
fn print_cpu(before: Option<f64>, decided: u64) {
    if let (Some(before), Some(after)) = (before, cpu_seconds()) {
        let used = after - before;
        println!(
            "process CPU: {used:.2} s (user + system, all threads) = {:.0} us per decided document",
            used * 1e6 / decided.max(1) as f64
        );
    }
}

/// The first line of `/proc/loadavg`, or why it could not be read.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("unavailable ({e})"))
}

/// A manufacturer and what its documents say about it.
struct Maker {
    id: u64,
    principal: Principal,
    name: String,
    country: [u8; 2],
    registration_number: String,
    tax_number: String,
}

const COUNTRIES: [[u8; 2]; 5] = [*b"DE", *b"FR", *b"GB", *b"NL", *b"US"];

/// A company name of `country`, distinct for each `n` below 144 per country.
fn company_name(country: [u8; 2], n: u64) -> String {
    let (stems, trades, forms): (&[&str], &[&str], &[&str]) = match &country {
        b"DE" => (
            &[
                "Rheinwerk",
                "Nordstahl",
                "Alpenland",
                "Elbtal",
                "Schwarzwald",
                "Hansa",
                "Mainfranken",
                "Weserberg",
                "Isartal",
                "Ruhrmetall",
                "Spreewald",
                "Bodensee",
            ],
            &[
                "Maschinenbau",
                "Verpackung",
                "Elektrotechnik",
                "Kunststofftechnik",
                "Lebensmittel",
                "Werkzeugbau",
            ],
            &["GmbH", "AG"],
        ),
        b"FR" => (
            &[
                "Loire",
                "Provence",
                "Atlantique",
                "Vosges",
                "Garonne",
                "Bretagne",
                "Jura",
                "Normandie",
                "Rhône",
                "Champagne",
                "Savoie",
                "Lorraine",
            ],
            &[
                "Industries",
                "Emballages",
                "Distribution",
                "Textiles",
                "Équipements",
                "Alimentaire",
            ],
            &["SAS", "SARL"],
        ),
        b"GB" => (
            &[
                "Pennine", "Thames", "Cotswold", "Severn", "Highland", "Mersey", "Wessex",
                "Humber", "Tyneside", "Chiltern", "Solent", "Fenland",
            ],
            &[
                "Engineering",
                "Packaging",
                "Foods",
                "Textiles",
                "Components",
                "Supplies",
            ],
            &["Ltd", "Limited"],
        ),
        b"NL" => (
            &[
                "Delta",
                "Zuiderzee",
                "Veluwe",
                "Maasland",
                "Noordkaap",
                "Brabant",
                "Amstel",
                "Waddenzee",
                "Rijnmond",
                "Kennemer",
                "Drenthe",
                "Zeeland",
            ],
            &[
                "Techniek",
                "Verpakkingen",
                "Logistiek",
                "Voeding",
                "Kunststoffen",
                "Handel",
            ],
            &["B.V.", "N.V."],
        ),
        _ => (
            &[
                "Great Lakes",
                "Blue Ridge",
                "Cascade",
                "Prairie",
                "Keystone",
                "Redwood",
                "Lone Star",
                "Bayou",
                "Granite State",
                "Mesa",
                "Hudson Valley",
                "Gulf Coast",
            ],
            &[
                "Manufacturing",
                "Packaging",
                "Industrial Supply",
                "Foods",
                "Plastics",
                "Tooling",
            ],
            &["Inc.", "LLC"],
        ),
    };
    let len = |s: &[&str]| s.len() as u64;
    let stem = stems[(n % len(stems)) as usize];
    let trade = trades[((n / len(stems)) % len(trades)) as usize];
    let form = forms[((n / (len(stems) * len(trades))) % len(forms)) as usize];
    let round = n / (len(stems) * len(trades) * len(forms));
    if round == 0 {
        format!("{stem} {trade} {form}")
    } else {
        format!("{stem} {trade} {} {form}", round + 1)
    }
}

/// Creates the tenant and its manufacturers.
async fn setup(engine: &Engine, count: u64) -> Result<Vec<Maker>, BoxError> {
    engine.create_tenant(TENANT, "Bench Distribution").await?;
    let mut makers = Vec::new();
    for n in 0..count {
        let country = COUNTRIES[(n % COUNTRIES.len() as u64) as usize];
        let name = company_name(country, n / COUNTRIES.len() as u64);
        let code = std::str::from_utf8(&country)?;
        let created = engine
            .create_manufacturer(
                TENANT,
                Actor::System,
                ManufacturerInput {
                    name: name.clone(),
                    country: CountryCode::parse(code)
                        .ok_or_else(|| format!("bad country code {code}"))?,
                },
            )
            .await?;
        // One registration and tax number per company, as on real papers.
        let numbers_seed = 7_000 + n;
        makers.push(Maker {
            id: created.id,
            principal: Principal::user(
                TENANT,
                1_000 + created.id,
                Role::ManufacturerUser {
                    manufacturer_id: created.id,
                },
            ),
            name,
            country,
            registration_number: samples::valid_registration_number(country, numbers_seed),
            tax_number: samples::valid_tax_number(country, numbers_seed),
        });
    }
    Ok(makers)
}

/// A generated document, ready to upload.
struct Prepared {
    manufacturer_id: u64,
    principal: Principal,
    doc_type: DocumentType,
    file_name: String,
    bytes: Vec<u8>,
}

/// SplitMix64: picks a document's manufacturer and type from its seed.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The mix of types: registration 30 %, tax 25 %, insurance 20 %, bank letter 15 %, identity
/// 10 % ("other" is always reviewed by a person, so it is left out).
fn doc_type_of(seed: u64) -> DocumentType {
    match mix(seed ^ 0x7479_7065) % 20 {
        0..=5 => DocumentType::BusinessRegistration,
        6..=10 => DocumentType::TaxCertificate,
        11..=14 => DocumentType::InsuranceCertificate,
        15..=17 => DocumentType::BankLetter,
        _ => DocumentType::IdentityDocument,
    }
}

fn prepare(makers: &[Maker], seed: u64, today: i64) -> Prepared {
    let maker_index = (mix(seed) % makers.len() as u64) as usize;
    let maker = &makers[maker_index];
    let doc_type = doc_type_of(seed);
    let mut spec = samples::sample_spec(seed, doc_type, &maker.name, maker.country, today);
    spec.registration_number = maker.registration_number.clone();
    spec.tax_number = maker.tax_number.clone();
    Prepared {
        manufacturer_id: maker.id,
        principal: maker.principal.clone(),
        doc_type,
        file_name: format!("document-{seed}.pdf"),
        bytes: samples::pdf(&spec),
    }
}

/// Generates `count` PDFs with seeds `first_seed..`, on every core (not measured).
fn generate(makers: &[Maker], first_seed: u64, count: u64, today: i64) -> Vec<Prepared> {
    let bar = progress_bar(count, "generating");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let per_thread = count.div_ceil(threads);
    let docs = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let bar = bar.clone();
                scope.spawn(move || {
                    let from = t * per_thread;
                    let to = (from + per_thread).min(count);
                    (from..to)
                        .map(|i| {
                            bar.inc(1);
                            prepare(makers, first_seed + i, today)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a generator thread panicked"))
            .collect()
    });
    bar.finish_and_clear();
    docs
}

fn progress_bar(len: u64, label: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{label:>10} [{{elapsed_precise}}] {{bar:40}} {{pos}}/{{len}} {{per_sec}} {{msg}}"
        ))
        .expect("a valid progress template"),
    );
    bar
}

/// An acknowledged upload, handed to the poller.
struct Acked {
    document_id: u64,
    started: Instant,
    started_ms: u64,
}

/// What the uploaders saw.
struct UploadStats {
    created: u64,
    /// The same bytes as an earlier document (not timed: it was decided before).
    duplicates: u64,
    /// Times the queue answered "backlogged" and the uploader waited.
    backlogged: u64,
    /// From the start of the phase until the last upload was acknowledged.
    all_acked: Duration,
    /// Upload call durations, microseconds.
    ack_us: Histogram<u64>,
}

impl UploadStats {
    fn new() -> UploadStats {
        UploadStats {
            created: 0,
            duplicates: 0,
            backlogged: 0,
            all_acked: Duration::ZERO,
            ack_us: latency_histogram(),
        }
    }

    fn merge(&mut self, other: &UploadStats) -> Result<(), BoxError> {
        self.created += other.created;
        self.duplicates += other.duplicates;
        self.backlogged += other.backlogged;
        self.ack_us.add(&other.ack_us)?;
        Ok(())
    }

    fn print(&self) {
        println!(
            "upload call (blob + durable document and job) ms: p50 {:.2} p95 {:.2} p99 {:.2} max {:.2}; {} duplicates, {} backlogged answers",
            ms(&self.ack_us, 0.50),
            ms(&self.ack_us, 0.95),
            ms(&self.ack_us, 0.99),
            self.ack_us.max() as f64 / 1e3,
            self.duplicates,
            self.backlogged
        );
    }
}

fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid histogram bounds")
}

fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1e3
}

fn record(histogram: &mut Histogram<u64>, us: u64) {
    histogram.saturating_record(us.clamp(1, LATENCY_US_MAX));
}

/// Uploads one document, waiting out "backlogged" answers; `None` for a duplicate.
async fn upload_one(
    engine: &Engine,
    doc: Prepared,
    stats: &mut UploadStats,
) -> Result<Option<Acked>, BoxError> {
    let started = Instant::now();
    let started_ms = mercato_engine::now_ms();
    loop {
        let result = engine
            .upload_document(
                &doc.principal,
                doc.manufacturer_id,
                doc.doc_type,
                &doc.file_name,
                doc.bytes.clone(),
            )
            .await;
        match result {
            Ok(uploaded) => {
                record(&mut stats.ack_us, started.elapsed().as_micros() as u64);
                if !uploaded.created {
                    stats.duplicates += 1;
                    return Ok(None);
                }
                stats.created += 1;
                return Ok(Some(Acked {
                    document_id: uploaded.document.id,
                    started,
                    started_ms,
                }));
            }
            Err(error) => match retry_after(&error) {
                Some(wait) => {
                    stats.backlogged += 1;
                    tokio::time::sleep(wait).await;
                }
                None => return Err(error.into()),
            },
        }
    }
}

/// Phase 1: `concurrency` uploaders take documents from one list until it is empty.
async fn upload_all(
    engine: Arc<Engine>,
    docs: Vec<Prepared>,
    concurrency: usize,
    acked: mpsc::Sender<Acked>,
) -> Result<UploadStats, BoxError> {
    let started = Instant::now();
    let docs = Arc::new(Mutex::new(docs.into_iter()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let engine = Arc::clone(&engine);
        let docs = Arc::clone(&docs);
        let acked = acked.clone();
        tasks.spawn(async move {
            let mut stats = UploadStats::new();
            loop {
                let next = docs.lock().map_err(|_| "document list poisoned")?.next();
                let Some(doc) = next else {
                    return Ok::<_, BoxError>(stats);
                };
                if let Some(ack) = upload_one(&engine, doc, &mut stats).await? {
                    // The poller stops only after this phase, so the send cannot fail.
                    let _ = acked.send(ack);
                }
            }
        });
    }
    drop(acked);
    let mut total = UploadStats::new();
    while let Some(joined) = tasks.join_next().await {
        total.merge(&joined??)?;
    }
    total.all_acked = started.elapsed();
    Ok(total)
}

/// Phase 2: one upload every `1 / rate` seconds, each in its own task (open-loop: a slow
/// upload does not hold back the next one).
async fn upload_paced(
    engine: Arc<Engine>,
    docs: Vec<Prepared>,
    rate: f64,
    acked: mpsc::Sender<Acked>,
) -> Result<UploadStats, BoxError> {
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(PACED_IN_FLIGHT_MAX));
    let in_flight_full = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let mut total = UploadStats::new();
    for (n, doc) in docs.into_iter().enumerate() {
        let due = started + interval.mul_f64(n as f64);
        tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
        let permit = match Arc::clone(&in_flight).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                in_flight_full.fetch_add(1, Ordering::Relaxed);
                Arc::clone(&in_flight).acquire_owned().await?
            }
        };
        let engine = Arc::clone(&engine);
        let acked = acked.clone();
        tasks.spawn(async move {
            let mut stats = UploadStats::new();
            if let Some(ack) = upload_one(&engine, doc, &mut stats).await? {
                let _ = acked.send(ack);
            }
            drop(permit);
            Ok::<_, BoxError>(stats)
        });
        while let Some(joined) = tasks.try_join_next() {
            total.merge(&joined??)?;
        }
    }
    drop(acked);
    while let Some(joined) = tasks.join_next().await {
        total.merge(&joined??)?;
    }
    total.all_acked = started.elapsed();
    let full = in_flight_full.load(Ordering::Relaxed);
    if full > 0 {
        println!(
            "warning: {full} uploads waited for one of {PACED_IN_FLIGHT_MAX} in flight: the pace was not kept"
        );
    }
    Ok(total)
}

/// What one phase's documents became.
struct PhaseReport {
    /// Upload start to the poll that read the decision, microseconds.
    client_us: Histogram<u64>,
    /// Upload start to the document's `decided_at_ms`, microseconds (millisecond resolution).
    engine_us: Histogram<u64>,
    statuses: HashMap<&'static str, u64>,
    /// Reasons given for documents that were not approved.
    reasons: HashMap<String, u64>,
    last_decided: Option<Instant>,
    /// Still undecided when the poller gave up.
    undecided: usize,
    ready_max: usize,
    /// The poller's own work: rounds, documents read and time spent reading.
    poll_rounds: u64,
    poll_reads: u64,
    poll_busy: Duration,
    oldest_ready_ms_max: u64,
}

impl PhaseReport {
    fn decided(&self) -> u64 {
        self.statuses.values().sum()
    }

    fn add(&mut self, acked: &Acked, document: &Document) {
        let now = Instant::now();
        record(
            &mut self.client_us,
            now.duration_since(acked.started).as_micros() as u64,
        );
        let decided_ms = document.decided_at_ms.unwrap_or(document.updated_at_ms);
        record(
            &mut self.engine_us,
            decided_ms.saturating_sub(acked.started_ms) * 1_000,
        );
        *self.statuses.entry(document.status.as_str()).or_default() += 1;
        if document.status != DocumentStatus::Approved {
            for reason in &document.reasons {
                *self.reasons.entry(reason.clone()).or_default() += 1;
            }
        }
        self.last_decided = Some(now);
    }

    fn print(&self) {
        for (label, histogram) in [
            ("client-observed (20 ms polls)", &self.client_us),
            ("engine-stamped (decided_at_ms)", &self.engine_us),
        ] {
            println!(
                "  {label:<31} ms: p50 {:.0} p95 {:.0} p99 {:.0} max {:.0} ({} documents)",
                ms(histogram, 0.50),
                ms(histogram, 0.95),
                ms(histogram, 0.99),
                histogram.max() as f64 / 1e3,
                histogram.len()
            );
        }
        let mut statuses: Vec<_> = self.statuses.iter().collect();
        statuses.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let statuses: Vec<String> = statuses
            .iter()
            .map(|(status, count)| format!("{status} {count}"))
            .collect();
        println!("  decisions: {}", statuses.join(", "));
        let mut reasons: Vec<_> = self.reasons.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (reason, count) in reasons.iter().take(5) {
            println!("    {count:>6} x {reason}");
        }
        println!(
            "  poller: {} rounds, {} document reads, {:.2} s reading",
            self.poll_rounds,
            self.poll_reads,
            self.poll_busy.as_secs_f64()
        );
        if self.undecided > 0 {
            println!(
                "  {} documents were still undecided after {} s without a decision",
                self.undecided,
                STALL_LIMIT.as_secs()
            );
        }
    }
}

/// A thread that reads uploaded documents until each is decided.
struct Poller {
    acked: mpsc::Sender<Acked>,
    thread: std::thread::JoinHandle<Result<PhaseReport, String>>,
}

impl Poller {
    fn start(engine: Arc<Engine>, expected: u64) -> Poller {
        let (acked, received) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("bench-poller".into())
            .spawn(move || poll(&engine, &received, expected))
            .expect("spawn the poller thread");
        Poller { acked, thread }
    }

    fn sender(&self) -> mpsc::Sender<Acked> {
        self.acked.clone()
    }

    /// Waits until every acknowledged document is decided (call after the uploads ended).
    fn finish(self) -> Result<PhaseReport, BoxError> {
        drop(self.acked);
        let report = self
            .thread
            .join()
            .map_err(|_| "the poller thread panicked")??;
        Ok(report)
    }
}

fn poll(
    engine: &Engine,
    received: &mpsc::Receiver<Acked>,
    expected: u64,
) -> Result<PhaseReport, String> {
    let admin = Principal::user(TENANT, 1, Role::TenantAdmin);
    let bar = progress_bar(expected, "decided");
    let mut report = PhaseReport {
        client_us: latency_histogram(),
        engine_us: latency_histogram(),
        statuses: HashMap::new(),
        reasons: HashMap::new(),
        last_decided: None,
        undecided: 0,
        ready_max: 0,
        poll_rounds: 0,
        poll_reads: 0,
        poll_busy: Duration::ZERO,
        oldest_ready_ms_max: 0,
    };
    let mut pending: VecDeque<Acked> = VecDeque::new();
    let mut uploaded = 0u64;
    let mut uploading = true;
    let mut last_progress = Instant::now();
    loop {
        while uploading {
            match received.try_recv() {
                Ok(acked) => {
                    uploaded += 1;
                    pending.push_back(acked);
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => uploading = false,
            }
        }
        if !uploading && pending.is_empty() {
            break;
        }
        let decided_before = report.decided();
        let round_started = Instant::now();
        report.poll_rounds += 1;
        let mut waiting = Vec::new();
        while waiting.len() < POLL_WINDOW_MAX {
            let Some(acked) = pending.pop_front() else {
                break;
            };
            report.poll_reads += 1;
            let document = engine
                .document(&admin, acked.document_id)
                .map_err(|e| format!("reading document {}: {e}", acked.document_id))?;
            if document.status == DocumentStatus::Processing {
                waiting.push(acked);
            } else {
                report.add(&acked, &document);
            }
        }
        report.poll_busy += round_started.elapsed();
        for acked in waiting.into_iter().rev() {
            pending.push_front(acked);
        }
        if let Some(stats) = engine.job_queue_stats() {
            report.ready_max = report.ready_max.max(stats.ready);
            report.oldest_ready_ms_max = report.oldest_ready_ms_max.max(stats.oldest_ready_ms);
        }
        if report.decided() > decided_before || pending.is_empty() {
            last_progress = Instant::now();
        } else if last_progress.elapsed() > STALL_LIMIT {
            report.undecided = pending.len();
            break;
        }
        bar.set_position(report.decided());
        bar.set_message(format!("({uploaded} uploaded)"));
        std::thread::sleep(POLL_INTERVAL);
    }
    bar.finish_and_clear();
    Ok(report)
}
