//! The Okra simulator, route by route, against `okra-transactions.txt` and the refresh page.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{okra_txs, spawn};

fn is_hex24(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_iso_timestamp(v: &Value) -> bool {
    // 2024-03-05T00:00:00.000Z
    v.as_str().is_some_and(|s| {
        s.len() == 24 && &s[4..5] == "-" && &s[10..11] == "T" && s.ends_with(".000Z")
    })
}

/// Every documented field with its documented JSON type.
fn assert_documented_transaction(tx: &Value) {
    assert!(is_hex24(&tx["_id"]), "{tx}");
    assert_eq!(tx["_id"], tx["id"]);
    let notes = &tx["notes"];
    assert!(notes["desc"].as_str().is_some_and(|d| !d.is_empty()));
    for f in [
        "topics",
        "places",
        "people",
        "actions",
        "subjects",
        "prepositions",
    ] {
        assert!(notes[f].is_array(), "notes.{f}");
    }
    assert!(tx["manual"].is_boolean() && tx["reconciled"].is_boolean());
    for f in ["fetched", "record", "actions", "checked"] {
        assert!(tx[f].is_array(), "{f}");
    }
    for f in ["trans_date", "cleared_date", "created_at", "last_updated"] {
        assert!(is_iso_timestamp(&tx[f]), "{f}: {}", tx[f]);
    }
    for f in [
        "unformatted_trans_date",
        "unformatted_cleared_date",
        "ref",
        "env",
    ] {
        assert!(tx[f].is_string(), "{f}");
    }
    let debit = tx.get("debit").filter(|v| !v.is_null());
    let credit = tx.get("credit").filter(|v| !v.is_null());
    assert!(
        debit.is_some() != credit.is_some(),
        "one of debit/credit: {tx}"
    );
    assert!(debit.or(credit).unwrap().is_number());
    for f in ["icon", "logo", "name", "status"] {
        assert!(tx["bank"][f].is_string(), "bank.{f}");
    }
    assert!(is_hex24(&tx["customer"]["_id"]) && tx["customer"]["name"].is_string());
    assert!(is_hex24(&tx["account"]["_id"]) && tx["account"]["name"].is_string());
    assert!(tx["__v"].is_i64());
}

fn pagination(a: &Value) -> &Value {
    &a["data"]["pagination"]
}

#[tokio::test]
async fn every_route_answers_the_documented_envelope_under_both_prefixes() {
    let t = spawn().await;
    let acc = t.edge_account().clone();
    let customer = t.dir.customers.last().unwrap().okra_customer_id.clone();
    for prefix in ["", "/sandbox"] {
        let by_account = t
            .okra(
                &format!("{prefix}/transactions/getByAccount"),
                json!({"account": acc.okra_account_id, "page": "1", "limit": "5"}),
            )
            .await;
        assert_eq!(by_account.status, 200, "{}", by_account.text);
        assert_eq!(by_account.json["status"], "success");
        assert_eq!(
            by_account.json["message"],
            "Transactions retrieved succesfully"
        );
        let txs = by_account.json["data"]["transaction"].as_array().unwrap();
        assert_eq!(txs.len(), 5);
        txs.iter().for_each(assert_documented_transaction);
        let env = if prefix.is_empty() {
            "production"
        } else {
            "sandbox"
        };
        assert_eq!(txs[0]["env"], env);

        let id = txs[0]["_id"].as_str().unwrap();
        let by_id = t
            .okra(&format!("{prefix}/transactions/getById"), json!({"id": id}))
            .await;
        assert_eq!(by_id.status, 200);
        assert_eq!(by_id.json["data"]["transaction"][0], txs[0]);
        assert_eq!(pagination(&by_id.json)["totalDocs"], 1);

        let first = acc.first_date.clone().unwrap();
        let last = acc.last_date.clone().unwrap();
        for body in [
            json!({"customer_id": customer, "from": first, "to": last, "page": 1, "limit": 3}),
            json!({"customer": customer, "from": first, "to": last, "page": "1", "limit": "3"}),
        ] {
            let a = t
                .okra(&format!("{prefix}/transactions/getByCustomerDate"), body)
                .await;
            assert_eq!(a.status, 200, "{}", a.text);
            let tx = &a.json["data"]["transaction"][0];
            assert_documented_transaction(tx);
            assert!(tx["analyzed"].is_array() && tx["ner"]["TRANS_TYPE"].is_string());
            assert!(tx["ner_v"].is_i64());
        }

        let by_date = t
            .okra(
                &format!("{prefix}/transactions/getByDate"),
                json!({"from": "2026-01-01", "to": "2026-01-31", "page": 2, "limit": 7}),
            )
            .await;
        assert_eq!(by_date.status, 200);
        let p = pagination(&by_date.json);
        assert_eq!(
            (p["page"].as_u64(), p["limit"].as_u64()),
            (Some(2), Some(7))
        );
        assert_eq!(p["prevPage"], 1);
        assert_eq!(p["pagingCounter"], 8);
        for tx in by_date.json["data"]["transaction"].as_array().unwrap() {
            assert_documented_transaction(tx);
            let d = tx["trans_date"].as_str().unwrap();
            assert!(("2026-01-01".."2026-02-01").contains(&d), "{d}");
        }

        let by_nuban = t
            .okra(
                &format!("{prefix}/transactions/getByNuban"),
                json!({"nuban": acc.nuban, "limit": 100}),
            )
            .await;
        assert_eq!(by_nuban.status, 200);
        let txs = by_nuban.json["data"]["transaction"].as_array().unwrap();
        assert!(txs.iter().all(|tx| tx["branch"].is_string()));
        let credit = txs.iter().find(|tx| tx.get("credit").is_some()).unwrap();
        assert!(credit["debit"].is_null() && credit.get("debit").is_some());
        txs.iter().for_each(assert_documented_transaction);
    }
}

#[tokio::test]
async fn amounts_are_naira_numbers_written_from_kobo() {
    let t = spawn().await;
    let acc = t.edge_account().clone();
    let a = t
        .okra(
            "/transactions/getByAccount",
            json!({"account": acc.okra_account_id, "limit": 100}),
        )
        .await;
    let txs = okra_txs(&a.text);
    let texts: Vec<&str> = txs.iter().map(|t| t.amount_text.as_str()).collect();
    assert!(
        texts.contains(&"0.01") && texts.contains(&"0.07"),
        "{texts:?}"
    );
    assert!(texts.contains(&"25000000"));
    assert_eq!(
        texts
            .iter()
            .filter(|t| **t == "0.30000000000000004")
            .count(),
        1
    );
    assert!(
        texts
            .iter()
            .all(|t| !t.ends_with(".00") && !t.contains('e'))
    );
    // Several identical amounts on one day.
    let same_day = txs
        .iter()
        .filter(|t| t.amount_text == "200" && t.direction == "debit")
        .fold(std::collections::HashMap::<&str, u32>::new(), |mut m, t| {
            *m.entry(t.trans_date.as_str()).or_default() += 1;
            m
        });
    assert!(same_day.values().any(|n| *n >= 3), "{same_day:?}");
}

#[tokio::test]
async fn get_by_account_pages_to_the_last_page_without_gap_or_duplicate() {
    let t = spawn().await;
    let acc = t.big_account().clone();
    let txs = t.okra_all(&acc.okra_account_id).await;
    assert_eq!(txs.len() as u64, acc.transaction_count);
    let ids: HashSet<&str> = txs.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids.len(), txs.len(), "duplicates across pages");
    // Newest first, ties by id descending.
    for w in txs.windows(2) {
        assert!((&w[0].trans_date, &w[0].id) > (&w[1].trans_date, &w[1].id));
    }
    let sum = |dir: &str| -> i64 {
        txs.iter()
            .filter(|t| t.direction == dir)
            .map(|t| t.kobo)
            .sum()
    };
    assert_eq!(sum("debit"), acc.debit_total_kobo);
    assert_eq!(sum("credit"), acc.credit_total_kobo);

    let total_pages = acc.transaction_count.div_ceil(100);
    let last = t
        .okra(
            "/transactions/getByAccount",
            json!({"account": acc.okra_account_id, "page": total_pages, "limit": 100}),
        )
        .await;
    let p = pagination(&last.json);
    assert_eq!(p["hasNextPage"], false);
    assert!(p["nextPage"].is_null());
    assert_eq!(p["totalPages"], total_pages);
    assert_eq!(p["totalDocs"], acc.transaction_count);

    let past = t
        .okra(
            "/transactions/getByAccount",
            json!({"account": acc.okra_account_id, "page": total_pages + 3, "limit": 100}),
        )
        .await;
    assert_eq!(past.status, 200);
    assert_eq!(past.json["data"]["transaction"], json!([]));
    assert_eq!(pagination(&past.json)["hasNextPage"], false);
    assert_eq!(pagination(&past.json)["prevPage"], total_pages + 2);
}

