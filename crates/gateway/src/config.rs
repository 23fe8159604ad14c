//! Configuration: one TOML file plus `GATEWAY_*` environment overrides, validated at start.
//!
//! Secrets never appear in the file: provider credentials and client API keys are given as
//! `{ env = "NAME" }` references (client keys may instead be given as their SHA-256 hash). A
//! client's webhook signing secret is either such a reference or `webhook_secret_file`, a path
//! whose content (trimmed) is the secret: tests and secret mounts use files, and the gateway
//! never sets environment variables.
//! Every validation error names the key it is about, e.g. `providers.okra.secret_key`.
//!
//! Environment overrides use `__` between levels: `GATEWAY_ROUTING__DEFAULT=mono`,
//! `GATEWAY_SERVER__BIND=0.0.0.0:8080`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use provider::Secret;

use crate::kinds::{self, KindEntry};
use crate::policy::{Operation, Policy, Scopes};
use crate::signing::WebhookKey;
/// The largest per-client quota (a billion requests a minute: limits off, e.g. for benchmarks).
const MAX_CLIENT_RATE: u32 = 1_000_000_000;

/// The API key of the built-in demo client (embedded-sandbox mode only).
pub const DEMO_API_KEY: &str = "demo-key-sandbox-only";

/// A configuration problem, naming the key it is about.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {key}: {message}")]
pub struct ConfigError {
    /// The dotted key, e.g. `providers.okra.base_url`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// A problem with `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// A reference to a secret held in an environment variable: `{ env = "OKRA_SECRET_KEY" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvRef {
    /// The variable's name.
    pub env: String,
}

impl EnvRef {
    fn resolve(&self, key: &str) -> Result<Secret, ConfigError> {
        match std::env::var(&self.env) {
            Ok(value) if !value.trim().is_empty() => Ok(Secret::new(value.trim())),
            Ok(_) => Err(ConfigError::new(
                key,
                format!("environment variable {} is empty", self.env),
            )),
            Err(_) => Err(ConfigError::new(
                key,
                format!("environment variable {} is not set", self.env),
            )),
        }
    }
}

/// An unset `{ env = "..." }` reference stops validation at the first; this adds every other
/// reference in the configuration whose variable is unset or empty, so one start reports them
/// all (some may belong to settings that turn out not to need them, e.g. a sandbox provider's).
fn also_unset(error: ConfigError, figment: &Figment) -> ConfigError {
    let Some(first) = error
        .message
        .strip_prefix("environment variable ")
        .and_then(|rest| rest.split(' ').next())
        .map(str::to_owned)
    else {
        return error;
    };
    let Ok(value) = figment.extract::<figment::value::Value>() else {
        return error;
    };
    let mut unset = Vec::new();
    unset_env_refs(&value, "", &mut unset);
    let others: Vec<String> = unset
        .into_iter()
        .filter(|(_, name)| *name != first)
        .map(|(key, name)| format!("{name} ({key})"))
        .collect();
    if others.is_empty() {
        return error;
    }
    let message = format!("{}; also unset: {}", error.message, others.join(", "));
    ConfigError::new(error.key, message)
}

/// Every `{ env = "NAME" }` under `value` whose variable is unset or empty, with its key.
fn unset_env_refs(value: &figment::value::Value, key: &str, out: &mut Vec<(String, String)>) {
    use figment::value::Value;
    let child = |name: &str| {
        if key.is_empty() {
            name.to_owned()
        } else {
            format!("{key}.{name}")
        }
    };
    match value {
        Value::Dict(_, dict) => {
            if let (1, Some(Value::String(_, name))) = (dict.len(), dict.get("env")) {
                if std::env::var(name).map_or(true, |v| v.trim().is_empty()) {
                    out.push((key.to_owned(), name.clone()));
                }
                return;
            }
            for (name, value) in dict {
                unset_env_refs(value, &child(name), out);
            }
        }
        Value::Array(_, items) => {
            for (i, item) in items.iter().enumerate() {
                unset_env_refs(item, &format!("{key}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// The file's shape, before validation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[server]`
    #[serde(default)]
    pub server: ServerSection,
    /// `[clients.NAME]`
    #[serde(default)]
    pub clients: BTreeMap<String, ClientSection>,
    /// `[providers.NAME]`
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderSection>,
    /// `[routing]`
    pub routing: RoutingSection,
    /// `[cache]`
    #[serde(default)]
    pub cache: CacheSection,
    /// `[sandbox]`: run the vendor simulators in-process.
    #[serde(default)]
    pub sandbox: SandboxSection,
    /// `[jobs]`: refresh jobs and the notifications sent when they finish.
    #[serde(default)]
    pub jobs: JobsSection,
    /// `[rate_limits]`: the default quota of each calling service.
    #[serde(default)]
    pub rate_limits: RateLimitsSection,
    /// `[redis]`: state shared by every replica (quotas, cursors); absent: all in-process.
    #[serde(default)]
    pub redis: Option<RedisSection>,
    /// `[sync]`: the version history behind delta sync.
    #[serde(default)]
    pub sync: SyncSection,
    /// `[log]`: log format and the access log.
    #[serde(default)]
    pub log: LogSection,
    /// `[metrics]`: where Prometheus scrapes `/metrics`.
    #[serde(default)]
    pub metrics: MetricsSection,
    /// `[auth]`: API keys' expiry warnings.
    #[serde(default)]
    pub auth: AuthSection,
    /// `[audit]`: the audit trail of data access.
    #[serde(default)]
    pub audit: AuditSection,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (ANSI colours only on a terminal).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// `text` or `json` (the `LOG_FORMAT` environment variable wins over it).
    pub format: LogFormat,
    /// One line per request at INFO (target `gateway::access`).
    pub access_log: bool,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            format: LogFormat::Text,
            access_log: true,
        }
    }
}

/// `[auth]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// A key whose `not_after` is this many days away (or fewer) is warned about in the log, at
    /// start and then daily.
    pub expiry_warning_days: u32,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            expiry_warning_days: 14,
        }
    }
}

/// `[metrics]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Serve `/metrics` on this address only (not on `server.bind`); unset: on `server.bind`.
    pub bind: Option<SocketAddr>,
}

/// `[redis]`: the Redis every replica shares. Without it everything stays in-process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSection {
    /// `redis://host:port/db` (no password here: see `password`).
    pub url: String,
    /// The password, from the environment.
    pub password: Option<EnvRef>,
    /// Prefix of every key, so several deployments (or tests) can share one Redis.
    #[serde(default = "default_redis_prefix")]
    pub key_prefix: String,
    /// Upper bound on one Redis call; a request never waits longer on Redis.
    #[serde(default = "default_redis_timeout_ms")]
    pub timeout_ms: u64,
    /// After a failed call, how long Redis is left alone before it is tried again.
    #[serde(default = "default_redis_retry_after_ms")]
    pub retry_after_ms: u64,
    /// Multiplexed connections used in turn.
    #[serde(default = "default_redis_pool_size")]
    pub pool_size: u32,
    /// The number of replicas that share each quota while Redis is down (default: the live
    /// replicas last counted in Redis).
    pub replicas: Option<u32>,
    /// `url` is one node of a Redis Cluster (the others are discovered).
    #[serde(default)]
    pub cluster: bool,
}

fn default_redis_prefix() -> String {
    "gateway".to_owned()
}
fn default_redis_timeout_ms() -> u64 {
    250
}
fn default_redis_retry_after_ms() -> u64 {
    1_000
}
fn default_redis_pool_size() -> u32 {
    2
}

/// The validated `[redis]` section.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// The URL, with the password filled in when one is configured (never logged).
    pub url: Url,
    /// Key prefix.
    pub key_prefix: String,
    /// Upper bound on one call.
    pub timeout: Duration,
    /// Pause after a failure.
    pub retry_after: Duration,
    /// Connections.
    pub pool_size: u32,
    /// Fixed replica count for fallback shares, when configured.
    pub replicas: Option<u32>,
    /// Whether `url` names a node of a Redis Cluster.
    pub cluster: bool,
}

