//! Traffic control end to end: inbound quotas per client, the outbound lane per provider
//! (quota, waiting in line, 429 pauses, retries, circuit breaker) and deadlines, shown with the
//! sandbox's fault injection and its request counters. Each test runs its own gateway and
//! sandbox on free ports; every quota and cool-down is small, so nothing sleeps for long.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panicking helper is a failed test

use std::time::{Duration, Instant};

use e2e::{BILLING_KEY, LEDGER_KEY, Reply, TestGateway, base_config, spawn};
use futures_util::future::join_all;
use sandbox::{AccountInfo, Faults, Vendor};

/// A gateway whose config is [`base_config`] with `okra` lines added to `[providers.okra]`,
/// `mono` lines to `[providers.mono]`, `billing` lines to `[clients.billing]` and `server`
/// lines to `[server]`.
async fn gateway(server: &str, billing: &str, okra: &str, mono: &str) -> TestGateway {
    let mut text = base_config("okra", "");
    // Each table ends where the next one starts.
    for (next_table, lines) in [
        ("[clients.billing]", server),
        ("[clients.ledger]", billing),
        ("[providers.mono]", okra),
        ("[routing]", mono),
    ] {
        assert!(text.contains(next_table), "{next_table}");
        text = text.replacen(next_table, &format!("{lines}\n{next_table}"), 1);
    }
    spawn(&text).await
}

/// `n` listings that each cost exactly one Okra request on a cold cache: one customer's
/// transactions on `n` different days (Okra filters a customer's dates itself, so each day is
/// its own snapshot, and a day fits in one page).
fn one_request_paths(gw: &TestGateway, n: usize) -> Vec<String> {
    assert!(n <= 31);
    let customer = gw
        .sandbox
        .directory()
        .customers
        .into_iter()
        .find(|c| c.accounts.iter().any(|a| a.transaction_count > 0))
        .unwrap();
    (1..=n)
        .map(|day| {
            format!(
                "/v1/customers/{}/transactions?from=2026-10-{day:02}&to=2026-10-{day:02}&limit=5",
                customer.okra_customer_id
            )
        })
        .collect()
}

fn okra_path(account: &AccountInfo) -> String {
    format!(
        "/v1/accounts/{}/transactions?limit=5",
        account.okra_account_id
    )
}

fn okra_calls(gw: &TestGateway) -> u64 {
    gw.sandbox.stats().total(Vendor::Okra)
}

fn retry_after(reply: &Reply) -> u64 {
    reply
        .header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After: {}", reply.json))
        .parse()
        .unwrap()
}

