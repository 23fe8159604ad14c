//! The Okra client against a local HTTP server: the exact request for every capability and the
//! mapping of every failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use okra::{OkraConfig, OkraProvider, PollPolicy};
use provider::{
    Currency, DateRange, Direction, PageRequest, Provider, ProviderError, RefreshOutcome,
    RefreshRequest, RefreshStyle, Scope, ScopeKind, Secret, TransactionQuery,
};
use serde_json::{Value, json};
use time::macros::date;
use url::Url;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "sk_test_okra_0123456789";
const BEARER: &str = "Bearer sk_test_okra_0123456789";

fn config(server: &MockServer) -> OkraConfig {
    let mut config = OkraConfig::new(
        "okra-ng",
        Url::parse(&format!("{}/v2", server.uri())).unwrap(),
        Secret::new(SECRET),
    );
    config.refresh_poll = PollPolicy {
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        deadline: Duration::from_secs(5),
    };
    config
}

async fn setup() -> (MockServer, OkraProvider) {
    let server = MockServer::start().await;
    let provider = OkraProvider::new(config(&server)).unwrap();
    (server, provider)
}

fn record(id: &str, amount: Value) -> Value {
    json!({
        "_id": format!("m_{id}"), "id": id,
        "notes": {"desc": format!("narration {id}"), "topics": []},
        "trans_date": "2024-03-05T00:00:00.000Z", "cleared_date": "",
        "unformatted_trans_date": "05/03/2024", "unformatted_cleared_date": "",
        "debit": amount, "ref": format!(" REF-{id} "),
        "bank": {"name": "GTBank", "icon": ""},
        "customer": {"_id": "cus1", "name": "Ada"},
        "account": {"_id": "acc1", "name": "Ada Current"},
        "ner": {"TRANS_TYPE": ""}, "__v": 0
    })
}

fn page(records: Vec<Value>, page: u32, next: Value, total: u64) -> Value {
    json!({
        "status": "success",
        "message": "Transactions retrieved succesfully",
        "data": {
            "pagination": {"totalDocs": total, "limit": 100, "hasPrevPage": page > 1,
                "hasNextPage": !next.is_null(), "page": page, "totalPages": 2,
                "pagingCounter": 1, "nextPage": next},
            "transaction": records
        }
    })
}

fn okra_post(endpoint: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path(format!("/v2/transactions/{endpoint}")))
        .and(header("authorization", BEARER))
        .and(header("content-type", "application/json"))
}

fn query(scope: Scope, page: u32, limit: u32) -> TransactionQuery {
    TransactionQuery::new(scope).with_page(PageRequest { page, limit })
}

// ---- every capability sends the documented request ----

