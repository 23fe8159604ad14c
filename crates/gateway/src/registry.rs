//! The configured provider instances: each adapter built from its config section and put
//! behind its own outbound lane, found by name or as the default.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use provider::{Provider, ProviderError};

use crate::cluster::Cluster;
use crate::config::{Config, ProviderConfig, ProviderKind, Upstream};
use crate::error::ApiError;
use crate::outbound::{Guarded, Lane};

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
