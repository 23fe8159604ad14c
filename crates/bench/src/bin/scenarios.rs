//! `scenarios [cold-miss|first-page|memory|replicas|saturation|fairness|all]`: the gateway's benchmark scenarios,
//! in-process against the embedded sandbox, printing the figures `docs/performance.md` records.
//!
//! Run it in release mode: `cargo run --release -p bench --bin scenarios -- all`. The Redis
//! scenarios (`cold-miss`'s second half, `replicas`) use `BENCH_REDIS_URL` (default
//! `redis://127.0.0.1:6379`), under a fresh key prefix each run.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement tool: a failure ends it

use std::time::{Duration, Instant};

use bench::{percentiles, resident_kib};
use gateway::{Application, Config};
use sha2::{Digest, Sha256};

const KEY: &str = "bench-key";
/// A second client, for the fairness scenario.
const FLOOD_KEY: &str = "bench-flood-key";

fn config(extra: &str) -> Config {
    config_with("", extra)
}

/// The base configuration with `okra` lines added to `[providers.okra]`, and `extra` after it.
fn config_with(okra: &str, extra: &str) -> Config {
    let hash = hex::encode(Sha256::digest(KEY.as_bytes()));
    let text = format!(
        r#"
[server]
bind = "127.0.0.1:0"
workers = 1
request_timeout_ms = 120000

[clients.bench]
api_key_sha256 = "{hash}"

[providers.okra]
kind = "okra"
base_url = "sandbox"
{okra}

[routing]
default = "okra"

[sandbox]
enabled = true

# Measured with the audit trail on (stdout carries the figures).
[audit]
path = "/dev/null"
{extra}
"#
    );
    Config::from_toml(&text).unwrap()
}

struct Running {
    base: String,
    http: reqwest::Client,
    sandbox: sandbox::Sandbox,
    state: actix_web::web::Data<gateway::state::AppState>,
}

async fn start(extra: &str) -> Running {
    start_with(config(extra)).await
}

async fn start_with(config: Config) -> Running {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let app = Application::build(config).await.unwrap();
    let sandbox = app.sandbox().unwrap().clone();
    let state = app.state();
    let addr = app.spawn();
    Running {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        sandbox,
        state,
    }
}

