//! The transaction routes: four scopes of listing and one lookup by gateway id.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use provider::{PageRequest, RecordWarning, Scope, Transaction, TransactionQuery};

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use crate::api::params::{self, ListParams, ListRequest};
use crate::api::views::{ListBody, PaginationSchema, TxView, WarningView};
use crate::cursor::{Cursor, fingerprint};
use crate::error::{ApiError, KeyProblem, Problem};
use crate::outbound::for_client;
use crate::snapshot::early::{EARLY_ITEMS, Progress};
use crate::snapshot::{CacheStatus, FetchError, Found, RenderKey, Rendered, SnapshotKey};
use crate::state::{AppState, Client, ProviderEntry};

type Result<T> = std::result::Result<T, ApiError>;

// A first page of the largest size can be answered before its snapshot is built.
const _: () = assert!(params::MAX_LIMIT as usize <= EARLY_ITEMS);

/// The authenticated client's name and weight, for the fair share of provider quotas (`""`
/// if none).
fn client_of(req: &HttpRequest) -> (Arc<str>, u32) {
    req.extensions().get::<Arc<Client>>().map_or_else(
        || (Arc::from(""), 1),
        |client| (client.name.clone(), client.fair_share_weight),
    )
}

/// What every transaction listing may answer besides its page (OpenAPI documentation).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum ListFailures {
    /// Not modified: the `If-None-Match` tag is current.
    #[response(status = 304)]
    NotModified,
    /// A parameter is invalid or missing, or the cursor is not this caller's for this query;
    /// `parameter` names it.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// Missing or unknown API key, or one past its last day (`key_expired`).
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The provider does not know the account, customer or NUBAN.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// The cursor's snapshot has expired: restart from the first page.
    #[response(status = 410, content_type = "application/problem+json")]
    Gone(Problem),
    /// Too large to snapshot, and filtered by a field the provider cannot filter.
    #[response(status = 422, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// The provider cannot list by this scope.
    #[response(status = 501, content_type = "application/problem+json")]
    NotImplemented(Problem),
    /// The provider failed or sent an unreadable payload (with `strict=true`: any provider
    /// record could not be read).
    #[response(status = 502, content_type = "application/problem+json")]
    BadGateway(Problem),
    /// The request did not complete within the gateway's deadline.
    #[response(status = 504, content_type = "application/problem+json")]
    Timeout(Problem),
}

/// Lists one account's transactions.
#[utoipa::path(
    get,
    path = "/v1/accounts/{account_id}/transactions",
    tag = "transactions",
    params(
        ("account_id" = String, Path, description = "The provider's account id (see `GET /v1/providers` for which provider answers).", example = "ACCOUNT_ID"),
        ListParams
    ),
    responses(
        (status = 200, description = "A page of the account's transactions, newest first.", body = crate::api::views::ListSchema, headers(("x-record-warnings" = u32, description = "How many record warnings the listing has (provider records, or fields of records, that could not be read); the body lists the first 100."))),
        ListFailures,
    ),
    security(("api_key" = ["transactions:read"]))
)]
pub async fn list_account(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let account = params::parse_id("account_id", &path)?;
    state
        .within_deadline(for_client(
            client_of(&req),
            list(&req, &state, Scope::Account(account), false),
        ))
        .await
}

/// Lists every transaction of one customer.
#[utoipa::path(
    get,
    path = "/v1/customers/{customer_id}/transactions",
    tag = "transactions",
    params(
        ("customer_id" = String, Path, description = "The provider's customer id.", example = "CUSTOMER_ID"),
        ListParams
    ),
    responses(
        (status = 200, description = "A page of the customer's transactions, newest first.", body = crate::api::views::ListSchema, headers(("x-record-warnings" = u32, description = "How many record warnings the listing has (provider records, or fields of records, that could not be read); the body lists the first 100."))),
        ListFailures,
    ),
    security(("api_key" = ["transactions:read"]))
)]
pub async fn list_customer(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let customer = params::parse_id("customer_id", &path)?;
    state
        .within_deadline(for_client(
            client_of(&req),
            list(&req, &state, Scope::Customer(customer), false),
        ))
        .await
}

