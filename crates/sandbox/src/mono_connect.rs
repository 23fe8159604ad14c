//! The Mono (mono.co) simulator: account transactions and Data Sync, written from
//! `mono-connect-transactions.txt` and Mono's official Node client (`mono-node` 1.0.3), over
//! the same seeded ledger as the other vendors (the account ids are the Mono-style ones).
//!
//! Routes: `GET /v2/accounts/{id}/transactions` (v2 shape), `GET /v1/accounts/{id}/transactions`
//! (v1 shape), `GET /accounts/{id}/transactions` (legacy shape: what `mono-node` calls), and
//! `POST /accounts/{id}/sync` (`syncDataManually`).
//!
//! Readings where the docs are silent:
//! * Auth: `mono-sec-key: <secret>`; missing or wrong is a 401 `{"status":"failed","message":
//!   "No valid API key provided"}`. Every error is `{"status":"failed","message":...}`.
//! * Order: newest first. Records: `id` (v2, v1) or `_id` (legacy), 24 hex digits;
//!   `amount`/`balance` integer kobo; `type`; `narration`; `date` a UTC timestamp on the booking
//!   date; `currency` `NGN` (v1, legacy; v2 leaves it out: the account's currency applies);
//!   `category`.
//! * `start`/`end`: `dd-mm-yyyy` (Mono's examples) or `yyyy-mm-dd`, inclusive; `narration` a
//!   case-insensitive substring; `type` `debit`/`credit`; `paginate` `true` (default) or
//!   `false`; `limit` (default 20, at most 100) and `page` (from 1). Anything else malformed: 400.
//! * `previous`/`next`: full URLs on this sandbox (same path, the query with `page` replaced),
//!   or null. `paginate=false`: every match, `page` 1, both null.
//! * Data Sync appends `new_transactions_per_refresh` transactions and answers
//!   `{"status":"successful","hasNewData":true,"code":"SYNC_SUCCESSFUL","message":null}`; a
//!   second sync of the account within two minutes is a 429 (Mono allows one manual sync per
//!   account every two minutes). `allow_incomplete_statement` is accepted and ignored.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use time::Date;

use crate::config::Vendor;
use crate::ledger::{Direction, Ledger, parse_ymd, ymd};
use crate::state::{Reply, Shared, lock, vendor_error};

const DEFAULT_LIMIT: u64 = 20;
const MAX_LIMIT: u64 = 100;
/// One manual sync per account in this long.
const SYNC_INTERVAL: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    V2,
    V1,
    Legacy,
}

/// Registers the Mono routes.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/v2/accounts/{id}/transactions",
        web::get().to(
            |req: HttpRequest, path: web::Path<String>, shared: web::Data<Shared>| {
                transactions(req, path, shared, Shape::V2)
            },
        ),
    )
    .route(
        "/v1/accounts/{id}/transactions",
        web::get().to(
            |req: HttpRequest, path: web::Path<String>, shared: web::Data<Shared>| {
                transactions(req, path, shared, Shape::V1)
            },
        ),
    )
    .route(
        "/accounts/{id}/transactions",
        web::get().to(
            |req: HttpRequest, path: web::Path<String>, shared: web::Data<Shared>| {
                transactions(req, path, shared, Shape::Legacy)
            },
        ),
    )
    .route("/accounts/{id}/sync", web::post().to(sync));
}

fn error(status: StatusCode, message: &str) -> Reply {
    vendor_error(Vendor::MonoConnect, status, message)
}

fn bad_request(message: &str) -> Reply {
    error(StatusCode::BAD_REQUEST, message)
}

fn authenticate(req: &HttpRequest, shared: &Shared) -> Result<String, Reply> {
    let key = req
        .headers()
        .get("mono-sec-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    match key {
        Some(key) if key == shared.config.mono_connect_secret => Ok(key.to_owned()),
        _ => Err(error(StatusCode::UNAUTHORIZED, "No valid API key provided")),
    }
}