#[tokio::test]
async fn by_account_posts_account_page_and_clamped_limit() {
    let (server, okra) = setup().await;
    okra_post("getByAccount")
        .and(body_json(
            json!({"account": "acc1", "page": 2, "limit": 100}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(
            vec![record("t1", json!(52.5))],
            2,
            json!(null),
            101,
        )))
        .expect(1)
        .mount(&server)
        .await;

    let got = okra
        .list_page(&query(Scope::Account("acc1".into()), 2, 500))
        .await
        .unwrap();
    assert_eq!(
        (got.page, got.limit, got.total, got.next_page),
        (2, 100, Some(101), None)
    );
    let t = &got.items[0];
    assert_eq!(&*t.provider, "okra-ng");
    assert_eq!(t.provider_transaction_id, "t1");
    assert_eq!((t.direction, t.amount.minor()), (Direction::Debit, 5250));
    assert_eq!(t.amount.currency(), Currency::NGN);
    assert_eq!(t.booked_on, date!(2024 - 03 - 05));
    assert_eq!(t.account_id, "acc1");
    assert_eq!(t.customer_id.as_deref(), Some("cus1"));
    assert_eq!(t.reference.as_deref(), Some("REF-t1"));
    assert_eq!(t.narration, "narration t1");
    assert_eq!(t.bank.as_deref(), Some("GTBank"));
}

#[tokio::test]
async fn by_customer_posts_customer_id_and_the_range() {
    let (server, okra) = setup().await;
    okra_post("getByCustomerDate")
        .and(body_json(
            json!({"customer_id": "cus1", "from": "2024-01-01",
            "to": "2024-01-31", "page": 1, "limit": 10}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(vec![], 1, json!(null), 0)))
        .expect(1)
        .mount(&server)
        .await;
    let q = query(Scope::Customer("cus1".into()), 1, 10).with_range(DateRange::new(
        Some(date!(2024 - 01 - 01)),
        Some(date!(2024 - 01 - 31)),
    ));
    assert!(okra.list_page(&q).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn open_range_ends_are_sent_as_wide_bounds() {
    let (server, okra) = setup().await;
    okra_post("getByCustomerDate")
        .and(body_json(
            json!({"customer_id": "cus1", "from": "1970-01-01",
            "to": "9999-12-31", "page": 1, "limit": 50}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(vec![], 1, json!(null), 0)))
        .expect(1)
        .mount(&server)
        .await;
    okra_post("getByDate")
        .and(body_json(
            json!({"from": "2024-02-01", "to": "9999-12-31", "page": 3, "limit": 20}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(vec![], 3, json!(null), 0)))
        .expect(1)
        .mount(&server)
        .await;
    okra.list_page(&TransactionQuery::new(Scope::Customer("cus1".into())))
        .await
        .unwrap();
    let q = query(Scope::All, 3, 20).with_range(DateRange::new(Some(date!(2024 - 02 - 01)), None));
    okra.list_page(&q).await.unwrap();
}

#[tokio::test]
async fn by_nuban_posts_nuban_with_limit_at_least_one() {
    let (server, okra) = setup().await;
    okra_post("getByNuban")
        .and(body_json(
            json!({"nuban": "0123456789", "page": 1, "limit": 1}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "success", "message": "ok",
            "data": {"pagination": {"totalDocs": "465", "limit": "1", "page": "1",
                        "totalPages": "465", "nextPage": "2"},
                     "transaction": [{"id": "n1", "account": "acc1", "debit": null,
                        "credit": 3.21, "trans_date": "2024-03-05", "branch": ""}]}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let got = okra
        .list_page(&query(Scope::Nuban("0123456789".into()), 0, 0))
        .await
        .unwrap();
    assert_eq!(
        (got.page, got.limit, got.total, got.next_page),
        (1, 1, Some(465), Some(2))
    );
    assert_eq!(
        (got.items[0].direction, got.items[0].amount.minor()),
        (Direction::Credit, 321)
    );
}

#[tokio::test]
async fn list_all_walks_every_page_with_the_largest_page_size() {
    let (server, okra) = setup().await;
    okra_post("getByAccount")
        .and(body_json(
            json!({"account": "acc1", "page": 1, "limit": 100}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(
            vec![
                record("t1", json!(0.01)),
                record("t2", json!(0.30000000000000004)),
            ],
            1,
            json!(2),
            3,
        )))
        .expect(1)
        .mount(&server)
        .await;
    okra_post("getByAccount")
        .and(body_json(
            json!({"account": "acc1", "page": 2, "limit": 100}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(
            vec![record("t3", json!("1,200.50"))],
            2,
            json!(null),
            3,
        )))
        .expect(1)
        .mount(&server)
        .await;
    let all = okra
        .list_all(&TransactionQuery::new(Scope::Account("acc1".into())))
        .await
        .unwrap();
    let kobo: Vec<i64> = all.items.iter().map(|t| t.amount.minor()).collect();
    assert_eq!(kobo, vec![1, 30, 120050]);
}

#[tokio::test]
async fn get_by_id_posts_the_id_and_an_empty_list_is_not_found() {
    let (server, okra) = setup().await;
    okra_post("getById")
        .and(body_json(json!({"id": "t1"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(
            vec![record("t1", json!(0.01))],
            1,
            json!(null),
            1,
        )))
        .expect(1)
        .mount(&server)
        .await;
    okra_post("getById")
        .and(body_json(json!({"id": "nope"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(vec![], 1, json!(null), 0)))
        .expect(1)
        .mount(&server)
        .await;
    let t = okra.get_transaction("t1").await.unwrap();
    assert_eq!(
        (t.provider_transaction_id.as_str(), t.amount.minor()),
        ("t1", 1)
    );
    assert!(matches!(
        okra.get_transaction("nope").await,
        Err(ProviderError::NotFound { provider, .. }) if provider == "okra-ng"
    ));
}

#[tokio::test]
async fn capabilities_and_identity() {
    let (_server, okra) = setup().await;
    assert_eq!(okra.kind(), "okra");
    assert_eq!(okra.name(), "okra-ng");
    let caps = okra.capabilities();
    assert_eq!(
        caps.scopes,
        vec![
            ScopeKind::Account,
            ScopeKind::Customer,
            ScopeKind::Nuban,
            ScopeKind::All
        ]
    );
    assert!(caps.filters_dates(ScopeKind::Customer) && caps.filters_dates(ScopeKind::All));
    assert!(!caps.filters_dates(ScopeKind::Account) && !caps.filters_dates(ScopeKind::Nuban));
    assert!(caps.direction_filter.is_empty());
    assert!(caps.get_by_id && !caps.bulk_read);
    assert_eq!((caps.default_page_size, caps.max_page_size), (10, 100));
    assert_eq!(caps.refresh, RefreshStyle::Polling);
}

// ---- refresh ----

fn refresh_answer(callback_url: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "status": "success", "message": "Transactions processing...",
        "data": {"callback_url": callback_url}
    }))
}

fn progress(running: bool) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "status": "success",
        "data": {"running": running, "completed": !running}
    }))
}

fn refresh_request() -> RefreshRequest {
    RefreshRequest {
        account_id: "acc1".into(),
        callback_url: None,
    }
}

#[tokio::test]
async fn refresh_posts_then_polls_the_callback_until_completed() {
    let (server, okra) = setup().await;
    okra_post("refresh")
        .and(body_json(json!({"account_id": "acc1"})))
        .respond_with(refresh_answer(&format!(
            "{}/v2/callback?record=r1&method=REFRESH_TRANSACTIONS",
            server.uri()
        )))
        .expect(1)
        .mount(&server)
        .await;
    let callback = || {
        Mock::given(method("GET"))
            .and(path("/v2/callback"))
            .and(query_param("record", "r1"))
            .and(query_param("method", "REFRESH_TRANSACTIONS"))
            .and(header("authorization", BEARER))
    };
    callback()
        .respond_with(progress(true))
        .up_to_n_times(2)
        .expect(2)
        .with_priority(1)
        .mount(&server)
        .await;
    callback()
        .respond_with(progress(false))
        .expect(1)
        .with_priority(2)
        .mount(&server)
        .await;
    assert_eq!(
        okra.refresh(&refresh_request()).await,
        Ok(RefreshOutcome::Completed)
    );
}

#[tokio::test]
async fn refresh_keeps_polling_through_a_5xx_and_repairs_an_undefined_callback() {
    let (server, okra) = setup().await;
    okra_post("refresh")
        .respond_with(refresh_answer(&format!(
            "{}/v2/undefined?record=r2&method=REFRESH_TRANSACTIONS",
            server.uri()
        )))
        .mount(&server)
        .await;
    let callback = || {
        Mock::given(method("GET"))
            .and(path("/v2/callback"))
            .and(query_param("record", "r2"))
    };
    callback()
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    callback()
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "success", "data": {"status": "completed"}})),
        )
        .with_priority(2)
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        okra.refresh(&refresh_request()).await,
        Ok(RefreshOutcome::Completed)
    );
}

#[tokio::test]
async fn refresh_past_its_deadline_is_unavailable() {
    let server = MockServer::start().await;
    let mut config = config(&server);
    config.refresh_poll.deadline = Duration::from_millis(250);
    let okra = OkraProvider::new(config).unwrap();
    okra_post("refresh")
        .respond_with(refresh_answer(&format!(
            "{}/v2/callback?record=r3",
            server.uri()
        )))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/callback"))
        .respond_with(progress(true))
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    let err = okra.refresh(&refresh_request()).await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::Unavailable { status: None, .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(2));
    let polls = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "GET")
        .count();
    // 10, 20, 40, 40, 40, ... ms under a 250 ms deadline: a handful, never a busy loop.
    assert!((1..=12).contains(&polls), "{polls} polls");
}

#[tokio::test]
async fn refresh_refuses_a_cross_origin_callback_and_sends_nothing_there() {
    let (server, okra) = setup().await;
    let stranger = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(progress(false))
        .expect(0)
        .mount(&stranger)
        .await;
    okra_post("refresh")
        .respond_with(refresh_answer(&format!(
            "{}/v2/callback?record=r4&method=REFRESH_TRANSACTIONS",
            stranger.uri()
        )))
        .expect(1)
        .mount(&server)
        .await;
    let err = okra.refresh(&refresh_request()).await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::BadPayload { message, .. } if message.contains("origin")),
        "{err:?}"
    );
    assert!(stranger.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn refresh_without_a_callback_url_is_a_bad_payload() {
    let (server, okra) = setup().await;
    okra_post("refresh")
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "success", "message": "ok", "data": {}})),
        )
        .mount(&server)
        .await;
    assert!(matches!(
        okra.refresh(&refresh_request()).await,
        Err(ProviderError::BadPayload { .. })
    ));
}

