//! Building and running the service: configuration in, a bound server out.
//!
//! Shutdown: on SIGTERM (or SIGINT) [`Application::run_until_stopped`] logs it, marks the
//! replica not ready, stops accepting connections, lets requests in flight finish for
//! `server.shutdown_grace_secs`, and returns `Ok` (the process exits 0).

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use sha2::{Digest, Sha256};
use utoipa_swagger_ui::SwaggerUi;

use crate::api;
use crate::audit::AuditLog;
use crate::cluster::Cluster;
use crate::config::{ClientConfig, Config, ConfigError, DEMO_API_KEY};
use crate::cursor::CursorCodec;
use crate::inbound::InboundLimits;
use crate::jobs::Jobs;
use crate::jobs_shared::SharedJobs;
use crate::middleware::{AccessLog, authenticate, request_context};
use crate::notify::{Notifier, RetryPolicy};
use crate::readiness::Readiness;
use crate::snapshot::SnapshotCache;
use crate::snapshot::shared_tier::{SharedTier, parse_invalidation};
use crate::state::{AppState, Client, DemoInfo, KeyEntry, Registry, SandboxUpstream};
use crate::sync::SyncHistory;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A provider adapter could not be built.
    #[error("provider: {0}")]
    Provider(#[from] provider::ProviderError),
    /// Binding or serving failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A listener's address cannot be bound.
    #[error("cannot listen on {addr}: {source}{}", bind_hint(source))]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why not.
        source: std::io::Error,
    },
}

/// What to do about a bind failure, in words.
fn bind_hint(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => {
            " (another process listens there: stop it, or choose another address with --bind or server.bind)"
        }
        std::io::ErrorKind::AddrNotAvailable => {
            " (not an address of this host: use 127.0.0.1, 0.0.0.0 or one of its own)"
        }
        std::io::ErrorKind::PermissionDenied => " (ports below 1024 need privileges)",
        _ => "",
    }
}

/// Binds `addr`, or says which address could not be bound and why.
fn bind(addr: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr).map_err(|source| StartupError::Bind { addr, source })
}

/// A built, bound gateway (and its embedded sandbox, when configured).
pub struct Application {
    addr: SocketAddr,
    server: Server,
    metrics: Option<(SocketAddr, Server)>,
    shutdown_grace: Duration,
    readiness: web::Data<Readiness>,
    state: web::Data<AppState>,
    sandbox: Option<sandbox::Sandbox>,
    demo: Option<DemoInfo>,
}

