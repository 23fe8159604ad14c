//! The audit trail: one JSON line per call that touched a customer's bank data, or was refused.
//!
//! The authentication middleware builds a [`Record`] (who, which operation, which provider,
//! which account / customer / NUBAN / transaction, how many records, the request id, the
//! outcome) and hands it to [`AuditLog::submit`], which never blocks and never fails the
//! request: the record goes into a bounded queue, and a dedicated writer thread serializes it
//! and appends it to the sink (a file, or stdout, where nothing else is written), flushing
//! whenever the queue runs empty. If the sink falls more than `queue_capacity` records behind,
//! new records are dropped, counted, and an error is logged.
//!
//! A record never holds an amount, a narration, a reference or a key: only the identifiers
//! the caller sent and the number of records it got back.

use std::borrow::Cow;
use std::cell::RefCell;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::access_log::json_str;
use crate::config::AuditSettings;
use crate::policy::{ROUTES, Route};

/// How a call ended, as the audit trail says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered (2xx, or 304: the caller's copy is current).
    Ok,
    /// Refused by the client's scopes or providers (403); no provider was called.
    Denied,
    /// The API key had passed its `not_after` date (401).
    KeyExpired,
    /// Any other failure (the `error` field says which).
    Failed,
}

/// One audit record (one JSON line).
#[derive(Debug, Clone)]
pub struct Record {
    /// When the call was answered (RFC 3339, UTC).
    pub time: SystemTime,
    /// The client the API key belongs to.
    pub client: Arc<str>,
    /// The route, written as `operation` (its scope, e.g. `transactions:read`) and `route`
    /// (`METHOD /v1/pattern`); both `null` when the route is unknown.
    pub route: Option<&'static Route>,
    /// The provider instance asked (or that would have been).
    pub provider: Option<Arc<str>>,
    /// What the call was about: `account`, `customer`, `nuban`, `all`, `transaction`, `job`.
    pub scope_kind: Option<&'static str>,
    /// Its id as the caller gave it (an account id, customer id, NUBAN, gateway id, job id).
    pub scope_id: Option<String>,
    /// Transactions returned (`null` when none were, e.g. refused or failed calls).
    pub records: Option<u64>,
    /// The request's id (`x-request-id`), to join with the access log.
    pub request_id: Option<Arc<str>>,
    /// How it ended.
    pub outcome: Outcome,
    /// The HTTP status answered.
    pub status: u16,
    /// The problem `code` of a failed or refused call.
    pub error: Option<&'static str>,
}

impl Record {
    /// Appends the record's JSON line (without the newline): the fields in this order, `null`
    /// for what is unknown, strings as `serde_json` writes them (a test compares the two),
    /// written directly rather than through `serde`'s machinery (this runs for every call).
    pub fn write_json(&self, out: &mut Vec<u8>) -> Result<(), String> {
        let mut time = String::with_capacity(32);
        rfc3339(self.time, &mut time)?;
        out.extend_from_slice(b"{\"time\":");
        json_str(out, &time);
        out.extend_from_slice(b",\"client\":");
        json_str(out, &self.client);
        out.extend_from_slice(b",\"operation\":");
        json_opt(out, self.route.map(|r| r.operation.scope()));
        out.extend_from_slice(b",\"route\":");
        json_opt(out, self.route.map(route_label).as_deref());
        out.extend_from_slice(b",\"provider\":");
        json_opt(out, self.provider.as_deref());
        out.extend_from_slice(b",\"scope_kind\":");
        json_opt(out, self.scope_kind);
        out.extend_from_slice(b",\"scope_id\":");
        json_opt(out, self.scope_id.as_deref());
        out.extend_from_slice(b",\"records\":");
        match self.records {
            Some(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"request_id\":");
        json_opt(out, self.request_id.as_deref());
        out.extend_from_slice(b",\"outcome\":");
        json_str(out, self.outcome.as_str());
        out.extend_from_slice(b",\"status\":");
        out.extend_from_slice(itoa::Buffer::new().format(self.status).as_bytes());
        out.extend_from_slice(b",\"error\":");
        json_opt(out, self.error);
        out.push(b'}');
        Ok(())
    }
}

impl Outcome {
    /// Its name in the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::KeyExpired => "key_expired",
            Outcome::Failed => "failed",
        }
    }
}

/// A JSON string or `null`.
fn json_opt(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(text) => json_str(out, text),
        None => out.extend_from_slice(b"null"),
    }
}

thread_local! {
    /// The second last written and its text up to the seconds (`2026-11-29T00:24:13`).
    static SECOND: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
}

