//! The Mono-style simulator: `GET /api/v1/financial/account_transactions`, written from
//! `mono-style-account-transactions.txt`.
//!
//! Readings where the docs are silent:
//! * Auth: `Authorization: <secret>` exactly (a `Bearer ...` value is refused) and
//!   `AppId: <app id>`; either missing or wrong is a 401.
//! * Order: newest first (transaction date descending, then `id` descending; ids grow with time).
//! * `last_transaction_id` ("the oldest transaction ID you want to start with") is inclusive:
//!   the answer holds that transaction and every newer one of the account (before the other
//!   filters). Not a number: 400; not a transaction of this account: 404.
//! * `start_date`/`end_date` are `YYYY-MM-DD`, inclusive, on `transaction_date`.
//! * `page` (default 1) and `length` (default 10, clamped to 200); below 1 or not a number: 400.
//! * JSON types as the docs' sample and the vendor's generated client (`dojah-python-sdk`, whose
//!   schema is strict) give them: `previous_page` is a string, `""` on page 1, else the previous
//!   page number as text (`"1"`); `next_page` is a number, and absent on the last page (the
//!   client refuses `""` and `null` there); `total_pages` is at least 1. `not_paginated`: every
//!   match in one answer, `current_page` 1, `total_pages` 1, `previous_page` `""`, no
//!   `next_page`.
//! * Messy data (`Faults::messy_data`, listings only, not webhook deliveries): amounts as
//!   `₦1,200.50`, ` NGN 1,200.50 ` or float noise (`52.500000000000001`) in turn;
//!   `available_balance` `"N/A"` on each page's first record; three unreadable records appended
//!   to every page (a negative amount, an amount in dollars, a bare string); `next_page` as a
//!   numeric string, `false` on the last page, `previous_page` `null` on the first.
//! * `webhook`: answers 200 `{"entity": {"message": "results will be delivered to the
//!   callback_url", "callback_url": ...}}` at once; then in the background appends
//!   `new_transactions_per_refresh` transactions (a sync, like an Okra refresh) and POSTs
//!   `{"account_id": "<mono account id>", "entity": <the not_paginated entity for the same
//!   filters>}` as JSON to `callback_url`, retrying up to 5 times (backoff from 100 ms) while the
//!   receiver is unreachable or answers non-2xx.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::Value;
use time::Date;

use crate::config::Vendor;
use crate::ledger::{
    Direction, Ledger, decimal_text, noisy_naira_text, parse_ymd, statement_text, ymd,
};
use crate::state::{Reply, Shared, vendor_error};

const ROUTE: &str = "/api/v1/financial/account_transactions";
const DEFAULT_LENGTH: u64 = 10;
const MAX_LENGTH: u64 = 200;
const WEBHOOK_ATTEMPTS: u32 = 5;

/// Registers the Mono-style route.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(ROUTE, web::get().to(account_transactions));
}

fn error(status: StatusCode, message: &str) -> Reply {
    vendor_error(Vendor::Mono, status, message)
}

fn bad_request(message: &str) -> Reply {
    error(StatusCode::BAD_REQUEST, message)
}

fn authenticate(req: &HttpRequest, shared: &Shared) -> Result<String, Reply> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let unauthorized = |m: &str| Err(error(StatusCode::UNAUTHORIZED, m));
    match header("authorization") {
        None | Some("") => return unauthorized("Authorization header is required"),
        Some(key) if key != shared.config.mono_secret => {
            return unauthorized("Invalid secret key");
        }
        Some(_) => {}
    }
    match header("appid") {
        None | Some("") => unauthorized("AppId header is required"),
        Some(app) if app != shared.config.mono_app_id => unauthorized("Invalid AppId"),
        Some(_) => Ok(shared.config.mono_secret.clone()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Paginated,
    NotPaginated,
    Webhook,
}

/// A validated query.
#[derive(Debug, Clone)]
struct Query {
    account: usize,
    account_id: String,
    from_position: usize,
    start: Option<Date>,
    end: Option<Date>,
    direction: Option<Direction>,
    mode: Mode,
    callback_url: Option<String>,
    page: u64,
    length: u64,
}

fn positive(params: &HashMap<String, String>, name: &str, default: u64) -> Result<u64, Reply> {
    match params.get(name).map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => s
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| bad_request(&format!("{name} must be a positive integer"))),
    }
}

