//! One helper that sets the scene: a sandbox on a free port and a client that speaks to it.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use sandbox::{AccountInfo, Directory, Sandbox, SandboxConfig};
use serde_json::value::RawValue;
use serde_json::{Value, json};

pub struct TestSandbox {
    pub sandbox: Sandbox,
    pub http: reqwest::Client,
    pub dir: Directory,
}

/// An HTTP answer: status, headers, raw body, and the body as JSON when it is JSON.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

pub fn client(timeout: Option<Duration>) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder().no_proxy();
    if let Some(t) = timeout {
        builder = builder.timeout(t);
    }
    builder.build().unwrap()
}

pub async fn spawn() -> TestSandbox {
    spawn_with(SandboxConfig {
        refresh_duration: Duration::from_millis(200),
        ..SandboxConfig::default()
    })
    .await
}

pub async fn spawn_with(config: SandboxConfig) -> TestSandbox {
    let sandbox = sandbox::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = sandbox.directory();
    TestSandbox {
        sandbox,
        http: client(None),
        dir,
    }
}

async fn answer(resp: reqwest::Response) -> Answer {
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        text,
        json,
    }
}

impl TestSandbox {
    /// The account with the most transactions.
    pub fn big_account(&self) -> &AccountInfo {
        self.dir
            .accounts()
            .max_by_key(|a| a.transaction_count)
            .unwrap()
    }

    /// The account carrying the deliberate edge cases (the one with a 1-kobo credit).
    pub fn edge_account(&self) -> &AccountInfo {
        // The last customer's first account; its history is small enough for one page of 100.
        &self.dir.customers.last().unwrap().accounts[0]
    }

    /// An account without transactions.
    pub fn empty_account(&self) -> &AccountInfo {
        self.dir
            .accounts()
            .find(|a| a.transaction_count == 0)
            .unwrap()
    }

    pub fn okra_url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.okra_base_url())
    }

    /// POST to an Okra path (`/transactions/getByAccount`) with the right key.
    pub async fn okra(&self, path: &str, body: Value) -> Answer {
        self.okra_as(path, body, Some("Bearer okra_test_secret"))
            .await
    }

    pub async fn okra_as(&self, path: &str, body: Value, auth: Option<&str>) -> Answer {
        let mut req = self.http.post(self.okra_url(path)).json(&body);
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        answer(req.send().await.unwrap()).await
    }

    pub async fn okra_get(&self, url: &str) -> Answer {
        let req = self
            .http
            .get(url)
            .header("Authorization", "Bearer okra_test_secret");
        answer(req.send().await.unwrap()).await
    }

    /// GET the Mono-style route with the right headers and these query parameters.
    pub async fn mono(&self, query: &[(&str, &str)]) -> Answer {
        self.mono_as(query, Some("test_mono_secret"), Some("mono_test_app"))
            .await
    }

    pub async fn mono_as(
        &self,
        query: &[(&str, &str)],
        auth: Option<&str>,
        app_id: Option<&str>,
    ) -> Answer {
        let url = format!(
            "{}/api/v1/financial/account_transactions",
            self.sandbox.mono_base_url()
        );
        let mut req = self.http.get(url).query(query);
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        if let Some(a) = app_id {
            req = req.header("AppId", a);
        }
        answer(req.send().await.unwrap()).await
    }

    /// Every Okra transaction of an account, walking getByAccount pages of 100.
    pub async fn okra_all(&self, okra_account_id: &str) -> Vec<OkraTx> {
        let mut all = Vec::new();
        let mut page = 1;
        loop {
            let a = self
                .okra(
                    "/transactions/getByAccount",
                    json!({"account": okra_account_id, "page": page, "limit": 100}),
                )
                .await;
            assert_eq!(a.status, 200, "{}", a.text);
            all.extend(okra_txs(&a.text));
            match a.json["data"]["pagination"]["nextPage"].as_u64() {
                Some(next) => page = next,
                None => break,
            }
        }
        all
    }

    /// Every Mono transaction of an account, in one not_paginated answer.
    pub async fn mono_all(&self, mono_account_id: &str) -> Vec<Value> {
        let a = self
            .mono(&[
                ("account_id", mono_account_id),
                ("response_mode", "not_paginated"),
            ])
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.json["entity"]["transactions"].as_array().unwrap().clone()
    }

    pub async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let url = format!("http://{}{path}", self.sandbox.addr());
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        answer(req.send().await.unwrap()).await
    }
}

/// Exact kobo from a decimal text (`"52.5"`, `"200.00"`, `0.30000000000000004`), integers only:
/// digits beyond the second decimal must be float noise (all 0s or all 9s after rounding).
pub fn kobo(text: &str) -> i64 {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    assert!(
        int.bytes().all(|b| b.is_ascii_digit()) && !int.is_empty(),
        "{text}"
    );
    assert!(frac.bytes().all(|b| b.is_ascii_digit()), "{text}");
    let mut two: String = frac.chars().take(2).collect();
    while two.len() < 2 {
        two.push('0');
    }
    let mut k = int.parse::<i64>().unwrap() * 100 + two.parse::<i64>().unwrap();
    let rest = frac.get(2..).unwrap_or("");
    if !rest.is_empty() {
        let significant = rest.get(..6).unwrap_or(rest);
        if significant.bytes().all(|b| b == b'9') {
            k += 1;
        } else {
            assert!(
                significant.bytes().all(|b| b == b'0'),
                "not float noise: {text}"
            );
        }
    }
    k
}

/// An Okra transaction's id, date and amount, the amount read from the JSON number's own text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OkraTx {
    pub id: String,
    pub trans_date: String,
    pub direction: &'static str,
    pub kobo: i64,
    pub amount_text: String,
}

#[derive(serde::Deserialize)]
struct RawTx {
    id: String,
    trans_date: String,
    #[serde(default)]
    debit: Option<Box<RawValue>>,
    #[serde(default)]
    credit: Option<Box<RawValue>>,
}

#[derive(serde::Deserialize)]
struct RawData {
    transaction: Vec<RawTx>,
}

#[derive(serde::Deserialize)]
struct RawEnvelope {
    data: RawData,
}

/// The transactions of an Okra answer's body, amounts from their text (never through a float).
pub fn okra_txs(body: &str) -> Vec<OkraTx> {
    let env: RawEnvelope = serde_json::from_str(body).unwrap();
    env.data
        .transaction
        .into_iter()
        .map(|t| {
            let (direction, raw) = match (t.debit, t.credit) {
                (Some(d), None) => ("debit", d),
                (None, Some(c)) => ("credit", c),
                other => panic!(
                    "exactly one of debit/credit expected in {}: {other:?}",
                    t.id
                ),
            };
            OkraTx {
                id: t.id,
                trans_date: t.trans_date,
                direction,
                kobo: kobo(raw.get()),
                amount_text: raw.get().to_owned(),
            }
        })
        .collect()
}

#[test]
fn kobo_parser_is_exact() {
    assert_eq!(kobo("52.5"), 5250);
    assert_eq!(kobo("0.01"), 1);
    assert_eq!(kobo("1200"), 120_000);
    assert_eq!(kobo("200.00"), 20_000);
    assert_eq!(kobo("0.30000000000000004"), 30);
    assert_eq!(kobo("0.29999999999999998"), 30);
}

/// An answer read the way every helper reads one.
pub async fn answer_of(resp: reqwest::Response) -> Answer {
    answer(resp).await
}
