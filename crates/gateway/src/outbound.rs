//! The outbound lane of each provider instance: every upstream call waits here for a slot and
//! for the provider's quota, honours a pause the provider asked for with a 429, retries
//! transient failures of reads, and passes the provider's circuit breaker.
//!
//! [`Guarded`] wraps an adapter and implements [`Provider`] itself, so nothing else in the
//! gateway knows the lane exists: the registry hands out guarded providers only. Each upstream
//! request of a read takes one quota cell (a default page walk is walked here, page by page,
//! through the guarded `list_page`; a bulk `list_all` is one request). A refresh is one call
//! to start it (never retried) and, for a polling provider (Okra), one call per status poll:
//! `provider::follow_refresh` drives the polls through the guarded `poll_refresh`, so each
//! poll waits for a slot and a quota cell like any call, and a 429 it meets pauses the lane.
//!
//! Order of one attempt: paused after a 429? -> breaker open? (both fail fast) -> a concurrency
//! slot (FIFO) -> a quota cell -> the call, bounded by the request's deadline -> the outcome
//! feeds the breaker (and a 429 pauses the lane). The cell is taken while holding the slot and
//! right before sending, so requests leave at the pace the quota was granted at.
//!
//! Deadlines: the gateway runs each request's work inside [`with_deadline`]; waits in line
//! end at the earlier of that deadline and `queue_timeout`, a call still running at the
//! deadline counts as a failure, and no retry starts that could not finish before it. Outside
//! a request (background work) there is no deadline but `queue_timeout` and the adapters' own
//! timeouts.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use provider::{
    Capabilities, Listing, Page, PollStatus, Provider, ProviderError, RefreshDelivery, RefreshPoll,
    RefreshRequest, RefreshStart, Scope, ThrottleReason, Transaction, TransactionQuery,
};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::breaker::{Breaker, CircuitState, CircuitStatus};
use crate::cluster::{Admission, AdmitArgs, Cluster};
use crate::config::{OutboundConfig, ProviderQuota};

/// How long the lane pauses after a 429 that did not say how long.
const DEFAULT_PAUSE: Duration = Duration::from_secs(30);
/// The longest pause a provider's `Retry-After` can impose.
const MAX_PAUSE: Duration = Duration::from_secs(15 * 60);
/// The longest backoff between two retries.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// What a caller refused because every slot stayed busy is told to wait.
const BUSY_RETRY: Duration = Duration::from_secs(1);

tokio::task_local! {
    static DEADLINE: Instant;
    static NO_RETRIES: ();
    static CLIENT: (Arc<str>, u32);
    static FILL: std::cell::Cell<Option<u64>>;
}

/// Runs `work` as one fill (a snapshot's page walk): its calls after the first keep the first
/// one's place in the fair line, so a client's fill already under way is finished before the
/// same client's later fills start (pages of a half-read snapshot are not left waiting behind
/// new ones until they time out).
pub async fn as_one_fill<F: Future>(work: F) -> F::Output {
    FILL.scope(std::cell::Cell::new(None), work).await
}

/// Runs `work` on behalf of `client` (its name and fair-share weight): the quota cells its
/// upstream calls wait for are shared fairly with other clients' (see [`FairLine`]).
///
/// `work` (a handler's whole request, kilobytes of future with the cache's fetch inside) is
/// boxed here, once: the deadline, the task-locals and actix's handler box then move a pointer,
/// not a copy of it each (a cache hit copied it about a dozen times).
pub fn for_client<F: Future>(client: (Arc<str>, u32), work: F) -> impl Future<Output = F::Output> {
    CLIENT.scope(client, Box::pin(work))
}

/// `work`, to be run later elsewhere (a task of its own), still on behalf of the client the
/// current work is for.
pub fn keeping_client<F: Future>(work: F) -> impl Future<Output = F::Output> {
    for_client(current_client(), work)
}

/// The client the current work is for, and its weight (background work: none, `""`, 1).
fn current_client() -> (Arc<str>, u32) {
    CLIENT
        .try_with(|(name, weight)| (name.clone(), *weight))
        .unwrap_or_else(|_| (Arc::from(""), 1))
}

/// The virtual time one admission of a weight-1 client costs (divisible by every weight up
/// to 16, so common weights step exactly).
pub const FAIR_STEP: u64 = 720_720;

/// The line of callers waiting to be admitted to a provider's lane (a concurrency slot, then a
/// quota cell), served fairly per client.
///
/// Start-time fair queuing: each waiter gets a tag one step after the later of the line's
/// virtual time and its client's previous tag, the step being [`FAIR_STEP`] divided by the
/// client's weight (`clients.NAME.fair_share_weight`, default 1: a client of weight 3 gets
/// three admissions for another's one while both wait), and only the waiter with the smallest
/// tag is admitted next (it holds its [`Turn`] while it takes a slot and a cell). A client with many
/// waiters (a flood of reads of unknown or new scopes) thus gets one admission per turn like
/// any other client with waiters, instead of every one up to its last waiter: the others'
/// reads are not pushed past their wait in line into `provider_busy`; the flood's own waiters
/// are the ones that time out. A waiter that gives up or is cancelled leaves the line at once.
#[derive(Debug, Default)]
pub struct FairLine {
    state: Mutex<LineState>,
    changed: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct LineState {
    /// (tag, arrival) of every waiter; the first one is admitted next.
    waiting: std::collections::BTreeSet<(u64, u64)>,
    /// Each client's last tag, and how many of its callers wait.
    clients: std::collections::HashMap<Arc<str>, (u64, u32)>,
    /// The tag of the last waiter admitted.
    virtual_time: u64,
    arrivals: u64,
}

/// A place in the line; first in line while the caller is admitted. Dropping it (admitted,
/// gave up, or cancelled) lets the next waiter go.
pub struct Turn<'a> {
    line: &'a FairLine,
    key: (u64, u64),
    client: Arc<str>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        {
            let mut state = self.line.lock();
            state.waiting.remove(&self.key);
            if let Some((_, n)) = state.clients.get_mut(&self.client) {
                *n = n.saturating_sub(1);
            }
        }
        self.line.changed.notify_waiters();
    }
}