// ---- every failure maps to its error ----

async fn answer(template: ResponseTemplate) -> ProviderError {
    let (server, okra) = setup().await;
    okra_post("getByAccount")
        .respond_with(template)
        .expect(1)
        .mount(&server)
        .await;
    let err = okra
        .list_page(&TransactionQuery::new(Scope::Account("acc1".into())))
        .await
        .unwrap_err();
    assert_eq!(err.provider(), "okra-ng");
    assert!(!err.to_string().contains(SECRET), "{err}");
    err
}

fn okra_error(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"status": "error", "message": message}))
}

#[tokio::test]
async fn http_statuses_map_to_provider_errors() {
    assert!(matches!(
        answer(okra_error(400, "invalid account")).await,
        ProviderError::Rejected { status: 400, message, .. } if message == "invalid account"
    ));
    assert!(matches!(
        answer(okra_error(401, "invalid token")).await,
        ProviderError::Unauthorized { status: 401, message, .. } if message == "invalid token"
    ));
    assert!(matches!(
        answer(okra_error(403, "forbidden")).await,
        ProviderError::Unauthorized { status: 403, .. }
    ));
    assert!(matches!(
        answer(okra_error(404, "no such account")).await,
        ProviderError::NotFound { message, .. } if message == "no such account"
    ));
    let err = answer(okra_error(500, "boom")).await;
    assert!(matches!(
        &err,
        ProviderError::Unavailable {
            status: Some(500),
            ..
        }
    ));
    assert!(err.is_retryable());
    assert!(matches!(
        answer(ResponseTemplate::new(503).set_body_string("upstream down")).await,
        ProviderError::Unavailable { status: Some(503), message, .. } if message == "upstream down"
    ));
}

