//! Building and running the service: configuration in, a bound server out.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use sha2::{Digest, Sha256};
use utoipa_swagger_ui::SwaggerUi;

use crate::api;
use crate::audit::AuditLog;
use crate::config::{ClientConfig, Config, ConfigError, DEMO_API_KEY};
use crate::cursor::CursorCodec;
use crate::inbound::{InboundLimits, rate_limit};
use crate::jobs::Jobs;
use crate::middleware::{authenticate, request_context};
use crate::snapshot::SnapshotCache;
use crate::state::{AppState, Client, DemoInfo, KeyEntry, Registry, SandboxUpstream};

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
}

/// A built, bound gateway (and its embedded sandbox, when configured).
pub struct Application {
    addr: SocketAddr,
    server: Server,
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
        let registry = Registry::build(&config, upstream.as_ref())?;
        // The demo key is offered only when the configuration has the demo client.
        let demo_key = config
            .clients
            .iter()
            .flat_map(|c| &c.keys)
            .any(|k| k.sha256 == <[u8; 32]>::from(Sha256::digest(DEMO_API_KEY.as_bytes())))
            .then(|| DEMO_API_KEY.to_owned());
        let demo = sandbox_running
            .as_ref()
            .map(|(sb, _)| demo_info(sb, demo_key));

        let examples: Vec<(&str, String)> = match &demo {
            Some(demo) => vec![
                (
                    "account_id",
                    demo.okra_accounts.first().cloned().unwrap_or_default(),
                ),
                (
                    "customer_id",
                    demo.customers.first().cloned().unwrap_or_default(),
                ),
                ("nuban", demo.nubans.first().cloned().unwrap_or_default()),
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
            format!(
                "**Embedded sandbox.** {authorize}The examples are real sandbox ids, so *Try it \
                 out* works as is. Okra accounts: {}. Mono-style accounts (add `provider=mono`): \
                 {}. Customers: {}. NUBANs: {}.",
                code_list(&demo.okra_accounts),
                code_list(&demo.mono_accounts),
                code_list(&demo.customers),
                code_list(&demo.nubans),
            )
        });
        let openapi = api::openapi_with_examples(&examples, note.as_deref());

        let clients = key_table(&config.clients);
        log_policies(&config.clients);
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
        let listener = TcpListener::bind(config.bind)?;
        let addr = listener.local_addr()?;
        let state = web::Data::new(AppState {
            registry,
            clients,
            snapshots: SnapshotCache::new(&config.cache),
            request_timeout: config.request_timeout,
            cursors: CursorCodec::random(),
            jobs: Jobs::new(&config, addr)?,
            inbound: InboundLimits::new(&config.clients),
            audit,
        });
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .wrap(from_fn(request_context))
                // Most traffic first: actix tries services in order, and the Swagger UI's
                // catch-all pattern costs a regex match on every request it precedes.
                .configure(api::webhook_routes)
                .service(
                    // The last `wrap` runs first: authenticate, then charge the client; each
                    // route then checks its scopes (`api::v1_routes`), so a refused call has
                    // cost quota like any other.
                    web::scope("/v1")
                        .wrap(from_fn(rate_limit))
                        .wrap(from_fn(authenticate))
                        .configure(api::v1_routes),
                )
                .service(web::resource("/healthz").route(web::get().to(api::healthz)))
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
        .listen(listener)?
        .run();

        Ok(Application {
            addr,
            server,
            state,
            sandbox: sandbox_running.map(|(sb, _)| sb),
            demo,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
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

    /// Serves until stopped.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    /// Starts serving in the background and returns the bound address (for tests).
    pub fn spawn(self) -> SocketAddr {
        let addr = self.addr;
        tokio::spawn(self.server);
        addr
    }
}

/// Every accepted key, by its SHA-256, with its client and expiry.
fn key_table(clients: &[ClientConfig]) -> HashMap<[u8; 32], KeyEntry> {
    let mut table = HashMap::new();
    for c in clients {
        let client = Arc::new(Client {
            name: c.name.clone(),
            policy: c.policy.clone(),
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

fn demo_info(sb: &sandbox::Sandbox, api_key: Option<String>) -> DemoInfo {
    let directory = sb.directory();
    let mut info = DemoInfo {
        api_key,
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
