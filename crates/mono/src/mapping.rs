//! Pure functions from the Mono-style wire format onto the canonical model.
//!
//! Nothing here does I/O: the client hands over response bytes and gets canonical values or a
//! [`ProviderError`] back, so every reading is unit-tested without a network. The tolerant
//! readings and the decisions where the vendor docs are silent are listed in the crate docs.

use std::sync::Arc;

use provider::json_walk::JsonCursor;
use provider::{
    Currency, Date, Direction, MappingError, Money, MoneyError, ProviderError, RawRecord,
    RecordWarning, RefreshDelivery, Transaction, TransactionId,
};
use serde_json::value::RawValue;
use time::macros::format_description;

use crate::wire::{
    MonoDelivery, MonoEntity, MonoEnvelope, MonoError, MonoRecordId, MonoScalar, MonoTransaction,
};

/// What the mapping needs to know besides the payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MapContext<'a> {
    /// The provider instance name (goes into ids and errors).
    pub provider: &'a str,
    /// The account the records belong to (the queried one).
    pub account_id: &'a str,
    /// The currency amounts are read in.
    pub currency: Currency,
}

/// An `entity` mapped onto canonical transactions, with its paging facts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MappedEntity {
    /// The records, in the vendor's order.
    pub transactions: Vec<Transaction>,
    /// `total`, when given.
    pub total: Option<u64>,
    /// `total_pages`, when given.
    pub total_pages: Option<u32>,
    /// `current_page`, when given.
    pub current_page: Option<u32>,
    /// `next_page`: `None` on the last page.
    pub next_page: Option<u32>,
    /// Records left out and fields dropped (see [`provider::RecordWarning`]).
    pub warnings: Vec<RecordWarning>,
}

/// Reads a 2xx `account_transactions` body: `{entity}`, or `{error}` (a bad payload).
pub(crate) fn read_entity(
    body: &[u8],
    status: u16,
    ctx: &MapContext<'_>,
) -> Result<MappedEntity, ProviderError> {
    // The common case in one typed pass, each record typed where it lies in the body; anything
    // the walk does not take goes the general way, which says what is wrong.
    if let Ok(text) = std::str::from_utf8(body)
        && let Some(entity) = read_entity_walk(text, ctx)
    {
        return Ok(entity);
    }
    let bad = |message: String| bad_payload(ctx.provider, Some(status), message);
    let envelope: MonoEnvelope<&RawValue> = serde_json::from_slice(body)
        .map_err(|e| bad(format!("unreadable account_transactions body: {e}")))?;
    if let Some(error) = envelope.error.filter(|e| !e.is_null()) {
        return Err(bad(format!(
            "error on HTTP {status}: {}",
            error_text(&error)
        )));
    }
    let entity = envelope
        .entity
        .ok_or_else(|| bad("body has neither entity nor error".to_owned()))?;
    map_entity(entity, ctx).map_err(|e| e.into_error(ctx.provider, Some(status)))
}

/// Reads a webhook delivery for the refresh of `ctx.account_id`.
pub(crate) fn read_delivery(
    body: &[u8],
    ctx: &MapContext<'_>,
) -> Result<RefreshDelivery, ProviderError> {
    let bad = |message: String| bad_payload(ctx.provider, None, message);
    let delivery: MonoDelivery = serde_json::from_slice(body)
        .map_err(|e| bad(format!("unreadable webhook delivery: {e}")))?;
    if let Some(error) = delivery.error.filter(|e| !e.is_null()) {
        return Err(bad(format!(
            "delivery reports an error: {}",
            error_text(&error)
        )));
    }
    let entity = delivery
        .entity
        .ok_or_else(|| bad("delivery has no entity".to_owned()))?;
    let account_id = match delivery.account_id {
        None => None,
        Some(MonoScalar::Text(text) | MonoScalar::Number(text)) => {
            Some(text.trim().to_owned()).filter(|id| !id.is_empty())
        }
        Some(MonoScalar::Other(text)) => {
            return Err(bad(format!("delivery account_id is not an id: {text}")));
        }
    };
    let mapped = map_entity(entity, ctx).map_err(|e| e.into_error(ctx.provider, None))?;
    // A delivery only tells the gateway that fresh data exists (the listing that follows reports
    // its warnings to callers); what it could not read is logged here.
    for warning in &mapped.warnings {
        tracing::warn!(provider = %ctx.provider, account = %ctx.account_id, %warning, "mono: webhook delivery record");
    }
    Ok(RefreshDelivery {
        account_id,
        transactions: mapped.transactions,
    })
}

/// Why an entity could not be mapped, before the HTTP status is known: its own shape is wrong
/// (paging fields, missing transactions). Bad records are warnings, not errors.
#[derive(Debug)]
enum EntityError {
    /// What is wrong with the shape.
    Shape(String),
}

impl EntityError {
    fn into_error(self, provider: &str, status: Option<u16>) -> ProviderError {
        match self {
            EntityError::Shape(message) => bad_payload(provider, status, message),
        }
    }
}

fn map_entity(
    entity: MonoEntity<&RawValue>,
    ctx: &MapContext<'_>,
) -> Result<MappedEntity, EntityError> {
    let records = entity
        .transactions
        .ok_or_else(|| EntityError::Shape("entity has no transactions array".to_owned()))?;
    let paging = Paging::read(
        entity.total,
        entity.total_pages,
        entity.current_page,
        entity.next_page,
        entity.previous_page,
    )?;
    let mut mapped = EntityBuilder::new(ctx, records.len());
    for raw in &records {
        mapped.push_raw(raw);
    }
    Ok(mapped.finish(paging))
}

/// An entity's paging facts, read.
struct Paging {
    total: Option<u64>,
    total_pages: Option<u32>,
    current_page: Option<u32>,
    next_page: Option<u32>,
}

impl Paging {
    fn read(
        total: Option<MonoScalar>,
        total_pages: Option<MonoScalar>,
        current_page: Option<MonoScalar>,
        next_page: Option<MonoScalar>,
        previous_page: Option<MonoScalar>,
    ) -> Result<Paging, EntityError> {
        let count = |field: &'static str, value: Option<MonoScalar>| {
            page_number(field, value).map_err(EntityError::Shape)
        };
        let total = count("total", total)?;
        let total_pages =
            count("total_pages", total_pages)?.map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        let current_page =
            count("current_page", current_page)?.map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        // Page 0 does not exist: read as "no next page".
        let next_page = count("next_page", next_page)?
            .filter(|&n| n > 0)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        // previous_page must be readable ("" or a number) but says nothing we need.
        count("previous_page", previous_page)?;
        Ok(Paging {
            total,
            total_pages,
            current_page,
            next_page,
        })
    }
}

