//! A refresh job as clients see it (`GET /v1/jobs/{id}`, notifications): the model both job
//! stores (`jobs` in process, `jobs_shared` in Redis) read and write.

use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::error::Problem;

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Accepted, not yet sent to the provider.
    Queued,
    /// The provider is refreshing (or its webhook delivery is awaited).
    Running,
    /// Fresh data can be read; the account's cached snapshots were dropped.
    Succeeded,
    /// The refresh failed; `problem` says why.
    Failed,
}

impl JobStatus {
    /// Whether the job is final.
    pub fn is_finished(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed)
    }
}

/// A refresh job, as `GET /v1/jobs/{id}` and client notifications show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "job_5f2b8c0e9a7d41c3b6e2f0a1d4c7e9b2",
    "status": "succeeded",
    "provider": "okra",
    "account_id": "5f2b8c0e9a7d41c3b6e2f0a1",
    "created_at": "2026-11-21T10:15:30.120Z",
    "started_at": "2026-11-21T10:15:30.121Z",
    "finished_at": "2026-11-21T10:15:32.480Z",
    "status_url": "/v1/jobs/job_5f2b8c0e9a7d41c3b6e2f0a1d4c7e9b2"
}))]
pub struct JobView {
    /// The job's id.
    pub id: String,
    /// Where it stands.
    pub status: JobStatus,
    /// The provider instance refreshing.
    pub provider: String,
    /// The provider's account id.
    pub account_id: String,
    /// When the job was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the job began following the provider's work.
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    /// When the job became final.
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// Where to poll it.
    pub status_url: String,
    /// How many transactions the provider delivered (webhook-style providers, on success).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactions_delivered: Option<u64>,
    /// Why it failed (only when `failed`): the problem document the API would have answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Problem>)]
    pub problem: Option<serde_json::Value>,
}

/// Now, to the millisecond (job timestamps).
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    // Milliseconds are precise enough for people and keep the JSON short.
    now.replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(now)
}
