//! Refresh jobs kept in Redis, so that every replica sees them and a run outlives its replica.
//!
//! The same model as the in-process store ([`crate::jobs`]): a *run* per (provider, account)
//! at a time, *jobs* as clients' handles on runs, `Idempotency-Key`s per client. Every change is
//! one Lua script, so two replicas never start two runs for one account or finish one twice.
//!
//! A run is driven by the replica that created it, which holds a *lease* on it and renews it
//! while it works. A replica that dies (SIGKILL) stops renewing; every replica looks for runs
//! whose lease ran out and one of them takes the run over (the lease decides which) and drives
//! it to its end: a polling-style refresh is asked again (the vendor's refresh is idempotent for
//! an account; the dead replica's poll handle is lost with it), a webhook-style run keeps waiting
//! for the delivery, which any replica accepts. Finishing is once: the script that makes a run
//! final answers "you did" to one caller only, and that caller notifies the clients.
//!
//! Keys share the hash tag `{jobs}` (one cluster slot; jobs are few and small):
//! `run:<id>` (JSON), `job:<id>` (JSON), `active:<provider>:<account>` (run id),
//! `key:<client>:<Idempotency-Key>` (job id), `open` (set of unfinished run ids). Finished runs
//! and their jobs expire `jobs.ttl_secs` after they finish; unfinished ones are kept.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::cluster::{Cluster, SharedError};
use crate::job_view::{JobStatus, JobView};

/// Creates, finds or joins a job. KEYS[1]: the `open` set (it routes the script to the `{jobs}`
/// slot; every key the script touches shares that tag, built from ARGV[1]).
/// ARGV: prefix, client, provider, account, idempotency key ('' for none), new job id, new run
/// id, created_at, owner, lease ms, keep ms (how long an idempotency key is kept at most).
/// Returns `{kind, job_id, run_id}`, kind one of `known`, `own`, `joined`, `new`.
const START: &str = r#"
local p = ARGV[1]
local client, provider, account, key = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local new_job, new_run, created, owner = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local lease_ms, keep_ms = tonumber(ARGV[10]), tonumber(ARGV[11])
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local idem = p .. 'key:' .. client .. ':' .. key
if key ~= '' then
  local jid = redis.call('GET', idem)
  if jid and redis.call('EXISTS', p .. 'job:' .. jid) == 1 then
    local job = cjson.decode(redis.call('GET', p .. 'job:' .. jid))
    return {'known', jid, tostring(job.run)}
  end
end
local active = p .. 'active:' .. provider .. ':' .. account
local rid = redis.call('GET', active)
local run = nil
if rid then
  local raw = redis.call('GET', p .. 'run:' .. rid)
  if raw then run = cjson.decode(raw) end
end
if run then
  for _, jid in ipairs(run.jobs) do
    local raw = redis.call('GET', p .. 'job:' .. jid)
    if raw and cjson.decode(raw).client == client then
      if key ~= '' then redis.call('SET', idem, jid, 'PX', keep_ms) end
      return {'own', jid, rid}
    end
  end
  table.insert(run.jobs, new_job)
  redis.call('SET', p .. 'run:' .. rid, cjson.encode(run))
  redis.call('SET', p .. 'job:' .. new_job, cjson.encode({client = client, run = rid, created_at = created}))
  if key ~= '' then redis.call('SET', idem, new_job, 'PX', keep_ms) end
  return {'joined', new_job, rid}
end
run = {provider = provider, account_id = account, state = 'queued', jobs = {new_job},
       owner = owner, lease_until = now_ms + lease_ms}
redis.call('SET', p .. 'run:' .. new_run, cjson.encode(run))
redis.call('SET', p .. 'job:' .. new_job, cjson.encode({client = client, run = new_run, created_at = created}))
redis.call('SET', active, new_run)
redis.call('SADD', p .. 'open', new_run)
if key ~= '' then redis.call('SET', idem, new_job, 'PX', keep_ms) end
return {'new', new_job, new_run}
"#;

