//! Fault injection, quotas, request counters, and corrections of an account's history.

use std::time::{Duration, Instant};

use reqwest::Method;
use sandbox::{Faults, Vendor};
use serde_json::json;

use crate::helpers::{TestSandbox, client, spawn};

async fn okra_read(t: &TestSandbox) -> crate::helpers::Answer {
    t.okra(
        "/transactions/getByAccount",
        json!({"account": t.big_account().okra_account_id}),
    )
    .await
}

async fn mono_read(t: &TestSandbox) -> crate::helpers::Answer {
    t.mono(&[("account_id", &t.big_account().mono_account_id)])
        .await
}

#[tokio::test]
async fn latency_is_added_to_vendor_answers_only() {
    let t = spawn().await;
    t.sandbox.set_faults(
        Vendor::Okra,
        Faults {
            latency_ms: 300,
            ..Faults::default()
        },
    );
    let start = Instant::now();
    assert_eq!(okra_read(&t).await.status, 200);
    assert!(start.elapsed() >= Duration::from_millis(300));
    let start = Instant::now();
    assert_eq!(mono_read(&t).await.status, 200);
    t.control(Method::GET, "/_sandbox/accounts", None).await;
    assert!(start.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn error_rate_one_answers_the_chosen_status_in_each_vendor_envelope() {
    let t = spawn().await;
    let faults = Faults {
        error_rate: 1.0,
        error_status: 503,
        ..Faults::default()
    };
    t.sandbox.set_faults(Vendor::Okra, faults.clone());
    t.sandbox.set_faults(Vendor::Mono, faults);
    for _ in 0..3 {
        let a = okra_read(&t).await;
        assert_eq!(a.status, 503);
        assert_eq!(a.json["status"], "error");
        let m = mono_read(&t).await;
        assert_eq!(m.status, 503);
        assert!(m.json["error"].is_string());
    }
    t.sandbox.clear_faults();
    assert_eq!(okra_read(&t).await.status, 200);
}

#[tokio::test]
async fn fail_next_fails_exactly_n_requests_then_recovers() {
    let t = spawn().await;
    t.sandbox.set_faults(
        Vendor::Mono,
        Faults {
            fail_next: 2,
            ..Faults::default()
        },
    );
    assert_eq!(mono_read(&t).await.status, 500);
    assert_eq!(okra_read(&t).await.status, 200, "faults are per vendor");
    assert_eq!(mono_read(&t).await.status, 500);
    assert_eq!(mono_read(&t).await.status, 200);
    assert_eq!(mono_read(&t).await.status, 200);
}

#[tokio::test]
async fn rate_limit_fault_answers_429_with_retry_after() {
    let t = spawn().await;
    let faults = Faults {
        rate_limit_retry_after: Some(7),
        ..Faults::default()
    };
    t.sandbox.set_faults(Vendor::Okra, faults.clone());
    t.sandbox.set_faults(Vendor::Mono, faults);
    let a = okra_read(&t).await;
    assert_eq!(a.status, 429);
    assert_eq!(a.headers["retry-after"], "7");
    assert_eq!(a.json["status"], "error");
    assert_eq!(a.json["type"], "RATE_LIMIT");
    let m = mono_read(&t).await;
    assert_eq!(m.status, 429);
    assert_eq!(m.headers["retry-after"], "7");
    assert!(m.json["error"].is_string());
}

#[tokio::test]
async fn malformed_and_truncated_bodies() {
    let t = spawn().await;
    let whole = okra_read(&t).await;
    t.sandbox.set_faults(
        Vendor::Okra,
        Faults {
            malformed_json: true,
            ..Faults::default()
        },
    );
    let bad = okra_read(&t).await;
    assert_eq!(bad.status, 200);
    assert!(serde_json::from_str::<serde_json::Value>(&bad.text).is_err());

    t.sandbox.set_faults(
        Vendor::Okra,
        Faults {
            truncated_body: true,
            ..Faults::default()
        },
    );
    let cut = okra_read(&t).await;
    assert_eq!(cut.status, 200);
    assert_eq!(cut.text.len(), whole.text.len() / 2);
    assert_eq!(cut.text, whole.text[..whole.text.len() / 2]);
    assert_eq!(
        cut.headers["content-length"],
        cut.text.len().to_string().as_str()
    );
    assert!(serde_json::from_str::<serde_json::Value>(&cut.text).is_err());
}

#[tokio::test]
async fn hang_never_answers_so_the_client_times_out() {
    let t = spawn().await;
    t.sandbox.set_faults(
        Vendor::Mono,
        Faults {
            hang: true,
            ..Faults::default()
        },
    );
    let impatient = client(Some(Duration::from_millis(300)));
    let url = format!(
        "{}/api/v1/financial/account_transactions?account_id={}",
        t.sandbox.mono_base_url(),
        t.big_account().mono_account_id
    );
    let err = impatient
        .get(url)
        .header("Authorization", "test_mono_secret")
        .header("AppId", "mono_test_app")
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    // The other vendor still answers while one request hangs.
    assert_eq!(okra_read(&t).await.status, 200);
    t.sandbox.stop().await;
}

#[tokio::test]
async fn faults_are_set_and_cleared_over_http() {
    let t = spawn().await;
    let set = t
        .control(
            Method::POST,
            "/_sandbox/faults",
            Some(json!({"vendor": "okra", "faults": {"fail_next": 1, "error_status": 502}})),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.text);
    assert_eq!(set.json["okra"]["fail_next"], 1);
    let got = t.control(Method::GET, "/_sandbox/faults", None).await;
    assert_eq!(got.json["okra"]["error_status"], 502);
    assert_eq!(okra_read(&t).await.status, 502);
    assert_eq!(okra_read(&t).await.status, 200);
    t.control(
        Method::POST,
        "/_sandbox/faults",
        Some(json!({"vendor": "mono", "faults": {"error_rate": 1.0}})),
    )
    .await;
    assert_eq!(mono_read(&t).await.status, 500);
    t.control(Method::POST, "/_sandbox/faults/clear", None)
        .await;
    assert_eq!(mono_read(&t).await.status, 200);
    let bad = t
        .control(
            Method::POST,
            "/_sandbox/faults",
            Some(json!({"vendor": "visa", "faults": {}})),
        )
        .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn quota_answers_429_with_retry_after_beyond_the_limit_per_vendor() {
    let t = spawn().await;
    t.sandbox.set_quota(Vendor::Okra, Some(3));
    for _ in 0..3 {
        assert_eq!(okra_read(&t).await.status, 200);
    }
    let limited = okra_read(&t).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.json["type"], "RATE_LIMIT");
    let secs: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&secs), "{secs}");
    assert_eq!(mono_read(&t).await.status, 200, "quotas are per vendor");

    let set = t
        .control(
            Method::POST,
            "/_sandbox/quota",
            Some(json!({"vendor": "mono", "requests_per_minute": 1})),
        )
        .await;
    assert_eq!(set.json["mono"]["requests_per_minute"], 1);
    // Mono's window starts now: one more request is allowed, then 429.
    assert_eq!(mono_read(&t).await.status, 200);
    let m = mono_read(&t).await;
    assert_eq!(m.status, 429);
    assert!(m.json["error"].is_string() && m.headers.contains_key("retry-after"));

    t.control(
        Method::POST,
        "/_sandbox/quota",
        Some(json!({"vendor": "okra", "requests_per_minute": null})),
    )
    .await;
    assert_eq!(okra_read(&t).await.status, 200);
}