/// Appends `time` in RFC 3339 (UTC) exactly as `time`'s `Rfc3339` writes it (a fraction
/// without trailing zeros, none when whole); the date and the time of day are formatted once
/// a second, not for every record.
fn rfc3339(time: SystemTime, out: &mut String) -> Result<(), String> {
    let Ok(since) = time.duration_since(SystemTime::UNIX_EPOCH) else {
        let text = OffsetDateTime::from(time)
            .format(&Rfc3339)
            .map_err(|e| e.to_string())?;
        out.push_str(&text);
        return Ok(());
    };
    let secs = i64::try_from(since.as_secs()).map_err(|e| e.to_string())?;
    SECOND.with_borrow_mut(|(second, text)| {
        if *second != secs {
            let whole = OffsetDateTime::from_unix_timestamp(secs)
                .map_err(|e| e.to_string())?
                .format(&Rfc3339)
                .map_err(|e| e.to_string())?;
            text.clear();
            text.push_str(whole.trim_end_matches('Z'));
            *second = secs;
        }
        out.push_str(text);
        Ok::<(), String>(())
    })?;
    let nanos = since.subsec_nanos();
    if nanos != 0 {
        let mut digits = [b'0'; 9];
        let mut n = nanos;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        let len = 9 - digits.iter().rev().take_while(|d| **d == b'0').count();
        out.push('.');
        out.extend(digits.iter().take(len).map(|d| char::from(*d)));
    }
    out.push('Z');
    Ok(())
}

