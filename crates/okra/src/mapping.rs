//! Pure functions from Okra's wire types onto the canonical model.
//!
//! This module owns every interpretation of an Okra value: which of `debit`/`credit` carries the
//! amount, how an amount's text becomes exact [`Money`], how the several date spellings become a
//! calendar [`Date`], how the pagination object becomes the canonical [`Page`] facts and how a
//! refresh callback reports progress. It does no I/O and never panics: whatever a vendor sends
//! becomes a value or a [`MappingError`] naming the record and the field.

use provider::{
    Currency, Date, Direction, MappingError, Money, Page, PageRequest, RawRecord, Transaction,
    TransactionId,
};
use serde_json::value::RawValue;
use time::Month;

use crate::wire::{
    OkraCallbackData, OkraPagination, OkraScalar, OkraTransaction, OkraTransactionsData,
};

/// What a mapping needs to know besides the record: who we are and the default currency.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MapContext<'a> {
    /// The provider instance name (goes into ids and `Transaction::provider`).
    pub provider: &'a str,
    /// The currency of records that do not name one.
    pub currency: Currency,
}

/// Maps one page of records, failing on the first record that cannot be mapped.
pub(crate) fn map_page(
    ctx: MapContext<'_>,
    data: &OkraTransactionsData,
    requested: PageRequest,
) -> Result<Page<Transaction>, MappingError> {
    let items = data
        .transaction
        .iter()
        .enumerate()
        .map(|(i, raw)| map_record(ctx, raw, &format!("#{i} of page {}", requested.page)))
        .collect::<Result<Vec<_>, _>>()?;
    let pagination = data.pagination.as_ref();
    let page = pagination
        .and_then(|p| p.page)
        .and_then(|p| u32::try_from(p).ok())
        .filter(|&p| p > 0)
        .unwrap_or(requested.page);
    let limit = pagination
        .and_then(|p| p.limit)
        .and_then(|l| u32::try_from(l).ok())
        .filter(|&l| l > 0)
        .unwrap_or(requested.limit);
    Ok(Page {
        items,
        page,
        limit,
        total: pagination.and_then(|p| p.total_docs),
        total_pages: pagination
            .and_then(|p| p.total_pages)
            .and_then(|t| u32::try_from(t).ok()),
        next_page: pagination.and_then(|p| next_page(p, page)),
    })
}

/// The next page's number: `nextPage` when it is a number (or numeric string), else `page + 1`
/// when `hasNextPage` is true, else (neither given) `page + 1` while `page < totalPages`.
/// A "next" page that is not after `page` is read as none, so a walk always ends.
pub(crate) fn next_page(p: &OkraPagination, page: u32) -> Option<u32> {
    let next = match (p.next_page, p.has_next_page) {
        (Some(n), _) => u32::try_from(n).ok(),
        (None, Some(true)) => page.checked_add(1),
        (None, Some(false)) => None,
        (None, None) => p
            .total_pages
            .filter(|&t| t > u64::from(page))
            .and_then(|_| page.checked_add(1)),
    };
    next.filter(|&n| n > page)
}

/// Maps one raw Okra record; `position` names it in errors when it has no id.
pub(crate) fn map_record(
    ctx: MapContext<'_>,
    raw: &RawValue,
    position: &str,
) -> Result<Transaction, MappingError> {
    let record: OkraTransaction = serde_json::from_str(raw.get()).map_err(|e| {
        MappingError::new(
            record_name_of_raw(raw).unwrap_or_else(|| position.to_owned()),
            "record",
            format!("not an Okra transaction: {e}"),
        )
    })?;
    let raw = RawRecord::from_json(raw.get().to_owned());
    to_transaction(ctx, record, raw, position)
}

/// The id of a record that failed to deserialize, when one can still be read.
fn record_name_of_raw(raw: &RawValue) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Ids {
        #[serde(default)]
        id: Option<OkraScalar>,
        #[serde(default, rename = "_id")]
        mongo_id: Option<OkraScalar>,
    }
    let ids: Ids = serde_json::from_str(raw.get()).ok()?;
    ids.id
        .and_then(|i| i.text())
        .or_else(|| ids.mongo_id.and_then(|i| i.text()))
}

