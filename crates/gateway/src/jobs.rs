//! Refresh jobs: asking a provider for fresh data on an account, and telling the caller when it
//! is there.
//!
//! Two things are kept apart:
//! - a **run** is the upstream work for one (provider, account): one `Provider::refresh` call
//!   and, for webhook-style providers, the delivery that completes it. At most one run per
//!   (provider, account) is active at a time;
//! - a **job** is one client's handle on a run: an unguessable id (`job_` + 128 random bits in
//!   hex), visible only to the client that created it (any other client gets a 404).
//!
//! `POST .../refresh` while a run is active for the account *joins* it: the same client gets its
//! own job for that run back (the same id), another client gets a new job linked to the same
//! run. Either way the provider is asked once. An `Idempotency-Key` names a job per client: the
//! same key returns the same job (while it is kept, `jobs.ttl_secs` after it finished), the
//! same key for another (provider, account) is a 422 naming the header.
//!
//! A run goes queued -> running -> succeeded | failed; its jobs show its state. On success the
//! account's snapshots are invalidated (before the jobs turn `succeeded`), so the next read is
//! fetched fresh. On failure the jobs carry an RFC 9457 problem, as the API would have answered.
//!
//! - Polling-style providers (Okra): the adapter starts the refresh and polls the vendor with
//!   backoff under the provider's `refresh_deadline_ms`; the gateway adds a backstop timeout.
//! - Webhook-style providers (Mono-style): before the provider is called, the run is armed with
//!   a fresh 256-bit token; the provider gets the callback URL
//!   `{public base}/v1/webhooks/{provider}?job={job id}&token={token}` (the public base is
//!   `server.public_url`, else `http://{bound address}`), and the run waits for a delivery there
//!   until the provider's `refresh_deadline_ms`, then fails with `refresh_timeout`. Only the
//!   token's SHA-256 is stored; a presented token is hashed and compared in constant time.
//!
//! Finished runs notify the clients of their jobs ([`crate::notify`]) without waiting for it.
//! Everything is in-process (a mutex over a few maps, swept of expired jobs at most once a
//! minute); a restart forgets jobs, and a running refresh is then not followed further.
//!
//! Limits, on purpose: only the account's own snapshots are dropped (customer, NUBAN and
//! all-transactions snapshots that include the account age out by the cache TTL), and a read
//! whose provider fetch began before the refresh finished may still cache what it fetched.
//! A delivery that the adapter cannot read (including one that reports a vendor error) is
//! refused with 400 and the job waits on until its deadline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::web;
use provider::{RefreshOutcome, RefreshRequest, RefreshStyle};
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
// tokio's clock (std's outside a runtime): tests pause it to see jobs expire.
use tokio::time::Instant;
use url::Url;

use crate::config::{Config, ProviderConfig};
use crate::error::{ApiError, Problem};
use crate::jobs_shared::{NewJob, SharedJobs, StartKind};
use crate::notify::{Notifier, RetryPolicy};
use crate::registry::ProviderEntry;

pub use crate::job_view::{JobStatus, JobView, now};

/// A run the caller must start (see [`spawn_run`]); returned only for a new run.
#[derive(Debug, Clone)]
pub struct RunTicket {
    id: u64,
    provider: Arc<str>,
    account_id: String,
}

impl RunTicket {
    /// The provider instance.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The account being refreshed.
    pub fn account_id(&self) -> &str {
        &self.account_id
    }
}

/// What [`Jobs::start`] did.
#[derive(Debug)]
pub struct Started {
    /// The caller's job.
    pub job: JobView,
    /// Set when a new run was created: the caller spawns it.
    pub run: Option<RunTicket>,
}

/// How long a provider's refresh may take.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    /// The provider's refresh deadline (polling, or waiting for the delivery).
    refresh: Duration,
    /// Slack for the adapter to report its own deadline before the backstop fires.
    grace: Duration,
}

#[derive(Debug)]
enum RunState {
    Queued,
    Running,
    Succeeded { delivered: Option<u64> },
    Failed(Box<Problem>),
}

#[derive(Debug)]
struct RunRecord {
    provider: Arc<str>,
    account_id: String,
    state: RunState,
    started_at: Option<OffsetDateTime>,
    finished_at: Option<OffsetDateTime>,
    finished: Option<Instant>,
    /// SHA-256 of the webhook token (webhook-style runs only).
    token_sha256: Option<[u8; 32]>,
    /// Its jobs, the first one first (its id goes into the callback URL).
    jobs: Vec<String>,
    /// Signalled once when the run becomes final.
    done: Arc<tokio::sync::Notify>,
}

#[derive(Debug)]
struct JobRecord {
    client: Arc<str>,
    run: u64,
    created_at: OffsetDateTime,
}

