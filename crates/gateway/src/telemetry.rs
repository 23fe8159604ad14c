//! Logging: the `tracing` subscriber, and the facts about one request that its access-log line
//! reports (which provider answered, how many upstream requests it made).
//!
//! Logs go to stderr, filtered by `RUST_LOG` (default `info`), as text or as one JSON object per
//! line: `LOG_FORMAT=json|text` wins over the configuration's `log.format`. Text carries ANSI
//! colours only when stderr is a terminal, so files and log collectors get plain text.
//!
//! Request facts live in a task-local set by the request middleware; code deep in a request
//! (the registry, the outbound lane) notes into it without knowing about logging. Work outside
//! a request (refresh runs, notifications) has no facts and notes nothing.

use std::future::Future;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub use crate::access_log::ACCESS_TARGET;

/// The format in effect: `LOG_FORMAT` when set to `json` or `text`, else `configured`.
pub fn effective_format(configured: LogFormat) -> LogFormat {
    match std::env::var("LOG_FORMAT") {
        Ok(v) if v.eq_ignore_ascii_case("json") => LogFormat::Json,
        Ok(v) if v.eq_ignore_ascii_case("text") => LogFormat::Text,
        _ => configured,
    }
}

/// Installs the global subscriber once; later calls do nothing. The access log then writes
/// its lines itself, in the same format ([`crate::access_log`]), unless they carry colours.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let format = effective_format(format);
    let ansi = std::io::stderr().is_terminal();
    let installed = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
    };
    if installed.is_ok() && (format == LogFormat::Json || !ansi) {
        crate::access_log::install(format);
    }
}

/// Writes the access-log lines not yet written (before the process ends).
pub fn flush() {
    crate::access_log::flush();
}

/// What one request did, for its access-log line.
#[derive(Debug, Default)]
pub struct RequestFacts {
    /// The request's id (for the audit trail; `None` for nested facts).
    request_id: Option<Arc<str>>,
    upstream_calls: AtomicU32,
    provider: OnceLock<Arc<str>>,
    route: OnceLock<&'static str>,
    /// The transactions the answer carried (for the audit trail), once a handler said so.
    returned: OnceLock<u64>,
    /// The enclosing facts, which count every call of these too (see [`counting_upstream_calls`]).
    parent: Option<Arc<RequestFacts>>,
}

impl RequestFacts {
    /// Fresh facts of the request with this id.
    pub fn for_request(request_id: Arc<str>) -> RequestFacts {
        RequestFacts {
            request_id: Some(request_id),
            ..RequestFacts::default()
        }
    }

    /// Upstream requests made so far.
    pub fn upstream_calls(&self) -> u32 {
        self.upstream_calls.load(Ordering::Relaxed)
    }

    /// The provider instance the request was routed to, once known.
    pub fn provider(&self) -> Option<&str> {
        self.provider.get().map(|p| &**p)
    }

    /// The route template the request reached, when a `/v1` route noted it (cheaper than
    /// asking actix's resource map again).
    pub fn route(&self) -> Option<&'static str> {
        self.route.get().copied()
    }
}

/// The current request's id (`None` outside a request).
pub fn request_id() -> Option<Arc<str>> {
    FACTS
        .try_with(|facts| {
            let mut next = Some(facts);
            while let Some(facts) = next {
                if let Some(id) = &facts.request_id {
                    return Some(id.clone());
                }
                next = facts.parent.as_ref();
            }
            None
        })
        .ok()
        .flatten()
}

/// How many transactions the current request's answer carried, if its handler said
/// ([`note_returned`]; `None` outside a request).
pub fn returned() -> Option<u64> {
    FACTS
        .try_with(|facts| facts.returned.get().copied())
        .ok()
        .flatten()
}

/// Notes how many transactions the current request's answer carries (for the audit trail:
/// handlers report what they returned, they decide nothing); the first note wins.
pub fn note_returned(count: u64) {
    let _ = FACTS.try_with(|facts| {
        let mut next = Some(facts);
        while let Some(facts) = next {
            let _ = facts.returned.set(count);
            next = facts.parent.as_ref();
        }
    });
}

tokio::task_local! {
    static FACTS: Arc<RequestFacts>;
}

/// Runs `work` (one request) with fresh facts, readable through `facts` afterwards.
pub async fn with_request_facts<F: Future>(facts: Arc<RequestFacts>, work: F) -> F::Output {
    FACTS.scope(facts, work).await
}

/// Runs `work` counting its upstream requests apart (they still count for the request too).
pub async fn counting_upstream_calls<F: Future>(work: F) -> (F::Output, u32) {
    let facts = Arc::new(RequestFacts {
        parent: FACTS.try_with(Arc::clone).ok(),
        ..Default::default()
    });
    let output = FACTS.scope(facts.clone(), work).await;
    (output, facts.upstream_calls())
}

/// Notes one upstream request made for the current request (if any).
pub fn count_upstream_call() {
    let _ = FACTS.try_with(|facts| {
        let mut next = Some(facts);
        while let Some(facts) = next {
            facts.upstream_calls.fetch_add(1, Ordering::Relaxed);
            next = facts.parent.as_ref();
        }
    });
}

/// Notes the provider instance the current request (if any) was routed to; the first wins.
pub fn note_provider(name: &Arc<str>) {
    let _ = FACTS.try_with(|facts| {
        let mut next = Some(facts);
        while let Some(facts) = next {
            let _ = facts.provider.set(name.clone());
            next = facts.parent.as_ref();
        }
    });
}

/// Notes the route template the current request (if any) reached.
pub fn note_route(pattern: &'static str) {
    let _ = FACTS.try_with(|facts| facts.route.set(pattern));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn nested_counts_add_up_to_the_request() {
        let facts = Arc::new(RequestFacts::default());
        let inner = with_request_facts(facts.clone(), async {
            count_upstream_call();
            let ((), inner) = counting_upstream_calls(async {
                count_upstream_call();
                count_upstream_call();
                note_provider(&Arc::from("okra"));
            })
            .await;
            inner
        })
        .await;
        assert_eq!(inner, 2);
        assert_eq!(facts.upstream_calls(), 3);
        assert_eq!(facts.provider(), Some("okra"));
        // Outside a request nothing is noted, and nothing fails.
        count_upstream_call();
        assert_eq!(facts.upstream_calls(), 3);
    }
}