fn validate_redis(section: &RedisSection) -> Result<RedisConfig, ConfigError> {
    let mut url = Url::parse(&section.url)
        .map_err(|e| ConfigError::new("redis.url", format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "redis" | "rediss") || url.host_str().is_none() {
        return Err(ConfigError::new(
            "redis.url",
            "must be a redis:// (or rediss://) URL with a host",
        ));
    }
    if url.password().is_some() {
        return Err(ConfigError::new(
            "redis.url",
            "no password in the URL: use redis.password = { env = \"...\" }",
        ));
    }
    if let Some(env) = &section.password {
        let secret = env.resolve("redis.password")?;
        url.set_password(Some(secret.expose()))
            .map_err(|()| ConfigError::new("redis.password", "cannot be set on this URL"))?;
    }
    let prefix = section.key_prefix.trim();
    if prefix.is_empty()
        || prefix.len() > 64
        || !prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    {
        return Err(ConfigError::new(
            "redis.key_prefix",
            "1-64 characters of A-Z, a-z, 0-9, -, _, . and :",
        ));
    }
    Ok(RedisConfig {
        url,
        key_prefix: prefix.to_owned(),
        timeout: Duration::from_millis(in_range(
            section.timeout_ms,
            1..=10_000,
            "redis.timeout_ms",
        )?),
        retry_after: Duration::from_millis(in_range(
            section.retry_after_ms,
            1..=60_000,
            "redis.retry_after_ms",
        )?),
        pool_size: in_range(section.pool_size, 1..=64, "redis.pool_size")?,
        replicas: section
            .replicas
            .map(|n| in_range(n, 1..=1_000, "redis.replicas"))
            .transpose()?,
        cluster: section.cluster,
    })
}

/// `[audit]`: one JSON line per data access, to a file or to stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    /// Write the audit trail at all.
    pub enabled: bool,
    /// The file records are appended to (created if missing); stdout when unset.
    pub path: Option<PathBuf>,
    /// Records that may wait for the writer; beyond that they are dropped, counted and logged.
    pub queue_capacity: usize,
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            enabled: true,
            path: None,
            queue_capacity: 65_536,
        }
    }
}

/// `[rate_limits]`: what each client may send when its `[clients.NAME]` says nothing else.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsSection {
    /// Sustained requests per minute, per client.
    pub requests_per_minute: u32,
    /// Requests a client may send at once after a quiet spell.
    pub burst: u32,
}

impl Default for RateLimitsSection {
    fn default() -> Self {
        RateLimitsSection {
            requests_per_minute: 6000,
            burst: 500,
        }
    }
}

/// `[server]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Address to listen on (port 0 picks a free port).
    pub bind: SocketAddr,
    /// HTTP worker threads.
    pub workers: usize,
    /// Upper bound on one request's handling, upstream calls included.
    pub request_timeout_ms: u64,
    /// The URL under which callers (and vendors' webhooks) reach this gateway.
    pub public_url: Option<String>,
    /// On SIGTERM/SIGINT: how long requests in flight may take to finish.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: 2,
            request_timeout_ms: 30_000,
            public_url: None,
            shutdown_grace_secs: 30,
        }
    }
}

/// `[clients.NAME]`: one calling service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSection {
    /// Hex SHA-256 of the client's API key.
    pub api_key_sha256: Option<String>,
    /// The API key itself, from the environment.
    pub api_key: Option<EnvRef>,
    /// More keys (each with an optional `not_after` date), for rotation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeySection>,
    /// The operations the client may use (default: all of them).
    pub scopes: Option<Vec<String>>,
    /// The provider instances the client may reach (default: all of them).
    pub providers: Option<Vec<String>>,
    /// Where the client's finished refresh jobs are POSTed (http or https).
    pub webhook_url: Option<String>,
    /// The key signing those POSTs, from the environment.
    pub webhook_secret: Option<EnvRef>,
    /// The key signing those POSTs, read from a file (instead of `webhook_secret`).
    pub webhook_secret_file: Option<PathBuf>,
    /// This client's sustained requests per minute (default: `rate_limits.requests_per_minute`).
    pub requests_per_minute: Option<u32>,
    /// This client's burst (default: `rate_limits.burst`).
    pub burst: Option<u32>,
    /// This client's weight in the fair line of every provider lane (1 to 100, default 1): when
    /// a provider's quota is contended, a client of weight 2 is admitted twice as often as one
    /// of weight 1 while both have callers waiting.
    pub fair_share_weight: Option<u32>,
}

/// One of a client's `keys = [...]`: the key (exactly one of the two forms) and its last day.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySection {
    /// Hex SHA-256 of the key.
    pub api_key_sha256: Option<String>,
    /// The key itself, from the environment.
    pub api_key: Option<EnvRef>,
    /// The last day (UTC, `YYYY-MM-DD`) the key is accepted; from the next day on it is a 401.
    pub not_after: Option<String>,
}

/// `[providers.NAME]`: a named provider instance. The keys every kind shares are fields here;
/// the rest of the section is the kind's own (its extra credentials and settings), read and
/// refused by name by the kind's adapter type (see `kinds`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderSection {
    /// The kind: a name in `kinds::KINDS` (`okra`, `mono`, ...).
    pub kind: String,
    /// Base URL, or `"sandbox"` for the embedded simulator.
    pub base_url: String,
    /// Secret key, from the environment (not needed with `base_url = "sandbox"`).
    pub secret_key: Option<EnvRef>,
    /// Connect timeout.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Timeout of one upstream request.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Overall deadline of a refresh (polling, or waiting for the webhook delivery).
    #[serde(default = "default_refresh_deadline_ms")]
    pub refresh_deadline_ms: u64,
    /// Items per provider page when reading a whole scope (default: the kind's).
    pub page_size: Option<u32>,
    /// Provider pages read at once when filling a snapshot.
    #[serde(default = "default_fetch_concurrency")]
    pub fetch_concurrency: usize,
    /// Answer a listing's first page from the fill's first provider pages, before the whole
    /// snapshot is built, where the provider's order allows it (see `snapshot::early`).
    #[serde(default = "default_true")]
    pub early_first_page: bool,
    /// Snapshot TTL for this provider (default: `cache.ttl_secs`).
    pub cache_ttl_secs: Option<u64>,
    /// How long the provider's "no such account / customer / NUBAN / transaction" is
    /// remembered and answered without asking it again (0: not remembered).
    #[serde(default = "default_negative_ttl_secs")]
    pub negative_ttl_secs: u64,
    /// Upstream requests allowed in any 60 seconds (unset: no quota).
    pub requests_per_minute: Option<u32>,
    /// Upstream requests that may go out at once (1 to `requests_per_minute`).
    pub burst: Option<u32>,
    /// Upstream requests in flight at once.
    #[serde(default = "default_max_concurrent_requests")]
    pub max_concurrent_requests: u32,
    /// How long a request may wait in line for the quota or a slot.
    #[serde(default = "default_queue_timeout_ms")]
    pub queue_timeout_ms: u64,
    /// Retries of a read that failed transiently (timeout, connection, 502/503/504).
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// The first retry's backoff; it doubles per retry, with jitter.
    #[serde(default = "default_retry_backoff_ms")]
    pub retry_backoff_ms: u64,
    /// Consecutive failures that open the circuit breaker.
    #[serde(default = "default_breaker_failure_threshold")]
    pub breaker_failure_threshold: u32,
    /// How long an open breaker refuses calls before one probe is let through.
    #[serde(default = "default_breaker_open_ms")]
    pub breaker_open_ms: u64,
    /// The kind's own keys (credentials as `{ env = "NAME" }`, settings).
    #[serde(flatten)]
    pub specific: BTreeMap<String, serde_json::Value>,
}

impl ProviderSection {
    /// A section of `kind` served by the embedded sandbox, every key at its default.
    pub fn sandbox(kind: &str) -> ProviderSection {
        ProviderSection {
            kind: kind.to_owned(),
            base_url: "sandbox".into(),
            secret_key: None,
            connect_timeout_ms: default_connect_timeout_ms(),
            request_timeout_ms: default_request_timeout_ms(),
            refresh_deadline_ms: default_refresh_deadline_ms(),
            page_size: None,
            fetch_concurrency: default_fetch_concurrency(),
            early_first_page: true,
            cache_ttl_secs: None,
            negative_ttl_secs: default_negative_ttl_secs(),
            requests_per_minute: None,
            burst: None,
            max_concurrent_requests: default_max_concurrent_requests(),
            queue_timeout_ms: default_queue_timeout_ms(),
            max_retries: default_max_retries(),
            retry_backoff_ms: default_retry_backoff_ms(),
            breaker_failure_threshold: default_breaker_failure_threshold(),
            breaker_open_ms: default_breaker_open_ms(),
            specific: BTreeMap::new(),
        }
    }
}

fn default_negative_ttl_secs() -> u64 {
    60
}
fn default_connect_timeout_ms() -> u64 {
    2_000
}
fn default_request_timeout_ms() -> u64 {
    10_000
}
fn default_refresh_deadline_ms() -> u64 {
    120_000
}
fn default_true() -> bool {
    true
}

