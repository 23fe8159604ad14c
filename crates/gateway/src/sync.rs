//! Delta sync's state: a version history per (provider, account), so a caller can ask what was
//! added, modified and removed since its last call, for every provider (even those that only
//! list).
//!
//! Each snapshot of a whole account (no date or direction filter) that the gateway builds is
//! *observed*: its records' fingerprints (provider transaction id -> the first 8 bytes of the
//! SHA-256 of the canonical record as the API writes it, without `raw`) are compared with the
//! latest version's. Equal: nothing is recorded (a version is a state, not a read). Different: a
//! new version is appended with its diff to the previous one, one entry per changed record with
//! its hash before and after. The changes between any two kept versions are the composition of
//! the diffs between them ([`compose`]), so a cursor names a version, not a copy of the data.
//!
//! What is kept, and for how long (`[sync]`):
//! - per account: the latest fingerprints (one hash per record) and at most `max_versions`
//!   diffs, none older than `retention_secs` (default 30 days). A cursor naming a version whose
//!   later diffs were dropped, or a history that no longer exists (its `epoch` differs), is a
//!   410 `sync_cursor_expired`;
//! - without `[redis]`: in this process, all histories together within `max_memory_bytes` (the
//!   least recently used account's history goes first); a restart starts new histories;
//! - with `[redis]`: three keys per account under one hash tag, `{prefix}:{sync:<hash of
//!   provider and account>}:meta|fp|diffs`, expiring `retention_secs` after the account's last
//!   observation (about 110 bytes per transaction in `fp`, measured on Redis 7, plus the kept
//!   diffs); a version is appended by one script that checks the version it was computed
//!   from (compare-and-set), so replicas never fork a history. Shared by every replica and
//!   surviving restarts.
//!
//! The history follows snapshots in the order they are observed; it never reads a provider.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use provider::{Scope, Transaction};
use redis::Script;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::api::views::TxView;
use crate::cluster::{Cluster, SharedError};
use crate::config::SyncSection;
use crate::notify::Notifier;
use crate::snapshot::{Snapshot, SnapshotObserver};

/// The `type` of the notification sent when an account has changes to sync.
pub const SYNC_AVAILABLE: &str = "transactions.sync_available";

/// Provider transaction id -> content hash.
pub type Fingerprints = HashMap<String, u64>;

/// The content hash of a canonical record: SHA-256 of its API JSON (without `raw`), first 8
/// bytes. Stable across processes and versions of Rust (unlike `DefaultHasher`).
pub fn content_hash(tx: &Transaction) -> u64 {
    let json = serde_json::to_vec(&TxView {
        tx,
        include_raw: false,
    })
    .unwrap_or_default();
    let digest = Sha256::digest(&json);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The fingerprints of a snapshot's records.
pub fn fingerprints(items: &[Transaction]) -> Fingerprints {
    items
        .iter()
        .map(|t| (t.provider_transaction_id.clone(), content_hash(t)))
        .collect()
}

/// One record's change in one version: its hash before and after (`None`: absent).
pub type Entry = (String, Option<u64>, Option<u64>);

/// The entries that turn `old` into `new`, by id.
pub fn diff(old: &Fingerprints, new: &Fingerprints) -> Vec<Entry> {
    let mut entries: Vec<Entry> = new
        .iter()
        .filter(|(id, hash)| old.get(*id) != Some(*hash))
        .map(|(id, hash)| (id.clone(), old.get(id).copied(), Some(*hash)))
        .chain(
            old.iter()
                .filter(|(id, _)| !new.contains_key(*id))
                .map(|(id, hash)| (id.clone(), Some(*hash), None)),
        )
        .collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    entries
}

/// The changes between two versions, each list sorted by provider transaction id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// Ids present now and not then.
    pub added: Vec<String>,
    /// Ids present both times with different content.
    pub modified: Vec<String>,
    /// Ids present then and not now.
    pub removed: Vec<String>,
}

