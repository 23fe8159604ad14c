//! Provider failures that know whose fault they are and whether a retry can help.

use std::time::Duration;

/// Whose fault a failure is: decides the gateway's answer and whether to page someone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The provider failed or misbehaved (5xx, timeouts, garbage payloads, rate limits).
    Upstream,
    /// Our own configuration is wrong (credentials rejected, account out of funds).
    Config,
    /// The caller asked for something that does not exist or cannot be done.
    Caller,
}

/// A vendor record that could not be mapped onto the canonical model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {record}: field {field}: {reason}")]
pub struct MappingError {
    /// The vendor's id of the record (or its position when it has none).
    pub record: String,
    /// The offending field.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
    /// The field's raw JSON value, when known.
    pub raw_value: Option<String>,
    /// Whether the field names another currency than the account's.
    pub currency_mismatch: bool,
}

impl MappingError {
    /// A mapping error for `field` of `record`.
    pub fn new(record: impl Into<String>, field: &'static str, reason: impl Into<String>) -> Self {
        MappingError {
            record: record.into(),
            field,
            reason: reason.into(),
            raw_value: None,
            currency_mismatch: false,
        }
    }

    /// The same error, carrying the field's raw JSON value.
    pub fn with_raw_value(mut self, raw: &str) -> Self {
        self.raw_value = Some(raw.to_owned());
        self
    }

    /// The same error, carrying `raw` (the whole record, say) unless it already has a raw value.
    pub fn or_raw_value(self, raw: &str) -> Self {
        if self.raw_value.is_some() {
            self
        } else {
            self.with_raw_value(raw)
        }
    }

    /// The same error, marked as a currency mismatch.
    pub fn as_currency_mismatch(mut self) -> Self {
        self.currency_mismatch = true;
        self
    }
}

/// Why a provider call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider refused our credentials or our account with it (401, 402, 403).
    #[error("{provider} refused our credentials (HTTP {status}): {message}")]
    Unauthorized {
        /// Provider instance name.
        provider: String,
        /// The provider's HTTP status.
        status: u16,
        /// The provider's message.
        message: String,
    },
    /// The thing asked for does not exist at the provider (404).
    #[error("{provider}: not found: {message}")]
    NotFound {
        /// Provider instance name.
        provider: String,
        /// The provider's message.
        message: String,
    },
    /// The provider rejected the request as malformed (400): a caller's or our fault.
    #[error("{provider} rejected the request (HTTP {status}): {message}")]
    Rejected {
        /// Provider instance name.
        provider: String,
        /// The provider's HTTP status.
        status: u16,
        /// The provider's message.
        message: String,
    },
    /// The provider's rate limit was hit (429).
    #[error("{provider} is rate limiting us")]
    RateLimited {
        /// Provider instance name.
        provider: String,
        /// How long the provider asked us to wait, when it said.
        retry_after: Option<Duration>,
        /// The provider's message.
        message: String,
    },
    /// The provider could not be reached or failed (5xx, timeout, connection error, 408, 424).
    #[error("{provider} is unavailable: {message}")]
    Unavailable {
        /// Provider instance name.
        provider: String,
        /// The provider's HTTP status, when it answered.
        status: Option<u16>,
        /// What happened.
        message: String,
    },
    /// The provider answered with a body we cannot read, or an error envelope on a 2xx.
    #[error("{provider} sent a bad payload: {message}")]
    BadPayload {
        /// Provider instance name.
        provider: String,
        /// The provider's HTTP status.
        status: Option<u16>,
        /// What is wrong (the vendor's message when it sent one).
        message: String,
    },
    /// A record could not be mapped onto the canonical model.
    #[error("{provider} sent a record we cannot map: {source}")]
    Mapping {
        /// Provider instance name.
        provider: String,
        /// Which record and field.
        source: MappingError,
    },
    /// The provider cannot do this (a missing capability).
    #[error("{provider} does not support {capability}")]
    Unsupported {
        /// Provider instance name.
        provider: String,
        /// The capability, e.g. `"customer scope"`.
        capability: String,
    },
    /// Our configuration of the provider is unusable (bad base URL, missing secret).
    #[error("{provider} is misconfigured: {message}")]
    Config {
        /// Provider instance name.
        provider: String,
        /// What is wrong.
        message: String,
    },
    /// The caller's side held the request back to protect the provider: it was never sent.
    #[error("{provider} was not called: {reason}")]
    Throttled {
        /// Provider instance name.
        provider: String,
        /// Why the request was held back.
        reason: ThrottleReason,
        /// When a request is likely to be let through again.
        retry_after: Duration,
    },
}

