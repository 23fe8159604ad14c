//! The HTTP side: one shared `reqwest::Client` carrying `mono-sec-key`, request building,
//! statuses through [`provider::http::status_error`], Data Sync, and the [`Provider`]
//! implementation. It never logs or prints a credential.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use provider::http::{NonAdvancing, StatusMeaning, parse_retry_after, status_error};
use provider::{
    Capabilities, Currency, Listing, Page, PageRequest, Provider, ProviderError, RefreshRequest,
    RefreshStart, RefreshStyle, Scope, ScopeKind, Secret, Transaction, TransactionQuery,
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use serde::Deserialize;
use tokio::time::Instant;
use url::Url;

use crate::mapping::{self, MapContext, MappedPage, SyncOutcome};

/// Mono's page size when `limit` is not sent (its demo app assumes 20 rows).
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// The largest `limit` the adapter asks for (Mono documents none).
pub const MAX_PAGE_SIZE: u32 = 100;
/// Mono allows one manual Data Sync per account in this long.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(120);

/// Mono's statuses that mean something else than the shared default: 402 ("Request Failed")
/// is about our account with Mono, like 401 and 403 (the default already says so); 409 is a
/// conflict with a sync in progress, a refusal of this request (also the default). None of
/// the documented statuses needs an override today; the list is where one would go.
const STATUS_OVERRIDES: &[(u16, StatusMeaning)] = &[];

/// Which of Mono's paths to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiVersion {
    /// `GET /v2/accounts/{id}/transactions` (the current API reference).
    #[default]
    V2,
    /// `GET /v1/accounts/{id}/transactions`.
    V1,
    /// `GET /accounts/{id}/transactions` (what `mono-node` calls).
    Legacy,
}

/// How to reach and read one Mono instance.
#[derive(Debug, Clone)]
pub struct MonoConnectConfig {
    /// Provider instance name.
    pub name: String,
    /// `https://api.withmono.com` (a path prefix is kept).
    pub base_url: Url,
    /// Sent as `mono-sec-key`; never logged.
    pub secret_key: Secret,
    /// The secret Mono sends in `mono-webhook-secret` (checked by [`MonoConnectProvider::webhook_secret_matches`]).
    pub webhook_secret: Option<Secret>,
    /// Which path to read.
    pub api: ApiVersion,
    /// Connect timeout (default 2 s).
    pub connect_timeout: Duration,
    /// Whole-request timeout (default 10 s).
    pub request_timeout: Duration,
    /// `limit` when `list_all` walks pages (default 100).
    pub page_size: u32,
    /// Whether `list_all` reads the account in one `paginate=false` call (default true).
    pub bulk_read: bool,
    /// The account currency: records without `currency` are in it (default NGN).
    pub currency: Currency,
}

impl MonoConnectConfig {
    /// A configuration with the defaults above.
    pub fn new(name: impl Into<String>, base_url: Url, secret_key: Secret) -> Self {
        MonoConnectConfig {
            name: name.into(),
            base_url,
            secret_key,
            webhook_secret: None,
            api: ApiVersion::V2,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            page_size: MAX_PAGE_SIZE,
            bulk_read: true,
            currency: Currency::NGN,
        }
    }
}

/// The Mono adapter.
pub struct MonoConnectProvider {
    name: String,
    base_url: Url,
    api: ApiVersion,
    page_size: u32,
    currency: Currency,
    webhook_secret: Option<Secret>,
    http: reqwest::Client,
    capabilities: Capabilities,
    /// When each account was last synced here (one manual sync per two minutes).
    synced: Mutex<HashMap<String, Instant>>,
}

impl fmt::Debug for MonoConnectProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonoConnectProvider")
            .field("name", &self.name)
            .field("base_url", &self.base_url.as_str())
            .field("api", &self.api)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

/// How one request reads the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `paginate=true`, `limit`, `page`.
    Page(PageRequest),
    /// `paginate=false`: everything at once.
    Bulk,
}

