//! State shared by every handler, and the gate every vendor request goes through: counting,
//! faults, authentication, quota, then the vendor's handler.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, RETRY_AFTER};
use serde::{Deserialize, Serialize};

use crate::config::{Faults, SandboxConfig, Vendor};
use crate::ledger::Ledger;

/// Request counts per vendor and per route (`"POST /v2/transactions/getByAccount"`).
///
/// Routes served under `/v2/sandbox/...` are counted under the same key as their `/v2/...`
/// twin: it is one vendor route either way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Okra routes.
    pub okra: BTreeMap<String, u64>,
    /// Mono-style routes.
    pub mono: BTreeMap<String, u64>,
    /// Mono's own routes.
    #[serde(default, rename = "mono-connect")]
    pub mono_connect: BTreeMap<String, u64>,
}

impl Stats {
    /// All requests counted for one vendor.
    pub fn total(&self, vendor: Vendor) -> u64 {
        match vendor {
            Vendor::Okra => self.okra.values().sum(),
            Vendor::Mono => self.mono.values().sum(),
            Vendor::MonoConnect => self.mono_connect.values().sum(),
        }
    }
}

/// A vendor answer before it becomes an HTTP response (so faults can spoil its body).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Vec<u8>,
    pub(crate) retry_after: Option<u64>,
}

impl Reply {
    pub(crate) fn json(status: StatusCode, value: &impl Serialize) -> Reply {
        match serde_json::to_vec(value) {
            Ok(body) => Reply {
                status,
                body,
                retry_after: None,
            },
            Err(e) => Reply {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: format!("{{\"error\":\"serialization failed: {e}\"}}").into_bytes(),
                retry_after: None,
            },
        }
    }

    pub(crate) fn into_response(self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status);
        builder.insert_header((CONTENT_TYPE, "application/json; charset=utf-8"));
        if let Some(secs) = self.retry_after {
            builder.insert_header((RETRY_AFTER, secs.to_string()));
        }
        builder.body(self.body)
    }
}

/// A vendor's error envelope.
pub(crate) fn vendor_error(vendor: Vendor, status: StatusCode, message: &str) -> Reply {
    let body = match vendor {
        Vendor::Okra if status == StatusCode::TOO_MANY_REQUESTS => serde_json::json!({
            "status": "error", "message": message, "type": "RATE_LIMIT"
        }),
        Vendor::Okra => serde_json::json!({"status": "error", "message": message}),
        Vendor::Mono => serde_json::json!({"error": message}),
        Vendor::MonoConnect => serde_json::json!({"status": "failed", "message": message}),
    };
    Reply::json(status, &body)
}

fn rate_limited(vendor: Vendor, secs: u64) -> Reply {
    let message = format!("Too many requests, try again in {secs} seconds");
    let mut reply = vendor_error(vendor, StatusCode::TOO_MANY_REQUESTS, &message);
    reply.retry_after = Some(secs);
    reply
}

/// An Okra refresh job: which account, when it started, and how many transactions it added.
#[derive(Debug)]
pub(crate) struct RefreshJob {
    pub(crate) account: usize,
    pub(crate) started: Instant,
    pub(crate) added: Option<usize>,
}

/// Sliding 60-second windows of request instants, per vendor and API key.
#[derive(Debug, Default)]
struct Quotas {
    limits: HashMap<Vendor, u32>,
    windows: HashMap<(Vendor, String), VecDeque<Instant>>,
}

const WINDOW: Duration = Duration::from_secs(60);

