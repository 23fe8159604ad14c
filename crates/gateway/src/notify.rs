//! Client notifications: a signed POST to a client's configured `webhook_url` when one of its
//! refresh jobs finishes, or when an account has changes to sync (`transactions.sync_available`,
//! sent by `sync`), the [Standard Webhooks](https://www.standardwebhooks.com/) way.
//!
//! Each event is one JSON body, `{"type": "refresh.succeeded" | "refresh.failed", "timestamp":
//! RFC 3339, "data": <the job, as GET /v1/jobs/{id} shows it>}`, sent with three headers:
//! - `webhook-id`: `msg_` + 128 random bits in hex, fixed for the event: every retry repeats it,
//!   so a receiver can drop duplicates;
//! - `webhook-timestamp`: the attempt's time in Unix seconds (each retry is signed afresh, so a
//!   receiver's replay window keeps working however late the retry is);
//! - `webhook-signature`: `v1,` + base64 of HMAC-SHA256(key, `"{id}.{timestamp}.{body}"`).
//!
//! The key: a secret starting `whsec_` is decoded from the base64 that follows (the Standard
//! Webhooks format, 24-64 bytes, which receivers' libraries take as is); any other secret is used
//! as its own UTF-8 bytes (at least 16), for receivers that compute the HMAC themselves.
//!
//! Attempts that fail (no connection, a timeout, a non-2xx answer) are retried with exponential
//! backoff up to `jobs.notify_max_attempts`; redirects are not followed. Sending never delays a
//! job: it runs in its own task after the job is already final. URLs only ever come from the
//! configuration, never from a request. Neither the key nor the URL is ever logged (a URL may
//! carry a token of the receiver's).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde::Serialize;
use time::OffsetDateTime;

use crate::config::{ClientConfig, ClientWebhook, JobsSection};

pub use crate::signing::{WHSEC_PREFIX, WebhookKey};

/// How notification attempts are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The wait before the second attempt; it doubles after each failure.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
    /// Timeout of one attempt.
    pub timeout: Duration,
}

impl RetryPolicy {
    /// The policy of the `[jobs]` section.
    pub fn from_config(jobs: &JobsSection) -> RetryPolicy {
        RetryPolicy {
            max_attempts: jobs.notify_max_attempts.max(1),
            initial_backoff: Duration::from_millis(jobs.notify_initial_backoff_ms),
            max_backoff: Duration::from_millis(jobs.notify_max_backoff_ms),
            timeout: Duration::from_millis(jobs.notify_timeout_ms),
        }
    }
}

/// One event: what a receiver gets as the body.
#[derive(Debug, Serialize)]
struct Event<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    timestamp: OffsetDateTime,
    data: &'a T,
}

/// Sends signed notifications to the clients that configured a webhook.
pub struct Notifier {
    http: reqwest::Client,
    targets: HashMap<String, Arc<ClientWebhook>>,
    policy: RetryPolicy,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("clients", &self.targets.keys().collect::<Vec<_>>())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// A notifier for the configured clients' webhooks.
    pub fn new(clients: &[ClientConfig], policy: RetryPolicy) -> Result<Notifier, reqwest::Error> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(policy.timeout.min(Duration::from_secs(5)))
            .timeout(policy.timeout)
            // The configured URL is the only place a notification may go.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("transactions-gateway/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let targets = clients
            .iter()
            .filter_map(|c| Some((c.name.clone(), Arc::new(c.webhook.clone()?))))
            .collect();
        Ok(Notifier {
            http,
            targets,
            policy,
        })
    }

    /// The clients that configured a webhook.
    pub fn clients(&self) -> impl Iterator<Item = &str> {
        self.targets.keys().map(String::as_str)
    }

    /// Whether `client` has a webhook configured.
    pub fn has_target(&self, client: &str) -> bool {
        self.targets.contains_key(client)
    }

    /// Sends `data` as an event of type `kind` to `client`'s webhook, if it has one, in the
    /// background; returns the event's `webhook-id` when one is sent.
    pub fn notify<T: Serialize>(&self, client: &str, kind: &str, data: &T) -> Option<String> {
        let target = self.targets.get(client)?.clone();
        let event = Event {
            kind,
            timestamp: OffsetDateTime::now_utc(),
            data,
        };
        let body = match serde_json::to_vec(&event) {
            Ok(body) => bytes_of(body),
            Err(error) => {
                tracing::error!(client, %error, "notification not serializable");
                return None;
            }
        };
        let id = format!("msg_{}", hex::encode(rand::rng().random::<[u8; 16]>()));
        let delivery = Delivery {
            http: self.http.clone(),
            target,
            client: client.to_owned(),
            id: id.clone(),
            body,
            policy: self.policy,
        };
        tokio::spawn(delivery.run());
        Some(id)
    }
}

fn bytes_of(body: Vec<u8>) -> Arc<[u8]> {
    body.into()
}

/// One event on its way to one receiver.
struct Delivery {
    http: reqwest::Client,
    target: Arc<ClientWebhook>,
    client: String,
    id: String,
    body: Arc<[u8]>,
    policy: RetryPolicy,
}

impl Delivery {
    async fn run(self) {
        let mut backoff = self.policy.initial_backoff;
        for attempt in 1..=self.policy.max_attempts {
            let timestamp = OffsetDateTime::now_utc().unix_timestamp();
            let signature = self.target.key.sign(&self.id, timestamp, &self.body);
            let sent = self
                .http
                .post(self.target.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("webhook-id", &self.id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature)
                .body(self.body.to_vec())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => {
                    tracing::info!(client = %self.client, webhook_id = %self.id, attempt, "notification delivered");
                    crate::metrics::notification_attempt("delivered");
                    return;
                }
                Ok(response) => {
                    tracing::warn!(client = %self.client, webhook_id = %self.id, attempt, status = response.status().as_u16(), "notification refused");
                    crate::metrics::notification_attempt("refused");
                }
                Err(error) => {
                    let error = error.without_url();
                    tracing::warn!(client = %self.client, webhook_id = %self.id, attempt, %error, "notification failed");
                    crate::metrics::notification_attempt("failed");
                }
            }
            if attempt < self.policy.max_attempts {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(self.policy.max_backoff);
            }
        }
        tracing::warn!(client = %self.client, webhook_id = %self.id, attempts = self.policy.max_attempts, "notification abandoned");
        crate::metrics::notification_attempt("abandoned");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    #[test]
    fn signatures_reproduce_the_standard_webhooks_test_vector() {
        // The vector published with the Standard Webhooks reference libraries.
        let key = WebhookKey::from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            key.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn raw_secrets_are_their_own_bytes() {
        let raw = WebhookKey::from_secret("a-long-enough-raw-secret").unwrap();
        assert_eq!(&*raw.0, b"a-long-enough-raw-secret");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"a-long-enough-raw-secret").unwrap();
        mac.update(b"msg_1.42.{}");
        assert_eq!(
            raw.sign("msg_1", 42, b"{}"),
            format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
        );
    }

    #[test]
    fn weak_or_malformed_secrets_are_refused() {
        assert!(WebhookKey::from_secret("short").is_err());
        assert!(WebhookKey::from_secret("whsec_not base64!").is_err());
        assert!(WebhookKey::from_secret("whsec_c2hvcnQ=").is_err()); // 5 bytes
    }

    #[test]
    fn keys_never_print() {
        let key = WebhookKey::from_secret("a-long-enough-raw-secret").unwrap();
        assert!(!format!("{key:?}").contains("raw-secret"));
    }
}