impl Application {
    /// Starts the embedded sandbox (if configured), builds the providers and binds the listener.
    pub async fn build(config: Config) -> Result<Application, StartupError> {
        let mut sandbox_running = None;
        if let Some(settings) = &config.sandbox {
            let sandbox_config = sandbox::SandboxConfig {
                seed: settings.seed,
                refresh_duration: settings.refresh_duration,
                ..Default::default()
            };
            let sb = sandbox::start(
                sandbox_config.clone(),
                SocketAddr::from(([127, 0, 0, 1], 0)),
            )
            .await?;
            sandbox_running = Some((sb, sandbox_config));
        }
        let upstream = sandbox_running
            .as_ref()
            .map(|(sandbox, config)| SandboxUpstream { sandbox, config });
        let cluster = match &config.redis {
            Some(redis) => {
                let cluster = Cluster::connect(redis)
                    .map_err(|e| ConfigError::new("redis.url", format!("cannot use it: {e}")))?;
                // The first heartbeat tells the quota share; a replica also starts with Redis down.
                match cluster.heartbeat().await {
                    Ok(n) => tracing::info!(live_replicas = n, "redis reachable: state shared"),
                    Err(e) => {
                        tracing::warn!(error = %e, "redis unreachable at start: local shares until it answers")
                    }
                }
                cluster.spawn_heartbeats();
                Some(cluster)
            }
            None => None,
        };
        let cursors = cursor_codec(&config, cluster.as_deref()).await;
        let sync = Arc::new(SyncHistory::new(
            &config.sync,
            cluster.clone(),
            Some(
                Notifier::new(&config.clients, RetryPolicy::from_config(&config.jobs))
                    .map_err(std::io::Error::other)?,
            ),
        ));
        let mut snapshots = SnapshotCache::new(&config.cache)
            .with_observer(sync.observer())
            .with_fill_timeout(config.request_timeout);
        if let Some(cluster) = &cluster {
            snapshots = snapshots.with_shared(SharedTier::new(
                cluster.clone(),
                std::time::Duration::from_secs(config.cache.cursor_lifetime_secs),
            ));
        }
        let registry = Registry::build(&config, upstream.as_ref(), cluster.as_ref())?;
        // The demo key is offered only when the configuration has the demo client.
        let demo_key = config
            .clients
            .iter()
            .flat_map(|c| &c.keys)
            .any(|k| k.sha256 == <[u8; 32]>::from(Sha256::digest(DEMO_API_KEY.as_bytes())))
            .then(|| DEMO_API_KEY.to_owned());
        let demo = sandbox_running
            .as_ref()
            .map(|(sb, _)| demo_info(sb, demo_key, &config));

        let examples: Vec<(&str, String)> = match &demo {
            Some(demo) => vec![
                (
                    "account_id",
                    demo.default_accounts().first().cloned().unwrap_or_default(),
                ),
                (
                    "customer_id",
                    demo.customers.first().cloned().unwrap_or_default(),
                ),
                ("nuban", demo.nubans.first().cloned().unwrap_or_default()),
                (
                    "/v1/transactions/{id} id",
                    demo.transactions.first().cloned().unwrap_or_default(),
                ),
            ],
            None => Vec::new(),
        };
        let note = demo.as_ref().map(|demo| {
            let authorize = match &demo.api_key {
                Some(key) => format!("Click **Authorize** and enter the demo key `{key}`. "),
                None => {
                    "Click **Authorize** and enter one of your configured clients' keys. ".into()
                }
            };
            let with = |instance: Option<&str>| match demo.provider_hint(instance) {
                hint if hint.is_empty() => String::new(),
                hint => format!(" (add `{}`)", &hint[1..]),
            };
            format!(
                "**Embedded sandbox.** {authorize}The examples are real sandbox ids, so *Try it \
                 out* works as is (a job id: from a refresh's answer). Okra accounts{}: {}. \
                 Mono-style accounts{}: {}. Customers: {}. NUBANs: {}. Transactions: {}.",
                with(demo.okra_instance.as_deref()),
                code_list(&demo.okra_accounts),
                with(demo.mono_instance.as_deref()),
                code_list(&demo.mono_accounts),
                code_list(&demo.customers),
                code_list(&demo.nubans),
                code_list(&demo.transactions),
            )
        });
        let instances: Vec<(String, provider::Capabilities)> = registry
            .iter()
            .map(|entry| {
                (
                    entry.name.to_string(),
                    entry.provider.capabilities().clone(),
                )
            })
            .collect();
        let openapi = api::openapi_with_examples(
            &examples,
            note.as_deref(),
            registry.default_name(),
            &instances,
        );

        let clients = crate::keys::Keys::new(key_table(&config.clients));
        log_policies(&config.clients);
        if let Some(warning) = no_clients_warning(&config.clients) {
            tracing::warn!("{warning}");
        }
        let today = time::OffsetDateTime::now_utc().date();
        for line in expiry_warnings(&config.clients, today, config.key_expiry_warning) {
            tracing::warn!("{line}");
        }
        spawn_daily_expiry_warnings(config.clients.clone(), config.key_expiry_warning);
        let audit = match &config.audit {
            Some(settings) => AuditLog::start(settings).map_err(|e| {
                ConfigError::new(
                    "audit.path",
                    format!(
                        "cannot open {}: {e}",
                        settings
                            .path
                            .as_deref()
                            .map_or("stdout".into(), |p| p.display().to_string())
                    ),
                )
            })?,
            None => AuditLog::off(),
        };
        match &config.audit {
            Some(settings) => tracing::info!(
                "audit trail: one JSON line per data access to {}",
                settings
                    .path
                    .as_deref()
                    .map_or("stdout".into(), |p| p.display().to_string())
            ),
            None => tracing::warn!("audit trail is off (audit.enabled = false)"),
        }
        // Bound first: webhook callback URLs name the bound address when no public_url is set.
        let listener = bind(config.bind)?;
        let addr = listener.local_addr()?;
        let state = web::Data::new(AppState {
            registry,
            clients,
            snapshots: Arc::new(snapshots),
            request_timeout: config.request_timeout,
            cursors,
            jobs: match &cluster {
                None => Jobs::new(&config, addr)?,
                Some(cluster) => Jobs::new(&config, addr)?.with_shared(SharedJobs::new(
                    cluster.clone(),
                    std::time::Duration::from_secs(config.jobs.ttl_secs),
                    std::time::Duration::from_millis(config.jobs.lease_ms),
                )),
            },
            inbound: InboundLimits::new(&config.clients, cluster.clone()),
            cluster,
            sync,
            audit,
        });
        if let (Some(cluster), Some(shared)) = (&state.cluster, state.snapshots.shared()) {
            // Another replica's refresh drops this replica's copies of the account too.
            let weak = std::sync::Arc::downgrade(&state.clone().into_inner());
            cluster.spawn_subscriber(shared.invalidate_channel(), move |message| {
                if let (Some(state), Some((provider, account))) =
                    (weak.upgrade(), parse_invalidation(message))
                {
                    let _ = state.snapshots.invalidate_local(provider, account);
                }
            });
        }
        // A refreshed account is read again at once when clients wait for sync notifications.
        state
            .sync
            .attach(std::sync::Arc::downgrade(&state.clone().into_inner()));
        crate::jobs::spawn_takeovers(state.clone());
        crate::snapshot::spawn_housekeeping(&state.snapshots);
        // Installed before the first request, so every family is there from the start.
        crate::metrics::handle();
        let readiness = web::Data::new(Readiness::default());
        if let Some(cluster) = &state.cluster {
            readiness.register(cluster.clone());
        }
        let access_log = AccessLog(config.log.access_log);
        let own_metrics_listener = config.metrics_bind.is_some();
        let grace = config.shutdown_grace;
        let app_state = state.clone();
        let app_readiness = readiness.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(app_readiness.clone())
                .app_data(access_log)
                .wrap(from_fn(request_context))
                // Most traffic first: actix tries services in order, and the Swagger UI's
                // catch-all pattern costs a regex match on every request it precedes.
                .configure(api::webhook_routes)
                .service(
                    // Authenticate, then charge the client (one layer); each route then checks
                    // its scopes (`api::v1_routes`), so a refused call has cost quota like any
                    // other.
                    web::scope("/v1")
                        .wrap(from_fn(authenticate))
                        .configure(api::v1_routes),
                )
                .configure(api::operations::probe_routes)
                .configure(|cfg| {
                    if !own_metrics_listener {
                        api::operations::metrics_routes(cfg);
                    }
                })
                .route("/swagger-ui", web::get().to(redirect_to_swagger))
                .service(
                    SwaggerUi::new("/swagger-ui/{_:.*}")
                        .external_url_unchecked("/openapi.json", openapi.clone())
                        .config(
                            utoipa_swagger_ui::Config::default()
                                .persist_authorization(true)
                                .try_it_out_enabled(true),
                        ),
                )
        })
        .workers(config.workers)
        .disable_signals()
        .listen(listener)?
        .run();

        let metrics = match config.metrics_bind {
            Some(bind) => {
                let listener = self::bind(bind)?;
                let metrics_addr = listener.local_addr()?;
                let metrics_state = state.clone();
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(metrics_state.clone())
                        .configure(api::operations::metrics_routes)
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(1)
                .listen(listener)?
                .run();
                Some((metrics_addr, server))
            }
            None => None,
        };

        Ok(Application {
            addr,
            server,
            metrics,
            shutdown_grace: grace,
            readiness,
            state,
            sandbox: sandbox_running.map(|(sb, _)| sb),
            demo,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `/metrics` is served when `metrics.bind` gives it its own listener.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(addr, _)| *addr)
    }

    /// The readiness checks: register one for each dependency the replica needs (Redis).
    pub fn readiness(&self) -> web::Data<Readiness> {
        self.readiness.clone()
    }

    /// The embedded sandbox, when configured.
    pub fn sandbox(&self) -> Option<&sandbox::Sandbox> {
        self.sandbox.as_ref()
    }

    /// Facts for people trying the embedded setup.
    pub fn demo(&self) -> Option<&DemoInfo> {
        self.demo.as_ref()
    }

    /// The shared state (for tests that inspect the cache).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// A handle to stop the server.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped, or until SIGTERM/SIGINT, then shuts down gracefully: not ready
    /// from then on, no new connections, requests in flight given `server.shutdown_grace_secs`.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Application {
            server,
            metrics,
            shutdown_grace,
            readiness,
            ..
        } = self;
        let handle = server.handle();
        let metrics_handle = metrics.as_ref().map(|(_, server)| server.handle());
        if let Some((_, metrics_server)) = metrics {
            tokio::spawn(metrics_server);
        }
        let mut server = std::pin::pin!(server);
        // actix's own graceful stop can drop a worker (and the requests it serves) when its
        // accept thread exits first, so the drain is done here: pause accepting, wait for the
        // requests in flight (counted by `request_context`), then stop what is left (idle
        // keep-alive connections).
        let drain = async {
            let signal = shutdown_signal().await;
            tracing::info!(
                signal,
                grace_secs = shutdown_grace.as_secs(),
                in_flight = readiness.in_flight(),
                "shutting down: not accepting new connections, finishing requests in flight"
            );
            readiness.start_draining();
            handle.pause().await;
            let left = readiness.wait_idle(shutdown_grace).await;
            if left > 0 {
                tracing::warn!(
                    requests = left,
                    "grace period over: closing requests still in flight"
                );
            }
            // Hand-over point for background work: the Redis-backed stack (issue 12) marks
            // this replica's running refresh runs resumable here. In-memory runs and queued
            // notifications end with the process.
            // The last bytes of a body leave after the body ends: a moment to flush them.
            tokio::time::sleep(Duration::from_millis(50)).await;
            handle.stop(false).await;
        };
        let result = tokio::select! {
            result = &mut server => result,
            () = drain => server.await,
        };
        if let Some(metrics_handle) = metrics_handle {
            // Spawned above, so it runs by itself.
            metrics_handle.stop(false).await;
        }
        crate::telemetry::flush();
        tracing::info!("stopped");
        result
    }

    /// Starts serving in the background and returns the bound address (for tests).
    pub fn spawn(self) -> SocketAddr {
        let addr = self.addr;
        if let Some((_, metrics)) = self.metrics {
            tokio::spawn(metrics);
        }
        tokio::spawn(self.server);
        addr
    }
}

