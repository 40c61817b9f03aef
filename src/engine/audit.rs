//! `realmctl audit verify|checkpoint`: proves the journal has not been altered.
//!
//! [`verify_chain`] is pure: it walks records in order and recomputes each hash. A modified
//! record fails its own hash; a deleted one leaves a gap in the sequence; an inserted or
//! reordered one does not chain to its predecessor. Cutting records off the end leaves a valid
//! shorter chain, which is why `checkpoint` prints the head: an auditor who kept it passes it
//! back with `--checkpoint SEQ:HASH` and a cut-off journal no longer contains it.
//! Artifact checksums recorded by succeeded steps are then re-computed from the store.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::event::Event;
use super::journal::{GENESIS, Journal, JournalError, Record, record_hash, sha256_hex};
use super::store::Store;

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
            | Break::Unreadable { seq, .. } => *seq,
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
            bytes: 0,
        }
    }

    /// Checks the next record.
    pub fn push(&mut self, r: &Record) -> Result<(), Break> {
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
        match serde_json::from_str::<Event>(&r.payload) {
            Ok(e) if e.kind() == r.kind => {}
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
        }
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
        Ok(())
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

/// One artifact whose checksum did not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactProblem {
    /// The journal record that recorded it.
    pub seq: u64,
    /// Name.
    pub name: String,
    /// Where.
    pub location: String,
    /// What is wrong.
    pub problem: String,
}

/// The result of `audit verify`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// Whether everything holds.
    pub ok: bool,
    /// Records checked.
    pub records: u64,
    /// Bytes of records hashed.
    pub bytes: u64,
    /// The head (give it to `--checkpoint` later).
    pub head: Option<Checkpoint>,
    /// The chain's first break.
    pub chain_break: Option<Break>,
    /// A message for the first break.
    pub message: Option<String>,
    /// Artifacts checked.
    pub artifacts: u64,
    /// Artifacts that failed.
    pub artifact_problems: Vec<ArtifactProblem>,
}

/// Verifies the journal of a state folder and the artifacts it records.
pub async fn verify(
    journal: &Journal,
    store: &Store,
    checkpoint: Option<Checkpoint>,
) -> Result<Verification, JournalError> {
    let mut v = ChainVerifier::new(checkpoint);
    let mut chain_break = None;
    let mut records = 0u64;
    let mut artifacts = Vec::new();
    journal.for_each(|r| {
        if chain_break.is_some() {
            return Ok(());
        }
        match v.push(&r) {
            Ok(()) => {
                records += 1;
                if r.kind == "stepSucceeded"
                    && let Ok(Event::StepSucceeded { output, .. }) = r.event()
                {
                    artifacts.extend(output.artifacts.into_iter().map(|a| (r.seq, a)));
                }
            }
            Err(b) => chain_break = Some(b),
        }
        Ok(())
    })?;
    let bytes = v.bytes;
    let head = match chain_break {
        Some(_) => None,
        None => match v.finish() {
            Ok(h) => h,
            Err(b) => {
                chain_break = Some(b);
                None
            }
        },
    };
    let mut problems = Vec::new();
    for (seq, a) in &artifacts {
        let problem = match store.get(&a.location).await {
            Ok(bytes) => {
                let actual = sha256_hex(&bytes);
                (actual != a.sha256)
                    .then(|| format!("checksum is {actual}, the journal recorded {}", a.sha256))
            }
            Err(e) => Some(e.to_string()),
        };
        if let Some(problem) = problem {
            problems.push(ArtifactProblem {
                seq: *seq,
                name: a.name.clone(),
                location: a.location.clone(),
                problem,
            });
        }
    }
    Ok(Verification {
        ok: chain_break.is_none() && problems.is_empty(),
        records,
        bytes,
        head,
        message: chain_break.as_ref().map(ToString::to_string),
        chain_break,
        artifacts: artifacts.len() as u64,
        artifact_problems: problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<Record> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let e = Event::StepRetry {
                    step: format!("s{seq}"),
                    attempt: 2,
                    delay_ms: seq,
                };
                let payload = serde_json::to_string(&e).unwrap();
                let at = format!("2026-11-23T10:00:{seq:02}Z");
                let hash = record_hash(&prev, seq, &at, e.kind(), &payload);
                let r = Record {
                    seq,
                    at,
                    kind: e.kind().into(),
                    payload,
                    prev: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                r
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies_and_reports_its_head() {
        let c = chain(5);
        let head = verify_chain(&c, None).unwrap().unwrap();
        assert_eq!(head.seq, 5);
        assert_eq!(head.hash, c[4].hash);
        assert_eq!(verify_chain(&c, Some(head.clone())).unwrap(), Some(head));
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
