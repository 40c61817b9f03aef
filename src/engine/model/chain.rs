//! The journal's chain check (pure): walks records in order and recomputes each hash. A
//! modified record fails its own hash; a deleted one leaves a gap in the sequence; an inserted
//! or reordered one does not chain to its predecessor; a record written by one run after
//! another run started shows two writers at once. Cutting records off the end leaves a valid
//! shorter chain, which is why `audit checkpoint` prints the head: an auditor who kept it
//! passes it back with `--checkpoint SEQ:HASH` and a cut-off journal no longer contains it.
//!
//! A consistent chain is not yet an authentic one: anyone who can write the state folder can
//! append a correctly hashed record. Given the public keys of the people who write the journal
//! ([`ChainVerifier::require_signatures`]), every record must also carry a valid signature by
//! one of them, the last record included.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::event::{Event, EventKind};
use super::record::{GENESIS, Record, record_hash};
use crate::signing::{PublicKey, Signature, SignatureCheck, check};

/// A head an auditor kept: `SEQ:HASH`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    /// Record position.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl FromStr for Checkpoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{s}` is not a checkpoint; give SEQ:HASH as printed by `realmctl audit checkpoint`"
            )
        };
        let (seq, hash) = s.split_once(':').ok_or_else(bad)?;
        let seq = seq.parse().map_err(|_| bad())?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Checkpoint {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    }
}

/// The first place the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "problem",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Break {
    /// The record's contents do not match its hash.
    Modified {
        /// The record.
        seq: u64,
    },
    /// Records are missing before this one.
    Missing {
        /// The first missing position.
        seq: u64,
        /// The record found there instead.
        found: u64,
    },
    /// The record does not chain to the one before it.
    Unchained {
        /// The record.
        seq: u64,
    },
    /// The record's kind column disagrees with its payload, or the payload is unreadable.
    Unreadable {
        /// The record.
        seq: u64,
        /// Why.
        detail: String,
    },
    /// A record of one run after another run started: two installs wrote at once.
    Interleaved {
        /// The record.
        seq: u64,
        /// The run that wrote it.
        run: u32,
        /// The run that had started by then.
        current: u32,
    },
    /// The record carries no signature, and signatures are required.
    Unsigned {
        /// The record.
        seq: u64,
    },
    /// The record is signed by a key that is not among the trusted ones.
    UntrustedSigner {
        /// The record.
        seq: u64,
        /// The key id it names.
        key: String,
    },
    /// The record's signature does not verify with the key it names.
    BadSignature {
        /// The record.
        seq: u64,
        /// The key id it names.
        key: String,
    },
    /// The checkpoint is not in the journal.
    CheckpointMissing {
        /// The checkpoint.
        checkpoint: String,
        /// The journal's head.
        head: u64,
    },
}

impl Break {
    /// The first bad record's position.
    pub fn seq(&self) -> u64 {
        match self {
            Break::Modified { seq }
            | Break::Missing { seq, .. }
            | Break::Unchained { seq }
            | Break::Unreadable { seq, .. }
            | Break::Interleaved { seq, .. }
            | Break::Unsigned { seq }
            | Break::UntrustedSigner { seq, .. }
            | Break::BadSignature { seq, .. } => *seq,
            Break::CheckpointMissing { head, .. } => head + 1,
        }
    }
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Break::Modified { seq } => write!(
                f,
                "record {seq} was modified: its contents do not match its hash"
            ),
            Break::Missing { seq, found } => write!(
                f,
                "record {seq} is missing (deleted): the next record present is {found}"
            ),
            Break::Unchained { seq } => write!(
                f,
                "record {seq} does not chain to record {}: a record was inserted, reordered or altered there",
                seq.saturating_sub(1)
            ),
            Break::Unreadable { seq, detail } => {
                write!(f, "record {seq} is not a valid journal event: {detail}")
            }
            Break::Interleaved { seq, run, current } => write!(
                f,
                "record {seq} was written by run {run} after run {current} had started: two installs wrote this state folder at once (its lock was bypassed); check both runs' steps before going on"
            ),
            Break::Unsigned { seq } => write!(
                f,
                "record {seq} is not signed: it was written without a signing key, or added by someone who holds none of the trusted keys"
            ),
            Break::UntrustedSigner { seq, key } => write!(
                f,
                "record {seq} is signed by {key}, which is not one of the trusted public keys"
            ),
            Break::BadSignature { seq, key } => write!(
                f,
                "record {seq} has a signature by {key} that does not verify: the record or its signature was altered"
            ),
            Break::CheckpointMissing { checkpoint, head } => write!(
                f,
                "the checkpoint {checkpoint} is not in the journal (head is record {head}): records were cut off the end or rewritten"
            ),
        }
    }
}

