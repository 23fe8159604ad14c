//! Refresh jobs end to end: real gateway, real sandbox, real HTTP, free ports.
//!
//! The embedded sandbox's Okra refresh runs for 200 ms here (`[sandbox] refresh_ms`) and appends
//! three transactions; its Mono-style webhook mode appends three and POSTs the result to the
//! callback URL the gateway gave it. Local receivers (small actix servers) stand in for a
//! client's webhook endpoint and, where a test must see the callback URL, for the network
//! between the vendor and the gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panicking helper is a failed test

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use e2e::{BILLING_KEY, LEDGER_KEY, Reply, TestGateway, base_config, spawn};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

const OKRA_REFRESH: &str = "POST /v2/transactions/refresh";
const NEW_PER_REFRESH: u64 = 3;

/// The base configuration with a 200 ms sandbox refresh, quick notification retries, and
/// `extra` TOML after it.
fn config(extra: &str) -> String {
    base_config(
        "okra",
        &format!(
            "refresh_ms = 200\n\n[jobs]\nnotify_initial_backoff_ms = 50\nnotify_max_backoff_ms = 200\n{extra}"
        ),
    )
}

/// `config` with `server.public_url` set: the vendor's callbacks go there instead.
fn config_with_public_url(public_url: &str, extra: &str) -> String {
    config(extra).replacen(
        "[server]\n",
        &format!("[server]\npublic_url = \"{public_url}\"\n"),
        1,
    )
}

async fn post_refresh(
    gw: &TestGateway,
    key: &str,
    path_and_query: &str,
    idempotency_key: Option<&str>,
) -> Reply {
    let mut req = gw
        .http
        .post(format!("{}{path_and_query}", gw.base))
        .bearer_auth(key);
    if let Some(k) = idempotency_key {
        req = req.header("Idempotency-Key", k);
    }
    gw.send(req).await
}

fn refresh_path(account: &str, provider: &str) -> String {
    format!("/v1/accounts/{account}/transactions/refresh?provider={provider}")
}