/// Changes an unfinished run. ARGV: prefix, run id, field, value (JSON). Returns 1 if changed.
const SET_FIELD: &str = r#"
local p, rid = ARGV[1], ARGV[2]
local raw = redis.call('GET', p .. 'run:' .. rid)
if not raw then return 0 end
local run = cjson.decode(raw)
if run.state ~= 'queued' and run.state ~= 'running' then return 0 end
local value = cjson.decode(ARGV[4])
if ARGV[3] == 'running' then
  if run.state == 'queued' then run.state = 'running'; run.started_at = value end
else
  run[ARGV[3]] = value
end
redis.call('SET', p .. 'run:' .. rid, cjson.encode(run))
return 1
"#;

/// Makes a run final, once. ARGV: prefix, run id, outcome JSON (`state`, `finished_at`,
/// `delivered` or `problem`), ttl ms. Returns 1 for the one caller that finished it.
const FINISH: &str = r#"
local p, rid, ttl = ARGV[1], ARGV[2], tonumber(ARGV[4])
local raw = redis.call('GET', p .. 'run:' .. rid)
if not raw then return 0 end
local run = cjson.decode(raw)
if run.state ~= 'queued' and run.state ~= 'running' then return 0 end
local outcome = cjson.decode(ARGV[3])
for k, v in pairs(outcome) do run[k] = v end
if not run.started_at then run.started_at = outcome.finished_at end
redis.call('SET', p .. 'run:' .. rid, cjson.encode(run), 'PX', ttl)
for _, jid in ipairs(run.jobs) do redis.call('PEXPIRE', p .. 'job:' .. jid, ttl) end
local active = p .. 'active:' .. run.provider .. ':' .. run.account_id
if redis.call('GET', active) == rid then redis.call('DEL', active) end
redis.call('SREM', p .. 'open', rid)
return 1
"#;

/// Renews or takes a run's lease. ARGV: prefix, run id, owner, lease ms, mode (`renew`: only
/// the owner; `take`: anyone, once the lease ran out). Returns 1 when `owner` holds it now.
const LEASE: &str = r#"
local p, rid, owner, lease_ms, mode = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local raw = redis.call('GET', p .. 'run:' .. rid)
if not raw then redis.call('SREM', p .. 'open', rid); return 0 end
local run = cjson.decode(raw)
if run.state ~= 'queued' and run.state ~= 'running' then return 0 end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if mode == 'renew' then
  if run.owner ~= owner then return 0 end
elseif (run.lease_until or 0) > now_ms then
  return 0
end
run.owner = owner
run.lease_until = now_ms + lease_ms
redis.call('SET', p .. 'run:' .. rid, cjson.encode(run))
return 1
"#;

/// A run as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredRun {
    /// Provider instance.
    pub provider: String,
    /// Account refreshed.
    pub account_id: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub state: String,
    /// Its jobs, the first one first.
    #[serde(default)]
    pub jobs: Vec<String>,
    /// RFC 3339.
    #[serde(default)]
    pub started_at: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    pub finished_at: Option<String>,
    /// Transactions delivered (webhook-style, on success).
    #[serde(default)]
    pub delivered: Option<u64>,
    /// The problem that ended it.
    #[serde(default)]
    pub problem: Option<serde_json::Value>,
    /// Hex SHA-256 of the webhook token.
    #[serde(default)]
    pub token_sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredJob {
    client: String,
    run: String,
    created_at: String,
}

/// A refresh request, with the ids to use if it creates a job and a run.
#[derive(Debug, Clone, Copy)]
pub struct NewJob<'a> {
    /// The calling client.
    pub client: &'a str,
    /// The provider instance.
    pub provider: &'a str,
    /// The account to refresh.
    pub account: &'a str,
    /// The Idempotency-Key, if any.
    pub key: Option<&'a str>,
    /// The id of the job, if one is created.
    pub job_id: &'a str,
    /// The id of the run, if one is created.
    pub run_id: &'a str,
}

/// What [`SharedJobs::start`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartKind {
    /// The Idempotency-Key named this job already.
    Known,
    /// The client's own job on the account's active run.
    Own,
    /// A new job on another client's active run.
    Joined,
    /// A new run: the caller drives it.
    New,
}

/// The job store in Redis.
pub struct SharedJobs {
    cluster: Arc<Cluster>,
    prefix: String,
    ttl: Duration,
    lease: Duration,
    start: redis::Script,
    set_field: redis::Script,
    finish: redis::Script,
    lease_script: redis::Script,
}

