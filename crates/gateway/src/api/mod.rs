//! The HTTP API: routes, their OpenAPI description, and the Swagger UI.
//!
//! Each route is documented where it is written (`#[utoipa::path]` on the handler); [`ApiDoc`]
//! gathers them. `openapi/openapi.json` is [`ApiDoc`] rendered and checked in; a test fails when
//! the two differ.

pub mod doc;
pub mod operations;
pub mod params;
pub mod refresh;
pub mod sync;
pub mod transactions;
pub mod views;

use std::sync::Arc;

use actix_web::body::BoxBody;
use actix_web::dev::ServiceRequest;
use actix_web::http::Method;
use actix_web::middleware::{Next, from_fn};
use actix_web::{FromRequest, Handler, HttpMessage, HttpRequest, HttpResponse, Responder, web};
use serde::Serialize;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Object, Ref, RefOr, ResponseBuilder, Type};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::error::Problem;
use crate::middleware::authorize;
use crate::outbound::LaneStatus;
use crate::policy::{self, Route};
use crate::state::{AppState, Client};

/// The gateway's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Bank transactions gateway",
        description = "One canonical, paginated API over several bank-data providers (Okra, a Mono-style provider).\n\nAmounts are exact: integer minor units (`minor`, kobo for NGN) plus a decimal string (`value`). Lists are newest first and served from consistent snapshots; walk them with `page` or with the opaque `next_cursor`.\n\nAuthenticate with `Authorization: Bearer <API key>` (the **Authorize** button). Errors are RFC 9457 `application/problem+json` with a stable `code`, the `request_id`, and for validation errors the `parameter` at fault.\n\nEach client has a request quota. Every authenticated `/v1` answer carries `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers-09): `RateLimit-Policy: \"default\";q=6000;w=60` is the policy (`q` requests per `w` seconds), `RateLimit: \"default\";r=499;t=3` says `r` requests may be sent now and the full burst is back in `t` seconds. Over quota: 429 with `Retry-After`.\n\n**Scopes.** Each client may use only the operations its configuration grants (`transactions:read`, `transactions:refresh`, `transactions:sync`, `providers:read`, `jobs:read`; all by default) and only the provider instances it lists (all by default). Each operation below names the scope it needs (its **Scope** line and `x-required-scopes`; the bearer requirement itself names none, as OpenAPI keeps scopes for OAuth2). A call outside them is a 403 `insufficient_scope` problem whose `scope` names what is missing (`transactions:refresh`, or `provider:mono` with `parameter` saying where the provider came from); it counts against the quota and never reaches a provider. `GET /v1/providers` lists only the instances the client may use. A client may have several API keys (for rotation); a key past its last day answers 401 `key_expired`. When a provider is over the gateway's outbound quota for it (`provider_busy`), rate limiting the gateway (`upstream_rate_limited`), or failing so that its circuit breaker is open (`circuit_open`), or when the gateway's memory for reading snapshots is taken by other reads (`cache_busy`), the answer is 503 with `Retry-After`.",
        version = env!("CARGO_PKG_VERSION")
    ),
    paths(
        transactions::list_account,
        transactions::list_customer,
        transactions::list_nuban,
        transactions::list_all,
        transactions::get_transaction,
        sync::sync_account,
        refresh::start_refresh,
        refresh::get_job,
        refresh::receive_delivery,
        list_providers,
        operations::healthz,
        operations::readyz,
        operations::metrics,
    ),
    components(schemas(Problem, ProvidersBody, ProviderInfo, OutboundInfo, CircuitInfo, operations::Health, operations::Ready, operations::CheckInfo, operations::ProviderCircuit, crate::jobs::JobView, crate::jobs::JobStatus)),
    modifiers(&BearerAuth, &ScopeDocs, &RateLimitDocs),
    tags(
        (name = "transactions", description = "Canonical transactions from any configured provider"),
        (name = "refresh", description = "Fresh data on demand: refresh jobs, and the providers' webhook deliveries"),
        (name = "providers", description = "What is configured"),
        (name = "operations", description = "Health, readiness and metrics (no API key)")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The client's API key"))
                    .build(),
            ),
        );
    }
}

