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
    let pages = usize::try_from(pages).unwrap();
    // All of them counted in the header; the body lists at most the first 100.
    assert_eq!(
        first.header("x-record-warnings"),
        Some((4 * pages).to_string().as_str())
    );
    assert_eq!(warnings.len(), (4 * pages).min(100));
    let listed_pages = warnings.len() / 4;
    assert_eq!(
        count(&warnings, "record_skipped"),
        2 * listed_pages,
        "{warnings:?}"
    );
    assert_eq!(
        count(&warnings, "currency_mismatch"),
        listed_pages,
        "{warnings:?}"
    );
    assert_eq!(
        count(&warnings, "field_ignored"),
        listed_pages,
        "{warnings:?}"
    );
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
    // Its first page may have come before the rest of the pages (first page fast): the built
    // snapshot's first page counts every warning.
    gw.settle().await;
    let warm = gw.get(&format!("{path}?limit=1")).await;
    assert_eq!(warm.header("x-cache"), Some("hit"));
    let pages = gw.sandbox.stats().total(Vendor::Okra);
    assert!(
        pages > 1,
        "the busiest account spans several provider pages"
    );
    check_tolerant_listing(&gw, &path, &account, pages).await;
    assert_eq!(gw.sandbox.stats().total(Vendor::Okra), pages);
    // Counted in the metrics too (process-wide: other tests here add to it, never less).
    let warnings: u64 = warm
        .header("x-record-warnings")
        .and_then(|n| n.parse().ok())
        .unwrap_or_default();
    let metrics = gw
        .http
        .get(format!("{}/metrics", gw.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted: f64 = metrics
        .lines()
        .filter(|l| {
            l.starts_with("gateway_record_warnings_total{") && l.contains("provider=\"okra\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        warnings > 0 && counted >= warnings as f64,
        "{counted} counted, {warnings} served"
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_paged_straight_through_reports_the_warnings_of_the_pages_it_read() {
    let gw = e2e::spawn(&e2e::base_config(
        "okra",
        "[cache]\nmax_snapshot_items = 150\n",
    ))
    .await;
    gw.sandbox.set_faults(
        Vendor::Okra,
        Faults {
            messy_data: true,
            ..Faults::default()
        },
    );
    let account = gw.accounts_with(1000).remove(0);
    let path = format!("/v1/accounts/{}/transactions", account.okra_account_id);
    let page = gw.get(&format!("{path}?limit=30&page=2")).await;
    assert_eq!(page.status, 200, "{}", page.json);
    assert_eq!(page.json["data"].as_array().unwrap().len(), 30);
    assert_eq!(page.json["pagination"]["total"], account.transaction_count);
    // Items 31-60 lie in the first provider page (100 per page): its three unreadable records
    // and its one dropped field are reported, no more.
    let warnings = page.json["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 4, "{warnings:?}");
    assert_eq!(page.json["pagination"]["excluded"], 3);
    assert_eq!(page.header("x-record-warnings"), Some("4"));
    let strict = gw.get(&format!("{path}?limit=30&page=2&strict=true")).await;
    assert_eq!(strict.status, 502, "{}", strict.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_lists_the_first_hundred_warnings_and_the_header_counts_them_all() {
    let gw = messy(Vendor::Okra).await;
    gw.sandbox.reset_stats();
    let path = "/v1/transactions?from=2000-01-01&to=2026-12-31&limit=10";
    let early = gw.get(path).await;
    assert_eq!(early.status, 200, "{}", early.json);
    // A first page answered before the snapshot was built counts the warnings of the provider
    // pages read so far; the built snapshot's counts them all.
    gw.settle().await;
    let listing = gw.get(path).await;
    assert_eq!(listing.header("x-cache"), Some("hit"));
    let pages = usize::try_from(gw.sandbox.stats().total(Vendor::Okra)).unwrap();
    assert!(4 * pages > 100, "{pages} provider pages");
    assert_eq!(listing.json["warnings"].as_array().unwrap().len(), 100);
    assert_eq!(
        listing.header("x-record-warnings"),
        Some((4 * pages).to_string().as_str())
    );
    assert_eq!(listing.json["pagination"]["excluded"], 3 * pages);
}
