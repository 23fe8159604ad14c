//! The adapter against a local HTTP server (wiremock): the exact requests it sends, how every
//! documented status maps onto `ProviderError`, paging, bulk reads and Data Sync.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: that is a failed test

use std::time::Duration;

use mono_connect::{ApiVersion, MonoConnectConfig, MonoConnectProvider};
use provider::{
    Fault, PageRequest, Provider, ProviderError, RefreshOutcome, RefreshRequest, Scope,
    TransactionQuery,
};
use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "test_sk_5ecret";
const V2: &str = include_str!("fixtures/v2.json");

fn adapter(server: &MockServer, bulk_read: bool) -> MonoConnectProvider {
    let mut config = MonoConnectConfig::new("mc", server.uri().parse().unwrap(), SECRET.into());
    config.bulk_read = bulk_read;
    config.page_size = 2;
    MonoConnectProvider::new(config).unwrap()
}

fn account() -> TransactionQuery {
    TransactionQuery::new(Scope::Account("acc1".into()))
}

fn record(id: &str, amount: i64) -> serde_json::Value {
    json!({"id": id, "type": "credit", "amount": amount, "date": "2024-03-01T10:00:00Z"})
}

fn v2_page(ids: &[&str], next: Option<&str>) -> ResponseTemplate {
    let data: Vec<_> = ids.iter().map(|id| record(id, 100)).collect();
    ResponseTemplate::new(200).set_body_json(json!({
        "status": "successful", "message": "ok", "data": data,
        "meta": {"total": 3, "page": 1, "previous": null, "next": next},
    }))
}

#[tokio::test]
async fn a_page_is_one_exact_request_with_the_key_header() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/accounts/acc1/transactions"))
        .and(header("mono-sec-key", SECRET))
        .and(query_param("paginate", "true"))
        .and(query_param("limit", "50"))
        .and(query_param("page", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(V2, "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    let page = adapter(&server, true)
        .list_page(&account().with_page(PageRequest::new(1, 50)))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].amount.minor(), 500);
    assert_eq!(
        (page.total, page.next_page, page.total_pages),
        (Some(307), Some(2), Some(7))
    );
}

#[tokio::test]
async fn the_legacy_and_v1_paths_are_asked_when_configured() {
    for (api, expected) in [
        (ApiVersion::V1, "/v1/accounts/acc1/transactions"),
        (ApiVersion::Legacy, "/accounts/acc1/transactions"),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(expected))
            .respond_with(v2_page(&["a"], None))
            .expect(1)
            .mount(&server)
            .await;
        let mut config = MonoConnectConfig::new("mc", server.uri().parse().unwrap(), SECRET.into());
        config.api = api;
        let listing = MonoConnectProvider::new(config)
            .unwrap()
            .list_all(&account())
            .await
            .unwrap();
        assert_eq!(listing.items.len(), 1);
    }
}

#[tokio::test]
async fn a_bulk_read_is_one_paginate_false_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(query_param("paginate", "false"))
        .respond_with(v2_page(&["a", "b", "c"], None))
        .expect(1)
        .mount(&server)
        .await;
    let listing = adapter(&server, true).list_all(&account()).await.unwrap();
    assert_eq!(listing.items.len(), 3);
}

#[tokio::test]
async fn without_bulk_reads_pages_are_walked_by_the_next_urls_page_number() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(query_param("page", "1"))
        .respond_with(v2_page(
            &["a", "b"],
            Some("https://api.withmono.com/v2/acc1/transactions?page=2"),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(query_param("page", "2"))
        .and(query_param("limit", "2"))
        .respond_with(v2_page(&["c"], None))
        .expect(1)
        .mount(&server)
        .await;
    let listing = adapter(&server, false).list_all(&account()).await.unwrap();
    let ids: Vec<_> = listing
        .items
        .iter()
        .map(|t| t.provider_transaction_id.as_str())
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
}

#[tokio::test]
async fn a_next_page_that_does_not_advance_fails_rather_than_truncates() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(v2_page(&["a", "b"], Some("?page=1")))
        .mount(&server)
        .await;
    let error = adapter(&server, false)
        .list_all(&account())
        .await
        .unwrap_err();
    assert!(matches!(error, ProviderError::BadPayload { .. }), "{error}");
}

#[tokio::test]
async fn every_documented_status_maps_onto_its_error() {
    let server = MockServer::start().await;
    for status in [
        400u16, 401, 402, 403, 404, 409, 429, 500, 502, 503, 504, 302,
    ] {
        server.reset().await;
        let mut response = ResponseTemplate::new(status)
            .set_body_json(json!({"status": "failed", "message": format!("m{status}")}));
        if status == 429 {
            response = response.insert_header("Retry-After", "7");
        }
        Mock::given(method("GET"))
            .respond_with(response)
            .mount(&server)
            .await;
        let error = adapter(&server, true)
            .list_all(&account())
            .await
            .unwrap_err();
        match status {
            401..=403 => assert_eq!(error.fault(), Fault::Config, "{status}"),
            404 => assert!(matches!(error, ProviderError::NotFound { .. })),
            429 => assert_eq!(error.retry_after(), Some(Duration::from_secs(7))),
            500..=504 => assert!(error.is_retryable(), "{status}"),
            302 => assert!(matches!(error, ProviderError::BadPayload { .. })),
            _ => assert!(matches!(error, ProviderError::Rejected { .. }), "{status}"),
        }
        if !matches!(status, 302 | 429) {
            assert!(error.to_string().contains(&format!("m{status}")), "{error}");
        }
    }
}

fn sync_answer(code: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "status": if code == "SYNC_SUCCESSFUL" { "successful" } else { "failed" },
        "hasNewData": true, "code": code, "message": null,
    }))
}

fn refresh_request() -> RefreshRequest {
    RefreshRequest {
        account_id: "acc1".into(),
        callback_url: None,
    }
}

#[tokio::test]
async fn data_sync_is_the_refresh_and_is_sent_once_per_two_minutes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/accounts/acc1/sync"))
        .and(header("mono-sec-key", SECRET))
        .respond_with(sync_answer("SYNC_SUCCESSFUL"))
        .expect(1)
        .mount(&server)
        .await;
    let mc = adapter(&server, true);
    assert_eq!(
        mc.refresh(&refresh_request()).await.unwrap(),
        RefreshOutcome::Completed
    );
    // Within two minutes Mono would refuse a second manual sync: the last one is that fresh.
    assert_eq!(
        mc.refresh(&refresh_request()).await.unwrap(),
        RefreshOutcome::Completed
    );
}

#[tokio::test]
async fn an_incomplete_statement_is_synced_again_allowing_it() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(query_param("allow_incomplete_statement", "true"))
        .respond_with(sync_answer("SYNC_SUCCESSFUL"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(sync_answer("INCOMPLETE_STATEMENT_ERROR"))
        .expect(1)
        .mount(&server)
        .await;
    let outcome = adapter(&server, true)
        .refresh(&refresh_request())
        .await
        .unwrap();
    assert_eq!(outcome, RefreshOutcome::Completed);
}

#[tokio::test]
async fn sync_failures_say_whose_they_are() {
    for (code, retryable) in [("REAUTHORISATION_REQUIRED", false), ("SYNC_ERROR", true)] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(sync_answer(code))
            .mount(&server)
            .await;
        let error = adapter(&server, true)
            .refresh(&refresh_request())
            .await
            .unwrap_err();
        assert_eq!(error.is_retryable(), retryable, "{code}: {error}");
        assert!(error.to_string().contains(code), "{error}");
    }
}