/// Documents the scope each `/v1` operation needs (from its security requirement, written on
/// the handler and checked against [`crate::policy::ROUTES`] by a test): a line in its
/// description, which Swagger UI shows, and the 403 every such operation may answer.
struct ScopeDocs;

impl Modify for ScopeDocs {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let example = serde_json::json!({
            "type": "/problems/insufficient_scope",
            "title": "Insufficient scope",
            "status": 403,
            "detail": "this client lacks the scope transactions:refresh, which this operation needs",
            "code": "insufficient_scope",
            "scope": "transactions:refresh",
            "request_id": "3f0c2a9e8b7d4c1a"
        });
        let mut content = Content::new(Some(Ref::from_schema_name("Problem")));
        content.example = Some(example);
        let mut forbidden = ResponseBuilder::new()
            .description("The client's configuration does not grant this operation's scope, or the provider instance (`scope` = `provider:NAME`); the call was counted against its quota and reached no provider.")
            .content("application/problem+json", content)
            .build();
        for name in ["RateLimit-Policy", "RateLimit"] {
            forbidden.headers.insert(
                name.to_owned(),
                RefOr::Ref(Ref::new(format!("#/components/headers/{name}"))),
            );
        }
        components
            .responses
            .insert("InsufficientScope".to_owned(), RefOr::T(forbidden));

        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            let operations = [
                (Method::GET, &mut item.get),
                (Method::PUT, &mut item.put),
                (Method::POST, &mut item.post),
                (Method::DELETE, &mut item.delete),
                (Method::PATCH, &mut item.patch),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else { continue };
                let scopes = required_scopes(operation);
                if scopes.is_empty() {
                    continue;
                }
                let reaches_provider = policy::lookup(&method, path)
                    .is_some_and(|route| route.provider != policy::ProviderSource::None);
                let line = format!(
                    "**Scope:** `{}`{}.",
                    scopes.join("`, `"),
                    if reaches_provider {
                        ", on a provider instance the client may use"
                    } else {
                        ""
                    }
                );
                operation.description = Some(match operation.description.take() {
                    Some(text) if !text.is_empty() => format!("{text}\n\n{line}"),
                    _ => line,
                });
                operation.responses.responses.insert(
                    "403".to_owned(),
                    RefOr::Ref(Ref::new("#/components/responses/InsufficientScope")),
                );
            }
        }
    }
}

/// The scopes an operation's `api_key` security requirement names.
pub fn required_scopes(operation: &utoipa::openapi::path::Operation) -> Vec<String> {
    let Some(requirements) = &operation.security else {
        return Vec::new();
    };
    let Ok(value) = serde_json::to_value(requirements) else {
        return Vec::new();
    };
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|req| req.get("api_key"))
        .filter_map(|scopes| scopes.as_array())
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// Documents the inbound quota on every `/v1` operation a client calls with its API key (the
/// middleware is not a handler, so its answers are described here, once): `RateLimit` headers
/// on each answer but 401, the 429, and on the transaction routes the 503s of the outbound lane.
struct RateLimitDocs;

impl Modify for RateLimitDocs {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let header = |kind: Type, description: &str| -> RefOr<Header> {
            RefOr::T(
                HeaderBuilder::new()
                    .schema(Some(Object::with_type(kind)))
                    .description(Some(description))
                    .build(),
            )
        };
        let header_ref = |name: &str| RefOr::Ref(Ref::new(format!("#/components/headers/{name}")));
        let response_ref =
            |name: &str| RefOr::Ref(Ref::new(format!("#/components/responses/{name}")));
        let problem = || Content::new(Some(Ref::from_schema_name("Problem")));

