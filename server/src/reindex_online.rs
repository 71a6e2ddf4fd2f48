//! `mercato reindex --url URL --token TOKEN [--shard N]`: asks a running server to rebuild its
//! search indexes (`POST /v1/admin/reindex`) and follows the rebuilds through
//! `GET /v1/admin/search`, one progress bar per shard, until each new generation is swapped in.
//! The server answers queries from the old index meanwhile.

use anyhow::Context;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One request's time limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Time between two status reads.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Status reads that may fail in a row (a restart of the server, a dropped connection) before
/// giving up.
const POLL_FAILURES_MAX: u32 = 10;

/// What the command was asked.
#[derive(Clone, Debug)]
pub struct OnlineReindex {
    /// Base URL of the server, such as `http://127.0.0.1:8080`.
    pub url: String,
    /// The platform administrator's token.
    pub token: String,
    pub shard: Option<u16>,
    /// Give up after this long.
    pub timeout: Duration,
}

/// One shard's rebuild, as finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardRebuilt {
    pub shard: u16,
    pub generation: u64,
    pub lsn: u64,
    pub documents: u64,
}

/// A shard's status fields this command reads.
#[derive(Clone, Debug, Default)]
struct ShardView {
    generation: u64,
    lsn: u64,
    documents: u64,
    rebuilding: bool,
    rebuilds_completed: u64,
    last_error: Option<String>,
    /// (tenants done, tenants total, products, vendors).
    progress: Option<(u64, u64, u64, u64)>,
}

fn number(value: &Value, key: &str) -> u64 {
    value[key].as_u64().unwrap_or(0)
}

fn shard_views(status: &Value) -> anyhow::Result<BTreeMap<u16, ShardView>> {
    let shards = status["shards"]
        .as_array()
        .context("the status has no `shards` list")?;
    let mut views = BTreeMap::new();
    for shard in shards {
        let id = u16::try_from(number(shard, "shard")).context("a shard number is out of range")?;
        let progress = shard.get("rebuild_progress").filter(|p| p.is_object());
        views.insert(
            id,
            ShardView {
                generation: number(shard, "generation"),
                lsn: number(shard, "lsn"),
                documents: number(shard, "documents"),
                rebuilding: shard["rebuilding"].as_bool().unwrap_or(false),
                rebuilds_completed: number(shard, "rebuilds_completed"),
                last_error: shard["last_error"].as_str().map(str::to_owned),
                progress: progress.map(|p| {
                    (
                        number(p, "tenants_done"),
                        number(p, "tenants_total"),
                        number(p, "products_indexed"),
                        number(p, "vendors_indexed"),
                    )
                }),
            },
        );
    }
    Ok(views)
}

/// The problem's detail of an error answer, else its status.
async fn refused(response: reqwest::Response) -> anyhow::Error {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    match body["detail"].as_str() {
        Some(detail) => anyhow::anyhow!("the server answered {status}: {detail}"),
        None => anyhow::anyhow!("the server answered {status}"),
    }
}

async fn status(
    client: &reqwest::Client,
    options: &OnlineReindex,
) -> anyhow::Result<BTreeMap<u16, ShardView>> {
    let response = client
        .get(format!("{}/v1/admin/search", options.url))
        .bearer_auth(&options.token)
        .send()
        .await
        .with_context(|| format!("cannot reach {}", options.url))?;
    if !response.status().is_success() {
        return Err(refused(response).await);
    }
    let body: Value = response
        .json()
        .await
        .context("the search status is not JSON")?;
    shard_views(&body)
}

fn progress_bar(bars: &indicatif::MultiProgress, shard: u16) -> indicatif::ProgressBar {
    const TEMPLATE: &str =
        "{prefix} {elapsed_precise} [{wide_bar}] {pos}/{len} tenants, eta {eta}  {msg}";
    let bar = bars.add(indicatif::ProgressBar::new(0));
    // The template is a constant; a parse error could only come from editing it, and then the
    // default style is still a working bar.
    if let Ok(style) = indicatif::ProgressStyle::with_template(TEMPLATE) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(format!("shard {shard}"));
    bar
}

/// Starts the rebuilds and waits until every one of them is swapped in (or failed).
pub async fn run(options: &OnlineReindex) -> anyhow::Result<Vec<ShardRebuilt>> {
    // reqwest is built without a bundled crypto provider (also needed for plain HTTP).
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("cannot build the HTTP client")?;
    let before = status(&client, options).await?;

    let mut request = client.post(format!("{}/v1/admin/reindex", options.url));
    if let Some(shard) = options.shard {
        request = request.query(&[("shard", shard)]);
    }
    let response = request
        .bearer_auth(&options.token)
        .send()
        .await
        .with_context(|| format!("cannot reach {}", options.url))?;
    if response.status() != reqwest::StatusCode::ACCEPTED {
        return Err(refused(response).await);
    }
    let started: Value = response
        .json()
        .await
        .context("the reindex answer is not JSON")?;
    let shards: Vec<u16> = started["shards"]
        .as_array()
        .context("the reindex answer has no `shards` list")?
        .iter()
        .filter_map(|s| s.as_u64().and_then(|s| u16::try_from(s).ok()))
        .collect();

    let bars = indicatif::MultiProgress::new();
    let mut pending: BTreeMap<u16, indicatif::ProgressBar> = shards
        .iter()
        .map(|&shard| (shard, progress_bar(&bars, shard)))
        .collect();
    let mut done = Vec::with_capacity(shards.len());
    let deadline = Instant::now() + options.timeout;
    let mut failures = 0;
    while !pending.is_empty() {
        tokio::time::sleep(POLL_INTERVAL).await;
        let now = match status(&client, options).await {
            Ok(now) => {
                failures = 0;
                now
            }
            Err(error) => {
                failures += 1;
                if failures >= POLL_FAILURES_MAX {
                    return Err(error.context("lost the server while following the rebuild"));
                }
                continue;
            }
        };
        let mut finished = Vec::new();
        for (&shard, bar) in &pending {
            let Some(view) = now.get(&shard) else {
                anyhow::bail!("shard {shard} is no longer in the search status");
            };
            if let Some((tenants_done, tenants_total, products, vendors)) = view.progress {
                bar.set_length(tenants_total);
                bar.set_position(tenants_done);
                bar.set_message(format!("{products} products, {vendors} vendors"));
            }
            let completed_before = before.get(&shard).map_or(0, |b| b.rebuilds_completed);
            if view.rebuilds_completed > completed_before && !view.rebuilding {
                finished.push(shard);
            } else if !view.rebuilding {
                let reason = view
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "no new generation was swapped in".to_owned());
                anyhow::bail!("the rebuild of shard {shard} failed: {reason}");
            }
        }
        for shard in finished {
            if let Some(bar) = pending.remove(&shard) {
                bar.finish_and_clear();
            }
            let Some(view) = now.get(&shard) else {
                continue;
            };
            done.push(ShardRebuilt {
                shard,
                generation: view.generation,
                lsn: view.lsn,
                documents: view.documents,
            });
        }
        if !pending.is_empty() && Instant::now() >= deadline {
            anyhow::bail!(
                "the rebuild did not finish within {:?} (shards {:?} still rebuilding)",
                options.timeout,
                pending.keys().collect::<Vec<_>>()
            );
        }
    }
    done.sort_by_key(|rebuilt| rebuilt.shard);
    Ok(done)
}
