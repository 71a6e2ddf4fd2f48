//! Offline storage administration: `mercato storage status|verify|add-shard|move-bucket|rebalance`.
//!
//! Every operation opens the data directory itself, through the same engine and the same
//! layered configuration as `serve`, and closes it before returning. The data directory's
//! `LOCK` makes them offline: while a server has the directory open they are refused with the
//! storage engine's own "in use by another process" error, and a server cannot start while
//! one of them runs.
//!
//! The module has three parts: validation of the operator's numbers into storage ids (each
//! error names its flag), the operations themselves (plain data in, plain data out, so they
//! can be tested without a terminal), and their rendering for the terminal. The rebalance plan
//! is a pure function of the bucket map ([`plan_rebalance`]).
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use mercato_server::config::{Config, ConfigSources, FlagOverrides};
//! use mercato_server::storage_admin;
//!
//! let flags = FlagOverrides { data_dir: Some("/var/lib/mercato".into()), ..FlagOverrides::default() };
//! let config = Config::load(&ConfigSources { flags, ..ConfigSources::default() })?;
//! let status = storage_admin::with_engine(&config, storage_admin::status)?;
//! for shard in &status.shards {
//!     println!("shard {} holds {} buckets", shard.id, shard.buckets);
//! }
//! # Ok(()) }
//! ```

use crate::config::Config;
use mercato_engine::{Engine, EngineConfig, EngineError};
use mercato_storage::{
    BUCKET_COUNT, BucketId, IntegrityReport, Lsn, OpenError, SHARD_COUNT_MAX, ShardId, StorageError,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Most shards one `add-shard` adds.
pub const ADD_SHARD_COUNT_MAX: u16 = 64;

/// Exit status of `storage verify` when the check found problems (1 means it could not run).
pub const VERIFY_PROBLEMS_EXIT_CODE: i32 = 2;

/// The file whose presence marks an initialized data directory.
const META_FILE_NAME: &str = "meta.redb";

/// Why a storage administration command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A flag's value is out of range; `flag` is the flag as typed, such as `--bucket`.
    #[error("invalid {flag} {value}: {reason}")]
    InvalidArgument {
        flag: &'static str,
        value: u64,
        reason: String,
    },
    /// The administration commands never create a data directory: a mistyped path would
    /// otherwise be answered with the status of a brand-new, empty one.
    #[error(
        "{} is not a Mercato data directory (no {META_FILE_NAME}); `mercato serve` creates one",
        path.display()
    )]
    NotInitialized { path: PathBuf },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(
        "rebalance stopped after {moves_done} of {moves_planned} bucket moves: moving bucket {bucket} from shard {from} to shard {to} failed"
    )]
    RebalanceStopped {
        moves_done: usize,
        moves_planned: usize,
        bucket: BucketId,
        from: ShardId,
        to: ShardId,
        source: StorageError,
    },
    /// Adding shards failed part-way; the shards in `added` exist.
    #[error("adding shards stopped after adding {} of {requested} ({})", added.len(), list_ids(added))]
    AddShardStopped {
        requested: u16,
        added: Vec<ShardId>,
        source: StorageError,
    },
    /// The bucket map after a rebalance is not the balanced one the plan promised: a bug.
    #[error("internal error: after the rebalance the shards hold {counts:?} buckets")]
    RebalanceUnbalanced { counts: BTreeMap<u16, usize> },
}

// ---------------------------------------------------------------------------------------------
// Flags into storage ids

/// The `--bucket` flag: `0..BUCKET_COUNT`.
pub fn bucket_flag(value: u64) -> Result<BucketId, AdminError> {
    u16::try_from(value)
        .ok()
        .filter(|bucket| *bucket < BUCKET_COUNT)
        .map(BucketId)
        .ok_or_else(|| AdminError::InvalidArgument {
            flag: "--bucket",
            value,
            reason: format!("buckets are numbered 0 to {}", BUCKET_COUNT - 1),
        })
}

/// The `--count` flag of `add-shard`: `1..=ADD_SHARD_COUNT_MAX`.
pub fn shard_count_flag(value: u64) -> Result<u16, AdminError> {
    u16::try_from(value)
        .ok()
        .filter(|count| (1..=ADD_SHARD_COUNT_MAX).contains(count))
        .ok_or_else(|| AdminError::InvalidArgument {
            flag: "--count",
            value,
            reason: format!("add between 1 and {ADD_SHARD_COUNT_MAX} shards at a time"),
        })
}

