//! The Mono (mono.co) adapter: Mono's own account-transactions API and its Data Sync behind the
//! [`provider::Provider`] trait, as the provider kind `mono-connect`.
//!
//! Built like the other adapters: `wire` holds Mono's JSON (v2, v1 and legacy answers),
//! `mapping` is pure functions onto the canonical model, `client` owns the one shared
//! `reqwest::Client`, `mono-sec-key`, the status mapping (`provider::http`) and the
//! [`Provider`](provider::Provider) implementation ([`MonoConnectProvider`]). Wire types never
//! leave this crate; amounts never pass through binary floating point.
//!
//! # The contract (`shared/vendor-docs/mono-connect-transactions.txt`)
//!
//! `GET {base}/v2/accounts/{id}/transactions` (or `/v1/...`, or the legacy unversioned path
//! `mono-node` calls: `api = "v1" | "legacy"`), header `mono-sec-key`; query `start`, `end`,
//! `type`, `paginate`, `limit`, `page`. Data Sync: `POST {base}/accounts/{id}/sync`.
//!
//! # Tolerant readings and decisions where the docs are silent
//!
//! - The three answer shapes are told apart by their structure, not the path asked: `data` an
//!   array (v2 with `meta`, legacy with `paging`) or an object `{paging, transactions}` (v1).
//!   `status: "failed"` on a 2xx, no `data`, or a `data` of another type is a bad payload.
//! - `next` is a full URL (or null): only its `page` query parameter is read, and the next page
//!   is asked at the configured base URL, never at the URL Mono wrote (the gateway calls only
//!   configured URLs). A bare number is accepted too; a `next` without a page number is a bad
//!   payload. A `next` that does not advance fails the walk (`NonAdvancing::Fail`): never a
//!   loop, never a silent truncation.
//! - Amounts and balances are integer minor units: a JSON integer, or a string holding only
//!   one; decimals, exponents, separators are refused (a fraction would mean a misread field).
//!   Beyond `i64` is refused. A negative amount is refused (`type` carries the sign); a negative
//!   balance (overdraft) is kept; an unreadable balance is `None` with `field_ignored`.
//! - The booking date is the UTC calendar date of `date` (an RFC 3339 timestamp; an offset is
//!   converted to UTC first). There is no value date.
//! - A record without `currency` is in the account's currency (`currency`, default NGN); a record
//!   in another currency is left out as `currency_mismatch`.
//! - The id is `id` (v2, v1) or `_id` (legacy), string or number; `type` is `debit`/`credit` in
//!   any letter case. A record that cannot be read is left out with a `record_skipped` warning,
//!   never failing the others.
//! - Dates are sent as `dd-mm-yyyy` (Mono's examples; not confirmed for v2).
//! - `list_page` always sends `paginate=true`, `limit` and `page`; `list_all` with `bulk_read`
//!   sends `paginate=false` once, otherwise walks pages of `page_size`.
//!
//! # Data Sync (the refresh)
//!
//! `POST /accounts/{id}/sync` answers synchronously: `SYNC_SUCCESSFUL` (or `successful` without
//! a code) completes the refresh; `INCOMPLETE_STATEMENT_ERROR` is asked once more with
//! `allow_incomplete_statement=true`; `REAUTHORISATION_REQUIRED` is a refusal (the customer
//! must re-link); `SYNC_ERROR` and other codes are retryable failures. Mono allows one manual
//! sync per account every two minutes: a refresh asked sooner after a successful sync here
//! completes without a call (the data is that fresh). Webhooks carry `mono-webhook-secret`:
//! [`MonoConnectProvider::webhook_secret_matches`] checks it (constant time) and
//! [`MonoConnectProvider::parse_webhook`] names the event's account; any event for an account
//! means "something changed on it".
//!
//! # Errors
//!
//! The shared mapping (`provider::http::status_error`, no overrides): 401, 402, 403
//! unauthorized; 404 not found; 429 rate limited with `Retry-After`; 408 and 5xx unavailable;
//! other 4xx rejected; redirects and other statuses a bad payload. The message is the body's
//! `message`, else its text.

mod client;
mod mapping;
mod wire;

pub use client::{
    ApiVersion, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MonoConnectConfig, MonoConnectProvider,
    SYNC_INTERVAL,
};
pub use mapping::WebhookEvent;

use std::sync::Arc;

use provider::kind::{Common, Credential, Kind, SettingsError};
use provider::{Currency, Provider, ProviderError};

/// The `kind` name.
pub const KIND: &str = "mono-connect";

/// The `mono-connect` kind.
#[derive(Debug, Clone, Copy)]
pub struct MonoConnectKind;

/// `[providers.NAME]` keys of a `mono-connect` instance besides the common ones.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonoConnectSettings {
    /// Which path: `v2` (default), `v1` or `legacy`.
    #[serde(default)]
    pub api: ApiVersion,
    /// Read a whole account in one `paginate=false` call (default true).
    #[serde(default = "yes")]
    pub bulk_read: bool,
    /// The accounts' currency, for records without one (default NGN).
    #[serde(default = "ngn")]
    pub currency: String,
}

fn yes() -> bool {
    true
}

fn ngn() -> String {
    "NGN".to_owned()
}

impl Kind for MonoConnectKind {
    const NAME: &'static str = KIND;
    const CREDENTIALS: &'static [Credential] = &[Credential {
        key: "webhook_secret",
        required: false,
    }];
    const DEFAULT_PAGE_SIZE: u32 = MAX_PAGE_SIZE;
    const MAX_PAGE_SIZE: u32 = MAX_PAGE_SIZE;
    type Settings = MonoConnectSettings;

    fn check(settings: &MonoConnectSettings) -> Result<(), SettingsError> {
        Currency::from_code(&settings.currency)
            .map(|_| ())
            .map_err(|e| SettingsError {
                key: "currency",
                message: e.to_string(),
            })
    }

    fn build(
        common: Common,
        settings: MonoConnectSettings,
    ) -> Result<Arc<dyn Provider>, ProviderError> {
        let config_error = |message: String| ProviderError::Config {
            provider: common.name.clone(),
            message,
        };
        let base_url = common.base_url()?;
        let currency = Currency::from_code(&settings.currency)
            .map_err(|e| config_error(format!("currency: {e}")))?;
        let webhook_secret = common.credentials.get("webhook_secret").cloned();
        let mut config = MonoConnectConfig::new(common.name, base_url, common.secret_key);
        config.webhook_secret = webhook_secret;
        config.api = settings.api;
        config.connect_timeout = common.connect_timeout;
        config.request_timeout = common.request_timeout;
        config.page_size = common.page_size;
        config.bulk_read = settings.bulk_read;
        config.currency = currency;
        Ok(Arc::new(MonoConnectProvider::new(config)?))
    }
}