impl MonoConnectProvider {
    /// Builds the adapter; refuses an unusable configuration.
    pub fn new(config: MonoConnectConfig) -> Result<Self, ProviderError> {
        let config_error = |message: String| ProviderError::Config {
            provider: config.name.clone(),
            message,
        };
        if config.name.trim().is_empty() {
            return Err(config_error("the provider instance name is empty".into()));
        }
        if !matches!(config.base_url.scheme(), "http" | "https")
            || config.base_url.cannot_be_a_base()
        {
            return Err(config_error(format!(
                "base_url must be an http(s) URL, got {}",
                config.base_url
            )));
        }
        if config.secret_key.expose().trim().is_empty() {
            return Err(config_error("the secret key is empty".into()));
        }
        let mut key = HeaderValue::from_str(config.secret_key.expose())
            .map_err(|_| config_error("the secret key is not a valid header value".into()))?;
        key.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(HeaderName::from_static("mono-sec-key"), key);
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
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
            // "Without them Mono returns the most recent transactions": newest first.
            newest_first: true,
            refresh: RefreshStyle::Polling,
        };
        Ok(MonoConnectProvider {
            name: config.name,
            base_url: config.base_url,
            api: config.api,
            page_size: config.page_size.clamp(1, MAX_PAGE_SIZE),
            currency: config.currency,
            webhook_secret: config.webhook_secret,
            http,
            capabilities,
            synced: Mutex::new(HashMap::new()),
        })
    }

    /// Whether a webhook delivery's `mono-webhook-secret` header is the configured secret
    /// (compared in constant time; no secret configured: never).
    pub fn webhook_secret_matches(&self, header: Option<&str>) -> bool {
        match (&self.webhook_secret, header) {
            (Some(secret), Some(given)) => {
                constant_time_eq(secret.expose().as_bytes(), given.trim().as_bytes())
            }
            _ => false,
        }
    }

    /// Reads a webhook delivery whose secret matched: its event and account.
    pub fn parse_webhook(&self, body: &[u8]) -> Result<mapping::WebhookEvent, ProviderError> {
        mapping::read_webhook(body).map_err(|message| ProviderError::BadPayload {
            provider: self.name.clone(),
            status: None,
            message,
        })
    }

    fn account<'q>(&self, query: &'q TransactionQuery) -> Result<&'q str, ProviderError> {
        match &query.scope {
            Scope::Account(id) => Ok(id),
            other => Err(ProviderError::unsupported(
                &self.name,
                format!("{} scope", other.kind().as_str()),
            )),
        }
    }

    /// `{base}/{v2|v1}/accounts/{id}/{last}` (no version segment for legacy paths and sync).
    fn url(&self, account_id: &str, last: &str, versioned: bool) -> Url {
        let mut url = self.base_url.clone();
        url.set_query(None);
        url.set_fragment(None);
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty();
            match (versioned, self.api) {
                (true, ApiVersion::V2) => {
                    segments.push("v2");
                }
                (true, ApiVersion::V1) => {
                    segments.push("v1");
                }
                _ => {}
            }
            segments.extend(["accounts", account_id, last]);
        }
        url
    }

    async fn fetch(
        &self,
        account_id: &str,
        query: &TransactionQuery,
        mode: Mode,
    ) -> Result<MappedPage, ProviderError> {
        let request = self
            .http
            .get(self.url(account_id, "transactions", true))
            .query(&query_params(query, mode));
        let (status, body) = self.send(request).await?;
        let ctx = MapContext {
            provider: &self.name,
            account_id,
            currency: self.currency,
        };
        mapping::read_page(&body, status, &ctx).inspect_err(|e| {
            tracing::warn!(provider = %self.name, status, error = %e, "mono-connect: unreadable answer");
        })
    }

    /// Reads a 200 transactions answer (any of the three shapes) for `account_id` exactly as
    /// `list_page` does after the HTTP exchange: no network, for tools and benchmarks of the
    /// normalization.
    pub fn parse_transactions_body(
        &self,
        account_id: &str,
        body: &[u8],
        requested: PageRequest,
    ) -> Result<Page<Transaction>, ProviderError> {
        let ctx = MapContext {
            provider: &self.name,
            account_id,
            currency: self.currency,
        };
        mapping::read_page(body, 200, &ctx).map(|page| canonical_page(page, requested))
    }

    /// The floor [`parse_transactions_body`](Self::parse_transactions_body) is measured against:
    /// a v2 answer decoded by `serde_json` in one pass into the same wire types, with no mapping
    /// and no raw record kept. Returns the number of records; for benchmarks.
    pub fn decode_transactions_floor(body: &[u8]) -> Result<usize, serde_json::Error> {
        crate::wire::decode_transactions_floor(body)
    }

    /// Sends a request; a 2xx gives its status and body, anything else the mapped error.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(u16, Vec<u8>), ProviderError> {
        let response = request.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        if (200..300).contains(&status) {
            return Ok((status, body.to_vec()));
        }
        let message = mapping::vendor_message(&body, status);
        let error = status_error(&self.name, status, message, retry_after, STATUS_OVERRIDES);
        tracing::warn!(provider = %self.name, status, error = %error, "mono-connect: request failed");
        Err(error)
    }

    fn transport_error(&self, error: &reqwest::Error) -> ProviderError {
        let what = if error.is_timeout() {
            "timed out"
        } else if error.is_connect() {
            "connection failed"
        } else {
            "request failed"
        };
        ProviderError::Unavailable {
            provider: self.name.clone(),
            status: None,
            message: what.to_owned(),
        }
    }

    /// One `POST /accounts/{id}/sync`, read.
    async fn sync_once(
        &self,
        account_id: &str,
        allow_incomplete: bool,
    ) -> Result<SyncOutcome, ProviderError> {
        let mut request = self.http.post(self.url(account_id, "sync", false));
        if allow_incomplete {
            request = request.query(&[("allow_incomplete_statement", "true")]);
        }
        let (status, body) = self.send(request).await?;
        mapping::read_sync(&body).map_err(|message| ProviderError::BadPayload {
            provider: self.name.clone(),
            status: Some(status),
            message,
        })
    }

    /// Whether the account was synced here less than [`SYNC_INTERVAL`] ago.
    fn synced_recently(&self, account_id: &str) -> bool {
        let synced = self
            .synced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        synced
            .get(account_id)
            .is_some_and(|at| at.elapsed() < SYNC_INTERVAL)
    }

    fn mark_synced(&self, account_id: &str) {
        let mut synced = self
            .synced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        synced.retain(|_, at| at.elapsed() < SYNC_INTERVAL);
        synced.insert(account_id.to_owned(), Instant::now());
    }
}