fn default_fetch_concurrency() -> usize {
    4
}
fn default_max_concurrent_requests() -> u32 {
    8
}
fn default_queue_timeout_ms() -> u64 {
    5_000
}
fn default_max_retries() -> u32 {
    2
}
fn default_retry_backoff_ms() -> u64 {
    100
}
fn default_breaker_failure_threshold() -> u32 {
    5
}
fn default_breaker_open_ms() -> u64 {
    30_000
}

/// `[routing]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingSection {
    /// The provider used when a request names none.
    pub default: String,
}

/// `[cache]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSection {
    /// How long a snapshot of a provider's data is served before it is fetched again.
    pub ttl_secs: u64,
    /// How long a cursor keeps working after its snapshot was replaced or expired.
    pub cursor_lifetime_secs: u64,
    /// Memory budget of all cached data together, in bytes.
    pub max_bytes: u64,
    /// How old (since it was fetched) an expired snapshot may be and still be served when the
    /// provider fails (`x-cache: stale`); 0 turns stale-if-error off.
    pub stale_if_error_secs: u64,
    /// With a stale snapshot at hand, how long a request waits for the provider (one attempt,
    /// no retries) before it serves the stale snapshot instead.
    pub stale_wait_ms: u64,
    /// Scopes with more transactions than this are not snapshotted but paged straight through.
    pub max_snapshot_items: u64,
    /// The key that signs cursors, from the environment; every replica needs the same one
    /// (default: generated once and kept in Redis when `[redis]` is set, else per process).
    pub cursor_secret: Option<EnvRef>,
}

impl Default for CacheSection {
    fn default() -> Self {
        CacheSection {
            ttl_secs: 300,
            cursor_lifetime_secs: 900,
            max_bytes: 256 * 1024 * 1024,
            stale_if_error_secs: 3600,
            stale_wait_ms: 2000,
            max_snapshot_items: 50_000,
            cursor_secret: None,
        }
    }
}

/// `[sandbox]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxSection {
    /// Start the vendor simulators in-process.
    pub enabled: bool,
    /// The data seed.
    pub seed: Option<u64>,
    /// How long a simulated Okra refresh runs before it completes (default 2000).
    pub refresh_ms: Option<u64>,
}

/// `[sync]`: how much version history delta sync keeps (see `sync`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSection {
    /// How long a change stays answerable: a cursor naming a version from before a change
    /// older than this answers 410 (default 30 days).
    pub retention_secs: u64,
    /// At most this many versions (changes) kept per (provider, account); older ones are
    /// dropped first.
    pub max_versions: u32,
    /// Without `[redis]`: the memory all histories may use together, in bytes (the least
    /// recently used account's history is dropped first).
    pub max_memory_bytes: u64,
}

impl Default for SyncSection {
    fn default() -> Self {
        SyncSection {
            retention_secs: 30 * 24 * 3_600,
            max_versions: 1_000,
            max_memory_bytes: 64 * 1024 * 1024,
        }
    }
}

fn validate_sync(sync: SyncSection) -> Result<SyncSection, ConfigError> {
    if !(60..=400 * 24 * 3_600).contains(&sync.retention_secs) {
        return Err(ConfigError::new(
            "sync.retention_secs",
            "must be between 60 and 34560000 (400 days)",
        ));
    }
    if !(1..=100_000).contains(&sync.max_versions) {
        return Err(ConfigError::new(
            "sync.max_versions",
            "must be between 1 and 100000",
        ));
    }
    if sync.max_memory_bytes < 1024 * 1024 {
        return Err(ConfigError::new(
            "sync.max_memory_bytes",
            "must be at least 1048576 (1 MiB)",
        ));
    }
    Ok(sync)
}

/// `[jobs]`: refresh jobs and the signed notifications sent to clients when they finish.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsSection {
    /// How long a finished job (and its `Idempotency-Key`) is kept.
    pub ttl_secs: u64,
    /// The largest webhook delivery a provider may POST to the gateway.
    pub max_delivery_bytes: u64,
    /// How long a webhook delivery's body may take to arrive; a slower upload is answered 408
    /// and its connection closed (the route is unauthenticated: nobody may hold it open).
    pub delivery_read_timeout_ms: u64,
    /// Attempts to deliver one notification to a client's `webhook_url`.
    pub notify_max_attempts: u32,
    /// The wait before the second attempt; it doubles after each failure.
    pub notify_initial_backoff_ms: u64,
    /// The longest wait between two attempts.
    pub notify_max_backoff_ms: u64,
    /// Timeout of one notification attempt.
    pub notify_timeout_ms: u64,
    /// With `[redis]`: how long a replica's hold on a refresh run lasts without renewal; after
    /// that (the replica died) another replica takes the run over.
    pub lease_ms: u64,
}

impl Default for JobsSection {
    fn default() -> Self {
        JobsSection {
            ttl_secs: 3_600,
            max_delivery_bytes: 16 * 1024 * 1024,
            delivery_read_timeout_ms: 5_000,
            notify_max_attempts: 10,
            notify_initial_backoff_ms: 1_000,
            notify_max_backoff_ms: 300_000,
            notify_timeout_ms: 10_000,
            lease_ms: 15_000,
        }
    }
}

/// A validated, resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listening address.
    pub bind: SocketAddr,
    /// HTTP workers.
    pub workers: usize,
    /// Upper bound on a request's handling.
    pub request_timeout: Duration,
    /// Public URL, when configured.
    pub public_url: Option<Url>,
    /// The calling services.
    pub clients: Vec<ClientConfig>,
    /// Provider instances, by name.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// The default provider's name.
    pub default_provider: String,
    /// Caching.
    pub cache: CacheSection,
    /// The embedded sandbox, when enabled.
    pub sandbox: Option<SandboxSettings>,
    /// Refresh jobs and notifications.
    pub jobs: JobsSection,
    /// Shared state, when `[redis]` is configured.
    pub redis: Option<RedisConfig>,
    /// The delta sync history's bounds.
    pub sync: SyncSection,
    /// The key signing cursors, when configured (else shared through Redis, or per process).
    pub cursor_secret: Option<Secret>,
    /// Log format and the access log.
    pub log: LogSection,
    /// Where `/metrics` is served (`None`: on `bind`).
    pub metrics_bind: Option<SocketAddr>,
    /// How long in-flight requests may take to finish on shutdown.
    pub shutdown_grace: Duration,
    /// Keys whose `not_after` is this close are warned about.
    pub key_expiry_warning: Duration,
    /// The audit trail, unless turned off.
    pub audit: Option<AuditSettings>,
}

/// Where the audit trail goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    /// The file appended to; stdout when `None`.
    pub path: Option<PathBuf>,
    /// Records that may wait for the writer.
    pub queue_capacity: usize,
}

/// The embedded sandbox's settings.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// Data seed.
    pub seed: u64,
    /// How long a simulated Okra refresh runs.
    pub refresh_duration: Duration,
}

/// One calling service.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The client's name.
    pub name: String,
    /// Its API keys (at least one; several while one is rotated).
    pub keys: Vec<ClientKey>,
    /// What it may do and reach.
    pub policy: Policy,
    /// Where its finished jobs are announced, when configured.
    pub webhook: Option<ClientWebhook>,
    /// Its inbound quota.
    pub rate_limit: ClientRateLimit,
    /// Its weight in the providers' fair lines (1 to 100).
    pub fair_share_weight: u32,
}

/// One API key of a client, known by its SHA-256 only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKey {
    /// SHA-256 of the key.
    pub sha256: [u8; 32],
    /// The last day (UTC) it is accepted.
    pub not_after: Option<time::Date>,
}

impl ClientKey {
    /// The first 8 hex digits of the key's SHA-256: enough for people to tell keys apart in
    /// logs, useless to an attacker.
    pub fn label(&self) -> String {
        format!("sha256:{}", hex::encode(&self.sha256[..4]))
    }

    /// The first instant (Unix seconds) the key is no longer accepted: midnight UTC after
    /// `not_after`.
    pub fn expires_at(&self) -> Option<i64> {
        self.not_after
            .and_then(|d| d.next_day())
            .map(|d| d.midnight().assume_utc().unix_timestamp())
    }
}

/// A client's notification endpoint and signing key.
#[derive(Debug, Clone)]
pub struct ClientWebhook {
    /// The http(s) URL POSTed to; only ever from configuration.
    pub url: Url,
    /// The Standard Webhooks signing key.
    pub key: WebhookKey,
}

/// A client's inbound quota: `requests_per_minute` sustained, `burst` at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRateLimit {
    /// The policy's name in the `RateLimit` headers: `default`, or the client's name when its
    /// section overrides the default.
    pub policy: String,
    /// Sustained requests per minute.
    pub requests_per_minute: NonZeroU32,
    /// Requests at once after a quiet spell.
    pub burst: NonZeroU32,
}

