//! Several gateway replicas sharing one Redis and one standalone sandbox.
//!
//! Redis: `GATEWAY_TEST_REDIS_URL` when set; else a private `redis-server` started on a free
//! port for this test binary (and stopped by a watchdog when the binary exits). No Redis to be
//! had is a test failure that says how to get one, never a skip. Each test uses its own key
//! prefix, so tests share one Redis safely.

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use gateway::config::Upstream;
use gateway::{Application, Config};

use crate::TestGateway;

static REDIS: OnceLock<String> = OnceLock::new();

/// The URL of the Redis the tests share (see the module docs).
pub fn redis_url() -> String {
    REDIS
        .get_or_init(|| match std::env::var("GATEWAY_TEST_REDIS_URL") {
            Ok(url) if !url.trim().is_empty() => url,
            _ => start_private_redis(),
        })
        .clone()
}

fn free_port() -> u16 {
    match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(addr) => addr.port(),
        Err(e) => panic!("no free port: {e}"),
    }
}

fn start_private_redis() -> String {
    let port = free_port();
    let me = std::process::id();
    // The watchdog shell stops redis-server when this test binary is gone.
    let script = format!(
        "redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly no \
         --daemonize no --loglevel warning & r=$!; \
         while kill -0 {me} 2>/dev/null && kill -0 $r 2>/dev/null; do sleep 0.5; done; kill $r 2>/dev/null"
    );
    let spawned = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        panic!("cannot start sh for redis-server: {e}");
    }
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return format!("redis://127.0.0.1:{port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "these tests need Redis: no GATEWAY_TEST_REDIS_URL is set and `redis-server` did not \
         start on port {port} (install it: apt-get install redis-server, or set \
         GATEWAY_TEST_REDIS_URL=redis://host:port)"
    );
}

/// A key prefix no other test uses.
pub fn unique_prefix(test: &str) -> String {
    format!("t{}:{test}", rand_suffix())
}

fn rand_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("{:x}", h.finish())
}

/// A standalone sandbox on a free port (both vendors), as the replicas' upstream.
pub async fn standalone_sandbox() -> sandbox::Sandbox {
    match sandbox::start(
        sandbox::SandboxConfig::default(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    {
        Ok(sb) => sb,
        Err(e) => panic!("sandbox start: {e}"),
    }
}

/// A gateway configuration for one replica: two clients, both providers (pointed at `sandbox`
/// after parsing), `[redis]` with `prefix`; `providers_extra` goes into both provider sections,
/// `extra` at the end.
pub fn replica_toml(redis: Option<(&str, &str)>, providers_extra: &str, extra: &str) -> String {
    let redis = match redis {
        Some((url, prefix)) => format!("[redis]\nurl = \"{url}\"\nkey_prefix = \"{prefix}\"\n"),
        None => String::new(),
    };
    let base = crate::base_config("okra", "");
    // Turn the embedded-sandbox config into one for an external sandbox (set after parsing).
    let base = base
        .replace(
            "kind = \"okra\"\nbase_url = \"sandbox\"",
            &format!("kind = \"okra\"\nbase_url = \"sandbox\"\n{providers_extra}"),
        )
        .replace(
            "kind = \"mono\"\nbase_url = \"sandbox\"",
            &format!("kind = \"mono\"\nbase_url = \"sandbox\"\n{providers_extra}"),
        );
    format!("{base}\n{redis}{extra}")
}

/// Starts one replica from `toml` (as made by [`replica_toml`]), its providers pointed at
/// `sandbox` instead of an embedded one.
pub async fn spawn_replica(toml: &str, sandbox: &sandbox::Sandbox) -> TestGateway {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = match Config::from_toml(toml) {
        Ok(config) => config,
        Err(e) => panic!("test configuration: {e}"),
    };
    config.sandbox = None;
    let sb = sandbox.config();
    for provider in config.providers.values_mut() {
        let (url, secret, app_id) = match provider.kind {
            gateway::config::ProviderKind::Okra => {
                (sandbox.okra_base_url(), sb.okra_secret.clone(), None)
            }
            gateway::config::ProviderKind::Mono => (
                sandbox.mono_base_url(),
                sb.mono_secret.clone(),
                Some(provider::Secret::new(sb.mono_app_id.clone())),
            ),
        };
        let base_url = match url::Url::parse(&url) {
            Ok(url) => url,
            Err(e) => panic!("sandbox url: {e}"),
        };
        provider.upstream = Upstream::Remote {
            base_url,
            secret_key: provider::Secret::new(secret),
            app_id,
        };
    }
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => panic!("gateway start: {e}"),
    };
    let state = app.state();
    let addr = app.spawn();
    TestGateway {
        base: format!("http://{addr}"),
        addr,
        sandbox: sandbox.clone(),
        http: reqwest::Client::new(),
        state,
    }
}