/// Lists the transactions of the account with this NUBAN.
#[utoipa::path(
    get,
    path = "/v1/nubans/{nuban}/transactions",
    tag = "transactions",
    params(
        ("nuban" = String, Path, description = "The account's 10-digit NUBAN.", example = "0123456789"),
        ListParams
    ),
    responses(
        (status = 200, description = "A page of the account's transactions, newest first.", body = crate::api::views::ListSchema, headers(("x-record-warnings" = u32, description = "How many record warnings the listing has (provider records, or fields of records, that could not be read); the body lists the first 100."))),
        ListFailures,
    ),
    security(("api_key" = ["transactions:read"]))
)]
pub async fn list_nuban(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let nuban = params::parse_nuban(&path)?;
    state
        .within_deadline(for_client(
            client_of(&req),
            list(&req, &state, Scope::Nuban(nuban), false),
        ))
        .await
}

/// Lists all of the client's transactions in a date range (`from` and `to` required).
#[utoipa::path(
    get,
    path = "/v1/transactions",
    tag = "transactions",
    params(ListParams),
    responses(
        (status = 200, description = "A page of transactions, newest first.", body = crate::api::views::ListSchema, headers(("x-record-warnings" = u32, description = "How many record warnings the listing has (provider records, or fields of records, that could not be read); the body lists the first 100."))),
        ListFailures,
    ),
    security(("api_key" = ["transactions:read"]))
)]
pub async fn list_all(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    state
        .within_deadline(for_client(
            client_of(&req),
            list(&req, &state, Scope::All, true),
        ))
        .await
}

/// Reads one transaction by the gateway id from any list response.
#[utoipa::path(
    get,
    path = "/v1/transactions/{id}",
    tag = "transactions",
    params(
        ("id" = String, Path, description = "A gateway transaction id (`txn_...`) from a list response."),
        ("include" = Option<params::IncludeParam>, Query, description = "`raw` adds the vendor's record (empty: not added)."),
    ),
    responses(
        (status = 200, description = "The transaction.", body = crate::api::views::ItemSchema),
        (status = 400, description = "The id is not a gateway transaction id.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key, or one past its last day (`key_expired`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such transaction.", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider failed.", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The request did not complete within the gateway's deadline.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["transactions:read"]))
)]
pub async fn get_transaction(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    state
        .within_deadline(for_client(client_of(&req), get_one(&req, &path, &state)))
        .await
}

async fn get_one(req: &HttpRequest, path: &str, state: &AppState) -> Result<HttpResponse> {
    let id = params::parse_transaction_id(path)?;
    let pairs = params::parse_pairs(req.query_string(), &["include"])?;
    let include_raw = params::parse_include(pairs.first().map(|(_, v)| v.as_ref()))?;
    let not_found = || ApiError::NotFound {
        detail: format!("no transaction {id}"),
        provider: Some(id.provider().to_owned()),
    };
    let entry = state.registry.get(id.provider()).ok_or_else(not_found)?;
    let (tx, status, snapshot) = match state.snapshots.find(&id).await {
        Some((tx, snapshot)) => (tx, CacheStatus::Hit, Some(snapshot)),
        None if entry.provider.capabilities().get_by_id => {
            let tx = entry
                .provider
                .get_transaction(id.provider_id())
                .await
                .map_err(|e| match e {
                    provider::ProviderError::NotFound { .. } => not_found(),
                    other => ApiError::Upstream(other),
                })?;
            (tx, CacheStatus::Miss, None)
        }
        None => {
            return Err(ApiError::NotFound {
                detail: format!(
                    "no transaction {id} in recently read data; provider {} cannot look up single transactions, list its account first",
                    entry.name
                ),
                provider: Some(entry.name.to_string()),
            });
        }
    };
    #[derive(serde::Serialize)]
    struct Item<'a> {
        data: TxView<'a>,
    }
    let body = serde_json::to_vec(&Item {
        data: TxView {
            tx: &tx,
            include_raw,
        },
    })
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let max_age = snapshot
        .as_ref()
        .map_or(Duration::ZERO, |s| s.remaining_ttl());
    Ok(respond(
        req,
        &Rendered::new(body).holding(1),
        status,
        max_age,
        None,
    ))
}

