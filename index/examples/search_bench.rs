//! Search benchmark (issue 4): synthetic products with a realistic vocabulary, bulk indexing,
//! index size, commit latency, and query latency and throughput for a fixed query mix.
//!
//! ```text
//! cargo run --release -p mercato-index --example search_bench -- --docs 1000000
//!     [--tenants 1] [--queries 1000] [--threads 2] [--heap-mib 512] [--seed 42]
//!     [--dir PATH] [--csv FILE] [--queries-out FILE]
//! ```
//!
//! `--csv FILE` also writes the products as CSV and `--queries-out FILE` the query mix as TSV,
//! so `scripts/search-pg-compare.sh` can run the same data and queries against PostgreSQL.
//! Without `--dir` the index lives in a temporary directory removed at exit.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mercato_index::{
    IndexConfig, IndexOp, ProductDoc, ProductQuery, ProductSort, ShardIndex, WRITER_HEAP_BYTES_MAX,
};

const APPLY_BATCH: usize = 10_000;
const RESULT_LIMIT: usize = 20;
const PRICE_BANDS: [i64; 4] = [1_000, 5_000, 20_000, 100_000];

// ---- vocabulary ---------------------------------------------------------------------------------

const NOUNS: &[&str] = &[
    "hammer",
    "screwdriver",
    "wrench",
    "spanner",
    "pliers",
    "chisel",
    "saw",
    "drill",
    "sander",
    "grinder",
    "router",
    "planer",
    "jigsaw",
    "level",
    "tape",
    "ladder",
    "toolbox",
    "workbench",
    "clamp",
    "vise",
    "file",
    "rasp",
    "mallet",
    "crowbar",
    "knife",
    "cutter",
    "scissors",
    "stapler",
    "nailer",
    "glue",
    "sealant",
    "caulk",
    "paint",
    "brush",
    "roller",
    "primer",
    "varnish",
    "stain",
    "tile",
    "grout",
    "trowel",
    "bucket",
    "shovel",
    "rake",
    "hoe",
    "pruner",
    "hose",
    "nozzle",
    "sprinkler",
    "mower",
    "trimmer",
    "blower",
    "chainsaw",
    "axe",
    "hatchet",
    "wheelbarrow",
    "gloves",
    "goggles",
    "helmet",
    "mask",
    "boots",
    "vest",
    "jacket",
    "shirt",
    "trousers",
    "apron",
    "lamp",
    "bulb",
    "cable",
    "plug",
    "socket",
    "switch",
    "fuse",
    "battery",
    "charger",
    "adapter",
    "torch",
    "flashlight",
    "heater",
    "fan",
    "pump",
    "valve",
    "pipe",
    "fitting",
    "faucet",
    "sink",
    "toilet",
    "shower",
    "drain",
    "bolt",
    "nut",
    "screw",
    "washer",
    "nail",
    "anchor",
    "rivet",
    "hinge",
    "lock",
    "latch",
    "handle",
    "knob",
    "bracket",
    "shelf",
    "cabinet",
    "drawer",
    "door",
    "window",
    "frame",
    "panel",
    "board",
    "plank",
    "beam",
    "post",
    "fence",
    "gate",
    "mat",
    "rug",
    "curtain",
    "mirror",
    "hook",
    "rail",
    "chain",
    "rope",
    "strap",
    "tarp",
    "crate",
    "pallet",
    "cart",
    "trolley",
    "jack",
    "compressor",
    "generator",
    "welder",
    "multimeter",
    "thermostat",
];

