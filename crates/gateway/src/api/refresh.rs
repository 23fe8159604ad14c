//! The refresh routes: start a refresh job, read a job, and the providers' webhook deliveries.
//!
//! The job logic lives in [`crate::jobs`]; these handlers parse, authenticate and answer. The
//! webhook route is mounted outside the API-key middleware (vendors hold no client key): it
//! authenticates by the per-job token of the callback URL before the body is looked at (a
//! refused body is read and dropped chunk by chunk, never buffered or parsed). Reading a body,
//! accepted or refused, is bounded by `jobs.delivery_read_timeout_ms`: a slow upload is
//! answered 408 and its connection closed.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::params;
use crate::error::{ApiError, KeyProblem, Problem};
use crate::jobs::{self, JobView};
use crate::state::{AppState, Client};

type Result<T> = std::result::Result<T, ApiError>;

/// The header that makes a retried POST return the job it created the first time.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// Query parameters of `POST .../refresh`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct RefreshParams {
    /// Provider instance to ask (see `GET /v1/providers`); the configured default when absent.
    #[param(example = "okra")]
    provider: Option<String>,
}

/// Query parameters of a webhook delivery (they come from the callback URL the gateway gave).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct DeliveryParams {
    /// The job the delivery completes.
    job: String,
    /// The job's secret token.
    token: String,
}

fn client_of(req: &HttpRequest) -> Result<Arc<Client>> {
    req.extensions()
        .get::<Arc<Client>>()
        .cloned()
        .ok_or(ApiError::Unauthorized(KeyProblem::Missing))
}

/// The `Idempotency-Key` header: 1-255 visible ASCII characters, given at most once.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>> {
    let mut values = req.headers().get_all(IDEMPOTENCY_KEY);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let invalid = |detail: &str| ApiError::invalid(IDEMPOTENCY_KEY, detail);
    if values.next().is_some() {
        return Err(invalid("Idempotency-Key is given more than once"));
    }
    let ok =
        (1..=255).contains(&value.len()) && value.as_bytes().iter().all(|b| b.is_ascii_graphic());
    match value.to_str() {
        Ok(text) if ok => Ok(Some(text.to_owned())),
        _ => Err(invalid(
            "Idempotency-Key must be 1-255 visible ASCII characters (e.g. a UUID)",
        )),
    }
}

fn job_response(status: actix_web::http::StatusCode, job: &JobView) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::LOCATION, job.status_url.clone()))
        .json(job)
}

