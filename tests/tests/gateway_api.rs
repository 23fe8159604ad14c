//! The gateway's public API end to end: real gateway, real sandbox, real HTTP, free ports.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panicking helper is a failed test

use e2e::{BILLING_KEY, LEDGER_KEY, TestGateway, base_config, spawn, spawn_default, sums};
use serde_json::Value;

fn sorted_facts(items: &[Value]) -> Vec<(String, String, i64, String, String)> {
    let mut facts: Vec<_> = items
        .iter()
        .map(|t| {
            (
                t["booked_on"].as_str().unwrap().to_owned(),
                t["direction"].as_str().unwrap().to_owned(),
                t["amount"]["minor"].as_i64().unwrap(),
                t["narration"].as_str().unwrap().to_owned(),
                t["reference"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    facts.sort();
    facts
}

const TRANSACTION_KEYS: [&str; 13] = [
    "id",
    "provider",
    "provider_transaction_id",
    "account_id",
    "customer_id",
    "direction",
    "amount",
    "balance_after",
    "booked_on",
    "value_on",
    "narration",
    "reference",
    "bank",
];

fn assert_canonical_shape(t: &Value) {
    let obj = t.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort();
    let mut expected = TRANSACTION_KEYS.to_vec();
    expected.sort();
    assert_eq!(keys, expected, "{t}");
    let amount = &t["amount"];
    assert!(amount["minor"].as_i64().unwrap() > 0);
    assert_eq!(amount["currency"], "NGN");
    // `value` is the same amount as `minor`, as a decimal string.
    let minor = amount["minor"].as_i64().unwrap();
    assert_eq!(
        amount["value"],
        format!("{}.{:02}", minor / 100, minor % 100)
    );
    assert!(t["id"].as_str().unwrap().starts_with("txn_"));
    assert_eq!(t["booked_on"].as_str().unwrap().len(), 10);
}

#[tokio::test]
async fn an_account_reads_the_same_through_okra_and_mono_to_the_kobo() {
    let gw = spawn_default("okra").await;
    let account = gw
        .accounts_with(1)
        .into_iter()
        .find(|a| (200..=1500).contains(&a.transaction_count))
        .expect("an account of a few hundred transactions");

    let okra = gw
        .walk(
            &format!("/v1/accounts/{}/transactions", account.okra_account_id),
            100,
        )
        .await;
    let mono = gw
        .walk(
            &format!(
                "/v1/accounts/{}/transactions?provider=mono",
                account.mono_account_id
            ),
            100,
        )
        .await;

    assert_eq!(okra.len() as u64, account.transaction_count);
    assert_eq!(mono.len() as u64, account.transaction_count);
    for t in okra.iter().chain(&mono) {
        assert_canonical_shape(t);
    }
    assert!(okra.iter().all(|t| t["provider"] == "okra"));
    assert!(mono.iter().all(|t| t["provider"] == "mono"));
    assert_eq!(
        sums(&okra),
        (account.debit_total_kobo, account.credit_total_kobo)
    );
    assert_eq!(
        sums(&mono),
        (account.debit_total_kobo, account.credit_total_kobo)
    );
    assert_eq!(sorted_facts(&okra), sorted_facts(&mono));
}

#[tokio::test]
async fn swapping_the_default_provider_is_one_line_of_configuration() {
    let okra_gw = spawn(&base_config("okra", "")).await;
    let mono_gw = spawn(&base_config("mono", "")).await;
    let account = okra_gw.accounts_with(20).remove(0);

    // Same request shape, no provider named: the configured default answers.
    let via_okra = okra_gw
        .get(&format!(
            "/v1/accounts/{}/transactions?limit=20",
            account.okra_account_id
        ))
        .await;
    let via_mono = mono_gw
        .get(&format!(
            "/v1/accounts/{}/transactions?limit=20",
            account.mono_account_id
        ))
        .await;
    assert_eq!((via_okra.status, via_mono.status), (200, 200));
    let a = via_okra.json["data"].as_array().unwrap();
    let b = via_mono.json["data"].as_array().unwrap();
    assert!(a.iter().all(|t| t["provider"] == "okra"));
    assert!(b.iter().all(|t| t["provider"] == "mono"));
    for t in a.iter().chain(b) {
        assert_canonical_shape(t);
    }
    assert_eq!(
        via_okra.json["pagination"]["total"],
        via_mono.json["pagination"]["total"]
    );

    let providers = mono_gw.get("/v1/providers").await;
    let default: Vec<&str> = providers.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["default"] == true)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(default, ["mono"]);
}

#[tokio::test]
async fn every_listing_route_and_lookup_by_id() {
    let gw = spawn_default("okra").await;
    let directory = gw.sandbox.directory();
    let customer = directory
        .customers
        .iter()
        .find(|c| c.accounts.iter().any(|a| a.transaction_count > 0))
        .unwrap();
    let account = customer
        .accounts
        .iter()
        .find(|a| a.transaction_count > 0)
        .unwrap();

    // By customer: every account of the customer.
    let by_customer = gw
        .walk(
            &format!("/v1/customers/{}/transactions", customer.okra_customer_id),
            100,
        )
        .await;
    let expected: u64 = customer.accounts.iter().map(|a| a.transaction_count).sum();
    assert_eq!(by_customer.len() as u64, expected);
    assert!(
        by_customer
            .iter()
            .all(|t| t["customer_id"] == customer.okra_customer_id.as_str())
    );

    // By NUBAN: the account.
    let by_nuban = gw
        .get(&format!(
            "/v1/nubans/{}/transactions?limit=5",
            account.nuban
        ))
        .await;
    assert_eq!(by_nuban.status, 200, "{}", by_nuban.json);
    assert_eq!(
        by_nuban.json["pagination"]["total"],
        account.transaction_count
    );
    assert!(
        by_nuban.json["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["account_id"] == account.okra_account_id.as_str())
    );

    // All of the client's, in a date range (required).
    let all = gw
        .get("/v1/transactions?from=2026-10-01&to=2026-10-31&limit=100")
        .await;
    assert_eq!(all.status, 200, "{}", all.json);
    let data = all.json["data"].as_array().unwrap();
    assert!(!data.is_empty());
    assert!(
        data.iter()
            .all(|t| ("2026-10-01".."2026-11-01").contains(&t["booked_on"].as_str().unwrap()))
    );

    // Lookup by the gateway id, for each provider, with and without raw.
    for (path, provider) in [
        (
            format!(
                "/v1/accounts/{}/transactions?limit=3",
                account.okra_account_id
            ),
            "okra",
        ),
        (
            format!(
                "/v1/accounts/{}/transactions?limit=3&provider=mono",
                account.mono_account_id
            ),
            "mono",
        ),
    ] {
        let listed = gw.get(&path).await;
        let first = &listed.json["data"][0];
        let id = first["id"].as_str().unwrap();
        let one = gw.get(&format!("/v1/transactions/{id}")).await;
        assert_eq!(one.status, 200, "{provider}: {}", one.json);
        assert_eq!(&one.json["data"], first);
        let raw = gw.get(&format!("/v1/transactions/{id}?include=raw")).await;
        assert!(
            raw.json["data"]["raw"].is_object(),
            "{provider}: {}",
            raw.json
        );
    }
    // An Okra id that is in no cached snapshot is looked up at the provider.
    let fresh = spawn_default("okra").await;
    let listed = gw
        .get(&format!(
            "/v1/accounts/{}/transactions?limit=1",
            account.okra_account_id
        ))
        .await;
    let id = listed.json["data"][0]["id"].as_str().unwrap();
    let one = fresh.get(&format!("/v1/transactions/{id}")).await;
    assert_eq!(one.status, 200, "{}", one.json);
    assert_eq!(
        one.json["data"]["provider_transaction_id"],
        listed.json["data"][0]["provider_transaction_id"]
    );
    assert_eq!(one.json["data"]["amount"], listed.json["data"][0]["amount"]);

    // include=raw on lists carries the vendor record; without it there is no raw key.
    let with_raw = gw
        .get(&format!(
            "/v1/accounts/{}/transactions?limit=2&include=raw",
            account.okra_account_id
        ))
        .await;
    assert!(with_raw.json["data"][0]["raw"]["_id"].is_string());

    let health = gw.get_as(None, "/healthz").await;
    assert_eq!(
        (health.status, health.json["status"].as_str()),
        (200, Some("ok"))
    );
}

#[tokio::test]
async fn pages_and_cursors_walk_the_same_items_in_the_same_order() {
    let gw = spawn_default("okra").await;
    let account = gw.accounts_with(120).remove(0);
    let base = format!("/v1/accounts/{}/transactions", account.okra_account_id);
    let by_cursor = gw.walk(&base, 37).await;
    let mut by_page = Vec::new();
    for page in 1.. {
        let reply = gw.get(&format!("{base}?limit=37&page={page}")).await;
        let data = reply.json["data"].as_array().unwrap().clone();
        let pagination = &reply.json["pagination"];
        assert_eq!(pagination["page"], page);
        assert_eq!(pagination["total"], account.transaction_count);
        by_page.extend(data);
        if pagination["has_more"] == false {
            assert!(pagination["next_cursor"].is_null());
            break;
        }
    }
    assert_eq!(by_cursor, by_page);
    let ids: std::collections::HashSet<_> = by_cursor.iter().map(|t| t["id"].clone()).collect();
    assert_eq!(ids.len() as u64, account.transaction_count, "no duplicates");
    // Newest first.
    let dates: Vec<&str> = by_cursor
        .iter()
        .map(|t| t["booked_on"].as_str().unwrap())
        .collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]));

    // Past the end: an empty page, not an error.
    let past = gw.get(&format!("{base}?limit=100&page=999")).await;
    assert_eq!(past.status, 200);
    assert_eq!(past.json["data"].as_array().unwrap().len(), 0);
    assert_eq!(past.json["pagination"]["has_more"], false);
}

#[tokio::test]
async fn filters_the_provider_lacks_are_exact() {
    let gw = spawn_default("okra").await;
    let account = gw.accounts_with(100).remove(0);
    // Okra cannot filter an account by direction or date; the gateway does, on the snapshot.
    let debits = gw
        .walk(
            &format!(
                "/v1/accounts/{}/transactions?direction=debit",
                account.okra_account_id
            ),
            100,
        )
        .await;
    assert_eq!(debits.len() as u64, account.debit_count);
    assert_eq!(sums(&debits), (account.debit_total_kobo, 0));
    let credits = gw
        .get(&format!(
            "/v1/accounts/{}/transactions?direction=credit&limit=1",
            account.okra_account_id
        ))
        .await;
    assert_eq!(credits.json["pagination"]["total"], account.credit_count);

    // A date range: the same count through both providers (Mono filters natively).
    let range = "from=2026-01-01&to=2026-03-31";
    let okra = gw
        .walk(
            &format!(
                "/v1/accounts/{}/transactions?{range}",
                account.okra_account_id
            ),
            100,
        )
        .await;
    let mono = gw
        .walk(
            &format!(
                "/v1/accounts/{}/transactions?{range}&provider=mono",
                account.mono_account_id
            ),
            100,
        )
        .await;
    assert_eq!(okra.len(), mono.len());
    assert!(
        okra.iter()
            .all(|t| ("2026-01-01".."2026-04-01").contains(&t["booked_on"].as_str().unwrap()))
    );
    assert_eq!(sums(&okra), sums(&mono));
}

async fn problem(gw: &TestGateway, path: &str) -> (u16, Value) {
    let reply = gw.get(path).await;
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "{path}: {}",
        reply.json
    );
    let body = reply.json;
    assert_eq!(body["status"], reply.status);
    assert!(body["request_id"].is_string());
    assert!(body["code"].is_string() && body["title"].is_string() && body["type"].is_string());
    (reply.status, body)
}