/// A validated query.
#[derive(Debug, Clone)]
struct Query {
    start: Option<Date>,
    end: Option<Date>,
    narration: Option<String>,
    direction: Option<Direction>,
    paginate: bool,
    limit: u64,
    page: u64,
    params: Vec<(String, String)>,
}

/// `dd-mm-yyyy` (Mono's examples) or `yyyy-mm-dd`.
fn parse_date(text: &str) -> Option<Date> {
    let parts: Vec<&str> = text.split('-').collect();
    match parts.as_slice() {
        [d, m, y] if y.len() == 4 && d.len() == 2 => {
            let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
            Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
        }
        _ => parse_ymd(text),
    }
}

fn parse_query(raw: &str) -> Result<Query, Reply> {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect();
    let map: HashMap<&str, &str> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.trim()))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let date = |name: &str| -> Result<Option<Date>, Reply> {
        map.get(name)
            .map(|raw| {
                parse_date(raw)
                    .ok_or_else(|| bad_request(&format!("{name} must be a date (dd-mm-yyyy)")))
            })
            .transpose()
    };
    let (start, end) = (date("start")?, date("end")?);
    let direction = match map.get("type").map(|t| t.to_ascii_lowercase()).as_deref() {
        None => None,
        Some("debit") => Some(Direction::Debit),
        Some("credit") => Some(Direction::Credit),
        Some(_) => return Err(bad_request("type must be debit or credit")),
    };
    let paginate = match map.get("paginate").copied() {
        None | Some("true") => true,
        Some("false") => false,
        Some(_) => return Err(bad_request("paginate must be true or false")),
    };
    let positive = |name: &str, default: u64| -> Result<u64, Reply> {
        match map.get(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad_request(&format!("{name} must be a positive integer"))),
        }
    };
    Ok(Query {
        start,
        end,
        narration: map.get("narration").map(|n| n.to_lowercase()),
        direction,
        paginate,
        limit: positive("limit", DEFAULT_LIMIT)?.min(MAX_LIMIT),
        page: positive("page", 1)?,
        params,
    })
}

/// The URL of page `page` of the same request.
fn page_url(shared: &Shared, path: &str, query: &Query, page: Option<u64>) -> Value {
    let Some(page) = page else {
        return Value::Null;
    };
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in query.params.iter().filter(|(k, _)| k != "page") {
        out.append_pair(k, v);
    }
    out.append_pair("page", &page.to_string());
    Value::String(format!("http://{}{path}?{}", shared.addr, out.finish()))
}

fn answer(
    shared: &Shared,
    ledger: &Ledger,
    account: usize,
    path: &str,
    q: &Query,
    shape: Shape,
) -> Reply {
    let Some(account) = ledger.accounts.get(account) else {
        return error(StatusCode::NOT_FOUND, "Account not found");
    };
    let matching: Vec<_> = account
        .txns
        .iter()
        .filter(|t| q.start.is_none_or(|s| t.date >= s))
        .filter(|t| q.end.is_none_or(|e| t.date <= e))
        .filter(|t| q.direction.is_none_or(|d| t.direction == d))
        .filter(|t| {
            q.narration
                .as_deref()
                .is_none_or(|n| t.narration.to_lowercase().contains(n))
        })
        .rev()
        .collect();
    let total = matching.len() as u64;
    let (page, limit) = if q.paginate {
        (q.page, q.limit)
    } else {
        (1, total.max(1))
    };
    let pages = total.div_ceil(limit).max(1);
    let skip = usize::try_from((page - 1).saturating_mul(limit)).unwrap_or(usize::MAX);
    let records: Vec<Value> = matching
        .into_iter()
        .skip(skip)
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|t| {
            let id = format!("{:024x}", t.mono_id);
            // A time of day on the booking date, in UTC.
            let at = format!(
                "{}T{:02}:{:02}:{:02}.{:03}Z",
                ymd(t.date),
                t.mono_id % 24,
                t.mono_id % 60,
                (t.mono_id / 7) % 60,
                t.mono_id % 1000
            );
            let mut record = json!({
                "narration": t.narration,
                "amount": t.kobo,
                "type": t.direction.as_str(),
                "balance": t.balance_after_kobo,
                "date": at,
                "category": t.category.label().to_lowercase().replace(' ', "_"),
            });
            if let Value::Object(map) = &mut record {
                let id_key = if shape == Shape::Legacy { "_id" } else { "id" };
                map.insert(id_key.to_owned(), Value::String(id));
                if shape != Shape::V2 {
                    map.insert("currency".to_owned(), Value::from("NGN"));
                }
            }
            record
        })
        .collect();
    let (previous, next) = if q.paginate {
        (
            page_url(shared, path, q, (page > 1).then(|| page - 1)),
            page_url(shared, path, q, (page < pages).then(|| page + 1)),
        )
    } else {
        (Value::Null, Value::Null)
    };
    let paging = json!({"total": total, "page": page, "previous": previous, "next": next});
    let body = match shape {
        Shape::V2 => json!({
            "status": "successful",
            "message": "Transaction retrieved successfully",
            "timestamp": time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            "data": records,
            "meta": paging,
        }),
        Shape::V1 => json!({
            "status": "successful",
            "message": "Successfully fetched transactions",
            "data": {"paging": paging, "transactions": records},
        }),
        Shape::Legacy => json!({"paging": paging, "data": records}),
    };
    Reply::json(StatusCode::OK, &body)
}