/// An entity's records being mapped one by one, in the vendor's order.
struct EntityBuilder<'c> {
    ctx: &'c MapContext<'c>,
    /// The provider name, shared by every record's id (one allocation a page, not a record).
    provider: Arc<str>,
    transactions: Vec<Transaction>,
    warnings: Vec<RecordWarning>,
    /// The 0-based place of the next record.
    index: usize,
}

impl<'c> EntityBuilder<'c> {
    fn new(ctx: &'c MapContext<'c>, capacity: usize) -> Self {
        EntityBuilder {
            ctx,
            provider: Arc::from(ctx.provider),
            transactions: Vec::with_capacity(capacity),
            warnings: Vec::new(),
            index: 0,
        }
    }

    /// Maps a record from its raw JSON (typed from that text here).
    fn push_raw(&mut self, raw: &RawValue) {
        let result = map_transaction(raw, self.index, self.ctx, &mut self.warnings);
        self.push(result, raw.get());
    }

    /// Maps a record already typed, whose exact JSON is `text`: what [`Self::push_raw`] does
    /// once the text has typed.
    fn push_typed(&mut self, wire: MonoTransaction, text: &str) {
        let raw = RawRecord::from_read_text(text);
        let (ctx, provider) = (self.ctx, &self.provider);
        let result = transaction_from_wire(
            wire,
            text,
            raw,
            self.index,
            ctx,
            provider,
            &mut self.warnings,
        );
        self.push(result, text);
    }

    fn push(&mut self, result: Result<Transaction, MappingError>, text: &str) {
        match result {
            Ok(tx) => self.transactions.push(tx),
            // An error about no single field (a missing id) shows the whole record.
            Err(e) => self
                .warnings
                .push(RecordWarning::skipped(e.or_raw_value(text))),
        }
        self.index += 1;
    }

    fn finish(self, paging: Paging) -> MappedEntity {
        MappedEntity {
            transactions: self.transactions,
            total: paging.total,
            total_pages: paging.total_pages,
            current_page: paging.current_page,
            next_page: paging.next_page,
            warnings: self.warnings,
        }
    }
}

/// Reads a success `account_transactions` body (`{"entity": {"transactions": [...], paging}}`)
/// in one typed pass, each record typed where it lies in the body and its exact text kept, so
/// no record is scanned twice. A record that does not type is read again as raw JSON and mapped
/// as [`map_entity`] maps it, which reports it alone; the records around it are kept.
///
/// `None` whenever the body is anything else or written unusually (an `error`, no entity or no
/// transactions array, unreadable paging, a key written with an escape, a field given twice,
/// malformed JSON, ...): the caller then takes the general reading, which says what is wrong.
/// Whenever this gives an entity, it is the one [`map_entity`] makes of the same body.
fn read_entity_walk(body: &str, ctx: &MapContext<'_>) -> Option<MappedEntity> {
    let mut mapped = EntityBuilder::new(ctx, 0);
    let mut entity_seen = false;
    let mut error_seen = false;
    let mut transactions_seen = false;
    // Each paging field: not yet seen, or seen with its value.
    let mut fields: [Option<Option<MonoScalar>>; 5] = Default::default();
    const FIELDS: [&str; 5] = [
        "total",
        "total_pages",
        "current_page",
        "next_page",
        "previous_page",
    ];
    let mut cursor = JsonCursor::new(body);
    cursor.object(|key, c| {
        match key {
            "entity" if !std::mem::replace(&mut entity_seen, true) => c.object(|key, c| {
                match key {
                    "transactions" if !std::mem::replace(&mut transactions_seen, true) => {
                        mapped.transactions.reserve(100);
                        c.array(|c| read_record(&mut mapped, c))?;
                    }
                    "transactions" => return None,
                    _ => match FIELDS.iter().position(|f| *f == key) {
                        // Serde refuses a field given twice.
                        Some(i) if fields[i].is_some() => return None,
                        Some(i) => fields[i] = Some(c.member::<Option<MonoScalar>>()?),
                        None => c.skip()?,
                    },
                }
                Some(())
            })?,
            "error" if !std::mem::replace(&mut error_seen, true) => {
                if c.member::<Option<serde_json::Value>>()?
                    .is_some_and(|e| !e.is_null())
                {
                    return None;
                }
            }
            "entity" | "error" => return None,
            _ => c.skip()?,
        }
        Some(())
    })?;
    if !(cursor.at_end() && transactions_seen) {
        return None;
    }
    let [total, total_pages, current_page, next_page, previous_page] = fields.map(Option::flatten);
    let paging = Paging::read(total, total_pages, current_page, next_page, previous_page).ok()?;
    Some(mapped.finish(paging))
}

/// Reads and maps the record at the cursor; `None` when it is not even JSON.
fn read_record<'a>(mapped: &mut EntityBuilder<'_>, cursor: &mut JsonCursor<'a>) -> Option<()> {
    // Only an object is typed in place: anything else goes the general way, as before.
    if cursor.peek() == Some(b'{')
        && let Ok((wire, text)) = cursor.read::<MonoTransaction>()
    {
        mapped.push_typed(wire, text);
        return Some(());
    }
    let (raw, _) = cursor.read::<&'a RawValue>().ok()?;
    mapped.push_raw(raw);
    Some(())
}

/// Maps one record; `position` (0-based) names it when it has no readable id. Ancillary fields
/// that do not parse (`available_balance`, `value_date`, `bank_name`) are set to none and
/// reported in `warnings`; the record is kept.
pub(crate) fn map_transaction(
    raw: &RawValue,
    position: usize,
    ctx: &MapContext<'_>,
    warnings: &mut Vec<RecordWarning>,
) -> Result<Transaction, MappingError> {
    let positional = || format!("#{position}");
    let wire: MonoTransaction = serde_json::from_str(raw.get()).map_err(|e| {
        // Name the record by its id when even that much can be read.
        let name = serde_json::from_str::<MonoRecordId>(raw.get())
            .ok()
            .and_then(|r| r.id)
            .and_then(|id| id_text(id).ok())
            .unwrap_or_else(positional);
        MappingError::new(name, "record", e.to_string()).with_raw_value(raw.get())
    })?;
    let kept = RawRecord::from_raw(raw);
    let provider = Arc::from(ctx.provider);
    transaction_from_wire(wire, raw.get(), kept, position, ctx, &provider, warnings)
}

