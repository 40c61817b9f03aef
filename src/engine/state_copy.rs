//! `realmctl state export|import`: moves a realm between a state folder and a state database
//! without changing one hash.
//!
//! The source's journal must verify first (a broken chain is not moved; it is evidence for an
//! auditor where it is). Both sides are locked for the copy (the folder's lock, the realm's
//! lease), the target must hold no records, and the records are copied verbatim — position,
//! time, kind, payload, previous hash, hash and signature — in one transaction, so the target's
//! head is the source's head. Every artifact the journal recorded at a local location
//! (`artifacts/run-N/<file>`) is copied to the same location on the other side and checked
//! against its recorded SHA-256; artifacts in a bucket stay where they are. The source is left
//! as it was: removing it is the operator's decision.

use super::io::journal::{Journal, JournalError};
use super::io::lock::Holder;
use super::io::state::{GuardError, StateRef};
use super::io::store::{LocalStore, StoreError, local};
use super::model::chain::{Break, ChainVerifier, Checkpoint};
use super::model::event::Event;
use crate::crypto::sha256_hex;

/// Why a realm could not be moved.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A journal could not be read or written.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A lock or lease could not be taken.
    #[error(transparent)]
    Guard(#[from] GuardError),
    /// An artifact could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The source's journal does not verify.
    #[error(
        "the journal of {from} does not verify, so it is not moved: {problem}\n  help: `realmctl audit verify --state {from}` names the break; keep the state as it is for an auditor"
    )]
    Broken {
        /// The source.
        from: String,
        /// The break.
        problem: Break,
    },
    /// The source has no records.
    #[error("{from} holds no install journal: nothing to move")]
    Empty {
        /// The source.
        from: String,
    },
    /// The target already has records.
    #[error(
        "{to} already holds {records} journal records; realmctl moves a realm only into an empty state\n  help: choose another folder or realm name"
    )]
    TargetNotEmpty {
        /// The target.
        to: String,
        /// How many records it holds.
        records: u64,
    },
    /// An artifact's bytes are not what the journal recorded.
    #[error(
        "artifact {location} in {from} has SHA-256 {actual}, the journal recorded {recorded}: not moved"
    )]
    Artifact {
        /// The source.
        from: String,
        /// Where.
        location: String,
        /// What the journal says.
        recorded: String,
        /// What the bytes hash to.
        actual: String,
    },
}

/// What a move copied.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Copied {
    /// Records copied.
    pub records: u64,
    /// Artifacts copied.
    pub artifacts: u64,
    /// The head of both journals.
    pub head: Option<Checkpoint>,
}

/// Copies the realm of `from` into the empty `to`, locking both as `holder`.
pub fn copy(from: &StateRef, to: &StateRef, holder: Holder) -> Result<Copied, CopyError> {
    let source = Journal::open_read_only(from)?;
    let mut other = holder.clone();
    other.lock_id = super::io::lock::new_lock_id();
    let _source_guard = from.acquire(holder)?;
    let records = source.records()?;
    if records.is_empty() {
        return Err(CopyError::Empty {
            from: from.to_string(),
        });
    }
    let mut v = ChainVerifier::new(None);
    let mut locations = Vec::new();
    for r in &records {
        match v.push(r) {
            Ok(Event::StepSucceeded { output, .. }) => locations.extend(
                output
                    .artifacts
                    .into_iter()
                    .filter(|a| local::is_inside(&a.location)),
            ),
            Ok(_) => {}
            Err(problem) => {
                return Err(CopyError::Broken {
                    from: from.to_string(),
                    problem,
                });
            }
        }
    }
    let head = v.finish().map_err(|problem| CopyError::Broken {
        from: from.to_string(),
        problem,
    })?;
    let target_guard = to.acquire(other)?;
    let mut target = Journal::create(to)?;
    if let Some((seq, _)) = target.head()? {
        return Err(CopyError::TargetNotEmpty {
            to: to.to_string(),
            records: seq,
        });
    }
    // Artifacts first: a journal that names them is only written once they are all there.
    let (src, dst) = (LocalStore::of(from)?, LocalStore::of(to)?);
    for a in &locations {
        let bytes = src.get(&a.location)?;
        let actual = sha256_hex(&bytes);
        if actual != a.sha256 {
            return Err(CopyError::Artifact {
                from: from.to_string(),
                location: a.location.clone(),
                recorded: a.sha256.clone(),
                actual,
            });
        }
        dst.put_at(&a.location, &bytes)?;
    }
    target.fence_with(target_guard.fence());
    let n = records.len() as u64;
    target.copy_in(records)?;
    Ok(Copied {
        records: n,
        artifacts: locations.len() as u64,
        head,
    })
}
