//! The Okra simulator: `POST /v2/transactions/{getById,getByAccount,getByDate,
//! getByCustomerDate,getByNuban,refresh}` and `GET /v2/callback`, each also under
//! `/v2/sandbox/...`, written from `okra-transactions.txt` and `okra-transactions-refresh.txt`;
//! plus the routes Okra's official clients call that those pages do not document (their shape
//! follows what the clients send; answers use the same envelope, records and errors):
//! * `okra-node` 0.2.0: `POST /v2/transactions/getByCustomer` (`customer`), `getByBank`
//!   (`bank`), `getByType` (`type`, `value`), and `getByCustomerDate` with `customer`.
//! * `okra-py-official` 1.1 (Okra's older v1 API, base `.../sandbox/v1/`): `POST
//!   /v1/transaction/{getById,getByAccount,getByDate,getByCustomer,getByCustomerDate,getByBank,
//!   getByType,byOptions}` and `POST /v1/products/transactions` (no body: every transaction of
//!   the client), each also under `/sandbox/v1/`. `getByType` sends `amount` where the Node
//!   client sends `value`; `byOptions` sends `options: {first_name, last_name}`.
//!
//! Readings for those undocumented routes:
//! * A bank is named by its slug (`gtbank`), which records also carry as `bank._id`, or by its
//!   name (any letter case).
//! * `getByType`: `type` `debit`/`credit` keeps that direction; the Python client's balance
//!   words (`ledger_balance`, `available_balance`) keep both; anything else is a 400. `value`
//!   (or `amount`), when given, keeps only transactions of exactly that amount in naira.
//! * `byOptions` keeps the customers whose name is `first_name last_name` (any letter case).
//!
//! Readings where the docs are silent:
//! * `page`/`limit` are numbers or numeric strings; `limit` defaults to 10 and is clamped to 100
//!   (the answer's `pagination.limit` says 100); `page` or `limit` below 1 is a 400.
//! * Order: newest first by `trans_date`, ties by `_id` descending (ids sort chronologically).
//! * `prevPage`/`nextPage` are numbers or `null`; `totalPages` is at least 1; a page past the
//!   end has no transactions and correct pagination.
//! * Dates (`from`, `to`) are `YYYY-MM-DD`, inclusive (a full ISO timestamp is read as its day).
//! * Exactly one of `debit`/`credit` is present (a JSON number in naira written from the
//!   integer kobo); getByNuban records also carry `"debit": null` on credits and a `branch`;
//!   getByDate and getByCustomerDate records add `analyzed`, `ner` and `ner_v`.
//! * `env` is `"sandbox"` under the `/v2/sandbox` prefix and `"production"` otherwise.
//! * The refresh job reports `running` for `refresh_duration`; it then appends the configured
//!   number of transactions (also without a poll) and reports `completed` with
//!   `transactions_added`. Unknown record: 404.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde::ser::Serializer;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use time::{Date, OffsetDateTime};

use crate::config::Vendor;
use crate::ledger::{
    Account, Customer, Direction, Ledger, NOISY_30_KOBO, Txn, bank_date_text, created_at_secs,
    noisy_naira_text, okra_amount_text, parse_naira, parse_ymd, statement_text,
};
use crate::state::{RefreshJob, Reply, Shared, lock, vendor_error};

const DEFAULT_LIMIT: u64 = 10;
const MAX_LIMIT: u64 = 100;
const METHOD: &str = "REFRESH_TRANSACTIONS";

/// Registers the Okra routes (both prefixes, and the v1 routes of Okra's Python client).
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    for prefix in ["/v2", "/v2/sandbox"] {
        cfg.route(
            &format!("{prefix}/transactions/{{op}}"),
            web::post().to(transactions),
        )
        .route(&format!("{prefix}/callback"), web::get().to(callback));
    }
    for prefix in ["/v1", "/sandbox/v1"] {
        cfg.route(
            &format!("{prefix}/transaction/{{op}}"),
            web::post().to(transactions),
        )
        .route(
            &format!("{prefix}/products/transactions"),
            web::post().to(products_transactions),
        );
    }
}

fn error(status: StatusCode, message: &str) -> Reply {
    vendor_error(Vendor::Okra, status, message)
}

