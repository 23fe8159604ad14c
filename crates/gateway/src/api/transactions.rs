//! The transaction routes: four scopes of listing and one lookup by gateway id.

use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use provider::{Scope, Transaction, TransactionQuery};

use crate::api::params::{self, ListParams};
use crate::api::views::{ListBody, PaginationSchema, TxView};
use crate::cursor::{Cursor, fingerprint};
use crate::error::{ApiError, Problem};
use crate::snapshot::{CacheStatus, SnapshotKey};
use crate::state::{AppState, Client};

type Result<T> = std::result::Result<T, ApiError>;

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
        (status = 200, description = "A page of the account's transactions, newest first.", body = crate::api::views::ListSchema),
        (status = 400, description = "A parameter is invalid; `parameter` names it.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The provider does not know the account.", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The cursor's snapshot has expired: restart from the first page.", body = Problem, content_type = "application/problem+json"),
        (status = 501, description = "The provider cannot list by this scope.", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider failed or sent an unreadable payload.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The provider is unreachable or rate limiting; see Retry-After.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_account(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let account = params::parse_id("account_id", &path)?;
    state
        .within_deadline(list(&req, &state, Scope::Account(account), false))
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
        (status = 200, description = "A page of the customer's transactions, newest first.", body = crate::api::views::ListSchema),
        (status = 400, description = "A parameter is invalid; `parameter` names it.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key.", body = Problem, content_type = "application/problem+json"),
        (status = 501, description = "The provider cannot list by customer.", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider failed.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_customer(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let customer = params::parse_id("customer_id", &path)?;
    state
        .within_deadline(list(&req, &state, Scope::Customer(customer), false))
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
        (status = 200, description = "A page of the account's transactions, newest first.", body = crate::api::views::ListSchema),
        (status = 400, description = "A parameter is invalid; `parameter` names it.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key.", body = Problem, content_type = "application/problem+json"),
        (status = 501, description = "The provider cannot list by NUBAN.", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider failed.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_nuban(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let nuban = params::parse_nuban(&path)?;
    state
        .within_deadline(list(&req, &state, Scope::Nuban(nuban), false))
        .await
}

/// Lists all of the client's transactions in a date range (`from` and `to` required).
#[utoipa::path(
    get,
    path = "/v1/transactions",
    tag = "transactions",
    params(ListParams),
    responses(
        (status = 200, description = "A page of transactions, newest first.", body = crate::api::views::ListSchema),
        (status = 400, description = "A parameter is invalid or missing; `parameter` names it.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key.", body = Problem, content_type = "application/problem+json"),
        (status = 501, description = "The provider cannot list across accounts.", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider failed.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_all(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    state
        .within_deadline(list(&req, &state, Scope::All, true))
        .await
}

/// Reads one transaction by the gateway id from any list response.
#[utoipa::path(
    get,
    path = "/v1/transactions/{id}",
    tag = "transactions",
    params(
        ("id" = String, Path, description = "A gateway transaction id (`txn_...`) from a list response."),
        ("include" = Option<String>, Query, description = "`raw` adds the vendor's record."),
    ),
    responses(
        (status = 200, description = "The transaction.", body = crate::api::views::ItemSchema),
        (status = 400, description = "The id is not a gateway transaction id.", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such transaction.", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider failed.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_transaction(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    state.within_deadline(get_one(&req, &path, &state)).await
}

async fn get_one(req: &HttpRequest, path: &str, state: &AppState) -> Result<HttpResponse> {
    let id = params::parse_transaction_id(path)?;
    let pairs = params::parse_pairs(req.query_string(), &["include"])?;
    let include_raw = match pairs.first().map(|(_, v)| v.as_str()) {
        None => false,
        Some("raw") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "include",
                format!("include accepts only \"raw\", not {other:?}"),
            ));
        }
    };
    let not_found = || ApiError::NotFound {
        detail: format!("no transaction {id}"),
        provider: Some(id.provider().to_owned()),
    };
    let entry = state.registry.get(id.provider()).ok_or_else(not_found)?;
    let (tx, status) = match state.snapshots.find(&id).await {
        Some((tx, _)) => (tx, CacheStatus::Hit),
        None if entry.provider.capabilities().get_by_id => {
            let tx = entry
                .provider
                .get_transaction(id.provider_id())
                .await
                .map_err(|e| match e {
                    provider::ProviderError::NotFound { .. } => not_found(),
                    other => ApiError::Upstream(other),
                })?;
            (tx, CacheStatus::Miss)
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
    Ok(json_response(body, status))
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
        .get::<std::sync::Arc<Client>>()
        .cloned()
        .ok_or(ApiError::Unauthorized)?;
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

    // A cursor pins its snapshot; otherwise the current one (fetched on a miss).
    let (snapshot, status, offset) = match &request.cursor {
        Some(text) => {
            let cursor = state.cursors.decode(text, fp)?;
            let key = SnapshotKey::for_query(entry, &query);
            let snapshot = state
                .snapshots
                .by_id(&key, cursor.snapshot_id)
                .await
                .ok_or(ApiError::CursorExpired)?;
            (snapshot, CacheStatus::Hit, cursor.offset as usize)
        }
        None => {
            let (snapshot, status) = state.snapshots.get_or_fetch(entry, &query).await?;
            let page = request.page.unwrap_or(1);
            let offset = (page as usize - 1).saturating_mul(request.limit as usize);
            (snapshot, status, offset)
        }
    };

    let matching: Vec<&Transaction> = snapshot.items.iter().filter(|t| query.matches(t)).collect();
    let total = matching.len();
    let limit = request.limit as usize;
    let end = offset.saturating_add(limit).min(total);
    let items = matching.get(offset.min(total)..end).unwrap_or_default();
    let has_more = end < total;
    let next_cursor = has_more.then(|| {
        state.cursors.encode(Cursor {
            snapshot_id: snapshot.id,
            offset: u32::try_from(end).unwrap_or(u32::MAX),
            fingerprint: fp,
        })
    });
    let body = ListBody {
        data: items
            .iter()
            .map(|tx| TxView {
                tx,
                include_raw: request.include_raw,
            })
            .collect(),
        pagination: PaginationSchema {
            limit: request.limit,
            page: u32::try_from(offset / limit + 1).unwrap_or(u32::MAX),
            total: total as u64,
            total_pages: total.div_ceil(limit) as u64,
            has_more,
            next_cursor,
        },
    };
    let bytes = serde_json::to_vec(&body).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json_response(bytes, status))
}

fn json_response(body: Vec<u8>, status: CacheStatus) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header(("x-cache", status.as_str()))
        .body(body)
}