/// How the gateway treats one provider's upstream: quota, concurrency, retries, breaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundConfig {
    /// At most this many upstream requests in any 60 seconds, `burst` of them at once.
    pub quota: Option<ProviderQuota>,
    /// Upstream requests in flight at once.
    pub max_concurrent_requests: u32,
    /// How long a request may wait in line for a slot or the quota.
    pub queue_timeout: Duration,
    /// Retries of a read that failed transiently.
    pub max_retries: u32,
    /// The first retry's backoff (doubling, jittered).
    pub retry_backoff: Duration,
    /// Consecutive failures that open the breaker.
    pub breaker_failure_threshold: u32,
    /// How long the breaker stays open before a probe.
    pub breaker_open: Duration,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            quota: None,
            max_concurrent_requests: default_max_concurrent_requests(),
            queue_timeout: Duration::from_millis(default_queue_timeout_ms()),
            max_retries: default_max_retries(),
            retry_backoff: Duration::from_millis(default_retry_backoff_ms()),
            breaker_failure_threshold: default_breaker_failure_threshold(),
            breaker_open: Duration::from_millis(default_breaker_open_ms()),
        }
    }
}

/// A provider's request quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderQuota {
    /// Upstream requests in any 60 seconds.
    pub requests_per_minute: NonZeroU32,
    /// Of which at most this many at once.
    pub burst: NonZeroU32,
}

/// Where a provider instance's upstream is.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// The embedded sandbox (URL and credentials known once it runs).
    Sandbox,
    /// A real URL with credentials.
    Remote {
        /// Base URL.
        base_url: Url,
        /// Secret key.
        secret_key: Secret,
        /// The kind's other credentials (`app_id`, ...), by key.
        credentials: BTreeMap<&'static str, Secret>,
    },
}

/// A validated provider instance.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Its kind's entry in the kind table.
    pub kind: &'static KindEntry,
    /// Where it is.
    pub upstream: Upstream,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// One upstream request's timeout.
    pub request_timeout: Duration,
    /// Refresh deadline: polling (Okra) or waiting for the webhook delivery (Mono-style).
    pub refresh_deadline: Duration,
    /// Items per provider page when reading a whole scope.
    pub page_size: u32,
    /// The kind's own settings (checked by the kind; credentials taken out).
    pub settings: serde_json::Value,
    /// Provider pages read at once when filling a snapshot.
    pub fetch_concurrency: usize,
    /// Whether a first page may be answered before its snapshot is built.
    pub early_first_page: bool,
    /// Snapshot TTL.
    pub cache_ttl: Duration,
    /// How long a "no such account / transaction" answer is remembered (zero: not at all).
    pub negative_ttl: Duration,
    /// Quota, concurrency, retries and circuit breaker.
    pub outbound: OutboundConfig,
}

