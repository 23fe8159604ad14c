//! Webhook signing keys: how a configured secret becomes the HMAC key of Standard Webhooks
//! signatures. A leaf: `config` reads keys with it, `notify` signs with it.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of Standard Webhooks secrets, followed by the key in base64.
pub const WHSEC_PREFIX: &str = "whsec_";

/// A webhook signing key (never printed).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookKey(pub(crate) Arc<[u8]>);

impl std::fmt::Debug for WebhookKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookKey(<redacted>)")
    }
}

impl WebhookKey {
    /// The key of a configured secret: `whsec_<base64>` is decoded, anything else is raw bytes.
    pub fn from_secret(secret: &str) -> Result<WebhookKey, String> {
        let secret = secret.trim();
        match secret.strip_prefix(WHSEC_PREFIX) {
            Some(encoded) => {
                let key = BASE64.decode(encoded).map_err(|_| {
                    "a whsec_ secret must be followed by standard base64".to_owned()
                })?;
                if !(24..=64).contains(&key.len()) {
                    return Err(format!(
                        "a whsec_ secret must decode to 24-64 bytes, not {}",
                        key.len()
                    ));
                }
                Ok(WebhookKey(key.into()))
            }
            None if secret.len() < 16 => Err("a secret must be at least 16 bytes long".to_owned()),
            None => Ok(WebhookKey(secret.as_bytes().into())),
        }
    }

    /// The `webhook-signature` value for one attempt: `v1,<base64 HMAC-SHA256>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC accepts keys of any length; the error case cannot happen.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return String::new();
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }
}
