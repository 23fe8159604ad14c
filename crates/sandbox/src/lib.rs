//! Simulators of the Okra, Mono-style and Mono APIs over real HTTP: one seeded ledger served in
//! each vendor's own wire format, fault injection, request counters and optional quotas.
//!
//! [`start`] binds a server (port 0 works) inside the caller's tokio runtime and returns a
//! [`Sandbox`] handle that knows its base URLs, the generated [`Directory`] and controls
//! faults, counters and quotas. The same controls are served over HTTP under `/_sandbox`.
//!
//! This crate writes each vendor's JSON from the vendor docs on its own: it must never depend
//! on the adapter crates (or any crate of ours), so an adapter's misreading is not mirrored here.
//! Amounts are integer kobo throughout; they become text only at the wire.
//!
//! Fidelity to the vendors' own clients: besides the documented routes, it serves what Okra's
//! official Node (`okra-node` 0.2.0) and Python (`okra-py-official` 1.1, Okra's older v1 API)
//! clients call, and writes the Mono-style JSON types that Dojah's generated client insists on
//! (`next_page` a number or absent, `previous_page` a string); see the `okra` and `mono`
//! modules for each reading where the docs are silent. `Faults::messy_data` serves listings the
//! way real vendors sometimes do (odd amount spellings, loose paging types, unreadable
//! ancillary fields and unreadable records) so a reader's tolerance can be tested end to end.

mod config;
mod control;
mod directory;
mod ledger;
mod mono;
mod mono_connect;
mod okra;
mod state;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};

pub use config::{Faults, SandboxConfig, Vendor};
pub use control::{Mutation, MutationIds};
pub use directory::{AccountInfo, CustomerInfo, Directory, VendorInfo};
pub use ledger::END_DATE;
pub use state::Stats;

use state::{Reply, Shared};

/// A running sandbox. Cheap to clone; every clone controls the same server.
#[derive(Clone)]
pub struct Sandbox {
    shared: Arc<Shared>,
    handle: ServerHandle,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("addr", &self.shared.addr)
            .finish_non_exhaustive()
    }
}

/// Starts a sandbox on `bind` (port 0 picks a free port) in the current tokio runtime.
pub async fn start(config: SandboxConfig, bind: SocketAddr) -> std::io::Result<Sandbox> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Webhook receivers are local test servers: never route them through an environment proxy.
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(std::io::Error::other)?;
    let listener = TcpListener::bind(bind)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let workers = config.workers.max(1);
    let shared = Arc::new(Shared::new(config, addr, http));
    let data = web::Data::from(shared.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .configure(okra::configure)
            .configure(mono::configure)
            .configure(mono_connect::configure)
            .configure(control::configure)
            .default_service(web::to(not_found))
    })
    .workers(workers)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    tracing::info!(%addr, "sandbox listening");
    Ok(Sandbox { shared, handle })
}

async fn not_found() -> HttpResponse {
    Reply::json(
        StatusCode::NOT_FOUND,
        &serde_json::json!({"status": "error", "error": "route not found", "message": "route not found"}),
    )
    .into_response()
}

impl Sandbox {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Okra base URL, `http://ADDR/v2` (adapters append `/transactions/getByAccount`, ...).
    pub fn okra_base_url(&self) -> String {
        self.shared.okra_base_url()
    }

    /// Mono-style base URL, `http://ADDR` (adapters append
    /// `/api/v1/financial/account_transactions`).
    pub fn mono_base_url(&self) -> String {
        self.shared.mono_base_url()
    }

    /// Finishes every running Okra refresh job now (its transactions appended), as if its
    /// `refresh_duration` were over: explicit synchronisation for tests.
    pub fn finish_refresh_jobs(&self) {
        okra::finish_all_jobs(&self.shared);
    }

    /// Base URL of Mono's own API (`/v2/accounts/...`, `/accounts/{id}/sync`).
    pub fn mono_connect_base_url(&self) -> String {
        self.shared.mono_connect_base_url()
    }

    /// The configuration the sandbox was started with.
    pub fn config(&self) -> &SandboxConfig {
        &self.shared.config
    }

    /// Customers, accounts and their current numbers, as `GET /_sandbox/accounts` answers.
    pub fn directory(&self) -> Directory {
        directory::build(&self.shared)
    }

    /// Replaces one vendor's faults.
    pub fn set_faults(&self, vendor: Vendor, faults: Faults) {
        self.shared.set_faults(vendor, faults);
    }

    /// Removes every fault of both vendors.
    pub fn clear_faults(&self) {
        self.shared.clear_faults();
    }

    /// Request counts per vendor and route since start or the last reset.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Sets every counter back to zero.
    pub fn reset_stats(&self) {
        self.shared.reset_stats();
    }

    /// Sets (or with `None` removes) a vendor's quota: requests per sliding minute per API key.
    pub fn set_quota(&self, vendor: Vendor, requests_per_minute: Option<u32>) {
        self.shared.set_quota(vendor, requests_per_minute);
    }

    /// Corrects an account's history as `POST /_sandbox/accounts/{id}/mutations` does: its
    /// `remove` oldest transactions disappear and the `modify` after them get a new narration.
    /// `account_id` is the Okra or the Mono-style id; `None` when no account has it.
    pub fn mutate(&self, account_id: &str, modify: usize, remove: usize) -> Option<Mutation> {
        let mut ledger = self.shared.write();
        let account = ledger
            .account_by_okra_id(account_id)
            .or_else(|| ledger.account_by_mono_id(account_id))?;
        let (modified, removed) = ledger.mutate(account, modify, remove);
        Some(Mutation::from_pairs(modified, removed))
    }

    /// Stops the server without waiting for requests in flight (a hung one never ends).
    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync_clone<T: Send + Sync + Clone>(_: &T) {}
    fn send<T: Send>(_: &T) {}

    #[test]
    fn handle_and_start_future_can_cross_threads() {
        let future = start(
            SandboxConfig::default(),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        );
        send(&future);
        drop(future);
        let faults = Faults::default();
        send_sync_clone(&faults);
    }

    #[tokio::test]
    async fn sandbox_is_send_sync_clone_and_stops() {
        let sandbox = start(
            SandboxConfig::default(),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        )
        .await
        .unwrap();
        send_sync_clone(&sandbox);
        assert_eq!(
            sandbox.okra_base_url(),
            format!("http://{}/v2", sandbox.addr())
        );
        assert_eq!(
            sandbox.mono_base_url(),
            format!("http://{}", sandbox.addr())
        );
        let clone = sandbox.clone();
        tokio::spawn(async move { clone.stop().await })
            .await
            .unwrap();
    }
}