/// Polls the job until it is final (or panics after 15 s).
async fn wait_job(gw: &TestGateway, key: &str, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let reply = gw.get_as(Some(key), &format!("/v1/jobs/{id}")).await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        match reply.json["status"].as_str() {
            Some("succeeded" | "failed") => return reply.json,
            Some("queued" | "running") => {}
            other => panic!("unexpected status {other:?}: {}", reply.json),
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "job {id} did not finish: {}",
            reply.json
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn job_status(gw: &TestGateway, id: &str) -> String {
    let reply = gw.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    reply.json["status"].as_str().unwrap().to_owned()
}

/// (total, x-cache) of an account's listing.
async fn read_account(gw: &TestGateway, account: &str, provider: &str) -> (u64, String) {
    let reply = gw
        .get(&format!(
            "/v1/accounts/{account}/transactions?provider={provider}&limit=1"
        ))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    // Its snapshot built (a first page may come before the rest of its pages).
    gw.settle().await;
    (
        reply.json["pagination"]["total"].as_u64().unwrap(),
        reply.header("x-cache").unwrap_or_default().to_owned(),
    )
}

fn okra_refreshes(gw: &TestGateway) -> u64 {
    gw.sandbox
        .stats()
        .okra
        .get(OKRA_REFRESH)
        .copied()
        .unwrap_or_default()
}

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Seen {
    path_and_query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }
}

#[derive(Default)]
struct ReceiverState {
    seen: Mutex<Vec<Seen>>,
    fail_first: usize,
}

/// A local HTTP server that records every request and answers 500 to the first `fail_first`,
/// 200 after.
struct Receiver {
    base: String,
    state: Arc<ReceiverState>,
}

async fn record(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<ReceiverState>,
) -> HttpResponse {
    let mut seen = state.seen.lock().unwrap();
    seen.push(Seen {
        path_and_query: req
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect(),
        body: body.to_vec(),
    });
    if seen.len() <= state.fail_first {
        HttpResponse::InternalServerError().finish()
    } else {
        HttpResponse::Ok().finish()
    }
}

async fn receiver(fail_first: usize) -> Receiver {
    let state = Arc::new(ReceiverState {
        seen: Mutex::new(Vec::new()),
        fail_first,
    });
    let data = web::Data::from(state.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
            .default_service(web::to(record))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    Receiver {
        base: format!("http://{addr}"),
        state,
    }
}

impl Receiver {
    /// Waits until at least `n` requests arrived (or panics after 10 s).
    async fn wait_for(&self, n: usize) -> Vec<Seen> {
        let started = Instant::now();
        loop {
            let seen = self.state.seen.lock().unwrap().clone();
            if seen.len() >= n {
                return seen;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "expected {n} requests, got {}",
                seen.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn count(&self) -> usize {
        self.state.seen.lock().unwrap().len()
    }
}

#[tokio::test]
async fn an_okra_refresh_goes_from_202_to_succeeded_and_the_next_read_is_fresh() {
    let gw = spawn(&config("")).await;
    let account = gw.accounts_with(1).remove(0).okra_account_id;
    let (before, _) = read_account(&gw, &account, "okra").await;
    assert_eq!(
        read_account(&gw, &account, "okra").await,
        (before, "hit".into())
    );

    let accepted = post_refresh(&gw, BILLING_KEY, &refresh_path(&account, "okra"), None).await;
    assert_eq!(accepted.status, 202, "{}", accepted.json);
    let job = &accepted.json;
    let id = job["id"].as_str().unwrap();
    assert!(id.starts_with("job_") && id.len() == 36, "{id}");
    assert!(matches!(job["status"].as_str(), Some("queued" | "running")));
    assert_eq!(job["provider"], "okra");
    assert_eq!(job["account_id"], account.as_str());
    assert_eq!(job["status_url"], format!("/v1/jobs/{id}"));
    assert_eq!(
        accepted.header("location"),
        Some(&*format!("/v1/jobs/{id}"))
    );
    assert!(job["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(job["finished_at"].is_null());

    let done = wait_job(&gw, BILLING_KEY, id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(done["started_at"].is_string() && done["finished_at"].is_string());
    assert!(done.get("problem").is_none());

    assert_eq!(
        read_account(&gw, &account, "okra").await,
        (before + NEW_PER_REFRESH, "miss".into())
    );
    assert_eq!(okra_refreshes(&gw), 1);
}

#[tokio::test]
async fn a_mono_refresh_completes_from_the_webhook_delivery() {
    let gw = spawn(&config("")).await;
    let account = gw.accounts_with(1).remove(0).mono_account_id;
    let (before, _) = read_account(&gw, &account, "mono").await;
    assert_eq!(
        read_account(&gw, &account, "mono").await,
        (before, "hit".into())
    );

    let accepted = post_refresh(&gw, BILLING_KEY, &refresh_path(&account, "mono"), None).await;
    assert_eq!(accepted.status, 202, "{}", accepted.json);
    let id = accepted.json["id"].as_str().unwrap();
    let done = wait_job(&gw, BILLING_KEY, id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["provider"], "mono");
    assert_eq!(done["transactions_delivered"], before + NEW_PER_REFRESH);

    assert_eq!(
        read_account(&gw, &account, "mono").await,
        (before + NEW_PER_REFRESH, "miss".into())
    );
}

#[tokio::test]
async fn an_idempotency_key_returns_the_same_job_and_refreshes_once() {
    let gw = spawn(&config("")).await;
    let accounts = gw.accounts_with(1);
    let (account, other) = (&accounts[0].okra_account_id, &accounts[1].okra_account_id);
    let path = refresh_path(account, "okra");

    let first = post_refresh(&gw, BILLING_KEY, &path, Some("key-1")).await;
    let retried = post_refresh(&gw, BILLING_KEY, &path, Some("key-1")).await;
    assert_eq!((first.status, retried.status), (202, 202));
    let id = first.json["id"].as_str().unwrap();
    assert_eq!(retried.json["id"], id);
    wait_job(&gw, BILLING_KEY, id).await;

    // After the job finished, the key still returns it (and starts nothing).
    let replayed = post_refresh(&gw, BILLING_KEY, &path, Some("key-1")).await;
    assert_eq!(replayed.status, 202);
    assert_eq!(replayed.json["id"], id);
    assert_eq!(replayed.json["status"], "succeeded");
    assert_eq!(okra_refreshes(&gw), 1);

    // The same key for another account is refused, naming the header.
    let reused = post_refresh(
        &gw,
        BILLING_KEY,
        &refresh_path(other, "okra"),
        Some("key-1"),
    )
    .await;
    assert_eq!(reused.status, 422, "{}", reused.json);
    assert_eq!(reused.json["code"], "idempotency_key_reused");
    assert_eq!(reused.json["parameter"], "Idempotency-Key");
    assert_eq!(
        reused.header("content-type"),
        Some("application/problem+json")
    );

    // Keys belong to a client: another client's same key is its own job; nobody sees another's.
    let theirs = post_refresh(&gw, LEDGER_KEY, &path, Some("key-1")).await;
    assert_eq!(theirs.status, 202);
    assert_ne!(theirs.json["id"], id);
    let hidden = gw.get_as(Some(LEDGER_KEY), &format!("/v1/jobs/{id}")).await;
    assert_eq!(hidden.status, 404, "{}", hidden.json);
    assert_eq!(gw.get_as(None, &format!("/v1/jobs/{id}")).await.status, 401);

    // A malformed key is a 400 naming the header.
    let bad = post_refresh(&gw, BILLING_KEY, &path, Some(&"k".repeat(300))).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json["parameter"], "Idempotency-Key");
}

#[tokio::test]
async fn concurrent_refreshes_of_one_account_are_joined() {
    let gw = spawn(&config("")).await;
    let account = gw.accounts_with(1).remove(0).okra_account_id;
    let path = refresh_path(&account, "okra");

    let posts = (0..8).map(|i| {
        let key = if i % 4 == 3 { LEDGER_KEY } else { BILLING_KEY };
        let (gw, path) = (&gw, &path);
        async move { (key, post_refresh(gw, key, path, None).await) }
    });
    let replies = futures_util::future::join_all(posts).await;
    let ids = |who: &str| -> Vec<String> {
        let mut ids: Vec<String> = replies
            .iter()
            .filter(|(key, _)| *key == who)
            .map(|(_, r)| {
                assert_eq!(r.status, 202, "{}", r.json);
                r.json["id"].as_str().unwrap().to_owned()
            })
            .collect();
        ids.dedup();
        ids
    };
    // Each client has one job, however often it asked; the two clients' jobs differ.
    let (billing, ledger) = (ids(BILLING_KEY), ids(LEDGER_KEY));
    assert_eq!(
        (billing.len(), ledger.len()),
        (1, 1),
        "{billing:?} {ledger:?}"
    );
    assert_ne!(billing, ledger);

    assert_eq!(
        wait_job(&gw, BILLING_KEY, &billing[0]).await["status"],
        "succeeded"
    );
    assert_eq!(
        wait_job(&gw, LEDGER_KEY, &ledger[0]).await["status"],
        "succeeded"
    );
    assert_eq!(
        okra_refreshes(&gw),
        1,
        "one upstream refresh for all of them"
    );

    // Finished: the next POST is a new refresh.
    let again = post_refresh(&gw, BILLING_KEY, &path, None).await;
    assert_ne!(again.json["id"], billing[0].as_str());
}

#[tokio::test]
async fn a_refresh_whose_provider_fails_ends_failed_with_a_problem() {
    let gw = spawn(&config("")).await;
    let info = gw.accounts_with(1).remove(0);
    let failing = sandbox::Faults {
        error_rate: 1.0,
        error_status: 500,
        ..Default::default()
    };
    gw.sandbox
        .set_faults(sandbox::Vendor::Okra, failing.clone());
    gw.sandbox.set_faults(sandbox::Vendor::Mono, failing);

    for (provider, account) in [
        ("okra", &info.okra_account_id),
        ("mono", &info.mono_account_id),
    ] {
        let accepted = post_refresh(&gw, BILLING_KEY, &refresh_path(account, provider), None).await;
        assert_eq!(accepted.status, 202, "{}", accepted.json);
        let done = wait_job(&gw, BILLING_KEY, accepted.json["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "failed", "{done}");
        assert!(done["finished_at"].is_string());
        let problem = &done["problem"];
        assert_eq!(problem["status"], 502, "{problem}");
        assert_eq!(problem["code"], "upstream_error");
        assert_eq!(problem["type"], "/problems/upstream_error");
        assert_eq!(problem["provider"], provider);
        assert_eq!(problem["upstream_status"], 500);
    }
}

/// The body of a delivery, with its `account_id` replaced.
fn with_account(body: &[u8], account: &str) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(body).unwrap();
    value["account_id"] = Value::String(account.to_owned());
    serde_json::to_vec(&value).unwrap()
}

#[tokio::test]
async fn webhook_deliveries_without_the_token_for_another_account_or_garbage_change_nothing() {
    // The vendor's callback goes to `intercept` (answering 200), so the test holds the genuine
    // delivery and its URL, and plays the vendor itself.
    let intercept = receiver(0).await;
    let gw = spawn(&config_with_public_url(&intercept.base, "")).await;
    let accounts = gw.accounts_with(1);
    let (account, stranger) = (&accounts[0].mono_account_id, &accounts[1].mono_account_id);
    let (before, _) = read_account(&gw, account, "mono").await;

    let accepted = post_refresh(&gw, BILLING_KEY, &refresh_path(account, "mono"), None).await;
    let id = accepted.json["id"].as_str().unwrap().to_owned();
    let genuine = intercept.wait_for(1).await.remove(0);
    let (path, query) = genuine.path_and_query.split_once('?').unwrap();
    assert_eq!(path, "/v1/webhooks/mono");
    let query: std::collections::HashMap<&str, &str> = query
        .split('&')
        .map(|pair| pair.split_once('=').unwrap())
        .collect();
    assert_eq!(query["job"], id);
    let token = query["token"].to_owned();
    assert_eq!(token.len(), 64);

    let deliver = |path_and_query: String, body: Vec<u8>| {
        let req = gw
            .http
            .post(format!("{}{path_and_query}", gw.base))
            .header("content-type", "application/json")
            .body(body);
        gw.send(req)
    };
    let wrong_token = "0".repeat(64);
    let refused = [
        // No token, a wrong token, an empty one: 401, whatever the body.
        (
            format!("/v1/webhooks/mono?job={id}"),
            genuine.body.clone(),
            401,
            "webhook_unauthorized",
        ),
        (
            format!("/v1/webhooks/mono?job={id}&token={wrong_token}"),
            genuine.body.clone(),
            401,
            "webhook_unauthorized",
        ),
        (
            format!("/v1/webhooks/mono?job={id}&token="),
            genuine.body.clone(),
            401,
            "webhook_unauthorized",
        ),
        // A job that does not exist, or not at this provider.
        (
            format!("/v1/webhooks/mono?job=job_{}&token={token}", "1".repeat(32)),
            genuine.body.clone(),
            404,
            "not_found",
        ),
        (
            format!("/v1/webhooks/okra?job={id}&token={token}"),
            genuine.body.clone(),
            404,
            "not_found",
        ),
        // The right token, but garbage or another account's data.
        (
            format!("/v1/webhooks/mono?job={id}&token={token}"),
            b"{\"account_id\": tru".to_vec(),
            400,
            "invalid_delivery",
        ),
        (
            format!("/v1/webhooks/mono?job={id}&token={token}"),
            b"{}".to_vec(),
            400,
            "invalid_delivery",
        ),
        (
            format!("/v1/webhooks/mono?job={id}&token={token}"),
            b"\x00\xff\xfe".to_vec(),
            400,
            "invalid_delivery",
        ),
        (
            format!("/v1/webhooks/mono?job={id}&token={token}"),
            with_account(&genuine.body, stranger),
            422,
            "delivery_account_mismatch",
        ),
    ];
    for (path, body, status, code) in refused {
        let reply = deliver(path.clone(), body).await;
        assert_eq!(reply.status, status, "{path}: {}", reply.json);
        assert_eq!(reply.json["code"], code, "{path}");
        // Nothing changed: the job still waits, the cached snapshot is still served.
        assert_eq!(job_status(&gw, &id).await, "running");
        assert_eq!(
            read_account(&gw, account, "mono").await,
            (before, "hit".into())
        );
    }

    // The genuine delivery completes the job; a replay finds nothing waiting.
    let accepted = deliver(genuine.path_and_query.clone(), genuine.body.clone()).await;
    assert_eq!(accepted.status, 204, "{}", accepted.json);
    let done = wait_job(&gw, BILLING_KEY, &id).await;
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["transactions_delivered"], before + NEW_PER_REFRESH);
    assert_eq!(
        read_account(&gw, account, "mono").await,
        (before + NEW_PER_REFRESH, "miss".into())
    );
    let replay = deliver(genuine.path_and_query.clone(), genuine.body.clone()).await;
    assert_eq!(replay.status, 409, "{}", replay.json);
    assert_eq!(replay.json["code"], "job_not_awaiting_delivery");
    // A wrong token is still a 401 on a finished job (nothing about it is revealed).
    let late = deliver(
        format!("/v1/webhooks/mono?job={id}&token={wrong_token}"),
        genuine.body,
    )
    .await;
    assert_eq!(late.status, 401);
}

#[tokio::test]
async fn a_webhook_refresh_without_a_delivery_fails_at_its_deadline() {
    let black_hole = receiver(0).await;
    let toml = config_with_public_url(&black_hole.base, "").replacen(
        "kind = \"mono\"\nbase_url = \"sandbox\"\n",
        "kind = \"mono\"\nbase_url = \"sandbox\"\nrefresh_deadline_ms = 400\n",
        1,
    );
    assert!(toml.contains("refresh_deadline_ms = 400"));
    let gw = spawn(&toml).await;
    let account = gw.accounts_with(1).remove(0).mono_account_id;

    let accepted = post_refresh(&gw, BILLING_KEY, &refresh_path(&account, "mono"), None).await;
    let done = wait_job(&gw, BILLING_KEY, accepted.json["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["problem"]["code"], "refresh_timeout");
    assert_eq!(done["problem"]["status"], 504);
    assert_eq!(black_hole.count(), 1, "the vendor did deliver, elsewhere");
}

fn hmac_b64(key: &[u8], signed: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(signed);
    BASE64.encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn client_webhooks_are_signed_and_retried_with_the_same_id() {
    let hooks = receiver(1).await;
    // A Standard Webhooks secret (`whsec_` + base64 key) in a file only this test uses.
    let key: [u8; 32] = Sha256::digest(format!("{:?}", Instant::now())).into();
    let secret_file = std::env::temp_dir().join(format!(
        "gateway-e2e-webhook-secret-{}-{}",
        std::process::id(),
        hex::encode(&key[..6])
    ));
    std::fs::write(&secret_file, format!("whsec_{}\n", BASE64.encode(key))).unwrap();
    let hooked_key = "hooked-key-e2e";
    let extra = format!(
        "\n[clients.hooked]\napi_key_sha256 = \"{}\"\nwebhook_url = \"{}/hooks?tenant=7\"\nwebhook_secret_file = \"{}\"\n",
        hex::encode(Sha256::digest(hooked_key.as_bytes())),
        hooks.base,
        secret_file.display()
    );
    let gw = spawn(&config(&extra)).await;
    std::fs::remove_file(&secret_file).unwrap();
    let account = gw.accounts_with(1).remove(0).okra_account_id;

    // A client without a webhook starts the refresh; the hooked client joins it.
    let plain = post_refresh(&gw, BILLING_KEY, &refresh_path(&account, "okra"), None).await;
    let accepted = post_refresh(&gw, hooked_key, &refresh_path(&account, "okra"), None).await;
    assert_eq!((plain.status, accepted.status), (202, 202));
    let id = accepted.json["id"].as_str().unwrap();
    let done = wait_job(&gw, hooked_key, id).await;
    assert_eq!(done["status"], "succeeded");

    // The first attempt is answered 500; the retry carries the same id and body.
    let seen = hooks.wait_for(2).await;
    let (first, retry) = (&seen[0], &seen[1]);
    assert_eq!(first.path_and_query, "/hooks?tenant=7");
    assert_eq!(first.header("webhook-id"), retry.header("webhook-id"));
    assert!(first.header("webhook-id").starts_with("msg_"));
    assert_eq!(first.body, retry.body);
    assert_eq!(first.header("content-type"), "application/json");
    for attempt in [first, retry] {
        let id = attempt.header("webhook-id");
        let timestamp = attempt.header("webhook-timestamp");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(now.abs_diff(timestamp.parse().unwrap()) < 60, "{timestamp}");
        let mut signed = format!("{id}.{timestamp}.").into_bytes();
        signed.extend_from_slice(&attempt.body);
        assert_eq!(
            attempt.header("webhook-signature"),
            format!("v1,{}", hmac_b64(&key, &signed)),
            "the signature verifies with an independent HMAC"
        );
    }
    let event: Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(event["type"], "refresh.succeeded");
    assert!(event["timestamp"].is_string());
    assert_eq!(event["data"]["id"], id);
    assert_eq!(event["data"]["status"], "succeeded");
    assert_eq!(event["data"]["account_id"], account.as_str());

    // Delivered on the second attempt: nothing more comes, and nothing for the other client.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hooks.count(), 2);
}

/// Sends `path` a POST whose body of 1,000 announced bytes trickles in at a byte per 100 ms;
/// the server's answer (read until it closes the connection, at most 10 s) and how long it
/// took.
async fn trickle_upload(addr: std::net::SocketAddr, path: String) -> (String, Duration) {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut socket = std::net::TcpStream::connect(addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n"
        );
        socket.write_all(head.as_bytes()).unwrap();
        let started = Instant::now();
        let mut writer = socket.try_clone().unwrap();
        std::thread::spawn(move || {
            // The slow client: it stops when the server has closed the connection.
            while writer.write_all(b" ").is_ok() {
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let mut answer = Vec::new();
        let _ = socket.read_to_end(&mut answer);
        (String::from_utf8_lossy(&answer).into_owned(), started.elapsed())
    })
    .await
    .unwrap()
}

/// Defect: the unauthenticated webhook route kept slow uploads open. A body that does not
/// arrive within `jobs.delivery_read_timeout_ms` is answered 408 and the connection closed,
/// whether the request's token is missing (the body is drained to be refused) or valid.
#[tokio::test]
async fn a_slow_delivery_upload_is_answered_408_and_closed_at_the_read_deadline() {
    let intercept = receiver(0).await;
    let gw = spawn(&config_with_public_url(
        &intercept.base,
        "delivery_read_timeout_ms = 300\n",
    ))
    .await;
    let account = gw.accounts_with(1).remove(0).mono_account_id;
    let accepted = post_refresh(&gw, BILLING_KEY, &refresh_path(&account, "mono"), None).await;
    let id = accepted.json["id"].as_str().unwrap().to_owned();
    let genuine = intercept.wait_for(1).await.remove(0);
    let (_, query) = genuine.path_and_query.split_once('?').unwrap();
    for path in [
        format!("/v1/webhooks/mono?job={id}"),
        format!("/v1/webhooks/mono?{query}"),
    ] {
        let (answer, took) = trickle_upload(gw.addr, path.clone()).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(answer.contains("application/problem+json"), "{answer}");
        // Closed by the server (read_to_end returned) well before the client's 10 s.
        assert!(took < Duration::from_secs(5), "{path}: open for {took:?}");
    }
    // The job is still waiting for its genuine delivery.
    assert_eq!(job_status(&gw, &id).await, "running");
}
