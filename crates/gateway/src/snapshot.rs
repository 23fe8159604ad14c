//! Snapshots: a provider's data for one scope, fetched once, normalized, immutable, shared.
//!
//! A [`SnapshotKey`] names what was fetched: the provider instance, the scope, and only those
//! filters the provider applies natively for that scope (the others are applied by the gateway
//! on the snapshot, so their totals are exact and many queries share one snapshot). The cache is
//! moka's: single-flight per key (any number of identical concurrent misses cause one fetch of
//! each provider page), a TTL per provider, and weighers that bound memory in bytes.
//!
//! Memory budget (`cache.max_bytes`), shared out as [`crate::memory`] says: current snapshots,
//! retired snapshots (kept for cursors), stale snapshots (kept for stale-if-error), rendered
//! pages, the transaction index and kept partial fills each evict on their own within their
//! share; fills in flight reserve theirs before they read. A snapshot in several tiers is one
//! allocation (weighed in each: the count errs on the safe side).
//!
//! * A snapshot replaced or expired is *retired*, not dropped: cursors that point into it keep
//!   working for the cursor lifetime, so a page walk never sees a duplicate or a gap.
//! * An expired snapshot is also kept as *stale* for `stale_if_error_secs` after it was fetched:
//!   when the provider then fails, it is served (marked `x-cache: stale`) instead of an error.
//! * A scope whose provider reports more than `max_snapshot_items` transactions is not
//!   snapshotted: it pages straight through to the provider (see [`FetchError::TooLarge`]).

pub mod early;
pub mod shared_tier;

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::http::header::HeaderValue;
use actix_web::web::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use moka::Expiry;
use moka::notification::RemovalCause;
use moka::ops::compute::Op;
use provider::{
    DateRange, Direction, Listing, PageRequest, Provider, ProviderError, RecordWarning, Scope,
    Transaction, TransactionId, TransactionQuery,
};
use tokio::time::Instant;
use tracing::Instrument;

use crate::config::CacheSection;
use crate::error::ApiError;
use crate::registry::ProviderEntry;
use shared_tier::{Lookup, SharedTier};

/// What a snapshot holds: provider, scope and the natively applied filters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SnapshotKey {
    /// Provider instance.
    pub provider: Arc<str>,
    /// Whose transactions.
    pub scope: Scope,
    /// The date range the provider applied (unbounded when the gateway filters dates).
    pub range: DateRange,
    /// The direction the provider applied (`None` when the gateway filters it).
    pub direction: Option<Direction>,
}

impl SnapshotKey {
    /// The snapshot that can answer `query` from `entry`.
    pub fn for_query(entry: &ProviderEntry, query: &TransactionQuery) -> SnapshotKey {
        let caps = entry.provider.capabilities();
        let kind = query.scope.kind();
        SnapshotKey {
            provider: entry.name.clone(),
            scope: query.scope.clone(),
            range: if caps.filters_dates(kind) {
                query.range
            } else {
                DateRange::default()
            },
            direction: if caps.filters_direction(kind) {
                query.direction
            } else {
                None
            },
        }
    }

    /// The query sent to the provider for this key (only its native filters).
    pub fn fetch_query(&self) -> TransactionQuery {
        TransactionQuery::new(self.scope.clone())
            .with_range(self.range)
            .with_direction(self.direction)
    }

    /// Whether the gateway must still filter `query`'s results itself.
    pub fn needs_gateway_filter(&self, query: &TransactionQuery) -> bool {
        self.range != query.range || self.direction != query.direction
    }
}

/// An immutable, normalized copy of a provider's data for one key.
#[derive(Debug)]
pub struct Snapshot {
    /// Unique id (cursors name it).
    pub id: u64,
    /// What it holds.
    pub key: SnapshotKey,
    /// The transactions, newest booking date first, the provider's order within a day.
    pub items: Vec<Transaction>,
    /// What the provider's pages held that could not be read, in the provider's order.
    pub warnings: Vec<RecordWarning>,
    /// When it was fetched (monotonic, tokio's clock so tests can pause it).
    pub created: Instant,
    /// How long it is served as fresh.
    pub ttl: Duration,
    /// Estimated memory, for the cache's budget.
    pub bytes: u32,
    /// Read from the shared tier (another replica fetched it), not from the provider.
    pub shared: bool,
}

impl Snapshot {
    /// A snapshot read back from the shared tier (created `created`, fresh for `ttl`).
    pub fn restored(
        id: u64,
        key: SnapshotKey,
        items: Vec<Transaction>,
        warnings: Vec<RecordWarning>,
        created: Instant,
        ttl: Duration,
    ) -> Snapshot {
        let bytes = estimate_bytes(&items).saturating_add(estimate_warning_bytes(&warnings));
        Snapshot {
            id,
            key,
            items,
            warnings,
            created,
            ttl,
            bytes,
            shared: true,
        }
    }

    /// How old the data is.
    pub fn age(&self) -> Duration {
        self.created.elapsed()
    }

    /// How long it stays fresh (zero once expired).
    pub fn remaining_ttl(&self) -> Duration {
        self.ttl.saturating_sub(self.age())
    }

    /// Whether it is still within its TTL.
    pub fn is_fresh(&self) -> bool {
        self.age() < self.ttl
    }
}

/// Whether an answer came from memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Served from a cached snapshot.
    Hit,
    /// Fetched from the provider for this request, or for another request whose fetch this
    /// one joined and waited for.
    Miss,
    /// The provider failed; an expired snapshot within the stale-if-error grace was served.
    Stale,
}

impl CacheStatus {
    /// The `x-cache` header value.
    pub fn as_str(&self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Stale => "stale",
        }
    }
}

/// Why no snapshot could be had.
#[derive(Debug, Clone)]
pub enum FetchError {
    /// The provider failed.
    Provider(ProviderError),
    /// The scope is larger than `max_snapshot_items`, or than the memory a fill may reserve:
    /// page straight through to the provider.
    TooLarge {
        /// What the provider reported.
        total: u64,
    },
    /// The memory fills may reserve stayed taken by other fills: 503, retry after this.
    Busy(Duration),
}

impl FetchError {
    /// The answer for a failure other than `TooLarge` (which each caller handles its way).
    pub fn into_api(self) -> ApiError {
        match self {
            FetchError::Provider(e) => e.into(),
            FetchError::Busy(retry_after) => ApiError::CacheBusy { retry_after },
            FetchError::TooLarge { total } => ApiError::Internal(format!(
                "a {total}-transaction scope too large to snapshot was not paged through"
            )),
        }
    }
}

/// A page rendered to JSON once and served as is while its snapshot lives, with the header
/// values that never change while it lives (a hit copies no header text and formats nothing).
#[derive(Debug)]
pub struct Rendered {
    /// The response body.
    pub body: Bytes,
    /// Its strong entity tag (quoted), as the `ETag` header's value.
    pub etag: HeaderValue,
    /// How many transactions it holds (for the audit trail).
    pub items: u64,
    /// The listing's record warnings, as the `x-record-warnings` header's value (`None`: no
    /// such header, e.g. a single transaction).
    pub warnings: Option<HeaderValue>,
}

impl Rendered {
    /// Wraps a body with its entity tag.
    pub fn new(mut body: Vec<u8>) -> Rendered {
        // Kept for a while: no spare capacity (the serializer's last doubling) kept with it.
        body.shrink_to_fit();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        body.hash(&mut hasher);
        let etag = format!("\"{:016x}{:08x}\"", hasher.finish(), body.len());
        Rendered {
            // Hex digits and quotes: always a valid header value.
            etag: HeaderValue::from_maybe_shared(Bytes::from(etag))
                .unwrap_or_else(|_| HeaderValue::from_static("\"\"")),
            body: Bytes::from(body),
            items: 0,
            warnings: None,
        }
    }

    /// The same, holding `items` transactions.
    pub fn holding(mut self, items: usize) -> Rendered {
        self.items = items as u64;
        self
    }

    /// The same, for a listing with `count` record warnings.
    pub fn warning(mut self, count: usize) -> Rendered {
        self.warnings = Some(HeaderValue::from(count));
        self
    }

    /// Its heap bytes beyond the `Rendered` itself (for the cache's weigher).
    pub fn heap_bytes(&self) -> usize {
        // A value's bytes, and the shared count its first clone allocates.
        let header = |v: &HeaderValue| crate::memory::alloc(v.len()) + crate::memory::alloc(24);
        crate::memory::alloc(self.body.len())
            + header(&self.etag)
            + self.warnings.as_ref().map_or(0, header)
    }
}

/// The hasher of the tiers every hit reads (`current`, `renders`): foldhash, seeded per
/// process, a fraction of SipHash's cost on these short keys; moka spreads its shards by it.
type TierHasher = foldhash::fast::RandomState;

/// What identifies a rendered page.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RenderKey {
    /// The snapshot rendered.
    pub snapshot_id: u64,
    /// Caller + provider + scope + filters (cursors in the body are per caller).
    pub fingerprint: u64,
    /// Offset into the filtered view.
    pub offset: usize,
    /// Page size.
    pub limit: u32,
    /// Whether raw records are included.
    pub include_raw: bool,
}

/// A current snapshot stays in the tier for its TTL plus `keep` (the longer of the cursor
/// lifetime and the stale-if-error grace): whether it is fresh is decided on the read path
/// ([`Snapshot::is_fresh`]), so an expired snapshot is still at hand, explicitly, when it must
/// be moved to the retired and stale tiers — not whenever moka's maintenance gets to it.
struct PerSnapshotTtl {
    keep: Duration,
}

impl Expiry<SnapshotKey, Arc<Snapshot>> for PerSnapshotTtl {
    fn expire_after_create(
        &self,
        _: &SnapshotKey,
        value: &Arc<Snapshot>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.remaining_ttl().saturating_add(self.keep))
    }

    fn expire_after_update(
        &self,
        _: &SnapshotKey,
        value: &Arc<Snapshot>,
        _: std::time::Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.remaining_ttl().saturating_add(self.keep))
    }
}

