//! `realmctl audit verify`: proves the journal has not been altered, then re-computes every
//! artifact checksum the journal recorded from the store that holds it.
//!
//! Given public keys (`--public-key`), every record must also carry a valid signature by one
//! of them ([`crate::signing`]); without keys, signatures are counted and reported but prove
//! nothing, and the result says so. An approval imported from a customer's offline statement
//! carries the customer's own signature: it must verify (under a `--customer-key` when the
//! auditor gives any) and say what the record says ([`offline::recorded`]).
//!
//! The chain walk is the pure [`super::model::chain`]; this module only reads: the journal
//! (read-only, so a read-only copy of a state folder verifies) and the artifacts (only at
//! locations inside the store). Nothing read from the journal is trusted before the chain and
//! the signatures verify: the artifacts are read from the store the auditor names (the state
//! folder, or the bucket of the spec the auditor gives), never from an endpoint a journal
//! record names, and not at all when the journal does not verify.

use std::collections::BTreeSet;

use serde::Serialize;

use super::io::journal::{Journal, JournalError};
use super::io::state::StateRef;
use super::io::store::{Store, StoreError};
use super::model::chain::{self, Break, ChainVerifier, Checkpoint};
use super::model::event::Event;
use super::model::offline;
use crate::crypto::sha256_hex;
use crate::signing::PublicKey;

/// Why `audit verify` could not run at all (a failed verification is a [`Verification`]).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The journal cannot be opened or read.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The artifact store cannot be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
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
    /// Whether every record's signature was checked against trusted keys.
    pub signatures_checked: bool,
    /// The trusted keys: id and the file each came from.
    pub trusted_keys: Vec<TrustedKey>,
    /// Records per signing key id (verified signatures only, when checked).
    pub signed_by: std::collections::BTreeMap<String, u64>,
    /// Records without a signature.
    pub unsigned: u64,
    /// The chain's first break.
    pub chain_break: Option<Break>,
    /// A message for the first break.
    pub message: Option<String>,
    /// Artifacts checked.
    pub artifacts: u64,
    /// Artifacts that failed.
    pub artifact_problems: Vec<ArtifactProblem>,
    /// Whether customers' offline statements were checked against keys the auditor gave
    /// (`--customer-key`); otherwise each is checked against the key it carries.
    pub customer_keys_checked: bool,
    /// Every approval imported from a customer's signed statement, checked.
    pub customer_approvals: Vec<CustomerApproval>,
}

/// An approval imported from a customer's offline statement, as `audit verify` found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerApproval {
    /// The approval's record.
    pub seq: u64,
    /// Its phase.
    pub phase: u8,
    /// Who approved.
    pub by: String,
    /// The key the statement names.
    pub key: String,
    /// What is wrong, when something is.
    pub problem: Option<String>,
}

/// A public key given to `audit verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustedKey {
    /// Key id, as records name it.
    pub id: String,
    /// Where it was read from.
    pub source: String,
}

/// Verifies the journal of the state folder `dir` and the artifacts it records, read from
/// `store`: the one the auditor names ([`Store::local`] of the folder, or the spec's bucket
/// opened as the install opens it), never one a journal record names.
pub async fn verify_state(
    dir: &StateRef,
    store: &Store,
    checkpoint: Option<Checkpoint>,
    keys: Vec<PublicKey>,
    customer_keys: &[PublicKey],
) -> Result<Verification, AuditError> {
    let journal = Journal::open_read_only(dir)?;
    Ok(verify(&journal, store, checkpoint, keys, customer_keys).await?)
}

/// What the journal said before each approval, for checking customers' statements in order.
#[derive(Default)]
struct Customers {
    realm: Option<String>,
    /// SHA-256 of every artifact recorded so far, by phase.
    documents: std::collections::BTreeMap<u8, BTreeSet<String>>,
    checked: Vec<CustomerApproval>,
}

impl Customers {
    fn see(&mut self, seq: u64, event: &Event, keys: &[PublicKey]) {
        match event {
            Event::RunStarted { subject, .. } => self.realm = Some(subject.realm.clone()),
            Event::StepSucceeded { phase, output, .. } => self
                .documents
                .entry(*phase)
                .or_default()
                .extend(output.artifacts.iter().map(|a| a.sha256.clone())),
            Event::Approved {
                phase,
                by,
                note,
                definition,
                customer: Some(signed),
                ..
            } => {
                let none = BTreeSet::new();
                let record = offline::Recorded {
                    realm: self.realm.as_deref(),
                    phase: *phase,
                    by,
                    note: note.as_deref(),
                    definition: definition.as_deref(),
                    documents: self.documents.get(phase).unwrap_or(&none),
                };
                self.checked.push(CustomerApproval {
                    seq,
                    phase: *phase,
                    by: by.clone(),
                    key: signed.key.clone(),
                    problem: offline::recorded(signed, &record, keys)
                        .err()
                        .map(|e| e.to_string()),
                });
            }
            _ => {}
        }
    }
}

