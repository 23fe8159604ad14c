//! Snapshots, caching and pagination: one upstream fetch per page however many ask, consistent
//! cursor walks, HTTP caching, stale-if-error, a bounded memory budget, large scopes paged through.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panicking helper is a failed test

use std::time::Duration;

use e2e::{base_config, spawn, spawn_default, sums};
use sandbox::{Faults, Vendor};

const GET_BY_ACCOUNT: &str = "POST /v2/transactions/getByAccount";
const MONO_LIST: &str = "GET /api/v1/financial/account_transactions";

#[tokio::test]
async fn concurrent_identical_cold_requests_fetch_each_provider_page_once() {
    let gw = spawn_default("okra").await;
    let account = gw.accounts_with(1000).remove(0);
    let pages = account.transaction_count.div_ceil(100);
    gw.sandbox.reset_stats();

    let path = format!(
        "/v1/accounts/{}/transactions?limit=50",
        account.okra_account_id
    );
    let requests = (0..200).map(|_| gw.get(&path));
    let replies = futures_util::future::join_all(requests).await;
    gw.settle().await;
    assert!(replies.iter().all(|r| r.status == 200));
    assert!(replies.iter().all(|r| r.json == replies[0].json));
    let misses = replies
        .iter()
        .filter(|r| r.header("x-cache") == Some("miss"))
        .count();
    assert!(misses >= 1);

    let stats = gw.sandbox.stats();
    assert_eq!(
        stats.okra.get(GET_BY_ACCOUNT).copied(),
        Some(pages),
        "{stats:?}"
    );

    // Mono reads an account in one bulk call.
    gw.sandbox.reset_stats();
    let path = format!(
        "/v1/accounts/{}/transactions?provider=mono&limit=50",
        account.mono_account_id
    );
    let replies = futures_util::future::join_all((0..100).map(|_| gw.get(&path))).await;
    assert!(replies.iter().all(|r| r.status == 200));
    assert_eq!(gw.sandbox.stats().mono.get(MONO_LIST).copied(), Some(1));
}