/// Maps a typed record whose exact JSON is `text` (kept as `raw`); `position` as in
/// [`map_transaction`]; `provider` is `ctx.provider`, shared by the ids of a page's records.
fn transaction_from_wire(
    wire: MonoTransaction,
    text: &str,
    raw: RawRecord,
    position: usize,
    ctx: &MapContext<'_>,
    provider: &Arc<str>,
    warnings: &mut Vec<RecordWarning>,
) -> Result<Transaction, MappingError> {
    let positional = || format!("#{position}");
    let id = match wire.id.map(id_text) {
        Some(Ok(id)) => id,
        Some(Err(reason)) => {
            return Err(MappingError::new(positional(), "id", reason).with_raw_value(text));
        }
        None => {
            return Err(MappingError::new(positional(), "id", "is missing").with_raw_value(text));
        }
    };
    let err = |field: &'static str, reason: String| MappingError::new(id.clone(), field, reason);

    let ignored = |field: &str, reason: String, raw_value: &str| {
        RecordWarning::field_ignored(
            id.as_str(),
            field,
            format!("{reason}: set to null"),
            Some(raw_value),
        )
    };

    let direction = match wire.trans_type.as_deref() {
        Some(text) => text
            .parse::<Direction>()
            .map_err(|reason| err("trans_type", reason).with_raw_value(text))?,
        None => return Err(err("trans_type", "is missing".to_owned())),
    };
    let amount = match &wire.amount {
        Some(value) => read_money(value, ctx.currency)
            .map_err(|e| money_error(err("amount", e.to_string()), &e, value))?,
        None => return Err(err("amount", "is missing".to_owned())),
    };
    if amount.is_negative() {
        return Err(err(
            "amount",
            format!("must not be negative (trans_type carries the sign), got {amount}"),
        )
        .with_raw_value(&scalar_json(wire.amount.as_ref())));
    }
    let balance_after = match &wire.available_balance {
        None => None,
        Some(MonoScalar::Text(text)) if text.trim().is_empty() => None,
        Some(value) => match read_money(value, ctx.currency) {
            Ok(balance) => Some(balance),
            Err(e) => {
                warnings.push(ignored(
                    "available_balance",
                    e.to_string(),
                    &scalar_json(Some(value)),
                ));
                None
            }
        },
    };
    let booked_on = match non_blank(wire.transaction_date) {
        Some(text) => {
            parse_date(&text).map_err(|r| err("transaction_date", r).with_raw_value(&text))?
        }
        None => return Err(err("transaction_date", "is missing".to_owned())),
    };
    let value_on = match non_blank(wire.value_date) {
        Some(text) => match parse_date(&text) {
            Ok(date) => Some(date),
            Err(reason) => {
                warnings.push(ignored("value_date", reason, &text));
                None
            }
        },
        None => None,
    };
    let bank = match wire.bank_name {
        Some(MonoScalar::Text(name)) => non_blank(Some(name)).map(|b| b.trim().to_owned()),
        Some(other @ (MonoScalar::Number(_) | MonoScalar::Other(_))) => {
            let text = scalar_json(Some(&other));
            warnings.push(ignored("bank_name", "not a bank name".to_owned(), &text));
            None
        }
        None => None,
    };
    let reference = match wire.reference {
        Some(MonoScalar::Text(text) | MonoScalar::Number(text)) => {
            Some(text.trim().to_owned()).filter(|r| !r.is_empty())
        }
        Some(MonoScalar::Other(text)) => {
            return Err(err(
                "reference",
                format!("expected a string or number, got {text}"),
            ));
        }
        None => None,
    };

    Ok(Transaction {
        id: TransactionId::new(Arc::clone(provider), id.as_str()),
        provider: Arc::clone(provider),
        provider_transaction_id: id,
        account_id: ctx.account_id.to_owned(),
        customer_id: None,
        direction,
        amount,
        balance_after,
        booked_on,
        value_on,
        narration: wire.narration.unwrap_or_default(),
        reference,
        bank,
        raw: Some(raw),
    })
}

/// An amount from a decimal string or the exact text of a JSON number.
fn read_money(value: &MonoScalar, currency: Currency) -> Result<Money, MoneyError> {
    match value {
        MonoScalar::Text(text) => Money::from_decimal_str(text, currency),
        MonoScalar::Number(text) => Money::from_json_number(text, currency),
        MonoScalar::Other(text) => Err(MoneyError::NotANumber(text.clone())),
    }
}

/// A mapping error about an amount, with its raw value, marked when the currency mismatches.
fn money_error(error: MappingError, cause: &MoneyError, value: &MonoScalar) -> MappingError {
    let error = error.with_raw_value(&scalar_json(Some(value)));
    match cause {
        MoneyError::CurrencyMismatch(..) => error.as_currency_mismatch(),
        _ => error,
    }
}

/// A scalar as the JSON it arrived as (a string quoted), for warnings.
fn scalar_json(value: Option<&MonoScalar>) -> String {
    match value {
        Some(MonoScalar::Text(text)) => {
            serde_json::to_string(text).unwrap_or_else(|_| text.clone())
        }
        Some(MonoScalar::Number(text) | MonoScalar::Other(text)) => text.clone(),
        None => "null".to_owned(),
    }
}

/// A record id: a string (trimmed, not blank) or a number's literal text.
fn id_text(id: MonoScalar) -> Result<String, String> {
    match id {
        MonoScalar::Text(text) | MonoScalar::Number(text) if !text.trim().is_empty() => {
            Ok(text.trim().to_owned())
        }
        MonoScalar::Text(_) | MonoScalar::Number(_) => Err("is blank".to_owned()),
        MonoScalar::Other(text) => Err(format!("expected a string or number, got {text}")),
    }
}

