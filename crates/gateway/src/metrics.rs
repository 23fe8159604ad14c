//! Prometheus metrics: the recorder, the names of every family, and the one-line helpers the
//! rest of the gateway calls.
//!
//! The `metrics` crate's macros write into one process-wide recorder
//! (`metrics-exporter-prometheus`, its hyper features off); `GET /metrics` renders it from actix
//! (see `startup`). Counters and histograms are recorded where things happen; gauges that
//! describe state (circuit breakers, cache bytes per tier, build info) are set from the
//! application's state right before each scrape, so no other module keeps them up to date.
//!
//! Names follow the Prometheus conventions: a `gateway_` prefix, base units in the name
//! (`_seconds`, `_bytes`), `_total` on counters only; `promtool check metrics` accepts the
//! output (a test runs it). Label values are bounded: route *templates*, provider instance
//! names, client *names* (never keys), status classes.
//!
//! This module must never take a lock on a request's hot path beyond the recorder's own
//! atomics, and never label by anything a caller chooses freely (paths, ids, query values).

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use metrics::{
    SharedString, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use provider::{ProviderError, ThrottleReason};

/// Inbound requests: histogram of seconds by `route`, `method`, `status` class and `client`.
pub const HTTP_REQUEST_DURATION: &str = "gateway_http_request_duration_seconds";
/// Upstream requests by `provider`, `endpoint`, `outcome` and upstream `status`.
pub const UPSTREAM_REQUESTS: &str = "gateway_upstream_requests_total";
/// Upstream request durations by `provider`, `endpoint` and `outcome`.
pub const UPSTREAM_DURATION: &str = "gateway_upstream_request_duration_seconds";
/// Upstream requests being sent now, by `provider`.
pub const UPSTREAM_IN_FLIGHT: &str = "gateway_upstream_in_flight_requests";
/// Retries of transiently failed reads, by `provider`.
pub const UPSTREAM_RETRIES: &str = "gateway_upstream_retries_total";
/// Calls the outbound lane held back without calling the provider, by `provider` and `reason`
/// (`quota`: the provider quota refused it; `concurrency`, `circuit_open`, `paused`).
pub const UPSTREAM_THROTTLED: &str = "gateway_upstream_throttled_total";
/// Provider quota cells spent (one per upstream request of a quota'd provider), by `provider`.
pub const QUOTA_SPENT: &str = "gateway_provider_quota_spent_total";
/// Calls waiting for a provider quota cell now, by `provider`.
pub const QUOTA_WAITING: &str = "gateway_provider_quota_waiting_requests";
/// Callers in a provider lane's fair line now (waiting for a slot and a quota cell), by
/// `provider`; set when scraped.
pub const LINE_WAITING: &str = "gateway_provider_fair_line_waiting_requests";
/// The clients those callers belong to (each is admitted in turn), by `provider`.
pub const LINE_CLIENTS: &str = "gateway_provider_fair_line_waiting_clients";
/// Each configured client's weight in the providers' fair lines, by `client`; set when
/// scraped.
pub const CLIENT_WEIGHT: &str = "gateway_client_fair_share_weight";
/// Circuit breaker state by `provider` and `state`: 1 for the current state, 0 for the others.
pub const CIRCUIT_STATE: &str = "gateway_provider_circuit_state";
/// Snapshot cache lookups by `provider` and `result` (`hit`, `miss`, `joined`, `stale`,
/// `error`, `too_large`, `busy`, ...).
pub const CACHE_LOOKUPS: &str = "gateway_cache_lookups_total";
/// Heap bytes held by each share of the cache's budget, by `tier` (`current`, `retired`,
/// `stale`, `rendered`, `index`, `partials`, `fills`).
pub const CACHE_BYTES: &str = "gateway_cache_bytes";
/// Entries dropped for memory pressure, by cache `tier`.
pub const CACHE_EVICTIONS: &str = "gateway_cache_evictions_total";
/// Snapshot fetches: histogram of seconds by `provider` and `outcome`.
pub const SNAPSHOT_FETCH_DURATION: &str = "gateway_snapshot_fetch_duration_seconds";
/// Snapshot fetches: histogram of upstream requests (pages) per fetch, by `provider`.
pub const SNAPSHOT_FETCH_PAGES: &str = "gateway_snapshot_fetch_pages";
/// Refresh jobs entering a `state` (`created`, `succeeded`, `failed`), by `provider`.
pub const REFRESH_JOBS: &str = "gateway_refresh_jobs_total";
/// Refresh runs (upstream refresh work) started and not yet finished.
pub const REFRESH_RUNS_ACTIVE: &str = "gateway_refresh_runs_active";
/// Client notification attempts by `outcome` (`delivered`, `refused`, `failed`, `abandoned`
/// for a notification given up after its last attempt).
pub const NOTIFICATION_ATTEMPTS: &str = "gateway_notification_attempts_total";
/// Vendor records the adapters could not read whole, by `provider` and `code`
/// (`record_skipped`, `currency_mismatch`, `field_ignored`), counted once per snapshot built.
pub const RECORD_WARNINGS: &str = "gateway_record_warnings_total";
/// Redis calls by `op` and `outcome` (`ok`, `error`, `timeout`, `skipped`), when Redis is
/// configured.
pub const REDIS_COMMANDS: &str = "gateway_redis_commands_total";
/// Always 1, labelled with the `version` and git `revision` of the running binary.
pub const BUILD_INFO: &str = "gateway_build_info";
/// Gauge: the allocator's bytes by `state` (`allocated`: live; `resident`: in RAM; `retained`:
/// mapped but given back), sampled every second (the binary's jemalloc only).
pub const ALLOCATOR_BYTES: &str = "gateway_allocator_bytes";

/// Seconds: 1 ms to 30 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Pages per snapshot fetch.
const PAGES_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

/// The package version, as in `Cargo.toml` (and the OpenAPI document's `info.version`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git revision the binary was built from (`unknown` when built without git).
pub const REVISION: &str = env!("BUILD_GIT_REVISION");

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder, installed on first use (several gateways in one process, as in
/// tests, share it). `None` when another recorder was installed first.
pub fn handle() -> Option<&'static PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Some(handle);
    }
    let mut installed = false;
    let handle = HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(SNAPSHOT_FETCH_PAGES.into()), PAGES_BUCKETS)
            })
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = recorder.handle();
        installed = metrics::set_global_recorder(recorder).is_ok();
        handle
    });
    if installed {
        describe();
        // Histograms keep samples until upkeep folds them; scrapes also run it, but a gateway
        // nobody scrapes must not grow.
        let upkeep = handle.clone();
        let _ = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            });
    }
    Some(handle)
}

