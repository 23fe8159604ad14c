//! The routes and JSON types the vendors' own client libraries rely on, and the messy-data
//! option: what `okra-node`, `okra-py-official` and Dojah's clients send, answered in each
//! vendor's envelope.

use serde_json::{Value, json};

use crate::helpers::{kobo, spawn};
use sandbox::{Faults, Vendor};

/// POST to any path of the sandbox (the v1 routes live outside the `/v2` base URL).
async fn post(t: &crate::helpers::TestSandbox, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = t
        .http
        .post(format!("http://{}{path}", t.sandbox.addr()))
        .header("Authorization", "Bearer okra_test_secret");
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn ids(answer: &Value) -> Vec<String> {
    answer["data"]["transaction"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_clients_routes_answer_in_the_okra_envelope() {
    let t = spawn().await;
    let customer = t.dir.customers.last().unwrap();
    let account = &customer.accounts[0];
    let whole_customer: u64 = customer.accounts.iter().map(|a| a.transaction_count).sum();

    let (status, by_customer) = post(
        &t,
        "/v2/sandbox/transactions/getByCustomer",
        Some(json!({"customer": customer.okra_customer_id, "page": 1, "limit": 1})),
    )
    .await;
    assert_eq!(status, 200, "{by_customer}");
    assert_eq!(by_customer["status"], "success");
    assert_eq!(
        by_customer["data"]["pagination"]["totalDocs"],
        whole_customer
    );

    // getByBank: the bank's slug, as records carry it in `bank._id`.
    let (_, page) = post(
        &t,
        "/v2/transactions/getByAccount",
        Some(json!({"account": account.okra_account_id, "limit": 1})),
    )
    .await;
    let slug = page["data"]["transaction"][0]["bank"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, by_bank) = post(
        &t,
        "/v2/transactions/getByBank",
        Some(json!({"bank": slug, "page": 1, "limit": 100})),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        by_bank["data"]["transaction"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["bank"]["_id"] == slug.as_str())
    );

    // getByType: a direction and an exact amount.
    let first = &page["data"]["transaction"][0];
    let (field, direction) = if first["debit"].is_number() {
        ("debit", "debit")
    } else {
        ("credit", "credit")
    };
    let amount = first[field].clone();
    let (status, by_type) = post(
        &t,
        "/v2/transactions/getByType",
        Some(json!({"type": direction, "value": amount, "page": 1, "limit": 100})),
    )
    .await;
    assert_eq!(status, 200);
    assert!(ids(&by_type).contains(&first["_id"].as_str().unwrap().to_owned()));
    assert!(
        by_type["data"]["transaction"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t[field] == amount)
    );

    for (path, body, code) in [
        (
            "/v2/transactions/getByBank",
            json!({"bank": "no-such"}),
            404,
        ),
        (
            "/v2/transactions/getByType",
            json!({"type": "sideways"}),
            400,
        ),
        ("/v2/transactions/getByCustomer", json!({}), 400),
    ] {
        let (status, answer) = post(&t, path, Some(body)).await;
        assert_eq!(status, code, "{path}: {answer}");
        assert_eq!(answer["status"], "error", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_clients_v1_routes_answer_in_the_okra_envelope() {
    let t = spawn().await;
    let customer = t.dir.customers.last().unwrap();
    let account = &customer.accounts[0];
    for prefix in ["/v1", "/sandbox/v1"] {
        let (status, by_account) = post(
            &t,
            &format!("{prefix}/transaction/getByAccount"),
            Some(json!({"account": account.okra_account_id, "page": 1, "limit": 20})),
        )
        .await;
        assert_eq!(status, 200, "{by_account}");
        assert_eq!(
            by_account["data"]["pagination"]["totalDocs"],
            account.transaction_count
        );
        let id = ids(&by_account)[0].clone();
        let (status, by_id) = post(
            &t,
            &format!("{prefix}/transaction/getById"),
            Some(json!({"id": id, "page": 1, "limit": 20})),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(ids(&by_id), [id]);
        let (status, by_type) = post(
            &t,
            &format!("{prefix}/transaction/getByType"),
            Some(json!({"type": "ledger_balance", "amount": "4000", "page": 1, "limit": 20})),
        )
        .await;
        assert_eq!(status, 200, "{by_type}");
        let (status, by_options) = post(
            &t,
            &format!("{prefix}/transaction/byOptions"),
            Some(json!({"page": 1, "limit": 20, "options": {
                "first_name": customer.name.split(' ').next().unwrap(),
                "last_name": customer.name.split_once(' ').map(|(_, l)| l).unwrap_or(""),
            }})),
        )
        .await;
        assert_eq!(status, 200, "{by_options}");
        assert!(
            by_options["data"]["pagination"]["totalDocs"]
                .as_u64()
                .unwrap()
                > 0
        );
        let (status, all) = post(&t, &format!("{prefix}/products/transactions"), None).await;
        assert_eq!(status, 200, "{all}");
        let everything: u64 = t.dir.accounts().map(|a| a.transaction_count).sum();
        assert_eq!(all["data"]["pagination"]["totalDocs"], everything);
        // The v2-only routes are not v1 routes.
        let (status, _) = post(
            &t,
            &format!("{prefix}/transaction/getByNuban"),
            Some(json!({"nuban": account.nuban})),
        )
        .await;
        assert_eq!(status, 404);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messy_data_keeps_the_genuine_amounts_and_appends_three_unreadable_records_per_page() {
    let t = spawn().await;
    let account = t.edge_account().clone();
    let clean = t
        .okra(
            "/transactions/getByAccount",
            json!({"account": account.okra_account_id, "limit": 100}),
        )
        .await;
    t.sandbox.set_faults(
        Vendor::Okra,
        Faults {
            messy_data: true,
            ..Faults::default()
        },
    );
    t.sandbox.set_faults(
        Vendor::Mono,
        Faults {
            messy_data: true,
            ..Faults::default()
        },
    );
    let messy = t
        .okra(
            "/transactions/getByAccount",
            json!({"account": account.okra_account_id, "limit": 100}),
        )
        .await;
    let clean_txs = clean.json["data"]["transaction"].as_array().unwrap();
    let messy_txs = messy.json["data"]["transaction"].as_array().unwrap();
    assert_eq!(messy_txs.len(), clean_txs.len() + 3);
    assert_eq!(messy.json["data"]["pagination"]["nextPage"], false);
    assert_eq!(messy.json["data"]["pagination"]["prevPage"], "");
    assert_eq!(messy_txs[0]["cleared_date"], "soon");
    // Every genuine amount is still there, in another spelling.
    for (c, m) in clean_txs.iter().zip(messy_txs) {
        let field = if c["debit"].is_number() {
            "debit"
        } else {
            "credit"
        };
        let written = m[field].to_string();
        let digits: String = written
            .chars()
            .filter(|ch| ch.is_ascii_digit() || *ch == '.')
            .collect();
        let expected = c[field].to_string();
        assert!(
            digits.starts_with(&expected) || kobo(&digits) == kobo(&expected),
            "{written} vs {expected}"
        );
    }
    let mono = t
        .mono(&[("account_id", &account.mono_account_id), ("length", "200")])
        .await;
    let e = &mono.json["entity"];
    let txs = e["transactions"].as_array().unwrap();
    assert_eq!(txs.len() as u64, account.transaction_count + 3);
    assert_eq!(txs[0]["available_balance"], "N/A");
    assert_eq!(e["next_page"], false);
    assert!(e["previous_page"].is_null());
    assert_eq!(txs.last().unwrap(), "oops");
}