/// The cursor key: configured; else the one the replicas share in Redis; else per process.
async fn cursor_codec(config: &Config, cluster: Option<&Cluster>) -> CursorCodec {
    if let Some(secret) = &config.cursor_secret {
        return CursorCodec::with_key(secret.expose().as_bytes());
    }
    if let Some(cluster) = cluster {
        match cluster.cursor_key().await {
            Ok(key) => return CursorCodec::with_key(&key),
            Err(e) => tracing::warn!(
                error = %e,
                "no shared cursor key (redis unreachable): cursors from this replica work only \
                 here; set cache.cursor_secret to avoid this"
            ),
        }
    }
    CursorCodec::random()
}

/// Every accepted key, by its SHA-256, with its client and expiry.
fn key_table(clients: &[ClientConfig]) -> HashMap<[u8; 32], KeyEntry> {
    let mut table = HashMap::new();
    for c in clients {
        let client = Arc::new(Client {
            name: Arc::from(c.name.as_str()),
            policy: c.policy.clone(),
            fair_share_weight: c.fair_share_weight,
        });
        for key in &c.keys {
            table.insert(
                key.sha256,
                KeyEntry {
                    client: client.clone(),
                    expires_at: key.expires_at(),
                },
            );
        }
    }
    table
}

/// Says at start what each client may do, and that the defaults are "everything".
fn log_policies(clients: &[ClientConfig]) {
    for c in clients {
        let unrestricted = c.policy == crate::policy::Policy::unrestricted();
        if unrestricted {
            tracing::info!(
                "client {}: {} (the default; set scopes = [...] and providers = [...] in [clients.{}] to restrict it)",
                c.name,
                c.policy.describe(),
                c.name
            );
        } else {
            tracing::info!("client {}: {}", c.name, c.policy.describe());
        }
    }
}