const ADJECTIVES: &[&str] = &[
    "cordless",
    "electric",
    "manual",
    "professional",
    "compact",
    "adjustable",
    "stainless",
    "steel",
    "aluminium",
    "brass",
    "copper",
    "wooden",
    "plastic",
    "rubber",
    "fiberglass",
    "titanium",
    "carbon",
    "galvanized",
    "chrome",
    "magnetic",
    "folding",
    "telescopic",
    "waterproof",
    "insulated",
    "reinforced",
    "lightweight",
    "ergonomic",
    "industrial",
    "precision",
    "digital",
    "rechargeable",
    "portable",
    "outdoor",
    "indoor",
    "universal",
    "metric",
    "black",
    "white",
    "red",
    "blue",
    "green",
    "yellow",
    "orange",
    "grey",
    "silver",
    "large",
    "small",
    "medium",
    "mini",
    "wide",
    "narrow",
    "round",
    "square",
    "hexagonal",
    "flat",
    "curved",
    "angled",
    "double",
    "single",
    "heavy",
    "quick",
    "locking",
    "antislip",
    "fireproof",
    "weatherproof",
    "softgrip",
    "highspeed",
    "silent",
    "brushless",
    "hydraulic",
    "pneumatic",
    "laser",
    "solar",
    "vintage",
    "modular",
    "threaded",
    "tempered",
    "forged",
    "polished",
];

const USES: &[&str] = &[
    "workshop",
    "construction",
    "renovation",
    "garden",
    "kitchen",
    "bathroom",
    "automotive",
    "marine",
    "farm",
    "plumbing",
    "roofing",
    "flooring",
    "carpentry",
    "masonry",
    "welding",
    "electrical",
    "painting",
    "landscaping",
    "warehouse",
    "office",
    "school",
    "hospital",
    "restaurant",
    "hotel",
    "retail",
    "logistics",
    "demolition",
    "maintenance",
    "installation",
    "assembly",
    "repair",
    "cleaning",
    "storage",
    "transport",
    "camping",
    "fishing",
    "hunting",
];

const FILLER: &[&str] = &[
    "the",
    "and",
    "for",
    "with",
    "this",
    "that",
    "from",
    "your",
    "every",
    "easy",
    "durable",
    "reliable",
    "quality",
    "design",
    "use",
    "made",
    "daily",
    "long",
    "life",
    "fit",
    "tough",
    "safe",
    "strong",
    "comfortable",
    "grip",
    "finish",
    "coating",
    "resistant",
    "corrosion",
    "impact",
    "wear",
    "high",
    "low",
    "performance",
    "value",
    "set",
    "kit",
    "pack",
    "piece",
    "includes",
    "supplied",
    "ready",
    "tested",
    "certified",
    "standard",
    "range",
    "model",
    "series",
    "size",
    "length",
    "width",
    "weight",
    "capacity",
    "power",
    "speed",
    "battery",
    "motor",
    "blade",
    "tip",
    "head",
    "body",
    "case",
    "bag",
    "spare",
    "replacement",
    "accessory",
];

const TOP_CATEGORIES: &[&str] = &[
    "Hand tools",
    "Power tools",
    "Garden",
    "Plumbing",
    "Electrical",
    "Fasteners",
    "Paint",
    "Safety",
    "Storage",
    "Building materials",
    "Lighting",
    "Hardware",
];
const SUBCATEGORIES_PER_TOP: u64 = 6;
const LEAVES_PER_SUBCATEGORY: u64 = 5;

const SYLLABLES: &[&str] = &[
    "ka", "ro", "vel", "mar", "tek", "dor", "bri", "sto", "len", "fax", "gru", "hol", "zen", "qua",
    "pri", "mon", "tar", "vik", "sol", "ber", "lux", "nor", "ost", "wen", "dal", "rix",
];
const COMPANY_SUFFIXES: &[&str] = &["Tools", "Industries", "Works", "GmbH", "Supply", "Pro"];
const MANUFACTURERS: u64 = 400;

// ---- deterministic randomness -------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Skewed pick: early entries are much more frequent (a rough Zipf).
    fn skewed<'a>(&mut self, list: &[&'a str]) -> &'a str {
        let u = self.unit();
        list[((u * u) * list.len() as f64) as usize % list.len()]
    }
    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.below(list.len() as u64) as usize]
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn manufacturer_name(id: u64) -> String {
    let mut rng = Rng(id.wrapping_mul(7919));
    let syllables = 2 + rng.below(2);
    let mut name = String::new();
    for _ in 0..syllables {
        name.push_str(rng.pick(SYLLABLES));
    }
    format!("{} {}", capitalize(&name), rng.pick(COMPANY_SUFFIXES))
}

