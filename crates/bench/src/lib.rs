//! Measurement tools for `docs/performance.md`: a minimal actix-web server that returns fixed
//! bytes (the baseline a cache hit is compared with) and the gateway's benchmark scenarios.
//! Nothing here is used by the service itself.

use std::time::Duration;

/// The median and 99th percentile of a set of durations.
pub fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    if samples.is_empty() {
        return (Duration::ZERO, Duration::ZERO);
    }
    let at = |q: f64| {
        // An index into the sorted samples (a rank, not an amount).
        let rank = ((samples.len() - 1) as f64 * q).round() as usize;
        samples[rank.min(samples.len() - 1)]
    };
    (at(0.50), at(0.99))
}

/// The resident memory of process `pid`, in KiB (Linux `/proc/<pid>/status`).
pub fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}
