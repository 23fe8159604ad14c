//! The access log: one line per request (target `gateway::access`, level INFO), formatted here
//! and written to stderr in batches by a writer thread.
//!
//! The line is byte for byte what `tracing-subscriber`'s formatter wrote when the access log was
//! a `tracing` event (text or JSON, as `telemetry::init` chose; a test compares the two), at a
//! fraction of the cost: fields are written straight into a buffer (integers by `itoa`, the
//! timestamp's date and time rendered once a second), with no field visitors. `RUST_LOG` still
//! decides whether the line is written (`gateway::access=off` silences it).
//!
//! Lines go into a shared buffer that a writer thread takes and writes in one `write(2)`, then
//! rests for [`BATCH`], as the audit trail does: a busy gateway pays one write per batch, not
//! per request, and a line reaches stderr at most [`BATCH`] after its answer. If stderr stops
//! taking lines and the buffer passes [`MAX_PENDING`], the request that finds it full writes it
//! itself (the wait a blocked stderr always imposed; no line is dropped). [`flush`] writes what
//! is pending (at shutdown).
//!
//! Without [`install`] (a process that set up its own `tracing` subscriber), inside a span, or
//! with ANSI colours (a terminal), the line is the `tracing` event it always was.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use crate::config::LogFormat;

/// The target of the access log's lines (`RUST_LOG=info,gateway::access=off` silences them).
pub const ACCESS_TARGET: &str = "gateway::access";

/// How long the writer rests after writing a batch.
pub const BATCH: Duration = Duration::from_millis(20);

/// Bytes pending past which the request that adds a line writes them itself.
pub const MAX_PENDING: usize = 1 << 20;

/// What one access-log line says about its request.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// The request id.
    pub request_id: &'a str,
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The route template, or `unmatched`.
    pub route: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// The status answered.
    pub status: u16,
    /// Time to the response head.
    pub elapsed: Duration,
    /// The body's length (0 when not known).
    pub bytes: u64,
    /// The client's name, or `-`.
    pub client: &'a str,
    /// The provider instance, or `-`.
    pub provider: &'a str,
    /// `X-Cache`, or `-`.
    pub x_cache: &'a str,
    /// Upstream requests made.
    pub upstream_calls: u32,
}

/// Writes `line` to the access log, if `RUST_LOG` lets `gateway::access` INFO through.
pub fn record(line: &Line<'_>) {
    if !tracing::enabled!(target: ACCESS_TARGET, tracing::Level::INFO) {
        return;
    }
    let direct = SINK
        .get()
        .filter(|_| tracing::dispatcher::get_default(|d| d.current_span().id().is_none()));
    let Some(sink) = direct else {
        tracing::info!(
            target: ACCESS_TARGET,
            request_id = %line.request_id,
            method = %line.method,
            route = line.route,
            path = %line.path,
            status = line.status,
            duration_ms = line.elapsed.as_micros() as f64 / 1000.0,
            bytes = line.bytes,
            client = line.client,
            provider = line.provider,
            x_cache = line.x_cache,
            upstream_calls = line.upstream_calls,
            "request"
        );
        return;
    };
    LINE.with_borrow_mut(|buf| {
        buf.clear();
        format_line(buf, sink.format, SystemTime::now(), line);
        sink.push(buf);
    });
}

/// Has lines written directly in `format` from now on (once per process; `telemetry::init`
/// calls it after installing its subscriber). Not for ANSI text: that stays with `tracing`.
pub fn install(format: LogFormat) {
    let sink = Sink {
        format,
        pending: Mutex::new(Pending::default()),
        wake: Condvar::new(),
        out: Mutex::new(Box::new(std::io::stderr())),
    };
    if SINK.set(sink).is_ok() {
        let started = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(|| {
                if let Some(sink) = SINK.get() {
                    sink.write_loop();
                }
            });
        if let Err(e) = started {
            // Nothing takes the lines away: each request writes its own.
            tracing::warn!(error = %e, "access log: no writer thread; lines written inline");
            if let Some(sink) = SINK.get() {
                sink.lock_pending().inline = true;
            }
        }
    }
}

/// Writes the lines not yet written (at shutdown, and by tests).
pub fn flush() {
    if let Some(sink) = SINK.get() {
        sink.write_pending();
    }
}

static SINK: OnceLock<Sink> = OnceLock::new();

thread_local! {
    /// The line being formatted, reused.
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
    /// The timestamp's date and time (`2026-11-29T00:24:13.`), for one second.
    static SECOND: RefCell<(i64, [u8; 32], usize)> = const { RefCell::new((i64::MIN, [0; 32], 0)) };
}

struct Sink {
    format: LogFormat,
    pending: Mutex<Pending>,
    wake: Condvar,
    /// Held while writing, so batches reach stderr in the order they were taken.
    out: Mutex<Box<dyn Write + Send>>,
}

