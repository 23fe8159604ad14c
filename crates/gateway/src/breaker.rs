//! A circuit breaker: the state machine that stops calling a provider that keeps failing.
//!
//! Closed: calls go through; a run of `failure_threshold` consecutive failures opens it.
//! Open: calls fail fast for `open_for`; then the next call becomes the one half-open probe
//! (every other call still fails fast while it runs). The probe's success closes the breaker;
//! its failure opens it again for another `open_for`. A probe abandoned without an outcome (its
//! caller gave up) lets the next call probe instead, so the breaker can never stay stuck.
//!
//! Time is passed in (`now`), so the unit tests below walk every transition without sleeping.
//! The breaker only counts; what is a failure is the caller's decision (see `outbound`).

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// How long a caller refused during a probe is asked to wait.
const PROBE_BUSY_RETRY: Duration = Duration::from_secs(1);

/// The breaker's state, as `GET /v1/providers` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Calls go through.
    Closed,
    /// Calls fail fast until the cool-down ends.
    Open,
    /// The cool-down ended: one probe call decides.
    HalfOpen,
}

impl CircuitState {
    /// The state's name in the API (`closed`, `open`, `half_open`).
    pub fn as_str(&self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

/// A breaker's state at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitStatus {
    /// Closed, open or half-open.
    pub state: CircuitState,
    /// Failures in a row (the run that opened the breaker, while open or half-open).
    pub consecutive_failures: u32,
    /// While open: how long until a probe is let through.
    pub probe_in: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

#[derive(Debug)]
struct Inner {
    state: State,
    failures: u32,
}

/// One provider's circuit breaker.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    open_for: Duration,
    inner: Mutex<Inner>,
}

/// Permission for one call; report its outcome with [`Ticket::success`] or
/// [`Ticket::failure`], or drop it when the outcome says nothing about the provider's health.
#[derive(Debug)]
#[must_use = "report the call's outcome, or drop the ticket when it says nothing"]
pub struct Ticket<'a> {
    breaker: &'a Breaker,
    probe: bool,
    settled: bool,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` consecutive failures, for `open_for`.
    pub fn new(threshold: u32, open_for: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            open_for,
            inner: Mutex::new(Inner {
                state: State::Closed,
                failures: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a call could be let through now, without taking the probe: `Err(wait)` while
    /// open (or while the probe runs). For failing fast before waiting in any line.
    pub fn check(&self, now: Instant) -> Result<(), Duration> {
        match self.lock().state {
            State::Closed | State::HalfOpen { probing: false } => Ok(()),
            State::Open { until } if now >= until => Ok(()),
            State::Open { until } => Err(until - now),
            State::HalfOpen { probing: true } => Err(PROBE_BUSY_RETRY),
        }
    }

    /// Permission for one call now, or how long to wait: the first call after the cool-down
    /// becomes the probe.
    pub fn acquire(&self, now: Instant) -> Result<Ticket<'_>, Duration> {
        let mut inner = self.lock();
        let probe = match inner.state {
            State::Closed => false,
            State::Open { until } if now < until => return Err(until - now),
            State::Open { .. } | State::HalfOpen { probing: false } => {
                inner.state = State::HalfOpen { probing: true };
                tracing::info!("circuit half-open: letting one probe through");
                true
            }
            State::HalfOpen { probing: true } => return Err(PROBE_BUSY_RETRY),
        };
        Ok(Ticket {
            breaker: self,
            probe,
            settled: false,
        })
    }

    /// The state now.
    pub fn status(&self, now: Instant) -> CircuitStatus {
        let inner = self.lock();
        let (state, probe_in) = match inner.state {
            State::Closed => (CircuitState::Closed, None),
            // A cool-down that has ended is half-open in all but name: the next call probes.
            State::Open { until } if now >= until => (CircuitState::HalfOpen, None),
            State::Open { until } => (CircuitState::Open, Some(until - now)),
            State::HalfOpen { .. } => (CircuitState::HalfOpen, None),
        };
        CircuitStatus {
            state,
            consecutive_failures: inner.failures,
            probe_in,
        }
    }
}

impl Ticket<'_> {
    /// Whether this call is the half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// The provider answered properly: a probe closes the breaker; any success ends a run of
    /// failures while closed.
    pub fn success(mut self) {
        self.settled = true;
        let mut inner = self.breaker.lock();
        match inner.state {
            State::HalfOpen { .. } if self.probe => {
                inner.state = State::Closed;
                inner.failures = 0;
                tracing::info!("circuit closed: the probe succeeded");
            }
            State::Closed => inner.failures = 0,
            // A call let through before the breaker opened says nothing about now.
            State::Open { .. } | State::HalfOpen { .. } => {}
        }
    }

    /// The provider failed: a probe reopens the breaker; a run reaching the threshold opens it.
    pub fn failure(mut self, now: Instant) {
        self.settled = true;
        let breaker = self.breaker;
        let mut inner = breaker.lock();
        match inner.state {
            State::HalfOpen { .. } if self.probe => {
                inner.failures = inner.failures.saturating_add(1);
                inner.state = State::Open {
                    until: now + breaker.open_for,
                };
                tracing::warn!(
                    open_ms = breaker.open_for.as_millis() as u64,
                    "circuit reopened: the probe failed"
                );
            }
            State::Closed => {
                inner.failures = inner.failures.saturating_add(1);
                if inner.failures >= breaker.threshold {
                    inner.state = State::Open {
                        until: now + breaker.open_for,
                    };
                    tracing::warn!(
                        failures = inner.failures,
                        open_ms = breaker.open_for.as_millis() as u64,
                        "circuit opened"
                    );
                }
            }
            State::Open { .. } | State::HalfOpen { .. } => {}
        }
    }
}

impl Drop for Ticket<'_> {
    /// No outcome (the caller gave up, or the answer says nothing about the provider's health):
    /// an abandoned probe lets the next call probe instead.
    fn drop(&mut self) {
        if self.probe && !self.settled {
            let mut inner = self.breaker.lock();
            if inner.state == (State::HalfOpen { probing: true }) {
                inner.state = State::HalfOpen { probing: false };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: Duration = Duration::from_secs(10);

    fn breaker() -> (Breaker, Instant) {
        (Breaker::new(3, OPEN), Instant::now())
    }

    fn fail(b: &Breaker, now: Instant) {
        b.acquire(now).unwrap().failure(now);
    }

    #[test]
    fn opens_after_the_threshold_of_consecutive_failures() {
        let (b, t0) = breaker();
        fail(&b, t0);
        fail(&b, t0);
        assert_eq!(b.status(t0).state, CircuitState::Closed);
        assert_eq!(b.status(t0).consecutive_failures, 2);
        fail(&b, t0);
        let status = b.status(t0);
        assert_eq!(status.state, CircuitState::Open);
        assert_eq!(status.consecutive_failures, 3);
        assert_eq!(status.probe_in, Some(OPEN));
        assert_eq!(b.check(t0), Err(OPEN));
        assert_eq!(
            b.acquire(t0 + Duration::from_secs(4)).unwrap_err(),
            OPEN - Duration::from_secs(4)
        );
    }

    #[test]
    fn a_success_ends_the_run() {
        let (b, t0) = breaker();
        fail(&b, t0);
        fail(&b, t0);
        b.acquire(t0).unwrap().success();
        fail(&b, t0);
        fail(&b, t0);
        assert_eq!(b.status(t0).state, CircuitState::Closed);
        assert_eq!(b.status(t0).consecutive_failures, 2);
    }

    #[test]
    fn outcomes_without_a_verdict_change_nothing() {
        let (b, t0) = breaker();
        fail(&b, t0);
        drop(b.acquire(t0).unwrap());
        assert_eq!(b.status(t0).consecutive_failures, 1);
    }

    #[test]
    fn after_the_cool_down_one_probe_goes_and_its_success_closes() {
        let (b, t0) = breaker();
        for _ in 0..3 {
            fail(&b, t0);
        }
        let later = t0 + OPEN;
        assert_eq!(b.check(later), Ok(()));
        assert_eq!(b.status(later).state, CircuitState::HalfOpen);
        let probe = b.acquire(later).unwrap();
        assert!(probe.is_probe());
        // Everyone else fails fast while the probe runs.
        assert_eq!(b.acquire(later).unwrap_err(), PROBE_BUSY_RETRY);
        assert!(b.check(later).is_err());
        probe.success();
        let status = b.status(later);
        assert_eq!(status.state, CircuitState::Closed);
        assert_eq!(status.consecutive_failures, 0);
        assert!(!b.acquire(later).unwrap().is_probe());
    }

    #[test]
    fn a_failed_probe_reopens_for_another_cool_down() {
        let (b, t0) = breaker();
        for _ in 0..3 {
            fail(&b, t0);
        }
        let later = t0 + OPEN + Duration::from_secs(1);
        b.acquire(later).unwrap().failure(later);
        let status = b.status(later);
        assert_eq!(status.state, CircuitState::Open);
        assert_eq!(status.consecutive_failures, 4);
        assert_eq!(b.acquire(later + OPEN / 2).unwrap_err(), OPEN / 2);
        assert!(b.acquire(later + OPEN).unwrap().is_probe());
    }

    #[test]
    fn an_abandoned_probe_lets_the_next_call_probe() {
        let (b, t0) = breaker();
        for _ in 0..3 {
            fail(&b, t0);
        }
        let later = t0 + OPEN;
        drop(b.acquire(later).unwrap());
        assert_eq!(b.status(later).state, CircuitState::HalfOpen);
        let probe = b.acquire(later).unwrap();
        assert!(probe.is_probe());
        probe.success();
        assert_eq!(b.status(later).state, CircuitState::Closed);
    }

    #[test]
    fn late_outcomes_of_calls_admitted_while_closed_do_not_move_an_open_breaker() {
        let (b, t0) = breaker();
        let early = b.acquire(t0).unwrap();
        let early_failure = b.acquire(t0).unwrap();
        for _ in 0..3 {
            fail(&b, t0);
        }
        early.success();
        early_failure.failure(t0 + Duration::from_secs(5));
        let status = b.status(t0);
        assert_eq!(status.state, CircuitState::Open);
        assert_eq!(status.probe_in, Some(OPEN));
    }

    #[test]
    fn a_threshold_of_one_opens_on_the_first_failure() {
        let b = Breaker::new(1, OPEN);
        let t0 = Instant::now();
        fail(&b, t0);
        assert_eq!(b.status(t0).state, CircuitState::Open);
    }
}
