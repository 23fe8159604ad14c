//! Request-wide concerns: request ids, tracing spans, problem bodies, API-key auth, scopes and
//! the audit trail.
//!
//! `request_context` wraps the whole app: it gives each request an id (echoing a caller's
//! `x-request-id` when it is sane), runs the request inside a tracing span, and turns every
//! error answer — from a handler, an extractor or actix itself (404,
//! 405) — into one problem+json body carrying the request id.
//!
//! `/v1` runs two layers, outermost first: `authenticate` (API key -> client; an unknown key
//! or one past its `not_after` date is a 401; then the client's quota, charging `inbound`), then,
//! around each route, `authorize`: the route's operation and provider
//! ([`crate::policy::ROUTES`]) checked against the client's [`crate::policy::Policy`] — a
//! refusal is a 403 that has cost quota and never reaches a handler or a provider — and one
//! audit record per call that touches bank data or was refused. Handlers check none of this.
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
use tracing::Instrument;

use crate::audit::{Outcome, Record};
use crate::error::{ApiError, KeyProblem, PROBLEM_JSON};
use crate::policy::{self, ProviderSource, Route, Subject};
use crate::readiness::{Readiness, RequestGuard};
use crate::state::{AppState, Client, KeyEntry};
use crate::telemetry::{RequestFacts, Spanned};

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

/// 24 lowercase hex digits of 12 random bytes (as `hex::encode` writes them), built on the
/// stack: one allocation, the id's own.
fn new_request_id() -> Arc<str> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes: [u8; 12] = rand::rng().random();
    let mut text = [0u8; 24];
    for (pair, byte) in text.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&[HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0x0f)]]);
    }
    Arc::from(std::str::from_utf8(&text).unwrap_or_default())
}

/// Request id, tracing span and problem rendering for every request.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let request_id = caller_request_id(&req).unwrap_or_else(new_request_id);
    let started = Instant::now();
    let access_log = req.app_data::<AccessLog>().is_none_or(|a| a.0);
    // In flight until the body is sent (a shutdown waits for it).
    let in_flight = req
        .app_data::<web::Data<Readiness>>()
        .map(|r| r.request_started());
    let facts = Arc::new(RequestFacts::for_request(request_id.clone()));
    // The request runs in its span (`request{request_id=...}`, so every log line of it carries
    // the id). Under `/v1` the span is made when first needed (see `RequestFacts::span`):
    // `authorize` makes it for every route but the listings, whose cache hits log nothing;
    // elsewhere it is made now.
    if !req.path().starts_with("/v1/") {
        facts.span();
    }
    // No clone of the request may be held across `next.call`: routing needs it unshared.
    // Handlers turn their errors into responses, so an `Err` here is actix's own failure; it is
    // rendered by actix without our body.
    let mut res = crate::telemetry::with_request_facts(
        facts.clone(),
        Spanned::new(next.call(req), facts.clone()),
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
                log_failure(&facts.span(), api_error, status.as_u16());
                Some(api_error.to_response(Some(&request_id)))
            }
            None if !is_problem(&res) && !res.response().extensions().contains::<OwnBody>() => {
                let err = generic_error(&res);
                log_failure(&facts.span(), &err, status.as_u16());
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
    let route: std::borrow::Cow<'static, str> = match facts.route() {
        Some(pattern) => pattern.into(),
        None => request
            .match_pattern()
            .map_or("unmatched".into(), std::borrow::Cow::Owned),
    };
    let client = request.extensions().get::<Arc<Client>>().cloned();
    let client = client.as_deref().map_or("-", |c| &*c.name);
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
        crate::access_log::record(&crate::access_log::Line {
            request_id: &request_id,
            method: request.method().as_str(),
            route: &route,
            path: request.path(),
            status: status.as_u16(),
            elapsed,
            bytes,
            client,
            provider: facts.provider().unwrap_or("-"),
            x_cache,
            upstream_calls: facts.upstream_calls(),
        });
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
    // What the client was not told (a vendor's message, an upstream URL) is logged whatever the
    // status, under the request's id, so the client's quoted id finds it.
    if status >= 500 || err.has_hidden_cause() {
        // The full cause (provider, vendor message) goes to the log, never a secret.
        tracing::warn!(parent: span, status, error = %err, "request failed");
    } else {
        tracing::debug!(parent: span, status, error = %err, "request refused");
    }
}

