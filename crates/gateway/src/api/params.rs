//! Request parameters: parsed strictly, each failure a 400 problem naming the parameter.

use std::borrow::Cow;

use provider::{DateRange, Direction, TransactionId, TransactionIdError};
use serde::Deserialize;
use time::Date;
use time::macros::format_description;
use utoipa::IntoParams;

use crate::error::ApiError;

/// Largest page a caller may ask for.
pub const MAX_LIMIT: u32 = 100;
/// Page size when the caller names none.
pub const DEFAULT_LIMIT: u32 = 50;
const MAX_PAGE: u32 = 1_000_000;

/// Query parameters of every transaction list (documentation of what [`parse_list`] accepts).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListParams {
    /// Provider instance to ask (see `GET /v1/providers`); the configured default when absent.
    #[param(example = "okra")]
    provider: Option<String>,
    /// First booking date included (`YYYY-MM-DD`).
    #[param(value_type = Option<String>, format = Date, example = "2025-01-01")]
    from: Option<String>,
    /// Last booking date included (`YYYY-MM-DD`), not before `from`.
    #[param(value_type = Option<String>, format = Date, example = "2026-10-31")]
    to: Option<String>,
    /// Only debits or only credits.
    #[param(inline, value_type = Option<DirectionParam>)]
    direction: Option<String>,
    /// Items per page, 1-100.
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<u32>,
    /// 1-based page number (exclusive with `cursor`).
    #[param(minimum = 1, maximum = 1000000)]
    page: Option<u32>,
    /// Opaque cursor from a previous response's `pagination.next_cursor` (exclusive with `page`).
    cursor: Option<String>,
    /// `raw` adds each transaction's vendor record.
    #[param(inline, value_type = Option<IncludeParam>)]
    include: Option<String>,
    /// `true`: refuse the listing (502 `upstream_bad_payload`) when any provider record could not
    /// be read, instead of answering with the readable ones and `warnings`.
    #[param(default = false)]
    strict: Option<bool>,
}

/// Direction filter values.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum DirectionParam {
    /// Money out.
    Debit,
    /// Money in.
    Credit,
}

/// Values of `include`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum IncludeParam {
    /// The vendor's record as received.
    Raw,
}

/// A validated list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    /// The provider named, if any.
    pub provider: Option<String>,
    /// Booking dates.
    pub range: DateRange,
    /// Direction filter.
    pub direction: Option<Direction>,
    /// Page size.
    pub limit: u32,
    /// Page number, when paging by number.
    pub page: Option<u32>,
    /// Cursor, when paging by cursor.
    pub cursor: Option<String>,
    /// Whether to add raw vendor records.
    pub include_raw: bool,
    /// Whether any unreadable provider record fails the listing.
    pub strict: bool,
}

const LIST_PARAMS: [&str; 9] = [
    "strict",
    "provider",
    "from",
    "to",
    "direction",
    "limit",
    "page",
    "cursor",
    "include",
];

