//! `scenarios [cold-miss|first-page|memory|all]`: the gateway's benchmark scenarios, in-process
//! against the embedded sandbox, printing the figures `docs/performance.md` records.
//!
//! Run it in release mode: `cargo run --release -p bench --bin scenarios -- all`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement tool: a failure ends it

use std::time::{Duration, Instant};

use bench::{percentiles, resident_kib};
use gateway::{Application, Config};
use sha2::{Digest, Sha256};

const KEY: &str = "bench-key";

fn config(extra: &str) -> Config {
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
    let _ = rustls::crypto::ring::default_provider().install_default();
    let app = Application::build(config(extra)).await.unwrap();
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
    async fn get(&self, path: &str) -> (u16, Option<String>, Duration) {
        let started = Instant::now();
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let cache = res
            .headers()
            .get("x-cache")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let _ = res.bytes().await.unwrap();
        (status, cache, started.elapsed())
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Figure 2: a cold miss that needs one provider page, against calling the sandbox directly.
async fn cold_miss() {
    let gw = start("").await;
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

/// Figure 3: a large account from a provider that answers 10 per page with 50 ms latency.
async fn first_page() {
    for concurrency in [1usize, 4, 16] {
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
        let (status, cache, took) = gw
            .get(&format!(
                "/v1/accounts/{}/transactions?provider=mono&limit=50",
                account.mono_account_id
            ))
            .await;
        assert_eq!((status, cache.as_deref()), (200, Some("miss")));
        let pages = account.transaction_count.div_ceil(10);
        let calls = gw.sandbox.stats().total(sandbox::Vendor::Mono);
        let rounds = 1 + (pages - 1).div_ceil(concurrency as u64);
        let bound = Duration::from_millis(50 * rounds);
        println!(
            "first-page: {} transactions, {pages} pages of 10 at 50 ms, concurrency {concurrency}: \
             time to first page {} (bound {rounds} x 50 ms = {}; {calls} upstream calls)",
            account.transaction_count,
            ms(took),
            ms(bound)
        );
    }
}

/// Figure 5: resident memory with the cache filled past its budget.
async fn memory() {
    let budget: u64 = 64 * 1024 * 1024;
    let gw = start(&format!("[cache]\nmax_bytes = {budget}\nttl_secs = 3600\n")).await;
    let _ = gw.get("/v1/providers").await;
    let before = resident_kib().unwrap_or(0);
    let end = sandbox::END_DATE;
    let fill = |rounds: std::ops::Range<i64>| {
        let gw = &gw;
        async move {
            for k in rounds {
                // All of the client's transactions from a different day each time: a new
                // snapshot key per request (Okra filters this scope by date itself).
                let from = end - time::Duration::days(700 - k * 5);
                let (status, _, _) = gw
                    .get(&format!(
                        "/v1/transactions?from={from}&to={end}&limit=50&include=raw"
                    ))
                    .await;
                assert_eq!(status, 200);
            }
            gw.state.snapshots.run_pending_tasks().await;
        }
    };
    fill(0..60).await;
    let (c1, r1, s1, p1) = gw.state.snapshots.weighted_sizes();
    let after = resident_kib().unwrap_or(0);
    fill(60..120).await;
    let (c2, r2, s2, p2) = gw.state.snapshots.weighted_sizes();
    let again = resident_kib().unwrap_or(0);
    let mib = |b: u64| b as f64 / 1048576.0;
    println!("memory: budget {:.0} MiB", mib(budget));
    println!(
        "  RSS at start (gateway + embedded sandbox): {:.1} MiB",
        before as f64 / 1024.0
    );
    println!(
        "  after 60 snapshots : RSS {:.1} MiB; cache weights current {:.1} / retired {:.1} / stale {:.1} / rendered {:.1} MiB",
        after as f64 / 1024.0,
        mib(c1),
        mib(r1),
        mib(s1),
        mib(p1)
    );
    println!(
        "  after 120 snapshots: RSS {:.1} MiB; cache weights current {:.1} / retired {:.1} / stale {:.1} / rendered {:.1} MiB",
        again as f64 / 1024.0,
        mib(c2),
        mib(r2),
        mib(s2),
        mib(p2)
    );
}

#[tokio::main]
async fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    match which.as_str() {
        "cold-miss" => cold_miss().await,
        "first-page" => first_page().await,
        "memory" => memory().await,
        "all" => {
            cold_miss().await;
            first_page().await;
            memory().await;
        }
        other => {
            eprintln!("usage: scenarios [cold-miss|first-page|memory|all] (not {other:?})");
            std::process::exit(2);
        }
    }
}
