//! The HTTP side: one shared `reqwest::Client`, the vendor's headers, request building, status
//! to [`ProviderError`] mapping, and the [`Provider`] implementation.
//!
//! It must never log or print a credential: the two secrets live only in the client's default
//! headers, marked sensitive, and [`MonoProvider`]'s `Debug` leaves them out.

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use provider::http::{self, NonAdvancing, StatusMeaning, parse_retry_after};
use provider::{
    Capabilities, Currency, Listing, Page, PageRequest, Provider, ProviderError, RefreshDelivery,
    RefreshRequest, RefreshStart, RefreshStyle, Scope, ScopeKind, Secret, Transaction,
    TransactionQuery,
};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use url::Url;

use crate::mapping::{self, MapContext, MappedEntity};

/// The vendor's page size when `length` is not sent.
pub const DEFAULT_PAGE_SIZE: u32 = 10;
/// The largest `length` the vendor documents (its OpenAPI example asks for 200).
pub const MAX_PAGE_SIZE: u32 = 200;

const ENDPOINT: [&str; 4] = ["api", "v1", "financial", "account_transactions"];

/// How to reach and read one Mono-style provider instance.
#[derive(Debug, Clone)]
pub struct MonoConfig {
    /// Provider instance name: in every `TransactionId`, `Transaction::provider` and error.
    pub name: String,
    /// The vendor's base URL, e.g. `https://api.dojah.io` (a path prefix is kept).
    pub base_url: url::Url,
    /// Sent as `Authorization: <secret>` (no `Bearer`); never logged or printed.
    pub secret_key: Secret,
    /// Sent as `AppId: <app id>`; never logged or printed.
    pub app_id: Secret,
    /// How long to wait for a connection (default 2 s).
    pub connect_timeout: Duration,
    /// How long a whole request may take (default 10 s).
    pub request_timeout: Duration,
    /// `length` per page when `list_all` walks pages (default 100, at most 200).
    pub page_size: u32,
    /// Whether `list_all` reads the account in one `not_paginated` call (default true).
    pub bulk_read: bool,
    /// The currency amounts are in (default NGN).
    pub currency: Currency,
}

impl MonoConfig {
    /// A configuration with the defaults above.
    pub fn new(
        name: impl Into<String>,
        base_url: url::Url,
        secret_key: Secret,
        app_id: Secret,
    ) -> Self {
        MonoConfig {
            name: name.into(),
            base_url,
            secret_key,
            app_id,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            page_size: 100,
            bulk_read: true,
            currency: Currency::NGN,
        }
    }
}

/// The Mono-style adapter: implements [`Provider`] over the vendor's `account_transactions`.
pub struct MonoProvider {
    name: String,
    endpoint: Url,
    page_size: u32,
    currency: Currency,
    http: reqwest::Client,
    capabilities: Capabilities,
}

impl fmt::Debug for MonoProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonoProvider")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint.as_str())
            .field("page_size", &self.page_size)
            .field("currency", &self.currency)
            .finish_non_exhaustive()
    }
}

/// How a request reads the account: which `response_mode`, and paging for `paginated`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode<'a> {
    /// One page: `page` and `length`.
    Paginated(PageRequest),
    /// The whole (filtered) account in one response.
    NotPaginated,
    /// Deliver the result to a callback URL.
    Webhook(&'a str),
}

