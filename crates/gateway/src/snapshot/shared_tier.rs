//! The second snapshot tier, in Redis, behind each replica's moka: a snapshot fetched by one
//! replica serves all, cursors into it work on every replica, and when several replicas miss
//! the same key at once exactly one of them fetches it (a lock with a lease; the others wait for
//! its result, or take over when the lease runs out).
//!
//! Keys (each object under its own hash tag, every script single-key):
//! - `{prefix}:{s:<key hash>}:cur` — the current snapshot of a [`SnapshotKey`]: `id:created_ms`,
//!   expiring with the snapshot's TTL;
//! - `{prefix}:{snap:<id>}:data` — a snapshot's records (JSON), kept for TTL + cursor lifetime so
//!   cursors into a replaced snapshot keep working on every replica;
//! - `{prefix}:{s:<key hash>}:lock` — the fetch lease;
//! - `{prefix}:{acct:<provider>:<account>}:keys` — key hashes of an account's snapshots, so a
//!   refresh can drop them all; the invalidation is also published on
//!   `{prefix}:invalidate` so every replica drops its local copies at once.
//!
//! A snapshot is stored as its canonical records in JSON, deflated (one version byte first):
//! typically a sixth of the JSON's size, and only misses pay for packing and unpacking.
//!
//! Redis failing never fails a read: the replica fetches on its own, as without Redis.

use std::sync::Arc;
use std::time::{Duration, Instant};

use provider::{RecordWarning, Scope, Transaction};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Snapshot, SnapshotKey};
use crate::cluster::{Cluster, SharedError};

/// How often a replica waiting for another's fetch looks for its result.
const POLL: Duration = Duration::from_millis(25);

/// The stored form of a snapshot.
#[derive(Deserialize)]
struct Stored {
    created_ms: u64,
    ttl_ms: u64,
    items: Vec<Transaction>,
    /// The record warnings of the pages the snapshot was read from (absent in entries written
    /// before warnings existed).
    #[serde(default)]
    warnings: Vec<RecordWarning>,
}

/// [`Stored`], written from a snapshot without copying its records.
#[derive(Serialize)]
struct StoredRef<'a> {
    created_ms: u64,
    ttl_ms: u64,
    items: &'a [Transaction],
    warnings: &'a [RecordWarning],
}

/// The current pointer of a key, or its fetch lock when nobody holds it (one round trip).
/// KEYS: current pointer, lock. ARGV: token, lease ms, 1 to pass over the pointer (its data is
/// gone). Returns `{pointer or false, 1 when the lock was taken}`.
const LOOKUP: &str = r"
if ARGV[3] ~= '1' then
  local pointer = redis.call('GET', KEYS[1])
  if pointer then return {pointer, 0} end
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {false, 1} end
return {false, 0}
";

/// The shared tier of one gateway.
pub struct SharedTier {
    cluster: Arc<Cluster>,
    cursor_lifetime: Duration,
    lookup: redis::Script,
}

/// What the shared tier says about a key on a local miss.
pub enum Lookup {
    /// Another replica's snapshot, still fresh.
    Found(Snapshot),
    /// This replica holds the fetch lease: fetch, then [`SharedTier::store`].
    Fetch(FetchLease),
}

/// The right (and duty) to fetch a key for every replica.
pub struct FetchLease {
    lock_key: String,
    token: String,
}

impl SharedTier {
    /// The tier over `cluster`; replaced snapshots stay readable for `cursor_lifetime`.
    pub fn new(cluster: Arc<Cluster>, cursor_lifetime: Duration) -> SharedTier {
        SharedTier {
            cluster,
            cursor_lifetime,
            lookup: redis::Script::new(LOOKUP),
        }
    }

    fn key_hash(key: &SnapshotKey) -> String {
        let text = serde_json::to_string(&(&*key.provider, &key.scope, key.range, key.direction))
            .unwrap_or_default();
        hex::encode(&Sha256::digest(text.as_bytes())[..12])
    }

    fn current_key(&self, hash: &str) -> String {
        self.cluster.key(&format!("s:{hash}"), "cur")
    }

    fn lock_key(&self, hash: &str) -> String {
        self.cluster.key(&format!("s:{hash}"), "lock")
    }

    fn data_key(&self, id: u64) -> String {
        self.cluster.key(&format!("snap:{id:016x}"), "data")
    }

    fn account_key(&self, provider: &str, account: &str) -> String {
        self.cluster
            .key(&format!("acct:{provider}:{account}"), "keys")
    }

    /// A snapshot stored by any replica, by id (for cursors).
    pub async fn by_id(&self, key: &SnapshotKey, id: u64) -> Option<Snapshot> {
        let data_key = self.data_key(id);
        let bytes: Option<Vec<u8>> = self
            .cluster
            .call("snapshot_get", |mut conn| async move {
                redis::cmd("GET")
                    .arg(&data_key)
                    .query_async(&mut conn)
                    .await
            })
            .await
            .ok()?;
        decode(key, id, &bytes?)
    }