impl Quotas {
    /// Takes a slot, or says how many seconds until one frees.
    fn take(&mut self, vendor: Vendor, key: &str, now: Instant) -> Result<(), u64> {
        let Some(&limit) = self.limits.get(&vendor) else {
            return Ok(());
        };
        let window = self.windows.entry((vendor, key.to_owned())).or_default();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            window.pop_front();
        }
        if window.len() < usize::try_from(limit).unwrap_or(usize::MAX) {
            window.push_back(now);
            return Ok(());
        }
        let oldest = window.front().copied().unwrap_or(now);
        let wait = WINDOW.saturating_sub(now.duration_since(oldest));
        Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
    }
}

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: SandboxConfig,
    pub(crate) addr: SocketAddr,
    pub(crate) ledger: RwLock<Ledger>,
    faults: Mutex<HashMap<Vendor, Faults>>,
    stats: Mutex<Stats>,
    quotas: Mutex<Quotas>,
    pub(crate) jobs: Mutex<HashMap<String, RefreshJob>>,
    /// When each account (by index) was last synced through Mono's Data Sync.
    pub(crate) mono_syncs: Mutex<HashMap<usize, Instant>>,
    pub(crate) http: reqwest::Client,
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn new(config: SandboxConfig, addr: SocketAddr, http: reqwest::Client) -> Shared {
        let ledger = Ledger::generate(config.seed);
        Shared {
            config,
            addr,
            ledger: RwLock::new(ledger),
            faults: Mutex::new(HashMap::new()),
            stats: Mutex::new(Stats::default()),
            quotas: Mutex::new(Quotas::default()),
            jobs: Mutex::new(HashMap::new()),
            mono_syncs: Mutex::new(HashMap::new()),
            http,
        }
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Ledger> {
        self.ledger.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, Ledger> {
        self.ledger.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn okra_base_url(&self) -> String {
        format!("http://{}/v2", self.addr)
    }

    pub(crate) fn mono_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn mono_connect_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn set_faults(&self, vendor: Vendor, faults: Faults) {
        lock(&self.faults).insert(vendor, faults);
    }

    pub(crate) fn faults(&self, vendor: Vendor) -> Faults {
        lock(&self.faults).get(&vendor).cloned().unwrap_or_default()
    }

    pub(crate) fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    pub(crate) fn stats(&self) -> Stats {
        lock(&self.stats).clone()
    }

    pub(crate) fn reset_stats(&self) {
        *lock(&self.stats) = Stats::default();
    }

    pub(crate) fn set_quota(&self, vendor: Vendor, requests_per_minute: Option<u32>) {
        let mut quotas = lock(&self.quotas);
        match requests_per_minute {
            Some(n) => {
                quotas.limits.insert(vendor, n);
            }
            None => {
                quotas.limits.remove(&vendor);
            }
        }
        quotas.windows.retain(|(v, _), _| *v != vendor);
    }

    pub(crate) fn quota(&self, vendor: Vendor) -> Option<u32> {
        lock(&self.quotas).limits.get(&vendor).copied()
    }

    fn count(&self, vendor: Vendor, route: &str) {
        let mut stats = lock(&self.stats);
        let map = match vendor {
            Vendor::Okra => &mut stats.okra,
            Vendor::Mono => &mut stats.mono,
            Vendor::MonoConnect => &mut stats.mono_connect,
        };
        *map.entry(route.to_owned()).or_insert(0) += 1;
    }

    /// Takes this request's share of the vendor's faults (`fail_next` counts down here).
    fn take_faults(&self, vendor: Vendor) -> Faults {
        let mut all = lock(&self.faults);
        let Some(f) = all.get_mut(&vendor) else {
            return Faults::default();
        };
        let taken = f.clone();
        if f.fail_next > 0 {
            f.fail_next -= 1;
        }
        taken
    }

    /// Serves one vendor request: count it, apply the vendor's faults, check the key (`auth`
    /// returns the API key or the 401 reply), take a quota slot, run `handler`, spoil its body
    /// if asked to.
    pub(crate) async fn serve<F, Fut>(
        &self,
        vendor: Vendor,
        route: &str,
        auth: Result<String, Reply>,
        handler: F,
    ) -> HttpResponse
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Reply>,
    {
        self.count(vendor, route);
        let faults = self.take_faults(vendor);
        if faults.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
        }
        if faults.hang {
            tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
        }
        if let Some(secs) = faults.rate_limit_retry_after {
            return rate_limited(vendor, secs).into_response();
        }
        let injected = faults.fail_next > 0
            || (faults.error_rate > 0.0 && rand::random::<f64>() < faults.error_rate);
        if injected {
            let status =
                StatusCode::from_u16(faults.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return vendor_error(vendor, status, "Simulated upstream failure").into_response();
        }
        let key = match auth {
            Ok(key) => key,
            Err(reply) => return reply.into_response(),
        };
        let slot = lock(&self.quotas).take(vendor, &key, Instant::now());
        if let Err(secs) = slot {
            return rate_limited(vendor, secs).into_response();
        }
        let mut reply = handler().await;
        if faults.malformed_json {
            reply.status = StatusCode::OK;
            reply.body = b"<html><body><h1>502 Bad Gateway</h1></body></html>".to_vec();
        } else if faults.truncated_body {
            let half = reply.body.len() / 2;
            reply.body.truncate(half);
        }
        reply.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_window_slides() {
        let mut q = Quotas::default();
        q.limits.insert(Vendor::Okra, 2);
        let t0 = Instant::now();
        assert!(q.take(Vendor::Okra, "k", t0).is_ok());
        assert!(q.take(Vendor::Okra, "k", t0).is_ok());
        assert_eq!(q.take(Vendor::Okra, "k", t0), Err(60));
        assert!(q.take(Vendor::Okra, "other", t0).is_ok());
        assert!(q.take(Vendor::Mono, "k", t0).is_ok());
        let later = t0 + Duration::from_secs(45);
        assert_eq!(q.take(Vendor::Okra, "k", later), Err(15));
        assert!(q.take(Vendor::Okra, "k", t0 + WINDOW).is_ok());
    }
}