#[derive(Debug)]
struct Inner {
    jobs: HashMap<String, JobRecord>,
    runs: HashMap<u64, RunRecord>,
    /// The active run of each (provider, account).
    active: HashMap<(Arc<str>, String), u64>,
    /// (client, Idempotency-Key) -> job id.
    keys: HashMap<(Arc<str>, String), String>,
    next_run: u64,
    last_sweep: Instant,
}

/// The refresh jobs of this process.
#[derive(Debug)]
pub struct Jobs {
    inner: Mutex<Inner>,
    ttl: Duration,
    max_delivery_bytes: usize,
    delivery_read_timeout: Duration,
    callback_base: Url,
    deadlines: HashMap<String, Deadline>,
    notifier: Notifier,
    shared: Option<SharedJobs>,
}

const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How often a replica waiting for a shared run's delivery looks at its state.
const FINAL_POLL: Duration = Duration::from_millis(200);

fn random_hex<const N: usize>() -> String {
    hex::encode(rand::rng().random::<[u8; N]>())
}

fn coordination(error: crate::cluster::SharedError) -> ApiError {
    ApiError::CoordinationUnavailable(error.to_string())
}

fn event_type(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Succeeded => "refresh.succeeded",
        _ => "refresh.failed",
    }
}

impl Jobs {
    /// The job store for `config`, with callback URLs under `server.public_url` or, without
    /// one, `http://{bound}` (a wildcard address becomes loopback).
    pub fn new(config: &Config, bound: std::net::SocketAddr) -> std::io::Result<Jobs> {
        let callback_base = match &config.public_url {
            Some(url) => public_base(url),
            None => local_base(bound).map_err(std::io::Error::other)?,
        };
        let deadlines = config
            .providers
            .iter()
            .map(|(name, p): (&String, &ProviderConfig)| {
                (
                    name.clone(),
                    Deadline {
                        refresh: p.refresh_deadline,
                        grace: p.request_timeout + p.connect_timeout,
                    },
                )
            })
            .collect();
        Ok(Jobs {
            inner: Mutex::new(Inner {
                jobs: HashMap::new(),
                runs: HashMap::new(),
                active: HashMap::new(),
                keys: HashMap::new(),
                next_run: 1,
                last_sweep: Instant::now(),
            }),
            ttl: Duration::from_secs(config.jobs.ttl_secs),
            max_delivery_bytes: usize::try_from(config.jobs.max_delivery_bytes)
                .unwrap_or(usize::MAX),
            delivery_read_timeout: Duration::from_millis(config.jobs.delivery_read_timeout_ms),
            callback_base,
            deadlines,
            notifier: Notifier::new(&config.clients, RetryPolicy::from_config(&config.jobs))
                .map_err(std::io::Error::other)?,
            shared: None,
        })
    }

    /// Keeps jobs in Redis (shared by the replicas) instead of in this process.
    pub fn with_shared(mut self, shared: SharedJobs) -> Jobs {
        self.shared = Some(shared);
        self
    }

    /// The Redis job store, when configured.
    pub fn shared(&self) -> Option<&SharedJobs> {
        self.shared.as_ref()
    }