#[tokio::test]
async fn each_validation_error_names_its_parameter() {
    let gw = spawn_default("okra").await;
    let acc = "/v1/accounts/abc/transactions";
    for (path, parameter) in [
        (format!("{acc}?from=2025-02-30"), "from"),
        (format!("{acc}?to=soon"), "to"),
        (format!("{acc}?from=2025-03-01&to=2025-01-01"), "to"),
        (format!("{acc}?direction=both"), "direction"),
        (format!("{acc}?limit=0"), "limit"),
        (format!("{acc}?limit=101"), "limit"),
        (format!("{acc}?page=0"), "page"),
        (format!("{acc}?page=1&cursor=abc"), "cursor"),
        (format!("{acc}?include=all"), "include"),
        (format!("{acc}?provider=plaid"), "provider"),
        (format!("{acc}?sort=asc"), "sort"),
        ("/v1/nubans/12345/transactions".to_owned(), "nuban"),
        ("/v1/accounts/a%20b/transactions".to_owned(), "account_id"),
        ("/v1/transactions?to=2025-01-01".to_owned(), "from"),
        ("/v1/transactions?from=2025-01-01".to_owned(), "to"),
        ("/v1/transactions/not-an-id".to_owned(), "id"),
    ] {
        let (status, body) = problem(&gw, &path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["code"], "invalid_parameter", "{path}");
        assert_eq!(body["parameter"], parameter, "{path}: {body}");
    }
}