fn bad_request(message: &str) -> Reply {
    error(StatusCode::BAD_REQUEST, message)
}

fn not_found(message: &str) -> Reply {
    error(StatusCode::NOT_FOUND, message)
}

/// `Authorization: Bearer <secret>` (the scheme is case-insensitive).
fn authenticate(req: &HttpRequest, shared: &Shared) -> Result<String, Reply> {
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let token = header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match token {
        Some(t) if t == shared.config.okra_secret => Ok(t.to_owned()),
        Some(_) => Err(error(
            StatusCode::UNAUTHORIZED,
            "Invalid authorization token",
        )),
        None => Err(error(
            StatusCode::UNAUTHORIZED,
            "Authorization header with a Bearer token is required",
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    GetById,
    GetByAccount,
    GetByDate,
    GetByCustomerDate,
    GetByNuban,
    GetByCustomer,
    GetByBank,
    GetByType,
    ByOptions,
    All,
    Refresh,
}

impl Op {
    /// A v2 operation (`/v2/transactions/{op}`), or with `v1` one of the Python client's
    /// (`/v1/transaction/{op}`).
    fn parse(op: &str, v1: bool) -> Option<Op> {
        Some(match op {
            "getById" => Op::GetById,
            "getByAccount" => Op::GetByAccount,
            "getByDate" => Op::GetByDate,
            "getByCustomerDate" => Op::GetByCustomerDate,
            "getByNuban" if !v1 => Op::GetByNuban,
            "getByCustomer" => Op::GetByCustomer,
            "getByBank" => Op::GetByBank,
            "getByType" => Op::GetByType,
            "byOptions" if v1 => Op::ByOptions,
            "refresh" if !v1 => Op::Refresh,
            _ => return None,
        })
    }
}

async fn transactions(
    req: HttpRequest,
    op: web::Path<String>,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let v1 = !req.path().starts_with("/v2");
    let Some(parsed) = Op::parse(&op, v1) else {
        return not_found(&format!("Route transactions/{op} not found")).into_response();
    };
    let route = if v1 {
        format!("POST /v1/transaction/{op}")
    } else {
        format!("POST /v2/transactions/{op}")
    };
    let sandbox = req.path().starts_with("/v2/sandbox/") || req.path().starts_with("/sandbox/");
    serve_listing(req, parsed, route, sandbox, body, shared).await
}

/// `POST /v1/products/transactions` (Okra's Python client): every transaction of the client,
/// paginated; the body is optional.
async fn products_transactions(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let sandbox = req.path().starts_with("/sandbox/");
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        web::Bytes::from_static(b"{}")
    } else {
        body
    };
    let route = "POST /v1/products/transactions".to_owned();
    serve_listing(req, Op::All, route, sandbox, body, shared).await
}

async fn serve_listing(
    req: HttpRequest,
    parsed: Op,
    route: String,
    sandbox: bool,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let auth = authenticate(&req, &shared);
    let data = shared.clone();
    shared
        .serve(Vendor::Okra, &route, auth, || async move {
            let body = match parse_body(&body) {
                Ok(b) => b,
                Err(reply) => return reply,
            };
            let result = if parsed == Op::Refresh {
                refresh(&data, &body, sandbox)
            } else {
                list(&data, parsed, &body, sandbox)
            };
            result.unwrap_or_else(|reply| reply)
        })
        .await
}

fn parse_body(body: &[u8]) -> Result<Map<String, Value>, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad_request("A JSON request body is required"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(bad_request("The request body must be a JSON object")),
        Err(e) => Err(bad_request(&format!("Invalid JSON body: {e}"))),
    }
}

/// A string field (numbers are accepted and read as their text).
fn text(body: &Map<String, Value>, name: &str) -> Result<Option<String>, Reply> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(bad_request(&format!("{name} must be a string"))),
    }
}

fn required(body: &Map<String, Value>, name: &str) -> Result<String, Reply> {
    text(body, name)?.ok_or_else(|| bad_request(&format!("{name} is required")))
}