/// The `/v1` gate, one layer (one boxed future per request, not two): resolves
/// `Authorization: Bearer <key>` to a configured client, or answers 401 (a key past its
/// `not_after` date: `key_expired`, saying nothing else); then charges the client's quota:
/// over quota answers 429. Every answer past authentication carries `RateLimit-Policy` and
/// `RateLimit`; a request that fails authentication spends nothing.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(req.error_response(ApiError::Unauthorized(KeyProblem::Missing)));
    };
    let client = match key_for(&req, &state) {
        Ok(entry) if entry.is_expired_at(unix_now()) => {
            // Once per request, so info (the audit trail has each one; the start-up log warns).
            tracing::info!(parent: &crate::telemetry::request_span(), client = %entry.client.name, "a request used an expired API key");
            let err = ApiError::KeyExpired;
            let route = matched_route(&req);
            let record = draft(&req, &entry.client, route, None).finish(401, Some(&err));
            state.audit.submit(record);
            return Ok(req.error_response(err));
        }
        Ok(entry) => entry.client,
        Err(problem) => return Ok(req.error_response(ApiError::Unauthorized(problem))),
    };
    let verdict = state.inbound.charge(&client.name).await;
    req.extensions_mut().insert(client);
    let Some(verdict) = verdict else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let mut res = match verdict.refused {
        Some(retry_after) => req.error_response(ApiError::RateLimited { retry_after }),
        None => next.call(req).await?.map_into_boxed_body(),
    };
    verdict.apply(res.headers_mut());
    Ok(res)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn key_for(req: &ServiceRequest, state: &AppState) -> Result<KeyEntry, KeyProblem> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(KeyProblem::Missing)?;
    let key = bearer_key(value.as_bytes()).ok_or(KeyProblem::Malformed)?;
    state.clients.find(key).ok_or(KeyProblem::Unknown)
}

/// The key of an `Authorization: Bearer <key>` header value: one token of 1-256 visible ASCII
/// characters after the scheme (any case).
fn bearer_key(value: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, key) = value.trim().split_once(' ')?;
    let key = key.trim();
    let well_formed = scheme.eq_ignore_ascii_case("bearer")
        && (1..=256).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_graphic());
    well_formed.then_some(key)
}

/// The route this request will reach, looked up in the resource map before routing (only on
/// the rare paths that need it before `authorize`, like an expired key's audit record).
fn matched_route(req: &ServiceRequest) -> Option<&'static Route> {
    let pattern = req.match_pattern()?;
    policy::lookup(req.method(), &pattern)
}

/// Checks `route`'s operation and provider against the client's policy (403 when refused),
/// and writes the audit record of every call that touches bank data or is refused.
///
/// `api::v1_routes` puts it around each `/v1` resource, with that resource's entry of
/// [`policy::ROUTES`]: it runs after routing (so it needs no matching of its own) and inside
/// `authenticate` and the quota (so a refused call has been charged).
pub async fn authorize(
    route: &'static Route,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if req.method() != route.method {
        // Not this route's method: actix answers 405, nothing is read.
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    crate::telemetry::note_route(route.pattern);
    let client = req.extensions().get::<Arc<Client>>().cloned();
    let (Some(state), Some(client)) = (req.app_data::<web::Data<AppState>>().cloned(), client)
    else {
        return Ok(req.error_response(ApiError::Unauthorized(KeyProblem::Missing)));
    };
    let mut provider = None;
    let mut verdict = client.policy.authorize(route.operation, None);
    if verdict.is_ok() {
        for_each_provider(&req, route, &state, |name, parameter| {
            if verdict.is_ok() {
                verdict = client
                    .policy
                    .authorize(route.operation, Some((name, parameter)));
            }
            if provider.is_none() {
                provider = Some(
                    state
                        .registry
                        .get(name)
                        .map_or_else(|| Arc::from(name), |entry| entry.name.clone()),
                );
            }
        });
    }
    // Every route but a listing runs in the request's span from here; a listing makes it when
    // it first waits or may log (its cache hit does neither).
    let span = if policy::is_listing(route) {
        tracing::Span::none()
    } else {
        crate::telemetry::request_span()
    };
    match verdict {
        Err(refusal) => {
            tracing::debug!(parent: &crate::telemetry::request_span(), client = %client.name, error = %refusal, "call refused by the client's scopes");
            let record = draft(&req, &client, Some(route), provider).finish(403, Some(&refusal));
            state.audit.submit(record);
            Ok(req.error_response(refusal))
        }
        Ok(()) if route.operation.touches_bank_data() && state.audit.is_enabled() => {
            let draft = draft(&req, &client, Some(route), provider);
            let res = next.call(req).instrument(span).await?.map_into_boxed_body();
            let returned = crate::telemetry::returned();
            let error = res
                .response()
                .error()
                .and_then(|e| e.as_error::<ApiError>());
            let mut record = draft.finish(res.status().as_u16(), error);
            record.records = returned;
            state.audit.submit(record);
            Ok(res)
        }
        Ok(()) => Ok(next.call(req).instrument(span).await?.map_into_boxed_body()),
    }
}

