//! One error type for the whole API, rendered as RFC 9457 `application/problem+json`.
//!
//! Every failure a caller can see goes through [`ApiError`]: one table maps each variant to its
//! HTTP status, stable machine-readable `code` and title. The request-id middleware re-renders
//! the problem with the request's id, so handlers never thread it through.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use provider::{ProviderError, ThrottleReason};
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "/problems/invalid_parameter",
    "title": "Invalid parameter",
    "status": 400,
    "detail": "limit must be an integer from 1 to 100",
    "code": "invalid_parameter",
    "parameter": "limit",
    "request_id": "3f0c2a9e8b7d4c1a"
}))]
pub struct Problem {
    /// A URI reference naming the problem type.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// A short summary of the problem type.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What happened this time.
    pub detail: String,
    /// A stable machine-readable code.
    pub code: &'static str,
    /// The request's id (also in the `x-request-id` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The request parameter at fault, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    /// The provider involved, for upstream failures and unsupported capabilities.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The provider's HTTP status, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
    /// The scope the caller lacks, for 403 `insufficient_scope` (`transactions:refresh`, or
    /// `provider:NAME` for a provider instance the client may not use).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Seconds to wait before retrying, for 429 and 503 answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// Everything that can go wrong in a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No API key, a malformed `Authorization` header, or a key the gateway does not know.
    #[error("{0}")]
    Unauthorized(KeyProblem),
    /// A key that was valid until its `not_after` date (nothing else is said about it).
    #[error("this API key has expired: use the client's current key")]
    KeyExpired,
    /// The client may not perform this operation, or not on this provider.
    #[error("{detail}")]
    InsufficientScope {
        /// The missing scope: `transactions:refresh`, ..., or `provider:NAME`.
        scope: String,
        /// The provider refused, when that is what is missing.
        provider: Option<String>,
        /// The request parameter that named the provider (`provider`, `id`).
        parameter: Option<&'static str>,
        /// What is missing, in words.
        detail: String,
    },
    /// A request parameter is invalid.
    #[error("{detail}")]
    InvalidParameter {
        /// The parameter's name.
        parameter: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A cursor that this gateway did not issue for this query and caller.
    #[error("the cursor is not valid for this request: {0}")]
    InvalidCursor(&'static str),
    /// A cursor whose snapshot is gone.
    #[error("the cursor has expired: restart the listing from the first page")]
    CursorExpired,
    /// A delta sync cursor whose versions (or whose pinned state) the gateway no longer keeps.
    #[error("{0}; sync again without a cursor (a full resync: everything as added)")]
    SyncCursorExpired(String),
    /// The resource does not exist.
    #[error("{detail}")]
    NotFound {
        /// What was not found.
        detail: String,
        /// The provider that said so, if any.
        provider: Option<String>,
    },
    /// No route matches the path.
    #[error("no route matches {0}")]
    RouteNotFound(String),
    /// The route exists but not with this method.
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
    /// The provider cannot serve this kind of request.
    #[error("provider {provider} does not support {capability}")]
    Unsupported {
        /// The provider instance.
        provider: String,
        /// The missing capability.
        capability: String,
    },
    /// The listing is too large to snapshot and asks for filters the provider lacks.
    #[error("{detail}")]
    ScopeTooLarge {
        /// The provider instance.
        provider: String,
        /// What to do instead.
        detail: String,
    },
    /// The caller is over its quota.
    #[error("too many requests: retry after {} s", whole_secs(*.retry_after))]
    RateLimited {
        /// When a request will be accepted again.
        retry_after: Duration,
    },
    /// A provider failed.
    #[error(transparent)]
    Upstream(#[from] ProviderError),
    /// The request took longer than the gateway's deadline.
    #[error("the request did not complete within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// A generic HTTP-level error (body too large, bad header, ...).
    #[error("{detail}")]
    Http {
        /// The status to answer.
        status: StatusCode,
        /// What happened.
        detail: String,
    },
    /// A bug or an impossible state.
    #[error("internal error")]
    Internal(String),
    /// An `Idempotency-Key` already used by this client for a different request.
    #[error("{0}")]
    IdempotencyKeyReused(String),
    /// The cache's memory for snapshot fills (`cache.max_bytes`) stayed taken by other fills
    /// while this request waited for its share.
    #[error("the gateway's memory for reading snapshots is taken by other reads; retry shortly")]
    CacheBusy {
        /// When to retry.
        retry_after: Duration,
    },
    /// State shared by the replicas (Redis) is unreachable, and this request needs it.
    #[error("shared state is unavailable right now ({0}); retry shortly")]
    CoordinationUnavailable(String),
    /// A webhook delivery without the token of the job it names.
    #[error("the delivery does not carry this job's token")]
    WebhookUnauthorized,
    /// A webhook delivery whose body the provider's adapter cannot read.
    #[error("{0}")]
    InvalidDelivery(String),
    /// A webhook delivery for another account than the job's.
    #[error("{0}")]
    DeliveryMismatch(String),
    /// A webhook delivery for a job that is no longer waiting for one.
    #[error("{0}")]
    JobNotAwaiting(String),
    /// A refresh that did not finish within its deadline.
    #[error("the refresh did not complete within {} ms", .0.as_millis())]
    RefreshTimeout(Duration),
    /// `strict=true` and the provider's data held records (or fields) that could not be read.
    #[error("{count} provider record(s) could not be read (strict=true); the first: {first}")]
    UnreadableRecords {
        /// The provider instance.
        provider: String,
        /// How many warnings the listing has.
        count: usize,
        /// The first of them.
        first: Box<provider::RecordWarning>,
    },
}

/// What is wrong with a request's API key (the 401's detail says which; nothing about any
/// configured key is ever said).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProblem {
    /// No `Authorization` header.
    Missing,
    /// An `Authorization` header that is not `Bearer <key>` with a key of 1-256 characters.
    Malformed,
    /// A well-formed key that belongs to no configured client.
    Unknown,
}

impl std::fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyProblem::Missing => "an API key is required: send Authorization: Bearer <key>",
            KeyProblem::Malformed => {
                "the Authorization header is malformed: send Authorization: Bearer <key> (one key of 1-256 characters)"
            }
            KeyProblem::Unknown => {
                "the API key is not valid: check that it was copied whole and is still configured"
            }
        })
    }
}