/// The `--to` flag of `move-bucket`: a shard of the open data directory.
pub fn target_shard_flag(engine: &Engine, value: u64) -> Result<ShardId, AdminError> {
    let shards = engine.storage().shard_ids();
    u16::try_from(value)
        .ok()
        .map(ShardId)
        .filter(|shard| shards.contains(shard))
        .ok_or_else(|| AdminError::InvalidArgument {
            flag: "--to",
            value,
            reason: format!(
                "no such shard; the data directory has {}",
                list_shards(&shards)
            ),
        })
}

fn list_ids(shards: &[ShardId]) -> String {
    if shards.is_empty() {
        return "none".to_owned();
    }
    let ids: Vec<String> = shards.iter().map(ShardId::to_string).collect();
    ids.join(" ")
}

fn list_shards(shards: &[ShardId]) -> String {
    match (shards.first(), shards.last()) {
        (Some(first), Some(last)) if shards.len() > 1 => {
            format!("shards {} to {}", first.0, last.0)
        }
        (Some(only), _) => format!("only shard {}", only.0),
        _ => "no shards".to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Opening

/// The engine settings of `config`, as `serve` opens them.
pub fn engine_config(config: &Config) -> EngineConfig {
    EngineConfig {
        data_dir: config.data_dir.clone(),
        shards_initial: config.storage.shards_initial,
        commit_batch_count_max: config.storage.commit_batch_count_max,
        commit_batch_bytes_max: config.storage.commit_batch_bytes_max,
        pending_commands_max: config.storage.pending_commands_max,
    }
}

fn require_initialized(data_dir: &Path) -> Result<(), AdminError> {
    if data_dir.join(META_FILE_NAME).is_file() {
        Ok(())
    } else {
        Err(AdminError::NotInitialized {
            path: data_dir.to_owned(),
        })
    }
}

/// Opens the engine on the configured (existing) data directory, runs `work`, and shuts the
/// engine down whatever `work` returned. Blocking.
pub fn with_engine<T>(
    config: &Config,
    work: impl FnOnce(&Engine) -> Result<T, AdminError>,
) -> Result<T, AdminError> {
    require_initialized(&config.data_dir)?;
    let engine = Engine::open(engine_config(config))?;
    let outcome = work(&engine);
    let shutdown = engine.shutdown();
    let value = outcome?;
    shutdown?;
    Ok(value)
}

// ---------------------------------------------------------------------------------------------
// Operations

/// What `storage status` reports. Also its `--json` shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StorageStatus {
    /// Absolute path of the data directory.
    pub data_dir: String,
    pub bucket_count: u16,
    pub shards: Vec<ShardStatus>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShardStatus {
    pub id: u16,
    /// Buckets the bucket map sends to this shard.
    pub buckets: u32,
    /// LSN of the shard's newest change-log entry; 0 before the first.
    pub last_lsn: Lsn,
    /// Registered change-log readers and the last LSN each has processed.
    pub readers: BTreeMap<String, Lsn>,
}

/// Shards, their buckets, change-log positions and readers.
pub fn status(engine: &Engine) -> Result<StorageStatus, AdminError> {
    let storage = engine.storage();
    let counts = bucket_counts(&storage.bucket_map(), &storage.shard_ids());
    let mut shards = Vec::with_capacity(counts.len());
    for (shard, buckets) in counts {
        shards.push(ShardStatus {
            id: shard.0,
            buckets: buckets as u32,
            last_lsn: storage.last_lsn(shard)?,
            readers: storage.readers(shard)?,
        });
    }
    let data_dir = storage.data_dir();
    let data_dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_owned());
    Ok(StorageStatus {
        data_dir: data_dir.display().to_string(),
        bucket_count: BUCKET_COUNT,
        shards,
    })
}

/// Buckets per shard, every shard listed (an empty one with 0).
fn bucket_counts(bucket_map: &[ShardId], shards: &[ShardId]) -> BTreeMap<ShardId, usize> {
    let mut counts: BTreeMap<ShardId, usize> = shards.iter().map(|shard| (*shard, 0)).collect();
    for shard in bucket_map {
        *counts.entry(*shard).or_default() += 1;
    }
    counts
}

/// Runs the storage engine's offline integrity check on the configured data directory.
/// Blocking; refused while another process has the directory open.
pub fn verify(config: &Config) -> Result<IntegrityReport, AdminError> {
    require_initialized(&config.data_dir)?;
    Ok(mercato_storage::verify_data_dir(&config.data_dir)?)
}

/// Adds `count` empty shards and returns their ids. Buckets stay where they are until a
/// `move-bucket` or `rebalance`.
pub fn add_shards(engine: &Engine, count: u16) -> Result<Vec<ShardId>, AdminError> {
    let storage = engine.storage();
    let existing = storage.shard_ids().len();
    let room = usize::from(SHARD_COUNT_MAX).saturating_sub(existing);
    if usize::from(count) > room {
        return Err(AdminError::InvalidArgument {
            flag: "--count",
            value: u64::from(count),
            reason: format!(
                "the data directory has {existing} shards and holds at most {SHARD_COUNT_MAX}, so at most {room} more can be added"
            ),
        });
    }
    let mut added = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        match storage.add_shard() {
            Ok(shard) => added.push(shard),
            Err(source) => {
                return Err(AdminError::AddShardStopped {
                    requested: count,
                    added,
                    source,
                });
            }
        }
    }
    Ok(added)
}