impl FairLine {
    fn lock(&self) -> std::sync::MutexGuard<'_, LineState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `client`'s caller (of the client's `weight`) is first in line (`None` if
    /// `line_end` comes first).
    pub async fn turn(
        &self,
        (client, weight): (Arc<str>, u32),
        line_end: Instant,
    ) -> Option<Turn<'_>> {
        let fill_tag = FILL.try_with(std::cell::Cell::get).ok();
        let key = {
            let mut state = self.lock();
            state.arrivals += 1;
            let (arrival, now) = (state.arrivals, state.virtual_time);
            let entry = state.clients.entry(client.clone()).or_insert((0, 0));
            entry.1 += 1;
            let tag = match fill_tag {
                // A later call of a fill under way: the fill's place.
                Some(Some(tag)) => tag,
                _ => {
                    entry.0 = entry.0.max(now) + FAIR_STEP / u64::from(weight.max(1));
                    entry.0
                }
            };
            let key = (tag, arrival);
            state.waiting.insert(key);
            key
        };
        if fill_tag == Some(None) {
            let _ = FILL.try_with(|fill| fill.set(Some(key.0)));
        }
        let turn = Turn {
            line: self,
            key,
            client,
        };
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut state = self.lock();
                if state.waiting.first() == Some(&key) {
                    state.virtual_time = state.virtual_time.max(key.0);
                    return Some(turn);
                }
            }
            if Instant::now() >= line_end {
                return None;
            }
            tokio::select! {
                () = tokio::time::sleep_until(line_end) => {}
                () = &mut changed => {}
            }
        }
    }

    /// (callers waiting, clients they wait for).
    pub fn waiting(&self) -> (u32, u32) {
        let state = self.lock();
        let waiting = u32::try_from(state.waiting.len()).unwrap_or(u32::MAX);
        let clients = state.clients.values().filter(|(_, n)| *n > 0).count();
        (waiting, u32::try_from(clients).unwrap_or(u32::MAX))
    }
}

/// Runs `work` with every read it makes through a lane tried once, never retried (the caller
/// has a fallback, e.g. a stale snapshot, and would rather serve it than wait for retries).
pub async fn without_retries<F: Future>(work: F) -> F::Output {
    NO_RETRIES.scope((), work).await
}

/// Runs `work` with `deadline` as the end of the current request, for every lane it calls.
pub async fn with_deadline<F: Future>(deadline: Instant, work: F) -> F::Output {
    DEADLINE.scope(deadline, work).await
}

/// The current request's deadline, when running inside [`with_deadline`].
pub fn current_deadline() -> Option<Instant> {
    DEADLINE.try_with(|deadline| *deadline).ok()
}

/// The governor quota that lets at most `requests_per_minute` requests through in any 60
/// seconds, `burst` of them at once.
///
/// A token bucket of `burst` cells refilled one per period lets `burst + ceil(60 s / period) - 1`
/// requests into a 60-second window, so the period is `60 s / (rpm - burst + 1)`, rounded up:
/// the sustained rate is `rpm - burst + 1` per minute. `burst = 1` gives the full rate, evenly
/// spaced; a larger burst trades sustained rate for quick multi-page reads.
pub fn provider_quota(quota: &ProviderQuota) -> Quota {
    let rpm = quota.requests_per_minute.get();
    let burst = quota.burst.get().min(rpm);
    let refills = u64::from(rpm - burst + 1);
    let period = Duration::from_nanos(60_000_000_000u64.div_ceil(refills));
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_minute(quota.requests_per_minute))
        .allow_burst(quota.burst.min(quota.requests_per_minute))
}

/// A lane's state at one instant, for `GET /v1/providers`.
#[derive(Debug, Clone, Copy)]
pub struct LaneStatus {
    /// The quota, when one is configured.
    pub quota: Option<ProviderQuota>,
    /// The concurrency cap.
    pub max_concurrent_requests: u32,
    /// Upstream calls in flight (or waiting for a quota cell while holding a slot).
    pub in_flight: u32,
    /// How long the lane stays paused after the provider's 429.
    pub paused_for: Option<Duration>,
    /// The circuit breaker.
    pub circuit: CircuitStatus,
    /// Callers waiting in line for admission (a slot and a quota cell; see [`FairLine`]).
    pub waiting_for_quota: u32,
    /// The clients those callers wait for (each gets its turn).
    pub waiting_clients: u32,
}

/// Whether the outcome of a call says the provider is healthy, failing, or neither.
enum Verdict {
    Healthy,
    Failing,
    Neither,
}

fn verdict<T>(result: &Result<T, ProviderError>) -> Verdict {
    match result {
        Ok(_) => Verdict::Healthy,
        Err(ProviderError::Unavailable { .. } | ProviderError::BadPayload { .. }) => {
            Verdict::Failing
        }
        // It answered, and properly: the request or our account with it was wrong.
        Err(
            ProviderError::NotFound { .. }
            | ProviderError::Rejected { .. }
            | ProviderError::Unauthorized { .. }
            | ProviderError::Mapping { .. },
        ) => Verdict::Healthy,
        // Alive but pacing us, or never called.
        Err(
            ProviderError::RateLimited { .. }
            | ProviderError::Throttled { .. }
            | ProviderError::Unsupported { .. }
            | ProviderError::Config { .. },
        ) => Verdict::Neither,
    }
}

/// Whether a read that failed this way may succeed if sent again at once: timeouts,
/// connection failures, 408, 502, 503 and 504. Never a 4xx, never a 429 (the lane pauses
/// instead), never a 500 (usually the same bug again), never a bad payload.
pub fn is_transient(error: &ProviderError) -> bool {
    matches!(
        error,
        ProviderError::Unavailable {
            status: None | Some(408 | 502 | 503 | 504),
            ..
        }
    )
}

/// How often a caller waiting for a cluster-wide slot asks again.
const SLOT_POLL: Duration = Duration::from_millis(20);

/// The part of a lane that lives in Redis: the cluster-wide quota, concurrency leases and 429
/// pause, and this replica's share of the quota for when Redis cannot be reached.
struct SharedLane {
    cluster: Arc<Cluster>,
    /// The quota's emission interval and burst (as the in-process limiter's).
    period: Option<(Duration, u32)>,
    /// How long a lease lives if this replica dies holding it.
    lease: Duration,
    /// The fallback limiter, built for a replica count.
    share: Mutex<Option<(u32, Arc<DefaultDirectRateLimiter>)>>,
    leases_issued: std::sync::atomic::AtomicU64,
    /// Cells of the burst the cluster had spent when Redis last answered.
    observed_spent: std::sync::atomic::AtomicU32,
    /// Whether the last admission fell back to the local share.
    in_fallback: std::sync::atomic::AtomicBool,
}

impl SharedLane {
    /// This replica's share of `quota` among `replicas`: `rpm / replicas` per minute (at
    /// least 1), with the burst divided the same way, so the replicas' sum never exceeds it.
    ///
    /// A share built when Redis goes away starts charged with this replica's part of what the
    /// cluster had spent when Redis last answered (`ceil(spent / replicas)` cells), so the
    /// cells the replicas spend in the minute after losing Redis still fit the quota's window.
    fn share(&self, quota: &ProviderQuota) -> Arc<DefaultDirectRateLimiter> {
        use std::sync::atomic::Ordering;
        self.in_fallback.store(true, Ordering::Relaxed);
        let replicas = self.cluster.replicas();
        let mut share = self.share.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((n, limiter)) = share.as_ref()
            && *n == replicas
        {
            return limiter.clone();
        }
        let limiter = Arc::new(RateLimiter::direct(provider_quota(&share_of(
            quota, replicas,
        ))));
        let spent = self.observed_spent.load(Ordering::Relaxed);
        for _ in 0..spent.div_ceil(replicas.max(1)) {
            let _ = limiter.check();
        }
        *share = Some((replicas, limiter.clone()));
        limiter
    }

