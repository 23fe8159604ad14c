//! What every adapter's HTTP side shares, written once: the meaning of a vendor's non-2xx
//! status ([`status_error`], with per-vendor overrides where a vendor documents another
//! meaning), the `Retry-After` header ([`parse_retry_after`]), and what a page walk does when a
//! vendor's `next_page` does not advance ([`NonAdvancing`], used by [`crate::walk_pages`]).
//!
//! No HTTP client here: statuses are numbers and headers are text, so the model crate stays
//! free of HTTP dependencies.

use std::time::{Duration, SystemTime};

use crate::ProviderError;

/// What a non-2xx HTTP status means to the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusMeaning {
    /// Our credentials or our account with the vendor (401, 402, 403).
    Unauthorized,
    /// No such account or record (404).
    NotFound,
    /// Slow down (429), with `Retry-After` when the vendor says.
    RateLimited,
    /// The vendor or something behind it failed; worth a retry (408, 5xx).
    Unavailable,
    /// The vendor refused this request (other 4xx).
    Rejected,
    /// Not part of any contract (1xx, 3xx): the answer cannot be read.
    Unexpected,
}

impl StatusMeaning {
    /// The meaning every adapter starts from: 401-403 unauthorized, 404 not found, 429 rate
    /// limited, 408 and 5xx unavailable, other 4xx rejected, anything else unexpected.
    pub fn default_for(status: u16) -> StatusMeaning {
        match status {
            401..=403 => StatusMeaning::Unauthorized,
            404 => StatusMeaning::NotFound,
            429 => StatusMeaning::RateLimited,
            408 | 500..=599 => StatusMeaning::Unavailable,
            400..=499 => StatusMeaning::Rejected,
            _ => StatusMeaning::Unexpected,
        }
    }

    /// The meaning of `status` for a vendor whose documentation overrides some statuses
    /// (`overrides`, first match wins), else [`StatusMeaning::default_for`].
    pub fn of(status: u16, overrides: &[(u16, StatusMeaning)]) -> StatusMeaning {
        overrides
            .iter()
            .find(|(s, _)| *s == status)
            .map_or_else(|| StatusMeaning::default_for(status), |(_, m)| *m)
    }
}

/// The [`ProviderError`] of a non-2xx answer: `status` read through `overrides` (see
/// [`StatusMeaning::of`]), the vendor's `message`, and for a 429 the wait it asked for.
pub fn status_error(
    provider: &str,
    status: u16,
    message: String,
    retry_after: Option<Duration>,
    overrides: &[(u16, StatusMeaning)],
) -> ProviderError {
    let provider = provider.to_owned();
    match StatusMeaning::of(status, overrides) {
        StatusMeaning::Unauthorized => ProviderError::Unauthorized {
            provider,
            status,
            message,
        },
        StatusMeaning::NotFound => ProviderError::NotFound { provider, message },
        StatusMeaning::RateLimited => ProviderError::RateLimited {
            provider,
            retry_after,
            message,
        },
        StatusMeaning::Unavailable => ProviderError::Unavailable {
            provider,
            status: Some(status),
            message,
        },
        StatusMeaning::Rejected => ProviderError::Rejected {
            provider,
            status,
            message,
        },
        StatusMeaning::Unexpected => ProviderError::BadPayload {
            provider,
            status: Some(status),
            message: format!("unexpected HTTP {status}: {message}"),
        },
    }
}

/// A `Retry-After` value as a wait from `now`: delta-seconds (`120`) or an HTTP-date in any of
/// the three forms RFC 9110 accepts (IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, the obsolete
/// RFC 850 and asctime forms). A date in the past is no wait; anything else is `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

/// What a page walk does when a page names a `next_page` that is not after the page just read
/// (or the walk reaches [`MAX_PAGES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonAdvancing {
    /// Stop and keep what was read: for vendors whose docs say a repeated page means the end.
    Stop,
    /// Fail the walk with a bad payload: never loop, never truncate silently.
    Fail,
}

/// Safety net for a vendor whose `next_page` keeps advancing forever.
pub const MAX_PAGES: u32 = 100_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_have_one_default_meaning() {
        let meaning = StatusMeaning::default_for;
        for status in [401, 402, 403] {
            assert_eq!(meaning(status), StatusMeaning::Unauthorized);
        }
        assert_eq!(meaning(404), StatusMeaning::NotFound);
        assert_eq!(meaning(429), StatusMeaning::RateLimited);
        for status in [408, 500, 502, 503, 504, 599] {
            assert_eq!(meaning(status), StatusMeaning::Unavailable, "{status}");
        }
        for status in [400, 405, 409, 422, 424] {
            assert_eq!(meaning(status), StatusMeaning::Rejected, "{status}");
        }
        for status in [100, 302, 304, 600] {
            assert_eq!(meaning(status), StatusMeaning::Unexpected, "{status}");
        }
    }

    #[test]
    fn a_vendor_override_wins_for_its_status_only() {
        let overrides = [(424, StatusMeaning::Unavailable)];
        assert_eq!(
            StatusMeaning::of(424, &overrides),
            StatusMeaning::Unavailable
        );
        assert_eq!(StatusMeaning::of(422, &overrides), StatusMeaning::Rejected);
        let err = status_error("m", 424, "down".into(), None, &overrides);
        assert!(err.is_retryable());
        let err = status_error("m", 424, "down".into(), None, &[]);
        assert!(matches!(err, ProviderError::Rejected { status: 424, .. }));
    }

    #[test]
    fn errors_carry_status_message_and_wait() {
        let wait = Some(Duration::from_secs(7));
        let err = status_error("m", 429, "slow".into(), wait, &[]);
        assert_eq!(err.retry_after(), wait);
        assert!(matches!(
            status_error("m", 503, "x".into(), None, &[]),
            ProviderError::Unavailable {
                status: Some(503),
                ..
            }
        ));
        assert!(matches!(
            status_error("m", 302, "moved".into(), None, &[]),
            ProviderError::BadPayload { status: Some(302), ref message, .. } if message == "unexpected HTTP 302: moved"
        ));
    }

    #[test]
    fn retry_after_reads_seconds_and_every_http_date_form() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:07 GMT").unwrap();
        let thirty = Some(Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            thirty
        );
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now),
            thirty
        );
        assert_eq!(parse_retry_after("Sun Nov  6 08:49:37 1994", now), thirty);
        // A date already past: go now.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in ["", "-1", "1.5", "soon", "2024-01-01T00:00:00Z"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }
}
