//! The Mono-style simulator against `mono-style-account-transactions.txt`.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::helpers::{kobo, spawn};

fn assert_documented_transaction(tx: &Value) {
    assert!(tx["id"].is_u64(), "{tx}");
    for f in ["transaction_date", "value_date"] {
        let d = tx[f].as_str().unwrap();
        assert!(
            d.len() == 10 && &d[4..5] == "-" && &d[7..8] == "-",
            "{f}: {d}"
        );
    }
    assert!(matches!(
        tx["trans_type"].as_str(),
        Some("debit" | "credit")
    ));
    for f in ["bank_name", "reference", "narration"] {
        assert!(tx[f].is_string(), "{f}");
    }
    for f in ["amount", "available_balance"] {
        let s = tx[f].as_str().unwrap();
        let (_, frac) = s.split_once('.').unwrap();
        assert_eq!(frac.len(), 2, "{f}: {s}");
        kobo(s);
    }
}

#[tokio::test]
async fn pages_of_10_by_default_with_documented_page_links() {
    let t = spawn().await;
    let acc = t.big_account().clone();
    let first = t.mono(&[("account_id", &acc.mono_account_id)]).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let e = &first.json["entity"];
    let txs = e["transactions"].as_array().unwrap();
    assert_eq!(txs.len(), 10);
    txs.iter().for_each(assert_documented_transaction);
    assert_eq!(e["total"], acc.transaction_count);
    assert_eq!(e["previous_page"], "");
    assert_eq!(e["next_page"], 2);
    assert_eq!(e["current_page"], 1);
    assert_eq!(e["total_pages"], acc.transaction_count.div_ceil(10));

    // Walk everything with length=200 (the maximum): no gap, no duplicate.
    let mut ids = HashSet::new();
    let mut page = 1u64;
    let mut debit = 0;
    loop {
        let p = page.to_string();
        let a = t
            .mono(&[
                ("account_id", &acc.mono_account_id),
                ("length", "200"),
                ("page", &p),
            ])
            .await;
        let e = &a.json["entity"];
        // The docs' and the vendor client's types: previous_page a string, next_page a number.
        if page > 1 {
            assert_eq!(e["previous_page"], (page - 1).to_string());
        } else {
            assert_eq!(e["previous_page"], "");
        }
        for tx in e["transactions"].as_array().unwrap() {
            assert!(ids.insert(tx["id"].as_u64().unwrap()));
            if tx["trans_type"] == "debit" {
                debit += kobo(tx["amount"].as_str().unwrap());
            }
        }
        match e["next_page"].as_u64() {
            Some(n) => page = n,
            None => {
                assert!(e.get("next_page").is_none(), "absent on the last page: {e}");
                break;
            }
        }
    }
    assert_eq!(ids.len() as u64, acc.transaction_count);
    assert_eq!(debit, acc.debit_total_kobo);

    let clamped = t
        .mono(&[("account_id", &acc.mono_account_id), ("length", "1000")])
        .await;
    assert_eq!(
        clamped.json["entity"]["transactions"]
            .as_array()
            .unwrap()
            .len(),
        200
    );
    let past = t
        .mono(&[("account_id", &acc.mono_account_id), ("page", "999")])
        .await;
    assert_eq!(past.status, 200);
    assert_eq!(past.json["entity"]["transactions"], json!([]));
    assert!(past.json["entity"].get("next_page").is_none());
}