    /// Redis answered: note what the cluster has spent, and forget the fallback share.
    fn shared_again(&self, remaining: Option<u32>) {
        use std::sync::atomic::Ordering;
        if let (Some(remaining), Some((_, burst))) = (remaining, self.period) {
            self.observed_spent
                .store(burst.saturating_sub(remaining), Ordering::Relaxed);
        }
        if self.in_fallback.swap(false, Ordering::Relaxed) {
            *self.share.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }
}

/// `quota` divided among `replicas` (each part at least one request a minute).
pub fn share_of(quota: &ProviderQuota, replicas: u32) -> ProviderQuota {
    let part = |n: std::num::NonZeroU32| {
        std::num::NonZeroU32::new((n.get() / replicas.max(1)).max(1)).unwrap_or(n)
    };
    ProviderQuota {
        requests_per_minute: part(quota.requests_per_minute),
        burst: part(quota.burst),
    }
}

/// A cluster-wide concurrency lease, given back when dropped (a cancelled call too).
struct LeaseGuard {
    cluster: Arc<Cluster>,
    provider: Arc<str>,
    id: String,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let (cluster, provider, id) = (
            self.cluster.clone(),
            self.provider.clone(),
            std::mem::take(&mut self.id),
        );
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move { cluster.release(&provider, &id).await });
        }
    }
}

/// Waits for a cell of an in-process limiter, until `line_end`.
async fn local_cell(
    provider: &str,
    limiter: &DefaultDirectRateLimiter,
    line_end: Instant,
) -> Result<(), Duration> {
    while let Err(not_until) = limiter.check() {
        let wait = not_until.wait_time_from(limiter.clock().now());
        if Instant::now() + wait > line_end {
            return Err(wait);
        }
        let _waiting = crate::metrics::quota_waiting(provider);
        tokio::time::sleep(wait).await;
    }
    crate::metrics::quota_spent(provider);
    Ok(())
}

/// One provider instance's outbound lane.
pub struct Lane {
    provider: Arc<str>,
    config: OutboundConfig,
    quota: Option<DefaultDirectRateLimiter>,
    line: FairLine,
    slots: Semaphore,
    paused_until: Mutex<Option<Instant>>,
    breaker: Breaker,
    shared: Option<SharedLane>,
}