/// Told of every snapshot fetched from a provider (see [`SnapshotCache::with_observer`]).
pub type SnapshotObserver = Arc<dyn Fn(&Arc<Snapshot>) + Send + Sync>;

/// How often the caches' pending bookkeeping is applied when no request does it.
const HOUSEKEEPING: Duration = Duration::from_millis(200);

/// Applies the caches' pending bookkeeping every [`HOUSEKEEPING`] for as long as `cache` lives.
/// moka evicts lazily, when enough operations are pending or a later operation finds time has
/// passed: without this, entries past a tier's share stay in memory (uncounted by the weights
/// in `/metrics`, which settle first) until the next requests, and a burst of fills followed by
/// quiet held tens of MiB above the budget (docs/performance.md section 5).
pub fn spawn_housekeeping(cache: &Arc<SnapshotCache>) {
    let cache = Arc::downgrade(cache);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(HOUSEKEEPING);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(cache) = cache.upgrade() else {
                return;
            };
            cache.run_pending_tasks().await;
        }
    });
}

/// Counts a fill under way until it is dropped (finished, failed or abandoned).
struct FillUnderWay<'a>(&'a tokio::sync::watch::Sender<usize>);

impl FillUnderWay<'_> {
    fn start(filling: &tokio::sync::watch::Sender<usize>) -> FillUnderWay<'_> {
        filling.send_modify(|n| *n += 1);
        FillUnderWay(filling)
    }
}

impl Drop for FillUnderWay<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// How often a cursor into another replica's fill in flight looks for its snapshot.
const FILL_POLL: Duration = Duration::from_millis(50);

/// What a fetch of a key resolves to: the snapshot moka holds for it, or the fill's error.
pub type FetchResult = Result<moka::Entry<SnapshotKey, Arc<Snapshot>>, Arc<FetchError>>;

/// A fill, or a wait on the one in flight, that can go on in a task of its own.
pub type FetchFuture = dyn std::future::Future<Output = FetchResult> + Send;

/// What [`SnapshotCache::first_records`] found.
pub enum Found {
    /// The whole snapshot, and how it was found.
    Whole((Arc<Snapshot>, CacheStatus)),
    /// The first records of a snapshot still filling (a miss).
    Early(Arc<early::Progress>),
}

/// The snapshot cache and its companions (retired, stale, rendered).
pub struct SnapshotCache {
    current: moka::future::Cache<SnapshotKey, Arc<Snapshot>, TierHasher>,
    retired: moka::sync::Cache<u64, Arc<Snapshot>>,
    stale: moka::sync::Cache<SnapshotKey, Arc<Snapshot>>,
    renders: moka::sync::Cache<RenderKey, Arc<Rendered>, TierHasher>,
    too_large: moka::sync::Cache<SnapshotKey, u64>,
    /// Transaction id (its hash) -> the key of the snapshot it was seen in; weighed, so it
    /// may have dropped ids of snapshots still cached (then `index_evicted` is set).
    index: Index,
    index_evicted: Arc<std::sync::atomic::AtomicBool>,
    fills: crate::memory::FillBudget,
    shared: Option<Arc<SharedTier>>,
    /// Told of every snapshot fetched from a provider (delta sync records versions).
    observer: Option<SnapshotObserver>,
    renders_made: AtomicU64,
    stale_grace: Duration,
    stale_wait: Duration,
    cursor_lifetime: Duration,
    max_items: u64,
    partials: Partials,
    /// The first records of fills in flight, by key ([`early`]).
    progress: moka::sync::Cache<SnapshotKey, Arc<early::Channel>>,
    /// How long a fill may go on after the request that started it was answered early.
    fill_timeout: Duration,
    /// Fills under way on this replica.
    filling: Arc<tokio::sync::watch::Sender<usize>>,
}

/// Pages already read for a snapshot whose fill did not finish (a later page failed, or the
/// caller left and the fill was dropped): kept for the next fill of the same key.
#[derive(Debug, Default)]
pub struct PartialFill {
    /// What the provider's first page said when these pages were read.
    total: Option<u64>,
    total_pages: u64,
    limit: u32,
    /// Page 1, kept so that resuming costs no call for it.
    first: Option<provider::Page<Transaction>>,
    /// Pages 2.. read so far, by number.
    pages: std::collections::BTreeMap<u32, provider::Page<Transaction>>,
    /// Their heap bytes.
    bytes: u64,
}

/// Unfinished fills by key (bounded; each kept for the snapshot TTL at most).
pub type Partials = moka::sync::Cache<SnapshotKey, Arc<std::sync::Mutex<PartialFill>>>;

/// Counts an entry of `tier` dropped for memory pressure.
fn evicted(tier: &'static str, cause: RemovalCause) {
    if cause == RemovalCause::Size {
        crate::metrics::cache_eviction(tier);
    }
}

/// What one cache entry costs besides its value: moka's entry, its key and its bookkeeping
/// (measured with the allocator's count: `tests/weigher.rs`).
pub const ENTRY_BYTES: u32 = 320;

/// What one entry of the transaction index costs (measured like [`ENTRY_BYTES`]).
pub const INDEX_ENTRY_BYTES: u32 = 288;

fn weigh(bytes: u32) -> u32 {
    bytes.saturating_add(ENTRY_BYTES)
}

/// The transaction index: a transaction id's hash -> the key of the snapshot it was seen in.
pub type Index = moka::sync::Cache<u64, Arc<SnapshotKey>>;

/// An index of `capacity` bytes ([`INDEX_ENTRY_BYTES`] an entry) whose entries live `ttl`;
/// `evicted` is set once it drops an entry for its capacity.
pub fn new_index(
    capacity: u64,
    ttl: Duration,
    evicted: Arc<std::sync::atomic::AtomicBool>,
) -> Index {
    moka::sync::Cache::builder()
        .max_capacity(capacity)
        .weigher(|_, _| INDEX_ENTRY_BYTES)
        .time_to_live(ttl)
        .eviction_listener(move |_, _, cause| {
            if cause == RemovalCause::Size {
                evicted.store(true, Ordering::Relaxed);
            }
        })
        .build()
}

/// The index's key for a transaction id (a hash: a collision only costs a lookup that
/// finds nothing and falls back to a scan; the snapshot is always checked).
pub fn index_key(id: &TransactionId) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut hasher);
    hasher.finish()
}

impl SnapshotCache {
    /// A cache with the configured lifetimes and memory budget.
    pub fn new(config: &CacheSection) -> SnapshotCache {
        let shares = crate::memory::Shares::of(config.max_bytes);
        let cursor_lifetime = Duration::from_secs(config.cursor_lifetime_secs);
        let stale_grace = Duration::from_secs(config.stale_if_error_secs);
        let retired: moka::sync::Cache<u64, Arc<Snapshot>> = moka::sync::Cache::builder()
            .max_capacity(shares.retired)
            .weigher(|_, s: &Arc<Snapshot>| weigh(s.bytes))
            .time_to_live(cursor_lifetime)
            .eviction_listener(|_, _, cause| evicted("retired", cause))
            .build();
        let stale: moka::sync::Cache<SnapshotKey, Arc<Snapshot>> = moka::sync::Cache::builder()
            .max_capacity(shares.stale)
            .weigher(|_, s: &Arc<Snapshot>| weigh(s.bytes))
            .time_to_live(stale_grace.max(Duration::from_secs(1)))
            .support_invalidation_closures()
            .eviction_listener(|_, _, cause| evicted("stale", cause))
            .build();
        let retire = retired.clone();
        let current = moka::future::Cache::builder()
            .max_capacity(shares.current)
            .weigher(|_, s: &Arc<Snapshot>| weigh(s.bytes))
            .expire_after(PerSnapshotTtl {
                keep: cursor_lifetime.max(stale_grace),
            })
            .support_invalidation_closures()
            .eviction_listener(move |_: Arc<SnapshotKey>, snapshot: Arc<Snapshot>, cause| {
                // The read path and `invalidate_local` retire a snapshot themselves before
                // it leaves (this listener runs at moka's next maintenance, too late for a
                // cursor read right after); this only catches what they did not see.
                // Expired here means past TTL + keep: nothing to keep it for. Memory
                // pressure drops it.
                if matches!(cause, RemovalCause::Replaced | RemovalCause::Explicit)
                    && retire.get(&snapshot.id).is_none()
                {
                    retire.insert(snapshot.id, snapshot);
                }
                evicted("current", cause);
            })
            .build_with_hasher(TierHasher::default());
        let renders = moka::sync::Cache::builder()
            .max_capacity(shares.rendered)
            .weigher(|_, r: &Arc<Rendered>| {
                let heap = r.heap_bytes() + crate::memory::arc(std::mem::size_of::<Rendered>());
                weigh(u32::try_from(heap).unwrap_or(u32::MAX))
            })
            .time_to_live(cursor_lifetime.max(Duration::from_secs(config.ttl_secs)))
            .eviction_listener(|_, _, cause| evicted("rendered", cause))
            .build_with_hasher(TierHasher::default());
        let too_large = moka::sync::Cache::builder()
            .max_capacity(10_000)
            .time_to_live(Duration::from_secs(config.ttl_secs))
            .build();
        let index_evicted = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let index = new_index(
            shares.index,
            Duration::from_secs(config.ttl_secs) + cursor_lifetime,
            index_evicted.clone(),
        );
        SnapshotCache {
            current,
            retired,
            stale,
            renders,
            too_large,
            index,
            index_evicted,
            fills: crate::memory::FillBudget::new(shares.fills),
            shared: None,
            observer: None,
            renders_made: AtomicU64::new(0),
            stale_grace,
            stale_wait: Duration::from_millis(config.stale_wait_ms),
            cursor_lifetime,
            max_items: config.max_snapshot_items,
            partials: moka::sync::Cache::builder()
                .max_capacity(shares.partials)
                .weigher(|_, fill: &Arc<std::sync::Mutex<PartialFill>>| {
                    let bytes = fill.lock().unwrap_or_else(|e| e.into_inner()).bytes;
                    weigh(u32::try_from(bytes).unwrap_or(u32::MAX))
                })
                .time_to_live(Duration::from_secs(config.ttl_secs))
                .build(),
            progress: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_idle(Duration::from_secs(300))
                .build(),
            fill_timeout: Duration::from_secs(30),
            filling: Arc::new(tokio::sync::watch::channel(0).0),
        }
    }

