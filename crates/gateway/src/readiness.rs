//! Readiness: whether this replica should get traffic (`GET /readyz`).
//!
//! Ready means: the configuration was loaded (a running gateway always has), every registered
//! [`ReadinessCheck`] passes, and the gateway is not shutting down. Checks are registered at
//! start by whatever needs one; the Redis-backed stack (issue 12) registers a check that pings
//! Redis, so a replica whose Redis is down leaves the load balancer:
//!
//! ```text
//! readiness.register(Arc::new(RedisPing(pool.clone())));
//! ```
//!
//! It also counts the requests in flight, so a shutdown can wait for them (see
//! [`Readiness::wait_idle`]).
//!
//! Providers' circuit breakers are reported in the body but never make a replica unready:
//! every replica talks to the same providers, so taking replicas out of the load balancer
//! cannot help, and a replica can still serve cached and stale snapshots.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::Notify;

use async_trait::async_trait;

/// How long one check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// One dependency that must be reachable for the replica to be ready.
#[async_trait]
pub trait ReadinessCheck: Send + Sync {
    /// A short, stable name (`redis`), shown in `/readyz`.
    fn name(&self) -> &str;

    /// `Ok` when the dependency answers; otherwise why not (no secrets: it is shown).
    async fn check(&self) -> Result<(), String>;
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// The check's name.
    pub name: String,
    /// `None` when it passed; what failed otherwise.
    pub error: Option<String>,
}

/// The registered checks, the shutdown flag and the requests in flight.
#[derive(Default)]
pub struct Readiness {
    checks: RwLock<Vec<Arc<dyn ReadinessCheck>>>,
    draining: AtomicBool,
    in_flight: Arc<InFlight>,
}

#[derive(Debug, Default)]
struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

/// One request in flight, until dropped.
#[derive(Debug)]
pub struct RequestGuard(Arc<InFlight>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("draining", &self.draining.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Readiness {
    /// Adds a check run on every `/readyz`.
    pub fn register(&self, check: Arc<dyn ReadinessCheck>) {
        self.checks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(check);
    }

    /// From now on the replica is not ready (it is shutting down).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Whether the replica is shutting down.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Counts a request as in flight until the guard is dropped.
    pub fn request_started(&self) -> RequestGuard {
        self.in_flight.count.fetch_add(1, Ordering::AcqRel);
        RequestGuard(self.in_flight.clone())
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.count.load(Ordering::Acquire)
    }

    /// Waits until no request is in flight, at most `limit`; returns how many still are.
    pub async fn wait_idle(&self, limit: Duration) -> usize {
        let wait = async {
            loop {
                let idle = self.in_flight.idle.notified();
                if self.in_flight() == 0 {
                    return;
                }
                idle.await;
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
        self.in_flight()
    }

    /// Runs every check at once, each bounded by [`CHECK_TIMEOUT`]; the `config` check (always
    /// passing in a running gateway) comes first.
    pub async fn run(&self) -> Vec<CheckResult> {
        self.run_within(CHECK_TIMEOUT).await
    }

    async fn run_within(&self, timeout: Duration) -> Vec<CheckResult> {
        let checks: Vec<Arc<dyn ReadinessCheck>> = self
            .checks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let results = futures_util::future::join_all(checks.iter().map(|check| async move {
            let error = match tokio::time::timeout(timeout, check.check()).await {
                Ok(Ok(())) => None,
                Ok(Err(error)) => Some(error),
                Err(_) => Some(format!("no answer within {} ms", timeout.as_millis())),
            };
            CheckResult {
                name: check.name().to_owned(),
                error,
            }
        }))
        .await;
        let mut all = vec![CheckResult {
            name: "config".to_owned(),
            error: None,
        }];
        all.extend(results);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Option<&'static str>);

    #[async_trait]
    impl ReadinessCheck for Fixed {
        fn name(&self) -> &str {
            "fixed"
        }
        async fn check(&self) -> Result<(), String> {
            self.0.map_or(Ok(()), |e| Err(e.to_owned()))
        }
    }

    struct Hangs;

    #[async_trait]
    impl ReadinessCheck for Hangs {
        fn name(&self) -> &str {
            "hangs"
        }
        async fn check(&self) -> Result<(), String> {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn waiting_for_idle_ends_with_the_last_request_or_at_the_limit() {
        let readiness = Arc::new(Readiness::default());
        assert_eq!(readiness.wait_idle(Duration::from_secs(60)).await, 0);
        let first = readiness.request_started();
        let second = readiness.request_started();
        assert_eq!(readiness.wait_idle(Duration::from_millis(10)).await, 2);
        let waiter = tokio::spawn({
            let readiness = readiness.clone();
            async move { readiness.wait_idle(Duration::from_secs(60)).await }
        });
        drop(first);
        tokio::task::yield_now().await;
        drop(second);
        assert_eq!(waiter.await.unwrap(), 0);
    }

    #[tokio::test]
    async fn checks_report_by_name_and_a_hanging_one_fails_at_the_timeout() {
        let readiness = Readiness::default();
        assert_eq!(readiness.run().await.len(), 1);
        readiness.register(Arc::new(Fixed(None)));
        readiness.register(Arc::new(Fixed(Some("down"))));
        readiness.register(Arc::new(Hangs));
        let results = readiness.run_within(Duration::from_millis(50)).await;
        let errors: Vec<_> = results
            .iter()
            .map(|r| (r.name.as_str(), r.error.as_deref()))
            .collect();
        assert_eq!(
            errors,
            [
                ("config", None),
                ("fixed", None),
                ("fixed", Some("down")),
                ("hangs", Some("no answer within 50 ms")),
            ]
        );
    }
}