fn describe() {
    describe_counter!(
        RECORD_WARNINGS,
        "Vendor records read with a warning (left out, or a field dropped), once per snapshot"
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Inbound requests by route template, method, status class and client name."
    );
    describe_counter!(
        UPSTREAM_REQUESTS,
        "Upstream requests by provider, endpoint, outcome and upstream status."
    );
    describe_histogram!(
        UPSTREAM_DURATION,
        metrics::Unit::Seconds,
        "Upstream request durations by provider, endpoint and outcome."
    );
    describe_gauge!(
        UPSTREAM_IN_FLIGHT,
        "Upstream requests being sent now, by provider."
    );
    describe_gauge!(
        ALLOCATOR_BYTES,
        "The allocator's bytes by state (allocated, resident, retained), sampled every second."
    );
    describe_counter!(
        UPSTREAM_RETRIES,
        "Retries of transiently failed upstream reads, by provider."
    );
    describe_counter!(
        UPSTREAM_THROTTLED,
        "Calls held back by the outbound lane without calling the provider, by reason (quota = refused by the provider quota)."
    );
    describe_counter!(QUOTA_SPENT, "Provider quota cells spent, by provider.");
    describe_gauge!(
        QUOTA_WAITING,
        "Calls waiting for a provider quota cell now, by provider."
    );
    describe_gauge!(
        LINE_WAITING,
        "Callers in the provider lane's fair line now (waiting for a slot and a quota cell), by provider."
    );
    describe_gauge!(
        LINE_CLIENTS,
        "Clients with callers in the provider lane's fair line now (each admitted in turn), by provider."
    );
    describe_gauge!(
        CLIENT_WEIGHT,
        "Each client's weight in the providers' fair lines (admissions while clients wait), by client."
    );
    describe_gauge!(
        CIRCUIT_STATE,
        "Circuit breaker state per provider: 1 for the current state."
    );
    describe_counter!(
        CACHE_LOOKUPS,
        "Snapshot cache lookups by provider and result."
    );
    describe_gauge!(
        CACHE_BYTES,
        metrics::Unit::Bytes,
        "Heap bytes held by each share of the cache's memory budget, by tier."
    );
    describe_counter!(
        CACHE_EVICTIONS,
        "Cache entries dropped for memory pressure, by tier."
    );
    describe_histogram!(
        SNAPSHOT_FETCH_DURATION,
        metrics::Unit::Seconds,
        "Snapshot fetch durations by provider and outcome."
    );
    describe_histogram!(
        SNAPSHOT_FETCH_PAGES,
        "Upstream requests (pages) per snapshot fetch, by provider."
    );
    describe_counter!(
        REFRESH_JOBS,
        "Refresh jobs entering a state (created, succeeded, failed), by provider."
    );
    describe_gauge!(
        REFRESH_RUNS_ACTIVE,
        "Refresh runs started and not yet finished."
    );
    describe_counter!(
        NOTIFICATION_ATTEMPTS,
        "Client notification attempts by outcome."
    );
    describe_counter!(REDIS_COMMANDS, "Redis commands by operation and outcome.");
    describe_gauge!(
        BUILD_INFO,
        "Always 1; labelled with the version and git revision of the binary."
    );
}

