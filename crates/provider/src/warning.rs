//! Record warnings: what a provider page held that could not be read, reported, never dropped.
//!
//! An adapter maps every record of a page on its own. A record that cannot be mapped is left
//! out of the page and reported as a [`RecordWarning`] with [`WarningCode::RecordSkipped`] (or
//! [`WarningCode::CurrencyMismatch`]); an ancillary field that does not parse (a balance, a value
//! date, a bank name) is set to `None` on a record that is kept, and reported as
//! [`WarningCode::FieldIgnored`]. The gateway passes them on to the caller, or, when the caller
//! asked for `strict=true`, refuses the listing.

use serde::{Deserialize, Serialize};

use crate::MappingError;

/// The longest raw value a warning carries (longer ones are cut, with an ellipsis).
pub const RAW_VALUE_MAX_CHARS: usize = 200;

/// What happened to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningCode {
    /// The record could not be mapped and is not in the listing.
    RecordSkipped,
    /// The record's amount is in another currency than the account's: it is not in the listing.
    CurrencyMismatch,
    /// An ancillary field did not parse: it is `null` and the record is kept.
    FieldIgnored,
}

impl WarningCode {
    /// The stable machine-readable code (`record_skipped`, `currency_mismatch`, `field_ignored`).
    pub fn as_str(&self) -> &'static str {
        match self {
            WarningCode::RecordSkipped => "record_skipped",
            WarningCode::CurrencyMismatch => "currency_mismatch",
            WarningCode::FieldIgnored => "field_ignored",
        }
    }

    /// Whether the record is left out of the listing (rather than kept with a field dropped).
    pub fn excludes_record(&self) -> bool {
        !matches!(self, WarningCode::FieldIgnored)
    }
}

/// One record (or one field of a kept record) that a provider page held and that could not be
/// read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecordWarning {
    /// What happened to the record.
    pub code: WarningCode,
    /// The provider's id of the record, or its position (`#3 of page 2`) when it has none.
    pub record: String,
    /// The field at fault (`amount`, `available_balance`, `record` for the whole record).
    pub field: String,
    /// Why it could not be read.
    pub reason: String,
    /// The raw JSON value of the field, when known (cut at [`RAW_VALUE_MAX_CHARS`]).
    pub raw_value: Option<String>,
}

impl RecordWarning {
    /// A record left out because it could not be mapped.
    pub fn skipped(error: MappingError) -> RecordWarning {
        let code = if error.currency_mismatch {
            WarningCode::CurrencyMismatch
        } else {
            WarningCode::RecordSkipped
        };
        RecordWarning {
            code,
            record: error.record,
            field: error.field.to_owned(),
            reason: error.reason,
            raw_value: error.raw_value.map(|r| cut(&r)),
        }
    }

    /// A kept record whose ancillary `field` could not be read and was set to `None`.
    pub fn field_ignored(
        record: impl Into<String>,
        field: &str,
        reason: impl Into<String>,
        raw_value: Option<&str>,
    ) -> RecordWarning {
        RecordWarning {
            code: WarningCode::FieldIgnored,
            record: record.into(),
            field: field.to_owned(),
            reason: reason.into(),
            raw_value: raw_value.map(cut),
        }
    }
}

impl std::fmt::Display for RecordWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: record {}, field {}: {}",
            self.code.as_str(),
            self.record,
            self.field,
            self.reason
        )
    }
}

fn cut(raw: &str) -> String {
    match raw.char_indices().nth(RAW_VALUE_MAX_CHARS) {
        Some((at, _)) => format!("{}…", &raw[..at]),
        None => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skipped_record_keeps_the_mapping_error_and_a_cut_raw_value() {
        let long = "9".repeat(500);
        let w = RecordWarning::skipped(
            MappingError::new("tx1", "amount", "not a decimal number").with_raw_value(&long),
        );
        assert_eq!(w.code, WarningCode::RecordSkipped);
        assert_eq!((w.record.as_str(), w.field.as_str()), ("tx1", "amount"));
        let raw = w.raw_value.unwrap_or_default();
        assert_eq!(raw.chars().count(), RAW_VALUE_MAX_CHARS + 1);
        assert!(raw.ends_with('…'));
        assert!(w.code.excludes_record());
        let mismatch = RecordWarning::skipped(
            MappingError::new("tx2", "amount", "USD").as_currency_mismatch(),
        );
        assert_eq!(mismatch.code.as_str(), "currency_mismatch");
        let kept = RecordWarning::field_ignored("tx3", "value_date", "bad", Some("\"x\""));
        assert!(!kept.code.excludes_record());
        assert_eq!(
            kept.to_string(),
            "field_ignored: record tx3, field value_date: bad"
        );
    }
}
