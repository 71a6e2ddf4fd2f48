//! Configuration: layered loading and validation into a typed [`Config`].
//!
//! Layers, lowest precedence first:
//! 1. the defaults in `appliance.toml`, embedded in the binary ([`DEFAULTS_TOML`]);
//! 2. an optional TOML file (`--config FILE`);
//! 3. `MERCATO_*` environment variables: a key in a section is `MERCATO_<SECTION>_<KEY>`
//!    (`tls.cert` is `MERCATO_TLS_CERT`), a top-level key is `MERCATO_<KEY>`;
//! 4. command-line flags.
//!
//! Unknown keys are refused in every layer, so a typo never silently falls back to a default.
//! Every refusal names the key, the reason, and the layer that set the value.
//!
//! Architecture invariant: nothing outside this module sees a raw configuration value; the rest
//! of the server receives [`Config`], whose fields are already typed and within bounds.

mod values;

pub use values::{ByteSize, ByteSizeError, ListenAddr, LogFormat};

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The embedded defaults: the repository's `appliance.toml`, documented key by key.
pub const DEFAULTS_TOML: &str = include_str!("../../appliance.toml");

/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "MERCATO_";

/// The configuration's sections. Environment variable names are mapped to keys by these known
/// prefixes rather than by splitting on `_`, since keys themselves contain underscores.
const SECTIONS: [&str; 6] = ["log", "tls", "http", "storage", "search", "verification"];

/// Keys whose values are strings (addresses, paths, filters), never numbers or booleans.
const STRING_KEYS: [&str; 6] = [
    "listen",
    "data_dir",
    "log.level",
    "tls.cert",
    "tls.key",
    "verification.ocr",
];

/// Metadata name of the environment layer, used to say where a bad value came from.
const ENV_LAYER_NAME: &str = "environment variable";
/// Metadata name of the command-line layer.
const FLAG_LAYER_NAME: &str = "command-line flag";

/// Upper bound of `shutdown_grace_ms` and `http.request_timeout_ms`: one hour.
pub const LONG_DURATION_MS_MAX: i64 = 3_600_000;
/// Upper bound of `http.header_read_timeout_ms`: ten minutes.
pub const HEADER_READ_TIMEOUT_MS_MAX: i64 = 600_000;
/// Upper bound of `http.request_body_bytes_max`.
pub const REQUEST_BODY_BYTES_LIMIT: u64 = 1 << 30;
/// Upper bound of `http.connections_max`.
pub const CONNECTIONS_LIMIT: i64 = 1_000_000;
/// Upper bound of `http.rate_limit_per_second` and `http.rate_limit_burst`.
pub const RATE_LIMIT_LIMIT: i64 = 10_000_000;
/// Upper bound of `storage.shards_initial`; the storage layer enforces the same bound.
pub const SHARDS_LIMIT: i64 = 256;
/// Upper bound of `storage.commit_batch_count_max`; the storage layer enforces the same bound.
pub const COMMIT_BATCH_COUNT_LIMIT: i64 = 65_536;
/// Bounds of `storage.commit_batch_bytes_max`; the storage layer enforces the same bounds.
pub const COMMIT_BATCH_BYTES_MIN: u64 = 1 << 10;
pub const COMMIT_BATCH_BYTES_LIMIT: u64 = 256 << 20;
/// Upper bound of `storage.pending_commands_max`; the storage layer enforces the same bound.
pub const PENDING_COMMANDS_LIMIT: i64 = 1 << 20;
/// Upper bound of `storage.read_cache_bytes_max` (64 GiB).
pub const READ_CACHE_BYTES_LIMIT: u64 = 64 << 30;
/// Bounds of `search.refresh_interval_ms`; the engine enforces the same bounds.
pub const SEARCH_REFRESH_INTERVAL_MS_MIN: i64 = 10;
pub const SEARCH_REFRESH_INTERVAL_MS_MAX: i64 = 10_000;
/// Bounds of `search.sales_refresh_interval_ms`; the engine enforces the same bounds.
pub const SEARCH_SALES_REFRESH_INTERVAL_MS_MIN: i64 = 10;
pub const SEARCH_SALES_REFRESH_INTERVAL_MS_MAX: i64 = 3_600_000;
/// Bounds of `search.writer_heap_bytes`; the engine enforces the same bounds (Tantivy needs at
/// least 15 MiB per index writer).
pub const SEARCH_WRITER_HEAP_BYTES_MIN: u64 = 15 << 20;
pub const SEARCH_WRITER_HEAP_BYTES_LIMIT: u64 = 1 << 30;

/// The validated configuration the server runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub shutdown_grace: Duration,
    pub log: LogConfig,
    pub tls: TlsMode,
    pub http: HttpConfig,
    pub storage: StorageConfig,
    pub search: SearchConfig,
    pub verification: VerificationConfig,
}

/// The verification queue and workers (see `mercato_engine::jobs::QueueConfig`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerificationConfig {
    /// Worker threads; 0 means one per core.
    pub workers: u32,
    pub lease: Duration,
    pub attempts_max: u32,
    pub backlog_max: u64,
    pub job_time_budget: Duration,
    pub upload_bytes_max: u64,
    /// Run `tesseract` on scans when it is installed.
    pub ocr: bool,
    pub ocr_timeout: Duration,
    /// A job's memory budget: the most bytes one PDF's streams may inflate to.
    pub job_memory_bytes_max: u64,
}

