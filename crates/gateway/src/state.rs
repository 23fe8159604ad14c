//! What every handler shares: the provider registry, the clients, the snapshot cache.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use provider::{Provider, ProviderError};

use crate::audit::AuditLog;
use crate::cluster::Cluster;
use crate::config::{Config, ProviderConfig, ProviderKind, Upstream};
use crate::cursor::CursorCodec;
use crate::error::ApiError;
use crate::inbound::InboundLimits;
use crate::jobs::Jobs;
use crate::outbound::{Guarded, Lane};
use crate::policy::Policy;
use crate::snapshot::SnapshotCache;

/// A calling service, identified by its API key.
#[derive(Debug)]
pub struct Client {
    /// The configured name.
    pub name: String,
    /// What it may do and reach.
    pub policy: Policy,
    /// Its weight in the providers' fair lines (`clients.NAME.fair_share_weight`).
    pub fair_share_weight: u32,
}

/// One accepted API key (known by its SHA-256): whose it is, and until when.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    /// The client it belongs to.
    pub client: Arc<Client>,
    /// The first instant (Unix seconds) it is refused, when it has a `not_after` date.
    pub expires_at: Option<i64>,
}

impl KeyEntry {
    /// Whether the key is past its `not_after` date at `now` (Unix seconds).
    pub fn is_expired_at(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }
}

/// One configured provider instance.
#[derive(Debug, Clone)]
pub struct ProviderEntry {
    /// The instance name.
    pub name: Arc<str>,
    /// `okra` or `mono`.
    pub kind: ProviderKind,
    /// The adapter, behind its outbound lane.
    pub provider: Arc<dyn Provider>,
    /// Provider pages read at once when filling a snapshot.
    pub fetch_concurrency: usize,
    /// Items asked per provider page when filling a snapshot (at most the provider's maximum).
    pub page_size: u32,
    /// How long its snapshots are fresh.
    pub cache_ttl: Duration,
    /// The outbound lane every call of `provider` goes through (quota, breaker, ...).
    pub lane: Arc<Lane>,
}

/// The configured providers, by name, and which one answers when a request names none.
#[derive(Debug, Clone)]
pub struct Registry {
    providers: BTreeMap<String, ProviderEntry>,
    default: String,
}

/// Where the embedded sandbox runs, for providers configured with `base_url = "sandbox"`.
pub struct SandboxUpstream<'a> {
    /// The running sandbox.
    pub sandbox: &'a sandbox::Sandbox,
    /// Its configuration (credentials).
    pub config: &'a sandbox::SandboxConfig,
}

impl Registry {
    /// Builds every configured adapter, each behind its own outbound lane.
    pub fn build(
        config: &Config,
        sandbox: Option<&SandboxUpstream<'_>>,
        cluster: Option<&Arc<Cluster>>,
    ) -> Result<Registry, ProviderError> {
        let mut providers = BTreeMap::new();
        for (name, settings) in &config.providers {
            let adapter = build_adapter(name, settings, sandbox)?;
            // A lease outlives one attempt: its wait in line plus the call itself.
            let lease =
                settings.outbound.queue_timeout + settings.request_timeout + Duration::from_secs(1);
            let lane = Arc::new(Lane::with_cluster(
                name,
                settings.outbound.clone(),
                cluster.cloned(),
                lease,
            ));
            // Mono pages a non-bulk walk at its configured size; Okra at its largest page.
            let walk_page_size =
                (settings.kind == ProviderKind::Mono).then_some(settings.page_size);
            let provider: Arc<dyn Provider> = Arc::new(
                Guarded::new(adapter, lane.clone(), walk_page_size)
                    .remembering_not_found(settings.negative_ttl),
            );
            providers.insert(
                name.clone(),
                ProviderEntry {
                    name: Arc::from(name.as_str()),
                    kind: settings.kind,
                    provider,
                    fetch_concurrency: settings.fetch_concurrency,
                    page_size: match settings.kind {
                        ProviderKind::Okra => okra::MAX_PAGE_SIZE,
                        ProviderKind::Mono => settings.page_size,
                    },
                    cache_ttl: settings.cache_ttl,
                    lane,
                },
            );
        }
        Ok(Registry {
            providers,
            default: config.default_provider.clone(),
        })
    }

