//! Okra's wire format, exactly as its docs show it, and no further.
//!
//! These types own the JSON shapes of Okra's responses and request bodies: the
//! `{status, message, data}` envelope, the pagination object and the Transaction record. They
//! are tolerant of what the docs show varying (numbers or strings, `null` or absent) and ignore
//! every field the adapter does not read (`ner`, `analyzed`, `branch`, `ner_v`, ...). They must
//! never leave this crate and never interpret a value: turning them into the canonical model is
//! the job of [`crate::mapping`].

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

/// Okra's response envelope: `{"status": "success" | "error", "message": "...", "data": ...}`.
///
/// `data` is kept raw: its shape depends on the endpoint, and an error envelope has none. (`D` is
/// only ever something else in [`decode_transactions_floor`].)
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "D: Deserialize<'de>"))]
pub(crate) struct OkraEnvelope<D = Box<RawValue>> {
    /// `"success"` or `"error"` (absent is read as success when `data` is there).
    #[serde(default)]
    pub status: Option<String>,
    /// The vendor's human-readable message.
    #[serde(default)]
    pub message: Option<String>,
    /// The endpoint's payload.
    #[serde(default)]
    pub data: Option<D>,
}

impl<D> OkraEnvelope<D> {
    /// Whether the envelope reports an error (`status: "error"`, any letter case).
    pub fn is_error(&self) -> bool {
        is_error_status(self.status.as_deref())
    }
}

/// Whether an envelope's `status` reports an error (`"error"`, any letter case).
pub(crate) fn is_error_status(status: Option<&str>) -> bool {
    status.is_some_and(|s| s.trim().eq_ignore_ascii_case("error"))
}

/// The `data` of every transaction listing endpoint: pagination plus the records (`R` is only
/// ever something else in [`decode_transactions_floor`]).
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "R: Deserialize<'de>"))]
pub(crate) struct OkraTransactionsData<R = Box<RawValue>> {
    /// Paging facts; absent is tolerated (one page is then assumed).
    #[serde(default)]
    pub pagination: Option<OkraPagination>,
    /// The records, each kept raw so that one bad record is reported by itself.
    #[serde(default, deserialize_with = "null_as_default")]
    pub transaction: Vec<R>,
}

/// The floor the normalization is measured against (`benches/normalize.rs`): a transactions body
/// decoded by `serde_json` in one pass into these same wire types, records typed directly (no
/// record read twice, no raw record kept, no mapping). Returns the number of records.
pub(crate) fn decode_transactions_floor(body: &[u8]) -> Result<usize, serde_json::Error> {
    let envelope: OkraEnvelope<OkraTransactionsData<OkraTransaction>> =
        serde_json::from_str(std::str::from_utf8(body).map_err(serde::de::Error::custom)?)?;
    Ok(envelope.data.map_or(0, |data| data.transaction.len()))
}

/// Okra's pagination object (mongoose-paginate style). Every number may come as a JSON number,
/// a numeric string, `null` or not at all.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OkraPagination {
    /// Total records matching the request.
    #[serde(default, deserialize_with = "flex_u64")]
    pub total_docs: Option<u64>,
    /// The page size used.
    #[serde(default, deserialize_with = "flex_u64")]
    pub limit: Option<u64>,
    /// Whether a next page exists.
    #[serde(default, deserialize_with = "flex_bool")]
    pub has_next_page: Option<bool>,
    /// The current page (1-based).
    #[serde(default, deserialize_with = "flex_u64")]
    pub page: Option<u64>,
    /// Total pages.
    #[serde(default, deserialize_with = "flex_u64")]
    pub total_pages: Option<u64>,
    /// The next page's number; `null`, absent, `""` or `false` on the last page (`next_page`
    /// is read too: some mirrors of the API write it snake_case).
    #[serde(default, alias = "next_page", deserialize_with = "flex_u64")]
    pub next_page: Option<u64>,
}

/// One Okra Transaction record, reading only the fields the mapping uses.
#[derive(Debug, Deserialize)]
pub(crate) struct OkraTransaction {
    /// "The transaction unique id".
    #[serde(default)]
    pub id: Option<OkraScalar>,
    /// "The unique transaction identifier" (Mongo id); the fallback for `id`.
    #[serde(default, rename = "_id")]
    pub mongo_id: Option<OkraScalar>,
    /// Okra's analysis of the bank's description; `desc` is the description itself.
    #[serde(default)]
    pub notes: Option<OkraNotes>,
    /// ISO 8601 booking timestamp (or date).
    #[serde(default)]
    pub trans_date: Option<OkraScalar>,
    /// ISO 8601 value timestamp (or date).
    #[serde(default)]
    pub cleared_date: Option<OkraScalar>,
    /// The booking date as the bank wrote it.
    #[serde(default)]
    pub unformatted_trans_date: Option<OkraScalar>,
    /// The value date as the bank wrote it.
    #[serde(default)]
    pub unformatted_cleared_date: Option<OkraScalar>,
    /// Amount debited, in naira: a JSON number (or, defensively, a string); `null` or absent.
    /// Kept raw, so it never passes through binary floating point.
    #[serde(default)]
    pub debit: Option<Box<RawValue>>,
    /// Amount credited, like `debit`.
    #[serde(default)]
    pub credit: Option<Box<RawValue>>,
    /// The bank's reference.
    #[serde(default, rename = "ref")]
    pub reference: Option<OkraScalar>,
    /// The bank: an object with `name`, or a plain name.
    #[serde(default)]
    pub bank: Option<OkraRef>,
    /// The customer: an object with `_id`, or a plain id string.
    #[serde(default)]
    pub customer: Option<OkraRef>,
    /// The account: an object with `_id`, or a plain id string.
    #[serde(default)]
    pub account: Option<OkraRef>,
    /// Not documented; read when present so a non-naira record is never taken for naira.
    #[serde(default)]
    pub currency: Option<String>,
}