/// Calls `f` with each provider instance the call names and the parameter that named it:
/// every `?provider=` (or the default), or the one a transaction id encodes. Nothing when the
/// route involves no provider, or its id is not a gateway id (the handler answers 400).
fn for_each_provider(
    req: &ServiceRequest,
    route: &Route,
    state: &AppState,
    mut f: impl FnMut(&str, &'static str),
) {
    match route.provider {
        ProviderSource::None => {}
        ProviderSource::Query => {
            let query = req.query_string();
            // No `provider` key can hide in a query without the word or a percent escape.
            if !query.contains("provider") && !query.contains('%') {
                f(state.registry.default_name(), "provider");
                return;
            }
            let mut named = false;
            for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
                if key == "provider" {
                    named = true;
                    f(value.trim(), "provider");
                }
            }
            if !named {
                f(state.registry.default_name(), "provider");
            }
        }
        ProviderSource::TransactionId => {
            // Decoded fully: a valid id has only A-Z a-z 0-9 _ -, so this is the id the
            // handler parses, or no valid id at all.
            let id = req.match_info().get("id").and_then(policy::decode_segment);
            if let Some(id) = id.and_then(|id| id.parse::<provider::TransactionId>().ok()) {
                f(id.provider(), "id");
            }
        }
    }
}

/// An audit record being built: everything known before the handler runs.
struct Draft {
    record: Record,
}

fn draft(
    req: &ServiceRequest,
    client: &Client,
    route: Option<&'static Route>,
    provider: Option<Arc<str>>,
) -> Draft {
    let (scope_kind, scope_id) = match route.map(|r| r.subject) {
        Some(Subject::All) => (Some("all"), None),
        Some(Subject::Param { kind, param }) => (
            Some(kind),
            req.match_info().get(param).and_then(policy::decode_segment),
        ),
        _ => (None, None),
    };
    Draft {
        record: Record {
            time: std::time::SystemTime::now(),
            client: client.name.clone(),
            route,
            provider,
            scope_kind,
            scope_id,
            records: None,
            request_id: crate::telemetry::request_id(),
            outcome: Outcome::Ok,
            status: 0,
            error: None,
        },
    }
}

impl Draft {
    fn finish(mut self, status: u16, error: Option<&ApiError>) -> Record {
        let record = &mut self.record;
        record.time = std::time::SystemTime::now();
        record.status = status;
        record.error = error.map(|e| e.classify().1);
        record.outcome = match error {
            Some(ApiError::KeyExpired) => Outcome::KeyExpired,
            Some(ApiError::InsufficientScope { .. }) => Outcome::Denied,
            _ if status < 400 => Outcome::Ok,
            _ => Outcome::Failed,
        };
        self.record
    }
}
#[cfg(test)]
mod tests {
    use super::{bearer_key, new_request_id};

    #[test]
    fn request_ids_are_24_lowercase_hex_digits_and_differ() {
        let (a, b) = (new_request_id(), new_request_id());
        for id in [&a, &b] {
            assert_eq!(id.len(), 24, "{id}");
            assert!(
                id.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
                "{id}"
            );
            assert!(hex::decode(&**id).is_ok_and(|bytes| hex::encode(bytes) == **id));
        }
        assert_ne!(a, b);
    }

    #[test]
    fn only_one_bearer_token_of_visible_characters_is_a_key() {
        assert_eq!(bearer_key(b"Bearer abc"), Some("abc"));
        assert_eq!(bearer_key(b"bearer  abc "), Some("abc"));
        for malformed in [
            &b"abc"[..],
            b"Basic abc",
            b"Bearer ",
            b"Bearer a b",
            b"Bearer \xff\xfe",
        ] {
            assert_eq!(bearer_key(malformed), None, "{malformed:?}");
        }
        let long = format!("Bearer {}", "k".repeat(257));
        assert_eq!(bearer_key(long.as_bytes()), None);
    }
}