#[tokio::test]
async fn cursors_are_tamper_evident_and_bound_to_their_caller() {
    let gw = spawn_default("okra").await;
    let account = gw.accounts_with(30).remove(0);
    let path = format!(
        "/v1/accounts/{}/transactions?limit=10",
        account.okra_account_id
    );
    let first = gw.get(&path).await;
    let cursor = first.json["pagination"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();

    // Another client presenting billing's cursor.
    let foreign = gw
        .get_as(Some(LEDGER_KEY), &format!("{path}&cursor={cursor}"))
        .await;
    assert_eq!(foreign.status, 400);
    assert_eq!(foreign.json["code"], "invalid_cursor");
    // The same cursor for another query (a filter added).
    let other_query = gw
        .get(&format!("{path}&direction=debit&cursor={cursor}"))
        .await;
    assert_eq!(other_query.json["code"], "invalid_cursor");
    // A forged one.
    let mut forged = cursor.clone().into_bytes();
    forged[5] = if forged[5] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let reply = gw.get(&format!("{path}&cursor={forged}")).await;
    assert_eq!(
        (reply.status, reply.json["code"].as_str()),
        (400, Some("invalid_cursor"))
    );
    // The genuine one works.
    let second = gw.get(&format!("{path}&cursor={cursor}")).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.json["pagination"]["page"], 2);
}