#[tokio::test]
async fn not_paginated_returns_everything_newest_first_with_running_balance() {
    let t = spawn().await;
    let acc = t.edge_account().clone();
    let a = t
        .mono(&[
            ("account_id", &acc.mono_account_id),
            ("response_mode", "not_paginated"),
        ])
        .await;
    let e = &a.json["entity"];
    let txs = e["transactions"].as_array().unwrap();
    assert_eq!(txs.len() as u64, acc.transaction_count);
    assert_eq!(e["total"], acc.transaction_count);
    assert_eq!(
        (e["current_page"].as_u64(), e["total_pages"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(e["previous_page"].as_str(), Some(""));
    assert!(e.get("next_page").is_none(), "{e}");
    for w in txs.windows(2) {
        let (newer, older) = (&w[0], &w[1]);
        assert!(newer["transaction_date"].as_str() >= older["transaction_date"].as_str());
        assert!(newer["id"].as_u64() > older["id"].as_u64());
        // Each balance is the previous one plus this transaction.
        let amount = kobo(newer["amount"].as_str().unwrap());
        let signed = if newer["trans_type"] == "debit" {
            -amount
        } else {
            amount
        };
        assert_eq!(
            kobo(newer["available_balance"].as_str().unwrap()),
            kobo(older["available_balance"].as_str().unwrap()) + signed
        );
    }
    let amounts: Vec<&str> = txs.iter().map(|t| t["amount"].as_str().unwrap()).collect();
    for expected in ["0.01", "0.07", "0.30", "25000000.00"] {
        assert!(amounts.contains(&expected), "{expected}");
    }
}

#[tokio::test]
async fn date_and_trans_type_filters_are_inclusive_and_exact() {
    let t = spawn().await;
    let acc = t.big_account().clone();
    let all = t.mono_all(&acc.mono_account_id).await;
    let (from, to) = ("2025-03-01", "2025-03-31");
    let a = t
        .mono(&[
            ("account_id", &acc.mono_account_id),
            ("start_date", from),
            ("end_date", to),
            ("trans_type", "credit"),
            ("response_mode", "not_paginated"),
        ])
        .await;
    let got = a.json["entity"]["transactions"].as_array().unwrap();
    let expected: Vec<&Value> = all
        .iter()
        .filter(|t| {
            let d = t["transaction_date"].as_str().unwrap();
            d >= from && d <= to && t["trans_type"] == "credit"
        })
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(got.iter().collect::<Vec<_>>(), expected);

    let one_day = all[0]["transaction_date"].as_str().unwrap();
    let same = t
        .mono(&[
            ("account_id", &acc.mono_account_id),
            ("start_date", one_day),
            ("end_date", one_day),
            ("length", "200"),
        ])
        .await;
    let n = all
        .iter()
        .filter(|t| t["transaction_date"] == one_day)
        .count();
    assert_eq!(same.json["entity"]["total"], n);

    let debits = t
        .mono(&[
            ("account_id", &acc.mono_account_id),
            ("trans_type", "debit"),
        ])
        .await;
    assert_eq!(debits.json["entity"]["total"], acc.debit_count);
}

#[tokio::test]
async fn last_transaction_id_starts_with_that_transaction_inclusive() {
    let t = spawn().await;
    let acc = t.edge_account().clone();
    let all = t.mono_all(&acc.mono_account_id).await;
    let pivot = &all[5];
    let id = pivot["id"].as_u64().unwrap().to_string();
    let a = t
        .mono(&[
            ("account_id", &acc.mono_account_id),
            ("last_transaction_id", &id),
            ("response_mode", "not_paginated"),
        ])
        .await;
    let got = a.json["entity"]["transactions"].as_array().unwrap();
    assert_eq!(got.as_slice(), &all[..6]);
    let unknown = t
        .mono(&[
            ("account_id", &acc.mono_account_id),
            ("last_transaction_id", "1"),
        ])
        .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn bad_queries_are_400_and_unknown_accounts_404_in_the_error_envelope() {
    let t = spawn().await;
    let id = t.big_account().mono_account_id.clone();
    let cases: Vec<(Vec<(&str, &str)>, u16)> = vec![
        (vec![], 400),
        (vec![("account_id", "nope")], 404),
        (vec![("account_id", &t.big_account().okra_account_id)], 404),
        (vec![("account_id", &id), ("start_date", "01/02/2025")], 400),
        (vec![("account_id", &id), ("end_date", "2025-02-30")], 400),
        (vec![("account_id", &id), ("trans_type", "both")], 400),
        (vec![("account_id", &id), ("response_mode", "stream")], 400),
        (vec![("account_id", &id), ("response_mode", "webhook")], 400),
        (vec![("account_id", &id), ("page", "0")], 400),
        (vec![("account_id", &id), ("length", "ten")], 400),
        (
            vec![("account_id", &id), ("last_transaction_id", "abc")],
            400,
        ),
    ];
    for (query, status) in cases {
        let a = t.mono(&query).await;
        assert_eq!(a.status, status, "{query:?}: {}", a.text);
        assert!(a.json["error"].is_string(), "{}", a.text);
    }
}

#[tokio::test]
async fn mono_refuses_bearer_missing_or_wrong_keys_with_401() {
    let t = spawn().await;
    let id = t.big_account().mono_account_id.clone();
    let q = [("account_id", id.as_str())];
    for (auth, app) in [
        (None, Some("mono_test_app")),
        (Some("Bearer test_mono_secret"), Some("mono_test_app")),
        (Some("wrong"), Some("mono_test_app")),
        (Some("test_mono_secret"), None),
        (Some("test_mono_secret"), Some("other_app")),
        (Some("okra_test_secret"), Some("mono_test_app")),
    ] {
        let a = t.mono_as(&q, auth, app).await;
        assert_eq!(a.status, 401, "{auth:?} {app:?}");
        assert!(a.json["error"].is_string());
    }
}

/// A one-route HTTP receiver: answers the first `failures` requests 500, then 200, and hands
/// each received (headers, body) to the test.
async fn receiver(
    failures: usize,
) -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/mono", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut seen = 0;
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            let (head, body) = loop {
                let n = sock.read(&mut chunk).await.unwrap();
                if n == 0 {
                    break (String::new(), Vec::new());
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        let n = sock.read(&mut chunk).await.unwrap();
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    break (head, buf[end + 4..end + 4 + len].to_vec());
                }
            };
            seen += 1;
            let status = if seen <= failures {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let resp =
                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            sock.write_all(resp.as_bytes()).await.unwrap();
            let _ = tx.send((head, body));
        }
    });
    (url, rx)
}

#[tokio::test]
async fn webhook_mode_answers_at_once_then_delivers_the_not_paginated_entity() {
    let t = spawn().await;
    let acc = t.edge_account().clone();
    let (url, mut rx) = receiver(1).await;
    let a = t
        .mono(&[
            ("account_id", &acc.mono_account_id),
            ("response_mode", "webhook"),
            ("callback_url", &url),
            ("trans_type", "debit"),
        ])
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.json["entity"]["message"].is_string());

    // The first attempt is refused (500); the retry is delivered.
    let wait = Duration::from_secs(5);
    let (_, first) = tokio::time::timeout(wait, rx.recv())
        .await
        .unwrap()
        .unwrap();
    let (head, body) = tokio::time::timeout(wait, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, body);
    assert!(head.starts_with("POST /hooks/mono "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json")
    );
    let delivered: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(delivered["account_id"], acc.mono_account_id.as_str());

    // The sync appended 3 transactions (some may be credits); the entity is exactly what a
    // not_paginated read with the same filters gives now.
    let now = t
        .mono(&[
            ("account_id", &acc.mono_account_id),
            ("response_mode", "not_paginated"),
            ("trans_type", "debit"),
        ])
        .await;
    assert_eq!(delivered["entity"], now.json["entity"]);
    let after = t.sandbox.directory();
    let count = after
        .accounts()
        .find(|a| a.mono_account_id == acc.mono_account_id)
        .unwrap()
        .transaction_count;
    assert_eq!(count, acc.transaction_count + 3);
}