impl ChangeSet {
    /// How many changes in all.
    pub fn len(&self) -> usize {
        self.added.len() + self.modified.len() + self.removed.len()
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The net effect of consecutive diffs (oldest first): a record's state before is the first
/// diff's `old` that mentions it, its state after the last one's `new`.
pub fn compose<'a>(diffs: impl IntoIterator<Item = &'a [Entry]>) -> ChangeSet {
    let mut net: HashMap<&str, (Option<u64>, Option<u64>)> = HashMap::new();
    for diff in diffs {
        for (id, old, new) in diff {
            net.entry(id.as_str())
                .and_modify(|e| e.1 = *new)
                .or_insert((*old, *new));
        }
    }
    let mut changes = ChangeSet::default();
    for (id, (before, after)) in net {
        match (before, after) {
            (None, Some(_)) => changes.added.push(id.to_owned()),
            (Some(_), None) => changes.removed.push(id.to_owned()),
            (Some(a), Some(b)) if a != b => changes.modified.push(id.to_owned()),
            _ => {}
        }
    }
    changes.added.sort_unstable();
    changes.modified.sort_unstable();
    changes.removed.sort_unstable();
    changes
}

/// Where a history stands: its identity and latest version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Random per history: a cursor from a history that was dropped (and begun again) is
    /// refused instead of being read against another one.
    pub epoch: u64,
    /// The latest version (1 is the first snapshot seen).
    pub version: u64,
}

/// Why the history cannot answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HistoryError {
    /// The versions asked for are no longer kept.
    #[error("{0}")]
    Expired(String),
    /// The shared history (Redis) cannot be reached.
    #[error("{0}")]
    Unavailable(String),
}

impl From<SharedError> for HistoryError {
    fn from(e: SharedError) -> Self {
        HistoryError::Unavailable(e.to_string())
    }
}

/// How much history is kept.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Diffs older than this (seconds) are dropped.
    pub retention_secs: u64,
    /// At most this many diffs per account.
    pub max_versions: u64,
}

/// One version's diff, with when it was recorded (Unix seconds).
#[derive(Debug, Clone)]
struct StoredDiff {
    at: u64,
    entries: Vec<Entry>,
}

/// One account's history, in memory.
#[derive(Debug, Clone)]
pub struct History {
    epoch: u64,
    version: u64,
    /// The oldest version a cursor may name (the diffs after it are all kept).
    floor: u64,
    /// The last snapshot observed (observing it again is free).
    snapshot_id: u64,
    fingerprints: Fingerprints,
    /// The diffs of versions `floor + 1 ..= version`, oldest first.
    diffs: VecDeque<StoredDiff>,
}

impl History {
    /// A history whose first version is `fingerprints`.
    pub fn new(snapshot_id: u64, fingerprints: Fingerprints) -> History {
        History {
            epoch: new_epoch(),
            version: 1,
            floor: 1,
            snapshot_id,
            fingerprints,
            diffs: VecDeque::new(),
        }
    }

    /// Where it stands.
    pub fn head(&self) -> Head {
        Head {
            epoch: self.epoch,
            version: self.version,
        }
    }

    /// Records `fingerprints` as the latest state: a new version when they differ (returns its
    /// change counts), nothing otherwise. Drops what `bounds` no longer keep.
    pub fn observe(
        &mut self,
        snapshot_id: u64,
        fingerprints: Fingerprints,
        now: u64,
        bounds: Bounds,
    ) -> Option<ChangeSet> {
        if snapshot_id == self.snapshot_id {
            return None;
        }
        self.snapshot_id = snapshot_id;
        let entries = diff(&self.fingerprints, &fingerprints);
        if entries.is_empty() {
            return None;
        }
        let changes = compose([entries.as_slice()]);
        self.fingerprints = fingerprints;
        self.version += 1;
        self.diffs.push_back(StoredDiff { at: now, entries });
        self.prune(now, bounds);
        Some(changes)
    }

    /// Drops diffs older than the retention or beyond the count, oldest first.
    pub fn prune(&mut self, now: u64, bounds: Bounds) {
        let oldest = now.saturating_sub(bounds.retention_secs);
        while let Some(first) = self.diffs.front() {
            if first.at >= oldest && self.diffs.len() as u64 <= bounds.max_versions {
                break;
            }
            self.diffs.pop_front();
            self.floor += 1;
        }
    }