/// What one bucket move did (the storage engine's move report, with the bucket and shards).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MoveSummary {
    pub bucket: BucketId,
    pub from: ShardId,
    pub to: ShardId,
    pub rows_copied: usize,
    pub catchup_rounds: usize,
    pub entries_replayed: usize,
    /// How long new commands waited while the bucket map switched.
    pub switch_pause: Duration,
    pub rows_dropped_from_source: usize,
}

/// Moves one bucket to shard `to`. A bucket already there is left alone (`from == to`).
pub fn move_bucket(
    engine: &Engine,
    bucket: BucketId,
    to: ShardId,
) -> Result<MoveSummary, StorageError> {
    let storage = engine.storage();
    let from = storage.shard_of_bucket(bucket);
    // The storage engine's `MoveReport` is not exported by name, so it is copied field by field
    // right where it is returned.
    let report = storage.move_bucket(bucket, to)?;
    Ok(MoveSummary {
        bucket,
        from,
        to,
        rows_copied: report.rows_copied,
        catchup_rounds: report.catchup_rounds,
        entries_replayed: report.entries_replayed,
        switch_pause: report.switch_pause,
        rows_dropped_from_source: report.rows_dropped_from_source,
    })
}

/// One move of a rebalance plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedMove {
    pub bucket: BucketId,
    pub from: ShardId,
    pub to: ShardId,
}