#[tokio::test]
async fn rate_limits_carry_retry_after() {
    let err = answer(okra_error(429, "Too many requests").insert_header("Retry-After", "30")).await;
    assert!(matches!(&err, ProviderError::RateLimited { .. }));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));

    let in_a_minute = time::OffsetDateTime::now_utc() + time::Duration::seconds(90);
    let http_date = in_a_minute
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap()
        .replace("+0000", "GMT");
    let err =
        answer(okra_error(429, "slow down").insert_header("Retry-After", http_date.as_str())).await;
    let wait = err.retry_after().unwrap();
    assert!(
        wait > Duration::from_secs(80) && wait <= Duration::from_secs(90),
        "{wait:?}"
    );

    let err = answer(okra_error(
        429,
        "Rate limit reached, try again in 60 seconds",
    ))
    .await;
    assert_eq!(err.retry_after(), Some(Duration::from_secs(60)));
}

#[tokio::test]
async fn bad_bodies_and_error_envelopes_on_200_are_bad_payloads() {
    assert!(matches!(
        answer(okra_error(200, "Account not connected")).await,
        ProviderError::BadPayload { status: Some(200), message, .. } if message == "Account not connected"
    ));
    assert!(matches!(
        answer(ResponseTemplate::new(200).set_body_string("<html>oops</html>")).await,
        ProviderError::BadPayload {
            status: Some(200),
            ..
        }
    ));
    assert!(matches!(
        answer(
            ResponseTemplate::new(200).set_body_json(json!({"status": "success",
            "data": {"transaction": "not a list"}}))
        )
        .await,
        ProviderError::BadPayload { .. }
    ));
    assert!(matches!(
        answer(ResponseTemplate::new(200).set_body_json(json!({"status": "success"}))).await,
        ProviderError::BadPayload { .. }
    ));
}