/// Appends new transactions to the account in the sandbox (its Mono-style webhook mode syncs
/// the account before delivering; the delivery itself goes nowhere here).
async fn new_transactions_arrive(gw: &e2e::TestGateway, mono_account_id: &str) {
    let directory = gw.sandbox.directory();
    let before = directory
        .accounts()
        .find(|a| a.mono_account_id == mono_account_id)
        .unwrap()
        .transaction_count;
    let res = gw
        .http
        .get(format!(
            "{}/api/v1/financial/account_transactions",
            gw.sandbox.mono_base_url()
        ))
        .header("Authorization", &directory.mono.secret)
        .header("AppId", directory.mono.app_id.clone().unwrap())
        .query(&[
            ("account_id", mono_account_id),
            ("response_mode", "webhook"),
            ("callback_url", "http://127.0.0.1:9/nowhere"),
        ])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    for _ in 0..100 {
        let now = gw
            .sandbox
            .directory()
            .accounts()
            .find(|a| a.mono_account_id == mono_account_id)
            .unwrap()
            .transaction_count;
        if now > before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the sandbox did not add transactions");
}

#[tokio::test]
async fn a_cursor_walk_stays_in_its_snapshot_while_a_refresh_replaces_it() {
    let gw = spawn_default("okra").await;
    let account = gw.accounts_with(300).remove(0);
    let base = format!("/v1/accounts/{}/transactions", account.okra_account_id);

    // The reference: the whole snapshot as it is now.
    let before = gw.walk(&base, 100).await;
    assert_eq!(before.len() as u64, account.transaction_count);

    // Start a walk, then let the provider change and the gateway replace the snapshot.
    let first = gw.get(&format!("{base}?limit=40")).await;
    let mut walked = first.json["data"].as_array().unwrap().clone();
    let mut cursor = first.json["pagination"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    new_transactions_arrive(&gw, &account.mono_account_id).await;
    gw.state
        .snapshots
        .invalidate_account("okra", &account.okra_account_id)
        .unwrap();
    let fresh = gw.get(&format!("{base}?limit=1")).await;
    assert_eq!(fresh.header("x-cache"), Some("miss"));
    assert_eq!(
        fresh.json["pagination"]["total"],
        account.transaction_count + 3
    );

    loop {
        let reply = gw.get(&format!("{base}?limit=40&cursor={cursor}")).await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        walked.extend(reply.json["data"].as_array().unwrap().iter().cloned());
        match reply.json["pagination"]["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(walked, before, "the walk equals the snapshot it started in");
}

#[tokio::test]
async fn etags_give_304_and_cache_headers_tell_the_truth() {
    let gw = spawn(&base_config("okra", "[cache]\nttl_secs = 120\n")).await;
    let account = gw.accounts_with(10).remove(0);
    let path = format!(
        "/v1/accounts/{}/transactions?limit=5",
        account.okra_account_id
    );

    let first = gw.get(&path).await;
    assert_eq!(first.header("x-cache"), Some("miss"));
    gw.settle().await;
    let etag = first.header("etag").unwrap().to_owned();
    let max_age: u64 = first
        .header("cache-control")
        .unwrap()
        .strip_prefix("private, max-age=")
        .unwrap()
        .parse()
        .unwrap();
    assert!((100..=120).contains(&max_age), "{max_age}");

    let second = gw.get(&path).await;
    assert_eq!(second.header("x-cache"), Some("hit"));
    assert_eq!(second.header("etag"), Some(etag.as_str()));

    let revalidated = gw.get_with_header(&path, "if-none-match", &etag).await;
    assert_eq!(revalidated.status, 304);
    assert_eq!(revalidated.header("etag"), Some(etag.as_str()));
    assert!(revalidated.json.is_null(), "a 304 has no body");

    let other = gw
        .get_with_header(&path, "if-none-match", "\"something-else\"")
        .await;
    assert_eq!(other.status, 200);

    // Items carry ETags too.
    let id = first.json["data"][0]["id"].as_str().unwrap();
    let item = gw.get(&format!("/v1/transactions/{id}")).await;
    let item_etag = item.header("etag").unwrap().to_owned();
    let item_again = gw
        .get_with_header(
            &format!("/v1/transactions/{id}"),
            "if-none-match",
            &item_etag,
        )
        .await;
    assert_eq!(item_again.status, 304);
}

#[tokio::test]
async fn a_repeated_page_is_served_without_rendering_it_again() {
    let gw = spawn_default("okra").await;
    let account = gw.accounts_with(60).remove(0);
    let path = format!(
        "/v1/accounts/{}/transactions?limit=50",
        account.okra_account_id
    );
    let first = gw.get(&path).await;
    gw.settle().await;
    // The first page may have been answered before the snapshot was built: rendered anew once.
    gw.get(&path).await;
    let renders = gw.state.snapshots.renders_made();
    for _ in 0..20 {
        let again = gw.get(&path).await;
        assert_eq!(again.json, first.json);
    }
    assert_eq!(gw.state.snapshots.renders_made(), renders);
    // Another page is rendered once.
    gw.get(&format!("{path}&page=2")).await;
    assert_eq!(gw.state.snapshots.renders_made(), renders + 1);
}

#[tokio::test]
async fn stale_if_error_serves_a_recent_snapshot_when_the_provider_fails() {
    // The failures below would open Okra's circuit breaker (whose fail-fast is served stale
    // too); keep it closed so the recovery at the end reaches the provider at once.
    let gw = spawn(
        // The recovery at the end reads a 25-page account with a stale copy at hand: let it
        // finish on a loaded machine rather than fall back to the stale copy after 2 s.
        &base_config(
            "okra",
            "[cache]\nttl_secs = 1\nstale_if_error_secs = 300\nstale_wait_ms = 20000\n",
        )
        .replace(
            "kind = \"okra\"\n",
            "kind = \"okra\"\nbreaker_failure_threshold = 100\n",
        ),
    )
    .await;
    let account = gw.accounts_with(10).remove(0);
    let path = format!(
        "/v1/accounts/{}/transactions?limit=5",
        account.okra_account_id
    );
    let fresh = gw.get(&path).await;
    assert_eq!(fresh.header("x-cache"), Some("miss"));
    gw.settle().await;

    tokio::time::sleep(Duration::from_millis(1300)).await;
    gw.sandbox.set_faults(
        Vendor::Okra,
        Faults {
            error_rate: 1.0,
            error_status: 503,
            ..Default::default()
        },
    );
    let stale = gw.get(&path).await;
    assert_eq!(stale.status, 200, "{}", stale.json);
    assert_eq!(stale.header("x-cache"), Some("stale"));
    assert!(stale.header("age").unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(stale.header("cache-control"), Some("private, max-age=0"));
    assert_eq!(stale.json["data"], fresh.json["data"]);

    // Without a recent snapshot the failure is the caller's answer.
    let other = gw.accounts_with(10).remove(1);
    let failed = gw
        .get(&format!(
            "/v1/accounts/{}/transactions",
            other.okra_account_id
        ))
        .await;
    assert_eq!(failed.status, 502);

    gw.sandbox.clear_faults();
    let recovered = gw.get(&path).await;
    assert_eq!(recovered.header("x-cache"), Some("miss"));
}

#[tokio::test]
async fn stale_if_error_can_be_turned_off() {
    let gw = spawn(&base_config(
        "okra",
        "[cache]\nttl_secs = 1\nstale_if_error_secs = 0\n",
    ))
    .await;
    let account = gw.accounts_with(10).remove(0);
    let path = format!("/v1/accounts/{}/transactions", account.okra_account_id);
    assert_eq!(gw.get(&path).await.status, 200);
    gw.settle().await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    gw.sandbox.set_faults(
        Vendor::Okra,
        Faults {
            error_rate: 1.0,
            ..Default::default()
        },
    );
    assert_eq!(gw.get(&path).await.status, 502);
}

#[tokio::test]
async fn the_memory_budget_evicts_instead_of_growing() {
    let budget: u64 = 1024 * 1024;
    let gw = spawn(&base_config(
        "okra",
        &format!("[cache]\nmax_bytes = {budget}\n"),
    ))
    .await;
    let accounts = gw.accounts_with(1);
    for account in &accounts {
        for provider in ["okra", "mono"] {
            let id = if provider == "okra" {
                &account.okra_account_id
            } else {
                &account.mono_account_id
            };
            let reply = gw
                .get(&format!(
                    "/v1/accounts/{id}/transactions?provider={provider}&include=raw"
                ))
                .await;
            assert_eq!(reply.status, 200);
        }
    }
    gw.state.snapshots.run_pending_tasks().await;
    let weights = gw.state.snapshots.weighted_sizes();
    let current = weights[0].1;
    assert_eq!(weights[0].0, "current");
    let share = gateway::memory::Shares::of(budget).current;
    assert!(current <= share, "current snapshots {current} > {share}");
    assert!(weights.iter().map(|(_, bytes)| bytes).sum::<u64>() <= budget);
    // Weights are bytes, not entries: what stayed weighs far more than the entry count, and all
    // that was fetched (every account, twice, with raw records: megabytes) did not fit.
    assert!(
        current > 64 * 1024,
        "cached weight {current} is not counted in bytes"
    );
    let fetched: u64 = accounts.iter().map(|a| a.transaction_count).sum::<u64>() * 2;
    assert!(
        fetched * 300 > budget,
        "the test must fetch more than the budget holds"
    );
}

#[tokio::test]
async fn scopes_too_large_to_snapshot_page_straight_through() {
    let gw = spawn(&base_config("okra", "[cache]\nmax_snapshot_items = 150\n")).await;
    let account = gw.accounts_with(1000).remove(0);
    let base = format!("/v1/accounts/{}/transactions", account.okra_account_id);
    gw.sandbox.reset_stats();

    let first = gw.get(&format!("{base}?limit=30&page=2")).await;
    assert_eq!(first.status, 200, "{}", first.json);
    assert_eq!(first.json["pagination"]["total"], account.transaction_count);
    assert_eq!(first.json["data"].as_array().unwrap().len(), 30);
    // Only the provider pages covering the caller's page were read, not the whole account.
    let calls = gw
        .sandbox
        .stats()
        .okra
        .get(GET_BY_ACCOUNT)
        .copied()
        .unwrap_or(0);
    assert!(calls <= 3, "{calls} upstream calls");

    // Cursors work through it too, and agree with page numbers.
    let page1 = gw.get(&format!("{base}?limit=30")).await;
    let cursor = page1.json["pagination"]["next_cursor"].as_str().unwrap();
    let via_cursor = gw.get(&format!("{base}?limit=30&cursor={cursor}")).await;
    assert_eq!(via_cursor.json["data"], first.json["data"]);

    // Filters the provider lacks cannot be exact here: a clear problem instead of a wrong total.
    let filtered = gw.get(&format!("{base}?direction=debit")).await;
    assert_eq!(filtered.status, 422);
    assert_eq!(filtered.json["code"], "scope_too_large");

    // Smaller scopes are still snapshotted.
    let small = gw
        .accounts_with(1)
        .into_iter()
        .find(|a| a.transaction_count < 150)
        .unwrap();
    let all = gw
        .walk(
            &format!("/v1/accounts/{}/transactions", small.okra_account_id),
            100,
        )
        .await;
    assert_eq!(
        sums(&all),
        (small.debit_total_kobo, small.credit_total_kobo)
    );
}

#[tokio::test]
async fn a_snapshot_reads_the_providers_pages_of_its_configured_size() {
    let config = base_config("okra", "").replace(
        "[providers.mono]\nkind = \"mono\"\nbase_url = \"sandbox\"\n",
        "[providers.mono]\nkind = \"mono\"\nbase_url = \"sandbox\"\nbulk_read = false\npage_size = 10\nfetch_concurrency = 4\n",
    );
    assert!(config.contains("page_size = 10"));
    let gw = spawn(&config).await;
    let account = gw
        .accounts_with(1)
        .into_iter()
        .find(|a| (50..=400).contains(&a.transaction_count))
        .unwrap();
    gw.sandbox.reset_stats();
    let all = gw
        .walk(
            &format!(
                "/v1/accounts/{}/transactions?provider=mono",
                account.mono_account_id
            ),
            100,
        )
        .await;
    assert_eq!(all.len() as u64, account.transaction_count);
    assert_eq!(
        sums(&all),
        (account.debit_total_kobo, account.credit_total_kobo)
    );
    // Every page of 10 once, nothing more (the walk itself is served from the snapshot).
    let calls = gw.sandbox.stats().mono.get(MONO_LIST).copied();
    assert_eq!(calls, Some(account.transaction_count.div_ceil(10)));
}

/// Negative caching: unknown accounts are asked about once per `negative_ttl_secs`; asking
/// again (any client, any page or range) is answered 404 without an upstream call.
#[tokio::test]
async fn unknown_accounts_are_asked_about_once() {
    let gw = e2e::spawn_default("okra").await;
    let ghosts: Vec<String> = (0..50).map(|i| format!("no-such-account-{i}")).collect();
    for round in 0..2 {
        let paths: Vec<String> = ghosts
            .iter()
            .map(|id| format!("/v1/accounts/{id}/transactions?limit={}", 10 + round))
            .collect();
        let replies = futures_util::future::join_all(paths.iter().map(|p| gw.get(p))).await;
        assert!(replies.iter().all(|r| r.status == 404), "round {round}");
        assert!(replies.iter().all(|r| r.json["code"] == "not_found"));
    }
    let stats = gw.sandbox.stats();
    assert_eq!(
        stats.okra.get(GET_BY_ACCOUNT).copied(),
        Some(ghosts.len() as u64),
        "{stats:?}"
    );
}

/// Covering snapshots: on a scope the provider filters by date (Mono-style accounts), a range
/// inside a fresh snapshot's range is answered from it, filtered exactly, without a new fetch.
#[tokio::test]
async fn a_range_inside_a_fetched_range_is_served_from_that_snapshot() {
    let gw = e2e::spawn_default("mono").await;
    let account = gw.accounts_with(200).remove(0).mono_account_id;
    let path =
        |from: &str, to: &str| format!("/v1/accounts/{account}/transactions?from={from}&to={to}");
    let wide = gw.walk(&path("2000-01-01", "2100-12-31"), 100).await;
    assert!(wide.len() > 10);
    // A range around the middle of the data, by booking date.
    let dates: Vec<&str> = wide
        .iter()
        .map(|t| t["booked_on"].as_str().unwrap())
        .collect();
    let (to, from) = (dates[dates.len() / 4], dates[dates.len() * 3 / 4]);
    let inside = gw.get(&path(from, to)).await;
    assert_eq!(inside.status, 200);
    assert_eq!(inside.header("x-cache"), Some("hit"));
    let expected: Vec<&serde_json::Value> = wide
        .iter()
        .filter(|t| (from..=to).contains(&t["booked_on"].as_str().unwrap()))
        .collect();
    assert_eq!(inside.json["pagination"]["total"], expected.len() as u64);
    let stats = gw.sandbox.stats();
    assert_eq!(stats.mono.get(MONO_LIST).copied(), Some(1), "{stats:?}");
}

/// Issue 16, first page fast: a Mono-style account read in provider pages of 10, one at a time,
/// 20 ms each. The first page is answered as soon as the provider's first page is in (the
/// rest of the snapshot still filling), and the walk from its cursor waits for the fill where
/// it must: every transaction exactly once, the totals to the kobo, each provider page read once.
#[tokio::test]
async fn the_first_page_comes_before_the_whole_snapshot_and_the_walk_stays_whole() {
    let config = base_config("okra", "").replace(
        "[providers.mono]\nkind = \"mono\"\nbase_url = \"sandbox\"\n",
        "[providers.mono]\nkind = \"mono\"\nbase_url = \"sandbox\"\nbulk_read = false\npage_size = 10\nfetch_concurrency = 1\n",
    );
    assert!(config.contains("fetch_concurrency = 1"));
    let gw = spawn(&config).await;
    let account = gw
        .accounts_with(1)
        .into_iter()
        .find(|a| (200..=400).contains(&a.transaction_count))
        .unwrap();
    let pages = account.transaction_count.div_ceil(10);
    gw.sandbox.set_faults(
        Vendor::Mono,
        Faults {
            latency_ms: 20,
            ..Default::default()
        },
    );
    gw.sandbox.reset_stats();
    let base = format!(
        "/v1/accounts/{}/transactions?provider=mono&limit=10",
        account.mono_account_id
    );
    let first = gw.get(&base).await;
    assert_eq!(first.status, 200, "{}", first.json);
    assert_eq!(first.header("x-cache"), Some("miss"));
    let asked = gw.sandbox.stats().mono.get(MONO_LIST).copied().unwrap_or(0);
    assert!(
        asked < pages / 2,
        "the first page waited for {asked} of {pages} provider pages"
    );
    assert_eq!(first.json["pagination"]["total"], account.transaction_count);

    let mut walked = first.json["data"].as_array().unwrap().clone();
    let mut next = first.json["pagination"]["next_cursor"]
        .as_str()
        .map(str::to_owned);
    while let Some(cursor) = next {
        let reply = gw.get(&format!("{base}&cursor={cursor}")).await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        walked.extend(reply.json["data"].as_array().unwrap().iter().cloned());
        next = reply.json["pagination"]["next_cursor"]
            .as_str()
            .map(str::to_owned);
    }
    let ids: std::collections::HashSet<_> = walked.iter().map(|t| t["id"].clone()).collect();
    assert_eq!(ids.len(), walked.len(), "no duplicate");
    assert_eq!(walked.len() as u64, account.transaction_count, "no gap");
    assert_eq!(
        sums(&walked),
        (account.debit_total_kobo, account.credit_total_kobo)
    );
    assert_eq!(gw.sandbox.stats().mono.get(MONO_LIST).copied(), Some(pages));
    // The same pages from the built snapshot: a hit, the same records.
    let again = gw.get(&base).await;
    assert_eq!(again.header("x-cache"), Some("hit"));
    assert_eq!(again.json["data"], first.json["data"]);
}