/// A mapped answer as the canonical page `request` asked for.
fn canonical_page(page: MappedPage, request: PageRequest) -> Page<Transaction> {
    let total_pages = page
        .total
        .map(|total| u32::try_from(total.div_ceil(u64::from(request.limit))).unwrap_or(u32::MAX));
    Page {
        items: page.transactions,
        page: page.page.unwrap_or(request.page),
        limit: request.limit,
        total: page.total,
        total_pages,
        next_page: page.next_page,
        warnings: page.warnings,
    }
}

#[async_trait]
impl Provider for MonoConnectProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        crate::KIND
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn non_advancing(&self) -> NonAdvancing {
        NonAdvancing::Fail
    }

    async fn list_page(
        &self,
        query: &TransactionQuery,
    ) -> Result<Page<Transaction>, ProviderError> {
        let account_id = self.account(query)?;
        let request = PageRequest::new(query.page.page, query.page.limit.clamp(1, MAX_PAGE_SIZE));
        let page = self.fetch(account_id, query, Mode::Page(request)).await?;
        Ok(canonical_page(page, request))
    }

    async fn list_all(&self, query: &TransactionQuery) -> Result<Listing, ProviderError> {
        let account_id = self.account(query)?;
        if !self.capabilities.bulk_read {
            return provider::walk_pages(self, query, self.page_size, 1).await;
        }
        let page = self.fetch(account_id, query, Mode::Bulk).await?;
        Ok(Listing {
            items: page.transactions,
            warnings: page.warnings,
        })
    }

    async fn start_refresh(&self, request: &RefreshRequest) -> Result<RefreshStart, ProviderError> {
        let account_id = request.account_id.as_str();
        if self.synced_recently(account_id) {
            // Mono refuses a second manual sync within two minutes; the last one is that fresh.
            return Ok(RefreshStart::Completed);
        }
        let mut outcome = self.sync_once(account_id, false).await?;
        if matches!(outcome, SyncOutcome::IncompleteStatement(_)) {
            outcome = self.sync_once(account_id, true).await?;
        }
        match outcome {
            SyncOutcome::Synced => {
                self.mark_synced(account_id);
                Ok(RefreshStart::Completed)
            }
            SyncOutcome::ReauthorisationRequired(message) => Err(ProviderError::Rejected {
                provider: self.name.clone(),
                status: 200,
                message,
            }),
            SyncOutcome::IncompleteStatement(message) | SyncOutcome::Failed(message) => {
                Err(ProviderError::Unavailable {
                    provider: self.name.clone(),
                    status: None,
                    message,
                })
            }
        }
    }
}

