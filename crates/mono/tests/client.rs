//! The adapter against a local HTTP server (wiremock): the exact requests it sends for each
//! capability, and how every documented failure maps onto `ProviderError`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: that is a failed test

use std::collections::BTreeSet;
use std::time::Duration;

use mono::{MonoConfig, MonoProvider};
use provider::{
    DateRange, Direction, Fault, PageRequest, Provider, ProviderError, RefreshOutcome,
    RefreshRequest, RefreshStyle, Scope, ScopeKind, TransactionQuery,
};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const PATH: &str = "/api/v1/financial/account_transactions";
const SECRET: &str = "test_sk_5ecret";
const APP_ID: &str = "app_1d";
const DOCS_SAMPLE: &str = include_str!("fixtures/account_transactions.json");

fn config(server: &MockServer) -> MonoConfig {
    MonoConfig::new(
        "mono-test",
        server.uri().parse().unwrap(),
        SECRET.into(),
        APP_ID.into(),
    )
}

fn adapter(server: &MockServer) -> MonoProvider {
    MonoProvider::new(config(server)).unwrap()
}

/// A server that answers every GET on the endpoint with `response`.
async fn serving(response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(PATH))
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

fn ok_json(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.to_owned(), "application/json")
}

fn account(id: &str) -> TransactionQuery {
    TransactionQuery::new(Scope::Account(id.into()))
}

fn day(d: u8) -> time::Date {
    time::Date::from_calendar_date(2024, time::Month::March, d).unwrap()
}