/// Parses a list request's query string.
pub fn parse_list(query: &str, require_range: bool) -> Result<ListRequest, ApiError> {
    let pairs = parse_pairs(query, &LIST_PARAMS)?;
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    };

    let from = get("from").map(|v| parse_date("from", v)).transpose()?;
    let to = get("to").map(|v| parse_date("to", v)).transpose()?;
    if let (Some(from), Some(to)) = (from, to)
        && to < from
    {
        return Err(ApiError::invalid(
            "to",
            format!("to ({to}) is before from ({from})"),
        ));
    }
    if require_range {
        if from.is_none() {
            return Err(ApiError::invalid(
                "from",
                "from is required for this listing (YYYY-MM-DD)",
            ));
        }
        if to.is_none() {
            return Err(ApiError::invalid(
                "to",
                "to is required for this listing (YYYY-MM-DD)",
            ));
        }
    }
    let direction = get("direction")
        .map(|v| match v {
            "debit" => Ok(Direction::Debit),
            "credit" => Ok(Direction::Credit),
            other => Err(ApiError::invalid(
                "direction",
                format!("direction must be debit or credit, not {other:?}"),
            )),
        })
        .transpose()?;
    let limit = get("limit")
        .map(|v| parse_int("limit", v, 1, MAX_LIMIT))
        .transpose()?
        .unwrap_or(DEFAULT_LIMIT);
    let page = get("page")
        .map(|v| parse_int("page", v, 1, MAX_PAGE))
        .transpose()?;
    // An empty cursor is no cursor (what a form or a generated client sends for "none").
    let cursor = get("cursor").filter(|c| !c.is_empty()).map(str::to_owned);
    if cursor.is_some() && page.is_some() {
        return Err(ApiError::invalid(
            "cursor",
            "give either cursor or page, not both",
        ));
    }
    let include_raw = parse_include(get("include"))?;
    let strict = match get("strict") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "strict",
                format!("strict must be true or false, not {other:?}"),
            ));
        }
    };
    let provider = get("provider").map(str::to_owned);
    if provider.as_deref() == Some("") {
        return Err(ApiError::invalid("provider", "provider is empty"));
    }
    Ok(ListRequest {
        provider,
        range: DateRange::new(from, to),
        direction,
        limit,
        page,
        cursor,
        include_raw,
        strict,
    })
}

/// Parses `include`: `raw`, or nothing (absent or empty); a comma-separated list is accepted.
pub fn parse_include(value: Option<&str>) -> Result<bool, ApiError> {
    let mut include_raw = false;
    for part in value.unwrap_or_default().split(',').map(str::trim) {
        match part {
            "raw" => include_raw = true,
            "" => {}
            other => {
                return Err(ApiError::invalid(
                    "include",
                    format!("include accepts only \"raw\", not {other:?}"),
                ));
            }
        }
    }
    Ok(include_raw)
}

/// A query parameter's name and its trimmed value, borrowed from the query unless decoded.
pub type Pair<'q> = (Cow<'q, str>, Cow<'q, str>);

/// Parses a query string allowing only `allowed` names, each at most once.
pub fn parse_pairs<'q>(query: &'q str, allowed: &[&str]) -> Result<Vec<Pair<'q>>, ApiError> {
    let mut pairs: Vec<Pair<'q>> = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if !allowed.contains(&key.as_ref()) {
            return Err(ApiError::invalid(
                &key,
                format!("unknown parameter {key:?}; allowed: {}", allowed.join(", ")),
            ));
        }
        if pairs.iter().any(|(k, _)| *k == key) {
            return Err(ApiError::invalid(
                &key,
                format!("{key} is given more than once"),
            ));
        }
        // Borrowed from the query unless it had to be decoded.
        let value = match value {
            Cow::Borrowed(v) => Cow::Borrowed(v.trim()),
            Cow::Owned(v) => Cow::Owned(v.trim().to_owned()),
        };
        pairs.push((key, value));
    }
    Ok(pairs)
}

fn parse_date(name: &str, value: &str) -> Result<Date, ApiError> {
    Date::parse(value, format_description!("[year]-[month]-[day]")).map_err(|_| {
        ApiError::invalid(
            name,
            format!("{name} must be a date YYYY-MM-DD, not {value:?}"),
        )
    })
}

fn parse_int(name: &str, value: &str, min: u32, max: u32) -> Result<u32, ApiError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            ApiError::invalid(
                name,
                format!("{name} must be an integer from {min} to {max}, not {value:?}"),
            )
        })
}

/// Checks an account or customer id from the path.
pub fn parse_id(name: &str, value: &str) -> Result<String, ApiError> {
    let ok = (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(ApiError::invalid(
            name,
            format!("{name} must be 1-128 characters of letters, digits, -, _, . and :"),
        ))
    }
}

/// Checks a NUBAN (10 digits) from the path.
pub fn parse_nuban(value: &str) -> Result<String, ApiError> {
    if value.len() == 10 && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(value.to_owned())
    } else {
        Err(ApiError::invalid(
            "nuban",
            format!("nuban must be 10 digits, not {value:?}"),
        ))
    }
}