/// A `YYYY-MM-DD` date, tolerating a time-of-day suffix (`2020-09-22T10:00:00Z`,
/// `2020-09-22 10:00:00`): the calendar date as written is kept, no timezone is applied.
pub(crate) fn parse_date(text: &str) -> Result<Date, String> {
    let text = text.trim();
    let day = match text.get(..10) {
        Some(day) if text.len() == 10 => day,
        Some(day) if matches!(text.as_bytes().get(10), Some(b'T' | b't' | b' ')) => day,
        _ => return Err(format!("expected YYYY-MM-DD, got {text:?}")),
    };
    // Digits where digits belong make a date or not without the format machinery; the general
    // parse below only names what is wrong.
    if let [y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2] = *day.as_bytes()
        && [y1, y2, y3, y4, m1, m2, d1, d2]
            .iter()
            .all(u8::is_ascii_digit)
    {
        let two = |tens: u8, units: u8| (tens - b'0') * 10 + (units - b'0');
        let year = i32::from(two(y1, y2)) * 100 + i32::from(two(y3, y4));
        if let Ok(month) = time::Month::try_from(two(m1, m2))
            && let Ok(date) = Date::from_calendar_date(year, month, two(d1, d2))
        {
            return Ok(date);
        }
    }
    Date::parse(day, format_description!("[year]-[month]-[day]"))
        .map_err(|e| format!("expected YYYY-MM-DD, got {text:?}: {e}"))
}

/// A date as the vendor's query parameters spell it: `YYYY-MM-DD`.
pub(crate) fn format_date(date: Date) -> String {
    date.format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_else(|_| date.to_string())
}

/// A paging number: a JSON number or numeric string; `""`, `null`, `false` or absent is `None`.
fn page_number(field: &'static str, value: Option<MonoScalar>) -> Result<Option<u64>, String> {
    let text = match value {
        None => return Ok(None),
        Some(MonoScalar::Text(text)) if text.trim().is_empty() => return Ok(None),
        Some(MonoScalar::Other(text)) if matches!(text.as_str(), "false" | "null") => {
            return Ok(None);
        }
        Some(MonoScalar::Text(text) | MonoScalar::Number(text) | MonoScalar::Other(text)) => text,
    };
    text.trim()
        .parse::<u64>()
        .map(Some)
        .map_err(|_| format!("entity.{field}: expected a page count or number, got {text:?}"))
}

fn non_blank(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.trim().is_empty())
}

fn bad_payload(provider: &str, status: Option<u16>, message: String) -> ProviderError {
    ProviderError::BadPayload {
        provider: provider.to_owned(),
        status,
        message,
    }
}