#[tokio::test]
async fn authentication_is_required_on_v1() {
    let gw = spawn_default("okra").await;
    // A missing, a malformed and an unknown key each say which it is, and nothing more.
    for (key, header, challenge, says) in [
        (None, None, "Bearer", "required"),
        (
            Some("wrong-key"),
            None,
            "Bearer error=\"invalid_token\"",
            "not valid",
        ),
        (
            None,
            Some(format!("Basic {BILLING_KEY}")),
            "Bearer error=\"invalid_request\"",
            "malformed",
        ),
        (
            None,
            Some("Bearer".to_owned()),
            "Bearer error=\"invalid_request\"",
            "malformed",
        ),
    ] {
        let mut req = gw.http.get(format!("{}/v1/providers", gw.base));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(header) = &header {
            req = req.header("authorization", header);
        }
        let reply = gw.send(req).await;
        assert_eq!(reply.status, 401);
        assert_eq!(reply.json["code"], "unauthorized");
        assert_eq!(
            reply.header("www-authenticate"),
            Some(challenge),
            "{header:?}"
        );
        let detail = reply.json["detail"].as_str().unwrap();
        assert!(detail.contains(says), "{header:?}: {detail}");
        assert!(!detail.contains(BILLING_KEY), "{detail}");
    }
    assert_eq!(
        gw.get_as(Some(LEDGER_KEY), "/v1/providers").await.status,
        200
    );
}

#[tokio::test]
async fn request_ids_are_echoed_or_made() {
    let gw = spawn_default("okra").await;
    let reply = gw
        .send(
            gw.http
                .get(format!("{}/healthz", gw.base))
                .header("x-request-id", "trace-abc-123"),
        )
        .await;
    assert_eq!(reply.header("x-request-id"), Some("trace-abc-123"));
    let made = gw.get("/v1/providers").await;
    assert!(made.header("x-request-id").is_some_and(|id| id.len() >= 16));
    // A problem carries the same id as its header.
    let p = gw
        .get_with_header(
            "/v1/accounts/x/transactions?limit=0",
            "x-request-id",
            "rid-42",
        )
        .await;
    assert_eq!(p.json["request_id"], "rid-42");
    assert_eq!(p.header("x-request-id"), Some("rid-42"));
}

#[tokio::test]
async fn unknown_routes_methods_and_capabilities_are_problems() {
    let gw = spawn_default("okra").await;
    let (status, body) = problem(&gw, "/v2/nothing").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("route_not_found"))
    );
    let reply = gw
        .send(
            gw.http
                .delete(format!("{}/v1/providers", gw.base))
                .bearer_auth(BILLING_KEY),
        )
        .await;
    assert_eq!(
        (reply.status, reply.json["code"].as_str()),
        (405, Some("method_not_allowed"))
    );

    let customer = gw.sandbox.directory().customers[0].okra_customer_id.clone();
    let (status, body) = problem(
        &gw,
        &format!("/v1/customers/{customer}/transactions?provider=mono"),
    )
    .await;
    assert_eq!(status, 501);
    assert_eq!(body["code"], "capability_not_supported");
    assert_eq!(body["provider"], "mono");
    assert!(body["detail"].as_str().unwrap().contains("customer"));
    let (status, _) = problem(&gw, "/v1/nubans/0123456789/transactions?provider=mono").await;
    assert_eq!(status, 501);
    let (status, body) = problem(&gw, "/v1/accounts/no-such-account/transactions").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    assert_eq!(body["provider"], "okra");
}