/// A positive integer given as a JSON number or a numeric string.
fn positive(body: &Map<String, Value>, name: &str) -> Result<Option<u64>, Reply> {
    let invalid = || bad_request(&format!("{name} must be a positive integer"));
    let n = match body.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(invalid)?,
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().parse::<u64>().map_err(|_| invalid())?,
        Some(_) => return Err(invalid()),
    };
    if n == 0 {
        return Err(invalid());
    }
    Ok(Some(n))
}

fn date_field(body: &Map<String, Value>, name: &str) -> Result<Date, Reply> {
    let raw = required(body, name)?;
    parse_ymd(&raw).ok_or_else(|| bad_request(&format!("{name} must be a date (YYYY-MM-DD)")))
}

fn date_range(body: &Map<String, Value>) -> Result<(Date, Date), Reply> {
    let (from, to) = (date_field(body, "from")?, date_field(body, "to")?);
    if from > to {
        return Err(bad_request("from must not be after to"));
    }
    Ok((from, to))
}

/// What extra fields a route's records carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Plain,
    Analyzed,
    Nuban,
}

fn list(shared: &Shared, op: Op, body: &Map<String, Value>, sandbox: bool) -> Result<Reply, Reply> {
    let ledger = shared.read();
    let page = positive(body, "page")?.unwrap_or(1);
    let limit = positive(body, "limit")?
        .unwrap_or(DEFAULT_LIMIT)
        .min(MAX_LIMIT);
    let all_accounts = || 0..ledger.accounts.len();
    let (selected, shape): (Vec<(usize, usize)>, Shape) = match op {
        Op::GetById => {
            let id = required(body, "id")?;
            let found = all_accounts()
                .flat_map(|a| {
                    let txns = &ledger.accounts[a].txns;
                    (0..txns.len()).map(move |t| (a, t))
                })
                .find(|&(a, t)| ledger.accounts[a].txns[t].okra_id == id)
                .ok_or_else(|| not_found("Transaction not found"))?;
            (vec![found], Shape::Plain)
        }
        Op::GetByAccount => {
            let id = required(body, "account")?;
            let a = ledger
                .account_by_okra_id(&id)
                .ok_or_else(|| not_found("Account not found"))?;
            (select(&ledger, [a], None), Shape::Plain)
        }
        Op::GetByDate => {
            let range = date_range(body)?;
            (
                select(&ledger, all_accounts(), Some(range)),
                Shape::Analyzed,
            )
        }
        Op::GetByCustomerDate | Op::GetByCustomer => {
            let id = match text(body, "customer_id")? {
                Some(id) => id,
                None => {
                    text(body, "customer")?.ok_or_else(|| bad_request("customer_id is required"))?
                }
            };
            let range = match op {
                Op::GetByCustomerDate => Some(date_range(body)?),
                _ => None,
            };
            let customer = ledger
                .customers
                .iter()
                .find(|c| c.okra_id == id)
                .ok_or_else(|| not_found("Customer not found"))?;
            let accounts = customer.accounts.iter().copied();
            (select(&ledger, accounts, range), Shape::Analyzed)
        }
        Op::GetByBank => {
            let bank = required(body, "bank")?;
            let accounts: Vec<usize> = all_accounts()
                .filter(|&a| {
                    let b = ledger.accounts[a].bank;
                    b.slug.eq_ignore_ascii_case(&bank) || b.name.eq_ignore_ascii_case(&bank)
                })
                .collect();
            if accounts.is_empty() {
                return Err(not_found("Bank not found"));
            }
            (select(&ledger, accounts, None), Shape::Plain)
        }
        Op::GetByType => {
            let kind = required(body, "type")?;
            let direction = match kind.to_ascii_lowercase().as_str() {
                "debit" => Some(Direction::Debit),
                "credit" => Some(Direction::Credit),
                "ledger_balance" | "available_balance" => None,
                _ => {
                    return Err(bad_request(
                        "type must be debit, credit, ledger_balance or available_balance",
                    ));
                }
            };
            let value = match text(body, "value")? {
                Some(v) => Some(v),
                None => text(body, "amount")?,
            };
            let kobo = value
                .map(|v| parse_naira(&v).ok_or_else(|| bad_request("value must be an amount")))
                .transpose()?;
            let selected = select(&ledger, all_accounts(), None)
                .into_iter()
                .filter(|&(a, t)| {
                    let txn = &ledger.accounts[a].txns[t];
                    direction.is_none_or(|d| txn.direction == d)
                        && kobo.is_none_or(|k| txn.kobo == k)
                })
                .collect();
            (selected, Shape::Plain)
        }
        Op::ByOptions => {
            let options = body
                .get("options")
                .and_then(Value::as_object)
                .ok_or_else(|| bad_request("options is required"))?;
            let first = text(options, "first_name")?.unwrap_or_default();
            let last = text(options, "last_name")?.unwrap_or_default();
            let wanted = format!("{first} {last}");
            let accounts: Vec<usize> = ledger
                .customers
                .iter()
                .filter(|c| c.name.eq_ignore_ascii_case(wanted.trim()))
                .flat_map(|c| c.accounts.iter().copied())
                .collect();
            (select(&ledger, accounts, None), Shape::Plain)
        }
        Op::All => (select(&ledger, all_accounts(), None), Shape::Plain),
        Op::GetByNuban => {
            let nuban = required(body, "nuban")?;
            if nuban.len() != 10 || !nuban.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad_request("nuban must be a 10-digit account number"));
            }
            let a = ledger
                .accounts
                .iter()
                .position(|a| a.nuban == nuban)
                .ok_or_else(|| not_found("No account found for this nuban"))?;
            (select(&ledger, [a], None), Shape::Nuban)
        }
        Op::Refresh => return Err(bad_request("unreachable")),
    };
    let total = selected.len() as u64;
    let messy = shared.faults(Vendor::Okra).messy_data;
    let mut pagination = Pagination::new(total, page, limit);
    let start = usize::try_from((page - 1).saturating_mul(limit)).unwrap_or(usize::MAX);
    let count = usize::try_from(limit).unwrap_or(usize::MAX);
    let env = if sandbox { "sandbox" } else { "production" };
    let mut transaction = selected
        .iter()
        .skip(start)
        .take(count)
        .enumerate()
        .map(|(i, &(a, t))| {
            let account = &ledger.accounts[a];
            let customer = &ledger.customers[account.customer];
            let mut record =
                okra_transaction(&ledger, customer, account, &account.txns[t], shape, env)?;
            if messy {
                make_messy(&mut record, &account.txns[t], i);
            }
            Ok(Record::Clean(Box::new(record)))
        })
        .collect::<Result<Vec<_>, serde_json::Error>>()
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
    if messy {
        transaction.extend(unreadable_records(page).into_iter().map(Record::Raw));
        // Loose paging types: `nextPage: false` on the last page, `prevPage: ""` on the first.
        if pagination.next_page.is_null() {
            pagination.next_page = Value::Bool(false);
        }
        if pagination.prev_page.is_null() {
            pagination.prev_page = Value::String(String::new());
        }
    }
    Ok(Reply::json(
        StatusCode::OK,
        &Envelope {
            status: "success",
            message: "Transactions retrieved succesfully",
            data: Data {
                pagination,
                transaction,
            },
        },
    ))
}

