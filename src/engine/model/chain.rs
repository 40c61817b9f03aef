//! The journal's chain check (pure): walks records in order and recomputes each hash. A
//! modified record fails its own hash; a deleted one leaves a gap in the sequence; an inserted
//! or reordered one does not chain to its predecessor; a record written by one run after
//! another run started shows two writers at once. Cutting records off the end leaves a valid
//! shorter chain, which is why `audit checkpoint` prints the head: an auditor who kept it
//! passes it back with `--checkpoint SEQ:HASH` and a cut-off journal no longer contains it.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::event::{Event, EventKind};
use super::record::{GENESIS, Record, record_hash};

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
            | Break::Interleaved { seq, .. } => *seq,
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
            bytes: 0,
        }
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
