//! Opaque, tamper-evident page cursors.
//!
//! A cursor names a snapshot and an offset into the filtered view of it, plus a fingerprint of
//! the query and the caller it was issued for. It is MAC'd with a per-process key (HMAC-SHA256,
//! truncated to 128 bits), so a forged, altered or foreign cursor (another caller's, another
//! query's) is a 400, never another caller's data.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use provider::TransactionQuery;

use crate::error::ApiError;

const VERSION: u8 = 1;
const BODY_LEN: usize = 1 + 8 + 4 + 8;
const TAG_LEN: usize = 16;

/// What a cursor says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The snapshot it walks.
    pub snapshot_id: u64,
    /// The offset of the next item in the filtered view.
    pub offset: u32,
    /// Fingerprint of (caller, provider, scope, filters).
    pub fingerprint: u64,
}

/// Issues and checks cursors.
pub struct CursorCodec {
    mac: Hmac<Sha256>,
}

impl CursorCodec {
    /// A codec with a fresh random key (cursors do not survive a restart: callers restart the
    /// walk, as they must after the cursor lifetime anyway).
    pub fn random() -> CursorCodec {
        let key: [u8; 64] = rand::random();
        CursorCodec {
            mac: <Hmac<Sha256> as KeyInit>::new(&key.into()),
        }
    }

    /// A codec keyed with `key` (configured, or shared by the replicas through Redis), so a
    /// cursor issued by one replica is accepted by all.
    pub fn with_key(key: &[u8]) -> CursorCodec {
        CursorCodec {
            mac: <Hmac<Sha256> as Mac>::new_from_slice(key)
                .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&[0u8; 64].into())),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        self.mac.clone()
    }

    /// The cursor's text form.
    pub fn encode(&self, cursor: Cursor) -> String {
        let mut bytes = Vec::with_capacity(BODY_LEN + TAG_LEN);
        bytes.push(VERSION);
        bytes.extend_from_slice(&cursor.snapshot_id.to_be_bytes());
        bytes.extend_from_slice(&cursor.offset.to_be_bytes());
        bytes.extend_from_slice(&cursor.fingerprint.to_be_bytes());
        let mut mac = self.mac();
        mac.update(&bytes);
        let tag = mac.finalize().into_bytes();
        bytes.extend_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Reads and verifies a cursor issued for `fingerprint`.
    pub fn decode(&self, text: &str, fingerprint: u64) -> Result<Cursor, ApiError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| ApiError::InvalidCursor("malformed"))?;
        if bytes.len() != BODY_LEN + TAG_LEN || bytes[0] != VERSION {
            return Err(ApiError::InvalidCursor("malformed"));
        }
        let (body, tag) = bytes.split_at(BODY_LEN);
        let mut mac = self.mac();
        mac.update(body);
        mac.verify_truncated_left(tag)
            .map_err(|_| ApiError::InvalidCursor("not issued by this gateway"))?;
        let field = |range: std::ops::Range<usize>| -> [u8; 8] {
            let mut out = [0u8; 8];
            out[8 - range.len()..].copy_from_slice(&body[range]);
            out
        };
        let cursor = Cursor {
            snapshot_id: u64::from_be_bytes(field(1..9)),
            offset: u64::from_be_bytes(field(9..13)) as u32,
            fingerprint: u64::from_be_bytes(field(13..21)),
        };
        if cursor.fingerprint != fingerprint {
            return Err(ApiError::InvalidCursor(
                "issued for another query or caller",
            ));
        }
        Ok(cursor)
    }
}

