//! Pure functions from Mono's JSON to the canonical model: no network, no clock.

use std::sync::Arc;

use provider::json_walk::JsonCursor;
use provider::{
    Currency, Direction, MappingError, Money, ProviderError, RawRecord, RecordWarning, Transaction,
    TransactionId,
};
use serde_json::Value;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::wire::{
    MonoConnectData, MonoConnectEnvelope, MonoConnectPaging, MonoConnectSync,
    MonoConnectTransaction, MonoConnectV1Data, MonoConnectWebhook,
};

/// What a mapping needs to know besides the record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MapContext<'a> {
    /// The provider instance name.
    pub provider: &'a str,
    /// The account read.
    pub account_id: &'a str,
    /// The account's currency: records without `currency` are in it.
    pub currency: Currency,
}

/// One answer, mapped.
#[derive(Debug, Default)]
pub(crate) struct MappedPage {
    /// The records that mapped.
    pub transactions: Vec<Transaction>,
    /// The records left out, and fields dropped.
    pub warnings: Vec<RecordWarning>,
    /// Records in all, when said.
    pub total: Option<u64>,
    /// This page's number, when said.
    pub page: Option<u32>,
    /// The next page's number (from the `next` URL's `page`), `None` on the last page.
    pub next_page: Option<u32>,
}

fn bad_payload(ctx: &MapContext<'_>, status: u16, message: impl Into<String>) -> ProviderError {
    ProviderError::BadPayload {
        provider: ctx.provider.to_owned(),
        status: Some(status),
        message: message.into(),
    }
}

/// Reads a 2xx transactions answer in any of its three shapes.
pub(crate) fn read_page(
    body: &[u8],
    status: u16,
    ctx: &MapContext<'_>,
) -> Result<MappedPage, ProviderError> {
    // The common case in one typed pass, each record typed where it lies in the body; anything
    // the walk does not take goes the general way, which says what is wrong.
    if let Ok(text) = std::str::from_utf8(body)
        && let Some(page) = read_typed(text, ctx)
    {
        return Ok(page);
    }
    let (records, paging) = match read_in_one_pass(body) {
        Some(read) => read,
        None => read_in_parts(body, status, ctx)?,
    };
    let mut page = MappedPage {
        transactions: Vec::with_capacity(records.len()),
        ..MappedPage::default()
    };
    read_paging(&mut page, paging.as_ref()).map_err(|m| bad_payload(ctx, status, m))?;
    for (index, raw) in records.into_iter().enumerate() {
        push_mapped(&mut page, map_record(raw, index, ctx));
    }
    Ok(page)
}

/// The paging facts into `page`, or what is wrong with them.
fn read_paging(page: &mut MappedPage, paging: Option<&MonoConnectPaging>) -> Result<(), String> {
    if let Some(paging) = paging {
        page.total = number(paging.total.as_ref(), "total")?;
        page.page = number(paging.page.as_ref(), "page")?.and_then(|p| u32::try_from(p).ok());
        page.next_page = next_page(paging.next.as_ref())?;
    }
    Ok(())
}

/// One record's outcome into `page`: kept with its warnings, or reported.
fn push_mapped(
    page: &mut MappedPage,
    result: Result<(Transaction, Vec<RecordWarning>), MappingError>,
) {
    match result {
        Ok((transaction, ignored)) => {
            page.transactions.push(transaction);
            page.warnings.extend(ignored);
        }
        Err(error) => page.warnings.push(RecordWarning::skipped(error)),
    }
}

/// Reads a success answer (v2 and legacy: records in `data`; v1: `data.transactions`) in one
/// typed pass, each record typed where it lies in the body and its exact text kept, so no record
/// is scanned twice. A record that does not type is read again as raw JSON and mapped as before,
/// which reports it alone; the records around it are kept.
///
/// `None` whenever the body is anything else or written unusually (`status: "failed"`, no
/// records, unreadable paging, a key written with an escape, a field given twice, malformed
/// JSON, ...): the caller then takes the general reading, which says what is wrong. Whenever
/// this gives a page, it is the one the one-pass reading with records borrowed raw makes.
fn read_typed(body: &str, ctx: &MapContext<'_>) -> Option<MappedPage> {
    let mut page = MappedPage::default();
    let mut index = 0;
    // The provider name, shared by every record's id (one allocation a page, not a record).
    let provider = Arc::from(ctx.provider);
    let mut status: Option<Option<Value>> = None;
    let mut message_seen = false;
    // `data` not seen, seen as records (v2, legacy), or seen as v1's object with its paging.
    let mut data: Option<Option<Option<MonoConnectPaging>>> = None;
    let mut meta: Option<Option<MonoConnectPaging>> = None;
    let mut paging: Option<Option<MonoConnectPaging>> = None;
    let mut records = |page: &mut MappedPage, c: &mut JsonCursor<'_>| {
        page.transactions.reserve(100);
        c.array(|c| {
            let result = if c.peek() == Some(b'{')
                && let Ok((record, text)) = c.read::<MonoConnectTransaction<'_>>()
            {
                let raw = RawRecord::from_read_text(text);
                record_from_wire(record, raw, index, ctx, &provider)
            } else {
                let (raw, _) = c.read::<&RawValue>().ok()?;
                map_record(raw, index, ctx)
            };
            push_mapped(page, result);
            index += 1;
            Some(())
        })
    };
    let mut cursor = JsonCursor::new(body);
    cursor.object(|key, c| {
        match key {
            "status" if status.is_none() => status = Some(c.member::<Option<Value>>()?),
            "message" if !std::mem::replace(&mut message_seen, true) => {
                c.member::<Option<Value>>()?;
            }
            "data" if data.is_none() => match c.peek() {
                Some(b'[') => {
                    records(&mut page, c)?;
                    data = Some(None);
                }
                _ => {
                    let mut v1_paging: Option<Option<MonoConnectPaging>> = None;
                    let mut transactions_seen = false;
                    c.object(|key, c| {
                        match key {
                            "paging" if v1_paging.is_none() => {
                                v1_paging = Some(c.member::<Option<MonoConnectPaging>>()?);
                            }
                            "transactions" if !transactions_seen => {
                                transactions_seen = true;
                                records(&mut page, c)?;
                            }
                            "paging" | "transactions" => return None,
                            _ => c.skip()?,
                        }
                        Some(())
                    })?;
                    if !transactions_seen {
                        return None;
                    }
                    data = Some(Some(v1_paging.flatten()));
                }
            },
            "meta" if meta.is_none() => meta = Some(c.member::<Option<MonoConnectPaging>>()?),
            "paging" if paging.is_none() => {
                paging = Some(c.member::<Option<MonoConnectPaging>>()?);
            }
            // Serde refuses a field given twice.
            "status" | "message" | "data" | "meta" | "paging" => return None,
            _ => c.skip()?,
        }
        Some(())
    })?;
    let failed = status.flatten().as_ref().and_then(Value::as_str) == Some("failed");
    if !cursor.at_end() || failed {
        return None;
    }
    let (meta, paging) = (meta.flatten(), paging.flatten());
    let paging = match data? {
        None => meta.or(paging),
        Some(v1_paging) => v1_paging.or(meta).or(paging),
    };
    read_paging(&mut page, paging.as_ref()).ok()?;
    Some(page)
}

