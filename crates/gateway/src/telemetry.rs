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
    /// The request's id (for the audit trail and the span; `None` for nested facts).
    request_id: Option<Arc<str>>,
    /// The request's span, once made ([`RequestFacts::span`]).
    span: OnceLock<tracing::Span>,
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

    /// The request's span, `request{request_id=...}`, made the first time it is asked for
    /// (nested facts answer their request's); `Span::none()` for work outside a request.
    ///
    /// Made on demand because most requests never need it: a cache hit logs nothing, and
    /// making a span costs about 5,000 instructions, 5 % of a hit (docs/performance.md section
    /// 1). [`Spanned`] runs a request in it once it exists, and makes it when the request
    /// first waits; code that may log before a request's first wait asks for it explicitly.
    pub fn span(&self) -> tracing::Span {
        let root = self.root();
        root.span
            .get_or_init(|| match &root.request_id {
                Some(id) => tracing::info_span!(parent: None, "request", request_id = &**id),
                None => tracing::Span::none(),
            })
            .clone()
    }

    /// The request's span if it has been made.
    fn made_span(&self) -> Option<&tracing::Span> {
        self.root().span.get()
    }

    /// The request's own facts (the outermost of nested ones).
    fn root(&self) -> &RequestFacts {
        let mut facts = self;
        while let Some(parent) = &facts.parent {
            facts = parent;
        }
        facts
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

/// The current request's span ([`RequestFacts::span`]; `Span::none()` outside a request): for
/// an event or a piece of work that may come before the request's first wait.
pub fn request_span() -> tracing::Span {
    FACTS
        .try_with(|facts| facts.span())
        .unwrap_or_else(|_| tracing::Span::none())
}

/// A request's future, run inside its span from the moment the span exists: made by someone
/// during a poll ([`request_span`]), or here when the request first waits (every later poll,
/// and so every event after the first wait, is inside it).
pub struct Spanned<F> {
    inner: F,
    facts: Arc<RequestFacts>,
}

impl<F> Spanned<F> {
    /// `inner`, the request with these facts.
    pub fn new(inner: F, facts: Arc<RequestFacts>) -> Spanned<F> {
        Spanned { inner, facts }
    }
}

impl<F: Future + Unpin> Future for Spanned<F> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = self.get_mut();
        let span = this.facts.made_span();
        let entered = span.map(tracing::Span::enter);
        let poll = std::pin::Pin::new(&mut this.inner).poll(cx);
        drop(entered);
        if poll.is_pending() && span.is_none() {
            this.facts.span();
        }
        poll
    }
}

/// The current request's id (`None` outside a request).
pub fn request_id() -> Option<Arc<str>> {
    FACTS
        .try_with(|facts| facts.root().request_id.clone())
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

    /// A writer the tests read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_request_logs_under_its_id_once_it_waits_or_asks_and_a_hit_makes_no_span() {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);

        // A hit: done in its first poll, logs nothing, and no span is made.
        let hit = Arc::new(RequestFacts::for_request(Arc::from("hit-id")));
        let answer = with_request_facts(
            hit.clone(),
            Spanned::new(Box::pin(async { 200 }), hit.clone()),
        )
        .await;
        assert_eq!(answer, 200);
        assert!(hit.made_span().is_none());

        // A miss: an event before its first wait asks for the span; after the wait every
        // event is in it; nested facts (a counted piece of work) log under the same id.
        let miss = Arc::new(RequestFacts::for_request(Arc::from("miss-id")));
        with_request_facts(
            miss.clone(),
            Spanned::new(
                Box::pin(async {
                    tracing::warn!(parent: &request_span(), "before the wait");
                    tokio::task::yield_now().await;
                    tracing::warn!("after the wait");
                    let ((), _) = counting_upstream_calls(async {
                        tracing::warn!(parent: &request_span(), "nested");
                    })
                    .await;
                }),
                miss.clone(),
            ),
        )
        .await;
        // Outside a request: no span, no id.
        tracing::warn!(parent: &request_span(), "outside");

        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        for (line, message) in lines
            .iter()
            .zip(["before the wait", "after the wait", "nested"])
        {
            assert!(
                line.contains(&format!(
                    "WARN request{{request_id=\"miss-id\"}}: gateway::telemetry::tests: {message}"
                )),
                "{line}"
            );
        }
        assert!(
            lines[3].contains(" WARN gateway::telemetry::tests: outside"),
            "{}",
            lines[3]
        );
        assert!(!text.contains("hit-id"));
    }

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