/// The requests the server received, each checked for the method, path and both headers
/// (raw secret, no `Bearer`), returned as their query pairs.
async fn requests(server: &MockServer) -> Vec<Vec<(String, String)>> {
    let received = server.received_requests().await.unwrap();
    received
        .iter()
        .map(|r| {
            assert_eq!(r.method.as_str(), "GET");
            assert_eq!(r.url.path(), PATH);
            let auth: Vec<_> = r.headers.get_all("authorization").iter().collect();
            assert_eq!(auth.len(), 1);
            assert_eq!(auth[0].to_str().unwrap(), SECRET, "raw key, no Bearer");
            assert!(!auth[0].to_str().unwrap().contains("Bearer"));
            assert_eq!(r.headers.get("appid").unwrap().to_str().unwrap(), APP_ID);
            r.url
                .query_pairs()
                .map(|(k, v)| (k.into(), v.into()))
                .collect()
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

/// `n` vendor records with ids `first..first+n`, alternating debit/credit, amount = id naira.
fn records(ids: std::ops::Range<u32>) -> Vec<Value> {
    ids.map(|id| {
        json!({
            "id": id,
            "transaction_date": "2024-03-01",
            "value_date": "2024-03-01",
            "trans_type": if id % 2 == 0 { "credit" } else { "debit" },
            "bank_name": "Guaranty Trust Bank",
            "amount": format!("{id}.00"),
            "available_balance": "0",
            "reference": "0",
            "narration": format!("record {id}")
        })
    })
    .collect()
}

/// Serves `total` records in pages, as the vendor does, honouring `page` and `length`.
struct Paged {
    total: u32,
}

impl Respond for Paged {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let param = |name: &str| {
            request
                .url
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.parse::<u32>().unwrap())
        };
        let page = param("page").unwrap_or(1);
        let length = param("length").unwrap_or(10);
        let pages = self.total.div_ceil(length);
        let first = (page - 1) * length + 1;
        let last = (first + length).min(self.total + 1);
        let next = if page < pages {
            json!(page + 1)
        } else {
            json!("")
        };
        let previous = if page > 1 { json!(page - 1) } else { json!("") };
        ResponseTemplate::new(200).set_body_json(json!({
            "entity": {
                "transactions": records(first..last),
                "total": self.total,
                "previous_page": previous,
                "next_page": next,
                "total_pages": pages,
                "current_page": page
            }
        }))
    }
}

#[tokio::test]
async fn list_page_sends_account_page_and_length() {
    let server = serving(ok_json(DOCS_SAMPLE)).await;
    let page = adapter(&server)
        .list_page(&account("acc_1").with_page(PageRequest::new(1, 50)))
        .await
        .unwrap();
    assert_eq!(
        requests(&server).await,
        [pairs(&[
            ("account_id", "acc_1"),
            ("page", "1"),
            ("length", "50")
        ])]
    );
    assert_eq!(page.items.len(), 3);
    assert_eq!((page.page, page.limit), (1, 50));
    assert_eq!(
        (page.total, page.total_pages, page.next_page),
        (Some(115), Some(2), Some(2))
    );
    assert!(page.items.iter().all(|t| t.account_id == "acc_1"));
    assert!(page.items.iter().all(|t| &*t.provider == "mono-test"));
}

#[tokio::test]
async fn list_page_sends_each_filter_combination() {
    let range = DateRange::new(Some(day(1)), Some(day(31)));
    let cases: Vec<(TransactionQuery, Vec<(&str, &str)>)> = vec![
        (
            account("a").with_range(range),
            vec![("start_date", "2024-03-01"), ("end_date", "2024-03-31")],
        ),
        (
            account("a").with_range(DateRange::new(Some(day(5)), None)),
            vec![("start_date", "2024-03-05")],
        ),
        (
            account("a").with_range(DateRange::new(None, Some(day(9)))),
            vec![("end_date", "2024-03-09")],
        ),
        (
            account("a").with_direction(Some(Direction::Debit)),
            vec![("trans_type", "debit")],
        ),
        (
            account("a")
                .with_range(range)
                .with_direction(Some(Direction::Credit)),
            vec![
                ("start_date", "2024-03-01"),
                ("end_date", "2024-03-31"),
                ("trans_type", "credit"),
            ],
        ),
    ];
    for (query, filters) in cases {
        let server = serving(ok_json(DOCS_SAMPLE)).await;
        let query = query.with_page(PageRequest::new(3, 20));
        adapter(&server).list_page(&query).await.unwrap();
        let mut want = vec![("account_id", "a")];
        want.extend(filters);
        want.extend([("page", "3"), ("length", "20")]);
        assert_eq!(requests(&server).await, [pairs(&want)], "{query:?}");
    }
}

#[tokio::test]
async fn list_page_clamps_length_to_the_vendor_maximum() {
    let server = serving(ok_json(DOCS_SAMPLE)).await;
    let page = adapter(&server)
        .list_page(&account("a").with_page(PageRequest::new(2, 1000)))
        .await
        .unwrap();
    assert_eq!(page.limit, 200);
    assert_eq!(
        requests(&server).await,
        [pairs(&[
            ("account_id", "a"),
            ("page", "2"),
            ("length", "200")
        ])]
    );
}

#[tokio::test]
async fn other_scopes_are_unsupported_and_send_nothing() {
    let server = serving(ok_json(DOCS_SAMPLE)).await;
    let mono = adapter(&server);
    for (scope, what) in [
        (Scope::Customer("c".into()), "customer scope"),
        (Scope::Nuban("0123456789".into()), "nuban scope"),
        (Scope::All, "all scope"),
    ] {
        let query = TransactionQuery::new(scope);
        for result in [
            mono.list_page(&query).await.map(|_| ()),
            mono.list_all(&query).await.map(|_| ()),
        ] {
            match result.unwrap_err() {
                ProviderError::Unsupported {
                    provider,
                    capability,
                } => {
                    assert_eq!(provider, "mono-test");
                    assert_eq!(capability, what);
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert!(requests(&server).await.is_empty());
}

#[tokio::test]
async fn list_all_in_bulk_is_one_not_paginated_call() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "entity": {
                "transactions": records(1..36),
                "total": 35, "previous_page": "", "next_page": null,
                "total_pages": 1, "current_page": 1
            }
        })))
        .mount(&server)
        .await;
    let query = account("acc_1")
        .with_range(DateRange::new(Some(day(1)), None))
        .with_direction(Some(Direction::Debit));
    let all = adapter(&server).list_all(&query).await.unwrap();
    assert_eq!(all.items.len(), 35);
    assert_eq!(
        requests(&server).await,
        [pairs(&[
            ("account_id", "acc_1"),
            ("start_date", "2024-03-01"),
            ("trans_type", "debit"),
            ("response_mode", "not_paginated"),
        ])]
    );
}

