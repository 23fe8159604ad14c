//! `sandbox --bind 127.0.0.1:PORT --seed N`: serves both vendor simulators until Ctrl-C.
//!
//! Optional: `--refresh-ms N` (refresh job duration), `--okra-faults JSON`, `--mono-faults JSON`
//! (faults from start, same JSON as `POST /_sandbox/faults`' `faults`), `--okra-quota N`,
//! `--mono-quota N` (requests per minute per key).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use sandbox::{Faults, SandboxConfig, Vendor};

const USAGE: &str = "usage: sandbox [--bind 127.0.0.1:PORT] [--seed N] [--refresh-ms N] \
[--okra-faults JSON] [--mono-faults JSON] [--okra-quota N] [--mono-quota N]";

struct Args {
    bind: SocketAddr,
    config: SandboxConfig,
    faults: Vec<(Vendor, Faults)>,
    quotas: Vec<(Vendor, u32)>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        bind: SocketAddr::from(([127, 0, 0, 1], 8099)),
        config: SandboxConfig::default(),
        faults: Vec::new(),
        quotas: Vec::new(),
    };
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_owned());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--bind" => parsed.bind = value.parse().map_err(|e| bad(&e))?,
            "--seed" => parsed.config.seed = value.parse().map_err(|e| bad(&e))?,
            "--refresh-ms" => {
                let ms = value.parse().map_err(|e| bad(&e))?;
                parsed.config.refresh_duration = Duration::from_millis(ms);
            }
            "--okra-faults" | "--mono-faults" => {
                let vendor = if flag.starts_with("--okra") {
                    Vendor::Okra
                } else {
                    Vendor::Mono
                };
                let faults = serde_json::from_str(&value).map_err(|e| bad(&e))?;
                parsed.faults.push((vendor, faults));
            }
            "--okra-quota" | "--mono-quota" => {
                let vendor = if flag.starts_with("--okra") {
                    Vendor::Okra
                } else {
                    Vendor::Mono
                };
                parsed
                    .quotas
                    .push((vendor, value.parse().map_err(|e| bad(&e))?));
            }
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    Ok(parsed)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let seed = args.config.seed;
    let sandbox = match sandbox::start(args.config, args.bind).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sandbox: cannot listen on {}: {e}", args.bind);
            return ExitCode::FAILURE;
        }
    };
    for (vendor, faults) in args.faults {
        sandbox.set_faults(vendor, faults);
    }
    for (vendor, n) in args.quotas {
        sandbox.set_quota(vendor, Some(n));
    }
    let dir = sandbox.directory();
    println!("sandbox ready on http://{} (seed {seed})", sandbox.addr());
    println!(
        "okra: base_url={} secret={} (Authorization: Bearer <secret>)",
        dir.okra.base_url, dir.okra.secret
    );
    println!(
        "mono: base_url={} secret={} app_id={} (Authorization: <secret>, AppId: <app_id>)",
        dir.mono.base_url,
        dir.mono.secret,
        dir.mono.app_id.as_deref().unwrap_or("")
    );
    println!("directory: http://{}/_sandbox/accounts", sandbox.addr());
    for c in &dir.customers {
        for a in &c.accounts {
            println!(
                "  {:<20} {:<24} okra={} mono={} nuban={} txns={}",
                c.name,
                a.bank_name,
                a.okra_account_id,
                a.mono_account_id,
                a.nuban,
                a.transaction_count
            );
        }
    }
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("sandbox: cannot wait for Ctrl-C: {e}");
    }
    sandbox.stop().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_bind_seed_and_start_faults() {
        let a = args(&[
            "--bind",
            "127.0.0.1:9000",
            "--seed",
            "7",
            "--okra-faults",
            r#"{"latency_ms": 5}"#,
            "--mono-quota",
            "30",
        ])
        .unwrap();
        assert_eq!(a.bind, SocketAddr::from(([127, 0, 0, 1], 9000)));
        assert_eq!(a.config.seed, 7);
        assert_eq!(a.faults[0].0, Vendor::Okra);
        assert_eq!(a.faults[0].1.latency_ms, 5);
        assert_eq!(a.quotas, vec![(Vendor::Mono, 30)]);
    }

    #[test]
    fn refuses_unknown_or_incomplete_arguments() {
        assert!(args(&["--port", "1"]).is_err());
        assert!(args(&["--seed"]).is_err());
        assert!(args(&["--seed", "x"]).is_err());
        assert!(args(&["--help"]).is_err());
    }
}