/// Bounds of the `verification` keys; the engine enforces the same bounds.
pub const VERIFICATION_WORKERS_MAX: i64 = 256;
pub const VERIFICATION_LEASE_MS_MIN: i64 = 1_000;
pub const VERIFICATION_LEASE_MS_MAX: i64 = 3_600_000;
pub const VERIFICATION_ATTEMPTS_MAX: i64 = 100;
pub const VERIFICATION_BACKLOG_MAX: i64 = 10_000_000;
pub const VERIFICATION_JOB_TIME_BUDGET_MS_MAX: i64 = 86_400_000;
pub const VERIFICATION_UPLOAD_BYTES_MIN: u64 = 1 << 10;
pub const VERIFICATION_UPLOAD_BYTES_LIMIT: u64 = 256 << 20;
pub const VERIFICATION_OCR_TIMEOUT_MS_MAX: i64 = 600_000;
pub const VERIFICATION_JOB_MEMORY_BYTES_MIN: u64 = 1 << 20;
pub const VERIFICATION_JOB_MEMORY_BYTES_LIMIT: u64 = 1 << 30;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// A `tracing_subscriber::EnvFilter` directive list, already checked to parse.
    pub filter: String,
    pub format: LogFormat,
}

/// Whether and how the server speaks TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain HTTP (HTTP/1.1, and HTTP/2 with prior knowledge).
    Off,
    /// HTTPS with a certificate chain and private key read from PEM files.
    Files { cert: PathBuf, key: PathBuf },
    /// HTTPS with a self-signed certificate generated at start, for development.
    SelfSigned,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    pub request_body_bytes_max: usize,
    pub request_timeout: Duration,
    pub header_read_timeout: Duration,
    pub connections_max: u32,
    /// Requests per second each credential (or each client address, for anonymous requests)
    /// may make on average; 0 turns rate limiting off.
    pub rate_limit_per_second: u32,
    /// Requests a credential may make at once above the average rate.
    pub rate_limit_burst: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageConfig {
    pub shards_initial: u16,
    pub commit_batch_count_max: u32,
    pub commit_batch_bytes_max: u64,
    pub pending_commands_max: u32,
    /// Bytes of hot catalog records kept in memory; 0 turns the read cache off.
    pub read_cache_bytes_max: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchConfig {
    /// Longest time between a change reaching a shard's indexer and its visibility in search.
    pub refresh_interval: Duration,
    /// Memory of each shard index's writer.
    pub writer_heap_bytes: u64,
    /// How often products whose units sold moved are re-indexed (best-selling order).
    pub sales_refresh_interval: Duration,
}

/// Where configuration comes from besides the embedded defaults.
#[derive(Clone, Debug, Default)]
pub struct ConfigSources {
    /// A TOML file given with `--config`; it must exist.
    pub file: Option<PathBuf>,
    /// The process environment as `(name, value)` pairs; only `MERCATO_*` names are read.
    pub env: Vec<(String, String)>,
    pub flags: FlagOverrides,
}

impl ConfigSources {
    /// Sources with the given file and flags and the current process environment.
    pub fn from_process(file: Option<PathBuf>, flags: FlagOverrides) -> Self {
        let env = std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .filter(|(name, _)| name.starts_with(ENV_PREFIX))
            .collect();
        ConfigSources { file, env, flags }
    }
}

/// Values given on the command line; `None`/`false` leaves the lower layers' value.
#[derive(Clone, Debug, Default)]
pub struct FlagOverrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub tls_self_signed: bool,
}

/// The configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}", path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration:{}", ProblemList(problems))]
    Invalid { problems: Vec<ConfigProblem> },
}

/// One refused key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key path, such as `tls.cert`.
    pub key: String,
    pub reason: String,
    /// The layer that set the value, such as `environment variable MERCATO_LISTEN`.
    pub origin: Option<String>,
    /// When the problem is caused by another key's value (`tls.key` missing because
    /// `tls.cert` is set), that key; `origin` is then where it was set.
    pub cause_key: Option<String>,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.key.is_empty(), &self.origin) {
            // A problem with a whole layer, such as a TOML syntax error.
            (true, Some(origin)) => write!(f, "{origin}: {}", self.reason.trim_end()),
            (true, None) => write!(f, "{}", self.reason.trim_end()),
            (false, Some(origin)) => match &self.cause_key {
                Some(cause_key) => write!(
                    f,
                    "`{}`: {} ({cause_key} set by {origin})",
                    self.key, self.reason
                ),
                None => write!(f, "`{}`: {} (set by {origin})", self.key, self.reason),
            },
            (false, None) => write!(f, "`{}`: {}", self.key, self.reason),
        }
    }
}

struct ProblemList<'a>(&'a [ConfigProblem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [one] => write!(f, " {one}"),
            many => {
                for problem in many {
                    write!(f, "\n  {problem}")?;
                }
                Ok(())
            }
        }
    }
}

impl Config {
    /// Loads the embedded defaults, then the file, environment and flags of `sources`, and
    /// validates the result.
    pub fn load(sources: &ConfigSources) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULTS_TOML));
        if let Some(path) = &sources.file {
            // `Toml::file_exact` treats a missing file as empty; an operator who names a file
            // means it to exist.
            std::fs::metadata(path)
                .and_then(|meta| {
                    if meta.is_file() {
                        Ok(())
                    } else {
                        Err(std::io::Error::other("not a regular file"))
                    }
                })
                .map_err(|source| ConfigError::ReadFile {
                    path: path.clone(),
                    source,
                })?;
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment
            .merge(EnvLayer::new(&sources.env))
            .merge(FlagLayer(&sources.flags));
        let raw: RawConfig = figment.extract().map_err(|error| ConfigError::Invalid {
            problems: error.into_iter().map(problem_from_figment).collect(),
        })?;
        raw.validate(&figment)
    }

    /// The effective configuration as TOML, in the shape of `appliance.toml`; loading the output
    /// as a config file gives back the same configuration.
    pub fn to_toml(&self) -> String {
        let raw = RawConfig::from(self);
        // Serializing plain structs of strings, integers and booleans cannot fail.
        toml::to_string(&raw).expect("invariant: RawConfig serializes to TOML")
    }
}

