//! Delta sync: `GET /v1/accounts/{account_id}/transactions/sync`, what changed since the
//! caller's last call (see `crate::sync` for the version history behind it).
//!
//! A sync cursor names a version of the account's history. A call with one answers the changes
//! from that version to the latest (a call without one: everything, as `added`), paged: the
//! first page pins the latest version and its snapshot, and every further page of the same
//! sync (its `next_cursor`, `has_more: true`) slices the same change set, whatever changes
//! meanwhile. The last page's `next_cursor` names the version just reached: keep it for the
//! next sync.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use provider::{Scope, Transaction, TransactionId, TransactionQuery};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::api::params;
use crate::api::views::{TransactionSchema, TxView};
use crate::cursor::fingerprint;
use crate::error::{ApiError, KeyProblem, Problem};
use crate::snapshot::{FetchError, Snapshot, SnapshotKey};
use crate::state::{AppState, Client};
use crate::sync::{ChangeSet, HistoryError};

type Result<T> = std::result::Result<T, ApiError>;

/// The kind byte of sync cursors (list cursors use another).
const SYNC_CURSOR: u8 = 0x53;
const CURSOR_BODY: usize = 8 * 5 + 4;
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 500;

/// Query parameters of a sync.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SyncParams {
    /// `next_cursor` from the previous sync response; absent or empty (as Plaid's clients send
    /// it): start from nothing (everything is `added`).
    cursor: Option<String>,
    /// Changes per page, 1-500.
    #[param(minimum = 1, maximum = 500, default = 100)]
    limit: Option<u32>,
    /// Provider instance to ask (see `GET /v1/providers`); the configured default when absent.
    /// A cursor belongs to one provider.
    #[param(example = "okra")]
    provider: Option<String>,
}

/// What a sync cursor says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SyncCursor {
    epoch: u64,
    /// The version the changes start from (0: from nothing).
    from: u64,
    /// The version they lead to.
    to: u64,
    /// The snapshot holding the content of `to` for this sync's pages (0: a saved cursor, at
    /// rest at `to`).
    snapshot_id: u64,
    offset: u32,
    fingerprint: u64,
}

impl SyncCursor {
    fn encode(&self, state: &AppState) -> String {
        let mut body = Vec::with_capacity(CURSOR_BODY);
        for n in [self.epoch, self.from, self.to, self.snapshot_id] {
            body.extend_from_slice(&n.to_be_bytes());
        }
        body.extend_from_slice(&self.offset.to_be_bytes());
        body.extend_from_slice(&self.fingerprint.to_be_bytes());
        state.cursors.seal(SYNC_CURSOR, &body)
    }

    fn decode(state: &AppState, text: &str, fingerprint: u64) -> Result<SyncCursor> {
        let body = state.cursors.open(SYNC_CURSOR, text)?;
        if body.len() != CURSOR_BODY {
            return Err(ApiError::InvalidCursor("malformed"));
        }
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&body[i..i + 8]);
            u64::from_be_bytes(b)
        };
        let mut offset = [0u8; 4];
        offset.copy_from_slice(&body[32..36]);
        let cursor = SyncCursor {
            epoch: u64_at(0),
            from: u64_at(8),
            to: u64_at(16),
            snapshot_id: u64_at(24),
            offset: u32::from_be_bytes(offset),
            fingerprint: u64_at(36),
        };
        if cursor.fingerprint != fingerprint {
            return Err(ApiError::InvalidCursor(
                "issued for another account, provider or caller",
            ));
        }
        Ok(cursor)
    }
}

/// A transaction that is gone.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "txn_b2tyYR82NWYzYzFiMmE5ZDAwMDAwMDAwMDAwMDAx",
    "provider_transaction_id": "65f3c1b2a9d0000000000001",
    "account_id": "65f3c1b2a9d0000000000a01"
}))]
pub struct RemovedTransaction {
    /// The gateway id it had.
    id: String,
    /// The provider's own id.
    provider_transaction_id: String,
    /// The account it was in.
    account_id: String,
}

