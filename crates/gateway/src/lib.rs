//! The transactions gateway: one canonical, paginated API over configured bank-data providers.
//!
//! `main.rs` only parses arguments; everything else is here so tests can start the real server
//! on a free port: [`Application::build`] binds, [`Application::addr`] tells where.

pub mod access_log;
pub mod api;
pub mod audit;
pub mod breaker;
pub mod clients;
pub mod cluster;
pub mod config;
pub mod cursor;
pub mod error;
pub mod inbound;
pub mod job_view;
pub mod jobs;
pub mod jobs_shared;
pub mod keys;
pub mod kinds;
pub mod memory;
pub mod metrics;
pub mod middleware;
pub mod notify;
pub mod outbound;
pub mod policy;
pub mod readiness;
pub mod registry;
pub mod signing;
pub mod snapshot;
pub mod startup;
pub mod state;
pub mod sync;
pub mod telemetry;

pub use config::Config;
pub use startup::Application;