/// The fewest bucket moves after which every shard holds `total / n` or `total / n + 1`
/// buckets (`total` is the bucket map's length, `n` the number of shards).
///
/// Every balanced map gives `total % n` shards one extra bucket. Giving the extra ones to the
/// shards that hold the most buckets now makes the sum of the shards' excesses over their
/// targets as small as it can be, and that sum is a lower bound on the moves; each planned move
/// takes one bucket from a shard above its target to one below, so the plan reaches the bound.
/// Ties go to the lower shard id, and each shard gives up its highest-numbered buckets, so the
/// plan is deterministic.
///
/// Moves are interleaved across the giving shards, and each goes to the receiving shard that is
/// furthest below its target: a rebalance interrupted half-way leaves the load spread out.
pub fn plan_rebalance(bucket_map: &[ShardId], shards: &[ShardId]) -> Vec<PlannedMove> {
    let shard_count = shards.len();
    if shard_count == 0 {
        return Vec::new();
    }
    let mut owned: BTreeMap<ShardId, Vec<BucketId>> =
        shards.iter().map(|shard| (*shard, Vec::new())).collect();
    for (bucket, shard) in bucket_map.iter().enumerate() {
        // Bucket maps have at most BUCKET_COUNT (a u16) entries.
        owned
            .entry(*shard)
            .or_default()
            .push(BucketId(bucket as u16));
    }
    let base = bucket_map.len() / shard_count;
    let extra = bucket_map.len() % shard_count;
    let mut by_size: Vec<(ShardId, usize)> = owned
        .iter()
        .map(|(shard, buckets)| (*shard, buckets.len()))
        .collect();
    by_size.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));

    let mut giving: Vec<(ShardId, Vec<BucketId>)> = Vec::new();
    let mut deficits: BTreeMap<ShardId, usize> = BTreeMap::new();
    for (rank, (shard, held)) in by_size.into_iter().enumerate() {
        let target = base + usize::from(rank < extra);
        if held > target {
            let buckets = &owned[&shard];
            giving.push((shard, buckets[target..].iter().rev().copied().collect()));
        } else if held < target {
            deficits.insert(shard, target - held);
        }
    }
    giving.sort_by_key(|(shard, _)| *shard);

    let moves_total: usize = giving.iter().map(|(_, buckets)| buckets.len()).sum();
    debug_assert_eq!(moves_total, deficits.values().sum::<usize>());
    let mut plan = Vec::with_capacity(moves_total);
    let rounds = giving
        .iter()
        .map(|(_, buckets)| buckets.len())
        .max()
        .unwrap_or(0);
    for round in 0..rounds {
        for (from, buckets) in &giving {
            let Some(&bucket) = buckets.get(round) else {
                continue;
            };
            // The largest deficit; the lowest shard id among equals.
            let Some((&to, _)) = deficits
                .iter()
                .filter(|(_, deficit)| **deficit > 0)
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            else {
                continue;
            };
            if let Some(deficit) = deficits.get_mut(&to) {
                *deficit -= 1;
            }
            plan.push(PlannedMove {
                bucket,
                from: *from,
                to,
            });
        }
    }
    plan
}

/// Totals of a rebalance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RebalanceSummary {
    pub moves: usize,
    pub rows_copied: usize,
    pub entries_replayed: usize,
    pub rows_dropped_from_source: usize,
    pub switch_pause_max: Duration,
    pub elapsed: Duration,
    /// Buckets per shard once the moves are done, read back from the bucket map.
    pub buckets_per_shard: BTreeMap<ShardId, usize>,
}

/// Runs a plan from [`plan_rebalance`] move by move, calling `on_move` after each; stops at
/// the first failure (the moves before it stay done, and running the rebalance again plans
/// the rest). Checks afterwards that the bucket map is balanced.
pub fn rebalance(
    engine: &Engine,
    plan: &[PlannedMove],
    mut on_move: impl FnMut(&MoveSummary),
) -> Result<RebalanceSummary, AdminError> {
    let started = Instant::now();
    let mut summary = RebalanceSummary::default();
    for planned in plan {
        let moved = move_bucket(engine, planned.bucket, planned.to).map_err(|source| {
            AdminError::RebalanceStopped {
                moves_done: summary.moves,
                moves_planned: plan.len(),
                bucket: planned.bucket,
                from: planned.from,
                to: planned.to,
                source,
            }
        })?;
        summary.moves += 1;
        summary.rows_copied += moved.rows_copied;
        summary.entries_replayed += moved.entries_replayed;
        summary.rows_dropped_from_source += moved.rows_dropped_from_source;
        summary.switch_pause_max = summary.switch_pause_max.max(moved.switch_pause);
        on_move(&moved);
    }
    summary.elapsed = started.elapsed();
    let storage = engine.storage();
    summary.buckets_per_shard = bucket_counts(&storage.bucket_map(), &storage.shard_ids());
    let fewest = summary
        .buckets_per_shard
        .values()
        .min()
        .copied()
        .unwrap_or(0);
    let most = summary
        .buckets_per_shard
        .values()
        .max()
        .copied()
        .unwrap_or(0);
    if most - fewest > 1 {
        return Err(AdminError::RebalanceUnbalanced {
            counts: summary
                .buckets_per_shard
                .iter()
                .map(|(shard, count)| (shard.0, *count))
                .collect(),
        });
    }
    Ok(summary)
}

/// The plan for the open data directory, with the bucket counts before and after it.
pub struct RebalancePlan {
    pub moves: Vec<PlannedMove>,
    pub before: BTreeMap<ShardId, usize>,
    pub after: BTreeMap<ShardId, usize>,
}