/// A string-ish value that Okra may also send as a number (ids, references, dates).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum OkraScalar {
    /// A string.
    Text(String),
    /// A whole number.
    Int(i64),
    /// A large whole number.
    UInt(u64),
}

impl OkraScalar {
    /// The value as text, trimmed; `None` when blank.
    pub fn text(&self) -> Option<String> {
        let text = match self {
            OkraScalar::Text(s) => s.trim().to_owned(),
            OkraScalar::Int(n) => n.to_string(),
            OkraScalar::UInt(n) => n.to_string(),
        };
        (!text.is_empty()).then_some(text)
    }
}

/// Okra's `notes` object (only `desc` is read), or a plain description string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OkraNotes {
    /// `{"desc": "...", "topics": [...], ...}`.
    Object {
        /// The bank's description of the transaction.
        #[serde(default)]
        desc: Option<String>,
    },
    /// A bare description.
    Text(String),
}

/// A reference to another Okra object: `{"_id": "...", "name": "..."}` or a plain string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OkraRef {
    /// The documented object form.
    Object {
        /// The object's id.
        #[serde(default, rename = "_id")]
        id: Option<OkraScalar>,
        /// The object's name.
        #[serde(default)]
        name: Option<String>,
    },
    /// A plain string: an id for accounts and customers, a name for banks.
    Text(String),
    /// Anything else (a number, an array): no id and no name; the mapping reports it.
    Other(serde_json::Value),
}

impl OkraRef {
    /// The referenced id (the object's `_id`, or the plain string), when not blank.
    pub fn id(&self) -> Option<String> {
        match self {
            OkraRef::Object { id, .. } => id.as_ref().and_then(OkraScalar::text),
            OkraRef::Text(s) => non_blank(s),
            OkraRef::Other(_) => None,
        }
    }

    /// The referenced name (the object's `name`, or the plain string), when not blank.
    pub fn name(&self) -> Option<String> {
        match self {
            OkraRef::Object { name, .. } => name.as_deref().and_then(non_blank),
            OkraRef::Text(s) => non_blank(s),
            OkraRef::Other(_) => None,
        }
    }
}

/// The `data` of `POST /transactions/refresh`.
#[derive(Debug, Deserialize)]
pub(crate) struct OkraRefreshData {
    /// Where the extraction's progress and result are read.
    #[serde(default)]
    pub callback_url: Option<String>,
}

/// The `data` of a refresh callback: progress booleans (or, tolerated, a status string).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct OkraCallbackData {
    /// `true` once the extraction is done.
    #[serde(default, deserialize_with = "flex_bool")]
    pub completed: Option<bool>,
    /// `true` while the extraction runs.
    #[serde(default, deserialize_with = "flex_bool")]
    pub running: Option<bool>,
    /// Tolerated: a progress word such as `"completed"`, `"done"`, `"processing"`, `"failed"`.
    #[serde(default)]
    pub status: Option<String>,
}

/// Body of `POST /transactions/getByAccount`.
#[derive(Debug, Serialize)]
pub(crate) struct OkraByAccountRequest<'a> {
    /// Okra's account id.
    pub account: &'a str,
    /// 1-based page.
    pub page: u32,
    /// Page size (1..=100).
    pub limit: u32,
}

/// Body of `POST /transactions/getByNuban`.
#[derive(Debug, Serialize)]
pub(crate) struct OkraByNubanRequest<'a> {
    /// The 10-digit account number.
    pub nuban: &'a str,
    /// 1-based page.
    pub page: u32,
    /// Page size (1..=100).
    pub limit: u32,
}

/// Body of `POST /transactions/getByCustomerDate`.
#[derive(Debug, Serialize)]
pub(crate) struct OkraByCustomerDateRequest<'a> {
    /// Okra's customer id.
    pub customer_id: &'a str,
    /// First day, `YYYY-MM-DD`.
    pub from: String,
    /// Last day, `YYYY-MM-DD`.
    pub to: String,
    /// 1-based page.
    pub page: u32,
    /// Page size (1..=100).
    pub limit: u32,
}

/// Body of `POST /transactions/getByDate`.
#[derive(Debug, Serialize)]
pub(crate) struct OkraByDateRequest {
    /// First day, `YYYY-MM-DD`.
    pub from: String,
    /// Last day, `YYYY-MM-DD`.
    pub to: String,
    /// 1-based page.
    pub page: u32,
    /// Page size (1..=100).
    pub limit: u32,
}