/// The (account, transaction) positions of the accounts' transactions within the date range,
/// newest first (ties: `_id` descending, which is creation order).
fn select(
    ledger: &Ledger,
    accounts: impl IntoIterator<Item = usize>,
    range: Option<(Date, Date)>,
) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = accounts
        .into_iter()
        .filter_map(|a| ledger.accounts.get(a).map(|acc| (a, acc)))
        .flat_map(|(a, acc)| {
            acc.txns
                .iter()
                .enumerate()
                .filter(move |(_, t)| range.is_none_or(|(from, to)| t.date >= from && t.date <= to))
                .map(move |(i, _)| (a, i))
        })
        .collect();
    out.sort_by(|&(a1, t1), &(a2, t2)| {
        let (x, y) = (&ledger.accounts[a1].txns[t1], &ledger.accounts[a2].txns[t2]);
        y.date.cmp(&x.date).then_with(|| y.okra_id.cmp(&x.okra_id))
    });
    out
}

#[derive(Serialize)]
struct Envelope<'a> {
    status: &'static str,
    message: &'static str,
    data: Data<'a>,
}

#[derive(Serialize)]
struct Data<'a> {
    pagination: Pagination,
    transaction: Vec<Record<'a>>,
}

/// A record of a listing: one of the ledger's, or (messy data) a hand-written one.
#[derive(Serialize)]
#[serde(untagged)]
enum Record<'a> {
    Clean(Box<OkraTransaction<'a>>),
    Raw(Value),
}

