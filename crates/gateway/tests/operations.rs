//! Operating the gateway as a process: `--version`, the access log, logs without ANSI codes,
//! graceful shutdown on SIGTERM, and the Prometheus scrape after real traffic (each family
//! checked against the sandbox's own request counters, then by `promtool check metrics`).
//!
//! Every test runs the real `gateway` binary on a free port with its stderr captured; where the
//! upstream traffic is counted, the sandbox runs in this test process so its counters and faults
//! are at hand.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panicking helper is a failed test

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sandbox::{Faults, SandboxConfig, Vendor};
use serde_json::Value;
use sha2::{Digest, Sha256};

const KEY: &str = "ops-test-key";

/// A gateway process and the lines it wrote to stderr.
struct GatewayProcess {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    base: String,
    http: reqwest::Client,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gateway-ops-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `gateway --config <toml>` with `env` set, and waits until it listens.
fn start_gateway(toml: &str, env: &[(&str, &str)]) -> GatewayProcess {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = TempDir::new();
    let config = dir.0.join("gateway.toml");
    std::fs::write(&config, toml).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_gateway"));
    command
        .arg("--config")
        .arg(&config)
        .env_remove("LOG_FORMAT")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let mut gateway = GatewayProcess {
        child,
        lines,
        base: String::new(),
        http: reqwest::Client::new(),
        _dir: dir,
    };
    let line = gateway.wait_for_line(|l| l.contains("listening on http://"));
    let start = line.find("listening on http://").unwrap() + "listening on ".len();
    let url: String = line[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"')
        .collect();
    gateway.base = url;
    gateway
}

impl GatewayProcess {
    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The first line matching `pred`, waiting up to 30 s for it.
    fn wait_for_line(&mut self, pred: impl Fn(&str) -> bool) -> String {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(line) = self.lines().into_iter().find(|l| pred(l)) {
                return line;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("gateway exited ({status}):\n{}", self.lines().join("\n"));
            }
            assert!(
                Instant::now() < until,
                "no such line in:\n{}",
                self.lines().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The access-log lines (JSON format) written so far.
    fn access_lines(&self) -> Vec<Value> {
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["target"] == "gateway::access")
            .collect()
    }

    async fn get(&self, path: &str, key: Option<&str>) -> (u16, String) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.text().await.unwrap_or_default())
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

fn key_hash() -> String {
    hex::encode(Sha256::digest(KEY.as_bytes()))
}

/// The embedded sandbox, one client, JSON logs unless `LOG_FORMAT` says otherwise.
fn embedded_config(extra: &str) -> String {
    format!(
        r#"
[server]
bind = "127.0.0.1:0"
workers = 1

[clients.billing]
api_key_sha256 = "{hash}"

[providers.okra]
kind = "okra"
base_url = "sandbox"
# The log and metrics checks count each request's upstream calls: a first read builds the
# whole snapshot before it answers.
early_first_page = false

[providers.mono]
kind = "mono"
base_url = "sandbox"

[routing]
default = "okra"

[sandbox]
enabled = true

[log]
format = "json"
{extra}
"#,
        hash = key_hash()
    )
}

/// Both providers pointing at `sandbox` (a separate server), with their credentials in the
/// environment variables [`sandbox_env`] sets.
fn external_config(sandbox: SocketAddr, okra: &str, mono: &str, extra: &str) -> String {
    format!(
        r#"
[server]
bind = "127.0.0.1:0"
workers = 2
shutdown_grace_secs = 10

[clients.billing]
api_key_sha256 = "{hash}"

[providers.okra]
kind = "okra"
base_url = "http://{sandbox}/v2"
secret_key = {{ env = "OPS_OKRA_SECRET" }}
early_first_page = false
{okra}

[providers.mono]
kind = "mono"
base_url = "http://{sandbox}"
secret_key = {{ env = "OPS_MONO_SECRET" }}
app_id = {{ env = "OPS_MONO_APP" }}
{mono}

[routing]
default = "okra"

[log]
format = "json"
{extra}
"#,
        hash = key_hash()
    )
}

fn sandbox_env(config: &SandboxConfig) -> Vec<(&'static str, String)> {
    vec![
        ("OPS_OKRA_SECRET", config.okra_secret.clone()),
        ("OPS_MONO_SECRET", config.mono_secret.clone()),
        ("OPS_MONO_APP", config.mono_app_id.clone()),
    ]
}

async fn start_sandbox() -> sandbox::Sandbox {
    let config = SandboxConfig {
        refresh_duration: Duration::from_millis(100),
        ..Default::default()
    };
    sandbox::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap()
}

fn accounts(sandbox: &sandbox::Sandbox, min: u64, max: u64) -> Vec<sandbox::AccountInfo> {
    sandbox
        .directory()
        .customers
        .into_iter()
        .flat_map(|c| c.accounts)
        .filter(|a| (min..=max).contains(&a.transaction_count))
        .collect()
}

#[test]
fn version_names_the_package_version_and_the_revision() {
    let out = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(&format!("gateway {} (revision ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    // The OpenAPI document carries the same version.
    let spec: Value = serde_json::from_str(&gateway::api::openapi_pretty()).unwrap();
    assert_eq!(spec["info"]["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn every_request_gets_one_access_line_with_its_status_and_no_query() {
    let gw = start_gateway(&embedded_config(""), &[]);
    let (_, providers) = gw.get("/v1/providers", Some(KEY)).await;
    assert!(providers.contains("okra"));
    let account = gw
        .lines()
        .iter()
        .find_map(|l| {
            let v: Value = serde_json::from_str(l).ok()?;
            let message = v["fields"]["message"].as_str()?.to_owned();
            let ids = message.strip_prefix("try: okra account ids [\"")?;
            Some(ids.split('"').next()?.to_owned())
        })
        .unwrap();
    let secret = "token-that-must-not-be-logged";
    let listing = format!("/v1/accounts/{account}/transactions?limit=2");
    let webhook = format!("/v1/webhooks/mono?job=job_x&token={secret}");
    let cases: Vec<(&str, &str, Option<&str>, u16)> = vec![
        ("GET", "/healthz", None, 200),
        ("HEAD", "/healthz", None, 200),
        ("GET", "/readyz", None, 200),
        ("GET", "/v1/providers", None, 401),
        ("GET", "/v1/providers", Some(KEY), 200),
        ("GET", "/nowhere", None, 404),
        ("POST", "/healthz", None, 405),
        ("GET", "/v1/transactions?from=2026-01-01", Some(KEY), 400),
        ("GET", &listing, Some(KEY), 200),
        ("GET", &listing, Some(KEY), 200),
        ("POST", &webhook, None, 404),
        ("GET", "/metrics", None, 200),
    ];
    for (i, (method, path, key, expected)) in cases.iter().enumerate() {
        let mut req = gw
            .http
            .request(method.parse().unwrap(), format!("{}{path}", gw.base))
            .header("x-request-id", format!("access-{i}"));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        let status = req.send().await.unwrap().status().as_u16();
        assert_eq!(status, *expected, "{method} {path}");
    }
    // Lines are written when the answer is; wait until the last one is there.
    let until = Instant::now() + Duration::from_secs(10);
    let ours = loop {
        let ours: Vec<Value> = gw
            .access_lines()
            .into_iter()
            .filter(|l| {
                l["fields"]["request_id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("access-"))
            })
            .collect();
        if ours.len() >= cases.len() || Instant::now() > until {
            break ours;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(ours.len(), cases.len(), "{ours:#?}");
    for (i, (method, _, key, expected)) in cases.iter().enumerate() {
        let line = ours
            .iter()
            .find(|l| l["fields"]["request_id"] == format!("access-{i}"))
            .unwrap_or_else(|| panic!("no access line for request {i}"));
        let fields = &line["fields"];
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(fields["status"], *expected, "{line}");
        assert_eq!(fields["method"], *method, "{line}");
        assert!(!fields["path"].as_str().unwrap().contains('?'), "{line}");
        assert_eq!(
            fields["client"],
            if key.is_some() && *expected != 401 {
                "billing"
            } else {
                "-"
            },
            "{line}"
        );
        assert!(fields["duration_ms"].as_f64().unwrap() >= 0.0, "{line}");
    }
    let line_of = |i: usize| {
        ours.iter()
            .find(|l| l["fields"]["request_id"] == format!("access-{i}"))
            .unwrap()["fields"]
            .clone()
    };
    // The first listing fetched the account's pages from Okra; the second was a cache hit.
    let (miss, hit) = (line_of(8), line_of(9));
    assert_eq!(miss["route"], "/v1/accounts/{account_id}/transactions");
    assert_eq!(miss["provider"], "okra");
    assert_eq!(miss["x_cache"], "miss");
    assert!(miss["upstream_calls"].as_u64().unwrap() >= 1, "{miss}");
    assert!(miss["bytes"].as_u64().unwrap() > 100, "{miss}");
    assert_eq!(hit["x_cache"], "hit");
    assert_eq!(hit["upstream_calls"], 0);
    assert_eq!(line_of(5)["route"], "unmatched");
    // Client mistakes are not warnings, and the webhook token never reaches the log.
    let all = gw.lines().join("\n");
    assert!(!all.contains(secret), "the query's token was logged");
    assert!(
        !gw.lines()
            .iter()
            .any(|l| l.contains("\"level\":\"WARN\"") && l.contains("access-")),
        "a client error was logged as a warning"
    );
}

#[tokio::test]
async fn text_logs_written_to_a_pipe_carry_no_ansi_codes() {
    let gw = start_gateway(&embedded_config(""), &[("LOG_FORMAT", "text")]);
    assert_eq!(gw.get("/nowhere", None).await.0, 404);
    let mut gw = gw;
    let line = gw.wait_for_line(|l| l.contains("gateway::access") && l.contains("status=404"));
    assert!(line.contains("route=\"unmatched\""), "{line}");
    let all = gw.lines().join("\n");
    assert!(!all.contains('\u{1b}'), "ANSI escape in: {all}");
    assert!(
        !all.trim_start().starts_with('{'),
        "LOG_FORMAT=text wins over log.format"
    );
}

#[tokio::test]
async fn sigterm_stops_accepting_finishes_the_request_in_flight_and_exits_0() {
    let sandbox = start_sandbox().await;
    let env = sandbox_env(sandbox.config());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut gw = start_gateway(&external_config(sandbox.addr(), "", "", ""), &env);
    let account = accounts(&sandbox, 1, u64::MAX).remove(0);
    sandbox.set_faults(
        Vendor::Mono,
        Faults {
            latency_ms: 1500,
            ..Default::default()
        },
    );
    let path = format!(
        "{}/v1/accounts/{}/transactions?provider=mono&limit=3",
        gw.base, account.mono_account_id
    );
    let request = tokio::spawn(gw.http.get(path).bearer_auth(KEY).send());
    // In flight once the sandbox has it.
    let until = Instant::now() + Duration::from_secs(10);
    while sandbox.stats().total(Vendor::Mono) == 0 {
        assert!(
            Instant::now() < until,
            "the request never reached the sandbox"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sent = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &gw.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    gw.wait_for_line(|l| l.contains("shutting down"));
    // No new connections while the request in flight finishes.
    let refused = reqwest::Client::new()
        .get(format!("{}/healthz", gw.base))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(refused.is_err(), "a new connection was served: {refused:?}");
    let response = request
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}\n{}", gw.lines().join("\n")));
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["data"].as_array().unwrap().len(),
        3.min(account.transaction_count as usize)
    );
    let until = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = gw.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < until, "still running 10 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.code(), Some(0), "{}", gw.lines().join("\n"));
    assert!(sent.elapsed() < Duration::from_secs(10));
    gw.wait_for_line(|l| l.contains("\"stopped\""));
    sandbox.stop().await;
}

/// One scraped sample: its labels and value.
type Samples = Vec<(BTreeMap<String, String>, f64)>;

/// Parses the Prometheus text format (as this exporter writes it) into samples by name.
fn parse_metrics(text: &str) -> BTreeMap<String, Samples> {
    let mut all: BTreeMap<String, Samples> = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap_or(f64::NAN);
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels = labels
            .split("\",")
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once("=\"").unwrap();
                (k.to_owned(), v.trim_end_matches('"').to_owned())
            })
            .collect();
        all.entry(name.to_owned())
            .or_default()
            .push((labels, value));
    }
    all
}

/// The sum of `name`'s samples whose labels include `with`.
fn sum(metrics: &BTreeMap<String, Samples>, name: &str, with: &[(&str, &str)]) -> f64 {
    metrics
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in the scrape"))
        .iter()
        .filter(|(labels, _)| {
            with.iter()
                .all(|(k, v)| labels.get(*k).is_some_and(|l| l == v))
        })
        .map(|(_, value)| value)
        .sum()
}

async fn scrape(gw: &GatewayProcess) -> (String, BTreeMap<String, Samples>) {
    let (status, text) = gw.get("/metrics", None).await;
    assert_eq!(status, 200);
    let parsed = parse_metrics(&text);
    (text, parsed)
}

#[tokio::test]
async fn metrics_after_real_traffic_agree_with_the_sandbox_and_pass_promtool() {
    let sandbox = start_sandbox().await;
    let env = sandbox_env(sandbox.config());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let secret = TempDir::new();
    let secret_file = secret.0.join("webhook-secret");
    std::fs::File::create(&secret_file)
        .unwrap()
        .write_all(b"ops-test-webhook-secret-0123456789")
        .unwrap();
    // The client's webhook points at a path the sandbox does not serve: one refused attempt.
    let toml = external_config(
        sandbox.addr(),
        "requests_per_minute = 6000\nburst = 6000\nbreaker_failure_threshold = 2\nmax_retries = 0",
        "retry_backoff_ms = 1\nmax_retries = 2",
        "[jobs]\nnotify_max_attempts = 1",
    )
    .replace(
        &format!("api_key_sha256 = \"{}\"", key_hash()),
        &format!(
            "api_key_sha256 = \"{}\"\nwebhook_url = \"http://{}/no-such-receiver\"\nwebhook_secret_file = \"{}\"",
            key_hash(),
            sandbox.addr(),
            secret_file.display()
        ),
    );
    let gw = start_gateway(&toml, &env);
    // Smallest first: two that span 2-3 Okra pages of 100, three more for failures.
    let mut all = accounts(&sandbox, 1, u64::MAX);
    all.sort_by_key(|a| a.transaction_count);
    assert!(
        all.len() >= 5 && (101..=300).contains(&all[2].transaction_count),
        "{all:?}"
    );
    let (two_pages, three_pages) = (&all[2], &all[3]);
    let (small, other, failing) = (&all[0], &all[1], [&all[0], &all[1], &all[4]]);
    let listing = |account: &sandbox::AccountInfo, provider: &str| {
        let id = match provider {
            "okra" => &account.okra_account_id,
            _ => &account.mono_account_id,
        };
        format!("/v1/accounts/{id}/transactions?provider={provider}&limit=5")
    };

    // Okra: a miss (several pages), then a hit.
    assert_eq!(gw.get(&listing(two_pages, "okra"), Some(KEY)).await.0, 200);
    assert_eq!(gw.get(&listing(two_pages, "okra"), Some(KEY)).await.0, 200);
    // Two identical requests at once while Okra is slow: one fetches, the other joins it.
    sandbox.set_faults(
        Vendor::Okra,
        Faults {
            latency_ms: 300,
            ..Default::default()
        },
    );
    let slow = listing(three_pages, "okra");
    let (a, b) = tokio::join!(gw.get(&slow, Some(KEY)), gw.get(&slow, Some(KEY)));
    assert_eq!((a.0, b.0), (200, 200));
    // Mono: the bulk read fails once with a 503 and is retried.
    sandbox.set_faults(
        Vendor::Mono,
        Faults {
            fail_next: 1,
            error_status: 503,
            ..Default::default()
        },
    );
    assert_eq!(gw.get(&listing(small, "mono"), Some(KEY)).await.0, 200);
    // Okra fails twice: its breaker opens, and the third call is held back.
    sandbox.set_faults(
        Vendor::Okra,
        Faults {
            error_rate: 1.0,
            error_status: 500,
            ..Default::default()
        },
    );
    // Two failures (502 upstream_unavailable) open the breaker; the third is held back (503).
    let mut statuses = Vec::new();
    for account in failing {
        statuses.push(gw.get(&listing(account, "okra"), Some(KEY)).await.0);
    }
    assert_eq!(statuses, [502, 502, 503]);
    sandbox.clear_faults();
    // Refused callers: no key, no route.
    assert_eq!(gw.get("/v1/providers", None).await.0, 401);
    assert_eq!(gw.get("/nowhere", None).await.0, 404);
    // A Mono refresh (webhook style): one upstream call, a job that succeeds, one notification
    // attempt that the receiver refuses, then given up.
    let refresh = gw
        .http
        .post(format!(
            "{}/v1/accounts/{}/transactions/refresh?provider=mono",
            gw.base, other.mono_account_id
        ))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status().as_u16(), 202);
    let job: Value = refresh.json().await.unwrap();
    let status_url = job["status_url"].as_str().unwrap().to_owned();
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = gw.get(&status_url, Some(KEY)).await;
        let job: Value = serde_json::from_str(&body).unwrap();
        if job["status"] == "succeeded" {
            break;
        }
        assert_ne!(job["status"], "failed", "{job}");
        assert!(Instant::now() < until, "the refresh never finished: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let until = Instant::now() + Duration::from_secs(10);
    let (text, m) = loop {
        let (text, m) = scrape(&gw).await;
        if m.contains_key("gateway_notification_attempts_total") || Instant::now() > until {
            break (text, m);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // Upstream requests: exactly what the sandbox received, per provider.
    let stats = sandbox.stats();
    let upstream = "gateway_upstream_requests_total";
    let okra_calls = sum(&m, upstream, &[("provider", "okra")]);
    let mono_calls = sum(&m, upstream, &[("provider", "mono")]);
    assert_eq!(okra_calls, stats.total(Vendor::Okra) as f64, "{text}");
    assert_eq!(mono_calls, stats.total(Vendor::Mono) as f64, "{text}");
    assert_eq!(
        sum(
            &m,
            upstream,
            &[
                ("provider", "okra"),
                ("outcome", "unavailable"),
                ("status", "500")
            ]
        ),
        2.0
    );
    assert_eq!(
        sum(
            &m,
            upstream,
            &[
                ("provider", "mono"),
                ("endpoint", "list_all"),
                ("status", "503")
            ]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &m,
            upstream,
            &[
                ("provider", "mono"),
                ("endpoint", "start_refresh"),
                ("outcome", "ok")
            ]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &m,
            "gateway_upstream_request_duration_seconds_count",
            &[("provider", "okra")]
        ),
        okra_calls
    );
    assert_eq!(
        sum(
            &m,
            "gateway_upstream_retries_total",
            &[("provider", "mono")]
        ),
        1.0
    );
    assert_eq!(sum(&m, "gateway_upstream_in_flight_requests", &[]), 0.0);
    // Every Okra request spent a quota cell; nobody is waiting for one.
    assert_eq!(
        sum(
            &m,
            "gateway_provider_quota_spent_total",
            &[("provider", "okra")]
        ),
        okra_calls
    );
    assert_eq!(sum(&m, "gateway_provider_quota_waiting_requests", &[]), 0.0);
    // Each configured client's weight in the fair lines (1 by default).
    assert!(
        sum(&m, "gateway_client_fair_share_weight", &[]) >= 1.0,
        "{text}"
    );
    // The fair line's gauges exist per provider, and nobody waits once the traffic is over.
    for name in [
        "gateway_provider_fair_line_waiting_requests",
        "gateway_provider_fair_line_waiting_clients",
    ] {
        assert!(
            text.contains(&format!("{name}{{provider=\"okra\"}} 0")),
            "{name}: {text}"
        );
    }
    // The breaker.
    let circuit = "gateway_provider_circuit_state";
    assert_eq!(
        sum(&m, circuit, &[("provider", "okra"), ("state", "open")]),
        1.0
    );
    assert_eq!(
        sum(&m, circuit, &[("provider", "mono"), ("state", "closed")]),
        1.0
    );
    assert_eq!(
        sum(
            &m,
            "gateway_upstream_throttled_total",
            &[("provider", "okra"), ("reason", "circuit_open")]
        ),
        1.0
    );
    // The cache.
    let lookups = "gateway_cache_lookups_total";
    assert!(sum(&m, lookups, &[("result", "hit")]) >= 1.0, "{text}");
    assert_eq!(
        sum(&m, lookups, &[("provider", "okra"), ("result", "miss")]),
        2.0
    );
    assert_eq!(
        sum(&m, lookups, &[("provider", "okra"), ("result", "joined")]),
        1.0
    );
    assert_eq!(
        sum(&m, lookups, &[("provider", "okra"), ("result", "error")]),
        3.0
    );
    assert!(
        sum(&m, "gateway_cache_bytes", &[("tier", "current")]) > 1000.0,
        "{text}"
    );
    assert_eq!(sum(&m, "gateway_cache_evictions_total", &[]), 0.0);
    // Snapshot fetches: every Okra request was one of their pages.
    assert_eq!(
        sum(
            &m,
            "gateway_snapshot_fetch_pages_sum",
            &[("provider", "okra")]
        ),
        okra_calls
    );
    assert_eq!(
        sum(
            &m,
            "gateway_snapshot_fetch_duration_seconds_count",
            &[("provider", "okra"), ("outcome", "ok")]
        ),
        2.0
    );
    assert!(
        okra_calls > 2.0 + 3.0,
        "the accounts should span several pages"
    );
    // Jobs and notifications.
    let jobs = "gateway_refresh_jobs_total";
    assert_eq!(
        sum(&m, jobs, &[("provider", "mono"), ("state", "created")]),
        1.0
    );
    assert_eq!(
        sum(&m, jobs, &[("provider", "mono"), ("state", "succeeded")]),
        1.0
    );
    assert_eq!(sum(&m, "gateway_refresh_runs_active", &[]), 0.0);
    let attempts = "gateway_notification_attempts_total";
    assert_eq!(sum(&m, attempts, &[("outcome", "refused")]), 1.0, "{text}");
    // Inbound requests, by route template and client name.
    let requests = "gateway_http_request_duration_seconds_count";
    let route = ("route", "/v1/accounts/{account_id}/transactions");
    assert_eq!(
        sum(
            &m,
            requests,
            &[route, ("status", "2xx"), ("client", "billing")]
        ),
        5.0
    );
    assert_eq!(
        sum(
            &m,
            requests,
            &[route, ("status", "5xx"), ("client", "billing")]
        ),
        3.0
    );
    assert_eq!(
        sum(
            &m,
            requests,
            &[
                ("route", "/v1/providers"),
                ("status", "4xx"),
                ("client", "-")
            ]
        ),
        1.0
    );
    assert_eq!(
        sum(&m, requests, &[("route", "unmatched"), ("status", "4xx")]),
        1.0
    );
    assert!(!text.contains(KEY), "an API key in the metrics");
    // The build, and no Redis families without Redis.
    assert_eq!(
        sum(
            &m,
            "gateway_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert!(!m.contains_key("gateway_redis_commands_total"));

    check_with_promtool(&text);
    sandbox.stop().await;
}

/// `promtool check metrics` on the scrape. Without promtool the check is skipped with a notice,
/// unless `REQUIRE_PROMTOOL` is set (CI sets it and installs promtool).
fn check_with_promtool(text: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            assert!(
                std::env::var_os("REQUIRE_PROMTOOL").is_none(),
                "promtool is required but cannot run ({e}): apt-get install prometheus"
            );
            eprintln!(
                "NOTE: promtool not found ({e}); `apt-get install prometheus` to check the scrape with it"
            );
            return;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- scrape ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A dependency reached over TCP, like the Redis check issue 12 registers.
struct TcpDependency(SocketAddr);

#[async_trait::async_trait]
impl gateway::readiness::ReadinessCheck for TcpDependency {
    fn name(&self) -> &str {
        "redis"
    }

    async fn check(&self) -> Result<(), String> {
        tokio::net::TcpStream::connect(self.0)
            .await
            .map(drop)
            .map_err(|e| format!("cannot connect to {}: {e}", self.0))
    }
}

#[tokio::test]
async fn readyz_is_503_while_a_registered_dependency_is_down_and_shows_the_breakers() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A free port with nothing listening: the dependency is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dependency = port.local_addr().unwrap();
    drop(port);
    let config = gateway::Config::from_toml(&embedded_config("")).unwrap();
    let app = gateway::Application::build(config).await.unwrap();
    app.readiness()
        .register(Arc::new(TcpDependency(dependency)));
    let addr = app.spawn();
    let http = reqwest::Client::new();
    let readyz = || async {
        let res = http
            .get(format!("http://{addr}/readyz"))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json::<Value>().await.unwrap())
    };

    let (status, body) = readyz().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"][0]["name"], "config");
    assert_eq!(body["checks"][0]["status"], "ok");
    assert_eq!(body["checks"][1]["name"], "redis");
    assert_eq!(body["checks"][1]["status"], "failing");
    assert!(
        body["checks"][1]["error"]
            .as_str()
            .unwrap()
            .contains("cannot connect")
    );
    assert_eq!(body["providers"][0]["name"], "mono");
    assert_eq!(body["providers"][1]["circuit"], "closed");
    let head = http
        .head(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status().as_u16(), 503);
    // Liveness does not depend on it.
    let health = http
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(health["revision"], gateway::metrics::REVISION);

    // The dependency comes up: ready.
    let _listener = tokio::net::TcpListener::bind(dependency).await.unwrap();
    let (status, body) = readyz().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"][1]["status"], "ok");
    assert!(body["checks"][1].get("error").is_none());
}

#[tokio::test]
async fn metrics_on_their_own_listener_are_not_on_the_api_port() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config =
        gateway::Config::from_toml(&embedded_config("[metrics]\nbind = \"127.0.0.1:0\"")).unwrap();
    let app = gateway::Application::build(config).await.unwrap();
    let metrics = app.metrics_addr().unwrap();
    let addr = app.spawn();
    let http = reqwest::Client::new();
    let api = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status().as_u16(), 404);
    let scrape = http
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(scrape.status().as_u16(), 200);
    assert!(
        scrape
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("text/plain; version=0.0.4"))
    );
    assert!(scrape.text().await.unwrap().contains("gateway_build_info{"));
}