/// The body of one listing request (serialized as the variant's own body).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum OkraListRequest<'a> {
    /// `getByAccount`.
    Account(OkraByAccountRequest<'a>),
    /// `getByCustomerDate`.
    CustomerDate(OkraByCustomerDateRequest<'a>),
    /// `getByNuban`.
    Nuban(OkraByNubanRequest<'a>),
    /// `getByDate`.
    Date(OkraByDateRequest),
}

/// Body of `POST /transactions/getById`.
#[derive(Debug, Serialize)]
pub(crate) struct OkraByIdRequest<'a> {
    /// Okra's transaction id.
    pub id: &'a str,
}

/// Body of `POST /transactions/refresh`.
#[derive(Debug, Serialize)]
pub(crate) struct OkraRefreshRequest<'a> {
    /// Okra's account id.
    pub account_id: &'a str,
}

fn non_blank(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// What a loosely typed JSON number may arrive as.
#[derive(Deserialize)]
#[serde(untagged)]
enum FlexNumber {
    UInt(u64),
    Int(i64),
    Text(String),
    Other(serde::de::IgnoredAny),
}

/// Reads a count that may be a number, a numeric string, `null`, `false` or garbage; everything
/// that is not a non-negative whole number is `None` (the caller falls back to other facts).
fn flex_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let value = Option::<FlexNumber>::deserialize(d)?;
    Ok(match value {
        Some(FlexNumber::UInt(n)) => Some(n),
        Some(FlexNumber::Int(n)) => u64::try_from(n).ok(),
        Some(FlexNumber::Text(s)) => s.trim().parse().ok(),
        Some(FlexNumber::Other(_)) | None => None,
    })
}

/// What a loosely typed JSON boolean may arrive as.
#[derive(Deserialize)]
#[serde(untagged)]
enum FlexBool {
    Bool(bool),
    Text(String),
    Other(serde::de::IgnoredAny),
}

/// Reads a boolean that may be `true`/`false`, `"true"`/`"false"`, `null` or absent.
fn flex_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let value = Option::<FlexBool>::deserialize(d)?;
    Ok(match value {
        Some(FlexBool::Bool(b)) => Some(b),
        Some(FlexBool::Text(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        Some(FlexBool::Other(_)) | None => None,
    })
}

/// Reads `null` as the type's default (an empty list).
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_numbers_strings_nulls_and_absence() {
        let p: OkraPagination = serde_json::from_str(
            r#"{"totalDocs": "38", "limit": "10", "page": 2, "totalPages": 4,
                "hasNextPage": "true", "nextPage": "3", "prevPage": 1, "pagingCounter": 11}"#,
        )
        .unwrap();
        assert_eq!(p.total_docs, Some(38));
        assert_eq!(p.limit, Some(10));
        assert_eq!(p.page, Some(2));
        assert_eq!(p.total_pages, Some(4));
        assert_eq!(p.has_next_page, Some(true));
        assert_eq!(p.next_page, Some(3));

        let p: OkraPagination =
            serde_json::from_str(r#"{"nextPage": null, "prevPage": null, "page": null}"#).unwrap();
        assert_eq!(p.next_page, None);
        assert_eq!(p.page, None);

        let p: OkraPagination = serde_json::from_str(r#"{"nextPage": false}"#).unwrap();
        assert_eq!(p.next_page, None);
        let p: OkraPagination = serde_json::from_str(r#"{"nextPage": "n/a"}"#).unwrap();
        assert_eq!(p.next_page, None);
        let p: OkraPagination = serde_json::from_str("{}").unwrap();
        assert_eq!(p.total_docs, None);
    }

    #[test]
    fn transaction_list_may_be_null() {
        let d: OkraTransactionsData = serde_json::from_str(r#"{"transaction": null}"#).unwrap();
        assert!(d.transaction.is_empty());
        assert!(d.pagination.is_none());
    }

    #[test]
    fn refs_as_objects_or_strings() {
        let r: OkraRef = serde_json::from_str(r#"{"_id": " a1 ", "name": "Ada"}"#).unwrap();
        assert_eq!(r.id().as_deref(), Some("a1"));
        assert_eq!(r.name().as_deref(), Some("Ada"));
        let r: OkraRef = serde_json::from_str(r#""acc_9""#).unwrap();
        assert_eq!(r.id().as_deref(), Some("acc_9"));
        let r: OkraRef = serde_json::from_str(r#"{"_id": "", "name": ""}"#).unwrap();
        assert_eq!(r.id(), None);
        assert_eq!(r.name(), None);
    }

    #[test]
    fn envelope_status() {
        let e: OkraEnvelope =
            serde_json::from_str(r#"{"status": "error", "message": "bad key"}"#).unwrap();
        assert!(e.is_error());
        assert!(e.data.is_none());
        let e: OkraEnvelope = serde_json::from_str(r#"{"status": "success", "data": {}}"#).unwrap();
        assert!(!e.is_error());
    }
}
