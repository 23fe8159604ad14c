//! The sandbox's own routes under `/_sandbox` (no auth, never counted, never faulted):
//! the directory, the request counters, faults, quotas, and corrections of an account's history
//! (transactions modified or removed, as banks do when they correct a posting).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::config::{Faults, Vendor};
use crate::directory;
use crate::ledger::TxnIds;
use crate::state::{Reply, Shared};

/// Registers the `/_sandbox` routes.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/_sandbox/accounts", web::get().to(accounts))
        .route("/_sandbox/stats", web::get().to(stats))
        .route("/_sandbox/stats/reset", web::post().to(reset_stats))
        .route("/_sandbox/faults", web::get().to(get_faults))
        .route("/_sandbox/faults", web::post().to(set_faults))
        .route("/_sandbox/faults/clear", web::post().to(clear_faults))
        .route("/_sandbox/quota", web::get().to(get_quota))
        .route("/_sandbox/quota", web::post().to(set_quota))
        .route(
            "/_sandbox/accounts/{account_id}/mutations",
            web::post().to(mutate),
        );
}

fn ok(value: &impl serde::Serialize) -> HttpResponse {
    Reply::json(StatusCode::OK, value).into_response()
}

fn bad_request(message: String) -> HttpResponse {
    Reply::json(
        StatusCode::BAD_REQUEST,
        &serde_json::json!({ "error": message }),
    )
    .into_response()
}

async fn accounts(shared: web::Data<Shared>) -> HttpResponse {
    ok(&directory::build(&shared))
}

async fn stats(shared: web::Data<Shared>) -> HttpResponse {
    ok(&shared.stats())
}

async fn reset_stats(shared: web::Data<Shared>) -> HttpResponse {
    shared.reset_stats();
    ok(&shared.stats())
}

fn all_faults(shared: &Shared) -> serde_json::Value {
    serde_json::json!({
        "okra": shared.faults(Vendor::Okra),
        "mono": shared.faults(Vendor::Mono),
        "mono-connect": shared.faults(Vendor::MonoConnect),
    })
}

async fn get_faults(shared: web::Data<Shared>) -> HttpResponse {
    ok(&all_faults(&shared))
}

#[derive(Deserialize)]
struct SetFaults {
    vendor: Vendor,
    #[serde(default)]
    faults: Faults,
}

async fn set_faults(shared: web::Data<Shared>, body: web::Bytes) -> HttpResponse {
    match serde_json::from_slice::<SetFaults>(&body) {
        Ok(req) if !(0.0..=1.0).contains(&req.faults.error_rate) => {
            let _ = req;
            bad_request("faults.error_rate must be between 0 and 1".to_owned())
        }
        Ok(req) => {
            shared.set_faults(req.vendor, req.faults);
            ok(&all_faults(&shared))
        }
        Err(e) => bad_request(format!(
            "expected {{\"vendor\": .., \"faults\": {{..}}}}: {e}"
        )),
    }
}

async fn clear_faults(shared: web::Data<Shared>) -> HttpResponse {
    shared.clear_faults();
    ok(&all_faults(&shared))
}

fn all_quotas(shared: &Shared) -> serde_json::Value {
    serde_json::json!({
        "okra": {"requests_per_minute": shared.quota(Vendor::Okra)},
        "mono": {"requests_per_minute": shared.quota(Vendor::Mono)},
        "mono-connect": {"requests_per_minute": shared.quota(Vendor::MonoConnect)},
    })
}

async fn get_quota(shared: web::Data<Shared>) -> HttpResponse {
    ok(&all_quotas(&shared))
}

#[derive(Deserialize)]
struct SetQuota {
    vendor: Vendor,
    #[serde(default)]
    requests_per_minute: Option<u32>,
}

async fn set_quota(shared: web::Data<Shared>, body: web::Bytes) -> HttpResponse {
    match serde_json::from_slice::<SetQuota>(&body) {
        Ok(req) => {
            shared.set_quota(req.vendor, req.requests_per_minute);
            ok(&all_quotas(&shared))
        }
        Err(e) => bad_request(format!(
            "expected {{\"vendor\": .., \"requests_per_minute\": n|null}}: {e}"
        )),
    }
}

/// The ids of one transaction in both vendors' formats.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct MutationIds {
    /// Okra's `_id`.
    pub okra_id: String,
    /// The Mono-style numeric id, as text (the adapters' `provider_transaction_id`).
    pub mono_id: String,
}

/// What a mutation changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Mutation {
    /// Transactions whose narration changed.
    pub modified: Vec<MutationIds>,
    /// Transactions that are gone.
    pub removed: Vec<MutationIds>,
}

impl Mutation {
    pub(crate) fn from_pairs(modified: Vec<TxnIds>, removed: Vec<TxnIds>) -> Self {
        let ids = |pairs: Vec<TxnIds>| {
            pairs
                .into_iter()
                .map(|(okra_id, mono_id)| MutationIds {
                    okra_id,
                    mono_id: mono_id.to_string(),
                })
                .collect()
        };
        Mutation {
            modified: ids(modified),
            removed: ids(removed),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MutateBody {
    #[serde(default)]
    modify: usize,
    #[serde(default)]
    remove: usize,
}

async fn mutate(
    shared: web::Data<Shared>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let req = match serde_json::from_slice::<MutateBody>(&body) {
        Ok(req) => req,
        Err(e) => {
            return bad_request(format!("expected {{\"modify\": n, \"remove\": n}}: {e}"));
        }
    };
    let mut ledger = shared.write();
    let Some(account) = ledger
        .account_by_okra_id(&path)
        .or_else(|| ledger.account_by_mono_id(&path))
    else {
        return Reply::json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({ "error": format!("no account {}", path.as_str()) }),
        )
        .into_response();
    };
    let (modified, removed) = ledger.mutate(account, req.modify, req.remove);
    ok(&Mutation::from_pairs(modified, removed))
}
