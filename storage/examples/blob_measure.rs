//! Measures where large payloads should live: files on disk (`blob::BlobStore`) or values in redb.
//!
//! ```text
//! cargo run --release -p mercato-storage --example blob_measure
//! ```
//!
//! Compares, for 64 KiB, 1 MiB and 8 MiB payloads of semi-compressible, PDF-like bytes:
//! - `files`      BlobStore: zstd when it pays, one file per blob, fsync file + rename + fsync dir;
//! - `redb-zstd`  a redb table `&[u8; 32] -> &[u8]` holding the zstd frame, one durable commit per blob;
//! - `redb-raw`   the same table holding the raw bytes.
//!
//! Each (variant, size) runs in its own child process so that its peak RSS (VmHWM) is its own.
//! Every read verifies the SHA-256 of the content, as `BlobStore::get` does, so the work compared
//! is the same. "Cold" reads first evict the files from the page cache (`dd iflag=nocache`, which
//! is posix_fadvise DONTNEED) and reopen the redb database (dropping its own cache).
//! Payload generation is not timed. MB means 10^6 bytes of raw payload.

use std::collections::BTreeMap;
use std::error::Error;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use mercato_storage::blob::{BlobHash, BlobStore, COMPRESSION_LEVEL};
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use redb::{Database, ReadableDatabase, TableDefinition};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const BLOBS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("blobs");

/// (payload KiB, number of blobs): about 12.5 MiB, 100 MiB and 160 MiB per variant.
const RUNS: [(usize, usize); 3] = [(64, 200), (1024, 100), (8192, 20)];
const VARIANTS: [&str; 3] = ["files", "redb-zstd", "redb-raw"];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("child") => {
            let variant = args.get(2).ok_or("variant")?;
            let kib: usize = args.get(3).ok_or("kib")?.parse()?;
            let count: usize = args.get(4).ok_or("count")?.parse()?;
            run_variant(variant, kib * 1024, count)
        }
        Some("compression") => compression_study(),
        _ => parent(),
    }
}