    /// The provider a request names, or the default; an unknown name is a 400 naming `provider`.
    pub fn resolve(&self, name: Option<&str>) -> Result<&ProviderEntry, ApiError> {
        let name = name.unwrap_or(&self.default);
        let entry = self
            .providers
            .get(name)
            .inspect(|e| crate::telemetry::note_provider(&e.name));
        entry.ok_or_else(|| {
            ApiError::invalid(
                "provider",
                format!(
                    "unknown provider {name:?}; configured: {}",
                    self.providers
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    }

    /// A provider by exact name (for gateway ids).
    pub fn get(&self, name: &str) -> Option<&ProviderEntry> {
        self.providers
            .get(name)
            .inspect(|e| crate::telemetry::note_provider(&e.name))
    }

    /// Every provider, by name.
    pub fn iter(&self) -> impl Iterator<Item = &ProviderEntry> {
        self.providers.values()
    }

    /// The default provider's name.
    pub fn default_name(&self) -> &str {
        &self.default
    }
}

fn build_adapter(
    name: &str,
    settings: &ProviderConfig,
    sandbox: Option<&SandboxUpstream<'_>>,
) -> Result<Arc<dyn Provider>, ProviderError> {
    let config_error = |message: String| ProviderError::Config {
        provider: name.to_owned(),
        message,
    };
    let (base_url, secret_key, app_id) = match (&settings.upstream, sandbox) {
        (
            Upstream::Remote {
                base_url,
                secret_key,
                app_id,
            },
            _,
        ) => (base_url.clone(), secret_key.clone(), app_id.clone()),
        (Upstream::Sandbox, Some(sb)) => {
            let (url, secret, app_id) = match settings.kind {
                ProviderKind::Okra => (
                    sb.sandbox.okra_base_url(),
                    sb.config.okra_secret.clone(),
                    None,
                ),
                ProviderKind::Mono => (
                    sb.sandbox.mono_base_url(),
                    sb.config.mono_secret.clone(),
                    Some(sb.config.mono_app_id.clone().into()),
                ),
            };
            let url =
                url::Url::parse(&url).map_err(|e| config_error(format!("sandbox URL: {e}")))?;
            (url, secret.into(), app_id)
        }
        (Upstream::Sandbox, None) => {
            return Err(config_error(
                "base_url = \"sandbox\" but the sandbox is not running".into(),
            ));
        }
    };
    Ok(match settings.kind {
        ProviderKind::Okra => {
            let mut c = okra::OkraConfig::new(name, base_url, secret_key);
            c.connect_timeout = settings.connect_timeout;
            c.request_timeout = settings.request_timeout;
            c.refresh_poll.deadline = settings.refresh_deadline;
            Arc::new(okra::OkraProvider::new(c)?)
        }
        ProviderKind::Mono => {
            let app_id = app_id.ok_or_else(|| config_error("app_id is required".into()))?;
            let mut c = mono::MonoConfig::new(name, base_url, secret_key, app_id);
            c.connect_timeout = settings.connect_timeout;
            c.request_timeout = settings.request_timeout;
            c.page_size = settings.page_size;
            c.bulk_read = settings.bulk_read;
            Arc::new(mono::MonoProvider::new(c)?)
        }
    })
}

/// Facts about the embedded sandbox shown to people (logs, Swagger examples).
#[derive(Debug, Clone, Default)]
pub struct DemoInfo {
    /// The demo API key, when the demo client is configured (it is in the zero-config setup).
    pub api_key: Option<String>,
    /// A few Okra account ids.
    pub okra_accounts: Vec<String>,
    /// A few Mono-style account ids.
    pub mono_accounts: Vec<String>,
    /// A few Okra customer ids.
    pub customers: Vec<String>,
    /// A few NUBANs.
    pub nubans: Vec<String>,
}

impl AppState {
    /// Runs `work` under the gateway's per-request deadline, which every outbound lane it
    /// calls also sees (waits in line and retries end by it).
    pub async fn within_deadline<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        tokio::time::timeout_at(deadline, crate::outbound::with_deadline(deadline, work))
            .await
            .unwrap_or(Err(ApiError::Timeout(self.request_timeout)))
    }
}

/// Everything the handlers share.
pub struct AppState {
    /// The providers.
    pub registry: Registry,
    /// Every accepted API key (by its SHA-256) and its client.
    pub clients: HashMap<[u8; 32], KeyEntry>,
    /// Snapshots of provider data.
    pub snapshots: SnapshotCache,
    /// Upper bound on one request's handling.
    pub request_timeout: Duration,
    /// Issues and checks page cursors.
    pub cursors: CursorCodec,
    /// Refresh jobs (and the client notifications they send).
    pub jobs: Jobs,
    /// Each client's inbound quota.
    pub inbound: InboundLimits,
    /// The state shared with the other replicas, when `[redis]` is configured.
    pub cluster: Option<Arc<Cluster>>,
    /// Every account's version history (delta sync).
    pub sync: Arc<crate::sync::SyncHistory>,
    /// The audit trail of data access.
    pub audit: AuditLog,
}