/// `METHOD /v1/pattern`, rendered once per route of [`ROUTES`].
fn route_label(route: &'static Route) -> Cow<'static, str> {
    static LABELS: OnceLock<Vec<String>> = OnceLock::new();
    let labels = LABELS.get_or_init(|| {
        ROUTES
            .iter()
            .map(|r| format!("{} {}", r.method.as_str(), r.pattern))
            .collect()
    });
    ROUTES
        .iter()
        .position(|r| std::ptr::eq(*r, route))
        .and_then(|i| labels.get(i))
        .map_or_else(
            || Cow::Owned(format!("{} {}", route.method.as_str(), route.pattern)),
            |label| Cow::Borrowed(label.as_str()),
        )
}

enum Message {
    Record(Box<Record>),
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The audit trail's queue and its writer thread (or nothing, when turned off).
pub struct AuditLog {
    queue: Option<SyncSender<Message>>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("enabled", &self.queue.is_some())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl AuditLog {
    /// No audit trail.
    pub fn off() -> AuditLog {
        AuditLog {
            queue: None,
            dropped: Arc::default(),
        }
    }

    /// Opens the sink (appending to the file, or stdout) and starts the writer thread.
    pub fn start(settings: &AuditSettings) -> std::io::Result<AuditLog> {
        let sink: Box<dyn Write + Send> = match &settings.path {
            Some(path) => Box::new(open_append(path)?),
            None => Box::new(stdout_file()?),
        };
        Ok(AuditLog::with_sink(sink, settings.queue_capacity))
    }

    /// Starts a writer thread onto `sink` (buffered here) with a queue of `capacity` records.
    pub fn with_sink(sink: Box<dyn Write + Send>, capacity: usize) -> AuditLog {
        let (queue, rx) = sync_channel(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let spawned = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_loop(rx, std::io::BufWriter::with_capacity(64 * 1024, sink)));
        match spawned {
            Ok(_) => AuditLog {
                queue: Some(queue),
                dropped,
            },
            Err(e) => {
                tracing::error!(error = %e, "audit: cannot start the writer thread; audit trail off");
                AuditLog::off()
            }
        }
    }

    /// Whether records are written at all.
    pub fn is_enabled(&self) -> bool {
        self.queue.is_some()
    }

    /// Queues `record` for writing; never waits. A full queue drops it (counted and logged).
    pub fn submit(&self, record: Record) {
        let Some(queue) = &self.queue else {
            return;
        };
        match queue.try_send(Message::Record(Box::new(record))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::error!(
                        dropped = n,
                        "audit: the sink is not keeping up; audit records were dropped"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::error!(
                        dropped = n,
                        "audit: the writer has stopped; records dropped"
                    );
                }
            }
        }
    }

    /// Records dropped so far because the sink fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every record submitted before this call is written and flushed (tests and
    /// orderly shutdowns).
    pub async fn flush(&self) {
        let Some(queue) = &self.queue else {
            return;
        };
        let (done, wait) = tokio::sync::oneshot::channel();
        let queue = queue.clone();
        // The queue may be full: wait for room off the async workers.
        let sent = tokio::task::spawn_blocking(move || queue.send(Message::Flush(done))).await;
        if matches!(sent, Ok(Ok(()))) {
            let _ = wait.await;
        }
    }
}

/// Opens `path` for appending; a new file is readable by its owner only (it names accounts).
fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Stdout as a plain file, so the writer's own buffer decides when to write (std's stdout
/// would write each line on its own).
fn stdout_file() -> std::io::Result<std::fs::File> {
    use std::os::fd::AsFd;
    let fd = std::io::stdout().as_fd().try_clone_to_owned()?;
    Ok(std::fs::File::from(fd))
}

/// How long the writer rests after writing a batch (see [`write_loop`]).
const BATCH: std::time::Duration = std::time::Duration::from_millis(20);

fn write_loop(rx: Receiver<Message>, mut out: std::io::BufWriter<Box<dyn Write + Send>>) {
    let mut failures = 0u64;
    let mut line = Vec::with_capacity(512);
    // Blocks until there is work; then writes everything queued and flushes once it runs dry,
    // and rests for `BATCH` before it looks again: records submitted meanwhile wait in the queue
    // without waking this thread, so a busy gateway pays one wake-up and one write per batch,
    // not per request (at most `BATCH` later on disk; the queue holds 65,536 by default).
    while let Ok(mut message) = rx.recv() {
        loop {
            match message {
                Message::Record(record) => {
                    line.clear();
                    let written = record
                        .write_json(&mut line)
                        .map_err(std::io::Error::other)
                        .and_then(|()| {
                            line.push(b'\n');
                            out.write_all(&line)
                        });
                    if let Err(e) = written {
                        failures += 1;
                        if failures.is_power_of_two() {
                            tracing::error!(error = %e, failures, "audit: cannot write a record");
                        }
                    }
                }
                Message::Flush(done) => {
                    flush(&mut out, &mut failures);
                    let _ = done.send(());
                }
            }
            match rx.try_recv() {
                Ok(next) => message = next,
                Err(TryRecvError::Empty) => {
                    flush(&mut out, &mut failures);
                    std::thread::sleep(BATCH);
                    break;
                }
                Err(TryRecvError::Disconnected) => {
                    flush(&mut out, &mut failures);
                    return;
                }
            }
        }
    }
}

fn flush(out: &mut impl Write, failures: &mut u64) {
    if let Err(e) = out.flush() {
        *failures += 1;
        if failures.is_power_of_two() {
            tracing::error!(error = %e, failures = *failures, "audit: cannot flush the sink");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Instant;

    use super::*;

    /// A sink tests can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn record(n: u64) -> Record {
        Record {
            time: SystemTime::UNIX_EPOCH,
            client: Arc::from("billing"),
            route: Some(&crate::policy::LIST_ACCOUNT),
            provider: Some(Arc::from("okra")),
            scope_kind: Some("account"),
            scope_id: Some(format!("acc-{n}")),
            records: Some(n),
            request_id: Some(Arc::from("rid")),
            outcome: Outcome::Ok,
            status: 200,
            error: None,
        }
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut texts: Vec<String> = (0u8..0x80).map(|b| char::from(b).to_string()).collect();
        texts.extend(
            [
                "",
                "plain",
                "a\"b\\c\nd\u{7f}",
                "naïve ₦ 𝄞",
                "\u{0}\u{1f}x\u{1b}[31m",
            ]
            .map(String::from),
        );
        for text in texts {
            let mut ours = Vec::new();
            json_str(&mut ours, &text);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&text).unwrap(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_record_line_is_the_json_of_its_fields_in_order() {
        let mut full = record(7);
        full.scope_id = Some("acc \"7\"\n".into());
        full.outcome = Outcome::KeyExpired;
        full.status = 401;
        full.error = Some("key_expired");
        let mut line = Vec::new();
        full.write_json(&mut line).unwrap();
        let text = String::from_utf8(line).unwrap();
        assert_eq!(
            text,
            r#"{"time":"1970-01-01T00:00:00Z","client":"billing","operation":"transactions:read","route":"GET /v1/accounts/{account_id}/transactions","provider":"okra","scope_kind":"account","scope_id":"acc \"7\"\n","records":7,"request_id":"rid","outcome":"key_expired","status":401,"error":"key_expired"}"#
        );
        let empty = Record {
            route: None,
            provider: None,
            scope_kind: None,
            scope_id: None,
            records: None,
            request_id: None,
            outcome: Outcome::Denied,
            status: 403,
            ..record(0)
        };
        let mut line = Vec::new();
        empty.write_json(&mut line).unwrap();
        assert_eq!(
            String::from_utf8(line).unwrap(),
            r#"{"time":"1970-01-01T00:00:00Z","client":"billing","operation":null,"route":null,"provider":null,"scope_kind":null,"scope_id":null,"records":null,"request_id":null,"outcome":"denied","status":403,"error":null}"#
        );
        let names = [
            Outcome::Ok,
            Outcome::Denied,
            Outcome::KeyExpired,
            Outcome::Failed,
        ]
        .map(Outcome::as_str);
        assert_eq!(names, ["ok", "denied", "key_expired", "failed"]);
    }

    #[tokio::test]
    async fn records_are_json_lines_in_order_after_a_flush() {
        let sink = Shared::default();
        let log = AuditLog::with_sink(Box::new(sink.clone()), 16);
        for n in 0..100 {
            log.submit(record(n));
        }
        log.flush().await;
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        // A queue of 16 may drop under a burst; what was kept is in order and complete.
        assert_eq!(lines.len() as u64 + log.dropped(), 100);
        let first = &lines[0];
        assert_eq!(first["time"], "1970-01-01T00:00:00Z");
        assert_eq!(first["client"], "billing");
        assert_eq!(first["operation"], "transactions:read");
        assert_eq!(first["route"], "GET /v1/accounts/{account_id}/transactions");
        assert_eq!(first["outcome"], "ok");
        assert_eq!(first["scope_kind"], "account");
        let counts: Vec<u64> = lines
            .iter()
            .map(|l| l["records"].as_u64().unwrap())
            .collect();
        assert!(counts.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn times_and_routes_are_written_as_time_and_format_wrote_them() {
        // Whole seconds, every fraction length, a second apart in one thread (the cached part
        // must follow), leap days and century rules.
        let mut secs = 0u64;
        while secs < 4_102_444_800 {
            for nanos in [
                0,
                1,
                10,
                120,
                123_000,
                500_000_000,
                999_999_999,
                123_456_780,
            ] {
                for at in [secs, secs + 1] {
                    let time = SystemTime::UNIX_EPOCH + std::time::Duration::new(at, nanos);
                    let mut ours = String::new();
                    rfc3339(time, &mut ours).unwrap();
                    let theirs = OffsetDateTime::from(time).format(&Rfc3339).unwrap();
                    assert_eq!(ours, theirs);
                }
            }
            secs += 9_876_543;
        }
        for route in ROUTES {
            assert_eq!(
                route_label(route),
                format!("{} {}", route.method.as_str(), route.pattern)
            );
        }
        static OTHER: Route = Route {
            method: actix_web::http::Method::GET,
            pattern: "/v1/elsewhere",
            operation: crate::policy::Operation::TransactionsRead,
            provider: crate::policy::ProviderSource::None,
            subject: crate::policy::Subject::All,
        };
        assert_eq!(route_label(&OTHER), "GET /v1/elsewhere");
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_instead_of_waiting() {
        /// A sink whose flush blocks until released, as a stuck disk would.
        struct StuckFlush(Arc<std::sync::Barrier>);
        impl Write for StuckFlush {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                self.0.wait();
                Ok(())
            }
        }
        let gate = Arc::new(std::sync::Barrier::new(2));
        let log = AuditLog::with_sink(Box::new(StuckFlush(gate.clone())), 4);
        let started = Instant::now();
        for n in 0..1000 {
            log.submit(record(n));
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(log.dropped() > 0, "a stuck sink makes the queue overflow");
        gate.wait();
    }

    /// Cost on the request path (build + submit) and the writer's throughput, to a file.
    /// `cargo test --release -p gateway --lib audit::tests::cost -- --ignored --nocapture`
    #[tokio::test]
    #[ignore = "a measurement, not a check"]
    async fn cost() {
        let path = std::env::temp_dir().join(format!("audit-cost-{}.jsonl", std::process::id()));
        let log = AuditLog::start(&AuditSettings {
            path: Some(path.clone()),
            queue_capacity: 1 << 20,
        })
        .unwrap();
        let n = 200_000u64;
        let started = Instant::now();
        for i in 0..n {
            log.submit(record(i));
        }
        let submitted = started.elapsed();
        log.flush().await;
        let written = started.elapsed();
        let bytes = std::fs::metadata(&path).unwrap().len();
        println!(
            "audit: {n} records; submit {:.0} ns/record on the request path; written and flushed in {:.0} ms ({:.0} ns/record, {} bytes/record); dropped {}",
            submitted.as_nanos() as f64 / n as f64,
            written.as_millis(),
            written.as_nanos() as f64 / n as f64,
            bytes / n,
            log.dropped()
        );
        let _ = std::fs::remove_file(path);
    }
}