    /// Waits until no fill is under way on this replica (a first page answered early leaves
    /// its fill going on: tests and benchmarks that count provider calls wait for it).
    pub async fn settled(&self) {
        let mut filling = self.filling.subscribe();
        let _ = filling.wait_for(|n| *n == 0).await;
    }

    /// How long a fill may go on after the request that started it was answered early
    /// (the server's request timeout, as for any fill; default 30 s).
    pub fn with_fill_timeout(mut self, timeout: Duration) -> SnapshotCache {
        self.fill_timeout = timeout;
        self
    }

    /// The channel on which the fill of `key` publishes its first records.
    fn channel(&self, key: &SnapshotKey) -> Arc<early::Channel> {
        self.progress
            .get_with_by_ref(key, || Arc::new(tokio::sync::watch::channel(None).0))
    }

    /// Puts the shared tier (Redis) behind this replica's cache.
    pub fn with_shared(mut self, tier: SharedTier) -> SnapshotCache {
        self.shared = Some(Arc::new(tier));
        self
    }

    /// Calls `observer` with every snapshot fetched from a provider, after it is built.
    pub fn with_observer(mut self, observer: SnapshotObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The shared tier, when configured.
    pub fn shared(&self) -> Option<&Arc<SharedTier>> {
        self.shared.as_ref()
    }

    /// The snapshot answering `query`: cached, fetched on a miss (one fetch per key at a time),
    /// or — when the provider fails — an expired one within the stale-if-error grace.
    pub async fn get_or_fetch(
        self: &Arc<Self>,
        entry: &ProviderEntry,
        query: &TransactionQuery,
    ) -> Result<(Arc<Snapshot>, CacheStatus), FetchError> {
        let key = SnapshotKey::for_query(entry, query);
        let started = Instant::now();
        if let Some(ready) = self.ready(&key).await {
            return ready;
        }
        // A miss logs: from here on in the request's span (a hit never makes it).
        async move {
            let fetch = self.start_fetch(entry, &key);
            let result = if self.stale_for(&key).is_some() {
                // A stale answer is at hand: one attempt, bounded by `stale_wait`, then serve
                // it (the fetch's joiners share the key, so they have the same fallback).
                let bound = Instant::now() + self.stale_wait;
                let deadline = crate::outbound::current_deadline().map_or(bound, |d| d.min(bound));
                crate::outbound::with_deadline(deadline, crate::outbound::without_retries(fetch))
                    .await
            } else {
                fetch.await
            };
            self.fetched(entry, key, started, result)
        }
        .instrument(crate::telemetry::request_span())
        .await
    }

    /// Like [`get_or_fetch`](Self::get_or_fetch), for a listing that needs the first `needed`
    /// records of the snapshot as they are (no gateway-side filter): on a miss, when the
    /// provider's pages come in the listing's order, the answer is the fill's first records as
    /// soon as they have arrived ([`early`]), and the fill goes on behind it.
    pub async fn first_records(
        self: &Arc<Self>,
        entry: &ProviderEntry,
        query: &TransactionQuery,
        needed: usize,
    ) -> Result<Found, FetchError> {
        let key = SnapshotKey::for_query(entry, query);
        let caps = entry.provider.capabilities();
        if !entry.early_first_page
            || !caps.newest_first
            || caps.bulk_read
            || needed > early::EARLY_ITEMS
            || key.needs_gateway_filter(query)
        {
            return Ok(Found::Whole(self.get_or_fetch(entry, query).await?));
        }
        let started = Instant::now();
        if let Some(ready) = self.ready(&key).await {
            return ready.map(Found::Whole);
        }
        // A miss logs: from here on in the request's span (a hit never makes it).
        self.first_records_missed(entry, query, needed, key, started)
            .instrument(crate::telemetry::request_span())
            .await
    }

    /// [`first_records`](Self::first_records) after a miss.
    async fn first_records_missed(
        self: &Arc<Self>,
        entry: &ProviderEntry,
        query: &TransactionQuery,
        needed: usize,
        key: SnapshotKey,
        started: Instant,
    ) -> Result<Found, FetchError> {
        if self.stale_for(&key).is_some() {
            // The stale copy's bounded wait applies (see `get_or_fetch`).
            return Ok(Found::Whole(self.get_or_fetch(entry, query).await?));
        }
        let mut progress = self.channel(&key).subscribe();
        let mut fetch = self.start_fetch(entry, &key);
        let covered = tokio::select! {
            biased;
            result = &mut fetch => return self.fetched(entry, key, started, result).map(Found::Whole),
            covered = progress.wait_for(|p| {
                // Records the gateway would filter out (a provider's loose native filter) make
                // the early offsets disagree with the snapshot's: not answered early.
                p.as_ref().is_some_and(|p| {
                    p.covers(needed) && p.items.iter().all(|t| query.matches(t))
                })
            }) => {
                covered.ok().and_then(|p| p.clone())
            }
        };
        let Some(covered) = covered else {
            // The channel closed without covering the page: wait for the whole snapshot.
            return self
                .fetched(entry, key, started, fetch.await)
                .map(Found::Whole);
        };
        covered.mark_served();
        // The fill (or this request's wait on it) goes on without the request, on behalf of the
        // same client, under a deadline of its own, logging under the request's id.
        let deadline = Instant::now() + self.fill_timeout;
        tokio::spawn(
            crate::outbound::with_deadline(
                deadline,
                crate::outbound::keeping_client(async move {
                    let _ = fetch.await;
                }),
            )
            .instrument(tracing::Span::current()),
        );
        crate::metrics::cache_lookup(&key.provider, "early");
        Ok(Found::Early(covered))
    }

    /// A fresh snapshot (a hit, or a covering one), or what is known about `key` without
    /// fetching (`TooLarge`); `None` when it must be fetched. An expired snapshot is retired and
    /// kept as stale on the way.
    async fn ready(
        &self,
        key: &SnapshotKey,
    ) -> Option<Result<(Arc<Snapshot>, CacheStatus), FetchError>> {
        // The hot path: a current snapshot, without building the fetch.
        if let Some(snapshot) = self.current.get(key).await {
            if snapshot.is_fresh() {
                crate::metrics::cache_lookup(&key.provider, "hit");
                return Some(Ok((snapshot, CacheStatus::Hit)));
            }
            // Expired: retire it (cursors) and keep it as stale (stale-if-error) now, then make
            // room for the fetch that replaces it.
            self.keep_expired(key, &snapshot);
            self.remove_if_same(key, snapshot.id).await;
        }
        if let Some(covering) = self.covering(key) {
            crate::metrics::cache_lookup(&key.provider, "covering");
            return Some(Ok((covering, CacheStatus::Hit)));
        }
        if let Some(total) = self.too_large.get(key) {
            crate::metrics::cache_lookup(&key.provider, "too_large");
            return Some(Err(FetchError::TooLarge { total }));
        }
        None
    }

    /// The fill of `key`, or a wait on the one in flight (single flight per key), as a future
    /// that owns what it needs (so it can go on in a task of its own).
    fn start_fetch(
        self: &Arc<Self>,
        entry: &ProviderEntry,
        key: &SnapshotKey,
    ) -> std::pin::Pin<Box<FetchFuture>> {
        let (this, entry, key) = (self.clone(), entry.clone(), key.clone());
        // Boxed: the fill's future is large (page walk, lane, metrics), and actix's worker
        // threads have small stacks.
        Box::pin(async move {
            let init = Box::pin(this.fetch_through(&entry, key.clone()));
            let found = this.current.entry(key).or_try_insert_with(init).await;
            if found.as_ref().is_ok_and(|f| f.is_fresh()) {
                // A new snapshot may put its tier past its share: evict now, not at the next
                // housekeeping tick (a burst of fills would hold that much more meanwhile).
                this.run_pending_tasks().await;
            }
            found
        })
    }

    /// The answer from a fetch's result: the snapshot and whether it counts as a hit or a miss,
    /// or — the provider failing — a stale snapshot, or the error.
    fn fetched(
        &self,
        entry: &ProviderEntry,
        key: SnapshotKey,
        started: Instant,
        result: FetchResult,
    ) -> Result<(Arc<Snapshot>, CacheStatus), FetchError> {
        match result {
            Ok(found) => {
                // Fetched from the provider for this request, or by a fetch this request joined
                // and waited for (made after it started): a miss. Another replica's snapshot
                // from the shared tier is a hit, like a local one.
                let snapshot = found.value();
                crate::metrics::cache_lookup(
                    &key.provider,
                    match (found.is_fresh(), snapshot.shared) {
                        (true, false) => "miss",
                        (true, true) => "shared_hit",
                        (false, _) => "joined",
                    },
                );
                let status = if (found.is_fresh() && !snapshot.shared)
                    || (!found.is_fresh() && snapshot.created >= started)
                {
                    CacheStatus::Miss
                } else {
                    CacheStatus::Hit
                };
                Ok((found.into_value(), status))
            }
            Err(shared) => {
                let err = FetchError::clone(&shared);
                match &err {
                    FetchError::TooLarge { total } => {
                        self.too_large.insert(key, *total);
                    }
                    FetchError::Provider(e) if e.fault() == provider::Fault::Upstream => {
                        if let Some(stale) = self.stale_for(&key) {
                            tracing::warn!(provider = %key.provider, error = %e, age_s = stale.age().as_secs(), "serving stale snapshot");
                            crate::metrics::cache_lookup(&key.provider, "stale");
                            return Ok((stale, CacheStatus::Stale));
                        }
                    }
                    // No memory to read it again now: the stale copy is the better answer.
                    FetchError::Busy(_) => {
                        if let Some(stale) = self.stale_for(&key) {
                            crate::metrics::cache_lookup(&key.provider, "stale");
                            return Ok((stale, CacheStatus::Stale));
                        }
                    }
                    FetchError::Provider(_) => {}
                }
                let result = match err {
                    FetchError::TooLarge { .. } => "too_large",
                    FetchError::Busy(_) => "busy",
                    FetchError::Provider(_) => "error",
                };
                crate::metrics::cache_lookup(&entry.name, result);
                Err(err)
            }
        }
    }

    /// A local miss: another replica's snapshot from the shared tier, or a fetch this replica
    /// makes for all of them (at most one replica fetches a key at a time), or — Redis away —
    /// a fetch of its own.
    async fn fetch_through(
        &self,
        entry: &ProviderEntry,
        key: SnapshotKey,
    ) -> Result<Arc<Snapshot>, FetchError> {
        let Some(shared) = &self.shared else {
            return self.fetch(entry, key).await;
        };
        let budget = crate::outbound::current_deadline()
            .map(|deadline| deadline.saturating_duration_since(tokio::time::Instant::now()))
            .unwrap_or(Duration::from_secs(30))
            .max(Duration::from_millis(100));
        match shared.lookup(&key, budget, budget).await {
            Ok(Lookup::Found(snapshot)) => {
                self.index_items(&snapshot);
                Ok(Arc::new(snapshot))
            }
            Ok(Lookup::Fetch(lease)) => match self.fetch(entry, key).await {
                Ok(snapshot) => {
                    shared.store(&snapshot, lease).await;
                    Ok(snapshot)
                }
                Err(e) => {
                    shared.abandon(lease).await;
                    Err(e)
                }
            },
            Err(_) => self.fetch(entry, key).await,
        }
    }

    async fn fetch(
        &self,
        entry: &ProviderEntry,
        key: SnapshotKey,
    ) -> Result<Arc<Snapshot>, FetchError> {
        let started = Instant::now();
        let _filling = FillUnderWay::start(&self.filling);
        // Unique across replicas: cursors name it, and the shared tier stores it by id.
        let id = rand::random::<u64>().max(1);
        let caps = entry.provider.capabilities();
        let publisher = (entry.early_first_page && caps.newest_first && !caps.bulk_read)
            .then(|| early::Publisher::new(id, self.channel(&key)));
        let fill = Fill {
            max_items: self.max_items,
            partials: Some(&self.partials),
            budget: Some(&self.fills),
            publisher: publisher.as_ref(),
        };
        let (fetched, pages) = crate::telemetry::counting_upstream_calls(
            crate::outbound::as_one_fill(Box::pin(fetch_all(entry, &key, fill))),
        )
        .await;
        crate::metrics::snapshot_fetch(
            &entry.name,
            match &fetched {
                Ok(_) => "ok",
                Err(FetchError::TooLarge { .. }) => "too_large",
                Err(FetchError::Busy(_)) => "busy",
                Err(_) => "error",
            },
            started.elapsed(),
            pages,
        );
        // The reservation is held until the snapshot is built (then the current tier weighs it).
        let Filled {
            listing: fetched,
            reservation: _reservation,
        } = fetched?;
        let warnings = fetched.warnings;
        for warning in &warnings {
            crate::metrics::record_warning(&entry.name, warning.code.as_str());
        }
        let items = normalize(fetched.items);
        let bytes = estimate_bytes(&items).saturating_add(estimate_warning_bytes(&warnings));
        // Early pages promised `id`: kept when the snapshot starts with what they showed.
        let id = match &publisher {
            Some(publisher) if !publisher.agrees_with(&items) => {
                if publisher.served() {
                    tracing::warn!(
                        provider = %key.provider,
                        scope = ?key.scope,
                        "the provider's first pages changed while the snapshot filled: cursors \
                         from the first page answered early restart the walk (410)"
                    );
                }
                rand::random::<u64>().max(1)
            }
            _ => id,
        };
        let snapshot = Arc::new(Snapshot {
            id,
            key,
            items,
            warnings,
            created: Instant::now(),
            ttl: entry.cache_ttl,
            bytes,
            shared: false,
        });
        self.index_items(&snapshot);
        if publisher
            .as_ref()
            .is_some_and(|p| p.served() && p.id() == id)
        {
            // A cursor from an early page may come before moka holds the snapshot as current.
            self.retired.insert(id, snapshot.clone());
        }
        drop(publisher);
        tracing::info!(
            provider = %snapshot.key.provider,
            scope = ?snapshot.key.scope,
            items = snapshot.items.len(),
            warnings = snapshot.warnings.len(),
            bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "snapshot fetched"
        );
        if let Some(observer) = &self.observer {
            observer(&snapshot);
        }
        Ok(snapshot)
    }

    /// Whether a snapshot answering `query` is held now (fresh or not), without fetching.
    pub fn holds(&self, entry: &ProviderEntry, query: &TransactionQuery) -> bool {
        self.current
            .contains_key(&SnapshotKey::for_query(entry, query))
    }

    /// The snapshot a cursor names: the current one for `key` if it is that one, else a retired
    /// one still within the cursor lifetime.
    ///
    /// A cursor from a first page answered early ([`early`]) may come while its snapshot is
    /// still filling: it waits for the fill, here or (through the shared tier) on the replica
    /// that answered it.
    pub async fn by_id(&self, key: &SnapshotKey, id: u64) -> Option<Arc<Snapshot>> {
        if let Some(channel) = self.progress.get(key) {
            let mut progress = channel.subscribe();
            // Until the fill that promised `id` is over (it keeps its snapshot as retired
            // before it says so).
            let _ = progress
                .wait_for(|p| p.as_ref().is_none_or(|p| p.id != id))
                .await;
        }
        match self.current.get(key).await {
            // Current, or expired but not replaced yet (and within the cursor lifetime).
            Some(snapshot)
                if snapshot.id == id
                    && snapshot.age() <= snapshot.ttl.saturating_add(self.cursor_lifetime) =>
            {
                return Some(snapshot);
            }
            _ => {}
        }
        if let Some(snapshot) = self.retired.get(&id) {
            return Some(snapshot);
        }
        // Issued by another replica (or before a restart): the shared tier keeps it; while
        // a replica fills the key, its snapshot may be the one an early page promised.
        let shared = self.shared.as_ref()?;
        let snapshot = loop {
            if let Some(snapshot) = shared.by_id(key, id).await {
                break snapshot;
            }
            if !shared.filling(key).await {
                break shared.by_id(key, id).await?;
            }
            tokio::time::sleep(FILL_POLL).await;
        };
        let snapshot = Arc::new(snapshot);
        self.retired.insert(id, snapshot.clone());
        Some(snapshot)
    }

    /// Indexes a snapshot's transactions by id (one key shared by all of them).
    fn index_items(&self, snapshot: &Snapshot) {
        let key = Arc::new(snapshot.key.clone());
        for tx in &snapshot.items {
            self.index.insert(index_key(&tx.id), key.clone());
        }
    }

    /// A transaction seen in a snapshot that is still cached. When the index had to drop ids
    /// for its memory share, an id it does not know is looked for in the current snapshots.
    pub async fn find(&self, id: &TransactionId) -> Option<(Transaction, Arc<Snapshot>)> {
        let in_snapshot = |snapshot: Arc<Snapshot>| {
            let tx = snapshot.items.iter().find(|t| &t.id == id)?.clone();
            Some((tx, snapshot))
        };
        if let Some(key) = self.index.get(&index_key(id)) {
            let found = self.current.get(&*key).await.filter(|s| s.is_fresh());
            if let Some(found) = found.and_then(in_snapshot) {
                return Some(found);
            }
        }
        if !self.index_evicted.load(Ordering::Relaxed) {
            return None;
        }
        self.current
            .iter()
            .filter(|(key, snapshot)| *key.provider == *id.provider() && snapshot.is_fresh())
            .find_map(|(_, snapshot)| in_snapshot(snapshot))
    }

    /// A page rendered earlier.
    pub fn rendered(&self, key: &RenderKey) -> Option<Arc<Rendered>> {
        self.renders.get(key)
    }

    /// Keeps a rendered page.
    pub fn keep_rendered(&self, key: RenderKey, rendered: Arc<Rendered>) {
        self.renders_made.fetch_add(1, Ordering::Relaxed);
        self.renders.insert(key, rendered);
    }

    /// How many pages were rendered (serialized) and kept so far.
    pub fn renders_made(&self) -> u64 {
        self.renders_made.load(Ordering::Relaxed)
    }

    /// Drops every current snapshot of `provider` that covers `account_id` (after a refresh).
    /// Cursors into them keep working (they are retired, not dropped).
    pub fn invalidate_account(&self, provider: &str, account_id: &str) -> Result<(), ApiError> {
        if let Some(shared) = &self.shared {
            let (shared, p, a) = (shared.clone(), provider.to_owned(), account_id.to_owned());
            tokio::spawn(async move { shared.invalidate_account(&p, &a).await });
        }
        self.invalidate_local(provider, account_id)
    }

    /// Drops this replica's current snapshots of an account (another replica refreshed it).
    pub fn invalidate_local(&self, provider: &str, account_id: &str) -> Result<(), ApiError> {
        let provider = provider.to_owned();
        let account = Scope::Account(account_id.to_owned());
        // Retired now, before they leave: moka applies the invalidation at once for reads but
        // calls the eviction listener only at its next maintenance, and a cursor read in between
        // must still find its snapshot.
        for (key, snapshot) in self.current.iter() {
            if *key.provider == *provider && key.scope == account {
                self.retired.insert(snapshot.id, snapshot);
            }
        }
        self.stale
            .invalidate_entries_if({
                let (provider, account) = (provider.clone(), account.clone());
                move |key, _| *key.provider == *provider && key.scope == account
            })
            .map_err(|e| ApiError::Internal(format!("cache invalidation: {e}")))?;
        self.current
            .invalidate_entries_if(move |key, _| *key.provider == *provider && key.scope == account)
            .map(|_| ())
            .map_err(|e| ApiError::Internal(format!("cache invalidation: {e}")))
    }

    /// An expired snapshot leaving the current tier: reachable by id for the cursor lifetime,
    /// and as the key's stale answer within the stale-if-error grace.
    fn keep_expired(&self, key: &SnapshotKey, snapshot: &Arc<Snapshot>) {
        self.retired.insert(snapshot.id, snapshot.clone());
        if snapshot.age() <= self.stale_grace {
            self.stale.insert(key.clone(), snapshot.clone());
        }
    }

    /// A fresh snapshot of the same provider, scope and direction whose date range holds all
    /// of `key`'s (the gateway then filters it to the query's range exactly), when `key` has a
    /// range the provider applied natively. It is also kept in the retired tier by id, so the
    /// cursors of the page served from it find it (their query's own key names another).
    ///
    /// Looks through the current tier's entries: a cost per miss of a date-bounded key only.
    fn covering(&self, key: &SnapshotKey) -> Option<Arc<Snapshot>> {
        if key.range.is_unbounded() {
            return None;
        }
        let covers = |outer: &DateRange| {
            outer
                .from
                .is_none_or(|f| key.range.from.is_some_and(|k| f <= k))
                && outer
                    .to
                    .is_none_or(|t| key.range.to.is_some_and(|k| k <= t))
        };
        let found = self
            .current
            .iter()
            .filter(|(other, snapshot)| {
                other.provider == key.provider
                    && other.scope == key.scope
                    && other.direction == key.direction
                    && covers(&other.range)
                    && snapshot.is_fresh()
            })
            .map(|(_, snapshot)| snapshot)
            // The freshest.
            .max_by_key(|snapshot| snapshot.created)?;
        if !self.retired.contains_key(&found.id) {
            self.retired.insert(found.id, found.clone());
        }
        Some(found)
    }

    /// The expired snapshot of `key` that may still be served when the provider fails.
    fn stale_for(&self, key: &SnapshotKey) -> Option<Arc<Snapshot>> {
        self.stale.get(key).filter(|s| s.age() <= self.stale_grace)
    }

    /// Removes the current snapshot of `key` if it is still snapshot `id` (a concurrent reader
    /// may have replaced it already).
    async fn remove_if_same(&self, key: &SnapshotKey, id: u64) {
        let _ = self
            .current
            .entry_by_ref(key)
            .and_compute_with(|found| {
                std::future::ready(match found {
                    Some(entry) if entry.value().id == id => Op::Remove,
                    _ => Op::Nop,
                })
            })
            .await;
    }

    /// Settles pending cache maintenance (evictions, listeners); for tests and measurements.
    pub async fn run_pending_tasks(&self) {
        self.current.run_pending_tasks().await;
        self.retired.run_pending_tasks();
        self.stale.run_pending_tasks();
        self.renders.run_pending_tasks();
        self.index.run_pending_tasks();
        self.partials.run_pending_tasks();
    }

    /// Every share's weight in bytes, by name (see [`crate::memory`]): current, retired,
    /// stale, rendered, index, partials (kept pages of unfinished fills), fills (reserved by
    /// fills in flight).
    pub fn weighted_sizes(&self) -> [(&'static str, u64); 7] {
        [
            ("current", self.current.weighted_size()),
            ("retired", self.retired.weighted_size()),
            ("stale", self.stale.weighted_size()),
            ("rendered", self.renders.weighted_size()),
            ("index", self.index.weighted_size()),
            ("partials", self.partials.weighted_size()),
            ("fills", self.fills.reserved()),
        ]
    }
}

/// How a fill reads ([`fetch_all`]).
#[derive(Clone, Copy, Default)]
pub struct Fill<'a> {
    /// A scope reported larger than this is not snapshotted ([`FetchError::TooLarge`]).
    pub max_items: u64,
    /// Where pages of unfinished fills are kept, to be resumed.
    pub partials: Option<&'a Partials>,
    /// The fills' memory share, reserved before reading.
    pub budget: Option<&'a crate::memory::FillBudget>,
    /// Who publishes the first records while the fill goes on.
    pub publisher: Option<&'a early::Publisher>,
}

/// A fill's pages, and the memory reserved for them until the snapshot is built.
pub struct Filled {
    /// Every record and warning read.
    pub listing: Listing,
    /// The fill's reservation ([`crate::memory`]), when it had a budget.
    pub reservation: Option<crate::memory::Reservation>,
}

fn refused(refusal: crate::memory::Refused, total: u64) -> FetchError {
    match refusal {
        crate::memory::Refused::TooLarge => FetchError::TooLarge { total },
        crate::memory::Refused::Busy(retry_after) => FetchError::Busy(retry_after),
    }
}

/// What a whole snapshot of `total` records is expected to take while it is read and once
/// built, from the first page's records (`sample`): the records, and `concurrency` pages in
/// flight at twice their records' size (response body and vendor structs).
fn expected_bytes(sample: &[Transaction], total: u64, limit: u32, concurrency: usize) -> u64 {
    let per_record = u64::from(estimate_bytes(sample))
        .div_ceil(sample.len().max(1) as u64)
        .max(std::mem::size_of::<Transaction>() as u64);
    let in_flight = concurrency.max(1) as u64 * u64::from(limit) * 2;
    // A tenth more: later pages' records may be larger than the first page's.
    (per_record * (total + in_flight)).saturating_mul(11) / 10
}

/// Keeps the pages of a fill that did not finish (failed, or dropped because its caller left)
/// in the partial fills' share, weighed as they are now.
struct KeepPartial<'a> {
    partials: &'a Partials,
    key: &'a SnapshotKey,
    fill: Arc<std::sync::Mutex<PartialFill>>,
    finished: bool,
}

