//! Mono's JSON as its documentation and published clients show it: the v2, v1 and legacy
//! answers of `GET .../accounts/{id}/transactions`, the Data Sync answer, and webhook events.
//! Fields are read loosely here (`Value`, raw JSON text for amounts); `mapping` decides what
//! each one means.

use std::fmt;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

/// Any of the three transaction answers (or an error body): v2 puts the records in `data` and
/// the paging in `meta`; v1 nests `{paging, transactions}` in `data`; legacy has `paging` and
/// `data` at the top.
///
/// `data` is `&RawValue` (its shape told apart afterwards), or [`MonoConnectData`] to read the
/// records in the same pass.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "D: Deserialize<'de>"))]
pub(crate) struct MonoConnectEnvelope<D> {
    /// `successful` or `failed` (absent in legacy answers).
    #[serde(default)]
    pub status: Option<Value>,
    /// The vendor's message.
    #[serde(default)]
    pub message: Option<Value>,
    /// The records (v2, legacy) or `{paging, transactions}` (v1).
    #[serde(default)]
    pub data: Option<D>,
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

/// `data` read with the envelope: an array of records (v2, legacy), each borrowed as its exact
/// JSON, or v1's `{paging, transactions}`. Anything else does not deserialize.
#[derive(Debug)]
pub(crate) enum MonoConnectData<'a> {
    /// v2 and legacy.
    Records(Vec<&'a RawValue>),
    /// v1.
    V1(MonoConnectV1Data<'a>),
}

impl<'de: 'a, 'a> Deserialize<'de> for MonoConnectData<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DataVisitor;
        impl<'de> Visitor<'de> for DataVisitor {
            type Value = MonoConnectData<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of transactions or an object with `transactions`")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                // serde_json gives no size hint; a page is at most 100 records.
                let mut records = Vec::with_capacity(seq.size_hint().unwrap_or(100).min(100));
                while let Some(record) = seq.next_element()? {
                    records.push(record);
                }
                Ok(MonoConnectData::Records(records))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                MonoConnectV1Data::deserialize(MapAccessDeserializer::new(map))
                    .map(MonoConnectData::V1)
            }
        }
        d.deserialize_any(DataVisitor)
    }
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

/// A v2 answer with its records typed directly: what [`decode_transactions_floor`] decodes (its
/// fields are decoded for their cost, never read).
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct MonoConnectV2Floor<'a> {
    #[serde(default)]
    status: Option<Value>,
    #[serde(default)]
    message: Option<Value>,
    #[serde(borrow)]
    data: Vec<MonoConnectTransaction<'a>>,
    #[serde(default)]
    meta: Option<MonoConnectPaging>,
}

/// The floor the normalization is measured against (`benches/normalize.rs`): a v2 transactions
/// answer decoded by `serde_json` in one pass into these same wire types, records typed directly
/// (no record read twice, no raw record kept, no mapping). Returns the number of records.
pub(crate) fn decode_transactions_floor(body: &[u8]) -> Result<usize, serde_json::Error> {
    let answer: MonoConnectV2Floor<'_> =
        serde_json::from_str(std::str::from_utf8(body).map_err(serde::de::Error::custom)?)?;
    Ok(answer.data.len())
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