/// The query of one transactions request, in a fixed order: `start`, `end` (dd-mm-yyyy),
/// `type`, then `paginate` (always sent, as Mono's own client does), `limit` and `page`.
fn query_params(query: &TransactionQuery, mode: Mode) -> Vec<(&'static str, String)> {
    let mut params = Vec::new();
    if let Some(from) = query.range.from {
        params.push(("start", mapping::format_date(from)));
    }
    if let Some(to) = query.range.to {
        params.push(("end", mapping::format_date(to)));
    }
    if let Some(direction) = query.direction {
        params.push(("type", direction.as_str().to_owned()));
    }
    match mode {
        Mode::Page(page) => {
            params.push(("paginate", "true".to_owned()));
            params.push(("limit", page.limit.to_string()));
            params.push(("page", page.page.to_string()));
        }
        Mode::Bulk => params.push(("paginate", "false".to_owned())),
    }
    params
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use provider::{DateRange, Direction};

    fn adapter(base: &str, api: ApiVersion) -> MonoConnectProvider {
        let mut config =
            MonoConnectConfig::new("mc", Url::parse(base).unwrap(), Secret::new("test_sk_1"));
        config.api = api;
        config.webhook_secret = Some(Secret::new("whs_1"));
        MonoConnectProvider::new(config).unwrap()
    }

    #[test]
    fn paths_per_api_version_keep_a_prefix() {
        let a = adapter("http://h/mono/", ApiVersion::V2);
        assert_eq!(
            a.url("a1", "transactions", true).as_str(),
            "http://h/mono/v2/accounts/a1/transactions"
        );
        assert_eq!(
            a.url("a1", "sync", false).as_str(),
            "http://h/mono/accounts/a1/sync"
        );
        let v1 = adapter("http://h", ApiVersion::V1);
        assert_eq!(
            v1.url("a/1", "transactions", true).as_str(),
            "http://h/v1/accounts/a%2F1/transactions"
        );
        let legacy = adapter("http://h", ApiVersion::Legacy);
        assert_eq!(
            legacy.url("a1", "transactions", true).as_str(),
            "http://h/accounts/a1/transactions"
        );
    }

    #[test]
    fn query_parameters_in_order() {
        let d = |day| time::Date::from_calendar_date(2024, time::Month::March, day).unwrap();
        let query = TransactionQuery::new(Scope::Account("a1".into()))
            .with_range(DateRange::new(Some(d(1)), Some(d(31))))
            .with_direction(Some(Direction::Credit));
        assert_eq!(
            query_params(&query, Mode::Page(PageRequest::new(3, 50))),
            [
                ("start", "01-03-2024".to_owned()),
                ("end", "31-03-2024".to_owned()),
                ("type", "credit".to_owned()),
                ("paginate", "true".to_owned()),
                ("limit", "50".to_owned()),
                ("page", "3".to_owned()),
            ]
        );
        assert_eq!(
            query_params(&query, Mode::Bulk)[3..],
            [("paginate", "false".to_owned())]
        );
    }

    #[test]
    fn the_webhook_secret_must_match_exactly() {
        let a = adapter("http://h", ApiVersion::V2);
        assert!(a.webhook_secret_matches(Some("whs_1")));
        for wrong in [None, Some(""), Some("whs_2"), Some("whs_10")] {
            assert!(!a.webhook_secret_matches(wrong), "{wrong:?}");
        }
        let mut config =
            MonoConnectConfig::new("mc", Url::parse("http://h").unwrap(), Secret::new("k"));
        config.webhook_secret = None;
        assert!(
            !MonoConnectProvider::new(config)
                .unwrap()
                .webhook_secret_matches(Some(""))
        );
    }

    #[test]
    fn unusable_configurations_are_refused() {
        for (base, key) in [("ftp://h", "k"), ("http://h", " "), ("http://h", "a\nb")] {
            let config = MonoConnectConfig::new("mc", Url::parse(base).unwrap(), Secret::new(key));
            assert!(
                matches!(
                    MonoConnectProvider::new(config),
                    Err(ProviderError::Config { .. })
                ),
                "{base} {key:?}"
            );
        }
    }
}