async fn list(
    req: &HttpRequest,
    state: &AppState,
    scope: Scope,
    require_range: bool,
) -> Result<HttpResponse> {
    let request = params::parse_list(req.query_string(), require_range)?;
    let client = req
        .extensions()
        .get::<Arc<Client>>()
        .cloned()
        .ok_or(ApiError::Unauthorized(KeyProblem::Missing))?;
    let entry = state.registry.resolve(request.provider.as_deref())?;
    let kind = scope.kind();
    if !entry.provider.capabilities().supports(kind) {
        return Err(ApiError::Unsupported {
            provider: entry.name.to_string(),
            capability: format!("listing by {}", kind.as_str()),
        });
    }
    let query = TransactionQuery::new(scope)
        .with_range(request.range)
        .with_direction(request.direction);
    let fp = fingerprint(&client.name, &entry.name, &query);
    let page_offset =
        (request.page.unwrap_or(1) as usize - 1).saturating_mul(request.limit as usize);

    // A cursor pins its snapshot; otherwise the current one (fetched on a miss).
    let (snapshot, status, offset) = match &request.cursor {
        Some(text) => {
            let cursor = state.cursors.decode(text, fp)?;
            if cursor.snapshot_id == PASSTHROUGH {
                return passthrough(
                    req,
                    state,
                    entry,
                    &query,
                    &request,
                    fp,
                    cursor.offset as usize,
                )
                .instrument(crate::telemetry::request_span())
                .await;
            }
            let key = SnapshotKey::for_query(entry, &query);
            let snapshot = state
                .snapshots
                .by_id(&key, cursor.snapshot_id)
                .await
                .ok_or(ApiError::CursorExpired)?;
            (snapshot, CacheStatus::Hit, cursor.offset as usize)
        }
        None => match first_records(state, entry, &query, &request, page_offset).await {
            Ok(Found::Whole((snapshot, status))) => (snapshot, status, page_offset),
            Ok(Found::Early(progress)) => {
                return early_page(req, state, entry, &request, &progress, page_offset, fp);
            }
            Err(FetchError::Provider(e @ provider::ProviderError::NotFound { .. }))
                if request.provider.is_none() =>
            {
                return Err(not_found_at_default(state, entry, &query.scope, e));
            }
            Err(e @ (FetchError::Provider(_) | FetchError::Busy(_))) => return Err(e.into_api()),
            Err(FetchError::TooLarge { .. }) => {
                return passthrough(req, state, entry, &query, &request, fp, page_offset)
                    .instrument(crate::telemetry::request_span())
                    .await;
            }
        },
    };

    check_warnings(entry, &snapshot.warnings, request.strict)?;
    let render_key = RenderKey {
        snapshot_id: snapshot.id,
        fingerprint: fp,
        offset,
        limit: request.limit,
        include_raw: request.include_raw,
    };
    let rendered = match state.snapshots.rendered(&render_key) {
        Some(rendered) => rendered,
        None => {
            let items: Vec<&Transaction> =
                snapshot.items.iter().filter(|t| query.matches(t)).collect();
            let rendered = Arc::new(render_page(
                state,
                &items,
                items.len(),
                offset,
                &request,
                &snapshot.warnings,
                snapshot.id,
                fp,
            )?);
            state.snapshots.keep_rendered(render_key, rendered.clone());
            rendered
        }
    };
    let max_age = match status {
        CacheStatus::Stale => Duration::ZERO,
        _ => snapshot.remaining_ttl(),
    };
    Ok(respond(
        req,
        &rendered,
        status,
        max_age,
        Some(snapshot.age()),
    ))
}

/// The snapshot for a listing's page at `offset`, or — first page fast — the first records of
/// the fill in flight when they cover that page (not for `strict`: the pages still to come
/// may hold unreadable records).
async fn first_records(
    state: &AppState,
    entry: &ProviderEntry,
    query: &TransactionQuery,
    request: &ListRequest,
    offset: usize,
) -> std::result::Result<Found, FetchError> {
    if request.strict {
        return state
            .snapshots
            .get_or_fetch(entry, query)
            .await
            .map(Found::Whole);
    }
    let needed = offset.saturating_add(request.limit as usize);
    state.snapshots.first_records(entry, query, needed).await
}

/// A page answered from the first records of a snapshot still filling: a miss, with the
/// provider's totals, and a cursor into the snapshot (see [`crate::snapshot::early`]). Not
/// kept in the rendered pages (the built snapshot renders its own).
fn early_page(
    req: &HttpRequest,
    state: &AppState,
    entry: &ProviderEntry,
    request: &ListRequest,
    progress: &Progress,
    offset: usize,
    fp: u64,
) -> Result<HttpResponse> {
    check_warnings(entry, &progress.warnings, false)?;
    let end = offset
        .saturating_add(request.limit as usize)
        .min(progress.items.len());
    let window: Vec<&Transaction> = progress.items[offset.min(end)..end].iter().collect();
    let total = progress
        .total
        .map_or(progress.items.len(), |t| {
            usize::try_from(t).unwrap_or(usize::MAX)
        })
        .max(end);
    let rendered = render_window(
        state,
        &window,
        total,
        offset,
        request,
        &progress.warnings,
        progress.id,
        fp,
    )?;
    Ok(respond(
        req,
        &rendered,
        CacheStatus::Miss,
        entry.cache_ttl,
        Some(Duration::ZERO),
    ))
}

