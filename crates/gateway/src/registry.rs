//! The configured provider instances: each adapter built from its config section and put
//! behind its own outbound lane, found by name or as the default.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use provider::kind::Common;
use provider::{Provider, ProviderError, Secret};

use crate::cluster::Cluster;
use crate::config::{Config, ProviderConfig, Upstream};
use crate::error::ApiError;
pub use crate::kinds::SandboxUpstream;
use crate::outbound::{Guarded, Lane};

/// One configured provider instance.
#[derive(Debug, Clone)]
pub struct ProviderEntry {
    /// The instance name.
    pub name: Arc<str>,
    /// Its kind's name (`okra`, `mono`, ...).
    pub kind: &'static str,
    /// The adapter, behind its outbound lane.
    pub provider: Arc<dyn Provider>,
    /// Provider pages read at once when filling a snapshot.
    pub fetch_concurrency: usize,
    /// Whether a first page may be answered before its snapshot is built.
    pub early_first_page: bool,
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
            // A non-bulk walk pages at the configured size (the kind's default: Okra's largest).
            let walk_page_size = Some(settings.page_size);
            let provider: Arc<dyn Provider> = Arc::new(
                Guarded::new(adapter, lane.clone(), walk_page_size)
                    .remembering_not_found(settings.negative_ttl),
            );
            providers.insert(
                name.clone(),
                ProviderEntry {
                    name: Arc::from(name.as_str()),
                    kind: settings.kind.name,
                    provider,
                    fetch_concurrency: settings.fetch_concurrency,
                    early_first_page: settings.early_first_page,
                    page_size: settings.page_size,
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
    let (base_url, secret_key, credentials) = match (&settings.upstream, sandbox) {
        (
            Upstream::Remote {
                base_url,
                secret_key,
                credentials,
            },
            _,
        ) => (
            base_url.to_string(),
            secret_key.clone(),
            credentials.clone(),
        ),
        (Upstream::Sandbox, Some(sb)) => {
            let endpoint = (settings.kind.sandbox)(sb);
            let credentials = endpoint
                .credentials
                .into_iter()
                .map(|(key, value)| (key, Secret::new(value)))
                .collect();
            (
                endpoint.base_url,
                Secret::new(endpoint.secret_key),
                credentials,
            )
        }
        (Upstream::Sandbox, None) => {
            return Err(ProviderError::Config {
                provider: name.to_owned(),
                message: "base_url = \"sandbox\" but the sandbox is not running".into(),
            });
        }
    };
    let common = Common {
        name: name.to_owned(),
        base_url,
        secret_key,
        credentials,
        connect_timeout: settings.connect_timeout,
        request_timeout: settings.request_timeout,
        refresh_deadline: settings.refresh_deadline,
        page_size: settings.page_size,
    };
    settings.kind.build(common, settings.settings.clone())
}