    /// The changes from version `from` to `to` of history `epoch`.
    pub fn changes(&self, epoch: u64, from: u64, to: u64) -> Result<ChangeSet, HistoryError> {
        check_range(epoch, from, to, self.epoch, self.floor, self.version)?;
        let skip = (from - self.floor) as usize;
        let take = (to - from) as usize;
        Ok(compose(
            self.diffs
                .iter()
                .skip(skip)
                .take(take)
                .map(|d| d.entries.as_slice()),
        ))
    }

    fn weight(&self) -> u32 {
        let fps: usize = self.fingerprints.keys().map(|k| k.len() + 56).sum();
        let diffs: usize = self
            .diffs
            .iter()
            .flat_map(|d| d.entries.iter())
            .map(|e| e.0.len() + 56)
            .sum();
        u32::try_from(fps + diffs + 256).unwrap_or(u32::MAX)
    }
}

fn check_range(
    epoch: u64,
    from: u64,
    to: u64,
    current_epoch: u64,
    floor: u64,
    version: u64,
) -> Result<(), HistoryError> {
    if epoch != current_epoch || to > version || from > to {
        return Err(HistoryError::Expired(
            "this cursor names a version history the gateway no longer keeps".into(),
        ));
    }
    if from < floor {
        return Err(HistoryError::Expired(format!(
            "the changes after version {from} are past retention (the oldest version kept is {floor})"
        )));
    }
    Ok(())
}

fn new_epoch() -> u64 {
    // Below 2^53, so it survives any JSON or Lua number on its way.
    (rand::random::<u64>() >> 11).max(1)
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The account a snapshot covers in full (no filters), if it is one: only those are versions.
pub fn whole_account(snapshot: &Snapshot) -> Option<&str> {
    match &snapshot.key.scope {
        Scope::Account(account)
            if snapshot.key.range == Default::default() && snapshot.key.direction.is_none() =>
        {
            Some(account)
        }
        _ => None,
    }
}

/// Appends a version if it was computed from the latest (compare-and-set), then prunes.
///
/// KEYS: meta (hash), fp (hash id -> hash), diffs (hash version -> `at|json`). ARGV: expected
/// version (0: none yet), epoch for a new history, snapshot id, digest, now (s), retention (s),
/// max versions, the diff's JSON (empty for the first version), n, then n (id, hash) pairs to
/// set, then ids to delete. Returns `{1, version, epoch}`, or `{0, current version, ''}`.
const APPEND: &str = r"
local cur = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if cur ~= tonumber(ARGV[1]) then return {0, cur, ''} end
local v = cur + 1
local epoch = redis.call('HGET', KEYS[1], 'epoch') or ARGV[2]
local floor = tonumber(redis.call('HGET', KEYS[1], 'floor') or tostring(v))
local nset = tonumber(ARGV[9])
local i = 10
for k = 1, nset do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('HDEL', KEYS[2], ARGV[i])
  i = i + 1
end
if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[3], tostring(v), ARGV[5] .. '|' .. ARGV[8])
end
local oldest = tonumber(ARGV[5]) - tonumber(ARGV[6])
local max = tonumber(ARGV[7])
while floor < v do
  local d = redis.call('HGET', KEYS[3], tostring(floor + 1))
  local at = 0
  if d then at = tonumber(string.match(d, '^(%d+)|')) or 0 end
  if d and at >= oldest and (v - floor) <= max then break end
  redis.call('HDEL', KEYS[3], tostring(floor + 1))
  floor = floor + 1
end
redis.call('HSET', KEYS[1], 'version', v, 'epoch', epoch, 'floor', floor, 'snap', ARGV[3], 'digest', ARGV[4])
for k = 1, 3 do redis.call('EXPIRE', KEYS[k], tonumber(ARGV[6])) end
return {1, v, epoch}
";