async fn transactions(
    req: HttpRequest,
    path: web::Path<String>,
    shared: web::Data<Shared>,
    shape: Shape,
) -> HttpResponse {
    let auth = authenticate(&req, &shared);
    let route = match shape {
        Shape::V2 => "GET /v2/accounts/{id}/transactions",
        Shape::V1 => "GET /v1/accounts/{id}/transactions",
        Shape::Legacy => "GET /accounts/{id}/transactions",
    };
    let data = shared.clone();
    shared
        .serve(Vendor::MonoConnect, route, auth, || async move {
            let query = match parse_query(req.query_string()) {
                Ok(q) => q,
                Err(reply) => return reply,
            };
            let ledger = data.read();
            match ledger.account_by_mono_id(&path) {
                Some(account) => answer(&data, &ledger, account, req.path(), &query, shape),
                None => error(StatusCode::NOT_FOUND, "Account not found"),
            }
        })
        .await
}

async fn sync(
    req: HttpRequest,
    path: web::Path<String>,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let auth = authenticate(&req, &shared);
    let data = shared.clone();
    shared
        .serve(
            Vendor::MonoConnect,
            "POST /accounts/{id}/sync",
            auth,
            || async move {
                let Some(account) = data.read().account_by_mono_id(&path) else {
                    return error(StatusCode::NOT_FOUND, "Account not found");
                };
                {
                    let mut synced = lock(&data.mono_syncs);
                    let now = Instant::now();
                    if let Some(at) = synced.get(&account)
                        && now.duration_since(*at) < SYNC_INTERVAL
                    {
                        let wait = SYNC_INTERVAL - now.duration_since(*at);
                        let mut reply = error(
                            StatusCode::TOO_MANY_REQUESTS,
                            "Manual sync is limited to one call per account every two minutes",
                        );
                        reply.retry_after = Some(wait.as_secs() + 1);
                        return reply;
                    }
                    synced.insert(account, now);
                }
                let added = data
                    .write()
                    .append_new(account, data.config.new_transactions_per_refresh);
                Reply::json(
                    StatusCode::OK,
                    &json!({
                        "status": "successful",
                        "hasNewData": added > 0,
                        "code": "SYNC_SUCCESSFUL",
                        "message": null,
                    }),
                )
            },
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_either_form() {
        let d = Date::from_calendar_date(2020, time::Month::October, 1).unwrap();
        assert_eq!(parse_date("01-10-2020"), Some(d));
        assert_eq!(parse_date("2020-10-01"), Some(d));
        assert_eq!(parse_date("1-10-2020"), None);
        assert_eq!(parse_date("32-10-2020"), None);
    }
}