    /// [`Jobs::start`], in Redis when configured (`503 coordination_unavailable` when Redis
    /// cannot be reached: a refresh is never started without its job being recorded).
    pub async fn begin(
        &self,
        client: &Arc<str>,
        provider: &Arc<str>,
        account_id: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Started, ApiError> {
        let Some(shared) = &self.shared else {
            return self.start(client, provider, account_id, idempotency_key);
        };
        let new_job = format!("job_{}", random_hex::<16>());
        let new_run = rand::random::<u64>().max(1);
        let deadline = self.deadline(provider);
        let run_text = new_run.to_string();
        let request = NewJob {
            client,
            provider,
            account: account_id,
            key: idempotency_key,
            job_id: &new_job,
            run_id: &run_text,
        };
        let (kind, job_id, run_id) = shared
            .start(&request, deadline.refresh + deadline.grace)
            .await
            .map_err(coordination)?;
        let job = shared
            .view(client, &job_id)
            .await
            .map_err(coordination)?
            .ok_or_else(|| ApiError::Internal("new job vanished".into()))?;
        if kind == StartKind::Known && (job.provider != **provider || job.account_id != account_id)
        {
            return Err(ApiError::IdempotencyKeyReused(format!(
                "this Idempotency-Key was used for a refresh of account {} at provider {}; use a new key for another request",
                job.account_id, job.provider
            )));
        }
        Ok(Started {
            job,
            run: (kind == StartKind::New).then(|| RunTicket {
                id: run_id.parse().unwrap_or(new_run),
                provider: provider.clone(),
                account_id: account_id.to_owned(),
            }),
        })
    }

    /// [`Jobs::get`], in Redis when configured.
    pub async fn find(&self, client: &str, id: &str) -> Result<Option<JobView>, ApiError> {
        match &self.shared {
            None => Ok(self.get(client, id)),
            Some(shared) => shared.view(client, id).await.map_err(coordination),
        }
    }

    /// [`Jobs::authorize_delivery`], in Redis when configured (any replica accepts a delivery).
    pub async fn authorize(
        &self,
        provider: &str,
        job_id: &str,
        token: &str,
    ) -> Result<RunTicket, ApiError> {
        let Some(shared) = &self.shared else {
            return self.authorize_delivery(provider, job_id, token);
        };
        let not_found = || ApiError::NotFound {
            detail: format!("no refresh job {job_id} at provider {provider}"),
            provider: Some(provider.to_owned()),
        };
        let (_, run_id) = shared
            .job(job_id)
            .await
            .map_err(coordination)?
            .ok_or_else(not_found)?;
        let run = shared
            .run(&run_id)
            .await
            .map_err(coordination)?
            .ok_or_else(not_found)?;
        if run.provider != provider {
            return Err(not_found());
        }
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let matches = run
            .token_sha256
            .as_deref()
            .and_then(|h| hex::decode(h).ok())
            .is_some_and(|expected| bool::from(expected.as_slice().ct_eq(&presented)));
        if !matches {
            return Err(ApiError::WebhookUnauthorized);
        }
        if !matches!(run.state.as_str(), "queued" | "running") {
            return Err(ApiError::JobNotAwaiting(format!(
                "refresh job {job_id} has already finished"
            )));
        }
        Ok(RunTicket {
            id: run_id.parse().unwrap_or_default(),
            provider: Arc::from(run.provider.as_str()),
            account_id: run.account_id,
        })
    }

    /// [`Jobs::succeed`], in Redis when configured: drops the account's snapshots, then makes
    /// the run final; whoever finishes it notifies. `Ok(false)`: it was final already; `Err`:
    /// Redis could not record it (the run stays open and is finished later).
    pub async fn complete(
        &self,
        state: &impl RunHost,
        run: &RunTicket,
        delivered: Option<u64>,
    ) -> Result<bool, ApiError> {
        let Some(_) = &self.shared else {
            return Ok(self.succeed(state, run, delivered));
        };
        match state.account_refreshed(&run.provider, &run.account_id) {
            Ok(()) => self.finish_shared(run.id, Ok(delivered)).await,
            Err(error) => Ok(self.fail_any(run.id, &error).await),
        }
    }

    /// Arms a webhook-style run (in Redis when configured) and returns its callback URL.
    async fn arm_any(&self, run_id: u64) -> Option<String> {
        let Some(shared) = &self.shared else {
            return self.arm_webhook(run_id);
        };
        let token = random_hex::<32>();
        let run = shared.run(&run_id.to_string()).await.ok()??;
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if !shared.arm(&run_id.to_string(), &hash).await.ok()? {
            return None;
        }
        self.callback_url(&run.provider, run.jobs.first()?, &token)
    }

    fn callback_url(&self, provider: &str, job_id: &str, token: &str) -> Option<String> {
        let mut url = self
            .callback_base
            .join(&format!("v1/webhooks/{provider}"))
            .ok()?;
        url.query_pairs_mut()
            .append_pair("job", job_id)
            .append_pair("token", token);
        Some(url.into())
    }

    async fn mark_running_any(&self, run_id: u64) {
        match &self.shared {
            None => self.mark_running(run_id),
            Some(shared) => {
                let _ = shared.mark_running(&run_id.to_string()).await;
            }
        }
    }

    /// Waits until the run is final, at most `rest`.
    async fn await_final(&self, run_id: u64, rest: Duration) {
        let Some(shared) = &self.shared else {
            if let Some(done) = self.done_signal(run_id) {
                let _ = tokio::time::timeout(rest, done.notified()).await;
            }
            return;
        };
        let until = tokio::time::Instant::now() + rest;
        let run = run_id.to_string();
        while tokio::time::Instant::now() < until {
            if let Ok(Some(stored)) = shared.run(&run).await
                && !matches!(stored.state.as_str(), "queued" | "running")
            {
                return;
            }
            tokio::time::sleep(FINAL_POLL.min(until - tokio::time::Instant::now())).await;
        }
    }

    async fn fail_any(&self, run_id: u64, error: &ApiError) -> bool {
        match &self.shared {
            None => self.fail(run_id, error),
            Some(_) => {
                let problem = serde_json::to_value(error.problem(None)).unwrap_or_default();
                self.finish_shared(run_id, Err(problem))
                    .await
                    .unwrap_or(false)
            }
        }
    }

    async fn finish_shared(
        &self,
        run_id: u64,
        outcome: Result<Option<u64>, serde_json::Value>,
    ) -> Result<bool, ApiError> {
        let Some(shared) = &self.shared else {
            return Ok(false);
        };
        let run = run_id.to_string();
        match shared.finish(&run, outcome).await {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(error) => {
                // The run stays open in Redis: its lease runs out and a replica drives it again.
                tracing::warn!(run = %run, %error, "refresh: could not record the outcome in redis");
                return Err(coordination(error));
            }
        }
        for (client, job) in shared.views_of_run(&run).await.unwrap_or_default() {
            tracing::info!(job = %job.id, client = %client, provider = %job.provider, status = ?job.status, "refresh job finished");
            self.notifier.notify(&client, event_type(job.status), &job);
        }
        Ok(true)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain maps behind: keep serving them.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The largest webhook delivery accepted, in bytes.
    pub fn max_delivery_bytes(&self) -> usize {
        self.max_delivery_bytes
    }

    /// How long a webhook delivery's body may take to arrive.
    pub fn delivery_read_timeout(&self) -> Duration {
        self.delivery_read_timeout
    }

    /// The client notifier.
    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    /// Creates (or finds) `client`'s job refreshing `account_id` at `provider`.
    ///
    /// Order: a known `idempotency_key` returns its job (or 422 if it was for another
    /// provider or account); then an active run for the account is joined; else a new run is
    /// created and returned in [`Started::run`] for the caller to spawn.
    pub fn start(
        &self,
        client: &Arc<str>,
        provider: &Arc<str>,
        account_id: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Started, ApiError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        inner.sweep_if_due(self.ttl);
        let key = idempotency_key.map(|k| (client.clone(), k.to_owned()));

        let known = key
            .as_ref()
            .and_then(|k| inner.keys.get(k))
            .filter(|job_id| {
                inner
                    .jobs
                    .get(*job_id)
                    .is_some_and(|job| !inner.expired(job.run, self.ttl))
            });
        if let Some(job_id) = known
            && let Some(job) = inner.view(job_id)
        {
            if job.provider != **provider || job.account_id != account_id {
                return Err(ApiError::IdempotencyKeyReused(format!(
                    "this Idempotency-Key was used for a refresh of account {} at provider {}; use a new key for another request",
                    job.account_id, job.provider
                )));
            }
            return Ok(Started { job, run: None });
        }

        let active = (provider.clone(), account_id.to_owned());
        let (run_id, new_run) = match inner.active.get(&active) {
            Some(&run_id) => {
                let own = inner.runs.get(&run_id).and_then(|run| {
                    run.jobs
                        .iter()
                        .find(|j| inner.jobs.get(*j).is_some_and(|job| job.client == *client))
                        .cloned()
                });
                if let Some(job_id) = own {
                    if let Some(key) = key {
                        inner.keys.insert(key, job_id.clone());
                    }
                    let job = inner
                        .view(&job_id)
                        .ok_or_else(|| ApiError::Internal("joined job vanished".into()))?;
                    return Ok(Started { job, run: None });
                }
                (run_id, false)
            }
            None => {
                let run_id = inner.next_run;
                inner.next_run += 1;
                inner.runs.insert(
                    run_id,
                    RunRecord {
                        provider: provider.clone(),
                        account_id: account_id.to_owned(),
                        state: RunState::Queued,
                        started_at: None,
                        finished_at: None,
                        finished: None,
                        token_sha256: None,
                        jobs: Vec::new(),
                        done: Arc::new(tokio::sync::Notify::new()),
                    },
                );
                inner.active.insert(active, run_id);
                crate::metrics::refresh_run(1.0);
                (run_id, true)
            }
        };

        let job_id = format!("job_{}", random_hex::<16>());
        inner.jobs.insert(
            job_id.clone(),
            JobRecord {
                client: client.clone(),
                run: run_id,
                created_at: now(),
            },
        );
        if let Some(run) = inner.runs.get_mut(&run_id) {
            run.jobs.push(job_id.clone());
        }
        if let Some(key) = key {
            inner.keys.insert(key, job_id.clone());
        }
        let job = inner
            .view(&job_id)
            .ok_or_else(|| ApiError::Internal("new job vanished".into()))?;
        crate::metrics::refresh_job(provider, "created");
        Ok(Started {
            job,
            run: new_run.then(|| RunTicket {
                id: run_id,
                provider: provider.clone(),
                account_id: account_id.to_owned(),
            }),
        })
    }

    /// `client`'s job `id`, while it is kept; `None` for another client's job.
    pub fn get(&self, client: &str, id: &str) -> Option<JobView> {
        let inner = self.lock();
        let job = inner.jobs.get(id)?;
        if *job.client != *client || inner.expired(job.run, self.ttl) {
            return None;
        }
        inner.view(id)
    }

    /// Arms a webhook-style run: stores a new token's hash and returns the callback URL.
    fn arm_webhook(&self, run_id: u64) -> Option<String> {
        let token = random_hex::<32>();
        let mut inner = self.lock();
        let run = inner.runs.get_mut(&run_id)?;
        run.token_sha256 = Some(Sha256::digest(token.as_bytes()).into());
        let (provider, job_id) = (run.provider.clone(), run.jobs.first()?.clone());
        drop(inner);
        self.callback_url(&provider, &job_id, &token)
    }

    /// The signal a run gives when it becomes final.
    fn done_signal(&self, run_id: u64) -> Option<Arc<tokio::sync::Notify>> {
        self.lock().runs.get(&run_id).map(|run| run.done.clone())
    }

    fn mark_running(&self, run_id: u64) {
        let mut inner = self.lock();
        if let Some(run) = inner.runs.get_mut(&run_id)
            && matches!(run.state, RunState::Queued)
        {
            run.state = RunState::Running;
            run.started_at = Some(now());
        }
    }

    /// Checks a webhook delivery's credentials: the job must exist for `provider`, its run must
    /// carry a token, the token must match (constant time), and the run must still be waiting.
    pub fn authorize_delivery(
        &self,
        provider: &str,
        job_id: &str,
        token: &str,
    ) -> Result<RunTicket, ApiError> {
        let inner = self.lock();
        let not_found = || ApiError::NotFound {
            detail: format!("no refresh job {job_id} at provider {provider}"),
            provider: Some(provider.to_owned()),
        };
        let job = inner.jobs.get(job_id).ok_or_else(not_found)?;
        let run = inner.runs.get(&job.run).ok_or_else(not_found)?;
        if *run.provider != *provider {
            return Err(not_found());
        }
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let matches = run
            .token_sha256
            .is_some_and(|expected| bool::from(expected.ct_eq(&presented)));
        if !matches {
            return Err(ApiError::WebhookUnauthorized);
        }
        if !matches!(run.state, RunState::Queued | RunState::Running) {
            return Err(ApiError::JobNotAwaiting(format!(
                "refresh job {job_id} has already finished"
            )));
        }
        Ok(RunTicket {
            id: job.run,
            provider: run.provider.clone(),
            account_id: run.account_id.clone(),
        })
    }

    /// Makes a run final (once; later calls change nothing and return `false`), then notifies
    /// its jobs' clients in the background.
    fn finish(&self, run_id: u64, outcome: Result<Option<u64>, Problem>) -> bool {
        let finished: Vec<(Arc<str>, JobView)> = {
            let mut guard = self.lock();
            let inner = &mut *guard;
            let Some(run) = inner.runs.get_mut(&run_id) else {
                return false;
            };
            if !matches!(run.state, RunState::Queued | RunState::Running) {
                return false;
            }
            let at = now();
            run.started_at.get_or_insert(at);
            run.finished_at = Some(at);
            run.finished = Some(Instant::now());
            run.state = match outcome {
                Ok(delivered) => RunState::Succeeded { delivered },
                Err(problem) => RunState::Failed(Box::new(problem)),
            };
            // A stored permit: the waiter may not be waiting yet.
            run.done.notify_one();
            crate::metrics::refresh_run(-1.0);
            let active = (run.provider.clone(), run.account_id.clone());
            if inner.active.get(&active) == Some(&run_id) {
                inner.active.remove(&active);
            }
            let job_ids = inner
                .runs
                .get(&run_id)
                .map(|r| r.jobs.clone())
                .unwrap_or_default();
            job_ids
                .iter()
                .filter_map(|id| Some((inner.jobs.get(id)?.client.clone(), inner.view(id)?)))
                .collect()
        };
        for (client, job) in &finished {
            tracing::info!(job = %job.id, client = %client, provider = %job.provider, status = ?job.status, "refresh job finished");
            crate::metrics::refresh_job(
                &job.provider,
                if job.status == JobStatus::Succeeded {
                    "succeeded"
                } else {
                    "failed"
                },
            );
            self.notifier.notify(client, event_type(job.status), job);
        }
        true
    }

    /// Completes a run whose fresh data is at the provider: drops the account's snapshots,
    /// then marks it succeeded. Returns whether this call finished it.
    pub fn succeed(&self, state: &impl RunHost, run: &RunTicket, delivered: Option<u64>) -> bool {
        match state.account_refreshed(&run.provider, &run.account_id) {
            Ok(()) => self.finish(run.id, Ok(delivered)),
            Err(error) => {
                tracing::error!(provider = %run.provider, %error, "refresh: snapshots not invalidated");
                self.finish(run.id, Err(error.problem(None)))
            }
        }
    }

    fn fail(&self, run_id: u64, error: &ApiError) -> bool {
        self.finish(run_id, Err(error.problem(None)))
    }

    fn deadline(&self, provider: &str) -> Deadline {
        self.deadlines.get(provider).copied().unwrap_or(Deadline {
            refresh: Duration::from_secs(120),
            grace: Duration::from_secs(12),
        })
    }
}

impl Inner {
    fn view(&self, job_id: &str) -> Option<JobView> {
        let job = self.jobs.get(job_id)?;
        let run = self.runs.get(&job.run)?;
        let (status, delivered, problem) = match &run.state {
            RunState::Queued => (JobStatus::Queued, None, None),
            RunState::Running => (JobStatus::Running, None, None),
            RunState::Succeeded { delivered } => (JobStatus::Succeeded, *delivered, None),
            RunState::Failed(problem) => (
                JobStatus::Failed,
                None,
                serde_json::to_value(&**problem).ok(),
            ),
        };
        // A job that joined a running refresh started following it when it was created.
        let started_at = run.started_at.map(|at| at.max(job.created_at));
        Some(JobView {
            id: job_id.to_owned(),
            status,
            provider: run.provider.to_string(),
            account_id: run.account_id.clone(),
            created_at: job.created_at,
            started_at,
            finished_at: run.finished_at.map(|at| at.max(job.created_at)),
            status_url: format!("/v1/jobs/{job_id}"),
            transactions_delivered: delivered,
            problem,
        })
    }

    fn expired(&self, run_id: u64, ttl: Duration) -> bool {
        self.runs
            .get(&run_id)
            .and_then(|run| run.finished)
            .is_some_and(|at| at.elapsed() > ttl)
    }

    /// Drops runs finished longer than `ttl` ago with their jobs and keys (at most once a
    /// minute; unfinished runs are never dropped, they end at their deadline).
    fn sweep_if_due(&mut self, ttl: Duration) {
        if self.last_sweep.elapsed() < SWEEP_EVERY.min(ttl) {
            return;
        }
        self.last_sweep = Instant::now();
        let gone: Vec<u64> = self
            .runs
            .iter()
            .filter(|(_, run)| run.finished.is_some_and(|at| at.elapsed() > ttl))
            .map(|(id, _)| *id)
            .collect();
        if gone.is_empty() {
            return;
        }
        for id in &gone {
            if let Some(run) = self.runs.remove(id) {
                for job in run.jobs {
                    self.jobs.remove(&job);
                }
            }
        }
        let jobs = &self.jobs;
        self.keys.retain(|_, job| jobs.contains_key(job));
    }
}

/// `http://{bound}/`, with a wildcard address replaced by loopback.
fn local_base(bound: std::net::SocketAddr) -> Result<Url, url::ParseError> {
    let ip = match bound.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    Url::parse(&format!(
        "http://{}/",
        std::net::SocketAddr::new(ip, bound.port())
    ))
}

/// The public URL as a base that relative paths are appended to (a trailing slash added).
fn public_base(url: &Url) -> Url {
    let mut base = url.clone();
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base.set_query(None);
    base.set_fragment(None);
    base
}

/// What a run needs from the rest of the gateway (`AppState` implements it): the job store,
/// the provider by name, and what happens to an account whose fresh data is at the provider.
/// Jobs take this rather than the whole state, so `jobs` does not import the module that
/// holds it.
pub trait RunHost: Send + Sync + 'static {
    /// The job store.
    fn jobs(&self) -> &Jobs;
    /// The configured provider instance `name`, if any.
    fn provider(&self, name: &str) -> Option<ProviderEntry>;
    /// Drops the account's snapshots (and lets delta sync read it again); an error leaves the
    /// snapshots as they were.
    fn account_refreshed(&self, provider: &str, account: &str) -> Result<(), ApiError>;
}

impl<H: RunHost> RunHost for web::Data<H> {
    fn jobs(&self) -> &Jobs {
        self.get_ref().jobs()
    }