/// The common case in one pass over the body: a success answer whose `data` reads as records
/// (or v1's object holding them), each borrowed from the body. `None` sends anything else to
/// [`read_in_parts`], which says what is wrong.
fn read_in_one_pass(body: &[u8]) -> Option<(Vec<&RawValue>, Option<MonoConnectPaging>)> {
    let envelope: MonoConnectEnvelope<MonoConnectData<'_>> = serde_json::from_slice(body).ok()?;
    if envelope.status.as_ref().and_then(Value::as_str) == Some("failed") {
        return None;
    }
    match envelope.data? {
        MonoConnectData::Records(records) => Some((records, envelope.meta.or(envelope.paging))),
        MonoConnectData::V1(v1) => Some((
            v1.transactions?,
            v1.paging.or(envelope.meta).or(envelope.paging),
        )),
    }
}

/// The answer read in parts: the envelope, then its `data` by shape; every way it can be wrong
/// is a bad payload saying so.
fn read_in_parts<'a>(
    body: &'a [u8],
    status: u16,
    ctx: &MapContext<'_>,
) -> Result<(Vec<&'a RawValue>, Option<MonoConnectPaging>), ProviderError> {
    let envelope: MonoConnectEnvelope<&RawValue> = serde_json::from_slice(body)
        .map_err(|e| bad_payload(ctx, status, format!("not a Mono transactions answer: {e}")))?;
    if envelope.status.as_ref().and_then(Value::as_str) == Some("failed") {
        let message = text(envelope.message.as_ref()).unwrap_or_else(|| "status: failed".into());
        return Err(bad_payload(ctx, status, message));
    }
    let data = envelope
        .data
        .ok_or_else(|| bad_payload(ctx, status, "no data in the answer"))?;
    let (records, paging): (Vec<&RawValue>, Option<MonoConnectPaging>) =
        if data.get().trim_start().starts_with('{') {
            let v1: MonoConnectV1Data<'_> = serde_json::from_str(data.get())
                .map_err(|e| bad_payload(ctx, status, format!("data: {e}")))?;
            let records = v1
                .transactions
                .ok_or_else(|| bad_payload(ctx, status, "data.transactions is missing"))?;
            (records, v1.paging.or(envelope.meta).or(envelope.paging))
        } else {
            let records: Vec<&RawValue> = serde_json::from_str(data.get())
                .map_err(|e| bad_payload(ctx, status, format!("data must be an array: {e}")))?;
            (records, envelope.meta.or(envelope.paging))
        };
    Ok((records, paging))
}

/// A paging number: a JSON number or a numeric string; null, `""` or absent is unknown.
fn number(value: Option<&Value>, field: &str) -> Result<Option<u64>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("{field} is not a count: {n}")),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("{field} is not a count: {s:?}")),
        Some(other) => Err(format!("{field} is not a count: {other}")),
    }
}

/// `next`: a URL whose `page` query parameter is the next page (never followed as a URL: the
/// adapter only calls its configured base URL), a bare number, or null / `""` on the last page.
pub(crate) fn next_page(value: Option<&Value>) -> Result<Option<u32>, String> {
    let text = match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => return Ok(None),
        Some(Value::Number(n)) => {
            return n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| format!("next is not a page: {n}"));
        }
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim(),
        Some(other) => return Err(format!("next is not a URL: {other}")),
    };
    if let Ok(page) = text.parse::<u32>() {
        return Ok(Some(page).filter(|p| *p > 0));
    }
    // Relative or absolute: only its query matters.
    let query = text.split_once('?').map(|(_, q)| q).unwrap_or("");
    let query = query.split('#').next().unwrap_or("");
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "page")
        .and_then(|(_, value)| value.parse::<u32>().ok())
        .filter(|p| *p > 0)
        .map(Some)
        .ok_or_else(|| format!("next has no page number: {text:?}"))
}