#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    /// The writer waits for the next line (it rests otherwise, and needs no wake-up).
    idle: bool,
    /// No writer thread: each line is written at once.
    inline: bool,
}

impl Sink {
    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, line: &[u8]) {
        let mut pending = self.lock_pending();
        pending.buf.extend_from_slice(line);
        if pending.inline || pending.buf.len() > MAX_PENDING {
            drop(pending);
            self.write_pending();
        } else if pending.idle {
            pending.idle = false;
            drop(pending);
            self.wake.notify_one();
        }
    }

    /// Takes what is pending and writes it (under `out`, so in order).
    fn write_pending(&self) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let batch = std::mem::take(&mut self.lock_pending().buf);
        if !batch.is_empty() {
            // Like the `tracing` writer before: a line that cannot be written is lost.
            let _ = out.write_all(&batch);
            let _ = out.flush();
        }
    }

    fn write_loop(&self) {
        loop {
            {
                let mut pending = self.lock_pending();
                while pending.buf.is_empty() {
                    pending.idle = true;
                    pending = self.wake.wait(pending).unwrap_or_else(|e| e.into_inner());
                }
            }
            self.write_pending();
            std::thread::sleep(BATCH);
        }
    }
}

/// Appends `line` as the `tracing-subscriber` formatter of `format` would write it at `now`.
fn format_line(buf: &mut Vec<u8>, format: LogFormat, now: SystemTime, line: &Line<'_>) {
    let mut int = itoa::Buffer::new();
    match format {
        LogFormat::Text => {
            timestamp(buf, now);
            buf.extend_from_slice(b"  INFO gateway::access: request request_id=");
            buf.extend_from_slice(line.request_id.as_bytes());
            buf.extend_from_slice(b" method=");
            buf.extend_from_slice(line.method.as_bytes());
            buf.extend_from_slice(b" route=");
            debug_str(buf, line.route);
            buf.extend_from_slice(b" path=");
            buf.extend_from_slice(line.path.as_bytes());
            buf.extend_from_slice(b" status=");
            buf.extend_from_slice(int.format(line.status).as_bytes());
            buf.extend_from_slice(b" duration_ms=");
            millis(buf, line.elapsed, false);
            buf.extend_from_slice(b" bytes=");
            buf.extend_from_slice(int.format(line.bytes).as_bytes());
            buf.extend_from_slice(b" client=");
            debug_str(buf, line.client);
            buf.extend_from_slice(b" provider=");
            debug_str(buf, line.provider);
            buf.extend_from_slice(b" x_cache=");
            debug_str(buf, line.x_cache);
            buf.extend_from_slice(b" upstream_calls=");
            buf.extend_from_slice(int.format(line.upstream_calls).as_bytes());
            buf.push(b'\n');
        }
        LogFormat::Json => {
            buf.extend_from_slice(b"{\"timestamp\":\"");
            timestamp(buf, now);
            buf.extend_from_slice(
                b"\",\"level\":\"INFO\",\"fields\":{\"message\":\"request\",\"request_id\":",
            );
            json_str(buf, line.request_id);
            buf.extend_from_slice(b",\"method\":");
            json_str(buf, line.method);
            buf.extend_from_slice(b",\"route\":");
            json_str(buf, line.route);
            buf.extend_from_slice(b",\"path\":");
            json_str(buf, line.path);
            buf.extend_from_slice(b",\"status\":");
            buf.extend_from_slice(int.format(line.status).as_bytes());
            buf.extend_from_slice(b",\"duration_ms\":");
            millis(buf, line.elapsed, true);
            buf.extend_from_slice(b",\"bytes\":");
            buf.extend_from_slice(int.format(line.bytes).as_bytes());
            buf.extend_from_slice(b",\"client\":");
            json_str(buf, line.client);
            buf.extend_from_slice(b",\"provider\":");
            json_str(buf, line.provider);
            buf.extend_from_slice(b",\"x_cache\":");
            json_str(buf, line.x_cache);
            buf.extend_from_slice(b",\"upstream_calls\":");
            buf.extend_from_slice(int.format(line.upstream_calls).as_bytes());
            buf.extend_from_slice(b"},\"target\":\"gateway::access\"}\n");
        }
    }
}

/// `2026-11-29T00:24:13.123456Z`, as `tracing-subscriber`'s `SystemTime` timer writes it; the
/// part before the fraction is rendered once a second per thread.
fn timestamp(buf: &mut Vec<u8>, now: SystemTime) {
    let (secs, micros) = match now.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_micros(),
        ),
        Err(e) => {
            // Before 1970, as `tracing-subscriber` counts it.
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_nanos() {
                0 => (-secs, 0),
                nanos => (-secs - 1, (1_000_000_000 - nanos) / 1_000),
            }
        }
    };
    SECOND.with_borrow_mut(|(second, text, len)| {
        if *second != secs {
            *len = date_time(text, secs);
            *second = secs;
        }
        buf.extend_from_slice(&text[..*len]);
    });
    let mut digits = [b'0'; 6];
    let mut n = micros;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    buf.extend_from_slice(&digits);
    buf.push(b'Z');
}

