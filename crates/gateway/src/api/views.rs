//! The API's JSON: how canonical transactions and pages look on the wire.
//!
//! Serialization is written out here (not derived from the `provider` crate) so the public JSON
//! changes only when this file does. The `*Schema` types document the same shapes in OpenAPI.

use provider::{Money, RecordWarning, Transaction};
use serde::Serialize as DeriveSerialize;
use serde::ser::{Serialize, SerializeStruct, Serializer};
use utoipa::ToSchema;

/// A transaction as the API shows it; `raw` only when asked for.
pub struct TxView<'a> {
    /// The transaction.
    pub tx: &'a Transaction,
    /// Whether to include the vendor's record.
    pub include_raw: bool,
}

struct MoneyView<'a>(&'a Money);

impl Serialize for MoneyView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Money", 3)?;
        st.serialize_field("minor", &self.0.minor())?;
        st.serialize_field("currency", self.0.currency().code())?;
        st.serialize_field("value", &self.0.to_decimal_string())?;
        st.end()
    }
}

impl Serialize for TxView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let tx = self.tx;
        let mut st = s.serialize_struct("Transaction", 14)?;
        st.serialize_field("id", &tx.id)?;
        st.serialize_field("provider", &tx.provider)?;
        st.serialize_field("provider_transaction_id", &tx.provider_transaction_id)?;
        st.serialize_field("account_id", &tx.account_id)?;
        st.serialize_field("customer_id", &tx.customer_id)?;
        st.serialize_field("direction", &tx.direction)?;
        st.serialize_field("amount", &MoneyView(&tx.amount))?;
        st.serialize_field("balance_after", &tx.balance_after.as_ref().map(MoneyView))?;
        st.serialize_field("booked_on", &tx.booked_on.to_string())?;
        st.serialize_field("value_on", &tx.value_on.map(|d| d.to_string()))?;
        st.serialize_field("narration", &tx.narration)?;
        st.serialize_field("reference", &tx.reference)?;
        st.serialize_field("bank", &tx.bank)?;
        if self.include_raw {
            st.serialize_field("raw", &tx.raw)?;
        }
        st.end()
    }
}

/// A record warning as the API shows it.
pub struct WarningView<'a>(pub &'a RecordWarning);

impl Serialize for WarningView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let w = self.0;
        let mut st = s.serialize_struct("RecordWarning", 5)?;
        st.serialize_field("code", w.code.as_str())?;
        st.serialize_field("provider_transaction_id", &w.record)?;
        st.serialize_field("field", &w.field)?;
        st.serialize_field("reason", &w.reason)?;
        st.serialize_field("raw_value", &w.raw_value)?;
        st.end()
    }
}

/// A page of transactions.
#[derive(DeriveSerialize)]
pub struct ListBody<'a> {
    /// The page's transactions.
    pub data: Vec<TxView<'a>>,
    /// Where this page sits.
    pub pagination: PaginationSchema,
    /// What the provider's data held that could not be read (the same on every page).
    pub warnings: Vec<WarningView<'a>>,
}

/// What happened to a provider record that could not be read.
#[derive(ToSchema)]
#[schema(as = RecordWarningCode)]
#[allow(dead_code)]
pub enum WarningCodeSchema {
    /// The record could not be mapped: it is not in `data` and not counted in `total`.
    #[schema(rename = "record_skipped")]
    RecordSkipped,
    /// The record's amount names another currency than the account's: it is left out.
    #[schema(rename = "currency_mismatch")]
    CurrencyMismatch,
    /// An ancillary field (balance, value date, bank name) did not parse: it is `null` and the
    /// record is kept.
    #[schema(rename = "field_ignored")]
    FieldIgnored,
}

/// A provider record (or one field of it) that could not be read.
#[derive(ToSchema)]
#[schema(as = RecordWarning, example = json!({
    "code": "record_skipped",
    "provider_transaction_id": "65f3c1b2a9d0000000000002",
    "field": "debit",
    "reason": "\"0.005\" has more decimals than NGN allows (2)",
    "raw_value": "0.005"
}))]
#[allow(dead_code)]
pub struct WarningSchema {
    /// What happened to the record.
    code: WarningCodeSchema,
    /// The provider's id of the record, or its position (`#3 of page 2`) when it has none.
    provider_transaction_id: String,
    /// The vendor's field at fault (`record` for the whole record).
    field: String,
    /// Why it could not be read.
    reason: String,
    /// The field's raw JSON value as the provider sent it (cut at 200 characters).
    raw_value: Option<String>,
}

