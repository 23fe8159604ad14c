//! Several replicas sharing one Redis behave as one gateway: one provider quota, one client
//! quota, one cursor key; and with Redis gone, each replica spends only its share.
//!
//! The replicas run in this process (each its own `Application`: its own caches, lanes and
//! limiters), share a standalone sandbox on a free port, and a real Redis (see
//! `e2e::replicas`); each test has its own key prefix.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use e2e::replicas::{redis_url, replica_toml, spawn_replica, standalone_sandbox, unique_prefix};
use e2e::{BILLING_KEY, Reply, TestGateway};
use futures_util::future::join_all;
use sandbox::Vendor;

fn customer_day_paths(sandbox: &sandbox::Sandbox, n: usize) -> Vec<String> {
    let customers = sandbox.directory().customers;
    let mut paths = Vec::new();
    for customer in customers
        .iter()
        .filter(|c| c.accounts.iter().any(|a| a.transaction_count > 0))
    {
        for day in 1..=28 {
            paths.push(format!(
                "/v1/customers/{}/transactions?from=2026-10-{day:02}&to=2026-10-{day:02}&limit=5",
                customer.okra_customer_id
            ));
            if paths.len() == n {
                return paths;
            }
        }
    }
    paths
}

async fn replicas(n: usize, sandbox: &sandbox::Sandbox, toml: &str) -> Vec<TestGateway> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(spawn_replica(toml, sandbox).await);
    }
    out
}

/// Provider settings: 6 requests a minute, all 6 at once, a short wait in line.
const OKRA_6_A_MINUTE: &str = "requests_per_minute = 6\nburst = 6\nqueue_timeout_ms = 300";

/// GETs every path at once, path `i` on replica `i % replicas`.
async fn spread(gws: &[TestGateway], paths: &[String]) -> Vec<Reply> {
    join_all(
        paths
            .iter()
            .enumerate()
            .map(|(i, path)| gws[i % gws.len()].get(path)),
    )
    .await
}

fn assert_held_back(replies: &[Reply]) {
    for reply in replies.iter().filter(|r| r.status != 200) {
        assert_eq!(reply.status, 503, "{}", reply.json);
        assert_eq!(reply.json["code"], "provider_busy", "{}", reply.json);
    }
}

#[tokio::test]
async fn three_replicas_together_never_push_a_provider_past_its_quota() {
    let sandbox = standalone_sandbox().await;
    // The vendor enforces 6 a minute itself: one request too many would come back as a 429.
    sandbox.set_quota(Vendor::Okra, Some(6));
    let (url, prefix) = (redis_url(), unique_prefix("quota"));
    let toml = replica_toml(Some((&url, &prefix)), OKRA_6_A_MINUTE, "");
    let gws = replicas(3, &sandbox, &toml).await;
    // 30 distinct cold listings (one Okra request each), spread over the replicas at once.
    let paths = customer_day_paths(&sandbox, 30);
    let replies = spread(&gws, &paths).await;

    let calls = sandbox.stats().total(Vendor::Okra);
    assert_eq!(
        calls, 6,
        "the replicas together sent {calls} requests in under a minute"
    );
    let served = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(served, 6, "each request the quota allowed served a listing");
    assert_held_back(&replies);
}

#[tokio::test]
async fn the_same_replicas_without_redis_each_spend_the_whole_quota() {
    // The control for the test above: what sharing prevents.
    let sandbox = standalone_sandbox().await;
    let toml = replica_toml(None, OKRA_6_A_MINUTE, "");
    let gws = replicas(3, &sandbox, &toml).await;
    let paths = customer_day_paths(&sandbox, 30);
    join_all(
        paths
            .iter()
            .enumerate()
            .map(|(i, path)| gws[i % 3].get(path)),
    )
    .await;
    assert_eq!(sandbox.stats().total(Vendor::Okra), 18);
}