async fn circuit(gw: &TestGateway, provider: &str) -> serde_json::Value {
    let providers = gw.get_as(Some(LEDGER_KEY), "/v1/providers").await;
    providers.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == provider)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_client_over_its_quota_gets_429_with_rate_limit_headers_while_another_is_unaffected() {
    // billing: one request per 10 s, three at once; ledger: the default quota.
    let gw = gateway("", "requests_per_minute = 6\nburst = 3", "", "").await;

    // Failed authentication is charged to nobody, whatever key it names.
    for key in [Some("billing-key-e2e-wrong"), Some(""), None] {
        let refused = gw.get_as(key, "/v1/providers").await;
        assert_eq!(refused.status, 401);
        assert_eq!(refused.header("ratelimit"), None);
    }

    for remaining in [2, 1, 0] {
        let ok = gw.get_as(Some(BILLING_KEY), "/v1/providers").await;
        assert_eq!(ok.status, 200, "{}", ok.json);
        assert_eq!(ok.header("ratelimit-policy"), Some("\"billing\";q=6;w=60"));
        let expected = format!("\"billing\";r={remaining};t={}", (3 - remaining) * 10);
        assert_eq!(ok.header("ratelimit"), Some(expected.as_str()));
    }

    let over = gw.get_as(Some(BILLING_KEY), "/v1/providers").await;
    assert_eq!(over.status, 429, "{}", over.json);
    assert_eq!(
        over.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(over.json["code"], "rate_limited");
    assert!((1..=10).contains(&retry_after(&over)));
    assert_eq!(over.json["retry_after"], retry_after(&over));
    assert_eq!(
        over.header("ratelimit-policy"),
        Some("\"billing\";q=6;w=60")
    );
    assert!(
        over.header("ratelimit")
            .unwrap()
            .starts_with("\"billing\";r=0;t=")
    );
    assert!(over.header("x-request-id").is_some());
    // The quota covers every /v1 route, and a refused request reaches no provider.
    let path = &one_request_paths(&gw, 1)[0];
    let over = gw.get_as(Some(BILLING_KEY), path).await;
    assert_eq!(over.status, 429);
    assert_eq!(okra_calls(&gw), 0);

    // The other client is unaffected, and its own errors carry its headers too.
    let ledger = gw.get_as(Some(LEDGER_KEY), path).await;
    assert_eq!(ledger.status, 200, "{}", ledger.json);
    assert_eq!(
        ledger.header("ratelimit-policy"),
        Some("\"default\";q=6000;w=60")
    );
    assert_eq!(ledger.header("ratelimit"), Some("\"default\";r=499;t=1"));
    let invalid = gw
        .get_as(Some(LEDGER_KEY), "/v1/transactions?limit=0")
        .await;
    assert_eq!(invalid.status, 400);
    // One more request spent (or refilled already: a cell comes back every 10 ms).
    let remaining = invalid.header("ratelimit").unwrap();
    assert!(
        ["\"default\";r=498;t=1", "\"default\";r=499;t=1"].contains(&remaining),
        "{remaining}"
    );
}

#[tokio::test]
async fn ten_clients_hammering_through_a_cold_cache_never_push_a_provider_past_its_quota() {
    // The gateway's quota for Okra: 6 requests in any minute, all 6 at once if need be. The
    // sandbox enforces the same quota, so one request too many would come back as a 429.
    let gw = gateway(
        "",
        "",
        "requests_per_minute = 6\nburst = 6\nqueue_timeout_ms = 300",
        "",
    )
    .await;
    gw.sandbox.set_quota(Vendor::Okra, Some(6));
    // One account needing many pages (more than the quota), and one small account per client.
    let big = gw
        .accounts_with(701)
        .into_iter()
        .next()
        .expect("an account of more than seven Okra pages");
    let small = one_request_paths(&gw, 10);

    let started = Instant::now();
    let clients = (0..10).map(|client| {
        let (gw, big, small) = (&gw, &big, &small);
        async move {
            let mut replies = Vec::new();
            for round in 0..3 {
                let own = &small[(client + round) % 10];
                let paths = [okra_path(big), own.clone()];
                // Half the clients start with the big account, half with their own.
                for path in paths.iter().cycle().skip(client % 2).take(2) {
                    replies.push((path.clone(), gw.get(path).await));
                }
            }
            replies
        }
    });
    let replies: Vec<(String, Reply)> = join_all(clients).await.into_iter().flatten().collect();

    let calls = okra_calls(&gw);
    assert!(calls <= 6, "Okra saw {calls} requests in under a minute");
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(calls, 6, "demand exceeded the quota, so all of it was used");
    // Each listing served needed at least one request (then the cache answered repeats).
    let served: std::collections::BTreeSet<&String> = replies
        .iter()
        .filter(|(_, r)| r.status == 200)
        .map(|(path, _)| path)
        .collect();
    assert!(served.len() <= 6, "{} listings served", served.len());
    for (_, reply) in replies.iter().filter(|(_, r)| r.status != 200) {
        // Held back by the gateway, never refused by the provider.
        assert_eq!(reply.status, 503, "{}", reply.json);
        assert_eq!(reply.json["code"], "provider_busy", "{}", reply.json);
        assert!(retry_after(reply) >= 1);
        assert_eq!(reply.json["provider"], "okra");
    }
    let okra = circuit(&gw, "okra").await;
    assert_eq!(okra["outbound"]["requests_per_minute"], 6);
    assert_eq!(okra["outbound"]["burst"], 6);
}

#[tokio::test]
async fn requests_beyond_the_quota_wait_in_line_instead_of_failing() {
    // One request per 100 ms, none banked; up to 5 s in line.
    let gw = gateway(
        "",
        "",
        "requests_per_minute = 600\nburst = 1\nqueue_timeout_ms = 5000",
        "",
    )
    .await;
    let paths = one_request_paths(&gw, 8);
    let started = Instant::now();
    let replies = join_all(paths.iter().map(|path| gw.get(path))).await;
    let elapsed = started.elapsed();
    for reply in &replies {
        assert_eq!(reply.status, 200, "{}", reply.json);
    }
    assert_eq!(okra_calls(&gw), 8);
    assert!(
        elapsed >= Duration::from_millis(650),
        "8 requests at one per 100 ms took {elapsed:?}"
    );
}

#[tokio::test]
async fn an_upstream_429_pauses_the_provider_and_is_not_retried() {
    let gw = gateway("", "", "max_retries = 3\nretry_backoff_ms = 10", "").await;
    let [cached, first, second] = <[String; 3]>::try_from(one_request_paths(&gw, 3))
        .ok()
        .unwrap();
    assert_eq!(gw.get(&cached).await.status, 200);
    gw.sandbox.reset_stats();

    gw.sandbox.set_faults(
        Vendor::Okra,
        Faults {
            rate_limit_retry_after: Some(1),
            ..Faults::default()
        },
    );
    let limited = gw.get(&first).await;
    assert_eq!(limited.status, 503, "{}", limited.json);
    assert_eq!(limited.json["code"], "upstream_rate_limited");
    assert_eq!(retry_after(&limited), 1);
    assert_eq!(okra_calls(&gw), 1, "a 429 is not retried");

    // The provider is fine again, but asked for a pause: it is not called during it.
    gw.sandbox.clear_faults();
    let paused = gw.get(&second).await;
    assert_eq!(paused.status, 503, "{}", paused.json);
    assert_eq!(paused.json["code"], "upstream_rate_limited");
    assert_eq!(retry_after(&paused), 1);
    assert!(
        circuit(&gw, "okra").await["outbound"]["paused_for_ms"]
            .as_u64()
            .unwrap()
            > 0
    );
    // Meanwhile cached data is still served.
    let from_cache = gw.get(&cached).await;
    assert_eq!(from_cache.status, 200);
    assert_eq!(from_cache.header("x-cache"), Some("hit"));
    assert_eq!(okra_calls(&gw), 1);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let resumed = gw.get(&second).await;
    assert_eq!(resumed.status, 200, "{}", resumed.json);
    assert_eq!(okra_calls(&gw), 2);
    assert!(circuit(&gw, "okra").await["outbound"]["paused_for_ms"].is_null());
}

#[tokio::test]
async fn transient_503s_are_retried_and_succeed_but_4xx_are_not() {
    let gw = gateway("", "", "max_retries = 3\nretry_backoff_ms = 10", "").await;
    let [first, second] = <[String; 2]>::try_from(one_request_paths(&gw, 2))
        .ok()
        .unwrap();
    gw.sandbox.set_faults(
        Vendor::Okra,
        Faults {
            fail_next: 2,
            error_status: 503,
            ..Faults::default()
        },
    );
    let reply = gw.get(&first).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(okra_calls(&gw), 3, "two failures, then the answer");
    assert_eq!(
        circuit(&gw, "okra").await["circuit"]["consecutive_failures"],
        0
    );

    gw.sandbox.reset_stats();
    gw.sandbox.set_faults(
        Vendor::Okra,
        Faults {
            fail_next: 1,
            error_status: 400,
            ..Faults::default()
        },
    );
    let rejected = gw.get(&second).await;
    assert_eq!(rejected.status, 400, "{}", rejected.json);
    assert_eq!(rejected.json["code"], "upstream_rejected");
    assert_eq!(okra_calls(&gw), 1, "a 4xx is never retried");
}

#[tokio::test]
async fn a_failing_provider_opens_its_breaker_and_recovers_when_the_fault_is_lifted() {
    let gw = gateway(
        "",
        "",
        // Long enough that the open phase below cannot end while it is being checked on a
        // loaded machine; the test then waits for what the breaker reports, not a guess.
        "max_retries = 0\nbreaker_failure_threshold = 3\nbreaker_open_ms = 2000",
        "",
    )
    .await;
    let paths = one_request_paths(&gw, 6);
    gw.sandbox.set_faults(
        Vendor::Okra,
        Faults {
            error_rate: 1.0,
            error_status: 503,
            ..Faults::default()
        },
    );
    for path in &paths[..3] {
        let failed = gw.get(path).await;
        assert_eq!(failed.status, 502, "{}", failed.json);
        assert_eq!(failed.json["code"], "upstream_error");
    }
    assert_eq!(okra_calls(&gw), 3);

    // Open: later requests fail fast and do not reach the provider.
    for path in &paths[3..5] {
        let open = gw.get(path).await;
        assert_eq!(open.status, 503, "{}", open.json);
        assert_eq!(open.json["code"], "circuit_open");
        assert!(
            (1..=2).contains(&retry_after(&open)),
            "the open period left, in whole seconds"
        );
    }
    assert_eq!(okra_calls(&gw), 3);
    let okra = circuit(&gw, "okra").await;
    assert_eq!(okra["circuit"]["state"], "open", "{okra}");
    assert_eq!(okra["circuit"]["consecutive_failures"], 3);
    assert!(okra["circuit"]["probe_in_ms"].as_u64().unwrap() <= 2000);
    // Other providers have their own breaker.
    assert_eq!(circuit(&gw, "mono").await["circuit"]["state"], "closed");

    // Fault lifted, cool-down over: one probe goes through and closes the breaker.
    gw.sandbox.clear_faults();
    let half_open = async {
        loop {
            let okra = circuit(&gw, "okra").await;
            if okra["circuit"]["state"] == "half_open" {
                return;
            }
            // Wait as long as the breaker itself says its cool-down still lasts.
            let left = okra["circuit"]["probe_in_ms"].as_u64().unwrap_or(1).max(1);
            tokio::time::sleep(Duration::from_millis(left)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), half_open)
        .await
        .expect("the breaker half-opens once its cool-down is over");
    let probe = gw.get(&paths[5]).await;
    assert_eq!(probe.status, 200, "{}", probe.json);
    assert_eq!(okra_calls(&gw), 4);
    let okra = circuit(&gw, "okra").await;
    assert_eq!(okra["circuit"]["state"], "closed", "{okra}");
    assert_eq!(okra["circuit"]["consecutive_failures"], 0);
    let again = gw.get(&paths[3]).await;
    assert_eq!(again.status, 200, "{}", again.json);
}

#[tokio::test]
async fn a_hanging_provider_costs_the_caller_no_more_than_the_deadline() {
    // Okra's own request timeout (10 s) is longer than the gateway's deadline; Mono times out
    // each request after 200 ms and would retry ten times, but no retry outlives the deadline.
    let gw = gateway(
        "request_timeout_ms = 1000",
        "",
        "",
        "request_timeout_ms = 200\nmax_retries = 10\nretry_backoff_ms = 20\nbreaker_failure_threshold = 100",
    )
    .await;
    let account = gw.accounts_with(1).remove(0);
    for vendor in [Vendor::Okra, Vendor::Mono] {
        gw.sandbox.set_faults(
            vendor,
            Faults {
                hang: true,
                ..Faults::default()
            },
        );
    }
    let deadline = Duration::from_millis(1000);
    let slack = Duration::from_millis(750);

    let started = Instant::now();
    let okra = gw.get(&okra_path(&account)).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < deadline + slack,
        "Okra hung the caller {elapsed:?}"
    );
    // Cut by the request's deadline: the request's timeout, as documented (504), not a 503.
    assert_eq!(okra.status, 504, "{}", okra.json);
    assert_eq!(okra.json["code"], "timeout");
    assert_eq!(
        okra.header("content-type"),
        Some("application/problem+json")
    );

    let started = Instant::now();
    let mono = gw
        .get(&format!(
            "/v1/accounts/{}/transactions?provider=mono",
            account.mono_account_id
        ))
        .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < deadline + slack,
        "Mono hung the caller {elapsed:?}"
    );
    // Its own timeouts end each try (503); a last try cut by the deadline is the 504.
    assert!(
        matches!(
            (mono.status, mono.json["code"].as_str()),
            (503, Some("upstream_unavailable")) | (504, Some("timeout"))
        ),
        "{}",
        mono.json
    );
    let tries = gw.sandbox.stats().total(Vendor::Mono);
    assert!((2..=5).contains(&tries), "Mono was tried {tries} times");
}

