//! Operations routes (no API key): liveness, readiness and Prometheus metrics.
//!
//! `/healthz` says the process serves (and which build it is); `/readyz` says whether this
//! replica should get traffic (see [`crate::readiness`]); `/metrics` is the Prometheus scrape,
//! on `server.bind` or, with `metrics.bind`, on its own listener only.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::metrics::{REVISION, VERSION};
use crate::middleware::OwnBody;
use crate::readiness::Readiness;
use crate::state::AppState;

/// Liveness, and the build answering.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "ok", "version": "0.1.0", "revision": "3f9a1c0b7e2d"}))]
pub struct Health {
    /// Always `ok` while the process serves requests.
    status: &'static str,
    /// The gateway's version (as in the OpenAPI document's `info.version`).
    version: &'static str,
    /// The git revision it was built from (`unknown` when built without git).
    revision: &'static str,
}

/// Tells that the gateway is up, and its version (no authentication). `HEAD` works too.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The gateway is up.", body = Health))
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        version: VERSION,
        revision: REVISION,
    })
}

/// One readiness check.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"name": "redis", "status": "failing", "error": "connection refused"}))]
pub struct CheckInfo {
    /// What was checked: `config`, and each registered dependency (e.g. `redis`).
    name: String,
    /// `ok` or `failing`.
    status: &'static str,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// A provider's circuit breaker, as readiness reports it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"name": "okra", "circuit": "closed"}))]
pub struct ProviderCircuit {
    /// The provider instance.
    name: String,
    /// `closed`, `open` or `half_open` (an open breaker does not make the replica unready).
    circuit: &'static str,
}

/// Readiness: the checks and the providers' breakers.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "status": "ready",
    "checks": [{"name": "config", "status": "ok"}],
    "providers": [{"name": "mono", "circuit": "closed"}, {"name": "okra", "circuit": "open"}]
}))]
pub struct Ready {
    /// `ready`, `not_ready` (a check fails) or `shutting_down`.
    status: &'static str,
    /// Every check, `config` first.
    checks: Vec<CheckInfo>,
    /// Each provider's circuit breaker (informational).
    providers: Vec<ProviderCircuit>,
}

/// Whether this replica should get traffic: configuration loaded, every registered dependency
/// (Redis, when configured) reachable, not shutting down. The providers' circuit breakers are
/// reported but do not count: all replicas share the providers, and cached data still serves.
/// `HEAD` works too.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready for traffic.", body = Ready),
        (status = 503, description = "Not ready: a check fails, or the gateway is shutting down.", body = Ready),
    )
)]
pub async fn readyz(state: web::Data<AppState>, readiness: web::Data<Readiness>) -> HttpResponse {
    let checks: Vec<CheckInfo> = readiness
        .run()
        .await
        .into_iter()
        .map(|check| CheckInfo {
            name: check.name,
            status: if check.error.is_none() {
                "ok"
            } else {
                "failing"
            },
            error: check.error,
        })
        .collect();
    let providers = state
        .registry
        .iter()
        .map(|entry| ProviderCircuit {
            name: entry.name.to_string(),
            circuit: entry.lane.status().circuit.state.as_str(),
        })
        .collect();
    let status = if readiness.is_draining() {
        "shutting_down"
    } else if checks.iter().any(|c| c.error.is_some()) {
        "not_ready"
    } else {
        "ready"
    };
    let body = Ready {
        status,
        checks,
        providers,
    };
    if status == "ready" {
        HttpResponse::Ok().json(body)
    } else {
        let mut response = HttpResponse::ServiceUnavailable().json(body);
        response.extensions_mut().insert(OwnBody);
        response
    }
}

/// Prometheus metrics in the text exposition format (no authentication; see the README for
/// every family). Served here unless `metrics.bind` gives it a listener of its own.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "The Prometheus text format, version 0.0.4.", body = String, content_type = "text/plain"))
)]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    // Settle the caches' pending bookkeeping, so the bytes per tier are current.
    state.snapshots.run_pending_tasks().await;
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::render(&state))
}

/// `/healthz` and `/readyz` (GET and HEAD).
pub fn probe_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/healthz")
            .route(web::get().to(healthz))
            .route(web::head().to(healthz)),
    )
    .service(
        web::resource("/readyz")
            .route(web::get().to(readyz))
            .route(web::head().to(readyz)),
    );
}

/// `/metrics`.
pub fn metrics_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/metrics").route(web::get().to(metrics)));
}