/// The scrape: state gauges refreshed from `state`, then every family in the Prometheus text
/// format. Empty when no recorder could be installed.
pub fn render(state: &impl Scraped) -> String {
    let Some(handle) = handle() else {
        return String::new();
    };
    gauge!(BUILD_INFO, "version" => VERSION, "revision" => REVISION).set(1.0);
    state.set_gauges();
    gauge!(REFRESH_RUNS_ACTIVE).increment(0.0);
    handle.run_upkeep();
    handle.render()
}

impl<T: Scraped> Scraped for actix_web::web::Data<T> {
    fn set_gauges(&self) {
        self.get_ref().set_gauges();
    }
}

/// What a scrape reads its state gauges from (`AppState` implements it: breaker states, lines,
/// cache bytes per tier), so `metrics` does not import the modules that call it.
pub trait Scraped {
    /// Sets every state gauge to its value now.
    fn set_gauges(&self);
}

/// `2xx`, `3xx`, `4xx` or `5xx`.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Records one inbound request.
///
/// On every request's path, so the histogram's handle is kept per worker thread for each set of
/// labels (a route template, a method, a status class, a client: a bounded set) instead of
/// being looked up in the registry by a freshly built key each time.
pub fn http_request(
    route: std::borrow::Cow<'static, str>,
    method: &str,
    status: u16,
    client: &str,
    elapsed: Duration,
) {
    let class = status_class(status);
    let method: SharedString = match method {
        "GET" => "GET".into(),
        "HEAD" => "HEAD".into(),
        "POST" => "POST".into(),
        other => other.to_owned().into(),
    };
    let std::borrow::Cow::Borrowed(route) = route else {
        // An unmatched or unusual route: the registry's own lookup.
        histogram!(
            HTTP_REQUEST_DURATION,
            "route" => route,
            "method" => method,
            "status" => class,
            "client" => client.to_owned(),
        )
        .record(elapsed.as_secs_f64());
        return;
    };
    let mut hasher = xxhash_rust::xxh3::Xxh3Default::new();
    for field in [route, method.as_ref(), class, client] {
        hasher.update(field.as_bytes());
        hasher.update(&[0]);
    }
    let slot = hasher.digest();
    HTTP_HANDLES.with_borrow_mut(|handles| {
        let entries = handles.entry(slot).or_default();
        let found = entries.iter().find(|h| {
            h.route == route
                && h.method == method.as_ref()
                && h.class == class
                && *h.client == *client
        });
        match found {
            Some(h) => h.histogram.record(elapsed.as_secs_f64()),
            None => {
                let histogram = histogram!(
                    HTTP_REQUEST_DURATION,
                    "route" => route,
                    "method" => method.clone(),
                    "status" => class,
                    "client" => client.to_owned(),
                );
                histogram.record(elapsed.as_secs_f64());
                entries.push(HttpHandle {
                    route,
                    method: method.to_string(),
                    class,
                    client: client.into(),
                    histogram,
                });
            }
        }
    });
}

/// A registered request-duration histogram and its labels.
struct HttpHandle {
    route: &'static str,
    method: String,
    class: &'static str,
    client: Box<str>,
    histogram: metrics::Histogram,
}

thread_local! {
    static HTTP_HANDLES: std::cell::RefCell<std::collections::HashMap<u64, Vec<HttpHandle>>> =
        std::cell::RefCell::default();
}

