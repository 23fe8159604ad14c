//! Inbound rate limits: each calling service's quota, and the `RateLimit` header fields.
//!
//! Every configured client has its own GCRA limiter (governor), built at start from its
//! `[clients.NAME]` quota or the `[rate_limits]` default. [`crate::middleware::authenticate`]
//! charges it on `/v1` *after* authentication: the key it charges is the client the API key
//! resolved to, never anything else the caller sends, so no caller can spend another's quota,
//! and a request that fails authentication spends nothing.
//!
//! Headers follow draft-ietf-httpapi-ratelimit-headers-09 (the structured-field form with
//! named policies, kept by later revisions):
//!
//! - `RateLimit-Policy: "default";q=6000;w=60`: the client's policy, named `default` or after
//!   the client when its section overrides the default; `q` requests per `w` = 60 seconds.
//! - `RateLimit: "default";r=499;t=3`: `r` requests may be sent right now (the unspent burst),
//!   and `t` seconds from now the whole burst is available again.
//!
//! Over quota, the answer is the 429 problem with `Retry-After` (seconds until one request is
//! accepted again) and `RateLimit` with `r=0`.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::web::BytesMut;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::cluster::Cluster;
use crate::config::{ClientConfig, ClientRateLimit};

/// `RateLimit-Policy`: the client's quota policy.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit`: what is left of it now.
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

type Limiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

struct ClientLimiter {
    policy: HeaderValue,
    /// `"name";r=`: the start of each `RateLimit` value.
    remaining_prefix: Vec<u8>,
    burst: u32,
    interval: Duration,
    limiter: Limiter,
    /// The client's quota key in Redis.
    shared_key: String,
    /// This replica's share of the quota while Redis is away, built for a replica count.
    share: Mutex<Option<(u32, Arc<ClientLimiter>)>>,
    rate: ClientRateLimit,
    /// Cells taken from the shared quota and not spent yet.
    pool: Mutex<Pool>,
}

/// Ends a pool refill when dropped (`.1`: this call is the refill).
struct RefillGuard<'a>(&'a Mutex<Pool>, bool);

impl Drop for RefillGuard<'_> {
    fn drop(&mut self) {
        if self.1 {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).refilling = false;
        }
    }
}

/// How long cells taken from the shared quota are kept for this replica's next requests before
/// the unspent ones are given back.
const HOLD: Duration = Duration::from_millis(250);
/// The most cells taken at once.
const MAX_BATCH: u32 = 32;

/// Cells this replica took from a client's shared quota (in Redis) and has not spent yet, so a
/// busy client's requests mostly stay off Redis: a batch is taken when the pool is empty, spent
/// locally, and what is left after [`HOLD`] is given back. The batch doubles while the client
/// spends it within the hold and halves when cells come back, up to `burst / (4 × replicas)`
/// (and [`MAX_BATCH`]): a quiet client asks for one cell at a time, exactly as without a pool.
/// Every cell is taken in Redis before it is spent, so the quota is never exceeded; at most a
/// quarter of the burst can sit unspent in the replicas' pools.
#[derive(Debug)]
struct Pool {
    cells: u32,
    /// A batch is being taken now: other requests meanwhile ask for one cell each, so a crowd
    /// arriving at once does not reserve a batch each.
    refilling: bool,
    taken_at: Instant,
    batch: u32,
    /// The cluster's unspent burst and its refill time when the batch was taken.
    remaining: u32,
    until_full: Duration,
    /// Redis refused this client (its cluster-wide bucket is empty) until then: requests before
    /// it are refused here without asking again. Conservative: a cell another replica gives
    /// back meanwhile is not seen before it.
    refused_until: Option<Instant>,
}

/// The quota of every configured client: in-process, or shared by the replicas through Redis
/// (one GCRA per client on the Redis clock, the same arithmetic as the in-process limiter).
pub struct InboundLimits {
    by_client: HashMap<String, ClientLimiter>,
    cluster: Option<Arc<Cluster>>,
}

impl std::fmt::Debug for InboundLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundLimits")
            .field("clients", &self.by_client.len())
            .finish()
    }
}

/// The verdict on one request: the headers to send, and whether it was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// `RateLimit-Policy`.
    pub policy: HeaderValue,
    /// `RateLimit`.
    pub remaining: HeaderValue,
    /// When refused: how long until one request is accepted again.
    pub refused: Option<Duration>,
}

