//! State shared by every replica through Redis: provider and client quotas, concurrency leases,
//! the 429 pause, the cursor key, and the replica count that sizes each replica's fallback share.
//!
//! Configured by `[redis]`; without it nothing here exists and every limit is in-process, as in
//! a single gateway. Every read-modify-write is one Lua script (sent as `EVALSHA`, loaded on a
//! `NOSCRIPT`), whose keys share one hash tag, so the same scripts run on a Redis Cluster. Time
//! comes from the Redis server (`TIME` inside the script), so replicas with skewed clocks still
//! share one exact quota.
//!
//! **Redis down or slow.** Every call is bounded by `redis.timeout_ms`. A failed call marks Redis
//! down for `redis.retry_after_ms`: meanwhile no request waits on Redis at all, and each replica
//! falls back to its *share* of every quota (`quota / replicas`, where `replicas` is configured or
//! the last count of live replicas seen in Redis), so the sum over replicas still holds. The first
//! call after that window probes Redis again; when it answers, shared mode resumes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{RedisFuture, Script, Value};

use crate::config::RedisConfig;

/// How often a replica announces itself.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// A replica not heard from for this long is not counted.
const HEARTBEAT_STALE: Duration = Duration::from_secs(15);

/// Cells of a GCRA quota (a client's), taken in a batch: first `give back` unused cells taken
/// earlier, then take up to `want` of those available now (never ahead of time).
///
/// KEYS[1] the theoretical arrival time (µs, Redis clock). ARGV: emission interval T (µs), burst,
/// want, give back. Returns `{taken, wait_us, remaining_burst, until_full_us}`: `taken` cells are
/// the caller's now (0: refused, and one is free after `wait_us`).
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local T = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local give = tonumber(ARGV[4])
local tau = (burst - 1) * T
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if give > 0 then
  tat = math.max(now, tat - give * T)
end
local available = math.floor((now + tau - tat) / T) + 1
if available < 0 then available = 0 end
local taken = math.min(want, available)
if taken > 0 then tat = tat + taken * T end
if taken > 0 or give > 0 then
  redis.call('SET', KEYS[1], tostring(tat), 'PX', math.floor((tat - now) / 1000) + 1000)
end
local remaining = math.floor((now + tau + T - tat) / T)
if remaining < 0 then remaining = 0 end
if remaining > burst then remaining = burst end
local wait = tat - tau - now
if wait < 0 then wait = 0 end
return {taken, wait, remaining, tat - now}
";

/// One upstream call's admission: the shared 429 pause, a concurrency lease, a quota cell.
///
/// KEYS: pause, leases (zset: lease id -> expiry ms), gcra, open circuit. ARGV: lease id, max
/// leases (0: no cap), lease ms, T µs (0: no quota), burst, max wait µs.
/// Returns `{verdict, ms, remaining}`: 0 = admitted (ms: wait for the reserved cell, rounded
/// up; remaining: cells left in the burst, -1 without a quota), 1 = paused (ms left), 2 = every
/// lease taken (ms until the first expires), 3 = no quota cell within the wait (ms until one),
/// 4 = a replica opened the provider's circuit breaker (ms until it may be probed).
const ADMIT: &str = r"
local pause = redis.call('PTTL', KEYS[1])
if pause > 0 then return {1, pause} end
local open = redis.call('PTTL', KEYS[4])
if open > 0 then return {4, open} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now_ms = math.floor(now / 1000)
local max_leases = tonumber(ARGV[2])
if max_leases > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms)
  if redis.call('ZCARD', KEYS[2]) >= max_leases then
    local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {2, math.max(1, tonumber(first[2]) - now_ms)}
  end
end
local wait = 0
local remaining = -1
local T = tonumber(ARGV[4])
if T > 0 then
  local burst = tonumber(ARGV[5])
  local tau = (burst - 1) * T
  local tat = tonumber(redis.call('GET', KEYS[3]) or '0')
  if tat < now then tat = now end
  wait = tat - tau - now
  if wait < 0 then wait = 0 end
  if wait > tonumber(ARGV[6]) then return {3, math.ceil(wait / 1000)} end
  local new_tat = tat + T
  redis.call('SET', KEYS[3], tostring(new_tat), 'PX', math.floor((new_tat - now) / 1000) + 1000)
  remaining = math.max(0, math.floor((now + tau + T - new_tat) / T))