/// Asks the provider for fresh transactions on an account; answers at once with a job to poll.
///
/// A refresh already running for the account is joined (the provider is asked once): the same
/// client gets its job for it back, another client a job of its own following the same work.
/// With an `Idempotency-Key`, a retried POST returns the job the key first created (even when
/// finished), and the key cannot be reused for another account or provider (422). When the job
/// succeeds, the account's cached snapshots are gone: the next read fetches fresh data. A client
/// configured with a `webhook_url` also gets a signed notification when the job finishes.
#[utoipa::path(
    post,
    path = "/v1/accounts/{account_id}/transactions/refresh",
    tag = "refresh",
    params(
        ("account_id" = String, Path, description = "The provider's account id.", example = "ACCOUNT_ID"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried POST return the same job: 1-255 visible ASCII characters, unique per request (e.g. a UUID such as `7d9f3c1e-6a2b-4e8f-9c0d-1b2a3c4d5e6f`; a new one for each new refresh). Kept as long as the job (`jobs.ttl_secs` after it finished). Optional: without it, each POST starts a refresh or joins the account's running one."),
        RefreshParams
    ),
    responses(
        (status = 202, description = "The refresh job (new, joined or replayed); poll `status_url`.", body = JobView,
            headers(("location" = String, description = "The job's URL (`status_url`)."))),
        (status = 400, description = "A parameter or the Idempotency-Key is invalid; `parameter` names it.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key, or one past its last day (`key_expired`).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The Idempotency-Key was used for another account or provider.", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "/problems/idempotency_key_reused", "title": "Idempotency key reused for another request", "status": 422, "detail": "this Idempotency-Key was used for a refresh of account A1 at provider okra; use a new key for another request", "code": "idempotency_key_reused", "parameter": "Idempotency-Key", "request_id": "3f0c2a9e8b7d4c1a"})),
        (status = 501, description = "The provider cannot refresh on demand.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "With several replicas: the shared state (Redis) is unreachable, so no job can be recorded or read; retry after `Retry-After` (`coordination_unavailable`).", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "/problems/coordination_unavailable", "title": "Shared state is unavailable", "status": 503, "detail": "shared state is unavailable right now (redis: no answer within 250 ms); retry shortly", "code": "coordination_unavailable", "retry_after": 1, "request_id": "3f0c2a9e8b7d4c1a"})),
    ),
    security(("api_key" = ["transactions:refresh"]))
)]
pub async fn start_refresh(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let account = params::parse_id("account_id", &path)?;
    let pairs = params::parse_pairs(req.query_string(), &["provider"])?;
    let provider = pairs.first().map(|(_, v)| v.as_ref());
    let client = client_of(&req)?;
    let key = idempotency_key(&req)?;
    let entry = state.registry.resolve(provider)?;
    if entry.provider.capabilities().refresh == provider::RefreshStyle::None {
        return Err(ApiError::Unsupported {
            provider: entry.name.to_string(),
            capability: "refresh".into(),
        });
    }
    let client_name: Arc<str> = client.name.clone();
    let started = state
        .jobs
        .begin(&client_name, &entry.name, &account, key.as_deref())
        .await?;
    if let Some(run) = started.run {
        tracing::info!(job = %started.job.id, provider = %run.provider(), "refresh started");
        jobs::spawn_run(state.clone(), run);
    }
    Ok(job_response(
        actix_web::http::StatusCode::ACCEPTED,
        &started.job,
    ))
}

/// Reads a refresh job: its status, timestamps, and on failure the problem that ended it.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    tag = "refresh",
    params(("id" = String, Path, description = "The job's id (`job_...`): the `id` of a refresh's answer (start one with the refresh operation above, then paste its `id` here).")),
    responses(
        (status = 200, description = "The job.", body = JobView),
        (status = 400, description = "The id is not a job id (1-128 letters, digits, -, _, . and :).", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key, or one past its last day (`key_expired`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job for this client (another client's jobs are not visible; finished jobs are kept `jobs.ttl_secs`).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "With several replicas: the shared state (Redis) is unreachable, so no job can be recorded or read; retry after `Retry-After` (`coordination_unavailable`).", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "/problems/coordination_unavailable", "title": "Shared state is unavailable", "status": 503, "detail": "shared state is unavailable right now (redis: no answer within 250 ms); retry shortly", "code": "coordination_unavailable", "retry_after": 1, "request_id": "3f0c2a9e8b7d4c1a"})),
    ),
    security(("api_key" = ["jobs:read"]))
)]
pub async fn get_job(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let id = params::parse_id("id", &path)?;
    let client = client_of(&req)?;
    let job = state
        .jobs
        .find(&client.name, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            detail: format!("no job {id}"),
            provider: None,
        })?;
    Ok(job_response(actix_web::http::StatusCode::OK, &job))
}

/// The `job` and `token` of a callback URL's query, each exactly once.
fn job_and_token(query: &str) -> Option<(String, String)> {
    let mut job = None;
    let mut token = None;
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match &*key {
            "job" => &mut job,
            "token" => &mut token,
            _ => continue,
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(value.into_owned());
    }
    Some((job?, token?))
}