/// Marks `snap` observed when the content is unchanged, and keeps the history alive.
/// KEYS: meta, fp, diffs. ARGV: version seen, snapshot id, retention (s). Returns 1, or 0 when
/// the version moved meanwhile.
const TOUCH: &str = r"
if tonumber(redis.call('HGET', KEYS[1], 'version') or '0') ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'snap', ARGV[2])
for k = 1, 3 do redis.call('EXPIRE', KEYS[k], tonumber(ARGV[3])) end
return 1
";

/// The histories in Redis.
struct RedisHistories {
    cluster: Arc<Cluster>,
    append: Script,
    touch: Script,
}

/// A digest of a whole set of fingerprints (order-independent).
fn digest(fps: &Fingerprints) -> String {
    let mut pairs: Vec<(&String, &u64)> = fps.iter().collect();
    pairs.sort_unstable();
    let mut hasher = Sha256::new();
    for (id, hash) in pairs {
        hasher.update((id.len() as u64).to_be_bytes());
        hasher.update(id.as_bytes());
        hasher.update(hash.to_be_bytes());
    }
    hex::encode(&hasher.finalize()[..16])
}

impl RedisHistories {
    fn keys(&self, provider: &str, account: &str) -> [String; 3] {
        let mut hasher = Sha256::new();
        hasher.update((provider.len() as u64).to_be_bytes());
        hasher.update(provider.as_bytes());
        hasher.update(account.as_bytes());
        let tag = format!("sync:{}", hex::encode(&hasher.finalize()[..12]));
        [
            self.cluster.key(&tag, "meta"),
            self.cluster.key(&tag, "fp"),
            self.cluster.key(&tag, "diffs"),
        ]
    }