/// Why a request to a provider was held back before reaching it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ThrottleReason {
    /// The provider's request quota had no room before the deadline.
    #[error("its request quota is used up")]
    Quota,
    /// Every allowed concurrent request to the provider stayed busy until the deadline.
    #[error("all its concurrent request slots are busy")]
    Concurrency,
    /// The provider failed repeatedly; calls to it are suspended for a cool-down.
    #[error("its circuit breaker is open after repeated failures")]
    CircuitOpen,
}

impl ProviderError {
    /// The provider lacks `capability`.
    pub fn unsupported(provider: &str, capability: impl Into<String>) -> Self {
        ProviderError::Unsupported {
            provider: provider.to_owned(),
            capability: capability.into(),
        }
    }

    /// Whose fault the failure is.
    pub fn fault(&self) -> Fault {
        match self {
            ProviderError::Unauthorized { .. } | ProviderError::Config { .. } => Fault::Config,
            ProviderError::NotFound { .. }
            | ProviderError::Rejected { .. }
            | ProviderError::Unsupported { .. } => Fault::Caller,
            ProviderError::RateLimited { .. }
            | ProviderError::Unavailable { .. }
            | ProviderError::BadPayload { .. }
            | ProviderError::Mapping { .. }
            | ProviderError::Throttled { .. } => Fault::Upstream,
        }
    }

    /// Whether the same request may succeed if sent again later.
    ///
    /// Rate limits and throttling are retryable only after [`ProviderError::retry_after`]; the
    /// gateway's outbound lane honours that instead of retrying blindly.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::Unavailable { .. }
                | ProviderError::RateLimited { .. }
                | ProviderError::Throttled { .. }
        )
    }

    /// How long the provider (or the lane that held the request back) asked us to wait.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::RateLimited { retry_after, .. } => *retry_after,
            ProviderError::Throttled { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The provider instance that failed.
    pub fn provider(&self) -> &str {
        match self {
            ProviderError::Unauthorized { provider, .. }
            | ProviderError::NotFound { provider, .. }
            | ProviderError::Rejected { provider, .. }
            | ProviderError::RateLimited { provider, .. }
            | ProviderError::Unavailable { provider, .. }
            | ProviderError::BadPayload { provider, .. }
            | ProviderError::Mapping { provider, .. }
            | ProviderError::Unsupported { provider, .. }
            | ProviderError::Config { provider, .. }
            | ProviderError::Throttled { provider, .. } => provider,
        }
    }

    /// The provider's HTTP status, when it answered with one.
    pub fn upstream_status(&self) -> Option<u16> {
        match self {
            ProviderError::Unauthorized { status, .. } | ProviderError::Rejected { status, .. } => {
                Some(*status)
            }
            ProviderError::RateLimited { .. } => Some(429),
            ProviderError::Unavailable { status, .. }
            | ProviderError::BadPayload { status, .. } => *status,
            ProviderError::NotFound { .. } => Some(404),
            ProviderError::Mapping { .. }
            | ProviderError::Unsupported { .. }
            | ProviderError::Config { .. }
            | ProviderError::Throttled { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_and_retryability() {
        let unavailable = ProviderError::Unavailable {
            provider: "okra".into(),
            status: Some(503),
            message: "down".into(),
        };
        assert_eq!(unavailable.fault(), Fault::Upstream);
        assert!(unavailable.is_retryable());
        assert_eq!(unavailable.upstream_status(), Some(503));

        let limited = ProviderError::RateLimited {
            provider: "okra".into(),
            retry_after: Some(Duration::from_secs(60)),
            message: "slow down".into(),
        };
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(60)));
        assert_eq!(limited.upstream_status(), Some(429));

        let auth = ProviderError::Unauthorized {
            provider: "mono".into(),
            status: 401,
            message: "bad key".into(),
        };
        assert_eq!(auth.fault(), Fault::Config);
        assert!(!auth.is_retryable());

        let throttled = ProviderError::Throttled {
            provider: "okra".into(),
            reason: ThrottleReason::CircuitOpen,
            retry_after: Duration::from_secs(3),
        };
        assert_eq!(throttled.fault(), Fault::Upstream);
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(throttled.upstream_status(), None);
        assert_eq!(
            throttled.to_string(),
            "okra was not called: its circuit breaker is open after repeated failures"
        );

        let unsupported = ProviderError::unsupported("mono", "customer scope");
        assert_eq!(unsupported.fault(), Fault::Caller);
        assert_eq!(
            unsupported.to_string(),
            "mono does not support customer scope"
        );
        assert_eq!(unsupported.provider(), "mono");
    }
}