#[tokio::test]
async fn a_clients_quota_is_one_quota_across_replicas() {
    let sandbox = standalone_sandbox().await;
    let (url, prefix) = (redis_url(), unique_prefix("client"));
    // One request per 10 s sustained, three at once.
    let toml = replica_toml(
        Some((&url, &prefix)),
        "",
        "\n[rate_limits]\nrequests_per_minute = 6\nburst = 3\n",
    );
    let gws = replicas(3, &sandbox, &toml).await;
    let path = "/v1/providers";
    let mut remaining = Vec::new();
    for gw in &gws {
        let reply = gw.get(path).await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        remaining.push(reply.header("ratelimit").unwrap_or_default().to_owned());
    }
    assert_eq!(
        remaining,
        [
            "\"default\";r=2;t=10",
            "\"default\";r=1;t=20",
            "\"default\";r=0;t=30"
        ]
    );
    // The burst is spent on three replicas: the fourth request is refused wherever it lands.
    let refused = gws[0].get(path).await;
    assert_eq!(refused.status, 429, "{}", refused.json);
    let wait: u64 = refused
        .header("retry-after")
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    assert!((9..=10).contains(&wait), "Retry-After {wait}");
    // Another client's quota is its own.
    let ledger = gws[1].get_as(Some(e2e::LEDGER_KEY), path).await;
    assert_eq!(ledger.status, 200);
    assert_eq!(ledger.header("ratelimit"), Some("\"default\";r=2;t=10"));
}

fn account_with(sandbox: &sandbox::Sandbox, min: u64) -> sandbox::AccountInfo {
    sandbox
        .directory()
        .customers
        .into_iter()
        .flat_map(|c| c.accounts)
        .find(|a| a.transaction_count >= min)
        .unwrap_or_else(|| panic!("an account with {min} transactions"))
}