/// Category ids: top t -> 1 + t; subcategory -> 100 + t*10 + s; leaf -> 1000 + (t*10+s)*10 + l.
fn category(rng: &mut Rng, noun: &str) -> (Vec<u64>, String) {
    let top = rng.below(TOP_CATEGORIES.len() as u64);
    let sub = rng.below(SUBCATEGORIES_PER_TOP);
    let leaf = rng.below(LEAVES_PER_SUBCATEGORY);
    let ids = vec![
        1000 + (top * 10 + sub) * 10 + leaf,
        100 + top * 10 + sub,
        1 + top,
    ];
    let sub_name = NOUNS[((top * 7 + sub * 13) as usize) % NOUNS.len()];
    let leaf_name = ADJECTIVES[((top * 11 + sub * 5 + leaf * 3) as usize) % ADJECTIVES.len()];
    let path = format!(
        "{} > {}s > {} {}s",
        TOP_CATEGORIES[top as usize],
        capitalize(sub_name),
        capitalize(leaf_name),
        noun
    );
    (ids, path)
}

fn product(rng: &mut Rng, id: u64, tenants: u64) -> ProductDoc {
    let noun = rng.skewed(NOUNS);
    let adjective = rng.skewed(ADJECTIVES);
    let second = rng.pick(ADJECTIVES);
    let manufacturer_id = 1 + rng.below(MANUFACTURERS);
    let manufacturer = manufacturer_name(manufacturer_id);
    let size = match rng.below(5) {
        0 => format!("{} mm", 5 * (1 + rng.below(200))),
        1 => format!("{}V", [12, 18, 20, 36, 230][rng.below(5) as usize]),
        2 => format!("{} oz", 4 + rng.below(30)),
        3 => format!("M{} x {}", 3 + rng.below(10), 10 * (1 + rng.below(12))),
        _ => format!("{} pcs", 1 + rng.below(100)),
    };
    let name = if rng.chance(0.5) {
        format!("{} {} {} {}", capitalize(adjective), second, noun, size)
    } else {
        format!("{} {} {}", capitalize(adjective), noun, size)
    };
    let (category_ids, category_path) = category(rng, noun);
    let mut description = String::new();
    let sentences = 2 + rng.below(3);
    for _ in 0..sentences {
        let words = 6 + rng.below(10);
        let mut sentence: Vec<String> = Vec::new();
        for w in 0..words {
            // A description talks about its own product (its noun and adjectives), now and
            // then about another item (an accessory, what it fits), and uses filler words.
            let word = match rng.below(20) {
                0 | 1 => noun,
                2 => rng.pick(NOUNS),
                3 => adjective,
                4..=6 => rng.skewed(ADJECTIVES),
                7 | 8 => rng.skewed(USES),
                _ => rng.skewed(FILLER),
            };
            sentence.push(if w == 0 {
                capitalize(word)
            } else {
                word.to_string()
            });
        }
        description.push_str(&sentence.join(" "));
        description.push_str(". ");
    }
    description.push_str(&format!(
        "Suited for {} and {} work.",
        rng.pick(USES),
        rng.pick(USES)
    ));
    let brand_code: String = manufacturer
        .chars()
        .take(3)
        .collect::<String>()
        .to_uppercase();
    let price_minor = (100.0 * (5000.0f64).powf(rng.unit())) as i64 * 10;
    let group_prices = if rng.chance(0.2) {
        (0..1 + rng.below(3))
            .map(|g| {
                (
                    1 + g * 3 + rng.below(3),
                    price_minor * (80 + rng.below(15) as i64) / 100,
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    ProductDoc {
        tenant: 1 + id % tenants,
        id,
        sku: format!(
            "{brand_code}-{}-{id:07}",
            noun.chars().take(3).collect::<String>().to_uppercase()
        ),
        name,
        description,
        manufacturer_id,
        manufacturer_name: manufacturer,
        category_ids,
        category_path,
        attributes: vec![
            ("colour".into(), rng.pick(&ADJECTIVES[36..45]).into()),
            ("material".into(), rng.pick(&ADJECTIVES[7..16]).into()),
            (
                "weight".into(),
                format!("{}.{} kg", rng.below(20), rng.below(10)),
            ),
        ],
        price_minor,
        group_prices,
        in_stock: rng.chance(0.85),
        created_ms: 1_700_000_000_000 + rng.below(3 * 365 * 86_400_000),
        units_sold: (1.0 / (0.001 + rng.unit())) as u64,
    }
}

// ---- query mix ----------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    OneWord,
    TwoWord,
    Misspelt,
    Filtered,
    Faceted,
}

const KINDS: [Kind; 5] = [
    Kind::OneWord,
    Kind::TwoWord,
    Kind::Misspelt,
    Kind::Filtered,
    Kind::Faceted,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::OneWord => "one-word",
            Kind::TwoWord => "two-word",
            Kind::Misspelt => "misspelt",
            Kind::Filtered => "filtered",
            Kind::Faceted => "faceted",
        }
    }
}

#[derive(Clone, Debug)]
struct BenchQuery {
    kind: Kind,
    text: String,
    category: Option<u64>,
    price_min: Option<i64>,
    price_max: Option<i64>,
}

fn misspell(rng: &mut Rng, word: &str) -> String {
    let mut chars: Vec<char> = word.chars().collect();
    let at = 1 + rng.below(chars.len() as u64 - 2) as usize;
    match rng.below(3) {
        0 => chars[at] = (b'a' + rng.below(26) as u8) as char,
        1 => {
            chars.remove(at);
        }
        _ => chars.swap(at, at + 1),
    }
    chars.into_iter().collect()
}

fn queries(rng: &mut Rng, per_kind: usize) -> Vec<BenchQuery> {
    let long_nouns: Vec<&str> = NOUNS.iter().copied().filter(|n| n.len() >= 5).collect();
    let mut out = Vec::new();
    for kind in KINDS {
        for _ in 0..per_kind {
            let noun = rng.skewed(NOUNS);
            let query = match kind {
                Kind::OneWord => BenchQuery {
                    kind,
                    text: noun.to_string(),
                    category: None,
                    price_min: None,
                    price_max: None,
                },
                Kind::TwoWord => BenchQuery {
                    kind,
                    text: format!("{} {noun}", rng.skewed(ADJECTIVES)),
                    category: None,
                    price_min: None,
                    price_max: None,
                },
                Kind::Misspelt => BenchQuery {
                    kind,
                    text: {
                        let word = rng_pick_owned(rng, &long_nouns);
                        misspell(rng, word)
                    },
                    category: None,
                    price_min: None,
                    price_max: None,
                },
                Kind::Filtered => BenchQuery {
                    kind,
                    text: noun.to_string(),
                    category: Some(1 + rng.below(TOP_CATEGORIES.len() as u64)),
                    price_min: Some(1_000),
                    price_max: Some(50_000),
                },
                Kind::Faceted => BenchQuery {
                    kind,
                    text: noun.to_string(),
                    category: None,
                    price_min: None,
                    price_max: None,
                },
            };
            out.push(query);
        }
    }
    out
}

fn rng_pick_owned<'a>(rng: &mut Rng, list: &[&'a str]) -> &'a str {
    list[rng.below(list.len() as u64) as usize]
}