pub fn rebalance_plan(engine: &Engine) -> RebalancePlan {
    let storage = engine.storage();
    let (bucket_map, shards) = (storage.bucket_map(), storage.shard_ids());
    let moves = plan_rebalance(&bucket_map, &shards);
    let before = bucket_counts(&bucket_map, &shards);
    let mut after = before.clone();
    for planned in &moves {
        if let Some(count) = after.get_mut(&planned.from) {
            *count -= 1;
        }
        *after.entry(planned.to).or_default() += 1;
    }
    RebalancePlan {
        moves,
        before,
        after,
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering

pub fn write_status_table(out: &mut impl Write, status: &StorageStatus) -> io::Result<()> {
    writeln!(out, "data directory: {}", status.data_dir)?;
    writeln!(
        out,
        "shards: {}, buckets: {}",
        status.shards.len(),
        status.bucket_count
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<6} {:>8} {:>12}  readers",
        "shard", "buckets", "last_lsn"
    )?;
    for shard in &status.shards {
        let readers = if shard.readers.is_empty() {
            "-".to_owned()
        } else {
            shard
                .readers
                .iter()
                .map(|(name, lsn)| format!("{name}@{lsn}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(
            out,
            "{:<6} {:>8} {:>12}  {readers}",
            ShardId(shard.id).to_string(),
            shard.buckets,
            shard.last_lsn
        )?;
    }
    Ok(())
}

pub fn write_status_json(out: &mut impl Write, status: &StorageStatus) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, status)?;
    writeln!(out)
}

pub fn write_integrity_report(
    out: &mut impl Write,
    data_dir: &Path,
    report: &IntegrityReport,
) -> io::Result<()> {
    writeln!(out, "data directory: {}", data_dir.display())?;
    writeln!(out, "shards: {}", report.shards)?;
    writeln!(out, "rows: {}", report.rows)?;
    writeln!(out, "change-log entries: {}", report.changelog_entries)?;
    if report.is_consistent() {
        writeln!(out, "problems: none")?;
    } else {
        writeln!(out, "problems: {}", report.problems.len())?;
        for problem in &report.problems {
            writeln!(out, "  {problem}")?;
        }
    }
    Ok(())
}

pub fn write_added_shards(out: &mut impl Write, added: &[ShardId]) -> io::Result<()> {
    writeln!(out, "added shards: {}", list_ids(added))?;
    writeln!(
        out,
        "they hold no buckets yet: `mercato storage rebalance` moves buckets onto them"
    )
}

pub fn write_move_summary(out: &mut impl Write, moved: &MoveSummary) -> io::Result<()> {
    if moved.from == moved.to {
        return writeln!(
            out,
            "bucket {} is already on shard {}: nothing moved",
            moved.bucket, moved.to
        );
    }
    writeln!(
        out,
        "moved bucket {} from shard {} to shard {}",
        moved.bucket, moved.from, moved.to
    )?;
    writeln!(out, "rows copied: {}", moved.rows_copied)?;
    writeln!(out, "catch-up rounds: {}", moved.catchup_rounds)?;
    writeln!(out, "entries replayed: {}", moved.entries_replayed)?;
    writeln!(out, "switch pause: {}", millis(moved.switch_pause))?;
    writeln!(
        out,
        "rows dropped from source: {}",
        moved.rows_dropped_from_source
    )
}

pub fn write_rebalance_plan(out: &mut impl Write, plan: &RebalancePlan) -> io::Result<()> {
    if plan.moves.is_empty() {
        writeln!(out, "already balanced: nothing to move")?;
    } else {
        writeln!(
            out,
            "plan: {} bucket moves (dry run: nothing moved)",
            plan.moves.len()
        )?;
    }
    writeln!(out)?;
    writeln!(out, "{:<6} {:>8} {:>8}", "shard", "buckets", "after")?;
    for (shard, before) in &plan.before {
        let after = plan.after.get(shard).copied().unwrap_or(0);
        writeln!(out, "{:<6} {before:>8} {after:>8}", shard.to_string())?;
    }
    if !plan.moves.is_empty() {
        writeln!(out)?;
        for planned in &plan.moves {
            writeln!(
                out,
                "move bucket {} from shard {} to shard {}",
                planned.bucket, planned.from, planned.to
            )?;
        }
    }
    Ok(())
}

pub fn write_rebalance_summary(out: &mut impl Write, summary: &RebalanceSummary) -> io::Result<()> {
    if summary.moves == 0 {
        writeln!(out, "already balanced: nothing moved")?;
    } else {
        writeln!(
            out,
            "rebalanced: {} buckets moved in {:.1} s",
            summary.moves,
            summary.elapsed.as_secs_f64()
        )?;
        writeln!(out, "rows copied: {}", summary.rows_copied)?;
        writeln!(out, "entries replayed: {}", summary.entries_replayed)?;
        writeln!(
            out,
            "rows dropped from sources: {}",
            summary.rows_dropped_from_source
        )?;
        writeln!(
            out,
            "longest switch pause: {}",
            millis(summary.switch_pause_max)
        )?;
    }
    writeln!(out)?;
    writeln!(out, "{:<6} {:>8}", "shard", "buckets")?;
    for (shard, buckets) in &summary.buckets_per_shard {
        writeln!(out, "{:<6} {buckets:>8}", shard.to_string())?;
    }
    Ok(())
}

fn millis(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1000.0)
}

