//! The calling services: who an accepted API key belongs to, and what it may do.

use std::sync::Arc;

use crate::policy::Policy;

/// A calling service, identified by its API key.
#[derive(Debug)]
pub struct Client {
    /// The configured name.
    pub name: Arc<str>,
    /// What it may do and reach.
    pub policy: Policy,
    /// Its weight in the providers' fair lines (`clients.NAME.fair_share_weight`).
    pub fair_share_weight: u32,
}

/// One accepted API key (known by its SHA-256): whose it is, and until when.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    /// The client it belongs to.
    pub client: Arc<Client>,
    /// The first instant (Unix seconds) it is refused, when it has a `not_after` date.
    pub expires_at: Option<i64>,
}

impl KeyEntry {
    /// Whether the key is past its `not_after` date at `now` (Unix seconds).
    pub fn is_expired_at(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }
}