fn product_query(tenant: u64, query: &BenchQuery) -> ProductQuery {
    let faceted = query.kind == Kind::Faceted;
    ProductQuery {
        tenant,
        text: query.text.clone(),
        category_id: query.category,
        price_min: query.price_min,
        price_max: query.price_max,
        in_stock: (query.kind == Kind::Filtered).then_some(true),
        sort: ProductSort::Relevance,
        limit: RESULT_LIMIT,
        facets: faceted,
        price_bands: if faceted {
            PRICE_BANDS.to_vec()
        } else {
            Vec::new()
        },
        ..ProductQuery::default()
    }
}

// ---- output files for the PostgreSQL comparison -------------------------------------------------

fn csv_field(out: &mut impl Write, text: &str) -> std::io::Result<()> {
    write!(out, "\"{}\"", text.replace('"', "\"\""))
}

fn write_csv_row(out: &mut impl Write, p: &ProductDoc) -> std::io::Result<()> {
    write!(out, "{},{},", p.id, p.tenant)?;
    csv_field(out, &p.sku)?;
    out.write_all(b",")?;
    csv_field(out, &p.name)?;
    out.write_all(b",")?;
    csv_field(out, &p.description)?;
    write!(out, ",{},", p.manufacturer_id)?;
    csv_field(out, &p.manufacturer_name)?;
    out.write_all(b",")?;
    csv_field(out, &p.category_path)?;
    let ids: Vec<String> = p.category_ids.iter().map(u64::to_string).collect();
    write!(out, ",\"{{{}}}\",", ids.join(","))?;
    let attributes: Vec<String> = p
        .attributes
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    csv_field(out, &attributes.join(" "))?;
    writeln!(
        out,
        ",{},{},{},{}",
        p.price_minor,
        if p.in_stock { "t" } else { "f" },
        p.created_ms,
        p.units_sold
    )
}