impl std::fmt::Debug for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lane")
            .field("provider", &self.provider)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Lane {
    /// The lane of provider instance `provider`, in-process.
    pub fn new(provider: &str, config: OutboundConfig) -> Lane {
        Lane::with_cluster(provider, config, None, Duration::ZERO)
    }

    /// The lane of provider instance `provider`; with `cluster`, its quota, concurrency cap
    /// and 429 pause hold for all replicas together (leases live `lease` at most).
    pub fn with_cluster(
        provider: &str,
        config: OutboundConfig,
        cluster: Option<Arc<Cluster>>,
        lease: Duration,
    ) -> Lane {
        let shared = cluster.map(|cluster| SharedLane {
            cluster,
            period: config.quota.as_ref().map(|q| {
                let quota = provider_quota(q);
                (quota.replenish_interval(), quota.burst_size().get())
            }),
            lease,
            share: Mutex::new(None),
            leases_issued: std::sync::atomic::AtomicU64::new(0),
            observed_spent: std::sync::atomic::AtomicU32::new(0),
            in_fallback: std::sync::atomic::AtomicBool::new(false),
        });
        Lane {
            shared,
            provider: Arc::from(provider),
            quota: config
                .quota
                .as_ref()
                .map(|q| RateLimiter::direct(provider_quota(q))),
            line: FairLine::default(),
            slots: Semaphore::new(config.max_concurrent_requests as usize),
            paused_until: Mutex::new(None),
            breaker: Breaker::new(config.breaker_failure_threshold, config.breaker_open),
            config,
        }
    }

    /// The lane's state now.
    pub fn status(&self) -> LaneStatus {
        let now = Instant::now();
        let available = u32::try_from(self.slots.available_permits()).unwrap_or(u32::MAX);
        let (waiting_for_quota, waiting_clients) = self.line.waiting();
        LaneStatus {
            waiting_for_quota,
            waiting_clients,
            quota: self.config.quota,
            max_concurrent_requests: self.config.max_concurrent_requests,
            in_flight: self
                .config
                .max_concurrent_requests
                .saturating_sub(available),
            paused_for: self.paused_for(now),
            circuit: self.breaker.status(now),
        }
    }

    fn paused_for(&self, now: Instant) -> Option<Duration> {
        let until = (*self.paused_until.lock().unwrap_or_else(|e| e.into_inner()))?;
        (until > now).then(|| until - now)
    }

    fn pause(&self, requested: Option<Duration>) {
        let pause = requested.unwrap_or(DEFAULT_PAUSE).min(MAX_PAUSE);
        let until = Instant::now() + pause;
        {
            let mut paused = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
            if paused.is_none_or(|current| current < until) {
                *paused = Some(until);
            }
        }
        if let Some(shared) = &self.shared {
            let (cluster, provider) = (shared.cluster.clone(), self.provider.clone());
            tokio::spawn(async move {
                let _ = cluster.pause(&provider, pause).await;
            });
        }
        tracing::warn!(
            provider = %self.provider,
            pause_ms = pause.as_millis() as u64,
            "provider answered 429: lane paused"
        );
    }

    fn throttled(&self, reason: ThrottleReason, retry_after: Duration) -> ProviderError {
        crate::metrics::upstream_throttled(&self.provider, reason);
        ProviderError::Throttled {
            provider: self.provider.to_string(),
            reason,
            retry_after,
        }
    }

    fn still_paused(&self, now: Instant) -> Result<(), ProviderError> {
        match self.paused_for(now) {
            None => Ok(()),
            Some(left) => {
                crate::metrics::upstream_paused(&self.provider);
                Err(ProviderError::RateLimited {
                    provider: self.provider.to_string(),
                    retry_after: Some(left),
                    message: "paused after the provider's 429; not called".to_owned(),
                })
            }
        }
    }

    /// One upstream call through the lane (no retry). `hold_slot = false` gives the
    /// concurrency slot back once the quota cell is taken (for long calls that mostly wait).
    async fn attempt<T, Fut>(
        &self,
        deadline: Option<Instant>,
        hold_slot: bool,
        call: Fut,
    ) -> Result<T, ProviderError>
    where
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let now = Instant::now();
        self.still_paused(now)?;
        self.breaker
            .check(now)
            .map_err(|wait| self.throttled(ThrottleReason::CircuitOpen, wait))?;

        let line_end = match deadline {
            Some(deadline) => deadline.min(now + self.config.queue_timeout),
            None => now + self.config.queue_timeout,
        };
        // Admission in fair order: the first in line takes a slot and a cell, then the next.
        let Some(turn) = self.line.turn(current_client(), line_end).await else {
            return Err(self.throttled(
                if self.quota.is_some() || self.config.quota.is_some() {
                    ThrottleReason::Quota
                } else {
                    ThrottleReason::Concurrency
                },
                BUSY_RETRY,
            ));
        };
        let slot = match tokio::time::timeout_at(line_end, self.slots.acquire()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) | Err(_) => {
                return Err(self.throttled(ThrottleReason::Concurrency, BUSY_RETRY));
            }
        };
        let lease = match &self.shared {
            None => {
                if let Some(quota) = &self.quota {
                    local_cell(&self.provider, quota, line_end)
                        .await
                        .map_err(|wait| self.throttled(ThrottleReason::Quota, wait))?;
                }
                None
            }
            Some(shared) => self.shared_admission(shared, line_end, hold_slot).await?,
        };
        drop(turn);
        let _slot = hold_slot.then_some(slot);
        let _lease = lease;

        let now = Instant::now();
        self.still_paused(now)?;
        let ticket = self
            .breaker
            .acquire(now)
            .map_err(|wait| self.throttled(ThrottleReason::CircuitOpen, wait))?;
        let result = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, call)
                .await
                .unwrap_or_else(|_| {
                    Err(ProviderError::Unavailable {
                        provider: self.provider.to_string(),
                        status: None,
                        message: "no answer before the request's deadline".to_owned(),
                    })
                }),
            None => call.await,
        };
        match verdict(&result) {
            Verdict::Healthy => ticket.success(),
            Verdict::Failing => {
                let now = Instant::now();
                let was_open = self.breaker.status(now).state == CircuitState::Open;
                ticket.failure(now);
                let status = self.breaker.status(now);
                if !was_open
                    && status.state == CircuitState::Open
                    && let Some(shared) = &self.shared
                {
                    // Opened here: every replica stops calling the provider as long.
                    let (cluster, provider) = (shared.cluster.clone(), self.provider.clone());
                    let open_for = status.probe_in.unwrap_or(self.config.breaker_open);
                    tokio::spawn(async move {
                        let _ = cluster.open_circuit(&provider, open_for).await;
                    });
                }
            }
            Verdict::Neither => drop(ticket),
        }
        if let Err(ProviderError::RateLimited { retry_after, .. }) = &result {
            self.pause(*retry_after);
        }
        result
    }

    /// Admission through Redis: the shared pause, a cluster-wide lease (when `hold_slot`), a
    /// quota cell reserved in the shared GCRA; when Redis cannot answer, this replica's share.
    async fn shared_admission(
        &self,
        shared: &SharedLane,
        line_end: Instant,
        hold_slot: bool,
    ) -> Result<Option<LeaseGuard>, ProviderError> {
        let n = shared
            .leases_issued
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let lease_id = format!("{}:{n}", shared.cluster.replica_id());
        loop {
            let now = Instant::now();
            let args = AdmitArgs {
                lease_id: lease_id.clone(),
                max_leases: if hold_slot {
                    self.config.max_concurrent_requests
                } else {
                    0
                },
                lease: shared.lease,
                period: shared.period.map(|(period, _)| period),
                burst: shared.period.map_or(1, |(_, burst)| burst),
                max_wait: line_end.saturating_duration_since(now),
            };
            match shared.cluster.admit(&self.provider, &args).await {
                Ok(Admission::Admitted { wait, remaining }) => {
                    shared.shared_again(remaining);
                    let guard = hold_slot.then(|| LeaseGuard {
                        cluster: shared.cluster.clone(),
                        provider: self.provider.clone(),
                        id: lease_id,
                    });
                    // A zero sleep still waits for the timer's next tick (about 1 ms).
                    if !wait.is_zero() {
                        let _waiting = crate::metrics::quota_waiting(&self.provider);
                        tokio::time::sleep(wait).await;
                    }
                    if shared.period.is_some() {
                        crate::metrics::quota_spent(&self.provider);
                    }
                    return Ok(guard);
                }
                Ok(Admission::Paused(left)) => {
                    return Err(ProviderError::RateLimited {
                        provider: self.provider.to_string(),
                        retry_after: Some(left),
                        message: "paused after the provider's 429; not called".to_owned(),
                    });
                }
                Ok(Admission::NoQuota(wait)) => {
                    return Err(self.throttled(ThrottleReason::Quota, wait));
                }
                Ok(Admission::CircuitOpen(wait)) => {
                    return Err(self.throttled(ThrottleReason::CircuitOpen, wait));
                }
                Ok(Admission::Busy(first_free)) => {
                    let nap = first_free.min(SLOT_POLL);
                    if Instant::now() + nap > line_end {
                        return Err(self.throttled(ThrottleReason::Concurrency, BUSY_RETRY));
                    }
                    tokio::time::sleep(nap).await;
                }
                Err(_) => {
                    // Redis is away: this replica's share of the quota, its own slots only.
                    if let Some(quota) = &self.config.quota {
                        local_cell(&self.provider, &shared.share(quota), line_end)
                            .await
                            .map_err(|wait| self.throttled(ThrottleReason::Quota, wait))?;
                    }
                    return Ok(None);
                }
            }
        }
    }

    /// A read: one call through the lane, retried with jittered exponential backoff while it
    /// fails transiently, as long as a retry can start before the request's deadline. A retry
    /// the lane holds back (the breaker opened meanwhile, no quota left) ends the read with the
    /// upstream failure that asked for the retry: the caller's request did reach the provider.
    pub async fn read<T, F, Fut>(&self, mut call: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T, ProviderError>> + Send,
        T: Send,
    {
        let deadline = current_deadline();
        let backoff = ExponentialBuilder::new()
            .with_jitter()
            .with_min_delay(self.config.retry_backoff)
            .with_max_delay(MAX_BACKOFF.max(self.config.retry_backoff))
            .with_max_times(if NO_RETRIES.try_with(|()| ()).is_ok() {
                0
            } else {
                self.config.max_retries as usize
            });
        let provider = self.provider.clone();
        let retried = Mutex::new(None);
        let result = (|| self.attempt(deadline, true, call()))
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(is_transient)
            .adjust(move |_, delay| {
                delay.filter(|delay| deadline.is_none_or(|end| Instant::now() + *delay < end))
            })
            .notify(|error, delay| {
                crate::metrics::upstream_retry(&provider);
                tracing::info!(
                    provider = %provider,
                    error = %error,
                    backoff_ms = delay.as_millis() as u64,
                    "transient upstream failure: retrying"
                );
                *retried.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.clone());
            })
            .await;
        let last = retried.into_inner().unwrap_or_else(|e| e.into_inner());
        match (result, last) {
            (Err(ProviderError::Throttled { .. }), Some(upstream)) => Err(upstream),
            (result, _) => result,
        }
    }

    /// A call that must not be repeated (it changes something upstream): once through the lane.
    pub async fn once<T, Fut>(&self, call: Fut) -> Result<T, ProviderError>
    where
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        self.attempt(current_deadline(), true, call).await
    }
}