/// What became of an upstream call, and the upstream status when known (`2xx` for a success,
/// `none` when no answer came).
fn upstream_outcome<T>(result: &Result<T, ProviderError>) -> (&'static str, String) {
    let status = |s: Option<u16>| s.map_or_else(|| "none".to_owned(), |s| s.to_string());
    match result {
        Ok(_) => ("ok", "2xx".to_owned()),
        Err(e) => match e {
            ProviderError::Unauthorized { status: s, .. } => ("unauthorized", status(Some(*s))),
            ProviderError::NotFound { .. } => ("not_found", "404".to_owned()),
            ProviderError::Rejected { status: s, .. } => ("rejected", status(Some(*s))),
            ProviderError::RateLimited { .. } => ("rate_limited", "429".to_owned()),
            ProviderError::Unavailable { status: s, .. } => ("unavailable", status(*s)),
            ProviderError::BadPayload { status: s, .. } => ("bad_payload", status(*s)),
            ProviderError::Mapping { .. } => ("mapping", "2xx".to_owned()),
            ProviderError::Unsupported { .. } => ("unsupported", status(None)),
            ProviderError::Config { .. } => ("config", status(None)),
            ProviderError::Throttled { .. } => ("throttled", status(None)),
        },
    }
}

/// One upstream call being made: counted in flight until it ends or is dropped unfinished (a
/// deadline cut it), which is recorded as `outcome="cancelled"`.
struct UpstreamCall {
    provider: String,
    endpoint: &'static str,
    started: Instant,
    done: bool,
}

