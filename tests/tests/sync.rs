//! Delta sync end to end: `GET /v1/accounts/{id}/transactions/sync` against the sandbox, for
//! both provider kinds, in-process and across replicas sharing Redis.
//!
//! The sandbox changes an account the way banks do: a refresh appends three transactions, and
//! `Sandbox::mutate` corrects the narration of some and removes others. A sync from a saved
//! cursor must then answer exactly those changes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panicking helper is a failed test

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use e2e::replicas::{
    redis_url, replica_toml, spawn_replica, standalone_sandbox_with, unique_prefix,
};
use e2e::{BILLING_KEY, LEDGER_KEY, TestGateway, base_config, spawn};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

const NEW_PER_REFRESH: usize = 3;

/// Both providers, a 200 ms sandbox refresh, `extra` TOML after it.
fn config(default: &str, extra: &str) -> String {
    base_config(default, &format!("refresh_ms = 200\n{extra}"))
}

/// What one sync (all its pages) returned.
#[derive(Debug, Default)]
struct Synced {
    added: Vec<Value>,
    modified: Vec<Value>,
    removed: Vec<Value>,
    cursor: String,
    pages: usize,
}

impl Synced {
    fn ids(items: &[Value]) -> BTreeSet<String> {
        let ids: BTreeSet<String> = items
            .iter()
            .map(|t| t["provider_transaction_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), items.len(), "no record twice in one sync");
        ids
    }
    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }
}

fn sync_path(account: &str, provider: &str, limit: u32, cursor: Option<&str>) -> String {
    let mut path =
        format!("/v1/accounts/{account}/transactions/sync?provider={provider}&limit={limit}");
    if let Some(cursor) = cursor {
        path.push_str(&format!("&cursor={cursor}"));
    }
    path
}

/// One page: (body, has_more, next_cursor).
async fn sync_page(
    gw: &TestGateway,
    account: &str,
    provider: &str,
    limit: u32,
    cursor: Option<&str>,
) -> (Value, bool, String) {
    let reply = gw.get(&sync_path(account, provider, limit, cursor)).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let more = reply.json["has_more"].as_bool().unwrap();
    let next = reply.json["next_cursor"].as_str().unwrap().to_owned();
    (reply.json, more, next)
}

fn absorb(into: &mut Synced, page: &Value) {
    let list = |name: &str| page[name].as_array().cloned().unwrap();
    into.added.extend(list("added"));
    into.modified.extend(list("modified"));
    into.removed.extend(list("removed"));
    into.pages += 1;
}

/// Follows a sync from `cursor` to the end, each page from `gws[page % gws.len()]`.
async fn sync_all(
    gws: &[&TestGateway],
    account: &str,
    provider: &str,
    limit: u32,
    cursor: Option<&str>,
) -> Synced {
    let mut out = Synced::default();
    let mut cursor = cursor.map(str::to_owned);
    loop {
        let gw = gws[out.pages % gws.len()];
        let (page, more, next) = sync_page(gw, account, provider, limit, cursor.as_deref()).await;
        absorb(&mut out, &page);
        cursor = Some(next);
        if !more {
            out.cursor = cursor.unwrap();
            return out;
        }
        assert!(out.pages < 10_000, "the sync never ends");
    }
}

/// The account's ids as a listing shows them now.
async fn listed_ids(gw: &TestGateway, account: &str, provider: &str) -> BTreeSet<String> {
    let all = gw
        .walk(
            &format!("/v1/accounts/{account}/transactions?provider={provider}"),
            100,
        )
        .await;
    Synced::ids(&all)
}

/// An account of `min..=max` transactions, its id at `provider`.
fn account(gw: &TestGateway, provider: &str, min: u64, max: u64) -> (String, u64) {
    let a = gw
        .accounts_with(min)
        .into_iter()
        .find(|a| a.transaction_count <= max)
        .unwrap();
    let id = match provider {
        "okra" => a.okra_account_id,
        _ => a.mono_account_id,
    };
    (id, a.transaction_count)
}

/// Corrects the account in the sandbox: (modified ids, removed ids) in `provider`'s ids.
fn mutate(
    sandbox: &sandbox::Sandbox,
    account: &str,
    provider: &str,
    modify: usize,
    remove: usize,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let m = sandbox.mutate(account, modify, remove).unwrap();
    let pick = |ids: &[sandbox::MutationIds]| -> BTreeSet<String> {
        ids.iter()
            .map(|i| match provider {
                "okra" => i.okra_id.clone(),
                _ => i.mono_id.clone(),
            })
            .collect()
    };
    (pick(&m.modified), pick(&m.removed))
}

/// POSTs a refresh and waits until its job succeeded.
async fn refresh(gw: &TestGateway, account: &str, provider: &str) {
    let accepted = gw
        .send(
            gw.http
                .post(format!(
                    "{}/v1/accounts/{account}/transactions/refresh?provider={provider}",
                    gw.base
                ))
                .bearer_auth(BILLING_KEY),
        )
        .await;
    assert_eq!(accepted.status, 202, "{}", accepted.json);
    let id = accepted.json["id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    loop {
        let job = gw.get(&format!("/v1/jobs/{id}")).await;
        match job.json["status"].as_str() {
            Some("succeeded") => return,
            Some("queued" | "running") => {}
            other => panic!("refresh {other:?}: {}", job.json),
        }
        assert!(started.elapsed() < Duration::from_secs(15), "refresh hangs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn upstream_reads(gw: &TestGateway) -> u64 {
    let stats = gw.sandbox.stats();
    stats.okra.values().sum::<u64>() + stats.mono.values().sum::<u64>()
}

/// The whole flow through one provider kind.
async fn sync_refresh_and_sync_again(provider: &str) {
    let gw = spawn(&config(provider, "")).await;
    let (account, count) = account(&gw, provider, 120, 1_500);

    // No cursor: everything, as added, over several pages.
    let first = sync_all(&[&gw], &account, provider, 50, None).await;
    assert!(first.pages >= 3, "{} pages", first.pages);
    assert_eq!(first.added.len() as u64, count);
    assert!(first.modified.is_empty() && first.removed.is_empty());
    let before = listed_ids(&gw, &account, provider).await;
    assert_eq!(Synced::ids(&first.added), before);

    // Nothing changed: nothing to sync, and no provider read for it (the snapshot is fresh).
    let reads = upstream_reads(&gw);
    let idle = sync_all(&[&gw], &account, provider, 50, Some(&first.cursor)).await;
    assert!(idle.is_empty(), "{idle:?}");
    assert_eq!(
        upstream_reads(&gw),
        reads,
        "a fresh snapshot costs no provider read"
    );

    // The bank corrects two postings and drops one; a refresh brings three new ones.
    let (modified, removed) = mutate(&gw.sandbox, &account, provider, 2, 1);
    refresh(&gw, &account, provider).await;
    let delta = sync_all(&[&gw], &account, provider, 2, Some(&first.cursor)).await;
    let after = listed_ids(&gw, &account, provider).await;

    let added: BTreeSet<String> = after.difference(&before).cloned().collect();
    assert_eq!(added.len(), NEW_PER_REFRESH);
    assert_eq!(Synced::ids(&delta.added), added);
    assert_eq!(Synced::ids(&delta.modified), modified);
    assert_eq!(Synced::ids(&delta.removed), removed);
    assert!(delta.pages >= 3, "paged at 2 per page: {}", delta.pages);
    for tx in &delta.modified {
        assert!(tx["narration"].as_str().unwrap().ends_with("(CORRECTED)"));
        assert!(
            tx["amount"]["minor"].is_i64(),
            "a whole canonical transaction"
        );
    }
    for gone in &delta.removed {
        assert_eq!(gone["account_id"], account.as_str());
        assert!(gone["id"].as_str().unwrap().starts_with("txn_"));
    }

    // The last cursor is the state reached: nothing more, and the old cursor still answers the
    // same changes (it names a version, not a moment).
    let rest = sync_all(&[&gw], &account, provider, 50, Some(&delta.cursor)).await;
    assert!(rest.is_empty(), "{rest:?}");
    let replay = sync_all(&[&gw], &account, provider, 500, Some(&first.cursor)).await;
    assert_eq!(Synced::ids(&replay.added), added);
    assert_eq!(Synced::ids(&replay.modified), modified);
    assert_eq!(Synced::ids(&replay.removed), removed);
}

#[tokio::test]
async fn okra_sync_to_completion_then_after_a_refresh_exactly_the_changes() {
    sync_refresh_and_sync_again("okra").await;
}

#[tokio::test]
async fn mono_sync_to_completion_then_after_a_refresh_exactly_the_changes() {
    sync_refresh_and_sync_again("mono").await;
}

/// The account changes in the sandbox and the gateway reads it anew (as after a refresh).
async fn change_and_reread(
    gw: &TestGateway,
    account: &str,
    modify: usize,
    remove: usize,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let changed = mutate(&gw.sandbox, account, "okra", modify, remove);
    if let Some(shared) = gw.state.snapshots.shared() {
        shared.invalidate_account("okra", account).await;
    }
    gw.state
        .snapshots
        .invalidate_local("okra", account)
        .unwrap();
    let fresh = gw
        .get(&format!("/v1/accounts/{account}/transactions?limit=1"))
        .await;
    assert_eq!(fresh.header("x-cache"), Some("miss"));
    changed
}

#[tokio::test]
async fn a_multi_page_sync_across_a_concurrent_change_has_no_duplicate_or_gap() {
    let gw = spawn(&config("okra", "")).await;
    let (account, _) = account(&gw, "okra", 300, 3_000);
    let before = listed_ids(&gw, &account, "okra").await;

    // A full sync: one page, then the account changes, then the rest of the pages.
    let (page, more, next) = sync_page(&gw, &account, "okra", 40, None).await;
    assert!(more);
    let mut full = Synced::default();
    absorb(&mut full, &page);
    let (modified_a, removed_a) = change_and_reread(&gw, &account, 4, 3).await;
    let rest = sync_all(&[&gw], &account, "okra", 40, Some(&next)).await;
    full.added.extend(rest.added);
    assert!(rest.modified.is_empty() && rest.removed.is_empty());
    assert_eq!(
        Synced::ids(&full.added),
        before,
        "the pages of one sync belong to the state it started in"
    );

    // A delta sync (the changes above), paged, while the account changes again.
    let (page, more, next) = sync_page(&gw, &account, "okra", 2, Some(&rest.cursor)).await;
    assert!(more);
    let mut delta = Synced::default();
    absorb(&mut delta, &page);
    let (modified_b, removed_b) = change_and_reread(&gw, &account, 1, 2).await;
    let tail = sync_all(&[&gw], &account, "okra", 2, Some(&next)).await;
    delta.added.extend(tail.added);
    delta.modified.extend(tail.modified);
    delta.removed.extend(tail.removed);
    assert_eq!(Synced::ids(&delta.modified), modified_a);
    assert_eq!(Synced::ids(&delta.removed), removed_a);
    assert!(delta.added.is_empty());

    // The second change comes in the next sync, whole. (Removing the oldest records again
    // removes some that the first change had modified: they are now removals.)
    let next_sync = sync_all(&[&gw], &account, "okra", 3, Some(&tail.cursor)).await;
    assert_eq!(Synced::ids(&next_sync.removed), removed_b);
    assert_eq!(
        Synced::ids(&next_sync.modified),
        modified_b.difference(&removed_b).cloned().collect()
    );
    assert!(next_sync.added.is_empty());
}

/// With only the latest change kept (`max_versions = 1`): a cursor from before it is a 410.
/// Returns (account, the latest cursor).
async fn only_the_latest_change_is_kept(gw: &TestGateway) -> (String, String) {
    let (account, _) = account(gw, "okra", 20, 400);
    let v1 = sync_all(&[gw], &account, "okra", 100, None).await;
    change_and_reread(gw, &account, 1, 0).await;
    let v2 = sync_all(&[gw], &account, "okra", 100, Some(&v1.cursor)).await;
    assert_eq!(v2.modified.len(), 1);
    change_and_reread(gw, &account, 1, 1).await;

    // From v2 the one kept change answers; from v1 it would need the dropped one.
    let v3 = sync_all(&[gw], &account, "okra", 100, Some(&v2.cursor)).await;
    assert_eq!(v3.removed.len(), 1);
    let gone = gw
        .get(&sync_path(&account, "okra", 100, Some(&v1.cursor)))
        .await;
    assert_eq!(gone.status, 410, "{}", gone.json);
    assert_eq!(gone.json["code"], "sync_cursor_expired");
    assert_eq!(gone.json["parameter"], "cursor");
    assert!(
        gone.json["detail"]
            .as_str()
            .unwrap()
            .contains("without a cursor"),
        "{}",
        gone.json
    );
    (account, v3.cursor)
}

#[tokio::test]
async fn a_cursor_past_retention_is_a_410_and_foreign_cursors_are_refused() {
    let gw = spawn(&config("okra", "\n[sync]\nmax_versions = 1\n")).await;
    let (account, cursor) = only_the_latest_change_is_kept(&gw).await;

    // Another caller's cursor, another provider's, a list cursor, an altered one: 400.
    let theirs = gw
        .get_as(
            Some(LEDGER_KEY),
            &sync_path(&account, "okra", 100, Some(&cursor)),
        )
        .await;
    assert_eq!(theirs.status, 400);
    assert_eq!(theirs.json["code"], "invalid_cursor");
    let list = gw
        .get(&format!("/v1/accounts/{account}/transactions?limit=1"))
        .await;
    let list_cursor = list.json["pagination"]["next_cursor"].as_str().unwrap();
    let mut altered = cursor.clone().into_bytes();
    altered[10] = if altered[10] == b'A' { b'B' } else { b'A' };
    for cursor in [list_cursor, &String::from_utf8(altered).unwrap()] {
        let refused = gw
            .get(&sync_path(&account, "okra", 100, Some(cursor)))
            .await;
        assert_eq!(refused.status, 400, "{}", refused.json);
        assert_eq!(refused.json["code"], "invalid_cursor");
    }
    // An empty cursor (what Plaid clients send first) is no cursor.
    let empty = gw.get(&sync_path(&account, "okra", 500, Some(""))).await;
    assert_eq!(empty.status, 200, "{}", empty.json);
    assert!(empty.json["modified"].as_array().unwrap().is_empty());
    assert!(!empty.json["added"].as_array().unwrap().is_empty());
    let bad = gw.get(&sync_path(&account, "okra", 501, None)).await;
    assert_eq!(
        (bad.status, bad.json["parameter"].as_str()),
        (400, Some("limit"))
    );
}

/// The requests a receiver got: (headers, body) each.
type Seen = Mutex<Vec<(Vec<(String, String)>, Vec<u8>)>>;

/// A local webhook receiver: every request it got.
async fn receiver() -> (String, Arc<Seen>) {
    let seen: Arc<Seen> = Arc::default();
    let data = web::Data::from(seen.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = HttpServer::new(move || {
        App::new().app_data(data.clone()).default_service(web::to(
            |req: HttpRequest, body: web::Bytes, seen: web::Data<Seen>| async move {
                let headers = req
                    .headers()
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_owned()))
                    .collect();
                seen.lock().unwrap().push((headers, body.to_vec()));
                HttpResponse::Ok().finish()
            },
        ))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (format!("http://{addr}"), seen)
}

const HOOK_SECRET: &str = "a-long-enough-raw-secret-for-sync";

/// TOML for a client `hooked` whose webhook is `hooks`, and the secret's file (remove it once
/// the gateway started).
fn hooked_client(hooks: &str) -> (String, std::path::PathBuf) {
    let secret_file = std::env::temp_dir().join(format!(
        "gateway-e2e-sync-secret-{}-{}",
        std::process::id(),
        hex::encode(&Sha256::digest(format!("{:?}", Instant::now()))[..6])
    ));
    std::fs::write(&secret_file, HOOK_SECRET).unwrap();
    let toml = format!(
        "\n[clients.hooked]\napi_key_sha256 = \"{}\"\nwebhook_url = \"{hooks}/hooks\"\nwebhook_secret_file = \"{}\"\n",
        hex::encode(Sha256::digest(b"hooked-key-e2e")),
        secret_file.display()
    );
    (toml, secret_file)
}

/// Waits for `n` notifications (or panics after 10 s).
async fn wait_for(seen: &Seen, n: usize) {
    let started = Instant::now();
    while seen.lock().unwrap().len() < n {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no notification"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_change_notifies_webhook_clients_with_the_account_not_the_data() {
    let (hooks, seen) = receiver().await;
    let (extra, secret_file) = hooked_client(&hooks);
    let gw = spawn(&config("okra", &extra)).await;
    std::fs::remove_file(&secret_file).unwrap();
    let (account, _) = account(&gw, "okra", 20, 400);

    // The first read of an account is not a change; a refresh that changes it is.
    let first = sync_all(&[&gw], &account, "okra", 100, None).await;
    mutate(&gw.sandbox, &account, "okra", 1, 0);
    refresh(&gw, &account, "okra").await;
    wait_for(&seen, 1).await;
    let delta = sync_all(&[&gw], &account, "okra", 100, Some(&first.cursor)).await;
    assert_eq!(
        (delta.added.len(), delta.modified.len()),
        (NEW_PER_REFRESH, 1)
    );

    let (headers, body) = seen.lock().unwrap()[0].clone();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["type"], "transactions.sync_available");
    assert_eq!(event["data"]["account_id"], account.as_str());
    assert_eq!(event["data"]["provider"], "okra");
    assert!(event["data"].get("added").is_none(), "no data in the event");
    let mut mac = Hmac::<Sha256>::new_from_slice(HOOK_SECRET.as_bytes()).unwrap();
    mac.update(format!("{}.{}.", header("webhook-id"), header("webhook-timestamp")).as_bytes());
    mac.update(&body);
    assert_eq!(
        header("webhook-signature"),
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    );
    // One change, one notification (the refresh's own went to the client that started it).
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn with_redis_a_cursor_from_one_replica_continues_on_another_and_after_a_restart() {
    let sandbox = standalone_sandbox_with(sandbox::SandboxConfig {
        refresh_duration: Duration::from_millis(200),
        ..Default::default()
    })
    .await;
    let (url, prefix) = (redis_url(), unique_prefix("sync"));
    let (hooks, seen) = receiver().await;
    let (hooked, secret_file) = hooked_client(&hooks);
    let toml = replica_toml(Some((&url, &prefix)), "", &hooked);
    let a = spawn_replica(&toml, &sandbox).await;
    let b = spawn_replica(&toml, &sandbox).await;
    let (account, count) = account(&a, "okra", 120, 1_500);

    // One sync whose pages alternate between the replicas.
    let first = sync_all(&[&a, &b], &account, "okra", 30, None).await;
    assert!(first.pages >= 4);
    assert_eq!(first.added.len() as u64, count);
    let before = Synced::ids(&first.added);

    // The account changes; a replica started afterwards (a restart) continues from the cursor.
    let (modified, removed) = mutate(&sandbox, &account, "okra", 2, 1);
    refresh(&a, &account, "okra").await;
    let c = spawn_replica(&toml, &sandbox).await;
    std::fs::remove_file(&secret_file).unwrap();
    let mut after = listed_ids(&c, &account, "okra").await;
    for _ in 0..40 {
        if after.len() == before.len() + NEW_PER_REFRESH - 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        after = listed_ids(&c, &account, "okra").await;
    }
    let delta = sync_all(&[&c, &b], &account, "okra", 2, Some(&first.cursor)).await;
    let added: BTreeSet<String> = after.difference(&before).cloned().collect();
    assert_eq!(added.len(), NEW_PER_REFRESH);
    assert_eq!(Synced::ids(&delta.added), added);
    assert_eq!(Synced::ids(&delta.modified), modified);
    assert_eq!(Synced::ids(&delta.removed), removed);
    let rest = sync_all(&[&a], &account, "okra", 50, Some(&delta.cursor)).await;
    assert!(rest.is_empty(), "{rest:?}");

    // Three replicas saw the new state; one version was recorded, one notification sent.
    wait_for(&seen, 1).await;
    let again = sync_all(&[&b, &c], &account, "okra", 500, None).await;
    assert_eq!(again.added.len(), after.len());
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "one change, one notification"
    );
}

#[tokio::test]
async fn with_redis_the_kept_changes_are_bounded_the_same_way() {
    let sandbox = standalone_sandbox_with(sandbox::SandboxConfig::default()).await;
    let (url, prefix) = (redis_url(), unique_prefix("sync-retention"));
    let toml = replica_toml(Some((&url, &prefix)), "", "\n[sync]\nmax_versions = 1\n");
    let gw = spawn_replica(&toml, &sandbox).await;
    only_the_latest_change_is_kept(&gw).await;
}