/// The warning for a configuration without any client: it starts, and refuses every call.
fn no_clients_warning(clients: &[ClientConfig]) -> Option<&'static str> {
    clients.is_empty().then_some(
        "no clients are configured: every /v1 request will be refused (401); add a [clients.NAME] section with its key",
    )
}

/// The warnings due on `today` about keys whose `not_after` is at most `within` away, or past.
pub fn expiry_warnings(
    clients: &[ClientConfig],
    today: time::Date,
    within: std::time::Duration,
) -> Vec<String> {
    let within_days = i64::try_from(within.as_secs() / 86_400).unwrap_or(i64::MAX);
    let mut lines = Vec::new();
    for c in clients {
        for key in &c.keys {
            let Some(last) = key.not_after else {
                continue;
            };
            let days_left = (last - today).whole_days();
            if days_left < 0 {
                lines.push(format!(
                    "client {}: API key {} expired after {last}; it is refused (401): remove it from the configuration",
                    c.name,
                    key.label()
                ));
            } else if days_left <= within_days {
                lines.push(format!(
                    "client {}: API key {} expires after {last} ({days_left} days left): give the client its new key",
                    c.name,
                    key.label()
                ));
            }
        }
    }
    lines
}

/// Repeats the expiry warnings once a day while the gateway runs.
fn spawn_daily_expiry_warnings(clients: Vec<ClientConfig>, within: std::time::Duration) {
    if !clients
        .iter()
        .flat_map(|c| &c.keys)
        .any(|k| k.not_after.is_some())
    {
        return;
    }
    tokio::spawn(async move {
        let day = std::time::Duration::from_secs(86_400);
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + day, day);
        loop {
            ticks.tick().await;
            let today = time::OffsetDateTime::now_utc().date();
            for line in expiry_warnings(&clients, today, within) {
                tracing::warn!("{line}");
            }
        }
    });
}