fn parse_query(ledger: &Ledger, raw: &str) -> Result<Query, Reply> {
    let params: HashMap<String, String> = url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect();
    let get = |name: &str| params.get(name).map(|s| s.trim()).filter(|s| !s.is_empty());
    let account_id = get("account_id").ok_or_else(|| bad_request("account_id is required"))?;
    let account = ledger
        .account_by_mono_id(account_id)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "Account not found"))?;
    let from_position = match get("last_transaction_id") {
        None => 0,
        Some(raw) => {
            let id: u64 = raw
                .parse()
                .map_err(|_| bad_request("last_transaction_id must be a transaction id"))?;
            ledger.accounts[account]
                .txns
                .iter()
                .position(|t| t.mono_id == id)
                .ok_or_else(|| {
                    error(
                        StatusCode::NOT_FOUND,
                        "last_transaction_id is not a transaction of this account",
                    )
                })?
        }
    };
    let date = |name: &str| -> Result<Option<Date>, Reply> {
        get(name)
            .map(|raw| {
                parse_ymd(raw)
                    .ok_or_else(|| bad_request(&format!("{name} must be a date (YYYY-MM-DD)")))
            })
            .transpose()
    };
    let (start, end) = (date("start_date")?, date("end_date")?);
    if let (Some(s), Some(e)) = (start, end)
        && s > e
    {
        return Err(bad_request("start_date must not be after end_date"));
    }
    let direction = match get("trans_type").map(str::to_ascii_lowercase).as_deref() {
        None => None,
        Some("debit") => Some(Direction::Debit),
        Some("credit") => Some(Direction::Credit),
        Some(_) => return Err(bad_request("trans_type must be debit or credit")),
    };
    let mode = match get("response_mode") {
        None | Some("paginated") => Mode::Paginated,
        Some("not_paginated") => Mode::NotPaginated,
        Some("webhook") => Mode::Webhook,
        Some(_) => {
            return Err(bad_request(
                "response_mode must be paginated, not_paginated or webhook",
            ));
        }
    };
    let callback_url = get("callback_url").map(str::to_owned);
    if mode == Mode::Webhook {
        let valid = callback_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .is_some_and(|u| matches!(u.scheme(), "http" | "https"));
        if !valid {
            return Err(bad_request(
                "callback_url (an http or https URL) is required for webhook mode",
            ));
        }
    }
    Ok(Query {
        account,
        account_id: account_id.to_owned(),
        from_position,
        start,
        end,
        direction,
        mode,
        callback_url,
        page: positive(&params, "page", 1)?,
        length: positive(&params, "length", DEFAULT_LENGTH)?.min(MAX_LENGTH),
    })
}

#[derive(Debug, Serialize)]
struct MonoTransaction<'a> {
    id: u64,
    transaction_date: String,
    value_date: String,
    trans_type: &'static str,
    bank_name: &'static str,
    amount: String,
    available_balance: String,
    reference: &'a str,
    narration: &'a str,
}

/// A record of an answer: one of the ledger's, or (messy data) a hand-written one.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Record<'a> {
    Clean(MonoTransaction<'a>),
    Raw(Value),
}

#[derive(Debug, Serialize)]
struct Entity<'a> {
    transactions: Vec<Record<'a>>,
    total: u64,
    previous_page: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page: Option<Value>,
    total_pages: u64,
    current_page: u64,
}

#[derive(Debug, Serialize)]
struct Answer<'a> {
    entity: Entity<'a>,
}

/// The webhook delivery body (our reading; the vendor docs are silent).
#[derive(Debug, Serialize)]
struct Delivery<'a> {
    account_id: &'a str,
    entity: Entity<'a>,
}

/// `previous_page`: the page number as a string, `""` on the first page.
fn previous_link(n: Option<u64>) -> Value {
    Value::String(n.map(|n| n.to_string()).unwrap_or_default())
}

/// `next_page`: a number, absent on the last page.
fn next_link(n: Option<u64>) -> Option<Value> {
    n.map(Value::from)
}