// ---------------------------------------------------------------------------------------------
// Raw shape, as written in TOML

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: ListenAddr,
    data_dir: PathBuf,
    shutdown_grace_ms: i64,
    log: RawLog,
    tls: RawTls,
    http: RawHttp,
    storage: RawStorage,
    search: RawSearch,
    verification: RawVerification,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVerification {
    workers: i64,
    lease_ms: i64,
    attempts_max: i64,
    backlog_max: i64,
    job_time_budget_ms: i64,
    upload_bytes_max: ByteSize,
    ocr: String,
    ocr_timeout_ms: i64,
    job_memory_bytes_max: ByteSize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: String,
    format: LogFormat,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<PathBuf>,
    self_signed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    request_body_bytes_max: ByteSize,
    request_timeout_ms: i64,
    header_read_timeout_ms: i64,
    connections_max: i64,
    rate_limit_per_second: i64,
    rate_limit_burst: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    shards_initial: i64,
    commit_batch_count_max: i64,
    commit_batch_bytes_max: ByteSize,
    pending_commands_max: i64,
    read_cache_bytes_max: ByteSize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSearch {
    refresh_interval_ms: i64,
    writer_heap_bytes: ByteSize,
    sales_refresh_interval_ms: i64,
}

/// Collects the problems of one validation pass, attributing each to the layer that set it.
struct Checker<'a> {
    figment: &'a Figment,
    problems: Vec<ConfigProblem>,
}

impl Checker<'_> {
    fn refuse(&mut self, key: &str, reason: String) {
        self.refuse_because_of(key, key, reason);
    }

    /// Refuses `key` because of the value of `cause_key`, naming the layer that set the latter.
    fn refuse_because_of(&mut self, key: &str, cause_key: &str, reason: String) {
        let origin = self
            .figment
            .find_metadata(cause_key)
            .map(|metadata| origin_of(metadata, cause_key));
        let cause_key = (cause_key != key).then(|| cause_key.to_owned());
        self.problems.push(ConfigProblem {
            key: key.to_owned(),
            reason,
            origin,
            cause_key,
        });
    }

    /// `value` if it is within `min..=max`, else records a problem and returns `min`.
    fn int_in(&mut self, key: &str, value: i64, min: i64, max: i64) -> i64 {
        if (min..=max).contains(&value) {
            value
        } else {
            self.refuse(key, format!("must be between {min} and {max}, got {value}"));
            min
        }
    }

    fn bytes_in(&mut self, key: &str, value: ByteSize, min: u64, max: u64) -> u64 {
        if (min..=max).contains(&value.bytes()) {
            value.bytes()
        } else {
            self.refuse(
                key,
                format!(
                    "must be between {} and {}, got {value}",
                    ByteSize(min),
                    ByteSize(max)
                ),
            );
            min
        }
    }

    fn non_empty_path(&mut self, key: &str, path: &Path) {
        if path.as_os_str().is_empty() {
            self.refuse(key, "must not be empty".to_owned());
        }
    }
}

/// Narrows an integer already checked to be within a smaller type's range.
fn narrow<T: TryFrom<i64>>(value: i64) -> T {
    T::try_from(value)
        .unwrap_or_else(|_| panic!("invariant: {value} was range-checked before narrowing"))
}

fn millis(value: i64) -> Duration {
    Duration::from_millis(narrow(value))
}