#[tokio::test]
async fn while_the_breaker_is_open_expired_snapshots_are_served_stale() {
    let gw = spawn(
        &base_config("okra", "[cache]\nttl_secs = 1\nstale_if_error_secs = 300\n").replace(
            "kind = \"okra\"\n",
            "kind = \"okra\"\nmax_retries = 0\nbreaker_failure_threshold = 1\nbreaker_open_ms = 60000\n",
        ),
    )
    .await;
    let [cached, other] = <[String; 2]>::try_from(one_request_paths(&gw, 2))
        .ok()
        .unwrap();
    let fresh = gw.get(&cached).await;
    assert_eq!(fresh.header("x-cache"), Some("miss"));
    tokio::time::sleep(Duration::from_millis(1100)).await;

    gw.sandbox.set_faults(
        Vendor::Okra,
        Faults {
            error_rate: 1.0,
            error_status: 503,
            ..Faults::default()
        },
    );
    assert_eq!(gw.get(&other).await.status, 502);
    assert_eq!(circuit(&gw, "okra").await["circuit"]["state"], "open");
    let calls = okra_calls(&gw);

    // The expired snapshot is served instead of the breaker's 503, without calling Okra.
    let stale = gw.get(&cached).await;
    assert_eq!(stale.status, 200, "{}", stale.json);
    assert_eq!(stale.header("x-cache"), Some("stale"));
    assert_eq!(stale.json["data"], fresh.json["data"]);
    assert_eq!(okra_calls(&gw), calls);
    // With nothing to serve, the breaker's answer.
    let open = gw.get(&other).await;
    assert_eq!(open.json["code"], "circuit_open", "{}", open.json);
}