/// The entity for a query; `all` answers every match on one page (not_paginated); `messy`
/// serves it the messy-data way (see the module docs).
fn entity<'a>(ledger: &'a Ledger, q: &Query, all: bool, messy: bool) -> Entity<'a> {
    let Some(account) = ledger.accounts.get(q.account) else {
        return Entity {
            transactions: Vec::new(),
            total: 0,
            previous_page: previous_link(None),
            next_page: next_link(None),
            total_pages: 1,
            current_page: 1,
        };
    };
    let matching: Vec<_> = account
        .txns
        .iter()
        .skip(q.from_position)
        .filter(|t| q.start.is_none_or(|s| t.date >= s))
        .filter(|t| q.end.is_none_or(|e| t.date <= e))
        .filter(|t| q.direction.is_none_or(|d| t.direction == d))
        .rev()
        .collect();
    let total = matching.len() as u64;
    let (page, length) = if all {
        (1, total.max(1))
    } else {
        (q.page, q.length)
    };
    let total_pages = total.div_ceil(length).max(1);
    let start = usize::try_from((page - 1).saturating_mul(length)).unwrap_or(usize::MAX);
    let mut transactions: Vec<Record<'a>> = matching
        .into_iter()
        .skip(start)
        .take(usize::try_from(length).unwrap_or(usize::MAX))
        .enumerate()
        .map(|(i, t)| {
            let (amount, available_balance) = if messy {
                let amount = match i % 3 {
                    0 => statement_text(t.kobo, "₦"),
                    1 => format!(" {} ", statement_text(t.kobo, "NGN ")),
                    _ => noisy_naira_text(t.kobo),
                };
                let balance = if i == 0 {
                    "N/A".to_owned()
                } else {
                    decimal_text(t.balance_after_kobo)
                };
                (amount, balance)
            } else {
                (decimal_text(t.kobo), decimal_text(t.balance_after_kobo))
            };
            Record::Clean(MonoTransaction {
                id: t.mono_id,
                transaction_date: ymd(t.date),
                value_date: ymd(t.value_date),
                trans_type: t.direction.as_str(),
                bank_name: account.bank.name,
                amount,
                available_balance,
                reference: &t.reference,
                narration: &t.narration,
            })
        })
        .collect();
    let previous = (page > 1).then(|| page - 1);
    let next = (page < total_pages).then(|| page + 1);
    if messy {
        transactions.extend(unreadable_records(page).into_iter().map(Record::Raw));
        return Entity {
            transactions,
            total,
            previous_page: previous.map_or(Value::Null, Value::from),
            next_page: Some(next.map_or(Value::Bool(false), |n| Value::from(n.to_string()))),
            total_pages,
            current_page: page,
        };
    }
    Entity {
        transactions,
        total,
        previous_page: previous_link(previous),
        next_page: next_link(next),
        total_pages,
        current_page: page,
    }
}

/// Messy data: three records no reader can map, appended to page `page`.
fn unreadable_records(page: u64) -> Vec<Value> {
    let record = |id: u64, amount: &str| {
        serde_json::json!({
            "id": id, "transaction_date": "2026-10-01", "value_date": "2026-10-01",
            "trans_type": "debit", "bank_name": "Messy Bank", "amount": amount,
            "available_balance": "0", "reference": "MESSY", "narration": "MESSY RECORD",
        })
    };
    vec![
        record(9_000_000_000 + page, "-3.00"),
        record(9_100_000_000 + page, "$5.00"),
        Value::from("oops"),
    ]
}

async fn account_transactions(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let auth = authenticate(&req, &shared);
    let data = shared.clone();
    shared
        .serve(Vendor::Mono, &format!("GET {ROUTE}"), auth, || async move {
            let query = match parse_query(&data.read(), req.query_string()) {
                Ok(q) => q,
                Err(reply) => return reply,
            };
            match query.mode {
                Mode::Webhook => {
                    let callback = query.callback_url.clone().unwrap_or_default();
                    tokio::spawn(deliver(data.clone(), query));
                    Reply::json(
                        StatusCode::OK,
                        &serde_json::json!({"entity": {
                            "message": "results will be delivered to the callback_url",
                            "callback_url": callback,
                        }}),
                    )
                }
                mode => {
                    let ledger = data.read();
                    let messy = data.faults(Vendor::Mono).messy_data;
                    let entity = entity(&ledger, &query, mode == Mode::NotPaginated, messy);
                    Reply::json(StatusCode::OK, &Answer { entity })
                }
            }
        })
        .await
}

/// Syncs the account, then POSTs the not_paginated result to the callback URL, with retries.
async fn deliver(shared: web::Data<Shared>, query: Query) {
    let Some(url) = query.callback_url.clone() else {
        return;
    };
    let body = {
        let mut ledger = shared.write();
        ledger.append_new(query.account, shared.config.new_transactions_per_refresh);
        let delivery = Delivery {
            account_id: &query.account_id,
            entity: entity(&ledger, &query, true, false),
        };
        match serde_json::to_vec(&delivery) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "webhook body not serializable");
                return;
            }
        }
    };
    let mut backoff = Duration::from_millis(100);
    for attempt in 1..=WEBHOOK_ATTEMPTS {
        let sent = shared
            .http
            .post(&url)
            .timeout(Duration::from_secs(10))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status().is_success() => return,
            Ok(resp) => tracing::warn!(%url, attempt, status = %resp.status(), "webhook refused"),
            Err(e) => tracing::warn!(%url, attempt, error = %e, "webhook delivery failed"),
        }
        if attempt < WEBHOOK_ATTEMPTS {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
}