/// The default provider does not know the id: when other providers are configured, the id may
/// be one of theirs (provider ids look alike, so which one is not guessed): say how to ask them.
fn not_found_at_default(
    state: &AppState,
    entry: &ProviderEntry,
    scope: &Scope,
    error: provider::ProviderError,
) -> ApiError {
    let others: Vec<&str> = state
        .registry
        .iter()
        .map(|other| &*other.name)
        .filter(|name| *name != &*entry.name)
        .collect();
    let Some(first) = others.first() else {
        return error.into();
    };
    ApiError::NotFound {
        detail: format!(
            "provider {} (the default, as no provider parameter was given) does not know this {}; if it is another provider's id, name that provider: ?provider={first} (configured: {})",
            entry.name,
            scope.kind().as_str(),
            others.join(", ")
        ),
        provider: Some(entry.name.to_string()),
    }
}

/// With `strict`, any warning refuses the listing (the 502 of before per-record tolerance);
/// otherwise the warnings are logged (the request's span carries its id) and served.
fn check_warnings(entry: &ProviderEntry, warnings: &[RecordWarning], strict: bool) -> Result<()> {
    let Some(first) = warnings.first() else {
        return Ok(());
    };
    let excluded = excluded_count(warnings);
    if strict {
        return Err(ApiError::UnreadableRecords {
            provider: entry.name.to_string(),
            count: warnings.len(),
            first: Box::new(first.clone()),
        });
    }
    tracing::warn!(
        parent: &crate::telemetry::request_span(),
        provider = %entry.name,
        warnings = warnings.len(),
        excluded,
        first = %first,
        "listing served with record warnings"
    );
    Ok(())
}

/// How many records the warnings leave out of the listing.
fn excluded_count(warnings: &[RecordWarning]) -> usize {
    warnings.iter().filter(|w| w.code.excludes_record()).count()
}

/// The header that counts a listing's record warnings (all of them, even past the body's cap).
pub const RECORD_WARNINGS: HeaderName = HeaderName::from_static("x-record-warnings");

/// At most this many warnings are written into a list body (they repeat on every page); the
/// header and `pagination.excluded` still count them all.
pub const MAX_WARNINGS_IN_BODY: usize = 100;

/// The cursor snapshot id of a listing paged straight through to the provider.
const PASSTHROUGH: u64 = 0;

/// Serves a page of a scope too large to snapshot, straight from the provider's pages.
///
/// Only filters the provider applies itself are possible here (gateway-side filters would make
/// totals and pages inexact); the order is the provider's, and consistency across pages is the
/// provider's too.
async fn passthrough(
    req: &HttpRequest,
    state: &AppState,
    entry: &ProviderEntry,
    query: &TransactionQuery,
    request: &ListRequest,
    fp: u64,
    offset: usize,
) -> Result<HttpResponse> {
    let key = SnapshotKey::for_query(entry, query);
    if key.needs_gateway_filter(query) {
        return Err(ApiError::ScopeTooLarge {
            provider: entry.name.to_string(),
            detail: "this listing is too large to filter by fields the provider cannot filter; narrow the date range or drop the direction filter".into(),
        });
    }
    let provider_limit = entry
        .page_size
        .clamp(1, entry.provider.capabilities().max_page_size.max(1))
        as usize;
    let limit = request.limit as usize;
    let first_page = offset / provider_limit + 1;
    let last_page = (offset + limit - 1) / provider_limit + 1;
    let mut items = Vec::new();
    let mut warnings = Vec::new();
    let mut total = None;
    for page in first_page..=last_page {
        let page =
            u32::try_from(page).map_err(|_| ApiError::invalid("page", "page is out of range"))?;
        let got = entry
            .provider
            .list_page(
                &key.fetch_query()
                    .with_page(PageRequest::new(page, provider_limit as u32)),
            )
            .await?;
        total = total.or(got.total);
        let last = got.next_page.is_none();
        items.extend(got.items);
        warnings.extend(got.warnings);
        if last {
            break;
        }
    }
    let skip = offset - (first_page - 1) * provider_limit;
    let page_items: Vec<&Transaction> = items.iter().skip(skip).take(limit).collect();
    let total =
        usize::try_from(total.unwrap_or((offset + page_items.len()) as u64)).unwrap_or(usize::MAX);
    check_warnings(entry, &warnings, request.strict)?;
    // `render_page` slices from `offset` of a full view; hand it a view positioned there. Here
    // the warnings are those of the provider pages this page was read from.
    let rendered = render_window(
        state,
        &page_items,
        total,
        offset,
        request,
        &warnings,
        PASSTHROUGH,
        fp,
    )?;
    Ok(respond(
        req,
        &rendered,
        CacheStatus::Miss,
        Duration::ZERO,
        None,
    ))
}