    fn provider(&self, name: &str) -> Option<ProviderEntry> {
        self.get_ref().provider(name)
    }

    fn account_refreshed(&self, provider: &str, account: &str) -> Result<(), ApiError> {
        self.get_ref().account_refreshed(provider, account)
    }
}

/// Starts a new run in the background: calls the provider, follows it to the end.
pub fn spawn_run<H: RunHost>(state: web::Data<H>, run: RunTicket) {
    tokio::spawn(drive(state, run, false));
}

/// With jobs in Redis: looks for runs whose replica stopped renewing their lease (it died) and
/// drives them to their end here, for as long as the returned task runs.
pub fn spawn_takeovers<H: RunHost>(state: web::Data<H>) -> Option<tokio::task::JoinHandle<()>> {
    let every = state.jobs().shared()?.lease() / 2;
    let state = std::sync::Arc::downgrade(&state.into_inner());
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(state) = state.upgrade() else {
                return;
            };
            let Some(shared) = state.jobs().shared() else {
                return;
            };
            for run_id in shared.open_runs().await.unwrap_or_default() {
                if !matches!(shared.take_over(&run_id).await, Ok(true)) {
                    continue;
                }
                let Ok(Some(run)) = shared.run(&run_id).await else {
                    continue;
                };
                tracing::warn!(run = %run_id, provider = %run.provider, "refresh run taken over from a replica that stopped");
                let ticket = RunTicket {
                    id: run_id.parse().unwrap_or_default(),
                    provider: Arc::from(run.provider.as_str()),
                    account_id: run.account_id,
                };
                tokio::spawn(drive(web::Data::from(state.clone()), ticket, true));
            }
        }
    }))
}

