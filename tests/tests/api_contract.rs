//! The API contract as a caller meets it (issue 19): the served document's prefilled values
//! work as they are, valid requests are accepted, and errors say what happened in the gateway's
//! words. (scripts/contract.sh adds the schemathesis run and the Swagger UI check in Chromium.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panicking helper is a failed test

use std::net::SocketAddr;

use e2e::{BILLING_KEY, base_config, spawn, spawn_default};
use serde_json::Value;

/// The zero-configuration gateway (embedded sandbox, demo client) with `default` as the
/// default provider, spawned; its address and demo facts.
async fn zero_config(default: &str) -> (SocketAddr, gateway::state::DemoInfo) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = gateway::Config::embedded_default().unwrap();
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.audit = None;
    config.default_provider = default.to_owned();
    let app = gateway::Application::build(config).await.unwrap();
    let demo = app.demo().unwrap().clone();
    (app.spawn(), demo)
}

/// The request Swagger UI's "Try it out" sends as prefilled: every parameter with an example
/// or a default, nothing else.
fn prefilled(base: &str, path: &str, op: &Value, overrides: &[(&str, &str)]) -> (String, bool) {
    let mut url = path.to_owned();
    let mut query = Vec::new();
    let mut complete = true;
    for param in op["parameters"].as_array().into_iter().flatten() {
        let name = param["name"].as_str().unwrap();
        let value = overrides
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| Value::String((*v).to_owned()))
            .or_else(|| param.get("example").cloned())
            .or_else(|| param["schema"].get("default").cloned());
        let text = match value {
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => {
                complete &= param["required"] != true;
                continue;
            }
        };
        match param["in"].as_str() {
            Some("path") => url = url.replace(&format!("{{{name}}}"), &text),
            Some("query") => query.push(format!("{name}={text}")),
            _ => {}
        }
    }
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    (format!("{base}{url}{query}"), complete)
}

