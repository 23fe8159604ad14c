//! Least privilege end to end: per-client scopes and providers, key rotation and expiry, and
//! the audit trail of who read which account. Real gateway, embedded sandbox, free ports.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panicking helper is a failed test

use e2e::{BILLING_KEY, Reply, TestGateway, base_config, key_hash, spawn};
use sandbox::Vendor;
use serde_json::Value;

const READER_KEY: &str = "reader-key-e2e";
const OKRA_ONLY_KEY: &str = "okra-only-key-e2e";

/// Adds clients to [`base_config`]: `reader` may read transactions and providers only (with a
/// small quota, so its `RateLimit` header shows each charge), `okra-only` may do everything,
/// but only through `okra`.
fn restricted_clients() -> String {
    format!(
        r#"
[clients.reader]
api_key_sha256 = "{reader}"
scopes = ["transactions:read", "providers:read"]
requests_per_minute = 60
burst = 10
fair_share_weight = 3

[clients.okra-only]
api_key_sha256 = "{okra_only}"
providers = ["okra"]
"#,
        reader = key_hash(READER_KEY),
        okra_only = key_hash(OKRA_ONLY_KEY),
    )
}

/// `r`, the requests the client may still send now, from the `RateLimit` header.
fn remaining(reply: &Reply) -> u64 {
    let value = reply.header("ratelimit").expect("a RateLimit header");
    value
        .split(';')
        .find_map(|part| part.strip_prefix("r="))
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no r= in {value}"))
}

async fn post_as(gw: &TestGateway, key: &str, path: &str) -> Reply {
    gw.send(gw.http.post(format!("{}{path}", gw.base)).bearer_auth(key))
        .await
}

fn assert_refused(reply: &Reply, scope: &str) {
    assert_eq!(reply.status, 403, "{}", reply.json);
    assert_eq!(reply.json["code"], "insufficient_scope", "{}", reply.json);
    assert_eq!(reply.json["scope"], scope, "{}", reply.json);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("application/problem+json"),
        "{:?}",
        reply.headers
    );
}

#[tokio::test]
async fn a_client_without_refresh_gets_403_on_refresh_and_its_reads_still_work() {
    let gw = spawn(&base_config("okra", &restricted_clients())).await;
    let account = gw.accounts_with(5).remove(0).okra_account_id;
    gw.sandbox.reset_stats();

    let refused = post_as(
        &gw,
        READER_KEY,
        &format!("/v1/accounts/{account}/transactions/refresh"),
    )
    .await;
    assert_refused(&refused, "transactions:refresh");
    assert!(
        refused.json["detail"]
            .as_str()
            .unwrap()
            .contains("transactions:refresh")
    );
    // It cost the client a request of its quota, like any authenticated call ...
    assert_eq!(remaining(&refused), 9);
    // ... and nothing reached the provider.
    assert_eq!(gw.sandbox.stats().total(Vendor::Okra), 0);

    let jobs = gw.get_as(Some(READER_KEY), "/v1/jobs/job_0123").await;
    assert_refused(&jobs, "jobs:read");
    assert_eq!(remaining(&jobs), 8);

    let read = gw
        .get_as(
            Some(READER_KEY),
            &format!("/v1/accounts/{account}/transactions?limit=5"),
        )
        .await;
    assert_eq!(read.status, 200, "{}", read.json);
    assert_eq!(read.json["data"].as_array().unwrap().len(), 5);
    assert_eq!(remaining(&read), 7);
    let providers = gw.get_as(Some(READER_KEY), "/v1/providers").await;
    assert_eq!(providers.status, 200);
    // Its weight in the providers' fair lines, from its configuration.
    assert_eq!(providers.json["data"][0]["outbound"]["your_weight"], 3);

    // A client whose configuration says nothing keeps every scope.
    let billing = post_as(
        &gw,
        BILLING_KEY,
        &format!("/v1/accounts/{account}/transactions/refresh"),
    )
    .await;
    assert_eq!(billing.status, 202, "{}", billing.json);
}