async fn drive<H: RunHost>(state: web::Data<H>, run: RunTicket, taken_over: bool) {
    // With Redis, this replica renews its lease on the run while it drives it; if it dies,
    // the lease runs out and another replica takes the run over.
    let renewal = state.jobs().shared().map(|shared| {
        let (state, run_id, every) = (state.clone(), run.id.to_string(), shared.lease() / 3);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(50)));
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(shared) = state.jobs().shared() else {
                    return;
                };
                if matches!(shared.renew(&run_id).await, Ok(false)) {
                    tracing::warn!(run = %run_id, "refresh run: lease lost or run finished elsewhere");
                    return;
                }
            }
        })
    });
    drive_inner(state.get_ref(), &run, taken_over).await;
    if let Some(task) = renewal {
        task.abort();
    }
}

async fn drive_inner<H: RunHost>(state: &H, run: &RunTicket, taken_over: bool) {
    let run = run.clone();
    let jobs = state.jobs();
    let Some(entry) = state.provider(&run.provider) else {
        jobs.fail_any(
            run.id,
            &ApiError::Internal(format!("provider {} vanished", run.provider)),
        )
        .await;
        return;
    };
    let started = Instant::now();
    let deadline = jobs.deadline(&run.provider);
    let style = entry.provider.capabilities().refresh;
    // A webhook-style run whose vendor already has the callback URL (its token is armed) is
    // only waited for: any replica accepts the delivery. One taken over before that is started.
    let armed = match jobs.shared() {
        Some(shared) if taken_over => shared
            .run(&run.id.to_string())
            .await
            .ok()
            .flatten()
            .is_some_and(|stored| stored.token_sha256.is_some()),
        _ => false,
    };
    if armed && style == RefreshStyle::Webhook {
        // The vendor already has the callback URL; any replica accepts its delivery.
        jobs.await_final(run.id, deadline.refresh).await;
        if jobs
            .fail_any(run.id, &ApiError::RefreshTimeout(deadline.refresh))
            .await
        {
            tracing::warn!(provider = %run.provider, "refresh: no webhook delivery before the deadline");
        }
        return;
    }
    // Armed before the provider is called: the delivery may arrive before its answer does.
    let callback_url = match style {
        RefreshStyle::Webhook => match jobs.arm_any(run.id).await {
            Some(url) => Some(url),
            None => {
                jobs.fail_any(
                    run.id,
                    &ApiError::Internal("cannot build the callback URL".into()),
                )
                .await;
                return;
            }
        },
        RefreshStyle::Polling | RefreshStyle::None => None,
    };
    jobs.mark_running_any(run.id).await;
    let request = RefreshRequest {
        account_id: run.account_id.clone(),
        callback_url,
    };
    let answer = tokio::time::timeout(
        deadline.refresh + deadline.grace,
        entry.provider.refresh(&request),
    )
    .await;
    match answer {
        Ok(Ok(RefreshOutcome::Completed)) => {
            let _ = jobs.complete(state, &run, None).await;
        }
        Ok(Ok(RefreshOutcome::AwaitingDelivery)) => {
            // The delivery (or nothing) decides now; stop waiting as soon as the run is final.
            let rest = deadline.refresh.saturating_sub(started.elapsed());
            jobs.await_final(run.id, rest).await;
            if jobs
                .fail_any(run.id, &ApiError::RefreshTimeout(deadline.refresh))
                .await
            {
                tracing::warn!(provider = %run.provider, "refresh: no webhook delivery before the deadline");
            }
        }
        Ok(Err(error)) => {
            jobs.fail_any(run.id, &ApiError::Upstream(error)).await;
        }
        Err(_) => {
            jobs.fail_any(run.id, &ApiError::RefreshTimeout(deadline.refresh))
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs() -> Jobs {
        let config = Config::embedded_default().unwrap();
        Jobs::new(&config, "127.0.0.1:8080".parse().unwrap()).unwrap()
    }

    fn arc(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    #[test]
    fn a_running_refresh_is_joined_and_keys_are_per_client() {
        let jobs = jobs();
        let (a, b, okra) = (arc("a"), arc("b"), arc("okra"));
        let first = jobs.start(&a, &okra, "acc1", Some("k1")).unwrap();
        assert!(first.run.is_some());
        assert_eq!(first.job.status, JobStatus::Queued);
        assert!(first.job.id.starts_with("job_") && first.job.id.len() == 36);

        // Same client, no key or a new key: the same job; no new run.
        let again = jobs.start(&a, &okra, "acc1", None).unwrap();
        assert_eq!(
            (again.job.id.as_str(), again.run.is_none()),
            (first.job.id.as_str(), true)
        );
        let new_key = jobs.start(&a, &okra, "acc1", Some("k2")).unwrap();
        assert_eq!(new_key.job.id, first.job.id);

        // Another client: its own job, the same run.
        let other = jobs.start(&b, &okra, "acc1", Some("k1")).unwrap();
        assert!(other.run.is_none());
        assert_ne!(other.job.id, first.job.id);
        assert!(jobs.get("b", &first.job.id).is_none());
        assert!(jobs.get("a", &first.job.id).is_some());

        // A key reused for another account is refused.
        let reused = jobs.start(&a, &okra, "acc2", Some("k1")).unwrap_err();
        assert_eq!(reused.classify().1, "idempotency_key_reused");

        // Once finished, the key still names the job; without a key, a new run starts.
        let run = first.run.unwrap();
        assert!(jobs.finish(run.id, Ok(None)));
        assert!(!jobs.finish(run.id, Err(ApiError::Timeout(Duration::ZERO).problem(None))));
        let replay = jobs.start(&a, &okra, "acc1", Some("k1")).unwrap();
        assert_eq!(replay.job.id, first.job.id);
        assert_eq!(replay.job.status, JobStatus::Succeeded);
        assert!(jobs.start(&a, &okra, "acc1", None).unwrap().run.is_some());
    }

    #[test]
    fn webhook_tokens_are_checked_in_constant_time_and_only_once() {
        let jobs = jobs();
        let started = jobs.start(&arc("a"), &arc("mono"), "m1", None).unwrap();
        let run = started.run.unwrap();
        let url = Url::parse(&jobs.arm_webhook(run.id).unwrap()).unwrap();
        assert_eq!(url.path(), "/v1/webhooks/mono");
        let query: HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(query["job"], started.job.id);
        let token = &query["token"];
        assert_eq!(token.len(), 64);

        let err = |r: Result<RunTicket, ApiError>| r.unwrap_err().classify().1;
        assert_eq!(
            err(jobs.authorize_delivery("mono", &started.job.id, "wrong")),
            "webhook_unauthorized"
        );
        assert_eq!(
            err(jobs.authorize_delivery("okra", &started.job.id, token)),
            "not_found"
        );
        assert_eq!(
            err(jobs.authorize_delivery("mono", "job_nope", token)),
            "not_found"
        );
        let ticket = jobs
            .authorize_delivery("mono", &started.job.id, token)
            .unwrap();
        assert_eq!(ticket.account_id(), "m1");
        assert!(jobs.finish(ticket.id, Ok(Some(3))));
        assert_eq!(
            err(jobs.authorize_delivery("mono", &started.job.id, token)),
            "job_not_awaiting_delivery"
        );
        let view = jobs.get("a", &started.job.id).unwrap();
        assert_eq!(view.transactions_delivered, Some(3));
        let json = serde_json::to_value(&view).unwrap();
        assert!(!json.to_string().contains(token.as_str()));
    }

    #[test]
    fn polling_runs_have_no_token() {
        let jobs = jobs();
        let started = jobs.start(&arc("a"), &arc("okra"), "o1", None).unwrap();
        assert_eq!(
            jobs.authorize_delivery("okra", &started.job.id, "")
                .unwrap_err()
                .classify()
                .1,
            "webhook_unauthorized"
        );
    }

    #[test]
    fn callback_base_is_public_url_or_the_bound_address() {
        assert_eq!(
            local_base("0.0.0.0:9000".parse().unwrap())
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9000/"
        );
        assert_eq!(
            local_base("[::]:9000".parse().unwrap()).unwrap().as_str(),
            "http://[::1]:9000/"
        );
        let public = public_base(&Url::parse("https://gw.example/base?x=1").unwrap());
        assert_eq!(
            public.join("v1/webhooks/mono").unwrap().as_str(),
            "https://gw.example/base/v1/webhooks/mono"
        );
    }

    /// A finished job is kept `jobs.ttl_secs` after its run finished, then it is gone for
    /// `GET /v1/jobs/{id}`, and its idempotency key starts a new job (on tokio's paused clock).
    #[tokio::test(start_paused = true)]
    async fn a_finished_job_expires_after_its_ttl() {
        let jobs = jobs();
        let ttl = Duration::from_secs(Config::embedded_default().unwrap().jobs.ttl_secs);
        let (a, okra) = (arc("a"), arc("okra"));
        let started = jobs.start(&a, &okra, "acc1", Some("k1")).unwrap();
        let run = started.run.unwrap();
        let id = started.job.id.clone();
        assert!(jobs.finish(run.id, Ok(Some(3))));
        assert_eq!(jobs.get("a", &id).unwrap().status, JobStatus::Succeeded);
        tokio::time::advance(ttl - Duration::from_secs(1)).await;
        assert!(jobs.get("a", &id).is_some(), "kept for its ttl");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(jobs.get("a", &id).is_none(), "gone after it");
        let again = jobs.start(&a, &okra, "acc1", Some("k1")).unwrap();
        assert_ne!(again.job.id, id);
        assert!(again.run.is_some());
    }
}
