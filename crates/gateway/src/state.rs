//! What every handler shares: the provider registry, the clients, the snapshot cache.

use std::sync::Arc;
use std::time::Duration;

use crate::audit::AuditLog;
pub use crate::clients::{Client, KeyEntry};
use crate::cluster::Cluster;
use crate::cursor::CursorCodec;
use crate::error::ApiError;
use crate::inbound::InboundLimits;
use crate::jobs::Jobs;
pub use crate::registry::{ProviderEntry, Registry, SandboxUpstream};
use crate::snapshot::SnapshotCache;

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
    /// Gateway ids of a few transactions (of the Okra instance, which can look one up).
    pub transactions: Vec<String>,
    /// The configured instance of the Okra kind, if any.
    pub okra_instance: Option<String>,
    /// The configured instance of the Mono-style kind, if any.
    pub mono_instance: Option<String>,
    /// The instance a request without `?provider=` goes to.
    pub default_provider: String,
}

impl DemoInfo {
    /// Account ids the default provider knows (so an example without `?provider=` works).
    pub fn default_accounts(&self) -> &[String] {
        if self.mono_instance.as_deref() == Some(self.default_provider.as_str()) {
            &self.mono_accounts
        } else {
            &self.okra_accounts
        }
    }

    /// What a request for `instance` adds: nothing for the default, else `?provider=NAME`.
    pub fn provider_hint(&self, instance: Option<&str>) -> String {
        match instance {
            Some(name) if name != self.default_provider => format!("?provider={name}"),
            _ => String::new(),
        }
    }
}

impl AppState {
    /// Runs `work` under the gateway's per-request deadline, which every outbound lane it
    /// calls also sees (waits in line and retries end by it).
    pub async fn within_deadline<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        let result =
            tokio::time::timeout_at(deadline, crate::outbound::with_deadline(deadline, work))
                .await
                .unwrap_or(Err(ApiError::Timeout(self.request_timeout)));
        timed_out_at(result, deadline, self.request_timeout)
    }
}

/// An upstream call cut by the request's deadline (the lane answers "unreachable" at the same
/// instant the deadline fires) is the request's timeout: 504 `timeout`, as documented.
fn timed_out_at<T>(
    result: Result<T, ApiError>,
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> Result<T, ApiError> {
    match result {
        Err(ApiError::Upstream(provider::ProviderError::Unavailable { status: None, .. }))
            if tokio::time::Instant::now() >= deadline =>
        {
            Err(ApiError::Timeout(timeout))
        }
        other => other,
    }
}

/// Everything the handlers share.
pub struct AppState {
    /// The providers.
    pub registry: Registry,
    /// Every accepted API key and its client.
    pub clients: crate::keys::Keys,
    /// Snapshots of provider data.
    pub snapshots: Arc<SnapshotCache>,
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

impl crate::jobs::RunHost for AppState {
    fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    fn provider(&self, name: &str) -> Option<ProviderEntry> {
        self.registry.get(name).cloned()
    }

    fn account_refreshed(&self, provider: &str, account: &str) -> Result<(), ApiError> {
        self.snapshots.invalidate_account(provider, account)?;
        self.sync.after_refresh(provider, account);
        Ok(())
    }
}

impl crate::metrics::Scraped for AppState {
    fn set_gauges(&self) {
        use crate::metrics::{
            CACHE_BYTES, CACHE_EVICTIONS, CIRCUIT_STATE, CLIENT_WEIGHT, LINE_CLIENTS, LINE_WAITING,
            QUOTA_WAITING, UPSTREAM_IN_FLIGHT,
        };
        use ::metrics::{counter, gauge};
        for entry in self.registry.iter() {
            // Registered at zero, so every provider's series exist before anything happens.
            let provider = entry.name.to_string();
            gauge!(UPSTREAM_IN_FLIGHT, "provider" => provider.clone()).increment(0.0);
            gauge!(QUOTA_WAITING, "provider" => provider).increment(0.0);
            let lane = entry.lane.status();
            gauge!(LINE_WAITING, "provider" => entry.name.to_string())
                .set(f64::from(lane.waiting_for_quota));
            gauge!(LINE_CLIENTS, "provider" => entry.name.to_string())
                .set(f64::from(lane.waiting_clients));
            let current = lane.circuit.state.as_str();
            for name in ["closed", "open", "half_open"] {
                let on = if name == current { 1.0 } else { 0.0 };
                gauge!(CIRCUIT_STATE, "provider" => entry.name.to_string(), "state" => name)
                    .set(on);
            }
        }
        for entry in self.clients.entries() {
            gauge!(CLIENT_WEIGHT, "client" => entry.client.name.clone())
                .set(f64::from(entry.client.fair_share_weight));
        }
        for (tier, bytes) in self.snapshots.weighted_sizes() {
            gauge!(CACHE_BYTES, "tier" => tier).set(bytes as f64);
            counter!(CACHE_EVICTIONS, "tier" => tier).increment(0);
        }
    }
}

impl crate::sync::AccountReader for AppState {
    fn read_again(
        self: Arc<Self>,
        provider: String,
        account: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let app = self;
        Box::pin(async move {
            let Some(entry) = app.registry.get(&provider) else {
                return;
            };
            // With Redis the refresh dropped the shared pointer in the background: drop it here
            // first, so this read cannot find the old snapshot there.
            if let Some(shared) = app.snapshots.shared() {
                shared.invalidate_account(&provider, &account).await;
            }
            let query = provider::TransactionQuery::new(provider::Scope::Account(account));
            let read = app.within_deadline(async {
                match app.snapshots.get_or_fetch(entry, &query).await {
                    Ok((snapshot, _)) => app
                        .sync
                        .observe(&snapshot)
                        .await
                        .map(|_| ())
                        .map_err(|e| ApiError::Internal(e.to_string())),
                    Err(
                        e @ (crate::snapshot::FetchError::Provider(_)
                        | crate::snapshot::FetchError::Busy(_)),
                    ) => Err(e.into_api()),
                    Err(crate::snapshot::FetchError::TooLarge { .. }) => Ok(()),
                }
            });
            if let Err(error) = read.await {
                tracing::warn!(%provider, %error, "refreshed account not read again for sync");
            }
        })
    }
}