/// Maps a deserialized record; checks run in a fixed order: id, currency, amounts and direction,
/// account, booking date.
pub(crate) fn to_transaction(
    ctx: MapContext<'_>,
    record: OkraTransaction,
    raw: Option<RawRecord>,
    position: &str,
) -> Result<Transaction, MappingError> {
    let id = record
        .id
        .as_ref()
        .and_then(OkraScalar::text)
        .or_else(|| record.mongo_id.as_ref().and_then(OkraScalar::text))
        .ok_or_else(|| MappingError::new(position, "id", "neither `id` nor `_id` is set"))?;
    let err = |field: &'static str, reason: String| MappingError::new(id.as_str(), field, reason);

    let currency = match record.currency.as_deref().map(str::trim) {
        None | Some("") => ctx.currency,
        Some(code) => Currency::from_code(code).map_err(|e| err("currency", e.to_string()))?,
    };
    let (direction, amount) = direction_and_amount(
        &id,
        record.debit.as_deref(),
        record.credit.as_deref(),
        currency,
    )?;

    let account_id = record
        .account
        .as_ref()
        .and_then(|a| a.id())
        .ok_or_else(|| {
            err(
                "account",
                "no account id (`account._id` or a plain id)".into(),
            )
        })?;

    let booked_on =
        first_date(&record.trans_date, &record.unformatted_trans_date).ok_or_else(|| {
            err(
                "trans_date",
                format!(
                    "no usable booking date: trans_date {:?}, unformatted_trans_date {:?}",
                    scalar_text(&record.trans_date),
                    scalar_text(&record.unformatted_trans_date)
                ),
            )
        })?;
    let value_on = first_date(&record.cleared_date, &record.unformatted_cleared_date);

    let narration = match &record.notes {
        Some(crate::wire::OkraNotes::Object { desc }) => desc.as_deref().unwrap_or(""),
        Some(crate::wire::OkraNotes::Text(text)) => text.as_str(),
        None => "",
    }
    .trim()
    .to_owned();

    Ok(Transaction {
        id: TransactionId::new(ctx.provider, id.as_str()),
        provider: ctx.provider.to_owned(),
        provider_transaction_id: id,
        account_id,
        customer_id: record.customer.as_ref().and_then(|c| c.id()),
        direction,
        amount,
        balance_after: None,
        booked_on,
        value_on,
        narration,
        reference: record.reference.as_ref().and_then(OkraScalar::text),
        bank: record.bank.as_ref().and_then(|b| b.name()),
        raw,
    })
}

fn scalar_text(value: &Option<OkraScalar>) -> String {
    value
        .as_ref()
        .and_then(OkraScalar::text)
        .unwrap_or_default()
}

/// The first of the formatted and the bank's own date that parses.
fn first_date(formatted: &Option<OkraScalar>, unformatted: &Option<OkraScalar>) -> Option<Date> {
    [formatted, unformatted]
        .into_iter()
        .filter_map(|v| v.as_ref().and_then(OkraScalar::text))
        .find_map(|text| parse_date(&text))
}

/// The direction and the (positive) amount of a record from its `debit` and `credit`.
///
/// Exactly one of them must carry a non-zero amount; the other may be `null`, absent or zero.
pub(crate) fn direction_and_amount(
    record: &str,
    debit: Option<&RawValue>,
    credit: Option<&RawValue>,
    currency: Currency,
) -> Result<(Direction, Money), MappingError> {
    let debit = parse_amount(record, "debit", debit, currency)?.filter(|m| m.minor() != 0);
    let credit = parse_amount(record, "credit", credit, currency)?.filter(|m| m.minor() != 0);
    match (debit, credit) {
        (Some(d), None) => Ok((Direction::Debit, d)),
        (None, Some(c)) => Ok((Direction::Credit, c)),
        (Some(d), Some(c)) => Err(MappingError::new(
            record,
            "debit/credit",
            format!("both debit ({d}) and credit ({c}) are non-zero"),
        )),
        (None, None) => Err(MappingError::new(
            record,
            "debit/credit",
            "neither debit nor credit carries a non-zero amount",
        )),
    }
}

/// Reads an amount exactly from its raw JSON text.
///
/// A JSON number is read from its text ([`Money::from_json_number`]); a string as a decimal
/// string ([`Money::from_decimal_str`]), or, when it has more decimals than the currency, like a
/// number's text (a stringified float); `null`, absent or a blank string is no amount. A negative
/// amount is an error: Okra's direction is the field, not the sign.
pub(crate) fn parse_amount(
    record: &str,
    field: &'static str,
    raw: Option<&RawValue>,
    currency: Currency,
) -> Result<Option<Money>, MappingError> {
    let err = |reason: String| MappingError::new(record, field, reason);
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.get().trim();
    if text == "null" {
        return Ok(None);
    }
    let money = if text.starts_with('"') {
        let s: String = serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
        if s.trim().is_empty() {
            return Ok(None);
        }
        match Money::from_decimal_str(&s, currency) {
            Err(provider::MoneyError::TooPrecise { .. }) => {
                Money::from_json_number(s.trim(), currency)
            }
            other => other,
        }
    } else {
        Money::from_json_number(text, currency)
    }
    .map_err(|e| err(e.to_string()))?;
    if money.is_negative() {
        return Err(err(format!("negative amount {money}")));
    }
    Ok(Some(money))
}