/// Whole seconds to wait, rounded up and at least 1 (as `Retry-After` and `retry_after` say).
fn whole_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

impl ApiError {
    /// A validation error for `parameter`.
    pub fn invalid(parameter: &str, detail: impl Into<String>) -> ApiError {
        ApiError::InvalidParameter {
            parameter: parameter.to_owned(),
            detail: detail.into(),
        }
    }

    /// The status, stable code and title of this error.
    pub fn classify(&self) -> (StatusCode, &'static str, &'static str) {
        use ProviderError as P;
        match self {
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            ApiError::KeyExpired => (StatusCode::UNAUTHORIZED, "key_expired", "API key expired"),
            ApiError::InsufficientScope { .. } => (
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                "Insufficient scope",
            ),
            ApiError::InvalidParameter { .. } => (
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
                "Invalid parameter",
            ),
            ApiError::InvalidCursor(_) => {
                (StatusCode::BAD_REQUEST, "invalid_cursor", "Invalid cursor")
            }
            ApiError::CursorExpired => (StatusCode::GONE, "cursor_expired", "Cursor expired"),
            ApiError::SyncCursorExpired(_) => (
                StatusCode::GONE,
                "sync_cursor_expired",
                "Sync cursor past retention",
            ),
            ApiError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            ApiError::RouteNotFound(_) => {
                (StatusCode::NOT_FOUND, "route_not_found", "No such route")
            }
            ApiError::MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
            ),
            ApiError::Unsupported { .. } | ApiError::Upstream(P::Unsupported { .. }) => (
                StatusCode::NOT_IMPLEMENTED,
                "capability_not_supported",
                "Not supported by this provider",
            ),
            ApiError::ScopeTooLarge { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "scope_too_large",
                "Listing too large for this filter",
            ),
            ApiError::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests",
            ),
            ApiError::Upstream(P::NotFound { .. }) => {
                (StatusCode::NOT_FOUND, "not_found", "Not found")
            }
            ApiError::Upstream(P::Rejected { .. }) => (
                StatusCode::BAD_REQUEST,
                "upstream_rejected",
                "The provider rejected the request",
            ),
            ApiError::Upstream(P::Unauthorized { .. }) => (
                StatusCode::BAD_GATEWAY,
                "provider_auth_failed",
                "The provider refused the gateway's credentials",
            ),
            ApiError::Upstream(P::RateLimited { .. }) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream_rate_limited",
                "The provider is rate limiting the gateway",
            ),
            ApiError::Upstream(P::Unavailable {
                status: Some(_), ..
            }) => (
                StatusCode::BAD_GATEWAY,
                "upstream_error",
                "The provider failed",
            ),
            ApiError::Upstream(P::Unavailable { status: None, .. }) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream_unavailable",
                "The provider is unreachable",
            ),
            ApiError::Upstream(P::BadPayload { .. } | P::Mapping { .. }) => (
                StatusCode::BAD_GATEWAY,
                "upstream_bad_payload",
                "The provider sent a payload the gateway cannot read",
            ),
            ApiError::Upstream(P::Throttled {
                reason: ThrottleReason::CircuitOpen,
                ..
            }) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "circuit_open",
                "The provider keeps failing; the gateway is not calling it for now",
            ),
            ApiError::Upstream(P::Throttled { .. }) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "provider_busy",
                "The provider's outbound quota or capacity is used up",
            ),
            ApiError::Upstream(P::Config { .. }) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "provider_misconfigured",
                "The provider is misconfigured",
            ),
            ApiError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "timeout", "Request timed out"),
            ApiError::Http { status, .. } => (*status, "http_error", "HTTP error"),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
            ApiError::IdempotencyKeyReused(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "Idempotency key reused for another request",
            ),
            ApiError::CacheBusy { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "cache_busy",
                "The cache's memory budget is taken by reads in progress",
            ),
            ApiError::CoordinationUnavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "coordination_unavailable",
                "Shared state is unavailable",
            ),
            ApiError::WebhookUnauthorized => (
                StatusCode::UNAUTHORIZED,
                "webhook_unauthorized",
                "Invalid webhook token",
            ),
            ApiError::InvalidDelivery(_) => (
                StatusCode::BAD_REQUEST,
                "invalid_delivery",
                "Unreadable webhook delivery",
            ),
            ApiError::DeliveryMismatch(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "delivery_account_mismatch",
                "Delivery for another account",
            ),
            ApiError::JobNotAwaiting(_) => (
                StatusCode::CONFLICT,
                "job_not_awaiting_delivery",
                "The job is not waiting for a delivery",
            ),
            ApiError::RefreshTimeout(_) => (
                StatusCode::GATEWAY_TIMEOUT,
                "refresh_timeout",
                "Refresh timed out",
            ),
            // The same answer as before per-record tolerance existed, for `strict=true` callers.
            ApiError::UnreadableRecords { .. } => (
                StatusCode::BAD_GATEWAY,
                "upstream_bad_payload",
                "The provider sent a payload the gateway cannot read",
            ),
        }
    }

    /// Seconds a caller should wait before retrying, when that is known.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after } => Some(whole_secs(*retry_after)),
            ApiError::Upstream(e @ ProviderError::RateLimited { .. }) => {
                Some(e.retry_after().map_or(60, whole_secs))
            }
            ApiError::Upstream(ProviderError::Throttled { retry_after, .. }) => {
                Some(whole_secs(*retry_after))
            }
            ApiError::Upstream(ProviderError::Unavailable { status: None, .. }) => Some(5),
            ApiError::CoordinationUnavailable(_) => Some(1),
            ApiError::CacheBusy { retry_after } => Some(whole_secs(*retry_after).max(1)),
            _ => None,
        }
    }

    /// The problem document for this error.
    pub fn problem(&self, request_id: Option<&str>) -> Problem {
        let (status, code, title) = self.classify();
        let (parameter, provider, upstream_status) = match self {
            ApiError::InvalidParameter { parameter, .. } => (Some(parameter.clone()), None, None),
            ApiError::InvalidCursor(_)
            | ApiError::CursorExpired
            | ApiError::SyncCursorExpired(_) => (Some("cursor".to_owned()), None, None),
            ApiError::IdempotencyKeyReused(_) => (Some("Idempotency-Key".to_owned()), None, None),
            ApiError::NotFound { provider, .. } => (None, provider.clone(), None),
            ApiError::InsufficientScope {
                provider,
                parameter,
                ..
            } => (parameter.map(str::to_owned), provider.clone(), None),
            ApiError::Unsupported { provider, .. } | ApiError::ScopeTooLarge { provider, .. } => {
                (None, Some(provider.clone()), None)
            }
            ApiError::Upstream(e) => (None, Some(e.provider().to_owned()), e.upstream_status()),
            ApiError::UnreadableRecords { provider, .. } => (None, Some(provider.clone()), None),
            _ => (None, None, None),
        };
        let detail = match self {
            // Never echo internals (or a vendor's text about our credentials) to callers.
            ApiError::Internal(_) => "an internal error occurred; quote the request id".to_owned(),
            ApiError::Upstream(ProviderError::Config { provider, .. }) => {
                format!("provider {provider} is misconfigured; quote the request id")
            }
            ApiError::Upstream(e) => upstream_detail(e, self.retry_after()),
            other => other.to_string(),
        };
        Problem {
            type_uri: format!("/problems/{code}"),
            title,
            status: status.as_u16(),
            detail,
            code,
            request_id: request_id.map(str::to_owned),
            parameter,
            provider,
            upstream_status,
            scope: match self {
                ApiError::InsufficientScope { scope, .. } => Some(scope.clone()),
                _ => None,
            },
            retry_after: self.retry_after(),
        }
    }

    /// Whether the log line of this failure carries text the client is not shown (a vendor's
    /// message, an upstream URL): such failures are logged whatever their status.
    pub fn has_hidden_cause(&self) -> bool {
        matches!(self, ApiError::Upstream(_) | ApiError::Internal(_))
    }

    /// The full response for this error, with the request id in the body.
    pub fn to_response(&self, request_id: Option<&str>) -> HttpResponse {
        let problem = self.problem(request_id);
        let mut builder = HttpResponse::build(self.status_code());
        builder.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        builder.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        match self {
            // RFC 6750: no error code when no key came; `invalid_request` / `invalid_token`.
            ApiError::Unauthorized(problem) => {
                builder.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(match problem {
                        KeyProblem::Missing => "Bearer",
                        KeyProblem::Malformed => "Bearer error=\"invalid_request\"",
                        KeyProblem::Unknown => "Bearer error=\"invalid_token\"",
                    }),
                ));
            }
            // RFC 6750's error codes, so generic clients know what to do.
            ApiError::KeyExpired => {
                builder.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Bearer error=\"invalid_token\", error_description=\"The API key expired\"",
                    ),
                ));
            }
            // A provider name comes from the query: only a plain one goes into the header.
            ApiError::InsufficientScope { scope, .. }
                if scope
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-')) =>
            {
                if let Ok(value) = HeaderValue::from_str(&format!(
                    "Bearer error=\"insufficient_scope\", scope=\"{scope}\""
                )) {
                    builder.insert_header((header::WWW_AUTHENTICATE, value));
                }
            }
            _ => {}
        }
        if let Some(secs) = problem.retry_after {
            builder.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        match serde_json::to_vec(&problem) {
            Ok(body) => builder.body(body),
            Err(_) => builder.finish(),
        }
    }
}