impl MonoProvider {
    /// Builds the adapter and its HTTP client; refuses an unusable configuration.
    pub fn new(config: MonoConfig) -> Result<Self, ProviderError> {
        let config_error = |message: String| ProviderError::Config {
            provider: config.name.clone(),
            message,
        };
        if config.name.trim().is_empty() {
            return Err(config_error("the provider instance name is empty".into()));
        }
        let endpoint = endpoint(&config.base_url).map_err(config_error)?;
        let mut headers = HeaderMap::new();
        for (header, secret, what) in [
            (AUTHORIZATION, &config.secret_key, "secret key"),
            (HeaderName::from_static("appid"), &config.app_id, "app id"),
        ] {
            if secret.expose().trim().is_empty() {
                return Err(config_error(format!("the {what} is empty")));
            }
            // The error never echoes the value: it is a secret.
            let mut value = HeaderValue::from_str(secret.expose())
                .map_err(|_| config_error(format!("the {what} is not a valid header value")))?;
            value.set_sensitive(true);
            headers.insert(header, value);
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            // A redirect is not part of the contract: it surfaces as a bad payload, and our
            // headers never follow it anywhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| config_error(format!("cannot build the HTTP client: {e}")))?;
        let capabilities = Capabilities {
            scopes: vec![ScopeKind::Account],
            date_filter: vec![ScopeKind::Account],
            direction_filter: vec![ScopeKind::Account],
            get_by_id: false,
            default_page_size: DEFAULT_PAGE_SIZE,
            max_page_size: MAX_PAGE_SIZE,
            bulk_read: config.bulk_read,
            // The contract's samples list the newest transaction first.
            newest_first: true,
            refresh: RefreshStyle::Webhook,
        };
        Ok(MonoProvider {
            name: config.name,
            endpoint,
            page_size: config.page_size.clamp(1, MAX_PAGE_SIZE),
            currency: config.currency,
            http,
            capabilities,
        })
    }

    fn context<'a>(&'a self, account_id: &'a str) -> MapContext<'a> {
        MapContext {
            provider: &self.name,
            account_id,
            currency: self.currency,
        }
    }

    /// The account a query reads, or `Unsupported` for any other scope.
    fn account<'q>(&self, query: &'q TransactionQuery) -> Result<&'q str, ProviderError> {
        match &query.scope {
            Scope::Account(id) => Ok(id),
            other => Err(ProviderError::unsupported(
                &self.name,
                format!("{} scope", other.kind().as_str()),
            )),
        }
    }

    /// Reads a 200 `account_transactions` body for `account_id` exactly as a listing does after
    /// the HTTP exchange: no network, for tools and benchmarks of the normalization.
    pub fn parse_transactions_body(
        &self,
        account_id: &str,
        body: &[u8],
    ) -> Result<Vec<Transaction>, ProviderError> {
        mapping::read_entity(body, 200, &self.context(account_id)).map(|entity| entity.transactions)
    }

    /// The floor [`parse_transactions_body`](Self::parse_transactions_body) is measured against:
    /// the same body decoded by `serde_json` in one pass into the same wire types, with no
    /// mapping and no raw record kept. Returns the number of records; for benchmarks.
    pub fn decode_transactions_floor(body: &[u8]) -> Result<usize, serde_json::Error> {
        crate::wire::decode_transactions_floor(body)
    }

    /// One `account_transactions` call, mapped (not for webhook mode, whose body is ignored).
    async fn fetch(
        &self,
        account_id: &str,
        query: &TransactionQuery,
        mode: Mode<'_>,
    ) -> Result<MappedEntity, ProviderError> {
        let params = query_params(account_id, query, mode);
        let (status, body) = self.send(&params).await?;
        mapping::read_entity(&body, status, &self.context(account_id)).inspect_err(|e| {
            tracing::warn!(provider = %self.name, status, error = %e, "mono: unreadable response");
        })
    }

    /// Sends one GET and returns a 2xx status and its body; everything else is an error.
    async fn send(
        &self,
        params: &[(&'static str, String)],
    ) -> Result<(u16, Vec<u8>), ProviderError> {
        let response = self
            .http
            .get(self.endpoint.clone())
            .query(params)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        if (200..300).contains(&status) {
            return Ok((status, body.to_vec()));
        }
        let error = status_error(&self.name, status, &body, retry_after);
        tracing::warn!(provider = %self.name, status, error = %error, "mono: request failed");
        Err(error)
    }

    /// A request that got no (complete) answer: timeouts, refused connections, cut bodies.
    fn transport_error(&self, error: reqwest::Error) -> ProviderError {
        let what = if error.is_timeout() {
            "timed out"
        } else if error.is_connect() {
            "connection failed"
        } else {
            "request failed"
        };
        // Secrets travel in headers, never in the URL; the URL is still dropped because its
        // query may carry our callback URL and whatever token it holds.
        let message = format!("{what}: {}", error_chain(&error.without_url()));
        tracing::warn!(provider = %self.name, error = %message, "mono: transport failure");
        ProviderError::Unavailable {
            provider: self.name.clone(),
            status: None,
            message,
        }
    }
}

#[async_trait]
impl Provider for MonoProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "mono"
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// The walk never loops and never truncates silently (documented in the crate docs).
    fn non_advancing(&self) -> NonAdvancing {
        NonAdvancing::Fail
    }

    async fn list_page(
        &self,
        query: &TransactionQuery,
    ) -> Result<Page<Transaction>, ProviderError> {
        let account_id = self.account(query)?;
        let request = PageRequest::new(query.page.page, query.page.limit.clamp(1, MAX_PAGE_SIZE));
        let entity = self
            .fetch(account_id, query, Mode::Paginated(request))
            .await?;
        Ok(Page {
            items: entity.transactions,
            page: entity.current_page.unwrap_or(request.page),
            limit: request.limit,
            total: entity.total,
            total_pages: entity.total_pages,
            next_page: entity.next_page,
            warnings: entity.warnings,
        })
    }

    async fn list_all(&self, query: &TransactionQuery) -> Result<Listing, ProviderError> {
        let account_id = self.account(query)?;
        if !self.capabilities.bulk_read {
            return provider::walk_pages(self, query, self.page_size, 1).await;
        }
        let entity = self.fetch(account_id, query, Mode::NotPaginated).await?;
        let received = entity.transactions.len() + entity.warnings.len();
        if let Some(total) = entity.total
            && total != received as u64
        {
            // Worth a look, not a failure: what arrived is mapped and complete per record.
            tracing::warn!(
                provider = %self.name,
                total,
                received,
                "mono: not_paginated total disagrees with the records received"
            );
        }
        Ok(Listing {
            items: entity.transactions,
            warnings: entity.warnings,
        })
    }

    async fn start_refresh(&self, request: &RefreshRequest) -> Result<RefreshStart, ProviderError> {
        let callback_url = request
            .callback_url
            .as_deref()
            .filter(|url| !url.trim().is_empty())
            .ok_or_else(|| ProviderError::Config {
                provider: self.name.clone(),
                message: "refresh needs a callback_url for the webhook delivery".into(),
            })?;
        let query = TransactionQuery::new(Scope::Account(request.account_id.clone()));
        let params = query_params(&request.account_id, &query, Mode::Webhook(callback_url));
        let (status, body) = self.send(&params).await?;
        // The acknowledgement's shape is undocumented: only an `{error}` in it matters.
        if let Some(message) = mapping::error_in_ack(&body) {
            let error = ProviderError::BadPayload {
                provider: self.name.clone(),
                status: Some(status),
                message,
            };
            tracing::warn!(provider = %self.name, status, error = %error, "mono: refresh refused");
            return Err(error);
        }
        Ok(RefreshStart::AwaitingDelivery)
    }

    fn parse_delivery(
        &self,
        expected_account_id: &str,
        body: &[u8],
    ) -> Result<RefreshDelivery, ProviderError> {
        mapping::read_delivery(body, &self.context(expected_account_id))
    }
}