impl RawConfig {
    fn validate(self, figment: &Figment) -> Result<Config, ConfigError> {
        let mut check = Checker {
            figment,
            problems: Vec::new(),
        };

        check.non_empty_path("data_dir", &self.data_dir);
        let shutdown_grace_ms = check.int_in(
            "shutdown_grace_ms",
            self.shutdown_grace_ms,
            0,
            LONG_DURATION_MS_MAX,
        );

        if let Err(error) = tracing_subscriber::EnvFilter::builder().parse(&self.log.level) {
            check.refuse(
                "log.level",
                format!("`{}` is not a log filter: {error}", self.log.level),
            );
        }

        let tls = match (self.tls.cert, self.tls.key, self.tls.self_signed) {
            (None, None, false) => TlsMode::Off,
            (None, None, true) => TlsMode::SelfSigned,
            (Some(cert), Some(key), false) => {
                check.non_empty_path("tls.cert", &cert);
                check.non_empty_path("tls.key", &key);
                TlsMode::Files { cert, key }
            }
            (Some(_), None, _) => {
                check.refuse_because_of(
                    "tls.key",
                    "tls.cert",
                    "must be set when tls.cert is set".to_owned(),
                );
                TlsMode::Off
            }
            (None, Some(_), _) => {
                check.refuse_because_of(
                    "tls.cert",
                    "tls.key",
                    "must be set when tls.key is set".to_owned(),
                );
                TlsMode::Off
            }
            (Some(_), Some(_), true) => {
                check.refuse(
                    "tls.self_signed",
                    "cannot be combined with tls.cert and tls.key".to_owned(),
                );
                TlsMode::Off
            }
        };

        let http = HttpConfig {
            request_body_bytes_max: usize::try_from(check.bytes_in(
                "http.request_body_bytes_max",
                self.http.request_body_bytes_max,
                1,
                REQUEST_BODY_BYTES_LIMIT,
            ))
            .unwrap_or(usize::MAX),
            request_timeout: millis(check.int_in(
                "http.request_timeout_ms",
                self.http.request_timeout_ms,
                1,
                LONG_DURATION_MS_MAX,
            )),
            header_read_timeout: millis(check.int_in(
                "http.header_read_timeout_ms",
                self.http.header_read_timeout_ms,
                1,
                HEADER_READ_TIMEOUT_MS_MAX,
            )),
            connections_max: narrow(check.int_in(
                "http.connections_max",
                self.http.connections_max,
                1,
                CONNECTIONS_LIMIT,
            )),
            rate_limit_per_second: narrow(check.int_in(
                "http.rate_limit_per_second",
                self.http.rate_limit_per_second,
                0,
                RATE_LIMIT_LIMIT,
            )),
            rate_limit_burst: narrow(check.int_in(
                "http.rate_limit_burst",
                self.http.rate_limit_burst,
                1,
                RATE_LIMIT_LIMIT,
            )),
        };

        let storage = StorageConfig {
            shards_initial: narrow(check.int_in(
                "storage.shards_initial",
                self.storage.shards_initial,
                1,
                SHARDS_LIMIT,
            )),
            commit_batch_count_max: narrow(check.int_in(
                "storage.commit_batch_count_max",
                self.storage.commit_batch_count_max,
                1,
                COMMIT_BATCH_COUNT_LIMIT,
            )),
            commit_batch_bytes_max: check.bytes_in(
                "storage.commit_batch_bytes_max",
                self.storage.commit_batch_bytes_max,
                COMMIT_BATCH_BYTES_MIN,
                COMMIT_BATCH_BYTES_LIMIT,
            ),
            pending_commands_max: narrow(check.int_in(
                "storage.pending_commands_max",
                self.storage.pending_commands_max,
                1,
                PENDING_COMMANDS_LIMIT,
            )),
            read_cache_bytes_max: check.bytes_in(
                "storage.read_cache_bytes_max",
                self.storage.read_cache_bytes_max,
                0,
                READ_CACHE_BYTES_LIMIT,
            ),
        };

        let search = SearchConfig {
            refresh_interval: millis(check.int_in(
                "search.refresh_interval_ms",
                self.search.refresh_interval_ms,
                SEARCH_REFRESH_INTERVAL_MS_MIN,
                SEARCH_REFRESH_INTERVAL_MS_MAX,
            )),
            writer_heap_bytes: check.bytes_in(
                "search.writer_heap_bytes",
                self.search.writer_heap_bytes,
                SEARCH_WRITER_HEAP_BYTES_MIN,
                SEARCH_WRITER_HEAP_BYTES_LIMIT,
            ),
            sales_refresh_interval: millis(check.int_in(
                "search.sales_refresh_interval_ms",
                self.search.sales_refresh_interval_ms,
                SEARCH_SALES_REFRESH_INTERVAL_MS_MIN,
                SEARCH_SALES_REFRESH_INTERVAL_MS_MAX,
            )),
        };

        let lease_ms = check.int_in(
            "verification.lease_ms",
            self.verification.lease_ms,
            VERIFICATION_LEASE_MS_MIN,
            VERIFICATION_LEASE_MS_MAX,
        );
        let verification = VerificationConfig {
            workers: check.int_in(
                "verification.workers",
                self.verification.workers,
                0,
                VERIFICATION_WORKERS_MAX,
            ) as u32,
            lease: millis(lease_ms),
            attempts_max: check.int_in(
                "verification.attempts_max",
                self.verification.attempts_max,
                1,
                VERIFICATION_ATTEMPTS_MAX,
            ) as u32,
            backlog_max: check.int_in(
                "verification.backlog_max",
                self.verification.backlog_max,
                1,
                VERIFICATION_BACKLOG_MAX,
            ) as u64,
            job_time_budget: millis(check.int_in(
                "verification.job_time_budget_ms",
                self.verification.job_time_budget_ms,
                lease_ms,
                VERIFICATION_JOB_TIME_BUDGET_MS_MAX,
            )),
            upload_bytes_max: check.bytes_in(
                "verification.upload_bytes_max",
                self.verification.upload_bytes_max,
                VERIFICATION_UPLOAD_BYTES_MIN,
                VERIFICATION_UPLOAD_BYTES_LIMIT,
            ),
            ocr: match self.verification.ocr.as_str() {
                "auto" => true,
                "off" => false,
                _ => {
                    check.refuse(
                        "verification.ocr",
                        format!(
                            "must be \"auto\" or \"off\", got {:?}",
                            self.verification.ocr
                        ),
                    );
                    false
                }
            },
            ocr_timeout: millis(check.int_in(
                "verification.ocr_timeout_ms",
                self.verification.ocr_timeout_ms,
                1_000,
                VERIFICATION_OCR_TIMEOUT_MS_MAX,
            )),
            job_memory_bytes_max: check.bytes_in(
                "verification.job_memory_bytes_max",
                self.verification.job_memory_bytes_max,
                VERIFICATION_JOB_MEMORY_BYTES_MIN,
                VERIFICATION_JOB_MEMORY_BYTES_LIMIT,
            ),
        };
        let refused = |key: &str| check.problems.iter().any(|p| p.key == key);
        if verification.ocr_timeout >= verification.job_time_budget
            && !refused("verification.ocr_timeout_ms")
            && !refused("verification.job_time_budget_ms")
        {
            // A scan's OCR must be killed before the job's lease stops being extended.
            check.refuse(
                "verification.ocr_timeout_ms",
                format!(
                    "must be below verification.job_time_budget_ms ({} ms), got {} ms",
                    verification.job_time_budget.as_millis(),
                    verification.ocr_timeout.as_millis()
                ),
            );
        }

        if !check.problems.is_empty() {
            return Err(ConfigError::Invalid {
                problems: check.problems,
            });
        }
        Ok(Config {
            listen: self.listen.0,
            data_dir: self.data_dir,
            shutdown_grace: millis(shutdown_grace_ms),
            log: LogConfig {
                filter: self.log.level,
                format: self.log.format,
            },
            tls,
            http,
            storage,
            search,
            verification,
        })
    }
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl From<&Config> for RawConfig {
    fn from(config: &Config) -> Self {
        let (cert, key, self_signed) = match &config.tls {
            TlsMode::Off => (None, None, false),
            TlsMode::Files { cert, key } => (Some(cert.clone()), Some(key.clone()), false),
            TlsMode::SelfSigned => (None, None, true),
        };
        RawConfig {
            listen: ListenAddr(config.listen),
            data_dir: config.data_dir.clone(),
            shutdown_grace_ms: duration_ms(config.shutdown_grace),
            log: RawLog {
                level: config.log.filter.clone(),
                format: config.log.format,
            },
            tls: RawTls {
                cert,
                key,
                self_signed,
            },
            http: RawHttp {
                request_body_bytes_max: ByteSize(config.http.request_body_bytes_max as u64),
                request_timeout_ms: duration_ms(config.http.request_timeout),
                header_read_timeout_ms: duration_ms(config.http.header_read_timeout),
                connections_max: i64::from(config.http.connections_max),
                rate_limit_per_second: i64::from(config.http.rate_limit_per_second),
                rate_limit_burst: i64::from(config.http.rate_limit_burst),
            },
            storage: RawStorage {
                shards_initial: i64::from(config.storage.shards_initial),
                commit_batch_count_max: i64::from(config.storage.commit_batch_count_max),
                commit_batch_bytes_max: ByteSize(config.storage.commit_batch_bytes_max),
                pending_commands_max: i64::from(config.storage.pending_commands_max),
                read_cache_bytes_max: ByteSize(config.storage.read_cache_bytes_max),
            },
            search: RawSearch {
                refresh_interval_ms: duration_ms(config.search.refresh_interval),
                writer_heap_bytes: ByteSize(config.search.writer_heap_bytes),
                sales_refresh_interval_ms: duration_ms(config.search.sales_refresh_interval),
            },
            verification: RawVerification {
                workers: i64::from(config.verification.workers),
                lease_ms: duration_ms(config.verification.lease),
                attempts_max: i64::from(config.verification.attempts_max),
                backlog_max: i64::try_from(config.verification.backlog_max).unwrap_or(i64::MAX),
                job_time_budget_ms: duration_ms(config.verification.job_time_budget),
                upload_bytes_max: ByteSize(config.verification.upload_bytes_max),
                ocr: if config.verification.ocr {
                    "auto"
                } else {
                    "off"
                }
                .to_owned(),
                ocr_timeout_ms: duration_ms(config.verification.ocr_timeout),
                job_memory_bytes_max: ByteSize(config.verification.job_memory_bytes_max),
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Layers

/// Maps the part of an environment variable name after [`ENV_PREFIX`] to a dotted key path:
/// `TLS_CERT` -> `tls.cert`, `DATA_DIR` -> `data_dir`.
pub fn env_name_to_key(name_after_prefix: &str) -> String {
    let lower = name_after_prefix.to_ascii_lowercase();
    for section in SECTIONS {
        if let Some(key) = lower
            .strip_prefix(section)
            .and_then(|rest| rest.strip_prefix('_'))
        {
            return format!("{section}.{key}");
        }
    }
    lower
}

/// The environment variable that sets a dotted key path.
pub fn key_to_env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "_").to_ascii_uppercase())
}

/// `MERCATO_*` variables as a figment layer. A custom provider rather than `figment::Env`:
/// it reads an explicit list (tests need no process-global environment changes) and its
/// metadata lets errors name the variable.
struct EnvLayer {
    dict: Dict,
}

impl EnvLayer {
    fn new(vars: &[(String, String)]) -> Self {
        let mut dict = Dict::new();
        for (name, raw_value) in vars {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if rest.is_empty() {
                continue;
            }
            let key = env_name_to_key(rest);
            // Values parse like figment's own `Env` ("4" is an integer, "true" a boolean),
            // except for keys that are always strings: a data directory named "2024" stays a
            // path.
            let value = if STRING_KEYS.contains(&key.as_str()) {
                Value::from(raw_value.clone())
            } else {
                let Ok(value) = raw_value.parse::<Value>();
                value
            };
            insert_key(&mut dict, &key, value);
        }
        EnvLayer { dict }
    }
}

/// Inserts `value` at a one- or two-level dotted key.
fn insert_key(dict: &mut Dict, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            dict.insert(key.to_owned(), value);
        }
        Some((section, rest)) => {
            let entry = dict
                .entry(section.to_owned())
                .or_insert_with(|| Value::from(Dict::new()));
            // A value set at the section's own name (`MERCATO_TLS=1`) stays as it is and is
            // reported as the wrong type when extracted.
            if let Value::Dict(_, inner) = entry {
                inner.insert(rest.to_owned(), value);
            }
        }
    }
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named(ENV_LAYER_NAME)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Map::from([(Profile::Default, self.dict.clone())]))
    }
}