/// What a client is told about a provider's failure: in the gateway's words, never the vendor's
/// message or an upstream URL (both are in the log line, under the request's id).
fn upstream_detail(error: &ProviderError, retry_after: Option<u64>) -> String {
    use ProviderError as P;
    let provider = error.provider();
    let http = |status: Option<u16>| status.map_or_else(String::new, |s| format!(" (HTTP {s})"));
    match error {
        P::Unauthorized { status, .. } => {
            format!("provider {provider} refused the gateway's credentials (HTTP {status})")
        }
        P::NotFound { .. } => format!(
            "provider {provider} does not know the account, customer, NUBAN or transaction named"
        ),
        P::Rejected { status, .. } => format!(
            "provider {provider} rejected the request (HTTP {status}); check the parameters, or quote the request id"
        ),
        P::RateLimited { .. } => format!(
            "provider {provider} is rate limiting the gateway; retry after {} s",
            retry_after.unwrap_or(1)
        ),
        P::Unavailable { status: None, .. } => {
            format!("provider {provider} could not be reached; retry shortly")
        }
        P::Unavailable { status, .. } => format!(
            "provider {provider} failed{}; retry later, or quote the request id",
            http(*status)
        ),
        P::BadPayload { status, .. } => format!(
            "provider {provider} sent an answer the gateway cannot read{}; quote the request id",
            http(*status)
        ),
        P::Mapping { .. } => format!(
            "provider {provider} sent a record the gateway cannot read; quote the request id"
        ),
        P::Config { .. } => format!("provider {provider} is misconfigured; quote the request id"),
        // Both are the gateway's own words.
        P::Unsupported { .. } | P::Throttled { .. } => error.to_string(),
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.classify().0
    }

    fn error_response(&self) -> HttpResponse {
        // The request-id middleware re-renders this with the request's id.
        self.to_response(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_failures_name_the_provider_and_status() {
        let err = ApiError::Upstream(ProviderError::Unavailable {
            provider: "okra".into(),
            status: Some(503),
            message: "down".into(),
        });
        let p = err.problem(Some("rid"));
        assert_eq!((p.status, p.code), (502, "upstream_error"));
        assert_eq!(p.provider.as_deref(), Some("okra"));
        assert_eq!(p.upstream_status, Some(503));
        assert_eq!(p.request_id.as_deref(), Some("rid"));
    }

    #[test]
    fn credentials_problems_do_not_echo_the_vendor_text() {
        let err = ApiError::Upstream(ProviderError::Unauthorized {
            provider: "okra".into(),
            status: 401,
            message: "invalid key sk_live_abc".into(),
        });
        let p = err.problem(None);
        assert_eq!(p.status, 502);
        assert!(!p.detail.contains("sk_live"));
    }

    #[test]
    fn refusals_name_the_scope_and_expired_keys_say_nothing_else() {
        let refused = ApiError::InsufficientScope {
            scope: "provider:mono".into(),
            provider: Some("mono".into()),
            parameter: Some("provider"),
            detail: "this client may not use provider \"mono\"; it may use: okra".into(),
        };
        let p = refused.problem(Some("rid"));
        assert_eq!((p.status, p.code), (403, "insufficient_scope"));
        assert_eq!(p.scope.as_deref(), Some("provider:mono"));
        assert_eq!(p.parameter.as_deref(), Some("provider"));
        assert_eq!(
            refused
                .to_response(None)
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .unwrap(),
            "Bearer error=\"insufficient_scope\", scope=\"provider:mono\""
        );
        let odd = ApiError::InsufficientScope {
            scope: "provider:a\"b".into(),
            provider: None,
            parameter: None,
            detail: String::new(),
        };
        assert!(
            !odd.to_response(None)
                .headers()
                .contains_key(header::WWW_AUTHENTICATE)
        );
        let expired = ApiError::KeyExpired.problem(None);
        assert_eq!((expired.status, expired.code), (401, "key_expired"));
        assert_eq!(
            (expired.scope, expired.parameter, expired.provider),
            (None, None, None)
        );
    }

    #[test]
    fn upstream_details_never_carry_the_vendors_text_or_url() {
        let secret = "http://10.0.0.7:9000/v2/transactions?token=abc: connection refused";
        let failures = [
            ProviderError::Unavailable {
                provider: "okra".into(),
                status: None,
                message: secret.into(),
            },
            ProviderError::Unavailable {
                provider: "okra".into(),
                status: Some(500),
                message: secret.into(),
            },
            ProviderError::Rejected {
                provider: "okra".into(),
                status: 400,
                message: secret.into(),
            },
            ProviderError::NotFound {
                provider: "okra".into(),
                message: secret.into(),
            },
            ProviderError::BadPayload {
                provider: "okra".into(),
                status: Some(200),
                message: secret.into(),
            },
            ProviderError::RateLimited {
                provider: "okra".into(),
                retry_after: Some(Duration::from_secs(7)),
                message: secret.into(),
            },
            ProviderError::Config {
                provider: "okra".into(),
                message: secret.into(),
            },
        ];
        for failure in failures {
            let err = ApiError::Upstream(failure);
            let detail = err.problem(None).detail;
            assert!(!detail.contains("10.0.0.7"), "{detail}");
            assert!(!detail.contains("refused"), "{detail}");
            assert!(detail.contains("provider okra"), "{detail}");
            assert!(err.has_hidden_cause());
        }
    }

    #[test]
    fn each_kind_of_401_says_what_is_wrong_and_nothing_else() {
        let answers: Vec<(String, String)> = [
            KeyProblem::Missing,
            KeyProblem::Malformed,
            KeyProblem::Unknown,
        ]
        .into_iter()
        .map(|problem| {
            let err = ApiError::Unauthorized(problem);
            let response = err.to_response(None);
            let challenge = response
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            assert_eq!(err.problem(None).code, "unauthorized");
            (err.problem(None).detail, challenge)
        })
        .collect();
        assert_eq!(answers[0].1, "Bearer");
        assert_eq!(answers[1].1, "Bearer error=\"invalid_request\"");
        assert_eq!(answers[2].1, "Bearer error=\"invalid_token\"");
        assert!(answers[0].0.contains("required"), "{}", answers[0].0);
        assert!(answers[1].0.contains("malformed"), "{}", answers[1].0);
        assert!(answers[2].0.contains("not valid"), "{}", answers[2].0);
    }

    #[test]
    fn rate_limits_carry_retry_after() {
        let err = ApiError::RateLimited {
            retry_after: Duration::from_millis(1500),
        };
        assert_eq!(err.problem(None).retry_after, Some(2));
        assert!(err.problem(None).detail.ends_with("retry after 2 s"));
        // Under a second to wait: the header says 1, and so does the detail.
        let soon = ApiError::RateLimited {
            retry_after: Duration::from_millis(300),
        };
        assert_eq!(soon.problem(None).retry_after, Some(1));
        assert!(soon.problem(None).detail.ends_with("retry after 1 s"));
        let upstream = ApiError::Upstream(ProviderError::RateLimited {
            provider: "okra".into(),
            retry_after: Some(Duration::from_secs(30)),
            message: String::new(),
        });
        assert_eq!(upstream.problem(None).retry_after, Some(30));
        assert_eq!(upstream.status_code(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn held_back_calls_are_503_with_their_own_codes_and_retry_after() {
        let held = |reason| {
            ApiError::Upstream(ProviderError::Throttled {
                provider: "okra".into(),
                reason,
                retry_after: Duration::from_millis(2500),
            })
            .problem(None)
        };
        let open = held(ThrottleReason::CircuitOpen);
        assert_eq!((open.status, open.code), (503, "circuit_open"));
        assert_eq!(open.retry_after, Some(3));
        assert_eq!(open.provider.as_deref(), Some("okra"));
        for reason in [ThrottleReason::Quota, ThrottleReason::Concurrency] {
            let busy = held(reason);
            assert_eq!((busy.status, busy.code), (503, "provider_busy"));
            assert_eq!(busy.retry_after, Some(3));
        }
    }
}
