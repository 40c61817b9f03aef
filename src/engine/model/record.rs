//! One journal record exactly as stored and hashed, and the hash scheme (pure).
//!
//! `hash = SHA-256("realmctl-journal-v1" ‖ len‖prev ‖ len‖at ‖ len‖kind ‖ len‖payload ‖ seq)`:
//! every field is length-prefixed so no two different records hash the same bytes.
//!
//! The signature ([`crate::signing`]) is over the hash, so it is not part of what is hashed:
//! a record's hash is the same whether it is signed or not.

use ::time::OffsetDateTime;
use ::time::format_description::well_known::Rfc3339;
use serde::{Deserialize, Serialize};

use super::event::Event;

/// `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One stored record, exactly as hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Position, from 1, without gaps.
    pub seq: u64,
    /// When, RFC 3339 UTC.
    pub at: String,
    /// The event kind (also inside the payload).
    pub kind: String,
    /// The event as JSON text.
    pub payload: String,
    /// Hash of the previous record (or [`GENESIS`]).
    pub prev: String,
    /// Hash of this record.
    pub hash: String,
    /// The writer's signature of `hash`, when it was given a signing key.
    pub signature: Option<crate::signing::Signature>,
}

/// A record whose payload is not an event this build knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "journal record {seq} cannot be read: {detail}\n  help: run `realmctl audit verify` to check the journal"
)]
pub struct Unreadable {
    /// The record.
    pub seq: u64,
    /// Why.
    pub detail: String,
}

impl Record {
    /// The record after `head` (the last record's position and hash; `None`: the first),
    /// hashed, and signed by `signer` when given — the one rule both journals build records by.
    pub fn after(
        head: Option<(u64, &str)>,
        at: String,
        kind: String,
        payload: String,
        signer: Option<&crate::signing::SigningKey>,
    ) -> Record {
        let (seq, prev) = match head {
            Some((s, h)) => (s + 1, h.to_owned()),
            None => (1, GENESIS.to_owned()),
        };
        let hash = record_hash(&prev, seq, &at, &kind, &payload);
        let signature = signer.map(|k| k.sign(&hash));
        Record {
            seq,
            at,
            kind,
            payload,
            prev,
            hash,
            signature,
        }
    }

    /// The event this record holds.
    pub fn event(&self) -> Result<Event, Unreadable> {
        serde_json::from_str(&self.payload).map_err(|e| Unreadable {
            seq: self.seq,
            detail: e.to_string(),
        })
    }
}

/// The record hash.
pub fn record_hash(prev: &str, seq: u64, at: &str, kind: &str, payload: &str) -> String {
    let mut h = crate::crypto::Sha256::default();
    h.update(b"realmctl-journal-v1");
    for field in [
        prev.as_bytes(),
        at.as_bytes(),
        kind.as_bytes(),
        payload.as_bytes(),
    ] {
        h.update(&(field.len() as u64).to_be_bytes());
        h.update(field);
    }
    h.update(&seq.to_be_bytes());
    h.finish_hex()
}

/// RFC 3339 UTC with milliseconds: the `at` of records and the `since` of locks.
pub fn timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(::time::UtcOffset::UTC);
    let ms = t.millisecond();
    let t = t.replace_millisecond(ms).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

/// How hard an append must be on its storage (a folder's file, a database's commit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// On disk before the append returns (`synchronous=FULL`; a durable commit).
    Sync,
    /// Survives a killed process; made durable by the next `Sync` append.
    Buffered,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_after_the_head_chains_to_it_and_is_signed_when_a_key_is_given() {
        let first = Record::after(None, "t".into(), "approved".into(), "{}".into(), None);
        assert_eq!((first.seq, first.prev.as_str()), (1, GENESIS));
        assert_eq!(first.hash, record_hash(GENESIS, 1, "t", "approved", "{}"));
        assert!(first.signature.is_none());
        let key = crate::signing::SigningKey::generate();
        let next = Record::after(
            Some((first.seq, &first.hash)),
            "u".into(),
            "approved".into(),
            "{}".into(),
            Some(&key),
        );
        assert_eq!((next.seq, &next.prev), (2, &first.hash));
        assert_eq!(
            next.hash,
            record_hash(&first.hash, 2, "u", "approved", "{}")
        );
        assert_eq!(next.signature, Some(key.sign(&next.hash)));
    }

    #[test]
    fn hash_fields_are_unambiguous() {
        assert_ne!(
            record_hash(GENESIS, 1, "a", "bc", "d"),
            record_hash(GENESIS, 1, "ab", "c", "d")
        );
        assert_ne!(
            record_hash(GENESIS, 1, "a", "b", "c"),
            record_hash(GENESIS, 2, "a", "b", "c")
        );
    }
}