impl Config {
    /// Reads `path` (when given) and the `GATEWAY_*` environment, then validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = path {
            if !path.exists() {
                return Err(ConfigError::new(
                    "--config",
                    format!("file {} does not exist", path.display()),
                ));
            }
            figment = figment.merge(Toml::file(path));
        } else {
            figment = figment.merge(Serialized::defaults(FileConfig::embedded_default()));
        }
        figment = figment.merge(Env::prefixed("GATEWAY_").split("__"));
        let file: FileConfig = figment.extract().map_err(|e| {
            let key = e.path.join(".");
            ConfigError::new(
                if key.is_empty() { "(file)".into() } else { key },
                e.kind.to_string(),
            )
        })?;
        Config::validate(file).map_err(|e| also_unset(e, &figment))
    }

    /// Parses a TOML text (no environment), then validates. For tests and tools.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Config::validate(FileConfig::from_toml(text)?)
    }

    /// The zero-configuration setup: embedded sandbox, both providers, a demo client.
    pub fn embedded_default() -> Result<Config, ConfigError> {
        Config::validate(FileConfig::embedded_default())
    }

    /// Checks every rule that the file's shape alone does not.
    pub fn validate(file: FileConfig) -> Result<Config, ConfigError> {
        let server = file.server;
        if server.workers == 0 || server.workers > 64 {
            return Err(ConfigError::new(
                "server.workers",
                "must be between 1 and 64",
            ));
        }
        if server.request_timeout_ms == 0 {
            return Err(ConfigError::new(
                "server.request_timeout_ms",
                "must be above 0",
            ));
        }
        if server.shutdown_grace_secs > 3_600 {
            return Err(ConfigError::new(
                "server.shutdown_grace_secs",
                "must be at most 3600",
            ));
        }
        if file
            .metrics
            .bind
            .is_some_and(|m| m == server.bind && m.port() != 0)
        {
            return Err(ConfigError::new(
                "metrics.bind",
                "must differ from server.bind (leave it unset to serve /metrics there)",
            ));
        }
        let public_url = server
            .public_url
            .as_deref()
            .map(|u| parse_http_url(u, "server.public_url"))
            .transpose()?;

        let cache = file.cache;
        if cache.ttl_secs == 0 {
            return Err(ConfigError::new("cache.ttl_secs", "must be above 0"));
        }
        if cache.max_bytes < 1024 * 1024 {
            return Err(ConfigError::new(
                "cache.max_bytes",
                "must be at least 1 MiB",
            ));
        }

        let default_rate = &file.rate_limits;
        let default_rpm = positive(
            default_rate.requests_per_minute,
            MAX_CLIENT_RATE,
            "rate_limits.requests_per_minute",
        )?;
        let default_burst = positive(default_rate.burst, MAX_CLIENT_RATE, "rate_limits.burst")?;
        let mut clients = Vec::new();
        let mut seen_keys = std::collections::HashSet::new();
        for (name, client) in &file.clients {
            let key = format!("clients.{name}");
            check_name(name, &key)?;
            let keys = validate_client_keys(client, &key)?;
            if keys.iter().any(|k| !seen_keys.insert(k.sha256)) {
                return Err(ConfigError::new(
                    key,
                    "an API key is configured twice (for this or another client)",
                ));
            }
            let policy = validate_policy(client, &key, &file.providers)?;
            let rate_limit = if client.requests_per_minute.is_none() && client.burst.is_none() {
                ClientRateLimit {
                    policy: "default".to_owned(),
                    requests_per_minute: default_rpm,
                    burst: default_burst,
                }
            } else {
                ClientRateLimit {
                    policy: name.clone(),
                    requests_per_minute: match client.requests_per_minute {
                        Some(n) => {
                            positive(n, MAX_CLIENT_RATE, &format!("{key}.requests_per_minute"))?
                        }
                        None => default_rpm,
                    },
                    burst: match client.burst {
                        Some(n) => positive(n, MAX_CLIENT_RATE, &format!("{key}.burst"))?,
                        None => default_burst,
                    },
                }
            };
            clients.push(ClientConfig {
                name: name.clone(),
                keys,
                policy,
                webhook: validate_client_webhook(client, &key)?,
                rate_limit,
                fair_share_weight: match client.fair_share_weight {
                    Some(n) => positive(n, 100, &format!("{key}.fair_share_weight"))?.get(),
                    None => 1,
                },
            });
        }

        let mut providers = BTreeMap::new();
        let mut uses_sandbox = false;
        for (name, section) in &file.providers {
            let key = format!("providers.{name}");
            check_name(name, &key)?;
            let provider = validate_provider(section, &key, cache.ttl_secs)?;
            uses_sandbox |= matches!(provider.upstream, Upstream::Sandbox);
            providers.insert(name.clone(), provider);
        }
        if providers.is_empty() {
            return Err(ConfigError::new(
                "providers",
                "configure at least one provider",
            ));
        }
        if !providers.contains_key(&file.routing.default) {
            return Err(ConfigError::new(
                "routing.default",
                format!(
                    "{:?} is not a configured provider (configured: {})",
                    file.routing.default,
                    providers.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        if uses_sandbox && !file.sandbox.enabled {
            return Err(ConfigError::new(
                "sandbox.enabled",
                "a provider uses base_url = \"sandbox\": set sandbox.enabled = true",
            ));
        }
        let jobs = validate_jobs(file.jobs)?;
        let redis = file.redis.as_ref().map(validate_redis).transpose()?;
        let cursor_secret = cache
            .cursor_secret
            .as_ref()
            .map(|env| env.resolve("cache.cursor_secret"))
            .transpose()?;
        if cursor_secret
            .as_ref()
            .is_some_and(|s| s.expose().len() < 32)
        {
            return Err(ConfigError::new(
                "cache.cursor_secret",
                "must be at least 32 characters",
            ));
        }
        if file
            .sandbox
            .refresh_ms
            .is_some_and(|ms| ms == 0 || ms > 600_000)
        {
            return Err(ConfigError::new(
                "sandbox.refresh_ms",
                "must be between 1 and 600000",
            ));
        }
        let key_expiry_warning_days = in_range(
            file.auth.expiry_warning_days,
            0..=365,
            "auth.expiry_warning_days",
        )?;
        let audit = if file.audit.enabled {
            in_range(
                file.audit.queue_capacity,
                1..=10_000_000,
                "audit.queue_capacity",
            )?;
            Some(AuditSettings {
                path: file.audit.path.clone(),
                queue_capacity: file.audit.queue_capacity,
            })
        } else {
            None
        };
        Ok(Config {
            bind: server.bind,
            workers: server.workers,
            request_timeout: Duration::from_millis(server.request_timeout_ms),
            public_url,
            clients,
            providers,
            default_provider: file.routing.default,
            cache,
            sandbox: file.sandbox.enabled.then(|| SandboxSettings {
                seed: file.sandbox.seed.unwrap_or(42),
                refresh_duration: Duration::from_millis(file.sandbox.refresh_ms.unwrap_or(2_000)),
            }),
            jobs,
            redis,
            cursor_secret,
            sync: validate_sync(file.sync)?,
            log: file.log,
            metrics_bind: file.metrics.bind,
            shutdown_grace: Duration::from_secs(server.shutdown_grace_secs),
            key_expiry_warning: Duration::from_secs(u64::from(key_expiry_warning_days) * 86_400),
            audit,
        })
    }
}

impl FileConfig {
    /// Parses a TOML text into the file's shape (unknown keys are errors), without validating.
    pub fn from_toml(text: &str) -> Result<FileConfig, ConfigError> {
        Figment::new()
            .merge(Toml::string(text))
            .extract()
            .map_err(|e| ConfigError::new(e.path.join("."), e.kind.to_string()))
    }

    /// The built-in configuration used when no file is given.
    pub fn embedded_default() -> FileConfig {
        let demo_hash = hex::encode(Sha256::digest(DEMO_API_KEY.as_bytes()));
        FileConfig {
            server: ServerSection::default(),
            clients: BTreeMap::from([(
                "demo".to_owned(),
                ClientSection {
                    api_key_sha256: Some(demo_hash),
                    ..Default::default()
                },
            )]),
            providers: BTreeMap::from([
                ("okra".to_owned(), ProviderSection::sandbox("okra")),
                ("mono".to_owned(), ProviderSection::sandbox("mono")),
            ]),
            routing: RoutingSection {
                default: "okra".into(),
            },
            cache: CacheSection::default(),
            sandbox: SandboxSection {
                enabled: true,
                seed: None,
                refresh_ms: None,
            },
            jobs: JobsSection::default(),
            rate_limits: RateLimitsSection::default(),
            redis: None,
            sync: SyncSection::default(),
            log: LogSection::default(),
            metrics: MetricsSection::default(),
            auth: AuthSection::default(),
            audit: AuditSection::default(),
        }
    }
}

fn validate_provider(
    section: &ProviderSection,
    key: &str,
    default_ttl_secs: u64,
) -> Result<ProviderConfig, ConfigError> {
    let kind = kinds::find(&section.kind).ok_or_else(|| {
        ConfigError::new(
            format!("{key}.kind"),
            format!("unknown kind {:?}; known: {}", section.kind, kinds::names()),
        )
    })?;
    for (value, field) in [
        (section.connect_timeout_ms, "connect_timeout_ms"),
        (section.request_timeout_ms, "request_timeout_ms"),
    ] {
        if value == 0 || value > 300_000 {
            return Err(ConfigError::new(
                format!("{key}.{field}"),
                "must be between 1 and 300000",
            ));
        }
    }
    // The kind's credentials come out of its own keys; the rest is its settings.
    let mut specific = section.specific.clone();
    let mut credentials = Vec::new();
    for credential in kind.credentials {
        let field = format!("{key}.{}", credential.key);
        let env = specific
            .remove(credential.key)
            .map(|value| {
                serde_json::from_value::<EnvRef>(value)
                    .map_err(|_| ConfigError::new(&field, "must be { env = \"NAME\" }"))
            })
            .transpose()?;
        credentials.push((credential, field, env));
    }
    let settings = serde_json::Value::Object(specific.into_iter().collect());
    kind.check(&settings).map_err(|e| match e.key {
        Some(field) => ConfigError::new(format!("{key}.{field}"), e.message),
        None => ConfigError::new(key, e.message),
    })?;
    let upstream = if section.base_url == "sandbox" {
        Upstream::Sandbox
    } else {
        let base_url = parse_http_url(&section.base_url, &format!("{key}.base_url"))?;
        let secret_key = section
            .secret_key
            .as_ref()
            .ok_or_else(|| {
                ConfigError::new(format!("{key}.secret_key"), "required: { env = \"NAME\" }")
            })?
            .resolve(&format!("{key}.secret_key"))?;
        let mut resolved = BTreeMap::new();
        for (credential, field, env) in credentials {
            match env {
                Some(env) => {
                    resolved.insert(credential.key, env.resolve(&field)?);
                }
                None if credential.required => {
                    return Err(ConfigError::new(field, "required: { env = \"NAME\" }"));
                }
                None => {}
            }
        }
        Upstream::Remote {
            base_url,
            secret_key,
            credentials: resolved,
        }
    };
    let page_size = section.page_size.unwrap_or(kind.default_page_size);
    if !(1..=kind.max_page_size).contains(&page_size) {
        return Err(ConfigError::new(
            format!("{key}.page_size"),
            format!("must be between 1 and {}", kind.max_page_size),
        ));
    }
    let cache_ttl_secs = section.cache_ttl_secs.unwrap_or(default_ttl_secs);
    if section.negative_ttl_secs > 3_600 {
        return Err(ConfigError::new(
            format!("{key}.negative_ttl_secs"),
            "must be between 0 and 3600",
        ));
    }
    if !(1..=64).contains(&section.fetch_concurrency) {
        return Err(ConfigError::new(
            format!("{key}.fetch_concurrency"),
            "must be between 1 and 64",
        ));
    }
    if cache_ttl_secs == 0 {
        return Err(ConfigError::new(
            format!("{key}.cache_ttl_secs"),
            "must be above 0",
        ));
    }
    if section.refresh_deadline_ms == 0 || section.refresh_deadline_ms > 3_600_000 {
        return Err(ConfigError::new(
            format!("{key}.refresh_deadline_ms"),
            "must be between 1 and 3600000",
        ));
    }
    Ok(ProviderConfig {
        fetch_concurrency: section.fetch_concurrency,
        early_first_page: section.early_first_page,
        cache_ttl: Duration::from_secs(cache_ttl_secs),
        negative_ttl: Duration::from_secs(section.negative_ttl_secs),
        kind,
        upstream,
        connect_timeout: Duration::from_millis(section.connect_timeout_ms),
        request_timeout: Duration::from_millis(section.request_timeout_ms),
        refresh_deadline: Duration::from_millis(section.refresh_deadline_ms),
        page_size,
        settings,
        outbound: validate_outbound(section, key)?,
    })
}

/// A client's keys: the single-key shorthand (`api_key_sha256` or `api_key`) and `keys = [...]`,
/// at least one in all; each entry exactly one of the two forms.
fn validate_client_keys(client: &ClientSection, key: &str) -> Result<Vec<ClientKey>, ConfigError> {
    let one = |hash: &Option<String>,
               env: &Option<EnvRef>,
               at: &str|
     -> Result<Option<[u8; 32]>, ConfigError> {
        match (hash, env) {
            (None, None) => Ok(None),
            (Some(hex_hash), None) => {
                parse_sha256(hex_hash, &format!("{at}.api_key_sha256")).map(Some)
            }
            (None, Some(env)) => {
                let secret = env.resolve(&format!("{at}.api_key"))?;
                Ok(Some(Sha256::digest(secret.expose().as_bytes()).into()))
            }
            (Some(_), Some(_)) => Err(ConfigError::new(
                at,
                "give exactly one of api_key_sha256 or api_key = { env = \"...\" }",
            )),
        }
    };
    let mut keys = Vec::new();
    if let Some(sha256) = one(&client.api_key_sha256, &client.api_key, key)? {
        keys.push(ClientKey {
            sha256,
            not_after: None,
        });
    }
    for (i, entry) in client.keys.iter().enumerate() {
        let at = format!("{key}.keys.{i}");
        let sha256 = one(&entry.api_key_sha256, &entry.api_key, &at)?.ok_or_else(|| {
            ConfigError::new(
                &at,
                "give exactly one of api_key_sha256 or api_key = { env = \"...\" }",
            )
        })?;
        let not_after = entry
            .not_after
            .as_deref()
            .map(|text| {
                time::Date::parse(
                    text.trim(),
                    time::macros::format_description!("[year]-[month]-[day]"),
                )
                .map_err(|_| {
                    ConfigError::new(
                        format!("{at}.not_after"),
                        format!("must be a date YYYY-MM-DD, not {text:?}"),
                    )
                })
            })
            .transpose()?;
        keys.push(ClientKey { sha256, not_after });
    }
    if keys.is_empty() {
        return Err(ConfigError::new(
            key,
            "give the client a key: api_key_sha256, api_key = { env = \"...\" }, or keys = [...]",
        ));
    }
    Ok(keys)
}

/// A client's `scopes` (known names, at least one) and `providers` (configured instances, at
/// least one); each absent means all.
fn validate_policy(
    client: &ClientSection,
    key: &str,
    providers: &BTreeMap<String, ProviderSection>,
) -> Result<Policy, ConfigError> {
    let scopes = client
        .scopes
        .as_ref()
        .map(|names| {
            let field = format!("{key}.scopes");
            if names.is_empty() {
                return Err(ConfigError::new(
                    field,
                    "give at least one scope (or leave `scopes` out for all of them)",
                ));
            }
            names
                .iter()
                .map(|name| {
                    Operation::from_scope(name.trim()).ok_or_else(|| {
                        ConfigError::new(
                            &field,
                            format!(
                                "unknown scope {name:?}; known: {}",
                                Scopes::all().names().join(", ")
                            ),
                        )
                    })
                })
                .collect::<Result<Scopes, _>>()
        })
        .transpose()?;
    let allowed = client
        .providers
        .as_ref()
        .map(|names| {
            let field = format!("{key}.providers");
            if names.is_empty() {
                return Err(ConfigError::new(
                    field,
                    "give at least one provider (or leave `providers` out for all of them)",
                ));
            }
            names
                .iter()
                .map(|name| {
                    if providers.contains_key(name) {
                        Ok(name.clone())
                    } else {
                        Err(ConfigError::new(
                            &field,
                            format!(
                                "{name:?} is not a configured provider (configured: {})",
                                providers.keys().cloned().collect::<Vec<_>>().join(", ")
                            ),
                        ))
                    }
                })
                .collect::<Result<std::collections::BTreeSet<_>, _>>()
        })
        .transpose()?;
    Ok(Policy::new(scopes, allowed))
}

/// A client's `webhook_url` with exactly one of `webhook_secret`/`webhook_secret_file`, or none
/// of the three.
fn validate_client_webhook(
    client: &ClientSection,
    key: &str,
) -> Result<Option<ClientWebhook>, ConfigError> {
    let secret = match (&client.webhook_secret, &client.webhook_secret_file) {
        (None, None) => None,
        (Some(env), None) => Some((
            env.resolve(&format!("{key}.webhook_secret"))?,
            "webhook_secret",
        )),
        (None, Some(path)) => {
            let field = format!("{key}.webhook_secret_file");
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(&field, format!("cannot read {}: {e}", path.display()))
            })?;
            if text.trim().is_empty() {
                return Err(ConfigError::new(
                    field,
                    format!("{} is empty", path.display()),
                ));
            }
            Some((Secret::new(text.trim()), "webhook_secret_file"))
        }
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                key,
                "give at most one of webhook_secret or webhook_secret_file",
            ));
        }
    };
    match (&client.webhook_url, secret) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::new(
            format!("{key}.webhook_secret"),
            "a webhook_url needs a signing secret: webhook_secret = { env = \"NAME\" } or webhook_secret_file = \"PATH\"",
        )),
        (None, Some((_, field))) => Err(ConfigError::new(
            format!("{key}.webhook_url"),
            format!("{field} is set but webhook_url is not"),
        )),
        (Some(url), Some((secret, field))) => {
            let url = parse_http_url(url, &format!("{key}.webhook_url"))?;
            let key = WebhookKey::from_secret(secret.expose())
                .map_err(|message| ConfigError::new(format!("{key}.{field}"), message))?;
            Ok(Some(ClientWebhook { url, key }))
        }
    }
}