/// The vendor's `error` value as text (a string as is, anything else as JSON).
fn error_text(error: &serde_json::Value) -> String {
    match error {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The vendor's message from an error body: `{"error": "..."}`, else the body's text (cut
/// short), so a log line or error never carries a whole HTML page.
pub(crate) fn vendor_message(body: &[u8]) -> String {
    if let Some(message) = error_in_ack(body) {
        return message;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_owned();
    }
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The vendor's message when a body is a JSON object with a non-null `error`.
pub(crate) fn error_in_ack(body: &[u8]) -> Option<String> {
    let body: MonoError = serde_json::from_slice(body).ok()?;
    body.error.filter(|e| !e.is_null()).map(|e| error_text(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCS_SAMPLE: &str = include_str!("../tests/fixtures/account_transactions.json");

    fn ctx() -> MapContext<'static> {
        MapContext {
            provider: "mono-ng",
            account_id: "acc_1",
            currency: Currency::NGN,
        }
    }

    fn entity(body: &str) -> Result<MappedEntity, ProviderError> {
        read_entity(body.as_bytes(), 200, &ctx())
    }

    /// One record built from the docs' first record with `field` replaced by `value` (raw JSON),
    /// or removed when `value` is `None`.
    fn record_with(field: &str, value: Option<&str>) -> String {
        let mut fields = vec![
            ("id", "1454"),
            ("transaction_date", r#""2020-09-22""#),
            ("value_date", r#""2020-09-22""#),
            ("trans_type", r#""debit""#),
            ("bank_name", r#""Guaranty Trust Bank""#),
            ("amount", r#""200.00""#),
            ("available_balance", r#""0""#),
            ("reference", r#""0""#),
            ("narration", r#""Airtime Purchase""#),
        ];
        match value {
            Some(v) => match fields.iter_mut().find(|(k, _)| *k == field) {
                Some(slot) => slot.1 = v,
                None => fields.push((field, v)),
            },
            None => fields.retain(|(k, _)| *k != field),
        }
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", body.join(","))
    }

    fn map_one(record: &str) -> Result<Transaction, MappingError> {
        let raw = RawValue::from_string(record.to_owned()).unwrap();
        map_transaction(&raw, 0, &ctx(), &mut Vec::new())
    }

    fn amount_of(field: &str, value: &str) -> Result<Transaction, MappingError> {
        map_one(&record_with(field, Some(value)))
    }

    fn page_body(paging: &str) -> String {
        format!(
            r#"{{"entity":{{"transactions":[{}],{paging}}}}}"#,
            record_with("id", Some("1"))
        )
    }

    fn date(y: i32, m: u8, d: u8) -> Date {
        Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap()
    }

    // ---- an entity read in one typed pass, against the reading with records borrowed raw ----

    /// What the reading before the typed walk made of a body: the envelope in one pass with
    /// each record borrowed raw, then typed by [`map_entity`]; `None` where it gave an error.
    fn read_borrowed(body: &str) -> Option<MappedEntity> {
        let envelope: MonoEnvelope<&RawValue> = serde_json::from_str(body).ok()?;
        if envelope.error.is_some_and(|e| !e.is_null()) {
            return None;
        }
        map_entity(envelope.entity?, &ctx()).ok()
    }

    /// The typed walk reads `body`, and makes of it exactly what the borrowed reading makes.
    fn assert_walk_agrees(body: &str) -> MappedEntity {
        let walked = read_entity_walk(body, &ctx()).unwrap_or_else(|| panic!("{body}"));
        let borrowed = read_borrowed(body).unwrap_or_else(|| panic!("{body}"));
        assert_eq!(walked, borrowed, "{body}");
        assert_eq!(format!("{walked:?}"), format!("{borrowed:?}"), "{body}");
        walked
    }

    const GOOD_1: &str =
        r#"{"id":1,"transaction_date":"2020-09-22","trans_type":"debit","amount":"200.00"}"#;
    const GOOD_2: &str = r#"{"id":"x2","transaction_date":"2020-09-21","trans_type":"CREDIT","amount":5.5,"bank_name":"GTB","value_date":"bad"}"#;

    #[test]
    fn the_typed_walk_reads_the_docs_sample_as_before() {
        let mapped = assert_walk_agrees(DOCS_SAMPLE);
        assert!(!mapped.transactions.is_empty());
        assert!(mapped.transactions.iter().all(|t| t.raw.is_some()));
    }

    #[test]
    fn a_bad_record_mid_entity_is_reported_alone_and_its_neighbours_kept() {
        // One that does not type (`narration` an object), one that types but does not map (no
        // trans_type), a string, an array: each reported by itself, in its place.
        let body = format!(
            r#"{{"entity":{{"total":4,"transactions":[{GOOD_1},
            {{"id":3,"narration":{{}}}},{{"id":4,"amount":"1"}},
            "oops",[1],{GOOD_2}]}}}}"#
        );
        let mapped = assert_walk_agrees(&body);
        let ids: Vec<&str> = mapped
            .transactions
            .iter()
            .map(|t| t.provider_transaction_id.as_str())
            .collect();
        assert_eq!(ids, ["1", "x2"]);
        assert_eq!(mapped.transactions[0].raw.as_ref().unwrap().get(), GOOD_1);
        assert_eq!(mapped.transactions[1].raw.as_ref().unwrap().get(), GOOD_2);
        let reported: Vec<(&str, &str)> = mapped
            .warnings
            .iter()
            .map(|w| (w.record.as_str(), w.field.as_str()))
            .collect();
        assert_eq!(
            reported,
            [
                ("3", "record"),
                ("4", "trans_type"),
                ("#3", "record"),
                // serde reads an array into a struct field by field: `[1]` is named by its id.
                ("1", "record"),
                ("x2", "value_date"),
            ]
        );
    }

    #[test]
    fn the_typed_walk_takes_any_spacing_and_paging_before_or_after_the_records() {
        for body in [
            format!(
                r#"{{"entity":{{"total":"7","current_page":2,"next_page":3,"previous_page":1,"total_pages":4,"transactions":[{GOOD_1},{GOOD_2}]}}}}"#
            ),
            format!(
                r#"{{"error":null,"entity":{{"transactions":[{GOOD_1},{GOOD_2}],"total":7,"current_page":"2","next_page":"3","total_pages":4,"previous_page":""}},"x":[]}}"#
            ),
            format!(
                " \r\n{{ \"entity\" :\t{{ \"extra\": [1, {{\"a\": \"]\"}}],\n\"transactions\" :\n [\n\t{GOOD_1}\n ,\n\n {GOOD_2} \n]\r\n , \"total\" : 7, \"next_page\":3 ,\"current_page\" :2}} , \"error\": null }}\n "
            ),
        ] {
            let mapped = assert_walk_agrees(&body);
            assert_eq!(
                (
                    mapped.transactions.len(),
                    mapped.total,
                    mapped.current_page,
                    mapped.next_page
                ),
                (2, Some(7), Some(2), Some(3)),
                "{body}"
            );
        }
        for body in [
            r#"{"entity":{"transactions":[]}}"#,
            r#"{"entity":{"transactions":[ ],"next_page":""}}"#,
        ] {
            assert!(assert_walk_agrees(body).transactions.is_empty());
        }
    }

    #[test]
    fn what_the_typed_walk_does_not_take_is_left_to_the_other_readings() {
        for body in [
            r#"{"error":"bad key"}"#.to_owned(),
            r#"{"error":{"m":1},"entity":{"transactions":[]}}"#.to_owned(),
            r#"{"entity":null}"#.to_owned(),
            r#"{"entity":{}}"#.to_owned(),
            r#"{"entity":{"transactions":null}}"#.to_owned(),
            r#"{"entity":{"transactions":{}}}"#.to_owned(),
            r#"{"entity":{"transactions":[],"total":"many"}}"#.to_owned(),
            r#"{"entity":{"transactions":[],"next_page":true}}"#.to_owned(),
            format!(r#"{{"entity":{{"tr\u0061nsactions":[{GOOD_1}]}}}}"#),
            format!(r#"{{"entity":{{"transactions":[{GOOD_1}],"transactions":[]}}}}"#),
            r#"{"entity":{"transactions":[],"total":1,"total":2}}"#.to_owned(),
            r#"{"entity":{"transactions":[]},"entity":{"transactions":[]}}"#.to_owned(),
            format!(r#"{{"entity":{{"transactions":[{GOOD_1},]}}}}"#),
            format!(r#"{{"entity":{{"transactions":[{GOOD_1}]}}}} x"#),
            format!(r#"{{"entity":{{"transactions":[{GOOD_1},{{"id":}}]}}}}"#),
            format!(
                r#"{{"error":{}1{},"entity":{{"transactions":[]}}}}"#,
                "[".repeat(70),
                "]".repeat(70)
            ),
            "not json".to_owned(),
        ] {
            assert!(read_entity_walk(&body, &ctx()).is_none(), "{body}");
            // ... and the general reading says what it says (or reads it) as before.
            let general = entity(&body);
            assert_eq!(
                general.as_ref().ok(),
                read_borrowed(&body).as_ref(),
                "{body}"
            );
        }
    }

    /// A small deterministic generator (xorshift), so the equivalence below sweeps many
    /// entities without a property-testing dependency.
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
        r#"{ "id" : 7 , "transaction_date" : "2020-09-22T10:00:00Z" , "trans_type" : "debit", "amount" : "1,200.50", "available_balance": "x", "reference": 12 }"#,
        r#"{"id":"t3","transaction_date":"2020-09-22","trans_type":"debit","amount":"-1"}"#,
        r#"{"id":"t4","transaction_date":"2020-13-22","trans_type":"debit","amount":"1"}"#,
        r#"{"id":{"x":[1]},"amount":1}"#,
        r#"{"id":5,"id":6}"#,
        r#""oops""#,
        r#"[9, "2020-09-22"]"#,
        r#"{"id":"t7","transaction_date":"2020-09-22","trans_type":"credit","amount":1e2,"bank_name":true,"narration":"caf\u00e9"}"#,
    ];

    /// Entities assembled from good, unmappable and malformed records, in any spacing, with the
    /// fields in any order: the typed walk makes the borrowed reading's entity.
    #[test]
    fn the_typed_walk_agrees_with_the_borrowed_reading() {
        let mut p = Pick(0x2545_f491_4f6c_dd1d);
        let ws = |p: &mut Pick| SPACES[p.below(SPACES.len())];
        for _ in 0..2_000 {
            let mut texts = Vec::new();
            for _ in 0..p.below(8) {
                let record = RECORD_POOL[p.below(RECORD_POOL.len())];
                texts.push(format!("{}{record}{}", ws(&mut p), ws(&mut p)));
            }
            let list = texts.join(",");
            let paging = [
                "",
                r#""total":9,"current_page":"1","next_page":2,"#,
                r#""previous_page" : "" , "next_page":null,"#,
            ][p.below(3)];
            let (a, b, c, d) = (ws(&mut p), ws(&mut p), ws(&mut p), ws(&mut p));
            let entity = if p.below(2) == 0 {
                format!(r#"{{{paging}{a}"transactions"{b}:{c}[{list}]{d}}}"#)
            } else {
                format!(r#"{{{a}"transactions":[{list}]{b},{paging}"x":[1,{{"y":"]"}}]}}"#)
            };
            let (a, b) = (ws(&mut p), ws(&mut p));
            let body = match p.below(3) {
                0 => format!(r#"{a}{{"entity"{b}:{entity}}}"#),
                1 => format!(r#"{{"error":null,{a}"entity":{entity}{b}}}"#),
                _ => format!(r#"{{"entity":{entity},"error":null,"z":{{}}}}"#),
            };
            assert_walk_agrees(&body);
        }
    }

    #[test]
    fn the_docs_sample_maps_record_by_record() {
        let page = entity(DOCS_SAMPLE).unwrap();
        assert_eq!(page.total, Some(115));
        assert_eq!(page.total_pages, Some(2));
        assert_eq!(page.current_page, Some(1));
        assert_eq!(page.next_page, Some(2));
        let ids: Vec<_> = page
            .transactions
            .iter()
            .map(|t| t.provider_transaction_id.as_str())
            .collect();
        assert_eq!(ids, ["1454", "1455", "1456"]);

        let first = &page.transactions[0];
        assert_eq!(first.id, TransactionId::new("mono-ng", "1454"));
        assert_eq!(&*first.provider, "mono-ng");
        assert_eq!(first.account_id, "acc_1");
        assert_eq!(first.customer_id, None);
        assert_eq!(first.direction, Direction::Debit);
        assert_eq!(first.amount, Money::from_minor(20000, Currency::NGN));
        assert_eq!(first.balance_after, Some(Money::zero(Currency::NGN)));
        assert_eq!(first.booked_on, date(2020, 9, 22));
        assert_eq!(first.value_on, Some(date(2020, 9, 22)));
        assert_eq!(
            first.narration,
            "Airtime Purchase USSD-101CT0000000002019935870-2349057014101"
        );
        assert_eq!(first.reference.as_deref(), Some("0"));
        assert_eq!(first.bank.as_deref(), Some("Guaranty Trust Bank"));
        let raw: serde_json::Value =
            serde_json::from_str(first.raw.as_ref().unwrap().get()).unwrap();
        assert_eq!(raw["id"], 1454);
        assert_eq!(raw["amount"], "200.00");

        let second = &page.transactions[1];
        assert_eq!(second.amount.minor(), 30000);
        assert_eq!(second.booked_on, date(2020, 9, 21));
    }

    #[test]
    fn raw_record_is_the_exact_text_received() {
        let record =
            r#"{"id": 7, "amount": 1.50, "trans_type":"credit","transaction_date":"2020-01-01"}"#;
        let tx = map_one(record).unwrap();
        assert_eq!(tx.raw.unwrap().get(), record);
        assert_eq!(tx.amount.minor(), 150);
    }

    #[test]
    fn amounts_as_strings() {
        for (text, minor) in [
            (r#""1,200.50""#, 120050),
            (r#""0.07""#, 7),
            (r#""200""#, 20000),
            (r#"" 7.5 ""#, 750),
            (r#""1,234,567.89""#, 123456789),
        ] {
            assert_eq!(
                amount_of("amount", text).unwrap().amount.minor(),
                minor,
                "{text}"
            );
        }
    }

    #[test]
    fn amounts_as_json_numbers_are_read_from_their_text() {
        for (text, minor) in [
            ("200", 20000),
            ("0.07", 7),
            ("52.5", 5250),
            ("0.30000000000000004", 30),
            ("1e2", 10000),
            ("12345678901234.56", 1234567890123456),
        ] {
            assert_eq!(
                amount_of("amount", text).unwrap().amount.minor(),
                minor,
                "{text}"
            );
        }
    }

    #[test]
    fn bad_amounts_name_the_record_and_field() {
        for text in [
            r#""abc""#,
            r#""0.005""#,
            "0.005",
            r#""""#,
            "true",
            "null",
            r#""NaN""#,
        ] {
            let e = amount_of("amount", text).unwrap_err();
            assert_eq!(e.record, "1454", "{text}");
            assert_eq!(e.field, "amount", "{text}");
        }
        let e = map_one(&record_with("amount", None)).unwrap_err();
        assert_eq!((e.record.as_str(), e.field), ("1454", "amount"));
    }

    #[test]
    fn zero_amounts_are_valid_and_negative_ones_are_mapping_errors() {
        for text in [r#""0""#, r#""0.00""#, "0", r#""₦0.00""#] {
            assert_eq!(
                amount_of("amount", text).map(|t| t.amount.minor()),
                Ok(0),
                "{text}"
            );
        }
        for text in [r#""-200.00""#, "-5"] {
            let e = amount_of("amount", text).unwrap_err();
            assert_eq!((e.record.as_str(), e.field), ("1454", "amount"), "{text}");
            assert_eq!(e.raw_value.as_deref(), Some(text));
        }
    }

    #[test]
    fn amounts_with_signs_codes_and_float_noise() {
        for (text, minor) in [
            (r#""₦1,200.50""#, 120_050),
            (r#""NGN 5,000""#, 500_000),
            (r#"" 7.5 ""#, 750),
            (r#""0.30000000000000004""#, 30),
            ("250000000.79999998", 25_000_000_080),
        ] {
            assert_eq!(
                amount_of("amount", text).map(|t| t.amount.minor()),
                Ok(minor),
                "{text}"
            );
        }
        let e = amount_of("amount", r#""USD 5""#).unwrap_err();
        assert!(e.currency_mismatch);
        assert_eq!(
            RecordWarning::skipped(e).code,
            provider::WarningCode::CurrencyMismatch
        );
    }

    #[test]
    fn a_messy_page_keeps_every_good_record_and_reports_each_bad_one() {
        let good = record_with("id", Some("1"));
        let body = format!(
            r#"{{"entity":{{"transactions":[{good},{},{},{},{},"oops"],"total":6,"previous_page":false,"next_page":false}}}}"#,
            record_with("available_balance", Some(r#""N/A""#)),
            record_with("amount", Some(r#""0""#)),
            record_with("amount", Some(r#""-3.00""#)).replace("1454", "1460"),
            record_with("bank_name", Some("7")).replace("1454", "1461"),
        );
        let mapped = entity(&body).unwrap();
        let kept: Vec<_> = mapped
            .transactions
            .iter()
            .map(|t| {
                (
                    t.provider_transaction_id.as_str(),
                    t.amount.minor(),
                    t.balance_after.map(|b| b.minor()),
                )
            })
            .collect();
        assert_eq!(
            kept,
            [
                ("1", 20000, Some(0)),
                ("1454", 20000, None),
                ("1454", 0, Some(0)),
                ("1461", 20000, Some(0))
            ]
        );
        let warned: Vec<_> = mapped
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
                (
                    "field_ignored",
                    "1454",
                    "available_balance",
                    Some(r#""N/A""#)
                ),
                ("record_skipped", "1460", "amount", Some(r#""-3.00""#)),
                ("field_ignored", "1461", "bank_name", Some("7")),
                ("record_skipped", "#5", "record", Some(r#""oops""#)),
            ]
        );
        assert_eq!(mapped.next_page, None);
    }

    #[test]
    fn trans_type_in_any_case() {
        for (text, dir) in [
            (r#""DEBIT""#, Direction::Debit),
            (r#""Credit""#, Direction::Credit),
            (r#""cReDiT ""#, Direction::Credit),
        ] {
            assert_eq!(amount_of("trans_type", text).unwrap().direction, dir);
        }
    }

    #[test]
    fn unknown_or_missing_trans_type_is_a_mapping_error() {
        for value in [Some(r#""reversal""#), Some(r#""""#), Some("null"), None] {
            let e = map_one(&record_with("trans_type", value)).unwrap_err();
            assert_eq!(
                (e.record.as_str(), e.field),
                ("1454", "trans_type"),
                "{value:?}"
            );
        }
    }

    #[test]
    fn available_balance() {
        let balance = |v: Option<&str>| map_one(&record_with("available_balance", v)).unwrap();
        assert_eq!(
            balance(Some(r#""0""#)).balance_after,
            Some(Money::zero(Currency::NGN))
        );
        assert_eq!(
            balance(Some(r#""1,000.25""#))
                .balance_after
                .map(|m| m.minor()),
            Some(100025)
        );
        assert_eq!(
            balance(Some("-12.5")).balance_after.map(|m| m.minor()),
            Some(-1250)
        );
        assert_eq!(balance(Some("null")).balance_after, None);
        assert_eq!(balance(Some(r#""""#)).balance_after, None);
        assert_eq!(balance(None).balance_after, None);
        let raw = RawValue::from_string(record_with("available_balance", Some(r#""x""#))).unwrap();
        let mut warnings = Vec::new();
        let kept = map_transaction(&raw, 0, &ctx(), &mut warnings).unwrap();
        assert_eq!(kept.balance_after, None);
        assert_eq!(
            warnings
                .iter()
                .map(|w| (w.field.as_str(), w.code))
                .collect::<Vec<_>>(),
            [("available_balance", provider::WarningCode::FieldIgnored)]
        );
    }

    #[test]
    fn the_date_shortcut_reads_as_the_format_does() {
        for text in [
            "2020-09-22",
            "2020-02-29",
            "2021-02-29",
            "0000-01-01",
            "9999-12-31",
            "2020-00-10",
            "2020-12-00",
            "2020-12-32",
            "2020-13-01",
            "2020-04-31",
            "1900-02-29",
            "2000-02-29",
        ] {
            let general = Date::parse(text, format_description!("[year]-[month]-[day]")).ok();
            assert_eq!(parse_date(text).ok(), general, "{text}");
        }
    }

    #[test]
    fn dates() {
        let tx = map_one(&record_with("value_date", None)).unwrap();
        assert_eq!(tx.value_on, None);
        assert_eq!(tx.booked_on, date(2020, 9, 22));
        assert_eq!(amount_of("value_date", r#""""#).unwrap().value_on, None);
        assert_eq!(amount_of("value_date", "null").unwrap().value_on, None);
        assert_eq!(
            amount_of("transaction_date", r#""2020-09-23T10:11:12.000Z""#)
                .unwrap()
                .booked_on,
            date(2020, 9, 23)
        );
        assert_eq!(
            amount_of("value_date", r#""2020-09-24 00:00:00""#)
                .unwrap()
                .value_on,
            Some(date(2020, 9, 24))
        );
        for (field, value) in [
            ("transaction_date", Some(r#""22/09/2020""#)),
            ("transaction_date", Some(r#""2020-13-01""#)),
            ("transaction_date", Some(r#""2020-09-2""#)),
            ("transaction_date", None),
        ] {
            let e = map_one(&record_with(field, value)).unwrap_err();
            assert_eq!((e.record.as_str(), e.field), ("1454", field), "{value:?}");
        }
        // An unreadable value date is dropped with a warning; the record is kept.
        let raw = RawValue::from_string(record_with("value_date", Some(r#""yesterday""#))).unwrap();
        let mut warnings = Vec::new();
        let kept = map_transaction(&raw, 0, &ctx(), &mut warnings).unwrap();
        assert_eq!(kept.value_on, None);
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].raw_value.as_deref(), Some("yesterday"));
    }

    #[test]
    fn ids_as_numbers_or_strings() {
        assert_eq!(
            amount_of("id", r#""tx-1454""#)
                .unwrap()
                .provider_transaction_id,
            "tx-1454"
        );
        let tx = amount_of("id", "98765432109876543210").unwrap();
        assert_eq!(tx.provider_transaction_id, "98765432109876543210");
        assert_eq!(tx.id, TransactionId::new("mono-ng", "98765432109876543210"));
        for value in [Some(r#""""#), Some("null"), None] {
            let e = map_one(&record_with("id", value)).unwrap_err();
            assert_eq!((e.record.as_str(), e.field), ("#0", "id"), "{value:?}");
        }
    }

    #[test]
    fn reference_narration_and_bank() {
        assert_eq!(
            amount_of("reference", r#""0""#)
                .unwrap()
                .reference
                .as_deref(),
            Some("0")
        );
        assert_eq!(
            amount_of("reference", "0").unwrap().reference.as_deref(),
            Some("0")
        );
        assert_eq!(amount_of("reference", r#""  ""#).unwrap().reference, None);
        assert_eq!(amount_of("reference", "null").unwrap().reference, None);
        assert_eq!(
            map_one(&record_with("reference", None)).unwrap().reference,
            None
        );
        assert_eq!(
            map_one(&record_with("narration", None)).unwrap().narration,
            ""
        );
        assert_eq!(amount_of("bank_name", r#""""#).unwrap().bank, None);
    }

    #[test]
    fn a_record_of_the_wrong_shape_is_named_by_position() {
        let body = format!(
            r#"{{"entity":{{"transactions":[{},"oops"],"total":2}}}}"#,
            record_with("id", Some("1"))
        );
        let mapped = entity(&body).unwrap();
        assert_eq!(mapped.transactions.len(), 1);
        let w = &mapped.warnings[0];
        assert_eq!((w.record.as_str(), w.field.as_str()), ("#1", "record"));
        // A field of the wrong JSON type: the record is still named by its id.
        let e = map_one(&record_with("narration", Some("5"))).unwrap_err();
        assert_eq!((e.record.as_str(), e.field), ("1454", "record"));
        let e = map_one(&record_with("reference", Some("[]"))).unwrap_err();
        assert_eq!((e.record.as_str(), e.field), ("1454", "reference"));
        let e = map_one(&record_with("id", Some("true"))).unwrap_err();
        assert_eq!((e.record.as_str(), e.field), ("#0", "id"));
    }

    #[test]
    fn paging_fields_are_tolerant() {
        let paging = |p: &str| entity(&page_body(p)).unwrap();
        let p = paging(
            r#""total":"35","previous_page":"","next_page":2,"total_pages":"4","current_page":"1""#,
        );
        assert_eq!(
            (p.total, p.total_pages, p.current_page, p.next_page),
            (Some(35), Some(4), Some(1), Some(2))
        );
        let p = paging(
            r#""total":35,"previous_page":3,"next_page":"","total_pages":4,"current_page":4"#,
        );
        assert_eq!((p.current_page, p.next_page), (Some(4), None));
        let p = paging(r#""previous_page":"1","next_page":null"#);
        assert_eq!((p.total, p.next_page), (None, None));
        let p = paging(r#""next_page":"3""#);
        assert_eq!(p.next_page, Some(3));
        let p = paging(r#""next_page":0"#);
        assert_eq!(p.next_page, None);
        let p = paging(r#""total":0"#);
        assert_eq!(p.total, Some(0));
        let p = paging(r#""previous_page":false,"next_page":false"#);
        assert_eq!(p.next_page, None);
        let p = paging(r#""previous_page":null,"next_page":"  ""#);
        assert_eq!(p.next_page, None);
    }

    #[test]
    fn unreadable_paging_fields_are_bad_payloads() {
        for paging in [
            r#""next_page":"two""#,
            r#""total":-1"#,
            r#""total_pages":1.5"#,
            r#""previous_page":true"#,
            r#""current_page":{}"#,
        ] {
            assert!(
                matches!(
                    entity(&page_body(paging)),
                    Err(ProviderError::BadPayload {
                        status: Some(200),
                        ..
                    })
                ),
                "{paging}"
            );
        }
    }

    #[test]
    fn envelopes_that_are_not_an_entity() {
        let e = entity(r#"{"error":"Invalid account id"}"#).unwrap_err();
        match e {
            ProviderError::BadPayload {
                status, message, ..
            } => {
                assert_eq!(status, Some(200));
                assert!(message.contains("Invalid account id"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        for body in [
            "",
            "not json",
            "[]",
            "{}",
            r#"{"entity":null}"#,
            r#"{"entity":{}}"#,
            r#"{"entity":{"transactions":{}}}"#,
            "<html>502</html>",
        ] {
            assert!(
                matches!(entity(body), Err(ProviderError::BadPayload { .. })),
                "{body:?}"
            );
        }
        let empty = entity(r#"{"entity":{"transactions":[],"total":0}}"#).unwrap();
        assert!(empty.transactions.is_empty());
    }

    #[test]
    fn deliveries() {
        let body = format!(r#"{{"account_id":"acc_9","entity":{DOCS_SAMPLE_ENTITY}}}"#);
        let delivery = read_delivery(body.as_bytes(), &ctx()).unwrap();
        assert_eq!(delivery.account_id.as_deref(), Some("acc_9"));
        assert_eq!(delivery.transactions.len(), 3);
        // Mapped as the expected account's, whatever the payload names.
        assert!(
            delivery
                .transactions
                .iter()
                .all(|t| t.account_id == "acc_1")
        );

        let body = format!(r#"{{"entity":{DOCS_SAMPLE_ENTITY}}}"#);
        let delivery = read_delivery(body.as_bytes(), &ctx()).unwrap();
        assert_eq!(delivery.account_id, None);

        for body in [
            &b""[..],
            b"\xff\xfe",
            b"null",
            b"{}",
            b"{\"account_id\":\"a\"}",
            b"{\"error\":\"failed\"}",
        ] {
            assert!(read_delivery(body, &ctx()).is_err(), "{body:?}");
        }
        // An unreadable record is left out (and logged), not a failed delivery.
        let delivery = read_delivery(b"{\"entity\":{\"transactions\":[1]}}", &ctx()).unwrap();
        assert!(delivery.transactions.is_empty());
    }

    const DOCS_SAMPLE_ENTITY: &str = r#"{"transactions":[
        {"id":1454,"transaction_date":"2020-09-22","value_date":"2020-09-22","trans_type":"debit","bank_name":"Guaranty Trust Bank","amount":"200.00","available_balance":"0","reference":"0","narration":"a"},
        {"id":1455,"transaction_date":"2020-09-21","value_date":"2020-09-21","trans_type":"debit","bank_name":"Guaranty Trust Bank","amount":"300.00","available_balance":"0","reference":"0","narration":"b"},
        {"id":1456,"transaction_date":"2020-09-21","value_date":"2020-09-21","trans_type":"credit","bank_name":"Guaranty Trust Bank","amount":"200.00","available_balance":"0","reference":"0","narration":"c"}
        ],"total":3,"previous_page":"","next_page":"","total_pages":1,"current_page":1}"#;

    #[test]
    fn vendor_messages() {
        assert_eq!(vendor_message(br#"{"error":"Low balance"}"#), "Low balance");
        assert_eq!(vendor_message(br#"{"error":{"code":1}}"#), r#"{"code":1}"#);
        assert_eq!(vendor_message(b"Bad Gateway"), "Bad Gateway");
        assert_eq!(vendor_message(b""), "(empty body)");
        assert_eq!(
            vendor_message("x".repeat(500).as_bytes()).chars().count(),
            201
        );
    }

    #[test]
    fn query_dates() {
        assert_eq!(format_date(date(2020, 9, 2)), "2020-09-02");
    }
}