/// Messy data: the genuine record `t` (the `i`th of its page) in odd but valid shapes. The
/// amount becomes float noise, `₦1,234.50` or `NGN 1,234.50` in turn; the first record of a
/// page gets an unreadable cleared date.
fn make_messy(record: &mut OkraTransaction<'_>, t: &Txn, i: usize) {
    let amount = match i % 3 {
        0 => RawValue::from_string(noisy_naira_text(t.kobo)).map_or(Amount::Null, Amount::Number),
        1 => Amount::Text(statement_text(t.kobo, "₦")),
        _ => Amount::Text(statement_text(t.kobo, "NGN ")),
    };
    if !record.debit.is_absent() && !matches!(record.debit, Amount::Null) {
        record.debit = amount;
    } else {
        record.credit = amount;
    }
    if i == 0 {
        record.cleared_date = "soon".to_owned();
        record.unformatted_cleared_date = String::new();
    }
}

/// Messy data: three records no reader can map, appended to page `page`: a negative amount
/// (Okra gives a sign no meaning), an amount in dollars, and a record without any id.
fn unreadable_records(page: u64) -> Vec<Value> {
    let base = |id: String| {
        serde_json::json!({
            "_id": id, "id": id, "trans_date": "2026-10-01T00:00:00.000Z",
            "cleared_date": "2026-10-01T00:00:00.000Z", "notes": {"desc": "MESSY RECORD"},
            "account": {"_id": "messy-account", "name": "Messy"}, "ref": "MESSY",
        })
    };
    let mut negative = base(format!("messy-negative-{page}"));
    negative["debit"] = Value::from(-5);
    let mut dollars = base(format!("messy-dollars-{page}"));
    dollars["credit"] = Value::from("USD 12.00");
    let mut no_id = base(String::new());
    no_id["credit"] = Value::from(7);
    vec![negative, dollars, no_id]
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Pagination {
    total_docs: u64,
    limit: u64,
    has_prev_page: bool,
    has_next_page: bool,
    page: u64,
    total_pages: u64,
    paging_counter: u64,
    prev_page: Value,
    next_page: Value,
}

impl Pagination {
    fn new(total: u64, page: u64, limit: u64) -> Pagination {
        let total_pages = total.div_ceil(limit).max(1);
        Pagination {
            total_docs: total,
            limit,
            has_prev_page: page > 1,
            has_next_page: page < total_pages,
            page,
            total_pages,
            paging_counter: (page - 1).saturating_mul(limit).saturating_add(1),
            prev_page: (page > 1)
                .then(|| page - 1)
                .map_or(Value::Null, Value::from),
            next_page: (page < total_pages)
                .then(|| page + 1)
                .map_or(Value::Null, Value::from),
        }
    }
}

/// An amount slot: absent (skipped), `null`, a JSON number written verbatim, or (messy data) a
/// string.
enum Amount {
    Absent,
    Null,
    Number(Box<RawValue>),
    Text(String),
}

impl Amount {
    fn is_absent(&self) -> bool {
        matches!(self, Amount::Absent)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Amount::Number(raw) => raw.serialize(s),
            Amount::Text(text) => s.serialize_str(text),
            Amount::Absent | Amount::Null => s.serialize_none(),
        }
    }
}

