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
    standalone_sandbox_with(sandbox::SandboxConfig::default()).await
}

/// A standalone sandbox with `config`.
pub async fn standalone_sandbox_with(config: sandbox::SandboxConfig) -> sandbox::Sandbox {
    match sandbox::start(config, SocketAddr::from(([127, 0, 0, 1], 0))).await {
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
    // The audit trail goes to stdout by default; these tests do not read it.
    if !toml.contains("[audit]") {
        config.audit = None;
    }
    let sb = sandbox.config();
    for provider in config.providers.values_mut() {
        let endpoint = (provider.kind.sandbox)(&gateway::kinds::SandboxUpstream {
            sandbox,
            config: sb,
        });
        let base_url = match url::Url::parse(&endpoint.base_url) {
            Ok(url) => url,
            Err(e) => panic!("sandbox url: {e}"),
        };
        provider.upstream = Upstream::Remote {
            base_url,
            secret_key: provider::Secret::new(endpoint.secret_key),
            credentials: endpoint
                .credentials
                .into_iter()
                .map(|(key, value)| (key, provider::Secret::new(value)))
                .collect(),
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

/// A gateway replica running as its own process (the `gateway` binary), so a test can kill it
/// like an orchestrator would (SIGKILL).
pub struct Process {
    child: std::process::Child,
    /// `http://ADDR`
    pub base: String,
    /// Where its log goes.
    pub log: std::path::PathBuf,
}

impl Process {
    /// Kills the process at once (SIGKILL): no shutdown, no cleanup.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `gateway` binary beside this test binary (`cargo test --workspace` builds it).
fn gateway_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current exe: {e}"));
    // target/<profile>/deps/<test> -> target/<profile>/gateway
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap_or_else(|| panic!("no target dir above {}", exe.display()));
    let binary = dir.join("gateway");
    assert!(
        binary.exists(),
        "{} is missing: build it first (cargo build -p gateway), or run cargo test --workspace",
        binary.display()
    );
    binary
}

/// A scratch directory for one test (config files, logs).
pub fn scratch_dir(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gateway-e2e-{}-{test}", rand_suffix()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("scratch dir {}: {e}", dir.display());
    }
    dir
}

/// Starts the gateway binary with `toml` on a free port, with `env` set, and waits for it to
/// listen.
pub fn spawn_process(
    dir: &std::path::Path,
    name: &str,
    toml: &str,
    env: &[(&str, &str)],
) -> Process {
    let config = dir.join(format!("{name}.toml"));
    let log = dir.join(format!("{name}.log"));
    if let Err(e) = std::fs::write(&config, toml) {
        panic!("write {}: {e}", config.display());
    }
    let log_file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("log file: {e}"));
    let mut command = Command::new(gateway_binary());
    command
        .args([
            "--config",
            &config.to_string_lossy(),
            "--bind",
            "127.0.0.1:0",
        ])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file);
    for (key, value) in env {
        command.env(key, value);
    }
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the gateway binary: {e}"));
    let mut process = Process {
        child,
        base: String::new(),
        log,
    };
    for _ in 0..200 {
        let text = std::fs::read_to_string(&process.log).unwrap_or_default();
        if let Some(rest) = text.split("listening on http://").nth(1) {
            let addr: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                .collect();
            process.base = format!("http://{addr}");
            return process;
        }
        if let Ok(Some(status)) = process.child.try_wait() {
            panic!("gateway {name} exited ({status}): {text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("gateway {name} did not start listening within 10 s");
}

/// A configuration for a replica process in front of `sandbox` (secrets from the environment
/// variables [`sandbox_env`] sets), with `[redis]` at `redis_url`/`prefix`; `extra` appended.
pub fn process_toml(
    sandbox: &sandbox::Sandbox,
    redis_url: &str,
    prefix: &str,
    client_extra: &str,
    extra: &str,
) -> String {
    let hash = |key: &str| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(key.as_bytes()))
    };
    format!(
        r#"
[server]
bind = "127.0.0.1:0"
workers = 1

[clients.billing]
api_key_sha256 = "{billing}"
{extra_client}
[providers.okra]
kind = "okra"
base_url = "{okra}"
secret_key = {{ env = "E2E_OKRA_SECRET" }}

[providers.mono]
kind = "mono"
base_url = "{mono}"
secret_key = {{ env = "E2E_MONO_SECRET" }}
app_id = {{ env = "E2E_MONO_APP_ID" }}

[routing]
default = "okra"

[audit]
enabled = false

[redis]
url = "{redis_url}"
key_prefix = "{prefix}"
{extra}
"#,
        billing = hash(crate::BILLING_KEY),
        okra = sandbox.okra_base_url(),
        mono = sandbox.mono_base_url(),
        extra_client = client_extra,
    )
}

/// The environment a replica process needs for [`process_toml`]'s secrets.
pub fn sandbox_env(sandbox: &sandbox::Sandbox) -> Vec<(&'static str, String)> {
    let config = sandbox.config();
    vec![
        ("E2E_OKRA_SECRET", config.okra_secret.clone()),
        ("E2E_MONO_SECRET", config.mono_secret.clone()),
        ("E2E_MONO_APP_ID", config.mono_app_id.clone()),
    ]
}
