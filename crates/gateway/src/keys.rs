//! The accepted API keys, and a cache that spares a known key its SHA-256 on every request.
//!
//! Keys are configured by their SHA-256 only ([`crate::config::ClientKey`]), so telling a
//! presented key from the others costs one SHA-256 (about 10,000 instructions, the largest
//! single cost of a cache hit before this cache). A key that has been verified once is kept,
//! as presented, in a map indexed by a keyed hash (SipHash with a per-process random key): the
//! next request with it is a hash and a constant-time comparison. Only verified keys enter the
//! map, so it never holds more entries than there are configured keys, and an unknown key
//! always takes the SHA-256 path (what a guesser learns from timing is the same as before).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::RwLock;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clients::KeyEntry;

/// A key as presented, once verified, and its entry.
type Verified = (Box<[u8]>, KeyEntry);

/// Every accepted API key (by its SHA-256) and its client.
pub struct Keys {
    by_digest: HashMap<[u8; 32], KeyEntry>,
    hasher: std::collections::hash_map::RandomState,
    verified: RwLock<HashMap<u64, Verified>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("keys", &self.by_digest.len())
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// The keys, by SHA-256.
    pub fn new(by_digest: HashMap<[u8; 32], KeyEntry>) -> Keys {
        Keys {
            by_digest,
            hasher: std::collections::hash_map::RandomState::new(),
            verified: RwLock::new(HashMap::new()),
        }
    }

    /// How many keys are accepted.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Whether no key is accepted.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// Every accepted key's entry.
    pub fn entries(&self) -> impl Iterator<Item = &KeyEntry> {
        self.by_digest.values()
    }

    /// The entry of a configured key's SHA-256.
    pub fn by_digest(&self, digest: &[u8; 32]) -> Option<&KeyEntry> {
        self.by_digest.get(digest)
    }

    /// The entry of the key `presented`, if it is one of the accepted keys.
    pub fn find(&self, presented: &str) -> Option<KeyEntry> {
        let presented = presented.as_bytes();
        let slot = self.hasher.hash_one(presented);
        {
            let verified = self.verified.read().unwrap_or_else(|e| e.into_inner());
            if let Some((key, entry)) = verified.get(&slot)
                && bool::from(key.as_ref().ct_eq(presented))
            {
                return Some(entry.clone());
            }
        }
        let digest: [u8; 32] = Sha256::digest(presented).into();
        let entry = self.by_digest.get(&digest)?.clone();
        let mut verified = self.verified.write().unwrap_or_else(|e| e.into_inner());
        // Bounded by the configured keys; a (vanishingly rare) slot collision keeps the first.
        if verified.len() < self.by_digest.len() {
            verified
                .entry(slot)
                .or_insert_with(|| (Box::from(presented), entry.clone()));
        }
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clients::Client;
    use crate::policy::Policy;

    fn keys(pairs: &[(&str, &str)]) -> Keys {
        Keys::new(
            pairs
                .iter()
                .map(|(key, client)| {
                    (
                        Sha256::digest(key.as_bytes()).into(),
                        KeyEntry {
                            client: Arc::new(Client {
                                name: Arc::from(*client),
                                policy: Policy::unrestricted(),
                                fair_share_weight: 1,
                            }),
                            expires_at: None,
                        },
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn a_key_is_found_the_first_time_and_from_the_cache_after() {
        let keys = keys(&[("alpha-key", "alpha"), ("beta-key", "beta")]);
        for _ in 0..3 {
            assert_eq!(
                keys.find("alpha-key").unwrap().client.name.as_ref(),
                "alpha"
            );
            assert_eq!(keys.find("beta-key").unwrap().client.name.as_ref(), "beta");
        }
        assert_eq!(keys.verified.read().unwrap().len(), 2);
    }

    #[test]
    fn unknown_keys_are_refused_and_never_cached() {
        let keys = keys(&[("alpha-key", "alpha")]);
        for wrong in ["alpha-ke", "alpha-key ", "ALPHA-KEY", "", "beta-key"] {
            assert!(keys.find(wrong).is_none(), "{wrong:?} was accepted");
        }
        assert!(keys.verified.read().unwrap().is_empty());
        assert!(keys.find("alpha-key").is_some());
        assert_eq!(keys.verified.read().unwrap().len(), 1);
    }
}