impl std::fmt::Debug for SharedJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedJobs")
            .field("prefix", &self.prefix)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

impl SharedJobs {
    /// The store; finished jobs kept `ttl`, run leases of `lease`.
    pub fn new(cluster: Arc<Cluster>, ttl: Duration, lease: Duration) -> SharedJobs {
        let prefix = cluster.key("jobs", "");
        SharedJobs {
            cluster,
            prefix,
            ttl,
            lease,
            start: redis::Script::new(START),
            set_field: redis::Script::new(SET_FIELD),
            finish: redis::Script::new(FINISH),
            lease_script: redis::Script::new(LEASE),
        }
    }

    /// The key every job script names, so a Redis Cluster routes it to the `{jobs}` slot.
    fn route_key(&self) -> String {
        format!("{}open", self.prefix)
    }

    /// The cluster.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// How long a run's lease lasts without renewal.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Creates, finds or joins a client's job (see the in-process `Jobs::start`); a known
    /// Idempotency-Key is kept `jobs.ttl_secs` + `max_deadline` at most.
    pub async fn start(
        &self,
        request: &NewJob<'_>,
        max_deadline: Duration,
    ) -> Result<(StartKind, String, String), SharedError> {
        let mut invocation = self.start.key(self.route_key());
        invocation
            .arg(&self.prefix)
            .arg(request.client)
            .arg(request.provider)
            .arg(request.account)
            .arg(request.key.unwrap_or(""))
            .arg(request.job_id)
            .arg(request.run_id)
            .arg(rfc3339(crate::job_view::now()))
            .arg(self.cluster.replica_id())
            .arg(self.lease.as_millis() as u64)
            .arg((self.ttl + max_deadline).as_millis() as u64);
        let (kind, job, run): (String, String, String) = self
            .cluster
            .call("jobs_start", |mut conn| async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        let kind = match kind.as_str() {
            "known" => StartKind::Known,
            "own" => StartKind::Own,
            "joined" => StartKind::Joined,
            _ => StartKind::New,
        };
        Ok((kind, job, run))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        object: String,
    ) -> Result<Option<T>, SharedError> {
        let key = format!("{}{object}", self.prefix);
        let raw: Option<String> = self
            .cluster
            .call("jobs_get", |mut conn| async move {
                redis::cmd("GET").arg(&key).query_async(&mut conn).await
            })
            .await?;
        Ok(raw.and_then(|raw| serde_json::from_str(&raw).ok()))
    }

    /// A run as stored.
    pub async fn run(&self, run_id: &str) -> Result<Option<StoredRun>, SharedError> {
        self.get_json(format!("run:{run_id}")).await
    }

    /// The job `job_id` and its run id, whoever owns it.
    pub async fn job(&self, job_id: &str) -> Result<Option<(String, String)>, SharedError> {
        Ok(self
            .get_json::<StoredJob>(format!("job:{job_id}"))
            .await?
            .map(|job| (job.client, job.run)))
    }

    /// `client`'s job as the API shows it (`None`: no such job, or another client's).
    pub async fn view(&self, client: &str, job_id: &str) -> Result<Option<JobView>, SharedError> {
        let Some(job) = self.get_json::<StoredJob>(format!("job:{job_id}")).await? else {
            return Ok(None);
        };
        if job.client != client {
            return Ok(None);
        }
        let Some(run) = self.run(&job.run).await? else {
            return Ok(None);
        };
        Ok(Some(view_of(job_id, &job, &run)))
    }

    async fn set_field(
        &self,
        run_id: &str,
        field: &str,
        value: serde_json::Value,
    ) -> Result<bool, SharedError> {
        let mut invocation = self.set_field.key(self.route_key());
        invocation
            .arg(&self.prefix)
            .arg(run_id)
            .arg(field)
            .arg(value.to_string());
        let changed: i64 = self
            .cluster
            .call("jobs_set", |mut conn| async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        Ok(changed == 1)
    }

    /// Marks a queued run running.
    pub async fn mark_running(&self, run_id: &str) -> Result<bool, SharedError> {
        self.set_field(
            run_id,
            "running",
            serde_json::Value::String(rfc3339(crate::job_view::now())),
        )
        .await
    }

    /// Stores the webhook token's hash on an unfinished run.
    pub async fn arm(&self, run_id: &str, token_sha256: &[u8; 32]) -> Result<bool, SharedError> {
        self.set_field(
            run_id,
            "token_sha256",
            serde_json::Value::String(hex::encode(token_sha256)),
        )
        .await
    }

    /// Makes a run final; `true` for the one caller that did (it then notifies).
    pub async fn finish(
        &self,
        run_id: &str,
        outcome: Result<Option<u64>, serde_json::Value>,
    ) -> Result<bool, SharedError> {
        let at = rfc3339(crate::job_view::now());
        let outcome = match outcome {
            Ok(delivered) => serde_json::json!({
                "state": "succeeded", "finished_at": at, "delivered": delivered,
            }),
            Err(problem) => serde_json::json!({
                "state": "failed", "finished_at": at, "problem": problem,
            }),
        };
        let mut invocation = self.finish.key(self.route_key());
        invocation
            .arg(&self.prefix)
            .arg(run_id)
            .arg(outcome.to_string())
            .arg(self.ttl.as_millis().max(1) as u64);
        let finished: i64 = self
            .cluster
            .call("jobs_finish", |mut conn| async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        Ok(finished == 1)
    }

    /// Renews this replica's lease on a run it drives (`false`: it lost it).
    pub async fn renew(&self, run_id: &str) -> Result<bool, SharedError> {
        self.lease_call(run_id, "renew").await
    }

    /// Takes over a run whose lease ran out (`true`: this replica drives it now).
    pub async fn take_over(&self, run_id: &str) -> Result<bool, SharedError> {
        self.lease_call(run_id, "take").await
    }

    async fn lease_call(&self, run_id: &str, mode: &str) -> Result<bool, SharedError> {
        let mut invocation = self.lease_script.key(self.route_key());
        invocation
            .arg(&self.prefix)
            .arg(run_id)
            .arg(self.cluster.replica_id())
            .arg(self.lease.as_millis().max(1) as u64)
            .arg(mode);
        let held: i64 = self
            .cluster
            .call("jobs_lease", |mut conn| async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        Ok(held == 1)
    }

    /// Unfinished runs (for takeover).
    pub async fn open_runs(&self) -> Result<Vec<String>, SharedError> {
        let key = format!("{}open", self.prefix);
        self.cluster
            .call("jobs_open", |mut conn| async move {
                redis::cmd("SMEMBERS")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
            })
            .await
    }

    /// Every job of a run with its client, as the API shows them (for notifications).
    pub async fn views_of_run(&self, run_id: &str) -> Result<Vec<(String, JobView)>, SharedError> {
        let Some(run) = self.run(run_id).await? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for job_id in &run.jobs {
            if let Some(job) = self.get_json::<StoredJob>(format!("job:{job_id}")).await? {
                out.push((job.client.clone(), view_of(job_id, &job, &run)));
            }
        }
        Ok(out)
    }
}

fn view_of(job_id: &str, job: &StoredJob, run: &StoredRun) -> JobView {
    let created_at = parse_time(&job.created_at).unwrap_or_else(crate::job_view::now);
    let status = match run.state.as_str() {
        "running" => JobStatus::Running,
        "succeeded" => JobStatus::Succeeded,
        "failed" => JobStatus::Failed,
        _ => JobStatus::Queued,
    };
    JobView {
        id: job_id.to_owned(),
        status,
        provider: run.provider.clone(),
        account_id: run.account_id.clone(),
        created_at,
        // A job that joined a running refresh started following it when it was created.
        started_at: run
            .started_at
            .as_deref()
            .and_then(parse_time)
            .map(|at| at.max(created_at)),
        finished_at: run
            .finished_at
            .as_deref()
            .and_then(parse_time)
            .map(|at| at.max(created_at)),
        status_url: format!("/v1/jobs/{job_id}"),
        transactions_delivered: if status == JobStatus::Succeeded {
            run.delivered
        } else {
            None
        },
        problem: if status == JobStatus::Failed {
            run.problem.clone()
        } else {
            None
        },
    }
}
