//! Snapshots: a provider's data for one scope, fetched once, normalized, immutable, shared.
//!
//! A [`SnapshotKey`] names what was fetched: the provider instance, the scope, and only those
//! filters the provider applies natively for that scope (the others are applied by the gateway
//! on the snapshot, so their totals are exact and many queries share one snapshot). The cache is
//! moka's: single-flight per key (any number of identical concurrent misses cause one fetch),
//! a TTL, and a weigher that bounds the snapshots' estimated memory in bytes.
//!
//! A snapshot replaced or expired is *retired*, not dropped: cursors that point into it keep
//! working for the configured cursor lifetime, so a page walk never sees a duplicate or a gap.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use moka::notification::RemovalCause;
use provider::{
    DateRange, Direction, Provider, ProviderError, Scope, Transaction, TransactionId,
    TransactionQuery,
};

use crate::config::CacheSection;
use crate::error::ApiError;
use crate::state::ProviderEntry;

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

    fn fetch_query(&self) -> TransactionQuery {
        TransactionQuery::new(self.scope.clone())
            .with_range(self.range)
            .with_direction(self.direction)
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
    /// When it was fetched (monotonic).
    pub created: Instant,
    /// When it was fetched (wall clock).
    pub fetched_at: SystemTime,
    /// Estimated memory, for the cache's budget.
    pub bytes: u32,
}

impl Snapshot {
    /// How old the data is.
    pub fn age(&self) -> Duration {
        self.created.elapsed()
    }
}

/// Whether an answer came from memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Served from a cached snapshot.
    Hit,
    /// Fetched from the provider for this request (or joined a fetch in flight).
    Miss,
}

impl CacheStatus {
    /// The `x-cache` header value.
    pub fn as_str(&self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
        }
    }
}

/// The snapshot cache.
pub struct SnapshotCache {
    current: moka::future::Cache<SnapshotKey, Arc<Snapshot>>,
    retired: moka::sync::Cache<u64, Arc<Snapshot>>,
    index: moka::sync::Cache<TransactionId, SnapshotKey>,
    next_id: AtomicU64,
    ttl: Duration,
}

impl SnapshotCache {
    /// A cache with the configured TTL, cursor lifetime and memory budget.
    ///
    /// The budget is split: three quarters for current snapshots, one quarter for retired ones
    /// kept alive for cursors.
    pub fn new(config: &CacheSection) -> SnapshotCache {
        let ttl = Duration::from_secs(config.ttl_secs);
        let cursor_lifetime = Duration::from_secs(config.cursor_lifetime_secs);
        let retired: moka::sync::Cache<u64, Arc<Snapshot>> = moka::sync::Cache::builder()
            .max_capacity(config.max_bytes / 4)
            .weigher(|_, s: &Arc<Snapshot>| s.bytes)
            .time_to_live(cursor_lifetime)
            .build();
        let retire = retired.clone();
        let current = moka::future::Cache::builder()
            .max_capacity(config.max_bytes / 4 * 3)
            .weigher(|_, s: &Arc<Snapshot>| s.bytes)
            .time_to_live(ttl)
            .eviction_listener(move |_key, snapshot: Arc<Snapshot>, cause| {
                // Replaced or expired data stays readable for cursors; memory pressure drops it.
                if matches!(
                    cause,
                    RemovalCause::Expired | RemovalCause::Replaced | RemovalCause::Explicit
                ) {
                    retire.insert(snapshot.id, snapshot);
                }
            })
            .build();
        let index = moka::sync::Cache::builder()
            .max_capacity(1_000_000)
            .time_to_live(ttl + cursor_lifetime)
            .build();
        SnapshotCache {
            current,
            retired,
            index,
            next_id: AtomicU64::new(rand::random::<u32>().into()),
            ttl,
        }
    }