impl Drop for KeepPartial<'_> {
    fn drop(&mut self) {
        if !self.finished {
            // Re-inserted: moka weighs it again (it was empty when the fill started).
            self.partials.insert(self.key.clone(), self.fill.clone());
        }
    }
}

/// Reads every transaction of `key` from the provider: one bulk call when the provider has one,
/// else the first page and then the remaining pages `fetch_concurrency` at a time, each of the
/// provider instance's configured page size. Every page's record warnings come along.
///
/// With `budget`, memory is reserved before reading ([`crate::memory`]): the first page's
/// allowance, then the whole snapshot's expected size from the provider's total. A snapshot
/// that could never fit is `TooLarge` (paged through); one that finds the budget taken waits,
/// then is `Busy`.
///
/// With `partials`, no page read is thrown away: every page (the first included) is kept there
/// as it arrives, so a fill that fails (or is dropped because its caller left) is resumed by
/// the next fill of the key, which reads only the pages still missing. When one of those
/// reports other totals than the kept first page, the data shifted between the reads: the
/// kept pages are dropped and every page is read again.
///
/// With `publisher`, the pages are also handed to it as they arrive ([`early`]).
pub async fn fetch_all(
    entry: &ProviderEntry,
    key: &SnapshotKey,
    fill: Fill<'_>,
) -> Result<Filled, FetchError> {
    let Fill {
        max_items,
        partials,
        budget,
        publisher,
    } = fill;
    let provider: &dyn Provider = entry.provider.as_ref();
    let concurrency = entry.fetch_concurrency;
    let caps = provider.capabilities();
    let query = key.fetch_query();
    let limit = entry.page_size.clamp(1, caps.max_page_size.max(1));
    let until = crate::memory::wait_until();
    let probe = match budget {
        Some(budget) => Some(
            budget
                .probe(limit, until)
                .await
                .map_err(|r| refused(r, 0))?,
        ),
        None => None,
    };
    if caps.bulk_read {
        let listing = provider
            .list_all(&query)
            .await
            .map_err(FetchError::Provider)?;
        let total = listing.items.len() as u64;
        let reservation = match budget {
            Some(budget) => Some(
                budget
                    .fill(u64::from(estimate_bytes(&listing.items)), until)
                    .await
                    .map_err(|r| refused(r, total))?,
            ),
            None => None,
        };
        return Ok(Filled {
            listing,
            reservation,
        });
    }
    // A fill resumed from kept pages starts from its kept page 1 (no call); whether the data
    // shifted meanwhile is seen in the totals of the pages it still reads.
    let kept_first = partials
        .and_then(|partials| partials.get(key))
        .and_then(|fill| fill.lock().unwrap_or_else(|e| e.into_inner()).first.clone());
    let resumed = kept_first.is_some();
    let first = match kept_first {
        Some(first) => first,
        None => provider
            .list_page(&query.with_page(PageRequest::new(1, limit)))
            .await
            .map_err(FetchError::Provider)?,
    };
    if let Some(total) = first.total.filter(|&t| t > max_items) {
        return Err(FetchError::TooLarge { total });
    }
    let reservation = match budget {
        Some(budget) => {
            let total = first.total.unwrap_or(first.items.len() as u64);
            let expected = expected_bytes(&first.items, total, first.limit.max(1), concurrency);
            Some(
                budget
                    .fill(expected, until)
                    .await
                    .map_err(|r| refused(r, total))?,
            )
        }
        None => None,
    };
    // The whole snapshot's reservation covers the first page from here on.
    drop(probe);
    // Only a fill with pages still to read has anything to answer early.
    if let Some(publisher) = publisher.filter(|_| first.next_page.is_some_and(|n| n > 1)) {
        publisher.page(1, &first);
    }
    let page_size = u64::from(first.limit.max(1));
    let total_pages = first
        .total_pages
        .map(u64::from)
        .or_else(|| first.total.map(|t| t.div_ceil(page_size)))
        .unwrap_or(1);
    let limit = first.limit.max(1);
    let mut items =
        Vec::with_capacity(usize::try_from(first.total.unwrap_or(0).min(max_items)).unwrap_or(0));
    let first_total = first.total;
    let first_next = first.next_page;
    // Kept for a resumption (only when there are pages to keep with it).
    let first_copy = (partials.is_some() && total_pages > 1).then(|| first.clone());
    items.extend(first.items);
    let mut all = Listing {
        items,
        warnings: first.warnings,
    };
    let done = |listing: Listing, reservation: Option<crate::memory::Reservation>| {
        Ok(Filled {
            listing,
            reservation,
        })
    };
    let Some(second) = first_next.filter(|&n| n > 1) else {
        return done(all, reservation);
    };
    if total_pages <= 1 {
        // The provider gives no totals: follow `next_page` one page at a time.
        let rest = provider::walk_pages(provider, &query, limit, second)
            .await
            .map_err(FetchError::Provider)?;
        all.items.extend(rest.items);
        all.warnings.extend(rest.warnings);
        return done(all, reservation);
    }
    let last = u32::try_from(total_pages).unwrap_or(u32::MAX);
    let mut fill = partials.map(|partials| {
        let kept = partials.get(key).filter(|fill| {
            let fill = fill.lock().unwrap_or_else(|e| e.into_inner());
            fill.total == first_total && fill.total_pages == total_pages && fill.limit == limit
        });
        let fill = kept.unwrap_or_else(|| {
            let bytes = first_copy
                .as_ref()
                .map_or(0, |page| u64::from(estimate_bytes(&page.items)));
            let fresh = Arc::new(std::sync::Mutex::new(PartialFill {
                total: first_total,
                total_pages,
                limit,
                first: first_copy,
                pages: Default::default(),
                bytes,
            }));
            partials.insert(key.clone(), fresh.clone());
            fresh
        });
        KeepPartial {
            partials,
            key,
            fill,
            finished: false,
        }
    });
    let have = |page: &u32| {
        fill.as_ref().is_some_and(|keep| {
            keep.fill
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pages
                .contains_key(page)
        })
    };
    let missing: Vec<u32> = (2..=last).filter(|page| !have(page)).collect();
    if let (Some(publisher), Some(keep)) = (publisher, fill.as_ref()) {
        // A resumed fill's kept pages count for its first records too.
        let kept = keep.fill.lock().unwrap_or_else(|e| e.into_inner());
        for (&number, page) in &kept.pages {
            publisher.page(number, page);
        }
    }
    let shifted = std::sync::atomic::AtomicBool::new(false);
    let fetched: Vec<_> = futures_util::stream::iter(missing)
        .map(|page| {
            let q = query.with_page(PageRequest::new(page, limit));
            let fill = fill.as_ref().map(|keep| keep.fill.clone());
            let shifted = &shifted;
            async move {
                let got = provider.list_page(&q).await?;
                if got.total.is_some() && got.total != first_total {
                    shifted.store(true, Ordering::Relaxed);
                }
                if let Some(publisher) = publisher {
                    publisher.page(page, &got);
                }
                match fill {
                    // Kept at once: a later failure or a dropped fill does not lose it.
                    Some(fill) => {
                        let bytes = u64::from(estimate_bytes(&got.items));
                        let mut fill = fill.lock().unwrap_or_else(|e| e.into_inner());
                        fill.bytes += bytes;
                        fill.pages.insert(page, got);
                        Ok(None)
                    }
                    None => Ok(Some(got)),
                }
            }
        })
        .buffered(concurrency.max(1))
        .try_collect()
        .await
        .map_err(FetchError::Provider)?;
    if resumed && shifted.load(Ordering::Relaxed) {
        // The data shifted since the kept pages were read: they are dropped, and every page is
        // read again (one fill, under this fill's reservation).
        if let (Some(keep), Some(partials)) = (fill.as_mut(), partials) {
            keep.finished = true;
            partials.invalidate(key);
        }
        let again = Box::pin(fetch_all(
            entry,
            key,
            Fill {
                max_items,
                ..Fill::default()
            },
        ))
        .await?;
        return done(again.listing, reservation);
    }
    let pages: Vec<provider::Page<Transaction>> = match (fill, partials) {
        (Some(mut keep), Some(partials)) => {
            keep.finished = true;
            partials.invalidate(key);
            let mut fill = keep.fill.lock().unwrap_or_else(|e| e.into_inner());
            fill.bytes = 0;
            fill.first = None;
            std::mem::take(&mut fill.pages).into_values().collect()
        }
        _ => fetched.into_iter().flatten().collect(),
    };
    let mut last_next = None;
    for page in pages {
        last_next = page.next_page;
        all.items.extend(page.items);
        all.warnings.extend(page.warnings);
    }
    // Transactions that arrived during the walk may have added pages at the end.
    if let Some(next) = last_next.filter(|&n| n > last) {
        let rest = provider::walk_pages(provider, &query, limit, next)
            .await
            .map_err(FetchError::Provider)?;
        all.items.extend(rest.items);
        all.warnings.extend(rest.warnings);
    }
    done(all, reservation)
}

