//! Request-wide concerns: request ids, tracing spans, problem bodies, API-key auth.
//!
//! `request_context` wraps the whole app: it gives each request an id (echoing a caller's
//! `x-request-id` when it is sane), runs the request inside a tracing span, and turns every
//! error answer — from a handler, an extractor or actix itself (404,
//! 405) — into one problem+json body carrying the request id. `authenticate` wraps `/v1`.
//!
//! It also writes the access log (one INFO line per request, target `gateway::access`) and
//! records the request in the `gateway_http_request_duration_seconds` histogram. Both name the
//! route by its template (`/v1/accounts/{account_id}/transactions`), never by the path's ids,
//! and the client by its configured name; the query string (which may carry a webhook token)
//! is never logged.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, web};
use rand::Rng;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::error::{ApiError, PROBLEM_JSON};
use crate::readiness::{Readiness, RequestGuard};
use crate::state::{AppState, Client};
use crate::telemetry::{ACCESS_TARGET, RequestFacts};

/// Marks an error answer that carries its own body (e.g. `/readyz`'s 503), which
/// `request_context` then leaves as it is instead of rendering a problem.
#[derive(Debug, Clone, Copy)]
pub struct OwnBody;

/// Whether `request_context` writes access-log lines (`log.access_log`), as app data.
#[derive(Debug, Clone, Copy)]
pub struct AccessLog(pub bool);

/// The header carrying the request id, both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn caller_request_id(req: &ServiceRequest) -> Option<Arc<str>> {
    let value = req.headers().get(&REQUEST_ID)?.to_str().ok()?;
    let sane = (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    sane.then(|| Arc::from(value))
}

fn new_request_id() -> Arc<str> {
    let bytes: [u8; 12] = rand::rng().random();
    Arc::from(hex::encode(bytes))
}

/// Request id, tracing span and problem rendering for every request.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let request_id = caller_request_id(&req).unwrap_or_else(new_request_id);
    // No clone of the request may be held across `next.call`: routing needs it unshared.
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %req.path(),
    );
    let started = Instant::now();
    let access_log = req.app_data::<AccessLog>().is_none_or(|a| a.0);
    // In flight until the body is sent (a shutdown waits for it).
    let in_flight = req
        .app_data::<web::Data<Readiness>>()
        .map(|r| r.request_started());
    let facts = Arc::new(RequestFacts::default());
    // Handlers turn their errors into responses, so an `Err` here is actix's own failure; it is
    // rendered by actix without our body.
    let mut res = crate::telemetry::with_request_facts(
        facts.clone(),
        next.call(req).instrument(span.clone()),
    )
    .await?
    .map_into_boxed_body();

    let status = res.status();
    if status.is_client_error() || status.is_server_error() {
        let rendered = match res
            .response()
            .error()
            .and_then(|e| e.as_error::<ApiError>())
        {
            Some(api_error) => {
                log_failure(&span, api_error, status.as_u16());
                Some(api_error.to_response(Some(&request_id)))
            }
            None if !is_problem(&res) && !res.response().extensions().contains::<OwnBody>() => {
                let err = generic_error(&res);
                log_failure(&span, &err, status.as_u16());
                Some(err.to_response(Some(&request_id)))
            }
            None => None,
        };
        if let Some(response) = rendered {
            // Keep what inner layers added (`RateLimit`, ...); the problem sets its own body.
            let kept: Vec<(HeaderName, HeaderValue)> = res
                .headers()
                .iter()
                .filter(|(name, _)| {
                    !response.headers().contains_key(*name)
                        && !matches!(
                            *name,
                            &header::CONTENT_TYPE
                                | &header::CONTENT_LENGTH
                                | &header::CONTENT_ENCODING
                                | &header::TRANSFER_ENCODING
                        )
                })
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect();
            res = res.into_response(response);
            for (name, value) in kept {
                res.headers_mut().append(name, value);
            }
        }
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    let elapsed = started.elapsed();
    let request = res.request();
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let client = request.extensions().get::<Arc<Client>>().cloned();
    let client = client.as_deref().map_or("-", |c| c.name.as_str());
    if access_log {
        let bytes = match res.response().body().size() {
            actix_web::body::BodySize::Sized(n) => n,
            _ => 0,
        };
        let x_cache = res
            .headers()
            .get("x-cache")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info!(
            target: ACCESS_TARGET,
            request_id = %request_id,
            method = %request.method(),
            route = route.as_str(),
            path = %request.path(),
            status = status.as_u16(),
            duration_ms = elapsed.as_micros() as f64 / 1000.0,
            bytes,
            client,
            provider = facts.provider().unwrap_or("-"),
            x_cache,
            upstream_calls = facts.upstream_calls(),
            "request"
        );
    }
    crate::metrics::http_request(
        route,
        request.method().as_str(),
        status.as_u16(),
        client,
        elapsed,
    );
    Ok(match in_flight {
        Some(guard) => res.map_body(|_, body| {
            BoxBody::new(Tracked {
                body,
                guard: Some(guard),
            })
        }),
        None => res,
    })
}

/// A response body that counts its request as in flight until it has been sent.
struct Tracked {
    body: BoxBody,
    guard: Option<RequestGuard>,
}

impl MessageBody for Tracked {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> actix_web::body::BodySize {
        self.body.size()
    }

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<actix_web::web::Bytes, Self::Error>>> {
        let this = self.get_mut();
        let next = std::pin::Pin::new(&mut this.body).poll_next(cx);
        if let std::task::Poll::Ready(None) = next {
            this.guard = None;
        }
        next
    }
}

fn is_problem(res: &ServiceResponse<BoxBody>) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()))
}

/// An error answer that did not come from an `ApiError` (actix's own 404/405, extractor errors).
fn generic_error(res: &ServiceResponse<BoxBody>) -> ApiError {
    let status = res.status();
    match status.as_u16() {
        404 => ApiError::RouteNotFound(res.request().path().to_owned()),
        405 => ApiError::MethodNotAllowed(res.request().method().to_string()),
        _ => ApiError::Http {
            status,
            detail: res
                .response()
                .error()
                .map(|e| e.to_string())
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned()),
        },
    }
}

fn log_failure(span: &tracing::Span, err: &ApiError, status: u16) {
    if status >= 500 {
        // The full cause (provider, vendor message) goes to the log, never a secret.
        tracing::warn!(parent: span, status, error = %err, "request failed");
    } else {
        tracing::debug!(parent: span, status, error = %err, "request refused");
    }
}

/// Resolves `Authorization: Bearer <key>` to a configured client, or answers 401.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let client = req
        .app_data::<web::Data<AppState>>()
        .and_then(|state| client_for(&req, state));
    match client {
        Some(client) => {
            req.extensions_mut().insert(client);
            Ok(next.call(req).await?.map_into_boxed_body())
        }
        None => Ok(req.error_response(ApiError::Unauthorized)),
    }
}

fn client_for(req: &ServiceRequest, state: &AppState) -> Option<Arc<Client>> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let key = key.trim();
    if key.is_empty() || key.len() > 256 {
        return None;
    }
    let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    state.clients.get(&hash).cloned()
}