/// Writes `YYYY-MM-DDTHH:MM:SS.` for `secs` since the epoch into `out`; returns its length.
fn date_time(out: &mut [u8; 32], secs: i64) -> usize {
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut cursor = std::io::Cursor::new(&mut out[..]);
    let written = if year > 9999 {
        write!(cursor, "+{year}")
    } else if year < 0 {
        write!(cursor, "{year:05}")
    } else {
        write!(cursor, "{year:04}")
    }
    .and_then(|()| {
        write!(
            cursor,
            "-{month:02}-{day:02}T{:02}:{:02}:{:02}.",
            of_day / 3600,
            of_day / 60 % 60,
            of_day % 60
        )
    });
    match written {
        Ok(()) => usize::try_from(cursor.position()).unwrap_or(0),
        Err(_) => 0,
    }
}

/// `duration_ms`: the microseconds as milliseconds, as `f64`'s `Debug` (text) or `serde_json`
/// (JSON) writes `micros as f64 / 1000.0`: `0.123`, `12.0`.
fn millis(buf: &mut Vec<u8>, elapsed: Duration, json: bool) {
    let micros = elapsed.as_micros();
    // Exact below 2^53 / 1000 ms (285 years): the shortest decimal of the quotient is the
    // quotient itself.
    if micros >= 1 << 50 {
        let ms = micros as f64 / 1000.0;
        let _ = if json {
            serde_json::to_writer(&mut *buf, &ms).map_err(std::io::Error::other)
        } else {
            write!(buf, "{ms:?}")
        };
        return;
    }
    let mut int = itoa::Buffer::new();
    buf.extend_from_slice(int.format(micros / 1000).as_bytes());
    buf.push(b'.');
    let frac = (micros % 1000) as u16;
    let digits = [
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ];
    let keep = match frac {
        0 => 1,
        f if f % 100 == 0 => 1,
        f if f % 10 == 0 => 2,
        _ => 3,
    };
    buf.extend_from_slice(&digits[..keep]);
}

/// A `&str` field as the text formatter writes it: its `Debug` (quoted, escaped).
fn debug_str(buf: &mut Vec<u8>, s: &str) {
    if written_as_is(s.as_bytes(), true) {
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
    } else {
        let _ = write!(buf, "{s:?}");
    }
}

/// A string as `serde_json` writes it (the audit trail's lines use it too).
pub(crate) fn json_str(buf: &mut Vec<u8>, s: &str) {
    if written_as_is(s.as_bytes(), false) {
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *buf, s);
    }
}

