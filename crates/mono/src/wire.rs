//! The Mono-style provider's JSON, exactly as its documentation shows it, tolerant of the
//! variants listed in the crate docs.
//!
//! These types never leave this crate: [`crate::mapping`] turns them into canonical values. No
//! number in here ever passes through binary floating point: every vendor number is kept as its JSON text
//! ([`MonoScalar::Number`]) and read exactly by the mapping.

use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::value::RawValue;

/// The body of a successful `account_transactions` call: `{"entity": {...}}`; an error body
/// `{"error": "..."}` may also arrive, even with a 2xx status. The records are `&RawValue`
/// borrowed from the body (typed records only in [`decode_transactions_floor`]).
#[derive(Debug, Deserialize)]
pub(crate) struct MonoEnvelope<R> {
    /// The result, absent on errors.
    pub entity: Option<MonoEntity<R>>,
    /// The vendor's error message, when it sent one.
    pub error: Option<serde_json::Value>,
}

/// Any body, read only for its `{"error": "..."}`.
#[derive(Debug, Deserialize)]
pub(crate) struct MonoError {
    /// The vendor's error message, when it sent one.
    pub error: Option<serde_json::Value>,
}

/// What a webhook delivery POSTs to our callback URL (our reading; the docs are silent):
/// `{"account_id": "...", "entity": {...same as a not_paginated response...}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct MonoDelivery<'a> {
    /// The account the delivery is for, when it says.
    pub account_id: Option<MonoScalar>,
    /// The delivered transactions and paging facts.
    #[serde(borrow)]
    pub entity: Option<MonoEntity<&'a RawValue>>,
    /// An error the provider reports instead of a result.
    pub error: Option<serde_json::Value>,
}

/// `entity`: one page (or, with `not_paginated`, all) of an account's transactions.
#[derive(Debug, Deserialize)]
pub(crate) struct MonoEntity<R> {
    /// The records, each kept as its exact JSON (`&RawValue`, borrowed from the body) so a bad
    /// one can be named and the raw record kept; typed only in [`decode_transactions_floor`].
    pub transactions: Option<Vec<R>>,
    /// Total records in the account (for the query), number or numeric string.
    pub total: Option<MonoScalar>,
    /// The previous page: `""` on the first page, else a number.
    #[allow(dead_code)] // read for tolerance only: it must parse, its value is not needed
    pub previous_page: Option<MonoScalar>,
    /// The next page: a number, or `""`/`null`/absent on the last page.
    pub next_page: Option<MonoScalar>,
    /// Total pages, number or numeric string.
    pub total_pages: Option<MonoScalar>,
    /// This page's number, number or numeric string.
    pub current_page: Option<MonoScalar>,
}

/// One record of `entity.transactions`, with every field optional so the mapping can name the
/// one that is missing or wrong.
#[derive(Debug, Deserialize)]
pub(crate) struct MonoTransaction {
    /// The vendor's id: a number (`1454`) or a string.
    pub id: Option<MonoScalar>,
    /// Booking date, `YYYY-MM-DD`.
    pub transaction_date: Option<String>,
    /// Value date, `YYYY-MM-DD`.
    pub value_date: Option<String>,
    /// `debit` or `credit`, any letter case.
    pub trans_type: Option<String>,
    /// The bank's name (anything but a string is reported and dropped by the mapping).
    pub bank_name: Option<MonoScalar>,
    /// Decimal string (`"200.00"`, `"1,200.50"`) or JSON number.
    pub amount: Option<MonoScalar>,
    /// Decimal string or JSON number; the docs show `"0"` on every record.
    pub available_balance: Option<MonoScalar>,
    /// The bank's reference; the docs show `"0"`.
    pub reference: Option<MonoScalar>,
    /// The bank's description.
    pub narration: Option<String>,
}

/// A JSON scalar kept as text: a string's content, a number's exact literal, or anything else
/// (a boolean, an object) as its JSON text so the mapping can name the field it is wrong in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MonoScalar {
    /// A JSON string's content.
    Text(String),
    /// A JSON number's literal text (`200.5`, `1454`, `0.30000000000000004`).
    Number(String),
    /// Any other JSON value, as its text (`true`, `{}`); `null` is `None` around this type.
    Other(String),
}

impl<'de> Deserialize<'de> for MonoScalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Going through the raw text is what keeps numbers away from binary floating point.
        let raw = <Box<RawValue>>::deserialize(d)?;
        let text = raw.get().trim();
        match text.as_bytes().first() {
            Some(b'"') => serde_json::from_str::<String>(text)
                .map(MonoScalar::Text)
                .map_err(de::Error::custom),
            Some(b'-' | b'0'..=b'9') => Ok(MonoScalar::Number(text.to_owned())),
            _ => Ok(MonoScalar::Other(text.to_owned())),
        }
    }
}

/// The floor the normalization is measured against (`benches/normalize.rs`): an
/// `account_transactions` body decoded by `serde_json` in one pass into these same wire types,
/// records typed directly (no record read twice, no raw record kept, no mapping). Returns the
/// number of records.
pub(crate) fn decode_transactions_floor(body: &[u8]) -> Result<usize, serde_json::Error> {
    let envelope: MonoEnvelope<MonoTransaction> =
        serde_json::from_str(std::str::from_utf8(body).map_err(serde::de::Error::custom)?)?;
    Ok(envelope
        .entity
        .and_then(|entity| entity.transactions)
        .map_or(0, |records| records.len()))
}

/// Just a record's id, to name a record whose other fields do not even parse.
#[derive(Debug, Deserialize)]
pub(crate) struct MonoRecordId {
    /// The vendor's id.
    pub id: Option<MonoScalar>,
}