/// Parses a gateway transaction id from the path.
pub fn parse_transaction_id(value: &str) -> Result<TransactionId, ApiError> {
    value.parse().map_err(|e| match e {
        TransactionIdError::Malformed(_) => ApiError::invalid(
            "id",
            format!("id is {e}; copy the whole id from a list response"),
        ),
        // Well formed: simply no such transaction.
        TransactionIdError::NamesNothing => ApiError::NotFound {
            detail: format!("no transaction {value}: {e}"),
            provider: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param_of(query: &str) -> String {
        match parse_list(query, false) {
            Err(ApiError::InvalidParameter { parameter, .. }) => parameter,
            other => panic!("{query}: expected a parameter error, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let r = parse_list("", false).unwrap();
        assert_eq!(r.limit, 50);
        assert_eq!(r.page, None);
        assert!(!r.include_raw);
    }

    #[test]
    fn a_full_request() {
        let r = parse_list(
            "provider=mono&from=2025-01-01&to=2025-02-01&direction=credit&limit=10&page=3&include=raw",
            false,
        )
        .unwrap();
        assert_eq!(r.provider.as_deref(), Some("mono"));
        assert_eq!(r.direction, Some(Direction::Credit));
        assert_eq!((r.limit, r.page, r.include_raw), (10, Some(3), true));
    }

    #[test]
    fn each_error_names_its_parameter() {
        assert_eq!(param_of("from=2025-13-01"), "from");
        assert_eq!(param_of("to=yesterday"), "to");
        assert_eq!(param_of("from=2025-02-01&to=2025-01-01"), "to");
        assert_eq!(param_of("direction=sideways"), "direction");
        assert_eq!(param_of("limit=0"), "limit");
        assert_eq!(param_of("limit=101"), "limit");
        assert_eq!(param_of("limit=ten"), "limit");
        assert_eq!(param_of("page=0"), "page");
        assert_eq!(param_of("page=-1"), "page");
        assert_eq!(param_of("page=2&cursor=abc"), "cursor");
        assert_eq!(param_of("include=everything"), "include");
        assert_eq!(param_of("limti=5"), "limti");
        assert_eq!(param_of("limit=5&limit=6"), "limit");
        assert_eq!(param_of("provider="), "provider");
    }

    #[test]
    fn empty_cursor_and_include_count_as_not_given() {
        let r = parse_list("page=1&cursor=&include=", false).unwrap();
        assert_eq!((r.page, r.cursor, r.include_raw), (Some(1), None, false));
        assert!(parse_include(Some("raw")).unwrap());
        assert!(!parse_include(Some("")).unwrap());
        assert!(parse_include(Some("everything")).is_err());
    }

    #[test]
    fn a_damaged_transaction_id_is_named_in_the_callers_terms() {
        // Not base64url: a 400 naming `id`.
        let ApiError::InvalidParameter { parameter, detail } =
            parse_transaction_id("txn_!!!").unwrap_err()
        else {
            panic!("expected a parameter error");
        };
        assert_eq!(parameter, "id");
        assert!(detail.contains("not base64url"), "{detail}");
        // Well formed but naming nothing (it decodes to no provider and id): no such transaction.
        let ApiError::NotFound { detail, .. } = parse_transaction_id("txn_b2t5").unwrap_err()
        else {
            panic!("expected not found");
        };
        assert!(detail.contains("cut or changed"), "{detail}");
        assert!(!detail.contains("UTF"), "{detail}");
    }

    #[test]
    fn ranges_can_be_required() {
        assert!(matches!(
            parse_list("to=2025-01-01", true),
            Err(ApiError::InvalidParameter { parameter, .. }) if parameter == "from"
        ));
        assert!(parse_list("from=2025-01-01&to=2025-01-31", true).is_ok());
    }

    #[test]
    fn path_ids() {
        assert!(parse_nuban("0123456789").is_ok());
        assert!(parse_nuban("012345678").is_err());
        assert!(parse_nuban("01234567890").is_err());
        assert!(parse_id("account_id", "5f3c1b2a9d").is_ok());
        assert!(parse_id("account_id", "a/b").is_err());
        assert!(parse_id("account_id", "").is_err());
        assert!(parse_transaction_id("nope").is_err());
    }
}