/// A JSON string or number as text (trimmed); null, absent or blank is `None`.
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.trim()).filter(|t| !t.is_empty()).map(str::to_owned),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Integer minor units from the raw JSON text: an integer literal, or a string holding one.
/// Decimals, exponents and anything else are refused: Mono's amounts are already in minor
/// units, so a fraction would mean a misread field, never rounding.
pub(crate) fn minor_units(raw: &RawValue) -> Result<i64, String> {
    // The common case, a plain JSON integer that cannot overflow (at most 18 digits), summed
    // digit by digit: what the reading below gives it, without its trims and checks.
    let plain = raw.get().as_bytes();
    if (1..=18).contains(&plain.len()) && plain.iter().all(u8::is_ascii_digit) {
        return Ok(plain
            .iter()
            .fold(0, |sum, digit| sum * 10 + i64::from(digit - b'0')));
    }
    minor_units_in_general(raw)
}

/// [`minor_units`] without its shortcut.
fn minor_units_in_general(raw: &RawValue) -> Result<i64, String> {
    let text = raw.get().trim();
    let digits = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) => inner.trim(),
        None => text,
    };
    let unsigned = digits.strip_prefix('-').unwrap_or(digits);
    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("not an integer number of minor units: {text}"));
    }
    digits
        .parse::<i64>()
        .map_err(|_| format!("out of range for minor units: {text}"))
}

/// One record, or why it cannot be read; with the warnings of the fields it dropped.
fn map_record(
    raw: &RawValue,
    index: usize,
    ctx: &MapContext<'_>,
) -> Result<(Transaction, Vec<RecordWarning>), MappingError> {
    // Written only when a record has to be named by its place.
    let position = || format!("#{}", index + 1);
    let record: MonoConnectTransaction<'_> = serde_json::from_str(raw.get()).map_err(|e| {
        MappingError::new(
            position(),
            "record",
            format!("not a transaction object: {e}"),
        )
        .with_raw_value(raw.get())
    })?;
    record_from_wire(
        record,
        RawRecord::from_raw(raw),
        index,
        ctx,
        &Arc::from(ctx.provider),
    )
}

/// One typed record (its exact JSON kept as `raw`), or why it cannot be read; `index` as in
/// [`map_record`]; `provider` is `ctx.provider`, shared by the ids of a page's records.
fn record_from_wire(
    record: MonoConnectTransaction<'_>,
    raw: RawRecord,
    index: usize,
    ctx: &MapContext<'_>,
    provider: &Arc<str>,
) -> Result<(Transaction, Vec<RecordWarning>), MappingError> {
    let position = || format!("#{}", index + 1);
    let id = text(record.id.as_ref())
        .or_else(|| text(record.legacy_id.as_ref()))
        .ok_or_else(|| MappingError::new(position(), "id", "missing or blank"))?;
    let direction = match record.direction.as_ref() {
        Some(Value::String(s)) => s.parse::<Direction>().map_err(|e| {
            MappingError::new(&id, "type", e).with_raw_value(&Value::String(s.clone()).to_string())
        })?,
        other => {
            return Err(MappingError::new(&id, "type", "missing or not a string")
                .with_raw_value(&other.map_or("null".into(), Value::to_string)));
        }
    };
    let currency = match record.currency.as_ref() {
        None | Some(Value::Null) => ctx.currency,
        Some(Value::String(code)) if code.trim().is_empty() => ctx.currency,
        Some(Value::String(code)) => Currency::from_code(code.trim()).map_err(|e| {
            MappingError::new(&id, "currency", e.to_string())
                .with_raw_value(&Value::String(code.clone()).to_string())
        })?,
        Some(other) => {
            return Err(MappingError::new(&id, "currency", "not a currency code")
                .with_raw_value(&other.to_string()));
        }
    };
    if currency != ctx.currency {
        return Err(MappingError::new(
            &id,
            "currency",
            format!(
                "{} is not the account's currency ({})",
                currency.code(),
                ctx.currency.code()
            ),
        )
        .as_currency_mismatch());
    }
    let amount_raw = record
        .amount
        .ok_or_else(|| MappingError::new(&id, "amount", "missing"))?;
    let minor = minor_units(amount_raw)
        .map_err(|e| MappingError::new(&id, "amount", e).with_raw_value(amount_raw.get()))?;
    if minor < 0 {
        return Err(MappingError::new(
            &id,
            "amount",
            "negative: `type` carries the sign, so a signed amount is not guessed at",
        )
        .with_raw_value(amount_raw.get()));
    }
    let mut warnings = Vec::new();
    let balance_after = match record.balance {
        None => None,
        Some(raw) => match minor_units(raw) {
            Ok(minor) => Some(Money::from_minor(minor, currency)),
            Err(reason) => {
                warnings.push(RecordWarning::field_ignored(
                    id.clone(),
                    "balance",
                    reason,
                    Some(raw.get()),
                ));
                None
            }
        },
    };
    let booked_on = match record.date.as_ref() {
        Some(Value::String(s)) => utc_date(s).map_err(|reason| {
            MappingError::new(&id, "date", reason)
                .with_raw_value(&Value::String(s.clone()).to_string())
        })?,
        other => {
            return Err(MappingError::new(&id, "date", "missing or not a string")
                .with_raw_value(&other.map_or("null".into(), Value::to_string)));
        }
    };
    let narration = match record.narration {
        Some(Value::String(s)) => s,
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let transaction = Transaction {
        id: TransactionId::new(Arc::clone(provider), id.as_str()),
        provider: Arc::clone(provider),
        provider_transaction_id: id,
        account_id: ctx.account_id.to_owned(),
        customer_id: None,
        direction,
        amount: Money::from_minor(minor, currency),
        balance_after,
        booked_on,
        value_on: None,
        narration,
        reference: None,
        bank: None,
        raw: Some(raw),
    };
    Ok((transaction, warnings))
}

/// The UTC calendar date of an RFC 3339 timestamp (surrounding whitespace ignored).
pub(crate) fn utc_date(text: &str) -> Result<time::Date, String> {
    // The common case, `YYYY-MM-DDTHH:MM:SS[.fraction]Z` with every field in range, is the date
    // as written: what the general reading below gives it, without its machinery.
    if let [
        y1,
        y2,
        y3,
        y4,
        b'-',
        m1,
        m2,
        b'-',
        d1,
        d2,
        b'T',
        h1,
        h2,
        b':',
        i1,
        i2,
        b':',
        s1,
        s2,
        rest @ ..,
    ] = text.as_bytes()
        && let Some((b'Z', fraction)) = rest.split_last()
        && match fraction.split_first() {
            None => true,
            Some((b'.', digits)) => {
                (1..=9).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit)
            }
            Some(_) => false,
        }
        && [y1, y2, y3, y4, m1, m2, d1, d2, h1, h2, i1, i2, s1, s2]
            .into_iter()
            .all(u8::is_ascii_digit)
    {
        let two = |tens: &u8, units: &u8| (tens - b'0') * 10 + (units - b'0');
        let year = i32::from(two(y1, y2)) * 100 + i32::from(two(y3, y4));
        if two(h1, h2) < 24
            && two(i1, i2) < 60
            && two(s1, s2) < 60
            && let Ok(month) = time::Month::try_from(two(m1, m2))
            && let Ok(date) = time::Date::from_calendar_date(year, month, two(d1, d2))
        {
            return Ok(date);
        }
    }
    utc_date_in_general(text)
}