#[tokio::test]
async fn counters_count_every_vendor_request_per_route_and_reset() {
    let t = spawn().await;
    okra_read(&t).await;
    t.okra(
        "/sandbox/transactions/getByAccount",
        json!({"account": t.big_account().okra_account_id}),
    )
    .await;
    t.okra_as("/transactions/getByDate", json!({}), None).await; // 401, still counted
    t.sandbox.set_faults(
        Vendor::Mono,
        Faults {
            fail_next: 1,
            ..Faults::default()
        },
    );
    mono_read(&t).await; // faulted, still counted
    mono_read(&t).await;
    t.control(Method::GET, "/_sandbox/accounts", None).await; // never counted

    let stats = t.sandbox.stats();
    assert_eq!(stats.okra["POST /v2/transactions/getByAccount"], 2);
    assert_eq!(stats.okra["POST /v2/transactions/getByDate"], 1);
    assert_eq!(stats.mono["GET /api/v1/financial/account_transactions"], 2);
    assert_eq!(stats.total(Vendor::Okra), 3);
    let over_http = t.control(Method::GET, "/_sandbox/stats", None).await;
    assert_eq!(over_http.json, serde_json::to_value(&stats).unwrap());

    let reset = t.control(Method::POST, "/_sandbox/stats/reset", None).await;
    assert_eq!(reset.status, 200);
    assert_eq!(t.sandbox.stats(), sandbox::Stats::default());
    mono_read(&t).await;
    t.sandbox.reset_stats();
    assert_eq!(t.sandbox.stats().total(Vendor::Mono), 0);
}

#[tokio::test]
async fn a_mutation_corrects_and_removes_postings_in_both_vendors_views() {
    let t = spawn().await;
    let account = t.big_account().clone();
    let okra_before = t.okra_all(&account.okra_account_id).await;

    let changed = t
        .control(
            Method::POST,
            &format!("/_sandbox/accounts/{}/mutations", account.okra_account_id),
            Some(json!({"modify": 2, "remove": 1})),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    let id = |v: &serde_json::Value, vendor: &str| v[vendor].as_str().unwrap().to_owned();
    let removed = &changed.json["removed"][0];
    let modified: Vec<_> = changed.json["modified"].as_array().unwrap().clone();
    assert_eq!(
        (
            modified.len(),
            changed.json["removed"].as_array().unwrap().len()
        ),
        (2, 1)
    );

    let okra_after = t.okra_all(&account.okra_account_id).await;
    assert_eq!(okra_after.len(), okra_before.len() - 1);
    assert!(okra_after.iter().all(|tx| tx.id != id(removed, "okra_id")));
    let mono_after = t.mono_all(&account.mono_account_id).await;
    assert_eq!(mono_after.len(), okra_after.len(), "one ledger, both views");
    for m in &modified {
        let tx = mono_after
            .iter()
            .find(|tx| tx["id"].as_u64() == id(m, "mono_id").parse().ok())
            .unwrap();
        assert!(
            tx["narration"].as_str().unwrap().ends_with("(CORRECTED)"),
            "{tx}"
        );
    }

    // The Mono-style id names the same account; an unknown account or a wrong body is refused.
    let by_mono = t
        .control(
            Method::POST,
            &format!("/_sandbox/accounts/{}/mutations", account.mono_account_id),
            Some(json!({"remove": 1})),
        )
        .await;
    assert_eq!(by_mono.status, 200);
    let unknown = t
        .control(
            Method::POST,
            "/_sandbox/accounts/nope/mutations",
            Some(json!({})),
        )
        .await;
    assert_eq!(unknown.status, 404);
    let wrong = t
        .control(
            Method::POST,
            &format!("/_sandbox/accounts/{}/mutations", account.okra_account_id),
            Some(json!({"delete": 1})),
        )
        .await;
    assert_eq!(wrong.status, 400);
}
