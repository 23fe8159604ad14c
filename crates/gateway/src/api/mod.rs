//! The HTTP API: routes, their OpenAPI description, and the Swagger UI.
//!
//! Each route is documented where it is written (`#[utoipa::path]` on the handler); [`ApiDoc`]
//! gathers them. `openapi/openapi.json` is [`ApiDoc`] rendered and checked in; a test fails when
//! the two differ.

pub mod params;
pub mod refresh;
pub mod transactions;
pub mod views;

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::error::Problem;
use crate::state::AppState;

/// The gateway's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Bank transactions gateway",
        description = "One canonical, paginated API over several bank-data providers (Okra, a Mono-style provider).\n\nAmounts are exact: integer minor units (`minor`, kobo for NGN) plus a decimal string (`value`). Lists are newest first and served from consistent snapshots; walk them with `page` or with the opaque `next_cursor`.\n\nAuthenticate with `Authorization: Bearer <API key>` (the **Authorize** button). Errors are RFC 9457 `application/problem+json` with a stable `code`, the `request_id`, and for validation errors the `parameter` at fault.",
        version = "1.0.0"
    ),
    paths(
        transactions::list_account,
        transactions::list_customer,
        transactions::list_nuban,
        transactions::list_all,
        transactions::get_transaction,
        refresh::start_refresh,
        refresh::get_job,
        refresh::receive_delivery,
        list_providers,
        healthz,
    ),
    components(schemas(Problem, ProvidersBody, ProviderInfo, Health, crate::jobs::JobView, crate::jobs::JobStatus)),
    modifiers(&BearerAuth),
    tags(
        (name = "transactions", description = "Canonical transactions from any configured provider"),
        (name = "refresh", description = "Fresh data on demand: refresh jobs, and the providers' webhook deliveries"),
        (name = "providers", description = "What is configured"),
        (name = "operations", description = "Health")
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
}

/// The configured providers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProvidersBody {
    /// Every configured instance.
    data: Vec<ProviderInfo>,
}

/// Lists the configured providers, their kinds and capabilities, and which one is the default.
#[utoipa::path(
    get,
    path = "/v1/providers",
    tag = "providers",
    responses(
        (status = 200, description = "The configured providers.", body = ProvidersBody),
        (status = 401, description = "Missing or unknown API key.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_providers(state: web::Data<AppState>) -> HttpResponse {
    let data = state
        .registry
        .iter()
        .map(|entry| ProviderInfo {
            name: entry.name.to_string(),
            kind: entry.provider.kind(),
            default: &*entry.name == state.registry.default_name(),
            capabilities: serde_json::to_value(entry.provider.capabilities())
                .unwrap_or(serde_json::Value::Null),
        })
        .collect();
    HttpResponse::Ok().json(ProvidersBody { data })
}

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` while the process serves requests.
    status: &'static str,
}

/// Tells that the gateway is up (no authentication).
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The gateway is up.", body = Health))
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// The `/v1` routes that need an API key.
///
/// Each path is one resource, so a wrong method on a known path is a 405 (not a 404).
pub fn v1_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/accounts/{account_id}/transactions")
            .route(web::get().to(transactions::list_account)),
    )
    .service(
        web::resource("/customers/{customer_id}/transactions")
            .route(web::get().to(transactions::list_customer)),
    )
    .service(
        web::resource("/nubans/{nuban}/transactions")
            .route(web::get().to(transactions::list_nuban)),
    )
    .service(web::resource("/transactions").route(web::get().to(transactions::list_all)))
    .service(
        web::resource("/transactions/{id}").route(web::get().to(transactions::get_transaction)),
    )
    .service(web::resource("/providers").route(web::get().to(list_providers)))
    .service(
        web::resource("/accounts/{account_id}/transactions/refresh")
            .route(web::post().to(refresh::start_refresh)),
    )
    .service(web::resource("/jobs/{id}").route(web::get().to(refresh::get_job)));
}

/// The routes vendors call: mounted before (outside) the API-key-protected `/v1` scope, they
/// authenticate each request by its job's token instead.
pub fn webhook_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/webhooks/{provider}").route(web::post().to(refresh::receive_delivery)),
    );
}

/// The OpenAPI document as pretty JSON, exactly as checked in at `openapi/openapi.json`.
pub fn openapi_pretty() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// The document served at runtime: the generated one with the examples replaced by real values
/// (e.g. the embedded sandbox's account ids, so "Try it out" works as is).
pub fn openapi_with_examples(examples: &[(&str, String)]) -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    if let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) {
        for item in paths.values_mut() {
            let Some(ops) = item.as_object_mut() else {
                continue;
            };
            for op in ops.values_mut() {
                let Some(params) = op.get_mut("parameters").and_then(|p| p.as_array_mut()) else {
                    continue;
                };
                for param in params {
                    let name = param
                        .get("name")
                        .and_then(|n| n.as_str())
                        .map(str::to_owned);
                    if let Some((_, example)) =
                        examples.iter().find(|(n, _)| Some(*n) == name.as_deref())
                    {
                        param["example"] = serde_json::Value::String(example.clone());
                    }
                }
            }
        }
    }
    doc
}