#[tokio::test]
async fn list_all_paginated_walks_next_page_without_duplicate_or_gap() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(PATH))
        .respond_with(Paged { total: 35 })
        .mount(&server)
        .await;
    let mono = MonoProvider::new(MonoConfig {
        bulk_read: false,
        page_size: 10,
        ..config(&server)
    })
    .unwrap();
    assert!(!mono.capabilities().bulk_read);
    let all = mono.list_all(&account("acc_1")).await.unwrap();
    let ids: Vec<String> = all
        .items
        .iter()
        .map(|t| t.provider_transaction_id.clone())
        .collect();
    let want: Vec<String> = (1..=35).map(|i| i.to_string()).collect();
    assert_eq!(ids, want, "in order, no duplicate, no gap");
    let requests = requests(&server).await;
    let want: Vec<_> = (1..=4)
        .map(|p| {
            let p = p.to_string();
            pairs(&[("account_id", "acc_1"), ("page", &p), ("length", "10")])
        })
        .collect();
    assert_eq!(requests, want);
    let unique: BTreeSet<_> = all.items.iter().map(|t| t.id.clone()).collect();
    assert_eq!(unique.len(), 35);
}

#[tokio::test]
async fn list_all_paginated_uses_the_configured_page_size() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(PATH))
        .respond_with(Paged { total: 35 })
        .mount(&server)
        .await;
    let mono = MonoProvider::new(MonoConfig {
        bulk_read: false,
        ..config(&server)
    })
    .unwrap();
    assert_eq!(mono.list_all(&account("a")).await.unwrap().items.len(), 35);
    assert_eq!(
        requests(&server).await,
        [pairs(&[
            ("account_id", "a"),
            ("page", "1"),
            ("length", "100")
        ])]
    );
}

#[tokio::test]
async fn list_all_refuses_a_next_page_that_does_not_advance() {
    for next in [json!(1), json!(0.5), json!("1")] {
        let server = serving(ResponseTemplate::new(200).set_body_json(json!({
            "entity": {"transactions": records(1..3), "total": 99, "previous_page": "",
                       "next_page": next, "total_pages": 50, "current_page": 1}
        })))
        .await;
        let mono = MonoProvider::new(MonoConfig {
            bulk_read: false,
            ..config(&server)
        })
        .unwrap();
        let err = mono.list_all(&account("a")).await.unwrap_err();
        assert!(
            matches!(err, ProviderError::BadPayload { .. }),
            "{next}: {err:?}"
        );
        assert_eq!(requests(&server).await.len(), 1);
    }
}

#[tokio::test]
async fn refresh_asks_for_a_webhook_delivery() {
    let server = serving(ok_json(r#"{"entity":"processing"}"#)).await;
    let outcome = adapter(&server)
        .refresh(&RefreshRequest {
            account_id: "acc_1".into(),
            callback_url: Some("https://gw.example/v1/hooks/mono?job=7&x=a b".into()),
        })
        .await
        .unwrap();
    assert_eq!(outcome, RefreshOutcome::AwaitingDelivery);
    assert_eq!(
        requests(&server).await,
        [pairs(&[
            ("account_id", "acc_1"),
            ("response_mode", "webhook"),
            (
                "callback_url",
                "https://gw.example/v1/hooks/mono?job=7&x=a b"
            ),
        ])]
    );
}

#[tokio::test]
async fn refresh_needs_a_callback_url() {
    let server = serving(ok_json("{}")).await;
    for callback_url in [None, Some(String::new()), Some("  ".into())] {
        let err = adapter(&server)
            .refresh(&RefreshRequest {
                account_id: "acc_1".into(),
                callback_url,
            })
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::Config { .. }), "{err:?}");
    }
    assert!(requests(&server).await.is_empty());
}