fn estimate_warning_bytes(warnings: &[RecordWarning]) -> u32 {
    use crate::memory::{alloc, string};
    let heap: usize = warnings
        .iter()
        .map(|w| {
            string(&w.record)
                + string(&w.field)
                + string(&w.reason)
                + w.raw_value.as_ref().map_or(0, string)
        })
        .sum();
    u32::try_from(alloc(std::mem::size_of_val(warnings)) + heap).unwrap_or(u32::MAX)
}

/// Newest booking date first; the provider's own order within a day; duplicates dropped; no
/// spare capacity kept.
fn normalize(mut items: Vec<Transaction>) -> Vec<Transaction> {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    items.retain(|t| seen.insert(t.id.clone()));
    drop(seen);
    items.sort_by_key(|t| std::cmp::Reverse(t.booked_on));
    items.shrink_to_fit();
    items
}

/// The heap bytes of a snapshot's records as the allocator hands them out: the array, and
/// each record's strings, ids and raw record. The provider's name (the id's, and the
/// record's when it is another copy; the adapters share one `Arc` by a page's records) is
/// counted once a record: an upper bound.
pub fn estimate_bytes(items: &[Transaction]) -> u32 {
    use crate::memory::{alloc, arc, string};
    let heap: usize = items
        .iter()
        .map(|t| {
            let shared = std::ptr::eq(t.provider.as_ptr(), t.id.provider().as_ptr());
            arc(t.id.provider().len())
                + if shared { 0 } else { arc(t.provider.len()) }
                + arc(t.id.provider_id().len())
                + string(&t.provider_transaction_id)
                + string(&t.account_id)
                + t.customer_id.as_ref().map_or(0, string)
                + string(&t.narration)
                + t.reference.as_ref().map_or(0, string)
                + t.bank.as_ref().map_or(0, string)
                + t.raw.as_ref().map_or(0, |r| arc(r.get().len()))
        })
        .sum();
    let array = alloc(std::mem::size_of_val(items));
    let snapshot = crate::memory::arc(std::mem::size_of::<Snapshot>());
    u32::try_from(array + heap + snapshot).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use async_trait::async_trait;
    use provider::{Capabilities, Page, RefreshStyle, ScopeKind};
    use tokio::sync::Semaphore;

    use super::*;
    use crate::config::OutboundConfig;
    use crate::outbound::{Guarded, Lane};

    /// What the fake provider does on its next calls.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Mode {
        Answer,
        /// A 500: not retried, an upstream fault.
        Fail500,
        /// A 503: transient, retried by the lane.
        Fail503,
        /// Never answers.
        Hang,
        /// Answers once the gate gives a permit.
        Gated,
    }

    #[derive(Debug)]
    struct Fake {
        caps: Capabilities,
        mode: Mutex<Mode>,
        calls: AtomicU32,
        entered: tokio::sync::Notify,
        gate: Semaphore,
        /// (pages of the scope, a page that fails with a 500).
        shape: Mutex<(u32, Option<u32>)>,
        /// Pages hold records (newest first), else none.
        records: std::sync::atomic::AtomicBool,
        /// A page whose first record is newer than every other (pages out of order).
        newer_on: Mutex<Option<u32>>,
    }

    use std::sync::Mutex;

    impl Fake {
        fn new() -> Arc<Fake> {
            Arc::new(Fake {
                caps: Capabilities {
                    scopes: vec![ScopeKind::Account],
                    date_filter: vec![],
                    direction_filter: vec![],
                    get_by_id: false,
                    default_page_size: 10,
                    max_page_size: 10,
                    bulk_read: false,
                    newest_first: true,
                    refresh: RefreshStyle::None,
                },
                mode: Mutex::new(Mode::Answer),
                calls: AtomicU32::new(0),
                entered: tokio::sync::Notify::new(),
                gate: Semaphore::new(0),
                shape: Mutex::new((1, None)),
                records: Default::default(),
                newer_on: Mutex::new(None),
            })
        }

        fn set(&self, mode: Mode) {
            *self.mode.lock().unwrap() = mode;
        }

        fn calls(&self) -> u32 {
            self.calls.load(Ordering::SeqCst)
        }
    }

    fn failure(status: u16) -> ProviderError {
        ProviderError::Unavailable {
            provider: "fake".into(),
            status: Some(status),
            message: "injected".into(),
        }
    }

    #[async_trait]
    impl Provider for Fake {
        fn name(&self) -> &str {
            "fake"
        }

        fn kind(&self) -> &'static str {
            "fake"
        }

        fn capabilities(&self) -> &Capabilities {
            &self.caps
        }

        async fn list_page(
            &self,
            query: &TransactionQuery,
        ) -> Result<provider::Page<Transaction>, ProviderError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let mode = *self.mode.lock().unwrap();
            match mode {
                Mode::Answer => {}
                Mode::Fail500 => return Err(failure(500)),
                Mode::Fail503 => return Err(failure(503)),
                Mode::Hang => std::future::pending::<()>().await,
                Mode::Gated => {
                    self.entered.notify_one();
                    // One permit per call.
                    self.gate.acquire().await.unwrap().forget();
                }
            }
            let (pages, failing) = *self.shape.lock().unwrap();
            let page = query.page.page;
            if failing == Some(page) {
                return Err(failure(500));
            }
            let items = if self.records.load(Ordering::SeqCst) {
                let newer_on = *self.newer_on.lock().unwrap();
                (0..query.page.limit)
                    .map(|i| {
                        let position = (page - 1) * query.page.limit + i;
                        let days = if newer_on == Some(page) && i == 0 {
                            0
                        } else {
                            1 + i64::from(position / 3)
                        };
                        record(position, days)
                    })
                    .collect()
            } else {
                vec![]
            };
            Ok(Page {
                items,
                page,
                limit: query.page.limit,
                total: Some(u64::from(pages) * u64::from(query.page.limit)),
                total_pages: Some(pages),
                next_page: (page < pages).then_some(page + 1),
                warnings: vec![],
            })
        }
    }

    /// Record `position` of the fake scope, booked `days` before 2026-12-31.
    fn record(position: u32, days: i64) -> Transaction {
        let id = format!("t{position}");
        Transaction {
            id: TransactionId::new("fake", id.as_str()),
            provider: "fake".into(),
            provider_transaction_id: id,
            account_id: "A".into(),
            customer_id: None,
            direction: Direction::Debit,
            amount: provider::Money::from_minor(100, provider::Currency::from_code("NGN").unwrap()),
            balance_after: None,
            booked_on: time::macros::date!(2026 - 12 - 31) - time::Duration::days(days),
            value_on: None,
            narration: "N".into(),
            reference: None,
            bank: None,
            raw: None,
        }
    }

    fn outbound() -> OutboundConfig {
        OutboundConfig {
            quota: None,
            max_concurrent_requests: 4,
            queue_timeout: Duration::from_secs(10),
            max_retries: 3,
            retry_backoff: Duration::from_secs(1),
            breaker_failure_threshold: 100,
            breaker_open: Duration::from_secs(60),
        }
    }

    fn entry(fake: &Arc<Fake>, ttl: Duration) -> ProviderEntry {
        let lane = Arc::new(Lane::new("fake", outbound()));
        ProviderEntry {
            name: Arc::from("fake"),
            kind: "okra",
            provider: Arc::new(Guarded::new(fake.clone(), lane.clone(), None)),
            fetch_concurrency: 1,
            early_first_page: true,
            page_size: 10,
            cache_ttl: ttl,
            lane,
        }
    }

    fn cache() -> Arc<SnapshotCache> {
        Arc::new(SnapshotCache::new(&CacheSection::default()))
    }

    fn query() -> TransactionQuery {
        TransactionQuery::new(Scope::Account("A".into()))
    }

    const FRESH: Duration = Duration::from_secs(300);

    /// Defect 1: a refresh replaces the account's snapshot; a cursor into the old one keeps
    /// working at once, not only after the cache's next maintenance.
    #[tokio::test]
    async fn a_cursor_finds_its_snapshot_right_after_a_refresh_dropped_it() {
        let (fake, cache) = (Fake::new(), cache());
        let entry = entry(&fake, FRESH);
        let (old, status) = cache.get_or_fetch(&entry, &query()).await.unwrap();
        assert_eq!(status, CacheStatus::Miss);
        cache.invalidate_local("fake", "A").unwrap();
        let found = cache.by_id(&old.key, old.id).await;
        assert_eq!(found.map(|s| s.id), Some(old.id));
        // And the next read fetches a new one.
        let (new, status) = cache.get_or_fetch(&entry, &query()).await.unwrap();
        assert_eq!(status, CacheStatus::Miss);
        assert_ne!(new.id, old.id);
        assert_eq!(
            cache.by_id(&old.key, old.id).await.map(|s| s.id),
            Some(old.id)
        );
    }

    /// Defect 1 (expiry): the snapshot replaced because it expired stays reachable by id.
    #[tokio::test]
    async fn a_cursor_finds_its_snapshot_right_after_expiry_replaced_it() {
        let (fake, cache) = (Fake::new(), cache());
        // Expired as soon as it is made.
        let entry = entry(&fake, Duration::ZERO);
        let (old, _) = cache.get_or_fetch(&entry, &query()).await.unwrap();
        let (new, status) = cache.get_or_fetch(&entry, &query()).await.unwrap();
        assert_eq!(status, CacheStatus::Miss);
        assert_ne!(new.id, old.id);
        assert_eq!(fake.calls(), 2);
        assert_eq!(
            cache.by_id(&old.key, old.id).await.map(|s| s.id),
            Some(old.id)
        );
    }

    /// Defect 2: the provider fails right after the snapshot expired: the expired snapshot is
    /// served as stale at once.
    #[tokio::test]
    async fn stale_if_error_serves_the_snapshot_that_just_expired() {
        let (fake, cache) = (Fake::new(), cache());
        let entry = entry(&fake, Duration::ZERO);
        let (old, _) = cache.get_or_fetch(&entry, &query()).await.unwrap();
        fake.set(Mode::Fail500);
        let (served, status) = cache.get_or_fetch(&entry, &query()).await.unwrap();
        assert_eq!(status, CacheStatus::Stale);
        assert_eq!(served.id, old.id);
    }

    /// Defect 4: a request that joined another's fetch and waited for it is a miss, not a hit;
    /// and the provider was asked once.
    #[tokio::test]
    async fn a_request_that_joined_a_fetch_in_flight_is_a_miss() {
        let (fake, cache) = (Fake::new(), cache());
        let entry = entry(&fake, FRESH);
        fake.set(Mode::Gated);
        // Polled in order: the first starts the fetch and blocks in the provider, the second
        // joins it, and only then is the provider let go.
        let release = async {
            fake.entered.notified().await;
            fake.gate.add_permits(1);
        };
        let (first, second, ()) = futures_util::future::join3(
            cache.get_or_fetch(&entry, &query()),
            cache.get_or_fetch(&entry, &query()),
            release,
        )
        .await;
        let ((a, first), (b, second)) = (first.unwrap(), second.unwrap());
        assert_eq!(a.id, b.id);
        assert_eq!(fake.calls(), 1);
        assert_eq!((first, second), (CacheStatus::Miss, CacheStatus::Miss));
        // Later readers are hits.
        let (_, third) = cache.get_or_fetch(&entry, &query()).await.unwrap();
        assert_eq!(third, CacheStatus::Hit);
    }

    /// Defect 5: with a stale snapshot at hand and a provider that hangs, the stale answer
    /// comes after `stale_wait`, not at the request's deadline.
    #[tokio::test(start_paused = true)]
    async fn a_hanging_provider_gets_stale_wait_not_the_whole_deadline() {
        let (fake, cache) = (Fake::new(), cache());
        let entry = entry(&fake, Duration::ZERO);
        let (old, _) = cache.get_or_fetch(&entry, &query()).await.unwrap();
        fake.set(Mode::Hang);
        let started = Instant::now();
        let (served, status) = crate::outbound::with_deadline(
            started + Duration::from_secs(30),
            cache.get_or_fetch(&entry, &query()),
        )
        .await
        .unwrap();
        assert_eq!((served.id, status), (old.id, CacheStatus::Stale));
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(CacheSection::default().stale_wait_ms)
        );
    }

    /// Defect 5: with a stale snapshot at hand, a transient failure is not retried: the stale
    /// answer comes after the first attempt.
    #[tokio::test(start_paused = true)]
    async fn a_transient_failure_with_stale_at_hand_is_not_retried() {
        let (fake, cache) = (Fake::new(), cache());
        let entry = entry(&fake, Duration::ZERO);
        let (old, _) = cache.get_or_fetch(&entry, &query()).await.unwrap();
        fake.set(Mode::Fail503);
        let started = Instant::now();
        let (served, status) = cache.get_or_fetch(&entry, &query()).await.unwrap();
        assert_eq!((served.id, status), (old.id, CacheStatus::Stale));
        assert_eq!(fake.calls(), 2, "one fetch, then one attempt");
        assert!(started.elapsed() < outbound().retry_backoff);
        // Without a stale answer the lane still retries.
        let other = TransactionQuery::new(Scope::Account("B".into()));
        assert!(cache.get_or_fetch(&entry, &other).await.is_err());
        assert_eq!(fake.calls(), 2 + 1 + outbound().max_retries);
    }

    /// Covering snapshots: a query whose date range lies inside a fresh snapshot's range of the
    /// same scope (a range the provider filters natively) is answered from it, and its cursor
    /// finds it; a range reaching outside is fetched.
    #[tokio::test]
    async fn a_range_inside_a_fresh_snapshots_range_is_answered_from_it() {
        let (fake, cache) = (Fake::new(), cache());
        let mut dated = Arc::try_unwrap(fake).unwrap();
        dated.caps.date_filter = vec![ScopeKind::Account];
        let fake = Arc::new(dated);
        let entry = entry(&fake, FRESH);
        let day = |m, d| Some(time::Date::from_calendar_date(2026, m, d).unwrap());
        use time::Month::{April, February, January, March};
        let wide = query().with_range(DateRange::new(day(January, 1), day(March, 31)));
        let inside = query().with_range(DateRange::new(day(February, 1), day(February, 28)));
        let outside = query().with_range(DateRange::new(day(February, 1), day(April, 30)));
        let (outer, _) = cache.get_or_fetch(&entry, &wide).await.unwrap();
        let (served, status) = cache.get_or_fetch(&entry, &inside).await.unwrap();
        assert_eq!(
            (served.id, status, fake.calls()),
            (outer.id, CacheStatus::Hit, 1)
        );
        let inside_key = SnapshotKey::for_query(&entry, &inside);
        assert_eq!(
            cache.by_id(&inside_key, outer.id).await.map(|s| s.id),
            Some(outer.id)
        );
        let (other, status) = cache.get_or_fetch(&entry, &outside).await.unwrap();
        assert_eq!(status, CacheStatus::Miss);
        assert_ne!(other.id, outer.id);
        assert_eq!(fake.calls(), 2);
    }

    /// The memory budget: a scope whose snapshot could never fit in the fills' share is paged
    /// through after its first page; one that fits but finds the share taken waits, then is
    /// refused (503 `cache_busy`) without reading further; once the share is free it is read.
    #[tokio::test(start_paused = true)]
    async fn a_fill_reserves_its_memory_before_reading_its_pages() {
        let fake = Fake::new();
        let cache = Arc::new(SnapshotCache::new(&CacheSection {
            max_bytes: 1024 * 1024,
            ..CacheSection::default()
        }));
        let entry = entry(&fake, FRESH);
        // 1,000 records expected: more than the fills' share (about 160 KiB) could ever hold.
        *fake.shape.lock().unwrap() = (100, None);
        let too_large = cache.get_or_fetch(&entry, &query()).await;
        assert!(matches!(
            too_large,
            Err(FetchError::TooLarge { total: 1000 })
        ));
        assert_eq!(fake.calls(), 1, "only the first page was read");
        // 300 records fit, but not while another fill holds the whole share.
        *fake.shape.lock().unwrap() = (30, None);
        let other = TransactionQuery::new(Scope::Account("B".into()));
        let far = Instant::now() + Duration::from_secs(3600);
        let held = cache.fills.fill(cache.fills.largest(), far).await.unwrap();
        let started = Instant::now();
        let busy = cache.get_or_fetch(&entry, &other).await;
        assert!(matches!(busy, Err(FetchError::Busy(_))));
        assert_eq!(started.elapsed(), crate::memory::RESERVE_WAIT);
        assert_eq!(fake.calls(), 2, "the first page, then nothing more");
        drop(held);
        let (_, status) = cache.get_or_fetch(&entry, &other).await.unwrap();
        assert_eq!(status, CacheStatus::Miss);
        assert_eq!(fake.calls(), 2 + 30);
        assert_eq!(
            cache.fills.reserved(),
            0,
            "given back once the snapshot is built"
        );
    }

    /// No wasted pages: a fill whose fifth page failed keeps pages 1-4; the next fill reads
    /// only page 5 (whose totals say whether the data shifted meanwhile).
    #[tokio::test]
    async fn a_failed_fill_is_resumed_without_reading_its_pages_again() {
        let (fake, cache) = (Fake::new(), cache());
        *fake.shape.lock().unwrap() = (5, Some(5));
        let entry = entry(&fake, FRESH);
        assert!(cache.get_or_fetch(&entry, &query()).await.is_err());
        assert_eq!(fake.calls(), 5);
        fake.shape.lock().unwrap().1 = None;
        let (_, status) = cache.get_or_fetch(&entry, &query()).await.unwrap();
        assert_eq!(status, CacheStatus::Miss);
        assert_eq!(fake.calls(), 5 + 1, "page 5 only");
        // When the totals changed meanwhile (page 5 says so), everything is read again.
        cache.invalidate_local("fake", "A").unwrap();
        *fake.shape.lock().unwrap() = (5, Some(5));
        assert!(cache.get_or_fetch(&entry, &query()).await.is_err());
        *fake.shape.lock().unwrap() = (6, None);
        cache.get_or_fetch(&entry, &query()).await.unwrap();
        assert_eq!(fake.calls(), 6 + 5 + 1 + 6);
    }
    /// A fresh snapshot answers again without a provider call; a multi-page scope is read page
    /// by page once (every page, in order) and then served whole.
    #[tokio::test]
    async fn a_fresh_snapshot_is_a_hit_and_every_page_is_read_once() {
        let (fake, cache) = (Fake::new(), cache());
        *fake.shape.lock().unwrap() = (4, None);
        let entry = entry(&fake, FRESH);
        let (first, status) = cache.get_or_fetch(&entry, &query()).await.unwrap();
        assert_eq!(status, CacheStatus::Miss);
        assert_eq!(fake.calls(), 4);
        let (again, status) = cache.get_or_fetch(&entry, &query()).await.unwrap();
        assert_eq!(status, CacheStatus::Hit);
        assert_eq!(again.id, first.id);
        assert_eq!(fake.calls(), 4);
    }

    /// Asks for the first 10 records of the fake scope (pages of 10 holding records, each
    /// provider call held until let go), lets only page 1 answer, and returns the early answer.
    async fn answered_early(
        fake: &Arc<Fake>,
        cache: &Arc<SnapshotCache>,
        entry: &ProviderEntry,
    ) -> Arc<early::Progress> {
        fake.records.store(true, Ordering::SeqCst);
        fake.set(Mode::Gated);
        let first = {
            let (cache, entry) = (cache.clone(), entry.clone());
            tokio::spawn(async move { cache.first_records(&entry, &query(), 10).await })
        };
        fake.entered.notified().await;
        fake.gate.add_permits(1);
        match first.await.unwrap() {
            Ok(Found::Early(progress)) => progress,
            Ok(Found::Whole((s, st))) => panic!("whole {} {st:?}", s.items.len()),
            Err(e) => panic!("{e:?}"),
        }
    }

    /// Issue 16, first page fast: the first page is answered from the fill's first provider
    /// page while the rest is still unread; its cursor waits for the fill and continues into
    /// the built snapshot, which starts with exactly the records that page showed.
    #[tokio::test]
    async fn a_first_page_is_answered_before_its_snapshot_is_built() {
        let (fake, cache) = (Fake::new(), cache());
        *fake.shape.lock().unwrap() = (5, None);
        let entry = entry(&fake, FRESH);
        let progress = answered_early(&fake, &cache, &entry).await;
        assert_eq!((progress.items.len(), progress.total), (10, Some(50)));
        assert!(
            fake.calls() <= 2,
            "pages 3-5 are not asked for yet (page 2 is held)"
        );
        // The next page's cursor names the promised snapshot: it waits for the fill.
        let key = SnapshotKey::for_query(&entry, &query());
        let next = {
            let (cache, key, id) = (cache.clone(), key.clone(), progress.id);
            tokio::spawn(async move { cache.by_id(&key, id).await })
        };
        tokio::task::yield_now().await;
        assert!(!next.is_finished(), "the cursor waits for the fill");
        fake.gate.add_permits(4);
        let snapshot = next.await.unwrap().expect("the promised snapshot");
        assert_eq!(snapshot.id, progress.id);
        assert_eq!(snapshot.items.len(), 50);
        let shown: Vec<_> = progress.items.iter().map(|t| &t.id).collect();
        let built: Vec<_> = snapshot.items[..10].iter().map(|t| &t.id).collect();
        assert_eq!(shown, built);
        assert_eq!(fake.calls(), 5, "every page read once");
        // And it is the current snapshot: the next read is a hit.
        cache.run_pending_tasks().await;
        let (again, status) = cache.get_or_fetch(&entry, &query()).await.unwrap();
        assert_eq!((again.id, status), (progress.id, CacheStatus::Hit));
    }

    /// First page fast, when the built snapshot does not start with what the early page showed
    /// (a later page held a newer record): the snapshot gets another id, so that page's cursor
    /// answers 410 (the walk restarts) instead of a duplicate or a gap.
    #[tokio::test]
    async fn an_early_page_the_snapshot_disagrees_with_loses_its_cursor() {
        let (fake, cache) = (Fake::new(), cache());
        *fake.shape.lock().unwrap() = (3, None);
        *fake.newer_on.lock().unwrap() = Some(3);
        let entry = entry(&fake, FRESH);
        let progress = answered_early(&fake, &cache, &entry).await;
        let key = SnapshotKey::for_query(&entry, &query());
        let next = {
            let (cache, key, id) = (cache.clone(), key.clone(), progress.id);
            tokio::spawn(async move { cache.by_id(&key, id).await })
        };
        fake.gate.add_permits(2);
        assert!(next.await.unwrap().is_none(), "the cursor expired");
        cache.run_pending_tasks().await;
        let (built, _) = cache.get_or_fetch(&entry, &query()).await.unwrap();
        assert_ne!(built.id, progress.id);
        assert_eq!(built.items[0].id, TransactionId::new("fake", "t20"));
        assert_eq!(fake.calls(), 3);
    }

    /// First page fast needs the records in the listing's order before the snapshot is built:
    /// a page that is not (or a provider that does not promise it) waits for the whole fill.
    #[tokio::test]
    async fn a_page_beyond_the_first_records_waits_for_the_whole_snapshot() {
        let (fake, cache) = (Fake::new(), cache());
        *fake.shape.lock().unwrap() = (3, None);
        fake.records.store(true, Ordering::SeqCst);
        let entry = entry(&fake, FRESH);
        // 30 records needed (offset 20, limit 10): the whole fill, answered as a whole.
        match cache.first_records(&entry, &query(), 30).await {
            Ok(Found::Whole((snapshot, CacheStatus::Miss))) => {
                assert_eq!(snapshot.items.len(), 30)
            }
            _ => panic!("expected the whole snapshot, a miss"),
        }
    }

    /// Single flight: readers arriving while a fill is in flight wait for it; the provider
    /// sees one fill, whatever the number of readers.
    #[tokio::test]
    async fn concurrent_readers_share_one_fill() {
        let (fake, cache) = (Fake::new(), cache());
        fake.set(Mode::Gated);
        let entry = entry(&fake, FRESH);
        let readers: Vec<_> = (0..5)
            .map(|_| {
                let (cache, entry) = (cache.clone(), entry.clone());
                tokio::spawn(async move { cache.get_or_fetch(&entry, &query()).await })
            })
            .collect();
        // The fill is in the provider: let it answer.
        fake.entered.notified().await;
        fake.gate.add_permits(1);
        let mut ids = std::collections::BTreeSet::new();
        for reader in readers {
            let (snapshot, _) = reader.await.unwrap().unwrap();
            ids.insert(snapshot.id);
        }
        assert_eq!(ids.len(), 1);
        assert_eq!(fake.calls(), 1);
    }

    /// A scope over `max_snapshot_items` is not snapshotted: the caller is told to page it
    /// straight through, and nothing is kept.
    #[tokio::test]
    async fn a_scope_over_the_item_limit_is_not_snapshotted() {
        let fake = Fake::new();
        *fake.shape.lock().unwrap() = (3, None);
        let cache = Arc::new(SnapshotCache::new(&CacheSection {
            max_snapshot_items: 25,
            ..CacheSection::default()
        }));
        let entry = entry(&fake, FRESH);
        match cache.get_or_fetch(&entry, &query()).await {
            Err(FetchError::TooLarge { total }) => assert_eq!(total, 30),
            other => panic!("expected TooLarge, got {:?}", other.map(|(s, c)| (s.id, c))),
        }
        assert_eq!(fake.calls(), 1, "only the first page, to learn the total");
        // Remembered: the next read is told at once, without asking the provider.
        assert!(matches!(
            cache.get_or_fetch(&entry, &query()).await,
            Err(FetchError::TooLarge { total: 30 })
        ));
        assert_eq!(fake.calls(), 1);
    }
}