/// A page of changes (documentation of the body).
#[derive(ToSchema)]
#[schema(as = SyncPage, example = json!({
    "added": [{
        "id": "txn_b2tyYR82NWYzYzFiMmE5ZDAwMDAwMDAwMDAwMDAx",
        "provider": "okra",
        "provider_transaction_id": "65f3c1b2a9d0000000000001",
        "account_id": "65f3c1b2a9d0000000000a01",
        "customer_id": "65f3c1b2a9d0000000000c01",
        "direction": "debit",
        "amount": {"minor": 5250, "currency": "NGN", "value": "52.50"},
        "balance_after": null,
        "booked_on": "2026-10-30",
        "value_on": "2026-10-30",
        "narration": "POS PURCHASE SHOPRITE LEKKI",
        "reference": "FT26303ABC123",
        "bank": "Guaranty Trust Bank"
    }],
    "modified": [],
    "removed": [],
    "provider": "okra",
    "account_id": "65f3c1b2a9d0000000000a01",
    "has_more": false,
    "next_cursor": "U9f0..."
}))]
#[allow(dead_code)]
pub struct SyncSchema {
    /// Transactions that appeared (the whole account on a sync without a cursor).
    added: Vec<TransactionSchema>,
    /// Transactions with the same provider id whose canonical content changed: their new form.
    modified: Vec<TransactionSchema>,
    /// Transactions that disappeared.
    removed: Vec<RemovedTransaction>,
    /// The provider instance that answered.
    provider: String,
    /// The account.
    account_id: String,
    /// More changes of this same sync follow: call again with `next_cursor` at once.
    has_more: bool,
    /// Always present. With `has_more`, the next page of this sync; otherwise the state just
    /// reached: keep it and pass it to the next sync.
    next_cursor: String,
}

#[derive(Serialize)]
struct SyncBody<'a> {
    added: Vec<TxView<'a>>,
    modified: Vec<TxView<'a>>,
    removed: Vec<RemovedTransaction>,
    provider: &'a str,
    account_id: &'a str,
    has_more: bool,
    next_cursor: String,
}

/// What a sync may answer besides a page (OpenAPI documentation).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum SyncFailures {
    /// A parameter is invalid, or the cursor is not this caller's for this account and provider.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// Missing or unknown API key.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The provider does not know the account.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// `sync_cursor_expired`: the cursor names versions past retention (or a history the
    /// gateway no longer has): sync again without a cursor.
    #[response(status = 410, content_type = "application/problem+json")]
    Gone(Problem),
    /// The account is too large to snapshot, so it has no version history.
    #[response(status = 422, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// The provider failed or sent an unreadable payload.
    #[response(status = 502, content_type = "application/problem+json")]
    BadGateway(Problem),
    /// The request did not complete within the gateway's deadline.
    #[response(status = 504, content_type = "application/problem+json")]
    Timeout(Problem),
}

/// What changed in one account since the caller's last sync: transactions added, modified and
/// removed, for any provider (the gateway keeps a version history of every account it reads).
///
/// Call without `cursor` first (everything comes as `added`), follow `next_cursor` while
/// `has_more` is true, then keep the last `next_cursor` for the next sync. The pages of one sync
/// belong to one state of the account, even when it changes meanwhile (those changes come in the
/// next sync). The first page reads the provider only when the account's snapshot is stale, the
/// same way a listing does.
#[utoipa::path(
    get,
    path = "/v1/accounts/{account_id}/transactions/sync",
    tag = "transactions",
    params(
        ("account_id" = String, Path, description = "The provider's account id.", example = "ACCOUNT_ID"),
        SyncParams
    ),
    responses(
        (status = 200, description = "A page of changes.", body = SyncSchema),
        SyncFailures,
    ),
    security(("api_key" = ["transactions:sync"]))
)]
pub async fn sync_account(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let account = params::parse_id("account_id", &path)?;
    state.within_deadline(sync(&req, &state, account)).await
}

fn history_error(e: HistoryError) -> ApiError {
    match e {
        HistoryError::Expired(detail) => ApiError::SyncCursorExpired(detail),
        HistoryError::Unavailable(detail) => ApiError::CoordinationUnavailable(detail),
    }
}