impl Verdict {
    /// Adds the two `RateLimit` header fields to `headers`.
    pub fn apply(&self, headers: &mut HeaderMap) {
        headers.insert(RATELIMIT_POLICY, self.policy.clone());
        headers.insert(RATELIMIT, self.remaining.clone());
    }
}

/// Whole seconds, rounded up.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl InboundLimits {
    /// A limiter per configured client; with `cluster`, shared by every replica.
    pub fn new(clients: &[ClientConfig], cluster: Option<Arc<Cluster>>) -> InboundLimits {
        let by_client = clients
            .iter()
            .map(|c| {
                let shared_key = cluster
                    .as_ref()
                    .map(|cl| cl.key(&format!("client:{}", c.name), "gcra"))
                    .unwrap_or_default();
                (
                    c.name.clone(),
                    ClientLimiter::new(&c.rate_limit, shared_key),
                )
            })
            .collect();
        InboundLimits { by_client, cluster }
    }

    /// Charges one request to `client` (an authenticated client's name), in-process.
    pub fn check(&self, client: &str) -> Option<Verdict> {
        self.by_client.get(client).map(ClientLimiter::check)
    }

    /// Charges one request to `client`: through Redis when configured (from this replica's pool
    /// of cells taken there; its share of the quota while Redis is away), else in-process.
    pub async fn charge(&self, client: &str) -> Option<Verdict> {
        let limiter = self.by_client.get(client)?;
        let Some(cluster) = &self.cluster else {
            return Some(limiter.check());
        };
        let now = Instant::now();
        let (give_back, want) = {
            let mut pool = limiter.pool.lock().unwrap_or_else(|e| e.into_inner());
            let held = now.saturating_duration_since(pool.taken_at);
            if pool.cells > 0 && held < HOLD {
                pool.cells -= 1;
                let left = pool.remaining.saturating_add(pool.cells);
                return Some(limiter.verdict(left, pool.until_full.saturating_sub(held), None));
            }
            if let Some(until) = pool.refused_until {
                if now < until {
                    return Some(limiter.verdict(0, pool.until_full, Some(until - now)));
                }
                pool.refused_until = None;
            }
            if pool.refilling {
                (0, 1)
            } else {
                let max_batch =
                    (limiter.burst / (4 * cluster.replicas()).max(1)).clamp(1, MAX_BATCH);
                let give_back = std::mem::take(&mut pool.cells);
                pool.batch = if give_back > 0 {
                    (pool.batch / 2).max(1)
                } else if held < HOLD {
                    pool.batch.saturating_mul(2)
                } else {
                    pool.batch
                }
                .min(max_batch);
                pool.refilling = pool.batch > 1;
                (give_back, pool.batch)
            }
        };
        // Whatever becomes of the call (even a cancelled request), the refill ends with it.
        let _refill = RefillGuard(&limiter.pool, want > 1);
        match cluster
            .take_cells(
                &limiter.shared_key,
                limiter.interval,
                limiter.burst,
                want,
                give_back,
            )
            .await
        {
            Ok(cells) if cells.taken > 0 => {
                let mut pool = limiter.pool.lock().unwrap_or_else(|e| e.into_inner());
                pool.cells += cells.taken - 1;
                pool.taken_at = now;
                pool.remaining = cells.remaining;
                pool.until_full = cells.until_full;
                let left = cells.remaining.saturating_add(pool.cells);
                Some(limiter.verdict(left, cells.until_full, None))
            }
            Ok(cells) => {
                let mut pool = limiter.pool.lock().unwrap_or_else(|e| e.into_inner());
                pool.refused_until = Some(now + cells.wait);
                pool.until_full = cells.until_full;
                Some(limiter.verdict(0, cells.until_full, Some(cells.wait)))
            }
            // Cells held for giving back are lost with the call: counted as spent (safe side).
            Err(_) => Some(limiter.share(cluster.replicas()).check()),
        }
    }
}

impl ClientLimiter {
    /// The limiter for this replica's share among `replicas` (same policy name and headers).
    fn share(&self, replicas: u32) -> Arc<ClientLimiter> {
        let mut share = self.share.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((n, limiter)) = share.as_ref()
            && *n == replicas
        {
            return limiter.clone();
        }
        let part = |n: NonZeroU32| NonZeroU32::new((n.get() / replicas.max(1)).max(1)).unwrap_or(n);
        let rate = ClientRateLimit {
            policy: self.rate.policy.clone(),
            requests_per_minute: part(self.rate.requests_per_minute),
            burst: part(self.rate.burst),
        };
        let limiter = Arc::new(ClientLimiter::new(&rate, String::new()));
        *share = Some((replicas, limiter.clone()));
        limiter
    }