/// [`utc_date`] without its shortcut. A timestamp whose UTC date is out of `time`'s range
/// (`9999-12-31T23:00:00-05:00`) is refused, not a panic.
fn utc_date_in_general(text: &str) -> Result<time::Date, String> {
    let at = OffsetDateTime::parse(text.trim(), &Rfc3339)
        .map_err(|e| format!("not an RFC 3339 timestamp: {e}"))?;
    at.checked_to_offset(time::UtcOffset::UTC)
        .map(OffsetDateTime::date)
        .ok_or_else(|| "not an RFC 3339 timestamp: its UTC date is out of range".to_owned())
}

/// The vendor's message in an error body (`{"status":"failed","message":...}`), else the
/// body's first 200 characters, else `HTTP {status}`.
pub(crate) fn vendor_message(body: &[u8], status: u16) -> String {
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body)
        && let Some(message) = text(map.get("message"))
    {
        return message;
    }
    let body = String::from_utf8_lossy(body);
    let body: String = body.trim().chars().take(200).collect();
    if body.is_empty() {
        format!("HTTP {status}")
    } else {
        body
    }
}

/// What a Data Sync answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SyncOutcome {
    /// Synced (`SYNC_SUCCESSFUL`, or `successful` without a code).
    Synced,
    /// The statement is incomplete: ask again with `allow_incomplete_statement=true`.
    IncompleteStatement(String),
    /// The customer must re-link the account.
    ReauthorisationRequired(String),
    /// Mono could not sync now (`SYNC_ERROR`, or `failed` with another code): worth a retry.
    Failed(String),
}

/// Reads the answer of `POST /accounts/{id}/sync`.
pub(crate) fn read_sync(body: &[u8]) -> Result<SyncOutcome, String> {
    let sync: MonoConnectSync =
        serde_json::from_slice(body).map_err(|e| format!("not a Data Sync answer: {e}"))?;
    let code = sync.code.as_deref().map(str::trim).unwrap_or("");
    let said = |default: &str| {
        let message = sync.message.clone().filter(|m| !m.trim().is_empty());
        match message {
            Some(m) => format!("{code}: {m}"),
            None => format!("{code}: {default}"),
        }
    };
    Ok(match code {
        "SYNC_SUCCESSFUL" => SyncOutcome::Synced,
        "INCOMPLETE_STATEMENT_ERROR" => {
            SyncOutcome::IncompleteStatement(said("the statement is incomplete"))
        }
        "REAUTHORISATION_REQUIRED" => {
            SyncOutcome::ReauthorisationRequired(said("the account must be re-linked"))
        }
        "" if sync.status.as_deref() == Some("successful") => SyncOutcome::Synced,
        _ => SyncOutcome::Failed(said("Data Sync failed")),
    })
}

/// A webhook event: its name and the account it is about, when it names one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// `mono.events.account_updated`, ... (unknown events are "something changed").
    pub event: String,
    /// `data.account._id` / `data.account.id` / `data.account` / `data.id`.
    pub account_id: Option<String>,
}

/// Reads a webhook delivery's body.
pub(crate) fn read_webhook(body: &[u8]) -> Result<WebhookEvent, String> {
    let hook: MonoConnectWebhook =
        serde_json::from_slice(body).map_err(|e| format!("not a Mono webhook: {e}"))?;
    let data = hook.data.unwrap_or(Value::Null);
    let account = data.get("account");
    let account_id = account
        .and_then(|a| {
            text(a.get("_id"))
                .or_else(|| text(a.get("id")))
                .or_else(|| text(Some(a)))
        })
        .or_else(|| text(data.get("id")));
    Ok(WebhookEvent {
        event: hook.event,
        account_id,
    })
}