fn validate_jobs(jobs: JobsSection) -> Result<JobsSection, ConfigError> {
    let checks: [(&str, u64, u64, u64); 8] = [
        ("ttl_secs", jobs.ttl_secs, 1, 7 * 24 * 3_600),
        ("lease_ms", jobs.lease_ms, 300, 600_000),
        (
            "max_delivery_bytes",
            jobs.max_delivery_bytes,
            1_024,
            1 << 30,
        ),
        (
            "notify_max_attempts",
            jobs.notify_max_attempts.into(),
            1,
            100,
        ),
        (
            "notify_initial_backoff_ms",
            jobs.notify_initial_backoff_ms,
            1,
            3_600_000,
        ),
        (
            "notify_max_backoff_ms",
            jobs.notify_max_backoff_ms,
            1,
            86_400_000,
        ),
        ("notify_timeout_ms", jobs.notify_timeout_ms, 1, 300_000),
        (
            "delivery_read_timeout_ms",
            jobs.delivery_read_timeout_ms,
            10,
            300_000,
        ),
    ];
    for (field, value, min, max) in checks {
        if !(min..=max).contains(&value) {
            return Err(ConfigError::new(
                format!("jobs.{field}"),
                format!("must be between {min} and {max}"),
            ));
        }
    }
    if jobs.notify_initial_backoff_ms > jobs.notify_max_backoff_ms {
        return Err(ConfigError::new(
            "jobs.notify_initial_backoff_ms",
            "must not exceed jobs.notify_max_backoff_ms",
        ));
    }
    Ok(jobs)
}

fn validate_outbound(section: &ProviderSection, key: &str) -> Result<OutboundConfig, ConfigError> {
    let ProviderSection {
        requests_per_minute,
        burst,
        max_concurrent_requests,
        queue_timeout_ms,
        max_retries,
        retry_backoff_ms,
        breaker_failure_threshold,
        breaker_open_ms,
        ..
    } = section;
    let field = |name: &str| format!("{key}.{name}");
    let quota = match (requests_per_minute, burst) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(ConfigError::new(
                field("burst"),
                "a burst needs requests_per_minute",
            ));
        }
        (Some(rpm), burst) => {
            let rpm = positive(*rpm, 1_000_000, &field("requests_per_minute"))?;
            // A tenth of the quota at once by default: quick cold reads of a few pages, and
            // still nine tenths of the quota as a steady rate.
            let burst = burst.unwrap_or((rpm.get() / 10).max(1));
            let burst = positive(burst, rpm.get(), &field("burst"))?;
            Some(ProviderQuota {
                requests_per_minute: rpm,
                burst,
            })
        }
    };
    in_range(
        *max_concurrent_requests,
        1..=1024,
        &field("max_concurrent_requests"),
    )?;
    in_range(*queue_timeout_ms, 0..=300_000, &field("queue_timeout_ms"))?;
    in_range(*max_retries, 0..=10, &field("max_retries"))?;
    in_range(*retry_backoff_ms, 1..=60_000, &field("retry_backoff_ms"))?;
    in_range(
        *breaker_failure_threshold,
        1..=1000,
        &field("breaker_failure_threshold"),
    )?;
    in_range(*breaker_open_ms, 1..=3_600_000, &field("breaker_open_ms"))?;
    Ok(OutboundConfig {
        quota,
        max_concurrent_requests: *max_concurrent_requests,
        queue_timeout: Duration::from_millis(*queue_timeout_ms),
        max_retries: *max_retries,
        retry_backoff: Duration::from_millis(*retry_backoff_ms),
        breaker_failure_threshold: *breaker_failure_threshold,
        breaker_open: Duration::from_millis(*breaker_open_ms),
    })
}

/// `value`, if it lies in `range`.
fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    value: T,
    range: std::ops::RangeInclusive<T>,
    key: &str,
) -> Result<T, ConfigError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::new(
            key,
            format!("must be between {} and {}", range.start(), range.end()),
        ))
    }
}

/// `value` as a non-zero number, if it lies between 1 and `max`.
fn positive(value: u32, max: u32, key: &str) -> Result<NonZeroU32, ConfigError> {
    NonZeroU32::new(in_range(value, 1..=max, key)?)
        .ok_or_else(|| ConfigError::new(key, "must be above 0"))
}

fn check_name(name: &str, key: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            "names are 1-32 characters of a-z, 0-9, - and _",
        ))
    }
}

fn parse_http_url(text: &str, key: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|e| ConfigError::new(key, format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::new(key, "must be an http(s) URL with a host"));
    }
    Ok(url)
}

