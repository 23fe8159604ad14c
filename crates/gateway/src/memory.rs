//! The cache's memory budget (`cache.max_bytes`): how it is shared out, what a snapshot fill in
//! flight reserves before it reads, and how many heap bytes the cached data really takes.
//!
//! Every byte the cache can hold is in one of these shares, each bounded on its own:
//!
//! | share | of `max_bytes` | holds |
//! | --- | --- | --- |
//! | current | 40 % | fresh snapshots (and expired ones kept for cursors until replaced) |
//! | retired | 10 % | replaced snapshots, for cursors |
//! | stale | 10 % | expired snapshots, for stale-if-error |
//! | rendered | 10 % | rendered pages (body + ETag) |
//! | index | 5 % | transaction id -> snapshot, for `GET /v1/transactions/{id}` |
//! | partial fills | 5 % | pages of fills that did not finish, kept to resume them |
//! | fills in flight | 20 % | what fills being read reserve: their first page first, then the whole snapshot |
//!
//! A fill reserves before it reads: its first page's allowance from a quarter of the fills'
//! share (the probes), then, from the provider's reported total and the first page's real
//! size, the whole snapshot's expected size from the rest. A snapshot that cannot fit in the
//! fills' share at all is not snapshotted (the listing pages through to the provider, as for
//! scopes over `max_snapshot_items`); one that fits but finds the share taken waits for fills
//! ahead of it to finish, up to the request's deadline (at most [`RESERVE_WAIT`]), then the
//! request answers 503 `cache_busy`. A fill never waits for a probe while holding its own
//! reservation, so fills cannot block each other for good.
//!
//! Weights are heap bytes as the allocator hands them out ([`alloc`]: its size classes), so the
//! sum of the shares is what the cached data occupies; a test measures the weigher against the
//! allocator's own count (`tests/weigher.rs`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The longest a fill waits for its reservation (less when the request's deadline is nearer).
pub const RESERVE_WAIT: Duration = Duration::from_secs(10);

/// What a record of a first page may take while it is read (response body, vendor structs,
/// the canonical record and its raw copy), for the probe's allowance.
pub const PROBE_BYTES_PER_RECORD: u64 = 6 * 1024;

/// The budget's shares, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shares {
    /// Current snapshots.
    pub current: u64,
    /// Retired snapshots (cursors).
    pub retired: u64,
    /// Stale snapshots (stale-if-error).
    pub stale: u64,
    /// Rendered pages.
    pub rendered: u64,
    /// The transaction index.
    pub index: u64,
    /// Pages of unfinished fills.
    pub partials: u64,
    /// Fills in flight.
    pub fills: u64,
}

impl Shares {
    /// `max_bytes` shared out (see the module's table).
    pub fn of(max_bytes: u64) -> Shares {
        let pct = |p: u64| max_bytes / 100 * p;
        Shares {
            current: pct(40),
            retired: pct(10),
            stale: pct(10),
            rendered: pct(10),
            index: pct(5),
            partials: pct(5),
            fills: pct(20),
        }
    }
}

/// Heap bytes an allocation of `n` bytes takes: the allocator's size class (jemalloc's: 8, then
/// steps of 16 up to 128, then four classes per doubling).
pub fn alloc(n: usize) -> usize {
    match n {
        0 => 0,
        1..=8 => 8,
        9..=128 => n.div_ceil(16) * 16,
        _ => {
            // Four classes between 2^k (exclusive) and 2^(k+1): steps of 2^(k-2).
            let base = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            let step = base / 4;
            n.div_ceil(step) * step
        }
    }
}

/// Heap bytes of a `String` (its capacity).
pub fn string(s: &String) -> usize {
    alloc(s.capacity())
}

/// Heap bytes of an `Arc<str>` or `Arc<T>` holding `len` bytes (two counters before it).
pub fn arc(len: usize) -> usize {
    alloc(16 + len)
}

/// Why a fill could not reserve its memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The snapshot could never fit in the fills' share: page through instead.
    TooLarge,
    /// The share stayed taken by other fills until the wait ended: 503, retry after this.
    Busy(Duration),
}

/// The fills' share: probes (first pages) and whole-snapshot reservations, in KiB permits.
#[derive(Debug)]
pub struct FillBudget {
    probes: Arc<Semaphore>,
    fills: Arc<Semaphore>,
    probe_kib: u32,
    fill_kib: u32,
}

/// Memory a fill holds the right to; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
}

