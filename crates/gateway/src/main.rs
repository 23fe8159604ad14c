//! `gateway [--config FILE] [--bind ADDR] | --version`: runs the transactions gateway.
//!
//! With no `--config`, the vendor simulators run in-process and both providers point at them.

use std::path::PathBuf;
use std::process::ExitCode;

use gateway::{Application, Config, telemetry};

/// jemalloc gives freed memory back to the system (glibc's malloc keeps most of it after a
/// burst of fills): see `gateway::memory` and docs/performance.md section 5. Its options are
/// built in (`.cargo/config.toml`: freed pages given back at once); `_RJEM_MALLOC_CONF`
/// overrides them.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const USAGE: &str = "usage: gateway [--config FILE] [--bind ADDR]
       gateway --version

  --config FILE   run from a TOML file (see gateway.example.toml); GATEWAY_* variables override it
  --bind ADDR     listen on ADDR (e.g. 127.0.0.1:0 for a free port)
  --version       print the version and git revision, then exit
  (no --config)   embedded sandbox: both providers simulated in-process, a demo API key

Logs go to stderr; LOG_FORMAT=json|text (default: log.format, text). SIGTERM or Ctrl-C stops
accepting, lets requests in flight finish (server.shutdown_grace_secs) and exits 0.";

struct Args {
    config: Option<PathBuf>,
    bind: Option<std::net::SocketAddr>,
    version: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        config: None,
        bind: None,
        version: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--config" => args.config = Some(it.next().ok_or("--config needs a file")?.into()),
            "--bind" => {
                let value = it.next().ok_or("--bind needs an address")?;
                args.bind = Some(value.parse().map_err(|_| {
                    format!("--bind: {value:?} is not an address like 127.0.0.1:8080")
                })?);
            }
            "-V" | "--version" => args.version = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

/// What the start-up log tells about the embedded sandbox: the key to use, ids to try (with the
/// `?provider=` each needs), and a curl that works as printed against the default provider.
fn demo_lines(demo: &gateway::state::DemoInfo, addr: std::net::SocketAddr) -> Vec<String> {
    let (key_line, key) = match &demo.api_key {
        Some(key) => (
            format!("embedded sandbox: demo API key {key:?} (Authorize in Swagger UI with it)"),
            key.as_str(),
        ),
        None => (
            "embedded sandbox: no demo client configured; use one of your clients' keys".to_owned(),
            "YOUR_API_KEY",
        ),
    };
    let with = |instance: Option<&str>| match demo.provider_hint(instance) {
        hint if hint.is_empty() => String::new(),
        hint => format!(" (with {hint})"),
    };
    let mut lines = vec![
        key_line,
        format!(
            "try: okra account ids {:?}{}",
            demo.okra_accounts,
            with(demo.okra_instance.as_deref())
        ),
        format!(
            "try: mono account ids {:?}{}",
            demo.mono_accounts,
            with(demo.mono_instance.as_deref())
        ),
        format!(
            "try: customer ids {:?}, NUBANs {:?}{}",
            demo.customers,
            demo.nubans,
            with(demo.okra_instance.as_deref())
        ),
    ];
    if let Some(account) = demo.default_accounts().first() {
        lines.push(format!(
            "e.g. curl -H 'Authorization: Bearer {key}' 'http://{addr}/v1/accounts/{account}/transactions?limit=5'"
        ));
    }
    lines
}

/// Samples jemalloc's statistics every second into `gateway_allocator_bytes`, so that the
/// memory the process holds can be told apart from what its cache weighs.
#[cfg(feature = "jemalloc")]
fn sample_allocator() {
    use tikv_jemalloc_ctl::{epoch, stats};
    let spawned = std::thread::Builder::new()
        .name("allocator-stats".into())
        .spawn(|| {
            loop {
                if epoch::advance().is_ok() {
                    let states = [
                        ("allocated", stats::allocated::read()),
                        ("resident", stats::resident::read()),
                        ("retained", stats::retained::read()),
                    ];
                    for (state, bytes) in states {
                        if let Ok(bytes) = bytes {
                            gateway::metrics::allocator_bytes(state, bytes as u64);
                        }
                    }
                }
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "jemalloc: no statistics thread");
    }
}

#[actix_web::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("gateway: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if args.version {
        println!(
            "gateway {} (revision {})",
            gateway::metrics::VERSION,
            gateway::metrics::REVISION
        );
        return ExitCode::SUCCESS;
    }
    let mut config = match Config::load(args.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("gateway: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log.format);
    #[cfg(feature = "jemalloc")]
    {
        if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
            tracing::warn!(error = %e, "jemalloc: no background purging thread");
        }
        sample_allocator();
    }
    tracing::info!(
        version = gateway::metrics::VERSION,
        revision = gateway::metrics::REVISION,
        "starting"
    );
    if let Some(bind) = args.bind {
        config.bind = bind;
    }
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("gateway: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = app.addr();
    tracing::info!("listening on http://{addr}");
    if let Some(metrics) = app.metrics_addr() {
        tracing::info!("metrics on http://{metrics}/metrics");
    }
    tracing::info!("Swagger UI: http://{addr}/swagger-ui/  (OpenAPI: http://{addr}/openapi.json)");
    if let Some(demo) = app.demo() {
        for line in demo_lines(demo, addr) {
            tracing::info!("{line}");
        }
    }
    let result = app.run_until_stopped().await;
    telemetry::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use gateway::state::DemoInfo;

    use super::demo_lines;

    fn demo(api_key: Option<&str>, default: &str) -> DemoInfo {
        DemoInfo {
            api_key: api_key.map(str::to_owned),
            okra_accounts: vec!["okra-acct".into()],
            mono_accounts: vec!["mono-acct".into()],
            customers: vec!["cust".into()],
            nubans: vec!["0123456789".into()],
            transactions: Vec::new(),
            okra_instance: Some("okra".into()),
            mono_instance: Some("mono".into()),
            default_provider: default.into(),
        }
    }

    #[test]
    fn the_example_curl_reads_an_account_of_the_default_provider() {
        let addr = "127.0.0.1:8080".parse().unwrap();
        let lines = demo_lines(&demo(Some("demo-key"), "mono"), addr);
        let curl = lines.iter().find(|l| l.contains("curl")).unwrap();
        assert!(
            curl.contains("/v1/accounts/mono-acct/transactions"),
            "{curl}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("okra-acct") && l.contains("?provider=okra"))
        );
        assert!(
            !lines.iter().any(|l| l.contains("?provider=mono")),
            "{lines:?}"
        );
    }

    #[test]
    fn without_the_demo_client_no_key_is_called_the_demo_key() {
        let addr = "127.0.0.1:8080".parse().unwrap();
        let lines = demo_lines(&demo(None, "okra"), addr);
        assert!(
            !lines.iter().any(|l| l.contains("demo API key")),
            "{lines:?}"
        );
        assert!(lines.iter().any(|l| l.contains("Bearer YOUR_API_KEY")));
    }
}