fn parse_sha256(text: &str, key: &str) -> Result<[u8; 32], ConfigError> {
    let bytes = hex::decode(text.trim())
        .map_err(|_| ConfigError::new(key, "must be 64 hexadecimal characters"))?;
    bytes
        .try_into()
        .map_err(|_| ConfigError::new(key, "must be 64 hexadecimal characters (32 bytes)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"
        [server]
        bind = "127.0.0.1:0"

        [clients.billing]
        api_key_sha256 = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"

        [providers.okra]
        kind = "okra"
        base_url = "sandbox"

        [providers.mono]
        kind = "mono"
        base_url = "sandbox"

        [routing]
        default = "okra"

        [sandbox]
        enabled = true
    "#;

    #[test]
    fn a_valid_file() {
        let config = Config::from_toml(VALID).unwrap();
        assert_eq!(config.default_provider, "okra");
        assert_eq!(config.providers.len(), 2);
        assert_eq!(config.clients[0].name, "billing");
        // sha256("hello")
        assert_eq!(
            hex::encode(config.clients[0].keys[0].sha256),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }

    #[test]
    fn swapping_every_client_to_mono_is_one_line() {
        let config =
            Config::from_toml(&VALID.replace("default = \"okra\"", "default = \"mono\"")).unwrap();
        assert_eq!(config.default_provider, "mono");
    }

    fn error_key(text: &str) -> String {
        Config::from_toml(text).unwrap_err().key
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(
            error_key(&VALID.replace("default = \"okra\"", "default = \"plaid\"")),
            "routing.default"
        );
        assert_eq!(
            error_key(&VALID.replace("\"127.0.0.1:0\"", "\"nowhere\"")),
            "server.bind"
        );
        assert_eq!(
            error_key(&VALID.replace("2cf24dba", "zzz")),
            "clients.billing.api_key_sha256"
        );
        assert_eq!(
            error_key(&VALID.replace(
                "kind = \"mono\"\n        base_url = \"sandbox\"",
                "kind = \"mono\"\n        base_url = \"ftp://x\""
            )),
            "providers.mono.base_url"
        );
        assert_eq!(
            error_key(&VALID.replace("kind = \"okra\"", "kind = \"plaid\"")),
            "providers.okra.kind"
        );
        assert_eq!(
            error_key(&VALID.replace("enabled = true", "enabled = false")),
            "sandbox.enabled"
        );
        assert_eq!(
            error_key(&format!("{VALID}\n[cache]\nttl_secs = 0\n")),
            "cache.ttl_secs"
        );
        assert_eq!(
            error_key(&VALID.replace("[server]", "[server]\nbnd = 1")),
            "server.bnd"
        );
    }

    #[test]
    fn secrets_only_by_env_reference() {
        let text = VALID.replace(
            "kind = \"okra\"\n        base_url = \"sandbox\"",
            "kind = \"okra\"\n        base_url = \"https://api.okra.ng/v2\"\n        secret_key = \"sk_live_plain\"",
        );
        let err = Config::from_toml(&text).unwrap_err();
        // The common keys are one struct, so the error names the key itself.
        assert_eq!(err.key, "providers.okra.secret_key");
        let text = VALID.replace(
            "kind = \"okra\"\n        base_url = \"sandbox\"",
            "kind = \"okra\"\n        base_url = \"https://api.okra.ng/v2\"\n        secret_key = { env = \"GATEWAY_TEST_SURELY_UNSET_VAR\" }",
        );
        let err = Config::from_toml(&text).unwrap_err();
        assert_eq!(err.key, "providers.okra.secret_key");
        assert!(err.message.contains("GATEWAY_TEST_SURELY_UNSET_VAR"));
    }

    fn with_billing(lines: &str) -> String {
        VALID.replace(
            "[clients.billing]\n",
            &format!("[clients.billing]\n{lines}\n"),
        )
    }

    fn secret_file(name: &str, content: &str) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("gateway-config-test-{}-{name}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        path
    }

    #[test]
    fn client_webhooks_need_an_http_url_and_exactly_one_secret() {
        let file = secret_file("ok", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n");
        let ok = with_billing(&format!(
            "webhook_url = \"https://hooks.example/tx\"\nwebhook_secret_file = \"{}\"",
            file.display()
        ));
        let config = Config::from_toml(&ok).unwrap();
        let hook = config.clients[0].webhook.as_ref().unwrap();
        assert_eq!(hook.url.as_str(), "https://hooks.example/tx");
        assert!(!format!("{config:?}").contains("MfKQ9r8G"));

        let ftp = ok.replace("https://hooks.example/tx", "ftp://hooks.example/tx");
        assert_eq!(error_key(&ftp), "clients.billing.webhook_url");
        assert_eq!(
            error_key(&with_billing("webhook_url = \"https://hooks.example/tx\"")),
            "clients.billing.webhook_secret"
        );
        assert_eq!(
            error_key(&with_billing(&format!(
                "webhook_secret_file = \"{}\"",
                file.display()
            ))),
            "clients.billing.webhook_url"
        );
        let both = with_billing(&format!(
            "webhook_url = \"https://h.example/\"\nwebhook_secret = {{ env = \"X\" }}\nwebhook_secret_file = \"{}\"",
            file.display()
        ));
        assert_eq!(error_key(&both), "clients.billing");
        let missing = with_billing(
            "webhook_url = \"https://h.example/\"\nwebhook_secret_file = \"/nonexistent/gateway-secret\"",
        );
        assert_eq!(error_key(&missing), "clients.billing.webhook_secret_file");
        let weak = secret_file("weak", "short");
        let weak = with_billing(&format!(
            "webhook_url = \"https://h.example/\"\nwebhook_secret_file = \"{}\"",
            weak.display()
        ));
        assert_eq!(error_key(&weak), "clients.billing.webhook_secret_file");
        let _ = std::fs::remove_file(file);
    }

    #[test]
    fn job_settings_are_bounded() {
        assert_eq!(
            error_key(&format!("{VALID}\n[jobs]\nttl_secs = 0\n")),
            "jobs.ttl_secs"
        );
        assert_eq!(
            error_key(&format!(
                "{VALID}\n[jobs]\nnotify_initial_backoff_ms = 5000\nnotify_max_backoff_ms = 100\n"
            )),
            "jobs.notify_initial_backoff_ms"
        );
        assert_eq!(
            error_key(&VALID.replace("enabled = true", "enabled = true\nrefresh_ms = 0")),
            "sandbox.refresh_ms"
        );
        let deadline = VALID.replace(
            "kind = \"mono\"\n        base_url = \"sandbox\"",
            "kind = \"mono\"\n        base_url = \"sandbox\"\n        refresh_deadline_ms = 0",
        );
        assert_eq!(error_key(&deadline), "providers.mono.refresh_deadline_ms");
        let config =
            Config::from_toml(&VALID.replace("enabled = true", "enabled = true\nrefresh_ms = 150"))
                .unwrap();
        assert_eq!(
            config.sandbox.unwrap().refresh_duration,
            Duration::from_millis(150)
        );
    }

    /// `VALID` with `lines` added to `[providers.okra]`.
    fn with_okra(lines: &str) -> String {
        VALID.replace(
            "[providers.mono]",
            &format!("{lines}\n        [providers.mono]"),
        )
    }

    #[test]
    fn outbound_defaults_and_settings() {
        let config = Config::from_toml(VALID).unwrap();
        assert_eq!(config.providers["okra"].outbound, OutboundConfig::default());
        assert_eq!(config.providers["okra"].outbound.quota, None);

        let config = Config::from_toml(&with_okra(
            "requests_per_minute = 60\nmax_concurrent_requests = 2\nqueue_timeout_ms = 0\n\
             max_retries = 0\nretry_backoff_ms = 5\nbreaker_failure_threshold = 1\n\
             breaker_open_ms = 250",
        ))
        .unwrap();
        let outbound = &config.providers["okra"].outbound;
        let quota = outbound.quota.unwrap();
        assert_eq!(quota.requests_per_minute.get(), 60);
        assert_eq!(quota.burst.get(), 6, "a tenth of the quota by default");
        assert_eq!(outbound.max_concurrent_requests, 2);
        assert_eq!(outbound.queue_timeout, Duration::ZERO);
        assert_eq!(outbound.max_retries, 0);
        assert_eq!(outbound.retry_backoff, Duration::from_millis(5));
        assert_eq!(outbound.breaker_failure_threshold, 1);
        assert_eq!(outbound.breaker_open, Duration::from_millis(250));

        let config = Config::from_toml(&with_okra("requests_per_minute = 6\nburst = 6")).unwrap();
        assert_eq!(
            config.providers["okra"].outbound.quota.unwrap().burst.get(),
            6
        );
    }

    #[test]
    fn outbound_errors_name_the_key() {
        for (lines, key) in [
            (
                "requests_per_minute = 0",
                "providers.okra.requests_per_minute",
            ),
            ("requests_per_minute = 6\nburst = 7", "providers.okra.burst"),
            ("requests_per_minute = 6\nburst = 0", "providers.okra.burst"),
            ("burst = 3", "providers.okra.burst"),
            (
                "max_concurrent_requests = 0",
                "providers.okra.max_concurrent_requests",
            ),
            (
                "queue_timeout_ms = 300001",
                "providers.okra.queue_timeout_ms",
            ),
            ("max_retries = 11", "providers.okra.max_retries"),
            ("retry_backoff_ms = 0", "providers.okra.retry_backoff_ms"),
            (
                "breaker_failure_threshold = 0",
                "providers.okra.breaker_failure_threshold",
            ),
            ("breaker_open_ms = 0", "providers.okra.breaker_open_ms"),
            ("breaker_open_secs = 1", "providers.okra"),
        ] {
            assert_eq!(error_key(&with_okra(lines)), key, "{lines}");
        }
    }

    #[test]
    fn client_quotas_default_and_override() {
        let config = Config::from_toml(VALID).unwrap();
        let rate = &config.clients[0].rate_limit;
        assert_eq!(rate.policy, "default");
        assert_eq!(
            (rate.requests_per_minute.get(), rate.burst.get()),
            (6000, 500)
        );

        let text = VALID.replace(
            "[providers.okra]",
            "requests_per_minute = 6\n        [rate_limits]\n        burst = 20\n        [providers.okra]",
        );
        let config = Config::from_toml(&text).unwrap();
        let rate = &config.clients[0].rate_limit;
        assert_eq!(rate.policy, "billing", "an override is its own policy");
        assert_eq!((rate.requests_per_minute.get(), rate.burst.get()), (6, 20));

        assert_eq!(
            error_key(&format!(
                "{VALID}\n[rate_limits]\nrequests_per_minute = 0\n"
            )),
            "rate_limits.requests_per_minute"
        );
        assert_eq!(
            error_key(&format!("{VALID}\n[rate_limits]\nburst = 0\n")),
            "rate_limits.burst"
        );
        assert_eq!(
            error_key(&format!("{VALID}\n[rate_limits]\nper_ip = 5\n")),
            "rate_limits.per_ip"
        );
        assert_eq!(
            error_key(&VALID.replace("[providers.okra]", "burst = 0\n        [providers.okra]")),
            "clients.billing.burst"
        );
    }

    #[test]
    fn clients_have_scopes_providers_and_several_keys() {
        let config = Config::from_toml(VALID).unwrap();
        assert_eq!(config.clients[0].policy, Policy::unrestricted());

        let text = with_billing(
            "scopes = [\"transactions:read\", \"jobs:read\"]\nproviders = [\"okra\"]\n\
             keys = [{ api_key_sha256 = \"486ea46224d1bb4fb680f34f7c9ad96a8f24ec88be73ea8e5a6c65260e9cb8a7\", not_after = \"2027-01-31\" }]",
        );
        let config = Config::from_toml(&text).unwrap();
        let client = &config.clients[0];
        let policy = &client.policy;
        assert!(policy.scopes().contains(Operation::TransactionsRead));
        assert!(!policy.scopes().contains(Operation::TransactionsRefresh));
        assert!(policy.may_use("okra") && !policy.may_use("mono"));
        // The single-key form and the list add up: both keys work during a rotation.
        assert_eq!(client.keys.len(), 2);
        assert_eq!(client.keys[0].not_after, None);
        let last = client.keys[1].not_after.unwrap();
        assert_eq!(last.to_string(), "2027-01-31");
        // Accepted through the last day, refused from the next midnight (UTC).
        assert_eq!(
            client.keys[1].expires_at(),
            Some(time::macros::datetime!(2027-02-01 00:00 UTC).unix_timestamp())
        );
        assert!(client.keys[1].label().starts_with("sha256:486ea462"));
    }

    #[test]
    fn scope_and_key_errors_name_the_key() {
        for (lines, key) in [
            (
                "scopes = [\"transactions:write\"]",
                "clients.billing.scopes",
            ),
            ("scopes = []", "clients.billing.scopes"),
            ("providers = [\"plaid\"]", "clients.billing.providers"),
            ("providers = []", "clients.billing.providers"),
            (
                "keys = [{ api_key_sha256 = \"486ea46224d1bb4fb680f34f7c9ad96a8f24ec88be73ea8e5a6c65260e9cb8a7\", not_after = \"31/01/2027\" }]",
                "clients.billing.keys.0.not_after",
            ),
            (
                "keys = [{ not_after = \"2027-01-31\" }]",
                "clients.billing.keys.0",
            ),
            (
                "keys = [{ api_key_sha256 = \"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\" }]",
                "clients.billing",
            ),
        ] {
            assert_eq!(error_key(&with_billing(lines)), key, "{lines}");
        }
        // A client with no key at all.
        let keyless = VALID.replace(
            "api_key_sha256 = \"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\"",
            "scopes = [\"jobs:read\"]",
        );
        assert_eq!(error_key(&keyless), "clients.billing");
    }

    #[test]
    fn audit_and_key_warning_settings() {
        let config = Config::from_toml(VALID).unwrap();
        let audit = config.audit.unwrap();
        assert_eq!(audit.path, None, "stdout by default");
        assert_eq!(config.key_expiry_warning, Duration::from_secs(14 * 86_400));
        let config = Config::from_toml(&format!(
            "{VALID}\n[audit]\npath = \"/var/log/audit.jsonl\"\n[auth]\nexpiry_warning_days = 3\n"
        ))
        .unwrap();
        assert_eq!(
            config.audit.unwrap().path.unwrap(),
            PathBuf::from("/var/log/audit.jsonl")
        );
        assert_eq!(config.key_expiry_warning, Duration::from_secs(3 * 86_400));
        let off = Config::from_toml(&format!("{VALID}\n[audit]\nenabled = false\n")).unwrap();
        assert!(off.audit.is_none());
        assert_eq!(
            error_key(&format!("{VALID}\n[audit]\nqueue_capacity = 0\n")),
            "audit.queue_capacity"
        );
    }

    #[test]
    fn the_embedded_default_is_valid() {
        let config = Config::embedded_default().unwrap();
        assert!(config.sandbox.is_some());
        assert_eq!(
            config.clients[0].keys[0].sha256,
            <[u8; 32]>::from(Sha256::digest(DEMO_API_KEY))
        );
    }

    /// The kind table decides: a kind's own keys are refused by name when misspelt, its extra
    /// credentials are required for a real upstream, and `page_size` is checked against the
    /// kind's largest page and defaults to the kind's.
    #[test]
    fn kinds_own_their_keys_credentials_and_page_sizes() {
        let mono = |lines: &str| {
            VALID.replace(
                "kind = \"mono\"\n        base_url = \"sandbox\"",
                &format!("kind = \"mono\"\n        base_url = \"sandbox\"\n        {lines}"),
            )
        };
        let err = Config::from_toml(&mono("bulk_reed = false")).unwrap_err();
        assert_eq!(err.key, "providers.mono");
        assert!(err.message.contains("bulk_reed"), "{}", err.message);
        let config = Config::from_toml(&mono("bulk_read = false")).unwrap();
        assert_eq!(config.providers["mono"].settings["bulk_read"], false);
        assert_eq!(config.providers["mono"].page_size, 100);
        assert_eq!(config.providers["okra"].page_size, okra::MAX_PAGE_SIZE);
        assert_eq!(
            error_key(&mono("page_size = 201")),
            "providers.mono.page_size"
        );
        assert_eq!(
            error_key(&with_okra("page_size = 101")),
            "providers.okra.page_size"
        );
        assert_eq!(
            error_key(&with_okra("app_id = { env = \"X\" }")),
            "providers.okra"
        );
        assert_eq!(
            error_key(&mono("app_id = \"plain\"")),
            "providers.mono.app_id"
        );
        let remote = VALID.replace(
            "kind = \"mono\"\n        base_url = \"sandbox\"",
            "kind = \"mono\"\n        base_url = \"https://api.dojah.io\"\n        secret_key = { env = \"PATH\" }",
        );
        assert_eq!(error_key(&remote), "providers.mono.app_id");
        let with_app_id = remote.replace(
            "secret_key = { env = \"PATH\" }",
            "secret_key = { env = \"PATH\" }\n        app_id = { env = \"PATH\" }",
        );
        let config = Config::from_toml(&with_app_id).unwrap();
        let Upstream::Remote { credentials, .. } = &config.providers["mono"].upstream else {
            panic!("a remote upstream");
        };
        assert!(credentials.contains_key("app_id"));
    }
}