/// `{base_url}/api/v1/financial/account_transactions`, keeping any path prefix of the base.
fn endpoint(base: &Url) -> Result<Url, String> {
    if !matches!(base.scheme(), "http" | "https") {
        return Err(format!("base_url must be http(s), got {base}"));
    }
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| format!("base_url cannot take a path: {base}"))?
        .pop_if_empty()
        .extend(ENDPOINT);
    Ok(url)
}

/// The query string of one call, in a fixed order: `account_id`, `start_date`, `end_date`,
/// `trans_type`, then `page` and `length` (always both, so the page size is never the vendor's
/// implicit default) or `response_mode` (+ `callback_url`).
fn query_params(
    account_id: &str,
    query: &TransactionQuery,
    mode: Mode<'_>,
) -> Vec<(&'static str, String)> {
    let mut params = vec![("account_id", account_id.to_owned())];
    if let Some(from) = query.range.from {
        params.push(("start_date", mapping::format_date(from)));
    }
    if let Some(to) = query.range.to {
        params.push(("end_date", mapping::format_date(to)));
    }
    if let Some(direction) = query.direction {
        params.push(("trans_type", direction.as_str().to_owned()));
    }
    match mode {
        Mode::Paginated(page) => {
            params.push(("page", page.page.to_string()));
            params.push(("length", page.limit.to_string()));
        }
        Mode::NotPaginated => params.push(("response_mode", "not_paginated".to_owned())),
        Mode::Webhook(callback_url) => {
            params.push(("response_mode", "webhook".to_owned()));
            params.push(("callback_url", callback_url.to_owned()));
        }
    }
    params
}