fn parent() -> Result<()> {
    let started = Instant::now();
    let exe = std::env::current_exe()?;
    let mut rows = Vec::new();
    for (kib, count) in RUNS {
        for variant in VARIANTS {
            eprintln!("running {variant} {kib} KiB x {count} ...");
            let output = Command::new(&exe)
                .args(["child", variant, &kib.to_string(), &count.to_string()])
                .output()?;
            if !output.status.success() {
                return Err(format!(
                    "{variant} {kib} KiB failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                )
                .into());
            }
            let stdout = String::from_utf8(output.stdout)?;
            let line = stdout
                .lines()
                .find(|line| line.starts_with("RESULT "))
                .ok_or("no RESULT line")?;
            let fields: BTreeMap<String, String> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|pair| {
                    pair.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .collect();
            rows.push(fields);
        }
    }
    let field = |row: &BTreeMap<String, String>, key: &str| -> f64 {
        row.get(key)
            .and_then(|value| value.parse().ok())
            .unwrap_or(f64::NAN)
    };

    println!("\n## Throughput (raw payload MB/s = 10^6 B/s; blobs/s)\n");
    println!(
        "| payload | variant | write MB/s | write blobs/s | read warm MB/s | read cold MB/s | read cold blobs/s | peak RSS MiB |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        let bytes = field(row, "raw_bytes");
        let count = field(row, "count");
        let write_s = field(row, "write_s");
        println!(
            "| {} KiB x {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
            row["kib"],
            row["count"],
            row["variant"],
            bytes / write_s / 1e6,
            count / write_s,
            bytes / field(row, "read_warm_s") / 1e6,
            bytes / field(row, "read_cold_s") / 1e6,
            count / field(row, "read_cold_s"),
            field(row, "peak_rss_kib") / 1024.0,
        );
    }

    println!("\n## Space on disk (MiB allocated; raw payload in brackets)\n");
    println!(
        "| payload | variant | raw | after writes | x raw | after delete half + rewrite | x raw | after compact | churn rewrite MB/s |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        let raw = field(row, "raw_bytes");
        let mib = |key: &str| field(row, key) / (1024.0 * 1024.0);
        let compact = row
            .get("disk_compact")
            .map(|_| format!("{:.1}", mib("disk_compact")))
            .unwrap_or_else(|| "n/a".to_string());
        println!(
            "| {} KiB x {} | {} | {:.1} | {:.1} | {:.2} | {:.1} | {:.2} | {} | {:.0} |",
            row["kib"],
            row["count"],
            row["variant"],
            raw / (1024.0 * 1024.0),
            mib("disk_written"),
            field(row, "disk_written") / raw,
            mib("disk_churned"),
            field(row, "disk_churned") / raw,
            compact,
            field(row, "churn_bytes") / field(row, "churn_write_s") / 1e6,
        );
    }

    let output = Command::new(&exe).arg("compression").output()?;
    print!("{}", String::from_utf8(output.stdout)?);
    if !output.status.success() {
        return Err(format!(
            "compression study failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    println!("\ntotal run time {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Semi-compressible, PDF-like payload: text content streams (words, numbers, operators)
/// interleaved with random binary runs (embedded images, font programs), ~45% binary by volume.
/// Deterministic per seed, and unique per seed.
fn payload(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&str; 48] = [
        "Certificate",
        "of",
        "Insurance",
        "policy",
        "number",
        "insured",
        "vendor",
        "GmbH",
        "Ltd",
        "address",
        "street",
        "liability",
        "coverage",
        "EUR",
        "USD",
        "valid",
        "until",
        "issued",
        "date",
        "signature",
        "tax",
        "identification",
        "VAT",
        "registration",
        "company",
        "director",
        "wholesale",
        "supplier",
        "invoice",
        "total",
        "amount",
        "quantity",
        "unit",
        "price",
        "SKU",
        "batch",
        "expiry",
        "compliance",
        "ISO",
        "9001",
        "audit",
        "approved",
        "page",
        "the",
        "and",
        "for",
        "with",
        "this",
    ];
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(len + 16 * 1024);
    out.extend_from_slice(format!("%PDF-1.7\n% blob {seed}\n").as_bytes());
    while out.len() < len {
        if rng.random_bool(0.45) {
            let run = rng.random_range(2048..12 * 1024);
            let start = out.len();
            out.resize(start + run, 0);
            rng.fill_bytes(&mut out[start..]);
        } else {
            let run_end = out.len() + rng.random_range(2048..12 * 1024);
            out.extend_from_slice(b"stream\nBT /F1 10 Tf\n");
            while out.len() < run_end {
                let y = rng.random_range(40..800);
                out.extend_from_slice(format!("56 {y} Td (").as_bytes());
                for _ in 0..rng.random_range(3..9) {
                    out.extend_from_slice(WORDS[rng.random_range(0..WORDS.len())].as_bytes());
                    out.push(b' ');
                }
                out.extend_from_slice(format!("{}) Tj\n", rng.random_range(0..100_000)).as_bytes());
            }
            out.extend_from_slice(b"ET\nendstream\n");
        }
    }
    out.truncate(len);
    out
}

/// Allocated bytes of a file or a directory tree (like `du`), directories included.
fn allocated_bytes(path: &Path) -> Result<u64> {
    let metadata = fs::symlink_metadata(path)?;
    let mut total = metadata.blocks() * 512;
    if metadata.is_dir() {
        for entry in fs::read_dir(path)? {
            total += allocated_bytes(&entry?.path())?;
        }
    }
    Ok(total)
}

/// Evicts a file, or every file under a directory, from the page cache.
fn evict_from_page_cache(path: &Path) -> Result<()> {
    if path.is_dir() {
        for entry in fs::read_dir(path)? {
            evict_from_page_cache(&entry?.path())?;
        }
        return Ok(());
    }
    let status = Command::new("dd")
        .arg(format!("if={}", path.display()))
        .args(["iflag=nocache", "count=0", "status=none"])
        .status()?;
    if !status.success() {
        return Err(format!("dd could not evict {}", path.display()).into());
    }
    Ok(())
}

fn peak_rss_kib() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The storage under test.
enum Target {
    Files(BlobStore),
    Redb { db: Database, compress: bool },
}

impl Target {
    fn put(&self, bytes: &[u8]) -> Result<BlobHash> {
        match self {
            Target::Files(store) => Ok(store.put(bytes)?.hash),
            Target::Redb { db, compress } => {
                let hash = BlobHash::of(bytes);
                let compressed;
                let value: &[u8] = if *compress {
                    compressed = zstd::bulk::compress(bytes, COMPRESSION_LEVEL)?;
                    &compressed
                } else {
                    bytes
                };
                let tx = db.begin_write()?;
                {
                    let mut table = tx.open_table(BLOBS)?;
                    table.insert(hash.as_bytes(), value)?;
                }
                tx.commit()?; // Durability::Immediate is redb's default
                Ok(hash)
            }
        }
    }

    fn get(&self, hash: &BlobHash) -> Result<Vec<u8>> {
        match self {
            Target::Files(store) => Ok(store.get(hash)?),
            Target::Redb { db, compress } => {
                let tx = db.begin_read()?;
                let table = tx.open_table(BLOBS)?;
                let guard = table.get(hash.as_bytes())?.ok_or("missing blob")?;
                let bytes = if *compress {
                    let raw_len = zstd::zstd_safe::get_frame_content_size(guard.value())
                        .ok()
                        .flatten()
                        .ok_or("no content size")?;
                    zstd::bulk::decompress(guard.value(), usize::try_from(raw_len)?)?
                } else {
                    guard.value().to_vec()
                };
                if BlobHash::of(&bytes) != *hash {
                    return Err("hash mismatch".into());
                }
                Ok(bytes)
            }
        }
    }

    fn delete_many(&self, hashes: &[BlobHash]) -> Result<()> {
        match self {
            Target::Files(store) => {
                for hash in hashes {
                    store.delete(hash)?;
                }
            }
            Target::Redb { db, .. } => {
                let tx = db.begin_write()?;
                {
                    let mut table = tx.open_table(BLOBS)?;
                    for hash in hashes {
                        table.remove(hash.as_bytes())?;
                    }
                }
                tx.commit()?;
            }
        }
        Ok(())
    }
}

fn run_variant(variant: &str, len: usize, count: usize) -> Result<()> {
    let dir = tempfile::tempdir_in(
        std::env::var_os("BLOB_MEASURE_DIR").unwrap_or_else(|| "/tmp".into()),
    )?;
    let data_path = match variant {
        "files" => dir.path().join("blobs"),
        _ => dir.path().join("shard.redb"),
    };
    let open = |path: &Path| -> Result<Target> {
        Ok(match variant {
            "files" => Target::Files(BlobStore::open(path)?),
            "redb-zstd" => Target::Redb {
                db: Database::create(path)?,
                compress: true,
            },
            "redb-raw" => Target::Redb {
                db: Database::create(path)?,
                compress: false,
            },
            other => return Err(format!("unknown variant {other}").into()),
        })
    };
    let mut target = open(&data_path)?;

    let mut write = Duration::ZERO;
    let mut hashes = Vec::with_capacity(count);
    for seed in 0..count as u64 {
        let bytes = payload(len, seed);
        let started = Instant::now();
        hashes.push(target.put(&bytes)?);
        write += started.elapsed();
    }
    let disk_written = allocated_bytes(&data_path)?;

    let read_all = |target: &Target| -> Result<Duration> {
        let started = Instant::now();
        for hash in &hashes {
            let bytes = target.get(hash)?;
            if bytes.len() != len {
                return Err("wrong length".into());
            }
        }
        Ok(started.elapsed())
    };
    let read_warm = read_all(&target)?;
    drop(target);
    evict_from_page_cache(&data_path)?;
    target = match variant {
        "files" => open(&data_path)?,
        _ => Target::Redb {
            db: Database::open(&data_path)?,
            compress: variant == "redb-zstd",
        },
    };
    let read_cold = read_all(&target)?;

    // Churn: delete every other blob (GC), then the same uploads arrive again.
    let half: Vec<BlobHash> = hashes.iter().step_by(2).copied().collect();
    target.delete_many(&half)?;
    let mut churn_write = Duration::ZERO;
    let mut churn_bytes = 0u64;
    for seed in (0..count as u64).step_by(2) {
        let bytes = payload(len, seed);
        let started = Instant::now();
        target.put(&bytes)?;
        churn_write += started.elapsed();
        churn_bytes += bytes.len() as u64;
    }
    let disk_churned = allocated_bytes(&data_path)?;
    let mut compact = String::new();
    if let Target::Redb { db, .. } = &mut target {
        let started = Instant::now();
        while db.compact()? {}
        compact = format!(
            " disk_compact={} compact_s={:.3}",
            allocated_bytes(&data_path)?,
            started.elapsed().as_secs_f64()
        );
    }
    drop(target);

    println!(
        "RESULT variant={variant} kib={} count={count} raw_bytes={} write_s={:.4} read_warm_s={:.4} read_cold_s={:.4} \
         disk_written={disk_written} disk_churned={disk_churned} churn_bytes={churn_bytes} churn_write_s={:.4} peak_rss_kib={}{compact}",
        len / 1024,
        len * count,
        write.as_secs_f64(),
        read_warm.as_secs_f64(),
        read_cold.as_secs_f64(),
        churn_write.as_secs_f64(),
        peak_rss_kib(),
    );
    Ok(())
}

/// zstd levels on three kinds of content, SHA-256 speed: one core.
fn compression_study() -> Result<()> {
    const LEN: usize = 16 << 20;
    let mut random = vec![0u8; LEN];
    SmallRng::seed_from_u64(99).fill_bytes(&mut random);
    let corpora: [(&str, Vec<u8>); 3] = [
        ("PDF-like mixed (45% random)", payload(LEN, 1_000_000)),
        ("random (JPEG-like, incompressible)", random),
        ("text-only PDF streams", {
            let mut text = Vec::with_capacity(LEN);
            let mut seed = 2_000_000;
            while text.len() < LEN {
                // Keep only the text streams of the PDF-like generator, dropping its random runs.
                let part = payload(1 << 20, seed);
                seed += 1;
                let mut start = 0;
                while let Some(offset) = find(&part[start..], b"stream\nBT") {
                    let begin = start + offset;
                    let end =
                        find(&part[begin..], b"endstream\n").map_or(part.len(), |e| begin + e + 10);
                    text.extend_from_slice(&part[begin..end]);
                    start = end;
                }
            }
            text.truncate(LEN);
            text
        }),
    ];
    println!("\n## zstd on 16 MiB (one core; MB/s of raw bytes)\n");
    println!("| content | level | stored/raw | compress MB/s | decompress MB/s |");
    println!("|---|---:|---:|---:|---:|");
    for (name, bytes) in &corpora {
        for level in [1, 3, 6, 9] {
            let started = Instant::now();
            let compressed = zstd::bulk::compress(bytes, level)?;
            let compress_s = started.elapsed().as_secs_f64();
            let started = Instant::now();
            let raw = zstd::bulk::decompress(&compressed, bytes.len())?;
            let decompress_s = started.elapsed().as_secs_f64();
            if raw != *bytes {
                return Err("zstd roundtrip mismatch".into());
            }
            println!(
                "| {name} | {level} | {:.3} | {:.0} | {:.0} |",
                compressed.len() as f64 / bytes.len() as f64,
                bytes.len() as f64 / compress_s / 1e6,
                bytes.len() as f64 / decompress_s / 1e6,
            );
        }
    }
    let started = Instant::now();
    let hash = BlobHash::of(&corpora[0].1);
    println!(
        "\nSHA-256: {:.0} MB/s (hash {})",
        LEN as f64 / started.elapsed().as_secs_f64() / 1e6,
        &hash.to_string()[..8]
    );
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