impl UpstreamCall {
    fn finish(&mut self, outcome: &'static str, status: String) {
        self.done = true;
        gauge!(UPSTREAM_IN_FLIGHT, "provider" => self.provider.clone()).decrement(1.0);
        counter!(
            UPSTREAM_REQUESTS,
            "provider" => self.provider.clone(),
            "endpoint" => self.endpoint,
            "outcome" => outcome,
            "status" => status,
        )
        .increment(1);
        histogram!(
            UPSTREAM_DURATION,
            "provider" => self.provider.clone(),
            "endpoint" => self.endpoint,
            "outcome" => outcome,
        )
        .record(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for UpstreamCall {
    fn drop(&mut self) {
        if !self.done {
            self.finish("cancelled", "none".to_owned());
        }
    }
}

/// Runs one upstream request of `provider`'s adapter (`endpoint`: `list_page`, `list_all`,
/// `get_transaction`, `start_refresh`, `poll_refresh`), counting it, its duration and outcome, the in-flight gauge,
/// and the current request's upstream calls (for the access log).
///
/// The outbound lane calls this only once a call is admitted, so every count is a request that
/// really went to the provider.
pub async fn upstream<T, F>(
    provider: &str,
    endpoint: &'static str,
    call: F,
) -> Result<T, ProviderError>
where
    F: Future<Output = Result<T, ProviderError>>,
{
    let mut guard = UpstreamCall {
        provider: provider.to_owned(),
        endpoint,
        started: Instant::now(),
        done: false,
    };
    gauge!(UPSTREAM_IN_FLIGHT, "provider" => guard.provider.clone()).increment(1.0);
    crate::telemetry::count_upstream_call();
    let result = call.await;
    let (outcome, status) = upstream_outcome(&result);
    guard.finish(outcome, status);
    result
}

/// A retry of a transiently failed read.
pub fn upstream_retry(provider: &str) {
    counter!(UPSTREAM_RETRIES, "provider" => provider.to_owned()).increment(1);
}

/// A call the outbound lane held back for `reason`.
pub fn upstream_throttled(provider: &str, reason: ThrottleReason) {
    let reason = match reason {
        ThrottleReason::Quota => "quota",
        ThrottleReason::Concurrency => "concurrency",
        ThrottleReason::CircuitOpen => "circuit_open",
    };
    throttled(provider, reason);
}

/// A call the outbound lane did not send because the provider asked for a pause (its 429).
pub fn upstream_paused(provider: &str) {
    throttled(provider, "paused");
}

fn throttled(provider: &str, reason: &'static str) {
    counter!(UPSTREAM_THROTTLED, "provider" => provider.to_owned(), "reason" => reason)
        .increment(1);
}

/// A provider quota cell spent.
pub fn quota_spent(provider: &str) {
    counter!(QUOTA_SPENT, "provider" => provider.to_owned()).increment(1);
}

/// A call counted as waiting for a provider quota cell while this lives.
#[derive(Debug)]
pub struct QuotaWaiting(metrics::Gauge);

impl Drop for QuotaWaiting {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Counts a call as waiting for a quota cell until the returned guard is dropped.
pub fn quota_waiting(provider: &str) -> QuotaWaiting {
    let gauge = gauge!(QUOTA_WAITING, "provider" => provider.to_owned());
    gauge.increment(1.0);
    QuotaWaiting(gauge)
}

/// A snapshot cache lookup (`hit`, `miss`, `joined`, `covering`, `stale`, `error`,
/// `too_large`). On the
/// cache-hit path: the provider's name is shared, not copied.
pub fn cache_lookup(provider: &Arc<str>, result: &'static str) {
    // The registry's lookup builds and hashes the key; a worker thread keeps its handles (a
    // few providers times eight results), found by comparing two short strings.
    CACHE_HANDLES.with_borrow_mut(|handles| {
        match handles
            .iter()
            .find(|h| h.result == result && *h.provider == **provider)
        {
            Some(h) => h.counter.increment(1),
            None => {
                let counter =
                    counter!(CACHE_LOOKUPS, "provider" => provider.clone(), "result" => result);
                counter.increment(1);
                handles.push(CacheHandle {
                    provider: provider.clone(),
                    result,
                    counter,
                });
            }
        }
    });
}

/// A registered cache-lookup counter and its labels.
struct CacheHandle {
    provider: Arc<str>,
    result: &'static str,
    counter: metrics::Counter,
}

thread_local! {
    static CACHE_HANDLES: std::cell::RefCell<Vec<CacheHandle>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// An entry of cache `tier` dropped for memory pressure.
pub fn cache_eviction(tier: &'static str) {
    counter!(CACHE_EVICTIONS, "tier" => tier).increment(1);
}

/// One snapshot fetch: its outcome (`ok`, `error`), duration and upstream requests.
pub fn snapshot_fetch(provider: &str, outcome: &'static str, elapsed: Duration, pages: u32) {
    histogram!(SNAPSHOT_FETCH_DURATION, "provider" => provider.to_owned(), "outcome" => outcome)
        .record(elapsed.as_secs_f64());
    histogram!(SNAPSHOT_FETCH_PAGES, "provider" => provider.to_owned()).record(f64::from(pages));
}

/// The allocator's bytes in `state` (`allocated`, `resident`, `retained`).
pub fn allocator_bytes(state: &'static str, bytes: u64) {
    gauge!(ALLOCATOR_BYTES, "state" => state).set(bytes as f64);
}

/// A refresh job entering `state` (`created`, `succeeded`, `failed`).
pub fn refresh_job(provider: &str, state: &'static str) {
    counter!(REFRESH_JOBS, "provider" => provider.to_owned(), "state" => state).increment(1);
}

/// A refresh run started (`+1`) or finished (`-1`).
pub fn refresh_run(change: f64) {
    gauge!(REFRESH_RUNS_ACTIVE).increment(change);
}

/// One client notification attempt (`delivered`, `refused`, `failed`) or its abandonment.
pub fn notification_attempt(outcome: &'static str) {
    counter!(NOTIFICATION_ATTEMPTS, "outcome" => outcome).increment(1);
}

/// One vendor record read with a warning (`code`), when a snapshot is built.
pub fn record_warning(provider: &str, code: &'static str) {
    counter!(RECORD_WARNINGS, "provider" => provider.to_owned(), "code" => code).increment(1);
}

/// One Redis call (`op`: what it was for, e.g. `gcra`, `admit`, `snapshot_lookup`; `outcome`:
/// `ok`, `error`, `timeout`, or `skipped` while Redis is marked down).
pub fn redis_call(op: &'static str, outcome: &'static str) {
    counter!(REDIS_COMMANDS, "op" => op, "outcome" => outcome).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_commands_are_counted_by_operation_and_outcome() {
        let handle = handle().expect("the recorder is installed");
        redis_call("get", "ok");
        redis_call("get", "error");
        redis_call("get", "error");
        let text = handle.render();
        assert!(
            text.contains("gateway_redis_commands_total{op=\"get\",outcome=\"error\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE gateway_redis_commands_total counter"),
            "{text}"
        );
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(200), "2xx");
        assert_eq!(status_class(304), "3xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(503), "5xx");
    }

    #[test]
    fn upstream_outcomes_name_the_status() {
        let ok: Result<(), ProviderError> = Ok(());
        assert_eq!(upstream_outcome(&ok), ("ok", "2xx".to_owned()));
        let down: Result<(), ProviderError> = Err(ProviderError::Unavailable {
            provider: "okra".into(),
            status: Some(503),
            message: String::new(),
        });
        assert_eq!(upstream_outcome(&down), ("unavailable", "503".to_owned()));
        let timeout: Result<(), ProviderError> = Err(ProviderError::Unavailable {
            provider: "okra".into(),
            status: None,
            message: String::new(),
        });
        assert_eq!(
            upstream_outcome(&timeout),
            ("unavailable", "none".to_owned())
        );
    }
}
