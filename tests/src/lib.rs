//! End-to-end test helpers: start the gateway (with its embedded sandbox) on a free port and
//! talk HTTP to it, as a calling service would.

pub mod replicas;

use std::net::SocketAddr;

use gateway::{Application, Config};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The API key of the `billing` client in [`base_config`].
pub const BILLING_KEY: &str = "billing-key-e2e";
/// The API key of the `ledger` client in [`base_config`].
pub const LEDGER_KEY: &str = "ledger-key-e2e";

/// A gateway configuration with the embedded sandbox, both providers and two clients, with
/// `routing.default = default_provider`; `extra` is appended TOML. Without an `[audit]` section
/// in `extra`, [`spawn`] turns the audit trail off.
pub fn base_config(default_provider: &str, extra: &str) -> String {
    let hash = |key: &str| hex::encode(Sha256::digest(key.as_bytes()));
    format!(
        r#"
[server]
bind = "127.0.0.1:0"
workers = 1

[clients.billing]
api_key_sha256 = "{billing}"

[clients.ledger]
api_key_sha256 = "{ledger}"

[providers.okra]
kind = "okra"
base_url = "sandbox"

[providers.mono]
kind = "mono"
base_url = "sandbox"

[routing]
default = "{default_provider}"

[sandbox]
enabled = true
{extra}
"#,
        billing = hash(BILLING_KEY),
        ledger = hash(LEDGER_KEY),
    )
}

/// A running gateway and its embedded sandbox.
pub struct TestGateway {
    /// `http://ADDR`
    pub base: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// The embedded sandbox (faults, counters, directory).
    pub sandbox: sandbox::Sandbox,
    /// An HTTP client.
    pub http: reqwest::Client,
    /// The gateway's shared state (to look at its caches).
    pub state: actix_web::web::Data<gateway::state::AppState>,
}

/// Starts a gateway from a TOML configuration.
pub async fn spawn(toml: &str) -> TestGateway {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = match Config::from_toml(toml) {
        Ok(config) => config,
        Err(e) => panic!("test configuration: {e}"),
    };
    // The audit trail goes to stdout by default; tests that read it configure a file.
    if !toml.contains("[audit]") {
        config.audit = None;
    }
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => panic!("gateway start: {e}"),
    };
    let sandbox = match app.sandbox() {
        Some(sb) => sb.clone(),
        None => panic!("the test configuration embeds the sandbox"),
    };
    let state = app.state();
    let addr = app.spawn();
    TestGateway {
        base: format!("http://{addr}"),
        addr,
        sandbox,
        http: reqwest::Client::new(),
        state,
    }
}

/// Starts a gateway with [`base_config`].
pub async fn spawn_default(default_provider: &str) -> TestGateway {
    spawn(&base_config(default_provider, "")).await
}

/// The hex SHA-256 of an API key, as `api_key_sha256` takes it.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A response: status, headers and JSON body (`Value::Null` when not JSON).
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body as JSON.
    pub json: Value,
}

impl Reply {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl TestGateway {
    /// Waits until the gateway has no snapshot fill under way (a first page answered early
    /// leaves its fill going on behind it): before counting provider calls or expecting a hit.
    pub async fn settle(&self) {
        let wait = std::time::Duration::from_secs(30);
        if tokio::time::timeout(wait, self.state.snapshots.settled())
            .await
            .is_err()
        {
            panic!("the gateway's fills did not settle within {wait:?}");
        }
    }

    /// GET `path` with the billing client's key.
    pub async fn get(&self, path: &str) -> Reply {
        self.get_as(Some(BILLING_KEY), path).await
    }

    /// GET `path` with `key` (or no Authorization header).
    pub async fn get_as(&self, key: Option<&str>, path: &str) -> Reply {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        self.send(req).await
    }

    /// GET `path` with the billing client's key and one more header.
    pub async fn get_with_header(&self, path: &str, name: &str, value: &str) -> Reply {
        self.send(
            self.http
                .get(format!("{}{path}", self.base))
                .bearer_auth(BILLING_KEY)
                .header(name, value),
        )
        .await
    }

    /// Sends a prepared request.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let res = match req.send().await {
            Ok(res) => res,
            Err(e) => panic!("request failed: {e}"),
        };
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.unwrap_or_default();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            json,
        }
    }

    /// Every item of a listing, walked with cursors at `limit` per page.
    pub async fn walk(&self, path_and_query: &str, limit: u32) -> Vec<Value> {
        let sep = if path_and_query.contains('?') {
            '&'
        } else {
            '?'
        };
        let mut url = format!("{path_and_query}{sep}limit={limit}");
        let mut all = Vec::new();
        loop {
            let reply = self.get(&url).await;
            assert_eq!(reply.status, 200, "{url}: {}", reply.json);
            all.extend(reply.json["data"].as_array().cloned().unwrap_or_default());
            match reply.json["pagination"]["next_cursor"].as_str() {
                Some(cursor) => url = format!("{path_and_query}{sep}limit={limit}&cursor={cursor}"),
                None => break,
            }
        }
        all
    }

    /// The sandbox's accounts with at least `min` transactions.
    pub fn accounts_with(&self, min: u64) -> Vec<sandbox::AccountInfo> {
        self.sandbox
            .directory()
            .customers
            .into_iter()
            .flat_map(|c| c.accounts)
            .filter(|a| a.transaction_count >= min)
            .collect()
    }
}

/// The (debit, credit) kobo sums of a list of API transactions.
pub fn sums(items: &[Value]) -> (i64, i64) {
    let mut debit = 0;
    let mut credit = 0;
    for item in items {
        let minor = item["amount"]["minor"].as_i64().unwrap_or_default();
        match item["direction"].as_str() {
            Some("debit") => debit += minor,
            Some("credit") => credit += minor,
            other => panic!("direction {other:?}"),
        }
    }
    (debit, credit)
}