        let components = openapi.components.get_or_insert_with(Default::default);
        components.headers.insert(
            "RateLimit-Policy".to_owned(),
            header(
                Type::String,
                "The client's quota policy (draft-ietf-httpapi-ratelimit-headers-09), e.g. `\"default\";q=6000;w=60`: `q` requests per `w` seconds.",
            ),
        );
        components.headers.insert(
            "RateLimit".to_owned(),
            header(
                Type::String,
                "What is left of the client's quota, e.g. `\"default\";r=499;t=3`: `r` requests may be sent now; the whole burst is available again in `t` seconds.",
            ),
        );
        components.headers.insert(
            "Retry-After".to_owned(),
            header(Type::Integer, "Seconds to wait before sending again."),
        );
        let mut too_many = ResponseBuilder::new()
            .description("The client is over its quota: wait `Retry-After` seconds.")
            .content("application/problem+json", problem())
            .build();
        let mut unavailable = ResponseBuilder::new()
            .description("The provider is unreachable (`upstream_unavailable`), rate limiting the gateway (`upstream_rate_limited`), over the gateway's outbound quota for it (`provider_busy`), or failing so that its circuit breaker is open (`circuit_open`); see Retry-After.")
            .content("application/problem+json", problem())
            .build();
        for response in [&mut too_many, &mut unavailable] {
            for name in ["Retry-After", "RateLimit-Policy", "RateLimit"] {
                response.headers.insert(name.to_owned(), header_ref(name));
            }
        }
        components
            .responses
            .insert("TooManyRequests".to_owned(), RefOr::T(too_many));
        components
            .responses
            .insert("ProviderUnavailable".to_owned(), RefOr::T(unavailable));

        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            // Only what a client calls with its API key is charged (not vendors' webhooks).
            let charged = operations
                .into_iter()
                .flatten()
                .filter(|op| op.security.as_ref().is_some_and(|s| !s.is_empty()));
            for operation in charged {
                let reads_providers = operation
                    .tags
                    .as_ref()
                    .is_some_and(|tags| tags.iter().any(|t| t == "transactions"));
                let responses = &mut operation.responses.responses;
                for (status, response) in responses.iter_mut() {
                    if let (false, RefOr::T(response)) = (status == "401", response) {
                        for name in ["RateLimit-Policy", "RateLimit"] {
                            response
                                .headers
                                .entry(name.to_owned())
                                .or_insert_with(|| header_ref(name));
                        }
                    }
                }
                if reads_providers {
                    responses
                        .entry("503".to_owned())
                        .or_insert_with(|| response_ref("ProviderUnavailable"));
                }
                responses
                    .entry("429".to_owned())
                    .or_insert_with(|| response_ref("TooManyRequests"));
            }
        }
    }
}

/// A provider's outbound lane: what the gateway lets through to it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "requests_per_minute": 60,
    "burst": 6,
    "max_concurrent_requests": 8,
    "in_flight": 1,
    "paused_for_ms": null,
    "sharing": "fair_per_client",
    "your_weight": 1,
    "waiting": 0,
    "waiting_clients": 0
}))]
pub struct OutboundInfo {
    /// Upstream requests allowed in any 60 seconds (`null`: no quota configured).
    requests_per_minute: Option<u32>,
    /// How many of those may go out at once.
    burst: Option<u32>,
    /// Upstream requests in flight at once, at most.
    max_concurrent_requests: u32,
    /// Upstream requests in flight now.
    in_flight: u32,
    /// After the provider answered 429: milliseconds until the gateway calls it again.
    paused_for_ms: Option<u64>,
    /// How waiting callers share the provider: `fair_per_client` (each client with callers
    /// waiting is admitted in turn, in proportion to its weight, so one client's flood cannot
    /// starve the others).
    sharing: &'static str,
    /// The calling client's weight in that line (`clients.NAME.fair_share_weight`): admitted
    /// this many times for a weight-1 client's once while both wait.
    your_weight: u32,
    /// Callers waiting in line now for a slot and a quota cell (this replica).
    waiting: u32,
    /// The clients those callers belong to.
    waiting_clients: u32,
}

/// A provider's circuit breaker.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"state": "closed", "consecutive_failures": 0, "probe_in_ms": null}))]
pub struct CircuitInfo {
    /// `closed`: calls go through; `open`: calls fail fast (503 `circuit_open`); `half_open`:
    /// the next call is a probe whose success closes the breaker.
    state: &'static str,
    /// Failures in a row (while open: the run that opened it).
    consecutive_failures: u32,
    /// While open: milliseconds until a probe is let through.
    probe_in_ms: Option<u64>,
}