/// An exact amount.
#[derive(ToSchema)]
#[schema(as = Money, example = json!({"minor": 5250, "currency": "NGN", "value": "52.50"}))]
#[allow(dead_code)]
pub struct MoneySchema {
    /// Integer minor units (kobo for NGN).
    minor: i64,
    /// ISO 4217 code.
    currency: String,
    /// The same amount as a decimal string with the currency's decimals.
    value: String,
}

/// Which way money moved.
#[derive(ToSchema)]
#[schema(as = Direction)]
#[allow(dead_code)]
pub enum DirectionSchema {
    /// Money out.
    #[schema(rename = "debit")]
    Debit,
    /// Money in.
    #[schema(rename = "credit")]
    Credit,
}

/// A bank transaction in the canonical shape, whatever provider supplied it.
#[derive(ToSchema)]
#[schema(as = Transaction, example = json!({
    "id": "txn_b2tyYR82NWYzYzFiMmE5ZDAwMDAwMDAwMDAwMDAx",
    "provider": "okra",
    "provider_transaction_id": "65f3c1b2a9d0000000000001",
    "account_id": "65f3c1b2a9d0000000000a01",
    "customer_id": "65f3c1b2a9d0000000000c01",
    "direction": "debit",
    "amount": {"minor": 5250, "currency": "NGN", "value": "52.50"},
    "balance_after": null,
    "booked_on": "2026-10-30",
    "value_on": "2026-10-30",
    "narration": "POS PURCHASE SHOPRITE LEKKI",
    "reference": "FT26303ABC123",
    "bank": "Guaranty Trust Bank"
}))]
#[allow(dead_code)]
pub struct TransactionSchema {
    /// Gateway id: opaque, stable, usable with `GET /v1/transactions/{id}`.
    id: String,
    /// The provider instance that supplied it.
    provider: String,
    /// The provider's own id.
    provider_transaction_id: String,
    /// The provider's account id.
    account_id: String,
    /// The provider's customer id, when known.
    customer_id: Option<String>,
    /// Debit or credit.
    direction: DirectionSchema,
    /// Always positive; `direction` carries the sign.
    amount: MoneySchema,
    /// Balance after the transaction, when the provider reports one.
    balance_after: Option<MoneySchema>,
    /// Booking date.
    #[schema(format = Date)]
    booked_on: String,
    /// Value (cleared) date, when known.
    #[schema(format = Date)]
    value_on: Option<String>,
    /// The bank's description.
    narration: String,
    /// The bank's reference.
    reference: Option<String>,
    /// The bank's name.
    bank: Option<String>,
    /// The vendor's record as received (only with `include=raw`).
    #[schema(value_type = Option<Object>)]
    raw: Option<serde_json::Value>,
}

/// Where a page sits in the whole listing.
#[derive(Debug, DeriveSerialize, ToSchema)]
#[schema(as = Pagination, example = json!({
    "limit": 50,
    "page": 1,
    "total": 128,
    "total_pages": 3,
    "has_more": true,
    "next_cursor": "AQAAAAAAAAAHAAAAMhLr0x5v1c2aH0e8kQ3b7LrT1wq9sN4mZ2XcYwE",
    "excluded": 0
}))]
pub struct PaginationSchema {
    /// Items per page.
    pub limit: u32,
    /// This page's number (1-based).
    pub page: u32,
    /// Items in the whole listing (after filters).
    pub total: u64,
    /// Pages in the whole listing.
    pub total_pages: u64,
    /// Whether another page follows.
    pub has_more: bool,
    /// Cursor for the next page (null on the last page).
    pub next_cursor: Option<String>,
    /// Provider records of this listing's scope that could not be read and are left out: not in
    /// any page, not counted in `total` (each has a `warnings` entry).
    pub excluded: u64,
}

/// A page of transactions.
#[derive(ToSchema)]
#[schema(as = TransactionList)]
#[allow(dead_code)]
pub struct ListSchema {
    /// The page's transactions.
    data: Vec<TransactionSchema>,
    /// Where this page sits.
    pagination: PaginationSchema,
    /// Provider records (or fields of records) that could not be read, for the whole listing
    /// (the same on every page; empty when all were read; at most the first 100, the
    /// `x-record-warnings` header counts them all). With `strict=true` any warning is a 502
    /// instead.
    warnings: Vec<WarningSchema>,
}

/// One transaction.
#[derive(ToSchema)]
#[schema(as = TransactionEnvelope)]
#[allow(dead_code)]
pub struct ItemSchema {
    /// The transaction.
    data: TransactionSchema,
}
