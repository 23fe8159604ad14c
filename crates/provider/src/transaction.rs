//! The canonical transaction and its opaque gateway id.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use time::Date;

use crate::Money;

/// Which way money moved, seen from the account holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Money left the account.
    Debit,
    /// Money came into the account.
    Credit,
}

impl Direction {
    /// `"debit"` or `"credit"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Direction::Debit => "debit",
            Direction::Credit => "credit",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Direction {
    type Err = String;
    /// Reads `debit` / `credit` in any letter case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("debit") {
            Ok(Direction::Debit)
        } else if s.eq_ignore_ascii_case("credit") {
            Ok(Direction::Credit)
        } else {
            let other = s.to_ascii_lowercase();
            Err(format!("expected debit or credit, got {other:?}"))
        }
    }
}

/// The gateway's id of a transaction: opaque to callers, it encodes the provider instance and
/// the provider's own id, so `GET /v1/transactions/{id}` can route without a provider argument.
///
/// The text form is `txn_` followed by the unpadded URL-safe base64 of `provider \x1f vendor_id`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId {
    provider: Arc<str>,
    provider_id: Arc<str>,
}

/// Why a text is not a gateway transaction id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransactionIdError {
    /// Not `txn_` followed by base64url: malformed.
    #[error("not a gateway transaction id: {0}")]
    Malformed(&'static str),
    /// Well formed, but naming no transaction of any provider (a cut or edited id).
    #[error("it names no transaction (was it cut or changed?)")]
    NamesNothing,
}

const ID_PREFIX: &str = "txn_";
const ID_SEPARATOR: char = '\u{1f}';

impl TransactionId {
    /// The id of `provider_id` at the provider instance `provider`.
    pub fn new(provider: impl Into<Arc<str>>, provider_id: impl Into<Arc<str>>) -> Self {
        TransactionId {
            provider: provider.into(),
            provider_id: provider_id.into(),
        }
    }

    /// The provider instance name.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The provider's own id of the transaction.
    pub fn provider_id(&self) -> &str {
        &self.provider_id
    }
}

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let raw = format!("{}{ID_SEPARATOR}{}", self.provider, self.provider_id);
        write!(f, "{ID_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw))
    }
}

impl fmt::Debug for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransactionId({}:{})", self.provider, self.provider_id)
    }
}

impl FromStr for TransactionId {
    type Err = TransactionIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let body = s
            .strip_prefix(ID_PREFIX)
            .ok_or(TransactionIdError::Malformed("it does not start with txn_"))?;
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| {
            TransactionIdError::Malformed(
                "the part after txn_ is not base64url (A-Z, a-z, 0-9, - and _, a whole number of characters)",
            )
        })?;
        // Decoded, it must be `provider \x1f id`; anything else is a damaged id.
        let raw = String::from_utf8(bytes).map_err(|_| TransactionIdError::NamesNothing)?;
        let (provider, provider_id) = raw
            .split_once(ID_SEPARATOR)
            .ok_or(TransactionIdError::NamesNothing)?;
        if provider.is_empty() || provider_id.is_empty() {
            return Err(TransactionIdError::NamesNothing);
        }
        Ok(TransactionId::new(provider, provider_id))
    }
}

impl Serialize for TransactionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TransactionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One bank transaction in the canonical shape, whatever provider it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// The gateway id (provider instance + provider id).
    pub id: TransactionId,
    /// The provider instance that supplied it (shared by the records of a page, and with the
    /// id's provider).
    pub provider: Arc<str>,
    /// The provider's own id of the transaction.
    pub provider_transaction_id: String,
    /// The provider's id of the account.
    pub account_id: String,
    /// The provider's id of the customer, when known.
    pub customer_id: Option<String>,
    /// Debit or credit.
    pub direction: Direction,
    /// The amount moved: always positive; `direction` carries the sign.
    pub amount: Money,
    /// The account balance after the transaction, when the provider says.
    pub balance_after: Option<Money>,
    /// The date the transaction was booked (no timezone is invented).
    pub booked_on: Date,
    /// The value (cleared) date, when known.
    pub value_on: Option<Date>,
    /// The bank's description of the transaction.
    pub narration: String,
    /// The bank's reference, when there is one.
    pub reference: Option<String>,
    /// The bank's name, when known.
    pub bank: Option<String>,
    /// The vendor's record exactly as received, kept for `include=raw`.
    pub raw: Option<RawRecord>,
}

/// A vendor's record exactly as received (cheap to clone, compared by its text).
///
/// Its text is always one complete JSON value: it comes from a `serde_json` value, from text
/// checked here, or from text `serde_json` has just read whole ([`RawRecord::from_read_text`]).
#[derive(Clone)]
pub struct RawRecord(Arc<str>);