/// Renders the page at `offset` of `items` (the whole filtered view).
#[allow(clippy::too_many_arguments)]
fn render_page(
    state: &AppState,
    items: &[&Transaction],
    total: usize,
    offset: usize,
    request: &ListRequest,
    warnings: &[RecordWarning],
    snapshot_id: u64,
    fp: u64,
) -> Result<Rendered> {
    let end = offset
        .saturating_add(request.limit as usize)
        .min(items.len());
    let window = items.get(offset.min(end)..end).unwrap_or_default();
    render_window(
        state,
        window,
        total,
        offset,
        request,
        warnings,
        snapshot_id,
        fp,
    )
}

/// Renders `window`, the items of the page that starts at `offset` of a `total`-item listing,
/// with the listing's record warnings.
#[allow(clippy::too_many_arguments)]
fn render_window(
    state: &AppState,
    window: &[&Transaction],
    total: usize,
    offset: usize,
    request: &ListRequest,
    warnings: &[RecordWarning],
    snapshot_id: u64,
    fp: u64,
) -> Result<Rendered> {
    let limit = request.limit as usize;
    let (page, total_pages) = page_numbers(offset, limit, total);
    let end = offset + window.len();
    let has_more = end < total;
    let next_cursor = has_more.then(|| {
        state.cursors.encode(Cursor {
            snapshot_id,
            offset: u32::try_from(end).unwrap_or(u32::MAX),
            fingerprint: fp,
        })
    });
    let body = ListBody {
        data: window
            .iter()
            .map(|tx| TxView {
                tx,
                include_raw: request.include_raw,
            })
            .collect(),
        pagination: PaginationSchema {
            limit: request.limit,
            page: u32::try_from(page).unwrap_or(u32::MAX),
            total: total as u64,
            total_pages: total_pages as u64,
            has_more,
            next_cursor,
            excluded: excluded_count(warnings) as u64,
        },
        warnings: warnings
            .iter()
            .take(MAX_WARNINGS_IN_BODY)
            .map(WarningView)
            .collect(),
    };
    let bytes = serde_json::to_vec(&body).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Rendered::new(bytes)
        .holding(window.len())
        .warning(warnings.len()))
}

/// The page number of the page starting at `offset`, and the number of pages, for pages of
/// `limit` over `total` items. A cursor reused with another `limit` can start a page between
/// two of that size: the walk from there counts every earlier part page as one, so `page` is
/// never 1 past the start, and `page` = `total_pages` exactly when no page follows.
fn page_numbers(offset: usize, limit: usize, total: usize) -> (usize, usize) {
    let before = offset.div_ceil(limit);
    let total_pages = if offset.is_multiple_of(limit) || offset >= total {
        total.div_ceil(limit)
    } else {
        before + (total - offset).div_ceil(limit)
    };
    (before + 1, total_pages)
}

/// A 200 with the rendered body, or a 304 when the caller's `If-None-Match` names its tag; a
/// listing says how many record warnings its body has in `x-record-warnings`.
///
/// On the cache-hit path: the body and the tag are shared with the rendered page, the fixed
/// values are static and the two numbers come from [`numbered`], so nothing is formatted or
/// copied here.
fn respond(
    req: &HttpRequest,
    rendered: &Rendered,
    status: CacheStatus,
    max_age: Duration,
    age: Option<Duration>,
) -> HttpResponse {
    let not_modified = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| etag_matches(v, rendered.etag.to_str().unwrap_or_default()));
    let mut res = if not_modified {
        HttpResponse::new(StatusCode::NOT_MODIFIED)
    } else {
        HttpResponse::with_body(StatusCode::OK, rendered.body.clone()).map_into_boxed_body()
    };
    let headers = res.headers_mut();
    headers.insert(header::ETAG, rendered.etag.clone());
    headers.insert(
        header::CACHE_CONTROL,
        numbered(Numbered::MaxAge, max_age.as_secs()),
    );
    headers.insert(X_CACHE, HeaderValue::from_static(status.as_str()));
    if let Some(age) = age {
        headers.insert(header::AGE, numbered(Numbered::Plain, age.as_secs()));
    }
    if let Some(count) = &rendered.warnings {
        headers.insert(RECORD_WARNINGS, count.clone());
    }
    if !not_modified {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    // What the caller now holds (a 304 confirms the same page), for the audit record.
    crate::telemetry::note_returned(rendered.items);
    res
}

