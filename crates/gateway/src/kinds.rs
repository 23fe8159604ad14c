//! The provider kinds: the one table a new kind is added to (its adapter crate implements
//! [`provider::kind::Kind`]; the line says where the embedded sandbox serves it).
//!
//! `config` validates a `[providers.NAME]` section against its kind's entry (page size range,
//! credentials, the kind's own keys), and `registry` builds the adapter through it.

use std::sync::Arc;

use provider::kind::{Common, Credential, Kind};
use provider::{Provider, ProviderError};

/// Every kind the gateway can build, by its `kind` name.
pub static KINDS: &[KindEntry] = &[
    KindEntry::of::<okra::OkraKind>(|sb| {
        SandboxEndpoint::of(sb.sandbox.okra_base_url(), &sb.config.okra_secret)
    }),
    KindEntry::of::<mono::MonoKind>(|sb| {
        SandboxEndpoint::of(sb.sandbox.mono_base_url(), &sb.config.mono_secret)
            .with("app_id", &sb.config.mono_app_id)
    }),
    KindEntry::of::<mono_connect::MonoConnectKind>(|sb| {
        SandboxEndpoint::of(
            sb.sandbox.mono_connect_base_url(),
            &sb.config.mono_connect_secret,
        )
    }),
];

/// Where the embedded sandbox runs, for providers configured with `base_url = "sandbox"`.
pub struct SandboxUpstream<'a> {
    /// The running sandbox.
    pub sandbox: &'a sandbox::Sandbox,
    /// Its configuration (credentials).
    pub config: &'a sandbox::SandboxConfig,
}

/// Where the sandbox serves one kind, and the credentials it accepts there.
#[derive(Debug, Clone)]
pub struct SandboxEndpoint {
    /// Base URL.
    pub base_url: String,
    /// The secret key.
    pub secret_key: String,
    /// The kind's other credentials, by key.
    pub credentials: Vec<(&'static str, String)>,
}

impl SandboxEndpoint {
    fn of(base_url: String, secret_key: &str) -> SandboxEndpoint {
        SandboxEndpoint {
            base_url,
            secret_key: secret_key.to_owned(),
            credentials: Vec::new(),
        }
    }

    fn with(mut self, key: &'static str, value: &str) -> SandboxEndpoint {
        self.credentials.push((key, value.to_owned()));
        self
    }
}

/// Why a kind's own keys were refused: the key when known (else the section), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindKeyError {
    /// The key at fault, when the kind names one.
    pub key: Option<&'static str>,
    /// What is wrong.
    pub message: String,
}

/// One kind: its name, defaults, credentials, how its own keys are checked and how its adapter
/// is built.
pub struct KindEntry {
    /// The `kind` value.
    pub name: &'static str,
    /// Credentials besides `secret_key`.
    pub credentials: &'static [Credential],
    /// The page size when the section gives none.
    pub default_page_size: u32,
    /// The largest page size.
    pub max_page_size: u32,
    check: fn(&serde_json::Value) -> Result<(), KindKeyError>,
    build: fn(Common, serde_json::Value) -> Result<Arc<dyn Provider>, ProviderError>,
    /// Where the embedded sandbox serves this kind.
    pub sandbox: fn(&SandboxUpstream<'_>) -> SandboxEndpoint,
}

impl std::fmt::Debug for KindEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KindEntry")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl PartialEq for KindEntry {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl KindEntry {
    /// The entry of the kind `K`, served by the sandbox as `sandbox` says.
    pub const fn of<K: Kind>(sandbox: fn(&SandboxUpstream<'_>) -> SandboxEndpoint) -> KindEntry {
        KindEntry {
            name: K::NAME,
            credentials: K::CREDENTIALS,
            default_page_size: K::DEFAULT_PAGE_SIZE,
            max_page_size: K::MAX_PAGE_SIZE,
            check: check_settings::<K>,
            build: build_adapter::<K>,
            sandbox,
        }
    }

    /// Checks the kind's own keys (a JSON object; credentials already taken out).
    pub fn check(&self, settings: &serde_json::Value) -> Result<(), KindKeyError> {
        (self.check)(settings)
    }

    /// Builds the adapter from the common keys and the kind's own.
    pub fn build(
        &self,
        common: Common,
        settings: serde_json::Value,
    ) -> Result<Arc<dyn Provider>, ProviderError> {
        (self.build)(common, settings)
    }
}

/// The entry named `name`.
pub fn find(name: &str) -> Option<&'static KindEntry> {
    KINDS.iter().find(|k| k.name == name)
}

/// Every kind's name, for error messages.
pub fn names() -> String {
    KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

fn check_settings<K: Kind>(settings: &serde_json::Value) -> Result<(), KindKeyError> {
    let parsed: K::Settings =
        serde_json::from_value(settings.clone()).map_err(|e| KindKeyError {
            key: None,
            message: e.to_string(),
        })?;
    K::check(&parsed).map_err(|e| KindKeyError {
        key: Some(e.key),
        message: e.message,
    })
}

fn build_adapter<K: Kind>(
    common: Common,
    settings: serde_json::Value,
) -> Result<Arc<dyn Provider>, ProviderError> {
    let parsed: K::Settings =
        serde_json::from_value(settings).map_err(|e| ProviderError::Config {
            provider: common.name.clone(),
            message: e.to_string(),
        })?;
    K::build(common, parsed)
}