#[derive(Serialize)]
struct Notes<'a> {
    desc: &'a str,
    topics: [&'a str; 0],
    places: [&'a str; 0],
    people: [&'a str; 0],
    actions: [&'a str; 1],
    subjects: [&'a str; 1],
    prepositions: [&'a str; 0],
}

#[derive(Serialize)]
struct IdName<'a> {
    #[serde(rename = "_id")]
    id: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct OkraBank<'a> {
    /// The sandbox names banks by their slug (`getByBank` takes it).
    #[serde(rename = "_id")]
    id: &'a str,
    icon: String,
    logo: String,
    name: &'a str,
    status: &'a str,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct Ner<'a> {
    TRANS_TYPE: &'a str,
}

#[derive(Serialize)]
struct OkraTransaction<'a> {
    #[serde(rename = "_id")]
    object_id: &'a str,
    notes: Notes<'a>,
    manual: bool,
    reconciled: bool,
    fetched: [&'a str; 1],
    record: [&'a str; 1],
    actions: [&'a str; 0],
    #[serde(skip_serializing_if = "Option::is_none")]
    analyzed: Option<[&'a str; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ner: Option<Ner<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ner_v: Option<u32>,
    trans_date: String,
    cleared_date: String,
    unformatted_trans_date: String,
    unformatted_cleared_date: String,
    #[serde(skip_serializing_if = "Amount::is_absent")]
    debit: Amount,
    #[serde(skip_serializing_if = "Amount::is_absent")]
    credit: Amount,
    #[serde(rename = "ref")]
    reference: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    branch: Option<&'a str>,
    bank: OkraBank<'a>,
    customer: IdName<'a>,
    account: IdName<'a>,
    env: &'a str,
    checked: [&'a str; 0],
    created_at: String,
    last_updated: String,
    #[serde(rename = "__v")]
    version: u32,
    id: &'a str,
}

/// `2024-03-05T00:00:00.000Z`
fn iso_midnight(date: Date) -> String {
    format!("{}T00:00:00.000Z", crate::ledger::ymd(date))
}

fn iso_timestamp(unix: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{}T{:02}:{:02}:{:02}.000Z",
            crate::ledger::ymd(t.date()),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => "1970-01-01T00:00:00.000Z".to_owned(),
    }
}

fn okra_transaction<'a>(
    ledger: &'a Ledger,
    customer: &'a Customer,
    account: &'a Account,
    t: &'a Txn,
    shape: Shape,
    env: &'a str,
) -> Result<OkraTransaction<'a>, serde_json::Error> {
    let text = if t.noisy_okra_amount && t.kobo == 30 {
        NOISY_30_KOBO.to_owned()
    } else {
        okra_amount_text(t.kobo)
    };
    let amount = Amount::Number(RawValue::from_string(text)?);
    let (debit, credit) = match (t.direction, shape) {
        (Direction::Debit, _) => (amount, Amount::Absent),
        (Direction::Credit, Shape::Nuban) => (Amount::Null, amount),
        (Direction::Credit, _) => (Amount::Absent, amount),
    };
    let analyzed = shape == Shape::Analyzed;
    let (action, subject) = t.category.notes();
    let created = iso_timestamp(created_at_secs(t.date));
    let style = account.bank.date_style;
    Ok(OkraTransaction {
        object_id: &t.okra_id,
        notes: Notes {
            desc: &t.narration,
            topics: [],
            places: [],
            people: [],
            actions: [action],
            subjects: [subject],
            prepositions: [],
        },
        manual: false,
        reconciled: true,
        fetched: [&ledger.okra_client_id],
        record: [&account.record_id],
        actions: [],
        analyzed: analyzed.then_some([t.direction.as_str()]),
        ner: analyzed.then_some(Ner {
            TRANS_TYPE: t.category.label(),
        }),
        ner_v: analyzed.then_some(1),
        trans_date: iso_midnight(t.date),
        cleared_date: iso_midnight(t.value_date),
        unformatted_trans_date: bank_date_text(style, t.date),
        unformatted_cleared_date: bank_date_text(style, t.value_date),
        debit,
        credit,
        reference: &t.reference,
        branch: (shape == Shape::Nuban).then_some(account.branch),
        bank: OkraBank {
            id: account.bank.slug,
            icon: format!(
                "https://okra-bank-logos.s3.amazonaws.com/{}-icon.png",
                account.bank.slug
            ),
            logo: format!(
                "https://okra-bank-logos.s3.amazonaws.com/{}.png",
                account.bank.slug
            ),
            name: account.bank.name,
            status: "active",
        },
        customer: IdName {
            id: &customer.okra_id,
            name: &customer.name,
        },
        account: IdName {
            id: &account.okra_id,
            name: &account.name,
        },
        env,
        checked: [],
        created_at: created.clone(),
        last_updated: created,
        version: 0,
        id: &t.okra_id,
    })
}

fn callback_url(shared: &Shared, record: &str, sandbox: bool) -> String {
    let prefix = if sandbox { "/v2/sandbox" } else { "/v2" };
    format!(
        "http://{}{prefix}/callback?record={record}&method={METHOD}",
        shared.addr
    )
}

fn refresh(
    shared: &web::Data<Shared>,
    body: &Map<String, Value>,
    sandbox: bool,
) -> Result<Reply, Reply> {
    let id = match text(body, "account_id")? {
        Some(id) => id,
        None => required(body, "account").map_err(|_| bad_request("account_id is required"))?,
    };
    let account = shared
        .read()
        .account_by_okra_id(&id)
        .ok_or_else(|| not_found("Account not found"))?;
    let record = format!(
        "{:08x}{:016x}",
        OffsetDateTime::now_utc().unix_timestamp() & 0xFFFF_FFFF,
        rand::random::<u64>()
    );
    lock(&shared.jobs).insert(
        record.clone(),
        RefreshJob {
            account,
            started: std::time::Instant::now(),
            added: None,
        },
    );
    let task_shared = shared.clone();
    let task_record = record.clone();
    tokio::spawn(async move {
        tokio::time::sleep(task_shared.config.refresh_duration).await;
        complete_job(&task_shared, &task_record);
    });
    Ok(Reply::json(
        StatusCode::OK,
        &serde_json::json!({
            "status": "success",
            "message": "Transactions processing...",
            "data": {"callback_url": callback_url(shared, &record, sandbox)},
        }),
    ))
}

/// Finishes a job whose time is up (once): appends the new transactions. Returns the job's
/// account and, when finished, how many transactions it added.
fn complete_job(shared: &Shared, record: &str) -> Option<(usize, Option<usize>)> {
    let mut jobs = lock(&shared.jobs);
    let job = jobs.get_mut(record)?;
    if job.added.is_none() && job.started.elapsed() >= shared.config.refresh_duration {
        let n = shared.config.new_transactions_per_refresh;
        job.added = Some(shared.write().append_new(job.account, n));
    }
    Some((job.account, job.added))
}

/// Finishes every running refresh job now, as if its time were up (tests say "the vendor is
/// done" instead of sleeping through `refresh_duration`).
pub(crate) fn finish_all_jobs(shared: &Shared) {
    let mut jobs = lock(&shared.jobs);
    for job in jobs.values_mut().filter(|job| job.added.is_none()) {
        let n = shared.config.new_transactions_per_refresh;
        job.added = Some(shared.write().append_new(job.account, n));
    }
}

async fn callback(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let auth = authenticate(&req, &shared);
    let data = shared.clone();
    shared
        .serve(Vendor::Okra, "GET /v2/callback", auth, || async move {
            let mut record = None;
            let mut method = None;
            for (k, v) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
                match &*k {
                    "record" => record = Some(v.into_owned()),
                    "method" => method = Some(v.into_owned()),
                    _ => {}
                }
            }
            let Some(record) = record else {
                return bad_request("record is required");
            };
            if method.as_deref().is_some_and(|m| m != METHOD) {
                return bad_request("method must be REFRESH_TRANSACTIONS");
            }
            let Some((account, added)) = complete_job(&data, &record) else {
                return not_found("Record not found");
            };
            let account_id = data
                .read()
                .accounts
                .get(account)
                .map(|a| a.okra_id.clone())
                .unwrap_or_default();
            let body = match added {
                None => serde_json::json!({
                    "status": "success",
                    "message": "Transactions are still processing",
                    "data": {
                        "running": true, "completed": false, "record": record,
                        "method": METHOD, "account": account_id,
                    },
                }),
                Some(n) => serde_json::json!({
                    "status": "success",
                    "message": "Transactions refreshed successfully",
                    "data": {
                        "running": false, "completed": true, "record": record,
                        "method": METHOD, "account": account_id, "transactions_added": n,
                    },
                }),
            };
            Reply::json(StatusCode::OK, &body)
        })
        .await
}