#[tokio::test]
async fn limit_defaults_to_10_and_is_clamped_to_100() {
    let t = spawn().await;
    let acc = t.big_account().clone();
    let default = t
        .okra(
            "/transactions/getByAccount",
            json!({"account": acc.okra_account_id}),
        )
        .await;
    let p = pagination(&default.json);
    assert_eq!(
        (p["limit"].as_u64(), p["page"].as_u64()),
        (Some(10), Some(1))
    );
    assert!(p["prevPage"].is_null() && p["hasPrevPage"] == false);
    assert_eq!(p["nextPage"], 2);
    assert_eq!(
        default.json["data"]["transaction"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    let big = t
        .okra(
            "/transactions/getByAccount",
            json!({"account": acc.okra_account_id, "limit": "500"}),
        )
        .await;
    assert_eq!(pagination(&big.json)["limit"], 100);
    assert_eq!(
        big.json["data"]["transaction"].as_array().unwrap().len(),
        100
    );
    let empty = t
        .okra(
            "/transactions/getByAccount",
            json!({"account": t.empty_account().okra_account_id}),
        )
        .await;
    assert_eq!(empty.status, 200);
    assert_eq!(pagination(&empty.json)["totalDocs"], 0);
    assert_eq!(pagination(&empty.json)["totalPages"], 1);
}

#[tokio::test]
async fn bad_bodies_are_400_and_unknown_things_404_in_the_okra_envelope() {
    let t = spawn().await;
    let acc = t.big_account().clone();
    let cases = [
        ("/transactions/getByAccount", json!({}), 400),
        (
            "/transactions/getByAccount",
            json!({"account": acc.okra_account_id, "page": "two"}),
            400,
        ),
        (
            "/transactions/getByAccount",
            json!({"account": acc.okra_account_id, "limit": 0}),
            400,
        ),
        (
            "/transactions/getByDate",
            json!({"from": "2026-13-01", "to": "2026-01-01"}),
            400,
        ),
        (
            "/transactions/getByDate",
            json!({"from": "2026-01-01"}),
            400,
        ),
        (
            "/transactions/getByCustomerDate",
            json!({"from": "2026-01-01", "to": "2026-01-02"}),
            400,
        ),
        ("/transactions/getByNuban", json!({"nuban": "12ab"}), 400),
        (
            "/transactions/getById",
            json!({"id": "000000000000000000000000"}),
            404,
        ),
        (
            "/transactions/getByAccount",
            json!({"account": "000000000000000000000000"}),
            404,
        ),
        (
            "/transactions/getByCustomerDate",
            json!({"customer_id": "nope", "from": "2026-01-01", "to": "2026-01-02"}),
            404,
        ),
        (
            "/transactions/getByNuban",
            json!({"nuban": "0000000000"}),
            404,
        ),
        ("/transactions/refresh", json!({"account_id": "nope"}), 404),
        ("/transactions/refresh", json!({}), 400),
    ];
    for (path, body, status) in cases {
        let a = t.okra(path, body.clone()).await;
        assert_eq!(a.status, status, "{path} {body}: {}", a.text);
        assert_eq!(a.json["status"], "error");
        assert!(a.json["message"].is_string());
    }
    let not_json = t
        .http
        .post(t.okra_url("/transactions/getByAccount"))
        .header("Authorization", "Bearer okra_test_secret")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
}

#[tokio::test]
async fn okra_refuses_missing_or_wrong_keys_with_401() {
    let t = spawn().await;
    let body = json!({"account": t.big_account().okra_account_id});
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("okra_test_secret"),
        Some("Basic okra_test_secret"),
        Some("Bearer test_mono_secret"),
    ] {
        let a = t
            .okra_as("/transactions/getByAccount", body.clone(), auth)
            .await;
        assert_eq!(a.status, 401, "{auth:?}");
        assert_eq!(a.json["status"], "error");
        assert!(a.json["message"].is_string());
    }
}

#[tokio::test]
async fn refresh_runs_then_completes_with_new_transactions_seen_by_both_vendors() {
    // The job runs until the test says the vendor is done: no race with a timer.
    let t = crate::helpers::spawn_with(sandbox::SandboxConfig {
        refresh_duration: Duration::from_secs(3600),
        ..sandbox::SandboxConfig::default()
    })
    .await;
    let acc = t.edge_account().clone();
    let started = t
        .okra(
            "/transactions/refresh",
            json!({"account_id": acc.okra_account_id}),
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.text);
    assert_eq!(started.json["status"], "success");
    assert_eq!(started.json["message"], "Transactions processing...");
    let url = started.json["data"]["callback_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let expected_prefix = format!("http://{}/v2/callback?record=", t.sandbox.addr());
    assert!(url.starts_with(&expected_prefix), "{url}");
    assert!(url.ends_with("&method=REFRESH_TRANSACTIONS"));

    let running = t.okra_get(&url).await;
    assert_eq!(running.status, 200);
    assert_eq!(running.json["status"], "success");
    assert_eq!(running.json["data"]["running"], true);
    assert_eq!(running.json["data"]["completed"], false);

    t.sandbox.finish_refresh_jobs();
    let done = t.okra_get(&url).await;
    assert_eq!(done.json["data"]["running"], false);
    assert_eq!(done.json["data"]["completed"], true);
    assert_eq!(done.json["data"]["transactions_added"], 3);
    assert_eq!(done.json["data"]["account"], acc.okra_account_id.as_str());
    // Polling again does not add more.
    let again = t.okra_get(&url).await;
    assert_eq!(again.json["data"]["transactions_added"], 3);

    let after = t.sandbox.directory();
    let now = after
        .accounts()
        .find(|a| a.okra_account_id == acc.okra_account_id)
        .unwrap()
        .clone();
    assert_eq!(now.transaction_count, acc.transaction_count + 3);
    assert!(now.last_date > acc.last_date);
    let okra = t.okra_all(&acc.okra_account_id).await;
    assert_eq!(okra.len() as u64, now.transaction_count);
    let last = acc.last_date.clone().unwrap();
    assert_eq!(
        okra.iter().filter(|t| t.trans_date[..10] > *last).count(),
        3
    );
    let mono = t.mono_all(&acc.mono_account_id).await;
    assert_eq!(mono.len() as u64, now.transaction_count);
    let newer = mono
        .iter()
        .filter(|t| t["transaction_date"].as_str().unwrap() > last.as_str())
        .count();
    assert_eq!(newer, 3);

    let unknown = t
        .okra_get(&format!(
            "http://{}/v2/callback?record=ffffffffffffffffffffffff&method=REFRESH_TRANSACTIONS",
            t.sandbox.addr()
        ))
        .await;
    assert_eq!(unknown.status, 404);
    let unauthorized = t.http.get(&url).send().await.unwrap();
    assert_eq!(unauthorized.status(), 401);
}

#[tokio::test]
async fn refresh_under_the_sandbox_prefix_calls_back_there() {
    let t = spawn().await;
    let a = t
        .okra(
            "/sandbox/transactions/refresh",
            json!({"account_id": t.empty_account().okra_account_id}),
        )
        .await;
    let url = a.json["data"]["callback_url"].as_str().unwrap();
    assert!(url.contains("/v2/sandbox/callback?record="), "{url}");
    t.sandbox.finish_refresh_jobs();
    let done = t.okra_get(url).await;
    assert_eq!(done.json["data"]["completed"], true);
    let after = t.sandbox.directory();
    let acc = after
        .accounts()
        .find(|a| a.okra_account_id == t.empty_account().okra_account_id)
        .unwrap();
    assert_eq!(acc.transaction_count, 3);
    assert!(acc.first_date.as_deref() > Some("2026-10-31"));
}
