//! The Okra adapter: Okra's transaction endpoints behind the canonical [`provider::Provider`].
//!
//! This crate owns everything Okra-specific: the wire types (`wire`, never exported), the pure
//! mapping onto the canonical model (`mapping`) and the HTTP client with its error mapping and
//! refresh polling ([`OkraProvider`]). It depends on no crate of ours but `provider`.
//!
//! # Readings of Okra's docs
//!
//! Okra's pages are silent or loose in places; these are the readings this adapter takes (each
//! covered by a test):
//!
//! * **One bad record never fails a page**: a record that cannot be mapped is left out of the
//!   page and reported in [`provider::Page::warnings`] (its id or position, the field, the
//!   reason, the raw value); an ancillary field that does not parse (`cleared_date`, `bank`) is
//!   set to none on a record that is kept, with a `field_ignored` warning.
//! * **Amounts** (`debit`/`credit`) are read from the JSON text, never through binary floating
//!   point: a number with [`provider::Money::from_json_number`], a string with
//!   [`provider::Money::from_decimal_str`] (thousands separators, a leading `₦`/`NGN`; another
//!   currency's sign or code is a `currency_mismatch` warning), both under the one float-noise
//!   rule of [`provider::Money`] (`250000000.79999998` is 25 000 000 080 kobo);
//!   `null`/absent/blank is no amount.
//! * **Direction** is whichever of `debit`/`credit` carries a non-zero amount. A **zero** amount
//!   is valid: the one field given says the direction (both given as zero: a credit of zero).
//!   Both non-zero, or neither given, is a warning naming the record, never a guess. A
//!   **negative** amount is a warning too: Okra documents no meaning for a sign (the field is
//!   the direction).
//! * **Currency** is the configured one (NGN by default) unless a record has a `currency`
//!   field (not documented, read defensively); an unknown code is a mapping error.
//! * **Dates**: `trans_date`/`cleared_date` are read as ISO 8601 timestamps or plain dates and
//!   give the calendar date *as written* (no timezone conversion: `2024-03-05T23:30:00-01:00` is
//!   5 March). When empty or unreadable, `unformatted_*` is tried, which also accepts bank forms:
//!   `2024/03/05`, day-first `05/03/2024` (Nigerian banks write day first), `05-Mar-2024`,
//!   `05 Mar 2024`, two-digit years as 20xx. No usable booking date is a mapping error; an
//!   unusable cleared date is none, with a warning when one was given.
//! * **Ids**: the transaction id is `id`, falling back to `_id`; neither is a mapping error
//!   naming the record's position. `account` and `customer` are objects with `_id` or plain id
//!   strings; a record without an account id is a mapping error; the customer is optional.
//!   `bank` is an object with `name` or a plain name.
//! * **Narration** is `notes.desc` (Okra has no narration field); absent is empty.
//!   **Reference** is `ref`, trimmed, blank as none (`"0"` is kept: it is what the bank sent).
//! * **The docs' own examples** have empty ids and dates: mapping them is a mapping error
//!   (`id` first), and the fixture tests assert exactly that.
//! * **Pagination** numbers may be numbers, numeric strings, `""`, `null` or absent; `nextPage`
//!   (or `next_page`) may also be `false`; `prevPage` is never read. The next page is `nextPage`, else `page + 1` when `hasNextPage`, else (neither
//!   given) `page + 1` while `page < totalPages`; a "next" page not after the current one is
//!   none, so walks end. A `transaction` list that is `null` is empty.
//! * **Requests** send `page`/`limit` as JSON numbers, `limit` clamped to 1..=100.
//!   `getByCustomerDate` is sent with `customer_id` (the docs' name). Okra requires `from` and
//!   `to`: an open end is sent as `1970-01-01` / `9999-12-31` (deterministic, no clock).
//! * **Date filtering** is native only for the customer and all scopes; `getByAccount` and
//!   `getByNuban` are not filtered here (the gateway does it).
//! * **getById** returns a list; an empty list is not found; the first record is the answer.
//! * **Errors**: 401/402/403 unauthorized; 404 not found; 429 rate limited with `Retry-After`
//!   (seconds or an HTTP date; without the header, Okra's "try again in N seconds" message);
//!   408, 5xx, timeouts and connection errors unavailable; other 4xx rejected; redirects are not
//!   followed and, like any other non-2xx, are a bad payload; on a 2xx, a body that is not an
//!   envelope or `status: "error"` is a bad payload carrying Okra's message.
//! * **Refresh**: the `callback_url` is resolved against the base URL when relative, a last path
//!   segment `undefined` is replaced by `callback` (as Okra's own sample client does), and a URL
//!   whose origin differs from the base URL's is refused as a
//!   [`provider::ProviderError::BadPayload`] before anything is sent to it (it would carry our
//!   secret to a stranger; the fault is the payload's). The callback is polled with the same
//!   Bearer auth, one `poll_refresh` per poll (so a wrapper such as the gateway's lane paces
//!   and counts each one; the loop is `provider::follow_refresh`): first after `initial_delay`, doubling up to `max_delay`, until `completed` is
//!   true (or `running` false without `completed: false`, or a status word such as
//!   `completed`/`done`); `failed`/`error` words are unavailable; retryable poll errors (5xx,
//!   timeouts, 429 whose `Retry-After` stretches the wait) keep polling; other errors end it; the
//!   deadline passing is unavailable.

mod client;
mod mapping;
mod wire;

pub use client::{
    DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, OkraConfig, OkraProvider, PollPolicy, WIDE_FROM, WIDE_TO,
};

/// The `okra` kind: no keys of its own beyond the common ones.
#[derive(Debug, Clone, Copy)]
pub struct OkraKind;

/// `[providers.NAME]` keys of an `okra` instance besides the common ones: none.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OkraSettings {}

impl provider::kind::Kind for OkraKind {
    const NAME: &'static str = "okra";
    // Okra pages at its largest page: the fewest requests for a whole scope.
    const DEFAULT_PAGE_SIZE: u32 = MAX_PAGE_SIZE;
    const MAX_PAGE_SIZE: u32 = MAX_PAGE_SIZE;
    type Settings = OkraSettings;

    fn build(
        common: provider::kind::Common,
        _: OkraSettings,
    ) -> Result<std::sync::Arc<dyn provider::Provider>, provider::ProviderError> {
        let base_url = common.base_url()?;
        let mut config = OkraConfig::new(common.name, base_url, common.secret_key);
        config.connect_timeout = common.connect_timeout;
        config.request_timeout = common.request_timeout;
        config.refresh_poll.deadline = common.refresh_deadline;
        Ok(std::sync::Arc::new(OkraProvider::new(config)?))
    }
}
