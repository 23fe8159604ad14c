//! The Mono-style adapter: the vendor's `account_transactions` endpoint behind the
//! [`provider::Provider`] trait.
//!
//! Built like the Okra adapter: `wire` holds the vendor's JSON as documented (tolerant of the
//! variants below), `mapping` is pure functions from wire to the canonical model, and `client`
//! owns the one shared `reqwest::Client`, the headers, the status mapping and the `Provider`
//! implementation ([`MonoProvider`]). Vendor wire types never leave this crate; no
//! amount ever passes through binary floating point.
//!
//! # The contract
//!
//! `GET {base_url}/api/v1/financial/account_transactions` with `Authorization: <secret key>`
//! (raw, no `Bearer`) and `AppId: <app id>`; query `account_id`, `start_date`/`end_date`
//! (`YYYY-MM-DD`), `trans_type` (`debit`/`credit`), `page`, `length`, `response_mode`
//! (`paginated`, `not_paginated`, `webhook` + `callback_url`). Answer
//! `{"entity": {"transactions": [...], "total", "previous_page", "next_page", "total_pages",
//! "current_page"}}`, or `{"error": "..."}`.
//!
//! # Tolerant readings and decisions where the vendor docs are silent
//!
//! Wire:
//! - `id`: a JSON number (kept as its exact literal text, `1454` -> `"1454"`) or a string
//!   (trimmed). Missing or blank is a mapping error named by the record's position (`#3`).
//! - `amount`, `available_balance`: a decimal string (thousands separators, surrounding spaces
//!   and a leading `₦`/`NGN` allowed: `" ₦1,200.50 "`) read with `Money::from_decimal_str`, or
//!   a JSON number read from its raw JSON text with `Money::from_json_number`; both under the
//!   one float-noise rule of `provider::Money` (`"0.30000000000000004"` is 30 kobo, as a string
//!   or a number; a real fraction of a kobo is refused). Another currency's sign or code is a
//!   `currency_mismatch` warning.
//! - `previous_page`: `""`, `false` or a number (or a numeric string, or null); must be
//!   readable, unused.
//! - `next_page`: a number or numeric string -> the next page; `""`, `null`, `false`, absent or
//!   `0` -> last page. `total`, `total_pages`, `current_page`: number or numeric string; `""`/null/absent ->
//!   unknown. Anything else in a paging field is a bad payload.
//! - `transactions` must be an array (absent or null is a bad payload, `[]` is an empty page).
//!   Each record is parsed on its own: a bad one is left out and reported in the page's
//!   `warnings` (`record_skipped`, with its id or position, the field, the reason and the raw
//!   value); the good ones are kept. It never fails the read.
//! - `{error}` on a 2xx status is a bad payload carrying the vendor's message.
//!
//! Mapping:
//! - `trans_type`: `debit`/`credit` in any letter case, surrounding spaces ignored; anything
//!   else, blank or missing is a mapping error.
//! - `amount` may be zero; a negative amount is a `record_skipped` warning: `trans_type` carries
//!   the sign and the docs give a sign on `amount` no meaning, so the adapter does not guess.
//! - `available_balance` -> `balance_after`: the literal `"0"` every documented record shows is
//!   kept as zero (it is what the vendor says); absent, null or `""` -> `None`, never invented.
//!   A negative balance (overdraft) is kept. An unreadable one (`"N/A"`) -> `None` with a
//!   `field_ignored` warning; the record is kept.
//! - `transaction_date` -> `booked_on` (required), `value_date` -> `value_on` (absent, null or
//!   blank -> `None`). `YYYY-MM-DD`; a time-of-day suffix after `T` or a space
//!   (`2020-09-22T10:00:00Z`) is tolerated and the calendar date as written is kept, with no
//!   timezone conversion. Any other booking date skips the record with a warning; any other
//!   value date is `None` with a `field_ignored` warning.
//! - `reference`: string or number, trimmed; blank/null/absent -> `None`. The docs' `"0"` is
//!   kept as `Some("0")`: the adapter does not guess which values are placeholders.
//! - `narration` as sent (absent -> `""`); `bank_name` -> `bank` (blank -> `None`; not a string
//!   -> `None` with a `field_ignored` warning).
//! - `raw` is the record's exact JSON text; `account_id` is the queried account;
//!   `customer_id` is `None`; the id is `TransactionId::new(<instance name>, <id text>)`.
//!
//! Requests:
//! - `list_page` always sends both `page` and `length` (`query.page.limit` clamped to 1..=200),
//!   so the page size is never the vendor's implicit 10.
//! - `list_all` with `bulk_read` sends `response_mode=not_paginated` (plus the filters) once;
//!   without it, it walks `paginated` pages of `page_size` from page 1 following `next_page`,
//!   stopping at the last page or an empty page, and fails with a bad payload when `next_page`
//!   does not advance (rather than loop or silently truncate).
//! - `refresh` sends `response_mode=webhook&callback_url=...` and expects a 2xx whose body is
//!   otherwise ignored (its shape is undocumented) unless it carries `{error}`.
//! - The webhook delivery (undocumented; our reading) is
//!   `{"account_id": "...", "entity": {...as not_paginated...}}`, `account_id` optional.
//!
//! Errors: 401, 402 (balance low), 403 -> `Unauthorized` (our configuration's fault); 400, 405
//! and other 4xx -> `Rejected`; 404 -> `NotFound`; 408, 424, 5xx, timeouts, connection errors ->
//! `Unavailable`; 429 -> `RateLimited` with `Retry-After` (seconds or HTTP date); an unreadable
//! body or `{error}` on a 2xx -> `BadPayload`; redirects are not followed (our headers go nowhere
//! else) and, like any other unexpected status, are a `BadPayload`. The vendor's `{error}` message is carried along.

mod client;
mod mapping;
mod wire;

pub use client::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MonoConfig, MonoProvider};

/// The `mono` kind: an `app_id` credential and `bulk_read`.
#[derive(Debug, Clone, Copy)]
pub struct MonoKind;

/// `[providers.NAME]` keys of a `mono` instance besides the common ones.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonoSettings {
    /// Read a whole account in one `not_paginated` call (default true).
    #[serde(default = "yes")]
    pub bulk_read: bool,
}

fn yes() -> bool {
    true
}

impl provider::kind::Kind for MonoKind {
    const NAME: &'static str = "mono";
    const CREDENTIALS: &'static [provider::kind::Credential] = &[provider::kind::Credential {
        key: "app_id",
        required: true,
    }];
    const DEFAULT_PAGE_SIZE: u32 = 100;
    const MAX_PAGE_SIZE: u32 = MAX_PAGE_SIZE;
    type Settings = MonoSettings;

    fn build(
        common: provider::kind::Common,
        settings: MonoSettings,
    ) -> Result<std::sync::Arc<dyn provider::Provider>, provider::ProviderError> {
        let base_url = common.base_url()?;
        let app_id = common.credential("app_id")?;
        let mut config = MonoConfig::new(common.name, base_url, common.secret_key, app_id);
        config.connect_timeout = common.connect_timeout;
        config.request_timeout = common.request_timeout;
        config.page_size = common.page_size;
        config.bulk_read = settings.bulk_read;
        Ok(std::sync::Arc::new(MonoProvider::new(config)?))
    }
}