/// Incremental chain verifier.
#[derive(Debug)]
pub struct ChainVerifier {
    expected_seq: u64,
    prev: String,
    checkpoint: Option<Checkpoint>,
    checkpoint_seen: bool,
    current_run: Option<u32>,
    trusted: Vec<PublicKey>,
    /// Records per signing key id (verified ones only when keys are required).
    pub signed_by: std::collections::BTreeMap<String, u64>,
    /// Records without a signature.
    pub unsigned: u64,
    /// Bytes hashed.
    pub bytes: u64,
}

impl ChainVerifier {
    /// A verifier, optionally checking a kept head.
    pub fn new(checkpoint: Option<Checkpoint>) -> Self {
        ChainVerifier {
            expected_seq: 1,
            prev: GENESIS.to_owned(),
            checkpoint,
            checkpoint_seen: false,
            current_run: None,
            trusted: Vec::new(),
            signed_by: Default::default(),
            unsigned: 0,
            bytes: 0,
        }
    }

    /// Requires every record to carry a valid signature by one of `keys` (no keys: signatures
    /// are counted but not checked).
    pub fn require_signatures(mut self, keys: Vec<PublicKey>) -> Self {
        self.trusted = keys;
        self
    }

    /// Checks the record's signature (when keys are required) and counts its signer.
    fn check_signature(&mut self, r: &Record) -> Result<(), Break> {
        if self.trusted.is_empty() {
            match &r.signature {
                Some(s) => *self.signed_by.entry(s.key.clone()).or_default() += 1,
                None => self.unsigned += 1,
            }
            return Ok(());
        }
        let key = signature_break(r.seq, &r.hash, r.signature.as_ref(), &self.trusted)?;
        *self.signed_by.entry(key).or_default() += 1;
        Ok(())
    }

    /// Checks the next record; returns its event.
    pub fn push(&mut self, r: &Record) -> Result<Event, Break> {
        self.bytes += (r.at.len() + r.kind.len() + r.payload.len() + r.prev.len()) as u64;
        if record_hash(&r.prev, r.seq, &r.at, &r.kind, &r.payload) != r.hash {
            return Err(Break::Modified { seq: r.seq });
        }
        if r.seq != self.expected_seq {
            return Err(if r.seq > self.expected_seq {
                Break::Missing {
                    seq: self.expected_seq,
                    found: r.seq,
                }
            } else {
                Break::Unchained { seq: r.seq }
            });
        }
        if r.prev != self.prev {
            return Err(Break::Unchained { seq: r.seq });
        }
        self.check_signature(r)?;
        let event = match serde_json::from_str::<Event>(&r.payload) {
            Ok(e) if r.kind.parse::<EventKind>() == Ok(e.kind()) => e,
            Ok(e) => {
                return Err(Break::Unreadable {
                    seq: r.seq,
                    detail: format!("kind `{}` but payload is `{}`", r.kind, e.kind()),
                });
            }
            Err(e) => {
                return Err(Break::Unreadable {
                    seq: r.seq,
                    detail: e.to_string(),
                });
            }
        };
        self.check_run(r.seq, &event)?;
        if let Some(c) = &self.checkpoint
            && c.seq == r.seq
        {
            if c.hash != r.hash {
                return Err(Break::CheckpointMissing {
                    checkpoint: c.to_string(),
                    head: r.seq,
                });
            }
            self.checkpoint_seen = true;
        }
        self.expected_seq += 1;
        self.prev.clone_from(&r.hash);
        Ok(event)
    }

    /// Runs follow each other: a new run's number is higher than every earlier one, and no
    /// record of an earlier run comes after it.
    fn check_run(&mut self, seq: u64, e: &Event) -> Result<(), Break> {
        let Some(run) = e.run() else {
            return Ok(());
        };
        match (e, self.current_run) {
            (Event::RunStarted { .. }, Some(current)) if run <= current => {
                Err(Break::Interleaved { seq, run, current })
            }
            (Event::RunStarted { .. }, _) => {
                self.current_run = Some(run);
                Ok(())
            }
            (_, Some(current)) if run == current => Ok(()),
            (_, current) => Err(Break::Interleaved {
                seq,
                run,
                current: current.unwrap_or(0),
            }),
        }
    }