/// What the provider said does not exist: a scope (account, customer, NUBAN) or a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Unknown {
    Scope(Scope),
    Transaction(String),
}

/// The provider's recent "no such account / transaction" answers, each kept for the provider's
/// `negative_ttl_secs` and given again without an upstream call. In-process (each replica keeps
/// its own, so with N replicas an unknown id costs at most N calls per TTL); bounded in entries.
#[derive(Debug)]
struct NotFoundCache {
    ttl: Duration,
    /// The answer, and until when it is given again (tokio's clock, so tests can pause it).
    entries: moka::sync::Cache<Unknown, (ProviderError, Instant)>,
}

/// At most this many "not found" answers are remembered per provider instance.
const MAX_NOT_FOUND: u64 = 100_000;

impl NotFoundCache {
    fn new(ttl: Duration) -> NotFoundCache {
        NotFoundCache {
            ttl,
            entries: moka::sync::Cache::builder()
                .max_capacity(MAX_NOT_FOUND)
                .time_to_live(ttl)
                .build(),
        }
    }

    fn get(&self, what: &Unknown) -> Option<ProviderError> {
        let (error, until) = self.entries.get(what)?;
        (Instant::now() < until).then_some(error)
    }

    fn remember<T>(&self, what: Unknown, result: &Result<T, ProviderError>) {
        if let Err(error @ ProviderError::NotFound { .. }) = result {
            self.entries
                .insert(what, (error.clone(), Instant::now() + self.ttl));
        }
    }
}

/// A provider whose every upstream call goes through its [`Lane`].
#[derive(Debug)]
pub struct Guarded {
    inner: Arc<dyn Provider>,
    lane: Arc<Lane>,
    walk_page_size: u32,
    not_found: Option<NotFoundCache>,
}

impl Guarded {
    /// `inner` behind `lane`; a page walk of `list_all` asks for pages of `walk_page_size`
    /// (the adapter's largest page when `None`).
    pub fn new(inner: Arc<dyn Provider>, lane: Arc<Lane>, walk_page_size: Option<u32>) -> Guarded {
        let walk_page_size = walk_page_size
            .unwrap_or(inner.capabilities().max_page_size)
            .max(1);
        Guarded {
            inner,
            lane,
            walk_page_size,
            not_found: None,
        }
    }

    /// Remembers the provider's "no such account / customer / NUBAN / transaction" for `ttl`
    /// and answers it again without an upstream call (zero: never remembered).
    pub fn remembering_not_found(mut self, ttl: Duration) -> Guarded {
        self.not_found = (!ttl.is_zero()).then(|| NotFoundCache::new(ttl));
        self
    }

    /// `call` through the lane as a read, unless the provider said recently that `what` does
    /// not exist (then its answer again, without a call).
    async fn read_known<T, F, Fut>(
        &self,
        what: Option<Unknown>,
        call: F,
    ) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T, ProviderError>> + Send,
        T: Send,
    {
        let (Some(cache), Some(what)) = (&self.not_found, what) else {
            return self.lane.read(call).await;
        };
        if let Some(error) = cache.get(&what) {
            return Err(error);
        }
        let result = self.lane.read(call).await;
        cache.remember(what, &result);
        result
    }
}

/// What a listing's "not found" is about: its scope, unless it is all of a client's data.
fn scope_of(query: &TransactionQuery) -> Option<Unknown> {
    (query.scope != Scope::All).then(|| Unknown::Scope(query.scope.clone()))
}

