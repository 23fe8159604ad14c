//! `gateway [--config FILE] [--bind ADDR] | --version`: runs the transactions gateway.
//!
//! With no `--config`, the vendor simulators run in-process and both providers point at them.

use std::path::PathBuf;
use std::process::ExitCode;

use gateway::{Application, Config, telemetry};

/// jemalloc gives freed memory back to the system (glibc's malloc keeps most of it after a
/// burst of fills): see `gateway::memory` and docs/performance.md section 5.
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
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::warn!(error = %e, "jemalloc: no background purging thread");
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
        let key = demo
            .api_key
            .as_deref()
            .unwrap_or("<a configured client's key>");
        tracing::info!("embedded sandbox: demo API key {key:?} (Authorize in Swagger UI with it)");
        tracing::info!("try: okra account ids {:?}", demo.okra_accounts);
        tracing::info!(
            "try: mono account ids {:?} (with ?provider=mono)",
            demo.mono_accounts
        );
        tracing::info!(
            "try: customer ids {:?}, NUBANs {:?}",
            demo.customers,
            demo.nubans
        );
        tracing::info!(
            "e.g. curl -H 'Authorization: Bearer {}' 'http://{addr}/v1/accounts/{}/transactions?limit=5'",
            key,
            demo.okra_accounts
                .first()
                .map(String::as_str)
                .unwrap_or("ACCOUNT_ID")
        );
    }
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway: {e}");
            ExitCode::FAILURE
        }
    }
}