#[tokio::test]
async fn refresh_errors() {
    let request = RefreshRequest {
        account_id: "acc_1".into(),
        callback_url: Some("http://cb".into()),
    };
    let server = serving(ok_json(r#"{"error":"webhook not enabled"}"#)).await;
    match adapter(&server).refresh(&request).await.unwrap_err() {
        ProviderError::BadPayload { message, .. } => {
            assert!(message.contains("webhook not enabled"))
        }
        other => panic!("{other:?}"),
    }
    let server =
        serving(ResponseTemplate::new(401).set_body_json(json!({"error": "bad key"}))).await;
    assert!(matches!(
        adapter(&server).refresh(&request).await.unwrap_err(),
        ProviderError::Unauthorized { status: 401, .. }
    ));
}

/// Sends one `list_page` to a server answering `response` and returns the error.
async fn failure(response: ResponseTemplate) -> ProviderError {
    let server = serving(response).await;
    let err = adapter(&server).list_page(&account("a")).await.unwrap_err();
    assert_eq!(err.provider(), "mono-test");
    err
}

fn vendor_error(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({ "error": message }))
}

#[tokio::test]
async fn every_documented_status_maps_onto_its_error() {
    for status in [401, 402] {
        match failure(vendor_error(status, "no")).await {
            e @ ProviderError::Unauthorized { .. } => {
                assert_eq!(e.upstream_status(), Some(status));
                assert_eq!(e.fault(), Fault::Config);
                assert!(e.to_string().contains("no"));
            }
            other => panic!("{status}: {other:?}"),
        }
    }
    for status in [400, 405] {
        match failure(vendor_error(status, "Invalid account_id")).await {
            ProviderError::Rejected {
                status: got,
                message,
                ..
            } => {
                assert_eq!(got, status);
                assert_eq!(message, "Invalid account_id");
            }
            other => panic!("{status}: {other:?}"),
        }
    }
    match failure(vendor_error(404, "account not found")).await {
        ProviderError::NotFound { message, .. } => assert_eq!(message, "account not found"),
        other => panic!("{other:?}"),
    }
    for status in [408, 424, 500, 502, 503, 504] {
        match failure(vendor_error(status, "later")).await {
            e @ ProviderError::Unavailable { .. } => {
                assert_eq!(e.upstream_status(), Some(status));
                assert!(e.is_retryable());
            }
            other => panic!("{status}: {other:?}"),
        }
    }
    // Redirects are not followed (our headers go nowhere else): a bad payload.
    match failure(ResponseTemplate::new(302).insert_header("Location", "http://elsewhere.example/"))
        .await
    {
        ProviderError::BadPayload { status, .. } => assert_eq!(status, Some(302)),
        other => panic!("{other:?}"),
    }
    // A 5xx that is not even JSON.
    match failure(ResponseTemplate::new(503).set_body_string("<html>Service Unavailable</html>"))
        .await
    {
        ProviderError::Unavailable { message, .. } => assert!(message.contains("Service")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn rate_limits_carry_retry_after_in_seconds_or_as_a_date() {
    let err = failure(vendor_error(429, "slow down").insert_header("Retry-After", "30")).await;
    assert!(matches!(err, ProviderError::RateLimited { .. }));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));

    let at = time::OffsetDateTime::now_utc() + Duration::from_secs(120);
    let date = at
        .format(time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        ))
        .unwrap();
    let err = failure(vendor_error(429, "slow down").insert_header("Retry-After", date)).await;
    let wait = err.retry_after().unwrap();
    assert!(
        wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
        "{wait:?}"
    );

    let err = failure(vendor_error(429, "slow down")).await;
    assert!(matches!(
        err,
        ProviderError::RateLimited {
            retry_after: None,
            ..
        }
    ));
}

#[tokio::test]
async fn unreadable_bodies_and_errors_on_200_are_bad_payloads() {
    for body in ["not json", "", "{\"entity\": {\"transactions\": [", "[1,2]"] {
        match failure(ok_json(body)).await {
            ProviderError::BadPayload { status, .. } => assert_eq!(status, Some(200)),
            other => panic!("{body:?}: {other:?}"),
        }
    }
    match failure(ok_json(r#"{"error":"Account has been unlinked"}"#)).await {
        ProviderError::BadPayload {
            status, message, ..
        } => {
            assert_eq!(status, Some(200));
            assert!(message.contains("Account has been unlinked"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_bad_record_is_a_warning_naming_it_and_the_good_ones_are_kept() {
    let mut bad = records(1..4);
    bad[1]["trans_type"] = json!("reversal");
    let server = serving(ResponseTemplate::new(200).set_body_json(json!({
        "entity": {"transactions": bad, "total": 3, "previous_page": "", "next_page": "",
                   "total_pages": 1, "current_page": 1}
    })))
    .await;
    let page = adapter(&server).list_page(&account("a")).await.unwrap();
    let kept: Vec<_> = page
        .items
        .iter()
        .map(|t| t.provider_transaction_id.as_str())
        .collect();
    assert_eq!(kept, ["1", "3"]);
    let warned: Vec<_> = page
        .warnings
        .iter()
        .map(|w| {
            (
                w.code.as_str(),
                w.record.as_str(),
                w.field.as_str(),
                w.raw_value.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        warned,
        [("record_skipped", "2", "trans_type", Some("reversal"))]
    );
    assert_eq!(page.next_page, None);
}

#[tokio::test]
async fn timeouts_are_unavailable() {
    let server = serving(ok_json(DOCS_SAMPLE).set_delay(Duration::from_secs(5))).await;
    let mono = MonoProvider::new(MonoConfig {
        request_timeout: Duration::from_millis(200),
        ..config(&server)
    })
    .unwrap();
    match mono.list_page(&account("a")).await.unwrap_err() {
        e @ ProviderError::Unavailable { status: None, .. } => {
            assert!(e.to_string().contains("timed out"), "{e}");
            assert!(e.is_retryable());
            assert!(!e.to_string().contains(SECRET));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn refused_connections_are_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config = MonoConfig::new(
        "mono-test",
        format!("http://{addr}").parse().unwrap(),
        SECRET.into(),
        APP_ID.into(),
    );
    let err = MonoProvider::new(config)
        .unwrap()
        .list_page(&account("a"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Unavailable { status: None, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn identity_capabilities_and_no_secret_in_debug() {
    let server = MockServer::start().await;
    let mono = adapter(&server);
    assert_eq!(mono.name(), "mono-test");
    assert_eq!(mono.kind(), "mono");
    let caps = mono.capabilities();
    assert_eq!(caps.scopes, [ScopeKind::Account]);
    assert!(caps.filters_dates(ScopeKind::Account));
    assert!(caps.filters_direction(ScopeKind::Account));
    assert!(!caps.get_by_id);
    assert_eq!((caps.default_page_size, caps.max_page_size), (10, 200));
    assert!(caps.bulk_read);
    assert_eq!(caps.refresh, RefreshStyle::Webhook);

    let debug = format!("{mono:?} {:?}", config(&server));
    assert!(
        !debug.contains(SECRET) && !debug.contains(APP_ID),
        "{debug}"
    );
    assert!(
        mono.get_transaction("1454").await.unwrap_err().fault() == Fault::Caller,
        "no get by id"
    );
}

#[tokio::test]
async fn unusable_configurations_are_config_errors() {
    let base: url::Url = "http://127.0.0.1:9".parse().unwrap();
    let cases = [
        MonoConfig::new("m", base.clone(), "".into(), APP_ID.into()),
        MonoConfig::new("m", base.clone(), SECRET.into(), " ".into()),
        MonoConfig::new("m", base.clone(), "sk\nX-Evil: 1".into(), APP_ID.into()),
        MonoConfig::new("", base.clone(), SECRET.into(), APP_ID.into()),
        MonoConfig::new(
            "m",
            "ftp://h/".parse().unwrap(),
            SECRET.into(),
            APP_ID.into(),
        ),
    ];
    for config in cases {
        let err = MonoProvider::new(config).unwrap_err();
        assert!(matches!(err, ProviderError::Config { .. }), "{err:?}");
        assert!(!err.to_string().contains("sk\nX-Evil"));
    }
}

#[tokio::test]
async fn parse_delivery_maps_onto_the_expected_account() {
    let server = MockServer::start().await;
    let mono = adapter(&server);
    let body = json!({
        "account_id": "acc_9",
        "entity": {"transactions": records(1..4), "total": 3, "previous_page": "",
                   "next_page": "", "total_pages": 1, "current_page": 1}
    })
    .to_string();
    let delivery = mono.parse_delivery("acc_1", body.as_bytes()).unwrap();
    assert_eq!(delivery.account_id.as_deref(), Some("acc_9"));
    assert_eq!(delivery.transactions.len(), 3);
    assert!(
        delivery
            .transactions
            .iter()
            .all(|t| t.account_id == "acc_1")
    );
    for garbage in [&b"garbage"[..], b"", b"{\"entity\":7}"] {
        assert!(matches!(
            mono.parse_delivery("acc_1", garbage).unwrap_err(),
            ProviderError::BadPayload { .. }
        ));
    }
}
