//! Messy vendor data end to end: the sandbox serves pages holding good records in odd shapes
//! and unreadable ones (`Faults::messy_data`); the gateway answers 200 with every good record
//! exact to the kobo and one warning per bad record, or 502 when the caller asks for
//! `strict=true`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panicking helper is a failed test

use e2e::{TestGateway, spawn_default, sums};
use sandbox::{AccountInfo, Faults, Vendor};
use serde_json::Value;

/// A gateway whose embedded sandbox serves `vendor`'s listings the messy way.
async fn messy(vendor: Vendor) -> TestGateway {
    let gw = spawn_default(vendor.as_str()).await;
    gw.sandbox.set_faults(
        vendor,
        Faults {
            messy_data: true,
            ..Faults::default()
        },
    );
    gw
}

/// The account with the most transactions (several provider pages).
fn busiest(gw: &TestGateway) -> AccountInfo {
    gw.accounts_with(1)
        .into_iter()
        .max_by_key(|a| a.transaction_count)
        .unwrap()
}

fn count(warnings: &[Value], code: &str) -> usize {
    warnings.iter().filter(|w| w["code"] == code).count()
}

/// Checks one listing answered from messy data: `pages` provider pages were read, each with
/// three unreadable records and one unreadable ancillary field.
async fn check_tolerant_listing(gw: &TestGateway, path: &str, account: &AccountInfo, pages: u64) {
    let first = gw.get(&format!("{path}?limit=100")).await;
    assert_eq!(first.status, 200, "{}", first.json);
    let warnings = first.json["warnings"].as_array().unwrap().clone();
    assert_eq!(
        first.header("x-record-warnings"),
        Some(warnings.len().to_string().as_str())
    );
    let pages = usize::try_from(pages).unwrap();
    assert_eq!(
        count(&warnings, "record_skipped"),
        2 * pages,
        "{warnings:?}"
    );
    assert_eq!(count(&warnings, "currency_mismatch"), pages, "{warnings:?}");
    assert_eq!(count(&warnings, "field_ignored"), pages, "{warnings:?}");
    assert_eq!(warnings.len(), 4 * pages);
    for w in &warnings {
        assert!(w["field"].as_str().is_some_and(|f| !f.is_empty()), "{w}");
        assert!(w["reason"].as_str().is_some_and(|r| !r.is_empty()), "{w}");
        assert!(w["raw_value"].is_string(), "{w}");
    }
    let pagination = &first.json["pagination"];
    assert_eq!(pagination["total"], account.transaction_count);
    assert_eq!(pagination["excluded"], 3 * pages);

    // Every good record, exact to the kobo, however the vendor spelled its amount.
    let all = gw.walk(path, 100).await;
    assert_eq!(all.len() as u64, account.transaction_count);
    assert_eq!(
        sums(&all),
        (account.debit_total_kobo, account.credit_total_kobo)
    );
    // The record with the unreadable ancillary field is kept, with that field null.
    assert!(
        all.iter()
            .any(|t| t["value_on"].is_null() || t["balance_after"].is_null())
    );

    let strict = gw.get(&format!("{path}?limit=100&strict=true")).await;
    assert_eq!(strict.status, 502, "{}", strict.json);
    assert_eq!(strict.json["code"], "upstream_bad_payload");
    let detail = strict.json["detail"].as_str().unwrap();
    assert!(
        detail.contains("strict=true") && detail.contains("field"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okra_pages_with_bad_records_answer_200_with_a_warning_per_bad_record_and_502_when_strict()
{
    let gw = messy(Vendor::Okra).await;
    let account = busiest(&gw);
    gw.sandbox.reset_stats();
    let path = format!("/v1/accounts/{}/transactions", account.okra_account_id);
    // The snapshot is fetched once; every later request (walk, strict) is a cache hit.
    let warm = gw.get(&format!("{path}?limit=1")).await;
    assert_eq!(warm.status, 200, "{}", warm.json);
    let pages = gw.sandbox.stats().total(Vendor::Okra);
    assert!(
        pages > 1,
        "the busiest account spans several provider pages"
    );
    check_tolerant_listing(&gw, &path, &account, pages).await;
    assert_eq!(gw.sandbox.stats().total(Vendor::Okra), pages);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mono_pages_with_bad_records_answer_200_with_a_warning_per_bad_record_and_502_when_strict()
{
    let gw = messy(Vendor::Mono).await;
    let account = busiest(&gw);
    gw.sandbox.reset_stats();
    let path = format!("/v1/accounts/{}/transactions", account.mono_account_id);
    let warm = gw.get(&format!("{path}?limit=1")).await;
    assert_eq!(warm.status, 200, "{}", warm.json);
    // Mono-style reads an account in one not_paginated call: one page of warnings.
    let pages = gw.sandbox.stats().total(Vendor::Mono);
    assert_eq!(pages, 1);
    check_tolerant_listing(&gw, &path, &account, pages).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_data_has_no_warnings_and_strict_changes_nothing() {
    let gw = spawn_default("okra").await;
    let account = busiest(&gw);
    let path = format!(
        "/v1/accounts/{}/transactions?limit=5",
        account.okra_account_id
    );
    let relaxed = gw.get(&path).await;
    let strict = gw.get(&format!("{path}&strict=true")).await;
    assert_eq!((relaxed.status, strict.status), (200, 200));
    assert_eq!(relaxed.json, strict.json);
    assert_eq!(relaxed.json["warnings"], serde_json::json!([]));
    assert_eq!(relaxed.header("x-record-warnings"), Some("0"));
    assert_eq!(relaxed.json["pagination"]["excluded"], 0);
    let bad = gw.get(&format!("{path}&strict=yes")).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json["parameter"], "strict");
}