impl From<LaneStatus> for OutboundInfo {
    fn from(status: LaneStatus) -> Self {
        OutboundInfo {
            requests_per_minute: status.quota.map(|q| q.requests_per_minute.get()),
            burst: status.quota.map(|q| q.burst.get()),
            max_concurrent_requests: status.max_concurrent_requests,
            in_flight: status.in_flight,
            paused_for_ms: status.paused_for.map(|d| d.as_millis() as u64),
            sharing: "fair_per_client",
            your_weight: 1,
            waiting: status.waiting_for_quota,
            waiting_clients: status.waiting_clients,
        }
    }
}

impl From<LaneStatus> for CircuitInfo {
    fn from(status: LaneStatus) -> Self {
        let circuit = status.circuit;
        CircuitInfo {
            state: circuit.state.as_str(),
            consecutive_failures: circuit.consecutive_failures,
            probe_in_ms: circuit.probe_in.map(|d| d.as_millis() as u64),
        }
    }
}

/// A configured provider instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderInfo {
    /// Instance name (use it as `?provider=`).
    name: String,
    /// Provider kind (`okra`, `mono`).
    kind: &'static str,
    /// Whether requests naming no provider go here.
    default: bool,
    /// What it can do natively.
    #[schema(value_type = Object)]
    capabilities: serde_json::Value,
    /// Its outbound quota and concurrency, and any pause it asked for.
    outbound: OutboundInfo,
    /// Its circuit breaker.
    circuit: CircuitInfo,
}

/// The configured providers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProvidersBody {
    /// Every configured instance.
    data: Vec<ProviderInfo>,
}

/// Lists the configured providers the client may use, their kinds and capabilities, which one is
/// the default, and how the gateway treats each: its outbound quota, and its circuit breaker's
/// state.
#[utoipa::path(
    get,
    path = "/v1/providers",
    tag = "providers",
    responses(
        (status = 200, description = "The configured providers.", body = ProvidersBody),
        (status = 401, description = "Missing or unknown API key, or one past its last day (`key_expired`).", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["providers:read"]))
)]
pub async fn list_providers(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    // A client sees only the instances its configuration lets it use.
    let client = req.extensions().get::<Arc<Client>>().cloned();
    let data = state
        .registry
        .iter()
        .filter(|entry| {
            client
                .as_ref()
                .is_some_and(|c| c.policy.may_use(&entry.name))
        })
        .map(|entry| {
            let lane = entry.lane.status();
            ProviderInfo {
                name: entry.name.to_string(),
                kind: entry.provider.kind(),
                default: &*entry.name == state.registry.default_name(),
                capabilities: serde_json::to_value(entry.provider.capabilities())
                    .unwrap_or(serde_json::Value::Null),
                outbound: OutboundInfo {
                    your_weight: client.as_ref().map_or(1, |c| c.fair_share_weight),
                    ..lane.into()
                },
                circuit: lane.into(),
            }
        })
        .collect();
    HttpResponse::Ok().json(ProvidersBody { data })
}

/// The `/v1` routes that need an API key: each entry of [`policy::ROUTES`] with its handler.
///
/// Each path is one resource, so a wrong method on a known path is a 405 (not a 404).
pub fn v1_routes(cfg: &mut web::ServiceConfig) {
    guarded(cfg, &policy::LIST_ACCOUNT, transactions::list_account);
    guarded(cfg, &policy::LIST_CUSTOMER, transactions::list_customer);
    guarded(cfg, &policy::LIST_NUBAN, transactions::list_nuban);
    guarded(cfg, &policy::LIST_ALL, transactions::list_all);
    guarded(cfg, &policy::GET_TRANSACTION, transactions::get_transaction);
    guarded(cfg, &policy::SYNC_ACCOUNT, sync::sync_account);
    guarded(cfg, &policy::LIST_PROVIDERS, list_providers);
    guarded(cfg, &policy::START_REFRESH, refresh::start_refresh);
    guarded(cfg, &policy::GET_JOB, refresh::get_job);
}

/// Registers `route` (inside the `/v1` scope) with `handler`, behind `middleware::authorize`
/// for that route: the only way a `/v1` route is added, so none escapes its scope check.
fn guarded<F, Args>(cfg: &mut web::ServiceConfig, route: &'static Route, handler: F)
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    let path = route.pattern.strip_prefix("/v1").unwrap_or(route.pattern);
    cfg.service(
        web::resource(path)
            .wrap(from_fn(move |req: ServiceRequest, next: Next<BoxBody>| {
                authorize(route, req, next)
            }))
            .route(web::method(route.method.clone()).to(handler)),
    );
}