end
if max_leases > 0 then
  redis.call('ZADD', KEYS[2], now_ms + tonumber(ARGV[3]) + math.ceil(wait / 1000), ARGV[1])
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]) + math.ceil(wait / 1000) + 1000)
end
return {0, math.ceil(wait / 1000), remaining}
";

/// Sets the pause unless a longer one is already set. KEYS: pause. ARGV: ms.
const PAUSE: &str = r"
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 1
";

/// Records this replica's heartbeat and counts the live ones.
/// KEYS: replicas zset. ARGV: replica id, stale ms.
const HEARTBEAT: &str = r"
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now_ms, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 4)
return redis.call('ZCARD', KEYS[1])
";

/// Why a shared call gave no answer; the caller falls back to its local share.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SharedError {
    /// Redis is marked down (a recent call failed); not tried.
    #[error("redis is unavailable (recent failure); not tried")]
    Down,
    /// The call failed or timed out.
    #[error("redis: {0}")]
    Failed(String),
}

/// The outcome of the GCRA script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cells {
    /// How many cells were taken (0: refused).
    pub taken: u32,
    /// Refused: one cell is free after this long.
    pub wait: Duration,
    /// Cells left in the burst after these.
    pub remaining: u32,
    /// When the whole burst is back.
    pub until_full: Duration,
}

/// The verdict on one upstream call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go after `wait` (the reserved quota cell's time); release the lease after the call.
    Admitted {
        /// How long until the reserved cell.
        wait: Duration,
        /// Cells left in the cluster's burst after this one (`None` without a quota).
        remaining: Option<u32>,
    },
    /// The provider asked every replica to pause; this much is left.
    Paused(Duration),
    /// Every cluster-wide slot is taken; the first lease ends after this long.
    Busy(Duration),
    /// No quota cell within the accepted wait; one is free after this long.
    NoQuota(Duration),
    /// A replica's circuit breaker for the provider is open for this long still.
    CircuitOpen(Duration),
}

/// One connection to the shared state: a single Redis (reconnecting manager) or a Redis
/// Cluster (routing each command by its key's slot).
#[derive(Clone)]
pub enum Conn {
    /// A single Redis server.
    Single(ConnectionManager),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// How this replica reaches Redis.
enum Pool {
    /// Multiplexed connections to one server, used in turn.
    Single(Vec<ConnectionManager>),
    /// A Redis Cluster: one routing connection, made on first use (and again after a failure).
    Cluster(Box<ClusterPool>),
}

/// A Redis Cluster client and its connection, made on first use.
struct ClusterPool {
    client: redis::cluster::ClusterClient,
    conn: tokio::sync::Mutex<Option<ClusterConnection>>,
}

/// The connection to the shared state, and what this replica knows about the others.
pub struct Cluster {
    client: redis::Client,
    pool: Pool,
    next_conn: AtomicU32,
    prefix: String,
    timeout: Duration,
    retry_after: Duration,
    replica_id: String,
    configured_replicas: Option<u32>,
    live_replicas: AtomicU32,
    down_until_ms: AtomicU64,
    was_down: AtomicBool,
    started: Instant,
    gcra: Script,
    admit: Script,
    pause: Script,
    heartbeat: Script,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("prefix", &self.prefix)
            .field("replica_id", &self.replica_id)
            .finish_non_exhaustive()
    }
}

