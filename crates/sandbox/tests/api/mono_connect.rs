//! Mono's own API: auth, the three answer shapes, paging URLs, filters, bulk reads and Data
//! Sync, all over the seeded ledger the other vendors serve.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Answer, TestSandbox, spawn};

impl TestSandbox {
    async fn mono_connect(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        key: Option<&str>,
    ) -> Answer {
        let mut req = self.http.request(
            method,
            format!("{}{path_and_query}", self.sandbox.mono_connect_base_url()),
        );
        if let Some(key) = key {
            req = req.header("mono-sec-key", key);
        }
        crate::helpers::answer_of(req.send().await.unwrap()).await
    }

    async fn mc_get(&self, path_and_query: &str) -> Answer {
        let key = self.dir.mono_connect.secret.clone();
        self.mono_connect(reqwest::Method::GET, path_and_query, Some(&key))
            .await
    }
}

fn sums(records: &[Value]) -> (i64, i64) {
    let total = |kind: &str| {
        records
            .iter()
            .filter(|r| r["type"] == kind)
            .map(|r| r["amount"].as_i64().unwrap())
            .sum()
    };
    (total("debit"), total("credit"))
}

#[tokio::test]
async fn a_wrong_or_missing_key_is_a_401_in_monos_error_shape() {
    let sb = spawn().await;
    let account = sb.big_account().mono_account_id.clone();
    for key in [None, Some("live_sk_wrong")] {
        let answer = sb
            .mono_connect(
                reqwest::Method::GET,
                &format!("/v2/accounts/{account}/transactions"),
                key,
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.json["status"], "failed");
        assert_eq!(answer.json["message"], "No valid API key provided");
    }
    let unknown = sb
        .mc_get("/v2/accounts/000000000000000000000000/transactions")
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn every_shape_pages_the_whole_account_to_the_kobo() {
    let sb = spawn().await;
    let account = sb.big_account().clone();
    let id = &account.mono_account_id;
    for (path, records_at, paging_at) in [
        (format!("/v2/accounts/{id}/transactions"), "/data", "/meta"),
        (
            format!("/v1/accounts/{id}/transactions"),
            "/data/transactions",
            "/data/paging",
        ),
        (format!("/accounts/{id}/transactions"), "/data", "/paging"),
    ] {
        let mut all = Vec::new();
        let mut url = format!("{path}?limit=50");
        loop {
            let answer = sb.mc_get(&url).await;
            assert_eq!(answer.status, StatusCode::OK, "{url}: {}", answer.text);
            all.extend(
                answer
                    .json
                    .pointer(records_at)
                    .unwrap()
                    .as_array()
                    .unwrap()
                    .clone(),
            );
            let paging = answer.json.pointer(paging_at).unwrap();
            assert_eq!(paging["total"], account.transaction_count);
            match paging["next"].as_str() {
                // A full URL on the sandbox: only its path and query are used here.
                Some(next) => {
                    let base = sb.sandbox.mono_connect_base_url();
                    assert!(next.starts_with(&base), "{next}");
                    assert!(next.contains("limit=50"), "{next}");
                    url = next[base.len()..].to_owned();
                }
                None => break,
            }
        }
        assert_eq!(all.len() as u64, account.transaction_count, "{path}");
        assert_eq!(
            sums(&all),
            (account.debit_total_kobo, account.credit_total_kobo),
            "{path}"
        );
        let id_key = if path.starts_with("/accounts") {
            "_id"
        } else {
            "id"
        };
        assert!(
            all.iter()
                .all(|r| r[id_key].as_str().is_some_and(|s| s.len() == 24))
        );
        let has_currency = all.iter().all(|r| r["currency"] == "NGN");
        assert_eq!(has_currency, !path.starts_with("/v2"), "{path}");
    }
}

#[tokio::test]
async fn paginate_false_and_filters() {
    let sb = spawn().await;
    let account = sb.big_account().clone();
    let id = &account.mono_account_id;
    let all = sb
        .mc_get(&format!("/v2/accounts/{id}/transactions?paginate=false"))
        .await;
    let records = all.json["data"].as_array().unwrap();
    assert_eq!(records.len() as u64, account.transaction_count);
    assert_eq!(all.json["meta"]["next"], Value::Null);
    let debits = sb
        .mc_get(&format!(
            "/v2/accounts/{id}/transactions?paginate=false&type=debit"
        ))
        .await;
    let debits = debits.json["data"].as_array().unwrap().clone();
    assert_eq!(sums(&debits), (account.debit_total_kobo, 0));
    let first = account.first_date.clone().unwrap();
    let (y, m, d) = (&first[0..4], &first[5..7], &first[8..10]);
    let day = sb
        .mc_get(&format!(
            "/v2/accounts/{id}/transactions?paginate=false&start={d}-{m}-{y}&end={d}-{m}-{y}"
        ))
        .await;
    let day = day.json["data"].as_array().unwrap().clone();
    assert!(!day.is_empty());
    assert!(
        day.iter()
            .all(|r| r["date"].as_str().unwrap().starts_with(&first))
    );
    for bad in [
        "type=transfer",
        "paginate=maybe",
        "limit=0",
        "start=2020/10/01",
    ] {
        let answer = sb
            .mc_get(&format!("/v2/accounts/{id}/transactions?{bad}"))
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(answer.json["status"], "failed");
    }
}

#[tokio::test]
async fn data_sync_adds_transactions_once_per_two_minutes() {
    let sb = spawn().await;
    let account = sb.big_account().clone();
    let id = &account.mono_account_id;
    let key = sb.dir.mono_connect.secret.clone();
    let sync = sb
        .mono_connect(
            reqwest::Method::POST,
            &format!("/accounts/{id}/sync"),
            Some(&key),
        )
        .await;
    assert_eq!(sync.status, StatusCode::OK);
    assert_eq!(sync.json["code"], "SYNC_SUCCESSFUL");
    assert_eq!(sync.json["hasNewData"], true);
    let after = sb
        .mc_get(&format!("/v2/accounts/{id}/transactions?limit=1"))
        .await;
    assert_eq!(after.json["meta"]["total"], account.transaction_count + 3);
    let again = sb
        .mono_connect(
            reqwest::Method::POST,
            &format!("/accounts/{id}/sync"),
            Some(&key),
        )
        .await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(again.headers.contains_key("retry-after"));
}