async fn sync(req: &HttpRequest, state: &AppState, account: String) -> Result<HttpResponse> {
    let pairs = params::parse_pairs(req.query_string(), &["cursor", "limit", "provider"])?;
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    };
    let limit = match get("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "limit",
                    format!("limit must be an integer from 1 to {MAX_LIMIT}, not {text:?}"),
                )
            })?,
    };
    let client = req
        .extensions()
        .get::<Arc<Client>>()
        .cloned()
        .ok_or(ApiError::Unauthorized(KeyProblem::Missing))?;
    let entry = state.registry.resolve(get("provider"))?;
    if !entry
        .provider
        .capabilities()
        .supports(provider::ScopeKind::Account)
    {
        return Err(ApiError::Unsupported {
            provider: entry.name.to_string(),
            capability: "listing by account".into(),
        });
    }
    let query = TransactionQuery::new(Scope::Account(account.clone()));
    let fp = fingerprint(&client.name, &entry.name, &query);
    let cursor = get("cursor")
        .filter(|text| !text.is_empty())
        .map(|text| SyncCursor::decode(state, text, fp))
        .transpose()?;

    let current = || async {
        let (snapshot, status) = match state.snapshots.get_or_fetch(entry, &query).await {
            Ok(found) => found,
            Err(e @ (FetchError::Provider(_) | FetchError::Busy(_))) => return Err(e.into_api()),
            Err(FetchError::TooLarge { total }) => {
                return Err(ApiError::ScopeTooLarge {
                    provider: entry.name.to_string(),
                    detail: format!(
                        "this account has {total} transactions, more than the gateway snapshots (cache.max_snapshot_items), so it has no version history to sync from"
                    ),
                });
            }
        };
        let head = state.sync.observe(&snapshot).await.map_err(history_error)?;
        Ok((snapshot, status, head))
    };

    // The walk: from which version to which, the snapshot with the content of `to`, where.
    let (walk, content, status) = match cursor {
        Some(c) if c.snapshot_id != 0 => {
            let key = SnapshotKey::for_query(entry, &query);
            match state.snapshots.by_id(&key, c.snapshot_id).await {
                Some(snapshot) => (c, snapshot, "hit"),
                None => {
                    // The pinned snapshot is gone; the current one serves if it is the same state.
                    let (snapshot, status, head) = current().await?;
                    if head.epoch != c.epoch || head.version != c.to {
                        return Err(ApiError::SyncCursorExpired(
                            "the state this sync was paging through is no longer kept".into(),
                        ));
                    }
                    (c, snapshot, status.as_str())
                }
            }
        }
        resting => {
            let (snapshot, status, head) = current().await?;
            let from = match resting {
                Some(c) if c.epoch != head.epoch || c.to > head.version => {
                    return Err(ApiError::SyncCursorExpired(
                        "this cursor names a version history the gateway no longer keeps".into(),
                    ));
                }
                Some(c) => c.to,
                None => 0,
            };
            let walk = SyncCursor {
                epoch: head.epoch,
                from,
                to: head.version,
                snapshot_id: snapshot.id,
                offset: 0,
                fingerprint: fp,
            };
            (walk, snapshot, status.as_str())
        }
    };

    let changes = if walk.from == 0 {
        let mut added: Vec<String> = content
            .items
            .iter()
            .map(|t| t.provider_transaction_id.clone())
            .collect();
        added.sort_unstable();
        ChangeSet {
            added,
            ..ChangeSet::default()
        }
    } else {
        state
            .sync
            .changes(&entry.name, &account, walk.epoch, walk.from, walk.to)
            .await
            .map_err(history_error)?
    };
    let body = render(
        state,
        &entry.name,
        &account,
        &walk,
        &changes,
        &content,
        limit,
    )?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("x-cache", status))
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(body))
}

/// The page of `changes` at `walk.offset`, with the content from `content`.
fn render(
    state: &AppState,
    provider: &str,
    account: &str,
    walk: &SyncCursor,
    changes: &ChangeSet,
    content: &Snapshot,
    limit: u32,
) -> Result<Vec<u8>> {
    let by_id: HashMap<&str, &Transaction> = content
        .items
        .iter()
        .map(|t| (t.provider_transaction_id.as_str(), t))
        .collect();
    let total = changes.len();
    let start = (walk.offset as usize).min(total);
    let end = start.saturating_add(limit as usize).min(total);
    let (n_added, n_modified) = (changes.added.len(), changes.modified.len());
    let mut body = SyncBody {
        added: Vec::new(),
        modified: Vec::new(),
        removed: Vec::new(),
        provider,
        account_id: account,
        has_more: end < total,
        next_cursor: String::new(),
    };
    let view = |id: &str| {
        let found = by_id.get(id).map(|tx| TxView {
            tx,
            include_raw: false,
        });
        if found.is_none() {
            tracing::warn!(
                provider,
                account,
                id,
                "a changed record is missing from its snapshot"
            );
        }
        found
    };
    for position in start..end {
        if position < n_added {
            body.added.extend(view(&changes.added[position]));
        } else if position < n_added + n_modified {
            body.modified
                .extend(view(&changes.modified[position - n_added]));
        } else {
            let id = &changes.removed[position - n_added - n_modified];
            body.removed.push(RemovedTransaction {
                id: TransactionId::new(provider, id.as_str()).to_string(),
                provider_transaction_id: id.clone(),
                account_id: account.to_owned(),
            });
        }
    }
    let next = if body.has_more {
        SyncCursor {
            offset: u32::try_from(end).unwrap_or(u32::MAX),
            ..*walk
        }
    } else {
        SyncCursor {
            from: walk.to,
            snapshot_id: 0,
            offset: 0,
            ..*walk
        }
    };
    body.next_cursor = next.encode(state);
    serde_json::to_vec(&body).map_err(|e| ApiError::Internal(e.to_string()))
}