fn ids(items: &[serde_json::Value]) -> Vec<String> {
    items
        .iter()
        .map(|t| t["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_cursor_walk_hopping_between_replicas_sees_no_duplicate_and_no_gap() {
    let sandbox = standalone_sandbox().await;
    let (url, prefix) = (redis_url(), unique_prefix("walk"));
    let toml = replica_toml(Some((&url, &prefix)), "", "");
    let gws = replicas(3, &sandbox, &toml).await;
    let account = sandbox
        .directory()
        .customers
        .into_iter()
        .flat_map(|c| c.accounts)
        .find(|a| (45..=100).contains(&a.transaction_count))
        .expect("an account of 45 to 100 transactions");
    let base = format!("/v1/accounts/{}/transactions", account.okra_account_id);
    let everything = gws[0].get(&format!("{base}?limit=100")).await;
    assert_eq!(everything.status, 200, "{}", everything.json);
    let expected = ids(everything.json["data"].as_array().map_or(&[][..], |v| v));
    assert_eq!(expected.len() as u64, account.transaction_count);

    // Page by page, each on the next replica.
    let mut seen = Vec::new();
    let mut url = format!("{base}?limit=7");
    for page in 0.. {
        let reply = gws[page % 3].get(&url).await;
        assert_eq!(
            reply.status,
            200,
            "page {page} on replica {}: {}",
            page % 3,
            reply.json
        );
        seen.extend(ids(reply.json["data"].as_array().map_or(&[][..], |v| v)));
        match reply.json["pagination"]["next_cursor"].as_str() {
            Some(cursor) => url = format!("{base}?limit=7&cursor={cursor}"),
            None => break,
        }
    }
    assert!(
        seen == expected,
        "the walk saw {} items, {} expected",
        seen.len(),
        expected.len()
    );
    // One replica fetched the account; the others read its snapshot from Redis.
    assert_eq!(sandbox.stats().total(Vendor::Okra), 1);
}

/// First page fast across replicas: one replica answers the first page before its snapshot is
/// built; the walk's next pages go to the other replica, whose cursor reads wait (through the
/// shared tier) for the snapshot the filling replica stores. No duplicate, no gap, every
/// provider page read once.
#[tokio::test]
async fn a_first_page_answered_early_is_walked_on_another_replica() {
    let sandbox = standalone_sandbox().await;
    let account = sandbox
        .directory()
        .customers
        .into_iter()
        .flat_map(|c| c.accounts)
        .find(|a| (200..=400).contains(&a.transaction_count))
        .expect("an account of 200 to 400 transactions");
    let (url, prefix) = (redis_url(), unique_prefix("early"));
    let toml = replica_toml(
        Some((&url, &prefix)),
        "page_size = 10\nfetch_concurrency = 1\n",
        "",
    );
    let gws = replicas(2, &sandbox, &toml).await;
    sandbox.set_faults(
        Vendor::Okra,
        sandbox::Faults {
            latency_ms: 20,
            ..Default::default()
        },
    );
    sandbox.reset_stats();
    let pages = account.transaction_count.div_ceil(10);
    let base = format!(
        "/v1/accounts/{}/transactions?limit=10",
        account.okra_account_id
    );
    let first = gws[0].get(&base).await;
    assert_eq!(first.status, 200, "{}", first.json);
    assert_eq!(first.header("x-cache"), Some("miss"));
    let asked = sandbox.stats().total(Vendor::Okra);
    assert!(
        asked < pages / 2,
        "the first page waited for {asked} of {pages} pages"
    );

    let mut seen = ids(first.json["data"].as_array().map_or(&[][..], |v| v));
    let mut next = first.json["pagination"]["next_cursor"]
        .as_str()
        .map(str::to_owned);
    let mut page = 1;
    while let Some(cursor) = next {
        let reply = gws[page % 2].get(&format!("{base}&cursor={cursor}")).await;
        assert_eq!(reply.status, 200, "page {page}: {}", reply.json);
        seen.extend(ids(reply.json["data"].as_array().map_or(&[][..], |v| v)));
        next = reply.json["pagination"]["next_cursor"]
            .as_str()
            .map(str::to_owned);
        page += 1;
    }
    let unique: std::collections::HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no duplicate");
    assert_eq!(seen.len() as u64, account.transaction_count, "no gap");
    assert_eq!(sandbox.stats().total(Vendor::Okra), pages);
}

#[tokio::test]
async fn identical_cold_requests_spread_over_three_replicas_fetch_each_provider_page_once() {
    let sandbox = standalone_sandbox().await;
    let account = account_with(&sandbox, 201);
    let path = format!(
        "/v1/accounts/{}/transactions?limit=5",
        account.okra_account_id
    );
    let (url, prefix) = (redis_url(), unique_prefix("flight"));
    let toml = replica_toml(Some((&url, &prefix)), "", "");
    let gws = replicas(3, &sandbox, &toml).await;
    let replies: Vec<Reply> = join_all((0..300).map(|i| gws[i % 3].get(&path))).await;
    for gw in &gws {
        gw.settle().await;
    }
    assert!(replies.iter().all(|r| r.status == 200));
    let first = &replies[0].json["data"];
    assert!(replies.iter().all(|r| &r.json["data"] == first));
    // Okra's largest page is 100 transactions: each page was asked for once, by one replica.
    let pages = account.transaction_count.div_ceil(100);
    assert_eq!(sandbox.stats().total(Vendor::Okra), pages);
}

#[tokio::test]
async fn a_refresh_on_one_replica_drops_every_replicas_copy_of_the_account() {
    let sandbox = standalone_sandbox().await;
    let (url, prefix) = (redis_url(), unique_prefix("invalidate"));
    let toml = replica_toml(Some((&url, &prefix)), "", "");
    let gws = replicas(2, &sandbox, &toml).await;
    let account = account_with(&sandbox, 1).okra_account_id;
    let path = format!("/v1/accounts/{account}/transactions?limit=1");
    let before = gws[1].get(&path).await;
    assert_eq!(before.status, 200);
    gws[1].settle().await;
    let total = before.json["pagination"]["total"]
        .as_u64()
        .unwrap_or_default();
    assert_eq!(gws[1].get(&path).await.header("x-cache"), Some("hit"));

    let accepted = gws[0]
        .send(
            gws[0]
                .http
                .post(format!(
                    "{}/v1/accounts/{account}/transactions/refresh",
                    gws[0].base
                ))
                .bearer_auth(BILLING_KEY),
        )
        .await;
    assert_eq!(accepted.status, 202, "{}", accepted.json);
    let job = accepted.json["id"].as_str().unwrap_or_default().to_owned();
    let mut status = String::new();
    for _ in 0..200 {
        let reply = gws[0].get(&format!("/v1/jobs/{job}")).await;
        status = reply.json["status"].as_str().unwrap_or_default().to_owned();
        if status == "succeeded" || status == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "succeeded");
    // The other replica learns of it over Redis pub/sub: its next reads are fresh.
    let mut after = gws[1].get(&path).await;
    for _ in 0..40 {
        if after.header("x-cache") != Some("hit") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        after = gws[1].get(&path).await;
    }
    assert_ne!(
        after.header("x-cache"),
        Some("hit"),
        "the old copy is still served"
    );
    assert!(
        after.json["pagination"]["total"]
            .as_u64()
            .unwrap_or_default()
            > total
    );
}

struct PrivateRedis {
    child: Child,
    port: u16,
}

impl PrivateRedis {
    fn start(port: u16) -> PrivateRedis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("this test needs redis-server on the PATH: {e}"));
        let mut redis = PrivateRedis { child, port };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return redis;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        redis.stop();
        panic!("redis-server did not start on port {port}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

#[tokio::test]
async fn with_redis_gone_each_replica_spends_only_its_share_and_sharing_resumes_when_it_returns() {
    let sandbox = standalone_sandbox().await;
    sandbox.set_quota(Vendor::Okra, Some(6));
    let mut redis = PrivateRedis::start(free_port());
    let toml = replica_toml(
        Some((&redis.url(), "down")),
        OKRA_6_A_MINUTE,
        "replicas = 3\ntimeout_ms = 200\nretry_after_ms = 300\n",
    );
    let gws = replicas(3, &sandbox, &toml).await;
    let paths = customer_day_paths(&sandbox, 60);

    // Shared mode: a first wave takes 3 of the 6 cells.
    let first: Vec<Reply> = join_all((0..3).map(|i| gws[i].get(&paths[i]))).await;
    assert!(first.iter().all(|r| r.status == 200));
    assert_eq!(sandbox.stats().total(Vendor::Okra), 3);

    // Redis is stopped mid-load: reads go on, each replica within 6 / 3 = 2 of its own.
    redis.stop();
    let second: Vec<Reply> = join_all((3..33).map(|i| gws[i % 3].get(&paths[i]))).await;
    assert_held_back(&second);
    let calls = sandbox.stats().total(Vendor::Okra);
    assert!(
        calls <= 6,
        "{calls} requests in under a minute: more than the quota"
    );
    assert_eq!(
        second.iter().filter(|r| r.status == 200).count() as u64,
        calls - 3
    );
    for gw in &gws {
        assert!(gw.state.cluster.as_ref().is_some_and(|c| !c.is_up()));
    }

    // Redis returns (empty, as after a restart): the next calls are shared again.
    let _redis = PrivateRedis::start(redis.port);
    let mut resumed = false;
    for path in &paths[40..60] {
        // Each read tries Redis again once the retry window has passed (the connection
        // manager reconnects meanwhile); no read fails for it.
        let reply = gws[0].get(path).await;
        assert!(reply.status == 200 || reply.status == 503, "{}", reply.json);
        if gws[0].state.cluster.as_ref().is_some_and(|c| c.is_up()) {
            resumed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        resumed,
        "shared mode did not resume within 5 s of Redis returning"
    );
}

const OKRA_REFRESH: &str = "POST /v2/transactions/refresh";

fn okra_refreshes(sandbox: &sandbox::Sandbox) -> u64 {
    sandbox
        .stats()
        .okra
        .get(OKRA_REFRESH)
        .copied()
        .unwrap_or_default()
}

async fn post_refresh(gw_base: &str, http: &reqwest::Client, account: &str, key: &str) -> Reply {
    let res = http
        .post(format!(
            "{gw_base}/v1/accounts/{account}/transactions/refresh"
        ))
        .bearer_auth(BILLING_KEY)
        .header("Idempotency-Key", key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("refresh: {e}"));
    reply_of(res).await
}

async fn reply_of(res: reqwest::Response) -> Reply {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.unwrap_or_default();
    Reply {
        status,
        headers,
        json: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    }
}

async fn job_on(gw_base: &str, http: &reqwest::Client, id: &str) -> Reply {
    let res = http
        .get(format!("{gw_base}/v1/jobs/{id}"))
        .bearer_auth(BILLING_KEY)
        .send()
        .await
        .unwrap_or_else(|e| panic!("job: {e}"));
    reply_of(res).await
}

/// Polls the job on `gw_base` until it is final (at most `within`).
async fn final_job(
    gw_base: &str,
    http: &reqwest::Client,
    id: &str,
    within: Duration,
) -> serde_json::Value {
    let started = std::time::Instant::now();
    loop {
        let reply = job_on(gw_base, http, id).await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        if matches!(reply.json["status"].as_str(), Some("succeeded" | "failed")) {
            return reply.json;
        }
        assert!(
            started.elapsed() < within,
            "job {id} not final: {}",
            reply.json
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn quick_refresh_sandbox() -> sandbox::SandboxConfig {
    sandbox::SandboxConfig {
        refresh_duration: Duration::from_millis(300),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_job_and_its_idempotency_key_are_the_same_on_every_replica() {
    let sandbox = e2e::replicas::standalone_sandbox_with(quick_refresh_sandbox()).await;
    let (url, prefix) = (redis_url(), unique_prefix("jobs"));
    let gws = replicas(2, &sandbox, &replica_toml(Some((&url, &prefix)), "", "")).await;
    let account = account_with(&sandbox, 1).okra_account_id;
    let http = reqwest::Client::new();

    let first = post_refresh(&gws[0].base, &http, &account, "key-1").await;
    assert_eq!(first.status, 202, "{}", first.json);
    let id = first.json["id"].as_str().unwrap_or_default().to_owned();
    // The same key on the other replica: the same job, no second refresh.
    let again = post_refresh(&gws[1].base, &http, &account, "key-1").await;
    assert_eq!(again.json["id"], id.as_str(), "{}", again.json);
    // Read on the other replica, to its end.
    let done = final_job(&gws[1].base, &http, &id, Duration::from_secs(10)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let replay = post_refresh(&gws[1].base, &http, &account, "key-1").await;
    assert_eq!(replay.json["id"], id.as_str());
    assert_eq!(replay.json["status"], "succeeded");
    assert_eq!(okra_refreshes(&sandbox), 1);
    // Another client sees nothing of it, on any replica.
    let foreign = gws[1]
        .get_as(Some(e2e::LEDGER_KEY), &format!("/v1/jobs/{id}"))
        .await;
    assert_eq!(foreign.status, 404);
}

#[tokio::test]
async fn with_redis_down_a_refresh_is_refused_clearly_and_reads_go_on() {
    let sandbox = standalone_sandbox().await;
    let mut redis = PrivateRedis::start(free_port());
    let toml = replica_toml(
        Some((&redis.url(), "refresh-down")),
        "",
        "timeout_ms = 200\n",
    );
    let gw = spawn_replica(&toml, &sandbox).await;
    redis.stop();
    let account = account_with(&sandbox, 1).okra_account_id;
    let refused = post_refresh(&gw.base, &gw.http, &account, "k").await;
    assert_eq!(refused.status, 503, "{}", refused.json);
    assert_eq!(refused.json["code"], "coordination_unavailable");
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(
        okra_refreshes(&sandbox),
        0,
        "no refresh without its job recorded"
    );
    let read = gw
        .get(&format!("/v1/accounts/{account}/transactions?limit=1"))
        .await;
    assert_eq!(read.status, 200, "{}", read.json);
}

/// Counts the notifications a client receives.
async fn notification_counter() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
) {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let data = web::Data::from(seen.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let server = HttpServer::new(move || {
        App::new().app_data(data.clone()).default_service(web::to(
            |body: web::Bytes, seen: web::Data<std::sync::Mutex<Vec<serde_json::Value>>>| async move {
                let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                seen.lock().unwrap_or_else(|e| e.into_inner()).push(json);
                HttpResponse::Ok().finish()
            },
        ))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap_or_else(|e| panic!("{e}"))
    .run();
    tokio::spawn(server);
    (format!("http://{addr}/hooks"), seen)
}

#[tokio::test]
async fn a_refresh_whose_replica_is_killed_completes_on_another_and_notifies_once() {
    // Okra refreshes run 3 s at the sandbox: long enough to kill the replica driving one.
    let sandbox = e2e::replicas::standalone_sandbox_with(sandbox::SandboxConfig {
        refresh_duration: Duration::from_secs(3),
        ..Default::default()
    })
    .await;
    let (hook_url, notifications) = notification_counter().await;
    let dir = e2e::replicas::scratch_dir("takeover");
    let secret = dir.join("hook-secret");
    std::fs::write(
        &secret,
        "whsec_dGVzdC10YWtlb3Zlci1zZWNyZXQtMDEyMzQ1Njc4OWFi",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (url, prefix) = (redis_url(), unique_prefix("takeover"));
    let toml = e2e::replicas::process_toml(
        &sandbox,
        &url,
        &prefix,
        &format!(
            "webhook_url = \"{hook_url}\"\nwebhook_secret_file = \"{}\"\n",
            secret.display()
        ),
        "\n[jobs]\nlease_ms = 1000\nnotify_initial_backoff_ms = 50\n",
    );
    let env = e2e::replicas::sandbox_env(&sandbox);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut a = e2e::replicas::spawn_process(&dir, "a", &toml, &env);
    let b = e2e::replicas::spawn_process(&dir, "b", &toml, &env);
    let http = reqwest::Client::new();
    let account = account_with(&sandbox, 1).okra_account_id;

    let accepted = post_refresh(&a.base, &http, &account, "kill-me").await;
    assert_eq!(accepted.status, 202, "{}", accepted.json);
    let id = accepted.json["id"].as_str().unwrap_or_default().to_owned();
    // Wait until A has asked Okra, then kill it mid-refresh.
    for _ in 0..100 {
        if okra_refreshes(&sandbox) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(okra_refreshes(&sandbox), 1);
    a.kill();

    // B sees the job, takes the run over when A's lease runs out, and finishes it.
    let done = final_job(&b.base, &http, &id, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    // The same key after the crash: the same job, no further refresh.
    let replay = post_refresh(&b.base, &http, &account, "kill-me").await;
    assert_eq!(replay.json["id"], id.as_str());
    let refreshes = okra_refreshes(&sandbox);
    assert!(
        refreshes <= 2,
        "{refreshes} Okra refreshes: the dead replica's, and at most one by the replica that took over"
    );
    // One notification, for this job.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = notifications
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["type"], "refresh.succeeded");
    assert_eq!(seen[0]["data"]["id"], id.as_str());
    drop(b);
}

#[tokio::test]
async fn a_circuit_opened_by_one_replica_holds_every_replica_back() {
    let sandbox = standalone_sandbox().await;
    let (url, prefix) = (redis_url(), unique_prefix("breaker"));
    let toml = replica_toml(
        Some((&url, &prefix)),
        "max_retries = 0\nbreaker_failure_threshold = 2\nbreaker_open_ms = 60000",
        "",
    );
    let gws = replicas(2, &sandbox, &toml).await;
    let paths = customer_day_paths(&sandbox, 4);
    sandbox.set_faults(
        Vendor::Okra,
        sandbox::Faults {
            error_rate: 1.0,
            error_status: 503,
            ..Default::default()
        },
    );
    // Two failures on replica A open its breaker.
    for path in &paths[..2] {
        let reply = gws[0].get(path).await;
        assert_eq!(reply.status, 502, "{}", reply.json);
        assert_eq!(reply.json["code"], "upstream_error", "{}", reply.json);
    }
    let calls = sandbox.stats().total(Vendor::Okra);
    assert_eq!(calls, 2);
    // Replica B has seen no failure, yet holds back too (the open state is shared).
    let mut held = gws[1].get(&paths[2]).await;
    for _ in 0..20 {
        if held.json["code"] == "circuit_open" {
            break;
        }
        // The open state is published just after A's answer: a read may race it once.
        tokio::time::sleep(Duration::from_millis(25)).await;
        held = gws[1].get(&paths[3]).await;
    }
    assert_eq!(held.status, 503, "{}", held.json);
    assert_eq!(held.json["code"], "circuit_open", "{}", held.json);
    assert!(sandbox.stats().total(Vendor::Okra) <= calls + 1);
}

/// A free port whose cluster bus port (port + 10000) is free too.
fn cluster_port() -> u16 {
    for _ in 0..100 {
        let port = free_port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair for a Redis Cluster node");
}

/// Three Redis Cluster masters on free ports, started and joined by the test.
struct RedisCluster {
    nodes: Vec<PrivateRedis>,
    dir: std::path::PathBuf,
}

impl RedisCluster {
    fn start() -> RedisCluster {
        let dir = e2e::replicas::scratch_dir("redis-cluster");
        let mut nodes = Vec::new();
        for i in 0..3 {
            let port = cluster_port();
            let node_dir = dir.join(format!("n{i}"));
            std::fs::create_dir_all(&node_dir).unwrap_or_else(|e| panic!("{e}"));
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                ])
                .args(["--dir", &node_dir.to_string_lossy()])
                .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("this test needs redis-server on the PATH: {e}"));
            nodes.push(PrivateRedis { child, port });
        }
        for node in &nodes {
            let mut up = false;
            for _ in 0..400 {
                if std::net::TcpStream::connect(("127.0.0.1", node.port)).is_ok() {
                    up = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(
                up,
                "cluster node on {} did not start within 20 s",
                node.port
            );
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap_or_else(|e| panic!("this test needs redis-cli on the PATH: {e}"));
        assert!(
            created.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        for _ in 0..200 {
            let info = Command::new("redis-cli")
                .args(["-p", &nodes[0].port.to_string(), "cluster", "info"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            if info.contains("cluster_state:ok") {
                return RedisCluster { nodes, dir };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the Redis Cluster did not become ready");
    }

    fn seed_url(&self) -> String {
        self.nodes[0].url()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn on_a_redis_cluster_replicas_share_quota_snapshots_cursors_and_jobs() {
    let redis = RedisCluster::start();
    let sandbox = e2e::replicas::standalone_sandbox_with(quick_refresh_sandbox()).await;
    sandbox.set_quota(Vendor::Okra, Some(6));
    let toml = replica_toml(
        Some((&redis.seed_url(), "cl")),
        OKRA_6_A_MINUTE,
        "cluster = true\ntimeout_ms = 1000\n",
    );
    let gws = replicas(3, &sandbox, &toml).await;

    // One quota for all replicas.
    let paths = customer_day_paths(&sandbox, 12);
    let replies = spread(&gws, &paths).await;
    assert_eq!(sandbox.stats().total(Vendor::Okra), 6);
    assert_held_back(&replies);
    for gw in &gws {
        assert!(gw.state.cluster.as_ref().is_some_and(|c| c.is_up()));
    }

    // A cursor walk across replicas (its one fetch waits for the quota's next minute, so lift
    // the quota first: a new set of replicas without one, same cluster, new prefix).
    let toml = replica_toml(
        Some((&redis.seed_url(), "cl2")),
        "",
        "cluster = true\ntimeout_ms = 1000\n",
    );
    let gws = replicas(2, &sandbox, &toml).await;
    sandbox.set_quota(Vendor::Okra, None);
    let account = sandbox
        .directory()
        .customers
        .into_iter()
        .flat_map(|c| c.accounts)
        .find(|a| (20..=100).contains(&a.transaction_count))
        .expect("an account of 20 to 100 transactions");
    let base = format!("/v1/accounts/{}/transactions", account.okra_account_id);
    let mut url = format!("{base}?limit=9");
    let mut seen = 0;
    for page in 0.. {
        let reply = gws[page % 2].get(&url).await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        seen += reply.json["data"].as_array().map_or(0, Vec::len);
        match reply.json["pagination"]["next_cursor"].as_str() {
            Some(cursor) => url = format!("{base}?limit=9&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen as u64, account.transaction_count);

    // A job created on one replica is read on the other.
    let http = reqwest::Client::new();
    let accepted = post_refresh(&gws[0].base, &http, &account.okra_account_id, "cl-key").await;
    assert_eq!(accepted.status, 202, "{}", accepted.json);
    let id = accepted.json["id"].as_str().unwrap_or_default().to_owned();
    let done = final_job(&gws[1].base, &http, &id, Duration::from_secs(10)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
}

#[tokio::test]
async fn three_gateway_processes_under_load_keep_one_quota() {
    let sandbox = standalone_sandbox().await;
    // The vendor enforces the same 6 a minute: one request too many comes back as a 429.
    sandbox.set_quota(Vendor::Okra, Some(6));
    let dir = e2e::replicas::scratch_dir("load");
    let (url, prefix) = (redis_url(), unique_prefix("load"));
    // The client's own quota is lifted: this test is about the provider's.
    let lifted = "\n[rate_limits]\nrequests_per_minute = 1000000\nburst = 100000\n";
    let toml = e2e::replicas::process_toml(&sandbox, &url, &prefix, "", lifted)
        .replace(
            "[providers.okra]\nkind = \"okra\"",
            "[providers.okra]\nkind = \"okra\"\nrequests_per_minute = 6\nburst = 2\nqueue_timeout_ms = 200",
        );
    let env = e2e::replicas::sandbox_env(&sandbox);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let processes: Vec<e2e::replicas::Process> = (0..3)
        .map(|i| e2e::replicas::spawn_process(&dir, &format!("r{i}"), &toml, &env))
        .collect();
    let paths = customer_day_paths(&sandbox, 600);
    let http = reqwest::Client::new();
    // 12 clients, each reading new listings on the replicas in turn, for 4 seconds.
    let until = std::time::Instant::now() + Duration::from_secs(4);
    let clients = (0..12usize).map(|client| {
        let (http, processes, paths) = (&http, &processes, &paths);
        async move {
            let mut statuses = Vec::new();
            let mut k = client;
            while std::time::Instant::now() < until {
                let base = &processes[k % 3].base;
                let res = http
                    .get(format!("{base}{}", paths[k % paths.len()]))
                    .bearer_auth(BILLING_KEY)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                let reply = reply_of(res).await;
                let code = match reply.json["code"].as_str() {
                    Some(code) => code.to_owned(),
                    None => reply.header("x-cache").unwrap_or("").to_owned(),
                };
                statuses.push((reply.status, code));
                k += 12;
                if reply.status != 200 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            statuses
        }
    });
    let statuses: Vec<(u16, String)> = join_all(clients).await.into_iter().flatten().collect();
    let calls = sandbox.stats().total(Vendor::Okra);
    assert!(
        calls <= 6,
        "{calls} upstream requests within 4 s, over the quota of 6 a minute"
    );
    assert!(calls >= 2, "the burst was used");
    for (status, code) in &statuses {
        assert!(
            *status == 200 || (*status == 503 && code == "provider_busy"),
            "{status} {code}: only held-back answers, never the vendor's 429"
        );
    }
    // Every upstream request served a listing (a miss); repeats were hits.
    let misses = statuses
        .iter()
        .filter(|(s, c)| *s == 200 && c == "miss")
        .count() as u64;
    assert_eq!(misses, calls);
}

/// `calls=` of one command in `INFO commandstats` of the Redis on `port`.
fn redis_command_calls(port: u16, command: &str) -> u64 {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "info", "commandstats"])
        .output()
        .unwrap_or_else(|e| panic!("this test needs redis-cli on the PATH: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with(&format!("cmdstat_{command}:")))
        .and_then(|l| l.split("calls=").nth(1))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_busy_clients_requests_mostly_stay_off_redis_and_its_quota_still_holds() {
    let sandbox = standalone_sandbox().await;
    let redis = PrivateRedis::start(free_port());
    // 200 at once, then 1 a second: the test's few seconds add a handful at most.
    let toml = replica_toml(
        Some((&redis.url(), "pool")),
        "",
        "replicas = 2\n\n[rate_limits]\nrequests_per_minute = 60\nburst = 200\n",
    );
    let gws = replicas(2, &sandbox, &toml).await;
    let before =
        redis_command_calls(redis.port, "evalsha") + redis_command_calls(redis.port, "eval");
    let started = std::time::Instant::now();
    let mut statuses = Vec::new();
    for round in 0..65 {
        // Four at a time, on both replicas.
        let replies = join_all((0..4).map(|i| gws[(round + i) % 2].get("/v1/providers"))).await;
        statuses.extend(replies.iter().map(|r| r.status));
    }
    let elapsed = started.elapsed().as_secs() + 1;
    let ok = statuses.iter().filter(|s| **s == 200).count() as u64;
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    assert!(ok >= 150, "only {ok} of 260 accepted within a burst of 200");
    assert!(
        ok <= 200 + elapsed,
        "{ok} accepted: more than the burst and its refill"
    );
    let scripts = redis_command_calls(redis.port, "evalsha")
        + redis_command_calls(redis.port, "eval")
        - before;
    assert!(
        scripts < 260 / 3,
        "{scripts} Redis scripts for 260 requests: the pool should keep most of them local"
    );
}