/// The routes vendors call: mounted before (outside) the API-key-protected `/v1` scope, they
/// authenticate each request by its job's token instead.
pub fn webhook_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1/webhooks")
            .service(web::resource("/{provider}").route(web::post().to(refresh::receive_delivery))),
    );
}

/// The OpenAPI document as pretty JSON, exactly as checked in at `openapi/openapi.json`.
pub fn openapi_pretty() -> String {
    serde_json::to_string_pretty(&document()).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// [`ApiDoc`] as JSON, finished ([`doc::finish`]): the document that is committed and served.
pub fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    doc::finish(&mut doc);
    doc
}

/// The document served at runtime: the generated one with the examples replaced by real values
/// (e.g. the embedded sandbox's account ids, so "Try it out" works as is), and each operation's
/// `provider` limited to the configured instances that can serve it (`instances`).
///
/// An example's key is a parameter's name, or `"PATH NAME"` for that path's parameter only.
/// `provider`'s example is the `default` instance; where the default cannot serve an operation,
/// `provider` is required there. `note`, when given, is put at the top of the description (how to
/// try the embedded sandbox). The committed document's `servers` entry (a local default) is
/// dropped: Swagger UI and clients of the served document call the gateway that served it.
pub fn openapi_with_examples(
    examples: &[(&str, String)],
    note: Option<&str>,
    default: &str,
    instances: &[(String, provider::Capabilities)],
) -> serde_json::Value {
    let mut doc = document();
    if let Some(doc) = doc.as_object_mut() {
        doc.remove("servers");
    }
    if let (Some(note), Some(description)) = (note, doc.pointer_mut("/info/description")) {
        let text = description.as_str().unwrap_or_default();
        *description = serde_json::Value::String(format!("{note}\n\n{text}"));
    }
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return doc;
    };
    for (path, item) in paths.iter_mut() {
        let Some(ops) = item.as_object_mut() else {
            continue;
        };
        let serving: Vec<&str> = instances
            .iter()
            .filter(|(_, capabilities)| can_serve(path, capabilities))
            .map(|(name, _)| name.as_str())
            .collect();
        for op in ops.values_mut() {
            let Some(params) = op.get_mut("parameters").and_then(|p| p.as_array_mut()) else {
                continue;
            };
            for param in params {
                let name = param
                    .get("name")
                    .and_then(|n| n.as_str())
                    .unwrap_or_default()
                    .to_owned();
                let scoped = format!("{path} {name}");
                let example = examples
                    .iter()
                    .find(|(key, _)| *key == scoped)
                    .or_else(|| examples.iter().find(|(key, _)| *key == name));
                if let Some((_, example)) = example.filter(|(_, value)| !value.is_empty()) {
                    param["example"] = serde_json::Value::String(example.clone());
                }
                let in_query = param.get("in").and_then(|i| i.as_str()) == Some("query");
                if name == "provider" && in_query && !serving.is_empty() {
                    let example = if serving.contains(&default) {
                        default
                    } else {
                        param["required"] = serde_json::Value::Bool(true);
                        serving[0]
                    };
                    param["schema"]["enum"] = serde_json::json!(serving);
                    param["example"] = serde_json::Value::String(example.to_owned());
                }
            }
        }
    }
    doc
}

/// Whether a provider with `capabilities` can serve the operations of `path`.
fn can_serve(path: &str, capabilities: &provider::Capabilities) -> bool {
    use provider::ScopeKind;
    let scope = match path {
        "/v1/accounts/{account_id}/transactions"
        | "/v1/accounts/{account_id}/transactions/sync" => ScopeKind::Account,
        "/v1/customers/{customer_id}/transactions" => ScopeKind::Customer,
        "/v1/nubans/{nuban}/transactions" => ScopeKind::Nuban,
        "/v1/transactions" => ScopeKind::All,
        "/v1/accounts/{account_id}/transactions/refresh" => {
            return capabilities.refresh != provider::RefreshStyle::None;
        }
        _ => return true,
    };
    capabilities.supports(scope)
}