/// Wall-clock milliseconds (timestamps stored in Redis, read by other replicas).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Cluster {
    /// Connects lazily (a replica starts while Redis is down) to the configured Redis.
    pub fn connect(config: &RedisConfig) -> Result<Arc<Cluster>, String> {
        let client = redis::Client::open(config.url.as_str()).map_err(|e| e.to_string())?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let pool = if config.cluster {
            let cluster = redis::cluster::ClusterClientBuilder::new(vec![config.url.as_str()])
                .connection_timeout(config.timeout)
                .response_timeout(config.timeout)
                .retries(1)
                .build()
                .map_err(|e| e.to_string())?;
            Pool::Cluster(Box::new(ClusterPool {
                client: cluster,
                conn: tokio::sync::Mutex::new(None),
            }))
        } else {
            Pool::Single(
                (0..config.pool_size.max(1))
                    .map(|_| {
                        ConnectionManager::new_lazy_with_config(
                            client.clone(),
                            manager_config.clone(),
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?,
            )
        };
        let replica_id = format!("{:016x}", rand::random::<u64>());
        Ok(Arc::new(Cluster {
            client,
            pool,
            next_conn: AtomicU32::new(0),
            prefix: config.key_prefix.clone(),
            timeout: config.timeout,
            retry_after: config.retry_after,
            replica_id,
            configured_replicas: config.replicas,
            live_replicas: AtomicU32::new(0),
            down_until_ms: AtomicU64::new(0),
            was_down: AtomicBool::new(false),
            started: Instant::now(),
            gcra: Script::new(GCRA),
            admit: Script::new(ADMIT),
            pause: Script::new(PAUSE),
            heartbeat: Script::new(HEARTBEAT),
        }))
    }

    /// A key for `object`, whose hash tag `{tag}` keeps one script's keys on one cluster slot.
    pub fn key(&self, tag: &str, object: &str) -> String {
        format!("{}:{{{tag}}}:{object}", self.prefix)
    }

    /// This replica's id (random per process).
    pub fn replica_id(&self) -> &str {
        &self.replica_id
    }

    /// Whether the last call reached Redis (false while marked down).
    pub fn is_up(&self) -> bool {
        self.down_until_ms.load(Ordering::Relaxed) == 0
    }

    /// The replicas each quota is divided by in fallback mode: the configured number, else the
    /// most live replicas seen in Redis (at least 1, and this replica counts).
    pub fn replicas(&self) -> u32 {
        self.configured_replicas
            .unwrap_or_else(|| self.live_replicas.load(Ordering::Relaxed))
            .max(1)
    }

    /// A connection: one of the pool's, in turn, or the cluster's (made on first use).
    async fn conn(&self) -> redis::RedisResult<Conn> {
        match &self.pool {
            Pool::Single(conns) => {
                let n = self.next_conn.fetch_add(1, Ordering::Relaxed) as usize;
                Ok(Conn::Single(conns[n % conns.len()].clone()))
            }
            Pool::Cluster(pool) => {
                let mut slot = pool.conn.lock().await;
                if let Some(conn) = slot.as_ref() {
                    return Ok(Conn::Cluster(conn.clone()));
                }
                let fresh = pool.client.get_async_connection().await?;
                *slot = Some(fresh.clone());
                Ok(Conn::Cluster(fresh))
            }
        }
    }

    /// Forgets the cluster connection after a failure, so the next call maps the slots anew.
    async fn reset(&self) {
        if let Pool::Cluster(pool) = &self.pool {
            *pool.conn.lock().await = None;
        }
    }

    fn now_ms(&self) -> u64 {
        // Monotonic milliseconds since start, + 1 so that 0 means "up".
        self.started.elapsed().as_millis() as u64 + 1
    }

    /// Runs one Redis call within the timeout, skipping it while Redis is marked down.
    pub async fn call<T, F, Fut>(&self, what: &'static str, call: F) -> Result<T, SharedError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let down_until = self.down_until_ms.load(Ordering::Relaxed);
        if down_until != 0 && self.now_ms() < down_until {
            crate::metrics::redis_call(what, "skipped");
            return Err(SharedError::Down);
        }
        let result = tokio::time::timeout(self.timeout, async {
            let conn = self.conn().await?;
            call(conn).await
        })
        .await;
        crate::metrics::redis_call(
            what,
            match &result {
                Ok(Ok(_)) => "ok",
                Ok(Err(_)) => "error",
                Err(_) => "timeout",
            },
        );
        let error = match result {
            Ok(Ok(value)) => {
                if self.down_until_ms.swap(0, Ordering::Relaxed) != 0
                    && self.was_down.swap(false, Ordering::Relaxed)
                {
                    tracing::info!(op = what, "redis reachable again: shared state resumed");
                }
                return Ok(value);
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} ms", self.timeout.as_millis()),
        };
        self.reset().await;
        let until = self.now_ms() + self.retry_after.as_millis() as u64;
        self.down_until_ms.store(until, Ordering::Relaxed);
        if !self.was_down.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                op = what,
                error = %error,
                share_of_replicas = self.replicas(),
                "redis unavailable: each replica now spends only its share of every quota"
            );
        }
        Err(SharedError::Failed(error))
    }

    /// Gives back `give_back` unused cells of the GCRA quota `key` (interval `period`, `burst`),
    /// then takes up to `want` cells available now.
    pub async fn take_cells(
        &self,
        key: &str,
        period: Duration,
        burst: u32,
        want: u32,
        give_back: u32,
    ) -> Result<Cells, SharedError> {
        let mut invocation = self.gcra.key(key);
        invocation
            .arg(period.as_micros().max(1) as u64)
            .arg(burst.max(1))
            .arg(want)
            .arg(give_back);
        let (taken, wait, remaining, until_full): (i64, i64, i64, i64) = self
            .call("gcra", |mut conn| async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        let us = |v: i64| Duration::from_micros(v.max(0) as u64);
        Ok(Cells {
            taken: u32::try_from(taken.max(0)).unwrap_or(0),
            wait: us(wait),
            remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
            until_full: us(until_full),
        })
    }

    /// Admits one upstream call of provider instance `provider` (see [`ADMIT`]).
    pub async fn admit(&self, provider: &str, lease: &AdmitArgs) -> Result<Admission, SharedError> {
        let mut invocation = self.admit.key(self.key(provider, "pause"));
        invocation
            .key(self.key(provider, "leases"))
            .key(self.key(provider, "gcra"))
            .key(self.key(provider, "open"))
            .arg(&lease.lease_id)
            .arg(lease.max_leases)
            .arg(lease.lease.as_millis() as u64)
            .arg(lease.period.map_or(0, |p| p.as_micros().max(1) as u64))
            .arg(lease.burst.max(1))
            .arg(lease.max_wait.as_micros() as u64);
        let reply: Vec<i64> = self
            .call("admit", |mut conn| async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        let (verdict, ms) = match reply.as_slice() {
            [verdict, ms, ..] => (*verdict, *ms),
            _ => return Err(SharedError::Failed("admit: unexpected reply".into())),
        };
        let remaining = reply.get(2).and_then(|r| u32::try_from(*r).ok());
        let ms = Duration::from_millis(ms.max(0) as u64);
        Ok(match verdict {
            0 => Admission::Admitted {
                wait: ms,
                remaining,
            },
            1 => Admission::Paused(ms),
            2 => Admission::Busy(ms),
            4 => Admission::CircuitOpen(ms),
            _ => Admission::NoQuota(ms),
        })
    }

    /// Gives a lease back (best effort: an unreturned lease expires by itself).
    pub async fn release(&self, provider: &str, lease_id: &str) {
        let key = self.key(provider, "leases");
        let _ = self
            .call("release", |mut conn| async move {
                redis::cmd("ZREM")
                    .arg(&key)
                    .arg(lease_id)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await;
    }

    /// Pauses every replica's calls to `provider` for `pause` (a vendor's 429).
    pub async fn pause(&self, provider: &str, pause: Duration) -> Result<(), SharedError> {
        let mut invocation = self.pause.key(self.key(provider, "pause"));
        invocation.arg(pause.as_millis().max(1) as u64);
        self.call("pause", |mut conn| async move {
            invocation.invoke_async::<i64>(&mut conn).await
        })
        .await
        .map(|_| ())
    }

    /// Tells every replica that `provider`'s circuit breaker opened here for `open_for`: they
    /// refuse calls to it until then (each then probes on its own).
    pub async fn open_circuit(
        &self,
        provider: &str,
        open_for: Duration,
    ) -> Result<(), SharedError> {
        let mut invocation = self.pause.key(self.key(provider, "open"));
        invocation.arg(open_for.as_millis().max(1) as u64);
        self.call("open_circuit", |mut conn| async move {
            invocation.invoke_async::<i64>(&mut conn).await
        })
        .await
        .map(|_| ())
    }

    /// How long `provider` stays paused, from Redis.
    pub async fn paused_for(&self, provider: &str) -> Result<Option<Duration>, SharedError> {
        let key = self.key(provider, "pause");
        let ms: i64 = self
            .call("pttl", |mut conn| async move {
                redis::cmd("PTTL").arg(&key).query_async(&mut conn).await
            })
            .await?;
        Ok((ms > 0).then(|| Duration::from_millis(ms as u64)))
    }

    /// The shared cursor key: generated once by the first replica, then read by all.
    pub async fn cursor_key(&self) -> Result<Vec<u8>, SharedError> {
        let key = self.key("cursor", "hmac-key");
        let fresh = hex::encode(rand::random::<[u8; 32]>());
        let stored: String = self
            .call("cursor_key", |mut conn| async move {
                let _: Option<String> = redis::cmd("SET")
                    .arg(&key)
                    .arg(&fresh)
                    .arg("NX")
                    .query_async(&mut conn)
                    .await?;
                redis::cmd("GET").arg(&key).query_async(&mut conn).await
            })
            .await?;
        hex::decode(stored.trim())
            .map_err(|e| SharedError::Failed(format!("stored cursor key is not hex: {e}")))
    }

    /// Announces this replica and updates the live count.
    pub async fn heartbeat(&self) -> Result<u32, SharedError> {
        let mut invocation = self.heartbeat.key(self.key("replicas", "live"));
        invocation
            .arg(&self.replica_id)
            .arg(HEARTBEAT_STALE.as_millis() as u64);
        let count: i64 = self
            .call("heartbeat", |mut conn| async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        let count = u32::try_from(count.max(1)).unwrap_or(u32::MAX);
        self.live_replicas.store(count, Ordering::Relaxed);
        Ok(count)
    }

    /// Sends heartbeats for as long as the returned task runs.
    pub fn spawn_heartbeats(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let cluster = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(cluster) = cluster.upgrade() else {
                    return;
                };
                let _ = cluster.heartbeat().await;
            }
        })
    }

    /// Calls `on_message` with every message published on `channel`, for as long as the task
    /// runs; reconnects (after `retry_after`) whenever the subscription drops.
    pub fn spawn_subscriber(
        self: &Arc<Self>,
        channel: String,
        on_message: impl Fn(&str) + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        use futures_util::StreamExt;
        let cluster = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(this) = cluster.upgrade() else {
                    return;
                };
                let (client, retry_after) = (this.client.clone(), this.retry_after);
                drop(this);
                let subscribed = async {
                    let mut pubsub = client.get_async_pubsub().await?;
                    pubsub.subscribe(&channel).await?;
                    Ok::<_, redis::RedisError>(pubsub)
                };
                match subscribed.await {
                    Ok(pubsub) => {
                        let mut messages = pubsub.into_on_message();
                        while let Some(message) = messages.next().await {
                            if let Ok(text) = message.get_payload::<String>() {
                                on_message(&text);
                            }
                        }
                        tracing::warn!(%channel, "redis subscription ended: resubscribing");
                    }
                    Err(e) => {
                        tracing::debug!(%channel, error = %e, "redis subscription failed");
                    }
                }
                tokio::time::sleep(retry_after).await;
            }
        })
    }

    /// Whether Redis answers a PING now (readiness).
    pub async fn ping(&self) -> bool {
        // A probe ignores the down mark: readiness must see recovery at once.
        let result = tokio::time::timeout(self.timeout, async {
            let mut conn = self.conn().await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await
        })
        .await;
        matches!(result, Ok(Ok(_)))
    }
}

#[async_trait::async_trait]
impl crate::readiness::ReadinessCheck for Cluster {
    fn name(&self) -> &str {
        "redis"
    }

    async fn check(&self) -> Result<(), String> {
        if self.ping().await {
            Ok(())
        } else {
            Err(format!("no PONG within {} ms", self.timeout.as_millis()))
        }
    }
}

/// What one upstream call asks of the shared lane.
#[derive(Debug, Clone)]
pub struct AdmitArgs {
    /// This call's lease id (unique).
    pub lease_id: String,
    /// The cluster-wide concurrency cap (0: none).
    pub max_leases: u32,
    /// How long a lease lives if its replica never returns it.
    pub lease: Duration,
    /// The quota's emission interval, when there is a quota.
    pub period: Option<Duration>,
    /// The quota's burst.
    pub burst: u32,
    /// The longest wait for a reserved quota cell.
    pub max_wait: Duration,
}