#[tokio::test]
async fn an_unmappable_record_is_a_warning_naming_it_and_the_good_ones_are_kept() {
    let (server, okra) = setup().await;
    okra_post("getByAccount")
        .respond_with(ResponseTemplate::new(200).set_body_json(page(
            vec![record("t1", json!(1)), record("t2", json!(-3))],
            1,
            json!(null),
            2,
        )))
        .expect(1)
        .mount(&server)
        .await;
    let page = okra
        .list_page(&TransactionQuery::new(Scope::Account("acc1".into())))
        .await
        .unwrap();
    let kept: Vec<_> = page.items.iter().map(|t| t.amount.minor()).collect();
    assert_eq!(kept, [100]);
    assert_eq!(page.warnings.len(), 1);
    let w = &page.warnings[0];
    assert_eq!(
        (
            w.code,
            w.record.as_str(),
            w.field.as_str(),
            w.raw_value.as_deref()
        ),
        (
            provider::WarningCode::RecordSkipped,
            "t2",
            "debit",
            Some("-3")
        )
    );
}

#[tokio::test]
async fn a_slow_answer_times_out_as_unavailable() {
    let server = MockServer::start().await;
    let mut config = config(&server);
    config.request_timeout = Duration::from_millis(200);
    let okra = OkraProvider::new(config).unwrap();
    okra_post("getByAccount")
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(page(vec![], 1, json!(null), 0))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let err = okra
        .list_page(&TransactionQuery::new(Scope::Account("acc1".into())))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Unavailable { status: None, message, .. } if message.contains("timed out")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let okra = OkraProvider::new(OkraConfig::new(
        "okra-ng",
        Url::parse(&format!("http://127.0.0.1:{port}/v2")).unwrap(),
        Secret::new(SECRET),
    ))
    .unwrap();
    let err = okra
        .list_page(&TransactionQuery::new(Scope::Account("acc1".into())))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Unavailable { status: None, .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains(SECRET));
}

// ---- configuration ----

#[test]
fn the_secret_never_shows_in_debug() {
    let config = OkraConfig::new(
        "okra-ng",
        Url::parse("https://api.okra.ng/v2").unwrap(),
        Secret::new(SECRET),
    );
    assert!(!format!("{config:?}").contains(SECRET));
    let okra = OkraProvider::new(config).unwrap();
    let shown = format!("{okra:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("okra-ng"));
}

#[test]
fn defaults_and_unusable_configurations() {
    let url = Url::parse("https://api.okra.ng/v2").unwrap();
    let config = OkraConfig::new("okra", url.clone(), Secret::new(SECRET));
    assert_eq!(config.connect_timeout, Duration::from_secs(2));
    assert_eq!(config.request_timeout, Duration::from_secs(10));
    assert_eq!(
        config.refresh_poll,
        PollPolicy {
            initial_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(5),
            deadline: Duration::from_secs(120),
        }
    );
    assert_eq!(config.currency, Currency::NGN);

    for config in [
        OkraConfig::new("okra", url.clone(), Secret::new("  ")),
        OkraConfig::new(" ", url.clone(), Secret::new(SECRET)),
        OkraConfig::new(
            "okra",
            Url::parse("ftp://api.okra.ng/v2").unwrap(),
            Secret::new(SECRET),
        ),
        OkraConfig::new("okra", url.clone(), Secret::new("bad\nkey")),
    ] {
        let err = OkraProvider::new(config).unwrap_err();
        assert!(matches!(err, ProviderError::Config { .. }), "{err:?}");
    }
}
