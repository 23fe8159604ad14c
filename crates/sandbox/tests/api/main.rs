//! The sandbox over real HTTP: each test starts its own server on a free port.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic: that is a failed test

mod agreement;
mod faults;
mod helpers;
mod mono;
mod mono_connect;
mod okra;
mod vendor_clients;