/// Command-line flags as the top layer.
struct FlagLayer<'a>(&'a FlagOverrides);

impl Provider for FlagLayer<'_> {
    fn metadata(&self) -> Metadata {
        Metadata::named(FLAG_LAYER_NAME)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        if let Some(listen) = &self.0.listen {
            insert_key(&mut dict, "listen", Value::from(listen.clone()));
        }
        if let Some(data_dir) = &self.0.data_dir {
            insert_key(
                &mut dict,
                "data_dir",
                Value::from(data_dir.to_string_lossy().into_owned()),
            );
        }
        if self.0.tls_self_signed {
            insert_key(&mut dict, "tls.self_signed", Value::from(true));
        }
        Ok(Map::from([(Profile::Default, dict)]))
    }
}

/// The command-line flag that sets a key, for error messages.
fn flag_for_key(key: &str) -> &'static str {
    match key {
        "listen" => "--listen",
        "data_dir" => "--data-dir",
        "tls.self_signed" => "--tls-self-signed",
        _ => "a command-line flag",
    }
}

/// Describes the layer a value came from: `environment variable MERCATO_LISTEN`,
/// `config file /etc/mercato.toml`, `command-line flag --listen`, or `built-in defaults`.
fn origin_of(metadata: &Metadata, key: &str) -> String {
    if metadata.name == ENV_LAYER_NAME {
        format!("environment variable {}", key_to_env_name(key))
    } else if metadata.name == FLAG_LAYER_NAME {
        format!("command-line flag {}", flag_for_key(key))
    } else if let Some(path) = metadata
        .source
        .as_ref()
        .and_then(|source| source.file_path())
    {
        format!("config file {}", path.display())
    } else {
        "built-in defaults".to_owned()
    }
}