#[tokio::test]
async fn every_operation_works_as_prefilled_in_the_served_document_whichever_the_default() {
    for default in ["okra", "mono"] {
        let (addr, demo) = zero_config(default).await;
        let base = format!("http://{addr}");
        let key = demo.api_key.clone().unwrap();
        let http = reqwest::Client::new();
        let spec: Value = http
            .get(format!("{base}/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut job: Option<String> = None;
        let mut tried = 0;
        // Sorted by path: the refresh (/v1/accounts/...) comes before /v1/jobs/{id}.
        for (path, item) in spec["paths"].as_object().unwrap() {
            if path.starts_with("/v1/webhooks/") {
                continue; // vendors only, authenticated by a job's token
            }
            for (method, op) in item.as_object().unwrap() {
                let overrides: Vec<(&str, &str)> = match (path.as_str(), &job) {
                    ("/v1/jobs/{id}", Some(job)) => vec![("id", job.as_str())],
                    _ => Vec::new(),
                };
                let (url, complete) = prefilled(&base, path, op, &overrides);
                assert!(
                    complete,
                    "{default}: {method} {path}: a required value is not prefilled"
                );
                let request = match method.as_str() {
                    "get" => http.get(&url),
                    "post" => http.post(&url),
                    other => panic!("{other} {path}: not tried"),
                };
                let res = request.bearer_auth(&key).send().await.unwrap();
                let status = res.status().as_u16();
                let body = res.text().await.unwrap_or_default();
                assert!(
                    (200..300).contains(&status),
                    "default {default}: {method} {url}: {status} {body}"
                );
                if path.ends_with("/refresh") {
                    let answer: Value = serde_json::from_str(&body).unwrap();
                    job = answer["id"].as_str().map(str::to_owned);
                }
                tried += 1;
            }
        }
        assert_eq!(tried, 12, "every operation but the webhook");
        // The start-up log's curl: an account of the default provider, no ?provider=.
        let account = &demo.default_accounts()[0];
        let res = http
            .get(format!("{base}/v1/accounts/{account}/transactions?limit=5"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "default {default}: the log's example");
    }
}

#[tokio::test]
async fn the_served_document_offers_each_operation_only_the_providers_that_can_serve_it() {
    let (addr, _) = zero_config("mono").await;
    let spec: Value = reqwest::get(format!("http://{addr}/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let provider = |path: &str| {
        spec["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "provider")
            .unwrap()
            .clone()
    };
    let accounts = provider("/v1/accounts/{account_id}/transactions");
    assert_eq!(
        accounts["schema"]["enum"],
        serde_json::json!(["mono", "okra"])
    );
    assert_eq!(accounts["example"], "mono");
    // The Mono-style provider cannot list a customer: Okra only, and required (the default
    // would answer 501).
    let customers = provider("/v1/customers/{customer_id}/transactions");
    assert_eq!(customers["schema"]["enum"], serde_json::json!(["okra"]));
    assert_eq!(customers["required"], true);
    assert!(spec.get("servers").is_none());
}

#[tokio::test]
async fn values_a_form_sends_for_none_are_accepted() {
    let gw = spawn_default("okra").await;
    let account = gw.accounts_with(3).remove(0).okra_account_id;
    let reply = gw
        .get(&format!(
            "/v1/accounts/{account}/transactions?page=1&cursor=&include=&limit=2"
        ))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let id = reply.json["data"][0]["id"].as_str().unwrap().to_owned();
    let one = gw.get(&format!("/v1/transactions/{id}?include=")).await;
    assert_eq!(one.status, 200, "{}", one.json);
    assert!(one.json["data"].get("raw").is_none());
}

#[tokio::test]
async fn a_malformed_job_id_is_a_documented_400() {
    let gw = spawn_default("okra").await;
    let reply = gw.get("/v1/jobs/a%20b").await;
    assert_eq!(reply.status, 400, "{}", reply.json);
    assert_eq!(reply.json["parameter"], "id");
    let spec = gw.get_as(None, "/openapi.json").await.json;
    assert!(spec["paths"]["/v1/jobs/{id}"]["get"]["responses"]["400"].is_object());
}

#[tokio::test]
async fn a_cursor_reused_with_another_limit_reports_its_place_in_that_walk() {
    let gw = spawn_default("okra").await;
    let account = gw.accounts_with(12).remove(0);
    let base = format!("/v1/accounts/{}/transactions", account.okra_account_id);
    let first = gw.get(&format!("{base}?limit=2")).await;
    let cursor = first.json["pagination"]["next_cursor"].as_str().unwrap();
    // Two items seen; three per page from here: the second page of this walk, not the first.
    let next = gw.get(&format!("{base}?limit=3&cursor={cursor}")).await;
    assert_eq!(next.status, 200, "{}", next.json);
    let total = next.json["pagination"]["total"].as_u64().unwrap();
    assert_eq!(next.json["pagination"]["page"], 2);
    assert_eq!(
        next.json["pagination"]["total_pages"].as_u64().unwrap(),
        1 + (total - 2).div_ceil(3)
    );
}

#[tokio::test]
async fn an_id_the_default_provider_does_not_know_gets_a_hint_to_name_the_provider() {
    let gw = spawn_default("okra").await;
    let mono_id = gw.accounts_with(1).remove(0).mono_account_id;
    let reply = gw
        .get(&format!("/v1/accounts/{mono_id}/transactions"))
        .await;
    assert_eq!(reply.status, 404, "{}", reply.json);
    let detail = reply.json["detail"].as_str().unwrap();
    assert!(detail.contains("?provider=mono"), "{detail}");
    assert!(detail.contains("the default"), "{detail}");
    // Named explicitly, the provider's own answer stands.
    let named = gw
        .get(&format!(
            "/v1/accounts/{mono_id}/transactions?provider=okra"
        ))
        .await;
    assert_eq!(named.status, 404);
    assert!(
        !named.json["detail"]
            .as_str()
            .unwrap()
            .contains("?provider=")
    );
}

#[tokio::test]
async fn an_unreachable_provider_is_described_without_its_address() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    // Any variable that is set will do as the key: the provider is never reached.
    let toml = base_config("okra", "").replacen(
        "kind = \"okra\"\nbase_url = \"sandbox\"",
        &format!(
            "kind = \"okra\"\nbase_url = \"http://127.0.0.1:{port}/v2\"\nsecret_key = {{ env = \"PATH\" }}\nmax_retries = 0"
        ),
        1,
    );
    let gw = spawn(&toml).await;
    let reply = gw.get("/v1/accounts/some-account/transactions").await;
    assert_eq!(reply.status, 503, "{}", reply.json);
    assert_eq!(reply.json["code"], "upstream_unavailable");
    let detail = reply.json["detail"].as_str().unwrap();
    assert!(!detail.contains(&port.to_string()), "{detail}");
    assert!(!detail.contains("127.0.0.1"), "{detail}");
    assert!(
        detail.contains("provider okra could not be reached"),
        "{detail}"
    );
}

/// What actix-http answers itself, before any of the gateway's code runs (README: "Errors the
/// gateway cannot shape"): these pin that behaviour, so a dependency upgrade that changes it
/// (and may make a problem body possible) is noticed.
#[tokio::test]
async fn requests_refused_before_the_app_sees_them_get_actix_https_bare_answers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = spawn_default("okra").await;
    let raw = |head: String| {
        let addr = gw.addr;
        async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.write_all(head.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer).await;
            String::from_utf8_lossy(&answer).into_owned()
        }
    };
    let long_uri = format!(
        "GET /v1/providers?{} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {BILLING_KEY}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let answer = raw(long_uri).await;
    assert!(
        answer.starts_with("HTTP/1.1 400"),
        "{}",
        &answer[..80.min(answer.len())]
    );
    assert!(
        !answer.to_ascii_lowercase().contains("x-request-id"),
        "{answer}"
    );
    let big_head = format!(
        "GET /v1/providers HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(140 * 1024)
    );
    let answer = raw(big_head).await;
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..80.min(answer.len())]
    );
    // A URI the parser takes (under 64 KiB) reaches the gateway: a problem with a request id.
    let reply = gw
        .get(&format!(
            "/v1/accounts/a/transactions?x={}",
            "a".repeat(8 * 1024)
        ))
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert!(reply.json["request_id"].is_string());
}

#[test]
fn the_example_configuration_reports_every_unset_variable_at_once() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../gateway.example.toml");
    let error = gateway::Config::load(Some(std::path::Path::new(path)))
        .unwrap_err()
        .to_string();
    for name in [
        "BILLING_WEBHOOK_SECRET",
        "LEDGER_API_KEY",
        "OKRA_SECRET_KEY",
        "MONO_SECRET_KEY",
        "MONO_APP_ID",
    ] {
        if std::env::var(name).is_err() {
            assert!(error.contains(name), "{name} not reported: {error}");
        }
    }
}
