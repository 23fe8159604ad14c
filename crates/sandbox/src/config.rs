//! The sandbox's knobs: start-up configuration, the two simulated vendors and their faults.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a sandbox is started. `Default` gives the values the gateway and the tests expect.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxConfig {
    /// Seed of the generated ledger: the same seed always gives the same data.
    pub seed: u64,
    /// The Okra secret key, sent as `Authorization: Bearer <secret>`.
    pub okra_secret: String,
    /// The Mono-style secret key, sent raw as `Authorization: <secret>`.
    pub mono_secret: String,
    /// The Mono-style app id, sent as `AppId: <app id>`.
    pub mono_app_id: String,
    /// Mono's secret key, sent as `mono-sec-key: <secret>`.
    pub mono_connect_secret: String,
    /// How long an Okra refresh job reports itself as running before it completes.
    pub refresh_duration: Duration,
    /// How many new transactions a completed Okra refresh or a Mono webhook sync appends.
    pub new_transactions_per_refresh: usize,
    /// Number of actix-web worker threads.
    pub workers: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            seed: 42,
            okra_secret: "okra_test_secret".to_owned(),
            mono_secret: "test_mono_secret".to_owned(),
            mono_app_id: "mono_test_app".to_owned(),
            mono_connect_secret: "test_sk_sandbox".to_owned(),
            refresh_duration: Duration::from_secs(2),
            new_transactions_per_refresh: 3,
            workers: 1,
        }
    }
}

/// One of the simulated vendor APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    /// Okra (`/v2/...`).
    Okra,
    /// The Mono-style provider (`/api/v1/financial/account_transactions`).
    Mono,
    /// Mono's own API (`/v2/accounts/{id}/transactions`, `/accounts/{id}/sync`).
    #[serde(rename = "mono-connect")]
    MonoConnect,
}

impl Vendor {
    /// The vendor's lowercase name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Okra => "okra",
            Vendor::Mono => "mono",
            Vendor::MonoConnect => "mono-connect",
        }
    }
}

/// Faults injected into one vendor's answers. `Default` is "no faults".
///
/// They apply to vendor routes only (never to `/_sandbox/...`), in this order: `latency_ms`,
/// `hang`, `rate_limit_retry_after`, `fail_next`, `error_rate`; then the real answer is computed
/// (auth, quota, handler) and `malformed_json` or `truncated_body` spoil its body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Milliseconds added before every answer.
    pub latency_ms: u64,
    /// Probability (0 to 1) that a request is answered with `error_status` instead.
    pub error_rate: f64,
    /// The status of injected failures; 0 means 500.
    pub error_status: u16,
    /// The next N requests fail with `error_status` (deterministic), then answers are normal.
    pub fail_next: u32,
    /// When set, every request is answered 429 with `Retry-After` of this many seconds.
    pub rate_limit_retry_after: Option<u64>,
    /// Answer 200 with a body that is not JSON.
    pub malformed_json: bool,
    /// Answer with the first half of the real body (and a matching Content-Length).
    pub truncated_body: bool,
    /// Never answer (the handler sleeps for a day).
    pub hang: bool,
    /// Serve transaction listings as real vendors do on a bad day: the genuine records in odd
    /// but valid shapes (float noise, `₦`/`NGN` prefixes with thousands separators, loose
    /// paging types), one unreadable ancillary field on each page's first record, and three
    /// unreadable records appended to every page (see the crate docs). Sums of the readable
    /// records stay those of the directory.
    pub messy_data: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency_ms: 0,
            error_rate: 0.0,
            error_status: 500,
            fail_next: 0,
            rate_limit_retry_after: None,
            malformed_json: false,
            truncated_body: false,
            hang: false,
            messy_data: false,
        }
    }
}

impl Faults {
    /// The status injected failures use (`error_status`, or 500 when it is not a valid error).
    pub(crate) fn status(&self) -> u16 {
        if (400..=599).contains(&self.error_status) {
            self.error_status
        } else {
            500
        }
    }
}