fn kib(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

impl FillBudget {
    /// The fills' share of `bytes`: a quarter for probes, the rest for whole snapshots.
    pub fn new(bytes: u64) -> FillBudget {
        let total = kib(bytes).max(2);
        let probe_kib = (total / 4).max(1);
        let fill_kib = total - probe_kib;
        FillBudget {
            probes: Arc::new(Semaphore::new(probe_kib as usize)),
            fills: Arc::new(Semaphore::new(fill_kib as usize)),
            probe_kib,
            fill_kib,
        }
    }

    /// The largest snapshot a fill can reserve, in bytes.
    pub fn largest(&self) -> u64 {
        u64::from(self.fill_kib) * 1024
    }

    /// What is reserved now (probes and fills), in bytes.
    pub fn reserved(&self) -> u64 {
        let free = self.probes.available_permits() + self.fills.available_permits();
        (u64::from(self.probe_kib) + u64::from(self.fill_kib))
            .saturating_sub(free as u64)
            .saturating_mul(1024)
    }

    /// Reserves a first page of `limit` records (at most the whole probe share), waiting until
    /// `until`.
    pub async fn probe(&self, limit: u32, until: Instant) -> Result<Reservation, Refused> {
        let want = kib(u64::from(limit) * PROBE_BYTES_PER_RECORD).min(self.probe_kib);
        acquire(&self.probes, want, until).await
    }

    /// Reserves a whole snapshot of `bytes` (refused at once if it could never fit), waiting
    /// until `until`.
    pub async fn fill(&self, bytes: u64, until: Instant) -> Result<Reservation, Refused> {
        let want = kib(bytes);
        if want > self.fill_kib {
            return Err(Refused::TooLarge);
        }
        acquire(&self.fills, want, until).await
    }
}

async fn acquire(pool: &Arc<Semaphore>, kib: u32, until: Instant) -> Result<Reservation, Refused> {
    match tokio::time::timeout_at(until, pool.clone().acquire_many_owned(kib)).await {
        Ok(Ok(permit)) => Ok(Reservation { _permit: permit }),
        // Never closed; a timeout: the share stayed taken.
        _ => Err(Refused::Busy(Duration::from_secs(1))),
    }
}

/// Until when a fill may wait for its reservation: [`RESERVE_WAIT`], or less so that the
/// request still has time to answer 503 before its deadline.
pub fn wait_until() -> Instant {
    let bound = Instant::now() + RESERVE_WAIT;
    crate::outbound::current_deadline().map_or(bound, |deadline| {
        bound.min(
            deadline
                .checked_sub(Duration::from_millis(100))
                .unwrap_or(deadline),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes() {
        let classes: Vec<usize> = [0, 1, 8, 9, 16, 17, 128, 129, 160, 161, 256, 257, 1000, 5000]
            .into_iter()
            .map(alloc)
            .collect();
        assert_eq!(
            classes,
            [
                0, 8, 8, 16, 16, 32, 128, 160, 160, 192, 256, 320, 1024, 5120
            ]
        );
        assert_eq!(alloc(20_000), 20_480);
    }

    #[test]
    fn shares_add_up_to_the_budget() {
        let s = Shares::of(100 * 1024 * 1024);
        let sum = s.current + s.retired + s.stale + s.rendered + s.index + s.partials + s.fills;
        assert!(sum <= 100 * 1024 * 1024 && sum > 99 * 1024 * 1024, "{sum}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_fill_waits_for_the_share_then_is_refused_and_one_too_large_is_refused_at_once() {
        let budget = FillBudget::new(8 * 1024 * 1024);
        let until = Instant::now() + Duration::from_secs(5);
        assert_eq!(
            budget.fill(budget.largest() + 1, until).await.err(),
            Some(Refused::TooLarge)
        );
        let held = budget.fill(budget.largest(), until).await.unwrap();
        assert_eq!(budget.reserved(), budget.largest());
        let started = Instant::now();
        assert_eq!(
            budget.fill(1024, until).await.err(),
            Some(Refused::Busy(Duration::from_secs(1)))
        );
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        drop(held);
        assert_eq!(budget.reserved(), 0);
        // A waiter gets the share as soon as it is given back.
        let held = budget.fill(budget.largest(), until).await.unwrap();
        let later = Instant::now() + Duration::from_secs(60);
        let (waiter, ()) = futures_util::future::join(budget.fill(1024, later), async {
            tokio::task::yield_now().await;
            drop(held);
        })
        .await;
        assert!(waiter.is_ok());
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }
}