fn problem_from_figment(error: figment::Error) -> ConfigProblem {
    use figment::error::Kind;

    let mut path = error.path.clone();
    let reason = match &error.kind {
        Kind::UnknownField(found, expected) => {
            // Figment usually puts the unknown key at the end of the path already.
            if path.last() != Some(found) {
                path.push(found.clone());
            }
            format!("unknown key; expected one of: {}", expected.join(", "))
        }
        Kind::MissingField(field) => {
            if path.last().map(String::as_str) != Some(field.as_ref()) {
                path.push(field.to_string());
            }
            "is required".to_owned()
        }
        Kind::InvalidType(actual, expected) => {
            format!("expected {}, found {actual}", friendly_type(expected))
        }
        Kind::UnknownVariant(found, expected) => {
            format!("`{found}` is not one of: {}", expected.join(", "))
        }
        other => other.to_string(),
    };
    let key = path.join(".");
    let origin = error
        .metadata
        .as_ref()
        .map(|metadata| origin_of(metadata, &key));
    ConfigProblem {
        key,
        reason,
        origin,
        cause_key: None,
    }
}

/// Serde's Rust type names as an operator would say them.
fn friendly_type(expected: &str) -> String {
    match expected {
        "i64" | "u64" | "u32" | "u16" => "an integer".to_owned(),
        "a boolean" | "bool" => "true or false".to_owned(),
        "a string" | "string" => "a string".to_owned(),
        "path string" => "a path".to_owned(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources() -> ConfigSources {
        ConfigSources::default()
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn problems(result: Result<Config, ConfigError>) -> Vec<ConfigProblem> {
        match result {
            Err(ConfigError::Invalid { problems }) => problems,
            other => panic!("expected invalid configuration, got {other:?}"),
        }
    }

    fn write_file(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("mercato.toml");
        std::fs::write(&path, text).expect("write test config");
        path
    }

    #[test]
    fn embedded_defaults_are_valid() {
        let config = Config::load(&sources()).expect("defaults load");
        assert_eq!(
            config.listen,
            "127.0.0.1:8080".parse::<SocketAddr>().expect("addr")
        );
        assert_eq!(config.data_dir, PathBuf::from("mercato-data"));
        assert_eq!(config.tls, TlsMode::Off);
        assert_eq!(config.storage.shards_initial, 4);
        assert_eq!(config.http.request_body_bytes_max, 8 << 20);
        assert_eq!(config.log.format, LogFormat::Text);
    }

    #[test]
    fn search_keys_have_defaults_bounds_and_environment_names() {
        let config = Config::load(&sources()).expect("defaults load");
        assert_eq!(config.search.refresh_interval, Duration::from_millis(250));
        assert_eq!(config.search.writer_heap_bytes, 64 << 20);

        let mut sources = sources();
        sources.env = env(&[
            ("MERCATO_SEARCH_REFRESH_INTERVAL_MS", "100"),
            ("MERCATO_SEARCH_WRITER_HEAP_BYTES", "32MiB"),
        ]);
        let config = Config::load(&sources).expect("environment layer");
        assert_eq!(config.search.refresh_interval, Duration::from_millis(100));
        assert_eq!(config.search.writer_heap_bytes, 32 << 20);

        sources.env = env(&[
            ("MERCATO_SEARCH_REFRESH_INTERVAL_MS", "5"),
            ("MERCATO_SEARCH_WRITER_HEAP_BYTES", "1MiB"),
        ]);
        let keys: Vec<String> = problems(Config::load(&sources))
            .into_iter()
            .map(|p| p.key)
            .collect();
        assert_eq!(
            keys,
            vec!["search.refresh_interval_ms", "search.writer_heap_bytes"]
        );
    }

    #[test]
    fn verification_keys_have_defaults_bounds_and_environment_names() {
        let config = Config::load(&sources()).expect("defaults load");
        assert_eq!(config.verification.workers, 0);
        assert_eq!(config.verification.lease, Duration::from_secs(30));
        assert_eq!(config.verification.upload_bytes_max, 16 << 20);
        assert!(config.verification.ocr);

        let mut sources = sources();
        sources.env = env(&[
            ("MERCATO_VERIFICATION_WORKERS", "3"),
            ("MERCATO_VERIFICATION_OCR", "off"),
            ("MERCATO_VERIFICATION_UPLOAD_BYTES_MAX", "2MiB"),
        ]);
        let config = Config::load(&sources).expect("environment layer");
        assert_eq!(config.verification.workers, 3);
        assert!(!config.verification.ocr);
        assert_eq!(config.verification.upload_bytes_max, 2 << 20);

        sources.env = env(&[
            ("MERCATO_VERIFICATION_ATTEMPTS_MAX", "0"),
            ("MERCATO_VERIFICATION_OCR", "sometimes"),
            ("MERCATO_VERIFICATION_JOB_TIME_BUDGET_MS", "10"),
        ]);
        let mut keys: Vec<String> = problems(Config::load(&sources))
            .into_iter()
            .map(|p| p.key)
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            vec![
                "verification.attempts_max",
                "verification.job_time_budget_ms",
                "verification.ocr"
            ]
        );

        // OCR is killed before the job's lease stops being extended.
        sources.env = env(&[
            ("MERCATO_VERIFICATION_JOB_TIME_BUDGET_MS", "40000"),
            ("MERCATO_VERIFICATION_OCR_TIMEOUT_MS", "40000"),
        ]);
        let problems = problems(Config::load(&sources));
        assert_eq!(
            problems.iter().map(|p| p.key.as_str()).collect::<Vec<_>>(),
            vec!["verification.ocr_timeout_ms"]
        );
        assert!(problems[0].reason.contains("job_time_budget_ms"));
        sources.env = env(&[
            ("MERCATO_VERIFICATION_JOB_TIME_BUDGET_MS", "40000"),
            ("MERCATO_VERIFICATION_OCR_TIMEOUT_MS", "39999"),
        ]);
        assert_eq!(
            Config::load(&sources)
                .expect("OCR timeout below the budget")
                .verification
                .ocr_timeout,
            Duration::from_millis(39_999)
        );
    }

    #[test]
    fn printed_configuration_loads_back_identically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sources = sources();
        sources.env = env(&[
            ("MERCATO_TLS_CERT", "/c.pem"),
            ("MERCATO_TLS_KEY", "/k.pem"),
            ("MERCATO_HTTP_REQUEST_BODY_BYTES_MAX", "1000"),
        ]);
        let config = Config::load(&sources).expect("load");
        let printed = config.to_toml();
        let reloaded = Config::load(&ConfigSources {
            file: Some(write_file(&dir, &printed)),
            ..ConfigSources::default()
        })
        .expect("printed config loads");
        assert_eq!(reloaded, config);
    }

    #[test]
    fn layers_apply_in_order_defaults_file_env_flags() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write_file(
            &dir,
            "listen = \"127.0.0.1:1001\"\ndata_dir = \"/from-file\"\n[storage]\nshards_initial = 8\n",
        );
        let mut sources = ConfigSources {
            file: Some(file),
            ..ConfigSources::default()
        };
        let config = Config::load(&sources).expect("file layer");
        assert_eq!(config.listen.port(), 1001);
        assert_eq!(config.storage.shards_initial, 8);

        sources.env = env(&[
            ("MERCATO_LISTEN", "127.0.0.1:1002"),
            ("MERCATO_STORAGE_SHARDS_INITIAL", "16"),
        ]);
        let config = Config::load(&sources).expect("env layer");
        assert_eq!(config.listen.port(), 1002);
        assert_eq!(config.storage.shards_initial, 16);
        assert_eq!(config.data_dir, PathBuf::from("/from-file"));

        sources.flags = FlagOverrides {
            listen: Some("127.0.0.1:1003".into()),
            data_dir: None,
            tls_self_signed: true,
        };
        let config = Config::load(&sources).expect("flag layer");
        assert_eq!(config.listen.port(), 1003);
        assert_eq!(config.tls, TlsMode::SelfSigned);
        assert_eq!(config.data_dir, PathBuf::from("/from-file"));
    }

    #[test]
    fn env_names_map_by_known_section_prefixes() {
        assert_eq!(env_name_to_key("LISTEN"), "listen");
        assert_eq!(env_name_to_key("DATA_DIR"), "data_dir");
        assert_eq!(env_name_to_key("TLS_SELF_SIGNED"), "tls.self_signed");
        assert_eq!(
            env_name_to_key("STORAGE_SHARDS_INITIAL"),
            "storage.shards_initial"
        );
        assert_eq!(
            env_name_to_key("HTTP_REQUEST_BODY_BYTES_MAX"),
            "http.request_body_bytes_max"
        );
        assert_eq!(env_name_to_key("SHUTDOWN_GRACE_MS"), "shutdown_grace_ms");
        assert_eq!(
            key_to_env_name("storage.shards_initial"),
            "MERCATO_STORAGE_SHARDS_INITIAL"
        );
    }

    #[test]
    fn string_keys_from_env_stay_strings() {
        let vars = env(&[("MERCATO_DATA_DIR", "2024"), ("MERCATO_LOG_LEVEL", "info")]);
        let config = Config::load(&ConfigSources {
            env: vars,
            ..sources()
        })
        .expect("load");
        assert_eq!(config.data_dir, PathBuf::from("2024"));
    }

    #[test]
    fn byte_sizes_accept_units_from_env() {
        let sources = ConfigSources {
            env: env(&[("MERCATO_HTTP_REQUEST_BODY_BYTES_MAX", "512KiB")]),
            ..sources()
        };
        assert_eq!(
            Config::load(&sources)
                .expect("load")
                .http
                .request_body_bytes_max,
            512 << 10
        );
    }

    #[test]
    fn bad_listen_address_names_key_and_origin() {
        let sources = ConfigSources {
            env: env(&[("MERCATO_LISTEN", "localhost:nope")]),
            ..sources()
        };
        let found = problems(Config::load(&sources));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].key, "listen");
        assert!(
            found[0].reason.contains("not a listen address"),
            "{found:?}"
        );
        assert_eq!(
            found[0].origin.as_deref(),
            Some("environment variable MERCATO_LISTEN")
        );
    }

    #[test]
    fn unknown_keys_are_refused_in_file_and_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write_file(&dir, "[storage]\nshards = 3\n");
        let found = problems(Config::load(&ConfigSources {
            file: Some(file),
            ..sources()
        }));
        assert_eq!(found[0].key, "storage.shards", "{found:?}");
        assert!(found[0].reason.contains("unknown key"), "{found:?}");

        let found = problems(Config::load(&ConfigSources {
            env: env(&[("MERCATO_LISTEN_PORT", "80")]),
            ..sources()
        }));
        assert_eq!(found[0].key, "listen_port", "{found:?}");
        let found = problems(Config::load(&ConfigSources {
            env: env(&[("MERCATO_TLS_CERTIFICATE", "x")]),
            ..sources()
        }));
        assert_eq!(found[0].key, "tls.certificate", "{found:?}");
    }

    #[test]
    fn out_of_range_values_are_refused_with_bounds() {
        let cases = [
            (
                "MERCATO_STORAGE_SHARDS_INITIAL",
                "0",
                "storage.shards_initial",
            ),
            (
                "MERCATO_STORAGE_SHARDS_INITIAL",
                "257",
                "storage.shards_initial",
            ),
            (
                "MERCATO_HTTP_REQUEST_BODY_BYTES_MAX",
                "0",
                "http.request_body_bytes_max",
            ),
            (
                "MERCATO_HTTP_REQUEST_BODY_BYTES_MAX",
                "-5",
                "http.request_body_bytes_max",
            ),
            (
                "MERCATO_HTTP_REQUEST_BODY_BYTES_MAX",
                "8 lots",
                "http.request_body_bytes_max",
            ),
            (
                "MERCATO_HTTP_REQUEST_TIMEOUT_MS",
                "-1",
                "http.request_timeout_ms",
            ),
            ("MERCATO_HTTP_CONNECTIONS_MAX", "0", "http.connections_max"),
            (
                "MERCATO_STORAGE_COMMIT_BATCH_BYTES_MAX",
                "10",
                "storage.commit_batch_bytes_max",
            ),
            (
                "MERCATO_STORAGE_PENDING_COMMANDS_MAX",
                "abc",
                "storage.pending_commands_max",
            ),
            ("MERCATO_SHUTDOWN_GRACE_MS", "-1", "shutdown_grace_ms"),
            ("MERCATO_LOG_FORMAT", "xml", "log.format"),
            ("MERCATO_LOG_LEVEL", "info,[", "log.level"),
            ("MERCATO_DATA_DIR", "", "data_dir"),
        ];
        for (name, value, key) in cases {
            let found = problems(Config::load(&ConfigSources {
                env: env(&[(name, value)]),
                ..sources()
            }));
            assert_eq!(found.len(), 1, "{name}={value}: {found:?}");
            assert_eq!(found[0].key, key, "{name}={value}: {found:?}");
            assert_eq!(
                found[0].origin.as_deref(),
                Some(format!("environment variable {name}").as_str()),
                "{found:?}"
            );
        }
    }

    #[test]
    fn tls_keys_must_come_in_pairs_and_not_with_self_signed() {
        let found = problems(Config::load(&ConfigSources {
            env: env(&[("MERCATO_TLS_CERT", "/c.pem")]),
            ..sources()
        }));
        assert_eq!(found[0].key, "tls.key");
        let found = problems(Config::load(&ConfigSources {
            env: env(&[("MERCATO_TLS_KEY", "/k.pem")]),
            ..sources()
        }));
        assert_eq!(found[0].key, "tls.cert");
        let both = env(&[
            ("MERCATO_TLS_CERT", "/c.pem"),
            ("MERCATO_TLS_KEY", "/k.pem"),
        ]);
        let config = Config::load(&ConfigSources {
            env: both.clone(),
            ..sources()
        })
        .expect("pair");
        assert_eq!(
            config.tls,
            TlsMode::Files {
                cert: "/c.pem".into(),
                key: "/k.pem".into()
            }
        );
        let flags = FlagOverrides {
            tls_self_signed: true,
            ..FlagOverrides::default()
        };
        let found = problems(Config::load(&ConfigSources {
            env: both,
            flags,
            ..sources()
        }));
        assert_eq!(found[0].key, "tls.self_signed");
        assert_eq!(
            found[0].origin.as_deref(),
            Some("command-line flag --tls-self-signed")
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let vars = env(&[
            ("MERCATO_STORAGE_SHARDS_INITIAL", "0"),
            ("MERCATO_HTTP_CONNECTIONS_MAX", "0"),
        ]);
        let error = Config::load(&ConfigSources {
            env: vars,
            ..sources()
        })
        .expect_err("invalid");
        let message = error.to_string();
        assert!(
            message.contains("storage.shards_initial") && message.contains("http.connections_max"),
            "{message}"
        );
    }

    #[test]
    fn missing_config_file_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("absent.toml");
        let error = Config::load(&ConfigSources {
            file: Some(file.clone()),
            ..sources()
        })
        .expect_err("missing file");
        assert!(
            matches!(error, ConfigError::ReadFile { ref path, .. } if *path == file),
            "{error:?}"
        );
    }

    #[test]
    fn file_problems_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write_file(&dir, "[http]\nrequest_body_bytes_max = -1\n");
        let found = problems(Config::load(&ConfigSources {
            file: Some(file.clone()),
            ..sources()
        }));
        assert_eq!(found[0].key, "http.request_body_bytes_max");
        assert!(found[0].reason.contains("negative"), "{found:?}");
        let origin = found[0].origin.clone().expect("origin");
        assert!(
            origin.starts_with("config file") && origin.contains("mercato.toml"),
            "{origin}"
        );
    }
}