    /// Ends the walk: the checkpoint must have been seen.
    pub fn finish(self) -> Result<Option<Checkpoint>, Break> {
        let head = self.expected_seq - 1;
        if let Some(c) = &self.checkpoint
            && !self.checkpoint_seen
        {
            return Err(Break::CheckpointMissing {
                checkpoint: c.to_string(),
                head,
            });
        }
        Ok((head > 0).then_some(Checkpoint {
            seq: head,
            hash: self.prev,
        }))
    }
}

/// Whether the chain break `chain` comes first when a signature break `sig` was also found
/// (pure): the earlier record wins; on the same record, the checks run before the signature's
/// (its own hash, its position, its link) win, the later ones (its payload, its run, the
/// checkpoint) lose, as in [`ChainVerifier::push`].
pub fn first_of(chain: &Break, sig: &Break) -> bool {
    chain.seq() < sig.seq()
        || (chain.seq() == sig.seq()
            && matches!(
                chain,
                Break::Modified { .. } | Break::Missing { .. } | Break::Unchained { .. }
            ))
}

/// Checks one record's signature against `trusted` keys (pure): the signer's key id, or the
/// break it is.
pub fn signature_break(
    seq: u64,
    hash: &str,
    signature: Option<&Signature>,
    trusted: &[PublicKey],
) -> Result<String, Break> {
    match check(hash, signature, trusted) {
        SignatureCheck::Valid(key) => Ok(key),
        SignatureCheck::Unsigned => Err(Break::Unsigned { seq }),
        SignatureCheck::UntrustedKey(key) => Err(Break::UntrustedSigner { seq, key }),
        SignatureCheck::Invalid(key) => Err(Break::BadSignature { seq, key }),
    }
}