    /// Whether a replica holds the lease to fetch `key` now (`false` when Redis cannot say).
    pub async fn filling(&self, key: &SnapshotKey) -> bool {
        let lock_key = self.lock_key(&Self::key_hash(key));
        self.cluster
            .call("snapshot_filling", |mut conn| async move {
                redis::cmd("EXISTS")
                    .arg(&lock_key)
                    .query_async::<bool>(&mut conn)
                    .await
            })
            .await
            .unwrap_or(false)
    }

    /// On a local miss: another replica's fresh snapshot, or the lease to fetch it. Waits
    /// (polling) while another replica fetches, up to `wait`; `Err` when Redis cannot help.
    pub async fn lookup(
        &self,
        key: &SnapshotKey,
        lease: Duration,
        wait: Duration,
    ) -> Result<Lookup, SharedError> {
        let hash = Self::key_hash(key);
        let (current_key, lock_key) = (self.current_key(&hash), self.lock_key(&hash));
        let token = format!("{}:{:x}", self.cluster.replica_id(), rand::random::<u64>());
        let give_up = Instant::now() + wait;
        // A pointer whose data is gone (evicted by Redis) is passed over: fetch anew.
        let mut dangling = false;
        loop {
            // One round trip: the current pointer, or the lock if nobody holds it.
            let mut invocation = self.lookup.key(&current_key);
            invocation
                .key(&lock_key)
                .arg(&token)
                .arg(lease.as_millis().max(1) as u64)
                .arg(u8::from(dangling));
            let (pointer, locked): (Option<String>, i64) = self
                .cluster
                .call("snapshot_lookup", |mut conn| async move {
                    invocation.invoke_async(&mut conn).await
                })
                .await?;
            let locked = (locked == 1).then_some(());
            if let Some(pointer) = pointer {
                let id = pointer
                    .split(':')
                    .next()
                    .and_then(|id| u64::from_str_radix(id, 16).ok());
                if let Some(snapshot) = match id {
                    Some(id) => self.by_id(key, id).await,
                    None => None,
                } {
                    return Ok(Lookup::Found(snapshot));
                }
                dangling = true;
                continue;
            }
            if locked.is_some() {
                return Ok(Lookup::Fetch(FetchLease {
                    lock_key: lock_key.clone(),
                    token,
                }));
            }
            if Instant::now() + POLL > give_up {
                return Err(SharedError::Failed(
                    "another replica's fetch did not finish in time".into(),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stores a snapshot fetched under `lease` for every replica, and frees the lease.
    pub async fn store(&self, snapshot: &Snapshot, lease: FetchLease) {
        let hash = Self::key_hash(&snapshot.key);
        let stored = StoredRef {
            created_ms: crate::cluster::unix_ms().saturating_sub(snapshot.age().as_millis() as u64),
            ttl_ms: snapshot.ttl.as_millis() as u64,
            items: &snapshot.items,
            warnings: &snapshot.warnings,
        };
        let Some(bytes) = encode(&stored) else {
            return;
        };
        let ttl_ms = snapshot.remaining_ttl().as_millis().max(1) as u64;
        let keep_ms = ttl_ms + self.cursor_lifetime.as_millis() as u64;
        let (data_key, current_key) = (self.data_key(snapshot.id), self.current_key(&hash));
        let pointer = format!("{:016x}:{}", snapshot.id, stored.created_ms);
        let account = match &snapshot.key.scope {
            Scope::Account(account) => Some(self.account_key(&snapshot.key.provider, account)),
            _ => None,
        };
        let (lock_key, token) = (lease.lock_key, lease.token);
        let _ = self
            .cluster
            .call("snapshot_store", |mut conn| async move {
                // Data before pointer (a reader never finds a pointer without its data), in
                // one round trip on a single Redis (a cluster takes them one by one: their
                // keys live on different slots); then the lease is given back.
                let mut pipe = redis::pipe();
                pipe.cmd("SET")
                    .arg(&data_key)
                    .arg(bytes)
                    .arg("PX")
                    .arg(keep_ms)
                    .ignore()
                    .cmd("SET")
                    .arg(&current_key)
                    .arg(&pointer)
                    .arg("PX")
                    .arg(ttl_ms)
                    .ignore();
                if let Some(account) = &account {
                    pipe.cmd("SADD")
                        .arg(account)
                        .arg(&hash)
                        .ignore()
                        .cmd("PEXPIRE")
                        .arg(account)
                        .arg(keep_ms)
                        .ignore();
                }
                if matches!(conn, crate::cluster::Conn::Cluster(_)) {
                    for command in pipe.cmd_iter() {
                        command.query_async::<()>(&mut conn).await?;
                    }
                } else {
                    pipe.query_async::<()>(&mut conn).await?;
                }
                release(&mut conn, &lock_key, &token).await
            })
            .await;
    }

    /// Gives up a lease without a result (the fetch failed): the next replica may try.
    pub async fn abandon(&self, lease: FetchLease) {
        let (lock_key, token) = (lease.lock_key, lease.token);
        let _ = self
            .cluster
            .call("snapshot_abandon", |mut conn| async move {
                release(&mut conn, &lock_key, &token).await
            })
            .await;
    }

    /// Drops every replica's current snapshots of an account (after a refresh): the shared
    /// pointers now, the local copies through the `invalidate` channel.
    pub async fn invalidate_account(&self, provider: &str, account: &str) {
        let account_key = self.account_key(provider, account);
        let hashes: Vec<String> = self
            .cluster
            .call("invalidate_list", |mut conn| async move {
                redis::cmd("SMEMBERS")
                    .arg(&account_key)
                    .query_async(&mut conn)
                    .await
            })
            .await
            .unwrap_or_default();
        for hash in hashes {
            let current_key = self.current_key(&hash);
            let _ = self
                .cluster
                .call("invalidate", |mut conn| async move {
                    redis::cmd("DEL")
                        .arg(&current_key)
                        .query_async::<i64>(&mut conn)
                        .await
                })
                .await;
        }
        let channel = self.invalidate_channel();
        let message = invalidation_message(provider, account);
        let _ = self
            .cluster
            .call("invalidate_publish", |mut conn| async move {
                redis::cmd("PUBLISH")
                    .arg(&channel)
                    .arg(&message)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await;
    }

    /// The channel on which refreshes announce an account's snapshots are gone.
    pub fn invalidate_channel(&self) -> String {
        format!("{}:invalidate", self.cluster.key("bus", "events"))
    }

    /// The cluster.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }
}

/// `provider\u{1f}account`.
fn invalidation_message(provider: &str, account: &str) -> String {
    format!("{provider}\u{1f}{account}")
}

/// Reads an invalidation message back.
pub fn parse_invalidation(message: &str) -> Option<(&str, &str)> {
    message.split_once('\u{1f}')
}

async fn release(
    conn: &mut crate::cluster::Conn,
    lock_key: &str,
    token: &str,
) -> redis::RedisResult<()> {
    // Only the holder frees the lock (it may have expired and been taken over).
    redis::Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
    )
    .key(lock_key)
    .arg(token)
    .invoke_async::<i64>(conn)
    .await
    .map(|_| ())
}

/// The stored form's version byte.
const FORMAT: u8 = 1;

fn encode(stored: &StoredRef<'_>) -> Option<Vec<u8>> {
    use std::io::Write;
    let json = serde_json::to_vec(stored).ok()?;
    let mut out = vec![FORMAT];
    let mut encoder = flate2::write::DeflateEncoder::new(&mut out, flate2::Compression::fast());
    encoder.write_all(&json).ok()?;
    encoder.finish().ok()?;
    Some(out)
}

fn decode(key: &SnapshotKey, id: u64, bytes: &[u8]) -> Option<Snapshot> {
    let (&FORMAT, packed) = bytes.split_first()? else {
        return None;
    };
    let stored: Stored = serde_json::from_reader(flate2::read::DeflateDecoder::new(packed)).ok()?;
    let age = Duration::from_millis(crate::cluster::unix_ms().saturating_sub(stored.created_ms));
    let now = tokio::time::Instant::now();
    let created = now.checked_sub(age).unwrap_or(now);
    Some(Snapshot::restored(
        id,
        key.clone(),
        stored.items,
        stored.warnings,
        created,
        Duration::from_millis(stored.ttl_ms),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use provider::{DateRange, RecordWarning, WarningCode};

    #[test]
    fn a_stored_snapshot_keeps_its_record_warnings_and_old_entries_read_as_none() {
        let key = SnapshotKey {
            provider: Arc::from("okra"),
            scope: Scope::Account("acc1".into()),
            range: DateRange::default(),
            direction: None,
        };
        let warning = RecordWarning::field_ignored("tx1", "value_date", "bad", Some("\"x\""));
        let warnings = [warning.clone()];
        let stored = StoredRef {
            created_ms: crate::cluster::unix_ms(),
            ttl_ms: 60_000,
            items: &[],
            warnings: &warnings,
        };
        let bytes = encode(&stored).unwrap_or_default();
        let snapshot = decode(&key, 7, &bytes).map(|s| s.warnings);
        assert_eq!(snapshot, Some(vec![warning]));
        assert_eq!(
            snapshot.unwrap_or_default()[0].code,
            WarningCode::FieldIgnored
        );
        // Written by a replica that predates warnings: none, not an unreadable entry.
        let old = {
            use std::io::Write;
            let mut out = vec![FORMAT];
            let mut packer =
                flate2::write::DeflateEncoder::new(&mut out, flate2::Compression::fast());
            let _ = packer.write_all(br#"{"created_ms": 1, "ttl_ms": 1, "items": []}"#);
            let _ = packer.finish();
            out
        };
        assert_eq!(decode(&key, 8, &old).map(|s| s.warnings), Some(Vec::new()));
    }
}
