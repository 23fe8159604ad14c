//! Pure functions from Okra's wire types onto the canonical model.
//!
//! This module owns every interpretation of an Okra value: which of `debit`/`credit` carries the
//! amount, how an amount's text becomes exact [`Money`], how the several date spellings become a
//! calendar [`Date`], how the pagination object becomes the canonical [`Page`] facts and how a
//! refresh callback reports progress. It does no I/O and never panics: whatever a vendor sends
//! becomes a value or a [`MappingError`] naming the record and the field.

use std::sync::Arc;

use provider::json_walk::JsonCursor;
use provider::{
    Currency, Date, Direction, MappingError, Money, Page, PageRequest, RawRecord, RecordWarning,
    Transaction, TransactionId,
};
use serde_json::value::RawValue;
use time::Month;

use crate::wire::{
    OkraCallbackData, OkraPagination, OkraScalar, OkraTransaction, OkraTransactionsData,
    is_error_status,
};

/// What a mapping needs to know besides the record: who we are and the default currency.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MapContext<'a> {
    /// The provider instance name (goes into ids and `Transaction::provider`).
    pub provider: &'a str,
    /// The currency of records that do not name one.
    pub currency: Currency,
}

/// Maps one page of records. A record that cannot be mapped is left out and reported in the
/// page's warnings, as is an ancillary field dropped from a kept record; neither fails the page.
pub(crate) fn map_page<R: std::ops::Deref<Target = RawValue>>(
    ctx: MapContext<'_>,
    data: &OkraTransactionsData<R>,
    requested: PageRequest,
) -> Page<Transaction> {
    let mut page = PageBuilder::new(ctx, requested, data.transaction.len());
    for raw in &data.transaction {
        page.push_raw(raw);
    }
    page.finish(data.pagination.as_ref())
}

/// A page being mapped record by record, in the vendor's order.
struct PageBuilder<'c> {
    ctx: MapContext<'c>,
    /// The provider name, shared by every record's id (one allocation a page, not a record).
    provider: Arc<str>,
    requested: PageRequest,
    items: Vec<Transaction>,
    warnings: Vec<RecordWarning>,
    /// The 0-based place of the next record in the page.
    index: usize,
}

impl<'c> PageBuilder<'c> {
    fn new(ctx: MapContext<'c>, requested: PageRequest, capacity: usize) -> Self {
        PageBuilder {
            ctx,
            provider: Arc::from(ctx.provider),
            requested,
            items: Vec::with_capacity(capacity),
            warnings: Vec::new(),
            index: 0,
        }
    }

    /// How a record without an id is named: its place in the page.
    fn position(&self) -> String {
        format!("#{} of page {}", self.index, self.requested.page)
    }

    /// Maps a record from its raw JSON (typed from that text here).
    fn push_raw(&mut self, raw: &RawValue) {
        let position = self.position();
        match map_record(self.ctx, raw, &position, &mut self.warnings) {
            Ok(tx) => self.items.push(tx),
            // An error about no single field (a missing id) shows the whole record.
            Err(e) => self
                .warnings
                .push(RecordWarning::skipped(e.or_raw_value(raw.get()))),
        }
        self.index += 1;
    }

    /// Maps a record already typed, whose exact JSON is `text`: what [`Self::push_raw`] does
    /// once the text has typed.
    fn push_typed(&mut self, record: OkraTransaction, text: &str) {
        let raw = Some(RawRecord::from_read_text(text));
        let (index, page) = (self.index, self.requested.page);
        let result = to_transaction(
            self.ctx,
            &self.provider,
            record,
            raw,
            || format!("#{index} of page {page}"),
            &mut self.warnings,
        );
        match result {
            Ok(tx) => self.items.push(tx),
            Err(e) => self
                .warnings
                .push(RecordWarning::skipped(e.or_raw_value(text))),
        }
        self.index += 1;
    }

    /// The page, with the paging facts `pagination` gives.
    fn finish(self, pagination: Option<&OkraPagination>) -> Page<Transaction> {
        let requested = self.requested;
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
        Page {
            items: self.items,
            page,
            limit,
            total: pagination.and_then(|p| p.total_docs),
            total_pages: pagination
                .and_then(|p| p.total_pages)
                .and_then(|t| u32::try_from(t).ok()),
            next_page: pagination.and_then(|p| next_page(p, page)),
            warnings: self.warnings,
        }
    }
}

/// Reads a success listing body (`{status, message, data: {pagination, transaction}}`) in one
/// typed pass, each record typed where it lies in the body and its exact text kept, so no record
/// is scanned twice. A record that does not type is read again as raw JSON and mapped as
/// [`map_page`] maps it, which reports it alone; the records around it are kept.
///
/// `None` whenever the body is anything else or written unusually (an error status, no `data`,
/// a key written with an escape, a field given twice, malformed JSON, ...): the caller then
/// takes the general reading, which says what is wrong. Whenever this gives a page, it is the
/// page [`map_page`] makes of the same body.
pub(crate) fn read_listing(
    ctx: MapContext<'_>,
    body: &str,
    requested: PageRequest,
) -> Option<Page<Transaction>> {
    let mut page = PageBuilder::new(ctx, requested, 0);
    let mut status: Option<Option<String>> = None;
    let mut message_seen = false;
    let mut data_seen = false;
    let mut pagination: Option<Option<OkraPagination>> = None;
    let mut transaction_seen = false;
    let mut cursor = JsonCursor::new(body);
    cursor.object(|key, c| {
        match key {
            "status" if status.is_none() => status = Some(c.member::<Option<String>>()?),
            "message" if !std::mem::replace(&mut message_seen, true) => {
                c.member::<Option<String>>()?;
            }
            "data" if !std::mem::replace(&mut data_seen, true) => c.object(|key, c| {
                match key {
                    "pagination" if pagination.is_none() => {
                        pagination = Some(c.member::<Option<OkraPagination>>()?);
                    }
                    "transaction" if !std::mem::replace(&mut transaction_seen, true) => {
                        if c.peek() == Some(b'n') {
                            c.member::<()>()?;
                        } else {
                            page.items.reserve(100);
                            c.array(|c| read_record(&mut page, c))?;
                        }
                    }
                    // Serde refuses a field given twice.
                    "pagination" | "transaction" => return None,
                    _ => c.skip()?,
                }
                Some(())
            })?,
            "status" | "message" | "data" => return None,
            _ => c.skip()?,
        }
        Some(())
    })?;
    let is_error = is_error_status(status.flatten().as_deref());
    (cursor.at_end() && data_seen && !is_error).then(|| page.finish(pagination.flatten().as_ref()))
}