impl Running {
    /// A listing page: status, `x-cache`, the page's ids and its next cursor.
    async fn walk_page(&self, path: &str) -> (u16, Option<String>, WalkPage) {
        let (status, cache, body) = self.send(KEY, path).await;
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let ids = body["data"]
            .as_array()
            .map(|data| {
                data.iter()
                    .filter_map(|t| t["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let next = body["pagination"]["next_cursor"]
            .as_str()
            .map(str::to_owned);
        (status, cache, WalkPage { ids, next })
    }

    /// GET `path` with `key`: status, `x-cache` and the body.
    async fn send(&self, key: &str, path: &str) -> (u16, Option<String>, actix_web::web::Bytes) {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let cache = res
            .headers()
            .get("x-cache")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (status, cache, res.bytes().await.unwrap())
    }

    async fn get(&self, path: &str) -> (u16, Option<String>, Duration) {
        self.get_as(KEY, path).await
    }

    async fn get_as(&self, key: &str, path: &str) -> (u16, Option<String>, Duration) {
        let started = Instant::now();
        let (status, cache, _) = self.send(key, path).await;
        (status, cache, started.elapsed())
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn redis_url() -> String {
    std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn fresh_prefix(what: &str) -> String {
    format!("bench-{what}-{:x}", rand_u64())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}

/// Figure 2: a cold miss that needs one provider page, against calling the sandbox directly;
/// then the same with `[redis]` configured (the shared tier's lookup, lease and store).
async fn cold_miss() {
    cold_miss_with("").await;
    let redis = format!(
        "\n[redis]\nurl = \"{}\"\nkey_prefix = \"{}\"\n",
        redis_url(),
        fresh_prefix("cold")
    );
    println!("with [redis] ({}):", redis_url());
    cold_miss_with(&redis).await;
}

async fn cold_miss_with(extra: &str) {
    let gw = start(extra).await;
    let directory = gw.sandbox.directory();
    let customer = directory
        .customers
        .iter()
        .max_by_key(|c| c.accounts.iter().map(|a| a.transaction_count).sum::<u64>())
        .unwrap()
        .okra_customer_id
        .clone();
    let secret = directory.okra.secret.clone();
    let end = sandbox::END_DATE;
    let (mut via_gateway, mut direct) = (Vec::new(), Vec::new());
    for day in 0..300i64 {
        let date = (end - time::Duration::days(day)).to_string();
        // Direct: the one provider page the gateway will need.
        let started = Instant::now();
        let res = gw
            .http
            .post(format!("{}/transactions/getByCustomerDate", gw.sandbox.okra_base_url()))
            .bearer_auth(&secret)
            .json(&serde_json::json!({"customer_id": customer, "from": date, "to": date, "page": 1, "limit": 100}))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
        let _ = res.bytes().await.unwrap();
        direct.push(started.elapsed());
        // Through the gateway: a new snapshot key each time (Okra filters this scope by date).
        let (status, cache, took) = gw
            .get(&format!(
                "/v1/customers/{customer}/transactions?from={date}&to={date}&limit=50"
            ))
            .await;
        assert_eq!((status, cache.as_deref()), (200, Some("miss")));
        via_gateway.push(took);
    }
    let (g50, g99) = percentiles(&mut via_gateway);
    let (d50, d99) = percentiles(&mut direct);
    println!(
        "cold-miss: {} requests, one provider page each",
        via_gateway.len()
    );
    println!("  sandbox directly : p50 {}  p99 {}", ms(d50), ms(d99));
    println!("  gateway cold miss: p50 {}  p99 {}", ms(g50), ms(g99));
    println!(
        "  overhead         : p50 {}  p99 {}",
        ms(g50.saturating_sub(d50)),
        ms(g99.saturating_sub(d99))
    );
}

/// Figure 3: a large account from a provider that answers 10 per page with 50 ms latency:
/// time to the first page (answered from the fill's first provider pages, issue 16), for
/// pages of 10 and 50, at `fetch_concurrency` 1, 4 and 8; then the walk of every page by
/// cursor, which must see each transaction exactly once.
async fn first_page() {
    for concurrency in [1usize, 4, 8] {
        for limit in [10u64, 50] {
            let gw = start(&format!(
                r#"
[providers.mono]
kind = "mono"
base_url = "sandbox"
bulk_read = false
page_size = 10
fetch_concurrency = {concurrency}
"#
            ))
            .await;
            let account = gw
                .sandbox
                .directory()
                .accounts()
                .max_by_key(|a| a.transaction_count)
                .unwrap()
                .clone();
            gw.sandbox.set_faults(
                sandbox::Vendor::Mono,
                sandbox::Faults {
                    latency_ms: 50,
                    ..Default::default()
                },
            );
            gw.sandbox.reset_stats();
            let path = format!(
                "/v1/accounts/{}/transactions?provider=mono&limit={limit}",
                account.mono_account_id
            );
            let started = Instant::now();
            let (status, cache, first) = gw.walk_page(&path).await;
            let took = started.elapsed();
            assert_eq!((status, cache.as_deref()), (200, Some("miss")));
            // The rest of the listing, by cursor (it waits for the fill where it must).
            let mut seen: std::collections::HashSet<String> = first.ids.into_iter().collect();
            let mut pages = 1u64;
            let mut next = first.next;
            while let Some(cursor) = next {
                let (status, _, page) = gw.walk_page(&format!("{path}&cursor={cursor}")).await;
                assert_eq!(status, 200, "page {} of the walk", pages + 1);
                for id in page.ids {
                    assert!(seen.insert(id), "a duplicate in the walk");
                }
                pages += 1;
                next = page.next;
            }
            let whole = started.elapsed();
            assert_eq!(
                seen.len() as u64,
                account.transaction_count,
                "a gap in the walk"
            );
            let provider_pages = account.transaction_count.div_ceil(10);
            let calls = gw.sandbox.stats().total(sandbox::Vendor::Mono);
            let rounds_first = 1 + (limit / 10 - 1).div_ceil(concurrency as u64);
            let rounds_all = 1 + (provider_pages - 1).div_ceil(concurrency as u64);
            println!(
                "first-page: {} transactions, {provider_pages} provider pages of 10 at 50 ms, \
                 concurrency {concurrency}, limit {limit}: first page {} ({rounds_first} round \
                 trip(s) = {} ms); walk of {pages} pages done after {} ({rounds_all} rounds = {} ms; \
                 {calls} upstream calls; no duplicate, no gap)",
                account.transaction_count,
                ms(took),
                50 * rounds_first,
                ms(whole),
                50 * rounds_all,
            );
        }
    }
}

/// One listing page's ids and next cursor.
struct WalkPage {
    ids: Vec<String>,
    next: Option<String>,
}

/// Figure 6: upstream calls per 60 s for 1, 2 and 3 replicas sharing one Redis, under the same
/// load: 24 clients reading cold one-page keys as fast as they can, spread over the replicas,
/// against an Okra quota of 30 a minute (which the sandbox enforces too).
async fn replicas() {
    let seconds: u64 = std::env::var("SECONDS_PER_RUN")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    for n in 1..=3usize {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let sandbox = sandbox::start(
            sandbox::SandboxConfig::default(),
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        )
        .await
        .unwrap();
        sandbox.set_quota(sandbox::Vendor::Okra, Some(30));
        let prefix = fresh_prefix("replicas");
        let mut gateways = Vec::new();
        for _ in 0..n {
            let mut config = config(&format!(
                "\n[redis]\nurl = \"{}\"\nkey_prefix = \"{prefix}\"\n",
                redis_url()
            ));
            config.sandbox = None;
            for provider in config.providers.values_mut() {
                provider.outbound.quota = Some(gateway::config::ProviderQuota {
                    requests_per_minute: std::num::NonZeroU32::new(30).unwrap(),
                    burst: std::num::NonZeroU32::new(5).unwrap(),
                });
                provider.upstream = gateway::config::Upstream::Remote {
                    base_url: sandbox.okra_base_url().parse().unwrap(),
                    secret_key: provider_secret(&sandbox),
                    credentials: Default::default(),
                };
            }
            let app = Application::build(config).await.unwrap();
            let addr = app.spawn();
            gateways.push(format!("http://{addr}"));
        }
        let customers: Vec<String> = sandbox
            .directory()
            .customers
            .iter()
            .map(|c| c.okra_customer_id.clone())
            .collect();
        let http = reqwest::Client::new();
        let until = Instant::now() + Duration::from_secs(seconds);
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut tasks = Vec::new();
        for client in 0..24usize {
            let (http, gateways, customers, counter) = (
                http.clone(),
                gateways.clone(),
                customers.clone(),
                counter.clone(),
            );
            tasks.push(tokio::spawn(async move {
                // (served by replica i: misses, other answers), and the vendor's 429s seen
                let mut per_replica = vec![(0u64, 0u64); gateways.len()];
                let mut vendor_429 = 0u64;
                while Instant::now() < until {
                    let k = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let replica = (k as usize + client) % gateways.len();
                    let day = sandbox::END_DATE - time::Duration::days((k % 700) as i64);
                    let customer = &customers[(k / 700) as usize % customers.len()];
                    let res = http
                        .get(format!(
                            "{}/v1/customers/{customer}/transactions?from={day}&to={day}&limit=5",
                            gateways[replica]
                        ))
                        .bearer_auth(KEY)
                        .send()
                        .await
                        .unwrap();
                    let miss = res.status() == 200
                        && res.headers().get("x-cache").and_then(|v| v.to_str().ok())
                            == Some("miss");
                    let body = res.bytes().await.unwrap_or_default();
                    if body.windows(21).any(|w| w == b"upstream_rate_limited") {
                        vendor_429 += 1;
                    }
                    if miss {
                        per_replica[replica].0 += 1;
                    } else {
                        per_replica[replica].1 += 1;
                        // Held back (provider_busy): do not spin.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                (per_replica, vendor_429)
            }));
        }
        let mut totals = vec![(0u64, 0u64); n];
        let mut refused = 0;
        for task in tasks {
            let (per_replica, vendor_429) = task.await.unwrap();
            refused += vendor_429;
            for (i, (miss, other)) in per_replica.into_iter().enumerate() {
                totals[i].0 += miss;
                totals[i].1 += other;
            }
        }
        let upstream = sandbox.stats().total(sandbox::Vendor::Okra);
        let per: Vec<String> = totals.iter().map(|(m, _)| m.to_string()).collect();
        println!(
            "replicas: {n} replica(s), {seconds} s, quota 30/min: upstream calls per replica [{}], \
             summed {} (sandbox counted {upstream}; answers showing a vendor 429: {refused}); \
             held-back answers {}",
            per.join(", "),
            totals.iter().map(|(m, _)| m).sum::<u64>(),
            totals.iter().map(|(_, o)| o).sum::<u64>()
        );
        sandbox.stop().await;
    }
}

fn provider_secret(sandbox: &sandbox::Sandbox) -> provider::Secret {
    provider::Secret::new(sandbox.config().okra_secret.clone())
}

/// Figure 5: resident memory against `cache.max_bytes`. The gateway binary runs as its own
/// process (its RSS is then the gateway's alone), against a sandbox in this one, at budgets of
/// 8 and 64 MiB: bursts of 16, 48 and 96 concurrent misses on distinct keys (all of the
/// client's transactions from a distinct date, `limit=1`), then 60 distinct snapshots read one
/// after another (`include=raw`), its RSS sampled every 20 ms; then 15 s idle. Every query
/// starts earlier than all before it, so none is answered from a covering snapshot: each is a
/// miss. The rule checked: RSS <= `max_bytes` + 30 MiB at every sample.
///
/// The binary is `BENCH_GATEWAY_BIN`, else `gateway` next to this one (build both:
/// `cargo build --release -p gateway -p bench`).
async fn memory() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sandbox = sandbox::start(
        sandbox::SandboxConfig::default(),
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap();
    let binary = std::env::var("BENCH_GATEWAY_BIN").map_or_else(
        |_| std::env::current_exe().unwrap().with_file_name("gateway"),
        std::path::PathBuf::from,
    );
    for budget_mib in [8u64, 64] {
        memory_at(&binary, &sandbox, budget_mib).await;
    }
    sandbox.stop().await;
}

/// The resident set of process `pid`, in KiB (0 once it is gone).
fn rss_kib(pid: u32) -> u64 {
    resident_kib(pid).unwrap_or(0)
}

async fn memory_at(binary: &std::path::Path, sandbox: &sandbox::Sandbox, budget_mib: u64) {
    let budget = budget_mib * 1024 * 1024;
    let dir = std::env::temp_dir().join(format!("bench-memory-{}", rand_u64()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hash = hex::encode(Sha256::digest(KEY.as_bytes()));
    let toml = format!(
        r#"
[server]
bind = "127.0.0.1:{port}"
workers = 2
request_timeout_ms = 30000

[clients.bench]
api_key_sha256 = "{hash}"

[providers.okra]
kind = "okra"
base_url = "{okra}"
secret_key = {{ env = "BENCH_OKRA_SECRET" }}
{early}

[routing]
default = "okra"

[cache]
max_bytes = {budget}
ttl_secs = 3600

[audit]
path = "/dev/null"
"#,
        okra = sandbox.okra_base_url(),
        // `EARLY_FIRST_PAGE=false` compares with fills that answer only once built.
        early = std::env::var("EARLY_FIRST_PAGE")
            .map(|v| format!("early_first_page = {v}"))
            .unwrap_or_default(),
    );
    let config = dir.join("gateway.toml");
    std::fs::write(&config, toml).unwrap();
    let mut child = std::process::Command::new(binary)
        .arg("--config")
        .arg(&config)
        .env("BENCH_OKRA_SECRET", &sandbox.config().okra_secret)
        // The binary's own jemalloc options unless `BENCH_MALLOC_CONF` says others.
        .env(
            "_RJEM_MALLOC_CONF",
            std::env::var("BENCH_MALLOC_CONF").unwrap_or_default(),
        )
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (build it: cargo build --release -p gateway)",
                binary.display()
            )
        });
    let pid = child.id();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The peak of the samples since the last reset.
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(pid), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let mib = |kib: u64| kib as f64 / 1024.0;
    let limit_kib = (budget + 30 * 1024 * 1024) / 1024;
    let mut worst = 0u64;
    let end = sandbox::END_DATE;
    let next_day = std::sync::atomic::AtomicI64::new(1);
    let get = |path: String| {
        let (http, base) = (&http, &base);
        async move {
            let res = http
                .get(format!("{base}{path}"))
                .bearer_auth(KEY)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body = res.bytes().await.unwrap_or_default();
            let busy = body.windows(10).any(|w| w == b"cache_busy");
            (status, busy)
        }
    };
    let _ = get("/v1/providers".into()).await;
    println!(
        "memory: budget {budget_mib} MiB (rule: RSS <= {:.0} MiB); RSS at start {:.1} MiB",
        mib(limit_kib),
        mib(rss_kib(pid))
    );
    for burst in [16usize, 48, 96] {
        peak.store(0, std::sync::atomic::Ordering::Relaxed);
        let started = Instant::now();
        let answers = futures_util::future::join_all((0..burst).map(|_| {
            let day = next_day.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let from = end - time::Duration::days(day);
            get(format!("/v1/transactions?from={from}&to={end}&limit=1"))
        }))
        .await;
        let took = started.elapsed();
        peak.fetch_max(rss_kib(pid), std::sync::atomic::Ordering::Relaxed);
        let p = peak.load(std::sync::atomic::Ordering::Relaxed);
        worst = worst.max(p);
        let count = |f: &dyn Fn(&(u16, bool)) -> bool| answers.iter().filter(|a| f(a)).count();
        println!(
            "  {burst} concurrent distinct misses: {} x 200, {} x 503 cache_busy, {} other, in {}; peak RSS {:.1} MiB, right after {:.1} MiB",
            count(&|a| a.0 == 200),
            count(&|a| a.0 == 503 && a.1),
            count(&|a| a.0 != 200 && !(a.0 == 503 && a.1)),
            ms(took),
            mib(p),
            mib(rss_kib(pid))
        );
    }
    // Sequential: 60 distinct snapshots, raw records included.
    peak.store(0, std::sync::atomic::Ordering::Relaxed);
    let mut ok = 0;
    for k in 0..60i64 {
        let from = end - time::Duration::days(161 + k * 9);
        let (status, _) = get(format!(
            "/v1/transactions?from={from}&to={end}&limit=50&include=raw"
        ))
        .await;
        ok += usize::from(status == 200);
    }
    peak.fetch_max(rss_kib(pid), std::sync::atomic::Ordering::Relaxed);
    let p = peak.load(std::sync::atomic::Ordering::Relaxed);
    worst = worst.max(p);
    println!(
        "  60 snapshots one after another: {ok} x 200; peak RSS {:.1} MiB, now {:.1} MiB",
        mib(p),
        mib(rss_kib(pid))
    );
    tokio::time::sleep(Duration::from_secs(15)).await;
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap_or_default();
    let tiers: Vec<String> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("gateway_cache_bytes{tier=\""))
        .filter_map(|l| {
            let (tier, bytes) = l.split_once("\"} ")?;
            Some(format!(
                "{tier} {:.1}",
                bytes.parse::<f64>().ok()? / 1048576.0
            ))
        })
        .collect();
    let allocator: Vec<String> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("gateway_allocator_bytes{state=\""))
        .filter_map(|l| {
            let (state, bytes) = l.split_once("\"} ")?;
            Some(format!(
                "{state} {:.1}",
                bytes.parse::<f64>().ok()? / 1048576.0
            ))
        })
        .collect();
    println!(
        "  after 15 s idle: RSS {:.1} MiB; weights (MiB): {}; allocator (MiB): {}",
        mib(rss_kib(pid)),
        tiers.join(", "),
        allocator.join(", ")
    );
    println!(
        "  highest sample {:.1} MiB: {}",
        mib(worst),
        if worst <= limit_kib {
            "within max_bytes + 30 MiB"
        } else {
            "OVER max_bytes + 30 MiB"
        }
    );
    sampler.abort();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Figure 7: a saturated quota. A Mono-style provider read page by page (pages of 50), 30
/// requests a minute; 100 concurrent callers read accounts spread over the whole directory for
/// `SECONDS_PER_RUN` (default 40). Prints the client success rate and the share of upstream
/// calls that served an answer: the pages of every account answered with a fetch of its own
/// (`x-cache: miss`), counted once, over all upstream calls.
async fn saturation() {
    let seconds: u64 = std::env::var("SECONDS_PER_RUN")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let gw = std::sync::Arc::new(
        start(
            r#"
[providers.mono]
kind = "mono"
base_url = "sandbox"
bulk_read = false
page_size = 50
requests_per_minute = 30
burst = 5
queue_timeout_ms = 10000

[cache]
ttl_secs = 3600
"#,
        )
        .await,
    );
    let accounts: Vec<(String, u64)> = gw
        .sandbox
        .directory()
        .accounts()
        .map(|a| {
            (
                a.mono_account_id.clone(),
                a.transaction_count.div_ceil(50).max(1),
            )
        })
        .collect();
    gw.sandbox.reset_stats();
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for caller in 0..100usize {
        let (gw, accounts) = (gw.clone(), accounts.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut n = 0usize;
            while Instant::now() < end {
                let i = (caller * 7_919 + n * 104_729) % accounts.len();
                n += 1;
                let path = format!(
                    "/v1/accounts/{}/transactions?provider=mono&limit=50",
                    accounts[i].0
                );
                let (status, cache, _) = gw.get(&path).await;
                if status != 503 {
                    // A caller that got its page (or its own 429) uses it before the next read:
                    // the scenario measures the provider's quota, not how fast hits are served.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                seen.push((i, status, cache));
            }
            seen
        }));
    }
    let mut answered = std::collections::HashSet::new();
    let (mut ok, mut all) = (0u64, 0u64);
    let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
    for task in tasks {
        for (i, status, cache) in task.await.unwrap() {
            all += 1;
            *statuses.entry(status).or_default() += 1;
            if status == 200 {
                ok += 1;
                if cache.as_deref() == Some("miss") {
                    answered.insert(i);
                }
            }
        }
    }
    let in_window = gw.sandbox.stats().total(sandbox::Vendor::Mono);
    // Fills still under way (a first page answered early leaves its fill going on) finish
    // or fail; then the calls spent are counted against the snapshots built.
    let settled =
        tokio::time::timeout(Duration::from_secs(120), gw.state.snapshots.settled()).await;
    let calls = gw.sandbox.stats().total(sandbox::Vendor::Mono);
    let entry = gw.state.registry.resolve(Some("mono")).unwrap();
    let built: u64 = accounts
        .iter()
        .filter(|(id, _)| {
            let query = provider::TransactionQuery::new(provider::Scope::Account(id.clone()));
            gw.state.snapshots.holds(entry, &query)
        })
        .map(|(_, pages)| pages)
        .sum();
    let useful: u64 = answered.iter().map(|&i| accounts[i].1).sum();
    println!(
        "saturation: {seconds} s, quota 30/min, 100 callers over {} accounts: {ok} of {all} \
         requests answered 200 ({:.1} %); {in_window} upstream calls in the window, {useful} \
         of them pages of accounts answered with a fetch ({:.1} %); after the fills under way \
         {} ({calls} calls in all): {built} pages in built snapshots ({:.1} % of all calls)",
        accounts.len(),
        100.0 * ok as f64 / all.max(1) as f64,
        100.0 * useful as f64 / in_window.max(1) as f64,
        if settled.is_ok() {
            "finished"
        } else {
            "ran past 120 s"
        },
        100.0 * built as f64 / calls.max(1) as f64
    );
    println!("saturation: answers by status {statuses:?}");
}

/// Figure 8: one client floods a provider limited to 60 requests a minute with 40 reads of
/// unknown accounts, then another client reads 10 real accounts, uncached. Prints how each
/// client's requests ended.
async fn fairness() {
    for (label, flood_key) in [
        ("two clients (fair share)", FLOOD_KEY),
        (
            "flood sent with the reader's own key (one client: first come, first served)",
            KEY,
        ),
    ] {
        fairness_run(label, flood_key).await;
    }
}

async fn fairness_run(label: &str, flood_key: &str) {
    let flood_hash = hex::encode(Sha256::digest(FLOOD_KEY.as_bytes()));
    let gw = start_with(config_with(
        "requests_per_minute = 60\nburst = 1\nqueue_timeout_ms = 10000",
        &format!("[clients.flood]\napi_key_sha256 = \"{flood_hash}\"\n"),
    ))
    .await;
    // The ten smallest accounts (fewer if the directory holds fewer).
    let mut all: Vec<(u64, String)> = gw
        .sandbox
        .directory()
        .accounts()
        .map(|a| (a.transaction_count, a.okra_account_id.clone()))
        .collect();
    all.sort();
    let pages: u64 = all
        .iter()
        .take(10)
        .map(|(n, _)| n.div_ceil(100).max(1))
        .sum();
    let accounts: Vec<String> = all.into_iter().take(10).map(|(_, id)| id).collect();
    let flood = (0..40).map(|i| {
        let path = format!("/v1/accounts/no-such-account-{i}/transactions");
        let gw = &gw;
        async move { gw.get_as(flood_key, &path).await.0 }
    });
    let reads = accounts.iter().map(|a| {
        let path = format!("/v1/accounts/{a}/transactions");
        let gw = &gw;
        async move {
            // After the flood has taken its places in line.
            tokio::time::sleep(Duration::from_millis(50)).await;
            gw.get(&path).await.0
        }
    });
    let (flood, reads) = futures_util::future::join(
        futures_util::future::join_all(flood),
        futures_util::future::join_all(reads),
    )
    .await;
    let count = |v: &[u16], s: u16| v.iter().filter(|&&x| x == s).count();
    println!(
        "fairness, {label}: quota 60/min, queue timeout 10 s; flood (40 unknown accounts): \
         {} x 404, {} x 503; reader ({} real accounts, {pages} provider pages, uncached): \
         {} x 200, {} x 503, {} other",
        count(&flood, 404),
        count(&flood, 503),
        reads.len(),
        count(&reads, 200),
        count(&reads, 503),
        reads.len() - count(&reads, 200) - count(&reads, 503)
    );
}

#[tokio::main]
async fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    match which.as_str() {
        "cold-miss" => cold_miss().await,
        "first-page" => first_page().await,
        "memory" => memory().await,
        "replicas" => replicas().await,
        "saturation" => saturation().await,
        "fairness" => fairness().await,
        "all" => {
            cold_miss().await;
            first_page().await;
            memory().await;
            replicas().await;
            saturation().await;
            fairness().await;
        }
        other => {
            eprintln!(
                "usage: scenarios [cold-miss|first-page|memory|replicas|saturation|fairness|all] (not {other:?})"
            );
            std::process::exit(2);
        }
    }
}
