//! `hit-instructions --hits N`: the workload of the cache-hit regression guard
//! (`scripts/hit-instructions.sh`).
//!
//! Starts the gateway in this process, as `gateway` with no `--config` runs it (embedded
//! sandbox, demo key, access log and audit trail on, one worker), warms the cache with the
//! 50-transaction page of the benchmark (`scripts/bench-cache-hit.sh`), then reads it `N` times
//! over one keep-alive connection from a plain blocking client thread, and exits. Run under
//! `valgrind --tool=callgrind` with two values of `N`, the difference of the two instruction
//! counts divided by the difference of `N` is what one hit costs, whatever start-up costs:
//! a count, not a time, so it does not depend on what else the machine is doing.
//!
//! With `--static`, the hits go instead to a bare actix-web server in the same process that
//! answers the same bytes (the baseline of `scripts/bench-cache-hit.sh`), so the two counts
//! compare the gateway's hit with the least an actix-web server does for that response.
//!
//! The process's logs go to stderr (point it at /dev/null); stdout gets one line per phase.
#![allow(clippy::expect_used, clippy::print_stdout)] // a measurement tool: a failure ends it

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::num::NonZeroU32;

use gateway::{Application, Config, telemetry};

const KEY: &str = "demo-key-sandbox-only";

fn main() {
    let mut hits: u32 = 1000;
    let mut bare = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--hits" => {
                hits = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--hits N (a count)")
            }
            "--static" => bare = true,
            other => {
                panic!("unknown argument {other} (usage: hit-instructions --hits N [--static])")
            }
        }
    }

    let mut config = Config::load(None).expect("the embedded-sandbox configuration");
    config.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    config.workers = 1;
    // One key hammers the gateway: lift its quota, or this would count 429s.
    let lifted = NonZeroU32::new(1_000_000_000).expect("non-zero");
    for client in &mut config.clients {
        client.rate_limit.requests_per_minute = lifted;
        client.rate_limit.burst = lifted;
    }
    if let Some(audit) = &mut config.audit {
        audit.path = Some("/dev/null".into());
    }
    telemetry::init(config.log.format);

    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(config)
            .await
            .expect("the gateway starts");
        let addr = app.addr();
        let account = app
            .demo()
            .and_then(|demo| demo.okra_accounts.first().cloned())
            .expect("a sandbox account");
        let handle = app.handle();
        let server = actix_web::rt::spawn(app.run_until_stopped());
        let path = format!("/v1/accounts/{account}/transactions?limit=50");
        let target = if bare {
            let url = format!("http://{addr}{path}");
            let http = reqwest::Client::new();
            // Until the snapshot is whole (a first answer may come early, its fill going on).
            let mut body = None;
            for _ in 0..200 {
                let page = http
                    .get(&url)
                    .bearer_auth(KEY)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .expect("the page");
                let hit = page.headers().get("x-cache").is_some_and(|v| v == "hit");
                let bytes = page.bytes().await.expect("the page's body");
                if hit {
                    body = Some(bytes);
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            let body = body.expect("the page became a cache hit");
            // The gateway has done its part: stopped, its background work (the rest of the
            // fill, refreshes) cannot land in the bare server's count.
            handle.stop(false).await;
            let server = actix_web::HttpServer::new(move || {
                let body = body.clone();
                actix_web::App::new().default_service(actix_web::web::to(move || {
                    let body = body.clone();
                    async move {
                        actix_web::HttpResponse::Ok()
                            .content_type("application/json")
                            .body(body)
                    }
                }))
            })
            .workers(1)
            .disable_signals()
            .bind("127.0.0.1:0")
            .expect("bind the static server");
            let static_addr = server.addrs()[0];
            actix_web::rt::spawn(server.run());
            static_addr
        } else {
            addr
        };
        let (bytes, status) = tokio::task::spawn_blocking(move || {
            let mut client = Client::connect(target);
            // The miss that fills the cache (under valgrind on a busy machine it may hit the
            // request deadline: then again), then reads until the page is a hit: its snapshot
            // whole, no fill left running to land in the count of some runs and not others.
            let mut warm = client.get(&path);
            for _ in 0..200 {
                if warm.0 == 200 && warm.2 {
                    break;
                }
                if warm.0 != 200 {
                    println!("warm-up answered {}: again", warm.0);
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
                warm = client.get(&path);
            }
            let (first_status, bytes, hit) = warm;
            assert_eq!(first_status, 200, "the warm-up read failed");
            assert!(hit || bare, "the page never became a cache hit");
            println!("warm: {bytes} bytes");
            let mut last = first_status;
            for _ in 0..hits {
                let (status, n, _) = client.get(&path);
                assert_eq!(n, bytes, "a hit answered other bytes");
                last = status;
            }
            (bytes, last)
        })
        .await
        .expect("the client thread");
        println!("hits: {hits} x {bytes} bytes, last status {status}");
        if !bare {
            handle.stop(false).await;
        }
        let _ = server.await;
    });
}

/// A minimal HTTP/1.1 client on one keep-alive connection (no pooling, no allocation to speak
/// of, so the count is the server's).
struct Client {
    reader: BufReader<TcpStream>,
    line: String,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect to the gateway");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        Client {
            reader: BufReader::with_capacity(64 * 1024, stream),
            line: String::with_capacity(256),
        }
    }

    /// Sends a GET and reads the whole answer: its status, body length and whether it says
    /// `x-cache: hit`.
    fn get(&mut self, path: &str) -> (u16, usize, bool) {
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {KEY}\r\n\r\n");
        self.reader
            .get_mut()
            .write_all(request.as_bytes())
            .expect("send the request");
        self.line.clear();
        self.reader.read_line(&mut self.line).expect("status line");
        let status: u16 = self
            .line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status code");
        let mut length = 0usize;
        let mut hit = false;
        loop {
            self.line.clear();
            self.reader.read_line(&mut self.line).expect("a header");
            let header = self.line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().expect("a Content-Length");
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("x-cache")
            {
                hit = value.trim() == "hit";
            }
        }
        // Skipped, not copied: the count should be the server's.
        let mut left = length;
        while left > 0 {
            let available = self.reader.fill_buf().expect("the response body").len();
            assert!(available > 0, "the connection closed mid-body");
            let step = available.min(left);
            self.reader.consume(step);
            left -= step;
        }
        (status, length, hit)
    }
}