async fn redirect_to_swagger() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("location", "/swagger-ui/"))
        .finish()
}

fn demo_info(sb: &sandbox::Sandbox, api_key: Option<String>, config: &Config) -> DemoInfo {
    let directory = sb.directory();
    let instance = |kind: &str| {
        config
            .providers
            .iter()
            .find(|(_, p)| p.kind.name == kind)
            .map(|(name, _)| name.clone())
    };
    let mut info = DemoInfo {
        api_key,
        okra_instance: instance("okra"),
        mono_instance: instance("mono"),
        default_provider: config.default_provider.clone(),
        ..Default::default()
    };
    // Prefer accounts with data, so the examples show something.
    let mut accounts: Vec<_> = directory
        .customers
        .iter()
        .flat_map(|c| c.accounts.iter().map(move |a| (c, a)))
        .filter(|(_, a)| a.transaction_count > 0)
        .collect();
    accounts.sort_by_key(|(_, a)| std::cmp::Reverse(a.transaction_count.min(500)));
    for (customer, account) in accounts.into_iter().take(3) {
        info.okra_accounts.push(account.okra_account_id.clone());
        info.mono_accounts.push(account.mono_account_id.clone());
        info.nubans.push(account.nuban.clone());
        if let (Some(okra), Some(id)) = (&info.okra_instance, &account.newest_okra_transaction_id) {
            let id = provider::TransactionId::new(okra.as_str(), id.as_str());
            info.transactions.push(id.to_string());
        }
        if !info.customers.contains(&customer.okra_customer_id) {
            info.customers.push(customer.okra_customer_id.clone());
        }
    }
    info
}

fn code_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Resolves with the signal's name at the first SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                Ok(()) = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; Ctrl-C only");
                if tokio::signal::ctrl_c().await.is_err() {
                    std::future::pending::<()>().await;
                }
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        "SIGINT"
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use time::macros::date;

    use super::*;
    use crate::config::ClientKey;

    fn client(not_after: &[Option<time::Date>]) -> ClientConfig {
        let mut config = Config::embedded_default().unwrap().clients.remove(0);
        config.keys = not_after
            .iter()
            .enumerate()
            .map(|(i, d)| ClientKey {
                sha256: [i as u8; 32],
                not_after: *d,
            })
            .collect();
        config
    }

    #[test]
    fn a_configuration_without_clients_is_warned_about() {
        assert!(no_clients_warning(&[]).is_some_and(|w| w.contains("refused (401)")));
        assert_eq!(no_clients_warning(&[client(&[None])]), None);
    }

    #[tokio::test]
    async fn a_busy_port_names_the_address_and_what_to_do() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let error = bind(addr).unwrap_err().to_string();
        assert!(error.contains(&addr.to_string()), "{error}");
        assert!(error.contains("another process listens there"), "{error}");
    }

    #[test]
    fn keys_are_warned_about_from_n_days_before_their_last_day() {
        let clients = [client(&[None, Some(date!(2027 - 01 - 31))])];
        let within = Duration::from_secs(14 * 86_400);
        assert!(expiry_warnings(&clients, date!(2027 - 01 - 16), within).is_empty());
        let due = expiry_warnings(&clients, date!(2027 - 01 - 17), within);
        assert_eq!(due.len(), 1);
        assert!(due[0].contains("14 days left"), "{}", due[0]);
        assert!(due[0].contains("sha256:01010101"), "{}", due[0]);
        let last_day = expiry_warnings(&clients, date!(2027 - 01 - 31), within);
        assert!(last_day[0].contains("0 days left"), "{}", last_day[0]);
        let after = expiry_warnings(&clients, date!(2027 - 02 - 01), within);
        assert!(after[0].contains("expired"), "{}", after[0]);
    }
}