    fn new(rate: &ClientRateLimit, shared_key: String) -> ClientLimiter {
        let quota = Quota::per_minute(rate.requests_per_minute).allow_burst(rate.burst);
        let policy = format!(
            "\"{}\";q={};w=60",
            rate.policy,
            rate.requests_per_minute.get()
        );
        ClientLimiter {
            policy: HeaderValue::from_str(&policy)
                .unwrap_or_else(|_| HeaderValue::from_static("\"default\"")),
            remaining_prefix: format!("\"{}\";r=", rate.policy).into_bytes(),
            burst: rate.burst.get(),
            interval: quota.replenish_interval(),
            limiter: RateLimiter::direct(quota).with_middleware::<StateInformationMiddleware>(),
            shared_key,
            share: Mutex::new(None),
            rate: rate.clone(),
            pool: Mutex::new(Pool {
                cells: 0,
                refilling: false,
                taken_at: Instant::now(),
                batch: 1,
                remaining: 0,
                refused_until: None,
                until_full: Duration::ZERO,
            }),
        }
    }

    fn check(&self) -> Verdict {
        let (remaining, until_full, refused) = match self.limiter.check() {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity().min(self.burst);
                let spent = self.burst - remaining;
                (remaining, self.interval.saturating_mul(spent), None)
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.limiter.clock().now());
                let rest = self.interval.saturating_mul(self.burst.saturating_sub(1));
                (0, wait + rest, Some(wait))
            }
        };
        self.verdict(remaining, until_full, refused)
    }

    fn verdict(&self, remaining: u32, until_full: Duration, refused: Option<Duration>) -> Verdict {
        // `"name";r=N;t=T`, once per request: the quoted name is rendered at start, the two
        // numbers by `itoa`, into the buffer the header value keeps (no `format!`, one copy).
        let mut value = BytesMut::with_capacity(self.remaining_prefix.len() + 24);
        value.extend_from_slice(&self.remaining_prefix);
        value.extend_from_slice(itoa::Buffer::new().format(remaining).as_bytes());
        value.extend_from_slice(b";t=");
        value.extend_from_slice(itoa::Buffer::new().format(ceil_secs(until_full)).as_bytes());
        let remaining = HeaderValue::from_maybe_shared(value.freeze()).ok();
        Verdict {
            policy: self.policy.clone(),
            remaining: remaining
                .unwrap_or_else(|| HeaderValue::from_static("\"default\";r=0;t=60")),
            refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rpm: u32, burst: u32) -> InboundLimits {
        InboundLimits::new(
            &[ClientConfig {
                name: "billing".into(),
                keys: Vec::new(),
                policy: crate::policy::Policy::unrestricted(),
                webhook: None,
                rate_limit: ClientRateLimit {
                    policy: "billing".into(),
                    requests_per_minute: NonZeroU32::new(rpm).unwrap(),
                    burst: NonZeroU32::new(burst).unwrap(),
                },
                fair_share_weight: 1,
            }],
            None,
        )
    }

    #[test]
    fn headers_count_down_the_burst_then_refuse_with_a_wait() {
        // One request per 10 s, three at once.
        let limits = limits(6, 3);
        let first = limits.check("billing").unwrap();
        assert_eq!(first.policy, "\"billing\";q=6;w=60");
        assert_eq!(first.remaining, "\"billing\";r=2;t=10");
        assert_eq!(first.refused, None);
        assert_eq!(
            limits.check("billing").unwrap().remaining,
            "\"billing\";r=1;t=20"
        );
        assert_eq!(
            limits.check("billing").unwrap().remaining,
            "\"billing\";r=0;t=30"
        );
        let refused = limits.check("billing").unwrap();
        let wait = refused.refused.unwrap();
        assert!(wait > Duration::from_secs(9) && wait <= Duration::from_secs(10));
        assert_eq!(refused.remaining, "\"billing\";r=0;t=30");
    }

    #[test]
    fn unknown_clients_are_not_charged() {
        assert!(limits(6, 3).check("ledger").is_none());
    }
}