/// Verifies records in order (pure).
pub fn verify_chain(
    records: &[Record],
    checkpoint: Option<Checkpoint>,
) -> Result<Option<Checkpoint>, Break> {
    let mut v = ChainVerifier::new(checkpoint);
    for r in records {
        v.push(r)?;
    }
    v.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A correctly hashed chain of `events`.
    fn records(events: &[Event]) -> Vec<Record> {
        let mut prev = GENESIS.to_owned();
        events
            .iter()
            .zip(1u64..)
            .map(|(e, seq)| {
                let payload = serde_json::to_string(e).unwrap();
                let at = format!("2026-11-23T10:00:{seq:02}Z");
                let kind = e.kind().as_str();
                let hash = record_hash(&prev, seq, &at, kind, &payload);
                let r = Record {
                    seq,
                    at,
                    kind: kind.into(),
                    payload,
                    prev: prev.clone(),
                    hash: hash.clone(),
                    signature: None,
                };
                prev = hash;
                r
            })
            .collect()
    }

    fn chain(n: u64) -> Vec<Record> {
        let events: Vec<_> = (1..=n)
            .map(|i| Event::Approved {
                phase: 5,
                by: format!("approver {i}"),
                note: None,
                covers: "x".into(),
                definition: None,
                customer: None,
            })
            .collect();
        records(&events)
    }

    fn started(run: u32) -> Event {
        Event::RunStarted {
            run,
            operator: "op".into(),
            version: "v".into(),
            host: "h".into(),
            lock_id: "l".into(),
            subject: crate::engine::model::event::RunSubject {
                realm: "acme".into(),
                provider: crate::spec::Provider::Eks,
                region: "r".into(),
                artifacts_bucket: None,
                endpoint: None,
            },
            spec_digest: "d".into(),
            spec: serde_json::json!({}),
            playbook: crate::engine::model::playbook::embedded(),
            until: None,
        }
    }

    fn step(run: u32) -> Event {
        Event::StepRetry {
            run,
            step: "dns".into(),
            attempt: 2,
            delay_ms: 1,
        }
    }

    #[test]
    fn runs_that_follow_each_other_verify_and_overlapping_runs_are_named() {
        // A killed run 1 (no stop record) followed by run 2: fine.
        let ok = records(&[started(1), step(1), started(2), step(2)]);
        assert!(verify_chain(&ok, None).is_ok());
        // Run 1 writes after run 2 started: two writers.
        let bad = records(&[started(1), started(2), step(1)]);
        assert_eq!(
            verify_chain(&bad, None).unwrap_err(),
            Break::Interleaved {
                seq: 3,
                run: 1,
                current: 2
            }
        );
        // Two runs that both took the same number.
        let twice = records(&[started(2), step(2), started(2)]);
        assert!(matches!(
            verify_chain(&twice, None).unwrap_err(),
            Break::Interleaved { seq: 3, .. }
        ));
        // A step record before any run started.
        let orphan = records(&[step(1)]);
        assert!(matches!(
            verify_chain(&orphan, None).unwrap_err(),
            Break::Interleaved {
                seq: 1,
                current: 0,
                ..
            }
        ));
    }

    #[test]
    fn an_intact_chain_verifies_and_reports_its_head() {
        let c = chain(5);
        let head = verify_chain(&c, None).unwrap().unwrap();
        assert_eq!(head.seq, 5);
        assert_eq!(head.hash, c[4].hash);
        assert_eq!(verify_chain(&c, Some(head.clone())).unwrap(), Some(head));
    }

    fn signed(mut rs: Vec<Record>, key: &crate::signing::SigningKey) -> Vec<Record> {
        for r in &mut rs {
            r.signature = Some(key.sign(&r.hash));
        }
        rs
    }

    #[test]
    fn signatures_are_required_on_every_record_when_keys_are_given() {
        use crate::signing::SigningKey;
        let (a, b) = (SigningKey::generate(), SigningKey::generate());
        let keys = vec![a.public().clone(), b.public().clone()];
        let verify = |rs: &[Record], keys: Vec<PublicKey>| {
            let mut v = ChainVerifier::new(None).require_signatures(keys);
            for r in rs {
                v.push(r)?;
            }
            v.finish().map(|_| rs.len())
        };
        let mut rs = signed(chain(4), &a);
        rs[2].signature = Some(b.sign(&rs[2].hash));
        assert_eq!(verify(&rs, keys.clone()), Ok(4), "two trusted signers");
        assert_eq!(
            verify(&rs, vec![a.public().clone()]),
            Err(Break::UntrustedSigner {
                seq: 3,
                key: b.public().id().to_owned()
            })
        );
        // Each position, the last included, is named when unsigned or badly signed.
        for i in 0..rs.len() {
            let mut u = rs.clone();
            u[i].signature = None;
            assert_eq!(
                verify(&u, keys.clone()),
                Err(Break::Unsigned { seq: i as u64 + 1 })
            );
            let mut bad = rs.clone();
            let other = (i + 1) % rs.len();
            bad[i].signature = rs[other].signature.clone();
            assert!(
                matches!(verify(&bad, keys.clone()), Err(Break::BadSignature { seq, .. }) if seq == i as u64 + 1),
                "copied signature at {i}"
            );
        }
        // Without keys, signatures are counted, not checked.
        let mut v = ChainVerifier::new(None);
        let mut u = rs.clone();
        u[0].signature = None;
        for r in &u {
            v.push(r).unwrap();
        }
        assert_eq!(v.unsigned, 1);
        assert_eq!(v.signed_by[a.public().id()], 2);
        assert_eq!(v.signed_by[b.public().id()], 1);
    }

    #[test]
    fn a_break_found_in_order_and_one_found_by_the_signature_batches_rank_alike() {
        let sig = Break::BadSignature {
            seq: 5,
            key: "k".into(),
        };
        assert!(first_of(&Break::Unchained { seq: 4 }, &sig));
        assert!(first_of(&Break::Modified { seq: 5 }, &sig));
        assert!(first_of(&Break::Unchained { seq: 5 }, &sig));
        assert!(!first_of(
            &Break::Unreadable {
                seq: 5,
                detail: "x".into()
            },
            &sig
        ));
        assert!(!first_of(&Break::Modified { seq: 6 }, &sig));
    }

    #[test]
    fn checkpoints_parse_strictly() {
        assert!("3:abc".parse::<Checkpoint>().is_err());
        assert!(format!("x:{GENESIS}").parse::<Checkpoint>().is_err());
        assert_eq!(format!("3:{GENESIS}").parse::<Checkpoint>().unwrap().seq, 3);
    }

    #[test]
    fn cutting_the_end_is_caught_only_with_a_checkpoint() {
        let c = chain(5);
        let head = verify_chain(&c, None).unwrap().unwrap();
        assert!(verify_chain(&c[..4], None).is_ok());
        assert_eq!(
            verify_chain(&c[..4], Some(head)).unwrap_err().seq(),
            5,
            "the first record past the head is the bad one"
        );
    }
}