impl RawRecord {
    /// Keeps `value` as the raw record.
    pub fn from_value(value: &serde_json::Value) -> RawRecord {
        // Serializing a `Value` cannot fail (its keys are strings); the default is `null`.
        RawRecord(Arc::from(
            serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned()),
        ))
    }

    /// Keeps a JSON text as the raw record; `None` when it is not valid JSON.
    pub fn from_json(text: String) -> Option<RawRecord> {
        serde_json::value::RawValue::from_string(text)
            .ok()
            .map(|raw| RawRecord(Arc::from(raw.get())))
    }

    /// Keeps a copy of a raw value the adapter already holds: no second validation of its text
    /// (what [`RawRecord::from_json`] would do), only a copy of its text.
    pub fn from_raw(raw: &serde_json::value::RawValue) -> RawRecord {
        RawRecord(Arc::from(raw.get()))
    }

    /// Keeps a copy of the exact text of a value `serde_json` has just read whole (the span a
    /// [`JsonCursor`](crate::json_walk::JsonCursor) read gives), without reading it once more.
    ///
    /// The text is checked again only if the record is written out ([`Serialize`]), which
    /// refuses a text that is not one JSON value rather than write it.
    pub fn from_read_text(text: &str) -> RawRecord {
        RawRecord(Arc::from(text))
    }

    /// The record's JSON text.
    pub fn get(&self) -> &str {
        &self.0
    }
}

impl PartialEq for RawRecord {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl fmt::Debug for RawRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl Serialize for RawRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Written as the JSON it is, not as a string; `serde_json` takes raw JSON only as a
        // `RawValue`, which it checks.
        let raw: &serde_json::value::RawValue =
            serde_json::from_str(self.get()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for RawRecord {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
        Ok(RawRecord(Arc::from(raw.get())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_value_is_kept_exactly_as_from_its_text() {
        let text = r#"{ "id": 1, "amount": 0.30000000000000004, "note": "caf\u00e9" }"#;
        let raw: &serde_json::value::RawValue = serde_json::from_str(text).unwrap();
        let kept = RawRecord::from_raw(raw);
        assert_eq!(kept.get(), text);
        assert_eq!(Some(kept), RawRecord::from_json(text.to_owned()));
    }

    #[test]
    fn a_read_text_is_written_out_as_the_json_it_is_and_never_as_anything_else() {
        let text = r#"{ "id": 1, "amount": 0.30000000000000004 }"#;
        let kept = RawRecord::from_read_text(text);
        assert_eq!(kept.get(), text);
        assert_eq!(serde_json::to_string(&kept).unwrap(), text);
        assert_eq!(
            serde_json::to_string(&[&kept]).unwrap(),
            format!("[{text}]")
        );
        let back: RawRecord = serde_json::from_str(&serde_json::to_string(&kept).unwrap()).unwrap();
        assert_eq!(back, kept);
        // A text that is not one JSON value is refused rather than written.
        assert!(serde_json::to_string(&RawRecord::from_read_text("{\"id\":")).is_err());
        assert!(serde_json::to_string(&RawRecord::from_read_text("1 2")).is_err());
    }

    #[test]
    fn transaction_id_round_trips() {
        for (provider, vendor) in [
            ("okra", "5f3c1b2a9d"),
            ("mono-eu", "1454"),
            ("p", "weird id/with?chars&\u{1f}inside"),
            ("okra", "ünïcode"),
        ] {
            let id = TransactionId::new(provider, vendor);
            let text = id.to_string();
            assert!(text.starts_with("txn_"));
            assert!(
                text[4..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            let back: TransactionId = text.parse().unwrap();
            assert_eq!(back.provider(), provider);
            assert_eq!(back.provider_id(), vendor);
        }
    }

    #[test]
    fn malformed_ids_are_errors_not_panics() {
        for text in [
            "",
            "txn_",
            "abc",
            "txn_!!!",
            "txn_AAAA",
            "txn_b2tyYQ",
            "txn_",
        ] {
            assert!(text.parse::<TransactionId>().is_err(), "{text}");
        }
    }

    #[test]
    fn malformed_ids_say_what_is_wrong_in_the_callers_terms() {
        let why = |text: &str| text.parse::<TransactionId>().unwrap_err();
        assert!(why("abc").to_string().contains("does not start with txn_"));
        assert!(why("txn_!!!").to_string().contains("not base64url"));
        // "\xff\xee" (not UTF-8) and "oky" (no separator) both name nothing, in those words.
        for damaged in ["txn__-4", "txn_b2t5"] {
            assert_eq!(why(damaged), TransactionIdError::NamesNothing, "{damaged}");
            assert!(!why(damaged).to_string().contains("UTF"), "{damaged}");
        }
    }

    #[test]
    fn direction_parses_any_case() {
        assert_eq!("DEBIT".parse(), Ok(Direction::Debit));
        assert_eq!(" Credit ".parse(), Ok(Direction::Credit));
        assert!("refund".parse::<Direction>().is_err());
    }
}