    /// The snapshot answering `query`, fetched on a miss (one fetch per key at a time).
    pub async fn get_or_fetch(
        &self,
        entry: &ProviderEntry,
        query: &TransactionQuery,
    ) -> Result<(Arc<Snapshot>, CacheStatus), ApiError> {
        let key = SnapshotKey::for_query(entry, query);
        let provider = entry.provider.clone();
        let init_key = key.clone();
        let result = self
            .current
            .entry_by_ref(&key)
            .or_try_insert_with(async move { self.fetch(provider.as_ref(), init_key).await })
            .await;
        match result {
            Ok(found) => {
                let status = if found.is_fresh() {
                    CacheStatus::Miss
                } else {
                    CacheStatus::Hit
                };
                Ok((found.into_value(), status))
            }
            Err(shared) => Err(ApiError::Upstream(ProviderError::clone(&shared))),
        }
    }

    async fn fetch(
        &self,
        provider: &dyn Provider,
        key: SnapshotKey,
    ) -> Result<Arc<Snapshot>, ProviderError> {
        let started = Instant::now();
        let fetched = provider.list_all(&key.fetch_query()).await?;
        let items = normalize(fetched);
        let bytes = estimate_bytes(&items);
        let snapshot = Arc::new(Snapshot {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            key,
            items,
            created: Instant::now(),
            fetched_at: SystemTime::now(),
            bytes,
        });
        for tx in &snapshot.items {
            self.index.insert(tx.id.clone(), snapshot.key.clone());
        }
        tracing::info!(
            provider = %snapshot.key.provider,
            scope = ?snapshot.key.scope,
            items = snapshot.items.len(),
            bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "snapshot fetched"
        );
        Ok(snapshot)
    }

    /// The snapshot a cursor names: the current one for `key` if it is that one, else a retired
    /// one still within the cursor lifetime.
    pub async fn by_id(&self, key: &SnapshotKey, id: u64) -> Option<Arc<Snapshot>> {
        match self.current.get(key).await {
            Some(snapshot) if snapshot.id == id => Some(snapshot),
            _ => self.retired.get(&id),
        }
    }

    /// A transaction seen in a snapshot that is still cached.
    pub async fn find(&self, id: &TransactionId) -> Option<(Transaction, Arc<Snapshot>)> {
        let key = self.index.get(id)?;
        let snapshot = self.current.get(&key).await?;
        let tx = snapshot.items.iter().find(|t| &t.id == id)?.clone();
        Some((tx, snapshot))
    }

    /// How long a fresh snapshot is served.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Drops every current snapshot of `provider` that covers `account_id` (after a refresh).
    pub fn invalidate_account(&self, provider: &str, account_id: &str) -> Result<(), ApiError> {
        let provider = provider.to_owned();
        let account = account_id.to_owned();
        self.current
            .invalidate_entries_if(move |key, _| {
                *key.provider == *provider && key.scope == Scope::Account(account.clone())
            })
            .map(|_| ())
            .map_err(|e| ApiError::Internal(format!("cache invalidation: {e}")))
    }

    /// Settles pending cache maintenance (evictions, listeners); for tests and measurements.
    pub async fn run_pending_tasks(&self) {
        self.current.run_pending_tasks().await;
        self.retired.run_pending_tasks();
    }

    /// The current snapshots' total estimated weight in bytes.
    pub fn weighted_size(&self) -> u64 {
        self.current.weighted_size()
    }
}

/// Newest booking date first; the provider's own order within a day; duplicates dropped.
fn normalize(mut items: Vec<Transaction>) -> Vec<Transaction> {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    items.retain(|t| seen.insert(t.id.clone()));
    items.sort_by_key(|t| std::cmp::Reverse(t.booked_on));
    items
}

fn estimate_bytes(items: &[Transaction]) -> u32 {
    let heap: usize = items
        .iter()
        .map(|t| {
            t.provider.len()
                + t.provider_transaction_id.len() * 2
                + t.account_id.len()
                + t.customer_id.as_ref().map_or(0, String::len)
                + t.narration.len()
                + t.reference.as_ref().map_or(0, String::len)
                + t.bank.as_ref().map_or(0, String::len)
                + t.raw.as_ref().map_or(0, |r| r.get().len())
                + 64
        })
        .sum();
    u32::try_from(std::mem::size_of_val(items) + heap + 256).unwrap_or(u32::MAX)
}