/// Reads a date as written, without any timezone conversion.
///
/// Accepted: ISO 8601 dates and timestamps (`2024-03-05`, `2024-03-05T10:11:12Z`,
/// `2024-03-05T00:00:00.000+01:00`, `2024-03-05 10:11:12`; the calendar date written is the
/// date), `2024/03/05`, day-first numeric dates (`05/03/2024`, `5-3-2024`, `05.03.2024`) and
/// dates with a month name (`05-Mar-2024`, `05 Mar 2024`, `5 March 2024`, `05-Mar-24`), each
/// optionally followed by a time after a space. Two-digit years are 20xx.
pub(crate) fn parse_date(text: &str) -> Option<Date> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    year_first(text).or_else(|| day_first(text))
}

fn ymd(year: i32, month: u8, day: u8) -> Option<Date> {
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

fn digits<T: std::str::FromStr>(s: &str, min: usize, max: usize) -> Option<T> {
    (s.len() >= min && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `YYYY-MM-DD` or `YYYY/MM/DD`, alone or followed by `T`/space and anything (a time).
fn year_first(text: &str) -> Option<Date> {
    let b = text.as_bytes();
    let sep = *b.get(4)?;
    if !(sep == b'-' || sep == b'/') || b.get(7) != Some(&sep) {
        return None;
    }
    if b.get(10)
        .is_some_and(|&after| !matches!(after, b'T' | b't' | b' '))
    {
        return None;
    }
    let year = digits(text.get(0..4)?, 4, 4)?;
    let month = digits(text.get(5..7)?, 2, 2)?;
    let day = digits(text.get(8..10)?, 2, 2)?;
    ymd(year, month, day)
}

/// Day-first dates: `DD/MM/YYYY`, `DD-Mon-YYYY`, `DD Mon YYYY` (with or without a time after).
fn day_first(text: &str) -> Option<Date> {
    let mut words = text.split_whitespace();
    let first = words.next()?;
    let parts: Vec<&str> = first.split(['/', '-', '.']).collect();
    let (day, month, year) = if parts.len() == 3 {
        (parts[0], parts[1], parts[2])
    } else {
        let month = words.next()?;
        let year = words.next()?;
        (
            first,
            month.trim_end_matches(','),
            year.trim_end_matches(','),
        )
    };
    let day = digits(day, 1, 2)?;
    let month = digits(month, 1, 2).or_else(|| month_by_name(month))?;
    let year = match year.len() {
        2 => 2000 + digits::<i32>(year, 2, 2)?,
        _ => digits(year, 4, 4)?,
    };
    ymd(year, month, day)
}

fn month_by_name(word: &str) -> Option<u8> {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let word = word.to_ascii_lowercase();
    if word.len() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .position(|m| m.starts_with(&word))
        .and_then(|i| u8::try_from(i + 1).ok())
}

/// How a refresh stands according to its callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RefreshState {
    /// Still extracting.
    Running,
    /// Done: fresh data can be read.
    Completed,
    /// The extraction failed, with what the vendor said.
    Failed(String),
}

/// Reads a callback's progress: `completed: true` is done; `running: true` is running;
/// `running: false` without `completed: false` is done; otherwise a status word decides
/// (`completed`/`complete`/`done`/`finished`/`success` done, `failed`/`error`/`cancelled`
/// failed); anything else is still running.
pub(crate) fn refresh_state(data: &OkraCallbackData) -> RefreshState {
    if data.completed == Some(true) {
        return RefreshState::Completed;
    }
    if data.running == Some(true) {
        return RefreshState::Running;
    }
    if data.running == Some(false) && data.completed.is_none() {
        return RefreshState::Completed;
    }
    let word = data
        .status
        .as_deref()
        .map(|s| s.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match word.as_str() {
        "completed" | "complete" | "done" | "finished" | "success" | "successful" => {
            RefreshState::Completed
        }
        "failed" | "failure" | "error" | "cancelled" | "canceled" => {
            RefreshState::Failed(format!("refresh reported {word:?}"))
        }
        _ => RefreshState::Running,
    }
}