/// Reads a refused request's body to its end, dropping each chunk as it comes (nothing is kept),
/// so the connection stays usable; past `limit` bytes the connection is closed instead, and
/// past `read_end` the answer is a 408 (the connection is closed too).
async fn refuse(
    mut body: web::Payload,
    limit: usize,
    read_end: tokio::time::Instant,
    error: ApiError,
) -> ApiError {
    let drain = async {
        let mut seen = 0usize;
        while let Some(Ok(chunk)) = body.next().await {
            seen = seen.saturating_add(chunk.len());
            if seen > limit {
                break;
            }
        }
    };
    match tokio::time::timeout_at(read_end, drain).await {
        Ok(()) => error,
        Err(_) => slow_upload(read_end.elapsed()),
    }
}

/// The answer to a body that did not arrive in time. The unread rest of the body makes actix
/// close the connection after this answer.
fn slow_upload(allowed: std::time::Duration) -> ApiError {
    ApiError::Http {
        status: actix_web::http::StatusCode::REQUEST_TIMEOUT,
        detail: format!(
            "the delivery's body did not arrive within {} ms",
            allowed.as_millis()
        ),
    }
}

/// Receives a provider's refresh result (the vendor calls the callback URL the gateway gave it).
///
/// Not for API clients: authenticated by the job's token in the query (compared in constant
/// time), checked before the body is read. A delivery that cannot be read, or that names another
/// account than the job's, is refused and changes nothing; the job keeps waiting until its
/// deadline.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{provider}",
    tag = "refresh",
    params(
        ("provider" = String, Path, description = "The provider instance the refresh was sent to.", example = "mono"),
        DeliveryParams
    ),
    request_body(content = Object, description = "The provider's delivery, in its own format.", content_type = "application/json"),
    responses(
        (status = 204, description = "Accepted: the job succeeded and the account's snapshots were dropped."),
        (status = 400, description = "The body is not a delivery the provider's adapter can read.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong token.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job at this provider.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job is not waiting for a delivery (already finished).", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body did not arrive within `jobs.delivery_read_timeout_ms`; the connection is closed.", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body exceeds `jobs.max_delivery_bytes`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The delivery is for another account than the job's.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn receive_delivery(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let provider = path.into_inner();
    let limit = state.jobs.max_delivery_bytes();
    // Every read of the body, accepted or refused, ends by this instant.
    let read_end = tokio::time::Instant::now() + state.jobs.delivery_read_timeout();
    let Some((job, token)) = job_and_token(req.query_string()) else {
        return Err(refuse(body, limit, read_end, ApiError::WebhookUnauthorized).await);
    };
    let run = match state.jobs.authorize(&provider, &job, &token).await {
        Ok(run) => run,
        Err(error) => return Err(refuse(body, limit, read_end, error).await),
    };
    let Ok(read) = tokio::time::timeout_at(read_end, body.to_bytes_limited(limit)).await else {
        return Err(slow_upload(state.jobs.delivery_read_timeout()));
    };
    let body = match read {
        Ok(Ok(body)) => body,
        Ok(Err(error)) => {
            return Err(ApiError::InvalidDelivery(format!(
                "unreadable body: {error}"
            )));
        }
        Err(_) => {
            return Err(ApiError::Http {
                status: actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                detail: format!("a delivery may be at most {limit} bytes"),
            });
        }
    };
    let entry = state
        .registry
        .get(&provider)
        .ok_or_else(|| ApiError::NotFound {
            detail: format!("no provider {provider}"),
            provider: None,
        })?;
    let delivery = entry
        .provider
        .parse_delivery(run.account_id(), &body)
        .map_err(|e| ApiError::InvalidDelivery(e.to_string()))?;
    if let Some(named) = &delivery.account_id
        && named != run.account_id()
    {
        return Err(ApiError::DeliveryMismatch(format!(
            "the delivery is for account {named}, the job refreshes another account"
        )));
    }
    let delivered = u64::try_from(delivery.transactions.len()).unwrap_or(u64::MAX);
    if !state.jobs.complete(&state, &run, Some(delivered)).await? {
        return Err(ApiError::JobNotAwaiting(format!(
            "refresh job {job} has already finished"
        )));
    }
    tracing::info!(job = %job, provider = %provider, delivered, "refresh delivery accepted");
    Ok(HttpResponse::NoContent().finish())
}