/// The vendor's statuses that differ from the shared default: 424 (a third party it depends
/// on failed) is worth a retry, not a refusal of our request.
const STATUS_OVERRIDES: &[(u16, StatusMeaning)] = &[(424, StatusMeaning::Unavailable)];

/// The error for a non-2xx answer: the shared status mapping with the vendor's overrides.
fn status_error(
    provider: &str,
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> ProviderError {
    let message = mapping::vendor_message(body);
    http::status_error(provider, status, message, retry_after, STATUS_OVERRIDES)
}

/// An error and its sources, one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use provider::{DateRange, Direction, Fault};

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn endpoint_keeps_a_path_prefix() {
        for (base, want) in [
            (
                "https://api.dojah.io",
                "https://api.dojah.io/api/v1/financial/account_transactions",
            ),
            (
                "https://api.dojah.io/",
                "https://api.dojah.io/api/v1/financial/account_transactions",
            ),
            (
                "http://h:8080/mono/",
                "http://h:8080/mono/api/v1/financial/account_transactions",
            ),
            (
                "http://h/x?y=1#z",
                "http://h/x/api/v1/financial/account_transactions",
            ),
        ] {
            assert_eq!(endpoint(&url(base)).unwrap().as_str(), want);
        }
        assert!(endpoint(&url("ftp://h/")).is_err());
        assert!(endpoint(&url("mailto:a@b")).is_err());
    }

    #[test]
    fn query_parameters_in_order() {
        let d = |day| time::Date::from_calendar_date(2024, time::Month::March, day).unwrap();
        let query = TransactionQuery::new(Scope::Account("a1".into()))
            .with_range(DateRange::new(Some(d(1)), Some(d(31))))
            .with_direction(Some(Direction::Credit));
        let params = query_params("a1", &query, Mode::Paginated(PageRequest::new(3, 50)));
        assert_eq!(
            params,
            [
                ("account_id", "a1".to_owned()),
                ("start_date", "2024-03-01".to_owned()),
                ("end_date", "2024-03-31".to_owned()),
                ("trans_type", "credit".to_owned()),
                ("page", "3".to_owned()),
                ("length", "50".to_owned()),
            ]
        );
        let params = query_params("a1", &query, Mode::Webhook("http://cb"));
        assert_eq!(
            params[4..],
            [
                ("response_mode", "webhook".to_owned()),
                ("callback_url", "http://cb".to_owned()),
            ]
        );
    }

    #[test]
    fn statuses() {
        let err = |status| status_error("m", status, br#"{"error":"why"}"#, None);
        for status in [401, 402, 403] {
            assert!(matches!(err(status), ProviderError::Unauthorized { .. }));
            assert_eq!(err(status).fault(), Fault::Config);
        }
        for status in [400, 405, 409, 422] {
            assert!(
                matches!(err(status), ProviderError::Rejected { .. }),
                "{status}"
            );
        }
        assert!(matches!(err(404), ProviderError::NotFound { .. }));
        for status in [408, 424, 500, 502, 503, 504] {
            assert!(
                matches!(err(status), ProviderError::Unavailable { .. }),
                "{status}"
            );
            assert!(err(status).is_retryable());
        }
        let limited = status_error("m", 429, b"", Some(Duration::from_secs(7)));
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(7)));
        assert!(matches!(err(302), ProviderError::BadPayload { .. }));
        assert_eq!(
            err(400).to_string(),
            "m rejected the request (HTTP 400): why"
        );
    }
}
