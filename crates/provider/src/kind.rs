//! A provider kind: what an adapter crate offers the gateway so that the kind is one line in
//! the gateway's kind table.
//!
//! The gateway reads the keys every kind shares (base URL, credentials, timeouts, page size,
//! traffic limits, cache TTL) into [`Common`]; the rest of a `[providers.NAME]` section is the
//! kind's own, deserialized into [`Kind::Settings`] (the adapter's type, with
//! `#[serde(deny_unknown_fields)]`, so a misspelt key is refused by name) and checked by
//! [`Kind::check`]. [`Kind::build`] then makes the adapter.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::{Provider, ProviderError, Secret};

/// The keys every kind shares, validated by the gateway.
#[derive(Debug, Clone)]
pub struct Common {
    /// The instance name (in every id, error and metric).
    pub name: String,
    /// The vendor's base URL (http or https).
    pub base_url: String,
    /// The main secret key.
    pub secret_key: Secret,
    /// The kind's other credentials ([`Kind::CREDENTIALS`]), by key, when configured.
    pub credentials: BTreeMap<&'static str, Secret>,
    /// How long to wait for a connection.
    pub connect_timeout: Duration,
    /// How long one request may take.
    pub request_timeout: Duration,
    /// How long a refresh may take in all.
    pub refresh_deadline: Duration,
    /// Items per page when a whole scope is read page by page.
    pub page_size: u32,
}

impl Common {
    /// `base_url`, parsed, or a configuration error naming it.
    pub fn base_url(&self) -> Result<url::Url, ProviderError> {
        url::Url::parse(&self.base_url).map_err(|e| ProviderError::Config {
            provider: self.name.clone(),
            message: format!("base_url: {e}"),
        })
    }

    /// The credential `key`, or a configuration error naming it.
    pub fn credential(&self, key: &'static str) -> Result<Secret, ProviderError> {
        self.credentials
            .get(key)
            .cloned()
            .ok_or_else(|| ProviderError::Config {
                provider: self.name.clone(),
                message: format!("{key} is required"),
            })
    }
}

/// A credential a kind needs besides `secret_key`, given as `{ env = "NAME" }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credential {
    /// Its key in the provider section (`app_id`).
    pub key: &'static str,
    /// Whether a real (non-sandbox) upstream must have it.
    pub required: bool,
}

/// A kind-specific key that is out of range: which key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    /// The key in the provider section (`page_size`).
    pub key: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// One provider kind, implemented by its adapter crate.
pub trait Kind {
    /// The `kind` value in the configuration (`okra`, `mono-connect`).
    const NAME: &'static str;
    /// Credentials besides `secret_key`.
    const CREDENTIALS: &'static [Credential] = &[];
    /// The page size when the configuration gives none.
    const DEFAULT_PAGE_SIZE: u32;
    /// The largest page size the vendor serves.
    const MAX_PAGE_SIZE: u32;
    /// The kind's own keys (`#[serde(deny_unknown_fields)]`).
    type Settings: serde::de::DeserializeOwned;
    /// Checks the kind's own keys beyond their types.
    fn check(settings: &Self::Settings) -> Result<(), SettingsError> {
        let _ = settings;
        Ok(())
    }
    /// Builds the adapter.
    fn build(common: Common, settings: Self::Settings) -> Result<Arc<dyn Provider>, ProviderError>;
}