#[tokio::test]
async fn upstream_failures_become_problems_naming_the_provider() {
    let gw = spawn_default("okra").await;
    let accounts = gw.accounts_with(5);
    gw.sandbox.set_faults(
        sandbox::Vendor::Okra,
        sandbox::Faults {
            error_rate: 1.0,
            error_status: 500,
            ..Default::default()
        },
    );
    let (status, body) = problem(
        &gw,
        &format!("/v1/accounts/{}/transactions", accounts[0].okra_account_id),
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["code"], "upstream_error");
    assert_eq!(body["provider"], "okra");
    assert_eq!(body["upstream_status"], 500);

    gw.sandbox.set_faults(
        sandbox::Vendor::Mono,
        sandbox::Faults {
            malformed_json: true,
            ..Default::default()
        },
    );
    let (status, body) = problem(
        &gw,
        &format!(
            "/v1/accounts/{}/transactions?provider=mono",
            accounts[1].mono_account_id
        ),
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["code"], "upstream_bad_payload");
    assert_eq!(body["provider"], "mono");

    gw.sandbox.set_faults(
        sandbox::Vendor::Okra,
        sandbox::Faults {
            rate_limit_retry_after: Some(42),
            ..Default::default()
        },
    );
    let reply = gw
        .get(&format!(
            "/v1/accounts/{}/transactions",
            accounts[2].okra_account_id
        ))
        .await;
    assert_eq!(reply.status, 503, "{}", reply.json);
    assert_eq!(reply.json["code"], "upstream_rate_limited");
    assert_eq!(reply.header("retry-after"), Some("42"));
}

#[tokio::test]
async fn openapi_and_swagger_ui_are_served_from_the_binary() {
    let gw = spawn_default("okra").await;
    let spec = gw.get_as(None, "/openapi.json").await;
    assert_eq!(spec.status, 200);
    for path in [
        "/v1/accounts/{account_id}/transactions",
        "/v1/customers/{customer_id}/transactions",
        "/v1/nubans/{nuban}/transactions",
        "/v1/transactions",
        "/v1/transactions/{id}",
        "/v1/providers",
        "/healthz",
    ] {
        assert!(
            spec.json["paths"][path].is_object(),
            "{path} missing from the spec"
        );
    }
    // The account example is a real sandbox account, so "Try it out" works as is.
    let params = spec.json["paths"]["/v1/accounts/{account_id}/transactions"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let example = params.iter().find(|p| p["name"] == "account_id").unwrap()["example"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed = gw
        .get(&format!("/v1/accounts/{example}/transactions?limit=1"))
        .await;
    assert_eq!(listed.status, 200);
    // This configuration has no demo client: the description does not offer its key.
    let description = spec.json["info"]["description"].as_str().unwrap();
    assert!(description.contains("Embedded sandbox"));
    assert!(!description.contains(gateway::config::DEMO_API_KEY));

    let ui = gw
        .http
        .get(format!("{}/swagger-ui/", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status(), 200);
    assert!(ui.text().await.unwrap().contains("swagger"));
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/swagger-ui", gw.base))
        .send()
        .await
        .unwrap();
    assert!(redirect.status().is_redirection());
}

#[tokio::test]
async fn the_zero_configuration_setup_offers_the_demo_key_and_real_examples() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = gateway::Config::embedded_default().unwrap();
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.audit = None; // stdout by default; not in the test's output
    let app = gateway::Application::build(config).await.unwrap();
    let demo = app.demo().unwrap().clone();
    assert_eq!(demo.api_key.as_deref(), Some(gateway::config::DEMO_API_KEY));
    assert!(!demo.okra_accounts.is_empty() && !demo.mono_accounts.is_empty());
    assert!(!demo.customers.is_empty() && !demo.nubans.is_empty());
    let addr = app.spawn();
    let http = reqwest::Client::new();
    let spec: Value = http
        .get(format!("http://{addr}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let description = spec["info"]["description"].as_str().unwrap();
    assert!(
        description.contains(gateway::config::DEMO_API_KEY),
        "{description}"
    );
    // What the log and the description offer works, through each provider.
    for (id, provider) in [
        (&demo.okra_accounts[0], "okra"),
        (&demo.mono_accounts[0], "mono"),
    ] {
        let res = http
            .get(format!(
                "http://{addr}/v1/accounts/{id}/transactions?provider={provider}&limit=3"
            ))
            .bearer_auth(gateway::config::DEMO_API_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{provider}");
    }
}