/// `dd-mm-yyyy`, the date form of Mono's examples.
pub(crate) fn format_date(date: time::Date) -> String {
    format!(
        "{:02}-{:02}-{:04}",
        date.day(),
        u8::from(date.month()),
        date.year()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use provider::WarningCode;

    const V2: &str = include_str!("../tests/fixtures/v2.json");
    const V1: &str = include_str!("../tests/fixtures/v1.json");
    const LEGACY: &str = include_str!("../tests/fixtures/legacy.json");

    fn ctx() -> MapContext<'static> {
        MapContext {
            provider: "mono-connect",
            account_id: "acc_1",
            currency: Currency::NGN,
        }
    }

    fn page(body: &str) -> MappedPage {
        read_page(body.as_bytes(), 200, &ctx()).unwrap()
    }

    fn date(y: i32, m: u8, d: u8) -> time::Date {
        time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap()
    }

    // ---- an answer read in one typed pass, against the reading with records borrowed raw ----

    /// What the reading before the typed walk made of a body: the envelope in one pass with
    /// each record borrowed raw, then typed by [`map_record`]; `None` where it was not taken
    /// or its paging is unreadable.
    fn read_borrowed(body: &str) -> Option<MappedPage> {
        let (records, paging) = read_in_one_pass(body.as_bytes())?;
        let mut page = MappedPage {
            transactions: Vec::with_capacity(records.len()),
            ..MappedPage::default()
        };
        read_paging(&mut page, paging.as_ref()).ok()?;
        for (index, raw) in records.into_iter().enumerate() {
            push_mapped(&mut page, map_record(raw, index, &ctx()));
        }
        Some(page)
    }

    /// The typed walk reads `body`, and makes of it exactly what the borrowed reading makes.
    fn assert_walk_agrees(body: &str) -> MappedPage {
        let walked = read_typed(body, &ctx()).unwrap_or_else(|| panic!("{body}"));
        let borrowed = read_borrowed(body).unwrap_or_else(|| panic!("{body}"));
        // `MappedPage`'s debug form shows every field, raw records and warnings included.
        assert_eq!(format!("{walked:?}"), format!("{borrowed:?}"), "{body}");
        walked
    }

    const GOOD_1: &str =
        r#"{"id":"a","type":"debit","amount":5,"date":"2024-01-02T00:00:00Z","balance":"x"}"#;
    const GOOD_2: &str = r#"{"_id":"b","type":"Credit","amount":"700","date":"2024-01-01T23:00:00-02:00","currency":"NGN","narration":12}"#;

    #[test]
    fn the_typed_walk_reads_the_three_shapes_as_before() {
        for body in [V2, V1, LEGACY] {
            let page = assert_walk_agrees(body);
            assert!(!page.transactions.is_empty());
            assert!(page.transactions.iter().all(|t| t.raw.is_some()));
        }
    }

    #[test]
    fn a_bad_record_mid_page_is_reported_alone_and_its_neighbours_kept() {
        // One that does not type (a field given twice), one that types but does not map (no
        // type), a string, an array: each reported by itself, in its place.
        let body = format!(
            r#"{{"status":"successful","data":[{GOOD_1},
            {{"id":"d","id":"e"}},{{"id":"f","amount":1,"date":"2024-01-02T00:00:00Z"}},
            "oops",["g"],{GOOD_2}],"meta":{{"total":6,"page":1,"next":null}}}}"#
        );
        let page = assert_walk_agrees(&body);
        let ids: Vec<&str> = page
            .transactions
            .iter()
            .map(|t| t.provider_transaction_id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(page.transactions[0].raw.as_ref().unwrap().get(), GOOD_1);
        assert_eq!(page.transactions[1].raw.as_ref().unwrap().get(), GOOD_2);
        let reported: Vec<(&str, &str)> = page
            .warnings
            .iter()
            .map(|w| (w.record.as_str(), w.field.as_str()))
            .collect();
        assert_eq!(
            reported,
            [
                ("a", "balance"),
                ("#2", "record"),
                ("f", "type"),
                ("#4", "record"),
                // serde reads an array into a struct field by field: `["g"]` has an id.
                ("g", "type"),
            ]
        );
    }

    #[test]
    fn the_typed_walk_takes_any_spacing_and_paging_before_or_after_the_records() {
        let meta = r#"{"total":"7","page":2,"next":"https://x/v2/a/transactions?page=3"}"#;
        for body in [
            format!(r#"{{"meta":{meta},"status":"successful","data":[{GOOD_1},{GOOD_2}]}}"#),
            format!(r#"{{"data":[{GOOD_1},{GOOD_2}],"meta":{meta},"message":{{"m":1}}}}"#),
            format!(r#"{{"paging":{meta},"data":[{GOOD_1},{GOOD_2}]}}"#),
            format!(r#"{{"data":{{"transactions":[{GOOD_1},{GOOD_2}],"paging":{meta}}}}}"#),
            format!(
                r#"{{"meta":null,"data":{{"paging":null,"transactions":[{GOOD_1},{GOOD_2}]}},"paging":{meta}}}"#
            ),
            format!(
                " \r\n{{ \"status\" : \"successful\" ,\n \"data\"\t:\t[\n\t{GOOD_1}\n ,\n\n {GOOD_2} \n]\r\n , \"extra\": [1, {{\"a\": \"]\"}}], \"meta\" : {meta} }}\n "
            ),
        ] {
            let page = assert_walk_agrees(&body);
            assert_eq!(
                (
                    page.transactions.len(),
                    page.total,
                    page.page,
                    page.next_page
                ),
                (2, Some(7), Some(2), Some(3)),
                "{body}"
            );
        }
        for body in [r#"{"data":[]}"#, r#"{"data":{"transactions":[ ]}}"#] {
            assert!(assert_walk_agrees(body).transactions.is_empty());
        }
    }

    #[test]
    fn what_the_typed_walk_does_not_take_is_left_to_the_other_readings() {
        for body in [
            r#"{"status":"failed","message":"nope","data":[]}"#.to_owned(),
            r#"{"status":"successful"}"#.to_owned(),
            r#"{"data":null}"#.to_owned(),
            r#"{"data":"x"}"#.to_owned(),
            r#"{"data":{"paging":{}}}"#.to_owned(),
            r#"{"data":{"transactions":null}}"#.to_owned(),
            r#"{"data":[],"meta":{"total":"many"}}"#.to_owned(),
            r#"{"data":[],"meta":{"next":"https://x/no-page"}}"#.to_owned(),
            format!(r#"{{"d\u0061ta":[{GOOD_1}]}}"#),
            format!(r#"{{"data":[{GOOD_1}],"data":[]}}"#),
            r#"{"data":[],"meta":{},"meta":{}}"#.to_owned(),
            r#"{"data":{"transactions":[],"transactions":[]}}"#.to_owned(),
            format!(r#"{{"data":[{GOOD_1},]}}"#),
            format!(r#"{{"data":[{GOOD_1}]}} x"#),
            format!(r#"{{"data":[{GOOD_1},{{"id":}}]}}"#),
            format!(
                r#"{{"message":{}1{},"data":[]}}"#,
                "[".repeat(70),
                "]".repeat(70)
            ),
            "not json".to_owned(),
        ] {
            assert!(read_typed(&body, &ctx()).is_none(), "{body}");
        }
    }

    /// A small deterministic generator (xorshift), so the equivalence below sweeps many
    /// answers without a property-testing dependency.
    struct Pick(u64);

    impl Pick {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            usize::try_from(self.0 % n as u64).unwrap_or(0)
        }
    }

    const SPACES: [&str; 5] = ["", " ", "\n", "\t ", "\r\n  "];

    const RECORD_POOL: [&str; 10] = [
        GOOD_1,
        GOOD_2,
        r#"{ "id" : 7 , "type" : "debit" , "amount" : 0 , "date" : "2024-02-29T12:00:00.5Z" , "balance" : -5 }"#,
        r#"{"id":"c","type":"debit","amount":1.5,"date":"2024-01-02T00:00:00Z"}"#,
        r#"{"id":"d","type":"debit","amount":1,"date":"yesterday"}"#,
        r#"{"id":"e","type":"debit","amount":1,"date":"2024-01-02T00:00:00Z","currency":"USD"}"#,
        r#"{"id":"f","id":"g"}"#,
        r#""oops""#,
        r#"["h", null]"#,
        r#"{"id":"i","type":"refund","amount":1,"date":"2024-01-02T00:00:00Z","narration":"caf\u00e9"}"#,
    ];

    /// Answers of the three shapes assembled from good, unmappable and malformed records, in
    /// any spacing, with the fields in any order: the typed walk makes the borrowed reading's
    /// page.
    #[test]
    fn the_typed_walk_agrees_with_the_borrowed_reading() {
        let mut p = Pick(0x5851_f42d_4c95_7f2d);
        let ws = |p: &mut Pick| SPACES[p.below(SPACES.len())];
        for _ in 0..2_000 {
            let mut texts = Vec::new();
            for _ in 0..p.below(8) {
                let record = RECORD_POOL[p.below(RECORD_POOL.len())];
                texts.push(format!("{}{record}{}", ws(&mut p), ws(&mut p)));
            }
            let list = format!("[{}]", texts.join(","));
            let paging = [
                "null",
                r#"{"total":9,"page":"1","next":"https://x/a?page=2"}"#,
                r#"{ "next" : 4 , "previous": null }"#,
            ];
            let (a, b, c) = (ws(&mut p), ws(&mut p), ws(&mut p));
            let (meta, legacy) = (paging[p.below(3)], paging[p.below(3)]);
            let data = match p.below(3) {
                0 => list,
                1 => format!(r#"{{{a}"transactions"{b}:{c}{list}}}"#),
                _ => format!(
                    r#"{{"paging":{},"transactions":{list},"x":[{{"y":"]"}}]}}"#,
                    paging[p.below(3)]
                ),
            };
            let body = match p.below(3) {
                0 => format!(r#"{a}{{"status":"successful","data"{b}:{data},"meta":{meta}}}{c}"#),
                1 => format!(r#"{{"paging":{legacy},{a}"data":{data}{b},"message":"ok"}}"#),
                _ => format!(r#"{{"meta":{meta},"data":{data},"paging":{legacy},"z":{{}}}}"#),
            };
            assert_walk_agrees(&body);
        }
    }

    #[test]
    fn the_one_pass_reading_agrees_with_the_reading_in_parts() {
        let with_bad_records = r#"{"data":[{"id":"a","type":"debit","amount":5,"date":"2024-01-02T00:00:00Z"},"oops",{}],"meta":{"total":3,"page":1,"next":null}}"#;
        for body in [V2, V1, LEGACY, with_bad_records] {
            let (fast, fast_paging) = read_in_one_pass(body.as_bytes()).unwrap();
            let (slow, slow_paging) = read_in_parts(body.as_bytes(), 200, &ctx()).unwrap();
            let texts = |records: Vec<&RawValue>| {
                records
                    .iter()
                    .map(|r| r.get().to_owned())
                    .collect::<Vec<_>>()
            };
            assert_eq!(texts(fast), texts(slow));
            let facts = |p: Option<MonoConnectPaging>| p.map(|p| (p.total, p.page, p.next));
            assert_eq!(facts(fast_paging), facts(slow_paging));
        }
        // What the one pass does not read goes to the reading in parts, which names the fault.
        for body in [
            r#"{"status":"failed","message":"nope","data":[]}"#,
            r#"{"data":"text"}"#,
            r#"{"data":{"paging":{}}}"#,
            r#"{"data":null}"#,
        ] {
            assert!(read_in_one_pass(body.as_bytes()).is_none(), "{body}");
            assert!(
                read_in_parts(body.as_bytes(), 200, &ctx()).is_err(),
                "{body}"
            );
        }
    }

    #[test]
    fn the_docs_v2_example_maps_exactly() {
        let page = page(V2);
        assert!(page.warnings.is_empty(), "{:?}", page.warnings);
        assert_eq!(
            (page.total, page.page, page.next_page),
            (Some(307), Some(1), Some(2))
        );
        let t = &page.transactions[0];
        assert_eq!(t.provider_transaction_id, "66141bbff58d2687e7d91234");
        assert_eq!(t.direction, Direction::Debit);
        assert_eq!(t.amount, Money::from_minor(500, Currency::NGN));
        assert_eq!(
            t.balance_after,
            Some(Money::from_minor(1500, Currency::NGN))
        );
        assert_eq!(t.booked_on, date(2023, 12, 14));
        assert_eq!(t.narration, "PG00001");
        assert_eq!(t.account_id, "acc_1");
        assert!(t.raw.as_ref().unwrap().get().contains("\"category\""));
    }

    #[test]
    fn the_docs_v1_and_legacy_examples_map_exactly() {
        let v1 = page(V1);
        assert_eq!(
            (v1.total, v1.page, v1.next_page),
            (Some(35), Some(1), Some(2))
        );
        assert_eq!(v1.transactions[0].direction, Direction::Credit);
        assert_eq!(v1.transactions[0].amount.minor(), 9000);
        assert_eq!(v1.transactions[0].booked_on, date(2023, 10, 6));
        let legacy = page(LEGACY);
        assert_eq!(
            (legacy.total, legacy.page, legacy.next_page),
            (Some(190), Some(2), Some(3))
        );
        let t = &legacy.transactions[0];
        assert_eq!(t.provider_transaction_id, "62a05bc04112ea670bd09812");
        // 147085 kobo is N1,470.85: already minor units, never divided or multiplied.
        assert_eq!(t.amount.minor(), 147_085);
        assert_eq!(t.balance_after.unwrap().minor(), 1_021_841);
        assert_eq!(t.booked_on, date(2022, 5, 30));
    }

    #[test]
    fn the_booking_date_is_the_utc_date_of_the_timestamp() {
        let body = |date: &str| {
            format!(r#"{{"data":[{{"id":"a","type":"debit","amount":1,"date":"{date}"}}]}}"#)
        };
        assert_eq!(
            page(&body("2024-01-31T23:30:00.000Z")).transactions[0].booked_on,
            date(2024, 1, 31)
        );
        // 00:30 at +01:00 is 23:30 UTC the day before.
        assert_eq!(
            page(&body("2024-02-01T00:30:00+01:00")).transactions[0].booked_on,
            date(2024, 1, 31)
        );
        let bad = page(&body("31-01-2024"));
        assert_eq!(bad.warnings[0].field, "date");
        assert!(bad.transactions.is_empty());
    }

    #[test]
    fn a_timestamp_whose_utc_date_is_out_of_range_is_a_bad_record_not_a_panic() {
        let body = r#"{"data":[{"id":"a","type":"debit","amount":1,"date":"9999-12-31T23:00:00-05:00"},
            {"id":"b","type":"debit","amount":1,"date":"2024-01-02T00:00:00Z"}]}"#;
        let page = page(body);
        assert_eq!(page.transactions.len(), 1);
        let warning = &page.warnings[0];
        assert_eq!(
            (warning.record.as_str(), warning.field.as_str()),
            ("a", "date")
        );
        assert!(
            warning.reason.contains("out of range"),
            "{}",
            warning.reason
        );
    }

    #[test]
    fn the_timestamp_shortcut_reads_as_the_general_reading() {
        let general = utc_date_in_general;
        let mut count = 0;
        for date in [
            "2024-02-29",
            "2023-02-29",
            "2023-02-28",
            "2024-12-31",
            "2024-13-01",
            "2024-00-10",
            "2024-01-00",
            "2024-04-31",
            "0000-01-01",
            "9999-12-31",
            "2024-1-01",
            "2o24-01-01",
        ] {
            for sep in ["T", "t", " ", "x"] {
                for time in [
                    "00:00:00", "23:59:59", "24:00:00", "12:60:00", "12:00:60", "23:59:60",
                    "1:00:00", "12:0a:00",
                ] {
                    for fraction in ["", ".", ".5", ".123456789", ".1234567890", ".x"] {
                        for offset in ["Z", "z", "+01:00", "-23:59", "+24:00", "", "Z "] {
                            for pad in ["", " "] {
                                let text = format!("{pad}{date}{sep}{time}{fraction}{offset}{pad}");
                                assert_eq!(
                                    format!("{:?}", utc_date(&text)),
                                    format!("{:?}", general(&text)),
                                    "{text}"
                                );
                                count += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(count > 10_000);
    }

    #[test]
    fn the_plain_integer_shortcut_reads_as_the_general_reading() {
        let mut texts: Vec<String> = [
            "0", "7", "00", "007", "-1", "-0", "+1", "1.0", "1e2", " 5", "5 ", "\"12\"",
            "\" 12 \"", "\"\"", "\"-\"", "null", "true", "-", "",
        ]
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
        for len in 1..=20 {
            texts.push("9".repeat(len));
            texts.push(format!("1{}", "0".repeat(len - 1)));
            texts.push(format!("-{}", "9".repeat(len)));
        }
        texts.push(i64::MAX.to_string());
        texts.push(i64::MIN.to_string());
        texts.push("9223372036854775808".to_owned());
        for text in texts {
            let Ok(raw) = RawValue::from_string(text.clone()) else {
                continue;
            };
            assert_eq!(minor_units(&raw), minor_units_in_general(&raw), "{text}");
        }
    }

    #[test]
    fn amounts_are_integer_minor_units_positive_and_in_range() {
        let body = |amount: &str| {
            format!(
                r#"{{"data":[{{"id":"a","type":"credit","amount":{amount},"date":"2024-01-01T00:00:00Z"}}]}}"#
            )
        };
        assert_eq!(page(&body("0")).transactions[0].amount.minor(), 0);
        assert_eq!(page(&body("\"2500\"")).transactions[0].amount.minor(), 2500);
        assert_eq!(
            page(&body("9223372036854775807")).transactions[0]
                .amount
                .minor(),
            i64::MAX
        );
        for bad in [
            "-500",
            "14.5",
            "1e3",
            "\"1,470.85\"",
            "9223372036854775808",
            "null",
            "true",
        ] {
            let p = page(&body(bad));
            assert!(p.transactions.is_empty(), "{bad}");
            assert_eq!(p.warnings[0].code, WarningCode::RecordSkipped, "{bad}");
            assert_eq!(p.warnings[0].field, "amount", "{bad}");
        }
    }

    #[test]
    fn currency_defaults_to_the_account_and_another_is_a_mismatch() {
        let body = |currency: &str| {
            format!(
                r#"{{"data":[{{"id":"a","type":"debit","amount":1,"date":"2024-01-01T00:00:00Z"{currency}}}]}}"#
            )
        };
        assert_eq!(
            page(&body("")).transactions[0].amount.currency(),
            Currency::NGN
        );
        assert_eq!(page(&body(r#","currency":"NGN""#)).transactions.len(), 1);
        let ghs = page(&body(r#","currency":"GHS""#));
        assert_eq!(ghs.warnings[0].code, WarningCode::CurrencyMismatch);
    }

    #[test]
    fn one_bad_record_never_fails_the_others() {
        let body = r#"{"data":[
            {"id":"ok","type":"debit","amount":1,"date":"2024-01-01T00:00:00Z"},
            {"type":"debit","amount":1,"date":"2024-01-01T00:00:00Z"},
            {"id":"t","type":"transfer","amount":1,"date":"2024-01-01T00:00:00Z"},
            {"id":"b","type":"credit","amount":1,"balance":"N/A","date":"2024-01-01T00:00:00Z"},
            7
        ]}"#;
        let p = page(body);
        let ids: Vec<_> = p
            .transactions
            .iter()
            .map(|t| t.provider_transaction_id.as_str())
            .collect();
        assert_eq!(ids, ["ok", "b"]);
        let fields: Vec<_> = p
            .warnings
            .iter()
            .map(|w| (w.code, w.field.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                (WarningCode::RecordSkipped, "id"),
                (WarningCode::RecordSkipped, "type"),
                (WarningCode::FieldIgnored, "balance"),
                (WarningCode::RecordSkipped, "record"),
            ]
        );
    }

    #[test]
    fn next_is_read_as_a_page_number_never_followed() {
        let next = |v: Value| next_page(Some(&v));
        assert_eq!(next(Value::Null), Ok(None));
        assert_eq!(next(Value::String(String::new())), Ok(None));
        assert_eq!(
            next("https://api.withmono.com/v2/x/transactions?page=2".into()),
            Ok(Some(2))
        );
        assert_eq!(
            next("/accounts/x/transactions?limit=5&page=12#f".into()),
            Ok(Some(12))
        );
        assert_eq!(next(3.into()), Ok(Some(3)));
        assert!(next("https://api.withmono.com/v2/x/transactions".into()).is_err());
        assert!(next(Value::Bool(true)).is_err());
    }

    #[test]
    fn failed_status_missing_data_and_garbage_are_bad_payloads() {
        for body in [
            r#"{"status":"failed","message":"No valid API key provided"}"#,
            r#"{"status":"successful"}"#,
            r#"{"data":{"paging":{}}}"#,
            r#"{"data":"x"}"#,
            "<html>",
            r#"{"data":[],"meta":{"next":"?page=x"}}"#,
        ] {
            assert!(
                matches!(
                    read_page(body.as_bytes(), 200, &ctx()),
                    Err(ProviderError::BadPayload { .. })
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn sync_answers() {
        assert_eq!(read_sync(br#"{"status":"successful","hasNewData":true,"code":"SYNC_SUCCESSFUL","message":null}"#), Ok(SyncOutcome::Synced));
        assert!(matches!(
            read_sync(br#"{"status":"failed","code":"REAUTHORISATION_REQUIRED"}"#),
            Ok(SyncOutcome::ReauthorisationRequired(_))
        ));
        assert!(matches!(
            read_sync(br#"{"status":"failed","code":"INCOMPLETE_STATEMENT_ERROR"}"#),
            Ok(SyncOutcome::IncompleteStatement(_))
        ));
        assert!(
            matches!(read_sync(br#"{"status":"failed","code":"SYNC_ERROR","message":"later"}"#), Ok(SyncOutcome::Failed(m)) if m == "SYNC_ERROR: later")
        );
        assert!(read_sync(b"<html>").is_err() && read_sync(b"7").is_err());
    }

    #[test]
    fn webhooks_name_their_account() {
        let hook = |b: &str| read_webhook(b.as_bytes()).unwrap();
        assert_eq!(
            hook(r#"{"event":"mono.events.account_updated","data":{"account":{"_id":"a1"}}}"#)
                .account_id
                .as_deref(),
            Some("a1")
        );
        assert_eq!(hook(r#"{"event":"mono.events.account_connected","data":{"id":"a2","customer":"c","meta":{}}}"#).account_id.as_deref(), Some("a2"));
        assert_eq!(
            hook(r#"{"event":"mono.events.something_new"}"#).account_id,
            None
        );
        assert!(read_webhook(b"{}").is_err());
    }

    #[test]
    fn dates_are_sent_as_day_month_year() {
        assert_eq!(format_date(date(2020, 10, 1)), "01-10-2020");
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            vendor_message(br#"{"status":"failed","message":"Too many requests"}"#, 429),
            "Too many requests"
        );
        assert_eq!(vendor_message(b"", 502), "HTTP 502");
        assert_eq!(vendor_message(b" gateway down ", 502), "gateway down");
    }
}