const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// A value made by [`numbered`], with its number.
type NumberedSlot = Option<(u64, HeaderValue)>;

/// The two numeric header values of a listing.
#[derive(Debug, Clone, Copy)]
enum Numbered {
    /// `private, max-age=N` (`Cache-Control`).
    MaxAge,
    /// `N` (`Age`).
    Plain,
}

thread_local! {
    /// The values of [`numbered`] made lately on this thread, by kind and `N % 8`: the seconds
    /// of a page's age and freshness change once a second, not with every hit.
    static NUMBERED: RefCell<[[NumberedSlot; 8]; 2]> =
        const { RefCell::new([const { [const { None }; 8] }; 2]) };
}

/// The header value of `kind` for `n` seconds, shared with the hits before it in the same
/// second (a clone is a reference count; a new value is formatted once).
fn numbered(kind: Numbered, n: u64) -> HeaderValue {
    NUMBERED.with_borrow_mut(|slots| {
        let slot = &mut slots[kind as usize][(n % 8) as usize];
        match slot {
            Some((seconds, value)) if *seconds == n => value.clone(),
            _ => {
                let text = match kind {
                    Numbered::MaxAge => format!("private, max-age={n}"),
                    Numbered::Plain => n.to_string(),
                };
                // Digits and ASCII text: always a valid header value.
                let value = HeaderValue::from_maybe_shared(Bytes::from(text))
                    .unwrap_or_else(|_| HeaderValue::from_static("0"));
                *slot = Some((n, value.clone()));
                value
            }
        }
    })
}

/// `If-None-Match` comparison (weak, as RFC 9110 asks for GET): `*`, or any listed tag.
fn etag_matches(header_value: &str, etag: &str) -> bool {
    fn bare(tag: &str) -> &str {
        tag.trim().trim_start_matches("W/")
    }
    header_value.trim() == "*" || header_value.split(',').any(|t| bare(t) == bare(etag))
}

#[cfg(test)]
mod tests {
    use super::{Numbered, etag_matches, numbered, page_numbers};

    #[test]
    fn page_numbers_agree_with_has_more_even_off_the_page_grid() {
        // On the grid: the usual numbers, also past the end.
        assert_eq!(page_numbers(0, 10, 25), (1, 3));
        assert_eq!(page_numbers(20, 10, 25), (3, 3));
        assert_eq!(page_numbers(90, 10, 25), (10, 3));
        // A cursor from limit=50 (offset 50) reused with limit=100: the second page of the
        // walk, and the last (floor division said "page 1").
        assert_eq!(page_numbers(50, 100, 120), (2, 2));
        // offset 10 with limit 3 over 14 items: 0-2, 3-5, 6-8 and the part page 9 before it,
        // 13 after it.
        assert_eq!(page_numbers(10, 3, 14), (5, 6));
        assert_eq!(page_numbers(10, 3, 11), (5, 5));
    }

    #[test]
    fn numbered_header_values_are_the_numbers_whatever_was_made_before() {
        for n in [0, 7, 8, 15, 300, 8, 0, u64::MAX] {
            assert_eq!(numbered(Numbered::Plain, n), n.to_string().as_str());
            assert_eq!(
                numbered(Numbered::MaxAge, n),
                format!("private, max-age={n}").as_str()
            );
        }
    }

    #[test]
    fn if_none_match() {
        assert!(etag_matches("\"abc\"", "\"abc\""));
        assert!(etag_matches("W/\"abc\"", "\"abc\""));
        assert!(etag_matches("\"x\", \"abc\"", "\"abc\""));
        assert!(etag_matches("*", "\"abc\""));
        assert!(!etag_matches("\"abd\"", "\"abc\""));
        assert!(!etag_matches("", "\"abc\""));
    }
}