    async fn meta(&self, meta_key: &str) -> Result<Meta, HistoryError> {
        let key = meta_key.to_owned();
        let (epoch, version, floor, snap, digest): MetaFields = self
            .cluster
            .call("sync_meta", |mut conn| async move {
                redis::cmd("HMGET")
                    .arg(&key)
                    .arg(&["epoch", "version", "floor", "snap", "digest"])
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        Ok(Meta {
            epoch: epoch.unwrap_or(0),
            version: version.unwrap_or(0),
            floor: floor.unwrap_or(0),
            snap: snap.unwrap_or(0),
            digest: digest.unwrap_or_default(),
        })
    }

    async fn observe(
        &self,
        provider: &str,
        account: &str,
        snapshot_id: u64,
        items: &[Transaction],
        bounds: Bounds,
    ) -> Result<(Head, Option<ChangeSet>), HistoryError> {
        let keys = self.keys(provider, account);
        let mut hashed: Option<(Fingerprints, String)> = None;
        for _ in 0..4 {
            let meta = self.meta(&keys[0]).await?;
            let head = Head {
                epoch: meta.epoch,
                version: meta.version,
            };
            if meta.version > 0 && meta.snap == snapshot_id {
                return Ok((head, None));
            }
            let (fps, new_digest) = hashed.get_or_insert_with(|| {
                let fps = fingerprints(items);
                let digest = digest(&fps);
                (fps, digest)
            });
            let (fps, new_digest) = (&*fps, new_digest.as_str());
            if meta.version > 0 && meta.digest == new_digest {
                let mut call = self.touch.key(&keys[0]);
                call.key(&keys[1])
                    .key(&keys[2])
                    .arg(meta.version)
                    .arg(snapshot_id)
                    .arg(bounds.retention_secs);
                let done: i64 = self
                    .cluster
                    .call("sync_touch", |mut conn| async move {
                        call.invoke_async(&mut conn).await
                    })
                    .await?;
                if done == 1 {
                    return Ok((head, None));
                }
                continue;
            }
            let (entries, changes) = if meta.version == 0 {
                let entries: Vec<Entry> = fps
                    .iter()
                    .map(|(id, h)| (id.clone(), None, Some(*h)))
                    .collect();
                (entries, None)
            } else {
                let fp_key = keys[1].clone();
                let stored: HashMap<String, u64> = self
                    .cluster
                    .call("sync_fingerprints", |mut conn| async move {
                        redis::cmd("HGETALL")
                            .arg(&fp_key)
                            .query_async(&mut conn)
                            .await
                    })
                    .await?;
                let entries = diff(&stored, fps);
                let changes = compose([entries.as_slice()]);
                (entries, Some(changes))
            };
            let diff_json = if meta.version == 0 {
                String::new()
            } else {
                serde_json::to_string(&entries)
                    .map_err(|e| HistoryError::Unavailable(e.to_string()))?
            };
            let sets: Vec<(&String, u64)> = entries
                .iter()
                .filter_map(|(id, _, new)| new.map(|h| (id, h)))
                .collect();
            let mut call = self.append.key(&keys[0]);
            call.key(&keys[1])
                .key(&keys[2])
                .arg(meta.version)
                .arg(new_epoch())
                .arg(snapshot_id)
                .arg(new_digest)
                .arg(unix_secs())
                .arg(bounds.retention_secs)
                .arg(bounds.max_versions)
                .arg(diff_json)
                .arg(sets.len());
            for (id, hash) in &sets {
                call.arg(id.as_str()).arg(*hash);
            }
            for (id, _, new) in &entries {
                if new.is_none() {
                    call.arg(id.as_str());
                }
            }
            let (ok, version, epoch): (i64, u64, String) = self
                .cluster
                .call("sync_append", |mut conn| async move {
                    call.invoke_async(&mut conn).await
                })
                .await?;
            if ok == 1 {
                let head = Head {
                    epoch: epoch.parse().unwrap_or(0),
                    version,
                };
                return Ok((head, changes));
            }
            // Another replica appended meanwhile: compare with its version.
        }
        Err(HistoryError::Unavailable(
            "the history kept changing while this replica recorded a version".into(),
        ))
    }

    async fn changes(
        &self,
        provider: &str,
        account: &str,
        epoch: u64,
        from: u64,
        to: u64,
    ) -> Result<ChangeSet, HistoryError> {
        let keys = self.keys(provider, account);
        let meta = self.meta(&keys[0]).await?;
        check_range(epoch, from, to, meta.epoch, meta.floor, meta.version)?;
        if from == to {
            return Ok(ChangeSet::default());
        }
        let fields: Vec<u64> = (from + 1..=to).collect();
        let diffs_key = keys[2].clone();
        let stored: Vec<Option<String>> = self
            .cluster
            .call("sync_diffs", |mut conn| async move {
                redis::cmd("HMGET")
                    .arg(&diffs_key)
                    .arg(&fields)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let mut diffs = Vec::with_capacity(stored.len());
        for text in stored {
            let parsed = text
                .as_deref()
                .and_then(|t| t.split_once('|'))
                .and_then(|(_, json)| serde_json::from_str::<Vec<Entry>>(json).ok());
            match parsed {
                Some(entries) => diffs.push(entries),
                None => {
                    return Err(HistoryError::Expired(
                        "the changes after this cursor's version are past retention".into(),
                    ));
                }
            }
        }
        Ok(compose(diffs.iter().map(Vec::as_slice)))
    }
}

type MetaFields = (
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Option<String>,
);

struct Meta {
    epoch: u64,
    version: u64,
    floor: u64,
    snap: u64,
    digest: String,
}

type AccountKey = (Arc<str>, String);

enum Backend {
    Memory(moka::sync::Cache<AccountKey, Arc<Mutex<History>>>),
    Redis(RedisHistories),
}

/// Every account's version history, and the notifications sent when one changes.
pub struct SyncHistory {
    backend: Backend,
    bounds: Bounds,
    notifier: Option<Notifier>,
    /// The gateway, to read a refreshed account again (set once at start).
    app: std::sync::OnceLock<std::sync::Weak<crate::state::AppState>>,
}

impl std::fmt::Debug for SyncHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncHistory")
            .field("bounds", &self.bounds)
            .finish_non_exhaustive()
    }
}

impl SyncHistory {
    /// Histories in this process (`cluster` is `None`) or in Redis; `notifier` tells clients of
    /// new versions.
    pub fn new(
        config: &SyncSection,
        cluster: Option<Arc<Cluster>>,
        notifier: Option<Notifier>,
    ) -> SyncHistory {
        let bounds = Bounds {
            retention_secs: config.retention_secs,
            max_versions: u64::from(config.max_versions),
        };
        let backend = match cluster {
            Some(cluster) => Backend::Redis(RedisHistories {
                cluster,
                append: Script::new(APPEND),
                touch: Script::new(TOUCH),
            }),
            None => Backend::Memory(
                moka::sync::Cache::builder()
                    .max_capacity(config.max_memory_bytes)
                    .weigher(|_, h: &Arc<Mutex<History>>| h.lock().map(|h| h.weight()).unwrap_or(1))
                    .time_to_idle(Duration::from_secs(config.retention_secs))
                    .build(),
            ),
        };
        SyncHistory {
            backend,
            bounds,
            notifier,
            app: std::sync::OnceLock::new(),
        }
    }

    /// Records `snapshot` (a whole account's) as the latest state of its account and returns
    /// where the history stands with it; notifies clients when it is a new version with changes.
    pub async fn observe(&self, snapshot: &Snapshot) -> Result<Head, HistoryError> {
        let Some(account) = whole_account(snapshot) else {
            return Err(HistoryError::Expired(
                "only whole-account snapshots are versions".into(),
            ));
        };
        let provider = snapshot.key.provider.clone();
        let (head, changes) = match &self.backend {
            Backend::Memory(cache) => {
                let key = (provider.clone(), account.to_owned());
                let now = unix_secs();
                // The snapshot seen last (the common case of a sync call): nothing to hash.
                if let Some(history) = cache.get(&key) {
                    let history = history.lock().unwrap_or_else(|e| e.into_inner());
                    if history.snapshot_id == snapshot.id {
                        return Ok(history.head());
                    }
                }
                let fps = fingerprints(&snapshot.items);
                let entry = cache.entry(key.clone()).or_insert_with(|| {
                    Arc::new(Mutex::new(History::new(snapshot.id, fps.clone())))
                });
                let fresh = entry.is_fresh();
                let entry = entry.into_value();
                let (head, changes) = {
                    let mut history = entry.lock().unwrap_or_else(|e| e.into_inner());
                    if fresh {
                        // Just made: this snapshot is its first version.
                        (history.head(), None)
                    } else {
                        let changes = history.observe(snapshot.id, fps, now, self.bounds);
                        (history.head(), changes)
                    }
                };
                // Weighed again now that it may have grown.
                cache.insert(key, entry);
                (head, changes)
            }
            Backend::Redis(redis) => {
                redis
                    .observe(
                        &provider,
                        account,
                        snapshot.id,
                        &snapshot.items,
                        self.bounds,
                    )
                    .await?
            }
        };
        if let Some(changes) = changes.filter(|c| !c.is_empty()) {
            tracing::info!(
                provider = %provider,
                account,
                version = head.version,
                added = changes.added.len(),
                modified = changes.modified.len(),
                removed = changes.removed.len(),
                "sync version recorded"
            );
            self.notify(&provider, account);
        }
        Ok(head)
    }

    /// The changes of `provider`'s `account` from version `from` to `to` of history `epoch`.
    pub async fn changes(
        &self,
        provider: &str,
        account: &str,
        epoch: u64,
        from: u64,
        to: u64,
    ) -> Result<ChangeSet, HistoryError> {
        match &self.backend {
            Backend::Memory(cache) => {
                let key: AccountKey = (Arc::from(provider), account.to_owned());
                let history = cache.get(&key).ok_or_else(|| {
                    HistoryError::Expired("this account's version history is no longer kept".into())
                })?;
                let history = history.lock().unwrap_or_else(|e| e.into_inner());
                history.changes(epoch, from, to)
            }
            Backend::Redis(redis) => redis.changes(provider, account, epoch, from, to).await,
        }
    }

    fn notify(&self, provider: &str, account: &str) {
        #[derive(Serialize)]
        struct SyncAvailable<'a> {
            provider: &'a str,
            account_id: &'a str,
            sync_path: String,
        }
        let Some(notifier) = &self.notifier else {
            return;
        };
        let data = SyncAvailable {
            provider,
            account_id: account,
            sync_path: format!("/v1/accounts/{account}/transactions/sync?provider={provider}"),
        };
        for client in notifier.clients() {
            notifier.notify(client, SYNC_AVAILABLE, &data);
        }
    }

    /// Lets [`after_refresh`](Self::after_refresh) reach the gateway's cache and providers.
    pub fn attach(&self, app: std::sync::Weak<crate::state::AppState>) {
        let _ = self.app.set(app);
    }

    /// After a refresh dropped an account's snapshots: when some client waits for
    /// `transactions.sync_available`, reads the account again in the background (through the
    /// normal cache: single flight, quotas), so a change is recorded and notified now rather
    /// than at the next read. Without webhook clients the next read records it.
    pub fn after_refresh(&self, provider: &str, account: &str) {
        let wanted = self
            .notifier
            .as_ref()
            .is_some_and(|n| n.clients().next().is_some());
        let app = self.app.get().and_then(std::sync::Weak::upgrade);
        let (true, Some(app), Ok(runtime)) = (wanted, app, tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let (provider, account) = (provider.to_owned(), account.to_owned());
        runtime.spawn(async move {
            let Some(entry) = app.registry.get(&provider) else {
                return;
            };
            // With Redis the refresh dropped the shared pointer in the background: drop it here
            // first, so this read cannot find the old snapshot there.
            if let Some(shared) = app.snapshots.shared() {
                shared.invalidate_account(&provider, &account).await;
            }
            let query = provider::TransactionQuery::new(Scope::Account(account));
            let read = app.within_deadline(async {
                match app.snapshots.get_or_fetch(entry, &query).await {
                    Ok((snapshot, _)) => app
                        .sync
                        .observe(&snapshot)
                        .await
                        .map(|_| ())
                        .map_err(|e| crate::error::ApiError::Internal(e.to_string())),
                    Err(
                        e @ (crate::snapshot::FetchError::Provider(_)
                        | crate::snapshot::FetchError::Busy(_)),
                    ) => Err(e.into_api()),
                    Err(crate::snapshot::FetchError::TooLarge { .. }) => Ok(()),
                }
            });
            if let Err(error) = read.await {
                tracing::warn!(%provider, %error, "refreshed account not read again for sync");
            }
        });
    }

    /// The hook the snapshot cache calls with every snapshot it fetches: whole-account ones are
    /// recorded in the background (a failure is logged; the next sync call records it again).
    pub fn observer(self: &Arc<Self>) -> SnapshotObserver {
        let history = Arc::downgrade(self);
        Arc::new(move |snapshot: &Arc<Snapshot>| {
            if whole_account(snapshot).is_none() {
                return;
            }
            let (Some(history), Ok(runtime)) =
                (history.upgrade(), tokio::runtime::Handle::try_current())
            else {
                return;
            };
            let snapshot = snapshot.clone();
            runtime.spawn(async move {
                if let Err(error) = history.observe(&snapshot).await {
                    tracing::warn!(provider = %snapshot.key.provider, %error, "sync version not recorded");
                }
            });
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fps(pairs: &[(&str, u64)]) -> Fingerprints {
        pairs.iter().map(|(id, h)| (id.to_string(), *h)).collect()
    }

    const BOUNDS: Bounds = Bounds {
        retention_secs: 30 * 86_400,
        max_versions: 1_000,
    };

    #[test]
    fn a_diff_names_what_was_added_modified_and_removed() {
        let old = fps(&[("a", 1), ("b", 2), ("c", 3)]);
        let new = fps(&[("a", 1), ("b", 20), ("d", 4)]);
        let changes = compose([diff(&old, &new).as_slice()]);
        assert_eq!(changes.added, ["d"]);
        assert_eq!(changes.modified, ["b"]);
        assert_eq!(changes.removed, ["c"]);
    }

    #[test]
    fn composed_diffs_give_the_net_change() {
        let v1 = fps(&[("a", 1), ("b", 2), ("c", 3)]);
        // b changes then changes back; c goes then returns modified; d comes and goes; e comes.
        let v2 = fps(&[("a", 1), ("b", 9), ("d", 4)]);
        let v3 = fps(&[("a", 10), ("b", 2), ("c", 30), ("e", 5)]);
        let (d2, d3) = (diff(&v1, &v2), diff(&v2, &v3));
        let net = compose([d2.as_slice(), d3.as_slice()]);
        assert_eq!(net, compose([diff(&v1, &v3).as_slice()]));
        assert_eq!(net.added, ["e"]);
        assert_eq!(net.modified, ["a", "c"]);
        assert!(net.removed.is_empty());
    }

    #[test]
    fn content_hashes_are_stable_and_see_every_canonical_field() {
        let ngn = provider::Currency::from_code("NGN").unwrap_or_else(|e| panic!("{e}"));
        let tx = Transaction {
            id: provider::TransactionId::new("okra", "t1"),
            provider: "okra".into(),
            provider_transaction_id: "t1".into(),
            account_id: "acc".into(),
            customer_id: None,
            direction: provider::Direction::Debit,
            amount: provider::Money::from_minor(5250, ngn),
            balance_after: None,
            booked_on: time::macros::date!(2026 - 10 - 30),
            value_on: None,
            narration: "POS SHOPRITE".into(),
            reference: None,
            bank: None,
            raw: None,
        };
        let mut corrected = tx.clone();
        corrected.narration.push_str(" (CORRECTED)");
        assert_eq!(content_hash(&tx), content_hash(&tx.clone()));
        assert_ne!(content_hash(&tx), content_hash(&corrected));
    }

    #[test]
    fn versions_are_recorded_only_on_change_and_answer_from_any_kept_version() {
        let mut h = History::new(1, fps(&[("a", 1)]));
        assert_eq!(h.observe(2, fps(&[("a", 1)]), 10, BOUNDS), None);
        assert_eq!(h.head().version, 1);
        assert!(
            h.observe(3, fps(&[("a", 1), ("b", 2)]), 20, BOUNDS)
                .is_some()
        );
        assert!(h.observe(4, fps(&[("b", 3)]), 30, BOUNDS).is_some());
        let epoch = h.head().epoch;
        let all = h.changes(epoch, 1, 3).unwrap_or_default();
        assert_eq!(
            (all.added, all.modified, all.removed),
            (vec!["b".to_owned()], vec![], vec!["a".to_owned()])
        );
        assert!(h.changes(epoch, 3, 3).unwrap_or_default().is_empty());
        assert!(matches!(
            h.changes(epoch ^ 1, 1, 3),
            Err(HistoryError::Expired(_))
        ));
    }

    #[test]
    fn retention_and_the_version_cap_drop_the_oldest_diffs_and_expire_their_cursors() {
        let day = 86_400;
        let bounds = Bounds {
            retention_secs: 30 * day,
            max_versions: 5,
        };
        let mut h = History::new(1, fps(&[]));
        // One change a day for 40 days, replayed on a fake clock.
        for n in 1..=40u64 {
            let state: Fingerprints = (0..n).map(|i| (format!("t{i}"), i)).collect();
            h.observe(n + 1, state, n * day, bounds);
            // Never more than the cap, never one older than the retention.
            assert!(h.diffs.len() as u64 <= bounds.max_versions);
            assert!(
                h.diffs
                    .iter()
                    .all(|d| d.at + bounds.retention_secs >= n * day)
            );
            assert_eq!(h.floor + h.diffs.len() as u64, h.version);
        }
        let epoch = h.head().epoch;
        assert!(h.changes(epoch, h.floor, h.version).is_ok());
        assert!(matches!(
            h.changes(epoch, h.floor - 1, h.version),
            Err(HistoryError::Expired(_))
        ));
        // The retention alone: a change 31 days old is gone, one 29 days old is kept.
        let mut h = History::new(1, fps(&[]));
        h.observe(2, fps(&[("a", 1)]), 0, BOUNDS);
        h.observe(3, fps(&[("a", 2)]), 2 * day, BOUNDS);
        h.observe(4, fps(&[("a", 3)]), 31 * day, BOUNDS);
        let epoch = h.head().epoch;
        assert!(h.changes(epoch, 1, 4).is_err());
        assert!(h.changes(epoch, 2, 4).is_ok());
    }
}