/// Every operation the spec documents with a scope is refused, naming that scope, to a client
/// without it: no `/v1` route escapes its check.
#[tokio::test]
async fn every_documented_operation_refuses_a_client_without_its_scope() {
    const JOBS_ONLY_KEY: &str = "jobs-only-key-e2e";
    let extra = format!(
        "{}\n[clients.jobs-only]\napi_key_sha256 = \"{}\"\nscopes = [\"jobs:read\"]\n",
        restricted_clients(),
        key_hash(JOBS_ONLY_KEY)
    );
    let gw = spawn(&base_config("okra", &extra)).await;
    let spec = gw.get_as(None, "/openapi.json").await.json;
    gw.sandbox.reset_stats();
    let mut checked = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            // The scope the operation needs (`x-required-scopes`: the bearer requirement itself
            // may name none, OpenAPI keeps scopes for OAuth2).
            let Some(scope) = op["x-required-scopes"][0].as_str() else {
                continue;
            };
            // A client lacking exactly this scope.
            let key = if scope == "jobs:read" {
                READER_KEY
            } else {
                JOBS_ONLY_KEY
            };
            let concrete = path
                .split('/')
                .map(|segment| {
                    if segment.starts_with('{') {
                        "x1"
                    } else {
                        segment
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let url = format!("{}{concrete}", gw.base);
            let request = match method.as_str() {
                "get" => gw.http.get(url),
                "post" => gw.http.post(url),
                other => panic!("{other} {path}: add the method here"),
            };
            let reply = gw.send(request.bearer_auth(key)).await;
            assert_refused(&reply, scope);
            checked += 1;
        }
    }
    assert_eq!(checked, 9, "every /v1 operation of the spec");
    assert_eq!(gw.sandbox.stats().total(Vendor::Okra), 0);
    assert_eq!(gw.sandbox.stats().total(Vendor::Mono), 0);
}

#[tokio::test]
async fn a_client_limited_to_okra_gets_403_for_mono_and_sees_only_okra() {
    let gw = spawn(&base_config("okra", &restricted_clients())).await;
    let info = gw.accounts_with(5).remove(0);
    // A Mono-style transaction id, read by a client that may use every provider.
    let mono_list = gw
        .get(&format!(
            "/v1/accounts/{}/transactions?provider=mono&limit=1",
            info.mono_account_id
        ))
        .await;
    let mono_tx = mono_list.json["data"][0]["id"].as_str().unwrap().to_owned();
    gw.sandbox.reset_stats();

    let refused = gw
        .get_as(
            Some(OKRA_ONLY_KEY),
            &format!(
                "/v1/accounts/{}/transactions?provider=mono",
                info.mono_account_id
            ),
        )
        .await;
    assert_refused(&refused, "provider:mono");
    assert_eq!(refused.json["provider"], "mono");
    assert_eq!(refused.json["parameter"], "provider");

    // A gateway id names its provider: the lookup is refused before any provider is asked.
    let by_id = gw
        .get_as(Some(OKRA_ONLY_KEY), &format!("/v1/transactions/{mono_tx}"))
        .await;
    assert_refused(&by_id, "provider:mono");
    assert_eq!(by_id.json["parameter"], "id");
    let refresh = post_as(
        &gw,
        OKRA_ONLY_KEY,
        &format!(
            "/v1/accounts/{}/transactions/refresh?provider=mono",
            info.mono_account_id
        ),
    )
    .await;
    assert_refused(&refresh, "provider:mono");
    assert_eq!(gw.sandbox.stats().total(Vendor::Mono), 0);

    let okra = gw
        .get_as(
            Some(OKRA_ONLY_KEY),
            &format!(
                "/v1/accounts/{}/transactions?provider=okra&limit=2",
                info.okra_account_id
            ),
        )
        .await;
    assert_eq!(okra.status, 200, "{}", okra.json);

    let names = |reply: &Reply| -> Vec<String> {
        reply.json["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let seen = gw.get_as(Some(OKRA_ONLY_KEY), "/v1/providers").await;
    assert_eq!(names(&seen), ["okra"]);
    assert_eq!(names(&gw.get("/v1/providers").await), ["mono", "okra"]);
}

#[tokio::test]
async fn a_default_provider_the_client_may_not_use_is_refused_too() {
    let gw = spawn(&base_config("mono", &restricted_clients())).await;
    let info = gw.accounts_with(1).remove(0);
    gw.sandbox.reset_stats();
    let refused = gw
        .get_as(
            Some(OKRA_ONLY_KEY),
            &format!("/v1/accounts/{}/transactions", info.mono_account_id),
        )
        .await;
    assert_refused(&refused, "provider:mono");
    assert_eq!(gw.sandbox.stats().total(Vendor::Mono), 0);
}

#[tokio::test]
async fn both_keys_work_during_a_rotation_and_the_expired_one_answers_401() {
    const OLD: &str = "rotating-old-key";
    const NEW: &str = "rotating-new-key";
    const RETIRED: &str = "rotating-retired-key";
    let clients = format!(
        r#"
[clients.rotating]
api_key_sha256 = "{new}"
keys = [
  {{ api_key_sha256 = "{old}", not_after = "2999-12-31" }},
  {{ api_key_sha256 = "{retired}", not_after = "2020-01-31" }},
]
"#,
        new = key_hash(NEW),
        old = key_hash(OLD),
        retired = key_hash(RETIRED),
    );
    let gw = spawn(&base_config("okra", &clients)).await;
    let account = gw.accounts_with(1).remove(0).okra_account_id;
    let path = format!("/v1/accounts/{account}/transactions?limit=1");

    for key in [OLD, NEW] {
        let reply = gw.get_as(Some(key), &path).await;
        assert_eq!(reply.status, 200, "{key}: {}", reply.json);
        // Both keys are the same client: one quota policy, one client.
        assert_eq!(
            reply.header("ratelimit-policy"),
            Some("\"default\";q=6000;w=60")
        );
    }

    let expired = gw.get_as(Some(RETIRED), &path).await;
    assert_eq!(expired.status, 401, "{}", expired.json);
    assert_eq!(expired.json["code"], "key_expired");
    // Nothing about the client, its other keys or the date is revealed.
    let body = expired.json.to_string();
    for secret in ["rotating", "2020", "sha256"] {
        assert!(!body.contains(secret), "{body}");
    }
    assert!(
        expired.header("ratelimit").is_none(),
        "no quota was charged"
    );

    let unknown = gw.get_as(Some("no-such-key"), &path).await;
    assert_eq!(
        (unknown.status, unknown.json["code"].as_str()),
        (401, Some("unauthorized"))
    );
}

#[tokio::test]
async fn n_reads_make_n_audit_records_with_the_client_account_and_count() {
    let path = std::env::temp_dir().join(format!(
        "gateway-audit-e2e-{}-{}.jsonl",
        std::process::id(),
        line!()
    ));
    let _ = std::fs::remove_file(&path);
    let extra = format!(
        "{}\n[audit]\npath = \"{}\"\n",
        restricted_clients(),
        path.display()
    );
    let gw = spawn(&extra_config(&extra)).await;
    let accounts = gw.accounts_with(10);
    let (first, second) = (&accounts[0].okra_account_id, &accounts[1].okra_account_id);

    // N reads: pages of 1..=4 of one account, then a page of 7 of another (the second read of
    // the first account is a cache hit, the rendering cached too: still one record each).
    let mut expected = Vec::new();
    let mut narrations = Vec::new();
    for (account, limit) in [(first, 1), (first, 2), (first, 3), (first, 4), (second, 7)] {
        let reply = gw
            .get(&format!(
                "/v1/accounts/{account}/transactions?limit={limit}"
            ))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        for t in reply.json["data"].as_array().unwrap() {
            narrations.push(t["narration"].as_str().unwrap().to_owned());
        }
        expected.push((
            account.clone(),
            limit,
            reply.header("x-request-id").unwrap().to_owned(),
        ));
    }
    // Not data access: no record. A refused call: a record saying so.
    assert_eq!(gw.get("/v1/providers").await.status, 200);
    let refused = post_as(
        &gw,
        READER_KEY,
        &format!("/v1/accounts/{first}/transactions/refresh"),
    )
    .await;
    assert_eq!(refused.status, 403);

    gw.state.audit.flush().await;
    let text = std::fs::read_to_string(&path).unwrap();
    let records: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(records.len(), expected.len() + 1, "{text}");
    for (record, (account, limit, request_id)) in records.iter().zip(&expected) {
        assert_eq!(record["client"], "billing", "{record}");
        assert_eq!(record["operation"], "transactions:read");
        assert_eq!(record["provider"], "okra");
        assert_eq!(record["scope_kind"], "account");
        assert_eq!(record["scope_id"], account.as_str());
        assert_eq!(record["records"], *limit);
        assert_eq!(record["request_id"], request_id.as_str());
        assert_eq!(record["outcome"], "ok");
        assert_eq!(record["status"], 200);
        assert!(record["time"].as_str().unwrap().ends_with('Z'));
    }
    let denied = &records[expected.len()];
    assert_eq!(denied["client"], "reader");
    assert_eq!(denied["operation"], "transactions:refresh");
    assert_eq!(denied["outcome"], "denied");
    assert_eq!(denied["error"], "insufficient_scope");
    assert_eq!(denied["scope_id"], first.as_str());
    assert_eq!(denied["records"], Value::Null);

    // Never amounts, narrations or keys.
    for field in ["amount", "minor", "narration", "balance"] {
        assert!(!text.contains(field), "{field} in {text}");
    }
    for narration in narrations.iter().filter(|n| n.len() > 8) {
        assert!(!text.contains(narration.as_str()), "{narration}");
    }
    for key in [BILLING_KEY, READER_KEY] {
        assert!(!text.contains(key) && !text.contains(&key_hash(key)));
    }
    let _ = std::fs::remove_file(&path);
}

/// [`base_config`] with the default provider `okra` and `extra` appended.
fn extra_config(extra: &str) -> String {
    base_config("okra", extra)
}