/// Whether every byte of `text` stands for itself between quotes: no control character, `"`
/// or `\\` (what a JSON string escapes), and with `ascii` also nothing past `~` (what `Debug`
/// may escape). Eight bytes at a time (the "has a zero byte" / "has a byte less than n" word
/// tricks, both exact), as almost every field is plain.
fn written_as_is(text: &[u8], ascii: bool) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS != 0;
    let plain_word = |w: u64| {
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGHS != 0;
        let beyond = ascii && (w & HIGHS != 0 || has_zero(w ^ (ONES * 0x7f)));
        !(control
            || beyond
            || has_zero(w ^ (ONES * u64::from(b'"')))
            || has_zero(w ^ (ONES * u64::from(b'\\'))))
    };
    let plain_byte = |b: u8| b >= 0x20 && b != b'"' && b != b'\\' && (!ascii || b < 0x7f);
    let mut words = text.chunks_exact(8);
    words.all(|w| plain_word(u64::from_le_bytes(w.try_into().unwrap_or([0; 8]))))
        && words.remainder().iter().all(|&b| plain_byte(b))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// What a `tracing-subscriber` formatter wrote, for comparison.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The line as the `tracing` event of before wrote it, through `telemetry::init`'s
    /// formatter (without ANSI), and as `format_line` writes it, timestamps cut out.
    fn both(format: LogFormat, line: &Line<'_>) -> (String, String) {
        let captured = Captured::default();
        let sink = captured.clone();
        let builder = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false);
        let emit = || {
            tracing::info!(
                target: ACCESS_TARGET,
                request_id = %line.request_id,
                method = %line.method,
                route = line.route,
                path = %line.path,
                status = line.status,
                duration_ms = line.elapsed.as_micros() as f64 / 1000.0,
                bytes = line.bytes,
                client = line.client,
                provider = line.provider,
                x_cache = line.x_cache,
                upstream_calls = line.upstream_calls,
                "request"
            )
        };
        match format {
            LogFormat::Json => tracing::subscriber::with_default(builder.json().finish(), emit),
            LogFormat::Text => tracing::subscriber::with_default(builder.finish(), emit),
        }
        let theirs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let mut ours = Vec::new();
        format_line(&mut ours, format, SystemTime::now(), line);
        let ours = String::from_utf8(ours).unwrap();
        // The timestamp: 27 characters, at the start or after `{"timestamp":"`.
        let at = if format == LogFormat::Json { 14 } else { 0 };
        let cut = |s: &str| {
            let stamp = &s[at..at + 27];
            assert!(
                stamp.len() == 27 && stamp.as_bytes()[10] == b'T' && stamp.ends_with('Z'),
                "{s}"
            );
            format!("{}{}", &s[..at], &s[at + 27..])
        };
        (cut(&theirs), cut(&ours))
    }

    fn line<'a>() -> Line<'a> {
        Line {
            request_id: "0123456789abcdef01234567",
            method: "GET",
            route: "/v1/accounts/{account_id}/transactions",
            path: "/v1/accounts/acc-1/transactions",
            status: 200,
            elapsed: Duration::from_micros(1234),
            bytes: 23_719,
            client: "billing",
            provider: "okra",
            x_cache: "hit",
            upstream_calls: 0,
        }
    }

    #[test]
    fn a_field_is_written_as_is_exactly_when_each_of_its_bytes_is() {
        let plain =
            |b: u8, ascii: bool| b >= 0x20 && b != b'"' && b != b'\\' && (!ascii || b < 0x7f);
        for ascii in [false, true] {
            for b in 0..=255u8 {
                for len in [1, 7, 8, 9, 16, 23] {
                    for at in [0, len / 2, len - 1] {
                        let mut text = vec![b'a'; len];
                        text[at] = b;
                        assert_eq!(
                            super::written_as_is(&text, ascii),
                            plain(b, ascii),
                            "byte {b:#x} at {at} of {len}, ascii {ascii}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn lines_are_what_the_tracing_formatter_wrote() {
        let odd = [
            line(),
            Line {
                route: "unmatched",
                path: "/nowhere/%22x%22",
                status: 404,
                elapsed: Duration::ZERO,
                bytes: 0,
                client: "-",
                provider: "-",
                x_cache: "-",
                ..line()
            },
            Line {
                elapsed: Duration::from_micros(1),
                client: "quote\"back\\slash tab\t nl\n bell\u{7} del\u{7f} é ünï \u{200b}",
                provider: "c1\u{85}",
                upstream_calls: 4_000_000_000,
                ..line()
            },
            Line {
                elapsed: Duration::from_micros(12_000_010),
                method: "POST",
                status: 503,
                bytes: u64::MAX,
                ..line()
            },
            Line {
                elapsed: Duration::from_micros(120),
                ..line()
            },
            Line {
                elapsed: Duration::from_secs(3600 * 24 * 365 * 400),
                ..line()
            },
        ];
        for format in [LogFormat::Text, LogFormat::Json] {
            for line in &odd {
                let (theirs, ours) = both(format, line);
                assert_eq!(ours, theirs, "{format:?}");
            }
        }
    }

    #[test]
    fn durations_are_written_as_the_float_they_were() {
        for micros in (0..5000).chain([999_999, 1_000_000, 1_000_001, 123_456_789]) {
            let elapsed = Duration::from_micros(micros);
            let ms = micros as f64 / 1000.0;
            let mut text = Vec::new();
            millis(&mut text, elapsed, false);
            assert_eq!(String::from_utf8(text).unwrap(), format!("{ms:?}"));
            let mut json = Vec::new();
            millis(&mut json, elapsed, true);
            assert_eq!(json, serde_json::to_vec(&ms).unwrap());
        }
    }

    #[test]
    fn timestamps_match_an_rfc_3339_rendering_with_microseconds() {
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        );
        // Across leap years, century rules and month ends, and a second apart in one thread
        // (the cached part must change with the second).
        let mut secs = 0i64;
        while secs < 4_102_444_800 {
            for offset in [0, 1, 86_399, 86_400] {
                let at = secs + offset;
                let now = SystemTime::UNIX_EPOCH + Duration::new(at as u64, 123_456_789);
                let mut ours = Vec::new();
                timestamp(&mut ours, now);
                let expected = time::OffsetDateTime::from_unix_timestamp_nanos(
                    i128::from(at) * 1_000_000_000 + 123_456_789,
                )
                .unwrap()
                .format(&format)
                .unwrap();
                assert_eq!(String::from_utf8(ours).unwrap(), expected);
            }
            secs += 7_654_321;
        }
    }
}