/// Signatures checked in batches across threads: the first record, by position, whose
/// signature is missing, untrusted or bad.
struct Batches<'k> {
    keys: &'k [PublicKey],
    batch: Vec<(u64, String, Option<crate::signing::Signature>)>,
    first: Option<Break>,
}

impl<'k> Batches<'k> {
    const SIZE: usize = 4096;

    fn new(keys: &'k [PublicKey]) -> Self {
        Batches {
            keys,
            batch: Vec::new(),
            first: None,
        }
    }

    fn failed(&self) -> bool {
        self.first.is_some()
    }

    fn push(&mut self, seq: u64, hash: String, sig: Option<crate::signing::Signature>) {
        if self.keys.is_empty() {
            return;
        }
        self.batch.push((seq, hash, sig));
        if self.batch.len() >= Self::SIZE {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.batch.is_empty() || self.first.is_some() {
            return;
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = self.batch.len().div_ceil(threads);
        let keys = self.keys;
        let first = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .batch
                .chunks(chunk)
                .map(|c| {
                    s.spawn(move || {
                        c.iter().find_map(|(seq, hash, sig)| {
                            chain::signature_break(*seq, hash, sig.as_ref(), keys).err()
                        })
                    })
                })
                .collect();
            // Chunks are in order: the first chunk with a break holds the first break.
            handles
                .into_iter()
                .map(|h| h.join().expect("signature checks do not panic"))
                .find_map(|b| b)
        });
        self.first = first;
        self.batch.clear();
    }

    fn finish(mut self) -> Option<Break> {
        self.flush();
        self.first
    }
}

/// Verifies a journal and the artifacts it records in `store`; with `keys`, every record must
/// be signed by one of them.
pub async fn verify(
    journal: &Journal,
    store: &Store,
    checkpoint: Option<Checkpoint>,
    keys: Vec<PublicKey>,
    customer_keys: &[PublicKey],
) -> Result<Verification, JournalError> {
    let trusted_keys = keys
        .iter()
        .map(|k| TrustedKey {
            id: k.id().to_owned(),
            source: k.source.clone(),
        })
        .collect();
    let signatures_checked = !keys.is_empty();
    // The chain is walked in order; signatures are independent of each other, so they are
    // checked in batches on every core ([`Batches`]), and the first break either finds, by
    // position, is the verdict (on the same record, in the order the in-order check uses:
    // [`chain::first_of`]).
    let mut v = ChainVerifier::new(checkpoint);
    let mut signatures = Batches::new(&keys);
    let mut chain_break = None;
    let mut records = 0u64;
    let mut artifacts = Vec::new();
    let mut customers = Customers::default();
    journal.for_each(|r| {
        if chain_break.is_some() || signatures.failed() {
            return Ok(());
        }
        match v.push(&r) {
            Ok(event) => {
                records += 1;
                customers.see(r.seq, &event, customer_keys);
                if let Event::StepSucceeded { output, .. } = event {
                    artifacts.extend(output.artifacts.into_iter().map(|a| (r.seq, a)));
                }
            }
            Err(b) => chain_break = Some(b),
        }
        signatures.push(r.seq, r.hash, r.signature);
        Ok(())
    })?;
    chain_break = match (chain_break, signatures.finish()) {
        (Some(c), Some(s)) => Some(if chain::first_of(&c, &s) { c } else { s }),
        (c, s) => s.or(c),
    };
    let bytes = v.bytes;
    let signed_by = std::mem::take(&mut v.signed_by);
    let unsigned = v.unsigned;
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
    // A journal that does not verify names nothing worth fetching: its locations may have
    // been written by whoever broke it, so no store is asked (and no credential sent).
    if chain_break.is_some() {
        artifacts.clear();
        customers.checked.clear();
    }
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
    let customers_ok = customers.checked.iter().all(|c| c.problem.is_none());
    Ok(Verification {
        ok: chain_break.is_none() && problems.is_empty() && customers_ok,
        records,
        bytes,
        head,
        signatures_checked,
        trusted_keys,
        signed_by,
        unsigned,
        message: chain_break.as_ref().map(ToString::to_string),
        chain_break,
        artifacts: artifacts.len() as u64,
        artifact_problems: problems,
        customer_keys_checked: !customer_keys.is_empty(),
        customer_approvals: customers.checked,
    })
}

/// The head of the journal of `dir` for an auditor to keep, once the whole chain verifies
/// (and, with `keys`, every signature): `Ok(Err(break))` when it does not; `Ok(Ok(None))` for
/// a journal without records.
pub fn checkpoint(
    dir: &StateRef,
    keys: Vec<PublicKey>,
) -> Result<Result<Option<Checkpoint>, Break>, JournalError> {
    let journal = Journal::open_read_only(dir)?;
    let mut v = ChainVerifier::new(None).require_signatures(keys);
    let mut first_break = None;
    journal.for_each(|r| {
        if first_break.is_none()
            && let Err(b) = v.push(&r)
        {
            first_break = Some(b);
        }
        Ok(())
    })?;
    Ok(match first_break {
        Some(b) => Err(b),
        None => v.finish(),
    })
}