fn write_queries(path: &PathBuf, queries: &[BenchQuery]) -> std::io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    let opt = |v: Option<i64>| v.map_or_else(|| "\\N".to_string(), |v| v.to_string());
    let mut n_by_kind = [0usize; 5];
    for query in queries {
        let slot = KINDS.iter().position(|k| *k == query.kind).unwrap_or(0);
        n_by_kind[slot] += 1;
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}",
            query.kind.name(),
            n_by_kind[slot],
            query.text,
            query
                .category
                .map_or_else(|| "\\N".to_string(), |c| c.to_string()),
            opt(query.price_min),
            opt(query.price_max)
        )?;
    }
    out.flush()
}

// ---- measurement --------------------------------------------------------------------------------

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

struct Args {
    docs: u64,
    tenants: u64,
    per_kind: usize,
    threads: usize,
    heap_mib: usize,
    seed: u64,
    dir: Option<PathBuf>,
    csv: Option<PathBuf>,
    queries_out: Option<PathBuf>,
    /// Query an index a previous run left in --dir instead of building one.
    reuse: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        docs: 1_000_000,
        tenants: 1,
        per_kind: 1_000,
        threads: 2,
        heap_mib: 512,
        seed: 42,
        dir: None,
        csv: None,
        queries_out: None,
        reuse: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--docs" => args.docs = number(value()?)?,
            "--tenants" => args.tenants = number(value()?)?.max(1),
            "--queries" => args.per_kind = number(value()?)?.max(1) as usize,
            "--threads" => args.threads = number(value()?)?.clamp(1, 64) as usize,
            "--heap-mib" => args.heap_mib = number(value()?)? as usize,
            "--seed" => args.seed = number(value()?)?,
            "--dir" => args.dir = Some(PathBuf::from(value()?)),
            "--csv" => args.csv = Some(PathBuf::from(value()?)),
            "--queries-out" => args.queries_out = Some(PathBuf::from(value()?)),
            "--reuse" => args.reuse = true,
            "-h" | "--help" => {
                return Err(
                    "usage: search_bench [--docs N] [--tenants N] [--queries N] \
                            [--threads N] [--heap-mib N] [--seed N] [--dir PATH] [--csv FILE] \
                            [--queries-out FILE] [--reuse]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn bulk_index(
    args: &Args,
    dir: &std::path::Path,
    bulk_config: IndexConfig,
) -> Result<(), Box<dyn std::error::Error>> {
    // Generation is timed apart and subtracted.
    let index = ShardIndex::open(dir, bulk_config.clone())?;
    let mut rng = Rng(args.seed);
    let mut csv = match &args.csv {
        Some(path) => Some(BufWriter::new(File::create(path)?)),
        None => None,
    };
    let mut generate = Duration::ZERO;
    let started = Instant::now();
    let mut next_id = 1;
    while next_id <= args.docs {
        let until = (next_id + APPLY_BATCH as u64).min(args.docs + 1);
        let t = Instant::now();
        let batch: Vec<ProductDoc> = (next_id..until)
            .map(|id| product(&mut rng, id, args.tenants))
            .collect();
        if let Some(out) = csv.as_mut() {
            for p in &batch {
                write_csv_row(out, p)?;
            }
        }
        generate += t.elapsed();
        index.apply(batch.into_iter().map(IndexOp::UpsertProduct).collect())?;
        next_id = until;
    }
    index.commit(args.docs)?;
    let bulk = started.elapsed() - generate;
    if let Some(mut out) = csv.take() {
        out.flush()?;
    }
    let segments_after_bulk = index.segment_count();
    let size_after_bulk = dir_bytes(dir);
    let t = Instant::now();
    index.close()?;
    let merge_wait = t.elapsed();

    let index = ShardIndex::open(dir, IndexConfig::default())?;
    let size = dir_bytes(dir);
    println!();
    println!("| bulk index | value |");
    println!("| --- | ---: |");
    println!(
        "| index {} products (apply + commit, generation excluded) | {:.1} s ({:.0} docs/s) |",
        args.docs,
        bulk.as_secs_f64(),
        args.docs as f64 / bulk.as_secs_f64()
    );
    println!(
        "| generating them (not included) | {:.1} s |",
        generate.as_secs_f64()
    );
    println!(
        "| segments after the bulk commit / after merges | {} / {} |",
        segments_after_bulk,
        index.segment_count()
    );
    println!(
        "| waiting for merges at close | {:.1} s |",
        merge_wait.as_secs_f64()
    );
    println!(
        "| index size on disk (after bulk / after merges) | {:.0} MiB / {:.0} MiB ({:.0} bytes per product) |",
        size_after_bulk as f64 / 1048576.0,
        size as f64 / 1048576.0,
        size as f64 / args.docs.max(1) as f64
    );

    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let temp = tempfile::tempdir()?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| temp.path().join("index"));
    let exists = dir.exists() && std::fs::read_dir(&dir)?.next().is_some();
    if exists && !args.reuse {
        return Err(format!("{} is not empty (pass --reuse to query it)", dir.display()).into());
    }
    if args.reuse && !exists {
        return Err(format!("--reuse: nothing in {}", dir.display()).into());
    }
    let heap = (args.heap_mib * 1024 * 1024).min(WRITER_HEAP_BYTES_MAX);
    let bulk_config = IndexConfig {
        writer_heap_bytes: heap,
    };
    println!(
        "search_bench: {} products, {} tenant(s), writer heap {} MiB, {} cores",
        args.docs,
        args.tenants,
        heap >> 20,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    if !args.reuse {
        bulk_index(&args, &dir, bulk_config)?;
    }

    // -- reopen with the default (serving) configuration --
    let index = Arc::new(ShardIndex::open(&dir, IndexConfig::default())?);
    // -- query mix --
    let mut qrng = Rng(args.seed ^ 0x5eed);
    let mix = queries(&mut qrng, args.per_kind);
    if let Some(path) = &args.queries_out {
        write_queries(path, &mix)?;
    }
    let tenant = 1;
    // Warm-up: one pass over the mix (page cache, term dictionaries).
    for query in &mix {
        index.search_products(&product_query(tenant, query))?;
    }
    println!();
    println!(
        "| query kind (1 thread, {} each, top {RESULT_LIMIT}) | p50 ms | p95 ms | p99 ms | max ms | queries/s | mean hits |",
        args.per_kind
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut all: Vec<Duration> = Vec::with_capacity(mix.len());
    for kind in KINDS {
        let mut latencies = Vec::with_capacity(args.per_kind);
        let mut hits_total = 0u64;
        for query in mix.iter().filter(|q| q.kind == kind) {
            let q = product_query(tenant, query);
            let t = Instant::now();
            let results = index.search_products(&q)?;
            latencies.push(t.elapsed());
            hits_total += results.total;
        }
        let sum: Duration = latencies.iter().sum();
        latencies.sort_unstable();
        println!(
            "| {} | {} | {} | {} | {} | {:.0} | {:.0} |",
            kind.name(),
            ms(percentile(&latencies, 50.0)),
            ms(percentile(&latencies, 95.0)),
            ms(percentile(&latencies, 99.0)),
            ms(*latencies.last().unwrap_or(&Duration::ZERO)),
            latencies.len() as f64 / sum.as_secs_f64(),
            hits_total as f64 / latencies.len().max(1) as f64
        );
        all.extend(latencies);
    }
    let sum: Duration = all.iter().sum();
    all.sort_unstable();
    println!(
        "| whole mix | {} | {} | {} | {} | {:.0} | |",
        ms(percentile(&all, 50.0)),
        ms(percentile(&all, 95.0)),
        ms(percentile(&all, 99.0)),
        ms(*all.last().unwrap_or(&Duration::ZERO)),
        all.len() as f64 / sum.as_secs_f64()
    );

    // -- throughput: the whole mix on N threads at once --
    let mix = Arc::new(mix);
    let t = Instant::now();
    let handles: Vec<_> = (0..args.threads)
        .map(|thread| {
            let index = Arc::clone(&index);
            let mix = Arc::clone(&mix);
            std::thread::spawn(move || -> Result<usize, mercato_index::IndexError> {
                // Each thread walks the mix from a different starting point.
                let n = mix.len();
                for i in 0..n {
                    let query = &mix[(i + thread * n / 2 + thread) % n];
                    index.search_products(&product_query(tenant, query))?;
                }
                Ok(n)
            })
        })
        .collect();
    let mut done = 0;
    for handle in handles {
        done += handle.join().map_err(|_| "query thread panicked")??;
    }
    let elapsed = t.elapsed();
    println!();
    println!(
        "throughput: {done} queries of the mix on {} threads in {:.2} s = {:.0} queries/s",
        args.threads,
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64()
    );

    // -- suggest --
    let mut latencies = Vec::new();
    for (i, noun) in NOUNS.iter().enumerate() {
        let prefix: String = noun.chars().take(2 + i % 3).collect();
        let t = Instant::now();
        index.suggest(tenant, &prefix, 8)?;
        latencies.push(t.elapsed());
    }
    latencies.sort_unstable();
    println!(
        "suggest (2-4 letter prefixes, 8 completions): p50 {} ms, p95 {} ms, p99 {} ms",
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 95.0)),
        ms(percentile(&latencies, 99.0))
    );

    // -- freshness: commit + reader reload of 100 upserts, as the indexer does --
    let mut latencies = Vec::new();
    let mut rng = Rng(args.seed ^ 0xf7e5);
    for round in 0..50u64 {
        let batch: Vec<IndexOp> = (0..100)
            .map(|_| {
                let id = 1 + rng.below(args.docs.max(1));
                IndexOp::UpsertProduct(product(&mut rng, id, args.tenants))
            })
            .collect();
        let t = Instant::now();
        index.apply(batch)?;
        index.commit(args.docs + 1 + round)?;
        latencies.push(t.elapsed());
    }
    latencies.sort_unstable();
    println!(
        "commit + reload of 100 upserts (50 rounds): p50 {} ms, p95 {} ms, max {} ms; segments now {}",
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 95.0)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO)),
        index.segment_count()
    );
    if let Some(rss) = peak_rss_mib() {
        println!("peak resident memory of the process: {rss:.0} MiB");
    }
    Ok(())
}