impl CursorCodec {
    /// Signs an opaque body of another kind of cursor (e.g. delta sync's) with the same key, so
    /// every replica that accepts list cursors accepts it; `kind` separates the kinds (never
    /// [`VERSION`], the list cursors').
    pub fn seal(&self, kind: u8, body: &[u8]) -> String {
        let mut bytes = Vec::with_capacity(1 + body.len() + TAG_LEN);
        bytes.push(kind);
        bytes.extend_from_slice(body);
        let mut mac = self.mac();
        mac.update(&bytes);
        let tag = mac.finalize().into_bytes();
        bytes.extend_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The body of a cursor [`seal`](Self::seal)ed with `kind`, if it is one and is intact.
    pub fn open(&self, kind: u8, text: &str) -> Result<Vec<u8>, ApiError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| ApiError::InvalidCursor("malformed"))?;
        if bytes.len() < 1 + TAG_LEN || bytes[0] != kind || kind == VERSION {
            return Err(ApiError::InvalidCursor("malformed"));
        }
        let (body, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        let mut mac = self.mac();
        mac.update(body);
        mac.verify_truncated_left(tag)
            .map_err(|_| ApiError::InvalidCursor("not issued by this gateway"))?;
        Ok(body[1..].to_vec())
    }
}

/// A fingerprint of who asked what: the caller, provider, scope and filters (not the page).
///
/// XXH3 (64 bits, a published and stable algorithm, so every replica and version computes the
/// same value) over length-prefixed fields, so `("ab", "c")` and `("a", "bc")` differ. It is
/// on every listing's path, so it is not a cryptographic hash: it needs no secrecy (the cursor
/// carrying it is signed) and a collision could only let a client's cursor of one query be
/// read as one of its own other queries.
pub fn fingerprint(client: &str, provider: &str, query: &TransactionQuery) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3Default::new();
    let mut field = |bytes: &[u8]| {
        hasher.update(&(bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    field(client.as_bytes());
    field(provider.as_bytes());
    let (kind, id) = match &query.scope {
        provider::Scope::Account(id) => (b"account".as_slice(), id.as_str()),
        provider::Scope::Customer(id) => (b"customer".as_slice(), id.as_str()),
        provider::Scope::Nuban(id) => (b"nuban".as_slice(), id.as_str()),
        provider::Scope::All => (b"all".as_slice(), ""),
    };
    field(kind);
    field(id.as_bytes());
    let date = |d: Option<time::Date>| d.map_or(0i32, |d| d.to_julian_day()).to_be_bytes();
    field(&date(query.range.from));
    field(&date(query.range.to));
    field(
        query
            .direction
            .map_or(b"".as_slice(), |d| d.as_str().as_bytes()),
    );
    hasher.digest()
}

#[cfg(test)]
mod tests {
    use super::*;
    use provider::Scope;

    fn query() -> TransactionQuery {
        TransactionQuery::new(Scope::Account("acc1".into()))
    }

    #[test]
    fn round_trip() {
        let codec = CursorCodec::random();
        let fp = fingerprint("billing", "okra", &query());
        let cursor = Cursor {
            snapshot_id: 7,
            offset: 150,
            fingerprint: fp,
        };
        assert_eq!(codec.decode(&codec.encode(cursor), fp).unwrap(), cursor);
    }

    #[test]
    fn forged_foreign_and_garbage_cursors_are_refused() {
        let codec = CursorCodec::random();
        let fp = fingerprint("billing", "okra", &query());
        let text = codec.encode(Cursor {
            snapshot_id: 7,
            offset: 150,
            fingerprint: fp,
        });
        // Another caller's fingerprint.
        let other = fingerprint("ledger", "okra", &query());
        assert!(matches!(
            codec.decode(&text, other),
            Err(ApiError::InvalidCursor(_))
        ));
        // Another gateway's key.
        assert!(CursorCodec::random().decode(&text, fp).is_err());
        // Every single-character alteration.
        for i in 0..text.len() {
            let mut altered: Vec<char> = text.chars().collect();
            altered[i] = if altered[i] == 'A' { 'B' } else { 'A' };
            let altered: String = altered.into_iter().collect();
            if altered != text {
                assert!(codec.decode(&altered, fp).is_err(), "position {i}");
            }
        }
        for junk in ["", "x", "!!!!", &"A".repeat(500)] {
            assert!(codec.decode(junk, fp).is_err());
        }
    }
}