/// Reads and maps the record at the cursor; `None` when it is not even JSON.
fn read_record<'a>(page: &mut PageBuilder<'_>, cursor: &mut JsonCursor<'a>) -> Option<()> {
    // Only an object is typed in place ([`map_record`] refuses anything else before typing).
    if cursor.peek() == Some(b'{')
        && let Ok((record, text)) = cursor.read::<OkraTransaction>()
    {
        page.push_typed(record, text);
        return Some(());
    }
    let (raw, _) = cursor.read::<&'a RawValue>().ok()?;
    page.push_raw(raw);
    Some(())
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

/// Maps one raw Okra record; `position` names it in errors when it has no id. Ancillary fields
/// that do not parse are dropped and reported in `warnings`.
pub(crate) fn map_record(
    ctx: MapContext<'_>,
    raw: &RawValue,
    position: &str,
    warnings: &mut Vec<RecordWarning>,
) -> Result<Transaction, MappingError> {
    if !raw.get().trim_start().starts_with('{') {
        // serde would read a JSON array into the struct field by field.
        return Err(MappingError::new(
            position,
            "record",
            "not an Okra transaction: not a JSON object",
        )
        .with_raw_value(raw.get()));
    }
    let record: OkraTransaction = serde_json::from_str(raw.get()).map_err(|e| {
        MappingError::new(
            record_name_of_raw(raw).unwrap_or_else(|| position.to_owned()),
            "record",
            format!("not an Okra transaction: {e}"),
        )
        .with_raw_value(raw.get())
    })?;
    to_transaction(
        ctx,
        &Arc::from(ctx.provider),
        record,
        Some(RawRecord::from_raw(raw)),
        || position.to_owned(),
        warnings,
    )
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
/// account, booking date. `provider` is `ctx.provider`, shared by the ids of a page's records.
pub(crate) fn to_transaction(
    ctx: MapContext<'_>,
    provider: &Arc<str>,
    record: OkraTransaction,
    raw: Option<RawRecord>,
    position: impl FnOnce() -> String,
    warnings: &mut Vec<RecordWarning>,
) -> Result<Transaction, MappingError> {
    let id = record
        .id
        .as_ref()
        .and_then(OkraScalar::text)
        .or_else(|| record.mongo_id.as_ref().and_then(OkraScalar::text))
        .ok_or_else(|| MappingError::new(position(), "id", "neither `id` nor `_id` is set"))?;
    let err = |field: &'static str, reason: String| MappingError::new(id.as_str(), field, reason);

    let currency = match record.currency.as_deref().map(str::trim) {
        None | Some("") => ctx.currency,
        Some(code) => Currency::from_code(code)
            .map_err(|e| err("currency", e.to_string()).with_raw_value(code))?,
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
    if value_on.is_none() {
        let given = [&record.cleared_date, &record.unformatted_cleared_date]
            .into_iter()
            .filter_map(|v| v.as_ref().and_then(OkraScalar::text))
            .collect::<Vec<_>>();
        if !given.is_empty() {
            warnings.push(RecordWarning::field_ignored(
                id.as_str(),
                "cleared_date",
                "no readable value date: set to null",
                Some(&given.join(" | ")),
            ));
        }
    }
    let bank = match &record.bank {
        Some(crate::wire::OkraRef::Other(value)) => {
            warnings.push(RecordWarning::field_ignored(
                id.as_str(),
                "bank",
                "not a bank object or name: set to null",
                Some(&value.to_string()),
            ));
            None
        }
        Some(bank) => bank.name(),
        None => None,
    };

    let narration = match &record.notes {
        Some(crate::wire::OkraNotes::Object { desc }) => desc.as_deref().unwrap_or(""),
        Some(crate::wire::OkraNotes::Text(text)) => text.as_str(),
        None => "",
    }
    .trim()
    .to_owned();

    Ok(Transaction {
        id: TransactionId::new(Arc::clone(provider), id.as_str()),
        provider: Arc::clone(provider),
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
        bank,
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

/// The direction and the (non-negative) amount of a record from its `debit` and `credit`.
///
/// The field carrying a non-zero amount is the direction; the other may be `null`, absent or
/// zero. A zero amount is valid: the one field given says the direction, and both given as zero
/// read as a credit of zero (it moves no money). Both non-zero, or neither given, is an error.
pub(crate) fn direction_and_amount(
    record: &str,
    debit: Option<&RawValue>,
    credit: Option<&RawValue>,
    currency: Currency,
) -> Result<(Direction, Money), MappingError> {
    let debit = parse_amount(record, "debit", debit, currency)?;
    let credit = parse_amount(record, "credit", credit, currency)?;
    let non_zero = |m: &Option<Money>| m.filter(|m| m.minor() != 0);
    match (debit, credit) {
        (Some(d), Some(c)) if d.minor() != 0 && c.minor() != 0 => Err(MappingError::new(
            record,
            "debit/credit",
            format!("both debit ({d}) and credit ({c}) are non-zero"),
        )),
        (Some(d), Some(c)) => match (non_zero(&Some(d)), non_zero(&Some(c))) {
            (Some(d), _) => Ok((Direction::Debit, d)),
            _ => Ok((Direction::Credit, c)),
        },
        (Some(d), None) => Ok((Direction::Debit, d)),
        (None, Some(c)) => Ok((Direction::Credit, c)),
        (None, None) => Err(MappingError::new(
            record,
            "debit/credit",
            "neither debit nor credit carries an amount",
        )),
    }
}

/// Reads an amount exactly from its raw JSON text.
///
/// A JSON number is read from its text ([`Money::from_json_number`]); a string as a decimal
/// string ([`Money::from_decimal_str`]: separators, a currency sign or code, float noise); `null`,
/// absent or a blank string is no amount. A negative amount is an error: Okra's direction is the
/// field, not the sign. Errors carry the raw JSON value.
pub(crate) fn parse_amount(
    record: &str,
    field: &'static str,
    raw: Option<&RawValue>,
    currency: Currency,
) -> Result<Option<Money>, MappingError> {
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.get().trim();
    let err = |reason: String| MappingError::new(record, field, reason).with_raw_value(text);
    if text == "null" {
        return Ok(None);
    }
    let money = if text.starts_with('"') {
        let s: String = serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
        if s.trim().is_empty() {
            return Ok(None);
        }
        Money::from_decimal_str(&s, currency)
    } else {
        Money::from_json_number(text, currency)
    }
    .map_err(|e| match e {
        provider::MoneyError::CurrencyMismatch(..) => err(e.to_string()).as_currency_mismatch(),
        _ => err(e.to_string()),
    })?;
    if money.is_negative() {
        return Err(err(format!(
            "negative amount {money}: Okra documents no meaning for a sign (the field is the direction)"
        )));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::OkraEnvelope;
    use time::macros::date;

    const CTX: MapContext<'static> = MapContext {
        provider: "okra-ng",
        currency: Currency::NGN,
    };

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    fn map(text: &str) -> Result<Transaction, MappingError> {
        map_record(CTX, &raw(text), "#0 of page 1", &mut Vec::new())
    }

    /// Maps one record, also returning the warnings about fields it dropped.
    fn map_warned(text: &str) -> (Result<Transaction, MappingError>, Vec<RecordWarning>) {
        let mut warnings = Vec::new();
        let result = map_record(CTX, &raw(text), "#0 of page 1", &mut warnings);
        (result, warnings)
    }

    /// A record with an id, an account and a booking date, plus `fields`.
    fn amounts(fields: &str) -> Result<(Direction, i64), MappingError> {
        map(&format!(
            r#"{{"id":"t1","account":{{"_id":"acc1"}},"trans_date":"2024-03-05",{fields}}}"#
        ))
        .map(|t| (t.direction, t.amount.minor()))
    }

    /// A record with an id, an account and an amount, plus the date `fields`.
    fn dates(fields: &str) -> Result<(Date, Option<Date>), MappingError> {
        map(&format!(
            r#"{{"id":"t1","account":{{"_id":"acc1"}},"debit":1,{fields}}}"#
        ))
        .map(|t| (t.booked_on, t.value_on))
    }

    fn field_of<T: std::fmt::Debug>(result: Result<T, MappingError>) -> (String, &'static str) {
        let e = result.unwrap_err();
        (e.record, e.field)
    }

    // ---- a listing read in one typed pass, against the reading with records borrowed raw ----

    const REQUESTED: PageRequest = PageRequest { page: 3, limit: 50 };

    /// The page the reading before the typed walk made of a body: the envelope in one pass with
    /// each record borrowed raw, then typed by [`map_page`]; `None` where it would not be taken.
    fn read_borrowed(body: &str) -> Option<Page<Transaction>> {
        let envelope: OkraEnvelope<OkraTransactionsData<&RawValue>> =
            serde_json::from_str(body).ok()?;
        if envelope.is_error() {
            return None;
        }
        Some(map_page(CTX, envelope.data.as_ref()?, REQUESTED))
    }

    /// The typed walk reads `body`, and makes of it exactly the page the borrowed reading makes.
    fn assert_walk_agrees(body: &str) -> Page<Transaction> {
        let walked = read_listing(CTX, body, REQUESTED).unwrap_or_else(|| panic!("{body}"));
        let borrowed = read_borrowed(body).unwrap_or_else(|| panic!("{body}"));
        assert_eq!(walked, borrowed, "{body}");
        // `Page`'s equality compares raw records by text; the debug form shows every warning too.
        assert_eq!(format!("{walked:?}"), format!("{borrowed:?}"), "{body}");
        walked
    }

    const GOOD_1: &str = r#"{"id":"t1","debit":5,"trans_date":"2024-01-02","account":"a"}"#;
    const GOOD_2: &str =
        r#"{"id":"t2","credit":"1,200.50","trans_date":"02/01/2024","account":{"_id":"a"}}"#;

    #[test]
    fn the_typed_walk_reads_the_documented_listings_as_before() {
        for body in [
            include_str!("../tests/fixtures/getByAccount.json"),
            include_str!("../tests/fixtures/getByNuban.json"),
            include_str!("../tests/fixtures/getByDate.json"),
            include_str!("../tests/fixtures/getByCustomerDate.json"),
        ] {
            // (The docs' samples are partly blank: some records are reported, not kept.)
            let page = assert_walk_agrees(body);
            assert!(!page.items.is_empty() || !page.warnings.is_empty());
            assert!(page.items.iter().all(|t| t.raw.is_some()));
        }
    }

    #[test]
    fn a_bad_record_mid_page_is_reported_alone_and_its_neighbours_kept() {
        // A record that does not type (`id` an object), one that types but does not map (no
        // amount), a string, an array: each reported by itself, in its place.
        let body = format!(
            r#"{{"status":"success","data":{{"pagination":{{"page":3}},"transaction":[{GOOD_1},
            {{"id":{{"x":1}},"debit":1}},{{"id":"t9","trans_date":"2024-01-02","account":"a"}},
            "oops",[1,2],{{}},{GOOD_2}]}}}}"#
        );
        let page = assert_walk_agrees(&body);
        let ids: Vec<&str> = page
            .items
            .iter()
            .map(|t| t.provider_transaction_id.as_str())
            .collect();
        assert_eq!(ids, ["t1", "t2"]);
        assert_eq!(page.items[0].raw.as_ref().unwrap().get(), GOOD_1);
        assert_eq!(page.items[1].raw.as_ref().unwrap().get(), GOOD_2);
        let skipped: Vec<(&str, &str)> = page
            .warnings
            .iter()
            .map(|w| (w.record.as_str(), w.field.as_str()))
            .collect();
        assert_eq!(
            skipped,
            [
                ("#1 of page 3", "record"),
                ("t9", "debit/credit"),
                ("#3 of page 3", "record"),
                ("#4 of page 3", "record"),
                ("#5 of page 3", "id"),
            ]
        );
    }

    #[test]
    fn the_typed_walk_takes_any_spacing_and_paging_before_or_after_the_records() {
        let pagination = r#"{"totalDocs":"7","limit":2,"page":"3","hasNextPage":true}"#;
        for body in [
            format!(
                r#"{{"status":"success","data":{{"pagination":{pagination},"transaction":[{GOOD_1},{GOOD_2}]}}}}"#
            ),
            format!(
                r#"{{"data":{{"transaction":[{GOOD_1},{GOOD_2}],"pagination":{pagination}}},"status":"success","message":"ok"}}"#
            ),
            format!(
                " \r\n{{ \"message\" : null ,\n \"data\"\t:\t{{ \"extra\": [1, {{\"a\": \"]\"}}],\n\"transaction\" :\n [\n\t{GOOD_1}\n ,\n\n {GOOD_2} \n]\r\n , \"pagination\" : {pagination} }} , \"status\": \"SUCCESS\" }}\n "
            ),
        ] {
            let page = assert_walk_agrees(&body);
            assert_eq!(
                (page.items.len(), page.page, page.total),
                (2, 3, Some(7)),
                "{body}"
            );
            assert_eq!(page.next_page, Some(4), "{body}");
        }
        // No paging, an empty list, a null list.
        for records in ["[]", " [ ] ", "null"] {
            let body = format!(r#"{{"data":{{"transaction":{records}}}}}"#);
            let page = assert_walk_agrees(&body);
            assert!(page.items.is_empty() && page.next_page.is_none(), "{body}");
        }
        assert_walk_agrees(r#"{"data":{}}"#);
        assert_walk_agrees(r#"{"data":{"pagination":null,"transaction":[]}}"#);
    }

    #[test]
    fn what_the_typed_walk_does_not_take_is_left_to_the_other_readings() {
        for body in [
            // Not a success listing.
            r#"{"status":"error","message":"bad key","data":{"transaction":[]}}"#.to_owned(),
            r#"{"status":" Error ","data":{"transaction":[]}}"#.to_owned(),
            r#"{"status":"success"}"#.to_owned(),
            r#"{"status":"success","data":null}"#.to_owned(),
            r#"{"data":{"transaction":{}}}"#.to_owned(),
            r#"{"data":{"transaction":"x"}}"#.to_owned(),
            r#"{"data":[null,[]]}"#.to_owned(),
            r#"{"status":1,"data":{"transaction":[]}}"#.to_owned(),
            // Written unusually: an escaped key, a field given twice, a trailing comma, trailing
            // text, malformed JSON in a record.
            format!(r#"{{"data":{{"transacti\u006fn":[{GOOD_1}]}}}}"#),
            format!(r#"{{"data":{{"transaction":[{GOOD_1}],"transaction":[]}}}}"#),
            r#"{"data":{"transaction":[]},"data":{"transaction":[]}}"#.to_owned(),
            format!(r#"{{"data":{{"transaction":[{GOOD_1},]}}}}"#),
            format!(r#"{{"data":{{"transaction":[{GOOD_1}]}}}} x"#),
            format!(r#"{{"data":{{"transaction":[{GOOD_1},{{"id":}}]}}}}"#),
            "not json".to_owned(),
            String::new(),
        ] {
            assert!(read_listing(CTX, &body, REQUESTED).is_none(), "{body}");
        }
        // A field nested deeper than a member may be: left to the general reading, which counts
        // serde's recursion limit from the same depth as before.
        let deep = format!(
            r#"{{"data":{{"pagination":{{"page":{}1{}}},"transaction":[]}}}}"#,
            "[".repeat(70),
            "]".repeat(70)
        );
        assert!(read_listing(CTX, &deep, REQUESTED).is_none());
    }

    /// A small deterministic generator (xorshift), so the equivalence below sweeps many pages
    /// without a property-testing dependency.
    struct Pick(u64);

    impl Pick {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            usize::try_from(self.0 % n as u64).unwrap_or(0)
        }
    }

    /// Pages assembled from good, unmappable and malformed records, in any spacing, with the
    /// envelope's fields in any order: the typed walk makes the borrowed reading's page.
    #[test]
    fn the_typed_walk_agrees_with_the_borrowed_reading() {
        let mut p = Pick(0x9e37_79b9_7f4a_7c15);
        let ws = |p: &mut Pick| SPACES[p.below(SPACES.len())];
        for _ in 0..2_000 {
            let mut texts = Vec::new();
            for _ in 0..p.below(8) {
                let record = RECORD_POOL[p.below(RECORD_POOL.len())];
                texts.push(format!("{}{record}{}", ws(&mut p), ws(&mut p)));
            }
            let list = texts.join(",");
            let pagination = [
                "",
                r#""pagination":{"page":2,"nextPage":"3","limit":"10"},"#,
                r#""pagination" : null ,"#,
            ][p.below(3)];
            let (a, b, c, d) = (ws(&mut p), ws(&mut p), ws(&mut p), ws(&mut p));
            let data = if p.below(2) == 0 {
                format!(r#"{{{pagination}{a}"transaction"{b}:{c}[{list}]{d}}}"#)
            } else {
                format!(r#"{{{a}"transaction":[{list}]{b},{pagination}"x":[1,{{"y":"]"}}]}}"#)
            };
            let (a, b, c, d) = (ws(&mut p), ws(&mut p), ws(&mut p), ws(&mut p));
            let status = format!(r#""status"{a}:{b}"success""#);
            let data = format!(r#""data":{c}{data}"#);
            let message = r#""message":"ok""#;
            let body = match p.below(3) {
                0 => format!("{d}{{{status},{data},{message}}}{a}"),
                1 => format!("{{{data},{d}{message},{status}}}"),
                _ => format!("{{{message},{data}}}"),
            };
            assert_walk_agrees(&body);
        }
    }

    const SPACES: [&str; 5] = ["", " ", "\n", "\t ", "\r\n  "];

    const RECORD_POOL: [&str; 10] = [
        GOOD_1,
        GOOD_2,
        r#"{ "_id" : 42 , "credit" : 0.1 , "trans_date" : "05-Mar-2024" , "account" : "a", "bank": 7 }"#,
        r#"{"id":"t3","debit":"12.5","trans_date":"2024-03-05","cleared_date":"later","account":"a","notes":{"desc":" d "}}"#,
        r#"{"id":"t4","debit":1,"credit":2,"trans_date":"2024-03-05","account":"a"}"#,
        r#"{"id":{"x":[1]},"debit":1}"#,
        r#"{"id":"t5","id":"t6"}"#,
        r#""oops""#,
        r#"[1, "a"]"#,
        r#"{"id":"t7","debit":1e2,"trans_date":"2024-03-05","account":"a","currency":"USD"}"#,
    ];

    // ---- the docs' examples, verbatim ----

    struct Fixture {
        file: &'static str,
        text: &'static str,
        total: u64,
        limit: u32,
        total_pages: u32,
        next_page: Option<u32>,
        direction: Direction,
        minor: i64,
        reference: Option<&'static str>,
    }

    fn fixtures() -> Vec<Fixture> {
        vec![
            Fixture {
                file: "getById",
                text: include_str!("../tests/fixtures/getById.json"),
                total: 1,
                limit: 20,
                total_pages: 1,
                next_page: None,
                direction: Direction::Debit,
                minor: 1,
                reference: None,
            },
            Fixture {
                file: "getByAccount",
                text: include_str!("../tests/fixtures/getByAccount.json"),
                total: 38,
                limit: 1,
                total_pages: 38,
                next_page: Some(2),
                direction: Direction::Debit,
                minor: 3,
                reference: None,
            },
            Fixture {
                file: "getByDate",
                text: include_str!("../tests/fixtures/getByDate.json"),
                total: 2339,
                limit: 1,
                total_pages: 2339,
                next_page: Some(2),
                direction: Direction::Debit,
                minor: 5250,
                reference: None,
            },
            Fixture {
                file: "getByCustomerDate",
                text: include_str!("../tests/fixtures/getByCustomerDate.json"),
                total: 350,
                limit: 1,
                total_pages: 350,
                next_page: Some(2),
                direction: Direction::Debit,
                minor: 5250,
                reference: None,
            },
            Fixture {
                file: "getByNuban",
                text: include_str!("../tests/fixtures/getByNuban.json"),
                total: 465,
                limit: 1,
                total_pages: 465,
                next_page: Some(2),
                direction: Direction::Credit,
                minor: 321,
                reference: Some("0"),
            },
        ]
    }

    fn data_of(text: &str) -> OkraTransactionsData {
        let envelope: OkraEnvelope = serde_json::from_str(text).unwrap();
        assert_eq!(envelope.status.as_deref(), Some("success"));
        serde_json::from_str(envelope.data.unwrap().get()).unwrap()
    }

    #[test]
    fn doc_examples_parse_and_their_empty_ids_are_a_mapping_error() {
        for f in fixtures() {
            let data = data_of(f.text);
            assert_eq!(data.transaction.len(), 1, "{}", f.file);
            let p = data.pagination.as_ref().unwrap();
            assert_eq!(p.total_docs, Some(f.total), "{}", f.file);
            assert_eq!(next_page(p, 1), f.next_page, "{}", f.file);
            // The examples' `id` and `_id` are "": no transaction can be named, so no guess.
            let page = map_page(CTX, &data, PageRequest::new(1, 1));
            assert!(page.items.is_empty(), "{}", f.file);
            let warned: Vec<_> = page
                .warnings
                .iter()
                .map(|w| {
                    (
                        w.code,
                        w.record.as_str(),
                        w.field.as_str(),
                        w.reason.as_str(),
                    )
                })
                .collect();
            assert_eq!(
                warned,
                [(
                    provider::WarningCode::RecordSkipped,
                    "#0 of page 1",
                    "id",
                    "neither `id` nor `_id` is set"
                )],
                "{}",
                f.file
            );
            // No field to show: the record itself is the raw value.
            let raw = page.warnings[0].raw_value.as_deref().unwrap_or_default();
            assert!(raw.starts_with('{') && raw.contains("\"_id\""), "{raw}");
        }
    }

    #[test]
    fn doc_example_amounts_are_exact() {
        for f in fixtures() {
            let data = data_of(f.text);
            let record: OkraTransaction = serde_json::from_str(data.transaction[0].get()).unwrap();
            let (direction, amount) = direction_and_amount(
                "doc",
                record.debit.as_deref(),
                record.credit.as_deref(),
                Currency::NGN,
            )
            .unwrap();
            assert_eq!(
                (direction, amount.minor()),
                (f.direction, f.minor),
                "{}",
                f.file
            );
        }
    }

    #[test]
    fn doc_examples_with_ids_and_dates_filled_in_map_completely() {
        for f in fixtures() {
            let mut envelope: serde_json::Value = serde_json::from_str(f.text).unwrap();
            let rec = &mut envelope["data"]["transaction"][0];
            rec["id"] = "5f3c1b2a9d".into();
            rec["trans_date"] = "2020-05-01T00:00:00.000Z".into();
            rec["account"]["_id"] = "acc_1".into();
            let data = data_of(&envelope.to_string());
            let page = map_page(CTX, &data, PageRequest::new(1, 1));
            assert_eq!(page.total, Some(f.total), "{}", f.file);
            assert_eq!(page.limit, f.limit, "{}", f.file);
            assert_eq!(page.total_pages, Some(f.total_pages), "{}", f.file);
            assert_eq!(page.next_page, f.next_page, "{}", f.file);
            let t = &page.items[0];
            assert_eq!(t.id, TransactionId::new("okra-ng", "5f3c1b2a9d"));
            assert_eq!(&*t.provider, "okra-ng");
            assert_eq!(t.provider_transaction_id, "5f3c1b2a9d");
            assert_eq!(t.account_id, "acc_1");
            assert_eq!((t.direction, t.amount.minor()), (f.direction, f.minor));
            assert_eq!(t.amount.currency(), Currency::NGN);
            assert_eq!(t.booked_on, date!(2020 - 05 - 01));
            assert_eq!(t.value_on, None, "empty cleared dates are absent");
            assert_eq!(t.customer_id, None, "empty customer _id is absent");
            assert_eq!(t.bank, None, "empty bank name is absent");
            assert_eq!(t.narration, "");
            assert_eq!(t.reference.as_deref(), f.reference, "{}", f.file);
            assert_eq!(t.raw.as_ref().unwrap().get(), data.transaction[0].get());
        }
    }

    // ---- amounts and direction ----

    #[test]
    fn amounts_are_exact_kobo() {
        assert_eq!(amounts(r#""debit":0.01"#), Ok((Direction::Debit, 1)));
        assert_eq!(amounts(r#""debit":52.5"#), Ok((Direction::Debit, 5250)));
        assert_eq!(amounts(r#""credit":3.21"#), Ok((Direction::Credit, 321)));
        assert_eq!(
            amounts(r#""credit":0.30000000000000004"#),
            Ok((Direction::Credit, 30))
        );
        assert_eq!(
            amounts(r#""debit":1234567.8899999999"#),
            Ok((Direction::Debit, 123456789))
        );
        assert_eq!(amounts(r#""debit":1e2"#), Ok((Direction::Debit, 10000)));
    }

    #[test]
    fn the_other_side_may_be_null_absent_zero_or_blank() {
        assert_eq!(
            amounts(r#""debit":null,"credit":5"#),
            Ok((Direction::Credit, 500))
        );
        assert_eq!(
            amounts(r#""debit":0,"credit":2.5"#),
            Ok((Direction::Credit, 250))
        );
        assert_eq!(
            amounts(r#""debit":7,"credit":null"#),
            Ok((Direction::Debit, 700))
        );
        assert_eq!(
            amounts(r#""debit":"","credit":2"#),
            Ok((Direction::Credit, 200))
        );
        assert_eq!(
            amounts(r#""debit":-0.0,"credit":2"#),
            Ok((Direction::Credit, 200))
        );
    }

    #[test]
    fn amounts_as_numeric_strings() {
        assert_eq!(amounts(r#""debit":"52.50""#), Ok((Direction::Debit, 5250)));
        assert_eq!(
            amounts(r#""credit":"1,200.50""#),
            Ok((Direction::Credit, 120050))
        );
        assert_eq!(
            amounts(r#""debit":"0.30000000000000004""#),
            Ok((Direction::Debit, 30))
        );
    }

    #[test]
    fn both_or_neither_is_an_error_naming_the_record() {
        let both = amounts(r#""debit":1,"credit":2"#).unwrap_err();
        assert_eq!((both.record.as_str(), both.field), ("t1", "debit/credit"));
        assert!(both.reason.contains("both"), "{}", both.reason);
        for fields in [r#""ref":"x""#, r#""debit":null,"credit":null"#] {
            let neither = amounts(fields).unwrap_err();
            assert_eq!(
                (neither.record.as_str(), neither.field),
                ("t1", "debit/credit"),
                "{fields}"
            );
        }
    }

    #[test]
    fn unreadable_or_negative_amounts_are_errors() {
        for (fields, field) in [
            (r#""debit":-5"#, "debit"),
            (r#""credit":"-5.00""#, "credit"),
            (r#""debit":0.005"#, "debit"),
            (r#""debit":"abc""#, "debit"),
            (r#""credit":true"#, "credit"),
            (r#""credit":{"value":1}"#, "credit"),
        ] {
            assert_eq!(
                field_of(amounts(fields)),
                ("t1".to_owned(), field),
                "{fields}"
            );
        }
    }

    #[test]
    fn a_record_currency_wins_and_an_unknown_one_is_an_error() {
        let t = map(
            r#"{"id":"t1","account":"a","trans_date":"2024-03-05","debit":1.5,"currency":"usd"}"#,
        )
        .unwrap();
        assert_eq!(t.amount, Money::from_minor(150, Currency::USD));
        let e = map(
            r#"{"id":"t1","account":"a","trans_date":"2024-03-05","debit":1.5,"currency":"XYZ"}"#,
        );
        assert_eq!(field_of(e), ("t1".to_owned(), "currency"));
    }

    // ---- dates ----

    #[test]
    fn date_forms() {
        let d = date!(2024 - 03 - 05);
        for text in [
            "2024-03-05",
            "2024-03-05T00:00:00.000Z",
            "2024-03-05T10:11:12Z",
            "2024-03-05T23:30:00-01:00",
            "2024-03-05T00:30:00+01:00",
            "2024-03-05 10:11:12",
            " 2024-03-05 ",
            "2024/03/05",
            "05/03/2024",
            "5/3/2024",
            "05-03-2024",
            "05.03.2024",
            "05/03/2024 10:11",
            "05-Mar-2024",
            "05-MAR-24",
            "05 Mar 2024",
            "5 March 2024",
            "05-Mar-2024 10:11:12",
        ] {
            assert_eq!(parse_date(text), Some(d), "{text:?}");
        }
        for text in [
            "",
            "  ",
            "2024-02-30",
            "2024-13-01",
            "32/01/2024",
            "2024-03-05X",
            "yesterday",
            "05-Foo-2024",
            "1709596800",
            "2024-3-5",
            "ünïcode-date",
        ] {
            assert_eq!(parse_date(text), None, "{text:?}");
        }
    }

    #[test]
    fn dates_fall_back_to_the_unformatted_fields() {
        assert_eq!(
            dates(
                r#""trans_date":"2024-03-05T10:11:12Z","cleared_date":"2024-03-06T00:00:00.000Z""#
            ),
            Ok((date!(2024 - 03 - 05), Some(date!(2024 - 03 - 06))))
        );
        assert_eq!(
            dates(r#""trans_date":"","unformatted_trans_date":"05/03/2024""#),
            Ok((date!(2024 - 03 - 05), None))
        );
        assert_eq!(
            dates(
                r#""trans_date":"garbage","unformatted_trans_date":"05-Mar-2024","cleared_date":"","unformatted_cleared_date":"2024/03/06""#
            ),
            Ok((date!(2024 - 03 - 05), Some(date!(2024 - 03 - 06))))
        );
        assert_eq!(
            dates(
                r#""trans_date":null,"unformatted_trans_date":"2024-03-05T00:00:00Z","cleared_date":"nonsense""#
            ),
            Ok((date!(2024 - 03 - 05), None))
        );
    }

    #[test]
    fn no_usable_booking_date_is_an_error() {
        for fields in [
            r#""ref":"x""#,
            r#""trans_date":"","unformatted_trans_date":"""#,
            r#""trans_date":"soon","unformatted_trans_date":"later""#,
        ] {
            assert_eq!(
                field_of(dates(fields)),
                ("t1".to_owned(), "trans_date"),
                "{fields}"
            );
        }
    }

    // ---- ids, references, objects ----

    #[test]
    fn ids_fall_back_to_mongo_id_and_may_be_numbers() {
        let t = map(r#"{"_id":"m1","id":"","account":"a","trans_date":"2024-03-05","debit":1}"#)
            .unwrap();
        assert_eq!(t.provider_transaction_id, "m1");
        assert_eq!(t.id, TransactionId::new("okra-ng", "m1"));
        let t = map(r#"{"id":123,"account":"a","trans_date":"2024-03-05","debit":1}"#).unwrap();
        assert_eq!(t.provider_transaction_id, "123");
        let e = map(r#"{"id":" ","_id":"","account":"a","trans_date":"2024-03-05","debit":1}"#);
        assert_eq!(field_of(e), ("#0 of page 1".to_owned(), "id"));
    }

    #[test]
    fn account_customer_and_bank_as_objects_or_plain_strings() {
        let t = map(r#"{"id":"t1","trans_date":"2024-03-05","debit":1,
                "account":{"_id":"acc1","name":"Ada"},"customer":{"_id":"cus1","name":"Ada"},
                "bank":{"name":" GTBank ","icon":""}}"#)
        .unwrap();
        assert_eq!(t.account_id, "acc1");
        assert_eq!(t.customer_id.as_deref(), Some("cus1"));
        assert_eq!(t.bank.as_deref(), Some("GTBank"));
        let t = map(r#"{"id":"t1","trans_date":"2024-03-05","debit":1,
                "account":"acc9","customer":"cus9","bank":"Access"}"#)
        .unwrap();
        assert_eq!(t.account_id, "acc9");
        assert_eq!(t.customer_id.as_deref(), Some("cus9"));
        assert_eq!(t.bank.as_deref(), Some("Access"));
        for account in ["", r#","account":"""#, r#","account":{"name":"x"}"#] {
            let e = map(&format!(
                r#"{{"id":"t1","trans_date":"2024-03-05","debit":1{account}}}"#
            ));
            assert_eq!(field_of(e), ("t1".to_owned(), "account"), "{account}");
        }
    }

    #[test]
    fn missing_optional_fields_are_none() {
        let text = r#"{"id":"t1","account":"a","trans_date":"2024-03-05","credit":2}"#;
        let t = map(text).unwrap();
        assert_eq!(t.customer_id, None);
        assert_eq!(t.value_on, None);
        assert_eq!(t.reference, None);
        assert_eq!(t.bank, None);
        assert_eq!(t.narration, "");
        assert_eq!(t.balance_after, None);
        assert_eq!(t.raw.unwrap().get(), text);
    }

    #[test]
    fn narration_reference_and_extra_fields() {
        let t = map(
            r#"{"id":"t1","account":"a","trans_date":"2024-03-05","debit":1,
                "notes":{"desc":" POS PURCHASE SHOPRITE ","topics":[],"actions":[""]},
                "ref":" FT123 ","branch":"Ikeja","ner":{"TRANS_TYPE":"POS"},"ner_v":1,
                "analyzed":[""],"manual":false,"__v":0}"#,
        )
        .unwrap();
        assert_eq!(t.narration, "POS PURCHASE SHOPRITE");
        assert_eq!(t.reference.as_deref(), Some("FT123"));
        let t = map(r#"{"id":"t1","account":"a","trans_date":"2024-03-05","debit":1,"ref":" "}"#)
            .unwrap();
        assert_eq!(t.reference, None);
        let t = map(r#"{"id":"t1","account":"a","trans_date":"2024-03-05","debit":1,"ref":42}"#)
            .unwrap();
        assert_eq!(t.reference.as_deref(), Some("42"));
    }

    #[test]
    fn a_malformed_record_is_named_and_one_bad_record_is_reported_not_fatal() {
        let e = map(r#"{"id":"t9","account":"a","trans_date":{"when":"now"},"debit":1}"#);
        assert_eq!(field_of(e), ("t9".to_owned(), "record"));
        let e = map(r#"["not","a","record"]"#);
        assert_eq!(field_of(e), ("#0 of page 1".to_owned(), "record"));

        let data: OkraTransactionsData = serde_json::from_str(
            r#"{"pagination":{"page":3},"transaction":[
                {"id":"good","account":"a","trans_date":"2024-03-05","debit":1},
                {"id":"bad","account":"a","trans_date":"2024-03-05","debit":1,"credit":1}]}"#,
        )
        .unwrap();
        let page = map_page(CTX, &data, PageRequest::new(3, 2));
        let ids: Vec<_> = page
            .items
            .iter()
            .map(|t| t.provider_transaction_id.as_str())
            .collect();
        assert_eq!(ids, ["good"]);
        assert_eq!(page.warnings.len(), 1);
        let w = &page.warnings[0];
        assert_eq!(w.code, provider::WarningCode::RecordSkipped);
        assert_eq!(
            (w.record.as_str(), w.field.as_str()),
            ("bad", "debit/credit")
        );
    }

    #[test]
    fn messy_records_among_good_ones_each_give_one_warning_with_the_raw_value() {
        let data: OkraTransactionsData = serde_json::from_str(
            r#"{"pagination":{"page":1,"nextPage":""},"transaction":[
                {"id":"ok1","account":"a","trans_date":"2024-03-05","debit":250000000.79999998},
                {"id":"zero","account":"a","trans_date":"2024-03-05","debit":0,"credit":null},
                {"id":"neg","account":"a","trans_date":"2024-03-05","credit":-5},
                {"id":"usd","account":"a","trans_date":"2024-03-05","credit":"$5.00"},
                {"id":"frac","account":"a","trans_date":"2024-03-05","credit":0.005},
                {"id":"odd-date","account":"a","trans_date":"2024-03-05","cleared_date":"soon","credit":"₦1,200.50"},
                {"id":"odd-bank","account":"a","trans_date":"2024-03-05","bank":42,"credit":"NGN 7"}]}"#,
        )
        .unwrap();
        let page = map_page(CTX, &data, PageRequest::new(1, 50));
        let kept: Vec<_> = page
            .items
            .iter()
            .map(|t| {
                (
                    t.provider_transaction_id.as_str(),
                    t.direction,
                    t.amount.minor(),
                )
            })
            .collect();
        assert_eq!(
            kept,
            [
                ("ok1", Direction::Debit, 25_000_000_080),
                ("zero", Direction::Debit, 0),
                ("odd-date", Direction::Credit, 120_050),
                ("odd-bank", Direction::Credit, 700),
            ]
        );
        assert_eq!(page.items[2].value_on, None);
        assert_eq!(page.items[3].bank, None);
        let warned: Vec<_> = page
            .warnings
            .iter()
            .map(|w| {
                (
                    w.code.as_str(),
                    w.record.as_str(),
                    w.field.as_str(),
                    w.raw_value.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            warned,
            [
                ("record_skipped", "neg", "credit", Some("-5")),
                ("currency_mismatch", "usd", "credit", Some("\"$5.00\"")),
                ("record_skipped", "frac", "credit", Some("0.005")),
                ("field_ignored", "odd-date", "cleared_date", Some("soon")),
                ("field_ignored", "odd-bank", "bank", Some("42")),
            ]
        );
        assert_eq!(page.next_page, None);
    }

    #[test]
    fn zero_amounts_are_valid() {
        assert_eq!(amounts(r#""debit":0"#), Ok((Direction::Debit, 0)));
        assert_eq!(amounts(r#""credit":"0.00""#), Ok((Direction::Credit, 0)));
        assert_eq!(
            amounts(r#""debit":0,"credit":0"#),
            Ok((Direction::Credit, 0))
        );
        assert_eq!(
            amounts(r#""debit":0,"credit":5"#),
            Ok((Direction::Credit, 500))
        );
        let (kept, warnings) = map_warned(
            r#"{"id":"t1","account":"a","trans_date":"2024-03-05","debit":1,"cleared_date":"2024-03-06"}"#,
        );
        assert!(kept.is_ok());
        assert!(warnings.is_empty());
    }

    // ---- pagination ----

    fn page_facts(pagination: &str) -> (u32, u32, Option<u64>, Option<u32>, Option<u32>) {
        let data: OkraTransactionsData = serde_json::from_str(&format!(
            r#"{{"pagination":{pagination},"transaction":[]}}"#
        ))
        .unwrap();
        let p = map_page(CTX, &data, PageRequest::new(2, 50));
        (p.page, p.limit, p.total, p.total_pages, p.next_page)
    }

    #[test]
    fn pagination_facts_and_next_page() {
        assert_eq!(
            page_facts(
                r#"{"totalDocs":"120","limit":"50","page":"2","totalPages":"3","nextPage":"3"}"#
            ),
            (2, 50, Some(120), Some(3), Some(3))
        );
        assert_eq!(
            page_facts(
                r#"{"totalDocs":100,"limit":50,"page":2,"totalPages":2,"nextPage":null,"hasNextPage":false}"#
            ),
            (2, 50, Some(100), Some(2), None)
        );
        assert_eq!(page_facts(r#"{"page":2,"hasNextPage":true}"#).4, Some(3));
        assert_eq!(page_facts(r#"{"page":2,"totalPages":5}"#).4, Some(3));
        assert_eq!(page_facts(r#"{"page":2,"totalPages":2}"#).4, None);
        assert_eq!(page_facts(r#"{"page":2,"nextPage":2}"#).4, None);
        assert_eq!(page_facts(r#"{"page":2,"nextPage":false}"#).4, None);
        assert_eq!(page_facts(r#"{"page":2,"nextPage":""}"#).4, None);
        assert_eq!(page_facts(r#"{"page":2,"nextPage":null}"#).4, None);
        assert_eq!(page_facts(r#"{"page":2,"next_page":"3"}"#).4, Some(3));
        assert_eq!(
            page_facts(r#"{"page":2,"nextPage":3,"prevPage":""}"#).4,
            Some(3)
        );
        assert_eq!(
            page_facts(r#"{"page":2,"nextPage":3,"prevPage":false}"#).4,
            Some(3)
        );
        // Nothing said: the requested page and limit, and no next page.
        assert_eq!(page_facts("{}"), (2, 50, None, None, None));
        assert_eq!(page_facts("null"), (2, 50, None, None, None));
    }

    // ---- refresh progress ----

    #[test]
    fn refresh_progress() {
        let state = |text: &str| refresh_state(&serde_json::from_str(text).unwrap());
        assert_eq!(
            state(r#"{"running":true,"completed":false}"#),
            RefreshState::Running
        );
        assert_eq!(
            state(r#"{"running":false,"completed":true,"transactions":[]}"#),
            RefreshState::Completed
        );
        assert_eq!(state(r#"{"completed":"true"}"#), RefreshState::Completed);
        assert_eq!(state(r#"{"running":false}"#), RefreshState::Completed);
        assert_eq!(state(r#"{"status":"Completed"}"#), RefreshState::Completed);
        assert_eq!(state(r#"{"status":"done"}"#), RefreshState::Completed);
        assert_eq!(state(r#"{"status":"processing"}"#), RefreshState::Running);
        assert_eq!(state("{}"), RefreshState::Running);
        assert!(matches!(
            state(r#"{"status":"failed"}"#),
            RefreshState::Failed(_)
        ));
    }
}
