//! Mono's JSON as its documentation and published clients show it: the v2, v1 and legacy
//! answers of `GET .../accounts/{id}/transactions`, the Data Sync answer, and webhook events.
//! Fields are read loosely here (`Value`, raw JSON text for amounts); `mapping` decides what
//! each one means.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// Any of the three transaction answers (or an error body): v2 puts the records in `data` and
/// the paging in `meta`; v1 nests `{paging, transactions}` in `data`; legacy has `paging` and
/// `data` at the top.
#[derive(Debug, Deserialize)]
pub(crate) struct MonoConnectEnvelope<'a> {
    /// `successful` or `failed` (absent in legacy answers).
    #[serde(default)]
    pub status: Option<Value>,
    /// The vendor's message.
    #[serde(default)]
    pub message: Option<Value>,
    /// The records (v2, legacy) or `{paging, transactions}` (v1).
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
    /// v2 paging.
    #[serde(default)]
    pub meta: Option<MonoConnectPaging>,
    /// Legacy paging.
    #[serde(default)]
    pub paging: Option<MonoConnectPaging>,
}

/// v1's `data`.
#[derive(Debug, Deserialize)]
pub(crate) struct MonoConnectV1Data<'a> {
    /// Its paging.
    #[serde(default)]
    pub paging: Option<MonoConnectPaging>,
    /// Its records.
    #[serde(borrow)]
    pub transactions: Option<Vec<&'a RawValue>>,
}

/// `meta` / `paging`: `next` and `previous` are full URLs or null.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct MonoConnectPaging {
    /// Records in all.
    #[serde(default)]
    pub total: Option<Value>,
    /// This page's number.
    #[serde(default)]
    pub page: Option<Value>,
    /// The next page's URL.
    #[serde(default)]
    pub next: Option<Value>,
}

/// One transaction record (v2 `id`, legacy `_id`).
#[derive(Debug, Deserialize)]
pub(crate) struct MonoConnectTransaction<'a> {
    /// v2 / v1 id.
    #[serde(default)]
    pub id: Option<Value>,
    /// Legacy id.
    #[serde(default, rename = "_id")]
    pub legacy_id: Option<Value>,
    /// The bank's description.
    #[serde(default)]
    pub narration: Option<Value>,
    /// Integer minor units, as JSON text.
    #[serde(borrow, default)]
    pub amount: Option<&'a RawValue>,
    /// `debit` or `credit`.
    #[serde(default, rename = "type")]
    pub direction: Option<Value>,
    /// Balance after, integer minor units, as JSON text.
    #[serde(borrow, default)]
    pub balance: Option<&'a RawValue>,
    /// A UTC timestamp.
    #[serde(default)]
    pub date: Option<Value>,
    /// ISO 4217 code (v2 records may lack it).
    #[serde(default)]
    pub currency: Option<Value>,
}

/// The answer of `POST /accounts/{id}/sync`.
#[derive(Debug, Deserialize)]
pub(crate) struct MonoConnectSync {
    /// `successful` or `failed`.
    #[serde(default)]
    pub status: Option<String>,
    /// `SYNC_SUCCESSFUL`, `REAUTHORISATION_REQUIRED`, `SYNC_ERROR`, `INCOMPLETE_STATEMENT_ERROR`.
    #[serde(default)]
    pub code: Option<String>,
    /// The vendor's message.
    #[serde(default)]
    pub message: Option<String>,
}

/// A webhook delivery: `{"event": "...", "data": {...}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct MonoConnectWebhook {
    /// `mono.events.account_updated`, ...
    pub event: String,
    /// The event's subject.
    #[serde(default)]
    pub data: Option<Value>,
}