/// A terminal progress bar for `rebalance`, on stderr (stdout carries the summary). indicatif
/// draws nothing when stderr is not a terminal.
pub fn rebalance_progress_bar(moves: usize) -> indicatif::ProgressBar {
    const TEMPLATE: &str = "{elapsed_precise} [{wide_bar}] {pos}/{len} moved, eta {eta}  {msg}";
    let bar = indicatif::ProgressBar::new(moves as u64);
    // The template is a constant; a parse error could only come from editing it, and then the
    // default style is still a working bar.
    if let Ok(style) = indicatif::ProgressStyle::with_template(TEMPLATE) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_of(counts: &[usize]) -> (Vec<ShardId>, Vec<ShardId>) {
        let mut map = Vec::new();
        for (shard, count) in counts.iter().enumerate() {
            map.extend(std::iter::repeat_n(ShardId(shard as u16), *count));
        }
        let shards = (0..counts.len() as u16).map(ShardId).collect();
        (map, shards)
    }

    fn apply(map: &[ShardId], plan: &[PlannedMove]) -> Vec<ShardId> {
        let mut map = map.to_vec();
        for planned in plan {
            let slot = &mut map[usize::from(planned.bucket.0)];
            assert_eq!(
                *slot, planned.from,
                "{planned:?} moves a bucket from elsewhere"
            );
            assert_ne!(planned.from, planned.to, "{planned:?} moves nowhere");
            *slot = planned.to;
        }
        map
    }

    fn assert_balanced(map: &[ShardId], shards: &[ShardId]) {
        let counts = bucket_counts(map, shards);
        let fewest = counts.values().min().copied().unwrap_or(0);
        let most = counts.values().max().copied().unwrap_or(0);
        assert!(most - fewest <= 1, "unbalanced: {counts:?}");
    }

    /// The fewest moves to balance, by trying every choice of shards that get the extra bucket.
    fn fewest_moves_by_brute_force(counts: &[usize]) -> usize {
        let (n, total) = (counts.len(), counts.iter().sum::<usize>());
        let (base, extra) = (total / n, total % n);
        (0u32..1 << n)
            .filter(|chosen| chosen.count_ones() as usize == extra)
            .map(|chosen| {
                counts
                    .iter()
                    .enumerate()
                    .map(|(i, held)| held.saturating_sub(base + ((chosen >> i) & 1) as usize))
                    .sum()
            })
            .min()
            .unwrap_or(0)
    }

    #[test]
    fn a_fifth_shard_receives_819_buckets_and_every_shard_ends_with_819_or_820() {
        let (mut map, mut shards) = map_of(&[1024, 1024, 1024, 1024]);
        assert_eq!(map.len(), usize::from(BUCKET_COUNT));
        shards.push(ShardId(4));
        let plan = plan_rebalance(&map, &shards);
        assert_eq!(plan.len(), 819);
        assert!(plan.iter().all(|planned| planned.to == ShardId(4)));
        map = apply(&map, &plan);
        let counts = bucket_counts(&map, &shards);
        assert_eq!(
            counts[&ShardId(0)],
            820,
            "ties give the extra bucket to the lowest id"
        );
        for shard in 1..=4 {
            assert_eq!(counts[&ShardId(shard)], 819);
        }
    }

    #[test]
    fn a_balanced_map_needs_no_moves() {
        for counts in [
            &[4096][..],
            &[1024; 4],
            &[820, 819, 819, 819, 819],
            &[2, 3, 3],
        ] {
            let (map, shards) = map_of(counts);
            assert_eq!(plan_rebalance(&map, &shards), Vec::new(), "{counts:?}");
        }
    }

    #[test]
    fn plans_take_the_fewest_moves_for_every_small_map() {
        // Every map of 7 buckets over 3 shards, and of 6 over 4 (including empty shards).
        for (buckets, shard_count) in [(7u32, 3u32), (6, 4)] {
            for code in 0..shard_count.pow(buckets) {
                let map: Vec<ShardId> = (0..buckets)
                    .map(|i| ShardId(((code / shard_count.pow(i)) % shard_count) as u16))
                    .collect();
                let shards: Vec<ShardId> = (0..shard_count as u16).map(ShardId).collect();
                let counts: Vec<usize> = bucket_counts(&map, &shards).into_values().collect();
                let plan = plan_rebalance(&map, &shards);
                assert_eq!(
                    plan.len(),
                    fewest_moves_by_brute_force(&counts),
                    "{counts:?}"
                );
                let moved: std::collections::BTreeSet<_> =
                    plan.iter().map(|planned| planned.bucket).collect();
                assert_eq!(moved.len(), plan.len(), "a bucket moves twice: {plan:?}");
                assert_balanced(&apply(&map, &plan), &shards);
            }
        }
    }

    #[test]
    fn everything_on_one_shard_spreads_over_all_of_them() {
        let (map, mut shards) = map_of(&[4096]);
        shards.extend([ShardId(1), ShardId(2)]);
        let plan = plan_rebalance(&map, &shards);
        assert_eq!(plan.len(), 4096 - 1366);
        let after = apply(&map, &plan);
        assert_balanced(&after, &shards);
        // Interleaving: the first moves alternate between the two receivers.
        assert_eq!(plan[0].to, ShardId(1));
        assert_eq!(plan[1].to, ShardId(2));
    }

    #[test]
    fn moves_alternate_between_giving_shards() {
        let (map, mut shards) = map_of(&[1024, 1024, 1024, 1024]);
        shards.push(ShardId(4));
        let plan = plan_rebalance(&map, &shards);
        let first_sources: Vec<u16> = plan.iter().take(4).map(|planned| planned.from.0).collect();
        assert_eq!(first_sources, [0, 1, 2, 3]);
    }

    #[test]
    fn out_of_range_flags_are_refused_with_the_flag_named() {
        assert_eq!(bucket_flag(4095).ok(), Some(BucketId(4095)));
        for value in [4096, 65_536, u64::MAX] {
            let error = bucket_flag(value).expect_err("out of range");
            assert!(error.to_string().starts_with("invalid --bucket"), "{error}");
        }
        assert_eq!(shard_count_flag(1).ok(), Some(1));
        assert_eq!(shard_count_flag(64).ok(), Some(64));
        for value in [0, 65, 1 << 16] {
            let error = shard_count_flag(value).expect_err("out of range");
            assert!(error.to_string().starts_with("invalid --count"), "{error}");
        }
    }

    #[test]
    fn status_table_lists_every_shard_with_its_readers() {
        let status = StorageStatus {
            data_dir: "/srv/mercato".to_owned(),
            bucket_count: BUCKET_COUNT,
            shards: vec![
                ShardStatus {
                    id: 0,
                    buckets: 2048,
                    last_lsn: 17,
                    readers: BTreeMap::from([("search".to_owned(), 12)]),
                },
                ShardStatus {
                    id: 1,
                    buckets: 2048,
                    last_lsn: 0,
                    readers: BTreeMap::new(),
                },
            ],
        };
        let mut out = Vec::new();
        write_status_table(&mut out, &status).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip_while(|line| !line.starts_with("shard "))
            .skip(1)
            .map(|line| line.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows,
            [
                vec!["0000", "2048", "17", "search@12"],
                vec!["0001", "2048", "0", "-"]
            ]
        );
    }
}