#[async_trait]
impl Provider for Guarded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn capabilities(&self) -> &Capabilities {
        self.inner.capabilities()
    }

    fn non_advancing(&self) -> provider::http::NonAdvancing {
        self.inner.non_advancing()
    }

    async fn list_page(
        &self,
        query: &TransactionQuery,
    ) -> Result<Page<Transaction>, ProviderError> {
        self.read_known(scope_of(query), || {
            crate::metrics::upstream(self.name(), "list_page", self.inner.list_page(query))
        })
        .await
    }

    async fn get_transaction(&self, provider_id: &str) -> Result<Transaction, ProviderError> {
        self.read_known(Some(Unknown::Transaction(provider_id.to_owned())), || {
            crate::metrics::upstream(
                self.name(),
                "get_transaction",
                self.inner.get_transaction(provider_id),
            )
        })
        .await
    }

    /// One upstream request when the adapter reads a whole scope at once; otherwise the pages
    /// are walked here, each one a guarded (and separately retried) `list_page`.
    async fn list_all(&self, query: &TransactionQuery) -> Result<Listing, ProviderError> {
        if self.inner.capabilities().bulk_read {
            return self
                .read_known(scope_of(query), || {
                    crate::metrics::upstream(self.name(), "list_all", self.inner.list_all(query))
                })
                .await;
        }
        provider::walk_pages(self, query, self.walk_page_size, 1).await
    }

    /// Started once through the lane, then followed by `provider::follow_refresh` (the
    /// trait's default `refresh`) with every poll a guarded `poll_refresh`.
    async fn start_refresh(&self, request: &RefreshRequest) -> Result<RefreshStart, ProviderError> {
        self.lane
            .once(crate::metrics::upstream(
                self.name(),
                "start_refresh",
                self.inner.start_refresh(request),
            ))
            .await
    }

    /// One status poll: a slot, a quota cell, the breaker, like any call (not retried here:
    /// the poll loop asks again on its schedule).
    async fn poll_refresh(&self, poll: &RefreshPoll) -> Result<PollStatus, ProviderError> {
        self.lane
            .once(crate::metrics::upstream(
                self.name(),
                "poll_refresh",
                self.inner.poll_refresh(poll),
            ))
            .await
    }

    fn parse_delivery(
        &self,
        expected_account_id: &str,
        body: &[u8],
    ) -> Result<RefreshDelivery, ProviderError> {
        self.inner.parse_delivery(expected_account_id, body)
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use governor::clock::FakeRelativeClock;

    use super::*;

    fn quota(rpm: u32, burst: u32) -> ProviderQuota {
        ProviderQuota {
            requests_per_minute: NonZeroU32::new(rpm).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    /// Greedy callers asking every 10 ms for five minutes: no 60-second window ever holds more
    /// than the quota, and the burst goes out at once.
    #[test]
    fn no_sixty_seconds_ever_see_more_than_the_quota() {
        for (rpm, burst) in [(6, 6), (6, 1), (6, 3), (60, 6), (60, 1), (7, 3), (100, 99)] {
            let clock = FakeRelativeClock::default();
            let limiter =
                RateLimiter::direct_with_clock(provider_quota(&quota(rpm, burst)), clock.clone());
            let step = Duration::from_millis(10);
            let mut sent: Vec<Duration> = Vec::new();
            let mut now = Duration::ZERO;
            while now < Duration::from_secs(300) {
                while limiter.check().is_ok() {
                    sent.push(now);
                }
                clock.advance(step);
                now += step;
            }
            let at_once = sent.iter().filter(|t| t.is_zero()).count();
            assert_eq!(at_once, burst as usize, "rpm {rpm} burst {burst}");
            for (i, start) in sent.iter().enumerate() {
                let in_window = sent[i..]
                    .iter()
                    .take_while(|t| **t < *start + Duration::from_secs(60))
                    .count();
                assert!(
                    in_window <= rpm as usize,
                    "rpm {rpm} burst {burst}: {in_window} requests in the minute from {start:?}"
                );
            }
            // And the quota is used, not starved: the sustained rate is rpm - burst + 1.
            let last_minute = sent
                .iter()
                .filter(|t| **t >= Duration::from_secs(240))
                .count();
            assert!(
                last_minute >= (rpm - burst) as usize,
                "rpm {rpm} burst {burst}: only {last_minute} in the last minute"
            );
        }
    }

    /// With Redis away, `n` replicas each spend `share_of(quota, n)`, greedily, on one fake
    /// clock: no 60 seconds ever see more than the quota, summed over the replicas.
    #[test]
    fn the_replicas_shares_together_never_exceed_the_quota() {
        for (rpm, burst, replicas) in [(6, 6, 3), (30, 5, 2), (30, 5, 3), (60, 1, 4), (7, 3, 2)] {
            let clock = FakeRelativeClock::default();
            let share = provider_quota(&share_of(&quota(rpm, burst), replicas));
            let limiters: Vec<_> = (0..replicas)
                .map(|_| RateLimiter::direct_with_clock(share, clock.clone()))
                .collect();
            let step = Duration::from_millis(10);
            let mut sent: Vec<Duration> = Vec::new();
            let mut now = Duration::ZERO;
            while now < Duration::from_secs(300) {
                for limiter in &limiters {
                    while limiter.check().is_ok() {
                        sent.push(now);
                    }
                }
                clock.advance(step);
                now += step;
            }
            for (i, start) in sent.iter().enumerate() {
                let in_window = sent[i..]
                    .iter()
                    .take_while(|t| **t < *start + Duration::from_secs(60))
                    .count();
                assert!(
                    in_window <= rpm as usize,
                    "rpm {rpm} burst {burst} over {replicas} replicas: {in_window} in the minute from {start:?}"
                );
            }
            assert!(!sent.is_empty());
        }
    }

    #[test]
    fn only_timeouts_connection_failures_and_502_503_504_are_retried() {
        let unavailable = |status| ProviderError::Unavailable {
            provider: "okra".into(),
            status,
            message: String::new(),
        };
        for status in [None, Some(408), Some(502), Some(503), Some(504)] {
            assert!(is_transient(&unavailable(status)), "{status:?}");
        }
        assert!(!is_transient(&unavailable(Some(500))));
        assert!(!is_transient(&ProviderError::RateLimited {
            provider: "okra".into(),
            retry_after: None,
            message: String::new(),
        }));
        assert!(!is_transient(&ProviderError::Rejected {
            provider: "okra".into(),
            status: 400,
            message: String::new(),
        }));
        assert!(!is_transient(&ProviderError::NotFound {
            provider: "okra".into(),
            message: String::new(),
        }));
    }

    fn config() -> OutboundConfig {
        OutboundConfig {
            quota: None,
            max_concurrent_requests: 2,
            queue_timeout: Duration::from_millis(200),
            max_retries: 3,
            retry_backoff: Duration::from_millis(1),
            breaker_failure_threshold: 2,
            breaker_open: Duration::from_secs(60),
        }
    }

    fn failure(status: u16) -> ProviderError {
        ProviderError::Unavailable {
            provider: "p".into(),
            status: Some(status),
            message: String::new(),
        }
    }

    #[tokio::test]
    async fn reads_are_retried_until_they_succeed() {
        let lane = Lane::new("p", config());
        let calls = std::sync::atomic::AtomicU32::new(0);
        let result = lane
            .read(|| async {
                match calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                    0 => Err(failure(503)),
                    _ => Ok(7),
                }
            })
            .await;
        assert_eq!(result, Ok(7));
        assert_eq!(calls.into_inner(), 2);
        // The success ended the run of failures.
        assert_eq!(lane.status().circuit.consecutive_failures, 0);
    }

    #[tokio::test]
    async fn a_failing_provider_opens_the_breaker_and_later_calls_do_not_reach_it() {
        let lane = Lane::new("p", config());
        let calls = std::sync::atomic::AtomicU32::new(0);
        let call = || async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err::<(), _>(failure(503))
        };
        let first = lane.read(call).await;
        // Two failures opened the breaker; the retry after it was held back, and the caller
        // hears what the provider said.
        assert_eq!(first, Err(failure(503)));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
        let second = lane.read(call).await;
        assert!(matches!(
            second,
            Err(ProviderError::Throttled {
                reason: ThrottleReason::CircuitOpen,
                ..
            })
        ));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_429_pauses_the_lane_and_is_not_retried() {
        let lane = Lane::new("p", config());
        let calls = std::sync::atomic::AtomicU32::new(0);
        let call = || async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err::<(), _>(ProviderError::RateLimited {
                provider: "p".into(),
                retry_after: Some(Duration::from_secs(30)),
                message: String::new(),
            })
        };
        assert!(lane.read(call).await.is_err());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        let paused = lane.read(call).await.unwrap_err();
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(paused.retry_after().unwrap() > Duration::from_secs(29));
        assert!(lane.status().paused_for.is_some());
        assert_eq!(lane.status().circuit.consecutive_failures, 0);
    }

    // On tokio's paused clock: the 300 ms are virtual, so "no retry before the deadline" is
    // exact, not a race with a loaded machine.
    #[tokio::test(start_paused = true)]
    async fn no_retry_starts_that_cannot_finish_before_the_deadline() {
        let mut slow = config();
        slow.retry_backoff = Duration::from_secs(5);
        slow.breaker_failure_threshold = 100;
        let lane = Lane::new("p", slow);
        let calls = std::sync::atomic::AtomicU32::new(0);
        let started = Instant::now();
        let result = with_deadline(
            Instant::now() + Duration::from_millis(300),
            lane.read(|| async {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Err::<(), _>(failure(502))
            }),
        )
        .await;
        assert!(result.is_err());
        assert_eq!(calls.into_inner(), 1);
        assert!(started.elapsed() < Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_still_running_at_the_deadline_is_a_failure() {
        let mut one = config();
        one.breaker_failure_threshold = 1;
        one.max_retries = 0;
        let lane = Lane::new("p", one);
        let result = with_deadline(
            Instant::now() + Duration::from_millis(50),
            lane.read(|| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(())
            }),
        )
        .await;
        assert!(matches!(
            result,
            Err(ProviderError::Unavailable { status: None, .. })
        ));
        assert_eq!(
            lane.status().circuit.state,
            crate::breaker::CircuitState::Open
        );
    }

    // The busy call says when it holds the slot and ends when told: no sleep decides the order.
    #[tokio::test(start_paused = true)]
    async fn callers_beyond_the_concurrency_cap_wait_in_line_then_give_up() {
        let mut capped = config();
        capped.max_concurrent_requests = 1;
        capped.queue_timeout = Duration::from_millis(50);
        let lane = Arc::new(Lane::new("p", capped));
        let (holding, held) = tokio::sync::oneshot::channel::<()>();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let busy = {
            let lane = lane.clone();
            tokio::spawn(async move {
                lane.once(async move {
                    let _ = holding.send(());
                    let _ = released.await;
                    Ok::<_, ProviderError>(())
                })
                .await
            })
        };
        held.await.unwrap();
        assert_eq!(lane.status().in_flight, 1);
        let refused = lane.once(async { Ok::<_, ProviderError>(()) }).await;
        assert!(matches!(
            refused,
            Err(ProviderError::Throttled {
                reason: ThrottleReason::Concurrency,
                ..
            })
        ));
        release.send(()).unwrap();
        assert!(busy.await.unwrap().is_ok());
        assert!(
            lane.once(async { Ok::<_, ProviderError>(()) })
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn past_the_quota_callers_wait_for_a_cell_or_are_told_when_to_come_back() {
        let mut limited = config();
        // One cell per 100 ms, none banked.
        limited.quota = Some(quota(600, 1));
        limited.queue_timeout = Duration::from_millis(500);
        let lane = Lane::new("p", limited);
        let started = Instant::now();
        for _ in 0..3 {
            lane.once(async { Ok::<_, ProviderError>(()) })
                .await
                .unwrap();
        }
        assert!(started.elapsed() >= Duration::from_millis(190));

        let mut strict = config();
        strict.quota = Some(quota(1, 1));
        strict.queue_timeout = Duration::from_millis(100);
        let lane = Lane::new("p", strict);
        lane.once(async { Ok::<_, ProviderError>(()) })
            .await
            .unwrap();
        let refused = lane
            .once(async { Ok::<_, ProviderError>(()) })
            .await
            .unwrap_err();
        assert!(matches!(
            refused,
            ProviderError::Throttled {
                reason: ThrottleReason::Quota,
                ..
            }
        ));
        assert!(refused.retry_after().unwrap() > Duration::from_secs(50));
    }

    /// A provider that refreshes by polling: the start answers at once, the first poll meets a
    /// 429 (30 s), the next one finds it done.
    #[derive(Debug)]
    struct Poller {
        caps: Capabilities,
        polls: std::sync::atomic::AtomicU32,
        polled: tokio::sync::Notify,
    }

    #[async_trait]
    impl Provider for Poller {
        fn name(&self) -> &str {
            "p"
        }

        fn kind(&self) -> &'static str {
            "poller"
        }

        fn capabilities(&self) -> &Capabilities {
            &self.caps
        }

        async fn list_page(
            &self,
            _: &TransactionQuery,
        ) -> Result<Page<Transaction>, ProviderError> {
            Err(ProviderError::unsupported("p", "list"))
        }

        async fn start_refresh(&self, _: &RefreshRequest) -> Result<RefreshStart, ProviderError> {
            Ok(RefreshStart::Polling(RefreshPoll {
                handle: "status".into(),
                initial_delay: Duration::from_millis(100),
                max_delay: Duration::from_secs(1),
                deadline: Duration::from_secs(120),
            }))
        }

        async fn poll_refresh(&self, _: &RefreshPoll) -> Result<PollStatus, ProviderError> {
            let n = self.polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            // Wakes the test once the lane has seen this poll's outcome (`notify_one` keeps
            // the permit if the test is not waiting yet).
            self.polled.notify_one();
            match n {
                0 => Err(ProviderError::RateLimited {
                    provider: "p".into(),
                    retry_after: Some(Duration::from_secs(30)),
                    message: String::new(),
                }),
                _ => Ok(PollStatus::Completed),
            }
        }
    }

    /// Defect 3: a refresh's status polls go through the lane like any call: the 429 a poll
    /// meets pauses the lane (reads are held back too), and the next poll waits for the pause
    /// to end instead of reaching the provider.
    #[tokio::test(start_paused = true)]
    async fn refresh_polls_go_through_the_lane() {
        let poller = Arc::new(Poller {
            caps: Capabilities {
                scopes: vec![],
                date_filter: vec![],
                direction_filter: vec![],
                get_by_id: false,
                default_page_size: 10,
                max_page_size: 10,
                bulk_read: false,
                newest_first: false,
                refresh: provider::RefreshStyle::Polling,
            },
            polls: std::sync::atomic::AtomicU32::new(0),
            polled: tokio::sync::Notify::new(),
        });
        let lane = Arc::new(Lane::new("p", config()));
        let guarded = Guarded::new(poller.clone(), lane.clone(), None);
        let request = RefreshRequest {
            account_id: "A".into(),
            callback_url: None,
        };
        let started = Instant::now();
        let refresh = tokio::spawn(async move { guarded.refresh(&request).await });
        // Right after the first poll's 429, the lane is paused for everyone.
        poller.polled.notified().await;
        assert!(lane.status().paused_for.is_some());
        assert_eq!(
            refresh.await.unwrap(),
            Ok(provider::RefreshOutcome::Completed)
        );
        // Two polls reached the provider: the one that met the 429 and the one after the pause.
        assert_eq!(poller.polls.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert!(started.elapsed() >= Duration::from_secs(30));
    }

    /// A provider that knows no account and no transaction, counting what it is asked.
    #[derive(Debug)]
    struct Nobody {
        caps: Capabilities,
        calls: std::sync::atomic::AtomicU32,
    }

    #[async_trait]
    impl Provider for Nobody {
        fn name(&self) -> &str {
            "p"
        }

        fn kind(&self) -> &'static str {
            "nobody"
        }

        fn capabilities(&self) -> &Capabilities {
            &self.caps
        }

        async fn list_page(
            &self,
            _: &TransactionQuery,
        ) -> Result<Page<Transaction>, ProviderError> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(ProviderError::NotFound {
                provider: "p".into(),
                message: "no such account".into(),
            })
        }

        async fn get_transaction(&self, _: &str) -> Result<Transaction, ProviderError> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(ProviderError::NotFound {
                provider: "p".into(),
                message: "no such transaction".into(),
            })
        }
    }

    /// Negative caching: "no such account / transaction" is answered again without a call for
    /// the TTL, per scope or id; after it, the provider is asked again.
    #[tokio::test(start_paused = true)]
    async fn not_found_is_remembered_for_its_ttl() {
        let nobody = Arc::new(Nobody {
            caps: Capabilities {
                scopes: vec![],
                date_filter: vec![],
                direction_filter: vec![],
                get_by_id: true,
                default_page_size: 10,
                max_page_size: 10,
                bulk_read: false,
                newest_first: false,
                refresh: provider::RefreshStyle::None,
            },
            calls: std::sync::atomic::AtomicU32::new(0),
        });
        let calls = || nobody.calls.load(std::sync::atomic::Ordering::SeqCst);
        let guarded = Guarded::new(nobody.clone(), Arc::new(Lane::new("p", config())), None)
            .remembering_not_found(Duration::from_secs(60));
        let ghost = TransactionQuery::new(Scope::Account("ghost".into()));
        for _ in 0..3 {
            let answer = guarded.list_page(&ghost).await;
            assert!(matches!(answer, Err(ProviderError::NotFound { .. })));
            assert!(guarded.get_transaction("t1").await.is_err());
        }
        assert_eq!(calls(), 2, "one call per unknown thing");
        // Another account is another question.
        let other = TransactionQuery::new(Scope::Account("other".into()));
        assert!(guarded.list_page(&other).await.is_err());
        assert_eq!(calls(), 3);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(guarded.list_page(&ghost).await.is_err());
        assert_eq!(calls(), 4, "asked again after the TTL");
        // Zero: never remembered.
        let forgetful = Guarded::new(nobody.clone(), Arc::new(Lane::new("p", config())), None)
            .remembering_not_found(Duration::ZERO);
        assert!(forgetful.list_page(&ghost).await.is_err());
        assert!(forgetful.list_page(&ghost).await.is_err());
        assert_eq!(calls(), 6);
    }

    async fn the_first_admissions_of_two_waiting_clients(weights: (u32, u32)) -> Vec<&'static str> {
        let line = Arc::new(FairLine::default());
        let far = Instant::now() + Duration::from_secs(60);
        let blocker = line.turn((Arc::from("x"), 1), far).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for (name, weight) in [("heavy", weights.0), ("light", weights.1)] {
            for _ in 0..4 {
                let (line, order) = (line.clone(), order.clone());
                waiters.push(tokio::spawn(async move {
                    let turn = line.turn((Arc::from(name), weight), far).await.unwrap();
                    order.lock().unwrap().push(name);
                    drop(turn);
                }));
                // Each waiter takes its place (and its tag) before the next arrives.
                tokio::task::yield_now().await;
            }
        }
        assert_eq!(line.waiting(), (9, 3));
        drop(blocker);
        for waiter in waiters {
            waiter.await.unwrap();
        }
        order.lock().unwrap().clone()
    }

    /// Fair share with weights from config: while both wait, a client of weight 3 is admitted
    /// three times for another's once; with equal weights they alternate.
    #[tokio::test(start_paused = true)]
    async fn a_clients_weight_is_its_share_of_the_admissions() {
        let weighted = the_first_admissions_of_two_waiting_clients((3, 1)).await;
        let heavy = |order: &[&str]| order[..4].iter().filter(|&&c| c == "heavy").count();
        assert_eq!(heavy(&weighted), 3, "{weighted:?}");
        assert_eq!(weighted.len(), 8);
        let equal = the_first_admissions_of_two_waiting_clients((1, 1)).await;
        assert_eq!(heavy(&equal), 2, "{equal:?}");
    }

    /// Fair share: client A floods a lane of one slot (each call takes 1 s) with 20 reads, then
    /// client B sends 2. B's reads are admitted in turn with A's, within B's wait in line, and
    /// A's flood is what times out. (First in, first out, B would wait behind all of A's 20
    /// and be refused with `provider_busy`.)
    #[tokio::test(start_paused = true)]
    async fn one_clients_flood_does_not_push_anothers_reads_into_provider_busy() {
        let mut one = config();
        one.max_concurrent_requests = 1;
        one.queue_timeout = Duration::from_secs(5);
        let lane = Arc::new(Lane::new("p", one));
        let call = |lane: Arc<Lane>, client: &str| {
            let client: Arc<str> = Arc::from(client);
            tokio::spawn(for_client((client, 1), async move {
                lane.once(async {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Ok::<_, ProviderError>(())
                })
                .await
            }))
        };
        let flood: Vec<_> = (0..20).map(|_| call(lane.clone(), "a")).collect();
        // Let the flood take its places in line first.
        tokio::task::yield_now().await;
        let reads: Vec<_> = (0..2).map(|_| call(lane.clone(), "b")).collect();
        tokio::task::yield_now().await;
        let status = lane.status();
        assert_eq!((status.waiting_for_quota, status.waiting_clients), (21, 2));
        for read in reads {
            assert_eq!(read.await.unwrap(), Ok(()), "b's read");
        }
        let mut served = 0;
        let mut busy = 0;
        for call in flood {
            match call.await.unwrap() {
                Ok(()) => served += 1,
                Err(ProviderError::Throttled { .. }) => busy += 1,
                Err(other) => panic!("{other:?}"),
            }
        }
        // Five seconds of one-second calls: about five admitted in all, two of them b's.
        assert!(served >= 2, "{served} of a's served");
        assert_eq!(served + busy, 20);
        assert!(busy >= 14, "{busy} of a's refused");
    }
    /// A provider whose every page points back at page 1, and whose documented policy is to
    /// fail rather than truncate.
    #[derive(Debug)]
    struct Looping {
        caps: Capabilities,
    }

    #[async_trait]
    impl Provider for Looping {
        fn name(&self) -> &str {
            "p"
        }

        fn kind(&self) -> &'static str {
            "looping"
        }

        fn capabilities(&self) -> &Capabilities {
            &self.caps
        }

        fn non_advancing(&self) -> provider::http::NonAdvancing {
            provider::http::NonAdvancing::Fail
        }

        async fn list_page(
            &self,
            query: &TransactionQuery,
        ) -> Result<Page<Transaction>, ProviderError> {
            Ok(Page {
                items: Vec::new(),
                page: query.page.page,
                limit: query.page.limit,
                total: None,
                total_pages: None,
                next_page: Some(1),
                warnings: vec![provider::RecordWarning::field_ignored("r", "x", "y", None)],
            })
        }
    }

    /// The lane walks the pages of a non-bulk provider itself: it keeps the adapter's "never
    /// truncate silently" rather than stopping at the page that does not advance.
    #[tokio::test]
    async fn the_lanes_walk_keeps_the_adapters_paging_policy() {
        let looping = Arc::new(Looping {
            caps: Capabilities {
                scopes: vec![provider::ScopeKind::Account],
                date_filter: vec![],
                direction_filter: vec![],
                get_by_id: false,
                default_page_size: 10,
                max_page_size: 10,
                bulk_read: false,
                newest_first: false,
                refresh: provider::RefreshStyle::None,
            },
        });
        let guarded = Guarded::new(looping, Arc::new(Lane::new("p", config())), Some(10));
        let query = TransactionQuery::new(provider::Scope::Account("a".into()));
        let error = guarded.list_all(&query).await.unwrap_err();
        assert!(matches!(error, ProviderError::BadPayload { .. }), "{error}");
    }
}
